"""Train an MLP on MNIST with tinytorch (modules 01-08) and report the test accuracy.

    TINYTORCH_DATA=../shared/datasets python examples/mnist_mlp.py          # ~98.3%, about 30 s
    python examples/mnist_mlp.py --epochs 2 --train-limit 10000 --val 1000  # a quick look

Model: 784-256-128-10 with ReLU, cross-entropy, SGD with Nesterov momentum 0.9 and weight decay,
a cosine learning-rate schedule over the epochs, batch 128. 5,000 training images are held out
for validation; the weights with the best validation loss are kept (checkpointed to .npz) and
then scored once on the 10,000 test images.

The data come from `tinytorch.datasets.load_mnist` ($TINYTORCH_DATA, or a download into the
user cache when the files are missing). On a small machine that other jobs keep busy, run with
OPENBLAS_NUM_THREADS=1: two BLAS threads competing for two busy cores can make every step 10x slower.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import tinytorch_reference

tinytorch_reference.activate()  # the reference framework is `tinytorch` here

from tinytorch.activations import ReLU
from tinytorch.dataloader import DataLoader, TensorDataset
from tinytorch.datasets import load_mnist
from tinytorch.layers import Linear, Sequential
from tinytorch.losses import CrossEntropyLoss
from tinytorch.optimizers import SGD, CosineAnnealingLR
from tinytorch.tensor import manual_seed
from tinytorch.training import Trainer, load_checkpoint
from tinytorch.transforms import MNIST_MEAN, MNIST_STD


def prepare(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 784), normalised to mean 0 and std 1 over the training set."""
    x = images.reshape(len(images), -1).astype(np.float32)  # (N, 784)
    x *= 1.0 / (255.0 * MNIST_STD[0])
    x -= MNIST_MEAN[0] / MNIST_STD[0]
    return x


def build_model(hidden: tuple[int, ...] = (256, 128)) -> Sequential:
    sizes = (784, *hidden, 10)
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [Linear(n_in, n_out), ReLU()]
    return Sequential(*layers[:-1])  # no ReLU after the last layer: it outputs logits


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--hidden", default="256,128", help="hidden layer sizes, comma-separated")
    ap.add_argument("--train-limit", type=int, default=None, help="use only the first N training images")
    ap.add_argument("--val", type=int, default=5000, help="training images held out for validation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)

    start = time.perf_counter()
    manual_seed(args.seed)
    train_images, train_labels = load_mnist("train")
    test_images, test_labels = load_mnist("test")
    if args.train_limit:
        train_images, train_labels = train_images[:args.train_limit], train_labels[:args.train_limit]
    if not 0 < args.val < len(train_images):
        ap.error(f"--val {args.val} must be between 0 and the {len(train_images)} training images")
    x, y = prepare(train_images), train_labels
    order = np.random.default_rng(args.seed).permutation(len(x))
    val_idx, train_idx = order[:args.val], order[args.val:]
    train = DataLoader(TensorDataset(x[train_idx], y[train_idx]), batch_size=args.batch_size, shuffle=True,
                       seed=args.seed)
    val = DataLoader(TensorDataset(x[val_idx], y[val_idx]), batch_size=1000)
    test = DataLoader(TensorDataset(prepare(test_images), test_labels), batch_size=1000)
    load_seconds = time.perf_counter() - start

    model = build_model(tuple(int(h) for h in args.hidden.split(",")))
    opt = SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=args.weight_decay)
    trainer = Trainer(model, CrossEntropyLoss(), opt, scheduler=CosineAnnealingLR(opt, T_max=args.epochs))
    print(f"MNIST: {len(train_idx)} train / {len(val_idx)} validation / {len(test_labels)} test images "
          f"(loaded in {load_seconds:.1f}s); model {args.hidden} -> {sum(p.size for p in model.parameters()):,} "
          "parameters")
    with tempfile.TemporaryDirectory() as tmp:
        best = Path(tmp) / "best.npz"
        t0 = time.perf_counter()
        history = trainer.fit(train, args.epochs, val_loader=val, checkpoint_path=best,
                              progress=not args.no_progress)
        train_seconds = time.perf_counter() - t0
        meta = load_checkpoint(model, best)  # the weights of the best validation epoch
    test_loss, test_acc = trainer.evaluate(test)
    total = time.perf_counter() - start
    steps = sum(len(train) for _ in history["epoch"])
    print(f"best epoch {meta['epoch']} (val loss {meta['val_loss']:.4f}); test loss {test_loss:.4f}, "
          f"test accuracy {test_acc:.2%}")
    print(f"wall time {total:.1f}s (data {load_seconds:.1f}s, training {train_seconds:.1f}s = "
          f"{1e3 * train_seconds / steps:.2f} ms per step incl. evaluation)")
    return {"test_acc": test_acc, "test_loss": test_loss, "seconds": total, "best_epoch": meta["epoch"],
            "history": history}


if __name__ == "__main__":
    main()
