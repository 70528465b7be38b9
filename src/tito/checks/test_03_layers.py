"""Checks for module 03 (layers): Module bookkeeping, Linear, Sequential, Dropout, Flatten.

Forward only: these checks never call backward(), so they pass before module 06 (autograd)
exists. What they do check is that the outputs are *recorded* in the graph (built from Tensor
ops), so that module 06 can differentiate them later; the gradients themselves are checked by
module 06's checks and the maintainers' tests.

Every expectation is computed from a copy taken before the call (`Tensor(x)` shares x's memory:
a layer that wrote into its input would otherwise be compared with itself), and a crash in a
check's own code (a missing attribute, a read-only array) names the function whose result it was.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinytorch.tensor as tt
from tinytorch.activations import ReLU, Tanh
from tinytorch.layers import Dropout, Flatten, Linear, Module, Parameter, Sequential
from tinytorch.tensor import Tensor
from tito.checks.harness import (assert_close, blame, call,
                                   expect_error, hypothesis_settings, torch_or_skip)

SETTINGS = hypothesis_settings(max_examples=25)  # one minimal failure, reproducible


@pytest.fixture(autouse=True)
def _seed():
    tt.manual_seed(0)
    yield
    tt.manual_seed(0)


def forward(name: str, layer, x: np.ndarray, **tensor_kwargs):
    """layer(Tensor(x)) as a Tensor; fails (naming `name`) if it crashed, returned something else,
    or wrote into x (Tensor(x) shares x's memory)."""
    before = x.copy()
    out = call(name, layer, Tensor(x, **tensor_kwargs))
    if not isinstance(out, Tensor):
        raise AssertionError(f"{name}: returned {type(out).__name__}, expected a Tensor")
    if not np.array_equal(x, before):
        raise AssertionError(f"{name}: changed its input in place (x.data was modified); compute a new "
                             "array instead (x * mask, not x.data *= mask)")
    return out


def get_state(module) -> dict:
    """module.state_dict(), which must be a dict."""
    state = call("Module.state_dict", module.state_dict)
    if not isinstance(state, dict):
        raise AssertionError(f"Module.state_dict: returned {type(state).__name__}, expected a dict "
                             "{name: array}")
    return state


def make_linear(n_in: int, n_out: int, bias: bool = True, seed: int = 0):
    """A Linear layer with known random weights W (out, in) and b (out,), written in place."""
    layer = call("Linear.__init__", Linear, n_in, n_out, bias)
    w_shape = getattr(getattr(layer, "weight", None), "shape", None)
    if w_shape != (n_out, n_in):
        raise AssertionError(f"Linear.__init__: Linear({n_in}, {n_out}).weight has shape {w_shape}, "
                             f"expected (out_features, in_features) = {(n_out, n_in)}")
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n_out, n_in)).astype(np.float32)
    with blame("Linear.__init__", "writing known values into layer.weight.data in place"):
        layer.weight.data[...] = W
    b = None
    if bias:
        if getattr(layer.bias, "shape", None) != (n_out,):
            raise AssertionError(f"Linear.__init__: Linear({n_in}, {n_out}).bias has shape "
                                 f"{getattr(layer.bias, 'shape', None)}, expected {(n_out,)}")
        b = rng.standard_normal(n_out).astype(np.float32)
        with blame("Linear.__init__", "writing known values into layer.bias.data in place"):
            layer.bias.data[...] = b
    return layer, W, b


def reachable(out: Tensor) -> set[int]:
    """ids of every tensor the graph of `out` was recorded from (no autograd needed)."""
    seen, stack = set(), [out]
    while stack:
        t = stack.pop()
        if id(t) not in seen:
            seen.add(id(t))
            stack.extend(getattr(t, "_parents", ()))
    return seen


# ---------------------------------------------------------------------------------------------
# Linear
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("Linear")
@SETTINGS
@given(batch=st.sampled_from([(), (1,), (3,), (5,), (2, 4), (2, 1, 3), (2, 1, 2, 3)]),
       n_in=st.integers(1, 6), n_out=st.integers(1, 6), bias=st.booleans())
def test_linear_forward_matches_numpy(batch, n_in, n_out, bias):
    layer, W, b = make_linear(n_in, n_out, bias)
    x = np.random.default_rng(1).standard_normal((*batch, n_in)).astype(np.float32)
    expected = x.astype(np.float64) @ W.T.astype(np.float64) + (0 if b is None else b)
    out = forward("Linear.forward", layer, x)
    assert_close(out, expected, "Linear.forward (x @ W.T + b, W of shape (out, in))", [x, W], atol=1e-4)
    if out.dtype != np.float32:
        raise AssertionError(f"Linear.forward: float32 input gave a {out.dtype} output")


@pytest.mark.task("Linear")
def test_linear_forward_square_and_batched():
    """Square weights do not crash when transposed by mistake: the values must show it."""
    for n_in, n_out, batch in [(4, 4, (3,)), (3, 5, (2, 6)), (6, 2, (2, 3, 4)), (7, 7, (2, 5))]:
        layer, W, b = make_linear(n_in, n_out, seed=n_in + n_out)
        x = np.random.default_rng(2).standard_normal((*batch, n_in)).astype(np.float32)
        expected = x @ W.T + b
        out = forward("Linear.forward", layer, x)
        assert_close(out, expected, "Linear.forward (x @ W.T + b, W of shape (out, in))", [x, W], atol=1e-4)


@pytest.mark.task("Linear")
def test_linear_forward_vs_torch():
    torch = torch_or_skip()
    layer, W, b = make_linear(5, 3, seed=3)
    x = np.random.default_rng(4).standard_normal((2, 4, 5)).astype(np.float32)
    ref = torch.nn.functional.linear(torch.tensor(x), torch.tensor(W), torch.tensor(b)).numpy()
    out = forward("Linear.forward", layer, x)
    assert_close(out, ref, "Linear.forward (vs torch.nn.functional.linear)", [x, W, b])


@pytest.mark.task("Linear")
def test_linear_records_graph():
    layer, W, b = make_linear(4, 3)
    out = forward("Linear.forward", layer, np.ones((2, 4), np.float32))
    ids = reachable(out)
    for name in ("weight", "bias"):
        if id(getattr(layer, name)) not in ids:
            raise AssertionError(f"Linear.forward: the output is not computed from self.{name} with Tensor "
                                 "ops (the graph does not reach it), so module 06 could not train it; "
                                 "write it with Tensor ops, e.g. x @ self.weight.T + self.bias")
    with tt.no_grad():
        out = forward("Linear.forward", layer, np.ones((2, 4), np.float32))
    if out.requires_grad:
        raise AssertionError("Linear.forward: under no_grad() the output must not record a graph")
    nobias, _, _ = make_linear(4, 3, bias=False)
    ids = reachable(forward("Linear.forward", nobias, np.ones((2, 4), np.float32)))
    if id(nobias.weight) not in ids:
        raise AssertionError("Linear.forward: with bias=False the output is not computed from self.weight "
                             "with Tensor ops")


@pytest.mark.task("Linear")
def test_linear_init_shapes_and_parameters():
    layer, _, _ = make_linear(5, 3)
    for name, shape in (("weight", (3, 5)), ("bias", (3,))):
        p = getattr(layer, name)
        if not isinstance(p, Parameter) or p.dtype != np.float32 or not p.requires_grad:
            raise AssertionError(f"Linear.__init__: self.{name} must be a float32 Parameter (requires_grad), "
                                 f"got {type(p).__name__} {getattr(p, 'dtype', None)}")
    names = [n for n, _ in layer.named_parameters()]
    if names != ["weight", "bias"]:
        raise AssertionError(f"Linear.__init__: named_parameters() gave {names}, expected ['weight', 'bias']")
    empty = call("Linear.__init__", Linear, 0, 3)  # no inputs: k would be 1/sqrt(0); torch uses bound 0
    with blame("Linear.__init__", "Linear(0, 3).weight and .bias"):
        shapes, bias = (empty.weight.shape, empty.bias.shape), np.asarray(empty.bias.data)
    if shapes != ((3, 0), (3,)) or not np.array_equal(bias, np.zeros(3)):
        raise AssertionError(f"Linear.__init__: Linear(0, 3) gave weight/bias shapes {shapes} and bias {bias}; "
                             "expected (3, 0), (3,) and a bias of zeros (with no inputs the bound k is 0, "
                             "as in torch)")
    nobias = call("Linear.__init__", Linear, 5, 3, False)
    if getattr(nobias, "bias", "missing") is not None:
        raise AssertionError("Linear.__init__: with bias=False, self.bias must be None")
    if [n for n, _ in nobias.named_parameters()] != ["weight"]:
        raise AssertionError("Linear.__init__: with bias=False the only parameter is 'weight'")
    text = call("Linear.__repr__", repr, nobias)
    if "in_features=5, out_features=3, bias=False" not in text:
        raise AssertionError(f"Linear.__repr__: {text!r} should say in_features=5, out_features=3, bias=False")
    expect_error("Linear.forward (an input with 4 features for Linear(5, 3))", ValueError,
                 nobias, Tensor(np.ones((2, 4), np.float32)))
    x = np.random.default_rng(0).standard_normal((2, 5)).astype(np.float32)
    with blame("Linear.__init__", "Linear(5, 3, bias=False).weight.data"):
        expected = x @ nobias.weight.data.T
    assert_close(forward("Linear.forward", nobias, x), expected, "Linear.forward (bias=False: x @ W.T)", [x])
    if getattr(nobias, "bias", "missing") is not None:
        raise AssertionError("Linear.forward: with bias=False, self.bias must stay None")


@pytest.mark.task("Linear")
def test_linear_init_bounds_and_statistics():
    n_in, n_out = 256, 300
    layer = call("Linear.__init__", Linear, n_in, n_out)
    k = 1 / np.sqrt(n_in)
    with blame("Linear.__init__", "self.weight.data and self.bias.data"):
        params = (("weight", layer.weight.data), ("bias", layer.bias.data))
    for name, p in params:
        v = np.asarray(p, dtype=np.float64)
        if np.abs(v).max() > k * (1 + 1e-6):
            raise AssertionError(f"Linear.__init__: {name} values reach {np.abs(v).max():.4f}, outside "
                                 f"U(-1/sqrt(in), 1/sqrt(in)) = U(-{k:.4f}, {k:.4f})")
        if np.abs(v).max() < 0.9 * k:
            raise AssertionError(f"Linear.__init__: {name} values stay within {np.abs(v).max():.4f}; "
                                 f"expected them to fill U(-{k:.4f}, {k:.4f})")
    w = np.asarray(params[0][1], dtype=np.float64)
    if abs(w.mean()) > 0.02 * k or abs(w.std() - k / np.sqrt(3)) > 0.03 * k / np.sqrt(3):
        raise AssertionError(f"Linear.__init__: weight mean {w.mean():.4g}, std {w.std():.4g}; "
                             f"U(-k, k) with k = {k:.4g} has mean 0 and std {k / np.sqrt(3):.4g}")


@pytest.mark.task("Linear")
def test_linear_init_is_seeded():
    tt.manual_seed(7)
    a = call("Linear.__init__", Linear, 6, 4)
    tt.manual_seed(7)
    b = call("Linear.__init__", Linear, 6, 4)
    c = call("Linear.__init__", Linear, 6, 4)
    with blame("Linear.__init__", "self.weight.data and self.bias.data"):
        same = np.array_equal(a.weight.data, b.weight.data) and np.array_equal(a.bias.data, b.bias.data)
    if not same:
        raise AssertionError("Linear.__init__: after the same manual_seed two layers differ; draw the initial "
                             "values from tinytorch's generator (tinytorch.tensor.default_generator())")
    if np.array_equal(b.weight.data, c.weight.data):
        raise AssertionError("Linear.__init__: two layers made one after the other have the same weights")


@pytest.mark.task("Linear")
def test_linear_weights_editable_in_place():
    """Milestones 01 and 02 train without autograd: they edit layer.weight.data by hand."""
    layer, W, b = make_linear(3, 2)
    x = np.random.default_rng(5).standard_normal((4, 3)).astype(np.float32)
    with tt.no_grad():
        forward("Linear.forward", layer, x)
        weight = layer.weight
        with blame("Linear.__init__", "editing layer.weight.data and layer.bias.data in place"):
            layer.weight.data += 1.0
            layer.bias.data -= 0.5
        out = forward("Linear.forward", layer, x)
    if layer.weight is not weight:
        raise AssertionError("Linear.forward: it replaced self.weight; a layer must keep its Parameter objects")
    assert_close(out, x @ (W + 1).T + (b - 0.5), "Linear.forward (after editing weight.data in place: "
                 "read self.weight when called, do not cache it)", [x, W])


# ---------------------------------------------------------------------------------------------
# Module: registration, modes, gradients, state
# ---------------------------------------------------------------------------------------------
class Affine(Module):
    """A layer written the way a learner writes one (the Module checks do not depend on Linear)."""

    def __init__(self, n_in: int, n_out: int, seed: int = 0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.weight = Parameter(rng.standard_normal((n_out, n_in)))
        self.bias = Parameter(rng.standard_normal(n_out))

    def forward(self, x):
        return x @ self.weight.T + self.bias


class Net(Module):
    def __init__(self, seed: int = 0):
        super().__init__()
        self.fc1 = Affine(3, 4, seed)
        self.act = ReLU()
        self.block = Sequential(Affine(4, 4, seed + 1), Tanh(), Sequential(Affine(4, 2, seed + 2)))
        self.scale = Parameter(np.ones(2))
        self.note = Tensor([1.0, 2.0])  # a plain Tensor: not a parameter
        self.head = Affine(3, 4, seed + 3)
        self.head.weight = self.fc1.weight  # tied: counted once
        self.again = self.block  # the same module twice: counted once

    def forward(self, x):
        return self.block(self.act(self.fc1(x))) * self.scale


# the order torch uses: a module's own parameters first, then its children's, depth first
NET_PARAMS = ["scale", "fc1.weight", "fc1.bias", "block.0.weight", "block.0.bias", "block.2.0.weight",
              "block.2.0.bias", "head.bias"]


@pytest.mark.task("Module")
def test_named_parameters_nested():
    net = Net()
    names = [n for n, _ in call("Module.named_parameters", lambda: list(net.named_parameters()))]
    if names != NET_PARAMS:
        raise AssertionError(f"Module.named_parameters: got {names}, expected {NET_PARAMS} (own parameters "
                             "first, then each child's in attribute order, nested names joined by '.', "
                             "shared parameters and modules once)")
    params = call("Module.parameters", net.parameters)
    expect = [net.scale, net.fc1.weight, net.fc1.bias, net.block[0].weight, net.block[0].bias,
              net.block[2][0].weight, net.block[2][0].bias, net.head.bias]
    if len(params) != len(expect) or any(p is not q for p, q in zip(params, expect)):
        raise AssertionError("Module.parameters: must return the Parameter objects themselves, in the "
                             "order of named_parameters()")
    if not all(isinstance(p, Parameter) and p.dtype == np.float32 and p.requires_grad for p in params):
        raise AssertionError("Module.named_parameters: every parameter must be a float32 Parameter")


@pytest.mark.task("Module")
def test_named_parameters_skips_plain_functions():
    """A plain function in a Sequential is a layer without parameters - also a builtin one such as
    operator.neg, which has no attributes at all (vars() of it raises a TypeError)."""
    import operator

    fc = Affine(3, 2, seed=7)
    seq = Sequential(fc, operator.neg, lambda t: t * 2.0)
    names = [n for n, _ in call("Module.named_parameters", lambda: list(seq.named_parameters()))]
    if names != ["0.weight", "0.bias"]:
        raise AssertionError(f"Module.named_parameters: got {names} for Sequential(Linear, operator.neg, a lambda), "
                             "expected ['0.weight', '0.bias']: look for Parameters in the Modules only")


@pytest.mark.task("Module")
def test_module_given_parts():
    """Parameter (float32, requires_grad unless told otherwise), __call__ passing keywords to forward,
    named_buffers: the given pieces the rest builds on."""
    p = Parameter(np.ones((2, 2)))  # float64 in
    if not isinstance(p, Tensor) or p.dtype != np.float32 or not p.requires_grad:
        raise AssertionError(f"Parameter: got {type(p).__name__} {p.dtype} requires_grad={p.requires_grad}, "
                             "expected a float32 Tensor that requires grad")
    frozen, wide = Parameter(np.ones(2), requires_grad=False), Parameter(np.ones(2), dtype=np.float64)
    if frozen.requires_grad or wide.dtype != np.float64:
        raise AssertionError("Parameter: requires_grad=False / dtype=float64 were ignored")
    if not repr(p).startswith("Parameter containing"):
        raise AssertionError(f"Parameter.__repr__: {repr(p)!r}")

    class Scaled(Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("steps", np.zeros(1, np.float32))

        def forward(self, x, scale=1.0):
            return x * scale

    m = Scaled()
    out = call("Module.__call__", lambda: m(Tensor([1.0, 2.0]), scale=3.0))
    assert_close(out, [3.0, 6.0], "Module.__call__ (keywords go to forward)")
    names = [n for n, _ in call("Module.named_buffers", lambda: list(Sequential(m).named_buffers()))]
    if names != ["0.steps"]:
        raise AssertionError(f"Module.named_buffers: got {names}, expected ['0.steps']")


@pytest.mark.task("Module")
def test_children_and_modules():
    net = Net()
    kids = call("Module.children", net.children)
    if len(kids) != 4 or kids[0] is not net.fc1 or kids[1] is not net.act or kids[2] is not net.block:
        raise AssertionError(f"Module.named_children: got {[type(k).__name__ for k in kids]}, expected the "
                             "attributes that are layers, in order: fc1 (Affine), act (ReLU), block "
                             "(Sequential), head (Affine); `again` is the same block and counts once")
    names = [n for n, _ in call("Module.named_modules", lambda: list(net.named_modules()))]
    expect = ["", "fc1", "act", "block", "block.0", "block.1", "block.2", "block.2.0", "head"]
    if names != expect:
        raise AssertionError(f"Module.named_modules: got {names}, expected {expect} (self first, depth first, "
                             "each module once)")
    named = call("Module.named_modules", lambda: list(net.named_modules(prefix="model")))
    names = [n for n, _ in named]
    expect = ["model"] + [f"model.{n}" for n in expect[1:]]
    if names != expect:
        raise AssertionError(f"Module.named_modules: with prefix='model' got {names}, expected {expect} (the "
                             "prefix names self and starts every path below it)")
    if named[3][1] is not net.block or named[7][1] is not net.block[2][0]:
        raise AssertionError("Module.named_modules: must yield the module objects themselves")
    mods = call("Module.modules", net.modules)
    if len(mods) != 9 or mods[0] is not net:
        raise AssertionError(f"Module.modules: {len(mods)} modules, expected 9, self first")
    shared, act = Affine(2, 2), Tanh()
    tree = Sequential(shared, act, Sequential(shared, act))  # the same layers under two parents
    names = [n for n, _ in call("Module.named_modules", lambda: list(tree.named_modules()))]
    if names != ["", "0", "1", "2"]:
        raise AssertionError(f"Module.named_modules: got {names} for Sequential(a, act, Sequential(a, act)), "
                             "expected ['', '0', '1', '2']: a layer reached twice (through two parents) "
                             "counts once, like torch")


@pytest.mark.task("Module")
def test_train_eval_reaches_nested_modules():
    inner = Dropout(0.5)
    net = Sequential(Affine(3, 3), Sequential(inner, ReLU()))
    if call("Module.eval", net.eval) is not net:
        raise AssertionError("Module.eval: must return the module itself (model = model.eval())")
    flags = [m.training for m in net.modules() if isinstance(m, Module)]
    if any(flags):
        raise AssertionError(f"Module.train: after eval() the .training flags are {flags}, expected all False")
    x = np.random.default_rng(0).standard_normal((50, 3)).astype(np.float32)
    expected = x.copy()
    assert_close(forward("Dropout.forward", inner, x), expected, "Dropout.forward (in eval mode: the identity)",
                 [x])
    if call("Module.train", net.train) is not net:
        raise AssertionError("Module.train: must return the module itself (model = model.train())")
    if not all(m.training for m in net.modules() if isinstance(m, Module)):
        raise AssertionError("Module.train: after train() every nested module must have .training True")
    out = forward("Dropout.forward", inner, np.ones((50, 20), np.float32))
    if not (out.data == 0).any():
        raise AssertionError("Dropout.forward: back in train mode nothing was dropped")
    if call("Module.train", net.train, False) is not net:
        raise AssertionError("Module.train: train(False) must return the module itself")
    flags = [m.training for m in net.modules() if isinstance(m, Module)]
    if any(flags):
        raise AssertionError(f"Module.train: after train(False) the .training flags are {flags}, expected all "
                             "False (train(False) is eval())")
    net.train(True)
    inner.eval()  # only the inner one
    if not net.training or inner.training:
        raise AssertionError("Module.train: inner.eval() must switch off only that module and the ones below it")


@pytest.mark.task("Module")
def test_zero_grad_sets_none():
    net = Net()
    for p in net.parameters():
        p.grad = Tensor(np.ones(p.shape, np.float32))
    call("Module.zero_grad", net.zero_grad)
    left = [n for n, p in net.named_parameters() if p.grad is not None]
    if left:
        raise AssertionError(f"Module.zero_grad: gradients of {left} are still set; set every .grad to None")


@pytest.mark.task("Module")
def test_zero_grad_set_to_none_false():
    """zero_grad(set_to_none=False) keeps each gradient tensor and fills it with zeros, in place;
    a parameter without a gradient keeps none."""
    net = Net()
    params = net.parameters()
    grads = {}
    for k, p in enumerate(params[:-1]):  # the last one has no gradient
        p.grad = grads[k] = Tensor(np.full(p.shape, 2.0, np.float32))
    params[-1].grad = None
    call("Module.zero_grad", net.zero_grad, set_to_none=False)
    for k, p in enumerate(params[:-1]):
        if p.grad is not grads[k]:
            raise AssertionError("Module.zero_grad: with set_to_none=False each .grad must stay the same tensor, "
                                 f"filled with zeros in place (got {type(p.grad).__name__})")
        if not np.array_equal(p.grad.data, np.zeros(p.shape, np.float32)):
            raise AssertionError("Module.zero_grad: with set_to_none=False every gradient must be all zeros")
    if params[-1].grad is not None:
        raise AssertionError("Module.zero_grad: with set_to_none=False a parameter without a gradient keeps "
                             ".grad None")
    call("Module.zero_grad", net.zero_grad, set_to_none=True)
    if any(p.grad is not None for p in params):
        raise AssertionError("Module.zero_grad: set_to_none=True must set every .grad to None")


@pytest.mark.task("state_dict")
def test_state_dict_round_trip():
    src, dst = Net(seed=0), Net(seed=10)
    state = get_state(src)
    if list(state) != NET_PARAMS:
        raise AssertionError(f"Module.state_dict: keys {list(state)}, expected {NET_PARAMS}")
    for name, p in src.named_parameters():
        v = state[name]
        if not isinstance(v, np.ndarray) or v.shape != p.shape or v.dtype != p.dtype:
            raise AssertionError(f"Module.state_dict: {name!r} must be a numpy array of shape {p.shape}, "
                                 f"{p.dtype}; got {type(v).__name__}")
        if np.shares_memory(v, p.data):
            raise AssertionError(f"Module.state_dict: {name!r} shares memory with the parameter; store copies")
    saved = {k: v.copy() for k, v in state.items()}
    src.fc1.weight.data += 1  # training on after the snapshot must not change it
    if not np.array_equal(state["fc1.weight"], saved["fc1.weight"]):
        raise AssertionError("Module.state_dict: the snapshot changed when the model changed; store copies")
    params = dst.parameters()
    expected = {k: v.copy() for k, v in saved.items()}  # what load_state_dict is given could be kept as is
    call("Module.load_state_dict", dst.load_state_dict, saved)
    if any(p is not q for p, q in zip(params, dst.parameters())):
        raise AssertionError("Module.load_state_dict: replaced Parameter objects; copy the values in place "
                             "(an optimizer holds the old ones)")
    for name, p in dst.named_parameters():
        assert_close(p.data, expected[name], f"Module.load_state_dict ({name})")
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32))
    src.fc1.weight.data -= 1
    assert_close(dst(x), src(x).data, "Module.load_state_dict (the loaded model computes the same)", [x.data])


@pytest.mark.task("state_dict")
def test_load_state_dict_copies_into_parameters():
    """The values are copied INTO the existing arrays: the model never shares memory with the dict it
    was loaded from (two models loaded from one dict must not train each other), float64 values
    become the parameters' float32, and Tensor values work as well as arrays."""
    src = Net(seed=0)
    state = get_state(src)
    state64 = {k: v.astype(np.float64) + 0.25 for k, v in state.items()}
    expected = {k: v.copy() for k, v in state64.items()}
    a, b = Net(seed=10), Net(seed=20)
    data_before = [p.data for p in a.parameters()]
    call("Module.load_state_dict", a.load_state_dict, state64)
    call("Module.load_state_dict", b.load_state_dict, state64)
    for k, (name, p) in enumerate(a.named_parameters()):
        if p.dtype != np.float32:
            raise AssertionError(f"Module.load_state_dict: {name!r} became {p.dtype}; copy the values into the "
                                 "parameter's own float32 array (target.data[...] = value)")
        if np.shares_memory(p.data, state64[name]):
            raise AssertionError(f"Module.load_state_dict: {name!r} now shares memory with the state_dict; "
                                 "copy the values in place (target.data[...] = value)")
        if p.data is not data_before[k]:
            raise AssertionError(f"Module.load_state_dict: {name!r} got a new array; write into the old one "
                                 "in place (target.data[...] = value), so whatever holds it sees the values")
        assert_close(p.data, expected[name], f"Module.load_state_dict ({name}, from float64 values)", atol=1e-6)
    a.fc1.weight.data += 1.0  # training a must leave b (and the dict) alone
    assert_close(b.fc1.weight.data, expected["fc1.weight"], "Module.load_state_dict (two models loaded from one "
                 "dict share no memory)", atol=1e-6)
    assert_close(state64["fc1.weight"], expected["fc1.weight"], "Module.load_state_dict (the dict it was given "
                 "must not change)")
    tensors = {k: Tensor(v - 1.0) for k, v in state.items()}
    call("Module.load_state_dict", b.load_state_dict, tensors)
    for name, p in b.named_parameters():
        assert_close(p.data, state[name] - 1.0, f"Module.load_state_dict ({name}, from Tensor values)")


@pytest.mark.task("state_dict")
def test_load_state_dict_returns_missing_and_unexpected():
    """strict=False loads the keys that match and returns (missing, unexpected); a wrong shape is an
    error even then."""
    net = Net()
    good = get_state(net)
    partial = {k: v + 1 for k, v in good.items() if k != "head.bias"}
    partial["extra.weight"] = np.zeros(2, np.float32)
    got = call("Module.load_state_dict", net.load_state_dict, partial, strict=False)
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise AssertionError(f"Module.load_state_dict: returned {got!r}, expected (missing, unexpected) key lists")
    missing, unexpected = got
    if list(missing) != ["head.bias"] or list(unexpected) != ["extra.weight"]:
        raise AssertionError(f"Module.load_state_dict: strict=False returned missing={missing!r}, "
                             f"unexpected={unexpected!r}; expected ['head.bias'] and ['extra.weight']")
    assert_close(net.scale, good["scale"] + 1, "Module.load_state_dict (strict=False loads the keys that match)")
    assert_close(net.head.bias, good["head.bias"], "Module.load_state_dict (strict=False leaves a missing key's "
                 "parameter as it was)")
    got = call("Module.load_state_dict", net.load_state_dict, good)
    if not isinstance(got, (tuple, list)) or [list(g) for g in got] != [[], []]:
        raise AssertionError(f"Module.load_state_dict: a complete state_dict returned {got!r}, expected ([], [])")
    bad = {**good, "fc1.weight": np.zeros((3, 4), np.float32)}
    error = expect_error("Module.load_state_dict (strict=False, a wrong shape)", (RuntimeError, ValueError),
                         net.load_state_dict, bad, strict=False)
    if "fc1.weight" not in str(error):
        raise AssertionError(f"Module.load_state_dict: the shape error should name 'fc1.weight'; it says: {error}")


@pytest.mark.task("state_dict")
def test_load_state_dict_errors():
    net = Net()
    good = get_state(net)
    before = {k: v.copy() for k, v in good.items()}
    bad_cases = {
        "missing": ({k: v for k, v in good.items() if k != "head.bias"}, "head.bias"),
        "unexpected": ({**good, "fc9.weight": np.zeros(3)}, "fc9.weight"),
        "shape": ({**{k: v + 1 for k, v in good.items()}, "fc1.weight": np.zeros((3, 4), np.float32)},
                  "fc1.weight"),
    }
    for case, (state, key) in bad_cases.items():
        error = expect_error(f"Module.load_state_dict (a state_dict with a {case} key {key!r}, strict=True)",
                             (KeyError, ValueError, RuntimeError), net.load_state_dict, state)
        if key not in str(error):
            raise AssertionError(f"Module.load_state_dict: the error for a {case} key should name "
                                 f"{key!r}; it says: {error}")
        now = get_state(net)
        if any(not np.array_equal(now.get(k), before[k]) for k in before):
            raise AssertionError(f"Module.load_state_dict: a rejected state_dict ({case} key) changed the "
                                 "model; check everything before copying anything")
    partial = {k: v + 1 for k, v in good.items() if k != "head.bias"}
    call("Module.load_state_dict", lambda: net.load_state_dict(partial, strict=False))
    assert_close(net.fc1.weight, before["fc1.weight"] + 1, "Module.load_state_dict (strict=False loads the "
                 "keys that are there)")


@pytest.mark.task("state_dict")
def test_state_dict_includes_buffers():
    class WithStats(Module):
        def __init__(self):
            super().__init__()
            self.fc = Affine(2, 2)
            self.register_buffer("running_mean", np.arange(2, dtype=np.float32))
            self.register_buffer("unset", None)  # a None buffer is not saved

    a, b = WithStats(), WithStats()
    state = get_state(a)
    if list(state) != ["fc.weight", "fc.bias", "running_mean"]:
        raise AssertionError(f"Module.state_dict: keys {list(state)}, expected ['fc.weight', 'fc.bias', "
                             "'running_mean'] (parameters, then the buffers of named_buffers())")
    state["running_mean"] = np.array([5.0, 6.0], np.float32)
    call("Module.load_state_dict", b.load_state_dict, state)
    assert_close(b.running_mean, [5.0, 6.0], "Module.load_state_dict (buffers)")


@pytest.mark.task("Module")
def test_repr_shows_the_tree():
    inner = Sequential(Affine(2, 3))
    text = call("Module.__repr__", repr, Sequential(inner, ReLU(), Dropout(0.1)))
    nested = "Sequential(\n  (0): Sequential(\n    (0): Affine()\n  )\n"
    for part in (nested, "(1): ReLU()", "(2): Dropout(p=0.1)"):
        if part not in text:
            raise AssertionError(f"Module.__repr__: expected {part!r} in\n{text}")


# ---------------------------------------------------------------------------------------------
# Sequential, Dropout, Flatten
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("Sequential")
def test_sequential_forward_and_container():
    l1, l2 = Affine(4, 6, seed=1), Affine(6, 2, seed=2)
    (W1, b1), (W2, b2) = (l1.weight.data.copy(), l1.bias.data.copy()), (l2.weight.data.copy(), l2.bias.data.copy())
    seq = Sequential(l1, ReLU(), l2)
    x = np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32)
    out = forward("Sequential.forward", seq, x)
    assert_close(out, np.maximum(x @ W1.T + b1, 0) @ W2.T + b2, "Sequential.forward (layers in order)", [x])
    if len(seq) != 3 or seq[0] is not l1 or seq[-1] is not l2 or list(seq)[1] is not seq[1]:
        raise AssertionError("Sequential: len, indexing and iteration must follow the layers given")
    head = seq[:2]
    assert_close(forward("Sequential.forward", head, x), np.maximum(x @ W1.T + b1, 0),
                 "Sequential.forward (a slice seq[:2] is a Sequential of the first two layers)", [x])
    names = [n for n, _ in seq.named_parameters()]
    if names != ["0.weight", "0.bias", "2.weight", "2.bias"]:
        raise AssertionError(f"Module.named_parameters: a Sequential's parameters are named by position, "
                             f"got {names}")


@pytest.mark.task("Sequential")
def test_sequential_empty_appended_and_functions():
    """Sequential() is the identity; append adds a layer at the end; a plain function is a layer too."""
    x = np.random.default_rng(4).standard_normal((3, 4)).astype(np.float32)
    assert_close(forward("Sequential.forward", Sequential(), x), x.copy(), "Sequential.forward (no layers: the "
                 "identity)", [x])
    l1 = Affine(4, 2, seed=5)
    W, b = l1.weight.data.copy(), l1.bias.data.copy()
    seq = Sequential(lambda t: t * 2.0)
    if seq.append(l1) is not seq or len(seq) != 2 or seq[1] is not l1:
        raise AssertionError("Sequential.append: must add the layer at the end and return the Sequential")
    assert_close(forward("Sequential.forward", seq, x), (2 * x) @ W.T + b,
                 "Sequential.forward (a function, then an appended layer)", [x])
    x4 = np.random.default_rng(6).standard_normal((2, 3, 2, 4)).astype(np.float32)
    assert_close(forward("Sequential.forward", seq, x4), (2 * x4) @ W.T + b, "Sequential.forward (4-D input)", [x4])


@pytest.mark.task("Dropout")
@SETTINGS
@given(shape=st.sampled_from([(), (1,), (7,), (3, 5), (2, 3, 4), (2, 1, 3, 2)]), p=st.sampled_from([0.1, 0.5, 0.8]))
def test_dropout_keeps_or_scales(shape, p):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32) + 3.0
    expected = x / np.float32(1 - p)
    out = forward("Dropout.forward", Dropout(p), x)
    if out.shape != x.shape or out.dtype != np.float32:
        raise AssertionError(f"Dropout.forward: got {out.shape} {out.dtype} for a {x.shape} float32 input")
    kept = out.data != 0
    assert_close(out.data[kept], expected[kept], f"Dropout.forward (kept values are x / (1 - p), p = {p})",
                 [x])


@pytest.mark.task("Dropout")
def test_dropout_statistics():
    for p in (0.25, 0.6):
        out = forward("Dropout.forward", Dropout(p), np.ones((400, 500), np.float32)).data
        dropped = float((out == 0).mean())
        if abs(dropped - p) > 0.01:
            raise AssertionError(f"Dropout.forward: dropped {dropped:.3f} of the elements, expected p = {p}")
        if abs(float(out.mean(dtype=np.float64)) - 1) > 0.02:
            raise AssertionError(f"Dropout.forward: the mean of dropout(ones) is {out.mean():.4f}, expected 1 "
                                 "(scale the kept values by 1/(1-p))")
    x = np.random.default_rng(0).standard_normal((20, 20)).astype(np.float32)
    expected = x.copy()
    assert_close(forward("Dropout.forward", Dropout(0.0), x), expected, "Dropout.forward (p = 0: identity)", [x])
    zero = forward("Dropout.forward", Dropout(1.0), x).data
    if not np.array_equal(zero, np.zeros_like(x)):
        raise AssertionError("Dropout.forward: p = 1 must give all zeros (and no nan/inf)")
    for bad in (-0.1, 1.5):
        expect_error(f"Dropout.__init__ (p={bad})", ValueError, Dropout, bad)
    if "p=0.25" not in repr(Dropout(0.25)):
        raise AssertionError(f"Dropout.__repr__: {repr(Dropout(0.25))!r} should show p=0.25")
    drop = Dropout(1.0)
    drop.eval()
    assert_close(forward("Dropout.forward", drop, x), expected, "Dropout.forward (p = 1 in eval mode: identity)", [x])


@pytest.mark.task("Dropout")
@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_dropout_leaves_input_unchanged(p, mode):
    """Dropout returns x * mask as a new tensor; x itself (the previous layer's output) is untouched."""
    drop = Dropout(p)
    drop.train(mode == "train")
    x = np.random.default_rng(1).standard_normal((40, 30)).astype(np.float32) + 3.0
    expected = x.copy()
    tt.manual_seed(5)
    out = forward("Dropout.forward", drop, x)  # fails if x changed
    if mode == "eval" or p == 0.0:
        assert_close(out, expected, f"Dropout.forward ({mode} mode, p = {p}: the identity)", [x])
        if tt.default_generator().random() != np.random.default_rng(5).random():
            raise AssertionError(f"Dropout.forward: in {mode} mode with p = {p} it drew random numbers; the "
                                 "identity draws none (a model with Dropout(0.0), or in eval mode, must "
                                 "reproduce exactly the random stream of one without it)")


@pytest.mark.task("Dropout")
def test_dropout_is_seeded_and_recorded():
    drop = Dropout(0.5)
    x = Tensor(np.ones((30, 30), np.float32), requires_grad=True)
    tt.manual_seed(3)
    a = call("Dropout.forward", drop, x)
    tt.manual_seed(3)
    b = call("Dropout.forward", drop, x)
    c = call("Dropout.forward", drop, x)
    if not np.array_equal(x.data, np.ones((30, 30), np.float32)):
        raise AssertionError("Dropout.forward: changed its input in place (x.data was modified)")
    if not np.array_equal(a.data, b.data):
        raise AssertionError("Dropout.forward: the same manual_seed gave different masks; draw the mask from "
                             "tinytorch's generator (tinytorch.tensor.default_generator())")
    if np.array_equal(b.data, c.data):
        raise AssertionError("Dropout.forward: two calls in a row used the same mask")
    if id(x) not in reachable(a):
        raise AssertionError("Dropout.forward: the output is not recorded as computed from the input; "
                             "use Tensor ops (x * mask) so module 06 can differentiate it")


@pytest.mark.task("Flatten")
@SETTINGS
@given(shape=st.sampled_from([(2, 3), (1, 1), (2, 3, 4), (2, 1, 3, 5), (4, 2, 2, 2), (2, 3, 1, 2, 2)]),
       start=st.sampled_from([0, 1, -2]), end=st.sampled_from([-1, -2, 2]))
def test_flatten(shape, start, end):
    """Flatten(start_dim, end_dim) merges the axes start_dim..end_dim (negative counts from the end)."""
    s, e = start % len(shape), end % len(shape)
    if e < s:
        return
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    expected = x.reshape(*shape[:s], -1, *shape[e + 1:])
    layer = Flatten(start) if end == -1 else Flatten(start, end)
    assert_close(forward("Flatten.forward", layer, x), expected, f"Flatten.forward (start_dim={start}, "
                 f"end_dim={end})", [x])


@pytest.mark.task("Flatten")
def test_flatten_defaults():
    """Flatten() keeps the batch axis: (N, C, H, W) -> (N, C*H*W)."""
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2)
    assert_close(forward("Flatten.forward", Flatten(), x), x.reshape(2, -1), "Flatten.forward (defaults: "
                 "start_dim=1, end_dim=-1)", [x])
    assert_close(forward("Flatten.forward", Flatten(end_dim=2), x), x.reshape(2, 6, 2),
                 "Flatten.forward (end_dim=2)", [x])
    if "start_dim=0, end_dim=2" not in repr(Flatten(0, 2)):
        raise AssertionError(f"Flatten.__repr__: {repr(Flatten(0, 2))!r} should show start_dim=0, end_dim=2")
