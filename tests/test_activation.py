"""`import tinytorch` is the learner's package: `tito init` registers the workspace with the
environment (a .pth file), one workspace at a time, and the reference is never on that path.

The tests point TITO_SITE_DIR at a scratch folder (tests/conftest.py) and make a child Python
read it as a site directory, as the real site-packages would be read at start-up.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_course import make_fake_sources, run_cli

from tito import activation
from tito.workspace import init_workspace


@pytest.fixture()
def site_dir(tmp_path, monkeypatch):
    d = tmp_path / "site-packages"
    monkeypatch.setenv("TITO_SITE_DIR", str(d))
    return d


def imported_from(cwd: Path, site: Path, code: str = "import tinytorch; print(tinytorch.__file__)"):
    """What `import tinytorch` gives in a fresh Python started in `cwd` whose site dir is `site`."""
    boot = f"import site; site.addsitedir({str(site)!r}); " + code
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", boot], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=60)
    return proc.stdout.strip() or proc.stderr.strip().splitlines()[-1]


def test_init_registers_the_workspace_for_every_folder(tmp_path, site_dir):
    src = make_fake_sources(tmp_path / "course")
    ws = init_workspace(tmp_path / "ws", src=src, activate=True)
    assert activation.active() == ws.root
    pth = site_dir / activation.PTH_NAME
    assert pth.read_text().splitlines()[-1] == str(ws.root)
    module_dir = next((ws.root / "modules").iterdir())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for cwd in (module_dir, elsewhere, ws.root):
        assert imported_from(cwd, site_dir) == str(ws.package / "__init__.py"), cwd


def test_the_reference_is_never_plain_tinytorch(tmp_path, site_dir):
    """No workspace registered: `import tinytorch` fails instead of giving the answer key."""
    out = imported_from(tmp_path, site_dir)
    assert "No module named 'tinytorch'" in out


def test_a_second_workspace_takes_over_and_status_says_which(tmp_path, site_dir, monkeypatch):
    src = make_fake_sources(tmp_path / "course")
    first = init_workspace(tmp_path / "a", src=src, activate=True)
    second = init_workspace(tmp_path / "b", src=src, activate=True)
    assert activation.active() == second.root
    assert imported_from(tmp_path, site_dir) == str(second.package / "__init__.py")
    assert activation.describe(second.root)[0] is True
    active, line = activation.describe(first.root)
    assert active is False and "another workspace is active" in line and str(first.root) in line
    monkeypatch.setattr("tito.workspace.Sources.installed", staticmethod(lambda: src))
    code, out, _ = run_cli(["workspace", "activate", str(first.root)])
    assert code == 0 and str(first.root) in out and f"was: {second.root}" in out
    assert imported_from(tmp_path, site_dir) == str(first.package / "__init__.py")
    code, out, _ = run_cli(["workspace", "show"])
    assert code == 0 and str(first.root) in out
    code, out, _ = run_cli(["status", "--workspace", str(second.root)])
    assert code == 0 and "another workspace is active" in out


def test_cli_init_activates_unless_told_not_to(tmp_path, site_dir, monkeypatch):
    src = make_fake_sources(tmp_path / "course")
    monkeypatch.setattr("tito.workspace.Sources.installed", staticmethod(lambda: src))
    code, out, _ = run_cli(["init", str(tmp_path / "ws1"), "--no-activate"])
    assert code == 0 and activation.active() is None
    code, out, _ = run_cli(["init", str(tmp_path / "ws2")])
    assert code == 0 and "import tinytorch" in out and activation.active() == (tmp_path / "ws2").resolve()
    code, out, _ = run_cli(["workspace", "deactivate"])
    assert code == 0 and activation.active() is None


def test_python_dash_m_tito_and_version():
    proc = subprocess.run([sys.executable, "-m", "tito", "--version"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("tito ")
