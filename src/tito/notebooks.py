"""A module file as a notebook: its cells, its lesson, and the learner's `.py`/`.ipynb` pair.

A module is one jupytext percent file (docs/MODULE_FORMAT.md). In a workspace it is offered as a
pair, `modules/03_layers/layers.py` and `layers.ipynb`, so the learner can edit either: Jupyter
and Colab open the notebook, an editor the `.py`. `sync` decides which one the learner edited
last, brings the other up to date, and says which file it read - a stale file is never checked
silently, and whatever it overwrites is backed up first.

    cells = parse(text)                       # nbformat cells (markdown / code, nbgrader metadata)
    lesson_text(text)                         # the first markdown cell: title + summary
    lesson_problems(text)                     # what breaks the format rules (for tito dev verify)
    write_pair(py_path, text)                 # the .py and its .ipynb
    result = sync(py_path, backups_dir)       # result.read: the file the learner edited last
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tito.errors import TitoError
from tito.strip import BEGIN

MIN_MARKDOWN_CELLS = 8
MIN_WORDS = 1000
_WORD = re.compile(r"[A-Za-z]{2,}")


def _jupytext():
    import jupytext  # imported on use: the CLI starts faster without it

    return jupytext


def parse(text: str):
    """The notebook of a percent-format module file (nbformat NotebookNode)."""
    return _jupytext().reads(text, fmt="py:percent")


def notebook_json(text: str) -> str:
    """The `.ipynb` of a module file: paired with its `.py` (jupytext), Python 3 kernel."""
    nb = parse(text)
    meta = nb.metadata.setdefault("jupytext", {})
    meta["formats"] = "ipynb,py:percent"
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return _jupytext().writes(nb, fmt="ipynb")


def py_text(notebook_path: Path) -> str:
    """The `.py` (percent format, no header) of a notebook file."""
    jt = _jupytext()
    try:
        nb = jt.read(notebook_path, fmt="ipynb")
    except Exception as e:  # noqa: BLE001 - nbformat raises many types for a broken file
        raise TitoError(f"{notebook_path} is not a readable notebook ({type(e).__name__}: {e})",
                        f"fix it in Jupyter, or delete it: the .py next to it is used then") from None
    nb.metadata.setdefault("jupytext", {})["notebook_metadata_filter"] = "-all"
    return jt.writes(nb, fmt="py:percent")


# ---------------------------------------------------------------------------------------------
# The lesson inside a module file
# ---------------------------------------------------------------------------------------------
def lesson_text(text: str) -> str:
    """The first markdown cell (title and opening), as markdown."""
    for cell in parse(text).cells:
        if cell.cell_type == "markdown":
            return cell.source
    return ""


def markdown_words(text: str) -> tuple[int, int]:
    """(markdown cells, words in them)."""
    md = [c.source for c in parse(text).cells if c.cell_type == "markdown"]
    return len(md), sum(len(_WORD.findall(s)) for s in md)


def lesson_problems(text: str) -> list[str]:
    """What keeps a module file from being a lesson notebook in the course's format."""
    cells = parse(text).cells
    problems = []
    n_md, words = markdown_words(text)
    if n_md < MIN_MARKDOWN_CELLS or words < MIN_WORDS:
        problems.append(f"the lesson is thin: {n_md} markdown cells and {words} words "
                        f"(at least {MIN_MARKDOWN_CELLS} and {MIN_WORDS})")
    ids: list[str] = []
    graded = 0
    for i, cell in enumerate(cells):
        meta = cell.metadata.get("nbgrader", {})
        first = (cell.source.strip().splitlines() or [""])[0][:50]
        if meta.get("grade_id"):
            ids.append(meta["grade_id"])
        if cell.cell_type != "code":
            continue
        if BEGIN in cell.source:
            if not (meta.get("solution") and meta.get("grade") is False and "grade_id" in meta):
                problems.append(f"cell {i + 1} ({first!r}) has a solution region but no nbgrader "
                                "solution metadata")
            if i == 0 or cells[i - 1].cell_type != "markdown":
                problems.append(f"cell {i + 1} ({first!r}): no markdown cell teaches it just before")
        if "check(" in cell.source and "tito.notebook" in cell.source:
            graded += 1
            if not (meta.get("grade") and meta.get("locked") and meta.get("points")):
                problems.append(f"cell {i + 1} ({first!r}) runs checks but is not a locked, graded "
                                "nbgrader cell with points")
            if "__main__" not in cell.source:
                problems.append(f"cell {i + 1} ({first!r}) runs checks on import: guard it with "
                                "`if __name__ == \"__main__\":`")
        if meta and "schema_version" not in meta:
            problems.append(f"cell {i + 1} ({first!r}): nbgrader metadata without schema_version")
    if graded == 0:
        problems.append("no check cell (`from tito.notebook import check`)")
    dup = sorted({g for g in ids if ids.count(g) > 1})
    if dup:
        problems.append(f"nbgrader grade_ids used twice: {', '.join(dup)}")
    return problems


# ---------------------------------------------------------------------------------------------
# The learner's pair
# ---------------------------------------------------------------------------------------------
def notebook_path(py_path: Path) -> Path:
    return Path(py_path).with_suffix(".ipynb")


def write_pair(py_path: Path, text: str) -> None:
    """Write the `.py` and its `.ipynb` (the notebook second, so it is never the older one)."""
    from tito.state import write_atomic

    write_atomic(Path(py_path), text)
    write_atomic(notebook_path(py_path), notebook_json(text))


@dataclass
class SyncResult:
    read: Path  # the file whose content is checked (the one edited last)
    updated: Path | None = None  # the file brought up to date from it, if any
    backup: Path | None = None  # where the overwritten version was saved

    def note(self, shown: str | None = None) -> str | None:
        """One line for the learner, when the notebook was the file read (`shown`: its path as
        the learner should see it)."""
        if self.read.suffix != ".ipynb":
            return None
        line = f"read {shown or self.read.name}"
        if self.updated:
            line += f" (edited last; {self.updated.name} updated from it"
            line += f", the old one saved in {self.backup})" if self.backup else ")"
        return line


def sync(py_path: Path, backups_dir: Path | None = None) -> SyncResult:
    """Bring the pair up to date from the file edited last; returns which file that was.

    The notebook wins when it is newer and its code differs from the `.py`; the `.py` wins when
    it is newer (the notebook is rewritten, keeping its outputs where the cells did not change).
    Whatever is overwritten is first copied into `backups_dir`.
    """
    py_path = Path(py_path)
    nb_path = notebook_path(py_path)
    if not nb_path.exists():
        return SyncResult(py_path)
    if not py_path.exists():
        text = py_text(nb_path)
        _write_py(py_path, text)
        return SyncResult(nb_path, py_path)
    nb_newer = nb_path.stat().st_mtime_ns > py_path.stat().st_mtime_ns
    current = py_path.read_text(encoding="utf-8")
    from_nb = py_text(nb_path)
    if from_nb == current:
        return SyncResult(nb_path if nb_newer else py_path)
    if nb_newer:
        saved = backup_copy(py_path, backups_dir)
        _write_py(py_path, from_nb)
        return SyncResult(nb_path, py_path, saved)
    saved = backup_copy(nb_path, backups_dir)
    _refresh_notebook(nb_path, current)
    st = py_path.stat()  # the pair now holds the same code: neither is "newer"
    os.utime(nb_path, ns=(st.st_atime_ns, st.st_mtime_ns))
    return SyncResult(py_path, nb_path, saved)


def _write_py(py_path: Path, text: str) -> None:
    from tito.state import write_atomic

    write_atomic(py_path, text)


def _refresh_notebook(nb_path: Path, text: str) -> None:
    """Rewrite the notebook from `text`, keeping the outputs of cells whose code is unchanged."""
    from tito.state import write_atomic

    jt = _jupytext()
    from jupytext.combine import combine_inputs_with_outputs

    new = jt.reads(notebook_json(text), fmt="ipynb")
    try:
        old = jt.read(nb_path, fmt="ipynb")
        new = combine_inputs_with_outputs(new, old, fmt="py:percent")
    except Exception:  # noqa: BLE001 - an unreadable old notebook: no outputs to keep
        pass
    write_atomic(nb_path, jt.writes(new, fmt="ipynb"))


def backup_copy(path: Path, backups_dir: Path | None) -> Path | None:
    """Copy `path` to `backups_dir/<timestamp>-<name>` (a counter when the second repeats)."""
    if backups_dir is None:
        return None
    backups_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest, n = backups_dir / f"{stamp}-{path.name}", 1
    while dest.exists():
        n += 1
        dest = backups_dir / f"{stamp}.{n:03d}-{path.name}"
    shutil.copy2(path, dest)
    return dest
