"""The backward engine names the rule when a rule returns a gradient of the wrong shape.

A rule may return a gradient in its output's broadcast shape (the engine sums it back to the
parent), but a gradient the parent's shape does not broadcast to is a bug in the rule. The engine
must say which rule (op name and function) and both shapes - not fail later with a bare NumPy
broadcasting error, or silently reshape a transposed gradient of the same size.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinytorch import autograd
from tinytorch.tensor import Tensor

OP = "test_wrong_shape_op"


def transposed_backward(g, out):
    """Wrong: the same number of elements, transposed - a reshape would hide it."""
    return (g.T,)


def unreduced_backward(g, out):
    """Wrong: forgets that the forward summed over axis 0."""
    return (np.ones((4, 3), dtype=g.dtype),)


def too_small_backward(g, out):
    """Wrong: a gradient smaller than the parent (it would have to be broadcast *up*)."""
    return (g[0],)


def stretched_backward(g, out):
    """Right: a gradient in a broadcast shape of the parent, for the engine to sum back."""
    return (np.broadcast_to(g, (4, 3)),)


def second_parent_wrong_backward(g, out):
    return g, g.T


@pytest.fixture
def rule(monkeypatch):
    """Register a rule for OP for one test (the table is restored afterwards)."""
    def register(fn):
        monkeypatch.setitem(autograd.BACKWARD, OP, fn)
        return fn
    return register


def node(*parents, shape):
    return Tensor._make(np.zeros(shape, np.float32), parents, OP)


@pytest.mark.parametrize("fn, parent_shape, out_shape, grad_shape", [
    (transposed_backward, (2, 3), (2, 3), (3, 2)),
    (unreduced_backward, (2, 3), (2, 3), (4, 3)),
    (too_small_backward, (2, 3), (2, 3), (3,)),
], ids=["transposed", "not_broadcastable", "too_small"])
def test_wrong_gradient_shape_names_the_rule_and_both_shapes(rule, fn, parent_shape, out_shape,
                                                             grad_shape):
    rule(fn)
    a = Tensor(np.ones(parent_shape, np.float32), requires_grad=True)
    out = node(a, shape=out_shape)
    with pytest.raises(RuntimeError) as info:
        out.backward(np.ones(out_shape, np.float32))
    msg = str(info.value)
    assert fn.__name__ in msg and f"{fn.__module__}.{fn.__qualname__}" in msg, msg  # the function
    assert repr(OP) in msg, msg  # the op
    assert str(grad_shape) in msg and str(parent_shape) in msg, msg  # both shapes
    assert "parent 0" in msg, msg
    assert a.grad is None  # nothing half-accumulated into the leaf


def test_the_parent_index_is_named(rule):
    rule(second_parent_wrong_backward)
    a = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    b = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"parent 1, which has shape \(2, 3\)"):
        autograd.backward(node(a, b, shape=(2, 3)), np.ones((2, 3), np.float32))


def test_a_broadcast_gradient_is_still_summed_back(rule):
    """The check only rejects what cannot be un-broadcast: (4, 3) for a (1, 3) parent is fine."""
    rule(stretched_backward)
    a = Tensor(np.ones((1, 3), np.float32), requires_grad=True)
    seed = np.array([[1.0, 2.0, 3.0]], np.float32)
    node(a, shape=(1, 3)).backward(seed)
    np.testing.assert_array_equal(a.grad.data, 4 * seed)


def test_a_wrong_rule_deep_in_a_graph_is_named(rule):
    """The error comes from the rule's own node, even when correct rules run before and after."""
    rule(transposed_backward)
    w = Tensor(np.full((2, 3), 0.5, np.float32), requires_grad=True)
    h = w * 2.0  # a correct rule below ...
    loss = (node(h, shape=(2, 3)) + 1.0).sum()  # ... and correct rules above
    with pytest.raises(RuntimeError, match=rf"transposed_backward for op '{OP}'.*\(3, 2\)"):
        loss.backward()


def test_the_real_rules_pass_the_shape_check():
    """Broadcasting ops whose rules return the output's shape still work (the engine sums)."""
    x = Tensor(np.ones((4, 3), np.float32), requires_grad=True)
    b = Tensor(np.ones(3, np.float32), requires_grad=True)
    c = Tensor(np.ones((4, 1), np.float32), requires_grad=True)
    ((x * b + c) / b).sum().backward()
    assert b.grad.shape == (3,) and c.grad.shape == (4, 1) and x.grad.shape == (4, 3)
