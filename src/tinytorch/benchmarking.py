# %% [markdown]
# # Module 19 - Benchmarking
#
# Modules 14-18 made your models smaller and faster - or so their try-it cells said, each with
# its own timer, its own batch size and its own idea of "accuracy". This module turns those
# claims into a benchmark someone else can trust: a fixed procedure, a fixed quality rule, the
# machine written down, and the numbers saved where anyone can read them.
#
# The procedure is the one the MLPerf Inference benchmark uses, scaled down to a laptop:
# **SingleStream** (one sample per query, the latency distribution over a fixed number of
# queries after warm-up), **Offline** (all samples at once, in large batches: throughput), and a
# **quality target** measured on the data's real test split against the FP32 model: an optimised
# model counts only if it keeps at least 99% of the FP32 accuracy. Milestone 06 benchmarks your
# LeNet-5 and its optimised copy with exactly this harness.
#
# ## What you build
#
# | step | you write | checked by |
# |---|---|---|
# | 1 | `calibration_set(data, n, seed)`: a fixed sample of the TRAINING split | `check("19", "calibration_set")` |
# | 2 | `quality(predict, data)`: accuracy on the TEST split, in batches | `check("19", "quality")` |
# | 3 | `meets_quality(opt_acc, fp32_acc, ratio)`: MLPerf's quality rule | `check("19", "meets_quality")` |
# | 4 | `single_stream(predict, samples, queries, warmup)`: per-query latency percentiles | `check("19", "single_stream")` |
# | 5 | `offline(predict, samples, batch)`: throughput at a large batch | `check("19", "offline")` |
# | 6 | `run_benchmark(name, predict, data, ...)`: all of it for one system under test | `check("19", "run_benchmark")` |
#
# Given: the `Splits` container, `predictor(model)`, `system_description()`, the result
# dataclasses and `write_report(results, folder)` (results.json + report.md). The timing checks
# drive your code with a fake clock, so every expected number below is computed by hand.

# %%
"""Module 19: an MLPerf-inference-style benchmark harness.

    Splits(x_train, y_train, x_test, y_test)   a data set's OWN splits and labels
    predictor(model) -> predict(x: ndarray) -> ndarray   eval mode, no_grad, logits as an array
    calibration_set(data, n=256, seed=0) -> ndarray      n distinct TRAINING rows, reproducible
    quality(predict, data, batch=256) -> float           accuracy on the TEST split
    meets_quality(opt_acc, fp32_acc, ratio=0.99) -> bool opt_acc >= ratio * fp32_acc
    single_stream(predict, samples, queries=200, warmup=20) -> LatencyStats (module 14)
        query i sends samples[i % n : i % n + 1]; each query timed on its own; p50/p90/p99 with
        module 14's percentile over the `queries` latencies (warm-up queries not counted)
    offline(predict, samples, batch=256, warmup=1) -> OfflineResult(samples, batch, seconds, throughput)
        every sample once, in batches; throughput = samples / seconds of the whole pass
    run_benchmark(name, predict, data, ...) -> BenchmarkResult     quality + both scenarios
    system_description() -> dict                         CPU, cores, Python, NumPy, BLAS, threads
    write_report(results, folder) -> (results.json, report.md)

Every timing function takes `timer` (seconds, default time.perf_counter) so that checks can drive
it with a fake clock.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from tinytorch.profiling import LatencyStats, percentile
from tinytorch.tensor import Tensor, no_grad

# %% [markdown]
# ## What a benchmark is, and what MLPerf adds
#
# A benchmark answers "how fast, at what quality, on what machine?" - all three, or it answers
# nothing. The classic ways to get it wrong are each an honest mistake:
#
# - **Timing one call.** The first call of anything pays one-time costs (memory pages faulted
#   in, caches filled, BLAS threads woken). One number is one sample of a noisy distribution.
# - **Reporting the mean.** Latency distributions have long right tails: a garbage collection, a
#   page fault, another process on the core. A service is judged by its slow requests - the
#   90th or 99th percentile - and the mean hides them.
# - **Measuring quality on the wrong data.** Accuracy on training data says how well the model
#   memorised, not how well it works; accuracy on random labels (which one well-known course's
#   benchmark uses) says nothing at all - every model scores 1/classes.
# - **Comparing at different settings.** The optimised model at batch 256 against the baseline
#   at batch 1 is not a speedup.
# - **Not saying what machine.** 2 cores or 64, OpenBLAS or MKL, 1 thread or 16: the same code
#   differs by 10x between them.
#
# MLPerf Inference (since 2019) fixes these with rules. A *system under test* answers *queries*
# issued by a load generator in a fixed *scenario*: **SingleStream** sends one sample, waits for
# the answer, sends the next (a phone classifying one photo at a time; the metric is the 90th
# percentile latency), **Offline** hands over all samples at once (a batch job; the metric is
# samples per second). The model must reach a **quality target** on the real validation data - for
# most image models 99% of the FP32 reference accuracy - or the result is not valid, however fast.
# Any quantisation must be calibrated on a fixed, published calibration set drawn from the
# training data. And every result comes with the system's description. Our harness keeps all of
# this and drops what a laptop cannot give (minimum run times of minutes, audits, the Server and
# MultiStream scenarios). Its results are MLPerf-*style*: the report says plainly that they are
# not official MLPerf results.

# %% [markdown]
# ## The data: a data set's own splits (given)
#
# Everything here takes a `Splits` object: the training inputs and labels and the test inputs
# and labels of ONE data set, as that data set defines them (MNIST's 60,000 / 10,000, or the
# lesson's synthetic clusters, where each label is the cluster the point was drawn from). Passing
# the splits together, instead of loose arrays, is what lets each function take the split it
# must: calibration from `x_train`, quality and queries from `x_test`. A function that reaches for
# the other split is a bug the checks catch.
#
# `predictor(model)` adapts a model to the harness: it puts the model in eval mode (Dropout off)
# and returns `predict(x)`, which runs a NumPy batch through the model under `no_grad()` and
# returns the logits as a NumPy array. The harness only ever sees `predict`, so anything that maps
# a batch to scores can be benchmarked - a hand-fused NumPy forward, a quantized model, a PyTorch
# model.

# %%
@dataclass(frozen=True)
class Splits:
    """The training and test splits of one data set, with the data set's own labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str = "data"

    def __post_init__(self):
        for x, y, split in ((self.x_train, self.y_train, "train"), (self.x_test, self.y_test, "test")):
            if len(x) != len(y) or len(x) == 0:
                raise ValueError(f"Splits: the {split} split has {len(x)} inputs and {len(y)} labels")
            if not np.issubdtype(np.asarray(y).dtype, np.integer):
                raise ValueError(f"Splits: {split} labels must be integer class ids, got {np.asarray(y).dtype}")


def predictor(model) -> Callable[[np.ndarray], np.ndarray]:
    """predict(x) for the harness: model in eval mode, no_grad, a float32 batch in, logits out."""
    model.eval()

    def predict(x: np.ndarray) -> np.ndarray:
        with no_grad():
            return model(Tensor(np.asarray(x, dtype=np.float32))).data

    return predict


def _scores(out) -> np.ndarray:
    return np.asarray(out.data if isinstance(out, Tensor) else out)


# %% [markdown]
# ## Step 1: a fixed calibration set, from the training split
#
# Post-training quantisation (module 15) chooses each layer's input range from the activations
# of a *calibration set*. Two rules make a quantised result trustworthy:
#
# 1. **Calibrate on training data, never on test data.** The test split is the exam; calibrating
#    on it tunes the ranges to exactly the inputs the model is then graded on - a small leak, but
#    a leak: the quality number stops being an honest estimate.
# 2. **Make the set fixed.** The same seed must give the same rows on every run, on every machine,
#    whatever else drew random numbers before. MLPerf publishes its calibration sets as lists of
#    image ids for exactly this reason. NumPy's `np.random.default_rng(seed)` is a generator of
#    your own: it does not read or change the global `np.random` state, so `np.random.seed(...)`
#    elsewhere cannot move your calibration set.
#
# Draw `n` *distinct* rows (sampling without replacement - a duplicate row is a wasted slot), and
# return them in increasing index order, so the set reads the same whichever order the generator
# produced. Worked example: 1,000 training rows, `n = 4`, seed 0 - the generator picks 4 distinct
# indices, say 637, 269, 40, 813; you return `x_train[[40, 269, 637, 813]]`. Cost: one small
# integer draw and a gather of $n \cdot d$ numbers - 256 MNIST images are 800 KB.
#
# **What to write.** `calibration_set(data, n=256, seed=0)`: the rows of `data.x_train` at `n`
# distinct indices chosen by `np.random.default_rng(seed)`, sorted.

# %% nbgrader={"grade": false, "grade_id": "calibration-set", "locked": false, "schema_version": 3, "solution": true, "task": false}
def calibration_set(data: Splits, n: int = 256, seed: int = 0) -> np.ndarray:
    """n distinct rows of the TRAINING split, chosen reproducibly by `seed`, in index order."""
    if not 1 <= n <= len(data.x_train):
        raise ValueError(f"calibration_set: n must be in [1, {len(data.x_train)}] (the training rows), got {n}")
    # HINT: rng = np.random.default_rng(seed); rng.choice(len(data.x_train), size=n, replace=False);
    # HINT: sort the indices, return data.x_train at them (a copy)
    ### BEGIN SOLUTION
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(data.x_train), size=n, replace=False))
    return np.asarray(data.x_train)[idx]
    ### END SOLUTION


# %%
if __name__ == "__main__":
    demo = Splits(np.arange(20, dtype=np.float32).reshape(10, 2), np.arange(10) % 2,
                  -np.ones((4, 2), np.float32), np.zeros(4, np.int64), "demo")
    print("seed 0:", calibration_set(demo, 3, seed=0).tolist())
    np.random.seed(123)  # the global state does not move a fixed calibration set
    print("seed 0:", calibration_set(demo, 3, seed=0).tolist(), " (again)")
    print("seed 1:", calibration_set(demo, 3, seed=1).tolist())

# %% nbgrader={"grade": true, "grade_id": "check-calibration-set", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("19", "calibration_set")

# %% [markdown]
# ## Step 2: quality, on the test split
#
# The quality of a classifier is its accuracy on data it never trained on:
#
# $$\text{accuracy} = \frac{1}{N_{test}} \sum_{i=1}^{N_{test}} [\arg\max_c \, f(x_i)_c = y_i]$$
#
# with the test split's *own* labels $y_i$. Two things are easy to get wrong. The split: a model
# with 99% training accuracy can have 90% test accuracy (it memorised), and the optimised model is
# judged against the FP32 model on the same test rows - so both numbers must come from
# `data.x_test`, `data.y_test`. And memory: the whole test set in one forward pass is fine for
# 10,000 MNIST images through an MLP (31 MB of input), but not for a large model, whose
# activations for every row at once exceed memory. So go in batches of `batch` rows: the last
# batch is whatever is left, and every test row is predicted exactly once.
#
# Worked example: 5 test rows, batch 2: `predict` sees rows 0-1, 2-3 and 4; if the predicted
# classes are `[1, 0, 0, 1, 1]` and the labels `[1, 0, 1, 1, 0]`, three are right: accuracy 0.6.
#
# **What to write.** `quality(predict, data, batch=256)`: the accuracy on the test split, as a
# Python float. `predict` returns scores of shape (rows, classes); `_scores(out)` turns a Tensor or
# an array into an array.

# %% nbgrader={"grade": false, "grade_id": "quality", "locked": false, "schema_version": 3, "solution": true, "task": false}
def quality(predict: Callable, data: Splits, batch: int = 256) -> float:
    """Accuracy of predict on the TEST split of `data`, in batches of at most `batch` rows."""
    if batch < 1:
        raise ValueError(f"quality: batch must be >= 1, got {batch}")
    # HINT: loop start = 0, batch, 2*batch, ... over data.x_test; count argmax(_scores(predict(rows)), axis=1)
    # HINT: == data.y_test[start:start + batch]; return correct / len(data.x_test) as a float
    ### BEGIN SOLUTION
    x, y = data.x_test, np.asarray(data.y_test)
    correct = 0
    for start in range(0, len(x), batch):
        pred = _scores(predict(x[start:start + batch])).argmax(axis=1)
        correct += int((pred == y[start:start + batch]).sum())
    return correct / len(x)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    # the "model": class 1 when the first feature is larger than the second
    two_feature = lambda x: x  # noqa: E731  (the scores are the features themselves)
    toy = Splits(np.array([[0, 1], [1, 0], [2, 0]], np.float32), np.array([1, 0, 0]),
                 np.array([[0, 1], [1, 0], [1, 0], [0, 1], [0, 1]], np.float32), np.array([1, 0, 1, 1, 0]), "toy")
    print(f"test accuracy {quality(two_feature, toy, batch=2):.2f} (3 of 5 right; the training rows "
          "would have scored 1.00)")

# %% nbgrader={"grade": true, "grade_id": "check-quality", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("19", "quality")

# %% [markdown]
# ## Step 3: MLPerf's quality rule
#
# An optimised model is a valid result only if its accuracy is at least a fixed fraction of the
# FP32 reference accuracy, measured on the same test set:
#
# $$\text{acc}_{opt} \;\ge\; r \cdot \text{acc}_{fp32}, \qquad r = 0.99 \text{ (MLPerf's ResNet-50 target; BERT also has a 99.9\% one)}$$
#
# Worked example: the FP32 LeNet-5 scores 0.9900 on MNIST's test set; the target is
# $0.99 \times 0.99 = 0.9801$. An INT8 copy at 0.9850 passes; a 90%-pruned copy at 0.9790 fails,
# however fast it is. The rule is relative, not "within one point", so a target scales with
# the task: a model at 76.46% top-1 on ImageNet (MLPerf's ResNet-50) must stay above 75.70%. It is
# a "greater or equal": a model exactly at the target passes. `ratio` must be in (0, 1].
#
# **What to write.** `meets_quality(opt_acc, fp32_acc, ratio=0.99)` -> bool.

# %% nbgrader={"grade": false, "grade_id": "meets-quality", "locked": false, "schema_version": 3, "solution": true, "task": false}
def meets_quality(opt_acc: float, fp32_acc: float, ratio: float = 0.99) -> bool:
    """MLPerf's quality rule: the optimised accuracy is at least `ratio` times the FP32 accuracy."""
    if not 0 < ratio <= 1:
        raise ValueError(f"meets_quality: ratio must be in (0, 1], got {ratio}")
    # HINT: one comparison, >= (a result exactly at the target passes); return a Python bool
    ### BEGIN SOLUTION
    return bool(opt_acc >= ratio * fp32_acc)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    for opt in (0.9850, 0.9801, 0.9790):
        print(f"fp32 0.9900, optimised {opt:.4f}: target {0.99 * 0.99:.4f} -> meets it: {meets_quality(opt, 0.99)}")

# %% nbgrader={"grade": true, "grade_id": "check-meets-quality", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("19", "meets_quality")

# %% [markdown]
# ## Step 4: the SingleStream scenario
#
# SingleStream models one user: a query carries ONE sample, and the next query is sent when the
# answer comes back. The load generator issues a fixed number of queries and records each one's
# latency; the metric is the 90th percentile (MLPerf reports p50, p90 and p99 too). Here:
#
# 1. **Warm-up**: `warmup` queries, not recorded (module 14 explained why: first calls pay
#    one-time costs a long-running service never pays again).
# 2. **Queries**: for $i = 0, \dots, \text{queries} - 1$, send sample $i \bmod n$ of the `n` samples -
#    as a batch of one, `samples[j:j + 1]` (shape `(1, ...)`, which is what a model expects) -
#    reading `timer()` just before and just after the call. The samples cycle in order, so the
#    same queries are sent on every run.
# 3. **Statistics** over the `queries` latencies, in milliseconds: p50, p90, p99 with YOUR
#    `percentile` from module 14, the mean and the minimum - returned as module 14's
#    `LatencyStats`, with the latencies in query order.
#
# Worked example (the check's fixture): 10 queries take 3, 1, 4, 1, 5, 9, 2, 6, 5, 3 ms. Sorted:
# 1, 1, 2, 3, 3, 4, 5, 5, 6, 9. The p90 sits at rank $0.9 \times 9 = 8.1$: $6 + 0.1 \times (9 - 6) =
# 6.3$ ms; p50 at rank 4.5: $3 + 0.5 \times 1 = 3.5$ ms; p99 at rank 8.91: $6 + 0.91 \times 3 = 8.73$
# ms. The mean is 3.9 ms. A harness that times the whole loop and divides by 10 knows only the
# mean: its "p90" would be 3.9 ms, and the one-in-ten slow query - the 6-9 ms a user actually
# waits - vanishes. Every percentile must come from the individual latencies.
#
# How many queries? The p99 of 100 queries rests on the single slowest one or two: it is as noisy
# as the machine. MLPerf requires at least 1,024 queries and 60 seconds; a lesson uses a few
# hundred and says so. Memory is one float per query.
#
# **What to write.** `single_stream(predict, samples, queries=200, warmup=20, timer=time.perf_counter)`.

# %% nbgrader={"grade": false, "grade_id": "single-stream", "locked": false, "schema_version": 3, "solution": true, "task": false}
def single_stream(predict: Callable, samples: np.ndarray, queries: int = 200, warmup: int = 20,
                  timer: Callable[[], float] = time.perf_counter) -> LatencyStats:
    """SingleStream: `warmup` untimed queries, then `queries` timed ones; query i sends the one
    sample samples[i % n : i % n + 1]. Latencies in ms, percentiles with module 14's percentile."""
    n = len(samples)
    if queries < 1 or warmup < 0 or n == 0:
        raise ValueError(f"single_stream: need queries >= 1, warmup >= 0 and samples, got {queries}, {warmup}, {n}")
    # HINT: warm-up: predict(samples[i % n : i % n + 1]) untimed; then for each query read timer()
    # HINT: just before and after ONE call; times in ms (float64); LatencyStats(times, mean, p50, p90, p99, min)
    ### BEGIN SOLUTION
    for i in range(warmup):
        predict(samples[i % n:i % n + 1])
    times = np.empty(queries, dtype=np.float64)
    for i in range(queries):
        one = samples[i % n:i % n + 1]
        start = timer()
        predict(one)
        times[i] = (timer() - start) * 1e3
    return LatencyStats(times, float(times.mean()), percentile(times, 50), percentile(times, 90),
                        percentile(times, 99), float(times.min()))
    ### END SOLUTION


# %%
if __name__ == "__main__":
    class FakeClock:
        """time.perf_counter stand-in: each call of `work` advances the clock by the next duration."""

        def __init__(self, durations_ms):
            self.now, self.durations = 0.0, list(durations_ms)

        def __call__(self):
            return self.now

        def work(self, x):
            self.now += self.durations.pop(0) / 1e3

    clock = FakeClock([50, 50] + [3, 1, 4, 1, 5, 9, 2, 6, 5, 3])  # two slow warm-up queries, then ten
    stats = single_stream(clock.work, np.zeros((4, 8), np.float32), queries=10, warmup=2, timer=clock)
    print(stats)  # p50 3.500, p90 6.300, p99 8.730, mean 3.900

# %% nbgrader={"grade": true, "grade_id": "check-single-stream", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("19", "single_stream")

# %% [markdown]
# ## Step 5: the Offline scenario
#
# Offline models a batch job: all samples are available at once and only the total time counts.
# The system may batch as it likes; the metric is throughput,
#
# $$\text{throughput} = \frac{\text{samples processed}}{\text{wall-clock seconds for all of them}}.$$
#
# Our harness sends every sample exactly once, in consecutive batches of `batch` rows (the last one
# shorter), after `warmup` untimed calls on the first batch, and times the whole pass with one
# clock reading before and one after. Worked example (the check's fixture): 10 samples, batch 4,
# and a model that costs 1 ms per call plus 0.5 ms per row. The pass makes calls of 4, 4 and 2
# rows: 3 + 3 + 2 = 8 ms, so the throughput is $10 / 0.008 = 1{,}250$ samples/s. Note what the
# per-call millisecond does: at batch 1 the same 10 samples would cost $10 \times 1.5 = 15$ ms, 667
# samples/s. Large batches amortise per-call overhead and let BLAS run long, efficient matrix
# multiplies - which is why throughput and latency are different scenarios, and why an optimisation
# can help one and not the other. The memory bound is the activations of one batch: the batch size
# is the largest that fits, not "as large as possible".
#
# A result is `OfflineResult(samples, batch, seconds, throughput)`.
#
# **What to write.** `offline(predict, samples, batch=256, warmup=1, timer=time.perf_counter)`.

# %%
@dataclass
class OfflineResult:
    """The Offline scenario: every sample once, in batches of `batch`; throughput in samples/s."""

    samples: int
    batch: int
    seconds: float
    throughput: float

    def __str__(self) -> str:
        return f"{self.throughput:,.0f} samples/s ({self.samples} samples, batch {self.batch}, {self.seconds * 1e3:.2f} ms)"


# %% [markdown]
# Now the scenario itself: the warm-up calls on the first batch, then one timed pass over all the
# samples.

# %% nbgrader={"grade": false, "grade_id": "offline", "locked": false, "schema_version": 3, "solution": true, "task": false}
def offline(predict: Callable, samples: np.ndarray, batch: int = 256, warmup: int = 1,
            timer: Callable[[], float] = time.perf_counter) -> OfflineResult:
    """Offline: `warmup` untimed calls on the first batch, then ONE timed pass over all samples in
    consecutive batches of `batch` rows; throughput = samples / seconds of the pass."""
    n = len(samples)
    if batch < 1 or warmup < 0 or n == 0:
        raise ValueError(f"offline: need batch >= 1, warmup >= 0 and samples, got {batch}, {warmup}, {n}")
    # HINT: warm-up predict(samples[:batch]); start = timer(); predict each samples[s:s + batch];
    # HINT: seconds = timer() - start; OfflineResult(n, batch, seconds, n / seconds)
    ### BEGIN SOLUTION
    for _ in range(warmup):
        predict(samples[:batch])
    start = timer()
    for s in range(0, n, batch):
        predict(samples[s:s + batch])
    seconds = timer() - start
    return OfflineResult(n, batch, float(seconds), n / seconds)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    class CostClock:
        """A model that costs 1 ms per call plus 0.5 ms per row, on a fake clock."""

        def __init__(self):
            self.now = 0.0

        def __call__(self):
            return self.now

        def work(self, x):
            self.now += (1.0 + 0.5 * len(x)) / 1e3

    cost = CostClock()
    print("batch 4:", offline(cost.work, np.zeros((10, 8), np.float32), batch=4, timer=cost))  # 1,250 samples/s
    print("batch 1:", offline(cost.work, np.zeros((10, 8), np.float32), batch=1, timer=cost))  # 667 samples/s

# %% nbgrader={"grade": true, "grade_id": "check-offline", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("19", "offline")

# %% [markdown]
# ## Step 6: one system under test, benchmarked
#
# `run_benchmark(name, predict, data, ...)` runs the whole procedure for one *system under test* (a
# model and the code that runs it) and returns a `BenchmarkResult`:
#
# 1. its quality - `quality(predict, data)`, the test split's accuracy;
# 2. SingleStream over the **test** inputs, `queries` queries after `warmup`;
# 3. Offline over the **test** inputs at `batch`;
# 4. the quality target: with a `reference` (the FP32 model's `BenchmarkResult`), the reference
#    accuracy and `meets_quality(accuracy, reference.accuracy, ratio)`; without one, this IS the
#    reference: its own accuracy, and it meets its own target.
#
# The queries come from the test split for the same reason the quality does: they are the inputs
# the benchmark is about, and the same for every system under test. Pass `size_bytes` (module
# 15's `model_size_bytes`) to record the stored size too. The result dataclass is given.

# %%
@dataclass
class BenchmarkResult:
    """One system under test: quality on the test split, both scenarios, the quality target."""

    name: str
    accuracy: float  # on the test split
    reference_accuracy: float  # the FP32 reference's accuracy (its own, for the reference)
    ratio: float  # the quality target is ratio * reference_accuracy
    meets_quality: bool
    single_stream: LatencyStats
    offline: OfflineResult
    test_samples: int
    size_bytes: int | None = None
    notes: dict = field(default_factory=dict)

    @property
    def quality_target(self) -> float:
        return self.ratio * self.reference_accuracy

    def to_dict(self) -> dict:
        ss = self.single_stream
        return {
            "name": self.name,
            "quality": {"metric": "top-1 accuracy", "split": "test", "samples": self.test_samples,
                        "accuracy": self.accuracy, "reference_accuracy": self.reference_accuracy,
                        "ratio": self.ratio, "target": self.quality_target, "meets_target": self.meets_quality},
            "SingleStream": {"queries": len(ss.times_ms), "p50_ms": ss.p50, "p90_ms": ss.p90, "p99_ms": ss.p99,
                             "mean_ms": ss.mean, "min_ms": ss.min,
                             "latencies_ms": [float(t) for t in ss.times_ms]},
            "Offline": {"samples": self.offline.samples, "batch": self.offline.batch,
                        "seconds": self.offline.seconds, "samples_per_s": self.offline.throughput},
            "size_bytes": self.size_bytes,
            "notes": dict(self.notes),
        }


# %% [markdown]
# **What to write.** `run_benchmark(...)`: steps 1-4 above, with the `timer` passed on to both
# scenarios.

# %% nbgrader={"grade": false, "grade_id": "run-benchmark", "locked": false, "schema_version": 3, "solution": true, "task": false}
def run_benchmark(name: str, predict: Callable, data: Splits, queries: int = 200, warmup: int = 20,
              batch: int = 256, reference: BenchmarkResult | None = None, ratio: float = 0.99,
              size_bytes: int | None = None, timer: Callable[[], float] = time.perf_counter) -> BenchmarkResult:
    """Quality on the test split, SingleStream and Offline on the test inputs, and MLPerf's quality
    rule against `reference` (the FP32 result; None: this is the reference)."""
    # HINT: acc = quality(predict, data, batch); ss = single_stream(predict, data.x_test, queries, warmup,
    # HINT: timer=timer); off = offline(predict, data.x_test, batch, timer=timer); ref = reference.accuracy
    # HINT: or acc; BenchmarkResult(name, acc, ref, ratio, meets_quality(acc, ref, ratio), ss, off, len(data.x_test), size_bytes)
    ### BEGIN SOLUTION
    acc = quality(predict, data, batch)
    ss = single_stream(predict, data.x_test, queries=queries, warmup=warmup, timer=timer)
    off = offline(predict, data.x_test, batch=batch, timer=timer)
    ref = acc if reference is None else reference.accuracy
    return BenchmarkResult(name, acc, ref, ratio, meets_quality(acc, ref, ratio), ss, off,
                           len(data.x_test), size_bytes)
    ### END SOLUTION


# %%
if __name__ == "__main__":
    r = run_benchmark("toy", two_feature, toy, queries=50, warmup=5, batch=2)
    print(f"{r.name}: accuracy {r.accuracy:.2f} (target {r.quality_target:.2f}, met: {r.meets_quality})")
    print("SingleStream:", r.single_stream)
    print("Offline:     ", r.offline)

# %% nbgrader={"grade": true, "grade_id": "check-run-benchmark", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("19", "run_benchmark")


# %% [markdown]
# ## The system, described (given)
#
# A latency means nothing without the machine. `system_description()` records what decides this
# code's speed: the CPU model, the logical cores and the cores this process may use (a container
# or `taskset` often gives fewer than the machine has), Python and NumPy versions, the BLAS NumPy
# was built against (OpenBLAS, MKL, Accelerate: a factor of several in matrix-multiply speed), and
# the thread settings (`OPENBLAS_NUM_THREADS`, `OMP_NUM_THREADS`, `MKL_NUM_THREADS`: unset means
# "one per core"). It reads, it never changes anything.

# %%
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _blas() -> str:
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{deps.get('name', '?')} {deps.get('version', '')}".strip()
    except Exception:  # NumPy < 1.25 has no mode="dicts"
        return "unknown"


def system_description() -> dict:
    """The machine and the software stack the numbers were measured on."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    threads = {v: os.environ.get(v, "unset") for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    return {"cpu": _cpu_model(), "machine": platform.machine(), "logical_cores": os.cpu_count() or 1,
            "usable_cores": usable, "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "numpy": np.__version__, "blas": _blas(), "threads": threads}


# %% [markdown]
# ## The report (given)
#
# `write_report(results, folder)` writes two files. `results.json` holds everything - the system,
# every result with its per-query latencies (milestone 06 draws its latency histograms from them) -
# for a program to read. `report.md` is the table a person reads, in MLPerf's vocabulary: the
# system under test, the scenario, the quality target and whether it was met, the measured latency
# and throughput, and the system description - and it says that these are not official MLPerf
# results (those need MLPerf's LoadGen, its rules and an audit).

# %%
NOTE = ("These are MLPerf-style measurements made with TinyTorch's harness, not official MLPerf results: "
        "no LoadGen, short runs, no audit.")


def _row(r: BenchmarkResult) -> str:
    ss, off = r.single_stream, r.offline
    size = "" if r.size_bytes is None else f"{r.size_bytes:,}"
    return (f"| {r.name} | {r.accuracy:.4f} | {r.quality_target:.4f} ({r.ratio:.1%} of {r.reference_accuracy:.4f}) "
            f"| {'yes' if r.meets_quality else 'NO'} | {ss.p50:.3f} | {ss.p90:.3f} | {ss.p99:.3f} "
            f"| {off.throughput:,.0f} (batch {off.batch}) | {size} |")


def report_markdown(results: list[BenchmarkResult], system: dict, title: str = "Benchmark report") -> str:
    lines = [f"# {title}", "", f"> {NOTE}", "",
             "Scenarios: **SingleStream** (one sample per query; latency percentiles over "
             f"{len(results[0].single_stream.times_ms) if results else 0} queries after warm-up) and **Offline** "
             "(every test sample once, in batches; throughput). Quality: top-1 accuracy on the test split "
             f"({results[0].test_samples if results else 0} samples), target = ratio x the FP32 reference's accuracy.", "",
             "| system under test | accuracy (test) | quality target | meets target | SingleStream p50 ms "
             "| p90 ms | p99 ms | Offline samples/s | stored bytes |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [_row(r) for r in results]
    lines += ["", "## System", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {', '.join(f'{a}={b}' for a, b in v.items()) if isinstance(v, dict) else v} |"
              for k, v in system.items()]
    return "\n".join(lines) + "\n"


def write_report(results: list[BenchmarkResult], folder, system: dict | None = None,
                 title: str = "Benchmark report") -> tuple[Path, Path]:
    """results.json and report.md in `folder` (created); returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    system = system_description() if system is None else system
    payload = {"title": title, "note": NOTE, "system": system, "results": [r.to_dict() for r in results]}
    json_path, md_path = folder / "results.json", folder / "report.md"
    json_path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(report_markdown(results, system, title), encoding="utf-8")
    return json_path, md_path


# %% [markdown]
# ## Try it: FP32 against INT8, the MLPerf way
#
# The cell below trains a small MLP ($32 \to 128 \to 64 \to 10$) on ten Gaussian clusters -
# synthetic data whose labels are real: each point's label is the cluster it was drawn from, and
# the test split is drawn separately from the same clusters. It then quantizes a copy with module
# 15's `quantize_model`, calibrated on `calibration_set(data, 256)` from the training split, and
# benchmarks three systems under test with the same settings: the FP32 model, the INT8 model on
# the float-BLAS route, and the INT8 model on the integer route. It runs in a few seconds.
#
# What to expect: INT8 meets the 99% target with a stored size about 3.4 times smaller. Offline, the
# float route is about as fast as FP32 (it runs the same BLAS matrix multiplies on dequantised
# weights) and the integer route several times slower (NumPy has no int8 matrix kernel - module
# 15). At batch 1 (SingleStream) both INT8 routes are slower than FP32 - the next section
# measures why. Measured here: FP32 0.9175 test accuracy, INT8 0.9170; Offline about 60,000,
# 57,000 and 6,000 samples/s; SingleStream p50 about 32, 84 and 171 us. The report prints at the end.

# %%
if __name__ == "__main__":
    import tempfile

    from tinytorch.activations import ReLU
    from tinytorch.layers import Linear, Sequential
    from tinytorch.losses import CrossEntropyLoss
    from tinytorch.optimizers import Adam
    from tinytorch.quantization import model_size_bytes, quantize_model, set_mode
    from tinytorch.tensor import manual_seed

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((10, 32)).astype(np.float32) * 0.6  # overlapping clusters

    def draw(n, seed):
        g = np.random.default_rng(seed)
        y = g.integers(0, 10, n)  # which cluster each point comes from: its label
        return centres[y] + g.standard_normal((n, 32)).astype(np.float32), y

    blobs = Splits(*draw(4000, 1), *draw(2000, 2), name="10 Gaussian clusters, 32-d")
    manual_seed(0)
    fp32 = Sequential(Linear(32, 128), ReLU(), Linear(128, 64), ReLU(), Linear(64, 10))
    opt, loss_fn = Adam(fp32.parameters(), lr=3e-3), CrossEntropyLoss()
    for step in range(200):
        idx = rng.integers(0, len(blobs.x_train), 128)
        loss = loss_fn(fp32(Tensor(blobs.x_train[idx])), Tensor(blobs.y_train[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()

    calib = calibration_set(blobs, 256, seed=0)
    int8 = quantize_model(fp32, [calib])  # one calibration batch of 256 training rows
    int8_float = set_mode(quantize_model(fp32, [calib]), "float")
    settings = dict(queries=300, warmup=30, batch=500)
    base = run_benchmark("fp32", predictor(fp32), blobs, size_bytes=model_size_bytes(fp32), **settings)
    results = [base,
               run_benchmark("int8 (float route)", predictor(int8_float), blobs, reference=base,
                         size_bytes=model_size_bytes(int8_float), **settings),
               run_benchmark("int8 (integer route)", predictor(int8), blobs, reference=base,
                         size_bytes=model_size_bytes(int8), **settings)]
    with tempfile.TemporaryDirectory() as tmp:
        json_path, md_path = write_report(results, tmp, title="MLP on Gaussian clusters: FP32 vs INT8")
        print(md_path.read_text(encoding="utf-8"))
        print("results.json holds", len(json.loads(json_path.read_text())["results"][0]["SingleStream"]["latencies_ms"]),
              "latencies per system")

# %% [markdown]
# ## What batch-1 latency on a CPU is made of
#
# Look at the SingleStream column: a query of ONE sample through this MLP takes a few tens of
# microseconds. Its arithmetic is $2 \times (32 \cdot 128 + 128 \cdot 64 + 64 \cdot 10) + 202
# \approx 26{,}000$ FLOPs (module 14's `flops` counts them) - at even 10 GFLOP/s that is under 3
# microseconds. The rest is **per-call overhead**: every layer's Python `forward`, a `Tensor`
# object created per op, NumPy's dispatch of each small call (a few microseconds each, whatever
# the size), `no_grad` bookkeeping. The cell below measures it: the p50 latency of one forward at
# batch 1, 2, 4, ... 64, and a straight-line fit $t(b) = t_0 + b \cdot t_{row}$. The intercept
# $t_0$ - the cost of a call that carries no work - is nearly all of the batch-1 latency; each extra
# row adds well under a microsecond. A hand-written NumPy forward of the same weights (three
# matmuls, no Tensor, no modules) shows how much of $t_0$ is the framework's and how much is
# NumPy's own per-call cost.
#
# Measured here (a shared 2-core Xeon, one BLAS thread): batch 1 at about 20-33 us p50, an
# intercept of about 31 us against 0.4 us per extra row - the overhead was over 90% of the batch-1
# latency - and the hand-written NumPy forward at about 16 us: even without any framework, six
# small NumPy calls cost more than their arithmetic. (Rerun the cell: on a shared machine the
# numbers move by tens of percent; the proportions do not.)
#
# So, plainly: **at batch 1 on a CPU, latency is per-call overhead, not arithmetic.** An
# optimisation that cuts FLOPs (pruning, INT8) barely moves it - the INT8 models above are even
# *slower* at batch 1, because each quantized layer adds calls (quantise the input, dequantise,
# check) - while one that cuts calls and Python objects (fusing layers, fewer ops: module 18) does.
# At large batch (Offline) the picture flips: the arithmetic dominates, and FLOPs and memory
# traffic are what count. Milestone 06 shows the same on LeNet-5: about 260 us at batch 1 through
# the framework, about 170 us for a hand-fused forward of the same weights.

# %%
if __name__ == "__main__":
    from tinytorch.profiling import flops, measure_latency

    predict = predictor(fp32)
    print(f"one sample through the MLP: {flops(fp32, (1, 32)):,} FLOPs")
    sizes = [1, 2, 4, 8, 16, 32, 64]
    p50 = [single_stream(lambda x: predict(np.repeat(x, b, axis=0)), blobs.x_test, queries=500, warmup=50).p50
           for b in sizes]
    slope, intercept = np.polyfit(sizes, p50, 1)
    print("batch   p50 latency (us)")
    for b, t in zip(sizes, p50):
        print(f"{b:5d}   {t * 1e3:8.1f}")
    print(f"fit: t(b) = {intercept * 1e3:.1f} us + b x {slope * 1e3:.2f} us/row: the per-call overhead is "
          f"{intercept / p50[0]:.0%} of the batch-1 latency")
    w = [(layer.weight.data.T.copy(), layer.bias.data) for layer in fp32 if isinstance(layer, Linear)]

    def fused(x):
        h = np.maximum(x @ w[0][0] + w[0][1], 0)
        h = np.maximum(h @ w[1][0] + w[1][1], 0)
        return h @ w[2][0] + w[2][1]

    x1 = blobs.x_test[:1]
    print("batch 1, framework forward: ", measure_latency(lambda: predict(x1), warmup=50, repeats=500))
    print("batch 1, hand-written NumPy:", measure_latency(lambda: fused(x1), warmup=50, repeats=500))

# %% [markdown]
# ## Wrap-up
#
# You built a benchmark harness with MLPerf's discipline: a fixed calibration set drawn
# reproducibly from the training split; quality measured on the data's own test labels, in
# batches; MLPerf's relative quality rule; the SingleStream scenario, whose percentiles come from
# each query's own latency; the Offline scenario, whose throughput is samples over the wall time of
# the whole pass; and one function that runs all of it for a system under test, with the system
# described and the results written for people and for programs.
#
# The lessons to keep:
#
# - **A speed number without a quality number is not a result**, and quality is measured on test
#   data with real labels - never on the training split, never on random labels.
# - **Report percentiles, computed from individual latencies.** The mean of a long-tailed
#   distribution hides exactly the slow queries a user notices.
# - **Latency and throughput are different questions.** Batch 1 on a CPU is per-call overhead;
#   large batches are arithmetic and memory. An optimisation must be judged in the scenario it is
#   for.
# - **Fix everything that can move a number**: warm-up, query count, batch size, calibration set,
#   thread settings - and write them down with the machine.
# - **What breaks at scale**: short runs on a shared machine are noisy (repeat them; MLPerf's
#   minimum is 60 s per run); p99 needs thousands of queries to mean anything; a server's latency
#   under load (MLPerf's Server scenario, queries arriving at random times) includes queueing,
#   which SingleStream never sees.
#
# Milestone 06 uses this harness on your LeNet-5 and its quantized, pruned, accelerated copy, and
# on your GPT's KV-cache generation.

# %% nbgrader={"grade": true, "grade_id": "check-benchmarking", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check

    check("19")
