# %% [markdown]
# # Module 16 - Compression
#
# A trained network is bigger than it needs to be. Most of its weights can be set to zero with
# little loss of accuracy, whole hidden units can be cut out, and a small network can be taught
# to imitate a big one. This module builds the three classic tools: **magnitude pruning** (zero
# the smallest weights of the whole model, and keep them zero while you fine-tune),
# **structured pruning** (remove entire neurons, giving a smaller dense model that really runs
# faster), and **knowledge distillation** (a loss that trains a small student on a big teacher's
# softened predictions).
#
# Every claim is measured on a small synthetic task in the try-it cells: accuracy against
# sparsity, before and after masked fine-tuning, and latency against structured sparsity. One
# measurement says plainly what NumPy cannot do: a matrix that is 90% zeros multiplies just
# as slowly as a dense one. This module, with 14, 15, 17, 18 and 19, unlocks milestone 06.
#
# ## What you build
#
# | step | you write | checked by |
# |---|---|---|
# | 1 | `sparsity(model)`: the fraction of weights that are zero | `check("16", "test_sparsity")` |
# | 2 | `PruneMasks.apply` and `PruneMasks.attach`: masks that survive training steps | `check("16", "PruneMasks")` |
# | 3 | `magnitude_prune(model, sparsity)`: one global threshold over all weights | `check("16", "magnitude_prune")` |
# | 4 | `prune_neurons(model, fraction)`: a smaller dense network | `check("16", "prune_neurons")` |
# | 4b | `prune_channels(model, fraction)`: whole filters out of a convolutional network | `check("16", "prune_channels")` |
# | 5 | `soft_target_kl`: the temperature-softened KL divergence, $T^2$-scaled | `check("16", "soft_target_kl_forward")` |
# | 6 | `soft_target_kl_backward`: its gradient, $T (p_s - p_t) / N$ | `check("16", "soft_target_kl_backward")` |
# | 7 | `distillation_loss`: soft and hard targets, mixed by `alpha` | `check("16", "distillation_loss")` |
#
# Each step has a markdown cell that teaches it, a cell to fill in (your copy says
# `# YOUR CODE HERE` and `raise NotImplementedError()` where the answer goes), a "try it" cell and
# a check cell that runs the same checks as `tito module test 16 --task <name>`. The checks build
# tiny seeded models and compare your masks with a sorted list of every weight, your pruned
# network with the original network whose removed units are silenced, and your loss and its
# gradient with the formula in float64, central differences and (when installed) PyTorch.

# %%
"""Module 16: sparsity, PruneMasks, magnitude_prune, prune_neurons, prune_channels, soft_target_kl,
distillation_loss.

Unstructured (magnitude) pruning. Over ALL weight matrices of a model together (biases and other
1-D parameters untouched), zero the k = round(s * n) weights of smallest |w|, and keep a boolean
mask per weight (True = kept):

    w <- w * mask            after pruning, and again after EVERY optimizer step (fine-tuning)

Structured pruning of a hidden layer of a Sequential MLP. Score unit j by the L2 norm of its
incoming weights, ||W1[j, :]||; keep the highest-scoring units; delete row j of W1, entry j of
b1 and column j of W2. The result is a smaller DENSE network: fewer FLOPs, really faster.
The same for a convolution's output channel o (filter W[o], norm over C_in x kh x kw): delete
W[o] and b[o] and the reader's input channel o - the next convolution's W'[:, o], or, after a
Flatten, the o-th block of in_features // C_out columns of the Linear.

Knowledge distillation (Hinton, Vinyals & Dean, 2015). With p = softmax(z / T) for the teacher's
logits t and the student's logits s, N rows:

    soft = T^2 / N * sum_n KL(p_t || p_s) = T^2 / N * sum_n sum_c p_t (log p_t - log p_s)
    d soft / d s = T / N * (p_s - p_t)
    loss = alpha * soft + (1 - alpha) * CrossEntropy(s, targets)

The teacher's logits are constants: only the student receives gradients.
"""

from __future__ import annotations

import copy

import numpy as np

from tinytorch.activations import GELU, LeakyReLU, ReLU, Sigmoid, Tanh
from tinytorch.autograd import register_backward
from tinytorch.layers import Dropout, Linear, Parameter, Sequential
from tinytorch.losses import CrossEntropyLoss
from tinytorch.tensor import Tensor

# %% [markdown]
# ## Why a trained network can lose most of its weights
#
# A network is trained with far more parameters than the function it ends up computing needs:
# over-parameterisation makes optimisation easy (many paths lead down), but once training is
# done much of the capacity is slack. Han et al. (2015) removed 89% of AlexNet's weights and 92%
# of VGG-16's with no loss of ImageNet accuracy; the "lottery ticket" experiments (Frankle and
# Carbin, 2019) found sub-networks of 10-20% of the weights that train as well as the whole.
#
# **Which weights?** The simplest criterion is also hard to beat: a weight's *magnitude*. The
# output of a unit is $\sum_i w_i x_i$; deleting weight $w_i$ changes it by $-w_i x_i$, and when
# the inputs have similar scale a small $|w_i|$ means a small change. (Better criteria use the
# curvature of the loss - Optimal Brain Damage, 1989 - or gradients, at the price of more
# computation; at moderate sparsity plain magnitude does about as well.)
#
# **The vocabulary.** The *sparsity* of a model is the fraction of its weights that are zero: 0.9
# means one weight in ten is left. *Unstructured* pruning zeroes individual weights anywhere; the
# matrices keep their shapes, with zeros scattered through them. *Structured* pruning removes
# whole rows and columns - neurons, channels, attention heads - so the matrices really shrink.
#
# **The systems view: zeros are not free.** A dense float32 matrix costs 4 bytes per entry
# whether the entry is zero or not, and a dense matrix multiply (BLAS) multiplies every zero. To
# gain anything, a sparse matrix must be *stored* sparsely. The common format, CSR, keeps each
# non-zero value (4 bytes) with its column index (4 bytes), plus one offset per row: 8 bytes per
# surviving weight against 4 per dense weight, so it only breaks even at 50% sparsity; at 90% it
# is 0.8 bytes per original weight, 5 times smaller. Speed is harder still: a sparse kernel
# jumps around memory following indices and runs far below the FLOP rate of dense BLAS, so on a
# CPU it beats the dense product only at very high sparsity (typically above 90-95%). NumPy has
# no sparse matrix product at all (scipy.sparse does). Here, unstructured sparsity is a *storage
# and accuracy* experiment; for speed you need structured pruning - both are measured below.
#
# Memory and FLOPs of the tools themselves are small: a mask is one byte per weight (`bool`),
# pruning sorts (partially) one array of all $n$ magnitudes - $O(n)$ work, $4n$ bytes - and
# re-applying the masks after a step is one multiply per weight, much cheaper than the step.

# %% [markdown]
# ## Given: which parameters count as weights
#
# Pruning acts on *weight matrices* (and convolution filter banks): the parameters with two or
# more axes. Biases, LayerNorm and BatchNorm gains and other 1-D parameters are left alone - they
# are a tiny fraction of the parameters, and zeroing a bias or a normalisation gain does far
# more damage per number removed than zeroing one weight of a matrix. `prunable_weights(model)`
# lists them as `(name, Parameter)` pairs in `named_parameters()` order (a parameter shared by
# two layers, like GPT's tied embedding, appears once).

# %%
def prunable_weights(model) -> list[tuple[str, Parameter]]:
    """(name, weight) for every parameter of `model` with 2 or more axes: the weights that pruning
    acts on (Linear weights, convolution filters, embedding tables); biases and gains are skipped."""
    return [(name, p) for name, p in model.named_parameters() if p.ndim >= 2]


# %% [markdown]
# ## Step 1: `sparsity(model)`
#
# $$\text{sparsity} = \frac{\#\{\text{weights equal to } 0\}}{\#\{\text{weights}\}},$$
#
# counted over `prunable_weights(model)` only - biases do not count, neither in the numerator nor
# in the denominator - and returned as a Python `float` (0.0 for a model without weight
# matrices). Worked example: a `Linear(4, 3)` whose weight (12 numbers) has 9 zeros and a
# `Linear(3, 2)` whose weight (6 numbers) has 3 zeros have sparsity $(9 + 3) / (12 + 6) = 0.667$,
# whatever their 5 biases hold. A freshly initialised network has sparsity 0.0: no float drawn
# from a continuous distribution is exactly zero.
#
# Count with `np.count_nonzero` (a C loop over the array, no temporary) - not with a Python loop
# over the weights, which for the 1.3 M weights of this module's timing model below is hundreds
# of times slower.

# %% nbgrader={"grade": false, "grade_id": "sparsity", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sparsity(model) -> float:
    """Fraction of the entries of `model`'s weight matrices (prunable_weights) that are exactly 0."""
    weights = [p.data for _, p in prunable_weights(model)]
    # HINT: total = sum of the sizes; zeros = total - sum of np.count_nonzero(w); guard total == 0
    ### BEGIN SOLUTION
    total = sum(w.size for w in weights)
    if total == 0:
        return 0.0
    zeros = total - sum(int(np.count_nonzero(w)) for w in weights)
    return zeros / total
    ### END SOLUTION


# %%
if __name__ == "__main__":
    from tinytorch.tensor import manual_seed

    manual_seed(0)
    tiny = Sequential(Linear(4, 3), ReLU(), Linear(3, 2))
    print("a fresh model:", sparsity(tiny))
    tiny[0].weight.data.flat[:9] = 0.0  # 9 of its 12 weights
    tiny[2].weight.data.flat[:3] = 0.0  # 3 of its 6 weights
    tiny[0].bias.data[:] = 0.0  # biases do not count
    print(f"the worked example: {sparsity(tiny):.3f} (expected {12 / 18:.3f})")

# %% nbgrader={"grade": true, "grade_id": "check-sparsity", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("16", "test_sparsity")

# %% [markdown]
# ## Step 2: masks that survive training steps
#
# Pruning a trained model costs accuracy; **fine-tuning** the pruned model - a few more epochs of
# ordinary training with the pruned weights held at zero - wins most of it back (measured below).
# The weights are held at zero by a **mask**: for each weight matrix a boolean array of the same
# shape, `True` where the weight is kept, and after pruning $w \leftarrow w \odot m$.
#
# The trap is that training does not know about the mask. Backpropagation computes a gradient
# for every weight, zero or not: for a `Linear` layer $\partial L / \partial W = g^\top x$, which
# is dense. The next `optimizer.step()` moves every weight - `p.data -= lr * g` - and the pruned
# ones come back to life. With momentum or Adam it is worse: their buffers add a push of their
# own, built up over earlier steps. After one epoch the "90% sparse" model is
# dense again, and nothing fails: the accuracy is fine, the sparsity is silently gone. (The
# try-it cell below shows it happening.)
#
# The cure is to apply the mask **after every optimizer step**. `PruneMasks` holds the masks
# (`masks.params[name]` is the `Parameter`, `masks.masks[name]` its boolean mask) and you write:
#
# - `apply()`: zero the pruned weights of every masked parameter, in place -
#   `p.data *= mask` multiplies by 1 or 0 (NumPy turns the `bool` into the float type), so the
#   model and the optimizer keep the very same arrays.
# - `attach(optimizer)`: make every later `optimizer.step()` run the optimizer's own step - with
#   whatever arguments it was given, returning what it returns (PyTorch's LBFGS, for one, takes a
#   closure and returns the loss) - and then `self.apply()`; return the optimizer. Do it by
#   **wrapping the step of that one optimizer object**: keep its bound method (`step =
#   optimizer.step`), define a function that calls it and then applies the masks, and store that
#   function as the instance attribute `optimizer.step`. An instance attribute shadows the class's
#   method for this object only: `SGD.step` itself is untouched, so other optimizers - and other
#   models - are unaffected. Any code that calls `optimizer.step()`, such as module 08's `Trainer`,
#   now trains with the masks.
#
# PyTorch's `torch.nn.utils.prune` gets the same effect another way: it re-parameterises the weight
# as `weight_orig * weight_mask`, recomputed before every forward pass. Re-applying after the step
# costs one multiply per weight per step - measured for the 66,816 weights of this module's spiral
# model: about 20 microseconds, next to about a millisecond for its whole training step (batch 100,
# Adam). The dead weights still get gradients (and, with Adam, moment estimates); they just never
# reach the forward pass. A sparse training kernel would skip them entirely - that is where real
# sparse training saves compute, and NumPy cannot.
#
# A second, later pruning (say from 50% to 80%) makes a second `PruneMasks`; attach it to the same
# optimizer and both wrappers run, each zeroing its own weights. (Magnitude pruning removes the
# zeros first, so the new masks prune everything the old ones did.)

# %% nbgrader={"grade": false, "grade_id": "prune-masks", "locked": false, "schema_version": 3, "solution": true, "task": false}
class PruneMasks:
    """Boolean keep-masks for some of a model's weights: True = the weight stays.

    params: {name: Parameter}; masks: {name: bool array of that parameter's shape}.
    apply() zeroes every pruned weight in place; attach(optimizer) makes every later
    optimizer.step() re-apply the masks (it wraps the step of that optimizer object only).
    """

    def __init__(self, params: dict, masks: dict):
        self.params = dict(params)
        self.masks = {}
        for name, p in self.params.items():
            mask = np.asarray(masks[name], dtype=bool)
            if mask.shape != p.shape:
                raise ValueError(f"PruneMasks: the mask of {name!r} has shape {mask.shape}, the weight {p.shape}")
            self.masks[name] = mask

    @property
    def fraction_pruned(self) -> float:
        """The fraction of the masked weights that the masks zero."""
        total = sum(m.size for m in self.masks.values())
        return 1.0 - sum(int(m.sum()) for m in self.masks.values()) / total if total else 0.0

    def __repr__(self) -> str:
        return f"PruneMasks({len(self.masks)} weights, {self.fraction_pruned:.1%} pruned)"

    def apply(self) -> None:
        """Zero every pruned weight, in place (the model and the optimizer keep the same arrays)."""
        # HINT: for every name: self.params[name].data *= self.masks[name]
        ### BEGIN SOLUTION
        for name, p in self.params.items():
            p.data *= self.masks[name]  # True -> 1, False -> 0, in the weight's own array
        ### END SOLUTION

    def attach(self, optimizer):
        """Wrap `optimizer.step` so that every later step re-applies the masks; returns optimizer."""
        # HINT: step = optimizer.step (the bound method); def masked_step(*args, **kwargs): call
        # HINT: step(*args, **kwargs), then self.apply(), and return step's result;
        # HINT: optimizer.step = masked_step (an attribute of this object only - never change the class)
        ### BEGIN SOLUTION
        step = optimizer.step  # the optimizer's own step (or an earlier wrapper)

        def masked_step(*args, **kwargs):
            result = step(*args, **kwargs)
            self.apply()  # after the update: pruned weights are zero again before the next forward
            return result

        optimizer.step = masked_step
        return optimizer
        ### END SOLUTION


# %%
if __name__ == "__main__":
    from tinytorch.losses import MSELoss
    from tinytorch.optimizers import SGD
    from tinytorch.tensor import manual_seed

    manual_seed(0)
    layer = Linear(4, 3)
    x, y = Tensor(np.ones((8, 4), np.float32)), Tensor(np.zeros((8, 3), np.float32))
    for attached in (False, True):
        w = layer.weight
        w.data[...] = np.arange(1, 13, dtype=np.float32).reshape(3, 4) / 10
        masks = PruneMasks({"weight": w}, {"weight": w.data > 0.6})  # keep the 6 largest
        masks.apply()
        opt = SGD(layer.parameters(), lr=0.01, momentum=0.9)
        if attached:
            masks.attach(opt)
        for _ in range(3):
            opt.zero_grad()
            MSELoss()(layer(x), y).backward()
            opt.step()
        print(f"{'attach(opt)' if attached else 'no attach  '}: zeros after 3 steps = "
              f"{12 - np.count_nonzero(w.data)} of the 6 pruned\n", w.data.round(3))
    print(masks)

# %% nbgrader={"grade": true, "grade_id": "check-prune-masks", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("16", "PruneMasks")

# %% [markdown]
# ## Step 3: `magnitude_prune` - one threshold for the whole model
#
# To reach sparsity $s$ over $n$ weights in all, prune the $k = \operatorname{round}(s\, n)$ weights
# of smallest $|w|$ **of the whole model**: one global threshold, not the same fraction in every
# layer.
#
# **Worked example.** Two weight matrices, 8 weights, $s = 0.5$, so $k = 4$:
#
# $$W_1 = \begin{pmatrix} 0.9 & -0.8 \\ 0.7 & 0.6 \end{pmatrix}, \qquad
# W_2 = \begin{pmatrix} 0.05 & -0.1 & 0.65 & -0.3 \end{pmatrix}.$$
#
# The magnitudes sorted: $0.05, 0.1, 0.3, 0.6, \mid 0.65, 0.7, 0.8, 0.9$. Globally the four
# smallest go: $W_1$ loses only its $0.6$, $W_2$ loses three of its four weights and keeps
# $0.65$. Pruning 50% *per layer* would instead remove $0.6$ and $0.7$ from $W_1$ and $0.05$ and
# $0.1$ from $W_2$. The global rule spends the sparsity where the weights are small: layers differ
# in scale and redundancy (a wide hidden layer can lose far more than the narrow output layer),
# and one threshold discovers that without a per-layer setting. Its risk is the mirror image: at
# extreme sparsity a layer of uniformly small weights can be emptied completely, which cuts the
# network in two ("layer collapse"); at the sparsities used below it does not happen.
#
# **How.** Gather every magnitude into one flat array (`np.concatenate` of each
# `np.abs(w).ravel()`); the positions of the $k$ smallest are `np.argpartition(scores, k - 1)[:k]`,
# a partial sort, $O(n)$ on average, instead of the $O(n \log n)$ of a full `argsort`, which matters
# for the millions of weights of a real model. Build one flat `keep` array (`True` everywhere,
# `False` at those positions) and cut it back into one mask per weight, in the same order, with each
# weight's shape. Using positions rather than a threshold ($|w| \le t$) prunes exactly $k$ weights
# even when magnitudes tie - in a model that was pruned before, all its zeros tie at 0.
#
# The given lines check `sparsity` (a number in $[0, 1]$) and afterwards wrap your masks in a
# `PruneMasks` and `apply()` them: `magnitude_prune` prunes the model in place and returns the
# masks, ready to `attach` to the optimizer for fine-tuning. Pruning an already pruned model
# again at a higher sparsity keeps every earlier zero pruned - zeros are the smallest magnitudes -
# which is how *iterative* pruning (prune a little, fine-tune, repeat) works.
#
# Systems view: the flat score array is $4n$ bytes (500 MB for GPT-2: real pruning code works
# layer by layer on a histogram or a sample of the magnitudes to find the threshold); the masks
# are $n$ bytes, one quarter of the float32 model.

# %% nbgrader={"grade": false, "grade_id": "magnitude-prune", "locked": false, "schema_version": 3, "solution": true, "task": false}
def magnitude_prune(model, sparsity: float) -> PruneMasks:
    """Zero the round(sparsity * n) weights of smallest magnitude over ALL weight matrices of
    `model` together (one global threshold; biases untouched). Returns the applied PruneMasks."""
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"magnitude_prune: sparsity must be in [0, 1], got {sparsity}")
    weights = prunable_weights(model)
    if not weights:
        raise ValueError("magnitude_prune: the model has no weight matrices to prune")
    # HINT: scores = one flat array of every |w|; k = int(round(sparsity * scores.size));
    # HINT: keep = np.ones(n, bool); keep[np.argpartition(scores, k - 1)[:k]] = False (if k);
    # HINT: masks[name] = the next p.size entries of keep, reshaped to p.shape
    ### BEGIN SOLUTION
    scores = np.concatenate([np.abs(p.data).ravel() for _, p in weights])  # (n,) every magnitude
    k = int(round(sparsity * scores.size))
    keep = np.ones(scores.size, dtype=bool)
    if k:  # (k = 0: nothing to prune; argpartition needs a valid position)
        keep[np.argpartition(scores, k - 1)[:k]] = False  # the k smallest of the whole model
    masks, start = {}, 0
    for name, p in weights:
        masks[name] = keep[start:start + p.size].reshape(p.shape)
        start += p.size
    ### END SOLUTION
    pruned = PruneMasks(dict(weights), masks)
    pruned.apply()
    return pruned


# %%
if __name__ == "__main__":
    manual_seed(0)
    two = Sequential(Linear(2, 2, bias=False), Linear(4, 1, bias=False))
    two[0].weight.data[...] = [[0.9, -0.8], [0.7, 0.6]]
    two[1].weight.data[...] = [[0.05, -0.1, 0.65, -0.3]]
    masks = magnitude_prune(two, 0.5)
    print(masks, "-> sparsity", sparsity(two))
    print("W1 =\n", two[0].weight.data, "\nW2 =", two[1].weight.data)

# %% nbgrader={"grade": true, "grade_id": "check-magnitude-prune", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("16", "magnitude_prune")

# %% [markdown]
# ## Measured: accuracy against sparsity, and what fine-tuning wins back
#
# The task: three interleaved spiral arms in the plane, 3,000 training and 2,000 test points,
# classified by an MLP $2 \to 256 \to 256 \to 3$ (66,816 weights, 98% of them in the middle
# layer) trained with Adam for a few seconds. For each sparsity the cell below prunes a copy of the
# trained model once (one-shot, no retraining) and measures the test accuracy; then it fine-tunes
# that copy for 3 epochs with the masks attached and measures again - checking that the sparsity
# survived the fine-tuning. The training helpers are given (plain module 07 Adam and module 04
# cross-entropy, mini-batches drawn with NumPy).
#
# What to expect - measured on this project's machine (everything is seeded, so a rerun there prints
# the same numbers; another machine's BLAS may change the last digit): the one-shot accuracy holds
# at 50% sparsity (0.963 against 0.965 dense) and then falls off a cliff - 0.889 at 70%, 0.717 at
# 80%, chance (about 0.33) at 90%. Three epochs of masked fine-tuning move the cliff a long way out:
# 0.972 at 80% sparsity, 0.885 at 90%, with the sparsity exactly where pruning put it. The network
# re-routes through the weights it still has; at 95-98% not enough is left to re-route through.
# Published results on real networks look the same, with the cliff further out for bigger, more
# redundant models; gradual schedules (prune a little, fine-tune, repeat - Zhu and Gupta, 2017) push
# it further still.

# %%
if __name__ == "__main__":
    import time

    from tinytorch.optimizers import Adam
    from tinytorch.tensor import no_grad

    def spirals(n, seed, arms=3):
        """n points on `arms` noisy spiral arms in the plane; labels = the arm (0 .. arms - 1)."""
        rng = np.random.default_rng(seed)
        label = rng.integers(0, arms, n)
        r = rng.uniform(0.1, 1.0, n)
        theta = 2 * np.pi * label / arms + 3 * np.pi * r
        xy = 3 * r[:, None] * np.stack([np.cos(theta), np.sin(theta)], 1)
        return (xy + 0.25 * r[:, None] * rng.standard_normal((n, 2))).astype(np.float32), label

    def fit(model, x, y, epochs, lr=3e-3, masks=None, loss_fn=None, seed=0, batch=100):
        """Adam on mini-batches; `masks` attached to the optimizer; loss_fn(logits, idx) -> Tensor."""
        opt = Adam(model.parameters(), lr=lr)
        if masks is not None:
            masks.attach(opt)
        loss_fn = loss_fn or (lambda logits, idx: CrossEntropyLoss()(logits, y[idx]))
        rng = np.random.default_rng(seed)
        for _ in range(epochs):
            order = rng.permutation(len(x))
            for i in range(0, len(x), batch):
                idx = order[i:i + batch]
                opt.zero_grad()
                loss_fn(model(Tensor(x[idx])), idx).backward()
                opt.step()
        return model

    def accuracy(model, x, y):
        with no_grad():
            return float(np.mean(np.argmax(model(Tensor(x)).data, axis=1) == y))

    x_train, y_train = spirals(3000, seed=1)
    x_test, y_test = spirals(2000, seed=2)
    manual_seed(0)
    start = time.perf_counter()
    net = fit(Sequential(Linear(2, 256), ReLU(), Linear(256, 256), ReLU(), Linear(256, 3)),
              x_train, y_train, epochs=25)
    print(f"trained in {time.perf_counter() - start:.1f} s: test accuracy {accuracy(net, x_test, y_test):.3f}, "
          f"{sum(p.size for _, p in prunable_weights(net)):,} weights")

    print(f"\n{'sparsity':>8} | {'one-shot':>8} | {'fine-tuned':>10} | sparsity after fine-tuning")
    for target in (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98):
        pruned = copy.deepcopy(net)
        masks = magnitude_prune(pruned, target)
        one_shot = accuracy(pruned, x_test, y_test)
        fit(pruned, x_train, y_train, epochs=3, lr=1e-3, masks=masks)
        tuned = accuracy(pruned, x_test, y_test)
        bar = "#" * int(round(tuned * 40))
        print(f"{target:8.2f} | {one_shot:8.3f} | {tuned:10.3f} | {sparsity(pruned):.3f}  {bar}")

# %% [markdown]
# ### Measured: unstructured sparsity is not faster here
#
# The pruned matrices keep their shapes, so NumPy's matrix multiply does the same work. The cell
# below times one `(256, 1024) @ (1024, 1024)` product with a dense weight and with the same
# weight 90% zeros: the times agree to within the noise. (BLAS does not look at the values; only
# a sparse format and a sparse kernel could skip the zeros, and NumPy has neither.) The 90% sparse
# matrix could be *stored* in CSR in about 0.8 MB instead of 4 MB - a storage win, not a speed
# win - and that is the honest summary of unstructured sparsity on a CPU with NumPy.

# %%
if __name__ == "__main__":
    def best_ms(*fns, rounds=5, repeats=3):
        """For each function, the fastest of rounds x repeats runs in milliseconds. The functions take
        turns round by round, so a burst of load on a shared machine hits all of them alike."""
        best = [float("inf")] * len(fns)
        for _ in range(rounds):
            for k, fn in enumerate(fns):
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    fn()
                    best[k] = min(best[k], time.perf_counter() - t0)
        return [1e3 * b for b in best]

    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 1024)).astype(np.float32)
    dense = rng.standard_normal((1024, 1024)).astype(np.float32)
    sparse = dense * (rng.random(dense.shape) > 0.9)  # 90% zeros, same shape
    dense_ms, sparse_ms = best_ms(lambda: a @ dense, lambda: a @ sparse)
    print(f"dense weight: {dense_ms:.2f} ms | 90% zeros: {sparse_ms:.2f} ms "
          f"| zeros in the second: {1 - np.count_nonzero(sparse) / sparse.size:.1%}")

# %% [markdown]
# ## Step 4: structured pruning - remove whole neurons
#
# A hidden unit $j$ of an MLP is one row of the first layer and one column of the next:
#
# $$h_j = \phi\!\left(W_1[j, :]\, x + b_1[j]\right), \qquad y = W_2\, h + b_2 = \sum_j W_2[:, j]\, h_j + b_2 .$$
#
# Removing unit $j$ means deleting **row** $j$ of $W_1$, **entry** $j$ of $b_1$ and **column** $j$ of
# $W_2$. The remaining network computes exactly what the original computes with $W_2[:, j] = 0$:
# the unit is silenced, and the matrices get smaller. Any *elementwise* layer between the two
# (ReLU, Tanh, GELU, Sigmoid, LeakyReLU, Dropout) acts on each unit separately and comes along
# unchanged; a layer that mixes units (Softmax, LayerNorm) would not, and `prune_neurons` refuses
# it.
#
# **Which units?** Score each unit by the L2 norm of its *incoming* weights, $\lVert W_1[j, :]
# \rVert_2$: a unit whose incoming weights are all small barely responds to its input. Worked
# example, a hidden layer of 4 units with 3 inputs:
#
# $$W_1 = \begin{pmatrix} 0.5 & -1.0 & 0.2 \\ 0.1 & 0.1 & -0.1 \\ 2.0 & 0.0 & 0.5 \\ -0.3 & 0.4 & 0.0
# \end{pmatrix} \quad\Rightarrow\quad \text{norms } (1.136,\ 0.173,\ 2.062,\ 0.500).$$
#
# Pruning half the units removes $\operatorname{round}(0.5 \cdot 4) = 2$ of them, the two weakest
# (units 1 and 3): the new $W_1$ holds rows 0 and 2, in their original order, and the next layer
# keeps columns 0 and 2 of its weight. (The norm ignores the bias and the outgoing weights; a
# unit with tiny incoming weights but a large bias acts as a constant, which a more careful
# method would fold into the next layer's bias. The score is computed from the model you pass
# in, each layer on its own - as PyTorch's `ln_structured` does.)
#
# **The systems view: this one is really faster.** With hidden width $h$ pruned to $h' = (1-f)\,h$,
# the first layer's FLOPs ($2 B d h$) and the last one's ($2 B h c$) shrink by $(1 - f)$, and a
# hidden-to-hidden layer ($2 B h^2$) by $(1 - f)^2$: half the units of a deep MLP is nearly a
# quarter of the work. The result is an ordinary dense model - every framework, every BLAS runs it
# at full speed, and its memory shrinks with it. The price: whole units are a coarse knife - one-shot,
# accuracy falls much sooner than with unstructured pruning - and fine-tuning is needed to
# recover it. For convolutions the same idea removes whole **filters**
# (output channels; the norm runs over $C_{in} \times k_h \times k_w$) and the matching input
# channels of the next convolution.
#
# Given below: `_linear_from(layer, weight, bias)`, a copy of a `Linear` holding new `Parameter`s,
# and `_linear_positions(model)`, which finds the `Linear` layers of a `Sequential` and refuses a
# layer between two of them that is not elementwise.

# %%
_ELEMENTWISE = (ReLU, LeakyReLU, Sigmoid, Tanh, GELU, Dropout)  # act on each unit separately


def _linear_from(layer: Linear, weight: np.ndarray, bias: np.ndarray | None) -> Linear:
    """A copy of `layer` holding new Parameters `weight` (out, in) and `bias` (out,) or None."""
    new = copy.copy(layer)  # a new object with its own attribute dict; the old layer is untouched
    new.weight = Parameter(np.ascontiguousarray(weight))
    new.bias = None if bias is None else Parameter(np.ascontiguousarray(bias))
    new.out_features, new.in_features = weight.shape
    return new


def _linear_positions(model) -> list[int]:
    """The positions of the Linear layers of a Sequential, after checking that only elementwise
    layers sit between consecutive ones (so removing a unit cannot change what the others compute)."""
    if not isinstance(model, Sequential):
        raise TypeError(f"prune_neurons: expected a Sequential, got {type(model).__name__}")
    layers = list(model)
    at = [i for i, layer in enumerate(layers) if isinstance(layer, Linear)]
    if len(at) < 2:
        raise ValueError("prune_neurons: the model needs at least two Linear layers (a hidden layer to prune)")
    for a, b in zip(at, at[1:]):
        for layer in layers[a + 1:b]:
            if not isinstance(layer, _ELEMENTWISE):
                raise ValueError(f"prune_neurons: {type(layer).__name__} between the Linear layers {a} and {b} "
                                 "mixes the hidden units; only elementwise layers can stay between them")
    return at


# %% [markdown]
# **What you write.** `prune_neurons(model, fraction)` takes a `Sequential` and returns a **new**
# `Sequential`, leaving the original untouched. For every `Linear` except the last (the output
# layer's units are the classes: they stay), drop $\operatorname{round}(\text{fraction} \cdot
# \text{out\_features})$ units - but keep at least one - with the smallest incoming norms. The
# given helper `_linear_from(layer, weight, bias)` makes a `Linear` holding the arrays you give it
# (new `Parameter`s, with `in_features`/`out_features` set from the weight's shape), and the given
# code checks the layers between and copies the non-`Linear` layers. You compute, for each
# `Linear` $i$: the columns to keep (those the previous layer kept - all of them for the first),
# the rows to keep (the top units by norm, sorted back into increasing order:
# `np.sort(np.argsort(-norms, kind="stable")[:n_keep])`), and the sliced weight
# `W[rows][:, cols]` and bias `b[rows]`.
#
# Layers before the first `Linear` and after the last are copied unchanged, so `prune_neurons` also
# shrinks the fully connected head of a convolutional network such as LeNet-5: in
# `Sequential(Conv2d, ReLU, MaxPool2d, ..., Flatten(), Linear(400, 120), ReLU(), Linear(120, 84),
# ReLU(), Linear(84, 10))` it halves the 120 and 84 hidden units and leaves the convolutions alone.

# %% nbgrader={"grade": false, "grade_id": "prune-neurons", "locked": false, "schema_version": 3, "solution": true, "task": false}
def prune_neurons(model: Sequential, fraction: float) -> Sequential:
    """A NEW, smaller Sequential: from every hidden Linear layer (not the last) remove
    round(fraction * out_features) units (keeping at least one) with the smallest L2 norm of
    incoming weights - its rows of W and entries of b - and the matching columns of the next one."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"prune_neurons: fraction must be in [0, 1], got {fraction}")
    at = _linear_positions(model)
    layers = [layer if isinstance(layer, Linear) else copy.deepcopy(layer) for layer in model]
    cols = None  # the input columns the current Linear keeps (None: all of them)
    for i in at:
        layer = model[i]
        W = layer.weight.data  # (out, in)
        b = None if layer.bias is None else layer.bias.data
        # HINT: rows = all units for the last Linear; else norms = np.linalg.norm(W, axis=1),
        # HINT: n_keep = max(1, out - round(fraction * out)),
        # HINT: rows = np.sort(np.argsort(-norms, kind="stable")[:n_keep]) (the strongest, in order);
        # HINT: layers[i] = _linear_from(layer, W[rows][:, cols], b[rows]); the next layer's cols = rows
        ### BEGIN SOLUTION
        out = W.shape[0]
        if i == at[-1]:
            rows = np.arange(out)  # the output units (classes) stay
        else:
            norms = np.linalg.norm(W, axis=1)  # (out,) each unit's incoming-weight norm
            n_keep = max(1, out - int(round(fraction * out)))
            rows = np.sort(np.argsort(-norms, kind="stable")[:n_keep])  # the strongest, in order
        W_new = W[rows] if cols is None else W[rows][:, cols]  # (kept out, kept in)
        layers[i] = _linear_from(layer, W_new, None if b is None else b[rows])
        cols = rows  # the next Linear reads only the kept units
        ### END SOLUTION
    return Sequential(*layers)


# %%
if __name__ == "__main__":
    manual_seed(0)
    mlp = Sequential(Linear(3, 4), ReLU(), Linear(4, 2))
    mlp[0].weight.data[...] = [[0.5, -1.0, 0.2], [0.1, 0.1, -0.1], [2.0, 0.0, 0.5], [-0.3, 0.4, 0.0]]
    small = prune_neurons(mlp, 0.5)
    print(small)
    print("kept rows of W1:\n", small[0].weight.data, "\nnext layer's columns 0 and 2:",
          np.array_equal(small[2].weight.data, mlp[2].weight.data[:, [0, 2]]))
    silenced = copy.deepcopy(mlp)
    silenced[2].weight.data[:, [1, 3]] = 0.0  # the original with units 1 and 3 silenced
    x = Tensor(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32))
    print("same outputs as the silenced original:", np.allclose(small(x).data, silenced(x).data, atol=1e-6))

# %% nbgrader={"grade": true, "grade_id": "check-prune-neurons", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("16", "prune_neurons")

# %% [markdown]
# ## Measured: latency and accuracy against structured sparsity
#
# First the speed. A wider MLP, $256 \to 1024 \to 1024 \to 10$ (1.3 M weights), at batch 256 under
# `no_grad`: the cell prunes 0-90% of the units of both hidden layers and times the forward pass
# (the fastest of 15 runs, the models taking turns), next to its FLOPs. The FLOPs fall roughly like
# $(1-f)^2$, since the middle layer dominates: 1.66 times fewer at $f = 0.25$, 3.3 at $0.5$, 9.9 at
# $0.75$, 35 at $0.9$. Measured on this project's machine with one BLAS thread: 6.2 ms dense, and
# 1.6, 3.1, 9.0 and 26 times faster. The time follows the FLOPs until the fixed cost per operation -
# allocating outputs, Python, the autograd bookkeeping - shows: at 90% the forward pass is 0.23 ms
# for 19 MFLOP, and removing more units pays less and less. The last row is the *unstructured*
# control: the same dense model with 90% of its weights zeroed by `magnitude_prune` ran in the dense
# model's 6.2 ms. (Those numbers are CPU time of the computing thread, because the machine was
# shared while this was written. On a busy machine the wall-clock times this cell prints are
# inflated most for the longest runs, which are the most likely to be interrupted, so the ratios can
# come out larger; with several BLAS threads the big matrices gain the most, so they come out
# smaller.)
#
# Then the accuracy, on the spiral model trained above: prune its hidden units, fine-tune for 3
# epochs (no masks needed - the pruned model is simply smaller), and measure. Measured: one-shot,
# removing even half the units drops the spiral model to chance (0.329) - whole units are a
# coarse knife - yet 3 epochs of fine-tuning bring the half-width model (17,024 weights, a
# quarter) back to 0.968. Compare with the unstructured table at similar numbers of weights, after
# fine-tuning: 4,416 weights structured 0.826, against 6,682 (90% sparse) 0.885 and 3,341 (95%)
# 0.676 unstructured - on this task the two are close once fine-tuned, and only the structured
# model is smaller and faster. The big difference is one-shot: without fine-tuning, structured
# pruning is much more destructive.

# %%
if __name__ == "__main__":
    def forward_flops(model, batch):
        return sum(2 * batch * layer.in_features * layer.out_features for layer in model if isinstance(layer, Linear))

    manual_seed(0)
    wide = Sequential(Linear(256, 1024), ReLU(), Linear(1024, 1024), ReLU(), Linear(1024, 10))
    xb = Tensor(np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32))
    fractions = (0.0, 0.25, 0.5, 0.75, 0.9)
    models = [prune_neurons(wide, frac) for frac in fractions]
    zeroed = copy.deepcopy(wide)
    magnitude_prune(zeroed, 0.9)  # the unstructured control: same shapes, 90% zeros
    with no_grad():
        times = best_ms(*[lambda m=m: m(xb) for m in [wide, *models, zeroed]])
    dense_ms = times[0]
    print(f"{'pruned':>6} | {'hidden':>6} | {'weights':>9} | {'MFLOP':>6} | {'ms':>6} | speed-up")
    for frac, smaller, ms in zip(fractions, models, times[1:]):
        print(f"{frac:6.2f} | {smaller[0].out_features:6d} | {sum(p.size for _, p in prunable_weights(smaller)):9,d} | "
              f"{forward_flops(smaller, 256) / 1e6:6.0f} | {ms:6.2f} | {dense_ms / ms:5.2f}x")
    print(f"unstructured 90% zeros, same shapes:            {forward_flops(zeroed, 256) / 1e6:6.0f} | "
          f"{times[-1]:6.2f} | {dense_ms / times[-1]:5.2f}x")

    print(f"\nthe spiral MLP: {'pruned':>6} | {'hidden':>6} | {'weights':>7} | {'one-shot':>8} | fine-tuned")
    for frac in (0.0, 0.5, 0.75, 0.9, 0.95):
        smaller = prune_neurons(net, frac)
        one_shot = accuracy(smaller, x_test, y_test)
        tuned = accuracy(fit(smaller, x_train, y_train, epochs=3, lr=1e-3), x_test, y_test)
        n_weights = sum(p.size for _, p in prunable_weights(smaller))
        print(f"{'':15} {frac:6.2f} | {smaller[0].out_features:6d} | {n_weights:7,d} | {one_shot:8.3f} | {tuned:.3f}")

# %% [markdown]
# ### Whole filters: structured pruning of a convolution
#
# A convolution's output channel $o$ is one **filter** $W[o, :, :, :]$ (its $C_{in} \times k_h
# \times k_w$ weights) and one bias $b[o]$; the next convolution reads it through the input
# channel $o$ of its own weight, $W'[:, o, :, :]$. Removing the channel deletes that filter and
# that input slice, exactly as removing a hidden unit deleted a row and a column. Between the two,
# a layer may stay if it acts on **each channel separately**: the elementwise activations, and the
# pooling layers (a max or a mean over one channel's window). If the last convolution feeds
# `Flatten()` and a `Linear`, the flattened vector holds the channels one after the other, each as
# a block of $H \cdot W$ numbers: channel $o$ is the columns $o \cdot HW, \dots, (o+1) \cdot HW - 1$
# of the `Linear`'s weight.
#
# Score each filter by the L2 norm of its weights (over $C_{in} \times k_h \times k_w$) and remove
# the weakest $\operatorname{round}(\text{fraction} \cdot C_{out})$, keeping at least one - the same
# rule as `prune_neurons`. The last convolution before the classifier is pruned too: its channels
# are inputs of the head, not outputs of the model. Worked example: filters with norms $(3.0, 0.5,
# 2.0, 0.1)$ at fraction 0.5 keep channels 0 and 2; a following `Flatten` of $2 \times 2$ maps and
# `Linear(16, 10)` keeps the columns $0..3$ and $8..11$.
#
# **Why this one is faster.** A convolution costs $2\, N H_o W_o \cdot C_{in} k_h k_w \cdot C_{out}$
# FLOPs: halving the channels of two consecutive convolutions halves the first one's work and
# quarters the second's, and every activation map in between is half as large (memory traffic,
# which is what a CPU convolution mostly waits on). Milestone 06 prunes LeNet-5's convolutions
# this way before quantizing it.
#
# Given: `_conv_from(layer, weight, bias)` (a copy of a convolution with new `Parameter`s and its
# channel counts set from the weight) and `_conv_pairs(model)`, which finds each convolution of a
# `Sequential` and the layer that reads its channels - the next convolution, or the `Linear` after
# a `Flatten` - and refuses anything between them that mixes channels. A convolution is any layer
# with a 4-D `weight` (module 09's `Conv2d`; this module does not need module 09).

# %%
def _is_conv(layer) -> bool:
    w = getattr(layer, "weight", None)
    return w is not None and getattr(w, "ndim", 0) == 4


def _per_channel(layer) -> bool:
    """Acts on each channel on its own: elementwise activations, Dropout, max/average pooling."""
    return isinstance(layer, _ELEMENTWISE) or type(layer).__name__ in ("MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d")


def _conv_from(layer, weight: np.ndarray, bias: np.ndarray | None):
    """A copy of the convolution `layer` holding new Parameters weight (O, C, kh, kw) and bias (O,)."""
    new = copy.copy(layer)
    new.weight = Parameter(np.ascontiguousarray(weight))
    new.bias = None if bias is None else Parameter(np.ascontiguousarray(bias))
    new.out_channels, new.in_channels = weight.shape[:2]
    return new


def _conv_pairs(model) -> list[tuple[int, int]]:
    """(i, j): convolution i's channels are read by layer j - a convolution, or a Linear after a
    Flatten (then j is the Linear). A convolution read by nothing prunable is not listed."""
    if not isinstance(model, Sequential):
        raise TypeError(f"prune_channels: expected a Sequential, got {type(model).__name__}")
    layers, pairs = list(model), []
    for i, layer in enumerate(layers):
        if not _is_conv(layer):
            continue
        j = i + 1
        while j < len(layers) and _per_channel(layers[j]):
            j += 1
        if j < len(layers) and _is_conv(layers[j]):
            pairs.append((i, j))
        elif j + 1 < len(layers) and type(layers[j]).__name__ == "Flatten" and isinstance(layers[j + 1], Linear):
            pairs.append((i, j + 1))
        elif j < len(layers):
            raise ValueError(f"prune_channels: {type(layers[j]).__name__} after the convolution {i} mixes its "
                             "channels or holds per-channel parameters; only activations and pooling can stay "
                             "between a convolution and its reader")
    if not pairs:
        raise ValueError("prune_channels: no convolution is followed by another convolution or by Flatten + Linear")
    return pairs


# %% [markdown]
# **What you write.** `prune_channels(model, fraction)`: a **new** `Sequential`, the original
# untouched. For each pair `(i, j)` from `_conv_pairs`: the norms of convolution $i$'s filters
# (computed from the weights it has at that point - an earlier pair may already have removed some
# of its *input* channels), the channels to keep (`np.sort(np.argsort(-norms, kind="stable")
# [:n_keep])`), the new convolution $i$ (`W[keep]`, `b[keep]`), and the new reader $j$: a
# convolution keeps `W'[:, keep]`; a `Linear` after `Flatten` keeps the column blocks of the kept
# channels (each block `in_features // C_out` wide).

# %% nbgrader={"grade": false, "grade_id": "prune-channels", "locked": false, "schema_version": 3, "solution": true, "task": false}
def prune_channels(model: Sequential, fraction: float) -> Sequential:
    """A NEW Sequential: from every convolution whose channels feed another convolution (or Flatten
    + Linear) remove round(fraction * out_channels) filters (keeping at least one) with the smallest
    L2 norm, with their bias entries and the reader's matching input channels (or column blocks)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"prune_channels: fraction must be in [0, 1], got {fraction}")
    pairs = _conv_pairs(model)
    layers = [copy.deepcopy(layer) for layer in model]
    # HINT: for i, j in pairs: W = layers[i].weight.data (O, C, kh, kw); norms over axes (1, 2, 3);
    # HINT: n_keep = max(1, O - round(fraction * O)); keep = np.sort(np.argsort(-norms, kind="stable")[:n_keep]);
    # HINT: layers[i] = _conv_from(layers[i], W[keep], b[keep]); reader conv: W2[:, keep];
    # HINT: reader Linear (out, O * hw): columns (keep[:, None] * hw + np.arange(hw)).ravel() -> _linear_from
    ### BEGIN SOLUTION
    for i, j in pairs:
        conv, reader = layers[i], layers[j]
        W = conv.weight.data  # (O, C, kh, kw)
        b = None if conv.bias is None else conv.bias.data
        out = W.shape[0]
        norms = np.sqrt((W.astype(np.float64) ** 2).sum(axis=(1, 2, 3)))  # (O,) each filter's norm
        n_keep = max(1, out - int(round(fraction * out)))
        keep = np.sort(np.argsort(-norms, kind="stable")[:n_keep])  # the strongest, in order
        layers[i] = _conv_from(conv, W[keep], None if b is None else b[keep])
        W2 = reader.weight.data
        rb = None if reader.bias is None else reader.bias.data
        if _is_conv(reader):
            layers[j] = _conv_from(reader, W2[:, keep], rb)  # (O2, kept, kh, kw)
        else:
            hw = W2.shape[1] // out  # each channel's block of the flattened vector
            cols = (keep[:, None] * hw + np.arange(hw)).ravel()  # (kept * hw,)
            layers[j] = _linear_from(reader, W2[:, cols], rb)
    ### END SOLUTION
    return Sequential(*layers)


# %%
if __name__ == "__main__":
    try:
        from tinytorch.convolutions import Conv2d, MaxPool2d
    except ImportError:  # module 09 is not a prerequisite of this one
        Conv2d = None
    if Conv2d is not None:
        from tinytorch.layers import Flatten
        from tinytorch.tensor import no_grad

        manual_seed(0)
        lenet = Sequential(Conv2d(1, 6, 5, padding=2), ReLU(), MaxPool2d(2), Conv2d(6, 16, 5), ReLU(),
                           MaxPool2d(2), Flatten(), Linear(400, 120), ReLU(), Linear(120, 84), ReLU(),
                           Linear(84, 10))
        xb = Tensor(np.random.default_rng(0).standard_normal((256, 1, 28, 28)).astype(np.float32))
        fractions = (0.0, 0.25, 0.5, 0.75)
        smaller = [prune_neurons(prune_channels(lenet, frac), frac) for frac in fractions]
        with no_grad():
            times = best_ms(*[lambda m=m: m(xb) for m in smaller])
        print(f"{'pruned':>6} | {'channels':>8} | {'weights':>7} | ms (batch 256) | speed-up")
        for frac, small, ms in zip(fractions, smaller, times):
            chans = [layer.out_channels for layer in small if _is_conv(layer)]
            print(f"{frac:6.2f} | {str(chans):>8} | {sum(p.size for p in small.parameters()):7,d} | {ms:14.2f} | "
                  f"{times[0] / ms:5.2f}x")

# %% nbgrader={"grade": true, "grade_id": "check-prune-channels", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("16", "prune_channels")


# %% [markdown]
# ## Step 5: knowledge distillation - learning from soft targets
#
# Structured pruning shrinks a model by surgery; **distillation** trains a small model (the
# *student*) from scratch, or after pruning, to imitate a big one (the *teacher*). Hinton, Vinyals
# and Dean (2015) observed that a teacher's output says far more than its top class: a model that
# sees a handwritten 2 and gives "3" a probability of $10^{-6}$ but "7" one of $10^{-9}$ is telling
# you which digits look alike. A one-hot label throws that away.
#
# The small probabilities are invisible at the usual softmax, so both models' logits are divided by
# a **temperature** $T > 1$ before the softmax, $p = \operatorname{softmax}(z / T)$, which flattens
# the distribution. Worked example, teacher logits $(4, 1, 0)$:
#
# | | class 0 | class 1 | class 2 |
# |---|---|---|---|
# | $T = 1$ | 0.936 | 0.047 | 0.017 |
# | $T = 4$ | 0.543 | 0.257 | 0.200 |
#
# At $T = 4$ the student is told clearly that class 1 is more plausible than class 2. It is trained
# to match these soft targets with the Kullback-Leibler divergence, averaged over the $N$ rows of a
# batch:
#
# $$\mathcal{L}_{soft} = \frac{T^2}{N} \sum_{n} \mathrm{KL}\!\left(p_t^{(n)} \,\|\, p_s^{(n)}\right)
# = \frac{T^2}{N} \sum_{n} \sum_{c} p_{t,c} \left(\log p_{t,c} - \log p_{s,c}\right).$$
#
# For the student logits $(2, 2, 0)$ and the teacher above: at $T = 1$, $p_s = (0.468, 0.468,
# 0.063)$ and $\mathrm{KL} = 0.519$; at $T = 4$, $p_s = (0.384, 0.384, 0.233)$, $\mathrm{KL} = 0.0557$ and
# $T^2\,\mathrm{KL} = 0.890$.
#
# **Why $T^2$.** The gradient of the KL with respect to the student's logits is $(p_s - p_t)/T$
# (step 6), and for large $T$ the difference $p_s - p_t$ itself shrinks like $1/T$ (the softmax
# of $z/T$ is nearly linear in $z/T$), so the gradient falls like $1/T^2$. Multiplying the loss by
# $T^2$ keeps the soft term's gradients at the same scale whatever the temperature, so `alpha` in
# step 7 means the same thing at $T = 2$ and at $T = 8$.
#
# **Numerical stability.** Compute $\log p$ directly as a log-softmax - subtract the row maximum,
# then $\log p = z/T - \max - \log \sum e^{z/T - \max}$ - never as $\log(\operatorname{softmax})$: a
# teacher that is sure of itself has probabilities that round to 0 in float32, and $\log 0 = -\infty$,
# $0 \cdot \infty = \text{NaN}$. With the log-softmax, $\log p_t$ stays finite (say $-900$), $p_t =
# e^{-900}$ is 0, and its term is exactly $0 \cdot (\text{finite}) = 0$.
#
# The given helper below is that log-softmax, over the last axis of a NumPy array.

# %%
def _log_softmax_rows(z: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, stable: z - max - log(sum(exp(z - max)))."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


# %% [markdown]
# Write `soft_target_kl(student_logits, teacher_logits, temperature)`: both `(N, C)` (the teacher's
# as a Tensor or an array - only its values are used: the teacher is not trained, as with
# `teacher_logits.detach()` in PyTorch), returning the 0-d Tensor $\mathcal{L}_{soft}$ in the
# student's dtype, recorded as the op `"soft_target_kl"` whose only parent is the student's logits
# and which saves `(p_s, p_t, T, N)` for step 6. Cost: a few $(N, C)$ arrays and about a dozen
# FLOPs and two exponentials per element - next to the model, nothing; for a 50,257-token
# vocabulary at 8,192 tokens each such array is 1.6 GB, the same problem as module 04's
# cross-entropy.

# %% nbgrader={"grade": false, "grade_id": "soft-target-kl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def soft_target_kl(student_logits: Tensor, teacher_logits, temperature: float = 4.0) -> Tensor:
    """T^2 / N * sum_n KL(softmax(t_n / T) || softmax(s_n / T)): a 0-d Tensor, op "soft_target_kl"
    (its only parent: the student's logits; saved: (p_s, p_t, T, N))."""
    s = student_logits.data
    t = np.asarray(teacher_logits.data if isinstance(teacher_logits, Tensor) else teacher_logits, dtype=s.dtype)
    if s.ndim != 2 or t.shape != s.shape:
        raise ValueError(f"soft_target_kl: student and teacher logits must both be (N, C), got {s.shape} and {t.shape}")
    T = float(temperature)
    if T <= 0:
        raise ValueError(f"soft_target_kl: the temperature must be positive, got {temperature}")
    n = s.shape[0]
    # HINT: log_ps = _log_softmax_rows(s / T), log_pt likewise; p = np.exp(log p);
    # HINT: kl = T * T * np.sum(p_t * (log_pt - log_ps)) / n, as an array of the student's dtype
    ### BEGIN SOLUTION
    log_ps, log_pt = _log_softmax_rows(s / T), _log_softmax_rows(t / T)  # (N, C) each, finite
    p_s, p_t = np.exp(log_ps), np.exp(log_pt)
    kl = np.asarray(T * T * np.sum(p_t * (log_pt - log_ps)) / n, dtype=s.dtype)
    ### END SOLUTION
    return Tensor._make(kl, (student_logits,), "soft_target_kl", (p_s, p_t, T, n))


# %%
if __name__ == "__main__":
    student = Tensor(np.array([[2.0, 2.0, 0.0]], np.float32), requires_grad=True)
    teacher = np.array([[4.0, 1.0, 0.0]], np.float32)
    for T in (1.0, 4.0):
        print(f"T = {T}: T^2 KL = {soft_target_kl(student, teacher, T).item():.4f}")
    sure = np.array([[1000.0, 0.0, -1000.0]], np.float32)  # a very confident teacher: p_t has exact zeros
    print("a confident teacher at T = 1:", soft_target_kl(student, sure, 1.0).item(), "(finite)")
    print("student = teacher:", soft_target_kl(Tensor(teacher), teacher, 4.0).item())

# %% nbgrader={"grade": true, "grade_id": "check-soft-target-kl", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("16", "soft_target_kl_forward")

# %% [markdown]
# ## Step 6: the gradient of the soft term
#
# Write $\log p_{s,c} = s_c / T - \log \sum_k e^{s_k / T}$. Differentiating with respect to the
# student logit $s_j$:
#
# $$\frac{\partial \log p_{s,c}}{\partial s_j} = \frac{1}{T}\left([c = j] - p_{s,j}\right),$$
#
# and only the $-\sum_c p_{t,c} \log p_{s,c}$ part of the KL depends on the student, so
#
# $$\frac{\partial\, \mathrm{KL}}{\partial s_j} = -\sum_c p_{t,c}\, \frac{1}{T}\left([c = j] - p_{s,j}\right)
# = \frac{1}{T}\left(p_{s,j} - p_{t,j}\right) \qquad \left(\textstyle\sum_c p_{t,c} = 1\right).$$
#
# With the $T^2 / N$ in front: $\partial \mathcal{L}_{soft} / \partial s = \frac{T}{N}(p_s - p_t)$,
# the same "prediction minus target" shape as module 06's cross-entropy rule, at temperature $T$. In
# the worked example ($N = 1$, $T = 4$): $4 \cdot ((0.384, 0.384, 0.233) - (0.543, 0.257, 0.200)) =
# (-0.639, 0.508, 0.131)$: a step against it raises logit 0 and lowers logits 1 and 2. The rows of
# the gradient sum to zero - adding a constant to a row of logits changes no softmax.
#
# Write the backward rule: `g` is the incoming gradient (a 0-d array, since the loss is a
# scalar), `out._saved` is `(p_s, p_t, T, N)`; return a one-element tuple with the $(N, C)$
# gradient for the student's logits, in `g`'s dtype. One fused rule, where the composed version
# (divide, log-softmax, subtract, multiply, sum) would make five graph nodes and five passes.

# %% nbgrader={"grade": false, "grade_id": "soft-target-kl-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
@register_backward("soft_target_kl")
def soft_target_kl_backward(g, out):
    """d/ds of T^2/N sum KL(p_t || p_s) = T/N (p_s - p_t), times the incoming gradient g."""
    p_s, p_t, T, n = out._saved
    # HINT: (g * (T / n) * (p_s - p_t),) in g's dtype
    ### BEGIN SOLUTION
    return ((g * (T / n) * (p_s - p_t)).astype(g.dtype, copy=False),)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    from tinytorch.autograd import numerical_grad

    student = Tensor(np.array([[2.0, 2.0, 0.0]], np.float32), requires_grad=True)
    soft_target_kl(student, teacher, 4.0).backward()
    print("your gradient:", student.grad.data.round(4), "(the worked example: -0.639, 0.508, 0.131)")
    s64 = np.array([[2.0, 2.0, 0.0], [0.5, -1.0, 3.0]])
    t64 = np.array([[4.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    numeric = numerical_grad(lambda a: soft_target_kl(Tensor(a, dtype=np.float64), t64, 2.0).data, s64)
    mine = soft_target_kl_backward(np.array(1.0), soft_target_kl(Tensor(s64, dtype=np.float64, requires_grad=True),
                                                                  t64, 2.0))[0]
    print("max difference from central differences:", float(np.abs(mine - numeric).max()))

# %% nbgrader={"grade": true, "grade_id": "check-soft-target-kl-backward", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("16", "soft_target_kl_backward")

# %% [markdown]
# ## Step 7: `distillation_loss`
#
# Hinton et al. train the student on a weighted sum of the soft term and the ordinary
# cross-entropy with the true labels (at temperature 1):
#
# $$\mathcal{L} = \alpha\, \mathcal{L}_{soft}(s, t;\, T) + (1 - \alpha)\, \mathrm{CE}(s, y).$$
#
# `alpha = 1` is pure imitation (no labels needed: the teacher can label unlabelled data), `alpha
# = 0` is ordinary training. Typical settings are $T$ between 2 and 8 and $\alpha$ around 0.5-0.9;
# they are hyper-parameters, tuned on validation data. Write `distillation_loss(student_logits,
# teacher_logits, targets, temperature=4.0, alpha=0.5)` with your `soft_target_kl` and module 04's
# `CrossEntropyLoss`, combined with the Tensor arithmetic of module 01 so that the gradient flows
# through both terms into the student: `alpha * soft + (1 - alpha) * hard`. With `alpha = 1` the
# targets may be `None` (the given line refuses `None` otherwise).
#
# Systems view: the teacher's forward pass is the expensive part of distillation - a big model
# run on every training batch. When the transfer set is fixed, run the teacher once and store its
# logits ($N \times C$ floats: 36 KB for the 3,000 points below); for a large vocabulary, store
# only its top-k probabilities per token, as large-language-model distillation does.

# %% nbgrader={"grade": false, "grade_id": "distillation-loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
def distillation_loss(student_logits: Tensor, teacher_logits, targets, temperature: float = 4.0,
                      alpha: float = 0.5) -> Tensor:
    """alpha * T^2 KL(soft teacher || soft student) + (1 - alpha) * CrossEntropy(student, targets)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"distillation_loss: alpha must be in [0, 1], got {alpha}")
    if targets is None and alpha < 1.0:
        raise ValueError("distillation_loss: targets are needed unless alpha == 1 (pure soft targets)")
    # HINT: soft = soft_target_kl(student_logits, teacher_logits, temperature); if alpha == 1, return soft;
    # HINT: else alpha * soft + (1 - alpha) * CrossEntropyLoss()(student_logits, targets)
    ### BEGIN SOLUTION
    soft = soft_target_kl(student_logits, teacher_logits, temperature)
    if alpha == 1.0:
        return soft
    hard = CrossEntropyLoss()(student_logits, targets)
    return soft * alpha + hard * (1.0 - alpha)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    student = Tensor(np.array([[2.0, 2.0, 0.0]], np.float32), requires_grad=True)
    for a in (0.0, 0.5, 1.0):
        loss = distillation_loss(student, teacher, np.array([0]), temperature=4.0, alpha=a)
        print(f"alpha = {a}: loss {loss.item():.4f}")
    loss.backward()
    print("gradient at alpha = 1:", student.grad.data.round(4))

# %% nbgrader={"grade": true, "grade_id": "check-distillation-loss", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("16", "distillation_loss")

# %% [markdown]
# ## Measured: a student 56 times smaller
#
# The spiral network above (66,816 weights) is the teacher. The student is $2 \to 32 \to 32 \to 3$
# (1,184 weights). Suppose only 100 of the 3,000 training points carry labels. The cell trains the
# same student, from the same initial weights and for the same number of steps, three ways: on the
# 100 labelled points alone; on all 3,000 points labelled with the teacher's *hard* predictions
# (argmax); and on all 3,000 with the teacher's *soft* targets (`distillation_loss`, $T = 2$,
# $\alpha = 1$). The teacher's logits are computed once.
#
# Measured on this project's machine, this cell printed: 0.824 for the 100 labels alone, 0.948
# with the teacher's hard labels, 0.936 with its soft targets (the teacher itself: 0.965). A
# three-seed run made while writing this lesson (a teacher trained a little longer, 900 steps
# instead of 600) gave the same picture: 0.854, 0.959 and 0.961. On this task nearly all of
# the gain comes from the teacher labelling data the student could not otherwise use; soft
# targets are no better than hard ones here - the three arms are rarely confused, so there is
# little "dark knowledge" to pass on. Soft targets matter more with many classes that resemble
# each other: on MNIST Hinton et al. report 146 test errors for a small network trained on the
# labels and 74 for the same network distilled from a large one (which made 67).

# %%
if __name__ == "__main__":
    with no_grad():
        teacher_logits = net(Tensor(x_train)).data  # (3000, 3): run the teacher once
    teacher_labels = teacher_logits.argmax(axis=1)
    labelled = np.random.default_rng(100).choice(len(x_train), 100, replace=False)

    def new_student():
        manual_seed(0)
        return Sequential(Linear(2, 32), ReLU(), Linear(32, 32), ReLU(), Linear(32, 3))

    runs = {
        "100 true labels": fit(new_student(), x_train[labelled], y_train[labelled], epochs=600),
        "3000 teacher hard labels": fit(new_student(), x_train, teacher_labels, epochs=20),
        "3000 teacher soft targets": fit(new_student(), x_train, teacher_labels, epochs=20,
                                         loss_fn=lambda logits, idx: distillation_loss(
                                             logits, teacher_logits[idx], None, temperature=2.0, alpha=1.0)),
    }
    print(f"teacher ({sum(p.size for _, p in prunable_weights(net)):,} weights): {accuracy(net, x_test, y_test):.3f}")
    for name, student_net in runs.items():
        print(f"student (1,184 weights), {name:26}: {accuracy(student_net, x_test, y_test):.3f}")

# %% [markdown]
# ## Wrap-up
#
# You built the three standard ways to make a trained network smaller:
#
# - **Magnitude pruning** (`magnitude_prune`): one global threshold over all weight matrices, the
#   smallest $|w|$ first, exactly $\operatorname{round}(s\,n)$ of them, biases untouched, measured by
#   `sparsity`. One-shot it holds up to moderate sparsity; **masked fine-tuning** - `PruneMasks.attach`
#   re-applying the masks after every optimizer step - moves the accuracy cliff much further out.
#   Without the re-application the pruned weights silently grow back at the first step.
# - **Structured pruning** (`prune_neurons`): whole hidden units out, a smaller dense network that
#   runs faster in any framework - measured, the time follows the FLOPs down until the fixed cost
#   per operation shows - at a much higher one-shot accuracy cost, which fine-tuning wins back.
# - **Knowledge distillation** (`soft_target_kl`, its backward rule $\frac{T}{N}(p_s - p_t)$,
#   `distillation_loss`): a student trained on the teacher's temperature-softened outputs, the $T^2$
#   keeping gradient scales independent of $T$, the log-softmax keeping confident teachers finite.
#
# The systems lessons: zeros in a dense array cost the same memory and the same FLOPs as any other
# number - unstructured sparsity needs sparse formats (CSR breaks even at 50% sparsity) and sparse
# kernels (which win only at very high sparsity) before it saves anything, and NumPy has neither;
# structure is what hardware can use (removed rows and columns, or GPU-friendly patterns such as
# 2:4 sparsity). Pruning, distillation and module 15's quantisation combine: prune, distil the
# pruned model from the original, then quantise it. Milestone 06 puts them to work on a LeNet-5,
# and module 19's harness measures the result. The cell below runs all of this module's checks (the same as
# `tito module test 16`); then `tito module complete 16`.

# %% nbgrader={"grade": true, "grade_id": "check-compression", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("16")
