"""Checks for module 19: the MLPerf-style harness - calibration set, quality, the quality rule,
SingleStream, Offline, one benchmark run, the system description and the report.

Every timing check drives the code with a fake clock (a model that advances it by a known number
of milliseconds per call), so the expected percentiles and throughputs are computed by hand in
the comments, exactly. The data are tiny hand-written splits whose training and test rows can be
told apart by their values, so a function that reads the wrong split is caught - and named - by
what `predict` was shown. Labels are always the fixtures' own, never random.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinytorch.benchmarking import (BenchmarkResult, OfflineResult, Splits, calibration_set, meets_quality,
                                    offline, predictor, quality, run_benchmark, single_stream,
                                    system_description, write_report)
from tinytorch.layers import Dropout, Linear, Sequential
from tinytorch.profiling import LatencyStats
from tinytorch.tensor import Tensor, manual_seed
from tito.checks.harness import assert_close, blame, call, expect_error, hypothesis_settings

SETTINGS = hypothesis_settings(max_examples=40)


class Clock:
    """A fake time.perf_counter: `work(x)` (the model) advances it by the next duration in ms, or by
    `per_call + per_row * len(x)` ms; every input it was given is recorded."""

    def __init__(self, durations_ms=None, per_call=0.0, per_row=0.0):
        self.now, self.durations = 0.0, None if durations_ms is None else list(durations_ms)
        self.per_call, self.per_row, self.inputs = per_call, per_row, []

    def __call__(self) -> float:
        return self.now

    def work(self, x):
        x = np.asarray(x)
        self.inputs.append(x.copy())
        if self.durations is not None:
            if not self.durations:
                raise AssertionError("the fake model was called more often than the check expected")
            self.now += self.durations.pop(0) / 1e3
        else:
            self.now += (self.per_call + self.per_row * len(x)) / 1e3
        return np.zeros((len(x), 2), np.float32)


def ids(inputs) -> list:
    """The sample ids (first feature) of every row the fake model was given, call by call."""
    return [np.asarray(x)[:, 0].astype(int).tolist() for x in inputs]


def toy() -> Splits:
    """Training rows score 3 of 3 with `scores = x`; test rows 3 of 5 (classes 1, 0, 0, 1, 1 predicted
    for labels 1, 0, 1, 1, 0)."""
    return Splits(np.array([[0, 1], [1, 0], [2, 0]], np.float32), np.array([1, 0, 0]),
                  np.array([[0, 1], [1, 0], [1, 0], [0, 1], [0, 1]], np.float32), np.array([1, 0, 1, 1, 0]), "toy")


def tagged(n_train=100, n_test=7) -> Splits:
    """Training rows [i, i] for i in 0..n_train-1; test rows [1000 + j, -j]: the split shows in column 0."""
    tr = np.arange(n_train, dtype=np.float32)
    te = np.arange(n_test, dtype=np.float32)
    return Splits(np.stack([tr, tr], 1), (np.arange(n_train) % 3), np.stack([1000 + te, -te], 1),
                  np.arange(n_test) % 2, "tagged")


# ---------------------------------------------------------------------------------------------
# calibration_set
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("calibration_set")
def test_calibration_set_draws_distinct_training_rows():
    data = tagged()
    got = np.asarray(call("calibration_set", calibration_set, data, 10, seed=3))
    assert got.shape == (10, 2), f"calibration_set: shape {got.shape}, expected (10, 2) (n rows of x_train)"
    assert np.all(got[:, 0] < 1000), \
        f"calibration_set: returned TEST rows {got[got[:, 0] >= 1000].tolist()}; calibrate on data.x_train only"
    idx = got[:, 0].astype(int)
    assert np.array_equal(got, data.x_train[idx]), "calibration_set: the rows are not rows of data.x_train"
    assert len(set(idx.tolist())) == 10, f"calibration_set: repeated rows {sorted(idx.tolist())} (draw without replacement)"
    assert np.all(np.diff(idx) > 0), f"calibration_set: rows in the order {idx.tolist()}, expected increasing index order"
    whole = np.asarray(calibration_set(data, 100, seed=0))
    assert np.array_equal(whole, data.x_train), "calibration_set: n = all 100 rows should give x_train itself, in order"
    expect_error("calibration_set", ValueError, calibration_set, data, 101, match="calibration_set")


@pytest.mark.task("calibration_set")
def test_calibration_set_is_fixed_by_its_seed():
    data = tagged()
    np.random.seed(1)
    a = np.asarray(call("calibration_set", calibration_set, data, 8, seed=5))
    np.random.seed(2)
    state = np.random.get_state()[1].copy()
    b = np.asarray(calibration_set(data, 8, seed=5))
    assert np.array_equal(a, b), (f"calibration_set: seed 5 gave rows {a[:, 0].astype(int).tolist()} and then "
                                  f"{b[:, 0].astype(int).tolist()}: the global np.random state moved it (use "
                                  "np.random.default_rng(seed))")
    assert np.array_equal(np.random.get_state()[1], state), \
        "calibration_set: changed the global np.random state (use a generator of your own)"
    c = np.asarray(calibration_set(data, 8, seed=6))
    assert not np.array_equal(a, c), "calibration_set: seeds 5 and 6 drew the same rows (is the seed used?)"


# ---------------------------------------------------------------------------------------------
# quality
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("quality")
def test_quality_on_the_test_split_by_hand():
    data, seen = toy(), []

    def predict(x):
        seen.append(np.asarray(x).copy())
        return np.asarray(x)  # the scores are the features: class 1 when x[1] > x[0]

    got = call("quality", quality, predict, data, batch=2)
    assert isinstance(got, float), f"quality: returned {type(got).__name__}, expected a Python float"
    if math.isclose(got, 1.0):
        raise AssertionError("quality: 1.0 is the accuracy on the TRAINING split (3 of 3); quality is measured "
                             "on data.x_test / data.y_test, where 3 of 5 are right: 0.6")
    assert math.isclose(got, 0.6), f"quality: {got}, expected 0.6 (3 of the 5 test rows right)"
    rows = np.concatenate(seen) if seen else np.zeros((0, 2), np.float32)
    assert np.array_equal(rows, data.x_test), \
        f"quality: predict was shown {rows.tolist()}, expected the test rows once each, in order"


@pytest.mark.task("quality")
def test_quality_goes_in_batches_and_reads_only_test_rows():
    data, sizes = tagged(n_train=12, n_test=7), []

    def predict(x):
        x = np.asarray(x)
        sizes.append(len(x))
        if np.any(x[:, 0] < 1000):
            raise AssertionError(f"quality: predict was shown TRAINING rows {x[x[:, 0] < 1000, 0].astype(int).tolist()}; "
                                 "quality is measured on data.x_test only")
        j = (x[:, 0] - 1000).astype(int)  # right on test rows 0, 2, 3, 5 (labels j % 2): 4 of 7
        right = np.isin(j, [0, 2, 3, 5])
        cls = np.where(right, j % 2, 1 - j % 2)
        return Tensor(np.eye(2, dtype=np.float32)[cls])  # a Tensor is fine too

    got = call("quality", quality, predict, data, batch=3)
    assert sizes == [3, 3, 1], f"quality: predict got batches of {sizes} rows, expected [3, 3, 1] for 7 rows at batch 3"
    assert math.isclose(got, 4 / 7), f"quality: {got}, expected 4/7 = {4 / 7:.6f}"
    sizes.clear()
    assert math.isclose(quality(predict, data, batch=100), 4 / 7) and sizes == [7], \
        f"quality: at batch 100, batches {sizes} (expected one batch of all 7 rows)"


# ---------------------------------------------------------------------------------------------
# meets_quality (named "mlperf_rule", so that the task "quality" does not select these)
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("meets_quality")
def test_mlperf_rule_by_hand():
    cases = [  # (optimised, fp32, ratio, expected, why)
        (0.9850, 0.9900, 0.99, True, "0.9850 >= 0.99 x 0.9900 = 0.9801"),
        (0.9790, 0.9900, 0.99, False, "0.9790 < 0.9801: too inaccurate, however fast"),
        (0.4950, 0.5000, 0.99, True, "exactly at the target 0.99 x 0.5 = 0.495 passes (>=)"),
        (0.9990, 0.9900, 0.99, True, "better than the FP32 model"),
        (0.9985, 1.0000, 0.999, False, "the 99.9% target: 0.9985 < 0.999"),
        (0.7600, 0.7646, 0.99, True, "ResNet-50: 0.7600 >= 0.99 x 0.7646 = 0.7570"),
        (0.7500, 0.7646, 0.99, False, "ResNet-50: 0.7500 < 0.7570"),
    ]
    for opt, fp32, ratio, want, why in cases:
        got = call("meets_quality", meets_quality, opt, fp32, ratio)
        assert isinstance(got, (bool, np.bool_)), f"meets_quality: returned {type(got).__name__}, expected a bool"
        assert bool(got) == want, f"meets_quality({opt}, {fp32}, ratio={ratio}) is {got}, expected {want}: {why}"
    assert meets_quality(0.9805, 0.99) and not meets_quality(0.9795, 0.99), \
        "meets_quality: with the default ratio 0.99 the target for fp32 0.99 is 0.9801 (0.9805 passes, 0.9795 fails)"
    expect_error("meets_quality", ValueError, meets_quality, 0.9, 0.9, 1.5, match="meets_quality")


# ---------------------------------------------------------------------------------------------
# single_stream
# ---------------------------------------------------------------------------------------------
DURATIONS = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]  # ms; sorted 1 1 2 3 3 4 5 5 6 9
# p50: rank 0.5 * 9 = 4.5 -> 3 + 0.5 * (4 - 3) = 3.5;  p90: rank 8.1 -> 6 + 0.1 * (9 - 6) = 6.3
# p99: rank 8.91 -> 6 + 0.91 * 3 = 8.73;  mean 39 / 10 = 3.9;  min 1
EXPECTED = {"p50": 3.5, "p90": 6.3, "p99": 8.73, "mean": 3.9, "min": 1.0}


@pytest.mark.task("single_stream")
def test_single_stream_percentiles_by_hand():
    clock = Clock([50, 50] + DURATIONS)  # two slow warm-up queries first
    samples = np.stack([np.arange(4, dtype=np.float32), np.zeros(4, np.float32)], 1)
    stats = call("single_stream", single_stream, clock.work, samples, queries=10, warmup=2, timer=clock)
    assert isinstance(stats, LatencyStats), f"single_stream: returned {type(stats).__name__}, not LatencyStats"
    assert len(clock.inputs) == 12, f"single_stream: {len(clock.inputs)} calls of predict, expected 2 warm-up + 10 queries"
    times = np.asarray(stats.times_ms)
    assert times.shape == (10,), f"single_stream: times_ms has shape {times.shape}, expected (10,): one per query"
    assert_close(times, DURATIONS, "single_stream (times_ms: each query's own latency in ms, warm-up excluded)",
                 atol=1e-9, rtol=1e-9)
    for name, want in EXPECTED.items():
        got = getattr(stats, name)
        if name != "mean" and math.isclose(got, EXPECTED["mean"]):
            raise AssertionError(f"single_stream: {name} = {got} ms is the MEAN latency; each percentile comes from "
                                 f"the sorted per-query latencies {sorted(DURATIONS)} (expected {want} ms)")
        assert math.isclose(got, want, rel_tol=1e-9), f"single_stream: {name} = {got} ms, expected {want} ms"


@pytest.mark.task("single_stream")
def test_single_stream_sends_one_sample_per_query_in_order():
    clock = Clock(per_call=1.0)
    samples = np.stack([np.arange(4, dtype=np.float32), np.ones(4, np.float32)], 1)
    call("single_stream", single_stream, clock.work, samples, queries=6, warmup=3, timer=clock)
    shapes = sorted({x.shape for x in clock.inputs})
    assert shapes == [(1, 2)], f"single_stream: predict got inputs of shapes {shapes}, expected (1, 2): ONE sample per query"
    got = ids(clock.inputs)
    assert got[3:] == [[0], [1], [2], [3], [0], [1]], \
        f"single_stream: the timed queries sent samples {got[3:]}, expected 0, 1, 2, 3, 0, 1 (sample i % n)"
    expect_error("single_stream", ValueError, single_stream, clock.work, samples, queries=0, match="single_stream")


@pytest.mark.task("single_stream")
@SETTINGS
@given(st.lists(st.floats(0.01, 100.0, allow_nan=False), min_size=1, max_size=40))
def test_single_stream_percentiles_match_numpy(durations):
    clock = Clock(durations)
    stats = call("single_stream", single_stream, clock.work, np.zeros((3, 2), np.float32),
                 queries=len(durations), warmup=0, timer=clock)
    for q in (50, 90, 99):
        got, want = getattr(stats, f"p{q}"), float(np.percentile(np.array(durations, np.float64), q))
        assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9), \
            f"single_stream: p{q} = {got} ms for query latencies {durations}, expected {want} ms"


# ---------------------------------------------------------------------------------------------
# offline
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("offline")
def test_offline_throughput_by_hand():
    # 1 ms per call + 0.5 ms per row; 10 samples at batch 4: calls of 4, 4, 2 rows = 3 + 3 + 2 = 8 ms
    clock = Clock(per_call=1.0, per_row=0.5)
    samples = np.stack([np.arange(10, dtype=np.float32), np.zeros(10, np.float32)], 1)
    res = call("offline", offline, clock.work, samples, batch=4, timer=clock)
    assert isinstance(res, OfflineResult), f"offline: returned {type(res).__name__}, not OfflineResult"
    got = ids(clock.inputs)
    assert got[0] == [0, 1, 2, 3] and got[1:] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]], \
        f"offline: predict got batches {got}, expected one warm-up batch [0..3], then [0..3], [4..7], [8, 9]"
    assert (res.samples, res.batch) == (10, 4), f"offline: samples, batch = {res.samples}, {res.batch}, expected 10, 4"
    assert math.isclose(res.seconds, 0.008, rel_tol=1e-9), \
        f"offline: seconds = {res.seconds}, expected 0.008 (the timed pass: 3 + 3 + 2 ms, warm-up excluded)"
    assert math.isclose(res.throughput, 1250.0, rel_tol=1e-9), \
        f"offline: throughput {res.throughput} samples/s, expected 10 / 0.008 s = 1250"


@pytest.mark.task("offline")
def test_offline_at_batch_one_and_at_a_batch_larger_than_the_data():
    samples = np.stack([np.arange(10, dtype=np.float32), np.zeros(10, np.float32)], 1)
    clock = Clock(per_call=1.0, per_row=0.5)
    res = call("offline", offline, clock.work, samples, batch=1, warmup=0, timer=clock)
    assert len(clock.inputs) == 10, f"offline: {len(clock.inputs)} calls at batch 1 with warmup=0, expected 10"
    assert math.isclose(res.throughput, 10 / 0.015, rel_tol=1e-9), \
        f"offline: batch 1 throughput {res.throughput}, expected 10 / 0.015 s = 666.7 samples/s"
    clock = Clock(per_call=1.0, per_row=0.5)
    res = offline(clock.work, samples, batch=64, warmup=2, timer=clock)
    assert ids(clock.inputs)[2:] == [list(range(10))], f"offline: batch 64 over 10 samples sent {ids(clock.inputs)}"
    assert math.isclose(res.throughput, 10 / 0.006, rel_tol=1e-9), \
        f"offline: batch 64 throughput {res.throughput}, expected 10 / 0.006 s (one call of 10 rows)"


# ---------------------------------------------------------------------------------------------
# run_benchmark (names avoid the other tasks' names: the task selector matches substrings)
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("run_benchmark")
def test_run_benchmark_reads_the_test_split_and_applies_the_rule():
    data, clock = tagged(n_train=20, n_test=6), Clock(per_call=1.0)

    def predict(x):
        x = np.asarray(x)
        clock.work(x)
        j = (x[:, 0] - 1000).astype(int)  # labels j % 2: right on test rows 0, 1, 2 (3 of 6)
        cls = np.where(j < 3, j % 2, 1 - j % 2)
        return np.eye(2, dtype=np.float32)[cls]

    def train_rows():
        return sorted({int(v) for x in clock.inputs for v in x[:, 0] if v < 1000})

    own = call("quality", quality, predict, data, batch=4)  # the learner's quality on its own first
    if train_rows():
        raise AssertionError(f"quality: predict was shown TRAINING rows {train_rows()}; quality reads data.x_test only")
    clock.inputs.clear()
    res = call("run_benchmark", run_benchmark, "opt", predict, data, queries=5, warmup=2, batch=4, timer=clock,
               reference=None, size_bytes=123)
    assert isinstance(res, BenchmarkResult), f"run_benchmark: returned {type(res).__name__}, not BenchmarkResult"
    assert not train_rows(), (f"run_benchmark: predict was shown TRAINING rows {train_rows()}; the quality, the "
                              "SingleStream queries and the Offline pass all use data.x_test")
    with blame("run_benchmark", "the fields of its BenchmarkResult"):
        assert math.isclose(res.accuracy, own) and math.isclose(own, 0.5), \
            f"run_benchmark: accuracy {res.accuracy}, expected quality(predict, data) = 0.5"
        assert len(res.single_stream.times_ms) == 5 and math.isclose(res.single_stream.p50, 1.0), \
            (f"run_benchmark: SingleStream {res.single_stream}; expected 5 queries of 1 ms on the given timer "
             "(pass queries, warmup and timer on)")
        assert (res.offline.samples, res.offline.batch) == (6, 4) and math.isclose(res.offline.seconds, 0.002), \
            f"run_benchmark: Offline {res.offline}, expected 6 test samples at batch 4: 2 calls of 1 ms"
        assert res.test_samples == 6 and res.size_bytes == 123, \
            f"run_benchmark: test_samples {res.test_samples}, size_bytes {res.size_bytes}, expected 6 and 123"
        assert res.reference_accuracy == res.accuracy and bool(res.meets_quality), \
            (f"run_benchmark: without a reference the result is the reference: reference_accuracy "
             f"{res.reference_accuracy} (expected its own {res.accuracy}), meets_quality {res.meets_quality}")
        ref = BenchmarkResult("fp32", 0.8, 0.8, 0.99, True, res.single_stream, res.offline, 6)
        vs = run_benchmark("opt", predict, data, queries=5, warmup=0, batch=4, timer=clock, reference=ref, ratio=0.5)
        assert (vs.reference_accuracy, vs.ratio, bool(vs.meets_quality)) == (0.8, 0.5, True), \
            (f"run_benchmark: against a reference at 0.8 with ratio 0.5, got reference_accuracy "
             f"{vs.reference_accuracy}, ratio {vs.ratio}, meets_quality {vs.meets_quality} (0.5 >= 0.4: True)")
        vs = run_benchmark("opt", predict, data, queries=5, warmup=0, batch=4, timer=clock, reference=ref)
        assert not vs.meets_quality and math.isclose(vs.quality_target, 0.792), \
            f"run_benchmark: 0.5 against the reference 0.8 at ratio 0.99 (target 0.792) must fail; got {vs.meets_quality}"


# ---------------------------------------------------------------------------------------------
# the report of your results (write_report and system_description are given; the results are yours)
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("write_report", "system_description")
def test_write_report_of_your_results(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    manual_seed(0)
    model = Sequential(Linear(2, 8), Dropout(0.5), Linear(8, 2))
    model.train()  # predictor puts it in eval mode
    data, clock = toy(), Clock(per_call=2.0, per_row=1.0)
    predict = predictor(model)

    def timed(x):
        clock.work(x)
        return predict(x)

    base = call("run_benchmark", run_benchmark, "fp32", timed, data, queries=4, warmup=1, batch=2, timer=clock)
    opt = call("run_benchmark", run_benchmark, "int8", timed, data, queries=4, warmup=1, batch=2, timer=clock,
               reference=base, ratio=0.5, size_bytes=99)
    json_path, md_path = call("write_report", write_report, [base, opt], tmp_path / "run")
    payload = json.loads(json_path.read_text(encoding="utf-8"))
    assert "not official MLPerf results" in payload["note"], f"write_report: note {payload['note']!r}"
    assert payload["results"] == json.loads(json.dumps([base.to_dict(), opt.to_dict()])), \
        "write_report: results.json does not hold the results' to_dict()"
    r = payload["results"][1]
    assert r["quality"]["split"] == "test" and r["quality"]["reference_accuracy"] == base.accuracy, \
        f"write_report: quality {r['quality']}"
    assert len(r["SingleStream"]["latencies_ms"]) == 4, f"write_report: SingleStream {r['SingleStream']}"
    d = payload["system"]
    for key in ("cpu", "logical_cores", "usable_cores", "python", "numpy", "blas", "threads"):
        assert key in d, f"system_description: no {key!r} in {sorted(d)}"
    assert isinstance(d["cpu"], str) and d["cpu"], f"system_description: cpu {d['cpu']!r}"
    assert 1 <= d["usable_cores"] <= d["logical_cores"], f"system_description: cores {d['usable_cores']} / {d['logical_cores']}"
    assert d["numpy"] == np.__version__, f"system_description: numpy {d['numpy']} is not the running {np.__version__}"
    assert d["threads"]["OPENBLAS_NUM_THREADS"] == "3" and d["threads"]["MKL_NUM_THREADS"] == "unset", \
        f"system_description: threads {d['threads']}"
    md = md_path.read_text(encoding="utf-8")
    for text in ("SingleStream", "Offline", "not official MLPerf results", "| fp32 |", "| int8 |",
                 f"{opt.single_stream.p90:.3f}", f"{opt.quality_target:.4f}", f"{opt.offline.throughput:,.0f}",
                 "| 99 |", d["cpu"]):
        assert text in md, f"write_report: report.md does not contain {text!r}:\n{md}"
