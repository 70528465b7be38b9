"""Checks for module 02 (activations): forward values against NumPy formulas and PyTorch.

Extreme inputs (+-1000) must give finite, correct results: sigmoid, softmax and log_softmax are
only right if they never compute e^1000. GELU is the tanh approximation (as in GPT-2 and
torch.nn.functional.gelu(approximate="tanh")), which differs from the exact erf form by ~1e-4.
The conventions PyTorch follows are checked without PyTorch too (a -inf logit gets probability
0, LeakyReLU is x or slope * x for ANY slope), so the verdict is the same with or without it.

Gradients are module 06's business and are not checked here, but what module 06 relies on is:
GELU saves its tanh term for the backward pass (`out._saved`), float64 stays float64, and no
activation writes into its input (every expectation is computed from a copy taken first).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinytorch.activations import (GELU, ReLU, LeakyReLU, LogSoftmax, Sigmoid, Softmax, Tanh, gelu,
                                   leaky_relu, log_softmax, relu, sigmoid, softmax, tanh)
from tinytorch.tensor import Tensor
from tito.checks.harness import assert_close, blame, hypothesis_settings, torch_or_skip

SETTINGS = hypothesis_settings(max_examples=25)  # one minimal failure, reproducible
SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=4)
EXTREME = np.array([-1000.0, -100.0, -20.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 20.0, 100.0, 1000.0], np.float32)


def rnd(*shape, seed=0, scale=3.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def by_task(name: str):
    return pytest.param(name, marks=pytest.mark.task(name), id=name)


def apply(name: str, fn, x: np.ndarray, dtype=None):
    """fn(Tensor(x)), failing (naming `name`) if it wrote into x: Tensor(x) shares x's memory."""
    before = x.copy()
    out = fn(Tensor(x, dtype=dtype))
    if not np.array_equal(x, before, equal_nan=True):
        raise AssertionError(f"{name}: changed its input in place (x.data was modified); compute a new "
                             "array (np.maximum(x, 0), x - m) instead of writing into x.data")
    return out


def check_tensor(t, expected, name, inputs=(), atol=1e-6, rtol=1e-5, dtype=np.float32):
    """A Tensor of `dtype`, finite where `expected` is, with values matching `expected`."""
    if not isinstance(t, Tensor):
        raise AssertionError(f"{name}: returned {type(t).__name__}, expected a Tensor")
    if t.data.dtype != dtype:
        why = ("float64 in, float64 out: do not cast to float32 (module 06 checks gradients in float64)"
               if dtype == np.float64 else "float32 in, float32 out: watch for float64 constants")
        raise AssertionError(f"{name}: dtype {t.data.dtype}, expected {np.dtype(dtype)} ({why})")
    expected = np.asarray(expected, np.float64)
    if t.shape != expected.shape:
        raise AssertionError(f"{name}: shape {t.shape}, expected {expected.shape}")
    bad = np.isfinite(expected) & ~np.isfinite(t.data)
    if bad.any():
        raise AssertionError(f"{name}: got inf/NaN where the answer is finite "
                             f"(inputs {np.asarray(inputs[0])[bad] if inputs else ''}): "
                             "avoid computing e^x for large x")
    assert_close(t, expected, name, inputs, atol=atol, rtol=rtol)


# Reference formulas, in float64 (stable versions where needed).
def np_sigmoid(x):
    x = np.asarray(x, np.float64)
    return np.exp(-np.logaddexp(0.0, -x))


def np_gelu_tanh(x):
    x = np.asarray(x, np.float64)
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def np_log_softmax(x, axis):
    x = np.asarray(x, np.float64)
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


ELEMENTWISE = {
    "relu": (relu, lambda x: np.maximum(x, 0)),
    "leaky_relu": (leaky_relu, lambda x: np.where(x > 0, x, 0.01 * x)),
    "sigmoid": (sigmoid, np_sigmoid),
    "tanh": (tanh, np.tanh),
    "gelu": (gelu, np_gelu_tanh),
}


@pytest.mark.parametrize("name", [by_task(n) for n in ELEMENTWISE])
@SETTINGS
@given(shape=SHAPES, seed=st.integers(0, 2**16))
@example(shape=(), seed=0)
@example(shape=(2, 3, 2, 2), seed=1)
def test_activation_forward(name, shape, seed):
    """relu / leaky_relu / sigmoid / tanh / gelu elementwise, any shape (0-d and 4-D included)."""
    fn, ref = ELEMENTWISE[name]
    x = rnd(*shape, seed=seed)
    expected = ref(x.astype(np.float64))
    check_tensor(apply(name, fn, x), expected, name, [x])


@pytest.mark.parametrize("name", [by_task(n) for n in ELEMENTWISE])
def test_activation_extreme_inputs(name):
    """+-1000 and friends: finite and correct (no overflow to inf/NaN)."""
    fn, ref = ELEMENTWISE[name]
    x = EXTREME.copy()
    expected = ref(x.astype(np.float64))
    with np.errstate(over="ignore"):  # a warning is tolerated; a wrong value is not
        got = apply(name, fn, x)
    check_tensor(got, expected, f"{name} (extreme inputs)", [x])


@pytest.mark.parametrize("name", [by_task(n) for n in ELEMENTWISE])
def test_activation_float64(name):
    """float64 in, float64 out, to float64 precision (module 06's gradcheck runs in float64)."""
    fn, ref = ELEMENTWISE[name]
    x = rnd(3, 4, seed=11).astype(np.float64) + 1e-9  # the 1e-9 is lost if cast to float32
    expected = ref(x)
    check_tensor(apply(name, fn, x, dtype=np.float64), expected, f"{name} (float64)", [x],
                 atol=1e-12, rtol=1e-10, dtype=np.float64)


@pytest.mark.task("relu", "leaky_relu")
def test_relu_leaky_relu_values():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0], np.float32)
    check_tensor(apply("relu", relu, x), [0, 0, 0, 0.5, 2.0], "relu", [x])
    check_tensor(apply("leaky_relu", leaky_relu, x), [-0.02, -0.005, 0, 0.5, 2.0], "leaky_relu (slope 0.01)", [x])
    check_tensor(leaky_relu(Tensor(x), 0.2), [-0.4, -0.1, 0, 0.5, 2.0], "leaky_relu (slope 0.2)", [x])


@pytest.mark.task("leaky_relu")
@pytest.mark.parametrize("slope", [0.0, 0.2, 1.0, 3.0, -0.5])
def test_leaky_relu_any_slope(slope):
    """x if x > 0 else slope * x, for every slope (torch's definition): for slope > 1 or < 0 this is
    not max(x, slope * x)."""
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0], np.float32)
    expected = np.where(x > 0, x, slope * x.astype(np.float64))
    check_tensor(apply("leaky_relu", lambda t: leaky_relu(t, slope), x), expected,
                 f"leaky_relu (negative_slope={slope})", [x])
    check_tensor(apply("leaky_relu", lambda t: leaky_relu(t, negative_slope=slope), x), expected,
                 f"leaky_relu (negative_slope={slope}, by keyword)", [x])


@pytest.mark.task("sigmoid")
def test_sigmoid_values():
    x = np.array([-1000.0, -2.0, 0.0, 2.0, 1000.0], np.float32)
    s2 = 1 / (1 + math.exp(-2))
    check_tensor(apply("sigmoid", sigmoid, x), [0.0, 1 - s2, 0.5, s2, 1.0], "sigmoid", [x])
    inf = np.array([-np.inf, np.inf], np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        got = apply("sigmoid", sigmoid, inf)
    check_tensor(got, [0.0, 1.0], "sigmoid (of -inf and inf: 0 and 1, as in torch)", [inf])


@pytest.mark.task("gelu")
def test_gelu_tanh_approximation():
    """GELU(1) = 0.841192 with the tanh approximation (the exact erf form gives 0.841345)."""
    x = np.array([-3.0, -1.0, 0.0, 1.0, 3.0], np.float32)
    expected = [-0.00363752, -0.15880801, 0.0, 0.84119199, 2.99636248]
    check_tensor(apply("gelu", gelu, x), expected, "gelu (tanh approximation)", [x], atol=2e-6, rtol=0)


@pytest.mark.task("gelu")
def test_gelu_saved_tanh_term():
    """The backward rule (module 06) reads t = tanh(sqrt(2/pi) (x + 0.044715 x^3)) from out._saved:
    it must be that array, of x's shape, at extreme inputs too."""
    x = np.concatenate([EXTREME, rnd(5, seed=2)]).reshape(4, 4)
    c = math.sqrt(2 / math.pi)
    x64 = x.astype(np.float64)
    expected = np.tanh(c * (x64 + 0.044715 * x64 ** 3))
    with np.errstate(over="ignore"):
        out = gelu(Tensor(x, requires_grad=True))
    with blame("gelu", "the tanh term saved in out._saved for the backward pass"):
        saved = np.asarray(out._saved, dtype=np.float64)
    if saved.shape != x.shape:
        raise AssertionError(f"gelu: out._saved has shape {saved.shape}, expected the tanh term t of x's "
                             f"shape {x.shape} (module 06's backward reads it)")
    assert_close(saved, expected, "gelu (out._saved: t = tanh(sqrt(2/pi) (x + 0.044715 x^3)), which "
                 "module 06's backward reads)", [x], atol=1e-6, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# Softmax and LogSoftmax
# ---------------------------------------------------------------------------------------------
@st.composite
def shape_and_dim(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4))
    return shape, draw(st.integers(-len(shape), len(shape) - 1))


@pytest.mark.parametrize("name", [by_task("softmax"), by_task("log_softmax")])
@SETTINGS
@given(case=shape_and_dim(), scale=st.sampled_from([1.0, 10.0, 1000.0]), seed=st.integers(0, 2**16))
@example(case=((3, 4), 0), scale=1000.0, seed=0)
@example(case=((1,), -1), scale=1.0, seed=0)
@example(case=((2, 3, 2, 4), 1), scale=10.0, seed=1)
def test_softmax_log_softmax_forward(name, case, scale, seed):
    """softmax / log_softmax along any dim, for logits up to +-thousands (stable: finite, exact)."""
    shape, dim = case
    x = rnd(*shape, seed=seed, scale=scale)
    logp = np_log_softmax(x, dim)
    if name == "softmax":
        check_tensor(apply("softmax", lambda t: softmax(t, dim), x), np.exp(logp), f"softmax (dim={dim})", [x])
    else:
        # log-probabilities down to ~-1e4: compare relative to their size
        check_tensor(apply("log_softmax", lambda t: log_softmax(t, dim=dim), x), logp,
                     f"log_softmax (dim={dim})", [x], atol=1e-4, rtol=1e-5)


@pytest.mark.task("softmax", "log_softmax")
def test_softmax_extreme_rows():
    x = np.array([[1000.0, 1000.0], [-1000.0, 1000.0], [0.0, -1000.0], [-1000.0, -1000.0]], np.float32)
    expected = [[0.5, 0.5], [0.0, 1.0], [1.0, 0.0], [0.5, 0.5]]
    check_tensor(apply("softmax", softmax, x), expected, "softmax (logits +-1000)", [x])
    half = -math.log(2)
    expected_log = [[half, half], [-2000.0, 0.0], [0.0, -1000.0], [half, half]]
    check_tensor(apply("log_softmax", log_softmax, x), expected_log, "log_softmax (logits +-1000)", [x])


@pytest.mark.task("softmax", "log_softmax")
def test_softmax_log_softmax_neg_inf_entries():
    """A -inf logit (a masked position) has probability exactly 0 and log-probability -inf; the other
    entries share the mass as if it were not there (as in torch)."""
    x = np.array([[-np.inf, 0.0, 1.0], [-np.inf, -np.inf, 5.0], [2.0, -np.inf, 2.0]], np.float32)
    e = math.e
    expected = [[0.0, 1 / (1 + e), e / (1 + e)], [0.0, 0.0, 1.0], [0.5, 0.0, 0.5]]
    expected_log = [[-np.inf, -math.log(1 + e), 1 - math.log(1 + e)], [-np.inf, -np.inf, 0.0],
                    [-math.log(2), -np.inf, -math.log(2)]]
    with np.errstate(invalid="ignore"):
        probs = apply("softmax", softmax, x)
        logp = apply("log_softmax", log_softmax, x)
    check_tensor(probs, expected, "softmax (rows with -inf logits)", [x])
    check_tensor(logp, expected_log, "log_softmax (rows with -inf logits)", [x])


@pytest.mark.task("softmax", "log_softmax")
def test_softmax_shift_invariance():
    """softmax(x + c) == softmax(x): adding a constant to every logit changes nothing."""
    x = np.round(rnd(4, 6, seed=3) * 8) / 8  # multiples of 1/8: x +- 512 is exact in float32
    expected, expected_log = np.exp(np_log_softmax(x, -1)), np_log_softmax(x, -1)
    check_tensor(apply("softmax", softmax, x + 512), expected, "softmax (x + 512)", [x])
    check_tensor(apply("log_softmax", log_softmax, x - 512), expected_log, "log_softmax (x - 512)", [x],
                 atol=1e-5)


@pytest.mark.parametrize("name", [by_task("softmax"), by_task("log_softmax")])
def test_softmax_log_softmax_float64(name):
    fn = {"softmax": softmax, "log_softmax": log_softmax}[name]
    x = rnd(3, 5, seed=12).astype(np.float64) + 1e-9
    logp = np_log_softmax(x, 0)
    expected = np.exp(logp) if name == "softmax" else logp
    check_tensor(apply(name, lambda t: fn(t, 0), x, dtype=np.float64), expected, f"{name} (float64, dim=0)",
                 [x], atol=1e-12, rtol=1e-10, dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# Layer forms
# ---------------------------------------------------------------------------------------------
MODULES = {  # label -> (class name, the layer, reference)
    "ReLU": ("ReLU", lambda: ReLU(), lambda x: np.maximum(x, 0)),
    "LeakyReLU": ("LeakyReLU", lambda: LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    "LeakyReLU_default": ("LeakyReLU", lambda: LeakyReLU(), lambda x: np.where(x > 0, x, 0.01 * x)),
    "LeakyReLU_slope3": ("LeakyReLU", lambda: LeakyReLU(negative_slope=3.0), lambda x: np.where(x > 0, x, 3 * x)),
    "Sigmoid": ("Sigmoid", lambda: Sigmoid(), np_sigmoid),
    "Tanh": ("Tanh", lambda: Tanh(), np.tanh),
    "GELU": ("GELU", lambda: GELU(), np_gelu_tanh),
    "Softmax": ("Softmax", lambda: Softmax(dim=0), lambda x: np.exp(np_log_softmax(x, 0))),
    "Softmax_default": ("Softmax", lambda: Softmax(), lambda x: np.exp(np_log_softmax(x, -1))),
    "LogSoftmax": ("LogSoftmax", lambda: LogSoftmax(dim=1), lambda x: np_log_softmax(x, 1)),
    "LogSoftmax_dim0": ("LogSoftmax", lambda: LogSoftmax(0), lambda x: np_log_softmax(x, 0)),
}


@pytest.mark.parametrize("label", [pytest.param(k, marks=pytest.mark.task(v[0]), id=k) for k, v in MODULES.items()])
def test_activation_module_forward(label):
    """ReLU()(x) etc.: the layer form calls the function (with its settings), no parameters."""
    name, make, ref = MODULES[label]
    layer = make()
    x = rnd(3, 4, seed=7)
    expected = ref(x.astype(np.float64))
    check_tensor(apply(f"{name}.forward", layer, x), expected, f"{name}.forward ({label})", [x])
    assert layer.parameters() == [], f"{name}.parameters: an activation has no parameters"
    assert name in repr(layer), f"{name}.__repr__: {repr(layer)!r}"


# ---------------------------------------------------------------------------------------------
# PyTorch as the oracle (skipped when torch is not installed)
# ---------------------------------------------------------------------------------------------
def _torch_fns(torch):
    F = torch.nn.functional
    return {
        "relu": (relu, torch.relu),
        "leaky_relu": (lambda t: leaky_relu(t, 0.1), lambda t: F.leaky_relu(t, 0.1)),
        "sigmoid": (sigmoid, torch.sigmoid),
        "tanh": (tanh, torch.tanh),
        "gelu": (gelu, lambda t: F.gelu(t, approximate="tanh")),
        "softmax": (lambda t: softmax(t, 1), lambda t: torch.softmax(t, 1)),
        "log_softmax": (lambda t: log_softmax(t, 0), lambda t: torch.log_softmax(t, 0)),
    }


@pytest.mark.parametrize("name", [by_task(n) for n in
                                  ["relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softmax", "log_softmax"]])
def test_activation_forward_vs_torch(name):
    torch = torch_or_skip()
    ours, theirs = _torch_fns(torch)[name]
    x = np.concatenate([rnd(2, 11, seed=4), EXTREME[None, :]], axis=0)  # (3, 11)
    expected = theirs(torch.tensor(x)).numpy()
    check_tensor(apply(name, ours, x), expected, f"{name} (vs PyTorch)", [x], atol=1e-5, rtol=1e-5)
