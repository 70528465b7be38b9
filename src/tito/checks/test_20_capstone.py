"""Checks for module 20: the capstone's contract - one seed for a run, the budget clock, training
that stops before its deadline, the stored size of a system, the budget accounted, claims against
a re-run, and two systems compared with module 19's results.

The clock checks drive the code with a fake timer (a step advances it by a known number of
seconds), so every expected step count and time is worked out by hand in the comments. The size
checks write files of known sizes into a temporary folder. The import-origin guard of the shared
conftest makes sure these run on the learner's package.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from tinytorch.benchmarking import BenchmarkResult, OfflineResult
from tinytorch.capstone import (Budget, BudgetClock, TrainLog, budget_violations, compare_systems,
                                seed_everything, stored_bytes, train_within, unreproduced)
from tinytorch.layers import Linear
from tinytorch.profiling import LatencyStats
from tinytorch.tensor import randn
from tito.checks.harness import blame, call, expect_error


class Timer:
    """A fake monotonic clock: `now` moves only when a check (or a fake step) moves it."""

    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def stepper(timer: Timer, durations):
    """A fake training step: each call advances the timer by the next duration (s) and returns a
    loss of 1 / step number; `calls` counts the calls."""
    durations = list(durations)

    def step():
        if not durations:
            raise AssertionError("train_within: called step() more often than the budget allows")
        timer.now += durations.pop(0)
        step.calls += 1
        return 1.0 / step.calls

    step.calls = 0
    return step


# ---------------------------------------------------------------------------------------------
# seed_everything
# ---------------------------------------------------------------------------------------------
def _draws(rng):
    return (np.asarray(rng.integers(0, 1000, 5)).tolist(), np.random.rand(3).tolist(),
            randn(4).data.tolist(), Linear(3, 2).weight.data.tolist())


@pytest.mark.task("seed_everything")
def test_seed_everything_fixes_every_generator():
    rng = call("seed_everything", seed_everything, 7)
    assert isinstance(rng, np.random.Generator), \
        f"seed_everything: returned {type(rng).__name__}, expected a np.random.Generator (np.random.default_rng(seed))"
    first = _draws(rng)
    np.random.seed(99)  # whatever ran in between
    randn(10)
    second = _draws(seed_everything(7))
    names = ("the returned generator", "NumPy's global generator (np.random.seed)",
             "tinytorch's randn (manual_seed)", "Linear's initial weights (manual_seed)")
    for name, a, b in zip(names, first, second):
        assert a == b, f"seed_everything: seed 7 twice gave different draws from {name}: {a} and {b}"
    want = np.random.default_rng(7).integers(0, 1000, 5).tolist()
    assert first[0] == want, (f"seed_everything: the returned generator drew {first[0]}, "
                              f"np.random.default_rng(7) draws {want}")
    other = _draws(seed_everything(8))
    for name, a, b in zip(names, first, other):
        assert a != b, f"seed_everything: seeds 7 and 8 gave the same draws from {name}: is the seed used?"


# ---------------------------------------------------------------------------------------------
# BudgetClock
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("BudgetClock")
def test_budget_clock_by_hand():
    timer = Timer(100.0)
    clock = BudgetClock(10, timer=timer)
    cases = [(100.0, 0.0, 10.0, False), (104.5, 4.5, 5.5, False), (109.999, 9.999, 0.001, False),
             (110.0, 10.0, 0.0, True), (112.0, 12.0, 0.0, True)]
    for now, elapsed, remaining, expired in cases:
        timer.now = now
        got = (call("BudgetClock.elapsed", clock.elapsed), call("BudgetClock.remaining", clock.remaining),
               call("BudgetClock.expired", clock.expired))
        assert math.isclose(got[0], elapsed, abs_tol=1e-9), \
            f"BudgetClock.elapsed: {got[0]} at timer {now} (started at 100.0), expected {elapsed}"
        assert math.isclose(got[1], remaining, abs_tol=1e-9), \
            f"BudgetClock.remaining: {got[1]} at elapsed {elapsed} of 10 s, expected {remaining} (never below 0)"
        assert bool(got[2]) == expired, \
            f"BudgetClock.expired: {got[2]} at elapsed {elapsed} of 10 s, expected {expired} (elapsed >= seconds)"


@pytest.mark.task("BudgetClock")
def test_budget_clock_zero_budget_and_real_clock():
    timer = Timer(5.0)
    clock = BudgetClock(0, timer=timer)
    assert clock.expired() and clock.remaining() == 0.0, \
        "BudgetClock.expired: a 0 s budget is used up at once (expired True, remaining 0.0)"
    real = BudgetClock(3600)  # the default timer: time.monotonic
    e = call("BudgetClock.elapsed", real.elapsed)
    assert 0 <= e < 60, f"BudgetClock.elapsed: {e} s just after making a clock with the default timer"
    assert 3540 < real.remaining() <= 3600, f"BudgetClock.remaining: {real.remaining()} of a fresh 3600 s clock"


# ---------------------------------------------------------------------------------------------
# train_within
# ---------------------------------------------------------------------------------------------
def _log(result, name="train_within") -> TrainLog:
    assert isinstance(result, TrainLog), f"{name}: returned {type(result).__name__}, expected a TrainLog"
    return result


@pytest.mark.task("train_within")
def test_train_within_stops_before_the_deadline():
    # 10 s budget, reserve 2 s, 1 s steps: before step 8, 3 s left: 3 - 2 >= 1 runs it;
    # after 8 steps 2 s left: 0 < 1 stops. 8 steps, 8.0 s.
    timer = Timer(0.0)
    step = stepper(timer, [1.0] * 20)
    log = _log(call("train_within", train_within, step, BudgetClock(10, timer=timer), reserve_s=2.0))
    assert step.calls == 8 and log.steps == 8, \
        f"train_within: {step.calls} steps (log.steps {log.steps}) of 1 s in a 10 s budget with a 2 s reserve, expected 8"
    assert math.isclose(log.seconds, 8.0), f"train_within: log.seconds {log.seconds}, expected 8.0 (the clock when it stopped)"
    assert log.stopped == "budget", f"train_within: stopped {log.stopped!r}, expected 'budget'"
    assert np.allclose(log.step_seconds, [1.0] * 8), f"train_within: step_seconds {log.step_seconds}, expected eight 1.0"
    assert np.allclose(log.losses, [1 / k for k in range(1, 9)]), \
        f"train_within: losses {log.losses}, expected what step() returned: 1, 1/2, ..., 1/8"


@pytest.mark.task("train_within")
def test_train_within_predicts_with_the_longest_step():
    # 10 s, no reserve, steps 1, 1, 3, 1, 1, ...: after 3 steps (5 s) 5 left >= 3: run (6 s);
    # 4 left >= 3: run (7 s); 3 >= 3: run (8 s); 2 < 3: stop. 6 steps, 8.0 s.
    timer = Timer(50.0)
    step = stepper(timer, [1, 1, 3, 1, 1, 1, 1, 1, 1, 1])
    log = _log(call("train_within", train_within, step, BudgetClock(10, timer=timer)))
    assert step.calls == 6, (f"train_within: {step.calls} steps, expected 6 - the prediction is the LONGEST step so "
                             "far (3 s after the third step), not the last or the mean")
    assert math.isclose(log.seconds, 8.0), f"train_within: log.seconds {log.seconds}, expected 8.0"
    # a step slower than the rest is the only way past the deadline: 4, then 7 when 6 s are left
    timer = Timer(0.0)
    step = stepper(timer, [4, 7, 1])
    log = _log(train_within(step, BudgetClock(10, timer=timer)))
    assert step.calls == 2 and math.isclose(log.seconds, 11.0), \
        f"train_within: {step.calls} steps ending at {log.seconds} s, expected 2 (the second was predicted 4 s, took 7)"


@pytest.mark.task("train_within")
def test_train_within_max_steps_and_no_time():
    timer = Timer(0.0)
    step = stepper(timer, [1.0] * 10)
    log = _log(call("train_within", train_within, step, BudgetClock(100, timer=timer), max_steps=5))
    assert step.calls == 5 and log.stopped == "max_steps", \
        f"train_within: {step.calls} steps, stopped {log.stopped!r} with max_steps=5 in a 100 s budget (expected 5, 'max_steps')"
    step = stepper(timer, [1.0] * 10)
    log = _log(train_within(step, BudgetClock(100, timer=timer), max_steps=0))
    assert step.calls == 0 and log.steps == 0, f"train_within: max_steps=0 ran {step.calls} steps"
    timer = Timer(0.0)
    step = stepper(timer, [1.0] * 10)
    log = _log(train_within(step, BudgetClock(2, timer=timer), reserve_s=2.0))
    assert step.calls == 0 and log.stopped == "budget", \
        f"train_within: {step.calls} steps when the whole 2 s budget is the reserve (expected 0, stopped 'budget')"
    timer = Timer(0.0)
    step = stepper(timer, [0.5] * 10)
    log = _log(train_within(step, BudgetClock(2.2, timer=timer), reserve_s=2.0))
    assert step.calls == 1, f"train_within: {step.calls} steps with 0.2 s beyond the reserve (expected 1: the first step runs)"
    expect_error("train_within", ValueError, train_within, step, BudgetClock(1, timer=timer), reserve_s=-1,
                 match="train_within")


@pytest.mark.task("train_within")
def test_train_within_times_steps_with_the_given_clock():
    # the clock's timer is fake: timing with time.monotonic/perf_counter would see ~0 s steps
    timer = Timer(0.0)
    step = stepper(timer, [2.5, 2.5, 2.5, 2.5])
    log = _log(call("train_within", train_within, step, BudgetClock(6, timer=timer)))
    assert np.allclose(log.step_seconds, [2.5, 2.5]), \
        f"train_within: step_seconds {log.step_seconds}, expected [2.5, 2.5] - time each step with clock.elapsed()"


# ---------------------------------------------------------------------------------------------
# stored_bytes
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("stored_bytes")
def test_stored_bytes_counts_every_file(tmp_path):
    (tmp_path / "model.npz").write_bytes(b"x" * 1200)
    (tmp_path / "extra" / "deeper").mkdir(parents=True)
    (tmp_path / "extra" / "meta.json").write_bytes(b"y" * 34)
    (tmp_path / "extra" / "deeper" / "codes.bin").write_bytes(b"z" * 1000)
    got = call("stored_bytes", stored_bytes, tmp_path)
    assert isinstance(got, (int, np.integer)), f"stored_bytes: returned {type(got).__name__}, expected an int"
    assert got == 2234, f"stored_bytes: {got}, expected 1,200 + 34 + 1,000 = 2,234 bytes (every file, every sub-folder)"
    (tmp_path / "empty").mkdir()
    assert stored_bytes(tmp_path / "empty") == 0, "stored_bytes: an empty folder weighs 0 bytes"
    assert stored_bytes(str(tmp_path / "extra")) == 1034, "stored_bytes: a folder given as a str (extra/: 1,034 bytes)"
    expect_error("stored_bytes", FileNotFoundError, stored_bytes, tmp_path / "nowhere", match="stored_bytes")


@pytest.mark.task("stored_bytes")
def test_stored_bytes_refuses_links(tmp_path):
    big = tmp_path / "elsewhere.bin"
    big.write_bytes(b"0" * 5000)
    system = tmp_path / "system"
    system.mkdir()
    (system / "small.npz").write_bytes(b"1" * 10)
    try:
        os.symlink(big, system / "weights.bin")
    except (OSError, NotImplementedError):
        pytest.skip("this file system cannot make symbolic links")
    expect_error("stored_bytes", ValueError, stored_bytes, system, match="link")
    os.unlink(system / "weights.bin")
    os.symlink(tmp_path, system / "folder_link", target_is_directory=True)
    expect_error("stored_bytes", ValueError, stored_bytes, system, match="link")


# ---------------------------------------------------------------------------------------------
# budget_violations
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("budget_violations")
def test_budget_violations_by_hand():
    mnist = Budget(600, 1_000_000, "MNIST")
    got = call("budget_violations", budget_violations, 612.34, 1_204_000, mnist)
    assert got == ["wall time 612.3 s is over the budget of 600 s by 12.3 s",
                   "stored size 1,204,000 bytes is over the budget of 1,000,000 by 204,000"], \
        f"budget_violations: {got}"
    assert budget_violations(600.0, 1_000_000, mnist) == [], \
        "budget_violations: exactly at both limits is within the budget ([])"
    assert budget_violations(10.0, 999_999, mnist) == [], "budget_violations: well within both limits should give []"
    only_time = budget_violations(601.5, 10, mnist)
    assert only_time == ["wall time 601.5 s is over the budget of 600 s by 1.5 s"], \
        f"budget_violations: {only_time} for 601.5 s and 10 bytes"
    only_size = budget_violations(1.0, 1_000_001, Budget(2.5, 1_000_000))
    assert only_size == ["stored size 1,000,001 bytes is over the budget of 1,000,000 by 1"], \
        f"budget_violations: {only_size} for 1,000,001 bytes (one over)"


# ---------------------------------------------------------------------------------------------
# unreproduced
# ---------------------------------------------------------------------------------------------
TOL = {"accuracy": 0.005, "size_bytes": 1024}


@pytest.mark.task("unreproduced")
def test_unreproduced_by_hand():
    claimed = {"baseline": {"accuracy": 0.9791, "size_bytes": 941250},
               "optimised": {"accuracy": 0.9812, "size_bytes": 240518}}
    measured = {"baseline": {"accuracy": 0.9788, "size_bytes": 941250},
                "optimised": {"accuracy": 0.9734, "size_bytes": 240518}}
    got = call("unreproduced", unreproduced, claimed, measured, TOL)
    assert got == ["optimised accuracy: claimed 0.9812, measured 0.9734 (off by 0.0078; tolerance 0.005)"], \
        f"unreproduced: {got}"
    assert unreproduced(claimed, claimed, TOL) == [], "unreproduced: a re-run that measures exactly the claims gives []"
    edge = {"baseline": {"accuracy": 0.9751, "size_bytes": 942274}, "optimised": measured["optimised"]}
    got = unreproduced({"baseline": claimed["baseline"], "optimised": measured["optimised"]}, edge, TOL)
    assert got == [], f"unreproduced: {got} - differences of 0.004 and 1024 bytes are within the tolerances (<=)"
    big = {"baseline": measured["baseline"], "optimised": {"accuracy": 0.9734, "size_bytes": 300000}}
    got = unreproduced({"baseline": measured["baseline"], "optimised": {"accuracy": 0.9734, "size_bytes": 240518}},
                       big, TOL)
    assert got == ["optimised size_bytes: claimed 240518, measured 300000 (off by 59482; tolerance 1024)"], \
        f"unreproduced: {got}"


@pytest.mark.task("unreproduced")
def test_unreproduced_missing_claims_and_systems():
    measured = {"baseline": {"accuracy": 0.98, "size_bytes": 1000}, "optimised": {"accuracy": 0.97}}
    claimed = {"baseline": {"accuracy": 0.98}, "student": {"accuracy": 0.95}}
    got = call("unreproduced", unreproduced, claimed, measured, TOL)
    want = ["baseline size_bytes: no claim", "optimised accuracy: no claim", "optimised size_bytes: no claim",
            "student: claimed, but the run produced no such system"]
    assert got == want, f"unreproduced: {got}, expected {want}"
    got = unreproduced({"optimised": {"accuracy": 0.97, "size_bytes": 5}}, {"optimised": {"accuracy": 0.97}}, TOL)
    assert got == ["optimised size_bytes: not measured"], f"unreproduced: {got}"
    got = unreproduced({}, {}, TOL)
    assert got == [], f"unreproduced: {got} for no systems at all"
    only_acc = unreproduced({"a": {"accuracy": 0.5, "size_bytes": 1}}, {"a": {"accuracy": 0.5, "size_bytes": 9999}},
                            {"accuracy": 0.01})
    assert only_acc == [], f"unreproduced: {only_acc} - only the metrics of `tolerance` are compared"


# ---------------------------------------------------------------------------------------------
# compare_systems
# ---------------------------------------------------------------------------------------------
def result(acc, p50, throughput, size, name="sut") -> BenchmarkResult:
    ss = LatencyStats(np.array([p50, p50]), p50, p50, p50 * 1.5, p50 * 2, p50 * 0.5)
    return BenchmarkResult(name, acc, acc, 0.99, True, ss, OfflineResult(1000, 256, 1000 / throughput, throughput),
                           1000, size)


@pytest.mark.task("compare_systems")
def test_compare_systems_by_hand():
    base, opt = result(0.98, 0.20, 50_000, 940_000, "base"), result(0.975, 0.16, 40_000, 235_000, "opt")
    got = call("compare_systems", compare_systems, base, opt)
    assert isinstance(got, dict), f"compare_systems: returned {type(got).__name__}, expected a dict"
    want = {"accuracy_delta": -0.005, "speedup_p50": 1.25, "throughput_ratio": 0.8, "size_ratio": 4.0}
    for key, value in want.items():
        with blame("compare_systems", f"the key {key!r}"):
            v = got[key]
        assert v is not None and math.isclose(v, value, rel_tol=1e-9, abs_tol=1e-12), \
            f"compare_systems: {key} = {v}, expected {value}"
    assert got.get("meets_quality") is True or got.get("meets_quality") == np.True_, \
        f"compare_systems: meets_quality = {got.get('meets_quality')}, expected True (0.975 >= 0.99 x 0.98 = 0.9702)"
    worse = compare_systems(base, result(0.96, 0.40, 100_000, 470_000))
    assert math.isclose(worse["speedup_p50"], 0.5) and math.isclose(worse["throughput_ratio"], 2.0), \
        f"compare_systems: speedup_p50 {worse['speedup_p50']}, throughput_ratio {worse['throughput_ratio']}, " \
        "expected 0.5 (baseline p50 / optimised p50) and 2.0 (optimised / baseline throughput)"
    assert not worse["meets_quality"], "compare_systems: 0.96 < 0.9702 does not meet the quality rule"
    strict = compare_systems(base, opt, ratio=0.999)
    assert not strict["meets_quality"], "compare_systems: with ratio 0.999 the target is 0.97902, and 0.975 misses it"


@pytest.mark.task("compare_systems")
def test_compare_systems_unknown_size():
    base, opt = result(0.98, 0.2, 50_000, None), result(0.98, 0.2, 50_000, 1000)
    got = call("compare_systems", compare_systems, base, opt)
    assert got.get("size_ratio", "missing") is None, \
        f"compare_systems: size_ratio {got.get('size_ratio', 'missing')} when the baseline's size is unknown, expected None"
    assert compare_systems(opt, base)["size_ratio"] is None, \
        "compare_systems: size_ratio should be None when the optimised size is unknown"
