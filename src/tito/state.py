"""Workspace state that cannot be lost: `.tito/progress.json` and `.tito/milestones.json`.

Every write happens under an exclusive lock (`.tito/state.lock`, fcntl where available), goes to
a temporary file in the same directory, is fsync'ed and then moved over the old file with
`os.replace` - an atomic rename, so a Ctrl-C or a crash at any moment leaves either the old or
the new file, never half of one. A file that does not parse is moved aside to
`<name>.corrupt-<timestamp>` and reported: it is never silently reset.

    progress.json    {"schema_version": 1, "modules": {"03": {"completed_at": ..., "sha256": ...}}}
    milestones.json  {"schema_version": 1, "achievements": {"01": {"1": [record, ...]}}}
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from tito.errors import TitoError

try:  # POSIX; on Windows writes are still atomic, only unlocked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

SCHEMA_VERSION = 1
STATE_DIR = ".tito"
PROGRESS = "progress.json"
MILESTONES = "milestones.json"
_EMPTY = {PROGRESS: {"modules": {}}, MILESTONES: {"achievements": {}}}


def now() -> str:
    """The current time as an ISO-8601 UTC string (seconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def state_dir(root: Path) -> Path:
    return Path(root) / STATE_DIR


@contextlib.contextmanager
def locked(root: Path):
    """Hold the workspace's state lock (blocking) for the duration of the block."""
    d = state_dir(root)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "state.lock", "a+") as fh:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def no_interrupt():
    """Defer Ctrl-C until the block is done, so that steps that belong together (an export and
    its progress record) happen both or neither. Outside the main thread: a plain block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically: temp file in the same dir, fsync, os.replace."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:  # Ctrl-C included: never leave the temp file behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (POSIX)
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _read(root: Path, name: str) -> dict:
    """Load one state file; a missing file is empty state, a broken one is moved aside."""
    path = state_dir(root) / name
    if not path.exists():
        return {"schema_version": SCHEMA_VERSION, **copy.deepcopy(_EMPTY[name])}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("schema_version"), int):
            raise ValueError("no schema_version")
        if data["schema_version"] > SCHEMA_VERSION:
            raise TitoError(f"{path} has schema version {data['schema_version']}, newer than this "
                            f"tito understands ({SCHEMA_VERSION})", "upgrade: pip install -U tinytorch")
        for key, empty in _EMPTY[name].items():
            if not isinstance(data.get(key), type(empty)):
                raise ValueError(f"{key!r} is missing or not a {type(empty).__name__}")
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        aside = path.with_name(f"{name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(path, aside)
        raise TitoError(
            f"{path} is corrupt ({str(e)[:80]}); it was moved aside to {aside.name}",
            f"nothing was reset: repair it and move it back, or run the command again to start "
            f"{name} afresh") from None
    return data


def _write(root: Path, name: str, data: dict) -> None:
    data = {"schema_version": SCHEMA_VERSION, **{k: v for k, v in data.items() if k != "schema_version"}}
    write_atomic(state_dir(root) / name, json.dumps(data, indent=2, sort_keys=True) + "\n")


def initialise(root: Path) -> None:
    """Create empty state files (used by `tito init`)."""
    with locked(root):
        for name in (PROGRESS, MILESTONES):
            if not (state_dir(root) / name).exists():
                _write(root, name, _read(root, name))


# ---------------------------------------------------------------------------------------------
# Module progress
# ---------------------------------------------------------------------------------------------
def load_progress(root: Path) -> dict:
    """The whole progress document ({"schema_version", "modules": {id: record}})."""
    with locked(root):
        return _read(root, PROGRESS)


def completed(root: Path) -> set[str]:
    """Ids of the modules completed (checks passed and exported) in this workspace."""
    return {mid for mid, rec in load_progress(root)["modules"].items() if rec.get("completed_at")}


def record_completion(root: Path, module_id: str, sha256: str, **extra) -> dict:
    """Mark a module complete (time + sha256 of the exported file); returns the record."""
    with locked(root):
        data = _read(root, PROGRESS)
        rec = dict(data["modules"].get(module_id, {}))
        rec.update(completed_at=now(), sha256=sha256, **extra)
        data["modules"][module_id] = rec
        _write(root, PROGRESS, data)
    return rec


def note_started(root: Path, module_id: str) -> None:
    """Remember when the learner first started a module (kept across completions)."""
    with locked(root):
        data = _read(root, PROGRESS)
        rec = data["modules"].setdefault(module_id, {})
        if "started_at" not in rec:
            rec["started_at"] = now()
            _write(root, PROGRESS, data)


# ---------------------------------------------------------------------------------------------
# Milestone achievements (written by `tito milestone run`)
# ---------------------------------------------------------------------------------------------
def record_achievement(root: Path, milestone_id: str, part: int | str, record: dict) -> dict:
    """Append one successful run of a milestone part; `recorded_at` is added if absent."""
    rec = {"recorded_at": now(), **record}
    json.dumps(rec)  # fail here, before touching the file, if the record is not JSON-able
    with locked(root):
        data = _read(root, MILESTONES)
        data["achievements"].setdefault(milestone_id, {}).setdefault(str(part), []).append(rec)
        _write(root, MILESTONES, data)
    return rec


def record_submission(root: Path, milestone_id: str, record: dict) -> dict:
    """Append one passing `tito milestone submit` of a milestone notebook, under "submissions"
    (an optional key: files written before it existed stay valid); `submitted_at` is added."""
    rec = {"submitted_at": now(), **record}
    json.dumps(rec)  # fail here, before touching the file, if the record is not JSON-able
    with locked(root):
        data = _read(root, MILESTONES)
        subs = data.get("submissions") if isinstance(data.get("submissions"), dict) else {}
        subs.setdefault(milestone_id, []).append(rec)
        data["submissions"] = subs
        _write(root, MILESTONES, data)
    return rec


def get_submissions(root: Path) -> dict[str, list[dict]]:
    """{milestone id: [recorded submissions, oldest first]}."""
    with locked(root):
        subs = _read(root, MILESTONES).get("submissions")
    return subs if isinstance(subs, dict) else {}


def get_achievements(root: Path) -> dict[str, dict[str, list[dict]]]:
    """{milestone id: {part number as str: [records, oldest first]}}; only achieved parts appear."""
    with locked(root):
        return _read(root, MILESTONES)["achievements"]
