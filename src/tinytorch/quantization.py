# %% [markdown]
# # Module 15 - Quantization
#
# A trained network stores every weight as a 32-bit float. Most of those 32 bits do not matter:
# a weight known to within 0.2% of its layer's range (half of one 255th) serves the model almost
# as well as the exact one. Quantization stores each weight (and, at run time, each activation) as an 8-bit
# integer code plus one scale per tensor or per channel: four times less memory and four times
# less data to move, usually for a fraction of a percent of accuracy.
#
# You build the whole post-training pipeline: affine INT8 codes with a scale and a zero-point,
# calibration of the ranges on a fixed calibration set (min-max and percentile, per tensor and
# per channel), an integer matrix multiply that really is integer (int8 operands, int32
# accumulation, zero-point corrections, fixed-point requantisation), quantized layers with an
# integer route and a fast float route, and `quantize_model`, which turns a trained model into an
# INT8 one. Milestone 06 (MLPerf) quantizes your LeNet-5 and your GPT with it.
#
# ## What you build
#
# | step | you write | checked by |
# |---|---|---|
# | 1 | `compute_qparams`: scale and zero-point from a range (min-max or percentile, per tensor or per channel) | `check("15", "compute_qparams")` |
# | 2 | `quantize`: floats to int8 codes | `check("15", "test_quantize_")` |
# | 3 | `dequantize`: codes back to floats | `check("15", "dequantize")` |
# | 4 | `int_matmul`: the int32 product of int8 codes, with zero-point corrections | `check("15", "int_matmul")` |
# | 5 | `quantize_multiplier`: a real multiplier as a fixed-point integer and a shift | `check("15", "quantize_multiplier")` |
# | 6 | `requantize`: int32 accumulators to int8 codes, in integer arithmetic | `check("15", "requantize")` |
# | 7 | `int8_matmul`: the whole quantized matrix multiply | `check("15", "int8_matmul")` |
# | 8 | `QuantizedLinear`: int8 weights per output channel, int32 bias, two routes | `check("15", "QuantizedLinear")` |
# | 9 | (given) `QuantizedConv2d`, built on your functions | `check("15", "QuantizedConv2d")` |
# | 10 | `quantize_model`: post-training quantization with calibration | `check("15", "quantize_model")` |
# | 11 | `model_size_bytes`: the stored size of a model | `check("15", "model_size_bytes")` |
#
# Each step has a markdown cell that teaches it, a cell to fill in (your copy says
# `# YOUR CODE HERE` and `raise NotImplementedError()` where the answer goes), a "try it" cell and
# a check cell that runs the same checks as `tito module test 15 --task <name>`. The checks compare
# your codes with hand-worked examples and with a float64 reference of the same integer math -
# exactly, not approximately, where the arithmetic is integer.
#
# One thing to know before you start, measured at the end of step 7: NumPy has no int8 matrix
# kernel. Its float matrix multiply calls an optimised BLAS library; its integer matrix multiply
# is a plain loop, tens of times slower. INT8 in this course is a **memory** win (stored size,
# bytes moved), not a speed win - which is why every quantized layer here also has a float route
# that does the same arithmetic through float BLAS.

# %%
"""Module 15: post-training INT8 quantization.

Affine quantization of a real number x with scale s > 0 and integer zero-point z:

    q = clip(round(x / s) + z, -128, 127)          (an int8 code)
    x ~ s (q - z)                                   (dequantized; exact for x = 0: q = z)

Range [lo, hi] (lo <= 0 <= hi, widened to include 0) -> s = (hi - lo) / 255, z = -128 - round(lo / s).
Per tensor: one (s, z). Per channel (axis a): one (s, z) per index along axis a, from the range
of that slice (all the other axes reduced).

Matrix product of quantized a (M, K) and b (K, N), a per tensor (or per row), b per tensor (or per
column):

    a @ b ~ s_a s_b sum_k (qa_ik - z_a)(qb_kj - z_b)
          = s_a s_b [ qa @ qb - z_b rowsum(qa) - z_a colsum(qb) + K z_a z_b ]      (int32)

Requantization to an output scale s_o: q_o = z_o + round(acc * M) with M = s_a s_b / s_o written
as a fixed-point integer M = m0 * 2^-shift (m0 in [2^30, 2^31)), computed in int64.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinytorch.layers import Linear, Module, Sequential
from tinytorch.tensor import Tensor, no_grad

QMIN, QMAX = -128, 127  # the int8 range
MAX_K = (2**31 - 1) // (255 * 255)  # 33,025: the longest dot product an int32 accumulator always holds
MODES = ("integer", "float")


# %% [markdown]
# ## Eight bits for a number: scale and zero-point
#
# An int8 code is one of 256 integers, $-128 \dots 127$. To use them for real numbers we spread
# them evenly over a range $[lo, hi]$: neighbouring codes are one **scale** $s$ apart, and the
# **zero-point** $z$ is the code that stands for the real number 0. The two maps are
#
# $$q = \operatorname{clip}\big(\operatorname{round}(x / s) + z,\ -128,\ 127\big), \qquad \hat x = s\,(q - z).$$
#
# This is **affine** (asymmetric) quantization: the range need not be centred on zero, which
# matters for activations after a ReLU, all of them $\ge 0$ - a symmetric range would waste the
# 128 negative codes on numbers that never occur. Choosing $s$ and $z$ from a range:
#
# $$s = \frac{hi - lo}{255}, \qquad z = -128 - \operatorname{round}(lo / s),$$
#
# so that $lo$ maps to code $-128$ and $hi$ to code $127$. The range is first widened to include
# 0 ($lo \le 0 \le hi$). Then the real number 0 is represented *exactly*, by the code $z$: the
# zero padding of a convolution, the zeros a ReLU outputs, and the bias-free parts of a layer
# stay exactly zero after quantization, and $z$ is a whole number inside the int8 range.
#
# **A worked example.** $x = [-0.8,\ 0,\ 0.5,\ 1.75]$. The range is $[-0.8, 1.75]$, $hi - lo = 2.55$, so
# $s = 2.55 / 255 = 0.01$ and $z = -128 - \operatorname{round}(-0.8 / 0.01) = -128 + 80 = -48$. The
# codes: $-0.8 \to -80 - 48 = -128$; $0 \to -48$; $0.5 \to 50 - 48 = 2$; $1.75 \to 175 - 48 = 127$.
# Dequantizing code $2$ gives $0.01 \cdot (2 + 48) = 0.5$. A value between the grid points, $0.123$,
# becomes $\operatorname{round}(12.3) - 48 = -36$ and comes back as $0.01 \cdot 12 = 0.12$: an error of
# $0.003$. Inside the range the error is never more than half a step, $s / 2 = 0.005$; outside it
# the code saturates at $-128$ or $127$ and the error is as large as the overshoot.
#
# Mind the sign of $z$: $\hat x = s(q - z)$ and $q = \operatorname{round}(x/s) + z$. With $z$ negated
# every code is shifted by $2z$ and every dequantized number by $-2sz$ - in the example by $0.96$,
# a third of the range. It is the classic quantization bug, and the checks look for it.
#
# **Systems view.** A float32 weight is 4 bytes; its code is 1 byte. The scale and zero-point cost
# 8 bytes per tensor or per channel - for a $120 \times 400$ layer with one pair per output channel,
# $120 \cdot 8 = 960$ bytes next to 48,000 bytes of codes, 2%. LeNet-5's 61,706 parameters take
# 246,824 bytes in float32 and 64,342 in INT8, 3.84 times fewer (the biases stay 32-bit, see step
# 8); milestone 05's GPT goes from 3.24 MB to 0.93 MB, 3.5 times fewer (its embedding table and
# layer norms stay float32). The error is a *rounding* error: uniform in $\pm s/2$, with
# standard deviation $s / \sqrt{12}$, about $0.0011 (hi - lo)$.
#
# The given code below holds the two numbers (arrays) in a small dataclass, `QuantParams`.
# `axis=None` means one scale for the whole tensor; `axis=a` means one per index along axis `a`
# (per channel), and `qp.along(ndim)` reshapes them so that they broadcast against an array of
# `ndim` axes - e.g. shape `(C, 1)` for per-row parameters of a matrix.

# %%
@dataclass
class QuantParams:
    """Affine int8 quantization parameters: x ~ scale * (q - zero_point).

    scale: float32, shape () (per tensor, axis None) or (C,) (per channel along `axis`).
    zero_point: int32 codes in [-128, 127], the same shape as scale.
    """

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None = None

    def __post_init__(self):
        self.scale = np.asarray(self.scale, dtype=np.float32)
        self.zero_point = np.asarray(self.zero_point, dtype=np.int32)
        if self.axis is None:
            if self.scale.size != 1 or self.zero_point.size != 1:
                raise ValueError(f"QuantParams: per-tensor parameters (axis=None) need one scale and one "
                                 f"zero-point, got shapes {self.scale.shape} and {self.zero_point.shape}")
            self.scale, self.zero_point = self.scale.reshape(()), self.zero_point.reshape(())
        elif self.scale.ndim != 1 or self.zero_point.shape != self.scale.shape:
            raise ValueError(f"QuantParams: per-channel parameters need 1-D scale and zero-point of one "
                             f"shape, got {self.scale.shape} and {self.zero_point.shape}")
        if not np.all(np.isfinite(self.scale) & (self.scale > 0)):
            raise ValueError(f"QuantParams: every scale must be positive and finite, got {self.scale}")
        if np.any(self.zero_point < QMIN) or np.any(self.zero_point > QMAX):
            raise ValueError(f"QuantParams: zero-points must be int8 codes in [{QMIN}, {QMAX}], got "
                             f"{self.zero_point}")

    def along(self, ndim: int) -> tuple[np.ndarray, np.ndarray]:
        """(scale, zero_point) shaped to broadcast against an array with `ndim` axes."""
        if self.axis is None:
            return self.scale, self.zero_point
        shape = [1] * ndim
        shape[self.axis] = -1
        return self.scale.reshape(shape), self.zero_point.reshape(shape)

    def check_shape(self, shape: tuple, name: str) -> None:
        """A readable error when per-channel parameters do not fit an array of `shape`."""
        if self.axis is None:
            return
        if not -len(shape) <= self.axis < len(shape) or shape[self.axis] != self.scale.size:
            raise ValueError(f"{name}: {self.scale.size} per-channel parameters along axis {self.axis} "
                             f"do not fit an array of shape {tuple(shape)}")


def _array(x) -> np.ndarray:
    """A Tensor's data, or any array-like, as a NumPy array."""
    return x.data if isinstance(x, Tensor) else np.asarray(x)


# %% [markdown]
# ## Calibration: which range?
#
# The scale is only as good as the range it comes from. For **weights** the range is known: they
# are fixed after training, so their minimum and maximum are simply read off. For **activations**
# (the inputs of each layer) the range depends on the data, and it has to be known *before*
# inference so that the integer arithmetic of step 8 can be planned. So we **calibrate**: run the
# float model on a small, fixed **calibration set** (a few hundred training examples - never the
# test set, and the same set every time, so that results are reproducible; MLPerf publishes the
# list of calibration images for exactly this reason), and record the range each layer saw.
#
# Two ways to turn the observed values into a range:
#
# - **min-max**: $lo = \min x$, $hi = \max x$. Nothing is ever clipped, but one outlier stretches
#   the scale for everyone. Example: 1,000 values from $N(0, 1)$ span about $[-3.3, 3.3]$; add one
#   outlier at 50 and the scale grows from $6.6 / 255 = 0.026$ to $53.3 / 255 = 0.21$ - eight times
#   coarser for the 1,000 ordinary values, to represent one.
# - **percentile**: $lo$ and $hi$ are the $(100 - p)$-th and $p$-th percentiles, e.g. $p = 99.99$.
#   The rare values beyond them are clipped (a large error for a few), and the grid is fine for
#   the rest. Which wins depends on whether the outliers carry information: for activations of
#   ordinary CNNs percentile usually does; in large language models the rare huge activations do
#   carry information (the "outlier features" of LLM.int8()), and clipping them breaks the model.
#
# **Per tensor or per channel.** A weight matrix $(C_{out}, C_{in})$ often has output rows of very
# different magnitudes: one row's weights may lie in $\pm 0.05$, another's in $\pm 4$. One scale for
# the whole matrix is set by the large row, and the small row is left with two or three codes.
# With one scale per output channel ("per-channel", `axis=0`) each row gets its own grid. The
# range of channel $c$ is taken over *every other axis*: for a matrix, over row $c$; for a
# convolution weight $(C_{out}, C_{in}, k_h, k_w)$, over the whole filter $c$. The per-channel
# minimum is `np.moveaxis(x, axis, 0).reshape(C, -1).min(axis=1)` - reducing *along* `axis` instead
# would give the range of the wrong slices (and, for a square matrix, silently the right shape).
# Why output channels and not input channels: the output channel's scale can be pulled out of the
# dot product that produces that output (step 4); an input channel's cannot, because every output
# sums over all input channels.
#
# **What to write.** `compute_qparams(x, axis=None, method="minmax", percentile=99.99)`:
#
# 1. flatten `x` into rows: one row for per tensor (`x.reshape(1, -1)`), one row per channel for
#    per channel;
# 2. the range of each row, by min-max or by `np.percentile(rows, [100 - p, p], axis=1)`;
# 3. widen it to include 0: `lo = min(lo, 0)`, `hi = max(hi, 0)`;
# 4. `scale = (hi - lo) / 255` as float32 - and where a row is all zeros (`hi == lo`), scale 1, so
#    that nothing divides by zero;
# 5. `zero_point = -128 - round(lo / scale)` (`np.rint`, round half to even, as NumPy and PyTorch
#    round), clipped into $[-128, 127]$.
#
# Systems note: calibrating with percentiles needs *all* the observed values (a percentile is a
# sort), min-max only a running minimum and maximum. For a calibration set of 500 images and a
# layer with 400 inputs that is 200,000 floats, 800 KB: fine here, but real toolkits keep
# histograms instead.

# %% nbgrader={"grade": false, "grade_id": "compute-qparams", "locked": false, "schema_version": 3, "solution": true, "task": false}
def compute_qparams(x, axis: int | None = None, method: str = "minmax",
                    percentile: float = 99.99) -> QuantParams:
    """Affine int8 parameters for the range of `x`: per tensor (axis None) or one per index along
    `axis` (every other axis reduced); the range from min/max or from the percentiles
    (100 - percentile, percentile), widened to include 0."""
    x = np.asarray(_array(x), dtype=np.float32)
    if method not in ("minmax", "percentile"):
        raise ValueError(f"compute_qparams: method must be 'minmax' or 'percentile', got {method!r}")
    if not 50 < percentile <= 100:
        raise ValueError(f"compute_qparams: percentile must be in (50, 100], got {percentile}")
    if x.size == 0:
        raise ValueError("compute_qparams: x is empty")
    if axis is not None:
        if not -x.ndim <= axis < x.ndim:
            raise ValueError(f"compute_qparams: axis {axis} is out of range for shape {x.shape}")
        axis = axis % x.ndim
    # HINT: rows = x.reshape(1, -1), or np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
    # HINT: lo = np.minimum(lo, 0), hi = np.maximum(hi, 0); scale (hi - lo) / 255, 1 where it is 0
    # HINT: zero_point = QMIN - np.rint(lo / scale), clipped to [QMIN, QMAX]
    ### BEGIN SOLUTION
    rows = x.reshape(1, -1) if axis is None else np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
    if method == "minmax":
        lo, hi = rows.min(axis=1), rows.max(axis=1)  # (C,)
    else:
        lo, hi = np.percentile(rows, [100 - percentile, percentile], axis=1)  # (C,) each
    lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 0.0)  # 0 must be representable
    scale = ((hi - lo) / (QMAX - QMIN)).astype(np.float32)
    scale = np.where(scale > 0, scale, np.float32(1.0))  # an all-zero row
    zero_point = np.clip(QMIN - np.rint(lo / scale), QMIN, QMAX)
    ### END SOLUTION
    n = 1 if axis is None else x.shape[axis]
    if np.shape(scale) != (n,) or np.shape(zero_point) != (n,):
        raise ValueError(f"compute_qparams: {np.shape(scale)} scales and {np.shape(zero_point)} zero-points for x of "
                         f"shape {x.shape}, axis {axis}; expected shape ({n},): one per row of the flattened x")
    if axis is None:
        return QuantParams(scale.reshape(()), zero_point.reshape(()), None)
    return QuantParams(scale, zero_point, axis)


# %%
if __name__ == "__main__":
    qp = compute_qparams(np.array([-0.8, 0.0, 0.5, 1.75]))
    print(f"worked example: scale {float(qp.scale):.4f}, zero-point {int(qp.zero_point)}")

    w = np.array([[0.1, -0.05, 0.02, 0.04], [4.0, -3.0, 1.0, 0.5]], dtype=np.float32)
    for axis in (None, 0):
        qp = compute_qparams(w, axis=axis)
        print(f"axis={axis}: scales {np.round(qp.scale, 5)}, zero-points {qp.zero_point}")

    rng = np.random.default_rng(0)
    acts = np.append(rng.standard_normal(1000), 50.0).astype(np.float32)  # one outlier
    for method in ("minmax", "percentile"):
        qp = compute_qparams(acts, method=method, percentile=99.9)
        print(f"{method:10s}: scale {float(qp.scale):.4f} "
              f"(range {float(qp.scale) * (QMIN - int(qp.zero_point)):.2f} .. "
              f"{float(qp.scale) * (QMAX - int(qp.zero_point)):.2f})")


# %% nbgrader={"grade": true, "grade_id": "check-compute-qparams", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("15", "compute_qparams")


# %% [markdown]
# ## Quantize: floats to codes
#
# `quantize(x, qp)` applies $q = \operatorname{clip}(\operatorname{round}(x/s) + z, -128, 127)$ element by element
# and returns an `np.int8` array. With per-channel parameters the scale and zero-point of channel
# $c$ apply to every element whose index along `qp.axis` is $c$: `s, z = qp.along(x.ndim)` gives them
# in a shape that broadcasts (for `axis=0` of a $(4, 3)$ matrix, shape $(4, 1)$).
#
# Three details decide whether the codes are right (and a fourth how fast they come):
#
# - **round, then add $z$, then clip** - clip *after* adding the zero-point: the clip is on codes,
#   not on $x / s$;
# - **round half to even** (`np.rint`): $\operatorname{round}(2.5) = 2$, $\operatorname{round}(3.5) = 4$. It is what
#   `np.round`, PyTorch and most hardware do; it has no bias on average, where rounding halves up
#   would shift every tie the same way;
# - **convert last**: `astype(np.int8)` of a number outside $[-128, 127]$ *wraps around* ($128$
#   becomes $-128$) - silently. Clip first.
# - **stay in float32**: `z` is an int32 array, and NumPy promotes `float32 + int32` to float64 -
#   every later pass then moves twice the bytes (measured: 6 times slower for a $512 \times 128$
#   batch). Add `z.astype(np.float32)`; the sum of a rounded value and a zero-point is a small
#   integer, exact in float32.
#
# Worked example with $s = 0.5$, $z = 10$: $x = [0, 1, -1, 100, -100] \to [10, 12, 8, 127, -128]$; the
# last two saturate ($100/0.5 + 10 = 210$ and $-190$).
#
# Cost: one division, one rounding, one addition and one clip per element - a memory-bound pass
# that reads 4 bytes and writes 1 per element. It runs once per weight (ahead of time) but once
# per activation *every forward pass*, which is why the integer route of step 8 pays it each call.

# %% nbgrader={"grade": false, "grade_id": "quantize", "locked": false, "schema_version": 3, "solution": true, "task": false}
def quantize(x, qp: QuantParams) -> np.ndarray:
    """int8 codes of `x`: clip(round(x / scale) + zero_point, -128, 127), per tensor or per channel."""
    x = np.asarray(_array(x), dtype=np.float32)
    qp.check_shape(x.shape, "quantize")
    s, z = qp.along(x.ndim)
    # HINT: np.rint(x / s) + z (z as float32), then np.clip to [QMIN, QMAX], then .astype(np.int8)
    ### BEGIN SOLUTION
    q = np.clip(np.rint(x / s) + z.astype(np.float32), QMIN, QMAX).astype(np.int8)
    ### END SOLUTION
    return q


# %%
if __name__ == "__main__":
    qp = QuantParams(0.5, 10)
    print("codes of [0, 1, -1, 100, -100]:", quantize(np.array([0.0, 1, -1, 100, -100]), qp))
    qp = compute_qparams(np.array([-0.8, 0.0, 0.5, 1.75]))
    print("worked example:", quantize(np.array([-0.8, 0.0, 0.5, 1.75, 0.123]), qp))


# %% nbgrader={"grade": true, "grade_id": "check-quantize", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("15", "test_quantize_")


# %% [markdown]
# ## Dequantize: codes back to floats
#
# `dequantize(q, qp)` is $\hat x = s (q - z)$, returned as float32. Convert the codes to float32
# *before* subtracting: in int8, $q - z$ overflows ($127 - (-48) = 175$ does not fit). And keep it
# float32: the scale is float32, the zero-point int32, and NumPy promotes `float32 - int32` to
# float64 - twice the memory for nothing. Cast the zero-point too.
#
# **The round trip.** For $x$ inside the range, $|x - \hat x| \le s/2$: quantization is rounding to a
# grid of step $s$. The checks test this property on random data, per tensor and per channel. A
# useful number to keep in mind: the mean squared error of the grid is $s^2 / 12$, so the
# signal-to-quantization-noise ratio of a uniformly spread signal is about $6.02 \cdot 8 = 48$ dB -
# each bit buys 6 dB. For a Gaussian-looking weight matrix whose range is $\pm 4\sigma$, the
# relative rms error is $s / (\sqrt{12}\,\sigma) = 8 / (255 \sqrt{12}) \approx 0.9\%$.
#
# In this course a layer never dequantizes its weights on every call in the integer route (the
# arithmetic stays on codes); the float route of step 8 dequantizes them once and keeps the copy.

# %% nbgrader={"grade": false, "grade_id": "dequantize", "locked": false, "schema_version": 3, "solution": true, "task": false}
def dequantize(q, qp: QuantParams) -> np.ndarray:
    """float32 values of int8 codes: scale * (q - zero_point), per tensor or per channel."""
    q = np.asarray(_array(q))
    qp.check_shape(q.shape, "dequantize")
    s, z = qp.along(q.ndim)
    # HINT: (q.astype(np.float32) - z.astype(np.float32)) * s
    ### BEGIN SOLUTION
    x = (q.astype(np.float32) - z.astype(np.float32)) * s
    ### END SOLUTION
    return x


# %%
if __name__ == "__main__":
    x = np.array([-0.8, 0.0, 0.5, 1.75, 0.123], dtype=np.float32)
    qp = compute_qparams(x)
    back = dequantize(quantize(x, qp), qp)
    print("x          ", x)
    print("round trip ", back, " max error", float(np.abs(back - x).max()), "<= s/2 =", float(qp.scale) / 2)
    w = np.random.default_rng(1).standard_normal((64, 64)).astype(np.float32)
    w[0] *= 50  # one row of large weights
    for axis in (None, 0):
        qp = compute_qparams(w, axis=axis)
        err = np.abs(dequantize(quantize(w, qp), qp) - w)[1:]  # the ordinary rows
        print(f"axis={axis}: mean abs error of the ordinary rows {err.mean():.5f}")


# %% nbgrader={"grade": true, "grade_id": "check-dequantize", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("15", "dequantize")


# %% [markdown]
# ## A matrix multiply on integers
#
# An INT8 accelerator does not dequantize: it multiplies the codes. Write both operands as
# dequantized codes, $a_{ik} = s_a (qa_{ik} - z_a)$ and $b_{kj} = s_b (qb_{kj} - z_b)$; the scales factor
# out of the sum:
#
# $$(ab)_{ij} = s_a s_b \sum_{k=1}^{K} (qa_{ik} - z_a)(qb_{kj} - z_b).$$
#
# The sum is a sum of integer products - exact integer arithmetic, no rounding anywhere. Expanding
# the product separates what depends on both operands from what does not:
#
# $$\sum_k (qa_{ik} - z_a)(qb_{kj} - z_b) = \underbrace{\sum_k qa_{ik}\, qb_{kj}}_{qa\,@\,qb} - z_b \underbrace{\sum_k qa_{ik}}_{\text{row sums of } qa} - z_a \underbrace{\sum_k qb_{kj}}_{\text{column sums of } qb} + K z_a z_b .$$
#
# Why bother expanding: the big term is a product of the raw int8 codes, exactly what an int8
# dot-product instruction computes (x86 VNNI, ARM `sdot`, GPU tensor cores multiply 8-bit
# operands into 32-bit sums); the corrections are $O(MK + KN)$ next to its $O(MKN)$, and the
# column sums of a weight matrix can be computed once, ahead of time. When a zero-point is 0
# (symmetric weights, common in practice) its correction term vanishes.
#
# With per-row zero-points for $a$ ($z_a$ of shape $(M, 1)$) and per-column zero-points for $b$
# ($z_b$ of shape $(1, N)$) the formula is the same with broadcasting - and this is exactly where
# per-output-channel weight scales fit: the output column $j$ has its own $s_b, z_b$. A scale per
# *input* channel $k$ would sit inside the sum and could not be pulled out.
#
# **The accumulator.** Each product of two codes has magnitude at most $128 \cdot 128 = 2^{14}$, and
# the zero-point-corrected terms at most $255^2 = 65{,}025$. The sum of $K$ of them fits a signed
# 32-bit integer while $K \le (2^{31} - 1) / 65{,}025 = 33{,}025$ - every layer in this course
# (LeNet's largest $K$ is 400, the GPT's 512). Int8 itself is hopeless: the product of two codes
# already overflows it, and NumPy's `qa @ qb` on int8 arrays computes in int8 and wraps around
# *silently*. Convert to `np.int32` first; int32 overflow would wrap silently too, which is why
# `int_matmul` refuses $K > 33{,}025$. (An intermediate that wraps is harmless: two's-complement
# arithmetic is arithmetic modulo $2^{32}$, so only the final sum must fit.)
#
# Worked example: $qa = [[1, 2]]$ with $z_a = 1$, $qb = [[3], [-1]]$ with $z_b = -1$. Directly:
# $(1 - 1)(3 + 1) + (2 - 1)(-1 + 1) = 0$. Expanded: $qa @ qb = 3 - 2 = 1$; minus $z_b \cdot 3 = -3$;
# minus $z_a \cdot 2 = 2$; plus $K z_a z_b = 2 \cdot 1 \cdot (-1) = -2$: $1 + 3 - 2 - 2 = 0$.
#
# **What to write.** `int_matmul(qa, za, qb, zb)` returns $\sum_k (qa_{ik} - z_a)(qb_{kj} - z_b)$ as an
# `np.int32` array of shape $(M, N)$. The given code checks the dtypes and shapes and hands you
# `za` as an int32 column $(M, 1)$ or $(1, 1)$ and `zb` as an int32 row $(1, N)$ or $(1, 1)$. Use the
# expanded form with the int8 codes converted to int32 (`sum(..., dtype=np.int32)` for the sums).

# %% nbgrader={"grade": false, "grade_id": "int-matmul", "locked": false, "schema_version": 3, "solution": true, "task": false}
def int_matmul(qa, za, qb, zb) -> np.ndarray:
    """sum_k (qa[i, k] - za[i]) (qb[k, j] - zb[j]) in int32, exactly: qa (M, K) and qb (K, N) int8
    codes, za a scalar or one zero-point per row of qa, zb a scalar or one per column of qb."""
    qa, qb = np.asarray(qa), np.asarray(qb)
    if qa.dtype != np.int8 or qb.dtype != np.int8:
        raise TypeError(f"int_matmul: the operands must be int8 codes, got {qa.dtype} and {qb.dtype}")
    if qa.ndim != 2 or qb.ndim != 2 or qa.shape[1] != qb.shape[0]:
        raise ValueError(f"int_matmul: cannot multiply shapes {qa.shape} and {qb.shape}")
    (m, k), n = qa.shape, qb.shape[1]
    if k > MAX_K:
        raise ValueError(f"int_matmul: K = {k} products may overflow an int32 accumulator (at most {MAX_K})")
    za = np.asarray(za, dtype=np.int32).reshape(-1, 1)  # (M, 1) or (1, 1)
    zb = np.asarray(zb, dtype=np.int32).reshape(1, -1)  # (1, N) or (1, 1)
    if za.shape[0] not in (1, m) or zb.shape[1] not in (1, n):
        raise ValueError(f"int_matmul: zero-points of shapes {za.shape} and {zb.shape} do not fit "
                         f"({m}, {k}) @ ({k}, {n})")
    # HINT: a, b = qa.astype(np.int32), qb.astype(np.int32); acc = a @ b (M, N), then subtract
    # HINT: zb * (row sums of a), za * (column sums of b), and add k * za * zb
    ### BEGIN SOLUTION
    a, b = qa.astype(np.int32), qb.astype(np.int32)
    acc = a @ b  # (M, N): the int8 x int8 products, summed in int32
    acc -= a.sum(axis=1, keepdims=True, dtype=np.int32) * zb  # (M, 1) * (1, N)
    acc -= za * b.sum(axis=0, dtype=np.int32)  # (M, 1) * (N,)
    acc += np.int32(k) * za * zb
    ### END SOLUTION
    return acc


# %%
if __name__ == "__main__":
    print("worked example:", int_matmul(np.array([[1, 2]], np.int8), 1, np.array([[3], [-1]], np.int8), -1))
    rng = np.random.default_rng(0)
    qa = rng.integers(-128, 128, (4, 300)).astype(np.int8)
    qb = rng.integers(-128, 128, (300, 3)).astype(np.int8)
    acc = int_matmul(qa, 7, qb, -20)
    exact = (qa.astype(np.float64) - 7) @ (qb.astype(np.float64) + 20)  # float64 is exact here
    print("int32 result equals the exact sum:", np.array_equal(acc, exact), acc.dtype)
    print("the same product in int8 wraps around:", (qa[:1, :4] @ qb[:4, :1]).ravel(),
          "vs", (qa[:1, :4].astype(np.int32) @ qb[:4, :1].astype(np.int32)).ravel())


# %% nbgrader={"grade": true, "grade_id": "check-int-matmul", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("15", "int_matmul")


# %% [markdown]
# ## Requantisation, part 1: a fixed-point multiplier
#
# The int32 accumulator `acc` stands for the real number $s_a s_b \cdot acc$. A fully integer
# network (an int8 accelerator, TensorFlow Lite's int8 kernels, gemmlowp) does not go back to
# floats between layers: it turns `acc` straight into the next layer's int8 input, with that
# input's scale $s_o$ and zero-point $z_o$:
#
# $$q_o = z_o + \operatorname{round}\!\Big(\frac{s_a s_b}{s_o}\, acc\Big) = z_o + \operatorname{round}(M \cdot acc), \qquad M = \frac{s_a s_b}{s_o}.$$
#
# $M$ is a real number, typically far below 1 (e.g. $0.02 \cdot 0.005 / 0.05 = 0.002$), and hardware
# without a floating-point unit - or one that does not want to use it - writes it as an integer
# and a shift:
#
# $$M = m_0 \cdot 2^{-\text{shift}}, \qquad 2^{30} \le m_0 < 2^{31},$$
#
# a 31-bit **fixed-point** number: $m_0$ holds the 31 significant bits of $M$, and the shift says
# where the binary point is. `np.frexp` gives the pieces: $M = f \cdot 2^{e}$ with $0.5 \le f < 1$, so
# $m_0 = \operatorname{round}(f \cdot 2^{31})$ and $\text{shift} = 31 - e$. One catch: $f$ just below 1 can round up to
# $m_0 = 2^{31}$, which does not fit 31 bits - then use $m_0 = 2^{30}$ and one less shift (the
# same number).
#
# Worked example: $M = 0.002$. `np.frexp(0.002)` $= (0.512, -8)$, since $0.002 = 0.512 \cdot 2^{-8}$.
# So $m_0 = \operatorname{round}(0.512 \cdot 2^{31}) = 1{,}099{,}511{,}628$ and $\text{shift} = 39$; indeed
# $1{,}099{,}511{,}628 / 2^{39} = 0.0020000000004$, a relative error of $2 \cdot 10^{-10}$. The relative error
# of the fixed-point multiplier is never more than $2^{-31}$: far below the error of the int8
# codes themselves.
#
# **What to write.** `quantize_multiplier(m)` for an array (or number) `m` of positive
# multipliers returns `(m0, shift)`, two `np.int64` arrays of `m`'s shape. The given code refuses
# multipliers whose shift would fall outside $[1, 62]$ (the shifts `requantize` can do in int64).

# %% nbgrader={"grade": false, "grade_id": "quantize-multiplier", "locked": false, "schema_version": 3, "solution": true, "task": false}
def quantize_multiplier(m) -> tuple[np.ndarray, np.ndarray]:
    """A positive real multiplier as fixed point: m ~ m0 * 2**-shift with 2**30 <= m0 < 2**31.
    Returns (m0, shift), int64 arrays of m's shape."""
    m = np.asarray(m, dtype=np.float64)
    if not np.all(np.isfinite(m) & (m > 0)):
        raise ValueError(f"quantize_multiplier: multipliers must be positive and finite, got {m}")
    # HINT: frac, exp = np.frexp(m); m0 = np.rint(frac * 2**31); where m0 == 2**31: halve it, exp + 1
    # HINT: shift = 31 - exp
    ### BEGIN SOLUTION
    frac, exp = np.frexp(m)  # m = frac * 2**exp, 0.5 <= frac < 1
    m0 = np.rint(frac * 2.0**31).astype(np.int64)  # in [2**30, 2**31]
    carry = m0 == 2**31  # frac rounded up to 1.0: the same number as 2**30 * 2**(exp + 1 - 31)
    m0 = np.where(carry, 2**30, m0).astype(np.int64)
    shift = (31 - (exp + carry)).astype(np.int64)
    ### END SOLUTION
    if np.any(shift < 1) or np.any(shift > 62):
        raise ValueError(f"quantize_multiplier: multipliers {m} need shifts {shift}, outside [1, 62]")
    return m0, shift


# %%
if __name__ == "__main__":
    m0, shift = quantize_multiplier(0.002)
    print(f"0.002 = {int(m0)} * 2**-{int(shift)} = {int(m0) / 2 ** int(shift):.13f}")
    ms = np.array([0.75, 0.1, 1e-5, 0.9999999999])
    m0, shift = quantize_multiplier(ms)
    print("m0   ", m0, "\nshift", shift, "\nrelative error", (m0 / 2.0**shift - ms) / ms)


# %% nbgrader={"grade": true, "grade_id": "check-quantize-multiplier", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("15", "quantize_multiplier")


# %% [markdown]
# ## Requantisation, part 2: int32 to int8 in integer arithmetic
#
# With $M = m_0 \cdot 2^{-\text{shift}}$ the product $M \cdot acc$ is an integer multiplication
# followed by a right shift, and rounding to the nearest integer is "add half, then shift":
#
# $$\operatorname{round}(M \cdot acc) = \big(acc \cdot m_0 + 2^{\text{shift} - 1}\big) \gg \text{shift}.$$
#
# The shift `>>` of a signed integer is an *arithmetic* shift: it divides by $2^{\text{shift}}$ and
# rounds toward $-\infty$ (floor), for negative numbers too. Adding $2^{\text{shift}-1}$ (one half)
# first turns the floor into round-half-up: $\lfloor y + 1/2 \rfloor$. (This differs from `np.rint` only on
# exact ties, which gemmlowp breaks away from zero and we break upward; the checks use the
# same rule as you.) Then add the output zero-point, clip to $[-128, 127]$ and convert to int8.
#
# **Do it in int64.** $|acc| < 2^{31}$ and $m_0 < 2^{31}$, so $acc \cdot m_0 < 2^{62}$: it fits a signed
# 64-bit integer and overflows a 32-bit one. (Hardware does the same: ARM's `sqrdmulh` multiplies
# two int32 into a 64-bit intermediate and keeps its high half.) `m0`, `shift` and `zero_point` may
# be arrays - one multiplier per output channel - that broadcast against `acc` along its last axis.
#
# Worked example: $acc = 12{,}345$, $M = 0.002$ ($m_0 = 1{,}099{,}511{,}628$, shift 39), $z_o = -10$:
# $M \cdot acc = 24.69$, so the code is $-10 + 25 = 15$. In integers: $12{,}345 \cdot 1{,}099{,}511{,}628 =
# 13{,}573{,}471{,}047{,}660$; add $2^{38} = 274{,}877{,}906{,}944$ and shift right by 39 (divide by
# $549{,}755{,}813{,}888$, floor): $25$. The same code, with no float in sight.

# %% nbgrader={"grade": false, "grade_id": "requantize", "locked": false, "schema_version": 3, "solution": true, "task": false}
def requantize(acc, m0, shift, zero_point) -> np.ndarray:
    """int8 codes clip(zero_point + round(acc * m0 * 2**-shift), -128, 127), computed in int64
    (round half up: add 2**(shift - 1), then an arithmetic right shift)."""
    acc = np.asarray(acc)
    if acc.dtype.kind not in "iu":
        raise TypeError(f"requantize: acc must be an integer array, got {acc.dtype}")
    acc = acc.astype(np.int64)
    m0, shift = np.asarray(m0, dtype=np.int64), np.asarray(shift, dtype=np.int64)
    zero_point = np.asarray(zero_point, dtype=np.int64)
    # HINT: y = (acc * m0 + (1 << (shift - 1))) >> shift (np.left_shift / np.right_shift on int64)
    # HINT: then np.clip(y + zero_point, QMIN, QMAX).astype(np.int8)
    ### BEGIN SOLUTION
    half = np.left_shift(np.int64(1), shift - 1)
    y = np.right_shift(acc * m0 + half, shift)  # floor((acc * M) + 1/2), exactly
    q = np.clip(y + zero_point, QMIN, QMAX).astype(np.int8)
    ### END SOLUTION
    return q


# %%
if __name__ == "__main__":
    m0, shift = quantize_multiplier(0.002)
    print("worked example:", requantize(np.array([12345]), m0, shift, -10), "(float:", -10 + 12345 * 0.002, ")")
    acc = np.array([-20000, -251, -250, 0, 250, 251, 20000, 10**6], dtype=np.int32)
    print("acc           ", acc, "\nrequantized   ", requantize(acc, m0, shift, 0),
          "\nround(acc * M)", np.rint(acc * 0.002).astype(int), "(the last one saturates)")


# %% nbgrader={"grade": true, "grade_id": "check-requantize", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("15", "requantize")


# %% [markdown]
# ## The quantized matrix multiply
#
# Now the pieces make one function. `int8_matmul(qa, qpa, qb, qpb, out_qp=None)` multiplies
# quantized matrices `qa` (M, K) and `qb` (K, N):
#
# 1. `acc = int_matmul(qa, qpa.zero_point, qb, qpb.zero_point)` - exact, int32;
# 2. the combined scale of every output, $s_a s_b$: `qpa.scale` as a column (one per row of $a$, or
#    one for all) times `qpb.scale` as a row (one per column of $b$, or one), in float64;
# 3. without `out_qp`: **rescale** - return `(acc * scale).astype(np.float32)`, the real product;
# 4. with `out_qp` (per tensor): **requantise** - `quantize_multiplier(scale / out_qp.scale)`, then
#    `requantize(acc, m0, shift, out_qp.zero_point)`: int8 codes of the product in `out_qp`'s grid,
#    computed without a float between the input codes and the output codes (the multipliers are
#    computed once, ahead of time, in a real deployment).
#
# Per-channel parameters must lie on the *outer* axes: `qpa` per tensor or per row (`axis=0`),
# `qpb` per tensor or per column (`axis=1`); the given code refuses the inner axis $K$, where a
# scale cannot factor out of the sum.
#
# **Verified exact.** The checks compute the same integer math in float64 (every integer below
# $2^{53}$ is exact in float64, and these sums are far below) and demand the accumulator and the
# requantised codes be *equal*, not close; the rescaled float32 output must be the float32 rounding
# of the exact product of the two.
#
# FLOPs and bytes: the product is $2MKN$ integer operations, like a float matmul; the corrections
# add $O(MK + KN)$. The operands are a quarter of the float32 bytes - on hardware with int8 dot
# products that is where the speed-up comes from (2-4x on CPUs with VNNI, more on GPUs), since a
# matrix multiply at small batch is limited by the bytes it reads, not by arithmetic.

# %% nbgrader={"grade": false, "grade_id": "int8-matmul", "locked": false, "schema_version": 3, "solution": true, "task": false}
def int8_matmul(qa, qpa: QuantParams, qb, qpb: QuantParams, out_qp: QuantParams | None = None) -> np.ndarray:
    """The product of quantized matrices qa (M, K) and qb (K, N), computed on integers: float32
    (M, N) rescaled by the scales, or - with `out_qp` - int8 codes requantised into out_qp's grid."""
    qa, qb = np.asarray(qa), np.asarray(qb)
    if qpa.axis not in (None, 0, -2) or qpb.axis not in (None, 1, -1):
        raise ValueError(f"int8_matmul: scales must be per tensor, per row of a (axis 0) or per column of b "
                         f"(axis 1), not along K (got axes {qpa.axis} and {qpb.axis})")
    qpa.check_shape(qa.shape, "int8_matmul")
    qpb.check_shape(qb.shape, "int8_matmul")
    if out_qp is not None and out_qp.axis is not None:
        raise ValueError("int8_matmul: out_qp must be per tensor")
    # HINT: acc from int_matmul; scale = qpa.scale.reshape(-1, 1).astype(np.float64) * qpb.scale.reshape(1, -1)
    # HINT: no out_qp: (acc * scale).astype(np.float32); else quantize_multiplier + requantize
    ### BEGIN SOLUTION
    acc = int_matmul(qa, qpa.zero_point, qb, qpb.zero_point)  # (M, N) int32, exact
    scale = qpa.scale.reshape(-1, 1).astype(np.float64) * qpb.scale.reshape(1, -1)  # (M|1, N|1)
    if out_qp is None:
        return (acc * scale).astype(np.float32)
    m0, shift = quantize_multiplier(scale / np.float64(out_qp.scale))
    return requantize(acc, m0, shift, out_qp.zero_point)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 64)).astype(np.float32)
    b = rng.standard_normal((64, 5)).astype(np.float32)
    qpa, qpb = compute_qparams(a), compute_qparams(b, axis=1)
    y = int8_matmul(quantize(a, qpa), qpa, quantize(b, qpb), qpb)
    print("float32 a @ b   ", (a @ b)[0])
    print("int8 a @ b      ", y[0], f" max error {np.abs(y - a @ b).max():.4f}")
    out_qp = compute_qparams(a @ b)
    codes = int8_matmul(quantize(a, qpa), qpa, quantize(b, qpb), qpb, out_qp)
    print("requantised     ", codes[0], "->", dequantize(codes, out_qp)[0])


# %% nbgrader={"grade": true, "grade_id": "check-int8-matmul", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("15", "int8_matmul")


# %% [markdown]
# ## Measured: NumPy has no int8 matrix kernel
#
# Time it yourself. The cell below multiplies the same matrices five ways: float32 (BLAS
# `sgemm`, the route every tinytorch layer takes), float64 (BLAS `dgemm`), int32 codes (what
# `int_matmul` does), int8 codes (wrong: it overflows - timed only to show it is not faster), and
# the whole `int8_matmul`. NumPy hands float matrix products to an optimised BLAS library -
# blocked for the caches, vectorised with SIMD, multithreaded. For integer dtypes there is no BLAS
# routine, and NumPy falls back to a plain triple loop in C with none of that. On this project's
# machines integer codes multiplied in NumPy ran **33 to 62 times slower** than float32 BLAS; see
# what your machine says.
#
# So on NumPy, INT8 buys **memory**, not speed: a model four times smaller on disk and in memory,
# four times fewer bytes to download and to move. The integer route exists because it is *the*
# arithmetic of int8 hardware - what a phone's NPU or a GPU's tensor cores run, bit for bit - and
# it is the reference the fast route must agree with. The **float route** exists for speed here:
# the same dequantized numbers, multiplied by float32 BLAS (step 8); the only difference from the
# integer route is float32's rounding of the products and sums, at $10^{-7}$ relative - far below
# the quantization error itself.
#
# An aside the last line of the cell shows: float32 BLAS applied to the *raw codes* is exact as
# long as every partial sum stays below $2^{24}$ (float32 holds every integer up to there), that is
# for $K \le 2^{24} / 2^{14} = 1{,}024$. A NumPy framework could get bit-exact integer results at
# BLAS speed that way - the zero-point corrections are cheap - but it is float hardware doing the
# work, and beyond $K = 1{,}024$ it silently stops being exact.

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
    m, k, n = 128, 512, 256  # a batch of 128 through a 512 -> 256 layer
    qa = rng.integers(-128, 128, (m, k)).astype(np.int8)
    qb = rng.integers(-128, 128, (k, n)).astype(np.int8)
    fa, fb = qa.astype(np.float32), qb.astype(np.float32)
    da, db = qa.astype(np.float64), qb.astype(np.float64)
    ia, ib = qa.astype(np.int32), qb.astype(np.int32)
    pa, pb = QuantParams(0.02, 3), QuantParams(0.01, -5)
    t32 = best_ms(lambda: fa @ fb)
    rows = [("float32 BLAS (sgemm)", t32), ("float64 BLAS (dgemm)", best_ms(lambda: da @ db)),
            ("int32 codes (no BLAS)", best_ms(lambda: ia @ ib)),
            ("int8 codes (overflows!)", best_ms(lambda: qa @ qb)),
            ("int8_matmul (yours)", best_ms(lambda: int8_matmul(qa, pa, qb, pb)))]
    print(f"({m}, {k}) @ ({k}, {n}): {2 * m * k * n / 1e6:.0f} MFLOP")
    for name, ms in rows:
        print(f"{name:26s} {ms:8.2f} ms  {ms / t32:6.1f}x float32")
    print(f"float32 BLAS on the raw codes equals the int32 result: {np.array_equal(fa @ fb, ia @ ib)} "
          f"(every partial sum below K * 128^2 = {k * 128 ** 2:,} < 2^24 = {2 ** 24:,})")
    print(f"bytes of the operands: float32 {fa.nbytes + fb.nbytes:,}, int8 {qa.nbytes + qb.nbytes:,}")


# %% [markdown]
# ## A quantized Linear layer: int8 weights, int32 bias, two routes
#
# `QuantizedLinear(linear, input_qp, mode="integer")` replaces a trained `Linear` ($y = x W^\top + b$,
# $W$ of shape $(C_{out}, C_{in})$). What it stores, as buffers (so they are in the `state_dict` and
# in checkpoints):
#
# - `weight_q`: the int8 codes of $W$, **per output channel** - `compute_qparams(W, axis=0)`, one
#   scale $s_w[c]$ and zero-point $z_w[c]$ per row - as `weight_scale` and `weight_zero_point`;
# - `input_scale`, `input_zero_point`: the per-tensor parameters of the layer's input, found by
#   calibration (step 10) and passed in as `input_qp`;
# - `bias_q`: the bias as **int32**, on the grid of the accumulator: the accumulator of output $c$
#   stands for $s_x s_w[c] \cdot acc$, so the bias is added to it as $\operatorname{round}(b_c / (s_x s_w[c]))$ -
#   zero-point 0, and 32 bits because that grid is fine: $s_x s_w \approx 10^{-4}$ and an int8 bias
#   would saturate at $0.0127$. (`None` when the Linear has no bias.)
#
# Worked example: $s_x = 0.05$, $s_w[c] = 0.002$, $b_c = 0.3$: the bias grid is $10^{-4}$ and
# $\text{bias\_q}[c] = \operatorname{round}(0.3 / 10^{-4}) = 3000$.
#
# The forward pass flattens the input to $(N, C_{in})$ (a GPT feeds $(B, T, C)$), quantizes it with
# the input parameters - `qx = quantize(x, input_qp)` - and then takes one of two routes:
#
# - `mode="integer"`: `acc = int_matmul(qx, z_x, weight_q.T, z_w)` (the weight's per-row
#   parameters are per-column parameters of $W^\top$), plus `bias_q`, then rescaled:
#   $y = (acc + \text{bias\_q}) \cdot s_x s_w$ as float32. Integer arithmetic all the way to one multiply
#   per output.
# - `mode="float"`: $y = \text{dequantize}(qx) \, \hat W^\top + \hat b$ with $\hat W$ the dequantized weight and
#   $\hat b = \text{bias\_q} \cdot s_x s_w$ the dequantized bias - both made once by the given
#   `self._float_params()` and kept for later calls. The **same numbers**, multiplied by float32
#   BLAS: fast on NumPy, and equal to the integer route up to float32 rounding.
#
# Both routes quantize the *input*, so both give the accuracy an int8 accelerator would. The
# float route's price is memory at run time: its float32 copy of $W$ is as large as the original
# (it is not part of the stored model, and the integer route never makes it) - and time: the
# quantize-dequantize passes over every layer's input are extra elementwise work. Measured here
# on LeNet-5 (a loaded 2-core machine): 241 µs per image at batch 1 against 148 µs for the
# float32 model, 17.6 ms against 14.4 ms at batch 128; the integer route took 631 µs at batch 1. The output is a
# new `Tensor` with no gradient: this is **post-training** quantization, for inference. (Training
# through quantization - quantization-aware training - passes gradients straight through the
# rounding; it is beyond this module.)
#
# `forward(x, mode=None)` uses `self.mode` unless a mode is given.

# %% nbgrader={"grade": false, "grade_id": "quantized-linear", "locked": false, "schema_version": 3, "solution": true, "task": false}
class QuantizedLinear(Module):
    """An INT8 Linear: int8 weight per output channel, int32 bias, per-tensor input parameters.

    QuantizedLinear(linear, input_qp, mode="integer"); forward(x, mode=None) with mode "integer"
    (int8 x int8 -> int32, exact) or "float" (the same dequantized numbers through float32 BLAS).
    """

    def __init__(self, linear: Linear, input_qp: QuantParams, mode: str = "integer"):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"QuantizedLinear: mode must be one of {MODES}, got {mode!r}")
        if input_qp.axis is not None:
            raise ValueError("QuantizedLinear: the input parameters must be per tensor (axis None)")
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.mode = mode
        self._float = None  # the float route's dequantized weight and bias, made on first use
        w = linear.weight.data  # (out, in)
        bias = None if linear.bias is None else linear.bias.data  # (out,)
        # HINT: wqp = compute_qparams(w, axis=0); register_buffer "weight_q", "weight_scale",
        # HINT: "weight_zero_point", "input_scale", "input_zero_point", "bias_q" (None without bias);
        # HINT: bias_q = np.rint(bias / (s_x * s_w)) as int32, s_x * s_w computed in float64
        ### BEGIN SOLUTION
        wqp = compute_qparams(w, axis=0)  # one (scale, zero-point) per output row
        self.register_buffer("weight_q", quantize(w, wqp))  # (out, in) int8
        self.register_buffer("weight_scale", wqp.scale)  # (out,) float32
        self.register_buffer("weight_zero_point", wqp.zero_point)  # (out,) int32
        self.register_buffer("input_scale", input_qp.scale)  # () float32
        self.register_buffer("input_zero_point", input_qp.zero_point)  # () int32
        if bias is None:
            self.bias_q = None
        else:
            grid = np.float64(input_qp.scale) * wqp.scale.astype(np.float64)  # (out,)
            limit = np.iinfo(np.int32)
            self.register_buffer("bias_q", np.clip(np.rint(bias / grid), limit.min, limit.max).astype(np.int32))
        ### END SOLUTION

    @property
    def weight_qp(self) -> QuantParams:
        """The weight's per-output-channel QuantParams (made once: views of the buffers)."""
        qp = vars(self).get("_weight_qp")
        if qp is None:
            qp = self._weight_qp = QuantParams(self.weight_scale.data, self.weight_zero_point.data, axis=0)
        return qp

    @property
    def input_qp(self) -> QuantParams:
        """The input's per-tensor QuantParams (made once: views of the buffers)."""
        qp = vars(self).get("_input_qp")
        if qp is None:
            qp = self._input_qp = QuantParams(self.input_scale.data, self.input_zero_point.data)
        return qp

    def _float_params(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The float route's float32 weight (out, in) and bias (out,) or None: dequantized once and
        kept (run-time memory, not part of the stored model)."""
        if self._float is None:
            w = dequantize(self.weight_q.data, self.weight_qp)
            b = None
            if self.bias_q is not None:
                grid = np.float64(self.input_scale.data) * self.weight_scale.data.astype(np.float64)
                b = (self.bias_q.data * grid).astype(np.float32)
            self._float = (w, b)
        return self._float

    def forward(self, x, mode: str | None = None) -> Tensor:
        mode = self.mode if mode is None else mode
        if mode not in MODES:
            raise ValueError(f"QuantizedLinear.forward: mode must be one of {MODES}, got {mode!r}")
        xd = np.asarray(_array(x), dtype=np.float32)
        if xd.ndim == 0 or xd.shape[-1] != self.in_features:
            raise ValueError(f"QuantizedLinear.forward: expected an input of shape (..., {self.in_features}), "
                             f"got {xd.shape}")
        out_shape = (self.out_features,)
        if self.weight_q.shape != (self.out_features, self.in_features) or self.weight_scale.shape != out_shape \
                or self.weight_zero_point.shape != out_shape:
            raise ValueError(f"QuantizedLinear.forward: stored weight codes {self.weight_q.shape}, scales "
                             f"{self.weight_scale.shape} and zero-points {self.weight_zero_point.shape}; expected "
                             f"{(self.out_features, self.in_features)} and one per output channel {out_shape}")
        lead = xd.shape[:-1]
        x2 = xd.reshape(-1, self.in_features)  # (N, in)
        # HINT: qx = quantize(x2, self.input_qp); integer: int_matmul(qx, z_x, weight_q.T, z_w) + bias_q,
        # HINT: times s_x * s_w (float64), as float32; float: w, b = self._float_params(), then
        # HINT: dequantize(qx, ...) @ w.T (+ b)
        ### BEGIN SOLUTION
        iqp = self.input_qp
        qx = quantize(x2, iqp)  # (N, in) int8
        if mode == "integer":
            acc = int_matmul(qx, iqp.zero_point, self.weight_q.data.T, self.weight_zero_point.data)  # (N, out)
            if self.bias_q is not None:
                acc += self.bias_q.data
            grid = np.float64(iqp.scale) * self.weight_scale.data.astype(np.float64)  # (out,) s_x * s_w
            y = (acc * grid).astype(np.float32)
        else:
            w, b = self._float_params()
            y = dequantize(qx, iqp) @ w.T  # (N, in) @ (in, out): float32 BLAS
            if b is not None:
                y += b
        ### END SOLUTION
        return Tensor(y.reshape(*lead, self.out_features))

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias_q is not None}, mode={self.mode!r}")


# %%
if __name__ == "__main__":
    from tinytorch.tensor import manual_seed

    manual_seed(0)
    layer = Linear(64, 8)
    x = Tensor(np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32))
    qlayer = QuantizedLinear(layer, compute_qparams(x))
    print(qlayer)
    print("codes", qlayer.weight_q.data.dtype, qlayer.weight_q.shape, " bias", qlayer.bias_q.data.dtype)
    y, yi, yf = layer(x).data, qlayer(x).data, qlayer(x, mode="float").data
    print(f"float32 Linear vs integer route: max error {np.abs(yi - y).max():.4f} (outputs ~{np.abs(y).mean():.2f})")
    print(f"integer route vs float route:    max difference {np.abs(yi - yf).max():.2e}")


# %% nbgrader={"grade": true, "grade_id": "check-quantized-linear", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("15", "QuantizedLinear")


# %% [markdown]
# ## Given: QuantizedConv2d, built on your functions
#
# A convolution is a matrix multiply after im2col (module 09): every receptive field becomes one
# row of a patch matrix $(N H_{out} W_{out},\ k_h k_w C_{in})$, and the weight becomes a
# $(k_h k_w C_{in},\ C_{out})$ matrix. So the quantized convolution below is your `QuantizedLinear`
# in disguise: per-output-channel int8 filters (`compute_qparams(W, axis=0)` reduces over
# $C_{in}, k_h, k_w$), an int32 bias, the input quantized per tensor, and `int_matmul` on the
# patch matrix of the *codes* - an int8 patch matrix is a quarter of the float32 one, and im2col's
# memory was the cost that mattered in module 09.
#
# One detail is easy to get wrong: **padding**. The zero padding of a convolution means the real
# number 0, whose code is the input's zero-point $z_x$ - not the code 0, which stands for
# $-s_x z_x$. Padding the codes with 0 would add a border of nonzero values around every image.
# The integer route pads with $z_x$; the float route pads the dequantized input with 0.0 - the same
# thing - and multiplies by float32 BLAS. It builds its own patch matrix (the same
# `sliding_window_view` trick as module 09's im2col), so it needs nothing from module 09 - but
# `quantize_model` replaces a module 09 `Conv2d` with it when the model has one.

# %%
def _pair(v) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _pad(xl: np.ndarray, ph: int, pw: int, value) -> np.ndarray:
    """A channels-last batch (N, H, W, C) padded spatially with `value` (no copy without padding)."""
    if ph == 0 and pw == 0:
        return xl
    n, h, w, c = xl.shape
    out = np.full((n, h + 2 * ph, w + 2 * pw, c), value, dtype=xl.dtype)
    out[:, ph:ph + h, pw:pw + w] = xl
    return out


def _patches(xl: np.ndarray, kh: int, kw: int, sh: int, sw: int) -> tuple[np.ndarray, int, int]:
    """Channels-last padded images (N, Hp, Wp, C), any dtype -> (patches (N Ho Wo, kh kw C), Ho, Wo)."""
    n, c = xl.shape[0], xl.shape[3]
    win = sliding_window_view(xl, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]  # (N, Ho, Wo, C, kh, kw)
    ho, wo = win.shape[1], win.shape[2]
    return win.transpose(0, 1, 2, 4, 5, 3).reshape(n * ho * wo, kh * kw * c), ho, wo


class QuantizedConv2d(Module):
    """An INT8 Conv2d: int8 filters per output channel, int32 bias, per-tensor input parameters.

    QuantizedConv2d(conv, input_qp, mode="integer") for a Conv2d-like `conv` (weight (O, C, kh, kw),
    bias (O,) or None, stride, padding); forward(x, mode=None) on (N, C, H, W) float input.
    """

    def __init__(self, conv, input_qp: QuantParams, mode: str = "integer"):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"QuantizedConv2d: mode must be one of {MODES}, got {mode!r}")
        if input_qp.axis is not None:
            raise ValueError("QuantizedConv2d: the input parameters must be per tensor (axis None)")
        w = conv.weight.data  # (O, C, kh, kw)
        self.out_channels, self.in_channels, kh, kw = w.shape
        self.kernel_size, self.stride, self.padding = (kh, kw), _pair(conv.stride), _pair(conv.padding)
        self.mode = mode
        self._float = None  # the float route's (weight matrix, bias), made on first use
        wqp = compute_qparams(w, axis=0)  # one (scale, zero-point) per filter
        self.register_buffer("weight_q", quantize(w, wqp))
        self.register_buffer("weight_scale", wqp.scale)
        self.register_buffer("weight_zero_point", wqp.zero_point)
        self.register_buffer("input_scale", input_qp.scale)
        self.register_buffer("input_zero_point", input_qp.zero_point)
        self.bias_q = None
        if conv.bias is not None:
            grid = np.float64(input_qp.scale) * wqp.scale.astype(np.float64)
            self.register_buffer("bias_q", np.rint(conv.bias.data / grid).astype(np.int32))

    weight_qp = QuantizedLinear.weight_qp
    input_qp = QuantizedLinear.input_qp

    def _matrix(self, w: np.ndarray) -> np.ndarray:
        """(O, C, kh, kw) -> (kh kw C, O), rows in the patches' (i, j, c) order."""
        return w.transpose(2, 3, 1, 0).reshape(-1, self.out_channels)

    def forward(self, x, mode: str | None = None) -> Tensor:
        mode = self.mode if mode is None else mode
        if mode not in MODES:
            raise ValueError(f"QuantizedConv2d.forward: mode must be one of {MODES}, got {mode!r}")
        xd = np.asarray(_array(x), dtype=np.float32)
        if xd.ndim != 4 or xd.shape[1] != self.in_channels:
            raise ValueError(f"QuantizedConv2d.forward: expected (N, {self.in_channels}, H, W), got {xd.shape}")
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        n = xd.shape[0]
        iqp = self.input_qp
        qx = quantize(xd, iqp).transpose(0, 2, 3, 1)  # (N, H, W, C) int8 codes
        grid = np.float64(iqp.scale) * self.weight_scale.data.astype(np.float64)  # (O,)
        if mode == "integer":
            xp = _pad(qx, ph, pw, int(iqp.zero_point))  # the real 0 is the code z_x
            cols, ho, wo = _patches(xp, kh, kw, sh, sw)  # (N Ho Wo, kh kw C) int8
            acc = int_matmul(cols, iqp.zero_point, self._matrix(self.weight_q.data), self.weight_zero_point.data)
            if self.bias_q is not None:
                acc += self.bias_q.data
            y = (acc * grid).astype(np.float32)  # (N Ho Wo, O)
        else:
            if self._float is None:
                b = None if self.bias_q is None else (self.bias_q.data * grid).astype(np.float32)
                self._float = (self._matrix(dequantize(self.weight_q.data, self.weight_qp)), b)
            wmat, b = self._float
            xp = _pad(dequantize(qx, iqp), ph, pw, 0.0)
            cols, ho, wo = _patches(xp, kh, kw, sh, sw)  # (N Ho Wo, kh kw C) float32
            y = cols @ wmat
            if b is not None:
                y += b
        return Tensor(y.reshape(n, ho, wo, self.out_channels).transpose(0, 3, 1, 2))  # (N, O, Ho, Wo)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, mode={self.mode!r}")


# %%
if __name__ == "__main__":
    class TinyConv(Module):  # the attributes QuantizedConv2d reads from a Conv2d
        def __init__(self, w, b, stride, padding):
            super().__init__()
            self.weight, self.bias, self.stride, self.padding = Tensor(w), Tensor(b), stride, padding

    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.3
    conv = TinyConv(w, np.zeros(4, np.float32), 1, 1)
    x = rng.uniform(0.5, 1.5, (2, 3, 6, 6)).astype(np.float32)  # all positive: z_x = -128
    iqp = compute_qparams(x)
    qconv = QuantizedConv2d(conv, iqp)
    yi, yf = qconv(x).data, qconv(x, mode="float").data
    print("input zero-point", int(iqp.zero_point), "| output", yi.shape, f"| routes differ by {np.abs(yi - yf).max():.1e}")
    print("a corner output with the right padding:", yi[0, 0, 0, 0].round(3),
          "| the integer route agrees with the float route, which pads with 0.0")


# %% nbgrader={"grade": true, "grade_id": "check-quantized-conv2d", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("15", "QuantizedConv2d")


# %% [markdown]
# ## Post-training quantization of a whole model
#
# `quantize_model(model, calibration_loader, method="minmax", percentile=99.99, mode="integer")`
# turns a trained float model into an INT8 one, the way PyTorch's `prepare` / `convert` and
# TensorFlow Lite's converter do:
#
# 1. **copy** the model (`copy.deepcopy`), so the float original is kept for comparison - the
#    milestone benchmarks both in one run;
# 2. **observe**: replace every `Linear` (and module 09's `Conv2d`) with an `_Observer` that records
#    every input it sees and then calls the float layer (the given helpers below find the layers
#    and swap them: `_quantizable(model)` lists `(parent, name, layer)`, `_set_child(parent, name,
#    new)` swaps one);
# 3. **calibrate**: put the copy in eval mode (dropout off, batch norm on its running statistics)
#    and run it under `no_grad` over the calibration loader - each batch is `x` or `(x, y)`; only
#    `x` is used, labels play no part in calibration;
# 4. **convert**: replace each observer by `QuantizedLinear(layer, qp, mode)` (or
#    `QuantizedConv2d`), with `qp = compute_qparams(observer.values(), method=..., percentile=...)` -
#    the per-tensor range of everything that layer saw.
#
# During calibration every layer sees the *float* activations of the layers before it, not the
# quantized ones: the ranges are those of the trained model. The calibration set should look like
# the data the model will serve (a few hundred training examples are typical) and must stay
# fixed: a different set gives different scales, and a benchmark whose calibration changes from
# run to run is not reproducible. What is *not* quantized stays float: activation functions,
# pooling, layer norm, embeddings (a GPT's embedding table stays float32; its tied output head is
# quantized as a separate int8 copy).
#
# Cost: one forward pass over the calibration set, plus the memory of the recorded inputs (for
# percentile calibration every value is needed - see step 1). Nothing is trained.

# %%
class _Observer(Module):
    """Stands in for a layer during calibration: records its inputs, then runs the float layer."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer
        self.seen: list[np.ndarray] = []

    def forward(self, x):
        self.seen.append(np.array(_array(x), dtype=np.float32).ravel())  # a copy of every input
        return self.layer(x)

    def values(self) -> np.ndarray:
        if not self.seen:
            raise ValueError(f"quantize_model: a {type(self.layer).__name__} saw no input during calibration "
                             "(is the calibration loader empty, or is the layer unused?)")
        return np.concatenate(self.seen)


def _is_conv2d(layer) -> bool:
    """A module 09 Conv2d (only a model built with tinytorch.convolutions can hold one)."""
    conv = sys.modules.get("tinytorch.convolutions")
    return conv is not None and isinstance(layer, conv.Conv2d)


def _quantizable(model) -> list[tuple[Module, str, Module]]:
    """(parent, attribute name, layer) for every Linear and Conv2d below `model`, depth first."""
    found = []
    for _, module in model.named_modules():
        if isinstance(module, Module):
            for name, child in module.named_children():
                if isinstance(child, Linear) or _is_conv2d(child):
                    found.append((module, name, child))
    return found


def _set_child(parent: Module, name: str, new) -> None:
    """Put `new` where `parent`'s child `name` was (a Sequential's children are its list items)."""
    if isinstance(parent, Sequential):
        parent._layers[int(name)] = new
    else:
        setattr(parent, name, new)


def _batches(calibration_loader):
    """The inputs of a loader of `x` or `(x, y, ...)` batches, as Tensors."""
    for batch in calibration_loader:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        yield x if isinstance(x, Tensor) else Tensor(np.asarray(x))


# %% [markdown]
# **What to write.** The body of `quantize_model`, steps 2-4: observers in, one calibration pass
# over `_batches(calibration_loader)` (in eval mode, under `no_grad()`), observers out and quantized
# layers in. The copy and the checks of the arguments are given.

# %% nbgrader={"grade": false, "grade_id": "quantize-model", "locked": false, "schema_version": 3, "solution": true, "task": false}
def quantize_model(model, calibration_loader, method: str = "minmax", percentile: float = 99.99,
                   mode: str = "integer"):
    """Post-training INT8 quantization: a copy of `model` whose Linear (and Conv2d) layers are
    quantized, each with input parameters calibrated on `calibration_loader` (batches of x or
    (x, y)). The original model is not changed; the copy is returned in eval mode."""
    if method not in ("minmax", "percentile"):
        raise ValueError(f"quantize_model: method must be 'minmax' or 'percentile', got {method!r}")
    if mode not in MODES:
        raise ValueError(f"quantize_model: mode must be one of {MODES}, got {mode!r}")
    qmodel = copy.deepcopy(model)
    layers = _quantizable(qmodel)
    if not layers:
        raise ValueError(f"quantize_model: {type(model).__name__} has no Linear or Conv2d layer to quantize")
    # HINT: observers = [_Observer(layer) ...], put in with _set_child; qmodel.eval(); with no_grad():
    # HINT: run qmodel on every x of _batches(calibration_loader); then for each observer:
    # HINT: qp = compute_qparams(obs.values(), method=method, percentile=percentile) and
    # HINT: _set_child(parent, name, (QuantizedConv2d if _is_conv2d(layer) else QuantizedLinear)(layer, qp, mode))
    ### BEGIN SOLUTION
    observers = []
    for parent, name, layer in layers:
        obs = _Observer(layer)
        _set_child(parent, name, obs)
        observers.append((parent, name, obs))
    qmodel.eval()
    with no_grad():
        for x in _batches(calibration_loader):
            qmodel(x)
    for parent, name, obs in observers:
        qp = compute_qparams(obs.values(), method=method, percentile=percentile)
        cls = QuantizedConv2d if _is_conv2d(obs.layer) else QuantizedLinear
        _set_child(parent, name, cls(obs.layer, qp, mode))
    ### END SOLUTION
    return qmodel.eval()  # (the new quantized layers too)


def set_mode(model, mode: str):
    """Switch every quantized layer of `model` to the "integer" or the "float" route; returns model."""
    if mode not in MODES:
        raise ValueError(f"set_mode: mode must be one of {MODES}, got {mode!r}")
    for _, module in model.named_modules():
        if isinstance(module, (QuantizedLinear, QuantizedConv2d)):
            module.mode = mode
    return model


# %%
if __name__ == "__main__":
    from tinytorch.activations import ReLU
    from tinytorch.tensor import manual_seed

    manual_seed(0)
    net = Sequential(Linear(16, 32), ReLU(), Linear(32, 4))
    calib = [np.random.default_rng(i).standard_normal((8, 16)).astype(np.float32) for i in range(4)]
    qnet = quantize_model(net, calib)
    print(qnet)
    x = Tensor(np.random.default_rng(9).standard_normal((3, 16)).astype(np.float32))
    print("float ", net(x).data[0].round(3), "\nint8  ", qnet(x).data[0].round(3))
    print("the original is untouched:", type(net[0]).__name__)


# %% nbgrader={"grade": true, "grade_id": "check-quantize-model", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("15", "quantize_model")


# %% [markdown]
# ## The stored size of a model
#
# `model_size_bytes(model)` is what the model costs to store: the bytes of every array in its
# `state_dict` - parameters and buffers - at their own dtype: a float32 weight 4 bytes per
# number, an int8 code 1, an int32 bias 4. A parameter shared by two layers (a GPT's tied
# embedding and output head) is in the state dict once, and counts once. The float route's
# dequantized copy is not in the state dict: it is run-time memory, not stored size. (Module 14's
# `memory_bytes` counts what training holds in memory - gradients and optimizer state too; this
# is the size of the file you ship.)
#
# Worked example: `Linear(400, 120)` stores $48{,}000 + 120 = 48{,}120$ float32 numbers, 192,480
# bytes. Quantized: 48,000 int8 codes (48,000 bytes), 120 int32 biases (480), 120 float32 scales and
# 120 int32 zero-points (960), one input scale and zero-point (8): 49,448 bytes, 3.89 times smaller.
# The ratio stays below 4 because the biases stay 32-bit and every channel carries its scale
# and zero-point - that overhead is why a "4x smaller" target is out of reach for INT8 alone.
# Checkpoints confirm it: `save_checkpoint` (module 08) writes the same arrays with NumPy's
# `.npz` format, a file a few hundred bytes larger per array (each array's header and zip entry).

# %% nbgrader={"grade": false, "grade_id": "model-size-bytes", "locked": false, "schema_version": 3, "solution": true, "task": false}
def model_size_bytes(model) -> int:
    """Stored size: the bytes of every array of model.state_dict() (int8 counts 1 byte per number)."""
    # HINT: sum of np.asarray(a).nbytes over model.state_dict().values()
    ### BEGIN SOLUTION
    return int(sum(np.asarray(a).nbytes for a in model.state_dict().values()))
    ### END SOLUTION


# %%
if __name__ == "__main__":
    layer = Linear(400, 120)
    qlayer = QuantizedLinear(layer, QuantParams(0.05, -128))
    print(f"Linear(400, 120): float32 {model_size_bytes(layer):,} bytes, int8 {model_size_bytes(qlayer):,} "
          f"bytes ({model_size_bytes(layer) / model_size_bytes(qlayer):.2f}x smaller)")


# %% nbgrader={"grade": true, "grade_id": "check-model-size-bytes", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("15", "model_size_bytes")


# %% [markdown]
# ## Measured: size, accuracy and time of a quantized model
#
# The cell below trains a small classifier (an MLP, $32 \to 128 \to 64 \to 10$, on ten Gaussian
# clusters - synthetic, so that it runs in seconds anywhere), then quantizes it with a fixed
# calibration set of 256 *training* examples and measures, on 2,000 held-out test examples:
# accuracy of the float model and of the INT8 models (min-max and percentile calibration), the
# agreement of the integer and float routes, the stored size (and the size of the checkpoint file
# on disk), and the time of one batch through each route. Milestone 06 does the same on LeNet-5
# and MNIST, and on your GPT.
#
# What to look for: accuracy within a fraction of a percent of float32; a stored size about 3.4
# times smaller (in layers this small the per-channel scales and the 32-bit biases weigh more:
# LeNet-5 gets 3.84x); the two routes giving the same predictions - and the integer route tens to
# hundreds of times slower than the float route *on NumPy*, because its matrix multiply has no
# BLAS behind it. The float route itself is slower than the float32 model by the quantize and
# dequantize passes over every layer's input: in layers this narrow they cost more than the
# matrix multiplies.

# %%
if __name__ == "__main__":
    import os
    import tempfile
    import time

    from tinytorch.activations import ReLU
    from tinytorch.losses import CrossEntropyLoss
    from tinytorch.optimizers import Adam
    from tinytorch.tensor import manual_seed
    from tinytorch.training import save_checkpoint

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((10, 32)).astype(np.float32) * 0.6  # overlapping clusters

    def make(n, seed):
        g = np.random.default_rng(seed)
        y = g.integers(0, 10, n)
        return (centres[y] + g.standard_normal((n, 32)).astype(np.float32)), y

    x_train, y_train = make(4000, 1)
    x_test, y_test = make(2000, 2)
    manual_seed(0)
    model = Sequential(Linear(32, 128), ReLU(), Linear(128, 64), ReLU(), Linear(64, 10))
    opt, loss_fn = Adam(model.parameters(), lr=3e-3), CrossEntropyLoss()
    for step in range(200):
        idx = rng.integers(0, len(x_train), 128)
        loss = loss_fn(model(Tensor(x_train[idx])), Tensor(y_train[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()

    def accuracy(m):
        with no_grad():
            return float((m(Tensor(x_test)).data.argmax(axis=1) == y_test).mean())

    calibration = [x_train[i:i + 64] for i in range(0, 256, 64)]  # fixed: the first 256 training rows
    q_minmax = quantize_model(model, calibration, method="minmax")
    q_pct = quantize_model(model, calibration, method="percentile", percentile=99.9)
    q_float = set_mode(quantize_model(model, calibration), "float")
    print(f"test accuracy: float32 {accuracy(model):.4f} | int8 min-max {accuracy(q_minmax):.4f} "
          f"| int8 percentile {accuracy(q_pct):.4f} | int8 float route {accuracy(q_float):.4f}")
    with no_grad():
        same = (q_minmax(Tensor(x_test)).data.argmax(1) == q_float(Tensor(x_test)).data.argmax(1)).mean()
    print(f"integer and float routes predict the same class for {same:.2%} of the test set")

    fp32, int8 = model_size_bytes(model), model_size_bytes(q_minmax)
    with tempfile.TemporaryDirectory() as tmp:
        f1 = os.path.getsize(save_checkpoint(model, os.path.join(tmp, "fp32.npz")))
        f2 = os.path.getsize(save_checkpoint(q_minmax, os.path.join(tmp, "int8.npz")))
    print(f"stored size: float32 {fp32:,} B, int8 {int8:,} B ({fp32 / int8:.2f}x smaller); "
          f"checkpoint files {f1:,} B and {f2:,} B")

    xb = Tensor(x_test[:512])
    for name, m in (("float32 model", model), ("int8, float route", q_float), ("int8, integer route", q_minmax)):
        times = []
        with no_grad():
            for _ in range(7):  # the best of 7: the machine's own speed, not other programs' load
                start = time.perf_counter()
                m(xb)
                times.append(time.perf_counter() - start)
        print(f"{name:20s} {min(times) * 1e3:7.2f} ms per batch of 512")


# %% [markdown]
# ## Wrap-up
#
# You built post-training INT8 quantization from the arithmetic up: affine codes with a scale and
# a zero-point that keeps 0 exact; calibration of the ranges by min-max and by percentile, per
# tensor and per channel; a matrix multiply on int8 codes with an int32 accumulator and
# zero-point corrections, verified exact against float64; requantisation through a fixed-point
# multiplier and a shift, with no float between input and output codes; quantized Linear and
# Conv2d layers with an integer route and a float-BLAS route that agree; and `quantize_model`,
# which calibrates a copy of a trained model on a fixed calibration set and converts it.
#
# The systems lessons to keep:
#
# - **Four times fewer bytes**, a little less in practice (3.8-3.9x: int32 biases and per-channel
#   scales). Bytes are what a small-batch inference is limited by, and what a download or a
#   phone's memory costs.
# - **The error is a rounding error**, at most half a step inside the range, and the range is a
#   choice: min-max never clips, percentile trades a few clipped outliers for a finer grid;
#   per-channel weights stop one large row from ruining the others.
# - **Integer arithmetic is exact**: int8 products, int32 sums (up to $K = 33{,}025$), corrections
#   that a weight-stationary layer precomputes. Scales live on the outer axes (rows, output
#   channels), never inside the sum.
# - **Speed needs a kernel.** NumPy has no int8 matrix multiply, so here INT8 is a memory win,
#   not a speed win; on hardware with int8 dot products (VNNI, `sdot`, tensor cores) the same
#   integer route is the fast one. The float route is how a NumPy framework keeps INT8's memory and
#   accuracy while still using BLAS.
# - **What breaks at scale**: activation outliers in large transformers defeat per-tensor INT8
#   (hence per-token scales, LLM.int8()'s mixed precision, SmoothQuant); an unrepresentative or
#   changing calibration set gives wrong or irreproducible ranges.
#
# Module 16 makes models smaller another way - pruning and distillation - and milestone 06
# combines both on your LeNet-5 and GPT, measured the MLPerf way: quality against the float32
# reference, size and latency in one run.

# %% nbgrader={"grade": true, "grade_id": "check-quantization", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("15")
