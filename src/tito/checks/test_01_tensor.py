"""Checks for module 01 (tensor): forward values of every Tensor op against NumPy.

Each check calls the learner's Tensor and compares with the same computation done directly in
NumPy (float64 where rounding could matter). Shapes vary with hypothesis, always including 0-d
tensors and broadcast pairs. Gradients are module 06's business and are not checked here.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinytorch.tensor import (Tensor, arange, full, manual_seed, ones, ones_like, rand, randn, tensor,
                              zeros, zeros_like)
from tito.checks.harness import MATMUL_SHAPES, assert_close

SETTINGS = settings(deadline=None, derandomize=True, max_examples=25, database=None)

# shapes of 0 to 3 dims; pairs that broadcast against each other (0-d and size-1 axes included)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
PAIRS = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4).map(
    lambda b: b.input_shapes)


def rnd(*shape, seed=0, low=-2.0, high=2.0) -> np.ndarray:
    """Reproducible float32 test data."""
    return np.random.default_rng(seed).uniform(low, high, size=shape).astype(np.float32)


def by_task(name: str):
    """A parameter `name` marked with its task (`tito module test 01 --task Tensor.__add__`)."""
    return pytest.param(name, marks=pytest.mark.task(f"Tensor.{name}"), id=name)


def check_tensor(t, expected, name, inputs=(), dtype=np.float32, atol=1e-5, rtol=1e-4):
    """`t` is a Tensor holding an ndarray of `dtype` whose values match `expected`."""
    if not isinstance(t, Tensor):
        raise AssertionError(f"{name}: returned {type(t).__name__}, expected a Tensor")
    if not isinstance(t.data, np.ndarray):
        raise AssertionError(f"{name}: .data is {type(t.data).__name__}, expected np.ndarray")
    if dtype is not None and t.data.dtype != dtype:
        raise AssertionError(f"{name}: dtype {t.data.dtype}, expected {np.dtype(dtype)} "
                             "(float32 in, float32 out: watch for float64 constants)")
    assert_close(t, expected, name, inputs, atol=atol, rtol=rtol)


# ---------------------------------------------------------------------------------------------
# Creation, dtype, shape
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("Tensor.__init__")
def test_Tensor_init_from_lists_and_scalars():
    t = Tensor([[1, 2], [3, 4]])
    check_tensor(t, np.array([[1, 2], [3, 4]]), "Tensor.__init__ (from a list of ints)")
    check_tensor(Tensor([0.5, -1.5]), np.array([0.5, -1.5]), "Tensor.__init__ (from a list of floats)")
    s = Tensor(3)
    check_tensor(s, np.array(3.0), "Tensor.__init__ (from the int 3)")
    check_tensor(Tensor(2.5), np.array(2.5), "Tensor.__init__ (from the float 2.5)")
    check_tensor(tensor([1.0, 2.0]), np.array([1.0, 2.0]), "tensor()")
    assert t.shape == (2, 2) and s.shape == () and s.ndim == 0, "Tensor.__init__: wrong shape"


@pytest.mark.task("Tensor.__init__")
def test_Tensor_init_from_arrays():
    a64 = np.linspace(-1, 1, 6).reshape(2, 3)  # float64
    check_tensor(Tensor(a64), a64, "Tensor.__init__ (float64 array -> float32)", [a64])
    a32 = rnd(3, 2)
    t = Tensor(a32)
    check_tensor(t, a32, "Tensor.__init__ (float32 array)", [a32])
    check_tensor(Tensor(t), a32, "Tensor.__init__ (from another Tensor)", [a32])
    check_tensor(Tensor(np.float64(1.5)), np.array(1.5), "Tensor.__init__ (NumPy float64 scalar)")
    check_tensor(Tensor(a32, dtype=np.float64), a32, "Tensor.__init__ (dtype=float64)", [a32],
                 dtype=np.float64)


@pytest.mark.task("Tensor.__init__")
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_Tensor_init_keeps_integer_dtype(dtype):
    a = np.array([[0, 1, 2], [3, 4, 5]]).astype(dtype)
    check_tensor(Tensor(a), a, f"Tensor.__init__ ({np.dtype(dtype)} labels/masks keep their dtype)", [a],
                 dtype=dtype)


@pytest.mark.task("Tensor.__init__")
def test_Tensor_properties():
    a = rnd(2, 3, 4)
    t = Tensor(a)
    check_tensor(t, a, "Tensor.__init__", [a])
    got = (t.shape, t.ndim, t.size, t.dtype, len(t))
    assert got == ((2, 3, 4), 3, 24, np.float32, 2), f"Tensor properties: got {got}"


@pytest.mark.task("Tensor.__init__")
def test_zeros_ones_full_arange():
    check_tensor(zeros(2, 3), np.zeros((2, 3)), "zeros(2, 3)")
    check_tensor(zeros((2, 3)), np.zeros((2, 3)), "zeros((2, 3))")
    check_tensor(ones(4), np.ones(4), "ones(4)")
    check_tensor(ones(()), np.ones(()), "ones(())")
    check_tensor(zeros(2, dtype=np.int64), np.zeros(2), "zeros(2, dtype=int64)", dtype=np.int64)
    like = Tensor(rnd(3, 1))
    check_tensor(zeros_like(like), np.zeros((3, 1)), "zeros_like")
    check_tensor(ones_like(like), np.ones((3, 1)), "ones_like")
    check_tensor(full((2, 2), 7.0), np.full((2, 2), 7.0), "full")
    check_tensor(arange(5), np.arange(5), "arange")


@pytest.mark.task("Tensor.__init__")
def test_randn_manual_seed():
    manual_seed(123)
    a = randn(3, 4)
    u = rand(5)
    manual_seed(123)
    b = randn(3, 4)
    check_tensor(a, b.data, "randn (same seed must give the same numbers)", dtype=np.float32)
    check_tensor(rand(5), u.data, "rand (same seed must give the same numbers)")
    manual_seed(124)
    assert not np.array_equal(randn(3, 4).data, a.data), "randn: another seed gave the same numbers"
    big = randn(200, 50)
    assert big.dtype == np.float32 and big.shape == (200, 50), f"randn: {big.dtype} {big.shape}"
    m, s = float(big.data.mean()), float(big.data.std())
    assert abs(m) < 0.05 and abs(s - 1) < 0.05, f"randn: mean {m:.3f} std {s:.3f}, expected 0 and 1"
    g = np.random.default_rng(5)
    check_tensor(randn(2, 2, generator=g), np.random.default_rng(5).standard_normal((2, 2), np.float32),
                 "randn(generator=...)")
    manual_seed(0)


# ---------------------------------------------------------------------------------------------
# Elementwise arithmetic with broadcasting
# ---------------------------------------------------------------------------------------------
BINARY = {
    "__add__": (lambda a, b: a + b, dict()),
    "__sub__": (lambda a, b: a - b, dict()),
    "__mul__": (lambda a, b: a * b, dict()),
    "__truediv__": (lambda a, b: a / b, dict(low_b=0.5)),  # denominators away from 0
    "__pow__": (lambda a, b: a ** b, dict(low_a=0.1)),  # positive bases: no NaN
}


def binary_inputs(name, sa, sb, seed):
    opts = BINARY[name][1]
    a = rnd(*sa, seed=seed, low=opts.get("low_a", -2.0))
    b = rnd(*sb, seed=seed + 1, low=opts.get("low_b", -2.0))
    if "low_b" in opts:  # both signs, but |b| >= 0.5
        b = np.where(np.random.default_rng(seed).random(sb) < 0.5, -b, b).astype(np.float32)
    return a, b


@pytest.mark.parametrize("name", [by_task(n) for n in BINARY])
@SETTINGS
@given(shapes=PAIRS, seed=st.integers(0, 2**16))
@example(shapes=((), ()), seed=0)
@example(shapes=((), (2, 3)), seed=1)
@example(shapes=((4, 3), (3,)), seed=2)
@example(shapes=((4, 1), (1, 5)), seed=3)
@example(shapes=((2, 1, 3), (4, 1)), seed=4)
def test_Tensor_binary_ops_broadcast(name, shapes, seed):
    """Tensor.__add__/__sub__/__mul__/__truediv__/__pow__ broadcast exactly like NumPy."""
    fn = BINARY[name][0]
    a, b = binary_inputs(name, *shapes, seed)
    expected = fn(a.astype(np.float64), b.astype(np.float64))
    check_tensor(fn(Tensor(a), Tensor(b)), expected, f"Tensor.{name}", [a, b])


@pytest.mark.parametrize("name", [by_task(n) for n in BINARY])
def test_Tensor_binary_ops_with_scalars(name):
    """Python scalars and arrays on either side; float32 stays float32 (Python floats don't upcast)."""
    fn = BINARY[name][0]
    a = rnd(2, 3, low=0.5)
    for other in (2, 1.5, np.float32(3.0)):
        check_tensor(fn(Tensor(a), other), fn(a.astype(np.float64), float(other)),
                     f"Tensor.{name} (Tensor op {other!r})", [a])
        check_tensor(fn(other, Tensor(a)), fn(float(other), a.astype(np.float64)),
                     f"Tensor.{name.replace('__', '__r', 1)} ({other!r} op Tensor)", [a])
    b = rnd(3, low=0.5, seed=9)
    got = fn(b, Tensor(a))  # ndarray op Tensor -> the Tensor's reflected method
    check_tensor(got, fn(b.astype(np.float64), a.astype(np.float64)),
                 f"Tensor.{name.replace('__', '__r', 1)} (ndarray op Tensor)", [b, a])


@pytest.mark.task("Tensor.__neg__")
def test_Tensor_neg():
    for a in (rnd(2, 3), np.array(1.5, np.float32)):
        check_tensor(-Tensor(a), -a, "Tensor.__neg__", [a])


@pytest.mark.task("Tensor.__add__", "Tensor.__mul__")
def test_Tensor_int_tensor_arithmetic():
    """Integer labels: labels + 1 stays integer; mixing with floats does not truncate the float."""
    y = np.array([0, 1, 2])
    check_tensor(Tensor(y) + 1, y + 1, "Tensor.__add__ (int64 labels + 1)", [y], dtype=np.int64)
    got = Tensor(y) * 0.5
    check_tensor(got, y * 0.5, "Tensor.__mul__ (int64 labels * 0.5)", [y], dtype=None)


# ---------------------------------------------------------------------------------------------
# Matrix multiply
# ---------------------------------------------------------------------------------------------


@pytest.mark.task("Tensor.matmul")
@pytest.mark.parametrize("case", list(MATMUL_SHAPES))
def test_Tensor_matmul(case):
    sa, sb = MATMUL_SHAPES[case]
    a, b = rnd(*sa, seed=1), rnd(*sb, seed=2)
    expected = np.matmul(a.astype(np.float64), b.astype(np.float64))
    check_tensor(Tensor(a) @ Tensor(b), expected, f"Tensor.matmul ({case}: {sa} @ {sb})", [a, b])
    check_tensor(Tensor(a).matmul(Tensor(b)), expected, f"Tensor.matmul ({case}, method form)", [a, b])
    check_tensor(a @ Tensor(b), expected, f"Tensor.__rmatmul__ ({case}: ndarray @ Tensor)", [a, b])


# ---------------------------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------------------------
@st.composite
def shape_and_axis(draw):
    """A shape (0-d included) and an axis: None, an int (negative too), or a tuple of axes."""
    shape = draw(SHAPES)
    n = len(shape)
    options = [st.none()]
    if n:
        options.append(st.integers(-n, n - 1))
        options.append(st.lists(st.integers(-n, n - 1), min_size=1, max_size=n,
                                unique_by=lambda i: i % n).map(tuple))
    return shape, draw(st.one_of(options))


REDUCTIONS = ["sum", "mean", "max", "min"]


@pytest.mark.parametrize("name", [by_task(n) for n in REDUCTIONS])
@SETTINGS
@given(case=shape_and_axis(), keepdims=st.booleans(), seed=st.integers(0, 2**16))
@example(case=((), None), keepdims=False, seed=0)
@example(case=((2, 3, 4), (0, -1)), keepdims=True, seed=1)
@example(case=((3, 1), -1), keepdims=False, seed=2)
def test_Tensor_reductions(name, case, keepdims, seed):
    """Tensor.sum/mean/max/min over axis=None, an int, a tuple or negative axes, with keepdims."""
    shape, axis = case
    a = rnd(*shape, seed=seed)
    expected = getattr(np, name)(a.astype(np.float64), axis=axis, keepdims=keepdims)
    got = getattr(Tensor(a), name)(axis=axis, keepdims=keepdims)
    check_tensor(got, expected, f"Tensor.{name} (axis={axis}, keepdims={keepdims})", [a])


@pytest.mark.parametrize("name", [by_task(n) for n in REDUCTIONS])
def test_Tensor_reductions_torch_spelling(name):
    """dim= and keepdim= are accepted too (PyTorch's names)."""
    a = rnd(3, 4, 2)
    expected = getattr(np, name)(a.astype(np.float64), axis=1, keepdims=True)
    check_tensor(getattr(Tensor(a), name)(dim=1, keepdim=True), expected,
                 f"Tensor.{name} (dim=1, keepdim=True)", [a])
    check_tensor(getattr(Tensor(a), name)(), getattr(np, name)(a.astype(np.float64)),
                 f"Tensor.{name} (all elements)", [a])


@pytest.mark.task("Tensor.mean", "Tensor.sum")
def test_Tensor_mean_of_mask():
    """The mean of a bool mask is a fraction (accuracy = (pred == y).mean()), not a bool."""
    m = np.array([True, False, True, True])
    check_tensor(Tensor(m).mean(), np.array(0.75), "Tensor.mean (bool mask)", [m], dtype=None)
    check_tensor(Tensor(m).sum(), np.array(3), "Tensor.sum (bool mask)", [m], dtype=None)


# ---------------------------------------------------------------------------------------------
# Shape ops
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("Tensor.reshape")
def test_Tensor_reshape_view():
    a = rnd(2, 3, 4)
    check_tensor(Tensor(a).reshape(6, 4), a.reshape(6, 4), "Tensor.reshape(6, 4)", [a])
    check_tensor(Tensor(a).reshape((4, -1)), a.reshape(4, -1), "Tensor.reshape((4, -1))", [a])
    check_tensor(Tensor(a).view(24), a.reshape(24), "Tensor.view(24)", [a])
    s = np.array([2.5], np.float32)
    check_tensor(Tensor(s).reshape(()), s.reshape(()), "Tensor.reshape(()) (to 0-d)", [s])
    check_tensor(Tensor(s.reshape(())).reshape(1, 1), s.reshape(1, 1), "Tensor.reshape (from 0-d)", [s])


@pytest.mark.task("Tensor.permute")
@pytest.mark.parametrize("axes", [(0, 1, 2), (2, 0, 1), (1, 2, 0), (0, -1, 1), (-1, -2, -3)])
def test_Tensor_permute(axes):
    a = rnd(2, 3, 4)
    check_tensor(Tensor(a).permute(*axes), np.transpose(a, axes), f"Tensor.permute{axes}", [a])
    check_tensor(Tensor(a).permute(axes), np.transpose(a, axes), f"Tensor.permute({axes})", [a])


@pytest.mark.task("Tensor.permute")
def test_Tensor_transpose_T():
    a = rnd(2, 3, 4)
    check_tensor(Tensor(a).transpose(), np.swapaxes(a, -1, -2), "Tensor.transpose()", [a])
    check_tensor(Tensor(a).transpose(0, 2), np.swapaxes(a, 0, 2), "Tensor.transpose(0, 2)", [a])
    check_tensor(Tensor(a).T, a.T, "Tensor.T (3-D: all axes reversed)", [a])
    m = rnd(3, 5)
    check_tensor(Tensor(m).T, m.T, "Tensor.T", [m])
    z = np.array(1.0, np.float32)
    check_tensor(Tensor(z).T, z, "Tensor.T (0-d)", [z])


@pytest.mark.task("Tensor.reshape")
def test_Tensor_flatten_squeeze_unsqueeze():
    a = rnd(2, 1, 3, 1)
    check_tensor(Tensor(a).flatten(), a.reshape(-1), "Tensor.flatten()", [a])
    check_tensor(Tensor(a).flatten(1), a.reshape(2, -1), "Tensor.flatten(1)", [a])
    check_tensor(Tensor(a).flatten(1, 2), a.reshape(2, 3, 1), "Tensor.flatten(1, 2)", [a])
    check_tensor(Tensor(a).squeeze(), a.reshape(2, 3), "Tensor.squeeze()", [a])
    check_tensor(Tensor(a).squeeze(1), a.reshape(2, 3, 1), "Tensor.squeeze(1)", [a])
    check_tensor(Tensor(a).squeeze(-1), a.reshape(2, 1, 3), "Tensor.squeeze(-1)", [a])
    check_tensor(Tensor(a).squeeze((1, 3)), a.reshape(2, 3), "Tensor.squeeze((1, 3))", [a])
    check_tensor(Tensor(a).squeeze(0), a, "Tensor.squeeze(0) (size 2: unchanged)", [a])
    check_tensor(Tensor(a).unsqueeze(0), a[None], "Tensor.unsqueeze(0)", [a])
    check_tensor(Tensor(a).unsqueeze(-1), a[..., None], "Tensor.unsqueeze(-1)", [a])
    check_tensor(Tensor(a).unsqueeze(2), np.expand_dims(a, 2), "Tensor.unsqueeze(2)", [a])
    z = np.array(3.0, np.float32)
    check_tensor(Tensor(z).flatten(), z.reshape(1), "Tensor.flatten (0-d)", [z])
    check_tensor(Tensor(z).unsqueeze(0), z.reshape(1), "Tensor.unsqueeze (0-d)", [z])
    check_tensor(Tensor(z).squeeze(), z, "Tensor.squeeze (0-d)", [z])


# ---------------------------------------------------------------------------------------------
# Indexing and slicing
# ---------------------------------------------------------------------------------------------
_A = np.arange(24, dtype=np.float32).reshape(4, 6) / 4 - 2
INDEXES = {
    "int": 1,
    "negative_int": -1,
    "slice": slice(1, 3),
    "step_slice": (slice(None, None, 2), slice(None, None, -1)),
    "column": (slice(None), 2),
    "element": (2, 3),
    "ellipsis": (Ellipsis, -1),
    "newaxis": (None, slice(1, 3)),
    "fancy_list": [0, 2, 3],
    "fancy_repeated": [1, 1, 0, 1],
    "fancy_array_2d": np.array([[0, 3], [3, 0]]),
    "fancy_pairs": (np.array([0, 1, 1]), np.array([5, 2, 2])),
    "mixed": (slice(1, 4), np.array([0, 0, 5])),
    "bool_mask": _A > 0.5,
    "bool_rows": np.array([True, False, True, True]),
}


@pytest.mark.task("Tensor.__getitem__")
@pytest.mark.parametrize("case", list(INDEXES))
def test_Tensor_getitem(case):
    idx = INDEXES[case]
    expected = np.asarray(_A[idx])
    check_tensor(Tensor(_A)[idx], expected, f"Tensor.__getitem__ ({case}: x[{idx!r}])", [_A])


@pytest.mark.task("Tensor.__getitem__")
def test_Tensor_getitem_tensor_index():
    """An integer or bool Tensor works as an index too."""
    rows = np.array([3, 0, 0])
    check_tensor(Tensor(_A)[Tensor(rows)], _A[rows], "Tensor.__getitem__ (x[Tensor of ints])", [_A])
    mask = _A < 0
    check_tensor(Tensor(_A)[Tensor(mask)], _A[mask], "Tensor.__getitem__ (x[bool Tensor])", [_A])
    check_tensor(Tensor(_A)[Tensor(rows), 1], _A[rows, 1], "Tensor.__getitem__ (x[Tensor, 1])", [_A])


# ---------------------------------------------------------------------------------------------
# Elementwise math and comparisons
# ---------------------------------------------------------------------------------------------
UNARY = {
    "exp": (np.exp, -3.0, 3.0),
    "log": (np.log, 0.05, 5.0),
    "sqrt": (np.sqrt, 0.0, 4.0),
    "abs": (np.abs, -3.0, 3.0),
}


@pytest.mark.parametrize("name", [by_task(n) for n in UNARY])
@pytest.mark.parametrize("shape", [(), (5,), (2, 3, 2)], ids=["0d", "1d", "3d"])
def test_Tensor_elementwise_math(name, shape):
    fn, low, high = UNARY[name]
    a = rnd(*shape, low=low, high=high, seed=len(shape))
    check_tensor(getattr(Tensor(a), name)(), fn(a.astype(np.float64)), f"Tensor.{name}", [a])


@pytest.mark.task("Tensor.log", "Tensor.exp")
def test_Tensor_log_exp_edge_values():
    a = np.array([0.0, 1.0, np.e], np.float32)
    with np.errstate(divide="ignore"):
        check_tensor(Tensor(a).log(), np.array([-np.inf, 0.0, 1.0]), "Tensor.log (log 0 = -inf)", [a])
    b = np.array([-100.0, 0.0, 10.0], np.float32)
    check_tensor(Tensor(b).exp(), np.exp(b.astype(np.float64)), "Tensor.exp", [b])


@pytest.mark.task("Tensor.clip")
@pytest.mark.parametrize("bounds", [(-0.5, 0.5), (0.0, None), (None, 1.0), (-1.0, -1.0)])
def test_Tensor_clip(bounds):
    lo, hi = bounds
    a = rnd(3, 4, seed=3)
    expected = np.clip(a, -np.inf if lo is None else lo, np.inf if hi is None else hi)
    check_tensor(Tensor(a).clip(lo, hi), expected, f"Tensor.clip(min={lo}, max={hi})", [a])
    check_tensor(Tensor(a).clamp(min=lo, max=hi), expected, f"Tensor.clamp(min={lo}, max={hi})", [a])


COMPARISONS = {"__eq__": np.equal, "__ne__": np.not_equal, "__lt__": np.less,
               "__le__": np.less_equal, "__gt__": np.greater, "__ge__": np.greater_equal}


@pytest.mark.task("Tensor.__init__")
@pytest.mark.parametrize("name", list(COMPARISONS))
def test_Tensor_comparisons(name):
    a = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], np.float32)
    b = np.array([2.0, 2.0, 2.0], np.float32)
    fn = COMPARISONS[name]
    check_tensor(getattr(Tensor(a), name)(Tensor(b)), fn(a, b), f"Tensor.{name} (Tensor)", [a, b],
                 dtype=np.bool_)
    check_tensor(getattr(Tensor(a), name)(2.0), fn(a, 2.0), f"Tensor.{name} (scalar)", [a], dtype=np.bool_)


# ---------------------------------------------------------------------------------------------
# Conversion and printing
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("Tensor.__init__", "Tensor.sum")
def test_Tensor_numpy_item():
    a = rnd(2, 3)
    t = Tensor(a)
    arr = t.numpy()
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float32, "Tensor.numpy: not a float32 ndarray"
    assert_close(arr, a, "Tensor.numpy", [a])
    total = t.sum()
    assert isinstance(total.numpy(), np.ndarray), \
        f"Tensor.sum: a 0-d result must hold an ndarray, got {type(total.numpy()).__name__}"
    value = total.item()
    assert isinstance(value, float), f"Tensor.item: returned {type(value).__name__}, expected float"
    assert abs(value - float(a.astype(np.float64).sum())) < 1e-4, f"Tensor.item: {value}, inputs {a}"
    assert float(Tensor(2.5)) == 2.5 and bool(Tensor(1.0)) and not bool(Tensor([0.0])), \
        "Tensor.__float__/__bool__: wrong value"
    with pytest.raises(ValueError):
        bool(Tensor([1.0, 2.0]))  # ambiguous, as in NumPy and torch


@pytest.mark.task("Tensor.__init__")
def test_Tensor_repr():
    t = Tensor([[1.0, 2.5], [3.0, 4.0]])
    text = repr(t)
    assert text.startswith("Tensor(") and "2.5" in text and "4." in text, f"Tensor.__repr__: {text!r}"
    assert "dtype=int64" in repr(Tensor(np.array([1, 2]))), "Tensor.__repr__: shows no non-default dtype"
    assert "requires_grad=True" in repr(Tensor([1.0], requires_grad=True)), \
        "Tensor.__repr__: does not say requires_grad=True"
    big = repr(Tensor(np.zeros((100, 100))))
    assert len(big) < 1000, f"Tensor.__repr__: {len(big)} characters for a 100x100 tensor"
