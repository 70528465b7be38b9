"""Train LeNet-5 on MNIST with tinytorch (modules 01-09) and report the test accuracy.

    TINYTORCH_DATA=../shared/datasets python examples/lenet_mnist.py        # ~99.2% in a few minutes
    python examples/lenet_mnist.py --epochs 1 --train-limit 6000            # a quick look

LeNet-5 (LeCun et al., 1998) with ReLU and max-pooling; padding 2 stands in for the paper's 32 x 32
frame:

    (B, 1, 28, 28) -> conv 6@5x5 -> ReLU -> maxpool 2 -> conv 16@5x5 -> ReLU -> maxpool 2
                   -> flatten 400 -> fc 120 -> ReLU -> fc 84 -> ReLU -> fc 10

Adam with a one-cycle schedule (linear warmup over the first sixth of the steps, then cosine to 0),
batch 128, and random shifts of up to 2 pixels (random crops of the zero-padded digit).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import tinytorch_reference

tinytorch_reference.activate()  # the reference framework is `tinytorch` here

from tinytorch.activations import ReLU
from tinytorch.convolutions import Conv2d, MaxPool2d
from tinytorch.datasets import load_mnist
from tinytorch.layers import Flatten, Linear, Sequential
from tinytorch.losses import CrossEntropyLoss
from tinytorch.optimizers import Adam, WarmupCosine
from tinytorch.tensor import Tensor, manual_seed, no_grad
from tinytorch.transforms import MNIST_MEAN, MNIST_STD, Compose, Normalize, RandomCrop, normalize


def lenet5() -> Sequential:
    return Sequential(Conv2d(1, 6, 5, padding=2), ReLU(), MaxPool2d(2),      # (B, 6, 14, 14)
                      Conv2d(6, 16, 5), ReLU(), MaxPool2d(2),                # (B, 16, 5, 5)
                      Flatten(), Linear(400, 120), ReLU(), Linear(120, 84), ReLU(), Linear(84, 10))


def predict(model, x: np.ndarray, batch: int = 1000) -> np.ndarray:
    model.eval()
    with no_grad():
        out = np.concatenate([model(Tensor(x[i:i + batch])).numpy().argmax(axis=1)
                              for i in range(0, len(x), batch)])
    model.train()
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--shift", type=int, default=2, help="random shifts of up to this many pixels (0: none)")
    ap.add_argument("--train-limit", type=int, default=None, help="use only the first N training images")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    start = time.perf_counter()
    manual_seed(args.seed)
    images, labels = load_mnist("train")
    test_images, test_labels = load_mnist("test")
    if args.train_limit:
        images, labels = images[:args.train_limit], labels[:args.train_limit]
    x_test = normalize(test_images, MNIST_MEAN, MNIST_STD)  # (10000, 1, 28, 28)
    steps_per_epoch = -(-len(images) // args.batch_size)
    augment = Compose(([RandomCrop(args.shift)] if args.shift else []) + [Normalize(MNIST_MEAN, MNIST_STD)],
                      seed=args.seed)

    model = lenet5()
    loss_fn = CrossEntropyLoss()
    opt = Adam(model.parameters(), lr=args.lr)
    total = args.epochs * steps_per_epoch
    sched = WarmupCosine(opt, warmup_steps=max(1, total // 6), total_steps=total)
    print(f"MNIST: {len(images):,} training / {len(test_labels):,} test images; LeNet-5 with "
          f"{sum(p.size for p in model.parameters()):,} parameters; {args.epochs} epochs of {steps_per_epoch} steps")
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order, losses = rng.permutation(len(images)), []
        for i in range(0, len(images), args.batch_size):
            idx = order[i:i + args.batch_size]
            opt.zero_grad()
            loss = loss_fn(model(Tensor(augment(images[idx]))), labels[idx])
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        acc = float(np.mean(predict(model, x_test) == test_labels))
        print(f"epoch {epoch:2d}/{args.epochs}  train loss {np.mean(losses):.4f}  test accuracy {acc:.2%}  "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    train_seconds = time.perf_counter() - t0
    test_acc = float(np.mean(predict(model, x_test) == test_labels))
    seconds = time.perf_counter() - start
    print(f"test accuracy {test_acc:.2%}; wall time {seconds:.0f} s (training {train_seconds:.0f} s, "
          f"{1e3 * train_seconds / (args.epochs * steps_per_epoch):.1f} ms per step incl. evaluation)")
    return {"test_acc": test_acc, "seconds": seconds}


if __name__ == "__main__":
    main()
