# %% [markdown]
# # Module 05 - DataLoader
#
# Training looks at the data in mini-batches: shuffle the sample order once per epoch, cut it
# into batches, and stack each batch into Tensors. Done sample by sample in Python, that costs
# seconds per MNIST epoch; done with one fancy-indexing operation per batch, milliseconds.

# %%
"""Module 05: Dataset, TensorDataset, DataLoader, random_split.

An epoch over n samples with batch size B:

    order   = a permutation of 0..n-1 (shuffle) or 0..n-1 in order
    batches = order[0:B], order[B:2B], ...      ceil(n / B) of them, or floor(n / B) with drop_last

Every sample appears exactly once per epoch. With shuffle, the generator draws a new permutation
each epoch; seeding it makes the whole sequence of epochs reproducible.

Fast path: a TensorDataset keeps whole arrays, so a batch is `tuple(a[idx] for a in arrays)`,
one NumPy call per array, instead of B calls to __getitem__ followed by a stack.

Collation turns a batch into Tensors: floating data -> float32, integer labels -> int64.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from tinytorch.tensor import Tensor, default_generator


# ---------------------------------------------------------------------------------------------
# Data sets
# ---------------------------------------------------------------------------------------------
class Dataset:
    """Anything with a length and an item per index: subclass it and define both methods.

        class Squares(Dataset):
            def __len__(self):         return 100
            def __getitem__(self, i):  return np.float32([i]), i * i     # (features, label)
    """

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")


def _as_array(a) -> np.ndarray:
    """A column of a TensorDataset: floats become float32, 1-D integer labels int64."""
    a = np.asarray(a.data if isinstance(a, Tensor) else a)
    if a.dtype.kind == "f" and a.dtype != np.float32:
        return a.astype(np.float32)
    if a.dtype.kind in "iu" and a.ndim == 1:
        return a.astype(np.int64, copy=False)
    return a  # e.g. uint8 images stay compact until the model normalises them


class TensorDataset(Dataset):
    """Samples are rows of equally long arrays: TensorDataset(images, labels)[i] ==
    (images[i], labels[i]). `.arrays` holds the arrays (the DataLoader batches them directly)."""

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("TensorDataset needs at least one array")
        # HINT: store the converted arrays (_as_array) in self.arrays: the DataLoader's fast
        # HINT: path reads it; all must have the same first dimension (else ValueError)
        ### BEGIN SOLUTION
        self.arrays = tuple(_as_array(a) for a in arrays)
        lengths = [len(a) if a.ndim else -1 for a in self.arrays]
        if any(n != lengths[0] for n in lengths) or lengths[0] < 0:
            raise ValueError(f"TensorDataset: all arrays need the same first dimension, got "
                             f"shapes {[a.shape for a in self.arrays]}")
        ### END SOLUTION

    def __len__(self) -> int:
        ### BEGIN SOLUTION
        return len(self.arrays[0])
        ### END SOLUTION

    def __getitem__(self, index):
        ### BEGIN SOLUTION
        return tuple(a[index] for a in self.arrays)
        ### END SOLUTION


class Subset(Dataset):
    """The samples of `dataset` at `indices` (what random_split returns)."""

    def __init__(self, dataset: Dataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index):
        return self.dataset[self.indices[index]]


def _generator(generator=None, seed: int | None = None) -> np.random.Generator | None:
    """A Generator, an int seed, or None (= tinytorch's global generator, see manual_seed)."""
    if generator is not None and seed is not None:
        raise ValueError("give either generator or seed, not both")
    if seed is not None or isinstance(generator, (int, np.integer)):
        return np.random.default_rng(seed if seed is not None else int(generator))
    return generator


def random_split(dataset: Dataset, lengths: Sequence, generator=None, seed: int | None = None) -> list[Subset]:
    """Split into disjoint random Subsets of the given lengths, e.g. [50000, 10000] or [0.8, 0.2].

    Fractions (summing to 1) become floor(f * n) samples each; the few left over go one each to
    the first subsets, as in PyTorch.
    """
    n = len(dataset)
    # HINT: fractions summing to 1 -> floor(f * n) each, the remainder one by one to the first parts;
    # HINT: then cut one permutation (from the generator) into consecutive pieces: Subset(dataset, idx)
    ### BEGIN SOLUTION
    lengths = list(lengths)
    if lengths and all(0 <= f <= 1 for f in lengths) and abs(sum(lengths) - 1) < 1e-6 and sum(lengths) != n:
        sizes = [int(np.floor(f * n)) for f in lengths]
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
    else:
        sizes = [int(k) for k in lengths]
        if any(k != s for k, s in zip(lengths, sizes)) or any(s < 0 for s in sizes):
            raise ValueError(f"random_split: lengths must be non-negative integers or fractions "
                             f"summing to 1, got {lengths}")
    if sum(sizes) != n:
        raise ValueError(f"random_split: lengths {lengths} add up to {sum(sizes)}, "
                         f"but the dataset has {n} samples")
    order = (_generator(generator, seed) or default_generator()).permutation(n)
    bounds = np.cumsum([0] + sizes)
    return [Subset(dataset, order[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    ### END SOLUTION


# ---------------------------------------------------------------------------------------------
# Batching
# ---------------------------------------------------------------------------------------------
def _to_tensor(batch: np.ndarray) -> Tensor:
    """float -> float32 Tensor, per-sample integer labels -> int64, other ints (uint8) as they are."""
    if batch.dtype.kind in "iu" and batch.ndim == 1:
        batch = batch.astype(np.int64, copy=False)
    return Tensor(batch)


def default_collate(samples: list):
    """A list of samples -> one batch: tuples are collated field by field into Tensors."""
    # HINT: tuples: collate each field separately; otherwise np.stack the samples -> _to_tensor
    ### BEGIN SOLUTION
    first = samples[0]
    if isinstance(first, (tuple, list)):
        return tuple(default_collate([s[i] for s in samples]) for i in range(len(first)))
    arrays = [np.asarray(s.data if isinstance(s, Tensor) else s) for s in samples]
    return _to_tensor(np.stack(arrays))  # (B, *sample shape)
    ### END SOLUTION


def _array_source(dataset) -> tuple[tuple[np.ndarray, ...], np.ndarray | None] | None:
    """(arrays, index map) when batches can be cut straight from whole arrays, else None.

    Works for a TensorDataset (or anything exposing `.arrays` row-aligned with its items) and for
    Subsets of one; a subclass that overrides TensorDataset.__getitem__ takes the slow path.
    """
    index_map = None
    while isinstance(dataset, Subset) and type(dataset).__getitem__ is Subset.__getitem__:
        index_map = dataset.indices if index_map is None else dataset.indices[index_map]
        dataset = dataset.dataset
    if isinstance(dataset, TensorDataset) and type(dataset).__getitem__ is not TensorDataset.__getitem__:
        return None
    arrays = getattr(dataset, "arrays", None)
    return None if arrays is None else (tuple(arrays), index_map)


class DataLoader:
    """Iterate over a dataset in mini-batches of Tensors.

        loader = DataLoader(TensorDataset(x, y), batch_size=128, shuffle=True, seed=0)
        for xb, yb in loader:        # xb (128, 784) float32, yb (128,) int64
            ...
        len(loader)                  # batches per epoch

    shuffle draws a new order every epoch from `generator` (a np.random.Generator or an int seed;
    `seed=` says the same), or, if none is given, from tinytorch's global generator (manual_seed).
    """

    def __init__(self, dataset: Dataset, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, generator=None, seed: int | None = None):
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size}")
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.generator = _generator(generator, seed)

    def __len__(self) -> int:
        # HINT: ceil(n / batch_size), or floor(n / batch_size) with drop_last
        ### BEGIN SOLUTION
        n, b = len(self.dataset), self.batch_size
        return n // b if self.drop_last else -(-n // b)  # floor or ceil
        ### END SOLUTION

    def _order(self) -> np.ndarray:
        """This epoch's sample order."""
        n = len(self.dataset)
        # HINT: np.arange(n) in order, or a permutation from self.generator (None: default_generator())
        ### BEGIN SOLUTION
        if not self.shuffle:
            return np.arange(n)
        return (self.generator or default_generator()).permutation(n)
        ### END SOLUTION

    def __iter__(self) -> Iterator:
        order = self._order()
        source = _array_source(self.dataset)
        # HINT: cut `order` into slices of batch_size (len(self) of them). With a `source`
        # HINT: (arrays, index_map) index every array at once: a[rows]; else
        # HINT: default_collate([self.dataset[i] for i in idx])
        ### BEGIN SOLUTION
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = order[start:start + self.batch_size]  # (B,) sample indices
            if source is not None:  # fast path: one fancy index per array
                arrays, index_map = source
                rows = idx if index_map is None else index_map[idx]
                yield tuple(_to_tensor(a[rows]) for a in arrays)  # (B, ...) per array
            else:
                yield default_collate([self.dataset[int(i)] for i in idx])
        ### END SOLUTION
