"""`tito workspace ...`: which workspace `import tinytorch` means in this Python environment.
Parses and prints only; the work is done by tito.activation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tito import activation, ui
from tito.ui import escape
from tito.workspace import find_workspace

app = typer.Typer(help="Choose the workspace whose tinytorch/ package `import tinytorch` gives.",
                  no_args_is_help=True)
out = ui.console


@app.command()
def activate(directory: Annotated[Optional[Path], typer.Argument(
        help="The workspace (default: the one you are in).")] = None) -> None:
    """Make DIR's tinytorch/ what `import tinytorch` gives in this environment (scripts, REPL,
    notebook kernels), replacing the workspace that was active."""
    ws = find_workspace(directory)
    before = activation.activate(ws.root)
    out.print(f"[green]Active workspace:[/] {escape(str(ws.root))}", soft_wrap=True)
    out.print(f"import tinytorch -> {escape(str(ws.package))}", soft_wrap=True)
    if before:
        out.print(f"[dim](was: {escape(str(before))})[/]", soft_wrap=True)


@app.command()
def deactivate() -> None:
    """Unregister the active workspace (`import tinytorch` then works only inside a workspace)."""
    before = activation.deactivate()
    out.print(f"Deactivated {escape(str(before))}." if before else "No workspace was active.",
              soft_wrap=True)


@app.command()
def show() -> None:
    """The active workspace, and the file that registers it."""
    current = activation.active()
    if current is None:
        out.print("No workspace is active in this environment (tito workspace activate DIR).")
        raise typer.Exit(1)
    out.print(f"[bold]Active workspace:[/] {escape(str(current))}"
              + ("" if (current / ".tito").is_dir() else "  [red](no longer a workspace)[/]"),
              soft_wrap=True)
    out.print(f"[dim]registered by {escape(str(activation.pth_file()))}[/]", soft_wrap=True)
