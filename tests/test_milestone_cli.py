"""`tito milestone ...` through the real CLI: list, info, run, status, timeline, test, next,
celebrate - in staged workspaces (reference modules copied in, marked complete). And the
messages: coming milestones, the one command that unlocks a locked one, commands that never
break across lines (narrow terminals, logs), no raw backticks, 'Saved in' only for real files."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from helpers_course import run_cli
from rich.console import Console
from rich.panel import Panel
from test_milestones import achievements, make_ws, tito

from tito import cli, registry, state, ui
from tito import milestone_run as mr
from tito.commands import milestone as milestone_cmd
from tito.registry import Milestone, Part

FOUNDATION = ("01", "02", "03")
TO_09 = tuple(f"{i:02d}" for i in range(1, 10))
TO_13 = tuple(f"{i:02d}" for i in range(1, 14))
BUILT_MILESTONES = ("01", "02", "03", "04", "05", "06")
COMING = ("06",)  # with module 19 marked unbuilt (the `coming_19` fixture): a milestone "coming"


@pytest.fixture
def coming_19(monkeypatch):
    """The registry as it was before module 19 was built: milestone 06 is coming (every milestone
    is built now, so the coming state is tested on a registry with one module taken back)."""
    import dataclasses

    modules = tuple(dataclasses.replace(m, built=False) if m.id == "19" else m for m in registry.MODULES)
    monkeypatch.setattr(registry, "MODULES", modules)
    monkeypatch.setattr(registry, "_BY_ID", {m.id: m for m in modules})


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TITO_WORKSPACE", raising=False)


def one_line_error(code: int, out: str, *fragments: str) -> str:
    assert code == 1, out
    assert "Traceback" not in out and "`" not in out, out
    first = next(line for line in out.splitlines() if line.startswith("Error: "))
    for f in fragments:
        assert f in out, (f, out)
    return first


def console_run(monkeypatch, *args: str, cwd: Path, width: int = 40,
                terminal: bool = True) -> tuple[int, str]:
    """`tito ARGS` through the in-process runner, printed on a console of `width` columns that
    is (terminal=True) or is not a terminal; returns (exit code, stdout + stderr)."""
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=terminal, color_system=None,
                      highlight=False)
    monkeypatch.setattr(milestone_cmd, "out", console)
    monkeypatch.setattr(cli, "err", console)
    code, out, err = run_cli(list(args), cwd=cwd)
    return code, buf.getvalue() + out + err


def assert_whole(out: str, *commands: str) -> None:
    """Each command appears whole on one line, and no line of the output ends inside one."""
    lines = [x.strip(" │╭╮╰╯") for x in out.splitlines()]
    for c in commands:
        assert any(c in x for x in lines), (c, out)
    for x in lines:
        assert not re.search(r"\btito( (module|milestone|init)( [a-z]+)?)?$", x), (x, out)


# ---------------------------------------------------------------------------------------------
# list / info / locked / unknown
# ---------------------------------------------------------------------------------------------
def test_fresh_workspace_lists_every_milestone_locked(tmp_path):
    ws = make_ws(tmp_path / "ws")
    code, out = tito("milestone", "list", cwd=ws.root)
    assert code == 0 and out.count("LOCKED") == 6 and "COMING" not in out, out
    code, out = tito("milestones", "list", "--simple", cwd=ws.root)  # the alias
    lines = {x[:2]: x for x in out.splitlines() if x.strip()}
    assert code == 0 and len(lines) == 6, out
    assert all("LOCKED" in lines[i] for i in BUILT_MILESTONES), out
    assert "needs 01-09, 14-19" in lines["06"] and "needs 01-08, 10-13" in lines["05"], out


def test_fresh_workspace_lists_built_milestones_locked_and_the_others_coming(tmp_path, coming_19):
    ws = make_ws(tmp_path / "ws")
    code, out = tito("milestone", "list", cwd=ws.root)
    assert code == 0 and out.count("LOCKED") == 5 and out.count("COMING") == 1, out
    code, out = tito("milestones", "list", "--simple", cwd=ws.root)  # the alias
    lines = {x[:2]: x for x in out.splitlines() if x.strip()}
    assert code == 0 and len(lines) == 6, out
    assert all("LOCKED" in lines[i] for i in BUILT_MILESTONES if i not in COMING), out
    assert lines["01"].startswith("01 1958 The Perceptron") and "needs 01-03" in lines["01"]
    for i in COMING:
        assert "COMING" in lines[i] and "LOCKED" not in lines[i] and "not built yet" in lines[i]
    assert "not built yet" in lines["06"] and "needs 01-08, 10-13" in lines["05"], out


def test_after_modules_01_to_03_milestones_01_and_02_are_ready(tmp_path):
    ws = make_ws(tmp_path / "ws", FOUNDATION)
    code, out = tito("milestone", "list", "--simple", cwd=ws.root)
    rows = {x[:2]: x for x in out.splitlines() if x[:2].isdigit()}
    assert "READY TO RUN" in rows["01"] and "READY TO RUN" in rows["02"], out
    assert "LOCKED" in rows["03"] and "part 2 needs 04-07" in rows["02"]


def test_info_shows_history_modules_and_conditions(tmp_path):
    ws = make_ws(tmp_path / "ws", ("01", "02"))
    code, out = tito("milestone", "info", "perceptron", cwd=ws.root)
    assert code == 0
    assert "1958" in out and "Frank Rosenblatt" in out
    assert "✓ 01 tensor" in out and "✗ 03 layers" in out
    assert "100% training accuracy" in out and "LOCKED" in out
    assert "Unlock it with modules 03: next tito module start 03" in out
    assert "tito module complete" not in out and "`" not in out


def test_run_refuses_a_locked_milestone_naming_the_one_module_to_start(tmp_path):
    ws = make_ws(tmp_path / "ws", FOUNDATION)
    code, out = tito("milestone", "run", "03", cwd=ws.root)
    one_line_error(code, out, "is locked", "04 losses", "08 training",
                   "next: tito module start 04", "--skip-checks")
    assert "tito module complete" not in out and out.count("tito module") == 1, out
    assert achievements(ws) == {}
    code, out = tito("milestone", "run", "02", "--part", "2", cwd=ws.root)
    one_line_error(code, out, "part 2 is locked", "07 optimizers", "tito module start 04")


def test_the_module_to_start_is_one_whose_prerequisites_are_complete():
    # a part needing only module 09: its first missing module (09) cannot be started yet, but
    # the first missing of 09's own prerequisites can
    ms = Milestone("99", "probe", 2000, "Probe", "", "", "", ("09",),
                   (Part(1, "probe", script="x"),))
    assert mr.module_to_start(ms, ms.parts[0], set(FOUNDATION)).id == "04"
    assert mr.module_to_start(ms, ms.parts[0], {f"{i:02d}" for i in range(1, 8)}).id == "09"
    assert mr.module_to_start(ms, ms.parts[0], set(TO_09)) is None
    m03 = registry.get_milestone("03")
    assert mr.module_to_start(m03, m03.parts[0], {"01", "02", "03", "05"}).id == "04"
    assert "next `tito module start 04`" in mr.next_step_text({"01", "02", "03"}, {
        "01": {"1": [{}]}, "02": {"1": [{}]}})  # 02 part 2 needs 04-07


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
    assert "COMING" not in out
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
    assert "`" not in out, out
    saved = next(x for x in out.splitlines() if x.startswith("Saved in "))
    folder, names = saved.removeprefix("Saved in ").split("/: ")
    assert "decision_boundary.png" in names and "metrics.json" in names
    assert all((Path(folder) / n).is_file() for n in names.split(", ")), saved
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


# ---------------------------------------------------------------------------------------------
# Coming: milestones whose modules are not built yet
# ---------------------------------------------------------------------------------------------
def test_coming_is_derived_from_the_registry(coming_19):
    for ms in registry.MILESTONES:
        needs_unbuilt = any(not registry.get_module(m).built for m in ms.modules_for(ms.parts[0]))
        assert (ms.id in COMING) == needs_unbuilt
        assert (mr.milestone_status(ms, set(), {}) == mr.COMING) == needs_unbuilt
    everything = {m.id for m in registry.MODULES}  # even a (corrupt) state claiming all 20
    assert mr.milestone_status(registry.get_milestone("06"), everything, {}) == mr.COMING


@pytest.mark.parametrize("args", [("run", "06"), ("run", "06", "--reference"),
                                  ("run", "06", "--skip-checks"), ("test", "06"),
                                  ("celebrate", "06"), ("run", "mlperf", "--part", "1")])
def test_a_coming_milestone_is_not_built_yet_in_one_line(tmp_path, args, coming_19):
    ws = make_ws(tmp_path / "ws", TO_09)
    for cwd in (ws.root, tmp_path):  # in a workspace or not: the same one line
        code, out = tito("milestone", *args, cwd=cwd)
        first = one_line_error(code, out, "is not built yet")
        assert out.strip() == first and "locked" not in out.lower(), out
    assert not (ws.root / "runs").exists() and achievements(ws) == {}


def test_coming_milestones_show_as_coming_everywhere(tmp_path, coming_19):
    ws = make_ws(tmp_path / "ws", TO_13)
    code, out = tito("milestone", "info", "06", cwd=ws.root)
    assert code == 0 and "LOCKED" not in out and "locked" not in out, out
    assert "Status: · COMING" in out and "are not built yet" in out
    assert "(coming)" in out and "✓ 08 training" in out
    code, out = tito("milestone", "timeline", cwd=ws.root)
    row = next(x for x in out.splitlines() if " 2018 " in x)
    assert "(coming)" in row and "🔒" not in row, out
    code, out = tito("milestone", "timeline", "--horizontal", cwd=ws.root)
    assert "· 2018 MLPerf (coming)" in out, out
    code, out = tito("milestone", "status", "--detailed", cwd=ws.root)
    assert code == 0 and out.count("· COMING") == 1, out
    assert "Milestone 06: coming in a later release." in out


def test_after_every_milestone_next_says_the_history_is_complete(tmp_path):
    ws = make_ws(tmp_path / "ws", tuple(f"{i:02d}" for i in range(1, 20)))
    for mid in BUILT_MILESTONES:
        for p in registry.get_milestone(mid).parts:
            state.record_achievement(ws.root, mid, p.number, {"metrics": {}})
    code, out = tito("milestone", "next", cwd=ws.root)
    assert code == 0 and "every milestone is complete" in out and "coming" not in out, out
    code, out = tito("milestone", "status", cwd=ws.root)
    assert "6/6" in out, out


def test_after_every_built_milestone_next_says_the_rest_is_coming(tmp_path, coming_19):
    ws = make_ws(tmp_path / "ws", TO_13)
    for mid in BUILT_MILESTONES[:-1]:
        for p in registry.get_milestone(mid).parts:
            state.record_achievement(ws.root, mid, p.number, {"metrics": {}})
    code, out = tito("milestone", "next", cwd=ws.root)
    assert code == 0 and "every milestone built so far is complete" in out, out
    assert "milestone 06 is coming" in out and "tito module start" not in out
    code, out = tito("milestone", "status", cwd=ws.root)
    assert "5/6" in out and "14 profiling" not in out, out


# ---------------------------------------------------------------------------------------------
# Commands never break across lines; no backticks
# ---------------------------------------------------------------------------------------------
def test_command_text_wraps_between_words_never_inside_a_command():
    message = ("fix modules/03_layers/layers.py, check it with `tito module test 03`, "
               "re-export with `tito module complete 03` " + ui.keep("✓ 01 tensor") + " done")
    t = ui.text(message).text
    assert "`" not in t.plain and "tito module test 03" in t.plain
    assert [s.style for s in t.spans] == [ui.COMMAND, ui.COMMAND]
    for width in range(30, 90, 3):  # from the widest word (the path) up
        buf = io.StringIO()
        Console(file=buf, width=width, color_system=None).print(ui.text(message))
        lines = buf.getvalue().splitlines()
        assert all(len(x.rstrip()) <= width for x in lines), (width, lines)
        assert_whole(buf.getvalue(), "tito module test 03", "tito module complete 03",
                     "✓ 01 tensor")
        assert "\xa0" not in buf.getvalue()
        assert " ".join(x.strip() for x in lines) == t.plain.replace("\xa0", " ")  # nothing lost
    buf = io.StringIO()  # measured like a Text: a panel that fits its content fits it exactly
    Console(file=buf, width=80, color_system=None).print(
        Panel(ui.text("run `tito milestone run 02 --part 2`"), expand=False))
    assert buf.getvalue().splitlines()[1] == "│ run tito milestone run 02 --part 2 │"


def test_a_narrow_terminal_never_breaks_a_command(tmp_path, monkeypatch):
    ws = make_ws(tmp_path / "ws", FOUNDATION)
    code, out = console_run(monkeypatch, "milestone", "run", "03", cwd=ws.root)
    assert code == 1 and "locked: it needs" in out, out
    assert_whole(out, "tito module start 04", "--skip-checks", "05 dataloader", "08 training")
    checks = [(("milestone", "list"), ["tito milestone run ID", "--reference"]),
              (("milestone", "info", "04"), ["tito module start 04"]),
              (("milestone", "next"), ["tito milestone run 01"]),
              (("milestone", "status"), ["tito milestone run 01"]),
              (("milestone", "timeline", "--horizontal"), ["1958 Perceptron"])]
    for args, commands in checks:
        code, out = console_run(monkeypatch, *args, cwd=ws.root)
        assert code == 0 and "`" not in out, out
        assert max(len(x.rstrip()) for x in out.splitlines()) <= 40, out
        assert "…" not in out, out  # nothing cropped (the list falls back to lines)
        assert_whole(out, *commands)
        assert "\n" in out.strip()  # it did wrap: the test is not vacuous


def test_not_a_terminal_one_message_is_one_line(tmp_path, monkeypatch):
    ws = make_ws(tmp_path / "ws", FOUNDATION)
    code, out = console_run(monkeypatch, "milestone", "next", cwd=ws.root, terminal=False)
    assert code == 0 and out.count("\n") == 1 and "Next: " in out and "`" not in out, out
    code, out = console_run(monkeypatch, "milestone", "run", "03", cwd=ws.root, terminal=False)
    assert out.splitlines()[0].startswith("Error: milestone 03") and len(out.splitlines()) == 2
    assert out.splitlines()[1].strip().startswith("next: tito module start 04   (or pass"), out


def test_a_narrow_log_of_a_run_keeps_panels_in_width_and_commands_whole(tmp_path, monkeypatch):
    ws = make_ws(tmp_path / "ws", FOUNDATION)
    code, out = console_run(monkeypatch, "milestone", "run", "01", cwd=ws.root, terminal=False)
    assert code == 0 and "MILESTONE ACHIEVED" in out and "`" not in out, out
    panel = [x for x in out.splitlines() if x.startswith(("│", "╭", "╰"))]
    assert panel and all(len(x) <= 40 for x in panel), out
    saved = [x for x in out.splitlines() if x.startswith("Saved in ")]
    assert len(saved) == 1 and "decision_boundary.png, " in saved[0], out  # one line, however long
    assert saved[0].endswith(", metrics.json") and len(saved[0]) > 40
    assert_whole(out, "tito milestone run 02")


def test_no_backticks_in_what_the_commands_print(tmp_path):
    ws = make_ws(tmp_path / "ws", FOUNDATION)
    for args in (("list",), ("info", "02"), ("info", "05"), ("status", "--detailed"), ("next",),
                 ("timeline",), ("run", "04"), ("celebrate", "01")):
        code, out = tito("milestone", *args, cwd=ws.root)
        assert "`" not in out, (args, out)
    m02 = registry.get_milestone("02")
    for parts, command in (([*m02.parts], "tito milestone run 02"),
                           ([m02.parts[1]], "tito milestone run 02 --part 2")):
        buf = io.StringIO()
        Console(file=buf, width=40, color_system=None).print(ui.unlock_panel(m02, parts))
        assert "`" not in buf.getvalue()
        assert_whole(buf.getvalue(), command)


def test_saved_in_lists_only_files_that_were_written(tmp_path):
    run = tmp_path / "part1"
    run.mkdir()
    (run / "curves.png").write_bytes(b"png")
    outcome = mr.Outcome("metrics", plots=[str(run / "curves.png"), str(run / "never.png")],
                         out_dir=run)
    assert milestone_cmd._saved_files(outcome) == ["curves.png"]
    (run / "metrics.json").write_text("{}")
    assert milestone_cmd._saved_files(outcome) == ["curves.png", "metrics.json"]
    assert milestone_cmd._saved_files(mr.Outcome("crash")) == []
    assert milestone_cmd._saved_files(mr.Outcome("crash", out_dir=tmp_path / "none")) == []
