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


# --- 15 quantization: a zero-point with the wrong sign; a per-channel scale from the wrong axis --
# compute_qparams as a learner writes it (the given code around the solution region unchanged),
# with the two lines the bugs change left as {rows} and {zero_point}
QPARAMS = """
    def compute_qparams(x, axis=None, method="minmax", percentile=99.99):
        x = np.asarray(_array(x), dtype=np.float32)
        if method not in ("minmax", "percentile"):
            raise ValueError(f"compute_qparams: method must be 'minmax' or 'percentile', got {{method!r}}")
        if axis is not None:
            axis = axis % x.ndim
        rows = {rows}
        if method == "minmax":
            lo, hi = rows.min(axis=1), rows.max(axis=1)
        else:
            lo, hi = np.percentile(rows, [100 - percentile, percentile], axis=1)
        lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 0.0)
        scale = ((hi - lo) / (QMAX - QMIN)).astype(np.float32)
        scale = np.where(scale > 0, scale, np.float32(1.0))
        zero_point = np.clip({zero_point}, QMIN, QMAX)
        n = 1 if axis is None else x.shape[axis]
        if np.shape(scale) != (n,) or np.shape(zero_point) != (n,):
            raise ValueError(f"compute_qparams: {{np.shape(scale)}} scales, expected ({{n}},)")
        if axis is None:
            return QuantParams(scale.reshape(()), zero_point.reshape(()), None)
        return QuantParams(scale, zero_point, axis)
"""
ROWS = "x.reshape(1, -1) if axis is None else np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)"
ZERO_POINT = "QMIN - np.rint(lo / scale)"


def _qparams_bug(rows=ROWS, zero_point=ZERO_POINT) -> str:
    return textwrap.dedent(QPARAMS.format(rows=rows, zero_point=zero_point))


# the layers and quantize_model call compute_qparams: in a whole-module run their checks fail too,
# and name the layer whose result is wrong
DOWNSTREAM_15 = {"QuantizedLinear", "QuantizedLinear.forward", "QuantizedConv2d", "QuantizedConv2d.forward",
                 "quantize_model"}

QUANT_BUGS = {
    # z = 128 + round(lo / s): every code shifted by 2z, every dequantized value by -2 s z
    "zero_point_with_the_wrong_sign": (Bug("15", "compute_qparams", _qparams_bug(
        zero_point="-(QMIN - np.rint(lo / scale))"), frozenset({"compute_qparams"}), "worked_example"),
        DOWNSTREAM_15),
    "zero_point_round_term_with_the_wrong_sign": (Bug("15", "compute_qparams", _qparams_bug(
        zero_point="QMIN + np.rint(lo / scale)"), frozenset({"compute_qparams"}), "worked_example"), None),
    # the channels' ranges taken over the slices along ANOTHER axis (right for axis 0 only) ...
    "per_channel_rows_without_moveaxis": (Bug("15", "compute_qparams", _qparams_bug(
        rows="x.reshape(1, -1) if axis is None else x.reshape(x.shape[axis], -1)"),
        frozenset({"compute_qparams"}), "per_channel_axis"), DOWNSTREAM_15),
    # ... or reduced ALONG the channel axis (a square matrix: the right shape, the wrong values)
    "per_channel_range_along_the_axis": (Bug("15", "compute_qparams", _qparams_bug(
        rows="x.reshape(1, -1) if axis is None else np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis])"),
        frozenset({"compute_qparams"}), "square"), None),
    # the layer asks for per-INPUT-channel weight scales (axis 1): they cannot factor out of the sum
    "quantized_linear_scales_per_input_channel": (Bug("15", "QuantizedLinear", textwrap.dedent("""
        class QuantizedLinear(QuantizedLinear):
            def __init__(self, linear, input_qp, mode="integer"):
                Module.__init__(self)
                self.in_features, self.out_features = linear.in_features, linear.out_features
                self.mode, self._float = mode, None
                w, bias = linear.weight.data, None if linear.bias is None else linear.bias.data
                wqp = compute_qparams(w, axis=1)  # BUG: per input channel
                self.register_buffer("weight_q", quantize(w, wqp))
                self.register_buffer("weight_scale", wqp.scale)
                self.register_buffer("weight_zero_point", wqp.zero_point)
                self.register_buffer("input_scale", input_qp.scale)
                self.register_buffer("input_zero_point", input_qp.zero_point)
                self.bias_q = None
                if bias is not None:
                    grid = np.float64(input_qp.scale) * wqp.scale.astype(np.float64)
                    self.register_buffer("bias_q", np.rint(bias / grid).astype(np.int32))
        """), frozenset({"QuantizedLinear", "QuantizedLinear.__init__", "QuantizedLinear.forward"}),
        "per_output_channel"), None),
    "quantize_subtracts_the_zero_point": (Bug("15", "test_quantize_", textwrap.dedent("""
        def quantize(x, qp):
            x = np.asarray(_array(x), dtype=np.float32)
            s, z = qp.along(x.ndim)
            return np.clip(np.rint(x / s) - z, QMIN, QMAX).astype(np.int8)
        """), frozenset({"quantize"}), "by_hand"), None),
    "dequantize_adds_the_zero_point": (Bug("15", "dequantize", textwrap.dedent("""
        def dequantize(q, qp):
            q = np.asarray(_array(q))
            s, z = qp.along(q.ndim)
            return (q.astype(np.float32) + z.astype(np.float32)) * s
        """), frozenset({"dequantize"}), "by_hand"), None),
    "int_matmul_multiplies_in_int8": (Bug("15", "int_matmul", textwrap.dedent("""
        _reference_int_matmul = int_matmul

        def int_matmul(qa, za, qb, zb):
            acc = _reference_int_matmul(qa, za, qb, zb)
            a, b = np.asarray(qa), np.asarray(qb)
            return acc - (a.astype(np.int32) @ b.astype(np.int32)) + (a @ b).astype(np.int32)  # int8 products wrap
        """), frozenset({"int_matmul"}), "exact"), None),
    "requantize_rounds_ties_to_even": (Bug("15", "requantize", textwrap.dedent("""
        def requantize(acc, m0, shift, zero_point):
            y = np.rint(np.asarray(acc, np.float64) * np.asarray(m0, np.float64) / 2.0 ** np.asarray(shift))
            return np.clip(y + zero_point, QMIN, QMAX).astype(np.int8)
        """), frozenset({"requantize"}), "ties"), None),
    # calibrated in training mode: the head's inputs pass an active Dropout
    "quantize_model_calibrates_in_training_mode": (Bug("15", "quantize_model", textwrap.dedent("""
        def quantize_model(model, calibration_loader, method="minmax", percentile=99.99, mode="integer"):
            qmodel = copy.deepcopy(model)
            observers = []
            for parent, name, layer in _quantizable(qmodel):
                obs = _Observer(layer)
                _set_child(parent, name, obs)
                observers.append((parent, name, obs))
            with no_grad():
                for x in _batches(calibration_loader):
                    qmodel(x)
            for parent, name, obs in observers:
                qp = compute_qparams(obs.values(), method=method, percentile=percentile)
                cls = QuantizedConv2d if _is_conv2d(obs.layer) else QuantizedLinear
                _set_child(parent, name, cls(obs.layer, qp, mode))
            return qmodel.eval()
        """), frozenset({"quantize_model"}), "calibrates_each_layer"), None),
}


@pytest.mark.parametrize("name", sorted(QUANT_BUGS))
def test_quantization_seeded_bug_is_caught_and_named(name, tmp_path, monkeypatch):
    block_torch(tmp_path, monkeypatch)
    b, _ = QUANT_BUGS[name]
    assert_caught_and_named(name, b, b.task)


@pytest.mark.parametrize("name", sorted(n for n, (_, down) in QUANT_BUGS.items() if down))
def test_quantization_seeded_bug_fails_the_whole_module_run(name, tmp_path, monkeypatch):
    block_torch(tmp_path, monkeypatch)
    b, downstream = QUANT_BUGS[name]
    assert_caught_and_named(name, Bug(b.module, None, b.patch, b.culprits | downstream, b.caught_by), None)


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


# --- 19 benchmarking: a latency percentile computed on the mean; an accuracy on training data --
# single_stream as a learner gets it wrong: the percentiles of an array that holds only the mean
# (every "p90" is the mean), or the whole loop timed once and divided by the queries (each
# query's "latency" is the mean); quality scored on the training split, which the model has seen.
BENCH_BUGS = {
    "single_stream_percentiles_of_the_mean": Bug("19", "single_stream", textwrap.dedent("""
        def single_stream(predict, samples, queries=200, warmup=20, timer=time.perf_counter):
            n = len(samples)
            for i in range(warmup):
                predict(samples[i % n:i % n + 1])
            times = np.empty(queries, dtype=np.float64)
            for i in range(queries):
                start = timer()
                predict(samples[i % n:i % n + 1])
                times[i] = (timer() - start) * 1e3
            mean = float(times.mean())
            flat = np.full(queries, mean)  # BUG: the percentiles of the mean, not of the latencies
            return LatencyStats(times, mean, percentile(flat, 50), percentile(flat, 90), percentile(flat, 99),
                                float(times.min()))
        """), frozenset({"single_stream"}), "percentiles_by_hand"),
    "single_stream_times_the_whole_loop": Bug("19", "single_stream", textwrap.dedent("""
        def single_stream(predict, samples, queries=200, warmup=20, timer=time.perf_counter):
            n = len(samples)
            for i in range(warmup):
                predict(samples[i % n:i % n + 1])
            start = timer()
            for i in range(queries):
                predict(samples[i % n:i % n + 1])
            times = np.full(queries, (timer() - start) * 1e3 / queries)  # BUG: every query the mean
            return LatencyStats(times, float(times.mean()), percentile(times, 50), percentile(times, 90),
                                percentile(times, 99), float(times.min()))
        """), frozenset({"single_stream"}), "percentiles_by_hand"),
    "quality_on_the_training_split": Bug("19", "quality", textwrap.dedent("""
        def quality(predict, data, batch=256):
            x, y = data.x_train, np.asarray(data.y_train)  # BUG: the split the model was trained on
            correct = 0
            for start in range(0, len(x), batch):
                pred = _scores(predict(x[start:start + batch])).argmax(axis=1)
                correct += int((pred == y[start:start + batch]).sum())
            return correct / len(x)
        """), frozenset({"quality"}), "test_split"),
    # the harness right, the queries drawn from the training inputs
    "run_benchmark_queries_from_the_training_split": Bug("19", "run_benchmark", textwrap.dedent("""
        def run_benchmark(name, predict, data, queries=200, warmup=20, batch=256, reference=None, ratio=0.99,
                          size_bytes=None, timer=time.perf_counter):
            acc = quality(predict, data, batch)
            ss = single_stream(predict, data.x_train, queries=queries, warmup=warmup, timer=timer)  # BUG
            off = offline(predict, data.x_test, batch=batch, timer=timer)
            ref = acc if reference is None else reference.accuracy
            return BenchmarkResult(name, acc, ref, ratio, meets_quality(acc, ref, ratio), ss, off,
                                   len(data.x_test), size_bytes)
        """), frozenset({"run_benchmark"}), "reads_the_test_split"),
}


@pytest.mark.parametrize("task", ["own-task", None], ids=["own-task", "whole-module"])
@pytest.mark.parametrize("name", sorted(BENCH_BUGS))
def test_benchmarking_seeded_bug_is_caught_and_named(name, task, tmp_path, monkeypatch):
    block_torch(tmp_path, monkeypatch)
    b = BENCH_BUGS[name]
    assert_caught_and_named(name, b, b.task if task == "own-task" else None)


# --- 16 and 18: the structured pruning and the frozen model of milestone 06 -------------------
# prune_channels scoring filters by their smallest weight instead of their norm; gather_index with
# each patch ordered (c, i, j) instead of module 09's (i, j, c); fold_flatten that keeps the NCHW
# column order. The last two also fail milestone 06 (tests/test_milestone06.py).
FROZEN_BUGS = {
    "prune_channels_keeps_the_weakest_filters": Bug("16", "prune_channels", textwrap.dedent("""
        def prune_channels(model, fraction):
            layers = [copy.deepcopy(layer) for layer in model]
            for i, j in _conv_pairs(model):
                conv, reader = layers[i], layers[j]
                W = conv.weight.data
                out = W.shape[0]
                norms = np.sqrt((W.astype(np.float64) ** 2).sum(axis=(1, 2, 3)))
                n_keep = max(1, out - int(round(fraction * out)))
                keep = np.sort(np.argsort(norms, kind="stable")[:n_keep])  # BUG: the smallest norms
                layers[i] = _conv_from(conv, W[keep], None if conv.bias is None else conv.bias.data[keep])
                W2, rb = reader.weight.data, None if reader.bias is None else reader.bias.data
                if _is_conv(reader):
                    layers[j] = _conv_from(reader, W2[:, keep], rb)
                else:
                    hw = W2.shape[1] // out
                    layers[j] = _linear_from(reader, W2[:, (keep[:, None] * hw + np.arange(hw)).ravel()], rb)
            return Sequential(*layers)
        """), frozenset({"prune_channels"}), "prune_channels"),
    "gather_index_channel_first": Bug("18", "gather_index", textwrap.dedent("""
        def gather_index(h, w, c, kh, kw, padding=0):
            hp, wp = h + 2 * padding, w + 2 * padding
            ho, wo = hp - kh + 1, wp - kw + 1
            r = np.arange(ho)[:, None, None, None, None] + np.arange(kh)[None, None, None, :, None]
            s = np.arange(wo)[None, :, None, None, None] + np.arange(kw)[None, None, None, None, :]
            ch = np.arange(c)[None, None, :, None, None]
            return ((r * wp + s) * c + ch).astype(np.int64).ravel()  # BUG: patches ordered (c, i, j)
        """), frozenset({"gather_index"}), "patch_matrix"),
    "fold_flatten_without_the_layout_change": Bug("18", "fold_flatten", textwrap.dedent("""
        def fold_flatten(weight, c, h, w):
            return np.ascontiguousarray(weight.T)  # BUG: still reads (c, h, w) order
        """), frozenset({"fold_flatten"}), "fold_flatten"),
}


# --- 18: the tiled training convolution -------------------------------------------------------
# tile_weight that walks the tile backwards (output pixel t gets the kernel shifted for tile-1-t);
# untile_grad that averages the tile's copies instead of summing them. Each is caught by its own
# checks, and by conv2d_tiled's and accelerate's, always with the function named.
TILED_BUGS = {
    "tile_weight_tile_reversed": Bug("18", "tile_weight", textwrap.dedent("""
        def tile_weight(w, tile):
            o, c, kh, kw = w.shape
            wt = np.zeros((kh, kw + tile - 1, c, tile, o), dtype=w.dtype)
            for t in range(tile):
                wt[:, t:t + kw, :, tile - 1 - t, :] = w.transpose(2, 3, 1, 0)  # BUG: pixel order reversed
            return wt.reshape(kh * (kw + tile - 1) * c, tile * o)
        """), frozenset({"tile_weight"}), "places_the_kernel"),
    "untile_grad_averages": Bug("18", "untile_grad", textwrap.dedent("""
        def untile_grad(dwt, shape, tile):
            o, c, kh, kw = shape
            d = dwt.reshape(kh, kw + tile - 1, c, tile, o)
            dw = np.zeros((kh, kw, c, o), dtype=dwt.dtype)
            for t in range(tile):
                dw += d[:, t:t + kw, :, t, :]
            return dw.transpose(3, 2, 0, 1) / tile  # BUG: the mean of the copies, not their sum
        """), frozenset({"untile_grad"}), "adjoint"),
}


@pytest.mark.parametrize("task", ["own-task", None], ids=["own-task", "whole-module"])
@pytest.mark.parametrize("name", sorted(FROZEN_BUGS) + sorted(TILED_BUGS))
def test_pruning_freezing_and_tiling_seeded_bugs_are_caught_and_named(name, task, tmp_path, monkeypatch):
    block_torch(tmp_path, monkeypatch)
    b = FROZEN_BUGS.get(name) or TILED_BUGS[name]
    assert_caught_and_named(name, b, b.task if task == "own-task" else None)
