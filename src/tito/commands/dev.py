"""`tito dev ...`: maintainer commands. `tito dev verify` proves the course is sound (run in CI)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from tito import registry, ui
from tito.ui import escape
from tito.verify import verify as run_verify

app = typer.Typer(help="Maintainer tools (run from the repository checkout).", no_args_is_help=True)
out = ui.console


@app.command()
def verify(jobs: Annotated[int, typer.Option("--jobs", "-j", help="pytest runs in parallel.")] = 2,
           module: Annotated[Optional[list[str]], typer.Option(
               "--module", "-m", help="Only these modules (repeatable).")] = None) -> None:
    """For every built module: the reference passes its checks, the stub fails every one of them
    (no vacuous checks), the stub imports, nothing leaks; plus registry consistency. Exit 1 on
    any problem."""
    only = [registry.get_module(x) for x in module] if module else None
    report = run_verify(jobs=jobs, only=only)
    table = Table(title="tito dev verify", title_justify="left")
    for col in ("module", "regions", "ref. passes", "stub fails", "vacuous", "time", "ok"):
        table.add_column(col, no_wrap=True)
    for r in report.modules:
        table.add_row(str(r.module), str(r.regions), r.reference, r.stub, str(len(r.vacuous)),
                      f"{r.seconds:.0f} s", "[green]✓[/]" if not r.problems else "[red]✗[/]")
    out.print(table)
    for problem in report.all_problems:
        out.print(f"[red]✗[/] {escape(problem)}")
    if not report.ok:
        out.print(f"[bold red]{len(report.all_problems)} problem(s)[/], "
                  f"{len(report.vacuous)} vacuous check(s).")
        raise typer.Exit(1)
    out.print(f"[green]Course verified:[/] {len(report.modules)} modules, 0 vacuous checks.")
