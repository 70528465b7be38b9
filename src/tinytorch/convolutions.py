# %% [markdown]
# # Module 09 - Convolutions
#
# A convolution slides one small filter over the whole image, so a feature learnt in one corner is
# recognised everywhere, with a handful of weights. The naive version is seven nested loops and
# takes seconds per batch; this module turns it into ONE matrix multiply (im2col), and its backward
# pass into a loop over the k x k kernel offsets only - never over pixels.

# %%
"""Module 09: Conv2d, MaxPool2d, AvgPool2d, BatchNorm2d, AdaptiveAvgPool2d.

Shapes follow PyTorch: images are (N, C, H, W), conv weights (C_out, C_in, kh, kw), and

    H_out = (H + 2 padding - kh) // stride + 1          (the same for W)

Convolution (really cross-correlation, as in every framework: the kernel is NOT flipped):

    out[n, o, y, x] = b[o] + sum_{c, i, j} w[o, c, i, j] * xpad[n, c, s y + i, s x + j]

im2col. Copy every receptive field into one row of a matrix `cols` (N Ho Wo, kh kw C); then the
whole convolution is `cols @ W` with W (kh kw C, C_out). Backward, with g = dL/dout as (N Ho Wo, C_out):

    dW    = cols^T @ g                           one big matmul
    db    = sum of g over rows
    dcols = g @ W^T, and every entry of dcols is added back to the pixel it was copied from
            (col2im): one strided slice-add per kernel offset (i, j)

Memory layout. The arithmetic runs channels-last, (N, H, W, C): each receptive field is then
kh*kw runs of C contiguous numbers. The arrays handed back are NCHW *views* of channels-last
memory (what PyTorch calls `channels_last`): the public shapes are exactly PyTorch's, and the next
conv/pool/batchnorm gets its channels-last view back for free (`.transpose(0, 2, 3, 1)` of such a
view is contiguous). Only Flatten, at the end of the conv stack, copies into NCHW order.

Pooling takes the max (or mean) of kh*kw strided views - for the usual 2x2/stride 2 pool that is
four views - and routes the gradient back through an equality mask (the first maximum of a window
wins, as in PyTorch).

BatchNorm2d normalises every channel over (N, H, W):

    xhat = (x - mean) / sqrt(var + eps),   y = gamma xhat + beta        (biased var)
    dx   = gamma / (M sqrt(var + eps)) (M g - sum g - xhat sum(g xhat)),   M = N H W

In eval mode it uses the running statistics (updated with `momentum` in training; the running
variance is the unbiased one, as in PyTorch).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinytorch.autograd import register_backward
from tinytorch.layers import Module, Parameter
from tinytorch.tensor import Tensor, default_generator


# ---------------------------------------------------------------------------------------------
# Helpers (given)
# ---------------------------------------------------------------------------------------------
def _pair(v) -> tuple[int, int]:
    """3 -> (3, 3); (3, 5) -> (3, 5)."""
    if isinstance(v, (tuple, list)):
        a, b = v
        return int(a), int(b)
    return int(v), int(v)


def _out_size(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


def _channels_last(a: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, H, W, C): a view (contiguous when `a` came from a conv or pool)."""
    return a.transpose(0, 2, 3, 1)


def _channels_first(a: np.ndarray) -> np.ndarray:
    """(N, H, W, C) -> (N, C, H, W): a view, the NCHW face of channels-last memory."""
    return a.transpose(0, 3, 1, 2)


def _pad(xl: np.ndarray, ph: int, pw: int, value: float = 0.0) -> np.ndarray:
    """Pad a channels-last batch (N, H, W, C) spatially; no copy when there is no padding."""
    if ph == 0 and pw == 0:
        return xl
    n, h, w, c = xl.shape
    out = np.full((n, h + 2 * ph, w + 2 * pw, c), value, dtype=xl.dtype)
    out[:, ph:ph + h, pw:pw + w] = xl
    return out


def _offset(a: np.ndarray, i: int, j: int, sh: int, sw: int, ho: int, wo: int) -> np.ndarray:
    """The (N, Ho, Wo, C) strided view of `a` (N, H, W, C) seen by kernel offset (i, j):
    element [n, y, x] is a[n, sh*y + i, sw*x + j]."""
    return a[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]


def _colsum(a: np.ndarray) -> np.ndarray:
    """Column sums of a tall (M, C) matrix as ones(M) @ a: a BLAS matrix-vector product, 10-20x
    faster than a.sum(axis=0) for M ~ 10^5 rows of a few dozen channels."""
    return np.ones(a.shape[0], dtype=a.dtype) @ a


def _check_input(x: Tensor, name: str, channels: int | None = None) -> None:
    if x.ndim != 4:
        raise ValueError(f"{name} expects a batch (N, C, H, W), got shape {x.shape}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} expects {channels} input channels, got shape {x.shape}")


# ---------------------------------------------------------------------------------------------
# Convolution: im2col + one matmul; col2im as one slice-add per kernel offset
# ---------------------------------------------------------------------------------------------
def im2col(xp: np.ndarray, kh: int, kw: int, sh: int, sw: int) -> np.ndarray:
    """Padded channels-last images (N, Hp, Wp, C) -> patch matrix (N*Ho*Wo, kh*kw*C).

    Row (n, y, x) holds the receptive field of output pixel (y, x) of image n, ordered (i, j, c).
    """
    n, hp, wp, c = xp.shape
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    # HINT: sliding_window_view over axes (1, 2) gives (N, Hp-kh+1, Wp-kw+1, C, kh, kw) without
    # HINT: copying; keep every stride-th window, move C last, and reshape (this is the one copy).
    ### BEGIN SOLUTION
    win = sliding_window_view(xp, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]  # (N, Ho, Wo, C, kh, kw)
    cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(n * ho * wo, kh * kw * c)  # (N Ho Wo, kh kw C)
    ### END SOLUTION
    return cols


def col2im(dcols: np.ndarray, shape: tuple, sh: int, sw: int) -> np.ndarray:
    """The adjoint of im2col: add every patch-matrix entry back onto the pixel it was copied from.

    dcols: (N, Ho, Wo, kh, kw, C), the gradient of the patch matrix with its rows unfolded to
    (N, Ho, Wo) and its columns to (kh, kw, C) - in any memory layout. Returns the padded images
    (N, Hp, Wp, C) = `shape`; overlapping windows add up. A loop over the kh*kw offsets, no np.add.at.
    """
    n, ho, wo, kh, kw, c = dcols.shape
    ### BEGIN SOLUTION
    dxp = np.zeros(shape, dtype=dcols.dtype)  # (N, Hp, Wp, C)
    for i in range(kh):
        for j in range(kw):
            _offset(dxp, i, j, sh, sw, ho, wo)[...] += dcols[:, :, :, i, j]  # (N, Ho, Wo, C)
    ### END SOLUTION
    return dxp


def _patches_one_channel(xp: np.ndarray, kh: int, kw: int, sh: int, sw: int) -> np.ndarray:
    """Fast path for one input channel (the first layer on grey images): the TRANSPOSED patch
    matrix (kh*kw, N*Ho*Wo), built as kh*kw contiguous copies of strided views."""
    n, hp, wp, _ = xp.shape
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    cols_t = np.empty((kh * kw, n, ho, wo), dtype=xp.dtype)  # (kh kw, N, Ho, Wo)
    for i in range(kh):
        for j in range(kw):
            cols_t[i * kw + j] = _offset(xp, i, j, sh, sw, ho, wo)[..., 0]
    return cols_t.reshape(kh * kw, n * ho * wo)


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0) -> Tensor:
    """2-D cross-correlation: x (N, C, H, W), weight (O, C, kh, kw), bias (O,) -> (N, O, Ho, Wo)."""
    _check_input(x, "conv2d")
    n, c, h, w = x.shape
    o, cw, kh, kw = weight.shape
    if cw != c:
        raise ValueError(f"conv2d: input has {c} channels, weight expects {cw} (weight {weight.shape})")
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    ho, wo = _out_size(h, kh, sh, ph), _out_size(w, kw, sw, pw)
    if ho < 1 or wo < 1:
        raise ValueError(f"conv2d: kernel {kh}x{kw} is larger than the padded input {x.shape}")
    ### BEGIN SOLUTION
    xp = _pad(_channels_last(x.data), ph, pw)  # (N, Hp, Wp, C)
    wmat = weight.data.transpose(2, 3, 1, 0).reshape(kh * kw * c, o)  # (kh kw C, O), rows (i, j, c)
    if c == 1:  # first layer on grey images: transposed patches, kh*kw contiguous copies
        cols = _patches_one_channel(xp, kh, kw, sh, sw)  # (kh kw, N Ho Wo)
        y = cols.T @ wmat  # (N Ho Wo, O)
    else:
        cols = im2col(xp, kh, kw, sh, sw)  # (N Ho Wo, kh kw C)
        y = cols @ wmat  # (N Ho Wo, O)
    if bias is not None:
        y += bias.data
    data = _channels_first(y.reshape(n, ho, wo, o))  # (N, O, Ho, Wo), channels-last memory
    ### END SOLUTION
    parents = (x, weight) if bias is None else (x, weight, bias)
    return Tensor._make(data, parents, "conv2d", (cols, wmat, (sh, sw), (ph, pw)))


@register_backward("conv2d")
def conv2d_backward(g, out):
    """dW = cols^T g, db = sum g, dx = col2im(g W^T) (skipped when x needs no gradient)."""
    x, weight = out._parents[:2]
    cols, wmat, (sh, sw), (ph, pw) = out._saved
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    ### BEGIN SOLUTION
    gm = np.ascontiguousarray(_channels_last(g)).reshape(-1, o)  # (N Ho Wo, O)
    # cols is (kh kw C, N Ho Wo) on the one-channel path, (N Ho Wo, kh kw C) otherwise
    dwmat = cols @ gm if c == 1 else cols.T @ gm  # (kh kw C, O)
    dw = dwmat.reshape(kh, kw, c, o).transpose(3, 2, 0, 1)  # (O, C, kh, kw)
    dx = None
    if x.requires_grad:  # dcols = g W^T, computed offset by offset so each (i, j) slab is contiguous
        ho, wo = out.shape[2:]
        w_offsets = wmat.reshape(kh * kw, c, o).transpose(0, 2, 1)  # (kh kw, O, C)
        dcols = np.matmul(gm, w_offsets)  # (kh kw, N Ho Wo, C): one batched matmul
        dcols = dcols.reshape(kh, kw, n, ho, wo, c).transpose(2, 3, 4, 0, 1, 5)  # (N, Ho, Wo, kh, kw, C)
        dxp = col2im(dcols, (n, h + 2 * ph, w + 2 * pw, c), sh, sw)  # (N, Hp, Wp, C)
        dx = _channels_first(dxp[:, ph:ph + h, pw:pw + w])  # (N, C, H, W)
    grads = (dx, dw)
    if len(out._parents) == 3:
        grads += (_colsum(gm),)  # (O,)  sum of g over (N, Ho, Wo)
    return grads
    ### END SOLUTION


# ---------------------------------------------------------------------------------------------
# Pooling: kh*kw strided views
# ---------------------------------------------------------------------------------------------
def max_pool2d(x: Tensor, kernel_size, stride=None, padding=0) -> Tensor:
    """The largest value of every kh x kw window (windows `stride` apart; default stride = kernel)."""
    _check_input(x, "max_pool2d")
    n, c, h, w = x.shape
    kh, kw = _pair(kernel_size)
    (sh, sw), (ph, pw) = _pair(kernel_size if stride is None else stride), _pair(padding)
    ho, wo = _out_size(h, kh, sh, ph), _out_size(w, kw, sw, pw)
    ### BEGIN SOLUTION
    xp = _pad(_channels_last(x.data), ph, pw, value=-np.inf)  # (N, Hp, Wp, C)
    best = _offset(xp, 0, 0, sh, sw, ho, wo).copy()  # (N, Ho, Wo, C)
    for i in range(kh):
        for j in range(kw):
            if i or j:
                np.maximum(best, _offset(xp, i, j, sh, sw, ho, wo), out=best)
    data = _channels_first(best)  # (N, C, Ho, Wo)
    ### END SOLUTION
    return Tensor._make(data, (x,), "max_pool2d", (xp, (kh, kw), (sh, sw), (ph, pw)))


@register_backward("max_pool2d")
def max_pool2d_backward(g, out):
    """Each output's gradient goes to the FIRST input of its window equal to the maximum."""
    (x,) = out._parents
    xp, (kh, kw), (sh, sw), (ph, pw) = out._saved
    n, c, h, w = x.shape
    ho, wo = out.shape[2:]
    ### BEGIN SOLUTION
    gl, best = _channels_last(g), _channels_last(out.data)  # (N, Ho, Wo, C)
    disjoint = sh >= kh and sw >= kw  # every input pixel is in at most one window
    covered = disjoint and sh == kh and sw == kw and ph == pw == 0 and h == kh * ho and w == kw * wo
    dxp = (np.empty if covered else np.zeros)(xp.shape, dtype=g.dtype)  # (N, Hp, Wp, C)
    free = np.ones(best.shape, dtype=bool)  # windows whose maximum is not yet claimed
    for i in range(kh):
        for j in range(kw):
            win = _offset(xp, i, j, sh, sw, ho, wo) == best  # (N, Ho, Wo, C)
            win &= free
            if i < kh - 1 or j < kw - 1:  # (the last offset has no one left to tell)
                free ^= win  # claimed: win is a subset of free, so this clears exactly those
            target = _offset(dxp, i, j, sh, sw, ho, wo)
            if disjoint:
                np.multiply(gl, win, out=target)
            else:
                target += gl * win
    dx = _channels_first(dxp[:, ph:ph + h, pw:pw + w])  # (N, C, H, W)
    return (dx,)
    ### END SOLUTION


def avg_pool2d(x: Tensor, kernel_size, stride=None, padding=0) -> Tensor:
    """The mean of every kh x kw window (zero padding counts, as PyTorch's default)."""
    _check_input(x, "avg_pool2d")
    n, c, h, w = x.shape
    kh, kw = _pair(kernel_size)
    (sh, sw), (ph, pw) = _pair(kernel_size if stride is None else stride), _pair(padding)
    ho, wo = _out_size(h, kh, sh, ph), _out_size(w, kw, sw, pw)
    ### BEGIN SOLUTION
    xp = _pad(_channels_last(x.data), ph, pw)  # (N, Hp, Wp, C)
    total = _offset(xp, 0, 0, sh, sw, ho, wo).copy()  # (N, Ho, Wo, C)
    for i in range(kh):
        for j in range(kw):
            if i or j:
                total += _offset(xp, i, j, sh, sw, ho, wo)
    total *= 1.0 / (kh * kw)
    data = _channels_first(total)  # (N, C, Ho, Wo)
    ### END SOLUTION
    return Tensor._make(data, (x,), "avg_pool2d", ((kh, kw), (sh, sw), (ph, pw)))


@register_backward("avg_pool2d")
def avg_pool2d_backward(g, out):
    """Every input of a window gets 1/(kh kw) of the window's gradient."""
    (x,) = out._parents
    (kh, kw), (sh, sw), (ph, pw) = out._saved
    n, c, h, w = x.shape
    ho, wo = out.shape[2:]
    ### BEGIN SOLUTION
    share = _channels_last(g) * (1.0 / (kh * kw))  # (N, Ho, Wo, C)
    dxp = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=g.dtype)  # (N, Hp, Wp, C)
    for i in range(kh):
        for j in range(kw):
            _offset(dxp, i, j, sh, sw, ho, wo)[...] += share
    dx = _channels_first(dxp[:, ph:ph + h, pw:pw + w])  # (N, C, H, W)
    return (dx,)
    ### END SOLUTION


# ---------------------------------------------------------------------------------------------
# Batch normalisation over (N, H, W), one fused op
# ---------------------------------------------------------------------------------------------
def batch_norm2d(x: Tensor, weight: Tensor, bias: Tensor, running_mean: np.ndarray,
                 running_var: np.ndarray, training: bool, momentum: float = 0.1,
                 eps: float = 1e-5) -> Tensor:
    """Normalise each channel; in training with the batch statistics (and update the running
    statistics in place), in eval with the running ones. weight = gamma, bias = beta, all (C,)."""
    _check_input(x, "batch_norm2d", len(running_mean))
    n, c, h, w = x.shape
    m = n * h * w
    if training and m < 2:
        raise ValueError(f"batch_norm2d: training needs more than one value per channel, got {x.shape}")
    ### BEGIN SOLUTION
    xm = _channels_last(x.data).reshape(m, c)  # (M, C), free for channels-last memory
    if training:
        mean = _colsum(xm) / m  # (C,)
        xc = xm - mean  # (M, C) centred
        y = np.square(xc)  # (M, C), reused below for the output
        var = _colsum(y) / m  # (C,) biased: used to normalise
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += momentum * var * (m / (m - 1))  # unbiased, as PyTorch
        inv_std = 1.0 / np.sqrt(var + eps)  # (C,)
        np.multiply(xc, weight.data * inv_std, out=y)  # y = gamma xhat + beta, in place
        y += bias.data
    else:
        mean = running_mean.astype(x.dtype)
        inv_std = (1.0 / np.sqrt(running_var + eps)).astype(x.dtype)  # (C,)
        scale = weight.data * inv_std  # (C,)  y = x scale + shift
        y = xm * scale
        y += bias.data - mean * scale
    data = _channels_first(y.reshape(n, h, w, c))  # (N, C, H, W)
    ### END SOLUTION
    saved = (mean, inv_std, training)
    return Tensor._make(data, (x, weight, bias), "batch_norm2d", saved)


@register_backward("batch_norm2d")
def batch_norm2d_backward(g, out):
    """Train: dx = gamma inv_std (g - mean(g) - xhat mean(g xhat)); eval: dx = gamma inv_std g.
    dgamma = sum(g xhat), dbeta = sum(g). With xhat = (x - mean) inv_std the training dx is
    k g + a x + b per channel (k = gamma inv_std), computed in a few passes over memory."""
    x, weight, bias = out._parents
    mean, inv_std, training = out._saved
    n, c, h, w = x.shape
    m = n * h * w
    ### BEGIN SOLUTION
    gm = _channels_last(g).reshape(m, c)  # (M, C)
    xm = _channels_last(x.data).reshape(m, c)  # (M, C)
    dbeta = _colsum(gm)  # (C,)  sum(g)
    dxm = gm * xm  # (M, C), reused below for dx
    dgamma = (_colsum(dxm) - mean * dbeta) * inv_std  # (C,)  sum(g xhat)
    k = weight.data * inv_std  # (C,)
    if training:  # dx = k (g - dbeta/M - xhat dgamma/M) = k g + a x + b
        a = -k * dgamma * inv_std / m  # (C,)
        b = k * (dgamma * inv_std * mean - dbeta) / m  # (C,)
        np.multiply(xm, a, out=dxm)
        dxm += b
        dxm += gm * k
    else:
        np.multiply(gm, k, out=dxm)
    dx = _channels_first(dxm.reshape(n, h, w, c))  # (N, C, H, W)
    return dx, dgamma, dbeta
    ### END SOLUTION


# ---------------------------------------------------------------------------------------------
# The layers (the Module wrappers; given)
# ---------------------------------------------------------------------------------------------
class Conv2d(Module):
    """Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True).

    Weights and bias start uniform in +-1/sqrt(fan_in), fan_in = in_channels * kh * kw (PyTorch's
    default). Input (N, in_channels, H, W) -> (N, out_channels, H_out, W_out).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = _pair(kernel_size), _pair(stride), _pair(padding)
        kh, kw = self.kernel_size
        bound = 1.0 / math.sqrt(in_channels * kh * kw)
        rng = default_generator()
        self.weight = Parameter(rng.uniform(-bound, bound, (out_channels, in_channels, kh, kw))
                                .astype(np.float32))
        self.bias = Parameter(rng.uniform(-bound, bound, out_channels).astype(np.float32)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")


class _Pool2d(Module):
    """Pool(kernel_size, stride=None, padding=0): stride defaults to kernel_size."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}"


class MaxPool2d(_Pool2d):
    def forward(self, x: Tensor) -> Tensor:
        return max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool2d):
    def forward(self, x: Tensor) -> Tensor:
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class AdaptiveAvgPool2d(Module):
    """Average-pool to a fixed output size; AdaptiveAvgPool2d(1) is global average pooling.
    Sizes that do not divide the input evenly are not supported."""

    def __init__(self, output_size=1):
        super().__init__()
        self.output_size = _pair(output_size)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, "AdaptiveAvgPool2d")
        (oh, ow), (h, w) = self.output_size, x.shape[2:]
        if h % oh or w % ow:
            raise ValueError(f"AdaptiveAvgPool2d{self.output_size}: input {h}x{w} is not a multiple")
        return avg_pool2d(x, (h // oh, w // ow))

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class BatchNorm2d(Module):
    """BatchNorm2d(num_features, eps=1e-5, momentum=0.1).

    Learnable weight (gamma, ones) and bias (beta, zeros); running_mean/running_var are buffers
    (not parameters), updated in training mode and used in eval mode (`model.eval()`).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(np.ones(num_features, dtype=np.float32))
        self.bias = Parameter(np.zeros(num_features, dtype=np.float32))
        self.register_buffer("running_mean", np.zeros(num_features, dtype=np.float32))
        self.register_buffer("running_var", np.ones(num_features, dtype=np.float32))

    def forward(self, x: Tensor) -> Tensor:
        return batch_norm2d(x, self.weight, self.bias, self.running_mean.data, self.running_var.data,
                            self.training, self.momentum, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
