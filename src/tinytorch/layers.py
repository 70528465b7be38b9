# %% [markdown]
# # Module 03 - Layers
#
# A network is a tree of layers, and a layer is a function with state: its parameters. `Module`
# is the bookkeeping that finds every parameter in that tree (so an optimizer can update them all),
# switches the whole tree between training and evaluation, and saves or restores its numbers.
# `Linear` is the layer that does almost all of the arithmetic in an MLP.

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


# ---------------------------------------------------------------------------------------------
# Parameter (given)
# ---------------------------------------------------------------------------------------------
class Parameter(Tensor):
    """A Tensor that a Module owns and an optimizer updates: float32, requires_grad=True.

    Assigning one as an attribute of a Module (`self.weight = Parameter(...)`) registers it.
    """

    __slots__ = ()

    def __init__(self, data, dtype=None, requires_grad: bool = True):
        super().__init__(data, dtype=dtype or DEFAULT_DTYPE, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


# ---------------------------------------------------------------------------------------------
# Module
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------
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
