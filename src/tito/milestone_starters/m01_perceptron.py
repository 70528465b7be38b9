# %% [markdown]
# # Milestone 01 - The Perceptron (1958)
#
# In 1958 Frank Rosenblatt, at the Cornell Aeronautical Laboratory, built the **Mark I
# Perceptron**: a machine that learnt from examples. It had three layers of units:
#
# - **S-units** (sensory): 400 photocells, the "retina";
# - **A-units** (association): 512 threshold units, each wired to a few photocells at
#   *random* - the wiring was fixed, set once by hand with a tangle of patch cables;
# - **R-units** (response): the output, each a weighted vote of the A-units. Only these
#   weights learnt, stored in motor-driven potentiometers.
#
# The learning rule is the one you know from the milestone run: look at an example, and only if
# the machine got it wrong, move the weights towards the right answer. Rosenblatt's
# convergence theorem says the rule finds a separating line whenever one exists - *in the space
# the R-unit sees*. The random A-units are the trick: they map the input into a much larger
# space where straight lines can do far more than in the raw input.
#
# In this notebook you rebuild that machine from **your own** modules 01-03 (Tensor,
# activations, Linear and Sequential), and use it on a problem no single line solves: two
# interleaving half-moons.
#
# ## What you deliver
#
# 1. **The model**: Rosenblatt's perceptron built from your layers: random A-units
#    (`Linear(2, 256)` + an activation, never trained) and one R-unit (`Linear(256, 1)`).
# 2. **Training**: Rosenblatt's rule, in mini-batches, to more than **95%** on held-out points.
# 3. **Visualisation**: the decision boundary and the learning curve, saved as PNG images.
# 4. **Systems analysis**: the memory one forward pass needs, measured across batch sizes:
#    it must grow linearly, and you explain the slope from the shapes.
# 5. **Comparison**: Sigmoid vs ReLU A-units: learning curves and final accuracies.
#
# `tito milestone submit 01` runs this notebook top to bottom and measures each deliverable
# (the rubric is in the README next to this file). Every cell marked **TODO** is yours; the rest
# is given. Run the cells in order.

# %% [markdown]
# ## 0. Setup
#
# On Google Colab the first cell installs TinyTorch and puts your workspace (your `tinytorch/`
# package, uploaded or on Google Drive) on the path; anywhere else it does nothing. The second
# cell checks the prerequisites: that `import tinytorch` is YOUR package and holds the modules
# this milestone needs.

# %%
import sys

if "google.colab" in sys.modules:  # Colab only: a no-op in Jupyter, VS Code and tito
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "tinytorch"], check=True)
    WORKSPACE = "/content/drive/MyDrive/my-tinytorch"  # where your workspace is: edit this
    sys.path.insert(0, WORKSPACE)

# %%
import numpy as np

from tito.milestone_work import Notebook, make_moons
from tito.milestones.common import accuracy, plot_decision_boundary, plot_learning_curves

nb = Notebook("01")  # checks your tinytorch: modules 01-03

from tinytorch.activations import ReLU, Sigmoid
from tinytorch.layers import Linear, Sequential
from tinytorch.tensor import Tensor, no_grad

# %% [markdown]
# ## 1. The data: two moons
#
# Two half circles that interlock: the upper moon (label 0) and the lower one (label 1), with
# a little Gaussian noise. No straight line separates them - a perceptron on the raw (x, y)
# coordinates gets about 85% at best. `make_moons` is given; `tito` uses the same generator for
# its own held-out points when it grades your predictions.

# %%
x_train, y_train = make_moons(1000, seed=0)  # (1000, 2) float32, (1000,) labels 0/1
x_test, y_test = make_moons(1000, seed=1)  # held out: never used for training
print(x_train.shape, y_train.shape, "class balance:", y_train.mean())

# %% [markdown]
# ## 2. The model: S -> A -> R
#
# The A-units are a `Linear(2, 256)` whose weights are drawn at random and **never trained**,
# followed by an activation. The R-unit is a `Linear(256, 1)` that starts at zero, as
# Rosenblatt's potentiometers did, and fires when its output is positive:
#
# $$\hat y = [\, w \cdot a + b > 0 \,], \qquad a = \sigma(W_A x + b_A) \in \mathbb{R}^{256}$$
#
# **TODO**: build the R-unit (zero weight and bias) and return the three layers as one
# `Sequential(a_units, activation, r_unit)`.

# %% todo="build_perceptron"
HIDDEN = 256


def build_perceptron(activation, hidden: int = HIDDEN, seed: int = 0):
    """Rosenblatt's perceptron: A-units (random, fixed) -> activation -> R-unit (learnt)."""
    rng = np.random.default_rng(seed)
    a_units = Linear(2, hidden)
    a_units.weight.data[...] = rng.normal(0.0, 2.0, size=(hidden, 2))  # random wiring
    a_units.bias.data[...] = rng.uniform(-3.0, 3.0, size=hidden)  # random thresholds
    # TODO: r_unit = a Linear(hidden, 1) with its weight and bias set to zero
    # TODO: return Sequential(a_units, activation, r_unit)
    raise NotImplementedError("TODO: build the R-unit and return the Sequential")


def predict(model, x: np.ndarray) -> np.ndarray:
    """The perceptron's answers (N,) in {0, 1}: does the R-unit fire?"""
    with no_grad():
        return (model(Tensor(x)).numpy().reshape(-1) > 0).astype(np.float32)


model = build_perceptron(ReLU())
print(model)
print("untrained accuracy:", accuracy(predict(model, x_test), y_test))

# %% [markdown]
# ## 3. Rosenblatt's rule, one mini-batch at a time
#
# For a batch of B points with A-unit outputs $a$ (B, 256) and labels $y$ (B,):
#
# $$e = y - \hat y \in \{-1, 0, +1\}, \qquad w \leftarrow w + \frac{\eta}{B} e^\top a, \qquad
#   b \leftarrow b + \eta\, \overline{e}$$
#
# A right answer ($e = 0$) changes nothing; a missed 1 pushes $w$ towards $a$, a false alarm
# pushes it away. Only the R-unit learns: the A-units keep their random wiring.
#
# **TODO**: write `rosenblatt_step`. Compute inside `no_grad()` (nothing here needs a graph)
# and write the new weights in place, e.g. `r_unit.weight.data[...] = new_w.numpy()`.

# %% todo="rosenblatt_step"
def rosenblatt_step(model, xb: np.ndarray, yb: np.ndarray, lr: float = 0.1) -> int:
    """One mini-batch of Rosenblatt's rule on the R-unit; returns the batch's mistakes."""
    a_units, activation, r_unit = model[0], model[1], model[2]
    with no_grad():
        a = activation(a_units(Tensor(xb)))  # (B, H): what the R-unit sees
        # TODO: y_hat (B, 1): 1.0 where r_unit(a) > 0, else 0.0
        # TODO: err = y - y_hat (B, 1), with y = Tensor(yb.reshape(-1, 1))
        # TODO: r_unit.weight <- weight + lr / B * err^T a      (1, H)
        # TODO: r_unit.bias   <- bias + lr * mean(err)          (1,)
        # TODO: return the number of mistakes (entries of err that are not 0)
        raise NotImplementedError("TODO: Rosenblatt's rule")


# %% [markdown]
# ## 4. Training
#
# An epoch visits the 1,000 training points in a fresh random order, 32 at a time. We keep the
# fraction of mistakes per epoch (the perceptron's "loss") and the accuracy on both sets.
#
# **TODO**: the loop body - one `rosenblatt_step` per mini-batch, adding up the mistakes.

# %% todo="train"
def train(model, epochs: int = 30, batch: int = 32, lr: float = 0.1, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    history = {"mistakes": [], "train_acc": [], "test_acc": []}
    for epoch in range(epochs):
        order = rng.permutation(len(x_train))
        mistakes = 0
        for i in range(0, len(x_train), batch):
            idx = order[i:i + batch]
            # TODO: one step of Rosenblatt's rule on x_train[idx], y_train[idx]; count mistakes
            raise NotImplementedError("TODO: the training loop")
        history["mistakes"].append(mistakes / len(x_train))
        history["train_acc"].append(accuracy(predict(model, x_train), y_train))
        history["test_acc"].append(accuracy(predict(model, x_test), y_test))
    return history


# %%
model = build_perceptron(ReLU())
history = train(model)
test_acc = history["test_acc"][-1]
print(f"after {len(history['mistakes'])} epochs: train {history['train_acc'][-1]:.1%}, "
      f"held out {test_acc:.1%}")

nb.save_model("perceptron", model)
nb.save_predictions("perceptron", predict(model, nb.evaluation_inputs()))  # tito's held-out set
nb.save("training", {"mistakes": history["mistakes"], "train_acc": history["train_acc"][-1],
                     "test_acc": test_acc})

# %% [markdown]
# ## 5. Visualisation
#
# The decision boundary: the plane coloured by what the perceptron answers, with the points on
# top. A single line could never draw this curve - the random A-units make it possible. Then
# the learning curve: mistakes per epoch and the accuracies.

# %%
plot_decision_boundary(nb.path("decision_boundary.png"), lambda g: predict(model, g),
                       x_train, y_train, f"Perceptron on two moons: held out {test_acc:.1%}",
                       x_test[:300], y_test[:300])
plot_learning_curves(nb.path("learning_curves.png"),
                     {"mistakes per epoch": history["mistakes"],
                      "train acc": history["train_acc"], "test acc": history["test_acc"]},
                     "Rosenblatt's rule on two moons")
nb.show("decision_boundary.png", "learning_curves.png")

# %% [markdown]
# ## 6. Systems analysis: memory across batch sizes
#
# How much memory does one forward pass need? NumPy reports its allocations to Python's
# `tracemalloc`, so the peak during `model(x)` is measurable. Each point in a batch needs its
# A-unit pre-activations (H floats), their activations (H floats) and one output, 4 bytes each:
#
# $$\text{bytes per point} \approx (2H + 1) \times 4 = 2{,}052 \text{ for } H = 256$$
#
# The weights (about 4 KB) do not grow with the batch; the activations do. So the peak should
# be a straight line in the batch size, with that slope.
#
# **TODO**: measure `peak_forward_bytes` at every batch size in `BATCH_SIZES`, and compute the
# predicted bytes per point from the shapes.

# %%
import tracemalloc


def peak_forward_bytes(model, batch_size: int) -> int:
    """The peak bytes allocated during one forward pass of `batch_size` points."""
    x = Tensor(np.zeros((batch_size, 2), dtype=np.float32))
    tracemalloc.start()
    tracemalloc.reset_peak()
    with no_grad():
        model(x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


BATCH_SIZES = [32, 64, 128, 256, 512, 1024, 2048, 4096]

# %% todo="memory"
# TODO: peaks = [peak_forward_bytes(model, b) for each b in BATCH_SIZES]
# TODO: predicted = bytes per point from the shapes (see the formula above)
raise NotImplementedError("TODO: the memory profile")

# %%
slope = np.polyfit(BATCH_SIZES, peaks, 1)[0]
print(f"measured {slope:,.0f} bytes per point, predicted {predicted:,}")
for b, p in zip(BATCH_SIZES, peaks):
    print(f"  batch {b:5d}: {p / 1024:8.1f} KB")
nb.save("memory", {"batch_sizes": BATCH_SIZES, "peak_bytes": peaks,
                   "bytes_per_point": slope, "predicted_bytes_per_point": predicted})

# %% [markdown]
# ## 7. Comparison: Sigmoid vs ReLU A-units
#
# Rosenblatt's A-units were hard thresholds. Which smooth activation gives the R-unit the more
# useful view of the plane: a Sigmoid (saturates at 0 and 1) or a ReLU (linear above zero)?
# Train the same perceptron (same random wiring, same seed) with each, and compare.
#
# **TODO**: for each of `"sigmoid"` and `"relu"`, build a perceptron with that activation,
# train it, and keep its test-accuracy curve and final test accuracy in `comparison`.

# %% todo="comparison"
comparison = {}  # {"sigmoid": {"curve": [...], "final_acc": ...}, "relu": {...}}
# TODO: for name, activation in (("sigmoid", Sigmoid()), ("relu", ReLU())): ...
raise NotImplementedError("TODO: the comparison")

# %%
for name, result in comparison.items():
    print(f"{name:8s} final held-out accuracy {result['final_acc']:.1%}")
plot_learning_curves(nb.path("comparison.png"),
                     {f"{name} test acc": r["curve"] for name, r in comparison.items()},
                     "Sigmoid vs ReLU A-units")
nb.show("comparison.png")
nb.save("comparison", comparison)

# %% [markdown]
# ## What you built
#
# A 1958 machine, in your own framework: random fixed features and one learnt linear unit.
# The memory profile showed the systems rule you will meet again at every scale - weights are
# a fixed cost, **activations grow with the batch**. In milestone 02 you will see why a single
# trained layer was not enough, and what Minsky and Papert's critique did to the field.
