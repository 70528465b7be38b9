"""Checks for module 06 (autograd): every backward rule, and the engine that runs them.

* gradcheck: every rule in autograd.BACKWARD against central differences (float64), on plain,
  broadcast and 0-d shapes. The list of rules is read from the table itself and from the
  `Tensor._make(..., "op")` calls of modules 01-05, so an op without a rule or without a check
  fails here instead of slipping through.
* conventions, without PyTorch: the gradient PyTorch gives at every kink (ties in max/min split
  evenly, |x| and relu at 0, clip at its bounds, leaky_relu at 0, 0 ** 0), and at extreme inputs
  (|x| ~ 1e3 for sigmoid, tanh, gelu, softmax, log_softmax, cross_entropy, bce_with_logits;
  p in {0, 1} for bce), written out here, so the verdict is the same with and without torch.
* PyTorch parity (when torch is installed): forward and gradient of every op, the same kinks.
* every rule is also called on its own before the engine runs it (harness.check_rules): a
  gradient of the wrong shape or dtype, or a write into g or a saved value, names the rule.
* the engine: 10,000-op chains, accumulation exactly like torch, zeroing, requires_grad,
  detach, no_grad, non-scalar roots, diamonds, unbroadcast and topological_order.
"""

from __future__ import annotations

import ast
import importlib
import inspect

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinytorch import autograd
from tinytorch.activations import gelu, leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from tinytorch.autograd import BACKWARD, topological_order, unbroadcast
from tinytorch.losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from tinytorch.tensor import Tensor, is_grad_enabled, no_grad
from tito.checks.harness import (MATMUL_SHAPES, assert_close, blame, call, check_rules, expect_error, gradcheck,
                                  hypothesis_settings, rule_name, torch_or_skip, torch_parity)

SETTINGS = hypothesis_settings(max_examples=12)


# ---------------------------------------------------------------------------------------------
# Test data (float64 for gradcheck; torch parity converts to float32)
# ---------------------------------------------------------------------------------------------
def r(*shape, seed=0, low=-2.0, high=2.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, shape)


def pos(*shape, seed=0) -> np.ndarray:
    """Positive values (log, sqrt, pow bases)."""
    return r(*shape, seed=seed, low=0.5, high=2.0)


def away(*shape, seed=0) -> np.ndarray:
    """Both signs, |x| >= 0.2: away from the kink of abs/relu and from division by 0."""
    g = np.random.default_rng(seed)
    return g.uniform(0.2, 2.0, shape) * np.where(g.random(shape) < 0.5, -1.0, 1.0)


def distinct(*shape, seed=0) -> np.ndarray:
    """All values at least 0.1 apart (max/min without ties: differentiable)."""
    n = int(np.prod(shape, dtype=int))
    vals = np.random.default_rng(seed).permutation(n) * 0.25 - n / 8
    return vals.reshape(shape) + r(*shape, seed=seed + 1, low=0.0, high=0.1)


def labels(n, c, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, c, n)


def bits(*shape, seed=0) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) < 0.5).astype(np.float64)


def _linear(weight: Tensor, bias: Tensor | None):
    """A Linear layer (module 03) using the given weight/bias tensors, so gradcheck can vary them."""
    from tinytorch.layers import Linear

    layer = Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    layer.weight, layer.bias = weight, bias
    return layer


LINSPACE = np.linspace(-1.95, 1.95, 12).reshape(3, 4)  # no value within 0.03 of +-0.5 (clip bounds)
MASK = np.array([[True, False, True, False], [False, False, True, True], [True, True, False, False]])


# ---------------------------------------------------------------------------------------------
# gradcheck cases: op -> {label: (fn, inputs, wrt)}
# ---------------------------------------------------------------------------------------------
GRAD: dict[str, dict] = {}


def case(op, label, fn, *inputs, wrt=None):
    GRAD.setdefault(op, {})[label] = (fn, inputs, wrt)


add, sub, mul, div = (lambda a, b: a + b), (lambda a, b: a - b), (lambda a, b: a * b), (lambda a, b: a / b)
case("add", "same_shape", add, r(2, 3), r(2, 3, seed=1))
case("add", "broadcast_row", add, r(4, 3), r(3, seed=1))
case("add", "broadcast_outer", add, r(4, 1), r(1, 5, seed=1))
case("add", "0d_plus_matrix", add, r(), r(2, 3, seed=1))
case("add", "0d_plus_0d", add, r(), r(seed=1))
case("add", "python_scalar", lambda a: 3.0 + (a + 2.0), r(2, 2))
case("add", "same_tensor_twice", lambda a: a + a, r(3))
case("sub", "broadcast_row", sub, r(2, 3), r(3, seed=1))
case("sub", "matrix_minus_0d", sub, r(3, 1), r(seed=1))
case("sub", "rsub_scalar", lambda a: 1.0 - a, r(2, 2))
case("mul", "broadcast_column", mul, r(2, 3), r(2, 1, seed=1))
case("mul", "0d_times_vector", mul, r(), r(3, seed=1))
case("mul", "square", lambda a: a * a, r(2, 3))
case("mul", "rmul_scalar", lambda a: 2.5 * a, r(3))
case("div", "broadcast_row", div, r(2, 3), away(3, seed=1))
case("div", "0d_over_matrix", div, r(), away(2, 2, seed=1))
case("div", "rdiv_scalar", lambda a: 1.0 / a, away(2, 3))
case("pow", "square", lambda a: a ** 2, r(2, 3))
case("pow", "tensor_exponent_broadcast", lambda a, b: a ** b, pos(2, 3), r(3, seed=1))
case("pow", "0d_exponent", lambda a, b: a ** b, pos(2, 3), r(seed=1))
case("pow", "rpow", lambda a: 2.0 ** a, r(2, 2))
case("pow", "sqrt_as_pow", lambda a: a ** 0.5, pos(4))
case("neg", "matrix", lambda a: -a, r(2, 3))
case("neg", "0d", lambda a: -a, r())

for _label, (_sa, _sb) in MATMUL_SHAPES.items():
    case("matmul", _label, lambda a, b: a @ b, r(*_sa), r(*_sb, seed=1))
# one operand a constant (x @ W with data x, or a fixed matrix times a parameter)
case("matmul", "constant_A", lambda a, b: a @ b, r(3, 4), r(4, 5, seed=1), wrt=[1])
case("matmul", "constant_A_batched", lambda a, b: a @ b, r(2, 3, 4), r(2, 4, 5, seed=1), wrt=[1])
case("matmul", "constant_B", lambda a, b: a @ b, r(2, 3, 4), r(4, 5, seed=1), wrt=[0])
case("matmul", "constant_B_batched", lambda a, b: a @ b, r(2, 3, 4), r(2, 4, 5, seed=1), wrt=[0])
# x @ W.T: B is a transposed (not C-contiguous) view of the weight. It needs the permute rule
# too, so it is checked with permute (the lesson writes matmul's rule first, permute's later)
case("permute", "matmul_transposed_weight", lambda a, w: a @ w.T, r(2, 3, 4), r(5, 4, seed=1))

for _op in ("sum", "mean"):
    case(_op, "all", lambda a, op=_op: getattr(a, op)(), r(2, 3))
    case(_op, "axis0", lambda a, op=_op: getattr(a, op)(axis=0), r(2, 3))
    case(_op, "axis-1_keepdims", lambda a, op=_op: getattr(a, op)(axis=-1, keepdims=True), r(2, 3, 2))
    case(_op, "tuple_axes", lambda a, op=_op: getattr(a, op)(axis=(0, 2)), r(2, 3, 2))
    case(_op, "0d", lambda a, op=_op: getattr(a, op)(), r())
    case(_op, "dim_keepdim", lambda a, op=_op: getattr(a, op)(dim=1, keepdim=True), r(3, 2))
    case(_op, "4d_axes_1_3", lambda a, op=_op: getattr(a, op)(axis=(1, 3)), r(2, 2, 3, 2))
    case(_op, "empty_rows", lambda a, op=_op: getattr(a, op)(axis=1), r(0, 3))  # an empty batch
for _op in ("max", "min"):
    case(_op, "all", lambda a, op=_op: getattr(a, op)(), distinct(2, 3))
    case(_op, "axis1", lambda a, op=_op: getattr(a, op)(axis=1), distinct(3, 4))
    case(_op, "axis-1_keepdims", lambda a, op=_op: getattr(a, op)(axis=-1, keepdims=True), distinct(2, 3, 2))
    case(_op, "tuple_axes", lambda a, op=_op: getattr(a, op)(axis=(0, 2)), distinct(2, 3, 2))
    case(_op, "0d", lambda a, op=_op: getattr(a, op)(), r())
    case(_op, "4d_axis2_keepdims", lambda a, op=_op: getattr(a, op)(axis=2, keepdims=True), distinct(2, 2, 3, 2))

case("reshape", "reshape", lambda a: a.reshape(3, 4), r(2, 6))
case("reshape", "view_minus1", lambda a: a.view(-1), r(2, 3))
case("reshape", "flatten", lambda a: a.flatten(1), r(2, 3, 2))
case("reshape", "squeeze_unsqueeze", lambda a: a.squeeze().unsqueeze(0), r(3, 1, 2))
case("reshape", "0d_to_matrix", lambda a: a.reshape(1, 1), r())
case("reshape", "4d", lambda a: a.reshape(2, 3, 2, 2), r(4, 6))
case("permute", "permute", lambda a: a.permute(2, 0, 1), r(2, 3, 4))
case("permute", "negative_axes", lambda a: a.permute(0, -1, 1), r(2, 3, 4))
case("permute", "transpose", lambda a: a.transpose(0, 2), r(2, 3, 4))
case("permute", "T", lambda a: a.T, r(2, 3))
case("permute", "0d_T", lambda a: a.T, r())
case("permute", "4d", lambda a: a.permute(3, 1, 0, 2), r(2, 3, 2, 4))
case("getitem", "int", lambda a: a[1], r(3, 4))
case("getitem", "slice", lambda a: a[1:3], r(4, 2))
case("getitem", "negative_step", lambda a: a[::-2, 1:], r(5, 3))
case("getitem", "column", lambda a: a[:, -1], r(3, 4))
case("getitem", "ellipsis_newaxis", lambda a: a[..., None, 0], r(2, 3, 2))
case("getitem", "element_0d", lambda a: a[1, 2], r(3, 4))
case("getitem", "fancy_repeated", lambda a: a[[1, 1, 0, 1]], r(3, 2))
case("getitem", "fancy_pairs_repeated", lambda a: a[np.array([0, 2, 2]), np.array([1, 3, 3])], r(3, 4))
case("getitem", "bool_mask", lambda a: a[MASK], r(3, 4))
case("getitem", "tensor_index", lambda a: a[Tensor(np.array([2, 0, 2]))], r(3, 2))
case("getitem", "4d_mixed", lambda a: a[:, 1, ..., ::2], r(2, 3, 2, 4))

case("exp", "matrix", lambda a: a.exp(), r(2, 3))
case("exp", "0d", lambda a: a.exp(), r())
case("log", "matrix", lambda a: a.log(), pos(2, 3))
case("sqrt", "matrix", lambda a: a.sqrt(), pos(2, 3))
case("abs", "matrix", lambda a: a.abs(), away(2, 3))
case("clip", "both_bounds", lambda a: a.clip(-0.5, 0.5), LINSPACE)
case("clip", "min_only", lambda a: a.clip(min=-0.5), LINSPACE)
case("clip", "max_only", lambda a: a.clamp(max=0.5), LINSPACE)

case("linear", "with_bias", lambda x, w, b: _linear(w, b)(x), r(5, 4), r(3, 4, seed=1), r(3, seed=2))
case("linear", "no_bias", lambda x, w: _linear(w, None)(x), r(5, 4), r(3, 4, seed=1))
case("linear", "batch_dims", lambda x, w, b: _linear(w, b)(x), r(2, 3, 4), r(5, 4, seed=1), r(5, seed=2))
case("linear", "4d_input", lambda x, w, b: _linear(w, b)(x), r(2, 2, 3, 4), r(3, 4, seed=1), r(3, seed=2))
case("relu", "matrix", relu, away(3, 4))
case("leaky_relu", "default_slope", leaky_relu, away(3, 4))
case("leaky_relu", "slope_0.2", lambda a: leaky_relu(a, 0.2), away(3, 4))
case("sigmoid", "matrix", sigmoid, r(3, 4, low=-6, high=6))
case("sigmoid", "0d", sigmoid, r())
case("sigmoid", "wide", sigmoid, r(3, 4, low=-30, high=30))
case("tanh", "matrix", tanh, r(3, 4))
case("gelu", "matrix", gelu, r(3, 4, low=-4, high=4))
case("softmax", "last_dim", softmax, r(3, 4))
case("softmax", "dim0", lambda a: softmax(a, 0), r(3, 4))
case("softmax", "3d_dim1", lambda a: softmax(a, 1), r(2, 3, 2))
case("softmax", "4d_dim1_wide", lambda a: softmax(a, 1), r(2, 3, 2, 2, low=-20, high=20))
case("log_softmax", "last_dim", log_softmax, r(3, 4))
case("log_softmax", "dim0", lambda a: log_softmax(a, 0), r(3, 4))
case("log_softmax", "3d_dim1", lambda a: log_softmax(a, 1), r(2, 3, 2))
case("log_softmax", "4d_dim-2", lambda a: log_softmax(a, -2), r(2, 2, 3, 2))

case("cross_entropy", "mean", lambda x, y: CrossEntropyLoss()(x, y), r(4, 5), labels(4, 5))
case("cross_entropy", "label_smoothing", lambda x, y: CrossEntropyLoss(label_smoothing=0.1)(x, y),
     r(4, 5), labels(4, 5, seed=1))
case("cross_entropy", "sum", lambda x, y: CrossEntropyLoss(reduction="sum")(x, y), r(3, 2), labels(3, 2))
case("cross_entropy", "smoothing_sum_wide",
     lambda x, y: CrossEntropyLoss(label_smoothing=0.15, reduction="sum")(x, y), r(4, 5) * 10, labels(4, 5))
case("bce", "mean", lambda p, y: BCELoss()(p, y), r(3, 2, low=0.05, high=0.95), bits(3, 2), wrt=[0])
case("bce", "soft_labels_sum", lambda p, y: BCELoss(reduction="sum")(p, y), r(5, low=0.05, high=0.95),
     r(5, low=0, high=1, seed=1), wrt=[0])
case("bce_with_logits", "mean", lambda x, y: BCEWithLogitsLoss()(x, y), r(3, 2, low=-5, high=5), bits(3, 2),
     wrt=[0])
case("bce_with_logits", "sum", lambda x, y: BCEWithLogitsLoss(reduction="sum")(x, y), r(4), bits(4, seed=1),
     wrt=[0])


# ---------------------------------------------------------------------------------------------
# Which ops must be covered: the rules of this module + every op that modules 01-05 record
# ---------------------------------------------------------------------------------------------
FORWARD_MODULES = ("tensor", "activations", "layers", "losses", "dataloader")  # modules 01-05


def recorded_ops() -> dict[str, str]:
    """op name -> the module that records it with `Tensor._make(data, parents, "op", ...)`."""
    ops: dict[str, str] = {}
    for short in FORWARD_MODULES:
        try:
            mod = importlib.import_module(f"tinytorch.{short}")
        except ModuleNotFoundError as e:
            if e.name == f"tinytorch.{short}":
                continue
            raise
        for node in ast.walk(ast.parse(inspect.getsource(mod))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "_make":
                arg = node.args[2] if len(node.args) > 2 else next(
                    (k.value for k in node.keywords if k.arg == "op"), None)
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    ops.setdefault(arg.value, mod.__name__)
    return ops


RECORDED = recorded_ops()
OWN_RULES = {op for op, fn in BACKWARD.items() if getattr(fn, "__module__", None) == autograd.__name__}
ALL_OPS = sorted(OWN_RULES | set(RECORDED))


OP_PARAMS = [pytest.param(op, id=f"{op}_backward", marks=pytest.mark.task(rule_name(op))) for op in ALL_OPS]


def require_rule_and_cases(op, table, kind):
    if op not in BACKWARD:
        raise AssertionError(f"autograd.BACKWARD: op {op!r} (recorded by {RECORDED.get(op)}) has no backward "
                             f"rule: add one with @register_backward({op!r})")
    if not table.get(op):
        where = (f"recorded by {RECORDED[op]}" if op in RECORDED else
                 "registered in autograd.BACKWARD, though no module 01-05 records it (remove the rule?)")
        raise AssertionError(f"{rule_name(op)}: no {kind} case for op {op!r} ({where}) in "
                             "test_06_autograd.py: every backward rule needs one")


def float32_rules(label, fn, inputs, wrt):
    """Every rule on the graph of `fn`, on float32 inputs: float32 gradients of the right shapes."""
    ts = [Tensor(np.asarray(a, np.float32) if np.asarray(a).dtype.kind == "f" else a,
                 requires_grad=np.asarray(a).dtype.kind == "f" and (wrt is None or i in wrt))
          for i, a in enumerate(inputs)]
    check_rules(fn(*ts), f"{label}, float32")


@pytest.mark.parametrize("op", OP_PARAMS)
def test_backward_gradcheck(op):
    """Every backward rule vs central differences (float64) on each case; float32 stays float32."""
    require_rule_and_cases(op, GRAD, "gradcheck")
    for label, (fn, inputs, wrt) in GRAD[op].items():
        gradcheck(fn, *inputs, name=f"{rule_name(op)} ({label})", wrt=wrt)
        float32_rules(label, fn, inputs, wrt)


# ---------------------------------------------------------------------------------------------
# hypothesis: broadcasting and reductions over many shapes (0-d included)
# ---------------------------------------------------------------------------------------------
PAIRS = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=3).map(
    lambda b: b.input_shapes)
BINARY = {"add": (add, r, r), "sub": (sub, r, r), "mul": (mul, r, r), "div": (div, r, away),
          "pow": (lambda a, b: a ** b, pos, r)}


@pytest.mark.parametrize("op", [p for p in OP_PARAMS if p.values[0] in BINARY])
@SETTINGS
@given(shapes=PAIRS, seed=st.integers(0, 2**16))
@example(shapes=((), (2, 3)), seed=0)
@example(shapes=((2, 1, 3), (4, 1)), seed=1)
@example(shapes=((1, 3, 1), (2, 1, 4)), seed=2)
@example(shapes=((2, 1, 3, 1), (2, 1, 2)), seed=3)
def test_backward_broadcast(op, shapes, seed):
    """add/sub/mul/div/pow gradients reduce back to each input's shape (unbroadcast)."""
    fn, gen_a, gen_b = BINARY[op]
    a, b = gen_a(*shapes[0], seed=seed), gen_b(*shapes[1], seed=seed + 1)
    gradcheck(fn, a, b, name=f"{rule_name(op)} (shapes {shapes[0]} and {shapes[1]})")


@st.composite
def shape_and_axis(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=3))
    n = len(shape)
    options = [st.none()]
    if n:
        options += [st.integers(-n, n - 1),
                    st.lists(st.integers(-n, n - 1), min_size=1, max_size=n,
                             unique_by=lambda i: i % n).map(tuple)]
    return shape, draw(st.one_of(options))


@pytest.mark.parametrize("op", [p for p in OP_PARAMS if p.values[0] in ("sum", "mean", "max", "min")])
@SETTINGS
@given(case_=shape_and_axis(), keepdims=st.booleans(), seed=st.integers(0, 2**16))
@example(case_=((), None), keepdims=False, seed=0)
@example(case_=((2, 3, 2), (0, -1)), keepdims=True, seed=0)
@example(case_=((2, 1, 3, 2), (-3, 3)), keepdims=False, seed=0)
def test_backward_reductions(op, case_, keepdims, seed):
    """sum/mean/max/min gradients for every axis spelling, keepdims, 0-d."""
    shape, axis = case_
    x = distinct(*shape, seed=seed)
    gradcheck(lambda t: getattr(t, op)(axis=axis, keepdims=keepdims), x,
              name=f"{rule_name(op)} (shape {shape}, axis={axis}, keepdims={keepdims})")


# ---------------------------------------------------------------------------------------------
# PyTorch parity: op -> {label: (fn_tinytorch, fn_torch or None = same, arrays)}
# ---------------------------------------------------------------------------------------------
def torch_cases(torch) -> dict[str, dict]:
    F, T = torch.nn.functional, torch.tensor
    C: dict[str, dict] = {}

    def tc(op, label, fn, fn_torch, *arrays):
        C.setdefault(op, {})[label] = (fn, fn_torch or fn, [np.asarray(a, np.float32)
                                                           if np.asarray(a).dtype.kind == "f" else a
                                                           for a in arrays])

    tc("add", "broadcast", add, None, r(4, 1), r(1, 3, seed=1))
    tc("add", "0d", add, None, r(), r(2, 3, seed=1))
    tc("sub", "broadcast", sub, None, r(2, 3), r(3, seed=1))
    tc("mul", "broadcast", mul, None, r(2, 3), r(2, 1, seed=1))
    tc("mul", "square", lambda a: a * a, None, r(3))
    tc("div", "broadcast", div, None, r(2, 3), away(3, seed=1))
    tc("div", "rdiv", lambda a: 2.0 / a, None, away(4))
    tc("pow", "tensor_exponent", lambda a, b: a ** b, None, pos(2, 3), r(3, seed=1))
    tc("pow", "square_and_rpow", lambda a: a ** 2 + 2.0 ** a, None, r(5))
    tc("pow", "zero_base_zero_exponent", lambda a, b: a ** b, None,
       [0.0, 0.0, 1.5, 0.0], [0.0, 2.0, 0.0, 3.0])
    tc("neg", "matrix", lambda a: -a, None, r(2, 3))
    for label, (sa, sb) in MATMUL_SHAPES.items():
        tc("matmul", label, lambda a, b: a @ b, None, r(*sa), r(*sb, seed=1))
    for op in ("sum", "mean"):
        tc(op, "all", lambda a, op=op: getattr(a, op)(), None, r(2, 3))
        tc(op, "dim1_keepdim", lambda a, op=op: getattr(a, op)(dim=1, keepdim=True), None, r(2, 3, 2))
        tc(op, "tuple_dims", lambda a, op=op: getattr(a, op)(dim=(0, 2)), None, r(2, 3, 2))
    ties = [[1.0, 3.0, 3.0, -1.0], [2.0, 2.0, 0.0, 2.0], [-4.0, 5.0, -4.0, -4.0]]
    for op, amax in (("max", "amax"), ("min", "amin")):
        tc(op, "dim1_with_ties", lambda a, op=op: getattr(a, op)(dim=1),
           lambda a, f=amax: getattr(a, f)(dim=1), ties)
        tc(op, "all_with_ties", lambda a, op=op: getattr(a, op)(), None, ties)
        tc(op, "dim0_keepdim", lambda a, op=op: getattr(a, op)(dim=0, keepdim=True),
           lambda a, f=amax: getattr(a, f)(dim=0, keepdim=True), distinct(3, 4))
    tc("reshape", "reshape_flatten", lambda a: a.reshape(3, 4).flatten(), None, r(2, 6))
    tc("reshape", "squeeze_unsqueeze", lambda a: a.squeeze().unsqueeze(0), None, r(3, 1, 2))
    tc("permute", "permute", lambda a: a.permute(2, 0, 1), None, r(2, 3, 4))
    tc("permute", "negative_axes", lambda a: a.permute(0, -1, 1), None, r(2, 3, 4))
    tc("permute", "transpose_T", lambda a: a.transpose(0, 1).T, None, r(3, 2))
    rows, cols = np.array([0, 2, 2]), np.array([1, 3, 3])
    tc("getitem", "slices", lambda a: a[1:, ::2], None, r(3, 4))
    tc("getitem", "negative_step", lambda a: a[::-1], lambda a: a.flip(0), r(4, 2))
    tc("getitem", "fancy_repeated", lambda a: a[[1, 1, 0]], None, r(3, 2))
    tc("getitem", "fancy_pairs", lambda a: a[rows, cols], lambda a: a[T(rows), T(cols)], r(3, 4))
    tc("getitem", "bool_mask", lambda a: a[MASK], lambda a: a[T(MASK)], r(3, 4))
    tc("exp", "matrix", lambda a: a.exp(), None, r(2, 3))
    tc("log", "matrix", lambda a: a.log(), None, pos(2, 3))
    tc("sqrt", "matrix", lambda a: a.sqrt(), None, pos(2, 3))
    tc("abs", "with_zero", lambda a: a.abs(), None, [-1.5, -0.0, 0.0, 2.0])
    tc("clip", "at_bounds", lambda a: a.clip(-0.5, 0.5), None, [-1.0, -0.5, 0.0, 0.5, 1.0])
    tc("clip", "min_only", lambda a: a.clip(min=0.0), lambda a: a.clip(min=0.0), r(2, 3))
    tc("linear", "batch_dims", lambda x, w, b: _linear(w, b)(x), F.linear, r(2, 3, 4), r(5, 4, seed=1),
       r(5, seed=2))
    tc("relu", "with_zero", relu, torch.relu, [-1.0, 0.0, 2.0, -0.5])
    tc("leaky_relu", "with_zero", lambda a: leaky_relu(a, 0.1), lambda a: F.leaky_relu(a, 0.1),
       [-1.0, 0.0, 2.0])
    tc("sigmoid", "wide", sigmoid, torch.sigmoid, r(3, 4, low=-30, high=30))
    tc("tanh", "matrix", tanh, torch.tanh, r(3, 4))
    tc("gelu", "matrix", gelu, lambda a: F.gelu(a, approximate="tanh"), r(3, 4, low=-5, high=5))
    tc("softmax", "dim1", lambda a: softmax(a, 1), lambda a: torch.softmax(a, 1), r(3, 4, low=-20, high=20))
    tc("log_softmax", "dim0", lambda a: log_softmax(a, 0), lambda a: torch.log_softmax(a, 0), r(3, 4))
    y = labels(4, 5)
    tc("cross_entropy", "mean", lambda x: CrossEntropyLoss()(x, y), lambda x: F.cross_entropy(x, T(y)),
       r(4, 5))
    tc("cross_entropy", "smoothing_sum",
       lambda x: CrossEntropyLoss(label_smoothing=0.15, reduction="sum")(x, y),
       lambda x: F.cross_entropy(x, T(y), label_smoothing=0.15, reduction="sum"), r(4, 5) * 10)
    t = bits(3, 2).astype(np.float32)
    tc("bce", "mean", lambda p: BCELoss()(p, t), lambda p: F.binary_cross_entropy(p, T(t)),
       r(3, 2, low=0.05, high=0.95))
    tc("bce_with_logits", "sum", lambda x: BCEWithLogitsLoss(reduction="sum")(x, t),
       lambda x: F.binary_cross_entropy_with_logits(x, T(t), reduction="sum"), r(3, 2, low=-8, high=8))
    return C


@pytest.mark.parametrize("op", OP_PARAMS)
def test_backward_vs_torch(op):
    """Forward and gradient of every op vs PyTorch (float32), on each case."""
    torch = torch_or_skip()
    cases = torch_cases(torch)
    require_rule_and_cases(op, cases, "PyTorch parity")
    for label, (fn, fn_torch, arrays) in cases[op].items():
        torch_parity(fn, fn_torch, *arrays, name=f"{rule_name(op)} ({label})")


# ---------------------------------------------------------------------------------------------
# Kinks and extreme inputs, without PyTorch: the gradient PyTorch gives, written out here
# op -> {label: (fn, inputs, wrt, g = dL/dout, expected dL/dinput for each input in wrt)}
# ---------------------------------------------------------------------------------------------
EDGES: dict[str, dict] = {}


def edge(op, label, fn, inputs, g, *expected, wrt=(0,)):
    EDGES.setdefault(op, {})[label] = (fn, [np.asarray(a) for a in inputs], list(wrt), np.asarray(g, np.float64),
                                       [np.asarray(e, np.float64) for e in expected])


def _sigmoid64(x):
    return 0.5 * (1 + np.tanh(np.asarray(x, np.float64) / 2))  # stable for any x


def _softmax64(x, axis):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _gelu_slope64(x):
    x, c = np.asarray(x, np.float64), np.sqrt(2 / np.pi)
    with np.errstate(over="ignore"):
        t = np.tanh(c * (x + 0.044715 * x ** 3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)


TIES = np.array([[1.0, 3.0, 3.0, -1.0], [2.0, 2.0, 0.0, 2.0], [-4.0, 3.0, -4.0, -4.0]])
third = 1 / 3
# ties split the gradient evenly (torch's max()/min() over everything, and amax/amin over dims)
edge("max", "dim1_ties_split_evenly", lambda a: a.max(dim=1), [TIES], [1.0, 2.0, 3.0],
     [[0, 0.5, 0.5, 0], [2 * third, 2 * third, 0, 2 * third], [0, 3, 0, 0]])
edge("max", "all_ties_split_evenly", lambda a: a.max(), [TIES], 1.0,
     [[0, third, third, 0], [0, 0, 0, 0], [0, third, 0, 0]])
edge("max", "dim0_keepdim_ties", lambda a: a.max(axis=0, keepdims=True), [TIES], [[1.0, 2.0, 3.0, 4.0]],
     [[0, 1, 3, 0], [1, 0, 0, 4], [0, 1, 0, 0]])
edge("min", "dim1_ties_split_evenly", lambda a: a.min(dim=1), [TIES], [1.0, 2.0, 3.0],
     [[0, 0, 0, 1], [0, 0, 2, 0], [1, 0, 1, 1]])
edge("min", "all_ties_split_evenly", lambda a: a.min(), [TIES], 1.0,
     [[0, 0, 0, 0], [0, 0, 0, 0], [third, 0, third, third]])
# |x|, relu and leaky_relu at 0; clip at its bounds (the bounds themselves pass the gradient)
edge("abs", "at_zero", lambda a: a.abs(), [[-1.5, -0.0, 0.0, 2.0]], [1.0, 2.0, 3.0, 4.0], [-1, 0, 0, 4])
edge("relu", "at_zero", relu, [[-1.0, 0.0, 2.0, -0.5]], [1.0, 2.0, 3.0, 4.0], [0, 0, 3, 0])
edge("leaky_relu", "at_zero", lambda a: leaky_relu(a, 0.1), [[-1.0, 0.0, 2.0]], [1.0, 2.0, 3.0],
     [0.1, 0.2, 3.0])
edge("clip", "at_both_bounds", lambda a: a.clip(-0.5, 0.5), [[-1.0, -0.5, 0.0, 0.5, 1.0]],
     [1.0, 2.0, 3.0, 4.0, 5.0], [0, 2, 3, 4, 0])
edge("clip", "min_only_at_bound", lambda a: a.clip(min=0.0), [[-1.0, 0.0, 1.0]], [1.0, 2.0, 3.0], [0, 2, 3])
edge("clip", "max_only_at_bound", lambda a: a.clamp(max=0.5), [[-1.0, 0.5, 1.0]], [1.0, 2.0, 3.0], [1, 2, 0])
# a ** 0 has slope 0 in a (even at a = 0, or a < 0); 0 ** b (b >= 0) has slope 0 in b
edge("pow", "zero_exponent_slope_in_base", lambda a, b: a ** b, [[0.0, 0.0, -2.0, 0.0, 2.0], [0.0, 2.0, 0.0, 3.0, 3.0]],
     [1.0, 1.0, 1.0, 1.0, 1.0], [0, 0, 0, 0, 12])
edge("pow", "zero_base_slope_in_exponent", lambda a, b: a ** b, [[0.0, 0.0, 1.5, 2.0], [0.0, 2.0, 0.0, 3.0]],
     [1.0, 1.0, 1.0, 1.0], [0, 0, 0, 12], [0, 0, np.log(1.5), 8 * np.log(2)], wrt=(0, 1))

# saturated inputs: the saved forward values give 0 (or 1), never inf - inf or 0 / 0
WIDE = np.array([-1000.0, -30.0, -1.0, 0.0, 1.0, 30.0, 1000.0])
G7 = np.linspace(0.5, 2.0, 7)
edge("sigmoid", "saturated", sigmoid, [WIDE], G7, G7 * _sigmoid64(WIDE) * (1 - _sigmoid64(WIDE)))
edge("tanh", "saturated", tanh, [WIDE], G7, G7 * (1 - np.tanh(WIDE) ** 2))
edge("gelu", "saturated", gelu, [WIDE], G7, G7 * _gelu_slope64(WIDE))
LOGITS = np.array([[1000.0, 0.0, -1000.0], [1000.0, 1000.0, 0.0], [-1000.0, -1000.0, -1000.0], [3.0, -2.0, 0.5]])
G43 = r(4, 3, seed=5)
_S1 = _softmax64(LOGITS, 1)
edge("softmax", "saturated", lambda a: softmax(a, 1), [LOGITS], G43, _S1 * (G43 - (G43 * _S1).sum(1, keepdims=True)))
_S0 = _softmax64(LOGITS, 0)
edge("softmax", "saturated_dim0", lambda a: softmax(a, 0), [LOGITS], G43,
     _S0 * (G43 - (G43 * _S0).sum(0, keepdims=True)))
edge("log_softmax", "saturated", lambda a: log_softmax(a, 1), [LOGITS], G43, G43 - _S1 * G43.sum(1, keepdims=True))
_Y = np.array([2, 0, 1, 0])
_ONEHOT = np.eye(3)[_Y]
edge("cross_entropy", "saturated", lambda x, y: CrossEntropyLoss()(x, y), [LOGITS, _Y], 1.0, (_S1 - _ONEHOT) / 4)
edge("cross_entropy", "saturated_smoothing_sum",
     lambda x, y: CrossEntropyLoss(label_smoothing=0.2, reduction="sum")(x, y), [LOGITS, _Y], 2.0,
     2.0 * (_S1 - (0.8 * _ONEHOT + 0.2 / 3)))
_BX, _BY = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0]), np.array([0.0, 1.0, 1.0, 0.0, 1.0])
edge("bce_with_logits", "saturated", lambda x, y: BCEWithLogitsLoss()(x, y), [_BX, _BY], 1.0,
     (_sigmoid64(_BX) - _BY) / 5)
# probabilities at exactly 0 and 1 with the matching label: the gradient is 0, not 0 / 0
edge("bce", "p_at_0_and_1", lambda p, y: BCELoss()(p, y), [[0.0, 1.0, 0.25, 0.5], [0.0, 1.0, 1.0, 0.0]], 1.0,
     [0, 0, -1, 0.5])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("op", [p for p in OP_PARAMS if p.values[0] in EDGES])
def test_backward_kinks_and_extremes(op, dtype):
    """PyTorch's gradient at the kinks and at saturated inputs, with or without torch installed."""
    for label, (fn, inputs, wrt, g, expected) in EDGES[op].items():
        name = f"{rule_name(op)} ({label}, {np.dtype(dtype).name})"
        ts = [Tensor(a.astype(dtype), requires_grad=i in wrt) if a.dtype.kind == "f" else Tensor(a)
              for i, a in enumerate(inputs)]
        out = fn(*ts)
        check_rules(out, name)
        with np.errstate(all="ignore"):  # an overflow shows up in the values compared below
            out.backward(Tensor(g.astype(dtype)))
        for i, want in zip(wrt, expected):
            got = grad_of(ts[i], name)
            if not np.isfinite(got).all():
                raise AssertionError(f"{name}: non-finite gradient {got.tolist()} for input {i} = "
                                     f"{inputs[i].tolist()} (expected {want.tolist()}): use the values "
                                     "the forward pass saved, not a formula that overflows")
            assert_close(got, want, f"{name} (gradient of input {i}, as PyTorch)", inputs, atol=1e-5, rtol=1e-4)


@pytest.mark.task("pow_backward")
def test_pow_backward_zero_base_negative_exponent():
    """Only 0 ** b with b >= 0 has slope 0 in b; for b < 0, 0 ** b = inf and (like PyTorch) the slopes
    are -inf: masking them would hide the pole."""
    a = Tensor(np.zeros(3), dtype=np.float64, requires_grad=True)
    b = Tensor(np.array([-0.5, -1.0, -2.0]), dtype=np.float64, requires_grad=True)
    with np.errstate(all="ignore"):
        (a ** b).backward(np.ones(3))
    got = grad_of(b, "pow_backward (0 ** b, b < 0)")
    if not np.all(got == -np.inf):
        raise AssertionError(f"pow_backward: d(0 ** b)/db for b = {b.data.tolist()} gave {got.tolist()}, expected "
                             "-inf each (0 ** b * log 0 = inf * -inf, as PyTorch): only b >= 0 is masked to 0")


# ---------------------------------------------------------------------------------------------
# Composite graphs
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("backward")
def test_backward_composite_mlp():
    """A small MLP + cross-entropy: many rules chained, shared weights, broadcast biases."""
    x, w1, b1, w2, b2 = r(5, 4), r(4, 6, seed=1), r(6, seed=2), r(6, 3, seed=3), r(3, seed=4)
    y = labels(5, 3)

    def net(x, w1, b1, w2, b2, y):
        h = gelu(x @ w1 + b1)
        return CrossEntropyLoss()(relu(h) @ w2 + b2, y) + MSELoss()(h.mean(axis=0), np.zeros(6))

    gradcheck(net, x, w1, b1, w2, b2, y, name="backward (MLP: matmul + add + gelu + relu + cross_entropy)")


# ---------------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------------
def grad_of(t: Tensor, name: str) -> np.ndarray:
    if t.grad is None:
        raise AssertionError(f"{name}: the leaf received no gradient (.grad is None)")
    if not isinstance(t.grad, Tensor):
        raise AssertionError(f"{name}: .grad is a {type(t.grad).__name__}, expected a Tensor")
    return t.grad.data


@pytest.mark.task("backward")
def test_backward_long_chain_no_recursion():
    """A 10,000-op chain backpropagates (an iterative topological sort, not a recursive one)."""
    x = Tensor(np.array(1.0), dtype=np.float64, requires_grad=True)
    y = x
    for _ in range(5000):
        y = (y * 1.0001) + 0.5
    y.backward()
    assert_close(grad_of(x, "backward (10,000-op chain)"), 1.0001 ** 5000,
                 "backward (10,000-op chain: d/dx = 1.0001^5000)", rtol=1e-9)
    order = topological_order(y)
    assert len(order) == 10001, f"topological_order: {len(order)} nodes for a 10,000-op chain, expected 10001"


@pytest.mark.task("backward")
def test_backward_twice_accumulates_like_torch():
    """Two forward+backward passes, and backward twice on one graph, both ADD into .grad."""
    x0, w0 = np.array([1.0, -2.0, 3.0], np.float32), np.array([0.5, 1.5, -1.0], np.float32)
    x = Tensor(x0.copy(), requires_grad=True)
    w = Tensor(w0.copy(), requires_grad=True)
    for _ in range(2):  # two separate forward passes
        (x * w).sum().backward()
    assert_close(grad_of(x, "backward"), 2 * w0, "backward (two passes accumulate: x.grad = 2w)", [x0, w0])
    loss = (x * x * w).sum()
    loss.backward()
    loss.backward()  # twice on the same graph (torch needs retain_graph=True)
    expected_x, expected_w = 2 * w0 + 2 * (2 * x0 * w0), 2 * x0 + 2 * x0 * x0
    assert_close(grad_of(x, "backward"), expected_x, "backward (twice on one graph accumulates)", [x0, w0])
    assert_close(grad_of(w, "backward"), expected_w, "backward (twice on one graph accumulates)", [x0, w0])
    try:
        import torch
    except ImportError:
        return
    xt, wt = torch.tensor(x0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    for _ in range(2):
        (xt * wt).sum().backward()
    lt = (xt * xt * wt).sum()
    lt.backward(retain_graph=True)
    lt.backward()
    assert_close(grad_of(x, "backward"), xt.grad.numpy(), "backward (accumulation vs PyTorch)", [x0, w0])
    assert_close(grad_of(w, "backward"), wt.grad.numpy(), "backward (accumulation vs PyTorch)", [x0, w0])


@pytest.mark.task("backward")
def test_backward_grad_zeroing_and_no_aliasing():
    """Setting .grad = None (zero_grad) starts fresh; leaves' .grad arrays never alias each other."""
    a0, b0 = np.array([1.0, 2.0], np.float32), np.array([3.0, 4.0], np.float32)
    a, b = Tensor(a0.copy(), requires_grad=True), Tensor(b0.copy(), requires_grad=True)
    (a + b).sum().backward()
    a.grad.data += 10  # in place: must not change b.grad
    assert_close(grad_of(b, "backward"), [1.0, 1.0], "backward (a.grad and b.grad must be separate arrays)")
    a.grad = None
    b.grad.data[...] = 0
    (a * b).sum().backward()
    assert_close(grad_of(a, "backward"), b0, "backward (after a.grad = None: a fresh gradient)", [a0, b0])
    assert_close(grad_of(b, "backward"), a0, "backward (after zeroing b.grad in place)", [a0, b0])
    assert a.grad.dtype == np.float32 and not a.grad.requires_grad, \
        f"backward: .grad must be a float32 Tensor without a graph, got {a.grad.dtype}"


@pytest.mark.task("backward")
def test_backward_two_leaves_fed_one_array():
    """add's rule hands the same array to both parents: two leaves of the output's shape, seeded,
    must still get .grad arrays of their own."""
    a, b = Tensor(np.ones(3, np.float32), requires_grad=True), Tensor(np.ones(3, np.float32), requires_grad=True)
    call("backward", (a + b).backward, np.array([1.0, 2.0, 3.0], np.float32))
    ga, gb = grad_of(a, "backward (a + b, seeded)"), grad_of(b, "backward (a + b, seeded)")
    if np.shares_memory(ga, gb):
        raise AssertionError("backward (a + b, seeded): a.grad and b.grad are one array (add's rule returns g "
                             "for both parents); copy an array another leaf already holds")
    ga += 10  # in place, as an optimizer does
    assert_close(gb, [1.0, 2.0, 3.0], "backward (a + b, seeded: b.grad after an in-place update of a.grad)")


@pytest.mark.task("backward")
def test_backward_rule_may_return_none(monkeypatch):
    """A rule may return None for a parent that requires grad (no gradient flows there, like a torch
    Function returning None): that parent, a leaf or an op node, gets nothing and the walk goes on."""
    monkeypatch.setitem(BACKWARD, "first_only", lambda g, out: (g, None))
    x = Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    w = Tensor(np.array([3.0, 4.0], np.float32), requires_grad=True)
    h = w * 2.0  # an op node that receives no gradient
    out = Tensor._make(x.data + h.data, (x, h), "first_only") + Tensor._make(x.data + w.data, (x, w), "first_only")
    call("backward", out.sum().backward)
    assert_close(grad_of(x, "backward (a rule returning None for one parent)"), [2.0, 2.0],
                 "backward (a rule returning None for one parent: the other parent's gradient)")
    if w.grad is not None:
        raise AssertionError("backward: a leaf reached only through None gradients must keep .grad None, got "
                             f"{w.grad.data.tolist()}")


@pytest.mark.task("backward")
def test_backward_op_without_a_rule_names_it():
    """A node whose op has no rule in BACKWARD: backward raises an error that names the op."""
    x = Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    out = Tensor._make(x.data * 3.0, (x,), "op_without_a_rule")
    expect_error("backward", Exception, out.sum().backward, match="op_without_a_rule")


@pytest.mark.task("backward")
def test_backward_leaf_grad_keeps_the_leaf_dtype(monkeypatch):
    """A leaf's .grad is in the leaf's dtype, first pass and accumulated, even when a rule hands back
    another dtype (torch's engine casts it too): float32 weights keep float32 gradients."""
    monkeypatch.setitem(BACKWARD, "float64_rule", lambda g, out: (g.astype(np.float64),))
    x = Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    for n in (1, 2):
        call("backward", Tensor._make(x.data * 1.0, (x,), "float64_rule").sum().backward)
        got = grad_of(x, "backward (a rule returning float64 for a float32 leaf)")
        if got.dtype != np.float32:
            raise AssertionError(f"backward: after {n} pass(es) the float32 leaf's .grad is {got.dtype}; cast a "
                                 "leaf's gradient to its dtype before storing or adding it")
        assert_close(got, [float(n)] * 2, f"backward (a float64 rule, {n} pass(es))")


@pytest.mark.task("backward")
def test_backward_leaf_grads_are_writable_arrays_of_their_own():
    """Optimizers update .grad in place (clip_grad_norm_, weight decay): every leaf's .grad must be
    a writable array that shares memory with nothing else - not a read-only broadcast view from
    sum's rule, not the seed gradient, not another leaf's gradient, not the data."""
    x0 = np.arange(6, dtype=np.float32).reshape(2, 3)
    seed = np.ones((2, 3), np.float32)
    graphs = {
        "x.sum()": lambda x, w: x.sum(),
        "x.reshape(6).sum()": lambda x, w: x.reshape(6).sum(),
        "x.T.mean()": lambda x, w: x.T.mean(),
        "(x + w).sum(), w of shape (3,)": lambda x, w: (x + w).sum(),
        "x[0].sum() + w.sum()": lambda x, w: x[0].sum() + w.sum(),
        "x + 0, seeded": lambda x, w: x + 0.0,
        "x itself, seeded": lambda x, w: x,
    }
    for label, build in graphs.items():
        x = Tensor(x0.copy(), requires_grad=True)
        w = Tensor(np.ones(3, np.float32), requires_grad=True)
        out = build(x, w)
        given = seed.copy()
        out.backward(given if out.shape else None)
        others = {"its data": x.data, "the seed gradient": given, "w.grad": None if w.grad is None else w.grad.data}
        gx = grad_of(x, f"backward ({label})")
        for what, arr in others.items():
            if arr is not None and np.shares_memory(gx, arr):
                raise AssertionError(f"backward ({label}): x.grad shares memory with {what}; store a copy "
                                     "(an optimizer's in-place update would change both)")
        with blame(f"backward ({label})", "x.grad must be writable: optimizers update it in place; "
                   "copy a read-only broadcast view before storing it as .grad"):
            gx *= 2.0
        if w.grad is not None:
            assert not np.shares_memory(w.grad.data, gx), f"backward ({label}): w.grad and x.grad share memory"


@pytest.mark.task("backward")
def test_backward_requires_grad_propagation():
    """Only leaves with requires_grad get gradients; results of constants record no graph."""
    x0, c0 = np.array([1.0, 2.0, 3.0], np.float32), np.array([4.0, 5.0, 6.0], np.float32)
    x, c = Tensor(x0.copy(), requires_grad=True), Tensor(c0.copy())
    const = c * c + 1
    assert not const.requires_grad and const._op is None and const._parents == (), \
        "Tensor._make: an op on constants must not require grad or keep parents"
    y = (x * c + const).sum()
    assert y.requires_grad, "Tensor._make: an op with a requires_grad input must require grad"
    y.backward()
    assert_close(grad_of(x, "backward"), c0, "backward (d/dx sum(x*c + c*c + 1) = c)", [x0, c0])
    assert c.grad is None, "backward: a constant (requires_grad=False) must not receive .grad"
    with pytest.raises(RuntimeError):
        const.sum().backward()  # nothing requires grad
    z = Tensor(c0.copy()).requires_grad_()
    (z * 2).sum().backward()
    assert_close(grad_of(z, "backward"), [2.0, 2.0, 2.0], "backward (after requires_grad_())", [c0])


@pytest.mark.task("backward")
def test_backward_detach():
    """detach() shares the data but cuts the graph: no gradient flows through it."""
    x0 = np.array([1.0, -1.0, 2.0], np.float32)
    x = Tensor(x0.copy(), requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and np.shares_memory(d.data, x.data), "Tensor.detach: must share data, no grad"
    (x * 2 + d * 3 + (x * d).detach()).sum().backward()
    assert_close(grad_of(x, "backward"), [2.0, 2.0, 2.0], "backward (detached terms give no gradient)", [x0])


@pytest.mark.task("backward")
def test_backward_no_grad():
    """no_grad() (context and decorator) records no graph; recording resumes after it."""
    x0 = np.array([0.5, 1.5], np.float32)
    x = Tensor(x0.copy(), requires_grad=True)
    with no_grad():
        assert not is_grad_enabled(), "no_grad: is_grad_enabled() is True inside"
        y = x * 3
        with no_grad():
            pass
        assert not is_grad_enabled(), "no_grad: a nested no_grad turned recording back on"
    assert is_grad_enabled(), "no_grad: recording is still off after the with block"
    assert not y.requires_grad and y._op is None, "no_grad: an op inside no_grad recorded a graph"
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            1 / 0
    assert is_grad_enabled(), "no_grad: an exception inside left recording off"

    @no_grad()
    def double(t):
        """Doubles."""
        return t * 2

    z = double(x)
    assert not z.requires_grad and double.__name__ == "double", "no_grad as a decorator: recorded a graph"
    (x * x + y + z).sum().backward()  # y and z are constants: only x * x counts
    assert_close(grad_of(x, "backward"), 2 * x0, "backward (values made under no_grad are constants)", [x0])
    assert is_grad_enabled() and not x.grad.requires_grad, "backward: must not record a graph of its own"


@pytest.mark.task("backward")
def test_backward_non_scalar_root():
    """A non-scalar root needs an explicit gradient (like torch); with one, it is the seed."""
    x0 = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    x = Tensor(x0.copy(), requires_grad=True)
    y = x * x
    with pytest.raises(RuntimeError):
        y.backward()
    seed = np.array([[1.0, 0.0], [2.0, -1.0]], np.float32)
    y.backward(Tensor(seed.copy()))
    assert_close(grad_of(x, "backward"), 2 * x0 * seed, "backward (y.backward(grad): x.grad = grad * 2x)",
                 [x0, seed])
    x.grad = None
    y.backward(seed.copy())  # an ndarray works too
    assert_close(grad_of(x, "backward"), 2 * x0 * seed, "backward (y.backward(ndarray))", [x0, seed])
    one = Tensor(np.array([3.0], np.float32), requires_grad=True)
    (one * 2).backward()  # one element, shape (1,): allowed without grad
    assert_close(grad_of(one, "backward"), [2.0], "backward (one-element root of shape (1,))")
    leaf = Tensor(x0.copy(), requires_grad=True)
    leaf.backward(seed.copy())  # a leaf root: its grad is the seed
    assert_close(grad_of(leaf, "backward"), seed, "backward (on a leaf)", [seed])


@pytest.mark.task("backward")
def test_backward_diamond():
    """A value used by two consumers gets the SUM of their gradients, and only once complete."""
    x0 = np.array([1.0, -2.0, 0.5], np.float64)
    x = Tensor(x0.copy(), dtype=np.float64, requires_grad=True)
    (x * x + x).sum().backward()  # x used three times
    assert_close(grad_of(x, "backward"), 2 * x0 + 1, "backward (x*x + x: 2x + 1)", [x0])
    x.grad = None
    a = x * 2  # used by two branches of different depth
    b = a + 1
    c = ((a * 3).exp().log() * 1).sum(axis=None, keepdims=False)
    out = (b * c).sum()  # (2x + 1) * sum(6x)
    out.backward()
    s = (6 * x0).sum()
    expected = np.full(3, 2 * s + 6 * (2 * x0 + 1).sum())
    assert_close(grad_of(x, "backward"), expected, "backward (diamond through an intermediate)", [x0])


@pytest.mark.task("backward")
def test_backward_does_not_modify_forward_values():
    """backward() must leave every tensor's data as it was (no in-place updates in rules)."""
    x0, w0 = r(3, 4).astype(np.float32), r(4, 2, seed=1).astype(np.float32)
    x, w = Tensor(x0.copy(), requires_grad=True), Tensor(w0.copy(), requires_grad=True)
    h = relu(x @ w)
    p = softmax(h)
    loss = CrossEntropyLoss()(h, np.array([0, 1, 1])) + (p * p).sum()
    snap = [t.data.copy() for t in (x, w, h, p, loss)]
    loss.backward()
    for t, before, name in zip((x, w, h, p, loss), snap, ("x", "w", "relu(x @ w)", "softmax", "loss")):
        assert np.array_equal(t.data, before), f"backward: changed the forward value of {name} in place"
    assert grad_of(x, "backward").shape == x.shape and grad_of(w, "backward").shape == w.shape, \
        "backward: gradient shapes differ from their tensors"


# ---------------------------------------------------------------------------------------------
# unbroadcast and topological_order
# ---------------------------------------------------------------------------------------------
UNBROADCAST = {
    "drop_leading": ((4, 3), (3,)),
    "keep_size1": ((4, 3), (4, 1)),
    "both": ((2, 3, 4), (1, 3, 1)),
    "to_0d": ((2, 3), ()),
    "to_one": ((5,), (1,)),
    "leading_and_inner": ((2, 4, 3), (4, 1)),
    "4d_to_3d": ((2, 3, 4, 5), (3, 1, 5)),
    "5d_inner_ones": ((2, 1, 3, 2, 2), (1, 1, 3, 1, 2)),
    "size1_from_empty": ((0, 3), (1, 3)),  # a (1, 3) bias broadcast against an empty batch: zeros
}


@pytest.mark.task("unbroadcast")
@pytest.mark.parametrize("case_", list(UNBROADCAST))
def test_unbroadcast(case_):
    big, small = UNBROADCAST[case_]
    g = r(*big, seed=3)
    extra = len(big) - len(small)
    expected = g.sum(axis=tuple(range(extra))) if extra else g
    axes = tuple(i for i, n in enumerate(small) if n == 1 and expected.shape[i] != 1)
    expected = expected.sum(axis=axes, keepdims=True) if axes else expected
    assert_close(call("unbroadcast", unbroadcast, g, small), expected, f"unbroadcast ({big} -> {small})", [g])
    assert_close(call("unbroadcast", unbroadcast, g, big), g, f"unbroadcast ({big} -> {big}: unchanged)", [g])


@pytest.mark.task("unbroadcast")
@SETTINGS
@given(shapes=PAIRS, seed=st.integers(0, 2**16))
@example(shapes=((1, 3, 1), (2, 1, 4)), seed=0)
@example(shapes=((), (2, 3)), seed=0)
def test_unbroadcast_is_adjoint_of_broadcast(shapes, seed):
    """<unbroadcast(G, s), v> == <G, broadcast(v)> for every v: the defining property."""
    small = shapes[0]
    big = np.broadcast_shapes(*shapes)
    g, v = r(*big, seed=seed), r(*small, seed=seed + 1)
    got = np.asarray(unbroadcast(g, small))
    assert got.shape == small, f"unbroadcast: shape {got.shape} for {big} -> {small}"
    lhs, rhs = float((got * v).sum()), float((g * np.broadcast_to(v, big)).sum())
    assert abs(lhs - rhs) < 1e-9 * max(1.0, abs(rhs)), f"unbroadcast: wrong sums for {big} -> {small}"


@pytest.mark.task("topological_order")
def test_topological_order_diamond():
    """Each needed node once, parents before children, root last; constants left out."""
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    w = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    c = Tensor(np.array([5.0, 6.0]))  # constant
    a = x * w
    b = a + c
    d = a.exp()
    e = b * d
    root = e.sum()
    order = topological_order(root)
    names = {id(x): "x", id(w): "w", id(a): "a", id(b): "b", id(d): "d", id(e): "e", id(root): "root"}
    seq = [names.get(id(n), "?") for n in order]
    assert sorted(seq) == sorted(names.values()), \
        f"topological_order: got {seq}, expected each of {sorted(names.values())} exactly once (no constants)"
    pos_ = {id(n): i for i, n in enumerate(order)}
    for n in order:
        for p in n._parents:
            if p.requires_grad and pos_[id(p)] > pos_[id(n)]:
                raise AssertionError(f"topological_order: {names[id(p)]} comes after its child "
                                     f"{names[id(n)]}: {seq}")
    assert order[-1] is root, f"topological_order: the root must come last: {seq}"


@pytest.mark.task("topological_order")
def test_topological_order_shared_ladder():
    """Every step uses the previous node twice: still each node once (a visited set, not a tree walk)."""
    x = Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(12):
        y = y + y * 0.5  # 2^12 paths, but only 2 new nodes per step
    order = topological_order(y)
    assert len(order) == 25 and order[0] is x and order[-1] is y, \
        f"topological_order: {len(order)} nodes for a 12-step ladder, expected 25 (x first, root last)"
    y.backward()
    assert_close(grad_of(x, "backward"), 1.5 ** 12, "backward (12-step ladder: d/dx = 1.5^12)")
