"""Checks for module 09 (convolutions): im2col/col2im, conv2d, pooling, batch norm, the layers.

Forward values are checked against slow, obviously-correct loops written here (tiny shapes), every
backward rule with the central-difference gradcheck (float64), and both against PyTorch when it is
installed. The cases cover what goes wrong in practice: stride 2 (a stride forgotten in the
backward pass), padding, odd sizes, batch 1, no bias, one input channel, non-square kernels,
output sizes where (H + 2p - k) / s is a fraction (floor, never round or ceil). PyTorch's
conventions are checked without it too: max-pool ties go to the first maximum of each window
(overlapping windows and padding included), average pooling counts the zero padding, batch norm
keeps the unbiased running variance; every layer option is used with a non-default value.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinytorch.tensor as tt
from tinytorch.convolutions import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, MaxPool2d,
                                    avg_pool2d, batch_norm2d, col2im, conv2d, im2col, max_pool2d)
from tinytorch.tensor import Tensor
from tito.checks.harness import (assert_close, blame, call, check_rules, gradcheck, hypothesis_settings,
                                  torch_or_skip, torch_parity)

SETTINGS = hypothesis_settings(max_examples=20)


@pytest.fixture(autouse=True)
def _seed():
    tt.manual_seed(0)
    yield
    tt.manual_seed(0)


def rand(*shape, seed=0, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def fresh(*arrays) -> list[Tensor]:
    """Tensors on COPIES of `arrays`: a function that writes into its input cannot change the
    arrays that the expected values are computed from (see `untouched`)."""
    return [Tensor(np.array(a)) for a in arrays]


def untouched(name: str, tensors, arrays) -> None:
    for i, (t, a) in enumerate(zip(tensors, arrays)):
        if not np.array_equal(t.data, a):
            raise AssertionError(f"{name}: changed its input {i} in place (the caller's data: the previous "
                                 "layer's output, or the images)")


def parity(fn, fn_torch, *arrays, name: str, backward: str, atol=1e-5):
    """Forward vs PyTorch (a mismatch blames `name`), then the gradients of every input vs PyTorch
    (a mismatch blames the backward rule `backward`)."""
    torch = torch_or_skip()
    out = call(name, fn, *[Tensor(a) for a in arrays])
    expected = fn_torch(*[torch.tensor(a) for a in arrays]).detach().numpy()
    assert_close(out, expected, f"{name} (vs PyTorch)", arrays, atol=atol)
    torch_parity(fn, fn_torch, *arrays, name=backward, atol=atol)


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# ---------------------------------------------------------------------------------------------
# Slow references: loops over every output pixel (tiny shapes only)
# ---------------------------------------------------------------------------------------------
def conv_loops(x, w, b, stride, padding):
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho, wo = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    out = np.zeros((n, o, ho, wo))
    for y in range(ho):
        for z in range(wo):
            patch = xp[:, :, y * sh:y * sh + kh, z * sw:z * sw + kw]  # (N, C, kh, kw)
            out[:, :, y, z] = np.einsum("ncij,ocij->no", patch, w)
    return out + (0 if b is None else b[None, :, None, None])


def pool_loops(x, k, stride, padding, reduce):
    (kh, kw), (sh, sw), (ph, pw) = pair(k), pair(stride or k), pair(padding)
    fill = -np.inf if reduce is np.max else 0.0
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    ho, wo = (x.shape[2] + 2 * ph - kh) // sh + 1, (x.shape[3] + 2 * pw - kw) // sw + 1
    out = np.zeros(x.shape[:2] + (ho, wo))
    for y in range(ho):
        for z in range(wo):
            out[:, :, y, z] = reduce(xp[:, :, y * sh:y * sh + kh, z * sw:z * sw + kw], axis=(2, 3))
    return out


# (x shape, weight shape, stride, padding, bias): the cases every conv check runs
CONV_CASES = [
    ((2, 3, 5, 5), (4, 3, 3, 3), 1, 0, True),     # plain
    ((2, 3, 7, 6), (4, 3, 3, 3), 2, 1, True),     # stride 2, padding, odd and unequal sizes
    ((1, 2, 6, 7), (3, 2, 3, 2), (2, 1), (1, 0), False),  # batch 1, no bias, non-square everything
    ((3, 1, 8, 8), (5, 1, 5, 5), 1, 2, True),     # one input channel (LeNet's first layer)
    ((2, 4, 4, 4), (2, 4, 1, 1), 1, 0, True),     # 1x1 convolution
    ((1, 3, 9, 9), (2, 3, 3, 3), 3, 0, False),    # stride larger than 2
    ((1, 2, 8, 7), (2, 2, 2, 3), 3, 1, True),     # (8 + 2 - 2) / 3 = 2.67: floor, not round
]
CASE_IDS = ["plain", "stride2-pad", "batch1-nobias-nonsquare", "one-channel", "1x1", "stride3", "fractional"]


def conv_fn(stride, padding, bias):
    if bias:
        return lambda x, w, b: conv2d(x, w, b, stride, padding)
    return lambda x, w: conv2d(x, w, None, stride, padding)


def conv_inputs(xs, ws, bias, dtype=np.float32):
    arrays = [rand(*xs, seed=1, dtype=dtype), rand(*ws, seed=2, dtype=dtype)]
    return arrays + ([rand(ws[0], seed=3, dtype=dtype)] if bias else [])


# ---------------------------------------------------------------------------------------------
# im2col and col2im
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("im2col")
@pytest.mark.parametrize("sh, sw", [(1, 1), (2, 2), (2, 1), (1, 3)], ids=str)
def test_im2col_rows_are_receptive_fields(sh, sw):
    xp = np.arange(2 * 5 * 7 * 3, dtype=np.float32).reshape(2, 5, 7, 3)  # (N, Hp, Wp, C)
    kh, kw = 3, 2
    cols = call("im2col", im2col, xp, kh, kw, sh, sw)
    ho, wo = (5 - kh) // sh + 1, (7 - kw) // sw + 1
    expected = np.stack([xp[n, y * sh:y * sh + kh, z * sw:z * sw + kw, :].reshape(-1)
                         for n in range(2) for y in range(ho) for z in range(wo)])
    assert_close(cols, expected, f"im2col: kernel {kh}x{kw}, stride ({sh}, {sw}): row (n, y, x) must be "
                 "the receptive field of output pixel (y, x) of image n, ordered (i, j, c)", [xp])


@pytest.mark.task("col2im")
@SETTINGS
@given(n=st.integers(1, 2), h=st.integers(3, 7), w=st.integers(3, 7), c=st.integers(1, 3),
       kh=st.integers(1, 3), kw=st.integers(1, 3), sh=st.integers(1, 3), sw=st.integers(1, 3))
def test_col2im_is_the_adjoint_of_im2col(n, h, w, c, kh, kw, sh, sw):
    """<im2col(x), d> == <x, col2im(d)> for every x and d: col2im adds each entry back where
    im2col copied it from (overlapping windows add up); kernels and strides need not be square."""
    x = rand(n, h, w, c, seed=h * w, dtype=np.float64)
    cols = call("im2col", im2col, x, kh, kw, sh, sw)
    d = rand(*cols.shape, seed=kh + kw + sh + sw, dtype=np.float64)
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    back = call("col2im", col2im, d.reshape(n, ho, wo, kh, kw, c), x.shape, sh, sw)
    assert back.shape == x.shape, f"col2im: returned shape {back.shape}, expected {x.shape}"
    lhs, rhs = float(np.sum(cols * d)), float(np.sum(x * back))
    assert abs(lhs - rhs) <= 1e-8 * max(1.0, abs(lhs)), (
        f"col2im: not the adjoint of im2col for images {x.shape}, kernel {kh}x{kw}, stride ({sh}, {sw}): "
        f"<im2col(x), d> = {lhs:.6g} but <x, col2im(d)> = {rhs:.6g} (a stride or an offset is off)")


# ---------------------------------------------------------------------------------------------
# conv2d
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("conv2d")
@pytest.mark.parametrize("xs, ws, stride, padding, bias", CONV_CASES, ids=CASE_IDS)
def test_conv2d_forward_matches_loops(xs, ws, stride, padding, bias):
    arrays = conv_inputs(xs, ws, bias)
    ts = fresh(*arrays)
    out = call("conv2d", conv_fn(stride, padding, bias), *ts)
    untouched("conv2d", ts, arrays)
    expected = conv_loops(arrays[0], arrays[1], arrays[2] if bias else None, stride, padding)
    assert out.dtype == np.float32, f"conv2d: float32 inputs gave {out.dtype}; keep float32"
    assert_close(out, expected, f"conv2d: stride {stride}, padding {padding}, bias {bias}", arrays,
                 atol=1e-4)


@pytest.mark.task("conv2d")
@SETTINGS
@given(n=st.integers(1, 3), c=st.integers(1, 3), o=st.integers(1, 3), h=st.integers(1, 9),
       k=st.integers(1, 4), s=st.integers(1, 3), p=st.integers(0, 2))
def test_conv2d_output_shape(n, c, o, h, k, s, p):
    if h + 2 * p < k:
        return
    x, w = Tensor(rand(n, c, h, h + 1)), Tensor(rand(o, c, k, k))
    out = call("conv2d", conv2d, x, w, None, s, p)
    expected = (n, o, (h + 2 * p - k) // s + 1, (h + 1 + 2 * p - k) // s + 1)
    assert out.shape == expected, (f"conv2d: input {x.shape}, kernel {k}, stride {s}, padding {p} "
                                   f"gave shape {out.shape}; (H + 2p - k) // s + 1 says {expected}")


@pytest.mark.task("conv2d_backward")
@pytest.mark.parametrize("xs, ws, stride, padding, bias", CONV_CASES, ids=CASE_IDS)
def test_conv2d_backward_gradcheck(xs, ws, stride, padding, bias):
    gradcheck(conv_fn(stride, padding, bias), *conv_inputs(xs, ws, bias, np.float64),
              name=f"conv2d_backward: stride {stride}, padding {padding}, bias {bias}")


@pytest.mark.task("conv2d_backward")
def test_conv2d_backward_constant_input():
    """The first layer's input (the images) needs no gradient: the weights must still get theirs."""
    x, w, b = Tensor(rand(2, 1, 6, 6)), Tensor(rand(3, 1, 3, 3), requires_grad=True), \
        Tensor(rand(3), requires_grad=True)
    out = call("conv2d", conv2d, x, w, b, 1, 1)
    check_rules(out, "the input needs no gradient")
    call("conv2d_backward", out.sum().backward)
    assert x.grad is None, "conv2d_backward: the input did not require a gradient but received one"
    assert w.grad is not None and np.any(w.grad.data), "conv2d_backward: the weight got no gradient"
    assert_close(b.grad, np.full(3, 72.0), "conv2d_backward: bias gradient = sum of g over (N, H, W)",
                 [x.data])


@pytest.mark.task("conv2d")
@pytest.mark.parametrize("xs, ws, stride, padding, bias", CONV_CASES, ids=CASE_IDS)
def test_conv2d_matches_torch(xs, ws, stride, padding, bias):
    torch = torch_or_skip()
    F = torch.nn.functional
    th = (lambda x, w, b: F.conv2d(x, w, b, stride, padding)) if bias else \
        (lambda x, w: F.conv2d(x, w, None, stride, padding))
    what = f"stride {stride}, padding {padding}, bias {bias}"
    parity(conv_fn(stride, padding, bias), th, *conv_inputs(xs, ws, bias), name=f"conv2d: {what}",
           backward=f"conv2d_backward: {what}", atol=1e-4)


# ---------------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------------
# (x shape, kernel, stride, padding)
POOL_CASES = [((2, 3, 8, 8), 2, None, 0), ((1, 2, 7, 9), 3, 2, 1), ((2, 2, 5, 5), 2, 1, 0),
              ((1, 3, 7, 6), (3, 2), (2, 1), (1, 0)),
              ((1, 2, 10, 8), 3, 2, 0),   # (10 - 3) / 2 = 3.5 and (8 - 3) / 2 = 2.5: floor both
              ((2, 1, 7, 8), 2, 3, 1)]    # (7 + 2 - 2) / 3 = 2.33 and (8 + 2 - 2) / 3 = 2.67
POOL_IDS = ["2x2", "3x3-stride2-pad1-odd", "overlapping", "non-square", "fractional", "fractional-pad"]


@pytest.mark.task("max_pool2d")
@pytest.mark.parametrize("xs, k, s, p", POOL_CASES, ids=POOL_IDS)
def test_max_pool2d_forward_and_gradcheck(xs, k, s, p):
    x = rand(*xs, seed=4)
    (t,) = fresh(x)
    out = call("max_pool2d", max_pool2d, t, k, s, p)
    untouched("max_pool2d", [t], [x])
    assert_close(out, pool_loops(x, k, s, p, np.max), f"max_pool2d: kernel {k}, stride {s}, padding {p}",
                 [x])
    gradcheck(lambda t: max_pool2d(t, k, s, p), x.astype(np.float64),
              name=f"max_pool2d_backward: kernel {k}, stride {s}, padding {p}")


@pytest.mark.task("max_pool2d")
def test_max_pool2d_ties_go_to_the_first_maximum():
    """After a ReLU many windows are all zeros: the whole gradient goes to ONE input (the first
    in row-major order, as PyTorch), not to every tied input."""
    x = Tensor(np.array([[[[0, 0, 1, 3], [0, 0, 3, 2]]]], dtype=np.float32), requires_grad=True)
    out = call("max_pool2d", max_pool2d, x, 2)
    call("max_pool2d_backward", out.sum().backward)
    expected = np.array([[[[1, 0, 0, 1], [0, 0, 0, 0]]]], dtype=np.float32)
    assert_close(x.grad, expected, "max_pool2d_backward: ties must send the gradient to the first "
                 "maximum of each window only", [x.data])


def max_pool_grad_loops(x, g, k, stride, padding):
    """dL/dx of max pooling by a loop over windows: each window's gradient goes to the FIRST
    maximum in row-major order (np.argmax), as PyTorch; overlapping windows add up."""
    (kh, kw), (sh, sw), (ph, pw) = pair(k), pair(stride or k), pair(padding)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    dxp = np.zeros_like(xp)
    n, c, ho, wo = g.shape
    for a in range(n):
        for b in range(c):
            for y in range(ho):
                for z in range(wo):
                    win = xp[a, b, y * sh:y * sh + kh, z * sw:z * sw + kw]
                    i, j = np.unravel_index(np.argmax(win), win.shape)
                    dxp[a, b, y * sh + i, z * sw + j] += g[a, b, y, z]
    return dxp[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]


@pytest.mark.task("max_pool2d")
@pytest.mark.parametrize("xs, k, s, p", POOL_CASES, ids=POOL_IDS)
def test_max_pool2d_ties_everywhere(xs, k, s, p):
    """Inputs of only three distinct values (ReLU outputs are mostly tied zeros): for every
    window, overlapping or padded, the gradient goes to its first maximum only."""
    x = np.random.default_rng(12).integers(-1, 2, xs).astype(np.float32).clip(0, None)
    t = Tensor(x.copy(), requires_grad=True)
    out = call("max_pool2d", max_pool2d, t, k, s, p)
    assert_close(out, pool_loops(x, k, s, p, np.max), f"max_pool2d: kernel {k}, stride {s}, padding {p}", [x])
    g = rand(*out.shape, seed=13)
    check_rules(out, f"kernel {k}, stride {s}, padding {p}")
    call("max_pool2d_backward", out.backward, Tensor(g))
    assert_close(t.grad, max_pool_grad_loops(x, g, k, s, p), f"max_pool2d_backward: kernel {k}, stride {s}, "
                 f"padding {p}: with ties each window's gradient goes to its FIRST maximum only", [x])


@pytest.mark.task("avg_pool2d")
@pytest.mark.parametrize("xs, k, s, p", POOL_CASES, ids=POOL_IDS)
def test_avg_pool2d_forward_and_gradcheck(xs, k, s, p):
    x = rand(*xs, seed=5)
    (t,) = fresh(x)
    out = call("avg_pool2d", avg_pool2d, t, k, s, p)
    untouched("avg_pool2d", [t], [x])
    assert_close(out, pool_loops(x, k, s, p, np.mean), f"avg_pool2d: kernel {k}, stride {s}, padding {p}",
                 [x])
    gradcheck(lambda t: avg_pool2d(t, k, s, p), x.astype(np.float64),
              name=f"avg_pool2d_backward: kernel {k}, stride {s}, padding {p}")


@pytest.mark.task("max_pool2d")
@pytest.mark.parametrize("xs, k, s, p", POOL_CASES, ids=POOL_IDS)
def test_pools_match_torch(xs, k, s, p):
    torch = torch_or_skip()
    F = torch.nn.functional
    x = rand(*xs, seed=6)
    what = f"kernel {k}, stride {s}, padding {p}"
    parity(lambda t: max_pool2d(t, k, s, p), lambda t: F.max_pool2d(t, k, s, p), x,
           name=f"max_pool2d: {what}", backward=f"max_pool2d_backward: {what}")
    parity(lambda t: avg_pool2d(t, k, s, p), lambda t: F.avg_pool2d(t, k, s, p), x,
           name=f"avg_pool2d: {what}", backward=f"avg_pool2d_backward: {what}")


# ---------------------------------------------------------------------------------------------
# Batch normalisation
# ---------------------------------------------------------------------------------------------
BN_SHAPES = [(4, 3, 5, 5), (2, 2, 3, 1), (1, 3, 2, 2)]


def bn_inputs(xs, dtype=np.float32):
    c = xs[1]
    return rand(*xs, seed=7, dtype=dtype) * 2 + 1, rand(c, seed=8, dtype=dtype), rand(c, seed=9, dtype=dtype)


@pytest.mark.task("batch_norm2d")
@pytest.mark.parametrize("xs", BN_SHAPES, ids=str)
def test_batch_norm2d_train_forward_and_running_stats(xs):
    x, gamma, beta = bn_inputs(xs)
    c, m = xs[1], xs[0] * xs[2] * xs[3]
    rm, rv = np.full(c, 0.5, np.float32), np.full(c, 2.0, np.float32)
    ts = fresh(x, gamma, beta)
    out = call("batch_norm2d", batch_norm2d, *ts, rm, rv, True, 0.1, 1e-5)
    untouched("batch_norm2d", ts, [x, gamma, beta])
    x64 = x.astype(np.float64)
    mean, var = x64.mean(axis=(0, 2, 3)), x64.var(axis=(0, 2, 3))
    expected = (x64 - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5) * gamma[:, None, None] \
        + beta[:, None, None]
    assert_close(out, expected, "batch_norm2d: in training, normalise with the batch mean and the "
                 "biased variance over N, H, W", [x, gamma, beta], atol=1e-4)
    assert_close(rm, 0.9 * 0.5 + 0.1 * mean, "batch_norm2d: running_mean <- (1 - momentum) running_mean "
                 "+ momentum * batch mean, updated in place", [x])
    assert_close(rv, 0.9 * 2.0 + 0.1 * var * m / (m - 1), "batch_norm2d: running_var <- (1 - momentum) "
                 "running_var + momentum * UNBIASED batch variance, updated in place", [x], atol=1e-4)


@pytest.mark.task("batch_norm2d")
def test_batch_norm2d_eval_uses_running_stats():
    """In eval mode an image's output must not depend on the rest of the batch."""
    x, gamma, beta = bn_inputs((4, 3, 3, 3))
    rm, rv = np.array([0.5, -1, 2], np.float32), np.array([2, 0.5, 1], np.float32)
    before = (rm.copy(), rv.copy())
    ts = fresh(x, gamma, beta)
    out = call("batch_norm2d", batch_norm2d, *ts, rm, rv, False)
    untouched("batch_norm2d", ts, [x, gamma, beta])
    expected = (x - rm[:, None, None]) / np.sqrt(rv[:, None, None] + 1e-5) * gamma[:, None, None] \
        + beta[:, None, None]
    assert_close(out, expected, "batch_norm2d: in eval mode, normalise with running_mean/running_var", [x],
                 atol=1e-4)
    assert np.array_equal(rm, before[0]) and np.array_equal(rv, before[1]), \
        "batch_norm2d: eval mode must not change the running statistics"
    alone = call("batch_norm2d", batch_norm2d, Tensor(x[:1]), Tensor(gamma), Tensor(beta), rm, rv, False)
    assert_close(alone, out.data[:1], "batch_norm2d: in eval mode an image alone must give the same output "
                 "as inside a batch", [x[:1]], atol=1e-5)


def bn_reference(x, gamma, beta, mean, var, eps):
    c = (slice(None), None, None)
    return (x.astype(np.float64) - mean[c]) / np.sqrt(var[c] + eps) * gamma[c] + beta[c]


@pytest.mark.task("batch_norm2d")
def test_batch_norm2d_momentum_and_eps():
    """momentum=0.3 and eps=0.5 (large enough that where eps goes matters), two training batches
    then eval: every output and both running statistics by the formula."""
    x, gamma, beta = bn_inputs((3, 2, 4, 3))
    x2 = rand(2, 2, 3, 5, seed=14) * 3 - 1
    rm, rv = np.array([0.5, -1.0], np.float32), np.array([2.0, 0.5], np.float32)
    want_rm, want_rv = rm.astype(np.float64), rv.astype(np.float64)
    for k, batch in enumerate((x, x2), start=1):
        ts = fresh(batch, gamma, beta)
        out = call("batch_norm2d", batch_norm2d, *ts, rm, rv, True, 0.3, 0.5)
        untouched("batch_norm2d", ts, [batch, gamma, beta])
        b64, m = batch.astype(np.float64), batch.shape[0] * batch.shape[2] * batch.shape[3]
        mean, var = b64.mean(axis=(0, 2, 3)), b64.var(axis=(0, 2, 3))
        assert_close(out, bn_reference(batch, gamma, beta, mean, var, 0.5), f"batch_norm2d (training, eps=0.5, "
                     f"batch {k}): (x - mean) / sqrt(var + eps) * gamma + beta", [batch], atol=1e-4)
        want_rm = 0.7 * want_rm + 0.3 * mean
        want_rv = 0.7 * want_rv + 0.3 * var * m / (m - 1)
        assert_close(rm, want_rm, f"batch_norm2d (momentum=0.3, running_mean after batch {k})", [batch], atol=1e-5)
        assert_close(rv, want_rv, f"batch_norm2d (momentum=0.3, running_var after batch {k}, unbiased)", [batch],
                     atol=1e-4)
    out = call("batch_norm2d", batch_norm2d, Tensor(x2), Tensor(gamma), Tensor(beta), rm, rv, False, 0.3, 0.5)
    assert_close(out, bn_reference(x2, gamma, beta, rm, rv, 0.5), "batch_norm2d (eval, eps=0.5: the running "
                 "statistics)", [x2], atol=1e-4)


@pytest.mark.task("batch_norm2d")
def test_batch_norm2d_constant_channel():
    """A channel with one value everywhere (a dead ReLU channel): variance 0, so xhat = 0 and the
    output is beta - finite, no 0 / 0 - and the gradients stay finite and right."""
    x, gamma, beta = bn_inputs((2, 3, 3, 3))
    x[:, 1] = 0.7
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    with np.errstate(all="ignore"):
        out = call("batch_norm2d", batch_norm2d, Tensor(x), Tensor(gamma), Tensor(beta), rm, rv, True)
    assert np.isfinite(out.data).all(), "batch_norm2d: a constant channel gave non-finite outputs (eps inside the sqrt)"
    assert_close(out.data[:, 1], np.full((2, 3, 3), beta[1]), "batch_norm2d (a constant channel outputs beta)", [x],
                 atol=1e-3)  # (float32 rounding of the mean, divided by sqrt(eps))
    stats = (np.zeros(3), np.ones(3))
    gradcheck(lambda t, g, b: batch_norm2d(t, g, b, stats[0].copy(), stats[1].copy(), True),
              x.astype(np.float64), gamma.astype(np.float64), beta.astype(np.float64),
              name="batch_norm2d_backward: training mode, one channel constant (variance 0)")


@pytest.mark.task("batch_norm2d")
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("xs", BN_SHAPES, ids=str)
def test_batch_norm2d_backward_gradcheck(xs, training):
    c = xs[1]
    stats = (np.linspace(-0.5, 0.5, c), np.linspace(0.5, 2.0, c))

    def fn(x, g, b):  # fresh running stats per call: the numeric gradient calls fn many times
        return batch_norm2d(x, g, b, stats[0].copy(), stats[1].copy(), training)

    mode = "train" if training else "eval"
    gradcheck(fn, *bn_inputs(xs, np.float64), name=f"batch_norm2d_backward: {mode} mode")


@pytest.mark.task("batch_norm2d")
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm2d_matches_torch(training):
    torch = torch_or_skip()
    x, gamma, beta = bn_inputs((4, 3, 5, 5))
    rm, rv = np.full(3, 0.2, np.float32), np.full(3, 1.5, np.float32)
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    mode = "train" if training else "eval"
    parity(lambda t, g, b: batch_norm2d(t, g, b, rm, rv, training),
           lambda t, g, b: torch.nn.functional.batch_norm(t, trm, trv, g, b, training, 0.1, 1e-5),
           x, gamma, beta, name=f"batch_norm2d: {mode} mode", backward=f"batch_norm2d_backward: {mode} mode",
           atol=1e-4)
    assert_close(rm, trm.numpy(), "batch_norm2d: running_mean differs from PyTorch's", [x])
    assert_close(rv, trv.numpy(), "batch_norm2d: running_var differs from PyTorch's", [x], atol=1e-4)


# ---------------------------------------------------------------------------------------------
# The layers, and a small CNN that learns
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("Conv2d")
def test_layers_wrap_the_functions():
    x = Tensor(rand(2, 3, 8, 8))
    conv = Conv2d(3, 4, 3, stride=2, padding=1)
    assert conv.weight.shape == (4, 3, 3, 3) and conv.bias.shape == (4,), "Conv2d: parameter shapes"
    assert len(conv.parameters()) == 2, "Conv2d: weight and bias must be registered parameters"
    out = call("Conv2d.forward", conv, x)
    assert_close(out, conv_loops(x.data, conv.weight.data, conv.bias.data, 2, 1), "Conv2d.forward", [x.data],
                 atol=1e-4)
    assert_close(call("MaxPool2d.forward", MaxPool2d(2), x), pool_loops(x.data, 2, 2, 0, np.max),
                 "MaxPool2d.forward: stride defaults to the kernel size", [x.data])
    assert_close(call("AvgPool2d.forward", AvgPool2d(2), x), pool_loops(x.data, 2, 2, 0, np.mean),
                 "AvgPool2d.forward", [x.data])
    assert_close(call("AdaptiveAvgPool2d.forward", AdaptiveAvgPool2d(1), x),
                 x.data.mean(axis=(2, 3), keepdims=True), "AdaptiveAvgPool2d.forward: output size 1 is the global average", [x.data])


@pytest.mark.task("Conv2d")
def test_conv2d_layer_options():
    """Conv2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 0), bias=False): shapes, PyTorch's init
    bound 1/sqrt(fan_in), the forward, and a gradient for the weight only."""
    conv = Conv2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 0), bias=False)
    assert conv.weight.shape == (3, 2, 3, 2) and conv.bias is None, "Conv2d: weight (3, 2, 3, 2) and no bias"
    assert len(conv.parameters()) == 1, "Conv2d(bias=False): only the weight is a parameter"
    assert np.abs(conv.weight.data).max() <= 1 / np.sqrt(2 * 3 * 2), "Conv2d: init bound 1/sqrt(fan_in)"
    x = Tensor(rand(2, 2, 7, 5, seed=15))
    out = call("Conv2d.forward", conv, x)
    assert_close(out, conv_loops(x.data, conv.weight.data, None, (2, 1), (1, 0)),
                 "Conv2d.forward (kernel (3, 2), stride (2, 1), padding (1, 0), bias=False)", [x.data], atol=1e-4)
    check_rules(out, "Conv2d(bias=False)")
    call("conv2d_backward", out.sum().backward)
    assert conv.weight.grad is not None and conv.weight.grad.shape == conv.weight.shape, \
        "conv2d_backward: the weight of Conv2d(bias=False) got no gradient of its shape"


@pytest.mark.task("max_pool2d")
def test_pool_layers_with_stride_and_padding():
    x = rand(2, 3, 7, 6, seed=16)
    for layer, reduce, args in [(MaxPool2d(3, stride=2, padding=1), np.max, (3, 2, 1)),
                                (AvgPool2d((3, 2), stride=(2, 1), padding=(1, 0)), np.mean, ((3, 2), (2, 1), (1, 0)))]:
        name = f"{type(layer).__name__}.forward"
        assert_close(call(name, layer, Tensor(x)), pool_loops(x, *args, reduce),
                     f"{name} (kernel {args[0]}, stride {args[1]}, padding {args[2]})", [x])


@pytest.mark.task("avg_pool2d")
def test_adaptive_avg_pool2d_output_sizes():
    """Output sizes (2, 3) and (3, 1): windows of H/oh x W/ow; a size that does not divide the
    input is refused (ValueError), never floored into a window that skips rows."""
    x = rand(2, 2, 6, 9, seed=17)
    got = call("AdaptiveAvgPool2d.forward", AdaptiveAvgPool2d((2, 3)), Tensor(x))
    assert_close(got, x.reshape(2, 2, 2, 3, 3, 3).mean(axis=(3, 5)), "AdaptiveAvgPool2d.forward (output (2, 3) "
                 "of 6x9: 3x3 windows)", [x])
    got = call("AdaptiveAvgPool2d.forward", AdaptiveAvgPool2d((3, 1)), Tensor(x))
    assert_close(got, x.reshape(2, 2, 3, 2, 1, 9).mean(axis=(3, 5)), "AdaptiveAvgPool2d.forward (output (3, 1) "
                 "of 6x9: 2x9 windows)", [x])
    with pytest.raises(ValueError):
        AdaptiveAvgPool2d((4, 3))(Tensor(x))  # 6 rows do not split into 4 windows


@pytest.mark.task("batch_norm2d")
def test_batchnorm2d_layer_options_and_state():
    """BatchNorm2d(3, eps=0.1, momentum=0.25): two training batches update the running statistics
    exactly; eval mode uses them; a fresh layer given the state_dict behaves the same in eval."""
    bn = BatchNorm2d(3, eps=0.1, momentum=0.25)
    want_rm, want_rv = np.zeros(3), np.ones(3)
    for k, seed in enumerate((18, 19), start=1):
        x = rand(4, 3, 3, 2, seed=seed) * 2 + 1
        out = call("BatchNorm2d.forward", bn, Tensor(x))
        x64, m = x.astype(np.float64), 4 * 3 * 2
        mean, var = x64.mean(axis=(0, 2, 3)), x64.var(axis=(0, 2, 3))
        assert_close(out, bn_reference(x, np.ones(3), np.zeros(3), mean, var, 0.1),
                     f"BatchNorm2d.forward (training, eps=0.1, batch {k})", [x], atol=1e-4)
        want_rm, want_rv = 0.75 * want_rm + 0.25 * mean, 0.75 * want_rv + 0.25 * var * m / (m - 1)
        assert_close(bn.running_mean, want_rm, f"BatchNorm2d.forward (momentum=0.25: running_mean, batch {k})", [x])
        assert_close(bn.running_var, want_rv, f"BatchNorm2d.forward (momentum=0.25: running_var, batch {k})", [x],
                     atol=1e-4)
    bn.eval()
    x = rand(2, 3, 2, 2, seed=20)
    out = call("BatchNorm2d.forward", bn, Tensor(x))
    assert_close(out, bn_reference(x, np.ones(3), np.zeros(3), want_rm, want_rv, 0.1),
                 "BatchNorm2d.forward (eval: the running statistics, eps=0.1)", [x], atol=1e-4)
    fresh = BatchNorm2d(3, eps=0.1, momentum=0.25)
    with blame("BatchNorm2d", "load_state_dict of a trained layer's state_dict"):
        fresh.load_state_dict(bn.state_dict())
    fresh.eval()
    assert_close(call("BatchNorm2d.forward", fresh, Tensor(x)), out.data,
                 "BatchNorm2d (a fresh layer with the trained state_dict, in eval mode)", [x], atol=1e-6)


@pytest.mark.task("batch_norm2d")
def test_batchnorm2d_layer_modes_and_state():
    bn = BatchNorm2d(3, momentum=0.5)
    x = Tensor(rand(8, 3, 4, 4) * 3 + 2)
    train_out = call("BatchNorm2d.forward", bn, x)
    assert abs(float(train_out.data.mean())) < 1e-4, "BatchNorm2d.forward: in training the output mean should be ~0"
    assert not np.allclose(bn.running_mean.data, 0), "BatchNorm2d.forward: in training running_mean was not updated"
    state = bn.state_dict()
    assert {"running_mean", "running_var", "weight", "bias"} <= set(state), \
        f"BatchNorm2d: running statistics must be saved in the state_dict, got keys {sorted(state)}"
    bn.eval()
    eval_out = call("BatchNorm2d.forward", bn, x)
    assert not np.allclose(eval_out.data, train_out.data, atol=1e-3), \
        "BatchNorm2d.forward: in eval mode it used the batch statistics instead of the running ones"


@pytest.mark.task("Conv2d")
def test_small_cnn_learns_and_every_parameter_gets_a_gradient():
    """Conv -> BN -> ReLU -> pool -> conv -> global pool -> flatten -> linear, on a toy task
    (is the bright square in the left or the right half?). The conv weights must get gradients
    THROUGH the flatten, and the loss must fall."""
    from tinytorch.activations import ReLU
    from tinytorch.layers import Flatten, Linear, Sequential
    from tinytorch.losses import CrossEntropyLoss

    rng = np.random.default_rng(0)
    n = 32
    x = rng.standard_normal((n, 1, 8, 8)).astype(np.float32) * 0.1
    y = rng.integers(0, 2, n)
    for i in range(n):
        c = 1 + 4 * y[i]
        x[i, 0, 3:5, c:c + 2] += 2.0
    model = Sequential(Conv2d(1, 4, 3, padding=1), BatchNorm2d(4), ReLU(), MaxPool2d(2),
                       Conv2d(4, 8, 3, padding=1), ReLU(), AdaptiveAvgPool2d(1), Flatten(), Linear(8, 2))
    crit = CrossEntropyLoss()
    losses = []
    for step in range(30):  # plain gradient descent (module 07's optimizers are not needed here)
        model.zero_grad()
        loss = crit(model(Tensor(x)), y)  # a crash is reported at the function that raised it
        if step == 0:
            check_rules(loss, "a small CNN")  # a rule's wrong shape names the rule, not the engine
        loss.backward()
        if step == 0:
            for name, p in model.named_parameters():
                assert p.grad is not None and np.isfinite(p.grad.data).all() and np.any(p.grad.data), \
                    f"conv2d_backward: parameter {name} {p.shape} got no usable gradient in a small CNN"
        losses.append(loss.item())
        for p in model.parameters():
            p.data -= 0.2 * p.grad.data
    assert losses[-1] < 0.5 * losses[0], (f"Conv2d: a small CNN did not learn a toy task "
                                          f"(loss {losses[0]:.3f} -> {losses[-1]:.3f})")
