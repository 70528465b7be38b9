"""Checks for module 12 (attention): causal_mask, scaled_dot_product_attention and its backward
rule, MultiHeadAttention.

The forward pass is compared with a slow loop over every query row written here (float64), on
2-D, 3-D and 4-D inputs, Tq != Tk, dv != d, broadcast batch axes, causal, padding and random
masks, batch 1, one head, odd lengths; a wrong result that matches a known bug - no 1/sqrt(d),
a softmax over the queries, an inverted mask, a causal mask off by one - says so. Masks are also
checked by what they mean, without any oracle: masked weights are exactly zero, changing a masked
key or value changes nothing, a position never sees a later one but does see itself, a row with
no allowed key gives 0 (not NaN). The backward rule is gradchecked (float64) on the same cases.
MultiHeadAttention is compared with one loop per head over explicit column slices (a head split
or merge by reshape without its transpose says so), must run all heads through ONE sdpa op, and
is gradchecked. PyTorch's scaled_dot_product_attention and nn.MultiheadAttention are second
oracles when installed; every convention they check (True = may attend, top-left causal, the
scale, the q|k|v and head layout) is also checked without them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinytorch.tensor as tt
from tinytorch.attention import MultiHeadAttention, causal_mask, scaled_dot_product_attention
from tinytorch.tensor import Tensor
from tito.checks.harness import (assert_close, blame, call, check_rules, gradcheck, hypothesis_settings,
                                  torch_or_skip)

SETTINGS = hypothesis_settings(max_examples=20)
SDPA = "scaled_dot_product_attention"


@pytest.fixture(autouse=True)
def _seed():
    tt.manual_seed(0)
    yield
    tt.manual_seed(0)


def rand(*shape, seed=0, dtype=np.float32, scale=1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


# ---------------------------------------------------------------------------------------------
# References: a loop over every query row, and a vectorised one for the known bugs
# ---------------------------------------------------------------------------------------------
def lower(tq: int, tk: int, shift: int = 0) -> np.ndarray:
    """[[j <= i + shift]]: shift 0 is causal, +1 sees the next token, -1 hides the token itself."""
    return np.array([[j <= i + shift for j in range(tk)] for i in range(tq)])


def attention_loop(q, k, v, allowed=None):
    """The obviously correct attention, one query row at a time, in float64: (out, weights)."""
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2],
                                () if allowed is None else np.shape(allowed)[:-2])
    (tq, d), (tk, dv) = q.shape[-2:], v.shape[-2:]
    allowed = np.ones((tq, tk), bool) if allowed is None else np.asarray(allowed)
    qb, kb, vb = (np.broadcast_to(a, batch + a.shape[-2:]) for a in (q, k, v))
    ab = np.broadcast_to(allowed, batch + (tq, tk))
    out, weights = np.zeros(batch + (tq, dv)), np.zeros(batch + (tq, tk))
    for b in np.ndindex(*batch):
        for i in range(tq):
            keys = [j for j in range(tk) if ab[b][i, j]]
            if not keys:
                continue  # nothing to attend to: weights 0, output 0
            s = np.array([qb[b][i] @ kb[b][j] / math.sqrt(d) for j in keys])
            w = np.exp(s - s.max())
            w /= w.sum()
            for wj, j in zip(w, keys):
                weights[b][i, j] = wj
                out[b][i] += wj * vb[b][j]
    return out, weights


def attention_variant(q, k, v, allowed=None, scale=None, axis=-1):
    """Attention with a chosen scale and softmax axis (vectorised, float64): the known bugs."""
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = (q * scale) @ np.swapaxes(k, -1, -2)
    if allowed is not None:
        s = np.where(allowed, s, -np.inf)
    top = s.max(axis=axis, keepdims=True)
    top[~np.isfinite(top)] = 0
    w = np.exp(s - top)
    total = w.sum(axis=axis, keepdims=True)
    w /= np.where(total > 0, total, 1)
    return w @ v


def diagnose(name: str, got: np.ndarray, q, k, v, mask, causal: bool, what: str) -> None:
    """If `got` is what a known bug computes, say which bug."""
    (tq, d), (tk, dv) = q.shape[-2:], v.shape[-2:]
    allowed = combined(mask, causal, tq, tk)
    truth = attention_variant(q, k, v, allowed)
    variants = [("without the 1/sqrt(d) scale", allowed, 1.0, -1),
                (f"scaled by 1/d instead of 1/sqrt(d) (d = {d})", allowed, 1.0 / d, -1),
                ("with the softmax over the queries (axis -2) instead of over the keys (the last axis)",
                 allowed, None, -2)]
    if dv != d:
        variants.append((f"scaled by 1/sqrt(dv) = 1/sqrt({dv}), the value size; the scale uses d = {d}, the size "
                         "of queries and keys", allowed, 1.0 / math.sqrt(dv), -1))
    if mask is not None:
        variants.append(("with the mask inverted: True means 'may attend' (PyTorch's boolean attn_mask)",
                         combined(~mask, causal, tq, tk), None, -1))
    if causal:
        base = np.ones((tq, tk), bool) if mask is None else mask
        variants += [("with the causal mask off by one: position i also sees the NEXT token i + 1 (keys j <= i + 1)",
                      base & lower(tq, tk, 1), None, -1),
                     ("with the causal mask off by one: position i does not see itself (keys j < i; it must be "
                      "j <= i)", base & lower(tq, tk, -1), None, -1),
                     ("without the causal mask: is_causal=True must hide the keys j > i", mask, None, -1),
                     ("with the causal mask inverted: True means 'may attend', keys j <= i", base & ~lower(tq, tk),
                      None, -1)]
    for label, alt_allowed, scale, axis in variants:
        with np.errstate(all="ignore"):
            alt = attention_variant(q, k, v, alt_allowed, scale, axis)
        if got.shape == alt.shape and np.allclose(got, alt, atol=1e-5) and not np.allclose(alt, truth, atol=1e-5):
            raise AssertionError(f"{name}: {what}: the output is attention {label}")


# ---------------------------------------------------------------------------------------------
# Cases: (id, q shape, k shape, v shape, mask kind, is_causal)
# ---------------------------------------------------------------------------------------------
CASES = [
    ("2d", (3, 4), (3, 4), (3, 4), None, False),
    ("batch-tq-ne-tk-dv-ne-d", (2, 5, 3), (2, 7, 3), (2, 7, 2), None, False),
    ("4d-causal", (2, 3, 5, 4), (2, 3, 5, 4), (2, 3, 5, 4), None, True),
    ("causal-fewer-queries", (2, 3, 4), (2, 5, 4), (2, 5, 3), None, True),
    ("causal-more-queries", (1, 5, 2), (1, 3, 2), (1, 3, 2), None, True),
    ("batch1-head1-odd-causal", (1, 1, 7, 5), (1, 1, 7, 5), (1, 1, 7, 3), None, True),
    ("padding", (2, 2, 5, 4), (2, 2, 5, 4), (2, 2, 5, 4), "padding", False),
    ("padding-and-causal", (2, 2, 5, 4), (2, 2, 5, 4), (2, 2, 5, 4), "padding", True),
    ("random-mask", (2, 4, 3), (2, 6, 3), (2, 6, 5), "random", False),
    ("broadcast-batch", (2, 1, 3, 4), (1, 3, 5, 4), (1, 3, 5, 2), None, False),
    ("one-key", (2, 3, 4), (2, 1, 4), (2, 1, 2), None, False),
]
CASE_IDS = [c[0] for c in CASES]
CASE_ARGS = [c[1:] for c in CASES]


def make_mask(kind, qs, ks, seed=0):
    """None; a key-padding mask (B, 1, 1, Tk) (sequence b has Tk - 2b real tokens); or a random
    (Tq, Tk) mask with at least one allowed key in every row."""
    tq, tk = qs[-2], ks[-2]
    if kind is None:
        return None
    if kind == "padding":
        b = qs[0]
        lengths = np.array([tk - 2 * i for i in range(b)])
        return (np.arange(tk)[None, :] < lengths[:, None]).reshape(b, 1, 1, tk)
    rng = np.random.default_rng(seed)
    m = rng.random((tq, tk)) < 0.5
    m[np.arange(tq), rng.integers(0, tk, tq)] = True
    return m


def combined(mask, causal, tq, tk):
    """What the call means: mask & causal triangle (or None)."""
    if causal:
        return lower(tq, tk) if mask is None else mask & lower(tq, tk)
    return mask


def inputs(qs, ks, vs, dtype=np.float32, seed=0):
    return [rand(*qs, seed=seed + 1, dtype=dtype), rand(*ks, seed=seed + 2, dtype=dtype),
            rand(*vs, seed=seed + 3, dtype=dtype)]


def attend(q, k, v, mask=None, is_causal=False, weights=False, requires_grad=False):
    """scaled_dot_product_attention on Tensors over COPIES of the arrays (a write into an input
    cannot change what the expected values are computed from); checks it returned a Tensor."""
    ts = [Tensor(np.array(a), dtype=np.asarray(a).dtype, requires_grad=requires_grad) for a in (q, k, v)]
    res = call(SDPA, scaled_dot_product_attention, *ts, mask=mask, is_causal=is_causal, return_weights=weights)
    out = res[0] if weights else res
    if not isinstance(out, Tensor):
        raise AssertionError(f"{SDPA}: returned {type(out).__name__}, expected a Tensor")
    for i, (t, a) in enumerate(zip(ts, (q, k, v))):
        if not np.array_equal(t.data, a):
            raise AssertionError(f"{SDPA}: changed its input {'qkv'[i]} in place")
    return res


# ---------------------------------------------------------------------------------------------
# causal_mask
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("causal_mask")
@pytest.mark.parametrize("tq, tk", [(1, 1), (4, 4), (3, 5), (5, 2), (7, 7)])
def test_causal_mask_is_the_lower_triangle(tq, tk):
    m = call("causal_mask", causal_mask, tq, tk)
    m = np.asarray(m)
    assert m.shape == (tq, tk), f"causal_mask({tq}, {tk}): shape {m.shape}, expected {(tq, tk)}"
    assert m.dtype == np.bool_, f"causal_mask: returned {m.dtype}, expected bool (True = may attend)"
    if tq > 1 and tk > 1 and np.array_equal(m, lower(tq, tk, 1)):
        raise AssertionError(f"causal_mask({tq}, {tk}): query i may attend key i + 1 - the next token, the one "
                             "it must predict; keys j <= i only")
    if np.array_equal(m, lower(tq, tk, -1)):
        raise AssertionError(f"causal_mask({tq}, {tk}): query i may not attend key i, itself (row 0 sees nothing); "
                             "keys j <= i are allowed")
    if np.array_equal(m, ~lower(tq, tk)):
        raise AssertionError(f"causal_mask({tq}, {tk}): the mask is inverted; True means 'may attend'")
    assert np.array_equal(m, lower(tq, tk)), (
        f"causal_mask({tq}, {tk}): got\n{m.astype(int)}\nexpected True where key j <= query i:\n"
        f"{lower(tq, tk).astype(int)}")


# ---------------------------------------------------------------------------------------------
# scaled_dot_product_attention: forward
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("scaled_dot_product_attention")
def test_sdpa_forward_worked_example():
    K = np.array([[1, 0], [0, 1], [1, 1]], np.float32)
    V = np.array([[1, 0], [0, 2], [3, 3]], np.float32)
    q = np.array([[2, 0]], np.float32)
    out, w = attend(q, K, V, weights=True)
    expected_w = np.array([[0.4458083, 0.1083835, 0.4458083]])
    unscaled = np.array([[0.4683, 0.0634, 0.4683]])  # softmax(2, 0, 2)
    if np.allclose(np.asarray(w), unscaled, atol=1e-3):
        raise AssertionError(f"{SDPA}: worked example: weights {np.round(w, 4).tolist()} are softmax(q k^T) without "
                             "the 1/sqrt(d) scale; expected [0.4458, 0.1084, 0.4458]")
    assert_close(w, expected_w, f"{SDPA}: the worked example's weights (scores (2, 0, 2) / sqrt(2))", [q, K, V])
    assert_close(out, [[1.7832331, 1.5541917]], f"{SDPA}: the worked example's output", [q, K, V])


@pytest.mark.task("scaled_dot_product_attention")
@pytest.mark.parametrize("qs, ks, vs, mask_kind, causal", CASE_ARGS, ids=CASE_IDS)
def test_sdpa_forward_matches_a_loop(qs, ks, vs, mask_kind, causal):
    q, k, v = inputs(qs, ks, vs)
    mask = make_mask(mask_kind, qs, ks)
    out = attend(q, k, v, mask=mask, is_causal=causal, requires_grad=True)
    tq, tk = qs[-2], ks[-2]
    what = f"q {qs}, k {ks}, v {vs}, mask {None if mask is None else mask.shape}, is_causal={causal}"
    expected, _ = attention_loop(q, k, v, combined(mask, causal, tq, tk))
    assert out.shape == expected.shape, f"{SDPA}: {what}: output shape {out.shape}, expected {expected.shape}"
    assert out.dtype == np.float32, (f"{SDPA}: float32 inputs gave a {out.dtype} output (np.sqrt(d) is a NumPy float64: "
                                     "use math.sqrt, a Python float)")
    diagnose(SDPA, out.data, q, k, v, mask, causal, what)
    assert_close(out, expected, f"{SDPA}: {what}", [q, k, v])
    assert out._op == "sdpa" and len(out._parents) == 3, (
        f"{SDPA}: the output must be ONE recorded 'sdpa' op with parents (q, k, v), got op {out._op!r}")


@pytest.mark.task("scaled_dot_product_attention")
@pytest.mark.parametrize("qs, ks, vs, mask_kind, causal", CASE_ARGS, ids=CASE_IDS)
def test_sdpa_forward_weights(qs, ks, vs, mask_kind, causal):
    """return_weights=True: (..., Tq, Tk), rows sum to 1, masked entries exactly 0."""
    q, k, v = inputs(qs, ks, vs, seed=5)
    mask = make_mask(mask_kind, qs, ks, seed=1)
    tq, tk = qs[-2], ks[-2]
    res = attend(q, k, v, mask=mask, is_causal=causal, weights=True)
    if not (isinstance(res, tuple) and len(res) == 2):
        raise AssertionError(f"{SDPA}: with return_weights=True it must return (output, weights)")
    w = np.asarray(res[1])
    allowed, expected = combined(mask, causal, tq, tk), attention_loop(q, k, v, combined(mask, causal, tq, tk))[1]
    assert w.shape == expected.shape, f"{SDPA}: weights of shape {w.shape}, expected {expected.shape} (..., Tq, Tk)"
    if allowed is not None:
        blocked = ~np.broadcast_to(allowed, w.shape)
        leak = np.abs(w[blocked]).max() if blocked.any() else 0.0
        assert leak == 0.0, (f"{SDPA}: a masked key has weight {leak:.3g}; masked positions must get exactly 0 "
                             "(set their scores to -inf before the softmax)")
    sums = w.sum(axis=-1)
    assert np.allclose(sums, 1.0, atol=1e-5), (f"{SDPA}: the weights of each query row must sum to 1 over the keys "
                                               f"(the last axis); row sums {np.round(sums, 4).ravel()[:8].tolist()}")
    assert_close(w, expected, f"{SDPA}: weights for q {qs}, k {ks}, is_causal={causal}", [q, k])


@pytest.mark.task("scaled_dot_product_attention")
@SETTINGS
@given(t=st.integers(2, 7), d=st.integers(1, 4), j=st.integers(1, 6), seed=st.integers(0, 5))
def test_sdpa_forward_never_sees_the_future(t, d, j, seed):
    """is_causal=True: changing token j's key and value leaves rows i < j unchanged, and changes
    row j itself (a position attends to itself)."""
    j = min(j, t - 1)
    q, k, v = rand(1, t, d, seed=seed), rand(1, t, d, seed=seed + 10), rand(1, t, 2, seed=seed + 20)
    k2, v2 = k.copy(), v.copy()
    k2[0, j] += 3.0
    v2[0, j] += 5.0
    before = attend(q, k, v, is_causal=True).data
    after = attend(q, k2, v2, is_causal=True).data
    moved = np.abs(after[0, :j] - before[0, :j]).max()
    assert moved < 1e-6, (f"{SDPA}: is_causal=True, T = {t}: changing token {j} changed the output of an earlier "
                          f"position (by {moved:.3g}); query i must attend keys j <= i only")
    assert np.abs(after[0, j] - before[0, j]).max() > 1e-3, (
        f"{SDPA}: is_causal=True, T = {t}: changing token {j}'s key and value did not change position {j}'s own output; "
        "a position must attend to itself (keys j <= i, not j < i)")


@pytest.mark.task("scaled_dot_product_attention")
def test_sdpa_forward_masked_keys_do_not_matter():
    """Padding keys: any key and value there, the output is the same."""
    q, k, v = inputs((2, 2, 5, 4), (2, 2, 5, 4), (2, 2, 5, 3), seed=7)
    mask = make_mask("padding", (2, 2, 5, 4), (2, 2, 5, 4))
    k2, v2 = k.copy(), v.copy()
    pads = ~np.broadcast_to(mask, (2, 2, 1, 5))[:, :, 0, :]  # (B, nh, Tk)
    k2[pads] = 50.0
    v2[pads] = -1e3
    a, b = attend(q, k, v, mask=mask).data, attend(q, k2, v2, mask=mask).data
    moved = np.abs(a - b).max()
    assert moved < 1e-6, (f"{SDPA}: changing the keys and values of masked (padding) positions changed the output by "
                          f"{moved:.3g}; a masked key must get exactly zero weight (True in the mask = may attend)")


@pytest.mark.task("scaled_dot_product_attention")
def test_sdpa_forward_empty_row_gives_zero_not_nan():
    q, k, v = inputs((3, 4), (5, 4), (5, 2), seed=3)
    mask = np.ones((3, 5), bool)
    mask[1] = False  # query 1 may attend nothing
    with np.errstate(all="ignore"):
        out, w = attend(q, k, v, mask=mask, weights=True)
    assert np.all(np.isfinite(out.data)), (f"{SDPA}: a query row whose keys are all masked gave "
                                           f"{out.data[1].tolist()}; it must give output 0 (not NaN)")
    assert np.array_equal(np.asarray(w)[1], np.zeros(5)) and np.array_equal(out.data[1], np.zeros(2)), (
        f"{SDPA}: a query row with no allowed key must get weights 0 and output 0, got weights "
        f"{np.round(np.asarray(w)[1], 4).tolist()} and output {out.data[1].tolist()}")
    assert_close(out, attention_loop(q, k, v, mask)[0], f"{SDPA}: the other rows, next to an empty one", [q, k, v])


@pytest.mark.task("scaled_dot_product_attention")
def test_sdpa_forward_extreme_scores_are_stable():
    """Scores of +-1000s: exp would overflow without subtracting the row maximum."""
    q, k, v = rand(2, 4, 4, seed=1, scale=30.0), rand(2, 6, 4, seed=2, scale=30.0), rand(2, 6, 3, seed=3)
    with np.errstate(all="ignore"):
        out = attend(q, k, v, is_causal=True)
    assert np.all(np.isfinite(out.data)), (f"{SDPA}: scores in the thousands gave inf/nan; subtract each row's maximum "
                                           "before exp")
    assert_close(out, attention_loop(q, k, v, lower(4, 6))[0], f"{SDPA}: scores in the thousands", [q, k, v], atol=1e-4)


@pytest.mark.task("scaled_dot_product_attention")
@pytest.mark.parametrize("qs, ks, vs, mask_kind, causal", CASE_ARGS, ids=CASE_IDS)
def test_sdpa_forward_matches_torch(qs, ks, vs, mask_kind, causal):
    torch = torch_or_skip()
    q, k, v = inputs(qs, ks, vs, seed=11)
    mask = make_mask(mask_kind, qs, ks, seed=2)
    out = attend(q, k, v, mask=mask, is_causal=causal)
    th = [torch.tensor(a) for a in (q, k, v)]
    if mask is not None and causal:  # torch takes one or the other: pass the combination
        ref = torch.nn.functional.scaled_dot_product_attention(
            *th, attn_mask=torch.tensor(combined(mask, True, qs[-2], ks[-2])))
    else:
        ref = torch.nn.functional.scaled_dot_product_attention(
            *th, attn_mask=None if mask is None else torch.tensor(mask), is_causal=causal)
    assert_close(out, ref.numpy(), f"{SDPA} (vs PyTorch): q {qs}, k {ks}, v {vs}, mask {mask_kind}, "
                 f"is_causal={causal}", [q, k, v])


# ---------------------------------------------------------------------------------------------
# sdpa_backward
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("sdpa_backward")
@pytest.mark.parametrize("qs, ks, vs, mask_kind, causal", CASE_ARGS, ids=CASE_IDS)
def test_sdpa_backward_gradcheck(qs, ks, vs, mask_kind, causal):
    mask = make_mask(mask_kind, qs, ks)
    gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v, mask=mask, is_causal=causal),
              *inputs(qs, ks, vs, dtype=np.float64, seed=4),
              name=f"sdpa_backward: q {qs}, k {ks}, v {vs}, mask {mask_kind}, is_causal={causal}")


@pytest.mark.task("sdpa_backward")
def test_sdpa_backward_empty_row_and_extreme_scores():
    """A row with no allowed key passes no gradient (and no NaN); scores in the hundreds give
    finite gradients."""
    mask = np.ones((3, 5), bool)
    mask[0] = False
    gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v, mask=mask),
              *inputs((3, 4), (5, 4), (5, 2), dtype=np.float64, seed=6), name="sdpa_backward: a query with no allowed key")
    q, k, v = (Tensor(a, dtype=np.float64, requires_grad=True) for a in
               (rand(2, 4, seed=1, dtype=np.float64, scale=12.0), rand(3, 4, seed=2, dtype=np.float64, scale=12.0),
                rand(3, 2, seed=3, dtype=np.float64)))
    with np.errstate(all="ignore"):
        out = call(SDPA, scaled_dot_product_attention, q, k, v)
        call("sdpa_backward", out.backward, Tensor(np.ones(out.shape)))
    for name, t in zip("qkv", (q, k, v)):
        assert t.grad is not None and np.all(np.isfinite(t.grad.data)), (
            f"sdpa_backward: scores in the hundreds gave a non-finite gradient for {name}")


@pytest.mark.task("sdpa_backward")
@pytest.mark.parametrize("wrt", [[0], [1], [2], [1, 2], [0, 2]], ids=["q", "k", "v", "k-v", "q-v"])
def test_sdpa_backward_some_inputs_constant(wrt):
    """Only some of q, k, v need gradients (fixed queries, or a fixed memory of keys and values):
    the others are constants, and the ones that do need one still get it right."""
    which = " and ".join("qkv"[i] for i in wrt)
    gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v, is_causal=True),
              *inputs((2, 3, 4), (2, 5, 4), (2, 5, 2), dtype=np.float64, seed=8), wrt=wrt,
              name=f"sdpa_backward: only {which} need{'s' if len(wrt) == 1 else ''} a gradient")


@pytest.mark.task("sdpa_backward")
@pytest.mark.parametrize("qs, ks, vs, mask_kind, causal", CASE_ARGS, ids=CASE_IDS)
def test_sdpa_backward_matches_torch(qs, ks, vs, mask_kind, causal):
    torch = torch_or_skip()
    q, k, v = inputs(qs, ks, vs, seed=12)
    mask = make_mask(mask_kind, qs, ks, seed=3)
    ts = [Tensor(a, requires_grad=True) for a in (q, k, v)]
    out = call(SDPA, scaled_dot_product_attention, *ts, mask=mask, is_causal=causal)
    g = rand(*out.shape, seed=13)
    check_rules(out, "vs PyTorch")
    call("sdpa_backward", out.backward, Tensor(g))
    th = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    allowed = combined(mask, causal, qs[-2], ks[-2])
    ref = torch.nn.functional.scaled_dot_product_attention(
        *th, attn_mask=None if allowed is None else torch.tensor(np.ascontiguousarray(allowed)))
    ref.backward(torch.tensor(g))
    for name, t, h in zip("qkv", ts, th):
        assert t.grad is not None, f"sdpa_backward: {name} received no gradient"
        assert_close(t.grad, h.grad.numpy(), f"sdpa_backward (vs PyTorch): gradient of {name}, q {qs}, k {ks}, "
                     f"v {vs}, mask {mask_kind}, is_causal={causal}", [q, k, v], atol=1e-5)


# ---------------------------------------------------------------------------------------------
# MultiHeadAttention
# ---------------------------------------------------------------------------------------------
def make_mha(d: int, nh: int, bias: bool = True, seed: int = 0):
    """MultiHeadAttention(d, nh, bias) with known weights written in: (layer, arrays)."""
    mha = call("MultiHeadAttention.__init__", MultiHeadAttention, d, nh, bias)
    rng = np.random.default_rng(seed)
    arrays = {"Wqkv": rng.standard_normal((3 * d, d)) / math.sqrt(d), "Wp": rng.standard_normal((d, d)) / math.sqrt(d),
              "bqkv": rng.standard_normal(3 * d) * 0.1 if bias else None,
              "bp": rng.standard_normal(d) * 0.1 if bias else None}
    with blame("MultiHeadAttention.__init__", "writing known weights into qkv and proj"):
        mha.qkv.weight.data[...] = arrays["Wqkv"]
        mha.proj.weight.data[...] = arrays["Wp"]
        if bias:
            mha.qkv.bias.data[...] = arrays["bqkv"]
            mha.proj.bias.data[...] = arrays["bp"]
    return mha, {key: None if a is None else a.astype(np.float32) for key, a in arrays.items()}


def mha_loop(x, a, nh, allowed=None):
    """One head at a time over explicit column slices: q | k | v, head h = features h*hs..(h+1)*hs-1."""
    x = np.asarray(x, np.float64)
    b, t, d = x.shape
    hs = d // nh
    qkv = x @ a["Wqkv"].T.astype(np.float64) + (0 if a["bqkv"] is None else a["bqkv"])
    q, k, v = qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:]
    full = None if allowed is None else np.broadcast_to(allowed, (b, nh, t, t))
    heads, weights = [], np.zeros((b, nh, t, t))
    for h in range(nh):
        cols = slice(h * hs, (h + 1) * hs)
        out, w = attention_loop(q[..., cols], k[..., cols], v[..., cols], None if full is None else full[:, h])
        heads.append(out)
        weights[:, h] = w
    y = np.concatenate(heads, axis=-1) @ a["Wp"].T.astype(np.float64) + (0 if a["bp"] is None else a["bp"])
    return y, weights


def mha_variant(x, a, nh, allowed, split_t=True, merge_t=True):
    """Heads split / merged with or without the transpose (vectorised): the layout bugs."""
    x = np.asarray(x, np.float64)
    b, t, d = x.shape
    hs = d // nh
    qkv = x @ a["Wqkv"].T + (0 if a["bqkv"] is None else a["bqkv"])
    parts = []
    for i in range(3):
        p = qkv[..., i * d:(i + 1) * d]
        parts.append(p.reshape(b, t, nh, hs).transpose(0, 2, 1, 3) if split_t else p.reshape(b, nh, t, hs))
    y = attention_variant(*parts, allowed)
    y = y.transpose(0, 2, 1, 3).reshape(b, t, d) if merge_t else y.reshape(b, t, d)
    return y @ a["Wp"].T + (0 if a["bp"] is None else a["bp"])


def mha_forward(mha, x, mask=None, is_causal=False) -> Tensor:
    xt = Tensor(np.array(x))
    out = call("MultiHeadAttention.forward", mha, xt, mask=mask, is_causal=is_causal)
    if not isinstance(out, Tensor):
        raise AssertionError(f"MultiHeadAttention.forward: returned {type(out).__name__}, expected a Tensor")
    if not np.array_equal(xt.data, x):
        raise AssertionError("MultiHeadAttention.forward: changed its input in place")
    return out


# (B, T, D, nh, bias, mask kind, is_causal)
MHA_CASES = [(2, 5, 8, 2, True, None, True), (1, 4, 6, 3, True, None, False), (2, 3, 4, 1, False, None, True),
             (2, 5, 8, 4, False, "padding", False), (2, 5, 8, 2, True, "padding", True), (1, 7, 6, 2, True, None, True)]
MHA_IDS = ["2-heads-causal", "batch1-3-heads", "one-head-no-bias", "4-heads-padding", "padding-and-causal",
           "batch1-odd-length"]


def mha_mask(kind, b, t):
    return None if kind is None else make_mask(kind, (b, 1, t, 1), (b, 1, t, 1))


@pytest.mark.task("MultiHeadAttention")
@pytest.mark.parametrize("b, t, d, nh, bias, mask_kind, causal", MHA_CASES, ids=MHA_IDS)
def test_mha_matches_a_loop_per_head(b, t, d, nh, bias, mask_kind, causal):
    mha, a = make_mha(d, nh, bias)
    x = rand(b, t, d, seed=b + t)
    mask = mha_mask(mask_kind, b, t)
    out = mha_forward(mha, x, mask, causal)
    allowed = combined(mask, causal, t, t)
    expected, _ = mha_loop(x, a, nh, allowed)
    what = f"B {b}, T {t}, D {d}, {nh} heads, bias {bias}, mask {mask_kind}, is_causal={causal}"
    assert out.shape == (b, t, d), f"MultiHeadAttention.forward: {what}: shape {out.shape}, expected {(b, t, d)}"
    assert out.dtype == np.float32, f"MultiHeadAttention.forward: float32 input gave {out.dtype}"
    if nh > 1 and t > 1:
        for split_t, merge_t, label in ((False, True, "the heads are split by a reshape without the transpose: "
                                         "(B, T, D) -> (B, T, nh, hs) -> transpose -> (B, nh, T, hs)"),
                                        (True, False, "the heads are merged by a reshape without the transpose: "
                                         "(B, nh, T, hs) -> transpose -> (B, T, nh, hs) -> (B, T, D)"),
                                        (False, False, "the heads are split and merged by reshapes without their "
                                         "transposes")):
            alt = mha_variant(x, a, nh, allowed, split_t, merge_t)
            if np.allclose(out.data, alt, atol=1e-5) and not np.allclose(alt, expected, atol=1e-5):
                raise AssertionError(f"MultiHeadAttention.forward: {what}: {label}")
    assert_close(out, expected, f"MultiHeadAttention.forward: {what} (vs one loop per head, head h = features "
                 "h*hs..(h+1)*hs-1 of each of q | k | v)", [x], atol=1e-5)


@pytest.mark.task("MultiHeadAttention")
def test_mha_keeps_the_last_attention():
    mha, a = make_mha(6, 3)
    x = rand(2, 4, 6, seed=3)
    mha_forward(mha, x, is_causal=True)
    w = mha.last_attention
    assert isinstance(w, np.ndarray), (f"MultiHeadAttention.forward: last_attention is {type(w).__name__}, expected "
                                       "the weights of the call as an ndarray")
    assert w.shape == (2, 3, 4, 4), f"MultiHeadAttention.forward: last_attention has shape {w.shape}, expected (B, nh, T, T)"
    assert_close(w, mha_loop(x, a, 3, lower(4, 4))[1], "MultiHeadAttention.forward: last_attention (the weights of "
                 "each head, causal)", [x])
    mha_forward(mha, rand(1, 3, 6, seed=4))
    assert mha.last_attention.shape == (1, 3, 3, 3), "MultiHeadAttention.forward: last_attention is not from the last call"


@pytest.mark.task("MultiHeadAttention")
def test_mha_is_one_batched_sdpa():
    """All heads in ONE sdpa op on (B, nh, T, hs): no loop over heads."""
    mha, _ = make_mha(8, 4)
    out = mha_forward(mha, rand(2, 3, 8), is_causal=True)
    nodes, stack, seen = [], [out], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node._op == "sdpa":
            nodes.append(node)
        stack.extend(node._parents)
    assert len(nodes) == 1, (f"MultiHeadAttention.forward: the graph has {len(nodes)} sdpa ops; all heads must go "
                             "through ONE batched scaled_dot_product_attention on (B, nh, T, hs) (no loop over heads)")
    shapes = [p.shape for p in nodes[0]._parents]
    assert shapes == [(2, 4, 3, 2)] * 3, (f"MultiHeadAttention.forward: the sdpa got q, k, v of shapes {shapes}, "
                                          "expected (B, nh, T, hs) = (2, 4, 3, 2) each")


def _mha_fn(mha, nh, mask, causal, bias):
    def fn(x, wqkv, wp, *biases):
        mha.qkv.weight, mha.proj.weight = wqkv, wp
        if bias:
            mha.qkv.bias, mha.proj.bias = biases
        return mha(x, mask=mask, is_causal=causal)
    return fn


@pytest.mark.task("MultiHeadAttention")
@pytest.mark.parametrize("b, t, d, nh, bias, mask_kind, causal",
                         [(2, 3, 4, 2, True, None, True), (1, 3, 6, 3, False, "padding", False)],
                         ids=["2-heads-causal", "3-heads-padding-no-bias"])
def test_mha_gradcheck(b, t, d, nh, bias, mask_kind, causal):
    mha, a = make_mha(d, nh, bias)
    mask = mha_mask(mask_kind, b, t)
    arrays = [rand(b, t, d, seed=9, dtype=np.float64), a["Wqkv"].astype(np.float64), a["Wp"].astype(np.float64)]
    if bias:
        arrays += [a["bqkv"].astype(np.float64), a["bp"].astype(np.float64)]
    gradcheck(_mha_fn(mha, nh, mask, causal, bias), *arrays,
              name=f"MultiHeadAttention.forward (gradient): B {b}, T {t}, D {d}, {nh} heads, mask {mask_kind}, "
                   f"is_causal={causal}")


@pytest.mark.task("MultiHeadAttention")
@pytest.mark.parametrize("b, t, d, nh, bias, mask_kind, causal",
                         [(2, 5, 8, 2, True, None, True), (2, 4, 6, 3, False, "padding", False), (1, 7, 8, 4, True, None, True)],
                         ids=["2-heads-causal", "3-heads-padding-no-bias", "batch1-odd"])
def test_mha_matches_torch(b, t, d, nh, bias, mask_kind, causal):
    torch = torch_or_skip()
    mha, a = make_mha(d, nh, bias, seed=3)
    x = rand(b, t, d, seed=5)
    mask = mha_mask(mask_kind, b, t)
    xt = Tensor(x.copy(), requires_grad=True)
    out = call("MultiHeadAttention.forward", mha, xt, mask=mask, is_causal=causal)
    ref_mod = torch.nn.MultiheadAttention(d, nh, bias=bias, batch_first=True)
    with torch.no_grad():
        ref_mod.in_proj_weight.copy_(torch.tensor(a["Wqkv"]))
        ref_mod.out_proj.weight.copy_(torch.tensor(a["Wp"]))
        if bias:
            ref_mod.in_proj_bias.copy_(torch.tensor(a["bqkv"]))
            ref_mod.out_proj.bias.copy_(torch.tensor(a["bp"]))
    xh = torch.tensor(x, requires_grad=True)
    # nn.MultiheadAttention's boolean masks are True where attention is BLOCKED (the opposite of sdpa's)
    blocked = torch.tensor(~lower(t, t)) if causal else None
    pad = None if mask is None else torch.tensor(~mask.reshape(b, t))
    ref, ref_w = ref_mod(xh, xh, xh, attn_mask=blocked, key_padding_mask=pad, need_weights=True,
                         average_attn_weights=False)
    assert_close(out, ref.detach().numpy(), f"MultiHeadAttention.forward (vs torch.nn.MultiheadAttention): B {b}, "
                 f"T {t}, D {d}, {nh} heads, mask {mask_kind}, is_causal={causal}", [x])
    assert_close(mha.last_attention, ref_w.detach().numpy(), "MultiHeadAttention.forward: last_attention (vs PyTorch's "
                 "per-head weights)", [x])
    g = rand(b, t, d, seed=6)
    call("MultiHeadAttention.forward", out.backward, Tensor(g))
    ref.backward(torch.tensor(g))
    assert_close(xt.grad, xh.grad.numpy(), "MultiHeadAttention.forward: gradient of x (vs PyTorch)", [x], atol=1e-5)
    assert_close(mha.qkv.weight.grad, ref_mod.in_proj_weight.grad.numpy(),
                 "MultiHeadAttention.forward: gradient of qkv.weight (vs PyTorch's in_proj_weight)", [x], atol=1e-5)
