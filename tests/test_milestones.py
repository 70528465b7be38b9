"""The milestone scripts, the runner subprocess and the witnesses (quick variants only).

Also home of the helpers the other milestone test files use: `make_ws` stages a workspace whose
`tinytorch/` holds copies of the reference modules (optionally with a bug injected by text
replacement), and `tito(...)` runs the real CLI in-process.
"""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinytorch
from helpers_course import run_cli
from tito import registry, state
from tito.milestones.common import NonFiniteLoss, RunContext, TrainingWitness, merge_witness_metrics
from tito.milestones.runner import trim_traceback
from tito.workspace import Workspace, sha256

REF = Path(tinytorch.__file__).resolve().parent
SUPPORT = ("__init__.py", "datasets.py", "transforms.py")


# ---------------------------------------------------------------------------------------------
# Helpers (imported by test_milestone_cli.py and test_milestone_failures.py)
# ---------------------------------------------------------------------------------------------
def make_ws(root: Path, modules=(), inject: dict | None = None) -> Workspace:
    """A workspace with the reference files of `modules` (ids) exported and marked complete.

    inject: {"layers.py": code}: code appended to that file's copy, to plant a learner's bug that
    lives in that file (it redefines a function by its public name, so it survives refactoring
    of the reference), or {"layers.py": [(old, new), ...]}: exact text replacements.
    """
    inject = dict(inject or {})
    pkg = root / "tinytorch"
    pkg.mkdir(parents=True)
    for name in SUPPORT:
        (pkg / name).write_text((REF / name).read_text(encoding="utf-8"), encoding="utf-8")
    state.initialise(root)
    for mid in modules:
        m = registry.get_module(mid)
        text = (REF / m.file_name).read_text(encoding="utf-8")
        bug = inject.pop(m.file_name, [])
        if isinstance(bug, str):
            text += "\n\n# --- a planted bug ---\n" + bug
        for old, new in ([] if isinstance(bug, str) else bug):
            assert old in text, f"injection target not found in {m.file_name}: {old!r}"
            text = text.replace(old, new)
        (pkg / m.file_name).write_text(text, encoding="utf-8")
        state.record_completion(root, m.id, sha256(pkg / m.file_name))
    assert not inject, f"injections into files not staged: {list(inject)}"
    return Workspace(root)


def tito(*args: str, cwd: Path | None = None) -> tuple[int, str]:
    """Run `tito ARGS` in-process through cli.main; returns (exit code, stdout + stderr)."""
    code, out, err = run_cli(list(args), cwd=cwd)
    return code, out + err


def achievements(ws: Workspace) -> dict:
    return state.get_achievements(ws.root)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Reference runs outside a workspace write under the user cache: keep it in tmp."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TITO_WORKSPACE", raising=False)


def runner(tmp_path: Path, *args: str, package: Path = REF,
           expect: Path | None = None) -> tuple[list[dict], subprocess.CompletedProcess]:
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "tito.milestones.runner", *args, "--out", str(out),
           "--root", str(package.parent), "--expect", str(expect or package)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=dict(os.environ, MPLBACKEND="Agg"))
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()], proc


# ---------------------------------------------------------------------------------------------
# The witnesses
# ---------------------------------------------------------------------------------------------
class P:
    """A stand-in parameter: .data and .grad arrays."""

    def __init__(self, data, grad=None):
        self.data, self.grad = np.asarray(data, dtype=np.float32), grad


def test_witness_measures_loss_drop_grads_and_weights():
    a, b = P([1.0, 2.0]), P([[3.0]])
    w = TrainingWitness([a, b])
    for v in (2.0, 1.5, 1.0, 0.4):
        w.loss(v)
    a.grad, b.grad = P([0.1, 0.0]), P([[0.0]])
    w.grads()
    a.data += 1
    m = w.metrics(tail=1)
    assert m["loss_first"] == 2.0 and m["loss_last"] == pytest.approx(0.4)
    assert m["loss_drop"] == pytest.approx(0.8)
    assert m["grads_ok"] is False, "b only ever received a zero gradient"
    assert m["weights_changed"] is False, "b never moved"
    assert any("zero" in p for p in w.problems) and any("never changed" in p for p in w.problems)


def test_witness_flags_missing_misshapen_and_nonfinite_gradients():
    a, b, c = P([1.0]), P([1.0, 2.0]), P([3.0])
    w = TrainingWitness([a, b, c])
    b.grad, c.grad = P([[1.0, 1.0]]), P([np.inf])
    w.grads()
    text = " ".join(w.problems)
    assert "no gradient" in text and "shape" in text and "non-finite" in text
    assert w.metrics()["grads_ok"] is False


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_witness_stops_on_a_non_finite_loss(bad):
    w = TrainingWitness([P([1.0])], suspects=("losses", "autograd"))
    w.loss(1.0)
    with pytest.raises(NonFiniteLoss) as e:
        w.loss(bad, where="epoch 2")
    assert e.value.step == 2 and e.value.suspects == ("losses", "autograd")
    assert "epoch 2" in str(e.value)


def test_gradient_check_catches_a_wrong_gradient():
    p = P([0.5, -1.0])
    loss_at = lambda: float((p.data ** 2).sum())  # noqa: E731  gradient 2p
    p.grad = P(2 * p.data)
    assert TrainingWitness([p]).check_gradients(loss_at)
    p.grad = P(-2 * p.data)
    w = TrainingWitness([p])
    assert not w.check_gradients(loss_at) and "finite differences" in w.problems[0]
    assert w.metrics()["grads_match"] is False


def test_merged_witnesses_hold_only_if_each_run_holds():
    runs = [dict(loss_first=1.0, loss_last=0.1, loss_drop=0.9, grads_ok=True, weights_changed=True),
            dict(loss_first=1.0, loss_last=0.7, loss_drop=0.3, grads_ok=False,
                 weights_changed=True)]
    m = merge_witness_metrics(runs)
    assert m["loss_drop"] == 0.3 and m["grads_ok"] is False and m["weights_changed"] is True


def test_trimmed_traceback_keeps_the_learners_frames_and_names_the_module(tmp_path):
    pkg = tmp_path / "tinytorch"
    pkg.mkdir()
    (pkg / "layers.py").write_text("def forward(x):\n    return x / 0\n")
    ns: dict = {}
    exec(compile((pkg / "layers.py").read_text(), str(pkg / "layers.py"), "exec"), ns)

    def milestone_script():
        return ns["forward"](1)

    try:
        milestone_script()
    except ZeroDivisionError as e:
        text, culprit = trim_traceback(e, pkg.resolve())
    assert culprit.name == "layers"
    assert "layers.py" in text and "milestone_script" in text  # the caller's line is kept
    assert "ZeroDivisionError" in text and ", in test_trimmed" not in text  # not the test frame


def test_context_records_progress_lines():
    buf = io.StringIO()
    ctx = RunContext(stream=buf)
    ctx.progress(epoch=1, epochs=3, loss=np.float32(0.5))
    ctx.log("hello")
    lines = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert lines[0]["progress"]["loss"] == 0.5 and lines[1] == {"log": "hello"}


# ---------------------------------------------------------------------------------------------
# The scripts, through the runner subprocess, on the reference framework
# ---------------------------------------------------------------------------------------------
def test_runner_perceptron_reports_metrics_plots_and_json(tmp_path):
    lines, proc = runner(tmp_path, "01", "1", "--quick")
    assert proc.returncode == 0, proc.stderr
    final = lines[-1]
    m = final["metrics"]
    assert m["train_acc"] == 1.0 and m["test_acc"] >= 0.98 and m["weights_changed"] is True
    assert any("progress" in x for x in lines) and any("log" in x for x in lines)
    assert all(Path(p).is_file() for p in final["plots"]) and len(final["plots"]) == 2
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["metrics"] == m and saved["milestone"] == "01"
    results = registry.evaluate(registry.get_milestone("01").part(1).conditions, m, quick=True)
    assert all(r.passed for r in results), results


def test_runner_refuses_a_tinytorch_from_elsewhere(tmp_path):
    """The run must use exactly the package it was pointed at, never another one on the path."""
    lines, proc = runner(tmp_path, "01", "1", expect=tmp_path / "ws" / "tinytorch")
    assert proc.returncode != 0 and "metrics" not in lines[-1]
    assert "tinytorch was imported from" in lines[-1]["error"]


def test_runner_check_imports_reports_each_module(tmp_path):
    lines, proc = runner(tmp_path, "--check-imports", "tensor,layers,nosuchmodule")
    res = {r["name"]: r["ok"] for r in lines[-1]["imports"]}
    assert res == {"tensor": True, "layers": True, "nosuchmodule": False}


def _missing(name: str) -> bool:
    from tinytorch import datasets

    return "missing" in {status for _, _, status in datasets.check(name)}


def test_every_milestone_01_to_03_passes_quick_on_the_reference(tmp_path):
    """`tito milestone test ID --reference` (quick), parts 02.1/02.2/03.1/03.2: every condition."""
    if _missing("mnist"):
        pytest.skip("MNIST not found (set TINYTORCH_DATA to a folder holding mnist/; this test "
                    "never downloads)")
    outs = {}
    for mid in ("02", "03"):
        code, out = tito("milestone", "test", mid, "--reference", cwd=tmp_path)
        assert code == 0, out
        assert "PASS" in out and "✗" not in out and "MILESTONE ACHIEVED" not in out
        assert "Part 1" in out and "Part 2" in out and "nothing recorded" in out
        outs[mid] = out
    for seed in range(5):  # every seed is reported
        assert f"seed {seed}: 100% on XOR" in outs["02"]
    assert "MNIST test accuracy (98.0%; --quick: 90%)" in outs["03"] and ">= 90.00%" in outs["03"]
