"""Checks for module 05 (dataloader): TensorDataset, DataLoader, random_split.

No timing assertions: the speed check is structural (a TensorDataset must be batched by indexing
its whole arrays, not by one __getitem__ call per sample). Every option is set to a non-default
value somewhere: shuffle, drop_last, a batch size that does not divide n, generator= (a Generator
or an int) as well as seed=, data sets of one and of three arrays, plain Datasets shuffled, and
random_split fractions where rounding and flooring disagree ([0.6, 0.4] of 7 is [5, 2], as in
PyTorch: floor each part, then hand the remainder out one by one from the first part).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinytorch.tensor as tt
from tinytorch.dataloader import DataLoader, Dataset, Subset, TensorDataset, default_collate, random_split
from tinytorch.tensor import Tensor
from tito.checks.harness import assert_close, blame, call, expect_error, hypothesis_settings

SETTINGS = hypothesis_settings(max_examples=30)  # one minimal failure, reproducible


@pytest.fixture(autouse=True)
def _seed():
    tt.manual_seed(0)
    yield
    tt.manual_seed(0)


def data(n: int, features: int = 3):
    """x[i] = [i, i + 0.5, ...] (so every row says which sample it is), y[i] = i as int64."""
    x = (np.arange(n, dtype=np.float32)[:, None] + 0.5 * np.arange(features, dtype=np.float32))
    return x, np.arange(n, dtype=np.int64)


def epoch(loader) -> list:
    return call("DataLoader.__iter__", lambda: list(loader))


def labels_in_order(loader) -> np.ndarray:
    """The labels (second array) of one epoch, batch after batch."""
    batches = epoch(loader)
    with blame("DataLoader.__iter__", "each batch of TensorDataset(x, y) must be a pair of Tensors (x, y)"):
        return np.concatenate([b[1].data for b in batches]) if batches else np.zeros(0, np.int64)


def as_np(t):
    return t.data if isinstance(t, Tensor) else np.asarray(t)


def check_epoch(loader, n: int, batch_size: int, drop_last: bool, what: str) -> np.ndarray:
    """Every batch is an (x, y) pair of Tensors of the right shape, rows matching labels; returns
    the labels in the order they came."""
    batches = epoch(loader)
    expected = n // batch_size if drop_last else -(-n // batch_size)
    if len(batches) != expected:
        raise AssertionError(f"DataLoader.__iter__: {len(batches)} batches for n={n}, batch_size={batch_size}, "
                             f"drop_last={drop_last} ({what}); expected {expected}")
    if call("DataLoader.__len__", len, loader) != expected:
        raise AssertionError(f"DataLoader.__len__: len(loader) = {len(loader)} for n={n}, "
                             f"batch_size={batch_size}, drop_last={drop_last}; expected {expected}")
    labels = []
    for k, batch in enumerate(batches):
        if not isinstance(batch, (tuple, list)) or len(batch) != 2 or not all(isinstance(t, Tensor) for t in batch):
            raise AssertionError(f"DataLoader.__iter__: a batch of TensorDataset(x, y) must be a pair of Tensors "
                                 f"(x, y), got {type(batch).__name__}")
        xb, yb = batch
        size = batch_size if (k < len(batches) - 1 or drop_last or n % batch_size == 0) else n % batch_size
        if xb.shape != (size, 3) or yb.shape != (size,):
            raise AssertionError(f"DataLoader.__iter__: batch {k} has shapes {xb.shape}, {yb.shape}; expected "
                                 f"({size}, 3), ({size},) (n={n}, batch_size={batch_size}, {what})")
        if not np.array_equal(xb.data[:, 0], yb.data.astype(np.float32)):
            raise AssertionError(f"DataLoader.__iter__: batch {k}: the rows of x and the labels y do not belong "
                                 "to the same samples (use the same indices for every array)")
        labels.append(yb.data)
    return np.concatenate(labels) if labels else np.zeros(0, np.int64)


# ---------------------------------------------------------------------------------------------
# TensorDataset
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("TensorDataset")
def test_tensor_dataset_items():
    x, y = data(6)
    ds = call("TensorDataset.__init__", TensorDataset, Tensor(x), y)
    if call("TensorDataset.__len__", len, ds) != 6:
        raise AssertionError(f"TensorDataset.__len__: {len(ds)} for 6 samples")
    item = call("TensorDataset.__getitem__", lambda: ds[4])
    with blame("TensorDataset.__getitem__", "ds[4] must be the pair (x[4], y[4])"):
        ok = len(item) == 2 and np.array_equal(as_np(item[0]), x[4]) and int(as_np(item[1])) == 4
    if not ok:
        raise AssertionError(f"TensorDataset.__getitem__: ds[4] gave {item}, expected (x[4], y[4]) = ({x[4]}, 4)")
    rows = call("TensorDataset.__getitem__", lambda: ds[1:3])
    with blame("TensorDataset.__getitem__", "ds[1:3] must be (x[1:3], y[1:3])"):
        ok = np.array_equal(as_np(rows[0]), x[1:3]) and np.array_equal(as_np(rows[1]), y[1:3])
    if not ok:
        raise AssertionError(f"TensorDataset.__getitem__: ds[1:3] gave {rows}, expected (x[1:3], y[1:3])")
    expect_error("TensorDataset.__init__ (arrays of lengths 6 and 5)", (ValueError, AssertionError, IndexError),
                 TensorDataset, x, y[:5])
    expect_error("TensorDataset.__init__ (a 0-d array has no samples)", (ValueError, TypeError, IndexError),
                 TensorDataset, np.array(3.0))


@pytest.mark.task("TensorDataset")
def test_tensor_dataset_one_or_three_arrays():
    """TensorDataset(x) gives 1-tuples; TensorDataset(x, y, w) gives triples (any number of arrays)."""
    x, y = data(5)
    w = np.linspace(0, 1, 5).astype(np.float32)
    one = call("TensorDataset.__init__", TensorDataset, x)
    three = call("TensorDataset.__init__", TensorDataset, x, y, w)
    if call("TensorDataset.__len__", len, one) != 5 or call("TensorDataset.__len__", len, three) != 5:
        raise AssertionError("TensorDataset.__len__: wrong length for 5 samples of 1 and of 3 arrays")
    a, b = call("TensorDataset.__getitem__", lambda: one[2]), call("TensorDataset.__getitem__", lambda: three[3])
    with blame("TensorDataset.__getitem__", "an item is a tuple with one entry per array"):
        ok = (len(a) == 1 and np.array_equal(as_np(a[0]), x[2]) and len(b) == 3
              and np.array_equal(as_np(b[0]), x[3]) and int(as_np(b[1])) == 3 and float(as_np(b[2])) == w[3])
    if not ok:
        raise AssertionError(f"TensorDataset.__getitem__: TensorDataset(x)[2] gave {a} and TensorDataset(x, y, w)[3] "
                             f"gave {b}; an item is a tuple with one entry per array")


# ---------------------------------------------------------------------------------------------
# DataLoader
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("DataLoader")
@SETTINGS
@given(n=st.integers(1, 40), batch_size=st.integers(1, 12), drop_last=st.booleans())
def test_batches_cover_every_sample_once_in_order(n, batch_size, drop_last):
    ds = TensorDataset(*data(n))
    loader = call("DataLoader.__init__", DataLoader, ds, batch_size=batch_size, drop_last=drop_last)
    labels = check_epoch(loader, n, batch_size, drop_last, "shuffle=False")
    kept = (n // batch_size) * batch_size if drop_last else n
    if not np.array_equal(labels, np.arange(kept)):
        raise AssertionError(f"DataLoader.__iter__: without shuffle the samples must come in order; got labels "
                             f"{labels.tolist()} (n={n}, batch_size={batch_size}, drop_last={drop_last})")


@pytest.mark.task("DataLoader")
@SETTINGS
@given(n=st.integers(1, 40), batch_size=st.integers(1, 12), drop_last=st.booleans())
def test_shuffled_epoch_is_a_permutation(n, batch_size, drop_last):
    x, y = data(n)
    ds = TensorDataset(x, y)
    before = [a.copy() for a in ds.arrays]
    loader = call("DataLoader.__init__", DataLoader, ds, batch_size=batch_size, shuffle=True,
                  drop_last=drop_last, seed=1)
    labels = check_epoch(loader, n, batch_size, drop_last, "shuffle=True")
    if len(set(labels.tolist())) != len(labels) or (not drop_last and sorted(labels.tolist()) != list(range(n))):
        raise AssertionError(f"DataLoader.__iter__: a shuffled epoch must visit every sample exactly once; got "
                             f"labels {labels.tolist()} (n={n}, batch_size={batch_size})")
    if any(not np.array_equal(a, b) for a, b in zip(ds.arrays, before)):
        raise AssertionError("DataLoader.__iter__: shuffling changed the data set's own arrays; shuffle the order "
                             "of the indices (a[idx] for each batch), never the data in place")


@pytest.mark.task("DataLoader")
def test_batches_of_one_or_three_arrays():
    """A batch has one Tensor per array of the TensorDataset: (xb,) for one array, (xb, yb, wb) for three."""
    x, y = data(7)
    w = np.linspace(0, 1, 7).astype(np.float32)
    for arrays, what in (((x,), "TensorDataset(x)"), ((x, y, w), "TensorDataset(x, y, w)")):
        batches = epoch(call("DataLoader.__init__", DataLoader, TensorDataset(*arrays), batch_size=3, shuffle=True,
                             seed=2))
        if len(batches) != 3 or any(not isinstance(b, (tuple, list)) or len(b) != len(arrays) for b in batches):
            raise AssertionError(f"DataLoader.__iter__: {what} with batch_size=3 must give 3 batches, each a tuple of "
                                 f"{len(arrays)} Tensor(s); got {[type(b).__name__ for b in batches]}")
        with blame("DataLoader.__iter__", f"the batches of {what}"):
            rows = np.concatenate([b[0].data[:, 0] for b in batches]).astype(np.int64)
            for k in range(1, len(arrays)):  # every array follows the same order
                got = np.concatenate([b[k].data for b in batches])
                if not np.allclose(got, arrays[k][rows]):
                    raise AssertionError(f"DataLoader.__iter__: in {what}, array {k} of the batches does not "
                                         "belong to the same samples as array 0 (use the same indices for all)")
        if sorted(rows.tolist()) != list(range(7)):
            raise AssertionError(f"DataLoader.__iter__: an epoch of {what} did not visit every sample once")


@pytest.mark.task("DataLoader")
def test_shuffle_is_seeded_and_new_each_epoch():
    ds = TensorDataset(*data(200))
    a = call("DataLoader.__init__", DataLoader, ds, batch_size=32, shuffle=True, seed=5)
    b = call("DataLoader.__init__", DataLoader, ds, batch_size=32, shuffle=True, seed=5)
    a1, a2, b1, b2 = labels_in_order(a), labels_in_order(a), labels_in_order(b), labels_in_order(b)
    if not (np.array_equal(a1, b1) and np.array_equal(a2, b2)):
        raise AssertionError("DataLoader._order: two loaders with the same seed gave different orders; draw the "
                             "permutation from the loader's generator")
    if np.array_equal(a1, a2):
        raise AssertionError("DataLoader._order: two epochs came in the same order; draw a new permutation "
                             "every epoch")
    if np.array_equal(a1, np.arange(200)):
        raise AssertionError("DataLoader._order: shuffle=True did not shuffle")
    c = call("DataLoader.__init__", DataLoader, ds, batch_size=32, shuffle=True, seed=6)
    if np.array_equal(labels_in_order(c), a1):
        raise AssertionError("DataLoader._order: seeds 5 and 6 gave the same order")
    tt.manual_seed(11)
    g1 = labels_in_order(DataLoader(ds, batch_size=32, shuffle=True))
    tt.manual_seed(11)
    g2 = labels_in_order(DataLoader(ds, batch_size=32, shuffle=True))
    if not np.array_equal(g1, g2):
        raise AssertionError("DataLoader._order: without a seed, shuffling must follow tinytorch.manual_seed "
                             "(use tinytorch.tensor.default_generator())")


@pytest.mark.task("DataLoader")
def test_shuffle_generator_argument():
    """generator= takes a np.random.Generator (whose stream the loader draws on) or an int seed; seed=5,
    generator=5 and generator=np.random.default_rng(5) give the same first epoch."""
    ds = TensorDataset(*data(50))
    by_seed = labels_in_order(call("DataLoader.__init__", DataLoader, ds, batch_size=8, shuffle=True, seed=5))
    by_int = labels_in_order(call("DataLoader.__init__", DataLoader, ds, batch_size=8, shuffle=True, generator=5))
    gen = np.random.default_rng(5)
    shared = call("DataLoader.__init__", DataLoader, ds, batch_size=8, shuffle=True, generator=gen)
    first, second = labels_in_order(shared), labels_in_order(shared)
    expected = np.random.default_rng(5).permutation(50)
    for got, how in ((by_seed, "seed=5"), (by_int, "generator=5"), (first, "generator=np.random.default_rng(5)")):
        if not np.array_equal(got, expected):
            raise AssertionError(f"DataLoader._order: with {how} the first epoch must be "
                                 "np.random.default_rng(5).permutation(n) (one permutation per epoch from the "
                                 "loader's generator)")
    if np.array_equal(first, second):
        raise AssertionError("DataLoader._order: with generator=... two epochs came in the same order")
    in_order = labels_in_order(call("DataLoader.__init__", DataLoader, ds, batch_size=8, generator=gen))
    if not np.array_equal(in_order, np.arange(50)):
        raise AssertionError("DataLoader._order: shuffle=False keeps the order even when a generator is given")
    expect_error("DataLoader.__init__ (batch_size=0)", ValueError, DataLoader, ds, batch_size=0)
    expect_error("DataLoader.__init__ (both generator and seed)", ValueError, DataLoader, ds, generator=gen, seed=1)


@pytest.mark.task("DataLoader")
def test_collated_dtypes():
    x64 = np.random.default_rng(0).standard_normal((10, 2))  # float64 in, float32 out
    y32 = np.arange(10, dtype=np.int32)
    xb, yb = epoch(call("DataLoader.__init__", DataLoader, TensorDataset(x64, y32), batch_size=4))[0]
    if xb.dtype != np.float32:
        raise AssertionError(f"DataLoader.__iter__: float64 data gave a {xb.dtype} batch, expected float32")
    if yb.dtype != np.int64:
        raise AssertionError(f"DataLoader.__iter__: integer labels gave a {yb.dtype} batch, expected int64 "
                             "(labels stay integers)")
    assert_close(xb, x64[:4].astype(np.float32), "DataLoader.__iter__ (the first batch of x)", [x64])
    images = np.arange(6 * 2 * 2, dtype=np.uint8).reshape(6, 2, 2)
    (ib,) = epoch(call("DataLoader.__init__", DataLoader, TensorDataset(images), batch_size=4))[0]
    if ib.dtype != np.uint8 or not np.array_equal(ib.data, images[:4]):
        raise AssertionError(f"DataLoader.__iter__: uint8 images gave a {ib.dtype} batch; expected them as they are "
                             "(uint8: 4x less memory until the model normalises them)")


class Squares(Dataset):
    """A plain Dataset (no arrays): items are (features, python-int label)."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.calls += 1
        return np.array([i, i * i], dtype=np.float64), int(i)


@pytest.mark.task("DataLoader")
def test_any_dataset_is_collated():
    ds = Squares(10)
    batches = epoch(call("DataLoader.__init__", DataLoader, ds, batch_size=4))
    if ds.calls != 10:
        raise AssertionError(f"DataLoader.__iter__: a Dataset of 10 samples had __getitem__ called {ds.calls} "
                             "times in one epoch, expected 10")
    with blame("DataLoader.__iter__", "a batch of (array, int) samples must be a pair (xb, yb)"):
        xb, yb = batches[-1]
    if not (isinstance(xb, Tensor) and isinstance(yb, Tensor)):
        raise AssertionError("default_collate: a batch of (array, int) samples must become (Tensor, Tensor)")
    if xb.shape != (2, 2) or xb.dtype != np.float32 or yb.dtype != np.int64:
        raise AssertionError(f"default_collate: last batch is {xb.shape} {xb.dtype}, {yb.shape} {yb.dtype}; "
                             "expected (2, 2) float32 and (2,) int64")
    assert_close(xb, np.float32([[8, 64], [9, 81]]), "default_collate (the samples stacked: last batch x)")
    assert_close(yb, np.int64([8, 9]), "default_collate (the labels stacked: last batch y)")


@pytest.mark.task("DataLoader")
def test_any_dataset_collated_in_random_order_with_drop_last():
    """The slow path (a plain Dataset) follows the same order rules: shuffled, seeded, drop_last."""
    ds = Squares(11)
    loader = call("DataLoader.__init__", DataLoader, ds, batch_size=4, shuffle=True, drop_last=True, seed=3)
    if call("DataLoader.__len__", len, loader) != 2:
        raise AssertionError(f"DataLoader.__len__: {len(loader)} batches for 11 samples, batch_size=4, drop_last")
    batches = epoch(loader)
    with blame("DataLoader.__iter__", "the batches of a plain Dataset: pairs (xb, yb)"):
        labels = np.concatenate([b[1].data for b in batches])
        xs = np.concatenate([b[0].data for b in batches])
    expected = np.random.default_rng(3).permutation(11)[:8]
    if len(batches) != 2 or not np.array_equal(labels, expected):
        raise AssertionError(f"DataLoader.__iter__: a plain Dataset with shuffle=True, seed=3, drop_last gave labels "
                             f"{labels.tolist()}, expected the first 8 of np.random.default_rng(3).permutation(11) "
                             f"= {expected.tolist()}")
    assert_close(xs, np.stack([labels, labels * labels], axis=1).astype(np.float32),
                 "default_collate (x rows follow the shuffled labels)")
    if ds.calls != 8:
        raise AssertionError(f"DataLoader.__iter__: __getitem__ was called {ds.calls} times for an epoch of 8 "
                             "kept samples")


@pytest.mark.task("default_collate")
def test_default_collate_samples():
    """default_collate: tuples (or lists) of fields collated field by field; plain arrays, Tensors and
    Python numbers stacked; floats become float32, integer labels int64, uint8 stays uint8."""
    xs = [np.array([i, -i], np.float64) for i in range(3)]
    cases = {  # label -> (samples, expected batch)
        "tuples (x, label)": ([(x, i) for i, x in enumerate(xs)], (np.stack(xs), np.arange(3))),
        "lists [x, label]": ([[x, i] for i, x in enumerate(xs)], (np.stack(xs), np.arange(3))),
        "Tensors": ([Tensor(x) for x in xs], np.stack(xs)),
        "plain arrays": (xs, np.stack(xs)),
        "Python floats": ([0.5, 1.5, 2.5], np.array([0.5, 1.5, 2.5])),
        "triples with np.int32 labels": ([(x, np.int32(i), Tensor([i * 2.0])) for i, x in enumerate(xs)],
                                         (np.stack(xs), np.arange(3), np.array([[0.0], [2.0], [4.0]]))),
    }
    for label, (samples, expected) in cases.items():
        got = call("default_collate", default_collate, samples)
        exp = expected if isinstance(expected, tuple) else (expected,)
        out = tuple(got) if isinstance(expected, tuple) and isinstance(got, (tuple, list)) else (got,)
        if len(out) != len(exp) or not all(isinstance(t, Tensor) for t in out):
            want = f"a tuple of {len(exp)} Tensors" if isinstance(expected, tuple) else "a Tensor"
            raise AssertionError(f"default_collate ({label}): returned {type(got).__name__} "
                                 f"{[type(t).__name__ for t in out]}, expected {want}")
        for k, (t, e) in enumerate(zip(out, exp)):
            want = np.int64 if e.dtype.kind in "iu" else np.float32
            if t.dtype != want:
                raise AssertionError(f"default_collate ({label}): field {k} is {t.dtype}, expected {np.dtype(want)}")
            assert_close(t, e, f"default_collate ({label}, field {k})")
    imgs = [np.full((2, 2), i, np.uint8) for i in range(3)]
    got = call("default_collate", default_collate, imgs)
    if not isinstance(got, Tensor) or got.dtype != np.uint8 or got.shape != (3, 2, 2):
        raise AssertionError(f"default_collate (uint8 images): got {type(got).__name__} "
                             f"{getattr(got, 'dtype', None)} {getattr(got, 'shape', None)}, expected a (3, 2, 2) "
                             "uint8 Tensor")


@pytest.mark.task("DataLoader")
def test_tensor_dataset_is_batched_whole(monkeypatch):
    """The fast path: one fancy index per array and batch, never one __getitem__ per sample."""
    ds = TensorDataset(*data(50))

    def per_sample(self, index):
        raise AssertionError("DataLoader.__iter__: called TensorDataset.__getitem__ once per sample; batch a "
                             "TensorDataset by indexing its whole arrays at once (arrays[idx])")

    monkeypatch.setattr(TensorDataset, "__getitem__", per_sample)
    loader = DataLoader(ds, batch_size=16, shuffle=True, seed=0)
    labels = check_epoch(loader, 50, 16, False, "shuffle=True")
    if sorted(labels.tolist()) != list(range(50)):
        raise AssertionError("DataLoader.__iter__: the fast path did not visit every sample once")


# ---------------------------------------------------------------------------------------------
# random_split
# ---------------------------------------------------------------------------------------------
def split_indices(parts) -> list[list[int]]:
    """The labels (= original indices) of every sample of every part."""
    with blame("random_split", "it must return a list of Subsets whose items are (x, y) samples"):
        return [[int(as_np(p[i][1])) for i in range(len(p))] for p in parts]


def sizes(parts) -> list[int]:
    with blame("random_split", "it must return a list of Subsets"):
        return [len(p) for p in parts]


@pytest.mark.task("random_split")
@SETTINGS
@given(n=st.integers(0, 30), cuts=st.lists(st.integers(0, 30), min_size=1, max_size=3))
def test_random_split_sizes_and_disjoint(n, cuts):
    lengths = [c for c in cuts if c >= 0]
    lengths = lengths + [max(n - sum(lengths), 0)]
    if sum(lengths) != n:
        return
    ds = TensorDataset(*data(n))
    parts = call("random_split", random_split, ds, lengths, seed=0)
    if sizes(parts) != lengths:
        raise AssertionError(f"random_split: sizes {sizes(parts)}, expected {lengths} (n={n})")
    seen = sorted(i for idx in split_indices(parts) for i in idx)
    if seen != list(range(n)):
        raise AssertionError(f"random_split: the parts must be disjoint and cover the data; "
                             f"got {split_indices(parts)}")


# fractions -> n -> the sizes PyTorch gives: floor(f * n) each, then the remainder one by one from the
# first part. Rounding each, with the rest to the last part, gives [4, 3], [2, 3], [1, 2, 8], [2, 2, 2, 4].
FRACTIONS = [([0.6, 0.4], 7, [5, 2]), ([0.5, 0.5], 5, [3, 2]), ([0.1, 0.2, 0.7], 11, [2, 2, 7]),
             ([0.25, 0.25, 0.25, 0.25], 10, [3, 3, 2, 2]), ([0.8, 0.2], 100, [80, 20]), ([1.0], 4, [4]),
             ([0.5, 0.5, 0.0], 3, [2, 1, 0])]


@pytest.mark.task("random_split")
@pytest.mark.parametrize("fractions, n, expected", FRACTIONS, ids=[f"{f}_of_{n}" for f, n, _ in FRACTIONS])
def test_random_split_fractions_floor_then_remainder(fractions, n, expected):
    ds = TensorDataset(*data(n))
    parts = call("random_split", random_split, ds, fractions, seed=0)
    if sizes(parts) != expected:
        raise AssertionError(f"random_split: {fractions} of {n} samples gave sizes {sizes(parts)}, expected "
                             f"{expected} (floor(f * n) each, then the remainder one by one from the first part, "
                             "as in PyTorch)")
    if sorted(i for idx in split_indices(parts) for i in idx) != list(range(n)):
        raise AssertionError(f"random_split: the parts of {fractions} must be disjoint and cover the data")


@pytest.mark.task("random_split")
def test_random_split_fractions_seed_and_loading():
    x, y = data(100)
    ds = TensorDataset(x, y)
    parts = call("random_split", random_split, ds, [0.8, 0.2], seed=3)
    if sizes(parts) != [80, 20]:
        raise AssertionError(f"random_split: [0.8, 0.2] of 100 gave sizes {sizes(parts)}")
    again = call("random_split", random_split, ds, [0.8, 0.2], seed=3)
    other = call("random_split", random_split, ds, [0.8, 0.2], seed=4)
    a, b, c = split_indices(parts), split_indices(again), split_indices(other)
    if a != b:
        raise AssertionError("random_split: the same seed gave different splits")
    if a == c:
        raise AssertionError("random_split: seeds 3 and 4 gave the same split")
    if a[0] == list(range(80)):
        raise AssertionError("random_split: the split is not random (the first part is samples 0..79)")
    labels = check_epoch(DataLoader(parts[1], batch_size=8, shuffle=True, seed=0), 20, 8, False,
                         "a random_split part")
    if sorted(labels.tolist()) != sorted(a[1]):
        raise AssertionError("random_split: a DataLoader over a part must give exactly that part's samples")
    inner = call("random_split", random_split, parts[0], [30, 50], seed=1)  # a split of a split
    labels = check_epoch(DataLoader(inner[0], batch_size=7), 30, 7, False, "a part of a random_split part")
    if labels.tolist() != split_indices(inner)[0] or not set(labels.tolist()) <= set(a[0]):
        raise AssertionError("random_split: a DataLoader over a part of a part must give exactly that part's "
                             "samples, in order")
    if not (np.array_equal(ds.arrays[0], x) and np.array_equal(ds.arrays[1], y)):
        raise AssertionError("random_split: changed the data set's arrays; permute indices, not the data")
    sub = Subset(ds, [7, 2])
    with blame("Subset", "Subset(ds, [7, 2]) holds samples 7 and 2"):
        ok = len(sub) == 2 and int(as_np(sub[0][1])) == 7 and int(as_np(sub[1][1])) == 2
    if not ok:
        raise AssertionError("Subset: Subset(ds, [7, 2])[0] must be ds[7], and its length 2")
    as_array = split_indices(call("random_split", random_split, ds, np.array([0.8, 0.2]), seed=3))
    if as_array != a:
        raise AssertionError("random_split: lengths given as a NumPy array must split like the same list")
    for bad in ([50, 40], [0.5, 0.4], [-10, 110], [-1, 101], [50.5, 49.5], [-0.5, 1.0, 0.5]):
        expect_error(f"random_split (lengths {bad} for 100 samples)", ValueError, random_split, ds, bad, seed=0)


@pytest.mark.task("random_split")
def test_random_split_generator_and_seed():
    """generator= takes a np.random.Generator or an int, seed= an int: all three spellings of seed 7 give
    the split of np.random.default_rng(7).permutation(n); without any, tinytorch.manual_seed decides."""
    ds = TensorDataset(*data(40))
    order = np.random.default_rng(7).permutation(40)
    expected = [order[:25].tolist(), order[25:].tolist()]
    for how, kwargs in (("seed=7", dict(seed=7)), ("generator=7", dict(generator=7)),
                        ("generator=np.random.default_rng(7)", dict(generator=np.random.default_rng(7)))):
        got = split_indices(call("random_split", random_split, ds, [25, 15], **kwargs))
        if got != expected:
            raise AssertionError(f"random_split: with {how} the parts must be consecutive pieces of "
                                 "np.random.default_rng(7).permutation(n) (one permutation from the generator)")
    tt.manual_seed(21)
    g1 = split_indices(call("random_split", random_split, ds, [25, 15]))
    tt.manual_seed(21)
    g2 = split_indices(call("random_split", random_split, ds, [25, 15]))
    if g1 != g2 or g1 == expected:
        raise AssertionError("random_split: without generator or seed the split must follow tinytorch.manual_seed "
                             "(use tinytorch.tensor.default_generator())")
    expect_error("random_split (both generator and seed)", ValueError, random_split, ds, [25, 15],
                 generator=np.random.default_rng(1), seed=1)
