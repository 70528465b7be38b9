"""What the `tito module` commands do, as plain functions (the CLI only parses and prints).

    rows = module_rows(ws)                  # status of all 20 modules
    info = start(ws, get_module("03"))      # lesson summary + the file to edit (gated by prereqs)
    report = test(ws, module)               # the checks on the learner's working file
    result = complete(ws, module)           # checks -> export -> progress -> unlocks
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from tito import checkrun, notebooks, registry, state
from tito.checkrun import CheckReport
from tito.errors import TitoError
from tito.registry import Milestone, Module, Part
from tito.strip import solution_functions
from tito.workspace import Sources, Workspace, sha256, write_module_files

COMING, COMPLETE, LOCKED, IN_PROGRESS, AVAILABLE = "coming", "complete", "locked", "in progress", "available"


@dataclass
class Row:
    module: Module
    status: str
    note: str = ""


def module_status(ws: Workspace, m: Module, records: dict, src: Sources) -> Row:
    """coming / complete / locked / in progress (file differs from the stripped one) / available.

    `records` is progress.json's "modules" table (id -> record).
    """
    if not m.built:
        return Row(m, COMING)
    wf = ws.working_file(m)
    completed = {mid for mid, rec in records.items() if rec.get("completed_at")}
    if m.id in completed:
        recorded = records[m.id].get("sha256")
        edited = wf.exists() and recorded is not None and recorded != sha256(wf)
        return Row(m, COMPLETE, "edited since export" if edited else "")
    missing = registry.missing_prereqs(m, completed)
    if missing:
        return Row(m, LOCKED, "needs " + registry.compact_ids(x.id for x in missing))
    if _edited(wf, src.stripped_text(m)):
        return Row(m, IN_PROGRESS)
    return Row(m, AVAILABLE)


def _edited(wf: Path, stripped: str) -> bool:
    """The working file or its notebook twin differs from the starting version."""
    if wf.exists() and wf.read_text(encoding="utf-8") != stripped:
        return True
    nb = notebooks.notebook_path(wf)
    if nb.exists() and wf.exists() and nb.stat().st_mtime_ns > wf.stat().st_mtime_ns:
        try:
            return notebooks.py_text(nb) != stripped
        except TitoError:
            return True
    return False


def module_rows(ws: Workspace, src: Sources | None = None) -> list[Row]:
    src = src or Sources.installed()
    records = state.load_progress(ws.root)["modules"]
    return [module_status(ws, m, records, src) for m in registry.MODULES]


def next_step(ws: Workspace, rows: list[Row] | None = None) -> str:
    """One sentence: the command the learner should run next."""
    rows = rows or module_rows(ws)
    for r in rows:
        if r.status == IN_PROGRESS:
            return f"keep going on module {r.module}: edit {rel(ws, ws.working_file(r.module))}, " \
                   f"then `tito module test {r.module.id}`"
    nxt = registry.next_module(ws.completed())
    if nxt:
        return f"start module {nxt}: `tito module start {nxt.id}`"
    ready = registry.runnable_parts(ws.completed())
    if ready:
        return "all available modules are complete: rerun history with `tito milestone list`"
    return "all built modules are complete - more are coming"


def rel(ws: Workspace, path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------------------------
# start / test / complete
# ---------------------------------------------------------------------------------------------
def gate(ws: Workspace, m: Module, force: bool = False) -> list[Module]:
    """Refuse 'coming' modules always, and locked ones unless forced; returns missing prereqs."""
    if not m.built:
        raise TitoError(f"module {m} is not built yet: it is coming in a later release",
                        "see `tito module list` for the modules you can do now")
    missing = registry.missing_prereqs(m, ws.completed())
    if missing and not force:
        names = ", ".join(str(x) for x in missing)
        # the earliest missing prerequisite: its own prerequisites are all complete
        raise TitoError(f"module {m} is locked: complete {names} first",
                        f"next: tito module start {missing[0].id}   (or pass --force to go ahead "
                        "anyway)")
    return missing


@dataclass
class StartInfo:
    module: Module
    path: Path
    lesson_summary: str
    functions: list[str]
    missing: list[Module] = field(default_factory=list)  # non-empty only with --force
    created: bool = False


def lesson_summary(text: str) -> str:
    """The lesson's opening: everything between its title and its first `## ` section."""
    lines = text.strip().splitlines()
    body = lines[1:] if lines and lines[0].startswith("# ") else lines
    paragraphs, current = [], []
    for line in body:
        if line.startswith("## "):
            break
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return "\n\n".join(paragraphs)  # hard-wrapped lines joined: the terminal wraps them


def start(ws: Workspace, m: Module, force: bool = False, src: Sources | None = None) -> StartInfo:
    src = src or Sources.installed()
    missing = gate(ws, m, force)
    created = not ws.working_file(m).exists()
    if created:  # e.g. a module built after this workspace was made
        write_module_files(ws, m, src)
    state.note_started(ws.root, m.id)
    return StartInfo(m, ws.working_file(m), lesson_summary(src.lesson_text(m)),
                     solution_functions(src.reference_text(m)), missing, created)


def _working_text(ws: Workspace, m: Module) -> tuple[str, list[str]]:
    """The learner's code, from the file of the pair they edited last (the other is synced);
    returns (text, notes saying which file was read)."""
    wf = ws.working_file(m)
    synced = notebooks.sync(wf, ws.backups_dir(m))
    if not wf.exists():
        raise TitoError(f"{rel(ws, wf)} does not exist", f"create it with: tito module start {m.id}")
    checkrun.check_syntax(wf)
    note = synced.note(rel(ws, synced.read))
    notes = [note] if note else []
    return wf.read_bytes().decode("utf-8"), notes  # no newline translation: exported byte for byte


def test(ws: Workspace, m: Module, keyword: str | None = None, task: str | None = None,
         force: bool = False, src: Sources | None = None) -> CheckReport:
    """Run the checks on the learner's working file (with their exported modules around it)."""
    gate(ws, m, force)
    files: dict = checkrun.workspace_files(ws, m)
    files[m.file_name], notes = _working_text(ws, m)
    report = checkrun.run_checks(m, files, src=src, keyword=keyword, task=task,
                                 origins={m.file_name: ws.working_file(m)})
    report.notes = notes
    return report


@dataclass
class CompleteResult:
    report: CheckReport
    exported: bool
    unlocked: list[tuple[Milestone, list[Part]]] = field(default_factory=list)  # see unlock_events
    record: dict = field(default_factory=dict)


def complete(ws: Workspace, m: Module, force: bool = False, src: Sources | None = None) -> CompleteResult:
    """All checks pass on the learner's file -> export it, record it, report what it unlocked.

    Exactly the text that was checked is exported. On any failure nothing is written.
    """
    gate(ws, m, force)
    text, notes = _working_text(ws, m)
    files: dict = checkrun.workspace_files(ws, m)
    files[m.file_name] = text
    report = checkrun.run_checks(m, files, src=src, origins={m.file_name: ws.working_file(m)})
    report.notes = notes
    if not report.ok:
        return CompleteResult(report, exported=False)
    before = ws.completed()
    with state.no_interrupt():  # the export and its record: both or neither
        state.write_atomic(ws.exported_file(m), text)
        record = state.record_completion(ws.root, m.id, _sha(text), checks_passed=len(report.passed))
    after = ws.completed()
    return CompleteResult(report, True, registry.unlock_events(before, after), record)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
