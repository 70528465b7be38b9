"""Checks for module 07: optimizers, schedulers, gradient clipping.

Hand-computed updates, and every configuration of the PyTorch parity tests against the update
rules written out here in float64 (so the verdict does not depend on torch being installed),
then the same updates against torch.optim when it is. Every hyper-parameter is set to a
non-default value somewhere, per parameter group too; parameters without a gradient are skipped
(Adam's step count is per parameter). Scheduler lr sequences, clip_grad_norm_ for every
norm_type, and a small convergence test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinytorch.optimizers import (SGD, Adam, AdamW, CosineAnnealingLR, LinearWarmup, StepLR,
                                  WarmupCosine, clip_grad_norm_)
from tinytorch.tensor import Tensor
from tito.checks.harness import assert_close, blame, hypothesis_settings, torch_or_skip

SETTINGS = hypothesis_settings(max_examples=25)
SHAPES = st.sampled_from([(), (1,), (5,), (3, 4), (2, 1, 3)])


def param(values) -> Tensor:
    return Tensor(np.asarray(values, dtype=np.float32), requires_grad=True)


def set_grad(p: Tensor, g) -> None:
    """p.grad = a COPY of g (None: no gradient), so the optimizer can never change the caller's
    array, and the checks below compare p.grad against a value it cannot have touched."""
    p.grad = None if g is None else Tensor(np.array(g, dtype=np.float32))


def run_steps(opt, params, grads_per_step) -> list[list[np.ndarray]]:
    """Apply opt.step() once per entry of grads_per_step; return the parameter values after each."""
    history = []
    for grads in grads_per_step:
        for p, g in zip(params, grads):
            set_grad(p, g)
        opt.step()
        history.append([p.data.copy() for p in params])
    return history


def step_name(opt) -> str:
    return f"{type(opt).__name__}.step"


# ---------------------------------------------------------------------------------------------
# zero_grad and the contract every optimizer keeps
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("Optimizer.zero_grad")
def test_zero_grad_sets_none_or_zero():
    a, b = param([1.0, 2.0]), param([[3.0]])
    opt = SGD([a, b], lr=0.1)
    set_grad(a, [1.0, 1.0])
    set_grad(b, [[2.0]])
    opt.zero_grad()
    assert a.grad is None and b.grad is None, "Optimizer.zero_grad: gradients should be None afterwards"
    set_grad(a, [1.0, 1.0])
    opt.zero_grad(set_to_none=False)
    assert a.grad is not None, "Optimizer.zero_grad(set_to_none=False): the gradient should stay, zeroed"
    assert_close(a.grad, [0.0, 0.0], "Optimizer.zero_grad(set_to_none=False)")


@pytest.mark.parametrize("make", [
    pytest.param(lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1), marks=pytest.mark.task("SGD")),
    pytest.param(lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True), marks=pytest.mark.task("SGD")),
    pytest.param(lambda ps: SGD(ps, lr=0.1, momentum=0.5, dampening=0.5), marks=pytest.mark.task("SGD")),
    pytest.param(lambda ps: Adam(ps, lr=0.1, weight_decay=0.1), marks=pytest.mark.task("Adam")),
    pytest.param(lambda ps: AdamW(ps, lr=0.1, weight_decay=0.1), marks=pytest.mark.task("AdamW")),
], ids=["SGD-momentum-wd", "SGD-nesterov", "SGD-dampening", "Adam", "AdamW"])
def test_step_in_place_float32_skips_missing_grads(make):
    """Two steps on the same gradients: p.data updated in place and float32, p.grad never written
    (not by the update, not through a momentum buffer that is the gradient array itself), a
    parameter without a gradient left alone."""
    a, b = param([1.0, -2.0, 3.0]), param([5.0])
    opt = make([a, b])
    name = step_name(opt)
    array, grad = a.data, np.array([0.5, 0.5, -1.0], dtype=np.float32)
    set_grad(a, grad)  # b has no gradient: it must be skipped, not crash, not move
    held = a.grad
    for step in (1, 2):
        opt.step()
        assert a.data is array, f"{name}: update p.data in place (p.data -= ...), not by making a new array"
        assert a.data.dtype == np.float32, f"{name}: parameters became {a.data.dtype}; keep float32"
        assert not np.allclose(a.data, [1.0, -2.0, 3.0]), f"{name}: the parameter did not move"
        assert_close(b.data, [5.0], f"{name}: a parameter whose grad is None must not change", [b.data])
        assert a.grad is held, f"{name}: the optimizer replaced p.grad (it must only read it)"
        assert_close(a.grad, grad, f"{name}: the optimizer must not write into p.grad (step {step})", [grad])
        for key, value in opt.state.get(a, {}).items():
            if isinstance(value, np.ndarray) and np.shares_memory(value, a.grad.data):
                raise AssertionError(f"{name}: state[{key!r}] is the gradient array itself; keep a copy "
                                     "(np.array(g)), or the next zero_grad / update changes both")


@pytest.mark.task("SGD")
# ---------------------------------------------------------------------------------------------
# SGD by hand
# ---------------------------------------------------------------------------------------------
@SETTINGS
@given(shape=SHAPES, lr=st.sampled_from([0.0, 0.01, 0.5]), seed=st.integers(0, 100))
def test_sgd_plain_is_p_minus_lr_g(shape, lr, seed):
    rng = np.random.default_rng(seed)
    p0, g = rng.standard_normal(shape).astype(np.float32), rng.standard_normal(shape).astype(np.float32)
    p = param(p0.copy())
    run_steps(SGD([p], lr=lr), [p], [[g]])
    assert_close(p.data, p0 - np.float32(lr) * g, f"SGD.step (lr={lr})", [p0, g])


@pytest.mark.task("SGD")
def test_sgd_momentum_and_nesterov_by_hand():
    g = np.array([1.0, -2.0], dtype=np.float32)
    # classic: buffers g, 1.9 g, 2.71 g  ->  p = -0.1 * (1 + 1.9 + 2.71) g after 3 steps
    p = param([0.0, 0.0])
    hist = run_steps(SGD([p], lr=0.1, momentum=0.9), [p], [[g]] * 3)
    for t, total in enumerate([1.0, 2.9, 5.61]):
        assert_close(hist[t][0], -0.1 * total * g, f"SGD.step (momentum=0.9, step {t + 1})", [g])
    # Nesterov: step with g + 0.9 * buffer: 1.9 g, 2.71 g, 3.439 g
    p = param([0.0, 0.0])
    hist = run_steps(SGD([p], lr=0.1, momentum=0.9, nesterov=True), [p], [[g]] * 3)
    for t, total in enumerate([1.9, 4.61, 8.049]):
        assert_close(hist[t][0], -0.1 * total * g, f"SGD.step (nesterov, step {t + 1})", [g])


@pytest.mark.task("SGD")
def test_sgd_weight_decay_and_dampening_by_hand():
    p = param([2.0, -4.0])
    run_steps(SGD([p], lr=0.5, weight_decay=0.1), [p], [[[1.0, 1.0]]])
    # g + 0.1 p = [1.2, 0.6]
    assert_close(p.data, [2.0 - 0.6, -4.0 - 0.3], "SGD.step (weight_decay=0.1)", [[2.0, -4.0]])
    p = param([0.0])
    hist = run_steps(SGD([p], lr=1.0, momentum=0.5, dampening=0.5), [p], [[[1.0]]] * 2)
    # buffer: 1 (first step: a plain copy), then 0.5 * 1 + 0.5 * 1 = 1
    assert_close(hist[1][0], [-2.0], "SGD.step (momentum=0.5, dampening=0.5)")


@pytest.mark.task("SGD")
def test_param_groups_use_their_own_lr():
    a, b = param([1.0]), param([1.0])
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    run_steps(opt, [a, b], [[[1.0], [1.0]]])
    assert_close(a.data, [0.9], "SGD.step (group 0 uses the default lr 0.1)")
    assert_close(b.data, [0.5], "SGD.step (group 1 sets lr 0.5)")


# ---------------------------------------------------------------------------------------------
# The update rules written out in float64 (torch.optim's documented algorithms), one formula a
# line. A None gradient skips the parameter for that step (its state does not advance).
# ---------------------------------------------------------------------------------------------
def sgd_reference(p, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    p, buf, out = np.array(p, np.float64), None, []
    for g in grads:
        if g is not None:
            g = np.array(g, np.float64) + weight_decay * p
            if momentum:
                buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
                g = g + momentum * buf if nesterov else buf
            p = p - lr * g
        out.append(p)
    return out


def adam_reference(p, grads, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, decoupled=False):
    """Adam/AdamW; t counts the steps this parameter took (not the optimizer's calls)."""
    p, m, v, t, out = np.array(p, np.float64), 0.0, 0.0, 0, []
    for g in grads:
        if g is not None:
            t += 1
            g = np.array(g, np.float64)
            if decoupled:
                p = p * (1 - lr * wd)
            else:
                g = g + wd * p
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
            p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(p)
    return out


def reference(name, kwargs, p0, grads):
    if name == "SGD":
        return sgd_reference(p0, grads, **kwargs)
    kw = dict(kwargs)
    b1, b2 = kw.pop("betas", (0.9, 0.999))
    wd = kw.pop("weight_decay", 0.01 if name == "AdamW" else 0.0)
    return adam_reference(p0, grads, b1=b1, b2=b2, wd=wd, decoupled=name == "AdamW", **kw)


OPTIMIZERS = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW}


@pytest.mark.parametrize("name,kwargs", [
    pytest.param("SGD", dict(lr=0.1, momentum=0.9), marks=pytest.mark.task("SGD")),
    pytest.param("SGD", dict(lr=0.2, weight_decay=0.3, momentum=0.5, dampening=0.5), marks=pytest.mark.task("SGD")),
    pytest.param("Adam", dict(lr=0.05, betas=(0.5, 0.7), eps=0.1, weight_decay=0.2), marks=pytest.mark.task("Adam")),
    pytest.param("AdamW", dict(lr=0.05, betas=(0.6, 0.8), weight_decay=0.5), marks=pytest.mark.task("AdamW")),
], ids=["SGD-momentum", "SGD-all", "Adam", "AdamW"])
def test_param_groups_use_their_own_hyperparameters(name, kwargs):
    """Each group's own hyper-parameters (not the optimizer's defaults) drive its update."""
    rng = np.random.default_rng(4)
    p0 = [rng.standard_normal(3).astype(np.float32) for _ in range(2)]
    grads = [[rng.standard_normal(3).astype(np.float32) for _ in range(2)] for _ in range(3)]
    a, b = param(p0[0].copy()), param(p0[1].copy())
    defaults = dict(lr=0.01) if name == "SGD" else {}
    opt = OPTIMIZERS[name]([{"params": [a]}, {"params": [b], **kwargs}], **defaults)
    hist = run_steps(opt, [a, b], grads)
    want_a = reference(name, defaults, p0[0], [g[0] for g in grads])
    want_b = reference(name, kwargs, p0[1], [g[1] for g in grads])
    for t in range(3):
        assert_close(hist[t][0], want_a[t], f"{name}.step (group 0: the defaults, step {t + 1})", [p0[0]])
        assert_close(hist[t][1], want_b[t], f"{name}.step (group 1: its own {kwargs}, step {t + 1})", [p0[1]])


# ---------------------------------------------------------------------------------------------
# Adam / AdamW by hand
# ---------------------------------------------------------------------------------------------


@pytest.mark.task("Adam")
def test_adam_first_step_moves_lr_times_sign():
    # m_hat = g and v_hat = g^2 at t = 1, so the first step is lr * g / (|g| + eps) ~ lr * sign(g)
    g = np.array([0.001, -3.0, 100.0], dtype=np.float32)
    p = param([1.0, 1.0, 1.0])
    run_steps(Adam([p], lr=0.01), [p], [[g]])
    assert_close(p.data, 1.0 - 0.01 * np.sign(g), "Adam.step (first step)", [g], atol=1e-6)


@pytest.mark.parametrize("cls,wd,eps", [
    pytest.param(Adam, 0.0, 1e-6, marks=pytest.mark.task("Adam")),
    pytest.param(Adam, 0.1, 1e-6, marks=pytest.mark.task("Adam")),
    pytest.param(Adam, 0.0, 0.3, marks=pytest.mark.task("Adam")),  # eps large enough that where it goes matters
    pytest.param(AdamW, 0.1, 1e-6, marks=pytest.mark.task("AdamW")),
    pytest.param(AdamW, 0.1, 0.3, marks=pytest.mark.task("AdamW")),
])
def test_adam_matches_formula(cls, wd, eps):
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal((3, 2)).astype(np.float32)
    grads = [rng.standard_normal((3, 2)).astype(np.float32) for _ in range(5)]
    p = param(p0.copy())
    hist = run_steps(cls([p], lr=0.05, betas=(0.8, 0.95), eps=eps, weight_decay=wd), [p], [[g] for g in grads])
    want = adam_reference(p0, grads, 0.05, 0.8, 0.95, eps, wd, decoupled=cls is AdamW)
    for t in range(5):
        assert_close(hist[t][0], want[t], f"{cls.__name__}.step (weight_decay={wd}, eps={eps}, step {t + 1})",
                     [p0, grads[t]])


@pytest.mark.parametrize("cls", [pytest.param(Adam, marks=pytest.mark.task("Adam")),
                                 pytest.param(AdamW, marks=pytest.mark.task("AdamW"))], ids=["Adam", "AdamW"])
def test_adam_step_count_is_per_parameter(cls):
    """A parameter that had no gradient on some steps has taken fewer steps: its bias correction
    uses ITS count t (state["step"]), not the number of optimizer.step() calls."""
    rng = np.random.default_rng(5)
    p0 = [rng.standard_normal(4).astype(np.float32) for _ in range(2)]
    g = [[rng.standard_normal(4).astype(np.float32), None if t < 2 else rng.standard_normal(4).astype(np.float32)]
         for t in range(4)]
    a, b = param(p0[0].copy()), param(p0[1].copy())
    hist = run_steps(cls([a, b], lr=0.1, betas=(0.5, 0.8), weight_decay=0.1), [a, b], g)
    for i, p in enumerate((a, b)):
        want = adam_reference(p0[i], [row[i] for row in g], 0.1, 0.5, 0.8, 1e-8, 0.1, decoupled=cls is AdamW)
        for t in range(4):
            assert_close(hist[t][i], want[t], f"{cls.__name__}.step (parameter {i}, step {t + 1}; parameter 1 "
                         "gets its first gradient at step 3)", [p0[i]], atol=1e-6)


@pytest.mark.task("AdamW")
def test_adamw_decay_is_decoupled():
    # with a zero gradient, AdamW only shrinks p by (1 - lr wd); Adam's L2 term makes g = wd p instead
    p = param([2.0, -1.0])
    run_steps(AdamW([p], lr=0.1, weight_decay=0.5), [p], [[[0.0, 0.0]]] * 2)
    assert_close(p.data, np.array([2.0, -1.0]) * 0.95**2, "AdamW.step (zero gradient: pure decay)")
    p = param([2.0, -1.0])
    run_steps(Adam([p], lr=0.1, weight_decay=0.5), [p], [[[0.0, 0.0]]])
    assert_close(p.data, [1.9, -0.9], "Adam.step (zero gradient: the L2 term gives lr * sign(p))", atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Parity with torch.optim
# ---------------------------------------------------------------------------------------------
CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.5, dampening=0.3, weight_decay=0.1)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.02, betas=(0.5, 0.9), weight_decay=0.3)),
    ("SGD", dict(lr=0.1, weight_decay=0.2)),
    ("Adam", dict(lr=0.05, betas=(0.5, 0.7), eps=0.1)),
    ("AdamW", dict(lr=0.03, eps=0.05, weight_decay=0.0)),
]


CONFIG_PARAMS = [pytest.param(n, kw, id=f"{n}-{i}", marks=pytest.mark.task(n)) for i, (n, kw) in enumerate(CONFIGS)]


@pytest.mark.parametrize("name,kwargs", CONFIG_PARAMS)
def test_matches_the_written_out_update(name, kwargs):
    """Every configuration of the PyTorch parity test below, without PyTorch: six steps on three
    parameters (one of them 0-d), the third without a gradient at step 3."""
    rng = np.random.default_rng(7)
    shapes = [(4, 3), (3,), ()]
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(6)]
    grads[2][2] = None
    ours = [param(a.copy()) for a in init]
    hist = run_steps(OPTIMIZERS[name](ours, **kwargs), ours, grads)
    for i in range(3):
        want = reference(name, kwargs, init[i], [row[i] for row in grads])
        for t in range(6):
            assert_close(hist[t][i], want[t], f"{name}.step ({kwargs}, step {t + 1}, param {i} of shape "
                         f"{shapes[i]})", [init[i]], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name,kwargs", CONFIG_PARAMS)
def test_parity_with_torch(name, kwargs):
    torch = torch_or_skip()
    rng = np.random.default_rng(7)
    shapes = [(4, 3), (3,), ()]
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    ours = [param(a.copy()) for a in init]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    opt = OPTIMIZERS[name](ours, **kwargs)
    ref = getattr(torch.optim, name)(theirs, **kwargs)
    for step in range(6):
        grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        for p, q, g in zip(ours, theirs, grads):
            set_grad(p, g)
            q.grad = torch.tensor(g)
        opt.step()
        ref.step()
        for i, (p, q) in enumerate(zip(ours, theirs)):
            assert_close(p.data, q.detach().numpy(), f"{name}.step ({kwargs}, step {step + 1}, param {i} "
                         "vs torch.optim)", [init[i], grads[i]], atol=1e-6, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# Schedulers
# ---------------------------------------------------------------------------------------------
def lr_sequence(make_sched, epochs, base_lr=1.0, groups=(1.0,)):
    """The lr of every group at epochs 0, 1, ..., epochs - 1: shape (epochs, groups)."""
    opt = SGD([{"params": [param([0.0])], "lr": base_lr * f} for f in groups], lr=base_lr)
    sched = make_sched(opt)
    name = f"{type(sched).__name__}.lr_at"
    lrs = []
    for _ in range(epochs):
        with blame(name, "get_last_lr() after step()"):
            lrs.append([float(v) for v in sched.get_last_lr()])
        assert [g["lr"] for g in opt.param_groups] == lrs[-1], \
            f"{name}: the optimizer's lr differs from get_last_lr()"
        opt.step()
        with blame(name, f"epoch {len(lrs)}"):
            sched.step()
    return np.array(lrs)


C, PI = math.cos, math.pi
BY_HAND = [
    ("StepLR", lambda o: StepLR(o, step_size=2, gamma=0.5), [1, 1, 0.5, 0.5, 0.25, 0.25]),
    # e // 3, never round(e / 3): 2/3 rounds to 1 but floors to 0
    ("StepLR", lambda o: StepLR(o, step_size=3, gamma=0.3), [1, 1, 1, 0.3, 0.3, 0.3, 0.09, 0.09, 0.09, 0.027]),
    ("CosineAnnealingLR", lambda o: CosineAnnealingLR(o, T_max=4, eta_min=0.1),
     [0.1 + 0.45 * (1 + C(PI * e / 4)) for e in range(5)]),
    # past T_max the closed form climbs back up (a cosine, as torch)
    ("CosineAnnealingLR", lambda o: CosineAnnealingLR(o, T_max=3), [0.5 * (1 + C(PI * e / 3)) for e in range(9)]),
    ("LinearWarmup", lambda o: LinearWarmup(o, warmup_steps=4, start_factor=0.2), [0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0]),
    ("LinearWarmup", lambda o: LinearWarmup(o, warmup_steps=3, start_factor=0.0), [0.0, 1 / 3, 2 / 3, 1.0, 1.0]),
    ("WarmupCosine", lambda o: WarmupCosine(o, warmup_steps=2, total_steps=6),
     [0.0, 0.5, 1.0, 0.5 * (1 + C(PI / 4)), 0.5, 0.5 * (1 + C(3 * PI / 4)), 0.0, 0.0]),
    ("WarmupCosine", lambda o: WarmupCosine(o, warmup_steps=3, total_steps=7, eta_min=0.1),
     [0.0, 1 / 3, 2 / 3] + [0.1 + 0.45 * (1 + C(PI * k / 4)) for k in range(5)] + [0.1, 0.1]),
    ("WarmupCosine", lambda o: WarmupCosine(o, warmup_steps=0, total_steps=4, eta_min=0.2),
     [0.2 + 0.4 * (1 + C(PI * e / 4)) for e in range(5)] + [0.2]),
]


@pytest.mark.parametrize("name,make,want", [pytest.param(*case, id=f"{case[0]}-{i}", marks=pytest.mark.task(case[0]))
                                            for i, case in enumerate(BY_HAND)])
def test_scheduler_sequences_by_hand(name, make, want):
    assert_close(lr_sequence(make, len(want))[:, 0], np.array(want), f"{name}.lr_at (epochs 0-{len(want) - 1})",
                 atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("name,make,formula", [
    pytest.param("StepLR", lambda o: StepLR(o, step_size=2, gamma=0.5), lambda b, e: b * 0.5 ** (e // 2),
                 marks=pytest.mark.task("StepLR")),
    pytest.param("CosineAnnealingLR", lambda o: CosineAnnealingLR(o, T_max=5, eta_min=0.01),
                 lambda b, e: 0.01 + (b - 0.01) * (1 + math.cos(math.pi * e / 5)) / 2,
                 marks=pytest.mark.task("CosineAnnealingLR")),
    pytest.param("LinearWarmup", lambda o: LinearWarmup(o, warmup_steps=4, start_factor=0.5),
                 lambda b, e: b * (0.5 + 0.5 * min(e, 4) / 4), marks=pytest.mark.task("LinearWarmup")),
    pytest.param("WarmupCosine", lambda o: WarmupCosine(o, warmup_steps=2, total_steps=5, eta_min=0.01),
                 lambda b, e: b * e / 2 if e < 2 else
                 0.01 + (b - 0.01) * (1 + math.cos(math.pi * min(e - 2, 3) / 3)) / 2,
                 marks=pytest.mark.task("WarmupCosine")),
], ids=["StepLR", "CosineAnnealingLR", "LinearWarmup", "WarmupCosine"])
def test_scheduler_with_param_groups_follows_each_base_lr(name, make, formula):
    """Two groups with base lrs 0.5 and 0.05: each follows the schedule from ITS base lr."""
    got = lr_sequence(make, 8, base_lr=0.5, groups=(1.0, 0.1))
    want = np.array([[formula(0.5, e), formula(0.05, e)] for e in range(8)])
    assert_close(got, want, f"{name}.lr_at (two param groups, base lrs 0.5 and 0.05; rows are epochs)",
                 atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.task(t)) for n, t in
                                  [("StepLR", "StepLR"), ("CosineAnnealingLR", "CosineAnnealingLR"),
                                   ("LinearLR", "LinearWarmup")]])
def test_scheduler_parity_with_torch(name):
    torch = torch_or_skip()
    ours = {"StepLR": lambda o: StepLR(o, step_size=3, gamma=0.3),
            "CosineAnnealingLR": lambda o: CosineAnnealingLR(o, T_max=7, eta_min=0.01),
            "LinearLR": lambda o: LinearWarmup(o, warmup_steps=5, start_factor=0.25)}[name]
    theirs = {"StepLR": dict(step_size=3, gamma=0.3), "CosineAnnealingLR": dict(T_max=7, eta_min=0.01),
              "LinearLR": dict(start_factor=0.25, end_factor=1.0, total_iters=5)}[name]
    got = lr_sequence(ours, 10, base_lr=0.5)[:, 0]
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
    sched = getattr(torch.optim.lr_scheduler, name)(opt, **theirs)
    want = []
    for _ in range(10):
        want.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    label = "LinearWarmup" if name == "LinearLR" else name
    assert_close(got, np.array(want), f"{label}.lr_at (vs torch.optim.lr_scheduler.{name})", atol=1e-7, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Gradient clipping
# ---------------------------------------------------------------------------------------------
def clip_reference(grads, max_norm, norm_type):
    """(total norm, clipped gradients) in float64, as torch.nn.utils.clip_grad_norm_."""
    g64 = [np.asarray(g, np.float64) for g in grads]
    if norm_type == math.inf:
        total = max(float(np.max(np.abs(g))) for g in g64)
    else:
        total = sum(float(np.sum(np.abs(g) ** norm_type)) for g in g64) ** (1 / norm_type)
    coef = min(1.0, max_norm / (total + 1e-6))
    return total, [g * coef for g in g64]


@pytest.mark.parametrize("max_norm,norm_type", [(1.0, 2.0), (100.0, 2.0), (0.5, 1.0), (2.0, 3.0), (2.0, math.inf),
                                                (3.0, 0.5)], ids=str)
def test_clip_grad_norm_matches_the_formula(max_norm, norm_type):
    """The joint norm over all gradients for every norm_type, and the scaling, without PyTorch;
    float32 gradients stay float32."""
    rng = np.random.default_rng(11)
    grads = [rng.standard_normal(s).astype(np.float32) * 3 for s in [(5, 4), (4,), ()]]
    ours = [param(np.zeros_like(g)) for g in grads]
    for p, g in zip(ours, grads):
        set_grad(p, g)
    name = f"clip_grad_norm_ (max_norm={max_norm}, norm_type={norm_type})"
    got = clip_grad_norm_(iter(ours), max_norm, norm_type)  # any iterable of parameters
    total, clipped = clip_reference(grads, max_norm, norm_type)
    with blame("clip_grad_norm_", "the returned norm must be a number"):
        got = float(got)
    assert_close(got, total, f"{name}: the returned norm (before clipping)", grads, rtol=1e-5)
    for p, want in zip(ours, clipped):
        assert p.grad.dtype == np.float32, f"{name}: gradients became {p.grad.dtype}; keep float32"
        assert_close(p.grad, want, f"{name}: the clipped gradients", grads, atol=1e-6, rtol=1e-5)


def test_clip_grad_norm_of_zero_gradients():
    """All-zero gradients: the norm is 0 and nothing is scaled (no 0 / 0)."""
    a = param([0.0, 0.0])
    set_grad(a, [0.0, 0.0])
    with np.errstate(all="ignore"):
        total = clip_grad_norm_([a], max_norm=1.0)
    assert_close(total, 0.0, "clip_grad_norm_ (zero gradients: norm 0)")
    assert_close(a.grad, [0.0, 0.0], "clip_grad_norm_ (zero gradients stay zero, not NaN)")


def test_clip_grad_norm_by_hand():
    a, b, c = param([0.0, 0.0]), param([0.0]), param([7.0])
    set_grad(a, [3.0, 4.0])
    set_grad(b, [12.0])  # joint norm sqrt(9 + 16 + 144) = 13;  c has no grad: ignored
    total = clip_grad_norm_([a, b, c], max_norm=6.5)
    assert_close(total, 13.0, "clip_grad_norm_ (returned norm: before clipping)", [[3, 4], [12]])
    coef = 6.5 / (13.0 + 1e-6)
    assert_close(a.grad, [3 * coef, 4 * coef], "clip_grad_norm_ (clipped gradient)", [[3, 4], [12]])
    assert_close(b.grad, [12 * coef], "clip_grad_norm_ (clipped gradient)", [[3, 4], [12]])
    set_grad(a, [3.0, 4.0])
    total = clip_grad_norm_(a, max_norm=10.0)  # norm 5 < 10: untouched
    assert_close(total, 5.0, "clip_grad_norm_ (norm below max_norm)")
    assert_close(a.grad, [3.0, 4.0], "clip_grad_norm_ (norm below max_norm: gradient unchanged)")
    set_grad(a, [3.0, -4.0])
    set_grad(b, [1.0])
    total = clip_grad_norm_([a, b], max_norm=2.0, norm_type=math.inf)
    assert_close(total, 4.0, "clip_grad_norm_ (norm_type=inf: the largest |g|)")
    assert_close(a.grad, [1.5, -2.0], "clip_grad_norm_ (norm_type=inf)", atol=1e-5)
    set_grad(a, [3e-6, 4e-6])  # a tiny norm, 5e-6: the 1e-6 of max_norm / (total + 1e-6) is a sixth of it
    total = clip_grad_norm_(a, max_norm=1e-6)
    coef = 1e-6 / (5e-6 + 1e-6)
    assert_close(a.grad, [3e-6 * coef, 4e-6 * coef], "clip_grad_norm_ (norm 5e-6, max_norm 1e-6: "
                 "coef = max_norm / (total + 1e-6), as torch)", [[3e-6, 4e-6]], atol=1e-12, rtol=1e-4)


def test_clip_grad_norm_parity_with_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(11)
    grads = [rng.standard_normal(s).astype(np.float32) * 3 for s in [(5, 4), (4,), ()]]
    for max_norm, norm_type in [(1.0, 2.0), (100.0, 2.0), (0.5, 1.0), (2.0, math.inf)]:
        ours = [param(np.zeros_like(g)) for g in grads]
        theirs = [torch.zeros(g.shape, requires_grad=True) for g in grads]
        for p, q, g in zip(ours, theirs, grads):
            set_grad(p, g)
            q.grad = torch.tensor(g)
        got = clip_grad_norm_(ours, max_norm, norm_type)
        want = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type).item()
        name = f"clip_grad_norm_ (max_norm={max_norm}, norm_type={norm_type}, vs torch)"
        assert_close(got, want, name, grads, rtol=1e-5)
        for p, q in zip(ours, theirs):
            assert_close(p.grad, q.grad.numpy(), name, grads, atol=1e-6, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# Convergence: a stretched quadratic bowl, minimised with gradients from autograd
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make,steps", [
    pytest.param(lambda ps: SGD(ps, lr=0.05, momentum=0.9), 150, marks=pytest.mark.task("SGD")),
    pytest.param(lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True), 150, marks=pytest.mark.task("SGD")),
    pytest.param(lambda ps: Adam(ps, lr=0.1), 300, marks=pytest.mark.task("Adam")),
    pytest.param(lambda ps: AdamW(ps, lr=0.1, weight_decay=0.0), 300, marks=pytest.mark.task("AdamW")),
], ids=["SGD-momentum", "SGD-nesterov", "Adam", "AdamW"])
def test_converges_on_a_quadratic_bowl(make, steps):
    scales = Tensor(np.array([1.0, 10.0, 0.5], dtype=np.float32))  # condition number 20
    target = Tensor(np.array([3.0, -2.0, 1.0], dtype=np.float32))
    x = param([0.0, 0.0, 0.0])
    opt = make([x])
    for _ in range(steps):
        opt.zero_grad()
        diff = x - target
        loss = (scales * diff * diff).sum()  # f(x) = sum_i s_i (x_i - c_i)^2, minimum 0 at x = c
        loss.backward()
        opt.step()
    name = f"{type(opt).__name__}.step (minimising a quadratic bowl for {steps} steps)"
    assert_close(x.data, target.data, name, [scales.data, target.data], atol=2e-2, rtol=0)
