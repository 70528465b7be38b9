"""Workspaces on a fake course: init, discovery, solutions, backups, status, staging."""

from pathlib import Path

import pytest
from helpers_course import make_fake_sources, solve, take_back

import tinytorch_reference
from tito import checkrun, course, registry
from tito.errors import TitoError
from tito.workspace import (Sources, Workspace, find_workspace, init_workspace, list_backups, reset,
                            restore)


@pytest.fixture()
def src(tmp_path, monkeypatch):
    take_back(monkeypatch)  # module 20 "coming": the fake course has a coming module to show
    return make_fake_sources(tmp_path / "course")


@pytest.fixture()
def ws(tmp_path, src):
    return init_workspace(tmp_path / "ws", src=src)


def test_init_layout(ws, src):
    built = registry.built_modules()
    for m in built:
        text = ws.working_file(m).read_text()
        assert text == src.stripped_text(m) and "BEGIN SOLUTION" not in text
        assert "# YOUR CODE HERE\n    raise NotImplementedError()" in text
        nb = ws.working_file(m).with_suffix(".ipynb")  # the same lesson, as a paired notebook
        assert '"formats": "ipynb,py:percent"' in nb.read_text() and "BEGIN SOLUTION" not in nb.read_text()
    coming = next(m for m in registry.MODULES if not m.built)
    assert not (ws.root / "modules" / coming.key).exists()  # coming: no folder
    # the learner's package holds support files only - no module until it is exported
    assert sorted(p.name for p in ws.package.iterdir()) == ["__init__.py", "datasets.py"]
    assert (ws.root / ".tito" / "progress.json").exists()
    assert (ws.root / ".tito" / "milestones.json").exists()
    assert "tito module start 01" in (ws.root / "README.md").read_text()
    assert ws.completed() == set()


def test_init_refuses_an_existing_workspace(ws, src):
    with pytest.raises(TitoError, match="already holds a workspace"):
        init_workspace(ws.root, src=src)


def test_init_solutions_is_complete(tmp_path, src):
    ws = init_workspace(tmp_path / "ref", solutions=True, src=src)
    built = registry.built_modules()
    assert ws.completed() == {m.id for m in built}
    for m in built:
        assert ws.exported_file(m).read_text() == src.reference_text(m)
    rows = course.module_rows(ws, src)
    assert {r.status for r in rows if r.module.built} == {"complete"}
    assert {r.status for r in rows if not r.module.built} == {"coming"}


def test_find_workspace(ws, tmp_path, monkeypatch):
    monkeypatch.delenv("TITO_WORKSPACE", raising=False)
    deep = ws.root / "modules" / "03_layers"
    assert find_workspace(cwd=deep).root == ws.root
    assert find_workspace(explicit=ws.root).root == ws.root
    monkeypatch.setenv("TITO_WORKSPACE", str(ws.root))
    assert find_workspace(cwd=tmp_path).root == ws.root
    monkeypatch.delenv("TITO_WORKSPACE")
    with pytest.raises(TitoError, match="no TinyTorch workspace found"):
        find_workspace(cwd=tmp_path)
    with pytest.raises(TitoError, match="not a TinyTorch workspace"):
        find_workspace(explicit=tmp_path)


def test_status_rows(ws, src):
    def status():
        return {r.module.id: r.status for r in course.module_rows(ws, src)}

    s = status()
    assert s["01"] == "available" and s["02"] == "locked" and s["05"] == "locked"
    assert s[next(m for m in registry.MODULES if not m.built).id] == "coming"
    solve(ws, registry.get_module(1))
    assert status()["01"] == "in progress"
    assert "module 01" in course.next_step(ws)


def test_reset_backs_up_and_restores(ws, src):
    m = registry.get_module("tensor")
    ws.working_file(m).write_text("# my work\n")
    saved = reset(ws, m, src)
    assert saved.read_text() == "# my work\n" and saved.parent == ws.backups_dir(m)
    assert ws.working_file(m).read_text() == src.stripped_text(m)
    chosen, saved2 = restore(ws, m)
    assert chosen == saved and ws.working_file(m).read_text() == "# my work\n"
    assert saved2.read_text() == src.stripped_text(m)  # restoring backed up the stub too
    assert len(list_backups(ws, m)) == 2
    with pytest.raises(TitoError, match="no backup"):
        restore(ws, m, "nonexistent")


def test_start_gates_and_recreates_missing_files(ws, src):
    with pytest.raises(TitoError, match="locked: complete 01 tensor, 02 activations first"):
        course.start(ws, registry.get_module(3), src=src)
    with pytest.raises(TitoError, match="coming"):
        course.start(ws, next(m for m in registry.MODULES if not m.built), force=True, src=src)
    info = course.start(ws, registry.get_module(3), force=True, src=src)
    assert [m.id for m in info.missing] == ["01", "02"] and info.functions == ["value", "Thing.twice"]
    assert info.lesson_summary == "Learn layers."
    ws.working_file(registry.get_module(1)).unlink()
    assert course.start(ws, registry.get_module(1), src=src).created


def test_staging_uses_the_learners_package(ws, src):
    m1 = registry.get_module(1)
    solve(ws, m1)
    files = checkrun.workspace_files(ws, m1)
    assert files["tensor.py"] == ws.working_file(m1)
    assert set(files) == {"__init__.py", "datasets.py", "tensor.py"}


def test_installed_sources_exist():
    src = Sources.installed()
    assert (src.reference / "__init__.py").exists() and src.checks.is_dir()
    assert "tensor.py" not in {p.name for p in src.support_files()}
    assert isinstance(Workspace(src.reference).package, type(src.reference))


def test_sources_from_an_installed_layout_not_the_cwd(tmp_path):
    """Installed (not editable) as site/tito + site/tinytorch_reference/tinytorch, run from a
    workspace root whose own tinytorch/ is first on sys.path: the reference must still be the
    installed one, and a plain `import tinytorch` there the workspace's."""
    import shutil
    import subprocess
    import sys

    site = tmp_path / "site"
    real = Sources.installed()
    shutil.copytree(real.reference, site / "tinytorch_reference" / "tinytorch",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(Path(tinytorch_reference.__file__), site / "tinytorch_reference" / "__init__.py")
    shutil.copytree(real.checks.parent, site / "tito", ignore=shutil.ignore_patterns("__pycache__"))
    ws_root = tmp_path / "ws"
    (ws_root / "tinytorch").mkdir(parents=True)
    (ws_root / "tinytorch" / "__init__.py").write_text("")
    code = ("import sys; sys.path.insert(0, ''); from tito.workspace import Sources; s = Sources.installed(); "
            "print(s.reference); print(s.checks.is_dir(), s.checks.parent.is_dir()); "
            "import tinytorch; print(tinytorch.__file__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ws_root, capture_output=True, text=True,
                         env={"PYTHONPATH": str(site), "PATH": ""}, check=True).stdout.split()
    assert out == [str((site / "tinytorch_reference" / "tinytorch").resolve()), "True", "True",
                   str((ws_root / "tinytorch" / "__init__.py").resolve())]
