"""What every milestone script shares: the run context, the training witnesses, the plots.

A milestone part is a function `part(ctx) -> dict` that trains with the learner's `tinytorch` and
returns flat metrics (numbers and booleans). This file gives it:

    ctx.progress(epoch=3, epochs=20, loss=0.41, acc=0.93)   a live line in the parent's display
    ctx.log("generated 200 points")                         a message for the learner
    x, y = ctx.data("mnist", "train")                       a real data set (provenance recorded)
    ctx.path("curves.png")                                  where a plot goes (listed at the end)

    w = ctx.witness(model.parameters())     # before training: snapshots the weights
    w.loss(loss)                            # every step: raises NonFiniteLoss on NaN/inf
    w.grads()                               # after backward: every gradient present, finite, != 0
    metrics.update(w.metrics())             # loss_first, loss_last, loss_drop, grads_ok,
                                            # weights_changed (+ grads_match, see below)

    watch(w, ctx, optimizer, trainer, ...)  # the same, hooked into the learner's Trainer and
                                            # optimizer; gradcheck=loss_closure also compares the
                                            # first step's gradients with finite differences

Plots: plot_learning_curves, plot_decision_boundary, plot_confusion_matrix, plot_misclassified.

The witnesses are how a milestone proves that *training* happened (issue 4): the loss fell by half,
gradients reached every parameter, the weights moved. They are measured, never assumed.

Nothing here imports tinytorch at module level (the parent process imports this file too).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

# Modules to suspect when the loss stops being a number (by name; ids live in the registry).
NAN_SUSPECTS = ("losses", "autograd", "optimizers")


# ---------------------------------------------------------------------------------------------
# Failures a part reports instead of metrics
# ---------------------------------------------------------------------------------------------
class NonFiniteLoss(ArithmeticError):
    """The loss became NaN or inf: training is stopped at once, and the modules to suspect named."""

    def __init__(self, value: float, step: int, where: str = "",
                 suspects: Iterable[str] = NAN_SUSPECTS):
        self.value, self.step, self.where, self.suspects = value, step, where, tuple(suspects)
        at = f" ({where})" if where else ""
        super().__init__(f"the loss became {value} at step {step}{at}; training was stopped")


class UsageError(ValueError):
    """A setting the learner chose cannot be used (e.g. a --prompt with unknown characters): one
    line and a hint, reported like a data problem - no culprit module, nothing trained."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message, self.hint = message, hint


# ---------------------------------------------------------------------------------------------
# The run context: what a part function receives
# ---------------------------------------------------------------------------------------------
def _jsonable(o):
    if isinstance(o, (np.bool_,)):
        return bool(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, (Path,)):
        return str(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def dumps(obj) -> str:
    """JSON for the protocol: NumPy scalars become Python numbers."""
    return json.dumps(obj, default=_jsonable)


@dataclass
class RunContext:
    """Everything a part function gets: the run's settings and its channel to the parent."""

    milestone: str = "00"
    part: int = 1
    quick: bool = False
    seed: int = 0
    out_dir: Path = field(default_factory=lambda: Path("."))
    options: dict = field(default_factory=dict)  # part-specific settings (e.g. prompt, temperature)
    stream: object = None  # where protocol lines go (the runner's saved stdout)
    plots: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    provenance: dict[str, dict] = field(default_factory=dict)
    witnesses: list["TrainingWitness"] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    # --- the channel to the parent ------------------------------------------------------------
    def emit(self, **message) -> None:
        """One JSON line to the parent, e.g. {"progress": {...}} or {"log": "..."}."""
        out = self.stream or sys.stdout
        out.write(dumps(message) + "\n")
        out.flush()

    def progress(self, **fields) -> None:
        """Live progress: epoch/epochs or step/steps drive the bar; loss, acc, stage are shown."""
        self.emit(progress={"elapsed": round(self.elapsed(), 2), **fields})

    def log(self, text: str) -> None:
        self.emit(log=str(text))

    def note(self, text: str) -> None:
        """A fact the parent shows when explaining a failure (e.g. which gradient was missing)."""
        self.notes.append(str(text))

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    # --- files and data -------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        """A file in this run's folder; plots are listed for the learner at the end."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        p = self.out_dir / name
        if p.suffix in (".png", ".svg", ".pdf"):
            self.plots.append(str(p))
        return p

    def data(self, name: str, split: str = "train"):
        """A real data set through the (learner's copy of) tinytorch.datasets; provenance kept."""
        from tinytorch import datasets

        spec = datasets.resolve(name)
        loaders = {"mnist": datasets.load_mnist, "fashion-mnist": datasets.load_fashion_mnist,
                   "cifar-10": datasets.load_cifar10}
        if spec.name == "tinyshakespeare":
            out = datasets.load_shakespeare()
        else:
            out = loaders[spec.name](split)
        prov = datasets.last_provenance(spec.name)
        if prov is not None:
            self.provenance[spec.name] = {"exact": bool(prov.exact), "note": prov.note}
        return out

    def rng(self, offset: int = 0) -> np.random.Generator:
        """A NumPy generator for this run's seed (data generation, shuffles)."""
        return np.random.default_rng(self.seed + offset)

    def witness(self, parameters, suspects: Iterable[str] = NAN_SUSPECTS) -> "TrainingWitness":
        w = TrainingWitness(parameters, suspects)
        self.witnesses.append(w)
        return w


def seed_all(seed: int) -> None:
    """Seed the learner's tinytorch generator (weights, dropout, shuffling)."""
    from tinytorch.tensor import manual_seed

    manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# Witnesses: proof that training happened
# ---------------------------------------------------------------------------------------------
def _array(x) -> np.ndarray:
    """The NumPy array behind a Tensor, a Parameter, an array or a number."""
    if isinstance(x, np.ndarray):
        return x
    inner = getattr(x, "data", None)
    return inner if isinstance(inner, np.ndarray) else np.asarray(x)


class TrainingWitness:
    """Watches one training run: its losses, its gradients, its weights.

    loss_first   the first loss observed (at the initial weights)
    loss_last    the mean of the last `tail` losses observed
    loss_drop    1 - loss_last / loss_first            (condition: >= 0.5)
    grads_ok     every parameter always had a finite gradient of its own shape, and each was
                 non-zero at least once                (only if grads() was ever called)
    weights_changed   every parameter differs from its starting value (at the end, or at any
                 call of weights() during training)
    """

    def __init__(self, parameters, suspects: Iterable[str] = NAN_SUSPECTS):
        self.params = list(parameters)
        if not self.params:
            raise ValueError("the model has no parameters: nothing can be trained")
        self.start = [np.array(_array(p), copy=True) for p in self.params]
        self.suspects = tuple(suspects)
        self.losses: list[float] = []
        self.checks = 0
        self.nonzero = [False] * len(self.params)
        self.moved = [False] * len(self.params)
        self.grads_match: bool | None = None  # set by check_gradients()
        self.problems: list[str] = []

    def loss(self, value, where: str = "") -> float:
        """Record one loss; NaN or inf stops training with NonFiniteLoss."""
        arr = _array(value)
        v = float(arr.reshape(-1)[0]) if arr.size == 1 else math.nan  # a loss is one number
        if not math.isfinite(v):
            raise NonFiniteLoss(v, len(self.losses) + 1, where, self.suspects)
        self.losses.append(v)
        return v

    def _problem(self, text: str) -> None:
        if text not in self.problems and len(self.problems) < 10:
            self.problems.append(text)

    def grads(self) -> None:
        """Inspect every parameter's gradient (call after backward, before zero_grad)."""
        self.checks += 1
        for i, p in enumerate(self.params):
            shape = _array(p).shape
            g = getattr(p, "grad", None)
            if g is None:
                self._problem(f"parameter {i} {shape} received no gradient")
                continue
            g = _array(g)
            if g.shape != shape:
                self._problem(f"parameter {i} {shape} received a gradient of shape {g.shape}")
            elif not np.isfinite(g).all():
                self._problem(f"parameter {i} {shape} received a non-finite gradient")
            elif np.any(g):
                self.nonzero[i] = True

    def check_gradients(self, loss_at: Callable[[], float], h: float = 1e-2, rtol: float = 0.05,
                        atol: float = 1e-4) -> bool:
        """Compare backprop's gradients with central differences (for small, smooth models).

        For every parameter, at its largest-gradient entry and one random entry:
            numeric = (L(w + h) - L(w - h)) / 2h,    |numeric - p.grad| <= rtol * max + atol
        `loss_at()` recomputes the loss (no graph needed) with the current weights. Call it after
        backward, before the optimizer step.
        """
        rng = np.random.default_rng(0)
        ok = True
        for i, p in enumerate(self.params):
            data, g = _array(p), getattr(p, "grad", None)
            if g is None or _array(g).shape != data.shape:
                ok = False  # grads() names the problem
                continue
            g = _array(g)
            for k in sorted({int(np.argmax(np.abs(g))), int(rng.integers(g.size))}):
                idx = np.unravel_index(k, data.shape)
                old = data[idx].copy()
                data[idx] = old + h
                up = float(loss_at())
                data[idx] = old - h
                down = float(loss_at())
                data[idx] = old
                numeric, analytic = (up - down) / (2 * h), float(g[idx])
                if not abs(numeric - analytic) <= rtol * max(abs(numeric), abs(analytic)) + atol:
                    ok = False
                    self._problem(f"parameter {i} {data.shape} at {tuple(map(int, idx))}: backprop "
                                  f"gives {analytic:.4g}, finite differences {numeric:.4g}")
        self.grads_match = ok
        return ok

    def weights(self) -> None:
        """Note which parameters differ from their start now (for rules that may cycle back)."""
        for i, (p, s) in enumerate(zip(self.params, self.start)):
            self.moved[i] = self.moved[i] or not np.array_equal(_array(p), s)

    def metrics(self, tail: int = 10) -> dict:
        out: dict = {}
        if self.losses:
            first = self.losses[0]
            last = float(np.mean(self.losses[-max(1, min(tail, len(self.losses))):]))
            out.update(loss_first=first, loss_last=last,
                       loss_drop=(1.0 - last / first) if first > 0 else 0.0)
        if self.checks:
            for i, ok in enumerate(self.nonzero):
                if not ok:
                    self._problem(f"parameter {i} {_array(self.params[i]).shape} only ever "
                                  "received zero or invalid gradients")
            out["grads_ok"] = not [t for t in self.problems if "finite differences" not in t]
        if self.grads_match is not None:
            out["grads_match"] = self.grads_match
        self.weights()
        moved = self.moved
        if not all(moved):
            self._problem(f"{moved.count(False)} of {len(moved)} parameters never changed")
        out["weights_changed"] = all(moved)
        return out


def watch(witness: TrainingWitness, ctx: RunContext, optimizer, trainer=None, *,
          grads_every: int = 1, progress_every: int = 0, steps: int | None = None,
          stage: str = "", gradcheck: Callable[[], float] | None = None) -> None:
    """Hook a witness into the learner's training without changing what it computes.

    optimizer.step is wrapped to inspect the gradients just before each step (they exist there
    whatever order the learner's loop uses); trainer.train_step, if a Trainer is given, to record
    each batch's loss (a NaN stops training at once) and report progress every `progress_every`
    steps out of `steps`. `gradcheck` (a closure returning the loss) compares the first step's
    gradients with finite differences (TrainingWitness.check_gradients).
    """
    inner_step, count = optimizer.step, [0, 0]

    def step(*args, **kwargs):
        count[0] += 1
        if (count[0] - 1) % grads_every == 0:
            witness.grads()
        if count[0] == 1 and gradcheck is not None:
            witness.check_gradients(gradcheck)
        return inner_step(*args, **kwargs)

    optimizer.step = step
    if trainer is None:
        return
    inner_train = trainer.train_step

    def train_step(x, y):
        loss, right = inner_train(x, y)
        count[1] += 1
        witness.loss(loss, where=f"{stage} step {count[1]}".strip())
        if progress_every and count[1] % progress_every == 0:
            ctx.progress(step=count[1], steps=steps, loss=float(loss), stage=stage)
        return loss, right

    trainer.train_step = train_step


def merge_witness_metrics(runs: list[dict]) -> dict:
    """Several runs (seeds) -> one set of witnesses that holds only if it holds for each run."""
    out: dict = {}
    drops = [r["loss_drop"] for r in runs if "loss_drop" in r]
    if drops:
        worst = int(np.argmin(drops))
        out.update(loss_first=runs[worst]["loss_first"], loss_last=runs[worst]["loss_last"],
                   loss_drop=drops[worst])
    for key in ("grads_ok", "grads_match", "weights_changed"):
        flags = [r[key] for r in runs if key in r]
        if flags:
            out[key] = all(flags)
    return out


def accuracy(pred, target) -> float:
    """Fraction of equal entries (class ids or 0/1 labels)."""
    pred, target = _array(pred).reshape(-1), _array(target).reshape(-1)
    return float(np.mean(pred == target)) if target.size else 0.0


# ---------------------------------------------------------------------------------------------
# Plots (matplotlib's Agg backend: no display needed)
# ---------------------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(path: Path, history: dict[str, list[float]], title: str,
                         xlabel: str = "epoch") -> Path:
    """Losses on the left, accuracies on the right: `history` maps a label to one value per x."""
    plt = _pyplot()
    losses = {k: v for k, v in history.items() if "acc" not in k}
    accs = {k: v for k, v in history.items() if "acc" in k}
    fig, axes = plt.subplots(1, 2 if accs else 1, figsize=(10 if accs else 5, 3.8), squeeze=False)
    for ax, group, ylabel in ((axes[0][0], losses, "loss"), (axes[0][-1], accs, "accuracy")):
        if not group:
            continue
        for label, values in group.items():
            ax.plot(range(1, len(values) + 1), values, marker="o" if len(values) < 40 else None,
                    label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_decision_boundary(path: Path, predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                           y: np.ndarray, title: str, x_test: np.ndarray | None = None,
                           y_test: np.ndarray | None = None) -> Path:
    """The plane coloured by `predict` (N, 2) -> (N,) class, with the points on top."""
    plt = _pyplot()
    pts = x if x_test is None else np.concatenate([x, x_test])
    lo, hi = pts.min(axis=0) - 0.5, pts.max(axis=0) + 0.5
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)  # (40000, 2)
    zz = np.asarray(predict(grid)).reshape(gx.shape)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.contourf(gx, gy, zz, levels=[-0.5, 0.5, 1.5], colors=["#f4c7c3", "#c6dbef"], alpha=0.8)
    ax.scatter(x[:, 0], x[:, 1], c=np.where(y > 0, "#1f77b4", "#d62728"),
               s=18 if len(x) > 50 else 160,
               edgecolors="k", linewidths=0.4, label="training")
    if x_test is not None:
        ax.scatter(x_test[:, 0], x_test[:, 1], c=np.where(y_test > 0, "#1f77b4", "#d62728"), s=12,
                   marker="^", alpha=0.5, label="held out")
        ax.legend(loc="lower right")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_confusion_matrix(path: Path, y_true: np.ndarray, y_pred: np.ndarray, title: str,
                          classes: int = 10) -> Path:
    plt = _pyplot()
    cm = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    fig, ax = plt.subplots(figsize=(6, 5.4))
    im = ax.imshow(np.log1p(cm), cmap="Blues")
    for i in range(classes):
        for j in range(classes):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if cm[i, j] > cm.max() / 3 else "black")
    ax.set_xticks(range(classes))
    ax.set_yticks(range(classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="log(1 + count)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_misclassified(path: Path, images: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
                       title: str, n: int = 24) -> Path:
    """Up to n wrongly classified images, each titled 'true -> predicted'."""
    plt = _pyplot()
    wrong = np.flatnonzero(y_true != y_pred)[:n]
    cols = 8
    rows = max(1, math.ceil(len(wrong) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.4 + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, k in zip(axes.ravel(), wrong):
        ax.imshow(images[k], cmap="gray_r")
        ax.set_title(f"{y_true[k]} -> {y_pred[k]}", fontsize=8)
    fig.suptitle(title if len(wrong) else f"{title}: none")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
