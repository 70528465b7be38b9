"""`tito module ...`, `tito init`, `tito status` through the real CLI entry point, on a fake course.

Every bad input must give a one-line error (plus an optional hint line), exit 1, no traceback.
"""

import json
import os
import subprocess
import sys

import pytest
from helpers_course import make_fake_sources, run_cli, solve, take_back

from tito import registry, state
from tito.workspace import Sources, init_workspace


@pytest.fixture()
def src(tmp_path, monkeypatch):
    take_back(monkeypatch)  # module 20 "coming": the fake course has a coming module to show
    fake = make_fake_sources(tmp_path / "course")
    monkeypatch.setattr(Sources, "installed", staticmethod(lambda: fake))
    monkeypatch.delenv("TITO_WORKSPACE", raising=False)
    monkeypatch.delenv("TITO_CHECK_TIMEOUT", raising=False)
    return fake


@pytest.fixture()
def ws(tmp_path, src):
    return init_workspace(tmp_path / "ws", src=src, activate=True)  # as `tito init` does


@pytest.fixture()
def tito(capsys, ws):
    """tito(*args) -> (code, out, err), run inside the workspace."""
    return lambda *args, cwd=ws.root: run_cli(list(args), capsys, cwd=cwd)


def one_line_error(code, err, *fragments):
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert code == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("Error: ") and len(lines) <= 2, err
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines


def progress_bytes(ws):
    return (ws.root / ".tito" / "progress.json").read_bytes()


def test_init_and_status(tmp_path, src, capsys):
    code, out, _ = run_cli(["init", str(tmp_path / "new")], capsys)
    assert code == 0 and (tmp_path / "new" / "modules" / "01_tensor" / "tensor.py").exists()
    code, out, _ = run_cli(["status"], capsys, cwd=tmp_path / "new" / "modules")
    assert code == 0 and "01" in out and "locked" in out and "coming" in out
    assert "tito module start 01" in out
    code, out, _ = run_cli(["module", "status", "--workspace", str(tmp_path / "new")], capsys)
    assert code == 0 and "available" in out


def test_list_needs_no_workspace(src, capsys, tmp_path):
    code, out, _ = run_cli(["module", "list"], capsys, cwd=tmp_path)
    assert code == 0 and "convolutions" in out and "capstone" in out


def test_no_workspace(src, capsys, tmp_path):
    code, _, err = run_cli(["module", "status"], capsys, cwd=tmp_path)
    one_line_error(code, err, "no TinyTorch workspace found")


def test_unknown_module_suggests(tito):
    code, _, err = tito("module", "start", "layer")
    lines = one_line_error(code, err, "unknown module 'layer'")
    assert "layers" in lines[1]


def test_coming_module_refused(tito):
    coming = next(m for m in registry.MODULES if not m.built)  # the capstone, at least
    code, _, err = tito("module", "start", coming.id, "--force")
    one_line_error(code, err, f"{coming} is not built yet")


def test_locked_module_refused_with_commands(tito):
    code, _, err = tito("module", "start", "layers")
    lines = one_line_error(code, err, "locked", "01 tensor", "02 activations")
    assert "next: tito module start 01" in lines[1]  # the module to work on, not a chain
    code, out, _ = tito("module", "start", "layers", "--force")
    assert code == 0 and "value, Thing.twice" in out and "layers.py" in out


def test_corrupt_progress(tito, ws):
    (ws.root / ".tito" / "progress.json").write_text("{oops")
    code, _, err = tito("status")
    one_line_error(code, err, "corrupt", "moved aside")
    assert list((ws.root / ".tito").glob("progress.json.corrupt-*"))


def test_syntax_error_in_learner_file(tito, ws):
    m = registry.get_module(1)
    ws.working_file(m).write_text("def value(x):\n    return x +\n")
    before = progress_bytes(ws)
    for cmd in ("test", "complete"):
        code, _, err = tito("module", cmd, "01")
        one_line_error(code, err, "tensor.py:2", "syntax error")
    assert progress_bytes(ws) == before and not ws.exported_file(m).exists()


def test_hanging_check_hits_the_time_limit(tito, ws, monkeypatch):
    m = registry.get_module(1)
    ws.working_file(m).write_text("def value(x):\n    while True:\n        pass\n\n"
                                  "class Thing:\n    def twice(self, x):\n        return 2 * x\n")
    monkeypatch.setenv("TITO_CHECK_TIMEOUT", "3")
    code, _, err = tito("module", "complete", "01")
    one_line_error(code, err, "did not finish within 3 s", "01 tensor")
    assert not ws.exported_file(m).exists() and ws.completed() == set()


def test_stub_fails_names_functions_exports_nothing(tito, ws):
    before = progress_bytes(ws)
    code, out, _ = tito("module", "complete", "01")
    assert code == 1 and "value" in out and "Thing.twice" in out and "not implemented" in out
    assert "nothing was exported" in out
    assert progress_bytes(ws) == before and not ws.exported_file(registry.get_module(1)).exists()


def test_wrong_answer_names_the_function(tito, ws):
    m = registry.get_module(1)
    solve(ws, m)
    ws.working_file(m).write_text(ws.working_file(m).read_text().replace("return x + 1", "return x"))
    code, out, _ = tito("module", "test", "01")
    assert code == 1 and "value" in out and "wrong sum" in out


def test_subset_with_k_and_task(tito, ws):
    m = registry.get_module(1)
    head, tail = ws.working_file(m).read_text().rsplit("raise NotImplementedError()", 1)
    ws.working_file(m).write_text(head + "return 2 * x" + tail)  # the second stub: Thing.twice
    code, out, _ = tito("module", "test", "01", "--task", "twice")
    assert code == 0 and "1 passed" in out
    code, out, _ = tito("module", "test", "01", "-k", "twice")
    assert code == 0 and "1 passed" in out
    code, out, _ = tito("module", "test", "01", "-k", "no_such_check")
    assert code == 1 and "no checks were collected" in out


def test_complete_in_order_unlocks_exactly_per_registry(tito, ws):
    seen = {}
    for m in map(registry.get_module, [f"{i:02d}" for i in range(1, 14)]):  # through the GPT
        solve(ws, m)
        code, out, err = tito("module", "complete", m.id)
        assert code == 0, out + err
        assert ws.exported_file(m).read_text() == ws.working_file(m).read_text()
        seen[m.id] = out.count("milestone unlocked")
        if m.id == "03":
            assert "Milestone 01: The Perceptron (1958)" in out and "tito milestone run 01" in out
            assert "Milestone 02: The XOR Crisis (1969)" in out
        if m.id == "08":
            assert "Milestone 03: The MLP Revival (1986)" in out
        if m.id == "07":
            assert "Milestone 02, part 2: A hidden layer and backprop solve it" in out
        if m.id == "13":
            assert "Milestone 05: The Transformer Era (2017)" in out
    assert seen == {"01": 0, "02": 0, "03": 2, "04": 0, "05": 0, "06": 0, "07": 1, "08": 1, "09": 1,
                    "10": 0, "11": 0, "12": 0, "13": 1}
    rec = state.load_progress(ws.root)["modules"]["03"]
    assert len(rec["sha256"]) == 64 and rec["completed_at"]
    code, out, _ = tito("module", "complete", "03")  # again: passes, unlocks nothing new
    assert code == 0 and "unlocked" not in out


def test_reset_list_and_restore(tito, ws):
    m = registry.get_module(1)
    ws.working_file(m).write_text("# mine\n")
    code, out, _ = tito("module", "reset", "01")
    assert code == 0 and "saved as" in out and "BEGIN" not in ws.working_file(m).read_text()
    code, out, _ = tito("module", "reset", "01", "--list-backups")
    assert code == 0 and "tensor.py" in out
    code, out, _ = tito("module", "reset", "01", "--restore")
    assert code == 0 and ws.working_file(m).read_text() == "# mine\n"
    code, _, err = tito("module", "reset", "01", "--restore", "--backup", "zzz")
    one_line_error(code, err, "no backup")


def test_guard_refuses_a_tinytorch_from_elsewhere(src, tmp_path):
    """The checks' conftest stops the session if tinytorch is not the package under test."""
    elsewhere = tmp_path / "elsewhere" / "tinytorch"
    elsewhere.mkdir(parents=True)
    m = registry.get_module(1)
    env = {**os.environ, "TITO_EXPECT_TINYTORCH": str(elsewhere),
           "PYTHONPATH": str(src.reference.parent)}
    proc = subprocess.run([sys.executable, "-m", "pytest", str(src.check_file(m)), "-q",
                           "-p", "no:cacheprovider"], env=env, capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode != 0 and "not from the package under test" in proc.stdout + proc.stderr


def test_report_json_written_by_conftest(src, tmp_path):
    from tito import checkrun

    m = registry.get_module(1)
    files = {p.name: p for p in src.support_files()}
    files[m.file_name] = src.stripped_text(m)
    report = checkrun.run_checks(m, files, src=src)
    assert not report.ok and {r.kind for r in report.failures()} == {"stub"}
    assert report.functions_at_fault() == ["value", "Thing.twice"]
    assert json.dumps([r.__dict__ for r in report.results])  # plain data


def test_system_doctor(tito, ws):
    code, out, _ = tito("system", "doctor")
    assert code == 0, out
    for item in ("python", "numpy", "BLAS", "workspace", "modules complete", "torch"):
        assert item in out
    assert str(ws.root) in out


def test_system_doctor_with_a_bad_workspace(src, capsys, tmp_path):
    code, out, _ = run_cli(["system", "doctor", "--workspace", str(tmp_path / "nope")], capsys)
    assert code == 1 and "not a TinyTorch workspace" in out


def test_exception_in_learner_code_points_at_their_file(tito, ws):
    m = registry.get_module(1)
    solve(ws, m)
    text = ws.working_file(m).read_text().replace("return x + 1", "return x + None")
    ws.working_file(m).write_text(text)
    line = text.splitlines().index("    return x + None") + 1
    code, out, _ = tito("module", "test", "01", "-v")
    assert code == 1 and f"value (modules/01_tensor/tensor.py:{line})" in out
    assert "TypeError" in out and "stage/tinytorch" not in out


def test_test_reads_the_notebook_when_it_was_edited_last(tito, ws):
    """The learner edited the .ipynb (Jupyter, Colab): that is what gets checked, the .py is
    brought up to date (the old one backed up), and the output says which file was read."""
    import os

    import nbformat

    m = registry.get_module(1)
    py = ws.working_file(m)
    nb_path = py.with_suffix(".ipynb")
    nb = nbformat.read(nb_path, as_version=4)
    cell = next(c for c in nb.cells if "def value" in c.source)
    cell.source = cell.source.replace("raise NotImplementedError()", "return x + 1", 1)
    nbformat.write(nb, nb_path)
    st = py.stat()
    os.utime(nb_path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    code, out, _ = tito("module", "test", "01", "--task", "value")
    assert "read modules/01_tensor/tensor.ipynb (edited last" in out, out
    assert "tensor.py updated from it" in out, out
    assert code == 0 and "1 passed" in out, out
    assert "return x + 1" in py.read_text()
    assert list(ws.backups_dir(m).glob("*-tensor.py"))  # the overwritten .py was kept
