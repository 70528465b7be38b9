# %% [markdown]
# # Module 04 - Losses
#
# A loss turns "how wrong is the model" into one number to minimise. Cross-entropy is computed
# fused and stable: log-softmax via the max trick, then the negative log-likelihood of the target,
# so that a logit of 1000 gives a finite loss.
#
# You write the four losses that cover regression, binary and multi-class classification, each
# computed so that extreme inputs give finite, exact answers - and each recording what module 06
# will need to differentiate it in one cheap step.
#
# ## What you build
#
# - `MSELoss.forward`: $\text{mean}((\hat y - y)^2)$, for regression.
# - `BCELoss.forward`: $-\text{mean}(y \log p + (1 - y) \log(1 - p))$ on probabilities, with the
#   logs clamped at -100 (as PyTorch).
# - `BCEWithLogitsLoss.forward`: the same loss on raw scores, in the stable form
#   $\text{mean}(\max(x, 0) - xy + \log(1 + e^{-|x|}))$.
# - `CrossEntropyLoss.forward`: logits (N, C) and integer targets (N,); a fused, stable
#   log-softmax followed by the negative log-likelihood, with optional label smoothing
#   $q = (1 - \varepsilon)\,\text{onehot}(y) + \varepsilon / C$.
#
# Each loss supports `reduction="mean"` (the default) or `"sum"`, and returns a 0-d float32
# Tensor. As in every lesson: read a section, write the code cell below it, run the "try it"
# cell, then the check cell - it runs the same checks as `tito module test 04 --task ...`.

# %%
"""Module 04: loss functions (forward only; module 06 adds the fused backward rules).

    MSE:            L = mean((y_hat - y)^2)
    BCE:            L = -mean(y log p + (1 - y) log(1 - p))          (logs clamped at -100, as torch)
    BCE with logits L = mean(max(x, 0) - x y + log(1 + e^-|x|))      (stable softplus)
    Cross-entropy:  L = -mean_n sum_c q_nc log softmax(x_n)_c,  q = (1-eps) onehot(y) + eps/C
"""

from __future__ import annotations

import numpy as np

from tinytorch.tensor import Tensor

# %% [markdown]
# ## A loss: one number, and a note for the backward pass
#
# Training is minimisation, and you can only minimise one number at a time. A loss takes the
# model's prediction for a whole batch and the targets, compares them sample by sample, and
# *reduces* the per-sample losses to a scalar: their mean (`reduction="mean"`, the default) or their
# sum (`"sum"`). The mean is the usual choice because it does not change scale with the batch size:
# a learning rate that works for batches of 32 still works for batches of 128. The sum is what you
# want when you add up losses over several batches yourself.
#
# A loss is used like a function, `loss = criterion(prediction, target)`, and returns a 0-d Tensor:
# `loss.item()` is the number, and `loss.backward()` (module 06) starts the backward pass from it.
#
# Two kinds of loss live here. `MSELoss` is built from Tensor ops (`-`, `*`, `mean`), so the graph
# records each op and module 06 differentiates it with the rules it already has. The other three
# are **fused**: they compute their value with NumPy in one go and record one node,
# `Tensor._make(value, parents, op, saved)`, whose `saved` holds what the backward rule will need -
# the scale $1/N$, and for the logits losses the probabilities the forward pass computed anyway.
# That line is given after each of your regions; you compute the value.
#
# Given here: `_scale(reduction, n)` is $1/n$ for the mean and 1 for the sum (and rejects any
# other reduction), `_targets(t, n)` turns class labels (a Tensor, an array of any integer type, or a
# list) into an int64 array of shape (n,), with a clear error for anything else, and `Loss` is the
# base class that stores the reduction and makes `criterion(...)` call `forward`.

# %%
def _targets(t, n: int) -> np.ndarray:
    """Integer class labels as an int64 array of length n."""
    y = np.asarray(t.data if isinstance(t, Tensor) else t)
    if y.shape != (n,) or y.dtype.kind not in "iu":
        raise ValueError(f"CrossEntropyLoss expects integer targets of shape ({n},), got {y.dtype} {y.shape}")
    return y.astype(np.int64, copy=False)


def _scale(reduction: str, n: int) -> float:
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    return 1.0 / n if reduction == "mean" else 1.0


class Loss:
    """A loss is called like a function: `loss = criterion(prediction, target)` -> scalar Tensor."""

    def __init__(self, reduction: str = "mean"):
        _scale(reduction, 1)
        self.reduction = reduction

    def __call__(self, prediction: Tensor, target) -> Tensor:
        return self.forward(prediction, target)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# %% [markdown]
# ## MSELoss: mean squared error
#
# For regression - predicting a number, a price, a coordinate - the natural measure of error is the
# squared distance:
#
# $$L = \frac{1}{N}\sum_{i=1}^{N} (\hat y_i - y_i)^2 .$$
#
# Squaring makes every error positive and punishes big errors much more than small ones (an error
# of 2 costs four times an error of 1), which is also its weakness: one outlier can dominate the
# loss. It is the maximum-likelihood loss when the noise on the targets is Gaussian.
#
# **Worked example.** $\hat y = [2.5, 0, 2]$, $y = [3, -0.5, 2]$: the differences are
# $[-0.5, 0.5, 0]$, the squares $[0.25, 0.25, 0]$, the mean $0.1667$ and the sum $0.5$.
#
# **What to write.** The given lines lift the target to a Tensor and refuse a shape mismatch
# (broadcasting a (N, 1) prediction against a (N,) target would silently compare every prediction
# with every target - an (N, N) matrix of nonsense). Then compute it *with Tensor ops*:
# `diff = prediction - target`, `diff * diff`, then `.mean()` or `.sum()`. No fused rule is needed:
# module 06 will get $\partial L/\partial \hat y = 2(\hat y - y)/N$ from the rules of those three ops.
#
# **Systems view.** About $3N$ FLOPs and two temporaries of $N$ floats each (`diff` and its
# square), both kept in the graph for the backward pass. In milestone 03's first part - XOR learnt
# by backpropagation with squared error, as in 1986 - that is a (4, 1) array: trivial. The cost of a
# loss is almost never the problem; its numerical behaviour is, as the next three show.

# %% nbgrader={"grade": false, "grade_id": "mse-loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
class MSELoss(Loss):
    """Mean squared error, built from Tensor ops (its gradient comes from the op rules)."""

    def forward(self, prediction: Tensor, target) -> Tensor:
        target = prediction._lift(target)
        if target.shape != prediction.shape:
            raise ValueError(f"MSELoss: prediction {prediction.shape} and target {target.shape} differ")
        # HINT: with Tensor ops: diff = prediction - target, then (diff * diff).mean() or .sum()
        ### BEGIN SOLUTION
        diff = prediction - target
        sq = diff * diff
        return sq.mean() if self.reduction == "mean" else sq.sum()
        ### END SOLUTION


# %%
if __name__ == "__main__":
    # Try it: the worked example, 0.1667 (mean) and 0.5 (sum).
    y_hat, y = Tensor([2.5, 0.0, 2.0]), Tensor([3.0, -0.5, 2.0])
    print(MSELoss()(y_hat, y), MSELoss(reduction="sum")(y_hat, y))

# %% nbgrader={"grade": true, "grade_id": "check-mse-loss", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("04", "MSELoss.forward")

# %% [markdown]
# ## BCELoss: binary cross-entropy on probabilities
#
# For a yes/no question the model outputs a probability $p \in [0, 1]$ (usually through a sigmoid)
# and the target is $y \in \{0, 1\}$. The loss is the negative log of the probability the model gave
# to what actually happened:
#
# $$L = -\frac{1}{N}\sum_i \big[\, y_i \log p_i + (1 - y_i) \log(1 - p_i) \,\big].$$
#
# For $y = 1$ only the first term is there, $-\log p$; for $y = 0$ only $-\log(1 - p)$. A
# confident right answer costs almost nothing ($-\log 0.99 = 0.01$); a confident wrong one costs a
# lot ($-\log 0.01 = 4.6$) and grows without bound as the model gets surer of its mistake. This is
# maximum likelihood for a Bernoulli variable: minimising it makes $p$ the model's honest estimate of
# $P(y = 1)$.
#
# **The log of zero.** $p$ can be exactly 0 or 1, and not only in contrived cases: in float32 a
# sigmoid returns exactly 1.0 for every input above about 17, because $1 - e^{-17} \approx 1 - 4
# \times 10^{-8}$ rounds to 1. Then $\log(1 - p) = \log 0 = -\infty$, the loss is infinite, and one
# such sample turns the mean of the whole batch into `inf` - and its gradient into `nan`. PyTorch
# clamps each log at $-100$, so a certain mistake costs exactly 100: large enough to dominate, finite
# enough to compute with. Do the same: take `np.log` of the probabilities (inside
# `np.errstate(divide="ignore")`, so that $\log 0 = -\infty$ passes without a warning), then
# `np.maximum(..., -100)`. Clipping the *logs* rather than the probabilities is exact for every $p$
# that is not 0 or 1: nothing else changes.
#
# **Worked example.** $p = [0.9, 0.2, 1.0]$, $y = [1, 0, 0]$: the per-sample losses are
# $-\log 0.9 = 0.1054$, $-\log 0.8 = 0.2231$, and $-\log 0 \to 100$; the mean is $33.4428$.
#
# **What to write.** The sum of the per-sample losses, `total`, as a NumPy number; the given lines
# scale it and record the `"bce"` node. Module 06's rule will be
# $\partial L / \partial p = (p - y) / (p(1-p)) / N$, which itself blows up near 0 and 1 - one more
# reason for the next loss.

# %% nbgrader={"grade": false, "grade_id": "bce-loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
class BCELoss(Loss):
    """Binary cross-entropy on probabilities p in [0, 1] (e.g. after a Sigmoid)."""

    def forward(self, prediction: Tensor, target) -> Tensor:
        y = prediction._lift(target)
        p = prediction.data
        # HINT: log p and log(1 - p) with np.log under np.errstate(divide="ignore"), each clamped
        # HINT: with np.maximum(..., -100); total = -(y log p + (1 - y) log(1 - p)) summed
        ### BEGIN SOLUTION
        with np.errstate(divide="ignore"):  # log 0 = -inf, clamped to -100 (as torch does)
            log_p = np.maximum(np.log(np.maximum(p, 0)), -100)
            log_1mp = np.maximum(np.log(np.maximum(1 - p, 0)), -100)
        total = -(y.data * log_p + (1 - y.data) * log_1mp).sum()
        ### END SOLUTION
        scale = _scale(self.reduction, p.size)
        return Tensor._make(np.asarray(total * scale, dtype=p.dtype), (prediction, y), "bce", scale)


# %%
if __name__ == "__main__":
    # Try it: the worked example (33.4428), and a certain mistake costing exactly 100.
    print(BCELoss()(Tensor([0.9, 0.2, 1.0]), Tensor([1.0, 0.0, 0.0])))
    print(BCELoss()(Tensor([0.0]), Tensor([1.0])))

# %% nbgrader={"grade": true, "grade_id": "check-bce-loss", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("04", "BCELoss.forward")

# %% [markdown]
# ## BCEWithLogitsLoss: sigmoid and BCE in one stable step
#
# The clamp at -100 keeps BCE finite, but it is not *right*: a logit of $x = 1000$ for a target
# of 0 is a mistake of size 1000, and a sigmoid followed by BCE reports 100. The information was lost
# in the sigmoid, which rounded $\sigma(1000)$ to exactly 1. The cure is to never form $p$: take the
# raw score $x$ (the *logit*) and do the algebra first.
#
# With $\sigma(x) = 1/(1 + e^{-x})$ we have $\log \sigma(x) = -\log(1 + e^{-x})$ and
# $\log(1 - \sigma(x)) = -x - \log(1 + e^{-x})$. Put into the BCE formula, per sample:
#
# $$\ell(x, y) = -y \log\sigma(x) - (1-y)\log(1-\sigma(x)) = \log(1 + e^{x}) - xy = \operatorname{softplus}(x) - xy .$$
#
# Now only softplus has to be computed carefully. $\log(1 + e^x)$ overflows for $x \gtrsim 89$ in
# float32 ($e^{89} > 3.4 \times 10^{38}$), but it can be split as the log-sum-exp of $0$ and $x$:
# factor out the larger of the two,
#
# $$\log(1 + e^x) = \max(x, 0) + \log(1 + e^{-|x|}),$$
#
# where $e^{-|x|} \le 1$ can never overflow, and `np.log1p(z)` computes $\log(1 + z)$ accurately even
# when $z$ is tiny (in float32 a plain `log(1 + z)` rounds $1 + 10^{-8}$ to 1 and returns 0). So
#
# $$\ell(x, y) = \max(x, 0) - xy + \log(1 + e^{-|x|}).$$
#
# **Worked example.** $x = [2, -1, 1000]$, $y = [1, 0, 0]$: $2 - 2 + \log(1 + e^{-2}) = 0.1269$;
# $0 - 0 + \log(1 + e^{-1}) = 0.3133$; $1000 - 0 + \log(1 + e^{-1000}) = 1000$. The mean is
# $333.4801$ - where sigmoid-then-BCE gives $33.4801$, wrong by 900 in the third sample.
#
# **What to write.** `total`, the sum of $\ell$ over all elements, and `sig`, the sigmoid of $x$,
# which the given line saves for the backward pass: module 06's rule is simply
# $\partial L/\partial x = (\sigma(x) - y)/N$ - bounded, never `nan`. Compute `sig` the stable way
# module 02 did (with $z = e^{-|x|}$: $1/(1+z)$ for $x \ge 0$, $z/(1+z)$ otherwise), reusing the
# same $z$.
#
# **Systems view.** A handful of elementwise passes (abs, exp, log1p, max, multiply) over the $N$
# logits, about $10N$ FLOPs and a few temporaries of $N$ floats; the saved sigmoid is $4N$ bytes.
# It is the loss to use for binary (and multi-label) classification: milestone 02's second part
# trains XOR with it.

# %% nbgrader={"grade": false, "grade_id": "bce-with-logits-loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
class BCEWithLogitsLoss(Loss):
    """Sigmoid + binary cross-entropy in one stable step, on raw scores (logits)."""

    def forward(self, prediction: Tensor, target) -> Tensor:
        y = prediction._lift(target)
        x = prediction.data
        # HINT: total = sum of max(x, 0) - x*y + log1p(exp(-|x|));
        # HINT: sig = sigmoid(x) from z = exp(-|x|): 1/(1+z) where x >= 0, z/(1+z) elsewhere
        ### BEGIN SOLUTION
        total = (np.maximum(x, 0) - x * y.data + np.log1p(np.exp(-np.abs(x)))).sum()
        z = np.exp(-np.abs(x))
        sig = np.where(x >= 0, 1 / (1 + z), z / (1 + z))  # sigmoid(x), saved for backward
        ### END SOLUTION
        scale = _scale(self.reduction, x.size)
        out = np.asarray(total * scale, dtype=x.dtype)
        return Tensor._make(out, (prediction, y), "bce_with_logits", (sig, scale))


# %%
if __name__ == "__main__":
    # Try it: the worked example, 333.4801, against sigmoid-then-BCE, 33.4801.
    from tinytorch.activations import sigmoid

    x, y = Tensor([2.0, -1.0, 1000.0]), Tensor([1.0, 0.0, 0.0])
    print("BCEWithLogitsLoss:", BCEWithLogitsLoss()(x, y))
    print("sigmoid + BCELoss:", BCELoss()(sigmoid(x), y))

# %% nbgrader={"grade": true, "grade_id": "check-bce-with-logits-loss", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("04", "BCEWithLogitsLoss.forward")

# %% [markdown]
# ## CrossEntropyLoss: log-softmax and negative log-likelihood, fused
#
# With $C$ classes (10 digits for MNIST) the model outputs $C$ logits per sample, softmax turns them
# into a probability distribution, and the loss is the negative log of the probability of the true
# class $y$:
#
# $$L = -\frac{1}{N}\sum_n \log \operatorname{softmax}(x_n)_{y_n}, \qquad
# \log\operatorname{softmax}(x)_c = x_c - \log\sum_j e^{x_j}.$$
#
# **The max trick (log-sum-exp).** $e^{x_j}$ overflows for a logit above about 89. Subtracting the
# row's maximum $m$ changes nothing mathematically -
# $\log\sum_j e^{x_j} = m + \log\sum_j e^{x_j - m}$ - but now the largest term is $e^0 = 1$, every
# term is at most 1, and the sum is between 1 and $C$, so its log is always finite. That gives
# `log_probs = shifted - log(sum(exp(shifted)))` with `shifted = x - m`, a (N, C) array of log
# probabilities, every entry $\le 0$. Then pick each row's target entry with fancy indexing,
# `log_probs[np.arange(N), y]`: one gather of N numbers, no loop and no one-hot matrix.
#
# **Worked example.** Logits $[2, 1, 0.1]$, target 0. Shifted: $[0, -1, -1.9]$; exponentials
# $[1, 0.3679, 0.1496]$, sum $1.5174$, log $0.4170$. Log-probabilities $[-0.4170, -1.4170, -2.3170]$,
# so the loss is $0.4170$, and the probabilities are $[0.6590, 0.2424, 0.0986]$.

# %% [markdown]
# ### Why fused: stabler and faster
#
# You could compute the same thing as three ops: `Softmax`, then `log`, then pick the target. It
# breaks. Take logits $[1000, 0]$ with target 1: the softmax is $[1, e^{-1000}]$, and $e^{-1000}$
# underflows to exactly 0 in float32 (anything below about $10^{-45}$ does), so the loss is
# $-\log 0 = \infty$. The fused form never takes the log of a probability: its log-probabilities are
# $[0, -1000]$, and the loss is exactly $1000$. Every entry of `log_probs` stays finite for finite
# logits.
#
# It is also cheaper. The unfused chain records three nodes and makes three full passes over an
# (N, C) array forward, and three more backward, each reading and writing $4NC$ bytes; for the
# large $C$ of a language model the loss is limited by that memory traffic, not by arithmetic. And
# the backward of the fused op collapses to one line. With $\log p_c = x_c - \log\sum_j e^{x_j}$
# and any target distribution $q$ with $\sum_c q_c = 1$,
#
# $$\frac{\partial}{\partial x_j}\Big(-\sum_c q_c \log p_c\Big) = -q_j + \sum_c q_c\, p_j = p_j - q_j .$$
#
# The gradient of cross-entropy with respect to the logits is **softmax minus one-hot**, divided by
# $N$ for the mean. In the worked example that is $[0.6590 - 1, 0.2424, 0.0986] = [-0.3410,
# 0.2424, 0.0986]$: push the true class up, the others down, each in proportion to the probability
# the model wrongly gave it. Module 06 implements exactly this rule, which is why the forward pass
# saves `probs` (it has `exp / sum_exp` almost for free) instead of making the backward recompute it.
# Going through the chain instead would mean multiplying by softmax's Jacobian, a $C \times C$ matrix
# per sample if formed naively - $N C^2$ work where $p - q$ costs $NC$.

# %% [markdown]
# ### Label smoothing, and the systems view
#
# **Label smoothing** (`label_smoothing=eps`) trains towards a softened target: the true class gets
# $1 - \varepsilon + \varepsilon/C$ and every other class $\varepsilon/C$, i.e.
# $q = (1-\varepsilon)\,\text{onehot}(y) + \varepsilon/C$. It stops the model from pushing the right
# logit towards infinity and often generalises a little better. The loss per sample becomes
#
# $$-\sum_c q_c \log p_c = (1 - \varepsilon)\,\text{nll} - \varepsilon \cdot \text{mean}_c \log p_c ,$$
#
# so it costs one extra mean over the rows of `log_probs`. In the worked example with
# $\varepsilon = 0.1$: $0.9 \cdot 0.4170 + 0.1 \cdot 1.3837 = 0.5137$. The gradient is still $p - q$.
#
# **Memory and FLOPs.** Each step makes a few (N, C) float32 arrays - `shifted`, `exp`, `log_probs`,
# `probs` - and keeps `probs` for the backward pass, with about 6 FLOPs and one `exp` per element.
# For MNIST, (128, 10), that is 5 KB per array: nothing. For a language model with a vocabulary of
# $C = 50{,}257$ tokens and $N = 8 \times 1024$ tokens per batch, one such array is
# $8192 \cdot 50257 \cdot 4 \approx 1.65$ GB - the loss alone can need more memory than the model,
# which is why large models compute it in chunks of rows.
#
# **What to write.** `shifted`, `exp`, `sum_exp` (keep the axis: (N, 1)), `log_probs`, the per-row
# `nll` (with the smoothing term when `eps` is not 0) and `probs`. The given lines check the shapes,
# normalise the targets, and afterwards scale the sum of `nll` and record the `"cross_entropy"` node
# with `(probs, y, eps, scale)`.

# %% nbgrader={"grade": false, "grade_id": "cross-entropy-loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
class CrossEntropyLoss(Loss):
    """Softmax + negative log-likelihood over integer class targets.

    logits: (N, C) raw scores.  targets: (N,) integers in [0, C).
    label_smoothing eps spreads eps of the target mass evenly over all C classes.
    """

    def __init__(self, label_smoothing: float = 0.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: Tensor, targets) -> Tensor:
        if logits.ndim != 2:
            raise ValueError(f"CrossEntropyLoss expects logits of shape (N, C), got {logits.shape}")
        n, c = logits.shape
        y = _targets(targets, n)
        eps = self.label_smoothing
        # HINT: shifted = x - row max; log_probs = shifted - log(sum(exp(shifted))) per row;
        # HINT: nll = -log_probs[np.arange(n), y]; with eps: (1 - eps) * nll - eps * mean_c log_probs;
        # HINT: probs = exp / sum_exp (saved for module 06)
        ### BEGIN SOLUTION
        shifted = logits.data - logits.data.max(axis=1, keepdims=True)  # (N, C), max is 0
        exp = np.exp(shifted)
        sum_exp = exp.sum(axis=1, keepdims=True)  # (N, 1)
        log_probs = shifted - np.log(sum_exp)  # (N, C)
        nll = -log_probs[np.arange(n), y]  # (N,)
        if eps:
            nll = (1 - eps) * nll - eps * log_probs.mean(axis=1)
        probs = exp / sum_exp  # (N, C), saved for the backward pass
        ### END SOLUTION
        scale = _scale(self.reduction, n)
        out = np.asarray(nll.sum() * scale, dtype=logits.dtype)
        return Tensor._make(out, (logits, Tensor(y)), "cross_entropy", (probs, y, eps, scale))


# %%
if __name__ == "__main__":
    # Try it: the worked example (0.4170, smoothed 0.5137), and logits of 1000 giving exactly 1000.
    logits = Tensor([[2.0, 1.0, 0.1]])
    print(CrossEntropyLoss()(logits, [0]), CrossEntropyLoss(label_smoothing=0.1)(logits, [0]))
    print(CrossEntropyLoss()(Tensor([[1000.0, 0.0]]), [1]))

# %% nbgrader={"grade": true, "grade_id": "check-cross-entropy-loss", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("04", "CrossEntropyLoss.forward")

# %% [markdown]
# ### A preview of module 06: softmax minus one-hot, measured
#
# The gradient rule above can be checked with nothing but your forward pass. Nudge one logit by a
# small $h$ each way and divide the change of the loss by $2h$ (a *central difference*); do it for
# every logit of a small batch and compare with $(p - \text{onehot}(y))/N$. In float64 the two agree
# far better than $10^{-8}$; module 06's checks compare every backward rule with such differences.

# %%
if __name__ == "__main__":
    # Try it: central differences of the loss against (softmax - onehot) / N, in float64.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    y = np.array([0, 2, 1, 2])
    loss = CrossEntropyLoss()
    h, numeric = 1e-5, np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        numeric[idx] = (loss(Tensor(up, dtype=np.float64), y).item()
                        - loss(Tensor(down, dtype=np.float64), y).item()) / (2 * h)
    p = np.exp(x - x.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    rule = (p - np.eye(3)[y]) / len(y)
    print("largest difference:", np.abs(numeric - rule).max())

# %% [markdown]
# ## Wrap-up
#
# You wrote the four losses of everyday deep learning, and each taught a piece of numerical
# craft:
#
# - `MSELoss` is three Tensor ops; its gradient comes for free from their rules.
# - `BCELoss` meets the log of zero: probabilities that round to exactly 0 or 1 are routine in
#   float32, so the logs are clamped at -100.
# - `BCEWithLogitsLoss` avoids the problem instead of clamping it: the algebra
#   $\operatorname{softplus}(x) - xy$ with the log-sum-exp split gives the exact loss for any logit,
#   and a gradient, $\sigma(x) - y$, that is always bounded.
# - `CrossEntropyLoss` fuses log-softmax with the negative log-likelihood: finite for any logits,
#   fewer passes over memory, and a backward rule of one subtraction, softmax minus one-hot.
#
# The systems lessons: prefer the form of a formula that cannot overflow (subtract the max; use
# `log1p`); fuse ops when their composition has a simple derivative; and watch the (N, C) arrays,
# which grow with the vocabulary, not with the model.
#
# Next: module 05 feeds the model its data in mini-batches, and module 06 turns each of these
# losses into gradients - using the `saved` values you recorded here. Milestone 02 trains XOR with
# `BCEWithLogitsLoss`, and milestone 03 trains an MNIST MLP with `CrossEntropyLoss`.
#
# Check your work from the terminal too:
#
#     tito module test 04
#     tito module complete 04
#
# The last cell runs every check of this module.

# %% nbgrader={"grade": true, "grade_id": "check-all", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("04")
