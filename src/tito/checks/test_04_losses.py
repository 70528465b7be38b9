"""Checks for module 04 (losses): forward values against direct NumPy formulas and PyTorch.

Every loss returns a 0-d float32 Tensor. Cross-entropy and BCE-with-logits must stay finite and
exact for logits of +-1000 (compute them from log-softmax / softplus, never from e^x). Gradients
are module 06's business and are not checked here.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tinytorch.losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from tinytorch.tensor import Tensor
from tito.checks.harness import assert_close, torch_or_skip

SETTINGS = settings(deadline=None, derandomize=True, max_examples=25, database=None)


def rng(seed):
    return np.random.default_rng(seed)


def check_loss(t, expected, name, inputs, atol=1e-5, rtol=1e-5):
    """A 0-d float32 Tensor, finite, equal to `expected`."""
    if not isinstance(t, Tensor):
        raise AssertionError(f"{name}: returned {type(t).__name__}, expected a Tensor")
    if t.shape != () or t.data.dtype != np.float32:
        raise AssertionError(f"{name}: returned shape {t.shape} dtype {t.data.dtype}, expected a 0-d "
                             "float32 Tensor (one number)")
    if not np.isfinite(t.data):
        raise AssertionError(f"{name}: the loss is {t.item()} for finite inputs (avoid e^x for large x; "
                             "use the log-sum-exp / softplus trick)")
    assert_close(t, np.asarray(expected, np.float64), name, inputs, atol=atol, rtol=rtol)


# ---------------------------------------------------------------------------------------------
# Reference formulas in float64
# ---------------------------------------------------------------------------------------------
def np_log_softmax(x):
    x = np.asarray(x, np.float64)
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


def np_cross_entropy(logits, y, eps=0.0, reduction="mean"):
    logp = np_log_softmax(logits)
    n, c = logp.shape
    q = np.full((n, c), eps / c)
    q[np.arange(n), y] += 1 - eps
    per_row = -(q * logp).sum(axis=1)
    return per_row.mean() if reduction == "mean" else per_row.sum()


def np_bce(p, y, reduction="mean"):
    p, y = np.asarray(p, np.float64), np.asarray(y, np.float64)
    with np.errstate(divide="ignore"):
        per = -(y * np.maximum(np.log(p), -100) + (1 - y) * np.maximum(np.log(1 - p), -100))
    return per.mean() if reduction == "mean" else per.sum()


def np_bce_logits(x, y, reduction="mean"):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    per = np.logaddexp(0.0, x) - x * y  # softplus(x) - x y
    return per.mean() if reduction == "mean" else per.sum()


# ---------------------------------------------------------------------------------------------
# MSELoss
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("MSELoss", "MSELoss.forward")
@pytest.mark.parametrize("shape", [(), (5,), (4, 3), (2, 3, 2)], ids=["0d", "1d", "2d", "3d"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_MSELoss_forward(shape, reduction):
    p = rng(1).standard_normal(shape).astype(np.float32)
    y = rng(2).standard_normal(shape).astype(np.float32)
    sq = (p.astype(np.float64) - y) ** 2
    expected = sq.mean() if reduction == "mean" else sq.sum()
    crit = MSELoss(reduction=reduction)
    check_loss(crit(Tensor(p), Tensor(y)), expected, f"MSELoss.forward (reduction={reduction})", [p, y])
    check_loss(crit(Tensor(p), y), expected, "MSELoss.forward (target as an ndarray)", [p, y])


@pytest.mark.task("MSELoss", "MSELoss.forward")
def test_MSELoss_shape_mismatch():
    """Same shapes give the loss; different shapes raise a ValueError (no silent broadcast)."""
    p, y = np.ones((4, 1), np.float32), np.array([[0.0], [1.0], [2.0], [3.0]], np.float32)
    check_loss(MSELoss()(Tensor(p), Tensor(y)), 1.5, "MSELoss.forward", [p, y])
    with pytest.raises(ValueError, match="MSELoss"):
        MSELoss()(Tensor(p), Tensor(y.reshape(4)))


# ---------------------------------------------------------------------------------------------
# BCELoss / BCEWithLogitsLoss
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("BCELoss", "BCELoss.forward")
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_BCELoss_forward(reduction):
    p = rng(3).uniform(0.01, 0.99, (6, 2)).astype(np.float32)
    y = (rng(4).random((6, 2)) < 0.5).astype(np.float32)
    crit = BCELoss(reduction=reduction)
    check_loss(crit(Tensor(p), Tensor(y)), np_bce(p, y, reduction),
               f"BCELoss.forward (reduction={reduction})", [p, y])
    soft = rng(5).random((6, 2)).astype(np.float32)  # soft labels in [0, 1]
    check_loss(crit(Tensor(p), soft), np_bce(p, soft, reduction), "BCELoss.forward (soft labels)", [p, soft])


@pytest.mark.task("BCELoss", "BCELoss.forward")
def test_BCELoss_saturated_probabilities():
    """p exactly 0 or 1: log is clamped at -100 (as in torch), so the loss stays finite."""
    p = np.array([0.0, 1.0, 0.0, 1.0, 0.5], np.float32)
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0], np.float32)
    check_loss(BCELoss()(Tensor(p), Tensor(y)), np_bce(p, y), "BCELoss.forward (p = 0 and p = 1)", [p, y])


@pytest.mark.task("BCEWithLogitsLoss", "BCEWithLogitsLoss.forward")
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_BCEWithLogitsLoss_forward(reduction):
    x = (rng(6).standard_normal((5, 3)) * 4).astype(np.float32)
    y = (rng(7).random((5, 3)) < 0.5).astype(np.float32)
    crit = BCEWithLogitsLoss(reduction=reduction)
    check_loss(crit(Tensor(x), Tensor(y)), np_bce_logits(x, y, reduction),
               f"BCEWithLogitsLoss.forward (reduction={reduction})", [x, y])


@pytest.mark.task("BCEWithLogitsLoss", "BCEWithLogitsLoss.forward")
def test_BCEWithLogitsLoss_huge_logits():
    """Logits of +-1000: softplus(1000) = 1000 exactly, softplus(-1000) = 0; no inf, no NaN."""
    x = np.array([1000.0, 1000.0, -1000.0, -1000.0, 0.0, 50.0], np.float32)
    y = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 1.0], np.float32)
    with np.errstate(over="ignore"):
        got = BCEWithLogitsLoss(reduction="sum")(Tensor(x), Tensor(y))
    check_loss(got, 2000 + np.log(2), "BCEWithLogitsLoss.forward (logits +-1000)", [x, y], atol=1e-3)


@pytest.mark.task("BCEWithLogitsLoss", "BCEWithLogitsLoss.forward")
def test_BCEWithLogitsLoss_matches_sigmoid_then_BCELoss():
    x = rng(8).uniform(-4, 4, (8,)).astype(np.float32)
    y = (rng(9).random(8) < 0.5).astype(np.float32)
    p = (1 / (1 + np.exp(-x.astype(np.float64)))).astype(np.float32)
    check_loss(BCEWithLogitsLoss()(Tensor(x), Tensor(y)), BCELoss()(Tensor(p), Tensor(y)).data,
               "BCEWithLogitsLoss.forward (vs sigmoid + BCELoss)", [x, y], atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------------------------------------
# CrossEntropyLoss
# ---------------------------------------------------------------------------------------------
@SETTINGS
@given(n=st.integers(1, 6), c=st.integers(1, 7), scale=st.sampled_from([0.1, 1.0, 10.0, 1000.0]),
       eps=st.sampled_from([0.0, 0.1, 0.5]), reduction=st.sampled_from(["mean", "sum"]),
       seed=st.integers(0, 2**16))
@pytest.mark.task("CrossEntropyLoss", "CrossEntropyLoss.forward")
@example(n=3, c=4, scale=1000.0, eps=0.0, reduction="mean", seed=0)
@example(n=1, c=1, scale=1.0, eps=0.1, reduction="sum", seed=0)
def test_CrossEntropyLoss_forward(n, c, scale, eps, reduction, seed):
    """CrossEntropyLoss.forward for any N, C, logit scale (up to +-thousands), smoothing, reduction."""
    logits = (rng(seed).standard_normal((n, c)) * scale).astype(np.float32)
    y = rng(seed + 1).integers(0, c, n)
    crit = CrossEntropyLoss(label_smoothing=eps, reduction=reduction)
    expected = np_cross_entropy(logits, y, eps, reduction)
    check_loss(crit(Tensor(logits), Tensor(y)), expected,
               f"CrossEntropyLoss.forward (label_smoothing={eps}, reduction={reduction})", [logits, y],
               atol=1e-4, rtol=1e-5)


@pytest.mark.task("CrossEntropyLoss", "CrossEntropyLoss.forward")
def test_CrossEntropyLoss_values():
    """Uniform logits give log C; a confident right answer gives ~0; a confident wrong one ~1000."""
    check_loss(CrossEntropyLoss()(Tensor(np.zeros((2, 10))), np.array([3, 7])), np.log(10),
               "CrossEntropyLoss.forward (all-zero logits: log 10)", [np.zeros((2, 10))])
    x = np.array([[1000.0, 0.0, -1000.0], [1000.0, 0.0, -1000.0]], np.float32)
    y = np.array([0, 2])
    with np.errstate(over="ignore"):
        got = CrossEntropyLoss(reduction="sum")(Tensor(x), Tensor(y))
    check_loss(got, 2000.0, "CrossEntropyLoss.forward (logits +-1000)", [x, y], atol=1e-3)


@pytest.mark.task("CrossEntropyLoss", "CrossEntropyLoss.forward")
def test_CrossEntropyLoss_label_smoothing_value():
    """eps = 0.1, C = 4: the target gets 0.925 of the mass, every other class 0.025."""
    x = np.array([[2.0, 1.0, 0.0, -1.0]], np.float32)
    logp = np_log_softmax(x)[0]
    expected = -(0.925 * logp[0] + 0.025 * (logp[1] + logp[2] + logp[3]))
    check_loss(CrossEntropyLoss(label_smoothing=0.1)(Tensor(x), np.array([0])), expected,
               "CrossEntropyLoss.forward (label_smoothing=0.1)", [x])


@pytest.mark.task("CrossEntropyLoss", "CrossEntropyLoss.forward")
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
def test_CrossEntropyLoss_target_types(dtype):
    """Targets may be an integer Tensor, an ndarray of any integer type, or a list."""
    x = rng(10).standard_normal((3, 5)).astype(np.float32)
    y = np.array([4, 0, 2]).astype(dtype)
    expected = np_cross_entropy(x, y)
    for target in (Tensor(y), y, y.tolist()):
        check_loss(CrossEntropyLoss()(Tensor(x), target), expected,
                   f"CrossEntropyLoss.forward (targets as {type(target).__name__} of {np.dtype(dtype)})",
                   [x, y])


BAD_TARGETS = {
    "column": np.array([[1], [0], [2]]),
    "too_many": np.array([1, 0, 2, 1]),
    "too_few": np.array([1, 0]),
    "float": np.array([1.0, 0.0, 2.0], np.float32),
    "scalar": np.array(1),
}


@pytest.mark.task("CrossEntropyLoss", "CrossEntropyLoss.forward")
@pytest.mark.parametrize("case", list(BAD_TARGETS))
def test_CrossEntropyLoss_bad_targets(case):
    """Good (N,) integer targets give the loss; anything else raises a clear ValueError."""
    x = rng(11).standard_normal((3, 4)).astype(np.float32)
    good = np.array([1, 0, 2])
    check_loss(CrossEntropyLoss()(Tensor(x), good), np_cross_entropy(x, good), "CrossEntropyLoss.forward",
               [x, good])
    with pytest.raises(ValueError, match=r"\(3,\)"):
        CrossEntropyLoss()(Tensor(x), Tensor(BAD_TARGETS[case]))


@pytest.mark.task("CrossEntropyLoss", "CrossEntropyLoss.forward")
def test_CrossEntropyLoss_bad_logits_and_reduction():
    x = rng(12).standard_normal((2, 3)).astype(np.float32)
    y = np.array([2, 1])
    check_loss(CrossEntropyLoss(reduction="sum")(Tensor(x), y), np_cross_entropy(x, y, reduction="sum"),
               "CrossEntropyLoss.forward (reduction=sum)", [x, y])
    with pytest.raises(ValueError, match="logits"):
        CrossEntropyLoss()(Tensor(x[0]), y[:1])  # 1-D logits
    with pytest.raises(ValueError, match="reduction"):
        CrossEntropyLoss(reduction="avg")


# ---------------------------------------------------------------------------------------------
# PyTorch as the oracle (skipped when torch is not installed)
# ---------------------------------------------------------------------------------------------
def _cases(torch):
    F = torch.nn.functional
    logits = (rng(20).standard_normal((6, 5)) * 3).astype(np.float32)
    logits[0] = [1000.0, -1000.0, 0.0, 500.0, -3.0]  # a row of huge logits
    y = rng(21).integers(0, 5, 6)
    x = (rng(22).standard_normal((4, 3)) * 5).astype(np.float32)
    x[0] = [1000.0, -1000.0, 0.0]
    t = (rng(23).random((4, 3)) < 0.5).astype(np.float32)
    p = rng(24).uniform(0.0, 1.0, (4, 3)).astype(np.float32)
    p[0] = [0.0, 1.0, 0.5]
    a, b = rng(25).standard_normal((2, 4, 3)).astype(np.float32)
    T = torch.tensor
    return {  # case -> (ours, theirs): computed only when that case runs
        "CrossEntropyLoss": lambda: (CrossEntropyLoss()(Tensor(logits), y), F.cross_entropy(T(logits), T(y))),
        "CrossEntropyLoss_label_smoothing": lambda: (
            CrossEntropyLoss(label_smoothing=0.2)(Tensor(logits), y),
            F.cross_entropy(T(logits), T(y), label_smoothing=0.2)),
        "CrossEntropyLoss_sum": lambda: (
            CrossEntropyLoss(reduction="sum", label_smoothing=0.05)(Tensor(logits), y),
            F.cross_entropy(T(logits), T(y), reduction="sum", label_smoothing=0.05)),
        "BCEWithLogitsLoss": lambda: (BCEWithLogitsLoss()(Tensor(x), t),
                                      F.binary_cross_entropy_with_logits(T(x), T(t))),
        "BCEWithLogitsLoss_sum": lambda: (BCEWithLogitsLoss(reduction="sum")(Tensor(x), t),
                                          F.binary_cross_entropy_with_logits(T(x), T(t), reduction="sum")),
        "BCELoss": lambda: (BCELoss()(Tensor(p), t), F.binary_cross_entropy(T(p), T(t))),
        "BCELoss_sum": lambda: (BCELoss(reduction="sum")(Tensor(p), t),
                                F.binary_cross_entropy(T(p), T(t), reduction="sum")),
        "MSELoss": lambda: (MSELoss()(Tensor(a), Tensor(b)), F.mse_loss(T(a), T(b))),
        "MSELoss_sum": lambda: (MSELoss(reduction="sum")(Tensor(a), b),
                                F.mse_loss(T(a), T(b), reduction="sum")),
    }


CASE_NAMES = ["CrossEntropyLoss", "CrossEntropyLoss_label_smoothing", "CrossEntropyLoss_sum",
              "BCEWithLogitsLoss", "BCEWithLogitsLoss_sum", "BCELoss", "BCELoss_sum",
              "MSELoss", "MSELoss_sum"]


def _by_task(case: str):
    cls = case.split("_")[0]
    return pytest.param(case, marks=pytest.mark.task(cls, f"{cls}.forward"), id=case)


@pytest.mark.parametrize("case", [_by_task(c) for c in CASE_NAMES])
def test_loss_forward_vs_torch(case):
    torch = torch_or_skip()
    name = case.split("_")[0]
    with np.errstate(over="ignore", divide="ignore"):
        ours, theirs = _cases(torch)[case]()
    check_loss(ours, theirs.double().numpy(), f"{name}.forward ({case} vs PyTorch)", [], atol=1e-4, rtol=1e-5)
