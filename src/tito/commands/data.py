"""`tito data`: list, download and verify the real data sets. Parses and prints only; the work is
done by plain functions in `tito.data` (which build on `tinytorch.datasets`)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tito import data

app = typer.Typer(
    help="Real data sets (MNIST, Fashion-MNIST, CIFAR-10, Tiny Shakespeare): what is here, "
         "download, verify checksums.\n\n"
         "TINYTORCH_DATA: the folder holding the official files, one folder per data set "
         "(mnist/train-images-idx3-ubyte.gz, ...); default: your user cache.\n\n"
         "TINYTORCH_CACHE: where derived files (decoded arrays, extracted CIFAR-10) go.\n\n"
         "TINYTORCH_MIRROR: a base URL laid out like the data folder, tried before the official "
         "sources, e.g. http://host:8000/ serving mnist/train-images-idx3-ubyte.gz "
         "(`python -m http.server 8000` inside a complete data folder is one). Downloads give "
         "up after about 20 s without an answer. See docs/DATA.md.",
    no_args_is_help=True)
out = Console()

_EXACT = {True: "[green]yes[/]", False: "[yellow]no[/]", None: "-"}
_STATUS = {"ok": "[green]ok[/]", "mismatch": "[bold red]MISMATCH[/]", "missing": "[dim]missing[/]",
           "derived": "[yellow]derived (lossy)[/]"}


def _print_folders() -> None:
    for role, value, source in data.folders():
        out.print(f"[bold]{role}:[/] {escape(value)}  [dim]({source})[/]", highlight=False)


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
    out.print(escape(data.download(name, force=force)), highlight=False, soft_wrap=True)


@app.command()
def verify() -> None:
    """Checksum every data file here; exit 1 if any differs from the official one."""
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
        out.print(f"[bold red]{len(bad)} file(s) differ from the checksum they should have.[/]")
    else:
        ok = sum(r.status == "ok" for r in rows)
        out.print(f"[green]{ok} file(s) verified, none corrupt.[/]" if ok else
                  "[yellow]No data files here yet.[/]")
    for line in data.advice(rows):
        out.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
    if bad:
        raise typer.Exit(1)
