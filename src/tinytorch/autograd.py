# %% [markdown]
# # Module 06 - Autograd
#
# Modules 01-05 already record, for every result, the op that made it and its parents. This module
# turns that record into gradients: one backward rule per op (the table below), and an engine that
# walks the graph from the loss back to the parameters, applying the chain rule.

# %%
"""Module 06: reverse-mode automatic differentiation.

Chain rule. If out = f(a, b) and L is the final scalar, then with g = dL/dout:

    dL/da = g * df/da,     dL/db = g * df/db       (elementwise ops)
    dL/dA = g @ B^T,       dL/dB = A^T @ g          (out = A @ B)

A rule receives g (shaped like `out`) and returns one gradient per parent (None = not needed).
Rules may return gradients in the broadcast shape; the engine sums them back to each parent's
shape (`unbroadcast`). The engine visits nodes in reverse topological order, found with an
explicit stack (no recursion: a 10,000-op chain is fine), so a node's gradient is complete
before it is passed on.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from tinytorch.tensor import Tensor, is_grad_enabled, no_grad  # noqa: F401  (re-exported)

Rule = Callable[[np.ndarray, Tensor], tuple]
BACKWARD: dict[str, Rule] = {}


def register_backward(op: str):
    """Decorator: `@register_backward("conv2d")` adds a rule to the table (used by modules 09+)."""

    def deco(fn: Rule) -> Rule:
        BACKWARD[op] = fn
        return fn

    return deco


def _need(t: Tensor) -> bool:
    return t.requires_grad


# ---------------------------------------------------------------------------------------------
# Elementwise arithmetic (module 01)
# ---------------------------------------------------------------------------------------------
@register_backward("add")
def add_backward(g, out):
    ### BEGIN SOLUTION
    return g, g
    ### END SOLUTION


@register_backward("sub")
def sub_backward(g, out):
    ### BEGIN SOLUTION
    return g, -g
    ### END SOLUTION


@register_backward("mul")
def mul_backward(g, out):
    a, b = out._parents
    ### BEGIN SOLUTION
    return (g * b.data if _need(a) else None), (g * a.data if _need(b) else None)
    ### END SOLUTION


@register_backward("div")
def div_backward(g, out):
    """d(a/b)/da = 1/b,  d(a/b)/db = -a/b^2."""
    a, b = out._parents
    ### BEGIN SOLUTION
    ga = g / b.data if _need(a) else None
    gb = -g * a.data / (b.data * b.data) if _need(b) else None
    return ga, gb
    ### END SOLUTION


@register_backward("pow")
def pow_backward(g, out):
    """d(a^b)/da = b a^(b-1),  d(a^b)/db = a^b ln a.

    As in torch, a^0 has slope 0 in a (even at a = 0), and 0^b (b >= 0) has slope 0 in b.
    """
    a, b = out._parents
    ### BEGIN SOLUTION
    ga = gb = None
    with np.errstate(divide="ignore", invalid="ignore"):  # 0^-1 and log 0 are masked below
        if _need(a):
            ga = g * np.where(b.data == 0, 0, b.data * a.data ** (b.data - 1))
        if _need(b):
            gb = g * np.where((a.data == 0) & (b.data >= 0), 0, out.data * np.log(a.data))
    return ga, gb
    ### END SOLUTION


@register_backward("neg")
def neg_backward(g, out):
    ### BEGIN SOLUTION
    return (-g,)
    ### END SOLUTION


@register_backward("matmul")
def matmul_backward(g, out):
    """out = A @ B:  dA = g @ B^T,  dB = A^T @ g  (1-D operands are promoted, as in NumPy)."""
    a, b = out._parents
    A, B = a.data, b.data
    ### BEGIN SOLUTION
    if A.ndim == 1 and B.ndim == 1:  # dot product: g is a scalar
        return (g * B if _need(a) else None), (g * A if _need(b) else None)
    if A.ndim == 1:  # (k,) @ (..., k, m) -> (..., m)
        ga = (g[..., None, :] @ np.swapaxes(B, -1, -2))[..., 0, :] if _need(a) else None
        gb = A[:, None] * g[..., None, :] if _need(b) else None
        return ga, gb
    if B.ndim == 1:  # (..., n, k) @ (k,) -> (..., n)
        ga = g[..., :, None] * B if _need(a) else None
        gb = (np.swapaxes(A, -1, -2) @ g[..., :, None])[..., 0] if _need(b) else None
        return ga, gb
    if not _need(a):
        ga = None
    elif B.ndim == 2:  # fold batch dims into one big matmul: (..., n, m) @ (m, k)
        ga = (g.reshape(-1, g.shape[-1]) @ B.T).reshape(*g.shape[:-1], B.shape[0])
    else:
        ga = g @ np.swapaxes(B, -1, -2)
    if not _need(b):
        gb = None
    elif B.ndim == 2:  # a shared weight: fold any batch dims into one big matmul
        A2, g2 = A.reshape(-1, A.shape[-1]), g.reshape(-1, g.shape[-1])  # (M, k), (M, m)
        # x @ W.T passes W as a transposed view: return dW in W's own (row-major) layout, since
        # a strided dW makes every optimizer update on it several times slower
        gb = A2.T @ g2 if B.flags.c_contiguous else (g2.T @ A2).T  # (k, m)
    else:
        gb = np.swapaxes(A, -1, -2) @ g
    return ga, gb
    ### END SOLUTION


# ---------------------------------------------------------------------------------------------
# Reductions and shape ops (module 01)
# ---------------------------------------------------------------------------------------------
def _expand(g: np.ndarray, shape: tuple, axis, keepdims: bool) -> np.ndarray:
    """Put back the axes a reduction removed, then broadcast g to `shape`."""
    if axis is not None and not keepdims:
        g = np.expand_dims(g, axis)
    return np.broadcast_to(g, shape)


@register_backward("sum")
def sum_backward(g, out):
    (a,) = out._parents
    axis, keepdims = out._saved
    ### BEGIN SOLUTION
    return (_expand(g, a.shape, axis, keepdims),)
    ### END SOLUTION


@register_backward("mean")
def mean_backward(g, out):
    (a,) = out._parents
    axis, keepdims = out._saved
    ### BEGIN SOLUTION
    count = a.data.size // max(out.data.size, 1)
    return (_expand(g, a.shape, axis, keepdims) / count,)
    ### END SOLUTION


def _extreme_backward(g, out):
    """max/min: the gradient flows to the winning element(s); ties split it evenly."""
    (a,) = out._parents
    axis, keepdims = out._saved
    ### BEGIN SOLUTION
    winner = (a.data == _expand(out.data, a.shape, axis, keepdims)).astype(g.dtype)
    share = winner / winner.sum(axis=axis, keepdims=True)
    return (_expand(g, a.shape, axis, keepdims) * share,)
    ### END SOLUTION


register_backward("max")(_extreme_backward)
register_backward("min")(_extreme_backward)


@register_backward("reshape")
def reshape_backward(g, out):
    ### BEGIN SOLUTION
    return (g.reshape(out._parents[0].shape),)
    ### END SOLUTION


@register_backward("permute")
def permute_backward(g, out):
    ### BEGIN SOLUTION
    return (np.transpose(g, np.argsort(out._saved)),)
    ### END SOLUTION


@register_backward("getitem")
def getitem_backward(g, out):
    """Scatter g back into a zero array; repeated fancy indices add up (np.add.at)."""
    (a,) = out._parents
    idx = out._saved
    ### BEGIN SOLUTION
    full = np.zeros(a.shape, dtype=g.dtype)
    items = idx if isinstance(idx, tuple) else (idx,)
    if all(isinstance(i, (int, slice, type(None), type(Ellipsis))) for i in items):
        full[idx] = g
    else:
        np.add.at(full, idx, g)
    return (full,)
    ### END SOLUTION


# ---------------------------------------------------------------------------------------------
# Elementwise math (module 01)
# ---------------------------------------------------------------------------------------------
@register_backward("exp")
def exp_backward(g, out):
    ### BEGIN SOLUTION
    return (g * out.data,)
    ### END SOLUTION


@register_backward("log")
def log_backward(g, out):
    ### BEGIN SOLUTION
    return (g / out._parents[0].data,)
    ### END SOLUTION


@register_backward("sqrt")
def sqrt_backward(g, out):
    ### BEGIN SOLUTION
    return (g * 0.5 / out.data,)
    ### END SOLUTION


@register_backward("abs")
def abs_backward(g, out):
    ### BEGIN SOLUTION
    return (g * np.sign(out._parents[0].data),)
    ### END SOLUTION


@register_backward("clip")
def clip_backward(g, out):
    """The gradient passes where lo <= x <= hi, and is 0 where the value was clamped."""
    x = out._parents[0].data
    lo, hi = out._saved
    ### BEGIN SOLUTION
    inside = np.ones(x.shape, dtype=bool)
    if lo is not None:
        inside &= x >= lo
    if hi is not None:
        inside &= x <= hi
    return (g * inside,)
    ### END SOLUTION


# ---------------------------------------------------------------------------------------------
# Activations (module 02)
# ---------------------------------------------------------------------------------------------
@register_backward("relu")
def relu_backward(g, out):
    ### BEGIN SOLUTION
    return (g * (out.data > 0),)
    ### END SOLUTION


@register_backward("leaky_relu")
def leaky_relu_backward(g, out):
    slope = out._saved
    ### BEGIN SOLUTION
    return (np.where(out._parents[0].data > 0, g, g * slope),)
    ### END SOLUTION


@register_backward("sigmoid")
def sigmoid_backward(g, out):
    """s' = s (1 - s)."""
    ### BEGIN SOLUTION
    s = out.data
    return (g * s * (1 - s),)
    ### END SOLUTION


@register_backward("tanh")
def tanh_backward(g, out):
    """tanh' = 1 - tanh^2."""
    ### BEGIN SOLUTION
    return (g * (1 - out.data * out.data),)
    ### END SOLUTION


@register_backward("gelu")
def gelu_backward(g, out):
    """y = x/2 (1 + t), t = tanh(c (x + 0.044715 x^3)):
    y' = (1 + t)/2 + x/2 (1 - t^2) c (1 + 3 * 0.044715 x^2)."""
    x, t, c = out._parents[0].data, out._saved, float(np.sqrt(2 / np.pi))
    ### BEGIN SOLUTION
    x2 = x * x
    dy = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x2)
    return (g * dy.astype(x.dtype, copy=False),)
    ### END SOLUTION


@register_backward("softmax")
def softmax_backward(g, out):
    """s = softmax(x):  dx = s * (g - sum(g * s))  along the softmax axis."""
    axis, s = out._saved, out.data
    ### BEGIN SOLUTION
    return (s * (g - (g * s).sum(axis=axis, keepdims=True)),)
    ### END SOLUTION


@register_backward("log_softmax")
def log_softmax_backward(g, out):
    """y = x - logsumexp(x):  dx = g - softmax(x) * sum(g)."""
    axis = out._saved
    ### BEGIN SOLUTION
    return (g - np.exp(out.data) * g.sum(axis=axis, keepdims=True),)
    ### END SOLUTION


# ---------------------------------------------------------------------------------------------
# Layers (module 03): Linear is one fused op
# ---------------------------------------------------------------------------------------------
@register_backward("linear")
def linear_backward(g, out):
    """y = x W^T + b over the last axis of x:  dx = g W,  dW = g^T x,  db = sum of g over the batch.
    Batch axes are folded into one, so each is a single 2-D matmul."""
    x, W = out._parents[0], out._parents[1]
    ### BEGIN SOLUTION
    g2 = g.reshape(-1, g.shape[-1])  # (N, out)
    gx = (g2 @ W.data).reshape(x.shape) if _need(x) else None  # (N, out) @ (out, in)
    gW = g2.T @ x.data.reshape(-1, x.shape[-1]) if _need(W) else None  # (out, N) @ (N, in)
    if len(out._parents) == 2:
        return gx, gW
    return gx, gW, g2.sum(axis=0)
    ### END SOLUTION


# ---------------------------------------------------------------------------------------------
# Losses (module 04): fused, so the backward is one cheap expression
# ---------------------------------------------------------------------------------------------
@register_backward("cross_entropy")
def cross_entropy_backward(g, out):
    """L = -sum_c q_c log p_c (averaged over N): dL/dlogits = (p - q) / N, with q the
    (smoothed) one-hot target distribution."""
    probs, targets, smoothing, scale = out._saved
    ### BEGIN SOLUTION
    grad = probs - smoothing / probs.shape[1]  # p - q, built in a fresh array
    grad[np.arange(len(targets)), targets] -= 1 - smoothing
    return grad * (g * scale), None
    ### END SOLUTION


@register_backward("bce")
def bce_backward(g, out):
    """L = -mean(y log p + (1-y) log(1-p)):  dL/dp = (p - y) / (p (1 - p)) / N."""
    p, y = out._parents[0].data, out._parents[1].data
    scale = out._saved
    ### BEGIN SOLUTION
    denom = np.maximum(p * (1 - p), 1e-12)
    return (g * scale * (p - y) / denom), None
    ### END SOLUTION


@register_backward("bce_with_logits")
def bce_with_logits_backward(g, out):
    """L = mean(softplus(x) - x y):  dL/dx = (sigmoid(x) - y) / N."""
    y = out._parents[1].data
    sig, scale = out._saved
    ### BEGIN SOLUTION
    return (g * scale * (sig - y)), None
    ### END SOLUTION


# ---------------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------------
def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum `grad` over the axes that broadcasting stretched, so it matches `shape`.

    (4, 3) -> (3,): sum axis 0.    (4, 3) -> (4, 1): sum axis 1, keep it.
    """
    if grad.shape == shape:
        return grad
    ### BEGIN SOLUTION
    if grad.ndim > len(shape):
        grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad.reshape(shape)
    ### END SOLUTION


def topological_order(root: Tensor) -> list[Tensor]:
    """Every node that `root` depends on (needing a gradient), parents before children.

    Iterative depth-first search with an explicit stack: no recursion limit.
    """
    ### BEGIN SOLUTION
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for p in node._parents:
            if p.requires_grad and id(p) not in seen:
                stack.append((p, False))
    return order
    ### END SOLUTION


def backward(root: Tensor, grad=None) -> None:
    """Accumulate d(root)/d(leaf) into `leaf.grad` for every leaf that requires a gradient.

    `grad` defaults to 1 for a one-element root (like torch: a loss). Leaves accumulate across
    calls (`.grad` += ...), so call `zero_grad()` between steps.
    """
    if not root.requires_grad:
        raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        grad = np.ones_like(root.data)
    grad = np.array(grad.data if isinstance(grad, Tensor) else grad, dtype=root.data.dtype)  # a copy
    ### BEGIN SOLUTION
    grads = {id(root): grad}
    handed = set()  # ids of arrays already stored as some leaf's .grad in this pass
    with no_grad():
        for node in reversed(topological_order(root)):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._op is None:  # a leaf: accumulate into .grad
                g = unbroadcast(g, node.shape).astype(node.data.dtype, copy=False)
                if node.grad is None:
                    # .grad must own its memory (optimizers update it in place): copy views,
                    # read-only broadcasts and arrays another leaf already holds
                    if g.base is not None or not g.flags.writeable or id(g) in handed:
                        g = g.copy()
                    handed.add(id(g))
                    node.grad = Tensor(g, dtype=node.data.dtype)
                else:
                    node.grad.data = node.grad.data + g
                continue
            rule = BACKWARD.get(node._op)
            if rule is None:
                raise RuntimeError(f"no backward rule for op {node._op!r}")
            for parent, pg in zip(node._parents, rule(g, node)):
                if pg is None or not parent.requires_grad:
                    continue
                pg = unbroadcast(np.asarray(pg), parent.shape)
                key = id(parent)
                grads[key] = pg if key not in grads else grads[key] + pg
    ### END SOLUTION
