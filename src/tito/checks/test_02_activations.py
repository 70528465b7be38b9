"""Checks for module 02 (activations): forward values against NumPy formulas and PyTorch.

Extreme inputs (+-1000) must give finite, correct results: sigmoid, softmax and log_softmax are
only right if they never compute e^1000. GELU is the tanh approximation (as in GPT-2 and
torch.nn.functional.gelu(approximate="tanh")), which differs from the exact erf form by ~1e-4.
Gradients are module 06's business and are not checked here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinytorch.activations import (GELU, ReLU, LeakyReLU, LogSoftmax, Sigmoid, Softmax, Tanh, gelu,
                                   leaky_relu, log_softmax, relu, sigmoid, softmax, tanh)
from tinytorch.tensor import Tensor
from tito.checks.harness import assert_close, torch_or_skip

SETTINGS = settings(deadline=None, derandomize=True, max_examples=25, database=None)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=5)
EXTREME = np.array([-1000.0, -100.0, -20.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 20.0, 100.0, 1000.0], np.float32)


def rnd(*shape, seed=0, scale=3.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def check_tensor(t, expected, name, inputs=(), atol=1e-6, rtol=1e-5):
    """A float32 Tensor, finite where `expected` is, with values matching `expected`."""
    if not isinstance(t, Tensor):
        raise AssertionError(f"{name}: returned {type(t).__name__}, expected a Tensor")
    if t.data.dtype != np.float32:
        raise AssertionError(f"{name}: dtype {t.data.dtype}, expected float32 "
                             "(float32 in, float32 out: watch for float64 constants)")
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


@pytest.mark.parametrize("name", list(ELEMENTWISE))
@SETTINGS
@given(shape=SHAPES, seed=st.integers(0, 2**16))
@example(shape=(), seed=0)
def test_activation_forward(name, shape, seed):
    """relu / leaky_relu / sigmoid / tanh / gelu elementwise, any shape (0-d included)."""
    fn, ref = ELEMENTWISE[name]
    x = rnd(*shape, seed=seed)
    check_tensor(fn(Tensor(x)), ref(x.astype(np.float64)), name, [x])


@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_activation_extreme_inputs(name):
    """+-1000 and friends: finite and correct (no overflow to inf/NaN)."""
    fn, ref = ELEMENTWISE[name]
    with np.errstate(over="ignore"):  # a warning is tolerated; a wrong value is not
        got = fn(Tensor(EXTREME))
    check_tensor(got, ref(EXTREME.astype(np.float64)), f"{name} (extreme inputs)", [EXTREME])


def test_relu_leaky_relu_values():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0], np.float32)
    check_tensor(relu(Tensor(x)), [0, 0, 0, 0.5, 2.0], "relu", [x])
    check_tensor(leaky_relu(Tensor(x)), [-0.02, -0.005, 0, 0.5, 2.0], "leaky_relu (slope 0.01)", [x])
    check_tensor(leaky_relu(Tensor(x), 0.2), [-0.4, -0.1, 0, 0.5, 2.0], "leaky_relu (slope 0.2)", [x])


def test_sigmoid_values():
    x = np.array([-1000.0, -2.0, 0.0, 2.0, 1000.0], np.float32)
    s2 = 1 / (1 + math.exp(-2))
    check_tensor(sigmoid(Tensor(x)), [0.0, 1 - s2, 0.5, s2, 1.0], "sigmoid", [x])


def test_gelu_tanh_approximation():
    """GELU(1) = 0.841192 with the tanh approximation (the exact erf form gives 0.841345)."""
    x = np.array([-3.0, -1.0, 0.0, 1.0, 3.0], np.float32)
    expected = [-0.00363752, -0.15880801, 0.0, 0.84119199, 2.99636248]
    check_tensor(gelu(Tensor(x)), expected, "gelu (tanh approximation)", [x], atol=2e-6, rtol=0)


# ---------------------------------------------------------------------------------------------
# Softmax and LogSoftmax
# ---------------------------------------------------------------------------------------------
@st.composite
def shape_and_dim(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    return shape, draw(st.integers(-len(shape), len(shape) - 1))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@SETTINGS
@given(case=shape_and_dim(), scale=st.sampled_from([1.0, 10.0, 1000.0]), seed=st.integers(0, 2**16))
@example(case=((3, 4), 0), scale=1000.0, seed=0)
@example(case=((1,), -1), scale=1.0, seed=0)
def test_softmax_log_softmax_forward(name, case, scale, seed):
    """softmax / log_softmax along any dim, for logits up to +-thousands (stable: finite, exact)."""
    shape, dim = case
    x = rnd(*shape, seed=seed, scale=scale)
    logp = np_log_softmax(x, dim)
    if name == "softmax":
        check_tensor(softmax(Tensor(x), dim), np.exp(logp), f"softmax (dim={dim})", [x])
    else:
        # log-probabilities down to ~-1e4: compare relative to their size
        check_tensor(log_softmax(Tensor(x), dim), logp, f"log_softmax (dim={dim})", [x], atol=1e-4, rtol=1e-5)


def test_softmax_extreme_rows():
    x = np.array([[1000.0, 1000.0], [-1000.0, 1000.0], [0.0, -1000.0], [-1000.0, -1000.0]], np.float32)
    expected = [[0.5, 0.5], [0.0, 1.0], [1.0, 0.0], [0.5, 0.5]]
    check_tensor(softmax(Tensor(x)), expected, "softmax (logits +-1000)", [x])
    half = -math.log(2)
    expected_log = [[half, half], [-2000.0, 0.0], [0.0, -1000.0], [half, half]]
    check_tensor(log_softmax(Tensor(x)), expected_log, "log_softmax (logits +-1000)", [x])


def test_softmax_shift_invariance():
    """softmax(x + c) == softmax(x): adding a constant to every logit changes nothing."""
    x = np.round(rnd(4, 6, seed=3) * 8) / 8  # multiples of 1/8: x +- 512 is exact in float32
    check_tensor(softmax(Tensor(x + 512)), softmax(Tensor(x)).data, "softmax (x + 512 vs x)", [x])
    check_tensor(log_softmax(Tensor(x - 512)), log_softmax(Tensor(x)).data,
                 "log_softmax (x - 512 vs x)", [x])


# ---------------------------------------------------------------------------------------------
# Layer forms
# ---------------------------------------------------------------------------------------------
MODULES = {
    "ReLU": (ReLU(), lambda x: np.maximum(x, 0)),
    "LeakyReLU": (LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    "Sigmoid": (Sigmoid(), np_sigmoid),
    "Tanh": (Tanh(), np.tanh),
    "GELU": (GELU(), np_gelu_tanh),
    "Softmax": (Softmax(dim=0), lambda x: np.exp(np_log_softmax(x, 0))),
    "LogSoftmax": (LogSoftmax(dim=1), lambda x: np_log_softmax(x, 1)),
}


@pytest.mark.parametrize("name", list(MODULES))
def test_activation_module_forward(name):
    """ReLU()(x) etc.: the layer form calls the function (with its settings), no parameters."""
    layer, ref = MODULES[name]
    x = rnd(3, 4, seed=7)
    check_tensor(layer(Tensor(x)), ref(x.astype(np.float64)), f"{name}.forward", [x])
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


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softmax", "log_softmax"])
def test_activation_forward_vs_torch(name):
    torch = torch_or_skip()
    ours, theirs = _torch_fns(torch)[name]
    x = np.concatenate([rnd(2, 11, seed=4), EXTREME[None, :]], axis=0)  # (3, 11)
    expected = theirs(torch.tensor(x)).numpy()
    check_tensor(ours(Tensor(x)), expected, f"{name} (vs PyTorch)", [x], atol=1e-5, rtol=1e-5)
