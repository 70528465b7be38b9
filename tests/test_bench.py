"""Smoke test of the benchmark: every model of bench/bench_step.py runs 2 steps per implementation
(--quick), the table prints, and the implementations agree on the first loss (same weights, same
batch), which also checks the hand-written NumPy backward against the framework."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_step.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_step", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("model", list(load_bench().MODELS))
def test_bench_quick_runs_every_model(model, tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--models", model, "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert model in proc.stdout and "numpy" in proc.stdout and "tinytorch" in proc.stdout
    report = json.loads(out.read_text())
    results = report["results"][model]
    assert report["args"]["steps"] == 2 and report["args"]["rounds"] == 1
    for impl in ("tinytorch", "numpy"):
        assert len(results[impl]["medians"]) == 1 and results[impl]["ms"] > 0
    assert not report["problems"], report["problems"]  # first-step losses agree across implementations


def test_numpy_mlp_matches_tinytorch_over_several_steps():
    """The hand-written backward + SGD must follow the framework step for step (else the timing
    compares different work)."""
    bench = load_bench()
    ours, hand = bench.mlp_tinytorch(16, 1), bench.mlp_numpy(16, 1)
    for _ in range(5):
        a, b = ours(), hand()
        assert abs(a - b) < 1e-4 * max(1.0, abs(b)), (a, b)


def test_bench_accel_quick(tmp_path):
    """bench/bench_accel.py --quick: module 18's data-parallel LeNet and GPT steps run beside the
    others, and start from the same loss (the sharded gradient is the whole batch's)."""
    out = tmp_path / "accel.json"
    proc = subprocess.run([sys.executable, str(BENCH.parent / "bench_accel.py"), "--quick", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    for model in ("lenet", "gpt"):
        assert report["results"][model]["accel"]["ms"] > 0, report["results"][model]
    for impl in ("tiled", "parallel"):  # LeNet-5 accelerated on one thread, and the plain model in threads
        assert report["results"]["lenet"][impl]["ms"] > 0, report["results"]["lenet"]
    assert "accelerate(lenet) for the accel row: layer 0 (Conv2d" in proc.stdout, proc.stdout
    assert "x PyTorch" in proc.stdout or "skipped" in proc.stdout
    assert not report["problems"], report["problems"]


@pytest.mark.parametrize("args", [["--quick"], ["--generate", "--quick"]], ids=["step", "generate"])
def test_bench_gpt_quick(args):
    """Milestone 05's char-GPT: the training step in three implementations, and generation."""
    proc = subprocess.run([sys.executable, str(BENCH.with_name("bench_gpt.py")), *args],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    if "--generate" in args:
        assert "tokens/s" in proc.stdout and "DIFFER" not in proc.stdout, proc.stdout
    else:
        assert "gpt" in proc.stdout and "tinytorch" in proc.stdout and "WARNING" not in proc.stderr


def test_bench_kvcache_quick(tmp_path):
    out = tmp_path / "kv.json"
    proc = subprocess.run([sys.executable, str(BENCH.with_name("bench_kvcache.py")), "--quick", "--json",
                           str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not json.loads(out.read_text())["problems"]
