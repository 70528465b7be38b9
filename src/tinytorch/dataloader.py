# %% [markdown]
# # Module 05 - DataLoader
#
# Training looks at the data in mini-batches: shuffle the sample order once per epoch, cut it
# into batches, and stack each batch into Tensors. Done sample by sample in Python, that costs
# microseconds per sample, every sample, every epoch; done with one fancy-indexing operation per
# batch, a small fraction of that.
#
# You build the data plumbing with PyTorch's interface - `Dataset`, `TensorDataset`,
# `DataLoader` and `random_split` - reproducible from one seed.
#
# ## What you build
#
# - `TensorDataset`: `__init__` (all arrays share their first dimension), `__len__`, and
#   `__getitem__` (sample `i` is `tuple(a[i] for a in arrays)`).
# - `DataLoader`: `__len__` (the number of batches), `_order` (the sample order of one epoch) and
#   `__iter__` (cut the order into batches; batch a `TensorDataset` by indexing whole arrays).
# - `default_collate`: a list of samples -> one Tensor per field (floats -> float32, integer
#   labels -> int64), for datasets that are not plain arrays.
# - `random_split(dataset, lengths, generator)`: disjoint random subsets that cover the data set.
#
# `Dataset` (the interface) and `Subset` (a view through a list of indices) are given. As in every
# lesson: read a section, write the code cell below it, run the "try it" cell, then the check cell
# - it runs the same checks as `tito module test 05 --task ...`.

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

# %% [markdown]
# ## Dataset: a length and an item per index
#
# A data set, to a training loop, is anything that answers two questions: how many samples are
# there (`len(ds)`), and what is sample `i` (`ds[i]`, usually a pair `(features, label)`). That is
# the whole `Dataset` interface, PyTorch's "map-style" data set. It says nothing about where the
# samples come from - arrays in memory, image files on disk decoded on demand, or numbers computed on
# the fly - which is why it is useful: the `DataLoader` works with all of them.
#
# ```python
# class Squares(Dataset):
#     def __len__(self):         return 100
#     def __getitem__(self, i):  return np.float32([i]), i * i     # (features, label)
# ```
#
# The price of that generality is that every sample is one Python method call. Keep that in mind;
# it decides the design of the rest of this module.
#
# Given below with it: `_as_array`, which `TensorDataset` uses to bring each array into the form
# the course uses everywhere. Floating data becomes float32 (the dtype of every Tensor: float64
# would double the memory and halve the speed of every op); a 1-D integer array - class labels -
# becomes int64, what `CrossEntropyLoss` indexes with; anything else is kept as it is. In particular
# uint8 images stay uint8: MNIST's 60,000 x 784 pixels are 47 MB as bytes and 188 MB as float32, so
# the conversion to floats is left to the model (or `tinytorch.transforms`), one batch at a time.

# %%
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


# %% [markdown]
# ## TensorDataset: samples are rows of arrays
#
# Most data sets in this course already sit in memory as arrays: MNIST is an image array
# (60000, 28, 28) and a label array (60000,). A `TensorDataset(images, labels)` holds such arrays,
# and sample `i` is row `i` of each: `(images[i], labels[i])`. The arrays are *columns* of one
# table, so they must all have the same length - the same first dimension - or some sample would have
# an image and no label. Check that in `__init__` and raise `ValueError` with the shapes when they
# differ (a 0-d array, which has no rows at all, is an error too).
#
# **What to write.**
#
# - `__init__(*arrays)`: store `self.arrays = tuple(_as_array(a) for a in arrays)` - the attribute
#   must be called `arrays`, because the DataLoader's fast path reads it - and check the lengths.
# - `__len__`: the common first dimension.
# - `__getitem__(index)`: `tuple(a[index] for a in self.arrays)`. Note that `index` may be an int
#   *or an array of ints*: with `idx = np.array([3, 1, 4])`, `ds[idx]` is a whole batch in one
#   call. That is the idea the DataLoader will exploit.
#
# **Worked example.** `x = [[0.0, 0.5], [1.0, 1.5], [2.0, 2.5]]` (3 samples, 2 features) and
# `y = [0, 1, 2]`: `len(ds)` is 3 and `ds[1]` is `([1.0, 1.5], 1)`.
#
# **Systems view.** Storing is free - the arrays are kept, not copied (unless a dtype conversion
# was needed). Indexing one row, `a[i]`, is a view (no copy); indexing with an array of rows,
# `a[idx]`, is a *gather* that copies exactly those rows into a new, contiguous array: B rows of
# 784 float32 pixels is B x 3,136 bytes read from scattered places and written in one block.

# %% nbgrader={"grade": false, "grade_id": "tensor-dataset", "locked": false, "schema_version": 3, "solution": true, "task": false}
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
        # HINT: the length of the first array
        ### BEGIN SOLUTION
        return len(self.arrays[0])
        ### END SOLUTION

    def __getitem__(self, index):
        # HINT: row `index` of every array, as a tuple
        ### BEGIN SOLUTION
        return tuple(a[index] for a in self.arrays)
        ### END SOLUTION


# %%
if __name__ == "__main__":
    # Try it: the worked example; one sample, then three at once.
    ds = TensorDataset(np.array([[0.0, 0.5], [1.0, 1.5], [2.0, 2.5]]), np.array([0, 1, 2]))
    print("len:", len(ds), " dtypes:", [a.dtype for a in ds.arrays])
    print("ds[1]:", ds[1])
    print("ds[[2, 0]]:", ds[np.array([2, 0])])
    try:
        TensorDataset(np.zeros((3, 2)), np.zeros(2))
    except ValueError as e:
        print("refused:", e)

# %% nbgrader={"grade": true, "grade_id": "check-tensor-dataset", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("05", "TensorDataset")

# %% [markdown]
# ## Subset: a view through a list of indices
#
# Splitting data - training and validation, say - should not copy it. A `Subset(dataset, indices)`
# holds the original data set and an int64 array of the sample numbers it includes; its sample `k`
# is the original's sample `indices[k]`. The memory cost is 8 bytes per index: a 10,000-sample
# validation split of MNIST costs 80 KB, not another 8 MB of images. `random_split` (at the end of
# this lesson) returns Subsets, and the DataLoader sees through them: a Subset of a TensorDataset is
# still batched with whole-array gathers, by mapping each batch's positions through `indices`.
# It is given.

# %%
class Subset(Dataset):
    """The samples of `dataset` at `indices` (what random_split returns)."""

    def __init__(self, dataset: Dataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index):
        return self.dataset[self.indices[index]]


# %% [markdown]
# ## Why mini-batches
#
# Gradient descent wants the gradient of the loss over the *whole* training set, but computing it
# means a pass over all 60,000 MNIST images for a single step. Stochastic gradient descent takes
# the gradient of a small random batch instead. It is an unbiased estimate of the full gradient - on
# average over the random batches it is exactly right - and its noise shrinks as the batch grows:
# the mean of $B$ per-sample gradients has a standard deviation $1/\sqrt{B}$ times that of one
# sample's.
#
# That sets up the trade-off. The cost of a step grows like $B$; the noise falls only like
# $1/\sqrt{B}$. Going from 32 to 128 samples makes each step four times dearer and only twice as
# precise, and one epoch - a pass over all $N$ samples, the same total arithmetic whatever $B$ -
# then holds four times fewer updates. Small batches give many cheap, noisy steps (the noise even
# helps a little to avoid sharp minima); big ones give few smooth steps.
#
# What tips the balance towards batches of tens or hundreds is **throughput**: hardware does far
# more arithmetic per second on a batch than on one sample. A `Linear(784, 256)` on one sample is
# a matrix-vector product: it reads all 803 KB of the weights to do 0.4 million FLOPs, and is
# limited by memory bandwidth. On a batch of 128 the same weights, read once, serve 128 rows: 128
# times the arithmetic for about the same memory traffic, which is what BLAS is fast at. Below a few
# dozen samples the hardware idles; far above a few hundred, each extra sample adds cost but hardly
# improves the step. Batch sizes of 32 to 256 are the usual compromise for the models in this course.
#
# **Memory of a batch.** A batch is $B \times$ (bytes per sample): MNIST at $B = 128$ is
# 128 x 784 x 4 = 401,408 bytes as float32 (100,352 as the original uint8); CIFAR-10,
# 128 x 3 x 32 x 32 x 4 = 1,572,864 bytes. The batch itself is small; what grows with $B$ are the
# activations the model keeps for its backward pass (module 03), which is what eventually limits
# the batch size.

# %% [markdown]
# ## One epoch: the order, the batches, the last batch
#
# **Shuffle the indices, not the data.** One epoch is a permutation of the sample numbers
# $0 \ldots n-1$, cut into consecutive slices of $B$. Without `shuffle` the order is simply
# `np.arange(n)`; with it, a fresh `permutation(n)` every epoch - moving 8 bytes per sample instead of
# moving the samples. Shuffling matters because data sets are often stored sorted (all the zeros,
# then all the ones...): batches cut from a sorted order would each hold one class, and every step
# would pull the model towards that class and the next step away again.
#
# **Seeded.** The permutation comes from a NumPy generator: the loader's own one if you pass
# `generator=` (a `np.random.Generator` or an int) or `seed=`, else tinytorch's global generator,
# `default_generator()`, which `manual_seed` resets. Each epoch draws from the same generator, so
# its state advances: epoch 2 has a different order from epoch 1, yet rerunning the program with the
# same seed reproduces every epoch exactly. Same seed, same batches, same training run.
#
# **Counting batches.** With $n$ samples there are $\lceil n / B \rceil$ batches, the last one
# smaller when $B$ does not divide $n$; with `drop_last=True` the short last batch is dropped,
# leaving $\lfloor n / B \rfloor$. MNIST at $B = 128$: $60000 / 128 = 468.75$, so 469 batches, the last
# of 96 samples; with `drop_last`, 468 (those 96 samples still take part in other epochs, because the
# order changes). Dropping it avoids a noisy step from a handful of samples, and batch statistics
# (BatchNorm's, module 09) computed from one or two samples. In integer arithmetic, $\lceil n/B \rceil$ is `-(-n // B)`.
#
# **Worked example.** $n = 10$, $B = 4$, no shuffle: batches `[0 1 2 3]`, `[4 5 6 7]`, `[8 9]`;
# `len(loader)` is 3, or 2 with `drop_last`.

# %% [markdown]
# ## The fast path: one gather per array
#
# The generic way to make a batch is to call `dataset[i]` for each of its $B$ indices and stack the
# results. Each call is a Python method call, a tuple, and one small array per field - roughly ten
# microseconds of interpreter work per sample, paid again every epoch, whatever the model. For a
# `TensorDataset` there is a better way: index every array *once* with the whole batch of indices,
# `a[idx]`. That is one call into NumPy, which runs the gather loop in C. The more samples and the
# smaller each sample, the bigger the gap (the try cells below measure it on your machine).
#
# Three small helpers are given, in the next cell:
#
# - `_generator(generator, seed)` turns the `generator=`/`seed=` arguments into a
#   `np.random.Generator`, or `None`, which means: use `default_generator()` at the time of drawing.
# - `_to_tensor(batch)` makes a batch array into a Tensor: floats become float32, 1-D integer labels
#   int64, other integer arrays (uint8 images) stay as they are.
# - `_array_source(dataset)` answers "can this data set be batched by gathers?": it returns the
#   arrays and an `index_map` (or `None`) for a `TensorDataset`, or for a `Subset` of one (then
#   `index_map` holds the Subset's indices, composed if Subsets are nested), and `None` for
#   everything else - including a TensorDataset subclass that overrides `__getitem__`, because that
#   subclass wants its own code to run for each sample.

# %%
def _generator(generator=None, seed: int | None = None) -> np.random.Generator | None:
    """A Generator, an int seed, or None (= tinytorch's global generator, see manual_seed)."""
    if generator is not None and seed is not None:
        raise ValueError("give either generator or seed, not both")
    if seed is not None or isinstance(generator, (int, np.integer)):
        return np.random.default_rng(seed if seed is not None else int(generator))
    return generator


def _to_tensor(batch: np.ndarray) -> Tensor:
    """float -> float32 Tensor, per-sample integer labels -> int64, other ints (uint8) as they are."""
    if batch.dtype.kind in "iu" and batch.ndim == 1:
        batch = batch.astype(np.int64, copy=False)
    return Tensor(batch)


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


# %% [markdown]
# ## DataLoader
#
# The loader is used like PyTorch's:
#
# ```python
# loader = DataLoader(TensorDataset(x, y), batch_size=128, shuffle=True, seed=0)
# for xb, yb in loader:        # xb (128, 784) float32, yb (128,) int64
#     ...
# len(loader)                  # batches per epoch
# ```
#
# Iterating over it once is one epoch; iterating again is the next epoch, with a new order. The
# constructor (given) checks `batch_size` and stores the arguments, the generator made by
# `_generator`. You write three methods:
#
# - `__len__`: $\lceil n/B \rceil$, or $\lfloor n/B \rfloor$ with `drop_last`.
# - `_order`: this epoch's order - `np.arange(n)`, or, with `shuffle`, a `permutation(n)` from
#   `self.generator`, falling back to `default_generator()` when that is `None`. Look the global
#   generator up at that moment, not in the constructor: `manual_seed` replaces it.
# - `__iter__` (a generator function: it `yield`s): its given first lines take this epoch's order
#   and the `_array_source` once; then for each of the `len(self)` batches slice
#   `idx = order[start:start + B]`. With a source,
#   map the positions through the `index_map` if there is one and yield
#   `tuple(_to_tensor(a[rows]) for a in arrays)`. Without one, fall back to the generic path,
#   `default_collate([self.dataset[int(i)] for i in idx])` - you write `default_collate` right after
#   this, and until then only the fast path runs.
#
# Stopping after `len(self)` batches is what implements `drop_last`: slicing past the end of
# `order` would otherwise give the short batch.

# %% nbgrader={"grade": false, "grade_id": "dataloader", "locked": false, "schema_version": 3, "solution": true, "task": false}
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


# %%
if __name__ == "__main__":
    # Try it: the worked example, n = 10 and B = 4, in order; then with drop_last.
    ten = TensorDataset(np.arange(10, dtype=np.float32)[:, None], np.arange(10))
    loader = DataLoader(ten, batch_size=4)
    print("len:", len(loader), " batches:", [yb.data.tolist() for _, yb in loader])
    short = DataLoader(ten, batch_size=4, drop_last=True)
    print("drop_last len:", len(short), " batches:", [yb.data.tolist() for _, yb in short])
    xb, yb = next(iter(loader))
    print("first batch:", xb.shape, xb.dtype, yb.shape, yb.dtype)

# %% nbgrader={"grade": true, "grade_id": "check-dataloader-in-order", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("05", "in_order")

# %%
if __name__ == "__main__":
    # Try it: two epochs of one seeded loader differ; a second loader with the same seed repeats them.
    a = DataLoader(ten, batch_size=4, shuffle=True, seed=0)
    b = DataLoader(ten, batch_size=4, shuffle=True, seed=0)
    epochs_a = [[yb.data.tolist() for _, yb in a] for _ in range(2)]
    epochs_b = [[yb.data.tolist() for _, yb in b] for _ in range(2)]
    print("epoch 1:", epochs_a[0])
    print("epoch 2:", epochs_a[1])
    print("same seed, same epochs:", epochs_a == epochs_b)

# %% nbgrader={"grade": true, "grade_id": "check-dataloader-shuffle", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("05", "shuffle")

# %%
if __name__ == "__main__":
    # Try it: one epoch over 20,000 samples through your loader (one gather per batch), against
    # building the same batches sample by sample in Python.
    import time

    x = np.random.default_rng(0).standard_normal((20_000, 8)).astype(np.float32)
    y = np.arange(20_000)
    loader = DataLoader(TensorDataset(x, y), batch_size=128, shuffle=True, seed=0)
    start = time.perf_counter()
    n_batches = sum(1 for _ in loader)
    fast = time.perf_counter() - start
    order = np.random.default_rng(0).permutation(len(y))
    start = time.perf_counter()
    for s in range(0, len(y), 128):
        idx = order[s:s + 128]
        xb, yb = np.stack([x[i] for i in idx]), np.array([y[i] for i in idx])
    slow = time.perf_counter() - start
    print(f"{n_batches} batches: gathers {fast * 1e3:.1f} ms, sample by sample {slow * 1e3:.1f} ms "
          f"({slow / fast:.0f}x)")

# %% nbgrader={"grade": true, "grade_id": "check-dataloader-fast-path", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("05", "batched_whole")

# %% [markdown]
# ## default_collate: the generic path
#
# When the data set is not a pile of arrays - its `__getitem__` reads a file, or computes the
# sample - the loader has no choice: it calls `dataset[i]` for each index of the batch and gets a
# list of $B$ samples. `default_collate` turns that list into the same thing the fast path yields.
#
# The rule is recursive. If the samples are tuples (or lists), like `(features, label)`, collate
# *field by field*: all the features into one batch, all the labels into another, returning a tuple
# of the results. Otherwise each sample is an array, a number or a Tensor: take the arrays
# (`.data` of a Tensor, `np.asarray` of anything else), `np.stack` them into one array with a new
# leading batch axis - $B$ samples of shape $S$ become $(B, *S)$ - and make it a Tensor with
# `_to_tensor`, so that float features come out float32 and Python-int labels int64.
#
# **Worked example.** Samples `([0., 0.], 0)`, `([1., 1.], 1)`, `([2., 4.], 2)`: the features stack to
# a (3, 2) float32 Tensor, the labels to `[0, 1, 2]`, int64, and the batch is the pair of the two.
#
# **Systems view.** `np.stack` allocates the (B, *S) array and copies every sample into it: the
# same bytes as the gather, plus $B$ Python calls to `__getitem__` and $B$ small arrays to make and
# throw away. That overhead is per sample, so it hurts most when samples are small; for data that
# really is computed per sample (decoding a JPEG, say) PyTorch runs the `__getitem__` calls in
# worker processes in parallel, which this loader leaves out.

# %% nbgrader={"grade": false, "grade_id": "default-collate", "locked": false, "schema_version": 3, "solution": true, "task": false}
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


# %%
if __name__ == "__main__":
    # Try it: the worked example; then the same data through a plain Dataset (one __getitem__ per
    # sample, collated) and through a TensorDataset (gathers), timed.
    import time

    xb, yb = default_collate([(np.array([0.0, 0.0]), 0), (np.array([1.0, 1.0]), 1), (np.array([2.0, 4.0]), 2)])
    print(xb, xb.dtype, "|", yb, yb.dtype)

    class Rows(Dataset):
        def __init__(self, x, y):
            self.x, self.y = x, y

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return self.x[i], int(self.y[i])

    x = np.random.default_rng(0).standard_normal((20_000, 8)).astype(np.float32)
    y = np.arange(20_000)
    for ds in (Rows(x, y), TensorDataset(x, y)):
        start = time.perf_counter()
        n_batches = sum(1 for _ in DataLoader(ds, batch_size=128, shuffle=True, seed=0))
        print(f"{type(ds).__name__:13s} {n_batches} batches in {(time.perf_counter() - start) * 1e3:.1f} ms")

# %% nbgrader={"grade": true, "grade_id": "check-default-collate", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("05", "collate")

# %% [markdown]
# ## random_split: disjoint random parts
#
# To know whether a model generalises you hold some data back: train on one part, measure on the
# other. `random_split(dataset, [50000, 10000])` returns two `Subset`s that together contain every
# sample exactly once, chosen at random. It is one permutation of $0 \ldots n-1$ (from the generator,
# as in `_order`), cut into consecutive pieces of the requested sizes: piece $k$ runs from the sum of
# the sizes before it to that sum plus its own size, which `np.cumsum([0] + sizes)` gives all at once.
#
# **Lengths** are either sample counts, which must add up to $n$, or fractions that add up to 1,
# like `[0.8, 0.2]`. A fraction $f$ becomes $\lfloor f n \rfloor$ samples; the few samples left over
# by the rounding go one each to the first parts, in turn (PyTorch's rule). Worked example: $n = 101$
# and `[0.8, 0.2]`: $\lfloor 80.8 \rfloor = 80$ and $\lfloor 20.2 \rfloor = 20$ make 100, and the one
# left over goes to the first part: sizes `[81, 20]`. With $n = 5$ and `[0.5, 0.5]`: `[3, 2]`.
# Anything else - negative or non-integer counts, counts that do not add up to $n$, fractions that
# do not add up to 1 - is a `ValueError` that says what was given.
#
# **Reproducible.** The generator is chosen as in the loader: `generator=` or `seed=` if given
# (`_generator` turns them into a `np.random.Generator`), else `default_generator()`. The same seed
# gives the same split - so the validation set of today's run is the one of yesterday's, and no
# sample moves between training and validation across runs.
#
# **Systems view.** One permutation ($8n$ bytes) and no copy of the data: each part is a Subset
# holding its indices. The DataLoader still batches a Subset of a TensorDataset with gathers.

# %% nbgrader={"grade": false, "grade_id": "random-split", "locked": false, "schema_version": 3, "solution": true, "task": false}
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


# %%
if __name__ == "__main__":
    # Try it: the worked example's sizes, and a DataLoader over one part.
    hundred_and_one = TensorDataset(np.zeros((101, 2)), np.arange(101))
    print([len(part) for part in random_split(hundred_and_one, [0.8, 0.2], seed=0)])
    train, val = random_split(ten, [7, 3], seed=0)
    print("validation samples:", sorted(val.indices.tolist()))
    print("its batches:", [yb.data.tolist() for _, yb in DataLoader(val, batch_size=2)])

# %% nbgrader={"grade": true, "grade_id": "check-random-split", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("05", "random_split")

# %% [markdown]
# ## Wrap-up
#
# You built the pipe between the data and the model:
#
# - `TensorDataset` keeps whole arrays, float32 and int64, and hands out rows - one at a time or a
#   whole batch at once.
# - `DataLoader` turns a data set into epochs of mini-batches: a fresh seeded permutation per epoch,
#   $\lceil n/B \rceil$ batches (or $\lfloor n/B \rfloor$ with `drop_last`), every sample exactly once,
#   and for arrays one gather per batch instead of $B$ Python calls.
# - `default_collate` is the generic path for any other `Dataset`.
# - `random_split` makes reproducible, disjoint Subsets without copying a byte of data.
#
# The systems lessons: batch size trades noise ($1/\sqrt{B}$) against cost per step ($B$), and the
# hardware's appetite for big matrix products pushes it up; a batch costs $B$ times the bytes of a
# sample, the activations it causes cost much more; and per-sample Python work is a tax on every
# epoch - move it into one vectorised call whenever the data allows. Seeding the one generator
# makes the whole sequence of batches, and so the training run, reproducible.
#
# Next: module 06 (autograd) computes the gradient of a batch's loss, module 07 updates the weights
# with it, and module 08's `Trainer` runs exactly the loop this loader was built for, in milestone
# 03 on MNIST.
#
# Check your work from the terminal too:
#
#     tito module test 05
#     tito module complete 05
#
# The last cell runs every check of this module.

# %% nbgrader={"grade": true, "grade_id": "check-all", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("05")
