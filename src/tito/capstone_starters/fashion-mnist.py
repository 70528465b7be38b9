# %% [markdown]
# # Capstone - the best Fashion-MNIST system in 10 minutes and 1 MB
#
# Your framework, your optimisation tier, one task: classify the 10,000 Fashion-MNIST test images
# (ten kinds of clothes and shoes) as well as you can, with a training process that finishes within
# **600 seconds** (start-up, loading the data, training and saving all count) and an optimised
# system whose stored files weigh at most **1,000,000 bytes**. The design is yours: a wider MLP stored as int8 (module 15), a LeNet-5
# (module 09) pruned and compressed (module 16), a distilled student, a hand-fused forward
# (module 18) - or something nobody in the course tried.
#
# `tito capstone submit` then does what a reviewer would. It reads `TASK`, `DESCRIPTION` and your
# `CLAIMS` from this file (without running it), re-runs `train` in a clean process on your
# `tinytorch` with the fixed seed 20, rebuilds each system with `load` from its saved files alone
# in a second process, scores its predictions against the test labels itself, weighs the files,
# times the predictions, and compares everything with what you claimed. No number of yours is
# accepted without that re-run.
#
# ## The contract
#
# | name | what it is |
# |---|---|
# | `TASK` | `"fashion-mnist"` |
# | `DESCRIPTION` | your optimised system in a sentence or two: what it is, what you changed and why |
# | `CLAIMS` | what YOUR full run measured: `{"baseline": {"accuracy": ..., "size_bytes": ...}, "optimised": {...}}` |
# | `QUICK_CLAIMS` | optional: the same for `tito capstone submit --quick` (10,000 training images, 2,000 test, 120 s) |
# | `train(images, labels, seed, seconds, out)` | trains on the TRAINING split and saves `out/baseline/` and `out/optimised/`; `seconds` is what is left of the budget |
# | `load(folder)` | rebuilds one system from the files in `folder`; returns `predict(images) -> scores (n, 10)` |
#
# `images` are the raw uint8 images, shape (n, 28, 28), for training and for `predict` alike;
# `labels` are int64. Claims are compared within 0.005 accuracy (50 test images) and 1,024 bytes.
# Latency and throughput are measured and written into the submission, never claimed.
#
# The baseline below is given and works: an MLP 784-256-128-10 in float32. The cells marked
# `TODO` are yours. Run the last cell (`rehearse`) to see what submit will measure, copy its
# numbers into `CLAIMS`, and submit.

# %% [markdown]
# ## 0. Setup
#
# On Colab only, the first cell installs TinyTorch, puts your workspace on the path and downloads
# Fashion-MNIST. The second imports your framework - your `tinytorch`, modules 01-20.

# %%
import sys

if "google.colab" in sys.modules:  # Colab only: a no-op in Jupyter, VS Code and tito
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "tinytorch"], check=True)
    WORKSPACE = "/content/drive/MyDrive/my-tinytorch"  # where your workspace is: edit this
    sys.path.insert(0, WORKSPACE)
    subprocess.run(["tito", "data", "download", "fashion-mnist"], check=True)

# %%
from pathlib import Path

import numpy as np

from tinytorch.activations import ReLU
from tinytorch.capstone import BudgetClock, seed_everything, train_within
from tinytorch.layers import Linear, Sequential
from tinytorch.losses import CrossEntropyLoss
from tinytorch.optimizers import Adam
from tinytorch.tensor import Tensor, no_grad

TASK = "fashion-mnist"

# %% [markdown]
# ## 1. Your system, in words, and your claims
#
# Fill these in last: `DESCRIPTION` once your optimised system works, `CLAIMS` from the numbers
# the rehearsal at the bottom prints for a full run (`rehearse(..., quick=False)`), or from the
# `submission.json` of a quick submission for `QUICK_CLAIMS`. They must be written out as
# literals: tito reads them without running this file.

# %% todo="claims"
DESCRIPTION = ""  # TODO: what your optimised system is, and what you changed to get it
CLAIMS = None  # TODO: {"baseline": {"accuracy": ..., "size_bytes": ...}, "optimised": {...}}
QUICK_CLAIMS = None  # optional: the same for `tito capstone submit --quick`

# %% [markdown]
# ## 2. The data, as the model sees it
#
# Each image is flattened to 784 pixels, scaled to [0, 1] and standardised with Fashion-MNIST's
# mean and standard deviation. `predict` receives raw uint8 images too, so the same `prepare` runs
# there - a system is its preprocessing as well as its weights.

# %%
MEAN, STD = 0.2860, 0.3530


def prepare(images: np.ndarray) -> np.ndarray:
    """uint8 (n, 28, 28) -> float32 (n, 784), standardised."""
    x = images.reshape(len(images), -1).astype(np.float32) / 255.0
    return (x - MEAN) / STD


def fit(model, x, y, rng, steps, clock, reserve_s=30.0, batch=128, lr=1e-3):
    """Adam on random mini-batches for a fixed number of steps; the clock only stops a run that
    would not fit (module 20's train_within: reproducible when it stops by max_steps)."""
    opt, loss_fn = Adam(model.parameters(), lr=lr), CrossEntropyLoss()
    model.train()

    def step():
        idx = rng.integers(0, len(x), batch)
        loss = loss_fn(model(Tensor(x[idx])), Tensor(y[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return train_within(step, clock, reserve_s=reserve_s, max_steps=steps)


def predictor_of(model):
    """predict(images) for tito: eval mode, no_grad, raw uint8 images in, scores out."""
    model.eval()

    def predict(images):
        with no_grad():
            return model(Tensor(prepare(images))).data

    return predict


# %% [markdown]
# ## 3. The baseline (given)
#
# An MLP 784-256-128-10, float32, Adam at 1e-3 for `BASELINE_STEPS` steps of 128 images, saved as
# an `.npz` of its state_dict: 235,146 parameters, about 941 KB - inside the size budget, barely.
# It is the reference your optimised system is compared with.

# %%
BASELINE_STEPS = 1500


def build_baseline():
    return Sequential(Linear(784, 256), ReLU(), Linear(256, 128), ReLU(), Linear(128, 10))


def train_baseline(x, y, rng, clock, out: Path):
    model = build_baseline()
    log = fit(model, x, y, rng, BASELINE_STEPS, clock)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "weights.npz", **model.state_dict())
    return log


def load_baseline(folder: Path):
    model = build_baseline()
    with np.load(Path(folder) / "weights.npz") as z:
        model.load_state_dict({k: z[k] for k in z.files})
    return predictor_of(model)


# %% [markdown]
# ## 4. Your optimised system
#
# Write `train_optimised` (train within what is left of `clock`, then save every file the system
# needs into `out`) and `load_optimised` (rebuild it from those files alone: submit calls it in a
# fresh process, after training is over). Measure before you optimise: module 14's profiler says
# where the time goes, module 15 makes weights 4x smaller, module 16 removes the ones that do not
# matter, module 18 makes the forward cheaper, module 19 says whether it was worth it.
# `stored_bytes(out)` (module 20) is what the size budget counts.

# %% todo="optimised"
def train_optimised(x, y, rng, clock, out: Path):
    raise NotImplementedError("TODO: train your optimised system within `clock` and save its files into `out`")


def load_optimised(folder: Path):
    raise NotImplementedError("TODO: rebuild your optimised system from the files in `folder`; "
                              "return predict(images) -> scores (n, 10)")


# %% [markdown]
# ## 5. The contract (given)
#
# `train` is what submit runs in the training process: one seed for everything, one budget
# clock for both systems, the baseline first. `load` picks the system by its folder's name.

# %%
def train(images, labels, seed, seconds, out):
    rng = seed_everything(seed)
    clock = BudgetClock(seconds)
    x = prepare(images)
    base = train_baseline(x, labels, rng, clock, Path(out) / "baseline")
    opt = train_optimised(x, labels, rng, clock, Path(out) / "optimised")
    print(f"baseline: {base.steps} steps ({base.stopped}); optimised: "
          f"{getattr(opt, 'steps', '?')} steps; {clock.elapsed():.1f} s of {seconds:.0f} s")


def load(folder):
    folder = Path(folder)
    return {"baseline": load_baseline, "optimised": load_optimised}[folder.name](folder)


# %% [markdown]
# ## 6. Rehearse
#
# `rehearse` trains, saves, reloads and measures in this notebook, the way submit does in two
# fresh processes, and prints the numbers to claim. `quick=True` is the small rehearsal (claim
# its numbers as `QUICK_CLAIMS`); `quick=False` the full task (`CLAIMS`). Then, in a terminal:
# `tito capstone submit --quick`, and `tito capstone submit`.

# %%
if __name__ == "__main__":
    from tito.capstone import rehearse

    measured = rehearse(train, load, TASK, quick=True)
