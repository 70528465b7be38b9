"""Checks for module 18 (acceleration): pairwise_sq_distances, conv2d_im2col, gelu_fused and its
backward rule, split_batch, replicate, DataParallel (forward_backward, step) and parallel_step.

The checks verify correctness, never speed (timings on a shared machine prove nothing). The
loop-free functions are compared with float64 references and the given loop versions, on awkward
shapes (one row, one input channel, a non-square kernel, padding) and on inputs far from the
origin, where |a|^2 - 2ab + |b|^2 cancels and rounds below zero. gelu_fused must be ONE graph node
that keeps the input's dtype, agree with the formula, and pass central differences in float64;
its backward must not write into the incoming gradient. The data-parallel step is compared with
the one-thread step on the same tiny seeded models (two MLPs and a net that uses one weight twice,
as a GPT ties its embedding and head): gradients within float32 rounding for uneven shards (batch 7 over 2 and 3 threads,
where an unweighted mean of the shard gradients is wrong), accumulation into an existing .grad,
a model's own .grad never touched by the replicas, grad mode on afterwards, several optimizer
steps in a row (the replicas must see the updated weights), and repeated 4-thread runs (races).
gather_index must reproduce a loop-built patch matrix (padding, several channels, non-square
kernels), fold_flatten a Linear on NCHW features; the given freeze, built on both, must give a
small CNN's logits on one and two threads.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinytorch.tensor as tt
from tinytorch.acceleration import (DataParallel, accelerate, conv2d_im2col, conv2d_loops, conv2d_tiled,
                                    fold_flatten, gather_index, gelu_fused, gelu_fused_backward,
                                    pairwise_sq_distances, parallel_step, replicate, split_batch,
                                    tile_weight, untile_grad)
from tinytorch.activations import ReLU, Tanh
from tinytorch.layers import Linear, Module, Sequential
from tinytorch.losses import CrossEntropyLoss, MSELoss
from tinytorch.optimizers import SGD, Adam
from tinytorch.tensor import Tensor, is_grad_enabled
from tito.checks.harness import assert_close, call, gradcheck, torch_or_skip

GELU_C = np.sqrt(2.0 / np.pi)


@pytest.fixture(autouse=True)
def _seed():
    tt.manual_seed(0)
    yield
    tt.manual_seed(0)


def rand(*shape, seed=0, scale=1.0, shift=0.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale + shift).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# pairwise_sq_distances
# ---------------------------------------------------------------------------------------------
def sq_dists64(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)


@pytest.mark.task("pairwise_sq_distances")
@pytest.mark.parametrize("n,m,d", [(7, 5, 3), (1, 4, 6), (6, 1, 2), (3, 3, 1)])
def test_pairwise_sq_distances_matches_float64(n, m, d):
    a, b = rand(n, d, seed=1), rand(m, d, seed=2)
    out = call("pairwise_sq_distances", pairwise_sq_distances, a, b)
    out = np.asarray(out)
    assert out.dtype == np.float32, f"pairwise_sq_distances: float32 inputs gave {out.dtype} (keep float32)"
    assert_close(out, sq_dists64(a, b), "pairwise_sq_distances", [a, b], atol=1e-4)


@pytest.mark.task("pairwise_sq_distances")
def test_pairwise_sq_distances_never_negative_far_from_origin():
    a = rand(6, 16, seed=3, scale=0.01, shift=300.0)  # |a|^2 ~ 1.4e6: the formula cancels
    out = np.asarray(call("pairwise_sq_distances", pairwise_sq_distances, a, a))
    assert (out >= 0).all(), (f"pairwise_sq_distances: negative squared distances {out.min():.4g} "
                              "(rounding in |a|^2 - 2ab + |b|^2: clip at 0)")
    assert np.abs(np.diag(out)).max() <= 2.0, "pairwise_sq_distances: distance of a row to itself is not ~0"
    loops = np.array([[float(((p - q).astype(np.float64) ** 2).sum()) for q in a] for p in a])
    assert_close(out, loops, "pairwise_sq_distances (inputs far from the origin)", [a], atol=2.0, rtol=1e-2)


# ---------------------------------------------------------------------------------------------
# conv2d_im2col
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("conv2d_im2col")
@pytest.mark.parametrize("n,c,h,w,o,kh,kw,pad", [(2, 3, 6, 5, 4, 3, 3, 1), (3, 1, 7, 7, 2, 5, 5, 2),
                                                 (1, 2, 5, 6, 3, 3, 2, 0), (2, 4, 3, 3, 5, 1, 1, 0)])
def test_conv2d_im2col_matches_loops(n, c, h, w, o, kh, kw, pad):
    x, wt, b = rand(n, c, h, w, seed=4), rand(o, c, kh, kw, seed=5), rand(o, seed=6)
    x0 = x.copy()
    out = np.asarray(call("conv2d_im2col", conv2d_im2col, x, wt, b, pad))
    assert np.array_equal(x, x0), "conv2d_im2col: changed its input in place"
    expected = conv2d_loops(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64), pad)
    assert out.dtype == np.float32, f"conv2d_im2col: float32 inputs gave {out.dtype}"
    assert_close(out, expected, f"conv2d_im2col (kernel {kh}x{kw}, padding {pad}, {c} channels)",
                 atol=1e-4)


@pytest.mark.task("conv2d_im2col")
def test_conv2d_im2col_matches_torch():
    torch = torch_or_skip()
    x, wt, b = rand(2, 3, 8, 8, seed=7), rand(6, 3, 5, 5, seed=8), rand(6, seed=9)
    out = call("conv2d_im2col", conv2d_im2col, x, wt, b, 2)
    ref = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(wt), torch.tensor(b), padding=2).numpy()
    assert_close(out, ref, "conv2d_im2col (vs torch.nn.functional.conv2d)", atol=1e-4)


# ---------------------------------------------------------------------------------------------
# gelu_fused and its backward
# ---------------------------------------------------------------------------------------------
def gelu64(v):
    v = v.astype(np.float64)
    return 0.5 * v * (1 + np.tanh(GELU_C * (v + 0.044715 * v ** 3)))


@pytest.mark.task("gelu_fused")
def test_gelu_fused_forward_is_one_node():
    v = rand(4, 9, seed=10, scale=3.0)
    x = Tensor(v, requires_grad=True)
    y = call("gelu_fused", gelu_fused, x)
    assert isinstance(y, Tensor), f"gelu_fused: returned {type(y).__name__}, expected a Tensor"
    assert y.dtype == np.float32, f"gelu_fused: float32 input gave {y.dtype} (a float64 constant?)"
    assert_close(y.data, gelu64(v), "gelu_fused", [v], atol=1e-5)
    assert y._op == "gelu_fused" and len(y._parents) == 1 and y._parents[0] is x, \
        f"gelu_fused: the output should be ONE node 'gelu_fused' with parent x, got op {y._op!r}"
    assert np.array_equal(x.data, v), "gelu_fused: changed its input in place"
    y64 = call("gelu_fused", gelu_fused, Tensor(v.astype(np.float64), dtype=np.float64))
    assert y64.dtype == np.float64, f"gelu_fused: float64 input gave {y64.dtype}"


@pytest.mark.task("gelu_fused")
def test_gelu_fused_backward_gradcheck():
    v = np.random.default_rng(11).standard_normal((3, 5)) * 2.5
    gradcheck(gelu_fused, v, name="gelu_fused_backward")


@pytest.mark.task("gelu_fused")
def test_gelu_fused_backward_leaves_inputs_alone_float32():
    v = rand(2, 7, seed=12, scale=2.0)
    x = Tensor(v, requires_grad=True)
    y = call("gelu_fused", gelu_fused, x)
    g = rand(2, 7, seed=13)
    g0, saved0 = g.copy(), np.array(y._saved, copy=True)
    (dx,) = call("gelu_fused_backward", gelu_fused_backward, g, y)
    assert np.array_equal(g, g0), "gelu_fused_backward: wrote into the incoming gradient g"
    assert np.array_equal(np.asarray(y._saved), saved0), "gelu_fused_backward: wrote into the saved tanh"
    assert dx.dtype == np.float32, f"gelu_fused_backward: float32 gradient came back as {dx.dtype}"
    eps = 1e-6
    v64 = v.astype(np.float64)
    numeric = (gelu64(v64 + eps) - gelu64(v64 - eps)) / (2 * eps) * g
    assert_close(dx, numeric, "gelu_fused_backward", [v], atol=1e-5)


# ---------------------------------------------------------------------------------------------
# split_batch
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("split_batch")
@pytest.mark.parametrize("n,parts,sizes", [(10, 3, [4, 3, 3]), (7, 2, [4, 3]), (8, 4, [2, 2, 2, 2]),
                                           (2, 4, [1, 1]), (5, 1, [5]), (1, 2, [1])])
def test_split_batch(n, parts, sizes):
    shards = call("split_batch", split_batch, n, parts)
    assert all(isinstance(s, slice) for s in shards), f"split_batch({n}, {parts}): expected slices, got {shards}"
    got = [s.stop - s.start for s in shards]
    assert got == sizes, f"split_batch({n}, {parts}): shard sizes {got}, expected {sizes}"
    covered = [i for s in shards for i in range(n)[s]]
    assert covered == list(range(n)), f"split_batch({n}, {parts}): shards {shards} do not cover 0..{n - 1} in order"


@pytest.mark.task("split_batch")
def test_split_batch_of_an_empty_batch():
    shards = call("split_batch", split_batch, 0, 2)  # e.g. the last, empty, piece of a data set
    sizes = [s.stop - s.start for s in shards]
    assert sizes in ([], [0]), (f"split_batch(0, 2): shard sizes {sizes}; an empty batch gives one empty "
                                "shard (or none)")


# ---------------------------------------------------------------------------------------------
# replicate
# ---------------------------------------------------------------------------------------------
class TiedNet(Module):
    """One (5, 6) Parameter used twice, as a GPT ties its embedding and output head: under two
    names (inp.weight and head), in the first layer and again as the output projection."""

    def __init__(self):
        super().__init__()
        tt.manual_seed(3)
        self.inp = Linear(6, 5)
        self.act = Tanh()
        self.head = self.inp.weight  # the same Parameter: one array, two uses

    def forward(self, x):
        return self.act(self.inp(x)) @ self.head  # (N, 5) @ (5, 6) -> (N, 6) logits


@pytest.mark.task("replicate")
def test_replicate_shares_weights_not_parameters():
    model = Sequential(Linear(4, 5), ReLU(), Linear(5, 3))
    rep = call("replicate", replicate, model)
    ps, rs = model.parameters(), rep.parameters()
    assert len(ps) == len(rs), f"replicate: {len(rs)} parameters, the model has {len(ps)}"
    for p, r in zip(ps, rs):
        assert r is not p, "replicate: the replica holds the model's own Parameter objects (their .grad would race)"
        assert r.data is p.data or np.shares_memory(r.data, p.data), \
            "replicate: a replica's weight is a copy; it must share the model's array"
    x = Tensor(rand(3, 4, seed=14))
    assert_close(rep(x).data, model(x).data, "replicate (the replica's forward)")
    rep(x).sum().backward()
    assert all(p.grad is None for p in ps), "replicate: the replica's backward filled the model's .grad"


@pytest.mark.task("replicate")
def test_replicate_keeps_tied_weights_tied():
    model = TiedNet()
    rep = call("replicate", replicate, model)
    assert rep.head is rep.inp.weight, "replicate: the replica's tied weights (inp.weight, head) came apart"
    assert rep.head is not model.head, "replicate: the replica holds the model's Parameter"
    assert np.shares_memory(rep.head.data, model.head.data), \
        "replicate: the replica's tied weight is a copy, not the model's array"


@pytest.mark.task("replicate")
def test_replicate_starts_without_gradients():
    """A model that already holds gradients (a step's backward ran): the replica's parameters
    start with .grad = None - a deep copy would otherwise carry copies of the model's gradients."""
    model = Sequential(Linear(4, 5), ReLU(), Linear(5, 3))
    model(Tensor(rand(3, 4, seed=21))).sum().backward()
    rep = call("replicate", replicate, model)
    stale = [name for name, r in rep.named_parameters() if r.grad is not None]
    assert not stale, f"replicate: the replica's parameters {stale} kept a .grad; set p.grad = None for each"
    assert all(p.grad is not None for p in model.parameters()), "replicate: cleared the MODEL's gradients"


# ---------------------------------------------------------------------------------------------
# DataParallel.forward_backward: the gradient of the whole batch
# ---------------------------------------------------------------------------------------------
def mlp():
    tt.manual_seed(1)
    return Sequential(Linear(6, 8), Tanh(), Linear(8, 4))


def deep():
    tt.manual_seed(2)
    return Sequential(Linear(10, 12), ReLU(), Linear(12, 12), Tanh(), Linear(12, 5))


def one_thread_grads(model, loss_fn, x, y):
    model.zero_grad()
    loss = loss_fn(model(Tensor(x)), Tensor(y))
    loss.backward()
    grads = [None if p.grad is None else p.grad.data.copy() for p in model.parameters()]
    model.zero_grad()
    return float(loss.item()), grads


def compare_grads(model, expected, name):
    for i, ((pname, p), g) in enumerate(zip(model.named_parameters(), expected)):
        assert p.grad is not None, f"{name}: parameter {pname} got no .grad"
        scale = max(1.0, float(np.abs(g).max()))
        assert_close(p.grad.data / scale, g / scale, f"{name} (gradient of {pname})", atol=2e-6, rtol=1e-4)


def cases():
    x_mlp, y_mlp = rand(7, 6, seed=15), np.random.default_rng(16).integers(0, 4, 7)
    x_deep, y_deep = rand(7, 10, seed=17), np.random.default_rng(18).integers(0, 5, 7)
    return {"mlp": (mlp, CrossEntropyLoss(), x_mlp, y_mlp), "deep": (deep, CrossEntropyLoss(), x_deep, y_deep)}


@pytest.mark.task("DataParallel")
@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("case", ["mlp", "deep"])
def test_data_parallel_gradient_equals_one_thread(case, threads):
    build, loss_fn, x, y = cases()[case]
    model = build()
    loss1, expected = one_thread_grads(model, loss_fn, x, y)
    dp = call("DataParallel.__init__", DataParallel, model, threads)
    loss = call("DataParallel.forward_backward", dp.forward_backward, loss_fn, x, y)
    name = f"DataParallel.forward_backward ({case}, batch 7 over {threads} threads)"
    assert abs(float(loss) - loss1) < 1e-5 * max(1.0, abs(loss1)), \
        f"{name}: loss {float(loss):.6f}, the one-thread loss is {loss1:.6f} (weight each shard by its size)"
    compare_grads(model, expected, name)
    assert is_grad_enabled(), f"{name}: left grad mode switched off"


def mlp_batch_in_parallel(model, times=1):
    """The one-thread gradients of the "mlp" case's batch on `model`, then `times` calls of
    DataParallel(model, 2).forward_backward on it."""
    _, loss_fn, x, y = cases()["mlp"]
    _, expected = one_thread_grads(model, loss_fn, x, y)
    dp = call("DataParallel.__init__", DataParallel, model, 2)
    for _ in range(times):
        call("DataParallel.forward_backward", dp.forward_backward, loss_fn, x, y)
    return expected


@pytest.mark.task("DataParallel")
def test_data_parallel_accumulates_like_backward():
    model = mlp()
    g = mlp_batch_in_parallel(model, times=2)
    compare_grads(model, [2 * a for a in g], "DataParallel.forward_backward (called twice: .grad accumulates)")


@pytest.mark.task("DataParallel")
def test_data_parallel_tied_weights():
    model = TiedNet()
    x = rand(5, 6, seed=19)
    y = np.random.default_rng(20).integers(0, 6, 5)
    loss_fn = CrossEntropyLoss()
    loss1, expected = one_thread_grads(model, loss_fn, x, y)
    dp = call("DataParallel.__init__", DataParallel, model, 2)
    loss = call("DataParallel.forward_backward", dp.forward_backward, loss_fn, x, y)
    assert abs(float(loss) - loss1) < 1e-5 * max(1.0, loss1), \
        f"DataParallel.forward_backward (tied weights): loss {float(loss):.6f}, one thread {loss1:.6f}"
    compare_grads(model, expected, "DataParallel.forward_backward (a weight used twice, batch 5 over 2)")


@pytest.mark.task("DataParallel")
def test_data_parallel_repeated_four_threads_no_race():
    build, loss_fn, x, y = cases()["deep"]
    x, y = np.concatenate([x] * 3), np.concatenate([y] * 3)  # 21 rows over 4 threads: 6, 5, 5, 5
    model = build()
    _, expected = one_thread_grads(model, loss_fn, x, y)
    dp = call("DataParallel.__init__", DataParallel, model, 4)
    for r in range(6):
        model.zero_grad()
        call("DataParallel.forward_backward", dp.forward_backward, loss_fn, x, y)
        compare_grads(model, expected, f"DataParallel.forward_backward (4 threads, run {r + 1} of 6)")
    assert is_grad_enabled(), "DataParallel.forward_backward: left grad mode switched off"


class WithUnused(Module):
    """An MLP and a Linear that forward never calls: its parameters get no gradient."""

    def __init__(self):
        super().__init__()
        tt.manual_seed(4)
        self.body = Sequential(Linear(6, 8), Tanh(), Linear(8, 4))
        self.spare = Linear(3, 3)

    def forward(self, x):
        return self.body(x)


@pytest.mark.task("DataParallel")
def test_data_parallel_leaves_an_unused_parameter_without_gradient():
    model = WithUnused()
    expected = mlp_batch_in_parallel(model)
    for (name, p), g in zip(model.named_parameters(), expected):
        if g is None:
            assert p.grad is None, f"DataParallel.forward_backward: {name} is not used by forward, yet got a .grad"
        else:
            assert p.grad is not None, f"DataParallel.forward_backward: parameter {name} got no .grad"
            assert_close(p.grad.data, g, f"DataParallel.forward_backward (gradient of {name}, a model with "
                         "an unused Linear)", atol=2e-6, rtol=1e-4)


# ---------------------------------------------------------------------------------------------
# parallel_step: several optimizer steps follow the one-thread training
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("DataParallel")
@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_parallel_step_follows_one_thread_training(opt):
    x, y = rand(9, 6, seed=21), rand(9, 4, seed=22)
    a, b = mlp(), mlp()
    make = (lambda m: SGD(m.parameters(), lr=0.1, momentum=0.9)) if opt == "sgd" else \
        (lambda m: Adam(m.parameters(), lr=0.01))
    oa, ob, loss_fn = make(a), make(b), MSELoss()
    for step in range(4):
        oa.zero_grad()
        ref = loss_fn(a(Tensor(x)), Tensor(y))
        ref.backward()
        oa.step()
        got = call("parallel_step", parallel_step, b, loss_fn, ob, Tensor(x), Tensor(y), threads=2)
        assert abs(float(got) - float(ref.item())) < 1e-5, \
            (f"parallel_step ({opt}, step {step + 1}): loss {float(got):.6f}, one thread {float(ref.item()):.6f} "
             "(do the replicas see the weights the optimizer just wrote?)")
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert_close(q.data, p.data, f"parallel_step ({opt}, after 4 steps: {name})", atol=1e-5)


# ---------------------------------------------------------------------------------------------
# gather_index, fold_flatten, and the given freeze built on them
# ---------------------------------------------------------------------------------------------
def patches_oracle(xp, kh, kw):
    """(N, Hp, Wp, C) -> (N Ho Wo, kh kw C) with a loop over the kernel offsets (float64)."""
    n, hp, wp, c = xp.shape
    ho, wo = hp - kh + 1, wp - kw + 1
    out = np.empty((n, ho, wo, kh, kw, c))
    for i in range(kh):
        for j in range(kw):
            out[:, :, :, i, j, :] = xp[:, i:i + ho, j:j + wo, :]
    return out.reshape(n * ho * wo, kh * kw * c)


def gathered(h, w, c, kh, kw, p, seed=0):
    idx = call("gather_index", gather_index, h, w, c, kh, kw, p)
    idx = np.asarray(idx)
    ho, wo = h + 2 * p - kh + 1, w + 2 * p - kw + 1
    what = f"gather_index: ({h}, {w}, {c}, {kh}, {kw}, padding={p})"
    if idx.shape != (ho * wo * kh * kw * c,):
        raise AssertionError(f"{what}: shape {idx.shape}, expected ({ho * wo * kh * kw * c},) = Ho Wo kh kw C "
                             "as one flat array")
    if not np.issubdtype(idx.dtype, np.integer):
        raise AssertionError(f"{what}: dtype {idx.dtype}; positions are integers (int64)")
    xp = rand(2, h + 2 * p, w + 2 * p, c, seed=seed)
    got = xp.reshape(2, -1)[:, idx].reshape(2 * ho * wo, kh * kw * c)
    return got, patches_oracle(xp.astype(np.float64), kh, kw), what


@pytest.mark.task("gather_index")
def test_gather_index_worked_example():
    idx = np.asarray(call("gather_index", gather_index, 3, 3, 1, 2, 2, 0))
    want = np.array([[0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8]])
    assert idx.size == 16, f"gather_index: (3, 3, 1, 2, 2): {idx.size} positions, expected 16 (4 patches of 4)"
    assert np.array_equal(idx.reshape(4, 4), want), (
        f"gather_index: (3, 3, 1, 2, 2): got {idx.reshape(4, 4).tolist()}, expected {want.tolist()}")


@pytest.mark.task("gather_index")
@pytest.mark.parametrize("h,w,c,kh,kw,p", [(5, 5, 1, 3, 3, 0), (6, 4, 3, 3, 2, 0), (4, 5, 2, 3, 3, 1),
                                           (28, 28, 1, 5, 5, 2), (7, 3, 4, 1, 1, 0), (3, 3, 2, 3, 3, 2)])
def test_gather_index_is_the_patch_matrix(h, w, c, kh, kw, p):
    got, want, what = gathered(h, w, c, kh, kw, p, seed=h * 7 + c)
    if got.shape == want.shape and c > 1 and not np.allclose(got, want):
        # the most common slip: (c, i, j) order inside a patch instead of (i, j, c)
        n_rows = got.shape[0]
        alt = want.reshape(n_rows, kh, kw, c).transpose(0, 3, 1, 2).reshape(n_rows, -1)
        if np.allclose(got, alt):
            raise AssertionError(f"{what}: each patch is ordered (c, i, j); module 09's weight matrix is "
                                 "w.transpose(2, 3, 1, 0): order (i, j, c), the channel fastest")
    assert_close(got, want, f"{what}: x.reshape(N, -1)[:, index] must be the patch matrix (rows (ho, wo), "
                 "columns (i, j, c)) of the padded channels-last input", [], atol=0, rtol=0)


def fold_case(out, c, h, w, seed=0):
    weight = rand(out, c * h * w, seed=seed)
    got = np.asarray(call("fold_flatten", fold_flatten, weight, c, h, w))
    what = f"fold_flatten: (weight ({out}, {c * h * w}), c={c}, h={h}, w={w})"
    if got.shape != (h * w * c, out):
        raise AssertionError(f"{what}: shape {got.shape}, expected {(h * w * c, out)} (in x out, ready for x @ W)")
    x = rand(3, c, h, w, seed=seed + 1)
    want = x.reshape(3, -1).astype(np.float64) @ weight.T.astype(np.float64)
    assert_close(x.transpose(0, 2, 3, 1).reshape(3, -1) @ got, want, f"{what}: the channels-last features (h, w, c) "
                 "times the folded weight must equal module 03's Linear on the (c, h, w) features", [x], atol=1e-4)


@pytest.mark.task("fold_flatten")
@pytest.mark.parametrize("out,c,h,w", [(4, 3, 2, 5), (10, 16, 5, 5), (1, 1, 3, 3), (2, 5, 1, 1)])
def test_fold_flatten_matches_the_nchw_linear(out, c, h, w):
    fold_case(out, c, h, w, seed=out + c)


def patch_selector(c, h, w, k, p) -> np.ndarray:
    """A 0/1 matrix S (C H W, Ho Wo C k k): x.reshape(N, -1) @ S is the patch matrix of the padded
    input, each row (c, i, j) ordered - a convolution out of module 02's matmul, with a graph."""
    ho, wo = h + 2 * p - k + 1, w + 2 * p - k + 1
    sel = np.zeros((c, h, w, ho, wo, c, k, k), np.float32)
    for y in range(ho):
        for x in range(wo):
            for i in range(k):
                for j in range(k):
                    r, s_ = y + i - p, x + j - p
                    if 0 <= r < h and 0 <= s_ < w:
                        sel[np.arange(c), r, s_, y, x, np.arange(c), i, j] = 1.0
    return sel.reshape(c * h * w, -1)


class Conv2d(Module):
    """A module 09-like convolution (the class name is what freeze and accelerate look for), built
    from Tensor ops so that it has a graph: patches by a 0/1 matmul, then the weight matrix."""

    def __init__(self, cin, cout, k, padding=0, seed=0):
        super().__init__()
        self.weight = Tensor(rand(cout, cin, k, k, seed=seed, scale=0.3), requires_grad=True)
        self.bias = Tensor(rand(cout, seed=seed + 1), requires_grad=True)
        self.stride, self.padding = (1, 1), (padding, padding)

    def forward(self, x):
        x = x if isinstance(x, Tensor) else Tensor(np.asarray(x, np.float32))
        n, c, h, w = x.shape
        o, _, k, _ = self.weight.shape
        p = self.padding[0]
        ho, wo = h + 2 * p - k + 1, w + 2 * p - k + 1
        cols = (x.reshape(n, c * h * w) @ Tensor(patch_selector(c, h, w, k, p))).reshape(n * ho * wo, c * k * k)
        y = cols @ self.weight.reshape(o, c * k * k).transpose(0, 1) + self.bias  # (N Ho Wo, O)
        return y.reshape(n, ho, wo, o).permute(0, 3, 1, 2)


class MaxPool2d(Module):
    def __init__(self, k):
        super().__init__()
        self.kernel_size, self.stride = k, None

    def forward(self, x):
        x = x if isinstance(x, Tensor) else Tensor(np.asarray(x, np.float32))
        n, c, h, w = x.shape
        k = self.kernel_size
        return x[:, :, :h // k * k, :w // k * k].reshape(n, c, h // k, k, w // k, k).max(axis=(3, 5))


class Flatten(Module):
    def forward(self, x):
        return x.reshape(x.shape[0], -1)


@pytest.mark.task("freeze")  # the given engine on your two functions (its check cell comes after it)
@pytest.mark.parametrize("threads,cin,lowering", [(1, 2, "gather"), (2, 2, "gather"), (2, 1, "gather"),
                                                  (2, 1, "tune")])
def test_freeze_runs_a_cnn_with_your_index_and_fold(threads, cin, lowering):
    from tinytorch.acceleration import freeze

    model = Sequential(Conv2d(cin, 3, 3, padding=1, seed=1), ReLU(), MaxPool2d(2),   # (N, 3, 4, 4)
                       Conv2d(3, 4, 3, seed=3), ReLU(),                              # (N, 4, 2, 2)
                       Flatten(), Linear(16, 5), ReLU(), Linear(5, 3))
    x = rand(70, cin, 8, 8, seed=5)
    want = model(Tensor(x)).data
    for h, c, k, p in ((8, cin, 3, 1), (4, 3, 3, 0)):  # this CNN's two convolutions: your index first
        got, patches, what = gathered(h, h, c, k, k, p)
        assert_close(got, patches, f"{what}: the patch matrix of a convolution of the CNN below", [], atol=0, rtol=0)
    fold_case(5, 4, 2, 2)  # and its Linear after Flatten
    frozen = call("fold_flatten", freeze, model, (cin, 8, 8), threads=threads, chunk=16, lowering=lowering)
    got = call("fold_flatten", frozen, x)
    assert_close(got, want, f"fold_flatten: freeze ({threads} thread(s), {cin} input channel(s), {lowering}): the frozen CNN (built on your "
                 "gather_index and fold_flatten) must give the model's logits", [x], atol=1e-4)


# ---------------------------------------------------------------------------------------------
# tile_weight, untile_grad, and the given conv2d_tiled and accelerate built on them
# ---------------------------------------------------------------------------------------------
def tile_oracle(w, tile):
    """tile_weight by its definition, one kernel entry at a time (float64)."""
    o, c, kh, kw = w.shape
    out = np.zeros((kh, kw + tile - 1, c, tile, o))
    for t in range(tile):
        for i in range(kh):
            for j in range(kw):
                out[i, t + j, :, t, :] = w[:, :, i, j].T
    return out.reshape(kh * (kw + tile - 1) * c, tile * o)


TILE_CASES = [(6, 1, 5, 5, 4), (16, 6, 5, 5, 2), (3, 2, 3, 2, 3), (2, 3, 1, 1, 5), (4, 2, 3, 3, 1), (1, 1, 2, 3, 6)]


@pytest.mark.task("tile_weight")
def test_tile_weight_worked_example():
    got = np.asarray(call("tile_weight", tile_weight, np.array([[[[1.0, 2.0]]]], np.float32), 2))
    want = np.array([[1.0, 0.0], [2.0, 1.0], [0.0, 2.0]])
    assert got.shape == (3, 2) and np.array_equal(got, want), (
        f"tile_weight: the kernel [a, b] = [1, 2], tile 2: got {got.tolist()}, expected {want.tolist()} "
        "(column t holds the kernel shifted down by t rows)")


@pytest.mark.task("tile_weight")
@pytest.mark.parametrize("o,c,kh,kw,tile", TILE_CASES)
def test_tile_weight_places_the_kernel_tile_times(o, c, kh, kw, tile):
    w = rand(o, c, kh, kw, seed=o + tile)
    got = np.asarray(call("tile_weight", tile_weight, w, tile))
    want = tile_oracle(w.astype(np.float64), tile)
    what = f"tile_weight: (weight {w.shape}, tile {tile})"
    if got.shape != want.shape:
        raise AssertionError(f"{what}: shape {got.shape}, expected {want.shape} = (kh (kw + tile - 1) C, tile O)")
    if tile == 1 and not np.allclose(got, want):
        raise AssertionError(f"{what}: with tile 1 this is module 09's weight matrix, w.transpose(2, 3, 1, 0)"
                             ".reshape(kh * kw * C, O)")
    assert got.dtype == w.dtype, f"{what}: dtype {got.dtype}, expected the weight's {w.dtype}"
    assert_close(got, want, f"{what}: entry ((i, t + j, c), (t, o)) must be w[o, c, i, j], zero elsewhere",
                 [w], atol=0, rtol=0)


def untile_oracle(d, shape, tile):
    o, c, kh, kw = shape
    d = d.reshape(kh, kw + tile - 1, c, tile, o)
    out = np.zeros(shape)
    for t in range(tile):
        for i in range(kh):
            for j in range(kw):
                out[:, :, i, j] += d[i, t + j, :, t, :].T
    return out


@pytest.mark.task("untile_grad")
def test_untile_grad_worked_example():
    d = np.array([[1.0, 10.0], [100.0, 1000.0], [1e4, 1e5]])  # D for the kernel [a, b], tile 2
    got = np.asarray(call("untile_grad", untile_grad, d, (1, 1, 1, 2), 2))
    want = np.array([[[[1.0 + 1000.0, 100.0 + 1e5]]]])  # dL/da = D[0, 0] + D[1, 1], dL/db = D[1, 0] + D[2, 1]
    assert got.shape == (1, 1, 1, 2), f"untile_grad: worked example: shape {got.shape}, expected (1, 1, 1, 2)"
    assert_close(got, want, "untile_grad: the kernel [a, b], tile 2: dL/da = D[0, 0] + D[1, 1] and "
                 "dL/db = D[1, 0] + D[2, 1]", [d], atol=0, rtol=0)


@pytest.mark.task("untile_grad")
@pytest.mark.parametrize("o,c,kh,kw,tile", TILE_CASES)
def test_untile_grad_is_the_adjoint(o, c, kh, kw, tile):
    shape = (o, c, kh, kw)
    d = np.random.default_rng(o * tile).standard_normal((kh * (kw + tile - 1) * c, tile * o))
    got = np.asarray(call("untile_grad", untile_grad, d, shape, tile))
    what = f"untile_grad: (D {d.shape}, shape {shape}, tile {tile})"
    if got.shape != shape:
        raise AssertionError(f"{what}: shape {got.shape}, expected {shape} (the weight's own shape)")
    w = np.random.default_rng(1).standard_normal(shape)
    lhs, rhs = float(np.sum(tile_oracle(w, tile) * d)), float(np.sum(w * got))
    assert abs(lhs - rhs) <= 1e-8 * (1 + abs(lhs)), (
        f"{what}: <tile_weight(w), D> = {lhs:.6f} but <w, untile_grad(D)> = {rhs:.6f}: each weight's gradient "
        "is the sum of D over the tile places where tile_weight put that weight")
    assert_close(got, untile_oracle(d, shape, tile), what, [d], atol=1e-12, rtol=0)


def conv_oracle(x, w, b, p):
    """Stride-1 convolution in float64 with loops over the kernel offsets."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (p, p), (p, p)))
    ho, wo = h + 2 * p - kh + 1, wd + 2 * p - kw + 1
    out = np.zeros((n, o, ho, wo)) + b.reshape(1, o, 1, 1)
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("nchw,oc->nohw", xp[:, :, i:i + ho, j:j + wo], w[:, :, i, j].astype(np.float64))
    return out


@pytest.mark.task("accelerate")
@pytest.mark.parametrize("n,c,h,w,o,k,p,tile", [(2, 1, 8, 8, 3, 5, 2, 4), (2, 3, 7, 6, 4, 3, 0, 2),
                                                (1, 2, 6, 9, 2, 3, 1, 3), (3, 2, 5, 5, 3, 2, 0, 4)])
def test_conv2d_tiled_is_a_convolution_forward_and_backward(n, c, h, w, o, k, p, tile):
    x, wt, b = rand(n, c, h, w, seed=n + c), rand(o, c, k, k, seed=o, scale=0.5), rand(o, seed=3)
    what = f"(x {x.shape}, weight {wt.shape}, padding {p}, tile {tile})"
    got = call("tile_weight", conv2d_tiled, Tensor(x), Tensor(wt), Tensor(b), p, tile)
    assert_close(got, conv_oracle(x, wt, b, p), f"tile_weight: conv2d_tiled {what} must compute the convolution "
                 "(its matmul uses your tile_weight)", [x], atol=1e-4)
    gradcheck(lambda x_, w_, b_: conv2d_tiled(x_, w_, b_, p, tile), x, wt, b, wrt=[1],
              name=f"untile_grad: the weight gradient of conv2d_tiled {what}")
    gradcheck(lambda x_, w_, b_: conv2d_tiled(x_, w_, b_, p, tile), x, wt, b, wrt=[0, 2],
              name=f"tile_weight: the input and bias gradients of conv2d_tiled {what} (through tile_weight(w, Wo))")


def small_cnn():
    return Sequential(Conv2d(2, 3, 3, padding=1, seed=1), ReLU(), MaxPool2d(2),  # (N, 3, 4, 4)
                      Conv2d(3, 4, 3, seed=3), Tanh(), Flatten(), Linear(16, 5))


@pytest.mark.task("accelerate")
@pytest.mark.parametrize("tiles", ["tune", (3, 2)])
def test_accelerate_trains_like_the_model(tiles):
    model, x, y = small_cnn(), rand(6, 2, 8, 8, seed=4), np.arange(6) % 5
    try:
        fast = accelerate(model, (2, 8, 8), tiles=tiles)
    except ValueError as e:  # accelerate checks what it built, and names the function at fault
        raise AssertionError(f"{'untile_grad' if 'untile_grad' in str(e) else 'tile_weight'}: {e}") from None
    kinds = [type(m).__name__ for m in fast]
    assert kinds == ["TiledConv2d", "MaxPool2d", "ReLU", "TiledConv2d", "Tanh", "Flatten", "Linear"], (
        f"accelerate: layers {kinds}")
    assert [id(p) for p in fast.parameters()] == [id(p) for p in model.parameters()], \
        "accelerate: the accelerated model must hold the model's own Parameters"
    twin = small_cnn()
    for p, q in zip(twin.parameters(), model.parameters()):
        p.data = q.data.copy()  # the same weights, trained without acceleration
    ce, opt, opt2 = CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), SGD(twin.parameters(), lr=0.1)
    for step in range(3):
        for net, o in ((fast, opt), (twin, opt2)):
            o.zero_grad()
            ce(net(Tensor(x)), Tensor(y)).backward()
            o.step()
        for (name, p), q in zip(twin.named_parameters(), model.parameters()):
            assert_close(q.data, p.data, f"untile_grad: accelerate ({tiles}): {name} after {step + 1} SGD steps "
                         "of the accelerated model", [], atol=1e-5)
