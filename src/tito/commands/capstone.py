"""`tito capstone ...`: the capstone project of module 20. Parses and prints only; the work is in
tito.capstone (start, submit, TASKS)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from tito import capstone as cap
from tito import ui
from tito.errors import TitoError
from tito.ui import escape

app = typer.Typer(help="The capstone: your best system for a task, under a fixed budget, re-run "
                       "and measured by tito.", no_args_is_help=True)
out = ui.console

WorkspaceOpt = Annotated[Optional[Path], typer.Option(
    "--workspace", "-w", help="The workspace folder (default: $TITO_WORKSPACE, or the current "
                              "folder and its parents).")]


def say(message: str, style: str | None = None) -> None:
    ui.say(message, out, style)


def _workspace(workspace: Path | None):
    from tito.workspace import find_workspace

    return find_workspace(workspace)


@app.command()
def tasks() -> None:
    """The capstone tasks and their budgets."""
    table = Table(show_header=True, header_style="bold", expand=False)
    for col in ("task", "data", "wall time", "stored size", "seed", "--quick"):
        table.add_column(col)
    for t in cap.TASKS.values():
        table.add_row(t.name, escape(t.title), f"{t.wall_s:g} s", f"{t.max_bytes:,} bytes", str(t.seed),
                      f"{t.quick_wall_s:g} s, {t.quick_train:,} train / {t.quick_test:,} test images")
    out.print(table)
    say(f"Claims are compared within {cap.TOLERANCE['accuracy']} accuracy and "
        f"{cap.TOLERANCE['size_bytes']:,} bytes; latency is measured, never claimed.", "dim")


@app.command()
def start(task: Annotated[str, typer.Option("--task", "-t", help="The task (see `tito capstone tasks`).")]
          = "mnist",
          reset: Annotated[bool, typer.Option(
              "--reset", help="Replace your project by a fresh starter (yours is backed up first).")] = False,
          workspace: WorkspaceOpt = None) -> None:
    """Your capstone project: capstone/project.py and .ipynb, with a working baseline."""
    ws = _workspace(workspace)
    st = cap.start(ws, task, reset)
    nb, py = st.notebook.relative_to(ws.root), st.py.relative_to(ws.root)
    if not st.created:
        say(f"Your capstone project is already there: {escape(str(nb))} (and {escape(py.name)}). "
            "Nothing was overwritten.")
        say("Submit it with `tito capstone submit`; a fresh starter: `tito capstone start --reset` "
            "(backs yours up first).", "dim")
        return
    for b in st.backups:
        say(f"Your previous file is saved in {escape(str(b.relative_to(ws.root)))}", "yellow")
    t = st.task
    say(f"Wrote {escape(str(nb))} and {escape(py.name)} (edit either), and "
        f"{escape(str(st.readme.relative_to(ws.root)))}.")
    say(f"Task: {escape(t.title)}. Budget: {t.wall_s:g} s for the training process, "
        f"{t.max_bytes:,} bytes for the optimised system; seed {t.seed}.")
    say("Fill the TODO cells, rehearse in the notebook, then `tito capstone submit --quick` and "
        "`tito capstone submit`.")


def _metric_rows(doc: dict) -> Table:
    table = Table(show_header=True, header_style="bold", expand=False)
    for col in ("system", "accuracy (tito)", "stored bytes", "p50 ms", "images/s", "claimed"):
        table.add_column(col)
    claims = doc.get("claims") or {}
    for name in cap.SYSTEMS:
        m = doc.get(name)
        c = claims.get(name) or {}
        said = ", ".join(f"{k} {v:g}" for k, v in c.items()) or "-"
        if not m:
            table.add_row(name, "-", "-", "-", "-", escape(said))
            continue
        table.add_row(name, f"{m['accuracy'] * 100:.2f}% of {m['test_images']:,}", f"{m['size_bytes']:,}",
                      f"{m['p50_ms']:.3f}" if "p50_ms" in m else "-",
                      f"{m['throughput']:,.0f}" if "throughput" in m else "-", escape(said))
    return table


@app.command()
def submit(quick: Annotated[bool, typer.Option(
               "--quick", help="The rehearsal: less data, a smaller budget (never recorded).")] = False,
           budget_s: Annotated[Optional[float], typer.Option(
               "--budget-s", help="Run under a smaller wall-time budget than the task's (seconds).")] = None,
           workspace: WorkspaceOpt = None) -> None:
    """Re-run your project in clean processes (fixed seed), measure it, write the submission."""
    ws = _workspace(workspace)
    say(f"Re-running {escape(str(cap.project_file(ws).relative_to(ws.root)))}"
        f"{' (quick rehearsal)' if quick else ''} in clean processes ...")
    try:
        res = cap.submit(ws, quick, budget_s)
    except KeyboardInterrupt:
        out.print("\n[yellow]Interrupted:[/] the run was stopped. Nothing was recorded.")
        raise typer.Exit(130)
    if res.sync_note:
        say(escape(res.sync_note), "dim")
    doc = res.doc
    b = doc["budget"]
    say(f"Training process: {doc['wall_s']:.1f} s (budget {b['wall_s']:g} s); "
        f"predict process: {res.predict.seconds:.1f} s ({res.predict.kind}).")
    out.print(_metric_rows(doc))
    comp = doc.get("comparison") or {}
    if comp:
        parts = [f"accuracy {comp['accuracy_delta'] * 100:+.2f} points"]
        for key, label in (("speedup_p50", "latency speedup"), ("throughput_ratio", "throughput"),
                           ("size_ratio", "smaller by")):
            if comp.get(key):
                parts.append(f"{label} {comp[key]:.2f}x")
        say("Optimised vs baseline: " + ", ".join(parts))
    for note in res.notes:
        say(escape(note), "dim")
    where = escape(str(res.out_dir.relative_to(ws.root)))
    if res.accepted:
        if res.recorded:
            say(f"[bold green]Accepted.[/] Written to capstone/submission.json and recorded; "
                f"the runs' files in {where}/.")
        else:
            say(f"[bold green]Accepted[/] (a quick rehearsal: not recorded). Files in {where}/.")
        return
    for r in res.reasons:
        say(f"[red]✗[/] {escape(r)}")
    say(f"Not recorded. The logs and {escape(res.file.name)} are in {where}/.", "dim")
    more = f" (and {len(res.reasons) - 1} more)" if len(res.reasons) > 1 else ""
    raise TitoError(f"submission refused: {res.reasons[0]}{more}",
                    f"the logs: {where}/train.log and predict.log")
