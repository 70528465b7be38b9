"""Milestone 05's notebook: `tito milestone start / submit / demo 05` (the Transformer).

One reference workspace (modules 01-08 and 10-13) and one `--quick` submission of the reference
solution are shared by the tests of this file (module-scoped): the tampered deliverables are
copies of that submission's files, measured again by the same checks.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from test_milestone_work import filled, rubric_rows
from test_milestones import make_ws, tito

from tito import milestone_work as mw
from tito import notebooks, registry

MS = registry.get_milestone("05")
MODULES = tuple(m.id for m in mw.notebook_modules(MS))  # 01-08, 10-13


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """(workspace, CLI output, the submission) of the reference solution, submitted --quick."""
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("m05")
        mp.setenv("XDG_CACHE_HOME", str(root / "cache"))
        mp.delenv("TITO_WORKSPACE", raising=False)
        ws = make_ws(root / "ws", MODULES)
        st = mw.start(ws, MS)
        notebooks.write_pair(st.py, filled(MS))
        code, out = tito("milestone", "submit", "05", "--quick", cwd=ws.root)
        sub = sorted((mw.folder(ws, MS) / "submissions").iterdir())[-1]
        yield ws, code, out, sub


def test_start_writes_the_notebook_and_readme_and_never_overwrites(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ws = make_ws(tmp_path / "ws", MODULES)
    code, out = tito("milestone", "start", "05", cwd=ws.root)
    assert code == 0, out
    folder = ws.root / "milestones" / "05_transformer"
    py, nb, readme = folder / "transformer.py", folder / "transformer.ipynb", folder / "README.md"
    assert py.read_text() == mw.load_spec(MS).starter.read_text()
    doc = json.loads(nb.read_text())
    assert doc["metadata"]["jupytext"]["formats"] == "ipynb,py:percent" and len(doc["cells"]) > 20
    text = readme.read_text()
    for row in ("| model | 25% |", "| training | 30% |", "| systems | 20% |", "reloaded by tito",
                "validation loss ≤ 2.0 nats/char", "grows like `systems.contexts`^2"):
        assert row in text, row
    for todo in ("train_loop", "routing", "shakespeare", "sample", "plots", "systems", "comparison"):
        assert f'# %% todo="{todo}"' in py.read_text(), todo
    assert "Vaswani" in out and "milestones/05_transformer/transformer.ipynb" in out, out

    py.write_text(py.read_text() + "\n# my own work\n")
    code, out = tito("milestone", "start", "05", cwd=ws.root)
    assert code == 0 and "Nothing was overwritten" in out and "# my own work" in py.read_text()


def test_a_quick_submission_of_the_reference_scores_100_measured_by_tito(quick):
    ws, code, out, sub = quick
    assert code == 0, out
    rows = rubric_rows(out)
    assert all("✓" in rows[name] for name in ("model", "training", "visualisation", "systems",
                                              "comparison")), out
    assert "`copy` reloaded by tito, copy of 1,000 held-out strings" in rows["model"]
    assert "`reverse` reloaded by tito, reverse of 1,000" in rows["model"]
    assert "validation loss" in rows["training"] and "111,540 characters" in rows["training"]
    assert "sample.txt: " in rows["visualisation"] and "occur in the training text" in rows["visualisation"]
    assert "fitted exponent" in rows["systems"] and "your count from the shapes" in rows["systems"]
    assert "with_positions" in rows["comparison"] and "without_positions" in rows["comparison"]
    assert "Score: 100/100" in out and "a quick rehearsal is never recorded" in out
    assert mw.submissions(ws.root) == {}
    doc = json.loads((sub / "results.json").read_text())
    assert doc["models"]["shakespeare"]["config"]["n_embd"] == 64  # the quick model
    assert len(doc["models"]["shakespeare"]["chars"]) == 65


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
    def untrained_lm(out_dir, results):  # fresh weights in place of the trained ones
        with np.load(out_dir / "shakespeare.npz") as z:
            arrays = {k: np.random.default_rng(0).normal(0, 0.02, z[k].shape) for k in z.files}
        np.savez(out_dir / "shakespeare.npz", **arrays)

    v = _measure(quick, tmp_path / "a", "training", untrained_lm)
    lm = v[1]
    assert not lm.ok and "they disagree" in lm.evidence, lm.evidence
    val = float(lm.evidence.split("validation loss ")[1].split()[0])
    assert val > 3.5, lm.evidence  # about ln 65 = 4.17: it knows nothing

    def swapped(out_dir, results):  # the copy model handed in as the reverse model
        shutil.copy(out_dir / "copy.npz", out_dir / "reverse.npz")

    reverse = _measure(quick, tmp_path / "b", "model", swapped)[2]
    assert not reverse.ok and "reverse of 1,000 held-out strings" in reverse.evidence
    assert float(reverse.evidence.split("GPT.generate): ")[1].split("%")[0]) < 5, reverse.evidence

    def short_and_linear(out_dir, results):
        (out_dir / "sample.txt").write_text("ROMEO:\nzzqx")
        results["systems"]["attention_bytes"] = [1000 * t for t in results["systems"]["contexts"]]

    text = _measure(quick, tmp_path / "c", "visualisation", short_and_linear)[1]
    assert not text.ok and "sample.txt holds 11 characters" in text.evidence
    power = _measure(quick, tmp_path / "d", "systems", short_and_linear)[1]
    assert not power.ok and "fitted exponent 1.00" in power.evidence, power.evidence

    def no_config(out_dir, results):  # saved with nb.save_model: tito cannot rebuild it
        del results["models"]["copy"]["config"]

    copy = _measure(quick, tmp_path / "e", "model", no_config)[1]
    assert not copy.ok and "without its GPTConfig" in copy.evidence


def test_demo_refuses_before_a_run_then_writes_shakespeare_from_the_saved_weights(quick):
    ws = quick[0]
    code, out = tito("milestone", "demo", "05", cwd=ws.root)
    assert code == 1 and "nothing to demo yet" in out and "tito milestone run 05" in out, out
    code, out = tito("milestone", "run", "05", "--part", "2", "--quick", cwd=ws.root)
    assert code == 0, out
    run_dir = next((ws.root / "runs" / "05_transformer").glob("*/part2"))
    info = json.loads((run_dir / "model.json").read_text())
    assert info["kind"] == "text" and info["config"]["n_embd"] == 64 and len(info["chars"]) == 65

    # part 1's reverse model, as its run saves it (the weights: the quick submission's)
    part1 = ws.root / "runs" / "05_transformer" / "20260101-000000" / "part1"
    part1.mkdir(parents=True)
    shutil.copy(quick[3] / "reverse.npz", part1 / "model.npz")
    config = json.loads((quick[3] / "results.json").read_text())["models"]["reverse"]["config"]
    (part1 / "model.json").write_text(json.dumps({
        "build": "tito.milestones.m05_transformer:build_gpt", "kind": "routing", "config": config,
        "task": "reverse", "length": 8}))
    (part1 / "metrics.json").write_text(json.dumps({"achieved": True, "quick": True}))

    code, out = tito("milestone", "demo", "05", "--prompt", "JULIET:", "--seed", "3", cwd=ws.root)
    assert code == 0 and "your quick rehearsal of" in out and "prompt 'JULIET:'" in out, out
    assert "part 1: Attention learns to route" in out and "8 of 8 new strings right" in out, out
    shows = mw.demo(ws, MS, seed=3, prompt="JULIET:")  # the same seed: the same text
    assert [s.part for s in shows] == [1, 2] and shows[1].kind == "text"
    d = shows[0].data
    assert d["inputs"] == mw.digit_strings(8, 8, 3).tolist()
    assert d["expected"] == [x[::-1] for x in d["inputs"]] == d["answers"]
    for a, b in zip(d["inputs"], d["answers"]):
        assert f"{''.join(map(str, a))} │ {''.join(map(str, b))}" in out, out
    text = shows[1].data["text"]
    assert text.startswith("JULIET:") and len(text) == len("JULIET:") + 500
    assert set(text) <= set(info["chars"])
    lines = [x for x in text.splitlines()[1:] if 0 < len(x.strip()) < 60][:3]  # unwrapped
    assert lines and all(x.strip() in out for x in lines), (lines, out)

    code, out = tito("milestone", "demo", "05", "--prompt", "Ωmega", cwd=ws.root)
    assert code == 1 and "do not occur in Tiny Shakespeare" in out and "Traceback" not in out, out


@pytest.mark.skipif(sys.platform == "win32", reason="the process group of the notebook")
def test_the_unfilled_starter_stops_at_the_training_loop(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ws = make_ws(tmp_path / "ws", MODULES)
    mw.start(ws, MS)
    sub = mw.submit(ws, MS, quick=True)
    assert sub.score == 0 and sub.run.kind == "error"
    assert "in <module>" not in sub.run.where and "line" in sub.run.where
    assert "NotImplementedError: TODO: train the routing models" in sub.run.error, sub.run.error
    assert all("not found (the notebook stopped at line" in " ".join(r.evidence) for r in sub.lines)
