"""Milestone 01 - The Perceptron (Rosenblatt, 1958), on YOUR Tensor (01) and Linear (03).

The perceptron is one linear unit followed by a step:

    y_hat = 1 if w . x + b > 0 else 0

and Rosenblatt's learning rule visits the points one at a time and corrects only its mistakes:

    w <- w + lr (y - y_hat) x,      b <- b + lr (y - y_hat)

No gradients, no loss function: the rule needs neither. The convergence theorem (Novikoff, 1962)
says that if some line separates the two classes with a margin gamma, and every point lies within
radius R, the rule makes at most (R / gamma)^2 mistakes in total: it must reach 100% training
accuracy. The milestone checks exactly that, on fresh separable data, and that the line it found
also classifies held-out points (>= 98%).

Witnesses (measured): the weights changed, and the mistakes per epoch fell (loss = the fraction
of points misclassified during an epoch; loss_drop = 1 - last / first).
"""

from __future__ import annotations

import numpy as np

from tito.milestone_work import save_weights
from tito.milestones.common import (RunContext, accuracy, plot_decision_boundary,
                                    plot_learning_curves)


# ---------------------------------------------------------------------------------------------
# Data: two classes that some line separates with a margin
# ---------------------------------------------------------------------------------------------
def separable_points(rng: np.random.Generator, n: int, normal: np.ndarray, offset: float,
                     margin: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """n points in [-2.5, 2.5]^2 at distance >= margin from the line normal . x + offset = 0."""
    kept = []
    while sum(len(k) for k in kept) < n:
        x = rng.uniform(-2.5, 2.5, size=(2 * n, 2)).astype(np.float32)  # (2n, 2)
        kept.append(x[np.abs(x @ normal + offset) >= margin])
    x = np.concatenate(kept)[:n]  # (n, 2)
    y = (x @ normal + offset > 0).astype(np.float32)  # (n,) labels 0/1
    return x, y


# ---------------------------------------------------------------------------------------------
# The perceptron, on the learner's Linear and Tensor ops
# ---------------------------------------------------------------------------------------------
def perceptron(n_inputs: int = 2):
    """A Linear(n, 1) set to zero, as Rosenblatt's machine started."""
    from tinytorch.layers import Linear

    model = Linear(n_inputs, 1)
    model.weight.data[...] = 0
    model.bias.data[...] = 0
    return model


def predict(model, x: np.ndarray) -> np.ndarray:
    """The step function on the learner's forward pass: (N, 2) -> (N,) labels 0/1."""
    from tinytorch.tensor import Tensor, no_grad

    with no_grad():
        z = model(Tensor(x))  # (N, 1) scores w . x + b
        return (z > 0).numpy().reshape(-1).astype(np.float32)


def rosenblatt_epoch(model, x: np.ndarray, y: np.ndarray, order: np.ndarray, lr: float = 1.0,
                     after_update=None) -> int:
    """One pass of Rosenblatt's rule over the points in `order`; returns the number of mistakes.

    The update is computed with the learner's Tensor arithmetic (sub, mul, add).
    """
    from tinytorch.tensor import Tensor, no_grad

    mistakes = 0
    with no_grad():
        for i in order:
            xi = Tensor(x[i:i + 1])  # (1, 2)
            y_hat = model(xi) > 0  # (1, 1) bool
            target = Tensor(y[i:i + 1].reshape(1, 1))  # (1, 1)
            err = target - Tensor(y_hat.numpy().astype(np.float32))  # (1, 1): -1, 0 or +1
            if err.item() == 0:
                continue
            mistakes += 1
            step = err * lr  # (1, 1): +lr (missed a 1) or -lr (missed a 0)
            new_w = model.weight + step * xi  # (1, 2)
            new_b = model.bias + step.reshape(1)  # (1,)
            model.weight.data[...] = new_w.numpy()
            model.bias.data[...] = new_b.numpy()
            if after_update is not None:
                after_update()
    return mistakes


# ---------------------------------------------------------------------------------------------
# The part
# ---------------------------------------------------------------------------------------------
def main(ctx: RunContext) -> dict:
    rng = ctx.rng()
    angle, offset = rng.uniform(0, 2 * np.pi), float(rng.uniform(-0.5, 0.5))
    normal = np.array([np.cos(angle), np.sin(angle)], dtype=np.float32)  # the hidden true line
    n_train, n_test = 400, (1000 if ctx.quick else 2000)  # 400: held out >= 99.3% in 300 seeds
    x, y = separable_points(rng, n_train, normal, offset)
    x_test, y_test = separable_points(rng, n_test, normal, offset)
    ctx.log(f"{n_train} training points, {n_test} held out; a hidden line separates them with "
            "margin 0.3")

    model = perceptron()
    witness = ctx.witness(model.parameters(), suspects=("tensor", "layers"))
    max_epochs = 100
    history: dict[str, list[float]] = {"mistakes per epoch (fraction)": [], "train acc": []}
    updates = 0
    for epoch in range(1, max_epochs + 1):
        mistakes = rosenblatt_epoch(model, x, y, rng.permutation(n_train),
                                    after_update=witness.weights)
        updates += mistakes
        witness.loss(mistakes / n_train, where=f"epoch {epoch}")
        acc = accuracy(predict(model, x), y)
        history["mistakes per epoch (fraction)"].append(mistakes / n_train)
        history["train acc"].append(acc)
        ctx.progress(epoch=epoch, loss=mistakes / n_train, acc=acc, stage="Rosenblatt's rule")
        if mistakes == 0:  # a full pass without a mistake: converged, the rule stops changing
            break

    train_acc = accuracy(predict(model, x), y)
    test_acc = accuracy(predict(model, x_test), y_test)
    converged = history["mistakes per epoch (fraction)"][-1] == 0
    ctx.log(f"{'converged' if converged else 'did NOT converge'} after {epoch} epochs and "
            f"{updates} updates; w = {model.weight.numpy().ravel().round(3)}, "
            f"b = {model.bias.numpy().round(3)}")

    plot_decision_boundary(ctx.path("decision_boundary.png"), lambda g: predict(model, g), x, y,
                           f"Perceptron: train {train_acc:.0%}, held out {test_acc:.1%}",
                           x_test[:300], y_test[:300])
    plot_learning_curves(ctx.path("learning_curve.png"), history, "Rosenblatt's rule")
    save_weights(ctx, model, "tito.milestones.m01_perceptron:perceptron", kind="plane",
                 arrays={"x": x, "y": y})  # for `tito milestone demo 01`
    return {"train_acc": train_acc, "test_acc": test_acc, "epochs": epoch, "updates": updates,
            "converged": converged, **witness.metrics(tail=1)}
