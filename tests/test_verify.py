"""`tito dev verify`: each kind of problem is caught on a fake course; the real course verifies."""

import pytest
from helpers_course import make_fake_sources

from tito import registry, verify
from tito.workspace import Sources

ALL = registry.built_modules()


@pytest.fixture()
def src(tmp_path, monkeypatch):
    monkeypatch.setattr(verify, "_milestone_problems", lambda: [])  # scripts: checked for real below
    return make_fake_sources(tmp_path / "course")


def by_module(report):
    return {r.module.id: r.problems for r in report.modules}


def test_a_sound_course_verifies(src):
    report = verify.verify(src, jobs=2, only=ALL[:3])
    assert report.ok, report.all_problems
    assert report.vacuous == []
    assert [r.reference for r in report.modules] == ["3/3"] * 3  # all pass on the reference
    assert [r.stub for r in report.modules] == ["3/3"] * 3  # all fail on the stub


def test_vacuous_check_is_reported(src):
    m = registry.get_module(2)
    with open(src.check_file(m), "a") as fh:
        fh.write("\n\ndef test_always_true():\n    assert True\n")
    report = verify.verify(src, only=[m])
    assert report.vacuous == ["02 activations: test_always_true"]
    assert not report.ok


def test_missing_files_and_regions(src):
    m1, m2, m3 = ALL[:3]
    src.check_file(m1).unlink()
    thin = src.reference_file(m2).read_text()
    src.reference_file(m2).write_text(thin.replace(" word" * 120, ""))  # 10 words a cell
    src.reference_file(m3).write_text("def value(x):\n    return x + 3\n\n\nclass Thing:\n"
                                      "    def twice(self, x):\n        return 2 * x\n")
    problems = by_module(verify.verify(src, only=[m1, m2, m3]))
    assert any("no check file" in p for p in problems["01"])
    assert any("lesson: the lesson is thin" in p for p in problems["02"])
    assert any("no '### BEGIN SOLUTION' region" in p for p in problems["03"])
    assert any("vacuous" in p for p in problems["03"])  # nothing stripped: every check passes


def test_reference_failing_and_stub_not_importing(src):
    m1, m2 = ALL[:2]
    text = src.reference_file(m1).read_text().replace("return x + 1", "return x + 100")
    src.reference_file(m1).write_text(text)
    src.reference_file(m2).write_text(src.reference_file(m2).read_text() + "\nVALUE = value(0)\n")
    problems = by_module(verify.verify(src, only=[m1, m2]))
    assert any("the reference fails its own checks" in p and "wrong sum" in p for p in problems["01"])
    assert any("the stripped file does not import" in p for p in problems["02"])


def test_checks_that_need_a_later_module_are_caught(src):
    """Staged like a learner completing 02: only 01 is there, so importing 06 must fail."""
    m = registry.get_module(2)
    with open(src.check_file(m), "a") as fh:
        fh.write("\n\ndef test_needs_autograd():\n    import tinytorch.autograd\n")
    problems = by_module(verify.verify(src, only=[m]))
    assert any("reference fails" in p and "test_needs_autograd" in p for p in problems["02"])


def test_registry_problems_are_reported(src, monkeypatch):
    monkeypatch.setattr(registry, "consistency_problems", lambda: ["bad registry"])
    report = verify.verify(src, only=ALL[:1])
    assert report.problems == ["bad registry"] and not report.ok


def test_real_course_verifies():
    """The acceptance check: every built module of the real course, zero vacuous checks."""
    report = verify.verify(Sources.installed(), jobs=2)
    assert report.vacuous == []
    assert report.all_problems == []


def test_cli_exit_codes(src, monkeypatch):
    from helpers_course import run_cli

    monkeypatch.setattr(Sources, "installed", staticmethod(lambda: src))
    code, out, _ = run_cli(["dev", "verify", "-m", "1", "-m", "tensor"])
    assert code == 0 and "Course verified" in out
    with open(src.check_file(registry.get_module(1)), "a") as fh:
        fh.write("\n\ndef test_always_true():\n    assert True\n")
    code, out, _ = run_cli(["dev", "verify", "-m", "1"])
    assert code == 1 and "vacuous check (passes on the stub): test_always_true" in out
