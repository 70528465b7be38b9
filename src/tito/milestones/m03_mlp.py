"""Milestone 03 - The MLP Revival (Rumelhart, Hinton & Williams, 1986), on YOUR modules 01-08.

"Learning representations by back-propagating errors": a network with hidden units, trained by
the chain rule, learns the features it needs. Two parts, both trained by the learner's Trainer
(module 08) with their DataLoader, losses, autograd and optimizers:

Part 1 - XOR, the 1986 way: sigmoid units and a squared error,

    h = sigmoid(x W1^T + b1)  (4, 4),   y_hat = sigmoid(h W2^T + b2)  (4, 1)
    L = mean((y_hat - y)^2)

trained by SGD with momentum until all four points are right (and, at the first step, backprop's
gradients checked against finite differences).

Part 2 - real handwritten digits (MNIST, 60,000 training / 10,000 test images of 28 x 28):

    x (B, 784) -> Linear 256 -> ReLU -> Linear 128 -> ReLU -> Linear 10 -> cross-entropy

Adam (lr 1e-3) with a cosine learning-rate schedule, batches of 128. The full run must reach
98.0% on the 10,000 test images; `--quick` trains on 20,000 images for 3 epochs to 90% on 2,000.
The test accuracy is measured here, from the model's outputs - not taken from the learner's
`evaluate`.
"""

from __future__ import annotations

import time

import numpy as np

from tito.milestone_work import save_weights
from tito.milestones.common import (RunContext, accuracy, plot_confusion_matrix,
                                    plot_decision_boundary, plot_learning_curves,
                                    plot_misclassified, seed_all, watch)
from tito.milestones.m02_xor import TRUTH, X, loss_at


# ---------------------------------------------------------------------------------------------
# Part 1: XOR by backpropagation, sigmoid units and squared error as in 1986
# ---------------------------------------------------------------------------------------------
def xor(ctx: RunContext) -> dict:
    from tinytorch.activations import Sigmoid
    from tinytorch.dataloader import DataLoader, TensorDataset
    from tinytorch.layers import Linear, Sequential
    from tinytorch.losses import MSELoss
    from tinytorch.optimizers import SGD
    from tinytorch.tensor import Tensor, no_grad
    from tinytorch.training import Trainer

    seed_all(ctx.seed)
    model = Sequential(Linear(2, 4), Sigmoid(), Linear(4, 1), Sigmoid())
    optimizer = SGD(model.parameters(), lr=2.0, momentum=0.9)
    trainer = Trainer(model, MSELoss(), optimizer)
    y = TRUTH["XOR"].reshape(4, 1)  # (4, 1)
    loader = DataLoader(TensorDataset(X, y), batch_size=4)
    epochs = 500  # one full-batch step per epoch
    witness = ctx.witness(model.parameters())
    watch(witness, ctx, optimizer, trainer, progress_every=25, steps=epochs, stage="XOR",
          gradcheck=lambda: loss_at(model, MSELoss(), y))
    history = trainer.fit(loader, epochs=epochs, progress=False)

    def predict(points: np.ndarray) -> np.ndarray:
        with no_grad():
            return (model(Tensor(points)).numpy().reshape(-1) > 0.5).astype(np.float32)

    acc = accuracy(predict(X), TRUTH["XOR"])
    ctx.log(f"XOR: {acc:.0%} after {epochs} epochs, squared error "
            f"{history['train_loss'][0]:.4f} -> {history['train_loss'][-1]:.5f}")
    plot_decision_boundary(ctx.path("xor_backprop.png"), predict, X, TRUTH["XOR"],
                           f"4 sigmoid hidden units solve XOR: {acc:.0%}")
    plot_learning_curves(ctx.path("xor_loss.png"), {"squared error": history["train_loss"]},
                         "Backpropagation on XOR")
    return {"train_acc": acc, "epochs": epochs, **witness.metrics()}


# ---------------------------------------------------------------------------------------------
# Part 2: an MLP on MNIST
# ---------------------------------------------------------------------------------------------
MEAN, STD = 0.1307, 0.3081  # of MNIST's training pixels, scaled to [0, 1]


def flatten(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> normalised float32 (N, 784)."""
    x = images.reshape(len(images), -1).astype(np.float32) / 255.0  # (N, 784)
    return (x - MEAN) / STD


def mnist_mlp():
    from tinytorch.activations import ReLU
    from tinytorch.layers import Linear, Sequential

    return Sequential(Linear(784, 256), ReLU(), Linear(256, 128), ReLU(), Linear(128, 10))


def classify(model, x: np.ndarray, batch: int = 2000) -> np.ndarray:
    """Predicted digits (N,) from the model's outputs, in evaluation mode, without a graph."""
    from tinytorch.tensor import Tensor, no_grad

    model.eval()
    with no_grad():
        out = [model(Tensor(x[i:i + batch])).numpy().argmax(axis=1)  # (batch,)
               for i in range(0, len(x), batch)]
    model.train()
    return np.concatenate(out)


def mnist(ctx: RunContext) -> dict:
    from tinytorch.dataloader import DataLoader, TensorDataset
    from tinytorch.losses import CrossEntropyLoss
    from tinytorch.optimizers import Adam, CosineAnnealingLR
    from tinytorch.training import Trainer

    images, labels = ctx.data("mnist", "train")
    test_images, test_labels = ctx.data("mnist", "test")
    if ctx.quick:  # a rehearsal: 20,000 training images, 2,000 test images, 3 epochs
        images, labels = images[:20000], labels[:20000]
        test_images, test_labels = test_images[:2000], test_labels[:2000]
    epochs, batch = (3, 128) if ctx.quick else (15, 128)
    x, x_test = flatten(images), flatten(test_images)  # (N, 784), (M, 784)
    ctx.log(f"MNIST: {len(x):,} training and {len(x_test):,} test images; "
            f"MLP 784-256-128-10, {epochs} epochs")

    seed_all(ctx.seed)
    model = mnist_mlp()
    optimizer = Adam(model.parameters(), lr=1e-3)
    trainer = Trainer(model, CrossEntropyLoss(), optimizer,
                      scheduler=CosineAnnealingLR(optimizer, T_max=epochs))
    loader = DataLoader(TensorDataset(x, labels), batch_size=batch, shuffle=True, seed=ctx.seed)
    witness = ctx.witness(model.parameters())
    steps = epochs * len(loader)
    watch(witness, ctx, optimizer, trainer, grads_every=25, progress_every=20, steps=steps,
          stage="MNIST")

    curves: dict[str, list[float]] = {"train loss": [], "test acc": []}
    t0 = time.perf_counter()

    def after_epoch(epoch: int, record: dict) -> None:
        acc = accuracy(classify(model, x_test), test_labels)
        curves["train loss"].append(record["train_loss"])
        curves["test acc"].append(acc)
        ctx.log(f"epoch {epoch}/{epochs}: train loss {record['train_loss']:.4f}, "
                f"test accuracy {acc:.2%} ({time.perf_counter() - t0:.0f} s)")

    trainer.fit(loader, epochs=epochs, progress=False, on_epoch_end=after_epoch)
    seconds = time.perf_counter() - t0

    pred = classify(model, x_test)
    test_acc = accuracy(pred, test_labels)
    plot_learning_curves(ctx.path("learning_curves.png"), curves, f"MLP on MNIST: {test_acc:.2%}")
    plot_confusion_matrix(ctx.path("confusion_matrix.png"), test_labels, pred,
                          f"MNIST test set, {test_acc:.2%} right")
    plot_misclassified(ctx.path("misclassified.png"), test_images, test_labels, pred,
                       "Misclassified digits (true -> predicted)")
    save_weights(ctx, model, "tito.milestones.m03_mlp:mnist_mlp", kind="digits", data="mnist",
                 layout="flat", mean=[MEAN], std=[STD])  # for `tito milestone demo 03`
    return {"test_acc": test_acc, "train_loss": curves["train loss"][-1], "epochs": epochs,
            "train_images": len(x), "test_images": len(x_test), "train_seconds": seconds,
            **witness.metrics(tail=50)}
