"""`tito grade`: a class of three prepared workspaces on the fake course (tests/helpers_course.py)
- one complete, one with a failing module, one whose code hangs - graded through the real CLI,
then the CSV and HTML it wrote checked value by value; the runner's bounds (time, output, file
size) one by one; an nbgrader submitted/ tree; and `tito grade release` accepted by real nbgrader
(generate_assignment, then autograde of a solved and an unsolved submission).
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers_course import make_fake_sources, reference_solution, run_cli, solve, take_back

from tito import grading, milestone_work, notebooks, registry, state
from tito.errors import TitoError
from tito.workspace import Sources, export, init_workspace, sha256

MIN_TIMEOUT = 8.0  # seconds per learner-module; at least 6x a fake check run on this machine now
M01, M02, M03 = (registry.get_module(i) for i in ("01", "02", "03"))


def _wrong(m, old: str, new: str) -> str:
    text = reference_solution(m)
    assert old in text
    return text.replace(old, new)


def _dead(pid: int) -> bool:
    """Gone, or a zombie nobody has reaped yet (PID 1 in a container may never reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    """Three learners graded by `tito grade` (CLI, 3 jobs): (folder, out dir, stdout, seconds,
    pid of the process the hanging learner's code started, the time limit used)."""
    tmp = tmp_path_factory.mktemp("class")
    src = make_fake_sources(tmp / "course")
    folder = tmp / "class"
    # alice: every module done, milestone 01 achieved and scored by `tito milestone submit`
    alice = init_workspace(folder / "alice", solutions=True, src=src)
    hashes = {m.id: sha256(alice.exported_file(m)) for m in (M01, M02, M03)}
    state.record_achievement(alice.root, "01", 1, {
        "metrics": {"train_acc": 1.0, "test_acc": 0.9875, "loss_drop": 0.8, "weights_changed": True},
        "seed": 0, "duration_s": 2.0, "modules": hashes, "run_dir": ""})
    # a passing `tito milestone submit 01`, recorded the way that command records it
    lines = [("model", 25, True, "accuracy 99.5%"), ("training", 25, True, "loss fell 80%"),
             ("visualisation", 20, True, "2 plots"), ("systems analysis", 20, True, "linear"),
             ("comparison", 10, False, "ReLU run missing")]
    milestone_work.record_submission(alice.root, "01", {"score": 90.0, "pass_mark": 80, "lines": [
        {"name": n, "weight": w, "points": w if ok else 0, "passed": ok, "evidence": e}
        for n, w, ok, e in lines]})
    # bob: 01 and 02 done; his 03 adds the wrong number
    bob = init_workspace(folder / "bob", src=src)
    for m in (M01, M02):
        solve(bob, m)
        export(bob, m)
    bob.working_file(M03).write_text(_wrong(M03, "return x + 3", "return x + 99"))
    # carol: 01 done; her 02 hangs (after starting a process of its own); 03 untouched (stubs)
    carol = init_workspace(folder / "carol", src=src)
    solve(carol, M01)
    export(carol, M01)
    pidfile = tmp / "carol-child.pid"
    carol.working_file(M02).write_text(_wrong(M02, "    return x + 2\n", f"""\
    import subprocess, sys
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    open({str(pidfile)!r}, "w").write(str(child.pid))
    while True:
        pass
"""))
    (folder / "notes").mkdir()  # not a learner: skipped
    out = tmp / "grades"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Sources, "installed", staticmethod(lambda: src))
        # a small time limit, but one a normal check run clears on this machine as loaded as it is
        start = time.monotonic()
        learner = grading.Learner("alice", alice.root, grading.WORKSPACE)
        assert grading.run_module(M01, grading.learner_files(learner, M01, src), src).status == grading.PASS
        timeout = round(max(MIN_TIMEOUT, 6 * (time.monotonic() - start)))
        start = time.monotonic()
        code, stdout, stderr = run_cli(["grade", str(folder), "-m", "01-03", "--timeout",
                                        str(timeout), "-j", "3", "--out", str(out)])
        seconds = time.monotonic() - start
    assert code == 0, stdout + stderr
    return folder, out, stdout, seconds, int(pidfile.read_text()), timeout


def _rows(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as fh:
        return {r["learner"]: r for r in csv.DictReader(fh)}


def test_the_class_run_finishes_within_its_time_limits(klass):
    folder, out, stdout, seconds, pid, timeout = klass
    # carol's hang costs one time limit; everything else is a few fake check runs
    assert timeout <= seconds < 2 * timeout, f"took {seconds:.0f} s with a limit of {timeout} s"
    assert "Wrote" in stdout and (out / "grades.csv").exists() and (out / "grades.html").exists()
    deadline = time.monotonic() + 10
    while not _dead(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _dead(pid), "the process the hanging check started outlived the time limit"


def test_the_csv_has_one_row_per_learner_with_the_right_values(klass):
    rows = _rows(klass[1])
    assert sorted(rows) == ["alice", "bob", "carol"]
    a, b, c = rows["alice"], rows["bob"], rows["carol"]
    assert [a[m.key] for m in (M01, M02, M03)] == ["pass", "pass", "pass"]
    assert [b[m.key] for m in (M01, M02, M03)] == ["pass", "pass", "fail"]
    assert [c[m.key] for m in (M01, M02, M03)] == ["pass", "timeout", "fail"]
    assert (a["modules_passed"], b["modules_passed"], c["modules_passed"]) == ("3", "2", "1")
    assert a["modules_graded"] == "3"
    # the fake checks: 3 per module; bob's +99 fails the two that call value(), passes twice()
    assert (a["03_layers_passed"], a["03_layers_total"]) == ("3", "3")
    assert (b["03_layers_passed"], b["03_layers_total"]) == ("1", "3")
    assert (c["03_layers_passed"], c["03_layers_total"]) == ("0", "3")
    assert set(b["failing_checks"].split("; ")) == {"03_layers::test_value",
                                                    "03_layers::test_prereqs_are_the_learners"}
    assert f"02_activations: timeout: stopped at the time limit of {klass[5]} s" in c["problems"]
    assert not a["problems"] and not b["problems"]
    assert (a["recorded_complete"], b["recorded_complete"], c["recorded_complete"]) == (
        " ".join(m.id for m in registry.built_modules()), "01 02", "01")
    # milestones: alice's measured values, code unchanged since, her rubric score
    assert a["milestone_parts_achieved"] == "1" and a["m01_perceptron_parts"] == "1"
    assert a["m01_perceptron_values"] == ("part 1: train_acc=1 test_acc=0.9875 loss_drop=0.8 "
                                          "weights_changed=1")
    assert a["m01_perceptron_code_changed"] == ""
    assert (a["m01_perceptron_rubric"], a["m01_perceptron_rubric_max"]) == ("90", "100")
    assert b["m01_perceptron_parts"] == "0" and b["m01_perceptron_rubric"] == ""


def test_the_html_report_shows_modules_milestones_rubric_and_common_failures(klass):
    page = (klass[1] / "grades.html").read_text(encoding="utf-8")
    assert '<meta name="viewport"' in page and "<script" not in page
    assert not re.search(r'(src|href)="(?!data:|#)', page)  # nothing fetched from anywhere
    sections = dict(re.findall(r"<h2>([^<]+)</h2>(.*?)(?=<h2>|</main>)", page, re.S))
    glance = sections["Modules completed"]
    rows = dict(re.findall(r'<a href="#learner-(\w+)">.*?</td><td>(\d/3)</td>', glance))
    assert rows == {"alice": "3/3", "bob": "2/3", "carol": "1/3"}
    assert glance.count(">timeout<") == 1 and ">fail 1/3<" in glance and ">fail 0/3<" in glance
    ms = sections["Milestones achieved"]
    assert "train_acc 100.00%" in ms and "test_acc 98.75%" in ms and "rubric 90/100" in ms
    common = sections["Most common failing checks"]
    counts = dict(re.findall(r"<code>(\w+)</code></td><td>(\d/3)</td>", common))
    assert "<td>not written yet (raise NotImplementedError())</td>" in common  # test_twice: stubs
    assert counts == {"test_prereqs_are_the_learners": "2/3", "test_value": "2/3",
                      "test_twice": "1/3"}
    assert common.index("test_prereqs_are_the_learners") < common.index("test_twice")
    learners = sections["Learners"]
    carol = learners[learners.index('id="learner-carol"'):]
    assert "02_activations" in carol and "stopped at the time limit" in carol
    alice = learners[:learners.index('id="learner-bob"')]
    assert "<td>comparison</td><td>0</td><td>10</td><td>ReLU run missing</td>" in alice
    assert "<td>model</td><td>25</td><td>25</td>" in alice


def test_a_learner_who_prints_without_end_is_bounded(tmp_path):
    """The runner keeps a bounded head of the output, however much the code prints."""
    code, out, timed_out = grading.run_bounded(
        [sys.executable, "-c", "import sys\nfor _ in range(2000): sys.stdout.write('x' * 10000)"],
        dict(os.environ), tmp_path, timeout=60, max_output=50_000)
    assert code == 0 and not timed_out
    assert out.startswith("x" * 50_000) and len(out) < 50_200
    assert "[... 19950000 more bytes of output dropped]" in out


def test_a_learner_who_writes_a_huge_file_fails_instead_of_filling_the_disk(tmp_path):
    src = make_fake_sources(tmp_path / "course")
    ws = init_workspace(tmp_path / "ws", src=src)
    big = tmp_path / "big.bin"
    ws.working_file(M01).write_text(_wrong(M01, "    return x + 1\n", f"""\
    with open({str(big)!r}, "wb") as fh:
        for _ in range(100):
            fh.write(b"0" * 1_000_000)
    return x + 1
"""))
    learner = grading.Learner("dave", ws.root, grading.WORKSPACE)
    files = grading.learner_files(learner, M01, src)
    g = grading.run_module(M01, files, src, timeout=60, max_file=2_000_000)
    assert g.status == grading.FAIL and big.stat().st_size <= 2_000_000
    assert any("File too large" in f.message for f in g.failures), g.failures


def test_a_syntax_error_a_crash_and_a_missing_file_are_grades(tmp_path):
    src = make_fake_sources(tmp_path / "course")
    ws = init_workspace(tmp_path / "ws", src=src)
    ws.working_file(M01).write_text("def value(x)\n    return x\n")
    ws.working_file(M02).unlink()
    notebooks.notebook_path(ws.working_file(M02)).unlink()
    ws.working_file(M03).write_text(_wrong(M03, "    return x + 3\n", """\
    import os, signal
    os.kill(os.getpid(), signal.SIGSEGV)
"""))
    learner = grading.Learner("erin", ws.root, grading.WORKSPACE)
    lg = grading.grade_learner(learner, [M01, M02, M03], src, timeout=60)
    assert lg.modules["01"].status == grading.ERROR and "syntax error" in lg.modules["01"].detail
    assert lg.modules["02"].status == grading.MISSING
    assert lg.modules["03"].status == grading.ERROR
    assert lg.modules["03"].detail == "the check process was killed by signal 11 (SIGSEGV)"


def test_the_notebook_edited_last_is_graded_and_nothing_is_written(tmp_path):
    src = make_fake_sources(tmp_path / "course")
    ws = init_workspace(tmp_path / "ws", src=src)
    py = ws.working_file(M01)
    nb = notebooks.notebook_path(py)
    nb.write_text(notebooks.notebook_json(reference_solution(M01)))  # solved in Jupyter
    os.utime(nb, ns=(nb.stat().st_atime_ns, py.stat().st_mtime_ns + 10_000_000))
    before = {p: p.read_bytes() for p in ws.root.rglob("*") if p.is_file()}
    lg = grading.grade_learner(grading.Learner("finn", ws.root, grading.WORKSPACE), [M01], src,
                               timeout=60)
    assert lg.modules["01"].status == grading.PASS
    after = {p: p.read_bytes() for p in ws.root.rglob("*") if p.is_file()}
    assert after == before  # no sync, no backup, no state written


def test_an_nbgrader_submitted_tree_is_graded_per_student(tmp_path):
    src = make_fake_sources(tmp_path / "course")
    sub = tmp_path / "nbcourse" / "submitted"
    for student, text in (("gwen", reference_solution(M02)), ("hugo", src.stripped_text(M02))):
        d = sub / student / M02.key
        d.mkdir(parents=True)
        (d / f"{M02.name}.ipynb").write_text(notebooks.notebook_json(text))
    (sub / "hugo" / "week9").mkdir()  # not an assignment of the course: ignored
    learners = grading.find_learners(tmp_path / "nbcourse")
    assert [(ln.name, ln.kind, sorted(ln.notebooks)) for ln in learners] == [
        ("gwen", grading.NBGRADER, ["02"]), ("hugo", grading.NBGRADER, ["02"])]
    result = grading.grade(learners, [M01, M02], src=src, timeout=60, jobs=2)
    gwen, hugo = result.learners
    assert gwen.modules["02"].status == grading.PASS and gwen.modules["01"].status == grading.MISSING
    assert hugo.modules["02"].status == grading.FAIL and hugo.modules["02"].passed == 0
    assert {f.function for f in hugo.modules["02"].failures} == {"value", "Thing.twice"}


def test_module_ranges(monkeypatch):
    assert [m.id for m in grading.parse_modules(["01-03", "layers", "5"])] == ["01", "02", "03", "05"]
    take_back(monkeypatch)  # every module is built now: "not built yet" on a registry with 20 taken back
    with pytest.raises(TitoError, match="not built yet"):
        grading.parse_modules(["20"])


def test_a_folder_without_learners_is_one_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    code, out, err = run_cli(["grade", str(tmp_path / "empty")])
    assert code == 1 and err.startswith("Error: no learners in") and "Traceback" not in err


def test_rubric_scores_are_read_wherever_submit_puts_them():
    doc = {"achievements": {"01": {"1": [], "submit": [{"score": 40}, {"score": 70, "max": 80}]}},
           "submissions": {"02": [{"score": 35, "lines": [
               {"name": "model", "weight": 25, "passed": True, "evidence": "99%"},
               {"name": "plots", "weight": 20, "passed": False, "evidence": "no file"}]}]}}
    assert grading.find_rubric(doc, "01") == grading.Rubric(70.0, 80.0)
    r = grading.find_rubric(doc, "02")
    assert (r.score, r.out_of) == (35.0, 45.0)
    assert r.lines == (grading.RubricLine("model", 25.0, 25.0, "99%"),
                       grading.RubricLine("plots", 0.0, 20.0, "no file"))
    assert grading.find_rubric(doc, "03") is None
    assert grading.find_rubric({"achievements": {"01": {"submit": "garbage"}}}, "01") is None


# ---------------------------------------------------------------------------------------------
# Release, and real nbgrader
# ---------------------------------------------------------------------------------------------
def _nbgrader(course: Path, *args: str) -> float:
    import tinytorch_reference

    # autograde runs the check cells: the kernel's `tinytorch` is the reference (the modules the
    # assignment builds on), the submission's own definitions are laid over it by check()
    env = {**os.environ, "PYTHONPATH": str(tinytorch_reference.location()),
           "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return time.monotonic() - start


def _cells(path: Path) -> list:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_release_is_accepted_by_real_nbgrader(tmp_path):
    """generate_assignment on tito's source gives tito's release; autograde scores a solved
    copy of tito's release full marks and the untouched release zero. One module (05, the
    fastest checks); measured on the 2-core machine: about 25 s generate + 40 s autograde (two
    students) under load."""
    pytest.importorskip("nbgrader", reason="nbgrader not installed (pip install -e '.[grading]')")
    m = registry.get_module("05")
    course = tmp_path / "course"
    written = grading.release(course, [m])
    source, released = (course / d / m.key / f"{m.name}.ipynb" for d in ("source", "release"))
    assert set(written) == {source, released, course / "nbgrader_config.py"}
    with pytest.raises(TitoError, match="exists"):
        grading.release(course, [m])  # never replaced without --force
    learner_nb = json.loads(released.read_text(encoding="utf-8"))  # tito's, before nbgrader's

    gen = _nbgrader(course, "generate_assignment", m.key, "--create", "--force")
    theirs = _cells(released)  # nbgrader's release replaced ours: the same cells
    assert [_source(c) for c in learner_nb["cells"]] == [_source(c) for c in theirs]
    assert any("raise NotImplementedError()" in _source(c) for c in theirs)

    by_id = {c["metadata"].get("nbgrader", {}).get("grade_id"): c for c in _cells(source)}
    solved = json.loads(json.dumps(learner_nb))
    for cell in solved["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("solution"):
            cell["source"] = by_id[meta["grade_id"]]["source"]
    for student, nb in (("ada", solved), ("bo", learner_nb)):
        d = course / "submitted" / student / m.key
        d.mkdir(parents=True)
        (d / f"{m.name}.ipynb").write_text(json.dumps(nb))
    auto = _nbgrader(course, "autograde", m.key, "--create")
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        ada, bo = (gb.find_submission(m.key, s) for s in ("ada", "bo"))
        assert ada.max_score > 0 and ada.score == ada.max_score, (ada.score, ada.max_score)
        assert bo.score == 0
    print(f"nbgrader generate_assignment {gen:.1f} s, autograde (2 students) {auto:.1f} s")
