"""conftest.fault(): which function a failing check blames, on hand-made tracebacks.

A tiny staged package holds the learner's working file (`work.py`) and a prerequisite module
(`prereq.py`); each test raises through them the way a failing check would and asserts the
function that the report names.
"""

from __future__ import annotations

import importlib.util
import textwrap

import pytest

from tito.checks import conftest
from tito.checks.harness import blame, call

WORK = """
from prereq import Given


def learner_calls_prereq(x):
    return Given().method(x)


def learner_crashes(x):
    return {}[x]


def learner_stub():
    raise NotImplementedError()


def refused_rule():
    raise RuntimeError("backward rule tinytorch.work.mul_backward for op 'mul' returned a gradient of "
                       "shape (3, 2) for parent 0, which has shape (2, 3)")
"""

PREREQ = """
class Given:
    def method(self, x):
        raise ValueError(f"bad argument {x!r}")
"""


@pytest.fixture()
def pkg(tmp_path, monkeypatch):
    root = tmp_path / "tinytorch"
    root.mkdir()
    (root / "work.py").write_text(textwrap.dedent(WORK))
    (root / "prereq.py").write_text(textwrap.dedent(PREREQ))
    monkeypatch.syspath_prepend(str(root))
    mods = {}
    for name in ("prereq", "work"):
        spec = importlib.util.spec_from_file_location(name, root / f"{name}.py")
        mods[name] = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(__import__("sys").modules, name, mods[name])
        spec.loader.exec_module(mods[name])
    return root, mods["work"]


def blamed(root, fn, prefer=True, fallback=None, **kw) -> dict:
    with pytest.raises(BaseException) as excinfo:
        fn()
    return conftest.fault(excinfo.value, excinfo.traceback, root.resolve(),
                          prefer=[root / "work.py"] if prefer else (), fallback=fallback, **kw)


def test_a_crash_in_a_prerequisite_is_blamed_on_the_working_file(pkg):
    root, work = pkg
    info = blamed(root, lambda: work.learner_calls_prereq(3))
    assert info["function"] == "learner_calls_prereq" and info["where"].startswith("work.py:")
    assert info["kind"] == "error"
    # without knowing the working file: the innermost frame of the package
    assert blamed(root, lambda: work.learner_calls_prereq(3), prefer=False)["function"] == "Given.method"


def test_a_wrapped_crash_keeps_its_message_and_names_the_learners_frame(pkg):
    root, work = pkg
    info = blamed(root, lambda: call("some_task", work.learner_calls_prereq, 3))
    assert info["function"] == "learner_calls_prereq" and info["kind"] == "wrong"
    assert info["message"].startswith("some_task: raised ValueError")


def test_a_wrapped_crash_outside_the_package_names_the_task(pkg):
    root, _ = pkg

    def check_code():
        with blame("load_checkpoint", "the optimizer state"):
            {}["momentum_buffer"]

    info = blamed(root, check_code)
    assert info["function"] == "load_checkpoint" and "KeyError" in info["message"]


def test_the_checks_own_crash_is_named_by_the_task(pkg):
    root, _ = pkg
    info = blamed(root, lambda: {}["momentum_buffer"], fallback="load_checkpoint")
    assert info["function"] == "load_checkpoint"
    assert info["message"].startswith("the check itself raised KeyError on what load_checkpoint produced")
    # an unnamed assertion keeps its message, and is still attributed to the task
    info = blamed(root, lambda: exec("assert 1 == 2"), fallback="EarlyStopping.step")
    assert info["function"] == "EarlyStopping.step" and info["kind"] == "wrong"


def test_a_stub_is_named_by_its_frame(pkg):
    root, work = pkg
    info = blamed(root, work.learner_stub, fallback="something_else")
    assert info == {**info, "kind": "stub", "function": "learner_stub"}


def test_the_engines_refusal_names_the_rule(pkg):
    root, work = pkg
    info = blamed(root, work.refused_rule)
    assert info["function"] == "mul_backward" and info["kind"] == "error"


def test_an_assertion_names_the_function_it_starts_with(pkg):
    root, _ = pkg

    def check():
        raise AssertionError("SGD.step: the optimizer must not write into p.grad")

    assert blamed(root, check, fallback="SGD")["function"] == "SGD.step"


def test_working_files_of_a_check_file(tmp_path, monkeypatch):
    monkeypatch.delenv("TITO_MODULE_FILE", raising=False)
    assert conftest.working_files("/x/test_07_optimizers.py", tmp_path) == [tmp_path / "optimizers.py"]
    assert conftest.working_files("/x/helpers.py", tmp_path) == []
    monkeypatch.setenv("TITO_MODULE_FILE", str(tmp_path / "mine.py"))
    assert conftest.working_files("/x/test_07_optimizers.py", None) == [tmp_path / "mine.py"]
