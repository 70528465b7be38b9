"""The `tito` command line: parses arguments and prints; all work happens in plain functions."""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console
from rich.markup import escape

from tito import ui
from tito.errors import TitoError

app = typer.Typer(
    name="tito",
    help="TinyTorch: build a deep-learning framework from scratch, then rerun ML history on it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)

# (sub-app module under tito.commands, command name, aliases)
GROUPS = [
    ("module", "module", ()),
    ("milestone", "milestone", ("milestones",)),
    ("data", "data", ()),
    ("workspace", "workspace", ()),
    ("dev", "dev", ()),
    ("system", "system", ()),
    ("grade", "grade", ()),  # instructors; also mounts the top-level `tito report`
    ("capstone", "capstone", ()),  # module 20's project: start / submit / tasks
]


@app.callback(invoke_without_command=True)
def _root(version: bool = typer.Option(False, "--version", help="Show the version and exit.",
                                       is_eager=True)) -> None:
    if version:
        from tito import __version__

        print(f"tito {__version__} (tinytorch {__version__})")
        raise typer.Exit()


def _mount() -> None:
    for modname, name, aliases in GROUPS:
        try:
            mod = importlib.import_module(f"tito.commands.{modname}")
        except ModuleNotFoundError as e:  # a command group not built yet
            if e.name != f"tito.commands.{modname}":
                raise
            continue
        for n in (name, *aliases):
            app.add_typer(mod.app, name=n, hidden=(n != name))
        for cmd in getattr(mod, "TOP_LEVEL", ()):  # e.g. `tito init`, `tito status`
            app.command(cmd.__name__.rstrip("_"))(cmd)


_mount()


def main() -> None:
    try:
        app()
    except TitoError as e:
        # ui.say: one line in a log or a pipe; on a terminal wrapped between words, never inside
        # a `command` (shown styled, without its backticks). escape: a message is not markup.
        ui.say(f"[bold red]Error:[/] {escape(e.message)}", err)
        if e.hint:
            ui.say(f"  {escape(e.hint)}", err)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("[yellow]Interrupted.[/] Nothing was recorded.")
        sys.exit(130)


if __name__ == "__main__":
    main()
