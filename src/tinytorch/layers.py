# %% [markdown]
# # Module 03 - Layers
#
# A network is a tree of layers, and a layer is a function with state: its parameters. `Module`
# is the bookkeeping that finds every parameter in that tree (so an optimizer can update them all),
# switches the whole tree between training and evaluation, and saves or restores its numbers.
# `Linear` is the layer that does almost all of the arithmetic in an MLP.
#
# The shapes and names follow `torch.nn`, so what you know from PyTorch carries over. Complete this
# module (with 01 and 02) and milestones 01 (the Perceptron) and 02 (the XOR crisis) unlock.
#
# ## What you build
#
# - `Module`, one class: the tree walk (`named_children`, `named_modules`, `named_parameters`;
#   `children()`, `modules()` and `parameters()` are built on them and given), `train()` (and
#   so `eval()`), `zero_grad`, `state_dict` and `load_state_dict`. `__call__` -> `forward`,
#   buffers and printing are given.
# - `Linear`: `__init__` (uniform initialisation in $\pm 1/\sqrt{\text{in}}$, as PyTorch) and
#   `forward`, $y = xW^\top + b$ with $W$ of shape (out, in).
# - `Sequential.forward`, `Dropout.forward` (inverted dropout) and `Flatten.forward`.
#
# `Parameter`, a Tensor that a model owns and trains, is given.
#
# How to work: read a section, fill in the code cell below it, run the "try it" cell to see your
# code on a tiny input, then run the check cell. It runs the same checks as
# `tito module test 03 --task ...` and prints the same table. Nothing here needs gradients yet:
# module 06 (autograd) differentiates what these layers record.

# %%
"""Module 03: Module, Parameter, Linear, Sequential, Dropout, Flatten (forward only).

    Linear:   y = x W^T + b          x (..., in), W (out, in), b (out,)  ->  y (..., out)
              init (as PyTorch): W, b ~ U(-k, k),  k = 1 / sqrt(in)
    Dropout:  y = x * m / (1 - p),   m_i ~ Bernoulli(1 - p)   (training; identity in eval)
              dividing by 1 - p keeps E[y] = x, so nothing changes when dropout is switched off
    Flatten:  (N, C, H, W) -> (N, C*H*W)

A Module finds its parts by looking at its own attributes: every `Parameter` is a parameter, and
every `Module` (or activation layer from module 02) is a child, searched recursively. Names are
attribute paths ("0.weight", "encoder.fc.bias"), in the order the attributes were assigned.

Everything here is built from Tensor ops, so the graph is recorded and module 06 can
differentiate it; before module 06 exists the layers still run forward, and their weights can be
edited by hand (`layer.weight.data += lr * update`), which milestones 01 and 02 do.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from tinytorch.activations import Activation
from tinytorch.tensor import DEFAULT_DTYPE, Tensor, default_generator

# %% [markdown]
# ## Parameter: a tensor that belongs to a model
#
# A layer's weights are ordinary tensors with two differences: they must always be float32 and
# they always want a gradient, because training exists to change them. `Parameter` is exactly
# that - a `Tensor` subclass whose constructor defaults to `requires_grad=True` and float32.
#
# The subclass matters for one more reason: it is a *label*. When `Module` looks through a
# layer's attributes, "is this a `Parameter`?" is how it tells the weights apart from everything
# else the layer keeps - a plain `Tensor` (a constant, a cached mask), an integer, a string. An
# optimizer in module 07 will receive `model.parameters()` and update exactly those tensors, in
# place, every step.
#
# Memory: a parameter costs 4 bytes per number (float32). During training each one also gets a
# gradient of the same size, and an Adam optimizer keeps two more arrays of that size, so a model
# with $P$ parameters needs about $16P$ bytes while training, compared with $4P$ to store it.

# %%
class Parameter(Tensor):
    """A Tensor that a Module owns and an optimizer updates: float32, requires_grad=True.

    Assigning one as an attribute of a Module (`self.weight = Parameter(...)`) registers it.
    """

    __slots__ = ()

    def __init__(self, data, dtype=None, requires_grad: bool = True):
        super().__init__(data, dtype=dtype or DEFAULT_DTYPE, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


# %% [markdown]
# ## Module: a tree of layers
#
# Here is the kind of model you will write in milestone 03:
#
# ```python
# class MLP(Module):
#     def __init__(self):
#         super().__init__()
#         self.fc1 = Linear(784, 128)      # a child called "fc1"
#         self.act = ReLU()                # activations count as children too
#         self.fc2 = Linear(128, 10)       # a child called "fc2"
#
#     def forward(self, x):
#         return self.fc2(self.act(self.fc1(x)))
# ```
#
# Nobody told the model "you have four parameters". It finds them: `Module` looks at its own
# attributes, and `vars(self)` is the dictionary of exactly those, **in the order they were
# assigned** (Python dictionaries keep insertion order). From that one fact every method in this
# section follows. The tree for `MLP` is
#
# ```
# ""     MLP
# "fc1"  ├── Linear      weight (128, 784), bias (128,)
# "act"  ├── ReLU
# "fc2"  └── Linear      weight (10, 128), bias (10,)
# ```
#
# and the names of its parameters are the attribute paths joined by dots: `fc1.weight`,
# `fc1.bias`, `fc2.weight`, `fc2.bias`. Those names are the keys of a saved model, so they must be
# the same every time the model is built - which is why the order is the assignment order and not
# something that could change from run to run, like the order of ids in a set.
#
# You write one class, `Module`, with seven methods. The next three cells teach them in turn.

# %% [markdown]
# ### Finding the parts: `named_children`, `named_modules`, `named_parameters`
#
# **`named_children()`** yields `(name, layer)` for each *direct* sub-layer: every attribute that
# is a `Module` or an activation layer from module 02 (an `Activation`; they have no parameters
# but belong in the tree and in the printout). If the same layer object is stored under two
# names, it is one layer, so yield it once (remember the `id()`s you have seen). A `Sequential`
# keeps its layers in a list rather than in attributes; it overrides `named_children` to name them
# `"0"`, `"1"`, ... - everything below works for it unchanged.
#
# **`named_modules(prefix="")`** walks the whole tree depth first: first `(prefix, self)`, then for
# each child the child's own walk, with the path extended (`"block"` then `"block.0"`). Every module
# appears once even if it is reachable by two paths - a set of ids, shared by the whole walk
# (that is what the private `_seen` argument carries down the recursion). An activation has no
# `named_modules` of its own, so you yield it directly under its path.
#
# **`named_parameters()`** goes through the modules of that walk and, in each, through `vars()`
# again, yielding the `Parameter`s with their full names. A module's own parameters come first,
# then its children's - the order PyTorch uses, so a state dict saved here lines up with one from
# torch. *Weight tying* (two layers sharing one weight matrix, as language models do for their
# input and output embeddings) means one `Parameter` reachable twice; it must be yielded once, or
# an optimizer would update it twice per step.
#
# Worked example: a model with `self.scale = Parameter(...)` assigned *after* `self.fc1 = ...`
# still lists `scale` first (own parameters before children's), then `fc1.weight`, `fc1.bias`.
#
# Cost: the walk touches every attribute of every module once - $O(\text{modules} +
# \text{attributes})$ Python work, no arithmetic. It is cheap next to one training step, but not
# free: an optimizer calls `parameters()` once and keeps the list instead of walking the tree each
# step.

# %% [markdown]
# ### Modes and gradients: `train`, `zero_grad`
#
# Some layers behave differently while training and while being evaluated. Dropout (below) drops
# units only while training; BatchNorm (module 09) uses batch statistics while training and its
# running averages afterwards. Each module has a boolean `.training`; **`train(mode=True)`** sets
# it on *every* module of `self.modules()` (not only the top one - the Dropout that matters is
# usually deep inside) and returns `self`, so that `model = Model().eval()` works. `eval()` is given:
# it is `train(False)`.
#
# **`zero_grad(set_to_none=True)`** forgets the gradients of the last backward pass. Module 06
# *accumulates*: every `backward()` adds its contribution to whatever `p.grad` already holds (which
# is what lets you sum the gradients of several small batches before one update), so before each
# step the old ones have to go. Setting `p.grad = None` (PyTorch's default) is cheaper than
# writing zeros - no memory traffic at all, and the next backward pass allocates a fresh array
# anyway. With `set_to_none=False`, write zeros in place into the existing gradient arrays.

# %% [markdown]
# ### Saving and loading: `state_dict`, `load_state_dict`
#
# **`state_dict()`** is a snapshot: a dictionary `{name: array}` with a *copy* of every
# parameter (in `named_parameters()` order), then every buffer (`named_buffers()`, given: state
# that is saved but not trained, such as BatchNorm's running mean). It must be copies: training
# goes on changing the parameters in place, and a checkpoint that silently changes with them is
# no checkpoint. The memory is one more copy of the model: for the MLP 784-256-128-10 that is
# 235,146 numbers, 940,584 bytes, about 0.94 MB.
#
# **`load_state_dict(state, strict=True)`** copies the arrays back *into* the existing parameters,
# `target.data[...] = value`, rather than replacing the `Parameter` objects: an optimizer made
# earlier holds references to those very objects, and it would otherwise keep training tensors
# that are no longer part of the model. Check everything **before** writing anything: collect the
# missing keys, the unexpected keys (both only count as errors when `strict`) and every shape that
# differs, then raise one `RuntimeError` naming them all. A load that fails half way would leave a
# model that is neither the old one nor the new one. It returns `(missing, unexpected)`, the two
# lists of keys. A value may be an array or a Tensor; take `.data` of a Tensor.
#
# Now write the class. The given methods (`forward`, `__call__`, buffers, `children`, `modules`,
# `parameters`, `eval`, printing) are already there; fill in the seven marked ones. Right after
# it, one check runs that needs nothing but `Module` (saving and loading a model with a buffer).
# The other Module checks build nested models out of `Sequential` and `Dropout`, so each runs
# as soon as the layers it needs exist: the tree walk, `zero_grad` and the state dict after
# `Sequential`, `train`/`eval` and the printout after `Dropout`.

# %% nbgrader={"grade": false, "grade_id": "module", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Module:
    """Base class of every layer and model, used like torch.nn.Module:

        class MLP(Module):
            def __init__(self):
                super().__init__()
                self.fc1 = Linear(784, 128)      # registered as child "fc1"
                self.act = ReLU()                # activations count as children too
                self.fc2 = Linear(128, 10)

            def forward(self, x):
                return self.fc2(self.act(self.fc1(x)))

        model = MLP()
        logits = model(x)                        # __call__ -> forward
        [n for n, _ in model.named_parameters()] # ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']
    """

    training = True  # class default, so a subclass that forgets super().__init__() still works

    def __init__(self):
        self.training = True

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # --- finding the parts ------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, object]]:
        """(name, layer) for each direct sub-layer: attributes that are Modules or activations."""
        # HINT: vars(self) is the dict of attributes, in assignment order; skip repeats
        ### BEGIN SOLUTION
        seen: set[int] = set()
        for name, value in vars(self).items():  # insertion order = assignment order
            if isinstance(value, (Module, Activation)) and id(value) not in seen:
                seen.add(id(value))  # the same layer under two names counts once
                yield name, value
        ### END SOLUTION

    def named_modules(self, prefix: str = "", _seen: set | None = None) -> Iterator[tuple[str, object]]:
        """This module and every layer below it, depth first, each once: ("", self), ("fc1", ...)."""
        # HINT: yield (prefix, self), then recurse into the children that are Modules;
        # HINT: a set of ids makes a module that appears twice count once
        ### BEGIN SOLUTION
        seen = set() if _seen is None else _seen
        if id(self) in seen:
            return
        seen.add(id(self))
        yield prefix, self
        for name, child in self.named_children():
            path = f"{prefix}.{name}" if prefix else name
            if isinstance(child, Module):
                yield from child.named_modules(path, seen)
            elif id(child) not in seen:  # an activation (or a plain function in a Sequential)
                seen.add(id(child))
                yield path, child
        ### END SOLUTION

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """("fc1.weight", Parameter) for every Parameter in the tree, a shared one only once: each
        module's own parameters first, then its children's, depth first (the order torch uses)."""
        # HINT: for each Module of self.named_modules(), look in vars(module) for Parameters
        ### BEGIN SOLUTION
        seen: set[int] = set()
        for path, module in self.named_modules():
            if not isinstance(module, Module):
                continue
            for name, value in vars(module).items():
                if isinstance(value, Parameter) and id(value) not in seen:
                    seen.add(id(value))
                    yield (f"{path}.{name}" if path else name), value
        ### END SOLUTION

    def named_buffers(self) -> Iterator[tuple[str, Tensor]]:
        """State that is saved but not trained (e.g. BatchNorm's running mean): see register_buffer."""
        for path, module in self.named_modules():
            for name in getattr(module, "_buffer_names", ()):
                value = getattr(module, name, None)
                if value is not None:
                    yield (f"{path}.{name}" if path else name), value

    def register_buffer(self, name: str, value) -> None:
        """Keep `value` (a Tensor without gradient) as attribute `name` and in the state_dict."""
        if "_buffer_names" not in vars(self):
            self._buffer_names: list[str] = []
        if name not in self._buffer_names:
            self._buffer_names.append(name)
        setattr(self, name, value if value is None or isinstance(value, Tensor) else Tensor(value))

    def children(self) -> list:
        return [child for _, child in self.named_children()]

    def modules(self) -> list:
        return [m for _, m in self.named_modules()]

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    # --- modes and gradients ----------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Set `.training` on this module and every module below it (Dropout reads it)."""
        # HINT: set .training on every Module in self.modules(), then return self
        ### BEGIN SOLUTION
        for module in self.modules():
            if isinstance(module, Module):
                module.training = bool(mode)
        return self
        ### END SOLUTION

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients of the last backward pass (set them to None, as torch does)."""
        # HINT: p.grad = None for every parameter (or zero it in place if not set_to_none)
        ### BEGIN SOLUTION
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.data[...] = 0
        ### END SOLUTION

    # --- saving and loading -----------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """{name: a copy of the array} for every parameter, then every buffer."""
        # HINT: copies (p.data.copy()) keyed by the names of named_parameters() and named_buffers()
        ### BEGIN SOLUTION
        state = {name: p.data.copy() for name, p in self.named_parameters()}
        state.update((name, b.data.copy()) for name, b in self.named_buffers())
        return state
        ### END SOLUTION

    def load_state_dict(self, state: dict, strict: bool = True) -> tuple[list[str], list[str]]:
        """Copy the arrays of `state` into this module's parameters and buffers, in place (so an
        optimizer holding the parameters keeps working). Returns (missing, unexpected) keys.

        Raises RuntimeError, before changing anything, if a shape differs, or (strict) if a key
        is missing or unexpected.
        """
        # HINT: first collect every missing/unexpected key and shape mismatch and raise;
        # HINT: only then write in place: target.data[...] = value
        ### BEGIN SOLUTION
        own = dict(self.named_parameters())
        own.update(self.named_buffers())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        problems = []
        if strict and missing:
            problems.append(f"missing key(s) {missing}")
        if strict and unexpected:
            problems.append(f"unexpected key(s) {unexpected}")
        for name, target in own.items():
            if name in state:
                value = np.asarray(state[name].data if isinstance(state[name], Tensor) else state[name])
                if value.shape != target.shape:
                    problems.append(f"shape of {name!r} is {value.shape} in the state_dict, "
                                    f"but {target.shape} in the model")
        if problems:
            raise RuntimeError(f"{type(self).__name__}.load_state_dict: " + "; ".join(problems))
        for name, target in own.items():
            if name in state:
                value = state[name]
                target.data[...] = value.data if isinstance(value, Tensor) else value  # in place
        return missing, unexpected
        ### END SOLUTION

    # --- printing -----------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's line, e.g. 'in_features=2, ...'."""
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, child in self.named_children():
            text = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {text}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ")" if not lines else head + "\n" + "\n".join(lines) + "\n)"


# %%
if __name__ == "__main__":
    # Try it: a small tree, built from Parameters by hand (Linear comes next).
    from tinytorch.activations import ReLU

    class Affine(Module):
        def __init__(self, n_in, n_out):
            super().__init__()
            self.weight = Parameter(np.ones((n_out, n_in)))
            self.bias = Parameter(np.zeros(n_out))

    class Tiny(Module):
        def __init__(self):
            super().__init__()
            self.fc1 = Affine(3, 4)
            self.act = ReLU()
            self.fc2 = Affine(4, 2)
            self.same = self.fc1  # the same layer under a second name: counted once
            self.register_buffer("seen", np.zeros(2))  # saved, not trained

    tiny = Tiny()
    print("children:  ", [name for name, _ in tiny.named_children()])
    print("modules:   ", [name for name, _ in tiny.named_modules()])
    print("parameters:", [name for name, _ in tiny.named_parameters()])
    state = tiny.state_dict()
    print("state_dict:", {name: value.shape for name, value in state.items()})
    tiny.fc2.bias.data += 1.0
    tiny.load_state_dict(state)
    print("fc2.bias after the restore:", tiny.fc2.bias.data)

# %% nbgrader={"grade": true, "grade_id": "check-module-buffers", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    # the other Module checks build nested models with Sequential: they come right after it
    from tito.notebook import check
    check("03", "buffers")

# %% [markdown]
# ## Linear: $y = xW^\top + b$
#
# A linear layer maps each input vector of length `in_features` to an output vector of length
# `out_features`: every output is a weighted sum of all the inputs plus a bias,
#
# $$y_j = \sum_{i} x_i W_{ji} + b_j, \qquad \text{or for a batch:}\quad Y = XW^\top + b .$$
#
# **Shapes.** `X` is (N, in), one row per sample. `W` is stored as (out, in) - one *row* per
# output unit, the convention of PyTorch - so `X @ W.T` is (N, in) @ (in, out) = (N, out). The
# bias (out,) broadcasts over the N rows. The layer works on the last axis only: an input
# (B, T, in), say B sentences of T tokens, gives (B, T, out). Fold all the leading axes into one,
# `x.reshape(-1, in)`, do one 2-D matrix product, and reshape back to (..., out): one big product
# is faster than many small ones.
#
# **Worked example.** `in = 3`, `out = 2`, $x = [1, 2, 3]$,
# $W = \begin{bmatrix} 0.1 & 0.2 & 0.3 \\ -0.1 & 0 & 0.1 \end{bmatrix}$, $b = [0.5, -0.5]$:
# $y_0 = 0.1 + 0.4 + 0.9 + 0.5 = 1.9$ and $y_1 = -0.1 + 0 + 0.3 - 0.5 = -0.3$.
#
# A classic bug is to forget the transpose. For a square layer (in = out) `x @ W` has the right
# shape and wrong values, so nothing crashes; that is why the checks use non-square layers and
# compare values.

# %% [markdown]
# ### Initialisation: why $U(-1/\sqrt{\text{in}}, 1/\sqrt{\text{in}})$
#
# The starting weights decide whether a signal survives the trip through the layers. Take inputs
# $x_i$ with mean square $E[x^2]$ and independent weights with mean 0 and variance $\sigma^2$. Each
# output is a sum of `in` products, so
#
# $$\operatorname{Var}(y_j) = \text{in} \cdot \sigma^2 \cdot E[x^2].$$
#
# The sum grows with the number of inputs. With weights from $U(-1, 1)$ ($\sigma^2 = 1/3$) a layer
# with 784 inputs multiplies the variance by about 261; three such layers by $261^3 \approx 1.8
# \times 10^7$, and sigmoids saturate while softmax turns into a hard argmax. Weights that are too
# small do the opposite: the signal shrinks towards zero, layer after layer.
#
# So the spread of the weights has to shrink like $1/\sqrt{\text{in}}$. $U(-k, k)$ has variance
# $k^2/3$; with $k = 1/\sqrt{\text{in}}$ we get $\operatorname{Var}(y) = E[x^2]/3$ whatever the
# width. This is PyTorch's default for `nn.Linear`, which it calls Kaiming-uniform with
# $a = \sqrt 5$ (the gain $\sqrt{2/(1+a^2)} = \sqrt{1/3}$ times $\sqrt{3/\text{in}}$ gives exactly
# $1/\sqrt{\text{in}}$). It is a little conservative - He initialisation for ReLU nets uses
# $\sigma^2 = 2/\text{in}$ to keep the variance constant - but it never explodes, and for the
# shallow networks of milestones 01 to 03 it trains well. Numbers: for in = 784, $k = 1/28 \approx
# 0.0357$ and the weights' standard deviation is $k/\sqrt3 \approx 0.0206$. The bias gets the same
# distribution.
#
# The draws come from tinytorch's one seeded generator, `default_generator()` (module 01), so
# `tinytorch.manual_seed(0)` makes a model's initial weights - and so a whole training run -
# reproducible. Draw the weight first, then the bias, both from that generator, and store them
# as float32 `Parameter`s: weight (out, in), bias (out,), or `self.bias = None` with `bias=False`.

# %% [markdown]
# ### The systems view: FLOPs and memory
#
# **FLOPs.** Each output element is `in` multiplies and `in` adds, so one forward pass costs
# $2 \cdot N \cdot \text{in} \cdot \text{out}$ floating-point operations (plus $N \cdot
# \text{out}$ for the bias). For the MLP 784-256-128-10 at batch 128 that is $2 \cdot 128 \cdot
# (784 \cdot 256 + 256 \cdot 128 + 128 \cdot 10) \approx 60$ million FLOPs. The backward pass
# (module 06) does two more products of the same size - one for $\partial L/\partial x$, one for
# $\partial L/\partial W$ - so a training step is about three times the forward. Doubling the width
# of both sides of a layer quadruples its cost.
#
# **Memory.** The layer stores $\text{in} \cdot \text{out} + \text{out}$ numbers: 784 x 256 + 256 =
# 200,960 for the first MLP layer, 803,840 bytes in float32. The output of a batch is
# $N \cdot \text{out} \cdot 4$ bytes (128 x 256 x 4 = 131,072) and stays alive until the backward
# pass has used it. For big layers the weights dominate; for big batches the activations do.
#
# **Speed.** The matrix product runs in BLAS (compiled, vectorised, cache-blocked), at tens of
# GFLOP/s on one CPU core, while a Python loop over the same multiply-adds would manage a few
# million per second. Do the whole layer as one `@` on the arrays; never loop over samples or
# units. The reference records the result as one fused op, `Tensor._make(data, parents,
# "linear")`, so module 06 needs a single rule for it (its three gradients are three matrix
# products) instead of one each for a transpose, a matmul and an add. The line that records the
# op is given, after your region: compute `data`, the (..., out) array.
#
# Milestones 01 and 02 train before autograd exists by editing `layer.weight.data` in place, so
# `forward` must read `self.weight` every time it is called - never cache a copy in `__init__`.

# %% nbgrader={"grade": false, "grade_id": "linear", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Linear(Module):
    """y = x W^T + b, applied to the last axis of x: (..., in_features) -> (..., out_features).

    weight: Parameter (out_features, in_features),  bias: Parameter (out_features,) or None.
    Both start as U(-k, k) with k = 1/sqrt(in_features), drawn from the seeded generator
    (tinytorch.manual_seed), as PyTorch does ("Kaiming uniform" with a = sqrt(5)): the output
    of a fresh layer has about the variance of its input divided by 3.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        # HINT: k = 1/sqrt(in_features); default_generator().uniform(-k, k, size=...);
        # HINT: weight (out_features, in_features) and bias (out_features,): float32 Parameters
        ### BEGIN SOLUTION
        k = 1.0 / np.sqrt(in_features) if in_features > 0 else 0.0
        g = default_generator()
        w = g.uniform(-k, k, size=(out_features, in_features))  # (out, in)
        self.weight = Parameter(w.astype(DEFAULT_DTYPE))
        self.bias = Parameter(g.uniform(-k, k, size=out_features).astype(DEFAULT_DTYPE)) if bias else None
        ### END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear.forward: expected an input of shape (..., {self.in_features}), "
                             f"got {x.shape}")
        # HINT: y = x @ W.T + b on the arrays (x.data, self.weight.data, ...); bias may be None
        ### BEGIN SOLUTION
        lead = x.shape[:-1]
        data = x.data.reshape(-1, self.in_features) @ self.weight.data.T  # (N, in) @ (in, out) -> (N, out)
        if self.bias is not None:
            data += self.bias.data  # (N, out) + (out,)
        data = data.reshape(*lead, self.out_features)  # (..., out)
        ### END SOLUTION
        parents = (x, self.weight) if self.bias is None else (x, self.weight, self.bias)
        return Tensor._make(data, parents, "linear")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


# %%
if __name__ == "__main__":
    # Try it: the initial weights fill U(-k, k), k = 1/sqrt(in), with standard deviation k/sqrt(3).
    from tinytorch.tensor import manual_seed

    manual_seed(0)
    big = Linear(784, 256)
    k = 1 / np.sqrt(784)
    print(big)
    print(f"weight {big.weight.shape}, bias {big.bias.shape}, k = {k:.4f}")
    print(f"largest |w| = {np.abs(big.weight.data).max():.4f}, std = {big.weight.data.std():.4f} "
          f"(expected {k / np.sqrt(3):.4f})")
    print("parameters:", sum(p.size for p in big.parameters()),
          "->", sum(p.data.nbytes for p in big.parameters()), "bytes")

# %% nbgrader={"grade": true, "grade_id": "check-linear-init", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("03", "linear_init")

# %%
if __name__ == "__main__":
    # Try it: the worked example above, y = [1.9, -0.3].
    layer = Linear(3, 2)
    layer.weight.data[...] = [[0.1, 0.2, 0.3], [-0.1, 0.0, 0.1]]
    layer.bias.data[...] = [0.5, -0.5]
    print(layer(Tensor([[1.0, 2.0, 3.0]])))
    print("a (2, 4, 3) input gives", layer(Tensor(np.ones((2, 4, 3)))).shape)

# %% nbgrader={"grade": true, "grade_id": "check-linear", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("03", "Linear")

# %% [markdown]
# ## Sequential: layers one after the other
#
# Most models are, at least in parts, a chain: the output of one layer is the input of the next.
# `Sequential(Linear(784, 256), ReLU(), Linear(256, 10))` says that without writing a class. Its
# `forward` is a loop, $x \leftarrow \text{layer}(x)$ for each layer in order, returning the last
# $x$. Everything else is given: it keeps the layers in a list, names them by position (`"0"`,
# `"1"`, ...; so parameters are called `0.weight`, `2.bias`, exactly like PyTorch's), and supports
# `len`, indexing, iteration, `append` and slicing - `model[:2]` is a new `Sequential` that
# *shares* the first two layers, handy for looking at hidden activations.
#
# Worked example: with `Sequential(Linear(4, 8), ReLU(), Linear(8, 2))` a batch (5, 4) becomes
# (5, 8), stays (5, 8) through the ReLU, and ends as (5, 2).
#
# Systems view: the loop itself costs nothing next to the layers; the cost of a Sequential is the
# sum of its layers' costs. Its memory is not: when gradients are wanted every intermediate output
# stays alive in the graph until the backward pass, so the activation memory of a deep chain is
# the *sum* over all layers of batch x width x 4 bytes. That sum, not the weights, is what limits
# the batch size of deep networks.

# %% nbgrader={"grade": false, "grade_id": "sequential", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Sequential(Module):
    """Layers applied one after the other: Sequential(Linear(4, 8), ReLU(), Linear(8, 2)).

    Supports len(seq), seq[i], seq[a:b] (a new Sequential sharing the layers), iteration and
    append. The layers are named "0", "1", ... (so parameters are "0.weight", "2.bias", ...).
    """

    def __init__(self, *layers):
        super().__init__()
        self._layers = list(layers)

    def named_children(self):
        return ((str(i), layer) for i, layer in enumerate(self._layers))

    def forward(self, x: Tensor) -> Tensor:
        # HINT: the output of each layer is the input of the next
        ### BEGIN SOLUTION
        for layer in self._layers:
            x = layer(x)
        return x
        ### END SOLUTION

    def append(self, layer) -> "Sequential":
        self._layers.append(layer)
        return self

    def __len__(self) -> int:
        return len(self._layers)

    def __iter__(self):
        return iter(self._layers)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return Sequential(*self._layers[idx])
        return self._layers[idx]


# %%
if __name__ == "__main__":
    # Try it: shapes through a small chain, and the names of its parameters.
    from tinytorch.activations import ReLU

    net = Sequential(Linear(4, 8), ReLU(), Linear(8, 2))
    x = Tensor(np.ones((5, 4)))
    print("hidden:", net[:2](x).shape, " output:", net(x).shape)
    print([name for name, _ in net.named_parameters()])

# %% nbgrader={"grade": true, "grade_id": "check-sequential", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("03", "Sequential")

# %% [markdown]
# ## Module, checked on a real tree
#
# With `Linear` and `Sequential` in hand you can build the kind of tree the Module checks use: a
# `Sequential` inside a `Sequential`, the same block stored under two names, and one weight tied
# between two layers. The model below has, in order of assignment, `fc1` (a Linear), `act` (a ReLU),
# `block` (a Sequential of a Linear, a Tanh and another Sequential), a parameter `scale` of its
# own, `head` whose weight *is* `fc1`'s weight, and `again`, the same object as `block`. Work out
# on paper what the walk must give before you run it:
#
# - `named_modules()`: `""`, `fc1`, `act`, `block`, `block.0`, `block.1`, `block.2`, `block.2.0`,
#   `head` - `again` is not there, it was seen as `block`;
# - `named_parameters()`: `scale` first (the model's own), then `fc1.weight`, `fc1.bias`,
#   `block.0.weight`, `block.0.bias`, `block.2.0.weight`, `block.2.0.bias`, and `head.bias` only -
#   `head.weight` is `fc1.weight`, already listed.
#
# The four try/check pairs below run the tree walk, the parameter list, `zero_grad` and the
# state dict on such a model.

# %%
if __name__ == "__main__":
    # Try it: a nested tree with a repeated block and a tied weight.
    from tinytorch.activations import ReLU, Tanh

    class Net(Module):
        def __init__(self):
            super().__init__()
            self.fc1 = Linear(3, 4)
            self.act = ReLU()
            self.block = Sequential(Linear(4, 4), Tanh(), Sequential(Linear(4, 2)))
            self.scale = Parameter(np.ones(2))
            self.head = Linear(3, 4)
            self.head.weight = self.fc1.weight  # tied: one Parameter, two layers
            self.again = self.block  # the same module under a second name

        def forward(self, x):
            return self.block(self.act(self.fc1(x))) * self.scale

    net = Net()
    print("children:", [name for name, _ in net.named_children()])
    print("modules: ", [name for name, _ in net.named_modules()])

# %% nbgrader={"grade": true, "grade_id": "check-module-children", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("03", "children")

# %%
if __name__ == "__main__":
    # Try it: every parameter once, with its dotted name and its size in bytes.
    for name, p in net.named_parameters():
        print(f"{name:18s} {str(p.shape):8s} {p.data.nbytes:4d} bytes")
    print("numbers to train:", sum(p.size for p in net.parameters()))

# %% nbgrader={"grade": true, "grade_id": "check-module-named-parameters", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("03", "named_parameters")

# %%
if __name__ == "__main__":
    # Try it: zero_grad() forgets the gradients (here made up by hand: module 06 computes real ones).
    for p in net.parameters():
        p.grad = Tensor(np.ones(p.shape))
    net.zero_grad()
    print("grads after zero_grad():", {p.grad for p in net.parameters()})

# %% nbgrader={"grade": true, "grade_id": "check-module-zero-grad", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("03", "zero_grad")

# %%
if __name__ == "__main__":
    # Try it: a snapshot, a change, a restore; then a state_dict whose shapes do not fit.
    snapshot = net.state_dict()
    before = net(Tensor(np.ones((1, 3)))).data
    net.fc1.weight.data += 5.0
    net.load_state_dict(snapshot)
    print("same output after the restore:", np.array_equal(before, net(Tensor(np.ones((1, 3)))).data))
    try:
        net.load_state_dict({**snapshot, "head.bias": np.zeros(3, np.float32)})
    except RuntimeError as e:
        print("refused:", e)

# %% nbgrader={"grade": true, "grade_id": "check-module-state-dict", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("03", "state_dict")

# %% [markdown]
# ## Dropout: $y = x \odot m / (1 - p)$
#
# A large network can memorise its training set by letting units rely on each other in fragile
# combinations. Dropout (Srivastava, Hinton et al., 2014) breaks those: during training each element
# of the input is set to zero with probability $p$, a fresh random choice for every element of
# every batch. Each step trains a different thinned network, and no unit can count on any other
# being there.
#
# **Inverted dropout and the expectation.** Zeroing a fraction $p$ shrinks the average signal by
# $(1-p)$; at evaluation time, with nothing dropped, the next layer would suddenly see inputs
# $1/(1-p)$ times larger than it was trained on. *Inverted* dropout fixes that during training:
# the survivors are scaled by $1/(1-p)$, so for every element
#
# $$E[y_i] = (1-p)\cdot\frac{x_i}{1-p} + p \cdot 0 = x_i ,$$
#
# and evaluation is simply the identity - no rescaling of weights, and the eval path costs
# nothing. Worked example: $x = [1, 2, 3, 4]$, $p = 0.5$, the draw keeps elements 0, 2 and 3:
# $y = [2, 0, 6, 8]$. On average over many draws $y$ is $x$; any one draw is noisy, with variance
# $x_i^2\, p/(1-p)$ per element.
#
# **What to write.** In eval mode (`self.training` is False) or with $p = 0$, return `x` itself.
# Otherwise draw uniforms from `default_generator()` (so `manual_seed` fixes the masks) in the
# shape of `x`, keep the elements whose draw is at least $p$, build the float32 mask holding 0 or
# $1/(1-p)$, and return `x * mask` - a Tensor op, so the graph is recorded and module 06's rule for
# multiplication gives the gradient (the same mask: dropped units get no gradient). $p = 1$ drops
# everything; make the scale 0 there instead of dividing by zero, so the output is zeros, never nan.
#
# **Systems view.** A mask is one float32 per element, as big as the activation it masks (a
# (128, 256) activation: 131,072 bytes), and it is kept in the graph until the backward pass. It
# costs one random draw, one comparison and one multiply per element: $O(\text{size})$, negligible
# next to the Linear layers around it. Drawing the random numbers as float32 instead of float64
# halves the bytes the generator writes.

# %% nbgrader={"grade": false, "grade_id": "dropout", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Dropout(Module):
    """Training: zero each element with probability p, scale the survivors by 1/(1-p).
    Evaluation (`model.eval()`): the identity. The mask comes from the seeded generator."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout probability must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        # HINT: the identity in eval mode (or p == 0); otherwise keep each element with probability 1 - p
        # HINT: (mask from default_generator().random(x.shape)) and scale the kept ones by 1/(1-p): x * mask
        ### BEGIN SOLUTION
        if not self.training or self.p == 0.0:
            return x
        keep = default_generator().random(x.shape, dtype=np.float32) >= self.p  # (same shape as x)
        scale = 0.0 if self.p == 1.0 else 1.0 / (1.0 - self.p)
        mask = np.multiply(keep, scale, dtype=x.dtype)  # 0 or 1/(1-p)
        return x * mask
        ### END SOLUTION

    def extra_repr(self) -> str:
        return f"p={self.p}"


# %%
if __name__ == "__main__":
    # Try it: one draw on a small input, and the expectation over a big one.
    drop = Dropout(0.5)
    print(drop(Tensor([1.0, 2.0, 3.0, 4.0])))
    ones = drop(Tensor(np.ones((400, 500))))
    print(f"dropped {float((ones.data == 0).mean()):.3f} of the elements, mean {float(ones.data.mean()):.4f}")

# %% nbgrader={"grade": true, "grade_id": "check-dropout", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("03", "Dropout")

# %%
if __name__ == "__main__":
    # Try it: Module.train()/eval() switch a Dropout that sits deep inside a model.
    model = Sequential(Linear(3, 3), Sequential(Dropout(0.5)))
    x = Tensor(np.ones((2, 3)))
    print("eval: ", model.eval()[1](x).data.tolist())
    print("train:", model.train()[1](x).data.tolist())

# %% nbgrader={"grade": true, "grade_id": "check-module-train-eval", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("03", "train_eval")

# %%
if __name__ == "__main__":
    # Try it: the printout of a model is built from named_children() and extra_repr() (given).
    print(Sequential(Linear(784, 256), ReLU(), Dropout(0.2), Linear(256, 10)))

# %% nbgrader={"grade": true, "grade_id": "check-module-repr", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("03", "repr")

# %% [markdown]
# ## Flatten: from images to vectors
#
# A Linear layer wants one vector per sample, but images come as (N, C, H, W): N samples, C
# channels, H x W pixels. `Flatten` merges the axes from `start_dim` to `end_dim` (defaults: 1 and
# -1, everything but the batch axis) into one: MNIST's (N, 1, 28, 28) becomes (N, 784), and in
# LeNet (milestone 04) the last feature maps (N, 16, 5, 5) become (N, 400) before the classifier.
# Negative dims count from the end, as everywhere in NumPy.
#
# Systems view: flattening moves no data. A reshape of a contiguous array only writes a new shape
# and new strides - $O(1)$ time and no extra memory, however big the batch - and
# `Tensor.flatten` (module 01) records it as a reshape so module 06 can reshape the gradient back.
# One call does it all.

# %% nbgrader={"grade": false, "grade_id": "flatten", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Flatten(Module):
    """Merge axes start_dim..end_dim into one: (N, C, H, W) -> (N, C*H*W) with the defaults."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        # HINT: Tensor.flatten does the work
        ### BEGIN SOLUTION
        return x.flatten(self.start_dim, self.end_dim)
        ### END SOLUTION

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


# %%
if __name__ == "__main__":
    # Try it: a batch of two 1x28x28 images, and LeNet's last feature maps.
    print(Flatten()(Tensor(np.zeros((2, 1, 28, 28)))).shape)
    print(Flatten()(Tensor(np.zeros((2, 16, 5, 5)))).shape)

# %% nbgrader={"grade": true, "grade_id": "check-flatten", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("03", "Flatten")

# %% [markdown]
# ## Wrap-up
#
# You built the skeleton that every model in this course hangs on:
#
# - `Module` finds its parameters by walking its attributes - names are dotted paths in
#   assignment order, shared layers and tied weights count once - switches the whole tree between
#   training and evaluation, and saves and restores copies of its numbers, checked before a
#   single value is written.
# - `Linear` does the arithmetic: $2N \cdot \text{in} \cdot \text{out}$ FLOPs per forward pass,
#   $\text{in} \cdot \text{out} + \text{out}$ parameters, started small enough
#   ($\pm 1/\sqrt{\text{in}}$) that the signal neither explodes nor dies.
# - `Sequential`, `Dropout` (inverted, so evaluation is free) and `Flatten` (a reshape, no copy)
#   compose them.
#
# The systems lessons: one big matrix product beats any loop; weights cost $4P$ bytes but training
# costs several times that (gradients, optimizer state, activations kept for backward); and a
# random number that is not seeded makes a run impossible to reproduce.
#
# What comes next: module 04 measures how wrong a model is (losses), module 05 feeds it batches,
# and module 06 differentiates the graph these layers record - after which `Linear`'s weights are
# trained by gradient descent instead of by hand. Already now, milestones 01 (the Perceptron) and
# 02 (the XOR crisis) run on your layers.
#
# Check your work from the terminal too:
#
#     tito module test 03
#     tito module complete 03        -> milestones 01 (Perceptron) and 02 (XOR) unlock
#
# The last cell runs every check of this module.

# %% nbgrader={"grade": true, "grade_id": "check-all", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("03")
