"""Checks for module 01 (tensor): forward values of every Tensor op against NumPy.

Each check calls the learner's Tensor and compares with the same computation done directly in
NumPy (float64 where rounding could matter). Shapes vary with hypothesis, always including 0-d
tensors, broadcast pairs and 4-D tensors. Gradients are module 06's business and are not checked
here, but what module 06 relies on is: float64 stays float64 (its gradcheck runs in float64), and
no op writes into its inputs.

Every expectation is computed from a copy taken BEFORE the call: `Tensor(ndarray)` shares memory
with the array, so an op that works in place (x.data += y) would otherwise change the expectation
along with the answer, and the comparison could not fail.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinytorch.tensor import (Tensor, arange, default_generator, full, is_grad_enabled, manual_seed, no_grad,
                              ones, ones_like, rand, randn, tensor, zeros, zeros_like)
from tito.checks.harness import MATMUL_SHAPES, assert_close, expect_error, hypothesis_settings

SETTINGS = hypothesis_settings(max_examples=25)  # one minimal failure, reproducible

# shapes of 0 to 4 dims; pairs that broadcast against each other (0-d and size-1 axes included)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=4)
PAIRS = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4).map(
    lambda b: b.input_shapes)


def rnd(*shape, seed=0, low=-2.0, high=2.0) -> np.ndarray:
    """Reproducible float32 test data."""
    return np.random.default_rng(seed).uniform(low, high, size=shape).astype(np.float32)


def by_task(name: str):
    """A parameter `name` marked with its task (`tito module test 01 --task Tensor.__add__`)."""
    return pytest.param(name, marks=pytest.mark.task(f"Tensor.{name}"), id=name)


def run_op(name: str, fn, *arrays, dtype=None):
    """fn(*Tensors built on `arrays`), failing (naming `name`) if the op wrote into an input."""
    before = [np.array(a, copy=True) for a in arrays]
    out = fn(*(Tensor(a, dtype=dtype) for a in arrays))
    for i, (a, b) in enumerate(zip(arrays, before)):
        if not np.array_equal(a, b, equal_nan=True):
            raise AssertionError(f"{name}: changed its input {i} (shape {np.shape(a)}) in place; compute a "
                                 "new array (x + y, np.exp(x)) instead of writing into x.data")
    return out


def check_tensor(t, expected, name, inputs=(), dtype=np.float32, atol=1e-5, rtol=1e-4):
    """`t` is a Tensor holding an ndarray of `dtype` whose values match `expected`."""
    if not isinstance(t, Tensor):
        raise AssertionError(f"{name}: returned {type(t).__name__}, expected a Tensor")
    if not isinstance(t.data, np.ndarray):
        raise AssertionError(f"{name}: .data is {type(t.data).__name__}, expected np.ndarray")
    if dtype is not None and t.data.dtype != dtype:
        why = {"f8": "float64 in, float64 out: do not cast to float32 (module 06 checks gradients in float64)",
               "f4": "float32 in, float32 out: watch for float64 constants"}.get(
            np.dtype(dtype).str[1:], "integer labels and bool masks keep their dtype")
        raise AssertionError(f"{name}: dtype {t.data.dtype}, expected {np.dtype(dtype)} ({why})")
    assert_close(t, expected, name, inputs, atol=atol, rtol=rtol)


F64 = dict(dtype=np.float64, atol=1e-12, rtol=1e-12)  # float64 in: float64 out, to float64 precision


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
    check_tensor(Tensor(np.ones(3, np.float16)), np.ones(3), "Tensor.__init__ (float16 array -> float32)")
    check_tensor(Tensor(a32, dtype=np.float64), a32, "Tensor.__init__ (dtype=float64)", [a32],
                 dtype=np.float64)


@pytest.mark.task("Tensor.__init__")
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_Tensor_init_keeps_integer_dtype(dtype):
    a = np.array([[0, 1, 2], [3, 4, 5]]).astype(dtype)
    check_tensor(Tensor(a), a, f"Tensor.__init__ ({np.dtype(dtype)} labels/masks keep their dtype)", [a],
                 dtype=dtype)
    s = a.reshape(-1)[1]  # a NumPy scalar, e.g. np.int64(1) from indexing a label array
    check_tensor(Tensor(s), np.asarray(s), f"Tensor.__init__ (a NumPy {np.dtype(dtype)} scalar keeps its dtype)",
                 dtype=dtype)


@pytest.mark.task("Tensor.__init__")
def test_Tensor_init_dtype_and_requires_grad_arguments():
    """An explicit dtype wins over the input's own (integer arrays included); requires_grad is kept."""
    y = np.array([3, 0, 2])
    check_tensor(Tensor(y, dtype=np.float32), y, "Tensor.__init__ (int64 array, dtype=float32)", [y])
    check_tensor(Tensor(y, dtype=np.float64), y, "Tensor.__init__ (int64 array, dtype=float64)", [y],
                 dtype=np.float64)
    check_tensor(Tensor(Tensor(y), dtype=np.float32), y, "Tensor.__init__ (int64 Tensor, dtype=float32)", [y])
    check_tensor(Tensor([1.7, -2.2], dtype=np.int64), np.array([1, -2]),
                 "Tensor.__init__ (list of floats, dtype=int64)", dtype=np.int64)
    check_tensor(tensor(y, dtype=np.float64), y, "tensor (dtype=float64)", [y], dtype=np.float64)
    for make, label in ((Tensor, "Tensor.__init__"), (tensor, "tensor")):
        t = make([1.0, 2.0], requires_grad=True)
        if t.requires_grad is not True:
            raise AssertionError(f"{label}: requires_grad=True gave .requires_grad == {t.requires_grad!r}")
        if make([1.0, 2.0]).requires_grad is not False:
            raise AssertionError(f"{label}: a tensor requires no gradient unless asked (requires_grad=False)")
    expect_error("Tensor.__init__ (integer tensor with requires_grad=True)", TypeError,
                 Tensor, np.array([1, 2]), requires_grad=True)


@pytest.mark.task("Tensor.__init__")
def test_Tensor_properties():
    a = rnd(2, 3, 4)
    t = Tensor(a)
    check_tensor(t, a, "Tensor.__init__", [a])
    got = (t.shape, t.ndim, t.size, t.dtype, len(t))
    assert got == ((2, 3, 4), 3, 24, np.float32, 2), f"Tensor.shape (ndim, size, dtype, len): got {got}"


@pytest.mark.task("Tensor.__init__")
def test_zeros_ones_full_arange():
    check_tensor(zeros(2, 3), np.zeros((2, 3)), "zeros (2, 3)")
    check_tensor(zeros((2, 3)), np.zeros((2, 3)), "zeros ((2, 3) as a tuple)")
    check_tensor(ones(4), np.ones(4), "ones (4)")
    check_tensor(ones(()), np.ones(()), "ones (shape ())")
    check_tensor(zeros(2, dtype=np.int64), np.zeros(2), "zeros (dtype=int64)", dtype=np.int64)
    check_tensor(ones(2, 2, dtype=np.float64), np.ones((2, 2)), "ones (dtype=float64)", dtype=np.float64)
    like = Tensor(rnd(3, 1))
    check_tensor(zeros_like(like), np.zeros((3, 1)), "zeros_like")
    check_tensor(ones_like(like), np.ones((3, 1)), "ones_like")
    labels = Tensor(np.array([1, 2, 3]))
    check_tensor(zeros_like(labels), np.zeros(3), "zeros_like (keeps int64)", dtype=np.int64)
    check_tensor(ones_like(Tensor(rnd(2), dtype=np.float64)), np.ones(2), "ones_like (keeps float64)",
                 dtype=np.float64)
    check_tensor(full((2, 2), 7.0), np.full((2, 2), 7.0), "full")
    check_tensor(full((3,), 4, dtype=np.int64), np.full(3, 4), "full (dtype=int64)", dtype=np.int64)
    check_tensor(arange(5), np.arange(5), "arange")
    check_tensor(arange(1, 7, 2), np.arange(1, 7, 2), "arange (start, stop, step)")
    check_tensor(arange(3, dtype=np.int64), np.arange(3), "arange (dtype=int64)", dtype=np.int64)
    for make, label in ((zeros, "zeros"), (ones, "ones")):
        if not make(2, requires_grad=True).requires_grad:
            raise AssertionError(f"{label}: requires_grad=True was ignored")


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
                 "randn (generator=...)")
    check_tensor(rand((2, 3), generator=np.random.default_rng(6)),
                 np.random.default_rng(6).random((2, 3), np.float32), "rand (generator=..., shape tuple)")
    if not (randn(2, requires_grad=True).requires_grad and rand(2, requires_grad=True).requires_grad):
        raise AssertionError("randn: requires_grad=True was ignored (randn/rand)")
    manual_seed(9)
    if default_generator().random() != np.random.default_rng(9).random():
        raise AssertionError("default_generator: after manual_seed(9) it must be np.random.default_rng(9)")
    manual_seed(0)


@pytest.mark.task("Tensor.__init__")
def test_Tensor_init_given_helpers():
    """detach, requires_grad_, astype, is_leaf, _make, argmax, no_grad: the given helpers around the data
    (no op of yours is used here: this check runs right after Tensor.__init__ is written)."""
    a = rnd(2, 3)
    x = Tensor(a, requires_grad=True)
    d = x.detach()
    if d.requires_grad or not np.shares_memory(d.data, x.data):
        raise AssertionError("Tensor.detach: must share the data and require no gradient")
    if x.requires_grad_(False) is not x or x.requires_grad:
        raise AssertionError("Tensor.requires_grad_: must set the flag and return the tensor itself")
    x.requires_grad_()
    check_tensor(x.astype(np.float64), a, "Tensor.astype (float64)", [a], dtype=np.float64)
    y = Tensor._make(x.data * 2, (x,), "mul")
    recorded = len(y._parents) == 1 and y._parents[0] is x and y._op == "mul" and y.requires_grad
    if not x.is_leaf or y.is_leaf or not recorded:
        raise AssertionError("Tensor._make: with a parent that requires grad the result must record "
                             "(op, parents) and require grad")
    with no_grad():
        with no_grad():
            pass
        inside = is_grad_enabled()
        z = Tensor._make(x.data * 2, (x,), "mul")
    if inside or not is_grad_enabled() or z.requires_grad or z._parents:
        raise AssertionError("no_grad: inside it (nested too) no graph is recorded; after it, recording is on again")

    @no_grad()
    def f(t):
        return Tensor._make(t.data * 3, (t,), "mul")

    if f(x).requires_grad or not is_grad_enabled():
        raise AssertionError("no_grad: used as a decorator it must switch recording off for the call only")
    ties = np.array([[1.0, 5.0, 5.0], [7.0, 7.0, 2.0]], np.float32)
    check_tensor(Tensor(ties).argmax(axis=1), np.array([1, 0]), "Tensor.argmax (axis=1, ties: the first)",
                 [ties], dtype=np.int64)
    check_tensor(Tensor(ties).argmax(dim=0), np.array([1, 1, 0]), "Tensor.argmax (dim=0)", [ties], dtype=np.int64)
    check_tensor(Tensor(ties).argmax(), np.array(3), "Tensor.argmax (all elements: flat index)", [ties], dtype=np.int64)
    if int(Tensor(np.array(7))) != 7 or Tensor(np.array(7)).item() != 7:
        raise AssertionError("Tensor.__int__: int() / item() of an integer tensor")
    u, v = Tensor([1.0]), Tensor([1.0])
    if len({u: 0, v: 1}) != 2:
        raise AssertionError("Tensor.__hash__: two tensors with equal values are different dict keys (identity)")


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
@example(shapes=((2, 3, 4), (2, 3, 4)), seed=5)
@example(shapes=((2, 1, 3, 1), (4, 1, 2)), seed=6)
def test_Tensor_binary_ops_broadcast(name, shapes, seed):
    """Tensor.__add__/__sub__/__mul__/__truediv__/__pow__ broadcast exactly like NumPy."""
    fn = BINARY[name][0]
    a, b = binary_inputs(name, *shapes, seed)
    expected = fn(a.astype(np.float64), b.astype(np.float64))
    check_tensor(run_op(f"Tensor.{name}", fn, a, b), expected, f"Tensor.{name}", [a, b])


@pytest.mark.parametrize("name", [by_task(n) for n in BINARY])
def test_Tensor_binary_ops_with_scalars(name):
    """Python scalars and arrays on either side; float32 stays float32 (Python floats don't upcast),
    float64 stays float64 (at float64 precision)."""
    fn = BINARY[name][0]
    a = rnd(2, 3, low=0.5)
    rname = f"Tensor.{name.replace('__', '__r', 1)}"
    for other in (2, 1.5, np.float32(3.0)):
        expected = fn(a.astype(np.float64), float(other))
        check_tensor(run_op(f"Tensor.{name}", lambda t: fn(t, other), a), expected,
                     f"Tensor.{name} (Tensor op {other!r})", [a])
        expected = fn(float(other), a.astype(np.float64))
        check_tensor(run_op(rname, lambda t: fn(other, t), a), expected, f"{rname} ({other!r} op Tensor)", [a])
    b = rnd(3, low=0.5, seed=9)
    expected = fn(b.astype(np.float64), a.astype(np.float64))
    got = run_op(rname, lambda tb, ta: fn(tb.data, ta), b, a)  # ndarray op Tensor -> the reflected method
    check_tensor(got, expected, f"{rname} (ndarray op Tensor)", [b, a])
    a64, b64 = a.astype(np.float64) + 1e-9, b.astype(np.float64)  # 1e-9: lost if cast to float32
    check_tensor(run_op(f"Tensor.{name}", fn, a64, b64, dtype=np.float64), fn(a64, b64),
                 f"Tensor.{name} (float64 tensors)", [a64, b64], **F64)
    check_tensor(run_op(f"Tensor.{name}", lambda t: fn(t, 1.5), a64, dtype=np.float64), fn(a64, 1.5),
                 f"Tensor.{name} (float64 tensor op 1.5)", [a64], **F64)


# NumPy's (and torch's) answers where a "safe" shortcut differs: x ** y is not exp(y log x), and
# dividing by zero gives inf / nan (no epsilon added to the denominator).
CONVENTIONS = {
    "__pow__": ([-2.0, -2.0, -0.5, 0.0, 0.0, 0.0, -8.0, 3.0, 4.0],
                [2.0, 3.0, -1.0, 0.0, 2.0, -1.0, 1 / 3, 0.0, 0.5]),
    "__truediv__": ([1.0, -1.0, 0.0, 3.0, -6.0], [0.0, 0.0, 0.0, -0.5, 4.0]),
}


@pytest.mark.parametrize("name", [by_task(n) for n in CONVENTIONS])
def test_Tensor_binary_ops_conventions(name):
    """(-2) ** 3 = -8, 0 ** 0 = 1, 0 ** -1 = inf, (-8) ** (1/3) = nan; 1 / 0 = inf, 0 / 0 = nan."""
    fn = BINARY[name][0]
    a, b = (np.array(v, np.float32) for v in CONVENTIONS[name])
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = fn(a.astype(np.float64), b.astype(np.float64))
        got = run_op(f"Tensor.{name}", fn, a, b)
    check_tensor(got, expected, f"Tensor.{name} (negative and zero operands, as in NumPy and torch)", [a, b])


@pytest.mark.task("Tensor.__neg__")
def test_Tensor_neg():
    for a in (rnd(2, 3), np.array(1.5, np.float32)):
        expected = -a
        check_tensor(run_op("Tensor.__neg__", lambda t: -t, a), expected, "Tensor.__neg__", [a])
    a64 = rnd(4).astype(np.float64) + 1e-9
    expected = -a64
    check_tensor(run_op("Tensor.__neg__", lambda t: -t, a64, dtype=np.float64), expected,
                 "Tensor.__neg__ (float64)", [a64], **F64)


@pytest.mark.task("Tensor.__add__", "Tensor.__mul__")
def test_Tensor_int_tensor_arithmetic():
    """Integer labels: labels + 1 stays integer; mixing with floats does not truncate the float."""
    y = np.array([0, 1, 2])
    check_tensor(run_op("Tensor.__add__", lambda t: t + 1, y), y + 1, "Tensor.__add__ (int64 labels + 1)",
                 [y], dtype=np.int64)
    got = run_op("Tensor.__mul__", lambda t: t * 0.5, y)
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
    check_tensor(run_op("Tensor.matmul", lambda x, y: x @ y, a, b), expected,
                 f"Tensor.matmul ({case}: {sa} @ {sb})", [a, b])
    check_tensor(run_op("Tensor.matmul", lambda x, y: x.matmul(y), a, b), expected,
                 f"Tensor.matmul ({case}, method form)", [a, b])
    check_tensor(run_op("Tensor.matmul", lambda x, y: x @ y.data, a, b), expected,
                 f"Tensor.matmul ({case}: Tensor @ ndarray)", [a, b])
    check_tensor(run_op("Tensor.__rmatmul__", lambda x, y: x.data @ y, a, b), expected,
                 f"Tensor.__rmatmul__ ({case}: ndarray @ Tensor)", [a, b])
    a64, b64 = a.astype(np.float64) + 1e-9, b.astype(np.float64)
    check_tensor(run_op("Tensor.matmul", lambda x, y: x @ y, a64, b64, dtype=np.float64), np.matmul(a64, b64),
                 f"Tensor.matmul ({case}, float64)", [a64, b64], **F64)


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
@example(case=((2, 3, 2, 4), (1, 3)), keepdims=False, seed=3)
def test_Tensor_reductions(name, case, keepdims, seed):
    """Tensor.sum/mean/max/min over axis=None, an int, a tuple or negative axes, with keepdims."""
    shape, axis = case
    a = rnd(*shape, seed=seed)
    expected = getattr(np, name)(a.astype(np.float64), axis=axis, keepdims=keepdims)
    got = run_op(f"Tensor.{name}", lambda t: getattr(t, name)(axis=axis, keepdims=keepdims), a)
    check_tensor(got, expected, f"Tensor.{name} (axis={axis}, keepdims={keepdims})", [a])


@pytest.mark.parametrize("name", [by_task(n) for n in REDUCTIONS])
def test_Tensor_reductions_torch_spelling(name):
    """dim= and keepdim= are accepted too (PyTorch's names), and axis/keepdims positionally."""
    a = rnd(3, 4, 2)
    ref = getattr(np, name)
    a64 = a.astype(np.float64)
    calls = {  # label -> (our call, NumPy's answer)
        "dim=1, keepdim=True": (lambda t: getattr(t, name)(dim=1, keepdim=True), ref(a64, axis=1, keepdims=True)),
        "dim=-1": (lambda t: getattr(t, name)(dim=-1), ref(a64, axis=-1)),
        "dim=(0, -1), keepdim=False": (lambda t: getattr(t, name)(dim=(0, -1), keepdim=False),
                                       ref(a64, axis=(0, -1))),
        "1 (positional axis)": (lambda t: getattr(t, name)(1), ref(a64, axis=1)),
        "-2, True (positional axis, keepdims)": (lambda t: getattr(t, name)(-2, True),
                                                 ref(a64, axis=-2, keepdims=True)),
        "all elements": (lambda t: getattr(t, name)(), ref(a64)),
    }
    for label, (fn, expected) in calls.items():
        check_tensor(run_op(f"Tensor.{name}", fn, a), expected, f"Tensor.{name} ({label})", [a])
    value = getattr(Tensor(a), name)().item()  # a 0-d result holds an ndarray: .item() gives a float
    if not isinstance(value, float) or abs(value - float(ref(a64))) > 1e-4:
        raise AssertionError(f"Tensor.{name}: .item() of the reduction over all elements gave {value!r}")
    b64 = a64 + 1e-9
    check_tensor(run_op(f"Tensor.{name}", lambda t: getattr(t, name)(axis=(0, 2)), b64, dtype=np.float64),
                 ref(b64, axis=(0, 2)), f"Tensor.{name} (float64)", [b64], **F64)


@pytest.mark.parametrize("name", [by_task(n) for n in REDUCTIONS])
def test_Tensor_reductions_ties_and_infinities(name):
    """Ties and +-inf as in NumPy and torch: the max of [-inf, -inf] is -inf, inf - inf is nan."""
    a = np.array([[1.0, 3.0, 3.0, -1.0], [-np.inf, -np.inf, -np.inf, -np.inf],
                  [4.0, np.inf, 0.0, 4.0], [np.inf, np.inf, np.inf, np.inf]], np.float32)
    for axis in (1, 0, None):
        with np.errstate(invalid="ignore"):
            expected = getattr(np, name)(a.astype(np.float64), axis=axis)
            got = run_op(f"Tensor.{name}", lambda t: getattr(t, name)(axis=axis), a)
        check_tensor(got, expected, f"Tensor.{name} (axis={axis}, with ties and +-inf)", [a])


@pytest.mark.task("Tensor.mean", "Tensor.sum")
def test_Tensor_mean_of_mask():
    """The mean of a bool mask is a fraction (accuracy = (pred == y).mean()), not a bool."""
    m = np.array([True, False, True, True])
    check_tensor(run_op("Tensor.mean", lambda t: t.mean(), m), np.array(0.75), "Tensor.mean (bool mask)", [m])
    check_tensor(run_op("Tensor.sum", lambda t: t.sum(), m), np.array(3), "Tensor.sum (bool mask)", [m],
                 dtype=None)
    y = np.array([[1, 2], [4, 4]])
    check_tensor(run_op("Tensor.mean", lambda t: t.mean(axis=0), y), np.array([2.5, 3.0]),
                 "Tensor.mean (int64 labels, axis=0)", [y])


# ---------------------------------------------------------------------------------------------
# Shape ops
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("Tensor.reshape")
def test_Tensor_reshape_view():
    a = rnd(2, 3, 4)
    cases = {"reshape(6, 4)": (lambda t: t.reshape(6, 4), (6, 4)),
             "reshape((4, -1))": (lambda t: t.reshape((4, -1)), (4, -1)),
             "reshape([2, 2, -1])": (lambda t: t.reshape([2, 2, -1]), (2, 2, -1)),
             "view(24)": (lambda t: t.view(24), (24,)),
             "view(-1, 2, 3)": (lambda t: t.view(-1, 2, 3), (-1, 2, 3))}
    for label, (fn, shape) in cases.items():
        check_tensor(run_op("Tensor.reshape", fn, a), a.reshape(shape), f"Tensor.{label}", [a])
    s = np.array([2.5], np.float32)
    check_tensor(Tensor(s).reshape(()), s.reshape(()), "Tensor.reshape(()) (to 0-d)", [s])
    check_tensor(Tensor(s.reshape(())).reshape(1, 1), s.reshape(1, 1), "Tensor.reshape (from 0-d)", [s])


@pytest.mark.task("Tensor.permute")
@pytest.mark.parametrize("axes", [(0, 1, 2), (2, 0, 1), (1, 2, 0), (0, -1, 1), (-1, -2, -3)])
def test_Tensor_permute(axes):
    a = rnd(2, 3, 4)
    check_tensor(run_op("Tensor.permute", lambda t: t.permute(*axes), a), np.transpose(a, axes),
                 f"Tensor.permute{axes}", [a])
    check_tensor(Tensor(a).permute(axes), np.transpose(a, axes), f"Tensor.permute({axes})", [a])
    check_tensor(Tensor(a).permute(list(axes)), np.transpose(a, axes), f"Tensor.permute({list(axes)})", [a])


@pytest.mark.task("Tensor.permute")
def test_Tensor_permute_4d():
    a = rnd(2, 3, 4, 5)
    for axes in ((0, 2, 3, 1), (3, 2, 1, 0), (0, 1, -1, -2)):
        check_tensor(run_op("Tensor.permute", lambda t: t.permute(*axes), a), np.transpose(a, axes),
                     f"Tensor.permute{axes} (4-D)", [a])


@pytest.mark.task("Tensor.permute")
def test_Tensor_transpose_T():
    a = rnd(2, 3, 4)
    check_tensor(Tensor(a).transpose(), np.swapaxes(a, -1, -2), "Tensor.transpose()", [a])
    check_tensor(Tensor(a).transpose(0, 2), np.swapaxes(a, 0, 2), "Tensor.transpose(0, 2)", [a])
    check_tensor(Tensor(a).transpose(-1, 0), np.swapaxes(a, -1, 0), "Tensor.transpose(-1, 0)", [a])
    check_tensor(Tensor(a).transpose(0), np.swapaxes(a, 0, -1), "Tensor.transpose(0) (with the last axis)", [a])
    check_tensor(Tensor(a).T, a.T, "Tensor.T (3-D: all axes reversed)", [a])
    m = rnd(3, 5)
    check_tensor(Tensor(m).T, m.T, "Tensor.T", [m])
    z = np.array(1.0, np.float32)
    check_tensor(Tensor(z).T, z, "Tensor.T (0-d)", [z])


@pytest.mark.task("Tensor.reshape")
def test_Tensor_flatten_squeeze_unsqueeze():
    a = rnd(2, 1, 3, 1)
    cases = {
        "flatten()": (lambda t: t.flatten(), (-1,)),
        "flatten(1)": (lambda t: t.flatten(1), (2, -1)),
        "flatten(1, 2)": (lambda t: t.flatten(1, 2), (2, 3, 1)),
        "flatten(-2)": (lambda t: t.flatten(-2), (2, 1, 3)),
        "flatten(start_dim=0, end_dim=-2)": (lambda t: t.flatten(start_dim=0, end_dim=-2), (6, 1)),
        "squeeze()": (lambda t: t.squeeze(), (2, 3)),
        "squeeze(1)": (lambda t: t.squeeze(1), (2, 3, 1)),
        "squeeze(-1)": (lambda t: t.squeeze(-1), (2, 1, 3)),
        "squeeze((1, 3))": (lambda t: t.squeeze((1, 3)), (2, 3)),
        "squeeze(dim=1)": (lambda t: t.squeeze(dim=1), (2, 3, 1)),
        "squeeze(dim=(-3, -1))": (lambda t: t.squeeze(dim=(-3, -1)), (2, 3)),
        "squeeze(0) (size 2: unchanged)": (lambda t: t.squeeze(0), (2, 1, 3, 1)),
        "unsqueeze(0)": (lambda t: t.unsqueeze(0), (1, 2, 1, 3, 1)),
        "unsqueeze(-1)": (lambda t: t.unsqueeze(-1), (2, 1, 3, 1, 1)),
        "unsqueeze(2)": (lambda t: t.unsqueeze(2), (2, 1, 1, 3, 1)),
        "unsqueeze(-2)": (lambda t: t.unsqueeze(-2), (2, 1, 3, 1, 1)),
    }
    for label, (fn, shape) in cases.items():
        check_tensor(run_op("Tensor.reshape", fn, a), a.reshape(shape), f"Tensor.{label}", [a])
    z = np.array(3.0, np.float32)
    check_tensor(Tensor(z).flatten(), z.reshape(1), "Tensor.flatten (0-d)", [z])
    check_tensor(Tensor(z).unsqueeze(0), z.reshape(1), "Tensor.unsqueeze (0-d)", [z])
    check_tensor(Tensor(z).squeeze(), z, "Tensor.squeeze (0-d)", [z])


# ---------------------------------------------------------------------------------------------
# Indexing and slicing
# ---------------------------------------------------------------------------------------------
def _grid() -> np.ndarray:
    """A fresh (4, 6) array for every check (never one shared array an op could write into)."""
    return np.arange(24, dtype=np.float32).reshape(4, 6) / 4 - 2


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
    "bool_mask": _grid() > 0.5,
    "bool_rows": np.array([True, False, True, True]),
}


@pytest.mark.task("Tensor.__getitem__")
@pytest.mark.parametrize("case", list(INDEXES))
def test_Tensor_getitem(case):
    idx, a = INDEXES[case], _grid()
    expected = np.array(a[idx])
    check_tensor(run_op("Tensor.__getitem__", lambda t: t[idx], a), expected,
                 f"Tensor.__getitem__ ({case}: x[{idx!r}])", [a])


@pytest.mark.task("Tensor.__getitem__")
def test_Tensor_getitem_tensor_index():
    """An integer or bool Tensor works as an index too."""
    a, rows = _grid(), np.array([3, 0, 0])
    check_tensor(Tensor(a)[Tensor(rows)], a[rows], "Tensor.__getitem__ (x[Tensor of ints])", [a])
    mask = a < 0
    check_tensor(Tensor(a)[Tensor(mask)], a[mask], "Tensor.__getitem__ (x[bool Tensor])", [a])
    check_tensor(Tensor(a)[Tensor(rows), 1], a[rows, 1], "Tensor.__getitem__ (x[Tensor, 1])", [a])


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
    expected = fn(a.astype(np.float64))
    check_tensor(run_op(f"Tensor.{name}", lambda t: getattr(t, name)(), a), expected, f"Tensor.{name}", [a])
    a64 = a.astype(np.float64) + 1e-9
    check_tensor(run_op(f"Tensor.{name}", lambda t: getattr(t, name)(), a64, dtype=np.float64), fn(a64),
                 f"Tensor.{name} (float64)", [a64], **F64)


@pytest.mark.parametrize("name", [by_task(n) for n in UNARY])
def test_Tensor_elementwise_math_edge_values(name):
    """At the edges, NumPy's (and torch's) answers: sqrt(-1) = nan, log(-1) = nan, exp(inf) = inf..."""
    a = np.array([-np.inf, -1.0, -0.0, 0.0, 1.0, 100.0, np.inf], np.float32)
    with np.errstate(all="ignore"):
        expected = UNARY[name][0](a.astype(np.float32)).astype(np.float64)  # float32 math: exp(100) = inf
        got = run_op(f"Tensor.{name}", lambda t: getattr(t, name)(), a)
    check_tensor(got, expected, f"Tensor.{name} (at +-inf, -1, +-0: no clamping, no epsilon)", [a])


@pytest.mark.task("Tensor.log", "Tensor.exp")
def test_Tensor_log_exp_edge_values():
    a = np.array([0.0, 1.0, np.e], np.float32)
    with np.errstate(divide="ignore"):
        check_tensor(Tensor(a).log(), np.array([-np.inf, 0.0, 1.0]), "Tensor.log (log 0 = -inf)", [a])
    b = np.array([-100.0, 0.0, 10.0], np.float32)
    check_tensor(Tensor(b).exp(), np.exp(b.astype(np.float64)), "Tensor.exp", [b])


@pytest.mark.task("Tensor.clip")
@pytest.mark.parametrize("bounds", [(-0.5, 0.5), (0.0, None), (None, 1.0), (-1.0, -1.0), (0.5, -0.5)])
def test_Tensor_clip(bounds):
    """Either bound may be None; with min > max every value becomes max (as in NumPy and torch)."""
    lo, hi = bounds
    a = rnd(3, 4, seed=3)
    expected = np.minimum(np.maximum(a, -np.inf if lo is None else lo), np.inf if hi is None else hi)
    check_tensor(run_op("Tensor.clip", lambda t: t.clip(lo, hi), a), expected, f"Tensor.clip(min={lo}, max={hi})",
                 [a])
    check_tensor(run_op("Tensor.clip", lambda t: t.clamp(min=lo, max=hi), a), expected,
                 f"Tensor.clamp(min={lo}, max={hi})", [a])
    a64 = a.astype(np.float64) + 1e-9
    expected = np.minimum(np.maximum(a64, -np.inf if lo is None else lo), np.inf if hi is None else hi)
    check_tensor(run_op("Tensor.clip", lambda t: t.clip(lo, hi), a64, dtype=np.float64), expected,
                 f"Tensor.clip(min={lo}, max={hi}) (float64)", [a64], **F64)


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
    check_tensor(getattr(Tensor(a), name)(b), fn(a, b), f"Tensor.{name} (ndarray)", [a, b], dtype=np.bool_)


# ---------------------------------------------------------------------------------------------
# Conversion and printing
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("Tensor.__init__")
def test_Tensor_numpy_item():
    a = rnd(2, 3)
    t = Tensor(a)
    arr = t.numpy()
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float32, "Tensor.numpy: not a float32 ndarray"
    assert_close(arr, a, "Tensor.numpy", [a])
    value = Tensor(np.float32(2.25)).item()
    assert isinstance(value, float) and value == 2.25, f"Tensor.item: returned {value!r}, expected the float 2.25"
    assert float(Tensor(2.5)) == 2.5, "Tensor.__float__: float(Tensor(2.5)) is not 2.5"
    assert bool(Tensor(1.0)) and not bool(Tensor([0.0])), "Tensor.__bool__: wrong truth value"
    expect_error("Tensor.__bool__ (of two elements: ambiguous, as in NumPy and torch)", ValueError,
                 bool, Tensor([1.0, 2.0]))


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
