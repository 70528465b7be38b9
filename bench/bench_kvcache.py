"""Greedy generation with and without module 17's KV cache: tokens/s, speed-up, identical tokens.

    python bench/bench_kvcache.py                     # milestone 05's GPT shape (GPTConfig()), 256 tokens
    python bench/bench_kvcache.py --threads 1         # BLAS at one thread
    python bench/bench_kvcache.py --tokens 128 --batch 4 --rounds 5
    python bench/bench_kvcache.py --quick             # a smoke test: a tiny GPT, 16 tokens, 1 round
    python bench/bench_kvcache.py --json out.json     # the numbers, for scripts
    python bench/bench_kvcache.py --threads 1 --clock cpu   # CPU time of this process (a busy machine)

Three runs of `tinytorch.memoization.generate` (the reference) from a 1-token prompt, each
cached (use_cache=True) and uncached (use_cache=False, which is module 13's GPT.generate: the
whole cropped context through the model for every token), on a seeded untrained GPT (timing does
not depend on the weights):

  window    GPTConfig() (block_size 64), as many tokens as fit in the window (64)
  256       GPTConfig(), --tokens (256) tokens: past the window every step must recompute the
            last 64 positions (their positions shift), so only the first 64 steps gain
  long      the same widths with block_size = --tokens: the whole generation in the window

For each: tokens/s both ways (best of --rounds, cached and uncached interleaved), the speed-up,
whether the greedy tokens are identical, and how many steps ran past the window. Then the limit
at GPTConfig(): the time of one decode step against one uncached forward at a full window - the
most a cache can gain at that context - and the largest logit difference between a cached
prefill + decode and the uncached model over a full window (must be < 1e-5).

On a machine shared with other jobs, wall-clock times measure the other jobs as much as this
one. `--clock cpu` times with the CPU time of this process instead (time.process_time): with BLAS
at one thread (`--threads 1`) that is the time the work takes on an idle core, whatever else runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_step  # noqa: E402  (rerun_with_threads; activates the reference as `tinytorch`)

from tinytorch.memoization import KVCache, cached_forward, generate  # noqa: E402
from tinytorch.tensor import manual_seed, no_grad  # noqa: E402
from tinytorch.transformers import GPT, GPTConfig  # noqa: E402


def make_model(config: GPTConfig, seed: int = 0) -> GPT:
    manual_seed(seed)
    return GPT(config)


def new_cache(model: GPT, batch: int) -> KVCache:
    c = model.config
    return KVCache(c.n_layer, batch, c.n_head, c.block_size, c.n_embd // c.n_head)


CLOCK = time.perf_counter  # --clock cpu: time.process_time


def run(model: GPT, tokens: int, batch: int, rounds: int) -> dict:
    """Best-of-rounds tokens/s of greedy generation, cached and uncached, interleaved."""
    prompt = np.zeros((batch, 1), dtype=np.int64)
    generate(model, prompt, 2, temperature=0)  # warm-up: first calls allocate
    best = {"cached": float("inf"), "uncached": float("inf")}
    out = {}
    for _ in range(rounds):
        for name, use_cache in (("cached", True), ("uncached", False)):
            start = CLOCK()
            out[name] = generate(model, prompt, tokens, temperature=0, use_cache=use_cache)
            best[name] = min(best[name], CLOCK() - start)
    bs = model.config.block_size
    return {"block_size": bs, "tokens": tokens, "batch": batch,
            "cached_tokens_per_s": batch * tokens / best["cached"],
            "uncached_tokens_per_s": batch * tokens / best["uncached"],
            "speedup": best["uncached"] / best["cached"],
            "identical": bool(np.array_equal(out["cached"], out["uncached"])),
            "steps_past_window": max(0, tokens - bs)}  # token i needs a context of 1 + i


def best_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = CLOCK()
        fn()
        times.append(CLOCK() - start)
    return min(times) * 1e3


def limit(model: GPT, batch: int, repeats: int) -> dict:
    """One decode step at a full window vs one uncached forward of the window; logit agreement."""
    bs, V = model.config.block_size, model.config.vocab_size
    ids = np.random.default_rng(0).integers(0, V, (batch, bs))
    cache = new_cache(model, batch)
    cached_forward(model, ids[:, :bs - 1], cache)  # bs - 1 positions cached

    def decode():
        cached_forward(model, ids[:, bs - 1:], cache)
        cache.lengths = [bs - 1] * model.config.n_layer  # rewind the position it added

    with no_grad():
        full = model(ids).data  # (B, bs, V)
        forward_ms = best_ms(lambda: model(ids), repeats)
    decode_ms = best_ms(decode, repeats)
    cache.reset()
    half = bs // 2
    steps = [cached_forward(model, ids[:, :half], cache).data]
    steps += [cached_forward(model, ids[:, t:t + 1], cache).data for t in range(half, bs)]
    diff = float(np.abs(np.concatenate(steps, axis=1) - full).max())
    return {"block_size": bs, "batch": batch, "uncached_forward_ms": forward_ms, "decode_step_ms": decode_ms,
            "bound": forward_ms / decode_ms, "max_logit_diff": diff}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=256, help="tokens to generate (default 256)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3, help="timed runs per case; the best counts")
    ap.add_argument("--quick", action="store_true", help="a tiny GPT, 16 tokens, 1 round: a smoke test")
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--threads", type=int, help="limit the BLAS and OpenMP thread pools")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall: time.perf_counter; cpu: this process's CPU time (with --threads 1 on a busy machine)")
    args = ap.parse_args(argv)
    bench_step.rerun_with_threads(__file__, sys.argv[1:] if argv is None else argv)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    base = GPTConfig()
    if args.quick:
        base = GPTConfig(vocab_size=17, block_size=12, n_layer=2, n_head=2, n_embd=32)
        args.tokens, args.rounds = 16, 1
    wide = GPTConfig(vocab_size=base.vocab_size, block_size=args.tokens, n_layer=base.n_layer,
                     n_head=base.n_head, n_embd=base.n_embd)
    model = make_model(base)
    cases = {"window": run(model, base.block_size, args.batch, args.rounds),
             str(args.tokens): run(model, args.tokens, args.batch, args.rounds),
             "long": run(make_model(wide), args.tokens, args.batch, args.rounds)}
    bound = limit(model, args.batch, repeats=3 if args.quick else 20)

    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    c = base
    print(f"Greedy generation, KV cache vs none: GPT(n_layer={c.n_layer}, n_head={c.n_head}, n_embd={c.n_embd}, "
          f"vocab={c.vocab_size}), batch {args.batch}, 1-token prompt, best of {args.rounds}; "
          f"numpy {np.__version__}, BLAS threads: {threads}, {args.clock} clock")
    print(f"{'case':>8} {'block':>6} {'tokens':>6} {'past window':>11} {'cached tok/s':>13} {'uncached tok/s':>15} "
          f"{'speed-up':>9} {'same tokens':>11}")
    for name, r in cases.items():
        print(f"{name:>8} {r['block_size']:6d} {r['tokens']:6d} {r['steps_past_window']:11d} "
              f"{r['cached_tokens_per_s']:13.0f} {r['uncached_tokens_per_s']:15.0f} {r['speedup']:8.2f}x "
              f"{str(r['identical']):>11}")
    print(f"limit at block_size {bound['block_size']}, batch {bound['batch']}: uncached forward of the full window "
          f"{bound['uncached_forward_ms']:.2f} ms, one decode step {bound['decode_step_ms']:.2f} ms -> at most "
          f"{bound['bound']:.1f}x per token at that context; max |logit difference| cached vs uncached "
          f"{bound['max_logit_diff']:.2e}")
    problems = [f"{name}: the cached tokens differ from the uncached ones" for name, r in cases.items()
                if not r["identical"]]
    if bound["max_logit_diff"] >= 1e-5:
        problems.append(f"cached logits differ from the uncached model by {bound['max_logit_diff']:.2e} >= 1e-5")
    for p in problems:
        print("WARNING:", p, file=sys.stderr)
    results = {"args": vars(args), "cases": cases, "limit": bound, "problems": problems}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    sys.exit(1 if main()["problems"] else 0)
