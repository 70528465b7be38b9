"""Checks for module 04 (losses): forward values against direct NumPy formulas and PyTorch.

Every loss returns a 0-d float32 Tensor. Cross-entropy and BCE-with-logits must stay finite and
exact for logits of +-1000 (compute them from log-softmax / softplus, never from e^x). Gradients
are module 06's business and are not checked here, but what module 06 relies on is: the
probabilities CrossEntropyLoss and BCEWithLogitsLoss save for the backward pass (`out._saved`) are
right at +-1000 too, float64 inputs give a float64 loss at float64 precision, and no loss writes
into its inputs (every expectation is computed from a copy taken before the call).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tinytorch.losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from tinytorch.tensor import Tensor
from tito.checks.harness import (assert_close, blame, expect_error,
                                   hypothesis_settings, torch_or_skip)

SETTINGS = hypothesis_settings(max_examples=25)  # one minimal failure, reproducible


def rng(seed):
    return np.random.default_rng(seed)


def loss_of(name: str, crit, prediction: np.ndarray, target, dtype=None):
    """crit(Tensor(prediction), target), failing (naming `name`) if the loss wrote into the prediction
    or the target (Tensor(x) shares x's memory)."""
    arrays = [prediction] + [a for a in (getattr(target, "data", target),) if isinstance(a, np.ndarray)]
    before = [a.copy() for a in arrays]
    out = crit(Tensor(prediction, dtype=dtype), target)
    for a, b, what in zip(arrays, before, ("prediction", "target")):
        if not np.array_equal(a, b, equal_nan=True):
            raise AssertionError(f"{name}: changed the {what} in place; compute new arrays (x - m, "
                                 "np.clip(p, ...)) instead of writing into its .data")
    return out


def check_loss(t, expected, name, inputs, atol=1e-5, rtol=1e-5, dtype=np.float32):
    """A 0-d Tensor of `dtype` (float32 unless the inputs were float64), finite, equal to `expected`."""
    if not isinstance(t, Tensor):
        raise AssertionError(f"{name}: returned {type(t).__name__}, expected a Tensor")
    if t.shape != () or t.data.dtype != dtype:
        raise AssertionError(f"{name}: returned shape {t.shape} dtype {t.data.dtype}, expected a 0-d "
                             f"{np.dtype(dtype)} Tensor (one number)")
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
@pytest.mark.parametrize("shape", [(), (5,), (4, 3), (2, 3, 2), (2, 1, 3, 2)], ids=["0d", "1d", "2d", "3d", "4d"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_MSELoss_forward(shape, reduction):
    p = rng(1).standard_normal(shape).astype(np.float32)
    y = rng(2).standard_normal(shape).astype(np.float32)
    sq = (p.astype(np.float64) - y) ** 2
    expected = sq.mean() if reduction == "mean" else sq.sum()
    crit = MSELoss(reduction=reduction)
    name = f"MSELoss.forward (reduction={reduction})"
    check_loss(loss_of(name, crit, p, Tensor(y)), expected, name, [p, y])
    check_loss(loss_of(name, crit, p, y), expected, "MSELoss.forward (target as an ndarray)", [p, y])
    check_loss(loss_of(name, crit, p, y.tolist()), expected, "MSELoss.forward (target as a list)", [p, y])


@pytest.mark.task("MSELoss", "MSELoss.forward")
def test_MSELoss_shape_mismatch():
    """Same shapes give the loss; different shapes raise a ValueError (no silent broadcast)."""
    p, y = np.ones((4, 1), np.float32), np.array([[0.0], [1.0], [2.0], [3.0]], np.float32)
    check_loss(loss_of("MSELoss.forward", MSELoss(), p, Tensor(y)), 1.5, "MSELoss.forward", [p, y])
    expect_error("MSELoss.forward (prediction (4, 1), target (4,))", ValueError,
                 MSELoss(), Tensor(p), Tensor(y.reshape(4)), match="MSELoss")


# ---------------------------------------------------------------------------------------------
# BCELoss / BCEWithLogitsLoss
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("BCELoss", "BCELoss.forward")
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_BCELoss_forward(reduction):
    p = rng(3).uniform(0.01, 0.99, (6, 2)).astype(np.float32)
    y = (rng(4).random((6, 2)) < 0.5).astype(np.float32)
    crit = BCELoss(reduction=reduction)
    name = f"BCELoss.forward (reduction={reduction})"
    check_loss(loss_of(name, crit, p, Tensor(y)), np_bce(p, y, reduction), name, [p, y])
    soft = rng(5).random((6, 2)).astype(np.float32)  # soft labels in [0, 1]
    check_loss(loss_of(name, crit, p, soft), np_bce(p, soft, reduction), "BCELoss.forward (soft labels)", [p, soft])
    labels = y.astype(np.int64)  # 0/1 integer labels work too
    check_loss(loss_of(name, crit, p, labels), np_bce(p, y, reduction), "BCELoss.forward (int64 labels)", [p, y])


@pytest.mark.task("BCELoss", "BCELoss.forward")
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_BCELoss_saturated_probabilities(reduction):
    """p exactly 0 or 1: log is clamped at -100 (as in torch), so the loss stays finite."""
    p = np.array([0.0, 1.0, 0.0, 1.0, 0.5], np.float32)
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0], np.float32)
    expected = np_bce(p, y, reduction)  # 100 for each confidently wrong answer
    name = f"BCELoss.forward (p = 0 and p = 1, reduction={reduction})"
    check_loss(loss_of(name, BCELoss(reduction=reduction), p, Tensor(y)), expected, name, [p, y], atol=1e-4)


@pytest.mark.task("BCEWithLogitsLoss", "BCEWithLogitsLoss.forward")
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_BCEWithLogitsLoss_forward(reduction):
    x = (rng(6).standard_normal((5, 3)) * 4).astype(np.float32)
    y = (rng(7).random((5, 3)) < 0.5).astype(np.float32)
    crit = BCEWithLogitsLoss(reduction=reduction)
    name = f"BCEWithLogitsLoss.forward (reduction={reduction})"
    check_loss(loss_of(name, crit, x, Tensor(y)), np_bce_logits(x, y, reduction), name, [x, y])
    soft = rng(8).random((5, 3)).astype(np.float32)
    check_loss(loss_of(name, crit, x, soft), np_bce_logits(x, soft, reduction),
               "BCEWithLogitsLoss.forward (soft labels)", [x, soft])


@pytest.mark.task("BCEWithLogitsLoss", "BCEWithLogitsLoss.forward")
def test_BCEWithLogitsLoss_huge_logits():
    """Logits of +-1000: softplus(1000) = 1000 exactly, softplus(-1000) = 0; no inf, no NaN."""
    x = np.array([1000.0, 1000.0, -1000.0, -1000.0, 0.0, 50.0], np.float32)
    y = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 1.0], np.float32)
    with np.errstate(over="ignore"):
        got = loss_of("BCEWithLogitsLoss.forward", BCEWithLogitsLoss(reduction="sum"), x, Tensor(y))
    check_loss(got, 2000 + np.log(2), "BCEWithLogitsLoss.forward (logits +-1000)", [x, y], atol=1e-3)


@pytest.mark.task("BCEWithLogitsLoss", "BCEWithLogitsLoss.forward")
def test_BCEWithLogitsLoss_saved_sigmoid_at_huge_logits():
    """The backward rule (module 06) reads sigmoid(x) from out._saved[0]: it must be right (and
    finite) at +-1000 too, not e^x / (1 + e^x) = inf / inf."""
    x = np.array([[1000.0, -1000.0, 0.0, -0.5], [50.0, -50.0, 3.0, -3.0]], np.float32)
    y = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0]], np.float32)
    expected = np.exp(-np.logaddexp(0.0, -x.astype(np.float64)))
    with np.errstate(over="ignore", invalid="ignore"):
        out = BCEWithLogitsLoss()(Tensor(x, requires_grad=True), Tensor(y))
    with blame("BCEWithLogitsLoss.forward", "out._saved = (sigmoid(x), scale), saved for the backward pass"):
        sig = np.asarray(out._saved[0], dtype=np.float64)
    assert_close(sig, expected, "BCEWithLogitsLoss.forward (out._saved[0]: sigmoid(x), which module 06's "
                 "backward reads)", [x], atol=1e-6)


@pytest.mark.task("BCEWithLogitsLoss", "BCEWithLogitsLoss.forward")
def test_BCEWithLogitsLoss_matches_sigmoid_then_BCELoss():
    x = rng(8).uniform(-4, 4, (8,)).astype(np.float32)
    y = (rng(9).random(8) < 0.5).astype(np.float32)
    p = (1 / (1 + np.exp(-x.astype(np.float64)))).astype(np.float32)
    expected = np_bce(p, y)
    check_loss(loss_of("BCEWithLogitsLoss.forward", BCEWithLogitsLoss(), x, Tensor(y)), expected,
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
    name = f"CrossEntropyLoss.forward (label_smoothing={eps}, reduction={reduction})"
    check_loss(loss_of(name, crit, logits, Tensor(y)), expected, name, [logits, y], atol=1e-4, rtol=1e-5)


@pytest.mark.task("CrossEntropyLoss", "CrossEntropyLoss.forward")
def test_CrossEntropyLoss_values():
    """Uniform logits give log C; a confident right answer gives ~0; a confident wrong one ~1000."""
    z = np.zeros((2, 10), np.float32)
    check_loss(loss_of("CrossEntropyLoss.forward", CrossEntropyLoss(), z, np.array([3, 7])), np.log(10),
               "CrossEntropyLoss.forward (all-zero logits: log 10)", [z])
    x = np.array([[1000.0, 0.0, -1000.0], [1000.0, 0.0, -1000.0]], np.float32)
    y = np.array([0, 2])
    with np.errstate(over="ignore"):
        got = loss_of("CrossEntropyLoss.forward", CrossEntropyLoss(reduction="sum"), x, Tensor(y))
    check_loss(got, 2000.0, "CrossEntropyLoss.forward (logits +-1000)", [x, y], atol=1e-3)


@pytest.mark.task("CrossEntropyLoss", "CrossEntropyLoss.forward")
def test_CrossEntropyLoss_label_smoothing_value():
    """eps = 0.1, C = 4: the target gets 0.925 of the mass, every other class 0.025."""
    x = np.array([[2.0, 1.0, 0.0, -1.0]], np.float32)
    logp = np_log_softmax(x)[0]
    expected = -(0.925 * logp[0] + 0.025 * (logp[1] + logp[2] + logp[3]))
    name = "CrossEntropyLoss.forward (label_smoothing=0.1)"
    check_loss(loss_of(name, CrossEntropyLoss(label_smoothing=0.1), x, np.array([0])), expected, name, [x])


@pytest.mark.task("CrossEntropyLoss", "CrossEntropyLoss.forward")
@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_CrossEntropyLoss_saved_probabilities_at_huge_logits(eps):
    """The backward rule (module 06) reads softmax(logits) from out._saved[0]: it must be right (and
    finite) at +-1000 too, i.e. computed from the shifted logits."""
    x = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -999.0], [2.0, 1.0, 0.5]], np.float32)
    y = np.array([0, 2, 1])
    expected = np.exp(np_log_softmax(x))
    with np.errstate(over="ignore", invalid="ignore"):
        out = CrossEntropyLoss(label_smoothing=eps)(Tensor(x, requires_grad=True), y)
    with blame("CrossEntropyLoss.forward", "out._saved = (probs, targets, label_smoothing, scale), saved for "
               "the backward pass"):
        probs, targets = np.asarray(out._saved[0], dtype=np.float64), np.asarray(out._saved[1])
    if probs.shape != x.shape:
        raise AssertionError(f"CrossEntropyLoss.forward: out._saved[0] has shape {probs.shape}, expected the "
                             f"softmax probabilities of shape {x.shape} (module 06's backward reads them)")
    assert_close(probs, expected, "CrossEntropyLoss.forward (out._saved[0]: softmax(logits), which module 06's "
                 "backward reads)", [x], atol=1e-6)
    if not np.array_equal(targets, y):
        raise AssertionError(f"CrossEntropyLoss.forward: out._saved[1] is {targets}, expected the targets {y}")


@pytest.mark.task("CrossEntropyLoss", "CrossEntropyLoss.forward")
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
def test_CrossEntropyLoss_target_types(dtype):
    """Targets may be an integer Tensor, an ndarray of any integer type, or a list."""
    x = rng(10).standard_normal((3, 5)).astype(np.float32)
    y = np.array([4, 0, 2]).astype(dtype)
    expected = np_cross_entropy(x, y)
    for target in (Tensor(y), y, y.tolist()):
        name = f"CrossEntropyLoss.forward (targets as {type(target).__name__} of {np.dtype(dtype)})"
        check_loss(loss_of(name, CrossEntropyLoss(), x, target), expected, name, [x, y])


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
    check_loss(loss_of("CrossEntropyLoss.forward", CrossEntropyLoss(), x, good), np_cross_entropy(x, good),
               "CrossEntropyLoss.forward", [x, good])
    expect_error(f"CrossEntropyLoss.forward (targets {case}: {BAD_TARGETS[case].dtype} "
                 f"{BAD_TARGETS[case].shape} for 3 rows)", ValueError,
                 CrossEntropyLoss(), Tensor(x), Tensor(BAD_TARGETS[case]), match="(3,)")


@pytest.mark.task("CrossEntropyLoss", "CrossEntropyLoss.forward")
def test_CrossEntropyLoss_bad_logits_and_reduction():
    x = rng(12).standard_normal((2, 3)).astype(np.float32)
    y = np.array([2, 1])
    check_loss(loss_of("CrossEntropyLoss.forward", CrossEntropyLoss(reduction="sum"), x, y),
               np_cross_entropy(x, y, reduction="sum"), "CrossEntropyLoss.forward (reduction=sum)", [x, y])
    expect_error("CrossEntropyLoss.forward (1-D logits)", ValueError,
                 CrossEntropyLoss(), Tensor(x[0]), y[:1], match="logits")
    expect_error("CrossEntropyLoss.__init__ (reduction='avg')", ValueError,
                 CrossEntropyLoss, reduction="avg", match="reduction")
    for cls in (MSELoss, BCELoss, BCEWithLogitsLoss):
        expect_error(f"{cls.__name__}.__init__ (reduction='none')", ValueError, cls, reduction="none",
                     match="reduction")
        if repr(cls()) != f"{cls.__name__}()":
            raise AssertionError(f"{cls.__name__}.__repr__: {repr(cls())!r}")


# ---------------------------------------------------------------------------------------------
# float64: module 06 checks every loss's gradient in float64, so the forward must keep that precision
# ---------------------------------------------------------------------------------------------
def _float64_case(loss: str):
    """(criterion, prediction, target, float64 reference) for one loss (only that loss is built: in a
    notebook the others may not be written yet)."""
    x = rng(30).standard_normal((4, 5)) * 3 + 1e-9  # the 1e-9 is lost if anything is cast to float32
    y = rng(31).integers(0, 5, 4)
    p = rng(32).uniform(0.05, 0.95, (4, 5)) + 1e-9
    t = (rng(33).random((4, 5)) < 0.5).astype(np.float64)
    b = rng(34).standard_normal((4, 5))
    cases = {
        "MSELoss": lambda: (MSELoss(), x, b, ((x - b) ** 2).mean()),
        "BCELoss": lambda: (BCELoss(reduction="sum"), p, t, np_bce(p, t, "sum")),
        "BCEWithLogitsLoss": lambda: (BCEWithLogitsLoss(), x, t, np_bce_logits(x, t)),
        "CrossEntropyLoss": lambda: (CrossEntropyLoss(label_smoothing=0.1), x, y, np_cross_entropy(x, y, 0.1)),
    }
    return cases[loss]()


@pytest.mark.parametrize("loss", [pytest.param(n, marks=pytest.mark.task(n, f"{n}.forward"), id=n) for n in
                                  ["MSELoss", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss"]])
def test_loss_float64_precision(loss):
    crit, pred, target, expected = _float64_case(loss)
    target_t = Tensor(target, dtype=np.float64) if target.dtype.kind == "f" else target
    got = loss_of(f"{loss}.forward", crit, pred, target_t, dtype=np.float64)
    check_loss(got, expected, f"{loss}.forward (float64 inputs: a float64 loss, to float64 precision)",
               [pred, target], atol=1e-12, rtol=1e-10, dtype=np.float64)


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
    T = torch.tensor  # (copies: torch's answer is computed first, from the untouched inputs)
    return {  # case -> (theirs, ours): computed only when that case runs, theirs first
        "CrossEntropyLoss": (lambda: F.cross_entropy(T(logits), T(y)),
                             lambda: loss_of("CrossEntropyLoss.forward", CrossEntropyLoss(), logits, y)),
        "CrossEntropyLoss_label_smoothing": (
            lambda: F.cross_entropy(T(logits), T(y), label_smoothing=0.2),
            lambda: loss_of("CrossEntropyLoss.forward", CrossEntropyLoss(label_smoothing=0.2), logits, y)),
        "CrossEntropyLoss_sum": (
            lambda: F.cross_entropy(T(logits), T(y), reduction="sum", label_smoothing=0.05),
            lambda: loss_of("CrossEntropyLoss.forward", CrossEntropyLoss(reduction="sum", label_smoothing=0.05),
                            logits, y)),
        "BCEWithLogitsLoss": (lambda: F.binary_cross_entropy_with_logits(T(x), T(t)),
                              lambda: loss_of("BCEWithLogitsLoss.forward", BCEWithLogitsLoss(), x, t)),
        "BCEWithLogitsLoss_sum": (
            lambda: F.binary_cross_entropy_with_logits(T(x), T(t), reduction="sum"),
            lambda: loss_of("BCEWithLogitsLoss.forward", BCEWithLogitsLoss(reduction="sum"), x, t)),
        "BCELoss": (lambda: F.binary_cross_entropy(T(p), T(t)),
                    lambda: loss_of("BCELoss.forward", BCELoss(), p, t)),
        "BCELoss_sum": (lambda: F.binary_cross_entropy(T(p), T(t), reduction="sum"),
                        lambda: loss_of("BCELoss.forward", BCELoss(reduction="sum"), p, t)),
        "MSELoss": (lambda: F.mse_loss(T(a), T(b)), lambda: loss_of("MSELoss.forward", MSELoss(), a, Tensor(b))),
        "MSELoss_sum": (lambda: F.mse_loss(T(a), T(b), reduction="sum"),
                        lambda: loss_of("MSELoss.forward", MSELoss(reduction="sum"), a, b)),
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
    theirs, ours = _cases(torch)[case]
    expected = theirs().double().numpy()
    with np.errstate(over="ignore", divide="ignore"):
        got = ours()
    check_loss(got, expected, f"{name}.forward ({case} vs PyTorch)", [], atol=1e-4, rtol=1e-5)
