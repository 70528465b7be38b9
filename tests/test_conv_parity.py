"""Maintainer tests for tinytorch.convolutions beyond the module checks: random configurations
against PyTorch, memory-layout independence, dtypes, whole networks against PyTorch step by step,
and the rules of the implementation (no np.add.at, the milestone's gradient check catches a bug).
"""

from __future__ import annotations

import ast
import inspect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinytorch.convolutions as conv_mod
from tinytorch.activations import ReLU
from tinytorch.convolutions import (AdaptiveAvgPool2d, BatchNorm2d, Conv2d, MaxPool2d, avg_pool2d,
                                    batch_norm2d, conv2d, max_pool2d)
from tinytorch.layers import Flatten, Linear, Sequential
from tinytorch.losses import CrossEntropyLoss
from tinytorch.optimizers import SGD
from tinytorch.tensor import Tensor

torch = pytest.importorskip("torch")
F = torch.nn.functional
PROPS = settings(deadline=None, derandomize=True, max_examples=30)


def rand(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def grads_vs_torch(fn_tt, fn_th, arrays, atol=1e-4):
    tts = [Tensor(a, requires_grad=True) for a in arrays]
    ths = [torch.tensor(a, requires_grad=True) for a in arrays]
    out_tt, out_th = fn_tt(*tts), fn_th(*ths)
    np.testing.assert_allclose(out_tt.data, out_th.detach().numpy(), atol=atol, rtol=1e-4)
    w = rand(*out_th.shape, seed=99)
    (out_tt * Tensor(w)).sum().backward()
    (out_th * torch.tensor(w)).sum().backward()
    for t, h in zip(tts, ths):
        np.testing.assert_allclose(t.grad.data, h.grad.numpy(), atol=atol, rtol=1e-4)


# ---------------------------------------------------------------------------------------------
# Random configurations vs PyTorch
# ---------------------------------------------------------------------------------------------
@PROPS
@given(n=st.integers(1, 3), c=st.integers(1, 4), o=st.integers(1, 4), h=st.integers(1, 10),
       w=st.integers(1, 10), kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 3),
       sw=st.integers(1, 3), ph=st.integers(0, 2), pw=st.integers(0, 2), bias=st.booleans())
def test_conv2d_random_configurations(n, c, o, h, w, kh, kw, sh, sw, ph, pw, bias):
    if h + 2 * ph < kh or w + 2 * pw < kw:
        return
    arrays = [rand(n, c, h, w, seed=1), rand(o, c, kh, kw, seed=2)] + ([rand(o, seed=3)] if bias else [])
    grads_vs_torch(lambda x, k, *b: conv2d(x, k, b[0] if b else None, (sh, sw), (ph, pw)),
                   lambda x, k, *b: F.conv2d(x, k, b[0] if b else None, (sh, sw), (ph, pw)), arrays)


@PROPS
@given(n=st.integers(1, 2), c=st.integers(1, 3), h=st.integers(2, 9), w=st.integers(2, 9),
       k=st.integers(1, 3), s=st.integers(1, 3), p=st.integers(0, 1), kind=st.sampled_from(["max", "avg"]))
def test_pools_random_configurations(n, c, h, w, k, s, p, kind):
    if p * 2 > k or h + 2 * p < k or w + 2 * p < k:
        return
    x = rand(n, c, h, w, seed=4)
    ours, theirs = (max_pool2d, F.max_pool2d) if kind == "max" else (avg_pool2d, F.avg_pool2d)
    grads_vs_torch(lambda t: ours(t, k, s, p), lambda t: theirs(t, k, s, p), [x])


def test_max_pool_ties_after_relu_match_torch():
    x = np.maximum(rand(4, 3, 8, 8, seed=5), 0)  # many all-zero windows
    grads_vs_torch(lambda t: max_pool2d(t, 2), lambda t: F.max_pool2d(t, 2), [x])


# ---------------------------------------------------------------------------------------------
# Memory layout and dtypes
# ---------------------------------------------------------------------------------------------
def test_results_do_not_depend_on_memory_layout():
    """Outputs are NCHW views of channels-last memory; the same values must come out whether an
    op gets NCHW-contiguous arrays or such views, forward and backward."""
    x = rand(2, 3, 9, 9, seed=6)
    x_cl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # same values, NHWC memory
    w, b = rand(4, 3, 3, 3, seed=7), rand(4, seed=8)
    results = []
    for arr in (x, x_cl):
        xt = Tensor(arr, requires_grad=True)
        out = max_pool2d(conv2d(xt, Tensor(w), Tensor(b), 1, 1), 2)
        bn = batch_norm2d(out, Tensor(np.ones(4, np.float32)), Tensor(np.zeros(4, np.float32)),
                          np.zeros(4, np.float32), np.ones(4, np.float32), True)
        g = rand(*bn.shape, seed=9)
        for g_layout in (g, np.ascontiguousarray(g.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)):
            xt.grad = None
            bn.backward(g_layout)
            results.append((bn.data.copy(), xt.grad.data.copy()))
    for out, grad in results[1:]:
        np.testing.assert_allclose(out, results[0][0], atol=1e-5)
        np.testing.assert_allclose(grad, results[0][1], atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes_are_kept(dtype):
    x = Tensor(rand(2, 3, 6, 6, dtype=dtype), dtype=dtype, requires_grad=True)
    w = Tensor(rand(4, 3, 3, 3, dtype=dtype), dtype=dtype, requires_grad=True)
    gamma = Tensor(np.ones(4, dtype), dtype=dtype, requires_grad=True)
    beta = Tensor(np.zeros(4, dtype), dtype=dtype, requires_grad=True)
    y = batch_norm2d(conv2d(x, w, None, 1, 1), gamma, beta, np.zeros(4, np.float32), np.ones(4, np.float32), True)
    y = avg_pool2d(max_pool2d(y, 2), 3)
    assert y.dtype == dtype
    y.sum().backward()
    for t in (x, w, gamma, beta):
        assert t.grad.dtype == dtype


# ---------------------------------------------------------------------------------------------
# Whole networks, step by step, against PyTorch
# ---------------------------------------------------------------------------------------------
def _copy_into_torch(model, tmodel):
    state = {k: torch.tensor(v) for k, v in model.state_dict().items()}
    tstate = tmodel.state_dict()
    for k in tstate:
        if k in state:
            tstate[k] = state[k]
    tmodel.load_state_dict(tstate)


@pytest.mark.parametrize("net", ["lenet", "cifar-bn"])
def test_training_steps_match_torch(net):
    nn = torch.nn
    if net == "lenet":
        model = Sequential(Conv2d(1, 6, 5, padding=2), ReLU(), MaxPool2d(2), Conv2d(6, 16, 5), ReLU(),
                           MaxPool2d(2), Flatten(), Linear(400, 120), ReLU(), Linear(120, 84), ReLU(),
                           Linear(84, 10))
        tmodel = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                               nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                               nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
        x = rand(16, 1, 28, 28, seed=10)
    else:
        model = Sequential(Conv2d(3, 8, 3, padding=1, bias=False), BatchNorm2d(8), ReLU(), MaxPool2d(2),
                           Conv2d(8, 16, 3, stride=2, padding=1), BatchNorm2d(16), ReLU(),
                           AdaptiveAvgPool2d(1), Flatten(), Linear(16, 10))
        tmodel = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                               nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16),
                               nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
        x = rand(16, 3, 16, 16, seed=11)
    _copy_into_torch(model, tmodel)
    y = np.random.default_rng(12).integers(0, 10, len(x))
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    crit, tcrit = CrossEntropyLoss(label_smoothing=0.1), nn.CrossEntropyLoss(label_smoothing=0.1)
    for _ in range(4):
        opt.zero_grad()
        loss = crit(model(Tensor(x)), y)
        loss.backward()
        opt.step()
        topt.zero_grad()
        tloss = tcrit(tmodel(torch.tensor(x)), torch.tensor(y))
        tloss.backward()
        topt.step()
        assert abs(loss.item() - tloss.item()) < 1e-4
    tstate = tmodel.state_dict()
    for k, v in model.state_dict().items():
        np.testing.assert_allclose(v, tstate[k].numpy(), atol=2e-4, rtol=1e-3, err_msg=k)
    model.eval()
    tmodel.eval()
    np.testing.assert_allclose(model(Tensor(x)).data, tmodel(torch.tensor(x)).detach().numpy(), atol=2e-4)


# ---------------------------------------------------------------------------------------------
# Implementation rules and the milestone's gradient check
# ---------------------------------------------------------------------------------------------
def _is_main_guard(node) -> bool:
    return isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)


def test_no_add_at_and_loops_only_over_kernel_offsets():
    """The framework code (not the lesson's try-it cells, which run only in a notebook)."""
    tree = ast.parse(inspect.getsource(conv_mod))
    tree.body = [node for node in tree.body if not _is_main_guard(node)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "at":
            assert not (isinstance(node.value, ast.Attribute) and node.value.attr == "add"), "np.add.at"
        if isinstance(node, (ast.For, ast.comprehension)):
            loop = ast.unparse(node.iter)
            assert loop in ("range(kh)", "range(kw)"), f"a loop over {loop}, not over kernel offsets"


def test_milestone_gradient_check_catches_a_flipped_kernel(monkeypatch):
    from tito.milestones import m04_cnn

    model = Sequential(Conv2d(1, 4, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(), Linear(64, 10))
    x, y = rand(16, 1, 8, 8, seed=13), np.random.default_rng(14).integers(0, 10, 16)
    ok, _ = m04_cnn.gradient_check(model, CrossEntropyLoss(), x, y, m04_cnn._conv_params(model))
    assert ok
    reference = conv_mod.conv2d

    def flipped_forward(x, weight, bias=None, stride=1, padding=0):
        flipped = Tensor(weight.data[:, :, ::-1, ::-1].copy(), requires_grad=True)
        out = reference(x, flipped, bias, stride, padding)
        out._parents = tuple(weight if p is flipped else p for p in out._parents)
        return out

    monkeypatch.setattr(conv_mod, "conv2d", flipped_forward)
    ok, text = m04_cnn.gradient_check(model, CrossEntropyLoss(), x, y, m04_cnn._conv_params(model))
    assert not ok, text
