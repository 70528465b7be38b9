"""Checks for module 08: the Trainer, accuracy, checkpoints and early stopping.

Data come as plain lists of (x, y) Tensor batches, so these checks test the training loop and
not the DataLoader of module 05. Every option is used with a non-default value somewhere:
Trainer(clip_grad_norm=..., scheduler_interval="step"), EarlyStopping(min_delta=...), checkpoints
with and without an optimizer (SGD momentum and Adam state), meta of every kind.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinytorch.activations import ReLU
from tinytorch.layers import Dropout, Linear, Sequential
from tinytorch.losses import CrossEntropyLoss, MSELoss
from tinytorch.optimizers import SGD, Adam, StepLR
from tinytorch.tensor import Tensor, manual_seed
from tinytorch.training import EarlyStopping, Trainer, correct_count, load_checkpoint, save_checkpoint
from tito.checks.harness import assert_close, blame, call, hypothesis_settings

SETTINGS = hypothesis_settings(max_examples=25)


def blobs(n_per_class: int = 60, classes: int = 3, seed: int = 0, spread: float = 0.5):
    """`classes` well separated Gaussian blobs in 2-D: float32 (N, 2), int64 (N,)."""
    rng = np.random.default_rng(seed)
    centres = 3.0 * np.stack([np.cos(np.arange(classes) * 2 * np.pi / classes),
                              np.sin(np.arange(classes) * 2 * np.pi / classes)], axis=1)
    y = np.repeat(np.arange(classes), n_per_class)
    x = centres[y] + spread * rng.standard_normal((len(y), 2))
    perm = rng.permutation(len(y))
    return x[perm].astype(np.float32), y[perm].astype(np.int64)


def batches(x, y, size: int = 32) -> list[tuple[Tensor, Tensor]]:
    return [(Tensor(x[i:i + size]), Tensor(y[i:i + size])) for i in range(0, len(x), size)]


def mlp(seed: int = 0, dropout: float = 0.0) -> Sequential:
    manual_seed(seed)
    layers = [Linear(2, 16), ReLU()] + ([Dropout(dropout)] if dropout else []) + [Linear(16, 3)]
    return Sequential(*layers)


def weights(model) -> dict[str, np.ndarray]:
    return {k: np.array(v, copy=True) for k, v in model.state_dict().items()}


# ---------------------------------------------------------------------------------------------
# Accuracy
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("correct_count")
def test_correct_count_by_hand():
    logits = np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0], [0.0, 0.0, 5.0], [1.0, 2.0, 3.0]], np.float32)
    targets = np.array([1, 0, 1, 2])
    got = correct_count(Tensor(logits), Tensor(targets))
    assert got == 3, f"correct_count: got {got}, expected 3 for logits {logits.tolist()} and targets {targets}"
    # a tie goes to the FIRST largest score (argmax, as torch.argmax): only target 0 counts
    ties = np.array([[1.0, 1.0, 0.0], [2.0, 2.0, 2.0], [0.0, 4.0, 4.0]], np.float32)
    got = correct_count(Tensor(ties), Tensor(np.array([1, 0, 2])))
    assert got == 1, (f"correct_count: got {got}, expected 1 for tied logits {ties.tolist()} and targets "
                      "[1, 0, 2]: a tie counts as the first maximum (argmax), not as every tied class")
    assert correct_count(Tensor(logits[:, :1]), Tensor(np.array([0.5, 1, 2, 3], np.float32))) is None, \
        "correct_count: float (regression) targets have no accuracy: return None"


@pytest.mark.task("correct_count")
@SETTINGS
@given(n=st.integers(1, 40), c=st.integers(1, 7), seed=st.integers(0, 1000))
def test_correct_count_matches_a_loop(n, c, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, c)).astype(np.float32)
    targets = rng.integers(0, c, n)
    want = sum(int(np.argmax(row) == t) for row, t in zip(logits, targets))
    got = correct_count(Tensor(logits), Tensor(targets))
    assert got == want, f"correct_count: got {got}, expected {want} for logits shape {(n, c)}, seed {seed}"


# ---------------------------------------------------------------------------------------------
# One step, and fit
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("Trainer.train_step")
def test_train_step_uses_fresh_gradients():
    x, y = blobs(4, seed=1)
    xb, yb = Tensor(x), Tensor(y)
    model = mlp()
    before = weights(model)
    # the gradient the step should use, computed by hand on a copy of the model
    ref = mlp()
    loss_ref = CrossEntropyLoss()(ref(xb), yb)
    loss_ref.backward()
    fresh = {name: p.grad.data.copy() for name, p in ref.named_parameters()}
    for p in model.parameters():  # garbage left over from "a previous step": must be discarded
        p.grad = Tensor(np.full(p.shape, 1e3, dtype=np.float32))
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1))
    loss, right = trainer.train_step(xb, yb)
    assert_close(loss, loss_ref.item(), "Trainer.train_step (returned loss: the batch's loss before the step)")
    assert right == correct_count(ref(xb), yb), "Trainer.train_step: wrong number of correct predictions"
    for name, p in model.named_parameters():
        assert_close(p.data, before[name] - 0.1 * fresh[name],
                     f"Trainer.train_step (parameter {name} after one SGD step; zero_grad first?)", [x])


@pytest.mark.task("Trainer.train_step")
def test_train_step_clips_the_gradients_before_the_step():
    """Trainer(clip_grad_norm=c): the step uses the gradients scaled to joint norm c (after
    backward, before step), and the returned loss is the loss before the step."""
    x, y = blobs(4, seed=1)
    xb, yb = Tensor(x), Tensor(y)
    ref = mlp()
    CrossEntropyLoss()(ref(xb), yb).backward()
    fresh = {name: p.grad.data.astype(np.float64) for name, p in ref.named_parameters()}
    norm = math.sqrt(sum(float(np.sum(g * g)) for g in fresh.values()))
    coef = min(1.0, 0.25 * norm / (norm + 1e-6))  # clip to a quarter of the gradient's norm
    model = mlp()
    before = weights(model)
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.5), clip_grad_norm=0.25 * norm)
    call("Trainer.train_step", trainer.train_step, xb, yb)
    for name, p in model.named_parameters():
        assert_close(p.data, before[name] - 0.5 * coef * fresh[name],
                     f"Trainer.train_step (clip_grad_norm={0.25 * norm:.3g}: parameter {name} after one step with "
                     "the clipped gradient; clip after backward(), before step())", [x], atol=1e-5)


@pytest.mark.task("Trainer.train_step")
def test_scheduler_stepped_per_batch(tmp_path):
    """scheduler_interval="step": the scheduler steps after every batch (3 per epoch here), and the
    history records the lr each epoch started with. Without a val_loader, checkpoint_path keeps
    the latest epoch."""
    x, y = blobs(16, seed=4)  # 48 examples: 3 batches of 16
    model = mlp()
    opt = SGD(model.parameters(), lr=0.1)
    trainer = Trainer(model, CrossEntropyLoss(), opt, scheduler=StepLR(opt, step_size=1, gamma=0.5),
                      scheduler_interval="step")
    history = trainer.fit(batches(x, y, 16), epochs=2, progress=False, checkpoint_path=tmp_path / "last.npz")
    assert_close(history["lr"], [0.1, 0.1 * 0.5 ** 3], "Trainer.fit (scheduler_interval='step': lr per epoch)")
    assert_close(opt.param_groups[0]["lr"], 0.1 * 0.5 ** 6, "Trainer.fit (scheduler_interval='step': lr after "
                 "6 batches)")
    meta = call("load_checkpoint", load_checkpoint, mlp(seed=3), tmp_path / "last.npz")
    assert meta.get("epoch") == 2, f"save_checkpoint: without a val_loader fit keeps the last epoch, got {meta}"


@pytest.mark.task("Trainer.train_step")
def test_fit_reaches_high_accuracy_on_separable_data():
    x, y = blobs(60, seed=2)
    xv, yv = blobs(30, seed=3)
    model = mlp(seed=1)
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1, momentum=0.9))
    history = trainer.fit(batches(x, y), epochs=15, val_loader=batches(xv, yv), progress=False)
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0], \
        f"Trainer.fit: the training loss did not fall (history {history['train_loss']})"
    assert history["val_acc"][-1] >= 0.95, f"Trainer.fit: validation accuracy {history['val_acc'][-1]:.3f} < 0.95 " \
                                           "on three well separated blobs"
    loss, acc = trainer.evaluate(batches(xv, yv))
    assert_close([loss, acc], [history["val_loss"][-1], history["val_acc"][-1]],
                 "Trainer.evaluate (agrees with the last val entry of the history)")


@pytest.mark.task("Trainer.train_step")
def test_history_shape_scheduler_and_quiet_output(capsys):
    x, y = blobs(20, seed=4)
    model = mlp()
    opt = SGD(model.parameters(), lr=0.1)
    trainer = Trainer(model, CrossEntropyLoss(), opt, scheduler=StepLR(opt, step_size=1, gamma=0.5))
    seen = []
    history = trainer.fit(batches(x, y, 16), epochs=3, progress=True, on_epoch_end=lambda e, r: seen.append(e))
    expected = {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"}
    assert set(history) >= expected, f"Trainer.fit: history keys {sorted(history)}, expected {sorted(expected)}"
    for key in expected:
        assert len(history[key]) == 3, f"Trainer.fit: history[{key!r}] has {len(history[key])} entries, expected 3"
    assert history["epoch"] == [1, 2, 3] and seen == [1, 2, 3], "Trainer.fit: epochs are numbered 1..epochs"
    assert all(math.isnan(v) for v in history["val_loss"]), "Trainer.fit: val_loss is NaN without a val_loader"
    assert all(0 <= a <= 1 for a in history["train_acc"]), f"Trainer.fit: train_acc {history['train_acc']}"
    assert_close(history["lr"], [0.1, 0.05, 0.025], "Trainer.fit (lr per epoch, StepLR stepped once per epoch)")
    out = capsys.readouterr().out
    assert "\x1b" not in out, "Trainer.fit: progress output to a non-terminal must be plain text"
    assert out.count("epoch") >= 3, f"Trainer.fit: expected one summary line per epoch, got {out!r}"
    trainer.fit(batches(x, y, 16), epochs=1, progress=False)
    assert capsys.readouterr().out == "", "Trainer.fit(progress=False) must print nothing"


@pytest.mark.task("Trainer.evaluate")
def test_evaluate_is_side_effect_free():
    x, y = blobs(10, seed=5)
    model = mlp(dropout=0.5)
    recorded = []  # does the last layer's output carry a graph? (it must not under no_grad)
    model.append(lambda t: recorded.append(t.requires_grad) or t)
    grads = {}
    for name, p in model.named_parameters():
        grads[name] = np.full(p.shape, 0.25, dtype=np.float32)
        p.grad = Tensor(grads[name].copy())
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1))
    model.train()
    first = trainer.evaluate(batches(x, y, 8))
    assert model.training, "Trainer.evaluate: the model must be back in training mode afterwards"
    second = trainer.evaluate(batches(x, y, 8))
    assert_close(first, second, "Trainer.evaluate (eval mode: Dropout off, so two runs agree)")
    assert recorded and not any(recorded), "Trainer.evaluate: run the model under no_grad() (a graph was recorded)"
    for name, p in model.named_parameters():
        assert_close(p.grad, grads[name], f"Trainer.evaluate (must not touch {name}.grad)")
    model.eval()  # expected values: the whole set at once, in eval mode
    logits = model(Tensor(x))
    want_loss = CrossEntropyLoss()(logits, Tensor(y)).item()
    want_acc = float(np.mean(logits.data.argmax(axis=1) == y))
    got = trainer.evaluate(batches(x, y, 8))
    assert not model.training, "Trainer.evaluate: a model that was in eval mode must stay in eval mode"
    assert_close(got, [want_loss, want_acc], "Trainer.evaluate (loss and accuracy over all batches)", [x])


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("load_checkpoint")
def test_checkpoint_round_trip(tmp_path):
    x, y = blobs(10, seed=6)
    model = mlp(seed=2)
    opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
    Trainer(model, CrossEntropyLoss(), opt).fit(batches(x, y), epochs=2, progress=False)
    path = tmp_path / "ckpt.npz"
    returned = save_checkpoint(model, path, optimizer=opt, epoch=2, note="round trip", val_loss=0.25)
    assert path.is_file(), f"save_checkpoint: nothing written at {path}"
    assert returned is not None and os.path.samefile(returned, path), \
        f"save_checkpoint: must return the path it wrote ({path}), got {returned!r}"
    with blame("save_checkpoint", "the file must load with np.load(path, allow_pickle=False)"):
        with np.load(path, allow_pickle=False) as z:  # plain arrays only: no pickle needed
            names = set(z.files)
    want = ({f"model.{k}" for k in model.state_dict()} | {f"optimizer.{k}" for k in opt.state_dict()}
            | {"meta.epoch", "meta.note", "meta.val_loss"})
    assert names == want, (f"save_checkpoint: array names {sorted(names)}, expected {sorted(want)} "
                           "('model.<name>', 'optimizer.<name>', 'meta.<key>')")
    fresh = mlp(seed=99)
    opt2 = SGD(fresh.parameters(), lr=0.05, momentum=0.9)
    meta = call("load_checkpoint", load_checkpoint, fresh, path, optimizer=opt2)
    for name, value in model.state_dict().items():
        assert_close(fresh.state_dict()[name], value, f"load_checkpoint (parameter {name})")
    assert meta == {"epoch": 2, "note": "round trip", "val_loss": 0.25}, f"load_checkpoint: meta {meta}"
    kinds = {k: type(v).__name__ for k, v in meta.items()}
    assert kinds == {"epoch": "int", "note": "str", "val_loss": "float"}, \
        f"load_checkpoint: meta values must be plain Python numbers and strings (.item()), got types {kinds}"
    for k, (p, q) in enumerate(zip(opt.parameters(), opt2.parameters())):
        with blame("load_checkpoint", f"optimizer state of parameter {k} after loading"):
            buf = opt2.state[q]["momentum_buffer"]
        assert_close(buf, opt.state[p]["momentum_buffer"], "load_checkpoint (optimizer momentum buffers)")
    other = tmp_path / "weights.bin"  # saved at exactly the path given, whatever the suffix
    save_checkpoint(model, other)
    assert other.is_file(), "save_checkpoint: write to exactly the given path (np.savez adds .npz to names)"
    save_checkpoint(fresh, path, optimizer=opt2, epoch=3)  # overwrite an existing checkpoint
    left = sorted(f.name for f in tmp_path.iterdir())
    assert left == ["ckpt.npz", "weights.bin"], \
        f"save_checkpoint: the folder holds {left}; a temporary file was left behind (write, then os.replace)"
    assert call("load_checkpoint", load_checkpoint, model, path) == {"epoch": 3}, \
        "load_checkpoint: an overwritten checkpoint must hold the new meta only"


@pytest.mark.task("load_checkpoint")
def test_checkpoint_failed_save_raises_and_cleans_up(tmp_path):
    """A save that fails (here: `path` is a folder, so os.replace cannot put the file there) raises,
    and leaves no temporary file behind ("if anything fails, delete the temporary file and re-raise")."""
    target = tmp_path / "ckpt.npz"
    target.mkdir()
    try:
        save_checkpoint(mlp(seed=3), target, epoch=1)
    except OSError:
        pass
    except Exception as e:
        raise AssertionError(f"save_checkpoint: a failed save raised {type(e).__name__}: {e}; expected the "
                             "OSError of the failed write itself (re-raise it)") from e
    else:
        raise AssertionError(f"save_checkpoint: saving onto {target.name}, which is a folder, returned without an "
                             "error: a failed save must raise (re-raise after deleting the temporary file)")
    left = sorted(f.name for f in tmp_path.iterdir())
    assert left == ["ckpt.npz"], (f"save_checkpoint: after a failed save the folder holds {left}: delete the "
                                  "temporary file before re-raising")


@pytest.mark.task("load_checkpoint")
def test_checkpoint_into_a_new_folder(tmp_path):
    """fit(checkpoint_path="runs/mnist/best.npz") on a fresh machine: the folders are created."""
    path = tmp_path / "runs" / "mnist" / "best.npz"
    with blame("save_checkpoint", f"saving into {path.parent}, which does not exist yet: create it "
               "first (path.parent.mkdir(parents=True, exist_ok=True))"):
        save_checkpoint(mlp(seed=4), path, epoch=1)
    assert path.is_file(), f"save_checkpoint: nothing written at {path}"


@pytest.mark.task("load_checkpoint")
def test_checkpoint_without_optimizer_state():
    """A checkpoint saved without an optimizer loads into a model and an optimizer alike; the
    optimizer is left as it was."""
    import tempfile

    model = mlp(seed=5)
    opt = SGD(model.parameters(), lr=0.3, momentum=0.9)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "w.npz")
        save_checkpoint(model, path)
        fresh = mlp(seed=6)
        meta = call("load_checkpoint", load_checkpoint, fresh, path, optimizer=opt)
    assert meta == {}, f"load_checkpoint: no meta was saved, got {meta}"
    assert opt.param_groups[0]["lr"] == 0.3 and not opt.state, \
        "load_checkpoint: a checkpoint without optimizer arrays must leave the optimizer unchanged"
    for name, value in model.state_dict().items():
        assert_close(fresh.state_dict()[name], value, f"load_checkpoint (parameter {name}, no optimizer saved)")


@pytest.mark.task("load_checkpoint")
def test_checkpoint_resumes_adam_exactly(tmp_path):
    """Train 2 epochs with Adam, checkpoint, train 1 more; a fresh model + Adam loaded from the
    checkpoint must end in the same place (step counts, both moments and the lr restored)."""
    x, y = blobs(12, seed=9)
    data = batches(x, y, 12)
    model = mlp(seed=7)
    opt = Adam(model.parameters(), lr=0.02, betas=(0.8, 0.9))
    trainer = Trainer(model, CrossEntropyLoss(), opt)
    trainer.fit(data, epochs=2, progress=False)
    save_checkpoint(model, tmp_path / "adam.npz", optimizer=opt, epoch=2)
    trainer.fit(data, epochs=1, progress=False)
    resumed = mlp(seed=8)
    opt2 = Adam(resumed.parameters(), lr=0.5, betas=(0.8, 0.9))  # the checkpoint's lr must win
    call("load_checkpoint", load_checkpoint, resumed, tmp_path / "adam.npz", optimizer=opt2)
    with blame("load_checkpoint", "Adam's lr after loading"):
        assert_close(opt2.param_groups[0]["lr"], 0.02, "load_checkpoint (the optimizer's lr)")
    Trainer(resumed, CrossEntropyLoss(), opt2).fit(data, epochs=1, progress=False)
    for name, value in model.state_dict().items():
        assert_close(resumed.state_dict()[name], value, f"load_checkpoint (Adam resumed from a checkpoint: "
                     f"{name} after one more epoch)", atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Early stopping
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("EarlyStopping.step")
def test_early_stopping_rule():
    model = mlp()
    stop = EarlyStopping(patience=2)
    decisions, marks = [], {}
    for epoch, val_loss in enumerate([1.0, 0.8, 0.9, 0.85, 0.7], start=1):
        model.parameters()[0].data[...] = epoch  # tag the weights with the epoch
        decisions.append(stop.step(val_loss, model, epoch))
        marks[epoch] = weights(model)
        if decisions[-1]:
            break
    assert decisions == [False, False, False, True], \
        f"EarlyStopping.step: decisions {decisions} for losses 1.0, 0.8, 0.9, 0.85 with patience 2"
    assert stop.best_epoch == 2 and stop.best_loss == 0.8, f"EarlyStopping.step: best {stop.best_epoch}"
    with blame("EarlyStopping.step", "restore() loads the best_state it kept"):
        stop.restore(model)
    assert_close(model.parameters()[0].data, marks[2][next(iter(marks[2]))],
                 "EarlyStopping.step (restore puts back the weights of the best epoch: keep a COPY)")


@pytest.mark.task("EarlyStopping.step")
@pytest.mark.parametrize("patience,min_delta,losses,want,best", [
    # an improvement must beat the best by MORE than min_delta: 0.95 and 0.84 do not count
    (2, 0.1, [1.0, 0.95, 0.85, 0.84, 0.5, 0.45, 0.41], [False] * 6 + [True], (5, 0.5)),
    # an equal loss is no improvement
    (2, 0.0, [1.0, 1.0, 1.0], [False, False, True], (1, 1.0)),
    (1, 0.0, [2.0, 1.5, 1.6], [False, False, True], (2, 1.5)),
    # 0.5 is lower than the best 0.7, but not by more than 0.25
    (3, 0.25, [1.0, 0.8, 0.7, 0.74, 0.5, 0.6], [False] * 5 + [True], (3, 0.7)),
], ids=["min_delta", "equal_is_not_better", "patience_1", "patience_3_min_delta"])
def test_early_stopping_patience_and_min_delta(patience, min_delta, losses, want, best):
    model = mlp()
    stop = EarlyStopping(patience=patience, min_delta=min_delta)
    got = []
    for epoch, loss in enumerate(losses, start=1):
        got.append(bool(call("EarlyStopping.step", stop.step, loss, model, epoch)))
    assert got == want, (f"EarlyStopping.step: decisions {got} for validation losses {losses} with "
                         f"patience={patience}, min_delta={min_delta}; expected {want}")
    assert (stop.best_epoch, stop.best_loss) == best, \
        f"EarlyStopping.step: best epoch/loss {(stop.best_epoch, stop.best_loss)}, expected {best}"


@pytest.mark.task("EarlyStopping.step")
def test_fit_stops_early_and_restores_best(tmp_path):
    x, y = blobs(40, seed=7)
    y_wrong = (y + 1) % 3  # validation labels that disagree: val loss rises as training succeeds
    model = mlp(seed=3)
    snapshots = {}
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1, momentum=0.9))
    history = trainer.fit(batches(x, y), epochs=30, val_loader=batches(x, y_wrong), early_stopping_patience=2,
                          checkpoint_path=tmp_path / "best.npz", progress=False,
                          on_epoch_end=lambda e, r: snapshots.__setitem__(e, weights(model)))
    n = len(history["val_loss"])
    best = int(np.argmin(history["val_loss"])) + 1
    assert trainer.stopped_early and n < 30, f"Trainer.fit: did not stop early (ran {n} epochs)"
    assert n == best + 2, f"Trainer.fit: stopped after {n} epochs; best was epoch {best}, patience 2"
    for name, value in model.state_dict().items():
        assert_close(value, snapshots[best][name], f"EarlyStopping.step (fit restores {name} of epoch {best})")
    fresh = mlp(seed=4)
    meta = call("load_checkpoint", load_checkpoint, fresh, tmp_path / "best.npz")
    assert meta.get("epoch") == best, f"save_checkpoint: the checkpoint holds epoch {meta.get('epoch')}, best was {best}"
    for name, value in fresh.state_dict().items():
        assert_close(value, snapshots[best][name], f"Trainer.fit (checkpoint of the best epoch, {name})")


@pytest.mark.task("Trainer.evaluate")
def test_evaluate_regression_averages_over_examples():
    """Batches of 16, 16, 16 and 7: the loss is the mean over all 55 examples (not the mean of
    the four batch means), and a regression has no accuracy (NaN)."""
    rng = np.random.default_rng(10)
    x = rng.standard_normal((55, 2)).astype(np.float32)
    y = rng.standard_normal((55, 1)).astype(np.float32)
    manual_seed(1)
    model = Sequential(Linear(2, 1))
    trainer = Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.1))
    loss, acc = call("Trainer.evaluate", trainer.evaluate, batches(x, y, 16))
    want = float(np.mean((model(Tensor(x)).data.astype(np.float64) - y) ** 2))
    assert_close(loss, want, "Trainer.evaluate (mean loss over all examples, batches of unequal size)", [x],
                 rtol=1e-5)
    assert math.isnan(acc), f"Trainer.evaluate: a regression has no accuracy (NaN), got {acc}"


@pytest.mark.task("Trainer.evaluate")
def test_evaluate_an_empty_loader():
    """No batches at all (an empty validation split): a mean loss of 0 (or NaN) and no accuracy
    (NaN) - not a ZeroDivisionError."""
    manual_seed(2)
    model = mlp(seed=7)
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1))
    loss, acc = call("Trainer.evaluate", trainer.evaluate, [])
    assert (loss == 0 or math.isnan(loss)) and math.isnan(acc), \
        f"Trainer.evaluate: an empty loader gave ({loss}, {acc}), expected (0.0, nan): nothing was seen or scored"


@pytest.mark.task("Trainer.train_step")
def test_fit_regression_without_accuracy():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((64, 2)).astype(np.float32)
    y = (x @ np.array([[1.5], [-2.0]], np.float32) + 0.5).astype(np.float32)
    manual_seed(0)
    model = Sequential(Linear(2, 1))
    history = Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.1)).fit(batches(x, y, 16), epochs=20,
                                                                               progress=False)
    assert math.isnan(history["train_acc"][0]), "Trainer.fit: regression has no accuracy (NaN)"
    assert history["train_loss"][-1] < 1e-3, f"Trainer.fit: linear regression loss {history['train_loss'][-1]:.3g}"
