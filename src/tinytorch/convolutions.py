# %% [markdown]
# # Module 09 - Convolutions
#
# A convolution slides one small filter over the whole image, so a feature learnt in one corner is
# recognised everywhere, with a handful of weights. The naive version is seven nested loops and
# takes seconds to minutes per batch. You turn it into ONE matrix multiply (im2col), and its backward pass
# into a loop over the k x k kernel offsets only - never over pixels; then max and average pooling
# and batch normalisation, each with its backward rule next to its forward code.
#
# Complete it and milestone 04 (LeNet-5 on MNIST, a CNN on CIFAR-10) unlocks.
#
# ## What you build
#
# | step | you write | checked by |
# |---|---|---|
# | 1 | `im2col`: every receptive field as one row of a matrix | `check("09", "receptive_fields")` |
# | 2 | `col2im`: its adjoint, for the input gradient | `check("09", "col2im")` |
# | 3 | `conv2d` and its backward rule `conv2d_backward` | `check("09", "conv2d_forward")`, `check("09", "conv2d_backward")` |
# | 4 | `max_pool2d` and `max_pool2d_backward` | `check("09", "test_max_pool2d")` |
# | 5 | `avg_pool2d` and `avg_pool2d_backward` | `check("09", "test_avg_pool2d")` |
# | 6 | `batch_norm2d` and `batch_norm2d_backward` | `check("09", "test_batch_norm2d")` |
# | 7 | (given) the layers `Conv2d`, `MaxPool2d`, `AvgPool2d`, `AdaptiveAvgPool2d`, `BatchNorm2d` | `check("09", "layer")` |
#
# Each step has a markdown cell that teaches it, a cell to fill in (your copy says
# `# YOUR CODE HERE` and `raise NotImplementedError()` where the answer goes), a "try it" cell on a
# tiny input, and a check cell that runs the same checks as `tito module test 09 --task <name>`.
# The checks compare every forward pass with slow, obviously correct loops over pixels, every
# backward rule with a numerical gradient (central differences in float64), and both with PyTorch
# when it is installed. They cover what goes wrong in practice: stride 2 (a stride forgotten in the
# backward pass), padding, odd and unequal sizes, batch 1, no bias, one input channel, non-square
# kernels.
#
# This module is also the one where speed matters most: the CNN milestone trains for many minutes
# on a CPU. The code you write here was measured (`bench/bench_conv.py`): a LeNet-5 training step
# runs at 1.04x and a 4-conv CIFAR-10 step at 1.10x the time of the same math hand-written in
# NumPy without any framework. The notes below say which choices bought that speed.

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


# %% [markdown]
# ## Images, filters and the output size
#
# Images in a batch are a 4-D array $(N, C, H, W)$: $N$ images, $C$ channels (1 for MNIST's grey
# digits, 3 for CIFAR-10's RGB), height and width. A convolution layer has $C_{out}$ filters, each a
# small $(C_{in}, k_h, k_w)$ block of weights, so the weight is $(C_{out}, C_{in}, k_h, k_w)$, plus one
# bias per filter. Output channel $o$ at position $(y, x)$ is the dot product of filter $o$ with the
# patch of the (zero-padded) input under it:
#
# $$\text{out}[n, o, y, x] = b[o] + \sum_{c, i, j} w[o, c, i, j]\; x_{pad}[n, c,\ s y + i,\ s x + j].$$
#
# (Strictly this is a cross-correlation - the kernel is not flipped - as in every deep-learning
# framework; a learnt kernel does not care.)
#
# **The output size.** With padding $p$ on each side and stride $s$, the filter fits at
# $\lfloor (H + 2p - k_h) / s \rfloor + 1$ vertical positions:
#
# $$H_{out} = \left\lfloor \frac{H + 2p - k_h}{s} \right\rfloor + 1, \qquad \text{and the same for } W.$$
#
# Worked out: LeNet's first layer, $H = 28$, $k = 5$, $p = 2$, $s = 1$: $(28 + 4 - 5) / 1 + 1 = 28$ -
# "same" padding, $p = (k - 1)/2$, keeps the size. Its second layer, $H = 14$, $k = 5$, $p = 0$:
# $14 - 5 + 1 = 10$. A strided layer, $H = 7$, $k = 3$, $p = 1$, $s = 2$: $\lfloor 6 / 2 \rfloor + 1 = 4$,
# the filter placed at padded rows 0, 2, 4 and 6. A $2 \times 2$ pool with stride 2 on $28$ rows:
# $\lfloor 26 / 2 \rfloor + 1 = 14$. The floor means that trailing rows that do not fill a whole window
# are silently dropped ($H = 7$, $k = 2$, $s = 2$ gives 3, and row 6 is never read).
#
# **Parameter sharing.** The same filter is used at every position. `Conv2d(32, 32, 3)` on a
# $32 \times 32$ feature map has $32 \cdot 32 \cdot 3 \cdot 3 + 32 = 9{,}248$ parameters, 37 KB. A dense
# `Linear` layer with the same input and output sizes ($32 \cdot 32 \cdot 32 = 32{,}768$ numbers each)
# would need $32{,}768^2 \approx 1.07$ billion weights, 4.3 GB of float32 - and it would have to learn
# an edge detector separately at every position. Sharing is why a convolution generalises across
# positions (a shifted input gives a shifted output) with few weights.
#
# **FLOPs.** Each output number is a dot product of length $C_{in} k_h k_w$, a multiply and an add
# per term:
#
# $$\text{FLOPs} = 2 \cdot N \cdot H_{out} W_{out} \cdot C_{out} \cdot C_{in} k_h k_w .$$
#
# For LeNet's second layer that is $2 \cdot 10 \cdot 10 \cdot 16 \cdot 6 \cdot 25 = 480{,}000$ per image;
# its first fully connected layer ($400 \to 120$, 48,120 parameters, 20 times as many) costs only
# 96,000. Convolutions have few parameters and most of the FLOPs. The CIFAR network's second layer
# ($32 \to 32$ channels, $3 \times 3$, on $32 \times 32$) costs $2 \cdot 128 \cdot 1024 \cdot 32 \cdot 32 \cdot 9
# = 2.4$ GFLOP for a batch of 128, forward only; the backward pass costs twice that again.
#
# **Why not loops.** Written as loops, that layer is seven nested loops ($N, C_{out}, H_{out},
# W_{out}, C_{in}, k_h, k_w$) and 1.2 billion multiply-adds; at a generous 50 ns per Python
# iteration that is a minute per forward pass. The same arithmetic as one matrix multiply runs in
# BLAS at tens of GFLOP/s: a few tens of milliseconds. Getting the arithmetic into that one matrix
# multiply - and back out for the gradient - is this module.

# %% [markdown]
# ## Given: channels-last memory and small helpers
#
# The public shapes are PyTorch's, $(N, C, H, W)$. Inside, the arithmetic runs **channels-last**,
# $(N, H, W, C)$: a receptive field is then $k_h k_w$ runs of $C$ *contiguous* numbers, which is what
# makes the patch matrix cheap to build. Measured on this project's machines, the channels-first
# alternative (a `tensordot` over NCHW windows) was 3.7 times slower. The arrays this module hands
# back are NCHW *views* of channels-last memory (what PyTorch calls the `channels_last` memory
# format): `a.transpose(0, 3, 1, 2)` costs nothing, and the next layer's `.transpose(0, 2, 3, 1)`
# gives back a contiguous channels-last array, also for free. Only `Flatten` at the end of the
# convolution stack copies into NCHW order.
#
# The given helpers:
#
# - `_pair(3) == (3, 3)`: kernel sizes, strides and paddings may be an int or a pair.
# - `_out_size(size, k, s, p)`: the formula above.
# - `_channels_last` / `_channels_first`: the two transposes (views, no copies).
# - `_pad(xl, ph, pw, value)`: a padded copy of a channels-last batch (no copy without padding;
#   max-pooling pads with $-\infty$).
# - `_offset(a, i, j, sh, sw, ho, wo)`: the strided *view* of `a` that kernel offset $(i, j)$ sees:
#   element $[n, y, x]$ is `a[n, sh*y + i, sw*x + j]`. Every output pixel's $(i, j)$-th input at once,
#   as one $(N, H_{out}, W_{out}, C)$ array - the building block of col2im and of pooling.
# - `_colsum(a)`: the column sums of a tall $(M, C)$ matrix as `ones(M) @ a`. It is a BLAS
#   matrix-vector product, 10-20 times faster than `a.sum(axis=0)` for $M \approx 10^5$ rows of a few
#   dozen channels (NumPy's sum over axis 0 of a C-ordered array walks memory badly).
# - `_check_input`: a readable error for a wrong shape, instead of a broadcasting accident.

# %%
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


# %%
if __name__ == "__main__":
    print("output sizes:", _out_size(28, 5, 1, 2), _out_size(14, 5, 1, 0), _out_size(7, 3, 2, 1), _out_size(28, 2, 2, 0))
    a = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)  # (N, C, H, W)
    al = np.ascontiguousarray(_channels_last(a))  # (N, H, W, C) memory, as a conv layer produces it
    face = _channels_first(al)  # (N, C, H, W) shape, channels-last memory
    print("NCHW view of channels-last memory:", face.shape, "C-contiguous:", face.flags.c_contiguous,
          "| back to channels-last is contiguous:", _channels_last(face).flags.c_contiguous)
    view = _offset(al, 1, 2, 2, 2, 2, 2)  # offset (1, 2), stride 2, a 2x2 output
    print("offset view", view.shape, "shares memory with the input:", np.shares_memory(view, al))


# %% [markdown]
# ## im2col: every receptive field as one row
#
# The trick that turns a convolution into one matrix multiply: copy the receptive field of every
# output pixel into one row of a matrix `cols`. With channels-last padded input $(N, H_p, W_p, C)$,
# row $(n, y, x)$ holds the $k_h \times k_w \times C$ numbers under the filter at output pixel $(y, x)$ of
# image $n$, in the order $(i, j, c)$:
#
# $$\text{cols} \in \mathbb{R}^{(N H_{out} W_{out}) \times (k_h k_w C)}, \qquad \text{cols}[(n, y, x), (i, j, c)] = x_{pad}[n,\ s y + i,\ s x + j,\ c].$$
#
# Then, with the filters reshaped to a $(k_h k_w C) \times C_{out}$ matrix $W$ whose rows are in the same
# $(i, j, c)$ order, the whole convolution is `cols @ W`: one matrix multiply of $(N H_{out} W_{out})
# \times (k_h k_w C)$ by $(k_h k_w C) \times C_{out}$.
#
# **Worked example.** One image, one channel, $3 \times 3$:
# `[[1, 2, 3], [4, 5, 6], [7, 8, 9]]`, a $2 \times 2$ kernel, stride 1: $H_{out} = W_{out} = 2$, so `cols`
# is $4 \times 4$ with rows `[1, 2, 4, 5]`, `[2, 3, 5, 6]`, `[4, 5, 7, 8]`, `[5, 6, 8, 9]`. The centre
# pixel 5 appears in all four rows: every pixel is copied into up to $k_h k_w$ rows.
#
# **How, without loops.** `sliding_window_view(xp, (kh, kw), axis=(1, 2))` returns every window
# position as a *view*, shape $(N, H_p - k_h + 1, W_p - k_w + 1, C, k_h, k_w)$, without copying
# anything (it only sets strides). Keep every stride-th window with `[:, ::sh, ::sw]` to get $(N,
# H_{out}, W_{out}, C, k_h, k_w)$, move $C$ last with `.transpose(0, 1, 2, 4, 5, 3)` to get the $(i, j,
# c)$ order, and `.reshape(n * ho * wo, kh * kw * c)`: the reshape of a non-contiguous view is the
# one and only copy, and it writes `cols` in a single pass.
#
# **The memory blow-up.** `cols` has $N H_{out} W_{out} \cdot k_h k_w C$ entries, about $k_h k_w$ times the
# input (for stride 1 and "same" padding): 9 times for a $3 \times 3$ kernel, 25 times for $5 \times 5$.
# For the CIFAR network's second layer at batch 128 the input is 16.8 MB and `cols` is 151 MB. And
# `conv2d` keeps `cols` for the backward pass (it needs it for the weight gradient), so during a
# training step the four patch matrices of that network - 14, 151, 38 and 76 MB - are all alive at
# once: 278 MB, about 9 times the 31 MB of inputs those four layers read. This is the price of turning the convolution into BLAS;
# frameworks that cannot afford it use direct or Winograd convolution kernels instead.

# %% nbgrader={"grade": false, "grade_id": "im2col", "locked": false, "schema_version": 3, "solution": true, "task": false}
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


# %%
if __name__ == "__main__":
    img = np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1)  # (N, H, W, C): [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    print("3x3 image, 2x2 kernel, stride 1 -> cols\n", im2col(img, 2, 2, 1, 1))
    layer_input = np.zeros((128, 32, 32, 32), dtype=np.float32)  # CIFAR layer 2, batch 128, channels-last
    cols = im2col(_pad(layer_input, 1, 1), 3, 3, 1, 1)
    print(f"input {layer_input.nbytes / 1e6:.1f} MB -> cols {cols.shape}, {cols.nbytes / 1e6:.1f} MB "
          f"({cols.nbytes / layer_input.nbytes:.0f}x = kh * kw)")
    del layer_input, cols


# %% nbgrader={"grade": true, "grade_id": "check-im2col", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("09", "receptive_fields")


# %% [markdown]
# ## col2im: the adjoint, for the input gradient
#
# Backward, the gradient of the loss with respect to `cols` comes out of the matrix multiply as
# `dcols`, one number per entry of `cols`. Each entry of `cols` was a *copy* of one input pixel, and
# the derivative of a copy is the identity, so each entry of `dcols` belongs to the pixel it was
# copied from. A pixel copied into several rows (overlapping windows) receives the **sum** of all
# its copies' gradients - the multivariate chain rule. In the worked example above, the centre
# pixel 5 sat in all four rows, so its gradient is the sum of four entries of `dcols`; the corner
# pixel 1 sat in one.
#
# `col2im(dcols, shape, sh, sw)` does exactly that. It gets `dcols` unfolded to $(N, H_{out},
# W_{out}, k_h, k_w, C)$ and returns the padded-image gradient of `shape` $(N, H_p, W_p, C)$:
#
# ```
# dxp = zeros(shape)
# for i in range(kh):
#     for j in range(kw):
#         _offset(dxp, i, j, sh, sw, ho, wo)[...] += dcols[:, :, :, i, j]     # (N, Ho, Wo, C)
# ```
#
# For a fixed kernel offset $(i, j)$ the $H_{out} W_{out}$ output pixels read *different* input pixels
# (they are a stride apart), so one strided slice-add per offset is safe and vectorised; the
# overlaps between windows are handled by the different offsets adding into the same pixel one
# after another. That is $k_h k_w$ NumPy operations (9 for a $3 \times 3$ kernel), each over $N H_{out}
# W_{out} C$ numbers - never a Python loop over pixels. The tempting one-liner `np.add.at(dxp,
# (index arrays), dcols)` is correct but was measured 2.5-3 times slower: it is unbuffered, one
# element at a time.
#
# **The adjoint.** Mathematically col2im is the *transpose* (adjoint) of im2col, as linear maps:
# for every input $x$ and every $d$ shaped like `cols`,
#
# $$\langle \text{im2col}(x),\ d \rangle = \langle x,\ \text{col2im}(d) \rangle .$$
#
# That identity is exactly what the check tests, over random sizes, kernels and strides - a forgotten
# stride or an off-by-one offset breaks it. It holds for any linear operation and its backward:
# the backward of a linear map is its transpose.

# %% nbgrader={"grade": false, "grade_id": "col2im", "locked": false, "schema_version": 3, "solution": true, "task": false}
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


# %%
if __name__ == "__main__":
    ones = np.ones((1, 2, 2, 2, 2, 1), dtype=np.float32)  # dcols of the worked example: all ones
    print("how many windows each pixel of a 3x3 image is in (2x2 kernel, stride 1):\n",
          col2im(ones, (1, 3, 3, 1), 1, 1)[0, :, :, 0])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 6, 3))
    d = rng.standard_normal(im2col(x, 3, 3, 2, 2).shape)
    lhs = np.sum(im2col(x, 3, 3, 2, 2) * d)
    rhs = np.sum(x * col2im(d.reshape(2, 2, 2, 3, 3, 3), x.shape, 2, 2))
    print(f"<im2col(x), d> = {lhs:.6f}   <x, col2im(d)> = {rhs:.6f}")


# %% nbgrader={"grade": true, "grade_id": "check-col2im", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("09", "col2im")


# %% [markdown]
# ## Given: the fast path for one input channel
#
# The first layer on grey images (LeNet on MNIST) has $C_{in} = 1$, and there im2col's rows are
# only $k_h k_w = 25$ numbers long: the transpose-and-reshape copy then works on tiny runs of one
# float each. The given `_patches_one_channel` builds the *transposed* patch matrix instead, $(k_h
# k_w) \times (N H_{out} W_{out})$, as 25 contiguous copies of the 25 strided offset views. `conv2d` uses
# it when $C_{in} = 1$ and multiplies with `cols.T @ wmat`. Together with skipping the input gradient
# of the first layer (the images need none), this took 13% off a LeNet training step.

# %%
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


# %% [markdown]
# ## conv2d: forward
#
# `conv2d(x, weight, bias, stride, padding)` - the given code above the region checks the shapes
# and computes $H_{out}, W_{out}$. You write the arithmetic, in four moves:
#
# 1. `xp = _pad(_channels_last(x.data), ph, pw)`: the padded input, $(N, H_p, W_p, C)$.
# 2. The weights as the matrix operand: $(O, C, k_h, k_w) \to$ `.transpose(2, 3, 1, 0)` $\to (k_h, k_w,
#    C, O) \to$ `.reshape(kh * kw * c, o)`. Its rows are now in the same $(i, j, c)$ order as the
#    columns of `cols` - the whole correctness of im2col rests on those two orders agreeing.
# 3. `cols = im2col(xp, ...)` and `y = cols @ wmat`, $(N H_{out} W_{out}, O)$; with one input channel,
#    use the transposed patches of the fast path and `cols.T @ wmat` (same product). Add the bias
#    in place (`y += bias.data`, broadcast over rows) when there is one.
# 4. `y.reshape(n, ho, wo, o)` is already the output in channels-last order - no transpose of data
#    needed - and `_channels_first(...)` gives it the public $(N, O, H_{out}, W_{out})$ shape as a view.
#
# The given `Tensor._make(...)` line records the op for autograd and saves `(cols, wmat, stride,
# padding)`: the backward rule needs `cols` for the weight gradient, and `wmat` for the input
# gradient. Name them exactly so.
#
# **Cost.** One matrix multiply of $2 N H_{out} W_{out} \cdot k_h k_w C \cdot O$ FLOPs - the formula above -
# plus the im2col copy, which moves $k_h k_w$ times the input's bytes. On the CIFAR network the copy
# is cheap in FLOPs but not in time: it runs at memory speed on one core while the matmul uses
# BLAS on all cores. On the CNNs of milestone 04, about half of a training step is spent outside
# the matrix multiplies.

# %% [markdown]
# ## conv2d: backward, next to its forward
#
# Autograd (module 06) calls the rule registered under the op's name with `g` $= \partial L /
# \partial \text{out}$, shaped like the output $(N, O, H_{out}, W_{out})$; module 09 registers its own
# rules with `@register_backward("conv2d")`, right below the forward code, so the derivative sits
# beside what it differentiates. With `gm` = `g` as a $(N H_{out} W_{out}, O)$ matrix (channels-last,
# made contiguous) and $Y = \text{cols}\, W + b$, the matrix calculus of module 06 gives
#
# $$\frac{\partial L}{\partial W} = \text{cols}^\top\, g_m, \qquad \frac{\partial L}{\partial b} = \sum_{\text{rows}} g_m, \qquad \frac{\partial L}{\partial\, \text{cols}} = g_m W^\top .$$
#
# - **The weight gradient** is one big matrix multiply, $(k_h k_w C) \times (N H_{out} W_{out})$ by $(N
#   H_{out} W_{out}) \times O$, reshaped back to $(O, C, k_h, k_w)$ with the inverse of the forward's
#   transpose: `.reshape(kh, kw, c, o).transpose(3, 2, 0, 1)`. (On the one-channel path `cols` is
#   already transposed: `cols @ gm`.)
# - **The bias gradient** is the column sum of `gm`: `_colsum(gm)`.
# - **The input gradient** is `col2im` of $g_m W^\top$. Computed naively, $g_m W^\top$ is an $(N H_{out}
#   W_{out}) \times (k_h k_w C)$ matrix laid out (row, offset, channel), and col2im would read each offset's
#   slab with a stride. Instead, compute it *offset by offset*, as one batched matmul: `wmat`
#   reshaped to $(k_h k_w, O, C)$ and `np.matmul(gm, w_offsets)` give $(k_h k_w, N H_{out} W_{out}, C)$, so
#   each offset's slab is contiguous; a reshape and transpose (views) present it as $(N, H_{out},
#   W_{out}, k_h, k_w, C)$ for col2im. Then crop the padding off: `dxp[:, ph:ph + h, pw:pw + w]`, and
#   return it as NCHW with `_channels_first`.
# - **Skip what is not needed**: when `x.requires_grad` is false (the images going into the first
#   layer), return `None` for it and save the whole col2im.
#
# Return one gradient per parent, in the order of `out._parents`: `(dx, dw)`, plus `db` when there is
# a bias. Cost: two matrix multiplies of the forward's size (so the backward is twice the forward's
# FLOPs) plus col2im's $k_h k_w$ slice-adds.

# %% nbgrader={"grade": false, "grade_id": "conv2d", "locked": false, "schema_version": 3, "solution": true, "task": false}
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


# %%
if __name__ == "__main__":
    x = Tensor(np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3))  # [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    w = Tensor(np.ones((1, 1, 2, 2), dtype=np.float32))  # sums each 2x2 window
    print("2x2 box filter over 1..9:\n", conv2d(x, w).data[0, 0])
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 3, 7, 6)).astype(np.float32))
    w = Tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    out = conv2d(x, w, Tensor(np.zeros(4, np.float32)), stride=2, padding=1)
    print("x", x.shape, "-> stride 2, padding 1 ->", out.shape, "  (H: (7 + 2 - 3)//2 + 1 = 4, W: (6 + 2 - 3)//2 + 1 = 3)")


# %% nbgrader={"grade": true, "grade_id": "check-conv2d-forward", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("09", "conv2d_forward")


# %%
if __name__ == "__main__":
    x = Tensor(np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3), requires_grad=True)
    w = Tensor(np.ones((1, 1, 2, 2), dtype=np.float32), requires_grad=True)
    b_ = Tensor(np.zeros(1, dtype=np.float32), requires_grad=True)
    conv2d(x, w, b_).sum().backward()
    print("dL/dx (each pixel: how many windows it is in):\n", x.grad.data[0, 0])
    print("dL/dw (each weight: the sum of the pixels it touched):\n", w.grad.data[0, 0], " dL/db:", b_.grad.data)


# %% nbgrader={"grade": true, "grade_id": "check-conv2d-backward", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("09", "conv2d_backward")


# %% [markdown]
# ## Max pooling: $k_h k_w$ strided views
#
# Pooling shrinks a feature map: max-pooling keeps the largest value of every $k_h \times k_w$ window
# (windows `stride` apart; the stride defaults to the kernel size, so the usual $2 \times 2$ pool
# halves height and width). It has no parameters; it makes the features a little insensitive to
# small shifts, and cuts the cost of every layer after it by 4.
#
# **Forward without windows.** The maximum over a window is the maximum over its $k_h k_w$ offsets,
# and `_offset` gives each offset as one strided view over *all* windows at once. So: pad with
# $-\infty$ (padding must never win), start with a copy of offset $(0, 0)$'s view, and fold in every
# other offset with `np.maximum(best, view, out=best)`. For the $2 \times 2$ pool that is four views
# and three in-place maxima, the method the project's performance notes settled on.
#
# **Backward: route the gradient to the winner.** $\max$ is piecewise linear: its derivative is 1
# for the input that is the maximum and 0 for the others, so each window's gradient goes to the
# one position that won. Find it with an equality mask per offset: `_offset(xp, i, j, ...) == best`.
# Worked example: window `[[1, 3], [2, 0]]` outputs 3; offset $(0, 1)$ matches, and that input gets
# the whole gradient, the other three get 0.
#
# **Ties.** After a ReLU, many windows are all zeros, and *every* position matches the maximum.
# Giving the gradient to all of them would multiply it by 4; PyTorch gives it to the *first*
# maximum in row-major order, and so must you. Keep a boolean mask `free` of windows whose winner
# is not yet found; at each offset, `win = (view == best) & free`, then remove the winners from
# `free`. Offsets are visited in row-major order, so the first maximum wins.
#
# **Writing the gradient.** When windows do not overlap (stride $\ge$ kernel) each input pixel is in
# at most one window, so each offset's share can be *written* with `np.multiply(gl, win, out=target)`
# instead of added; when the windows also cover the input exactly (no padding, sizes divisible)
# every pixel is written once, and the gradient buffer need not even be zeroed first (`np.empty`).
# Overlapping windows (stride < kernel) must add (`target += gl * win`). The saved `xp` is the padded
# input, needed for the masks; for an unpadded input it is a view, not a copy.

# %% nbgrader={"grade": false, "grade_id": "max-pool2d", "locked": false, "schema_version": 3, "solution": true, "task": false}
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


# %%
if __name__ == "__main__":
    x = Tensor(np.array([[[[1, 3, 0, 0], [2, 0, 0, 0], [5, 6, 1, 2], [7, 8, 3, 4]]]], dtype=np.float32),
               requires_grad=True)
    out = max_pool2d(x, 2)
    print("input\n", x.data[0, 0], "\n2x2 max pool\n", out.data[0, 0])
    out.sum().backward()
    print("gradient routed to the winners (the all-zero window: only its first zero)\n", x.grad.data[0, 0])


# %% nbgrader={"grade": true, "grade_id": "check-max-pool2d", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("09", "test_max_pool2d")


# %% [markdown]
# ## Average pooling
#
# Average pooling takes the mean of each window instead:
#
# $$\text{out}[n, c, y, x] = \frac{1}{k_h k_w} \sum_{i, j} x_{pad}[n, c,\ s y + i,\ s x + j],$$
#
# with zero padding that *counts* in the mean (PyTorch's default, `count_include_pad=True`). The
# forward is the same fold over the $k_h k_w$ offset views as max-pooling, with `+=` instead of
# `np.maximum`, then one multiply by $1 / (k_h k_w)$. Worked example: the window `[[1, 3], [2, 0]]`
# averages to 1.5.
#
# The backward is simpler than max-pooling's: every input of a window contributed $1 / (k_h k_w)$ of
# the output, so each gets $g / (k_h k_w)$ - for the worked window, a gradient of 1 sends 0.25 to each
# of the four inputs. Compute the share once, `_channels_last(g) * (1.0 / (kh * kw))`, and add it into
# every offset's view of a zeroed, padded gradient buffer (add, not write: windows may overlap), then
# crop the padding and return it as NCHW. Nothing needs saving for it but the sizes.

# %% nbgrader={"grade": false, "grade_id": "avg-pool2d", "locked": false, "schema_version": 3, "solution": true, "task": false}
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


# %%
if __name__ == "__main__":
    x = Tensor(np.array([[[[1, 3, 0, 0], [2, 0, 0, 0], [5, 6, 1, 2], [7, 8, 3, 4]]]], dtype=np.float32),
               requires_grad=True)
    out = avg_pool2d(x, 2)
    print("2x2 average pool\n", out.data[0, 0])
    out.sum().backward()
    print("gradient: a quarter to every input\n", x.grad.data[0, 0])
    ones = Tensor(np.ones((1, 1, 4, 4), np.float32))
    print("3x3 windows, stride 2, padding 1 on a 4x4 of ones (the zeros count):\n",
          avg_pool2d(ones, 3, 2, 1).data[0, 0].round(3))


# %% nbgrader={"grade": true, "grade_id": "check-avg-pool2d", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("09", "test_avg_pool2d")


# %% [markdown]
# ## Batch normalisation over $(N, H, W)$
#
# Deep networks train faster and more reliably when each layer's inputs keep a steady scale.
# Batch normalisation (Ioffe and Szegedy, 2015) normalises every channel of a batch to mean 0 and
# variance 1, then lets the network choose the scale and shift it wants back, per channel: with
# $M = N H W$ values per channel,
#
# $$\mu = \frac{1}{M}\sum x, \quad \sigma^2 = \frac{1}{M}\sum (x - \mu)^2, \quad \hat x = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}, \quad y = \gamma \hat x + \beta .$$
#
# **Worked example.** One channel holding $1, 2, 3, 4$ ($M = 4$): $\mu = 2.5$, the *biased* variance
# $\sigma^2 = (2.25 + 0.25 + 0.25 + 2.25)/4 = 1.25$, and $\hat x = (-1.342, -0.447, 0.447, 1.342)$. With
# $\gamma = 1$, $\beta = 0$ (their initial values) that is the output.
#
# **Training and eval.** In training the statistics come from the batch - so an image's output
# depends on the other images in its batch - and the layer keeps running averages for later:
# `running_mean` $\leftarrow (1 - m)$ `running_mean` $+ m \mu$ and the same for `running_var` with
# the *unbiased* batch variance $\sigma^2 M / (M - 1)$, with momentum $m = 0.1$ - as PyTorch does. For
# the worked example, starting from 0 and 1: `running_mean` becomes $0.25$ and `running_var` $0.9 +
# 0.1 \cdot 5/3 = 1.0667$. Update them **in place** (`running_mean *= 1 - momentum; running_mean +=
# ...`): they are the layer's buffers, and the layer must see the new values. In eval mode
# (`model.eval()`) the running statistics are used instead and nothing is updated, so the output
# of an image no longer depends on its batch: it becomes a fixed per-channel affine map,
# $y = x \cdot \text{scale} + \text{shift}$ with $\text{scale} = \gamma / \sqrt{\text{running\_var} + \epsilon}$.
#
# **One fused op.** Written with module 01's Tensor ops, batch norm would be a dozen graph nodes,
# each with a full-size temporary. Here it is ONE op with one hand-derived backward. Channels-last
# makes every channel a *column* of the $(M, C)$ matrix `xm` (a free reshape of channels-last
# memory), so the per-channel sums are column sums - `_colsum`, the BLAS matrix-vector trick. The
# forward makes a handful of passes over memory and reuses its temporaries (`np.square(xc)` becomes
# the output buffer). It saves only `(mean, inv_std, training)` - per-channel vectors - and
# recomputes $\hat x$ from the input in the backward.
#
# **Backward.** With $g = \partial L / \partial y$ and sums over the $M$ values of a channel,
# $\partial L / \partial \beta = \sum g$ and $\partial L / \partial \gamma = \sum g \hat x$. For the input,
# in training, the mean and variance depend on every $x$ too, and the chain rule through them gives
#
# $$\frac{\partial L}{\partial x} = \frac{\gamma}{\sqrt{\sigma^2 + \epsilon}} \left( g - \frac{1}{M} \sum g - \hat x\, \frac{1}{M} \sum g \hat x \right):$$
#
# the gradient with its mean and its component along $\hat x$ removed - normalisation makes the
# output blind to shifting or scaling a channel's inputs, so the gradient must have no component
# in those directions. Since $\hat x$ is affine in $x$, the whole expression is $k g + a x + b$ per
# channel ($k = \gamma / \sqrt{\sigma^2 + \epsilon}$, $a$ and $b$ per-channel constants), which the code
# computes in three passes. In eval mode the map is affine with fixed statistics: $\partial L /
# \partial x = k g$. Return `(dx, dgamma, dbeta)`.
#
# **Numerics.** $\epsilon = 10^{-5}$ keeps a constant channel ($\sigma^2 = 0$) from dividing by zero; the
# statistics are computed in the input's float32, from the centred values (the two-pass formula:
# $\sum (x - \mu)^2$, not $\sum x^2 - M \mu^2$, which loses all precision when $\mu$ is large).

# %% nbgrader={"grade": false, "grade_id": "batch-norm2d", "locked": false, "schema_version": 3, "solution": true, "task": false}
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


# %%
if __name__ == "__main__":
    x = Tensor(np.array([1, 2, 3, 4], dtype=np.float32).reshape(1, 1, 2, 2), requires_grad=True)
    gamma = Tensor(np.ones(1, np.float32), requires_grad=True)
    beta = Tensor(np.zeros(1, np.float32), requires_grad=True)
    rm, rv = np.zeros(1, np.float32), np.ones(1, np.float32)
    y = batch_norm2d(x, gamma, beta, rm, rv, training=True)
    print("train: x = 1, 2, 3, 4 ->", y.data.ravel().round(3), "| running_mean", rm, "running_var", rv.round(4))
    (y * Tensor(np.array([1, 0, 0, 0], np.float32).reshape(1, 1, 2, 2))).sum().backward()
    print("dL/dx for L = y[0]:", x.grad.data.ravel().round(3), "(sums to", round(float(x.grad.data.sum()), 6), ")")
    print("eval:  x = 1, 2, 3, 4 ->", batch_norm2d(x, gamma, beta, rm, rv, training=False).data.ravel().round(3))


# %% nbgrader={"grade": true, "grade_id": "check-batch-norm2d", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("09", "test_batch_norm2d")


# %% [markdown]
# ## Given: the layers
#
# The `Module` wrappers hold the parameters and call your functions:
#
# - **`Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True)`** starts its
#   weights and bias uniform in $\pm 1/\sqrt{\text{fan\_in}}$ with $\text{fan\_in} = C_{in} k_h k_w$,
#   PyTorch's default: the variance of a fresh layer's output is then about a third of its
#   input's, whatever the fan-in - wide layers do not start with larger outputs than narrow ones.
# - **`MaxPool2d(kernel_size, stride=None, padding=0)`** and **`AvgPool2d`**: no parameters; the
#   stride defaults to the kernel size.
# - **`AdaptiveAvgPool2d(output_size)`** pools to a *fixed output size*, whatever the input size: for
#   an $H \times W$ input and output $o_h \times o_w$, the window and the stride are $H / o_h$ by $W /
#   o_w$. Worked out: $8 \times 8 \to 1$ uses an $8 \times 8$ window (the global average of each channel);
#   $6 \times 4 \to 2 \times 2$ uses $3 \times 2$ windows, stride $(3, 2)$; plug it into the output-size formula
#   and $\lfloor (6 - 3)/3 \rfloor + 1 = 2$. Sizes that do not divide evenly are refused here (PyTorch then
#   uses windows of varying size). `AdaptiveAvgPool2d(1)` followed by `Flatten` and one `Linear` is
#   how modern CNNs end: instead of flattening a $C \times H \times W$ map into a huge fully connected
#   layer, average each channel to one number - $C$ features, a tiny classifier, and any input size.
# - **`BatchNorm2d(num_features, eps=1e-5, momentum=0.1)`**: `weight` ($\gamma$, ones) and `bias`
#   ($\beta$, zeros) are parameters; `running_mean` and `running_var` are *buffers* (module 03's
#   `register_buffer`): saved in the `state_dict` and in checkpoints, never touched by the optimizer,
#   and switched between batch and running statistics by `model.train()` / `model.eval()`.

# %%
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


# %%
if __name__ == "__main__":
    from tinytorch.activations import ReLU
    from tinytorch.layers import Flatten, Linear

    lenet = [Conv2d(1, 6, 5, padding=2), ReLU(), MaxPool2d(2), Conv2d(6, 16, 5), ReLU(), MaxPool2d(2),
             Flatten(), Linear(400, 120), ReLU(), Linear(120, 84), ReLU(), Linear(84, 10)]
    x = Tensor(np.zeros((128, 1, 28, 28), dtype=np.float32))  # a batch of 128 MNIST-sized images
    print(f"{'layer':10s} {'output':18s} {'params':>7s} {'MFLOP/image':>12s}")
    for layer in lenet:
        y = layer(x)
        params = sum(p.data.size for p in getattr(layer, "parameters", lambda: [])())
        if isinstance(layer, Conv2d):
            (kh, kw), (_, cout, ho, wo) = layer.kernel_size, y.shape
            flops = 2 * ho * wo * cout * layer.in_channels * kh * kw
        elif isinstance(layer, Linear):
            flops = 2 * layer.weight.data.size
        else:
            flops = 0
        print(f"{type(layer).__name__:10s} {str(y.shape):18s} {params:7d} {flops / 1e6:12.3f}")
        x = y
    gap = AdaptiveAvgPool2d(1)(Tensor(np.ones((2, 64, 8, 8), np.float32)))
    print("AdaptiveAvgPool2d(1): (2, 64, 8, 8) ->", gap.shape)


# %% nbgrader={"grade": true, "grade_id": "check-layers", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("09", "layer")


# %% [markdown]
# ## Measured: where a convolution's time goes
#
# The cell below times the pieces of one convolution of the CIFAR network's second layer ($32 \to
# 32$ channels, $3 \times 3$, padding 1, on $32 \times 32$) at batch 32: the im2col copy, the matrix
# multiply, and the full forward and backward of `conv2d` (weight, bias and input gradients, col2im
# included). Compare the GFLOP/s of the matrix multiply with the bytes per second of the copy:
# the multiply is compute-bound and fast; im2col and col2im are memory-bound and, per useful
# FLOP, far slower - which is why the performance notes above are about memory layout and copies,
# not arithmetic. Expect the backward to cost about twice the forward. (Timings depend on
# the machine and its load; the proportions are the point.)

# %%
if __name__ == "__main__":
    import time

    def best_ms(fn, repeats=3):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times) * 1e3

    rng = np.random.default_rng(0)
    n, c, o = 32, 32, 32
    x = Tensor(rng.standard_normal((n, c, 32, 32)).astype(np.float32), requires_grad=True)
    w = Tensor(rng.standard_normal((o, c, 3, 3)).astype(np.float32) * 0.1, requires_grad=True)
    b_ = Tensor(np.zeros(o, np.float32), requires_grad=True)
    xp = _pad(np.ascontiguousarray(_channels_last(x.data)), 1, 1)
    cols = im2col(xp, 3, 3, 1, 1)
    wmat = w.data.transpose(2, 3, 1, 0).reshape(9 * c, o)
    flops = 2 * cols.shape[0] * cols.shape[1] * o
    t_cols = best_ms(lambda: im2col(xp, 3, 3, 1, 1))
    t_mm = best_ms(lambda: cols @ wmat)
    t_fwd = best_ms(lambda: conv2d(x, w, b_, 1, 1))
    out = conv2d(x, w, b_, 1, 1)
    g = np.ones(out.shape, np.float32)
    t_bwd = best_ms(lambda: conv2d_backward(g, out))
    print(f"im2col   {t_cols:7.2f} ms  ({cols.nbytes / 1e6:.0f} MB written, {cols.nbytes / t_cols / 1e6:.1f} GB/s)")
    print(f"matmul   {t_mm:7.2f} ms  ({flops / 1e9:.2f} GFLOP, {flops / t_mm / 1e6:.1f} GFLOP/s)")
    print(f"forward  {t_fwd:7.2f} ms  (pad + im2col + matmul + bias)")
    print(f"backward {t_bwd:7.2f} ms  (dW and dx matmuls + col2im: {t_bwd / t_fwd:.1f}x the forward)")
    del cols, out


# %% [markdown]
# ## Wrap-up
#
# You built the convolutional layer the way fast CPU frameworks do: im2col with
# `sliding_window_view` (one copy, channels-last), the whole convolution as one matrix multiply,
# its weight gradient as another, and its input gradient as a batched matmul and col2im - $k_h k_w$
# strided slice-adds, no loops over pixels, no `np.add.at`. Then max-pooling through $k_h k_w$ views
# with first-maximum gradient routing, average pooling, and batch normalisation as one fused op
# with a hand-derived backward - each rule registered right next to its forward code.
#
# The systems lessons to keep:
#
# - **Output size** $\lfloor (H + 2p - k)/s \rfloor + 1$, and **FLOPs** $2 N H_{out} W_{out} C_{out} C_{in}
#   k_h k_w$: convolutions have few parameters and most of the compute; the backward costs twice the
#   forward.
# - **Parameter sharing**: 9,248 weights where a dense layer would need a billion.
# - **im2col trades memory for speed**: $k_h k_w$ times the input, kept alive until the backward pass
#   (278 MB for the CIFAR network at batch 128). Memory, not FLOPs, is what breaks first at scale.
# - **Layout decides speed**: channels-last makes the copies contiguous (3.7x), the transposes
#   between NCHW and NHWC are free views, and what is not a matrix multiply runs at memory speed.
# - **The backward of a linear map is its adjoint**: col2im is im2col transposed, and
#   $\langle \text{im2col}(x), d\rangle = \langle x, \text{col2im}(d)\rangle$ proves it.
#
# Run all of the module's checks below (the same as `tito module test 09`); then
# `tito module complete 09` exports your file into your `tinytorch` package and unlocks milestone
# 04: LeNet-5 on MNIST (99% in a few minutes) and a CIFAR-10 CNN, trained by your `Trainer` on your
# convolutions.

# %% nbgrader={"grade": true, "grade_id": "check-convolutions", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("09")
