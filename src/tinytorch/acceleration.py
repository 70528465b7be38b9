"""Module 18: making NumPy code fast, measured on your own framework.

    pairwise_sq_distances(a, b)     (n, d), (m, d) -> (n, m): |a|^2 - 2 a b^T + |b|^2, one matmul
    conv2d_im2col(x, w, b, padding) (N, C, H, W) -> (N, O, Ho, Wo): NHWC patches, one matmul
    gelu_fused(x)                   tanh-GELU as one graph node, two buffers forward and backward
    split_batch(n, parts)           contiguous shards whose sizes differ by at most one
    replicate(model)                a copy whose Parameters SHARE the model's arrays
    DataParallel(model, threads)    forward + backward of each shard in its own thread;
                                    grad = sum_k (n_k / n) grad_k into the model's .grad
    parallel_step(model, loss_fn, optimizer, x, y, threads=2)   zero_grad, the above, step
    blas_threads(n)                 a context that sets OpenBLAS's thread count (ctypes)

Data parallelism is exact: for a loss that is a mean over the batch,
    L = sum_k (n_k / n) L_k   so   dL/dp = sum_k (n_k / n) dL_k/dp,
and the threads help because NumPy releases the GIL inside its kernels.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import glob
import os
import time
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinytorch.autograd import register_backward
from tinytorch.tensor import Tensor, no_grad

GELU_C = float(np.sqrt(2.0 / np.pi))  # a Python float: float32 arrays stay float32


def time_ms(fn, repeats: int = 5, number: int = 1) -> float:
    """Best of `repeats` timings of `number` calls of fn(), in ms per call (after one warm-up call).
    The best, not the mean: other processes only ever make a run slower."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best * 1e3


def pairwise_sq_distances_loops(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The 'before': two Python loops, one small NumPy call per pair."""
    out = np.empty((len(a), len(b)), dtype=a.dtype)
    for i in range(len(a)):
        for j in range(len(b)):
            diff = a[i] - b[j]
            out[i, j] = diff @ diff
    return out


def pairwise_sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances, (n, d) x (m, d) -> (n, m), without a Python loop."""
    ### BEGIN SOLUTION
    aa = np.einsum("ij,ij->i", a, a)[:, None]  # (n, 1)
    bb = np.einsum("ij,ij->i", b, b)[None, :]  # (1, m)
    d = a @ b.T  # (n, m): the one matmul
    d *= -2
    d += aa
    d += bb
    np.maximum(d, 0, out=d)  # rounding can make |a - a|^2 slightly negative
    return d
    ### END SOLUTION


def conv2d_loops(x: np.ndarray, w: np.ndarray, b: np.ndarray, padding: int = 0) -> np.ndarray:
    """The 'before': stride-1 convolution with a Python loop over every output pixel."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho, wo = h + 2 * padding - kh + 1, wd + 2 * padding - kw + 1
    out = np.empty((n, o, ho, wo), dtype=x.dtype)
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i:i + kh, j:j + kw]  # (N, C, kh, kw)
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out


def conv2d_im2col(x: np.ndarray, w: np.ndarray, b: np.ndarray, padding: int = 0) -> np.ndarray:
    """Stride-1 convolution as ONE matmul: (N, C, H, W), (O, C, kh, kw), (O,) -> (N, O, Ho, Wo)."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    ### BEGIN SOLUTION
    xl = x.transpose(0, 2, 3, 1)  # (N, H, W, C) view: channels last
    if padding:
        xp = np.zeros((n, h + 2 * padding, wd + 2 * padding, c), dtype=x.dtype)
        xp[:, padding:padding + h, padding:padding + wd] = xl
    else:
        xp = xl
    win = sliding_window_view(xp, (kh, kw), axis=(1, 2))  # (N, Ho, Wo, C, kh, kw), no copy
    ho, wo = win.shape[1:3]
    cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(n * ho * wo, kh * kw * c)  # the one copy
    wmat = w.transpose(2, 3, 1, 0).reshape(kh * kw * c, o)  # rows in the same (i, j, c) order
    y = cols @ wmat  # (N Ho Wo, O)
    y += b
    return y.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)
    ### END SOLUTION


def gelu_composed(x: Tensor) -> Tensor:
    """The 'before': tanh-GELU from primitive Tensor ops (each one a graph node and an array)."""
    inner = (x + 0.044715 * x * x * x) * GELU_C
    e = (inner * 2.0).exp()
    t = (e - 1.0) / (e + 1.0)  # tanh from exp
    return 0.5 * x * (t + 1.0)


def gelu_fused(x: Tensor) -> Tensor:
    """tanh-GELU as one node: y = 0.5 x (1 + tanh(c (x + 0.044715 x^3))), two buffers."""
    v = x.data
    ### BEGIN SOLUTION
    t = np.multiply(v, v)  # buffer 1: x^2 ...
    t *= 0.044715
    t += 1.0
    t *= v  # x + 0.044715 x^3
    t *= GELU_C
    np.tanh(t, out=t)  # ... becomes tanh(u), saved for the backward
    y = np.add(t, 1.0)  # buffer 2: the output
    y *= v
    y *= 0.5
    ### END SOLUTION
    return Tensor._make(y, (x,), "gelu_fused", t)


@register_backward("gelu_fused")
def gelu_fused_backward(g, out):
    """dy/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 0.044715 x^2), with t the saved tanh."""
    v, t = out._parents[0].data, out._saved
    ### BEGIN SOLUTION
    d = np.multiply(v, v)  # buffer 1: du/dx = c (1 + 0.134145 x^2)
    d *= 3 * 0.044715
    d += 1.0
    d *= GELU_C
    s = np.multiply(t, t)  # buffer 2: 1 - t^2
    np.subtract(1.0, s, out=s)
    d *= s
    d *= v
    np.add(t, 1.0, out=s)  # buffer 2 again: 1 + t
    d += s
    d *= 0.5
    d *= g
    return (d,)
    ### END SOLUTION


def _openblas():
    """(get, set) for the OpenBLAS that NumPy loaded, through ctypes; None if not found."""
    paths = []
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line})
    except OSError:
        pass
    np_dir = os.path.dirname(np.__file__)
    paths += glob.glob(os.path.join(np_dir, "..", "numpy.libs", "*openblas*")) + \
        glob.glob(os.path.join(np_dir, ".dylibs", "*openblas*"))
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for suffix in ("64_", "", "_64"):
            for prefix in ("scipy_openblas", "openblas"):
                get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                set_ = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                if get is not None and set_ is not None:
                    get.restype = ctypes.c_int
                    return get, set_
    return None


_BLAS = _openblas()


def blas_thread_count() -> int | None:
    return None if _BLAS is None else int(_BLAS[0]())


@contextlib.contextmanager
def blas_threads(n: int | None):
    """Run the block with OpenBLAS at n threads (None: leave it). Without OpenBLAS: no-op
    (then set OPENBLAS_NUM_THREADS / OMP_NUM_THREADS before NumPy is imported)."""
    if n is None or _BLAS is None:
        yield
        return
    before = int(_BLAS[0]())
    _BLAS[1](int(n))
    try:
        yield
    finally:
        _BLAS[1](before)


def split_batch(n: int, parts: int) -> list[slice]:
    """min(parts, n) contiguous slices covering range(n) in order, sizes differing by at most 1."""
    ### BEGIN SOLUTION
    parts = max(1, min(parts, n))
    base, extra = divmod(n, parts)
    shards, start = [], 0
    for k in range(parts):
        size = base + (1 if k < extra else 0)
        shards.append(slice(start, start + size))
        start += size
    return shards
    ### END SOLUTION


def replicate(model):
    """A copy of `model` with NEW Parameter objects that share the model's arrays (no copy of any
    weight; a tied weight stays tied), so that its backward fills its own .grad."""
    ### BEGIN SOLUTION
    memo = {id(p.data): p.data for p in model.parameters()}  # deepcopy returns these as they are
    rep = copy.deepcopy(model, memo)
    for p in rep.parameters():
        p.grad = None
    return rep
    ### END SOLUTION


def _rows(a):
    return a.data if isinstance(a, Tensor) else np.asarray(a)


class DataParallel:
    """Data-parallel training across CPU threads: each shard of the batch runs forward and backward
    in its own thread on its own replica (sharing the weights), then the gradients are averaged,
    weighted by shard size, into the model's .grad."""

    def __init__(self, model, threads: int = 2, blas: int | None = 1):
        self.threads, self.blas = int(threads), blas
        ### BEGIN SOLUTION
        self.params = model.parameters()
        self.replicas = [replicate(model) for _ in range(self.threads)]
        self.replica_params = [rep.parameters() for rep in self.replicas]
        self.pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None
        ### END SOLUTION

    def _map(self, fn, items):
        items = list(items)
        if self.pool is None or len(items) == 1:
            return [fn(i) for i in items]
        return list(self.pool.map(fn, items))

    def forward_backward(self, loss_fn, x, y) -> float:
        """Accumulate the gradient of loss_fn(model(x), y) (a mean over the batch) into the
        model's .grad, as loss.backward() would; return the loss."""
        xs, ys = _rows(x), _rows(y)
        n = len(xs)
        ### BEGIN SOLUTION
        shards = split_batch(n, self.threads)

        def forward(k):
            for rp, p in zip(self.replica_params[k], self.params):
                rp.data, rp.grad = p.data, None  # the current weights (an optimizer may rebind .data)
            s = shards[k]
            return loss_fn(self.replicas[k](Tensor(xs[s])), Tensor(ys[s]))

        with blas_threads(self.blas):
            losses = self._map(forward, range(len(shards)))
            with no_grad():  # ONE switch of the global grad mode, not one per thread (see lesson)
                self._map(lambda loss: loss.backward(), losses)
        weights = [(s.stop - s.start) / n for s in shards]
        for i, p in enumerate(self.params):
            total = None
            for w, rps in zip(weights, self.replica_params):
                g = rps[i].grad
                if g is not None:
                    total = g.data * w if total is None else total + g.data * w
            if total is None:
                continue
            total = total.astype(p.data.dtype, copy=False)
            if p.grad is None:
                p.grad = Tensor(total, dtype=p.data.dtype)
            else:
                p.grad.data = p.grad.data + total
        return float(sum(w * loss.item() for w, loss in zip(weights, losses)))
        ### END SOLUTION

    def step(self, loss_fn, optimizer, x, y) -> float:
        optimizer.zero_grad()
        loss = self.forward_backward(loss_fn, x, y)
        optimizer.step()
        return loss


_PARALLEL: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def parallel_step(model, loss_fn, optimizer, x, y, threads: int = 2) -> float:
    """One data-parallel training step; the DataParallel is built on the first call per model."""
    dp = _PARALLEL.get(model)
    if dp is None or dp.threads != threads:
        dp = _PARALLEL[model] = DataParallel(model, threads)
    return dp.step(loss_fn, optimizer, x, y)
