"""The `tito` command line: parses arguments and prints; all work happens in plain functions."""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console
from rich.markup import escape

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
    ("dev", "dev", ()),
    ("system", "system", ()),
]


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
        # soft_wrap: one line however long; escape: a message is text, not rich markup
        err.print(f"[bold red]Error:[/] {escape(e.message)}", highlight=False, soft_wrap=True)
        if e.hint:
            err.print(f"  {escape(e.hint)}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("[yellow]Interrupted.[/] Nothing was recorded.")
        sys.exit(130)


if __name__ == "__main__":
    main()
