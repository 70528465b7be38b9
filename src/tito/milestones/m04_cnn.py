"""Milestone 04 - The CNN Revolution (LeCun, Bottou, Bengio & Haffner, 1998), on YOUR modules 01-09.

"Gradient-based learning applied to document recognition": a convolution shares one small filter
across the whole image, so a network with 60,000 weights reads digits wherever they are. Both parts
train with the learner's Trainer (08), DataLoader (05), optimizers (07), autograd (06) and
convolutions (09); the accuracies are measured here, from the model's outputs.

Part 1 - LeNet-5 on MNIST, as in the paper (ReLU and max-pooling instead of tanh and subsampling;
padding 2 stands in for the paper's 32 x 32 frame):

    (B, 1, 28, 28) -> Conv 6@5x5 -> ReLU -> MaxPool 2 -> Conv 16@5x5 -> ReLU -> MaxPool 2    (B, 16, 5, 5)
                   -> Flatten 400 -> Linear 120 -> ReLU -> Linear 84 -> ReLU -> Linear 10

Adam, one-cycle schedule (warmup then cosine), batches of 128, +-2 pixel random shifts. The full
run must reach 99.0% on the 10,000 test images (LeCun et al.: 99.05%); `--quick` trains on 6,000
images for 2 epochs to 90% on 2,000.

Part 2 - a CNN on CIFAR-10 photos (32 x 32 colour, 10 classes): four conv blocks (3x3 conv ->
BatchNorm -> ReLU), the width doubling as the resolution halves:

    (B, 3, 32, 32) -> block 32 -> MaxPool -> block 64 -> MaxPool -> block 128 -> MaxPool   (B, 128, 4, 4)
                   -> block 256 -> global average pool -> Linear 10

SGD with Nesterov momentum, one-cycle schedule, label smoothing 0.1, random crops (4 px padding)
and horizontal flips. The full run must reach 75% on the test set; `--quick` trains on 2,000 images
(no augmentation, no smoothing: the loss must halve) for 8 epochs to 30%. Offline, the training
and test images are a lossy JPEG copy of CIFAR-10 (the run says so); the run also reports the
accuracy on 1,000 exact official test images (`exact_test_acc`).

Both parts also check the convolution's gradients against finite differences on one batch
(`grad_check_ok`): a backward pass that trains "somehow" with wrong gradients does not count.
"""

from __future__ import annotations

import time

import numpy as np

from tito.milestone_work import save_weights
from tito.milestones.common import (RunContext, accuracy, plot_confusion_matrix, plot_learning_curves,
                                    seed_all, watch, _pyplot)

MNIST_NORM = ((0.1307,), (0.3081,))
CIFAR_NORM = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))


# ---------------------------------------------------------------------------------------------
# The models
# ---------------------------------------------------------------------------------------------
def lenet5():
    from tinytorch.activations import ReLU
    from tinytorch.convolutions import Conv2d, MaxPool2d
    from tinytorch.layers import Flatten, Linear, Sequential

    return Sequential(Conv2d(1, 6, 5, padding=2), ReLU(), MaxPool2d(2),      # (B, 6, 14, 14)
                      Conv2d(6, 16, 5), ReLU(), MaxPool2d(2),                # (B, 16, 5, 5)
                      Flatten(), Linear(400, 120), ReLU(), Linear(120, 84), ReLU(), Linear(84, 10))


def cifar_cnn(widths=(32, 64, 128, 256)):
    from tinytorch.activations import ReLU
    from tinytorch.convolutions import AdaptiveAvgPool2d, BatchNorm2d, Conv2d, MaxPool2d
    from tinytorch.layers import Flatten, Linear, Sequential

    a, b, c, d = widths

    def block(cin, cout):
        return [Conv2d(cin, cout, 3, padding=1, bias=False), BatchNorm2d(cout), ReLU()]

    return Sequential(*block(3, a), MaxPool2d(2),                            # (B, a, 16, 16)
                      *block(a, b), MaxPool2d(2),                            # (B, b, 8, 8)
                      *block(b, c), MaxPool2d(2),                            # (B, c, 4, 4)
                      *block(c, d),                                          # (B, d, 4, 4)
                      AdaptiveAvgPool2d(1), Flatten(), Linear(d, 10))


# ---------------------------------------------------------------------------------------------
# Data: uint8 images -> (augmented) normalised float32 batches
# ---------------------------------------------------------------------------------------------
class AugmentedLoader:
    """Mini-batches for the Trainer: the learner's DataLoader draws the shuffled sample indices,
    and the uint8 images of each batch go through the augmentation pipeline (crop, flip,
    normalise; about 1 ms per batch) only when they are used."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, pipeline, batch_size: int, seed: int):
        from tinytorch.dataloader import DataLoader, TensorDataset

        self.images, self.labels, self.pipeline = images, labels, pipeline
        index = np.arange(len(images), dtype=np.int64)
        self.order = DataLoader(TensorDataset(index), batch_size=batch_size, shuffle=True, seed=seed)

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self):
        from tinytorch.tensor import Tensor

        for batch in self.order:
            idx = (batch[0] if isinstance(batch, (tuple, list)) else batch).numpy().astype(np.int64)
            yield Tensor(self.pipeline(self.images[idx])), Tensor(self.labels[idx])


def logits_of(model, x: np.ndarray, batch: int = 500) -> np.ndarray:
    """The model's outputs for normalised images, in eval mode, without a graph."""
    from tinytorch.tensor import Tensor, no_grad

    was = model.training
    model.eval()
    with no_grad():
        out = [model(Tensor(x[i:i + batch])).numpy() for i in range(0, len(x), batch)]
    model.train(was)
    return np.concatenate(out)


# ---------------------------------------------------------------------------------------------
# Proof that the gradients are right (not only finite): a directional finite difference
# ---------------------------------------------------------------------------------------------
def gradient_check(model, loss_fn, x, y, params, full: bool = False, tol: float = 1e-2) -> tuple[bool, str]:
    """Compare the backward pass's gradient of each parameter in `params` with central differences
    of the loss on one batch, in float64 (the model is cast for the check and restored after it,
    BatchNorm's running statistics included; train mode).

    full=False: along the gradient's own direction d = g/|g|, where dL/dp . d must equal |g|
    (2 forward passes per parameter). full=True: every entry of the parameter (small models only).
    A kernel flipped in one direction only, or a stride forgotten in the backward pass, misses by
    far more than `tol` (relative)."""
    from tinytorch.tensor import Tensor, no_grad

    state, arrays = model.state_dict(), [(p, p.data) for p in model.parameters()]
    for p, a in arrays:
        p.data = a.astype(np.float64)
    xt, yt = Tensor(np.asarray(x, dtype=np.float64), dtype=np.float64), Tensor(y)

    def loss_at() -> float:
        with no_grad():
            return float(loss_fn(model(xt), yt).item())

    try:
        model.zero_grad()
        loss_fn(model(xt), yt).backward()
        worst, notes = 0.0, []
        for name, p in params:
            if p.grad is None:
                return False, f"{name} received no gradient"
            g = np.asarray(p.grad.data, dtype=np.float64)
            norm = float(np.sqrt((g * g).sum()))
            if not np.isfinite(norm) or norm == 0:
                return False, f"{name}: gradient norm {norm}"
            base = p.data.copy()
            if full:  # every entry: (L(p + eps e_k) - L(p - eps e_k)) / (2 eps)
                numeric = np.zeros_like(base)
                for k in range(base.size):
                    for sign in (1, -1):
                        p.data = base.copy()
                        p.data.reshape(-1)[k] += sign * 1e-6
                        numeric.reshape(-1)[k] += sign * loss_at() / 2e-6
                err = float(np.linalg.norm(g - numeric) / max(np.linalg.norm(numeric), 1e-12))
                notes.append(f"{name}: |backward - finite differences| / |finite differences| = {err:.2g}")
            else:  # along d = g / |g|
                d, eps, losses = g / norm, 1e-6, []
                for sign in (1, -1):
                    p.data = base + sign * eps * d
                    losses.append(loss_at())
                numeric = (losses[0] - losses[1]) / (2 * eps)
                err = abs(numeric - norm) / norm
                notes.append(f"{name}: backward {norm:.5g}, finite difference {numeric:.5g}")
            p.data = base
            worst = max(worst, err)
        return worst <= tol, "; ".join(notes)
    finally:
        for p, a in arrays:
            p.data = a
        model.load_state_dict(state)
        model.zero_grad()


def _conv_params(model):
    from tinytorch.convolutions import Conv2d

    return [(f"{n}.weight", m.weight) for n, m in model.named_modules() if isinstance(m, Conv2d)]


# ---------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------
def plot_filters(path, weight: np.ndarray, title: str):
    """First-layer kernels (O, C, k, k), one tile each (colour kernels shown as RGB)."""
    plt = _pyplot()
    o = weight.shape[0]
    cols = min(o, 8)
    rows = -(-o // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.1, rows * 1.1 + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for k, ax in zip(range(o), axes.ravel()):
        w = weight[k]
        if w.shape[0] == 3:
            w = w.transpose(1, 2, 0)
            ax.imshow((w - w.min()) / (np.ptp(w) + 1e-8), interpolation="nearest")
        else:
            ax.imshow(w[0], cmap="gray", interpolation="nearest")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_feature_maps(path, image: np.ndarray, maps: np.ndarray, title: str):
    """One input image and the first layer's feature maps (C, H, W) for it."""
    plt = _pyplot()
    c = maps.shape[0]
    cols = min(c, 8) + 1
    rows = -(-c // (cols - 1))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.25 + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    axes[0][0].imshow(image, cmap=None if image.ndim == 3 else "gray_r")
    axes[0][0].set_title("input", fontsize=8)
    for k in range(c):
        ax = axes[k // (cols - 1)][1 + k % (cols - 1)]
        ax.imshow(maps[k], cmap="viridis")
        ax.set_title(f"map {k}", fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plots(ctx, model, first_block: int, image: np.ndarray, x_one: np.ndarray, curves, y_test, pred,
           name: str, acc: float):
    from tinytorch.tensor import Tensor, no_grad

    plot_filters(ctx.path("filters.png"), model[0].weight.data, f"{name}: first-layer filters")
    model.eval()
    with no_grad():
        maps = model[:first_block](Tensor(x_one[None])).numpy()[0]  # (C, H, W)
    model.train()
    plot_feature_maps(ctx.path("feature_maps.png"), image, maps, f"{name}: first-layer feature maps")
    plot_confusion_matrix(ctx.path("confusion_matrix.png"), y_test, pred, f"{name}: test set, {acc:.2%} right")
    plot_learning_curves(ctx.path("learning_curves.png"), curves, f"{name}: {acc:.2%}")


# ---------------------------------------------------------------------------------------------
# One training run, shared by both parts
# ---------------------------------------------------------------------------------------------
def _train(ctx, model, optimizer, loss_fn, loader, epochs, x_test, y_test, stage, curve_images=None):
    """Train with the learner's Trainer (scheduler stepped per batch); returns curves, witness and
    seconds. After each epoch the test accuracy is measured on the first `curve_images` test images
    (all by default) for the learning curve; the caller measures the final accuracy on all."""
    from tinytorch.optimizers import WarmupCosine
    from tinytorch.training import Trainer

    steps = epochs * len(loader)
    scheduler = WarmupCosine(optimizer, warmup_steps=max(1, steps // 6), total_steps=steps)
    trainer = Trainer(model, loss_fn, optimizer, scheduler=scheduler, scheduler_interval="step")
    witness = ctx.witness(model.parameters())
    watch(witness, ctx, optimizer, trainer, grads_every=25, progress_every=10, steps=steps, stage=stage)
    label = "test acc" if curve_images is None else f"test acc ({curve_images:,} images)"
    x_curve, y_curve = x_test[:curve_images], y_test[:curve_images]
    curves: dict[str, list[float]] = {"train loss": [], "train acc": [], label: []}
    t0 = time.perf_counter()

    def after_epoch(epoch: int, record: dict) -> None:
        curves["train loss"].append(record["train_loss"])
        curves["train acc"].append(record["train_acc"])
        acc = accuracy(logits_of(model, x_curve).argmax(axis=1), y_curve)
        curves[label].append(acc)
        ctx.progress(epoch=epoch, epochs=epochs, loss=record["train_loss"], acc=acc, stage=stage)
        ctx.log(f"{stage} epoch {epoch}/{epochs}: train loss {record['train_loss']:.4f}, "
                f"train acc {record['train_acc']:.2%}, {label} {acc:.2%} ({time.perf_counter() - t0:.0f} s)")

    trainer.fit(loader, epochs=epochs, progress=False, on_epoch_end=after_epoch)
    return curves, witness, time.perf_counter() - t0


def stride_probe(channels: int):
    """A small net whose first conv's gradient flows back through a stride-2, padded conv: the
    trained models use stride 1 only, and a stride forgotten in a backward pass must not pass."""
    from tinytorch.activations import ReLU
    from tinytorch.convolutions import AdaptiveAvgPool2d, Conv2d
    from tinytorch.layers import Flatten, Sequential

    return Sequential(Conv2d(channels, 4, 3, padding=1), ReLU(),                     # (B, 4, 8, 8)
                      Conv2d(4, 10, 3, stride=2, padding=1), AdaptiveAvgPool2d(1), Flatten())  # (B, 10)


def _verdict(ctx, model, loss_fn, x, y, witness) -> dict:
    """The standard witnesses, with `grads_ok` also requiring that the conv gradients agree with
    finite differences - on the trained model and on a stride-2 probe."""
    try:
        ok, text = gradient_check(model, loss_fn, x, y, _conv_params(model))
        probe, crop = stride_probe(x.shape[1]), np.ascontiguousarray(x[:16, :, 10:18, 10:18])  # (16, C, 8, 8)
        probe_ok, probe_text = gradient_check(probe, loss_fn, crop, y[:16], _conv_params(probe)[:1], full=True)
        ok, text = ok and probe_ok, f"{text}; stride-2 probe {probe_text}"
    except Exception as e:  # noqa: BLE001 - e.g. a module that cannot compute in float64
        ok, text = False, f"the check itself failed: {type(e).__name__}: {e}"
    ctx.log(f"gradient check of the conv weights (finite differences): {'ok' if ok else 'FAILED'} - {text}")
    if not ok:
        ctx.note(f"the convolution's gradients disagree with finite differences: {text}")
    metrics = witness.metrics(tail=50)
    metrics["grad_check_ok"] = ok
    metrics["grads_ok"] = bool(metrics.get("grads_ok", False) and ok)  # finite, non-zero AND right
    return metrics


# ---------------------------------------------------------------------------------------------
# Part 1: LeNet-5 on MNIST
# ---------------------------------------------------------------------------------------------
def lenet(ctx: RunContext) -> dict:
    from tinytorch.losses import CrossEntropyLoss
    from tinytorch.optimizers import Adam
    from tinytorch.transforms import Compose, Normalize, RandomCrop, normalize

    started = time.perf_counter()
    images, labels = ctx.data("mnist", "train")
    test_images, test_labels = ctx.data("mnist", "test")
    if ctx.quick:  # a rehearsal: 6,000 training images, 2,000 test images, 2 epochs
        images, labels = images[:6000], labels[:6000]
        test_images, test_labels = test_images[:2000], test_labels[:2000]
    epochs, batch = (2, 64) if ctx.quick else (12, 128)
    x_test = normalize(test_images, *MNIST_NORM)  # (M, 1, 28, 28) float32
    ctx.log(f"MNIST: {len(images):,} training and {len(x_test):,} test images; LeNet-5, {epochs} epochs")

    seed_all(ctx.seed)
    model = lenet5()
    loss_fn = CrossEntropyLoss()
    optimizer = Adam(model.parameters(), lr=2e-3)
    shift = Compose([RandomCrop(2), Normalize(*MNIST_NORM)], seed=ctx.seed)
    loader = AugmentedLoader(images, labels, shift if not ctx.quick else Normalize(*MNIST_NORM), batch, ctx.seed)
    curves, witness, seconds = _train(ctx, model, optimizer, loss_fn, loader, epochs, x_test, test_labels,
                                      "LeNet-5")
    pred = logits_of(model, x_test).argmax(axis=1)
    test_acc = accuracy(pred, test_labels)
    metrics = _verdict(ctx, model, loss_fn, x_test[:64], test_labels[:64], witness)
    _plots(ctx, model, 2, test_images[0], x_test[0], curves, test_labels, pred, "LeNet-5 on MNIST", test_acc)
    save_weights(ctx, model, "tito.milestones.m04_cnn:lenet5", kind="digits", data="mnist",
                 layout="image", mean=MNIST_NORM[0], std=MNIST_NORM[1])  # for `tito milestone demo 04`
    return {"test_acc": test_acc, "epochs": epochs, "train_images": len(images), "test_images": len(x_test),
            "train_seconds": seconds, "seconds": time.perf_counter() - started, **metrics}


# ---------------------------------------------------------------------------------------------
# Part 2: a CNN on CIFAR-10
# ---------------------------------------------------------------------------------------------
def cifar(ctx: RunContext) -> dict:
    from tinytorch.datasets import load_cifar10_exact_test
    from tinytorch.losses import CrossEntropyLoss
    from tinytorch.optimizers import SGD
    from tinytorch.transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip, normalize

    started = time.perf_counter()
    images, labels = ctx.data("cifar-10", "train")
    test_images, test_labels = ctx.data("cifar-10", "test")
    exact = load_cifar10_exact_test()
    if ctx.quick:  # a rehearsal: 2,000 training images (not augmented), 1,000 test images, 8 epochs
        images, labels = images[:2000], labels[:2000]
        test_images, test_labels = test_images[:1000], test_labels[:1000]
    epochs, batch = (8, 64) if ctx.quick else (12, 128)
    x_test = normalize(test_images, *CIFAR_NORM)  # (M, 3, 32, 32) float32
    data_note = ctx.provenance.get("cifar-10", {})
    ctx.log(f"CIFAR-10: {len(images):,} training and {len(x_test):,} test images"
            + ("" if data_note.get("exact", True) else f" ({data_note.get('note', 'not the exact data')})")
            + f"; {epochs} epochs")

    seed_all(ctx.seed)
    model = cifar_cnn()
    loss_fn = CrossEntropyLoss(label_smoothing=0.0 if ctx.quick else 0.1)
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    augment = Compose([RandomCrop(4), RandomHorizontalFlip(), Normalize(*CIFAR_NORM)], seed=ctx.seed)
    loader = AugmentedLoader(images, labels, Normalize(*CIFAR_NORM) if ctx.quick else augment, batch, ctx.seed)
    curves, witness, seconds = _train(ctx, model, optimizer, loss_fn, loader, epochs, x_test, test_labels,
                                      "CIFAR-10", curve_images=None if ctx.quick else 2000)
    pred = logits_of(model, x_test).argmax(axis=1)
    test_acc = accuracy(pred, test_labels)
    out = {"test_acc": test_acc, "epochs": epochs, "train_images": len(images), "test_images": len(x_test),
           "data_exact": bool(data_note.get("exact", True)), "train_seconds": seconds}
    if exact is not None:
        ex_images, ex_labels = exact
        out["exact_test_acc"] = accuracy(logits_of(model, normalize(ex_images, *CIFAR_NORM)).argmax(axis=1),
                                         ex_labels)
        out["exact_test_images"] = len(ex_labels)
        ctx.log(f"accuracy on {len(ex_labels):,} exact official test images: {out['exact_test_acc']:.2%}")
    metrics = _verdict(ctx, model, loss_fn, x_test[:32], test_labels[:32], witness)
    _plots(ctx, model, 3, test_images[0], x_test[0], curves, test_labels, pred, "CNN on CIFAR-10", test_acc)
    save_weights(ctx, model, "tito.milestones.m04_cnn:cifar_cnn", kind="cifar", data="cifar-10",
                 layout="image", mean=CIFAR_NORM[0], std=CIFAR_NORM[1])
    out["seconds"] = time.perf_counter() - started
    return {**out, **metrics}
