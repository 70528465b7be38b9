"""Train a CNN on CIFAR-10 with tinytorch (modules 01-09) and report the test accuracy.

    TINYTORCH_DATA=../shared/datasets python examples/cifar_cnn.py          # >75% in under 30 minutes
    python examples/cifar_cnn.py --epochs 2 --train-limit 5000              # a quick look

The model: four blocks of conv 3x3 -> batch norm -> ReLU, the width doubling as the resolution
halves:

    (B, 3, 32, 32) -> block 32 -> maxpool -> block 64 -> maxpool -> block 128 -> maxpool   (B, 128, 4, 4)
                   -> block 256 -> global average pool -> fc 10

SGD with Nesterov momentum 0.9 and weight decay 5e-4, a one-cycle schedule (linear warmup over the
first sixth of the steps to lr 0.1, then cosine to 0), label smoothing 0.1, batch 128, random crops
(4 pixels of zero padding) and horizontal flips on the uint8 images.

Without the official files (offline), `load_cifar10` uses a lossy JPEG copy of CIFAR-10 and warns;
the script then also scores the 1,000 exact official test images when they are available.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import tinytorch_reference

tinytorch_reference.activate()  # the reference framework is `tinytorch` here

from tinytorch.activations import ReLU
from tinytorch.convolutions import AdaptiveAvgPool2d, BatchNorm2d, Conv2d, MaxPool2d
from tinytorch.datasets import last_provenance, load_cifar10, load_cifar10_exact_test
from tinytorch.layers import Flatten, Linear, Sequential
from tinytorch.losses import CrossEntropyLoss
from tinytorch.optimizers import SGD, WarmupCosine
from tinytorch.tensor import Tensor, manual_seed, no_grad
from tinytorch.transforms import (CIFAR10_MEAN, CIFAR10_STD, Compose, Normalize, RandomCrop,
                                  RandomHorizontalFlip, normalize)


def block(cin: int, cout: int) -> list:
    return [Conv2d(cin, cout, 3, padding=1, bias=False), BatchNorm2d(cout), ReLU()]


def cifar_cnn(a: int = 32, b: int = 64, c: int = 128, d: int = 256) -> Sequential:
    return Sequential(*block(3, a), MaxPool2d(2),                            # (B, a, 16, 16)
                      *block(a, b), MaxPool2d(2),                            # (B, b, 8, 8)
                      *block(b, c), MaxPool2d(2),                            # (B, c, 4, 4)
                      *block(c, d),                                          # (B, d, 4, 4)
                      AdaptiveAvgPool2d(1), Flatten(), Linear(d, 10))


def predict(model, x: np.ndarray, batch: int = 500) -> np.ndarray:
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
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--widths", default="32,64,128,256", help="channels of the four blocks")
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--train-limit", type=int, default=None, help="use only the first N training images")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    start = time.perf_counter()
    manual_seed(args.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the provenance is printed below instead
        images, labels = load_cifar10("train")
        test_images, test_labels = load_cifar10("test")
        prov = last_provenance("cifar-10")
        exact = load_cifar10_exact_test()
    if args.train_limit:
        images, labels = images[:args.train_limit], labels[:args.train_limit]
    x_test = normalize(test_images, CIFAR10_MEAN, CIFAR10_STD)  # (10000, 3, 32, 32)
    augment = Compose([RandomCrop(4), RandomHorizontalFlip(), Normalize(CIFAR10_MEAN, CIFAR10_STD)],
                      seed=args.seed)
    steps_per_epoch = -(-len(images) // args.batch_size)

    model = cifar_cnn(*(int(w) for w in args.widths.split(",")))
    loss_fn = CrossEntropyLoss(label_smoothing=args.label_smoothing)
    opt = SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    total = args.epochs * steps_per_epoch
    sched = WarmupCosine(opt, warmup_steps=max(1, total // 6), total_steps=total)
    print(f"CIFAR-10: {len(images):,} training / {len(test_labels):,} test images"
          f"{'' if prov is None or prov.exact else ' - ' + prov.note}")
    print(f"model: {sum(p.size for p in model.parameters()):,} parameters; {args.epochs} epochs of "
          f"{steps_per_epoch} steps")
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
    result = {"test_acc": float(np.mean(predict(model, x_test) == test_labels))}
    if exact is not None:
        ex_images, ex_labels = exact
        result["exact_test_acc"] = float(np.mean(
            predict(model, normalize(ex_images, CIFAR10_MEAN, CIFAR10_STD)) == ex_labels))
    result["seconds"] = time.perf_counter() - start
    print(f"test accuracy {result['test_acc']:.2%}"
          + (f"; on {len(exact[1]):,} exact official test images {result['exact_test_acc']:.2%}" if exact else "")
          + f"; wall time {result['seconds']:.0f} s (training {train_seconds:.0f} s, "
            f"{1e3 * train_seconds / total:.0f} ms per step incl. evaluation)")
    return result


if __name__ == "__main__":
    main()
