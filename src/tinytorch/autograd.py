# %% [markdown]
# # Module 06 - Autograd
#
# Modules 01-05 record, for every result, the op that made it and its parents. Here you turn that
# record into gradients: one backward rule per op, and the engine that walks the graph from the
# loss back to every parameter, applying the chain rule. After this, `loss.backward()` works on
# everything you have built.
#
# Complete it (and module 07, the optimizers) and the backpropagation milestones unlock: a hidden
# layer that solves XOR (milestone 02, part 2) and the 1986 MLP on MNIST (milestone 03).
#
# ## What you build
#
# | step | you write | checked by |
# |---|---|---|
# | 1 | `unbroadcast(grad, shape)`: a gradient summed back to its tensor's shape | `check("06", "unbroadcast")` |
# | 2 | `topological_order(root)`: every node after its parents, with an explicit stack | `check("06", "topological_order_diamond")` |
# | 3 | `backward(root, grad)`: the engine - seed, reverse walk, accumulate | the engine checkpoint after step 7 |
# | 4 | `add`, `sub`, `neg`, `mul`, `div`, `pow` rules | `check("06", "add_backward")`, ... |
# | 5 | `matmul_backward`: $dA = GB^\top$, $dB = A^\top G$ | `check("06", "matmul_backward")` |
# | 6 | `sum`, `mean` and `max`/`min` rules | `check("06", "sum_backward")`, ... |
# | 7 | `reshape`, `permute` and `getitem` rules | `check("06", "getitem_backward")`, ... |
# | 8 | `exp`, `log`, `sqrt`, `abs`, `clip` rules | `check("06", "exp_backward")`, ... |
# | 9 | the activations: `relu`/`leaky_relu`, `sigmoid`, `tanh`, `gelu`, `softmax`/`log_softmax` | `check("06", "relu_backward")`, ... |
# | 10 | the fused ops: `linear`, `cross_entropy`, `bce`/`bce_with_logits` | `check("06", "linear_backward")`, ... |
#
# Every rule goes into one table, `BACKWARD`, keyed by the op name that the forward pass
# recorded. A rule gets `g` $= \partial L/\partial\,\text{out}$ and the output tensor, and returns
# one gradient per parent (`None` where a parent needs none).
#
# **Why the engine comes first.** Each rule's check runs your rule *through your engine*: it
# builds a tiny graph, calls `backward`, and compares every gradient with central differences in
# float64. So steps 1-3 come before the rules. The engine's own checks (long chains, accumulation,
# zeroing, `no_grad`) in turn need a handful of rules, so they run at the checkpoint after step 7.
#
# How to work: read a section, fill in the code cell below it (your copy says
# `# YOUR CODE HERE` and `raise NotImplementedError()`), run the "try it" cell, which compares your
# rule with a finite difference on a tiny input, then run the check cell. A check cell runs the
# same checks as `tito module test 06 --task <name>` and prints the same table.

# %%
"""Module 06: reverse-mode automatic differentiation.

Chain rule. If out = f(a, b) and L is the final scalar, then with g = dL/dout:

    dL/da = g * df/da,     dL/db = g * df/db       (elementwise ops)
    dL/dA = g @ B^T,       dL/dB = A^T @ g          (out = A @ B)

A rule receives g (shaped like `out`) and returns one gradient per parent (None = not needed).
Rules may return gradients in the broadcast shape; the engine sums them back to each parent's
shape (`unbroadcast`), and refuses - naming the rule - a gradient that cannot be summed back.
The engine visits nodes in reverse topological order, found with an explicit stack (no
recursion: a 10,000-op chain is fine), so a node's gradient is complete before it is passed on.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from tinytorch.tensor import Tensor, is_grad_enabled, no_grad  # noqa: F401  (re-exported)

# %% [markdown]
# ## The graph you already have, and the chain rule
#
# Every op of modules 01-05 ends with `Tensor._make(data, parents, op, saved)`. When some parent
# requires a gradient, the result remembers three things: `out._op`, the op's name (`"mul"`);
# `out._parents`, the input tensors; and `out._saved`, whatever else the derivative will need
# that is not already on the parents or the output (an axis, a mask, the softmax probabilities).
# Leaves - tensors you made yourself, such as weights - have `_op = None`.
#
# Reverse mode walks that record backwards. Let $L$ be the scalar at the end (the loss) and, for
# any tensor $t$ in the graph, write $\bar t = \partial L / \partial t$, an array of $t$'s shape.
# If $\text{out} = f(a, b)$, the chain rule says
#
# $$\bar a = \sum_{\text{out elements } j} \bar{\text{out}}_j \, \frac{\partial\, \text{out}_j}{\partial a},$$
#
# a *vector-Jacobian product*. A backward rule computes exactly this, for one op, without ever
# building the Jacobian: it gets $g = \bar{\text{out}}$ and returns $(\bar a, \bar b)$.
#
# A worked example with numbers: $x = 2$, $w = 3$, $b = 1$, $y = xw + b = 7$, $L = y^2 = 49$.
# Going backwards: $\bar L = 1$; the square's rule gives $\bar y = 2y \cdot 1 = 14$; the add's
# rule passes 14 on to both of its inputs, so $\bar b = 14$ and $\overline{xw} = 14$; the
# multiply's rule gives $\bar x = 14 \cdot w = 42$ and $\bar w = 14 \cdot x = 28$. Check one by
# nudging: with $w = 3.001$, $L = 7.002^2 = 49.028004$, so $\Delta L / \Delta w \approx 28.0$.
# Each rule only needed its own inputs and the $g$ handed to it - that locality is what makes
# reverse mode work on graphs of any size, at a cost of about one extra forward pass.
#
# The table and the decorator that fills it are given. `_need(t)` tells a rule whether a parent
# wants a gradient at all: skipping one that does not (the input images, say) saves real work.

# %%
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


# %% [markdown]
# ### A finite-difference oracle for the "try it" cells
#
# How do you know a rule is right? Nudge the input and watch the output. The central difference
#
# $$\frac{\partial F}{\partial x_i} \approx \frac{F(x + \epsilon e_i) - F(x - \epsilon e_i)}{2\epsilon}$$
#
# has an error of order $\epsilon^2$ (the one-sided version only $\epsilon$), so in float64 with
# $\epsilon = 10^{-6}$ it agrees with a correct derivative to about 8-10 digits. In float32 it is
# useless at that $\epsilon$: float32 keeps about 7 digits, so $F(x+\epsilon) - F(x-\epsilon)$ would be
# mostly rounding noise. That is why the try-it cells below use float64 tensors, and why the
# checks do the same.
#
# `numerical_grad(f, x, g)` computes $\partial \sum (g \cdot f(x)) / \partial x$ - the same
# vector-Jacobian product a rule returns - for a plain NumPy function `f` of one array. It costs
# two evaluations of `f` per element of `x`: fine for 6 numbers, hopeless for the 235,146 weights
# of the MNIST MLP (470,292 forward passes for one gradient). Backpropagation gets all of them for
# the price of about one more pass; that difference is the whole reason this module exists.

# %%
def numerical_grad(f, x, g=None, eps: float = 1e-6) -> np.ndarray:
    """d sum(g * f(x)) / dx by central differences (float64); g=None means g = 1 everywhere.

    f: a NumPy function of ONE array. Used by the "try it" cells to judge a rule.
    """
    x = np.array(x, dtype=np.float64)  # a copy, nudged in place below
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        keep = x[i]
        x[i] = keep + eps
        hi = np.sum(f(x) if g is None else g * f(x))
        x[i] = keep - eps
        lo = np.sum(f(x) if g is None else g * f(x))
        x[i] = keep
        grad[i] = (hi - lo) / (2 * eps)
    return grad


# %% [markdown]
# # Part 1 - The engine
#
# ## Step 1: `unbroadcast` - broadcasting runs backward as a sum
#
# When `x` of shape (4, 3) is added to `b` of shape (3,), NumPy stretches `b` into four identical
# rows. Each copy of `b[j]` influences one output element, so its gradient collects from all four:
#
# $$\bar b_j = \sum_{i=1}^{4} g_{ij}.$$
#
# In general, sum over every axis that broadcasting created or stretched: first the *leading*
# axes that `b` did not have at all (shape (4, 3) to (3,): sum axis 0), then the axes where `b`
# had size 1 and the gradient does not (shape (4, 3) to (4, 1): sum axis 1, keeping it as size
# 1). Worked example: with $g$ all ones of shape (4, 3), `unbroadcast(g, (3,))` is `[4, 4, 4]`
# and `unbroadcast(g, (4, 1))` is a column of 3s. Broadcasting a scalar to (2, 3) and back gives
# the sum of all six entries, returned as a 0-d array of shape `()`.
#
# Formally, `unbroadcast` is the *adjoint* of broadcasting: for every array $v$ of the small
# shape, $\langle \text{unbroadcast}(G), v\rangle = \langle G, \text{broadcast}(v)\rangle$. One of
# the checks tests exactly that identity on random shapes, 0-d included.
#
# Because of this helper, no rule ever has to think about broadcasting: `add_backward` may return
# `g` in the output's shape, and the engine calls `unbroadcast` for every parent. **Systems
# view:** the sum reads the whole gradient once - $O(\text{size of } g)$ time, with an output no
# bigger than the parent. Skip the work when the shapes already match (most of the time, in a
# real network): return `grad` itself, no copy.

# %% nbgrader={"grade": false, "grade_id": "unbroadcast", "locked": false, "schema_version": 3, "solution": true, "task": false}
def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum `grad` over the axes that broadcasting stretched, so it matches `shape`.

    (4, 3) -> (3,): sum axis 0.    (4, 3) -> (4, 1): sum axis 1, keep it.
    """
    if grad.shape == shape:
        return grad
    # HINT: first sum the leading axes that `shape` does not have (grad.ndim - len(shape) of them),
    # HINT: then, with keepdims=True, the axes where shape has a 1 and grad does not
    ### BEGIN SOLUTION
    if grad.ndim > len(shape):
        grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad.reshape(shape)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    g = np.ones((4, 3))
    print("(4, 3) -> (3,):  ", unbroadcast(g, (3,)))
    print("(4, 3) -> (4, 1):", unbroadcast(g, (4, 1)).ravel(), "as a column")
    print("(2, 3) -> ():    ", unbroadcast(np.arange(6.0).reshape(2, 3), ()), "(0 + 1 + ... + 5)")
    big = np.arange(24.0).reshape(2, 3, 4)
    v = np.array([[[1.0], [2.0], [3.0]]])  # shape (1, 3, 1): the adjoint identity, on numbers
    lhs = float((unbroadcast(big, v.shape) * v).sum())
    rhs = float((big * np.broadcast_to(v, big.shape)).sum())
    print(f"<unbroadcast(G), v> = {lhs}   <G, broadcast(v)> = {rhs}")

# %% nbgrader={"grade": true, "grade_id": "check-unbroadcast", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "unbroadcast")

# %% [markdown]
# ## Step 2: `topological_order` - who waits for whom
#
# A node's gradient is complete only when *every* consumer of that node has handed back its
# share. In $y = x \cdot x + x$, the tensor `x` feeds two ops (three uses); its gradient is
# $2x + 1$, and it is wrong if the engine passes `x`'s gradient on after only one of them. The
# fix is an order: list the nodes so that each comes after all of its parents (a *topological
# order*), and walk that list backwards. Then every consumer is processed before the node it
# consumes.
#
# Depth-first search gives such an order: a node is appended only after all its parents have
# been appended. For the graph `a = x*w; b = a + c; d = a.exp(); e = b*d; root = e.sum()` one
# valid answer is `[x, w, a, b, d, e, root]`, and `[w, x, a, d, b, e, root]` is another: in both
# the root is last, and `a` comes before both `b` and `d`. The constant `c` (no `requires_grad`)
# is left out - no gradient ever flows into it.
#
# **Why not recursion?** The textbook DFS calls itself once per level, and Python stops at
# `sys.getrecursionlimit()`, 1000 frames by default. A plain chain of 1,000 ops - an RNN unrolled
# over 500 time steps, or the 10,000-op chain the checks build - would crash with `RecursionError`.
# So keep your own stack of `(node, done)` pairs: pop a node; if it is marked done (its parents were
# pushed, and so have been listed, since then), append it to the order; otherwise push it back
# marked done and push its parents on top of it. A `seen` set (of `id(node)`, since a Tensor
# compares elementwise) makes each node visited once: in a "ladder" where every step uses the
# previous node twice, there are $2^{12}$ paths through 12 steps but only 25 nodes, and a walk
# without `seen` would take all 4,096 paths.
#
# **Systems view:** $O(\text{nodes} + \text{edges})$ time, and the order list holds one reference
# per node. Python-level work per node is a few hundred nanoseconds here; the rules cost more.

# %% nbgrader={"grade": false, "grade_id": "topological-order", "locked": false, "schema_version": 3, "solution": true, "task": false}
def topological_order(root: Tensor) -> list[Tensor]:
    """Every node that `root` depends on (needing a gradient), parents before children.

    Iterative depth-first search with an explicit stack: no recursion limit.
    """
    # HINT: a stack of (node, done) pairs, starting with [(root, False)], and a set of the id()s
    # HINT: seen; push only parents that require grad; append a node when it comes back done
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


# %%
if __name__ == "__main__":
    x = Tensor([1.0, 2.0], requires_grad=True)
    w = Tensor([3.0, 4.0], requires_grad=True)
    c = Tensor([5.0, 6.0])  # a constant
    a = x * w
    b = a + c
    d = a.exp()
    e = b * d
    root = e.sum()
    names = {id(x): "x", id(w): "w", id(a): "a", id(b): "b", id(d): "d", id(e): "e", id(root): "root"}
    print("order:", [names[id(n)] for n in topological_order(root)])
    y = x
    for _ in range(5000):  # 10,000 ops: far beyond Python's recursion limit
        y = y * 1.0001 + 0.5
    print("a 10,000-op chain has", len(topological_order(y)), "nodes in order")

# %% nbgrader={"grade": true, "grade_id": "check-topological-order", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "topological_order_diamond")

# %% [markdown]
# ## Step 3: `backward` - the engine
#
# With the order in hand, the engine is one loop. Seed the root with $\bar L = 1$ (for a loss),
# then visit the nodes from the root back to the leaves, keeping a dictionary `grads` from
# `id(node)` to the gradient collected so far:
#
# 1. take the node's gradient out of `grads` (`pop`: once passed on, the engine no longer needs
#    it, and its memory can be freed); skip nodes that received none;
# 2. a **leaf** (`node._op is None`) stores it: the first time as `node.grad`, later by *adding*
#    to it (`.grad` accumulates, exactly like PyTorch: two `backward()` calls give twice the
#    gradient, which is why training loops call `zero_grad()`);
# 3. an **op node** looks up its rule, `BACKWARD[node._op]`, calls `rule(g, node)`, and for each
#    parent that requires a gradient adds the returned array - brought to the parent's shape -
#    into `grads[id(parent)]`. A node used twice gets the sum of both contributions.
#
# All of this runs under `no_grad()`: the arithmetic on gradients must not record a graph of its
# own. Worked example, $L = \sum (x \cdot w)$ with $x = [1, 2]$, $w = [3, 4]$: the order is
# `[x, w, mul, sum]`; the sum's rule turns the seed 1 into $[1, 1]$; the mul's rule returns
# $g \cdot w = [3, 4]$ for $x$ and $g \cdot x = [1, 2]$ for $w$; the leaves store them.
#
# Three details matter for the code that comes after this module:
#
# - **`.grad` owns its memory.** Optimizers update `p.grad` in place (gradient clipping, weight
#   decay). `sum`'s rule returns a read-only broadcast *view*, and `add`'s rule hands the very
#   same array `g` to both parents. Stored as-is, `a.grad += 1` would also change `b.grad` (or
#   crash on the read-only view). So the first store copies anything that is a view, read-only,
#   or already held by another leaf; the `handed` set remembers which arrays are taken.
# - **dtype.** `.grad` has its tensor's dtype (float32), so one stray float64 constant in a rule
#   does not silently double the memory and time of every optimizer step.
# - **Two errors, like PyTorch.** A root that does not require a gradient has nothing to
#   differentiate; a root with more than one element needs an explicit `grad` (which vector
#   should the Jacobian be multiplied by?). Both lines before the loop are given.
#
# ### A rule that returns the wrong shape
#
# A rule may return its gradient in the *output's* broadcast shape, and the engine sums it back
# to the parent. But if the shapes cannot be related - a rule that returned `g.T`, or forgot to
# reduce an axis - summing cannot fix it, and NumPy's error (or worse, a silent `reshape` of a
# transposed array) would surface far from the bug. The given helper `_parent_grad` checks that
# the parent's shape broadcasts to the gradient's shape and otherwise raises a `RuntimeError`
# that names the op, the rule function and both shapes. The check costs one tuple comparison
# when the shapes agree. Call it for every parent gradient in your loop.

# %%
def _parent_grad(rule: Rule, node: Tensor, k: int, pg) -> np.ndarray:
    """The gradient `rule` returned for parent k of `node`, summed to that parent's shape.

    The parent's shape must broadcast to the gradient's shape (that is what unbroadcast undoes);
    anything else is a bug in the rule, reported with its name and both shapes.
    """
    pg, shape = np.asarray(pg), node._parents[k].shape
    if pg.shape == shape:
        return pg
    try:
        fits = np.broadcast_shapes(shape, pg.shape) == pg.shape
    except ValueError:  # the shapes do not broadcast at all
        fits = False
    if not fits:
        name = f"{getattr(rule, '__module__', None) or '?'}.{getattr(rule, '__qualname__', repr(rule))}"
        raise RuntimeError(
            f"backward rule {name} for op {node._op!r} returned a gradient of shape {pg.shape} for "
            f"parent {k}, which has shape {shape} (the op's output has shape {node.shape}): a rule "
            "must return a gradient of its parent's shape, or of a shape the parent broadcasts to")
    return unbroadcast(pg, shape)


# %% [markdown]
# Now the engine itself. The given lines check the root and make the seed a private copy in the
# root's dtype; you write the walk. **Systems view:** one backward pass runs every rule once,
# and keeps alive only the gradients of nodes that are still waiting for a consumer.

# %% nbgrader={"grade": false, "grade_id": "backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
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
    # HINT: grads = {id(root): grad}; under no_grad(), for node in reversed(topological_order(root)):
    # HINT: a leaf stores an owned copy in .grad (Tensor, node's dtype) or adds to it; an op node calls
    # HINT: BACKWARD[node._op](g, node) and adds _parent_grad(rule, node, k, pg) into grads[id(parent)]
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
            for k, (parent, pg) in enumerate(zip(node._parents, rule(g, node))):
                if pg is None or not parent.requires_grad:
                    continue
                pg = _parent_grad(rule, node, k, pg)
                key = id(parent)
                grads[key] = pg if key not in grads else grads[key] + pg
    ### END SOLUTION


# %%
if __name__ == "__main__":
    # no rule is written yet, so try the engine on what needs none: a leaf root, and the errors
    w = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    backward(w, np.array([0.1, 0.2, 0.3]))  # a leaf root: its gradient is the seed ...
    backward(w, np.array([0.1, 0.2, 0.3]))  # ... and a second call adds to it
    print("w.grad after two calls:", w.grad)
    try:
        backward(w)  # three elements: which seed would you mean?
    except RuntimeError as err:
        print("RuntimeError:", err)

    def transposed_backward(g, out):  # a deliberately wrong rule: the gradient is transposed
        return (g.T,)

    BACKWARD["demo_wrong_shape"] = transposed_backward
    try:
        m = Tensor(np.ones((2, 3)), requires_grad=True)
        demo = Tensor._make(m.data * 2, (m,), "demo_wrong_shape")
        backward(demo, np.ones((2, 3)))
    except RuntimeError as err:
        print("RuntimeError:", err)
    finally:
        del BACKWARD["demo_wrong_shape"]

# %% [markdown]
# The engine's own checks (a 10,000-op chain, accumulation like PyTorch, zeroing, gradients that
# never alias, `detach`, `no_grad`, non-scalar roots) build graphs of `+`, `*`, `sum`, `mean`,
# reshapes and indexing - so they run at the **engine checkpoint** after step 7, once those rules
# exist. Every rule check from here on also goes through your `backward`.
#
# # Part 2 - The rules
#
# A rule is usually one line of math, but three questions decide whether it is right: *what
# shape* is each returned gradient (the parent's, or one the engine can sum down to it), *what
# dtype* (float32 stays float32: multiply by Python floats or by arrays of the same dtype), and
# *what happens at the edges* (0-d inputs, kinks such as $|x|$ at 0, ties in a max). The checks
# try all three; the try-it cells show each rule next to a finite difference.
#
# ## Step 4: elementwise arithmetic
#
# ### `add`: $\text{out} = a + b$
#
# $\partial\,\text{out}/\partial a = 1$ and $\partial\,\text{out}/\partial b = 1$, so both parents
# receive $g$ unchanged: addition *routes* the gradient. If `b` was broadcast, the engine's
# `unbroadcast` does the summing - which is how a bias of shape (3,) added to a batch of 128 rows
# ends up with the sum of 128 rows of gradient. Returning the same array twice is fine: the
# engine copies before storing it as two leaves' `.grad`. Cost: zero FLOPs, zero new memory.

# %% nbgrader={"grade": false, "grade_id": "add-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
@register_backward("add")
def add_backward(g, out):
    ### BEGIN SOLUTION
    return g, g
    ### END SOLUTION


# %%
if __name__ == "__main__":
    a = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float64, requires_grad=True)
    b = Tensor([10.0, 20.0, 30.0], dtype=np.float64, requires_grad=True)
    out = a + b
    g = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    ga, gb = add_backward(g, out)
    print("rule for b, in the output's shape:", gb.shape, "-> unbroadcast:", unbroadcast(gb, b.shape))
    print("numeric for b:", numerical_grad(lambda v: a.data + v, b.data, g).round(6))

# %% nbgrader={"grade": true, "grade_id": "check-add-backward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "add_backward")

# %% [markdown]
# ### `sub` and `neg`: $\text{out} = a - b$, $\text{out} = -a$
#
# Subtraction is addition of the negative: $\bar a = g$, $\bar b = -g$. Negation has one parent,
# so its rule returns a tuple of one: `(-g,)` (the trailing comma matters - `(-g)` is just an
# array, and the engine would iterate over its rows). `1.0 - a` reaches `sub` too: module 01
# lifts the Python float into a constant Tensor, which needs no gradient.

# %% nbgrader={"grade": false, "grade_id": "sub-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
@register_backward("sub")
def sub_backward(g, out):
    ### BEGIN SOLUTION
    return g, -g
    ### END SOLUTION


# %%
if __name__ == "__main__":
    a = Tensor([1.0, 2.0], dtype=np.float64, requires_grad=True)
    b = Tensor([5.0, 7.0], dtype=np.float64, requires_grad=True)
    g = np.array([1.0, 10.0])
    print("rule    (da, db):", sub_backward(g, a - b))
    print("numeric  db:     ", numerical_grad(lambda v: a.data - v, b.data, g))

# %% nbgrader={"grade": true, "grade_id": "check-sub-backward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "sub_backward")

# %% [markdown]
# The rule for negation, one parent and one gradient:

# %% nbgrader={"grade": false, "grade_id": "neg-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
@register_backward("neg")
def neg_backward(g, out):
    ### BEGIN SOLUTION
    return (-g,)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    a = Tensor([1.0, -2.0], dtype=np.float64, requires_grad=True)
    print("rule:   ", neg_backward(np.array([1.0, 10.0]), -a))
    print("numeric:", numerical_grad(lambda v: -v, a.data, np.array([1.0, 10.0])))

# %% nbgrader={"grade": true, "grade_id": "check-neg-backward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "neg_backward")

# %% [markdown]
# ### `mul`: $\text{out} = a \cdot b$
#
# Each factor's gradient is $g$ times the *other* factor: $\bar a = g\,b$, $\bar b = g\,a$. With
# $a = [1, 2, 3]$, $b = [4, 5, 6]$ and $g = 1$: $\bar a = [4, 5, 6]$, $\bar b = [1, 2, 3]$. This is
# the first rule that needs saved values - the forward inputs - which is why a trained graph keeps
# its activations alive (more on that memory in the wrap-up). Use `_need`: when `b` is a constant
# (a mask, a fixed scale), `g * a.data` is a full-size multiply whose result would be thrown away.
# `a * a` is two edges to the same parent; the engine adds them, giving $2a\,g$.
#
# The check selector is `"[mul_backward"`, with the bracket: a plain `"mul_backward"` would also
# pick `matmul_backward`, which you have not written yet.

# %% nbgrader={"grade": false, "grade_id": "mul-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
@register_backward("mul")
def mul_backward(g, out):
    a, b = out._parents
    # HINT: each factor gets g times the other factor's data; None for a parent that needs none
    ### BEGIN SOLUTION
    return (g * b.data if _need(a) else None), (g * a.data if _need(b) else None)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    a = Tensor([1.0, 2.0, 3.0], dtype=np.float64, requires_grad=True)
    b = Tensor([4.0, 5.0, 6.0], dtype=np.float64)  # a constant: no gradient is computed for it
    g = np.array([1.0, 1.0, 2.0])
    print("rule    (da, db):", mul_backward(g, a * b))
    print("numeric  da:     ", numerical_grad(lambda v: v * b.data, a.data, g))

# %% nbgrader={"grade": true, "grade_id": "check-mul-backward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "[mul_backward")

# %% [markdown]
# ### `div`: $\text{out} = a / b$
#
# $\partial(a/b)/\partial a = 1/b$ and $\partial(a/b)/\partial b = -a/b^2$. With $a = 6$, $b = 2$:
# $\bar a = g/2$ and $\bar b = -1.5\,g$ ($b^2$ is one multiply, `b.data * b.data`). Both need
# the saved inputs; skip each one with `_need` when its parent is a constant. Division near
# $b = 0$ is unstable in both forward and backward - that is the caller's problem (the checks
# keep $|b| \ge 0.2$).

# %% nbgrader={"grade": false, "grade_id": "div-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
@register_backward("div")
def div_backward(g, out):
    """d(a/b)/da = 1/b,  d(a/b)/db = -a/b^2."""
    a, b = out._parents
    ### BEGIN SOLUTION
    ga = g / b.data if _need(a) else None
    gb = -g * a.data / (b.data * b.data) if _need(b) else None
    return ga, gb
    ### END SOLUTION


# %%
if __name__ == "__main__":
    a = Tensor([6.0, 1.0], dtype=np.float64, requires_grad=True)
    b = Tensor([2.0, -4.0], dtype=np.float64, requires_grad=True)
    g = np.ones(2)
    print("rule    (da, db):", div_backward(g, a / b))
    print("numeric  db:     ", numerical_grad(lambda v: a.data / v, b.data, g))

# %% nbgrader={"grade": true, "grade_id": "check-div-backward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "div_backward")

# %% [markdown]
# ### `pow`: $\text{out} = a^b$
#
# Two derivatives: $\partial a^b/\partial a = b\,a^{b-1}$ (for $x^3$ at $x = 2$: $3 \cdot 4 = 12$)
# and $\partial a^b/\partial b = a^b \ln a$ (for $2^x$ at $x = 3$: $8 \ln 2 \approx 5.545$). Reuse
# `out.data` for $a^b$ instead of computing the power again.
#
# The edges need care, and PyTorch's conventions are the ones the checks expect: $a^0$ has slope
# 0 in $a$, *even at* $a = 0$ (where $b\,a^{b-1} = 0 \cdot 0^{-1}$ would be `nan`), and $0^b$ with
# $b \ge 0$ has slope 0 in $b$ (where $0 \cdot \ln 0$ would be `nan`). Compute with `np.where` to
# pick 0 at those points, inside `np.errstate(divide="ignore", invalid="ignore")` so that NumPy
# does not warn about the values you are about to discard.

# %% nbgrader={"grade": false, "grade_id": "pow-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
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


# %%
if __name__ == "__main__":
    a = Tensor([2.0, 0.0, 1.5], dtype=np.float64, requires_grad=True)
    b = Tensor([3.0, 0.0, 2.0], dtype=np.float64, requires_grad=True)
    g = np.ones(3)
    ga, gb = pow_backward(g, a ** b)
    print("rule da:", ga, "  (12 = 3 * 2^2; 0 at 0^0)")
    print("rule db:", gb, "  (8 ln 2 = 5.545; 0 at 0^0)")
    print("numeric db at the first and last element:",
          numerical_grad(lambda v: a.data[[0, 2]] ** v, b.data[[0, 2]]))

# %% nbgrader={"grade": true, "grade_id": "check-pow-backward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "pow_backward")

# %% [markdown]
# ## Step 5: `matmul` - the rule that does most of the work
#
# For $\text{out} = AB$ with $A$ of shape $(n, k)$ and $B$ of shape $(k, m)$, each output element
# is $\text{out}_{ij} = \sum_p A_{ip} B_{pj}$. The entry $A_{ip}$ appears in every $\text{out}_{ij}$
# of row $i$, with coefficient $B_{pj}$, so
#
# $$\bar A_{ip} = \sum_j G_{ij} B_{pj} = (G B^\top)_{ip}, \qquad \bar B_{pj} = \sum_i A_{ip} G_{ij} = (A^\top G)_{pj}.$$
#
# You do not have to remember which side the transpose goes on: the shapes decide it. $\bar A$
# must be $(n, k)$, and the only way to get that from $G$ $(n, m)$ and $B$ $(k, m)$ is
# $(n, m) @ (m, k)$, i.e. $GB^\top$; $\bar B$ must be $(k, m)$, only $A^\top G$ $= (k, n) @ (n, m)$
# fits. Worked example: $A = [[1, 2]]$, $B = [[3], [4]]$, so $\text{out} = [[11]]$; with $G = [[1]]$,
# $\bar A = GB^\top = [[3, 4]]$ and $\bar B = A^\top G = [[1], [2]]$.
#
# **FLOPs.** The forward costs $2nkm$ FLOPs (a multiply and an add per term). Each backward
# product costs the same $2nkm$, so a full backward is *twice* the forward. For the first layer of
# the MNIST MLP at batch 128 ($n = 128$, $k = 784$, $m = 256$) that is 51.4 MFLOP forward, and
# 102.8 MFLOP backward - unless $A$ is the input images, which need no gradient: then `_need`
# skips $GB^\top$ and the backward costs only 51.4 MFLOP. This is the reason "backward is about 2x
# forward" is a rule of thumb and not a law.
#
# The shapes beyond 2-D follow NumPy's `matmul`:
#
# - **1-D operands** are promoted: a (k,) vector on the left is a (1, k) row, on the right a
#   (k, 1) column, and the promoted axis is removed again. `(k,) @ (k,)` is a dot product with a
#   0-d output: $\bar A = gB$, $\bar B = gA$.
# - **Batched** `(..., n, k) @ (..., k, m)`: the same two products with `np.swapaxes(B, -1, -2)`
#   as the transpose; broadcast batch axes are summed by the engine.
# - **A shared 2-D weight** `(..., n, k) @ (k, m)`, the common case in a network: fold all batch
#   axes into one, $A_2$ of shape $(N, k)$ and $G_2$ of shape $(N, m)$, and compute one big
#   $A_2^\top G_2$. One large matrix product runs far faster than a stack of small ones.
#
# One systems detail is given in the code: `x @ W.T` passes $B = W^\top$ as a transposed *view*.
# Computing $\bar B = A_2^\top G_2$ directly would give a gradient with the view's strided layout,
# and every optimizer update on it would be several times slower; $(G_2^\top A_2)^\top$ is the same
# numbers in $W$'s own row-major layout.

# %% nbgrader={"grade": false, "grade_id": "matmul-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
@register_backward("matmul")
def matmul_backward(g, out):
    """out = A @ B:  dA = g @ B^T,  dB = A^T @ g  (1-D operands are promoted, as in NumPy)."""
    a, b = out._parents
    A, B = a.data, b.data
    # HINT: handle 1-D @ 1-D, 1-D @ N-D and N-D @ 1-D first (add the promoted axis with None, take
    # HINT: it off again); then dA = g @ B^T and dB = A^T @ g, folding batch axes when B is 2-D
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


# %%
if __name__ == "__main__":
    A = Tensor([[1.0, 2.0], [0.5, -1.0]], dtype=np.float64, requires_grad=True)  # (2, 2)
    B = Tensor([[3.0, 0.0, 1.0], [4.0, 1.0, -2.0]], dtype=np.float64, requires_grad=True)  # (2, 3)
    g = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 1.0]])  # (2, 3), like the output
    gA, gB = matmul_backward(g, A @ B)
    print("dA = g B^T:\n", gA, "\nnumeric:\n", numerical_grad(lambda v: v @ B.data, A.data, g).round(6))
    print("dB = A^T g:\n", gB, "\nnumeric:\n", numerical_grad(lambda v: A.data @ v, B.data, g).round(6))
    v = Tensor([1.0, 2.0], dtype=np.float64, requires_grad=True)  # (2,) @ (2, 3): a promoted row
    print("1-D @ 2-D, dv:", matmul_backward(np.ones(3), v @ B)[0], " numeric:",
          numerical_grad(lambda u: u @ B.data, v.data))

# %% nbgrader={"grade": true, "grade_id": "check-matmul-backward", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "matmul_backward")

# %% [markdown]
# ## Step 6: reductions
#
# A reduction squeezes axes away; its backward has to put them back. `out._saved` holds
# `(axis, keepdims)` as the forward got them (`axis` is `None`, an int or a tuple, possibly
# negative). The given helper `_expand` does the shape work for all four reductions: if the
# forward dropped the reduced axes (`keepdims=False`), `np.expand_dims(g, axis)` puts them back as
# size 1, then `np.broadcast_to` stretches `g` to the input's shape.
#
# `np.broadcast_to` makes a read-only *view*: the "copies" of each gradient value cost no memory
# at all. A sum over a (1000, 1000) matrix hands back 4 MB worth of gradient that occupies 4
# bytes, until something writes to it - the engine copies it only when it becomes a leaf's `.grad`.

# %%
def _expand(g: np.ndarray, shape: tuple, axis, keepdims: bool) -> np.ndarray:
    """Put back the axes a reduction removed, then broadcast g to `shape`."""
    if axis is not None and not keepdims:
        g = np.expand_dims(g, axis)
    return np.broadcast_to(g, shape)


# %% [markdown]
# ### `sum`
#
# Every input element contributes with coefficient 1 to the one output it was summed into, so
# each gets that output's gradient: $\bar a = $ `g` expanded back. For `a` of shape (2, 3) summed
# over axis 0, `g` has shape (3,), say $[1, 2, 3]$, and $\bar a = [[1, 2, 3], [1, 2, 3]]$.

# %% nbgrader={"grade": false, "grade_id": "sum-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
@register_backward("sum")
def sum_backward(g, out):
    (a,) = out._parents
    axis, keepdims = out._saved
    ### BEGIN SOLUTION
    return (_expand(g, a.shape, axis, keepdims),)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    a = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float64, requires_grad=True)
    g = np.array([1.0, 2.0, 3.0])
    (ga,) = sum_backward(g, a.sum(axis=0))
    print("rule:\n", ga, "\nnumeric:\n", numerical_grad(lambda v: v.sum(axis=0), a.data, g).round(6))
    print("a read-only view, no copy:", not ga.flags.writeable)

# %% nbgrader={"grade": true, "grade_id": "check-sum-backward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "sum_backward")

# %% [markdown]
# ### `mean`
#
# The mean is the sum divided by the number of elements that went into each output, so the
# gradient is the sum's, divided by that count. The count is `a.data.size // out.data.size`
# (guard against a size-0 output with `max(..., 1)`): for (2, 3) averaged over axis 0 it is 2,
# over all axes 6, over a tuple of axes the product of their lengths - no axis arithmetic needed.

# %% nbgrader={"grade": false, "grade_id": "mean-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
@register_backward("mean")
def mean_backward(g, out):
    (a,) = out._parents
    axis, keepdims = out._saved
    ### BEGIN SOLUTION
    count = a.data.size // max(out.data.size, 1)
    return (_expand(g, a.shape, axis, keepdims) / count,)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    a = Tensor(np.arange(12.0).reshape(2, 3, 2), dtype=np.float64, requires_grad=True)
    g = np.array([[1.0], [2.0], [3.0]])  # axis (0, 2) removed, keepdims=True: shape (1, 3, 1)
    (ga,) = mean_backward(g[None], a.mean(axis=(0, 2), keepdims=True))
    print("rule, first row:   ", ga[0].ravel())
    print("numeric, first row:", numerical_grad(lambda v: v.mean(axis=(0, 2), keepdims=True), a.data,
                                                g[None])[0].ravel())

# %% nbgrader={"grade": true, "grade_id": "check-mean-backward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "mean_backward")

# %% [markdown]
# ### `max` and `min`: the winner takes the gradient - and ties share it
#
# Only the largest element influences the max: nudge any other element a little and the max does
# not move. So the gradient flows to the winner and every other element gets 0. Find the winners
# by comparing the input with the output expanded back to the input's shape (`_expand` again).
#
# What if two elements tie? At a tie the max is not differentiable, and frameworks pick a
# convention. PyTorch's `max()` and `amax` (and this rule) **split the gradient evenly among the
# tied winners**: for $x = [1, 3, 3]$, $\bar x = [0, \tfrac12, \tfrac12]\,g$. Dividing the 0/1
# winner mask by its count along the reduced axes (`keepdims=True`) does exactly that, and keeps
# the total gradient equal to $g$. One function serves both ops: it is registered twice.

# %% nbgrader={"grade": false, "grade_id": "extreme-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def _extreme_backward(g, out):
    """max/min: the gradient flows to the winning element(s); ties split it evenly."""
    (a,) = out._parents
    axis, keepdims = out._saved
    # HINT: winner = (a.data == out.data expanded to a's shape), as g's dtype; share = winner / its
    # HINT: sum over `axis` (keepdims=True); return g expanded to a's shape, times share
    ### BEGIN SOLUTION
    winner = (a.data == _expand(out.data, a.shape, axis, keepdims)).astype(g.dtype)
    share = winner / winner.sum(axis=axis, keepdims=True)
    return (_expand(g, a.shape, axis, keepdims) * share,)
    ### END SOLUTION


register_backward("max")(_extreme_backward)
register_backward("min")(_extreme_backward)


# %%
if __name__ == "__main__":
    a = Tensor([[1.0, 3.0, 3.0], [2.0, 5.0, 4.0]], dtype=np.float64, requires_grad=True)
    print("max over axis 1 with a tie in row 0:\n", _extreme_backward(np.ones(2), a.max(axis=1))[0])
    b = Tensor([[1.0, 3.0, 2.5], [2.0, 5.0, 4.0]], dtype=np.float64, requires_grad=True)
    print("no ties - rule:", _extreme_backward(np.ones(2), b.max(axis=1))[0][0],
          " numeric:", numerical_grad(lambda v: v.max(axis=1), b.data)[0])

# %% nbgrader={"grade": true, "grade_id": "check-extreme-backward", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "_extreme_backward")

# %% [markdown]
# ## Step 7: shape ops and indexing
#
# These ops move numbers around without changing them, so their backward moves the gradient back
# the same way. They are the cheapest rules in FLOPs and the easiest to get subtly wrong in shape.
#
# ### `reshape`
#
# `reshape`, `view`, `flatten`, `squeeze` and `unsqueeze` all record the op `"reshape"`: the
# elements keep their row-major order and only the shape changes. So the gradient is `g` reshaped
# to the parent's shape. When `g` is contiguous this is a view: no copy, no FLOPs.

# %% nbgrader={"grade": false, "grade_id": "reshape-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
@register_backward("reshape")
def reshape_backward(g, out):
    ### BEGIN SOLUTION
    return (g.reshape(out._parents[0].shape),)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    a = Tensor(np.arange(6.0).reshape(2, 3), dtype=np.float64, requires_grad=True)
    g = np.arange(6.0) * 10
    print("rule:\n", reshape_backward(g, a.reshape(6))[0])
    print("numeric:\n", numerical_grad(lambda v: v.reshape(6), a.data, g).round(6))

# %% nbgrader={"grade": true, "grade_id": "check-reshape-backward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "reshape_backward")

# %% [markdown]
# ### `permute` (and `transpose`, `.T`)
#
# A permutation of the axes sends input axis `perm[i]` to output axis `i`. To undo it, permute
# `g` by the *inverse* permutation, which is `np.argsort(perm)`. Worked example: `perm = (2, 0, 1)`
# turns shape (A, B, C) into (C, A, B); `argsort((2, 0, 1))` is `(1, 2, 0)`, and transposing a
# (C, A, B) gradient by it gives (A, B, C) back. `out._saved` holds `perm` with negative axes
# already made positive. `np.transpose` returns a view; the cost is paid later, by whatever reads
# the strided array.

# %% nbgrader={"grade": false, "grade_id": "permute-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
@register_backward("permute")
def permute_backward(g, out):
    ### BEGIN SOLUTION
    return (np.transpose(g, np.argsort(out._saved)),)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    a = Tensor(np.arange(24.0).reshape(2, 3, 4), dtype=np.float64, requires_grad=True)
    out = a.permute(2, 0, 1)  # (4, 2, 3)
    g = np.random.default_rng(0).standard_normal(out.shape)
    (ga,) = permute_backward(g, out)
    print("saved perm:", out._saved, " gradient shape:", ga.shape)
    print("matches numeric:", np.allclose(ga, numerical_grad(lambda v: v.transpose(2, 0, 1), a.data, g)))

# %% nbgrader={"grade": true, "grade_id": "check-permute-backward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "permute_backward")

# %% [markdown]
# ### `getitem`: scatter back - and repeated indices add up
#
# `a[idx]` picks elements; the backward puts each gradient back where its element came from, into
# an array of zeros of `a`'s shape (elements that were not picked get 0). For basic indices -
# ints, slices, `None`, `...` - each element is picked at most once, and `full[idx] = g` is right.
#
# Fancy (integer-array) indices can pick the **same element more than once**: an embedding lookup
# `E[[1, 1, 0, 1]]` reads row 1 three times, and row 1's gradient must be the *sum* of three
# rows of `g`. The obvious `full[idx] += g` silently gets this wrong: NumPy evaluates it as
# `full[idx] = full[idx] + g`, and for a repeated index the last write wins, so row 1 would get
# one contribution instead of three. `np.add.at(full, idx, g)` is the unbuffered version that
# adds every contribution. It is also several times slower, which is why the rule uses it only
# when the index is not basic. Boolean masks and Tensor indices go the same way (`out._saved` holds
# the index as the forward used it).
#
# Memory: the rule allocates a full zero array of the parent's shape even when one element was
# picked - picking one token's embedding from a 50,000 x 768 table costs a 154 MB gradient in
# float32. Real frameworks offer sparse gradients for exactly that case.

# %% nbgrader={"grade": false, "grade_id": "getitem-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
@register_backward("getitem")
def getitem_backward(g, out):
    """Scatter g back into a zero array; repeated fancy indices add up (np.add.at)."""
    (a,) = out._parents
    idx = out._saved
    # HINT: full = zeros of a's shape (g's dtype); basic indices (int, slice, None, Ellipsis):
    # HINT: full[idx] = g; anything else can repeat: np.add.at(full, idx, g)
    ### BEGIN SOLUTION
    full = np.zeros(a.shape, dtype=g.dtype)
    items = idx if isinstance(idx, tuple) else (idx,)
    if all(isinstance(i, (int, slice, type(None), type(Ellipsis))) for i in items):
        full[idx] = g
    else:
        np.add.at(full, idx, g)
    return (full,)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    E = Tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=np.float64, requires_grad=True)
    rows = [1, 1, 0, 1]
    g = np.ones((4, 2))
    print("rule (row 1 picked 3 times):\n", getitem_backward(g, E[rows])[0])
    wrong = np.zeros((3, 2))
    wrong[rows] += g
    print("full[idx] += g would give:\n", wrong)
    print("numeric:\n", numerical_grad(lambda v: v[rows], E.data, g))

# %% nbgrader={"grade": true, "grade_id": "check-getitem-backward", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "getitem_backward")

# %% [markdown]
# ## Checkpoint: the engine
#
# With `+`, `-`, `*`, `/`, `**`, `@`, the reductions, reshapes and indexing, your `backward` can
# now run the engine's own checks. They build graphs out of the rules you just wrote and test what
# only the engine decides:
#
# - a 10,000-op chain backpropagates, and `topological_order` lists its 10,001 nodes;
# - two `backward()` calls *add* into `.grad` (and `backward` twice on one graph does too);
# - `a.grad = None` starts afresh; no two leaves' `.grad` arrays share memory, and none is a
#   read-only view, the seed or the tensor's data;
# - only tensors with `requires_grad` get a `.grad`; `detach()` and `no_grad()` cut the graph;
# - a non-scalar root needs an explicit gradient; a leaf root's gradient is the seed;
# - the 12-step ladder: each node once, $d/dx = 1.5^{12}$.
#
# A failure here is almost always in `backward` (a missing copy, `=` instead of `+=`, a node
# processed twice) rather than in a rule, because every rule involved has passed its own check.

# %% nbgrader={"grade": true, "grade_id": "check-engine", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    for engine_check in ("long_chain", "accumulates", "zeroing", "leaf_grads",
                         "requires_grad_propagation", "detach", "no_grad", "non_scalar_root",
                         "shared_ladder"):
        check("06", engine_check)

# %% [markdown]
# ## Step 8: elementwise math
#
# One parent, one output of the same shape, and a derivative that is a function of a single
# number: $\bar a = g \cdot f'(a)$. The craft is in choosing *which* saved value to compute
# $f'$ from, and what to do where $f'$ does not exist.
#
# ### `exp`
#
# $\frac{d}{dx} e^x = e^x$, and $e^x$ is already sitting in `out.data`: the rule is one multiply,
# with no second call to `np.exp` (which would cost as much as the forward did: on a million
# float32 numbers, about twice the time of the multiply).
# Reusing outputs like this is a pattern you will meet again in `sqrt`, `sigmoid`, `tanh` and
# `softmax`.

# %% nbgrader={"grade": false, "grade_id": "exp-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
@register_backward("exp")
def exp_backward(g, out):
    ### BEGIN SOLUTION
    return (g * out.data,)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    a = Tensor([0.0, 1.0, -2.0], dtype=np.float64, requires_grad=True)
    print("rule:   ", exp_backward(np.ones(3), a.exp())[0])
    print("numeric:", numerical_grad(np.exp, a.data))

# %% nbgrader={"grade": true, "grade_id": "check-exp-backward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "exp_backward")

# %% [markdown]
# ### `log`
#
# $\frac{d}{dx} \ln x = 1/x$, from the parent's data: $\bar a = g / a$. At $x = 2$ the slope is
# 0.5; near 0 it explodes (the forward is $-\infty$ at 0 anyway). This is why losses never take
# the log of a probability that can be 0: the fused cross-entropy below avoids it entirely.

# %% nbgrader={"grade": false, "grade_id": "log-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
@register_backward("log")
def log_backward(g, out):
    ### BEGIN SOLUTION
    return (g / out._parents[0].data,)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    a = Tensor([2.0, 0.5, 10.0], dtype=np.float64, requires_grad=True)
    print("rule:   ", log_backward(np.ones(3), a.log())[0])
    print("numeric:", numerical_grad(np.log, a.data))

# %% nbgrader={"grade": true, "grade_id": "check-log-backward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "log_backward")

# %% [markdown]
# ### `sqrt`
#
# $\frac{d}{dx}\sqrt{x} = \frac{1}{2\sqrt x}$ - and $\sqrt x$ is the output, so $\bar a = 0.5\,g /
# \text{out}$. At $x = 4$: $0.5 / 2 = 0.25$. At $x = 0$ the slope is infinite (as in PyTorch);
# that is why normalisations compute $\sqrt{v + \epsilon}$, never $\sqrt{v}$.

# %% nbgrader={"grade": false, "grade_id": "sqrt-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
@register_backward("sqrt")
def sqrt_backward(g, out):
    ### BEGIN SOLUTION
    return (g * 0.5 / out.data,)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    a = Tensor([4.0, 1.0, 0.25], dtype=np.float64, requires_grad=True)
    print("rule:   ", sqrt_backward(np.ones(3), a.sqrt())[0])
    print("numeric:", numerical_grad(np.sqrt, a.data))

# %% nbgrader={"grade": true, "grade_id": "check-sqrt-backward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "sqrt_backward")

# %% [markdown]
# ### `abs`
#
# $|x|$ has slope $-1$ for $x < 0$ and $+1$ for $x > 0$: `np.sign`. At the kink $x = 0$ there is
# no derivative; PyTorch uses 0 there, and so does `np.sign(0) = 0`. (Any value in $[-1, 1]$ is a
# valid *subgradient*; picking 0 means a weight sitting exactly at 0 under an L1 penalty stays put.)

# %% nbgrader={"grade": false, "grade_id": "abs-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
@register_backward("abs")
def abs_backward(g, out):
    ### BEGIN SOLUTION
    return (g * np.sign(out._parents[0].data),)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    a = Tensor([-1.5, 0.0, 2.0], dtype=np.float64, requires_grad=True)
    print("rule (0 at the kink):", abs_backward(np.ones(3), a.abs())[0])
    print("numeric away from 0: ", numerical_grad(np.abs, a.data[[0, 2]]))

# %% nbgrader={"grade": true, "grade_id": "check-abs-backward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "abs_backward")

# %% [markdown]
# ### `clip` (and `clamp`)
#
# Inside the bounds `clip` is the identity (slope 1); where it clamped a value the output no longer
# moves with the input (slope 0). `out._saved` is `(lo, hi)`, either of which may be `None`. The
# convention at the bounds themselves, again PyTorch's: a value exactly *at* a bound counts as
# inside, so `clip(0.5, -0.5, 0.5)` passes the gradient. Build a boolean mask that starts all
# `True` and is narrowed by each bound that exists.

# %% nbgrader={"grade": false, "grade_id": "clip-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
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


# %%
if __name__ == "__main__":
    a = Tensor([-1.0, -0.5, 0.0, 0.5, 1.0], dtype=np.float64, requires_grad=True)
    print("clip(-0.5, 0.5):", clip_backward(np.ones(5), a.clip(-0.5, 0.5))[0])
    print("clip(min=0):    ", clip_backward(np.ones(5), a.clip(min=0.0))[0])

# %% nbgrader={"grade": true, "grade_id": "check-clip-backward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "clip_backward")

# %% [markdown]
# ## Step 9: the activations of module 02
#
# ### `relu` and `leaky_relu`
#
# ReLU passes the gradient where its input was positive and blocks it elsewhere: $\bar x = g \cdot
# [x > 0]$. Testing `out.data > 0` is the same test as `x > 0` and needs only the output. At
# $x = 0$ the slope is taken as 0 (PyTorch's choice). A unit whose input is negative for every
# example gets no gradient at all and never recovers - a "dead ReLU".
#
# Leaky ReLU keeps a small slope for negative inputs: $\bar x = g$ where $x > 0$, else $g \cdot
# \text{slope}$ (`out._saved`, 0.01 by default). With slope 0.01, a dead unit still gets 1% of its
# gradient. Here the test must use the *input* `x > 0`: for a negative slope the output's sign
# would say nothing. Both rules are one `np.where` or one multiply by a mask: one pass over memory.

# %% nbgrader={"grade": false, "grade_id": "relu-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
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


# %%
if __name__ == "__main__":
    from tinytorch.activations import leaky_relu, relu

    a = Tensor([-2.0, 0.0, 3.0], dtype=np.float64, requires_grad=True)
    print("relu:           ", relu_backward(np.ones(3), relu(a))[0])
    print("leaky_relu(0.1):", leaky_relu_backward(np.ones(3), leaky_relu(a, 0.1))[0])
    print("numeric leaky at -2 and 3:",
          numerical_grad(lambda v: np.where(v > 0, v, 0.1 * v), a.data[[0, 2]]))

# %% nbgrader={"grade": true, "grade_id": "check-relu-backward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "relu_backward")  # selects relu_backward and leaky_relu_backward

# %% [markdown]
# ### `sigmoid`
#
# For $s = \sigma(x) = 1/(1 + e^{-x})$, $\sigma'(x) = s(1 - s)$: computed from the output alone,
# with no exponential, and it cannot overflow (module 02 already made $s$ safe for any $x$). At
# $x = 0$, $s = 0.5$ and the slope is its maximum, 0.25; at $x = 2$, $s = 0.881$ and the slope is
# $0.105$; at $|x| = 30$ it is about $10^{-13}$.
#
# That maximum of 0.25 is the **vanishing gradient** of deep sigmoid networks: through ten sigmoid
# layers the gradient shrinks by at least $0.25^{10} \approx 9.5 \times 10^{-7}$. It is one
# reason ReLU replaced sigmoid in hidden layers.

# %% nbgrader={"grade": false, "grade_id": "sigmoid-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
@register_backward("sigmoid")
def sigmoid_backward(g, out):
    """s' = s (1 - s)."""
    ### BEGIN SOLUTION
    s = out.data
    return (g * s * (1 - s),)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    from tinytorch.activations import sigmoid

    a = Tensor([0.0, 2.0, -30.0], dtype=np.float64, requires_grad=True)
    print("rule:   ", sigmoid_backward(np.ones(3), sigmoid(a))[0])
    print("numeric:", numerical_grad(lambda v: 1 / (1 + np.exp(-v)), a.data))

# %% nbgrader={"grade": true, "grade_id": "check-sigmoid-backward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "sigmoid_backward")

# %% [markdown]
# ### `tanh`
#
# $\tanh'(x) = 1 - \tanh^2(x)$, again from the output: `1 - out.data * out.data`. The slope is 1 at
# 0 (four times sigmoid's best) and $0.420$ at $x = 1$; it saturates the same way for large
# $|x|$. `out.data * out.data` is one cheap elementwise pass; no second `np.tanh` is needed.

# %% nbgrader={"grade": false, "grade_id": "tanh-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
@register_backward("tanh")
def tanh_backward(g, out):
    """tanh' = 1 - tanh^2."""
    ### BEGIN SOLUTION
    return (g * (1 - out.data * out.data),)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    from tinytorch.activations import tanh

    a = Tensor([0.0, 1.0, -3.0], dtype=np.float64, requires_grad=True)
    print("rule:   ", tanh_backward(np.ones(3), tanh(a))[0])
    print("numeric:", numerical_grad(np.tanh, a.data))

# %% nbgrader={"grade": true, "grade_id": "check-tanh-backward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "tanh_backward")

# %% [markdown]
# ### `gelu` (the tanh approximation)
#
# $y = \tfrac{x}{2}(1 + t)$ with $t = \tanh\!\big(c\,(x + 0.044715\,x^3)\big)$ and
# $c = \sqrt{2/\pi}$. The product rule and the chain rule through the tanh give
#
# $$y' = \tfrac12 (1 + t) + \tfrac{x}{2}\,(1 - t^2)\; c\,(1 + 3 \cdot 0.044715\, x^2).$$
#
# The forward saved $t$ in `out._saved`, so no tanh is recomputed. At $x = 1$: $t = 0.6824$, and
# $y' \approx 1.083$ - GELU's slope overshoots 1 a little for positive inputs, and for negative ones
# dips slightly below 0 before flattening out. The constants are Python floats, which keep a
# float32 array float32; the closing `.astype(x.dtype, copy=False)` is a safety net that costs
# nothing when the dtype is already right.

# %% nbgrader={"grade": false, "grade_id": "gelu-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
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


# %%
if __name__ == "__main__":
    from tinytorch.activations import gelu

    a = Tensor([-1.0, 0.0, 1.0], dtype=np.float64, requires_grad=True)
    C = np.sqrt(2 / np.pi)

    def np_gelu(v):
        return 0.5 * v * (1 + np.tanh(C * (v + 0.044715 * v ** 3)))

    print("rule:   ", gelu_backward(np.ones(3), gelu(a))[0])
    print("numeric:", numerical_grad(np_gelu, a.data))

# %% nbgrader={"grade": true, "grade_id": "check-gelu-backward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "gelu_backward")

# %% [markdown]
# ### `softmax` and `log_softmax`: never build the Jacobian
#
# Softmax couples a whole row: $s_i = e^{x_i} / \sum_j e^{x_j}$ depends on every $x_j$, with
# $\partial s_i / \partial x_j = s_i(\delta_{ij} - s_j)$. The Jacobian of one row of $C$ classes is
# a $C \times C$ matrix $\text{diag}(s) - ss^\top$. Multiplying $g$ by it gives
#
# $$\bar x_j = \sum_i g_i\, s_i(\delta_{ij} - s_j) = s_j \Big(g_j - \sum_i g_i s_i\Big),$$
#
# i.e. `s * (g - (g * s).sum(axis, keepdims=True))`: $O(C)$ work and memory per row. Building the
# Jacobian would cost $C^2$ floats per row; for GPT-2's vocabulary of 50,257 tokens that is 10.1 GB
# *per row*, to compute a result of 201 KB. `out._saved` is the softmax axis, `out.data` is $s$.
#
# For $y = \text{log\_softmax}(x) = x - \log\sum_j e^{x_j}$, $\partial y_i/\partial x_j = \delta_{ij} -
# s_j$, so $\bar x = g - s \sum_i g_i$, with $s = e^{y}$ recovered from the output (`np.exp` of
# values $\le 0$: never overflows). Worked check: if $g$ is one-hot on class $k$ (the gradient of
# "pick $\log s_k$"), $\bar x = e_k - s$: push up the right class, push down all of them by their
# probability.

# %% nbgrader={"grade": false, "grade_id": "softmax-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
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


# %%
if __name__ == "__main__":
    from tinytorch.activations import log_softmax, softmax

    a = Tensor([[2.0, 1.0, 0.0]], dtype=np.float64, requires_grad=True)
    g = np.array([[1.0, 0.0, 0.0]])

    def np_softmax(v):
        e = np.exp(v - v.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    print("softmax rule:       ", softmax_backward(g, softmax(a))[0])
    print("softmax numeric:    ", numerical_grad(np_softmax, a.data, g))
    print("log_softmax rule:   ", log_softmax_backward(g, log_softmax(a))[0], " (= e_0 - s)")
    print("log_softmax numeric:", numerical_grad(lambda v: np.log(np_softmax(v)), a.data, g))

# %% nbgrader={"grade": true, "grade_id": "check-softmax-backward", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "softmax_backward")  # selects softmax_backward and log_softmax_backward

# %% [markdown]
# ## Step 10: fused ops - one node, one cheap backward
#
# `Linear` (module 03) and the losses of module 04 each record a **single** node instead of the
# chain of small ops they are made of. Fusing pays twice. In time: every node costs the engine a
# dictionary lookup, a rule call and a few gradient temporaries, and the fused rule can skip
# intermediates altogether. In numerics: a loss's backward can be written in a form that never
# divides by a probability, so it stays finite where the chain of small rules would not.
#
# ### `linear`: $y = xW^\top + b$
#
# With $x$ of shape $(N, \text{in})$, $W$ $(\text{out}, \text{in})$, $b$ $(\text{out},)$ and $g$ of
# shape $(N, \text{out})$, the matmul rule with $B = W^\top$ gives
#
# $$\bar x = g\,W \quad (N, \text{in}), \qquad \bar W = g^\top x \quad (\text{out}, \text{in}), \qquad \bar b = \textstyle\sum_n g_n \quad (\text{out},).$$
#
# Note that $\bar W = g^\top x$ comes out directly in $W$'s own layout - no transposed view to
# worry about. Inputs with more axes, $(\ldots, \text{in})$, are folded into $N$ rows first so that
# each product is one 2-D matmul (and $\bar x$ is reshaped back). The layer may have no bias: then
# the node has two parents and the rule returns two gradients. As one node, a layer costs one
# rule call instead of three (matmul, transpose, add), and no $(N, \text{out})$ temporary for
# $xW^\top$ before the bias; that fusion took the MLP training step from 1.27x to about 1.17x the
# time of the same math hand-written in NumPy.

# %% nbgrader={"grade": false, "grade_id": "linear-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
@register_backward("linear")
def linear_backward(g, out):
    """y = x W^T + b over the last axis of x:  dx = g W,  dW = g^T x,  db = sum of g over the batch.
    Batch axes are folded into one, so each is a single 2-D matmul."""
    x, W = out._parents[0], out._parents[1]
    # HINT: g2 = g as (N, out); dx = (g2 @ W) reshaped like x; dW = g2.T @ (x as (N, in));
    # HINT: db = g2 summed over N - returned only when the node has a third parent (the bias)
    ### BEGIN SOLUTION
    g2 = g.reshape(-1, g.shape[-1])  # (N, out)
    gx = (g2 @ W.data).reshape(x.shape) if _need(x) else None  # (N, out) @ (out, in)
    gW = g2.T @ x.data.reshape(-1, x.shape[-1]) if _need(W) else None  # (out, N) @ (N, in)
    if len(out._parents) == 2:
        return gx, gW
    return gx, gW, g2.sum(axis=0)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    from tinytorch.layers import Linear

    layer = Linear(3, 2)
    xs = Tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 1.0]], requires_grad=True)
    out = layer(xs)
    g = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    gx, gW, gb = linear_backward(g, out)
    print("shapes: dx", gx.shape, " dW", gW.shape, " db", gb.shape, " dtype", gW.dtype)
    W0, b0 = layer.weight.data.astype(np.float64), layer.bias.data.astype(np.float64)
    print("dW rule:\n", gW, "\ndW numeric:\n",
          numerical_grad(lambda v: xs.data.astype(np.float64) @ v.T + b0, W0, g).round(4))

# %% nbgrader={"grade": true, "grade_id": "check-linear-backward", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "linear_backward")

# %% [markdown]
# ### `cross_entropy`: $\bar x = (p - q) / N$
#
# The loss of module 04 is $L = -\frac1N \sum_n \sum_c q_{nc} \log p_{nc}$, where
# $p = \text{softmax}(x)$ per row and $q$ is the target distribution: one-hot on the label, or,
# with label smoothing $\epsilon$, $q = (1-\epsilon)\,\text{onehot} + \epsilon / C$. Chaining
# log_softmax's rule with the one-hot pick collapses to the famous
#
# $$\frac{\partial L}{\partial x_{nc}} = \frac{p_{nc} - q_{nc}}{N}.$$
#
# Worked example: logits $[2, 1, 0]$, label 0, $N = 1$. Then $p = [0.665, 0.245, 0.090]$ and the
# gradient is $[-0.335, 0.245, 0.090]$: raise the right logit, lower the others by their
# probability. The gradient of each row sums to 0, and no step divides by a probability, so even a
# logit of 1000 gives a finite, exact gradient.
#
# `out._saved` is `(probs, targets, smoothing, scale)`: the forward already computed `probs`, and
# `scale` is $1/N$ (or 1 for `reduction="sum"`). Build $p - q$ in a *fresh* array - `probs` minus
# $\epsilon / C$ makes one - then subtract $1 - \epsilon$ at each row's label, and multiply by
# $g \cdot \text{scale}$. Never write into `probs` itself: it belongs to the graph, and a second
# `backward()` would see your changes. The targets (the second parent) get `None`. Cost: one
# pass over the $(N, C)$ logits, where the chain of small rules would make several.

# %% nbgrader={"grade": false, "grade_id": "cross-entropy-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
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


# %%
if __name__ == "__main__":
    from tinytorch.losses import CrossEntropyLoss

    logits = Tensor([[2.0, 1.0, 0.0]], dtype=np.float64, requires_grad=True)
    loss = CrossEntropyLoss()(logits, np.array([0]))
    print("loss:", float(loss.data), " rule:", cross_entropy_backward(np.array(1.0), loss)[0])

    def np_ce(v):  # the same loss in plain NumPy, label 0
        return -(v[0, 0] - np.log(np.exp(v).sum()))

    print("numeric:", numerical_grad(np_ce, logits.data))
    big = Tensor([[1000.0, 0.0, -1000.0]], requires_grad=True)
    print("logits of +-1000:", cross_entropy_backward(np.array(1.0, np.float32),
                                                      CrossEntropyLoss()(big, np.array([2])))[0])

# %% nbgrader={"grade": true, "grade_id": "check-cross-entropy-backward", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "cross_entropy_backward")

# %% [markdown]
# ### `bce` and `bce_with_logits`
#
# Binary cross-entropy on a probability $p$ (the output of a sigmoid) with target $y$:
# $L = -\frac1N\sum (y \log p + (1-y)\log(1-p))$, so
#
# $$\frac{\partial L}{\partial p} = \frac{1}{N}\,\frac{p - y}{p(1-p)}.$$
#
# The denominator is 0 at $p \in \{0, 1\}$, which a saturated sigmoid reaches in float32 (for $x$
# above about 17, $\sigma(x)$ rounds to 1). Clamp it: `np.maximum(p * (1 - p), 1e-12)`. `out._saved`
# is the scale $1/N$ (or 1); the target parent gets `None`.
#
# With logits $x$ instead of probabilities, the sigmoid and the loss fuse:
# $L = \frac1N\sum(\text{softplus}(x) - xy)$ and the derivative is just
# $\bar x = (\sigma(x) - y)/N$ - the same "prediction minus target" shape as cross-entropy, no
# division at all, finite for every $x$. The forward saved $\sigma(x)$ and the scale as
# `(sig, scale)`. This is why `BCEWithLogitsLoss` is the one to use for training: once a sigmoid
# has saturated to exactly 1, the chain sigmoid-then-`BCELoss` multiplies $\sigma'(x) = 0$ by the
# clamped $1/(p(1-p))$ and gets 0 - a confidently *wrong* prediction receives no gradient at all.

# %% nbgrader={"grade": false, "grade_id": "bce-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
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


# %%
if __name__ == "__main__":
    from tinytorch.losses import BCELoss, BCEWithLogitsLoss

    p = Tensor([0.9, 0.2], dtype=np.float64, requires_grad=True)
    y = np.array([1.0, 0.0])
    print("bce rule:   ", bce_backward(np.array(1.0), BCELoss()(p, y))[0])
    print("bce numeric:", numerical_grad(lambda v: -np.mean(y * np.log(v) + (1 - y) * np.log(1 - v)),
                                         p.data))
    xl = Tensor([2.0, -1.0], dtype=np.float64, requires_grad=True)
    print("with logits rule:   ", bce_with_logits_backward(np.array(1.0), BCEWithLogitsLoss()(xl, y))[0])
    print("with logits numeric:", numerical_grad(
        lambda v: np.mean(np.logaddexp(0, v) - v * y), xl.data))

# %% nbgrader={"grade": true, "grade_id": "check-bce-backward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06", "bce")  # selects bce_backward and bce_with_logits_backward

# %% [markdown]
# ## Checkpoint: whole graphs
#
# Three last checks put everything together: a diamond (a value used by two branches of
# different depth, through `exp` and `log`), a graph that must come out of `backward()` with
# every forward value untouched (no rule may write into a saved array), and a small MLP -
# matmul, broadcast biases, GELU, ReLU, cross-entropy and an MSE term - against central
# differences. Now `loss.backward()` works on anything modules 01-05 can build.

# %% nbgrader={"grade": true, "grade_id": "check-whole-graphs", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    for graph_check in ("test_backward_diamond", "does_not_modify", "composite_mlp"):
        check("06", graph_check)

# %% [markdown]
# ## The systems view of what you built
#
# **Training needs more memory than inference: saved activations.** A rule needs values from
# the forward pass - `mul` needs both inputs, `linear` its input $x$, `relu` its output,
# `cross_entropy` the probabilities. As long as the graph is alive, every node keeps its parents,
# so *every* intermediate tensor stays in memory until the backward pass has used it. For the
# MNIST MLP 784-256-128-10 at batch 128 in float32, the graph holds the input (401 KB), both
# hidden pre-activations and both ReLU outputs (131 + 131 + 66 + 66 KB), the logits and the saved
# probabilities (5 + 5 KB): 805 KB, next to 941 KB of weights. Under `no_grad()` nothing is
# recorded, each intermediate is freed as soon as the next layer has consumed it, and the peak is
# about the two largest neighbours (532 KB). Activations grow with *batch size times depth*, the
# weights do not: at batch 4,096 the same MLP keeps 25.8 MB of activations for 0.94 MB of
# weights. For large models this is the term that decides whether training fits on a device, and
# the tricks against it trade one cost for another - recomputing activations in the backward pass
# ("gradient checkpointing"), or storing them in 16 bits.
#
# **Backward costs about twice the forward.** Every matmul in the forward becomes two in the
# backward ($GB^\top$ and $A^\top G$), each as large as the original; elementwise rules are a few
# passes over memory, like their forwards. So one training step costs about three forward passes,
# which is the "$6P$ FLOPs per example" rule for a model of $P$ parameters (2 forward + 4 backward). The
# exceptions are instructive: the MLP's first layer needs no $\bar x$ (the images do not require a
# gradient), so its backward is 68.8 MFLOP against 60.1 MFLOP forward, and measured on a 2-core
# machine, 1.1 ms against 1.0 ms.
#
# **Per-node Python overhead.** Each node costs the engine a `pop`, a rule lookup and call, a shape
# check per parent and a dictionary update: a few microseconds of Python, whatever the tensor's
# size. On the 10,000-op scalar chain it is about 4 us per node (40 ms in all, measured on a quiet
# 2-core machine) - the whole cost, since the arithmetic is one number per node. The MLP step has 12
# nodes, about 50 us of overhead in 1.1 ms of matmuls. That is why big tensors and fused ops (one
# `linear` node, one `cross_entropy` node) matter in an eager framework: the same model written as
# scalar `Value`s, micrograd-style, would spend all of its time in the engine.
#
# **What breaks at scale.** Recursion (solved: the explicit stack), memory for activations (see
# above), float32 gradients that underflow in deep sigmoid stacks or overflow in naive loss
# formulas (the fused losses avoid both), and silent shape bugs in rules (the engine now names the
# rule). Gradients also *accumulate*, so forgetting `zero_grad()` quietly sums the gradients of
# every batch since the start.
#
# ## What comes next
#
# Module 07 turns `p.grad` into steps downhill (SGD, Adam), module 08 wraps forward, backward
# and step into a training loop, and module 09 adds convolutions, whose rules register into this
# same table with `@register_backward("conv2d")` next to their forward code. `tito module complete
# 06` exports your engine into your `tinytorch` package, so `loss.backward()` there runs *your*
# code.
#
# ## Check your work
#
# The last cell runs all of the module's checks - the same as `tito module test 06`; with PyTorch
# installed, each rule is also compared with `torch.autograd` (otherwise those checks are skipped).
# `tito module test 06 --task sum_backward` runs one rule's checks from a terminal.

# %% nbgrader={"grade": true, "grade_id": "check-autograd", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("06")
