"""`tito data`: list, download and verify the real data sets. Parses and prints only; the work is
done by plain functions in `tito.data` (which build on `tinytorch.datasets`)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from tito import data

app = typer.Typer(help="Real data sets (MNIST, Fashion-MNIST, CIFAR-10, Tiny Shakespeare): "
                       "what is here, download, verify checksums.", no_args_is_help=True)
out = Console()

_EXACT = {True: "[green]yes[/]", False: "[yellow]no[/]", None: "-"}
_STATUS = {"ok": "[green]ok[/]", "mismatch": "[bold red]MISMATCH[/]", "missing": "[dim]missing[/]",
           "derived": "[yellow]derived (lossy)[/]"}


def _print_folders() -> None:
    for role, folder, source in data.folders():
        out.print(f"[bold]{role}:[/] {folder}  [dim]({source})[/]", highlight=False)


@app.command("list")
def list_() -> None:
    """Show each data set: whether it is here, whether it is the exact official data, and where."""
    _print_folders()
    table = Table("data set", "status", "exact")
    table.add_column("where", overflow="fold")
    table.add_column("note", overflow="fold")
    for row in data.summary():
        table.add_row(row.name, row.status, _EXACT[row.exact], str(row.where), row.note)
    out.print(table)


@app.command()
def download(name: str = typer.Argument(..., help="mnist, fashion-mnist, cifar-10 or shakespeare"),
             force: bool = typer.Option(False, "--force", help="Download again even if present.")
             ) -> None:
    """Download a data set into the data folder and verify its checksums."""
    out.print(data.download(name, force=force), highlight=False)


@app.command()
def verify() -> None:
    """Checksum every data file present; exit 1 if any differs from the official one."""
    _print_folders()
    rows = data.verify()
    table = Table("data set", "file", "checksum")
    table.add_column("path", overflow="fold")
    for row in rows:
        name = row.file if row.official else f"{row.file} [dim](offline copy)[/]"
        table.add_row(row.dataset, name, _STATUS[row.status], str(row.path))
    out.print(table)
    bad = [r for r in rows if r.status == "mismatch"]
    if bad:
        out.print(f"[bold red]{len(bad)} file(s) differ from the official checksum:[/] "
                  + ", ".join(str(r.path) for r in bad)
                  + ". Delete them and run `tito data download NAME`.", highlight=False)
        raise typer.Exit(1)
    out.print(f"[green]{sum(r.status == 'ok' for r in rows)} file(s) verified, none corrupt.[/]")
