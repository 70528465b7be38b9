"""One training step of the character-level GPT: tinytorch vs hand-written NumPy vs PyTorch CPU.

    OPENBLAS_NUM_THREADS=1 python bench/bench_gpt.py    # gpt, bench_step's defaults (5 rounds x 30 steps)
    python bench/bench_gpt.py --threads 1 --rounds 3 --steps 20
    python bench/bench_gpt.py --quick                   # a smoke test
    python bench/bench_gpt.py --breakdown               # tinytorch only: forward / loss / backward / Adam
    python bench/bench_gpt.py --generate [--quick]      # generation tokens/s: tinytorch vs PyTorch

The model is milestone 05's: GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4,
n_embd=128), tied embedding and LM head, 809,856 parameters; one step is forward +
CrossEntropyLoss over all B*T positions + backward + Adam (lr 1e-3) on a fixed batch of 32
random sequences of 64 tokens (the timing does not depend on the text).

This file adds "gpt" to `bench_step.MODELS` (its extension point) and runs `bench_step.main`, so
the timing, the interleaving of implementations and the table are bench_step's. The three
implementations start from the same weights - a seeded tinytorch GPT's parameters - and the
same batch, so their first losses agree (bench_step warns otherwise).

The hand-written NumPy step has no autograd and no Tensor: the same arithmetic as tinytorch
(fused layer norm, one qkv matmul, all heads batched, causal softmax, tanh GELU, fused softmax +
cross-entropy, Adam), each layer's forward keeping what its backward needs and the backward
written out by hand. The ratio tinytorch / numpy is what the framework costs on top of the math.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_step  # noqa: E402  (the sibling script: timing, table, MODELS; activates the reference)

V, T, L, NH, C = 65, 64, 4, 4, 128  # vocabulary, context, layers, heads, width
LR, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-8
GELU_C = math.sqrt(2 / math.pi)


def gpt_setup(batch: int, seed: int):
    """The shared initial weights {tinytorch parameter name: array} and one batch (x, y) (B, T)."""
    from tinytorch.tensor import manual_seed
    from tinytorch.transformers import GPT, GPTConfig

    manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=NH, n_embd=C))
    weights = {name: p.data.copy() for name, p in model.named_parameters()}
    rng = np.random.default_rng(seed)
    x = rng.integers(0, V, (batch, T))  # (B, T) int64
    y = rng.integers(0, V, (batch, T))  # (B, T) the next tokens
    return weights, x, y


# ---------------------------------------------------------------------------------------------
# tinytorch
# ---------------------------------------------------------------------------------------------
def gpt_tinytorch(batch: int, seed: int) -> bench_step.Step:
    from tinytorch.losses import CrossEntropyLoss
    from tinytorch.optimizers import Adam
    from tinytorch.transformers import GPT, GPTConfig

    weights, x, y = gpt_setup(batch, seed)
    model = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=NH, n_embd=C))
    for name, p in model.named_parameters():
        p.data[...] = weights[name]
    opt = Adam(model.parameters(), lr=LR, betas=BETAS, eps=EPS)
    loss_fn = CrossEntropyLoss()
    targets = y.reshape(-1)

    def step() -> float:
        opt.zero_grad()
        loss = loss_fn(model(x).reshape(-1, V), targets)
        loss.backward()
        opt.step()
        return loss.item()

    return step


# ---------------------------------------------------------------------------------------------
# Hand-written NumPy: forward keeps what backward needs, backward by hand, Adam in place
# ---------------------------------------------------------------------------------------------
def _ln(x, w, b, eps=1e-5):
    xc = x - x.mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(np.mean(xc * xc, axis=-1, keepdims=True) + eps)
    xhat = xc * rstd
    return xhat * w + b, (xhat, rstd)


def _ln_back(g, w, cache):
    xhat, rstd = cache
    d = g * w
    dx = d - d.mean(axis=-1, keepdims=True)
    dx -= xhat * np.mean(d * xhat, axis=-1, keepdims=True)
    dx *= rstd
    c = g.shape[-1]
    return dx, (g * xhat).reshape(-1, c).sum(axis=0), g.reshape(-1, c).sum(axis=0)


def gpt_numpy(batch: int, seed: int) -> bench_step.Step:
    weights, idx, y = gpt_setup(batch, seed)
    P = {k: v.astype(np.float32) for k, v in weights.items()}
    m = {k: np.zeros_like(v) for k, v in P.items()}
    s = {k: np.zeros_like(v) for k, v in P.items()}
    B, hs = batch, C // NH
    scale = np.float32(1.0 / math.sqrt(hs))
    future = np.triu(np.full((T, T), -np.inf, dtype=np.float32), 1)  # 0 where key j <= query i
    targets = y.reshape(-1)
    rows = np.arange(B * T)
    t_step = [0]

    def forward_backward():
        G = {}
        x = P["tok_emb.weight"][idx] + P["pos_emb.weight"][:T]  # (B, T, C)
        caches = []
        for i in range(L):
            pre = f"blocks.{i}."
            h1, ln1 = _ln(x, P[pre + "ln1.weight"], P[pre + "ln1.bias"])
            qkv = h1.reshape(-1, C) @ P[pre + "attn.qkv.weight"].T  # (BT, 3C)
            qkv += P[pre + "attn.qkv.bias"]
            q, k, v = qkv.reshape(B, T, 3, NH, hs).transpose(2, 0, 3, 1, 4)  # 3 x (B, nh, T, hs)
            sc = q @ k.transpose(0, 1, 3, 2)  # (B, nh, T, T)
            sc *= scale
            sc += future
            sc -= sc.max(axis=-1, keepdims=True)
            att = np.exp(sc, out=sc)
            att /= att.sum(axis=-1, keepdims=True)
            yh = att @ v  # (B, nh, T, hs)
            ym = yh.transpose(0, 2, 1, 3).reshape(-1, C)  # (BT, C)
            a = ym @ P[pre + "attn.proj.weight"].T
            a += P[pre + "attn.proj.bias"]
            x = x + a.reshape(B, T, C)
            h2, ln2 = _ln(x, P[pre + "ln2.weight"], P[pre + "ln2.bias"])
            h2f = h2.reshape(-1, C)
            f = h2f @ P[pre + "mlp.fc.weight"].T  # (BT, 4C)
            f += P[pre + "mlp.fc.bias"]
            t = np.tanh(GELU_C * (f + 0.044715 * f * f * f))
            gl = 0.5 * f * (1 + t)
            mo = gl @ P[pre + "mlp.proj.weight"].T  # (BT, C)
            mo += P[pre + "mlp.proj.bias"]
            x = x + mo.reshape(B, T, C)
            caches.append((h1, ln1, q, k, v, att, ym, ln2, h2f, f, t, gl))
        hf, lnf = _ln(x, P["ln_f.weight"], P["ln_f.bias"])
        hff = hf.reshape(-1, C)
        W = P["tok_emb.weight"]
        logits = hff @ W.T  # (BT, V)
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        probs = e / e.sum(axis=1, keepdims=True)
        loss = -np.mean(np.log(probs[rows, targets]))
        # backward
        dlog = probs
        dlog[rows, targets] -= 1
        dlog /= B * T
        G["tok_emb.weight"] = dlog.T @ hff  # (V, C) the head's share
        dh = (dlog @ W).reshape(B, T, C)
        dx, G["ln_f.weight"], G["ln_f.bias"] = _ln_back(dh, P["ln_f.weight"], lnf)
        for i in reversed(range(L)):
            pre = f"blocks.{i}."
            h1, ln1, q, k, v, att, ym, ln2, h2f, f, t, gl = caches[i]
            dmo = dx.reshape(-1, C)
            G[pre + "mlp.proj.weight"] = dmo.T @ gl
            G[pre + "mlp.proj.bias"] = dmo.sum(axis=0)
            dgl = dmo @ P[pre + "mlp.proj.weight"]  # (BT, 4C)
            dgl *= 0.5 * (1 + t) + 0.5 * f * (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * f * f)
            G[pre + "mlp.fc.weight"] = dgl.T @ h2f
            G[pre + "mlp.fc.bias"] = dgl.sum(axis=0)
            dh2 = (dgl @ P[pre + "mlp.fc.weight"]).reshape(B, T, C)
            d, G[pre + "ln2.weight"], G[pre + "ln2.bias"] = _ln_back(dh2, P[pre + "ln2.weight"], ln2)
            dx = dx + d
            da = dx.reshape(-1, C)
            G[pre + "attn.proj.weight"] = da.T @ ym
            G[pre + "attn.proj.bias"] = da.sum(axis=0)
            dyh = (da @ P[pre + "attn.proj.weight"]).reshape(B, T, NH, hs).transpose(0, 2, 1, 3)
            dv = att.transpose(0, 1, 3, 2) @ dyh  # (B, nh, T, hs)
            datt = dyh @ v.transpose(0, 1, 3, 2)  # (B, nh, T, T)
            ds = att * (datt - (datt * att).sum(axis=-1, keepdims=True))
            ds *= scale
            dq = ds @ k
            dk = ds.transpose(0, 1, 3, 2) @ q
            dqkv = np.empty((B, T, 3, NH, hs), dtype=np.float32)
            for j, d in enumerate((dq, dk, dv)):
                dqkv[:, :, j] = d.transpose(0, 2, 1, 3)  # (B, T, nh, hs)
            dqkv = dqkv.reshape(-1, 3 * C)  # (BT, 3C)
            G[pre + "attn.qkv.weight"] = dqkv.T @ h1.reshape(-1, C)
            G[pre + "attn.qkv.bias"] = dqkv.sum(axis=0)
            dh1 = (dqkv @ P[pre + "attn.qkv.weight"]).reshape(B, T, C)
            d, G[pre + "ln1.weight"], G[pre + "ln1.bias"] = _ln_back(dh1, P[pre + "ln1.weight"], ln1)
            dx = dx + d
        G["pos_emb.weight"] = dx.sum(axis=0)  # (T, C)
        np.add.at(G["tok_emb.weight"], idx.reshape(-1), dx.reshape(-1, C))  # the embedding's share
        return float(loss), G

    def step() -> float:
        loss, G = forward_backward()
        t_step[0] += 1
        b1, b2 = BETAS
        c1, c2 = 1 - b1 ** t_step[0], 1 - b2 ** t_step[0]
        for name, p in P.items():
            g, mm, ss = G[name], m[name], s[name]
            mm *= b1
            mm += (1 - b1) * g
            ss *= b2
            g *= g
            g *= 1 - b2
            ss += g  # g is free from here on: reuse it as the update's buffer
            np.sqrt(ss, out=g)
            g /= math.sqrt(c2)
            g += EPS
            np.divide(mm, g, out=g)
            g *= LR / c1
            p -= g
        return loss

    return step


# ---------------------------------------------------------------------------------------------
# PyTorch (functional, on the same weights)
# ---------------------------------------------------------------------------------------------
def gpt_torch(batch: int, seed: int) -> bench_step.Step:
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as e:
        raise bench_step.Unavailable("PyTorch not installed") from e
    weights, x, y = gpt_setup(batch, seed)
    P = {k: torch.tensor(v, requires_grad=True) for k, v in weights.items()}
    opt = torch.optim.Adam(P.values(), lr=LR, betas=BETAS, eps=EPS)
    xb, yb = torch.tensor(x), torch.tensor(y.reshape(-1))
    B, hs = batch, C // NH

    def forward():
        h = F.embedding(xb, P["tok_emb.weight"]) + P["pos_emb.weight"][:T]  # (B, T, C)
        for i in range(L):
            pre = f"blocks.{i}."
            a = F.layer_norm(h, (C,), P[pre + "ln1.weight"], P[pre + "ln1.bias"])
            qkv = F.linear(a, P[pre + "attn.qkv.weight"], P[pre + "attn.qkv.bias"])  # (B, T, 3C)
            q, k, v = qkv.view(B, T, 3, NH, hs).permute(2, 0, 3, 1, 4)  # 3 x (B, nh, T, hs)
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
            att = att.transpose(1, 2).reshape(B, T, C)
            h = h + F.linear(att, P[pre + "attn.proj.weight"], P[pre + "attn.proj.bias"])
            a = F.layer_norm(h, (C,), P[pre + "ln2.weight"], P[pre + "ln2.bias"])
            a = F.gelu(F.linear(a, P[pre + "mlp.fc.weight"], P[pre + "mlp.fc.bias"]), approximate="tanh")
            h = h + F.linear(a, P[pre + "mlp.proj.weight"], P[pre + "mlp.proj.bias"])
        h = F.layer_norm(h, (C,), P["ln_f.weight"], P["ln_f.bias"])
        return F.linear(h, P["tok_emb.weight"]).reshape(-1, V)  # tied head

    def step() -> float:
        opt.zero_grad()
        loss = F.cross_entropy(forward(), yb)
        loss.backward()
        opt.step()
        return loss.item()

    return step


bench_step.MODELS["gpt"] = {"tinytorch": gpt_tinytorch, "numpy": gpt_numpy, "torch": gpt_torch}
bench_step.BATCH["gpt"] = 32


# ---------------------------------------------------------------------------------------------
# --breakdown: where a tinytorch step's time goes
# ---------------------------------------------------------------------------------------------
def breakdown(steps: int, batch: int = 32, seed: int = 0) -> dict:
    """Median ms of each phase of a tinytorch step over `steps` steps (after 3 warm-up steps)."""
    from tinytorch.losses import CrossEntropyLoss
    from tinytorch.optimizers import Adam
    from tinytorch.transformers import GPT, GPTConfig

    weights, x, y = gpt_setup(batch, seed)
    model = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=NH, n_embd=C))
    for name, p in model.named_parameters():
        p.data[...] = weights[name]
    opt, loss_fn, targets = Adam(model.parameters(), lr=LR), CrossEntropyLoss(), y.reshape(-1)
    phases: dict[str, list[float]] = {"forward": [], "loss": [], "backward": [], "adam": [], "step": []}
    for n in range(steps + 3):
        t0 = time.perf_counter()
        opt.zero_grad()
        logits = model(x)
        t1 = time.perf_counter()
        loss = loss_fn(logits.reshape(-1, V), targets)
        t2 = time.perf_counter()
        loss.backward()
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        if n >= 3:
            for k, a, b in (("forward", t0, t1), ("loss", t1, t2), ("backward", t2, t3), ("adam", t3, t4),
                            ("step", t0, t4)):
                phases[k].append((b - a) * 1e3)
    return {k: statistics.median(v) for k, v in phases.items()}


# ---------------------------------------------------------------------------------------------
# --generate: tokens per second of autoregressive sampling (no KV cache: module 17 adds one)
# ---------------------------------------------------------------------------------------------
def generation(tokens: int = 256, batch: int = 1, rounds: int = 3, seed: int = 0) -> dict:
    """Best-of-rounds tokens/s of greedy generation of `tokens` tokens from a 1-token prompt, the
    context cropped to the last 64: tinytorch's GPT.generate, and PyTorch (no_grad, the same
    weights and the same recomputation of the whole context per token) when installed."""
    from tinytorch.transformers import GPT, GPTConfig

    weights, _, _ = gpt_setup(1, seed)
    model = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=NH, n_embd=C))
    for name, p in model.named_parameters():
        p.data[...] = weights[name]
    prompt = np.zeros((batch, 1), dtype=np.int64)

    def best(fn) -> float:
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        return batch * tokens / min(times), out

    result = {}
    result["tinytorch"], ours = best(lambda: model.generate(prompt, tokens, temperature=0))
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return result
    P = {k: torch.tensor(v) for k, v in weights.items()}
    hs = C // NH

    def logits_last(idx):  # the same GPT as gpt_torch's forward, for any (B, t <= T)
        b, t = idx.shape
        h = F.embedding(idx, P["tok_emb.weight"]) + P["pos_emb.weight"][:t]
        for i in range(L):
            pre = f"blocks.{i}."
            a = F.layer_norm(h, (C,), P[pre + "ln1.weight"], P[pre + "ln1.bias"])
            q, k, v = F.linear(a, P[pre + "attn.qkv.weight"], P[pre + "attn.qkv.bias"]) \
                .view(b, t, 3, NH, hs).permute(2, 0, 3, 1, 4)
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, C)
            h = h + F.linear(att, P[pre + "attn.proj.weight"], P[pre + "attn.proj.bias"])
            a = F.layer_norm(h, (C,), P[pre + "ln2.weight"], P[pre + "ln2.bias"])
            a = F.gelu(F.linear(a, P[pre + "mlp.fc.weight"], P[pre + "mlp.fc.bias"]), approximate="tanh")
            h = h + F.linear(a, P[pre + "mlp.proj.weight"], P[pre + "mlp.proj.bias"])
        h = F.layer_norm(h[:, -1], (C,), P["ln_f.weight"], P["ln_f.bias"])
        return F.linear(h, P["tok_emb.weight"])  # (B, V)

    def torch_generate():
        idx = torch.tensor(prompt)
        with torch.no_grad():
            for _ in range(tokens):
                nxt = logits_last(idx[:, -T:]).argmax(dim=-1, keepdim=True)
                idx = torch.cat([idx, nxt], dim=1)
        return idx.numpy()

    result["torch"], theirs = best(torch_generate)
    result["same_tokens"] = bool(np.array_equal(ours, theirs))
    return result


if __name__ == "__main__":
    args = sys.argv[1:]
    bench_step.rerun_with_threads(__file__, args)  # THIS script (bench_step would re-run itself)
    if "--generate" in args:
        tokens = 16 if "--quick" in args else 256
        for batch in (1, 32):
            r = generation(tokens, batch, rounds=1 if "--quick" in args else 3)
            line = ", ".join(f"{k} {v:,.0f} tokens/s" for k, v in r.items() if k != "same_tokens")
            same = "" if "same_tokens" not in r else \
                f"; greedy tokens {'identical' if r['same_tokens'] else 'DIFFER'}"
            print(f"generation, batch {batch}, {tokens} tokens (context 64, no KV cache): {line}{same}")
        sys.exit(0)
    if "--breakdown" in args:
        steps = 20
        if "--steps" in args:
            steps = int(args[args.index("--steps") + 1])
        ms = breakdown(steps)
        threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
        print(f"tinytorch GPT step, batch 32, median of {steps} steps, BLAS threads: {threads}")
        for k, v in ms.items():
            print(f"  {k:9s} {v:8.1f} ms")
        sys.exit(0)
    if not any(a == "--models" or a.startswith("--models=") for a in args):
        args = ["--models", "gpt", *args]
    bench_step.main(args)
