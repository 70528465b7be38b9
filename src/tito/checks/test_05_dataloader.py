"""Checks for module 05 (dataloader): TensorDataset, DataLoader, random_split.

No timing assertions: the speed check is structural (a TensorDataset must be batched by indexing
its whole arrays, not by one __getitem__ call per sample).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinytorch.tensor as tt
from tinytorch.dataloader import DataLoader, Dataset, TensorDataset, random_split
from tinytorch.tensor import Tensor
from tito.checks.harness import assert_close

SETTINGS = settings(deadline=None, derandomize=True, max_examples=30, report_multiple_bugs=False)


@pytest.fixture(autouse=True)
def _seed():
    tt.manual_seed(0)
    yield
    tt.manual_seed(0)


def call(name: str, fn, *args, **kwargs):
    """fn(...); a crash becomes an AssertionError naming `name` (a stub's error passes through)."""
    try:
        return fn(*args, **kwargs)
    except (NotImplementedError, AssertionError):
        raise
    except Exception as e:
        raise AssertionError(f"{name}: raised {type(e).__name__}: {e}") from e


def data(n: int, features: int = 3):
    """x[i] = [i, i + 0.5, ...] (so every row says which sample it is), y[i] = i as int64."""
    x = (np.arange(n, dtype=np.float32)[:, None] + 0.5 * np.arange(features, dtype=np.float32))
    return x, np.arange(n, dtype=np.int64)


def epoch(loader) -> list:
    return call("DataLoader.__iter__", lambda: list(loader))


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
    if len(item) != 2 or not np.array_equal(as_np(item[0]), x[4]) or int(as_np(item[1])) != 4:
        raise AssertionError(f"TensorDataset.__getitem__: ds[4] gave {item}, expected (x[4], y[4]) = ({x[4]}, 4)")
    try:
        TensorDataset(x, y[:5])
    except NotImplementedError:
        raise
    except (ValueError, AssertionError, IndexError):
        pass
    else:
        raise AssertionError("TensorDataset.__init__: arrays of lengths 6 and 5 were accepted; raise ValueError")


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
    ds = TensorDataset(*data(n))
    loader = call("DataLoader.__init__", DataLoader, ds, batch_size=batch_size, shuffle=True,
                  drop_last=drop_last, seed=1)
    labels = check_epoch(loader, n, batch_size, drop_last, "shuffle=True")
    if len(set(labels.tolist())) != len(labels) or (not drop_last and sorted(labels.tolist()) != list(range(n))):
        raise AssertionError(f"DataLoader.__iter__: a shuffled epoch must visit every sample exactly once; got "
                             f"labels {labels.tolist()} (n={n}, batch_size={batch_size})")


@pytest.mark.task("DataLoader")
def test_shuffle_is_seeded_and_new_each_epoch():
    ds = TensorDataset(*data(200))

    def order(loader):
        return np.concatenate([b[1].data for b in epoch(loader)])

    a = call("DataLoader.__init__", DataLoader, ds, batch_size=32, shuffle=True, seed=5)
    b = call("DataLoader.__init__", DataLoader, ds, batch_size=32, shuffle=True, seed=5)
    a1, a2, b1, b2 = order(a), order(a), order(b), order(b)
    if not (np.array_equal(a1, b1) and np.array_equal(a2, b2)):
        raise AssertionError("DataLoader._order: two loaders with the same seed gave different orders; draw the "
                             "permutation from the loader's generator")
    if np.array_equal(a1, a2):
        raise AssertionError("DataLoader._order: two epochs came in the same order; draw a new permutation "
                             "every epoch")
    if np.array_equal(a1, np.arange(200)):
        raise AssertionError("DataLoader._order: shuffle=True did not shuffle")
    c = call("DataLoader.__init__", DataLoader, ds, batch_size=32, shuffle=True, seed=6)
    if np.array_equal(order(c), a1):
        raise AssertionError("DataLoader._order: seeds 5 and 6 gave the same order")
    tt.manual_seed(11)
    g1 = order(DataLoader(ds, batch_size=32, shuffle=True))
    tt.manual_seed(11)
    g2 = order(DataLoader(ds, batch_size=32, shuffle=True))
    if not np.array_equal(g1, g2):
        raise AssertionError("DataLoader._order: without a seed, shuffling must follow tinytorch.manual_seed "
                             "(use tinytorch.tensor.default_generator())")


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
    xb, yb = batches[-1]
    if not (isinstance(xb, Tensor) and isinstance(yb, Tensor)):
        raise AssertionError("default_collate: a batch of (array, int) samples must become (Tensor, Tensor)")
    if xb.shape != (2, 2) or xb.dtype != np.float32 or yb.dtype != np.int64:
        raise AssertionError(f"default_collate: last batch is {xb.shape} {xb.dtype}, {yb.shape} {yb.dtype}; "
                             "expected (2, 2) float32 and (2,) int64")
    assert_close(xb, np.float32([[8, 64], [9, 81]]), "default_collate (the samples stacked: last batch x)")
    assert_close(yb, np.int64([8, 9]), "default_collate (the labels stacked: last batch y)")


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
    return [[int(as_np(p[i][1])) for i in range(len(p))] for p in parts]


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
    if [len(p) for p in parts] != lengths:
        raise AssertionError(f"random_split: sizes {[len(p) for p in parts]}, expected {lengths} (n={n})")
    seen = sorted(i for idx in split_indices(parts) for i in idx)
    if seen != list(range(n)):
        raise AssertionError(f"random_split: the parts must be disjoint and cover the data; "
                             f"got {split_indices(parts)}")


@pytest.mark.task("random_split")
def test_random_split_fractions_seed_and_loading():
    ds = TensorDataset(*data(100))
    parts = call("random_split", random_split, ds, [0.8, 0.2], seed=3)
    if [len(p) for p in parts] != [80, 20]:
        raise AssertionError(f"random_split: [0.8, 0.2] of 100 gave sizes {[len(p) for p in parts]}")
    odd = call("random_split", random_split, TensorDataset(*data(5)), [0.5, 0.5], seed=0)
    if sorted(len(p) for p in odd) != [2, 3] or sum(len(p) for p in odd) != 5:
        raise AssertionError(f"random_split: [0.5, 0.5] of 5 gave sizes {[len(p) for p in odd]}, expected 3 and 2")
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
    for bad in ([50, 40], [0.5, 0.4]):
        try:
            random_split(ds, bad, seed=0)
        except NotImplementedError:
            raise
        except ValueError:
            continue
        raise AssertionError(f"random_split: lengths {bad} for 100 samples were accepted; raise ValueError")
