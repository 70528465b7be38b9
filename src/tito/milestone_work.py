"""Milestone notebooks: plain functions behind `tito milestone start / submit / demo`.

    started = start(ws, ms)                  # milestones/01_perceptron/perceptron.py + .ipynb + README
    sub = submit(ws, ms, quick=False)        # runs the notebook, measures every deliverable
    sub.lines                                # the rubric: weight, passed, evidence, what to fix
    sub.score, sub.recorded                  # recorded in .tito/milestones.json only on a full pass
    shows = demo(ws, ms)                     # predictions (or text) of the learner's last successful run

A milestone's notebook and its rubric are package data, found from the registry's id and slug:
`tito/milestone_starters/m01_perceptron.py` (the starter, jupytext percent format, TODO cells
tagged `todo="..."`) and `m01_perceptron.json` (the deliverables: weights and the measurements
that decide each line). A milestone gets a notebook by adding those two files.

Submitting never trusts a number the notebook claims. The notebook (through `Notebook`, below)
writes `results.json`, its plots, its models' weights and its predictions into a fresh
submission folder; submit then re-measures: accuracies from the saved predictions against labels
it loads or generates itself, plots decoded as PNG images, the memory profile fitted by a line,
each variant of the comparison checked for a training curve of its own. A language model is
measured from its saved weights: a subprocess rebuilds it on the learner's tinytorch and computes
its validation loss (or generates its answers) itself (`python -m tito.milestone_work measure`).

`save_weights` is called by the milestone scripts (`tito milestone run`): each run folder gets
`model.npz` (the state_dict) and `model.json` (how to rebuild the model), which `demo` loads in a
subprocess on the learner's own tinytorch (`python -m tito.milestone_work demo ...`).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tito import notebooks, registry, state
from tito.errors import TitoError
from tito.registry import Milestone, Module

STARTERS = Path(__file__).resolve().parent / "milestone_starters"
RESULTS_ENV, QUICK_ENV = "TITO_RESULTS", "TITO_QUICK"  # set by submit for the notebook's process
XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)  # (4, 2)
GATES = {"xor": np.array([0, 1, 1, 0]), "and": np.array([0, 0, 0, 1]), "or": np.array([0, 1, 1, 1])}
SEP = 10  # milestone 05's routing strings: digits 0-9, then this separator, then the answer
ROUTING_TASKS = {"copy": lambda d: d, "reverse": lambda d: d[:, ::-1]}
MEASURE_TIMEOUT_S = 600  # one re-measurement of a saved model (its subprocess)


# ---------------------------------------------------------------------------------------------
# The spec: a milestone's starter notebook and its rubric (package data)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Line:
    """One line of the rubric: a deliverable, its weight, and the measurements that decide it."""

    name: str  # "model", "training", ...
    weight: float  # percent of the score
    title: str  # what the learner delivers
    checks: tuple[dict, ...]  # {"kind": ..., params}: see CHECKS
    fix: str  # what to do when it fails


@dataclass(frozen=True)
class Spec:
    milestone: Milestone
    starter: Path  # m01_perceptron.py
    lines: tuple[Line, ...]
    limit_s: float
    quick_limit_s: float
    pass_mark: float  # the score at which a (full) submission is recorded
    evaluation: dict  # data sets tito evaluates predictions on (moons: n, seed, noise)
    notes: str  # extra text for the README


def spec_path(ms: Milestone) -> Path:
    return STARTERS / f"m{ms.id}_{ms.slug}.json"


def load_spec(ms: Milestone) -> Spec:
    """The milestone's starter and rubric; TitoError if the milestone has no notebook yet."""
    from tito import milestone_run as mr

    mr.built_parts(ms)  # a coming milestone: "not built yet", first
    path, starter = spec_path(ms), STARTERS / f"m{ms.id}_{ms.slug}.py"
    if not (path.is_file() and starter.is_file()):
        raise TitoError(f"milestone {ms.id} ({ms.title}) has no notebook yet",
                        f"run it on your code instead: `tito milestone run {ms.id}`")
    doc = json.loads(path.read_text(encoding="utf-8"))
    lines = tuple(Line(d["name"], float(d["weight"]), d["title"], tuple(d["checks"]), d["fix"])
                  for d in doc["deliverables"])
    if abs(sum(line.weight for line in lines) - 100) > 1e-9:
        raise ValueError(f"{path.name}: the weights add up to {sum(x.weight for x in lines)}, not 100")
    unknown = {c["kind"] for line in lines for c in line.checks} - set(CHECKS)
    if unknown:
        raise ValueError(f"{path.name}: unknown check kind(s) {sorted(unknown)}")
    return Spec(ms, starter, lines, float(doc["limit_s"]), float(doc["quick_limit_s"]),
                float(doc.get("pass_mark", 100)), doc.get("evaluation", {}), doc.get("notes", ""))


def notebook_modules(ms: Milestone) -> list[Module]:
    """Every module the notebook uses: the modules of every built part, in course order."""
    from tito import milestone_run as mr

    parts, _ = mr.built_parts(ms)
    ids = {mid for p in parts for mid in ms.modules_for(p)}
    return [m for m in registry.MODULES if m.id in ids]


def locked_error(ms: Milestone, completed: set[str]) -> TitoError | None:
    """None if every module the notebook needs is complete; else the error naming them."""
    from tito import milestone_run as mr

    missing = [m for m in notebook_modules(ms) if m.id not in completed]
    if not missing:
        return None
    parts, _ = mr.built_parts(ms)
    part = next(p for p in parts if any(m.id in ms.modules_for(p) for m in missing))
    start = mr.module_to_start(ms, part, completed)
    names = ", ".join(f"{m.id}\xa0{m.name}" for m in missing)
    return TitoError(f"milestone {ms.id} ({ms.title}) is locked: its notebook needs module(s) "
                     f"{names}", f"next: `tito module start {start.id}`")


# ---------------------------------------------------------------------------------------------
# Data the notebooks and submit share
# ---------------------------------------------------------------------------------------------
def make_moons(n: int, noise: float = 0.15, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles, n points: x float32 (n, 2), y float32 (n,) in {0, 1}.

    Moon 0: (cos t, sin t); moon 1: (1 - cos t, 0.5 - sin t), t uniform in [0, pi], plus
    Gaussian noise of standard deviation `noise`. No straight line separates them.
    """
    rng = np.random.default_rng(seed)
    n0 = n // 2
    t = rng.uniform(0, np.pi, n)  # (n,)
    upper = np.stack([np.cos(t), np.sin(t)], axis=1)  # (n, 2)
    lower = np.stack([1 - np.cos(t), 0.5 - np.sin(t)], axis=1)  # (n, 2)
    y = (np.arange(n) >= n0).astype(np.float32)  # (n,): n0 zeros, then ones
    x = np.where(y[:, None] > 0, lower, upper) + rng.normal(0, noise, (n, 2))
    order = rng.permutation(n)
    return x[order].astype(np.float32), y[order]


def _moons_eval(spec_eval: dict) -> tuple[np.ndarray, np.ndarray]:
    e = spec_eval["moons"]
    return make_moons(int(e["n"]), float(e.get("noise", 0.15)), int(e["seed"]))


def digit_strings(n: int, length: int, seed: int) -> np.ndarray:
    """n random digit strings: int64 (n, length), digits 0-9 (milestone 05's held-out strings)."""
    return np.random.default_rng(seed).integers(0, 10, (n, length))


def _digits_eval(spec_eval: dict) -> np.ndarray:
    e = spec_eval["digits"]
    return digit_strings(int(e["n"]), int(e["length"]), int(e["seed"]))


def _labels(data: str, spec_eval: dict) -> tuple[np.ndarray, str]:
    """The true labels of an evaluation set, loaded or generated here (never the notebook's),
    and a note when the copy of the data set on this machine is not the official one."""
    if data == "moons":
        return _moons_eval(spec_eval)[1], ""
    if data in GATES:
        return GATES[data], ""
    import warnings

    from tito.data import datasets

    loaders = {"mnist-test": ("mnist", lambda d: d.load_mnist("test")),
               "cifar-10-test": ("cifar-10", lambda d: d.load_cifar10("test"))}
    if data not in loaders:
        raise ValueError(f"unknown evaluation data {data!r}")
    name, load = loaders[data]
    with warnings.catch_warnings():  # said once, in the note
        warnings.simplefilter("ignore")
        labels = np.asarray(load(datasets())[1])
    prov = datasets().last_provenance(name)
    return labels, "" if prov is None or prov.exact else f" (a non-official copy of {name})"


# ---------------------------------------------------------------------------------------------
# Inside the notebook: prerequisites, the results folder, saving what submit measures
# ---------------------------------------------------------------------------------------------
class Notebook:
    """The milestone notebook's link to tito (the first code cell makes one).

        nb = Notebook("01")                  # checks the prerequisites in YOUR tinytorch
        nb.path("decision_boundary.png")     # where a plot goes (the results folder)
        nb.save("training", {...})           # measured values -> results.json
        nb.save_model("perceptron", model)   # its weights (.npz) and the classes it is built from
        nb.save_predictions("perceptron", y) # what submit scores against its own labels
        nb.save_gpt("shakespeare", gpt, tok) # a GPT: its weights, config and vocabulary
        nb.show("decision_boundary.png")     # a saved plot, below the cell in Jupyter
        nb.recorded_model("04", 1)           # (model, source) of your recorded milestone 04 run
        nb.quick                             # True in `tito milestone submit --quick`
    """

    def __init__(self, milestone: str):
        self.milestone = registry.get_milestone(milestone)
        self.quick = os.environ.get(QUICK_ENV) == "1"
        self.results = Path(os.environ.get(RESULTS_ENV) or "results").resolve()
        self.results.mkdir(parents=True, exist_ok=True)
        self.data: dict = {}
        import tinytorch

        self.package = Path(list(tinytorch.__path__)[0]).resolve()
        rows, missing = [], []
        for m in notebook_modules(self.milestone):
            try:
                mod = importlib.import_module(m.package_module)
                rows.append(f"  ✓ {m}  ({Path(mod.__file__).resolve()})")
            except Exception as e:  # noqa: BLE001 - missing, a syntax error, anything at import
                rows.append(f"  ✗ {m}  ({type(e).__name__}: {e})")
                missing.append(m)
        print(f"Milestone {self.milestone}: your tinytorch is {self.package}")
        print("\n".join(rows))
        if missing:
            ids = ", ".join(str(m) for m in missing)
            raise RuntimeError(f"modules {ids} are not in your tinytorch package: complete them "
                               f"first (tito module complete {missing[0].id})")
        print(f"Results go to {self.results}" + (" (quick run)" if self.quick else ""))
        self.save("run", {"tinytorch": str(self.package), "quick": self.quick,
                          "started_at": state.now()})

    def path(self, name: str) -> Path:
        return self.results / name

    def show(self, *names: str) -> None:
        """Display saved plots below the cell in Jupyter (elsewhere: print where they are)."""
        shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
        for name in names:
            path = self.path(name)
            if not path.is_file():
                print(f"{name}: not saved yet")
            elif shell:
                from IPython.display import Image, display

                display(Image(filename=str(path)))
            else:
                print(f"saved {path}")

    def limit(self, full: int, quick: int) -> int:
        """`full`, or `quick` in a quick run (how many images, epochs, ...)."""
        return quick if self.quick else full

    def evaluation_inputs(self) -> np.ndarray:
        """The inputs of tito's own held-out set (submit knows their labels): 01 moons points
        (n, 2); 05 the digit strings of the routing tasks, int64 (n, length)."""
        evaluation = load_spec(self.milestone).evaluation
        if "digits" in evaluation:
            return _digits_eval(evaluation)
        return _moons_eval(evaluation)[0]

    def recorded_model(self, milestone: str, part: int = 1):
        """(model, where it came from) of your last recorded full `tito milestone run` of that
        milestone part, rebuilt on your tinytorch from the weights it saved; (None, "") if none
        (06 starts from milestone 04's LeNet-5)."""
        from tito.workspace import Workspace

        root = self.package.parent
        found = last_run(Workspace(root), registry.get_milestone(milestone), part) \
            if (root / ".tito").is_dir() else None
        if found is None:
            return None, ""
        run_dir, label = found
        info = json.loads((run_dir / "model.json").read_text(encoding="utf-8"))
        if info.get("quick"):  # a rehearsal's model is not the milestone's
            return None, ""
        module, fn = info["build"].split(":")
        build = getattr(importlib.import_module(module), fn)
        model = _load(build(**info["config"]) if "config" in info else build(), run_dir / "model.npz")
        return model, f"{label} ({run_dir})"

    def save(self, key: str, value) -> None:
        """Store `value` (numbers, lists, dicts) under `key` in results.json, at once."""
        self.data[key] = _plain(value)
        state.write_atomic(self.path("results.json"), json.dumps(self.data, indent=2) + "\n")

    def save_model(self, name: str, model) -> Path:
        """name.npz (the state_dict) and, in results.json, the classes the model is made of."""
        arrays = {k: np.asarray(getattr(v, "data", v)) for k, v in model.state_dict().items()}
        np.savez(self.path(f"{name}.npz"), **arrays)
        classes = []
        for _, mod in model.named_modules():
            classes.append({"class": type(mod).__name__, "module": type(mod).__module__,
                            "file": str(Path(inspect.getsourcefile(type(mod)) or "?").resolve())})
        models = self.data.get("models", {})
        models[name] = {"classes": classes, "parameters": int(sum(a.size for a in arrays.values()))}
        self.save("models", models)
        return self.path(f"{name}.npz")

    def save_gpt(self, name: str, model, tokenizer=None) -> Path:
        """save_model, plus what submit needs to rebuild the GPT on your tinytorch and measure it
        itself: its GPTConfig and (a language model) the tokenizer's characters, in id order."""
        import dataclasses

        path = self.save_model(name, model)
        cfg = model.config
        config = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else dict(vars(cfg))
        models = self.data["models"]
        models[name]["config"] = config
        if tokenizer is not None:
            models[name]["chars"] = "".join(tokenizer.decode([i]) for i in range(tokenizer.vocab_size))
        self.save("models", models)
        return path

    def save_predictions(self, name: str, predictions) -> Path:
        pred = np.asarray(getattr(predictions, "data", predictions)).reshape(-1)
        np.save(self.path(f"{name}_predictions.npy"), pred.astype(np.int64))
        return self.path(f"{name}_predictions.npy")


def _plain(value):
    """JSON-able copy: NumPy scalars and arrays become numbers and lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    return value


# ---------------------------------------------------------------------------------------------
# start
# ---------------------------------------------------------------------------------------------
def folder(ws, ms: Milestone) -> Path:
    return ws.root / "milestones" / f"{ms.id}_{ms.slug}"


def notebook_file(ws, ms: Milestone) -> Path:
    """The learner's working file, milestones/01_perceptron/perceptron.py (+ .ipynb twin)."""
    return folder(ws, ms) / f"{ms.slug}.py"


def backups_dir(ws, ms: Milestone) -> Path:
    return ws.state / "backups" / "milestones" / f"{ms.id}_{ms.slug}"


@dataclass
class Started:
    notebook: Path  # the .ipynb
    py: Path
    readme: Path
    created: bool  # False: the learner's files were there already (nothing written)
    backups: list[Path] = field(default_factory=list)  # --reset: where the old files went


def start(ws, ms: Milestone, reset: bool = False) -> Started:
    """Write the milestone's notebook pair and README; never overwrites (reset backs up first)."""
    spec = load_spec(ms)
    err = locked_error(ms, ws.completed())
    if err:
        raise err
    py = notebook_file(ws, ms)
    nb = notebooks.notebook_path(py)
    readme = folder(ws, ms) / "README.md"
    backups: list[Path] = []
    if py.exists() or nb.exists():
        if not reset:
            return Started(nb, py, readme, created=False)
        if py.exists():
            notebooks.sync(py, backups_dir(ws, ms))  # an edit made in the notebook is kept too
        backups = [notebooks.backup_copy(p, backups_dir(ws, ms)) for p in (py, nb) if p.exists()]
    folder(ws, ms).mkdir(parents=True, exist_ok=True)
    notebooks.write_pair(py, spec.starter.read_text(encoding="utf-8"))
    state.write_atomic(readme, readme_text(spec))
    return Started(nb, py, readme, created=True, backups=backups)


def _target(spec: Spec, check: dict, quick: bool) -> float:
    """A threshold written in the rubric, or a registry victory condition's target."""
    if "condition" in check:
        part, metric = check["condition"]["part"], check["condition"]["metric"]
        cond = next(c for c in spec.milestone.part(part).conditions if c.metric == metric)
        return cond.target_for(quick)
    for key in ("at_least", "at_most"):  # a `quick_at_least` / `quick_at_most` under --quick
        if key in check:
            return float(check.get(f"quick_{key}", check[key]) if quick else check[key])
    return 0.0


def _pct(v: float) -> str:
    return f"{v * 100:.1f}%"


def readme_text(spec: Spec) -> str:
    """The README beside the notebook: history, deliverables, rubric, commands."""
    ms = spec.milestone
    rows = []
    for line in spec.lines:
        measured = "; ".join(_describe(spec, c) for c in line.checks)
        rows.append(f"| {line.name} | {line.weight:.0f}% | {line.title} | {measured} |")
    need = registry.compact_ids(m.id for m in notebook_modules(ms))
    return f"""# Milestone {ms.id}: {ms.title} ({ms.year})

{ms.people.rstrip('.')}. {ms.context}

Open `{ms.slug}.ipynb` (Jupyter, VS Code or Colab) or edit `{ms.slug}.py`: the two are kept in
step by tito. It needs your modules {need}; every cell that says `TODO` is yours to write.

## Deliverables and rubric

`tito milestone submit {ms.id}` runs the notebook top to bottom in a fresh process (time limit
{spec.limit_s / 60:.0f} min; `--quick`: a smaller rehearsal, {spec.quick_limit_s / 60:.0f} min,
never recorded), then measures each deliverable from the files the notebook wrote - it never
takes a number the notebook claims on trust:

| line | weight | deliverable | how it is measured |
|---|---|---|---|
{chr(10).join(rows)}

A submission is recorded in `.tito/milestones.json` when it scores {spec.pass_mark:.0f}%.
Each submission's files (results.json, plots, weights, the notebook's log, the rubric) stay in
`submissions/<time>/` next to the notebook (run in Jupyter, it writes them into `results/`).
{spec.notes}
## Commands

    tito milestone submit {ms.id}          grade the notebook (prints the rubric with evidence)
    tito milestone submit {ms.id} --quick  the short rehearsal (not recorded)
    tito milestone run {ms.id}             the milestone run by tito on your modules
    tito milestone demo {ms.id}            show off what your last successful run learnt
    tito milestone start {ms.id} --reset   a fresh starter (your notebook is backed up first)
"""


def _describe(spec: Spec, c: dict) -> str:
    """One check, in words, for the README (full-run targets; quick ones in brackets)."""
    kind = c["kind"]
    if kind == "accuracy":
        full, quick = _target(spec, c, False), _target(spec, c, True)
        extra = f" (quick: {_pct(quick)})" if quick != full else ""
        op = "≤" if "at_most" in c else "≥"
        return f"accuracy of `{c['predictions']}` on {c['data']} {op} {_pct(full)}{extra}, " \
               "computed by tito from your predictions"
    if kind == "parameters":
        return f"`{c['predicted']}` equals the number of {c.get('count', 'weights')} in `{c['model']}.npz`"
    if kind == "lenet_quality":
        full, quick = _target(spec, c, False), _target(spec, c, True)
        text = f"`{c['model']}` and `{c['reference']}` reloaded by tito on your tinytorch: `{c['model']}`'s " \
               f"MNIST test accuracy ≥ {full * 100:.0f}%" + (f" (quick: {quick * 100:.0f}%)" if quick != full else "") \
               + f" of `{c['reference']}`'s"
        if "reference_at_least" in c:
            text += f", which is ≥ {_pct(float(c['reference_at_least']))} (quick: " \
                    f"{_pct(float(c.get('quick_reference_at_least', c['reference_at_least'])))})"
        return text
    if kind == "size_ratio":
        text = f"`{c['model']}.npz` ≥ {_target(spec, c, False):g}x smaller than `{c['reference']}.npz`, " \
               "bytes counted from the saved arrays"
        return text + (", every weight stored as int8 codes" if c.get("int8") else "")
    if kind == "sparsity_curve":
        return f"`{c['y']}` against `{c['x']}` (≥ {c.get('min_points', 4)} sparsities from ≤ " \
               f"{c.get('lowest', 0.25)} to ≥ {c.get('highest', 0.75)}), re-measured by tito pruning " \
               f"`{c['model']}` with your functions: it falls by ≥ {float(c.get('falls', 0.1)) * 100:.0f} " \
               "points and agrees with yours"
    if kind == "mlperf_report":
        return f"`{c['dir']}/report.md` says \"not official MLPerf\"; `{c['dir']}/results.json`: ≥ " \
               f"{c.get('min_systems', 2)} systems, p50/p90 recomputed from the latencies, throughput = " \
               "samples / seconds (timings themselves are not graded)"
    if kind == "built_from":
        return f"`{c['model']}` is built from your tinytorch ({', '.join(c['needs'])})"
    if kind == "curve":
        how = f"falls by ≥ {c['falls'] * 100:.0f}%" if "falls" in c else \
            f"rises by ≥ {c['rises'] * 100:.0f} points"
        return f"`{c['key']}`: ≥ {c.get('min_len', 2)} values, {how}"
    if kind == "png":
        return "real PNG images: " + ", ".join(f"`{f}`" for f in c["files"])
    if kind == "linear_growth":
        text = f"`{c['y']}` grows linearly with `{c['x']}` (R² ≥ {c.get('r2', 0.95)})"
        if "predicted" in c:
            text += f", slope within {float(c.get('within', 0.25)) * 100:.0f}% of " \
                    f"`{c['predicted']}`"
        return text
    if kind == "variants":
        return f"`{c['key']}`: " + " and ".join(c["names"]) + " each trained " \
               f"(≥ {c.get('min_len', 2)} {c.get('unit', 'epochs')}, final ≥ " \
               f"{_pct(c.get('final_at_least', 0))})"
    if kind == "value":
        op = "≤" if "at_most" in c else "≥"
        return f"`{c['key']}` {op} {c.get('at_most', c.get('at_least'))}"
    if kind == "gpt_routing":
        full, quick = _target(spec, c, False), _target(spec, c, True)
        return f"`{c['model']}` reloaded by tito: the {c['task']} of ≥ {_pct(full)} (quick: " \
               f"{_pct(quick)}) of tito's held-out strings exactly right, generated greedily"
    if kind == "gpt_lm_loss":
        return f"`{c['model']}` reloaded by tito: validation loss ≤ {c['at_most']} nats/char " \
               f"(quick: {c.get('quick_at_most', c['at_most'])}) on every character of the " \
               f"split, ≥ {c['below_bigram']} below a counted bigram (quick: " \
               f"{c.get('quick_below_bigram', c['below_bigram'])})"
    if kind == "text":
        text = f"`{c['file']}`: ≥ {c.get('min_chars', 200)} characters"
        if "words_from" in c:
            quick = f" (quick: {_pct(float(c['quick_at_least']))})" if "quick_at_least" in c else ""
            text += f", ≥ {_pct(float(c['at_least']))}{quick} of its words occur in the training text"
        return text
    if kind == "power_law":
        return f"`{c['y']}` grows like `{c['x']}`^{c['exponent']:g} (fitted log-log exponent " \
               f"within ± {c.get('within', 0.3)})"
    return kind


# ---------------------------------------------------------------------------------------------
# submit: run the notebook, then measure
# ---------------------------------------------------------------------------------------------
@dataclass
class Verdict:
    ok: bool
    evidence: str


@dataclass
class LineResult:
    line: Line
    passed: bool
    evidence: list[str]

    @property
    def points(self) -> float:
        return self.line.weight if self.passed else 0.0


@dataclass
class Run:
    """How the notebook's process ended."""

    kind: str  # "ok" | "error" | "timeout"
    seconds: float
    log: Path
    error: str = ""  # the exception line
    where: str = ""  # 'line 123 (in rosenblatt_step): code'


@dataclass
class Submission:
    spec: Spec
    run: Run
    lines: list[LineResult]
    out_dir: Path
    quick: bool
    sync_note: str | None = None
    record: dict | None = None  # what was recorded (None: nothing)

    @property
    def score(self) -> float:
        return sum(r.points for r in self.lines)

    @property
    def recorded(self) -> bool:
        return self.record is not None


_BOOT = """import runpy, sys
from pathlib import Path
root, expect, path = sys.argv[1:4]
sys.path.insert(0, root)
import tinytorch
where = Path(list(tinytorch.__path__)[0]).resolve()
if where != Path(expect).resolve():
    sys.exit(f"tinytorch was imported from {where}, expected {expect}")
sys.argv = [path]
runpy.run_path(path, run_name="__main__")
"""


def run_notebook(ws, py: Path, out_dir: Path, quick: bool, limit_s: float) -> Run:
    """`python` on the percent file, the workspace's tinytorch first on sys.path, in the
    notebook's folder, output to out_dir/notebook.log; stopped (with its children) at the limit."""
    from tito import milestone_run as mr

    env = dict(mr._env(), **{RESULTS_ENV: str(out_dir), QUICK_ENV: "1" if quick else "0"})
    log = out_dir / "notebook.log"
    cmd = [sys.executable, "-c", _BOOT, str(ws.root), str(ws.package), str(py)]
    t0 = time.monotonic()
    with open(log, "w", encoding="utf-8", errors="replace") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=py.parent,
                                start_new_session=True)
        try:
            proc.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            mr._stop(proc)
            return Run("timeout", time.monotonic() - t0, log,
                       error=f"the notebook was stopped at its time limit of {limit_s:.0f} s")
        except BaseException:  # Ctrl-C: never leave the notebook running
            mr._stop(proc)
            raise
    seconds = time.monotonic() - t0
    if proc.returncode == 0:
        return Run("ok", seconds, log)
    error, where = crash_site(log.read_text(encoding="utf-8", errors="replace"), py)
    return Run("error", seconds, log, error=error or f"exit code {proc.returncode}", where=where)


_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<fn>.+)$')


def crash_site(log: str, py: Path) -> tuple[str, str]:
    """(the exception line, where in the notebook it was raised) from the log's last traceback."""
    lines = log.rstrip().splitlines()
    start = max((i for i, x in enumerate(lines) if x.startswith("Traceback")), default=None)
    if start is None:
        return (lines[-1].strip() if lines else ""), ""
    tb = lines[start:]
    error = next((x.strip() for x in reversed(tb) if x and not x.startswith(" ")), "")
    where = ""
    for i, x in enumerate(tb):
        m = _FRAME.match(x)
        if m and Path(m["file"]).resolve() == py.resolve():  # the innermost notebook frame wins
            code = tb[i + 1].strip() if i + 1 < len(tb) and not _FRAME.match(tb[i + 1]) else ""
            fn = "" if m["fn"] == "<module>" else f" (in {m['fn']})"
            where = f"line {m['line']}{fn}" + (f": {code}" if code else "")
    return error, where


def submit(ws, ms: Milestone, quick: bool = False, timeout: float | None = None) -> Submission:
    """Run the learner's notebook, measure every deliverable, record a full pass."""
    spec = load_spec(ms)
    err = locked_error(ms, ws.completed())
    if err:
        raise err
    py = notebook_file(ws, ms)
    if not (py.exists() or notebooks.notebook_path(py).exists()):
        raise TitoError(f"milestone {ms.id} has no notebook in this workspace yet",
                        f"start it: `tito milestone start {ms.id}`")
    synced = notebooks.sync(py, backups_dir(ws, ms))
    note = synced.note(str(synced.read.relative_to(ws.root)))
    stamp = time.strftime("%Y%m%d-%H%M%S") + ("-quick" if quick else "")
    out_dir = _fresh(folder(ws, ms) / "submissions" / stamp)
    limit = float(timeout or (spec.quick_limit_s if quick else spec.limit_s))
    run = run_notebook(ws, py, out_dir, quick, limit)
    results = _read_results(out_dir / "results.json")
    ctx = CheckContext(spec, ws, out_dir, results, quick, run)
    lines = []
    for line in spec.lines:
        verdicts = [_safe_check(ctx, c) for c in line.checks]
        lines.append(LineResult(line, all(v.ok for v in verdicts), [v.evidence for v in verdicts]))
    sub = Submission(spec, run, lines, out_dir, quick, sync_note=note)
    doc = summary(ws, sub, py)
    state.write_atomic(out_dir / "rubric.json", json.dumps(doc, indent=2) + "\n")
    if not quick and sub.score >= spec.pass_mark:
        sub.record = record_submission(ws.root, ms.id, doc)
    return sub


def _fresh(base: Path) -> Path:
    d, n = base, 1
    while True:
        try:
            d.mkdir(parents=True)
            return d
        except FileExistsError:
            n += 1
            d = base.with_name(f"{base.name}-{n}")


def _read_results(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}


def summary(ws, sub: Submission, py: Path) -> dict:
    """The submission as a JSON document (rubric.json; the record in milestones.json)."""
    from tito import milestone_run as mr

    target = mr.Target(ws.package, ws, False)
    return {
        "score": round(sub.score, 2), "pass_mark": sub.spec.pass_mark, "quick": sub.quick,
        "lines": [{"name": r.line.name, "weight": r.line.weight, "points": r.points,
                   "passed": r.passed, "evidence": "; ".join(r.evidence)} for r in sub.lines],
        "notebook": {"file": str(py), "sha256": hashlib.sha256(py.read_bytes()).hexdigest()},
        "run": {"outcome": sub.run.kind, "seconds": round(sub.run.seconds, 2),
                "error": sub.run.error, "where": sub.run.where},
        "modules": mr.module_hashes(target, [m.id for m in notebook_modules(sub.spec.milestone)]),
        "dir": str(sub.out_dir),
    }


def record_submission(root: Path, milestone_id: str, doc: dict) -> dict:
    """Append a passing submission to .tito/milestones.json, beside the run achievements."""
    return state.record_submission(root, milestone_id, doc)


def submissions(root: Path) -> dict[str, list[dict]]:
    """{milestone id: [recorded submissions, oldest first]}."""
    return state.get_submissions(root)


# ---------------------------------------------------------------------------------------------
# The measurements (one function per check kind in the rubric files)
# ---------------------------------------------------------------------------------------------
@dataclass
class CheckContext:
    spec: Spec
    ws: object
    out_dir: Path
    results: dict
    quick: bool
    run: Run
    memo: dict = field(default_factory=dict)  # measurements shared by several checks (06's LeNets)

    def get(self, key: str):
        """results.json value at a dotted key ('training.curve'); None if absent."""
        v = self.results
        for part in key.split("."):
            if not isinstance(v, dict) or part not in v:
                return None
            v = v[part]
        return v

    def missing(self, what: str) -> Verdict:
        """A deliverable that is not there: say why, naming where the notebook stopped."""
        if self.run.kind == "timeout":
            why = " (the notebook was stopped at its time limit before it got there)"
        elif self.run.kind == "error":
            at = self.run.where.split(":")[0] if self.run.where else "an error"
            why = f" (the notebook stopped at {at} before it got there)"
        else:
            why = ""
        return Verdict(False, f"{what} not found{why}")


def _safe_check(ctx: CheckContext, c: dict) -> Verdict:
    try:
        return CHECKS[c["kind"]](ctx, c)
    except Exception as e:  # noqa: BLE001 - a malformed file of the learner's is a failed line
        return Verdict(False, f"{c['kind']}: could not be measured ({type(e).__name__}: {e})")


def check_accuracy(ctx: CheckContext, c: dict) -> Verdict:
    """Accuracy of saved predictions against labels tito loads or generates itself."""
    path = ctx.out_dir / f"{c['predictions']}_predictions.npy"
    if not path.is_file():
        return ctx.missing(path.name)
    pred = np.load(path, allow_pickle=False).reshape(-1)
    labels, copy_note = _labels(c["data"], ctx.spec.evaluation)
    n = int(c.get("quick_n", len(labels))) if ctx.quick else len(labels)
    labels = labels[:n]
    if len(pred) != n:
        return Verdict(False, f"{path.name} holds {len(pred):,} predictions; {c['data']} needs "
                              f"{n:,} (one per example, in order)")
    acc = float(np.mean(pred == labels))
    target = _target(ctx.spec, c, ctx.quick)
    at_most = "at_most" in c  # e.g. the XOR crisis: a single layer must NOT get above 75%
    text = f"accuracy measured by tito on {n:,} {c['data']} examples{copy_note}: {_pct(acc)} " \
           f"(target {'≤' if at_most else '≥'} {_pct(target)})"
    ok = acc <= target if at_most else acc >= target
    if "claimed" in c:
        claimed = ctx.get(c["claimed"])
        if isinstance(claimed, (int, float)):
            text += f"; your notebook reports {_pct(claimed)}"
            if abs(claimed - acc) > float(c.get("tolerance", 0.03)):
                ok = False
                text += " - they disagree: is your accuracy computed on these predictions?"
    return Verdict(ok, text)


def check_built_from(ctx: CheckContext, c: dict) -> Verdict:
    """The model's classes come from the learner's tinytorch (the workspace package)."""
    model = ctx.get(f"models.{c['model']}")
    if not isinstance(model, dict) or not (ctx.out_dir / f"{c['model']}.npz").is_file():
        return ctx.missing(f"the saved model {c['model']!r} (nb.save_model)")
    package = Path(ctx.ws.package).resolve()
    used = ctx.get("run.tinytorch")
    if used and Path(used).resolve() != package:
        return Verdict(False, f"the notebook imported tinytorch from {used}, not {package}")
    classes = model.get("classes", [])
    foreign = [k["class"] for k in classes if k["module"].startswith("tinytorch")
               and package not in Path(k["file"]).resolve().parents]
    if foreign:
        return Verdict(False, f"{', '.join(foreign)} do not come from your package {package}")
    files = {Path(k["file"]).name for k in classes}
    absent = [n for n in c["needs"] if f"{n}.py" not in files]
    if absent:
        return Verdict(False, f"the model uses nothing from your {', '.join(absent)} module(s)")
    with np.load(ctx.out_dir / f"{c['model']}.npz", allow_pickle=False) as z:
        count = int(sum(z[k].size for k in z.files))
    names = " -> ".join(k["class"] for k in classes[1:] or classes)
    return Verdict(True, f"{c['model']}.npz: {count:,} weights; built from your "
                         f"{', '.join(sorted(files & {f'{n}.py' for n in c['needs']}))}: {names}")


def _numbers(v) -> list[float] | None:
    if not isinstance(v, list) or not v or not all(isinstance(x, (int, float)) for x in v):
        return None
    return [float(x) for x in v]


def check_curve(ctx: CheckContext, c: dict) -> Verdict:
    """A training curve: long enough, and it falls (a loss) or rises (an accuracy)."""
    curve = _numbers(ctx.get(c["key"]))
    if curve is None:
        return ctx.missing(f"the curve {c['key']!r} (a list of numbers in results.json)")
    if not all(math.isfinite(v) for v in curve):
        return Verdict(False, f"{c['key']} holds NaN or inf: training diverged")
    n, first, last, unit = len(curve), curve[0], curve[-1], c.get("unit", "epochs")
    if n < int(c.get("min_len", 2)):
        return Verdict(False, f"{c['key']} has {n} values, at least {c.get('min_len', 2)} needed")
    if "falls" in c:
        drop = 1 - last / first if first > 0 else 0.0
        ok = drop >= float(c["falls"])
        return Verdict(ok, f"{c['key']}: {first:.4g} -> {last:.4g} over {n} {unit}, fell by "
                           f"{drop * 100:.0f}% (needed ≥ {float(c['falls']) * 100:.0f}%)")
    rise = last - first
    ok = rise >= float(c["rises"])
    return Verdict(ok, f"{c['key']}: {first:.4g} -> {last:.4g} over {n} {unit}, rose by "
                       f"{rise:.3g} (needed ≥ {c['rises']})")


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_problem(path: Path, min_side: int = 150, min_colours: int = 8) -> str | None:
    """None if `path` is a real, non-blank PNG image; else what is wrong with it."""
    if not path.is_file():
        return "missing"
    raw = path.read_bytes()
    if raw[:8] != PNG_SIGNATURE:
        return "not a PNG file (wrong signature)"
    from PIL import Image  # matplotlib's own dependency

    try:
        with Image.open(path) as im:
            im.load()
            w, h = im.size
            colours = im.convert("RGB").getcolors(maxcolors=1 << 16)
    except Exception as e:  # noqa: BLE001 - truncated or corrupt image data
        return f"PNG that does not decode ({type(e).__name__})"
    if min(w, h) < min_side:
        return f"only {w}x{h} pixels"
    n = len(colours) if colours is not None else 1 << 16
    if n < min_colours:
        return f"{w}x{h} pixels but only {n} colour(s): a blank figure?"
    return None


def check_png(ctx: CheckContext, c: dict) -> Verdict:
    bad, good = [], []
    for name in c["files"]:
        problem = png_problem(ctx.out_dir / name, int(c.get("min_side", 150)))
        if problem:
            bad.append(f"{name}: {problem}")
        else:
            good.append(f"{name} ({(ctx.out_dir / name).stat().st_size // 1024} KB)")
    if bad and all(b.endswith("missing") for b in bad):
        return ctx.missing(", ".join(b.split(":")[0] for b in bad))
    if bad:
        return Verdict(False, "; ".join(bad) + (f"; ok: {', '.join(good)}" if good else ""))
    return Verdict(True, "PNG images: " + ", ".join(good))


def check_linear_growth(ctx: CheckContext, c: dict) -> Verdict:
    """y grows with x, and a straight line fits it (R^2), over a wide enough range of x."""
    x, y = _numbers(ctx.get(c["x"])), _numbers(ctx.get(c["y"]))
    if x is None or y is None:
        return ctx.missing(f"the profile {c['x']!r} / {c['y']!r}")
    if len(x) != len(y):
        return Verdict(False, f"{len(x)} values of {c['x']} but {len(y)} of {c['y']}")
    need = int(c.get("min_points", 4))
    if len(x) < need or min(x) <= 0 or max(x) / min(x) < float(c.get("min_span", 8)):
        return Verdict(False, f"{len(x)} measurements from {min(x):g} to {max(x):g}: measure at "
                              f"least {need}, the largest ≥ {c.get('min_span', 8)}x the smallest")
    xa, ya = np.array(x), np.array(y)
    slope, icept = np.polyfit(xa, ya, 1)
    resid = ya - (slope * xa + icept)
    r2 = 1 - float(resid @ resid) / max(float(((ya - ya.mean()) ** 2).sum()), 1e-12)
    order = np.argsort(xa)
    grows = bool(np.all(np.diff(ya[order]) > 0))
    ok = grows and slope > 0 and r2 >= float(c.get("r2", 0.95))
    text = f"{len(x)} measurements, {c['x'].split('.')[-1]} {min(x):g}..{max(x):g}: " \
           f"{'grows' if grows else 'does NOT grow'} every step, slope {slope:,.0f} per unit, " \
           f"straight-line fit R² = {r2:.3f} (needed ≥ {c.get('r2', 0.95)})"
    if "predicted" in c:  # the learner's prediction of the slope, from the shapes
        predicted = ctx.get(c["predicted"])
        if not isinstance(predicted, (int, float)) or predicted <= 0:
            return Verdict(False, text + f"; no prediction {c['predicted']!r} of the slope")
        off = abs(slope / predicted - 1)
        ok = ok and off <= float(c.get("within", 0.25))
        text += f"; your prediction {predicted:,.0f} is {off * 100:.0f}% off " \
                f"(allowed {float(c.get('within', 0.25)) * 100:.0f}%)"
    return Verdict(ok, text)


def check_variants(ctx: CheckContext, c: dict) -> Verdict:
    """Each named variant of a comparison trained: its own curve and a final value."""
    block = ctx.get(c["key"])
    if not isinstance(block, dict):
        return ctx.missing(f"the comparison {c['key']!r}")
    parts, ok = [], True
    floor = float(c.get("final_at_least", 0.0))
    for name in c["names"]:
        v = block.get(name)
        curve = _numbers(v.get(c.get("curve", "curve"))) if isinstance(v, dict) else None
        final = v.get(c.get("final", "final_acc")) if isinstance(v, dict) else None
        if curve is None or not isinstance(final, (int, float)):
            ok = False
            parts.append(f"{name}: no curve or final value")
            continue
        good = len(curve) >= int(c.get("min_len", 2)) and final >= floor
        ok = ok and good
        parts.append(f"{name}: {len(curve)} {c.get('unit', 'epochs')}, final {_pct(final)}"
                     + ("" if good else f" (needed ≥ {c.get('min_len', 2)} epochs and ≥ "
                                        f"{_pct(floor)})"))
    return Verdict(ok, "; ".join(parts))


def check_value(ctx: CheckContext, c: dict) -> Verdict:
    v = ctx.get(c["key"])
    if not isinstance(v, (int, float)):
        return ctx.missing(f"the value {c['key']!r}")
    if "at_most" in c:
        ok, want = v <= float(c["at_most"]), f"≤ {c['at_most']}"
    else:
        ok, want = v >= float(c["at_least"]), f"≥ {c['at_least']}"
    return Verdict(ok, f"{c.get('label', c['key'])}: {v:.4g} (needed {want})")


def check_parameters(ctx: CheckContext, c: dict) -> Verdict:
    """The learner's parameter count, predicted from the layer shapes, against the saved model."""
    path = ctx.out_dir / f"{c['model']}.npz"
    if not path.is_file():
        return ctx.missing(path.name)
    unit = c.get("count", "weights")  # "bytes": every array's bytes at its own dtype (int8: 1)
    with np.load(path, allow_pickle=False) as z:
        count = int(sum(z[k].nbytes if unit == "bytes" else z[k].size for k in z.files))
    predicted = ctx.get(c["predicted"])
    if not isinstance(predicted, (int, float)):
        return ctx.missing(f"your prediction {c['predicted']!r}")
    ok = int(predicted) == count
    return Verdict(ok, f"{path.name} holds {count:,} {unit}; your count from the shapes: "
                       f"{int(predicted):,}" + ("" if ok else " - they differ"))


def _bound(c: dict, key: str, quick: bool) -> float:
    """A threshold of a check: `quick_<key>` in a quick submission where the rubric sets one."""
    return float(c.get(f"quick_{key}", c[key]) if quick else c[key])


def measure_saved(ctx: CheckContext, request: dict) -> dict:
    """Rebuild a saved GPT on the learner's tinytorch in a subprocess and measure it there
    (`_measure_child`); {"error": ...} when that fails or runs past MEASURE_TIMEOUT_S."""
    from tito import milestone_run as mr

    cmd = [sys.executable, "-m", "tito.milestone_work", "measure", str(ctx.out_dir),
           str(ctx.ws.root), str(ctx.ws.package), json.dumps(request)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=mr._env(), cwd=ctx.out_dir,
                              timeout=float(request.get("timeout", MEASURE_TIMEOUT_S)))
    except subprocess.TimeoutExpired:
        return {"error": f"the measurement took more than {MEASURE_TIMEOUT_S} s"}
    msg = next((json.loads(x) for x in reversed(proc.stdout.splitlines()) if x.startswith("{")), None)
    if msg is None:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    return msg


def _saved_gpt(ctx: CheckContext, name: str) -> Verdict | None:
    """None if the GPT `name` was saved with nb.save_gpt; else the failing verdict."""
    info = ctx.get(f"models.{name}")
    if not isinstance(info, dict) or not (ctx.out_dir / f"{name}.npz").is_file():
        return ctx.missing(f"the saved model {name!r} (nb.save_gpt)")
    if not isinstance(info.get("config"), dict):
        return Verdict(False, f"{name!r} was saved without its GPTConfig: save it with nb.save_gpt")
    return None


def check_gpt_routing(ctx: CheckContext, c: dict) -> Verdict:
    """A saved routing GPT, reloaded by tito, answers tito's held-out digit strings: greedy
    generation with the learner's GPT.generate, exact strings counted here."""
    bad = _saved_gpt(ctx, c["model"])
    if bad:
        return bad
    e = ctx.spec.evaluation["digits"]
    msg = measure_saved(ctx, {"what": "routing", "model": c["model"], "task": c["task"],
                              "n": e["n"], "length": e["length"], "seed": e["seed"]})
    if "error" in msg:
        return Verdict(False, f"tito could not reload and run {c['model']!r}: {msg['error']}")
    exact, target = msg["exact"], _target(ctx.spec, c, ctx.quick)
    ok = exact >= target
    text = f"`{c['model']}` reloaded by tito, {c['task']} of {msg['n']:,} held-out strings " \
           f"(greedy, your GPT.generate): {_pct(exact)} exactly right, {_pct(msg['digit_acc'])} " \
           f"of the digits (target ≥ {_pct(target)}); e.g. {msg['example']}"
    claimed = ctx.get(c["claimed"]) if "claimed" in c else None
    if isinstance(claimed, (int, float)):
        text += f"; your notebook reports {_pct(claimed)}"
        if abs(claimed - exact) > float(c.get("tolerance", 0.01)):
            ok = False
            text += " - they disagree: are your answers generated by the saved model?"
    return Verdict(ok, text)


def check_gpt_lm_loss(ctx: CheckContext, c: dict) -> Verdict:
    """A saved character-level GPT's loss on the real validation split, computed by tito from
    the model's logits on every validation character, against a counted bigram on the split."""
    bad = _saved_gpt(ctx, c["model"])
    if bad:
        return bad
    msg = measure_saved(ctx, {"what": "lm_loss", "model": c["model"], "data": c["data"],
                              "split": float(c.get("split", 0.9))})
    if "error" in msg:
        return Verdict(False, f"tito could not reload and run {c['model']!r}: {msg['error']}")
    val, bigram = msg["val_loss"], msg["bigram_loss"]
    most, margin = _bound(c, "at_most", ctx.quick), _bound(c, "below_bigram", ctx.quick)
    ok = val <= most and bigram - val >= margin
    text = f"`{c['model']}` reloaded by tito: validation loss {val:.3f} nats/char on all " \
           f"{msg['n']:,} characters of the last {(1 - float(c.get('split', 0.9))) * 100:.0f}% " \
           f"(target ≤ {most:.2f}); a counted bigram: {bigram:.3f}, yours is {bigram - val:.3f} " \
           f"below it (needed ≥ {margin:.2f})"
    claimed = ctx.get(c["claimed"]) if "claimed" in c else None
    if isinstance(claimed, (int, float)):
        text += f"; your notebook reports {claimed:.3f}"
        if abs(claimed - val) > float(c.get("tolerance", 0.05)):
            ok = False
            text += " - they disagree: is yours the mean over every validation character?"
    return Verdict(ok, text)


def _corpus(data: str) -> str:
    if data != "tinyshakespeare":
        raise ValueError(f"unknown text data {data!r}")
    from tito.data import datasets

    return datasets().load_shakespeare()


def check_text(ctx: CheckContext, c: dict) -> Verdict:
    """A text the model wrote: long enough, and (with `words_from`) made of real words: the
    fraction of its words that occur in the training part of the corpus."""
    path = ctx.out_dir / c["file"]
    if not path.is_file():
        return ctx.missing(c["file"])
    text = path.read_text(encoding="utf-8", errors="replace")
    need = int(c.get("min_chars", 200))
    if len(text) < need:
        return Verdict(False, f"{c['file']} holds {len(text):,} characters, at least {need:,} needed")
    words = re.findall(r"[A-Za-z']+", text)
    out = f"{c['file']}: {len(text):,} characters, {len(words):,} words"
    if "words_from" not in c:
        return Verdict(True, out)
    corpus = _corpus(c["words_from"])
    known = set(re.findall(r"[A-Za-z']+", corpus[:int(float(c.get("split", 0.9)) * len(corpus))]))
    share = float(np.mean([w in known for w in words])) if words else 0.0
    floor = _bound(c, "at_least", ctx.quick)
    return Verdict(share >= floor, out + f", {_pct(share)} of them occur in the training text "
                                         f"(needed ≥ {_pct(floor)})")


def check_power_law(ctx: CheckContext, c: dict) -> Verdict:
    """y grows with x like x**exponent: at every step, and the log-log slope fitted over the
    points of the top `fit_span`x of the range (where the constant costs no longer hide it)."""
    x, y = _numbers(ctx.get(c["x"])), _numbers(ctx.get(c["y"]))
    if x is None or y is None:
        return ctx.missing(f"the table {c['x']!r} / {c['y']!r}")
    if len(x) != len(y):
        return Verdict(False, f"{len(x)} values of {c['x']} but {len(y)} of {c['y']}")
    need, span = int(c.get("min_points", 4)), float(c.get("min_span", 8))
    if len(x) < need or min(x) <= 0 or min(y) <= 0 or max(x) / min(x) < span:
        return Verdict(False, f"{len(x)} measurements from {min(x):g} to {max(x):g}: measure at "
                              f"least {need} positive values, the largest ≥ {span:g}x the smallest")
    order = np.argsort(x)
    xa, ya = np.array(x)[order], np.array(y)[order]
    grows = bool(np.all(np.diff(ya) > 0))
    top = xa >= xa[-1] / float(c.get("fit_span", 8))
    if top.sum() < 3:
        top[-3:] = True
    k, _ = np.polyfit(np.log(xa[top]), np.log(ya[top]), 1)
    want, within = float(c["exponent"]), float(c.get("within", 0.3))
    ok = grows and abs(k - want) <= within
    name = c["y"].split(".")[-1]
    return Verdict(ok, f"{name}: {len(x)} measurements, {c['x'].split('.')[-1]} {xa[0]:g}..{xa[-1]:g}, "
                       f"{'grows' if grows else 'does NOT grow'} every step; fitted exponent "
                       f"{k:.2f} over {xa[top][0]:g}..{xa[-1]:g} (needed {want:g} ± {within:g}): "
                       f"doubling {c['x'].split('.')[-1]} multiplies it by {2 ** k:.1f}")


# ---------------------------------------------------------------------------------------------
# Milestone 06: LeNet-5s rebuilt from their saved arrays, the benchmark report, the sizes
# ---------------------------------------------------------------------------------------------
LENET_WEIGHTS = (0, 3, 7, 9, 11)  # the layers of milestone 04's LeNet-5 that hold weights
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # milestone 04's normalisation (tito.milestones.m04_cnn)
MAX_SPARSITIES = 12  # the most points of a sparsity curve tito re-measures


def _lenet_measurements(ctx: CheckContext) -> dict:
    """Every LeNet-5 the rubric names, and the sparsity curve, measured in ONE subprocess on the
    learner's tinytorch (`_measure_child`, "lenet"); kept in ctx.memo for the other checks."""
    if "lenet" not in ctx.memo:
        models, at, of = set(), None, None
        for line in ctx.spec.lines:
            for c in line.checks:
                if c["kind"] == "lenet_quality":
                    models |= {c["model"], c["reference"]}
                elif c["kind"] == "sparsity_curve":
                    at, of = _numbers(ctx.get(c["x"])), c["model"]
                    at = at if at and len(at) <= MAX_SPARSITIES else None
                    models.add(of)
        saved = sorted(m for m in models if (ctx.out_dir / f"{m}.npz").is_file())
        e = ctx.spec.evaluation.get("mnist-test", {})
        n = int(e.get("quick_n", 10000)) if ctx.quick else int(e.get("n", 10000))
        ctx.memo["lenet"] = measure_saved(ctx, {"what": "lenet", "models": saved, "n": n,
                                                "sparsities": at if of in saved else None,
                                                "sparsity_model": of})
    return ctx.memo["lenet"]


def _lenet_result(ctx: CheckContext, name: str) -> tuple[dict | None, Verdict | None]:
    if not (ctx.out_dir / f"{name}.npz").is_file():
        return None, ctx.missing(f"the saved model {name!r} (nb.save_model)")
    msg = _lenet_measurements(ctx)
    if "error" in msg:
        return None, Verdict(False, f"tito could not measure the saved models: {msg['error']}")
    r = msg["models"].get(name, {"error": "not measured"})
    if "error" in r:
        return None, Verdict(False, f"tito could not rebuild {name!r} as a LeNet-5 on your "
                                    f"tinytorch and run it: {r['error']}")
    return dict(r, n=msg["n"], note=msg.get("note", "")), None


def check_lenet_quality(ctx: CheckContext, c: dict) -> Verdict:
    """Two saved LeNet-5s (milestone 04's layers, any widths; INT8 layers where the arrays hold
    int8 codes), rebuilt by tito on the learner's tinytorch: their accuracy on tito's MNIST test
    images, and the ratio of the two (MLPerf's quality rule)."""
    (m, bad), (r, bad_ref) = _lenet_result(ctx, c["model"]), _lenet_result(ctx, c["reference"])
    if bad or bad_ref:
        return bad or bad_ref
    acc, ref = m["accuracy"], r["accuracy"]
    ratio = acc / ref if ref > 0 else 0.0
    target = _target(ctx.spec, c, ctx.quick)
    ok = ratio >= target
    text = f"reloaded by tito on your tinytorch, {m['n']:,} MNIST test images{m['note']}: " \
           f"`{c['reference']}` {_pct(ref)}, `{c['model']}` {_pct(acc)} = {ratio * 100:.1f}% of it " \
           f"(target ≥ {target * 100:.0f}%)"
    if "reference_at_least" in c:
        floor = _bound(c, "reference_at_least", ctx.quick)
        ok = ok and ref >= floor
        text += f"; `{c['reference']}` needs ≥ {_pct(floor)}" + ("" if ref >= floor else " - it is not trained enough")
    tol = float(c.get("tolerance", 0.005))
    for key, value in ((c.get("claimed_reference"), ref), (c.get("claimed"), acc)):
        claimed = ctx.get(key) if key else None
        if isinstance(claimed, (int, float)):
            text += f"; your notebook reports {_pct(claimed)} for `{key}`"
            if abs(claimed - value) > tol:
                ok = False
                text += " - they disagree: is it measured on the saved model, on the whole test split?"
    return Verdict(ok, text)


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def check_size_ratio(ctx: CheckContext, c: dict) -> Verdict:
    """Stored sizes counted from the saved arrays (each at its own dtype: an int8 code is one byte):
    the reference over the model; with `int8`, every weight of the model must be int8 codes."""
    paths = [ctx.out_dir / f"{c[k]}.npz" for k in ("reference", "model")]
    for path in paths:
        if not path.is_file():
            return ctx.missing(f"the saved model {path.stem!r} (nb.save_model)")
    ref, opt = (_arrays(p) for p in paths)
    ref_bytes, opt_bytes = (int(sum(a.nbytes for a in d.values())) for d in (ref, opt))
    ratio = ref_bytes / opt_bytes if opt_bytes else 0.0
    target = _target(ctx.spec, c, ctx.quick)
    ok = ratio >= target
    text = f"counted by tito from the saved arrays: `{c['reference']}` {ref_bytes:,} bytes, " \
           f"`{c['model']}` {opt_bytes:,} bytes: {ratio:.2f}x smaller (target ≥ {target:g}x)"
    if "reference_parameters" in c:
        n = int(sum(a.size for a in ref.values()))
        if n != int(c["reference_parameters"]):
            ok = False
            text += f"; `{c['reference']}` holds {n:,} numbers, not the {int(c['reference_parameters']):,} " \
                    "of LeNet-5: measure against the unpruned baseline"
    if c.get("int8"):
        floats = [k for k, a in opt.items() if k.endswith(".weight") and a.ndim >= 2]
        codes = [k for k in opt if k.endswith(".weight_q")]
        wrong = [f"{k} ({opt[k].dtype})" for k in codes if opt[k].dtype != np.int8]
        if floats or wrong or not codes:
            ok = False
            text += "; NOT stored as INT8: " + ", ".join(
                [f"{k} ({opt[k].dtype})" for k in floats] + wrong or ["no quantized weight"])
        else:
            text += f"; all {len(codes)} weight tensors are int8 codes"
    claimed = ctx.get(c["claimed"]) if "claimed" in c else None
    if isinstance(claimed, (int, float)):
        text += f"; your notebook reports {int(claimed):,} bytes"
        if int(claimed) != opt_bytes:
            ok = False
            text += " - they differ: is it model_size_bytes of the model you saved?"
    return Verdict(ok, text)


def check_sparsity_curve(ctx: CheckContext, c: dict) -> Verdict:
    """Accuracy against sparsity: tito prunes the saved model itself at the learner's sparsities
    (prune_channels then prune_neurons, no fine-tuning) and measures each; the curve must span
    the range, fall (within `slack` a step) and agree with the learner's numbers."""
    x, y = _numbers(ctx.get(c["x"])), _numbers(ctx.get(c["y"]))
    if x is None or y is None:
        return ctx.missing(f"the curve {c['x']!r} / {c['y']!r}")
    if len(x) != len(y):
        return Verdict(False, f"{len(x)} sparsities but {len(y)} accuracies")
    need, lo, hi = int(c.get("min_points", 4)), float(c.get("lowest", 0.25)), float(c.get("highest", 0.75))
    if not need <= len(x) <= MAX_SPARSITIES or min(x) > lo or max(x) < hi or max(x) >= 1 or min(x) < 0 or \
            any(b <= a for a, b in zip(x, x[1:])):
        return Verdict(False, f"{len(x)} sparsities {x[:MAX_SPARSITIES]}: measure {need} to "
                              f"{MAX_SPARSITIES}, increasing, from "
                              f"≤ {lo:g} to ≥ {hi:g} (below 1)")
    r, bad = _lenet_result(ctx, c["model"])
    if bad:
        return bad
    msg = ctx.memo["lenet"].get("sparsity") or {"error": "not measured"}
    if "error" in msg:
        return Verdict(False, f"tito could not prune `{c['model']}` with your prune_channels / "
                              f"prune_neurons: {msg['error']}")
    mine = msg["accuracy"]
    slack, falls, tol = float(c.get("slack", 0.02)), float(c.get("falls", 0.1)), float(c.get("tolerance", 0.01))
    rises = max((b - a for a, b in zip(mine, mine[1:])), default=0.0)
    drop = mine[0] - mine[-1]
    off = max(abs(a - b) for a, b in zip(mine, y))
    ok = rises <= slack and drop >= falls and off <= tol
    points = ", ".join(f"{s:.0%}: {_pct(a)}" for s, a in zip(x, mine))
    text = f"tito pruned `{c['model']}` itself at your sparsities (your prune_channels + prune_neurons, " \
           f"no fine-tuning; {r['n']:,} test images): {points}; falls by {drop * 100:.1f} points " \
           f"(needed ≥ {falls * 100:.0f})" + (f", never rising by more than {slack * 100:.0f}" if rises <= slack
                                               else f", but rises by {rises * 100:.1f} points at one step") + \
           f"; your curve is within {off * 100:.1f} points of tito's (allowed {tol * 100:.0f})"
    return Verdict(ok, text)


def check_mlperf_report(ctx: CheckContext, c: dict) -> Verdict:
    """Module 19's write_report output: report.md says what these numbers are not, and every
    system of results.json is recounted from its own data - p50/p90 from its latencies, Offline
    throughput = samples / seconds over the whole test split. Timings are reported, not graded."""
    folder = ctx.out_dir / c["dir"]
    md, js = folder / "report.md", folder / "results.json"
    if not (md.is_file() and js.is_file()):
        return ctx.missing(f"{c['dir']}/report.md and {c['dir']}/results.json (write_report)")
    text = md.read_text(encoding="utf-8", errors="replace")
    doc = _read_results(js)
    results = doc.get("results")
    problems = []
    if "not official mlperf" not in " ".join(text.lower().split()):
        problems.append("report.md does not say that these are not official MLPerf results")
    if not isinstance(doc.get("system"), dict) or not doc["system"]:
        problems.append("results.json has no system description")
    need = int(c.get("min_systems", 2))
    if not isinstance(results, list) or len(results) < need:
        n = len(results) if isinstance(results, list) else 0
        return Verdict(False, "; ".join(problems + [f"results.json holds {n} system(s) under test, "
                                                    f"at least {need} needed"]))
    samples = int(_bound(c, "test_samples", ctx.quick))
    rows = []
    for r in results:
        name = str(r.get("name", "?"))
        try:
            ss, off, q = r["SingleStream"], r["Offline"], r["quality"]
            lat = np.asarray(ss["latencies_ms"], dtype=np.float64)
            if len(lat) < int(c.get("min_queries", 100)) or not np.all(np.isfinite(lat) & (lat > 0)):
                problems.append(f"{name}: {len(lat)} SingleStream latencies (at least "
                                f"{c.get('min_queries', 100)} positive ones needed)")
                continue
            for pct, key in ((50, "p50_ms"), (90, "p90_ms")):
                mine = float(np.percentile(lat, pct))
                if not math.isclose(mine, float(ss[key]), rel_tol=0.02, abs_tol=1e-4):
                    problems.append(f"{name}: SingleStream {key} is {float(ss[key]):.4f} ms, the {pct}th "
                                    f"percentile of its {len(lat)} latencies is {mine:.4f} ms")
            sec, n, tput = float(off["seconds"]), int(off["samples"]), float(off["samples_per_s"])
            if sec <= 0 or not math.isclose(n / sec, tput, rel_tol=1e-3):
                problems.append(f"{name}: Offline {tput:,.0f} samples/s is not samples / seconds "
                                f"({n} / {sec:.4f} s)")
            if n != samples or int(q["samples"]) != samples:
                problems.append(f"{name}: Offline ran {n:,} samples and quality {int(q['samples']):,}; "
                                f"the test split has {samples:,}")
            if name not in text:
                problems.append(f"report.md does not list {name!r}")
            rows.append(f"{name}: {_pct(float(q['accuracy']))}, p90 {float(np.percentile(lat, 90)) * 1e3:,.0f} us, "
                        f"{tput:,.0f} samples/s")
        except (KeyError, TypeError, ValueError) as e:
            problems.append(f"{name}: not a module 19 result ({type(e).__name__}: {e})")
    if problems:
        return Verdict(False, "; ".join(problems))
    return Verdict(True, f"{c['dir']}/report.md says these are not official MLPerf results; "
                         f"{len(results)} systems, each recounted by tito from its own latencies "
                         f"and Offline pass: consistent. " + "; ".join(rows) +
                   " (timings are reported, not graded: the machine may be busy)")


CHECKS = {"accuracy": check_accuracy, "parameters": check_parameters, "built_from": check_built_from, "curve": check_curve,
          "png": check_png, "linear_growth": check_linear_growth, "variants": check_variants,
          "value": check_value, "gpt_routing": check_gpt_routing, "gpt_lm_loss": check_gpt_lm_loss,
          "text": check_text, "power_law": check_power_law, "lenet_quality": check_lenet_quality,
          "size_ratio": check_size_ratio, "sparsity_curve": check_sparsity_curve,
          "mlperf_report": check_mlperf_report}


# ---------------------------------------------------------------------------------------------
# Weights of `tito milestone run`, for the demo
# ---------------------------------------------------------------------------------------------
def save_weights(ctx, model, build: str, kind: str, arrays: dict | None = None, **info) -> None:
    """Called by the milestone scripts: model.npz (the state_dict), model.json (how to rebuild
    the model: `build` is "module:function"; `kind` picks the demo) and demo_data.npz (`arrays`).
    A failure here is logged and never fails the run."""
    try:
        state_ = {k: np.asarray(getattr(v, "data", v)) for k, v in model.state_dict().items()}
        np.savez(ctx.out_dir / "model.npz", **state_)
        if arrays:
            np.savez(ctx.out_dir / "demo_data.npz", **{k: np.asarray(v) for k, v in arrays.items()})
        doc = {"build": build, "kind": kind, "milestone": ctx.milestone, "part": ctx.part,
               "quick": ctx.quick, **_plain(info)}
        (ctx.out_dir / "model.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    except Exception as e:  # noqa: BLE001 - the learner's state_dict may be broken
        ctx.log(f"the weights were not saved for `tito milestone demo` ({type(e).__name__}: {e})")


# ---------------------------------------------------------------------------------------------
# demo
# ---------------------------------------------------------------------------------------------
@dataclass
class Show:
    """One part's demo: what the learner's saved model predicted."""

    part: int
    kind: str  # "plane" | "xor" | "digits" | "cifar" | "text" | "routing" | "report"
    run_dir: Path
    label: str  # 'recorded run of 2025-...' / 'quick rehearsal (not recorded)'
    data: dict  # kind-specific: images, labels, predictions, grid, ...


WEIGHTS = ("model.npz", "model.json")  # what a run saves for the demo (save_weights)
REPORT_DEMOS = {"06": ("report.md",)}  # milestones whose demo shows the run's benchmark report


def last_run(ws, ms: Milestone, part: int, need: tuple[str, ...] = WEIGHTS) -> tuple[Path, str] | None:
    """The run folder of the learner's last successful run of a part that saved the files `need`
    (its weights): the newest recorded achievement, else the newest of their own runs (not
    --reference) whose conditions all held (a --quick rehearsal, or `tito milestone test`)."""
    recs = state.get_achievements(ws.root).get(ms.id, {}).get(str(part), [])
    for rec in reversed(recs):
        d = Path(rec.get("run_dir", ""))
        if rec.get("run_dir") and all((d / f).is_file() for f in need):
            return d, f"your recorded run of {rec.get('recorded_at', '?')}"
    base = ws.root / "runs" / f"{ms.id}_{ms.slug}"
    for d in sorted(base.glob(f"*/part{part}"), key=lambda p: p.parent.name, reverse=True):
        if d.parent.name.endswith("-reference") or not all((d / f).is_file() for f in need):
            continue
        doc = _read_results(d / "metrics.json")
        if doc.get("achieved"):
            what = "quick rehearsal" if doc.get("quick") else "test run"
            return d, f"your {what} of {d.parent.name} (every condition held; not recorded)"
    return None


def demo(ws, ms: Milestone, count: int = 8, seed: int = 0, timeout: float = 300,
         prompt: str | None = None) -> list[Show]:
    """Predictions of the learner's last successful runs, one Show per part that has one.
    `prompt`: where a part writes text (05's Shakespeare), it starts from this (default: the
    run's own prompt)."""
    from tito import milestone_run as mr

    parts, _ = mr.built_parts(ms)
    report = ms.id in REPORT_DEMOS
    found = [(p, last_run(ws, ms, p.number, REPORT_DEMOS.get(ms.id, WEIGHTS))) for p in parts]
    if not any(f for _, f in found):
        raise TitoError(f"nothing to demo yet: milestone {ms.id} ({ms.title}) has no successful "
                        "run of your code with " + ("a benchmark report" if report else "saved weights"),
                        f"run it first: `tito milestone run {ms.id}`")
    shows = []
    for p, f in found:
        if f is None:
            continue
        run_dir, label = f
        if report:  # the run's own report.md, as it wrote it (nothing of the learner's runs here)
            text = (run_dir / "report.md").read_text(encoding="utf-8", errors="replace")
            plots = sorted(x.name for x in run_dir.glob("*.png"))
            shows.append(Show(p.number, "report", run_dir, label, {"markdown": text, "plots": plots}))
            continue
        info = json.loads((run_dir / "model.json").read_text(encoding="utf-8"))
        kind = info["kind"]
        if kind == "text" and prompt is not None:
            unknown = sorted(set(prompt) - set(info.get("chars", "")))
            if unknown or not prompt:
                raise TitoError(f"--prompt {prompt!r}: " + (f"the characters {unknown} do not "
                                f"occur in {info.get('data', 'the training text')}" if unknown
                                else "the prompt is empty"),
                                "use characters of the training text (letters, punctuation)")
        cmd = [sys.executable, "-m", "tito.milestone_work", "demo", str(run_dir), str(ws.root),
               str(ws.package), str(count), str(seed), json.dumps(prompt)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  env=mr._env(), cwd=run_dir)
        except subprocess.TimeoutExpired:
            raise TitoError(f"the demo of part {p.number} took more than {timeout:.0f} s",
                            f"the weights are in {run_dir}") from None
        msg = next((json.loads(x) for x in reversed(proc.stdout.splitlines())
                    if x.startswith("{")), None)
        if msg is None or "error" in msg:
            why = msg["error"] if msg else (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise TitoError(f"the demo of part {p.number} failed on your code: {why}",
                            f"the weights are in {run_dir}")
        shows.append(Show(p.number, kind, run_dir, label, msg))
    return shows


def _learners_tinytorch(root: str, expect: str) -> str | None:
    """In a subprocess: import the workspace's tinytorch; what is wrong, or None."""
    sys.path.insert(0, root)
    import tinytorch

    where = Path(list(tinytorch.__path__)[0]).resolve()
    if where != Path(expect).resolve():
        return f"tinytorch was imported from {where}, expected {expect}"
    return None


def _load(model, npz: Path):
    with np.load(npz, allow_pickle=False) as z:
        model.load_state_dict({k: z[k] for k in z.files})
    model.eval()
    return model


def _measure_child(out_dir: Path, root: str, expect: str, request: dict) -> dict:
    """In the subprocess: rebuild a GPT saved by nb.save_gpt from its GPTConfig on the learner's
    tinytorch, load its weights, and measure it here (routing answers, validation loss)."""
    err = _learners_tinytorch(root, expect)
    if err:
        return {"error": err}
    if request["what"] == "lenet":
        return _measure_lenets(out_dir, request)
    from tinytorch.transformers import GPT, GPTConfig

    name = request["model"]
    info = _read_results(out_dir / "results.json")["models"][name]
    model = _load(GPT(GPTConfig(**info["config"])), out_dir / f"{name}.npz")
    if request["what"] == "routing":
        n, length = int(request["n"]), int(request["length"])
        held = digit_strings(n, length, int(request["seed"]))  # (n, L)
        answer = ROUTING_TASKS[request["task"]](held)
        prompt = np.concatenate([held, np.full((n, 1), SEP)], axis=1)  # (n, L + 1)
        out = np.asarray(model.generate(prompt, length, temperature=0))[:, length + 1:]  # (n, L)
        if out.shape != answer.shape:
            return {"error": f"GPT.generate gave answers of shape {out.shape}, not {answer.shape}"}
        return {"n": n, "exact": float(np.mean((out == answer).all(axis=1))),
                "digit_acc": float(np.mean(out == answer)),
                "example": f"{''.join(map(str, held[0]))} -> {''.join(map(str, out[0]))}"}
    from tito.milestones.m05_transformer import bigram_loss, lm_loss

    chars = info.get("chars")
    if not chars:
        return {"error": f"{name!r} was saved without its tokenizer: nb.save_gpt(name, model, tok)"}
    text, stoi = _corpus(request["data"]), {ch: i for i, ch in enumerate(chars)}
    unknown = sorted(set(text) - set(stoi))
    if unknown:
        return {"error": f"the saved tokenizer has no id for {unknown[:5]}"}
    ids = np.array([stoi[ch] for ch in text], dtype=np.int64)
    split = int(float(request["split"]) * len(ids))
    val = lm_loss(model, ids[split:], int(model.config.block_size))
    return {"val_loss": val, "bigram_loss": bigram_loss(ids[:split], ids[split:], len(chars)),
            "n": len(ids) - split}


def lenet_from_arrays(arrays: dict):
    """Milestone 04's LeNet-5 (any widths: pruned channels and units) rebuilt from its saved
    state_dict on the learner's tinytorch - an INT8 layer (module 15, float route) wherever the
    arrays hold `weight_q` codes - with every array loaded (strict: another architecture fails)."""
    from tinytorch.activations import ReLU
    from tinytorch.convolutions import Conv2d, MaxPool2d
    from tinytorch.layers import Flatten, Linear, Sequential

    def out(i: int) -> int:
        for key in (f"{i}.weight", f"{i}.weight_q"):
            if key in arrays:
                return int(arrays[key].shape[0])
        raise ValueError(f"no weight for layer {i}: a LeNet-5 holds its weights in layers "
                         f"{', '.join(map(str, LENET_WEIGHTS))} of one Sequential")

    bias = {i: f"{i}.bias" in arrays or f"{i}.bias_q" in arrays for i in LENET_WEIGHTS}
    c1, c2, h1, h2 = out(0), out(3), out(7), out(9)
    layers = [Conv2d(1, c1, 5, padding=2, bias=bias[0]), ReLU(), MaxPool2d(2),
              Conv2d(c1, c2, 5, bias=bias[3]), ReLU(), MaxPool2d(2), Flatten(),
              Linear(c2 * 25, h1, bias=bias[7]), ReLU(), Linear(h1, h2, bias=bias[9]), ReLU(),
              Linear(h2, 10, bias=bias[11])]
    for i in LENET_WEIGHTS:
        if f"{i}.weight_q" in arrays:
            from tinytorch.quantization import QuantizedConv2d, QuantizedLinear, QuantParams

            cls = QuantizedConv2d if i in (0, 3) else QuantizedLinear
            layers[i] = cls(layers[i], QuantParams(1.0, 0), mode="float")
    model = Sequential(*layers)
    model.load_state_dict(arrays)
    return model.eval()


def _measure_lenets(out_dir: Path, request: dict) -> dict:
    """In the subprocess: each saved LeNet-5's accuracy on tito's MNIST test images (tito's loader
    and normalisation, the learner's layers computing the logits); the sparsity curve of one."""
    import warnings

    from tinytorch.tensor import Tensor, no_grad

    from tito.data import datasets

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        images, labels = datasets().load_mnist("test")
    prov = datasets().last_provenance("mnist")
    n = min(int(request["n"]), len(labels))
    x = ((np.asarray(images[:n], dtype=np.float32) / 255.0 - MNIST_MEAN) / MNIST_STD)[:, None]
    y = np.asarray(labels[:n])

    def accuracy(model) -> float:
        with no_grad():
            pred = np.concatenate([np.asarray(model(Tensor(x[i:i + 500])).data).argmax(axis=1)
                                   for i in range(0, n, 500)])
        return float(np.mean(pred == y))

    models, built = {}, {}
    for name in request["models"]:
        try:
            built[name] = lenet_from_arrays(_arrays(out_dir / f"{name}.npz"))
            models[name] = {"accuracy": accuracy(built[name])}
        except Exception as e:  # noqa: BLE001 - the learner's layers, or a file that is no LeNet
            models[name] = {"error": f"{type(e).__name__}: {e}"}
    msg = {"n": n, "models": models,
           "note": "" if prov is None or prov.exact else " (a non-official copy of mnist)"}
    at, of = request.get("sparsities"), request.get("sparsity_model")
    if at and of in built:
        try:
            from tinytorch.compression import prune_channels, prune_neurons

            msg["sparsity"] = {"accuracy": [accuracy(prune_neurons(prune_channels(built[of], float(s)), float(s)).eval())
                                            for s in at]}
        except Exception as e:  # noqa: BLE001
            msg["sparsity"] = {"error": f"{type(e).__name__}: {e}"}
    return msg


def _demo_child(run_dir: Path, root: str, expect: str, count: int, seed: int,
                prompt: str | None = None) -> dict:
    """In the subprocess: rebuild the model on the learner's tinytorch, load its weights, predict."""
    err = _learners_tinytorch(root, expect)
    if err:
        return {"error": err}
    from tinytorch.tensor import Tensor, no_grad

    info = json.loads((run_dir / "model.json").read_text(encoding="utf-8"))
    module, fn = info["build"].split(":")
    build = getattr(importlib.import_module(module), fn)
    model = _load(build(**info["config"]) if "config" in info else build(), run_dir / "model.npz")

    def forward(x: np.ndarray) -> np.ndarray:
        with no_grad():
            return np.asarray(model(Tensor(np.ascontiguousarray(x, dtype=np.float32))).numpy())

    kind = info["kind"]
    if kind == "text":  # a language model writes, from the prompt
        from tinytorch.tensor import manual_seed

        chars = info["chars"]
        prompt = prompt or info.get("prompt") or chars[0]
        stoi = {ch: i for i, ch in enumerate(chars)}
        manual_seed(seed)  # the sampling of GPT.generate draws from the course's generator
        temperature = float(info.get("temperature", 0.8))
        out = model.generate(np.array([[stoi[ch] for ch in prompt]]),
                             int(info.get("sample_chars", 500)), temperature=temperature)
        return {"text": "".join(chars[int(i)] for i in np.asarray(out)[0]), "prompt": prompt,
                "temperature": temperature}
    if kind == "routing":  # 05 part 1: fresh digit strings, answered greedily
        length = int(info["length"])
        strings = digit_strings(count, length, seed)  # (count, L)
        prompt_ids = np.concatenate([strings, np.full((count, 1), SEP)], axis=1)
        out = np.asarray(model.generate(prompt_ids, length, temperature=0))[:, length + 1:]
        return {"task": info["task"], "inputs": strings.tolist(), "answers": out.tolist(),
                "expected": ROUTING_TASKS[info["task"]](strings).tolist()}
    if kind in ("plane", "xor"):
        if kind == "xor":
            pts, y = XOR_X, GATES["xor"]
        else:  # a sample of the run's points: a 40 x 16 map holds a few dozen legibly
            with np.load(run_dir / "demo_data.npz", allow_pickle=False) as z:
                pts, y = z["x"], z["y"]
            keep = np.random.default_rng(seed).permutation(len(pts))[:max(count, 1) * 5]
            pts, y = pts[keep], y[keep]
        lo, hi = pts.min(axis=0) - 0.25, pts.max(axis=0) + 0.25
        cols, rows = (40, 16) if kind == "plane" else (24, 10)
        gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], cols), np.linspace(hi[1], lo[1], rows))
        grid = np.stack([gx.ravel(), gy.ravel()], axis=1)  # (rows*cols, 2), top row first
        threshold = float(info.get("threshold", 0.0))
        fires = forward(grid).reshape(rows, cols) > threshold
        cell = np.stack([np.clip(((pts[:, 0] - lo[0]) / (hi[0] - lo[0]) * (cols - 1)).round(), 0, cols - 1),
                         np.clip(((hi[1] - pts[:, 1]) / (hi[1] - lo[1]) * (rows - 1)).round(), 0, rows - 1)], 1)
        pred = (forward(pts).reshape(-1) > threshold).astype(int)
        return {"grid": fires.astype(int).tolist(), "points": cell.astype(int).tolist(),
                "labels": np.asarray(y).astype(int).tolist(), "predictions": pred.tolist(),
                "inputs": pts.tolist() if kind == "xor" else []}
    if kind not in ("digits", "cifar"):
        return {"error": f"this tito cannot show a demo of kind {kind!r}: upgrade tinytorch"}
    from tinytorch import datasets

    images, labels = (datasets.load_mnist("test") if info["data"] == "mnist"
                      else datasets.load_cifar10("test"))
    pick = np.random.default_rng(seed).choice(len(labels), size=count, replace=False)
    imgs = np.asarray(images[pick])  # uint8 (count, 28, 28) or (count, 32, 32, 3)
    if info.get("layout") == "flat":  # (count, 784), as milestone 03's flatten
        x = (imgs.reshape(count, -1).astype(np.float32) / 255.0 - info["mean"][0]) / info["std"][0]
    else:  # (count, C, H, W), as milestone 04 feeds its CNNs
        from tinytorch.transforms import normalize

        x = normalize(imgs, info["mean"], info["std"])
    logits = forward(x)  # (count, 10)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    classes = list(getattr(datasets, "CIFAR10_CLASSES", [])) if kind == "cifar" else \
        [str(i) for i in range(10)]
    return {"images": imgs.tolist(), "labels": np.asarray(labels)[pick].astype(int).tolist(),
            "predictions": p.argmax(axis=1).tolist(), "confidence": p.max(axis=1).round(4).tolist(),
            "classes": classes, "indices": pick.tolist()}


def ascii_image(img) -> list[str]:
    """An image as text, two pixel rows per line, bright pixels as dense characters (an MNIST
    digit's ink is bright): grayscale (H, W), or colour (H, W, 3) by its luminance."""
    a = np.asarray(img, dtype=np.float32)
    if a.ndim == 3:  # (H, W, 3) colour: its luminance
        a = a @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    h = a.shape[0] - a.shape[0] % 2
    pairs = (a[0:h:2] + a[1:h:2]) / 2  # (H/2, W)
    ramp = " .:-=+*#%@"
    idx = np.clip((pairs / 256.0 * len(ramp)).astype(int), 0, len(ramp) - 1)
    return ["".join(ramp[i] for i in row) for row in idx]


def plane_lines(data: dict) -> list[str]:
    """A 2-D demo as text: the plane by the model's answer (`#` where it fires, `.` where not),
    each point on top as its label (`1`/`0`), or `!` where the model gets it wrong."""
    rows = [["#" if v else "." for v in row] for row in data["grid"]]
    for (c, r), y, p in zip(data["points"], data["labels"], data["predictions"]):
        rows[r][c] = str(y) if y == p else "!"
    return ["".join(row) for row in rows]


def _child_main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "measure"):
        print("usage: python -m tito.milestone_work demo RUN_DIR ROOT PACKAGE COUNT SEED [PROMPT]\n"
              "       python -m tito.milestone_work measure OUT_DIR ROOT PACKAGE REQUEST_JSON")
        return 2
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # whatever the learner's code prints goes to stderr
    try:
        if argv[0] == "measure":
            msg = _measure_child(Path(argv[1]), argv[2], argv[3], json.loads(argv[4]))
        else:
            run_dir, root, expect, count, seed = argv[1:6]
            prompt = json.loads(argv[6]) if len(argv) > 6 else None
            msg = _demo_child(Path(run_dir), root, expect, int(count), int(seed), prompt)
    except Exception as e:  # noqa: BLE001 - reported to the parent as one line
        msg = {"error": f"{type(e).__name__}: {e}"}
    proto.write(json.dumps(msg) + "\n")
    proto.flush()
    return 0 if "error" not in msg else 1


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
