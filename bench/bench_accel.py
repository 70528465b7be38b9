"""Module 18's accelerated training steps beside single-thread tinytorch, hand-written NumPy and
PyTorch CPU, in one run: LeNet-5 (batch 128) and the char-GPT (GPTConfig() defaults, batch 32).

    python bench/bench_accel.py                     # lenet and gpt, 5 rounds x 30 timed steps
    python bench/bench_accel.py --rounds 9 --steps 20
    python bench/bench_accel.py --dp-threads 4      # more data-parallel threads (default 2)
    python bench/bench_accel.py --quick             # 1 round of 2 steps: a smoke test
    python bench/bench_accel.py --json out.json     # also write the numbers

Implementations (the same weights and the same batch, so the first losses agree):
    tinytorch   the reference framework, one Python thread, BLAS as shipped (bench_step's builder)
    tiled       LeNet-5 only: module 18's accelerate(model) - each convolution a TiledConv2d (tile
                tuned by timing), each ReLU + MaxPool2d reordered to MaxPool2d + ReLU - one thread
    parallel    LeNet-5 only: the model as it is, trained with parallel_step
    accel       both: parallel_step (the batch split across --dp-threads Python threads, OpenBLAS
                at one thread inside the step, gradients averaged by shard size), on the
                accelerated LeNet-5; the GPT has no convolution, so it is parallel_step alone
    numpy       hand-written NumPy, one Python thread (bench_conv / bench_gpt)
    torch       PyTorch CPU as shipped (its own thread pool, all cores)

The timing, interleaving and table are bench_step's (this file only adds its builders to
its MODELS); after the table come accel / torch ratios against the targets of issue 10 (LeNet
within 1.2x of PyTorch, GPT within 1.5x). Do not pass bench_step's --threads here: it would put
PyTorch at one thread too, which is not "PyTorch as shipped".
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_step  # noqa: E402  (timing, table, MODELS; activates the reference framework)
import bench_conv  # noqa: E402,F401  (adds lenet to MODELS, and its setup / model builder)
import bench_gpt  # noqa: E402,F401  (adds gpt to MODELS, and its setup)

TARGETS = {"lenet": 1.2, "gpt": 1.5}  # accel / torch, issue 10
DP_THREADS = int(os.environ.get("BENCH_DP_THREADS", "2"))


PLANS: dict[str, list[str]] = {}  # what accelerate chose for the LeNet-5 of each row, printed after the table


def lenet_model(batch: int, seed: int, accelerated: str = ""):
    from tinytorch.acceleration import accelerate
    from tinytorch.losses import CrossEntropyLoss
    from tinytorch.optimizers import SGD
    from tinytorch.tensor import Tensor

    spec, params, x, y = bench_conv.setup("lenet", batch, seed)
    model = bench_conv.tinytorch_model(spec)
    weighted = [i for i, s in enumerate(spec) if s[0] in ("conv", "fc")]
    model.load_state_dict({f"{i}.{k}": a for i, (w, b) in zip(weighted, params)
                           for k, a in (("weight", w), ("bias", b))})
    opt = SGD(model.parameters(), lr=bench_step.LR, momentum=bench_step.MOMENTUM)
    if accelerated:  # tiled convolutions, pool before ReLU; the same Parameters, so `opt` trains it
        model = accelerate(model, x.shape[1:])
        PLANS[accelerated] = model.plan
    return model, CrossEntropyLoss(), opt, Tensor(x), Tensor(y)


def lenet_tiled(batch: int, seed: int) -> bench_step.Step:
    return bench_step.training_step(*lenet_model(batch, seed, accelerated="tiled"))


def lenet_parallel(batch: int, seed: int) -> bench_step.Step:
    from tinytorch.acceleration import parallel_step

    model, loss_fn, opt, xb, yb = lenet_model(batch, seed)
    return lambda: parallel_step(model, loss_fn, opt, xb, yb, threads=DP_THREADS)


def lenet_accel(batch: int, seed: int) -> bench_step.Step:
    from tinytorch.acceleration import parallel_step

    model, loss_fn, opt, xb, yb = lenet_model(batch, seed, accelerated="accel")
    return lambda: parallel_step(model, loss_fn, opt, xb, yb, threads=DP_THREADS)


def gpt_accel(batch: int, seed: int) -> bench_step.Step:
    from tinytorch.acceleration import parallel_step
    from tinytorch.losses import CrossEntropyLoss
    from tinytorch.optimizers import Adam
    from tinytorch.transformers import GPT, GPTConfig

    weights, x, y = bench_gpt.gpt_setup(batch, seed)
    model = GPT(GPTConfig())  # the defaults ARE bench_gpt's shape (65, 64, 4, 4, 128)
    for name, p in model.named_parameters():
        p.data[...] = weights[name]
    opt = Adam(model.parameters(), lr=bench_gpt.LR, betas=bench_gpt.BETAS, eps=bench_gpt.EPS)
    ce = CrossEntropyLoss()

    def loss_fn(logits, targets):  # (b, T, V) logits of one shard, (b, T) next tokens
        return ce(logits.reshape(-1, logits.shape[-1]), targets.data.reshape(-1))

    return lambda: parallel_step(model, loss_fn, opt, x, y, threads=DP_THREADS)


bench_step.MODELS["lenet"].update(tiled=lenet_tiled, parallel=lenet_parallel, accel=lenet_accel)
bench_step.MODELS["gpt"]["accel"] = gpt_accel


def summary(results: dict) -> list[str]:
    lines = [f"accelerate(lenet) for the {impl} row: {'; '.join(plan)}" for impl, plan in PLANS.items()]
    lines.append(f"accel = parallel_step ({DP_THREADS} threads, OpenBLAS at 1 thread inside the step) "
                 "on the accelerated model (LeNet-5: accelerate(model); the GPT has no convolution to tile):")
    for model, res in results.items():
        ms = {impl: r.get("ms") for impl, r in res.items()}
        if not ms.get("accel"):
            continue
        part = f"  {model}: accel {ms['accel']:.2f} ms"
        if ms.get("tinytorch"):
            part += f", {ms['tinytorch'] / ms['accel']:.2f}x faster than one thread ({ms['tinytorch']:.2f} ms)"
        if ms.get("torch"):
            ratio, target = ms["accel"] / ms["torch"], TARGETS.get(model)
            verdict = "" if target is None else (f" - target {target}x: {'met' if ratio <= target else 'NOT met'}")
            part += f"; {ratio:.2f}x PyTorch ({ms['torch']:.2f} ms){verdict}"
        lines.append(part)
    return lines


def main(argv: list[str]) -> dict:
    global DP_THREADS
    argv = list(argv)
    bench_step.rerun_with_threads(__file__, argv)  # THIS script (bench_step would re-run itself)
    if "--dp-threads" in argv:
        i = argv.index("--dp-threads")
        DP_THREADS = int(argv[i + 1])
        del argv[i:i + 2]
    if not any(a == "--models" or a.startswith("--models=") for a in argv):
        argv = ["--models", "lenet,gpt", *argv]
    if not any(a == "--impls" or a.startswith("--impls=") for a in argv):
        argv = ["--impls", "tinytorch,tiled,parallel,accel,numpy,torch", *argv]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{os.cpu_count()} CPUs, load average {load:.1f} before the run")
    results = bench_step.main(argv)
    for line in summary(results):
        print(line)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
