"""`tito milestone start / submit / demo`: the milestone notebooks, their rubric, and the demo.

Workspaces are staged with the reference modules (test_milestones.make_ws). A filled notebook is
the shipped starter with its TODO cells replaced by the reference solutions kept in
tests/fixtures/milestone_solutions/ (they never ship in the starters).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_milestones import achievements, make_ws, tito

from tito import milestone_work as mw
from tito import notebooks, registry, state

SOLUTIONS = Path(__file__).resolve().parent / "fixtures" / "milestone_solutions"
FOUNDATION = ("01", "02", "03")
WITH_NOTEBOOKS = [ms for ms in registry.MILESTONES if mw.spec_path(ms).is_file()]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TITO_WORKSPACE", raising=False)


def solution_cells(ms) -> dict[str, str]:
    text = (SOLUTIONS / f"m{ms.id}_{ms.slug}.py").read_text(encoding="utf-8")
    return {c.metadata["todo"]: c.source for c in notebooks.parse(text).cells if "todo" in c.metadata}


def filled(ms, replace: tuple[str, str] | None = None) -> str:
    """The starter with every TODO cell replaced by its reference solution (then, optionally,
    one exact text replacement: a planted bug)."""
    import jupytext

    nb = notebooks.parse(mw.load_spec(ms).starter.read_text(encoding="utf-8"))
    cells = solution_cells(ms)
    for cell in nb.cells:
        if "todo" in cell.metadata:
            cell.source = cells[cell.metadata["todo"]]
    text = jupytext.writes(nb, fmt="py:percent")
    if replace:
        assert text.count(replace[0]) == 1, replace[0]
        text = text.replace(*replace)
    return text


def rubric_rows(out: str) -> dict[str, str]:
    """{line name: its table row(s)} from the rubric table `submit` prints."""
    rows: dict[str, str] = {}
    name = None
    for line in out.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 4 and cells[1]:
            name = cells[1]
            rows[name] = line
        elif len(cells) == 4 and name:
            rows[name] += "\n" + line
    return rows


# ---------------------------------------------------------------------------------------------
# The starters and rubrics (package data)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ms", WITH_NOTEBOOKS, ids=lambda ms: ms.id)
def test_each_starter_has_todo_cells_that_its_solution_fills_and_none_of_the_solution(ms):
    spec = mw.load_spec(ms)  # weights add up to 100, every check kind known
    assert [line.name for line in spec.lines] == ["model", "training", "visualisation",
                                                  "systems", "comparison"]
    text = spec.starter.read_text(encoding="utf-8")
    cells = notebooks.parse(text).cells
    todo = {c.metadata["todo"]: c.source for c in cells if "todo" in c.metadata}
    assert todo and set(todo) == set(solution_cells(ms)), (sorted(todo), sorted(solution_cells(ms)))
    for tid, source in todo.items():
        assert "TODO" in source and "raise NotImplementedError" in source, tid
    for tid, source in solution_cells(ms).items():
        assert "NotImplementedError" not in source and source not in text, tid
    assert cells[0].cell_type == "markdown" and f"Milestone {ms.id}" in cells[0].source
    colab = next(c.source for c in cells if c.cell_type == "code")
    assert colab.startswith("import sys") and 'if "google.colab" in sys.modules:' in colab
    assert f'Notebook("{ms.id}")' in text
    readme = mw.readme_text(spec)
    for line in spec.lines:
        assert f"| {line.name} | {line.weight:.0f}% |" in readme


# ---------------------------------------------------------------------------------------------
# start
# ---------------------------------------------------------------------------------------------
def test_start_writes_the_pair_and_readme_then_never_overwrites_and_reset_backs_up(tmp_path):
    ws = make_ws(tmp_path / "ws", FOUNDATION)
    code, out = tito("milestone", "start", "perceptron", cwd=ws.root)
    assert code == 0, out
    folder = ws.root / "milestones" / "01_perceptron"
    py, nb, readme = folder / "perceptron.py", folder / "perceptron.ipynb", folder / "README.md"
    assert py.read_text() == mw.load_spec(registry.get_milestone("01")).starter.read_text()
    doc = json.loads(nb.read_text())
    assert doc["metadata"]["jupytext"]["formats"] == "ipynb,py:percent" and len(doc["cells"]) > 10
    assert "| training | 25% |" in readme.read_text() and "tito milestone submit 01" in readme.read_text()
    for text in ("1958", "milestones/01_perceptron/perceptron.ipynb", "README.md", "systems",
                 "tito milestone submit 01"):
        assert text in out, (text, out)

    py.write_text(py.read_text() + "\n# my own work\n")
    code, out = tito("milestone", "start", "01", cwd=ws.root)
    assert code == 0 and "already there" in out and "Nothing was overwritten" in out, out
    assert "milestones/01_perceptron/perceptron.ipynb" in out
    assert "# my own work" in py.read_text()

    code, out = tito("milestone", "start", "01", "--reset", cwd=ws.root)
    assert code == 0 and "previous file is saved in" in out, out
    saved = list((ws.state / "backups" / "milestones" / "01_perceptron").glob("*-perceptron.py"))
    assert len(saved) == 1 and "# my own work" in saved[0].read_text()
    assert "# my own work" not in py.read_text()


def test_start_refuses_a_locked_milestone_naming_the_missing_modules(tmp_path):
    ws = make_ws(tmp_path / "ws", ("01", "02"))
    code, out = tito("milestone", "start", "01", cwd=ws.root)
    assert code == 1 and "is locked" in out and "03 layers" in out, out
    assert "tito module start 03" in out and "Traceback" not in out
    ws = make_ws(tmp_path / "ws2", FOUNDATION)  # 02's notebook also trains: needs 04-07
    code, out = tito("milestone", "start", "02", cwd=ws.root)
    assert code == 1 and "04 losses" in out and "07 optimizers" in out, out
    assert not (ws.root / "milestones").exists()
    for ms in registry.MILESTONES:  # coming (not built yet) or built without a notebook yet
        if ms not in WITH_NOTEBOOKS:
            code, out = tito("milestone", "start", ms.id, cwd=ws.root)
            assert code == 1 and ("not built yet" in out or "has no notebook yet" in out), out


# ---------------------------------------------------------------------------------------------
# submit
# ---------------------------------------------------------------------------------------------
def _started(tmp_path, text: str | None = None):
    ws = make_ws(tmp_path / "ws", FOUNDATION)
    ms = registry.get_milestone("01")
    st = mw.start(ws, ms)
    if text is not None:
        notebooks.write_pair(st.py, text)
    return ws, ms


def test_a_filled_notebook_scores_100_with_evidence_on_every_line_and_is_recorded(tmp_path):
    ws, ms = _started(tmp_path, filled(registry.get_milestone("01")))
    code, out = tito("milestone", "submit", "01", cwd=ws.root)
    assert code == 0, out
    rows = rubric_rows(out)
    assert set(rows) >= {"model", "training", "visualisation", "systems", "comparison"}, out
    assert all("✓" in row for name, row in rows.items() if name != "line"), out
    assert "built from your activations.py, layers.py" in rows["model"]
    assert "accuracy measured by tito on 1,000 moons examples" in rows["training"]
    assert "decision_boundary.png" in rows["visualisation"]
    assert "R²" in rows["systems"] and "your prediction 2,052" in rows["systems"]
    assert "sigmoid: 30 epochs" in rows["comparison"] and "relu: 30 epochs" in rows["comparison"]
    assert "Score: 100/100" in out and "Recorded in .tito/milestones.json" in out
    recs = mw.submissions(ws.root)["01"]
    assert len(recs) == 1 and recs[0]["score"] == 100 and recs[0]["quick"] is False
    assert {r["name"] for r in recs[0]["lines"] if r["passed"]} == set(rows) - {"line"}
    assert achievements(ws) == {}  # a submission is not a `run` achievement
    progress = state.load_progress(ws.root)["modules"]
    assert recs[0]["modules"] == {m: progress[m]["sha256"] for m in FOUNDATION}
    sub_dir = Path(recs[0]["dir"])
    assert (sub_dir / "rubric.json").is_file() and (sub_dir / "perceptron.npz").is_file()


def test_a_broken_training_loop_scores_low_and_names_the_failing_lines(tmp_path):
    ms = registry.get_milestone("01")
    bug = ("mistakes += rosenblatt_step(model, x_train[idx], y_train[idx], lr)",
           "mistakes += rosenblatt_step(model, x_train[idx], y_train[idx], 0.0)")
    ws, _ = _started(tmp_path, filled(ms, bug))
    code, out = tito("milestone", "submit", "01", cwd=ws.root)
    assert code == 1, out
    rows = rubric_rows(out)
    assert "✗" in rows["training"] and "moons examples: 50.0% (target ≥ 95.0%)" in rows["training"]
    assert "fell by 0%" in rows["training"]
    assert "✗" in rows["comparison"] and "final 50.0%" in rows["comparison"]
    for intact in ("model", "visualisation", "systems"):  # what the bug does not touch still counts
        assert "✓" in rows[intact], rows[intact]
    assert "✗ training: check rosenblatt_step" in out and "✗ comparison:" in out
    assert "Score: 65/100" in out and "Not recorded (recorded only at 100%)" in out
    assert mw.submissions(ws.root) == {}


def test_the_unfilled_starter_scores_0_naming_where_it_stopped(tmp_path):
    ws, _ = _started(tmp_path)
    code, out = tito("milestone", "submit", "01", cwd=ws.root)
    assert code == 1 and "Score: 0/100" in out, out
    assert "The notebook stopped at line" in out and "(in build_perceptron)" in out
    assert "NotImplementedError: TODO: build the R-unit" in out
    assert "not found (the notebook stopped at line" in out
    assert mw.submissions(ws.root) == {}


def test_submit_without_a_started_notebook_says_how_to_start(tmp_path):
    ws = make_ws(tmp_path / "ws", FOUNDATION)
    code, out = tito("milestone", "submit", "01", cwd=ws.root)
    assert code == 1 and "tito milestone start 01" in out, out


# ---------------------------------------------------------------------------------------------
# The measurements, one by one
# ---------------------------------------------------------------------------------------------
def _ctx(tmp_path, results: dict, quick: bool = False) -> mw.CheckContext:
    spec = mw.load_spec(registry.get_milestone("01"))
    run = mw.Run("ok", 1.0, tmp_path / "log")
    return mw.CheckContext(spec, None, tmp_path, results, quick, run)


def test_png_check_rejects_fakes_blanks_and_tiny_images(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 3))
    ax.plot([0, 1, 2], [0, 1, 0])
    fig.savefig(tmp_path / "real.png", dpi=80)
    blank, _ = plt.subplots(figsize=(3, 3))
    blank.gca().axis("off")
    blank.savefig(tmp_path / "blank.png", dpi=80)
    tiny, _ = plt.subplots(figsize=(1, 1))
    tiny.savefig(tmp_path / "tiny.png", dpi=50)
    (tmp_path / "fake.png").write_bytes(b"not an image at all" * 100)
    (tmp_path / "cut.png").write_bytes((tmp_path / "real.png").read_bytes()[:200])
    assert mw.png_problem(tmp_path / "real.png") is None
    assert "colour" in mw.png_problem(tmp_path / "blank.png")
    assert "50x50" in mw.png_problem(tmp_path / "tiny.png")
    assert "signature" in mw.png_problem(tmp_path / "fake.png")
    assert "does not decode" in mw.png_problem(tmp_path / "cut.png")
    assert mw.png_problem(tmp_path / "absent.png") == "missing"


@pytest.mark.parametrize("peaks, ok", [
    ([100 * b + 5000 for b in (8, 16, 32, 64, 128)], True),
    ([b * b for b in (8, 16, 32, 64, 128)], False),  # quadratic: a straight line fits badly
    ([5000, 5000, 5000, 5000, 5000], False),  # flat: nothing grows with the batch
    ([100 * b for b in (8, 16, 32, 64, 32)], False),  # goes down once
])
def test_linear_growth_needs_growth_that_a_line_fits(tmp_path, peaks, ok):
    ctx = _ctx(tmp_path, {"memory": {"batch_sizes": [8, 16, 32, 64, 128], "peak_bytes": peaks}})
    v = mw.check_linear_growth(ctx, {"x": "memory.batch_sizes", "y": "memory.peak_bytes"})
    assert v.ok is ok, v.evidence


def test_linear_growth_needs_a_wide_range_and_a_close_prediction(tmp_path):
    narrow = _ctx(tmp_path, {"m": {"x": [8, 9, 10, 11], "y": [8, 9, 10, 11]}})
    v = mw.check_linear_growth(narrow, {"x": "m.x", "y": "m.y"})
    assert not v.ok and "8x the smallest" in v.evidence
    wide = {"m": {"x": [1, 4, 16, 64], "y": [100, 400, 1600, 6400], "guess": 150}}
    v = mw.check_linear_growth(_ctx(tmp_path, wide), {"x": "m.x", "y": "m.y", "predicted": "m.guess"})
    assert not v.ok and "33% off" in v.evidence


def test_accuracy_is_computed_from_predictions_and_their_count_must_match(tmp_path):
    _, y = mw.make_moons(1000, 0.15, 1958)
    np.save(tmp_path / "p_predictions.npy", y.astype(np.int64))
    check = {"predictions": "p", "data": "moons", "at_least": 0.95, "claimed": "acc"}
    v = mw.check_accuracy(_ctx(tmp_path, {"acc": 1.0}), check)
    assert v.ok and "100.0%" in v.evidence
    v = mw.check_accuracy(_ctx(tmp_path, {"acc": 0.5}), check)  # the notebook's own number is off
    assert not v.ok and "disagree" in v.evidence
    np.save(tmp_path / "p_predictions.npy", 1 - y[:900].astype(np.int64))
    v = mw.check_accuracy(_ctx(tmp_path, {}), check)
    assert not v.ok and "900 predictions" in v.evidence


def test_quick_targets_and_counts_come_from_the_registry(tmp_path):
    spec = mw.load_spec(registry.get_milestone("03"))
    check = next(c for c in spec.lines[1].checks if c["kind"] == "accuracy")
    assert mw._target(spec, check, quick=False) == 0.98
    assert mw._target(spec, check, quick=True) == 0.90


def test_variants_need_each_variant_trained(tmp_path):
    ok = {"c": {"a": {"curve": [3, 2, 1], "final_acc": 0.9}, "b": {"curve": [3, 1, 0.5], "final_acc": 0.8}}}
    check = {"key": "c", "names": ["a", "b"], "min_len": 3, "final_at_least": 0.6}
    assert mw.check_variants(_ctx(tmp_path, ok), check).ok
    one = {"c": {"a": ok["c"]["a"]}}
    v = mw.check_variants(_ctx(tmp_path, one), check)
    assert not v.ok and "b: no curve" in v.evidence


# ---------------------------------------------------------------------------------------------
# demo
# ---------------------------------------------------------------------------------------------
def test_demo_refuses_before_a_run_then_shows_the_perceptrons_plane(tmp_path):
    ws = make_ws(tmp_path / "ws", FOUNDATION)
    code, out = tito("milestone", "demo", "01", cwd=ws.root)
    assert code == 1 and "nothing to demo yet" in out and "tito milestone run 01" in out, out
    code, out = tito("milestone", "run", "01", cwd=ws.root)
    assert code == 0, out
    run_dir = Path(achievements(ws)["01"]["1"][0]["run_dir"])
    assert {"model.npz", "model.json", "demo_data.npz"} <= {p.name for p in run_dir.iterdir()}
    code, out = tito("milestone", "demo", "01", cwd=ws.root)
    assert code == 0 and "your recorded run of" in out, out
    assert "40 of 40 points right" in out  # the perceptron separates its separable data
    grid = [x.strip("│ ") for x in out.splitlines() if set(x.strip("│ ")) <= set("#.01!") and len(x.strip("│ ")) == 40]
    assert len(grid) == 16 and any("#" in g for g in grid) and any("." in g for g in grid), out


def _mnist_here() -> bool:
    from tito.data import datasets

    try:
        datasets().load_mnist("test")
        return True
    except Exception:  # noqa: BLE001 - no copy of MNIST on this machine
        return False


def test_demo_03_classifies_real_mnist_test_digits_with_the_learners_weights(tmp_path):
    if not _mnist_here():
        pytest.skip("MNIST is not available here: set TINYTORCH_DATA to a folder with mnist/")
    ws = make_ws(tmp_path / "ws", tuple(f"{i:02d}" for i in range(1, 9)))
    code, out = tito("milestone", "run", "03", "--part", "2", "--quick", cwd=ws.root)
    assert code == 0 and "not recorded" in out, out
    shows = mw.demo(ws, registry.get_milestone("03"), count=6, seed=1)
    assert [s.part for s in shows] == [2] and "quick rehearsal" in shows[0].label
    d = shows[0].data
    from tito.data import datasets

    images, labels = datasets().load_mnist("test")
    assert d["labels"] == labels[d["indices"]].tolist()  # real test digits, their real labels
    assert np.array_equal(np.array(d["images"], dtype=np.uint8), images[d["indices"]])
    right = sum(p == y for p, y in zip(d["predictions"], d["labels"]))
    assert right >= 5, d  # the quick MLP gets about 93% of the test digits right

    code, out = tito("milestone", "demo", "03", "--count", "6", "--seed", "1", cwd=ws.root)
    assert code == 0, out
    assert "your quick rehearsal of" in out and "part 2: An MLP on MNIST" in out
    assert f"{right} of 6 right (test images {', '.join(map(str, d['indices']))})" in out
    assert out.count("✓") == right and out.count("✗") == 6 - right, out
    for k in range(6):  # each digit is drawn: its ASCII rendering appears in the output
        assert mw.ascii_image(d["images"][k])[7] in out
