"""Shared by every module check: the import-origin guard, task selection, and a JSON report.

When `tito module test/complete` runs the checks it stages the learner's package in a temporary
folder and sets

    TITO_EXPECT_TINYTORCH  <staging>/tinytorch   the package the checks MUST exercise
    TITO_REPORT            <tmp>/report.json      where to write one record per check
    TITO_CHECK_TASK        optional: run only the checks of one task (marker or name match)
    TITO_MODULE_FILE       optional: the learner's working file, if it is not the staged
                           <package>/<name>.py that the check file's name implies

The guard makes the checks prove they ran the learner's code: if `import tinytorch` resolves
anywhere else (an installed reference, a stray checkout) the whole session stops with an error
and a non-zero exit. Without TITO_EXPECT_TINYTORCH (a maintainer running `pytest` in the repo)
the checks run against whatever `tinytorch` is importable - the reference.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

EXPECT = os.environ.get("TITO_EXPECT_TINYTORCH")
REPORT = os.environ.get("TITO_REPORT")
TASK = os.environ.get("TITO_CHECK_TASK")

_STUB = re.compile(r"^(\d\d_\w+): ([\w.<>]+)$")
# "Linear.forward: ...", "Linear.forward (x @ W.T + b): ...", "relu(): ...", "softmax: ..."
# the engine's refusal of a rule's gradient (autograd._parent_grad): "backward rule
# tinytorch.autograd.mul_backward for op 'mul' returned a gradient of shape ..."
_RULE = re.compile(r"^backward rule (?:[\w<>?]+\.)*([\w<>]+) for op ")
_NAMED = re.compile(r"^\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+(?=[\s:(])|[A-Za-z_]\w*(?=(?:\(\))?:|\s\())")


def _guard() -> None:
    """Import tinytorch from the staged package, and refuse to run if it came from elsewhere."""
    if not EXPECT:  # a maintainer's `pytest` run: the checks test the reference
        import tinytorch_reference

        tinytorch_reference.activate()
        return
    expected = Path(EXPECT).resolve()
    # pytest may have put a directory holding another tinytorch (e.g. src/) first on sys.path
    # while importing this conftest: put the staged package in front of everything.
    sys.path.insert(0, str(expected.parent))
    import tinytorch

    if getattr(tinytorch, "__file__", None) is None:  # a namespace package: no __init__.py
        raise pytest.UsageError(f"{expected} is not a package (its __init__.py is missing)")
    origin = Path(tinytorch.__file__).resolve()
    if expected not in origin.parents:
        raise pytest.UsageError(
            f"the checks imported tinytorch from {origin.parent}, not from the package under test "
            f"({expected}); refusing to report results that would not be about your code")


def pytest_configure(config):
    config.addinivalue_line("markers", "task(name): the learner task a check belongs to")
    _guard()
    _hypothesis_profile()
    if REPORT:
        config.pluginmanager.register(_Reporter(REPORT), "tito-report")


_PROFILE_BEFORE: list[str] = []


def _hypothesis_profile() -> None:
    """One minimal failing example per property check, never 'N distinct failures': a single
    exception keeps its traceback, so the report can name the function at fault. Settings the
    check files create inherit this profile (it is loaded before they are imported); the
    previous profile comes back when the session ends (a notebook kernel runs checks in-process).
    Failing examples are shrunk but not "explained": hypothesis's explain phase re-runs a failure
    many more times to annotate which parts of the example mattered, which tripled the time of a
    failing check (a stub's run of module 16: 5.5 s with it) and says little about a stub."""
    try:
        from hypothesis import Phase, settings
    except ImportError:
        return
    _PROFILE_BEFORE.append(settings.get_current_profile_name())
    settings.register_profile("tito-checks", deadline=None, derandomize=True, database=None,
                              report_multiple_bugs=False,
                              phases=[p for p in Phase if p.name != "explain"])
    settings.load_profile("tito-checks")


def pytest_unconfigure(config):
    if _PROFILE_BEFORE:
        from hypothesis import settings

        settings.load_profile(_PROFILE_BEFORE.pop())


def pytest_collection_modifyitems(config, items):
    """TITO_CHECK_TASK=name keeps the checks marked @pytest.mark.task(name), or named like it."""
    if not TASK:
        return
    want = TASK.lower()

    def selected(item) -> bool:
        marks = [str(a).lower() for m in item.iter_markers("task") for a in m.args]
        return want in marks or want in item.nodeid.lower()

    keep = [i for i in items if selected(i)]
    drop = [i for i in items if not selected(i)]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# ---------------------------------------------------------------------------------------------
# The JSON report read by tito.checkrun
# ---------------------------------------------------------------------------------------------
def fault(exc: BaseException | None, tb_entries, under: Path | None, prefer=(),
          fallback: str | None = None) -> dict:
    """What a failure says about the learner's code: the kind, the function at fault, where.

    A stub (nbgrader's `raise NotImplementedError()`, no message) is named by the frame that
    raised it; a check's assertion message starts with the function it tested; otherwise the
    frame the exception came from names the function (and the line): the innermost frame in the
    learner's working file (`prefer`: the file of the module under test, or a notebook cell),
    else the innermost frame anywhere in the package under test. An AssertionError that a check
    helper raised for a crash (`raise AssertionError(...) from error`) keeps its message, and is
    located by the frames of the crash it wraps. The engine's RuntimeError for a gradient of the
    wrong shape names the rule that returned it. When the check's own code crashed (nothing of
    the learner's on the stack), `fallback` - the check's task - is the function named.
    """
    if exc is None:
        return {}
    if isinstance(exc.__cause__, NotImplementedError):  # e.g. backward() wrapping a stubbed rule
        tb_entries = _entries(exc.__cause__.__traceback__) or tb_entries
        exc = exc.__cause__
    message = str(exc)
    info = {"exception": type(exc).__name__, "message": message[:2000],
            "kind": "wrong" if isinstance(exc, AssertionError) else "error"}
    entries = list(tb_entries or ())
    cause = exc.__cause__
    wrapped = isinstance(exc, AssertionError) and isinstance(cause, Exception) \
        and not isinstance(cause, AssertionError)  # a check helper's named report of a crash
    if wrapped:
        entries = _entries(cause.__traceback__) or entries
    entry, in_working_file = _learner_frame(entries, under, {Path(p).resolve() for p in prefer})
    if entry is not None:
        code = entry.frame.code.raw
        info["function"] = getattr(code, "co_qualname", code.co_name)
        info["where"] = f"{Path(str(entry.path)).name}:{entry.lineno + 1}"
    stub = _STUB.match(message.strip()) if isinstance(exc, NotImplementedError) else None
    named = _NAMED.match(message) if isinstance(exc, AssertionError) else None
    rule = _RULE.match(message) if isinstance(exc, RuntimeError) else None
    if isinstance(exc, NotImplementedError) and not message.strip() and info.get("function"):
        info["kind"] = "stub"
    elif stub:
        info.update(kind="stub", function=stub.group(2))
    elif rule:  # the engine names the rule whose gradient it refused; the rule is at fault
        info["function"] = rule.group(1)
    elif named and not (wrapped and in_working_file):  # (a crash in the working file: its frame)
        info["function"] = named.group(1)
    elif not info.get("function") and fallback:
        info["function"] = fallback
        if not isinstance(exc, AssertionError):  # e.g. a KeyError on a dict the learner returned
            info["message"] = (f"the check itself raised {type(exc).__name__} on what {fallback} "
                               f"produced: {message}")[:2000]
    return info


_CHECKS_DIR = Path(__file__).resolve().parent


def _learner_frame(entries: list, under: Path | None, prefer: set):
    """(entry, True): the innermost traceback entry in the learner's working file (or a notebook
    cell); else (entry, False): the innermost one inside the package under test; else (None, False)."""
    in_package = None
    for entry in reversed(entries):
        path = Path(str(entry.path))
        try:
            path = path.resolve()
        except (OSError, RuntimeError):
            continue
        if path in prefer or _notebook_cell(entry, path):
            return entry, True
        if in_package is None and under is not None and under in path.parents:
            in_package = entry
    return in_package, False


def _notebook_cell(entry, path: Path) -> bool:
    """Code a notebook defined (`tito.notebook.check` runs the checks inside the kernel): its
    globals are the kernel's `__main__`."""
    try:
        name = entry.frame.f_globals.get("__name__")
    except Exception:
        return False
    return name == "__main__" and _CHECKS_DIR not in path.parents and "pytest" not in path.parts


def working_files(check_path, under: Path | None) -> list[Path]:
    """The learner's working file for a check file: test_06_autograd.py -> <package>/autograd.py
    (and TITO_MODULE_FILE, when tito names it)."""
    files = []
    match = re.match(r"^test_\d\d_(\w+)\.py$", Path(str(check_path)).name)
    if under is not None and match:
        files.append(under / f"{match.group(1)}.py")
    if os.environ.get("TITO_MODULE_FILE"):
        files.append(Path(os.environ["TITO_MODULE_FILE"]))
    return files


def _entries(tb) -> list:
    """A raw traceback as pytest-style entries (path, lineno 0-based, frame.code.raw)."""
    from _pytest._code import Traceback

    return list(Traceback(tb)) if tb is not None else []


def _from_check(text: str, check_path: str) -> str:
    """A native traceback without pytest's own frames: from the check's frame on."""
    marker = f'File "{check_path}"'
    at = text.find(marker)
    if at < 0:
        return text
    return "Traceback (most recent call last):\n  " + text[at:]


class _Reporter:
    """Collects one record per check (setup/call/teardown merged) and writes them as JSON."""

    def __init__(self, path: str):
        self.path = path
        self.tests: dict[str, dict] = {}
        self.collect_errors: list[dict] = []
        self.under = Path(EXPECT).resolve() if EXPECT else None

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        rec = self.tests.setdefault(item.nodeid, {"nodeid": item.nodeid, "name": item.name,
                                                 "outcome": "passed"})
        marks = [str(a) for m in item.iter_markers("task") for a in m.args]
        if marks:
            rec["task"] = marks[0]
        if report.skipped and rec["outcome"] == "passed":
            rec["outcome"] = "skipped"
            rec["message"] = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
        elif report.failed and rec["outcome"] not in ("failed", "error"):
            rec["outcome"] = "failed" if report.when == "call" else "error"
            excinfo = call.excinfo
            rec.update(fault(excinfo.value if excinfo else None,
                             excinfo.traceback if excinfo else None, self.under,
                             prefer=working_files(item.path, self.under),
                             fallback=marks[0] if marks else None))
            rec["longrepr"] = _from_check(report.longreprtext, str(item.path))[-4000:]

    def pytest_collectreport(self, report):
        if report.failed:
            self.collect_errors.append({"nodeid": report.nodeid, "longrepr": report.longreprtext[-4000:]})

    def pytest_sessionfinish(self, session, exitstatus):
        data = {"exitstatus": int(exitstatus), "tests": list(self.tests.values()),
                "collect_errors": self.collect_errors}
        Path(self.path).write_text(json.dumps(data, indent=1), encoding="utf-8")
