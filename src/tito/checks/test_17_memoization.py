"""Checks for module 17 (memoization): KVCache, offset_causal_mask, cached_attention,
cached_forward and generate.

The cache is read back after appends in chunks, per layer, after a copy of its input was
changed and after a reset (where a cache that writes keys but not values returns stale ones);
its reads must be views of the two buffers allocated in __init__ (an append that concatenates
reallocates, and costs O(length)). The mask is checked on a worked example and against module
12's causal_mask for a prefill. The cached attention and the cached forward are compared with
the uncached layer / model on the SAME weights (module 12's MultiHeadAttention, module 13's GPT
with randomised norms and biases, so a skipped part shows): all positions at once, token by token
and in uneven chunks, batch 2, logits within 1e-5; a recording subclass of the learner's KVCache
sees what they append. generate is compared with the uncached loop written out here (greedy and
seeded sampling, inside and past block_size, a prompt longer than block_size), with
model.generate for use_cache=False, and a counting subclass of GPT proves that the cached path
never runs the full model while the window has room. Every check that uses the cache first
makes sure the learner's KVCache works, and says so (naming KVCache.append) when it does not.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch.tensor as tt
from tinytorch.attention import MultiHeadAttention, causal_mask, scaled_dot_product_attention
from tinytorch.embeddings import Embedding
from tinytorch.memoization import (KVCache, cached_attention, cached_forward, generate, offset_causal_mask,
                                   sample_next)
from tinytorch.tensor import Tensor, no_grad
from tinytorch.transformers import GPT, GPTConfig
from tito.checks.harness import assert_close, blame, call, expect_error


@pytest.fixture(autouse=True)
def _seed():
    tt.manual_seed(0)
    yield
    tt.manual_seed(0)


def rand(*shape, seed=0, scale=1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# KVCache
# ---------------------------------------------------------------------------------------------
def make_cache(n_layer=2, batch=2, n_head=3, max_len=8, head_dim=4, cls=None):
    return call("KVCache.__init__", cls or KVCache, n_layer, batch, n_head, max_len, head_dim)


def read(cache, layer, what="keys"):
    name = f"KVCache.{what}"
    out = call(name, getattr(cache, what), layer)
    if not isinstance(out, np.ndarray):
        raise AssertionError(f"{name}: returned {type(out).__name__}, expected a NumPy array (a view of the buffer)")
    return out


def expect_contents(cache, layer, keys, values, when=""):
    """keys(layer) / values(layer) must be exactly the appended arrays, concatenated."""
    when = f" {when}" if when else ""
    for what, want in (("keys", keys), ("values", values)):
        got = read(cache, layer, what)
        if got.shape != want.shape:
            raise AssertionError(f"KVCache.{what}: layer {layer} returned shape {got.shape}{when}, expected "
                                 f"{want.shape} (batch, n_head, positions appended so far, head_dim)")
        if not np.array_equal(got, want):
            stale = " - they are not the ones appended (stale values: append must write BOTH arrays)" \
                if what == "values" and np.array_equal(read(cache, layer, "keys"), keys) else ""
            raise AssertionError(f"KVCache.append: layer {layer}'s {what} read back{when} differ from what was "
                                 f"appended{stale} (max abs error {np.max(np.abs(got - want)):.3g})")


@pytest.mark.task("KVCache")
def test_kvcache_allocates_its_buffers_once():
    cache = make_cache(n_layer=3, batch=2, n_head=4, max_len=7, head_dim=5)
    with blame("KVCache.__init__", "its buffers k, v and its lengths"):
        k, v, lengths = cache.k, cache.v, list(cache.lengths)
    for what, a in (("k", k), ("v", v)):
        if not isinstance(a, np.ndarray) or a.shape != (3, 2, 4, 7, 5) or a.dtype != np.float32:
            raise AssertionError(f"KVCache.__init__: self.{what} must be a float32 array of shape (n_layer, batch, "
                                 f"n_head, max_len, head_dim) = (3, 2, 4, 7, 5), got "
                                 f"{getattr(a, 'shape', type(a).__name__)} {getattr(a, 'dtype', '')}")
    if k is v or np.shares_memory(k, v):
        raise AssertionError("KVCache.__init__: keys and values share one buffer; allocate two")
    if lengths != [0, 0, 0] or cache.length != 0:
        raise AssertionError(f"KVCache.__init__: a new cache holds no positions (lengths {lengths})")
    assert read(cache, 0).shape == (2, 4, 0, 5), \
        f"KVCache.keys: a new cache's keys(0) has shape {read(cache, 0).shape}, expected (2, 4, 0, 5)"


@pytest.mark.task("KVCache")
def test_kvcache_append_reads_back_keys_and_values():
    """Chunks of 3, 1 and 2 positions: the reads are the concatenation, as views of the buffers."""
    cache = make_cache()
    k_buf, v_buf = cache.k, cache.v
    chunks = [(rand(2, 3, n, 4, seed=10 + i), rand(2, 3, n, 4, seed=20 + i)) for i, n in enumerate((3, 1, 2))]
    for i, (k, v) in enumerate(chunks):
        call("KVCache.append", cache.append, 0, k, v)
        keys = np.concatenate([c[0] for c in chunks[:i + 1]], axis=2)
        values = np.concatenate([c[1] for c in chunks[:i + 1]], axis=2)
        expect_contents(cache, 0, keys, values, f"after appending {keys.shape[2]} positions in chunks")
        if cache.k is not k_buf or cache.v is not v_buf:
            raise AssertionError("KVCache.append: replaced the buffers allocated in __init__ (a concatenate "
                                 "copies the whole cache on every step: write into the preallocated arrays)")
        for what, buf in (("keys", k_buf), ("values", v_buf)):
            if not np.shares_memory(read(cache, 0, what), buf):
                raise AssertionError(f"KVCache.{what}: returned a copy; return a view of the preallocated buffer "
                                     "(self.k[layer, :, :, :length])")
    if cache.lengths[0] != 6:
        raise AssertionError(f"KVCache.append: layer 0 should hold 6 positions after 3 + 1 + 2, lengths = "
                             f"{cache.lengths}")


@pytest.mark.task("KVCache")
def test_kvcache_layers_fill_independently():
    cache = make_cache(n_layer=3)
    k0, v0 = rand(2, 3, 2, 4, seed=1), rand(2, 3, 2, 4, seed=2)
    k2, v2 = rand(2, 3, 5, 4, seed=3), rand(2, 3, 5, 4, seed=4)
    call("KVCache.append", cache.append, 0, k0, v0)
    call("KVCache.append", cache.append, 2, k2, v2)
    expect_contents(cache, 0, k0, v0, "(layer 0 got 2 positions, then layer 2 got 5)")
    expect_contents(cache, 2, k2, v2, "(layer 0 got 2 positions, then layer 2 got 5)")
    empty = np.zeros((2, 3, 0, 4), np.float32)
    expect_contents(cache, 1, empty, empty, "(nothing was appended to layer 1)")
    if list(cache.lengths) != [2, 0, 5] or cache.length != 0:
        raise AssertionError(f"KVCache.append: lengths should be [2, 0, 5] (and length, the minimum, 0), got "
                             f"{list(cache.lengths)}")


@pytest.mark.task("KVCache")
def test_kvcache_append_copies_its_input():
    """The caller's arrays are reused (a step's qkv buffer): the cache must hold its own copy."""
    cache = make_cache(n_layer=1)
    k, v = rand(2, 3, 2, 4, seed=5), rand(2, 3, 2, 4, seed=6)
    call("KVCache.append", cache.append, 0, k, v)
    keep_k, keep_v = k.copy(), v.copy()
    k += 100.0
    v -= 100.0
    expect_contents(cache, 0, keep_k, keep_v, "after the caller changed its arrays (copy them into the buffer)")
    call("KVCache.append", cache.append, 0, Tensor(rand(2, 3, 1, 4, seed=7)), Tensor(rand(2, 3, 1, 4, seed=8)))
    expect_contents(cache, 0, np.concatenate([keep_k, rand(2, 3, 1, 4, seed=7)], axis=2),
                    np.concatenate([keep_v, rand(2, 3, 1, 4, seed=8)], axis=2), "after appending Tensors")


@pytest.mark.task("KVCache")
def test_kvcache_reset_leaves_no_stale_values():
    """Fill, reset, fill again with other numbers: only the new ones may come back."""
    cache = make_cache(n_layer=2, max_len=6)
    for layer in range(2):
        call("KVCache.append", cache.append, layer, rand(2, 3, 6, 4, seed=30 + layer), rand(2, 3, 6, 4, seed=40 + layer))
    call("KVCache.reset", cache.reset)
    if list(cache.lengths) != [0, 0] or cache.length != 0:
        raise AssertionError(f"KVCache.reset: lengths should be [0, 0] after reset, got {list(cache.lengths)}")
    empty = np.zeros((2, 3, 0, 4), np.float32)
    expect_contents(cache, 0, empty, empty, "after reset")
    for step in range(3):  # a new sequence, one position at a time
        for layer in range(2):
            call("KVCache.append", cache.append, layer, rand(2, 3, 1, 4, seed=50 + step), rand(2, 3, 1, 4, seed=60 + step))
    keys = np.concatenate([rand(2, 3, 1, 4, seed=50 + s) for s in range(3)], axis=2)
    values = np.concatenate([rand(2, 3, 1, 4, seed=60 + s) for s in range(3)], axis=2)
    for layer in range(2):
        expect_contents(cache, layer, keys, values, "after reset and 3 single-position appends")


@pytest.mark.task("KVCache")
def test_kvcache_refuses_to_overflow_max_len():
    cache = make_cache(n_layer=1, max_len=4)
    call("KVCache.append", cache.append, 0, rand(2, 3, 3, 4), rand(2, 3, 3, 4))
    expect_error("KVCache.append", ValueError, cache.append, 0, rand(2, 3, 2, 4), rand(2, 3, 2, 4),
                 match="max_len")
    call("KVCache.append", cache.append, 0, rand(2, 3, 1, 4, seed=9), rand(2, 3, 1, 4, seed=9))
    if cache.lengths[0] != 4:
        raise AssertionError(f"KVCache.append: 3 + 1 positions fit in max_len=4 (after a refused append of 2); "
                             f"lengths = {list(cache.lengths)}")


def require_working_cache(user: str) -> None:
    """The cached checks run on the learner's KVCache: if it does not give back what is appended
    (after a reset too), say that first, naming the cache rather than `user`."""
    a = np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2)  # (B, nh, T, hs)
    try:
        cache = KVCache(2, 1, 2, 4, 2)
        for layer in range(2):
            cache.append(layer, a, a + 10)
            cache.append(layer, a[:, :, :1] + 100, a[:, :, :1] + 110)
        keys, values = np.asarray(cache.keys(1)), np.asarray(cache.values(1))
        cache.reset()
        cache.append(0, a + 5, a + 15)
        later = np.asarray(cache.values(0))
    except NotImplementedError:
        raise
    except Exception as e:
        raise AssertionError(f"KVCache.append: raised {type(e).__name__}: {e} ({user} is checked with your "
                             f"KVCache: make check('17', 'KVCache') pass first)") from e
    want_k = np.concatenate([a, a[:, :, :1] + 100], axis=2)
    ok = (keys.shape == want_k.shape and np.array_equal(keys, want_k) and np.array_equal(values, want_k + 10)
          and later.shape == a.shape and np.array_equal(later, a + 15))
    if not ok:
        raise AssertionError(f"KVCache.append: keys/values do not read back what was appended (or stale values "
                             f"come back after a reset); {user} is checked with your KVCache: make "
                             f"check('17', 'KVCache') pass first")


def recording_cache(*args):
    """The learner's KVCache, with every append recorded (a subclass: nothing is patched)."""
    class RecordingCache(KVCache):
        def append(self, layer, k, v):
            self.appended.append((layer, np.shape(getattr(k, "data", k))))
            return super().append(layer, k, v)

    cache = make_cache(*args, cls=RecordingCache)
    cache.appended = []
    return cache


# ---------------------------------------------------------------------------------------------
# offset_causal_mask
# ---------------------------------------------------------------------------------------------
def mask_of(tq, tk):
    m = call("offset_causal_mask", offset_causal_mask, tq, tk)
    if not isinstance(m, np.ndarray) or m.dtype != np.bool_ or m.shape != (tq, tk):
        raise AssertionError(f"offset_causal_mask: ({tq}, {tk}) must give a bool array of shape ({tq}, {tk}), got "
                             f"{getattr(m, 'shape', type(m).__name__)} {getattr(m, 'dtype', '')}")
    return m


@pytest.mark.task("offset_causal_mask")
def test_offset_causal_mask_worked_example():
    """3 cached + 2 new positions: query 0 is position 3, query 1 is position 4."""
    got = mask_of(2, 5)
    want = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=bool)
    if np.array_equal(got, causal_mask(2, 5)):
        raise AssertionError("offset_causal_mask: (2, 5) gave the top-left triangle of causal_mask; the new "
                             "queries are the LAST 2 of 5 positions (query i at position 3 + i sees keys j <= 3 + i)")
    if not np.array_equal(got, want):
        raise AssertionError(f"offset_causal_mask: (2, 5) gave\n{got.astype(int)}\nexpected\n{want.astype(int)}")


@pytest.mark.task("offset_causal_mask")
@pytest.mark.parametrize("tq, tk", [(1, 1), (1, 6), (4, 4), (3, 7), (7, 7), (2, 9)], ids=str)
def test_offset_causal_mask_is_the_bottom_right_triangle(tq, tk):
    got = mask_of(tq, tk)
    i, j = np.arange(tq)[:, None], np.arange(tk)[None, :]
    want = j <= tk - tq + i
    if tq == tk and not np.array_equal(got, causal_mask(tq, tk)):
        raise AssertionError(f"offset_causal_mask: a prefill ({tq} queries, {tk} keys) must equal causal_mask")
    if tq == 1 and not got.all():
        raise AssertionError(f"offset_causal_mask: a single new query (a decode step) may attend all {tk} keys, "
                             f"got {got.astype(int)[0]}")
    if not np.array_equal(got, want):
        raise AssertionError(f"offset_causal_mask: ({tq}, {tk}) gave\n{got.astype(int)}\nexpected\n{want.astype(int)}")


# ---------------------------------------------------------------------------------------------
# cached_attention
# ---------------------------------------------------------------------------------------------
def make_attention(dim=12, heads=3, seed=3):
    tt.manual_seed(seed)
    attn = MultiHeadAttention(dim, heads)
    rng = np.random.default_rng(seed)
    attn.qkv.bias.data[...] = 0.5 * rng.standard_normal(attn.qkv.bias.shape)  # a bias that shows
    attn.proj.bias.data[...] = 0.5 * rng.standard_normal(attn.proj.bias.shape)
    return attn


def run_chunks(attn, x, sizes, cache):
    outs = []
    start = 0
    for n in sizes:
        out = call("cached_attention", cached_attention, attn, Tensor(x[:, start:start + n]), cache, 0)
        if not isinstance(out, Tensor) or out.shape != (x.shape[0], n, x.shape[2]):
            raise AssertionError(f"cached_attention: {n} new positions of a {x.shape} input gave "
                                 f"{getattr(out, 'shape', type(out).__name__)}, expected a Tensor of shape "
                                 f"{(x.shape[0], n, x.shape[2])}")
        outs.append(out.data)
        start += n
    return np.concatenate(outs, axis=1)


@pytest.mark.task("cached_attention")
@pytest.mark.parametrize("sizes", [(6,), (3, 1, 2), (1, 1, 1, 1, 1, 1), (2, 4)], ids=str)
def test_cached_attention_matches_the_uncached_layer(sizes):
    """x fed in chunks through the cache = attn(x, is_causal=True) on the whole sequence."""
    require_working_cache("cached_attention")
    attn = make_attention()
    x = rand(2, 6, 12, seed=11)  # (B, T, C)
    cache = make_cache(n_layer=1, batch=2, n_head=3, max_len=6, head_dim=4)
    with no_grad():
        got = run_chunks(attn, x, sizes, cache)
        want = attn(Tensor(x), is_causal=True).data
    if got.shape == want.shape and not np.allclose(got, want, atol=1e-5, rtol=1e-5):
        with no_grad():  # the usual mistake: module 12's top-left causal mask for the new queries
            top_left = []
            start = 0
            for n in sizes:
                q = attn.qkv(Tensor(x[:, start:start + n])).data.reshape(2, n, 3, 3, 4).transpose(2, 0, 3, 1, 4)[0]
                k = attn.qkv(Tensor(x[:, :start + n])).data.reshape(2, start + n, 3, 3, 4).transpose(2, 0, 3, 1, 4)
                y = scaled_dot_product_attention(Tensor(q), Tensor(k[1]), Tensor(k[2]), is_causal=True).data
                top_left.append(attn.proj(Tensor(y.transpose(0, 2, 1, 3).reshape(2, n, 12))).data)
                start += n
        hint = ""
        if np.allclose(got, np.concatenate(top_left, axis=1), atol=1e-5, rtol=1e-5):
            hint = (" - it matches is_causal=True, whose triangle is top-left aligned: new query i is at position "
                    "L + i and may see keys j <= L + i (mask=offset_causal_mask(T, L + T))")
        raise AssertionError(f"cached_attention: chunks {sizes} of a 6-position input differ from "
                             f"attn(x, is_causal=True){hint} (max abs error {np.max(np.abs(got - want)):.3g})")
    assert_close(got, want, f"cached_attention: chunks {sizes}, compared with attn(x, is_causal=True)", [x],
                 atol=1e-5, rtol=1e-5)


@pytest.mark.task("cached_attention")
def test_cached_attention_stores_the_layers_keys_and_values():
    """After the call the cache holds attn.qkv's keys and values of every position, per head."""
    require_working_cache("cached_attention")
    attn = make_attention()
    x = rand(2, 5, 12, seed=12)
    cache = make_cache(n_layer=2, batch=2, n_head=3, max_len=8, head_dim=4)
    with no_grad():
        run_chunks(attn, x, (4, 1), cache)
        qkv = attn.qkv(Tensor(x)).data.reshape(2, 5, 3, 3, 4).transpose(2, 0, 3, 1, 4)  # (3, B, nh, T, hs)
    keys, values = read(cache, 0, "keys"), read(cache, 0, "values")
    for what, got, want in (("keys", keys, qkv[1]), ("values", values, qkv[2])):
        if got.shape != want.shape:
            raise AssertionError(f"cached_attention: after 4 + 1 positions the cache's {what} have shape {got.shape}, "
                                 f"expected {want.shape} (B, nh, positions, hs)")
        if not np.allclose(got, want, atol=1e-6):
            swapped = " (keys and values swapped?)" if np.allclose(got, qkv[2 if what == "keys" else 1], atol=1e-6) \
                else ""
            raise AssertionError(f"cached_attention: the cache's {what} are not the {what} of attn.qkv, split into "
                                 f"heads as MultiHeadAttention does{swapped}")
    if list(cache.lengths) != [5, 0]:
        raise AssertionError(f"cached_attention: appended to the wrong layer: lengths {list(cache.lengths)}, "
                             "expected [5, 0] for layer 0")


@pytest.mark.task("cached_attention")
def test_cached_attention_appends_only_the_new_positions():
    require_working_cache("cached_attention")
    attn = make_attention()
    cache = recording_cache(1, 1, 3, 8, 4)
    x = rand(1, 5, 12, seed=13)
    with no_grad():
        run_chunks(attn, x, (3, 1, 1), cache)
    shapes = [shape for _, shape in cache.appended]
    if shapes != [(1, 3, 3, 4), (1, 3, 1, 4), (1, 3, 1, 4)]:
        raise AssertionError(f"cached_attention: for chunks of 3, 1, 1 positions it appended {shapes}; expected "
                             "one append per call of the NEW keys and values only, (B, nh, T_new, hs)")


# ---------------------------------------------------------------------------------------------
# cached_forward
# ---------------------------------------------------------------------------------------------
def tiny_gpt(vocab=13, block=10, n_layer=2, n_head=2, n_embd=16, seed=0, cls=GPT) -> GPT:
    """A small GPT with every parameter random (norms and biases too, so a skipped part shows)."""
    tt.manual_seed(seed)
    model = cls(GPTConfig(vocab_size=vocab, block_size=block, n_layer=n_layer, n_head=n_head, n_embd=n_embd))
    rng = np.random.default_rng(seed + 100)
    for name, p in model.named_parameters():
        if name.endswith("weight") and p.ndim == 1:  # layer-norm scales around 1
            p.data[...] = 1 + 0.3 * rng.standard_normal(p.shape)
        else:
            p.data[...] = 0.3 * rng.standard_normal(p.shape)
    return model


def cache_for(model, batch, cls=None):
    c = model.config
    args = (c.n_layer, batch, c.n_head, c.block_size, c.n_embd // c.n_head)
    return recording_cache(*args) if cls == "recording" else make_cache(*args)


def uncached(model, idx) -> np.ndarray:
    with no_grad():
        return model(idx).data


def forward_chunks(model, idx, sizes, cache) -> list[np.ndarray]:
    outs, start = [], 0
    for n in sizes:
        out = call("cached_forward", cached_forward, model, idx[:, start:start + n], cache)
        V = model.config.vocab_size
        if not isinstance(out, Tensor) or out.shape != (idx.shape[0], n, V):
            raise AssertionError(f"cached_forward: {n} new tokens of a batch of {idx.shape[0]} gave "
                                 f"{getattr(out, 'shape', type(out).__name__)}, expected a Tensor of logits "
                                 f"{(idx.shape[0], n, V)} (the new positions only)")
        outs.append(out.data)
        start += n
    return outs


def compare_chunks(model, idx, sizes):
    require_working_cache("cached_forward")
    cache = cache_for(model, idx.shape[0])
    outs = forward_chunks(model, idx, sizes, cache)
    full = uncached(model, idx)
    start = 0
    for i, (n, out) in enumerate(zip(sizes, outs)):
        want = full[:, start:start + n]
        if not np.allclose(out, want, atol=1e-5, rtol=1e-5):
            hint = ""
            if i > 0 and all(np.allclose(o, full[:, s:s + m], atol=1e-5, rtol=1e-5) for o, s, m in
                             zip(outs[:i], np.cumsum((0,) + sizes)[:i], sizes[:i])):
                hint = (f" - the earlier calls agree, so look at what changes with {start} cached positions: the "
                        f"position embeddings of the new tokens (rows {start}.. of pos_emb.weight) and the mask")
            raise AssertionError(f"cached_forward: logits of positions {start}..{start + n - 1} (call {i + 1} of "
                                 f"chunks {sizes}, {start} positions cached) differ from model(idx) by up to "
                                 f"{np.max(np.abs(out - want)):.3g}{hint}")
        start += n
    if cache.length != sum(sizes):
        raise AssertionError(f"cached_forward: after {sum(sizes)} tokens the cache holds {cache.length} positions "
                             f"(lengths {list(cache.lengths)})")


@pytest.mark.task("cached_forward")
def test_cached_forward_prefill_matches_the_model():
    """The whole prompt at once into an empty cache: the logits of model(idx) at every position."""
    model = tiny_gpt()
    idx = np.random.default_rng(1).integers(0, 13, (2, 10))
    compare_chunks(model, idx, (10,))


@pytest.mark.task("cached_forward")
def test_cached_forward_token_by_token_matches_the_model():
    """A 2-token prefill, then 8 decode steps of one token each, batch 2."""
    model = tiny_gpt(seed=1)
    idx = np.random.default_rng(2).integers(0, 13, (2, 10))
    compare_chunks(model, idx, (2,) + (1,) * 8)


@pytest.mark.task("cached_forward")
@pytest.mark.parametrize("sizes", [(4, 3, 3), (1, 5, 1, 2)], ids=str)
def test_cached_forward_in_chunks_matches_the_model(sizes):
    model = tiny_gpt(seed=2, n_layer=3)
    idx = np.random.default_rng(3).integers(0, 13, (1, sum(sizes)))
    compare_chunks(model, idx, sizes)


@pytest.mark.task("cached_forward")
def test_cached_forward_appends_the_new_tokens_to_every_layer():
    require_working_cache("cached_forward")
    model = tiny_gpt(n_layer=3)
    cache = cache_for(model, 2, "recording")
    idx = np.random.default_rng(4).integers(0, 13, (2, 5))
    forward_chunks(model, idx, (4, 1), cache)
    want = [(layer, (2, 2, n, 8)) for n in (4, 1) for layer in range(3)]
    if cache.appended != want:
        raise AssertionError(f"cached_forward: a 4-token prefill and a 1-token step appended {cache.appended}; "
                             f"expected each layer in turn to append the new positions only: {want}")


@pytest.mark.task("cached_forward")
def test_cached_forward_refuses_to_pass_block_size():
    require_working_cache("cached_forward")
    model = tiny_gpt(block=6)
    cache = cache_for(model, 1)
    idx = np.random.default_rng(5).integers(0, 13, (1, 6))
    forward_chunks(model, idx, (6,), cache)  # the window is full
    expect_error("cached_forward", ValueError, cached_forward, model, idx[:, :1], cache, match="block_size")


# ---------------------------------------------------------------------------------------------
# generate
# ---------------------------------------------------------------------------------------------
def counting_gpt(**kwargs):
    """A GPT that counts its full forward passes and the token positions its token embedding
    looks up (subclasses: GPT and Embedding themselves are untouched)."""
    class CountingGPT(GPT):
        def forward(self, idx):
            self.full_forwards = getattr(self, "full_forwards", 0) + 1
            return super().forward(idx)

    class CountingEmbedding(Embedding):
        def forward(self, idx):
            self.positions += np.shape(getattr(idx, "data", idx))[-1]
            return super().forward(idx)

    model = tiny_gpt(cls=CountingGPT, **kwargs)
    counter = CountingEmbedding(model.config.vocab_size, model.config.n_embd)
    counter.weight = model.tok_emb.weight  # the same Parameter (tied to lm_head)
    counter.positions = 0
    model.tok_emb = counter
    model.full_forwards = 0
    return model


def positions_needed(prompt_len: int, n: int, bs: int) -> int:
    """What a cached generate must feed through the model: the prompt's last bs tokens once, then
    each new token once while the window has room (none after the last), and bs per token once
    the window slides (every position shifts: nothing cached survives)."""
    total = min(prompt_len, bs) if n else 0
    for i in range(1, n):  # token i needs the context prompt + tokens 0 .. i-1
        total += 1 if prompt_len + i <= bs else bs
    return total


def run_generate(model, idx, n, **kwargs) -> np.ndarray:
    before = np.array(idx)
    out = call("generate", generate, model, idx, n, **kwargs)
    if not isinstance(out, np.ndarray):
        raise AssertionError(f"generate: returned {type(out).__name__}, expected a NumPy array of token ids")
    if not np.array_equal(idx, before):
        raise AssertionError("generate: changed the prompt array in place")
    B, T = np.shape(idx)
    if out.shape != (B, T + n) or out.dtype.kind not in "iu":
        raise AssertionError(f"generate: prompt {np.shape(idx)} + {n} tokens gave {out.shape} {out.dtype}, expected "
                             f"{(B, T + n)} integers")
    if not np.array_equal(out[:, :T], idx):
        raise AssertionError("generate: the output must start with the prompt")
    return out


def reference_tokens(model, idx, n, temperature=0.0, top_k=None, rng=None) -> np.ndarray:
    """The uncached loop written out: crop to block_size, the last position's logits, choose."""
    bs = model.config.block_size
    for _ in range(n):
        logits = uncached(model, idx[:, -bs:])[:, -1]
        nxt = logits.argmax(-1) if temperature == 0 else sample_next(logits, temperature, top_k, rng)
        idx = np.concatenate([idx, nxt[:, None]], axis=1)
    return idx


def expect_same_tokens(got, want, what):
    if not np.array_equal(got, want):
        row, col = np.argwhere(got != want)[0]
        raise AssertionError(f"generate: {what}: the tokens differ from the uncached model's, first in sequence "
                             f"{row} at position {col} ({got[row, col]} instead of {want[row, col]})")


@pytest.mark.task("generate")
def test_generate_greedy_tokens_identical_inside_the_window():
    require_working_cache("generate")
    model = tiny_gpt()
    prompt = np.random.default_rng(6).integers(0, 13, (2, 3))
    got = run_generate(model, prompt, 7, temperature=0)
    expect_same_tokens(got, reference_tokens(model, prompt, 7), "greedy, 3 prompt + 7 tokens, block_size 10")


@pytest.mark.task("generate")
@pytest.mark.parametrize("prompt_len, n", [(3, 20), (14, 5), (10, 3)], ids=["short-prompt", "long-prompt", "full"])
def test_generate_greedy_tokens_identical_past_block_size(prompt_len, n):
    """Once the context outgrows block_size the window slides: the cache must not reuse stale positions."""
    require_working_cache("generate")
    model = tiny_gpt(seed=3)
    prompt = np.random.default_rng(7).integers(0, 13, (2, prompt_len))
    got = run_generate(model, prompt, n, temperature=0)
    expect_same_tokens(got, reference_tokens(model, prompt, n),
                       f"greedy, {prompt_len} prompt + {n} tokens, block_size 10 (past the window, every position "
                       "shifts: reset the cache and re-prefill the last block_size tokens)")


@pytest.mark.task("generate")
@pytest.mark.parametrize("temperature, top_k", [(1.0, None), (0.7, 4)], ids=str)
def test_generate_samples_as_the_uncached_loop(temperature, top_k):
    """The same seeded generator draws the same tokens: one sample_next per token, as GPT.generate."""
    require_working_cache("generate")
    model = tiny_gpt(seed=4)
    prompt = np.random.default_rng(8).integers(0, 13, (2, 2))
    got = run_generate(model, prompt, 14, temperature=temperature, top_k=top_k, generator=np.random.default_rng(9))
    want = reference_tokens(model, prompt, 14, temperature, top_k, np.random.default_rng(9))
    expect_same_tokens(got, want, f"sampling (temperature {temperature}, top_k {top_k}, the same seed)")


@pytest.mark.task("generate")
def test_generate_without_the_cache_is_model_generate():
    model = counting_gpt(seed=5)
    prompt = np.random.default_rng(10).integers(0, 13, (1, 4))
    got = run_generate(model, prompt, 6, temperature=0.9, generator=np.random.default_rng(11), use_cache=False)
    calls = model.full_forwards
    want = model.generate(prompt, 6, temperature=0.9, generator=np.random.default_rng(11))
    if not np.array_equal(got, want) or calls != 6:
        raise AssertionError(f"generate: use_cache=False must be model.generate(idx, max_new_tokens, temperature, "
                             f"top_k, generator=...) itself (it ran the full model {calls} times for 6 tokens"
                             f"{'' if np.array_equal(got, want) else ', and chose other tokens'})")


@pytest.mark.task("generate")
def test_generate_uses_the_cache_not_the_full_model():
    """Inside the window the cached path never runs model(...) on the whole context."""
    require_working_cache("generate")
    model = counting_gpt(seed=6)
    prompt = np.random.default_rng(12).integers(0, 13, (2, 2))
    got = run_generate(model, prompt, 8, temperature=0)
    if model.full_forwards:
        raise AssertionError(f"generate: with use_cache=True it ran the full model {model.full_forwards} times for "
                             "8 tokens inside the window; prefill once with cached_forward, then feed only the "
                             "new token")
    model.full_forwards = 0
    expect_same_tokens(got, reference_tokens(model, prompt, 8), "greedy, 2 prompt + 8 tokens")
    none = run_generate(model, prompt, 0, temperature=0)
    if not np.array_equal(none, prompt):
        raise AssertionError("generate: max_new_tokens=0 must return the prompt unchanged")


@pytest.mark.task("generate")
@pytest.mark.parametrize("prompt_len, n", [(3, 7), (1, 10), (3, 14), (12, 4)],
                         ids=["inside", "fills-the-window", "past-the-window", "long-prompt"])
def test_generate_feeds_each_token_through_the_model_once(prompt_len, n):
    """Counted at the token embedding: the prompt once, every new token once, nothing after the
    last; past the window a full block_size per token (no cached position survives the slide)."""
    require_working_cache("generate")
    model = counting_gpt(seed=7)
    prompt = np.random.default_rng(13).integers(0, 13, (2, prompt_len))
    got = run_generate(model, prompt, n, temperature=0)
    fed, want = model.tok_emb.positions, positions_needed(prompt_len, n, 10)
    if fed != want:
        raise AssertionError(f"generate: fed {fed} token positions through the model for a {prompt_len}-token prompt "
                             f"+ {n} tokens (block_size 10); the cache needs exactly {want}: the prompt once, then "
                             "each new token once (none after the last), and block_size per token only once the "
                             "window slides")
    expect_same_tokens(got, reference_tokens(model, prompt, n), f"greedy, {prompt_len} prompt + {n} tokens")
