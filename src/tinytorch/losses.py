# %% [markdown]
# # Module 04 - Losses
#
# A loss turns "how wrong is the model" into one number to minimise. Cross-entropy is computed
# fused and stable: log-softmax via the max trick, then the negative log-likelihood of the target,
# so that a logit of 1000 gives a finite loss.

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


class MSELoss(Loss):
    """Mean squared error, built from Tensor ops (its gradient comes from the op rules)."""

    def forward(self, prediction: Tensor, target) -> Tensor:
        target = prediction._lift(target)
        if target.shape != prediction.shape:
            raise ValueError(f"MSELoss: prediction {prediction.shape} and target {target.shape} differ")
        ### BEGIN SOLUTION
        diff = prediction - target
        sq = diff * diff
        return sq.mean() if self.reduction == "mean" else sq.sum()
        ### END SOLUTION


class BCELoss(Loss):
    """Binary cross-entropy on probabilities p in [0, 1] (e.g. after a Sigmoid)."""

    def forward(self, prediction: Tensor, target) -> Tensor:
        y = prediction._lift(target)
        p = prediction.data
        ### BEGIN SOLUTION
        with np.errstate(divide="ignore"):  # log 0 = -inf, clamped to -100 (as torch does)
            log_p = np.maximum(np.log(np.maximum(p, 0)), -100)
            log_1mp = np.maximum(np.log(np.maximum(1 - p, 0)), -100)
        total = -(y.data * log_p + (1 - y.data) * log_1mp).sum()
        ### END SOLUTION
        scale = _scale(self.reduction, p.size)
        return Tensor._make(np.asarray(total * scale, dtype=p.dtype), (prediction, y), "bce", scale)


class BCEWithLogitsLoss(Loss):
    """Sigmoid + binary cross-entropy in one stable step, on raw scores (logits)."""

    def forward(self, prediction: Tensor, target) -> Tensor:
        y = prediction._lift(target)
        x = prediction.data
        ### BEGIN SOLUTION
        total = (np.maximum(x, 0) - x * y.data + np.log1p(np.exp(-np.abs(x)))).sum()
        z = np.exp(-np.abs(x))
        sig = np.where(x >= 0, 1 / (1 + z), z / (1 + z))  # sigmoid(x), saved for backward
        ### END SOLUTION
        scale = _scale(self.reduction, x.size)
        out = np.asarray(total * scale, dtype=x.dtype)
        return Tensor._make(out, (prediction, y), "bce_with_logits", (sig, scale))


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
