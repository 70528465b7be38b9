"""A learner gets the same verdict on the same file whatever else their Python holds: with and
without PyTorch installed, and with any pytest plugin installed.

The torch parity checks enforce conventions at kinks and ties (relu and abs at 0, a max with
ties). Each seeded bug below breaks one such convention in a copy of the reference autograd; its
checks run twice through `tito.checkrun.run_checks` - once as installed, once with `import torch`
made to fail - and must fail both times, blaming the same functions.
"""

from __future__ import annotations

import pytest
from helpers_course import without_torch

from tito import checkrun, registry
from tito.verify import _files
from tito.workspace import Sources

SRC = Sources.installed()
M06 = registry.get_module("06")

# (what the learner wrote instead, the task whose checks judge it, the function to blame)
BUGS = {
    "relu_gradient_1_at_0": ("return (g * (out.data > 0),)",
                             "return (g * (out._parents[0].data >= 0),)", "relu_backward"),
    "abs_gradient_1_at_0": ("return (g * np.sign(out._parents[0].data),)",
                            "return (g * np.where(out._parents[0].data >= 0, 1.0, -1.0),)",
                            "abs_backward"),
    "max_ties_each_get_all": ("share = winner / winner.sum(axis=axis, keepdims=True)",
                              "share = winner", "_extreme_backward"),
}


@pytest.fixture()
def no_torch(tmp_path, monkeypatch):
    """A folder that shadows torch with a module whose import fails (as if not installed)."""
    return without_torch(tmp_path / "no-torch")


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_same_verdict_with_and_without_torch(bug, no_torch, monkeypatch):
    right, wrong, blamed = BUGS[bug]
    reference = SRC.reference_text(M06)
    assert reference.count(right) == 1, f"the seeded line moved: {right!r}"
    files = _files(SRC, M06, stub=False)
    files[M06.file_name] = reference.replace(right, wrong)
    verdicts = []
    for blocked in (False, True):
        if blocked:
            monkeypatch.setenv("PYTHONPATH", str(no_torch))
        report = checkrun.run_checks(M06, files, src=SRC, task=blamed)  # as check("06", blamed)
        verdicts.append((report.ok, blamed in report.functions_at_fault()))
        ran = [r for r in report.results if r.outcome != "skipped"]
        assert ran, f"{bug}: no check ran (torch blocked: {blocked})"
    assert verdicts == [(False, True), (False, True)], f"{bug}: (ok, blamed) with / without torch: {verdicts}"


@pytest.fixture()
def hostile_plugin(tmp_path):
    """An installed pytest plugin (a distribution with a pytest11 entry point) that fails every test
    it sees - as pytest-randomly or a broken plugin could change what the checks do."""
    site = tmp_path / "site"
    info = site / "hostile_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hostile-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[pytest11]\nhostile = hostile_plugin\n")
    (site / "hostile_plugin.py").write_text(
        "def pytest_runtest_call(item):\n    raise RuntimeError('the hostile plugin ran')\n")
    return site


def test_an_installed_pytest_plugin_does_not_change_the_verdict(hostile_plugin, tmp_path,
                                                                 monkeypatch):
    import subprocess
    import sys

    monkeypatch.setenv("PYTHONPATH", str(hostile_plugin))
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    (tmp_path / "test_plain.py").write_text("def test_true():\n    assert True\n")
    plain = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_plain.py"],
                           cwd=tmp_path, capture_output=True, text=True)
    assert plain.returncode == 1 and "the hostile plugin ran" in plain.stdout, \
        "a plain pytest run does not load the fixture's plugin: the test below would prove nothing"
    m = registry.get_module("05")
    report = checkrun.run_checks(m, _files(SRC, m, stub=False), src=SRC)
    assert report.ok and report.results, report.problem() or report.output[-2000:]
