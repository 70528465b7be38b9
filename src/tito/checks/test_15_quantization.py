"""Checks for module 15 (quantization): compute_qparams, quantize, dequantize, int_matmul,
quantize_multiplier, requantize, int8_matmul, QuantizedLinear, QuantizedConv2d, quantize_model,
model_size_bytes.

Scales and zero-points are checked against hand-worked examples (a zero-point of the wrong sign
says so) and against a reference written here, per tensor and per channel on every axis - square
matrices included, where a range taken along the wrong axis has the right shape and the wrong
values (the check says which axis it used). Codes are compared exactly (a tolerance of one code
only where x / scale is within 1e-3 of a rounding tie); the round trip is held to half a step.
The integer functions are compared EXACTLY with the same integer math done in float64 (every
value here is far below 2^53) and, for the fixed-point requantisation, in Python integers; one
case is chosen so that float32 arithmetic cannot be exact. The quantized layers are compared with
a float64 reference of their integer arithmetic (both routes), with the float layer within a
bound derived from the scales, and PyTorch's quantize_per_tensor/per_channel is a second oracle
for the codes when installed. quantize_model is checked on nested models and a real DataLoader:
every Linear (and Conv2d) replaced, the original untouched, each layer's input range calibrated
on exactly the inputs that layer saw (in eval mode: dropout off).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import Phase, given
from hypothesis import strategies as st

import tinytorch.tensor as tt
from tinytorch.activations import ReLU
from tinytorch.layers import Dropout, Linear, Module, Parameter, Sequential
from tinytorch.quantization import (QuantizedConv2d, QuantizedLinear, QuantParams, compute_qparams, dequantize,
                                    int8_matmul, int_matmul, model_size_bytes, quantize, quantize_model,
                                    quantize_multiplier, requantize, set_mode)
from tinytorch.tensor import Tensor
from tito.checks.harness import assert_close, blame, call, hypothesis_settings, torch_or_skip

# no shrinking: every failure message already shows the offending element and its input, and
# shrinking a failure of these cheap properties costs seconds of CPU for nothing more
SETTINGS = hypothesis_settings(max_examples=25, phases=(Phase.explicit, Phase.reuse, Phase.generate))
QP = "compute_qparams"


@pytest.fixture(autouse=True)
def _seed():
    tt.manual_seed(0)
    yield
    tt.manual_seed(0)


def rand(*shape, seed=0, scale=1.0, shift=0.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale + shift).astype(np.float32)


def codes(shape, seed=0, lo=-128, hi=127) -> np.ndarray:
    return np.random.default_rng(seed).integers(lo, hi + 1, shape).astype(np.int8)


# ---------------------------------------------------------------------------------------------
# References
# ---------------------------------------------------------------------------------------------
def ref_range(x, axis=None, method="minmax", p=99.99):
    """(lo, hi) of every row (one row per tensor, or one per index along axis), widened to 0."""
    x = np.asarray(x, dtype=np.float32)
    rows = x.reshape(1, -1) if axis is None else np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
    if method == "minmax":
        lo, hi = rows.min(axis=1).astype(np.float64), rows.max(axis=1).astype(np.float64)
    else:
        lo, hi = np.percentile(rows.astype(np.float64), [100 - p, p], axis=1)
    return np.minimum(lo, 0.0), np.maximum(hi, 0.0)


def ref_qparams(x, axis=None, method="minmax", p=99.99):
    """(scale float32, zero_point int) arrays, one entry per row."""
    lo, hi = ref_range(x, axis, method, p)
    scale = ((hi - lo) / 255).astype(np.float32)
    scale[scale == 0] = 1
    zp = np.clip(-128 - np.rint(lo / scale), -128, 127).astype(np.int64)
    return scale, zp


def along(v, axis, ndim):
    v = np.asarray(v)
    if axis is None:
        return v.reshape(())
    shape = [1] * ndim
    shape[axis] = -1
    return v.reshape(shape)


def ref_quantize(x, scale, zp, axis=None):
    x = np.asarray(x, dtype=np.float32)
    s = along(np.asarray(scale, np.float32), axis, x.ndim)
    z = along(zp, axis, x.ndim)
    return np.clip(np.rint(x / s) + z, -128, 127).astype(np.int8)


def near_tie(x, scale, axis=None) -> np.ndarray:
    """Where x / scale is within 1e-3 of a rounding tie (x.5): a code may differ by one there."""
    x = np.asarray(x, dtype=np.float64)
    r = x / along(np.asarray(scale, np.float64), axis, x.ndim)
    return np.abs(np.abs(r - np.floor(r)) - 0.5) < 1e-3


def qp_of(scale, zp, axis=None) -> QuantParams:
    return QuantParams(np.asarray(scale, np.float32), np.asarray(zp, np.int32), axis)


def exact_acc(qa, za, qb, zb) -> np.ndarray:
    """sum_k (qa - za)(qb - zb) in float64: exact (every partial sum is far below 2^53)."""
    za = np.asarray(za, np.float64).reshape(-1, 1)
    zb = np.asarray(zb, np.float64).reshape(1, -1)
    return (qa.astype(np.float64) - za) @ (qb.astype(np.float64) - zb)


def ref_multiplier(m: float) -> tuple[int, int]:
    frac, exp = math.frexp(m)
    m0 = round(frac * 2**31)  # (ties do not occur for the multipliers used here)
    if m0 == 2**31:
        m0, exp = 2**30, exp + 1
    return m0, 31 - exp


def ref_requantize(acc, m0, shift, zp) -> np.ndarray:
    """The fixed-point requantisation in Python integers (exact, unbounded)."""
    acc = np.asarray(acc)
    m0, shift = np.broadcast_to(m0, acc.shape), np.broadcast_to(shift, acc.shape)
    zp = np.broadcast_to(zp, acc.shape)
    out = np.empty(acc.shape, dtype=np.int8)
    for i in np.ndindex(*acc.shape):
        a, m, s, z = int(acc[i]), int(m0[i]), int(shift[i]), int(zp[i])
        out[i] = min(127, max(-128, z + ((a * m + (1 << (s - 1))) >> s)))
    return out


# ---------------------------------------------------------------------------------------------
# compute_qparams
# ---------------------------------------------------------------------------------------------
def assert_qparams(got, x, name, axis=None, method="minmax", p=99.99):
    """`got` (from compute_qparams(x, ...)) against the reference: types, shapes, scale, zero-point."""
    x = np.asarray(x, dtype=np.float32)
    with blame(name, "the QuantParams it returned"):
        scale, zp = np.asarray(got.scale), np.asarray(got.zero_point)
        got_axis = got.axis
    n = 1 if axis is None else x.shape[axis]
    want_shape = () if axis is None else (n,)
    if not isinstance(got, QuantParams):
        raise AssertionError(f"{name}: returned a {type(got).__name__}, expected a QuantParams")
    if axis is None and got_axis is not None:
        raise AssertionError(f"{name}: per-tensor parameters must have axis None, got axis {got_axis}")
    if axis is not None and (got_axis is None or got_axis % x.ndim != axis % x.ndim):
        raise AssertionError(f"{name}: per-channel parameters must keep axis={axis}, got axis {got_axis}")
    if scale.shape != want_shape or zp.shape != want_shape:
        raise AssertionError(f"{name}: scale and zero-point of shapes {scale.shape} and {zp.shape} for x of shape "
                             f"{x.shape}, axis {axis}; expected {want_shape} (one per index along the axis)")
    if scale.dtype != np.float32 or zp.dtype.kind not in "iu":
        raise AssertionError(f"{name}: scale must be float32 and zero-point integer, got {scale.dtype} and {zp.dtype}")
    lo, hi = ref_range(x, axis, method, p)
    exp_scale, _ = ref_qparams(x, axis, method, p)
    s, e = scale.reshape(-1), exp_scale.reshape(-1)
    if not np.allclose(s, e, rtol=1e-5, atol=0):
        extra = ""
        if axis is not None:
            for other in range(x.ndim):
                if other != axis % x.ndim and x.shape[other] == n:
                    alt, _ = ref_qparams(x, other, method, p)
                    if np.allclose(s, alt, rtol=1e-5):
                        extra = (f"; these are the ranges of the slices along axis {other}: a per-channel range is "
                                 f"taken over every OTHER axis (np.moveaxis(x, axis, 0).reshape(C, -1), reduce axis 1)")
            if not extra:
                red = np.asarray(x).min(axis=axis), np.asarray(x).max(axis=axis)
                if red[0].size == n:
                    alt = ((np.maximum(red[1], 0) - np.minimum(red[0], 0)) / 255).reshape(-1)
                    if np.allclose(s, alt, rtol=1e-5):
                        extra = (f"; these come from reducing ALONG axis {axis}: a per-channel range is taken over "
                                 "every other axis")
        if axis is None and not extra and np.allclose(s, (hi - lo) / 256, rtol=1e-5):
            extra = "; that is (hi - lo) / 256: 256 codes have 255 steps between them"
        raise AssertionError(f"{name} (axis={axis}, method={method!r}): scale {s}, expected {e} = (hi - lo) / 255 for "
                             f"the range [{lo}, {hi}] widened to include 0{extra}\n  x: {np.array2string(x, threshold=20)}")
    exp_zp = np.clip(-128 - np.rint(lo / s.astype(np.float64)), -128, 127)
    ties = np.abs(np.abs(lo / s - np.floor(lo / s)) - 0.5) < 1e-3
    zg = zp.reshape(-1).astype(np.int64)
    bad = (zg != exp_zp) & ~(ties & (np.abs(zg - exp_zp) <= 1))
    if bad.any():
        if np.array_equal(zg, -exp_zp) or np.array_equal(zg, np.clip(-128 + np.rint(lo / s), -128, 127)):
            why = (" - the zero-point has the wrong sign: lo must map to code -128, so z = -128 - round(lo / scale) "
                   "(then x = scale * (q - z) gives 0 for q = z)")
        else:
            why = ""
        raise AssertionError(f"{name} (axis={axis}, method={method!r}): zero-point {zg}, expected {exp_zp.astype(int)} "
                             f"= -128 - round(lo / scale) for lo = {lo}{why}")


@pytest.mark.task("compute_qparams")
def test_compute_qparams_worked_example():
    x = np.array([-0.8, 0.0, 0.5, 1.75], dtype=np.float32)
    got = call(QP, compute_qparams, x)
    assert_qparams(got, x, QP)
    with blame(QP):
        s, z = float(got.scale), int(got.zero_point)
    if z == 48:
        raise AssertionError(f"{QP}: zero-point +48 for the range [-0.8, 1.75] (scale 0.01): the zero-point has the "
                             "wrong sign; -0.8 / 0.01 = -80 must map to -128, so z = -128 - (-80) = -48")
    assert abs(s - 0.01) < 1e-7 and z == -48, f"{QP}: scale {s}, zero-point {z}, expected 0.01 and -48"


@pytest.mark.task("compute_qparams")
@pytest.mark.parametrize("x,scale,zp,what", [
    ([0.5, 1.0, 2.55], 0.01, -128, "all positive (after a ReLU): the range is widened down to 0"),
    ([-2.55, -1.0], 0.01, 127, "all negative: the range is widened up to 0"),
    ([0.0, 0.0, 0.0], 1.0, -128, "all zeros: scale 1 (no division by zero)"),
    ([[-1.0, 3.0], [0.5, 2.1]], 4.0 / 255, -64, "a matrix, per tensor"),
], ids=["positive", "negative", "zeros", "matrix"])
def test_compute_qparams_range_includes_zero(x, scale, zp, what):
    x = np.asarray(x, dtype=np.float32)
    got = call(QP, compute_qparams, x)
    assert_qparams(got, x, f"{QP} ({what})")
    with blame(QP):
        s, z = float(got.scale), int(got.zero_point)
    assert abs(s - scale) <= 1e-6 * scale and z == zp, \
        f"{QP} ({what}): scale {s}, zero-point {z}, expected {scale:.6g} and {zp} for x = {x.tolist()}"


@pytest.mark.task("compute_qparams")
@SETTINGS
@given(seed=st.integers(0, 10**6), n=st.integers(1, 40), shift=st.sampled_from([0.0, 3.0, -3.0]),
       scale=st.sampled_from([1e-3, 1.0, 50.0]))
def test_compute_qparams_per_tensor_random(seed, n, shift, scale):
    x = rand(n, seed=seed, scale=scale, shift=shift * scale)
    assert_qparams(call(QP, compute_qparams, x), x, QP)


@pytest.mark.task("compute_qparams")
@pytest.mark.parametrize("shape,axis", [((5, 3), 0), ((3, 5), 1), ((4, 4), 0), ((4, 4), 1), ((4, 4), -1),
                                        ((4, 3, 2, 2), 0), ((2, 3, 4), 1), ((3, 3, 3), 2), ((1, 6), 0)],
                         ids=["rows", "cols", "square-rows", "square-cols", "square-last", "conv-filters",
                              "3d-middle", "cube-last", "one-channel"])
def test_compute_qparams_per_channel_axis(shape, axis):
    x = rand(*shape, seed=sum(shape) + axis)
    # every channel (along `axis`) and every slice along the other axes of a very different size
    for ax in range(len(shape)):
        x = x * along(np.geomspace(0.05, 20, shape[ax]) ** (1 if ax == axis % len(shape) else 0.5), ax, len(shape))
    x = x.astype(np.float32)
    got = call(f"{QP} (axis={axis})", compute_qparams, x, axis=axis)
    assert_qparams(got, x, QP, axis=axis)


@pytest.mark.task("compute_qparams")
def test_compute_qparams_percentile_clips_outliers():
    x = np.append(rand(2000, seed=3), [60.0, -45.0]).astype(np.float32)
    for p in (99.0, 99.9, 100.0):
        got = call(f"{QP} (method='percentile', percentile={p})", compute_qparams, x, method="percentile",
                   percentile=p)
        assert_qparams(got, x, QP, method="percentile", p=p)
    wide = call(QP, compute_qparams, x, method="minmax")
    narrow = call(QP, compute_qparams, x, method="percentile", percentile=99.0)
    with blame(QP):
        assert float(narrow.scale) < float(wide.scale) / 5, \
            f"{QP}: percentile 99 should ignore the outliers 60 and -45 (scale {float(narrow.scale)} vs min-max " \
            f"{float(wide.scale)})"
    w = np.stack([rand(300, seed=4), rand(300, seed=5) * 10, rand(300, seed=6) + 2]).astype(np.float32)
    w[1, 7] = 500.0  # an outlier in one channel only
    got = call(f"{QP} (axis=0, method='percentile')", compute_qparams, w, axis=0, method="percentile", percentile=99.5)
    assert_qparams(got, w, QP, axis=0, method="percentile", p=99.5)


# ---------------------------------------------------------------------------------------------
# quantize
# ---------------------------------------------------------------------------------------------
def assert_codes(got, x, scale, zp, name, axis=None):
    got = np.asarray(got)
    if got.dtype != np.int8:
        raise AssertionError(f"{name}: returned {got.dtype} codes, expected np.int8")
    expected = ref_quantize(x, scale, zp, axis)
    if got.shape != expected.shape:
        raise AssertionError(f"{name}: codes of shape {got.shape} for x of shape {np.shape(x)}")
    diff = np.abs(got.astype(np.int64) - expected)
    bad = (diff > 0) & ~((diff == 1) & near_tie(x, scale, axis))
    if bad.any():
        s, z = along(np.asarray(scale, np.float32), axis, np.ndim(x)), along(zp, axis, np.ndim(x))
        xf = np.asarray(x, np.float32)
        why = ""
        if np.array_equal(got, np.clip(np.rint(xf / s) - z, -128, 127).astype(np.int8)):
            why = " - the zero-point is subtracted: q = round(x / scale) + zero_point"
        elif np.array_equal(got, (np.rint(xf / s) + z).astype(np.int64).astype(np.int8)):
            why = " - no clip before the int8 conversion: codes outside [-128, 127] wrap around"
        elif np.array_equal(got, np.clip(np.floor(xf / s + 0.5) + z, -128, 127).astype(np.int8)):
            why = " - halves are rounded up; np.rint rounds them to the even neighbour (2.5 -> 2, 3.5 -> 4)"
        i = tuple(np.argwhere(bad)[0])
        raise AssertionError(f"{name}: code {int(got[i])} at index {i} for x = {float(xf[i])!r}, expected "
                             f"{int(expected[i])} = clip(round(x / {float(np.broadcast_to(s, xf.shape)[i])}) + "
                             f"{int(np.broadcast_to(z, xf.shape)[i])}){why}")


@pytest.mark.task("quantize")
def test_quantize_by_hand():
    x = np.array([0.0, 1.0, -1.0, 100.0, -100.0], dtype=np.float32)
    got = call("quantize", quantize, x, qp_of(0.5, 10))
    assert_codes(got, x, 0.5, 10, "quantize")
    assert np.asarray(got).tolist() == [10, 12, 8, 127, -128], f"quantize: {np.asarray(got).tolist()}"
    x = np.array([-0.8, 0.0, 0.5, 1.75, 0.123], dtype=np.float32)
    got = call("quantize", quantize, x, qp_of(0.01, -48))
    assert_codes(got, x, 0.01, -48, "quantize")


@pytest.mark.task("quantize")
def test_quantize_rounds_half_to_even():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5], dtype=np.float32)
    got = np.asarray(call("quantize", quantize, x, qp_of(1.0, 0)))
    expected = [0, 2, 2, 0, -2, -2, 4]
    assert got.tolist() == expected, \
        f"quantize: {got.tolist()} for x = {x.tolist()} with scale 1, expected {expected}: ties round to the even " \
        "neighbour (np.rint, as NumPy and PyTorch do)"


@pytest.mark.task("quantize")
@pytest.mark.parametrize("shape,axis", [((3, 4), 0), ((3, 4), 1), ((4, 4), 1), ((2, 3, 2, 2), 0), ((2, 3, 4), -1)],
                         ids=["rows", "cols", "square-cols", "conv", "last"])
def test_quantize_per_channel(shape, axis):
    n = shape[axis]
    x = rand(*shape, seed=n, scale=3.0)
    scale = np.geomspace(0.01, 0.5, n).astype(np.float32)
    zp = np.linspace(-100, 90, n).round().astype(np.int32)
    got = call(f"quantize (axis={axis})", quantize, x, qp_of(scale, zp, axis))
    assert_codes(got, x, scale, zp, f"quantize (per channel, axis={axis})", axis)


@pytest.mark.task("quantize")
@SETTINGS
@given(seed=st.integers(0, 10**6), shape=st.sampled_from([(1,), (7,), (3, 5), (2, 3, 4)]),
       scale=st.sampled_from([1e-3, 0.037, 0.5, 3.3]), zp=st.integers(-128, 127))
def test_quantize_per_tensor_random(seed, shape, scale, zp):
    x = rand(*shape, seed=seed, scale=100 * scale)  # many codes saturate
    before = x.copy()
    got = call("quantize", quantize, Tensor(x) if seed % 2 else x, qp_of(scale, zp))
    if not np.array_equal(x, before):
        raise AssertionError("quantize: changed its input in place")
    assert_codes(got, x, np.float32(scale), zp, "quantize")


@pytest.mark.task("quantize")
def test_quantize_vs_torch():
    torch = torch_or_skip()
    x = rand(4, 6, seed=11, scale=2.0)
    warnings.filterwarnings("ignore", message=".*quantize_per", category=UserWarning)  # (deprecated in torch)
    got = call("quantize", quantize, x, qp_of(0.03, -7))
    expected = torch.quantize_per_tensor(torch.tensor(x), 0.03, -7, torch.qint8).int_repr().numpy()
    assert_codes(got, x, np.float32(0.03), -7, "quantize (vs PyTorch quantize_per_tensor)")
    assert np.abs(np.asarray(got).astype(int) - expected).max() <= 1, "quantize: differs from PyTorch"
    scale, zp = np.array([0.01, 0.02, 0.05, 0.1], np.float32), np.array([0, 5, -9, 20], np.int32)
    got = call("quantize (axis=0)", quantize, x, qp_of(scale, zp, 0))
    expected = torch.quantize_per_channel(torch.tensor(x), torch.tensor(scale, dtype=torch.float64),
                                          torch.tensor(zp, dtype=torch.int64), 0, torch.qint8).int_repr().numpy()
    diff = np.abs(np.asarray(got).astype(int) - expected)
    assert diff.max() <= 1 and (diff == 0).mean() > 0.95, \
        f"quantize (per channel, axis 0): differs from PyTorch's quantize_per_channel: {np.asarray(got)} vs {expected}"


# ---------------------------------------------------------------------------------------------
# dequantize
# ---------------------------------------------------------------------------------------------
def assert_dequantized(got, q, scale, zp, name, axis=None):
    got = np.asarray(got)
    if got.dtype != np.float32:
        raise AssertionError(f"{name}: returned {got.dtype}, expected float32 (cast the zero-point too: "
                             "float32 - int32 is float64 in NumPy)")
    s = along(np.asarray(scale, np.float64), axis, q.ndim)
    z = along(np.asarray(zp, np.float64), axis, q.ndim)
    expected = s * (q.astype(np.float64) - z)
    if got.shape == expected.shape and not np.allclose(got, expected, rtol=1e-6, atol=1e-30):
        if np.allclose(got, s * (q.astype(np.float64) + z), rtol=1e-6):
            raise AssertionError(f"{name}: computed scale * (q + zero_point); the zero-point is subtracted: "
                                 "x = scale * (q - zero_point)")
        wrapped = s * ((q.astype(np.int64) - z.astype(np.int64)).astype(np.int8))
        if np.allclose(got, wrapped, rtol=1e-6):
            raise AssertionError(f"{name}: q - zero_point was computed in int8 and wrapped around (127 - (-48) = 175 "
                                 "does not fit): convert the codes to float32 first")
    assert_close(got, expected.astype(np.float32), name, [q], atol=1e-30, rtol=1e-6)


@pytest.mark.task("dequantize")
def test_dequantize_by_hand():
    q = np.array([-128, -48, 2, 127, -36], dtype=np.int8)
    got = call("dequantize", dequantize, q, qp_of(0.01, -48))
    assert_dequantized(got, q, 0.01, -48, "dequantize")
    assert_close(got, np.array([-0.8, 0.0, 0.5, 1.75, 0.12], np.float32), "dequantize", [q], atol=1e-6)
    q = np.array([127, -128, 0], dtype=np.int8)
    assert_dequantized(call("dequantize", dequantize, q, qp_of(0.5, -128)), q, 0.5, -128, "dequantize")


@pytest.mark.task("dequantize")
@pytest.mark.parametrize("shape,axis", [((3, 4), 0), ((4, 4), 1), ((2, 3, 2, 2), 0), ((2, 3, 4), -1)],
                         ids=["rows", "square-cols", "conv", "last"])
def test_dequantize_per_channel(shape, axis):
    n = shape[axis]
    q = codes(shape, seed=n)
    scale = np.geomspace(0.01, 0.5, n).astype(np.float32)
    zp = np.linspace(-120, 100, n).round().astype(np.int32)
    got = call(f"dequantize (axis={axis})", dequantize, q, qp_of(scale, zp, axis))
    assert_dequantized(got, q, scale, zp, f"dequantize (per channel, axis={axis})", axis)


@pytest.mark.task("dequantize")
@SETTINGS
@given(seed=st.integers(0, 10**6), n=st.integers(1, 30), shift=st.sampled_from([0.0, -2.0, -0.5, 0.5, 2.0]),
       width=st.sampled_from([0.01, 1.0, 100.0]))
def test_dequantize_round_trip_within_half_a_step(seed, n, shift, width):
    x = rand(n, seed=seed, scale=width, shift=shift * width)
    scale, zp = ref_qparams(x)
    q = ref_quantize(x, scale, zp)
    got = np.asarray(call("dequantize", dequantize, q, qp_of(scale, zp)))
    assert_dequantized(got, q, scale, zp, "dequantize")
    err = np.abs(got.astype(np.float64) - x)
    assert err.max() <= float(scale[0]) * (0.5 + 1e-3), \
        f"dequantize: round-trip error {err.max():.3g} is more than half a step ({float(scale[0]) / 2:.3g})"


# ---------------------------------------------------------------------------------------------
# int_matmul
# ---------------------------------------------------------------------------------------------
def assert_exact_acc(got, qa, za, qb, zb, name):
    got = np.asarray(got)
    if got.dtype != np.int32:
        raise AssertionError(f"{name}: returned {got.dtype}, expected the int32 accumulator")
    expected = exact_acc(qa, za, qb, zb)
    if got.shape != expected.shape:
        raise AssertionError(f"{name}: shape {got.shape}, expected {expected.shape} for {qa.shape} @ {qb.shape}")
    if np.array_equal(got.astype(np.float64), expected):
        return
    za64 = np.asarray(za, np.float64).reshape(-1, 1)
    zb64 = np.asarray(zb, np.float64).reshape(1, -1)
    a, b, k = qa.astype(np.float64), qb.astype(np.float64), qa.shape[1]
    raw, rows, cols = a @ b, a.sum(1, keepdims=True) * zb64, za64 * b.sum(0, keepdims=True)
    variants = {"without the + K * za * zb term": raw - rows - cols,
                "without the - zb * rowsum(qa) term": raw - cols + k * za64 * zb64,
                "without the - za * colsum(qb) term": raw - rows + k * za64 * zb64,
                "with the zero-points added instead of subtracted": exact_acc(qa, -za64, qb, -zb64),
                "with the raw codes only (no zero-point corrections)": raw,
                "in int8 arithmetic (qa @ qb on int8 wraps around: convert to int32 first)":
                    (qa @ qb).astype(np.float64) - rows - cols + k * za64 * zb64}
    why = next((f" - that is the sum {label}" for label, v in variants.items()
                if not np.array_equal(v, expected) and np.array_equal(got.astype(np.float64), v)), "")
    i = tuple(np.argwhere(got.astype(np.float64) != expected)[0])
    raise AssertionError(f"{name}: acc{list(i)} = {int(got[i])}, expected exactly {int(expected[i])} = "
                         f"sum_k (qa - za)(qb - zb){why} (shapes {qa.shape} @ {qb.shape})")


@pytest.mark.task("int_matmul")
def test_int_matmul_worked_example():
    qa, qb = np.array([[1, 2]], np.int8), np.array([[3], [-1]], np.int8)
    got = call("int_matmul", int_matmul, qa, 1, qb, -1)
    assert_exact_acc(got, qa, 1, qb, -1, "int_matmul")


@pytest.mark.task("int_matmul")
@pytest.mark.parametrize("m,k,n,za,zb", [
    (1, 1, 1, 0, 0), (3, 7, 2, 5, -3), (5, 64, 4, -128, 127), (2, 300, 3, 127, -128),
    (4, 16, 3, "rows", 9), (3, 20, 5, -4, "cols"), (6, 33, 7, "rows", "cols"),
], ids=["1x1x1", "small", "k64-extreme-zp", "k300", "per-row-a", "per-col-b", "both-per-channel"])
def test_int_matmul_exact_vs_float64(m, k, n, za, zb):
    qa, qb = codes((m, k), seed=m * k), codes((k, n), seed=k * n + 1)
    za = np.random.default_rng(1).integers(-128, 128, m).astype(np.int32) if za == "rows" else za
    zb = np.random.default_rng(2).integers(-128, 128, n).astype(np.int32) if zb == "cols" else zb
    a0, b0 = qa.copy(), qb.copy()
    got = call("int_matmul", int_matmul, qa, za, qb, zb)
    if not (np.array_equal(qa, a0) and np.array_equal(qb, b0)):
        raise AssertionError("int_matmul: changed its input codes in place")
    assert_exact_acc(got, qa, za, qb, zb, "int_matmul")


@pytest.mark.task("int_matmul")
def test_int_matmul_exact_beyond_float32():
    # 2,048 terms of about 255^2: sums near 1.3e8 > 2^24, where float32 can no longer hold every integer
    k = 2048
    qa = codes((2, k), seed=7, lo=100, hi=127)
    qb = codes((k, 3), seed=8, lo=100, hi=127)
    got = call("int_matmul", int_matmul, qa, -128, qb, -128)
    assert_exact_acc(got, qa, -128, qb, -128, "int_matmul (K = 2048, sums above 2^24: float32 is not exact)")


# ---------------------------------------------------------------------------------------------
# quantize_multiplier
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("quantize_multiplier")
@pytest.mark.parametrize("m,m0,shift", [(0.002, 1099511628, 39), (0.5, 2**30, 31), (0.75, 1610612736, 31),
                                        (1.0, 2**30, 30), (3.0, 1610612736, 29), (0.9999999999, 2**30, 30)],
                         ids=["worked", "half", "three-quarters", "one", "three", "rounds-up-to-one"])
def test_fixed_point_multiplier_by_hand(m, m0, shift):
    got = call("quantize_multiplier", quantize_multiplier, m)
    with blame("quantize_multiplier", "the (m0, shift) pair it returned"):
        g0, gs = (int(np.asarray(v)) for v in got)
    if (g0, gs) == (2**31, shift + 1):
        raise AssertionError(f"quantize_multiplier: m0 = 2^31 for m = {m}: it does not fit 31 bits; use 2^30 and a "
                             "shift one smaller (the same number)")
    assert (g0, gs) == (m0, shift), \
        f"quantize_multiplier: ({g0}, {gs}) for m = {m}, expected ({m0}, {shift}): m = m0 * 2^-shift, 2^30 <= m0 < 2^31"


@pytest.mark.task("quantize_multiplier")
def test_fixed_point_multiplier_arrays():
    m = np.geomspace(3e-9, 1e5, 60).reshape(6, 10)
    got = call("quantize_multiplier", quantize_multiplier, m)
    with blame("quantize_multiplier", "the (m0, shift) pair it returned"):
        m0, shift = (np.asarray(v) for v in got)
    if m0.shape != m.shape or shift.shape != m.shape:
        raise AssertionError(f"quantize_multiplier: shapes {m0.shape} and {shift.shape} for multipliers of shape {m.shape}")
    if m0.dtype != np.int64 or shift.dtype != np.int64:
        raise AssertionError(f"quantize_multiplier: dtypes {m0.dtype} and {shift.dtype}, expected int64")
    if m0.min() < 2**30 or m0.max() >= 2**31:
        raise AssertionError(f"quantize_multiplier: m0 must lie in [2^30, 2^31) (31 significant bits), got "
                             f"{m0.min()} .. {m0.max()}")
    for i in np.ndindex(*m.shape):
        e0, es = ref_multiplier(float(m[i]))
        if (int(m0[i]), int(shift[i])) != (e0, es):
            raise AssertionError(f"quantize_multiplier: ({int(m0[i])}, {int(shift[i])}) for m = {m[i]!r}, expected "
                                 f"({e0}, {es}) (m0 * 2^-shift = {e0 / 2.0 ** es!r})")


# ---------------------------------------------------------------------------------------------
# requantize
# ---------------------------------------------------------------------------------------------
def assert_requantized(got, acc, m0, shift, zp, name):
    got = np.asarray(got)
    if got.dtype != np.int8:
        raise AssertionError(f"{name}: returned {got.dtype}, expected int8 codes")
    expected = ref_requantize(acc, m0, shift, zp)
    if got.shape != expected.shape:
        raise AssertionError(f"{name}: shape {got.shape}, expected {expected.shape}")
    if np.array_equal(got, expected):
        return
    i = tuple(np.argwhere(got != expected)[0])
    a = int(np.asarray(acc)[i])
    mi, si = int(np.broadcast_to(m0, expected.shape)[i]), int(np.broadcast_to(shift, expected.shape)[i])
    y = a * mi / 2.0**si
    why = ""
    if abs(y - math.floor(y) - 0.5) < 1e-12:
        why = f" - acc * M = {y} is a tie: it rounds up (add 2^(shift-1), then >> shift)"
    elif abs(a) * mi >= 2**31:
        why = f" - acc * m0 = {a * mi} needs 64 bits: compute in int64"
    raise AssertionError(f"{name}: code {int(got[i])} at {list(i)} for acc = {a}, m0 = {mi}, shift = {si}, expected "
                         f"{int(expected[i])} = clip(zero_point + ((acc * m0 + 2^(shift-1)) >> shift)){why}")


@pytest.mark.task("requantize")
def test_requantize_worked_example():
    acc = np.array([12345], np.int32)
    got = call("requantize", requantize, acc, 1099511628, 39, -10)
    assert_requantized(got, acc, 1099511628, 39, -10, "requantize")
    assert np.asarray(got).tolist() == [15], f"requantize: {np.asarray(got).tolist()}, expected [15]"


@pytest.mark.task("requantize")
def test_requantize_ties_round_up():
    acc = np.array([1, -1, 3, -3, 5, -5, 2, 0], np.int32)  # M = 0.5: every odd acc is a tie
    got = call("requantize", requantize, acc, 2**30, 31, 0)
    assert_requantized(got, acc, 2**30, 31, 0, "requantize (M = 0.5, ties)")


@pytest.mark.task("requantize")
@SETTINGS
@given(seed=st.integers(0, 10**6), shift=st.integers(1, 62), zp=st.integers(-128, 127))
def test_requantize_exact_fixed_point(seed, shift, zp):
    g = np.random.default_rng(seed)
    m0 = int(g.integers(2**30, 2**31))
    # accumulators around the values this multiplier maps into the int8 range, and the extremes
    centre = 2.0 ** shift / m0 * 100
    acc = np.clip(g.normal(0, centre, 12), -(2**31 - 1), 2**31 - 1).astype(np.int32)
    acc[:2] = [2**31 - 1, -(2**31 - 1)]
    got = call("requantize", requantize, acc, m0, shift, zp)
    assert_requantized(got, acc, m0, shift, zp, "requantize")


@pytest.mark.task("requantize")
def test_requantize_per_channel_multipliers():
    acc = np.random.default_rng(3).integers(-60000, 60000, (4, 3)).astype(np.int32)
    m0 = np.array([1099511628, 2**30, 1610612736], np.int64)
    shift = np.array([39, 40, 38], np.int64)
    got = call("requantize", requantize, acc, m0, shift, 7)
    assert_requantized(got, acc, m0, shift, 7, "requantize (one multiplier per column)")


# ---------------------------------------------------------------------------------------------
# int8_matmul
# ---------------------------------------------------------------------------------------------
def quantized_pair(m, k, n, per_row, per_col, seed=0):
    a, b = rand(m, k, seed=seed), rand(k, n, seed=seed + 1, scale=0.3, shift=0.1)
    a *= along(np.geomspace(0.2, 5, m), 0, 2) if per_row else 1
    b *= along(np.geomspace(0.2, 5, n), 1, 2) if per_col else 1
    sa, za = ref_qparams(a, 0 if per_row else None)
    sb, zb = ref_qparams(b, 1 if per_col else None)
    qpa, qpb = qp_of(sa if per_row else sa[0], za if per_row else za[0], 0 if per_row else None), \
        qp_of(sb if per_col else sb[0], zb if per_col else zb[0], 1 if per_col else None)
    qa, qb = ref_quantize(a, qpa.scale, qpa.zero_point, qpa.axis), ref_quantize(b, qpb.scale, qpb.zero_point, qpb.axis)
    return a, b, qa, qpa, qb, qpb


@pytest.mark.task("int8_matmul")
@pytest.mark.parametrize("m,k,n,per_row,per_col", [(3, 16, 4, False, False), (5, 50, 3, False, True),
                                                   (4, 9, 6, True, False), (6, 40, 5, True, True),
                                                   (1, 1, 1, False, False)],
                         ids=["per-tensor", "per-column-b", "per-row-a", "both", "1x1x1"])
def test_int8_matmul_matches_float64_reference(m, k, n, per_row, per_col):
    a, b, qa, qpa, qb, qpb = quantized_pair(m, k, n, per_row, per_col, seed=m + k + n)
    got = call("int8_matmul", int8_matmul, qa, qpa, qb, qpb)
    got = np.asarray(got)
    if got.dtype != np.float32:
        raise AssertionError(f"int8_matmul: returned {got.dtype} without out_qp, expected the float32 product")
    scale = qpa.scale.reshape(-1, 1).astype(np.float64) * qpb.scale.reshape(1, -1).astype(np.float64)
    expected = exact_acc(qa, qpa.zero_point, qb, qpb.zero_point) * scale
    assert_close(got, expected.astype(np.float32), "int8_matmul (vs the same integer math in float64)", [qa, qb],
                 atol=1e-6 * float(np.abs(expected).max() + 1e-30), rtol=1e-6)
    err = np.abs(got - a @ b).max()
    bound = (np.abs(a).sum(1, keepdims=True) * along(qpb.scale, None if qpb.axis is None else 1, 2) / 2
             + np.abs(b).sum(0, keepdims=True) * along(qpa.scale, None if qpa.axis is None else 0, 2) / 2
             + k * scale / 4).max()
    assert err <= bound * 1.01 + 1e-6, f"int8_matmul: error {err:.3g} vs the float product, above the bound {bound:.3g}"


@pytest.mark.task("int8_matmul")
@pytest.mark.parametrize("per_row,per_col", [(False, False), (False, True), (True, True)],
                         ids=["per-tensor", "per-column-b", "both"])
def test_int8_matmul_int8_output(per_row, per_col):
    a, b, qa, qpa, qb, qpb = quantized_pair(4, 24, 5, per_row, per_col, seed=5)
    so, zo = ref_qparams(a @ b)
    out_qp = qp_of(so[0], zo[0])
    got = np.asarray(call("int8_matmul (out_qp given)", int8_matmul, qa, qpa, qb, qpb, out_qp))
    scale = qpa.scale.reshape(-1, 1).astype(np.float64) * qpb.scale.reshape(1, -1).astype(np.float64)
    mult = np.broadcast_to(scale / np.float64(out_qp.scale), (4, 5))
    m0 = np.array([[ref_multiplier(float(v))[0] for v in row] for row in mult])
    shift = np.array([[ref_multiplier(float(v))[1] for v in row] for row in mult])
    acc = exact_acc(qa, qpa.zero_point, qb, qpb.zero_point).astype(np.int64)
    expected = ref_requantize(acc, m0, shift, zo[0])
    if got.dtype != np.int8 or got.shape != expected.shape:
        raise AssertionError(f"int8_matmul: with out_qp it returned {got.dtype} {got.shape}, expected int8 codes "
                             f"{expected.shape}")
    if not np.array_equal(got, expected):
        i = tuple(np.argwhere(got != expected)[0])
        raise AssertionError(f"int8_matmul: requantised code {int(got[i])} at {list(i)}, expected exactly "
                             f"{int(expected[i])} (acc {int(acc[i])} * M {mult[i]:.6g} with the fixed-point "
                             f"multiplier, + zero-point {int(zo[0])})")


# ---------------------------------------------------------------------------------------------
# QuantizedLinear
# ---------------------------------------------------------------------------------------------
QL = "QuantizedLinear"


def make_linear(n_in, n_out, bias=True, seed=0) -> Linear:
    layer = Linear(n_in, n_out, bias=bias)
    w = rand(n_out, n_in, seed=seed) * along(np.geomspace(0.05, 4, n_out), 0, 2).astype(np.float32)
    w[:, 0] *= 3  # one input column larger: a per-column range differs from a per-row one
    layer.weight.data[...] = w
    if bias:
        layer.bias.data[...] = rand(n_out, seed=seed + 1, scale=0.5)
    return layer


def linear_reference(layer: Linear, x, sx, zx):
    """What both routes must compute, in float64 from the reference's codes."""
    w = layer.weight.data
    sw, zw = ref_qparams(w, 0)
    qw = ref_quantize(w, sw, zw, 0)
    x2 = np.asarray(x, np.float32).reshape(-1, w.shape[1])
    qx = ref_quantize(x2, sx, zx)
    grid = np.float64(sx) * sw.astype(np.float64)
    acc = exact_acc(qx, zx, qw.T, zw)
    bias_q = None
    if layer.bias is not None:
        bias_q = np.rint(layer.bias.data / grid)
        acc = acc + bias_q
    return (acc * grid).reshape(*np.shape(x)[:-1], w.shape[0]), qw, sw, zw, bias_q


def build_ql(layer, sx, zx, mode="integer"):
    return call(QL, QuantizedLinear, layer, qp_of(sx, zx), mode)


@pytest.mark.task("QuantizedLinear")
@pytest.mark.parametrize("n_in,n_out,bias", [(5, 3, True), (4, 4, True), (6, 2, False)],
                         ids=["5-to-3", "square", "no-bias"])
def test_quantized_linear_stores_int8_weights_per_output_channel(n_in, n_out, bias):
    layer = make_linear(n_in, n_out, bias, seed=n_in)
    w_before = layer.weight.data.copy()
    ql = build_ql(layer, 0.05, -20)
    _, qw, sw, zw, bias_q = linear_reference(layer, np.zeros((1, n_in), np.float32), 0.05, -20)
    with blame(QL, "its state_dict"):
        state = ql.state_dict()
    want = {"weight_q", "weight_scale", "weight_zero_point", "input_scale", "input_zero_point"} | \
        ({"bias_q"} if bias else set())
    if set(state) != want:
        raise AssertionError(f"{QL}: state_dict keys {sorted(state)}, expected {sorted(want)} (buffers via "
                             "register_buffer; no float32 copy of the weight is stored)")
    if not np.array_equal(layer.weight.data, w_before):
        raise AssertionError(f"{QL}: changed the float Linear's weight")
    got_s = np.asarray(state["weight_scale"])
    if got_s.shape != sw.shape or not np.allclose(got_s, sw, rtol=1e-5):
        alt, _ = ref_qparams(layer.weight.data, 1)
        hint = ""
        if got_s.shape == alt.shape and np.allclose(got_s, alt, rtol=1e-5):
            hint = (" - these are per INPUT channel (axis 1, the columns of W); the scales are per output channel "
                    "(axis 0, one per row), so that each output's scale factors out of its dot product")
        raise AssertionError(f"{QL}: weight_scale {got_s}, expected {sw} (compute_qparams(W, axis=0)){hint}")
    if not np.array_equal(np.asarray(state["weight_zero_point"]).astype(np.int64), zw):
        raise AssertionError(f"{QL}: weight_zero_point {state['weight_zero_point']}, expected {zw}")
    wq = np.asarray(state["weight_q"])
    if wq.dtype != np.int8 or not np.array_equal(wq, qw):
        raise AssertionError(f"{QL}: weight_q must be the int8 codes of W per output channel; got {wq.dtype}\n{wq}\n"
                             f"expected\n{qw}")
    if float(state["input_scale"]) != np.float32(0.05) or int(state["input_zero_point"]) != -20:
        raise AssertionError(f"{QL}: input_scale/input_zero_point {state['input_scale']}, "
                             f"{state['input_zero_point']}, expected the input_qp passed in (0.05, -20)")
    if bias:
        bq = np.asarray(state["bias_q"])
        if bq.dtype != np.int32 or not np.array_equal(bq.astype(np.float64), bias_q):
            raise AssertionError(f"{QL}: bias_q {bq} ({bq.dtype}), expected int32 {bias_q.astype(int)} = "
                                 "round(bias / (input_scale * weight_scale))")


@pytest.mark.task("QuantizedLinear")
@pytest.mark.parametrize("bias,shape", [(True, (6, 5)), (False, (2, 3, 5)), (True, (5,))],
                         ids=["batch", "3d-no-bias", "1d"])
def test_quantized_linear_integer_route_is_exact(bias, shape):
    layer = make_linear(5, 4, bias, seed=3)
    x = rand(*shape, seed=4, scale=2.0)
    sx, zx = (v[0] for v in ref_qparams(x))
    expected, *_ = linear_reference(layer, x, sx, zx)
    ql = build_ql(layer, sx, zx)
    out = call("QuantizedLinear.forward", ql, Tensor(x))
    if not isinstance(out, Tensor) or out.dtype != np.float32:
        raise AssertionError(f"QuantizedLinear.forward: returned {type(out).__name__} "
                             f"{getattr(out, 'dtype', '')}, expected a float32 Tensor")
    assert_close(out, expected.astype(np.float32), "QuantizedLinear.forward (mode='integer', vs the same integer "
                 "math in float64)", [x], atol=1e-6 * float(np.abs(expected).max()), rtol=1e-6)


@pytest.mark.task("QuantizedLinear")
def test_quantized_linear_float_route_agrees():
    layer = make_linear(7, 5, True, seed=8)
    x = rand(3, 2, 7, seed=9, scale=1.5, shift=0.4)
    sx, zx = (v[0] for v in ref_qparams(x))
    expected, *_ = linear_reference(layer, x, sx, zx)
    ql = build_ql(layer, sx, zx, mode="float")
    tol = dict(atol=1e-5 * float(np.abs(expected).max()), rtol=1e-5)
    assert_close(call("QuantizedLinear.forward", ql, Tensor(x)), expected.astype(np.float32),
                 "QuantizedLinear.forward (mode='float', vs the same numbers in float64)", [x], **tol)
    assert_close(call("QuantizedLinear.forward", ql, Tensor(x), mode="integer"), expected.astype(np.float32),
                 "QuantizedLinear.forward (forward(x, mode='integer') overrides self.mode)", [x], **tol)
    ql.mode = "integer"
    assert_close(call("QuantizedLinear.forward", ql, Tensor(x), mode="float"), expected.astype(np.float32),
                 "QuantizedLinear.forward (forward(x, mode='float') overrides self.mode)", [x], **tol)


@pytest.mark.task("QuantizedLinear")
def test_quantized_linear_close_to_the_float_layer():
    layer = make_linear(32, 6, True, seed=12)
    x = rand(16, 32, seed=13)
    sx, zx = (v[0] for v in ref_qparams(x))
    ql = build_ql(layer, sx, zx)
    got = call("QuantizedLinear.forward", ql, Tensor(x)).data.astype(np.float64)
    y = x.astype(np.float64) @ layer.weight.data.T + layer.bias.data
    sw, _ = ref_qparams(layer.weight.data, 0)
    # |x - x_hat| <= sx/2, |w - w_hat| <= sw/2 per element, bias within half its grid
    bound = (np.abs(x).sum(1, keepdims=True) * sw / 2 + np.abs(layer.weight.data).sum(1) * sx / 2
             + 32 * sx * sw / 4 + sx * sw / 2)
    err = np.abs(got - y)
    if np.any(err > bound * 1.01 + 1e-6):
        i = tuple(np.argwhere(err > bound * 1.01 + 1e-6)[0])
        raise AssertionError(f"QuantizedLinear.forward: output {list(i)} is {got[i]:.5f}, the float Linear gives "
                             f"{y[i]:.5f}: an error of {err[i]:.3g}, more than int8 rounding allows ({bound[i]:.3g})")


# ---------------------------------------------------------------------------------------------
# QuantizedConv2d (given; built on the functions above)
# ---------------------------------------------------------------------------------------------
class ConvLike(Module):
    """The attributes QuantizedConv2d reads from a Conv2d (module 09 is not needed here)."""

    def __init__(self, w, b, stride, padding):
        super().__init__()
        self.weight = Parameter(w)
        self.bias = None if b is None else Parameter(b)
        self.stride, self.padding = stride, padding


def pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def conv_loops(x, w, b, stride, padding):
    """Slow, obviously correct cross-correlation in float64, zero padding."""
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw))
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    ho, wo = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    out = np.zeros((n, o, ho, wo))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]  # (N, C, kh, kw)
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3]))
    return out + (0 if b is None else b.reshape(1, -1, 1, 1))


@pytest.mark.task("QuantizedConv2d")
@pytest.mark.parametrize("c,o,k,stride,padding,bias", [(3, 4, 3, 1, 1, True), (2, 3, 3, 2, 0, True),
                                                       (1, 2, (3, 2), (2, 1), (1, 0), False), (3, 2, 1, 1, 2, True)],
                         ids=["same-padding", "stride2", "nonsquare", "1x1-pad2"])
def test_quantized_conv2d_matches_reference(c, o, k, stride, padding, bias):
    kh, kw = pair(k)
    w = rand(o, c, kh, kw, seed=o * c, scale=0.4) * along(np.geomspace(0.1, 3, o), 0, 4).astype(np.float32)
    b = rand(o, seed=1) if bias else None
    x = np.random.default_rng(c).uniform(0.5, 2.0, (2, c, 6, 5)).astype(np.float32)  # z_x = -128: padding matters
    sx, zx = (v[0] for v in ref_qparams(x))
    sw, zw = ref_qparams(w, 0)
    w_hat = sw.reshape(-1, 1, 1, 1).astype(np.float64) * (ref_quantize(w, sw, zw, 0).astype(np.float64)
                                                           - zw.reshape(-1, 1, 1, 1))
    x_hat = np.float64(sx) * (ref_quantize(x, sx, zx).astype(np.float64) - zx)
    grid = np.float64(sx) * sw.astype(np.float64)
    expected = conv_loops(x_hat, w_hat, None if b is None else np.rint(b / grid) * grid, stride, padding)
    qconv = call("QuantizedConv2d", QuantizedConv2d, ConvLike(w, b, stride, padding), qp_of(sx, zx))
    for mode in ("integer", "float"):
        out = call("QuantizedConv2d.forward", qconv, Tensor(x), mode=mode)
        assert_close(out, expected.astype(np.float32), f"QuantizedConv2d.forward (mode={mode!r}, vs loops over the "
                     "dequantized codes; the padding is the real 0, code zero_point)", [x],
                     atol=1e-5 * float(np.abs(expected).max()), rtol=1e-5)


@pytest.mark.task("QuantizedConv2d")
def test_quantized_conv2d_replaces_a_real_conv2d():
    conv_mod = pytest.importorskip("tinytorch.convolutions", reason="module 09 (convolutions) is not in this package")
    conv = conv_mod.Conv2d(3, 4, 3, stride=2, padding=1)
    x = rand(2, 3, 7, 7, seed=5)
    y = conv(Tensor(x)).data.astype(np.float64)
    sx, zx = (v[0] for v in ref_qparams(x))
    qconv = call("QuantizedConv2d", QuantizedConv2d, conv, qp_of(sx, zx))
    out = call("QuantizedConv2d.forward", qconv, Tensor(x))
    scale = np.abs(y).max()
    assert out.shape == y.shape, f"QuantizedConv2d.forward: shape {out.shape}, expected {y.shape}"
    assert np.abs(out.data - y).max() < 0.05 * scale, \
        f"QuantizedConv2d.forward: differs from the float Conv2d by {np.abs(out.data - y).max():.3g} (outputs ~{scale:.3g})"


# ---------------------------------------------------------------------------------------------
# quantize_model
# ---------------------------------------------------------------------------------------------
QM = "quantize_model"


class Net(Module):
    """Linear layers as attributes, inside a nested Sequential, and a Dropout before the head."""

    def __init__(self):
        super().__init__()
        self.fc1 = Linear(6, 8)
        self.act = ReLU()
        self.body = Sequential(Linear(8, 8), ReLU(), Sequential(Linear(8, 5), ReLU()))
        self.drop = Dropout(0.5)
        self.head = Linear(5, 3)

    def forward(self, x):
        return self.head(self.drop(self.body(self.act(self.fc1(x)))))

    def layer_inputs(self, x):
        """The input of every Linear, in the order of _quantizable (eval mode: no dropout)."""
        h1 = np.maximum(self.fc1(x).data, 0)
        h2 = np.maximum(self.body[0](Tensor(h1)).data, 0)
        h3 = np.maximum(self.body[2][0](Tensor(h2)).data, 0)
        return {"fc1": x.data, "body.0": h1, "body.2.0": h2, "head": h3}


def calibration_loader(n=29, batch=8, seed=0):
    from tinytorch.dataloader import DataLoader, TensorDataset

    x = rand(n, 6, seed=seed, scale=2.0, shift=0.5)
    y = np.arange(n) % 3
    return x, DataLoader(TensorDataset(x, y), batch_size=batch)  # 29 = 3 x 8 + 5: a short last batch


def quantized_layers(model) -> dict:
    return {name: m for name, m in model.named_modules() if isinstance(m, (QuantizedLinear, QuantizedConv2d))}


@pytest.mark.task("quantize_model")
def test_ptq_replaces_every_linear_and_keeps_the_original():
    net = Net()
    before = {k: v.copy() for k, v in net.state_dict().items()}
    _, loader = calibration_loader()
    q = call(QM, quantize_model, net, loader, mode="float")
    with blame(QM, "the model it returned"):
        names = {name: type(m).__name__ for name, m in q.named_modules()}
    left = [n for n, t in names.items() if t == "Linear"]
    if left:
        raise AssertionError(f"{QM}: Linear layers left unquantized: {left}")
    want = {"fc1", "body.0", "body.2.0", "head"}
    got = set(quantized_layers(q))
    if got != want:
        raise AssertionError(f"{QM}: quantized layers at {sorted(got)}, expected {sorted(want)}")
    if any(m.mode != "float" for m in quantized_layers(q).values()):
        raise AssertionError(f"{QM}: mode='float' was not passed on to the quantized layers")
    if q is net or any(type(m).__name__ != "Linear" for n, m in net.named_modules() if n in want):
        raise AssertionError(f"{QM}: changed the float model it was given; quantize a copy (copy.deepcopy)")
    if any(not np.array_equal(net.state_dict()[k], v) for k, v in before.items()):
        raise AssertionError(f"{QM}: changed the weights of the float model it was given")
    if q.training or any(getattr(m, "training", False) for _, m in q.named_modules() if isinstance(m, Module)):
        raise AssertionError(f"{QM}: the quantized model must be returned in eval mode")
    if not net.training:
        raise AssertionError(f"{QM}: switched the ORIGINAL model to eval mode; only the copy is calibrated")


@pytest.mark.task("quantize_model")
@pytest.mark.parametrize("method,p", [("minmax", 99.99), ("percentile", 90.0)])
def test_ptq_calibrates_each_layer_on_its_inputs(method, p):
    net = Net()
    x, loader = calibration_loader()
    q = call(QM, quantize_model, net, loader, method=method, percentile=p)
    seen = net.layer_inputs(Tensor(x))
    layers = quantized_layers(q)
    for name, inputs in seen.items():
        if name not in layers:
            raise AssertionError(f"{QM}: no quantized layer at {name!r}")
        with blame(QM, f"the input parameters of layer {name!r}"):
            qp = layers[name].input_qp
            s, z = float(qp.scale), int(qp.zero_point)
        es, ez = (float(v[0]) for v in ref_qparams(inputs, None, method, p))
        if not (abs(s - es) <= 1e-5 * es and abs(z - ez) <= 1):
            extra = ""
            if name == "head":
                h = inputs * 2  # what the head sees behind an active Dropout(0.5) (survivors doubled)
                if abs(s - ref_qparams(h, None, method, p)[0][0]) < 0.3 * es:
                    extra = " - it looks like dropout was active: calibrate in eval mode"
            raise AssertionError(f"{QM} (method={method!r}): layer {name!r} has input scale {s:.6g} and zero-point "
                                 f"{z}, expected {es:.6g} and {int(ez)} from ALL {len(inputs)} inputs it saw over the "
                                 f"calibration loader (every batch, the short last one too){extra}")


@pytest.mark.task("quantize_model")
def test_ptq_outputs_close_to_float():
    net = Net().eval()
    x, loader = calibration_loader(n=64, batch=16, seed=3)
    q = call(QM, quantize_model, net, [xb for xb, _ in loader])  # a plain list of batches works too
    xt = Tensor(rand(10, 6, seed=4, scale=2.0, shift=0.5))
    y = net(xt).data
    yi = call(QM, q, xt).data
    yf = call(QM, set_mode(q, "float"), xt).data
    scale = np.abs(y).max()
    assert np.abs(yi - y).max() < 0.05 * scale, \
        f"{QM}: the int8 model's outputs differ from the float model's by {np.abs(yi - y).max():.3g} (outputs ~{scale:.3g})"
    assert_close(yf, yi, f"{QM}: the float route and the integer route of the quantized model", [xt.data],
                 atol=1e-5 * scale, rtol=1e-5)


@pytest.mark.task("quantize_model")
def test_ptq_quantizes_conv2d_layers():
    conv_mod = pytest.importorskip("tinytorch.convolutions", reason="module 09 (convolutions) is not in this package")
    from tinytorch.layers import Flatten

    model = Sequential(conv_mod.Conv2d(1, 3, 3, padding=1), ReLU(), conv_mod.MaxPool2d(2), Flatten(), Linear(27, 4))
    calib = [rand(4, 1, 6, 6, seed=i) for i in range(3)]
    q = call(QM, quantize_model, model, calib)
    kinds = [type(m).__name__ for m in q]
    assert kinds[0] == "QuantizedConv2d" and kinds[-1] == "QuantizedLinear", \
        f"{QM}: layers {kinds}; the Conv2d must become a QuantizedConv2d and the Linear a QuantizedLinear"
    conv_in = np.concatenate([c.ravel() for c in calib])
    es, ez = (v[0] for v in ref_qparams(conv_in))
    with blame(QM, "the QuantizedConv2d's input parameters"):
        s = float(q[0].input_qp.scale)
    assert abs(s - es) <= 1e-5 * es, f"{QM}: the Conv2d's input scale {s:.6g}, expected {es:.6g}"
    x = Tensor(rand(2, 1, 6, 6, seed=9))
    y, yq = model(x).data, call(QM, q, x).data
    assert np.abs(yq - y).max() < 0.05 * np.abs(y).max(), f"{QM}: the int8 CNN's outputs are far from the float CNN's"


# ---------------------------------------------------------------------------------------------
# model_size_bytes
# ---------------------------------------------------------------------------------------------
class WithBuffers(Module):
    def __init__(self):
        super().__init__()
        self.lin = Linear(3, 2)
        self.register_buffer("codes", np.zeros((10, 10), np.int8))
        self.register_buffer("acc_bias", np.zeros(5, np.int32))
        self.register_buffer("table", Tensor(np.zeros(4), dtype=np.float64))


@pytest.mark.task("model_size_bytes")
def test_model_size_bytes_float_models():
    layer = Linear(400, 120)
    got = call("model_size_bytes", model_size_bytes, layer)
    assert got == 192_480, f"model_size_bytes: {got} for Linear(400, 120), expected 48,120 float32 numbers = 192,480"
    net = Sequential(Linear(4, 8), ReLU(), Linear(8, 2, bias=False))
    got = call("model_size_bytes", model_size_bytes, net)
    assert got == (32 + 8 + 16) * 4, f"model_size_bytes: {got} for a Sequential, expected {(32 + 8 + 16) * 4}"
    tied = Sequential(Linear(5, 5, bias=False), Linear(5, 5, bias=False))
    tied[1].weight = tied[0].weight  # one Parameter, two uses
    got = call("model_size_bytes", model_size_bytes, tied)
    assert got == 100, f"model_size_bytes: {got} for two layers sharing one 5x5 weight, expected 100 (counted once)"


@pytest.mark.task("model_size_bytes")
def test_model_size_bytes_counts_each_dtype():
    got = call("model_size_bytes", model_size_bytes, WithBuffers())
    expected = (6 + 2) * 4 + 100 * 1 + 5 * 4 + 4 * 8
    assert got == expected, \
        f"model_size_bytes: {got}, expected {expected}: float32 weights 4 bytes each, int8 codes 1, int32 4, float64 8 " \
        "(buffers count: they are stored)"
    assert isinstance(got, int), f"model_size_bytes: returned {type(got).__name__}, expected an int"
