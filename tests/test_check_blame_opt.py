"""The checks of the optimization tier (modules 14-19) must catch the seeded bugs of issue 10 and
name the function, as tests/test_check_blame.py does for modules 06-09: each bug is pasted at the
end of a copy of the reference module, staged with the reference prerequisites as `tito module
test` stages a learner's file, and the checks run through `tito.checkrun.run_checks` with
`import torch` made to fail. Each module's bugs are added as their own test functions below.
"""

from __future__ import annotations

import textwrap

import pytest

from test_check_blame import Bug, run_with_bug


def block_torch(tmp_path, monkeypatch) -> None:
    """A `torch` module that fails to import, first on the checks' PYTHONPATH."""
    shim = tmp_path / "no-torch"
    shim.mkdir()
    (shim / "torch.py").write_text("raise ImportError('torch is not installed (test shim)')\n")
    monkeypatch.setenv("PYTHONPATH", str(shim))


def assert_caught_and_named(name: str, b: Bug, task) -> None:
    report = run_with_bug(Bug(b.module, task, b.patch, b.culprits, b.caught_by))
    assert not report.collect_errors, f"{name}: the checks did not load: {report.collect_errors[:1]}"
    failed = report.failures()
    assert failed, f"{name}: every check of task {task!r} passed on the seeded bug"
    assert any(b.caught_by in r.name for r in failed), \
        f"{name}: no failing check matches {b.caught_by!r}; failures: {[r.name for r in failed]}"
    for r in failed:
        assert r.function in b.culprits, \
            f"{name}: {r.name} blames {r.function!r}, not one of {sorted(b.culprits)}: {r.message[:400]}"
        assert "distinct failures" not in r.message, f"{name}: {r.name} reported several failures at once"


# --- 17 memoization: a KV cache that appends keys but re-reads stale values ------------------
# append writes the keys of every step, but the values only on the first append after a reset
# (a forgotten line): values(layer) returns zeros, or the previous sequence's values after a
# reset. Every check that uses the cache (attention, forward, generate) must blame the cache.
KV_STALE_VALUES = Bug("17", "KVCache", textwrap.dedent("""
    class KVCache(KVCache):
        def append(self, layer, k, v):
            k = k.data if isinstance(k, Tensor) else np.asarray(k)
            v = v.data if isinstance(v, Tensor) else np.asarray(v)
            start, stop = self.lengths[layer], self.lengths[layer] + k.shape[2]
            if stop > self.max_len:
                raise ValueError(f"KVCache.append: {stop} positions exceed max_len={self.max_len}")
            self.k[layer, :, :, start:stop] = k
            if start == 0:
                self.v[layer, :, :, start:stop] = v  # BUG: later values are never written
            self.lengths[layer] = stop
    """), frozenset({"KVCache.append"}), "kvcache_append_reads_back")


@pytest.mark.parametrize("task", ["KVCache", None], ids=["task-KVCache", "whole-module"])
def test_memoization_kv_cache_with_stale_values_is_caught_and_named(task, tmp_path, monkeypatch):
    block_torch(tmp_path, monkeypatch)
    assert_caught_and_named("kv_cache_stale_values", KV_STALE_VALUES, task)


# --- 16 compression: pruning masks not re-applied after an optimizer step --------------------
# attach as a learner gets it wrong: the masks applied once, when attached, and the optimizer left
# alone; or the wrapper applying them BEFORE the optimizer's own update, which then revives the
# pruned weights. Either way the "90% sparse" model is dense again after one step.
PRUNE_ATTACH_BUGS = {
    "prune_masks_applied_once_not_after_each_step": Bug("16", "PruneMasks", textwrap.dedent("""
        class PruneMasks(PruneMasks):
            def attach(self, optimizer):
                self.apply()  # BUG: zeroed now, never again: optimizer.step() is not wrapped
                return optimizer
        """), frozenset({"PruneMasks.attach"}), "after_every_step"),
    "prune_masks_applied_before_the_step": Bug("16", "PruneMasks", textwrap.dedent("""
        class PruneMasks(PruneMasks):
            def attach(self, optimizer):
                step = optimizer.step

                def masked_step(*args, **kwargs):
                    self.apply()  # BUG: before the update, which moves the pruned weights again
                    return step(*args, **kwargs)

                optimizer.step = masked_step
                return optimizer
        """), frozenset({"PruneMasks.attach"}), "after_every_step"),
}


@pytest.mark.parametrize("task", ["PruneMasks", None], ids=["task-PruneMasks", "whole-module"])
@pytest.mark.parametrize("name", sorted(PRUNE_ATTACH_BUGS))
def test_compression_masks_not_reapplied_after_a_step_are_caught_and_named(name, task, tmp_path, monkeypatch):
    block_torch(tmp_path, monkeypatch)
    assert_caught_and_named(name, PRUNE_ATTACH_BUGS[name], task)
