"""`tito milestone ...` (alias `tito milestones`): rerun ML history on your own code.

Parses and prints only; everything it shows comes from tito.milestone_run and the registry.
No prompts: every command behaves the same with and without a terminal.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Group
from rich.measure import Measurement
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from tito import milestone_run as mr
from tito import registry, ui
from tito.errors import TitoError
from tito.registry import Milestone, Part
from tito.ui import escape

app = typer.Typer(help="Rerun the history of ML - perceptron to MLPerf - on your own tinytorch.",
                  no_args_is_help=True)
out = ui.console


def say(message: str, style: str | None = None) -> None:
    """One message, `commands` in backticks: see tito.ui.say."""
    ui.say(message, out, style)


IdArg = Annotated[str, typer.Argument(help="Milestone id: 1, 01 or its name (e.g. perceptron).")]
WorkspaceOpt = Annotated[Optional[Path], typer.Option(
    "--workspace", "-w", help="The workspace folder (default: $TITO_WORKSPACE, or the current "
                              "folder and its parents).")]
ReferenceOpt = Annotated[bool, typer.Option(
    "--reference", help="Run on the reference framework instead of your code (needs no workspace; "
                        "records nothing).")]
STATUS_STYLE = {mr.LOCKED: "[dim]🔒 LOCKED[/]", mr.READY: "[cyan]▶ READY TO RUN[/]",
                mr.COMPLETE: "[green]✓ COMPLETE[/]", mr.COMING: "[dim]· COMING[/]"}


def _view_state(workspace: Path | None):
    """(completed modules, achievements, workspace or None): a fresh learner's view without one."""
    try:
        target = mr.resolve_target(False, workspace)
    except TitoError:
        if workspace:
            raise
        return set(), {}, None
    return target.completed(), mr.achievements(target), target.ws


# ---------------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------------
_fmt = registry.format_value


def _target(c, target: float) -> str:
    return registry.format_target(c.metric, c.op, target)


def context_panel(ms: Milestone) -> Panel:
    body = Group(Text(ms.people, style="bold"), Text(ms.context), Text(""),
                 Text.from_markup(f"[bold]You will:[/] {ms.what}"))
    return Panel(body, title=f"{ms.year} · Milestone {ms.id}: {ms.title}", border_style="cyan",
                 expand=False)


def results_table(outcome: mr.Outcome) -> Table:
    table = Table(show_header=True, header_style="bold", expand=False)
    for col in ("", "victory condition", "measured", "target"):
        table.add_column(col)
    for r in outcome.results:
        mark = "[green]✓[/]" if r.passed else "[red]✗[/]"
        table.add_row(mark, r.condition.label, _fmt(r.condition.metric, r.value, r.condition.op,
                                                     r.target), _target(r.condition, r.target))
    return table


def _fix_lines(target: mr.Target, culprits) -> list[str]:
    """What to do about a failure, as messages for ui.text (commands in backticks)."""
    if target.reference:
        return [f"This is the reference framework: a failure here is a TinyTorch bug "
                f"({', '.join(str(m) for m in culprits) or 'see above'}) - please report it."]
    lines = []
    for m in culprits:
        lines.append(f"  module {ui.keep(str(m))}: fix modules/{m.key}/{m.file_name}, check it "
                     f"with `tito module test {m.id}`, re-export with "
                     f"`tito module complete {m.id}`")
    return ["Likely culprit(s):", *lines] if lines else []


def failure_panel(target: mr.Target, ms: Milestone, part: Part, o: mr.Outcome) -> Panel:
    parts: list = []
    if o.kind == "metrics":
        parts.append(Text("Not achieved: these conditions failed (measured on your run):",
                          style="bold red"))
        for r in o.failed:
            parts.append(Text(f"  ✗ {r.condition.label}: measured "
                              f"{_fmt(r.condition.metric, r.value, r.condition.op, r.target)}, "
                              f"target {_target(r.condition, r.target)}"))
        for n in o.notes[:6]:
            parts.append(Text(f"  · {n}", style="dim"))
    elif o.kind == "error" and o.module and "No module named 'tinytorch." in o.message:
        m = registry.get_module(o.module)
        parts.append(Text(f"Module {m} is not in {'the' if target.reference else 'your'} "
                          f"tinytorch package (it is not complete yet).", style="bold red"))
    elif o.kind == "error":
        where = f" in module {registry.get_module(o.module)}" if o.module else ""
        parts.append(Text(f"Your code raised an exception{where}:", style="bold red"))
        parts.append(Text(o.detail or o.message, style="red"))
    elif o.kind == "nan":
        parts.append(Text(f"Stopped early: {o.message}.", style="bold red"))
        parts.append(Text("A NaN/inf loss usually comes from an unstable loss (log of 0, exp "
                          "overflow), a wrong backward rule, or an optimizer step that explodes."))
        parts += [Text(f"  · {n}", style="dim") for n in o.notes[:6]]
    elif o.kind == "timeout":
        parts.append(Text(f"Time limit: {o.message}.", style="bold red"))
        parts.append(ui.text("Your code may be much slower than it should be (a Python loop "
                             "where NumPy should work on whole arrays?). `--timeout SECONDS` "
                             "raises the limit."))
    elif o.kind == "data_error":  # tinytorch.datasets writes its commands in backticks too
        parts.append(ui.text(escape(o.message), "bold red"))
        if o.detail:
            parts.append(ui.text(escape(o.detail)))
    else:
        parts.append(Text(o.message, style="bold red"))
        if o.detail:
            parts.append(Text(o.detail, style="dim"))
    if o.kind != "data_error":
        parts += [ui.text(line) for line in _fix_lines(target, mr.likely_culprits(ms, part, o))]
    parts.append(Text("Nothing was recorded.", style="bold"))
    title = f"✗ Milestone {ms.id}" + (f" part {part.number}" if len(ms.parts) > 1 else "")
    return Panel(Group(*parts), title=title, border_style="red", expand=False)


def celebrate_panel(ms: Milestone, part: Part, metrics: dict, seconds: float, note: str,
                    whole: bool = True) -> Panel:
    """The success panel; `whole`: every part of the milestone is now done (else: 'PART n')."""
    lines = [Text.from_markup(f"[bold green]{ms.year}: {ms.title}[/] - "
                              + (f"part {part.number}, {part.name}" if len(ms.parts) > 1 else
                                 "recreated"))]
    for c in part.conditions:
        v = metrics.get(c.metric)
        if v is not None and not (c.op == "==" and c.target in (0, 1)):
            lines.append(Text(f"  {c.label}: {_fmt(c.metric, v)}"))
    lines.append(Text(f"  trained in {seconds:.1f} s", style="dim"))
    lines.append(Text(note, style="bold"))
    title = "🏆 MILESTONE ACHIEVED" if whole else f"🏆 PART {part.number} OF {len(ms.parts)} ACHIEVED"
    return Panel(Group(*lines), title=title, border_style="green", expand=False)


def _data_label(data: dict) -> str:
    """' (on a non-official copy of mnist)' when a result was computed on inexact data."""
    inexact = [name for name, prov in data.items() if not prov.get("exact", True)]
    return f" (on a non-official copy of {', '.join(inexact)})" if inexact else ""


class LiveView:
    """Live progress: a rich bar on a terminal. Otherwise (a log, CI) a plain line when a stage
    starts, at every quarter of the way, and at least every 15 s - never more than one per 2 s."""

    def __init__(self, label: str):
        self.label = label
        self.live = out.is_terminal
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                            TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=out,
                            disable=not self.live)
        self.task = None
        self.last = (None, 0.0, -1.0)  # (stage, time, fraction done) of the last line printed

    def __enter__(self):
        self.bar.__enter__()
        self.task = self.bar.add_task(self.label, total=None, info="starting...")
        return self

    def __exit__(self, *exc):
        self.bar.__exit__(*exc)

    def progress(self, f: dict) -> None:
        done = f.get("epoch", f.get("step"))
        total = f.get("epochs", f.get("steps"))
        info = "  ".join(s for s in (
            str(f["stage"]) if "stage" in f else "",
            f"loss {f['loss']:.4f}" if isinstance(f.get("loss"), (int, float)) else "",
            f"acc {f['acc'] * 100:.1f}%" if isinstance(f.get("acc"), (int, float)) else "") if s)
        if self.live:
            self.bar.update(self.task, completed=done or 0, total=total, info=info)
            return
        now, stage = time.monotonic(), f.get("stage")
        frac = done / total if done is not None and total else -1.0
        since = now - self.last[1]
        due = stage != self.last[0] or frac >= self.last[2] + 0.25 or since >= 15
        if not due or since < 2:
            return
        self.last = (stage, now, frac)
        left, count = "", ""
        if done and total and f.get("elapsed"):
            left = f"  ~{f['elapsed'] / done * (total - done):.0f} s left"
        if done is not None:
            unit = "epoch" if "epoch" in f else "step"
            count = f"{unit} {done}" + (f"/{total}" if total else "") + "  "
        say(escape(f"  {count}{info}{left}"))

    def log(self, text: str) -> None:
        say(f"  {escape(text)}")

    def warning(self, text: str) -> None:
        say(f"  {escape(text)}", style="yellow")

    def code(self, text: str) -> None:
        """Python the learner's model wrote, syntax-highlighted (plain text off a terminal)."""
        out.print(Syntax(text, "python", theme="ansi_dark", background_color="default"))


# ---------------------------------------------------------------------------------------------
# run / test
# ---------------------------------------------------------------------------------------------
def _run(milestone: str, *, part, quick, seed, reference, skip_checks, timeout, workspace,
         celebrate: bool, options: dict | None = None) -> bool:
    """The shared body of `run` (celebrate and record) and `test` (neither). True if achieved."""
    ms = registry.get_milestone(milestone)
    mr.built_parts(ms, part)  # a coming milestone is refused first, workspace or not
    target = mr.resolve_target(reference, workspace)
    parts, notes = mr.plan(ms, target, part, skip_checks)
    if skip_checks and not target.reference:
        say("[yellow]Warning:[/] `--skip-checks`: prerequisites were not checked.")
    for n in notes:
        say(n, style="dim")
    # (2) the learner's modules this run needs, imported one by one
    needed = sorted({mid for p in parts for mid in ms.modules_for(p)})
    modules = [registry.get_module(mid) for mid in needed]
    imports = mr.check_imports(target, modules)
    whose = "reference" if target.reference else "your"
    say(f"[bold]Imports ({whose} tinytorch at {escape(str(target.package))}):[/]")
    for r in imports:
        mark = "[green]✓[/]" if r["ok"] else "[red]✗[/]"
        say(f"  {mark} {r['module']}" + ("" if r["ok"] else f"  [red]{escape(r['error'])}[/]"))
    broken = [r["module"] for r in imports if not r["ok"]]
    if broken and not skip_checks:
        m = broken[0]
        raise TitoError(f"module {m} does not import: {imports[modules.index(m)]['error']}",
                        f"fix modules/{m.key}/{m.file_name}, then `tito module complete {m.id}`")
    # (3) the history
    if celebrate:
        out.print(context_panel(ms))
    if target.reference and not target.records:
        out.print("[dim]Reference run: nothing is recorded.[/]")
    run_root = mr.new_run_dir(target, ms)
    achieved = True
    for p in parts:
        variant = " (quick)" if quick else ""
        out.print(f"\n[bold]Part {p.number}: {p.name}{variant}[/]")
        out_dir = run_root / f"part{p.number}"
        with LiveView(f"{ms.id}.{p.number}") as view:
            outcome = mr.run_part(target, ms, p, quick, seed, out_dir, timeout, view, options)
        mr.write_result(outcome)
        if outcome.results:
            out.print(results_table(outcome))
        for name, prov in outcome.data.items():
            if not prov.get("exact", True):
                say(f"[yellow]Note:[/] {escape(name)} is not the official data "
                    f"({escape(str(prov.get('note')))}); these results are labelled as such.")
        if not outcome.achieved:
            out.print(failure_panel(target, ms, p, outcome))
            achieved = False
        elif celebrate:
            rec = mr.record(target, ms, p, outcome)
            note = ("Recorded in .tito/milestones.json - achieved with YOUR code." if rec else
                    "Achieved by the reference framework (not recorded)." if target.reference else
                    "Quick run: not recorded (run it without --quick to claim it).")
            done = mr.achievements(target).get(ms.id, {}) if rec else {}
            whole = (all(str(q.number) in done for q in ms.parts) if rec
                     else p.number == ms.parts[-1].number)
            out.print(celebrate_panel(ms, p, outcome.metrics, outcome.seconds,
                                      note + _data_label(outcome.data), whole))
        else:
            out.print(f"[green]✓ part {p.number}: every condition holds[/] "
                      f"[dim]({outcome.seconds:.1f} s, nothing recorded)[/]")
        saved = _saved_files(outcome)
        if saved:
            say(f"Saved in {escape(str(outcome.out_dir))}/: {escape(', '.join(saved))}", "dim")
        if not achieved:
            break
    if celebrate and target.ws is not None and not target.reference:
        nxt = mr.next_step_text(target.completed(), mr.achievements(target))
        say(f"[bold]Next:[/] {escape(nxt)}")
    return achieved


def _saved_files(outcome: mr.Outcome) -> list[str]:
    """The names of the files this part's run left in its folder (plots, metrics.json)."""
    if outcome.out_dir is None:
        return []
    names = [Path(f).name for f in outcome.plots]  # plots first, the other files, metrics last
    if outcome.out_dir.is_dir():
        names += sorted(f.name for f in outcome.out_dir.iterdir() if f.name != "metrics.json")
    names.append("metrics.json")
    return [n for n in dict.fromkeys(names) if (outcome.out_dir / n).is_file()]


PartOpt = Annotated[Optional[str], typer.Option("--part", "-p",
                                                help="Run only this part (1, 2, ...).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (data, initial weights).")]
TimeoutOpt = Annotated[Optional[float], typer.Option(
    "--timeout", help="Time limit per part in seconds (default: the part's own limit).")]
SkipOpt = Annotated[bool, typer.Option("--skip-checks", help="Run even if prerequisite modules "
                                                             "are not complete.")]


@app.command()
def run(milestone: IdArg, skip_checks: SkipOpt = False,
        quick: Annotated[bool, typer.Option(
            "--quick", help="A short rehearsal on less data, to a lower bar (never recorded).")
        ] = False,
        part: PartOpt = None, seed: SeedOpt = 0, reference: ReferenceOpt = False,
        timeout: TimeoutOpt = None, workspace: WorkspaceOpt = None,
        prompt: Annotated[Optional[str], typer.Option(
            "--prompt", help="Milestone 05: the text your model continues in its samples.")] = None,
        temperature: Annotated[Optional[float], typer.Option(
            "--temperature", min=0.0, help="Milestone 05: sampling temperature (0 = greedy).")] = None,
        ) -> None:
    """Run a milestone on your code: check, train, measure every victory condition, record."""
    options = {k: v for k, v in (("prompt", prompt), ("temperature", temperature)) if v is not None}
    ms = registry.get_milestone(milestone)
    unused = [k for k in options if k not in ms.options]
    if unused:
        takers = [m.id for m in registry.MILESTONES if unused[0] in m.options]
        raise TitoError(f"milestone {ms.id} takes no --{unused[0]}",
                        f"only milestone {', '.join(takers)} does" if takers else "")
    try:
        ok = _run(milestone, part=part, quick=quick, seed=seed, reference=reference,
                  skip_checks=skip_checks, timeout=timeout, workspace=workspace, celebrate=True,
                  options=options)
    except KeyboardInterrupt:
        out.print("\n[yellow]Interrupted:[/] the run was stopped. Nothing was recorded.")
        raise typer.Exit(130)
    if not ok:
        raise typer.Exit(1)


@app.command()
def test(milestone: IdArg, full: Annotated[bool, typer.Option(
             "--full", help="The full run instead of the quick variant.")] = False,
         part: PartOpt = None, seed: SeedOpt = 0, reference: ReferenceOpt = False,
         skip_checks: SkipOpt = False, timeout: TimeoutOpt = None,
         workspace: WorkspaceOpt = None) -> None:
    """Evaluate the victory conditions (quick variant by default); exit code 0 if all hold.

    Never records and never celebrates: for scripts and CI.
    """
    try:
        ok = _run(milestone, part=part, quick=not full, seed=seed, reference=reference,
                  skip_checks=skip_checks, timeout=timeout, workspace=workspace, celebrate=False)
    except KeyboardInterrupt:
        out.print("\n[yellow]Interrupted.[/] Nothing was recorded.")
        raise typer.Exit(130)
    out.print("[green]PASS[/]" if ok else "[red]FAIL[/]")
    if not ok:
        raise typer.Exit(1)


# ---------------------------------------------------------------------------------------------
# list / info / status / timeline / next / celebrate
# ---------------------------------------------------------------------------------------------
@app.command("list")
def list_(simple: Annotated[bool, typer.Option("--simple", help="One plain line each.")] = False,
          workspace: WorkspaceOpt = None) -> None:
    """All six milestones: COMING / LOCKED / READY TO RUN / COMPLETE, and what unlocks each."""
    done, ach, ws = _view_state(workspace)
    rows = [(ms, mr.milestone_status(ms, done, ach), mr.unlock_note(ms, done, ach))
            for ms in registry.MILESTONES]
    table = Table(title="Milestones" + ("" if ws else " (no workspace: a fresh learner's view)"),
                  title_justify="left")
    for col in ("id", "year", "milestone", "status", "parts / unlocks"):
        table.add_column(col, no_wrap=col in ("id", "year", "status"))
    for ms, status, note in rows:
        table.add_row(ms.id, str(ms.year), escape(ms.title), STATUS_STYLE[status], escape(note))
    fits = Measurement.get(out, out.options.update_width(1000), table).minimum <= out.width
    if simple or not fits:  # a narrow terminal gets the lines too
        for ms, status, note in rows:
            say(f"{ms.id} {ms.year} {escape(ms.title)} - {status} ({escape(note)})")
        if simple:
            return
    else:
        out.print(table)
    say("Run one: `tito milestone run ID`   (try any on the reference: `--reference`)", "dim")


def _module_mark(m, done: set[str]) -> str:
    """'✓ 01 tensor' (complete), '✗ 03 layers' (not yet), '· 10 tokenization (coming)'."""
    if not m.built:
        return f"[dim]{ui.keep(f'· {m} (coming)')}[/]"
    return ui.keep(f"{'[green]✓[/]' if m.id in done else '[red]✗[/]'} {m}")


@app.command()
def info(milestone: IdArg, workspace: WorkspaceOpt = None) -> None:
    """The history, what you will recreate, the modules it needs (✓/✗) and its conditions."""
    ms = registry.get_milestone(milestone)
    done, ach, _ = _view_state(workspace)
    out.print(context_panel(ms))
    for p in ms.parts:
        label = ("[dim]coming[/]" if mr.coming_modules(ms, p) else "[cyan]ready[/]"
                 if registry.part_runnable(ms, p, done) else "[dim]locked[/]")
        head = f"[bold]Part {p.number}: {escape(p.name)}[/]  {label}"
        if mr.part_achieved(ach, ms, p):
            head += "  [green]✓ achieved[/]"
        say(head)
        mods = [registry.get_module(mid) for mid in ms.modules_for(p)]
        say("  modules: " + "  ".join(_module_mark(m, done) for m in mods))
        for c in p.conditions:
            quick = (f" [dim](quick: {_target(c, c.quick_target)})[/]"
                     if c.quick_target is not None else "")
            say(f"  • {escape(c.label)}: {_target(c, c.target)}{quick}")
    status = mr.milestone_status(ms, done, ach)
    say(f"Status: {STATUS_STYLE[status]}")
    if status == mr.COMING:
        ids = registry.compact_ids(m.id for m in mr.coming_modules(ms))
        say(f"Modules {ids} are not built yet: this milestone comes in a later release.")
    elif status == mr.LOCKED:
        first = ms.parts[0]
        missing = registry.compact_ids(m.id for m in registry.milestone_missing(ms, done, first))
        start = mr.module_to_start(ms, first, done)
        say(f"Unlock it with modules {missing}: next `tito module start {start.id}`")


@app.command()
def status(detailed: Annotated[bool, typer.Option("--detailed", help="Every victory condition and "
                                                  "the best recorded values.")] = False,
           workspace: WorkspaceOpt = None) -> None:
    """How many milestones you have achieved, what you can now do, and the next one."""
    target = mr.resolve_target(False, workspace)
    done, ach = target.completed(), mr.achievements(target)
    states = {ms.id: mr.milestone_status(ms, done, ach) for ms in registry.MILESTONES}
    n = sum(s == mr.COMPLETE for s in states.values())
    total = len(registry.MILESTONES)
    say(f"[bold]Milestones achieved: {n}/{total} ({100 * n / total:.0f}%)[/]"
        + (" - what your framework has done:" if n else ""))
    for ms in registry.MILESTONES:
        if states[ms.id] == mr.COMPLETE:
            say(f"  [green]✓[/] {ms.year} {escape(ms.title)} [dim]- {escape(ms.what)}[/]")
    if detailed:
        for ms in registry.MILESTONES:
            best = mr.best_values(ms, ach)
            out.print()
            say(f"[bold]{ms.id} {escape(ms.title)} ({ms.year})[/]  {STATUS_STYLE[states[ms.id]]}")
            for p in ms.parts:
                say(f"  part {p.number}: {escape(p.name)}")
                for c in p.conditions:
                    v = best.get((p.number, c.metric))
                    shown = "-" if v is None else _fmt(c.metric, v, c.op, c.target)
                    say(f"    • {escape(c.label)}: target {_target(c, c.target)}, best {shown}")
    coming = [ms.id for ms in registry.MILESTONES if states[ms.id] == mr.COMING]
    if coming:
        say(f"Milestone{'s' if len(coming) > 1 else ''} {', '.join(coming)}: coming in a later "
            "release.", "dim")
    say(f"[bold]Next:[/] {escape(mr.next_step_text(done, ach))}")


@app.command()
def timeline(horizontal: Annotated[bool, typer.Option("--horizontal", help="One line.")] = False,
             workspace: WorkspaceOpt = None) -> None:
    """The journey from 1958 to 2018, with where you are."""
    done, ach, _ = _view_state(workspace)
    mark = {mr.COMPLETE: "[green]✓[/]", mr.READY: "[cyan]▶[/]", mr.LOCKED: "[dim]🔒[/]",
            mr.COMING: "[dim]·[/]"}
    states = [(ms, mr.milestone_status(ms, done, ach)) for ms in registry.MILESTONES]

    def coming(s: str) -> str:
        return " [dim](coming)[/]" if s == mr.COMING else ""

    if horizontal:
        say(" ── ".join(ui.keep(f"{mark[s]} {ms.year} {escape(ms.title.removeprefix('The '))}"
                               f"{coming(s)}") for ms, s in states))
        return
    first, last = registry.MILESTONES[0].year, registry.MILESTONES[-1].year
    tree = Tree(f"[bold]The history of ML, {first} → {last}[/]")
    for ms, s in states:
        node = tree.add(ui.text(f"{mark[s]} [bold]{ms.year}[/] {escape(ms.title)}{coming(s)} "
                                f"[dim]- {escape(ms.people)}[/]"))
        node.add(Text(ms.what, style="dim"))
    out.print(tree)


@app.command("next")
def next_(workspace: WorkspaceOpt = None) -> None:
    """The next milestone, and what to do to get there."""
    target = mr.resolve_target(False, workspace)
    say(f"[bold]Next:[/] {escape(mr.next_step_text(target.completed(), mr.achievements(target)))}")


@app.command()
def celebrate(milestone: IdArg, workspace: WorkspaceOpt = None) -> None:
    """Replay a recorded achievement with its numbers."""
    ms = registry.get_milestone(milestone)
    mr.built_parts(ms)  # a coming milestone: not built yet, so nothing to celebrate
    target = mr.resolve_target(False, workspace)
    ach = mr.achievements(target).get(ms.id, {})
    if not ach:
        raise TitoError(f"milestone {ms.id} ({ms.title}) has not been achieved yet",
                        f"run it on your code: `tito milestone run {ms.id}`")
    out.print(context_panel(ms))
    for p in ms.parts:
        recs = ach.get(str(p.number))
        if not recs:
            say(f"Part {p.number} ({escape(p.name)}): not achieved yet", "dim")
            continue
        rec = recs[-1]
        note = f"Recorded {rec.get('recorded_at', '?')} (seed {rec.get('seed')}), with YOUR code."
        note += _data_label(rec.get("data") or {})
        whole = all(str(q.number) in ach for q in ms.parts)
        out.print(celebrate_panel(ms, p, rec.get("metrics", {}), rec.get("duration_s", 0.0), note,
                                  whole))


# ---------------------------------------------------------------------------------------------
# start / submit / demo: the milestone notebooks (all logic in tito.milestone_work)
# ---------------------------------------------------------------------------------------------
def _workspace(workspace: Path | None):
    from tito.workspace import find_workspace

    return find_workspace(workspace)


@app.command()
def start(milestone: IdArg, reset: Annotated[bool, typer.Option(
              "--reset", help="Replace your notebook by a fresh starter (yours is backed up first).")
          ] = False, workspace: WorkspaceOpt = None) -> None:
    """Your milestone notebook: starter code with TODOs, the deliverables and the rubric."""
    from tito import milestone_work as mw

    ms = registry.get_milestone(milestone)
    ws = _workspace(workspace)
    st = mw.start(ws, ms, reset)
    nb, py = st.notebook.relative_to(ws.root), st.py.relative_to(ws.root)
    if not st.created:
        say(f"Your milestone {ms.id} notebook is already there: {escape(str(nb))} (and "
            f"{escape(py.name)}). Nothing was overwritten.")
        say(f"Submit it with `tito milestone submit {ms.id}`; a fresh starter: "
            f"`tito milestone start {ms.id} --reset` (backs yours up first).", "dim")
        return
    out.print(Panel(Group(Text(ms.people, style="bold"), Text(ms.context)), expand=False,
                    title=f"{ms.year} · Milestone {ms.id} notebook: {ms.title}", border_style="cyan"))
    for b in st.backups:
        say(f"Your previous file is saved in {escape(str(b.relative_to(ws.root)))}", "yellow")
    say(f"Wrote {escape(str(nb))} and {escape(py.name)} (edit either), and "
        f"{escape(str(st.readme.relative_to(ws.root)))} (the deliverables and the rubric).")
    table = Table(show_header=True, header_style="bold", expand=False)
    for col in ("deliverable", "weight", ""):
        table.add_column(col)
    for line in mw.load_spec(ms).lines:
        table.add_row(line.name, f"{line.weight:.0f}%", escape(line.title))
    out.print(table)
    say(f"Fill every TODO cell, run the notebook, then `tito milestone submit {ms.id}`.")


@app.command()
def submit(milestone: IdArg, quick: Annotated[bool, typer.Option(
               "--quick", help="A short rehearsal on less data, to lower targets (never recorded).")
           ] = False, timeout: TimeoutOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Run your milestone notebook top to bottom and measure every deliverable of the rubric."""
    from tito import milestone_work as mw

    ms = registry.get_milestone(milestone)
    ws = _workspace(workspace)
    spec = mw.load_spec(ms)
    limit = timeout or (spec.quick_limit_s if quick else spec.limit_s)
    py = mw.notebook_file(ws, ms).relative_to(ws.root)
    say(f"Running {escape(str(py))} top to bottom{' (quick)' if quick else ''}, "
        f"time limit {limit:.0f} s ...")
    try:
        sub = mw.submit(ws, ms, quick, timeout)
    except KeyboardInterrupt:
        out.print("\n[yellow]Interrupted:[/] the notebook was stopped. Nothing was recorded.")
        raise typer.Exit(130)
    if sub.sync_note:
        say(escape(sub.sync_note), "dim")
    run = sub.run
    if run.kind == "ok":
        say(f"The notebook ran in {run.seconds:.1f} s.")
    else:
        where = f" at {run.where}" if run.where else ""
        say(f"[bold red]The notebook stopped{escape(where)}:[/] {escape(run.error)}")
    table = Table(show_header=True, header_style="bold", expand=False)
    for col in ("", "line", "weight", "evidence (measured by tito)"):
        table.add_column(col)
    for r in sub.lines:
        table.add_row("[green]✓[/]" if r.passed else "[red]✗[/]", r.line.name,
                      f"{r.points:.0f}/{r.line.weight:.0f}", escape("\n".join(r.evidence)))
    out.print(table)
    for r in sub.lines:
        if not r.passed:
            say(f"[red]✗ {r.line.name}:[/] {escape(r.line.fix)}")
    style = "bold green" if sub.score >= spec.pass_mark else "bold red"
    say(f"[{style}]Score: {sub.score:.0f}/100[/]")
    files = escape(str(sub.out_dir.relative_to(ws.root)))
    if sub.recorded:
        say(f"Recorded in .tito/milestones.json. Evidence in {files}/.")
    else:
        why = ("a quick rehearsal is never recorded" if quick else
               f"recorded only at {spec.pass_mark:.0f}%")
        say(f"Not recorded ({why}). Evidence and the notebook's log in {files}/.", "dim")
    if sub.score < spec.pass_mark:
        raise typer.Exit(1)


def _digit_panel(show, k: int):
    from tito import milestone_work as mw

    d = show.data
    true, pred = d["labels"][k], d["predictions"][k]
    names = d["classes"]
    ok = true == pred
    head = f"{'✓' if ok else '✗'} {names[pred]} {d['confidence'][k]:.0%}"
    if show.kind == "cifar" and out.color_system:  # colour: two pixels per character cell
        img = d["images"][k]  # (32, 32, 3)
        body = Text()
        for r in range(0, len(img) - 1, 2):
            for top, bottom in zip(img[r], img[r + 1]):
                body.append("▀", style="rgb({},{},{}) on rgb({},{},{})".format(*top, *bottom))
            body.append("\n")
        body.rstrip()
    else:
        body = Text("\n".join(mw.ascii_image(d["images"][k])))
    sub = "" if ok else f"true: {names[true]}"
    return Panel(body, title=head, subtitle=sub, border_style="green" if ok else "red",
                 expand=False)


@app.command()
def demo(milestone: IdArg, count: Annotated[int, typer.Option(
             "--count", "-n", help="How many test images to classify.")] = 8,
         seed: SeedOpt = 0, prompt: Annotated[str | None, typer.Option(
             "--prompt", help="Where a model writes text (05): start from this.")] = None,
         workspace: WorkspaceOpt = None) -> None:
    """Show off what your code learnt: the weights of your last successful run, predicting."""
    from rich.columns import Columns

    from tito import milestone_work as mw

    ms = registry.get_milestone(milestone)
    ws = _workspace(workspace)
    shows = mw.demo(ws, ms, count, seed, prompt=prompt)
    for show in shows:
        p = ms.part(show.part)
        out.print(f"\n[bold]{ms.id} {escape(ms.title)}, part {p.number}: {escape(p.name)}[/]")
        say(f"From {escape(show.label)}: {escape(str(show.run_dir.relative_to(ws.root)))}", "dim")
        d = show.data
        if show.kind == "text":
            out.print(Panel(Text(d["text"]), expand=False, title=escape(
                f"prompt {d['prompt']!r}, temperature {d['temperature']:g}, seed {seed}")))
        elif show.kind == "routing":
            table = Table("digits", f"your model ({d['task']})", "", expand=False)
            for a, b, e in zip(d["inputs"], d["answers"], d["expected"]):
                table.add_row("".join(map(str, a)), "".join(map(str, b)),
                              "[green]✓[/]" if b == e else "[red]✗[/]")
            out.print(table)
            right = sum(b == e for b, e in zip(d["answers"], d["expected"]))
            say(f"{right} of {len(d['answers'])} new strings right.")
        elif show.kind == "report":  # 06: the run's benchmark report, its tables drawn here
            from rich.markdown import Markdown

            out.print(Markdown(d["markdown"]))
            if d["plots"]:
                say(f"Plots in that folder: {escape(', '.join(d['plots']))}", "dim")
        elif show.kind in ("digits", "cifar"):
            out.print(Columns([_digit_panel(show, k) for k in range(len(d["labels"]))]))
            right = sum(a == b for a, b in zip(d["labels"], d["predictions"]))
            say(f"{right} of {len(d['labels'])} right (test images "
                f"{', '.join(str(i) for i in d['indices'])}).")
        elif show.kind in ("plane", "xor"):
            if show.kind == "xor":
                table = Table("x1", "x2", "XOR", "your model", "", expand=False)
                for (a, b), y, q in zip(d["inputs"], d["labels"], d["predictions"]):
                    table.add_row(f"{a:g}", f"{b:g}", str(y), str(q),
                                  "[green]✓[/]" if y == q else "[red]✗[/]")
                out.print(table)
            out.print(Panel(Text("\n".join(mw.plane_lines(d))), expand=False,
                            title="# fires, . does not; points: their label, ! if wrong"))
            right = sum(a == b for a, b in zip(d["labels"], d["predictions"]))
            say(f"{right} of {len(d['labels'])} points right.")
