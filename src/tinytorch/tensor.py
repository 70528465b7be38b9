# %% [markdown]
# # Module 01 - Tensor
#
# A `Tensor` is an n-dimensional array of float32 numbers plus the bookkeeping that autograd
# (module 06) needs later: which op made it, and from which parents. In this module you write the
# FORWARD math of every op; the graph recording around it is already done for you, so that module
# 06 can add the derivatives without touching this file.

# %%
"""Module 01: the Tensor.

Every op computes its result with NumPy and hands it to `Tensor._make(data, parents, op, saved)`,
which records the graph edge when gradients are wanted:

    out = a * b        ->  out._op == "mul",  out._parents == (a, b)

Broadcasting follows NumPy: shapes are aligned on the right and size-1 axes stretch, e.g.
(4, 3) + (3,) -> (4, 3). Module 06 undoes a broadcast in the backward pass by summing over the
stretched axes.
"""

from __future__ import annotations

import importlib

import numpy as np

DEFAULT_DTYPE = np.float32

# ---------------------------------------------------------------------------------------------
# Random numbers and grad mode (infrastructure: given)
# ---------------------------------------------------------------------------------------------
_rng = np.random.default_rng(0)


def manual_seed(seed: int) -> None:
    """Reseed the generator behind randn/rand/Linear init/Dropout/shuffling, like torch.manual_seed."""
    global _rng
    _rng = np.random.default_rng(seed)


def default_generator() -> np.random.Generator:
    return _rng


_grad_enabled = True


def is_grad_enabled() -> bool:
    return _grad_enabled


class no_grad:
    """Context manager (and decorator) that turns graph recording off, like torch.no_grad()."""

    def __enter__(self):
        global _grad_enabled
        self._prev, _grad_enabled = _grad_enabled, False

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._prev

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)

        wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
        return wrapper


def _axis(axis, dim):
    """Accept NumPy's `axis` or PyTorch's `dim` spelling."""
    return dim if axis is None else axis


def _is_basic_index(idx) -> bool:
    """True for slices/ints/None/Ellipsis (a view: no repeated elements), False for fancy indexing."""
    items = idx if isinstance(idx, tuple) else (idx,)
    return all(isinstance(i, (int, slice, type(None), type(Ellipsis))) for i in items)


# ---------------------------------------------------------------------------------------------
# The Tensor
# ---------------------------------------------------------------------------------------------
class Tensor:
    """An n-dimensional float32 array that can remember how it was computed.

    Tensor([[1, 2], [3, 4]])          # from lists, arrays or scalars -> float32
    Tensor(x, dtype=np.float64)       # explicit dtype (gradcheck uses float64)
    Tensor(labels_int64_array)        # integer / bool arrays keep their dtype
    """

    __slots__ = ("data", "grad", "requires_grad", "_op", "_parents", "_saved", "__weakref__")
    __array_priority__ = 1000  # ndarray * Tensor -> Tensor.__rmul__, not an object array

    def __init__(self, data, dtype=None, requires_grad: bool = False):
        if isinstance(data, Tensor):
            data = data.data
        ### BEGIN SOLUTION
        if dtype is not None:
            data = np.asarray(data, dtype=dtype)
        elif isinstance(data, (np.ndarray, np.generic)) and data.dtype.kind in "iub":
            data = np.asarray(data)  # integer labels and bool masks keep their dtype
        else:
            data = np.asarray(data, dtype=DEFAULT_DTYPE)  # lists, scalars, float64 arrays -> float32
        ### END SOLUTION
        self.data: np.ndarray = data
        self.grad: Tensor | None = None
        self.requires_grad = bool(requires_grad)
        self._op: str | None = None
        self._parents: tuple = ()
        self._saved = None
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got {data.dtype}")

    @staticmethod
    def _make(data: np.ndarray, parents: tuple, op: str, saved=None) -> "Tensor":
        """Wrap an op's result; record (op, parents, saved) if any parent needs a gradient."""
        out = Tensor.__new__(Tensor)
        if type(data) is not np.ndarray:  # NumPy turns 0-d results into scalars: keep an ndarray
            data = np.asarray(data)
        out.data, out.grad, out._saved = data, None, None
        out.requires_grad, out._op, out._parents = False, None, ()
        if _grad_enabled and any(p.requires_grad for p in parents):
            out.requires_grad, out._op, out._parents, out._saved = True, op, parents, saved
        return out

    # --- properties and conversion ------------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    size = property(lambda self: self.data.size)
    is_leaf = property(lambda self: self._op is None)

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float:
        return self.data.item()

    def detach(self) -> "Tensor":
        """The same values, cut from the graph (shares memory, like torch)."""
        return Tensor(self.data, dtype=self.data.dtype)

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        self.requires_grad = flag
        return self

    def astype(self, dtype) -> "Tensor":
        return Tensor(self.data.astype(dtype), dtype=dtype)

    def __len__(self):
        return len(self.data)

    def __bool__(self) -> bool:
        """Truth of a one-element tensor (more elements: ValueError, as in NumPy and torch)."""
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.data)

    def __int__(self) -> int:
        return int(self.data)

    def __repr__(self):
        body = np.array2string(self.data, precision=4, separator=", ", threshold=20, prefix="Tensor(")
        extra = f", grad_fn=<{self._op}>" if self._op else (", requires_grad=True" if self.requires_grad else "")
        dt = "" if self.data.dtype == DEFAULT_DTYPE else f", dtype={self.data.dtype}"
        return f"Tensor({body}{dt}{extra})"

    __hash__ = object.__hash__  # identity hash: tensors are dict keys in optimizers

    def backward(self, grad=None, retain_graph: bool = True) -> None:
        """Backpropagate from this tensor; gradients accumulate into the leaves' `.grad`."""
        # import_module: `from tinytorch import autograd` would report a missing file as a vague
        # ImportError instead of a ModuleNotFoundError naming tinytorch.autograd
        try:
            autograd = importlib.import_module("tinytorch.autograd")
        except ModuleNotFoundError as e:
            if e.name != "tinytorch.autograd":  # module 06 exists but imports something missing
                raise
            raise RuntimeError(
                "backward() needs module 06 (autograd), which is not complete yet: "
                "run `tito module complete 06`"
            ) from e
        try:
            autograd.backward(self, grad)
        except NotImplementedError as e:
            tb = e.__traceback__
            while tb.tb_next is not None:  # the innermost frame: the unfinished function
                tb = tb.tb_next
            where = str(e) or getattr(tb.tb_frame.f_code, "co_qualname", tb.tb_frame.f_code.co_name)
            raise RuntimeError(
                f"backward() hit an unfinished part of module 06 (autograd): {where}. "
                "Finish it and run `tito module complete 06`"
            ) from e

    # --- elementwise arithmetic (broadcasting) ------------------------------------------------
    def _lift(self, other) -> "Tensor":
        """Scalars and arrays become constant tensors of our dtype (Python floats never upcast).

        Integer/bool tensors (labels, masks) keep NumPy's promotion: labels + 1 stays int64,
        mask * 0.5 becomes float (it is not truncated to the mask's dtype).
        """
        if isinstance(other, Tensor):
            return other
        if self.data.dtype.kind == "f":
            return Tensor(other, dtype=self.data.dtype)
        return Tensor(np.asarray(other))

    def __add__(self, other):
        other = self._lift(other)
        ### BEGIN SOLUTION
        data = self.data + other.data
        ### END SOLUTION
        return Tensor._make(data, (self, other), "add")

    def __sub__(self, other):
        other = self._lift(other)
        ### BEGIN SOLUTION
        data = self.data - other.data
        ### END SOLUTION
        return Tensor._make(data, (self, other), "sub")

    def __mul__(self, other):
        other = self._lift(other)
        ### BEGIN SOLUTION
        data = self.data * other.data
        ### END SOLUTION
        return Tensor._make(data, (self, other), "mul")

    def __truediv__(self, other):
        other = self._lift(other)
        ### BEGIN SOLUTION
        data = self.data / other.data
        ### END SOLUTION
        return Tensor._make(data, (self, other), "div")

    def __pow__(self, other):
        other = self._lift(other)
        ### BEGIN SOLUTION
        data = self.data ** other.data
        ### END SOLUTION
        return Tensor._make(data, (self, other), "pow")

    def __neg__(self):
        ### BEGIN SOLUTION
        data = -self.data
        ### END SOLUTION
        return Tensor._make(data, (self,), "neg")

    def __radd__(self, other):
        return self._lift(other) + self

    def __rsub__(self, other):
        return self._lift(other) - self

    def __rmul__(self, other):
        return self._lift(other) * self

    def __rtruediv__(self, other):
        return self._lift(other) / self

    def __rpow__(self, other):
        return self._lift(other) ** self

    # --- matrix multiply ----------------------------------------------------------------------
    def matmul(self, other) -> "Tensor":
        """(..., n, k) @ (..., k, m) -> (..., n, m); batch dims broadcast, 1-D operands as in NumPy."""
        other = self._lift(other)
        ### BEGIN SOLUTION
        A, B = self.data, other.data
        if A.ndim > 2 and B.ndim == 2:  # (..., n, k) @ (k, m): one big matmul, not one per batch
            data = (A.reshape(-1, A.shape[-1]) @ B).reshape(*A.shape[:-1], B.shape[-1])
        else:
            data = np.matmul(A, B)
        ### END SOLUTION
        return Tensor._make(data, (self, other), "matmul")

    __matmul__ = matmul

    def __rmatmul__(self, other):
        return self._lift(other).matmul(self)

    # --- reductions ---------------------------------------------------------------------------
    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=None) -> "Tensor":
        """Sum over `axis` (int, tuple or None = all). keepdims keeps reduced axes as size 1."""
        axis, keepdims = _axis(axis, dim), keepdims or bool(keepdim)
        ### BEGIN SOLUTION
        data = np.sum(self.data, axis=axis, keepdims=keepdims)
        ### END SOLUTION
        return Tensor._make(np.asarray(data), (self,), "sum", (axis, keepdims))

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=None) -> "Tensor":
        axis, keepdims = _axis(axis, dim), keepdims or bool(keepdim)
        ### BEGIN SOLUTION
        data = np.mean(self.data, axis=axis, keepdims=keepdims)
        ### END SOLUTION
        dtype = self.data.dtype if self.data.dtype.kind == "f" else DEFAULT_DTYPE  # mean of a mask
        return Tensor._make(np.asarray(data, dtype=dtype), (self,), "mean", (axis, keepdims))

    def max(self, axis=None, keepdims=False, *, dim=None, keepdim=None) -> "Tensor":
        """Largest value over `axis` (values only, like torch.amax). Ties share the gradient."""
        axis, keepdims = _axis(axis, dim), keepdims or bool(keepdim)
        ### BEGIN SOLUTION
        data = np.max(self.data, axis=axis, keepdims=keepdims)
        ### END SOLUTION
        return Tensor._make(np.asarray(data), (self,), "max", (axis, keepdims))

    def min(self, axis=None, keepdims=False, *, dim=None, keepdim=None) -> "Tensor":
        axis, keepdims = _axis(axis, dim), keepdims or bool(keepdim)
        ### BEGIN SOLUTION
        data = np.min(self.data, axis=axis, keepdims=keepdims)
        ### END SOLUTION
        return Tensor._make(np.asarray(data), (self,), "min", (axis, keepdims))

    def argmax(self, axis=None, *, dim=None) -> "Tensor":
        """Index of the largest value (an integer tensor, no gradient)."""
        return Tensor(np.argmax(self.data, axis=_axis(axis, dim)))

    # --- shape ops (views: no data copied) ------------------------------------------------------
    def reshape(self, *shape) -> "Tensor":
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        ### BEGIN SOLUTION
        data = self.data.reshape(shape)
        ### END SOLUTION
        return Tensor._make(data, (self,), "reshape")

    view = reshape

    def permute(self, *axes) -> "Tensor":
        """Reorder the axes: x.permute(0, 2, 1) swaps the last two of a 3-D tensor."""
        axes = tuple(axes[0]) if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        axes = tuple(a % self.ndim for a in axes)  # -1 -> ndim-1: the backward inverts the order
        ### BEGIN SOLUTION
        data = np.transpose(self.data, axes)
        ### END SOLUTION
        return Tensor._make(data, (self,), "permute", axes)

    def transpose(self, dim0: int = -2, dim1: int = -1) -> "Tensor":
        """Swap two axes (the last two by default)."""
        axes = list(range(self.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return self.permute(*axes)

    @property
    def T(self) -> "Tensor":
        """All axes reversed (for a matrix: the transpose)."""
        return self.permute(*reversed(range(self.ndim)))

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Tensor":
        """Merge axes start_dim..end_dim into one: (N, C, H, W).flatten(1) -> (N, C*H*W)."""
        shape = self.shape
        start, end = start_dim % max(len(shape), 1), end_dim % max(len(shape), 1)
        return self.reshape(*shape[:start], -1, *shape[end + 1:])

    def squeeze(self, axis=None, *, dim=None) -> "Tensor":
        """Drop size-1 axes: all of them, or only `axis` (an int or a tuple) where its size is 1."""
        axis = _axis(axis, dim)
        if axis is None:
            drop = {i for i, s in enumerate(self.shape) if s == 1}
        else:
            axes = axis if isinstance(axis, (tuple, list)) else (axis,)
            drop = {a % self.ndim for a in axes if self.ndim and self.shape[a % self.ndim] == 1}
        return self.reshape(*(s for i, s in enumerate(self.shape) if i not in drop))

    def unsqueeze(self, axis: int) -> "Tensor":
        axis = axis % (self.ndim + 1)
        return self.reshape(*self.shape[:axis], 1, *self.shape[axis:])

    def __getitem__(self, idx) -> "Tensor":
        """Indexing and slicing as in NumPy: x[0], x[:, 1:3], x[idx_array]."""
        if isinstance(idx, Tensor):
            idx = idx.data
        elif isinstance(idx, tuple):
            idx = tuple(i.data if isinstance(i, Tensor) else i for i in idx)
        ### BEGIN SOLUTION
        data = self.data[idx]
        ### END SOLUTION
        return Tensor._make(np.asarray(data), (self,), "getitem", idx)

    # --- elementwise math -----------------------------------------------------------------------
    def exp(self) -> "Tensor":
        ### BEGIN SOLUTION
        data = np.exp(self.data)
        ### END SOLUTION
        return Tensor._make(data, (self,), "exp")

    def log(self) -> "Tensor":
        """Natural logarithm (log 0 = -inf, as in NumPy)."""
        ### BEGIN SOLUTION
        data = np.log(self.data)
        ### END SOLUTION
        return Tensor._make(data, (self,), "log")

    def sqrt(self) -> "Tensor":
        ### BEGIN SOLUTION
        data = np.sqrt(self.data)
        ### END SOLUTION
        return Tensor._make(data, (self,), "sqrt")

    def abs(self) -> "Tensor":
        ### BEGIN SOLUTION
        data = np.abs(self.data)
        ### END SOLUTION
        return Tensor._make(data, (self,), "abs")

    def clip(self, min=None, max=None) -> "Tensor":
        """Clamp values into [min, max] (either bound may be None)."""
        ### BEGIN SOLUTION
        data = np.clip(self.data, min, max)
        ### END SOLUTION
        return Tensor._make(data, (self,), "clip", (min, max))

    clamp = clip

    # --- comparisons (no gradient; bool tensors) ------------------------------------------------
    def _cmp(self, other, fn) -> "Tensor":
        return Tensor(fn(self.data, other.data if isinstance(other, Tensor) else other))

    def __eq__(self, other):
        return self._cmp(other, np.equal)

    def __ne__(self, other):
        return self._cmp(other, np.not_equal)

    def __lt__(self, other):
        return self._cmp(other, np.less)

    def __le__(self, other):
        return self._cmp(other, np.less_equal)

    def __gt__(self, other):
        return self._cmp(other, np.greater)

    def __ge__(self, other):
        return self._cmp(other, np.greater_equal)


# ---------------------------------------------------------------------------------------------
# Creation functions (like torch.zeros, torch.randn, ...)
# ---------------------------------------------------------------------------------------------
def _shape(shape) -> tuple:
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(data, dtype=dtype, requires_grad=requires_grad)


def zeros(*shape, dtype=DEFAULT_DTYPE, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(_shape(shape), dtype=dtype), dtype=dtype, requires_grad=requires_grad)


def ones(*shape, dtype=DEFAULT_DTYPE, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(_shape(shape), dtype=dtype), dtype=dtype, requires_grad=requires_grad)


def full(shape, value: float, dtype=DEFAULT_DTYPE) -> Tensor:
    return Tensor(np.full(shape, value, dtype=dtype), dtype=dtype)


def zeros_like(t: Tensor) -> Tensor:
    return zeros(*t.shape, dtype=t.dtype)


def ones_like(t: Tensor) -> Tensor:
    return ones(*t.shape, dtype=t.dtype)


def arange(*args, dtype=DEFAULT_DTYPE) -> Tensor:
    return Tensor(np.arange(*args, dtype=dtype), dtype=dtype)


def randn(*shape, generator: np.random.Generator | None = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples in float32 (seeded by manual_seed unless a generator is given)."""
    g = generator or _rng
    data = g.standard_normal(_shape(shape), dtype=np.float32)
    return Tensor(data, requires_grad=requires_grad)


def rand(*shape, generator: np.random.Generator | None = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1), float32."""
    g = generator or _rng
    return Tensor(g.random(_shape(shape), dtype=np.float32), requires_grad=requires_grad)
