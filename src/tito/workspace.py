"""Learner workspaces: where they are, how they are made, and the files in them.

    DIR/
      README.md                       what to do next
      modules/03_layers/layers.py     the lesson and the learner's working file (stripped reference)
      modules/03_layers/layers.ipynb  the same, as a notebook (tito syncs the pair, see notebooks)
      tinytorch/                      the learner's own package: support files + exported modules
      .tito/progress.json             completed modules (see tito.state)
      .tito/milestones.json           achievements
      .tito/backups/                  files saved by `tito module reset` and by the pair's sync

The reference sources and checks are located through the installed packages (never by importing
`tinytorch` submodules into this process), so a plain `pip install .` is enough. `tito init`
registers the new workspace with the Python environment (tito.activation), so that
`import tinytorch` anywhere in it is the learner's package.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tito import activation, notebooks, registry, state
from tito.errors import TitoError
from tito.registry import Module
from tito.strip import strip_source

ENV_WORKSPACE = "TITO_WORKSPACE"


# ---------------------------------------------------------------------------------------------
# Where the course material lives
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sources:
    """The reference package directory (its module files are the lessons) and tito's checks."""

    reference: Path
    checks: Path

    @staticmethod
    def installed() -> "Sources":
        """The reference framework installed with this `tito` (as `tinytorch_reference`).

        Never the first `tinytorch` on sys.path: in a learner's environment that is their own
        workspace package. The reference is located without being imported.
        """
        import importlib.util

        tito_dir = Path(__file__).resolve().parent
        spec = importlib.util.find_spec("tinytorch_reference.tinytorch")
        if spec is None or not spec.submodule_search_locations:
            raise TitoError("the reference framework (tinytorch_reference) is not installed",
                            "reinstall: pip install tinytorch")
        reference = Path(list(spec.submodule_search_locations)[0]).resolve()
        return Sources(reference, tito_dir / "checks")

    def reference_file(self, m: Module) -> Path:
        return self.reference / m.file_name

    def reference_text(self, m: Module) -> str:
        path = self.reference_file(m)
        if not path.exists():
            raise TitoError(f"the reference for module {m} is missing: {path}",
                            "reinstall tinytorch")
        return path.read_text(encoding="utf-8")

    def stripped_text(self, m: Module) -> str:
        path = self.reference_file(m)
        if not path.exists():
            self.reference_text(m)  # raises the one-line error
        return _stripped(str(path), path.stat().st_mtime_ns)

    def lesson_text(self, m: Module) -> str:
        """The lesson's opening (the module file's first markdown cell)."""
        text = notebooks.lesson_text(self.reference_text(m))
        return text or f"# {m.id} {m.title}\n\n{m.teaches}\n"

    def check_file(self, m: Module) -> Path:
        return self.checks / m.check_file

    def support_files(self) -> list[Path]:
        """Reference files that are not learner modules (`__init__.py`, datasets, transforms...)."""
        module_files = {m.file_name for m in registry.MODULES}
        return sorted(p for p in self.reference.iterdir()
                      if p.suffix == ".py" and p.name not in module_files)


@lru_cache(maxsize=64)
def _stripped(path: str, mtime: int) -> str:
    return strip_source(Path(path).read_text(encoding="utf-8"), path)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# A workspace
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def package(self) -> Path:
        return self.root / "tinytorch"

    @property
    def state(self) -> Path:
        return self.root / state.STATE_DIR

    def module_dir(self, m: Module) -> Path:
        return self.root / "modules" / m.key

    def working_file(self, m: Module) -> Path:
        """The file the learner edits: modules/NN_name/name.py."""
        return self.module_dir(m) / m.file_name

    def exported_file(self, m: Module) -> Path:
        return self.package / m.file_name

    def backups_dir(self, m: Module) -> Path:
        return self.state / "backups" / m.key

    def completed(self) -> set[str]:
        return state.completed(self.root)


def find_workspace(explicit: str | Path | None = None, cwd: Path | None = None) -> Workspace:
    """`--workspace`, else $TITO_WORKSPACE, else the first directory upward holding `.tito/`."""
    given = explicit or os.environ.get(ENV_WORKSPACE)
    if given:
        root = Path(given).expanduser().resolve()
        if not (root / state.STATE_DIR).is_dir():
            raise TitoError(f"{root} is not a TinyTorch workspace (no .tito/ folder)",
                            f"create one with: tito init {given}")
        return Workspace(root)
    here = Path(cwd or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / state.STATE_DIR).is_dir():
            return Workspace(d)
    raise TitoError("no TinyTorch workspace found here or in any parent folder",
                    "create one with `tito init DIR` and cd into it, or pass --workspace DIR")


def _readme(root: Path, first: Module) -> str:
    return f"""# My TinyTorch workspace

You build TinyTorch here, one module at a time. Each module is a file to complete:

    modules/{first.key}/{Path(first.file_name).stem}.ipynb   <- start here: the lesson, as a notebook
    modules/{first.key}/{first.file_name}      the same lesson as a .py file (edit either one)

The loop, for every module:

    tito module start {first.id}       read the lesson, see what to write
    (read the lesson; in each cell that says `raise NotImplementedError()`, write your code;
     run the "try it" and "check" cells below it)
    tito module test {first.id}        run the checks on YOUR file
    tito module complete {first.id}    all checks pass -> exported into tinytorch/, next one unlocks

`tito status` shows where you are; `tito milestone list` the history you can rerun with your code.
Nothing in `tinytorch/` is yours to edit: it is filled only by `tito module complete`.
`import tinytorch` in this Python environment is that package, from any folder or notebook
(`tito init` registered this workspace; `tito workspace activate` switches between workspaces).
Open the notebooks with the "TinyTorch" kernel or this environment's Python 3 kernel.
Your progress lives in `.tito/` (keep it; `tito module reset` backs files up there).
"""


def init_workspace(target: str | Path, solutions: bool = False, src: Sources | None = None,
                   activate: bool = False) -> Workspace:
    """Create a workspace at `target`; with `solutions`, every built module is solved and complete.
    With `activate`, it becomes the environment's `tinytorch` (see tito.activation)."""
    src = src or Sources.installed()
    root = Path(target).expanduser().resolve()
    for name in (state.STATE_DIR, "modules", "tinytorch"):
        if (root / name).exists():
            raise TitoError(f"{root} already holds a workspace ({name}/ exists)",
                            "pick another folder, or use `tito status` there")
    if root.exists() and not root.is_dir():
        raise TitoError(f"{root} exists and is not a folder")
    built = registry.built_modules()
    texts = {m.id: (src.reference_text(m) if solutions else src.stripped_text(m)) for m in built}
    ws = Workspace(root)
    ws.package.mkdir(parents=True)
    for f in src.support_files():
        shutil.copy2(f, ws.package / f.name)
    for m in built:
        write_module_files(ws, m, src, texts[m.id])
    (root / "README.md").write_text(_readme(root, built[0]), encoding="utf-8")
    state.initialise(root)
    if solutions:
        for m in built:
            export(ws, m)
    if activate:
        activation.activate(root)
    return ws


def write_module_files(ws: Workspace, m: Module, src: Sources, text: str | None = None) -> Path:
    """Write a module's working file (stripped unless `text` is given) and its notebook twin."""
    ws.module_dir(m).mkdir(parents=True, exist_ok=True)
    notebooks.write_pair(ws.working_file(m), src.stripped_text(m) if text is None else text)
    return ws.working_file(m)


def export(ws: Workspace, m: Module) -> dict:
    """Copy the working file into the learner's package and record the completion."""
    raw = ws.working_file(m).read_bytes()
    with state.no_interrupt():  # the export and its record: both or neither
        state.write_atomic(ws.exported_file(m), raw.decode("utf-8"))
        return state.record_completion(ws.root, m.id, hashlib.sha256(raw).hexdigest())


# ---------------------------------------------------------------------------------------------
# Backups (reset never deletes work)
# ---------------------------------------------------------------------------------------------
def backup(ws: Workspace, m: Module) -> Path | None:
    """Save the working file under .tito/backups/NN_name/<timestamp>-name.py (None if absent).
    The pair is synced first, so an edit made in the notebook is what gets saved."""
    wf = ws.working_file(m)
    notebooks.sync(wf, ws.backups_dir(m))
    if not wf.exists():
        return None
    return notebooks.backup_copy(wf, ws.backups_dir(m))


def list_backups(ws: Workspace, m: Module) -> list[Path]:
    """Backups of a module, oldest first."""
    d = ws.backups_dir(m)
    return sorted(d.glob(f"*-{m.file_name}"), key=lambda p: p.name) if d.is_dir() else []


def reset(ws: Workspace, m: Module, src: Sources | None = None) -> Path | None:
    """Back up the working file, then put the stripped version back; returns the backup."""
    src = src or Sources.installed()
    saved = backup(ws, m)
    write_module_files(ws, m, src)
    return saved


def restore(ws: Workspace, m: Module, which: str | None = None) -> tuple[Path, Path | None]:
    """Restore a backup (the newest, or the one whose name contains `which`).

    The current working file is backed up first, so a restore can be undone too.
    Returns (restored backup, backup of the file it replaced).
    """
    backups = list_backups(ws, m)
    if which:
        backups = [b for b in backups if which in b.name]
    if not backups:
        raise TitoError(f"no backup{f' matching {which!r}' if which else ''} for module {m}",
                        f"see: tito module reset {m.id} --list-backups")
    chosen = backups[-1]
    saved = backup(ws, m)
    ws.module_dir(m).mkdir(parents=True, exist_ok=True)
    notebooks.write_pair(ws.working_file(m), chosen.read_text(encoding="utf-8"))
    return chosen, saved
