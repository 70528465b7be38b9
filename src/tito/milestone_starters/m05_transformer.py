# %% [markdown]
# # Milestone 05 - The Transformer Era (2017)
#
# In June 2017 eight researchers at Google - Ashish Vaswani, Noam Shazeer, Niki Parmar, Jakob
# Uszkoreit, Llion Jones, Aidan Gomez, Łukasz Kaiser and Illia Polosukhin - published
# *Attention is all you need*. Translation models of the time read a sentence one word after
# another through a recurrent network; theirs had no recurrence at all. Every position looks at
# every other position and takes what it needs, weighted by a softmax of dot products
# (*attention*), so a whole sequence trains at once on parallel hardware. A year later OpenAI
# kept only the decoder half, trained it to predict the next token of ordinary text and called
# it GPT; every large language model since is a transformer of that kind. Years before, Andrej
# Karpathy's char-rnn had shown what a small model learns from 1 MB of Shakespeare, one
# character at a time - the data set you will use too.
#
# You will build GPTs from your own modules - tokenizer (10), embeddings (11), attention (12),
# LayerNorm, blocks and GPT (13) - and train them with your autograd, AdamW, warm-up + cosine
# schedule and gradient clipping (06, 07) on your cross-entropy (04).
#
# ## What you deliver
#
# 1. **The model**: a GPT that copies and one that reverses 8-digit strings - **100%** of tito's
#    1,000 held-out strings exactly right (quick rehearsal: 50% and 20%). tito reloads your
#    saved weights and generates the answers itself.
# 2. **Training**: a character-level GPT on Tiny Shakespeare whose validation loss - measured
#    by tito from your saved weights on every character of the last 10% - is at most **2.00**
#    nats/char and **0.45** below a counted bigram (quick: 2.60 and below the bigram), with a
#    training loss that falls.
# 3. **Visualisation**: learning curves, the attention maps of the routing models, and a
#    500-character sample of your model's Shakespeare (`sample.txt`).
# 4. **Systems analysis**: the GPT's parameter count from its shapes, and a measured table of
#    attention's memory and FLOPs against the context length: quadratic growth, fitted.
# 5. **Comparison**: the reverse task with and without positional embeddings: a curve each.
#
# The full notebook ran in 7.5 minutes on a busy 2-core machine (less on an idle laptop;
# half of it the Shakespeare model); `tito milestone submit 05 --quick` rehearses everything
# with small models in about a minute. The TODO cells say what to deliver; the design is yours.

# %% [markdown]
# ## 0. Setup
#
# On Colab only, the first cell installs TinyTorch, puts your workspace on the path and
# downloads Tiny Shakespeare. The second checks that `tinytorch` is your package, with modules
# 01-08 and 10-13.

# %%
import sys

if "google.colab" in sys.modules:  # Colab only: a no-op in Jupyter, VS Code and tito
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "tinytorch"], check=True)
    WORKSPACE = "/content/drive/MyDrive/my-tinytorch"  # where your workspace is: edit this
    sys.path.insert(0, WORKSPACE)
    subprocess.run(["tito", "data", "download", "tinyshakespeare"], check=True)

# %%
import time
import tracemalloc

import matplotlib.pyplot as plt
import numpy as np

from tito.milestone_work import Notebook
from tito.milestones.m05_transformer import attention_maps, bigram_loss, plot_attention

nb = Notebook("05")  # checks your tinytorch: modules 01-08 and 10-13

from tinytorch.attention import scaled_dot_product_attention
from tinytorch.datasets import load_shakespeare
from tinytorch.losses import CrossEntropyLoss
from tinytorch.optimizers import AdamW, WarmupCosine, clip_grad_norm_
from tinytorch.tensor import Tensor, manual_seed, no_grad
from tinytorch.tokenization import CharTokenizer
from tinytorch.transformers import GPT, GPTConfig

# %% [markdown]
# ## 1. The training loop
#
# Every model of this notebook trains the same way, the way nanoGPT trains GPT-2:
#
# - **AdamW** (betas 0.9 / 0.99) with weight decay 0.1 on the matrices only - biases, LayerNorm
#   parameters and nothing else of one dimension decay towards zero for no good reason. Your
#   AdamW takes parameter groups: `AdamW([{"params": matrices, "weight_decay": 0.1},
#   {"params": others, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.99))`.
# - **WarmupCosine**: the learning rate rises linearly over `warmup` steps (Adam's moment
#   estimates are poor at first), then follows a cosine down to a tenth of its peak. Stepped
#   once per batch.
# - **clip_grad_norm_(params, 1.0)** between `backward()` and `step()`: one unlucky batch
#   cannot throw the weights far.
# - The loss is your `CrossEntropyLoss` of the logits `(B, T, V)` folded to `(B * T, V)`
#   against the next tokens `(B * T,)`. With `first > 0` only positions `first..` of each row
#   count (the routing tasks score only the answer, not the random input).
#
# **TODO**: `train_gpt`. Keep the mean training loss of every 25 steps in `history["step"]` /
# `history["train_loss"]`, and when `evaluate` is given, its value every `eval_every` steps
# (and at the last step) in `history["val_step"]` / `history["val_loss"]`. `params` (default:
# all of the model's) are the parameters the optimizer updates.

# %% todo="train_loop"
def train_gpt(model, next_batch, steps: int, lr: float, warmup: int, first: int = 0,
              evaluate=None, eval_every: int = 250, params=None) -> dict:
    """Train `model` for `steps` steps on batches (x, y) = next_batch(), both (B, T) token ids."""
    history = {"step": [], "train_loss": [], "val_step": [], "val_loss": []}
    # TODO: the optimizer with its two groups, the schedule, the loss; then per step: the loss,
    # TODO: zero_grad, backward, clip_grad_norm_, step, the schedule's step, the history
    raise NotImplementedError("TODO: the training loop")


# %% [markdown]
# ## 2. Attention learns to route
#
# A first test that attention does what it should: move information from one position to
# another. Each example is 8 random digits, a separator token (10), then the answer - the same
# digits (**copy**) or the digits reversed (**reverse**):
#
#     3 1 4 1 5 9 2 6 | 3 1 4 1 5 9 2 6        copy
#     3 1 4 1 5 9 2 6 | 6 2 9 5 1 4 1 3        reverse
#
# No single weight can do this: answer position $i$ must find input digit $i$ (or $9 - i$) by
# its position and copy it - the job of a head whose queries match the keys of the right
# position. `nb.evaluation_inputs()` are tito's 1,000 held-out strings: `routing_batches`
# (given) leaves them out of every training batch, so the model is judged on strings it never
# saw. A GPT of 2 layers, 4 heads, width 64 and context 16 learns either task in a few
# hundred steps of 64 strings at lr 3e-3 (100 warm-up steps).
#
# **TODO**: for each task, train a `routing_gpt()` with your `train_gpt` (only the answer
# positions scored: `first=LENGTH`), then let it answer every held-out string with your
# `GPT.generate` - greedily (`temperature=0`), 8 new tokens after the prompt
# `digits + [SEP]`. Keep `routing_models[task]`, `routing_histories[task]` and
# `answers[task]` (int, shape (1000, 8)).

# %%
DIGITS, SEP, LENGTH = 10, 10, 8
held = nb.evaluation_inputs()  # (1000, 8) int64: tito's held-out strings
held_codes = set((held * 10 ** np.arange(LENGTH)).sum(axis=1).tolist())
TASKS = {"copy": lambda d: d, "reverse": lambda d: d[:, ::-1]}
ROUTING_STEPS = nb.limit(600, 300)


def routing_batches(task: str, batch: int, rng: np.random.Generator):
    """next_batch() -> (x, y) of shape (B, 16): digits | separator | answer, shifted by one;
    strings of the held-out set are dropped from every batch."""
    def next_batch():
        d = rng.integers(0, DIGITS, (batch, LENGTH))
        d = d[~np.isin((d * 10 ** np.arange(LENGTH)).sum(axis=1), list(held_codes))]
        seq = np.concatenate([d, np.full((len(d), 1), SEP), TASKS[task](d)], axis=1)  # (B, 17)
        return seq[:, :-1], seq[:, 1:]

    return next_batch


def routing_gpt() -> GPT:
    return GPT(GPTConfig(vocab_size=DIGITS + 1, block_size=2 * LENGTH, n_layer=2, n_head=4,
                         n_embd=64))


# %% todo="routing"
routing_models, routing_histories, answers = {}, {}, {}
for i, task in enumerate(TASKS):
    manual_seed(i)
    # TODO: train routing_gpt() on routing_batches(task, 64, np.random.default_rng(i)) for
    # TODO: ROUTING_STEPS steps, then answers[task] = its greedy answers to `held`
    raise NotImplementedError("TODO: train the routing models and generate their answers")

# %%
routing = {}
for task, model in routing_models.items():
    exact = float(np.mean((np.asarray(answers[task]) == TASKS[task](held)).all(axis=1)))
    routing[f"{task}_exact"] = exact
    routing[f"{task}_loss"] = routing_histories[task]["train_loss"]
    print(f"{task}: {exact:.1%} of {len(held):,} held-out strings exactly right, e.g. "
          f"{''.join(map(str, held[0]))} -> {''.join(map(str, answers[task][0]))}")
    nb.save_gpt(task, model)  # submit reloads it and generates the answers itself
nb.save("routing", routing)

# %% [markdown]
# ## 3. Tiny Shakespeare, one character at a time
#
# 1,115,394 characters of Shakespeare's plays; your `CharTokenizer` gives each of the 65
# distinct characters an id. The first 90% train, the last 10% validate (nanoGPT's split). A
# model that only counts which character follows which (a *bigram*) reaches about 2.48
# nats/char on the validation text: anything learnt beyond that comes from the context.
#
# A GPT of 2 layers, 4 heads, width 128 and context 64 (about 410,000 parameters) gets to about
# 1.75 in 1,200 steps of 32 random windows at lr 3e-3 (100 warm-up steps): a few minutes on
# a laptop.
#
# **TODO**: `validation_loss(model, ids, block)` - the mean cross-entropy of predicting every
# next character of `ids`, over consecutive windows of `block` characters, without a graph
# (submit measures the same on all of `val_ids` from your saved weights and compares) - and
# train `shakespeare_gpt` with `train_gpt` on random windows of `train_ids`, estimating the
# validation loss on `val_ids[:20000]` every 250 steps for the curve. Keep its history in
# `sh_history`.

# %%
text = load_shakespeare()
tok = CharTokenizer(text)
data = np.asarray(tok.encode(text), dtype=np.int64)
split = int(0.9 * len(data))
train_ids, val_ids = data[:split], data[split:]
bigram = bigram_loss(train_ids, val_ids, tok.vocab_size)
print(f"{len(text):,} characters, {tok.vocab_size} distinct; a counted bigram: {bigram:.3f} nats/char")

SH_CONFIG = GPTConfig(vocab_size=tok.vocab_size, block_size=nb.limit(64, 32), n_layer=2,
                      n_head=4, n_embd=nb.limit(128, 64))
SH_STEPS, SH_BATCH = nb.limit(1200, 250), 32

# %% todo="shakespeare"
def validation_loss(model, ids: np.ndarray, block: int) -> float:
    # TODO: logits of consecutive windows ids[s:s+block] (in batches, under no_grad), the mean
    # TODO: negative log-probability of each next character ids[s+1:s+block+1]
    raise NotImplementedError("TODO: the validation loss")


manual_seed(0)
shakespeare_gpt = GPT(SH_CONFIG)
# TODO: sh_history = train_gpt(shakespeare_gpt, <random windows of train_ids>, SH_STEPS, ...)
raise NotImplementedError("TODO: train the Shakespeare GPT")

# %%
t0 = time.perf_counter()
val_loss = validation_loss(shakespeare_gpt, val_ids, SH_CONFIG.block_size)
print(f"validation loss {val_loss:.3f} nats/char ({bigram - val_loss:.3f} below the bigram), "
      f"measured in {time.perf_counter() - t0:.1f} s")
nb.save_gpt("shakespeare", shakespeare_gpt, tok)  # submit measures it again from these weights
nb.save("shakespeare", {"val_loss": val_loss, "bigram_val_loss": bigram,
                        "train_loss": sh_history["train_loss"], "val_curve": sh_history["val_loss"]})

# %% [markdown]
# ### Its Shakespeare
#
# `generate` samples one character at a time from the softmax of the last position's logits,
# divided by a *temperature*: below 1 the likely characters become likelier (safer text), above
# 1 the distribution flattens.
#
# **TODO**: 500 new characters after the prompt `"ROMEO:\n"` at temperature 0.8, decoded, the
# prompt included, into `sample` - saved as `sample.txt`.

# %% todo="sample"
manual_seed(1)
# TODO: sample = ...
raise NotImplementedError("TODO: write a sample")

# %%
nb.path("sample.txt").write_text(sample, encoding="utf-8")
print(sample)

# %% [markdown]
# ## 4. Visualisation
#
# **TODO**: `loss_curves.png` - the Shakespeare model's training and validation loss by step,
# with the bigram's loss as a horizontal line - and `attention_maps.png`: the attention weights
# of both routing models on one held-out string. `attention_maps(model, x)` (given) returns
# each layer's weights `(B, heads, T, T)` after a forward pass on `x`;
# `plot_attention(path, {"copy": maps, "reverse": maps}, labels)` draws the mean over heads.
# The input is the held-out string with its separator and answer, minus the last token; the
# labels `d1..d8 | o1..o7`. Expect a diagonal for copy and an anti-diagonal for reverse.

# %% todo="plots"
# TODO: loss_curves.png with matplotlib (plt.subplots, ax.plot, ax.axhline, fig.savefig(nb.path(...)))
# TODO: attention_maps.png with plot_attention
raise NotImplementedError("TODO: the plots")

# %%
nb.show("loss_curves.png", "attention_maps.png")

# %% [markdown]
# ## 5. Systems analysis: what attention costs
#
# Every position attends to every earlier one: a head computes a $(T, T)$ matrix of scores
# $q k^\top / \sqrt{d}$, softmaxes it and multiplies it by $v$. Doubling the context doubles
# the positions *and* what each one looks at. Measure it: `peak_attention_bytes(T)` (given)
# is the peak memory one causal `scaled_dot_product_attention` of 4 heads of size 16 allocates
# for one sequence of length T.
#
# **TODO**: `bytes_table`, the measured peak of every context length in `CONTEXTS`;
# `flops_table`, the floating-point operations of the same attention counted from the shapes
# (the two matrix products $q k^\top$ and $p\,v$: a multiply and an add per term); and
# `predicted_parameters`, the number of parameters of `shakespeare_gpt` counted from its
# shapes (`SH_CONFIG`; the embedding and the head share one matrix). Then say in the markdown
# cell below what you expect at T = 4,096.

# %%
HEADS, HEAD_DIM = 4, 16
CONTEXTS = [32, 64, 128, 256, 512]


def peak_attention_bytes(T: int) -> int:
    """Peak bytes allocated by one causal attention (no graph) of 4 heads of size 16, length T."""
    q, k, v = (Tensor(np.random.default_rng(0).standard_normal((1, HEADS, T, HEAD_DIM))
                      .astype(np.float32)) for _ in range(3))
    tracemalloc.start()
    tracemalloc.reset_peak()
    with no_grad():
        scaled_dot_product_attention(q, k, v, is_causal=True)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


# %% todo="systems"
# TODO: bytes_table = [...]
# TODO: flops_table = [...]
# TODO: predicted_parameters = ...
raise NotImplementedError("TODO: the systems analysis")

# %%
exponent = np.polyfit(np.log(CONTEXTS[1:]), np.log(bytes_table[1:]), 1)[0]
print(f"{'T':>5} {'peak bytes':>12} {'FLOPs':>12}")
for T, b, f in zip(CONTEXTS, bytes_table, flops_table):
    print(f"{T:>5} {b:>12,} {f:>12,}")
print(f"memory grows like T^{exponent:.2f}; the GPT has {predicted_parameters:,} parameters")
nb.save("systems", {"contexts": CONTEXTS, "attention_bytes": bytes_table,
                    "attention_flops": flops_table, "predicted_parameters": predicted_parameters})

# %% [markdown]
# *Your prediction for T = 4,096 (memory, FLOPs), and why long contexts need other attention
# algorithms (FlashAttention computes the softmax block by block, never holding the T x T
# matrix):* ...

# %% [markdown]
# ## 6. Comparison: does the model need to know where it is?
#
# Attention itself ignores order: permute the keys and values together and each output is the
# same. The positional embedding (`pos_emb`, one learnt vector per position added to each
# token's) is what tells position 3 from position 5. Only the causal mask still leaks a little
# order: position $i$ sees exactly $i + 1$ tokens.
#
# **TODO**: train two reverse-task GPTs for `COMPARE_STEPS` steps each, same seed and data:
# one as in section 2 (`with_positions`) and one whose positional embedding is all zeros and
# never trained (`without_positions`: e.g. zero `model.pos_emb.weight.data` and leave it out of
# `params`). Keep each one's loss curve (`curve`: its history's `train_loss`) and the fraction
# of held-out strings it reverses exactly (`final_acc`) in `comparison[name]`, and plot both
# curves into `comparison.png`.

# %% todo="comparison"
COMPARE_STEPS = nb.limit(400, 150)
comparison = {}
# TODO: for name in ("with_positions", "without_positions"): ...
raise NotImplementedError("TODO: the comparison")

# %%
for name, r in comparison.items():
    print(f"{name}: loss {r['curve'][0]:.3f} -> {r['curve'][-1]:.3f}, reverses "
          f"{r['final_acc']:.1%} of the held-out strings after {COMPARE_STEPS} steps")
nb.show("comparison.png")
nb.save("positions", comparison)

# %% [markdown]
# ## What you built
#
# A GPT of your own modules that routes information by position, learns Shakespeare's
# spelling and verse layout from 1 MB of text, and costs what attention costs: memory and
# work that grow with the square of the context - the reason long-context models are a
# systems problem. Next: milestone 06, where you make models like these fast and small.
