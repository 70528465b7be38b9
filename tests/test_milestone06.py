"""Milestone 06 (MLPerf): both parts --quick on the reference, and seeded bugs that must fail it.

The quick runs check what does not depend on the machine's speed: the probes (the harness agrees
with a recount, the frozen model computes what the model computes, the weights are stored as int8,
cached and uncached generation give the same tokens), the stored size, the quality rule, and the
files (report.md, results.json, the plots). Latency and throughput ratios are measured and shown by
the milestone, never asserted here (a timing on a shared CI machine proves nothing).

Each seeded bug is pasted at the end of a copy of one reference module file in a staged
`tinytorch` package (as tests/test_lang_seeded_bugs.py does) and forced through the milestone, as
`--skip-checks` would: the condition named with it must fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from test_check_blame_opt import FROZEN_BUGS

import tinytorch
from tito import registry

SRC = Path(tinytorch.__file__).parent
DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"

# bug -> (module file, patch, milestone part, the condition's metric that must fail - or the module
# a run that stops with an error must blame)
BUGS = {
    # the two module-18 bugs whose checks tests/test_check_blame_opt.py runs: the same patches
    # (freeze checks its two lowerings against each other: a wrong gather_index stops the part
    # with an error that names module 18)
    "gather_index_channel_first": ("acceleration.py", FROZEN_BUGS["gather_index_channel_first"].patch, 1,
                                   "18_acceleration"),
    "fold_flatten_without_the_layout_change": ("acceleration.py",
                                               FROZEN_BUGS["fold_flatten_without_the_layout_change"].patch, 1,
                                               "frozen_matches"),
    "model_size_counts_four_bytes_a_number": ("quantization.py", """
        def model_size_bytes(model):
            return int(sum(4 * np.asarray(a).size for a in model.state_dict().values()))
        """, 1, "harness_consistent"),
    "dequantize_ignores_the_zero_point": ("quantization.py", """
        def dequantize(q, qp):
            q = np.asarray(_array(q))
            s, z = qp.along(q.ndim)
            return q.astype(np.float32) * s
        """, 2, "int8_loss_gap"),
    "kv_cache_positions_restart_at_zero": ("memoization.py", """
        def cached_forward(model, idx, cache):
            idx = idx.data if isinstance(idx, Tensor) else np.asarray(idx)
            B, T = idx.shape
            with no_grad():
                x = model.tok_emb(idx) + model.pos_emb.weight[0:T]  # every step at position 0
                for layer, block in enumerate(model.blocks):
                    x = x + cached_attention(block.attn, block.ln1(x), cache, layer)
                    x = x + block.mlp(block.ln2(x))
                return model.lm_head(model.ln_f(x))
        """, 2, "tokens_identical"),
}


def stage(root: Path, name: str | None = None, patch: str = "") -> Path:
    """A copy of the reference package, with `patch` pasted at the end of its file `name`."""
    pkg = root / "tinytorch"
    shutil.copytree(SRC, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    if name:
        f = pkg / name
        f.write_text(f.read_text() + "\n\n# --- seeded bug ---\n" + textwrap.dedent(patch))
    return pkg


def record_gpt_run(root: Path) -> None:
    """Make `root` a workspace with a recorded (full) milestone 05 part 2 run: a small GPT over Tiny
    Shakespeare's characters, saved as m05 saves it (model.npz + model.json)."""
    from tinytorch.datasets import load_shakespeare
    from tinytorch.tensor import manual_seed
    from tinytorch.transformers import GPT, GPTConfig

    from tito import state

    chars = "".join(sorted(set(load_shakespeare())))
    config = dict(vocab_size=len(chars), block_size=32, n_layer=1, n_head=2, n_embd=32)
    manual_seed(1)
    model = GPT(GPTConfig(**config))
    run_dir = root / "runs" / "05_transformer" / "20260101-000000" / "part2"
    run_dir.mkdir(parents=True)
    np.savez(run_dir / "model.npz", **{k: np.asarray(getattr(v, "data", v)) for k, v in model.state_dict().items()})
    (run_dir / "model.json").write_text(json.dumps({"build": "tito.milestones.m05_transformer:build_gpt",
                                                    "kind": "text", "quick": False, "config": config,
                                                    "chars": chars}))
    (root / ".tito").mkdir()
    state.record_achievement(root, "05", 2, {"run_dir": str(run_dir), "metrics": {}})


def run_part(root: Path, part: int, bug: str | None = None) -> tuple[dict, Path]:
    """Milestone 06 part `part` --quick on a staged package: (the final protocol line, run folder)."""
    name, patch = (BUGS[bug][0], BUGS[bug][1]) if bug and bug in BUGS else (None, "")
    pkg, out = stage(root, name, patch), root / "run"
    if bug == "recorded-gpt":
        record_gpt_run(root)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    if DATA.is_dir():
        env.setdefault("TINYTORCH_DATA", str(DATA))
    proc = subprocess.run([sys.executable, "-m", "tito.milestones.runner", "06", str(part), "--quick",
                           "--out", str(out), "--root", str(root), "--expect", str(pkg)],
                          capture_output=True, text=True, timeout=600, cwd=root, env=env)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    final = [m for m in lines if "metrics" in m or "error" in m]
    assert final, f"{bug}: the milestone reported nothing: {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
    return final[-1], out


JOBS = [("reference", 1), ("reference", 2), ("recorded-gpt", 2)] + [(bug, BUGS[bug][2]) for bug in BUGS]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("m06")
    with ThreadPoolExecutor(max_workers=2) as pool:  # the machine's 2 cores
        futures = {(name, part): pool.submit(run_part, tmp / f"{name}-{part}", part,
                                             None if name == "reference" else name)
                   for name, part in JOBS}
    return {key: f.result() for key, f in futures.items()}


def conditions(part: int, metrics: dict) -> dict:
    p = registry.get_milestone("06").part(part)
    return {r.condition.metric: r for r in registry.evaluate(p.conditions, metrics, quick=True)}


TIMED = {"p90_speedup", "offline_speedup", "kv_speedup"}  # measured, shown, never asserted here


def test_part1_quick_on_the_reference(runs):
    msg, out = runs[("reference", 1)]
    assert "metrics" in msg, msg
    m = msg["metrics"]
    for metric, r in conditions(1, m).items():
        if metric not in TIMED:
            assert r.passed, f"{metric} = {r.value} (target {r.condition.op} {r.target}): {m}"
        assert r.value is not None, f"{metric} missing: {m}"
    assert m["quantized_layers"] == 5 and (m["conv1_channels"], m["conv2_channels"]) == (3, 8), m
    assert m["baseline_loaded"] is False, m  # a staged package: no workspace, no milestone 04 run
    assert m["opt_bytes"] < m["fp32_bytes"] / 10, m  # pruned by half and stored in int8
    assert m["frozen_logit_err"] <= 1e-4 and m["frozen_int8_agreement"] >= 0.99, m
    doc = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in doc["results"]] == ["FP32 baseline", "pruned + INT8 (framework)",
                                                   "pruned + INT8, frozen, 2 threads"]
    assert len(doc["results"][0]["SingleStream"]["latencies_ms"]) == m["queries"] == 200
    assert doc["results"][2]["quality"]["reference_accuracy"] == pytest.approx(m["fp32_acc"])
    report = (out / "report.md").read_text()
    assert "not official MLPerf results" in report and "SingleStream" in report and "Offline" in report
    for png in ("pareto.png", "latency_histogram.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png


def test_part2_quick_on_the_reference(runs):
    msg, out = runs[("reference", 2)]
    assert "metrics" in msg, msg
    m = msg["metrics"]
    for metric, r in conditions(2, m).items():
        if metric not in TIMED:
            assert r.passed, f"{metric} = {r.value} (target {r.condition.op} {r.target}): {m}"
    assert m["tokens_identical"] is True and m["kv_speedup"] > 0, m
    assert abs(m["int8_loss_gap"]) < 0.05 and m["size_ratio"] > 2, m
    doc = json.loads((out / "results.json").read_text())
    assert doc["results"]["generation"]["tokens"] == 256 and doc["results"]["generation"]["streams"] == 8
    report = (out / "report.md").read_text()
    assert "not official MLPerf results" in report and "KV cache" in report


def test_part2_measures_int8_on_the_learners_milestone_05_gpt(runs):
    msg, out = runs[("recorded-gpt", 2)]
    assert "metrics" in msg, msg
    m = msg["metrics"]
    assert m["int8_model_loaded"] is True and m["quantized_layers"] == 5, m  # 1 block: 4 Linear + the head
    assert abs(m["int8_loss_gap"]) < 0.05 and m["tokens_identical"] is True, m
    assert "your milestone 05 GPT" in (out / "report.md").read_text()
    assert runs[("reference", 2)][0]["metrics"]["int8_model_loaded"] is False


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_seeded_bug_fails_milestone_06(bug, runs):
    part, metric = BUGS[bug][2], BUGS[bug][3]
    msg, _ = runs[(bug, part)]
    if metric[:2].isdigit():  # the part must stop, blaming that module
        assert msg.get("module") == metric and "error" in msg, f"{bug}: {msg}"
        return
    assert "metrics" in msg, f"{bug}: the part raised instead of measuring: {msg}"
    r = conditions(part, msg["metrics"])[metric]
    assert not r.passed, f"{bug}: {metric} = {r.value} passed: {msg['metrics']}"
    assert msg["notes"], f"{bug}: the failure comes without a note saying what was measured"
