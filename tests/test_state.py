"""Progress and achievements: schema, atomic writes, locking, Ctrl-C, corrupt files."""

import json
import multiprocessing
import os

import pytest

from tito import state
from tito.errors import TitoError


def test_missing_state_is_empty(tmp_path):
    assert state.completed(tmp_path) == set()
    assert state.get_achievements(tmp_path) == {}


def test_initialise_writes_versioned_files(tmp_path):
    state.initialise(tmp_path)
    for name in ("progress.json", "milestones.json"):
        data = json.loads((tmp_path / ".tito" / name).read_text())
        assert data["schema_version"] == state.SCHEMA_VERSION


def test_record_completion(tmp_path):
    rec = state.record_completion(tmp_path, "03", "ab" * 32)
    assert rec["sha256"] == "ab" * 32 and rec["completed_at"].endswith("+00:00")
    assert state.completed(tmp_path) == {"03"}
    state.note_started(tmp_path, "04")
    assert state.completed(tmp_path) == {"03"}  # started is not complete
    assert "started_at" in state.load_progress(tmp_path)["modules"]["04"]


def test_achievements_api(tmp_path):
    state.record_achievement(tmp_path, "01", 1, {"metrics": {"train_acc": 1.0}, "seed": 0})
    state.record_achievement(tmp_path, "01", "1", {"metrics": {"train_acc": 1.0}, "seed": 1})
    state.record_achievement(tmp_path, "02", 2, {"metrics": {}})
    got = state.get_achievements(tmp_path)
    assert [r["seed"] for r in got["01"]["1"]] == [0, 1]
    assert set(got) == {"01", "02"} and set(got["02"]) == {"2"}
    assert "recorded_at" in got["02"]["2"][0]
    with pytest.raises(TypeError):  # not JSON-able: refused before touching the file
        state.record_achievement(tmp_path, "03", 1, {"x": object()})
    assert "03" not in state.get_achievements(tmp_path)


@pytest.mark.parametrize("content", ["{not json", "", '{"modules": {}}', '[1, 2]',
                                     '{"schema_version": 1, "modules": []}'])
def test_corrupt_file_is_moved_aside_never_reset(tmp_path, content):
    state.initialise(tmp_path)
    path = tmp_path / ".tito" / "progress.json"
    path.write_text(content)
    with pytest.raises(TitoError, match="corrupt") as e:
        state.completed(tmp_path)
    aside = list((tmp_path / ".tito").glob("progress.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == content
    assert aside[0].name in e.value.message
    assert not path.exists()


def test_newer_schema_is_refused_not_moved(tmp_path):
    d = tmp_path / ".tito"
    d.mkdir()
    (d / "progress.json").write_text(json.dumps({"schema_version": 99, "modules": {}}))
    with pytest.raises(TitoError, match="newer"):
        state.completed(tmp_path)
    assert (d / "progress.json").exists()


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    state.record_completion(tmp_path, "01", "a" * 64)
    before = (tmp_path / ".tito" / "progress.json").read_text()

    def ctrl_c(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        state.record_completion(tmp_path, "02", "b" * 64)
    monkeypatch.undo()
    assert (tmp_path / ".tito" / "progress.json").read_text() == before
    assert [p.name for p in (tmp_path / ".tito").iterdir() if p.name.endswith(".tmp")] == []
    assert state.completed(tmp_path) == {"01"}


def test_write_atomic_interrupted_while_writing(tmp_path, monkeypatch):
    target = tmp_path / "f.txt"
    target.write_text("old")
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        state.write_atomic(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def _hammer(root, worker, n):
    for i in range(n):
        state.record_completion(root, f"{worker}-{i}", "c" * 64)


def test_concurrent_writers_lose_nothing(tmp_path):
    ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    procs = [ctx.Process(target=_hammer, args=(tmp_path, w, 15)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    assert len(state.completed(tmp_path)) == 60


def test_no_interrupt_defers_ctrl_c(tmp_path):
    import signal

    done = []
    with pytest.raises(KeyboardInterrupt):
        with state.no_interrupt():
            os.kill(os.getpid(), signal.SIGINT)  # arrives in the middle of the block...
            state.record_completion(tmp_path, "01", "d" * 64)
            done.append(True)  # ...but the block still finishes
    assert done and state.completed(tmp_path) == {"01"}
