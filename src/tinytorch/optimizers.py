# %% [markdown]
# # Module 07 - Optimizers
#
# Autograd (module 06) tells every parameter which way is uphill: `p.grad`. An optimizer turns
# that into a step downhill. You write SGD (with momentum, Nesterov and weight decay), Adam and
# AdamW, four learning-rate schedules and gradient clipping - with PyTorch's exact semantics, and
# updating every weight in place, because this code runs on every parameter at every step.
#
# Complete it and milestone 02 part 2 (backprop solves XOR) unlocks.
#
# ## What you build
#
# | step | you write | checked by |
# |---|---|---|
# | 1 | `Optimizer.zero_grad` | `check("07", "Optimizer.zero_grad")` (after step 2: it needs an `SGD`) |
# | 2 | `SGD.step` (momentum, Nesterov, dampening, weight decay) | `check("07", "SGD")` |
# | 3 | `Adam._decay` and `Adam.step` (bias-corrected moments) | `check("07", "adam-")` |
# | 4 | `AdamW._decay` (decoupled weight decay) | `check("07", "AdamW")` |
# | 5 | `lr_at` of `StepLR`, `CosineAnnealingLR`, `LinearWarmup`, `WarmupCosine` | `check("07", "StepLR")`, ... |
# | 6 | `clip_grad_norm_` | `check("07", "clip_grad_norm")` |
#
# Each step is a markdown cell that teaches the idea, a code cell to fill in (where the answer
# goes, your copy says `# YOUR CODE HERE` and `raise NotImplementedError()`), a "try it" cell
# that runs your code on a tiny input, and a check cell. A check cell runs the same checks as
# `tito module test 07 --task <name>` and prints the same table. Several checks compare your
# numbers with PyTorch's `torch.optim` when PyTorch is installed (and are skipped when it is
# not); the others work the updates out by hand, so nothing depends on PyTorch.

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

# %% [markdown]
# ## One step downhill
#
# Training minimises a loss $L(\theta)$ over the parameters $\theta$. After `loss.backward()`,
# every parameter $p$ holds its gradient $g = \partial L / \partial p$ in `p.grad`: the direction in
# which the loss grows fastest. Gradient descent takes a small step the other way,
#
# $$p \leftarrow p - \eta\, g,$$
#
# with the learning rate $\eta$ (`lr`). A worked example on $L(p) = p^2$ (so $g = 2p$), starting at
# $p = 3$ with $\eta = 0.1$: $g = 6$, $p \leftarrow 3 - 0.6 = 2.4$; then $g = 4.8$, $p \leftarrow
# 1.92$; every step multiplies $p$ by $1 - 2\eta = 0.8$ and $p$ slides to the minimum at 0. With
# $\eta = 1.1$ the factor is $1 - 2.2 = -1.2$: $p$ jumps to $-3.6$, then $4.32$, and diverges. The
# learning rate is the one number in deep learning that you will tune most often, and most of this
# module is about choosing the step better than a fixed $\eta\, g$.
#
# "Stochastic" gradient descent (SGD) means the gradient comes from a mini-batch of examples, not
# the whole data set: a noisy but cheap estimate. The noise is why the refinements below exist.
#
# **The systems view.** An update reads $p$ and $g$ and writes $p$: about $2P$ FLOPs and three
# passes over $P$ float32 numbers for a model of $P$ parameters. In FLOPs that is nothing next to
# the forward and backward passes (roughly $6P$ FLOPs *per example*). But FLOPs are not time: the
# matrix multiplies of forward and backward run at BLAS speed, while an optimizer's elementwise
# passes run at the speed of memory, on one core. At the end of this module you will measure that
# Adam's step costs about a third of a forward + backward pass of the MNIST MLP. So every pass
# counts, and temporaries are the enemy: `p.data = p.data - lr * g` allocates two fresh arrays of
# $P$ floats every step and throws the old weights away; `p.data -= lr * g` writes into the array
# that is already there. The checks insist that `p.data` is still the *same* array object after a
# step, that it stays float32, and that `p.grad` is never written into.

# %% [markdown]
# ## The base class: parameter groups, state and `zero_grad`
#
# `Optimizer` is given except for one method. It holds:
#
# - `param_groups`: a list of dicts, each with its own `"params"` and hyper-parameters. The usual
#   call `SGD(model.parameters(), lr=0.1)` makes one group; `SGD([{"params": body, "lr": 0.01},
#   {"params": head}], lr=0.1)` gives the body a smaller learning rate than the head (fine-tuning
#   does exactly this). Keys missing from a group come from the defaults.
# - `state`: a dict from each parameter (the Tensor itself, hashed by identity) to its buffers -
#   the momentum buffer of SGD, the moments of Adam. The buffers are the optimizer's *memory*, and
#   they are as large as the parameters.
# - `state_dict()` / `load_state_dict()`: the state flattened to `{name: array}` with names like
#   `"group0.lr"` and `"state3.exp_avg"` (parameter 3 in `parameters()` order). Plain named arrays
#   are exactly what `np.savez` stores, so module 08 can checkpoint an optimizer without pickle.
#
# **What you write: `zero_grad(set_to_none=True)`.** Autograd *accumulates*: `backward()` adds
# into `p.grad` (a parameter used twice in a graph must get both contributions). So gradients from
# the previous batch are still there when the next backward runs, and without `zero_grad` two
# batches' gradients silently add up - the loss then falls erratically, and nothing crashes. Worked
# example: a weight with gradient 0.3 from batch 1 and 0.5 from batch 2 takes a step with 0.8.
#
# PyTorch's default, `set_to_none=True`, drops the gradient (`p.grad = None`): the next backward
# then starts from a fresh array, and until then the memory of $P$ gradient floats is free (for a
# 100-million-parameter model, 400 MB). With `set_to_none=False` the gradient array stays and is
# filled with zeros in place (`p.grad.data.fill(0)`); a parameter that has no gradient yet is left
# alone.

# %% nbgrader={"grade": false, "grade_id": "optimizer-zero-grad", "locked": false, "schema_version": 3, "solution": true, "task": false}
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


# %%
if __name__ == "__main__":
    a = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    b = Tensor(np.array([3.0], dtype=np.float32), requires_grad=True)
    opt = Optimizer([a, b], dict(lr=0.1))
    a.grad = Tensor(np.array([0.3, -0.5], dtype=np.float32))
    opt.zero_grad(set_to_none=False)
    print("set_to_none=False: a.grad =", a.grad.data, " b.grad =", b.grad)
    opt.zero_grad()
    print("set_to_none=True:  a.grad =", a.grad)
    print(opt, "with", len(opt.param_groups), "group and", len(opt.parameters()), "parameters")

# %% [markdown]
# A small given helper: every `step()` walks the parameters of a group that actually received a
# gradient. A parameter whose `.grad` is `None` (a frozen layer, or a branch of the model the loss
# did not reach) is skipped - not moved, not crashed on. Note that it yields `p.grad.data`, the
# gradient array itself: anything you do to `g` in place would change the learner-visible
# gradient, which is why the updates below always build a new array when they modify `g`.

# %%
def _grads(group: dict):
    """(param, gradient array) for the params of a group that received a gradient."""
    for p in group["params"]:
        if p.grad is not None:
            yield p, p.grad.data


# %% [markdown]
# ## SGD: momentum, Nesterov and weight decay
#
# **Weight decay** adds $\tfrac{\lambda}{2}\lVert p \rVert^2$ to the loss, whose gradient is
# $\lambda p$, so the gradient becomes $g \leftarrow g + \lambda p$ (`weight_decay` $= \lambda$).
# It pulls every weight a little towards zero each step, a classic regulariser against
# overfitting. Write it as a *new* array, `g = g + wd * p.data`: `g += ...` would write into
# `p.grad`.
#
# **Momentum** keeps a velocity buffer $b$ per parameter:
#
# $$b_1 = g_1, \qquad b_t = \mu\, b_{t-1} + (1 - d)\, g_t, \qquad p \leftarrow p - \eta\, b_t .$$
#
# On a constant gradient $g$ with $\mu = 0.9$ the buffer grows $g, 1.9g, 2.71g, 3.439g, \dots$
# towards $g / (1 - \mu) = 10g$: momentum is up to ten times the step along a direction that keeps
# agreeing with itself, while gradient components that flip sign from batch to batch cancel in
# the buffer. That is why it helps in long narrow valleys, where plain SGD zig-zags across the
# walls. Worked example with $\eta = 0.1$, $g = 1$, starting at $p = 0$: after three steps
# $p = -0.1\,(1 + 1.9 + 2.71) = -0.561$, where plain SGD would be at $-0.3$.
#
# The first step *copies* the gradient into the buffer (`np.array(g, dtype=p.data.dtype)`),
# PyTorch's convention. It must be a copy: a buffer that aliases `p.grad` would be zeroed by
# `zero_grad(set_to_none=False)` or overwritten by the next backward. Afterwards update it in place:
# `buf *= mu; buf += g` (or `(1 - d) * g` with dampening $d$).
#
# **Nesterov** momentum steps with the gradient plus one more look-ahead along the velocity,
# $g_t + \mu b_t$, instead of $b_t$. On the constant gradient the steps become $g + 0.9g = 1.9g$,
# then $g + 0.9 \cdot 1.9g = 2.71g$, then $3.439g$: one step ahead of classic momentum, so it reacts
# earlier when the velocity is about to carry the weights past a minimum. Finally, the step itself
# is in place: `p.data -= lr * g`.
#
# **Memory.** Plain SGD keeps no state. Momentum keeps one buffer the size of the parameters:
# one extra copy, $4P$ bytes in float32. Per step and parameter: about 5 FLOPs and a handful of
# passes over memory.

# %% nbgrader={"grade": false, "grade_id": "sgd", "locked": false, "schema_version": 3, "solution": true, "task": false}
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


# %%
if __name__ == "__main__":
    for kwargs in (dict(), dict(momentum=0.9), dict(momentum=0.9, nesterov=True)):
        p = Tensor(np.zeros(1, dtype=np.float32), requires_grad=True)
        opt = SGD([p], lr=0.1, **kwargs)
        path = []
        for _ in range(3):  # a constant gradient of 1
            p.grad = Tensor(np.ones(1, dtype=np.float32))
            opt.step()
            path.append(round(float(p.data[0]), 4))
        print(f"SGD({kwargs}): p after 1, 2, 3 steps = {path}")

# %% [markdown]
# The check of `zero_grad` builds an `SGD` optimizer to call it on, so it runs here, now that
# `SGD` exists; then the checks of `SGD.step` (by hand, against PyTorch when it is installed, the
# in-place contract, and convergence on a stretched quadratic bowl).

# %% nbgrader={"grade": true, "grade_id": "check-optimizer-zero-grad", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("07", "Optimizer.zero_grad")

# %% nbgrader={"grade": true, "grade_id": "check-sgd", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("07", "SGD")

# %% [markdown]
# ## Adam: a step size for every coordinate
#
# SGD uses one learning rate for every weight, yet gradients differ by orders of magnitude between
# layers and even within one. Adam (Kingma and Ba, 2015) keeps two running averages per
# coordinate, the mean of the gradient and the mean of its square,
#
# $$m_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2,$$
#
# and steps by $\eta\, \hat m_t / (\sqrt{\hat v_t} + \epsilon)$. Dividing by the root mean square
# makes the step roughly $\eta$ in size for every coordinate, whatever the gradient's scale: a
# weight whose gradients are always around $10^{-4}$ moves as fast as one whose gradients are
# around $10^{2}$. Defaults: $\beta_1 = 0.9$, $\beta_2 = 0.999$, $\epsilon = 10^{-8}$.
#
# **Bias correction, worked out.** Both averages start at zero, so early on they are far too
# small. Take $g = 0.5$ at the first step: $m_1 = 0.1 \cdot 0.5 = 0.05$ and $v_1 = 0.001 \cdot 0.25
# = 0.00025$. Uncorrected, $m_1/\sqrt{v_1} = 0.05 / 0.0158 = 3.16$: a step three times larger than
# intended. An average of $t$ steps that started at zero has total weight $1 - \beta^t$ on the
# data, so divide it out: $\hat m_1 = 0.05 / (1 - 0.9) = 0.5$ and $\hat v_1 = 0.00025 / (1 - 0.999) =
# 0.25$, and $\hat m_1 / \sqrt{\hat v_1} = 0.5 / 0.5 = 1$ exactly. At step 2 with the same gradient,
# $m_2 = 0.095$ and $v_2 = 0.00049975$; corrected, again $0.5$ and $0.25$ (uncorrected, 4.25). With
# a constant gradient the corrected estimates are exact at every step, and the very first step is
# $\eta \cdot g / |g| = \eta \cdot \mathrm{sign}(g)$ - which is what one of the checks tests. As $t$
# grows, $\beta^t \to 0$ and the correction fades away.
#
# PyTorch folds the corrections into the step, and the checks compare with PyTorch to 6 digits,
# so write it the same way:
#
# $$p \leftarrow p - \frac{\eta}{1 - \beta_1^t} \cdot \frac{m_t}{\sqrt{v_t} / \sqrt{1 - \beta_2^t} + \epsilon}.$$
#
# ($\epsilon$ is added to $\sqrt{\hat v}$, not inside the root: it only matters where $v$ is
# around $10^{-16}$, and it keeps a coordinate with a zero gradient from dividing 0 by 0.)
#
# **The `_decay` hook.** `Adam(weight_decay=wd)` is Adam with an L2 penalty: like SGD it adds
# $\lambda p$ to the gradient before the moments see it. `_decay(p, g, lr, wd)` returns that
# gradient, a new array (or `g` itself when `wd` is 0). AdamW overrides just this hook.
#
# **In place, with one scratch array.** The state `step`, `exp_avg` ($m$) and `exp_avg_sq` ($v$)
# are created at the first step (the given code does that). Update $m$ and $v$ in place (`m *= b1;
# m += ...`) and compute the update into a single scratch array `tmp = np.empty_like(p.data)`
# with `np.multiply(..., out=tmp)`, `np.sqrt(v, out=tmp)` and `np.divide(m, tmp, out=tmp)`, then
# `p.data -= tmp`. A naive one-liner `p.data -= lr * m_hat / (np.sqrt(v_hat) + eps)` makes half
# a dozen temporaries of $P$ floats each; elementwise code like this is bound by memory bandwidth,
# so every avoided pass is time saved.
#
# **Memory: Adam keeps two extra copies of the parameters.** $m$ and $v$ are each as large as the
# model. For $P$ parameters in float32 that is $4P$ bytes of weights, $4P$ of gradients and $8P$ of
# Adam state: 16 bytes per parameter, against 8 for plain SGD and 12 for SGD with momentum. For the
# 235,146-parameter MNIST MLP of milestone 03 that is 1.9 MB of Adam state - nothing - but for a
# 7-billion-parameter language model it is 56 GB of state in float32, before a single activation is
# stored. This is why large models shard their optimizer state across many devices.

# %% nbgrader={"grade": false, "grade_id": "adam", "locked": false, "schema_version": 3, "solution": true, "task": false}
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


# %%
if __name__ == "__main__":
    g = np.array([0.001, -3.0, 100.0], dtype=np.float32)  # five orders of magnitude apart
    p = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    opt = Adam([p], lr=0.01)
    p.grad = Tensor(g)
    opt.step()
    print("gradient            ", g)
    print("first Adam step     ", 1.0 - p.data, " (~ lr * sign(g) for every coordinate)")
    print("state after 1 step:  step =", opt.state[p]["step"], " m =", opt.state[p]["exp_avg"],
          " v =", opt.state[p]["exp_avg_sq"])
    print("extra memory: ", sum(a.nbytes for a in opt.state_dict().values() if a.ndim), "bytes of state for",
          p.data.nbytes, "bytes of parameters")

# %% nbgrader={"grade": true, "grade_id": "check-adam", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("07", "adam-")  # Adam's checks ("Adam-..."), not yet AdamW's: AdamW comes next

# %% [markdown]
# ## AdamW: weight decay that is not a gradient
#
# With SGD, "add $\lambda p$ to the gradient" and "shrink the weights by $\eta \lambda p$" are the
# same thing. With Adam they are not: the $\lambda p$ term goes through the division by
# $\sqrt{\hat v}$, so a weight with large gradients is barely decayed and a weight with tiny
# gradients is decayed enormously. Loshchilov and Hutter (2019) showed that *decoupling* the decay
# from the gradient - shrink first, then an ordinary Adam step on the loss gradient alone -
#
# $$p \leftarrow p\,(1 - \eta\lambda), \qquad \text{then Adam with } g \text{ unchanged},$$
#
# regularises as intended and generalises better. AdamW is today's default for transformers; the
# recipe measured for the GPT of milestone 05 (coming) uses AdamW with $\lambda = 0.1$.
#
# **Worked example.** Zero loss gradient, $p = (2, -1)$, $\eta = 0.1$, $\lambda = 0.5$:
#
# - Adam with L2: $g = \lambda p = (1, -0.5)$; Adam's first step is $\eta \cdot \mathrm{sign}(g)$, so
#   $p \to (1.9, -0.9)$. Both weights move by 0.1 whatever their size, and the same would happen
#   with $\lambda = 10^{-4}$: the strength of the decay has vanished in the normalisation.
# - AdamW: $p \to p \cdot (1 - 0.05) = (1.9, -0.95)$. Each weight shrinks in proportion to itself,
#   and the Adam step that follows is zero (zero gradient).
#
# **What you write.** `AdamW._decay` multiplies `p.data` in place by $1 - \eta\lambda$ (when
# `wd` is not 0) and returns `g` unchanged; everything else is inherited from `Adam`. Note the
# default `weight_decay=0.01`, as in PyTorch. The cost: one more in-place pass over the weights,
# no extra memory.

# %% nbgrader={"grade": false, "grade_id": "adamw", "locked": false, "schema_version": 3, "solution": true, "task": false}
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


# %%
if __name__ == "__main__":
    for cls in (Adam, AdamW):
        p = Tensor(np.array([2.0, -1.0], dtype=np.float32), requires_grad=True)
        opt = cls([p], lr=0.1, weight_decay=0.5)
        p.grad = Tensor(np.zeros(2, dtype=np.float32))  # no loss gradient at all: only the decay acts
        opt.step()
        print(f"{cls.__name__:5s} weight_decay=0.5, zero gradient: (2, -1) -> {p.data}")

# %% nbgrader={"grade": true, "grade_id": "check-adamw", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("07", "AdamW")

# %% [markdown]
# ## Learning-rate schedules
#
# A learning rate that is right at the start of training is too large at the end: near a minimum
# the gradient noise of a mini-batch keeps the weights bouncing around it, and a smaller step lets
# them settle. And at the very start a large step can be harmful too - Adam's $v$ is still a poor
# estimate and the weights are random - so many recipes *warm up*, ramping the rate up from almost
# nothing over the first few hundred steps. A scheduler changes `group["lr"]` as training goes on.
#
# The base class `LRScheduler` is given. It remembers each group's starting rate (`initial_lr`,
# the *base* rate), counts its `step()` calls in `last_epoch`, and on every `step()` sets each
# group's `lr` to `lr_at(base_lr, epoch)`. Its constructor already applies epoch 0. Like PyTorch,
# call `scheduler.step()` once per epoch *after* `optimizer.step()` - or once per batch for
# schedules measured in steps, such as `WarmupCosine` (module 08's `Trainer` takes a
# `scheduler_interval` for that). A schedule is a pure function of the epoch, so it costs nothing
# at run time, and it is trivially reproducible when training resumes from a checkpoint.

# %%
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


# %% [markdown]
# ### Four schedules: `lr_at(base_lr, epoch)`
#
# Each schedule is one small class: its constructor stores its settings and calls the base class,
# and you write `lr_at`, the rate at epoch $e$ for a group whose base rate is $\eta_0$ - one line,
# or three. Use `math.cos` and `math.pi` (these are Python floats, not arrays). The try-it cell
# after each prints the rate for epochs 0 to 7 with $\eta_0 = 1$, so you can compare it with the
# numbers worked out here.
#
# **StepLR** drops the rate by a factor $\gamma$ every $s$ epochs (`step_size`):
#
# $$\eta_e = \eta_0 \cdot \gamma^{\lfloor e / s \rfloor}.$$
#
# It is the classic recipe of the ResNet era ($\times 0.1$ at epochs 30, 60 and 90). With $s = 2$,
# $\gamma = 0.5$: epochs 0 to 5 give $1, 1, 0.5, 0.5, 0.25, 0.25$. Use integer division `//`.

# %% nbgrader={"grade": false, "grade_id": "steplr", "locked": false, "schema_version": 3, "solution": true, "task": false}
class StepLR(LRScheduler):
    """Multiply the lr by gamma every step_size epochs."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        ### BEGIN SOLUTION
        return base_lr * self.gamma ** (epoch // self.step_size)
        ### END SOLUTION


# %%
if __name__ == "__main__":
    opt = SGD([Tensor(np.zeros(1, dtype=np.float32), requires_grad=True)], lr=1.0)
    sched, lrs = (lambda o: StepLR(o, step_size=2, gamma=0.5))(opt), []
    for epoch in range(8):
        lrs.append(round(opt.param_groups[0]["lr"], 3))
        opt.step()  # (no gradients here: nothing moves; the order optimizer, then scheduler, is the point)
        sched.step()
    print("StepLR(step_size=2, gamma=0.5), epochs 0-7:", lrs)


# %% nbgrader={"grade": true, "grade_id": "check-steplr", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("07", "StepLR")


# %% [markdown]
# **CosineAnnealingLR** follows half a cosine from $\eta_0$ down to $\eta_{\min}$ over $T_{\max}$
# epochs:
#
# $$\eta_e = \eta_{\min} + (\eta_0 - \eta_{\min}) \cdot \tfrac{1}{2}\left(1 + \cos(\pi e / T_{\max})\right).$$
#
# It falls slowly at first, fastest in the middle, and gently lands at $\eta_{\min}$ - no sudden
# drops, and one setting fewer to tune than StepLR. With $T_{\max} = 4$ and $\eta_{\min} = 0.1$:
# $1, 0.868, 0.55, 0.232, 0.1$. This is PyTorch's closed form (its step-by-step recursion gives the
# same values). Past $T_{\max}$ it climbs again - it is a cosine - so set $T_{\max}$ to the length of
# training; milestone 03 uses `T_max=epochs`.

# %% nbgrader={"grade": false, "grade_id": "cosine-annealing-lr", "locked": false, "schema_version": 3, "solution": true, "task": false}
class CosineAnnealingLR(LRScheduler):
    """Half a cosine from base_lr down to eta_min over T_max epochs (torch's closed form)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        ### BEGIN SOLUTION
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2
        ### END SOLUTION


# %%
if __name__ == "__main__":
    opt = SGD([Tensor(np.zeros(1, dtype=np.float32), requires_grad=True)], lr=1.0)
    sched, lrs = (lambda o: CosineAnnealingLR(o, T_max=4, eta_min=0.1))(opt), []
    for epoch in range(8):
        lrs.append(round(opt.param_groups[0]["lr"], 3))
        opt.step()  # (no gradients here: nothing moves; the order optimizer, then scheduler, is the point)
        sched.step()
    print("CosineAnnealingLR(T_max=4, eta_min=0.1), epochs 0-7:", lrs)


# %% nbgrader={"grade": true, "grade_id": "check-cosine-annealing-lr", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("07", "CosineAnnealingLR")


# %% [markdown]
# **LinearWarmup** (PyTorch's `LinearLR` with end factor 1) ramps the rate from $f \eta_0$ up to
# $\eta_0$ over $w$ steps (`warmup_steps`, `start_factor`) and then holds it:
#
# $$\eta_e = \eta_0 \left(f + (1 - f) \cdot \min(e, w) / w\right).$$
#
# With $w = 4$, $f = 0.2$: $0.2, 0.4, 0.6, 0.8, 1, 1, \dots$ Warmup protects the first steps, when
# the weights are random and Adam's second-moment estimate $v$ rests on a handful of gradients.

# %% nbgrader={"grade": false, "grade_id": "linear-warmup", "locked": false, "schema_version": 3, "solution": true, "task": false}
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


# %%
if __name__ == "__main__":
    opt = SGD([Tensor(np.zeros(1, dtype=np.float32), requires_grad=True)], lr=1.0)
    sched, lrs = (lambda o: LinearWarmup(o, warmup_steps=4, start_factor=0.2))(opt), []
    for epoch in range(8):
        lrs.append(round(opt.param_groups[0]["lr"], 3))
        opt.step()  # (no gradients here: nothing moves; the order optimizer, then scheduler, is the point)
        sched.step()
    print("LinearWarmup(warmup_steps=4, start_factor=0.2), epochs 0-7:", lrs)


# %% nbgrader={"grade": true, "grade_id": "check-linear-warmup", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("07", "LinearWarmup")


# %% [markdown]
# **WarmupCosine** is the usual transformer schedule, stepped once per *batch*: a linear warmup
# from exactly 0, then a cosine from $\eta_0$ down to $\eta_{\min}$ over the remaining $T - w$ steps
# (`total_steps` $T$), and $\eta_{\min}$ after $T$:
#
# $$\eta_e = \eta_0\, e / w \quad (e < w), \qquad \eta_e = \eta_{\min} + (\eta_0 - \eta_{\min}) \cdot \tfrac{1}{2}(1 + \cos \pi q), \quad q = \frac{\min(e - w,\ T - w)}{T - w}.$$
#
# With $w = 2$, $T = 6$: $0, 0.5, 1, 0.854, 0.5, 0.146, 0, 0, \dots$ Clamping $q$ at 1 keeps the
# rate at $\eta_{\min}$ instead of climbing back up when training runs past $T$. The recipe
# measured for the GPT of milestone 05 (coming) is AdamW with this schedule (100 warmup steps,
# cosine down to $0.1\eta_0$).

# %% nbgrader={"grade": false, "grade_id": "warmup-cosine", "locked": false, "schema_version": 3, "solution": true, "task": false}
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


# %%
if __name__ == "__main__":
    opt = SGD([Tensor(np.zeros(1, dtype=np.float32), requires_grad=True)], lr=1.0)
    sched, lrs = (lambda o: WarmupCosine(o, warmup_steps=2, total_steps=6))(opt), []
    for epoch in range(8):
        lrs.append(round(opt.param_groups[0]["lr"], 3))
        opt.step()  # (no gradients here: nothing moves; the order optimizer, then scheduler, is the point)
        sched.step()
    print("WarmupCosine(warmup_steps=2, total_steps=6), epochs 0-7:", lrs)


# %% nbgrader={"grade": true, "grade_id": "check-warmup-cosine", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("07", "WarmupCosine")


# %% [markdown]
# ## Gradient clipping: a cap on one bad step
#
# Now and then a batch produces a huge gradient - an outlier, a loss near a cliff, a recurrent
# network or a transformer early in training - and one step with it can throw the weights so far
# that training never recovers (the loss turns into `nan` a few steps later). Clipping rescales the
# gradient when it is too long. `clip_grad_norm_` measures ONE norm over all the gradients
# together, as if they were a single vector,
#
# $$\lVert g \rVert = \Big(\sum_{p} \sum_i |g_{p,i}|^q\Big)^{1/q} \quad (q = 2 \text{ by default}),$$
#
# and if it is above `max_norm` multiplies every gradient by the same factor $c = $ `max_norm` $/
# (\lVert g \rVert + 10^{-6})$. Because every coordinate is scaled by the same $c$, the *direction*
# of the step is unchanged; only its length is capped. (Clipping each tensor separately, or each
# coordinate to a range, would change the direction.) With $q = \infty$ the norm is the largest
# $|g|$.
#
# **Worked example.** Gradients $(3, 4)$ and $(12)$: the joint norm is $\sqrt{9 + 16 + 144} =
# \sqrt{169} = 13$. With `max_norm` $= 6.5$, $c = 6.5 / 13.000001 \approx 0.5$, and the gradients
# become $(1.5, 2)$ and $(6)$. With `max_norm` $= 20$ nothing changes ($c > 1$: never scale *up*).
# The function returns the norm *before* clipping (13), the number worth logging: a training run
# whose gradient norm keeps growing is about to diverge.
#
# **The systems view.** One pass over all gradients for the norm, one more to scale them in place
# (`g *= coef`, and only when `coef < 1`). For $q = 2$, `np.vdot(g, g)` computes $\sum g^2$ without
# building the array $g^2$ first - $4P$ bytes of temporary saved. The norm is summed in Python
# floats (float64) across tensors, so thousands of tensors do not lose precision. Call it after
# `backward()` and before `optimizer.step()`; the given code above the region already skips
# parameters without a gradient and accepts a single Tensor as well as a list.

# %% nbgrader={"grade": false, "grade_id": "clip-grad-norm", "locked": false, "schema_version": 3, "solution": true, "task": false}
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


# %%
if __name__ == "__main__":
    a = Tensor(np.zeros(2, dtype=np.float32), requires_grad=True)
    b = Tensor(np.zeros(1, dtype=np.float32), requires_grad=True)
    a.grad = Tensor(np.array([3.0, 4.0], dtype=np.float32))
    b.grad = Tensor(np.array([12.0], dtype=np.float32))
    total = clip_grad_norm_([a, b], max_norm=6.5)
    print(f"norm before clipping {total:.4f}; gradients after: {a.grad.data} {b.grad.data}")

# %% nbgrader={"grade": true, "grade_id": "check-clip-grad-norm", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("07", "clip_grad_norm")

# %% [markdown]
# ## What an optimizer step costs, measured
#
# The cell below builds the MLP of milestone 03 (784-256-128-10, 235,146 parameters, 0.94 MB of
# float32 weights), times one forward + backward pass on a batch of 128 images, and then one
# `step()` of each optimizer, and counts the bytes of optimizer state. Expect the state to be 0,
# 0.94 and 1.9 MB, and expect the step *not* to be negligible on a model this small: the forward
# and backward passes are a handful of large matrix multiplies (about $6 \times 128 \times 235{,}146
# \approx 180$ million FLOPs, running at BLAS speed), while an optimizer makes several passes over
# all the weights with elementwise NumPy code, which runs at memory speed and on one core (and
# `sqrt` and `divide` are slower per element than `+` and `*`). On the development machine Adam's
# step came to roughly a third of the forward + backward time, SGD with momentum to a few percent.
# The timings vary with the machine and its load; the ratios are what to look at.
#
# Two things follow. An elementwise pass that can be avoided (a temporary, a copy) is time you see
# in every step of training. And at the scale of language models the *memory* becomes the
# constraint instead: weights, gradients and Adam's two moments are 16 bytes per parameter before
# any activation is stored.

# %%
if __name__ == "__main__":
    import time

    from tinytorch.activations import ReLU
    from tinytorch.layers import Linear, Sequential
    from tinytorch.losses import CrossEntropyLoss

    rng = np.random.default_rng(0)
    x = Tensor(rng.random((128, 784), dtype=np.float32))  # a batch of 128 "images"
    y = Tensor(rng.integers(0, 10, 128))
    model = Sequential(Linear(784, 256), ReLU(), Linear(256, 128), ReLU(), Linear(128, 10))
    loss_fn = CrossEntropyLoss()

    def best_ms(fn, repeats=10, rounds=3):
        """The best of `rounds` averages over `repeats` calls, in milliseconds."""
        best = math.inf
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(repeats):
                fn()
            best = min(best, (time.perf_counter() - start) / repeats * 1e3)
        return best

    def forward_backward():
        model.zero_grad()
        loss_fn(model(x), y).backward()

    print(f"forward + backward, batch 128:  {best_ms(forward_backward):6.2f} ms")
    for name, make in (("SGD", lambda ps: SGD(ps, lr=0.01)),
                       ("SGD momentum", lambda ps: SGD(ps, lr=0.01, momentum=0.9)),
                       ("Adam", lambda ps: Adam(ps, lr=1e-3)),
                       ("AdamW", lambda ps: AdamW(ps, lr=1e-3))):
        opt = make(model.parameters())
        opt.step()  # the first step creates the state
        state = sum(v.nbytes for k, v in opt.state_dict().items() if k.startswith("state"))
        print(f"{name:13s} step:           {best_ms(opt.step):6.2f} ms, state {state / 1e6:4.2f} MB")

# %% [markdown]
# ## Wrap-up
#
# You built the part of training that decides *how far* to move: SGD and its momentum buffer,
# Adam's per-coordinate step with bias correction, AdamW's decoupled decay, four schedules for the
# learning rate over time and a global gradient-norm cap - each matching PyTorch to six digits.
#
# The systems lessons to keep:
#
# - **In place, always.** The optimizer touches every weight at every step; `-=`, `*=` and `out=`
#   keep that at a few passes over memory with no allocations, and the model keeps seeing the same
#   arrays.
# - **State is memory.** Momentum is one extra copy of the parameters, Adam two. Together with the
#   weights and gradients, Adam training needs 16 bytes per parameter in float32.
# - **Never write into `p.grad`** and never let a buffer alias it: copy when you keep a gradient.
# - **Numerics**: bias correction fixes the zero start of running averages; $\epsilon$ keeps the
#   division finite; clipping caps the rare huge gradient without turning the step's direction.
#
# Next, module 08 puts a model, a loss, a data loader and one of these optimizers into a
# `Trainer`, and saves the optimizer's `state_dict()` in checkpoints. Run the module's full checks
# below (the same as `tito module test 07`), then `tito module complete 07` exports your file into
# your `tinytorch` package and unlocks milestone 02 part 2, where backpropagation solves XOR.

# %% nbgrader={"grade": true, "grade_id": "check-optimizers", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("07")
