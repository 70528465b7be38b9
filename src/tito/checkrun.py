"""Run a module's checks against a staged `tinytorch` package, in a subprocess.

    files = workspace_files(ws, module)            # the learner's package + their working file
    report = run_checks(module, files, src=src)    # pytest in a subprocess, with a time limit
    report.ok, report.failures()                   # what passed, which function is at fault

The staging folder holds nothing but a `tinytorch/` package built from `files`; the checks'
conftest refuses to run if `tinytorch` is imported from anywhere else, and the report comes back
as JSON written by that conftest (see tito/checks/conftest.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tito.errors import TitoError
from tito.registry import Module
from tito.workspace import Sources, Workspace

DEFAULT_TIMEOUT = 300.0  # seconds; TITO_CHECK_TIMEOUT overrides
NO_TESTS_COLLECTED = 5  # pytest's exit code


@dataclass
class CheckResult:
    """One check: its outcome and, when it failed, what it says about the learner's code."""

    nodeid: str
    name: str
    outcome: str  # passed / failed / error / skipped
    function: str | None = None
    kind: str | None = None  # stub (NotImplementedError), wrong (assertion), error (exception)
    message: str = ""
    where: str | None = None
    task: str | None = None
    longrepr: str = ""

    @property
    def short(self) -> str:
        """The first line of the failure message."""
        return (self.message.strip().splitlines() or [""])[0][:200]


@dataclass
class CheckReport:
    module: Module
    exit_code: int
    results: list[CheckResult] = field(default_factory=list)
    collect_errors: list[str] = field(default_factory=list)
    output: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # e.g. which file of the pair was read

    @property
    def passed(self) -> list[CheckResult]:
        return [r for r in self.results if r.outcome == "passed"]

    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.outcome in ("failed", "error")]

    @property
    def ok(self) -> bool:
        """All selected checks passed (at least one ran; nothing failed to collect)."""
        return self.exit_code == 0 and bool(self.passed) and not self.collect_errors

    def problem(self) -> str | None:
        """One line saying why the run is not ok when it is not about individual checks."""
        if self.exit_code == NO_TESTS_COLLECTED or (self.exit_code == 0 and not self.results):
            return f"no checks were collected for module {self.module} - that is a failure, not a pass"
        if self.collect_errors:
            return f"the checks for module {self.module} could not be loaded (see below)"
        if not self.results and self.exit_code != 0:
            return f"the checks for module {self.module} did not run (pytest exit code {self.exit_code})"
        return None

    def functions_at_fault(self) -> list[str]:
        names: list[str] = []
        for r in self.failures():
            if r.function and r.function not in names:
                names.append(r.function)
        return names


def timeout_seconds() -> float:
    value = os.environ.get("TITO_CHECK_TIMEOUT")
    try:
        return float(value) if value else DEFAULT_TIMEOUT
    except ValueError:
        raise TitoError(f"TITO_CHECK_TIMEOUT must be a number of seconds, not {value!r}") from None


def check_syntax(path: Path) -> None:
    """One clear line for a learner file that does not parse (instead of a pytest wall of text)."""
    try:
        compile(Path(path).read_text(encoding="utf-8"), str(path), "exec")
    except SyntaxError as e:
        shown = _display(path)
        raise TitoError(f"{shown}:{e.lineno}: syntax error: {e.msg}",
                        (e.text or "").rstrip() or None) from None
    except ValueError as e:  # e.g. null bytes in the file
        raise TitoError(f"{_display(path)}: cannot be compiled: {e}") from None


def _display(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def workspace_files(ws: Workspace, m: Module) -> dict[str, Path]:
    """The learner's package (support files + exports) with their working file for `m` on top."""
    files = {p.name: p for p in sorted(ws.package.glob("*.py"))}
    files[m.file_name] = ws.working_file(m)
    return files


def stage(files: dict[str, Path | str], dest: Path) -> Path:
    """Write a `tinytorch/` package into `dest`: name -> a path to copy, or the text itself."""
    pkg = Path(dest) / "tinytorch"
    pkg.mkdir(parents=True)
    for name, source in files.items():
        if isinstance(source, Path):
            shutil.copyfile(source, pkg / name)
        else:
            (pkg / name).write_text(source, encoding="utf-8")
    return pkg


def run_checks(m: Module, files: dict[str, Path | str], src: Sources | None = None,
               keyword: str | None = None, task: str | None = None,
               timeout: float | None = None, origins: dict[str, Path] | None = None) -> CheckReport:
    """Stage `files` as `tinytorch`, run module `m`'s checks on it, and parse the report.

    `origins` maps a staged file name to the file it stands for (the learner's working file), so
    that tracebacks and locations point there instead of into the temporary staging folder.
    """
    src = src or Sources.installed()
    check_file = src.check_file(m)
    if not check_file.exists():
        raise TitoError(f"no checks found for module {m} (expected {check_file})",
                        "reinstall tinytorch; maintainers: run `tito dev verify`")
    mine = files.get(m.file_name)
    if isinstance(mine, Path):
        check_syntax(mine)
    timeout = timeout_seconds() if timeout is None else timeout
    with tempfile.TemporaryDirectory(prefix=f"tito-{m.key}-") as tmp:
        tmp = Path(tmp)
        pkg = stage(files, tmp / "stage")
        report_path = tmp / "report.json"
        cmd = [sys.executable, "-m", "pytest", *pytest_args(check_file, tmp, keyword)]
        env = run_env(pkg, report_path)
        env.pop("TITO_CHECK_TASK", None)
        if task:
            env["TITO_CHECK_TASK"] = task
        start = time.monotonic()
        code, output = _run(cmd, env, cwd=tmp, timeout=timeout, m=m)
        report = CheckReport(m, code, output=output, seconds=time.monotonic() - start)
        read_report(report, report_path)
        for name, origin in (origins or {}).items():
            _point_to(report, pkg / name, Path(origin))
    return report


# The environment of every check run (subprocess or notebook kernel). No bytecode is written into
# the staged package or the learner's folders. No pytest plugin is autoloaded: a check's verdict
# must not depend on the plugins someone has installed (pytest-randomly reorders and reseeds,
# pytest-cov slows, ...), so the one plugin the checks use, hypothesis's, is named in pytest_args.
# It is also what keeps a run fast: with autoload on, pytest marks every module of each plugin's
# package for assertion rewriting, and with no bytecode cache it re-rewrites ~100 hypothesis
# modules on each run - measured here, about half of a short run (module 05: 1.4 s -> 0.7 s).
RUN_ENV = {"PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def run_env(pkg: Path, report_path: Path) -> dict[str, str]:
    """This process's environment for a check subprocess on the package staged at `pkg`, which
    writes its JSON report to `report_path`."""
    env = dict(os.environ)
    env.update(RUN_ENV, TITO_EXPECT_TINYTORCH=str(pkg), TITO_REPORT=str(report_path),
               PYTHONPATH=os.pathsep.join([str(pkg.parent), *filter(None, [env.get("PYTHONPATH")])]))
    # checks are small: one BLAS/OpenMP thread each, so parallel check runs don't oversubscribe
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def pytest_args(check_file: Path, tmp: Path, keyword: str | None = None) -> list[str]:
    """pytest's arguments for one check run in the scratch folder `tmp` (it writes pytest.ini)."""
    (tmp / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    args = [str(check_file), "-p", "_hypothesis_pytestplugin", "-p", "no:cacheprovider", "-q",
            # native tracebacks: pytest's own formatting costs ~0.2 s per failure
            "-c", str(tmp / "pytest.ini"), "--rootdir", str(tmp), "--tb=native", "-o",
            "console_output_style=classic"]
    return args + (["-k", keyword] if keyword else [])


def read_report(report: CheckReport, path: Path) -> CheckReport:
    """Fill `report` from the JSON the checks' conftest wrote (nothing, if it wrote none)."""
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        known = CheckResult.__dataclass_fields__
        report.results = [CheckResult(**{k: v for k, v in t.items() if k in known})
                          for t in data["tests"]]
        report.collect_errors = [e["longrepr"] for e in data["collect_errors"]]
    return report


def _point_to(report: CheckReport, staged: Path, origin: Path) -> None:
    """Rewrite mentions of a staged file into the learner's own path."""
    shown = _display(origin)
    for r in report.results:
        r.longrepr = r.longrepr.replace(str(staged), shown)
        if r.where and r.where.startswith(f"{staged.name}:"):
            r.where = shown + r.where[len(staged.name):]
    report.collect_errors = [e.replace(str(staged), shown) for e in report.collect_errors]
    report.output = report.output.replace(str(staged), shown)


def _run(cmd: list[str], env: dict, cwd: Path, timeout: float, m: Module) -> tuple[int, str]:
    """Run the checks in their own process group, so a hang can be killed with all its children."""
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raise TitoError(f"the checks for module {m} did not finish within {timeout:g} s "
                        f"(an infinite loop or a very slow function in {m.file_name}?)",
                        "the time limit is TITO_CHECK_TIMEOUT (seconds)") from None
    except BaseException:  # Ctrl-C: take the child process group down with us
        _kill(proc)
        raise
    return proc.returncode, out


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):
        proc.kill()
    proc.communicate()
