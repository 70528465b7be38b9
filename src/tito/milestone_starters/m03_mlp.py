# %% [markdown]
# # Milestone 03 - The MLP Revival (1986)
#
# In 1986 David Rumelhart, Geoffrey Hinton and Ronald Williams published *Learning
# representations by back-propagating errors* in Nature. The chain rule had been applied to
# networks before, but their paper showed what it buys: the hidden units of a multi-layer
# network learn **their own features**, the ones the task needs, instead of features designed by
# hand. Three years later Yann LeCun's group used the method to read handwritten zip codes for
# the US Postal Service. Neural networks were back.
#
# In this notebook you train a multi-layer perceptron on **MNIST** - 60,000 handwritten digits
# of 28 x 28 pixels, the data set that became the field's "hello world" - with every piece of
# your framework: tensors, activations, layers, the cross-entropy loss, the data loader,
# autograd, Adam and the training loop (modules 01-08).
#
# ## What you deliver
#
# 1. **The model**: an MLP built from your layers, e.g. 784 -> 256 -> 128 -> 10 with ReLUs.
# 2. **Training**: at least **98.0%** on the 10,000 test images (the quick rehearsal: 90%
#    on 2,000), with a training loss that falls.
# 3. **Visualisation**: learning curves, the confusion matrix and misclassified digits.
# 4. **Systems analysis**: the parameter count, worked out from the layer shapes, and the
#    memory of one training step across batch sizes (linear growth).
# 5. **Comparison**: SGD vs Adam on the same model and data: learning curves and accuracies.
#
# This milestone is open: the TODO cells say what to deliver, the design is yours.
# `tito milestone submit 03` runs the notebook top to bottom (quick rehearsal:
# `tito milestone submit 03 --quick`, fewer images and epochs) and measures each deliverable.

# %% [markdown]
# ## 0. Setup
#
# On Colab only, the first cell installs TinyTorch, puts your workspace on the path and
# downloads MNIST. The second checks that `tinytorch` is your package, with modules 01-08.

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

import numpy as np

from tito.milestone_work import Notebook
from tito.milestones.common import (accuracy, plot_confusion_matrix, plot_learning_curves,
                                    plot_misclassified)

nb = Notebook("03")  # checks your tinytorch: modules 01-08

from tinytorch.activations import ReLU
from tinytorch.dataloader import DataLoader, TensorDataset
from tinytorch.datasets import load_mnist
from tinytorch.layers import Linear, Sequential
from tinytorch.losses import CrossEntropyLoss
from tinytorch.optimizers import SGD, Adam, CosineAnnealingLR
from tinytorch.tensor import Tensor, manual_seed, no_grad
from tinytorch.training import Trainer

# %% [markdown]
# ## 1. The data
#
# Each image is flattened to 784 pixels, scaled to [0, 1] and standardised with MNIST's mean
# (0.1307) and standard deviation (0.3081), so every input starts near zero mean and unit
# variance. The quick rehearsal (`nb.quick`) uses 20,000 training and 2,000 test images.

# %%
MEAN, STD = 0.1307, 0.3081
images, labels = load_mnist("train")  # uint8 (60000, 28, 28), int64 (60000,)
test_images, test_labels = load_mnist("test")  # (10000, 28, 28), (10000,)
n_train, n_test = nb.limit(60000, 20000), nb.limit(10000, 2000)
images, labels = images[:n_train], labels[:n_train]
test_images, test_labels = test_images[:n_test], test_labels[:n_test]


def flatten(imgs: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> standardised float32 (N, 784)."""
    return ((imgs.reshape(len(imgs), -1).astype(np.float32) / 255.0) - MEAN) / STD


x_train, x_test = flatten(images), flatten(test_images)
print(f"{len(x_train):,} training and {len(x_test):,} test images, {x_train.shape[1]} pixels each")


def classify(model, x: np.ndarray, batch: int = 2000) -> np.ndarray:
    """Predicted digits (N,): the argmax of the outputs, in eval mode, without a graph."""
    model.eval()
    with no_grad():
        out = [model(Tensor(x[i:i + batch])).numpy().argmax(axis=1)
               for i in range(0, len(x), batch)]
    model.train()
    return np.concatenate(out)


# %% [markdown]
# ## 2. The model
#
# A multi-layer perceptron: linear layers with ReLUs between them, ten outputs (one logit per
# digit; `CrossEntropyLoss` applies the softmax itself). 784 -> 256 -> 128 -> 10 reaches 98% in
# about 15 epochs of Adam; you may choose another design.
#
# **TODO**: `build_mlp()` returns your model, built from your layers.

# %% todo="build_mlp"
def build_mlp():
    # TODO: return Sequential(Linear(784, ...), ReLU(), ..., Linear(..., 10))
    raise NotImplementedError("TODO: the MLP")


# %% [markdown]
# ## 3. Training
#
# **TODO**: train the model on `x_train`, `labels`: shuffled mini-batches (your `DataLoader`),
# cross-entropy, an optimizer (Adam with lr 1e-3 and a cosine schedule works well), for
# `EPOCHS` epochs. Your `Trainer` can do the loop (`fit(..., on_epoch_end=...)` lets you measure
# after each epoch). Fill `history["train_loss"]` (mean loss per epoch) and
# `history["test_acc"]` (test accuracy after each epoch, with `classify`).

# %% todo="train"
EPOCHS = nb.limit(15, 3)
manual_seed(0)
model = build_mlp()
history = {"train_loss": [], "test_acc": []}
# TODO: train for EPOCHS epochs, filling history after every epoch
raise NotImplementedError("TODO: the training")

# %%
pred = classify(model, x_test)
test_acc = accuracy(pred, test_labels)
print(f"test accuracy {test_acc:.2%} after {len(history['train_loss'])} epochs")
nb.save_model("mlp", model)
nb.save_predictions("mlp", pred)
nb.save("training", {"train_loss": history["train_loss"], "test_acc_per_epoch": history["test_acc"],
                     "test_acc": test_acc})

# %% [markdown]
# ## 4. Visualisation
#
# **TODO**: save `learning_curves.png` (loss and test accuracy per epoch),
# `confusion_matrix.png` (which digit is taken for which) and `misclassified.png` (the digits
# your model gets wrong) with `nb.path(...)`. The helpers `plot_learning_curves`,
# `plot_confusion_matrix` and `plot_misclassified` are imported above.

# %% todo="plots"
# TODO: the three plots
raise NotImplementedError("TODO: the plots")

# %%
nb.show("learning_curves.png", "confusion_matrix.png", "misclassified.png")

# %% [markdown]
# ## 5. Systems analysis: parameters and memory
#
# A `Linear(n_in, n_out)` holds $n_{in} n_{out} + n_{out}$ numbers. Count your model's from the
# shapes (not from the model): that is the memory its weights take (x 4 bytes in float32), and
# what Adam keeps twice more (its two moment estimates).
#
# The activations are the other cost: one training step keeps every layer's output for the
# backward pass, so its memory grows with the batch.
#
# **TODO**: `predicted_parameters` from the shapes of your layers, and `peaks`: the peak bytes
# of one training step (`peak_step_bytes`) for every batch size in `BATCH_SIZES`.

# %%
import tracemalloc


def peak_step_bytes(model, batch_size: int) -> int:
    """Peak bytes allocated by one forward + loss + backward on `batch_size` images."""
    x, y = Tensor(x_train[:batch_size]), Tensor(labels[:batch_size])
    model.zero_grad()
    tracemalloc.start()
    tracemalloc.reset_peak()
    CrossEntropyLoss()(model(x), y).backward()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    model.zero_grad()
    return peak


BATCH_SIZES = [16, 32, 64, 128, 256, 512, 1024]

# %% todo="systems"
# TODO: predicted_parameters = ...   (from the layer shapes)
# TODO: peaks = [...]
raise NotImplementedError("TODO: the systems analysis")

# %%
slope = np.polyfit(BATCH_SIZES, peaks, 1)[0]
print(f"{predicted_parameters:,} parameters = {predicted_parameters * 4 / 1e6:.2f} MB of weights; "
      f"one training step: {slope / 1e3:,.1f} KB per image")
nb.save("systems", {"predicted_parameters": predicted_parameters, "batch_sizes": BATCH_SIZES,
                    "peak_bytes": peaks, "bytes_per_image": slope})

# %% [markdown]
# ## 6. Comparison: SGD vs Adam
#
# Plain SGD moves every weight by the same learning rate times its gradient. Adam divides each
# step by a running estimate of that gradient's size, so rarely-active weights still move.
#
# **TODO**: train a fresh model with each optimizer (`SGD(..., lr=0.05)` and
# `Adam(..., lr=1e-3)`) for one epoch on the first `N_COMPARE` training images. Keep, per
# optimizer, the loss after every 10 mini-batches (`curve`) and the final test accuracy
# (`final_acc`), in `comparison["sgd"]` and `comparison["adam"]`, and plot both curves into
# `comparison.png`.

# %% todo="comparison"
N_COMPARE = nb.limit(10000, 4000)
comparison = {}
# TODO: for name in ("sgd", "adam"): ...
raise NotImplementedError("TODO: the comparison")

# %%
for name, r in comparison.items():
    print(f"{name:5s} after one epoch on {N_COMPARE:,} images: {r['final_acc']:.2%}")
nb.show("comparison.png")
nb.save("comparison", comparison)

# %% [markdown]
# ## What you built
#
# A 1986 network on the data set that defined the next thirty years, trained end to end by your
# own framework. The parameter count told you what the model weighs; the memory profile, that
# training costs activations per example on top of that. Milestone 04 cuts the weights by
# sharing them: convolutions.
