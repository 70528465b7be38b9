"""Checks from inside a lesson notebook: the check cells call `check`.

    if __name__ == "__main__":
        from tito.notebook import check
        check("03", "Linear")          # the checks of Linear, on the code this notebook just ran

The checks run in this very process (the notebook's kernel), against the definitions the learner
has executed - not the file on disk, which may not be saved yet. For the duration of the run,
`tinytorch.<module>` is a module made of the notebook's names (`__main__`); names the module file
defines that the notebook has not run yet become placeholders that say which cell to run. Every
other `tinytorch` module is the kernel's own `tinytorch` package - the learner's workspace - and
the checks' import guard still refuses any other package.

The output is the summary `tito module test` prints. A failing run raises `CheckFailed`, which
IPython shows as one line (no traceback), so the cell fails in Jupyter, nbclient and nbgrader.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import re
import sys
import tempfile
import time
import types
from pathlib import Path

from tito import checkrun, registry
from tito.checkrun import CheckReport
from tito.errors import TitoError
from tito.registry import Module
from tito.workspace import Sources

_ENV = ("TITO_EXPECT_TINYTORCH", "TITO_REPORT", "TITO_CHECK_TASK", *checkrun.RUN_ENV)
# what IPython itself puts into a kernel's namespace (history, outputs, helpers)
_IPYTHON_NAMES = re.compile(r"^(_+|_i+|_i\d+|_\d+|_oh|_dh|_ih|_exit_code|In|Out|get_ipython|exit|quit)$")


class CheckFailed(AssertionError):
    """A check cell whose checks did not all pass (shown by IPython without a traceback)."""

    def _render_traceback_(self):
        return [f"\x1b[31mCheckFailed: {self}\x1b[0m"]


def check(module: str | int, task: str | None = None, verbose: bool = False) -> None:
    """Run module `module`'s checks (those of `task`, if given) on this notebook's definitions."""
    try:
        m = registry.get_module(module)
        report = run_here(m, task)
    except TitoError as e:
        raise CheckFailed(e.message + (f" ({e.hint})" if e.hint else "")) from None
    from rich.console import Console

    from tito import ui

    Console(highlight=False).print(ui.check_summary(report, verbose=verbose))
    if not report.ok:
        what = report.problem() or f"{len(report.failures())} of {len(report.results)} checks failed"
        at = report.functions_at_fault()
        raise CheckFailed(f"{m}{f' ({task})' if task else ''}: {what}"
                          + (f" - fix {', '.join(at)}" if at else ""))


def run_here(m: Module, task: str | None = None, namespace: dict | None = None,
             src: Sources | None = None) -> CheckReport:
    """The checks of `m` in this process, with `namespace` (default: `__main__`) as its module."""
    src = src or Sources.installed()
    check_file = src.check_file(m)
    if not check_file.exists():
        raise TitoError(f"no checks found for module {m} (expected {check_file})")
    pkg = _package()
    namespace = vars(sys.modules["__main__"]) if namespace is None else namespace
    overlay = _overlay(m, namespace, pkg)
    with tempfile.TemporaryDirectory(prefix=f"tito-nb-{m.key}-") as tmp, \
            _installed(m, overlay, pkg), _check_env(pkg, Path(tmp) / "report.json", task):
        import pytest

        tmp = Path(tmp)
        report = CheckReport(m, 0)
        # no unraisable-exception plugin: at its end it runs full garbage collections, which in a
        # kernel holding a lesson's arrays was ~0.35 s of each check cell (measured: 06, 35 -> 24 s)
        args = checkrun.pytest_args(check_file, tmp) + ["--capture=sys", "-p", "no:warnings",
                                                        "-p", "no:unraisableexception"]
        cwd, start = os.getcwd(), time.monotonic()
        os.chdir(tmp)  # hypothesis and anything else a check writes go to the scratch folder
        try:
            with contextlib.redirect_stdout(io.StringIO()) as out, \
                    contextlib.redirect_stderr(io.StringIO()):
                report.exit_code = int(pytest.main(args))
        finally:
            os.chdir(cwd)
        report.output, report.seconds = out.getvalue(), time.monotonic() - start
        return checkrun.read_report(report, tmp / "report.json")


def _package() -> Path:
    """The `tinytorch` package this kernel imports: the learner's workspace (or, for a maintainer,
    the reference they activated)."""
    try:
        import tinytorch
    except ImportError:
        raise TitoError("this Python cannot import tinytorch, so there is nothing to check",
                        "make a workspace with `tito init DIR` (it registers itself with this "
                        "environment), or `tito workspace activate DIR`") from None
    if getattr(tinytorch, "__file__", None) is None:
        raise TitoError(f"the tinytorch found here ({list(tinytorch.__path__)}) has no __init__.py")
    return Path(tinytorch.__file__).resolve().parent


def _overlay(m: Module, namespace: dict, pkg: Path) -> types.ModuleType:
    """A module `tinytorch.<name>` holding the notebook's names, plus placeholders for the names
    of the module file that the notebook has not defined (yet)."""
    mod = types.ModuleType(m.package_module, namespace.get("__doc__"))
    mod.__package__ = "tinytorch"
    mod.__file__ = namespace.get("__file__") or str(Path.cwd() / m.file_name)
    for name, value in namespace.items():
        if not name.startswith("__") and not _IPYTHON_NAMES.match(name):
            setattr(mod, name, value)
    for name in _file_names(m, pkg) - set(vars(mod)):
        setattr(mod, name, _placeholder(m, name))
    return mod


def _file_names(m: Module, pkg: Path) -> set[str]:
    """Top-level names of the module's file: the working file beside the notebook, else the
    package's copy. Read with `ast`, never executed."""
    for path in (Path.cwd() / m.file_name, pkg / m.file_name):
        if path.exists():
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"))
            except (SyntaxError, ValueError, UnicodeDecodeError):
                continue
            names = set()
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(node.name)
                elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    names.update(t.id for t in targets if isinstance(t, ast.Name))
            return names
    return set()


def _placeholder(m: Module, name: str):
    def not_run(*args, **kwargs):
        raise NotImplementedError(f"{name} is not defined in this notebook yet: run the cell that "
                                  f"defines it (module {m})")

    not_run.__name__ = not_run.__qualname__ = name
    return not_run


@contextlib.contextmanager
def _installed(m: Module, overlay: types.ModuleType, pkg: Path):
    """`tinytorch.<name>` is `overlay` inside the block; the checks' modules are loaded afresh."""
    import tinytorch

    name, short = m.package_module, m.name
    saved = {k: v for k, v in sys.modules.items() if k == name or _is_check_module(k)}
    had_attr, old_attr = hasattr(tinytorch, short), vars(tinytorch).get(short)
    path = list(sys.path)
    for k in saved:
        del sys.modules[k]
    sys.modules[name] = overlay
    setattr(tinytorch, short, overlay)
    try:
        yield
    finally:
        for k in [k for k in sys.modules if k == name or _is_check_module(k)]:
            del sys.modules[k]
        sys.modules.update({k: v for k, v in saved.items()})
        if had_attr:
            setattr(tinytorch, short, old_attr)
        else:
            vars(tinytorch).pop(short, None)
        sys.path[:] = path


def _is_check_module(name: str) -> bool:
    return name == "tito.checks" or name.startswith("tito.checks.")


@contextlib.contextmanager
def _check_env(pkg: Path, report: Path, task: str | None):
    old = {k: os.environ.get(k) for k in _ENV}
    os.environ.update(checkrun.RUN_ENV, TITO_EXPECT_TINYTORCH=str(pkg), TITO_REPORT=str(report))
    if task:
        os.environ["TITO_CHECK_TASK"] = task
    else:
        os.environ.pop("TITO_CHECK_TASK", None)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
