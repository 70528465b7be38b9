"""Checks for module 07: optimizers, schedulers, gradient clipping.

Hand-computed updates (no PyTorch needed), the same updates against torch.optim when it is
installed, scheduler lr sequences, clip_grad_norm_ values, and a small convergence test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.optimizers import (SGD, Adam, AdamW, CosineAnnealingLR, LinearWarmup, StepLR,
                                  WarmupCosine, clip_grad_norm_)
from tinytorch.tensor import Tensor
from tito.checks.harness import assert_close, torch_or_skip

SETTINGS = settings(deadline=None, derandomize=True, max_examples=25)
SHAPES = st.sampled_from([(), (1,), (5,), (3, 4), (2, 1, 3)])


def param(values) -> Tensor:
    return Tensor(np.asarray(values, dtype=np.float32), requires_grad=True)


def set_grad(p: Tensor, g) -> None:
    p.grad = Tensor(np.asarray(g, dtype=np.float32))


def run_steps(opt, params, grads_per_step) -> list[list[np.ndarray]]:
    """Apply opt.step() once per entry of grads_per_step; return the parameter values after each."""
    history = []
    for grads in grads_per_step:
        for p, g in zip(params, grads):
            set_grad(p, g)
        opt.step()
        history.append([p.data.copy() for p in params])
    return history


# ---------------------------------------------------------------------------------------------
# zero_grad and the contract every optimizer keeps
# ---------------------------------------------------------------------------------------------
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
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1),
    lambda ps: Adam(ps, lr=0.1, weight_decay=0.1),
    lambda ps: AdamW(ps, lr=0.1, weight_decay=0.1),
], ids=["SGD", "Adam", "AdamW"])
def test_step_in_place_float32_skips_missing_grads(make):
    a, b = param([1.0, -2.0, 3.0]), param([5.0])
    opt = make([a, b])
    name = f"{type(opt).__name__}.step"
    array, grad = a.data, np.array([0.5, 0.5, -1.0], dtype=np.float32)
    set_grad(a, grad)  # b has no gradient: it must be skipped, not crash, not move
    opt.step()
    assert a.data is array, f"{name}: update p.data in place (p.data -= ...), not by making a new array"
    assert a.data.dtype == np.float32, f"{name}: parameters became {a.data.dtype}; keep float32"
    assert not np.allclose(a.data, [1.0, -2.0, 3.0]), f"{name}: the parameter did not move"
    assert_close(b.data, [5.0], f"{name}: a parameter whose grad is None must not change", [b.data])
    assert_close(a.grad, grad, f"{name}: the optimizer must not write into p.grad", [grad])


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


def test_sgd_weight_decay_and_dampening_by_hand():
    p = param([2.0, -4.0])
    run_steps(SGD([p], lr=0.5, weight_decay=0.1), [p], [[[1.0, 1.0]]])
    # g + 0.1 p = [1.2, 0.6]
    assert_close(p.data, [2.0 - 0.6, -4.0 - 0.3], "SGD.step (weight_decay=0.1)", [[2.0, -4.0]])
    p = param([0.0])
    hist = run_steps(SGD([p], lr=1.0, momentum=0.5, dampening=0.5), [p], [[[1.0]]] * 2)
    # buffer: 1 (first step: a plain copy), then 0.5 * 1 + 0.5 * 1 = 1
    assert_close(hist[1][0], [-2.0], "SGD.step (momentum=0.5, dampening=0.5)")


def test_param_groups_use_their_own_lr():
    a, b = param([1.0]), param([1.0])
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    run_steps(opt, [a, b], [[[1.0], [1.0]]])
    assert_close(a.data, [0.9], "SGD.step (group 0 uses the default lr 0.1)")
    assert_close(b.data, [0.5], "SGD.step (group 1 sets lr 0.5)")


# ---------------------------------------------------------------------------------------------
# Adam / AdamW by hand
# ---------------------------------------------------------------------------------------------
def adam_reference(p, grads, lr, b1, b2, eps, wd, decoupled):
    """Adam/AdamW written out in float64, one formula per line."""
    p, m, v, out = np.array(p, np.float64), 0.0, 0.0, []
    for t, g in enumerate(grads, start=1):
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


def test_adam_first_step_moves_lr_times_sign():
    # m_hat = g and v_hat = g^2 at t = 1, so the first step is lr * g / (|g| + eps) ~ lr * sign(g)
    g = np.array([0.001, -3.0, 100.0], dtype=np.float32)
    p = param([1.0, 1.0, 1.0])
    run_steps(Adam([p], lr=0.01), [p], [[g]])
    assert_close(p.data, 1.0 - 0.01 * np.sign(g), "Adam.step (first step)", [g], atol=1e-6)


@pytest.mark.parametrize("cls,wd", [(Adam, 0.0), (Adam, 0.1), (AdamW, 0.1)])
def test_adam_matches_formula(cls, wd):
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal((3, 2)).astype(np.float32)
    grads = [rng.standard_normal((3, 2)).astype(np.float32) for _ in range(5)]
    p = param(p0.copy())
    hist = run_steps(cls([p], lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=wd), [p], [[g] for g in grads])
    want = adam_reference(p0, grads, 0.05, 0.8, 0.95, 1e-6, wd, decoupled=cls is AdamW)
    for t in range(5):
        assert_close(hist[t][0], want[t], f"{cls.__name__}.step (weight_decay={wd}, step {t + 1})", [p0, grads[t]])


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
]


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_parity_with_torch(name, kwargs):
    torch = torch_or_skip()
    rng = np.random.default_rng(7)
    shapes = [(4, 3), (3,), ()]
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    ours = [param(a.copy()) for a in init]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    opt = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW}[name](ours, **kwargs)
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
def lr_sequence(make_sched, epochs, base_lr=1.0):
    opt = SGD([param([0.0])], lr=base_lr)
    sched = make_sched(opt)
    lrs = []
    for _ in range(epochs):
        lrs.append(sched.get_last_lr()[0])
        assert opt.param_groups[0]["lr"] == lrs[-1], \
            f"{type(sched).__name__}.step: the optimizer's lr differs from get_last_lr()"
        opt.step()
        sched.step()
    return np.array(lrs)


def test_scheduler_sequences_by_hand():
    c = math.cos
    cases = [
        ("StepLR.lr_at", lambda o: StepLR(o, step_size=2, gamma=0.5), [1, 1, 0.5, 0.5, 0.25, 0.25]),
        ("CosineAnnealingLR.lr_at", lambda o: CosineAnnealingLR(o, T_max=4, eta_min=0.1),
         [0.1 + 0.45 * (1 + c(math.pi * e / 4)) for e in range(5)]),
        ("LinearWarmup.lr_at", lambda o: LinearWarmup(o, warmup_steps=4, start_factor=0.2),
         [0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0]),
        ("WarmupCosine.lr_at", lambda o: WarmupCosine(o, warmup_steps=2, total_steps=6),
         [0.0, 0.5, 1.0, 0.5 * (1 + c(math.pi / 4)), 0.5, 0.5 * (1 + c(3 * math.pi / 4)), 0.0, 0.0]),
    ]
    for name, make, want in cases:
        assert_close(lr_sequence(make, len(want)), np.array(want), name, atol=1e-9, rtol=1e-9)


def test_scheduler_with_param_groups_scales_each_base_lr():
    a, b = param([0.0]), param([0.0])
    opt = SGD([{"params": [a], "lr": 1.0}, {"params": [b], "lr": 0.1}], lr=1.0)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    sched.step()
    assert_close(sched.get_last_lr(), [0.5, 0.05], "StepLR.lr_at (two param groups, epoch 1)")


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "LinearLR"])
def test_scheduler_parity_with_torch(name):
    torch = torch_or_skip()
    ours = {"StepLR": lambda o: StepLR(o, step_size=3, gamma=0.3),
            "CosineAnnealingLR": lambda o: CosineAnnealingLR(o, T_max=7, eta_min=0.01),
            "LinearLR": lambda o: LinearWarmup(o, warmup_steps=5, start_factor=0.25)}[name]
    theirs = {"StepLR": dict(step_size=3, gamma=0.3), "CosineAnnealingLR": dict(T_max=7, eta_min=0.01),
              "LinearLR": dict(start_factor=0.25, end_factor=1.0, total_iters=5)}[name]
    got = lr_sequence(ours, 10, base_lr=0.5)
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
    (lambda ps: SGD(ps, lr=0.05, momentum=0.9), 150),
    (lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True), 150),
    (lambda ps: Adam(ps, lr=0.1), 300),
    (lambda ps: AdamW(ps, lr=0.1, weight_decay=0.0), 300),
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
