"""Time one training step (forward, loss, backward, optimizer step) per model and implementation.

    python bench/bench_step.py                      # the MLP, 5 rounds x 30 timed steps
    python bench/bench_step.py --models mlp --rounds 7 --steps 50
    python bench/bench_step.py --quick              # 2 steps, 1 round: a smoke test
    python bench/bench_step.py --json out.json      # also write the numbers
    python bench/bench_step.py --threads 1          # BLAS / OpenMP pools at 1 thread (re-executes)

Implementations, side by side on the same weights and the same batch:
    tinytorch   the framework in src/tinytorch (Sequential, CrossEntropyLoss, SGD)
    numpy       hand-written NumPy: the same math, backward derived by hand, no framework
    torch       PyTorch CPU as installed (skipped when torch is not installed)

Timing: each step is timed alone (perf_counter); a round runs `warmup` untimed steps, then
`steps` timed ones, and reports their median. The figure shown is the best median over the
rounds, which filters out other processes on a small machine (they can double a timing).
Implementations are interleaved within each round so that they see the same machine state.

Adding a model: write one builder per implementation and put them in MODELS, e.g.
    MODELS["lenet"] = {"tinytorch": lenet_tinytorch, "numpy": lenet_numpy, "torch": lenet_torch}
A builder takes (batch_size, seed) and returns a `step()` function that runs one training step
on a fixed batch and returns the loss as a float. Builders of one model should share their
initial weights and data (see `mlp_setup`) so that the first losses agree; the table checks it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Callable

import numpy as np

import tinytorch_reference

tinytorch_reference.activate()  # the reference framework is `tinytorch` here

Step = Callable[[], float]
Builder = Callable[[int, int], Step]
IMPLS = ("tinytorch", "numpy", "torch")
LR, MOMENTUM = 0.01, 0.9


class Unavailable(Exception):
    """A builder cannot run here (e.g. PyTorch is not installed)."""


# ---------------------------------------------------------------------------------------------
# MLP 784-256-128-10, ReLU, cross-entropy, SGD with momentum 0.9
# ---------------------------------------------------------------------------------------------
MLP_SIZES = (784, 256, 128, 10)


def mlp_setup(batch: int, seed: int):
    """Shared initial weights [(W (out, in), b (out,))] (PyTorch's init) and one batch (x, y)."""
    rng = np.random.default_rng(seed)
    layers = []
    for n_in, n_out in zip(MLP_SIZES[:-1], MLP_SIZES[1:]):
        k = 1 / np.sqrt(n_in)
        layers.append((rng.uniform(-k, k, (n_out, n_in)).astype(np.float32),
                       rng.uniform(-k, k, n_out).astype(np.float32)))
    x = rng.random((batch, MLP_SIZES[0]), dtype=np.float32)  # (N, 784), like scaled pixels
    y = rng.integers(0, MLP_SIZES[-1], batch)  # (N,) int64
    return layers, x, y


def training_step(model, loss_fn, opt, xb, yb) -> Step:
    """One step on a fixed batch: the same four calls in tinytorch and in PyTorch."""

    def step() -> float:
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def mlp_tinytorch(batch: int, seed: int) -> Step:
    from tinytorch.activations import ReLU
    from tinytorch.layers import Linear, Sequential
    from tinytorch.losses import CrossEntropyLoss
    from tinytorch.optimizers import SGD
    from tinytorch.tensor import Tensor

    layers, x, y = mlp_setup(batch, seed)
    model = Sequential(Linear(784, 256), ReLU(), Linear(256, 128), ReLU(), Linear(128, 10))
    model.load_state_dict({f"{i}.{name}": a for i, (w, b) in zip((0, 2, 4), layers)
                           for name, a in (("weight", w), ("bias", b))})
    loss_fn, opt = CrossEntropyLoss(), SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    xb, yb = Tensor(x), Tensor(y)

    return training_step(model, loss_fn, opt, xb, yb)


def mlp_numpy(batch: int, seed: int) -> Step:
    layers, x, y = mlp_setup(batch, seed)
    # weights stored (in, out) so that the forward is x @ W: the layout a hand-written net would pick
    params = [a for w, b in layers for a in (np.ascontiguousarray(w.T), b.copy())]
    bufs = [None] * len(params)
    rows = np.arange(batch)

    def step() -> float:
        w1, b1, w2, b2, w3, b3 = params
        h1 = x @ w1  # (N, 256)
        h1 += b1
        np.maximum(h1, 0, out=h1)
        h2 = h1 @ w2  # (N, 128)
        h2 += b2
        np.maximum(h2, 0, out=h2)
        z = h2 @ w3  # (N, 10)
        z += b3
        z -= z.max(axis=1, keepdims=True)  # stable softmax + cross-entropy, fused
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)  # (N, 1)
        loss = float(np.log(s).mean() - z[rows, y].mean())
        e /= s  # softmax
        e[rows, y] -= 1
        e *= 1.0 / batch  # dL/dz = (p - onehot) / N
        g3, gb3 = h2.T @ e, e.sum(axis=0)
        d2 = e @ w3.T  # (N, 128)
        d2 *= h2 > 0
        g2, gb2 = h1.T @ d2, d2.sum(axis=0)
        d1 = d2 @ w2.T  # (N, 256)
        d1 *= h1 > 0
        g1, gb1 = x.T @ d1, d1.sum(axis=0)
        for i, g in enumerate((g1, gb1, g2, gb2, g3, gb3)):  # SGD, momentum (buffer starts at g)
            if bufs[i] is None:
                bufs[i] = g
            else:
                bufs[i] *= MOMENTUM
                bufs[i] += g
            params[i] -= LR * bufs[i]
        return loss

    return step


def mlp_torch(batch: int, seed: int) -> Step:
    try:
        import torch
    except ImportError as e:
        raise Unavailable("PyTorch not installed") from e
    layers, x, y = mlp_setup(batch, seed)
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                                torch.nn.ReLU(), torch.nn.Linear(128, 10))
    with torch.no_grad():
        for lin, (w, b) in zip(model[::2], layers):
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
    loss_fn, opt = torch.nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    xb, yb = torch.from_numpy(x), torch.from_numpy(y)

    return training_step(model, loss_fn, opt, xb, yb)


MODELS: dict[str, dict[str, Builder]] = {
    "mlp": {"tinytorch": mlp_tinytorch, "numpy": mlp_numpy, "torch": mlp_torch},
}
BATCH = {"mlp": 128}


# ---------------------------------------------------------------------------------------------
# Timing and the table
# ---------------------------------------------------------------------------------------------
def time_steps(step: Step, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


def bench_model(name: str, rounds: int, steps: int, warmup: int, seed: int, impls=IMPLS) -> dict:
    """{impl: {"ms": best median, "medians": [...], "first_loss": ...} or {"skipped": reason}}."""
    out, runners = {}, {}
    for impl in impls:
        builder = MODELS[name].get(impl)
        if builder is None:
            continue
        try:
            runners[impl] = builder(BATCH.get(name, 128), seed)
        except Unavailable as e:
            out[impl] = {"skipped": str(e)}
            continue
        out[impl] = {"first_loss": runners[impl](), "medians": []}
    for r in range(rounds):
        for impl, step in runners.items():
            for _ in range(warmup):
                step()
            out[impl]["medians"].append(statistics.median(time_steps(step, steps)) * 1e3)
    for impl in runners:
        out[impl]["ms"] = min(out[impl]["medians"])
    return out


def table(results: dict) -> list[list[str]]:
    rows = []
    for model, res in results.items():
        base = res.get("numpy", {}).get("ms")
        for impl, r in res.items():
            if "skipped" in r:
                rows.append([model, impl, "-", "-", f"skipped: {r['skipped']}", "-"])
                continue
            ratio = f"{r['ms'] / base:.2f}x" if base else "-"
            spread = f"{min(r['medians']):.2f}-{max(r['medians']):.2f}"
            rows.append([model, impl, f"{r['ms']:.3f}", ratio, spread, f"{r['first_loss']:.4f}"])
    return rows


def print_table(rows: list[list[str]], title: str) -> None:
    head = ["model", "implementation", "ms/step", "vs numpy", "rounds (ms)", "first loss"]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
        print(title)
        for r in [head] + rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
        return
    print(title)
    t = Table()
    for i, h in enumerate(head):
        t.add_column(h, justify="left" if i < 2 else "right")
    for r in rows:
        t.add_row(*r)
    Console().print(t)


def check_losses(results: dict) -> list[str]:
    """Implementations of one model start from the same weights and batch: first losses agree."""
    problems = []
    for model, res in results.items():
        losses = {i: r["first_loss"] for i, r in res.items() if "first_loss" in r}
        if losses and max(losses.values()) - min(losses.values()) > 1e-3 * max(1.0, abs(min(losses.values()))):
            problems.append(f"{model}: first-step losses disagree: {losses}")
    return problems


def _threads(args: list[str]) -> str | None:
    """The value of `--threads N` / `--threads=N` in a command line, if any."""
    for i, a in enumerate(args):
        if a == "--threads" and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return None


def rerun_with_threads(script: str, args: list[str]) -> None:
    """With `--threads N` in `args`, start `script` afresh with the BLAS/OpenMP pools set to N
    (they are sized when NumPy / PyTorch load, so the variables must be set before that)."""
    n = _threads(args)
    if n and os.environ.get("BENCH_STEP_THREADS") != n:
        env = dict(os.environ, OPENBLAS_NUM_THREADS=n, OMP_NUM_THREADS=n, MKL_NUM_THREADS=n,
                   BENCH_STEP_THREADS=n)
        os.execve(sys.executable, [sys.executable, os.path.abspath(script), *args], env)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="mlp", help=f"comma-separated, from: {', '.join(MODELS)}")
    ap.add_argument("--impls", default=",".join(IMPLS), help="comma-separated implementations to run")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=30, help="timed steps per round (>= 20 for the figures)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps before each round")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="1 round of 2 steps, 1 warm-up: a smoke test")
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--threads", type=int, help="limit the BLAS and OpenMP thread pools (all implementations)")
    args = ap.parse_args(argv)
    rerun_with_threads(__file__, sys.argv[1:] if argv is None else argv)
    if args.quick:
        args.rounds, args.steps, args.warmup = 1, 2, 1
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; available: {sorted(MODELS)}")
    impls = tuple(i.strip() for i in args.impls.split(","))
    results = {m: bench_model(m, args.rounds, args.steps, args.warmup, args.seed, impls) for m in models}
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    title = (f"One training step: median of {args.steps} steps, best of {args.rounds} rounds; "
             f"numpy {np.__version__}, BLAS threads: {threads}")
    print_table(table(results), title)
    problems = check_losses(results)
    for p in problems:
        print("WARNING:", p, file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results, "problems": problems}, f, indent=1)
    return results


if __name__ == "__main__":
    sys.modules.setdefault("bench_step", sys.modules[__name__])  # bench_conv extends THIS module
    import bench_conv  # noqa: E402,F401  (adds the lenet and cifar models to MODELS)
    import bench_gpt  # noqa: E402,F401  (adds the char-GPT of milestone 05 to MODELS)

    main()
