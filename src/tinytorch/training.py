# %% [markdown]
# # Module 08 - Training
#
# Every training loop is the same five lines: forget the old gradients, run the model, measure
# the loss, backpropagate, step. Around them sit the things that make training usable: an
# evaluation pass that changes nothing, accuracy, a history of every epoch, checkpoints you can
# reload, and early stopping when the validation loss stops improving.

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


# ---------------------------------------------------------------------------------------------
# Accuracy
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# Checkpoints: .npz, never pickle
# ---------------------------------------------------------------------------------------------
def _arrays(state: dict) -> dict[str, np.ndarray]:
    return {k: np.asarray(v.data if isinstance(v, Tensor) else v) for k, v in state.items()}


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


# ---------------------------------------------------------------------------------------------
# Early stopping
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# Progress bars (infrastructure: given). Transient, and off unless stdout is a terminal.
# ---------------------------------------------------------------------------------------------
class _Progress:
    """A rich progress bar over the batches of an epoch, or nothing at all.

    Bars are drawn only when `enabled` and stdout is an interactive terminal, and vanish when
    done (transient), so logs, pipes and CI never see control characters. With `enabled`, one
    plain summary line per epoch is printed either way.
    """

    def __init__(self, enabled: bool):
        self.enabled, self.bar, self.console = enabled, None, None
        if enabled:
            from rich.console import Console

            self.console = Console()
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


# ---------------------------------------------------------------------------------------------
# The Trainer
# ---------------------------------------------------------------------------------------------
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


def _summary(r: dict, epochs: int) -> str:
    text = f"epoch {r['epoch']:>{len(str(epochs))}}/{epochs}  train loss {r['train_loss']:.4f}"
    if not math.isnan(r["train_acc"]):
        text += f" acc {r['train_acc']:.2%}"
    if not math.isnan(r["val_loss"]):
        text += f"  val loss {r['val_loss']:.4f}"
        if not math.isnan(r["val_acc"]):
            text += f" acc {r['val_acc']:.2%}"
    return text + f"  lr {r['lr']:.3g}  {r['seconds']:.1f}s"
