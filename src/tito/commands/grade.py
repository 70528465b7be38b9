"""`tito grade FOLDER` and `tito grade release`: instructors' tools. Parses and prints only; the
work is done by plain functions in tito.grading. Also mounts the top-level `tito report`
(tito.commands.report)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from typer.core import TyperGroup

from tito import grading, ui
from tito.commands.report import report
from tito.ui import escape

TOP_LEVEL = (report,)


class _DefaultToClass(TyperGroup):
    """`tito grade FOLDER ...` means `tito grade class FOLDER ...`; `tito grade release` stays."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help",):
            args = ["class", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_DefaultToClass, no_args_is_help=True,
                  help="Instructors: grade a class (`tito grade FOLDER`), release assignments "
                       "for nbgrader (`tito grade release`).")
out = ui.console

ModulesArg = Annotated[Optional[list[str]], typer.Option(
    "--module", "-m", help="Modules to grade: ids, names or a range like 01-05 (repeatable; "
                           "default: every built module).")]


@app.command("class")
def class_(folder: Annotated[Path, typer.Argument(help="A folder of learner workspaces, or an "
                                                  "nbgrader course / submitted/ tree.")],
           modules: ModulesArg = None,
           timeout: Annotated[float, typer.Option(
               "--timeout", min=1, help="Seconds per learner and module.")] = grading.DEFAULT_TIMEOUT,
           jobs: Annotated[int, typer.Option(
               "--jobs", "-j", min=1, help="Learners graded in parallel.")] = max(1, (os.cpu_count() or 2) // 2),
           out_dir: Annotated[Path, typer.Option(
               "--out", "-o", help="Where grades.csv and grades.html go.")] = Path("grades")) -> None:
    """Grade a folder of learners (the default command: `tito grade FOLDER`).

    Re-runs every learner's module checks (isolated, time-limited), reads their milestones, and
    writes grades.csv (for the gradebook) and grades.html (the class report)."""
    mods = grading.parse_modules(modules)
    learners = grading.find_learners(folder)
    out.print(f"Grading {len(learners)} learner(s) on {len(mods)} module(s), {jobs} at a time, "
              f"at most {timeout:g} s per module ...")

    def progress(lg, done, total):
        out.print(f"  [{done}/{total}] {escape(lg.learner.name)}: {lg.modules_passed}/{len(mods)} "
                  f"modules pass" + "".join(f", {g.module.id} {g.status}" for g in lg.modules.values()
                                           if g.status in (grading.TIMEOUT, grading.ERROR)))

    result = grading.grade(learners, mods, timeout=timeout, jobs=jobs, progress=progress,
                           folder=Path(folder).resolve())
    table = Table(title=f"{len(learners)} learner(s) in {result.seconds:.0f} s", title_justify="left")
    for col in ("learner", "passed", *[m.id for m in mods], "milestone parts"):
        table.add_column(col, no_wrap=True)
    mark = {grading.PASS: "[green]✓[/]", grading.FAIL: "[red]✗[/]", grading.TIMEOUT: "[red]⏱[/]",
            grading.ERROR: "[red]![/]", grading.MISSING: "[dim]-[/]"}
    for lg in result.learners:
        table.add_row(escape(lg.learner.name), f"{lg.modules_passed}/{len(mods)}",
                      *[mark[lg.modules[m.id].status] for m in mods], str(lg.parts_achieved))
    out.print(table)
    csv_path = grading.write_csv(result, out_dir / "grades.csv")
    html_path = grading.write_html(result, out_dir / "grades.html")
    out.print(f"Wrote {escape(str(csv_path))} and {escape(str(html_path))}", soft_wrap=True)


@app.command()
def release(modules: Annotated[Optional[list[str]], typer.Argument(
                help="Modules to release (default: every built module).")] = None,
            out_dir: Annotated[Path, typer.Option(
                "--out", "-o", help="The nbgrader course folder.")] = Path("course"),
            force: Annotated[bool, typer.Option("--force", help="Replace existing notebooks.")]
            = False) -> None:
    """The assignment files for nbgrader, one assignment per module.

    Writes source/<NN_name>/<name>.ipynb (with solutions) and release/<NN_name>/<name>.ipynb
    (stripped, as nbgrader's generate_assignment makes it), and an nbgrader_config.py."""
    mods = grading.parse_modules(modules)
    written = grading.release(out_dir, mods, force=force)
    for path in written:
        out.print(f"  {escape(str(path))}", soft_wrap=True)
    ui.say(f"Released {len(mods)} module(s) into {escape(str(out_dir))}. nbgrader: `cd "
           f"{escape(str(out_dir))}` then `nbgrader generate_assignment {mods[0].key}`; learners "
           f"get release/{mods[0].key}/.", out)
