"""Maintainer tests for module 18's tiled training convolution beyond its checks: random
configurations of conv2d_tiled against module 09's conv2d (output and every gradient, tiles that
do and do not divide the output width), and accelerate on a real LeNet-5 - the same training as
the model, alone and inside parallel_step, with the ReLU / MaxPool2d reordering.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.acceleration import TiledConv2d, accelerate, conv2d_tiled, parallel_step
from tinytorch.activations import ReLU
from tinytorch.convolutions import Conv2d, MaxPool2d, conv2d
from tinytorch.layers import Flatten, Linear, Sequential
from tinytorch.losses import CrossEntropyLoss
from tinytorch.optimizers import SGD
from tinytorch.tensor import Tensor, manual_seed

PROPS = settings(deadline=None, derandomize=True, max_examples=40)


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def run(fn, x, w, b):
    ts = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    out = fn(*ts)
    (out * Tensor(rand(*out.shape, seed=7))).sum().backward()
    return [out.data] + [t.grad.data for t in ts]


@PROPS
@given(n=st.integers(1, 3), c=st.integers(1, 4), h=st.integers(3, 9), w=st.integers(3, 11),
       o=st.integers(1, 5), k=st.integers(1, 3), p=st.integers(0, 2), tile=st.integers(1, 9))
def test_conv2d_tiled_matches_module_09(n, c, h, w, o, k, p, tile):
    x, wt, b = rand(n, c, h, w, seed=1), rand(o, c, k, k, seed=2), rand(o, seed=3)
    want = run(lambda x_, w_, b_: conv2d(x_, w_, b_, 1, p), x, wt, b)
    got = run(lambda x_, w_, b_: conv2d_tiled(x_, w_, b_, p, tile), x, wt, b)
    for what, a, e in zip(("out", "dx", "dw", "db"), got, want):
        np.testing.assert_allclose(a, e, atol=2e-5, rtol=1e-4, err_msg=what)


def lenet():
    manual_seed(0)
    return Sequential(Conv2d(1, 6, 5, padding=2), ReLU(), MaxPool2d(2), Conv2d(6, 16, 5), ReLU(),
                      MaxPool2d(2), Flatten(), Linear(400, 120), ReLU(), Linear(120, 84), ReLU(),
                      Linear(84, 10))


@pytest.mark.parametrize("tiles,parallel", [((4, 2), False), ((3, 7), True), ("tune", True)])
def test_accelerate_lenet_trains_like_the_model(tiles, parallel):
    model, twin = lenet(), lenet()
    fast = accelerate(model, (1, 28, 28), tiles=tiles, batch=8)
    assert [type(m).__name__ for m in fast][:6] == ["TiledConv2d", "MaxPool2d", "ReLU", "TiledConv2d", "MaxPool2d", "ReLU"]
    assert fast.state_dict().keys() == model.state_dict().keys()
    x = Tensor(rand(32, 1, 28, 28, seed=4))
    y = Tensor(np.arange(32) % 10)
    ce = CrossEntropyLoss()
    opt, opt2 = SGD(model.parameters(), lr=0.05, momentum=0.9), SGD(twin.parameters(), lr=0.05, momentum=0.9)
    for _ in range(3):
        if parallel:
            got = parallel_step(fast, ce, opt, x, y, threads=2)
        else:
            opt.zero_grad()
            loss = ce(fast(x), y)
            loss.backward()
            opt.step()
            got = loss.item()
        opt2.zero_grad()
        ref = ce(twin(x), y)
        ref.backward()
        opt2.step()
        assert abs(got - ref.item()) < 1e-5
    for (name, p), q in zip(twin.named_parameters(), model.parameters()):
        np.testing.assert_allclose(q.data, p.data, atol=2e-5, err_msg=name)


def test_accelerate_refuses_too_few_tiles_and_names_a_wrong_kernel(monkeypatch):
    with pytest.raises(ValueError, match="fewer tiles"):
        accelerate(lenet(), (1, 28, 28), tiles=(4,))
    import tinytorch.acceleration as acc

    monkeypatch.setattr(acc, "tile_weight", lambda w, tile: np.zeros((w.shape[2] * (w.shape[3] + tile - 1) * w.shape[1],
                                                                      tile * w.shape[0]), w.dtype))
    with pytest.raises(ValueError, match="check tile_weight"):
        accelerate(lenet(), (1, 28, 28), tiles=(4, 2))


def test_tiled_conv2d_repr_and_shared_parameters():
    conv = Conv2d(3, 4, 3, padding=1)
    tiled = TiledConv2d(conv, 4)
    assert tiled.weight is conv.weight and tiled.bias is conv.bias
    assert "tile=4" in repr(tiled)
