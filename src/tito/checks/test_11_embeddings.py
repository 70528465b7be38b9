"""Checks for module 11 (embeddings): Embedding and its backward rule, the learnt positional
embedding, the sinusoidal encoding and its layer.

Every forward pass is compared with a slow loop written here, every gradient with the
central-difference gradcheck (float64) and with an explicit per-token loop, so a backward that
overwrites repeated ids instead of adding them is caught with and without PyTorch; PyTorch's
`F.embedding` is a second oracle when it is installed. The sinusoidal table is compared with the
formula of Vaswani et al. written out here (an identity, constant or swapped table says so), at
positions up to 2,047 where a table computed in float32 drifts, and by its defining property:
an offset of k positions is a fixed rotation of every (sin, cos) pair.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinytorch.tensor as tt
from tinytorch.embeddings import (Embedding, PositionalEmbedding, SinusoidalPositionalEncoding,
                                  sinusoidal_encoding)
from tinytorch.tensor import Tensor
from tito.checks.harness import (assert_close, blame, call, check_rules, gradcheck, hypothesis_settings,
                                  torch_or_skip)

SETTINGS = hypothesis_settings(max_examples=25)


@pytest.fixture(autouse=True)
def _seed():
    tt.manual_seed(0)
    yield
    tt.manual_seed(0)


def table(v: int, d: int, seed: int = 0, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((v, d)).astype(dtype)


def make_embedding(v: int, d: int, weights: np.ndarray | None = None, cls=None, name="Embedding.__init__"):
    """cls(v, d) with its weight checked for shape, and (optionally) known values written in."""
    cls = cls or Embedding
    layer = call(name, cls, v, d)
    shape = getattr(getattr(layer, "weight", None), "shape", None)
    if shape != (v, d):
        raise AssertionError(f"{name}: {cls.__name__}({v}, {d}).weight has shape {shape}, expected {(v, d)}")
    if weights is not None:
        with blame(name, "writing known values into layer.weight.data in place"):
            layer.weight.data[...] = weights
    return layer


def with_weight(layer, w: Tensor):
    """The layer with its table replaced by `w` (so gradcheck can vary it)."""
    layer.weight = w
    return layer


def lookup(name: str, layer, ids) -> Tensor:
    out = call(name, layer, ids)
    if not isinstance(out, Tensor):
        raise AssertionError(f"{name}: returned {type(out).__name__}, expected a Tensor")
    return out


def gather_loop(weights: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The obviously correct lookup: one row per id, in order."""
    rows = [weights[int(i)] for i in np.asarray(ids).reshape(-1)]
    return np.array(rows, dtype=weights.dtype).reshape(*np.shape(ids), weights.shape[1])


def scatter_loop(ids: np.ndarray, g: np.ndarray, v: int) -> np.ndarray:
    """The obviously correct gradient: every position adds its g row to its id's row."""
    d = g.shape[-1]
    grad = np.zeros((v, d), dtype=np.float64)
    for i, row in zip(np.asarray(ids).reshape(-1), g.reshape(-1, d)):
        grad[int(i)] += row
    return grad


def pe_loop(max_len: int, dim: int) -> np.ndarray:
    """Vaswani et al. (2017), section 3.5, one entry at a time, in float64."""
    pe = np.zeros((max_len, dim))
    for p in range(max_len):
        for c in range(dim):
            two_i = c - c % 2  # columns 2i and 2i+1 share the frequency 1 / 10000^(2i / dim)
            angle = p / 10000.0 ** (two_i / dim)
            pe[p, c] = np.sin(angle) if c % 2 == 0 else np.cos(angle)
    return pe


# ---------------------------------------------------------------------------------------------
# Embedding
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("Embedding")
def test_embedding_layer_init_is_a_standard_normal_table():
    layer = make_embedding(200, 64)
    w = layer.weight
    assert isinstance(w, tt.Tensor) and getattr(w, "requires_grad", False), \
        "Embedding.__init__: weight must be a Parameter (a Tensor that requires grad)"
    assert w.dtype == np.float32, f"Embedding.__init__: weight is {w.dtype}, expected float32"
    params = call("Embedding.parameters", layer.parameters)
    assert len(params) == 1 and params[0] is w, \
        f"Embedding.__init__: the layer must have exactly one parameter, its weight (found {len(params)})"
    data = w.data.astype(np.float64)
    mean, std, tails = data.mean(), data.std(), np.mean(np.abs(data) > 2.0)
    assert abs(mean) < 0.05 and abs(std - 1.0) < 0.05, (
        f"Embedding.__init__: weights have mean {mean:.3f} and std {std:.3f}; N(0, 1) (PyTorch's default "
        "for nn.Embedding) has mean 0 and std 1")
    assert 0.03 < tails < 0.065, (
        f"Embedding.__init__: {tails:.1%} of the weights are beyond +-2; a standard normal has 4.6% "
        "(is it a uniform distribution with std 1?)")


@pytest.mark.task("Embedding")
def test_embedding_layer_init_uses_the_seeded_generator():
    tt.manual_seed(3)
    a = make_embedding(10, 4).weight.data.copy()
    tt.manual_seed(3)
    b = make_embedding(10, 4).weight.data.copy()
    tt.manual_seed(4)
    c = make_embedding(10, 4).weight.data.copy()
    assert np.array_equal(a, b), ("Embedding.__init__: two tables made after manual_seed(3) differ; draw from "
                                  "tinytorch.tensor.default_generator()")
    assert not np.array_equal(a, c), ("Embedding.__init__: manual_seed(3) and manual_seed(4) give the same "
                                      "table; draw from default_generator(), not a generator of your own")


@pytest.mark.task("Embedding")
def test_embedding_layer_worked_example():
    weights = np.array([[0.1, 0.2], [1.0, -1.0], [3.0, 0.5], [-2.0, 2.0]], dtype=np.float32)
    layer = make_embedding(4, 2, weights)
    out = lookup("Embedding.forward", layer, np.array([2, 0, 2]))
    assert_close(out, weights[[2, 0, 2]], "Embedding.forward: ids [2, 0, 2] must give rows 2, 0 and 2 of the "
                 "table", [weights])


@pytest.mark.task("Embedding")
@SETTINGS
@given(shape=st.sampled_from([(), (1,), (5,), (2, 3), (2, 1, 4), (3, 0)]), v=st.integers(1, 9),
       d=st.integers(1, 5), dtype=st.sampled_from([np.int64, np.int32, np.uint8]),
       as_tensor=st.booleans(), seed=st.integers(0, 3))
def test_embedding_layer_gathers_rows(shape, v, d, dtype, as_tensor, seed):
    weights = table(v, d, seed)
    layer = make_embedding(v, d, weights)
    ids = np.random.default_rng(seed).integers(0, v, shape).astype(dtype)
    out = lookup("Embedding.forward", layer, Tensor(ids) if as_tensor else ids)
    what = f"ids of shape {shape} ({np.dtype(dtype).name}, as {'a Tensor' if as_tensor else 'an ndarray'})"
    assert out.shape == shape + (d,), f"Embedding.forward: {what} gave shape {out.shape}, expected {shape + (d,)}"
    assert out.dtype == np.float32, f"Embedding.forward: {what} gave {out.dtype}, expected the table's float32"
    assert_close(out, gather_loop(weights, ids), f"Embedding.forward: {what}", [weights, ids], atol=0, rtol=0)
    assert np.array_equal(layer.weight.data, weights), "Embedding.forward: changed the table in place"
    assert out._op == "embedding" and len(out._parents) == 1 and out._parents[0] is layer.weight, (
        f"Embedding.forward: the output must be recorded as one 'embedding' op whose only parent is the "
        f"weight (got op {out._op!r}); keep the given Tensor._make(data, (self.weight,), 'embedding', ids)")


@pytest.mark.task("Embedding")
def test_embedding_layer_keeps_the_table_dtype_and_checks_ids():
    layer = make_embedding(5, 3)
    layer.weight = Tensor(table(5, 3, dtype=np.float64), dtype=np.float64, requires_grad=True)
    out = lookup("Embedding.forward", layer, np.array([4, 0]))
    assert out.dtype == np.float64, f"Embedding.forward: a float64 table gave {out.dtype} rows (gradcheck needs float64)"
    for bad, error in ((np.array([0, 5]), IndexError), (np.array([-1]), IndexError),
                       (np.array([0.0, 1.0]), TypeError)):
        try:
            layer(bad)
        except error:
            continue
        except Exception as e:
            raise AssertionError(f"Embedding.forward: ids {bad.tolist()} raised {type(e).__name__}: {e}, "
                                 f"expected the given {error.__name__}") from e
        raise AssertionError(f"Embedding.forward: ids {bad.tolist()} for a table of 5 rows must raise "
                             f"{error.__name__} (keep the given checks before the lookup)")


# ---------------------------------------------------------------------------------------------
# embedding_backward
# ---------------------------------------------------------------------------------------------
def backward_of(layer, ids, g: np.ndarray, name="embedding_backward") -> np.ndarray:
    """d sum(out * g) / d weight through the engine, after checking the rule on its own."""
    layer.weight.grad = None
    out = lookup("Embedding.forward", layer, ids)
    check_rules(out, name)
    call(name, out.backward, Tensor(g, dtype=out.dtype))
    grad = layer.weight.grad
    if grad is None:
        raise AssertionError(f"{name}: the table received no gradient")
    return grad.data


@pytest.mark.task("embedding_backward")
def test_embedding_backward_repeated_ids_accumulate():
    """ids [1, 1, 3, 1]: row 1 is used three times, so it gets the SUM of three gradient rows."""
    layer = make_embedding(4, 2, table(4, 2))
    ids = np.array([1, 1, 3, 1])
    g = np.array([[1, 0], [2, 0], [0, 5], [4, 0]], dtype=np.float32)
    got = backward_of(layer, ids, g)
    expected = np.array([[0, 0], [7, 0], [0, 0], [0, 5]], dtype=np.float32)
    if np.allclose(got[1], [4, 0]) or np.allclose(got[1], [1, 0]):
        raise AssertionError(f"embedding_backward: row 1 (id 1 is used 3 times, gradients [1, 0], [2, 0], "
                             f"[4, 0]) got {got[1].tolist()}, expected their sum [7, 0]: repeated ids must add "
                             "up; `dW[ids] += g` keeps only one of them - use np.add.at")
    assert_close(got, expected, "embedding_backward: ids [1, 1, 3, 1]", [ids, g])


@pytest.mark.task("embedding_backward")
@SETTINGS
@given(shape=st.sampled_from([(1,), (6,), (2, 5), (3, 2, 2), ()]), v=st.integers(1, 6),
       d=st.integers(1, 4), dtype=st.sampled_from([np.int64, np.int32]), seed=st.integers(0, 5))
def test_embedding_backward_matches_a_loop(shape, v, d, dtype, seed):
    """Few rows and many ids: repeats everywhere. Rows no id uses get exactly zero."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, v, shape).astype(dtype)
    g = rng.standard_normal(shape + (d,)).astype(np.float32)
    got = backward_of(make_embedding(v, d), ids, g)
    assert got.shape == (v, d) and got.dtype == np.float32, (
        f"embedding_backward: gradient of shape {got.shape} and dtype {got.dtype}, expected {(v, d)} float32")
    assert_close(got, scatter_loop(ids, g, v), f"embedding_backward: ids of shape {shape} (repeated ids add up)",
                 [ids, g])


@pytest.mark.task("embedding_backward")
@pytest.mark.parametrize("ids", [np.array([3, 1, 3, 3, 0]), np.array([[0, 2, 2], [2, 1, 0]]),
                                 np.array([1, 1, 1, 1]), np.array(2), np.array([[4], [0]], dtype=np.int32)],
                         ids=["repeats", "batch", "one-id", "0-d", "int32-column"])
def test_embedding_backward_gradcheck(ids):
    weights = table(5, 3, seed=1, dtype=np.float64)
    layer = make_embedding(5, 3)
    gradcheck(lambda w: with_weight(layer, w)(ids), weights,
              name=f"embedding_backward: ids {ids.tolist()}")


@pytest.mark.task("embedding_backward")
def test_embedding_backward_two_lookups_share_the_table():
    """One table used twice in a graph (tokens of two sequences, or a tied output layer): the
    engine adds both gradients - the rule must return a fresh array each time."""
    layer = make_embedding(4, 3)
    a, b = np.array([0, 1, 1]), np.array([1, 3])
    ga = np.random.default_rng(1).standard_normal((3, 3)).astype(np.float32)
    gb = np.random.default_rng(2).standard_normal((2, 3)).astype(np.float32)
    with blame("Embedding.forward"):
        loss = (lookup("Embedding.forward", layer, a) * Tensor(ga)).sum() + \
            (lookup("Embedding.forward", layer, b) * Tensor(gb)).sum()
    call("embedding_backward", loss.backward)
    expected = scatter_loop(a, ga, 4) + scatter_loop(b, gb, 4)
    assert layer.weight.grad is not None, "embedding_backward: the table received no gradient"
    assert_close(layer.weight.grad, expected, "embedding_backward: two lookups of one table", [a, b])


@pytest.mark.task("embedding_backward")
@pytest.mark.parametrize("ids", [np.array([[1, 1, 3, 1], [0, 3, 3, 2]]), np.array([5, 5, 5])],
                         ids=["batch", "one-id"])
def test_embedding_backward_matches_torch(ids):
    torch = torch_or_skip()
    weights = table(6, 4, seed=2)
    g = np.random.default_rng(3).standard_normal(ids.shape + (4,)).astype(np.float32)
    layer = make_embedding(6, 4, weights)
    out = lookup("Embedding.forward", layer, ids)
    w_th = torch.tensor(weights, requires_grad=True)
    out_th = torch.nn.functional.embedding(torch.tensor(ids), w_th)
    assert_close(out, out_th.detach().numpy(), "Embedding.forward (vs PyTorch)", [ids])
    out_th.backward(torch.tensor(g))
    assert_close(backward_of(layer, ids, g), w_th.grad.numpy(), "embedding_backward (vs PyTorch)", [ids, g])


# ---------------------------------------------------------------------------------------------
# PositionalEmbedding
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("PositionalEmbedding")
@pytest.mark.parametrize("max_len, dim, T", [(8, 3, 8), (8, 3, 5), (1, 4, 1), (16, 2, 7)])
def test_positional_embedding_rows_are_positions(max_len, dim, T):
    pos = make_embedding(max_len, dim, table(max_len, dim, seed=T), cls=PositionalEmbedding,
                         name="PositionalEmbedding.__init__")
    assert isinstance(pos, Embedding), "PositionalEmbedding: must be an Embedding (of the positions)"
    out = lookup("PositionalEmbedding.forward", pos, T)
    assert out.shape == (T, dim), f"PositionalEmbedding.forward: forward({T}) gave shape {out.shape}, expected {(T, dim)}"
    weights = pos.weight.data
    if T > 1 and np.allclose(out.data, out.data[:1]):
        raise AssertionError(f"PositionalEmbedding.forward: forward({T}) gives every position the same vector; "
                             "position t must get row t of the table")
    assert_close(out, weights[:T], f"PositionalEmbedding.forward: forward({T}) must be rows 0..{T - 1} of the "
                 "table, in order", [weights], atol=0, rtol=0)
    assert out.requires_grad, ("PositionalEmbedding.forward: the output is not recorded in the graph; go "
                               "through Embedding.forward so the table is trained")


@pytest.mark.task("PositionalEmbedding")
def test_positional_embedding_gradient_reaches_rows_0_to_T():
    """x = tok(idx) + pos(T), (B, T, D) + (T, D): position t's row gets the gradient of position t
    summed over the batch; rows T.. get zero."""
    tok = make_embedding(5, 3)
    pos = make_embedding(8, 3, cls=PositionalEmbedding, name="PositionalEmbedding.__init__")
    idx = np.array([[1, 2, 2, 4], [0, 3, 1, 1]])
    g = np.random.default_rng(4).standard_normal((2, 4, 3)).astype(np.float32)
    with blame("PositionalEmbedding.forward"):
        x = lookup("Embedding.forward", tok, idx) + lookup("PositionalEmbedding.forward", pos, 4)
    call("PositionalEmbedding.forward", x.backward, Tensor(g))
    assert pos.weight.grad is not None, "PositionalEmbedding.forward: the table received no gradient"
    expected = np.zeros((8, 3), np.float32)
    expected[:4] = g.sum(axis=0)
    assert_close(pos.weight.grad, expected, "PositionalEmbedding.forward: gradient of tok(idx) + pos(4)", [g])
    gradcheck(lambda w: with_weight(pos, w)(5), table(8, 3, seed=5, dtype=np.float64),
              name="PositionalEmbedding.forward (gradient of forward(5))")


@pytest.mark.task("PositionalEmbedding")
def test_positional_embedding_refuses_more_than_max_len():
    pos = make_embedding(6, 2, cls=PositionalEmbedding, name="PositionalEmbedding.__init__")
    lookup("PositionalEmbedding.forward", pos, 6)  # exactly max_len is fine
    try:
        pos(7)
    except ValueError as e:
        assert "6" in str(e) and "max_len" in str(e), (
            f"PositionalEmbedding.forward: the ValueError for T = 7 must name max_len and its value 6, got {e}")
        return
    except NotImplementedError:
        raise
    except Exception as e:
        raise AssertionError(f"PositionalEmbedding.forward: forward(7) with max_len = 6 raised "
                             f"{type(e).__name__}: {e}, expected a ValueError naming max_len") from e
    raise AssertionError("PositionalEmbedding.forward: forward(7) with max_len = 6 must raise a ValueError")


# ---------------------------------------------------------------------------------------------
# sinusoidal_encoding
# ---------------------------------------------------------------------------------------------
def encoding(max_len: int, dim: int) -> np.ndarray:
    pe = call("sinusoidal_encoding", sinusoidal_encoding, max_len, dim)
    if not isinstance(pe, np.ndarray):
        raise AssertionError(f"sinusoidal_encoding: returned {type(pe).__name__}, expected an ndarray")
    if pe.shape != (max_len, dim):
        raise AssertionError(f"sinusoidal_encoding({max_len}, {dim}): shape {pe.shape}, expected {(max_len, dim)}")
    if pe.dtype != np.float32:
        raise AssertionError(f"sinusoidal_encoding: returned {pe.dtype}, expected float32")
    return pe


def _diagnose(pe: np.ndarray, ref: np.ndarray, dim: int) -> None:
    """A named message for the usual wrong tables, before the plain comparison."""
    n = len(pe)
    if not np.allclose(ref, 0) and (np.allclose(pe, 0) or (n == dim and np.allclose(pe, np.eye(dim)))):
        raise AssertionError("sinusoidal_encoding: the table is all zeros or the identity - that encodes no "
                             "position; PE[p, 2i] = sin(p / 10000^(2i/dim)), PE[p, 2i+1] = cos(...)")
    if n > 1 and np.allclose(pe, pe[:1]):
        raise AssertionError("sinusoidal_encoding: every position gets the same vector (a constant table): "
                             "the position p must enter every angle p / 10000^(2i/dim)")
    if dim > 1 and not np.allclose(pe[0], ref[0], atol=1e-6):
        raise AssertionError(f"sinusoidal_encoding: row 0 is {np.round(pe[0], 4).tolist()}, expected "
                             f"{ref[0].tolist()} (sin 0 = 0 in the even columns, cos 0 = 1 in the odd ones)")


@pytest.mark.task("sinusoidal_encoding")
@pytest.mark.parametrize("max_len, dim", [(3, 4), (50, 16), (10, 7), (20, 33), (7, 2), (1, 1), (5, 5)])
def test_sinusoidal_encoding_matches_the_formula(max_len, dim):
    pe, ref = encoding(max_len, dim), pe_loop(max_len, dim)
    _diagnose(pe, ref, dim)
    assert_close(pe, ref, f"sinusoidal_encoding({max_len}, {dim}): PE[p, 2i] = sin(p / 10000^(2i/{dim})), "
                 "PE[p, 2i+1] = cos(p / 10000^(2i/dim))", atol=1e-6)


@pytest.mark.task("sinusoidal_encoding")
def test_sinusoidal_encoding_worked_example():
    expected = np.array([[0, 1, 0, 1], [0.841471, 0.540302, 0.01, 0.99995], [0.909297, -0.416147, 0.019999, 0.9998]])
    pe = encoding(3, 4)
    _diagnose(pe, expected, 4)
    assert_close(pe, expected, "sinusoidal_encoding(3, 4): the worked example of the lesson "
                 "(omega_0 = 1, omega_1 = 0.01)", atol=2e-6)


@pytest.mark.task("sinusoidal_encoding")
def test_sinusoidal_encoding_is_exact_far_out():
    """Position 2,047: float32 angles would be off by ~1e-4; float64 angles, stored as float32, are
    within float32's rounding (~6e-8)."""
    positions = np.arange(2048, dtype=np.float64)[:, None]
    omega = 10000.0 ** (-(np.arange(16) - np.arange(16) % 2) / 16)
    angles = positions * omega
    ref = np.where(np.arange(16) % 2 == 0, np.sin(angles), np.cos(angles))
    pe = encoding(2048, 16)
    _diagnose(pe, ref, 16)
    err = np.abs(pe - ref).max()
    assert err < 2e-6, (f"sinusoidal_encoding(2048, 16): max error {err:.2g} against float64 (at position "
                        f"{np.unravel_index(np.abs(pe - ref).argmax(), pe.shape)[0]}); compute the angles "
                        "in float64 and convert the finished table to float32")


@pytest.mark.task("sinusoidal_encoding")
@SETTINGS
@given(p=st.integers(0, 60), k=st.integers(1, 20), half=st.integers(1, 8))
def test_sinusoidal_encoding_offsets_are_rotations(p, k, half):
    """PE[p + k] = R(omega_i k) PE[p] for every (sin, cos) pair i, and PE[p] . PE[q] depends on
    p - q only: what makes the encoding useful for relative positions."""
    dim = 2 * half
    pe = encoding(p + k + 1, dim).astype(np.float64)
    for i in range(half):
        w = 10000.0 ** (-2 * i / dim)
        c, s = np.cos(w * k), np.sin(w * k)
        rotated = np.array([[c, s], [-s, c]]) @ pe[p, 2 * i:2 * i + 2]
        assert np.allclose(rotated, pe[p + k, 2 * i:2 * i + 2], atol=1e-5), (
            f"sinusoidal_encoding: pair {i} (columns {2 * i}, {2 * i + 1}) of position {p + k} is not position "
            f"{p}'s pair rotated by omega_{i} * {k}; the pair must be (sin(omega_i p), cos(omega_i p)) "
            f"with omega_i = 10000^(-2i/{dim})")
    expected = sum(np.cos(10000.0 ** (-2 * i / dim) * k) for i in range(half))
    got = float(pe[p] @ pe[p + k])
    assert abs(got - expected) < 1e-4, (f"sinusoidal_encoding: PE[{p}] . PE[{p + k}] = {got:.5f}, expected "
                                        f"sum_i cos(omega_i * {k}) = {expected:.5f}")


# ---------------------------------------------------------------------------------------------
# SinusoidalPositionalEncoding
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("SinusoidalPositionalEncoding")
@pytest.mark.parametrize("max_len, dim, T", [(64, 8, 5), (10, 7, 10), (3, 2, 1)])
def test_sinusoidal_module_gives_the_first_T_rows(max_len, dim, T):
    ref = pe_loop(max_len, dim)
    table_ok = np.allclose(encoding(max_len, dim), ref, atol=1e-6)
    enc = call("SinusoidalPositionalEncoding.__init__", SinusoidalPositionalEncoding, max_len, dim)
    out = lookup("SinusoidalPositionalEncoding.forward", enc, T)
    assert table_ok, (f"sinusoidal_encoding: the layer's table sinusoidal_encoding({max_len}, {dim}) is wrong "
                      "(see the sinusoidal_encoding checks)")
    assert out.shape == (T, dim) and out.dtype == np.float32, (
        f"SinusoidalPositionalEncoding.forward: forward({T}) gave {out.shape} {out.dtype}, expected {(T, dim)} float32")
    assert_close(out, ref[:T], f"SinusoidalPositionalEncoding.forward: forward({T}) must be the "
                 "first T rows of the sinusoidal table", atol=1e-6)
    assert not out.requires_grad, "SinusoidalPositionalEncoding.forward: the encoding is fixed - no gradient"
    assert call("SinusoidalPositionalEncoding.parameters", enc.parameters) == [], \
        "SinusoidalPositionalEncoding: a fixed encoding has no parameters"


@pytest.mark.task("SinusoidalPositionalEncoding")
def test_sinusoidal_module_refuses_more_than_max_len():
    enc = call("SinusoidalPositionalEncoding.__init__", SinusoidalPositionalEncoding, 4, 6)
    lookup("SinusoidalPositionalEncoding.forward", enc, 4)
    try:
        enc(5)
    except ValueError as e:
        assert "4" in str(e) and "max_len" in str(e), (
            f"SinusoidalPositionalEncoding.forward: the ValueError for T = 5 must name max_len and its value 4, got {e}")
        return
    except NotImplementedError:
        raise
    except Exception as e:
        raise AssertionError(f"SinusoidalPositionalEncoding.forward: forward(5) with max_len = 4 raised "
                             f"{type(e).__name__}: {e}, expected a ValueError naming max_len") from e
    raise AssertionError("SinusoidalPositionalEncoding.forward: forward(5) with max_len = 4 must raise a ValueError")
