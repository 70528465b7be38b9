"""A fast uint8 image pipeline that works on whole batches.

Support file, not a learner module: NumPy only. Images stay uint8 and channels-last, exactly as
the loaders in `tinytorch.datasets` return them - (N, H, W) for grey, (N, H, W, C) for colour -
while they are cropped and flipped (one byte per pixel moves 4x less memory than float32).
`normalize` comes last and hands the model float32 in the usual (N, C, H, W) layout.

    aug = Compose([RandomCrop(4), RandomHorizontalFlip(), Normalize(CIFAR10_MEAN, CIFAR10_STD)],
                  seed=0)
    x = aug(images[batch_idx])          # uint8 (128, 32, 32, 3) -> float32 (128, 3, 32, 32)

Every random step takes an explicit `np.random.Generator`, so a seeded pipeline is reproducible.
Nothing loops over images in Python: each image gets its own random offset or flip through one
strided view and one fancy index. Crop + flip + normalise of 128 CIFAR images takes about 1 ms.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["normalize", "random_crop", "random_hflip", "Normalize", "RandomCrop",
           "RandomHorizontalFlip", "Compose", "MNIST_MEAN", "MNIST_STD", "FASHION_MNIST_MEAN",
           "FASHION_MNIST_STD", "CIFAR10_MEAN", "CIFAR10_STD"]

# Per-channel statistics of the training sets, in [0, 1] units (pixel / 255).
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.2860,), (0.3530,)
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def _check_batch(batch: np.ndarray) -> None:
    if batch.ndim not in (3, 4):
        raise ValueError(f"expected a batch (N, H, W) or (N, H, W, C), got shape {batch.shape}")


def normalize(batch: np.ndarray, mean: float | Sequence[float],
              std: float | Sequence[float]) -> np.ndarray:
    """uint8 (N, H, W[, C]) -> float32 (N, C, H, W) holding (pixel / 255 - mean) / std.

    `mean` and `std` are in [0, 1] units: one number, or one per channel.
    """
    _check_batch(batch)
    if batch.dtype != np.uint8:
        raise TypeError(f"normalize expects uint8 pixels (0..255), got {batch.dtype}")
    nchw = batch[:, None] if batch.ndim == 3 else batch.transpose(0, 3, 1, 2)    # (N, C, H, W)
    mean = np.asarray(mean, np.float32).reshape(-1, 1, 1)                         # (C|1, 1, 1)
    std = np.asarray(std, np.float32).reshape(-1, 1, 1)
    if mean.shape[0] not in (1, nchw.shape[1]) or std.shape[0] not in (1, nchw.shape[1]):
        raise ValueError(f"mean/std need 1 or {nchw.shape[1]} values, got "
                         f"{mean.shape[0]} and {std.shape[0]}")
    out = np.ascontiguousarray(nchw, dtype=np.float32)     # one copy, already in NCHW order
    out *= 1.0 / (255.0 * std)                             # fold /255 and /std into one multiply
    out -= mean / std
    return out


def random_crop(batch: np.ndarray, padding: int, rng: np.random.Generator) -> np.ndarray:
    """Zero-pad every image by `padding` pixels on each side, then cut out an H x W window at an
    independent random offset per image. Same shape and dtype as `batch`."""
    _check_batch(batch)
    if padding <= 0:
        return batch.copy()
    n, h, w = batch.shape[:3]
    padded = np.zeros((n, h + 2 * padding, w + 2 * padding) + batch.shape[3:], batch.dtype)
    padded[:, padding:padding + h, padding:padding + w] = batch
    # windows[i, y, x] is the H x W window of image i whose top-left corner is (y, x): a view.
    windows = sliding_window_view(padded, (h, w), axis=(1, 2))  # (N, 2p+1, 2p+1, [C,] H, W)
    ys = rng.integers(0, 2 * padding + 1, size=n)
    xs = rng.integers(0, 2 * padding + 1, size=n)
    crops = windows[np.arange(n), ys, xs]                        # (N, [C,] H, W): one gather
    return np.ascontiguousarray(np.moveaxis(crops, (-2, -1), (1, 2)))   # (N, H, W[, C])


def random_hflip(batch: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Mirror each image left-right with probability `p`, independently. Returns a new array."""
    _check_batch(batch)
    flip = rng.random(len(batch)) < p                  # (N,) which images to mirror
    out = batch.copy()
    out[flip] = batch[flip, :, ::-1]                   # axis 2 is the width axis
    return out


class Normalize:
    """`normalize` as a pipeline step (ignores the random generator)."""

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]):
        self.mean, self.std = mean, std

    def __call__(self, batch: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        return normalize(batch, self.mean, self.std)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class RandomCrop:
    """`random_crop` as a pipeline step: pad by `padding`, crop back to the original size."""

    def __init__(self, padding: int = 4):
        self.padding = padding

    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return random_crop(batch, self.padding, rng)

    def __repr__(self) -> str:
        return f"RandomCrop(padding={self.padding})"


class RandomHorizontalFlip:
    """`random_hflip` as a pipeline step."""

    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return random_hflip(batch, rng, self.p)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Compose:
    """Run steps in order on a batch. Each step is called as `step(batch, rng)`; the pipeline owns
    one generator (seeded by `seed`), so two pipelines with the same seed augment identically."""

    def __init__(self, steps: Sequence[Callable[[np.ndarray, np.random.Generator], np.ndarray]],
                 seed: int | None = None):
        self.steps = list(steps)
        self.rng = np.random.default_rng(seed)

    def __call__(self, batch: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        rng = self.rng if rng is None else rng
        for step in self.steps:
            batch = step(batch, rng)
        return batch

    def __repr__(self) -> str:
        return f"Compose({self.steps!r})"
