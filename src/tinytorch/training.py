# %% [markdown]
# # Module 08 - Training
#
# Everything comes together: a model, a loss, an optimizer and a data loader make a training loop.
# You write the parts of a small `Trainer` that matter - one optimisation step, an evaluation pass
# that changes nothing, accuracy, early stopping and checkpoints saved as `.npz` files that can
# never run code - and the given `fit` runs them epoch after epoch, with a history of every epoch.
#
# Complete it and milestone 03 (the MLP revival: backprop on MNIST) unlocks.
#
# ## What you build
#
# | step | you write | checked by |
# |---|---|---|
# | 1 | `correct_count(output, targets)` | `check("08", "correct_count")` |
# | 2 | `Trainer.train_step` and `Trainer.evaluate` | `check("08", "train_step")`, `check("08", "evaluate")` |
# | 3 | `save_checkpoint` and `load_checkpoint` | `check("08", "checkpoint")` |
# | 4 | `EarlyStopping.step` | `check("08", "EarlyStopping.step")` |
# | 5 | (given) `Trainer.fit`, which runs all of it | `check("08", "fit")` |
#
# Every step has a markdown cell that teaches it, a cell to fill in (your copy says
# `# YOUR CODE HERE` and `raise NotImplementedError()` where the answer goes), a "try it" cell on a
# tiny problem, and a check cell that runs the same checks as `tito module test 08 --task <name>`.
# The checks feed the loop plain lists of `(x, y)` batches, so they test your training code and not
# module 05's `DataLoader`.

# %%
"""Module 08: the training loop.

    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1, momentum=0.9))
    history = trainer.fit(train_loader, epochs=5, val_loader=val_loader,
                          early_stopping_patience=2, checkpoint_path="best.npz")
    history["val_acc"][-1]                      # one entry per epoch run
    test_loss, test_acc = trainer.evaluate(test_loader)

One training step on a batch (x, y):
    zero_grad  ->  out = model(x)  ->  loss = loss_fn(out, y)  ->  loss.backward()  ->  step()
Epoch figures are averages over examples: loss = sum_b loss_b * n_b / sum_b n_b, where loss_b is
the batch's mean loss; accuracy = #(argmax_c out[n, c] == y[n]) / N for classification.

Checkpoints are plain .npz files (np.savez): named float32 arrays, "model.<param name>",
"optimizer.<buffer>" and "meta.<key>". Loading uses allow_pickle=False, so a checkpoint can never
run code, unlike a pickle.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from tinytorch.optimizers import clip_grad_norm_
from tinytorch.tensor import Tensor, no_grad

HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


# %% [markdown]
# ## The loop, and what an epoch costs
#
# One optimisation step on a batch $(x, y)$ is always the same five lines:
#
# ```
# optimizer.zero_grad()          # forget the previous batch's gradients (they accumulate)
# out = model(x)                 # forward: (N, C) scores, recording the graph
# loss = loss_fn(out, y)         # a scalar
# loss.backward()                # every parameter's .grad
# optimizer.step()               # move the weights
# ```
#
# An *epoch* is one pass over the training set in batches. MNIST has 60,000 training images; in
# batches of 128 that is $\lceil 60000 / 128 \rceil = 469$ steps, the last one holding only
# $60000 - 468 \cdot 128 = 96$ images. Milestone 03 trains the 784-256-128-10 MLP for 15 epochs, about
# 7,000 steps; on the 2-core development machine the whole run took 23 seconds, so about 1.5 s an
# epoch, 3 ms a step.
#
# **Where the time goes.** The forward pass of a `Linear` layer is one matrix multiply, $2 N
# d_{in} d_{out}$ FLOPs; its backward pass is two more of the same size (one for the weight gradient,
# one for the input gradient). So a training step costs about three forward passes, $6 N P$ FLOPs
# for $P$ weights: for the MLP, $6 \cdot 128 \cdot 235{,}146 \approx 181$ million FLOPs, a few
# milliseconds of one CPU core. On top come the things that are not matrix multiplies: the
# elementwise ops (ReLU, the softmax of the loss), the optimizer's passes over every weight
# (module 07 measured Adam's at about a third of forward + backward on this MLP), Python's overhead
# per op (microseconds, which matters only for tiny layers), and the data pipeline (shuffling and
# gathering 128 rows of 784 floats). An evaluation pass does only the forward, so it runs about
# three times faster per example than training.
#
# **Averages over examples.** The epoch's training loss is the mean over examples. Each batch's loss
# is already the *mean* over its rows, so weight it by the batch size $n_b$:
#
# $$L_{\text{epoch}} = \frac{\sum_b n_b\, L_b}{\sum_b n_b}.$$
#
# Worked example: batches of 32, 32, 32 and a last batch of 4, with mean losses 0.5, 0.5, 0.5 and 2.0.
# The plain average of the four numbers is $3.5 / 4 = 0.875$; the average over the 100 examples is
# $(96 \cdot 0.5 + 4 \cdot 2.0) / 100 = 0.56$. The plain average lets the four examples of the last
# batch count as much as 32 each. The given `train_epoch` (inside `Trainer` below) does it right,
# and your `evaluate` must too.

# %% [markdown]
# ## Accuracy: `correct_count`
#
# For classification the model outputs one score (a logit) per class, shape $(N, C)$, and the
# prediction for row $n$ is the class with the largest score, $\hat y_n = \arg\max_c
# \text{out}_{n,c}$. `correct_count` returns how many rows are right, $\#\{n : \hat y_n = y_n\}$;
# the accuracy of an epoch is the sum of these counts over batches divided by the number of
# examples, so batches of different sizes are weighted correctly for free.
#
# Worked example: logits `[[0.1, 2.0, -1.0], [3.0, 0.0, 0.0], [0.0, 0.0, 5.0], [1.0, 2.0, 3.0]]`
# predict classes 1, 0, 2, 2; with targets `[1, 0, 1, 2]` three are right.
#
# The given code above the solution returns `None` when the task is not classification into
# classes - outputs that are not 2-D, targets that are not one integer label per row (a
# regression's float targets): there is no accuracy then, and the history records NaN. Write the
# count as ONE vectorised expression: `out.argmax(axis=1)` is $(N,)$, compare it with `y`, count the
# `True`s (`np.count_nonzero`), and return a Python `int`. A Python loop over the rows would cost
# about a microsecond per row; the vectorised version costs $NC$ comparisons at memory speed.

# %% nbgrader={"grade": false, "grade_id": "correct-count", "locked": false, "schema_version": 3, "solution": true, "task": false}
def correct_count(output, targets) -> int | None:
    """How many rows of `output` (N, C) have their largest score at the target class (N,) ints.

    None when the task is not classification into classes (e.g. regression): no accuracy then.
    """
    out = output.data if isinstance(output, Tensor) else np.asarray(output)
    y = targets.data if isinstance(targets, Tensor) else np.asarray(targets)
    if out.ndim != 2 or y.shape != (out.shape[0],) or y.dtype.kind not in "iu":
        return None
    # HINT: one vectorised comparison, no Python loop over the rows
    ### BEGIN SOLUTION
    return int(np.count_nonzero(out.argmax(axis=1) == y))
    ### END SOLUTION


# %%
if __name__ == "__main__":
    logits = Tensor(np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0], [0.0, 0.0, 5.0], [1.0, 2.0, 3.0]],
                             dtype=np.float32))
    print("predictions", logits.data.argmax(axis=1), " correct:", correct_count(logits, Tensor(np.array([1, 0, 1, 2]))))
    print("regression targets ->", correct_count(logits[:, :1], Tensor(np.array([0.5, 1.0, 2.0, 3.0], np.float32))))


# %% nbgrader={"grade": true, "grade_id": "check-correct-count", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("08", "correct_count")


# %% [markdown]
# ## Given: progress bars and the one-line summary
#
# `fit` reports each epoch through a small given helper, `_Progress`. With `progress=True` it
# prints one plain summary line per epoch (`_summary` formats it: losses, accuracies, learning
# rate, seconds), and when standard output is an interactive terminal it also draws a `rich`
# progress bar over the batches that vanishes when the epoch ends. Logs, pipes, CI and notebooks
# therefore never see terminal control characters - one of the checks captures the output and
# looks for them - and `progress=False` prints nothing at all. In a notebook, too, the lines are
# plain text on standard output: the console is told whether standard output really is a terminal
# (`sys.stdout.isatty()`), because a Jupyter kernel sets `FORCE_COLOR`, and rich would otherwise
# render the lines as HTML through IPython's display, where neither a log nor that check sees them. The bar costs one update per batch,
# a few microseconds: nothing next to a step of milliseconds.

# %%
class _Progress:
    """A rich progress bar over the batches of an epoch, or nothing at all.

    Bars are drawn only when `enabled` and stdout is an interactive terminal, and vanish when
    done (transient), so logs, pipes and CI never see control characters. With `enabled`, one
    plain summary line per epoch is printed either way.
    """

    def __init__(self, enabled: bool):
        self.enabled, self.bar, self.console = enabled, None, None
        if enabled:
            import sys

            from rich.console import Console

            # "a terminal" means stdout is one: not rich's guess from the environment (a Jupyter
            # kernel sets FORCE_COLOR and would get HTML output that never reaches stdout)
            self.console = Console(force_jupyter=False, force_terminal=bool(sys.stdout and sys.stdout.isatty()))
            if self.console.is_terminal and not self.console.is_dumb_terminal:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

                self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                    TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
                                    console=self.console, transient=True)

    def __enter__(self):
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()

    def task(self, description: str, total: int | None):
        return None if self.bar is None else self.bar.add_task(description, total=total, info="")

    def advance(self, task, info: str = "") -> None:
        if task is not None:
            self.bar.update(task, advance=1, info=info)

    def done(self, task) -> None:
        if task is not None:
            self.bar.remove_task(task)

    def line(self, text: str) -> None:
        if self.enabled:
            self.console.print(text, highlight=False, soft_wrap=True)


def _length(loader) -> int | None:
    try:
        return len(loader)
    except TypeError:
        return None


def _summary(r: dict, epochs: int) -> str:
    text = f"epoch {r['epoch']:>{len(str(epochs))}}/{epochs}  train loss {r['train_loss']:.4f}"
    if not math.isnan(r["train_acc"]):
        text += f" acc {r['train_acc']:.2%}"
    if not math.isnan(r["val_loss"]):
        text += f"  val loss {r['val_loss']:.4f}"
        if not math.isnan(r["val_acc"]):
            text += f" acc {r['val_acc']:.2%}"
    return text + f"  lr {r['lr']:.3g}  {r['seconds']:.1f}s"


# %% [markdown]
# ## The Trainer: `train_step`
#
# `Trainer(model, loss_fn, optimizer, scheduler=None, scheduler_interval="epoch",
# clip_grad_norm=None)` holds one model, loss and optimizer. Most of the class is given -
# `train_epoch` loops over a loader and averages, `fit` runs the epochs - and you write its two
# central methods.
#
# **`train_step(x, y)`** is the five lines above, plus one option: when `self.clip_grad_norm` is
# set, clip the gradients with module 07's `clip_grad_norm_(self.optimizer.parameters(), ...)`
# *after* `backward()` and *before* `step()` (the only place where it makes sense: the gradients
# exist and have not been used yet). It returns `(loss.item(), correct_count(out, y))`: the
# batch's loss as a Python float - the loss *before* this step's update - and the number of correct
# predictions, or `None` for regression.
#
# The order matters, and the check tests it: it plants garbage gradients (1000 everywhere) before
# calling `train_step`, so forgetting `zero_grad` - or calling it after `backward()` - gives a step
# with the wrong gradient. `loss.item()` matters too: keeping the loss *Tensor* in a history list
# would keep its whole graph, with every activation of the batch, alive until the list is dropped.

# %% [markdown]
# ## The Trainer: `evaluate`
#
# **`evaluate(loader)`** measures the model on data it does not learn from, and must change
# nothing:
#
# - **`model.eval()`**: layers that behave differently in training switch to their inference
#   behaviour - `Dropout` stops dropping, and module 09's `BatchNorm2d` uses its running statistics
#   instead of the batch's. Without it, evaluation would be noisy (two runs would disagree) and
#   biased. Restore the mode the model was in afterwards (`was_training = self.model.training`,
#   then `self.model.train(was_training)`), in a `finally:` so that an exception does not leave the
#   model in eval mode.
# - **`with no_grad():`** the forward pass records no graph. Nothing is saved for a backward pass
#   that will never come, so evaluation needs only the activations of the current layer instead of
#   every layer's. For the MLP that is a few hundred kilobytes per batch; for the CNNs of module 09,
#   whose convolutions save patch matrices of 150 MB, it is the difference between fitting in
#   memory or not - and with no graph to keep, evaluation can use much larger batches.
# - **No step, no gradient touched**: `evaluate` never calls `backward`, `zero_grad` or `step`, so
#   the gradients of a training step in progress survive it (the check verifies that `p.grad` is
#   unchanged).
#
# It returns `(mean loss, accuracy)` over all examples: the batch losses weighted by batch size
# (`self.loss_fn(out, y).item() * n`), and the correct counts over the number of scored examples
# (NaN when `correct_count` says there is no accuracy). Use `max(seen, 1)` so an empty loader does
# not divide by zero.

# %% nbgrader={"grade": false, "grade_id": "trainer", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Trainer:
    """Runs training and evaluation epochs for one model, loss and optimizer.

    scheduler: stepped once per epoch (scheduler_interval="epoch", torch's convention) or once per
    batch ("step", e.g. for WarmupCosine). clip_grad_norm: clip gradients to this norm before
    every step (None: no clipping).
    """

    def __init__(self, model, loss_fn, optimizer, scheduler=None, scheduler_interval: str = "epoch",
                 clip_grad_norm: float | None = None):
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.scheduler, self.scheduler_interval = scheduler, scheduler_interval
        self.clip_grad_norm = clip_grad_norm
        self.history: dict[str, list] = {k: [] for k in HISTORY_KEYS}
        self.early_stopping: EarlyStopping | None = None
        self.stopped_early = False

    def train_step(self, x: Tensor, y: Tensor) -> tuple[float, int | None]:
        """One optimisation step on a batch; returns (the batch's loss, #correct or None)."""
        # HINT: zero_grad, forward, loss, backward, (clip), step - in that order
        ### BEGIN SOLUTION
        self.optimizer.zero_grad()
        out = self.model(x)  # (N, C)
        loss = self.loss_fn(out, y)  # scalar
        loss.backward()
        if self.clip_grad_norm is not None:
            clip_grad_norm_(self.optimizer.parameters(), self.clip_grad_norm)
        self.optimizer.step()
        return loss.item(), correct_count(out, y)
        ### END SOLUTION

    def evaluate(self, loader) -> tuple[float, float]:
        """(mean loss, accuracy) over `loader` with the model in eval mode and no graph recorded.
        The model's train/eval mode is restored afterwards and no gradient is touched."""
        # HINT: model.eval() switches Dropout off; no_grad() stops graph recording
        ### BEGIN SOLUTION
        was_training = self.model.training
        self.model.eval()
        total, correct, seen, scored = 0.0, 0, 0, 0
        try:
            with no_grad():
                for x, y in loader:
                    out = self.model(x)  # (N, C)
                    n = len(x)
                    total += self.loss_fn(out, y).item() * n
                    right = correct_count(out, y)
                    seen += n
                    if right is not None:
                        correct, scored = correct + right, scored + n
        finally:
            self.model.train(was_training)
        return total / max(seen, 1), (correct / scored if scored else math.nan)
        ### END SOLUTION

    def train_epoch(self, loader, progress: _Progress | None = None, label: str = "train") -> tuple[float, float]:
        """One pass over `loader`: (mean loss, accuracy), averaged over examples."""
        progress = progress or _Progress(False)
        task = progress.task(label, _length(loader))
        self.model.train()
        total, correct, seen, scored = 0.0, 0, 0, 0
        for x, y in loader:
            loss, right = self.train_step(x, y)
            if self.scheduler is not None and self.scheduler_interval == "step":
                self.scheduler.step()
            n = len(x)
            total, seen = total + loss * n, seen + n
            if right is not None:
                correct, scored = correct + right, scored + n
            progress.advance(task, f"loss {loss:.4f}")
        progress.done(task)
        return total / max(seen, 1), (correct / scored if scored else math.nan)

    def fit(self, train_loader, epochs: int, val_loader=None, early_stopping_patience: int | None = None,
            checkpoint_path=None, progress: bool = True,
            on_epoch_end: Callable[[int, dict], None] | None = None) -> dict[str, list]:
        """Train for `epochs` epochs (fewer if early stopping triggers); returns the history,
        {key: one value per epoch} for HISTORY_KEYS (val_* are NaN without a val_loader).

        early_stopping_patience: stop after that many epochs without a better validation loss,
        then restore the best weights. checkpoint_path: save the best model so far (by validation
        loss; by epoch without a val_loader) there. on_epoch_end(epoch, record) is called after
        each epoch with that epoch's history entries.
        """
        if early_stopping_patience is not None and val_loader is None:
            raise ValueError("fit: early stopping watches the validation loss; pass a val_loader")
        self.history = {k: [] for k in HISTORY_KEYS}
        self.early_stopping = EarlyStopping(early_stopping_patience) if early_stopping_patience else None
        self.stopped_early, best = False, math.inf
        with _Progress(progress and epochs > 0) as bars:
            for epoch in range(1, epochs + 1):
                start = time.perf_counter()
                lr = self.optimizer.param_groups[0]["lr"]
                train_loss, train_acc = self.train_epoch(train_loader, bars, f"epoch {epoch}/{epochs}")
                val_loss, val_acc = self.evaluate(val_loader) if val_loader is not None else (math.nan, math.nan)
                if self.scheduler is not None and self.scheduler_interval == "epoch":
                    self.scheduler.step()
                record = dict(epoch=epoch, train_loss=train_loss, train_acc=train_acc, val_loss=val_loss,
                              val_acc=val_acc, lr=lr, seconds=time.perf_counter() - start)
                for key in HISTORY_KEYS:
                    self.history[key].append(record[key])
                bars.line(_summary(record, epochs))
                if not math.isfinite(train_loss):
                    raise FloatingPointError(f"fit: the training loss became {train_loss} in epoch {epoch}")
                score = val_loss if val_loader is not None else -epoch
                if checkpoint_path is not None and score < best:
                    save_checkpoint(self.model, checkpoint_path, self.optimizer, epoch=epoch,
                                    train_loss=train_loss, val_loss=val_loss)
                best = min(best, score)
                if on_epoch_end is not None:
                    on_epoch_end(epoch, record)
                if self.early_stopping is not None and self.early_stopping.step(val_loss, self.model, epoch):
                    self.stopped_early = True
                    bars.line(f"early stop: no better validation loss for {early_stopping_patience} "
                              f"epochs; restoring the weights of epoch {self.early_stopping.best_epoch}")
                    break
        if self.early_stopping is not None:
            self.early_stopping.restore(self.model)
        return self.history


# %%
if __name__ == "__main__":
    from tinytorch.activations import ReLU
    from tinytorch.layers import Dropout, Linear, Sequential
    from tinytorch.losses import CrossEntropyLoss
    from tinytorch.optimizers import SGD
    from tinytorch.tensor import manual_seed

    def blobs(n_per_class, seed, classes=3):
        """Three well separated Gaussian blobs in 2-D: x float32 (N, 2), y int64 (N,)."""
        rng = np.random.default_rng(seed)
        angles = np.arange(classes) * 2 * np.pi / classes
        centres = 3.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (classes, 2)
        y = np.repeat(np.arange(classes), n_per_class)
        x = centres[y] + 0.5 * rng.standard_normal((len(y), 2))
        return x.astype(np.float32), y.astype(np.int64)

    def batches(x, y, size=32):
        return [(Tensor(x[i:i + size]), Tensor(y[i:i + size])) for i in range(0, len(x), size)]

    manual_seed(0)
    model = Sequential(Linear(2, 16), ReLU(), Dropout(0.2), Linear(16, 3))
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1, momentum=0.9))
    x, y = blobs(20, seed=1)
    for step in range(5):
        loss, right = trainer.train_step(Tensor(x), Tensor(y))
        print(f"step {step + 1}: loss {loss:.4f}, {right}/{len(y)} correct")


# %% nbgrader={"grade": true, "grade_id": "check-train-step", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("08", "train_step")


# %%
if __name__ == "__main__":
    xv, yv = blobs(10, seed=2)
    model.train()
    print("evaluate (mean loss, accuracy):", trainer.evaluate(batches(xv, yv, size=8)))
    print("again, the same numbers:       ", trainer.evaluate(batches(xv, yv, size=8)))
    print("model back in training mode:", model.training)


# %% nbgrader={"grade": true, "grade_id": "check-evaluate", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("08", "evaluate")


# %% [markdown]
# ### Measured: a training step against an evaluation pass
#
# The cell below times `train_step` and `evaluate` on the same 1,024 examples of the MNIST MLP's
# shape (random numbers: the time does not depend on the values). Expect evaluation to be about
# three times faster per example - a forward pass is one matrix multiply per layer, a training step
# three plus the optimizer - and notice that `evaluate` can take one big batch: with no graph it
# keeps no activations for later.

# %%
if __name__ == "__main__":
    import time

    from tinytorch.optimizers import Adam

    rng = np.random.default_rng(0)
    xs = rng.standard_normal((1024, 784)).astype(np.float32)
    ys = rng.integers(0, 10, 1024)
    mlp = Sequential(Linear(784, 256), ReLU(), Linear(256, 128), ReLU(), Linear(128, 10))
    timing = Trainer(mlp, CrossEntropyLoss(), Adam(mlp.parameters(), lr=1e-3))
    train_batches = batches(xs, ys, size=128)  # 8 batches of 128
    start = time.perf_counter()
    for xb, yb in train_batches:
        timing.train_step(xb, yb)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    timing.evaluate(batches(xs, ys, size=1024))  # one batch of 1024
    eval_s = time.perf_counter() - start
    print(f"train_step: {train_s * 1e3:6.1f} ms for 1024 examples ({train_s / 8 * 1e3:.2f} ms per batch of 128)")
    print(f"evaluate:   {eval_s * 1e3:6.1f} ms for 1024 examples -> {train_s / eval_s:.1f}x faster per example")


# %% [markdown]
# ## Checkpoints: named arrays in an `.npz`, never a pickle
#
# A checkpoint is everything needed to resume or to use a trained model: the model's weights, the
# optimizer's state (momentum buffers, Adam's moments and step counts, the learning rate) and a few
# numbers (the epoch, the losses). All of it is *named arrays*, which is exactly what NumPy's
# `.npz` format stores: a zip file with one `.npy` entry (a small header with dtype and shape, then
# the raw bytes) per name.
#
# **Why not pickle.** `pickle.load` does not just read data: a pickle can name any importable
# callable and its arguments, and loading calls it (this is how `__reduce__` rebuilds objects). A
# checkpoint downloaded from the internet could therefore run `os.system(...)` the moment you load
# it. That is why PyTorch's `torch.load` switched to `weights_only=True` by default, and why formats
# like safetensors exist. An `.npz` read with `np.load(path, allow_pickle=False)` can only ever
# produce arrays of plain numbers; an object array inside would be refused. `save_checkpoint`
# refuses `meta` values that would need pickle (the given check above the region).
#
# The given helper `_arrays` turns any state dict - the model's `{name: array}` from
# `state_dict()`, an optimizer's, or one whose values are Tensors - into plain NumPy arrays; both
# checkpoint functions and early stopping below use it.

# %%
def _arrays(state: dict) -> dict[str, np.ndarray]:
    return {k: np.asarray(v.data if isinstance(v, Tensor) else v) for k, v in state.items()}


# %% [markdown]
# ### `save_checkpoint` and `load_checkpoint`
#
# **The format.** Keys are prefixed by their part: `"model.0.weight"`, `"optimizer.state0.exp_avg"`,
# `"optimizer.group0.lr"`, `"meta.epoch"`. `load_checkpoint` splits each key at its *first* dot into
# (part, name) - the names themselves contain dots - and gives each part back to its owner:
# `model.load_state_dict(...)` (which copies into the existing parameters, in place, so an
# optimizer holding them keeps working), `optimizer.load_state_dict(...)` when an optimizer is
# given and the file has its state, and the meta values as Python numbers and strings
# (`v.item()` for 0-d arrays).
#
# **Writing safely.** A crash (or Ctrl-C) in the middle of writing must not destroy the previous
# checkpoint. So write to a temporary file *in the same folder* (`tempfile.mkstemp(dir=...)`),
# then `os.replace(tmp, path)`: a rename within one file system is atomic, so `path` is always either
# the old complete file or the new complete file. Write through the open file object
# (`np.savez(f, **arrays)`): given a file *name*, `np.savez` appends `.npz` when the name lacks it,
# and the checkpoint would not be at exactly `path`. If anything fails, delete the temporary file and
# re-raise.
#
# **Sizes.** The MNIST MLP's 235,146 parameters are 0.94 MB in float32; with Adam's two moments the
# checkpoint is 2.8 MB. A 7-billion-parameter model with its AdamW state is 84 GB in float32 - which
# is why large runs save the weights in 16-bit and shard the optimizer state across files.

# %% nbgrader={"grade": false, "grade_id": "checkpoints", "locked": false, "schema_version": 3, "solution": true, "task": false}
def save_checkpoint(model, path, optimizer=None, **meta) -> Path:
    """Write the model's state_dict (and the optimizer's state, and `meta` numbers/strings) to one
    .npz file at exactly `path`, atomically (a crash never leaves half a checkpoint)."""
    path = Path(path)
    for key, value in meta.items():
        if np.asarray(value).dtype == object:
            raise TypeError(f"save_checkpoint: meta {key}={value!r} is not a number, string or array "
                            "(it would need pickle)")
    # HINT: names "model.<param>", "optimizer.<key>", "meta.<key>"; np.savez into a temporary file
    # HINT: in the same folder, then os.replace it onto `path` (atomic)
    ### BEGIN SOLUTION
    arrays = {f"model.{k}": v for k, v in _arrays(model.state_dict()).items()}
    if optimizer is not None:
        arrays.update({f"optimizer.{k}": v for k, v in _arrays(optimizer.state_dict()).items()})
    arrays.update({f"meta.{k}": np.asarray(v) for k, v in meta.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:  # a file object: np.savez adds no ".npz" to the name
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    ### END SOLUTION
    return path


def load_checkpoint(model, path, optimizer=None) -> dict:
    """Load a checkpoint written by save_checkpoint into `model` (and `optimizer`); return its meta
    as {key: Python number or string}."""
    # HINT: np.load(path, allow_pickle=False); split each key at its first "." into (part, name)
    ### BEGIN SOLUTION
    with np.load(Path(path), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    parts = {"model": {}, "optimizer": {}, "meta": {}}
    for key, value in arrays.items():
        head, name = key.split(".", 1)
        parts[head][name] = value
    model.load_state_dict(parts["model"])
    if optimizer is not None and parts["optimizer"]:
        optimizer.load_state_dict(parts["optimizer"])
    return {k: v.item() if v.ndim == 0 else v for k, v in parts["meta"].items()}
    ### END SOLUTION


# %%
if __name__ == "__main__":
    import tempfile as _tempfile

    manual_seed(1)
    net = Sequential(Linear(2, 16), ReLU(), Linear(16, 3))
    opt = SGD(net.parameters(), lr=0.1, momentum=0.9)
    Trainer(net, CrossEntropyLoss(), opt).train_step(Tensor(x), Tensor(y))  # some momentum state
    with _tempfile.TemporaryDirectory() as folder:
        path = save_checkpoint(net, Path(folder) / "ckpt.npz", optimizer=opt, epoch=1, note="try it")
        with np.load(path, allow_pickle=False) as z:
            for name in z.files:
                print(f"{name:32s} {str(z[name].shape):10s} {z[name].dtype}")
        print("file size:", path.stat().st_size, "bytes")
        fresh = Sequential(Linear(2, 16), ReLU(), Linear(16, 3))  # other random weights
        meta = load_checkpoint(fresh, path)
    print("meta:", meta, "| weights equal after loading:",
          all(np.array_equal(a, b) for a, b in zip(net.state_dict().values(), fresh.state_dict().values())))


# %% nbgrader={"grade": true, "grade_id": "check-checkpoints", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("08", "checkpoint")


# %% [markdown]
# ## Early stopping
#
# Training loss keeps falling for as long as you train; the loss on held-out *validation* data
# falls, flattens, and then rises again as the model starts to memorise its training set
# (overfitting). Early stopping watches the validation loss and stops once it has not improved for
# `patience` epochs in a row - and then puts back the weights of the best epoch, not the last ones.
#
# To put them back it keeps a copy of the model's state, made with the `_arrays` helper from the
# checkpoint section. Memory: one copy of the weights, $4P$ bytes (0.94 MB for the MNIST MLP).

# %% [markdown]
# ### `EarlyStopping.step(val_loss, model, epoch)`
#
# The rule, with `patience` $k$ and `min_delta` $\delta$: an epoch *improves* when `val_loss <
# best_loss - min_delta`. Then remember it (`best_loss`, `best_epoch`), reset `bad_epochs` to 0,
# keep a **copy** of the weights, and return `False`. Otherwise count one more bad epoch and return
# `True` (stop) once `bad_epochs >= patience`.
#
# Worked example with patience 2: validation losses 1.0, 0.8, 0.9, 0.85 give
#
# | epoch | val loss | best so far | bad epochs | stop? |
# |---|---|---|---|---|
# | 1 | 1.0 | 1.0 (epoch 1) | 0 | no |
# | 2 | 0.8 | 0.8 (epoch 2) | 0 | no |
# | 3 | 0.9 | 0.8 | 1 | no |
# | 4 | 0.85 | 0.8 | 2 | **yes** |
#
# and `restore(model)` puts back the weights of epoch 2. Epoch 4 improved on epoch 3, but not on the
# best: "no better than the best" is what counts. A `min_delta` above zero ignores improvements too
# small to matter (noise in the validation loss).
#
# Why a copy: `np.array(v, copy=True)` for every array of `_arrays(model.state_dict())`. A stored
# *reference* to the live weights would change with every later step, and "restoring the best
# weights" would restore the last ones. (Module 03's `state_dict()` already returns copies; the
# extra copy makes `EarlyStopping` safe whatever the model returns.)

# %% nbgrader={"grade": false, "grade_id": "early-stopping", "locked": false, "schema_version": 3, "solution": true, "task": false}
class EarlyStopping:
    """Stop when the validation loss has not improved (by more than min_delta) for `patience`
    epochs in a row; remembers a copy of the best weights so they can be put back."""

    def __init__(self, patience: int, min_delta: float = 0.0):
        self.patience, self.min_delta = patience, min_delta
        self.best_loss, self.best_epoch, self.best_state = math.inf, None, None
        self.bad_epochs = 0

    def step(self, val_loss: float, model, epoch: int) -> bool:
        """Record one epoch's validation loss; True when training should stop."""
        # HINT: an improvement resets the count and keeps a COPY of model.state_dict()
        ### BEGIN SOLUTION
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch, self.bad_epochs = val_loss, epoch, 0
            self.best_state = {k: np.array(v, copy=True) for k, v in _arrays(model.state_dict()).items()}
            return False
        self.bad_epochs += 1
        return self.bad_epochs >= self.patience
        ### END SOLUTION

    def restore(self, model) -> None:
        """Put the best weights seen back into the model."""
        if self.best_state is not None:
            model.load_state_dict(self.best_state)


# %%
if __name__ == "__main__":
    stop = EarlyStopping(patience=2)
    tagged = Sequential(Linear(2, 3))
    for epoch, val_loss in enumerate([1.0, 0.8, 0.9, 0.85, 0.7], start=1):
        tagged.parameters()[0].data[...] = epoch  # tag the weights with the epoch number
        decision = stop.step(val_loss, tagged, epoch)
        print(f"epoch {epoch}: val loss {val_loss}  bad epochs {stop.bad_epochs}  stop: {decision}")
        if decision:
            break
    stop.restore(tagged)
    print("best epoch", stop.best_epoch, "- restored weights are tagged", tagged.parameters()[0].data[0, 0])


# %% nbgrader={"grade": true, "grade_id": "check-early-stopping", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("08", "EarlyStopping.step")


# %% [markdown]
# ## `fit`: everything together
#
# `Trainer.fit(train_loader, epochs, val_loader=None, early_stopping_patience=None,
# checkpoint_path=None, progress=True, on_epoch_end=None)` is given, and it is worth reading in the
# `Trainer` cell above. For every epoch it:
#
# 1. reads the learning rate, runs `train_epoch` (your `train_step` on every batch, stepping a
#    per-batch scheduler if `scheduler_interval="step"`), then `evaluate` on the validation loader;
# 2. steps a per-epoch scheduler (PyTorch's convention: after the epoch's optimizer steps);
# 3. appends one entry to every list of the history - `epoch`, `train_loss`, `train_acc`,
#    `val_loss`, `val_acc` (NaN without a validation loader or without accuracy), `lr` and `seconds`
#    (the wall time of the epoch, training and evaluation together);
# 4. stops with a `FloatingPointError` if the training loss is not finite - a diverged run says so at
#    once instead of training on NaNs for an hour;
# 5. saves a checkpoint whenever the validation loss is the best so far (or every epoch without a
#    validation loader), calls `on_epoch_end(epoch, record)` (the milestones log through it), and asks
#    `EarlyStopping` whether to stop; when it stops, the best weights are restored.
#
# The try-it below trains the blobs classifier with a validation set whose labels are deliberately
# *wrong* - so the validation loss rises as the model learns - and shows early stopping at work:
# the run ends two epochs after the best one, and the checkpoint on disk holds that best epoch.
# Look at the `seconds` column too: the first epoch is often the slowest (memory being allocated
# for the first time), and evaluation is part of every epoch's time.

# %%
if __name__ == "__main__":
    manual_seed(3)
    net = Sequential(Linear(2, 16), ReLU(), Linear(16, 3))
    trainer = Trainer(net, CrossEntropyLoss(), SGD(net.parameters(), lr=0.1, momentum=0.9))
    x, y = blobs(40, seed=7)
    with _tempfile.TemporaryDirectory() as folder:
        history = trainer.fit(batches(x, y), epochs=30, val_loader=batches(x, (y + 1) % 3),
                              early_stopping_patience=2, checkpoint_path=Path(folder) / "best.npz")
        print("stopped early:", trainer.stopped_early, "after", len(history["epoch"]), "epochs;",
              "checkpoint holds epoch", load_checkpoint(Sequential(Linear(2, 16), ReLU(), Linear(16, 3)),
                                                        Path(folder) / "best.npz")["epoch"])


# %% nbgrader={"grade": true, "grade_id": "check-fit", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("08", "fit")


# %% [markdown]
# ## Wrap-up
#
# You built the loop that every later milestone trains with: `train_step` (the five lines, in the
# right order, with optional clipping), `evaluate` (eval mode, no graph, no side effects, weighted
# averages), accuracy as one vectorised comparison, early stopping that keeps the best weights, and
# checkpoints that are plain named arrays, written atomically and loaded without pickle.
#
# The systems lessons to keep:
#
# - **A training step costs about three forward passes** ($6NP$ FLOPs for $P$ weights and batch $N$);
#   evaluation is one, and under `no_grad` it keeps no activations, so it can run in larger batches.
# - **Time goes beyond the matrix multiplies**: optimizer passes, elementwise ops, Python overhead per
#   op and the data pipeline all show up in `history["seconds"]`; measure before you optimise.
# - **Average over examples, not batches**, and store floats (`loss.item()`), not Tensors that keep a
#   graph alive.
# - **Checkpoints are data, not code**: `.npz` with `allow_pickle=False`, written to a temporary file
#   and renamed, so a crash never leaves half a checkpoint.
#
# Run all of the module's checks below (the same as `tito module test 08`); then
# `tito module complete 08` exports your file into your `tinytorch` package and unlocks milestone
# 03, where your Trainer, DataLoader, losses, autograd and Adam train an MLP to 98% on MNIST. Module
# 09 then adds convolutions, and the same `Trainer` trains LeNet and a CIFAR-10 network.

# %% nbgrader={"grade": true, "grade_id": "check-training", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("08")
