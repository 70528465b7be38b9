"""Every module is a notebook lesson: it executes in a real Jupyter kernel, its check cells pass
on the reference and fail on the stripped file (naming the function), and nbgrader releases the
same learner file as tito's stripper.

The notebooks run with nbclient and ipykernel (the `dev` extra); nbgrader is the `grading` extra.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_course import without_torch

import tinytorch_reference
from tito import notebooks, registry
from tito.workspace import Sources

nbclient = pytest.importorskip("nbclient", reason="nbclient not installed (pip install -e '.[dev]')")
nbformat = pytest.importorskip("nbformat", reason="nbformat not installed (pip install -e '.[dev]')")
pytest.importorskip("ipykernel", reason="ipykernel not installed (pip install -e '.[dev]')")

SRC = Sources.installed()
BUILT = [m for m in registry.built_modules() if SRC.reference_file(m).exists()]


def _is_check(cell) -> bool:
    return cell.cell_type == "code" and "from tito.notebook import check" in cell.source


def execute(text: str, cwd: Path, allow_errors: bool = False, timeout: int = 600):
    """Run a module file as a notebook in a fresh python3 kernel whose `tinytorch` is the reference,
    as a plain install has it: without PyTorch (the checks' torch oracles skip; tito dev verify and
    the parity tests run them). Importing torch was ~2 s of CPU in each kernel."""
    nb = nbformat.reads(notebooks.notebook_json(text), as_version=4)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(without_torch(cwd / "no-torch")), str(tinytorch_reference.location()),
         *filter(None, [os.environ.get("PYTHONPATH")])]),
        "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1"}
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                     allow_errors=allow_errors,
                                     resources={"metadata": {"path": str(cwd)}})
    old = dict(os.environ)
    os.environ.update(env)  # the kernel inherits this process's environment
    # ... as a learner's kernel: writing bytecode, so pytest keeps the rewritten check files
    # (measured: module 06's notebook 19 s -> 12 s; each check cell re-rewrote its file without)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb


def _text(cell) -> str:
    parts = []
    for o in cell.get("outputs", []):
        parts.append(o.get("text", "") or "".join(o.get("data", {}).get("text/plain", "")))
        if o.get("output_type") == "error":
            parts.append(f"{o['ename']}: {o['evalue']}")
    return "\n".join(parts)


@pytest.mark.parametrize("m", BUILT, ids=str)
def test_reference_notebook_runs_and_its_checks_pass(m, tmp_path):
    """Top to bottom in a real kernel: no cell fails, and every check cell reports passes."""
    nb = execute(SRC.reference_text(m), tmp_path)
    checks = [c for c in nb.cells if _is_check(c)]
    assert checks, f"{m}: no check cell"
    for cell in checks:
        out = _text(cell)
        assert " passed" in out and "failed" not in out, f"{m}: check cell\n{cell.source}\n{out}"


@pytest.mark.parametrize("m", BUILT, ids=str)
def test_stripped_notebook_check_cells_fail_naming_the_function(m, tmp_path):
    """The learner's starting notebook: every check cell fails, and says what to write."""
    nb = execute(SRC.stripped_text(m), tmp_path, allow_errors=True)
    writes = set(notebooks_functions(m))
    for cell in (c for c in nb.cells if _is_check(c)):
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        assert errors and errors[0]["ename"] == "CheckFailed", f"{m}: check cell passed on the stub\n{cell.source}"
        named = errors[0]["evalue"].split(" - fix ")[-1]
        assert any(fn in named for fn in writes), f"{m}: {errors[0]['evalue']!r} names no function to write"


def notebooks_functions(m) -> list[str]:
    from tito.strip import solution_functions

    return solution_functions(SRC.reference_text(m))


@pytest.mark.parametrize("m", BUILT, ids=str)
def test_module_file_is_a_lesson(m):
    assert notebooks.lesson_problems(SRC.reference_text(m)) == []


@pytest.mark.parametrize("m", BUILT, ids=str)
def test_importing_the_module_runs_no_cell(m):
    """Importing the lesson as a module prints nothing: try/check cells are guarded."""
    code = (f"import tinytorch_reference; tinytorch_reference.activate(); "
            f"import {m.package_module}")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "MPLBACKEND": "Agg"}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == "", (proc.stdout, proc.stderr)


def test_nbgrader_releases_the_same_learner_files(tmp_path):
    """Real nbgrader `generate_assignment` on the module notebooks gives, cell for cell, the
    learner file `tito` writes (hints kept, the same stub)."""
    if shutil.which("nbgrader") is None and not _has("nbgrader"):
        pytest.skip("nbgrader not installed (pip install -e '.[grading]')")
    course = tmp_path / "course"
    source = course / "source" / "modules"
    source.mkdir(parents=True)
    for m in BUILT:
        (source / f"{m.key}.ipynb").write_text(notebooks.notebook_json(SRC.reference_text(m)))
    (course / "nbgrader_config.py").write_text("c = get_config()\nc.CourseDirectory.root = "
                                               f"{str(course)!r}\n")
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "modules",
                           "--force", "--create"], cwd=course, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    for m in BUILT:
        released = json.loads((course / "release" / "modules" / f"{m.key}.ipynb").read_text())
        ours = notebooks.parse(SRC.stripped_text(m))
        theirs = [("".join(c["source"]) if isinstance(c["source"], list) else c["source"])
                  for c in released["cells"]]
        assert [c.source for c in ours.cells] == theirs, f"{m}: nbgrader's release differs"
        graded = [c for c in released["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
        assert graded and all(c["metadata"]["nbgrader"].get("locked") for c in graded)


def _has(mod: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(mod) is not None


# ---------------------------------------------------------------------------------------------
# The learner's .py/.ipynb pair
# ---------------------------------------------------------------------------------------------
def _pair(tmp_path, text: str) -> Path:
    py = tmp_path / "layers.py"
    notebooks.write_pair(py, text)
    st = py.stat()
    os.utime(notebooks.notebook_path(py), ns=(st.st_atime_ns, st.st_mtime_ns))
    return py


def _touch_later(path: Path, than: Path) -> None:
    st = than.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))


TEXT = "# %% [markdown]\n# # Title\n\n# %%\ndef f():\n    return 1\n"


def test_sync_takes_the_notebook_when_it_was_edited_last(tmp_path):
    py = _pair(tmp_path, TEXT)
    nb_path = notebooks.notebook_path(py)
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells[1].source = "def f():\n    return 2"
    nbformat.write(nb, nb_path)
    _touch_later(nb_path, py)
    result = notebooks.sync(py, tmp_path / "backups")
    assert result.read == nb_path and result.updated == py
    assert "return 2" in py.read_text() and "read layers.ipynb" in result.note()
    assert "return 1" in result.backup.read_text()  # the overwritten .py was kept
    again = notebooks.sync(py, tmp_path / "backups")  # in step now: nothing written
    assert again.updated is None and again.backup is None


def test_sync_takes_the_py_when_it_was_edited_last_keeping_outputs(tmp_path):
    py = _pair(tmp_path, TEXT + "\n# %%\nprint('hi')\n")
    nb_path = notebooks.notebook_path(py)
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi\n")]
    nbformat.write(nb, nb_path)
    os.utime(py, ns=(py.stat().st_atime_ns, nb_path.stat().st_mtime_ns + 10_000_000))
    py.write_text(py.read_text().replace("return 1", "return 3"))
    _touch_later(py, nb_path)
    result = notebooks.sync(py, tmp_path / "backups")
    assert result.read == py and result.updated == nb_path and result.note() is None
    nb = nbformat.read(nb_path, as_version=4)
    assert "return 3" in nb.cells[1].source
    assert nb.cells[2].outputs and nb.cells[2].outputs[0]["text"] == "hi\n"  # kept
    assert notebooks.sync(py).updated is None  # not flip-flopping back


def test_a_broken_notebook_is_a_clear_error(tmp_path):
    py = _pair(tmp_path, TEXT)
    nb_path = notebooks.notebook_path(py)
    nb_path.write_text("{ not json")
    _touch_later(nb_path, py)
    from tito.errors import TitoError

    with pytest.raises(TitoError, match="not a readable notebook"):
        notebooks.sync(py)
    assert "return 1" in py.read_text()  # the .py is untouched
