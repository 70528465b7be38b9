"""`tito report`: a learner's progress as one self-contained HTML page (tito.report). Mounted at
the top level by tito.commands.grade."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tito import grading, registry, ui
from tito.report import write_report
from tito.ui import escape
from tito.workspace import Sources, Workspace, find_workspace


def report(out_file: Annotated[Optional[Path], typer.Option(
               "--out", "-o", help="Where to write the page (default: <workspace>/report.html).")] = None,
           checks: Annotated[bool, typer.Option(
               "--checks", help="Also re-run each module's checks (slow) and show the counts.")]
           = False,
           workspace: Annotated[Optional[Path], typer.Option(
               "--workspace", "-w", help="The workspace folder (default: $TITO_WORKSPACE, or the "
                                         "current folder and its parents).")] = None) -> None:
    """Your progress as one HTML page (milestones, plots, modules).

    The milestones you achieved with their measured values and plots, the modules with their
    check counts: one self-contained file that opens anywhere and reads on a phone."""
    ws = find_workspace(workspace)
    grades = _rerun(ws) if checks else None
    path = write_report(ws, out_file, checks=grades)
    ui.say(f"Wrote {escape(str(path))}  (open it in a browser)", ui.console)


def _rerun(ws: Workspace) -> dict:
    """module id -> ModuleGrade, for every built module with a working file (read-only)."""
    src = Sources.installed()
    learner = grading.Learner(ws.root.name, ws.root, grading.WORKSPACE)
    lg = grading.grade_learner(learner, registry.built_modules(), src)
    return {mid: g for mid, g in lg.modules.items() if g.status != grading.MISSING}
