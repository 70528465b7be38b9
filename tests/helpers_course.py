"""A tiny fake course for testing the course machinery fast, without the real framework.

Every built module of the real registry gets a two-function reference file (a tiny notebook)
and a check file, so workspaces, check runs, unlocks and `tito dev verify` can be exercised in seconds.
The checks' real conftest (the import guard and the JSON report) is used as is.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
from pathlib import Path

from tito import registry
from tito.workspace import Sources

REAL = Path(registry.__file__).resolve().parent


def take_back(monkeypatch, module_id: str = "20") -> None:
    """The registry with one module not built yet, for the "coming" state (every module is built
    now): the capstone, unless told otherwise."""
    import dataclasses

    modules = tuple(dataclasses.replace(m, built=False) if m.id == module_id else m for m in registry.MODULES)
    monkeypatch.setattr(registry, "MODULES", modules)
    monkeypatch.setattr(registry, "_BY_ID", {m.id: m for m in modules})

FILLER = " ".join(["word"] * 130)  # the lessons of the fake course are long enough, not good
# nbgrader cell metadata (braces doubled: MODULE goes through str.format)
SOLUTION = '{{"grade": false, "grade_id": "%s", "locked": false, "schema_version": 3, "solution": true, "task": false}}'
GRADED = '{{"grade": true, "grade_id": "check-all", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}}'

MODULE = '''# %% [markdown]
# # Module {id} (fake)
#
# Learn {name}.
#
# ## More
#
# {filler}
''' + "".join(f'''
# %% [markdown]
# {{filler}}
''' for _ in range(5)) + '''
# %%
"""Fake module {key}."""

# %% [markdown]
# value: {filler}

# %% nbgrader=''' + SOLUTION % "value" + '''
def value(x):
    """x plus the module number."""
    # HINT: add {n}
    ### BEGIN SOLUTION
    return x + {n}
    ### END SOLUTION


# %% [markdown]
# Thing: {filler}

# %% nbgrader=''' + SOLUTION % "thing" + '''
class Thing:
    def twice(self, x):
        ### BEGIN SOLUTION
        doubled = 2 * x
        return doubled
        ### END SOLUTION


# %% nbgrader=''' + GRADED + '''
if __name__ == "__main__":
    from tito.notebook import check
    check("{id}")
'''

CHECK = '''import pytest

from tinytorch.{name} import Thing, value


def test_value():
    assert value(1) == {n1}, "value: wrong sum"


@pytest.mark.task("twice")
def test_twice():
    assert Thing().twice(3) == 6, "Thing.twice: wrong product"


def test_prereqs_are_the_learners():
    import importlib
    assert value(0) == {n}, "value: wrong sum"
    for name, n in {prereqs!r}:
        assert importlib.import_module("tinytorch." + name).value(0) == n, f"value: {{name}}"
'''


def reference_solution(m: registry.Module) -> str:
    return MODULE.format(id=m.id, key=m.key, n=int(m.id), name=m.name, filler=FILLER)


def make_fake_sources(root: Path) -> Sources:
    """Write a fake reference package (its module files are the lessons) and checks under `root`."""
    ref, checks = root / "ref" / "tinytorch", root / "checks"
    for d in (ref, checks):
        d.mkdir(parents=True)
    (ref / "__init__.py").write_text('"""Fake tinytorch: lazy, imports nothing."""\n')
    (ref / "datasets.py").write_text('"""Fake support file."""\nNAMES = ["mnist"]\n')
    shutil.copy(REAL / "checks" / "conftest.py", checks / "conftest.py")
    for m in registry.built_modules():
        (ref / m.file_name).write_text(reference_solution(m))
        prereqs = [(d.name, int(d.id)) for d in registry.all_prereqs(m)]
        (checks / m.check_file).write_text(CHECK.format(name=m.name, n=int(m.id), n1=1 + int(m.id),
                                                        prereqs=prereqs))
    return Sources(ref, checks)


def solve(ws, m: registry.Module) -> None:
    """Put the reference solution into the learner's working file (what a learner would write)."""
    ws.working_file(m).write_text(reference_solution(m))


def run_cli(args: list[str], capsys=None, cwd: Path | None = None) -> tuple[int, str, str]:
    """Run `tito ARGS` in-process through cli.main (the real error handling); returns
    (exit code, stdout, stderr). Output is captured here (wide, so nothing wraps); `capsys`
    is accepted for symmetry with pytest fixtures but not needed."""
    from tito import cli, ui

    old_argv, old_cwd, old_width = sys.argv, os.getcwd(), ui.console._width
    out, err = io.StringIO(), io.StringIO()
    sys.argv = ["tito", *args]
    ui.console.width = 200
    code = 0
    try:
        if cwd:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli.main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv, ui.console._width = old_argv, old_width
        os.chdir(old_cwd)
    return code, out.getvalue(), err.getvalue()


def without_torch(folder: Path) -> Path:
    """A folder that, first on PYTHONPATH, makes `import torch` fail as in a plain learner install
    (PyTorch is an optional oracle; `pip install tinytorch` does not bring it)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "torch.py").write_text("raise ImportError('torch is not installed (test shim)')\n")
    return folder
