"""Milestone 06 - MLPerf (2018), on YOUR modules 01-09 and 14-19 (part 2: and 10-13).

MLPerf made ML systems comparable: a fixed task, a fixed quality target, measured latency and
throughput, the system written down. Each part takes a model trained with the learner's code,
optimises it with the learner's optimisation modules, and benchmarks the baseline and the
optimised model in the same run with the learner's harness (module 19):

Part 1 - the vision model. LeNet-5 on MNIST (loaded from the learner's recorded milestone 04 run
when there is one, else trained here). Optimised = whole channels and neurons pruned (16:
prune_channels, prune_neurons) and fine-tuned, INT8 post-training quantization calibrated on a fixed
calibration set from the training split (15: quantize_model; 19: calibration_set), then compiled
into a graph-free forward on two threads (18: freeze on the learner's gather_index, fold_flatten and
split_batch). Victory: optimised test accuracy >= 99% of the FP32 baseline's (MLPerf's rule), stored
model >= 4x smaller, SingleStream p90 latency >= 1.5x lower, Offline throughput >= 2x higher.

Part 2 - the language model. A character GPT with a 256-character context, trained here on Tiny
Shakespeare with the learner's modules (milestone 05's models have a 64-character context, too
short for 256 tokens in one window). Victory: KV-cache generation (17) of 256 tokens >= 10x faster
than without the cache, with identical greedy tokens; INT8 weights (15) within 0.05 nats/char of the
FP32 validation loss.

Nothing is taken from the learner's code on trust; independent probes, measured here:

    harness_consistent   module 19's numbers agree with a recount from the same run: accuracy
                         from the predictions, p50/p90 from the per-query latencies, throughput =
                         samples / seconds, and the stored bytes counted from the state_dict
    frozen_matches       the frozen model gives the pruned model's logits (float32: <= 1e-3) and
                         the INT8 frozen model the INT8 model's classes (>= 99% agreement)
    int8_stored          every quantized weight is stored as int8 codes
    tokens_identical     cached and uncached greedy generation give the same tokens

Results go to report.md + results.json in the part's folder (module 19's write_report for part 1),
in MLPerf's vocabulary - and they say that these are not official MLPerf results.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from tito.milestones.common import RunContext, _pyplot
from tito.milestones.m04_cnn import AugmentedLoader, MNIST_NORM, _train, lenet5, logits_of

PRUNE = 0.5  # fraction of the channels of each convolution and of the hidden units removed
QUALITY_RATIO = 0.99  # MLPerf: at least 99% of the FP32 reference's accuracy
OFFLINE_PASSES = 5  # Offline throughput: the best of 5 passes over the test split


# ---------------------------------------------------------------------------------------------
# Part 1: the baseline LeNet-5 - the learner's milestone 04 weights, or trained here
# ---------------------------------------------------------------------------------------------
def _recorded(milestone: str, part: int, build: str):
    """The model of the learner's last recorded (full) run of a milestone part, rebuilt on their
    tinytorch from its saved weights: (model, where it came from, its model.json), or None."""
    import tinytorch

    from tito import milestone_work, registry
    from tito.workspace import Workspace

    root = Path(list(tinytorch.__path__)[0]).resolve().parent
    if not (root / ".tito").is_dir():
        return None
    found = milestone_work.last_run(Workspace(root), registry.get_milestone(milestone), part)
    if found is None:
        return None
    run_dir, label = found
    info = json.loads((run_dir / "model.json").read_text(encoding="utf-8"))
    if info.get("quick") or info.get("build") != build:
        return None
    module, fn = build.split(":")
    model = getattr(__import__(module, fromlist=[fn]), fn)(**info.get("config", {}))
    with np.load(run_dir / "model.npz", allow_pickle=False) as z:
        model.load_state_dict({k: z[k] for k in z.files})
    return model, f"{label} ({run_dir})", info


def _fit(ctx, model, images, labels, x_test, y_test, epochs, batch, lr, stage):
    from tinytorch.losses import CrossEntropyLoss
    from tinytorch.optimizers import Adam
    from tinytorch.transforms import Normalize

    loader = AugmentedLoader(images, labels, Normalize(*MNIST_NORM), batch, ctx.seed)
    curves, witness, seconds = _train(ctx, model, Adam(model.parameters(), lr=lr), CrossEntropyLoss(), loader,
                                      epochs, x_test, y_test, stage, curve_images=2000)
    return curves, witness, seconds


# ---------------------------------------------------------------------------------------------
# Part 1: independent recounts of what the learner's harness reports
# ---------------------------------------------------------------------------------------------
def stored_bytes(model) -> int:
    """The bytes of every array of the state_dict, counted here (int8 codes: one byte each)."""
    return int(sum(np.asarray(getattr(a, "data", a)).nbytes for a in model.state_dict().values()))


def recount(result, predict, splits, size_bytes: int) -> list[str]:
    """Problems found when recounting one BenchmarkResult from the same run; [] when consistent."""
    problems = []
    d = result.to_dict()
    pred = np.concatenate([np.asarray(predict(splits.x_test[i:i + 500])).argmax(axis=1)
                           for i in range(0, len(splits.x_test), 500)])
    acc = float(np.mean(pred == splits.y_test))
    if abs(acc - d["quality"]["accuracy"]) > 1e-6:
        problems.append(f"{result.name}: quality() says accuracy {d['quality']['accuracy']:.4f}, its predictions "
                        f"on the test split give {acc:.4f}")
    lat = np.asarray(d["SingleStream"]["latencies_ms"], dtype=np.float64)
    if len(lat) == 0:
        problems.append(f"{result.name}: SingleStream recorded no latencies")
    else:
        for q, key in ((50, "p50_ms"), (90, "p90_ms")):
            mine = float(np.percentile(lat, q))
            if not math.isclose(mine, d["SingleStream"][key], rel_tol=0.02, abs_tol=1e-4):
                problems.append(f"{result.name}: SingleStream {key} {d['SingleStream'][key]:.4f} ms, the "
                                f"{q}th percentile of its own latencies is {mine:.4f} ms")
    off = d["Offline"]
    if off["seconds"] <= 0 or not math.isclose(off["samples"] / off["seconds"], off["samples_per_s"], rel_tol=1e-3):
        problems.append(f"{result.name}: Offline {off['samples_per_s']:.0f} samples/s is not samples / seconds "
                        f"({off['samples']} / {off['seconds']:.4f})")
    if off["samples"] != len(splits.x_test):
        problems.append(f"{result.name}: Offline ran {off['samples']} samples, the test split has "
                        f"{len(splits.x_test)}")
    if d["size_bytes"] != size_bytes:
        problems.append(f"{result.name}: model_size_bytes says {d['size_bytes']:,} bytes, the state_dict holds "
                        f"{size_bytes:,}")
    return problems


def _plot_pareto(path: Path, results, title: str) -> None:
    plt = _pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    for i, r in enumerate(results):
        acc = 100 * r.accuracy
        offset = (6, 6 - 14 * (i % 2))  # systems of the same size: labels above and below
        a.scatter(r.size_bytes / 1024, acc, s=60)
        a.annotate(r.name, (r.size_bytes / 1024, acc), fontsize=8, xytext=offset, textcoords="offset points")
        b.scatter(r.single_stream.p90 * 1e3, acc, s=60)
        b.annotate(r.name, (r.single_stream.p90 * 1e3, acc), fontsize=8, xytext=offset, textcoords="offset points")
    a.set(xlabel="stored model (KiB, log scale)", ylabel="test accuracy (%)", title="accuracy vs size",
          xscale="log")
    a.xaxis.set_major_formatter(ScalarFormatter())
    a.xaxis.set_minor_formatter(NullFormatter())
    a.set_xlim(min(r.size_bytes for r in results) / 1024 / 2, max(r.size_bytes for r in results) / 1024 * 3)
    b.set_xlim(0, max(r.single_stream.p90 for r in results) * 1e3 * 1.5)
    b.set(xlabel="SingleStream p90 latency (us)", ylabel="test accuracy (%)", title="accuracy vs latency")
    target = 100 * results[0].quality_target
    for ax in (a, b):
        ax.axhline(target, color="grey", ls="--", lw=1)
        ax.text(ax.get_xlim()[0], target, " 99% of FP32", va="bottom", fontsize=8, color="grey")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_latency(path: Path, results, title: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    hi = max(float(np.percentile(r.single_stream.times_ms, 99.5)) for r in results) * 1e3
    bins = np.linspace(0, hi, 60)
    for r in results:
        us = np.asarray(r.single_stream.times_ms) * 1e3
        ax.hist(np.clip(us, 0, hi), bins=bins, alpha=0.55, label=f"{r.name} (p90 {r.single_stream.p90 * 1e3:.0f} us)")
    ax.set(xlabel="latency of one query (us)", ylabel="queries", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Part 1: the vision model
# ---------------------------------------------------------------------------------------------
def vision(ctx: RunContext) -> dict:
    from tinytorch.acceleration import blas_threads, freeze
    from tinytorch.benchmarking import Splits, calibration_set, offline, predictor, run_benchmark, write_report
    from tinytorch.compression import prune_channels, prune_neurons
    from tinytorch.quantization import model_size_bytes, quantize_model
    from tinytorch.transforms import normalize

    started = time.perf_counter()
    images, labels = ctx.data("mnist", "train")
    test_images, test_labels = ctx.data("mnist", "test")
    if ctx.quick:  # a rehearsal: 6,000 training images, 2,000 test images
        images, labels = images[:6000], labels[:6000]
        test_images, test_labels = test_images[:2000], test_labels[:2000]
    x_train, x_test = normalize(images, *MNIST_NORM), normalize(test_images, *MNIST_NORM)  # (N, 1, 28, 28)
    splits = Splits(x_train, labels, x_test, test_labels, name="MNIST")

    # 1. the FP32 baseline: as the learner trained it
    found = _recorded("04", 1, "tito.milestones.m04_cnn:lenet5")
    model, source = found[:2] if found else (None, "")
    if model is None:
        epochs, batch = (2, 64) if ctx.quick else (4, 128)
        source = f"trained here ({epochs} epoch{'s' * (epochs > 1)} on {len(images):,} images)"
        ctx.log(f"no recorded milestone 04 LeNet-5 to load: training one ({epochs} epochs)")
        model = lenet5()
        _fit(ctx, model, images, labels, x_test, test_labels, epochs, batch, 2e-3, "LeNet-5 baseline")
    else:
        ctx.log(f"the FP32 baseline: {source}")
    model.eval()

    # 2. optimised: prune whole channels and neurons, fine-tune, quantize, freeze
    pruned = prune_neurons(prune_channels(model, PRUNE), PRUNE)
    chans = [layer.weight.shape[0] for layer in pruned if getattr(getattr(layer, "weight", None), "ndim", 0) == 4]
    ctx.log(f"pruned {PRUNE:.0%} of the channels and hidden units: convolutions {chans}, "
            f"{sum(p.size for p in pruned.parameters()):,} parameters (from {sum(p.size for p in model.parameters()):,})")
    tune_epochs, batch = (2, 64) if ctx.quick else (2, 128)
    _, witness, _ = _fit(ctx, pruned, images, labels, x_test, test_labels, tune_epochs, batch, 1e-3,
                         "fine-tuning the pruned model")
    pruned.eval()
    calib = calibration_set(splits, 256, seed=0)
    int8 = quantize_model(pruned, [calib], mode="float")
    int8_stored = all(np.asarray(layer.weight_q.data).dtype == np.int8
                      for _, layer in int8.named_modules() if hasattr(layer, "weight_q"))
    n_quantized = sum(1 for _, layer in int8.named_modules() if hasattr(layer, "weight_q"))
    n_weighted = sum(1 for layer in pruned if getattr(layer, "weight", None) is not None)  # conv + Linear
    frozen = freeze(int8, x_test.shape[1:], threads=2, chunk=128)
    for line in getattr(frozen, "plan", []):  # how each convolution was lowered, and why
        ctx.log(f"freeze: {line}")

    # 3. probes: the frozen forward computes what the models compute
    with blas_threads(1):
        probe_x = x_test[:500]
        fp = freeze(pruned, x_test.shape[1:], threads=2, chunk=128)
        frozen_err = float(np.abs(fp(probe_x) - logits_of(pruned, probe_x)).max())
        agree = float(np.mean(frozen(probe_x).argmax(1) == logits_of(int8, probe_x).argmax(1)))
    frozen_ok = frozen_err <= 1e-3 and agree >= 0.99
    if not frozen_ok:
        ctx.note(f"the frozen model disagrees with the model it was compiled from: largest logit difference "
                 f"{frozen_err:.2e} (pruned FP32), class agreement {agree:.2%} (INT8) - see gather_index and "
                 "fold_flatten (module 18)")

    # 4. the benchmark: module 19, every system with the same settings, in one run
    queries, warmup = (200, 20) if ctx.quick else (1000, 100)
    systems = [("FP32 baseline", predictor(model), model),
               ("pruned + INT8 (framework)", predictor(int8), int8),
               ("pruned + INT8, frozen, 2 threads", frozen, int8)]
    results, problems = [], []
    with blas_threads(1):  # one BLAS thread: the two threads of the frozen model are its own
        for name, predict, owner in systems:
            ctx.progress(stage=f"benchmarking {name}")
            ref = results[0] if results else None
            r = run_benchmark(name, predict, splits, queries=queries, warmup=warmup, batch=256, reference=ref,
                              ratio=QUALITY_RATIO, size_bytes=model_size_bytes(owner))
            results.append(r)
        # Offline: the best of OFFLINE_PASSES passes, the systems taking turns (a burst of load on a
        # shared machine slows whichever system runs then; it never speeds one up)
        for _ in range(OFFLINE_PASSES - 1):
            for r, (name, predict, _) in zip(results, systems):
                ctx.progress(stage=f"Offline pass: {name}")
                again = offline(predict, splits.x_test, batch=256)
                if again.throughput > r.offline.throughput:
                    r.offline = again
    for r, (name, predict, owner) in zip(results, systems):
        size = stored_bytes(owner)
        problems += recount(r, predict, splits, size)
        ctx.log(f"{name}: accuracy {r.accuracy:.2%}, {size:,} bytes, SingleStream p50 "
                f"{r.single_stream.p50 * 1e3:.0f} us p90 {r.single_stream.p90 * 1e3:.0f} us, Offline "
                f"{r.offline.throughput:,.0f} samples/s")
    for p in problems:
        ctx.note(p)
    base, fw, opt = results
    if not opt.meets_quality:
        ctx.note(f"the optimised model reaches {opt.accuracy:.2%}, below 99% of the FP32 baseline's "
                 f"{base.accuracy:.2%} (pruning: module 16, quantization: module 15, freeze: module 18)")
    _, md = write_report(results, ctx.out_dir, title="MLPerf-style inference: LeNet-5 on MNIST")
    notes = [f"- FP32 baseline: LeNet-5, {source}.",
             f"- Optimised: {PRUNE:.0%} of the channels and hidden units pruned (convolutions {chans}), fine-tuned "
             f"{tune_epochs} epochs, INT8 per output channel calibrated on 256 fixed training images, compiled "
             "with freeze on 2 threads.",
             *(f"- freeze: {line}" for line in getattr(frozen, "plan", [])),
             f"- Offline: the best of {OFFLINE_PASSES} passes over the test split per system, the systems taking "
             "turns; SingleStream and quality from one run of module 19's run_benchmark. One BLAS thread."]
    md.write_text(md.read_text(encoding="utf-8") + "\n## How these were measured\n\n" + "\n".join(notes) + "\n",
                  encoding="utf-8")
    _plot_pareto(ctx.path("pareto.png"), results, "LeNet-5 on MNIST: the optimised model against the baseline")
    _plot_latency(ctx.path("latency_histogram.png"), results, f"SingleStream latencies ({queries} queries each)")
    base_size, opt_size = stored_bytes(model), stored_bytes(int8)
    metrics = {
        "fp32_acc": base.accuracy, "opt_acc": opt.accuracy, "framework_int8_acc": fw.accuracy,
        "quality_ratio": opt.accuracy / base.accuracy if base.accuracy else 0.0,
        "meets_quality": bool(opt.meets_quality),
        "fp32_bytes": base_size, "opt_bytes": opt_size, "size_ratio": base_size / opt_size,
        "fp32_p90_ms": base.single_stream.p90, "opt_p90_ms": opt.single_stream.p90,
        "framework_int8_p90_ms": fw.single_stream.p90,
        "p90_speedup": base.single_stream.p90 / opt.single_stream.p90,
        "fp32_samples_per_s": base.offline.throughput, "opt_samples_per_s": opt.offline.throughput,
        "offline_speedup": opt.offline.throughput / base.offline.throughput,
        "harness_consistent": not problems, "frozen_matches": frozen_ok, "frozen_logit_err": frozen_err,
        "frozen_int8_agreement": agree, "int8_stored": bool(int8_stored and n_quantized == n_weighted),
        "quantized_layers": n_quantized, **{f"conv{i + 1}_channels": c for i, c in enumerate(chans)},
        "baseline_loaded": not source.startswith("trained here"), "queries": queries, "test_images": len(x_test),
        "seconds": time.perf_counter() - started,
    }
    metrics.update({k: v for k, v in witness.metrics(tail=20).items() if k in ("grads_ok", "weights_changed")})
    return metrics


# ---------------------------------------------------------------------------------------------
# Part 2: the language model
# ---------------------------------------------------------------------------------------------
GEN_TOKENS, GEN_STREAMS = 256, 8  # generate 256 tokens (the whole context) for 8 prompts at once


def _lm_recipe(quick: bool):
    from tito.milestones.m05_transformer import Recipe

    if quick:
        return Recipe(n_layer=2, n_head=4, n_embd=64, block_size=256, batch=8, steps=60, lr=3e-3, warmup=10,
                      eval_every=30)
    return Recipe(n_layer=2, n_head=4, n_embd=128, block_size=256, batch=16, steps=600, lr=3e-3, warmup=50,
                  eval_every=100)


def _timed_generate(model, prompt: np.ndarray, use_cache: bool, repeats: int) -> tuple[np.ndarray, float]:
    """Greedy generation of GEN_TOKENS - 1 new tokens (the whole context); the best of `repeats`."""
    from tinytorch.memoization import generate

    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = generate(model, prompt, GEN_TOKENS - prompt.shape[1], temperature=0.0, use_cache=use_cache)
        best = min(best, time.perf_counter() - t0)
    return np.asarray(out), best


def _lm_report(path_md: Path, path_json: Path, rows: dict, system: dict) -> None:
    from tinytorch.benchmarking import NOTE

    doc = {"title": "MLPerf-style inference: a character GPT on Tiny Shakespeare", "note": NOTE, "system": system,
           "results": rows}
    path_json.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    g, q = rows["generation"], rows["quality"]
    lines = [f"# {doc['title']}", "", f"> {NOTE}", "",
             f"Scenario: **Offline** text generation - {g['streams']} prompts at once, greedy, {g['tokens']} tokens "
             f"each (the whole {g['block_size']}-token context). Quality: validation loss (nats/char) on the last "
             "10% of Tiny Shakespeare; target: INT8 within 0.05 of FP32.", "",
             "| system under test | tokens/s | time (s) | speed-up | same tokens |", "|---|---|---|---|---|",
             f"| FP32, no KV cache | {g['uncached_tokens_per_s']:,.0f} | {g['uncached_s']:.2f} | 1.00x | - |",
             f"| FP32, KV cache (module 17) | {g['cached_tokens_per_s']:,.0f} | {g['cached_s']:.2f} | "
             f"{g['speedup']:.1f}x | {'yes' if g['tokens_identical'] else 'NO'} |", "",
             f"INT8 quality measured on {q['model']}.", "",
             "| model | validation loss | stored bytes | meets target |", "|---|---|---|---|",
             f"| FP32 | {q['fp32_val_loss']:.4f} | {q['fp32_bytes']:,} | (reference) |",
             f"| INT8 weights (module 15) | {q['int8_val_loss']:.4f} | {q['int8_bytes']:,} | "
             f"{'yes' if q['gap'] <= 0.05 else 'NO'} (gap {q['gap']:+.4f}) |", "", "## System", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {', '.join(f'{a}={b}' for a, b in v.items()) if isinstance(v, dict) else v} |"
              for k, v in system.items()]
    path_md.write_text("\n".join(lines) + "\n", encoding="utf-8")


def language(ctx: RunContext) -> dict:
    from tinytorch.acceleration import blas_threads
    from tinytorch.benchmarking import system_description
    from tinytorch.quantization import quantize_model
    from tinytorch.tokenization import CharTokenizer

    from tito.milestones.m05_transformer import batches_from, bigram_loss, lm_loss, make_gpt, train

    started = time.perf_counter()
    r = _lm_recipe(ctx.quick)
    text = ctx.data("tinyshakespeare")
    tok = CharTokenizer(text)  # the learner's tokenizer (module 10)
    data = np.asarray(tok.encode(text), dtype=np.int64)
    split = int(0.9 * len(data))
    train_ids, val_ids = data[:split], data[split:]
    model = make_gpt(tok.vocab_size, r)
    ctx.log(f"GPT with a {r.block_size}-character context ({r.n_layer} layers, width {r.n_embd}, "
            f"{model.num_parameters():,} parameters), {r.steps} steps of batch {r.batch} on Tiny Shakespeare")
    witness, _ = train(ctx, model, batches_from(train_ids, r, ctx.rng(1)), r, stage="train")
    model.eval()

    # 1. the KV cache: the same tokens, measured faster (8 prompts from the validation text)
    starts = np.linspace(0, len(val_ids) - 2, GEN_STREAMS).astype(np.int64)
    prompt = val_ids[starts][:, None]  # (8, 1): one character each
    with blas_threads(1):
        ctx.progress(stage=f"generating {GEN_TOKENS} tokens x {GEN_STREAMS} without the cache")
        slow, t_slow = _timed_generate(model, prompt, use_cache=False, repeats=1)
        ctx.progress(stage=f"generating {GEN_TOKENS} tokens x {GEN_STREAMS} with the KV cache")
        fast, t_fast = _timed_generate(model, prompt, use_cache=True, repeats=3)
    same = slow.shape == fast.shape == (GEN_STREAMS, GEN_TOKENS) and bool(np.array_equal(slow, fast))
    if not same:
        diff = np.argwhere(slow != fast) if slow.shape == fast.shape else None
        where = f"first difference at position {diff[0][1]}" if diff is not None and len(diff) else \
            f"shapes {slow.shape} and {fast.shape}"
        ctx.note(f"cached and uncached greedy generation differ ({where}): see cached_forward and KVCache "
                 "(module 17)")
    n_tok = GEN_STREAMS * (GEN_TOKENS - 1)
    ctx.log(f"{n_tok:,} tokens: {t_slow:.2f} s without the cache, {t_fast:.2f} s with it "
            f"({t_slow / t_fast:.1f}x); identical tokens: {same}")
    from tinytorch.memoization import generate

    sampled = generate(model, prompt[:1], 200, temperature=0.8, generator=ctx.rng(4), use_cache=True)
    ctx.log("sampled with the cache (temperature 0.8): " + repr(tok.decode(sampled[0].tolist())))

    # 2. INT8 weights: the same validation windows, FP32 against INT8 - on the learner's milestone 05
    #    Shakespeare GPT when they have a recorded run with the same characters, else on this one
    found = _recorded("05", 2, "tito.milestones.m05_transformer:build_gpt")
    if found and found[2].get("chars") == tok.decode(list(range(tok.vocab_size))):
        qmodel, qsource, qblock = found[0], f"your milestone 05 GPT: {found[1]}", found[2]["config"]["block_size"]
    else:
        qmodel, qsource, qblock = model, "the GPT trained above", r.block_size
    qmodel.eval()
    ctx.log(f"INT8 weights on {qsource}")
    rng = ctx.rng(3)
    calib = [train_ids[s:s + qblock][None] for s in rng.integers(0, split - qblock - 1, 8)]
    int8 = quantize_model(qmodel, calib, mode="float")
    quantized = [m for _, m in int8.named_modules() if hasattr(m, "weight_q")]
    n_linear = sum(1 for _, m in qmodel.named_modules() if type(m).__name__ == "Linear")
    int8_stored = len(quantized) == n_linear and all(np.asarray(m.weight_q.data).dtype == np.int8 for m in quantized)
    windows = 40 if ctx.quick else None  # None: every validation character
    ctx.progress(stage="validation loss, FP32 and INT8")
    with blas_threads(None):
        fp32_loss = lm_loss(qmodel, val_ids, qblock, windows=windows, batch=32)
        int8_loss = lm_loss(int8, val_ids, qblock, windows=windows, batch=32)
    bigram = bigram_loss(train_ids, val_ids, tok.vocab_size)
    gap = int8_loss - fp32_loss
    fp32_bytes, int8_bytes = stored_bytes(qmodel), stored_bytes(int8)
    if not gap <= (0.10 if ctx.quick else 0.05):
        ctx.note(f"INT8 weights raise the validation loss by {gap:.4f} nats/char (FP32 {fp32_loss:.4f}, INT8 "
                 f"{int8_loss:.4f}): see quantize, dequantize and quantize_model (module 15)")
    ctx.log(f"validation loss FP32 {fp32_loss:.4f}, INT8 {int8_loss:.4f} (gap {gap:+.4f}; bigram {bigram:.3f}); "
            f"stored {fp32_bytes:,} -> {int8_bytes:,} bytes")

    rows = {"generation": {"streams": GEN_STREAMS, "tokens": GEN_TOKENS, "block_size": r.block_size,
                           "uncached_s": t_slow, "cached_s": t_fast, "speedup": t_slow / t_fast,
                           "uncached_tokens_per_s": n_tok / t_slow, "cached_tokens_per_s": n_tok / t_fast,
                           "tokens_identical": same},
            "quality": {"fp32_val_loss": fp32_loss, "int8_val_loss": int8_loss, "gap": gap, "bigram": bigram,
                        "fp32_bytes": fp32_bytes, "int8_bytes": int8_bytes, "model": qsource,
                        "windows": "all" if windows is None else windows}}
    _lm_report(ctx.path("report.md"), ctx.path("results.json"), rows, system_description())
    metrics = {"kv_speedup": t_slow / t_fast, "tokens_identical": same, "uncached_s": t_slow, "cached_s": t_fast,
               "cached_tokens_per_s": n_tok / t_fast, "fp32_val_loss": fp32_loss, "int8_val_loss": int8_loss,
               "int8_loss_gap": gap, "bigram_val_loss": bigram, "int8_stored": int8_stored,
               "quantized_layers": len(quantized), "size_ratio": fp32_bytes / int8_bytes,
               "int8_model_loaded": qmodel is not model,
               "seconds": time.perf_counter() - started}
    metrics.update(witness.metrics())
    return metrics
