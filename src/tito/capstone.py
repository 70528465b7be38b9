"""The capstone (module 20): plain functions behind `tito capstone start / submit / tasks`.

    started = start(ws, "mnist")          # capstone/project.py + project.ipynb + README.md
    result = submit(ws, quick=False)      # re-runs it in clean processes, measures, decides
    result.accepted, result.reasons       # refused: every reason, each saying by how much
    result.doc                            # what capstone/submissions/<time>/submission.json holds
    rehearse(train, load, "mnist")        # in a notebook: the same measurements, in-process

The learner's project file (`capstone/project.py`, paired with its notebook) defines

    TASK = "mnist"                        # a key of TASKS
    DESCRIPTION = "..."                   # what the optimised system is, in words
    CLAIMS = {"baseline": {"accuracy": 0.9791, "size_bytes": 941250}, "optimised": {...}}
    QUICK_CLAIMS = {...}                  # optional: the same for `submit --quick`
    def train(images, labels, seed, seconds, out): ...   # saves out/baseline/, out/optimised/
    def load(folder): ... -> predict(images) -> scores (n, classes) or labels (n,)

Submitting never takes a number from the learner's code. TASK, DESCRIPTION and the claims are read
from the file as literals (nothing of it runs in tito's process). Then two fresh processes run on
the workspace's own `tinytorch` (the import origin is checked first, as milestone submits do):

1. **train**: the task's TRAINING split, tinytorch's and NumPy's generators seeded with the
   task's fixed seed, `train(...)` told the seconds left of the budget; stopped at the budget plus
   a margin. Its wall time - the whole process, measured by tito's clock - is what the budget
   counts.
2. **predict**: each saved system rebuilt by `load(folder)` from its files alone, its predictions
   on the task's TEST images saved; latency (one image per query) and throughput timed by tito.

Then, in tito's process: accuracy from the saved predictions against labels tito loads itself,
the stored size from the system folders' files (links refused), the budget, the claims against
the tolerances, and `submission.json` (system description from module 19's
`system_description()`, both systems' metrics, the sha256 of the learner's files, seed, budget,
verdict) written atomically. A full accepted submission is also `capstone/submission.json` and is
recorded in `.tito/milestones.json` under submissions/"capstone" (tito.state).
"""

from __future__ import annotations

import ast
import hashlib
import json
import runpy
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tito import notebooks, registry, state
from tito.errors import TitoError

STARTERS = Path(__file__).resolve().parent / "capstone_starters"
SYSTEMS = ("baseline", "optimised")
TOLERANCE = {"accuracy": 0.005, "size_bytes": 1024}  # 50 of 10,000 test images; 1 KB of file
RECORD_KEY = "capstone"  # the key in .tito/milestones.json's "submissions"
RUN_ENV = "TITO_CAPSTONE"  # set to the phase ("train"/"predict") in the runs' processes


@dataclass(frozen=True)
class Task:
    """One capstone task: a data set, its budget and its quick rehearsal."""

    name: str  # "mnist": TASK in the project file, the starter capstone_starters/<name>.py
    title: str
    dataset: str  # the tinytorch.datasets loader: load_<dataset>(split)
    wall_s: float  # the training process, start-up to exit
    max_bytes: int  # the stored optimised system
    seed: int  # the fixed seed of every submission
    quick_wall_s: float
    quick_train: int  # training images in a quick rehearsal (the first n)
    quick_test: int  # test images scored in a quick rehearsal (the first n)
    classes: int = 10
    # the starter: capstone_starters/<starter>.py (default: <name>.py), with `edits` (old, new) made
    # in it - a task on the same kind of data shares another task's starter instead of copying it
    starter: str = ""
    edits: tuple[tuple[str, str], ...] = ()

    def wall(self, quick: bool) -> float:
        return self.quick_wall_s if quick else self.wall_s

    @property
    def evaluation(self) -> str:
        return f"{self.dataset}-test"


TASKS = {t.name: t for t in (
    Task("mnist", "MNIST digits", "mnist",
         wall_s=600, max_bytes=1_000_000, seed=20, quick_wall_s=120, quick_train=10_000,
         quick_test=2_000),
    Task("fashion-mnist", "Fashion-MNIST clothes", "fashion_mnist",
         wall_s=600, max_bytes=1_000_000, seed=20, quick_wall_s=120, quick_train=10_000,
         quick_test=2_000, starter="mnist", edits=(
             ("the best MNIST system", "the best Fashion-MNIST system"),
             ("classify the 10,000 MNIST test digits as well\n# as you can, with a training process that finishes "
              "within **600 seconds**",
              "classify the 10,000 Fashion-MNIST test images\n# (clothes and shoes) as well as you can, with a "
              "training process that finishes within **600\n# seconds**"),
             ('| `TASK` | `"mnist"` |', '| `TASK` | `"fashion-mnist"` |'),
             ("the raw uint8 digits", "the raw uint8 images"),
             ("# MNIST. The second imports", "# Fashion-MNIST. The second imports"),
             ('"download", "mnist"]', '"download", "fashion-mnist"]'),
             ('\nTASK = "mnist"', '\nTASK = "fashion-mnist"'),
             ("standardised with MNIST's mean\n# and standard",
              "standardised with Fashion-MNIST's\n# mean and standard"),
             ("MEAN, STD = 0.1307, 0.3081", "MEAN, STD = 0.2860, 0.3530"),  # Fashion-MNIST's pixel statistics
         )),
)}


def margin_s(wall_s: float) -> float:
    """How far past its budget a run may go before it is stopped (it is refused either way)."""
    return max(15.0, 0.1 * wall_s)


def get_task(name: str) -> Task:
    task = TASKS.get(str(name).strip().lower())
    if task is None:
        raise TitoError(f"unknown capstone task {name!r}", f"the tasks: {', '.join(TASKS)} "
                        "(`tito capstone tasks`)")
    return task


# ---------------------------------------------------------------------------------------------
# Where things are, and whether the capstone is open
# ---------------------------------------------------------------------------------------------
def folder(ws) -> Path:
    return ws.root / "capstone"


def project_file(ws) -> Path:
    return folder(ws) / "project.py"


def backups_dir(ws) -> Path:
    return ws.state / "backups" / "capstone"


def required_modules() -> list[registry.Module]:
    """Module 20 and everything it builds on (its prerequisites, transitively)."""
    capstone = registry.get_module("20")
    return [*registry.all_prereqs(capstone), capstone]


def locked_error(completed: set[str]) -> TitoError | None:
    """None when every module the capstone needs is complete; else the error naming them."""
    capstone = registry.get_module("20")
    if not capstone.built:
        return TitoError("the capstone (module 20) is not built yet in this release")
    missing = [m for m in required_modules() if m.id not in completed]
    if not missing:
        return None
    nxt = registry.next_module(completed) or missing[0]
    return TitoError(f"the capstone is locked: it needs module(s) "
                     f"{registry.compact_ids(m.id for m in missing)} complete",
                     f"next: `tito module start {nxt.id}`")


# ---------------------------------------------------------------------------------------------
# start
# ---------------------------------------------------------------------------------------------
@dataclass
class Started:
    py: Path
    notebook: Path
    readme: Path
    task: Task
    created: bool  # False: the project was there already (nothing written)
    backups: list[Path] = field(default_factory=list)


def starter_text(task: Task) -> str:
    path = STARTERS / f"{task.starter or task.name}.py"
    if not path.is_file():
        raise TitoError(f"capstone task {task.name!r} has no starter in this release")
    text = path.read_text(encoding="utf-8")
    for old, new in task.edits:
        if text.count(old) != 1:  # the shared starter changed under the edit: fail here, not in a workspace
            raise RuntimeError(f"capstone task {task.name}: {old!r} occurs {text.count(old)} times in "
                               f"{path.name}")
        text = text.replace(old, new)
    return text


def start(ws, task: str = "mnist", reset: bool = False) -> Started:
    """Write the project pair and its README; never overwrites (reset backs the old files up)."""
    t = get_task(task)
    err = locked_error(ws.completed())
    if err:
        raise err
    py = project_file(ws)
    nb, readme = notebooks.notebook_path(py), folder(ws) / "README.md"
    backups: list[Path] = []
    if py.exists() or nb.exists():
        if not reset:
            return Started(py, nb, readme, read_project(ws).get("task") or t, created=False)
        if py.exists():
            notebooks.sync(py, backups_dir(ws))  # an edit made in the notebook is kept too
        backups = [notebooks.backup_copy(p, backups_dir(ws)) for p in (py, nb) if p.exists()]
    folder(ws).mkdir(parents=True, exist_ok=True)
    notebooks.write_pair(py, starter_text(t))
    state.write_atomic(readme, readme_text(t))
    return Started(py, nb, readme, t, created=True, backups=backups)


def readme_text(task: Task) -> str:
    return f"""# Capstone: {task.title}

Open `project.ipynb` (Jupyter, VS Code or Colab) or edit `project.py`: tito keeps the two in step.
Build the best system you can for the task within its budget, then let tito re-run it.

## The budget

| | full submission | `--quick` rehearsal |
|---|---|---|
| wall time of the training process (start-up, data, training, saving) | {task.wall_s:g} s | {task.quick_wall_s:g} s |
| stored size of the optimised system (every file in its folder) | {task.max_bytes:,} bytes | {task.max_bytes:,} bytes |
| training images | all | the first {task.quick_train:,} |
| test images scored | all | the first {task.quick_test:,} |

The seed is fixed: {task.seed}. A run is stopped {margin_s(task.wall_s):g} s after its budget
({margin_s(task.quick_wall_s):g} s in a rehearsal) and refused if it went over at all.

## What `tito capstone submit` does

1. Reads `TASK`, `DESCRIPTION`, `CLAIMS` (and `QUICK_CLAIMS`) from project.py as written - they
   must be literals.
2. Runs `train(images, labels, seed, seconds, out)` in a fresh process on your `tinytorch`, on the
   training split only; it must save `out/baseline/` and `out/optimised/`.
3. In another fresh process, rebuilds each system with `load(folder)` from its files alone and
   predicts the test images; tito times one-image queries and the whole pass.
4. Measures the accuracy from those predictions against the test labels it loads itself, the
   stored size from the files, and compares your claims (tolerance: accuracy
   {TOLERANCE['accuracy']}, size {TOLERANCE['size_bytes']} bytes). Latency is measured and
   reported, never claimed.
5. Writes `submissions/<time>/submission.json` (accepted or refused, with every reason); an
   accepted full submission is also `capstone/submission.json` and is recorded in your progress.

## Commands

    tito capstone submit --quick    the rehearsal (never recorded)
    tito capstone submit            the submission
    tito capstone tasks             the tasks and their budgets
    tito capstone start --reset     a fresh starter (yours is backed up first)
"""


# ---------------------------------------------------------------------------------------------
# The project file, read without running it
# ---------------------------------------------------------------------------------------------
_LITERALS = ("TASK", "DESCRIPTION", "CLAIMS", "QUICK_CLAIMS")


def read_literals(py: Path) -> dict:
    """The top-level assignments TASK, DESCRIPTION, CLAIMS, QUICK_CLAIMS of a project file, as
    literals (the last assignment wins); TitoError when one is not a literal."""
    try:
        tree = ast.parse(py.read_text(encoding="utf-8"), str(py))
    except SyntaxError as e:
        raise TitoError(f"{py.name} line {e.lineno}: {e.msg}", "fix the syntax error first") from None
    found = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else []
        for t in targets:
            if isinstance(t, ast.Name) and t.id in _LITERALS:
                try:
                    found[t.id] = ast.literal_eval(node.value)
                except ValueError:
                    raise TitoError(f"{py.name} line {node.lineno}: {t.id} must be written out as a "
                                    "literal (numbers, strings, dicts), not computed",
                                    "tito reads it without running your code") from None
    return found


def _claims(raw, name: str) -> dict:
    if raw is None:
        return {}
    ok = isinstance(raw, dict) and all(isinstance(v, dict) and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) for x in v.values()) for v in raw.values())
    if not ok:
        raise TitoError(f"{name} must look like {{'baseline': {{'accuracy': 0.97, 'size_bytes': 940000}}, "
                        "'optimised': {...}}", "numbers only, as your own run measured them")
    return {str(s): {str(k): float(x) for k, x in v.items()} for s, v in raw.items()}


def read_project(ws) -> dict:
    """{"task": Task | None, "description": str, "claims": {...}, "quick_claims": {...} | None}."""
    lits = read_literals(project_file(ws))
    task = TASKS.get(str(lits.get("TASK", "")).strip().lower())
    return {"task": task, "task_text": lits.get("TASK"), "description": lits.get("DESCRIPTION"),
            "claims": _claims(lits.get("CLAIMS"), "CLAIMS"),
            "quick_claims": None if lits.get("QUICK_CLAIMS") is None else _claims(lits["QUICK_CLAIMS"], "QUICK_CLAIMS")}


# ---------------------------------------------------------------------------------------------
# What runs inside the two processes (and, for rehearse, in the notebook's kernel)
# ---------------------------------------------------------------------------------------------
def _load_split(task: Task, split: str):
    import tinytorch.datasets as ds  # the learner's copy of the support file: identical

    return getattr(ds, f"load_{task.dataset}")(split)


def train_phase(train, task: Task, quick: bool, seed: int, deadline: float, out: Path) -> dict:
    """Seed tinytorch's and NumPy's global generators, then train on the training split; `seconds`
    is what is left of the budget (deadline: a time.monotonic() reading)."""
    from tinytorch.tensor import manual_seed

    images, labels = _load_split(task, "train")
    if quick:
        images, labels = images[:task.quick_train], labels[:task.quick_train]
    manual_seed(seed)
    np.random.seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    seconds = max(0.0, deadline - time.monotonic())
    t0 = time.monotonic()
    train(images=images, labels=labels, seed=seed, seconds=seconds, out=out)
    return {"seconds_given": round(seconds, 3), "train_s": round(time.monotonic() - t0, 3),
            "train_images": int(len(labels))}


def _labels_of(scores, n: int, name: str) -> np.ndarray:
    a = np.asarray(getattr(scores, "data", scores))
    if a.ndim == 2 and len(a) == n:
        return a.argmax(axis=1).astype(np.int64)
    if a.ndim == 1 and len(a) == n:
        return a.astype(np.int64)
    raise ValueError(f"the predict function of system {name!r} returned shape {a.shape} for {n} "
                     f"images; expected scores ({n}, classes) or labels ({n},)")


def _timed(predict, images: np.ndarray, name: str, batch: int = 256, queries: int = 200,
           warmup: int = 20) -> tuple[np.ndarray, dict]:
    """The predictions of one timed pass over `images` (batches of `batch`, after one warm-up
    batch), and one-image query latencies (after `warmup` untimed queries)."""
    n = len(images)
    predict(images[:batch])
    preds, t0 = [], time.perf_counter()
    for s in range(0, n, batch):
        rows = images[s:s + batch]
        preds.append(_labels_of(predict(rows), len(rows), name))
    seconds = time.perf_counter() - t0
    for i in range(warmup):
        predict(images[i % n:i % n + 1])
    lat = np.empty(queries)
    for i in range(queries):
        one = images[i % n:i % n + 1]
        q0 = time.perf_counter()
        predict(one)
        lat[i] = (time.perf_counter() - q0) * 1e3
    p50, p90, p99 = np.percentile(lat, [50, 90, 99])
    return np.concatenate(preds), {"p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99),
                                   "throughput": n / seconds, "batch": batch, "queries": queries}


def predict_phase(load, task: Task, quick: bool, systems_dir: Path, pred_dir: Path) -> dict:
    """Each system that train saved: load(folder) -> predict; its test predictions saved as
    pred_dir/<name>.npy; timings; and the machine (module 19's system_description)."""
    images = _load_split(task, "test")[0]
    if quick:
        images = images[:task.quick_test]
    pred_dir.mkdir(parents=True, exist_ok=True)
    timings = {}
    for name in SYSTEMS:
        where = systems_dir / name
        if not where.is_dir():
            continue
        predict = load(where)
        labels, timings[name] = _timed(predict, images, name)
        np.save(pred_dir / f"{name}.npy", labels)
    from tinytorch.benchmarking import system_description

    return {"timings": timings, "system": system_description(), "test_images": int(len(images))}


def _child_main(argv: list[str]) -> int:
    """python -m tito.capstone PHASE RUN_JSON: one phase on the workspace's tinytorch."""
    phase, spec = argv[0], json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    sys.path.insert(0, spec["root"])
    sys.path.insert(1, str(Path(spec["project"]).parent))  # the learner's helper modules
    import tinytorch

    where = Path(list(tinytorch.__path__)[0]).resolve()
    if where != Path(spec["package"]).resolve():
        print(f"tinytorch was imported from {where}, expected {spec['package']}", file=sys.stderr)
        return 3
    ns = runpy.run_path(spec["project"], run_name="capstone_project")
    for fn in ("train", "load"):
        if not callable(ns.get(fn)):
            raise NameError(f"{Path(spec['project']).name} defines no function {fn}()")
    task, out = TASKS[spec["task"]], Path(spec["out"])
    if phase == "train":
        doc = train_phase(ns["train"], task, spec["quick"], spec["seed"], spec["deadline"],
                          out / "systems")
    else:
        doc = predict_phase(ns["load"], task, spec["quick"], out / "systems", out / "predictions")
    state.write_atomic(out / f"{phase}.json", json.dumps(doc, indent=2) + "\n")
    return 0


# ---------------------------------------------------------------------------------------------
# Measuring in tito's process
# ---------------------------------------------------------------------------------------------
def folder_bytes(path: Path) -> int:
    """The bytes of every file under `path`; TitoError-worthy ValueError on a symbolic link."""
    total = 0
    for p in sorted(Path(path).rglob("*")):
        if p.is_symlink():
            raise ValueError(f"{p.name} in {Path(path).name}/ is a link: a system's files must be its own")
        if p.is_file():
            total += p.stat().st_size
    return total


def test_labels(task: Task, n: int) -> tuple[np.ndarray, str]:
    """The first n labels of the task's test split, loaded here (never the learner's), and a note
    when this machine's copy of the data set is not the official one."""
    import warnings

    from tito.data import datasets

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = np.asarray(getattr(datasets(), f"load_{task.dataset}")("test")[1])[:n]
    prov = datasets().last_provenance(task.dataset)
    return labels, "" if prov is None or prov.exact else f"a non-official copy of {task.dataset}"


def over_budget(wall_s: float, size_bytes: int | None, task: Task, wall_budget: float) -> list[str]:
    """Each limit broken, and by how much (the wording of module 20's budget_violations)."""
    out = []
    if wall_s > wall_budget:
        out.append(f"wall time {wall_s:.1f} s is over the budget of {wall_budget:g} s by "
                   f"{wall_s - wall_budget:.1f} s")
    if size_bytes is not None and size_bytes > task.max_bytes:
        out.append(f"stored size {size_bytes:,} bytes is over the budget of {task.max_bytes:,} by "
                   f"{size_bytes - task.max_bytes:,}")
    return out


def claim_problems(claimed: dict, measured: dict) -> list[str]:
    """Every claim the re-run did not reproduce within TOLERANCE, and every missing claim. (Module
    20's `unreproduced` teaches the same rule; tito's process never runs the learner's copy.)"""
    out = []
    for system in SYSTEMS:
        got, said = measured.get(system) or {}, claimed.get(system) or {}
        for metric, tol in TOLERANCE.items():
            c, m = said.get(metric), got.get(metric)
            if c is None:
                out.append(f"{system} {metric}: no claim")
            elif m is None:
                out.append(f"{system} {metric}: claimed {c:g}, but not measured")
            elif abs(c - m) > tol:
                out.append(f"{system} {metric}: claimed {c:g}, measured {m:g} (off by "
                           f"{abs(c - m):.4g}; tolerance {tol:g})")
    return out


def compare(baseline: dict, optimised: dict) -> dict:
    """Optimised against baseline; every ratio > 1 means better."""
    def ratio(a, b):
        return a / b if a and b else None

    if not (baseline and optimised):
        return {}
    return {"accuracy_delta": optimised["accuracy"] - baseline["accuracy"],
            "speedup_p50": ratio(baseline.get("p50_ms"), optimised.get("p50_ms")),
            "throughput_ratio": ratio(optimised.get("throughput"), baseline.get("throughput")),
            "size_ratio": ratio(baseline.get("size_bytes"), optimised.get("size_bytes"))}


def code_hashes(ws) -> dict:
    """sha256 of the learner's capstone code (every .py/.ipynb under capstone/ but its runs) and
    of each module file of their tinytorch package."""
    files = {}
    for p in sorted(folder(ws).rglob("*")):
        rel = p.relative_to(ws.root)
        if p.is_file() and p.suffix in (".py", ".ipynb") and rel.parts[1] not in ("submissions", "rehearsal") \
                and ".ipynb_checkpoints" not in rel.parts:
            files[str(rel)] = hashlib.sha256(p.read_bytes()).hexdigest()
    modules = {m.id: hashlib.sha256((ws.package / m.file_name).read_bytes()).hexdigest()
               for m in registry.MODULES if (ws.package / m.file_name).is_file()}
    return {"files": files, "modules": modules}


def measure(task: Task, quick: bool, systems_dir: Path, pred_dir: Path, timings: dict) -> tuple[dict, list[str], str]:
    """({system: metrics}, problems, data note) from the files the runs left: predictions scored
    against tito's labels, sizes from the system folders."""
    n = task.quick_test if quick else None
    labels, note = test_labels(task, n if n is not None else 10**9)
    measured, problems = {}, []
    for name in SYSTEMS:
        where = systems_dir / name
        if not where.is_dir():
            problems.append(f"train() saved no system {name!r} (no folder {name}/ in out)")
            continue
        try:
            size = folder_bytes(where)
        except ValueError as e:
            problems.append(f"system {name!r}: {e}")
            continue
        pred_file = pred_dir / f"{name}.npy"
        if not pred_file.is_file():
            problems.append(f"system {name!r}: no predictions (load() or its predict did not finish)")
            continue
        pred = np.load(pred_file, allow_pickle=False).reshape(-1)
        if len(pred) != len(labels):
            problems.append(f"system {name!r}: {len(pred):,} predictions for {len(labels):,} test images")
            continue
        measured[name] = {"accuracy": float(np.mean(pred == labels)), "size_bytes": size,
                          "test_images": int(len(labels)), **(timings.get(name) or {})}
    return measured, problems, note


# ---------------------------------------------------------------------------------------------
# submit
# ---------------------------------------------------------------------------------------------
@dataclass
class Phase:
    """How one process of the submission ended."""

    kind: str  # "ok" | "error" | "timeout" | "skipped"
    seconds: float = 0.0
    log: Path | None = None
    error: str = ""
    where: str = ""  # 'line 42 (in train): code'

    def to_dict(self) -> dict:
        return {"outcome": self.kind, "seconds": round(self.seconds, 3), "error": self.error,
                "where": self.where, "log": str(self.log) if self.log else None}


@dataclass
class Result:
    accepted: bool
    reasons: list[str]  # why it was refused (empty when accepted)
    notes: list[str]  # what the learner should know either way
    doc: dict  # the submission file
    out_dir: Path
    quick: bool
    train: Phase
    predict: Phase
    sync_note: str | None = None
    recorded: dict | None = None  # the record in .tito/milestones.json (full, accepted only)

    @property
    def file(self) -> Path:
        return self.out_dir / "submission.json"


def _run_phase(phase: str, spec_file: Path, out_dir: Path, py: Path, limit_s: float) -> Phase:
    """One child process, its own process group, output to <phase>.log, stopped at the limit."""
    from tito import milestone_run as mr
    from tito.milestone_work import crash_site

    log = out_dir / f"{phase}.log"
    env = dict(mr._env(), **{RUN_ENV: phase})
    cmd = [sys.executable, "-m", "tito.capstone", phase, str(spec_file)]
    t0 = time.monotonic()
    with open(log, "w", encoding="utf-8", errors="replace") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=out_dir,
                                start_new_session=True)
        try:
            proc.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            mr._stop(proc)
            return Phase("timeout", time.monotonic() - t0, log,
                         error=f"stopped at its time limit of {limit_s:.0f} s")
        except BaseException:  # Ctrl-C: never leave the learner's code running
            mr._stop(proc)
            raise
    seconds = time.monotonic() - t0
    if proc.returncode == 0 and (out_dir / f"{phase}.json").is_file():
        return Phase("ok", seconds, log)
    text = log.read_text(encoding="utf-8", errors="replace")
    error, where = crash_site(text, py)
    return Phase("error", seconds, log, error=error or f"exit code {proc.returncode}", where=where)


def _crash_reason(what: str, ph: Phase, py: Path) -> str:
    """'train() raised ZeroDivisionError: division by zero at project.py line 12 (in train): 1 / 0'"""
    return f"{what} raised {ph.error}" + (f" at {py.name} {ph.where}" if ph.where else "")


def submit(ws, quick: bool = False, budget_s: float | None = None,
           predict_limit_s: float | None = None) -> Result:
    """Re-run the learner's project from clean processes and decide; see the module docstring.

    `budget_s` lowers the wall-time budget (never raises it); the submission records the budget
    it ran under."""
    from tito.milestone_work import _fresh  # a new folder, never an old one reused

    err = locked_error(ws.completed())
    if err:
        raise err
    py = project_file(ws)
    if not (py.exists() or notebooks.notebook_path(py).exists()):
        raise TitoError("no capstone project in this workspace yet", "start it: `tito capstone start`")
    synced = notebooks.sync(py, backups_dir(ws))
    sync_note = synced.note(str(synced.read.relative_to(ws.root)))
    project = read_project(ws)
    task = project["task"]
    if task is None:
        raise TitoError(f"TASK = {project['task_text']!r} in {py.name} is not a capstone task",
                        f"the tasks: {', '.join(TASKS)}")
    description = project["description"]
    if not isinstance(description, str) or len(description.strip()) < 20:
        raise TitoError(f"DESCRIPTION in {py.name} is empty or too short",
                        "say in a sentence or two what your optimised system is and what you changed")
    wall = task.wall(quick)
    if budget_s is not None:
        if not 0 < budget_s <= wall:
            raise TitoError(f"--budget-s {budget_s:g}: a submission may only lower the budget "
                            f"(0 < budget <= {wall:g} s)")
        wall = float(budget_s)
    limit = wall + margin_s(wall)
    claims = project["quick_claims"] if quick else project["claims"]
    out_dir = _fresh(folder(ws) / "submissions" / (time.strftime("%Y%m%d-%H%M%S") + ("-quick" if quick else "")))
    spec = {"root": str(ws.root), "package": str(ws.package), "project": str(py), "task": task.name,
            "quick": quick, "seed": task.seed, "out": str(out_dir)}
    spec_file = out_dir / "run.json"
    reasons, notes = [], []
    started = time.monotonic()
    state.write_atomic(spec_file, json.dumps({**spec, "deadline": started + wall}) + "\n")
    train = _run_phase("train", spec_file, out_dir, py, limit)
    wall_s = train.seconds
    predict = Phase("skipped")
    measured, timings, system = {}, {}, {}
    if train.kind == "timeout":
        reasons.append(f"the training process was {train.error} (the budget {wall:g} s plus "
                       f"{margin_s(wall):g} s)")
    elif train.kind == "error":
        reasons.append(_crash_reason("train()", train, py))
    else:
        predict = _run_phase("predict", spec_file, out_dir, py,
                             predict_limit_s or (300.0 if quick else 900.0))
        if predict.kind == "timeout":
            reasons.append(f"the predict process was {predict.error}")
        elif predict.kind == "error":
            reasons.append(_crash_reason("load() or its predict", predict, py))
        else:
            pdoc = json.loads((out_dir / "predict.json").read_text(encoding="utf-8"))
            timings, system = pdoc.get("timings", {}), pdoc.get("system", {})
        measured, problems, data_note = measure(task, quick, out_dir / "systems", out_dir / "predictions",
                                                timings)
        reasons += [p for p in problems if predict.kind == "ok" or "no system" in p]
        if data_note:
            notes.append(f"accuracy measured on {data_note}")
    size = (measured.get("optimised") or {}).get("size_bytes")
    reasons += over_budget(wall_s, size, task, wall)
    if claims is None:
        notes.append("no QUICK_CLAIMS in the project: a rehearsal's numbers were not compared")
    elif measured:
        reasons += claim_problems(claims, measured)
    accepted = not reasons
    doc = {
        "task": task.name, "title": task.title, "quick": quick, "seed": task.seed,
        "verdict": "accepted" if accepted else "refused", "reasons": reasons, "notes": notes,
        "description": description.strip(),
        "budget": {"wall_s": wall, "max_bytes": task.max_bytes, "official_wall_s": task.wall(quick),
                   "time_limit_s": limit},
        "wall_s": round(wall_s, 3),
        "baseline": measured.get("baseline"), "optimised": measured.get("optimised"),
        "comparison": compare(measured.get("baseline"), measured.get("optimised")),
        "claims": claims, "tolerance": TOLERANCE,
        "evaluation": {"data": task.evaluation, "test_images": (measured.get("optimised") or measured.get("baseline")
                                                                or {}).get("test_images")},
        "system": system,
        "runs": {"train": train.to_dict(), "predict": predict.to_dict()},
        "code": code_hashes(ws),
        "submitted_at": state.now(), "dir": str(out_dir),
    }
    text = json.dumps(doc, indent=2) + "\n"
    state.write_atomic(out_dir / "submission.json", text)
    result = Result(accepted, reasons, notes, doc, out_dir, quick, train, predict, sync_note)
    if accepted and not quick:
        state.write_atomic(folder(ws) / "submission.json", text)
        result.recorded = state.record_submission(ws.root, RECORD_KEY, {
            "task": task.name, "verdict": "accepted", "seed": task.seed, "budget": doc["budget"],
            "baseline": doc["baseline"], "optimised": doc["optimised"], "code": doc["code"],
            "file": str(folder(ws) / "submission.json"), "dir": str(out_dir)})
    return result


def submissions(ws) -> list[dict]:
    """The recorded (accepted, full) capstone submissions, oldest first."""
    return state.get_submissions(ws.root).get(RECORD_KEY, [])


# ---------------------------------------------------------------------------------------------
# rehearse: in the notebook, the same measurements without the clean processes
# ---------------------------------------------------------------------------------------------
def rehearse(train, load, task: str = "mnist", quick: bool = True, out: str | Path = "rehearsal",
             show: bool = True) -> dict:
    """Train, save, reload and measure in this process, as submit does in two; prints the numbers
    to copy into CLAIMS (quick=False) or QUICK_CLAIMS (quick=True). Returns them with the wall time."""
    import shutil

    t = get_task(task)
    out = Path(out).resolve()
    for old in (out / "systems", out / "predictions"):  # the last rehearsal's, nothing else
        if old.is_dir():
            shutil.rmtree(old)
    started = time.monotonic()
    info = train_phase(train, t, quick, t.seed, started + t.wall(quick), out / "systems")
    wall_s = time.monotonic() - started
    pdoc = predict_phase(load, t, quick, out / "systems", out / "predictions")
    measured, problems, _ = measure(t, quick, out / "systems", out / "predictions", pdoc["timings"])
    claims = {n: {"accuracy": round(m["accuracy"], 4), "size_bytes": m["size_bytes"]} for n, m in measured.items()}
    problems += over_budget(wall_s, (measured.get("optimised") or {}).get("size_bytes"), t, t.wall(quick))
    if show:
        print(f"{'quick rehearsal' if quick else 'full run'} of {t.name}: trained in {info['train_s']:.1f} s "
              f"(the budget {t.wall(quick):g} s counts start-up and data too: here {wall_s:.1f} s in all)")
        for n, m in measured.items():
            print(f"  {n:9s} accuracy {m['accuracy']:.4f}  {m['size_bytes']:,} bytes  p50 {m['p50_ms']:.3f} ms  "
                  f"{m['throughput']:,.0f} images/s")
        for p in problems:
            print("  problem:", p)
        print(f"{'QUICK_CLAIMS' if quick else 'CLAIMS'} = {json.dumps(claims)}")
    return {"measured": measured, "claims": claims, "wall_s": wall_s, "problems": problems}


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
