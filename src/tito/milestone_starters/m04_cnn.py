# %% [markdown]
# # Milestone 04 - The CNN Revolution (1998)
#
# In 1998 Yann LeCun, Léon Bottou, Yoshua Bengio and Patrick Haffner published *Gradient-based
# learning applied to document recognition*. Its network, **LeNet-5**, was already reading
# about one in ten cheques written in the United States. The idea is an old one from vision
# research: a small detector (a 5 x 5 filter) slides over the whole image, so the same weights
# find a stroke wherever it is, and layers of such detectors build strokes into shapes into
# digits. Fourteen years later a much larger network of the same kind, AlexNet, won ImageNet,
# and deep learning took over computer vision.
#
# You will train LeNet-5 on MNIST to LeCun's accuracy, then a modern small CNN on CIFAR-10
# colour photos - with your own convolutions (module 09) and everything before them.
#
# ## What you deliver
#
# 1. **The model**: LeNet-5 from your layers and convolutions, at least **99.0%** on the MNIST
#    test set (quick rehearsal: 90% on 2,000 images).
# 2. **Training**: a CNN on CIFAR-10 at **75%** on its test set (quick: 30% on 1,000), with a
#    training loss that falls.
# 3. **Visualisation**: the first layer's filters, its feature maps for one digit, and learning
#    curves for both networks, as PNG images.
# 4. **Systems analysis**: LeNet's parameter count from its shapes, and the memory of a
#    forward pass across batch sizes (linear growth).
# 5. **Comparison**: an MLP vs a CNN on the same images and epochs: curves and accuracies.
#
# The full run takes a while on a laptop CPU (about 3 min for LeNet and 25 min for CIFAR-10
# on 2 cores); `tito milestone submit 04 --quick` rehearses everything on a few thousand images
# in a few minutes. The TODO cells say what to deliver; the design is yours.

# %% [markdown]
# ## 0. Setup
#
# On Colab only, the first cell installs TinyTorch, puts your workspace on the path and
# downloads MNIST and CIFAR-10. The second checks that `tinytorch` is your package, with
# modules 01-09.

# %%
import sys

if "google.colab" in sys.modules:  # Colab only: a no-op in Jupyter, VS Code and tito
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "tinytorch"], check=True)
    WORKSPACE = "/content/drive/MyDrive/my-tinytorch"  # where your workspace is: edit this
    sys.path.insert(0, WORKSPACE)
    for name in ("mnist", "cifar-10"):
        subprocess.run(["tito", "data", "download", name], check=True)

# %%
import numpy as np

from tito.milestone_work import Notebook
from tito.milestones.common import accuracy, plot_confusion_matrix, plot_learning_curves
from tito.milestones.m04_cnn import AugmentedLoader, logits_of, plot_feature_maps, plot_filters

nb = Notebook("04")  # checks your tinytorch: modules 01-09

from tinytorch.activations import ReLU
from tinytorch.convolutions import AdaptiveAvgPool2d, BatchNorm2d, Conv2d, MaxPool2d
from tinytorch.datasets import load_cifar10, load_mnist
from tinytorch.layers import Flatten, Linear, Sequential
from tinytorch.losses import CrossEntropyLoss
from tinytorch.optimizers import SGD, Adam, WarmupCosine
from tinytorch.tensor import Tensor, manual_seed, no_grad
from tinytorch.training import Trainer
from tinytorch.transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip, normalize

# %% [markdown]
# ## 1. The data
#
# Images stay uint8 until a batch is used: `AugmentedLoader(images, labels, pipeline, batch,
# seed)` (given) draws shuffled batches with your `DataLoader` and sends each through a
# pipeline from `tinytorch.transforms` - `Normalize(mean, std)` scales to [0, 1] and
# standardises, `RandomCrop(p)` shifts by up to p pixels, `RandomHorizontalFlip()` mirrors.
# `normalize(images, mean, std)` does the same to a whole test set: (N, C, H, W) float32.

# %%
MNIST_NORM = ((0.1307,), (0.3081,))
CIFAR_NORM = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))

mnist_train, mnist_train_labels = load_mnist("train")  # uint8 (60000, 28, 28)
mnist_test, mnist_test_labels = load_mnist("test")
n, m = nb.limit(60000, 6000), nb.limit(10000, 2000)
mnist_train, mnist_train_labels = mnist_train[:n], mnist_train_labels[:n]
mnist_test, mnist_test_labels = mnist_test[:m], mnist_test_labels[:m]
x_mnist_test = normalize(mnist_test, *MNIST_NORM)  # (m, 1, 28, 28)

cifar_train, cifar_train_labels = load_cifar10("train")  # uint8 (50000, 32, 32, 3)
cifar_test, cifar_test_labels = load_cifar10("test")
n, m = nb.limit(50000, 2000), nb.limit(10000, 1000)
cifar_train, cifar_train_labels = cifar_train[:n], cifar_train_labels[:n]
cifar_test, cifar_test_labels = cifar_test[:m], cifar_test_labels[:m]
x_cifar_test = normalize(cifar_test, *CIFAR_NORM)  # (m, 3, 32, 32)
print(f"MNIST {len(mnist_train):,} / {len(mnist_test):,}, "
      f"CIFAR-10 {len(cifar_train):,} / {len(cifar_test):,} (train / test)")


def classify(model, x: np.ndarray) -> np.ndarray:
    """Predicted classes (N,) for normalised images, in eval mode, without a graph."""
    return logits_of(model, x).argmax(axis=1)


# %% [markdown]
# ## 2. LeNet-5
#
# LeCun's network, with ReLU and max-pooling in place of its tanh and subsampling, and padding
# 2 in place of its 32 x 32 frame:
#
#     (B, 1, 28, 28) -> Conv 6@5x5, pad 2 -> ReLU -> MaxPool 2      (B, 6, 14, 14)
#                    -> Conv 16@5x5 -> ReLU -> MaxPool 2             (B, 16, 5, 5)
#                    -> Flatten 400 -> Linear 120 -> ReLU -> Linear 84 -> ReLU -> Linear 10
#
# Adam (lr 2e-3) with a warm-up then cosine schedule (`WarmupCosine`, stepped every batch), and
# random shifts of up to 2 pixels (`RandomCrop(2)`), reach 99% in about 12 epochs.
#
# **TODO**: `build_lenet()`, and train it for `EPOCHS_LENET` epochs, filling `lenet_history`
# (`train_loss` and `test_acc` per epoch).

# %% todo="lenet"
def build_lenet():
    # TODO: the network above, from your Conv2d, MaxPool2d, Flatten, Linear, ReLU, Sequential
    raise NotImplementedError("TODO: LeNet-5")


EPOCHS_LENET = nb.limit(12, 2)
manual_seed(0)
lenet = build_lenet()
lenet_history = {"train_loss": [], "test_acc": []}
# TODO: train lenet on mnist_train for EPOCHS_LENET epochs (e.g. your Trainer with an
# TODO: AugmentedLoader), appending to lenet_history after every epoch
raise NotImplementedError("TODO: train LeNet-5")

# %%
lenet_pred = classify(lenet, x_mnist_test)
lenet_acc = accuracy(lenet_pred, mnist_test_labels)
print(f"LeNet-5: {lenet_acc:.2%} on {len(mnist_test):,} MNIST test images")
nb.save_model("lenet", lenet)
nb.save_predictions("lenet", lenet_pred)
nb.save("lenet", {"train_loss": lenet_history["train_loss"], "test_acc": lenet_acc})

# %% [markdown]
# ## 3. A CNN on CIFAR-10
#
# Photos are harder than digits: colour, backgrounds, objects at any scale. Four blocks of
# 3x3 convolution -> BatchNorm -> ReLU, the width doubling as max-pooling halves the
# resolution, then a global average pool and one linear layer:
#
#     (B, 3, 32, 32) -> block 32 -> MaxPool -> block 64 -> MaxPool -> block 128 -> MaxPool
#                    -> block 256 -> AdaptiveAvgPool2d(1) -> Flatten -> Linear 10
#
# SGD with Nesterov momentum 0.9 (lr 0.1, weight decay 5e-4), `WarmupCosine`, label
# smoothing 0.1, random crops (4 px) and flips reach about 80% in 12 epochs. In the quick
# rehearsal, train without augmentation or smoothing.
#
# **TODO**: `build_cifar_cnn()`, and train it for `EPOCHS_CIFAR` epochs, filling
# `cifar_history` (`train_loss` and `test_acc` per epoch).

# %% todo="cifar"
def build_cifar_cnn():
    # TODO: the network above (Conv2d(..., 3, padding=1, bias=False) then BatchNorm2d per block)
    raise NotImplementedError("TODO: the CIFAR-10 CNN")


EPOCHS_CIFAR = nb.limit(12, 8)
manual_seed(0)
cnn = build_cifar_cnn()
cifar_history = {"train_loss": [], "test_acc": []}
# TODO: train cnn on cifar_train for EPOCHS_CIFAR epochs, appending to cifar_history
raise NotImplementedError("TODO: train the CIFAR-10 CNN")

# %%
cifar_pred = classify(cnn, x_cifar_test)
cifar_acc = accuracy(cifar_pred, cifar_test_labels)
print(f"CIFAR-10 CNN: {cifar_acc:.2%} on {len(cifar_test):,} test images")
nb.save_model("cnn", cnn)
nb.save_predictions("cnn", cifar_pred)
nb.save("cifar", {"train_loss": cifar_history["train_loss"], "test_acc": cifar_acc})

# %% [markdown]
# ## 4. Visualisation
#
# What did the filters learn? The first layer's kernels, shown as images, are edge and stroke
# detectors; its feature maps show where in one digit each detector fires.
#
# **TODO**: save `filters.png` (`plot_filters(path, weight, title)` with LeNet's first conv
# weight), `feature_maps.png` (`plot_feature_maps(path, image, maps, title)`: one test digit
# and the first block's output for it, `lenet[:3]`), `lenet_curves.png` and `cifar_curves.png`
# (learning curves), and `confusion_matrix.png` (CIFAR-10 test set).

# %% todo="plots"
# TODO: the five plots
raise NotImplementedError("TODO: the plots")

# %%
nb.show("filters.png", "feature_maps.png", "lenet_curves.png", "cifar_curves.png",
        "confusion_matrix.png")

# %% [markdown]
# ## 5. Systems analysis: shared weights
#
# A `Conv2d(c_in, c_out, k)` holds $c_{out} c_{in} k^2 + c_{out}$ numbers however large the
# image; a `Linear` from the same input would hold one weight per pixel per output. Count
# LeNet's parameters from its shapes. Then measure what a forward pass costs in activation
# memory: each conv layer's output is (B, C, H, W), so the peak grows with the batch.
#
# **TODO**: `predicted_parameters` (LeNet, from the shapes) and `peaks`, the peak bytes of
# `peak_forward_bytes(lenet, b)` for every `b` in `BATCH_SIZES`.

# %%
import tracemalloc


def peak_forward_bytes(model, batch_size: int) -> int:
    """Peak bytes allocated by one forward pass (no graph) on `batch_size` test images."""
    x = Tensor(np.resize(x_mnist_test, (batch_size, *x_mnist_test.shape[1:])))
    model.eval()
    tracemalloc.start()
    tracemalloc.reset_peak()
    with no_grad():
        model(x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    model.train()
    return peak


BATCH_SIZES = [8, 16, 32, 64, 128, 256]

# %% todo="systems"
# TODO: predicted_parameters = ...
# TODO: peaks = [...]
raise NotImplementedError("TODO: the systems analysis")

# %%
slope = np.polyfit(BATCH_SIZES, peaks, 1)[0]
print(f"LeNet-5: {predicted_parameters:,} parameters; a forward pass: {slope / 1e3:,.1f} KB per image")
nb.save("systems", {"predicted_parameters": predicted_parameters, "batch_sizes": BATCH_SIZES,
                    "peak_bytes": peaks, "bytes_per_image": slope})

# %% [markdown]
# ## 6. Comparison: an MLP vs a CNN
#
# Does sharing weights help when both see the same data for the same time? Train an MLP
# (784 -> 256 -> 128 -> 10, milestone 03's) and LeNet-5 on the first `N_COMPARE` MNIST training
# images for `EPOCHS_COMPARE` epochs each.
#
# **TODO**: keep, per model, its loss curve (`curve`, one mean loss per epoch or per few
# batches) and its final MNIST test accuracy (`final_acc`), as `comparison["mlp"]` and
# `comparison["cnn"]`, and plot both curves into `comparison.png`.

# %% todo="comparison"
N_COMPARE, EPOCHS_COMPARE = nb.limit(10000, 2000), 2
comparison = {}
# TODO: for name in ("mlp", "cnn"): ...
raise NotImplementedError("TODO: the comparison")

# %%
for name, r in comparison.items():
    print(f"{name}: {r['final_acc']:.2%} after {EPOCHS_COMPARE} epochs on {N_COMPARE:,} images")
nb.show("comparison.png")
nb.save("comparison", comparison)

# %% [markdown]
# ## What you built
#
# LeNet-5 at LeCun's accuracy and a CIFAR-10 network of the kind that changed computer vision,
# on convolutions you wrote. Sharing weights cut the parameters by orders of magnitude; the
# activations, not the weights, are what grow with the batch - and what a GPU's memory is
# spent on. Next: attention and the Transformer (milestone 05).
