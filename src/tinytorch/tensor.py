# %% [markdown]
# # Module 01 - Tensor
#
# Everything in TinyTorch is a `Tensor`: an n-dimensional array of float32 numbers that also
# remembers which operation produced it and from which inputs. In this module you write the
# forward math of every tensor operation with NumPy: creation, broadcasting arithmetic, matrix
# multiply, reductions, views and indexing.
#
# The graph recording around your code (`Tensor._make`) is given, so that module 06 (autograd)
# can add the derivatives later without touching this file. Every later module, and every
# milestone from the 1958 perceptron onwards, runs on the class you write here.
#
# ## What you build
#
# One class, `Tensor`, written in one cell. Inside it you fill in the NumPy line(s) of:
#
# - `Tensor.__init__`: turn lists, scalars and arrays into a float32 `ndarray` (integer and bool
#   arrays keep their dtype: they are labels and masks; an explicit `dtype=` wins);
# - arithmetic with broadcasting: `__add__`, `__sub__`, `__mul__`, `__truediv__`, `__pow__`,
#   `__neg__`, and `matmul` (the `@` operator, batched);
# - reductions: `sum`, `mean`, `max`, `min` with `axis` and `keepdims`;
# - views: `reshape` and `permute` (transpose, flatten, squeeze and friends are built on these),
#   and indexing, `__getitem__`;
# - elementwise math: `exp`, `log`, `sqrt`, `abs`, `clip`.
#
# Each method computes `data` (a NumPy array) and hands it to `Tensor._make(data, parents, op)`.
# Almost every body is one line of NumPy: the lesson is in knowing *which* line, what shape and
# dtype comes out, and what it costs.
#
# ## How to work through this notebook
#
# Read the markdown cells that come before the class: each teaches one group of methods, with a
# worked example and the systems view (bytes, FLOPs, what breaks at scale). Then fill in the
# class cell and run it. After it, every group has a **try it** cell that runs your code on a tiny
# input and prints the result, and a **check** cell that runs that group's checks right here, with
# the same table as `tito module test`. You can fill the class in one group at a time: re-run the
# class cell, then that group's try-it and check cells.
#
# From a terminal the same checks run with:
#
#     tito module test 01                         all checks on your file
#     tito module test 01 --task Tensor.matmul    only the matmul checks
#     tito module complete 01                     export it into your tinytorch/ package
#
# A check that fails names the function at fault and prints the input that broke it.

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

# %% [markdown]
# ## float32 everywhere
#
# A tensor is a block of memory plus a shape. The block holds one number per element, and how
# many bytes a number takes is set by its **dtype**. NumPy's default is float64 (8 bytes);
# deep learning's is float32 (4 bytes), and TinyTorch follows deep learning: `DEFAULT_DTYPE`
# above is `np.float32`.
#
# Why it matters, in numbers. A $1000 \times 1000$ matrix has $10^6$ elements: 4 MB in float32,
# 8 MB in float64. A model with 124 million parameters (GPT-2 small) needs 496 MB for its weights
# in float32 and 992 MB in float64 - and training keeps a gradient and two Adam moments per
# weight on top, four copies in all. Most tensor ops are limited by how fast bytes move between
# memory and the CPU, not by arithmetic, so half the bytes is close to twice the speed. float32
# keeps about 7 significant decimal digits, which is plenty for weights that are nudged by noisy
# gradients anyway. (The gradient checker of module 06 does switch to float64: it compares tiny
# differences, where the extra digits matter.)
#
# The trap is that float64 sneaks in quietly. `np.zeros(3)`, `np.array([0.5])`, `np.linspace`
# and `np.sqrt(2.0)` all make float64. Once one float64 operand meets a float32 array, NumPy
# promotes the result to float64, and every op after it runs at double the memory. Python's own
# numbers are safe: NumPy treats a plain `0.5` or `2` as "weak" and keeps the array's dtype,
# so `x * 0.5` stays float32. The checks of this course insist on float32 in, float32 out, and
# they tell you when a float64 constant slipped in.

# %% [markdown]
# ## Given: random numbers and grad mode
#
# The next cell is infrastructure that you do not write, but later modules lean on it.
#
# - **One random generator.** `_rng` is a NumPy `Generator`; `randn`, `rand`, the weight
#   initialisation of `Linear` (module 03), `Dropout` and the data loader's shuffling all draw
#   from it. `manual_seed(0)` replaces it with a freshly seeded one, exactly like
#   `torch.manual_seed`, so that a whole training run is reproducible from one number.
#   `default_generator()` hands the current one to other modules.
# - **Grad mode.** `no_grad` is a context manager (and a decorator) that switches graph
#   recording off while its block runs. Evaluating a model, or updating weights in an optimizer,
#   must not record a graph: the graph would keep every intermediate array alive (memory you do
#   not need) and the weight update itself would become part of the next backward pass.
#   `is_grad_enabled()` reports the switch; `Tensor._make` (below) reads it.
# - `_axis(axis, dim)` lets every reduction accept NumPy's spelling (`axis=1`) and PyTorch's
#   (`dim=1`). `_is_basic_index(idx)` tells an index that makes a *view* (ints, slices, `None`,
#   `...`) from one that makes a *copy* (index arrays, masks): you will meet both in step 6.

# %%
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


# %% [markdown]
# ## The Tensor class: what it holds, and what is given
#
# A `Tensor` is a small Python object around one NumPy array:
#
# | field | what it is |
# |---|---|
# | `data` | the `np.ndarray` with the numbers (float32 unless they are labels or masks) |
# | `grad` | the gradient, a `Tensor` of the same shape, filled in by `backward()` (module 06) |
# | `requires_grad` | whether gradients should flow to this tensor |
# | `_op`, `_parents` | the op that made it (`"mul"`) and its input tensors: one edge of the graph |
# | `_saved` | anything that op's derivative needs later (the axis of a `sum`, the index of a slice) |
#
# Two class attributes look odd and must stay as they are. `__slots__` gives every tensor a fixed
# set of fields instead of a per-object `__dict__`: a training step creates thousands of small
# tensors, and slots make each one smaller and its attribute lookups faster. `__array_priority__`
# makes NumPy step aside: in `ndarray * Tensor`, NumPy would otherwise try to multiply element by
# element and build an array of Tensor objects; with the priority set, Python calls
# `Tensor.__rmul__` and you get a Tensor back.
#
# **`Tensor._make(data, parents, op, saved)` is given.** Every op you write ends with it. It builds
# the result tensor without going through `__init__` (the data is already a correct array, so no
# conversion and no copy), turns NumPy's 0-d scalars back into 0-d arrays, and - only when grad
# mode is on and some parent requires a gradient - records `op`, `parents` and `saved` on the
# result. So
#
#     w = Tensor([1.0, 2.0], requires_grad=True)
#     y = w * 3          # y._op == "mul", y._parents == (w, Tensor(3.0))
#     with no_grad():
#         z = w * 3      # z._op is None: nothing recorded, nothing kept alive
#
# That record is all that module 06 needs: it looks up a derivative rule by the name in `_op`
# and walks `_parents` backwards. This is also where training memory goes: as long as `y` is
# alive, its parents and their saved arrays stay alive too, for every op of the forward pass.
# The `backward()` method is given as well; it imports module 06 and explains what to do if
# that module is not finished yet. The conversions (`numpy()`, `item()`, `float(t)`, `astype`),
# the properties (`shape`, `ndim`, `dtype`, `size`, `is_leaf`), `detach()` (the same data, cut
# from the graph), `requires_grad_()`, `__repr__` and the comparisons are given.
#
# What *you* write are the places marked `# YOUR CODE HERE` (each followed by a
# `raise NotImplementedError()` to replace). The seven markdown cells below teach them group by
# group, in the order they appear in the class.

# %% [markdown]
# ### Step 1 - Creating a tensor: `__init__` and dtypes
#
# `Tensor(data, dtype=None)` accepts a nested list, a Python number, a NumPy array or another
# Tensor (the given first lines unwrap a Tensor to its array). Your job is to pick the dtype:
#
# 1. an explicit `dtype=` wins: `Tensor(x, dtype=np.float64)` (the gradient checker uses this);
# 2. an integer, unsigned or bool NumPy array keeps its dtype: class labels such as
#    `np.array([3, 1, 4])` must stay integers to be used as indices, and masks stay bool;
# 3. everything else becomes float32: lists, Python scalars, and float64 arrays too.
#
# `np.asarray(data, dtype=...)` does each case in one call. Rule 2 asks about `data.dtype.kind`,
# a one-letter code: `"i"` signed integer, `"u"` unsigned, `"b"` bool, `"f"` float.
#
# Worked examples: `Tensor([[1, 2], [3, 4]])` holds float32 `[[1., 2.], [3., 4.]]` with shape
# `(2, 2)` (a list of ints is still data, so it becomes float); `Tensor(3)` is a 0-d tensor, shape
# `()`, value `3.0` - 0-d tensors are tensors too, and a loss is one; `Tensor(np.array([0, 2]))`
# keeps int64.
#
# Systems view: `np.asarray` copies only when it must. A float32 array passed in is *not* copied:
# the tensor shares memory with it. A float64 array is converted, which allocates a new block of
# half the size. Converting a list costs a Python-level walk over every element (tens of
# nanoseconds per number, dozens of times slower than converting an array): build big tensors
# from arrays.

# %% [markdown]
# ### Step 2 - Elementwise arithmetic with broadcasting
#
# `a + b`, `a - b`, `a * b`, `a / b`, `a ** b` and `-a` work element by element. The given first
# line, `other = self._lift(other)`, turns a Python number or an array into a Tensor of *your*
# dtype (so `x * 0.5` stays float32); then one NumPy line computes `data`.
#
# When the shapes differ, NumPy **broadcasts**. Align the shapes on the right; two sizes match if
# they are equal or one of them is 1; a size-1 axis (or a missing one) stretches to the other:
#
# $$ (4, 3) + (3,) \to (4, 3), \qquad (2, 1) \times (1, 5) \to (2, 5), \qquad (2, 3) + (2,) \to \text{error} $$
#
# A worked example, with a row added to every row of a matrix and an outer product:
#
# $$ \begin{bmatrix}1&2&3\\4&5&6\end{bmatrix} + \begin{bmatrix}10&20&30\end{bmatrix}
#    = \begin{bmatrix}11&22&33\\14&25&36\end{bmatrix}, \qquad
#    \begin{bmatrix}1\\2\end{bmatrix} \times \begin{bmatrix}1&2&3\end{bmatrix}
#    = \begin{bmatrix}1&2&3\\2&4&6\end{bmatrix} $$
#
# This is how a layer adds one bias vector of shape `(out,)` to a whole batch `(N, out)`.
#
# Systems view: broadcasting makes **no copy** of the small operand. NumPy reads the same bias
# values again for each row (internally the stretched axis has a *stride* of 0 bytes: moving
# along it does not move in memory). Only the output is allocated: $N \cdot \text{out}$ elements,
# 4 bytes each. The cost of an elementwise op is one FLOP per output element, but it moves 12
# bytes for it (two reads, one write): these ops are limited by memory bandwidth, which is why
# frameworks try to *fuse* chains of them into one pass. Module 06 has to undo the broadcast on
# the way back: the gradient of the bias is the sum of the output gradient over the stretched
# axis.
#
# The reflected methods (`__radd__`, `__rsub__`, ...) are given: `2 - t` is `t.__rsub__(2)`, which
# lifts `2` and calls your `__sub__` with the operands in the right order. At the edges the answers
# are NumPy's (and PyTorch's): $1/0 = \infty$, $0/0 = $ NaN, $0^0 = 1$, $(-2)^3 = -8$, and $(-8)^{1/3}$
# is NaN, since a negative base with a fractional power has no real value. NumPy's operators
# already do all of this; do not add special cases.

# %% [markdown]
# ### Step 3 - Matrix multiply: `matmul` and `@`
#
# For $A$ of shape $(n, k)$ and $B$ of shape $(k, m)$, $C = AB$ has shape $(n, m)$ and
#
# $$ C_{ij} = \sum_{p=1}^{k} A_{ip} B_{pj}. $$
#
# The inner sizes must agree ($k$); they disappear from the result. A worked example:
#
# $$ \begin{bmatrix}1&2&3\\4&5&6\end{bmatrix} \begin{bmatrix}1&0\\0&1\\1&1\end{bmatrix}
#    = \begin{bmatrix}1+0+3 & 0+2+3\\ 4+0+6 & 0+5+6\end{bmatrix}
#    = \begin{bmatrix}4&5\\10&11\end{bmatrix} $$
#
# NumPy's `np.matmul` extends this in two ways you inherit for free. **Batches**: leading axes
# are batch axes and broadcast like arithmetic, so $(B, n, k) @ (B, k, m) \to (B, n, m)$ and
# $(B, n, k) @ (k, m) \to (B, n, m)$. **Vectors**: a 1-D left operand acts as a row, a 1-D right
# operand as a column, and the added axis is removed again, so $(k,) @ (k,)$ is a 0-d dot product.
#
# Systems view: each of the $nm$ outputs is $k$ multiplies and $k$ adds, so a matmul costs
#
# $$ \text{FLOPs} = 2nmk. $$
#
# The worked example is $2 \cdot 2 \cdot 2 \cdot 3 = 24$ FLOPs. For $n = m = k = 1024$ it is
# $2.1 \times 10^9$ FLOPs on only 12 MB of float32 data (three 4 MB matrices): about 170 FLOPs per
# byte, against 1/12 of a FLOP per byte for an elementwise add. That ratio (the *arithmetic
# intensity*) is why matmul is the one op that can run near the processor's peak speed, and why
# neural networks are built around it. The cost grows with the cube of the size: double every
# dimension and a matmul costs 8 times as much. Almost all the time of training an MLP or a
# transformer goes into matmuls.
#
# One performance detail is part of the solution: for a batch times a single matrix,
# $(\ldots, n, k) @ (k, m)$, reshape the batch into rows first - $(\ldots \cdot n, k) @ (k, m)$ -
# so that NumPy makes one large call into its BLAS library instead of one small call per batch
# element. It is the same $2nmk$ FLOPs per batch element, but a large matmul keeps every core and
# cache busy. Transformers apply their weight matrices to $(B, T, d)$ activations exactly like this.

# %% [markdown]
# ### Step 4 - Reductions: `sum`, `mean`, `max`, `min`
#
# A reduction collapses one or more axes. `axis=None` reduces everything to a 0-d tensor; an int
# reduces that axis (negative ints count from the end: `-1` is the last); a tuple reduces several.
# For
#
# $$ x = \begin{bmatrix}1&2&3\\4&5&6\end{bmatrix}: \quad
#    \texttt{x.sum()} = 21, \quad \texttt{x.sum(axis=0)} = [5, 7, 9], \quad
#    \texttt{x.sum(axis=1)} = [6, 15]. $$
#
# `keepdims=True` keeps each reduced axis as size 1: `x.sum(axis=1, keepdims=True)` has shape
# `(2, 1)`, `[[6], [15]]`. That matters for what comes next: broadcasting aligns on the *right*, so
# `x / x.sum(axis=1)` tries $(2, 3) / (2,)$ and fails, while `x / x.sum(axis=1, keepdims=True)`
# divides each row by its own sum: `[[1/6, 2/6, 3/6], [4/15, 5/15, 6/15]]`. Softmax (module 02),
# normalisation layers and per-sample losses are all "reduce with keepdims, then broadcast back".
#
# The given lines before your code accept PyTorch's spelling too (`dim=1, keepdim=True`), and the
# given line after `mean` keeps the dtype right: the mean of a float32 array must stay float32, and
# the mean of a bool mask becomes float32 - `(pred == y).mean()` is an accuracy, not a bool.
# `max` and `min` return values only (like `torch.amax`); `argmax` (given) returns indices.
#
# Systems view: a reduction reads each of its $n$ inputs once and does about $n$ additions, so it
# is memory-bound like elementwise ops. Its numerical side deserves a thought: float32 has a
# 24-bit mantissa, so $16777216 + 1 = 16777216$ in float32. Adding a million values of $0.1$ one
# by one in float32 gives about $100958$, an error of 1%; NumPy's `sum` adds in a pairwise tree
# and gets $100000.01$. Use NumPy's reductions, never a Python loop.

# %% [markdown]
# ### Step 5 - Views: `reshape` and `permute`
#
# An array is a block of memory plus a **shape** and **strides**: the strides say how many bytes to
# step to move one position along each axis. A contiguous float32 array of shape $(2, 3, 4)$ has
# strides $(48, 16, 4)$: the next element along the last axis is 4 bytes away, the next row 16
# bytes, the next matrix 48 bytes.
#
# - `reshape(*shape)` reads the same elements in the same (row-major) order with a new shape:
#   $(2, 3, 4) \to (6, 4)$ or $(4, -1)$, where $-1$ means "whatever is left" (here 6). The number of
#   elements must not change. `view` is another name for it. Shapes may come as separate ints or
#   one tuple; the given first line handles both.
# - `permute(*axes)` reorders the axes: `x.permute(2, 0, 1)` of a $(2, 3, 4)$ tensor has shape
#   $(4, 2, 3)$, and element `[i, j, k]` of the result is element `[j, k, i]` of `x`. NumPy calls it
#   `np.transpose(data, axes)`. The given first lines accept a tuple and turn negative axes into
#   positive ones (module 06 needs to invert the order later, and stores it in `_saved`).
#
# `transpose(dim0, dim1)`, `.T`, `flatten`, `squeeze` and `unsqueeze` are given, built on these
# two: `flatten(1)` turns a batch of images $(N, C, H, W)$ into rows $(N, C \cdot H \cdot W)$ for a
# `Linear` layer; `unsqueeze(0)` adds a batch axis of size 1.
#
# Systems view: both are usually **views** - a new shape and strides over the *same* memory, made
# in constant time whatever the size, no bytes copied. `permute(2, 0, 1)` above only reorders the
# strides to $(4, 48, 16)$. The price comes later: the view is no longer contiguous, so a `reshape`
# of it (or a matmul reading it) must first copy it into a fresh block in the new order, and ops
# that walk memory with big jumps use the CPU caches badly. Because a view shares memory, writing
# into one (`t.data[0] = 5`) changes the other. The optimizers of module 07 rely on this when they
# update weights in place.

# %% [markdown]
# ### Step 6 - Indexing: `__getitem__`
#
# `x[...]` does what NumPy does: `x[1]` (a row), `x[:, 1:3]` (columns 1 and 2), `x[::2]`, `x[..., -1]`,
# `x[None]` (a new axis), `x[[0, 2, 2]]` (rows 0, 2 and 2 again), `x[x > 0]` (the positive values, as
# a 1-D tensor). The given lines unwrap Tensor indices to arrays, so `logits[Tensor(labels)]`
# works; your line indexes the array. For
#
# $$ x = \begin{bmatrix}0&1&2&3\\4&5&6&7\\8&9&10&11\end{bmatrix}: \quad
#    x[1] = [4, 5, 6, 7], \quad x[:, 1{:}3] = \begin{bmatrix}1&2\\5&6\\9&10\end{bmatrix}, \quad
#    x[x > 8] = [9, 10, 11]. $$
#
# Systems view: there are two kinds of index, and they cost differently. **Basic** indexing (ints,
# slices, `None`, `...`) returns a view: constant time, no copy, shared memory. **Advanced** (or
# "fancy") indexing with integer arrays or bool masks returns a copy: it gathers the chosen elements
# into a new block, so it costs time and memory in proportion to the result, and an index may
# repeat an element. Embedding tables (later modules) are fancy indexing: `E[token_ids]` with `E` of
# shape (vocabulary, $d$) and ids of shape $(B, T)$ gives $(B, T, d)$. Repeats are why module 06's
# backward for indexing must *accumulate* (`np.add.at`), not assign: a row used twice gets two
# gradient contributions.

# %% [markdown]
# ### Step 7 - Elementwise math: `exp`, `log`, `sqrt`, `abs`, `clip`
#
# One NumPy call each: `np.exp`, `np.log`, `np.sqrt`, `np.abs`, and `np.clip(data, min, max)`, where
# either bound may be `None` (no bound on that side; with `min > max`, every value becomes `max`).
# `clamp` is PyTorch's name for `clip`.
# `x.clip(min=0)` is ReLU; `grad.clip(-1, 1)` is gradient clipping by value.
#
# Follow NumPy at the edges: $\log 0 = -\infty$, $\log(-1)$ and $\sqrt{-1}$ are NaN (with a warning).
# The edge that will bite you next is overflow: the largest float32 is about
# $3.4 \times 10^{38} = e^{88.7}$, so in float32 `exp(88)` is $1.65 \times 10^{38}$ and `exp(89)`
# is `inf`. Logits of a few hundred are common in a network that is not trained yet, so module 02
# rewrites sigmoid and softmax so that they never exponentiate a large positive number.
#
# Systems view: these are elementwise, so memory-bound like arithmetic, but `exp`, `log` and `tanh`
# are not single instructions: each costs the equivalent of 10-20 FLOPs. A softmax over a large
# vocabulary spends most of its time in `exp`.
#
# The comparisons (`==`, `<`, `>=`, ...) are given: they return bool tensors (masks), which carry no
# gradient. Note that `==` on tensors compares elementwise; that is also why the class sets
# `__hash__` explicitly, so tensors can still be dictionary keys.
#
# **Now write the class.** Replace every `raise NotImplementedError()` (all at once, or one group
# at a time), then run the cell. The `# HINT` lines above some of them are there to help.

# %% nbgrader={"grade": false, "grade_id": "tensor", "locked": false, "schema_version": 3, "solution": true, "task": false}
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
        # HINT: three cases with np.asarray: dtype given -> that dtype; an ndarray or NumPy scalar whose
        # HINT: dtype.kind is in "iub" (int/uint/bool) -> keep it; anything else -> DEFAULT_DTYPE
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
        # HINT: NumPy broadcasts for you: combine the two arrays, self.data and other.data
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
        # HINT: np.matmul(A, B) is right for every case; for A.ndim > 2 with a 2-D B, reshape A to
        # HINT: (-1, k) first, multiply once, and reshape back to (..., n, m)
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
        # HINT: np.sum (np.mean, np.max, np.min) take axis= and keepdims= directly
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
        # HINT: np.transpose takes the new order of the axes
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
        # HINT: NumPy already understands ints, slices, None, Ellipsis, index arrays and masks
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
        # HINT: np.clip accepts None for a missing bound
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


# %% [markdown]
# ## Try it, check it - one group at a time
#
# Each group of methods now gets a **try it** cell (your code on a tiny input, printed) and a
# **check** cell (the group's checks, the same ones `tito module test 01 --task ...` runs). Start
# with step 1: creation and dtypes. Its check cell comes after the given creation functions
# below, because the checks of this group cover them too, along with the given parts of the
# class (properties, comparisons, `repr`, `item`); one of them calls `sum()`, so it passes once
# step 4 is done as well.

# %%
if __name__ == "__main__":
    t = Tensor([[1, 2], [3, 4]])
    print(t, t.shape, t.dtype)                            # ints in a list are data: float32
    print(Tensor(3), Tensor(3).shape)                     # a 0-d tensor
    print(Tensor(np.linspace(0, 1, 3)).dtype)             # float64 array -> float32
    print(Tensor(np.array([2, 0, 1])).dtype)              # labels keep int64
    print(Tensor([1, 2], dtype=np.float64).dtype)         # an explicit dtype wins
    a = np.ones(3, dtype=np.float32)
    print("shares memory with a float32 array:", np.shares_memory(Tensor(a).data, a))

# %% [markdown]
# ### Given: creation functions
#
# PyTorch's creation functions, in one cell: `tensor(data)` (the same as `Tensor(data)`), `zeros`,
# `ones`, `full`, `zeros_like`, `ones_like`, `arange`, and two random ones: `randn` (standard normal,
# mean 0 and variance 1) and `rand` (uniform in $[0, 1)$). Shapes may be given as separate ints,
# `zeros(2, 3)`, or as one tuple, `zeros((2, 3))`; `_shape` unifies the two.
#
# Every one of them creates float32 directly. That is the point of having them: `np.zeros(2, 3)`
# would give float64, and NumPy's `standard_normal` draws in float64 unless it is asked for float32
# (`dtype=np.float32`, which is also faster to generate). The random ones draw from the module's
# generator, so `manual_seed(0)` makes them repeat, and they accept their own `generator=` for code
# that must not disturb the global stream. The memory is allocated once, at the final size and
# dtype; there is no float64 intermediate to throw away.

# %%
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


# %%
if __name__ == "__main__":
    print(zeros(2, 3))
    manual_seed(0)
    first = randn(2, 2)
    manual_seed(0)
    print("same seed, same numbers:", np.array_equal(first.data, randn(2, 2).data))
    w = randn(1000, 1000)
    print(f"a 1000 x 1000 float32 tensor: {w.data.nbytes / 1e6:.0f} MB; "
          f"as float64: {w.data.astype(np.float64).nbytes / 1e6:.0f} MB")
    print(f"randn: mean {w.data.mean():+.4f}, std {w.data.std():.4f}")

# %% nbgrader={"grade": true, "grade_id": "check-tensor-init", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("01", "Tensor.__init__")

# %% [markdown]
# ### Step 2: arithmetic with broadcasting
#
# The try-it cell below broadcasts a row over a matrix and builds an outer product (the examples of
# step 2), then shows the graph record that `_make` keeps - and does not keep under `no_grad`.
# Arithmetic has three check cells: the five binary operators (with broadcasting, and with numbers
# and arrays on either side), negation, and arithmetic on integer label tensors.

# %%
if __name__ == "__main__":
    x = Tensor([[1, 2, 3], [4, 5, 6]])
    print(x + Tensor([10, 20, 30]))                       # (2, 3) + (3,) -> (2, 3)
    print(Tensor([[1], [2]]) * Tensor([[1, 2, 3]]))       # (2, 1) * (1, 3) -> (2, 3)
    print(2 - x, -x, (x ** 2).dtype)                     # numbers on either side; float32 stays
    print(Tensor(np.array([0, 1, 2])) + 1)                # labels + 1 stay int64
    w = Tensor([1.0, 2.0], requires_grad=True)
    y = w * 3
    print("recorded:", y._op, "parents:", y._parents)
    with no_grad():
        z = w * 3
    print("under no_grad:", z._op, z._parents, z.requires_grad)

# %% nbgrader={"grade": true, "grade_id": "check-tensor-binary-ops", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("01", "binary_ops")

# %% nbgrader={"grade": true, "grade_id": "check-tensor-neg", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("01", "Tensor.__neg__")

# %% nbgrader={"grade": true, "grade_id": "check-tensor-int-arithmetic", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("01", "int_tensor_arithmetic")

# %% [markdown]
# ### Step 3: matrix multiply
#
# The worked example of step 3, the shapes of a batched product, and a measurement: the FLOPs of a
# $256 \times 256$ matmul ($2nmk = 33.5$ million) divided by the time it took. NumPy's BLAS
# reaches tens of GFLOP/s per core on a modern CPU; the number you see depends on your machine
# and on how busy it is. Try $n = 512$: eight times the FLOPs, so about eight times the time.

# %%
if __name__ == "__main__":
    import time

    A = Tensor([[1, 2, 3], [4, 5, 6]])
    B = Tensor([[1, 0], [0, 1], [1, 1]])
    print(A @ B)                                          # [[4, 5], [10, 11]]
    print((randn(8, 4, 3) @ randn(3, 5)).shape)           # (8, 4, 3) @ (3, 5) -> (8, 4, 5)
    print((Tensor([1, 2, 3]) @ Tensor([4, 5, 6])).shape)  # vector . vector -> 0-d
    n = 256
    P, Q = randn(n, n), randn(n, n)
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        P @ Q
        runs.append(time.perf_counter() - t0)
    flops = 2 * n * n * n
    print(f"{n}x{n} @ {n}x{n}: {flops / 1e6:.1f} MFLOP in {min(runs) * 1e3:.2f} ms "
          f"= {flops / min(runs) / 1e9:.1f} GFLOP/s")

# %% nbgrader={"grade": true, "grade_id": "check-tensor-matmul", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("01", "matmul")

# %% [markdown]
# ### Step 4: reductions
#
# The sums of the worked example, `keepdims` making a row-normalisation broadcast, PyTorch's
# spelling, the accuracy of a bool mask - and the float32 summation example: a million times
# $0.1$, added one by one (`np.cumsum` keeps the running total) against your `sum`.

# %%
if __name__ == "__main__":
    x = Tensor([[1, 2, 3], [4, 5, 6]])
    print(x.sum(), x.sum(axis=0), x.sum(axis=1))
    print(x.sum(axis=1, keepdims=True).shape, x / x.sum(axis=1, keepdims=True))
    print(x.mean(dim=0, keepdim=True), x.max(), x.min(axis=-1))
    print("accuracy of a mask:", (Tensor([1, 2, 3, 4]) > 1.5).mean())
    tenths = np.full(10**6, 0.1, dtype=np.float32)
    print(f"one by one: {np.cumsum(tenths)[-1]:.2f}   your sum: {Tensor(tenths).sum().item():.2f}")

# %% nbgrader={"grade": true, "grade_id": "check-tensor-reductions", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("01", "reductions")

# %% nbgrader={"grade": true, "grade_id": "check-tensor-mean-of-mask", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("01", "mean_of_mask")

# %% [markdown]
# ### Step 5: views
#
# First `reshape`: the result shares memory with the original, so a write through one shows in the
# other. Then `permute`: look at the strides (bytes per step along each axis) before and after, and
# at what happens when a non-contiguous view is reshaped.

# %%
if __name__ == "__main__":
    t = arange(6)
    v = t.reshape(2, 3)
    print(v, v.reshape((3, -1)).shape, v.flatten().shape, v.unsqueeze(0).shape)
    print("reshape shares memory:", np.shares_memory(t.data, v.data))
    t.data[0] = 100.0                                     # write through the original ...
    print("the view sees it:", v.data[0, 0])              # ... and the view changed too

# %% nbgrader={"grade": true, "grade_id": "check-tensor-reshape", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("01", "Tensor.reshape")

# %%
if __name__ == "__main__":
    x = zeros(2, 3, 4)
    p = x.permute(2, 0, 1)
    print("shape", x.shape, "strides", x.data.strides, "->", "shape", p.shape, "strides", p.data.strides)
    print("permute is a view:", np.shares_memory(x.data, p.data),
          "| contiguous:", p.data.flags["C_CONTIGUOUS"])
    print("reshaping it copies:", not np.shares_memory(x.data, p.reshape(-1).data))
    print(Tensor([[1, 2, 3], [4, 5, 6]]).T)

# %% nbgrader={"grade": true, "grade_id": "check-tensor-permute", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("01", "Tensor.permute")

# %% [markdown]
# ### Step 6: indexing
#
# The examples of step 6, and for each index whether it is *basic* (`_is_basic_index`, a view that
# shares memory) or *fancy* (a copy).

# %%
if __name__ == "__main__":
    x = arange(12).reshape(3, 4)
    for idx in (1, (slice(None), slice(1, 3)), [0, 2, 2], x.data > 8):
        r = x[idx]
        print(f"shape {r.shape}  basic: {_is_basic_index(idx)}  view: {np.shares_memory(x.data, r.data)}")
        print(r)
    print(x[Tensor(np.array([2, 0])), -1])                # a Tensor of labels as the index

# %% nbgrader={"grade": true, "grade_id": "check-tensor-getitem", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("01", "getitem")

# %% [markdown]
# ### Step 7: elementwise math
#
# The float32 edges of step 7: `exp(88)` is finite, `exp(89)` overflows to `inf`; $\log 0 = -\infty$.
# (`np.errstate` silences NumPy's warnings about them, here only.) Then `clip`, with one or two bounds.

# %%
if __name__ == "__main__":
    with np.errstate(over="ignore", divide="ignore"):
        print(Tensor([0.0, 1.0, 88.0, 89.0]).exp())
        print(Tensor([0.0, 1.0, np.e]).log())
    print(Tensor([4.0, 9.0]).sqrt(), Tensor([-1.5, 2.0]).abs())

# %% nbgrader={"grade": true, "grade_id": "check-tensor-elementwise", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("01", "elementwise_math")

# %% nbgrader={"grade": true, "grade_id": "check-tensor-log-exp-edges", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("01", "log_exp_edge_values")

# %%
if __name__ == "__main__":
    x = Tensor([-2.0, -0.5, 0.5, 2.0])
    print(x.clip(-1, 1), x.clip(min=0), x.clamp(max=0))

# %% nbgrader={"grade": true, "grade_id": "check-tensor-clip", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("01", "clip")

# %% [markdown]
# ## Wrap-up
#
# You have written the forward half of a tensor library. Every op you wrote is one NumPy call plus a
# decision about shapes and dtypes, and that is what most of a framework's tensor code is. The
# systems lessons to carry forward:
#
# - **Bytes first.** float32 halves memory and, for memory-bound ops, time. Elementwise ops and
#   reductions move about 4-12 bytes per FLOP; a matmul does hundreds of FLOPs per byte. Count
#   $2nmk$ for every matmul and you can predict where a model's time goes.
# - **Views are free, copies are not.** Broadcasting, `reshape`, `permute` and basic indexing make
#   no copy; fancy indexing and reshaping a non-contiguous view do. Views share memory, so in-place
#   writes show through.
# - **keepdims, then broadcast.** Reduce an axis, keep it as size 1, and combine the result with the
#   original: softmax, normalisation and per-sample losses are all built this way.
# - **float32 has edges.** `exp` overflows above 88.7 and long sums lose digits: the next module
#   makes sigmoid and softmax stable against exactly this.
#
# Next, module 02 (activations) writes the nonlinearities that go between layers, with your
# `Tensor` as their input and output. Module 06 then comes back to this file's `_make` records and
# gives every op you wrote its derivative. The last cell runs all of this module's checks; when it
# passes, run `tito module complete 01` to export your `Tensor` into your `tinytorch` package.

# %% nbgrader={"grade": true, "grade_id": "check-tensor-all", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("01")
