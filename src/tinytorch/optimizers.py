# %% [markdown]
# # Module 07 - Optimizers
#
# Autograd (module 06) tells every parameter which way is uphill: `p.grad`. An optimizer turns
# that into a step downhill. Plain SGD walks against the gradient; momentum remembers where it
# was going; Adam scales each coordinate by a running estimate of its gradient's size. A
# scheduler changes the learning rate as training goes on, and gradient clipping caps one bad
# step. Everything here updates `p.data` IN PLACE: it runs once per training step, on every
# weight, so temporaries cost time.

# %%
"""Module 07: optimizers, learning-rate schedulers and gradient clipping (PyTorch semantics).

With g = dL/dp, learning rate lr, and t = 1, 2, ... the step count:

SGD (momentum mu, dampening d, weight decay wd):
    g  <- g + wd * p
    b  <- g                          at the first step (the buffer starts as a copy of g)
    b  <- mu * b + (1 - d) * g       afterwards
    g  <- g + mu * b   (Nesterov)    or    g <- b   (classic momentum)
    p  <- p - lr * g

Adam (betas b1, b2):
    g  <- g + wd * p                 (L2 penalty folded into the gradient, as torch.optim.Adam)
    m  <- b1 m + (1 - b1) g          running mean of g
    v  <- b2 v + (1 - b2) g^2        running mean of g^2
    p  <- p - lr/(1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)     (bias-corrected)

AdamW: Adam without the L2 term, plus decoupled decay first:  p <- p * (1 - lr * wd).

Schedulers set `group["lr"]` from the epoch count e (= number of `step()` calls so far):
    StepLR:             lr = base * gamma ** (e // step_size)
    CosineAnnealingLR:  lr = eta_min + (base - eta_min) * (1 + cos(pi * e / T_max)) / 2
    LinearWarmup:       lr = base * (f + (1 - f) * min(e, warmup) / warmup)   (torch's LinearLR)
    WarmupCosine:       LinearWarmup from 0, then cosine down to eta_min at total_steps

clip_grad_norm_: total = sqrt(sum over params of sum(g^2)); every g *= min(1, max / (total + 1e-6)).
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from tinytorch.tensor import Tensor


# ---------------------------------------------------------------------------------------------
# The base class: parameter groups and per-parameter state (infrastructure: given)
# ---------------------------------------------------------------------------------------------
class Optimizer:
    """Holds the parameters (in groups, each with its own hyper-parameters) and per-parameter state.

    Optimizer(model.parameters(), lr=0.1)                               # one group
    Optimizer([{"params": body, "lr": 0.01}, {"params": head}], lr=0.1)  # groups override defaults
    """

    def __init__(self, params, defaults: dict):
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults = defaults
        self.param_groups: list[dict] = []
        for group in groups:
            group = {**defaults, **group}
            group["params"] = list(group["params"])
            self.param_groups.append(group)
        self.state: dict[Tensor, dict] = {}  # keyed by the parameter itself (identity hash)

    def parameters(self):
        """Every parameter, group by group, in a fixed order (checkpoints rely on it)."""
        return [p for group in self.param_groups for p in group["params"]]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients of the last step (torch's default: set them to None)."""
        ### BEGIN SOLUTION
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.data.fill(0)
        ### END SOLUTION

    def step(self) -> None:
        raise NotImplementedError(f"{type(self).__name__}.step")

    def state_dict(self) -> dict[str, np.ndarray]:
        """Flat {name: array} of the learning rates and every state buffer (no objects: savez-able).

        Names: "group{i}.lr" and "state{k}.{buffer}" with k the parameter's index in parameters().
        """
        out = {f"group{i}.lr": np.asarray(g["lr"], dtype=np.float64) for i, g in enumerate(self.param_groups)}
        for k, p in enumerate(self.parameters()):
            for name, value in self.state.get(p, {}).items():
                out[f"state{k}.{name}"] = np.array(value)
        return out

    def load_state_dict(self, state: dict) -> None:
        params = self.parameters()
        for key, value in state.items():
            head, name = key.split(".", 1)
            if head.startswith("group"):
                self.param_groups[int(head[5:])][name] = float(value)
            else:
                p = params[int(head[5:])]
                value = np.array(value)
                self.state.setdefault(p, {})[name] = value.item() if value.ndim == 0 else value

    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={v}" for k, v in self.defaults.items())
        return f"{type(self).__name__}({hyper})"


def _grads(group: dict):
    """(param, gradient array) for the params of a group that received a gradient."""
    for p in group["params"]:
        if p.grad is not None:
            yield p, p.grad.data


# ---------------------------------------------------------------------------------------------
# SGD
# ---------------------------------------------------------------------------------------------
class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and weight decay."""

    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: invalid lr={lr}, momentum={momentum} or weight_decay={weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def step(self) -> None:
        for group in self.param_groups:
            lr, mu, damp, wd = group["lr"], group["momentum"], group["dampening"], group["weight_decay"]
            for p, g in _grads(group):
                # HINT: never write into p.grad; the momentum buffer starts as a COPY of g
                # HINT: (state["momentum_buffer"]); update p.data in place (p.data -= ...)
                ### BEGIN SOLUTION
                if wd:
                    g = g + wd * p.data  # a new array: never write into p.grad
                if mu:
                    state = self.state.setdefault(p, {})
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = np.array(g, dtype=p.data.dtype)  # a copy
                    else:
                        buf *= mu
                        buf += g if damp == 0 else (1 - damp) * g
                    g = g + mu * buf if group["nesterov"] else buf
                p.data -= lr * g  # in place: the model sees the new weights
                ### END SOLUTION


# ---------------------------------------------------------------------------------------------
# Adam and AdamW
# ---------------------------------------------------------------------------------------------
class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction; weight_decay is an L2 term added to g."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"{type(self).__name__}: invalid lr={lr}, betas={betas}, eps={eps} "
                             f"or weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def _decay(self, p: Tensor, g: np.ndarray, lr: float, wd: float) -> np.ndarray:
        """Adam: L2 regularisation, g + wd * p (a new array: p.grad stays untouched)."""
        ### BEGIN SOLUTION
        return g + wd * p.data if wd else g
        ### END SOLUTION

    def step(self) -> None:
        for group in self.param_groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p, g in _grads(group):
                g = self._decay(p, g, lr, wd)
                state = self.state.setdefault(p, {})
                if not state:
                    state.update(step=0, exp_avg=np.zeros_like(p.data), exp_avg_sq=np.zeros_like(p.data))
                # HINT: update m and v in place (m *= b1; m += ...), then
                # HINT: p.data -= lr / (1 - b1**t) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)
                ### BEGIN SOLUTION
                state["step"] += 1
                t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
                tmp = np.empty_like(p.data)  # one scratch array, reused below
                np.multiply(g, 1 - b1, out=tmp)
                m *= b1
                m += tmp  # m = b1 m + (1 - b1) g
                np.multiply(g, g, out=tmp)
                tmp *= 1 - b2
                v *= b2
                v += tmp  # v = b2 v + (1 - b2) g^2
                np.sqrt(v, out=tmp)
                tmp *= 1 / math.sqrt(1 - b2**t)
                tmp += eps  # denominator: sqrt(v_hat) + eps
                np.divide(m, tmp, out=tmp)
                tmp *= lr / (1 - b1**t)  # step size with the first-moment bias correction
                p.data -= tmp
                ### END SOLUTION


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019): p <- p (1 - lr wd), then Adam."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def _decay(self, p: Tensor, g: np.ndarray, lr: float, wd: float) -> np.ndarray:
        """AdamW: shrink the weights directly; the gradient is left as it is."""
        ### BEGIN SOLUTION
        if wd:
            p.data *= 1 - lr * wd
        return g
        ### END SOLUTION


# ---------------------------------------------------------------------------------------------
# Learning-rate schedulers
# ---------------------------------------------------------------------------------------------
class LRScheduler:
    """Sets every group's lr from the count of `step()` calls (like torch: call it once per epoch,
    after `optimizer.step()`). The constructor already applies epoch 0."""

    def __init__(self, optimizer: Optimizer):
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = -1
        self.step()

    def lr_at(self, base_lr: float, epoch: int) -> float:
        raise NotImplementedError(f"{type(self).__name__}.lr_at")

    def get_lr(self) -> list[float]:
        return [self.lr_at(base, self.last_epoch) for base in self.base_lrs]

    def step(self) -> None:
        self.last_epoch += 1
        self._last_lr = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def get_last_lr(self) -> list[float]:
        """The learning rate of each group, as set by the last step()."""
        return list(self._last_lr)


class StepLR(LRScheduler):
    """Multiply the lr by gamma every step_size epochs."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        ### BEGIN SOLUTION
        return base_lr * self.gamma ** (epoch // self.step_size)
        ### END SOLUTION


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from base_lr down to eta_min over T_max epochs (torch's closed form)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        ### BEGIN SOLUTION
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2
        ### END SOLUTION


class LinearWarmup(LRScheduler):
    """Ramp the lr linearly from start_factor * base_lr to base_lr over warmup_steps, then hold.

    Equal to torch.optim.lr_scheduler.LinearLR(opt, start_factor, 1.0, total_iters=warmup_steps).
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int, start_factor: float = 0.1):
        if warmup_steps < 1 or not 0 <= start_factor <= 1:
            raise ValueError(f"LinearWarmup: invalid warmup_steps={warmup_steps} or start_factor={start_factor}")
        self.warmup_steps, self.start_factor = warmup_steps, start_factor
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        ### BEGIN SOLUTION
        frac = min(epoch, self.warmup_steps) / self.warmup_steps
        return base_lr * (self.start_factor + (1 - self.start_factor) * frac)
        ### END SOLUTION


class WarmupCosine(LRScheduler):
    """The usual transformer schedule: linear warmup from 0 to base_lr over warmup_steps, then a
    cosine down to eta_min at total_steps (and eta_min after). Usually stepped once per batch."""

    def __init__(self, optimizer: Optimizer, warmup_steps: int, total_steps: int, eta_min: float = 0.0):
        if not 0 <= warmup_steps < total_steps:
            raise ValueError(f"WarmupCosine: need 0 <= warmup_steps < total_steps, got {warmup_steps}, {total_steps}")
        self.warmup_steps, self.total_steps, self.eta_min = warmup_steps, total_steps, eta_min
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        ### BEGIN SOLUTION
        if epoch < self.warmup_steps:
            return base_lr * epoch / self.warmup_steps
        frac = min(epoch - self.warmup_steps, self.total_steps - self.warmup_steps) / (
            self.total_steps - self.warmup_steps)
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * frac)) / 2
        ### END SOLUTION


# ---------------------------------------------------------------------------------------------
# Gradient clipping
# ---------------------------------------------------------------------------------------------
def clip_grad_norm_(params: Iterable[Tensor] | Tensor, max_norm: float, norm_type: float = 2.0) -> float:
    """Scale all gradients together so that their joint norm is at most max_norm; return the norm
    BEFORE clipping (torch semantics; torch returns it as a 0-d tensor, we return a float).

    total = (sum_p sum_i |g_pi|^q)^(1/q)    (q = norm_type; q = inf: the largest |g|)
    every g *= min(1, max_norm / (total + 1e-6))
    """
    params = [params] if isinstance(params, Tensor) else list(params)
    grads = [p.grad.data for p in params if p.grad is not None]
    if not grads:
        return 0.0
    # HINT: one norm over ALL the gradients together; scale them in place (g *= coef), only if coef < 1
    ### BEGIN SOLUTION
    if norm_type == math.inf:
        total = max(float(np.max(np.abs(g))) for g in grads)
    elif norm_type == 2:
        total = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))  # vdot: no |g|^2 temporary
    else:
        total = sum(float(np.sum(np.abs(g) ** norm_type)) for g in grads) ** (1 / norm_type)
    coef = max_norm / (total + 1e-6)
    if coef < 1:
        for g in grads:
            g *= coef
    ### END SOLUTION
    return total
