"""Milestone 06's notebook: `tito milestone start / submit / demo 06` (MLPerf).

One reference workspace (modules 01-19) and one `--quick` submission of the reference solution
are shared by the tests of this file (module-scoped): the broken deliverables are copies of that
submission's files, measured again by the same checks.
"""

from __future__ import annotations

import json
import shutil
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from test_milestone_work import filled, rubric_rows
from test_milestones import make_ws, runner, tito

from tito import milestone_work as mw
from tito import notebooks, registry

MS = registry.get_milestone("06")
MODULES = tuple(m.id for m in mw.notebook_modules(MS))  # 01-19


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """(workspace, exit code, CLI output, the submission folder) of the reference, --quick."""
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("m06")
        mp.setenv("XDG_CACHE_HOME", str(root / "cache"))
        mp.delenv("TITO_WORKSPACE", raising=False)
        ws = make_ws(root / "ws", MODULES)
        st = mw.start(ws, MS)
        notebooks.write_pair(st.py, filled(MS))
        code, out = tito("milestone", "submit", "06", "--quick", cwd=ws.root)
        sub = sorted((mw.folder(ws, MS) / "submissions").iterdir())[-1]
        yield ws, code, out, sub


def test_start_writes_the_notebook_and_readme_and_never_overwrites(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ws = make_ws(tmp_path / "ws", MODULES)
    code, out = tito("milestone", "start", "06", cwd=ws.root)
    assert code == 0, out
    folder = ws.root / "milestones" / "06_mlperf"
    py, nb, readme = folder / "mlperf.py", folder / "mlperf.ipynb", folder / "README.md"
    assert py.read_text() == mw.load_spec(MS).starter.read_text()
    doc = json.loads(nb.read_text())
    assert doc["metadata"]["jupytext"]["formats"] == "ipynb,py:percent" and len(doc["cells"]) > 20
    text = readme.read_text()
    for row in ("| model | 25% |", "| training | 25% |", "| visualisation | 20% |", "| systems | 20% |",
                "| comparison | 10% |", "reloaded by tito on your tinytorch", "≥ 4x smaller",
                "not official MLPerf", "timings themselves are not graded", "≥ 99% (quick: 97%)"):
        assert row in text, row
    for todo in ("baseline", "optimise", "benchmark", "pareto", "systems", "comparison"):
        assert f'# %% todo="{todo}"' in py.read_text(), todo
    assert "MLPerf consortium" in out and "milestones/06_mlperf/mlperf.ipynb" in out, out

    py.write_text(py.read_text() + "\n# my own work\n")
    code, out = tito("milestone", "start", "06", cwd=ws.root)
    assert code == 0 and "Nothing was overwritten" in out and "# my own work" in py.read_text()


def test_a_quick_submission_of_the_reference_scores_100_measured_by_tito(quick):
    ws, code, out, sub = quick
    assert code == 0, out
    rows = rubric_rows(out)
    assert all("✓" in rows[name] for name in ("model", "training", "visualisation", "systems",
                                              "comparison")), out
    assert "reloaded by tito on your tinytorch, 2,000 MNIST test images" in rows["model"]
    assert "all 5 weight tensors are int8 codes" in rows["model"] and "counted by tito" in rows["model"]
    ratio = float(rows["model"].split("bytes: ")[1].split("x smaller")[0])
    assert ratio > 10, rows["model"]  # 246,824 -> 17,131 bytes: pruning and INT8
    assert "3 systems, each recounted by tito" in rows["training"] and "not graded" in rows["training"]
    assert "int8.npz holds 17,131 bytes; your count from the shapes: 17,131" in rows["systems"]
    assert "tito pruned `fp32` itself at your sparsities" in rows["systems"]
    assert "`pruned`" in rows["comparison"] and "2,000 mnist-test examples" in rows["comparison"]
    assert "Score: 100/100" in out and "a quick rehearsal is never recorded" in out
    assert mw.submissions(ws.root) == {}
    report = json.loads((sub / "benchmark" / "results.json").read_text())
    assert [len(r["SingleStream"]["latencies_ms"]) for r in report["results"]] == [200, 200, 200]


def _measure(quick, tmp_path, line: str, tamper) -> list[mw.Verdict]:
    """The checks of one rubric line on a tampered copy of the passing submission."""
    ws, _, _, sub = quick
    out_dir = tmp_path / "sub"
    shutil.copytree(sub, out_dir)
    results = json.loads((out_dir / "results.json").read_text())
    tamper(out_dir, results)
    (out_dir / "results.json").write_text(json.dumps(results))
    spec = mw.load_spec(MS)
    ctx = mw.CheckContext(spec, ws, out_dir, results, True, mw.Run("ok", 1.0, out_dir / "log"))
    return [mw._safe_check(ctx, c) for c in next(x for x in spec.lines if x.name == line).checks]


def test_broken_deliverables_fail_with_what_tito_measured(quick, tmp_path):
    def unquantized(out_dir, results):  # the FP32 model handed in as the INT8 one, claims to match
        shutil.copy(out_dir / "fp32.npz", out_dir / "int8.npz")
        results["optimised"].update(accuracy=results["baseline"]["accuracy"], bytes=246824)

    built, quality, size = _measure(quick, tmp_path / "a", "model", unquantized)
    assert quality.ok, quality.evidence  # 100% of its own accuracy: the size gives it away
    assert not size.ok and "1.00x smaller (target ≥ 4x)" in size.evidence, size.evidence
    assert "NOT stored as INT8: 0.weight (float32)" in size.evidence and "differ" not in size.evidence

    def inconsistent(out_dir, results):  # a p90 that is not its latencies' 90th percentile
        path = out_dir / "benchmark" / "results.json"
        doc = json.loads(path.read_text())
        doc["results"][2]["SingleStream"]["p90_ms"] *= 0.5
        doc["results"][0]["Offline"]["samples_per_s"] *= 2
        path.write_text(json.dumps(doc))
        md = out_dir / "benchmark" / "report.md"
        md.write_text(md.read_text().replace("not official MLPerf results", "MLPerf results"))

    report = _measure(quick, tmp_path / "b", "training", inconsistent)[1]
    assert not report.ok, report.evidence
    assert "pruned + INT8, frozen, 2 threads: SingleStream p90_ms is" in report.evidence
    assert "the 90th percentile of its 200 latencies is" in report.evidence
    assert "FP32 baseline: Offline" in report.evidence and "is not samples / seconds" in report.evidence
    assert "does not say that these are not official MLPerf results" in report.evidence

    def flat_curve(out_dir, results):  # a curve that was not measured; a model that is no LeNet
        results["systems"]["accuracy"] = [results["systems"]["accuracy"][0]] * 5
        with np.load(out_dir / "pruned.npz") as z:
            arrays = {k: z[k] for k in z.files if not k.startswith("9.")}
        np.savez(out_dir / "pruned.npz", **arrays)

    curve = _measure(quick, tmp_path / "c", "systems", flat_curve)[1]
    assert not curve.ok and "your curve is within" in curve.evidence, curve.evidence
    tito_acc = [float(x.split("%")[0]) for x in curve.evidence.split("test images): ")[1].split(": ")[1:]]
    assert tito_acc[0] - tito_acc[-1] > 30, curve.evidence  # 90% of the channels gone: far worse
    int8 = _measure(quick, tmp_path / "d", "comparison", flat_curve)[0]
    assert not int8.ok and "could not rebuild 'pruned' as a LeNet-5" in int8.evidence, int8.evidence
    assert "no weight for layer 9" in int8.evidence


def test_demo_refuses_before_a_run_then_prints_the_benchmark_report(quick):
    ws = quick[0]
    code, out = tito("milestone", "demo", "06", cwd=ws.root)
    assert code == 1 and "nothing to demo yet" in out and "a benchmark report" in out, out
    assert "tito milestone run 06" in out and "Traceback" not in out
    # part 1 as `tito milestone run 06 --part 1 --quick` runs it (the runner, on the workspace's
    # tinytorch), in the folder demo reads; its metrics say whether every condition held
    lines, proc = runner(ws.root, "06", "1", "--quick", package=ws.package)
    assert proc.returncode == 0 and "metrics" in lines[-1], proc.stderr[-2000:]
    run_dir = ws.root / "runs" / "06_mlperf" / "20260101-000000" / "part1"
    run_dir.parent.mkdir(parents=True)
    shutil.move(ws.root / "run", run_dir)
    assert not (run_dir / "model.npz").exists() and (run_dir / "report.md").is_file()
    code, out = tito("milestone", "demo", "06", cwd=ws.root)
    assert code == 1 and "nothing to demo yet" in out, out  # not evaluated: not a successful run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    (run_dir / "metrics.json").write_text(json.dumps(dict(metrics, achieved=True, quick=True)))

    code, out = tito("milestone", "demo", "06", cwd=ws.root)
    assert code == 0 and "your quick rehearsal of" in out, out
    assert "part 1: The vision model" in out and "MLPerf-style inference: LeNet-5 on MNIST" in out, out
    assert "not official MLPerf results" in out and "pareto.png" in out
    doc = json.loads((run_dir / "results.json").read_text())
    for r in doc["results"]:  # every system's row, with its accuracy as the report wrote it
        assert r["name"] in out and f"{r['quality']['accuracy']:.4f}" in out, (r["name"], out)
    assert "part 2" not in out  # no run of part 2: nothing shown for it
    shows = mw.demo(ws, MS)
    assert [(s.part, s.kind) for s in shows] == [(1, "report")]


@pytest.mark.skipif(sys.platform == "win32", reason="the process group of the notebook")
def test_the_unfilled_starter_stops_at_the_baseline(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ws = make_ws(tmp_path / "ws", MODULES)
    mw.start(ws, MS)
    sub = mw.submit(ws, MS, quick=True)
    assert sub.score == 0 and sub.run.kind == "error"
    assert "NotImplementedError: TODO: the FP32 baseline" in sub.run.error, sub.run.error
    assert all("not found (the notebook stopped at line" in " ".join(r.evidence) for r in sub.lines)


def test_the_baseline_can_be_the_learners_recorded_milestone_04_lenet(quick):
    ws, _, _, sub = quick
    run_dir = ws.root / "runs" / "04_cnn" / "20260101-000000" / "part1"
    run_dir.mkdir(parents=True)
    shutil.copy(sub / "fp32.npz", run_dir / "model.npz")
    info = {"build": "tito.milestones.m04_cnn:lenet5", "kind": "digits", "quick": True}
    (run_dir / "model.json").write_text(json.dumps(info))
    (run_dir / "metrics.json").write_text(json.dumps({"achieved": True, "quick": True}))
    nb = SimpleNamespace(package=ws.package)  # what Notebook("06") knows: the learner's package
    assert mw.Notebook.recorded_model(nb, "04", 1) == (None, "")  # a rehearsal's model: not used
    (run_dir / "model.json").write_text(json.dumps(dict(info, quick=False)))
    (run_dir / "metrics.json").write_text(json.dumps({"achieved": True, "quick": False}))
    model, source = mw.Notebook.recorded_model(nb, "04", 1)
    assert "your test run of 20260101-000000" in source and str(run_dir) in source, source
    with np.load(sub / "fp32.npz") as z:
        assert all(np.array_equal(model.state_dict()[k], z[k]) for k in z.files)
