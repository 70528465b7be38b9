"""LeNet-5 inference, side by side: batch-1 latency and batch-256 throughput, the same weights.

    python bench/bench_infer.py                  # 5 rounds
    python bench/bench_infer.py --rounds 9 --json out.json
    python bench/bench_infer.py --quick          # 1 round, few repeats: a smoke test

Implementations (the weights of one seeded LeNet-5; every row checked against the first):
    tinytorch        the reference framework: model(x) under no_grad (what `predictor` runs)
    frozen           tinytorch.acceleration.freeze(model): graph-free, channels last (module 18)
    frozen 2 thr     the same, batches split over two Python threads
    numpy            the same forward hand-written in NumPy the straightforward way: NCHW, patches
                     with sliding_window_view, one matmul per layer
    torch            PyTorch CPU as shipped (its own thread pool), torch.no_grad()
    pruned           milestone 06's shapes: half the channels and hidden units removed (module 16,
                     prune_channels + prune_neurons; untrained weights - speed only), model(x)
    pruned frozen    the same pruned model through freeze on two threads (milestone 06's engine)

BLAS runs at one thread for the NumPy rows (the frozen model's threads are its own). Latency: the
median of single calls at batch 1; throughput: images per second at batch 256. The rounds take
turns; the best round of each row is reported (other processes only ever slow a run down).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
import tinytorch_reference  # noqa: E402

tinytorch_reference.activate()


def lenet(seed: int = 0):
    """Milestone 04's LeNet-5 (the architecture milestone 06 optimises), seeded, in eval mode."""
    from tinytorch.tensor import manual_seed
    from tito.milestones.m04_cnn import lenet5

    manual_seed(seed)
    return lenet5().eval()


def numpy_forward(model):
    """The same forward written by hand, NCHW: patches, one matmul per layer, reshape pooling."""
    c1, c2, f1, f2, f3 = (model[i] for i in (0, 3, 7, 9, 11))
    w1, w2 = (c.weight.data.reshape(c.weight.shape[0], -1) for c in (c1, c2))

    def conv(x, w, b, k, p):
        x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
        win = sliding_window_view(x, (k, k), axis=(2, 3))  # (N, C, Ho, Wo, k, k)
        n, c, ho, wo = win.shape[:4]
        cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * k * k)
        return (cols @ w.T + b).reshape(n, ho, wo, -1).transpose(0, 3, 1, 2)

    def pool(x):
        n, c, h, w = x.shape
        return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))

    def forward(x):
        h = pool(np.maximum(conv(x, w1, c1.bias.data, 5, 2), 0))
        h = pool(np.maximum(conv(h, w2, c2.bias.data, 5, 0), 0)).reshape(len(x), -1)
        h = np.maximum(h @ f1.weight.data.T + f1.bias.data, 0)
        h = np.maximum(h @ f2.weight.data.T + f2.bias.data, 0)
        return h @ f3.weight.data.T + f3.bias.data

    return forward


def torch_forward(model):
    try:
        import torch
    except ImportError:
        return None
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                              torch.nn.Linear(400, 120), torch.nn.ReLU(), torch.nn.Linear(120, 84), torch.nn.ReLU(),
                              torch.nn.Linear(84, 10)).eval()
    with torch.no_grad():
        for mine, theirs in zip([m for m in model if hasattr(m, "weight")],
                                [m for m in net if hasattr(m, "weight")]):
            theirs.weight.copy_(torch.from_numpy(mine.weight.data))
            theirs.bias.copy_(torch.from_numpy(mine.bias.data))

    def forward(x):
        with torch.no_grad():
            return net(torch.from_numpy(x)).numpy()

    return forward


def latency_us(fn, x1, repeats: int) -> float:
    fn(x1)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x1)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e6


def throughput(fn, xb, repeats: int) -> float:
    fn(xb)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn(xb)
    return repeats * len(xb) / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    from tinytorch.acceleration import blas_threads, freeze
    from tinytorch.tensor import Tensor, no_grad

    model = lenet()
    rng = np.random.default_rng(0)
    xb = rng.standard_normal((256, 1, 28, 28)).astype(np.float32)

    def tinytorch_fn(x):
        with no_grad():
            return model(Tensor(x)).data

    from tinytorch.compression import prune_channels, prune_neurons

    small = prune_neurons(prune_channels(model, 0.5), 0.5).eval()  # milestone 06's shapes (untrained)

    def small_fn(x):
        with no_grad():
            return small(Tensor(x)).data

    rows = {"tinytorch": tinytorch_fn, "frozen": freeze(model, (1, 28, 28)),
            "frozen 2 thr": freeze(model, (1, 28, 28), threads=2), "numpy": numpy_forward(model)}
    torch_fn = torch_forward(model)
    if torch_fn is not None:
        rows["torch"] = torch_fn
    rows.update({"pruned": small_fn, "pruned frozen 2 thr": freeze(small, (1, 28, 28), threads=2)})
    ref, ref_small = tinytorch_fn(xb), small_fn(xb)
    for name, fn in rows.items():
        err = float(np.abs(fn(xb) - (ref_small if name.startswith("pruned") else ref)).max())
        assert err < 1e-3, f"{name} differs from tinytorch by {err}"
    rounds, lat_n, thr_n = (1, 50, 2) if args.quick else (args.rounds, 400, 10)
    best = {name: {"latency_us": float("inf"), "images_per_s": 0.0} for name in rows}
    for _ in range(rounds):
        for name, fn in rows.items():
            with blas_threads(None if name == "torch" else 1):
                best[name]["latency_us"] = min(best[name]["latency_us"], latency_us(fn, xb[:1], lat_n))
                best[name]["images_per_s"] = max(best[name]["images_per_s"], throughput(fn, xb, thr_n))
    base = best["tinytorch"]
    print(f"LeNet-5 inference, best of {rounds} rounds (BLAS at 1 thread except torch)")
    print(f"{'':20s} {'batch 1 (us)':>13s} {'vs tinytorch':>13s} {'batch 256 (img/s)':>18s} {'vs tinytorch':>13s}")
    for name, b in best.items():
        print(f"{name:20s} {b['latency_us']:13.1f} {base['latency_us'] / b['latency_us']:12.2f}x "
              f"{b['images_per_s']:18,.0f} {b['images_per_s'] / base['images_per_s']:12.2f}x")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"rounds": rounds, "rows": best}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
