"""Maintainer tests: the layers of module 03 differentiated by the reference autograd (module 06).

Module 03's own checks are forward-only (a learner completes 03 before 06 exists); this file
gradchecks the layers end to end and compares Linear with torch.nn.functional.linear.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch.tensor as tt
from tinytorch.activations import Tanh
from tinytorch.layers import Dropout, Flatten, Linear, Sequential
from tinytorch.losses import CrossEntropyLoss
from tinytorch.tensor import Tensor
from tito.checks.harness import assert_close, gradcheck, torch_parity

rng = np.random.default_rng(0)


def randn(*shape):
    return rng.standard_normal(shape)


def linear_fn(n_in, n_out, bias=True):
    """fn(x, W[, b]) that runs a real Linear layer with W, b swapped in (float64 for gradcheck)."""
    layer = Linear(n_in, n_out, bias=bias)

    def fn(x, W, b=None):
        layer.weight, layer.bias = W, b
        return layer(x)

    return fn


@pytest.mark.parametrize("batch", [(), (5,), (2, 3), (2, 1, 4)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradcheck(batch, bias):
    n_in, n_out = 4, 3
    inputs = [randn(*batch, n_in), randn(n_out, n_in)] + ([randn(n_out)] if bias else [])
    gradcheck(linear_fn(n_in, n_out, bias), *inputs, name=f"Linear batch={batch} bias={bias}")


def test_sequential_gradcheck():
    model = Sequential(Linear(4, 5), Tanh(), Linear(5, 3))

    def fn(x, W1, b1, W2, b2):
        model[0].weight, model[0].bias, model[2].weight, model[2].bias = W1, b1, W2, b2
        return model(x)

    gradcheck(fn, randn(6, 4), randn(5, 4), randn(5), randn(3, 5), randn(3),
              name="Sequential(Linear, Tanh, Linear)")


def test_dropout_gradcheck_with_fixed_mask():
    drop = Dropout(0.4)

    def fn(x):
        tt.manual_seed(123)  # the same mask on every call
        return drop(x)

    gradcheck(fn, randn(7, 6), name="Dropout (fixed mask)")
    x = Tensor(np.ones((50, 40)), dtype=np.float64, requires_grad=True)
    tt.manual_seed(1)
    out = drop(x)
    out.sum().backward()
    assert_close(x.grad, out.data, "Dropout backward (the gradient is the mask / (1 - p))")


def test_flatten_gradcheck():
    gradcheck(lambda x: Flatten()(x) * 1.5, randn(2, 3, 2, 2), name="Flatten")


@pytest.mark.parametrize("shape", [(6, 5), (2, 4, 5), (5,)])
def test_linear_vs_torch(shape):
    torch = pytest.importorskip("torch")
    fn = linear_fn(5, 3)
    x, W, b = (a.astype(np.float32) for a in (randn(*shape), randn(3, 5), randn(3)))
    torch_parity(fn, torch.nn.functional.linear, x, W, b, name=f"Linear {shape} vs torch")


def test_training_step_and_zero_grad():
    tt.manual_seed(0)
    model = Sequential(Linear(8, 16), Tanh(), Dropout(0.1), Linear(16, 3))
    x = Tensor(randn(32, 8).astype(np.float32))
    y = rng.integers(0, 3, 32)
    loss_fn = CrossEntropyLoss()

    def grads():
        tt.manual_seed(5)
        model.zero_grad()
        loss_fn(model(x), y).backward()
        return [p.grad.data.copy() for p in model.parameters()]

    g1, g2 = grads(), grads()
    for p, a, b in zip(model.parameters(), g1, g2):
        assert p.grad.dtype == np.float32 and np.isfinite(a).all() and np.abs(a).sum() > 0
        np.testing.assert_array_equal(a, b)  # zero_grad: no accumulation across steps
    losses = []
    for _ in range(150):
        model.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        for p in model.parameters():
            p.data -= 0.5 * p.grad.data
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    model.eval()
    with tt.no_grad():
        out = model(x)
    assert not out.requires_grad


def test_state_dict_round_trip_keeps_training():
    src, dst = Sequential(Linear(3, 4), Tanh(), Linear(4, 2)), Sequential(Linear(3, 4), Tanh(), Linear(4, 2))
    params = dst.parameters()
    dst.load_state_dict(src.state_dict())
    x = Tensor(randn(5, 3).astype(np.float32))
    dst(x).sum().backward()
    assert all(p.grad is not None for p in params)  # the same Parameter objects still train
    assert_close(dst(x), src(x).data, "load_state_dict")
