"""Checks for module 03 (layers): Module bookkeeping, Linear, Sequential, Dropout, Flatten.

Forward only: these checks never call backward(), so they pass before module 06 (autograd)
exists. What they do check is that the outputs are *recorded* in the graph (built from Tensor
ops), so that module 06 can differentiate them later; the gradients themselves are checked by
module 06's checks and the maintainers' tests.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinytorch.tensor as tt
from tinytorch.activations import ReLU, Tanh
from tinytorch.layers import Dropout, Flatten, Linear, Module, Parameter, Sequential
from tinytorch.tensor import Tensor
from tito.checks.harness import assert_close, torch_or_skip

SETTINGS = settings(deadline=None, derandomize=True, max_examples=25, report_multiple_bugs=False)


@pytest.fixture(autouse=True)
def _seed():
    tt.manual_seed(0)
    yield
    tt.manual_seed(0)


def _shapes(arrays) -> str:
    return ", ".join(str(np.shape(a.data if isinstance(a, Tensor) else a)) for a in arrays)


def call(name: str, fn, *args):
    """fn(*args); a crash becomes an AssertionError that names `name` and the input shapes.
    A stub's NotImplementedError and a check's own AssertionError pass through unchanged."""
    try:
        return fn(*args)
    except (NotImplementedError, AssertionError):
        raise
    except Exception as e:
        raise AssertionError(f"{name}: raised {type(e).__name__}: {e} "
                             f"(input shapes: {_shapes(args)})") from e


def make_linear(n_in: int, n_out: int, bias: bool = True, seed: int = 0):
    """A Linear layer with known random weights W (out, in) and b (out,), written in place."""
    layer = call("Linear.__init__", Linear, n_in, n_out, bias)
    w_shape = getattr(getattr(layer, "weight", None), "shape", None)
    if w_shape != (n_out, n_in):
        raise AssertionError(f"Linear.__init__: Linear({n_in}, {n_out}).weight has shape {w_shape}, "
                             f"expected (out_features, in_features) = {(n_out, n_in)}")
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n_out, n_in)).astype(np.float32)
    layer.weight.data[...] = W
    b = None
    if bias:
        if getattr(layer.bias, "shape", None) != (n_out,):
            raise AssertionError(f"Linear.__init__: Linear({n_in}, {n_out}).bias has shape "
                                 f"{getattr(layer.bias, 'shape', None)}, expected {(n_out,)}")
        b = rng.standard_normal(n_out).astype(np.float32)
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
@given(batch=st.sampled_from([(), (1,), (3,), (5,), (2, 4), (2, 1, 3)]),
       n_in=st.integers(1, 6), n_out=st.integers(1, 6), bias=st.booleans())
def test_linear_forward_matches_numpy(batch, n_in, n_out, bias):
    layer, W, b = make_linear(n_in, n_out, bias)
    x = np.random.default_rng(1).standard_normal((*batch, n_in)).astype(np.float32)
    out = call("Linear.forward", layer, Tensor(x))
    expected = x.astype(np.float64) @ W.T.astype(np.float64) + (0 if b is None else b)
    assert_close(out, expected, "Linear.forward (x @ W.T + b, W of shape (out, in))", [x, W], atol=1e-4)
    if out.dtype != np.float32:
        raise AssertionError(f"Linear.forward: float32 input gave a {out.dtype} output")


@pytest.mark.task("Linear")
def test_linear_forward_square_and_batched():
    """Square weights do not crash when transposed by mistake: the values must show it."""
    for n_in, n_out, batch in [(4, 4, (3,)), (3, 5, (2, 6)), (6, 2, (2, 3, 4)), (7, 7, (2, 5))]:
        layer, W, b = make_linear(n_in, n_out, seed=n_in + n_out)
        x = np.random.default_rng(2).standard_normal((*batch, n_in)).astype(np.float32)
        out = call("Linear.forward", layer, Tensor(x))
        assert_close(out, x @ W.T + b, "Linear.forward (x @ W.T + b, W of shape (out, in))", [x, W], atol=1e-4)


@pytest.mark.task("Linear")
def test_linear_forward_vs_torch():
    torch = torch_or_skip()
    layer, W, b = make_linear(5, 3, seed=3)
    x = np.random.default_rng(4).standard_normal((2, 4, 5)).astype(np.float32)
    out = call("Linear.forward", layer, Tensor(x))
    ref = torch.nn.functional.linear(torch.tensor(x), torch.tensor(W), torch.tensor(b)).numpy()
    assert_close(out, ref, "Linear.forward (vs torch.nn.functional.linear)", [x, W, b])


@pytest.mark.task("Linear")
def test_linear_records_graph():
    layer, W, b = make_linear(4, 3)
    out = call("Linear.forward", layer, Tensor(np.ones((2, 4), np.float32)))
    if not isinstance(out, Tensor):
        raise AssertionError(f"Linear.forward: returned {type(out).__name__}, expected a Tensor")
    ids = reachable(out)
    for name in ("weight", "bias"):
        if id(getattr(layer, name)) not in ids:
            raise AssertionError(f"Linear.forward: the output is not computed from self.{name} with Tensor "
                                 "ops (the graph does not reach it), so module 06 could not train it; "
                                 "write it with Tensor ops, e.g. x @ self.weight.T + self.bias")
    with tt.no_grad():
        out = call("Linear.forward", layer, Tensor(np.ones((2, 4), np.float32)))
    if out.requires_grad:
        raise AssertionError("Linear.forward: under no_grad() the output must not record a graph")


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
    nobias = call("Linear.__init__", Linear, 5, 3, False)
    if getattr(nobias, "bias", "missing") is not None:
        raise AssertionError("Linear.__init__: with bias=False, self.bias must be None")
    if [n for n, _ in nobias.named_parameters()] != ["weight"]:
        raise AssertionError("Linear.__init__: with bias=False the only parameter is 'weight'")
    x = np.random.default_rng(0).standard_normal((2, 5)).astype(np.float32)
    out = call("Linear.forward", nobias, Tensor(x))
    assert_close(out, x @ nobias.weight.data.T, "Linear.forward (bias=False: x @ W.T)", [x])


@pytest.mark.task("Linear")
def test_linear_init_bounds_and_statistics():
    n_in, n_out = 256, 300
    layer = call("Linear.__init__", Linear, n_in, n_out)
    k = 1 / np.sqrt(n_in)
    for name, p in (("weight", layer.weight.data), ("bias", layer.bias.data)):
        v = np.asarray(p, dtype=np.float64)
        if np.abs(v).max() > k * (1 + 1e-6):
            raise AssertionError(f"Linear.__init__: {name} values reach {np.abs(v).max():.4f}, outside "
                                 f"U(-1/sqrt(in), 1/sqrt(in)) = U(-{k:.4f}, {k:.4f})")
        if np.abs(v).max() < 0.9 * k:
            raise AssertionError(f"Linear.__init__: {name} values stay within {np.abs(v).max():.4f}; "
                                 f"expected them to fill U(-{k:.4f}, {k:.4f})")
    w = layer.weight.data.astype(np.float64)
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
    if not (np.array_equal(a.weight.data, b.weight.data) and np.array_equal(a.bias.data, b.bias.data)):
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
        call("Linear.forward", layer, Tensor(x))
        weight = layer.weight
        layer.weight.data += 1.0
        layer.bias.data -= 0.5
        out = call("Linear.forward", layer, Tensor(x))
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


@pytest.mark.task("Module")
def test_train_eval_reaches_nested_modules():
    inner = Dropout(0.5)
    net = Sequential(Affine(3, 3), Sequential(inner, ReLU()))
    if call("Module.eval", net.eval) is not net:
        raise AssertionError("Module.eval: must return the module itself (model = model.eval())")
    flags = [m.training for m in net.modules() if isinstance(m, Module)]
    if any(flags):
        raise AssertionError(f"Module.train: after eval() the .training flags are {flags}, expected all False")
    x = Tensor(np.random.default_rng(0).standard_normal((50, 3)).astype(np.float32))
    assert_close(call("Dropout.forward", inner, x), x.data, "Dropout.forward (in eval mode: the identity)",
                 [x.data])
    net.train()
    if not all(m.training for m in net.modules() if isinstance(m, Module)):
        raise AssertionError("Module.train: after train() every nested module must have .training True")
    out = call("Dropout.forward", inner, Tensor(np.ones((50, 20), np.float32)))
    if not (out.data == 0).any():
        raise AssertionError("Dropout.forward: back in train mode nothing was dropped")


@pytest.mark.task("Module")
def test_zero_grad_sets_none():
    net = Net()
    for p in net.parameters():
        p.grad = Tensor(np.ones(p.shape, np.float32))
    call("Module.zero_grad", net.zero_grad)
    left = [n for n, p in net.named_parameters() if p.grad is not None]
    if left:
        raise AssertionError(f"Module.zero_grad: gradients of {left} are still set; set every .grad to None")


@pytest.mark.task("state_dict")
def test_state_dict_round_trip():
    src, dst = Net(seed=0), Net(seed=10)
    state = call("Module.state_dict", src.state_dict)
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
    call("Module.load_state_dict", dst.load_state_dict, saved)
    if any(p is not q for p, q in zip(params, dst.parameters())):
        raise AssertionError("Module.load_state_dict: replaced Parameter objects; copy the values in place "
                             "(an optimizer holds the old ones)")
    for name, p in dst.named_parameters():
        assert_close(p.data, saved[name], f"Module.load_state_dict ({name})")
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32))
    src.fc1.weight.data -= 1
    assert_close(dst(x), src(x).data, "Module.load_state_dict (the loaded model computes the same)", [x.data])


@pytest.mark.task("state_dict")
def test_load_state_dict_errors():
    net = Net()
    good = call("Module.state_dict", net.state_dict)
    before = {k: v.copy() for k, v in good.items()}
    bad_cases = {
        "missing": ({k: v for k, v in good.items() if k != "head.bias"}, "head.bias"),
        "unexpected": ({**good, "fc9.weight": np.zeros(3)}, "fc9.weight"),
        "shape": ({**{k: v + 1 for k, v in good.items()}, "fc1.weight": np.zeros((3, 4), np.float32)},
                  "fc1.weight"),
    }
    for case, (state, key) in bad_cases.items():
        try:
            net.load_state_dict(state)
        except NotImplementedError:
            raise
        except (KeyError, ValueError, RuntimeError) as e:
            if key not in str(e):
                raise AssertionError(f"Module.load_state_dict: the error for a {case} key should name "
                                     f"{key!r}; it says: {e}") from e
        else:
            raise AssertionError(f"Module.load_state_dict: a state_dict with a {case} key ({key!r}) was "
                                 "accepted; raise an error (strict=True)")
        now = net.state_dict()
        if any(not np.array_equal(now[k], before[k]) for k in before):
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

    a, b = WithStats(), WithStats()
    state = call("Module.state_dict", a.state_dict)
    if "running_mean" not in state:
        raise AssertionError(f"Module.state_dict: keys {list(state)} miss the buffer 'running_mean' "
                             "(named_buffers())")
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
    (W1, b1), (W2, b2) = (l1.weight.data, l1.bias.data), (l2.weight.data, l2.bias.data)
    seq = Sequential(l1, ReLU(), l2)
    x = np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32)
    out = call("Sequential.forward", seq, Tensor(x))
    assert_close(out, np.maximum(x @ W1.T + b1, 0) @ W2.T + b2, "Sequential.forward (layers in order)", [x])
    if len(seq) != 3 or seq[0] is not l1 or seq[-1] is not l2 or list(seq)[1] is not seq[1]:
        raise AssertionError("Sequential: len, indexing and iteration must follow the layers given")
    head = seq[:2]
    assert_close(call("Sequential.forward", head, Tensor(x)), np.maximum(x @ W1.T + b1, 0),
                 "Sequential.forward (a slice seq[:2] is a Sequential of the first two layers)", [x])
    names = [n for n, _ in seq.named_parameters()]
    if names != ["0.weight", "0.bias", "2.weight", "2.bias"]:
        raise AssertionError(f"Module.named_parameters: a Sequential's parameters are named by position, "
                             f"got {names}")


@pytest.mark.task("Dropout")
@SETTINGS
@given(shape=st.sampled_from([(), (1,), (7,), (3, 5), (2, 3, 4)]), p=st.sampled_from([0.1, 0.5, 0.8]))
def test_dropout_keeps_or_scales(shape, p):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32) + 3.0
    out = call("Dropout.forward", Dropout(p), Tensor(x))
    if out.shape != x.shape or out.dtype != np.float32:
        raise AssertionError(f"Dropout.forward: got {out.shape} {out.dtype} for a {x.shape} float32 input")
    kept = out.data != 0
    assert_close(out.data[kept], x[kept] / (1 - p), f"Dropout.forward (kept values are x / (1 - p), p = {p})",
                 [x])


@pytest.mark.task("Dropout")
def test_dropout_statistics():
    for p in (0.25, 0.6):
        out = call("Dropout.forward", Dropout(p), Tensor(np.ones((400, 500), np.float32))).data
        dropped = float((out == 0).mean())
        if abs(dropped - p) > 0.01:
            raise AssertionError(f"Dropout.forward: dropped {dropped:.3f} of the elements, expected p = {p}")
        if abs(float(out.mean(dtype=np.float64)) - 1) > 0.02:
            raise AssertionError(f"Dropout.forward: the mean of dropout(ones) is {out.mean():.4f}, expected 1 "
                                 "(scale the kept values by 1/(1-p))")
    x = np.random.default_rng(0).standard_normal((20, 20)).astype(np.float32)
    assert_close(call("Dropout.forward", Dropout(0.0), Tensor(x)), x, "Dropout.forward (p = 0: identity)", [x])
    zero = call("Dropout.forward", Dropout(1.0), Tensor(x)).data
    if not np.array_equal(zero, np.zeros_like(x)):
        raise AssertionError("Dropout.forward: p = 1 must give all zeros (and no nan/inf)")


@pytest.mark.task("Dropout")
def test_dropout_is_seeded_and_recorded():
    drop = Dropout(0.5)
    x = Tensor(np.ones((30, 30), np.float32), requires_grad=True)
    tt.manual_seed(3)
    a = call("Dropout.forward", drop, x)
    tt.manual_seed(3)
    b = call("Dropout.forward", drop, x)
    c = call("Dropout.forward", drop, x)
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
@given(shape=st.sampled_from([(2, 3), (1, 1), (2, 3, 4), (2, 1, 3, 5), (4, 2, 2, 2)]),
       start=st.sampled_from([0, 1, -2]))
def test_flatten(shape, start):
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    out = call("Flatten.forward", Flatten(start), Tensor(x))
    s = start % len(shape)
    assert_close(out, x.reshape(*shape[:s], -1), f"Flatten.forward (start_dim={start})", [x])
