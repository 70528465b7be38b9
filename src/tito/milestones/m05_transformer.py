"""Milestone 05 - The Transformer Era (Vaswani et al., 2017), on YOUR modules 01-08 and 10-13.

"Attention is all you need": every position looks at every earlier position and takes what it
needs, weighted by a softmax of dot products - no recurrence. Each part builds the learner's GPT
(13: LayerNorm, MLP, TransformerBlock, GPT; 12: attention; 11: embeddings; 10: the tokenizer) and
trains it with the learner's AdamW, WarmupCosine and clip_grad_norm_ (07) on the learner's
cross-entropy (04), through the learner's autograd (06):

    idx (B, T) -> tok_emb + pos_emb (B, T, C) -> n_layer x [x + attn(ln1(x)); x + mlp(ln2(x))]
               -> ln_f -> lm_head (B, T, V) -> cross-entropy with the next token

Part 1 - attention learns to route. Random digit strings of length 8: "copy" (output = input) and
"reverse" (output = input reversed), each after a separator token. Judged on 1,000 held-out strings
never seen in training, generated greedily with the learner's `GPT.generate`: 100% exact strings
on both tasks. The attention maps are plotted: copy shows a diagonal, reverse an anti-diagonal.

Part 2 - Tiny Shakespeare, one token per character, first 90% for training, last 10% for
validation (nanoGPT's split). Victory: validation loss <= 1.60 nats/char, measured here from the
model's logits on every validation character, within 20 minutes on 2 cores.

Part 3 - it writes Python. Short functions (<= 400 characters, docstrings dropped, re-printed by
`ast.unparse`) from the running Python's standard library; 100 samples from the prompt "def ";
victory: at least half of them parse with `ast.parse` and are not verbatim copies of the corpus.

Independent probes, measured outside the learner's loss and training loop, that a broken
transformer cannot pass (each part reports them; see `probes`):

    causal_leak            changing tokens after position k moves no logit at positions <= k
    position_spread        a repeated token gets different logits at different positions
    attn_entropy_ratio     attention is not uniform: mean row entropy / uniform row entropy
    attention_formula_err  the learner's attention against softmax(q k^T / sqrt(d) + mask) v
    grads_match            the whole GPT's gradients against finite differences (float64)

plus the standard training witnesses (the loss falls, every parameter - embeddings and attention
included - gets a finite non-zero gradient and changes).
"""

from __future__ import annotations

import ast
import math
import re
import sysconfig
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tito.milestone_work import save_weights
from tito.milestones.common import RunContext, UsageError, _pyplot, merge_witness_metrics

# Modules to suspect when the loss becomes NaN (by name; ids live in the registry).
SUSPECTS = ("losses", "autograd", "optimizers", "attention", "transformers")


@dataclass(frozen=True)
class Recipe:
    """One model and its training schedule (AdamW, linear warm-up, cosine decay to lr / 10)."""

    n_layer: int
    n_head: int
    n_embd: int
    block_size: int  # the context, in tokens
    batch: int
    steps: int
    lr: float
    warmup: int = 100
    weight_decay: float = 0.1  # on matrices only (biases, norms: none)
    eval_every: int = 250  # steps between validation estimates (for the curve)


# ---------------------------------------------------------------------------------------------
# Training: the learner's GPT, optimizer, schedule, clipping and loss
# ---------------------------------------------------------------------------------------------
def make_gpt(vocab_size: int, r: Recipe):
    from tinytorch.transformers import GPT, GPTConfig

    return GPT(GPTConfig(vocab_size=vocab_size, block_size=r.block_size, n_layer=r.n_layer,
                         n_head=r.n_head, n_embd=r.n_embd))


def build_gpt(**config):
    """The GPT of a saved run, rebuilt from its GPTConfig fields (`tito milestone demo 05`)."""
    from tinytorch.transformers import GPT, GPTConfig

    return GPT(GPTConfig(**config))


def train(ctx: RunContext, model, next_batch, r: Recipe, stage: str, first: int = 0,
          evaluate=None) -> tuple[object, dict]:
    """Train `model` for r.steps on batches from `next_batch()` -> (x, y), both (B, T) ints.

    The loss is the learner's CrossEntropyLoss over positions first.. of each row (part 1 scores
    only the answer). `evaluate()` -> validation loss, called every r.eval_every steps for the
    curve. Returns (witness, history).
    """
    from tinytorch.losses import CrossEntropyLoss
    from tinytorch.optimizers import AdamW, WarmupCosine, clip_grad_norm_

    params = model.parameters()
    matrices = [p for p in params if p.ndim >= 2]
    others = [p for p in params if p.ndim < 2]
    opt = AdamW([{"params": matrices, "weight_decay": r.weight_decay},
                 {"params": others, "weight_decay": 0.0}], lr=r.lr, betas=(0.9, 0.99))
    sched = WarmupCosine(opt, r.warmup, r.steps, eta_min=r.lr / 10)
    loss_fn = CrossEntropyLoss()
    w = ctx.witness(params, suspects=SUSPECTS)
    history: dict = {"step": [], "train": [], "val_step": [], "val": []}
    recent: list[float] = []
    for step in range(1, r.steps + 1):
        x, y = next_batch()  # (B, T), (B, T)
        logits = model(x)  # (B, T, V)
        if first:
            logits, y = logits[:, first:, :], y[:, first:]  # the scored positions only
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))  # (B T', V)
        recent.append(w.loss(loss, where=f"{stage} step {step}"))
        opt.zero_grad()
        loss.backward()
        if step == 1 or step % 10 == 0:
            w.grads()
        clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % 25 == 0 or step == r.steps:
            history["step"].append(step)
            history["train"].append(float(np.mean(recent)))
            recent = []
            ctx.progress(step=step, steps=r.steps, loss=history["train"][-1], stage=stage)
        if evaluate is not None and (step % r.eval_every == 0 or step == r.steps):
            history["val_step"].append(step)
            history["val"].append(evaluate())
    return w, history


def batches_from(data: np.ndarray, r: Recipe, rng: np.random.Generator):
    """Random windows of r.block_size + 1 tokens: x = window[:-1], y = window[1:]."""
    offsets = np.arange(r.block_size + 1)

    def next_batch():
        starts = rng.integers(0, len(data) - r.block_size - 1, r.batch)
        win = data[starts[:, None] + offsets]  # (B, T + 1)
        return win[:, :-1], win[:, 1:]

    return next_batch


# ---------------------------------------------------------------------------------------------
# Measurements made here, from the model's logits (not the learner's loss)
# ---------------------------------------------------------------------------------------------
def logits_np(model, x: np.ndarray) -> np.ndarray:
    from tinytorch.tensor import no_grad

    with no_grad():
        return np.asarray(model(x).data, dtype=np.float64)


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def lm_loss(model, data: np.ndarray, block: int, windows: int | None = None, batch: int = 64) -> float:
    """Mean cross-entropy (nats/token) of next-token prediction over `data`: every token of
    consecutive windows (windows=None), or of `windows` evenly spaced ones (quick estimates)."""
    n = (len(data) - 1) // block
    starts = np.arange(n) * block
    if windows is not None and windows < n:
        starts = np.linspace(0, len(data) - block - 1, windows).astype(np.int64)
    total, count = 0.0, 0
    for i in range(0, len(starts), batch):
        s = starts[i:i + batch, None]
        x, y = data[s + np.arange(block)], data[s + np.arange(1, block + 1)]  # (b, T)
        logp = log_softmax(logits_np(model, x))  # (b, T, V)
        total -= float(np.take_along_axis(logp, y[..., None], axis=-1).sum())
        count += y.size
    return total / count


def bigram_loss(train: np.ndarray, val: np.ndarray, vocab: int) -> float:
    """Cross-entropy on `val` of character bigram counts from `train` (add-one smoothing)."""
    counts = np.ones((vocab, vocab))
    np.add.at(counts, (train[:-1], train[1:]), 1)
    p = counts / counts.sum(axis=1, keepdims=True)
    return float(-np.log(p[val[:-1], val[1:]]).mean())


def causal_leak(model, x: np.ndarray, rng: np.random.Generator) -> float:
    """The largest change of any logit at positions <= k when the tokens after k change."""
    V, T = model.config.vocab_size, x.shape[1]
    base, worst = logits_np(model, x), 0.0
    for k in (0, T // 3, T // 2, T - 2):
        x2 = x.copy()
        x2[:, k + 1:] = (x2[:, k + 1:] + rng.integers(1, V, x2[:, k + 1:].shape)) % V  # all differ
        worst = max(worst, float(np.abs(logits_np(model, x2)[:, :k + 1] - base[:, :k + 1]).max()))
    return worst


def position_spread(model, token: int) -> float:
    """How much the logits of one token repeated over the whole context vary with position:
    without position information every position of `t t t t ...` computes the same thing."""
    z = logits_np(model, np.full((1, model.config.block_size), token, dtype=np.int64))[0]  # (T, V)
    return float(np.abs(z - z[:1]).max())


def attention_maps(model, x: np.ndarray) -> list[np.ndarray]:
    """The attention weights of every MultiHeadAttention layer for input x: [(B, nh, T, T), ...]."""
    from tinytorch.attention import MultiHeadAttention

    logits_np(model, x)
    return [np.asarray(m.last_attention, dtype=np.float64) for _, m in model.named_modules()
            if isinstance(m, MultiHeadAttention)]


def attention_entropy_ratio(maps: list[np.ndarray]) -> float:
    """Mean entropy of the causal attention rows 1.. over the uniform one, ln(i + 1): about 1 for
    attention that does not look at what it attends to, well below 1 for attention that does."""
    T = maps[0].shape[-1]
    uniform = np.log(np.arange(2, T + 1)).mean()
    ent = [-(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)).sum(-1)[..., 1:].mean()
           for p in maps]
    return float(np.mean(ent) / uniform)


def attention_formula_err(rng: np.random.Generator) -> float:
    """The learner's scaled_dot_product_attention against the formula, computed here in float64:
    causal, padded (some keys masked) and plain, odd sizes, d = 5 (so 1/sqrt(d) matters)."""
    from tinytorch.attention import scaled_dot_product_attention
    from tinytorch.tensor import Tensor

    q, k, v = (rng.standard_normal((2, 3, 7, 5)) for _ in range(3))
    pad = np.ones((2, 1, 1, 7), dtype=bool)
    pad[0, ..., 5:] = False
    worst = 0.0
    for mask, causal in ((None, True), (pad, False), (None, False)):
        s = q @ k.swapaxes(-1, -2) / math.sqrt(5)  # (2, 3, 7, 7)
        allowed = np.ones_like(s, dtype=bool)
        if causal:
            allowed &= np.tril(np.ones((7, 7), dtype=bool))
        if mask is not None:
            allowed &= mask
        s = np.where(allowed, s, -np.inf)
        p = np.exp(s - s.max(-1, keepdims=True))
        ref = (p / p.sum(-1, keepdims=True)) @ v
        out = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), mask=mask, is_causal=causal)
        worst = max(worst, float(np.abs(np.asarray(out.data, dtype=np.float64) - ref).max()))
    return worst


def gpt_gradcheck(vocab: int, rng: np.random.Generator, tol: float = 1e-3) -> tuple[bool, str]:
    """A small GPT of the learner's classes, in float64: each parameter's backward gradient g
    against the central difference of the loss along g / |g| (it must equal |g|). The batch
    repeats tokens, so an embedding backward that overwrites instead of adding is caught."""
    from tinytorch.losses import CrossEntropyLoss
    from tinytorch.tensor import no_grad

    model = make_gpt(vocab, Recipe(2, 2, 16, 8, 0, 0, 0.0))
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    x = rng.integers(0, min(vocab, 5), (3, 8))  # few distinct ids: many repeats
    y = rng.integers(0, vocab, (3, 8))
    loss_fn = CrossEntropyLoss()

    def loss_of():
        return loss_fn(model(x).reshape(-1, vocab), y.reshape(-1))

    model.zero_grad()
    loss_of().backward()
    worst, where = 0.0, ""
    for name, p in model.named_parameters():
        if p.grad is None:
            return False, f"{name} received no gradient"
        g = np.asarray(p.grad.data, dtype=np.float64)
        norm = float(np.sqrt((g * g).sum()))
        if not np.isfinite(norm) or norm == 0:
            return False, f"{name}: gradient norm {norm}"
        base, eps, ups = p.data.copy(), 1e-5, []
        for sign in (1, -1):
            p.data = base + sign * eps * g / norm
            with no_grad():
                ups.append(float(loss_of().item()))
        p.data = base
        err = abs((ups[0] - ups[1]) / (2 * eps) - norm) / norm
        if err > worst:
            worst, where = err, f"{name}: backward |g| = {norm:.5g}, finite difference " \
                                f"{(ups[0] - ups[1]) / (2 * eps):.5g}"
    return worst <= tol, where


def probes(model, x: np.ndarray, rng: np.random.Generator, token: int) -> dict:
    """The independent probes of a trained GPT (see the module docstring); x: (B, T) real text."""
    ok, where = gpt_gradcheck(model.config.vocab_size, rng)
    return {"causal_leak": causal_leak(model, x[:2], rng),
            "position_spread": position_spread(model, token),
            "attn_entropy_ratio": attention_entropy_ratio(attention_maps(model, x)),
            "attention_formula_err": attention_formula_err(rng),
            "grads_match": ok, "_gradcheck": where}


def report_probes(ctx: RunContext, m: dict) -> dict:
    """Probe values as metrics; the gradient check's worst parameter as a note when it fails."""
    where = m.pop("_gradcheck")
    if not m["grads_match"]:
        ctx.note(f"gradient check of a small GPT failed: {where}")
    ctx.log(f"probes: causal leak {m['causal_leak']:.1e}, position spread "
            f"{m['position_spread']:.3f}, attention entropy {m['attn_entropy_ratio']:.2f} of "
            f"uniform, attention vs formula {m['attention_formula_err']:.1e}, gradients "
            f"{'match' if m['grads_match'] else 'DO NOT match'} finite differences")
    return m


# ---------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------
def plot_curves(path: Path, history: dict, title: str, lines: dict[str, float]) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.plot(history["step"], history["train"], label="training (batch mean)", alpha=0.7)
    if history["val"]:
        ax.plot(history["val_step"], history["val"], marker="o", label="validation")
    for label, y in lines.items():
        ax.axhline(y, ls="--", lw=1, color="gray")
        ax.text(history["step"][-1], y, f" {label}", va="bottom", ha="right", fontsize=8)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_attention(path: Path, maps: dict[str, list[np.ndarray]], labels: list[str]) -> Path:
    """One row per task, one panel per layer: the head-averaged attention of one sequence."""
    plt = _pyplot()
    rows, cols = len(maps), max(len(v) for v in maps.values())
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 3.3 * rows), squeeze=False)
    for r, (task, layers) in enumerate(maps.items()):
        for c, a in enumerate(layers):
            ax = axes[r][c]
            ax.imshow(a[0].mean(axis=0), cmap="viridis", vmin=0, vmax=1)
            ax.set_title(f"{task}: layer {c + 1}", fontsize=9)
            ax.set_xticks(range(len(labels)))
            ax.set_xticklabels(labels, fontsize=6)
            ax.set_yticks(range(len(labels)))
            ax.set_yticklabels(labels, fontsize=6)
            ax.set_xlabel("attends to (key)", fontsize=8)
            ax.set_ylabel("position (query)", fontsize=8)
    fig.suptitle("Attention weights (mean over heads) on a held-out string")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def done_in(metrics: dict, t0: float) -> dict:
    """The part's wall time, in minutes (a victory condition of parts 2 and 3)."""
    metrics["minutes"] = (time.monotonic() - t0) / 60
    return metrics


# ---------------------------------------------------------------------------------------------
# Part 1: copy and reverse digit strings
# ---------------------------------------------------------------------------------------------
DIGITS, SEP = 10, 10  # tokens 0-9 are digits, 10 separates the input from the answer
ROUTING = Recipe(n_layer=2, n_head=4, n_embd=64, block_size=16, batch=64, steps=1500, lr=3e-3,
                 warmup=100)
ROUTING_QUICK = Recipe(n_layer=2, n_head=4, n_embd=64, block_size=16, batch=64, steps=300, lr=3e-3,
                       warmup=50)
LENGTH = 8


def routing(ctx: RunContext) -> dict:
    """Part 1: the learner's GPT learns to copy and to reverse 8-digit strings."""
    from tinytorch.tensor import manual_seed

    t0 = time.monotonic()
    r = ROUTING_QUICK if ctx.quick else ROUTING
    rng = ctx.rng(1)
    held = rng.integers(0, DIGITS, (1000, LENGTH))  # the test strings: never trained on
    held_codes = set((held * 10 ** np.arange(LENGTH)).sum(axis=1).tolist())
    metrics: dict = {}
    maps, witnesses = {}, []
    for i, (task, answer) in enumerate((("copy", lambda d: d), ("reverse", lambda d: d[:, ::-1]))):
        manual_seed(ctx.seed + i)
        model = make_gpt(DIGITS + 1, r)

        def next_batch():
            d = rng.integers(0, DIGITS, (r.batch, LENGTH))
            fresh = ~np.isin((d * 10 ** np.arange(LENGTH)).sum(axis=1), list(held_codes))
            d = d[fresh]
            seq = np.concatenate([d, np.full((len(d), 1), SEP), answer(d)], axis=1)  # (B, 17)
            return seq[:, :-1], seq[:, 1:]

        w, history = train(ctx, model, next_batch, r, stage=task, first=LENGTH)
        witnesses.append(w.metrics())
        prompt = np.concatenate([held, np.full((len(held), 1), SEP)], axis=1)  # (1000, 9)
        out = model.generate(prompt, LENGTH, temperature=0)[:, LENGTH + 1:]  # (1000, 8), greedy
        exact = float(np.mean((out == answer(held)).all(axis=1)))
        metrics[f"{task}_exact"] = exact
        metrics[f"{task}_digit_acc"] = float(np.mean(out == answer(held)))
        ctx.log(f"{task}: {exact * 100:.1f}% of 1,000 held-out strings exactly right "
                f"(e.g. {''.join(map(str, held[0]))} -> {''.join(map(str, out[0]))})")
        seq = np.concatenate([held[:1], [[SEP]], answer(held[:1])], axis=1)[:, :-1]  # (1, 16)
        maps[task] = attention_maps(model, seq)
        if i == 0:
            metrics.update(report_probes(ctx, probes(model, seq, ctx.rng(2), token=3)))
    labels = [f"d{j + 1}" for j in range(LENGTH)] + ["|"] + [f"o{j + 1}" for j in range(LENGTH - 1)]
    plot_attention(ctx.path("attention_maps.png"), maps, labels)
    save_weights(ctx, model, "tito.milestones.m05_transformer:build_gpt", kind="routing",
                 config=dict(vocab_size=DIGITS + 1, block_size=r.block_size, n_layer=r.n_layer,
                             n_head=r.n_head, n_embd=r.n_embd), task="reverse", length=LENGTH)
    metrics.update(merge_witness_metrics(witnesses))  # holds only if it holds for both tasks
    return done_in(metrics, t0)


# ---------------------------------------------------------------------------------------------
# Part 2: Tiny Shakespeare, one token per character
# ---------------------------------------------------------------------------------------------
SHAKESPEARE = Recipe(n_layer=4, n_head=4, n_embd=128, block_size=64, batch=32, steps=3200, lr=3e-3,
                     warmup=100, eval_every=300)
SHAKESPEARE_QUICK = Recipe(n_layer=2, n_head=4, n_embd=64, block_size=32, batch=32, steps=250,
                           lr=3e-3, warmup=25, eval_every=125)
SAMPLE_CHARS = 500


def words_known(sample: str, text: str) -> float:
    """The fraction of the sample's words (letters and apostrophes) that occur in `text`."""
    words = re.findall(r"[A-Za-z']+", sample)
    known = set(re.findall(r"[A-Za-z']+", text))
    return float(np.mean([w in known for w in words])) if words else 0.0


def encode_prompt(tok, prompt: str, what: str) -> list[int]:
    unknown = sorted({ch for ch in prompt if ch not in tok.stoi})
    if unknown or not prompt:
        raise UsageError(f"--prompt {prompt!r}: " + (f"the characters {unknown} do not occur in "
                         f"{what}" if unknown else "the prompt is empty"),
                         f"use characters of {what} (letters, punctuation, newlines)")
    return tok.encode(prompt)


def shakespeare(ctx: RunContext) -> dict:
    """Part 2: a character-level GPT of the learner's modules on Tiny Shakespeare."""
    from tinytorch.tokenization import CharTokenizer

    t0 = time.monotonic()
    r = SHAKESPEARE_QUICK if ctx.quick else SHAKESPEARE
    text = ctx.data("tinyshakespeare")
    tok = CharTokenizer(text)  # the learner's tokenizer (module 10)
    prompt = encode_prompt(tok, ctx.options.get("prompt", "ROMEO:\n"), "Tiny Shakespeare")
    temperature = float(ctx.options.get("temperature", 0.8))
    data = np.asarray(tok.encode(text), dtype=np.int64)  # (1,115,394,)
    if tok.decode(data[:1000].tolist()) != text[:1000]:
        raise ValueError("CharTokenizer: decode(encode(text)) is not the text")
    split = int(0.9 * len(data))
    train_ids, val_ids = data[:split], data[split:]
    V = tok.vocab_size
    ctx.log(f"{len(text):,} characters, {V} distinct; training on {split:,}, validating on "
            f"{len(val_ids):,}")

    model = make_gpt(V, r)
    ctx.log(f"GPT: {r.n_layer} layers, {r.n_head} heads, width {r.n_embd}, context "
            f"{r.block_size}: {model.num_parameters():,} parameters; {r.steps} steps of batch "
            f"{r.batch}")
    w, history = train(ctx, model, batches_from(train_ids, r, ctx.rng(1)), r, stage="train",
                       evaluate=lambda: lm_loss(model, val_ids, r.block_size, windows=200))
    train_minutes = (time.monotonic() - t0) / 60
    ctx.progress(stage="measuring the validation loss")
    val = lm_loss(model, val_ids, r.block_size, windows=400 if ctx.quick else None)
    bigram = bigram_loss(train_ids, val_ids, V)
    metrics = {"val_loss": val, "bigram_val_loss": bigram, "below_bigram": bigram - val,
               "train_minutes": train_minutes, "parameters": model.num_parameters()}
    ctx.log(f"validation loss {val:.3f} nats/char (counted bigram: {bigram:.3f})")
    metrics.update(w.metrics())

    window = val_ids[:r.block_size * 4].reshape(4, r.block_size)
    metrics.update(report_probes(ctx, probes(model, window, ctx.rng(2), token=tok.stoi["e"])))

    ctx.progress(stage=f"writing {SAMPLE_CHARS} characters")
    out = model.generate(np.array([prompt]), SAMPLE_CHARS, temperature=temperature)
    sample = tok.decode(out[0].tolist())
    metrics["sample_words_known"] = words_known(sample[len(tok.decode(prompt)):], text[:len(train_ids)])
    ctx.path("sample.txt").write_text(sample, encoding="utf-8")
    ctx.log(f"--- sample (temperature {temperature}) ---\n{sample}\n---")
    ctx.log(f"{metrics['sample_words_known'] * 100:.0f}% of the sample's words occur in the "
            "training text")
    plot_curves(ctx.path("loss_curves.png"), history, "Tiny Shakespeare, character level",
                {"bigram": bigram, "target 1.60": 1.60} if not ctx.quick else {"bigram": bigram})
    save_weights(ctx, model, "tito.milestones.m05_transformer:build_gpt", kind="text",
                 config=dict(vocab_size=V, block_size=r.block_size, n_layer=r.n_layer,
                             n_head=r.n_head, n_embd=r.n_embd), chars=tok.decode(list(range(V))),
                 prompt=tok.decode(prompt), temperature=temperature, sample_chars=SAMPLE_CHARS,
                 data="Tiny Shakespeare")  # for `tito milestone demo 05`
    return done_in(metrics, t0)


# ---------------------------------------------------------------------------------------------
# Part 3: short Python functions from the standard library
# ---------------------------------------------------------------------------------------------
PYTHON = Recipe(n_layer=4, n_head=4, n_embd=128, block_size=128, batch=16, steps=2600, lr=3e-3,
                warmup=100, eval_every=650)
PYTHON_QUICK = Recipe(n_layer=2, n_head=4, n_embd=64, block_size=64, batch=16, steps=200, lr=3e-3,
                      warmup=20, eval_every=100)
MAX_CHARS = 400  # the longest function kept (after ast.unparse)
SKIP = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}
START, END = "def ", "\n\n"  # every function starts with "def " and is followed by a blank line


def _strip(tree: ast.AST) -> None:
    """Drop decorators and docstrings (a docstring-only body becomes `pass`), in place."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            if not isinstance(node, ast.Module):
                node.decorator_list = []
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]


def stdlib_functions(root: Path | None = None, limit: int = MAX_CHARS) -> list[str]:
    """Every distinct `def` of the standard library (test folders skipped), re-printed by
    ast.unparse without decorators or docstrings, at most `limit` characters, ASCII only, sorted.
    No download: the corpus is the running Python's own source (about 2 s on 2 cores)."""
    root = Path(sysconfig.get_paths()["stdlib"]) if root is None else root
    found: set[str] = set()
    for path in sorted(root.rglob("*.py")):
        if SKIP & set(path.relative_to(root).parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
            continue
        _strip(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                src = ast.unparse(node)
                if len(src) <= limit and src.isascii() and END not in src:
                    found.add(src)
    return sorted(found)


def sample_functions(model, tok, n: int, max_chars: int, temperature: float,
                     chunk: int = 32) -> list[str]:
    """n samples from the prompt "def ", each up to the first blank line or max_chars characters,
    with the learner's GPT.generate (`chunk` tokens at a time; finished rows are dropped)."""
    rows = np.array([tok.encode(START)] * n)  # (n, 4)
    todo, done = list(range(n)), [""] * n
    while todo:
        rows = model.generate(rows, min(chunk, max_chars + len(START) - rows.shape[1]),
                              temperature=temperature)
        keep = []
        for j, i in enumerate(todo):
            text = tok.decode(rows[j].tolist())
            if END in text or rows.shape[1] >= max_chars + len(START):
                done[i] = text.split(END)[0]
            else:
                keep.append(j)
        rows, todo = rows[keep], [todo[j] for j in keep]
    return done


def verdicts(samples: list[str], corpus: set[str]) -> list[int]:
    """Per sample: -1 a verbatim corpus function, 0 does not parse, 1 parses, 2 also compiles."""
    out = []
    with warnings.catch_warnings():  # compile() warns about code it accepts ("'list' object is
        warnings.simplefilter("ignore")  # not callable"): only the verdict matters here
        for s in samples:
            if s in corpus:
                out.append(-1)
                continue
            try:
                ast.parse(s)
            except (SyntaxError, ValueError):
                out.append(0)
                continue
            try:
                compile(s, "<sample>", "exec")
                out.append(2)
            except (SyntaxError, ValueError):
                out.append(1)
    return out


def judge(samples: list[str], corpus: set[str]) -> dict:
    """parse_rate: samples that ast.parse accepts and are not verbatim corpus functions;
    compile_rate: of all samples, those that also compile; copy_rate: verbatim copies."""
    v = np.array(verdicts(samples, corpus) or [0])
    n = max(len(samples), 1)
    return {"parse_rate": float((v >= 1).sum() / n), "compile_rate": float((v == 2).sum() / n),
            "copy_rate": float((v < 0).sum() / n)}


def python_code(ctx: RunContext) -> dict:
    """Part 3: the learner's GPT learns to write Python from the standard library's functions."""
    from tinytorch.tokenization import CharTokenizer

    t0 = time.monotonic()
    r = PYTHON_QUICK if ctx.quick else PYTHON
    n_samples, max_chars, temperature = (20, 200, 0.6) if ctx.quick else (100, 500, 0.6)
    ctx.progress(stage="reading the standard library")
    functions = stdlib_functions()
    order = ctx.rng(3).permutation(len(functions))
    cut = int(0.9 * len(functions))
    train_fns = [functions[i] for i in order[:cut]]
    val_fns = [functions[i] for i in order[cut:]]
    train_text, val_text = END.join(train_fns) + END, END.join(val_fns) + END
    tok = CharTokenizer(train_text + val_text)  # the learner's tokenizer (module 10)
    train_ids = np.asarray(tok.encode(train_text), dtype=np.int64)
    val_ids = np.asarray(tok.encode(val_text), dtype=np.int64)
    ctx.log(f"{len(functions):,} distinct functions of <= {MAX_CHARS} characters from "
            f"{sysconfig.get_paths()['stdlib']} ({len(train_text) + len(val_text):,} characters, "
            f"{tok.vocab_size} distinct); {len(train_fns):,} for training, {len(val_fns):,} held out")

    model = make_gpt(tok.vocab_size, r)
    ctx.log(f"GPT: {r.n_layer} layers, {r.n_head} heads, width {r.n_embd}, context "
            f"{r.block_size}: {model.num_parameters():,} parameters; {r.steps} steps of batch "
            f"{r.batch}")
    w, history = train(ctx, model, batches_from(train_ids, r, ctx.rng(1)), r, stage="train",
                       evaluate=lambda: lm_loss(model, val_ids, r.block_size, windows=100))
    metrics = {"val_loss": lm_loss(model, val_ids, r.block_size, windows=400),
               "train_minutes": (time.monotonic() - t0) / 60, "functions": len(functions)}
    metrics.update(w.metrics())
    window = val_ids[:r.block_size * 4].reshape(4, r.block_size)
    metrics.update(report_probes(ctx, probes(model, window, ctx.rng(2), token=tok.stoi[" "])))

    ctx.progress(stage=f"writing {n_samples} functions")
    samples = sample_functions(model, tok, n_samples, max_chars, temperature)
    corpus = set(functions)
    metrics.update(judge(samples, corpus))
    (ctx.path("samples.py")).write_text(
        "".join(f"# --- sample {i + 1} ---\n{s}\n\n" for i, s in enumerate(samples)), encoding="utf-8")
    ctx.log(f"of {n_samples} sampled functions (temperature {temperature}): "
            f"{metrics['parse_rate'] * 100:.0f}% parse and are new, {metrics['compile_rate'] * 100:.0f}% "
            f"also compile, {metrics['copy_rate'] * 100:.0f}% are verbatim copies of the corpus")
    shown = [s for s, v in zip(samples, verdicts(samples, corpus)) if v >= 1][:3]
    for s in shown:
        ctx.emit(code=s)
    plot_curves(ctx.path("loss_curves.png"), history, "Python functions, character level", {})
    return done_in(metrics, t0)
