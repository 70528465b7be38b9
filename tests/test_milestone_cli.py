"""`tito milestone ...` through the real CLI: list, info, run, status, timeline, test, next,
celebrate - in staged workspaces (reference modules copied in, marked complete)."""

from __future__ import annotations

import json

import pytest
from test_milestones import achievements, make_ws, tito

from tito import state

FOUNDATION = ("01", "02", "03")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TITO_WORKSPACE", raising=False)


def one_line_error(code: int, out: str, *fragments: str) -> None:
    assert code == 1, out
    assert "Traceback" not in out
    first = next(line for line in out.splitlines() if line.startswith("Error: "))
    for f in fragments:
        assert f in out, (f, out)
    return first


# ---------------------------------------------------------------------------------------------
# list / info / locked / unknown
# ---------------------------------------------------------------------------------------------
def test_fresh_workspace_lists_every_milestone_locked(tmp_path):
    ws = make_ws(tmp_path / "ws")
    code, out = tito("milestone", "list", cwd=ws.root)
    assert code == 0 and out.count("LOCKED") == 6, out
    code, out = tito("milestones", "list", "--simple", cwd=ws.root)  # the alias
    lines = [x for x in out.splitlines() if x.strip()]
    assert code == 0 and len(lines) == 6 and all("LOCKED" in x for x in lines)
    assert lines[0].startswith("01 1958 The Perceptron") and "needs 01 02 03" in lines[0]


def test_after_modules_01_to_03_milestones_01_and_02_are_ready(tmp_path):
    ws = make_ws(tmp_path / "ws", FOUNDATION)
    code, out = tito("milestone", "list", "--simple", cwd=ws.root)
    rows = {x[:2]: x for x in out.splitlines() if x[:2].isdigit()}
    assert "READY TO RUN" in rows["01"] and "READY TO RUN" in rows["02"], out
    assert "LOCKED" in rows["03"] and "part 2 needs 04 05 06 07" in rows["02"]


def test_info_shows_history_modules_and_conditions(tmp_path):
    ws = make_ws(tmp_path / "ws", ("01", "02"))
    code, out = tito("milestone", "info", "perceptron", cwd=ws.root)
    assert code == 0
    assert "1958" in out and "Frank Rosenblatt" in out
    assert "✓ 01 tensor" in out and "✗ 03 layers" in out
    assert "100% training accuracy" in out and "LOCKED" in out
    assert "tito module complete 03" in out


def test_run_refuses_a_locked_milestone_with_the_commands_to_unlock_it(tmp_path):
    ws = make_ws(tmp_path / "ws", FOUNDATION)
    code, out = tito("milestone", "run", "03", cwd=ws.root)
    one_line_error(code, out, "is locked", "04 losses", "08 training",
                   "tito module complete 04", "tito module complete 08")
    assert achievements(ws) == {}


def test_unknown_milestone_id_suggests_close_ones(tmp_path):
    code, out = tito("milestone", "info", "perceptorn", cwd=tmp_path)
    one_line_error(code, out, "unknown milestone 'perceptorn'", "perceptron")
    code, out = tito("milestone", "run", "7", cwd=tmp_path)
    one_line_error(code, out, "unknown milestone '7'")


def test_unknown_part_is_refused(tmp_path):
    ws = make_ws(tmp_path / "ws", FOUNDATION)
    code, out = tito("milestone", "run", "01", "--part", "3", cwd=ws.root)
    one_line_error(code, out, "has no part '3'")


def test_commands_outside_a_workspace(tmp_path):
    code, out = tito("milestone", "list", cwd=tmp_path)
    assert code == 0 and "fresh learner" in out and out.count("LOCKED") == 6
    code, out = tito("milestone", "status", cwd=tmp_path)
    one_line_error(code, out, "no TinyTorch workspace")


# ---------------------------------------------------------------------------------------------
# A real run in a workspace: recorded, then status / celebrate / timeline / next
# ---------------------------------------------------------------------------------------------
def test_run_records_the_achievement_and_everything_reports_it(tmp_path):
    ws = make_ws(tmp_path / "ws", FOUNDATION)
    code, out = tito("milestone", "run", "1", cwd=ws.root)
    assert code == 0, out
    for text in ("✓ 01 tensor", "✓ 03 layers", "1958", "Frank Rosenblatt", "MILESTONE ACHIEVED",
                 "achieved with YOUR code", "decision_boundary.png", "Next:"):
        assert text in out, (text, out)
    recs = achievements(ws)["01"]["1"]
    assert len(recs) == 1
    rec = recs[0]
    assert rec["metrics"]["train_acc"] == 1.0 and rec["metrics"]["test_acc"] >= 0.98
    assert rec["seed"] == 0 and rec["duration_s"] > 0 and rec["recorded_at"]
    progress = state.load_progress(ws.root)["modules"]
    assert rec["modules"] == {m: progress[m]["sha256"] for m in FOUNDATION}
    run_dir = ws.root / rec["run_dir"] if not rec["run_dir"].startswith("/") else rec["run_dir"]
    doc = json.loads(open(f"{run_dir}/metrics.json").read())
    assert doc["achieved"] is True and all(c["passed"] for c in doc["conditions"])
    assert str(ws.root / "runs" / "01_perceptron") in rec["run_dir"]

    code, out = tito("milestone", "status", cwd=ws.root)
    assert code == 0 and "1/6" in out and "17%" in out and "The Perceptron" in out
    assert "milestone 02 The XOR Crisis, part 1 is ready" in out
    code, out = tito("milestone", "status", "--detailed", cwd=ws.root)
    assert "best 100.00%" in out and "part 2: A hidden layer" in out
    code, out = tito("milestone", "celebrate", "01", cwd=ws.root)
    assert code == 0 and "MILESTONE ACHIEVED" in out and "100.00%" in out and "seed 0" in out
    code, out = tito("milestone", "timeline", cwd=ws.root)
    assert code == 0 and "1958" in out and "2018" in out and "✓" in out
    code, out = tito("milestone", "timeline", "--horizontal", cwd=ws.root)
    assert code == 0 and out.count("──") == 5
    code, out = tito("milestone", "next", cwd=ws.root)
    assert code == 0 and "tito milestone run 02" in out
    code, out = tito("milestone", "list", "--simple", cwd=ws.root)
    assert "01 1958 The Perceptron - COMPLETE" in out


def test_celebrate_refuses_what_was_not_achieved(tmp_path):
    ws = make_ws(tmp_path / "ws", FOUNDATION)
    code, out = tito("milestone", "celebrate", "02", cwd=ws.root)
    one_line_error(code, out, "has not been achieved yet", "tito milestone run 02")


def test_test_command_evaluates_without_recording(tmp_path):
    ws = make_ws(tmp_path / "ws", FOUNDATION)
    code, out = tito("milestone", "test", "01", cwd=ws.root)
    assert code == 0 and "PASS" in out and "ACHIEVED" not in out, out
    assert achievements(ws) == {}


def test_reference_run_outside_a_workspace_records_nothing(tmp_path):
    code, out = tito("milestone", "run", "01", "--reference", cwd=tmp_path)
    assert code == 0 and "MILESTONE ACHIEVED" in out and "not recorded" in out, out
    runs = list((tmp_path / "cache").glob("tinytorch/runs/01_perceptron/*-reference/part1"))
    assert len(runs) == 1 and (runs[0] / "decision_boundary.png").is_file()
    assert not list(tmp_path.glob("**/.tito"))


def test_quick_runs_are_never_recorded(tmp_path):
    ws = make_ws(tmp_path / "ws", FOUNDATION)
    code, out = tito("milestone", "run", "01", "--quick", cwd=ws.root)
    assert code == 0 and "not recorded" in out, out
    assert achievements(ws) == {}


def test_skip_checks_runs_a_locked_part_and_names_the_missing_module(tmp_path):
    ws = make_ws(tmp_path / "ws", FOUNDATION)
    code, out = tito("milestone", "run", "02", "--part", "2", "--skip-checks", cwd=ws.root)
    assert code == 1, out
    assert "--skip-checks" in out and "✗ 04 losses" in out
    assert "is not in your tinytorch package" in out and "Nothing was recorded" in out
    assert "tito module complete 05" in out or "tito module complete 04" in out
    assert "ACHIEVED" not in out and achievements(ws) == {}
