"""Running a milestone, parent side: plain functions the `tito milestone` commands call.

    target = resolve_target(reference=False, workspace=None)      # whose tinytorch runs
    parts, notes = plan(ms, target, part=None, skip_checks=False) # refuses coming/locked ones
    imports = check_imports(target, modules)                       # each learner module ✓/✗
    out_dir = new_run_dir(target, ms) / "part1"                    # runs/01_perceptron/<time>/
    outcome = run_part(target, ms, part, quick, seed, out_dir, limit_s, view)
    outcome.results                                                # every victory condition ✓/✗
    record(target, ms, part, outcome)                              # only when every one holds

The milestone itself runs in a subprocess (`python -m tito.milestones.runner`) on the workspace's
`tinytorch` package, so the learner's code never runs inside this process: a crash, a hang or a
Ctrl-C there cannot damage the workspace state, and nothing is recorded unless the run reports
metrics that meet every condition.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from tito import registry, state
from tito.errors import TitoError
from tito.registry import Milestone, Module, Part, Result
from tito.workspace import Sources, Workspace, find_workspace, sha256

LOCKED, READY, COMPLETE, COMING = "LOCKED", "READY TO RUN", "COMPLETE", "COMING"

# Which modules to suspect when a condition fails (by module name; filtered to the part's modules).
CONDITION_SUSPECTS = {
    "loss_drop": ("losses", "autograd", "optimizers", "layers"),
    "grads_ok": ("autograd", "layers", "losses", "activations"),
    "grads_match": ("autograd", "activations", "losses", "layers"),
    "weights_changed": ("optimizers", "training", "layers"),
}
ACCURACY_SUSPECTS = ("layers", "activations", "tensor", "autograd", "optimizers", "training")


# ---------------------------------------------------------------------------------------------
# Where a run happens
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """Whose tinytorch runs, and where the run's files go."""

    package: Path  # the tinytorch package folder the subprocess must import
    ws: Workspace | None  # None: --reference outside a workspace (records nothing)
    reference: bool

    @property
    def records(self) -> bool:
        """Achievements are the learner's own code only: reference runs never record."""
        return self.ws is not None and not self.reference

    def completed(self) -> set[str]:
        return self.ws.completed() if self.ws else set()

    def runs_dir(self) -> Path:
        if self.ws is not None:
            return self.ws.root / "runs"
        import platformdirs

        return Path(platformdirs.user_cache_dir("tinytorch")) / "runs"


def resolve_target(reference: bool = False, workspace: str | Path | None = None) -> Target:
    if reference:
        try:
            ws = find_workspace(workspace)
        except TitoError:
            if workspace:
                raise
            ws = None
        return Target(Sources.installed().reference, ws, True)
    ws = find_workspace(workspace)
    return Target(ws.package, ws, False)


def new_run_dir(target: Target, ms: Milestone) -> Path:
    """A fresh folder for this run: runs/01_perceptron/20250101-120000[-reference][-2]/."""
    tag = "-reference" if target.reference else ""
    base = target.runs_dir() / f"{ms.id}_{ms.slug}" / f"{time.strftime('%Y%m%d-%H%M%S')}{tag}"
    d, n = base, 1
    while True:
        try:
            d.mkdir(parents=True)
            return d
        except FileExistsError:  # two runs in the same second
            n += 1
            d = base.with_name(f"{base.name}-{n}")


# ---------------------------------------------------------------------------------------------
# Status: coming / locked / ready / complete, from the registry and the recorded achievements
# ---------------------------------------------------------------------------------------------
def achievements(target: Target) -> dict:
    return state.get_achievements(target.ws.root) if target.ws else {}


def part_achieved(ach: dict, ms: Milestone, part: Part) -> bool:
    return bool(ach.get(ms.id, {}).get(str(part.number)))


def coming_modules(ms: Milestone, part: Part | None = None) -> list[Module]:
    """The modules a part (default: the first) needs that are not built yet. While there are
    any, the part is "coming": nobody can run it, not even on the reference framework."""
    part = part or ms.parts[0]
    return [m for m in map(registry.get_module, ms.modules_for(part)) if not m.built]


def milestone_status(ms: Milestone, completed: set[str], ach: dict) -> str:
    if coming_modules(ms):
        return COMING
    if all(part_achieved(ach, ms, p) for p in ms.parts):
        return COMPLETE
    if registry.part_runnable(ms, ms.parts[0], completed):
        return READY
    return LOCKED


def module_to_start(ms: Milestone, part: Part, completed: set[str]) -> Module | None:
    """The module to work on next for a locked part: its first missing module or, while that
    one's own prerequisites are not complete, the first of those (they come in course order, so
    the first has none missing). None if nothing is missing."""
    missing = registry.milestone_missing(ms, completed, part)
    if not missing:
        return None
    return (registry.missing_prereqs(missing[0], completed) or missing)[0]


def unlock_note(ms: Milestone, completed: set[str], ach: dict) -> str:
    """What the learner needs for the next step of this milestone, in one line."""
    if coming_modules(ms):
        return f"modules {registry.compact_ids(m.id for m in coming_modules(ms))} not built yet"
    if not registry.part_runnable(ms, ms.parts[0], completed):  # locked: what unlocks it
        base = registry.milestone_missing(ms, completed)
        note = "needs " + registry.compact_ids(m.id for m in base)
        for p in ms.parts[1:]:
            extra = [m.id for m in registry.milestone_missing(ms, completed, p) if m not in base]
            if extra:
                note += f"; part {p.number} also {registry.compact_ids(extra)}"
        return note
    notes = []
    for p in ms.parts:
        if part_achieved(ach, ms, p):
            notes.append(f"part {p.number} ✓")
        elif coming_modules(ms, p):
            notes.append(f"part {p.number} coming")
        elif registry.part_runnable(ms, p, completed):
            notes.append(f"part {p.number} ready")
        else:
            missing = registry.milestone_missing(ms, completed, p)
            notes.append(f"part {p.number} needs {registry.compact_ids(m.id for m in missing)}")
    if len(ms.parts) == 1:
        return notes[0].replace("part 1 ", "")
    if all(n.endswith(" ready") for n in notes):
        return f"ready, {len(notes)} parts"
    return ", ".join(notes)


def best_values(ms: Milestone, ach: dict) -> dict[tuple[int, str], float]:
    """The best recorded value of each condition's metric, per part."""
    best = {}
    for p in ms.parts:
        for rec in ach.get(ms.id, {}).get(str(p.number), []):
            for c in p.conditions:
                v = rec.get("metrics", {}).get(c.metric)
                if isinstance(v, (int, float)):
                    old = best.get((p.number, c.metric))
                    better = max if c.op in (">=", ">", "==") else min
                    best[(p.number, c.metric)] = float(v) if old is None else better(old, float(v))
    return best


def next_milestone(completed: set[str], ach: dict) -> tuple[Milestone, Part] | None:
    """The first milestone part not achieved yet (runnable or locked; never a coming one)."""
    for ms in registry.MILESTONES:
        for p in ms.parts:
            if not part_achieved(ach, ms, p) and not coming_modules(ms, p):
                return ms, p
    return None


def next_step_text(completed: set[str], ach: dict) -> str:
    """One sentence, commands in backticks (tito.ui.say shows them as commands)."""
    nxt = next_milestone(completed, ach)
    coming = [ms.id for ms in registry.MILESTONES if coming_modules(ms)]
    if nxt is None:
        if coming:
            which = (f"milestone {coming[0]} is" if len(coming) == 1 else
                     f"milestones {', '.join(coming)} are")
            return f"every milestone built so far is complete - {which} coming in a later release"
        return "every milestone is complete - you have rerun the history of ML on your own code"
    ms, p = nxt
    label = f"milestone {ms.id} {ms.title}" + (f", part {p.number}" if len(ms.parts) > 1 else "")
    if registry.part_runnable(ms, p, completed):
        cmd = f"tito milestone run {ms.id}" + (f" --part {p.number}" if p.number > 1 else "")
        return f"{label} is ready: `{cmd}`"
    missing = registry.milestone_missing(ms, completed, p)
    return (f"{label} unlocks after module(s) {registry.compact_ids(m.id for m in missing)}: "
            f"next `tito module start {module_to_start(ms, p, completed).id}`")


# ---------------------------------------------------------------------------------------------
# Planning a run: which parts, and refusing coming and locked ones
# ---------------------------------------------------------------------------------------------
def _what(ms: Milestone, part: Part) -> str:
    return f"milestone {ms.id} ({ms.title})" + (f" part {part.number}" if part.number > 1 else "")


def _names(modules: list[Module]) -> str:
    """'04 losses, 05 dataloader': each id bound to its name by a no-break space, which
    tito.ui keeps on one line (and prints as a plain space)."""
    return ", ".join(f"{m.id}\xa0{m.name}" for m in modules)


def locked_error(ms: Milestone, part: Part, completed: set[str]) -> TitoError:
    missing = registry.milestone_missing(ms, completed, part)
    start = module_to_start(ms, part, completed)
    return TitoError(f"{_what(ms, part)} is locked: it needs module(s) {_names(missing)}",
                     f"next: `tito module start {start.id}`   (or pass `--skip-checks` to try "
                     "anyway)")


def built_parts(ms: Milestone, part: str | int | None = None) -> tuple[list[Part], list[str]]:
    """(the chosen parts that are built, notes on the others); TitoError if none is built."""
    chosen = [ms.part(part)] if part is not None else list(ms.parts)
    built = [p for p in chosen if not coming_modules(ms, p)]
    if not built:
        ids = registry.compact_ids(m.id for m in coming_modules(ms, chosen[0]))
        raise TitoError(f"{_what(ms, chosen[0])} is not built yet: it needs modules {ids}, "
                        "which come in a later release")
    notes = [f"part {p.number} ({p.name}) is not built yet" for p in chosen if p not in built]
    return built, notes


def plan(ms: Milestone, target: Target, part: str | int | None = None,
         skip_checks: bool = False) -> tuple[list[Part], list[str]]:
    """(parts to run, notes). Reference runs take every built part; a workspace only unlocked
    ones (every built one with skip_checks). Coming parts are never run."""
    done = target.completed()
    chosen, notes = built_parts(ms, part)
    if target.reference:
        return chosen, notes
    runnable = [p for p in chosen if registry.part_runnable(ms, p, done)]
    if skip_checks:
        for p in chosen:
            if p not in runnable:
                missing = registry.milestone_missing(ms, done, p)
                notes.append(f"part {p.number}: modules {registry.compact_ids(m.id for m in missing)} "
                             "are not complete (--skip-checks: running anyway)")
        return chosen, notes
    if not runnable:
        raise locked_error(ms, chosen[0], done)
    for p in chosen:
        if p not in runnable:
            missing = registry.milestone_missing(ms, done, p)
            notes.append(f"part {p.number} ({p.name}) unlocks after module(s) "
                         f"{registry.compact_ids(m.id for m in missing)}: next "
                         f"`tito module start {module_to_start(ms, p, done).id}`")
    return runnable, notes


# ---------------------------------------------------------------------------------------------
# The subprocess
# ---------------------------------------------------------------------------------------------
def _command(target: Target, *args: str) -> list[str]:
    return [sys.executable, "-m", "tito.milestones.runner", *args,
            "--root", str(target.package.parent), "--expect", str(target.package)]


def _env() -> dict:
    """The subprocess's environment. BLAS runs one thread unless the user chose otherwise: at these
    sizes a second OpenBLAS thread gains little when the machine is idle, and as soon as any other
    process is busy it waits for a descheduled helper (MNIST full run, same machine, same hour:
    22 s with one thread, 181 s with two)."""
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    return env


def check_imports(target: Target, modules: list[Module], timeout: float = 120) -> list[dict]:
    """Import each module from the target's package, in a subprocess: [{module, ok, error}]."""
    names = ",".join(m.name for m in modules)
    proc = subprocess.run(_command(target, "--check-imports", names), capture_output=True,
                          text=True, env=_env(), timeout=timeout, cwd=target.package.parent)
    for line in proc.stdout.splitlines():
        msg = _parse(line)
        if msg and "imports" in msg:
            by = {r["name"]: r for r in msg["imports"]}
            return [{"module": m, **by.get(m.name, {"ok": False, "error": "not checked"})}
                    for m in modules]
        if msg and "error" in msg:
            raise TitoError(msg["error"])
    raise TitoError("could not check the imports of your modules",
                    (proc.stderr.strip().splitlines() or ["(no output)"])[-1])


def _parse(line: str) -> dict | None:
    try:
        msg = json.loads(line)
    except ValueError:
        return None
    return msg if isinstance(msg, dict) else None


@dataclass
class Outcome:
    """What one part's run came back with."""

    kind: str  # "metrics" | "error" | "nan" | "data_error" | "timeout" | "crash"
    metrics: dict = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)
    message: str = ""
    detail: str = ""  # trimmed traceback, hint, or stderr tail
    module: str | None = None  # the culprit module key, when known
    suspects: list[str] = field(default_factory=list)
    seconds: float = 0.0
    out_dir: Path | None = None
    quick: bool = False
    seed: int = 0

    @property
    def achieved(self) -> bool:
        return self.kind == "metrics" and bool(self.results) and all(r.passed for r in self.results)

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if not r.passed]


class NullView:
    """Receives live events (the CLI's view draws them; tests may record them)."""

    def progress(self, fields: dict) -> None: ...

    def log(self, text: str) -> None: ...

    def warning(self, text: str) -> None: ...

    def code(self, text: str) -> None: ...


def _reader(stream, sink) -> None:
    for line in iter(stream.readline, ""):
        sink(line)
    stream.close()


def _stop(proc: subprocess.Popen) -> None:
    """Stop the subprocess and everything it started (its own process group)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError, AttributeError):
        proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, AttributeError):
            proc.kill()
        proc.wait()


def run_part(target: Target, ms: Milestone, part: Part, quick: bool, seed: int, out_dir: Path,
             limit_s: float | None = None, view=None, options: dict | None = None) -> Outcome:
    """Run one part in a subprocess with a time limit; evaluate its conditions from its metrics.

    `options` (JSON-able) reach the part as ctx.options, e.g. {"prompt": "ROMEO:"} for milestone 05.

    A KeyboardInterrupt stops the subprocess and propagates: the caller records nothing.
    """
    view = view or NullView()
    limit = float(limit_s or (part.quick_limit_s if quick else part.limit_s))
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [ms.id, str(part.number), "--seed", str(seed), "--out", str(out_dir)]
    if options:
        args += ["--options", json.dumps(options)]
    cmd = _command(target, *args, *(["--quick"] if quick else []))
    lines: queue.Queue = queue.Queue()
    errtail: deque = deque(maxlen=60)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(), cwd=out_dir, start_new_session=True)
    readers = [threading.Thread(target=_reader, args=(proc.stdout, lines.put), daemon=True),
               threading.Thread(target=_reader, args=(proc.stderr, errtail.append), daemon=True)]
    for r in readers:
        r.start()
    final: dict | None = None
    try:
        while True:
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                if time.monotonic() - t0 > limit:
                    _stop(proc)
                    message = f"the run was stopped at its time limit of {limit:.0f} s"
                    return Outcome("timeout", seconds=time.monotonic() - t0, out_dir=out_dir,
                                   quick=quick, seed=seed, message=message)
                if proc.poll() is not None and not readers[0].is_alive() and lines.empty():
                    break
                continue
            msg = _parse(line)
            if msg is None:
                continue
            if "progress" in msg:
                view.progress(msg["progress"])
            elif "log" in msg:
                view.log(msg["log"])
            elif "warning" in msg:
                view.warning(msg["warning"])
            elif "code" in msg:
                getattr(view, "code", view.log)(msg["code"])  # a view may not highlight
            else:
                final = msg
    except BaseException:  # Ctrl-C (or anything else): never leave the run behind
        _stop(proc)
        raise
    proc.wait()
    for r in readers:
        r.join(timeout=2)
    seconds = time.monotonic() - t0
    return _outcome(final, part, quick, seed, seconds, out_dir, "".join(errtail), proc.returncode)


def _outcome(final: dict | None, part: Part, quick: bool, seed: int, seconds: float,
             out_dir: Path, stderr: str, returncode: int) -> Outcome:
    base = dict(seconds=seconds, out_dir=out_dir, quick=quick, seed=seed)
    if final is None:
        tail = "\n".join(stderr.rstrip().splitlines()[-20:])
        return Outcome("crash", message=f"the milestone process ended (exit code {returncode}) "
                       "without reporting results", detail=tail, **base)
    if "metrics" in final:
        metrics = final["metrics"]
        results = registry.evaluate(part.conditions, metrics, quick=quick)
        return Outcome("metrics", metrics=metrics, results=results, plots=final.get("plots", []),
                       notes=final.get("notes", []), data=final.get("data", {}), **base)
    if "nan" in final:
        return Outcome("nan", message=final["nan"], suspects=final.get("suspects", []),
                       notes=final.get("notes", []), **base)
    if "data_error" in final:
        return Outcome("data_error", message=final["data_error"], detail=final.get("hint") or "",
                       **base)
    if "error" in final:
        return Outcome("error", message=final["error"], detail=final.get("traceback", ""),
                       module=final.get("module"), **base)
    return Outcome("crash", message=f"unexpected report from the milestone: {final}", **base)


# ---------------------------------------------------------------------------------------------
# After the run: culprits, the record
# ---------------------------------------------------------------------------------------------
def likely_culprits(ms: Milestone, part: Part, outcome: Outcome) -> list[Module]:
    """The modules to look at first, for a run that did not achieve the milestone."""
    used = set(ms.modules_for(part))
    names: list[str] = []
    if outcome.module:
        names.append(outcome.module)
    names += outcome.suspects
    for r in outcome.failed:
        names += CONDITION_SUSPECTS.get(r.condition.metric, ACCURACY_SUSPECTS)
    out: list[Module] = []
    for n in names:
        try:
            m = registry.get_module(n)
        except TitoError:
            continue
        if m.id in used and m not in out:
            out.append(m)
    return out[:3]


def module_hashes(target: Target, modules) -> dict[str, str]:
    """sha256 of each learner module file the run used (the exact code that achieved it)."""
    out = {}
    for mid in modules:
        f = target.package / registry.get_module(mid).file_name
        if f.exists():
            out[mid] = sha256(f)
    return out


def record(target: Target, ms: Milestone, part: Part, outcome: Outcome) -> dict | None:
    """Record an achievement: only for a learner's workspace, a full run, every condition met."""
    if not (target.records and outcome.achieved and not outcome.quick):
        return None
    rec = {
        "metrics": outcome.metrics,
        "seed": outcome.seed,
        "duration_s": round(outcome.seconds, 2),
        "modules": module_hashes(target, ms.modules_for(part)),
        "run_dir": str(outcome.out_dir),
        "data": outcome.data,
    }
    return state.record_achievement(target.ws.root, ms.id, part.number, rec)


def write_result(outcome: Outcome) -> None:
    """Add the evaluated conditions to the run's metrics.json (written by the subprocess)."""
    if outcome.out_dir is None:
        return
    path = outcome.out_dir / "metrics.json"
    doc = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    doc.update(outcome=outcome.kind, achieved=outcome.achieved, seconds=round(outcome.seconds, 2),
               conditions=[{"label": r.condition.label, "metric": r.condition.metric,
                            "op": r.condition.op, "target": r.target, "value": r.value,
                            "passed": r.passed} for r in outcome.results])
    if outcome.kind != "metrics":
        doc.update(message=outcome.message)
    state.write_atomic(path, json.dumps(doc, indent=2) + "\n")
