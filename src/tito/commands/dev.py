"""`tito dev ...`: maintainer commands. `tito dev verify` proves the course is sound (run in CI);
`tito dev mutants` measures how strong each module's checks are (mutation testing)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tito import mutants as mut
from tito import registry, ui
from tito.errors import TitoError
from tito.ui import escape
from tito.workspace import Sources
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


def _pct(score: Optional[float]) -> str:
    return "-" if score is None else f"{score:.1%}"


@app.command()
def mutants(modules: Annotated[Optional[list[str]], typer.Argument(
                help="Module ids or names (default: every built module).")] = None,
            jobs: Annotated[int, typer.Option("--jobs", "-j", help="Check runs in parallel.")] = 2,
            sample: Annotated[Optional[int], typer.Option(
                "--sample", help="Judge a seeded random sample of N mutants per module (CI).")] = None,
            seed: Annotated[int, typer.Option("--seed", help="The sample's seed.")] = mut.DEFAULT_SAMPLE_SEED,
            timeout: Annotated[Optional[float], typer.Option(
                "--timeout", help="Seconds per mutant run (default: 4x the reference's, at least 20).")] = None,
            json_out: Annotated[Optional[Path], typer.Option(
                "--json", help="Also write the report as JSON to this file ('-': stdout only).")] = None,
            raise_floors: Annotated[bool, typer.Option(
                "--raise-floors", help="Raise mutants/floors.json to the measured scores (never lowers).")] = False,
            list_only: Annotated[bool, typer.Option(
                "--list", help="Only list the mutants (id and edit; --sample: the sample), judge none.")] = False) -> None:
    """Mutation testing: plant learner-like mistakes in the reference solutions, one at a time,
    and count how many the module's checks catch. Prints the score per module, every survivor
    as a diff, and the time; exit 1 when a module is below its floor (mutants/floors.json) or the
    reviewed list of equivalent mutants (mutants/equivalent.txt) is out of date."""
    only = [registry.get_module(x) for x in modules] if modules else None
    if raise_floors and not sample:
        raise TitoError("--raise-floors needs --sample: the floors are for CI's sampled run")
    src = Sources.installed()
    if list_only:
        for m in only or registry.built_modules():
            every = mut.generate(src.reference_text(m), m.id)
            for x in mut.sample_of(every, sample, seed, m.id) if sample else every:
                out.print(f"{escape(x.id)}  line {x.line}: {escape(x.what)}", soft_wrap=True)
        return
    to_stdout = json_out is not None and str(json_out) == "-"

    bar = Progress(TextColumn("mutants"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("{task.description}"), console=out, transient=True,
                   disable=to_stdout or not out.is_terminal)
    task = bar.add_task("", total=None)

    def progress(outcome, done, total):
        bar.update(task, completed=done, total=total,
                   description=escape(f"{outcome.mutant.id}: {outcome.status}"))

    with bar:
        report = mut.run(src, only=only, jobs=jobs, sample=sample, seed=seed, timeout=timeout,
                         progress=progress)
    data = report.to_json(src)
    if to_stdout:
        print(json.dumps(data, indent=1))
        raise typer.Exit(0 if report.ok else 1)
    if json_out is not None:
        json_out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    for r in report.modules:
        for o in r.survivors:
            out.print(f"[yellow]survivor[/] {escape(o.mutant.id)}  ({escape(o.mutant.function)}, "
                      f"{o.mutant.operator}: {escape(o.mutant.what)})", soft_wrap=True)
            out.print(escape(o.mutant.diff(src.reference_text(r.module), r.module.file_name)),
                      soft_wrap=True, highlight=False)
        for o in r.hangs:
            out.print(f"[magenta]hang[/] (killed) {escape(o.mutant.id)}  ({escape(o.mutant.what)}): "
                      f"{escape(o.by)}", soft_wrap=True)
    what = f"a sample of {sample} per module, seed {seed}" if sample else "every mutant"
    table = Table(title=f"tito dev mutants ({what})", title_justify="left", box=box.SIMPLE_HEAD,
                  show_edge=False, pad_edge=False, collapse_padding=True)
    for col in ("module", "mutants", "killed", "hangs", "survived", "equiv.", "score", "floor",
                "time"):
        table.add_column(col, no_wrap=True)
    for r in report.modules:
        n = f"{len(r.outcomes)}/{r.generated}" if sample else str(len(r.outcomes))
        table.add_row(str(r.module), n, str(len(r.killed)), str(len(r.hangs)), str(len(r.survivors)),
                      str(len(r.equivalent)), _pct(r.score),
                      "-" if r.floor is None else f"{r.floor:.0%}", f"{r.seconds:.0f}s")
    judged = sum(len(r.outcomes) for r in report.modules)
    table.add_row("overall", str(judged), str(sum(len(r.killed) for r in report.modules)),
                  str(sum(len(r.hangs) for r in report.modules)),
                  str(sum(len(r.survivors) for r in report.modules)),
                  str(sum(len(r.equivalent) for r in report.modules)), _pct(report.score), "", "")
    out.print(table)
    per = sum(r.seconds - r.reference_seconds for r in report.modules) / max(1, judged)
    out.print(f"Time: {report.seconds:.0f} s with -j {jobs}; the time column adds up each module's "
              f"check runs, {per:.1f} s per mutant.")
    if raise_floors:
        floors = mut.raise_floors(mut.data_dir() / "floors.json", report)
        out.print(f"Floors: {escape(json.dumps(floors))}", soft_wrap=True)
    for problem in report.problems:
        out.print(f"[red]✗[/] {escape(problem)}", soft_wrap=True)
    if not report.ok:
        raise typer.Exit(1)
