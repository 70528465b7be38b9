# %% [markdown]
# # Module 14 - Profiling
#
# Before you make anything faster, measure it. This module gives your framework the instruments:
# how many parameters a model has, how many floating-point operations (FLOPs) each layer costs -
# counted by hand from its shapes, how many bytes the weights, gradients and optimizer state take,
# how much memory a training step really peaks at, how long a call takes (with warm-up and
# percentiles, not one lucky number), and a `Profiler` that splits a real training step into
# forward and backward time per layer, like PyTorch's profiler summary.
#
# Then you put the two halves together: achieved GFLOP/s per layer against this machine's
# measured matrix-multiply peak and memory bandwidth - a roofline line per layer that says whether
# a layer is slow because of arithmetic, memory, or (in NumPy, often) neither. The optimisation
# modules after this one are judged with instruments like these.
#
# ## What you build
#
# | step | you write | checked by |
# |---|---|---|
# | 1 | `count_parameters(model)` | `check("14", "count_parameters")` |
# | 2 | `linear_flops`: $2 N \cdot d_{in} d_{out}$ plus the bias | `check("14", "linear_flops")` |
# | 3 | `conv2d_flops`: output size with stride and padding, then the dot products | `check("14", "conv2d_flops")` |
# | 4 | `attention_flops`: projections, $QK^\top$ and $PV$ | `check("14", "attention_flops")` |
# | 5 | `memory_bytes(model, optimizer)`: parameters, gradients, optimizer state | `check("14", "memory_bytes")` |
# | 6 | `peak_training_memory(step_fn)` with `tracemalloc` | `check("14", "peak_training_memory")` |
# | 7 | `percentile(times, q)`: linear interpolation between ranks | `check("14", "percentile")` |
# | 8 | `measure_latency(fn, warmup, repeats)` | `check("14", "measure_latency")` |
# | 9 | `roofline(...)`: the attainable ceiling and where a layer sits under it | `check("14", "roofline")` |
# | 10 | `Profiler.table()`: the per-layer summary of a profiled training step | `check("14", "Profiler")` |
#
# Each step has a markdown cell that teaches it, a cell to fill in (your copy says
# `# YOUR CODE HERE` and `raise NotImplementedError()`), a "try it" cell, and a check cell that
# runs the same checks as `tito module test 14 --task <name>`. The FLOP checks compare your counts
# with hand-counted fixtures (stride 2, padding, non-square kernels, no bias) and with a count of
# the multiply-adds the layer really performs; the timing checks drive your code with a fake clock,
# so they are exact and fast.

# %%
"""Module 14: count, measure and attribute the cost of a model.

    count_parameters(model) -> int                 distinct parameters (a tied matrix counts once)
    flops(layer, input_shape) -> int               analytic FLOPs of ONE forward pass, where a
                                                   multiply-add is 2 FLOPs and a bias add 1:
        Linear               2 N d_in d_out (+ N d_out)           N = prod(input_shape[:-1])
        Conv2d               2 N Ho Wo C_out C_in kh kw (+ N C_out Ho Wo),
                             Ho = (H + 2 ph - kh) // sh + 1,  Wo = (W + 2 pw - kw) // sw + 1
        MultiHeadAttention   qkv and proj (Linear) + 2 B T^2 D (Q K^T) + 2 B T^2 D (P V)
        any other model      the sum over its layers; flops_table(model, input_shape) -> FlopRow
                             rows (name, kind, output_shape, flops); elementwise layers count 0
    memory_bytes(model, optimizer=None) -> {parameters, gradients, optimizer_state, total}
    peak_training_memory(step_fn) -> int           tracemalloc peak of one call, in bytes
    percentile(times, q)                           linear interpolation (numpy's default method)
    measure_latency(fn, warmup=5, repeats=50) -> LatencyStats(times_ms, mean, p50, p90, p99, min)
    matmul_peak_gflops(), memory_bandwidth_gbs()   this machine's measured ceilings
    roofline(flops, nbytes, seconds, peak_gflops, bandwidth_gbs) -> RooflinePoint
    with Profiler(model, loss_fn, optimizer) as prof:  <a training step>
        prof.table() -> ProfileRow per layer / op, sorted by total time;  prof.print();
        prof.roofline(peak_gflops, bandwidth_gbs)

How the Profiler sees the step, without changing any class: each watched layer gets an
instance-level `forward` wrapper for the duration of the `with` (its class is untouched), and
every rule in autograd's BACKWARD table is replaced by a timed wrapper of itself, put back on exit.
"""

from __future__ import annotations

import functools
import math
import time
import tracemalloc
import weakref
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from tinytorch import autograd
from tinytorch.layers import Module
from tinytorch.tensor import Tensor, no_grad

# %% [markdown]
# ## Step 1: counting parameters
#
# The first number anyone asks about a model is its size: how many trainable numbers it holds.
# For a `Linear(d_in, d_out)` that is $d_{in} d_{out}$ weights plus $d_{out}$ biases; the MNIST MLP
# 784-256-128-10 of milestone 03 has
#
# $$784 \cdot 256 + 256 \;+\; 256 \cdot 128 + 128 \;+\; 128 \cdot 10 + 10 = 235{,}146$$
#
# parameters. The count decides three costs at once. **Memory**: at 4 bytes per float32 number
# that MLP is 940,584 bytes of weights - and training keeps more copies (gradients, optimizer
# state: step 5). **Compute**: every weight of a matrix multiply is used once per input row, for 2
# FLOPs (step 2), so a forward pass over a batch of $N$ rows costs about $2 \cdot N \cdot
# \text{params}$ FLOPs. **Storage and transfer**: the size of a checkpoint, the time to load it,
# what module 15 shrinks by 4x with int8.
#
# Count each parameter *once*. The GPT of module 13 ties its output layer to its token embedding:
# `lm_head.weight` and `tok_emb.weight` are one `Parameter`, used twice; it has one set of numbers,
# one gradient (the sum of both uses) and one optimizer state. `model.parameters()` already lists
# every distinct `Parameter` once (module 03), so the count is one line - but the right line: the
# number of elements, `p.data.size`, not bytes and not `len(p)` (the first axis only).

# %% nbgrader={"grade": false, "grade_id": "count-parameters", "locked": false, "schema_version": 3, "solution": true, "task": false}
def count_parameters(model) -> int:
    """The number of distinct parameters (numbers) in `model`; a tied matrix counts once."""
    # HINT: sum the sizes (number of elements) of model.parameters()
    ### BEGIN SOLUTION
    return int(sum(p.data.size for p in model.parameters()))
    ### END SOLUTION


# %%
if __name__ == "__main__":
    from tinytorch.activations import ReLU
    from tinytorch.layers import Linear, Sequential
    from tinytorch.tensor import manual_seed

    manual_seed(0)
    mlp = Sequential(Linear(784, 256), ReLU(), Linear(256, 128), ReLU(), Linear(128, 10))
    print(f"MNIST MLP: {count_parameters(mlp):,} parameters (expected 235,146)")

# %% nbgrader={"grade": true, "grade_id": "check-count-parameters", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("14", "count_parameters")

# %% [markdown]
# # Part 1 - FLOPs, counted from the shapes
#
# ## Step 2: the FLOPs of a Linear layer
#
# A FLOP is one floating-point add or multiply. A matrix product $Y = XW^\top$ with $X$ of shape
# $(N, d_{in})$ and $W$ of shape $(d_{out}, d_{in})$ computes $N d_{out}$ outputs, each a dot product of
# length $d_{in}$: $d_{in}$ multiplies and $d_{in}$ adds (counting the first add onto zero), so
#
# $$\text{FLOPs}(XW^\top) = 2\, N\, d_{in}\, d_{out}, \qquad \text{plus } N\, d_{out} \text{ for the bias.}$$
#
# Worked example: `Linear(3, 2)` on a batch of 4 rows: $2 \cdot 4 \cdot 3 \cdot 2 = 48$ FLOPs for the
# product and $4 \cdot 2 = 8$ for the bias, 56 in all. Without a bias (`bias=False`, GPT's output
# layer), 48. $N$ is the number of *rows*: a Linear applies to the last axis, so an input of shape
# (B, T, d_in) - a batch of sequences - has $N = B \cdot T$ rows. For the first layer of the MNIST MLP
# at batch 128: $2 \cdot 128 \cdot 784 \cdot 256 + 128 \cdot 256 = 51{,}412{,}992$ FLOPs, 99.94% of them in
# the product. The bias is cheap, but it is not zero, and a counter that forgets it is wrong for
# every layer with one. (A warning when you compare numbers: some tools, fvcore for one, count a
# multiply-add as *one* "FLOP" - half of ours. Papers and MLPerf use 2, as we do.)
#
# Why count FLOPs at all, when you could time the layer? Because the count does not depend on the
# machine or its load, and *dividing* it by the measured time gives the one number that says how
# well the machine is used: achieved GFLOP/s (step 9). The count also tells you how cost grows:
# linear in the batch, and in each width - doubling both widths of a layer quadruples its FLOPs.
#
# The layer's shapes are all you need: `layer.in_features`, `layer.out_features`, and
# `layer.bias` (None without one). The given first line refuses an input whose last axis does not
# match, the same error the layer itself would raise.

# %% nbgrader={"grade": false, "grade_id": "linear-flops", "locked": false, "schema_version": 3, "solution": true, "task": false}
def linear_flops(layer, input_shape: tuple) -> int:
    """FLOPs of one forward of `layer` (a Linear) on an input of shape (..., in_features)."""
    if not input_shape or input_shape[-1] != layer.in_features:
        raise ValueError(f"linear_flops: expected an input of shape (..., {layer.in_features}), "
                         f"got {tuple(input_shape)}")
    # HINT: rows = the product of every axis but the last (math.prod); 2 FLOPs per multiply-add
    # HINT: of the product, plus one add per output number when layer.bias is not None
    ### BEGIN SOLUTION
    rows = math.prod(input_shape[:-1])
    total = 2 * rows * layer.in_features * layer.out_features
    if layer.bias is not None:
        total += rows * layer.out_features
    return int(total)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    print("Linear(3, 2) on (4, 3):            ", linear_flops(Linear(3, 2), (4, 3)), "(48 + 8 bias)")
    print("Linear(3, 2, bias=False) on (4, 3):", linear_flops(Linear(3, 2, bias=False), (4, 3)))
    print("Linear(784, 256) on (128, 784):    ", f"{linear_flops(mlp[0], (128, 784)):,}")
    print("Linear(8, 8) on (2, 5, 8):         ", linear_flops(Linear(8, 8), (2, 5, 8)), "(N = 2 * 5 rows)")

# %% nbgrader={"grade": true, "grade_id": "check-linear-flops", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("14", "linear_flops")

# %% [markdown]
# ## Step 3: the FLOPs of a convolution - output size first
#
# A `Conv2d(C_in, C_out, (kh, kw), stride=(sh, sw), padding=(ph, pw))` slides its $C_{out}$ filters
# over the padded input. Every output number is one dot product over a receptive field of
# $C_{in} k_h k_w$ inputs, so the count is "outputs times $2 C_{in} k_h k_w$" - and the only hard part
# is the number of outputs. Along the height, the padded input has $H + 2p_h$ rows; a window of
# $k_h$ rows fits at offsets $0, s_h, 2s_h, \dots$ as long as it does not run off the end, which is
#
# $$H_{out} = \left\lfloor \frac{H + 2p_h - k_h}{s_h} \right\rfloor + 1$$
#
# positions (the same for the width with $p_w, k_w, s_w$). The $+1$ counts the window at offset 0;
# the floor drops a last window that would not fit. Then
#
# $$\text{FLOPs} = 2\, N\, H_{out} W_{out}\, C_{out}\, C_{in} k_h k_w \;+\; N\, C_{out} H_{out} W_{out} \text{ (bias)}.$$
#
# Worked example: a batch of 2 images of 3 x 7 x 9 (C, H, W), `Conv2d(3, 4, (3, 2), stride=(2, 3),
# padding=(1, 0))`. Height: $\lfloor (7 + 2 - 3)/2 \rfloor + 1 = 4$; width: $\lfloor (9 + 0 - 2)/3
# \rfloor + 1 = 3$. That is $2 \cdot 4 \cdot 3 \cdot 4 = 96$ output numbers, each costing $2 \cdot 3 \cdot 3
# \cdot 2 = 36$ FLOPs, $3{,}456$ in all, plus 96 bias adds: $3{,}552$. Four classic slips each give a
# different wrong answer - forgetting the $+1$ ($H_{out} = 3$), the stride (every position: $H_{out} =
# 7$), the padding, or the bias - and the checks try each.
#
# **Systems view.** Convolutions have few parameters and most of the FLOPs: LeNet-5's first layer
# has 156 parameters and costs $2 \cdot 28 \cdot 28 \cdot 6 \cdot 25 + 4{,}704 = 239{,}904$ FLOPs per
# image, because each weight is reused at all 784 positions. Stride cuts the cost quadratically
# (stride 2 is a quarter of the outputs); the kernel size grows it quadratically. Module 09 runs
# the whole convolution as one matrix product (im2col), so the count above is exactly that
# product's $2 \cdot \text{rows} \cdot \text{inner} \cdot \text{cols}$.
#
# The layer stores `kernel_size`, `stride` and `padding` as (height, width) pairs; the given lines
# unpack them (an int stands for a square pair).

# %%
def _pair(v) -> tuple[int, int]:
    """3 -> (3, 3); (3, 5) -> (3, 5)."""
    if isinstance(v, (tuple, list)):
        a, b = v
        return int(a), int(b)
    return int(v), int(v)


# %% [markdown]
# Now the count itself: output height and width first, then FLOPs per output number, then the
# bias. (`layer.out_channels` is $C_{out}$; the input's channel axis must equal `layer.in_channels`.)

# %% nbgrader={"grade": false, "grade_id": "conv2d-flops", "locked": false, "schema_version": 3, "solution": true, "task": false}
def conv2d_flops(layer, input_shape: tuple) -> int:
    """FLOPs of one forward of `layer` (a Conv2d) on an input of shape (N, C_in, H, W)."""
    if len(input_shape) != 4 or input_shape[1] != layer.in_channels:
        raise ValueError(f"conv2d_flops: expected an input of shape (N, {layer.in_channels}, H, W), "
                         f"got {tuple(input_shape)}")
    n, c_in, h, w = input_shape
    (kh, kw), (sh, sw), (ph, pw) = _pair(layer.kernel_size), _pair(layer.stride), _pair(layer.padding)
    # HINT: H_out and W_out by the formula above (integer division; the +1 is the window at offset
    # HINT: 0); N * C_out * H_out * W_out outputs of C_in * kh * kw multiply-adds, + 1 each for a bias
    ### BEGIN SOLUTION
    ho = (h + 2 * ph - kh) // sh + 1
    wo = (w + 2 * pw - kw) // sw + 1
    outputs = n * layer.out_channels * ho * wo
    total = 2 * outputs * c_in * kh * kw
    if layer.bias is not None:
        total += outputs
    return int(total)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    from types import SimpleNamespace

    # a layer is only read for its hyper-parameters, so a namespace with the same attributes will do
    conv = SimpleNamespace(in_channels=3, out_channels=4, kernel_size=(3, 2), stride=(2, 3),
                           padding=(1, 0), bias=np.zeros(4))
    print("worked example:", conv2d_flops(conv, (2, 3, 7, 9)), "(expected 3,552)")
    lenet1 = SimpleNamespace(in_channels=1, out_channels=6, kernel_size=(5, 5), stride=(1, 1),
                             padding=(2, 2), bias=np.zeros(6))
    print("LeNet-5 conv1 per image:", f"{conv2d_flops(lenet1, (1, 1, 28, 28)):,}", "(expected 239,904)")

# %% nbgrader={"grade": true, "grade_id": "check-conv2d-flops", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("14", "conv2d_flops")

# %% [markdown]
# ## Step 4: the FLOPs of multi-head attention
#
# Module 12's `MultiHeadAttention(D, n_h)` on an input of shape $(B, T, D)$ does four matrix
# products:
#
# 1. `qkv`, a `Linear(D, 3D)`: $2 \cdot BT \cdot D \cdot 3D = 6BTD^2$ FLOPs (plus $3BTD$ bias adds);
# 2. the scores $S = QK^\top$, per head $(T, h_s) @ (h_s, T)$ with $h_s = D / n_h$: $2 T^2 h_s$ per
#    head, $2 B n_h T^2 h_s = 2BT^2D$ over the batch and all heads;
# 3. the weighted sum $PV$, per head $(T, T) @ (T, h_s)$: again $2BT^2D$;
# 4. `proj`, a `Linear(D, D)`: $2BTD^2$ (plus $BTD$).
#
# So attention costs $8BTD^2 + 4BT^2D$ FLOPs plus the biases. The number of heads does *not*
# appear: splitting $D$ into $n_h$ heads of $h_s$ gives the same arithmetic as one head of size $D$.
# The softmax and the $1/\sqrt{h_s}$ scale are a few FLOPs per score ($O(BT^2 n_h)$, elementwise)
# and are not counted, by the same convention as the other elementwise layers.
#
# Worked example: $B = 2$, $T = 5$, $D = 8$, 2 heads, with biases. `qkv`: $2 \cdot 10 \cdot 8 \cdot 24 +
# 10 \cdot 24 = 4{,}080$; `proj`: $2 \cdot 10 \cdot 8 \cdot 8 + 80 = 1{,}360$; scores and weighted sum:
# $2 \cdot 2 \cdot 2 \cdot 25 \cdot 8 = 1{,}600$. Total 7,040.
#
# **Systems view: the $T^2$ term.** The projections grow linearly with the sequence length, the
# scores quadratically. They are equal when $8D^2 = 4TD$, i.e. $T = 2D$: for the GPT of module 13
# ($D = 128$) attention proper overtakes the projections beyond 256 tokens. And the scores take
# memory too: $B n_h T^2$ float32 numbers per layer, saved for the backward pass. That quadratic
# term is why long contexts are expensive, and what FlashAttention-style kernels attack (they do
# not reduce the FLOPs; they never store the $T \times T$ matrix). A causal mask makes half of the
# scores useless, but module 12 computes them all and masks afterwards, so all of them count here.
#
# Reuse your `linear_flops` for the two projections (`layer.qkv` and `layer.proj`): then the
# biases are counted once, correctly, and only the two attention products are new.

# %% nbgrader={"grade": false, "grade_id": "attention-flops", "locked": false, "schema_version": 3, "solution": true, "task": false}
def attention_flops(layer, input_shape: tuple) -> int:
    """FLOPs of one forward of `layer` (a MultiHeadAttention) on x of shape (B, T, D):
    the qkv and proj Linear layers, the scores Q K^T and the weighted sum P V (softmax not counted)."""
    if len(input_shape) != 3 or input_shape[-1] != layer.embed_dim:
        raise ValueError(f"attention_flops: expected x of shape (B, T, {layer.embed_dim}), got "
                         f"{tuple(input_shape)}")
    b, t, d = input_shape
    # HINT: linear_flops(layer.qkv, input_shape) + linear_flops(layer.proj, input_shape), and
    # HINT: Q K^T and P V each 2 * B * T * T * D over all heads (n_h heads of D / n_h features)
    ### BEGIN SOLUTION
    projections = linear_flops(layer.qkv, input_shape) + linear_flops(layer.proj, input_shape)
    scores = 2 * b * t * t * d  # (B, nh, T, hs) @ (B, nh, hs, T)
    weighted = 2 * b * t * t * d  # (B, nh, T, T) @ (B, nh, T, hs)
    return int(projections + scores + weighted)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    attn = SimpleNamespace(embed_dim=8, num_heads=2, qkv=Linear(8, 24), proj=Linear(8, 8))
    print("B=2, T=5, D=8:", attention_flops(attn, (2, 5, 8)), "(expected 7,040)")
    for T in (64, 256, 1024):  # the GPT of module 13: D = 128
        big = SimpleNamespace(embed_dim=128, num_heads=4, qkv=Linear(128, 384), proj=Linear(128, 128))
        total, proj = attention_flops(big, (1, T, 128)), 8 * T * 128 ** 2
        print(f"T = {T:4d}: {total / 1e6:8.2f} MFLOP, projections {proj / total:5.1%} of it")

# %% nbgrader={"grade": true, "grade_id": "check-attention-flops", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("14", "attention_flops")

# %% [markdown]
# ## A whole model: `flops` and `flops_table` (given)
#
# A model is a tree of layers, and its FLOPs are the sum over the layers that do matrix arithmetic.
# To get each layer's *input shape* - which a Linear deep inside a GPT cannot know by itself - the
# given `flops_table` simply runs the model once, under `no_grad`, on zeros of the input shape
# (token ids for a model with an `Embedding`), and watches every layer's call: the layer's name, its
# type, its output shape, and its FLOPs from your formulas. A layer with a formula (Linear, Conv2d,
# MultiHeadAttention) is counted as a whole - its sub-layers are not visited again - and every other
# leaf layer (ReLU, LayerNorm, pooling, an Embedding lookup) gets a row with 0 FLOPs: we count
# matrix arithmetic only, the convention of the "$2N$ FLOPs per token" rule. Elementwise layers do
# a few FLOPs per number, but their cost is moving the numbers, which the memory side measures.
#
# How does it "watch a call" without editing any class? For the duration of a `with` block, each
# layer *instance* gets its own `forward` attribute, a wrapper that calls the real method and
# reports what went in and came out; `Module.__call__` finds the instance attribute before the
# class method. On exit the attribute is deleted and the instance is exactly what it was. The
# `Profiler` of step 10 uses the same watcher, with timing. `flops(layer, input_shape)` dispatches
# by the layer's type to your three formulas and falls back on the table's sum for anything else.

# %%
class FlopRow(NamedTuple):
    name: str  # the layer's path in the model ("0", "blocks.1.attn"); the root is its type name
    kind: str  # the layer's type, e.g. "Linear"
    output_shape: tuple
    flops: int  # FLOPs of one forward (0: not counted, e.g. an elementwise layer)


_COUNTED = ("MultiHeadAttention", "Conv2d", "Linear")  # the layers with a FLOP formula


def _counted_kind(layer) -> str | None:
    """'Linear', 'Conv2d' or 'MultiHeadAttention' (or a subclass of one), else None."""
    names = {cls.__name__ for cls in type(layer).__mro__}
    return next((kind for kind in _COUNTED if kind in names), None)


def flops(layer, input_shape) -> int:
    """Analytic FLOPs of one forward pass of `layer` (or a whole model) on `input_shape`."""
    shape = tuple(int(s) for s in input_shape)
    kind = _counted_kind(layer)
    if kind == "Linear":
        return linear_flops(layer, shape)
    if kind == "Conv2d":
        return conv2d_flops(layer, shape)
    if kind == "MultiHeadAttention":
        return attention_flops(layer, shape)
    return sum(row.flops for row in flops_table(layer, shape))


def _shape(value) -> tuple:
    """The shape of a Tensor / array (the first one of a tuple), else ()."""
    if isinstance(value, (tuple, list)) and value:
        value = value[0]
    if isinstance(value, (Tensor, np.ndarray)):
        return tuple(value.shape)
    return ()


def _nbytes(values) -> int:
    """Bytes of the Tensors / arrays in `values` (one value, or a tuple / list / dict of them)."""
    if isinstance(values, dict):
        values = list(values.values())
    if not isinstance(values, (tuple, list)):
        values = [values]
    return sum(v.data.nbytes if isinstance(v, Tensor) else v.nbytes
               for v in values if isinstance(v, (Tensor, np.ndarray)))


def _layers(target, prefix: str = "") -> list[tuple[str, object, bool]]:
    """(name, layer, whole) for every layer of `target` to watch. A layer with a FLOP formula, or
    with no sub-layers, is watched whole (its insides are not); a container is watched for its
    own time, and so are its children."""
    if not isinstance(target, Module):  # a loss, an activation: one callable
        return [(prefix or type(target).__name__, target, True)] if hasattr(target, "forward") else []
    found, inside = [], []
    for path, layer in target.named_modules():
        if not hasattr(layer, "forward") or any(path.startswith(p + ".") for p in inside):
            continue  # a plain function in a Sequential, or a part of a layer counted whole
        leaf = not isinstance(layer, Module) or not any(True for _ in layer.named_children())
        whole = leaf or _counted_kind(layer) is not None
        name = ".".join(filter(None, (prefix, path))) or type(layer).__name__
        found.append((name, layer, whole))
        if whole:
            if not path:  # the root itself is counted whole: nothing below it is watched
                return found
            inside.append(path)
    return found


class _Watch:
    """For the duration of a `with`, every layer of `targets` reports each forward call to
    `on_call(name, layer, whole, args, kwargs, out, seconds)`: an instance-level `forward`
    wrapper (the class is untouched), removed on exit. `seconds` is the layer's own time: the
    time spent in watched sub-layers (and in their reports) is subtracted."""

    def __init__(self, targets, on_call: Callable):
        self.targets, self.on_call = targets, on_call
        self.installed: list[tuple[object, object]] = []  # (layer, its previous instance attribute)
        self.stack: list[list[float]] = []  # per active call: [time spent in watched sub-calls]
        self.overhead = 0.0  # seconds spent in the reports (bookkeeping, not the model)

    def __enter__(self):
        seen: set[int] = set()
        models = [t for t in self.targets if isinstance(t, Module)]
        for target in self.targets:  # with several models, each one's names start "0.", "1.", ...
            several = len(models) > 1 and isinstance(target, Module)
            prefix = str(next(i for i, m in enumerate(models) if m is target)) if several else ""
            for name, layer, whole in _layers(target, prefix):
                if id(layer) not in seen:
                    seen.add(id(layer))
                    self._wrap(name, layer, whole)
        return self

    def _wrap(self, name: str, layer, whole: bool) -> None:
        original = layer.forward  # the bound method (or an instance attribute already there)
        self.installed.append((layer, vars(layer).get("forward")))

        @functools.wraps(original)
        def forward(*args, **kwargs):
            inner = [0.0]
            self.stack.append(inner)
            start = time.perf_counter()
            try:
                out = original(*args, **kwargs)
            finally:
                seconds = time.perf_counter() - start
                self.stack.pop()
            self.on_call(name, layer, whole, args, kwargs, out, seconds - inner[0])
            end = time.perf_counter()
            self.overhead += end - start - seconds
            if self.stack:  # the caller's own time excludes this call and its report
                self.stack[-1][0] += end - start
            return out

        layer.forward = forward

    def __exit__(self, *exc):
        for layer, previous in reversed(self.installed):
            if previous is None:
                vars(layer).pop("forward", None)
            else:
                layer.forward = previous
        self.installed.clear()
        return False


def _example_input(model, input_shape: tuple):
    """Zeros of `input_shape`: token ids (int64) for a model with an Embedding, else a float32 Tensor."""
    modules = model.modules() if isinstance(model, Module) else [model]
    if any("Embedding" in {c.__name__ for c in type(m).__mro__} for m in modules):
        return np.zeros(input_shape, dtype=np.int64)
    return Tensor(np.zeros(input_shape, dtype=np.float32))


def flops_table(model, input_shape) -> list[FlopRow]:
    """One row per watched layer call of one forward pass on `input_shape`, in call order."""
    rows: list[FlopRow] = []

    def record(name, layer, whole, args, kwargs, out, seconds):
        if whole:
            counted = _counted_kind(layer) is not None and _shape(args[:1])
            rows.append(FlopRow(name, type(layer).__name__, _shape(out),
                                flops(layer, _shape(args[:1])) if counted else 0))

    with no_grad(), _Watch([model], record):
        model(_example_input(model, tuple(int(s) for s in input_shape)))
    return rows


def print_flops_table(model, input_shape) -> None:
    """flops_table as text, with the share of each layer and the total."""
    rows = flops_table(model, input_shape)
    total = sum(r.flops for r in rows) or 1
    print(f"{'layer':24s} {'type':20s} {'output shape':18s} {'MFLOP':>10s} {'share':>6s}")
    for r in rows:
        print(f"{r.name:24s} {r.kind:20s} {str(r.output_shape):18s} {r.flops / 1e6:10.3f} "
              f"{r.flops / total:6.1%}")
    print(f"{'total':64s} {sum(r.flops for r in rows) / 1e6:10.3f}")


# %%
if __name__ == "__main__":
    print_flops_table(mlp, (128, 784))
    try:  # models of modules 09 and 13, if they are in your package
        from tinytorch.convolutions import Conv2d, MaxPool2d
        from tinytorch.layers import Flatten

        lenet = Sequential(Conv2d(1, 6, 5, padding=2), ReLU(), MaxPool2d(2), Conv2d(6, 16, 5), ReLU(),
                           MaxPool2d(2), Flatten(), Linear(400, 120), ReLU(), Linear(120, 84), ReLU(),
                           Linear(84, 10))
        print(f"\nLeNet-5, one image: {flops(lenet, (1, 1, 28, 28)):,} FLOPs")
        from tinytorch.transformers import GPT, GPTConfig

        gpt = GPT(GPTConfig())
        per_token = flops(gpt, (1, 64)) / 64
        print(f"GPT of module 13 at T = 64: {per_token / 1e6:.3f} MFLOP per token "
              f"(module 13's estimate: 1.72)")
    except ModuleNotFoundError as missing:
        print(f"\n({missing.name} is not in your package yet: the LeNet-5 and GPT counts come later)")

# %% nbgrader={"grade": true, "grade_id": "check-flops-table", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("14", "test_flops_of")  # the MLP, and LeNet-5 and a GPT when modules 09 and 13 are there

# %% [markdown]
# # Part 2 - Memory
#
# ## Step 5: the bytes a model holds
#
# Training holds up to four kinds of arrays, and the first three are easy to count exactly:
#
# - **parameters**: every distinct `Parameter`, `p.data.nbytes` bytes (4 per float32 number, 8 per
#   float64 one - count bytes, not elements);
# - **gradients**: the `.grad` arrays that exist right now - after a backward pass one per
#   parameter that requires a gradient, and none for a frozen one (`requires_grad=False`) or
#   after `zero_grad()` (which sets them to `None`);
# - **optimizer state**: what the optimizer keeps per parameter in `optimizer.state[p]`, a dict:
#   SGD with momentum keeps one `momentum_buffer`, Adam two moments `exp_avg` and `exp_avg_sq`, plain
#   SGD nothing. Count the arrays; the step counters are Python ints, not arrays, and do not count.
#   The state is created lazily, on the first `step()`, so measure after one;
# - **activations**: the intermediate results the backward pass needs (step 6).
#
# Worked example: the MNIST MLP's 235,146 float32 parameters are 940,584 bytes. After a backward
# pass its gradients are another 940,584; Adam's two moments are $2 \cdot 940{,}584 = 1{,}881{,}168$
# after the first step. Total: 3,762,336 bytes, **4x the model**. That "weights x 4" (16 bytes per
# parameter for float32 Adam) is the rule of thumb for training memory before activations: a
# 7-billion-parameter model needs 112 GB just for these three in float32, which is why large
# models train with 16-bit weights and sharded optimizer states. SGD with momentum needs 3x, plain
# SGD 2x, and inference 1x - or a quarter of that in int8 (module 15).
#
# The result is a dict with the keys `parameters`, `gradients`, `optimizer_state` and `total`
# (their sum), all in bytes; without an optimizer its state is 0.

# %% nbgrader={"grade": false, "grade_id": "memory-bytes", "locked": false, "schema_version": 3, "solution": true, "task": false}
def memory_bytes(model, optimizer=None) -> dict:
    """Bytes held now by the model's parameters, their gradients, and the optimizer's state arrays:
    {"parameters": ..., "gradients": ..., "optimizer_state": ..., "total": ...}."""
    # HINT: p.data.nbytes over model.parameters(); p.grad.data.nbytes where p.grad is not None;
    # HINT: for each dict in optimizer.state.values(), the nbytes of its np.ndarray values
    ### BEGIN SOLUTION
    params = model.parameters()
    parameters = sum(p.data.nbytes for p in params)
    gradients = sum(p.grad.data.nbytes for p in params if p.grad is not None)
    state = 0
    if optimizer is not None:
        for buffers in optimizer.state.values():
            state += sum(v.nbytes for v in buffers.values() if isinstance(v, np.ndarray))
    return {"parameters": int(parameters), "gradients": int(gradients),
            "optimizer_state": int(state), "total": int(parameters + gradients + state)}
    ### END SOLUTION


# %%
if __name__ == "__main__":
    from tinytorch.losses import CrossEntropyLoss
    from tinytorch.optimizers import Adam

    rng = np.random.default_rng(0)
    xb = Tensor(rng.standard_normal((128, 784)).astype(np.float32))
    yb = rng.integers(0, 10, 128)
    opt = Adam(mlp.parameters(), lr=1e-3)
    print("fresh:        ", memory_bytes(mlp, opt))
    loss = CrossEntropyLoss()(mlp(xb), yb)
    loss.backward()
    print("after backward:", memory_bytes(mlp, opt))
    opt.step()
    print("after step:   ", memory_bytes(mlp, opt), "(parameters x 4)")
    opt.zero_grad()

# %% nbgrader={"grade": true, "grade_id": "check-memory-bytes", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("14", "memory_bytes")

# %% [markdown]
# ## Step 6: the peak memory of a training step, measured
#
# Activations are the part you cannot read off the model: they depend on the batch, the input size,
# and on which intermediate results each backward rule saves. Module 06 counted them by hand for
# the MNIST MLP at batch 128 (805 KB). Here you *measure* them: Python's standard library module
# `tracemalloc` records every memory allocation - including NumPy's, since NumPy reports its array
# buffers to it - and remembers the highest total reached (the **peak**).
#
# The recipe for "the peak of one call":
#
# 1. `tracemalloc.start()` if it is not already tracing (`tracemalloc.is_tracing()`); remember
#    whether you started it;
# 2. `tracemalloc.reset_peak()` and read the memory traced *now* (`get_traced_memory()` returns
#    `(current, peak)`): the baseline - what was already allocated before the call (if tracing was
#    on) is not the call's;
# 3. call `step_fn()`, in a `try` so that tracing is stopped even if it raises;
# 4. the answer is `peak - baseline`; stop tracing only if you started it.
#
# The peak, not the current value at the end: a training step frees its graph when it returns,
# so what is still allocated afterwards is close to nothing, while in the middle of the backward
# pass the graph, its saved activations and the gradients all coexist. For example, a function that
# makes two arrays of 4 MB, both alive at once, peaks at 8 MB; one that makes the first, drops it
# and then makes the second peaks at 4 MB - even though both allocated 8 MB in total.
#
# **What it costs and what it misses.** Tracing slows allocation-heavy Python code down (every
# allocation records a traceback frame), so never time code while tracing. It counts Python
# objects too (small), and only memory allocated through Python's and NumPy's allocators:
# BLAS's internal scratch buffers are not seen. The first step of a fresh optimizer also allocates
# its state, so measure a steady-state step (the second) to see the activations.

# %% nbgrader={"grade": false, "grade_id": "peak-training-memory", "locked": false, "schema_version": 3, "solution": true, "task": false}
def peak_training_memory(step_fn: Callable[[], object]) -> int:
    """The peak bytes allocated above the starting level during one call of `step_fn()`
    (tracemalloc; tracing is left as it was found)."""
    # HINT: the four steps above: remember whether YOU started tracing; reset the peak and read the
    # HINT: baseline; call step_fn() in a try whose finally reads the peak (and stops only your tracing)
    ### BEGIN SOLUTION
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()  # (current, peak): the current level
    try:
        step_fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        if started:
            tracemalloc.stop()
    return int(peak - base)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    def both_alive():
        a = np.ones(1_000_000, np.float32)  # 4 MB
        b = np.ones(1_000_000, np.float32)  # 4 MB more, while a is alive
        return float(a[0] + b[0])

    def one_at_a_time():
        a = np.ones(1_000_000, np.float32)
        del a
        b = np.ones(1_000_000, np.float32)  # reuses the room a had
        return float(b[0])

    print(f"two arrays alive at once: {peak_training_memory(both_alive) / 1e6:.2f} MB")
    print(f"one after the other:      {peak_training_memory(one_at_a_time) / 1e6:.2f} MB")

    def mlp_step():
        opt.zero_grad()
        CrossEntropyLoss()(mlp(xb), yb).backward()
        opt.step()

    def inference():
        with no_grad():
            mlp(xb)

    mlp_step()  # the first step allocates Adam's state: measure the second
    print("MNIST MLP at batch 128, peak bytes allocated by ...")
    print(f"  the forward pass, recording the graph: {peak_training_memory(lambda: CrossEntropyLoss()(mlp(xb), yb)):>9,}")
    print(f"  forward + backward:                    "
          f"{peak_training_memory(lambda: (opt.zero_grad(), CrossEntropyLoss()(mlp(xb), yb).backward())):>9,}")
    print(f"  the optimizer step alone:              {peak_training_memory(opt.step):>9,}")
    print(f"  a whole training step:                 {peak_training_memory(mlp_step):>9,}")
    print(f"  inference (no_grad):                   {peak_training_memory(inference):>9,}")

# %% [markdown]
# **Reading the measurement.** Unlike times, allocations barely vary: these numbers repeat to within
# a few hundred bytes (Python's own objects). Measured here: about 428 KB, 1.48 MB, 804 KB,
# 1,746,248 bytes and 263 KB. The forward pass with a graph keeps every intermediate alive: the two
# hidden layers and their ReLUs, the logits, the saved probabilities - the 404 KB module 06 counted
# (the input batch is not the step's: it existed before), plus some 24 KB of small arrays and
# objects. The backward adds the gradients, 940,584 bytes of them, while the activations are still
# alive. And the whole step's peak, 1.75 MB, is in neither: it is in **Adam's step**, which holds
# all the gradients (940,584 bytes) and one scratch array as large as the largest weight (802,816
# bytes for the 784 x 256 matrix; module 07's Adam allocates one `tmp` per parameter, in turn) -
# 1,743,400 bytes, 3 KB short of the measured peak. By then the graph is gone: the loss went out of
# scope when `backward()` returned. Inference without a graph needs only the two largest
# neighbouring activations, 2 x 131 KB.
#
# So "activation memory" is not one number: which arrays coexist decides the peak. At batch 4,096
# the activations grow 32x (module 06: 25.8 MB) and the forward-backward phase dominates; at batch 128
# the optimizer's scratch does. Frameworks fight the first with gradient checkpointing (recompute
# activations instead of keeping them) and the second with fused, in-place optimizer kernels.

# %% nbgrader={"grade": true, "grade_id": "check-peak-training-memory", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("14", "peak_training_memory")

# %% [markdown]
# # Part 3 - Time
#
# ## Step 7: percentiles
#
# Time the same call fifty times and you get fifty different numbers. The first few are slow
# (caches are cold, pages are being mapped, BLAS starts its threads), a few later ones are slow
# (another process got the core, the garbage collector ran), and the rest cluster near a floor.
# A single number hides all of that, and the *mean* is pulled up by the rare slow calls. So
# benchmarks report **percentiles**: the $p$-th percentile is the value below which $p$% of the
# measurements fall. The median (p50) is the typical call; p90 and p99 are the tail - what one
# request in ten, or in a hundred, waits at least as long as. MLPerf's single-stream scenario
# (module 19) is scored on p90.
#
# With $n$ measurements there is no "exact" 90th one, so interpolate. Sort them into $x_0 \le x_1 \le
# \dots \le x_{n-1}$; the $q$-th percentile sits at the fractional rank
#
# $$r = \frac{q}{100}\,(n - 1), \qquad \text{percentile} = x_{\lfloor r \rfloor} + (r - \lfloor r \rfloor)\,(x_{\lfloor r \rfloor + 1} - x_{\lfloor r \rfloor}),$$
#
# numpy's default ("linear") method: q = 0 is the minimum, q = 100 the maximum, q = 50 of an even
# count the mean of the middle two. Worked example: times $[5, 1, 4, 2, 3]$ ms sort to
# $[1, 2, 3, 4, 5]$; p50 has $r = 0.5 \cdot 4 = 2$, so $x_2 = 3$; p90 has $r = 3.6$, so $x_3 + 0.6 (x_4 -
# x_3) = 4.6$ ms. The two classic slips: ranking with $n$ instead of $n - 1$ ($r = 4.5$ runs off the
# end) and forgetting to sort (then "p90" is just whatever was measured late).
#
# At $r = n - 1$ exactly (q = 100) there is no $x_{\lfloor r \rfloor + 1}$: clamp the upper index to
# $n - 1$. The given lines refuse an empty list and a $q$ outside $[0, 100]$.

# %% nbgrader={"grade": false, "grade_id": "percentile", "locked": false, "schema_version": 3, "solution": true, "task": false}
def percentile(times, q: float) -> float:
    """The q-th percentile (0 <= q <= 100) of `times` by linear interpolation between the sorted
    values at the two ranks around r = q / 100 * (n - 1) (numpy's default method)."""
    x = np.asarray(times, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("percentile: no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile: q must be in [0, 100], got {q}")
    # HINT: sort a copy (np.sort); the fractional rank r above; interpolate between the values at
    # HINT: floor(r) and at the next rank, clamped to n - 1
    ### BEGIN SOLUTION
    x = np.sort(x)
    r = q / 100.0 * (x.size - 1)
    lo = int(math.floor(r))
    hi = min(lo + 1, x.size - 1)
    return float(x[lo] + (r - lo) * (x[hi] - x[lo]))
    ### END SOLUTION


# %%
if __name__ == "__main__":
    times = [5.0, 1.0, 4.0, 2.0, 3.0]
    for q in (0, 50, 90, 99, 100):
        print(f"p{q:<3d} = {percentile(times, q):.2f}   numpy: {np.percentile(times, q):.2f}")

# %% nbgrader={"grade": true, "grade_id": "check-percentile", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("14", "percentile")

# %% [markdown]
# ## Step 8: a latency timer with warm-up
#
# `measure_latency(fn, warmup=5, repeats=50)` is the timer everything after this module uses:
#
# 1. **Warm up**: call `fn()` `warmup` times without timing them. The first calls pay one-time
#    costs - the OS mapping fresh memory pages, caches filling, BLAS spinning up its threads,
#    NumPy allocating its first large buffers - that a service running for hours never pays again.
# 2. **Time each call on its own**: read the clock just before and just after each of the
#    `repeats` calls. Timing the whole loop and dividing by `repeats` gives the mean only, and
#    throws the distribution away - no p90, no p99.
# 3. **Summarise** in milliseconds: the times themselves (a float64 array, in call order), their
#    mean, p50, p90 and p99 with your `percentile`, and the minimum.
#
# The clock is `time.perf_counter()`: monotonic (it never jumps when the wall clock is adjusted)
# and with the best resolution the OS has (nanoseconds on Linux; two readings cost about 90 ns
# here, measured). `time.time()` is neither. The `timer` argument lets the checks substitute a fake clock, so that they can tell
# exactly which calls you timed.
#
# **What the numbers mean, and NumPy's limits.** On a quiet machine p50 and min are close and
# p99 is a few percent above them. On a shared machine (the one this course was written on has 2
# cores and many jobs) p99 can be several times p50 - that is the machine, not your code; the
# minimum is the best estimate of the code's own cost, the percentiles describe what a user
# would see. For small inputs a NumPy framework is dominated by per-call Python overhead - a few
# microseconds per op, whatever the tensor size - so latency at batch 1 measures the interpreter,
# not the arithmetic (module 18 and milestone 06 make this visible).

# %%
@dataclass
class LatencyStats:
    """Wall-clock times of `repeats` calls after warm-up, in milliseconds."""

    times_ms: np.ndarray  # (repeats,) float64, in call order
    mean: float
    p50: float
    p90: float
    p99: float
    min: float

    def __str__(self) -> str:
        return (f"p50 {self.p50:.3f} ms  p90 {self.p90:.3f} ms  p99 {self.p99:.3f} ms  "
                f"mean {self.mean:.3f} ms  min {self.min:.3f} ms  ({len(self.times_ms)} runs)")


# %% [markdown]
# Now the timer: warm-up calls first, then one clock reading before and one after each timed
# call, then the statistics.

# %% nbgrader={"grade": false, "grade_id": "measure-latency", "locked": false, "schema_version": 3, "solution": true, "task": false}
def measure_latency(fn: Callable[[], object], warmup: int = 5, repeats: int = 50,
                    timer: Callable[[], float] = time.perf_counter) -> LatencyStats:
    """Call fn() `warmup` times untimed, then time `repeats` calls one by one with `timer`
    (seconds); return the times in ms and their mean, p50, p90, p99 and minimum."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"measure_latency: need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    # HINT: warm-up calls untimed; then read timer() just before and just after each timed call;
    # HINT: times in ms in a float64 array; p50/p90/p99 with your percentile
    ### BEGIN SOLUTION
    for _ in range(warmup):
        fn()
    times = np.empty(repeats, dtype=np.float64)
    for i in range(repeats):
        start = timer()
        fn()
        times[i] = (timer() - start) * 1e3
    return LatencyStats(times, float(times.mean()), percentile(times, 50), percentile(times, 90),
                        percentile(times, 99), float(times.min()))
    ### END SOLUTION


# %%
if __name__ == "__main__":
    a64 = rng.standard_normal((256, 256)).astype(np.float32)
    print("256 x 256 matmul:   ", measure_latency(lambda: a64 @ a64, warmup=5, repeats=50))
    x1 = Tensor(rng.standard_normal((1, 784)).astype(np.float32))
    with no_grad():
        print("MLP forward, batch 1:", measure_latency(lambda: mlp(x1), warmup=5, repeats=200))
        print("MLP forward, bs 128: ", measure_latency(lambda: mlp(xb), warmup=5, repeats=50))

# %% nbgrader={"grade": true, "grade_id": "check-measure-latency", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("14", "measure_latency")

# %% [markdown]
# ## The machine's ceilings, measured (given)
#
# "Achieved 40 GFLOP/s" means nothing until you know what the machine can do. Two numbers bound
# every kernel, and both are measured here rather than read off a data sheet:
#
# - **matmul peak**: the best of 20 float32 products of $512 \times 512$ matrices through NumPy's
#   BLAS, $2n^3$ FLOPs each: the fastest arithmetic NumPy reaches on this machine, with as many
#   threads as BLAS uses (`OPENBLAS_NUM_THREADS` sets it; the checks and notebooks here use 1). The
#   data sheet's peak (cores x clock x SIMD width x 2 for fused multiply-add) is higher; BLAS gets
#   close to it on large square matrices and far from it on small or skinny ones.
# - **memory bandwidth**: the best of 20 copies of a 16 MB array (`np.copyto`), counting the bytes
#   read plus the bytes written. 16 MB is beyond the per-core caches (L1, L2), so this is the speed
#   of the last-level cache or of main memory, whichever holds it - the speed of every elementwise op
#   (ReLU, adds, im2col's copies) on arrays of that size. Small arrays stream faster, from L2.
#
# Why the *best* of *many short* runs? On the machine this course was written on (2 cores, shared
# with training jobs that run at a higher priority) a run is regularly suspended for tens to
# hundreds of milliseconds. One measured session: $512 \times 512$ products, 2.5 ms each, best of
# 20: 132 GFLOP/s on one thread; $1024 \times 1024$ products, 20 ms each, best of 20: 1.6 GFLOP/s -
# *every one* of the longer runs had been suspended at least once. The copy of 64 MB the same way:
# 0.2 GB/s; of 8 MB, 14.5 GB/s; of 1 MB (in L2), 40 GB/s. A ceiling measured badly is far too low,
# and then every layer seems to beat it: measure short, repeat, keep the best, and be suspicious
# of any "% of peak" above 100%.

# %%
def _best_seconds(fn: Callable[[], object], repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_peak_gflops(n: int = 512, repeats: int = 20) -> float:
    """This machine's float32 matrix-multiply speed through NumPy: best of `repeats` n x n products."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), dtype=np.float32)
    np.matmul(a, b, out=out)  # warm-up: BLAS threads, page faults
    return 2 * n ** 3 / _best_seconds(lambda: np.matmul(a, b, out=out), repeats) / 1e9


def memory_bandwidth_gbs(megabytes: int = 16, repeats: int = 20) -> float:
    """Main-memory bandwidth in GB/s: best of `repeats` copies of a `megabytes` array (read + write)."""
    src = np.ones(megabytes * 2 ** 20 // 4, dtype=np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # warm-up: map the pages of dst
    return 2 * src.nbytes / _best_seconds(lambda: np.copyto(dst, src), repeats) / 1e9


# %%
if __name__ == "__main__":
    PEAK = matmul_peak_gflops()
    BANDWIDTH = memory_bandwidth_gbs()
    print(f"matmul peak {PEAK:.1f} GFLOP/s, memory bandwidth {BANDWIDTH:.1f} GB/s: "
          f"the ridge at {PEAK / BANDWIDTH:.1f} FLOP per byte")
    for n in (32, 128, 512):
        print(f"  a {n} x {n} matmul reaches {matmul_peak_gflops(n, repeats=20):6.1f} GFLOP/s")
    for mb in (1, 16):
        print(f"  a copy of {mb:2d} MB streams at {memory_bandwidth_gbs(mb):6.1f} GB/s")

# %% [markdown]
# ## Step 9: the roofline
#
# The **roofline model** (Williams, Waterman and Patterson, 2009) puts the two ceilings on one
# chart. A kernel that does $F$ FLOPs while moving $M$ bytes to and from memory has an
# **arithmetic intensity** $I = F / M$ FLOP per byte. Memory delivers at most $\beta$ bytes per
# second (the bandwidth), so the kernel cannot exceed $I \beta$ FLOP/s; the cores cannot exceed the
# peak $\pi$. Its attainable performance is the lower of the two roofs:
#
# $$P_{\max}(I) = \min(\pi,\; I \cdot \beta).$$
#
# Below the **ridge point** $I = \pi / \beta$ a kernel is **memory-bound** (faster arithmetic would not
# help; moving fewer bytes would); above it, **compute-bound**. The fraction `achieved / attainable`
# says how close to its own roof a kernel runs.
#
# Worked example, with round numbers $\pi = 100$ GFLOP/s and $\beta = 10$ GB/s (ridge at 10 FLOP/byte):
#
# - a ReLU over $10^6$ float32 numbers reads 4 MB and writes 4 MB for $10^6$ FLOPs: $I = 0.125$, roof
#   $1.25$ GFLOP/s, memory-bound - a ReLU can never use the cores;
# - `Linear(784, 256)` at batch 128 does 51.4 MFLOP and must at least read $x$ (401 KB) and $W$
#   (803 KB) and write $y$ (131 KB): $I \approx 38$, compute-bound, roof 100 GFLOP/s. If it took 4 ms
#   it would achieve $12.9$ GFLOP/s, 13% of its roof. (On the machine this course was written on it
#   takes about 0.59 ms, 88 GFLOP/s - the profile at the end of this module shows it.)
#
# The bytes here are the *minimum* traffic - each input, weight and output touched once; a real
# kernel moves more (a big matmul re-reads tiles from cache, NumPy writes temporaries), so the true
# intensity is lower. Which is fine: the roofline is a bound, and the interesting question is how
# far below it a layer runs and why. In a NumPy framework the answer for small layers is usually
# "neither roof": per-op Python overhead of microseconds dwarfs a kernel that needs nanoseconds.
#
# Return a `RooflinePoint` (given below) with the intensity, the attainable GFLOP/s, the achieved
# GFLOP/s ($F / t / 10^9$), their ratio, and `bound` = `"memory"` or `"compute"`: memory when the
# slanted roof $I \beta$ is strictly the lower one (at the ridge itself, where the two are equal,
# call it compute-bound: more bandwidth alone would not make it faster).

# %%
@dataclass
class RooflinePoint:
    intensity: float  # FLOP per byte moved
    attainable_gflops: float  # min(peak, intensity * bandwidth)
    achieved_gflops: float  # flops / seconds / 1e9
    fraction: float  # achieved / attainable
    bound: str  # "memory" (below the ridge) or "compute"


# %% [markdown]
# The roof, and where a measurement sits under it:

# %% nbgrader={"grade": false, "grade_id": "roofline", "locked": false, "schema_version": 3, "solution": true, "task": false}
def roofline(flops: float, nbytes: float, seconds: float, peak_gflops: float,
             bandwidth_gbs: float) -> RooflinePoint:
    """Where a kernel of `flops` FLOPs moving `nbytes` bytes, measured at `seconds`, sits under the
    roofline of a machine with `peak_gflops` GFLOP/s and `bandwidth_gbs` GB/s."""
    if nbytes <= 0 or seconds <= 0:
        raise ValueError(f"roofline: nbytes and seconds must be positive, got {nbytes}, {seconds}")
    # HINT: intensity = flops / nbytes; slanted roof = intensity * bandwidth_gbs (GFLOP/s);
    # HINT: attainable = min(peak, slanted); achieved = flops / seconds / 1e9
    ### BEGIN SOLUTION
    intensity = flops / nbytes
    slanted = intensity * bandwidth_gbs
    attainable = min(peak_gflops, slanted)
    achieved = flops / seconds / 1e9
    return RooflinePoint(intensity, attainable, achieved, achieved / attainable,
                         "memory" if slanted < peak_gflops else "compute")
    ### END SOLUTION


# %%
if __name__ == "__main__":
    print("ReLU of 1e6 numbers:", roofline(1e6, 8e6, 1e-3, peak_gflops=100, bandwidth_gbs=10))
    print("Linear(784, 256):   ", roofline(51_412_992, 401_408 + 802_816 + 131_072, 4e-3, 100, 10))

# %% nbgrader={"grade": true, "grade_id": "check-roofline", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("14", "roofline")

# %% [markdown]
# # Part 4 - The Profiler
#
# ## How it sees a training step
#
# `with Profiler(model, loss_fn, optimizer) as prof:` around a training step - forward, loss,
# backward, optimizer step - records one **event** per thing that happened, and `prof.table()`
# turns the events into one row per layer, like the summary of PyTorch's profiler. To see the
# step without changing a line of the framework, it listens in three places, each only for the
# duration of the `with` block:
#
# - **Forward**: the watcher of `flops_table` - an instance-level `forward` wrapper on every layer
#   of the model (and on the loss). Each call becomes a `forward` event with the layer's *own*
#   time (a container like `Sequential` or a transformer block reports its time minus its watched
#   children's), its FLOPs (your formulas, on the real input shape) and its minimum bytes moved
#   (input + weights + output).
# - **Backward**: autograd has no hooks, but it has one table, `autograd.BACKWARD`, that the engine
#   looks every rule up in. On entry the Profiler replaces each rule by a timed wrapper of *itself*
#   (`functools.wraps` keeps its name, so error messages still name the real rule); on exit it puts
#   each original back. No class, no module function is edited; a rule registered while the block
#   runs is simply not timed.
# - **Who owns a backward node?** When a layer's forward returns, the Profiler walks the graph from
#   its output back to its inputs and labels every node on the way with the layer's name (weak
#   references, so the labels keep nothing alive). When the engine later calls the rule of a
#   labelled node, the time goes to that layer; an unlabelled node (an op outside any watched
#   layer, such as a loss you did not pass in) gets a row named after its op.
# - **Optimizer**: an instance-level wrapper of `optimizer.step` - a `step` event.
#
# What it cannot see is reported, not hidden: the engine's own work between rules (topological
# sort, summing gradients), `zero_grad`, and Python code between layers. `prof.wall_ms` is the time
# of the whole block, `prof.overhead_ms` the Profiler's own bookkeeping, and `prof.print()` shows
# the rest as "not attributed".

# %%
@dataclass
class ProfileEvent:
    name: str  # the layer ("0", "blocks.1.attn", "CrossEntropyLoss", "Adam.step") or op ("sum")
    kind: str  # the layer's type; "op" for a node outside every watched layer; "optimizer"
    phase: str  # "forward", "backward" or "step"
    seconds: float
    flops: int = 0  # forward events of counted layers: FLOPs of this call
    nbytes: int = 0  # forward events of layers watched whole: input + weights + output bytes


@dataclass
class ProfileRow:
    name: str
    kind: str
    calls: int = 0  # forward (or step) events; a row with only backward events: those
    forward_ms: float = 0.0
    backward_ms: float = 0.0
    step_ms: float = 0.0
    total_ms: float = 0.0  # forward + backward + step
    flops: int = 0  # summed over the forward calls
    nbytes: int = 0  # summed over the forward calls
    gflops: float = 0.0  # forward FLOPs / forward seconds / 1e9 (0 without FLOPs or time)


# %% [markdown]
# ## Step 10: `Profiler.table()` - from events to the summary
#
# The mechanism above is given; what you write is the summary, `table()`. It turns `self.events`
# into one `ProfileRow` per event `name`, in four moves:
#
# 1. **Group** the events by name (the first event of a name fixes the row's `kind`).
# 2. **Add up** each phase in milliseconds: `forward` events into `forward_ms` (and their `flops`
#    and `nbytes` into the row's), `backward` events into `backward_ms`, `step` events into
#    `step_ms`. One layer call is one forward event but often *several* backward events (every
#    node of the layer's graph has its own rule: for attention, about ten), so **`calls` counts the
#    forward and step events** - and only a row that has neither (an op seen in the backward pass
#    only) counts its backward events.
# 3. **Derive** `total_ms` = forward + backward + step, and `gflops` = the row's forward FLOPs over
#    its forward *seconds*, in units of $10^9$ (0.0 when the row has no FLOPs or no forward time).
#    Use the forward time only: the FLOPs counted are the forward's.
# 4. **Sort** by `total_ms`, largest first - the row at the top is where the time goes. Use a stable
#    sort (`sorted` is), so rows with equal totals stay in the order they first appeared.
#
# Worked example: events `("fc", forward, 2 ms, 1e6 FLOPs)`, `("fc", backward, 3 ms)`,
# `("fc", backward, 1 ms)`, `("sum", backward, 0.5 ms)` give two rows: `fc` with 1 call, 2 ms forward,
# 4 ms backward, total 6 ms, 0.5 GFLOP/s; then `sum`, 1 call (its single backward event), 0.5 ms.
#
# Then `prof.print(peak_gflops=...)` prints the table with each row's share of the attributed time
# and its GFLOP/s as a percentage of the matmul peak, and `prof.roofline(peak, bandwidth)` gives
# your `roofline` point of every layer with FLOPs.

# %% nbgrader={"grade": false, "grade_id": "profiler", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Profiler:
    """with Profiler(model, loss_fn, optimizer) as prof: <a training step>

    Forward time per layer (instance-level forward wrappers), backward time per layer (the
    autograd rules, timed while the block runs and put back on exit), optimizer.step time.
    prof.table() -> [ProfileRow] sorted by total time; prof.print(); prof.roofline(peak, bw).
    Entering the same Profiler again adds to its events.
    """

    def __init__(self, *watch):
        self.watch = watch  # models, losses (anything with .forward), optimizers (.step)
        self.events: list[ProfileEvent] = []
        self.wall_ms = 0.0  # the time inside the `with` blocks
        self.overhead_ms = 0.0  # the Profiler's own bookkeeping
        self._owners: dict[int, tuple] = {}  # id(node) -> (weakref to the node, layer name, kind)
        self._rules: dict[str, tuple] = {}  # op -> (original rule, its timed wrapper)
        self._steps: list[tuple] = []  # (optimizer, its previous instance attribute `step`)
        self._watcher: _Watch | None = None

    # --- the mechanism (given) --------------------------------------------------------------
    def __enter__(self) -> "Profiler":
        optimizers = [w for w in self.watch if hasattr(w, "param_groups") and hasattr(w, "step")]
        self._watcher = _Watch([w for w in self.watch if not any(w is o for o in optimizers)],
                               self._on_forward)
        self._watcher.__enter__()
        for op, rule in list(autograd.BACKWARD.items()):
            timed = self._timed_rule(op, rule)
            self._rules[op] = (rule, timed)
            autograd.BACKWARD[op] = timed
        for opt in optimizers:
            self._steps.append((opt, vars(opt).get("step")))
            opt.step = self._timed_step(opt, opt.step)
        self._bookkeeping = 0.0
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> bool:
        self.wall_ms += (time.perf_counter() - self._start) * 1e3
        for op, (rule, timed) in self._rules.items():
            if autograd.BACKWARD.get(op) is timed:  # put back only what is still ours
                autograd.BACKWARD[op] = rule
        self._rules.clear()
        for opt, previous in reversed(self._steps):
            if previous is None:
                vars(opt).pop("step", None)
            else:
                opt.step = previous
        self._steps.clear()
        self._watcher.__exit__(*exc)
        self.overhead_ms += (self._watcher.overhead + self._bookkeeping) * 1e3
        self._owners.clear()
        return False

    def _on_forward(self, name, layer, whole, args, kwargs, out, seconds) -> None:
        n_flops = nbytes = 0
        if whole:
            x_shape = _shape(args[:1])
            if _counted_kind(layer) is not None and x_shape:
                n_flops = flops(layer, x_shape)
            params = layer.parameters() if hasattr(layer, "parameters") else []
            nbytes = _nbytes(list(args)) + _nbytes(kwargs) + _nbytes(out) + sum(p.data.nbytes for p in params)
        self.events.append(ProfileEvent(name, type(layer).__name__, "forward", seconds, n_flops, nbytes))
        # label the nodes this call created: from its outputs back to its inputs
        stop = {id(v) for v in (*args, *kwargs.values()) if isinstance(v, Tensor)}
        stack = [t for t in (out if isinstance(out, (tuple, list)) else (out,)) if isinstance(t, Tensor)]
        seen: set[int] = set()
        while stack:
            node = stack.pop()
            if node._op is None or id(node) in stop or id(node) in seen:
                continue
            seen.add(id(node))
            owner = self._owners.get(id(node))
            if owner is None or owner[0]() is not node:  # unlabelled (or a dead node's old id)
                self._owners[id(node)] = (weakref.ref(node), name, type(layer).__name__)
            stack.extend(node._parents)

    def _timed_rule(self, op: str, rule):
        @functools.wraps(rule)
        def timed(g, out):
            start = time.perf_counter()
            try:
                return rule(g, out)
            finally:
                end = time.perf_counter()
                owner = self._owners.get(id(out))
                if owner is not None and owner[0]() is out:
                    self.events.append(ProfileEvent(owner[1], owner[2], "backward", end - start))
                else:
                    self.events.append(ProfileEvent(op, "op", "backward", end - start))
                self._bookkeeping += time.perf_counter() - end

        return timed

    def _timed_step(self, opt, step):
        name = f"{type(opt).__name__}.step"

        @functools.wraps(step)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return step(*args, **kwargs)
            finally:
                self.events.append(ProfileEvent(name, "optimizer", "step", time.perf_counter() - start))

        return timed

    # --- the summary (yours) ----------------------------------------------------------------
    def table(self) -> list[ProfileRow]:
        """One ProfileRow per event name: calls, forward/backward/step ms, total, FLOPs, bytes,
        forward GFLOP/s; sorted by total_ms, largest first (stable)."""
        # HINT: rows = {} by name; add seconds * 1e3 to the phase's field; forward also adds flops and
        # HINT: nbytes; calls = forward + step events (backward events only if there are none);
        # HINT: total = the three phases; gflops = flops / (forward_ms / 1e3) / 1e9; sort by total
        ### BEGIN SOLUTION
        rows: dict[str, ProfileRow] = {}
        backward_calls: dict[str, int] = {}
        for e in self.events:
            row = rows.get(e.name)
            if row is None:
                row = rows[e.name] = ProfileRow(e.name, e.kind)
            ms = e.seconds * 1e3
            if e.phase == "forward":
                row.forward_ms += ms
                row.flops += e.flops
                row.nbytes += e.nbytes
                row.calls += 1
            elif e.phase == "backward":
                row.backward_ms += ms
                backward_calls[e.name] = backward_calls.get(e.name, 0) + 1
            else:
                row.step_ms += ms
                row.calls += 1
        for row in rows.values():
            if row.calls == 0:
                row.calls = backward_calls[row.name]  # a row with neither has backward events
            row.total_ms = row.forward_ms + row.backward_ms + row.step_ms
            if row.flops and row.forward_ms > 0:
                row.gflops = row.flops / (row.forward_ms / 1e3) / 1e9
        return sorted(rows.values(), key=lambda r: r.total_ms, reverse=True)
        ### END SOLUTION

    # --- printing (given) -------------------------------------------------------------------
    def print(self, peak_gflops: float | None = None, top: int | None = None) -> None:
        rows = self.table()
        attributed = sum(r.total_ms for r in rows)
        head = (f"{'name':22s} {'type':18s} {'calls':>5s} {'fwd ms':>9s} {'bwd ms':>9s} {'step ms':>8s} "
                f"{'total ms':>9s} {'share':>6s} {'GFLOP':>7s} {'GFLOP/s':>8s}")
        print(head + (f" {'% peak':>6s}" if peak_gflops else ""))
        for r in rows[:top]:
            line = (f"{r.name[:22]:22s} {r.kind[:18]:18s} {r.calls:5d} {r.forward_ms:9.3f} "
                    f"{r.backward_ms:9.3f} {r.step_ms:8.3f} {r.total_ms:9.3f} "
                    f"{r.total_ms / (attributed or 1):6.1%} {r.flops / 1e9:7.3f} {r.gflops:8.2f}")
            if peak_gflops:
                line += f" {r.gflops / peak_gflops:6.1%}" if r.gflops else f" {'':6s}"
            print(line)
        other = self.wall_ms - attributed - self.overhead_ms
        print(f"attributed {attributed:.2f} ms | not attributed (engine, zero_grad, Python between "
              f"layers) {other:.2f} ms | profiler bookkeeping {self.overhead_ms:.2f} ms | "
              f"wall {self.wall_ms:.2f} ms")

    def roofline(self, peak_gflops: float, bandwidth_gbs: float) -> list[tuple[ProfileRow, RooflinePoint]]:
        """Your roofline point of every row with FLOPs, bytes and forward time (forward pass)."""
        return [(r, roofline(r.flops, r.nbytes, r.forward_ms / 1e3, peak_gflops, bandwidth_gbs))
                for r in self.table() if r.flops and r.nbytes and r.forward_ms > 0]

    def print_roofline(self, peak_gflops: float, bandwidth_gbs: float) -> None:
        print(f"roofline: peak {peak_gflops:.1f} GFLOP/s, bandwidth {bandwidth_gbs:.1f} GB/s, "
              f"ridge {peak_gflops / bandwidth_gbs:.1f} FLOP/byte (forward pass)")
        print(f"{'name':22s} {'type':18s} {'FLOP/byte':>9s} {'bound':>7s} {'roof':>8s} {'achieved':>9s} "
              f"{'of roof':>7s}")
        for r, p in self.roofline(peak_gflops, bandwidth_gbs):
            print(f"{r.name[:22]:22s} {r.kind[:18]:18s} {p.intensity:9.1f} {p.bound:>7s} "
                  f"{p.attainable_gflops:8.1f} {p.achieved_gflops:9.2f} {p.fraction:7.1%}")


# %%
if __name__ == "__main__":
    from tinytorch.training import Trainer

    loss_fn = CrossEntropyLoss()
    trainer = Trainer(mlp, loss_fn, opt)
    trainer.train_step(xb, yb)  # warm-up
    with Profiler(mlp, loss_fn, opt) as prof:
        for _ in range(5):
            trainer.train_step(xb, yb)
    print("5 training steps of the MNIST MLP, batch 128:")
    prof.print(peak_gflops=PEAK)
    print()
    prof.print_roofline(PEAK, BANDWIDTH)

# %% [markdown]
# ## Reading the profile
#
# On a shared machine a single suspension of the process lands in whichever row happened to be
# running, so profile several steps and distrust a row that is far off on one run only. The
# figures below are the *minimum* of each row over 40 profiled steps of this MLP at batch 128, on
# the 2-core machine this course was written on (one BLAS thread; measured peak 118 GFLOP/s,
# 12 GB/s for a 16 MB copy). The whole step's best was 2.75 ms - while its median, with two
# training jobs running at normal priority beside it, was 287 ms: the machine, not the code.
#
# | row | forward | backward | what it says |
# |---|---|---|---|
# | `0` Linear(784, 256) | 0.586 ms | 0.435 ms | 51.4 MFLOP at 88 GFLOP/s, 75% of the peak; the backward computes $dW$ only (the images need no gradient): 118 GFLOP/s |
# | `Adam.step` | | 0.757 ms (step) | more than the second layer's forward and backward together |
# | `2` Linear(256, 128) | 0.104 ms | 0.155 ms | 81 GFLOP/s forward; the backward is $dX$ and $dW$, twice the FLOPs |
# | `CrossEntropyLoss` | 0.075 ms | 0.017 ms | a fused op: one node, one rule |
# | `1`, `3` ReLU | 0.026, 0.011 ms | 0.031, 0.022 ms | memory-bound, and small |
# | `4` Linear(128, 10) | 0.020 ms | 0.028 ms | 0.33 MFLOP at 16 GFLOP/s: too small to use the machine |
#
# Three lessons that every profile of a small NumPy model repeats:
#
# - **The big matrix multiplies are already near the roof.** The first layer runs at three
#   quarters of the measured peak. Nothing written in Python will make *that* layer much faster;
#   only doing less of it will (smaller layers, pruning in module 16, fewer bits in module 15).
# - **The optimizer is not free.** Adam's update is 13 elementwise NumPy passes over each
#   parameter (module 07): about 30 array reads and writes of 940 KB, 28 MB for 235,146 parameters,
#   in 0.757 ms - 37 GB/s, the speed of a copy that fits in L2 (40 GB/s measured above). It is
#   memory-bound, so a *fused* update (one pass reading $p, g, m, v$ and writing $p, m, v$: 7
#   passes instead of 30) would move about 4x fewer bytes - kernel fusion is module 18's subject.
# - **Small layers are overhead.** The last Linear does 0.33 MFLOP, which the machine could do in
#   3 microseconds; it takes 20. The difference is Python: the layer call, the `Tensor`, the graph
#   node, the rule lookup - a few microseconds each, whatever the size. At batch 1 every layer looks
#   like this one (milestone 06 measures it).
#
# The rows add up to 2.28 ms of the 2.75: the rest - zeroing the gradients, the engine's own work
# between rules, the accuracy count and the Python between layers - is what `print` reports as
# "not attributed"; the Profiler's own bookkeeping is reported on the same line, apart.

# %% nbgrader={"grade": true, "grade_id": "check-profiler", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("14", "Profiler")

# %% [markdown]
# ## Wrap-up
#
# You built the instruments every optimisation after this module is judged by:
#
# - **Counts from shapes**: parameters (a tied matrix once), and FLOPs per layer - $2Nd_{in}d_{out}$
#   plus the bias for a Linear, the output size $\lfloor (H + 2p - k)/s \rfloor + 1$ before the
#   dot products of a convolution, $8BTD^2 + 4BT^2D$ for attention - summed over a whole model by
#   watching one forward pass. A GPT of module 13 costs 1.725 MFLOP per token at $T = 64$, LeNet-5
#   839,558 FLOPs per image.
# - **Bytes**: parameters, gradients and optimizer state read off the model (4x the weights for
#   Adam), and the peak of a real step measured with `tracemalloc` - where, at batch 128, the peak
#   turned out to be in the optimizer, not in the activations.
# - **Time**: warm-up, one clock reading per call, percentiles by linear interpolation, and the
#   machine's own ceilings measured the robust way (best of many short runs).
# - **Attribution**: a `Profiler` that times every layer's forward and every backward rule of a
#   real training step without editing a class - instance-level wrappers and the autograd table,
#   both put back on exit - and a roofline line per layer.
#
# The systems lessons: a big matmul in NumPy already runs near the machine's peak; elementwise work
# (activations, the optimizer) is bound by memory; small layers are bound by neither but by Python's
# per-op overhead; and on a busy machine the spread of the timings says more about the machine than
# about the code. Measure before optimising, and measure again after.
#
# **What comes next.** Module 15 stores weights in 8 bits (`memory_bytes` and a `model_size_bytes`
# of its own will show the 4x); module 16 prunes weights and neurons (`flops` shows what structured
# pruning removes); module 17 caches keys and values so that generating a token stops costing the
# whole context (`measure_latency`: tokens per second); module 18 fuses kernels and splits batches
# across cores (the `Profiler` shows which rows shrink); module 19 turns `measure_latency` and
# `percentile` into an MLPerf-style harness. `tito module complete 14` exports your instruments into
# your `tinytorch` package.
#
# ## Check your work
#
# The last cell runs all of the module's checks, the same as `tito module test 14`. The checks on
# real `Conv2d`, `MultiHeadAttention` and `GPT` layers run when modules 09, 12 and 13 are in your
# package, and are skipped (saying so) when they are not.

# %% nbgrader={"grade": true, "grade_id": "check-profiling", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("14")
