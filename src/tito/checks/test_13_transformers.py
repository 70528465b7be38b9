"""Checks for module 13 (transformers): layer_norm and its backward, LayerNorm, MLP,
TransformerBlock, GPT (structure, weight tying, forward, training) and GPT.generate.

layer_norm is compared with its formula (float64, over the last axis, biased variance, eps inside
the square root - with inputs where each of those matters) and with PyTorch when it is installed;
its backward rule with central differences, plus the two facts the mean terms guarantee (each
row of dx sums to 0 and is orthogonal to xhat). The block and the model are compared with a
reference assembled from the learner's OWN parts (block.ln1, block.attn, ...), so the checks
test the wiring - residuals, pre-norm, causal attention, position embeddings, the final norm -
and not modules 11/12 a second time. Whole-model properties: no logit at a position <= k moves
when tokens after k change; the tied weight is one Parameter whose gradient is the sum of both
uses; generate keeps the prompt, crops the context, is greedy at temperature 0 and top_k=1,
samples from softmax(logits / temperature) restricted to the top k, row by row (one prompt too),
never an id past the vocabulary; a small GPT memorises a sequence with Adam in a few dozen steps.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinytorch.tensor as tt
from tinytorch.attention import MultiHeadAttention
from tinytorch.embeddings import Embedding, PositionalEmbedding
from tinytorch.layers import Linear, Parameter, Sequential
from tinytorch.tensor import Tensor, no_grad
from tinytorch.transformers import (GPT, MLP, GPTConfig, LayerNorm, TransformerBlock, layer_norm)
from tito.checks.harness import (assert_close, blame, call, check_rules, gradcheck, torch_or_skip)


@pytest.fixture(autouse=True)
def _seed():
    tt.manual_seed(0)
    yield
    tt.manual_seed(0)


def rand(*shape, seed=0, scale=1.0, dtype=np.float32) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def ln_formula(x, w, b, eps=1e-5, axis=-1, ddof=0, eps_inside=True):
    """The textbook formula in float64 (its keyword arguments make the usual wrong variants)."""
    x = np.asarray(x, np.float64)
    mu = x.mean(axis=axis, keepdims=True)
    var = x.var(axis=axis, keepdims=True, ddof=ddof)
    denom = np.sqrt(var + eps) if eps_inside else np.sqrt(var) + eps
    return (x - mu) / denom * w + b


def gelu_formula(v):
    return 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)))


def diagnose_ln(out, x, w, b, eps) -> str:
    """Which known mistake `out` matches, as a hint for the failure message."""
    variants = {
        "eps outside the square root (use sqrt(var + eps), not sqrt(var) + eps)":
            ln_formula(x, w, b, eps, eps_inside=False),
        "the unbiased variance (divide by C, not C - 1)": ln_formula(x, w, b, eps, ddof=1),
        "the statistics over the wrong axis (mean and variance over the LAST axis only)":
            ln_formula(x, w, b, eps, axis=0),
        "weight and bias not applied (y = weight * xhat + bias)": ln_formula(x, 1.0, 0.0, eps),
    }
    for what, y in variants.items():
        if np.shape(y) == np.shape(out) and np.allclose(out, y, atol=1e-4, rtol=1e-3):
            return f" - it matches {what}"
    return ""


def run_ln(x, w, b, eps=1e-5, name="layer_norm"):
    """layer_norm on copies; it must return a float32 Tensor and leave its inputs alone."""
    xs, ws, bs = Tensor(x.copy()), Tensor(w.copy()), Tensor(b.copy())
    out = call(name, layer_norm, xs, ws, bs, eps)
    if not isinstance(out, Tensor):
        raise AssertionError(f"{name}: returned {type(out).__name__}, expected a Tensor")
    for t, a in ((xs, x), (ws, w), (bs, b)):
        if not np.array_equal(t.data, a):
            raise AssertionError(f"{name}: changed one of its inputs in place")
    return out


# ---------------------------------------------------------------------------------------------
# layer_norm: forward
# ---------------------------------------------------------------------------------------------
LN_SHAPES = [(4, 6), (2, 3, 5), (1, 1, 7), (3, 2, 2, 4), (5, 1)]


@pytest.mark.task("layer_norm")
@pytest.mark.parametrize("shape", LN_SHAPES, ids=str)
def test_layer_norm_forward_matches_formula(shape):
    """Statistics over the last axis only, for 2-D to 4-D inputs; per-feature weight and bias."""
    x = rand(*shape, seed=1, scale=3.0) + 2.0
    w, b = rand(shape[-1], seed=2), rand(shape[-1], seed=3)
    out = run_ln(x, w, b)
    expected = ln_formula(x, w, b)
    if out.dtype != np.float32:
        raise AssertionError(f"layer_norm: float32 inputs gave {out.dtype}; keep float32")
    if out.shape == expected.shape and not np.allclose(out.data, expected, atol=1e-4, rtol=1e-4):
        raise AssertionError(f"layer_norm: wrong values for an input of shape {shape}"
                             + diagnose_ln(out.data, x, w, b, 1e-5)
                             + f" (max abs error {np.max(np.abs(out.data - expected)):.3g})")
    assert_close(out, expected, f"layer_norm: input {shape}", [x, w, b], atol=1e-4)


@pytest.mark.task("layer_norm")
@pytest.mark.parametrize("scale, eps", [(1e-2, 1e-5), (1.0, 0.5)], ids=["small-variance", "large-eps"])
def test_layer_norm_forward_eps_inside_the_sqrt(scale, eps):
    """Where eps goes only shows when var is not >> eps: tiny activations, or a large eps."""
    x = rand(3, 8, seed=4, scale=scale)
    w, b = np.ones(8, np.float32), np.zeros(8, np.float32)
    out = run_ln(x, w, b, eps)
    expected = ln_formula(x, w, b, eps)
    if out.shape == expected.shape and not np.allclose(out.data, expected, atol=1e-4, rtol=1e-3):
        raise AssertionError(f"layer_norm: eps={eps} on an input with variance ~{scale ** 2:g} gives the "
                             "wrong values" + (diagnose_ln(out.data, x, w, b, eps) or
                                               ": y = (x - mean) / sqrt(var + eps) * weight + bias"))
    assert_close(out, expected, f"layer_norm: eps={eps}, input variance ~{scale ** 2:g}", [x], atol=1e-4,
                 rtol=1e-3)


@pytest.mark.task("layer_norm")
def test_layer_norm_forward_constant_rows_give_the_bias():
    """var = 0: eps keeps the division finite, xhat = 0, so the output is exactly the bias."""
    x = np.stack([np.full(5, 3.0), np.full(5, -1e3), np.zeros(5)]).astype(np.float32)
    b = rand(5, seed=5)
    out = run_ln(x, rand(5, seed=6), b)
    if not np.all(np.isfinite(out.data)):
        raise AssertionError("layer_norm: a constant vector (variance 0) gave nan/inf; eps belongs "
                             "inside the square root, sqrt(var + eps)")
    assert_close(out, np.broadcast_to(b, (3, 5)), "layer_norm: a constant vector must give y = bias",
                 [x], atol=1e-4)


@pytest.mark.task("layer_norm")
def test_layer_norm_forward_records_one_node():
    x = Tensor(rand(2, 3, 4, seed=7), requires_grad=True)
    out = call("layer_norm", layer_norm, x, Tensor(np.ones(4, np.float32)), Tensor(np.zeros(4, np.float32)))
    if not out.requires_grad or out._op != "layer_norm":
        raise AssertionError(f"layer_norm: the output must be ONE graph node with op 'layer_norm' (got "
                             f"op {out._op!r}); build it with the given Tensor._make line")


@pytest.mark.task("layer_norm")
def test_layer_norm_forward_matches_torch():
    torch = torch_or_skip()
    x, w, b = rand(2, 5, 6, seed=8, scale=2.0), rand(6, seed=9), rand(6, seed=10)
    out = run_ln(x, w, b)
    expected = torch.nn.functional.layer_norm(torch.tensor(x), (6,), torch.tensor(w), torch.tensor(b),
                                              eps=1e-5).numpy()
    assert_close(out, expected, "layer_norm (vs PyTorch)", [x, w, b], atol=1e-5)


# ---------------------------------------------------------------------------------------------
# layer_norm: backward
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("layer_norm_backward")
@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 4), (1, 1, 6), (4, 2)], ids=str)
def test_layer_norm_backward_gradcheck(shape):
    """Gradients of x, weight and bias against central differences (float64), weight not 1."""
    x = rand(*shape, seed=11, scale=2.0, dtype=np.float64) + 1.0
    w, b = rand(shape[-1], seed=12, dtype=np.float64), rand(shape[-1], seed=13, dtype=np.float64)
    gradcheck(lambda x, w, b: layer_norm(x, w, b), x, w, b, name=f"layer_norm_backward: input {shape}")


@pytest.mark.task("layer_norm_backward")
def test_layer_norm_backward_mean_terms():
    """With weight 1: each row of dx sums to 0 (a shift of the row changes nothing) and is
    orthogonal to xhat (neither does a rescale) - what the two mean terms of the rule ensure."""
    x = rand(4, 6, seed=14, dtype=np.float64) * 3 + 1
    g = rand(4, 6, seed=15, dtype=np.float64)
    xt = Tensor(x, dtype=np.float64, requires_grad=True)
    out = call("layer_norm", layer_norm, xt, Tensor(np.ones(6), dtype=np.float64),
               Tensor(np.zeros(6), dtype=np.float64))
    check_rules(out, "layer_norm_backward")
    call("layer_norm_backward", out.backward, Tensor(g, dtype=np.float64))
    if xt.grad is None:
        raise AssertionError("layer_norm_backward: the input received no gradient")
    dx = xt.grad.data
    xhat = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    sums, dots = dx.sum(-1), (dx * xhat).sum(-1)
    if not np.allclose(sums, 0, atol=1e-8):
        raise AssertionError(f"layer_norm_backward: each row of dx must sum to 0 (row sums {np.round(sums, 4)}): "
                             "the - mean(d) term is missing or wrong; dx = rstd (d - mean(d) - xhat mean(d xhat))")
    if not np.allclose(dots, 0, atol=1e-5):  # exactly 0 without eps; eps / var ~ 1e-6 here
        raise AssertionError(f"layer_norm_backward: each row of dx must be orthogonal to xhat (dot products "
                             f"{np.round(dots, 4)}): the - xhat mean(d xhat) term is missing or wrong")


@pytest.mark.task("layer_norm_backward")
def test_layer_norm_backward_constant_input():
    """Only weight and bias need gradients (x is data): they still get the right ones."""
    x = rand(2, 3, 4, seed=16, dtype=np.float64)
    gradcheck(lambda w, b: layer_norm(Tensor(x, dtype=np.float64), w, b),
              rand(4, seed=17, dtype=np.float64), rand(4, seed=18, dtype=np.float64),
              name="layer_norm_backward: x needs no gradient")


@pytest.mark.task("layer_norm_backward")
def test_layer_norm_backward_matches_torch():
    torch = torch_or_skip()
    from tito.checks.harness import torch_parity

    torch_parity(lambda x, w, b: layer_norm(x, w, b),
                 lambda x, w, b: torch.nn.functional.layer_norm(x, (5,), w, b, eps=1e-5),
                 rand(3, 4, 5, seed=19, scale=2.0), rand(5, seed=20), rand(5, seed=21),
                 name="layer_norm_backward (vs PyTorch)", atol=1e-4)


# ---------------------------------------------------------------------------------------------
# LayerNorm (the given layer around layer_norm)
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("LayerNorm")
def test_layernorm_layer_normalises_the_last_axis():
    ln = call("LayerNorm", LayerNorm, 6)
    params = ln.parameters()
    if len(params) != 2 or not all(isinstance(p, Parameter) for p in params):
        raise AssertionError("LayerNorm: expected two Parameters, weight and bias")
    assert_close(ln.weight, np.ones(6), "LayerNorm: weight starts at ones")
    assert_close(ln.bias, np.zeros(6), "LayerNorm: bias starts at zeros")
    x = rand(2, 3, 6, seed=22, scale=4.0) + 3
    out = call("layer_norm", ln, Tensor(x))
    assert_close(out, ln_formula(x, 1.0, 0.0), "layer_norm: through LayerNorm(6)", [x], atol=1e-4)


# ---------------------------------------------------------------------------------------------
# MLP
# ---------------------------------------------------------------------------------------------
def linears(module, name: str) -> list:
    with blame(name, "its Linear layers"):
        return [m for m in module.modules() if isinstance(m, Linear)]


@pytest.mark.task("MLP")
@pytest.mark.parametrize("dim, hidden", [(8, None), (6, 5)], ids=["default-4x", "hidden-5"])
def test_mlp_layers_and_width(dim, hidden):
    mlp = call("MLP.__init__", MLP, dim, hidden) if hidden else call("MLP.__init__", MLP, dim)
    width = 4 * dim if hidden is None else hidden
    layers = linears(mlp, "MLP.__init__")
    shapes = [tuple(l.weight.shape) for l in layers]
    if shapes != [(width, dim), (dim, width)]:
        raise AssertionError(f"MLP.__init__: MLP({dim}{'' if hidden is None else f', {hidden}'}) has Linear "
                             f"weights {shapes}; expected Linear({dim}, {width}) then Linear({width}, {dim})"
                             + (" (hidden defaults to 4 * dim)" if hidden is None else ""))
    n = sum(p.size for p in mlp.parameters())
    expected = 2 * dim * width + width + dim
    if n != expected:
        raise AssertionError(f"MLP.__init__: {n} parameters, expected {expected} (two Linear layers with biases)")


@pytest.mark.task("MLP")
def test_mlp_forward_is_linear_gelu_linear():
    mlp = call("MLP.__init__", MLP, 6)
    fc, proj = linears(mlp, "MLP.__init__")
    with blame("MLP.__init__", "writing known weights into fc and proj"):
        for k, layer in enumerate((fc, proj)):
            layer.weight.data[...] = rand(*layer.weight.shape, seed=30 + k)
            layer.bias.data[...] = rand(*layer.bias.shape, seed=40 + k)
    x = rand(2, 3, 6, seed=23)
    out = call("MLP.forward", mlp, Tensor(x))
    h = gelu_formula(x.astype(np.float64) @ fc.weight.data.T + fc.bias.data)
    expected = h @ proj.weight.data.T + proj.bias.data
    relu = np.maximum(x @ fc.weight.data.T + fc.bias.data, 0) @ proj.weight.data.T + proj.bias.data
    if out.shape == expected.shape and np.allclose(out.data, relu, atol=1e-4) \
            and not np.allclose(out.data, expected, atol=1e-4):
        raise AssertionError("MLP.forward: uses ReLU; the GPT MLP uses GELU between the two layers")
    assert_close(out, expected, "MLP.forward: proj(gelu(fc(x))) on a (B, T, C) input", [x], atol=1e-4)


# ---------------------------------------------------------------------------------------------
# TransformerBlock
# ---------------------------------------------------------------------------------------------
def block_parts(block) -> tuple:
    with blame("TransformerBlock.__init__", "its parts ln1, attn, ln2, mlp"):
        parts = block.ln1, block.attn, block.ln2, block.mlp
    for name, part, cls in zip(("ln1", "attn", "ln2", "mlp"), parts,
                               (LayerNorm, MultiHeadAttention, LayerNorm, MLP)):
        if not isinstance(part, cls):
            raise AssertionError(f"TransformerBlock.__init__: {name} is a {type(part).__name__}, expected a "
                                 f"{cls.__name__}")
    return parts


def randomise_norms(module, seed: int) -> None:
    """Layer norms away from weight 1 / bias 0, so swapping ln1 and ln2 (or skipping one) shows."""
    rng = np.random.default_rng(seed)
    for m in module.modules():
        if isinstance(m, LayerNorm):
            m.weight.data[...] = 1 + 0.5 * rng.standard_normal(m.weight.shape)
            m.bias.data[...] = 0.5 * rng.standard_normal(m.bias.shape)


def make_block(dim=16, heads=4, seed=50):
    block = call("TransformerBlock.__init__", TransformerBlock, dim, heads)
    block_parts(block)
    randomise_norms(block, seed)
    return block


@pytest.mark.task("TransformerBlock")
def test_transformer_block_is_pre_norm_with_residuals():
    """block(x) == x + attn(ln1(x), causal), then + mlp(ln2(.)), built from the block's own parts."""
    block = make_block()
    ln1, attn, ln2, mlp = block_parts(block)
    x = rand(2, 5, 16, seed=24)
    out = call("TransformerBlock.forward", block, Tensor(x))
    with no_grad(), blame("TransformerBlock.forward", "the reference built from its own parts"):
        X = Tensor(x)
        h = X + attn(ln1(X), is_causal=True)
        expected = (h + mlp(ln2(h))).data
        variants = {
            "no residual connections (x = x + f(ln(x)): add the sub-layer's output to its input)":
                mlp(ln2(attn(ln1(X), is_causal=True))).data,
            "post-norm (x = ln(x + f(x))); a GPT block is pre-norm: x = x + f(ln(x))":
                ln2(ln1(X + attn(X, is_causal=True)) + mlp(ln1(X + attn(X, is_causal=True)))).data,
            "attention that is not causal (pass is_causal=True)":
                (lambda h2: (h2 + mlp(ln2(h2))).data)(X + attn(ln1(X))),
            "ln1 and ln2 swapped": (lambda h2: (h2 + mlp(ln1(h2))).data)(X + attn(ln2(X), is_causal=True)),
        }
    if out.shape == expected.shape and not np.allclose(out.data, expected, atol=1e-4):
        for what, y in variants.items():
            if np.allclose(out.data, y, atol=1e-4):
                raise AssertionError(f"TransformerBlock.forward: {what}")
    assert_close(out, expected, "TransformerBlock.forward: x + attn(ln1(x), is_causal=True), then "
                 "+ mlp(ln2(.))", [x], atol=1e-4)


@pytest.mark.task("TransformerBlock")
def test_transformer_block_is_causal():
    block = make_block(seed=51)
    x = rand(1, 6, 16, seed=25)
    base = call("TransformerBlock.forward", block, Tensor(x)).data
    for k in range(5):
        y = x.copy()
        y[:, k + 1:] = rand(1, 5 - k, 16, seed=60 + k)
        moved = np.abs(call("TransformerBlock.forward", block, Tensor(y)).data[:, :k + 1] - base[:, :k + 1]).max()
        if moved > 1e-4:
            raise AssertionError(f"TransformerBlock.forward: changing the input after position {k} moved the "
                                 f"output at positions <= {k} by {moved:.3g}: the attention must be causal")


@pytest.mark.task("TransformerBlock")
def test_transformer_block_gradients_reach_every_parameter():
    block = make_block(seed=52)
    x = Tensor(rand(2, 4, 16, seed=26), requires_grad=True)
    out = call("TransformerBlock.forward", block, x)
    if out.shape != (2, 4, 16):
        raise AssertionError(f"TransformerBlock.forward: (2, 4, 16) in, {out.shape} out; a block keeps the shape")
    call("TransformerBlock.forward (backward pass)", out.backward, Tensor(rand(2, 4, 16, seed=27)))
    missing = [n for n, p in block.named_parameters() if p.grad is None or not np.any(p.grad.data)]
    if missing:
        raise AssertionError(f"TransformerBlock.forward: no gradient reached {missing}")
    if x.grad is None:
        raise AssertionError("TransformerBlock.forward: no gradient reached the input")


# ---------------------------------------------------------------------------------------------
# GPT: structure
# ---------------------------------------------------------------------------------------------
def tiny(vocab=11, block=8, n_layer=2, n_head=2, n_embd=16, tie=True, seed=0) -> GPT:
    tt.manual_seed(seed)
    config = GPTConfig(vocab_size=vocab, block_size=block, n_layer=n_layer, n_head=n_head, n_embd=n_embd,
                       tie_weights=tie)
    return call("GPT.__init__", GPT, config)


def gpt_parts(model):
    with blame("GPT.__init__", "its parts tok_emb, pos_emb, blocks, ln_f, lm_head"):
        parts = model.tok_emb, model.pos_emb, model.blocks, model.ln_f, model.lm_head
    for name, part, cls in zip(("tok_emb", "pos_emb", "blocks", "ln_f", "lm_head"), parts,
                               (Embedding, PositionalEmbedding, Sequential, LayerNorm, Linear)):
        if not isinstance(part, cls):
            raise AssertionError(f"GPT.__init__: {name} is a {type(part).__name__}, expected a {cls.__name__}"
                                 + (" (a list is invisible to parameters())" if name == "blocks" else ""))
    return parts


def default_count(V=65, T=64, C=128, L=4, tied=True) -> int:
    block = (4 * C * C + 4 * C) + (8 * C * C + 5 * C) + 4 * C  # attention + MLP + 2 layer norms
    return V * C + T * C + L * block + 2 * C + (0 if tied else V * C)


@pytest.mark.task("GPT.__init__")
def test_gpt_default_config_has_0_8m_parameters():
    config = GPTConfig()
    fields = (config.vocab_size, config.block_size, config.n_layer, config.n_head, config.n_embd,
              config.tie_weights)
    if fields != (65, 64, 4, 4, 128, True):
        raise AssertionError(f"GPT.__init__: GPTConfig() defaults are {fields}, expected (65, 64, 4, 4, 128, True)")
    model = call("GPT.__init__", GPT, config)
    tok, pos, blocks, ln_f, head = gpt_parts(model)
    if len(blocks) != 4 or not all(isinstance(b, TransformerBlock) for b in blocks):
        raise AssertionError(f"GPT.__init__: blocks must hold n_layer=4 TransformerBlocks, got "
                             f"{[type(b).__name__ for b in blocks]}")
    if head.bias is not None:
        raise AssertionError("GPT.__init__: lm_head is a Linear without bias (bias=False)")
    n = call("GPT.num_parameters", model.num_parameters)
    if n != default_count():
        raise AssertionError(f"GPT.__init__: GPT(GPTConfig()) has {n:,} parameters, expected "
                             f"{default_count():,} = V C + T C + 4 (12 C^2 + 13 C) + 2 C (tied head)")


@pytest.mark.task("GPT.__init__")
def test_gpt_weight_tying_is_one_parameter():
    model = tiny()
    tok, _, _, _, head = gpt_parts(model)
    if head.weight is not tok.weight:
        same_array = head.weight.data is tok.weight.data
        raise AssertionError("GPT.__init__: with tie_weights, lm_head.weight must BE tok_emb.weight (one "
                             "Parameter: self.lm_head.weight = self.tok_emb.weight)"
                             + ("; sharing .data gives two Parameters whose gradients never meet" if same_array
                                else ""))
    names = [n for n, p in model.named_parameters() if p is tok.weight]
    if len(names) != 1:
        raise AssertionError(f"GPT.__init__: the tied weight is listed {len(names)} times by parameters()")
    untied = tiny(tie=False)
    t2, _, _, _, h2 = gpt_parts(untied)
    if h2.weight is t2.weight or np.shares_memory(h2.weight.data, t2.weight.data):
        raise AssertionError("GPT.__init__: tie_weights=False must give lm_head its own weight")
    n_tied, n_untied = model.num_parameters(), untied.num_parameters()
    if n_untied - n_tied != 11 * 16:
        raise AssertionError(f"GPT.__init__: untying should add V C = 176 parameters, it added {n_untied - n_tied}")


# ---------------------------------------------------------------------------------------------
# GPT: forward
# ---------------------------------------------------------------------------------------------
def logits_of(model, idx, name="GPT.forward") -> np.ndarray:
    out = call(name, model, idx)
    if not isinstance(out, Tensor):
        raise AssertionError(f"{name}: returned {type(out).__name__}, expected a Tensor of logits")
    return out.data


@pytest.mark.task("GPT.forward")
def test_gpt_forward_shapes():
    model = tiny()
    for B, T in ((2, 5), (1, 8), (3, 1)):
        idx = np.random.default_rng(B * T).integers(0, 11, (B, T))
        out = call("GPT.forward", model, idx)
        if out.shape != (B, T, 11) or out.dtype != np.float32:
            raise AssertionError(f"GPT.forward: idx {idx.shape} gave logits {out.shape} {out.dtype}, expected "
                                 f"{(B, T, 11)} float32")
    out = call("GPT.forward", model, Tensor(np.zeros((1, 4), np.int64)))
    if out.shape != (1, 4, 11):
        raise AssertionError(f"GPT.forward: an integer Tensor of ids (1, 4) gave {out.shape}")
    try:
        model(np.zeros((1, 9), np.int64))
    except ValueError:
        pass
    except NotImplementedError:
        raise
    except Exception as e:
        raise AssertionError(f"GPT.forward: 9 tokens with block_size 8 raised {type(e).__name__}: {e}, "
                             "expected a ValueError") from e
    else:
        raise AssertionError("GPT.forward: 9 tokens with block_size 8 must raise a ValueError")


@pytest.mark.task("GPT.forward")
def test_gpt_forward_matches_its_parts():
    """logits == lm_head(ln_f(blocks(tok_emb(idx) + pos_emb(T)))), with the model's own parts."""
    model = tiny(seed=1)
    tok, pos, blocks, ln_f, head = gpt_parts(model)
    randomise_norms(model, 70)
    idx = np.random.default_rng(2).integers(0, 11, (2, 7))
    out = logits_of(model, idx)
    with no_grad(), blame("GPT.forward", "the reference built from its own parts"):
        e = tok(idx)
        x = e + pos(7)
        expected = head(ln_f(blocks(x))).data
        variants = {"the position embeddings are not added (x = tok_emb(idx) + pos_emb(T))":
                    head(ln_f(blocks(e))).data,
                    "the final layer norm ln_f is not applied before lm_head": head(blocks(x)).data}
    if out.shape == expected.shape and not np.allclose(out, expected, atol=1e-4):
        for what, y in variants.items():
            if np.allclose(out, y, atol=1e-4):
                raise AssertionError(f"GPT.forward: {what}")
    assert_close(out, expected, "GPT.forward: lm_head(ln_f(blocks(tok_emb(idx) + pos_emb(T))))", [idx],
                 atol=1e-4)


@pytest.mark.task("GPT.forward")
def test_gpt_forward_uses_positions():
    """A repeated token: without position embeddings every position would get the same logits."""
    model = tiny(seed=2)
    out = logits_of(model, np.full((1, 6), 3))
    spread = np.abs(out[0] - out[0, :1]).max()
    if spread < 1e-4:
        raise AssertionError("GPT.forward: a sequence of one repeated token gives the same logits at every "
                             "position: the position embeddings are not added")


@pytest.mark.task("GPT.forward")
def test_gpt_forward_is_causal():
    """Changing the tokens after position k moves no logit at positions <= k."""
    model = tiny(seed=3)
    rng = np.random.default_rng(4)
    idx = rng.integers(0, 11, (2, 8))
    base = logits_of(model, idx)
    for k in range(7):
        other = idx.copy()
        other[:, k + 1:] = (idx[:, k + 1:] + 1 + rng.integers(0, 9, (2, 7 - k))) % 11  # every later token differs
        moved = np.abs(logits_of(model, other)[:, :k + 1] - base[:, :k + 1]).max()
        if moved > 1e-4:
            raise AssertionError(f"GPT.forward: changing the tokens after position {k} moved the logits at "
                                 f"positions <= {k} by {moved:.3g}: information leaks from the future "
                                 "(causal attention in every block; layer norm over the last axis only)")


@pytest.mark.task("GPT.forward")
def test_gpt_tied_weight_gets_the_gradient_of_both_uses():
    """d/dW of sum(logits * R) = (head use) R^T h + (embedding use) scatter of dx0 by token id."""
    model = tiny(seed=4, n_layer=1)
    tok, pos, blocks, ln_f, head = gpt_parts(model)
    idx = np.array([[1, 4, 4, 2, 7]])  # tokens 0, 3, 5, 6, 8, 9, 10 unused: head use only
    R = rand(1, 5, 11, seed=28)
    out = call("GPT.forward", model, idx)
    call("GPT.forward (backward pass)", out.backward, Tensor(R))
    got = None if tok.weight.grad is None else tok.weight.grad.data.copy()
    model.zero_grad()
    with blame("GPT.forward", "the reference gradient built from its own parts"):
        W = tok.weight.data
        with no_grad():
            x0 = (tok(idx) + pos(5)).data  # (1, 5, C) the stream entering the blocks
        x0t = Tensor(x0, requires_grad=True)
        h = ln_f(blocks(x0t))  # (1, 5, C) the final hidden states
        head_part = R.reshape(-1, 11).T @ h.data.reshape(-1, 16)  # (V, C): logits = h W^T
        h.backward(Tensor((R.reshape(-1, 11) @ W).reshape(1, 5, 16)))  # dL/dh = R W
        emb_part = np.zeros_like(W)  # (V, C): dL/dx0 added into the rows of the tokens used
        np.add.at(emb_part, idx.ravel(), x0t.grad.data.reshape(-1, 16))
        model.zero_grad()
    if got is None:
        raise AssertionError("GPT.forward: tok_emb.weight received no gradient")
    expected = head_part + emb_part
    unused = [0, 3, 5, 6, 8, 9, 10]
    if np.allclose(got, emb_part, atol=1e-5) and not np.allclose(got, expected, atol=1e-5):
        raise AssertionError("GPT.__init__: tok_emb.weight's gradient holds only the embedding's share: the "
                             "LM head does not use the same Parameter (self.lm_head.weight = self.tok_emb.weight)")
    assert_close(got[unused], expected[unused], "GPT.forward: the tied weight's gradient for tokens not in the "
                 "input (the LM head's use alone)", [idx], atol=1e-5)
    assert_close(got, expected, "GPT.forward: the tied weight's gradient = LM head's share + embedding's share",
                 [idx], atol=1e-5)


@pytest.mark.task("GPT.forward")
def test_gpt_memorises_a_sequence_with_adam():
    """End to end: every backward rule of the stack and Adam; the loss falls from ln V to ~0."""
    from tinytorch.losses import CrossEntropyLoss
    from tinytorch.optimizers import Adam

    model = tiny(vocab=10, block=16, n_layer=2, n_head=2, n_embd=32, seed=5)
    seq = np.random.default_rng(6).integers(0, 10, 17)
    x, y = seq[None, :-1], seq[1:]
    opt = Adam(model.parameters(), lr=1e-2)
    loss_fn = CrossEntropyLoss()
    losses = []
    for _ in range(40):
        opt.zero_grad()
        logits = call("GPT.forward", model, x)
        loss = loss_fn(logits.reshape(-1, 10), y)
        call("GPT.forward (backward pass)", loss.backward)
        opt.step()
        losses.append(loss.item())
    if abs(losses[0] - math.log(10)) > 0.5:
        raise AssertionError(f"GPT.__init__: a fresh model's loss is {losses[0]:.3f}, expected about ln(10) = "
                             "2.303 (GPT-2's small initialisation: keep the given self._init_weights() call)")
    if not losses[-1] < 0.05:
        raise AssertionError(f"GPT.forward: 40 Adam steps on one 16-token sequence took the loss from "
                             f"{losses[0]:.3f} to {losses[-1]:.3f} (expected < 0.05): some gradient of the stack "
                             "is wrong or missing")


# ---------------------------------------------------------------------------------------------
# GPT.generate
# ---------------------------------------------------------------------------------------------
def generate(model, idx, n, **kwargs) -> np.ndarray:
    before = np.array(idx)
    out = call("GPT.generate", model.generate, idx, n, **kwargs)
    if not isinstance(out, np.ndarray):
        raise AssertionError(f"GPT.generate: returned {type(out).__name__}, expected a NumPy array")
    if not np.array_equal(idx, before):
        raise AssertionError("GPT.generate: changed the prompt array in place")
    B, T = np.shape(idx)
    if out.shape != (B, T + n) or out.dtype.kind not in "iu":
        raise AssertionError(f"GPT.generate: prompt {np.shape(idx)} + {n} tokens gave {out.shape} {out.dtype}, "
                             f"expected {(B, T + n)} integers")
    if not np.array_equal(out[:, :T], idx):
        raise AssertionError("GPT.generate: the output must start with the prompt")
    return out


def greedy_reference(model, idx, n) -> np.ndarray:
    """The greedy loop written out: crop to block_size, argmax of the last position."""
    bs = model.config.block_size
    with no_grad():
        for _ in range(n):
            nxt = logits_of(model, idx[:, -bs:])[:, -1].argmax(-1)
            idx = np.concatenate([idx, nxt[:, None]], axis=1)
    return idx


@pytest.mark.task("GPT.generate")
def test_generate_greedy_is_argmax_and_deterministic():
    model = tiny(seed=6)
    prompt = np.array([[1, 2, 3], [4, 4, 0]])
    a = generate(model, prompt, 4, temperature=0)
    b = generate(model, prompt, 4, temperature=0, generator=np.random.default_rng(99))
    if not np.array_equal(a, b):
        raise AssertionError(f"GPT.generate: temperature=0 must be greedy and deterministic, two calls gave "
                             f"{a.tolist()} and {b.tolist()}")
    expected = greedy_reference(model, prompt, 4)
    if not np.array_equal(a, expected):
        raise AssertionError(f"GPT.generate: temperature=0 gave {a.tolist()}, the argmax of the last position's "
                             f"logits at every step gives {expected.tolist()}")


@pytest.mark.task("GPT.generate")
def test_generate_crops_the_context_to_block_size():
    """A prompt longer than block_size works, and every step runs the model on exactly the last
    block_size tokens of the sequence so far (the model's forward is watched)."""
    model = tiny(seed=7)  # block_size 8
    prompt = np.random.default_rng(8).integers(0, 11, (2, 11))  # longer than block_size
    seen = []
    forward = model.forward

    def watched(idx):
        seen.append(np.array(idx.data if isinstance(idx, Tensor) else idx))
        return forward(idx)

    model.forward = watched  # Module.__call__ -> self.forward: this instance's
    try:
        out = call("GPT.generate", model.generate, prompt, 6, temperature=0)
    except AssertionError as e:
        if "longer than block_size" in str(e) or "max_len" in str(e):
            raise AssertionError("GPT.generate: a prompt of 11 tokens with block_size 8 reached the model "
                                 "uncropped: run the model on idx[:, -block_size:]") from e
        raise
    finally:
        del model.forward
    if not isinstance(out, np.ndarray) or out.shape != (2, 17):
        raise AssertionError(f"GPT.generate: prompt (2, 11) + 6 tokens gave {getattr(out, 'shape', out)}")
    contexts = [out[:, :11 + i][:, -8:] for i in range(6)]
    if len(seen) != 6 or any(a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(seen, contexts)):
        shapes = [a.shape for a in seen]
        raise AssertionError(f"GPT.generate: for 6 new tokens the model must run 6 times on the last block_size = 8 "
                             f"tokens of the sequence so far (shape (2, 8) each); it ran on shapes {shapes}"
                             + ("" if len(seen) != 6 or shapes != [(2, 8)] * 6 else " with the wrong tokens"))
    expected = greedy_reference(model, prompt, 6)
    if not np.array_equal(out, expected):
        raise AssertionError(f"GPT.generate: temperature=0 gave {out[:, 11:].tolist()} after the prompt, the argmax "
                             f"of the last position's logits gives {expected[:, 11:].tolist()}")


@pytest.mark.task("GPT.generate")
def test_generate_top_k_1_is_greedy():
    model = tiny(seed=9)
    prompt = np.array([[5, 1], [2, 9]])
    out = generate(model, prompt, 5, top_k=1, generator=np.random.default_rng(1))
    expected = greedy_reference(model, prompt, 5)
    if not np.array_equal(out, expected):
        raise AssertionError(f"GPT.generate: top_k=1 keeps only the largest logit, so it is greedy; got "
                             f"{out.tolist()}, expected {expected.tolist()}")


def sharpened(seed: int = 11) -> GPT:
    """A tiny model whose next-token distribution after SHARP_PROMPT is far from uniform (a fresh
    model's is nearly uniform): softmax(logits) ~ [0.36, 0.30, 0.19, 0.08, 0.04, 0.03], sorted."""
    model = tiny(vocab=6, block=4, n_layer=1, n_embd=16, seed=seed)
    with blame("GPT.__init__", "ln_f.weight"):
        model.ln_f.weight.data[...] = 10.0
    return model


SHARP_PROMPT = [1, 3, 2]


def sample_next(model, n, **kwargs):
    """n samples of the token after SHARP_PROMPT, and the model's logits there (float64)."""
    prompt = np.tile(np.array([SHARP_PROMPT]), (n, 1))
    z = logits_of(model, prompt[:1])[0, -1].astype(np.float64)
    out = generate(model, prompt, 1, **kwargs)
    return out[:, -1], z


@pytest.mark.task("GPT.generate")
def test_generate_top_k_restricts_the_support():
    model = sharpened()
    tokens, z = sample_next(model, 400, top_k=3, generator=np.random.default_rng(2))
    top3 = set(np.argsort(z)[-3:].tolist())
    seen = set(tokens.tolist())
    if not seen <= top3:
        raise AssertionError(f"GPT.generate: top_k=3 sampled tokens {sorted(seen - top3)}, which are not among "
                             f"the 3 largest logits {sorted(top3)}")
    if len(seen) < 3:
        raise AssertionError(f"GPT.generate: top_k=3 with temperature 1 gave only the tokens {sorted(seen)} in "
                             f"400 samples; it must sample from all 3 largest logits {sorted(top3)}")


@pytest.mark.task("GPT.generate")
@pytest.mark.parametrize("temperature, top_k", [(0.5, None), (1.0, None), (2.0, None), (1.0, 3), (2.0, 2)],
                         ids=["t0.5", "t1", "t2", "t1-top3", "t2-top2"])
def test_generate_samples_softmax_of_logits_over_temperature(temperature, top_k):
    """The frequencies of 4,000 samples vs softmax(logits / temperature), over the top k only."""
    n = 4000
    tokens, z = sample_next(sharpened(), n, temperature=temperature, top_k=top_k,
                            generator=np.random.default_rng(3))
    z = z / temperature
    if top_k is not None:
        z[np.argsort(z)[:-top_k]] = -np.inf
    p = np.exp(z - z.max())
    p /= p.sum()
    freq = np.bincount(tokens, minlength=6)[:6] / n
    tv = 0.5 * np.abs(freq - p).sum()
    if tv > 0.04:
        what = f"temperature {temperature}" + ("" if top_k is None else f", top_k={top_k}")
        raise AssertionError(f"GPT.generate: at {what} the sampled frequencies {np.round(freq, 3).tolist()} are "
                             f"not softmax(logits / temperature){'' if top_k is None else ' over the top k'} = "
                             f"{np.round(p, 3).tolist()} (total variation {tv:.3f})")


@pytest.mark.task("GPT.generate")
def test_generate_uses_its_generator():
    model = sharpened()
    prompt = np.tile(np.array([[1]]), (50, 1))  # 1 + 3 tokens: within block_size 4
    a = generate(model, prompt, 3, generator=np.random.default_rng(5))
    b = generate(model, prompt, 3, generator=np.random.default_rng(5))
    c = generate(model, prompt, 3, generator=np.random.default_rng(6))
    if not np.array_equal(a, b):
        raise AssertionError("GPT.generate: two calls with equally seeded generators gave different tokens: "
                             "draw the random numbers from `generator`")
    if np.array_equal(a, c):
        raise AssertionError("GPT.generate: different generators gave identical samples (50 rows x 3 tokens): "
                             "draw the random numbers from `generator`")
    tt.manual_seed(7)
    d = generate(model, prompt, 3)
    tt.manual_seed(7)
    e = generate(model, prompt, 3)
    if not np.array_equal(d, e):
        raise AssertionError("GPT.generate: generator=None must use tinytorch's default_generator(), so that "
                             "manual_seed makes generation reproducible")


@pytest.mark.task("GPT.generate")
def test_generate_top_k_1_takes_the_first_of_tied_logits():
    """top_k=1 is greedy like temperature=0: the argmax, which is the FIRST of tied largest logits
    (here every logit is 0: the final norm's weight and bias are zeroed), every time."""
    model = tiny(seed=12)
    with blame("GPT.__init__", "ln_f.weight and ln_f.bias"):
        model.ln_f.weight.data[...] = 0.0
        model.ln_f.bias.data[...] = 0.0
    prompt = np.array([[3, 1], [7, 2]])
    out = generate(model, prompt, 4, top_k=1, generator=np.random.default_rng(13))
    if np.any(out[:, 2:] != 0):
        raise AssertionError(f"GPT.generate: with every logit equal, top_k=1 (greedy: argmax, the first of the "
                             f"ties) must give token 0 every time; it gave {out[:, 2:].tolist()}")


@pytest.mark.task("GPT.generate")
def test_generate_rows_are_sampled_apart_at_a_low_temperature():
    """At temperature 1e-4 sampling is greedy for every row of a batch of DIFFERENT prompts (the
    logits / temperature are in the thousands): the softmax subtracts each row's own max
    (axis=-1) - subtracting, so that exp cannot overflow - and the CDF is cumulated along each row."""
    model = sharpened()
    prompt = np.array([[1, 3, 2], [0, 0, 0], [5, 4, 1], [2, 2, 5], [4, 0, 3], [3, 5, 5]])
    expected = greedy_reference(model, prompt, 1)
    if len(set(expected[:, -1].tolist())) < 2 or not np.any(expected[:, -1] != 0):
        raise AssertionError("check setup: the prompts' greedy tokens must differ (and not all be 0)")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        out = generate(model, prompt, 1, temperature=1e-4, generator=np.random.default_rng(14))
    if not np.array_equal(out, expected):
        raise AssertionError(f"GPT.generate: at temperature 1e-4 every row must take its own argmax "
                             f"{expected[:, -1].tolist()}; got {out[:, -1].tolist()} (softmax per row: "
                             "exp(logits - logits.max(axis=-1, keepdims=True)), cumsum along axis -1)")


@pytest.mark.task("GPT.generate")
def test_generate_top_k_for_a_single_prompt():
    """One prompt at a time (B = 1, smaller than top_k): top_k compares with the vocabulary size
    (logits.shape[-1]), and the sampled id may be any of the top k, not only 0."""
    model = sharpened()
    g = np.random.default_rng(15)
    tokens = np.array([generate(model, np.array([SHARP_PROMPT]), 1, top_k=3, generator=g)[0, -1]
                       for _ in range(300)])
    z = logits_of(model, np.array([SHARP_PROMPT]))[0, -1]
    top3 = set(np.argsort(z)[-3:].tolist())
    seen = set(tokens.tolist())
    if not seen <= top3 or len(seen) < 3:
        raise AssertionError(f"GPT.generate: 300 calls with one prompt and top_k=3 sampled the tokens "
                             f"{sorted(seen)}; expected all of, and only, the 3 largest logits {sorted(top3)}")


class _TopDraw(np.random.Generator):
    """A Generator whose random() draws are all the largest float below 1."""

    def random(self, size=None, dtype=np.float64, out=None):
        return np.full(size if size is not None else (), np.nextafter(1.0, 0.0))


@pytest.mark.task("GPT.generate")
def test_generate_never_samples_an_id_past_the_vocabulary():
    """A draw u just below 1 picks the last token. Rounding can leave the CDF's last entry below u
    (here it is 1 - 3 * 2**-53): the index must be clamped to vocab_size - 1."""
    model = sharpened()
    out = generate(model, np.array([SHARP_PROMPT]), 1, temperature=0.5,
                   generator=_TopDraw(np.random.PCG64(0)))
    if not 0 <= out[0, -1] < 6:
        raise AssertionError(f"GPT.generate: a draw just below 1 gave the token id {out[0, -1]}, outside the "
                             "vocabulary of 6: clamp the inverse-CDF index to vocab_size - 1")
