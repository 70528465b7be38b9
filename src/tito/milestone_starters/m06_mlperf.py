# %% [markdown]
# # Milestone 06 - MLPerf (2018)
#
# By 2018 every paper and every chip vendor had its own speed numbers, measured its own way:
# one model on one batch size, another at a quality nobody would ship. In May 2018 a group of
# researchers from Google, Baidu, Harvard, Stanford, Berkeley and a dozen companies - David
# Patterson, Vijay Janapa Reddi, Peter Mattson and Cliff Young among them - launched **MLPerf**:
# fixed tasks, a fixed *quality target* a faster system must still reach (for inference: at least
# 99% of the FP32 reference's accuracy), latency and throughput measured by one procedure - the
# *scenarios*: **SingleStream** (one query at a time, the 90th-percentile latency) and
# **Offline** (everything at once, throughput) - and the system written down next to the
# numbers. Optimisation stopped being a matter of claims and became one of measurements.
#
# You will do what an MLPerf submitter does, with your own optimisation modules: take the
# LeNet-5 of milestone 04, make it smaller and faster - prune whole channels (16), fine-tune,
# quantize to INT8 (15), compile it (18) - and benchmark baseline and optimised side by side
# with your MLPerf-style harness (19), keeping the quality target.
#
# ## What you deliver
#
# 1. **The model**: your optimised LeNet-5, saved - tito rebuilds it and the FP32 baseline from
#    the saved weights on your tinytorch and measures both on the MNIST test set itself: the
#    optimised model at least **99%** of the baseline's accuracy (quick rehearsal: 97%), its
#    stored arrays at least **4x** smaller, every weight stored as int8 codes.
# 2. **Training and the benchmark**: the fine-tuning of the pruned model (a falling loss), and
#    module 19's `run_benchmark` + `write_report` on at least three systems under test:
#    `benchmark/report.md` and `benchmark/results.json`, which tito recounts (p50/p90 from the
#    latencies, throughput = samples / seconds). The timings are *reported*, not graded: your
#    machine may be busy; that they were measured, and consistently, is what counts.
# 3. **Visualisation**: a Pareto plot (accuracy against stored size and against p90 latency)
#    and the accuracy-against-sparsity curve, as PNG images.
# 4. **Systems analysis**: the INT8 model's stored bytes predicted from its shapes (exactly), and
#    the accuracy of the baseline pruned without fine-tuning at 5 sparsities - tito prunes it
#    again with your functions and checks your curve.
# 5. **Comparison**: what each step costs - the pruned FP32 model against its INT8 copy (tito
#    measures both), and the frozen engine's predictions scored on the test set.
#
# The full notebook runs in a few minutes on a laptop CPU (most of it training LeNet-5 - or
# none of it, if you have a recorded `tito milestone run 04`); `tito milestone submit 06
# --quick` rehearses everything on 6,000 training and 2,000 test images in about a minute. The
# TODO cells say what to deliver; the design is yours.

# %% [markdown]
# ## 0. Setup
#
# On Colab only, the first cell installs TinyTorch, puts your workspace on the path and
# downloads MNIST. The second checks that `tinytorch` is your package, with modules 01-09 and
# 14-19 (and 10-13, which `tito milestone run 06` uses for its second part).

# %%
import sys

if "google.colab" in sys.modules:  # Colab only: a no-op in Jupyter, VS Code and tito
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "tinytorch"], check=True)
    WORKSPACE = "/content/drive/MyDrive/my-tinytorch"  # where your workspace is: edit this
    sys.path.insert(0, WORKSPACE)
    subprocess.run(["tito", "data", "download", "mnist"], check=True)

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from tito.milestone_work import Notebook
from tito.milestones.common import accuracy
from tito.milestones.m04_cnn import AugmentedLoader, lenet5, logits_of

nb = Notebook("06")  # checks your tinytorch: modules 01-19

from tinytorch.acceleration import blas_threads, freeze
from tinytorch.benchmarking import Splits, calibration_set, predictor, run_benchmark, write_report
from tinytorch.compression import prune_channels, prune_neurons
from tinytorch.convolutions import Conv2d
from tinytorch.datasets import load_mnist
from tinytorch.layers import Linear
from tinytorch.losses import CrossEntropyLoss
from tinytorch.optimizers import Adam, WarmupCosine
from tinytorch.quantization import QuantizedConv2d, QuantizedLinear, model_size_bytes, quantize_model
from tinytorch.tensor import manual_seed
from tinytorch.transforms import Normalize, normalize

# %% [markdown]
# ## 1. The task: MNIST, milestone 04's normalisation
#
# An MLPerf task fixes the data and its splits: here all 60,000 MNIST training images (training,
# fine-tuning, calibration) and the 10,000 test images (quality and queries - never
# calibration). `Splits` (module 19) keeps them together so each function takes the split it
# must. Images are normalised as milestone 04 did: `(pixel / 255 - 0.1307) / 0.3081`, shape
# (N, 1, 28, 28) - tito normalises the test images the same way when it measures your models.

# %%
MNIST_NORM = ((0.1307,), (0.3081,))
train_images, train_labels = load_mnist("train")  # uint8 (60000, 28, 28)
test_images, test_labels = load_mnist("test")
n, m = nb.limit(60000, 6000), nb.limit(10000, 2000)
train_images, train_labels = train_images[:n], train_labels[:n]
test_images, test_labels = test_images[:m], test_labels[:m]
x_train, x_test = normalize(train_images, *MNIST_NORM), normalize(test_images, *MNIST_NORM)
splits = Splits(x_train, train_labels, x_test, test_labels, name="MNIST")
print(f"MNIST: {len(x_train):,} training and {len(x_test):,} test images")


def test_accuracy(model_or_predict) -> float:
    """Top-1 accuracy on the test split, of a model or of a predict(x) -> logits function (a
    frozen model, module 18)."""
    if callable(model_or_predict) and not hasattr(model_or_predict, "parameters"):
        logits = np.concatenate([model_or_predict(x_test[i:i + 500]) for i in range(0, len(x_test), 500)])
    else:
        logits = logits_of(model_or_predict, x_test)
    return accuracy(logits.argmax(axis=1), test_labels)


# %% [markdown]
# ## 2. The FP32 baseline
#
# The reference every optimisation is measured against: milestone 04's LeNet-5 (`lenet5()`,
# given: 61,706 parameters). If you have a recorded full run of milestone 04
# (`tito milestone run 04`), `nb.recorded_model("04", 1)` returns it - your own training,
# reused. Otherwise train one here: Adam (lr 2e-3) with a warm-up + cosine schedule stepped
# every batch reaches about 99% in 4 epochs of batch 128 (quick: 2 epochs of batch 64, about 93%).
#
# **TODO**: `baseline`, a trained LeNet-5 (loaded or trained), in eval mode. Keep the loss of
# whatever training you ran in `baseline_history["train_loss"]` (empty if loaded).

# %%
def fit(model, epochs: int, lr: float, batch: int, history: dict, seed: int = 0) -> None:
    """Train `model` on the training split: Adam, WarmupCosine stepped every batch; the mean loss
    of every 20 batches appended to history["train_loss"]. Ends in eval mode."""
    loader = AugmentedLoader(train_images, train_labels, Normalize(*MNIST_NORM), batch, seed)
    opt, loss_fn = Adam(model.parameters(), lr=lr), CrossEntropyLoss()
    steps = epochs * len(loader)
    schedule = WarmupCosine(opt, max(1, steps // 10), steps)
    model.train()
    losses = []
    for epoch in range(epochs):
        for x, y in loader:  # Tensors: (B, 1, 28, 28) normalised, (B,) labels
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            losses.append(loss.item())
            if len(losses) == 20:
                history["train_loss"].append(float(np.mean(losses)))
                losses.clear()
        print(f"epoch {epoch + 1}/{epochs}: loss {np.mean(history['train_loss'][-5:] or losses):.4f}")
    model.eval()


# %% todo="baseline"
baseline, source = (None, "") if nb.quick else nb.recorded_model("04", 1)
baseline_history = {"train_loss": []}
# TODO: if there is no recorded LeNet-5, build lenet5() (manual_seed(0) first) and train it
# TODO: with fit(...) for nb.limit(4, 2) epochs; set `source` to say where it came from
raise NotImplementedError("TODO: the FP32 baseline")

# %%
fp32_acc = test_accuracy(baseline)
print(f"FP32 baseline ({source}): {fp32_acc:.2%} on {len(x_test):,} test images, "
      f"{model_size_bytes(baseline):,} bytes")
nb.save_model("fp32", baseline)
nb.save("baseline", {"accuracy": fp32_acc, "source": source, "train_loss": baseline_history["train_loss"]})

# %% [markdown]
# ## 3. Optimise: prune, fine-tune, quantize, compile
#
# Four steps, each one of your modules:
#
# 1. **Structured pruning** (16): `prune_channels(model, f)` removes the fraction `f` of each
#    convolution's filters with the smallest L2 norm (and the next layer's matching inputs);
#    `prune_neurons(model, f)` does the same to the hidden units of the Linear layers. The
#    result is a smaller *dense* model - not a mask of zeros - so it is smaller to store and
#    cheaper to run. With `PRUNE = 0.5` LeNet-5 keeps 15,738 of its 61,706 parameters.
# 2. **Fine-tuning**: pruning whole channels costs accuracy that a little training recovers
#    (2 epochs at lr 1e-3 recover almost all of it).
# 3. **INT8 post-training quantization** (15): `quantize_model(model, [calibration])` with a
#    *fixed calibration set from the training split* (19: `calibration_set(splits, 256, seed=0)`,
#    MLPerf's rule - never calibrate on the test images). Use `mode="float"` (the int8 codes
#    dequantized once, float32 BLAS): the same numbers, the fast route in NumPy.
# 4. **Compilation** (18): `freeze(int8, (1, 28, 28), threads=2)` - the graph-free engine, the
#    system that will be fast at batch 1.
#
# Why both pruning and INT8? Work out the sizes: INT8 alone stores each weight in a quarter of
# the bytes, but biases stay 32-bit and every channel carries a scale and a zero-point - about
# 3.8x for LeNet-5, short of the 4x target. Halving every layer's width removes about 3/4 of
# the weights first.
#
# **TODO**: `pruned` (pruned and fine-tuned, eval mode; its fine-tuning loss in
# `finetune_history["train_loss"]`), `int8` (quantized copy of `pruned`) and `frozen` (the
# frozen `int8`).

# %% todo="optimise"
PRUNE = 0.5
finetune_history = {"train_loss": []}
# TODO: pruned = ...; fit(...) it for nb.limit(2, 2) epochs at lr 1e-3
# TODO: int8 = quantize_model(...); frozen = freeze(...)
raise NotImplementedError("TODO: prune, fine-tune, quantize, freeze")

# %%
pruned_acc, int8_acc = test_accuracy(pruned), test_accuracy(int8)
with blas_threads(1):
    frozen_pred = np.concatenate([frozen(x_test[i:i + 500]).argmax(axis=1) for i in range(0, len(x_test), 500)])
frozen_acc = accuracy(frozen_pred, test_labels)
print(f"pruned + fine-tuned {pruned_acc:.2%}, INT8 {int8_acc:.2%} ({int8_acc / fp32_acc:.1%} of FP32), "
      f"frozen {frozen_acc:.2%}; stored {model_size_bytes(int8):,} bytes "
      f"({model_size_bytes(baseline) / model_size_bytes(int8):.1f}x smaller)")
nb.save_model("pruned", pruned)
nb.save_model("int8", int8)  # submit rebuilds it from these arrays and measures it itself
nb.save_predictions("frozen", frozen_pred)
nb.save("optimised", {"accuracy": int8_acc, "bytes": model_size_bytes(int8), "prune": PRUNE,
                      "finetune_loss": finetune_history["train_loss"]})

# %% [markdown]
# ## 4. The benchmark (module 19)
#
# Three systems under test, the same settings for each, one run: the FP32 baseline through the
# framework (`predictor(baseline)`), the pruned INT8 model through the framework
# (`predictor(int8)`), and the frozen engine (`frozen` is already a predict function).
# `run_benchmark(name, predict, splits, queries, warmup, batch=256, reference=..., ratio=0.99,
# size_bytes=model_size_bytes(...))` measures quality on the test split, SingleStream (one image
# per query) and Offline (the whole test split in batches); the first result is the reference
# the others' quality target comes from. `write_report(results, nb.path("benchmark"), title=...)`
# writes `report.md` and `results.json`.
#
# Measure with one BLAS thread (`with blas_threads(1):`) - the frozen model's two threads are its
# own - and use `QUERIES` queries after `WARMUP` warm-up queries.
#
# **TODO**: `results`, the three BenchmarkResults (baseline first), and the report.

# %% todo="benchmark"
QUERIES, WARMUP = nb.limit(1000, 200), nb.limit(100, 20)
# TODO: results = [run_benchmark(...) for each system], then write_report(...)
raise NotImplementedError("TODO: the benchmark")

# %%
print((nb.path("benchmark") / "report.md").read_text())
for r in results:
    print(f"{r.name}: p90 {r.single_stream.p90 * 1e3:.0f} us, Offline {r.offline.throughput:,.0f} samples/s")

# %% [markdown]
# ## 5. The Pareto plot
#
# No system wins on every axis: an optimisation buys size or speed with a little accuracy. A
# *Pareto plot* puts each system at (cost, accuracy); the systems nobody beats on both form the
# frontier. Draw two panels: test accuracy against stored bytes (log scale), and against
# SingleStream p90 latency - one labelled point per system of `results`, and the quality target
# (99% of FP32) as a horizontal line.
#
# **TODO**: `pareto.png`.

# %% todo="pareto"
# TODO: fig, (a, b) = plt.subplots(1, 2, ...); ...; fig.savefig(nb.path("pareto.png"))
raise NotImplementedError("TODO: the Pareto plot")

# %%
nb.show("pareto.png")

# %% [markdown]
# ## 6. Systems analysis: bytes and sparsity
#
# **Bytes, from the shapes.** Module 15's worked example: a quantized `Linear(400, 120)` stores
# 48,000 int8 codes (1 byte each), 120 int32 biases, 120 float32 scales and 120 int32
# zero-points (one per output channel), and one input scale and zero-point: 49,448 bytes. A
# quantized convolution stores the same kinds of arrays (its codes are out x in x k x k).
#
# **Accuracy against sparsity.** How much can be cut before accuracy collapses - without any
# fine-tuning? Prune the *baseline* with `prune_neurons(prune_channels(baseline, s), s)` at each
# `s` of `SPARSITIES` and measure the test accuracy of each. Submit prunes your saved baseline
# again at your sparsities, with your functions, and compares.
#
# **TODO**: `predicted_int8_bytes` (from the layer shapes of `pruned`: no `model_size_bytes`),
# `sparsity_acc` (one accuracy per sparsity), and `sparsity.png` (the curve).

# %% todo="systems"
SPARSITIES = [0.0, 0.25, 0.5, 0.75, 0.9]
# TODO: predicted_int8_bytes = ...; sparsity_acc = [...]; the plot
raise NotImplementedError("TODO: the systems analysis")

# %%
print(f"INT8 model: {predicted_int8_bytes:,} bytes predicted from the shapes, "
      f"{model_size_bytes(int8):,} counted")
for s, a in zip(SPARSITIES, sparsity_acc):
    print(f"  {s:4.0%} of channels and units pruned, no fine-tuning: {a:.2%}")
nb.show("sparsity.png")
nb.save("systems", {"predicted_int8_bytes": predicted_int8_bytes, "sparsities": SPARSITIES,
                    "accuracy": sparsity_acc})

# %% [markdown]
# ## 7. Comparison: what each step costs
#
# Separate the costs: pruning + fine-tuning (FP32 -> pruned), quantization alone (pruned ->
# INT8: the same model, int8 weights), compilation (INT8 -> frozen: should cost nothing - the
# same numbers computed differently). And the speed: compare the framework INT8 system with the
# frozen one at batch 1 in your report - the same weights; why is one several times faster?
# (Module 19's last lesson: at batch 1 the time is per-call overhead.)
#
# **TODO**: `comparison`: the test accuracy of each model - keys `fp32`, `pruned`, `int8`,
# `frozen` - and, in a markdown cell of your own, the explanation of the batch-1 latencies.

# %% todo="comparison"
# TODO: comparison = {"fp32": ..., "pruned": ..., "int8": ..., "frozen": ...}
raise NotImplementedError("TODO: the comparison")

# %%
for name, acc in comparison.items():
    print(f"{name:>7}: {acc:.2%}")
nb.save("comparison", comparison)

# %% [markdown]
# ## What you built
#
# LeNet-5 stored in about 14 times fewer bytes (a quarter of its weights, a quarter of the bytes
# each), within 1% of its accuracy, and a frozen engine that answers one query several times faster
# than the framework answers it - measured by your own harness, in MLPerf's vocabulary, with the
# machine written down. These are
# not official MLPerf results (no LoadGen, no audit, short runs), and your report says so. Next:
# the capstone - a system of your own design, optimised and benchmarked the same way.
