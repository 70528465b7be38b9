"""Checks for module 16 (compression): sparsity, PruneMasks (apply, attach), magnitude_prune,
prune_neurons, prune_channels, soft_target_kl and its backward rule, distillation_loss.

Every model here is tiny and seeded, with its weights written in from NumPy. Masks are compared
with an oracle that sorts every weight of the model (one global order, exact counts, ties and
zeros from an earlier pruning included); the masks must survive optimizer steps - SGD with
momentum and Adam, checked after every single step against a twin optimizer whose weights are
masked by hand - and the wrapping must touch that optimizer object only and pass the step's
arguments and result through. A structurally pruned network must compute exactly what the
original computes with the removed units silenced (their outgoing weights zeroed), for any
elementwise activation; a network with convolutions pruned channel by channel must compute what
the original computes with the removed channels' readers zeroed. The distillation loss is compared with
its formula in float64 (a worked example that tells a missing T^2, a reversed KL and a sum over
the batch apart), its gradient with central differences and the closed form T/N (p_s - p_t), and
both with PyTorch when it is installed; a student trained with it moves towards the teacher.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinytorch.tensor as tt
from tinytorch.activations import GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.compression import (PruneMasks, distillation_loss, magnitude_prune, prune_channels,
                                   prune_neurons, soft_target_kl, soft_target_kl_backward, sparsity)
from tinytorch.layers import Dropout, Flatten, Linear, Module, Parameter, Sequential
from tinytorch.losses import MSELoss
from tinytorch.optimizers import SGD, Adam
from tinytorch.tensor import Tensor, no_grad
from tito.checks.harness import (assert_close, call, expect_error, gradcheck, hypothesis_settings,
                                  torch_or_skip, torch_parity)

SETTINGS = hypothesis_settings(max_examples=25)


@pytest.fixture(autouse=True)
def _seed():
    tt.manual_seed(0)
    yield
    tt.manual_seed(0)


def rand(*shape, seed=0, scale=1.0, dtype=np.float32) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def mlp(sizes, seed=0, acts=None, bias=True) -> Sequential:
    """Linear layers of the given sizes with an activation between each pair (ReLU by default),
    weights and biases written in from a seeded NumPy generator."""
    layers = []
    rng = np.random.default_rng(seed)
    for k, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layer = Linear(a, b, bias=bias)
        layer.weight.data[...] = rng.standard_normal((b, a))
        if bias:
            layer.bias.data[...] = rng.standard_normal(b)
        layers.append(layer)
        if k < len(sizes) - 2:
            layers.append(acts[k] if acts else ReLU())
    return Sequential(*layers)


class Filters(Module):
    """A module with a 4-D filter bank, a 1-D gain and a Linear head (no convolution needed)."""

    def __init__(self, seed=0):
        super().__init__()
        self.weight = Parameter(rand(3, 2, 2, 2, seed=seed))
        self.gain = Parameter(rand(3, seed=seed + 1))
        self.head = Linear(3, 2)
        self.head.weight.data[...] = rand(2, 3, seed=seed + 2)


def snapshot(model) -> dict:
    return {name: p.data.copy() for name, p in model.named_parameters()}


def weight_names(model) -> list:
    return [name for name, p in model.named_parameters() if p.ndim >= 2]


# ---------------------------------------------------------------------------------------------
# sparsity
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("sparsity")
def test_sparsity_counts_zeros_of_the_weight_matrices():
    model = mlp([4, 3, 2])
    model[0].weight.data.flat[:9] = 0.0  # 9 of 12
    model[2].weight.data.flat[:3] = 0.0  # 3 of 6
    model[0].bias.data[:] = 0.0  # biases do not count
    got = call("sparsity", sparsity, model)
    assert isinstance(got, float), f"sparsity: returned {type(got).__name__}, expected a Python float"
    if abs(got - 15 / 21) < 1e-9:
        raise AssertionError("sparsity: counted the biases (15 zeros of 21 numbers); count only the weight "
                             "matrices (prunable_weights): 12 zeros of 18 weights")
    assert abs(got - 12 / 18) < 1e-9, f"sparsity: 12 of the 18 weights are zero, expected 0.6667, got {got}"
    filters = Filters()
    filters.weight.data[0] = 0.0  # 8 of the 24 filter weights
    filters.gain.data[:] = 0.0  # a 1-D parameter: not a weight
    got = call("sparsity", sparsity, filters)
    assert abs(got - 8 / 30) < 1e-9, (f"sparsity: a 4-D filter bank (8 of 24 zero) and a Linear weight (6, none "
                                      f"zero) must give 8/30 = 0.2667, got {got}; every parameter with 2 or more "
                                      "axes is a weight")


@pytest.mark.task("sparsity")
def test_sparsity_of_dense_empty_and_all_zero_models():
    model = mlp([3, 5, 2], seed=1)
    got = call("sparsity", sparsity, model)
    assert got == 0.0, f"sparsity: a model without a single zero weight gave {got}, expected 0.0"
    for p in model.parameters():
        if p.ndim == 1:
            p.data[:] = 0.0
    got = call("sparsity", sparsity, model)
    assert got == 0.0, f"sparsity: zero biases are not pruned weights; got {got}, expected 0.0"
    for p in model.parameters():
        p.data[...] = 0.0
    got = call("sparsity", sparsity, model)
    assert got == 1.0, f"sparsity: every weight zero gave {got}, expected 1.0"

    class GainOnly(Module):
        def __init__(self):
            super().__init__()
            self.gain = Parameter(np.ones(4, np.float32))

    got = call("sparsity", sparsity, GainOnly())
    assert got == 0.0, f"sparsity: a model without weight matrices must give 0.0 (no division by zero), got {got}"


# ---------------------------------------------------------------------------------------------
# PruneMasks.apply and PruneMasks.attach
# ---------------------------------------------------------------------------------------------
def masked_model(seed=0, keep=0.5, sizes=(4, 6, 3)):
    """A model and a PruneMasks over its weight matrices with random masks (made here, by hand)."""
    model = mlp(list(sizes), seed=seed)
    rng = np.random.default_rng(seed + 100)
    params = {name: p for name, p in model.named_parameters() if p.ndim >= 2}
    masks = {name: rng.random(p.shape) < keep for name, p in params.items()}
    return model, PruneMasks(params, masks), masks


def apply_masks(model, masks):
    """The check's own masking, on a twin model."""
    for name, p in model.named_parameters():
        if name in masks:
            p.data[~masks[name]] = 0.0


def set_grads(model, seed):
    for k, p in enumerate(model.parameters()):
        p.grad = Tensor(rand(*p.shape, seed=seed * 10 + k))


@pytest.mark.task("PruneMasks")
def test_prune_masks_apply_zeroes_exactly_the_pruned_weights():
    model, pm, masks = masked_model()
    before = snapshot(model)
    call("PruneMasks.apply", pm.apply)
    for name, p in model.named_parameters():
        if name not in masks:
            assert np.array_equal(p.data, before[name]), f"PruneMasks.apply: changed {name}, which has no mask"
            continue
        m = masks[name]
        assert p.data.dtype == np.float32, f"PruneMasks.apply: {name} became {p.data.dtype}; keep the weight's dtype"
        alive = int(np.count_nonzero(p.data[~m]))
        assert alive == 0, f"PruneMasks.apply: {alive} of the {int((~m).sum())} pruned entries of {name} are not zero"
        assert np.array_equal(p.data[m], before[name][m]), f"PruneMasks.apply: changed kept weights of {name}"
    for p in model.parameters():  # weights moved by something else (an optimizer step): apply again
        p.data += 1.0
    moved = snapshot(model)
    call("PruneMasks.apply", pm.apply)
    for name, m in masks.items():
        p = dict(model.named_parameters())[name]
        assert not np.any(p.data[~m]), f"PruneMasks.apply: a second apply() after the weights changed left pruned " \
                                       f"entries of {name} non-zero; apply must zero them every time it is called"
        assert np.array_equal(p.data[m], moved[name][m]), (
            f"PruneMasks.apply: a second apply() restored or changed kept weights of {name}; it must only zero the "
            "pruned ones, whatever the kept ones are now")


@pytest.mark.task("PruneMasks")
@pytest.mark.parametrize("kind", ["sgd", "sgd_momentum", "adam"])
def test_prune_masks_attach_reapplies_after_every_step(kind):
    """Every optimizer.step() must end with the pruned weights at zero, and the kept weights where
    the optimizer's own update put them (a twin optimizer, masked by the check, is the reference)."""
    make = {"sgd": lambda ps: SGD(ps, lr=0.1), "sgd_momentum": lambda ps: SGD(ps, lr=0.1, momentum=0.9),
            "adam": lambda ps: Adam(ps, lr=0.05)}[kind]
    model, pm, masks = masked_model(seed=3)
    call("PruneMasks.apply", pm.apply)
    twin = copy.deepcopy(model)
    opt, twin_opt = make(model.parameters()), make(twin.parameters())
    got = call("PruneMasks.attach", pm.attach, opt)
    assert got is opt, f"PruneMasks.attach: must return the optimizer it was given, got {type(got).__name__}"
    params, twin_params = dict(model.named_parameters()), dict(twin.named_parameters())
    for step in range(1, 5):
        set_grads(model, step)
        set_grads(twin, step)
        call("PruneMasks.attach", opt.step)  # (the wrapped step)
        twin_opt.step()
        apply_masks(twin, masks)
        for name, m in masks.items():
            w = params[name].data
            alive = int(np.count_nonzero(w[~m]))
            if alive:
                raise AssertionError(
                    f"PruneMasks.attach: after optimizer.step() number {step} ({kind}), {alive} of the "
                    f"{int((~m).sum())} pruned weights of {name} are non-zero again (largest |w| "
                    f"{np.abs(w[~m]).max():.3g}): the wrapped step must re-apply the masks AFTER the optimizer's own "
                    "update, on every step")
        for name, p in params.items():
            if not np.allclose(p.data, twin_params[name].data, atol=1e-6, rtol=1e-5):
                raise AssertionError(
                    f"PruneMasks.attach: after step {step} ({kind}) {name} differs from the optimizer's own update "
                    f"followed by the masks (max error {np.abs(p.data - twin_params[name].data).max():.3g}); the "
                    "wrapped step must call the optimizer's own step once, then apply the masks")


@pytest.mark.task("PruneMasks")
def test_prune_masks_attach_wraps_only_that_optimizer():
    class_steps = {cls: cls.__dict__["step"] for cls in (SGD, Adam)}
    model, pm, masks = masked_model(seed=5)
    call("PruneMasks.apply", pm.apply)
    opt = SGD(model.parameters(), lr=0.1)
    call("PruneMasks.attach", pm.attach, opt)
    for cls, step in class_steps.items():
        assert cls.__dict__["step"] is step, (f"PruneMasks.attach: replaced {cls.__name__}.step on the class, which "
                                              "changes every optimizer; wrap the step of this optimizer object only")
    other = copy.deepcopy(model)  # the same weights and zeros, with an optimizer of its own
    other_opt = SGD(other.parameters(), lr=0.1)
    set_grads(other, 1)
    other_opt.step()
    name = next(iter(masks))
    w = dict(other.named_parameters())[name].data
    assert np.count_nonzero(w[~masks[name]]) == w[~masks[name]].size, (
        "PruneMasks.attach: another optimizer, on another model, now re-applies these masks too; attach must wrap "
        "the step of the optimizer it is given, nothing else")
    set_grads(model, 1)
    call("PruneMasks.attach", opt.step)
    w = dict(model.named_parameters())[name].data
    assert not np.any(w[~masks[name]]), "PruneMasks.attach: the optimizer it was given does not re-apply the masks"


@pytest.mark.task("PruneMasks")
def test_prune_masks_attach_passes_the_step_its_arguments_and_result():
    """An optimizer whose step takes a closure and returns the loss (as PyTorch's LBFGS does): the
    wrapped step must hand the closure on and give back what the optimizer's step returned."""

    class ClosureSGD(SGD):
        def step(self, closure=None):
            loss = closure() if closure is not None else None
            super().step()
            return loss

    model, pm, masks = masked_model(seed=6)
    call("PruneMasks.apply", pm.apply)
    opt = ClosureSGD(model.parameters(), lr=0.1)
    call("PruneMasks.attach", pm.attach, opt)
    calls = []

    def closure():
        calls.append(1)
        set_grads(model, 2)
        return 1.25

    got = call("PruneMasks.attach", opt.step, closure)
    assert calls == [1], (f"PruneMasks.attach: the optimizer's step received no closure (called {len(calls)} "
                          "times); the wrapper must pass its arguments on: step(*args, **kwargs)")
    assert got == 1.25, (f"PruneMasks.attach: the wrapped step returned {got!r}, the optimizer's step returned "
                         "1.25; return what the optimizer's own step returns")
    name = next(iter(masks))
    w = dict(model.named_parameters())[name].data
    assert not np.any(w[~masks[name]]), "PruneMasks.attach: after a step with a closure the pruned weights moved"


@pytest.mark.task("PruneMasks")
def test_prune_masks_masked_fine_tuning_keeps_the_sparsity():
    """A real training loop (forward, loss, backward, step) with Adam: the loss falls, the pruned
    weights stay exactly zero; a second, larger PruneMasks attached later (iterative pruning) holds too."""
    model, pm, masks = masked_model(seed=7, keep=0.6, sizes=(5, 16, 3))
    call("PruneMasks.apply", pm.apply)
    opt = Adam(model.parameters(), lr=0.02)
    call("PruneMasks.attach", pm.attach, opt)
    x = Tensor(rand(32, 5, seed=8))
    y = Tensor(rand(32, 3, seed=9))
    params = dict(model.named_parameters())

    def train(steps):
        losses = []
        for _ in range(steps):
            opt.zero_grad()
            loss = MSELoss()(model(x), y)
            loss.backward()
            call("PruneMasks.attach", opt.step)
            losses.append(loss.item())
        return losses

    losses = train(25)
    for name, m in masks.items():
        alive = int(np.count_nonzero(params[name].data[~m]))
        assert alive == 0, (f"PruneMasks.attach: after 25 training steps {alive} pruned weights of {name} grew back; "
                            "the masks must be re-applied after every optimizer.step()")
    assert losses[-1] < 0.8 * losses[0], (f"PruneMasks.attach: masked fine-tuning did not train (loss {losses[0]:.4f} "
                                          f"-> {losses[-1]:.4f}); the wrapped step must still run the optimizer's step")
    rng = np.random.default_rng(11)
    tighter = {name: m & (rng.random(m.shape) < 0.5) for name, m in masks.items()}  # a later, sparser pruning
    pm2 = PruneMasks({name: params[name] for name in tighter}, tighter)
    call("PruneMasks.apply", pm2.apply)
    call("PruneMasks.attach", pm2.attach, opt)
    train(5)
    for name, m in tighter.items():
        alive = int(np.count_nonzero(params[name].data[~m]))
        assert alive == 0, (f"PruneMasks.attach: with a second PruneMasks attached to the same optimizer, {alive} "
                            f"weights of {name} pruned by it grew back; each attach must wrap the step as it is now")


# ---------------------------------------------------------------------------------------------
# magnitude_prune
# ---------------------------------------------------------------------------------------------
def oracle_keep(model, s):
    """The k = round(s n) smallest |w| of all weight matrices together, by a full stable sort."""
    weights = [p.data for name, p in model.named_parameters() if p.ndim >= 2]
    flat = np.concatenate([np.abs(w).ravel() for w in weights])
    k = int(round(s * flat.size))
    keep = np.ones(flat.size, bool)
    keep[np.argsort(flat, kind="stable")[:k]] = False
    return keep, k


def pruned_masks(name, model, s):
    before = snapshot(model)
    masks = call(name, magnitude_prune, model, s)
    if not isinstance(masks, PruneMasks):
        raise AssertionError(f"magnitude_prune: returned {type(masks).__name__}, expected a PruneMasks")
    expected = weight_names(model)
    if sorted(masks.masks) != sorted(expected):
        raise AssertionError(f"magnitude_prune: masks for {sorted(masks.masks)}, expected one per weight matrix "
                             f"{expected} (biases and 1-D parameters are not pruned)")
    for n in expected:
        m = masks.masks[n]
        if m.shape != before[n].shape or m.dtype != bool:
            raise AssertionError(f"magnitude_prune: the mask of {n} is {m.dtype} {m.shape}, expected bool "
                                 f"{before[n].shape}")
    return masks, before


@pytest.mark.task("magnitude_prune")
def test_magnitude_prune_worked_example_is_global():
    model = Sequential(Linear(2, 2, bias=False), Linear(4, 1, bias=False))
    model[0].weight.data[...] = [[0.9, -0.8], [0.7, 0.6]]
    model[1].weight.data[...] = [[0.05, -0.1, 0.65, -0.3]]
    masks, _ = pruned_masks("magnitude_prune", model, 0.5)
    w1, w2 = model[0].weight.data, model[1].weight.data
    if np.count_nonzero(w1) == 2 and np.count_nonzero(w2) == 2:
        raise AssertionError("magnitude_prune: pruned 50% of EACH layer; use one global threshold over all weights "
                             "together: W1 must keep 3 weights and W2 only 0.65")
    assert_close(w1, np.float32([[0.9, -0.8], [0.7, 0.0]]), "magnitude_prune: the worked example's W1 (only 0.6 is pruned)",
                 [[0.9, -0.8, 0.7, 0.6], [0.05, -0.1, 0.65, -0.3]], atol=0, rtol=0)
    assert_close(w2, np.float32([[0.0, 0.0, 0.65, 0.0]]), "magnitude_prune: the worked example's W2 (0.05, 0.1 and 0.3 go)",
                 [[0.05, -0.1, 0.65, -0.3]], atol=0, rtol=0)
    assert np.array_equal(masks.masks["0.weight"], [[True, True], [True, False]]), \
        f"magnitude_prune: the mask of W1 is {masks.masks['0.weight'].tolist()}, expected [[T, T], [T, F]]"


@pytest.mark.task("magnitude_prune")
@SETTINGS
@given(sizes=st.lists(st.integers(1, 7), min_size=3, max_size=4),
       s=st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.6, 0.75, 0.9, 0.97, 1.0]), seed=st.integers(0, 20))
def test_magnitude_prune_matches_a_global_sort(sizes, s, seed):
    model = mlp(sizes, seed=seed)
    for k, layer in enumerate(layer for layer in model if isinstance(layer, Linear)):
        layer.weight.data *= 3.0 ** k  # layers of different scale: global and per-layer pruning differ
    keep, k = oracle_keep(model, s)
    masks, before = pruned_masks("magnitude_prune", model, s)
    what = f"layer sizes {sizes}, sparsity {s}"
    got_keep = np.concatenate([masks.masks[n].ravel() for n in weight_names(model)])
    n_pruned = int((~got_keep).sum())
    assert n_pruned == k, (f"magnitude_prune: {what}: pruned {n_pruned} of {keep.size} weights, expected "
                           f"round({s} * {keep.size}) = {k} (Python's round: halves go to the even number)")
    if not np.array_equal(got_keep, keep):
        flat = np.concatenate([np.abs(before[n]).ravel() for n in weight_names(model)])
        raise AssertionError(
            f"magnitude_prune: {what}: pruned a weight of |w| = {flat[~got_keep].max():.4g} but kept one of "
            f"|w| = {flat[got_keep].min():.4g}; prune the smallest magnitudes of ALL weight matrices together")
    for name, p in model.named_parameters():
        if name in masks.masks:
            m = masks.masks[name]
            assert np.array_equal(p.data, before[name] * m), (
                f"magnitude_prune: {what}: {name} is not its old values times its mask (the pruned weights must be "
                "zeroed on return - the given lines call PruneMasks.apply)")
        else:
            assert np.array_equal(p.data, before[name]), f"magnitude_prune: {what}: changed {name}, a bias"


@pytest.mark.task("magnitude_prune")
def test_magnitude_prune_ties_edges_and_iterative_pruning():
    model = mlp([3, 4, 2], seed=2)
    for p in model.parameters():
        p.data[...] = 1.0  # every magnitude ties
    masks, _ = pruned_masks("magnitude_prune", model, 0.4)
    pruned = sum(int((~m).sum()) for m in masks.masks.values())
    assert pruned == round(0.4 * 20), (f"magnitude_prune: 20 weights of equal magnitude, sparsity 0.4: pruned {pruned}, "
                                       "expected exactly 8 (choose positions, not a threshold |w| <= t, which takes "
                                       "every tie)")
    zeros = sum(int(np.count_nonzero(p.data == 0)) for p in model.parameters() if p.ndim >= 2)
    assert zeros == 8, f"magnitude_prune: the masks say 8 weights are pruned, but {zeros} weights are zero"

    model = mlp([4, 5, 3], seed=3)
    first, _ = pruned_masks("magnitude_prune", model, 0.5)
    second, _ = pruned_masks("magnitude_prune", model, 0.8)
    for name, m in first.masks.items():
        revived = int((~m & second.masks[name]).sum())
        assert revived == 0, (f"magnitude_prune: pruning again at 0.8 kept {revived} weights of {name} that the 0.5 "
                              "pruning had zeroed; the zeros are the smallest magnitudes and must stay pruned")
    total = sum(m.size for m in second.masks.values())
    assert sum(int((~m).sum()) for m in second.masks.values()) == round(0.8 * total), \
        "magnitude_prune: the second pruning (0.8) must prune exactly round(0.8 n) weights in all"

    model = mlp([3, 4, 2], seed=4)
    biases = [p.data.copy() for p in model.parameters() if p.ndim == 1]
    all_gone, _ = pruned_masks("magnitude_prune", model, 1.0)
    assert all(not np.any(p.data) for p in model.parameters() if p.ndim >= 2), \
        "magnitude_prune: sparsity 1.0 must zero every weight"
    assert all(np.array_equal(p.data, b) for p, b in zip([p for p in model.parameters() if p.ndim == 1], biases)), \
        "magnitude_prune: sparsity 1.0 changed a bias; biases are never pruned"
    model = mlp([3, 4, 2], seed=5)
    before = snapshot(model)
    none_gone, _ = pruned_masks("magnitude_prune", model, 0.0)
    assert all(m.all() for m in none_gone.masks.values()) and all(
        np.array_equal(p.data, before[n]) for n, p in model.named_parameters()), \
        "magnitude_prune: sparsity 0.0 must keep every weight unchanged"
    for bad in (-0.1, 1.5):
        expect_error("magnitude_prune", ValueError, magnitude_prune, mlp([2, 2, 2]), bad)


@pytest.mark.task("magnitude_prune")
def test_magnitude_prune_filters_and_gains():
    """A 4-D filter bank is a weight (pruned in the same global order); a 1-D gain is not."""
    model = Filters(seed=1)
    gain = model.gain.data.copy()
    keep, k = oracle_keep(model, 0.6)
    masks, _ = pruned_masks("magnitude_prune", model, 0.6)
    got = np.concatenate([masks.masks[n].ravel() for n in weight_names(model)])
    assert np.array_equal(got, keep), ("magnitude_prune: a model with a (3, 2, 2, 2) filter bank and a (2, 3) Linear "
                                       "weight: the masks are not the 60% smallest magnitudes of both together")
    assert np.array_equal(model.gain.data, gain), "magnitude_prune: pruned a 1-D parameter (a gain); only weights"


# ---------------------------------------------------------------------------------------------
# prune_neurons
# ---------------------------------------------------------------------------------------------
def silenced(model, kept_per_layer):
    """A copy of the original in which the removed units of each hidden layer are silenced: their
    OUTGOING weights (columns of the next Linear) are zero. Exactly what the pruned model computes."""
    twin = copy.deepcopy(model)
    linears = [layer for layer in twin if isinstance(layer, Linear)]
    for layer, nxt, kept in zip(linears, linears[1:], kept_per_layer):
        gone = np.setdiff1d(np.arange(layer.out_features), kept)
        nxt.weight.data[:, gone] = 0.0
    return twin


def expected_kept(model, fraction):
    linears = [layer for layer in model if isinstance(layer, Linear)]
    kept = []
    for layer in linears[:-1]:
        out = layer.out_features
        n_keep = max(1, out - int(round(fraction * out)))
        norms = np.linalg.norm(layer.weight.data.astype(np.float64), axis=1)
        kept.append(np.sort(np.argsort(-norms, kind="stable")[:n_keep]))
    return kept


def pruned_net(model, fraction):
    before = snapshot(model)
    new = call("prune_neurons", prune_neurons, model, fraction)
    if not isinstance(new, Sequential):
        raise AssertionError(f"prune_neurons: returned {type(new).__name__}, expected a new Sequential")
    if new is model:
        raise AssertionError("prune_neurons: returned the model it was given; build a NEW Sequential")
    for name, p in model.named_parameters():
        if not np.array_equal(p.data, before[name]):
            raise AssertionError(f"prune_neurons: changed the original model's {name}; leave it untouched")
    if len(list(new)) != len(list(model)):
        raise AssertionError(f"prune_neurons: the new model has {len(list(new))} layers, the original "
                             f"{len(list(model))}; keep every layer (only the Linear layers get smaller)")
    return new


def check_shapes(new, model, kept, what):
    old_lin = [layer for layer in model if isinstance(layer, Linear)]
    new_lin = [layer for layer in new if isinstance(layer, Linear)]
    if len(new_lin) != len(old_lin):
        raise AssertionError(f"prune_neurons: {what}: {len(new_lin)} Linear layers, expected {len(old_lin)}")
    widths = [len(k) for k in kept] + [old_lin[-1].out_features]
    inputs = [old_lin[0].in_features] + [len(k) for k in kept]
    for i, (layer, o, n) in enumerate(zip(new_lin, widths, inputs)):
        shape = getattr(getattr(layer, "weight", None), "shape", None)
        if shape != (o, n):
            raise AssertionError(f"prune_neurons: {what}: Linear {i} has weight {shape}, expected {(o, n)}")
        if (layer.out_features, layer.in_features) != (o, n):
            raise AssertionError(f"prune_neurons: {what}: Linear {i} says in_features={layer.in_features}, "
                                 f"out_features={layer.out_features}, but its weight is {shape}")
        if layer is old_lin[i] or layer.weight is old_lin[i].weight:
            raise AssertionError(f"prune_neurons: {what}: Linear {i} of the new model shares its weight with the "
                                 "original; build new Parameters")
        if (layer.bias is None) != (old_lin[i].bias is None) or (layer.bias is not None and layer.bias.shape != (o,)):
            raise AssertionError(f"prune_neurons: {what}: Linear {i}'s bias is "
                                 f"{None if layer.bias is None else layer.bias.shape}, expected "
                                 f"{None if old_lin[i].bias is None else (o,)}")


@pytest.mark.task("prune_neurons")
def test_prune_neurons_worked_example():
    model = mlp([3, 4, 2])
    model[0].weight.data[...] = [[0.5, -1.0, 0.2], [0.1, 0.1, -0.1], [2.0, 0.0, 0.5], [-0.3, 0.4, 0.0]]
    new = pruned_net(model, 0.5)
    check_shapes(new, model, [np.array([0, 2])], "the worked example")
    w1 = new[0].weight.data
    if np.array_equal(w1, model[0].weight.data[[2, 0]]):
        raise AssertionError("prune_neurons: kept units 2 and 0 in the order of their norms; keep them in their "
                             "original order (rows 0 and 2)")
    if np.array_equal(w1, model[0].weight.data[[1, 3]]):
        raise AssertionError("prune_neurons: kept the two WEAKEST units (1 and 3); keep the largest norms")
    assert_close(w1, model[0].weight.data[[0, 2]], "prune_neurons: the worked example's W1 (rows 0 and 2: norms "
                 "1.136 and 2.062)", [model[0].weight.data], atol=0, rtol=0)
    assert_close(new[0].bias.data, model[0].bias.data[[0, 2]], "prune_neurons: the kept units' biases", [], atol=0,
                 rtol=0)
    assert_close(new[2].weight.data, model[2].weight.data[:, [0, 2]], "prune_neurons: the next layer keeps columns "
                 "0 and 2 of its weight", [model[2].weight.data], atol=0, rtol=0)
    assert_close(new[2].bias.data, model[2].bias.data, "prune_neurons: the output layer's bias", [], atol=0, rtol=0)


ACTS = [ReLU, Tanh, Sigmoid, GELU, LeakyReLU, lambda: Dropout(0.5)]


@pytest.mark.task("prune_neurons")
@SETTINGS
@given(sizes=st.lists(st.integers(1, 8), min_size=3, max_size=5), fraction=st.sampled_from([0.0, 0.2, 0.5, 0.7, 1.0]),
       acts=st.lists(st.integers(0, len(ACTS) - 1), min_size=3, max_size=3), bias=st.booleans(),
       seed=st.integers(0, 20))
def test_prune_neurons_computes_the_silenced_original(sizes, fraction, acts, bias, seed):
    model = mlp(sizes, seed=seed, acts=[ACTS[a]() for a in acts[:len(sizes) - 2]], bias=bias)
    model.eval()  # (Dropout: the identity)
    kept = expected_kept(model, fraction)
    new = pruned_net(model, fraction)
    what = f"sizes {sizes}, fraction {fraction}, layers {[type(layer).__name__ for layer in model]}, bias={bias}"
    new_lin = [layer for layer in new if isinstance(layer, Linear)]
    for i, (layer, k) in enumerate(zip(new_lin, kept)):
        old = [layer for layer in model if isinstance(layer, Linear)][i]
        if layer.weight.shape[0] != len(k):
            raise AssertionError(f"prune_neurons: {what}: hidden layer {i} kept {layer.weight.shape[0]} of "
                                 f"{old.out_features} units, expected {len(k)} (remove round(fraction * "
                                 f"out_features) - Python's round, halves to even: round(2.5) == 2 - and keep at "
                                 "least one)")
    check_shapes(new, model, kept, what)
    for i, (layer, k) in enumerate(zip(new_lin, kept)):
        old = [layer for layer in model if isinstance(layer, Linear)][i]
        cols = slice(None) if i == 0 else kept[i - 1]
        assert_close(layer.weight.data, old.weight.data[k][:, cols], f"prune_neurons: {what}: Linear {i}'s weight "
                     f"(the units with the largest incoming L2 norms, {k.tolist()}, in order)", [old.weight.data],
                     atol=0, rtol=0)
    new.eval()
    x = Tensor(rand(5, sizes[0], seed=seed + 1))
    with no_grad():
        got = call("prune_neurons", new, x)
        expected = silenced(model, kept)(x)
    assert_close(got, expected.data, f"prune_neurons: {what}: the pruned network must compute what the original "
                 "computes with the removed units' outgoing weights zeroed", [x.data], atol=1e-5)


@pytest.mark.task("prune_neurons")
def test_prune_neurons_gives_an_independent_trainable_model():
    model = mlp([4, 6, 4, 3], seed=9)
    new = pruned_net(model, 0.5)  # hidden widths 6 -> 3 and 4 -> 2
    params = call("prune_neurons", new.parameters)
    assert len(params) == 6 and all(isinstance(p, Parameter) and p.requires_grad for p in params), (
        "prune_neurons: the new model must hold 6 trainable Parameters (3 weights, 3 biases), got "
        f"{[type(p).__name__ for p in params]}")
    n_params = sum(p.size for p in params)
    assert n_params == (4 * 3 + 3) + (3 * 2 + 2) + (2 * 3 + 3), (
        f"prune_neurons: {n_params} parameters, expected 32 (4 -> 3 -> 2 -> 3 units, with biases)")
    before = snapshot(model)
    loss = MSELoss()(new(Tensor(rand(8, 4, seed=1))), Tensor(rand(8, 3, seed=2)))
    call("prune_neurons", loss.backward)
    for p in params:
        assert p.grad is not None and p.grad.shape == p.shape, (
            f"prune_neurons: a parameter of shape {p.shape} of the new model got no gradient of its shape")
    opt = SGD(params, lr=0.1)
    opt.step()
    for name, p in model.named_parameters():
        assert np.array_equal(p.data, before[name]), (f"prune_neurons: training the pruned model changed the "
                                                      f"original's {name}: the two must not share arrays")
    assert all(p.grad is None for p in model.parameters()), \
        "prune_neurons: backward through the new model reached the original's parameters"


@pytest.mark.task("prune_neurons")
def test_prune_neurons_edges():
    model = mlp([3, 5, 4, 2], seed=4, bias=False)
    x = Tensor(rand(6, 3, seed=5))
    same = pruned_net(model, 0.0)
    check_shapes(same, model, [np.arange(5), np.arange(4)], "fraction 0")
    with no_grad():
        assert_close(call("prune_neurons", same, x), model(x).data, "prune_neurons: fraction 0 must compute the "
                     "same function", [x.data], atol=1e-6)
    tiny = pruned_net(model, 1.0)
    kept = expected_kept(model, 1.0)
    check_shapes(tiny, model, kept, "fraction 1.0 (one unit per hidden layer stays)")
    for bad in (-0.5, 1.5):
        expect_error("prune_neurons", ValueError, prune_neurons, model, bad)
    mixing = Sequential(Linear(3, 4), Softmax(), Linear(4, 2))
    expect_error("prune_neurons", ValueError, prune_neurons, mixing, 0.5)
    # layers before the first Linear (a feature extractor, a Flatten) and after the last come along
    head = mlp([6, 5, 4], seed=6)
    framed = Sequential(Flatten(), *head, Tanh())
    x = Tensor(rand(3, 2, 3, seed=7))
    kept = expected_kept(framed, 0.4)
    new = pruned_net(framed, 0.4)
    check_shapes(new, framed, kept, "Sequential(Flatten(), Linear, ReLU, Linear, Tanh())")
    with no_grad():
        assert_close(call("prune_neurons", new, x), silenced(framed, kept)(x).data, "prune_neurons: with a Flatten "
                     "before the first Linear and a Tanh after the last (both kept as they are)", [x.data], atol=1e-5)


# ---------------------------------------------------------------------------------------------
# prune_channels (duck-typed convolutions: module 16 does not need module 09)
# ---------------------------------------------------------------------------------------------
class Conv(Module):
    """A stride-1 convolution with a 4-D weight, in plain NumPy (forward only: the oracle)."""

    def __init__(self, cin, cout, k, padding=0, seed=0, bias=True):
        super().__init__()
        self.in_channels, self.out_channels, self.padding = cin, cout, padding
        self.weight = Parameter(rand(cout, cin, k, k, seed=seed))
        self.bias = Parameter(rand(cout, seed=seed + 1)) if bias else None

    def forward(self, x):
        from numpy.lib.stride_tricks import sliding_window_view

        a = np.asarray(getattr(x, "data", x), np.float64)
        p, k = self.padding, self.weight.shape[2]
        a = np.pad(a, ((0, 0), (0, 0), (p, p), (p, p)))
        win = sliding_window_view(a, (k, k), axis=(2, 3))  # (N, C, Ho, Wo, k, k)
        y = np.einsum("nchwij,ocij->nohw", win, self.weight.data.astype(np.float64))
        if self.bias is not None:
            y = y + self.bias.data[None, :, None, None]
        return Tensor(y.astype(np.float32))


class MaxPool2d(Module):
    """2x2 max pooling (its class name is what prune_channels recognises)."""

    def forward(self, x):
        a = np.asarray(getattr(x, "data", x))
        n, c, h, w = a.shape
        return Tensor(a[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5)))


class ChannelMixer(Module):
    """Not per channel: every output channel is the sum of all input channels."""

    def forward(self, x):
        a = np.asarray(getattr(x, "data", x))
        return Tensor(np.repeat(a.sum(axis=1, keepdims=True), a.shape[1], axis=1))


def small_cnn(seed=0, bias=True, act=ReLU):
    """For (N, 2, 10, 10) inputs: Conv(2->4, 3x3, pad 1), act, MaxPool, Conv(4->6, 2x2), act, MaxPool,
    Flatten, Linear(6 * 2 * 2, 3)."""
    head = Linear(6 * 2 * 2, 3)
    head.weight.data[...] = rand(3, 24, seed=seed + 5)
    return Sequential(Conv(2, 4, 3, padding=1, seed=seed, bias=bias), act(), MaxPool2d(),  # (N, 4, 5, 5)
                      Conv(4, 6, 2, seed=seed + 2, bias=bias), act(), MaxPool2d(),         # (N, 6, 2, 2)
                      Flatten(), head)


def norms_keep(W, fraction):
    norms = np.sqrt((np.asarray(W, np.float64) ** 2).sum(axis=(1, 2, 3)))
    n_keep = max(1, len(norms) - int(round(fraction * len(norms))))
    return np.sort(np.argsort(-norms, kind="stable")[:n_keep])


def pruned_cnn(model, fraction):
    before = snapshot(model)
    new = call("prune_channels", prune_channels, model, fraction)
    if not isinstance(new, Sequential) or new is model:
        raise AssertionError("prune_channels: must return a NEW Sequential")
    for name, p in model.named_parameters():
        if not np.array_equal(p.data, before[name]):
            raise AssertionError(f"prune_channels: changed the original model's {name}; leave it untouched")
    if len(list(new)) != len(list(model)):
        raise AssertionError(f"prune_channels: the new model has {len(list(new))} layers, the original "
                             f"{len(list(model))}; keep every layer")
    for old, layer in zip(model, new):
        if getattr(old, "weight", None) is not None and layer.weight is old.weight:
            raise AssertionError(f"prune_channels: the new {type(layer).__name__} shares its weight with the "
                                 "original; build new Parameters")
    return new


def silenced_cnn(model, keep1, keep2):
    """The original with the removed channels' READERS zeroed: conv 2's input channels not in keep1
    and the head's column blocks of conv 2's channels not in keep2."""
    twin = copy.deepcopy(model)
    drop1 = np.setdiff1d(np.arange(model[0].weight.shape[0]), keep1)
    twin[3].weight.data[:, drop1] = 0.0
    drop2 = np.setdiff1d(np.arange(model[3].weight.shape[0]), keep2)
    cols = (drop2[:, None] * 4 + np.arange(4)).ravel()
    twin[7].weight.data[:, cols] = 0.0
    return twin


@pytest.mark.task("prune_channels")
def test_prune_channels_worked_example():
    conv = Conv(1, 4, 1, seed=3)
    conv.weight.data[...] = np.array([3.0, 0.5, 2.0, 0.1], np.float32).reshape(4, 1, 1, 1)
    head = Linear(16, 10)
    model = Sequential(conv, ReLU(), Flatten(), head)
    new = pruned_cnn(model, 0.5)
    w = new[0].weight.data
    if w.shape[0] == 2 and np.array_equal(w.ravel(), [2.0, 3.0]):
        raise AssertionError("prune_channels: kept filters 2 and 0 in the order of their norms; keep them in "
                             "their original order (channels 0 and 2)")
    if w.shape[0] == 2 and np.array_equal(w.ravel(), [0.5, 0.1]):
        raise AssertionError("prune_channels: kept the two WEAKEST filters (1 and 3); keep the largest norms")
    assert_close(w, conv.weight.data[[0, 2]], "prune_channels: the worked example keeps filters 0 and 2 "
                 "(norms 3.0 and 2.0)", [conv.weight.data], atol=0, rtol=0)
    assert_close(new[0].bias.data, conv.bias.data[[0, 2]], "prune_channels: the kept filters' biases", [],
                 atol=0, rtol=0)
    assert (new[0].out_channels, new[0].in_channels) == (2, 1), (
        f"prune_channels: the pruned convolution says in_channels={new[0].in_channels}, "
        f"out_channels={new[0].out_channels}; expected 1 and 2 (from its new weight)")
    cols = [0, 1, 2, 3, 8, 9, 10, 11]
    if new[3].weight.shape == (10, 8) and np.array_equal(new[3].weight.data, head.weight.data[:, [0, 2, 4, 6, 8, 10, 12, 14]]):
        raise AssertionError("prune_channels: the Linear after Flatten kept every 2nd column; a channel is a "
                             "BLOCK of H*W consecutive columns (channel 2: columns 8..11)")
    assert_close(new[3].weight.data, head.weight.data[:, cols], "prune_channels: the Linear after Flatten keeps "
                 "the column blocks of channels 0 and 2 (columns 0..3 and 8..11)", [head.weight.data], atol=0, rtol=0)
    assert (new[3].in_features, new[3].out_features) == (8, 10), (
        f"prune_channels: the new Linear says in_features={new[3].in_features}, expected 8")
    assert_close(new[3].bias.data, head.bias.data, "prune_channels: the head's bias stays", [], atol=0, rtol=0)


@pytest.mark.task("prune_channels")
@SETTINGS
@given(fraction=st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), seed=st.integers(0, 20), bias=st.booleans(),
       act=st.sampled_from([ReLU, Tanh, GELU]))
def test_prune_channels_computes_the_silenced_original(fraction, seed, bias, act):
    model = small_cnn(seed=seed, bias=bias, act=act)
    keep1 = norms_keep(model[0].weight.data, fraction)
    keep2 = norms_keep(model[3].weight.data[:, keep1], fraction)  # conv 2's filters after losing inputs
    new = pruned_cnn(model, fraction)
    what = f"fraction {fraction}, bias={bias}, {act.__name__}"
    for at, (old, keep, cin) in {0: (model[0], keep1, None), 3: (model[3], keep2, keep1)}.items():
        want = old.weight.data[keep] if cin is None else old.weight.data[keep][:, cin]
        got = new[at].weight.data
        if got.shape != want.shape:
            raise AssertionError(f"prune_channels: {what}: convolution {at} has weight {got.shape}, expected "
                                 f"{want.shape} (remove round(fraction * out_channels) filters, keep at least one; "
                                 "score the second convolution's filters after removing its pruned inputs)")
        assert_close(got, want, f"prune_channels: {what}: convolution {at}'s weight (filters {keep.tolist()})",
                     [old.weight.data], atol=0, rtol=0)
        assert (new[at].out_channels, new[at].in_channels) == want.shape[:2], (
            f"prune_channels: {what}: convolution {at} says in_channels={new[at].in_channels}, "
            f"out_channels={new[at].out_channels}, but its weight is {want.shape}")
        if bias:
            assert_close(new[at].bias.data, old.bias.data[keep], f"prune_channels: {what}: convolution {at}'s "
                         "bias", [], atol=0, rtol=0)
        else:
            assert new[at].bias is None, f"prune_channels: {what}: a convolution without bias got one"
    x = Tensor(rand(3, 2, 10, 10, seed=seed + 9))
    with no_grad():
        got = call("prune_channels", new, x)
        expected = silenced_cnn(model, keep1, keep2)(x)
    assert_close(got, expected.data, f"prune_channels: {what}: the pruned network must compute what the original "
                 "computes with the removed channels' readers zeroed (the next convolution's input channels, the "
                 "head's column blocks)", [x.data], atol=1e-4)


@pytest.mark.task("prune_channels")
def test_prune_channels_edges():
    model = small_cnn(seed=4)
    for bad in (-0.1, 1.1):
        expect_error("prune_channels", ValueError, prune_channels, model, bad)
    mixed = Sequential(Conv(2, 4, 3, seed=1), ChannelMixer(), Conv(4, 2, 1, seed=2))
    expect_error("prune_channels", ValueError, prune_channels, mixed, 0.5)
    expect_error("prune_channels", ValueError, prune_channels, Sequential(Linear(3, 4), ReLU(), Linear(4, 2)), 0.5)
    # a convolution read by a convolution after two elementwise layers and a Dropout; a Linear head
    # that is not after a Flatten is not a reader (nothing pruned there), the layers after come along
    chain = Sequential(Conv(1, 5, 1, seed=7), Tanh(), Dropout(0.5), Conv(5, 3, 1, seed=8), ReLU())
    chain.eval()
    keep = norms_keep(chain[0].weight.data, 0.4)
    new = pruned_cnn(chain, 0.4)
    assert new[3].weight.shape == (3, len(keep), 1, 1), (
        f"prune_channels: the reader convolution has weight {new[3].weight.shape}, expected {(3, len(keep), 1, 1)}; "
        "the last convolution (read by nothing) keeps its filters")
    new.eval()
    x = Tensor(rand(2, 1, 3, 3, seed=3))
    twin = copy.deepcopy(chain)
    twin[3].weight.data[:, np.setdiff1d(np.arange(5), keep)] = 0.0
    with no_grad():
        assert_close(call("prune_channels", new, x), twin(x).data, "prune_channels: Conv, Tanh, Dropout, Conv, ReLU "
                     "pruned at 0.4", [x.data], atol=1e-5)
    same = pruned_cnn(model, 0.0)
    xs = Tensor(rand(2, 2, 10, 10, seed=1))
    with no_grad():
        assert_close(call("prune_channels", same, xs), model(xs).data, "prune_channels: fraction 0 must compute the "
                     "same function", [xs.data], atol=1e-6)


# ---------------------------------------------------------------------------------------------
# soft_target_kl (forward)
# ---------------------------------------------------------------------------------------------
def kl_formula(s, t, T, reverse=False, t_squared=True, mean=True):
    """T^2 / N * sum_n sum_c p_t (log p_t - log p_s), in float64 (keywords: the usual mistakes)."""
    def log_softmax(z):
        z = np.asarray(z, np.float64) / T
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    ls, lt = log_softmax(s), log_softmax(t)
    if reverse:
        ls, lt = lt, ls
    total = np.sum(np.exp(lt) * (lt - ls))
    return total * (T * T if t_squared else 1.0) / (len(s) if mean else 1.0)


def soft_kl(s, t, T, name="soft_target_kl"):
    out = call(name, soft_target_kl, s, t, T)
    if not isinstance(out, Tensor):
        raise AssertionError(f"soft_target_kl: returned {type(out).__name__}, expected a Tensor")
    return out


@pytest.mark.task("soft_target_kl")
def test_soft_target_kl_forward_worked_example():
    teacher = np.array([[4.0, 1.0, 0.0]], np.float32)
    for T, expected in ((1.0, 0.5186), (4.0, 0.8904)):
        student = Tensor(np.array([[2.0, 2.0, 0.0]], np.float32), requires_grad=True)
        got = float(soft_kl(student, teacher, T).data)
        wrong = {"without the T^2 factor": kl_formula(student.data, teacher, T, t_squared=False),
                 "reversed: KL(p_s || p_t) instead of KL(p_t || p_s)": kl_formula(student.data, teacher, T, reverse=True)}
        for why, value in wrong.items():
            if abs(value - expected) > 1e-3 and abs(got - value) < 1e-4:
                raise AssertionError(f"soft_target_kl: worked example at T = {T}: got {got:.4f}, which is the KL "
                                     f"{why}; expected {expected}")
        assert abs(got - expected) < 1e-4, (f"soft_target_kl: worked example (student (2, 2, 0), teacher (4, 1, 0), "
                                            f"T = {T}): got {got:.4f}, expected {expected}")


@pytest.mark.task("soft_target_kl")
@pytest.mark.parametrize("T", [1.0, 2.0, 4.0, 7.5])
@pytest.mark.parametrize("n, c", [(1, 2), (4, 3), (6, 10)])
def test_soft_target_kl_forward_matches_the_formula(T, n, c):
    s = rand(n, c, seed=n + c, scale=2.0)
    t = rand(n, c, seed=n * c + 7, scale=3.0)
    student = Tensor(s, requires_grad=True)
    out = soft_kl(student, t, T)
    what = f"N = {n}, C = {c}, T = {T}"
    assert out.shape == (), f"soft_target_kl: {what}: output shape {out.shape}, expected () (a scalar loss)"
    assert out.dtype == np.float32, f"soft_target_kl: {what}: float32 logits gave a {out.dtype} loss"
    got = float(out.data)
    if n > 1 and abs(got - kl_formula(s, t, T, mean=False)) < 1e-4 * max(1.0, abs(got)):
        raise AssertionError(f"soft_target_kl: {what}: got the SUM over the batch ({got:.4f}); average over the N "
                             "rows (PyTorch's reduction='batchmean')")
    expected = kl_formula(s, t, T)
    assert abs(got - expected) < 1e-4 * max(1.0, abs(expected)), (
        f"soft_target_kl: {what}: got {got:.6f}, expected T^2 / N sum KL(p_t || p_s) = {expected:.6f}")
    assert out._op == "soft_target_kl" and len(out._parents) == 1 and out._parents[0] is student, (
        f"soft_target_kl: the output must be ONE recorded 'soft_target_kl' op whose only parent is the student's "
        f"logits (got op {out._op!r} with {len(out._parents)} parents); keep the given Tensor._make line")


@pytest.mark.task("soft_target_kl")
def test_soft_target_kl_forward_is_stable_and_leaves_the_teacher_alone():
    s = np.array([[0.5, -0.2, 0.1], [1.0, 0.0, 2.0]], np.float32)
    sure = np.array([[1000.0, 0.0, -1000.0], [-800.0, 900.0, 0.0]], np.float32)
    with np.errstate(all="ignore"):
        got = float(soft_kl(Tensor(s, requires_grad=True), sure, 1.0).data)
    assert np.isfinite(got), (f"soft_target_kl: a teacher with logits of +-1000 gave {got}; compute log p with a "
                              "stable log-softmax (never log of a softmax that rounded to 0)")
    assert abs(got - kl_formula(s, sure, 1.0)) < 1e-3 * abs(kl_formula(s, sure, 1.0)), \
        f"soft_target_kl: teacher logits of +-1000: got {got}, expected {kl_formula(s, sure, 1.0):.4f}"
    huge = np.array([[3000.0, 0.0, -3000.0]], np.float32)
    with np.errstate(all="ignore"):
        got = float(soft_kl(Tensor(huge, requires_grad=True), huge * 0.5, 2.0).data)
    assert np.isfinite(got), f"soft_target_kl: student logits of +-3000 gave {got}; subtract each row's maximum"
    same = rand(3, 4, seed=3)
    got = float(soft_kl(Tensor(same, requires_grad=True), same, 3.0).data)
    assert abs(got) < 1e-6, f"soft_target_kl: a student equal to its teacher must give 0, got {got}"
    teacher = Tensor(rand(3, 4, seed=4), requires_grad=True)  # a Tensor that could be trained: it must not be
    kept = teacher.data.copy()
    student = Tensor(same, requires_grad=True)
    out = soft_kl(student, teacher, 2.0)
    assert np.array_equal(teacher.data, kept), "soft_target_kl: changed the teacher's logits"
    assert all(p is not teacher for p in out._parents), (
        "soft_target_kl: the teacher's logits are a parent of the loss; the teacher is not trained - use only its "
        "values (the student's logits are the only parent)")
    expect_error("soft_target_kl", ValueError, soft_target_kl, Tensor(rand(2, 3)), rand(2, 4), 2.0)


# ---------------------------------------------------------------------------------------------
# soft_target_kl_backward
# ---------------------------------------------------------------------------------------------
def kl_grad_formula(s, t, T):
    def softmax(z):
        z = np.asarray(z, np.float64) / T
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return T / len(s) * (softmax(s) - softmax(t))


@pytest.mark.task("soft_target_kl_backward")
@pytest.mark.parametrize("T", [1.0, 2.5, 6.0])
def test_soft_target_kl_backward_gradcheck(T):
    s, t = rand(3, 4, seed=1, scale=2.0, dtype=np.float64), rand(3, 4, seed=2, scale=2.0, dtype=np.float64)
    gradcheck(lambda a, b: soft_target_kl(a, b, T), s, t, name="soft_target_kl_backward", wrt=[0])


@pytest.mark.task("soft_target_kl_backward")
def test_soft_target_kl_backward_closed_form():
    s, t = rand(4, 5, seed=3, scale=2.0), rand(4, 5, seed=4, scale=2.0)
    for T in (1.0, 3.0):
        out = soft_kl(Tensor(s, requires_grad=True), t, T, name="soft_target_kl_backward")
        g = np.array(2.0, np.float32)
        grads = call("soft_target_kl_backward", soft_target_kl_backward, g, out)
        if not isinstance(grads, (tuple, list)) or len(grads) != 1:
            raise AssertionError("soft_target_kl_backward: must return a tuple with one gradient (for the student's "
                                 f"logits), got {type(grads).__name__}")
        grad = np.asarray(grads[0])
        expected = 2.0 * kl_grad_formula(s, t, T)
        if T != 1.0 and grad.shape == expected.shape and np.allclose(grad, expected / T, atol=1e-5):
            raise AssertionError(f"soft_target_kl_backward: at T = {T} the gradient is (p_s - p_t) / (T N) - the KL's "
                                 "own gradient without the T^2 of the loss; expected T / N (p_s - p_t)")
        assert_close(grad, expected, f"soft_target_kl_backward: T = {T}, incoming g = 2: g * T / N * (p_s - p_t)",
                     [s, t])
        assert grad.dtype == np.float32, f"soft_target_kl_backward: returned {grad.dtype} for a float32 g"
        assert np.allclose(grad.sum(axis=1), 0.0, atol=1e-6), \
            "soft_target_kl_backward: each row of the gradient must sum to 0 (softmax ignores a shift of the logits)"
    student, teacher = Tensor(s, requires_grad=True), Tensor(t, requires_grad=True)
    call("soft_target_kl_backward", soft_kl(student, teacher, 2.0, name="soft_target_kl_backward").backward)
    assert teacher.grad is None, "soft_target_kl_backward: the teacher's logits received a gradient"
    assert student.grad is not None, "soft_target_kl_backward: the student's logits received no gradient"
    assert_close(student.grad, kl_grad_formula(s, t, 2.0), "soft_target_kl_backward: through backward(), T = 2",
                 [s, t])


@pytest.mark.task("soft_target_kl_backward")
@pytest.mark.parametrize("T", [1.0, 4.0])
def test_soft_target_kl_backward_vs_torch(T):
    torch = torch_or_skip()

    s, t = rand(5, 6, seed=5, scale=2.0), rand(5, 6, seed=6, scale=2.0)
    F = torch.nn.functional
    torch_parity(lambda a: soft_target_kl(a, t, T),
                 lambda a: F.kl_div(F.log_softmax(a / T, dim=1), F.softmax(torch.tensor(t) / T, dim=1),
                                    reduction="batchmean") * T * T,
                 s, name="soft_target_kl_backward")


# ---------------------------------------------------------------------------------------------
# distillation_loss
# ---------------------------------------------------------------------------------------------
def ce_formula(s, y):
    z = np.asarray(s, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(y)), y].mean()


def soft_term_ok(s, t, T):
    """distillation_loss builds on soft_target_kl: if that is wrong, say so under its own name."""
    got = float(soft_kl(Tensor(s, requires_grad=True), t, T).data)
    expected = kl_formula(s, t, T)
    assert abs(got - expected) < 1e-4 * max(1.0, abs(expected)), (
        f"soft_target_kl: got {got:.6f}, expected {expected:.6f} (distillation_loss uses it)")


@pytest.mark.task("distillation_loss")
@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
def test_distillation_loss_mixes_soft_and_hard_targets(alpha):
    s, t = rand(6, 4, seed=7, scale=2.0), rand(6, 4, seed=8, scale=2.0)
    y = np.array([0, 3, 1, 1, 2, 0])
    T = 3.0
    soft_term_ok(s, t, T)
    out = call("distillation_loss", distillation_loss, Tensor(s, requires_grad=True), t, y, temperature=T, alpha=alpha)
    if not isinstance(out, Tensor) or out.shape != ():
        raise AssertionError(f"distillation_loss: must return a scalar Tensor, got {type(out).__name__} "
                             f"{getattr(out, 'shape', '')}")
    soft, hard = kl_formula(s, t, T), ce_formula(s, y)
    expected = alpha * soft + (1 - alpha) * hard
    got = float(out.data)
    if alpha not in (0.5,) and abs(got - ((1 - alpha) * soft + alpha * hard)) < 1e-4:
        raise AssertionError(f"distillation_loss: alpha = {alpha}: got {got:.5f} = (1 - alpha) soft + alpha hard; "
                             "alpha weighs the SOFT (teacher) term")
    if abs(got - (alpha * soft / (T * T) + (1 - alpha) * hard)) < 1e-4 and alpha > 0:
        raise AssertionError(f"distillation_loss: alpha = {alpha}: the soft term lost its T^2 factor")
    assert abs(got - expected) < 1e-4 * max(1.0, abs(expected)), (
        f"distillation_loss: alpha = {alpha}, T = {T}: got {got:.6f}, expected alpha * {soft:.5f} (soft) + "
        f"(1 - alpha) * {hard:.5f} (cross-entropy with the labels at T = 1) = {expected:.6f}")
    if alpha == 1.0:
        out = call("distillation_loss", distillation_loss, Tensor(s, requires_grad=True), t, None, temperature=T,
                   alpha=1.0)
        assert abs(float(out.data) - soft) < 1e-4 * max(1.0, soft), \
            "distillation_loss: with alpha = 1 and targets=None it must return the soft term"
    else:
        expect_error("distillation_loss", ValueError, distillation_loss, Tensor(s), t, None, T, alpha)


@pytest.mark.task("distillation_loss")
@pytest.mark.parametrize("T, alpha", [(1.0, 0.5), (3.0, 0.7), (5.0, 0.0), (2.0, 1.0)])
def test_distillation_loss_gradcheck(T, alpha):
    s, t = rand(4, 3, seed=9, scale=2.0, dtype=np.float64), rand(4, 3, seed=10, scale=2.0, dtype=np.float64)
    y = np.array([2, 0, 1, 2])
    gradcheck(lambda a, b: soft_target_kl(a, b, T), s, t, name="soft_target_kl_backward", wrt=[0])
    gradcheck(lambda a, b: distillation_loss(a, b, y, temperature=T, alpha=alpha), s, t, name="distillation_loss",
              wrt=[0])


@pytest.mark.task("distillation_loss")
def test_distillation_loss_vs_torch():
    torch = torch_or_skip()

    s, t = rand(5, 4, seed=11, scale=2.0), rand(5, 4, seed=12, scale=2.0)
    y = np.array([1, 0, 3, 2, 1])
    T, alpha = 4.0, 0.6
    F = torch.nn.functional

    def theirs(a):
        soft = F.kl_div(F.log_softmax(a / T, dim=1), F.softmax(torch.tensor(t) / T, dim=1), reduction="batchmean")
        return alpha * soft * T * T + (1 - alpha) * F.cross_entropy(a, torch.tensor(y))

    torch_parity(lambda a: distillation_loss(a, t, y, temperature=T, alpha=alpha), theirs, s, name="distillation_loss")


@pytest.mark.task("distillation_loss")
def test_distillation_loss_trains_a_student_towards_its_teacher():
    """A linear student trained on a fixed teacher's logits (alpha = 1) with SGD: the soft loss falls
    to a small fraction, and the student ends up agreeing with the teacher's top class."""
    x = rand(64, 5, seed=13)
    teacher_w = rand(3, 5, seed=14, scale=2.0)
    teacher_logits = x @ teacher_w.T  # (64, 3)
    student = Linear(5, 3)
    opt = SGD(student.parameters(), lr=0.5)
    xt = Tensor(x)
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = call("distillation_loss", distillation_loss, student(xt), teacher_logits, None, temperature=2.0,
                    alpha=1.0)
        call("distillation_loss", loss.backward)
        if student.weight.grad is None:
            raise AssertionError("distillation_loss: the student's weights received no gradient")
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0], (f"distillation_loss: 150 SGD steps on the soft loss took it from "
                                          f"{losses[0]:.4f} only to {losses[-1]:.4f}; the gradient must pull the "
                                          "student towards the teacher")
    with no_grad():
        agree = np.mean(np.argmax(student(xt).data, axis=1) == np.argmax(teacher_logits, axis=1))
    assert agree >= 0.9, f"distillation_loss: the trained student agrees with its teacher on {agree:.0%} of the inputs"
