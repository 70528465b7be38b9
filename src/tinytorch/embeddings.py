# %% [markdown]
# # Module 11 - Embeddings
#
# A tokenizer (module 10) turns text into integers: `"to be"` becomes `[58, 53, 1, 40, 43]`. A
# neural network cannot do arithmetic on those ids - token 57 is not "more" than token 52 - so the
# first layer of every language model replaces each id with a learnt vector, a row of a table:
# the **embedding**. And because the attention layer of module 12 does not know in which order
# its inputs came, a second table (or a fixed formula) adds to each vector *where* in the sequence
# its token stands: the **positional encoding**.
#
# You write the token embedding (a gather forward, a scatter-add backward that gets repeated
# tokens right), a learnt positional embedding (GPT-2's), and the sinusoidal encoding of
# "Attention Is All You Need" (Vaswani et al., 2017). With modules 12 (attention) and 13
# (transformers) this unlocks milestone 05: a character-level GPT trained on Shakespeare.
#
# ## What you build
#
# | step | you write | checked by |
# |---|---|---|
# | 1 | `Embedding`: a table of vectors, `forward(idx)` picks rows | `check("11", "test_embedding_layer")` |
# | 2 | `embedding_backward`: the scatter-add that accumulates repeated ids | `check("11", "embedding_backward")` |
# | 3 | `PositionalEmbedding`: a learnt vector per position | `check("11", "test_positional_embedding")` |
# | 4 | `sinusoidal_encoding`: Vaswani's fixed sin/cos table | `check("11", "sinusoidal_encoding")` |
# | 5 | `SinusoidalPositionalEncoding`: the same table as a layer | `check("11", "SinusoidalPositionalEncoding")` |
#
# Each step has a markdown cell that teaches it, a cell to fill in (your copy says
# `# YOUR CODE HERE` and `raise NotImplementedError()` where the answer goes), a "try it" cell and
# a check cell that runs the same checks as `tito module test 11 --task <name>`. The checks
# compare every forward pass with a slow loop written in the check, every gradient with central
# differences in float64, and both with PyTorch when it is installed - with ids that repeat,
# because that is where embedding gradients go wrong.

# %%
"""Module 11: Embedding, PositionalEmbedding, sinusoidal_encoding, SinusoidalPositionalEncoding.

Embedding(V, D): a table W of shape (V, D), one row per token id. For ids of any shape,

    forward:   out[..., :] = W[idx[...], :]            (*idx.shape, D)   a gather
    backward:  dW[v] = sum of g[n] over every n with idx[n] == v     a scatter-add

The forward equals onehot(idx) @ W without ever building the one-hot matrix; the backward is
onehot(idx)^T @ g, so a token that appears k times receives the sum of its k gradients.

PositionalEmbedding(max_len, D): an Embedding of the positions 0..T-1 (learnt, as GPT-2).

sinusoidal_encoding(max_len, D), Vaswani et al. (2017), section 3.5:

    PE[p, 2i]     = sin(p / 10000^(2i / D))
    PE[p, 2i + 1] = cos(p / 10000^(2i / D))

SinusoidalPositionalEncoding(max_len, D): that table as a layer; forward(T) = PE[:T], no
parameters, no gradient.
"""

from __future__ import annotations

import numpy as np

from tinytorch.autograd import register_backward
from tinytorch.layers import Module, Parameter
from tinytorch.tensor import Tensor, default_generator

# %% [markdown]
# ## From ids to vectors: one-hot times a matrix is a gather
#
# The textbook way to feed a token id into a network is a **one-hot** vector: for a vocabulary of
# $V$ tokens, id $v$ becomes a length-$V$ vector of zeros with a single 1 at position $v$. A
# linear layer without bias then maps it to $D$ numbers: $e = \text{onehot}(v)\, W$ with $W$ of
# shape $(V, D)$. Because only one entry of the one-hot vector is non-zero, the product simply
# *picks row $v$ of $W$*:
#
# $$e = \text{onehot}(v)\, W = \sum_{u} [u = v]\, W_{u,:} = W_{v,:}.$$
#
# **Worked example.** $V = 4$, $D = 2$,
# $W = \begin{pmatrix} 0.1 & 0.2 \\ 1.0 & -1.0 \\ 3.0 & 0.5 \\ -2.0 & 2.0 \end{pmatrix}$ and the ids
# `[2, 0, 2]`. The one-hot matrix is $3 \times 4$ with rows $[0,0,1,0]$, $[1,0,0,0]$, $[0,0,1,0]$, and
# the product is $\begin{pmatrix} 3.0 & 0.5 \\ 0.1 & 0.2 \\ 3.0 & 0.5 \end{pmatrix}$: rows 2, 0 and 2 of
# $W$. In NumPy that is `W[[2, 0, 2]]`, fancy indexing, one copy of $3 \times 2$ numbers.
#
# **Why it matters: FLOPs.** For $N$ tokens the one-hot product costs $2 N V D$ FLOPs, almost all of
# them multiplications by zero; the gather costs no arithmetic at all - it copies $N D$ numbers. For
# GPT-2 ($V = 50{,}257$, $D = 768$) and a batch of $8 \times 1024$ tokens that is 632 GFLOP (several
# seconds on a CPU, for one layer) against a 25 MB copy (milliseconds). The one-hot matrix itself
# would be $8192 \times 50{,}257$ float32 numbers: 1.6 GB, to hold 8,192 ones.
#
# **The table's memory.** The table holds $V \times D$ float32 numbers, $4 V D$ bytes:
#
# | model | $V$ | $D$ | parameters | float32 |
# |---|---|---|---|---|
# | our char-level GPT | 65 | 128 | 8,320 | 33 KB |
# | GPT-2 small | 50,257 | 768 | 38.6 M | 154 MB |
# | Llama 3 8B | 128,256 | 4,096 | 525 M | 2.1 GB |
#
# For GPT-2 small the token table is 31% of its 124 M parameters. Training needs more than the
# table: its gradient (another $4VD$ bytes) and Adam's two moments (module 07), $16 V D$ bytes in
# all - 618 MB for GPT-2's embedding alone. A large vocabulary makes sequences shorter (module 10:
# fewer tokens per character) but the table, and the softmax over $V$ logits at the other end of
# the model, bigger: that trade-off is why vocabularies stopped growing at a few hundred thousand.

# %% [markdown]
# ## Step 1: `Embedding`
#
# `Embedding(num_embeddings, embedding_dim)` holds the table as a `Parameter` `weight` of shape
# $(V, D)$, initialised from the standard normal distribution $\mathcal{N}(0, 1)$ - PyTorch's
# default for `nn.Embedding` - drawn from `default_generator()`, so `tinytorch.manual_seed(0)`
# makes it reproducible. (GPT-2 starts its tables at a standard deviation of 0.02 instead; module
# 13 may re-initialise. A unit-variance row of $D = 128$ numbers has length about
# $\sqrt{128} \approx 11$.)
#
# `forward(idx)` takes an integer Tensor or ndarray of **any shape** - a single id, a sequence
# `(T,)`, a batch `(B, T)` - and returns `(*idx.shape, D)`: every id replaced by its row. The given
# lines turn `idx` into an integer array `ids` and check that every id lies in $[0, V)$ (NumPy
# would silently read row $V - 1$ for an id of $-1$); you write the gather, one line of fancy
# indexing on `self.weight.data`. The given `Tensor._make(..., "embedding", ids)` records the op
# and keeps the ids for the backward rule of step 2.
#
# Why a fused op and not `self.weight[ids]` (module 01's `__getitem__`)? It would work, and module
# 06's `getitem` rule even accumulates repeated indices correctly. But an embedding is used in
# every step of every language model, so it gets its own op and a backward rule tuned for it
# (step 2), and the checks can verify it on its own.

# %% nbgrader={"grade": false, "grade_id": "embedding", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Embedding(Module):
    """A lookup table of `num_embeddings` vectors of size `embedding_dim`.

    weight: Parameter (num_embeddings, embedding_dim) ~ N(0, 1), from default_generator().
    forward(idx): integer ids of any shape -> (*idx.shape, embedding_dim), op "embedding".
    """

    def __init__(self, num_embeddings: int, embedding_dim: int):
        super().__init__()
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        # HINT: default_generator().standard_normal(shape) is N(0, 1) in float64: make it a float32 Parameter
        ### BEGIN SOLUTION
        table = default_generator().standard_normal((self.num_embeddings, self.embedding_dim))
        self.weight = Parameter(table.astype(np.float32))  # (V, D)
        ### END SOLUTION

    def forward(self, idx) -> Tensor:
        ids = idx.data if isinstance(idx, Tensor) else np.asarray(idx)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"{type(self).__name__}.forward: token ids must be integers, got {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_embeddings):
            bad = ids[(ids < 0) | (ids >= self.num_embeddings)].flat[0]
            raise IndexError(f"{type(self).__name__}.forward: id {bad} is out of range for a table of "
                             f"{self.num_embeddings} rows (ids must be in [0, {self.num_embeddings}))")
        # HINT: fancy indexing picks rows: table[ids] has shape (*ids.shape, D)
        ### BEGIN SOLUTION
        data = self.weight.data[ids]  # (*ids.shape, D), a gather: a copy, no arithmetic
        ### END SOLUTION
        return Tensor._make(data, (self.weight,), "embedding", ids)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


# %%
if __name__ == "__main__":
    import tinytorch.tensor as tt

    tt.manual_seed(0)
    emb = Embedding(4, 2)
    emb.weight.data[...] = [[0.1, 0.2], [1.0, -1.0], [3.0, 0.5], [-2.0, 2.0]]  # the worked example
    print(emb)
    print("ids [2, 0, 2] ->\n", emb(np.array([2, 0, 2])).data)
    print("a batch (2, 3) of ids ->", emb(np.array([[1, 2, 3], [0, 0, 1]])).shape)
    onehot = np.eye(4, dtype=np.float32)[[2, 0, 2]]  # (3, 4)
    print("one-hot @ W gives the same:", np.array_equal(onehot @ emb.weight.data, emb(np.array([2, 0, 2])).data))

# %% nbgrader={"grade": true, "grade_id": "check-embedding", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("11", "test_embedding_layer")

# %% [markdown]
# ## Step 2: the backward pass is a scatter-add
#
# The forward is $\text{out} = \text{onehot}(\text{idx})\, W$, so module 06's matmul rule gives the
# gradient at once: $\bar W = \text{onehot}(\text{idx})^\top g$, with $g$ flattened to $(N, D)$. Row
# $v$ of that product is
#
# $$\bar W_{v,:} = \sum_{n \,:\, \text{idx}_n = v} g_{n,:},$$
#
# the **sum** of the gradients of every position where token $v$ was used, and zero for a token that
# did not occur in the batch.
#
# **Worked example.** The ids `[1, 1, 3, 1]` ("the", "the", "cat", "the") with $D = 2$ and upstream
# gradients $g = [[1, 0], [2, 0], [0, 5], [4, 0]]$. Row 1 gets $[1, 0] + [2, 0] + [4, 0] = [7, 0]$,
# row 3 gets $[0, 5]$, rows 0 and 2 get $[0, 0]$. Common tokens get large gradients because they are
# used often - exactly as a shared weight should.
#
# **The trap.** The obvious vectorised line `dW[ids] += g` is wrong. NumPy evaluates it as
# `dW[ids] = dW[ids] + g`: it reads the three copies of row 1 (all zero), adds, and writes row 1
# three times, so the last write wins: $[4, 0]$ instead of $[7, 0]$. No error, no NaN - just a
# model whose frequent tokens learn slower than they should. Text is full of repeats (in Tiny
# Shakespeare a space is 15% of all characters, "e" 9%): the bug is large in its effect and
# invisible in its symptoms.
#
# **The tool.** `np.add.at(a, index, values)` is *unbuffered*: every repeated index adds. Applied to
# rows, `np.add.at(dW, ids.ravel(), g.reshape(-1, D))` is correct but slow: measured here, 5-16 ms
# for the char-level GPT's batch ($32 \times 64$ ids, $D = 128$), because NumPy handles each
# indexed row as a separate small operation. Flattened to **one index per number** it hits NumPy's
# fast path for 1-D arrays: element $(v, c)$ of a C-ordered $(V, D)$ table sits at address
# $v D + c$, so
#
#     flat = ids.reshape(-1, 1) * D + np.arange(D)      # (N, D): where each entry of g goes
#     np.add.at(dW.reshape(-1), flat.ravel(), g.ravel())
#
# runs in about 1 ms - 5 to 15 times faster from a change of index layout, no change of math. (The
# other fast way, used by some frameworks, is to sort the ids and sum runs of equal ids with
# `np.add.reduceat`.) No Python loop over tokens: a loop of 2,048 row additions would cost more
# than the whole forward pass of the embedding.
#
# **A sparse gradient in a dense array.** A batch of GPT-2 touches at most 8,192 of its 50,257
# rows (fewer: frequent tokens repeat), yet `dW` is the full 154 MB table, at least 83% zeros,
# written and read every step. Frameworks offer *sparse* gradients for this (`nn.Embedding(...,
# sparse=True)`: the touched row ids and their rows, 25 MB here). They help less than it seems:
# Adam's moment estimates decay on every row every step, so the update is dense anyway unless the
# optimizer is sparse-aware too; and with **weight tying** (module 13: the output layer reuses
# the table) the output layer's gradient is dense - every logit of every token gets one.
#
# Write `embedding_backward(g, out)`: `out._parents == (weight,)`, `out._saved` is the id array,
# `g` has shape `(*ids.shape, D)`. Return a one-element tuple with the $(V, D)$ gradient in `g`'s
# dtype. Make it `np.intp` before multiplying: int32 ids times $D$ could overflow for a large table.

# %% nbgrader={"grade": false, "grade_id": "embedding-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
@register_backward("embedding")
def embedding_backward(g, out):
    """dW[v] = sum of g[n] over every position n with ids[n] == v (repeated ids accumulate)."""
    (weight,) = out._parents
    ids = out._saved
    num, dim = weight.shape
    # HINT: dW = zeros (V, D) in g's dtype; the flat address of (v, c) is v * D + c;
    # HINT: np.add.at(dW.reshape(-1), addresses.ravel(), g.ravel()) adds every repeat
    ### BEGIN SOLUTION
    grad = np.zeros((num, dim), dtype=g.dtype)  # (V, D)
    flat = ids.reshape(-1, 1).astype(np.intp) * dim + np.arange(dim)  # (N, D) addresses in grad
    np.add.at(grad.reshape(-1), flat.reshape(-1), g.reshape(-1))  # unbuffered: repeats add up
    return (grad,)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    emb = Embedding(4, 2)
    out = emb(np.array([1, 1, 3, 1]))
    g = np.array([[1, 0], [2, 0], [0, 5], [4, 0]], dtype=np.float32)
    print("your rule:\n", embedding_backward(g, out)[0])
    wrong = np.zeros((4, 2), np.float32)
    wrong[[1, 1, 3, 1]] += g
    print("dW[ids] += g would give (row 1 is [4, 0], not [7, 0]):\n", wrong)

# %% nbgrader={"grade": true, "grade_id": "check-embedding-backward", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("11", "embedding_backward")

# %% [markdown]
# ## Why positions need their own vectors
#
# Module 12's attention layer computes, for every token, a weighted average of all the tokens'
# vectors, with weights from dot products between them. Shuffle the input tokens and the outputs
# are shuffled the same way, but otherwise identical: attention is **permutation-equivariant**.
# It cannot tell "dog bites man" from "man bites dog" unless the vectors themselves say where each
# token stands. So before the first block, each token vector gets a position vector *added*:
#
# $$x_{b,t} = E_{\text{tok}}[\text{idx}_{b,t}] + P[t], \qquad x \in \mathbb{R}^{B \times T \times D}.$$
#
# The addition broadcasts $(T, D)$ over the batch; its backward (module 06's `unbroadcast`) sums
# the position gradient over the $B$ sequences. Adding rather than concatenating keeps $D$ fixed;
# the network learns to use different directions of the same space for "what" and "where".
#
# Two designs, both in use:
#
# - **Learnt** (GPT-2, BERT): one more table, $P$ of shape $(\text{max\_len}, D)$, trained like
#   the token table - `PositionalEmbedding` below, literally an `Embedding` of the ids
#   $0, 1, \ldots, T - 1$. It can learn whatever position code the data rewards, and it is cheap:
#   GPT-2's is $1024 \times 768 = 786{,}432$ parameters (3 MB), ours is $64 \times 128 = 8{,}192$
#   (32 KB). Its limit is hard: row 1024 does not exist, so GPT-2 cannot read a 1025th token, and
#   the last rows are trained only on the rare sequences that long.
# - **Fixed sinusoidal** (the original Transformer): a formula, no parameters, defined for every
#   position (steps 4 and 5). Vaswani et al. found both gave the same quality and chose the
#   sinusoid hoping it would extrapolate to longer sequences. (In practice it extrapolates poorly
#   too; today's models mostly use *rotary* embeddings, RoPE, which rotate the queries and keys of
#   module 12 by the same sin/cos angles instead of adding them to the input.)
#
# ## Step 3: `PositionalEmbedding`
#
# `PositionalEmbedding(max_len, dim)` is an `Embedding` (its table `weight` has `max_len` rows;
# `__init__` is given). `forward(T)` takes a **length**, not ids, and returns the vectors of
# positions $0, \ldots, T - 1$: shape $(T, D)$, through `Embedding.forward` so that the gradient
# reaches the table (rows $T, \ldots, \text{max\_len} - 1$ get zero). A $T$ larger than `max_len`
# must raise a `ValueError` whose message names `max_len` and its value - the model's context
# limit, stated where it is hit, instead of an index error deep inside NumPy.

# %% nbgrader={"grade": false, "grade_id": "positional-embedding", "locked": false, "schema_version": 3, "solution": true, "task": false}
class PositionalEmbedding(Embedding):
    """A learnt vector per position: forward(T) -> (T, dim), the rows of positions 0..T-1."""

    def __init__(self, max_len: int, dim: int):
        super().__init__(max_len, dim)
        self.max_len = int(max_len)

    def forward(self, T: int) -> Tensor:
        # HINT: refuse T > self.max_len (ValueError with max_len's value); then the ids are np.arange(T)
        ### BEGIN SOLUTION
        if T > self.max_len:
            raise ValueError(f"PositionalEmbedding.forward: sequence length {T} exceeds max_len="
                             f"{self.max_len} (the longest context this table has positions for)")
        return super().forward(np.arange(T))  # (T, dim)
        ### END SOLUTION


# %%
if __name__ == "__main__":
    pos = PositionalEmbedding(8, 3)
    tok = Embedding(5, 3)
    idx = np.array([[1, 2, 2, 4], [0, 3, 1, 1]])  # (B, T) = (2, 4)
    x = tok(idx) + pos(idx.shape[1])  # (2, 4, 3) + (4, 3)
    print("x:", x.shape, "| positions 0..3 are rows 0..3 of the table:",
          np.array_equal(pos(4).data, pos.weight.data[:4]))
    try:
        pos(9)
    except ValueError as err:
        print("ValueError:", err)

# %% nbgrader={"grade": true, "grade_id": "check-positional-embedding", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("11", "test_positional_embedding")

# %% [markdown]
# ## Step 4: the sinusoidal encoding
#
# Vaswani et al. give every position $p$ a $D$-dimensional vector of sines and cosines at
# geometrically spaced frequencies. For $i = 0, 1, \ldots$, columns $2i$ and $2i + 1$ are a pair
# with angular frequency $\omega_i = 10000^{-2i/D}$:
#
# $$PE[p, 2i] = \sin(\omega_i\, p), \qquad PE[p, 2i + 1] = \cos(\omega_i\, p).$$
#
# The first pair turns fastest ($\omega_0 = 1$: a wavelength of $2\pi \approx 6.3$ positions), the
# last slowest (a wavelength approaching $2\pi \cdot 10000 \approx 62{,}832$ positions). Read down
# a column and you see a sine wave; read across a row and you see position $p$ written in a
# smooth, "analogue" version of binary, where each pair is a clock hand turning at its own speed.
#
# **Worked example**, $D = 4$: $\omega_0 = 1$ and $\omega_1 = 10000^{-2/4} = 0.01$.
#
# | $p$ | $\sin p$ | $\cos p$ | $\sin 0.01p$ | $\cos 0.01p$ |
# |---|---|---|---|---|
# | 0 | 0 | 1 | 0 | 1 |
# | 1 | 0.8415 | 0.5403 | 0.0100 | 1.0000 |
# | 2 | 0.9093 | -0.4161 | 0.0200 | 0.9998 |
#
# Row 0 is $[0, 1, 0, 1, \ldots]$ for every $D$ - a quick sanity check of your table.
#
# **Why sines and cosines: relative positions are rotations.** For each pair, by the angle-addition
# formulas,
#
# $$\begin{pmatrix} \sin \omega (p + k) \\ \cos \omega (p + k) \end{pmatrix} =
# \begin{pmatrix} \cos \omega k & \sin \omega k \\ -\sin \omega k & \cos \omega k \end{pmatrix}
# \begin{pmatrix} \sin \omega p \\ \cos \omega p \end{pmatrix},$$
#
# so the encoding of position $p + k$ is a *fixed linear map* (depending only on the offset $k$)
# of the encoding of $p$: a layer can learn "look 3 tokens back" once, for every $p$. And the dot
# product of two positions depends only on their distance:
# $PE[p] \cdot PE[q] = \sum_i \cos(\omega_i (p - q))$. Every entry lies in $[-1, 1]$, so the
# encoding never swamps the token vectors, however long the sequence.
#
# **Precision.** The angle $\omega_i p$ reaches $p$ itself (the first pair). In float32, a number
# near 2,000 is only known to about $10^{-4}$, so a table computed in float32 has errors around
# $10^{-4}$ at position 2,000 - larger than everything else float32 does to it. Compute the angles
# in float64 (NumPy's default) and convert the finished table to float32 once.
#
# Write `sinusoidal_encoding(max_len, dim)`: the table for positions $0, \ldots,
# \text{max\_len} - 1$ as a float32 `ndarray` of shape `(max_len, dim)`, vectorised (an outer
# product of positions and frequencies, no loop). For an odd `dim` the last column is a sine
# ($2i = D - 1$) without its cosine partner. Cost: $\text{max\_len} \cdot D$ sines and cosines,
# once, at construction.

# %% nbgrader={"grade": false, "grade_id": "sinusoidal-encoding", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sinusoidal_encoding(max_len: int, dim: int) -> np.ndarray:
    """PE[p, 2i] = sin(p / 10000^(2i/dim)), PE[p, 2i+1] = cos(p / 10000^(2i/dim)): (max_len, dim) float32."""
    if max_len < 0 or dim < 1:
        raise ValueError(f"sinusoidal_encoding: need max_len >= 0 and dim >= 1, got {max_len}, {dim}")
    # HINT: positions (max_len, 1) times frequencies 10000 ** (-np.arange(0, dim, 2) / dim): the angles;
    # HINT: sin into the even columns pe[:, 0::2], cos into the odd ones pe[:, 1::2] (one fewer if dim is odd)
    ### BEGIN SOLUTION
    positions = np.arange(max_len, dtype=np.float64)[:, None]  # (max_len, 1)
    freqs = 10000.0 ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)  # (ceil(dim / 2),)  omega_i
    angles = positions * freqs  # (max_len, ceil(dim / 2)), in float64
    pe = np.empty((max_len, dim), dtype=np.float64)
    pe[:, 0::2] = np.sin(angles)
    pe[:, 1::2] = np.cos(angles[:, :dim // 2])
    return pe.astype(np.float32)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    print("D = 4, positions 0..2:\n", sinusoidal_encoding(3, 4).round(4))
    pe = sinusoidal_encoding(50, 16)
    k = 3
    w = 10000.0 ** (-2 * 1 / 16)  # pair i = 1 (columns 2 and 3)
    rot = np.array([[np.cos(w * k), np.sin(w * k)], [-np.sin(w * k), np.cos(w * k)]])
    print("PE[10 + 3] from PE[10] by a rotation:", np.allclose(rot @ pe[10, 2:4], pe[13, 2:4], atol=1e-6))
    dots = pe @ pe[20]
    print("PE[p] . PE[20] for p = 18..22:", dots[18:23].round(3), "(symmetric around p = 20)")

# %% nbgrader={"grade": true, "grade_id": "check-sinusoidal-encoding", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("11", "sinusoidal_encoding")

# %% [markdown]
# ## Step 5: `SinusoidalPositionalEncoding`, the table as a layer
#
# The layer form computes the table once, in `__init__` (given), and keeps it as a plain NumPy
# array `self.pe`: it is not a `Parameter` (nothing trains it) and not a buffer in the
# `state_dict` either - it is a pure function of `max_len` and `dim`, so a checkpoint need not
# store it. `forward(T)` returns the first $T$ rows as a Tensor of shape $(T, D)$, with no gradient,
# and refuses a $T$ beyond `max_len` with a `ValueError` naming it (the formula itself has no limit;
# the precomputed table does - build a longer one if you need it).
#
# Systems view: the table costs $4 \cdot \text{max\_len} \cdot D$ bytes (2 MB for $4096 \times 128$)
# and zero work per step beyond a slice; the learnt table costs the same memory, plus a gradient and
# two Adam moments, plus its share of every backward pass.

# %% nbgrader={"grade": false, "grade_id": "sinusoidal-positional-encoding", "locked": false, "schema_version": 3, "solution": true, "task": false}
class SinusoidalPositionalEncoding(Module):
    """The fixed sin/cos positions of Vaswani et al.: forward(T) -> Tensor (T, dim), no gradient."""

    def __init__(self, max_len: int, dim: int):
        super().__init__()
        self.max_len, self.dim = int(max_len), int(dim)
        self.pe = sinusoidal_encoding(self.max_len, self.dim)  # (max_len, dim): not trained, not saved

    def forward(self, T: int) -> Tensor:
        # HINT: the same ValueError as PositionalEmbedding; then the first T rows of self.pe
        ### BEGIN SOLUTION
        if T > self.max_len:
            raise ValueError(f"SinusoidalPositionalEncoding.forward: sequence length {T} exceeds "
                             f"max_len={self.max_len}")
        return Tensor(self.pe[:T])  # (T, dim), a constant: no graph
        ### END SOLUTION

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, dim={self.dim}"


# %%
if __name__ == "__main__":
    enc = SinusoidalPositionalEncoding(64, 8)
    print(enc, "->", enc(5).shape, "| parameters:", enc.parameters(), "| requires_grad:", enc(5).requires_grad)

# %% nbgrader={"grade": true, "grade_id": "check-sinusoidal-positional-encoding", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("11", "SinusoidalPositionalEncoding")

# %% [markdown]
# ## Measured: a gather against a one-hot matmul, and two scatter-adds
#
# The cell below times, for a batch of the char-level GPT's size ($32 \times 64$ ids, $D = 128$)
# and a larger vocabulary of 4,096 tokens: the forward as your gather and as the one-hot matrix
# multiply it replaces, and the backward as your flattened `np.add.at` and as `np.add.at` on
# whole rows. Expect the one-hot product to lose by a factor that grows with $V$ (it does $2NVD$
# FLOPs where the gather does none), and the row-wise `np.add.at` to lose by a constant factor
# (the same additions, done one small row at a time). Timings depend on the machine and its load;
# the ratios are the point.

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
    for V in (65, 4096):
        emb = Embedding(V, 128)
        ids = rng.integers(0, V, (32, 64))
        W = emb.weight.data
        out = emb(ids)
        g = rng.standard_normal(out.shape).astype(np.float32)

        def onehot_matmul():
            onehot = np.zeros((ids.size, V), np.float32)
            onehot[np.arange(ids.size), ids.ravel()] = 1.0
            return onehot @ W

        def rows_add_at():
            dW = np.zeros_like(W)
            np.add.at(dW, ids.ravel(), g.reshape(-1, 128))
            return dW

        print(f"V = {V:5d}: gather {best_ms(lambda: emb(ids)):6.2f} ms, one-hot matmul "
              f"{best_ms(onehot_matmul):6.2f} ms | backward: flat add.at "
              f"{best_ms(lambda: embedding_backward(g, out)):6.2f} ms, row add.at {best_ms(rows_add_at):6.2f} ms")

# %% [markdown]
# ## Wrap-up
#
# You built the first layer of a language model:
#
# - **`Embedding`**: one-hot times a matrix, computed as what it is - a gather of rows, no
#   arithmetic, $N D$ numbers copied instead of $2 N V D$ FLOPs.
# - **`embedding_backward`**: the scatter-add $\bar W_v = \sum_{n: \text{idx}_n = v} g_n$. Repeated
#   ids must *accumulate*; `dW[ids] += g` silently keeps only the last repeat. `np.add.at` adds
#   every repeat, and with one flat index per number it is several times faster than row by row.
# - **Positions**: attention is blind to order, so a learnt `PositionalEmbedding` (GPT-2: cheap,
#   flexible, hard-limited to `max_len`) or the fixed `sinusoidal_encoding` (no parameters,
#   relative offsets as rotations, values in $[-1, 1]$) is added to every token vector.
#
# The systems lessons to keep: the table costs $4VD$ bytes, $16VD$ while training with Adam
# (618 MB for GPT-2's); its gradient is sparse in content but dense in memory, and weight tying
# makes it dense for real; index layout alone changed the backward's speed several times over.
#
# Next, module 12: attention, where these vectors look at each other. The cell below runs all of
# this module's checks (the same as `tito module test 11`); then `tito module complete 11`.

# %% nbgrader={"grade": true, "grade_id": "check-embeddings", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("11")
