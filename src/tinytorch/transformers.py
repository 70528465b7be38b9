# %% [markdown]
# # Module 13 - Transformers
#
# Every large language model since 2018 is the same small recipe repeated: embed the tokens, add
# their positions, and pass the result through a stack of identical *blocks* - attention to mix
# information between positions, a small MLP to think about each position on its own, each
# wrapped in a layer norm and a residual connection - then read the next-token scores off the
# end. You already have the hard parts: embeddings (module 11) and attention (module 12). Here you
# add the last two pieces, `LayerNorm` (fused, with a backward pass you derive by hand) and the
# MLP, and assemble them into a `TransformerBlock` and a complete `GPT` that trains and writes.
#
# Complete it and milestone 05 unlocks: a character-level GPT trained on Tiny Shakespeare, by
# your code, that writes (bad, but recognisable) Shakespeare.
#
# ## What you build
#
# | step | you write | checked by |
# |---|---|---|
# | 1 | `layer_norm`: normalise every token's vector, one fused op | `check("13", "layer_norm_forward")` |
# | 2 | `layer_norm_backward`: its gradient, derived by hand | `check("13", "layer_norm_backward")` |
# | 3 | (given) the `LayerNorm` layer around them | `check("13", "LayerNorm")` |
# | 4 | `MLP`: Linear to 4x the width, GELU, Linear back | `check("13", "MLP")` |
# | 5 | `TransformerBlock`: pre-norm attention and MLP on a residual stream | `check("13", "TransformerBlock")` |
# | 6 | `GPT`: embeddings, blocks, final norm, tied LM head, and `generate` | `check("13", "GPT.__init__")`, `"GPT.forward"`, `"GPT.generate"` |
#
# Each step has a markdown cell that teaches it, a cell to fill in (your copy says
# `# YOUR CODE HERE` and `raise NotImplementedError()` where the answer goes), a "try it" cell and
# a check cell that runs the same checks as `tito module test 13 --task <name>`. The checks
# compare `layer_norm` with its formula and with PyTorch, its backward rule with central
# differences, the block and the model with a reference assembled from *your own* parts (so a
# block without residuals, or with the norm in the wrong place, is caught), and they test what a
# language model must get right: no information flows from future tokens to past positions,
# the tied weight collects its gradient from both of its uses, and generation crops the context,
# samples with temperature and top-k, and is greedy when asked. The last check trains a small GPT
# with Adam until it has memorised a sequence: the whole stack, end to end.
#
# This file reads like a small `model.py` (nanoGPT's is the model): LayerNorm, MLP, Block,
# config, GPT, top to bottom, with the shape of every tensor in a comment: B batch, T time
# (positions), C channels (`n_embd`), nh heads, hs head size, V vocabulary.

# %%
"""Module 13: LayerNorm, MLP, TransformerBlock, GPTConfig, GPT.

LayerNorm normalises every vector over its LAST axis (C features), then scales and shifts:

    mu = mean(x),  var = mean((x - mu)^2)             (biased variance, over the last axis)
    xhat = (x - mu) / sqrt(var + eps),   y = weight * xhat + bias

Backward, with g = dL/dy, dxhat = g * weight and rstd = 1 / sqrt(var + eps):

    dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))      (means over the last axis)
    dweight = sum(g * xhat),   dbias = sum(g)                          (sums over all other axes)

A pre-norm transformer block (GPT-2) on the residual stream x (B, T, C):

    x = x + attn(ln1(x), is_causal=True)
    x = x + mlp(ln2(x))                 mlp(h) = proj(gelu(fc(h))), hidden width 4C

GPT: logits = lm_head(ln_f(blocks(tok_emb(idx) + pos_emb(T)))), with lm_head.weight the same
Parameter as tok_emb.weight when the weights are tied; idx (B, T) -> logits (B, T, V).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tinytorch.activations import GELU
from tinytorch.attention import MultiHeadAttention
from tinytorch.autograd import register_backward
from tinytorch.embeddings import Embedding, PositionalEmbedding
from tinytorch.layers import Linear, Module, Parameter, Sequential
from tinytorch.tensor import Tensor, default_generator, no_grad


# %% [markdown]
# ## The shape of a GPT
#
# Follow one batch through the model you are about to build. The input is a $(B, T)$ array of
# integer token ids - for the milestone, characters of Shakespeare, so $V = 65$ different ids.
#
# 1. **Embed.** The token embedding (module 11) turns every id into a learned vector of $C$
#    numbers, $(B, T) \to (B, T, C)$; the position embedding adds a learned vector per position,
#    $(T, C)$, broadcast over the batch. Without it the model could not tell "dog bites man" from
#    "man bites dog": attention by itself treats the tokens it looks at as a *set*.
# 2. **The residual stream.** That $(B, T, C)$ array is the *residual stream*. Every block reads it
#    and **adds** its result back: $x \leftarrow x + f(x)$. Nothing ever overwrites the stream, so each
#    block only has to learn a small correction, and the gradient of the loss flows straight down
#    the additions to the embeddings, whatever the blocks do (the derivative of $x + f(x)$ is
#    $I + f'(x)$: the $I$ is a highway).
# 3. **N blocks.** Each block does two things to the stream: *attention* moves information between
#    positions (position $t$ may read positions $\le t$ - the causal mask of module 12), and the
#    *MLP* processes every position on its own. Each of them reads a layer-normalised copy of the
#    stream.
# 4. **Read out.** A final layer norm, then the *LM head*, a `Linear` from $C$ to $V$: at every
#    position, a score (logit) for every possible next token, $(B, T, V)$.
#
# Training asks position $t$ to predict token $t + 1$, at all $T$ positions of all $B$ sequences at
# once, with the cross-entropy loss of module 04: one forward pass gives $B \cdot T$ training examples.
# That is only sound because position $t$ cannot see token $t + 1$; the checks make sure that no
# logit at a position $\le k$ moves when the tokens after $k$ change.
#
# The sizes for this course's default model (`GPTConfig()` below): $V = 65$, context $T \le 64$,
# $C = 128$, 4 heads, 4 blocks: about 0.8 million parameters, small enough to train on a laptop CPU
# in minutes. GPT-2 small is the same code with $C = 768$, 12 heads, 12 blocks, $T \le 1024$ and
# $V = 50{,}257$: 124 million parameters.

# %% [markdown]
# ## LayerNorm: normalise every token
#
# Activations in a deep network drift: after a few layers one token's vector may have numbers
# around 50, another's around 0.01, and the next layer's weights cannot suit both. **Layer
# normalisation** (Ba, Kiros and Hinton, 2016) rescales *each vector on its own* to mean 0 and
# variance 1 over its $C$ features, then lets the network pick the scale and offset it wants with
# two learned vectors $\gamma$ (`weight`, starting at ones) and $\beta$ (`bias`, zeros):
#
# $$\mu = \frac{1}{C}\sum_{i=1}^{C} x_i, \qquad \sigma^2 = \frac{1}{C}\sum_{i=1}^{C} (x_i - \mu)^2, \qquad
# \hat x_i = \frac{x_i - \mu}{\sqrt{\sigma^2 + \epsilon}}, \qquad y_i = \gamma_i \hat x_i + \beta_i .$$
#
# **Worked example.** $x = [1, 2, 3, 6]$: $\mu = 3$, the deviations are $[-2, -1, 0, 3]$, $\sigma^2 =
# (4 + 1 + 0 + 9)/4 = 3.5$, $\sqrt{3.5} = 1.8708$, so $\hat x = [-1.069, -0.535, 0, 1.604]$ (with
# $\epsilon = 10^{-5}$ the digits shown do not change). Its mean is 0 and its variance 1. With
# $\gamma = 2$ and $\beta = 1$ everywhere, $y = [-1.138, -0.069, 1, 4.207]$.
#
# Three details that are easy to get wrong, and that the checks test:
#
# - **The last axis.** For a $(B, T, C)$ input the statistics are over $C$ only: one mean and one
#   variance *per token*, $B \cdot T$ of each. `x.mean(axis=-1, keepdims=True)` is $(B, T, 1)$ and
#   broadcasts back over $C$. (Normalising over $T$ would mix positions, and leak the future into
#   the past.)
# - **The biased variance**, dividing by $C$ (not $C - 1$), as PyTorch and the original paper do.
# - **$\epsilon$ inside the square root**: $\sqrt{\sigma^2 + \epsilon}$, not $\sqrt{\sigma^2} + \epsilon$.
#   Both avoid dividing by zero for a constant vector ($\sigma^2 = 0$, where the output is exactly
#   $\beta$), but they differ when $\sigma^2$ is small: for $\sigma^2 = 10^{-4}$, $\sqrt{10^{-4} +
#   10^{-5}} = 0.01049$ while $\sqrt{10^{-4}} + 10^{-5} = 0.01001$ - a 5% different output.
#
# **Why not batch norm?** BatchNorm (module 09) averages each feature over the *batch*. For
# sequences that is awkward three times over: the statistics would mix tokens of different
# sequences and positions (and with them, future tokens into past positions), they change with
# the batch size (generation runs one sequence at a time), and training and evaluation need
# different code paths. Layer norm uses nothing but the vector itself: the same computation in
# training, evaluation and generation, at any batch size.
#
# **One fused op.** Written with Tensor operations, layer norm is about ten graph nodes (mean,
# subtract, square, mean, add, sqrt, divide, multiply, add), each keeping its own input-sized
# array for the backward pass. As one op `"layer_norm"` it is one node that keeps exactly what its
# backward rule needs: $\hat x$ (one array of the input's size) and $1/\sqrt{\sigma^2 + \epsilon}$
# (one number per token). The forward is a few passes over memory, about $8 C$ FLOPs per token:
# next to the $24 C^2$ of a block's matrix multiplies it is nothing in arithmetic, but it is
# memory-bound, so fewer passes and temporaries is what makes it fast.
#
# **What to write.** `layer_norm(x, weight, bias, eps)` computes `rstd` ($1/\sqrt{\sigma^2 + \epsilon}$,
# shape $(\ldots, 1)$), `xhat` and the output `data` on the NumPy arrays; the given last line records
# the node with `(xhat, rstd)` saved.

# %% nbgrader={"grade": false, "grade_id": "layer-norm", "locked": false, "schema_version": 3, "solution": true, "task": false}
def layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
    """Normalise x over its last axis, then y = weight * xhat + bias. x (..., C); weight, bias (C,)."""
    # HINT: mu = x.data.mean(axis=-1, keepdims=True); the (biased) variance is the mean of the
    # HINT: squared deviations; rstd = 1 / np.sqrt(var + eps) (eps INSIDE the root), shape (..., 1)
    ### BEGIN SOLUTION
    xc = x.data - x.data.mean(axis=-1, keepdims=True)  # (..., C) centred
    var = np.mean(xc * xc, axis=-1, keepdims=True)  # (..., 1) biased variance
    rstd = 1.0 / np.sqrt(var + eps)  # (..., 1)
    xhat = xc * rstd  # (..., C) mean 0, variance 1
    data = xhat * weight.data  # (..., C)
    data += bias.data
    ### END SOLUTION
    return Tensor._make(data, (x, weight, bias), "layer_norm", (xhat, rstd))


# %%
if __name__ == "__main__":
    x = Tensor([[1.0, 2.0, 3.0, 6.0]])
    y = layer_norm(x, Tensor(np.full(4, 2.0, np.float32)), Tensor(np.ones(4, np.float32)))
    print("worked example, gamma = 2, beta = 1:", y.data.round(3))
    rng = np.random.default_rng(0)
    h = Tensor(rng.standard_normal((2, 3, 8)).astype(np.float32) * 50 + 7)  # (B, T, C), far from unit scale
    out = layer_norm(h, Tensor(np.ones(8, np.float32)), Tensor(np.zeros(8, np.float32)))
    print("per-token mean", out.data.mean(-1).round(4).ravel(), "| variance", out.data.var(-1).round(4).ravel())
    print("a constant vector gives beta exactly:",
          layer_norm(Tensor(np.full((1, 4), 3.0, np.float32)), Tensor(np.ones(4, np.float32)),
                     Tensor(np.full(4, 0.5, np.float32))).data)


# %% nbgrader={"grade": true, "grade_id": "check-layer-norm", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("13", "layer_norm_forward")


# %% [markdown]
# ## LayerNorm backward, derived
#
# Take one vector (one token); all others are independent and get the same formula. The
# gradients of $\gamma$ and $\beta$ are the easy part: $y_i = \gamma_i \hat x_i + \beta_i$ is used at every
# token, so their gradients are sums over all tokens, $\partial L/\partial \beta = \sum g$ and
# $\partial L/\partial \gamma = \sum g \odot \hat x$. For the input, write $\delta_i = g_i \gamma_i$ (the
# gradient with respect to $\hat x_i$) and $r = 1/\sqrt{\sigma^2 + \epsilon}$. Every $\hat x_i$ depends on
# *every* $x_j$ - through $\mu$ and through $\sigma^2$ - and the chain rule has to collect all three paths:
#
# $$\frac{\partial \mu}{\partial x_j} = \frac{1}{C}, \qquad
# \frac{\partial \sigma^2}{\partial x_j} = \frac{2}{C}(x_j - \mu), \qquad
# \frac{\partial r}{\partial x_j} = -\frac{r^3}{C}(x_j - \mu) = -\frac{r^2}{C}\hat x_j ,$$
#
# $$\frac{\partial \hat x_i}{\partial x_j} = r\Big(\mathbb 1[i = j] - \frac{1}{C}\Big) + (x_i - \mu)\frac{\partial r}{\partial x_j}
# = r\Big(\mathbb 1[i = j] - \frac{1}{C} - \frac{\hat x_i \hat x_j}{C}\Big).$$
#
# Summing $\delta_i \,\partial \hat x_i/\partial x_j$ over $i$ gives the rule:
#
# $$\frac{\partial L}{\partial x_j} = r\Big(\delta_j - \underbrace{\frac{1}{C}\sum_i \delta_i}_{\text{mean}(\delta)}
# - \hat x_j \underbrace{\frac{1}{C}\sum_i \delta_i \hat x_i}_{\text{mean}(\delta \odot \hat x)}\Big).$$
#
# **Reading the rule.** The first term, $r\,\delta$, is what you would get if $\mu$ and $\sigma$ were
# constants. The two **mean terms** remove the parts of $\delta$ that the normalisation throws away:
# shifting a whole vector by a constant changes nothing after centring, so the gradient must sum
# to zero over the vector ($\sum_j \partial L/\partial x_j = 0$; the $-\text{mean}(\delta)$ term does that),
# and scaling a vector changes nothing after dividing by its standard deviation, so the gradient
# must be orthogonal to $\hat x$ (the last term). A backward pass without the mean terms looks
# plausible, and it is wrong; the gradient check catches it, and so does the test "does each row
# of the gradient sum to zero?".
#
# **Worked example.** Back to $x = [1, 2, 3, 6]$ with $\gamma = 1$, and $g = [1, 0, 0, 0]$ (the loss is
# $y_1$). Then $\delta = [1, 0, 0, 0]$, $\text{mean}(\delta) = 0.25$, $\text{mean}(\delta\hat x) = -1.069/4 = -0.267$,
# $r = 0.5345$, and $\partial L/\partial x = 0.5345\,([1, 0, 0, 0] - 0.25 + 0.267\,[-1.069, -0.535, 0, 1.604]) =
# [0.248, -0.210, -0.134, 0.095]$. It sums to 0: raising all four inputs together leaves $y_1$ where
# it is.
#
# **Cost, and two tricks.** A handful of passes over $(\ldots, C)$ arrays, like the forward - and it
# reuses the saved $\hat x$ instead of recomputing it. Fold every leading axis into rows first,
# `g.reshape(-1, C)`: $N = B \cdot T$ rows of $C$ numbers. Then two sums become matrix-vector products,
# which BLAS runs far faster than NumPy's reductions:
#
# - the means over a row need no $\delta$ array of their own: $\sum_c \delta_c = \sum_c g_c \gamma_c$ is
#   `g2 @ weight` for all rows at once, and $\sum_c \delta_c \hat x_c$ is `(g2 * xhat2) @ weight`;
# - the parameter gradients are sums over the $N$ rows, `ones(N) @ matrix` (module 09's
#   `_colsum`: `matrix.sum(axis=0)` walks a C-ordered array across its rows, which is slow), and
#   $g \odot \hat x$ is computed once for both `dweight` and the second mean.
#
# Measured on a $(32, 64, 128)$ input, one thread: 7.7 ms with `.mean(axis=-1)` and `.sum(axis=0)`
# written out, 4.5 ms this way (the machine was busy; the ratio is the point). Nine layer norms
# run in each training step of the milestone's model, so it adds up.
#
# **What to write.** `layer_norm_backward(g, out)` returns `(dx, dweight, dbias)`; the parents are
# `(x, weight, bias)` and `out._saved` is `(xhat, rstd)`.

# %% nbgrader={"grade": false, "grade_id": "layer-norm-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
@register_backward("layer_norm")
def layer_norm_backward(g, out):
    """dx = rstd (d - mean(d) - xhat mean(d xhat)) with d = g * weight; dweight = sum(g xhat),
    dbias = sum(g), summed over every axis but the last."""
    x, weight, bias = out._parents
    xhat, rstd = out._saved
    c = x.shape[-1]
    # HINT: fold the tokens into rows: g2 = g.reshape(-1, c), xhat2 likewise; d = g2 * weight.data;
    # HINT: mean(d) = (g2 @ weight.data) / c per row; mean(d xhat) = ((g2 * xhat2) @ weight.data) / c;
    # HINT: sums over the rows (tokens) as ones @ matrix; return dx in x's shape
    ### BEGIN SOLUTION
    g2, xhat2 = g.reshape(-1, c), xhat.reshape(-1, c)  # (N, C), N = all tokens
    gx = g2 * xhat2  # (N, C) g * xhat, used twice
    ones = np.ones(len(g2), dtype=g.dtype)  # (N,)
    dweight = ones @ gx  # (C,) sum over tokens of g * xhat
    dbias = ones @ g2  # (C,) sum over tokens of g
    dx = g2 * weight.data  # (N, C) d = dL/dxhat
    dx -= (g2 @ weight.data)[:, None] / c  # - mean(d): sum_c g w / C per token
    dx -= xhat2 * ((gx @ weight.data)[:, None] / c)  # - xhat mean(d xhat)
    dx *= rstd.reshape(-1, 1)
    return dx.reshape(x.shape), dweight, dbias
    ### END SOLUTION


# %%
if __name__ == "__main__":
    x = Tensor([[1.0, 2.0, 3.0, 6.0]], requires_grad=True)
    w, b = Tensor(np.ones(4, np.float32), requires_grad=True), Tensor(np.zeros(4, np.float32), requires_grad=True)
    y = layer_norm(x, w, b)
    (y * Tensor([[1.0, 0.0, 0.0, 0.0]])).sum().backward()
    print("worked example dL/dx:", x.grad.data.round(3), "sums to", round(float(x.grad.data.sum()), 6))

    def loss(v):  # the same loss, y[0], as a plain NumPy function of the input
        return ((v - v.mean()) / np.sqrt(v.var() + 1e-5))[0]

    v, h = np.array([1.0, 2.0, 3.0, 6.0]), 1e-5
    numeric = [(loss(v + h * e) - loss(v - h * e)) / (2 * h) for e in np.eye(4)]
    print("central differences: ", np.round(numeric, 3))


# %% nbgrader={"grade": true, "grade_id": "check-layer-norm-backward", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("13", "layer_norm_backward")


# %% [markdown]
# ## Given: the LayerNorm layer
#
# `LayerNorm(dim, eps=1e-5)` holds $\gamma$ (`weight`, ones) and $\beta$ (`bias`, zeros) as parameters -
# so a fresh layer norm is a pure normalisation - and calls your `layer_norm` on the last axis. Its
# cost in parameters is $2C$ per norm: 256 for $C = 128$, nothing next to the $12 C^2 \approx 197{,}000$ of a
# block's linear layers.

# %%
class LayerNorm(Module):
    """LayerNorm(dim, eps=1e-5) over the last axis: weight (gamma, ones) and bias (beta, zeros)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.dim, self.eps = int(dim), float(eps)
        self.weight = Parameter(np.ones(self.dim, dtype=np.float32))
        self.bias = Parameter(np.zeros(self.dim, dtype=np.float32))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == 0 or x.shape[-1] != self.dim:
            raise ValueError(f"LayerNorm.forward: expected an input of shape (..., {self.dim}), got {x.shape}")
        return layer_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}"


# %%
if __name__ == "__main__":
    ln = LayerNorm(4)
    print(ln, [name for name, _ in ln.named_parameters()])
    print(ln(Tensor([[1.0, 2.0, 3.0, 6.0], [10.0, 10.0, 10.0, 14.0]])).data.round(3))


# %% nbgrader={"grade": true, "grade_id": "check-layernorm-layer", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("13", "LayerNorm")


# %% [markdown]
# ## MLP: think about each position
#
# Attention mixes positions; the MLP then works on every position *separately* - the same two
# layers applied to each of the $B \cdot T$ vectors:
#
# $$\text{MLP}(h) = W_2\, \text{GELU}(W_1 h + b_1) + b_2, \qquad W_1 \in \mathbb R^{4C \times C},\ W_2 \in \mathbb R^{C \times 4C}.$$
#
# `Linear` already works on the last axis of any input, so a $(B, T, C)$ array goes in and out
# without reshaping: `fc` widens to $(B, T, 4C)$, GELU (module 02, the tanh approximation GPT-2 uses),
# `proj` narrows back to $(B, T, C)$.
#
# **Why 4x wider?** The hidden layer is where the block has room to compute: each of the $4C$ hidden
# units is a feature detector ("this position follows a vowel", "we are inside a word") and the
# second layer writes a combination of the detectors that fired back into the stream. The factor
# 4 comes from the original Transformer ($512 \to 2048$) and has mostly stuck: wider buys capacity,
# but costs parameters and FLOPs linearly. (LLaMA's gated MLP uses three matrices of width
# $\frac{8}{3} C$ instead - the same $8 C^2$ parameters.)
#
# **Where the parameters are.** The MLP has $C \cdot 4C + 4C + 4C \cdot C + C = 8C^2 + 5C$ parameters. For
# $C = 128$: $131{,}072 + 640 = 131{,}712$ - twice the attention's $4C^2 + 4C = 66{,}048$ (its $q, k, v$
# and output projections). **Two thirds of every block is MLP**, and so are two thirds of its
# matrix-multiply FLOPs: $2 \cdot 8C^2 = 262{,}144$ per token forward, against $2 \cdot 4 C^2 = 131{,}072$
# for attention's projections (plus the $4 T C$ of the attention scores themselves).
#
# **Memory.** The hidden activations are 4x the stream: for $B = 32$, $T = 64$, $C = 128$ the
# $(B, T, 4C)$ array is 4 MiB, and the backward pass needs three such arrays (the `fc` output, the
# saved $\tanh$ of GELU, and GELU's output, which `proj` needs for its weight gradient) - the largest
# share of a block's activation memory.
#
# **What to write.** `MLP(dim, hidden=None)`: `hidden` defaults to `4 * dim`; the layers `fc`
# (`Linear(dim, hidden)`), `act` (`GELU()`) and `proj` (`Linear(hidden, dim)`), and `forward`.

# %% nbgrader={"grade": false, "grade_id": "mlp", "locked": false, "schema_version": 3, "solution": true, "task": false}
class MLP(Module):
    """Position-wise feed-forward network: (..., dim) -> Linear -> GELU -> Linear -> (..., dim)."""

    def __init__(self, dim: int, hidden: int | None = None):
        super().__init__()
        # HINT: hidden = 4 * dim unless given; self.fc, self.act, self.proj in that order
        ### BEGIN SOLUTION
        hidden = 4 * dim if hidden is None else int(hidden)
        self.fc = Linear(dim, hidden)
        self.act = GELU()
        self.proj = Linear(hidden, dim)
        ### END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        ### BEGIN SOLUTION
        h = self.act(self.fc(x))  # (B, T, 4C)
        return self.proj(h)  # (B, T, C)
        ### END SOLUTION


# %%
if __name__ == "__main__":
    mlp = MLP(128)
    print(mlp)
    print("parameters:", sum(p.size for p in mlp.parameters()), "= 8 C^2 + 5 C =", 8 * 128**2 + 5 * 128)
    print("(2, 3, 128) ->", mlp(Tensor(np.ones((2, 3, 128), np.float32))).shape)


# %% nbgrader={"grade": true, "grade_id": "check-mlp", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("13", "MLP")


# %% [markdown]
# ## The transformer block: pre-norm on a residual stream
#
# A block is two sub-layers, each *reading* a layer-normalised copy of the stream and *adding* its
# output back:
#
# $$x \leftarrow x + \text{Attn}(\text{LN}_1(x)), \qquad x \leftarrow x + \text{MLP}(\text{LN}_2(x)).$$
#
# The attention is causal (`is_causal=True`): position $t$ reads positions $0 \ldots t$ only.
#
# **Pre-norm versus post-norm.** The original Transformer (Vaswani et al., 2017) normalised *after*
# the addition, $x \leftarrow \text{LN}(x + f(x))$ ("post-norm"). GPT-2 moved the norm to the *input* of
# each sub-layer and added one final norm before the head ("pre-norm"). The difference is where
# the norm sits relative to the residual path:
#
# - **Pre-norm:** the stream itself is never normalised; $x_{L} = x_0 + \sum_\ell f_\ell(\cdot)$. The
#   derivative of the output with respect to the input is $I + \sum(\ldots)$: an identity path from
#   the loss to the embeddings that no layer can attenuate. Gradients are well-scaled at every depth
#   at initialisation, and training is stable without a learning-rate warm-up.
# - **Post-norm:** every block's output passes through a layer norm, so the gradient reaching block
#   $\ell$ has been multiplied by the Jacobians of all the norms above it. Xiong et al. (2020, "On
#   Layer Normalization in the Transformer Architecture") showed that post-norm gradients near the
#   output are large at initialisation, which is why post-norm transformers need a careful warm-up
#   and are hard to train deep. Pre-norm is what GPT-2, GPT-3, LLaMA and nearly every large model
#   since use.
#
# **The residual stream as a bus.** Think of the stream as a shared bus, $C$ numbers wide, that
# every block reads from and writes to. A block that has nothing useful to add can output almost
# zero and leave the stream alone - which is exactly what a freshly initialised block nearly does
# (`GPT` below initialises the output projections small for that reason). Depth then refines a
# representation instead of replacing it.
#
# **Worked sizes.** For $C = 128$ and 4 heads, one block holds $66{,}048$ (attention) $+ 131{,}712$ (MLP)
# $+ 2 \cdot 256$ (two norms) $= 198{,}272$ parameters, and its forward costs $24 C^2 + 4 T C$ FLOPs per token:
# $393{,}216 + 32{,}768 = 425{,}984$ at $T = 64$. The attention term grows with the context, the rest does
# not: the two are equal where $4TC = 24C^2$, at $T = 6C = 768$ for this width. For short contexts
# the matrix multiplies dominate; for long ones attention does.
#
# **What to write.** `TransformerBlock(dim, num_heads)` with the parts named `ln1`, `attn`
# (`MultiHeadAttention(dim, num_heads)` from module 12), `ln2`, `mlp`, and its `forward`.

# %% nbgrader={"grade": false, "grade_id": "transformer-block", "locked": false, "schema_version": 3, "solution": true, "task": false}
class TransformerBlock(Module):
    """Pre-norm block: x = x + attn(ln1(x), causal); x = x + mlp(ln2(x)). (B, T, C) -> (B, T, C)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        # HINT: LayerNorm(dim), MultiHeadAttention(dim, num_heads), LayerNorm(dim), MLP(dim)
        ### BEGIN SOLUTION
        self.ln1 = LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, num_heads)
        self.ln2 = LayerNorm(dim)
        self.mlp = MLP(dim)
        ### END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        # HINT: two residual updates: x = x + (attention of the normalised x, is_causal=True),
        # HINT: then x = x + (MLP of the normalised x)
        ### BEGIN SOLUTION
        x = x + self.attn(self.ln1(x), is_causal=True)  # (B, T, C)
        x = x + self.mlp(self.ln2(x))  # (B, T, C)
        return x
        ### END SOLUTION


# %% [markdown]
# The try-it cell stacks 2, 8 and 24 blocks and compares your pre-norm composition with a post-norm
# one built from the same parts (the blocks keep `Linear`'s default initialisation here, not the
# small one `GPT` will use). It seeds the output with a random gradient and measures what reaches
# the input: its size relative to the seed (1.0 = unchanged) and its direction (the cosine with
# the seed; 1.0 = the identity path carries it through unchanged). Watch the post-norm column
# as depth grows: every norm on the path divides the gradient by the standard deviation of
# $x + f(x)$, so it shrinks layer after layer and loses its direction faster - the effect that
# makes deep post-norm stacks hard to train. The pre-norm gradient grows a little instead: every
# block adds its own path to the identity path, and none of them divides it.

# %%
if __name__ == "__main__":
    from tinytorch.tensor import manual_seed

    def post_norm(blk, x):  # the 2017 layout, from the same parts
        x = blk.ln1(x + blk.attn(x, is_causal=True))
        return blk.ln2(x + blk.mlp(x))

    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((2, 16, 32)).astype(np.float32)  # (B, T, C)
    seed_grad = rng.standard_normal((2, 16, 32)).astype(np.float32)  # dL/d(output)
    for depth in (2, 8, 24):
        manual_seed(0)
        blocks = [TransformerBlock(32, 4) for _ in range(depth)]
        line = f"{depth:2d} blocks:"
        for name, step in [("pre-norm", lambda blk, x: blk(x)), ("post-norm", post_norm)]:
            x = Tensor(x0, requires_grad=True)
            h = x
            for blk in blocks:
                h = step(blk, h)
            h.backward(Tensor(seed_grad))
            gx = x.grad.data.ravel()
            size = np.linalg.norm(gx) / np.linalg.norm(seed_grad)
            cos = gx @ seed_grad.ravel() / (np.linalg.norm(gx) * np.linalg.norm(seed_grad))
            line += f"   {name}: |grad in| / |grad out| = {size:.2f}, cos = {cos:.2f}"
        print(line)


# %% nbgrader={"grade": true, "grade_id": "check-transformer-block", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("13", "TransformerBlock")


# %% [markdown]
# ## Given: the configuration
#
# A dataclass with small defaults that train on a laptop, as nanoGPT's "baby GPT" for Shakespeare.
# `GPTConfig(n_layer=2)` changes one field and keeps the others; the checks build tiny models this
# way (vocabulary 11, context 8, width 16) so that they run in a second.

# %%
@dataclass
class GPTConfig:
    vocab_size: int = 65  # tokens: the 65 distinct characters of Tiny Shakespeare
    block_size: int = 64  # the longest context the model sees (positions 0 .. 63)
    n_layer: int = 4  # transformer blocks
    n_head: int = 4  # attention heads per block (head size n_embd // n_head = 32)
    n_embd: int = 128  # C: the width of the residual stream
    tie_weights: bool = True  # lm_head.weight IS tok_emb.weight (one Parameter, two uses)


# %% [markdown]
# ## GPT: the whole model
#
# **`__init__`.** The parts, named as the checks (and milestone 05) expect:
#
# - `tok_emb = Embedding(vocab_size, n_embd)` and `pos_emb = PositionalEmbedding(block_size, n_embd)`
#   (module 11);
# - `blocks`, a `Sequential` of `n_layer` `TransformerBlock(n_embd, n_head)` (a `Sequential`, not a
#   Python list: a list is invisible to `parameters()`, and the optimizer would never see the
#   blocks' weights);
# - `ln_f = LayerNorm(n_embd)`, the final norm that pre-norm needs (the stream itself is never
#   normalised, so it is normalised once, before the read-out);
# - `lm_head = Linear(n_embd, vocab_size, bias=False)`.
#
# **Weight tying.** The embedding maps a token to a vector; the head scores a vector against every
# token, `logits = h @ W_head.T` with `W_head` of shape $(V, C)$ - the same shape as the embedding
# table. Press and Wolf (2017) observed that using *one* matrix for both works as well or better,
# and it saves $V C$ parameters: 8,320 here, 38.6 million in GPT-2 (a third of GPT-2 small!). Tie
# by sharing the **Parameter object**: `self.lm_head.weight = self.tok_emb.weight`. Then both uses
# read the same array, the autograd engine adds the gradients of both uses into the one `.grad`,
# `parameters()` lists it once, and the optimizer updates it once. (Copying `.data` across instead
# would give two Parameters on one array: each would get only its own half of the gradient, and the
# optimizer would step the shared memory twice.) `tie_weights=False` keeps two separate matrices.
#
# After the parts are built, the given `_init_weights` sets GPT-2's initialisation: every matrix
# $\mathcal N(0, 0.02^2)$, biases 0, layer norms at $\gamma = 1, \beta = 0$, and the two projections that
# write into the residual stream (`attn.proj` and `mlp.proj`) smaller, $0.02/\sqrt{2 \cdot n_{layer}}$,
# so that the stream's variance does not grow with depth ($2 n_{layer}$ additions). A fresh model
# then predicts nearly uniform probabilities: a first loss of $\ln V = \ln 65 = 4.17$.
#
# **`forward(idx)`.** The given lines accept a $(B, T)$ integer array or Tensor and refuse a $T$ longer
# than `block_size`. Then, with shape comments:
#
# ```
# tok = self.tok_emb(idx)      # (B, T, C)
# pos = self.pos_emb(T)        # (T, C), broadcast over the batch
# x = tok + pos                # (B, T, C)  the residual stream
# x = self.blocks(x)           # (B, T, C)
# x = self.ln_f(x)             # (B, T, C)
# logits = self.lm_head(x)     # (B, T, V)
# ```
#
# **`generate(idx, max_new_tokens, temperature=1.0, top_k=None, generator=None)`.** Autoregressive
# sampling: repeat `max_new_tokens` times - run the model on the sequence so far, take the logits
# of the **last** position only, $(B, V)$, pick a next token, append it. Under `no_grad()` (no graph:
# generation never calls backward, and a graph would keep every step's activations alive). Three
# details:
#
# - **Crop the context.** The model has position embeddings for `block_size` positions only, so
#   feed it the last `block_size` tokens, `idx[:, -block_size:]`. A prompt longer than the block
#   size must work, and so must generating more than `block_size` tokens.
# - **Temperature** divides the logits: $p = \text{softmax}(z / \tau)$. $\tau < 1$ sharpens the
#   distribution (more conservative text), $\tau > 1$ flattens it (more surprising text), and $\tau \to 0$
#   is the argmax - so `temperature=0` means **greedy**: always the most likely token.
#   Worked example: $z = [2, 1, 0]$ gives $p = [0.665, 0.245, 0.090]$ at $\tau = 1$, $[0.867, 0.117, 0.016]$
#   at $\tau = 0.5$ and $[0.506, 0.307, 0.186]$ at $\tau = 2$.
# - **Top-k** keeps the $k$ largest logits and sets the others to $-\infty$ before the softmax, so a
#   long tail of unlikely tokens can never be sampled. `top_k=1` is greedy again.
#   `np.partition(z, -k, axis=-1)[:, -k]` is the $k$-th largest logit of each row without a full sort.
#
# To sample one token per row from probabilities $p$ $(B, V)$ without a Python loop over rows, use the
# inverse CDF: draw $u \sim U[0, 1)$ per row from the generator (`generator.random((B, 1))`) and take the
# first index where the cumulative sum `p.cumsum(axis=-1)` exceeds $u$:
# `(cdf < u).sum(axis=-1)`. Compute it in float64, and clip the index to $V - 1$ for the rare $u$ above a
# cumulative sum that rounded to $0.9999999$. `generator=None` means the course's seeded generator,
# `default_generator()`, so `manual_seed` makes generation reproducible.
#
# **What to write.** The parts in `__init__` (with the tying), the body of `forward`, and the
# sampling loop of `generate`; `num_parameters()` (distinct parameters, so a tied matrix counts
# once) and `_init_weights` are given.

# %% nbgrader={"grade": false, "grade_id": "gpt", "locked": false, "schema_version": 3, "solution": true, "task": false}
class GPT(Module):
    """A GPT language model: idx (B, T) integer tokens -> logits (B, T, vocab_size)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        # HINT: tok_emb, pos_emb, blocks (a Sequential of n_layer blocks), ln_f, lm_head
        # HINT: (bias=False); when config.tie_weights: self.lm_head.weight = self.tok_emb.weight
        ### BEGIN SOLUTION
        c = config
        self.tok_emb = Embedding(c.vocab_size, c.n_embd)
        self.pos_emb = PositionalEmbedding(c.block_size, c.n_embd)
        self.blocks = Sequential(*[TransformerBlock(c.n_embd, c.n_head) for _ in range(c.n_layer)])
        self.ln_f = LayerNorm(c.n_embd)
        self.lm_head = Linear(c.n_embd, c.vocab_size, bias=False)
        if c.tie_weights:
            self.lm_head.weight = self.tok_emb.weight  # one Parameter, two uses
        ### END SOLUTION
        self._init_weights()

    def _init_weights(self, std: float = 0.02) -> None:
        """GPT-2's initialisation, written in place (a tied matrix stays one array)."""
        rng = default_generator()
        residual_std = std / math.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters():
            if p.ndim == 1:  # biases 0; layer norms keep weight 1, bias 0
                if name.endswith("bias"):
                    p.data[...] = 0.0
                continue
            s = residual_std if name.endswith("proj.weight") else std  # writes into the stream
            p.data[...] = rng.normal(0.0, s, p.shape)

    def num_parameters(self) -> int:
        """Distinct parameters (a tied matrix counts once)."""
        return sum(p.size for p in self.parameters())

    def forward(self, idx) -> Tensor:
        idx = idx.data if isinstance(idx, Tensor) else np.asarray(idx)
        if idx.ndim != 2:
            raise ValueError(f"GPT.forward: expected token ids of shape (B, T), got {idx.shape}")
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"GPT.forward: a sequence of {T} tokens is longer than block_size="
                             f"{self.config.block_size}")
        # HINT: token embeddings (B, T, C) + position embeddings (T, C), the blocks, ln_f, lm_head
        ### BEGIN SOLUTION
        x = self.tok_emb(idx) + self.pos_emb(T)  # (B, T, C) + (T, C) -> (B, T, C)
        x = self.blocks(x)  # (B, T, C)
        x = self.ln_f(x)  # (B, T, C)
        logits = self.lm_head(x)  # (B, T, V)
        ### END SOLUTION
        return logits

    def generate(self, idx, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 generator: np.random.Generator | None = None) -> np.ndarray:
        """Append max_new_tokens sampled tokens to idx (B, T); returns (B, T + max_new_tokens).
        temperature=0 or top_k=1: greedy (argmax). The context is cropped to block_size."""
        rng = default_generator() if generator is None else generator
        idx = np.array(idx.data if isinstance(idx, Tensor) else idx, dtype=np.int64)  # a copy
        if idx.ndim != 2:
            raise ValueError(f"GPT.generate: expected token ids of shape (B, T), got {idx.shape}")
        # HINT: under no_grad(): crop to the last block_size tokens, logits of the last position
        # HINT: (B, V); greedy -> argmax; else divide by temperature, keep the top_k largest
        # HINT: (others -inf), softmax in float64, inverse-CDF sample with rng.random((B, 1));
        # HINT: append the (B, 1) column with np.concatenate
        ### BEGIN SOLUTION
        with no_grad():
            for _ in range(max_new_tokens):
                context = idx[:, -self.config.block_size:]  # (B, <= block_size)
                logits = self(context).data[:, -1, :].astype(np.float64)  # (B, V) the last position
                if temperature == 0 or top_k == 1:
                    nxt = logits.argmax(axis=-1)  # (B,) greedy
                else:
                    logits = logits / temperature
                    if top_k is not None and top_k < logits.shape[-1]:
                        kth = np.partition(logits, -top_k, axis=-1)[:, -top_k, None]  # (B, 1)
                        logits = np.where(logits < kth, -np.inf, logits)
                    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))  # (B, V)
                    cdf = np.cumsum(probs / probs.sum(axis=-1, keepdims=True), axis=-1)  # (B, V)
                    u = rng.random((idx.shape[0], 1))  # (B, 1)
                    nxt = np.minimum((cdf < u).sum(axis=-1), logits.shape[-1] - 1)  # (B,)
                idx = np.concatenate([idx, nxt[:, None]], axis=1)  # (B, T + 1)
        ### END SOLUTION
        return idx


# %%
if __name__ == "__main__":
    from tinytorch.tensor import manual_seed

    manual_seed(0)
    model = GPT(GPTConfig())
    print(f"GPTConfig() -> {model.num_parameters():,} parameters")
    groups: dict[str, int] = {}
    for name, p in model.named_parameters():
        part = name.split(".")[0] if not name.startswith("blocks") else "blocks." + name.split(".")[2]
        groups[part] = groups.get(part, 0) + p.size
    for part, n in groups.items():
        print(f"  {part:14s} {n:9,d}  {100 * n / model.num_parameters():5.1f}%")
    print("lm_head.weight is tok_emb.weight:", model.lm_head.weight is model.tok_emb.weight)


# %% nbgrader={"grade": true, "grade_id": "check-gpt-init", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("13", "GPT.__init__")


# %% [markdown]
# The next cell runs a forward pass on a batch of random tokens: the logits have shape
# $(B, T, V)$, and the loss of a fresh model is close to $\ln 65 = 4.17$ (it knows nothing yet, and
# says so with nearly uniform probabilities). `CrossEntropyLoss` takes $(N, V)$ logits, so the
# $B \cdot T$ positions are folded into one axis with `reshape(-1, V)`.

# %%
if __name__ == "__main__":
    from tinytorch.losses import CrossEntropyLoss

    rng = np.random.default_rng(0)
    idx = rng.integers(0, 65, (4, 64))  # (B, T)
    targets = rng.integers(0, 65, (4, 64))  # (B, T): the next tokens
    logits = model(idx)
    loss = CrossEntropyLoss()(logits.reshape(-1, 65), targets.reshape(-1))
    print("logits", logits.shape, logits.dtype, f"| loss {loss.item():.3f} vs ln(65) = {math.log(65):.3f}")


# %% nbgrader={"grade": true, "grade_id": "check-gpt-forward", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("13", "GPT.forward")


# %% [markdown]
# Generation from an untrained model is noise, but its mechanics can be seen already: the prompt is
# kept, greedy decoding (`temperature=0`) gives the same tokens every time, sampling gives different
# tokens for different seeds, and a prompt longer than `block_size` works because the context is
# cropped.

# %%
if __name__ == "__main__":
    prompt = np.zeros((1, 3), dtype=np.int64)
    print("greedy:   ", model.generate(prompt, 10, temperature=0)[0])
    print("greedy:   ", model.generate(prompt, 10, temperature=0)[0])
    print("sampled:  ", model.generate(prompt, 10, generator=np.random.default_rng(1))[0])
    print("top_k=5:  ", model.generate(prompt, 10, top_k=5, generator=np.random.default_rng(2))[0])
    long_prompt = rng.integers(0, 65, (1, 100))  # longer than block_size = 64
    print("100-token prompt ->", model.generate(long_prompt, 5, temperature=0).shape)


# %% nbgrader={"grade": true, "grade_id": "check-gpt-generate", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("13", "GPT.generate")


# %% [markdown]
# ## Where the parameters and the FLOPs live
#
# Count the default model, $V = 65$, $T = 64$, $C = 128$, 4 heads, 4 layers, tied:
#
# | part | formula | parameters | share |
# |---|---|---|---|
# | token embedding (= LM head) | $V C$ | 8,320 | 1.0% |
# | position embedding | $T C$ | 8,192 | 1.0% |
# | per block: attention | $4C^2 + 4C$ | 66,048 | |
# | per block: MLP | $8C^2 + 5C$ | 131,712 | |
# | per block: 2 layer norms | $4C$ | 512 | |
# | 4 blocks | $4 \cdot (12 C^2 + 13 C)$ | 793,088 | 97.9% |
# | final layer norm | $2C$ | 256 | 0.03% |
# | **total** | | **809,856** | |
#
# Almost everything is in the blocks, and $\approx 12 C^2$ per block is a rule worth remembering: it
# predicts GPT-2 small's $12 \cdot 12 \cdot 768^2 = 85$ million block parameters exactly (its other 39
# million are the embedding table of a 50,257-token vocabulary - at that vocabulary size the tied
# embedding is no longer small).
#
# **FLOPs.** Every weight of a matrix multiply costs 2 FLOPs (a multiply and an add) per token, so the
# forward pass costs about $2N$ FLOPs per token for $N$ matrix weights, plus attention's scores and
# weighted sums, $4 T C$ per token per layer (they multiply activations with activations, no
# weights). For the default model at $T = 64$:
#
# $$\underbrace{4 \cdot 24 C^2}_{\text{blocks: } 1{,}572{,}864} + \underbrace{4 \cdot 4 T C}_{\text{attention: } 131{,}072}
# + \underbrace{2 C V}_{\text{head: } 16{,}640} \approx 1.72 \text{ MFLOP per token.}$$
#
# A training step costs about 3 times the forward (the backward computes two matrix products per
# forward one: the gradients of the input and of the weights) - the "$6N$ per token" rule. One step at
# $B = 32$, $T = 64$ is 2,048 tokens: $2{,}048 \cdot 3 \cdot 1.72 \approx 10.6$ GFLOP. The same step written by
# hand in NumPy, without any framework, was measured at about 0.14 s on a quiet 2-core machine of
# the kind this course was built on (`bench/bench_gpt.py` times yours against it): some 75 GFLOP/s,
# most of it in BLAS. The next cell counts the FLOPs from the model's own shapes and times a forward
# pass (on a busy machine, expect far less).

# %%
if __name__ == "__main__":
    import time

    cfg = model.config
    C, T, V, L = cfg.n_embd, cfg.block_size, cfg.vocab_size, cfg.n_layer
    matmul_weights = sum(p.size for name, p in model.named_parameters()
                         if p.ndim == 2 and name.startswith("blocks")) + V * C
    flops_token = 2 * matmul_weights + L * 4 * T * C
    print(f"matrix weights used per token {matmul_weights:,}; forward {flops_token / 1e6:.2f} MFLOP/token")
    idx = rng.integers(0, V, (8, T))  # (B, T), a smaller batch for the timing
    with no_grad():
        model(idx)
        start = time.perf_counter()
        model(idx)
        ms = (time.perf_counter() - start) * 1e3
    print(f"forward of {idx.size} tokens: {ms:.1f} ms, {flops_token * idx.size / ms / 1e6:.1f} GFLOP/s")


# %% [markdown]
# ## Memory: the activations a training step keeps
#
# The parameters are 3.2 MB (809,856 float32 numbers; Adam keeps two more copies, the gradients a
# third). The **activations** that the backward pass needs are far larger. Per block, at $B = 32$,
# $T = 64$, $C = 128$ ($BTC$ = 262,144 numbers = 1 MiB):
#
# - the stream-sized arrays: the block's input, the two layer norms' outputs and saved $\hat x$, the
#   attention's merged heads and output, the two residual sums, the MLP's output: about 10 $BTC$;
# - the $q, k, v$ projection output, $3\,BTC$ (and $q, k, v$ as separate head-major arrays, if they are
#   copied), and the MLP's three $4\,BTC$ arrays: $12\,BTC$;
# - the attention weights, $B \cdot n_h \cdot T^2 = 524{,}288$ numbers, 2 MiB, per layer.
#
# That is roughly 25-30 MiB per block, some 110 MiB for the model - 35 times its parameters, at a
# tiny batch. Two terms dominate at scale: everything grows linearly with $B \cdot T$, and the attention
# weights grow with $T^2$: GPT-2 small at $T = 1024$, 12 heads, $B = 8$ keeps $8 \cdot 12 \cdot 1024^2 \cdot 4$ bytes
# $= 400$ MB of attention weights *per layer*, 4.8 GB for 12 layers. That is why long-context
# training uses FlashAttention (never stores the $T \times T$ weights: it recomputes them in the
# backward pass, in tiles) and activation checkpointing (keeps only each block's input and redoes
# its forward during the backward pass): both trade FLOPs for memory. The cell below walks the
# graph of one loss and adds up the distinct arrays it keeps alive.

# %%
if __name__ == "__main__":
    from tinytorch.losses import CrossEntropyLoss

    def base(a: np.ndarray) -> np.ndarray:
        while isinstance(a.base, np.ndarray):
            a = a.base
        return a

    def graph_bytes(root: Tensor) -> int:
        """Bytes of the distinct arrays a graph keeps: node values and saved arrays (not parameters)."""
        arrays, stack, seen = {}, [root], set()
        while stack:
            node = stack.pop()
            if id(node) in seen or node._op is None:
                continue
            seen.add(id(node))
            stack.extend(node._parents)
            saved = node._saved if isinstance(node._saved, tuple) else (node._saved,)
            for a in (node.data, *saved):
                if isinstance(a, np.ndarray) and a.size > 1:
                    arrays[id(base(a))] = base(a).nbytes
        return sum(arrays.values())

    idx = rng.integers(0, 65, (32, 64))  # (B, T) = the milestone's batch
    for n_layer in (1, 2, 4):
        small = GPT(GPTConfig(n_layer=n_layer))
        logits = small(idx)
        loss = CrossEntropyLoss()(logits.reshape(-1, 65), idx.reshape(-1))
        print(f"{n_layer} layer(s): the graph keeps {graph_bytes(loss) / 2**20:6.1f} MiB of activations")
    del small, logits, loss


# %% [markdown]
# ## Training end to end: memorise one sequence
#
# The cheapest test that the whole stack trains - embeddings, attention, layer norms, MLPs, the
# tied head, every backward rule of modules 06-13, Adam - is to ask a small model to memorise one
# sequence. If any gradient is wrong, missing or detached, the loss stalls; if everything is right,
# it falls from $\ln V$ to nearly zero in a few dozen steps, and greedy generation from the first
# token recites the sequence. (The checks do exactly this, on a smaller model.) The loop is the
# same four lines as every training loop of this course: zero the gradients, forward and loss,
# backward, optimizer step.

# %%
if __name__ == "__main__":
    from tinytorch.optimizers import Adam
    from tinytorch.tensor import manual_seed

    text = "to be or not to be, that is the question"
    chars = sorted(set(text))
    ids = np.array([[chars.index(ch) for ch in text]])  # (1, 41)
    manual_seed(0)
    tiny = GPT(GPTConfig(vocab_size=len(chars), block_size=40, n_layer=2, n_head=2, n_embd=32))
    opt = Adam(tiny.parameters(), lr=1e-2)
    loss_fn = CrossEntropyLoss()
    for step in range(60):
        opt.zero_grad()
        logits = tiny(ids[:, :-1])  # (1, 40, V)
        loss = loss_fn(logits.reshape(-1, len(chars)), ids[0, 1:])
        loss.backward()
        opt.step()
        if step % 10 == 0 or step == 59:
            print(f"step {step:2d}  loss {loss.item():.4f}")
    out = tiny.generate(ids[:, :1], len(text) - 1, temperature=0)[0]
    print("greedy from 't':", repr("".join(chars[i] for i in out)))


# %% [markdown]
# ## Generation is wasteful: a preview of module 17
#
# Look at what `generate` does for every new token: it runs the whole model on the whole context,
# up to `block_size` positions, and throws away all but the last position's logits. At step $t$ the
# keys and values of positions $0 \ldots t-1$ are recomputed exactly as they were at step $t - 1$: causal
# attention guarantees that nothing about the past changes when a token is appended. Generating
# $n$ tokens therefore costs about $n \cdot T$ token-forwards instead of $n$ - 64 times too much work
# for the default model at a full context, 1,024 times for GPT-2.
#
# The fix is the **KV cache**: keep each layer's keys and values of the positions already seen, and
# for a new token compute only its own query, key and value, attend over the cache, and append
# its key and value to it. Each step then costs one token's worth of matrix multiplies plus one
# row of attention. The price is memory - $2 \cdot n_{layer} \cdot T \cdot C$ numbers per sequence (for GPT-2
# small at $T = 1024$: 18.9 million numbers, 75 MB per sequence in float32) - and that trade-off is
# why serving large models is mostly a memory problem. Module 17 (memoization) builds the cache
# and measures the speed-up on the model of this module.

# %% [markdown]
# ## Wrap-up
#
# You built a GPT. `layer_norm` normalises each token over its features with $\epsilon$ inside the square
# root, as one fused op whose backward you derived: $r(\delta - \text{mean}(\delta) - \hat x\,
# \text{mean}(\delta \hat x))$, the mean terms removing what the normalisation cannot see. The `MLP` widens
# to $4C$ and holds two thirds of the parameters; the pre-norm `TransformerBlock` reads normalised
# copies of the residual stream and writes back with additions, so the gradient has an identity
# path to the bottom; `GPT` ties its head to its embedding by sharing one Parameter, and `generate`
# crops the context, samples with temperature and top-k, and is greedy at temperature 0.
#
# The systems lessons to keep:
#
# - **Parameters**: $\approx 12 C^2$ per block (two thirds MLP, one third attention), plus $VC$ for a tied
#   embedding; 809,856 for the default model.
# - **FLOPs**: $\approx 2N$ per token forward, $6N$ per token for training, plus $4TC$ per token per layer
#   for attention - the term that grows with the context.
# - **Memory**: activations, not weights: ~25 stream-sized arrays and a $B n_h T^2$ attention matrix per
#   layer; at long contexts the $T^2$ term decides what fits.
# - **Generation** recomputes the past for every token: the KV cache of module 17 removes that.
#
# Run all of the module's checks below (the same as `tito module test 13`); then
# `tito module complete 13` exports your file into your `tinytorch` package and unlocks milestone
# 05: a character-level GPT trained on Tiny Shakespeare by your code.

# %% nbgrader={"grade": true, "grade_id": "check-transformers", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("13")
