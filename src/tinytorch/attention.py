# %% [markdown]
# # Module 12 - Attention
#
# After module 11 every token is a vector, but each vector knows only its own token and position.
# To predict what comes after "to be or not to", the model has to *combine* tokens: the vector at
# the last position must pull in what it needs from the ones before it. **Attention** does that
# with one differentiable operation: every position asks a question (a query), every position
# offers an answer key and a value, and each position receives the average of the values,
# weighted by how well its query matches each key.
#
# You write scaled dot-product attention as ONE fused op - a numerically stable masked softmax in
# the forward pass and a hand-derived backward rule - and multi-head attention, with all heads in
# one batched matrix multiply. Module 13 stacks it into a GPT; milestone 05 trains that GPT.
#
# ## What you build
#
# | step | you write | checked by |
# |---|---|---|
# | 1 | `causal_mask(tq, tk)`: which keys each query may see | `check("12", "causal_mask")` |
# | 2 | `scaled_dot_product_attention`: scores, mask, stable softmax, weighted sum | `check("12", "scaled_dot_product_attention")` |
# | 3 | `sdpa_backward`: its gradient, derived by hand | `check("12", "sdpa_backward")` |
# | 4 | `MultiHeadAttention.forward`: heads by reshape and transpose, one batched call | `check("12", "MultiHeadAttention")` |
#
# Each step has a markdown cell that teaches it, a cell to fill in (your copy says
# `# YOUR CODE HERE` and `raise NotImplementedError()` where the answer goes), a "try it" cell,
# and a check cell that runs the same checks as `tito module test 12 --task <name>`. The checks
# compare your attention with a slow loop over every query row written in the check, your
# backward with central differences in float64, your multi-head layer with one loop per head, and
# all of it with PyTorch's `scaled_dot_product_attention` and `nn.MultiheadAttention` when torch
# is installed. They catch the classic bugs: a missing $1/\sqrt{d}$, a causal mask that lets a
# position see the next token, a softmax over the wrong axis, masked keys with non-zero weight,
# and heads split by a reshape without its transpose.

# %%
"""Module 12: causal_mask, scaled_dot_product_attention (op "sdpa"), MultiHeadAttention.

Scaled dot-product attention, for q (..., Tq, d), k (..., Tk, d), v (..., Tk, dv):

    S = q k^T / sqrt(d)                        (..., Tq, Tk)   scores
    S[~allowed] = -inf                         mask (True = may attend, PyTorch's boolean convention)
    P = softmax(S) over the keys (last axis)   (..., Tq, Tk)   each row sums to 1; masked entries 0
    O = P v                                    (..., Tq, dv)

A query row with no allowed key gets weights 0 and output 0 (not NaN). is_causal: query i
attends keys j <= i (top-left aligned when Tq != Tk, as PyTorch).

Backward (one fused rule, G = dL/dO):

    dV = P^T G                 dP = G V^T
    dS = P * (dP - rowsum(dP * P))       and rowsum(dP * P) = rowsum(G * O)
    dQ = dS K / sqrt(d)        dK = dS^T Q / sqrt(d)

MultiHeadAttention(D, nh): one Linear D -> 3D (q | k | v, each split into nh heads of D / nh
contiguous columns), heads by reshape (B, T, 3, nh, hs) + transpose -> (3, B, nh, T, hs), one
batched sdpa, merge back to (B, T, D), output Linear `proj`.
"""

from __future__ import annotations

import math

import numpy as np

from tinytorch.autograd import register_backward
from tinytorch.layers import Linear, Module
from tinytorch.tensor import Tensor

# %% [markdown]
# ## Queries, keys and values: a soft dictionary lookup
#
# A Python dictionary maps a query to exactly one value: the one whose key *equals* the query.
# Attention is the differentiable version. There are $T$ entries; entry $j$ has a key vector $k_j$
# and a value vector $v_j$. A query $q$ is compared with every key by a dot product, the scores are
# turned into weights by a softmax, and the answer is the weighted average of the values:
#
# $$\text{out} = \sum_j p_j\, v_j, \qquad p = \text{softmax}\Big(\frac{q \cdot k_1}{\sqrt d}, \ldots,
# \frac{q \cdot k_T}{\sqrt d}\Big).$$
#
# A key that matches the query well gets most of the weight; every key gets some, so the gradient
# reaches all of them. In a transformer, every position $t$ produces its own query, key and value
# from its vector $x_t$ with three learnt linear maps: $q_t = x_t W_Q$ ("what am I looking for?"),
# $k_t = x_t W_K$ ("what do I contain?"), $v_t = x_t W_V$ ("what do I hand over if chosen?"). All
# $T$ queries are answered at once by two matrix multiplies:
#
# $$O = \text{softmax}\Big(\frac{Q K^\top}{\sqrt d}\Big)\, V, \qquad Q, K \in \mathbb{R}^{T \times d},\;
# V \in \mathbb{R}^{T \times d_v}.$$
#
# **Worked example.** Keys $k_1 = (1, 0)$, $k_2 = (0, 1)$, $k_3 = (1, 1)$, values $v_1 = (1, 0)$,
# $v_2 = (0, 2)$, $v_3 = (3, 3)$, query $q = (2, 0)$, $d = 2$. The scores $q \cdot k_j$ are $(2, 0, 2)$;
# scaled by $1/\sqrt 2$: $(1.414, 0, 1.414)$; softmax: $e^{1.414} = 4.113$, $e^{0} = 1$, so
# $p = (4.113, 1, 4.113) / 9.226 = (0.4458, 0.1084, 0.4458)$. The output is
# $0.4458\,(1, 0) + 0.1084\,(0, 2) + 0.4458\,(3, 3) = (1.7832, 1.5542)$: mostly keys 1 and 3, the two
# that point along the query.
#
# ## Why $1/\sqrt{d}$: the variance of a dot product
#
# Suppose the components of $q$ and $k$ are independent with mean 0 and variance 1 (roughly what a
# well-initialised network produces). Each product $q_c k_c$ then has mean 0 and variance
# $E[q_c^2]\,E[k_c^2] = 1$, and the dot product is a sum of $d$ of them:
#
# $$\text{Var}(q \cdot k) = \sum_{c=1}^{d} \text{Var}(q_c k_c) = d, \qquad \text{std}(q \cdot k) = \sqrt d.$$
#
# With $d = 64$ (a typical head size) raw scores have a standard deviation of 8. Measured on
# 100,000 random pairs: 7.999, and 1.000 after dividing by $\sqrt{64}$. Why that matters: scores
# $(8, 0, -8)$ give softmax weights $(0.99966, 0.00034, 0.0000001)$ - practically one-hot - and
# softmax's gradient, $\partial p_i / \partial s_i = p_i (1 - p_i)$, is then $0.00034$ for the winner
# and about $10^{-7}$ for the last key: learning stalls. Scaled to $(1, 0, -1)$ the weights are
# $(0.665, 0.245, 0.090)$ and the same derivatives are $(0.22, 0.18, 0.08)$, hundreds of times larger.
# Dividing by $\sqrt d$ keeps the scores at unit variance for every head size, so the softmax starts
# soft and the model can learn how sharp to make it. (Note: $d$ is the size of the queries and
# keys, not of the values.)
#
# Cheaper to scale $q$ than the scores: $(q / \sqrt d)\, k^\top$ multiplies $T_q d$ numbers, where
# $(q k^\top) / \sqrt d$ multiplies $T_q T_k$.
#
# ## Softmax, stable and masked
#
# Module 02's rule applies along the **key axis**, the last one: subtract each row's maximum before
# `exp`, so every exponent is $\le 0$ and nothing overflows; the row sum is then at least 1. Taken
# over the wrong axis (the queries, axis $-2$) the columns would sum to 1 instead of the rows, and
# each position's output would no longer be an average of values.
#
# A **mask** removes keys from a row: set their scores to $-\infty$ *before* the softmax. Then
# $e^{-\infty - m} = 0$ exactly, and the other keys share the whole weight, as if the masked ones did
# not exist. (Zeroing weights *after* the softmax leaves rows that no longer sum to 1; a "large
# negative" like $-10^4$ instead of $-\infty$ works in float32 only by luck of underflow.) One row
# needs care: if *every* key is masked, the row maximum is $-\infty$ and $-\infty - (-\infty)$ is
# NaN. Such a row has nothing to attend to; here its weights are 0 and its output is 0: replace a
# non-finite row maximum by 0 before subtracting, and divide by 1 where a row sums to 0.

# %% [markdown]
# ## Masks: causal and padding
#
# **Causal.** A language model is trained to predict token $t + 1$ from tokens $0 \ldots t$, at
# every position of a sequence at once. If position $t$ could attend to position $t + 1$, it could
# simply copy the answer: the training loss falls to almost zero and the model learns nothing it
# can use at generation time, when the future does not exist yet. So query $i$ may attend to keys
# $j \le i$ only - itself and the past. For $T = 4$ (rows: queries, columns: keys, 1 = allowed):
#
#     [[1, 0, 0, 0],
#      [1, 1, 0, 0],
#      [1, 1, 1, 0],
#      [1, 1, 1, 1]]
#
# a lower triangle, `np.tril`. The two off-by-one errors are both real bugs: $j < i$ hides each
# token from *itself* (and leaves row 0 with nothing to attend to), and $j \le i + 1$ shows each
# position the very token it must predict - a model that looks brilliant in training and produces
# garbage when it generates. When there are fewer queries than keys ($T_q \ne T_k$), PyTorch's
# `is_causal` aligns the triangle top-left: query $i$ still sees keys $0 \ldots i$. We do the same.
#
# **Padding.** Sequences in a batch have different lengths; the short ones are padded to the
# longest, and no query may attend to a pad key. A *key-padding* mask of shape $(B, 1, 1, T_k)$ -
# True for real tokens - broadcasts over heads and queries. Masks combine with `&`: causal and
# padding together allow only real keys in the past.
#
# **Conventions, carefully.** Here, as in PyTorch's `scaled_dot_product_attention`, a boolean mask
# is True where attention is **allowed**. PyTorch's `nn.MultiheadAttention` uses the opposite
# (`key_padding_mask` and boolean `attn_mask` are True where attention is *blocked*) - in the same
# library. When you port code, check which one you have: an inverted mask gives no error, only
# wrong answers.
#
# ## Step 1: `causal_mask`
#
# Write `causal_mask(tq, tk)`: a boolean array of shape `(tq, tk)`, True where key $j \le$ query $i$.
# One line - `np.tril` of a boolean array of ones, or a comparison of two `np.arange`s that
# broadcasts to `(tq, tk)`. It costs $T_q T_k$ bytes; the sdpa below combines it with any mask you pass.

# %% nbgrader={"grade": false, "grade_id": "causal-mask", "locked": false, "schema_version": 3, "solution": true, "task": false}
def causal_mask(tq: int, tk: int) -> np.ndarray:
    """(tq, tk) bool: True where query i may attend key j, i.e. j <= i (itself and the past)."""
    # HINT: np.arange(tk)[None, :] <= np.arange(tq)[:, None] broadcasts to (tq, tk)
    ### BEGIN SOLUTION
    return np.arange(tk)[None, :] <= np.arange(tq)[:, None]  # (tq, tk)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    print(causal_mask(4, 4).astype(int))
    print("3 queries, 5 keys (top-left aligned):\n", causal_mask(3, 5).astype(int))

# %% nbgrader={"grade": true, "grade_id": "check-causal-mask", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("12", "causal_mask")

# %% [markdown]
# ## Given: the shapes and the mask, checked once
#
# Two helpers run before your code in step 2. `_check_shapes` refuses inputs that cannot be
# attention - queries and keys of different sizes $d$, a different number of keys and values,
# batch axes that do not broadcast - with a message that names the function, instead of a
# broadcasting error deep inside `np.matmul`. `_allowed` turns the two ways of masking into one
# boolean array: `mask` (a boolean Tensor or ndarray, True = may attend, broadcastable to
# $(\ldots, T_q, T_k)$; a float "additive" mask is refused, since it would silently mean something
# else) and `is_causal` (your `causal_mask`), combined with `&`. It returns `None` when every key
# is allowed, so the unmasked case costs nothing.

# %%
def _check_shapes(q: Tensor, k: Tensor, v: Tensor) -> None:
    name = "scaled_dot_product_attention"
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ValueError(f"{name}: q, k, v need at least 2 axes (..., T, d), got {q.shape}, {k.shape}, {v.shape}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"{name}: queries and keys must have the same size d, got q {q.shape} and k {k.shape}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"{name}: one value per key: k {k.shape} and v {v.shape} differ in Tk")
    try:
        np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except ValueError:
        raise ValueError(f"{name}: batch axes do not broadcast: {q.shape}, {k.shape}, {v.shape}") from None


def _allowed(mask, is_causal: bool, tq: int, tk: int):
    """The mask and the causal triangle as one boolean array (True = may attend), or None."""
    allowed = None
    if mask is not None:
        allowed = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
        if allowed.dtype != np.bool_:
            raise TypeError(f"scaled_dot_product_attention: mask must be boolean (True = may attend), got "
                            f"{allowed.dtype}")
        try:
            np.broadcast_shapes(allowed.shape, (tq, tk))
        except ValueError:
            raise ValueError(f"scaled_dot_product_attention: mask of shape {allowed.shape} does not broadcast "
                             f"to the scores (..., {tq}, {tk})") from None
    if is_causal:
        causal = causal_mask(tq, tk)  # (tq, tk)
        allowed = causal if allowed is None else allowed & causal
    return allowed


# %% [markdown]
# ## Step 2: `scaled_dot_product_attention`, one fused op
#
# `scaled_dot_product_attention(q, k, v, mask=None, is_causal=False)` takes Tensors with any number
# of leading batch axes (they broadcast, as in `np.matmul`): `q` $(\ldots, T_q, d)$, `k`
# $(\ldots, T_k, d)$, `v` $(\ldots, T_k, d_v)$, and returns $(\ldots, T_q, d_v)$. The given lines check
# the shapes and turn `mask` and `is_causal` into one boolean array `allowed` (or `None`: every key
# allowed) that broadcasts to the scores' shape $(\ldots, T_q, T_k)$. You write, on the NumPy arrays:
#
# 1. `scale = 1 / math.sqrt(d)` with `d = q.shape[-1]` - `math.sqrt`, a Python float, keeps float32
#    float32 (`np.sqrt(d)` is a NumPy float64, and would promote every array it touches);
# 2. the scores, $(q \cdot \text{scale})\, k^\top$: `np.swapaxes(k, -1, -2)` transposes the last two axes
#    of any number of batch axes (`.T` would reverse all of them);
# 3. the mask: `np.where(allowed, scores, -np.inf)` when `allowed` is not None;
# 4. the stable softmax over the last axis, with the fully-masked-row guard above - in place
#    (`scores -= top`, then `np.exp(scores, out=scores)`): the weights reuse the scores' memory,
#    one $(\ldots, T_q, T_k)$ array fewer to allocate and fill;
# 5. the output, `weights @ v`.
#
# The given `Tensor._make(out, (q, k, v), "sdpa", (weights, scale))` records ONE node with three
# parents and saves the weights for the backward pass.
#
# **Why fused.** Built from module 01's ops, attention would be about ten graph nodes (a transpose,
# a matmul, a multiply, a `where`, a max, a subtract, an exp, a sum, a divide, a matmul), each
# keeping its own $(\ldots, T_q, T_k)$ intermediate alive for the backward pass and each with its own
# Python overhead. As one op it keeps only the weights $P$, and the backward (step 3) is four matrix
# multiplies and a few elementwise passes.
#
# With `return_weights=True` the function also returns the weights array $P$ - the
# `MultiHeadAttention` below keeps it for plots.

# %% nbgrader={"grade": false, "grade_id": "scaled-dot-product-attention", "locked": false, "schema_version": 3, "solution": true, "task": false}
def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, mask=None, is_causal: bool = False,
                                 *, return_weights: bool = False):
    """softmax(q k^T / sqrt(d), masked) v: q (..., Tq, d), k (..., Tk, d), v (..., Tk, dv) -> (..., Tq, dv).

    mask: boolean, broadcastable to (..., Tq, Tk), True = may attend; is_causal: key j <= query i.
    Masked weights are exactly 0; a row with no allowed key gives weights 0 and output 0.
    With return_weights=True, returns (output, weights) with weights a (..., Tq, Tk) ndarray.
    """
    _check_shapes(q, k, v)
    allowed = _allowed(mask, is_causal, q.shape[-2], k.shape[-2])  # None, or bool (..., Tq, Tk)
    # HINT: scores = (q * scale) @ swapaxes(k, -1, -2); np.where(allowed, scores, -np.inf);
    # HINT: subtract the row max (a row that is all -inf: use 0), exp, divide by the row sum (0 -> 1)
    ### BEGIN SOLUTION
    scale = 1.0 / math.sqrt(q.shape[-1])  # a Python float: float32 stays float32
    scores = (q.data * scale) @ np.swapaxes(k.data, -1, -2)  # (..., Tq, Tk)
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)  # masked keys: exp(-inf) = 0 exactly
    top = scores.max(axis=-1, keepdims=True)  # (..., Tq, 1)
    top[~np.isfinite(top)] = 0.0  # a row with no allowed key is all -inf: avoid -inf - -inf = nan
    scores -= top  # in place: every entry <= 0
    weights = np.exp(scores, out=scores)  # (..., Tq, Tk), the same memory: entries in [0, 1]
    total = weights.sum(axis=-1, keepdims=True)  # (..., Tq, 1), >= 1 unless the row is empty
    weights /= np.where(total > 0, total, 1.0)  # an empty row stays 0
    out = weights @ v.data  # (..., Tq, dv)
    ### END SOLUTION
    result = Tensor._make(out, (q, k, v), "sdpa", (weights, scale))
    return (result, weights) if return_weights else result


# %%
if __name__ == "__main__":
    K = Tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    V = Tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    out, w = scaled_dot_product_attention(Tensor([[2.0, 0.0]]), K, V, return_weights=True)
    print("worked example: weights", w.round(4), "output", out.data.round(4))
    x = Tensor(np.random.default_rng(0).standard_normal((4, 2)).astype(np.float32))
    out, w = scaled_dot_product_attention(x, x, x, is_causal=True, return_weights=True)
    print("causal weights (rows sum to 1, zeros above the diagonal):\n", w.round(3))
    pad = np.array([True, True, False, False])  # keys 2 and 3 are padding
    out, w = scaled_dot_product_attention(x, x, x, mask=pad, return_weights=True)
    print("padding mask, weights:\n", w.round(3))
    none = np.zeros((4, 4), bool)
    print("no key allowed -> output", scaled_dot_product_attention(x, x, x, mask=none).data[0], "(not nan)")

# %% nbgrader={"grade": true, "grade_id": "check-scaled-dot-product-attention", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("12", "scaled_dot_product_attention")

# %% [markdown]
# ## Step 3: the backward pass, derived once
#
# Write $S$ for the scaled, masked scores, $P = \text{softmax}(S)$ row by row, $O = PV$, and
# $G = \partial L / \partial O$ (shape $(\ldots, T_q, d_v)$). Going backwards through the three steps:
#
# **Through $O = PV$**, a matmul (module 06): $\;\bar V = P^\top G\;$ $(\ldots, T_k, d_v)$ and
# $\;\bar P = G V^\top\;$ $(\ldots, T_q, T_k)$.
#
# **Through the softmax**, row by row: module 06's rule $\bar S = P \odot (\bar P - \text{rowsum}(\bar P
# \odot P))$. The row sum has a cheaper form: $\sum_j P_{ij} \bar P_{ij} = \sum_j P_{ij} \sum_c G_{ic}
# V_{jc} = \sum_c G_{ic} O_{ic}$, so
#
# $$\bar S = P \odot \big(\bar P - D\big), \qquad D_i = \sum_c G_{ic}\, O_{ic},$$
#
# a sum over $d_v$ numbers per row instead of $T_k$ (FlashAttention's backward uses exactly this).
# Masked entries need no special case: $P$ is 0 there, so $\bar S$ is 0 there - a masked key gets
# no gradient through that query, and an empty row none at all.
#
# **Through $S = (q \cdot \text{scale})\, K^\top$**, another matmul: $\bar Q = \text{scale}\;\bar S K$ and
# $\bar K = \text{scale}\;\bar S^\top Q$.
#
# **Worked check, one query and two keys:** $P = (0.75, 0.25)$, values $v_1 = (1)$, $v_2 = (5)$, so $O =
# 2$, and $G = (1)$. Then $\bar P = G V^\top = (1, 5)$, $D = G \cdot O = 2$, and $\bar S = (0.75 \cdot (1 - 2),\;
# 0.25 \cdot (5 - 2)) = (-0.75, 0.75)$: raising key 2's score (the one with the larger value) raises the
# output, and $\bar S$ sums to zero, as every softmax gradient row does.
#
# Batch axes: `np.swapaxes(a, -1, -2)` for every transpose and `@` for every product, so one rule
# serves 2-D, 3-D and 4-D inputs. When `k` or `v` had fewer (broadcast) batch axes, the engine sums
# your gradient back to their shape. Skip what is not needed (`q.requires_grad` false: no $\bar Q$).
# Memory: the rule reads the saved $P$ and makes two $(\ldots, T_q, T_k)$ temporaries ($\bar P$, reused
# for $\bar S$); it must not write into `g`, the saved weights or the output.

# %% nbgrader={"grade": false, "grade_id": "sdpa-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
@register_backward("sdpa")
def sdpa_backward(g, out):
    """dV = P^T G;  dS = P * (G V^T - rowsum(G * O));  dQ = scale dS K;  dK = scale dS^T Q."""
    q, k, v = out._parents
    weights, scale = out._saved
    # HINT: t(a) = np.swapaxes(a, -1, -2); dv = t(P) @ g; dP = g @ t(V);
    # HINT: ds = P * (dP - (g * out.data).sum(-1, keepdims=True)); dq = scale * ds @ K, dk = scale * t(ds) @ Q;
    # HINT: None for an input that needs no gradient
    ### BEGIN SOLUTION
    dv = np.swapaxes(weights, -1, -2) @ g if v.requires_grad else None  # (..., Tk, dv)
    dq = dk = None
    if q.requires_grad or k.requires_grad:
        ds = g @ np.swapaxes(v.data, -1, -2)  # (..., Tq, Tk)  dP
        ds -= (g * out.data).sum(axis=-1, keepdims=True)  # dP - rowsum(dP * P), as rowsum(G * O)
        ds *= weights  # dS: 0 where masked
        ds *= scale  # S = (q scale) k^T: the scale once, for both dQ and dK
        dq = ds @ k.data if q.requires_grad else None  # (..., Tq, d)
        dk = np.swapaxes(ds, -1, -2) @ q.data if k.requires_grad else None  # (..., Tk, d)
    return dq, dk, dv
    ### END SOLUTION


# %%
if __name__ == "__main__":
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s) for s in ((2, 3, 4), (2, 5, 4), (2, 5, 2))]  # float64 q, k, v
    qt, kt, vt = (Tensor(a, dtype=np.float64, requires_grad=True) for a in arrays)
    out = scaled_dot_product_attention(qt, kt, vt, is_causal=True)
    G = rng.standard_normal(out.shape)
    dq, dk, dv = sdpa_backward(G, out)

    def loss(qa):
        o = scaled_dot_product_attention(Tensor(qa, dtype=np.float64), kt.detach(), vt.detach(), is_causal=True)
        return float((o.data * G).sum())

    eps, i = 1e-6, (1, 2, 3)
    bump = np.zeros_like(arrays[0])
    bump[i] = eps
    numeric = (loss(arrays[0] + bump) - loss(arrays[0] - bump)) / (2 * eps)
    print(f"dL/dq{list(i)}: rule {dq[i]:.8f}, central difference {numeric:.8f}")

# %% nbgrader={"grade": true, "grade_id": "check-sdpa-backward", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("12", "sdpa_backward")

# %% [markdown]
# ## The $T^2$ in attention: what breaks at long context
#
# The scores and the weights have one entry per (query, key) pair: $T^2$ per head. For a batch of
# $B$ sequences with $n_h$ heads of size $h_s$ ($D = n_h h_s$):
#
# - **FLOPs:** $QK^\top$ and $PV$ each cost $2 B n_h T^2 h_s = 2 B T^2 D$, so $4 B T^2 D$ forward (and
#   about twice that backward). The layer's linear maps cost $8 B T D^2$ (the qkv and output
#   projections) and the MLP of module 13 another $16 B T D^2$. Attention's share grows like
#   $T / (6D)$: 8% for our char-level GPT ($T = 64$, $D = 128$), 22% for GPT-2 ($T = 1024$,
#   $D = 768$), more than all the rest together beyond $T = 6D$.
# - **Memory:** the weights $P$ that the backward pass needs are $4 B n_h T^2$ bytes per layer.
#   Ours: $4 \cdot 32 \cdot 4 \cdot 64^2 = 2.1$ MB per layer. GPT-2 ($B = 8$, $n_h = 12$, $T = 1024$): 403 MB per
#   layer, 4.8 GB for its 12 layers - more than its weights, gradients and Adam state together.
#   A 128k-token context with 32 heads: 2.2 TB per layer, for a batch of one.
#
# That is why long-context models never materialise $P$. **FlashAttention** (Dao et al., 2022)
# processes keys in tiles that fit in fast on-chip memory and keeps, per query row, only a running
# maximum and a running sum (an "online softmax": when a new tile raises the maximum, the sum so far
# is rescaled by $e^{m_{old} - m_{new}}$); the backward pass recomputes $P$ tile by tile from $Q$, $K$ and
# the saved row log-sum-exp. Memory becomes $O(T)$, the FLOPs stay $O(T^2)$ - and the rowsum$(G \odot
# O)$ identity of step 3 is what lets its backward avoid the $T^2$ row sums. Beyond that, the FLOPs
# themselves are the wall: sparse, sliding-window and linear attention trade exactness for less
# than $T^2$ work.
#
# ## Multi-head attention: many small attentions in one batched matmul
#
# One attention has one pattern of weights per query: it can look at one kind of thing - the
# previous character, or the start of the word - but not several at once. **Multi-head attention**
# splits the $D$ features into $n_h$ heads of $h_s = D / n_h$ features, runs an independent attention
# in each, and concatenates the results. The cost is the same as one head of size $D$ (the FLOPs above
# do not depend on $n_h$), but there are $n_h$ weight patterns instead of one.
#
# `MultiHeadAttention(embed_dim, num_heads, bias=True)` (its `__init__` is given) has two `Linear`
# layers: `qkv` maps $D \to 3D$ - the columns are $[\,q \mid k \mid v\,]$, and within each, head $h$ owns
# features $h\,h_s \ldots (h + 1)\, h_s - 1$ (the layout of nanoGPT and of PyTorch's `in_proj_weight`) -
# and `proj` maps the concatenated heads $D \to D$.
#
# **Heads without a loop.** A loop over heads would call attention $n_h$ times on small matrices.
# Instead, give the heads their own batch axis, so that one batched sdpa call handles all of them:
#
#     qkv  (B, T, 3D)
#       .reshape(B, T, 3, nh, hs)            split the features: which of q/k/v, which head, which feature
#       .permute(2, 0, 3, 1, 4)              -> (3, B, nh, T, hs): heads become a batch axis
#     q, k, v = qkv[0], qkv[1], qkv[2]       each (B, nh, T, hs)
#     y = sdpa(q, k, v, ...)                 (B, nh, T, hs), ONE call for every head
#     y.permute(0, 2, 1, 3).reshape(B, T, D) merge: (B, T, nh, hs) -> (B, T, D)
#     proj(y)
#
# **Why the transpose is not optional.** Take $B = 1$, $T = 2$ tokens $a, b$, $D = 4$, $n_h = 2$: $q$ is
# `[[a0, a1, a2, a3], [b0, b1, b2, b3]]`. Head 0 must see features 0-1 of both tokens:
# `[[a0, a1], [b0, b1]]`. `q.reshape(1, 2, 2, 2).permute(0, 2, 1, 3)` gives exactly that. A plain
# `q.reshape(1, 2, 2, 2)` - shape $(B, n_h, T, h_s)$ too! - makes "head 0" `[[a0, a1], [a2, a3]]`: two
# halves of token $a$ posing as two tokens, and token $b$ missing. The shapes are all right, nothing
# crashes, and the model is wrong. The same holds for the merge: without the `permute` before the
# final reshape, the heads of different tokens are interleaved.
#
# `forward(x, mask=None, is_causal=False)` takes $x$ $(B, T, D)$ and returns $(B, T, D)$; `mask` is passed
# to the sdpa and must broadcast to $(B, n_h, T, T)$ - for example $(T, T)$, or $(B, 1, 1, T)$ for
# padding. Store the weights of the call (`return_weights=True`, an ndarray $(B, n_h, T, T)$) in
# `self.last_attention`, for plots. Graph cost: the `permute`s and `reshape`s are views (module 01);
# the merge's reshape of a transposed array is the only copy, $B T D$ numbers. The backward pass
# pays for the split: each of the three picks `qkv[i]` returns a zero array of the full
# $(3, B, n_h, T, h_s)$ shape with its slice filled in, and the engine adds the three - measured at
# the char-level GPT's size, about 2.5 ms against 0.7 ms for stacking $\bar q, \bar k, \bar v$ by hand,
# a few percent of the layer's time; a fused split would save it, at the price of one more op.

# %% nbgrader={"grade": false, "grade_id": "multi-head-attention", "locked": false, "schema_version": 3, "solution": true, "task": false}
class MultiHeadAttention(Module):
    """Self-attention with `num_heads` heads: x (B, T, D) -> (B, T, D).

    qkv: Linear(D, 3D), columns [q | k | v], head h of each = features h*hs .. (h+1)*hs - 1.
    proj: Linear(D, D). last_attention: the weights of the last call, ndarray (B, nh, T, T).
    """

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True):
        super().__init__()
        if num_heads < 1 or embed_dim % num_heads:
            raise ValueError(f"MultiHeadAttention: embed_dim {embed_dim} is not a multiple of "
                             f"num_heads {num_heads}")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.qkv = Linear(embed_dim, 3 * embed_dim, bias=bias)  # x -> [q | k | v]
        self.proj = Linear(embed_dim, embed_dim, bias=bias)  # concatenated heads -> output
        self.last_attention: np.ndarray | None = None

    def forward(self, x: Tensor, mask=None, is_causal: bool = False) -> Tensor:
        if x.ndim != 3 or x.shape[-1] != self.embed_dim:
            raise ValueError(f"MultiHeadAttention.forward: expected x of shape (B, T, {self.embed_dim}), "
                             f"got {x.shape}")
        B, T, D = x.shape
        nh, hs = self.num_heads, self.head_dim
        # HINT: qkv (B, T, 3D) -> reshape (B, T, 3, nh, hs) -> permute (3, B, nh, T, hs); q, k, v = [0], [1], [2];
        # HINT: one scaled_dot_product_attention(..., return_weights=True); merge with permute(0, 2, 1, 3) + reshape
        ### BEGIN SOLUTION
        qkv = self.qkv(x)  # (B, T, 3D)
        qkv = qkv.reshape(B, T, 3, nh, hs).permute(2, 0, 3, 1, 4)  # (3, B, nh, T, hs)
        q, k, v = qkv[0], qkv[1], qkv[2]  # each (B, nh, T, hs)
        y, self.last_attention = scaled_dot_product_attention(q, k, v, mask, is_causal, return_weights=True)
        y = y.permute(0, 2, 1, 3).reshape(B, T, D)  # (B, nh, T, hs) -> (B, T, nh, hs) -> (B, T, D)
        return self.proj(y)  # (B, T, D)
        ### END SOLUTION

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"


# %%
if __name__ == "__main__":
    import tinytorch.tensor as tt

    tt.manual_seed(0)
    mha = MultiHeadAttention(8, 2)
    x = Tensor(np.random.default_rng(0).standard_normal((1, 4, 8)).astype(np.float32))
    y = mha(x, is_causal=True)
    print(mha, "->", y.shape, "| last_attention", mha.last_attention.shape)
    print("head 0 weights:\n", mha.last_attention[0, 0].round(3))
    print("head 1 weights:\n", mha.last_attention[0, 1].round(3))
    a = np.arange(8).reshape(1, 2, 4)  # tokens a = 0..3, b = 4..7; D = 4, nh = 2
    print("heads by reshape + transpose:", a.reshape(1, 2, 2, 2).transpose(0, 2, 1, 3)[0, 0].tolist(),
          "| by reshape alone:", a.reshape(1, 2, 2, 2)[0, 0].tolist())

# %% nbgrader={"grade": true, "grade_id": "check-multi-head-attention", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("12", "MultiHeadAttention")

# %% [markdown]
# ## Measured: where the time goes, and the $T^2$ growth
#
# The cell below times one forward and backward pass of a `MultiHeadAttention` of the char-level
# GPT's size ($B = 32$, $T = 64$, $D = 128$, 4 heads, causal) and splits off the sdpa op itself. Then
# it doubles $T$ three times at a fixed number of tokens ($B T = 2048$): the linear layers cost the
# same every time, while the sdpa's share grows with $T$ and its weights array doubles in size with
# every doubling of $T$. Timings depend on the machine and its load; the trend is the point.

# %%
if __name__ == "__main__":
    import time

    def best_ms(fn, repeats=5):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times) * 1e3

    rng = np.random.default_rng(0)
    for B, T in ((32, 64), (16, 128), (8, 256), (4, 512)):
        mha = MultiHeadAttention(128, 4)
        x = Tensor(rng.standard_normal((B, T, 128)).astype(np.float32), requires_grad=True)
        g = Tensor(rng.standard_normal((B, T, 128)).astype(np.float32))
        qkv = [Tensor(rng.standard_normal((B, 4, T, 32)).astype(np.float32), requires_grad=True) for _ in range(3)]
        o = scaled_dot_product_attention(*qkv, is_causal=True)
        go = rng.standard_normal(o.shape).astype(np.float32)
        t_layer = best_ms(lambda: mha(x, is_causal=True).backward(g))
        t_sdpa = best_ms(lambda: scaled_dot_product_attention(*qkv, is_causal=True)) + best_ms(lambda: sdpa_backward(go, o))
        print(f"B = {B:2d}, T = {T:3d}: layer forward + backward {t_layer:6.1f} ms, of which sdpa {t_sdpa:5.1f} ms "
              f"({t_sdpa / t_layer:4.0%}); weights {o._saved[0].nbytes / 1e6:5.1f} MB")

# %% [markdown]
# ## Wrap-up
#
# You built attention the way frameworks do:
#
# - **`causal_mask`**: key $j \le$ query $i$ - off by one in either direction is a silent bug (a token
#   that cannot see itself, or one that sees the answer).
# - **`scaled_dot_product_attention`**: scores scaled by $1/\sqrt d$ so they have unit variance for
#   any head size, masked with $-\infty$ so masked keys get exactly zero weight, a softmax over the
#   keys that subtracts the row maximum, empty rows that give 0 instead of NaN - as one fused op.
# - **`sdpa_backward`**: two matmul rules around a softmax rule, with rowsum$(\bar P \odot P)$ =
#   rowsum$(G \odot O)$; no special case for masks.
# - **`MultiHeadAttention`**: heads as a batch axis by reshape *and* transpose, one batched call.
#
# The systems lessons: attention costs $4BT^2D$ FLOPs and $4Bn_hT^2$ bytes of saved weights per layer,
# which is what limits context length; fusing an op saves both graph nodes and saved memory; and
# a layout mistake (a reshape without its transpose, a mask convention flipped) gives no error,
# only a wrong model - which is why the checks compare with per-head loops.
#
# Next, module 13 puts attention, an MLP and LayerNorm into a transformer block and stacks the
# blocks into a GPT. The cell below runs all of this module's checks (the same as
# `tito module test 12`); then `tito module complete 12`.

# %% nbgrader={"grade": true, "grade_id": "check-attention", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("12")
