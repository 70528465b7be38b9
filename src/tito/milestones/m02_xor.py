"""Milestone 02 - The XOR Crisis (Minsky & Papert, 1969), on YOUR code.

XOR is true when exactly one input is:   (0,0) -> 0, (0,1) -> 1, (1,0) -> 1, (1,1) -> 0.

Part 1, the crisis (modules 01-03). A single perceptron draws one straight line, and no line puts
(0,1), (1,0) on one side and (0,0), (1,1) on the other: adding the two "1" conditions gives
2b + w1 + w2 > 0, adding the two "0" ones gives 2b + w1 + w2 <= 0. So at most 3 of the 4 points
are ever right: 75%. We measure it three ways, on the learner's Linear:
  - Rosenblatt's rule on XOR for 100 epochs: the best accuracy it ever reaches, after any update;
  - 4,096 random perceptrons at once (one Linear(2, 4096)): the best of them;
  - the same rule on AND and OR, which ARE linearly separable: it must reach 100% there, so the
    XOR failure is the perceptron's limit, not a broken perceptron.

Part 2, the way out (modules 04-07 too). One hidden layer, trained by backpropagation:

    h = tanh(x W1^T + b1)  (4, 8),     logit = h W2^T + b2  (4, 1),     loss = BCEWithLogits

reaches 100% - in every one of several seeds, each reported, so success is not luck. At the
first step the gradients backprop computes are compared with finite differences.
"""

from __future__ import annotations

import numpy as np

from tito.milestone_work import save_weights
from tito.milestones.common import (RunContext, accuracy, merge_witness_metrics,
                                    plot_decision_boundary, plot_learning_curves, seed_all, watch)
from tito.milestones.m01_perceptron import perceptron, predict, rosenblatt_epoch

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)  # (4, 2)
TRUTH = {
    "XOR": np.array([0, 1, 1, 0], dtype=np.float32),
    "AND": np.array([0, 0, 0, 1], dtype=np.float32),
    "OR": np.array([0, 1, 1, 1], dtype=np.float32),
}
SEEDS = 5  # part 2 trains this many networks, seeds ctx.seed .. ctx.seed + 4


# ---------------------------------------------------------------------------------------------
# Part 1: the crisis
# ---------------------------------------------------------------------------------------------
def train_perceptron(ctx: RunContext, y: np.ndarray, epochs: int, label: str):
    """Rosenblatt's rule on the 4 points; returns (model, witness, best accuracy after any
    update, accuracy per epoch)."""
    model = perceptron()
    witness = ctx.witness(model.parameters(), suspects=("tensor", "layers"))
    rng = ctx.rng(len(label))
    snapshot = lambda: (model.weight.numpy().copy(), model.bias.numpy().copy())  # noqa: E731
    best = [accuracy(predict(model, X), y), snapshot()]

    def after_update():
        witness.weights()
        acc = accuracy(predict(model, X), y)
        if acc > best[0]:
            best[:] = acc, snapshot()

    curve = []
    for epoch in range(1, epochs + 1):
        mistakes = rosenblatt_epoch(model, X, y, rng.permutation(4), after_update=after_update)
        curve.append(accuracy(predict(model, X), y))
        ctx.progress(epoch=epoch, epochs=epochs, acc=curve[-1], stage=f"perceptron on {label}")
        if mistakes == 0 and label != "XOR":
            break
    return model, witness, best, curve


def random_perceptrons(y: np.ndarray, n: int = 4096) -> float:
    """The best accuracy among n random perceptrons, evaluated at once as one Linear(2, n)."""
    from tinytorch.layers import Linear
    from tinytorch.tensor import Tensor, no_grad

    bank = Linear(2, n)  # n perceptrons: row i of the weight is perceptron i
    bank.weight.data[...] *= 4  # spread the lines over the unit square
    bank.bias.data[...] *= 4
    with no_grad():
        fires = (bank(Tensor(X)) > 0).numpy()  # (4, n): each column one perceptron's answers
    return float((fires == y[:, None].astype(bool)).mean(axis=0).max())


def crisis(ctx: RunContext) -> dict:
    epochs = 100
    controls = {}
    for gate in ("AND", "OR"):
        _, _, _, curve = train_perceptron(ctx, TRUTH[gate], epochs, gate)
        controls[gate] = curve[-1]
        ctx.log(f"{gate}: the perceptron learns it, {curve[-1]:.0%} after {len(curve)} epochs")
    model, witness, (trained_best, best_state), xor_curve = train_perceptron(
        ctx, TRUTH["XOR"], epochs, "XOR")
    final_acc = xor_curve[-1]
    model.weight.data[...], model.bias.data[...] = best_state  # plot the best line it found
    search_best = random_perceptrons(TRUTH["XOR"])
    ctx.log(f"XOR: Rosenblatt's rule never did better than {trained_best:.0%} in {epochs} epochs; "
            f"the best of 4,096 random perceptrons: {search_best:.0%}")

    plot_decision_boundary(ctx.path("xor_perceptron.png"), lambda g: predict(model, g), X,
                           TRUTH["XOR"], f"The perceptron's best line on XOR: {trained_best:.0%}")
    plot_learning_curves(ctx.path("accuracy_per_epoch.png"), {"XOR acc": xor_curve},
                         "Rosenblatt's rule on XOR: it never settles")
    save_weights(ctx, model, "tito.milestones.m01_perceptron:perceptron", kind="xor")  # its best
    return {"best_acc": max(trained_best, search_best), "trained_best_acc": trained_best,
            "search_best_acc": search_best, "final_acc": final_acc,
            "and_acc": controls["AND"], "or_acc": controls["OR"],
            "control_acc": min(controls.values()), **witness.metrics()}


# ---------------------------------------------------------------------------------------------
# Part 2: a hidden layer and backprop
# ---------------------------------------------------------------------------------------------
def xor_network(hidden: int = 8):
    from tinytorch.activations import Tanh
    from tinytorch.layers import Linear, Sequential

    return Sequential(Linear(2, hidden), Tanh(), Linear(hidden, 1))


def loss_at(model, loss_fn, y: np.ndarray) -> float:
    """The loss on the 4 XOR points with the current weights (for the gradient check)."""
    from tinytorch.tensor import Tensor, no_grad

    with no_grad():
        return loss_fn(model(Tensor(X)), Tensor(y)).item()


def train_xor(ctx: RunContext, seed: int, steps: int, label: str):
    """One network trained by backprop on the 4 points -> (model, accuracy, witness, losses)."""
    from tinytorch.dataloader import DataLoader, TensorDataset
    from tinytorch.losses import BCEWithLogitsLoss
    from tinytorch.optimizers import Adam

    seed_all(seed)
    model = xor_network()
    loss_fn = BCEWithLogitsLoss()
    optimizer = Adam(model.parameters(), lr=0.05)
    y = TRUTH["XOR"].reshape(4, 1)  # (4, 1)
    loader = DataLoader(TensorDataset(X, y), batch_size=4)
    witness = ctx.witness(model.parameters())
    watch(witness, ctx, optimizer, gradcheck=lambda: loss_at(model, loss_fn, y))
    losses = []
    for step in range(1, steps + 1):
        for xb, yb in loader:  # one full batch of 4
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            losses.append(witness.loss(loss, where=f"{label}, step {step}"))
            loss.backward()
            optimizer.step()
        if step % 25 == 0:
            ctx.progress(step=step, steps=steps, loss=losses[-1], stage=label)
    acc = accuracy(predict(model, X), TRUTH["XOR"])
    return model, acc, witness, losses


def solved(ctx: RunContext) -> dict:
    steps = 300
    metrics: dict = {}
    runs, curves, model = [], {}, None
    for k in range(SEEDS):
        seed = ctx.seed + k
        label = f"seed {seed} ({k + 1}/{SEEDS})"
        model_k, acc, witness, losses = train_xor(ctx, seed, steps, label)
        metrics[f"acc_seed_{seed}"] = acc
        runs.append(witness.metrics())
        curves[f"loss, seed {seed}"] = losses
        ctx.log(f"seed {seed}: {acc:.0%} on XOR, loss {losses[0]:.3f} -> {losses[-1]:.4f}")
        model = model if model is not None else model_k
    accs = [metrics[f"acc_seed_{ctx.seed + k}"] for k in range(SEEDS)]
    plot_decision_boundary(ctx.path("xor_solved.png"), lambda g: predict(model, g), X,
                           TRUTH["XOR"], f"A hidden layer solves XOR (seed {ctx.seed})")
    plot_learning_curves(ctx.path("loss_per_step.png"), curves, "Backprop on XOR, every seed",
                         xlabel="step")
    save_weights(ctx, model, "tito.milestones.m02_xor:xor_network", kind="xor")  # seed ctx.seed
    return {"min_seed_acc": min(accs), "mean_seed_acc": float(np.mean(accs)), "seeds": SEEDS,
            **metrics, **merge_witness_metrics(runs)}
