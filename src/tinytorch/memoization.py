# %% [markdown]
# # Module 17 - Memoization: the KV cache
#
# A language model writes one token at a time, and the `generate` of module 13 pays for it in full:
# for every new token it runs the whole model over the whole context, and recomputes the keys and
# values of every earlier position - exactly the numbers it computed one step before. Causal
# attention guarantees that those numbers never change. This module *memoizes* them: a
# preallocated **key-value cache** per layer, a forward pass that processes only the new tokens
# and attends them to everything cached, and a `generate` that writes exactly the same tokens as
# module 13's - measured faster, with the reasons it is not faster still.
#
# It is one of the optimisation modules that milestone 06 (MLPerf) builds on: its language part
# times your `generate` with and without the cache on the char-GPT of milestone 05, and asks for
# the same greedy tokens both ways.
#
# ## What you build
#
# | step | you write | checked by |
# |---|---|---|
# | 1 | `KVCache`: preallocated keys and values, O(1) `append`, views `keys`/`values`, `reset` | `check("17", "KVCache")` |
# | 2 | `offset_causal_mask`: which cached keys each *new* query may see | `check("17", "offset_causal_mask")` |
# | 3 | `cached_attention`: one block's attention for the new tokens only | `check("17", "cached_attention")` |
# | 4 | `cached_forward`: the GPT forward for the new tokens, positions offset by the cache | `check("17", "cached_forward")` |
# | 5 | `generate(..., use_cache=True)`: prefill, then one token per step; past `block_size` too | `check("17", "generate")` |
#
# Each step has a markdown cell that teaches it, a cell to fill in (your copy says
# `# YOUR CODE HERE` and `raise NotImplementedError()` where the answer goes), a "try it" cell and
# a check cell that runs the same checks as `tito module test 17 --task <name>`. The checks read
# back what your cache stores (after a `reset` too, where stale values hide), compare every cached
# forward with module 13's uncached model on the same weights - the whole prompt at once, token by
# token and in chunks, within $10^{-5}$ - and make sure `generate` gives the same greedy tokens as
# `GPT.generate`, before and after the context outgrows `block_size`, without ever running the
# full model while the cache has room.
#
# The cached code reuses the model's own parts - `block.ln1`, `block.attn.qkv`,
# `block.attn.proj`, `block.mlp`, your `scaled_dot_product_attention` - so nothing here is a
# second copy of the model: it is the same model, called in a different order. Shapes in the
# comments: B batch, T new positions, L cached positions, C channels, nh heads, hs head size,
# V vocabulary.

# %%
"""Module 17: KVCache, offset_causal_mask, cached_attention, cached_forward, sample_next, generate.

A KV cache keeps, for every layer, the keys and values of the positions already processed:

    k, v: float32 (n_layer, B, nh, max_len, hs), allocated once; lengths[l] positions filled
    append(l, k_new, v_new): write (B, nh, T, hs) at positions lengths[l] .. lengths[l] + T - 1
    keys(l), values(l): views (B, nh, lengths[l], hs)

A cached forward of T new tokens with L positions cached (a prefill when L = 0, a decode step
when T = 1):

    x = tok_emb(idx) + pos_emb rows L .. L + T - 1                        (B, T, C)
    per block: q, k, v = split(attn.qkv(ln1(x))); append k, v; K, V = the cache (L + T keys)
               x = x + attn.proj(sdpa(q, K, V, mask: new query i sees keys j <= L + i))
               x = x + mlp(ln2(x))
    logits = lm_head(ln_f(x))                                             (B, T, V)

Causality makes the cached keys and values exactly those the full forward would compute, so
the logits agree with model(all tokens)[:, L:] up to float32 rounding. generate() prefills the
prompt, then feeds one token per step; once the context fills block_size, every position's
embedding shifts with the window, nothing cached stays valid, and each further step re-prefills
the last block_size tokens (what GPT.generate computes, so the tokens stay identical).
"""

from __future__ import annotations

import numpy as np

from tinytorch.attention import scaled_dot_product_attention
from tinytorch.tensor import Tensor, default_generator, no_grad


# %% [markdown]
# ## Why generation repeats itself
#
# Look at step $t$ of module 13's `generate`: it runs `model(context)` on the last (up to)
# `block_size` tokens, keeps the logits of the *last* position and throws the rest away. Inside,
# every block computes a query, a key and a value for *every* position:
# $k_j = W_k\,\mathrm{ln}_1(x_j)$, $v_j = W_v\,\mathrm{ln}_1(x_j)$. Now ask what $x_j$ depends on. In the first block
# it is the embedding of token $j$ at position $j$. In every later block it is the output of causal
# attention at position $j$, which reads only positions $\le j$. By induction, **everything computed
# at position $j$ depends on tokens $0 \ldots j$ only** - that is what the causal mask means. When token
# $t + 1$ is appended, the keys and values of positions $0 \ldots t$ are exactly those of the previous
# step (in exact arithmetic; in float32 they can differ in the last bits, because a matrix product
# of another size may add in another order). Recomputing them is pure waste, and *memoization* -
# keeping the result of a computation instead of redoing it - removes it.
#
# What the last position needs at step $t$, per layer, is its own query $q_t$, the keys
# $k_0 \ldots k_t$ and the values $v_0 \ldots v_t$:
#
# $$o_t = \sum_{j \le t} \mathrm{softmax}_j\!\left(\frac{q_t \cdot k_j}{\sqrt{d}}\right) v_j .$$
#
# With a cache, a step computes $q_t, k_t, v_t$ for the one new token, appends $k_t, v_t$, and attends
# $q_t$ to all $t + 1$ cached keys. The MLP, the layer norms and the projections are per position,
# so they too run on one token instead of $t + 1$.
#
# **The cost, worked for this course's default model** (`GPTConfig()`: $C = 128$, 4 layers,
# $V = 65$, `block_size` 64). A forward pass costs about $2N$ FLOPs per token for its $N \approx$ 795,000
# matrix weights (1.59 MFLOP), plus the attention scores and weighted sums, $4\,T C$ per token per
# layer. Without a cache, the step at a full context of $T = 64$ runs 64 tokens:
# $64 \cdot (1.59 + 4 \cdot 4 \cdot 64 \cdot 128 \cdot 10^{-6}) \approx 110$ MFLOP, to produce one token. With the cache it
# runs one token against 64 cached keys: $1.59 + 0.13 = 1.72$ MFLOP - **64 times less arithmetic**.
# Over a whole generation from a short prompt the uncached total grows like $n^2/2$ token-forwards
# for $n$ tokens, the cached one like $n$.
#
# You will measure far less than 64x here, and finding out why is half of this module: a step
# that moves 1.72 MFLOP through a few dozen small NumPy calls costs about a millisecond in Python
# overhead and memory traffic, whatever its FLOPs. Keep the prediction in mind; the measurements
# come at the end.

# %% [markdown]
# ## The cache: allocate once, write in place
#
# Per layer, the cache holds the keys and the values of every position seen so far, in the layout
# the attention already uses, heads first: $(B, n_h, T, h_s)$. One array per kind holds all layers,
#
# $$\texttt{k}, \texttt{v}: (n_{layer}, B, n_h, \texttt{max\_len}, h_s), \text{ float32},$$
#
# allocated **once**, at the largest length it will ever need (`block_size`), plus a count per layer
# of the positions filled. Appending $T$ new positions to layer $l$ is a slice assignment,
#
# ```python
# self.k[l, :, :, start:start + T] = k_new      # (B, nh, T, hs): a copy INTO the buffer
# ```
#
# and reading is a *view*, `self.k[l, :, :, :length]`: no copy at all. Each append costs
# $O(B\,n_h\,T\,h_s)$ - proportional to what is added, never to what is already there.
#
# The tempting alternative, `self.k = np.concatenate([self.k, k_new], axis=2)`, allocates a new array
# and copies the whole cache on every step: step $t$ copies $t$ positions, so $n$ steps copy
# $n^2/2$ - the quadratic cost the cache was meant to remove, moved from the arithmetic into
# memory traffic (and the allocator). Python lists of per-step arrays avoid the copy at append time
# but pay it at read time, when attention needs one contiguous $(B, n_h, L, h_s)$ array.
#
# **Worked example, memory.** The cache holds $2 \cdot n_{layer} \cdot B \cdot \texttt{max\_len} \cdot C$ numbers ($n_h h_s = C$).
# For `GPTConfig()` and one sequence: $2 \cdot 4 \cdot 1 \cdot 64 \cdot 128 = 65{,}536$ float32 numbers,
# 256 KiB - next to the 3.2 MB of weights, nothing. GPT-2 small ($n_{layer} = 12$, $C = 768$, 1,024
# positions) needs $2 \cdot 12 \cdot 1024 \cdot 768 = 18.9$ million numbers, 75 MB per sequence in float32. The
# systems section at the end scales this up to models where the cache, not the weights, decides
# how many users a machine can serve.
#
# **Stale values.** `reset()` only sets the lengths back to zero: the buffers keep the previous
# sequence's numbers, and nothing but `lengths` says which entries are valid. That is fine - and
# fast - as long as every append writes *both* arrays. A cache that writes the new keys but
# forgets the values still "works" (no error, the shapes are right): attention then averages the
# values of a previous sequence, or zeros. The checks read back both arrays after a `reset` for
# exactly this reason.
#
# **What to write.** `__init__` allocates `self.k` and `self.v` (float32 zeros of the 5-D shape) and
# `self.lengths` (a list of `n_layer` zeros); `append` writes both arrays at the layer's current
# length and advances it (the given lines check the shapes and refuse to overflow `max_len`);
# `keys` and `values` return views up to the length; `reset` empties every layer.

# %% nbgrader={"grade": false, "grade_id": "kv-cache", "locked": false, "schema_version": 3, "solution": true, "task": false}
class KVCache:
    """Keys and values of every layer for the positions processed so far, preallocated.

    k, v: float32 arrays (n_layer, batch, n_head, max_len, head_dim), allocated once.
    lengths[l]: how many positions layer l holds; `length`: how many every layer holds.
    append(l, k, v) writes (batch, n_head, T, head_dim) at the current length (no reallocation);
    keys(l) / values(l) are views (batch, n_head, lengths[l], head_dim); reset() empties it.
    """

    def __init__(self, n_layer: int, batch: int, n_head: int, max_len: int, head_dim: int):
        self.n_layer, self.batch, self.n_head = int(n_layer), int(batch), int(n_head)
        self.max_len, self.head_dim = int(max_len), int(head_dim)
        # HINT: shape = (n_layer, batch, n_head, max_len, head_dim); self.k and self.v are
        # HINT: np.zeros of that shape in float32; self.lengths = [0] * n_layer
        ### BEGIN SOLUTION
        shape = (self.n_layer, self.batch, self.n_head, self.max_len, self.head_dim)
        self.k = np.zeros(shape, dtype=np.float32)  # (n_layer, B, nh, max_len, hs)
        self.v = np.zeros(shape, dtype=np.float32)  # (n_layer, B, nh, max_len, hs)
        self.lengths = [0] * self.n_layer  # positions filled, per layer
        ### END SOLUTION

    @property
    def length(self) -> int:
        """Positions stored in every layer: the position of the next token."""
        return min(self.lengths)

    @property
    def nbytes(self) -> int:
        return self.k.nbytes + self.v.nbytes

    def append(self, layer: int, k, v) -> None:
        """Store the keys and values (batch, n_head, T, head_dim) of T new positions of `layer`."""
        k = k.data if isinstance(k, Tensor) else np.asarray(k)
        v = v.data if isinstance(v, Tensor) else np.asarray(v)
        want = (self.batch, self.n_head, self.head_dim)
        if k.ndim != 4 or k.shape != v.shape or (k.shape[0], k.shape[1], k.shape[3]) != want:
            raise ValueError(f"KVCache.append: expected keys and values of shape ({self.batch}, {self.n_head}, "
                             f"T, {self.head_dim}), got {k.shape} and {v.shape}")
        start, stop = self.lengths[layer], self.lengths[layer] + k.shape[2]
        if stop > self.max_len:
            raise ValueError(f"KVCache.append: layer {layer} holds {start} positions; {k.shape[2]} more "
                             f"exceed max_len={self.max_len}")
        # HINT: slice-assign k into self.k[layer, :, :, start:stop] and v into self.v likewise
        # HINT: (a copy into the preallocated buffer), then self.lengths[layer] = stop
        ### BEGIN SOLUTION
        self.k[layer, :, :, start:stop] = k  # (B, nh, T, hs), copied into the buffer
        self.v[layer, :, :, start:stop] = v
        self.lengths[layer] = stop
        ### END SOLUTION

    def keys(self, layer: int) -> np.ndarray:
        """(batch, n_head, lengths[layer], head_dim): a view of the buffer, no copy."""
        ### BEGIN SOLUTION
        return self.k[layer, :, :, :self.lengths[layer]]
        ### END SOLUTION

    def values(self, layer: int) -> np.ndarray:
        """(batch, n_head, lengths[layer], head_dim): a view of the buffer, no copy."""
        ### BEGIN SOLUTION
        return self.v[layer, :, :, :self.lengths[layer]]
        ### END SOLUTION

    def reset(self) -> None:
        """Forget every position (the buffers stay allocated; only the lengths say what is valid)."""
        ### BEGIN SOLUTION
        self.lengths = [0] * self.n_layer
        ### END SOLUTION

    def __repr__(self) -> str:
        return (f"KVCache(n_layer={self.n_layer}, batch={self.batch}, n_head={self.n_head}, "
                f"max_len={self.max_len}, head_dim={self.head_dim}, lengths={self.lengths})")


# %%
if __name__ == "__main__":
    cache = KVCache(n_layer=2, batch=1, n_head=2, max_len=8, head_dim=3)
    print(cache, f"| {cache.nbytes:,} bytes")
    rng = np.random.default_rng(0)
    prompt_k, prompt_v = rng.standard_normal((2, 1, 2, 5, 3)).astype(np.float32)  # 5 positions
    cache.append(0, prompt_k, prompt_v)
    step_k, step_v = rng.standard_normal((2, 1, 2, 1, 3)).astype(np.float32)  # then 1 more
    cache.append(0, step_k, step_v)
    print("layer 0 keys:", cache.keys(0).shape, "| layer 1 keys:", cache.keys(1).shape,
          "| length (every layer):", cache.length)
    print("the newest value is stored:", np.array_equal(cache.values(0)[:, :, -1:], step_v),
          "| keys(0) is a view of the buffer:", np.shares_memory(cache.keys(0), cache.k))
    cache.reset()
    print("after reset:", cache.lengths, cache.keys(0).shape)


# %% nbgrader={"grade": true, "grade_id": "check-kv-cache", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("17", "KVCache")


# %% [markdown]
# ## The mask for new queries
#
# In a cached forward the queries and the keys no longer cover the same positions. With $L$
# positions in the cache and $T$ new tokens, the queries are those of positions $L \ldots L + T - 1$,
# and - after the append - the keys are those of positions $0 \ldots L + T - 1$. Query $i$ (of the new
# ones) sits at position $L + i$, so causality allows it the keys
#
# $$j \le L + i, \qquad i = 0 \ldots T - 1, \quad j = 0 \ldots L + T - 1 .$$
#
# **Worked example**, $L = 3$ cached, $T = 2$ new, so 2 queries against 5 keys:
#
# ```
#            key: 0 1 2 3 4
# query 0 (pos 3):  1 1 1 1 0
# query 1 (pos 4):  1 1 1 1 1
# ```
#
# The triangle is aligned to the *bottom-right* corner: the last query sees every key. For a
# single new token ($T = 1$, the usual decode step) the mask is one row of ones - the newest token
# may read everything before it - and for a prefill ($L = 0$) it is the ordinary causal mask.
#
# Module 12's `causal_mask(tq, tk)` and `is_causal=True` are aligned to the *top-left* corner
# instead (query $i$ sees keys $j \le i$, as PyTorch's `is_causal` when $T_q \ne T_k$): right for
# a prefill, wrong for every later step. With `is_causal=True` a decode step's single query would
# attend to key 0 only - the first token of the prompt - and the model would still produce
# confident, well-formed, wrong logits. That is why this mask is its own function with its own
# checks.
#
# **What to write.** `offset_causal_mask(tq, tk)`: a boolean $(t_q, t_k)$ array, True where query $i$
# may attend key $j$, with the queries being the *last* $t_q$ of the $t_k$ positions. One
# broadcast comparison of two `np.arange`s, like `causal_mask`, with the query positions shifted.

# %% nbgrader={"grade": false, "grade_id": "offset-causal-mask", "locked": false, "schema_version": 3, "solution": true, "task": false}
def offset_causal_mask(tq: int, tk: int) -> np.ndarray:
    """(tq, tk) bool: the queries are the last tq of tk positions; query i (at position
    tk - tq + i) may attend key j when j <= tk - tq + i."""
    if tq > tk:
        raise ValueError(f"offset_causal_mask: {tq} queries cannot be the last positions of {tk} keys")
    # HINT: np.arange(tk)[None, :] <= (tk - tq + np.arange(tq))[:, None]
    ### BEGIN SOLUTION
    positions = tk - tq + np.arange(tq)  # (tq,) the absolute position of each new query
    return np.arange(tk)[None, :] <= positions[:, None]  # (tq, tk)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    from tinytorch.attention import causal_mask

    print("3 cached + 2 new: 2 queries x 5 keys\n", offset_causal_mask(2, 5).astype(int))
    print("a decode step, 1 query x 5 keys:", offset_causal_mask(1, 5).astype(int)[0])
    print("a prefill equals causal_mask:", np.array_equal(offset_causal_mask(4, 4), causal_mask(4, 4)))
    print("is_causal's top-left triangle for 1 query x 5 keys would be:", causal_mask(1, 5).astype(int)[0])


# %% nbgrader={"grade": true, "grade_id": "check-offset-causal-mask", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("17", "offset_causal_mask")


# %% [markdown]
# ## Attention against the cache
#
# `MultiHeadAttention.forward` (module 12) projects the whole input with one `qkv` Linear, splits it
# into heads, runs one batched `scaled_dot_product_attention` and projects back with `proj`.
# `cached_attention(attn, x, cache, layer)` does the same with the layer's *own* `attn.qkv` and
# `attn.proj`, for the new positions $x$: $(B, T, C)$ only:
#
# 1. `attn.qkv(x)`, reshaped $(B, T, 3, n_h, h_s)$ and permuted to $(3, B, n_h, T, h_s)$: $q, k, v$ of
#    the new tokens, exactly as module 12 splits them (the heads by reshape *and* transpose).
# 2. `cache.append(layer, k, v)`: the new keys and values join the cache. Append *before* attending:
#    a new token attends to itself too.
# 3. $K, V$ = `cache.keys(layer)`, `cache.values(layer)`: $(B, n_h, L + T, h_s)$, every position so far.
# 4. `scaled_dot_product_attention(q, K, V, mask=offset_causal_mask(T, L + T))`: $(B, n_h, T, h_s)$.
# 5. Merge the heads back to $(B, T, C)$ and apply `attn.proj`.
#
# **Cost of one decode step** ($T = 1$) per layer: the two projections are matrix-*vector* products,
# $2 \cdot 4C^2$ FLOPs ($3C^2$ for qkv, $C^2$ for proj), and the attention is $q K^\top$ and $p V$ over
# $L + 1$ keys, $4 (L + 1) C$ FLOPs. The projections do not depend on $L$; the attention grows linearly
# with the context, where the uncached step grows quadratically ($T$ queries times $T$ keys). At
# $C = 128$ and $L = 63$ the projections are 131,072 FLOPs and the attention 32,768: at this size the
# weights, not the context, dominate each step.
#
# **What to write.** The five steps above. `q` is a Tensor slice of the qkv output; `cache.append`
# takes `k.data` and `v.data` (or the Tensors); wrap the cache's views in `Tensor(...)` for the
# attention call.

# %% nbgrader={"grade": false, "grade_id": "cached-attention", "locked": false, "schema_version": 3, "solution": true, "task": false}
def cached_attention(attn, x: Tensor, cache: KVCache, layer: int) -> Tensor:
    """Causal self-attention of the new positions x (B, T, C) against the cache of `layer`
    (whose keys and values it appends first), with attn's own qkv and proj -> (B, T, C)."""
    B, T, C = x.shape
    nh, hs = attn.num_heads, attn.head_dim
    # HINT: qkv = attn.qkv(x).reshape(B, T, 3, nh, hs).permute(2, 0, 3, 1, 4); q, k, v = qkv[0], qkv[1], qkv[2];
    # HINT: cache.append(layer, k.data, v.data); keys/values as Tensors (B, nh, L + T, hs);
    # HINT: mask = offset_causal_mask(T, L + T); merge y with permute(0, 2, 1, 3).reshape(B, T, C), then attn.proj
    ### BEGIN SOLUTION
    qkv = attn.qkv(x).reshape(B, T, 3, nh, hs).permute(2, 0, 3, 1, 4)  # (3, B, nh, T, hs)
    q, k, v = qkv[0], qkv[1], qkv[2]  # each (B, nh, T, hs)
    cache.append(layer, k.data, v.data)  # the new positions join the cache first
    keys, values = Tensor(cache.keys(layer)), Tensor(cache.values(layer))  # (B, nh, L + T, hs), views
    mask = offset_causal_mask(T, keys.shape[-2])  # (T, L + T): new query i sees keys j <= L + i
    y = scaled_dot_product_attention(q, keys, values, mask=mask)  # (B, nh, T, hs)
    y = y.permute(0, 2, 1, 3).reshape(B, T, C)  # (B, T, nh, hs) -> (B, T, C)
    return attn.proj(y)  # (B, T, C)
    ### END SOLUTION


# %% [markdown]
# The next cell feeds a 6-token sequence to one attention layer in three chunks - 3 tokens (a
# prefill), then 1, then 2 - and compares each chunk's output with the uncached layer run on the
# whole sequence at once, `attn(x, is_causal=True)`. The two agree to float32 rounding.

# %%
if __name__ == "__main__":
    from tinytorch.attention import MultiHeadAttention
    from tinytorch.tensor import manual_seed

    manual_seed(0)
    attn = MultiHeadAttention(8, 2)
    x = Tensor(np.random.default_rng(1).standard_normal((1, 6, 8)).astype(np.float32))  # (B, T, C)
    with no_grad():
        full = attn(x, is_causal=True).data  # (1, 6, 8): the uncached layer, all positions
        cache = KVCache(1, 1, 2, 6, 4)
        for a, b in ((0, 3), (3, 4), (4, 6)):
            out = cached_attention(attn, x[:, a:b], cache, 0).data
            print(f"positions {a}..{b - 1}: max |cached - full| = {np.abs(out - full[:, a:b]).max():.2e}"
                  f" | cache holds {cache.lengths[0]} positions")


# %% nbgrader={"grade": true, "grade_id": "check-cached-attention", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("17", "cached_attention")


# %% [markdown]
# ## The cached forward: prefill and decode
#
# `cached_forward(model, idx, cache)` is `GPT.forward` for the new tokens `idx` $(B, T)$, given
# $L$ = `cache.length` positions already cached:
#
# $$x = \mathrm{tok\_emb}(\mathrm{idx}) + \mathrm{pos\_emb}[L : L + T], \qquad
# x \leftarrow x + \mathrm{cached\_attention}(\mathrm{ln}_1(x)), \quad x \leftarrow x + \mathrm{mlp}(\mathrm{ln}_2(x)) \text{ per block}, \qquad
# \mathrm{logits} = \mathrm{lm\_head}(\mathrm{ln}_f(x)).$$
#
# The one new idea is the **position offset**. `model.pos_emb(T)` gives the rows of positions
# $0 \ldots T - 1$; the new tokens sit at positions $L \ldots L + T - 1$, so they need rows $L$ to
# $L + T - 1$ of the table: `model.pos_emb.weight[L:L + T]`, a Tensor slice $(T, C)$. Forget the
# offset and every decode step tells the model "this is the first token" - a mistake that does not
# crash.
#
# A generation uses the function in two ways:
#
# - **prefill**: the whole prompt at once ($L = 0$, $T$ = the prompt's length). This is a normal
#   forward pass - matrix-matrix products over $T$ tokens, efficient - that also fills the cache.
# - **decode**: one token per call ($T = 1$), $L$ growing by one each time. Every product is a
#   matrix-vector product: each weight is read from memory and used for *one* multiply-add.
#
# The logits are those of the new positions only, $(B, T, V)$; the cache now holds $L + T$
# positions in every layer. Nothing here changes `GPT` itself: the function walks the model's
# parts (`model.tok_emb`, `model.pos_emb`, `model.blocks`, each block's `ln1`, `attn`, `ln2`, `mlp`,
# then `model.ln_f` and `model.lm_head`), so a trained model works with it as it is, and there is
# one set of weights. It is for inference: the given lines run it under `no_grad()` (a cached key
# is a number, not a graph node: no gradient flows into the past through the cache).
#
# **What to write.** The embedding with the offset, the loop over `enumerate(model.blocks)` with
# the two residual updates (attention through `cached_attention`), the final norm and the head.

# %% nbgrader={"grade": false, "grade_id": "cached-forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def cached_forward(model, idx, cache: KVCache) -> Tensor:
    """GPT forward for the new tokens idx (B, T) at positions cache.length .. + T - 1, attending
    to the cache (which it extends by T positions per layer) -> logits (B, T, vocab_size)."""
    idx = idx.data if isinstance(idx, Tensor) else np.asarray(idx)
    if idx.ndim != 2:
        raise ValueError(f"cached_forward: expected token ids of shape (B, T), got {idx.shape}")
    B, T = idx.shape
    start = cache.length  # positions already cached: the first new token's position
    if cache.n_layer != len(model.blocks) or cache.batch != B:
        raise ValueError(f"cached_forward: a cache for {cache.n_layer} layers and batch {cache.batch} cannot "
                         f"serve a model of {len(model.blocks)} layers on a batch of {B}")
    if start + T > model.config.block_size:
        raise ValueError(f"cached_forward: {start} cached + {T} new positions exceed block_size="
                         f"{model.config.block_size}")
    with no_grad():
        # HINT: x = model.tok_emb(idx) + model.pos_emb.weight[start:start + T]   (B, T, C) + (T, C);
        # HINT: per (layer, block): x = x + cached_attention(block.attn, block.ln1(x), cache, layer),
        # HINT: then x = x + block.mlp(block.ln2(x)); logits = model.lm_head(model.ln_f(x))
        ### BEGIN SOLUTION
        x = model.tok_emb(idx) + model.pos_emb.weight[start:start + T]  # (B, T, C) + (T, C)
        for layer, block in enumerate(model.blocks):
            x = x + cached_attention(block.attn, block.ln1(x), cache, layer)  # (B, T, C)
            x = x + block.mlp(block.ln2(x))  # (B, T, C)
        logits = model.lm_head(model.ln_f(x))  # (B, T, V)
        ### END SOLUTION
    return logits


# %%
if __name__ == "__main__":
    from tinytorch.transformers import GPT, GPTConfig

    manual_seed(0)
    model = GPT(GPTConfig())
    cfg = model.config
    tokens = np.random.default_rng(2).integers(0, cfg.vocab_size, (1, 20))  # (B, T)
    with no_grad():
        full = model(tokens).data  # (1, 20, V) uncached, every position
    cache = KVCache(cfg.n_layer, 1, cfg.n_head, cfg.block_size, cfg.n_embd // cfg.n_head)
    prefill = cached_forward(model, tokens[:, :12], cache).data  # 12 prompt tokens at once
    steps = [cached_forward(model, tokens[:, t:t + 1], cache).data for t in range(12, 20)]  # then 1 by 1
    cached = np.concatenate([prefill, *steps], axis=1)
    print(f"prefill 12 + 8 decode steps: max |cached - uncached| logit = {np.abs(cached - full).max():.2e}; "
          f"cache length {cache.length}, {cache.nbytes:,} bytes")


# %% nbgrader={"grade": true, "grade_id": "check-cached-forward", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("17", "cached_forward")


# %% [markdown]
# ## Sampling: the same rule as module 13
#
# The cache changes how the logits are computed, not what is done with them. `sample_next` (given)
# is the choice `GPT.generate` makes from the last position's logits, taken out of the loop so that
# both generators share it: greedy (argmax) at `temperature=0` or `top_k=1`; otherwise the logits
# divided by the temperature, all but the `top_k` largest set to $-\infty$, a softmax in float64, and
# one inverse-CDF draw per row with `rng.random((B, 1))`. Drawing the random numbers in the same
# order as module 13 means that with the same seeded generator the cached and the uncached
# generation *sample* the same tokens too, not only the greedy ones.

# %%
def sample_next(logits, temperature: float = 1.0, top_k: int | None = None,
                rng: np.random.Generator | None = None) -> np.ndarray:
    """The next token of every row of the last position's logits (B, V) -> (B,) int64, chosen as
    GPT.generate chooses it (one rng.random((B, 1)) draw per call unless greedy)."""
    logits = np.asarray(logits, dtype=np.float64)  # (B, V)
    if temperature == 0 or top_k == 1:
        return logits.argmax(axis=-1)  # (B,) greedy
    rng = default_generator() if rng is None else rng
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = np.partition(logits, -top_k, axis=-1)[:, -top_k, None]  # (B, 1) the k-th largest
        logits = np.where(logits < kth, -np.inf, logits)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))  # (B, V)
    cdf = np.cumsum(probs / probs.sum(axis=-1, keepdims=True), axis=-1)  # (B, V)
    u = rng.random((logits.shape[0], 1))  # (B, 1)
    return np.minimum((cdf < u).sum(axis=-1), logits.shape[-1] - 1)  # (B,)


# %% [markdown]
# ## generate: prefill, decode, and what happens past block_size
#
# `generate(model, idx, max_new_tokens, temperature, top_k, generator, use_cache=True)`:
#
# - `use_cache=False` is module 13's `model.generate(...)`, unchanged: the baseline.
# - With the cache: make a `KVCache(n_layer, B, n_head, block_size, n_embd // n_head)` and keep
#   `new`, the tokens the cache has not seen yet: at first the prompt (its last `block_size` tokens,
#   as `GPT.generate` crops). Per token to generate: `cached_forward(model, new, cache)` - the
#   **prefill** the first time, a one-token **decode** step after that - the last position's logits,
#   `sample_next`, append the token to `idx`; the token just chosen is the next `new`.
#
# Every token is processed exactly once while the window has room: the prompt in the first call,
# then each generated token in the call after it was chosen (the last one is never fed: nobody
# needs its logits). The checks count the tokens your `generate` feeds through the model's
# embedding, and hold it to that.
#
# **Past `block_size`.** The cache has room for `block_size` positions. When it is full, the next
# token does not fit - and here is the subtle part: module 13's `generate` then crops the context to
# its last `block_size` tokens, so every token *moves* one position to the left. Token $j$ was at
# position 63 and is now at position 62, with a different position embedding; its first-layer key
# changes, and so, through attention, does everything above it. Nothing in the cache is valid any
# more. (A "rolling" cache that drops the oldest entry and keeps the rest would be fast, and
# *wrong*: those keys were computed at the old positions.) With learned absolute positions there is
# no exact shortcut, so this `generate` does what the uncached one does: when the cache is full it
# is `reset()` and **re-prefilled** with the last `block_size` tokens - one full forward pass per
# token from then on. The tokens stay identical to module 13's; the speed-up stays in the first
# `block_size` positions. The measurements below show what that costs.
#
# Real systems choose differently, and trade exactness for speed: "context shifting" re-prefills
# only the last half of the window when it fills (one prefill per `block_size / 2` tokens, so the
# model sees between half and a full window of context - different tokens from a sliding
# window), models with *relative* positions (RoPE, ALiBi) can roll their cache with small
# corrections, and StreamingLLM keeps the first few tokens as "attention sinks" plus a recent
# window. Or the model is simply trained with a context as long as anything it will be asked
# to write: GPT-2's 1,024 positions, today's 128k.
#
# **What to write.** The body of `generate` after the given lines: `use_cache=False` returns
# `model.generate(idx, max_new_tokens, temperature, top_k, generator=rng)`; otherwise the loop
# above, which first checks whether `new` still fits (`cache.length + new.shape[1] <= block_size`)
# and, when it does not, resets the cache and makes `new` the last `block_size` tokens of `idx`.

# %% nbgrader={"grade": false, "grade_id": "generate", "locked": false, "schema_version": 3, "solution": true, "task": false}
def generate(model, idx, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
             generator: np.random.Generator | None = None, use_cache: bool = True) -> np.ndarray:
    """Append max_new_tokens tokens to idx (B, T) -> (B, T + max_new_tokens), choosing each as
    GPT.generate does (sample_next). use_cache=False: model.generate itself. use_cache=True: the
    same tokens, computed with a KVCache (re-prefilled from the cropped context once it is full)."""
    rng = default_generator() if generator is None else generator
    idx = np.array(idx.data if isinstance(idx, Tensor) else idx, dtype=np.int64)  # a copy
    if idx.ndim != 2 or idx.shape[1] == 0:
        raise ValueError(f"generate: expected a prompt of token ids of shape (B, T) with T >= 1, got {idx.shape}")
    cfg = model.config
    # HINT: if not use_cache: return model.generate(idx, max_new_tokens, temperature, top_k, generator=rng);
    # HINT: cache = KVCache(cfg.n_layer, B, cfg.n_head, cfg.block_size, cfg.n_embd // cfg.n_head); new = idx[:, -bs:];
    # HINT: per token: if cache.length + new.shape[1] > bs: cache.reset(); new = idx[:, -bs:] (the window slid);
    # HINT: logits = cached_forward(model, new, cache).data[:, -1]; nxt = sample_next(logits, temperature, top_k, rng);
    # HINT: idx = np.concatenate([idx, nxt[:, None]], axis=1); new = nxt[:, None]
    ### BEGIN SOLUTION
    if not use_cache:
        return model.generate(idx, max_new_tokens, temperature, top_k, generator=rng)
    bs = cfg.block_size
    cache = KVCache(cfg.n_layer, idx.shape[0], cfg.n_head, bs, cfg.n_embd // cfg.n_head)
    new = idx[:, -bs:]  # (B, <= bs) the tokens the cache has not seen: first the prompt
    for _ in range(max_new_tokens):
        if cache.length + new.shape[1] > bs:  # the window slides: every position shifts,
            cache.reset()  # nothing cached is valid: re-prefill the cropped context
            new = idx[:, -bs:]  # (B, bs)
        logits = cached_forward(model, new, cache).data[:, -1]  # (B, V) prefill, then one-token decodes
        nxt = sample_next(logits, temperature, top_k, rng)  # (B,)
        idx = np.concatenate([idx, nxt[:, None]], axis=1)  # (B, T + 1)
        new = nxt[:, None]  # (B, 1): fed in the next step
    return idx
    ### END SOLUTION


# %% [markdown]
# The next cell generates with the default model (untrained, so the tokens are noise - but the
# *same* noise with and without the cache) and measures tokens per second both ways: 60 tokens
# from a 4-token prompt, which stays inside the 64-position window, and 256 tokens, which spends
# most of its steps past it. `generate` is called once before the timing, so that both paths run
# warm; on a busy machine, rerun the cell for steadier numbers.

# %%
if __name__ == "__main__":
    import time

    def tokens_per_second(fn, n_tokens, repeats=3):
        """Best of `repeats` runs (other processes can slow a run down, never speed it up)."""
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            out = fn()
            best = min(best, time.perf_counter() - start)
        return n_tokens / best, out

    prompt = np.array([[1, 2, 3, 4]])  # (B, T) = (1, 4)
    generate(model, prompt, 4, temperature=0)  # warm-up
    for n, repeats in ((60, 3), (256, 1)):
        fast, a = tokens_per_second(lambda: generate(model, prompt, n, temperature=0), n, repeats)
        slow, b = tokens_per_second(lambda: generate(model, prompt, n, temperature=0, use_cache=False), n, repeats)
        print(f"{n:3d} tokens: cached {fast:6.0f} tokens/s, uncached {slow:6.0f} tokens/s -> {fast / slow:4.1f}x, "
              f"identical greedy tokens: {np.array_equal(a, b)}")
    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
    sampled_a = generate(model, prompt, 20, temperature=0.8, top_k=10, generator=rng_a)
    sampled_b = generate(model, prompt, 20, temperature=0.8, top_k=10, generator=rng_b, use_cache=False)
    print("sampled with the same seed, cached vs uncached identical:", np.array_equal(sampled_a, sampled_b))


# %% nbgrader={"grade": true, "grade_id": "check-generate", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("17", "generate")


# %% [markdown]
# ## Measuring: what the speed-up depends on
#
# The FLOP count promised up to 64 times less work at a full window; the measurement above gives a
# few times at most, and hardly anything for 256 tokens. Both have plain causes.
#
# **Past the window there is nothing to gain.** For 256 tokens from a 4-token prompt, the prefill
# and 60 decode steps fit in the window; the other 195 steps are full re-prefills of 64 tokens, the
# same work as the uncached model's: at best $256 / 195 \approx 1.3$ times less work overall, however
# fast the decode step. A model with a longer `block_size` keeps the whole generation inside its
# window; that is the only way to keep the speed-up *and* the exact tokens.
#
# **Inside the window, a decode step is not its FLOPs.** One decode step of the default model is
# about 75 small `Tensor` operations: per block two layer norms, four `Linear`s, a GELU, the head
# split and merge, an append, a mask, an attention call and two residual additions. Measured with
# BLAS at one thread on the machine this course was developed on (as CPU time of the process, which
# other jobs on the machine do not inflate much), a decode step took 0.73 ms - about 10 µs per
# operation, most of it Python, checks and the `Tensor` wrapper rather than arithmetic - and one
# uncached forward of a full 64-token window 3.4 ms. The forward does 64 times the arithmetic in
# 4.7 times the time: its matrix products are large enough to run near the speed of the BLAS
# library, the decode step's are not. That ratio, (time of an uncached forward at the context) /
# (time of a decode step), is the most a cache can give per token at that context, and it grows
# with the context, because the uncached forward grows with $T$ (its attention with $T^2$) and the
# decode step hardly at all. Measured on the same machine, with the default widths and
# `block_size=512`:
#
# | context | uncached forward | decode step | most a cache can give |
# |---|---|---|---|
# | 64 | 3.4 ms | 0.73 ms | 4.7x |
# | 128 | 6.4 ms | 0.73 ms | 8.8x |
# | 256 | 12.7 ms | 0.77 ms | 16.5x |
# | 512 | 36.8 ms | 0.87 ms | 42x |
#
# A whole generation averages over the contexts it passes through: 256 tokens from a 1-token prompt
# with a 256-position window measured 7.4x (the uncached steps average a context of 128). In a
# compiled framework the decode step's fixed cost is tens of microseconds, not hundreds, and the
# ratio comes much closer to the FLOP count - the same lesson as the batch-1 latency of milestone
# 06's vision model: at small sizes the cost is per call, not per FLOP.
#
# **Decode is memory-bound.** A matrix-vector product reads every weight once and uses it for one
# multiply-add: 2 FLOPs per 4 bytes, 0.5 FLOP/byte. The default model reads its 3.2 MB of weights
# for every generated token; a real LLM reads 14 GB (7 billion float16 weights) per token, which is
# why its decode speed is set by memory bandwidth, not by arithmetic. The remedy is **batching**: $B$
# sequences decoded together read the weights once for $B$ tokens, so the cost per token falls almost
# by $B$ until the products become compute-bound - the reason serving systems batch many users'
# requests into every step. Here (same machine, CPU time, 64 tokens per sequence) a batch of 1
# generated 1,240 tokens/s, a batch of 8 5,240 and a batch of 32 8,050: a step of 8 sequences costs
# 1.5 ms, twice a step of one, for 8 times the tokens.
#
# The next cell measures both effects on models with the default widths and a longer window: the
# time of one decode step and of one uncached forward at several context lengths, and tokens per
# second for a batch of 1 and of 8. (Profiling with module 14's tools would attribute the decode
# step's time call by call.)

# %%
if __name__ == "__main__":
    def best_ms(fn, repeats=7):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times) * 1e3

    manual_seed(0)
    long_model = GPT(GPTConfig(block_size=512))  # default widths, a longer window
    lcfg = long_model.config
    print("context | uncached forward | decode step | ratio")
    for T in (63, 127, 255, 511):
        ids = np.random.default_rng(T).integers(0, lcfg.vocab_size, (1, T + 1))
        cache = KVCache(lcfg.n_layer, 1, lcfg.n_head, lcfg.block_size, lcfg.n_embd // lcfg.n_head)
        cached_forward(long_model, ids[:, :T], cache)  # fill T positions

        def decode():
            cached_forward(long_model, ids[:, T:], cache)
            cache.lengths = [T] * lcfg.n_layer  # rewind the one position it added (a benchmark trick)

        with no_grad():
            full_ms = best_ms(lambda: long_model(ids))
        step_ms = best_ms(decode)
        print(f"{T + 1:7d} | {full_ms:13.2f} ms | {step_ms:8.2f} ms | {full_ms / step_ms:5.1f}x")
    for B in (1, 8):
        batch_prompt = np.ones((B, 1), dtype=np.int64)
        generate(long_model, batch_prompt, 2, temperature=0)  # warm-up
        rate, _ = tokens_per_second(lambda: generate(long_model, batch_prompt, 128, temperature=0), 128 * B, 1)
        print(f"batch {B}: cached generation {rate:7.0f} tokens/s (128 tokens per sequence)")


# %% [markdown]
# ## The systems view: the cache is the memory bill of serving
#
# For the small models of this course the cache is a rounding error. For the models people deploy
# it is the main memory cost of serving them, because it grows with the number of *users* as well as
# the context: $2 \cdot n_{layer} \cdot n_{kv} h_s \cdot T$ numbers per sequence, times the batch.
#
# | model | layers | $n_{kv} \cdot h_s$ | context | cache per sequence |
# |---|---|---|---|---|
# | `GPTConfig()` (float32) | 4 | 128 | 64 | 256 KiB |
# | GPT-2 small (float32) | 12 | 768 | 1,024 | 75 MB |
# | Llama 2 7B (float16) | 32 | 4,096 | 4,096 | 2.1 GB |
# | Llama 2 70B, 8 KV heads (float16) | 80 | 1,024 | 4,096 | 1.3 GB |
#
# A 7B model's float16 weights are 14 GB; seven users at a full 4k context need as much again for
# their caches. Four ideas follow from this table, and each is a line of research and engineering:
#
# - **Share keys and values between heads.** Multi-query attention (Shazeer, 2019) keeps one key and
#   one value head for all query heads; grouped-query attention (Ainslie et al., 2023, used by Llama
#   2 70B) keeps a few. The cache shrinks by the ratio of query heads to KV heads - the last row of
#   the table is 8 times smaller per layer than it would be with 64 KV heads.
# - **Store the cache in fewer bits.** An int8 or 4-bit cache (module 15's quantization, applied to
#   keys and values as they are appended) halves or quarters the bill, at a small cost in quality.
# - **Allocate it in pages.** Preallocating `max_len` positions for every sequence - as this module
#   does - wastes the unused tail of every short request. vLLM's PagedAttention (Kwon et al., 2023)
#   allocates the cache in small fixed blocks, like an operating system's virtual memory pages, and
#   reports several times more concurrent sequences on the same GPU.
# - **Reuse what is shared.** Requests that begin with the same system prompt can share the cached
#   prefix: computed once, read by all (prefix caching).
#
# And one consequence for speed: the prefill of a long prompt is compute-bound (matrix products
# over many tokens, like training), the decode is memory-bound (every weight and the whole cache
# read per token). Serving systems schedule the two differently, and measure them separately:
# "time to first token" for the prefill, "time per output token" for the decode.

# %% [markdown]
# ## Wrap-up
#
# You memoized generation. `KVCache` allocates its keys and values once and appends in place: an
# append costs what it adds, a read is a view, and a `reset` is a change of lengths (so both arrays
# must be written on every append, or stale values come back). `offset_causal_mask` aligns the
# causal triangle to the bottom-right corner, because new queries sit after the cached keys.
# `cached_attention` and `cached_forward` are the model's own layers called on the new tokens only,
# with positions offset by the cache's length; they agree with the uncached model to float32
# rounding. `generate` prefills, then decodes one token per step, and - because learned absolute
# positions shift when the window slides - re-prefills once the context outgrows `block_size`,
# which keeps its tokens identical to module 13's.
#
# The systems lessons to keep:
#
# - **FLOPs**: a decode step costs $\approx 2N + 4LC \cdot n_{layer}$ instead of $T$ times that; over a
#   generation, linear instead of quadratic in its length.
# - **Time** is not FLOPs at this size: a decode step is dozens of small calls, each costing
#   microseconds of overhead and a read of its weights; the measured speed-up is the ratio of a
#   full forward to a decode step at the context you generate at, and grows with the context.
# - **Exactness has a price past the window**: with learned positions, nothing cached survives a
#   sliding window; a longer `block_size` (or relative positions) is what keeps the speed-up.
# - **Memory**: $2 \cdot n_{layer} \cdot C \cdot T$ numbers per sequence; at scale the cache, not the weights,
#   limits how many sequences a machine can serve (hence MQA/GQA, quantised and paged caches).
#
# Run all of the module's checks below (the same as `tito module test 17`); then
# `tito module complete 17` exports your file into your `tinytorch` package. Milestone 06 times
# your `generate` with and without the cache on the char-GPT of milestone 05.

# %% nbgrader={"grade": true, "grade_id": "check-memoization", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("17")
