# %% [markdown]
# # Milestone 02 - The XOR Crisis (1969)
#
# In 1969 Marvin Minsky and Seymour Papert published *Perceptrons*, a careful mathematical
# study of what a single-layer perceptron can and cannot compute. Its most famous result is
# also its simplest: no perceptron computes **XOR** (exclusive or), true when exactly one of
# its two inputs is. The book was read as a verdict on neural networks as a whole; funding moved
# elsewhere, and the field entered its first "AI winter". The way out - several layers, trained
# by propagating the error backwards - was known in pieces, but it took until 1986 to become
# the standard.
#
# You will replay both halves with your own code: the crisis (modules 01-03) and the solution,
# a hidden layer trained by **your** autograd, losses and optimizers (modules 04-07).
#
# ## What you deliver
#
# 1. **The crisis (model)**: a single-layer perceptron that learns AND and OR perfectly, and
#    never does better than 75% on XOR.
# 2. **The solution (training)**: a network with one hidden layer, trained by backpropagation,
#    that gets XOR 100% right in every one of at least 3 seeds.
# 3. **Visualisation**: both decision boundaries, and the loss curves, as PNG images.
# 4. **Systems analysis**: the memory of one training step (forward + backward) across batch
#    sizes - backprop keeps every activation for the backward pass, so it grows linearly.
# 5. **Comparison**: 2 vs 8 hidden units, over several seeds: how often does each succeed?
#
# This notebook is more open than milestone 01: the TODO cells say what to build, and you
# decide how. `tito milestone submit 02` runs it top to bottom and measures each deliverable.

# %% [markdown]
# ## 0. Setup
#
# The first cell only acts on Google Colab (it installs TinyTorch and puts your workspace on the
# path). The second checks that `tinytorch` is your package, with modules 01-07.

# %%
import sys

if "google.colab" in sys.modules:  # Colab only: a no-op in Jupyter, VS Code and tito
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "tinytorch"], check=True)
    WORKSPACE = "/content/drive/MyDrive/my-tinytorch"  # where your workspace is: edit this
    sys.path.insert(0, WORKSPACE)

# %%
import numpy as np

from tito.milestone_work import Notebook
from tito.milestones.common import accuracy, plot_decision_boundary, plot_learning_curves

nb = Notebook("02")  # checks your tinytorch: modules 01-07

from tinytorch.activations import Tanh
from tinytorch.layers import Linear, Sequential
from tinytorch.losses import BCEWithLogitsLoss
from tinytorch.optimizers import Adam
from tinytorch.tensor import Tensor, manual_seed, no_grad

# %% [markdown]
# ## 1. Four points
#
# | x1 | x2 | AND | OR | XOR |
# |---|---|---|---|---|
# | 0 | 0 | 0 | 0 | 0 |
# | 0 | 1 | 0 | 1 | 1 |
# | 1 | 0 | 0 | 1 | 1 |
# | 1 | 1 | 1 | 1 | 0 |
#
# A perceptron answers $[w_1 x_1 + w_2 x_2 + b > 0]$: one straight line through the square.
# For XOR, the two "1" rows need $w_2 + b > 0$ and $w_1 + b > 0$; adding them,
# $w_1 + w_2 + 2b > 0$. The two "0" rows need $b \le 0$ and $w_1 + w_2 + b \le 0$; adding
# those, $w_1 + w_2 + 2b \le 0$. Both cannot hold: at most 3 of the 4 points are ever right.

# %%
X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)  # (4, 2)
GATES = {"and": np.array([0, 0, 0, 1], np.float32), "or": np.array([0, 1, 1, 1], np.float32),
         "xor": np.array([0, 1, 1, 0], np.float32)}


def predict(model, x: np.ndarray) -> np.ndarray:
    """(N,) answers in {0, 1}: is the model's output positive?"""
    with no_grad():
        return (model(Tensor(x)).numpy().reshape(-1) > 0).astype(np.float32)


# %% [markdown]
# ## 2. The crisis
#
# Train a single perceptron - one `Linear(2, 1)` from your layers, starting at zero - with
# Rosenblatt's rule (milestone 01): visit the 4 points in a random order each epoch, and only
# when the answer is wrong, $w \leftarrow w + \eta (y - \hat y) x$, $b \leftarrow b + \eta
# (y - \hat y)$. Keep the **best** accuracy reached after any epoch, and the weights that
# reached it.
#
# **TODO**: write `train_perceptron(y, epochs, seed)` returning `(model, best_acc)`, the model
# holding the best weights found. It must learn AND and OR (100%), and XOR will stay at 75%.

# %% todo="train_perceptron"
def train_perceptron(y: np.ndarray, epochs: int = 100, seed: int = 0):
    """Rosenblatt's rule on the 4 points -> (a Linear(2, 1) with the best weights, best acc)."""
    # TODO: model = Linear(2, 1), weight and bias set to zero
    # TODO: each epoch: every point in a random order; update only the mistakes
    # TODO: after each epoch, keep the best accuracy and a copy of the weights that gave it
    raise NotImplementedError("TODO: Rosenblatt's rule on the four points")


# %%
perceptrons, crisis = {}, {}
for gate, y in GATES.items():
    perceptrons[gate], crisis[f"{gate}_acc"] = train_perceptron(y)
    nb.save_predictions(f"perceptron_{gate}", predict(perceptrons[gate], X))
    print(f"{gate.upper():3s}: best accuracy of a single perceptron {crisis[f'{gate}_acc']:.0%}")
nb.save_model("perceptron", perceptrons["xor"])
nb.save("crisis", crisis)

# %% [markdown]
# ## 3. The way out: a hidden layer and backpropagation
#
# Two layers can draw two lines and combine them. With a hidden layer of $H$ units,
#
# $$h = \tanh(x W_1^\top + b_1) \;(4, H), \qquad z = h W_2^\top + b_2 \;(4, 1), \qquad
#   L = \mathrm{BCEWithLogits}(z, y)$$
#
# and the gradients of $L$ with respect to all four parameter tensors come from your autograd
# (module 06): `loss.backward()`. An optimizer (module 07) takes the step.
#
# **TODO**: write `train_network(hidden, seed, steps)`: seed your framework
# (`manual_seed(seed)`), build the network from your layers, train it on the 4 XOR points
# (full batch, e.g. Adam with lr 0.05 for 300 steps) and return `(model, losses)`, one loss
# per step.

# %% todo="train_network"
def train_network(hidden: int = 8, seed: int = 0, steps: int = 300):
    """A hidden layer trained by backprop on XOR -> (model, [loss per step])."""
    # TODO: manual_seed(seed); model = Sequential(Linear(2, hidden), Tanh(), Linear(hidden, 1))
    # TODO: loss_fn = BCEWithLogitsLoss(); optimizer = Adam(model.parameters(), lr=0.05)
    # TODO: each step: zero_grad, forward, loss, backward, step; keep loss.item()
    raise NotImplementedError("TODO: train a hidden layer by backpropagation")


# %% [markdown]
# Train it with at least 3 seeds: a success that depends on luck is not a solution.

# %%
SEEDS = [0, 1, 2, 3, 4]
runs = {}
for seed in SEEDS:
    net, losses = train_network(8, seed)
    runs[seed] = {"curve": losses, "final_acc": accuracy(predict(net, X), GATES["xor"])}
    print(f"seed {seed}: XOR {runs[seed]['final_acc']:.0%}, loss {losses[0]:.3f} -> {losses[-1]:.4f}")
    if seed == SEEDS[0]:
        solved = net
nb.save_model("network", solved)
nb.save_predictions("network_xor", predict(solved, X))
nb.save("solution", {"seeds_tried": len(SEEDS), "loss": runs[SEEDS[0]]["curve"],
                     "min_seed_acc": min(r["final_acc"] for r in runs.values()),
                     "final_acc": {str(s): r["final_acc"] for s, r in runs.items()}})

# %% [markdown]
# ## 4. Visualisation
#
# **TODO**: save three plots with `nb.path(...)`: `crisis_boundary.png` (the perceptron's best
# line on XOR), `solution_boundary.png` (the network's boundary) and `loss_curves.png` (the
# loss per step of every seed). `plot_decision_boundary` and `plot_learning_curves` are given
# (see milestone 01 for how they are called).

# %% todo="plots"
# TODO: the three plots
raise NotImplementedError("TODO: the plots")

# %%
nb.show("crisis_boundary.png", "solution_boundary.png", "loss_curves.png")

# %% [markdown]
# ## 5. Systems analysis: what backprop costs in memory
#
# The perceptron's rule needs nothing but the current point. Backpropagation needs, for the
# backward pass, every intermediate result of the forward pass: $h$ before and after the tanh,
# the logits. So the memory of one training step grows with the batch. Measure it: the peak
# bytes `tracemalloc` sees during forward + loss + backward, for noisy copies of the XOR
# points in batches of growing size.
#
# **TODO**: fill `peaks` with `peak_step_bytes(model, b)` for every `b` in `BATCH_SIZES`.

# %%
import tracemalloc


def peak_step_bytes(model, batch_size: int) -> int:
    """Peak bytes allocated by one forward + loss + backward on `batch_size` points."""
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 4, batch_size)
    x = Tensor(X[idx] + rng.normal(0, 0.05, (batch_size, 2)).astype(np.float32))
    y = Tensor(GATES["xor"][idx].reshape(-1, 1))
    model.zero_grad()
    tracemalloc.start()
    tracemalloc.reset_peak()
    BCEWithLogitsLoss()(model(x), y).backward()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


BATCH_SIZES = [64, 128, 256, 512, 1024, 2048, 4096]

# %% todo="memory"
# TODO: peaks = [...]
raise NotImplementedError("TODO: the memory profile")

# %%
slope = np.polyfit(BATCH_SIZES, peaks, 1)[0]
print(f"one training step: {slope:,.0f} bytes per point")
nb.save("memory", {"batch_sizes": BATCH_SIZES, "peak_bytes": peaks, "bytes_per_point": slope})

# %% [markdown]
# ## 6. Comparison: how wide must the hidden layer be?
#
# Two hidden units are, in principle, enough for XOR (one for "x1 or x2", one for "x1 and x2").
# In practice, training finds that solution less reliably.
#
# **TODO**: for 2 and for 8 hidden units, train over the 5 seeds; for each width keep the loss
# curve of its first seed (`curve`) and the mean final accuracy over the seeds (`final_acc`),
# as `comparison["hidden_2"]` and `comparison["hidden_8"]`. Plot both curves into
# `comparison.png`.

# %% todo="comparison"
comparison = {}
# TODO: for hidden in (2, 8): ...
raise NotImplementedError("TODO: the comparison")

# %%
for name, r in comparison.items():
    print(f"{name}: mean XOR accuracy over {len(SEEDS)} seeds {r['final_acc']:.0%}")
nb.show("comparison.png")
nb.save("comparison", comparison)

# %% [markdown]
# ## What you built
#
# The crisis was real: no single line computes XOR, and your perceptron proved it by measuring.
# One hidden layer, trained by your own backpropagation, solved it - at a price the perceptron
# never paid: memory that grows with the batch, because the backward pass needs what the
# forward pass computed. Milestone 03 takes the same recipe to 60,000 handwritten digits.
