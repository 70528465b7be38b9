"""Checks for module 14: parameter counts, analytic FLOPs, memory, latency, roofline, Profiler.

FLOPs are checked against hand-counted fixtures (each one written out in a comment) that tell the
classic slips apart - the +1 of the convolution's output size, a forgotten stride, padding or bias,
height and width swapped, T instead of T^2 - and against oracles that do not share the formula:
the number of windows that fit, counted by a loop, and the output size of the real layer's forward.
Timing is checked with a fake clock (exact, instant); memory with arrays of known size under
tracemalloc; the Profiler on a real training step of a tiny seeded MLP, with everything it
touched checked to be put back.

Layers of modules 09 (Conv2d), 12 (MultiHeadAttention) and 13 (GPT) are used when they are in the
package under test; the formula checks use stand-ins with the same attributes, so module 14 needs
only modules 01-08.
"""

from __future__ import annotations

import math
import time
import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinytorch import autograd
from tinytorch.activations import ReLU
from tinytorch.layers import Linear, Module, Parameter, Sequential
from tinytorch.losses import CrossEntropyLoss
from tinytorch.optimizers import SGD, Adam
from tinytorch.profiling import (LatencyStats, Profiler, ProfileEvent, attention_flops, conv2d_flops,
                                 count_parameters, flops, flops_table, linear_flops, measure_latency,
                                 memory_bytes, peak_training_memory, percentile, roofline)
from tinytorch.tensor import Tensor, manual_seed
from tito.checks.harness import assert_close, blame, call, expect_error, hypothesis_settings

SETTINGS = hypothesis_settings(max_examples=40)


def mlp(seed: int = 0, sizes=(784, 256, 128, 10)) -> Sequential:
    manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [Linear(a, b)] + ([ReLU()] if i < len(sizes) - 2 else [])
    return Sequential(*layers)


def conv_layer(c_in, c_out, k, stride=1, padding=0, bias=True):
    """A stand-in with Conv2d's attributes (pairs, as Conv2d stores them)."""
    pair = lambda v: tuple(v) if isinstance(v, tuple) else (v, v)  # noqa: E731
    return SimpleNamespace(in_channels=c_in, out_channels=c_out, kernel_size=pair(k), stride=pair(stride),
                           padding=pair(padding), bias=np.zeros(c_out, np.float32) if bias else None)


def attention_layer(d, heads, bias=True):
    """A stand-in with MultiHeadAttention's attributes: qkv = Linear(D, 3D), proj = Linear(D, D)."""
    manual_seed(0)
    return SimpleNamespace(embed_dim=d, num_heads=heads, qkv=Linear(d, 3 * d, bias=bias),
                           proj=Linear(d, d, bias=bias))


# ---------------------------------------------------------------------------------------------
# count_parameters
# ---------------------------------------------------------------------------------------------
class Tied(Module):
    """One Parameter used by two attributes (like GPT's tied embedding and head), a float64 one,
    and a 3-D one (len() of which is its first axis only)."""

    def __init__(self):
        super().__init__()
        self.table = Parameter(np.zeros((7, 3), np.float32))
        self.head = self.table  # the same Parameter again
        self.scale = Parameter(np.ones(5, np.float64), dtype=np.float64)
        self.kernel = Parameter(np.zeros((2, 3, 4), np.float32))


@pytest.mark.task("count_parameters")
def test_count_parameters_by_hand():
    got = call("count_parameters", count_parameters, mlp())
    # 784*256 + 256 + 256*128 + 128 + 128*10 + 10
    assert got == 235_146, f"count_parameters: got {got} for the MLP 784-256-128-10, expected 235,146"
    assert isinstance(got, int), f"count_parameters: returned a {type(got).__name__}, expected an int"
    got = count_parameters(Linear(6, 4, bias=False))
    assert got == 24, f"count_parameters: got {got} for Linear(6, 4, bias=False), expected 24 (no bias)"
    got = count_parameters(Tied())
    # 7*3 (the tied table, once) + 5 (float64: still 5 numbers, not 40 bytes) + 2*3*4 (all axes)
    assert got == 50, (f"count_parameters: got {got}, expected 50 = 21 (a tied matrix counts ONCE) + 5 "
                       "(a float64 vector: count numbers, not bytes) + 24 (a 2x3x4 array: every axis)")
    assert count_parameters(ReLU()) == 0, "count_parameters: an activation has no parameters"


# ---------------------------------------------------------------------------------------------
# linear_flops
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("linear_flops")
def test_linear_flops_by_hand():
    manual_seed(0)
    cases = [
        (Linear(3, 2), (4, 3), 56, "2*4*3*2 = 48 for the product + 4*2 = 8 bias adds"),
        (Linear(3, 2, bias=False), (4, 3), 48, "no bias: 2*4*3*2"),
        (Linear(8, 8), (2, 5, 8), 1_360, "(2, 5, 8) is 10 rows: 2*10*8*8 + 10*8"),
        (Linear(3, 2), (3,), 14, "a 1-D input is one row: 2*3*2 + 2"),
        (Linear(784, 256), (128, 784), 51_412_992, "2*128*784*256 + 128*256"),
        (Linear(5, 7), (2, 3, 4, 5), 1_848, "24 rows: 2*24*5*7 + 24*7"),
    ]
    for layer, shape, want, why in cases:
        got = call("linear_flops", linear_flops, layer, shape)
        assert got == want, (f"linear_flops: got {got} for Linear({layer.in_features}, {layer.out_features}, "
                             f"bias={layer.bias is not None}) on {shape}, expected {want} ({why})")
    expect_error("linear_flops", ValueError, linear_flops, Linear(3, 2), (4, 5), match="linear_flops")


@pytest.mark.task("linear_flops")
@SETTINGS
@given(lead=st.lists(st.integers(1, 6), min_size=0, max_size=3), d_in=st.integers(1, 50),
       d_out=st.integers(1, 50), bias=st.booleans())
def test_linear_flops_counts_every_multiply_add(lead, d_in, d_out, bias):
    """Oracle: the multiply-adds the layer's own forward performs - one per (row, output, input)
    triple, a row being every position of the leading axes - and one add per output for a bias."""
    manual_seed(0)
    layer = Linear(d_in, d_out, bias=bias)
    shape = (*lead, d_in)
    y = layer(Tensor(np.zeros(shape, np.float32)))
    want = 2 * (y.data.size * d_in) + (y.data.size if bias else 0)
    got = call("linear_flops", linear_flops, layer, shape)
    assert got == want, (f"linear_flops: got {got} for Linear({d_in}, {d_out}, bias={bias}) on {shape}, "
                         f"expected {want} ({y.data.size} output numbers, each {2 * d_in} FLOPs"
                         f"{' + 1 bias add' if bias else ''})")


# ---------------------------------------------------------------------------------------------
# conv2d_flops
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("conv2d_flops")
def test_conv2d_flops_by_hand():
    # (layer, input, expected, how it was counted, what the classic slips give)
    cases = [
        (conv_layer(3, 4, (3, 2), stride=(2, 3), padding=(1, 0)), (2, 3, 7, 9), 3_552,
         "H_out = (7+2-3)//2+1 = 4, W_out = (9-2)//3+1 = 3: 2*4*3*4 = 96 outputs, each 2*3*3*2 = 36 "
         "FLOPs, + 96 bias adds"),
        (conv_layer(1, 6, 5, padding=2), (1, 1, 28, 28), 239_904,
         "LeNet-5 conv1: 28x28 outputs (padding 2 keeps the size), 2*784*6*25 + 784*6"),
        (conv_layer(6, 16, 5), (3, 6, 14, 14), 1_444_800,
         "LeNet-5 conv2: 10x10 outputs, 2*3*100*16*150 + 3*100*16"),
        (conv_layer(2, 3, 3, stride=2, bias=False), (1, 2, 8, 8), 972,
         "(8-3)//2+1 = 3: 3*3*3 = 27 outputs, each 2*2*9 = 36 FLOPs, no bias"),
        (conv_layer(1, 1, (1, 3), stride=(1, 2), padding=(0, 1)), (1, 1, 2, 6), 42,
         "H_out = 2, W_out = (6+2-3)//2+1 = 3: 6 outputs, each 2*3 = 6 FLOPs, + 6"),
        (conv_layer(4, 2, 3, stride=3, padding=1), (2, 4, 10, 10), 4_672,
         "(10+2-3)//3+1 = 4: 2*2*16 = 64 outputs, each 2*4*9 = 72 FLOPs (the last window just fits), + 64"),
    ]
    for layer, shape, want, why in cases:
        got = call("conv2d_flops", conv2d_flops, layer, shape)
        assert got == want, (f"conv2d_flops: got {got} for Conv2d({layer.in_channels}, {layer.out_channels}, "
                             f"kernel_size={layer.kernel_size}, stride={layer.stride}, padding={layer.padding}, "
                             f"bias={layer.bias is not None}) on {shape}, expected {want}: {why}")
    expect_error("conv2d_flops", ValueError, conv2d_flops, conv_layer(3, 4, 3), (1, 2, 8, 8),
                 match="conv2d_flops")


def _windows(size: int, k: int, s: int, p: int) -> int:
    """How many windows of k fit in size + 2p at offsets 0, s, 2s, ... - counted one by one."""
    count, offset = 0, 0
    while offset + k <= size + 2 * p:
        count += 1
        offset += s
    return count


@pytest.mark.task("conv2d_flops")
@SETTINGS
@given(n=st.integers(1, 3), c_in=st.integers(1, 4), c_out=st.integers(1, 4), h=st.integers(1, 12),
       w=st.integers(1, 12), kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 3),
       sw=st.integers(1, 3), ph=st.integers(0, 2), pw=st.integers(0, 2), bias=st.booleans())
def test_conv2d_flops_counts_every_window(n, c_in, c_out, h, w, kh, kw, sh, sw, ph, pw, bias):
    ho, wo = _windows(h, kh, sh, ph), _windows(w, kw, sw, pw)
    if ho == 0 or wo == 0:
        return  # the kernel does not fit at all: no valid convolution
    layer = conv_layer(c_in, c_out, (kh, kw), (sh, sw), (ph, pw), bias)
    outputs = n * c_out * ho * wo
    want = outputs * 2 * c_in * kh * kw + (outputs if bias else 0)
    got = call("conv2d_flops", conv2d_flops, layer, (n, c_in, h, w))
    assert got == want, (f"conv2d_flops: got {got}, expected {want} for input {(n, c_in, h, w)}, kernel "
                         f"{(kh, kw)}, stride {(sh, sw)}, padding {(ph, pw)}, bias={bias}: {ho} x {wo} windows "
                         f"fit (counted one by one), {outputs} outputs of {2 * c_in * kh * kw} FLOPs each")


@pytest.mark.task("conv2d_flops")
def test_conv2d_flops_on_the_real_layer():
    conv = pytest.importorskip("tinytorch.convolutions", reason="module 09 (Conv2d) is not in this package",
                               exc_type=ImportError)
    manual_seed(0)
    for args, kwargs, shape in [((3, 5, 3), dict(stride=2, padding=1), (2, 3, 9, 8)),
                                ((2, 4, (2, 3)), dict(stride=(1, 2)), (1, 2, 6, 7)),
                                ((1, 2, 4), dict(padding=2, bias=False), (2, 1, 5, 5))]:
        layer = conv.Conv2d(*args, **kwargs)
        y = layer(Tensor(np.zeros(shape, np.float32)))
        kh, kw = layer.kernel_size
        per_output = 2 * layer.in_channels * kh * kw + (1 if layer.bias is not None else 0)
        want = y.data.size * per_output
        got = call("conv2d_flops", conv2d_flops, layer, shape)
        assert got == want, (f"conv2d_flops: got {got} for {layer!r} on {shape}; its forward gives {y.shape}, "
                             f"{y.data.size} outputs of {per_output} FLOPs: {want}")


# ---------------------------------------------------------------------------------------------
# attention_flops
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("attention_flops")
def test_attention_flops_by_hand():
    cases = [
        (attention_layer(8, 2), (2, 5, 8), 7_040,
         "qkv 2*10*8*24 + 240 = 4,080; proj 2*10*8*8 + 80 = 1,360; QK^T and PV 2*2*25*8 = 800 each"),
        (attention_layer(8, 2, bias=False), (2, 5, 8), 6_720, "the same without the 320 bias adds"),
        (attention_layer(12, 3), (3, 7, 12), 32_256,
         "N = 21 rows: qkv 2*21*12*36 + 756 = 18,900; proj 2*21*144 + 252 = 6,300; "
         "QK^T and PV 2*3*49*12 = 3,528 each (T^2, not T)"),
        (attention_layer(6, 1), (1, 4, 6), 1_632,
         "one head: qkv 2*4*6*18 + 72 = 936; proj 2*4*36 + 24 = 312; 2*16*6 = 192 each"),
    ]
    for layer, shape, want, why in cases:
        got = call("attention_flops", attention_flops, layer, shape)
        assert got == want, (f"attention_flops: got {got} for embed_dim={layer.embed_dim}, "
                             f"num_heads={layer.num_heads}, bias={layer.qkv.bias is not None} on {shape}, "
                             f"expected {want}: {why}")
    # the number of heads does not change the arithmetic
    one, four = attention_flops(attention_layer(16, 1), (2, 9, 16)), attention_flops(attention_layer(16, 4), (2, 9, 16))
    assert one == four, (f"attention_flops: {one} FLOPs with 1 head but {four} with 4 heads of the same "
                         "width; n_h heads of D/n_h features cost the same as one head of D")


@pytest.mark.task("attention_flops")
def test_attention_flops_on_the_real_layer():
    attention = pytest.importorskip("tinytorch.attention", exc_type=ImportError,
                                    reason="module 12 (MultiHeadAttention) is not in this package")
    manual_seed(0)
    layer = attention.MultiHeadAttention(12, 3)
    # qkv 2*14*12*36 + 14*36 = 12,600; proj 2*14*144 + 168 = 4,200; 2*2*49*12 = 2,352 twice
    got = call("attention_flops", attention_flops, layer, (2, 7, 12))
    assert got == 21_504, f"attention_flops: got {got} for MultiHeadAttention(12, 3) on (2, 7, 12), expected 21,504"


# ---------------------------------------------------------------------------------------------
# A whole model: flops / flops_table (given) on your formulas
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("flops_table")
def test_flops_of_a_sequential_model():
    model = mlp()
    rows = call("linear_flops", flops_table, model, (128, 784))
    got = [(r.name, r.kind, r.output_shape, r.flops) for r in rows]
    want = [("0", "Linear", (128, 256), 51_412_992), ("1", "ReLU", (128, 256), 0),
            ("2", "Linear", (128, 128), 8_404_992), ("3", "ReLU", (128, 128), 0),
            ("4", "Linear", (128, 10), 328_960)]
    assert got == want, f"linear_flops: flops_table of the MLP 784-256-128-10 at batch 128 gave {got}, expected {want}"
    total = flops(model, (128, 784))
    assert total == 60_146_944, f"linear_flops: the MLP's total is {total} FLOPs, expected 60,146,944"
    assert flops(ReLU(), (4, 5)) == 0, "flops: an elementwise layer counts 0"


@pytest.mark.task("flops_table")
def test_flops_of_lenet5_and_a_gpt():
    conv = pytest.importorskip("tinytorch.convolutions", reason="module 09 (Conv2d) is not in this package",
                               exc_type=ImportError)
    from tinytorch.layers import Flatten

    manual_seed(0)
    lenet = Sequential(conv.Conv2d(1, 6, 5, padding=2), ReLU(), conv.MaxPool2d(2), conv.Conv2d(6, 16, 5), ReLU(),
                       conv.MaxPool2d(2), Flatten(), Linear(400, 120), ReLU(), Linear(120, 84), ReLU(),
                       Linear(84, 10))
    # conv1 239,904 + conv2 481,600 + fc 96,120 + 20,244 + 1,690 (per image)
    got = flops(lenet, (2, 1, 28, 28))
    assert got == 2 * 839_558, f"conv2d_flops: LeNet-5 on 2 images counts {got} FLOPs, expected {2 * 839_558:,}"
    transformers = pytest.importorskip("tinytorch.transformers", exc_type=ImportError,
                                       reason="module 13 (GPT) is not in this package")
    cfg = transformers.GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)
    gpt = transformers.GPT(cfg)
    n, c, t = 3 * 8, 16, 8  # B = 3, T = 8: 24 token rows
    block = ((2 * n * c * 3 * c + n * 3 * c) + (2 * n * c * c + n * c)  # qkv, proj
             + 2 * 2 * 3 * t * t * c  # Q K^T and P V
             + (2 * n * c * 4 * c + n * 4 * c) + (2 * n * 4 * c * c + n * c))  # the MLP's two Linear layers
    want = 2 * block + 2 * n * c * 11  # two blocks and the head (no bias)
    got = flops(gpt, (3, 8))
    assert got == want, f"attention_flops: the GPT {cfg} on (3, 8) counts {got:,} FLOPs, expected {want:,}"


# ---------------------------------------------------------------------------------------------
# memory_bytes
# ---------------------------------------------------------------------------------------------
def _batch(n=16, d=12, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    return Tensor(rng.standard_normal((n, d)).astype(np.float32)), rng.integers(0, classes, n)


@pytest.mark.task("memory_bytes")
def test_memory_bytes_through_a_training_step():
    model = mlp(sizes=(12, 8, 5))  # 12*8 + 8 + 8*5 + 5 = 149 float32 numbers = 596 bytes
    model[2].bias.requires_grad = False  # frozen: no gradient, no optimizer state
    opt = Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    keys = {"parameters", "gradients", "optimizer_state", "total"}
    got = call("memory_bytes", memory_bytes, model, opt)
    assert isinstance(got, dict) and set(got) == keys, \
        f"memory_bytes: returned {got!r}, expected a dict with the keys {sorted(keys)}"
    assert got == {"parameters": 596, "gradients": 0, "optimizer_state": 0, "total": 596}, \
        f"memory_bytes: a fresh model (149 float32 parameters, no .grad yet, no optimizer step) gave {got}"
    x, y = _batch()
    CrossEntropyLoss()(model(x), y).backward()
    got = memory_bytes(model, opt)
    assert got["gradients"] == 576, (f"memory_bytes: gradients = {got['gradients']} bytes after backward, "
                                     "expected 576: the .grad arrays that exist (144 trainable numbers; the "
                                     "frozen bias of 5 has none)")
    opt.step()
    got = memory_bytes(model, opt)
    assert got == {"parameters": 596, "gradients": 576, "optimizer_state": 1_152, "total": 2_324}, \
        (f"memory_bytes: after one Adam step got {got}; expected Adam's two moments of the 144 trainable "
         "numbers (2 * 576 bytes; its step counters are ints, not arrays) and total = the sum")
    opt.zero_grad()
    got = memory_bytes(model)
    assert got == {"parameters": 596, "gradients": 0, "optimizer_state": 0, "total": 596}, \
        f"memory_bytes: after zero_grad() and without an optimizer got {got}"


@pytest.mark.task("memory_bytes")
def test_memory_bytes_counts_bytes_once_per_parameter():
    model = Tied()  # 21 float32 (tied: once) + 5 float64 + 24 float32
    got = call("memory_bytes", memory_bytes, model)
    assert got["parameters"] == 21 * 4 + 5 * 8 + 24 * 4, (
        f"memory_bytes: parameters = {got['parameters']}, expected 220 bytes: a tied matrix counts once, "
        "and a float64 number is 8 bytes (use nbytes, not size * 4)")
    lin = Linear(4, 3)
    opt = SGD(lin.parameters(), lr=0.1, momentum=0.9)
    lin(Tensor(np.ones((2, 4), np.float32))).sum().backward()
    opt.step()
    got = memory_bytes(lin, opt)
    assert got["optimizer_state"] == 60, (f"memory_bytes: SGD with momentum keeps one buffer per parameter "
                                          f"(15 numbers, 60 bytes); got {got['optimizer_state']}")
    plain = SGD(lin.parameters(), lr=0.1)
    plain.step()
    assert memory_bytes(lin, plain)["optimizer_state"] == 0, "memory_bytes: plain SGD keeps no state"


# ---------------------------------------------------------------------------------------------
# peak_training_memory
# ---------------------------------------------------------------------------------------------
MB4 = 1_000_000 * 4  # one array of a million float32 numbers
SLACK = 256 * 1024  # Python objects, tracebacks, the test's own bookkeeping


def _two_alive():
    a = np.ones(1_000_000, np.float32)
    b = np.ones(1_000_000, np.float32)
    return float(a[0] + b[0])


def _one_at_a_time():
    a = np.ones(1_000_000, np.float32)
    del a
    b = np.ones(1_000_000, np.float32)
    return float(b[0])


def _near(got, want, what):
    assert want <= got <= want + SLACK, (f"peak_training_memory: got {got:,} bytes for {what}, expected "
                                         f"{want:,} (up to {SLACK // 1024} KB more)")


@pytest.mark.task("peak_training_memory")
def test_peak_training_memory_of_known_allocations():
    was = tracemalloc.is_tracing()
    if was:
        tracemalloc.stop()
    try:
        _near(call("peak_training_memory", peak_training_memory, _two_alive), 2 * MB4,
              "two 4 MB arrays alive at once (the PEAK, not what is left at the end)")
        _near(peak_training_memory(_one_at_a_time), MB4, "4 MB, freed, then 4 MB again")
        assert not tracemalloc.is_tracing(), "peak_training_memory: left tracemalloc running (it was off)"

        def fails():
            np.ones(1000)
            raise KeyError("inside the step")

        with pytest.raises(KeyError):
            peak_training_memory(fails)
        assert not tracemalloc.is_tracing(), \
            "peak_training_memory: a step that raised left tracemalloc running (stop it in a finally)"
    finally:
        if was:
            tracemalloc.start()


@pytest.mark.task("peak_training_memory")
def test_peak_training_memory_while_already_tracing():
    """Tracing is on, a big array was made and freed before (an old peak), and another is held
    during the call: only the call's own peak above the starting level counts."""
    was = tracemalloc.is_tracing()
    if not was:
        tracemalloc.start()
    try:
        old = np.ones(5_000_000, np.float32)  # a 20 MB peak before the call
        del old
        held = np.ones(2_500_000, np.float32)  # 10 MB allocated before, and during, the call
        got = call("peak_training_memory", peak_training_memory, _one_at_a_time)
        _near(got, MB4, "a 4 MB step while tracing was already on (reset the peak; subtract the "
                        "memory traced at the start)")
        assert tracemalloc.is_tracing(), "peak_training_memory: stopped tracemalloc, which was already running"
        del held
    finally:
        if not was:
            tracemalloc.stop()


@pytest.mark.task("peak_training_memory")
def test_peak_training_memory_of_a_real_step():
    manual_seed(0)
    model = Sequential(Linear(64, 512), ReLU(), Linear(512, 4))
    opt = SGD(model.parameters(), lr=0.01)
    x, y = _batch(n=256, d=64, classes=4)

    def step():
        opt.zero_grad()
        CrossEntropyLoss()(model(x), y).backward()
        opt.step()

    step()
    got = call("peak_training_memory", peak_training_memory, step)
    hidden = 256 * 512 * 4  # the (256, 512) float32 hidden layer and its ReLU output coexist in the graph
    assert 2 * hidden <= got <= 2 * hidden + 4 * hidden, (
        f"peak_training_memory: a training step whose graph holds two 512 KB activations (plus their "
        f"gradients) peaked at {got:,} bytes; expected between {2 * hidden:,} and {6 * hidden:,}")


# ---------------------------------------------------------------------------------------------
# percentile
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("percentile")
def test_percentile_by_hand():
    times = np.array([5.0, 1.0, 4.0, 2.0, 3.0])
    before = times.copy()
    # sorted [1, 2, 3, 4, 5], rank r = q/100 * 4
    for q, want, why in [(0, 1.0, "the minimum"), (50, 3.0, "r = 2"), (90, 4.6, "r = 3.6: 4 + 0.6 * (5 - 4)"),
                         (25, 2.0, "r = 1"), (99, 4.96, "r = 3.96"), (100, 5.0, "the maximum"),
                         (10, 1.4, "r = 0.4")]:
        got = call("percentile", percentile, times, q)
        assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12), (
            f"percentile: p{q} of {before.tolist()} is {got}, expected {want} ({why} of the SORTED values, "
            "rank q/100 * (n - 1))")
    assert np.array_equal(times, before), "percentile: sorted the caller's array in place (sort a copy)"
    got = percentile([1.0, 2.0, 3.0, 4.0], 50)
    assert math.isclose(got, 2.5), f"percentile: the median of [1, 2, 3, 4] is {got}, expected 2.5"
    got = percentile([7.0], 90)
    assert got == 7.0, f"percentile: p90 of a single value 7.0 is {got}"
    got = percentile([10.0, 0.0, 0.0, 0.0], 90)
    assert math.isclose(got, 7.0), f"percentile: p90 of [10, 0, 0, 0] is {got}, expected 7.0 (not the mean, 2.5)"
    expect_error("percentile", ValueError, percentile, [1.0, 2.0], 101, match="percentile")


@pytest.mark.task("percentile")
@SETTINGS
@given(values=st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=60),
       q=st.floats(0, 100))
def test_percentile_matches_numpy(values, q):
    got = call("percentile", percentile, values, q)
    want = float(np.percentile(np.array(values, np.float64), q))
    assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9), \
        f"percentile: p{q} of {values} is {got}, numpy's linear method gives {want}"


# ---------------------------------------------------------------------------------------------
# measure_latency
# ---------------------------------------------------------------------------------------------
class FakeClock:
    """A clock that only moves when the timed function runs: call i takes durations_ms[i]."""

    def __init__(self, durations_ms):
        self.durations, self.now, self.calls = list(durations_ms), 0.0, 0

    def __call__(self) -> float:
        return self.now

    def work(self):
        self.now += self.durations[self.calls] / 1e3
        self.calls += 1


@pytest.mark.task("measure_latency")
def test_measure_latency_with_a_fake_clock():
    clock = FakeClock([50.0, 40.0, 30.0, 1.0, 6.0, 2.0, 5.0, 3.0, 4.0])  # 3 slow warm-up calls, then 6
    stats = call("measure_latency", measure_latency, clock.work, warmup=3, repeats=6, timer=clock)
    assert clock.calls == 9, f"measure_latency: called fn {clock.calls} times, expected 3 warm-up + 6 timed"
    assert isinstance(stats, LatencyStats), f"measure_latency: returned {type(stats).__name__}, not LatencyStats"
    times = np.asarray(stats.times_ms)
    assert times.shape == (6,) and times.dtype == np.float64, \
        f"measure_latency: times_ms has shape {times.shape} and dtype {times.dtype}, expected (6,) float64"
    assert_close(times, [1.0, 6.0, 2.0, 5.0, 3.0, 4.0], "measure_latency (times_ms: each timed call in ms, "
                 "in call order, warm-up excluded)", atol=1e-9, rtol=1e-9)
    # sorted [1, 2, 3, 4, 5, 6]: p50 r = 2.5 -> 3.5; p90 r = 4.5 -> 5.5; p99 r = 4.95 -> 5.95
    for name, want in [("mean", 3.5), ("p50", 3.5), ("p90", 5.5), ("p99", 5.95), ("min", 1.0)]:
        got = getattr(stats, name)
        assert math.isclose(got, want, rel_tol=1e-9), f"measure_latency: {name} = {got} ms, expected {want} ms"
    clock = FakeClock([2.0, 8.0])
    stats = measure_latency(clock.work, warmup=0, repeats=2, timer=clock)
    assert_close(np.asarray(stats.times_ms), [2.0, 8.0], "measure_latency (warmup=0: every call is timed)",
                 atol=1e-9, rtol=1e-9)
    expect_error("measure_latency", ValueError, measure_latency, clock.work, repeats=0, match="measure_latency")


@pytest.mark.task("measure_latency")
def test_measure_latency_on_the_real_clock():
    calls = []
    stats = call("measure_latency", measure_latency, lambda: calls.append(time.sleep(0.002)), warmup=2, repeats=4)
    assert len(calls) == 6, f"measure_latency: called fn {len(calls)} times, expected 2 + 4"
    assert len(stats.times_ms) == 4 and stats.min >= 1.9, (
        f"measure_latency: a 2 ms sleep measured {list(stats.times_ms)} ms (times in milliseconds, "
        "with time.perf_counter)")
    assert stats.min <= stats.p50 <= stats.p90 <= stats.p99, f"measure_latency: statistics out of order: {stats}"


# ---------------------------------------------------------------------------------------------
# roofline
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("roofline")
def test_roofline_by_hand():
    # a ReLU of 1e6 numbers: 1e6 FLOPs, 8e6 bytes, 1 ms, on 100 GFLOP/s and 10 GB/s
    p = call("roofline", roofline, 1e6, 8e6, 1e-3, 100.0, 10.0)
    got = (p.intensity, p.attainable_gflops, p.achieved_gflops, p.fraction, p.bound)
    assert np.allclose(got[:4], (0.125, 1.25, 1.0, 0.8)) and p.bound == "memory", (
        f"roofline: got {got} for a ReLU (1e6 FLOPs, 8e6 bytes, 1 ms; 100 GFLOP/s, 10 GB/s), expected "
        "intensity 0.125 FLOP/byte, roof min(100, 0.125 * 10) = 1.25, achieved 1.0 GFLOP/s, 80%, memory")
    p = roofline(51_412_992, 1_335_296, 4e-3, 100.0, 10.0)
    assert p.bound == "compute" and math.isclose(p.attainable_gflops, 100.0), (
        f"roofline: a Linear at {p.intensity:.1f} FLOP/byte (above the ridge, 10) is compute-bound with a "
        f"roof of 100 GFLOP/s; got {p}")
    assert math.isclose(p.achieved_gflops, 12.853248) and math.isclose(p.fraction, 0.12853248), \
        f"roofline: achieved = 51,412,992 FLOPs / 4 ms = 12.85 GFLOP/s, 12.9% of the roof; got {p}"
    p = roofline(3e9, 1e9, 0.5, 50.0, 20.0)  # intensity 3: 60 on the slant, so the peak 50 is lower
    assert p.bound == "compute" and math.isclose(p.attainable_gflops, 50.0), f"roofline: got {p}"
    p = roofline(2e9, 1e9, 0.5, 50.0, 25.0)  # intensity 2 at 25 GB/s: exactly at the ridge (50 = 50)
    assert p.bound == "compute" and math.isclose(p.attainable_gflops, 50.0), \
        f"roofline: at the ridge itself (slanted roof = peak = 50) the bound is 'compute'; got {p}"
    p = roofline(2e9, 1e9, 0.5, 50.0, 20.0)  # intensity 2: 40 < 50
    assert p.bound == "memory" and math.isclose(p.attainable_gflops, 40.0) and math.isclose(p.fraction, 0.1), \
        f"roofline: intensity 2 FLOP/byte at 20 GB/s has a roof of 40 GFLOP/s (memory-bound); got {p}"


# ---------------------------------------------------------------------------------------------
# Profiler.table and the Profiler on a real training step
# ---------------------------------------------------------------------------------------------
@pytest.mark.task("Profiler.table")
def test_profiler_table_from_events():
    prof = Profiler()
    prof.events.extend([
        ProfileEvent("fc", "Linear", "forward", 0.002, flops=1_000_000, nbytes=400),
        ProfileEvent("fc", "Linear", "backward", 0.003),
        ProfileEvent("sum", "op", "backward", 0.0005),
        ProfileEvent("fc", "Linear", "backward", 0.001),
        ProfileEvent("act", "ReLU", "forward", 0.0001, nbytes=80),
        ProfileEvent("Adam.step", "optimizer", "step", 0.003),
        ProfileEvent("fast", "Linear", "forward", 0.0, flops=10, nbytes=8),  # too fast for the clock
        ProfileEvent("act", "ReLU", "forward", 0.0001, nbytes=80),
        ProfileEvent("act", "ReLU", "backward", 0.0003),
        ProfileEvent("tie_a", "op", "backward", 0.0002),
        ProfileEvent("tie_b", "op", "backward", 0.0002),
        ProfileEvent("sum", "op", "backward", 0.0005),
        ProfileEvent("Adam.step", "optimizer", "step", 0.001),
    ])
    rows = call("Profiler.table", prof.table)
    names = [r.name for r in rows]
    assert names == ["fc", "Adam.step", "sum", "act", "tie_a", "tie_b", "fast"], (
        f"Profiler.table: rows in the order {names}; expected by total time, largest first (fc 6 ms, "
        "Adam.step 4 ms, sum 1 ms, act 0.5 ms), equal totals in first-seen order (tie_a, tie_b), fast 0 ms")
    by = {r.name: r for r in rows}
    want = {  # name: (kind, calls, forward_ms, backward_ms, step_ms, total_ms, flops, nbytes, gflops)
        "fc": ("Linear", 1, 2.0, 4.0, 0.0, 6.0, 1_000_000, 400, 0.5),
        "Adam.step": ("optimizer", 2, 0.0, 0.0, 4.0, 4.0, 0, 0, 0.0),
        "fast": ("Linear", 1, 0.0, 0.0, 0.0, 0.0, 10, 8, 0.0),  # no forward time: gflops 0.0, not a crash
        "sum": ("op", 2, 0.0, 1.0, 0.0, 1.0, 0, 0, 0.0),
        "act": ("ReLU", 2, 0.2, 0.3, 0.0, 0.5, 0, 160, 0.0),
    }
    fields = ("kind", "calls", "forward_ms", "backward_ms", "step_ms", "total_ms", "flops", "nbytes", "gflops")
    for name, values in want.items():
        with blame("Profiler.table", f"row {name}"):
            got = tuple(getattr(by[name], f) for f in fields)
        ok = got[:2] == values[:2] and np.allclose(got[2:], values[2:], rtol=1e-9, atol=1e-12)
        assert ok, (f"Profiler.table: row {name!r} is {dict(zip(fields, got))}, expected {dict(zip(fields, values))} "
                    "(ms = seconds * 1e3; calls = forward and step events, or the backward events of a row "
                    "with neither; gflops = forward FLOPs / forward seconds / 1e9)")


class Residual(Module):
    """A container with an op of its own: y = fc(x) + x."""

    def __init__(self, d):
        super().__init__()
        self.fc = Linear(d, d)

    def forward(self, x):
        return self.fc(x) + x


def _tiny(seed=0):
    manual_seed(seed)
    return Sequential(Linear(12, 16), ReLU(), Residual(16), Linear(16, 5))


def _state(model):
    return {k: np.array(v, copy=True) for k, v in model.state_dict().items()}


@pytest.mark.task("Profiler.table")
def test_profiler_on_a_real_training_step():
    x, y = _batch()
    rules_before = dict(autograd.BACKWARD)
    ref = _tiny()  # the same steps without the Profiler: profiling must not change a number
    ref_opt = SGD(ref.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        ref_opt.zero_grad()
        CrossEntropyLoss()(ref(x), y).backward()
        ref_opt.step()
    model, loss_fn = _tiny(), CrossEntropyLoss()
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    with Profiler(model, loss_fn, opt) as prof:
        for _ in range(3):
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
    rows = call("Profiler.table", prof.table)
    by = {r.name: r for r in rows}
    expected = {"0": "Linear", "1": "ReLU", "2": "Residual", "2.fc": "Linear", "3": "Linear",
                "Sequential": "Sequential", "CrossEntropyLoss": "CrossEntropyLoss", "SGD.step": "optimizer"}
    assert set(by) == set(expected), f"Profiler.table: rows {sorted(by)}, expected {sorted(expected)}"
    for name, kind in expected.items():
        r = by[name]
        assert r.kind == kind and r.calls == 3, \
            f"Profiler.table: row {name!r} has kind {r.kind!r} and {r.calls} calls, expected {kind!r} and 3"
    for name in ("0", "1", "2", "2.fc", "3", "CrossEntropyLoss"):
        r = by[name]
        assert r.forward_ms > 0 and r.backward_ms > 0, \
            f"Profiler.table: row {name!r} has forward {r.forward_ms} ms and backward {r.backward_ms} ms (both ran)"
    assert by["SGD.step"].step_ms > 0, "Profiler.table: the optimizer's step time is missing"
    for name, layer, shape in [("0", model[0], (16, 12)), ("2.fc", model[2].fc, (16, 16)), ("3", model[3], (16, 16))]:
        assert by[name].flops == 3 * linear_flops(layer, shape), \
            f"Profiler.table: row {name!r} has {by[name].flops} FLOPs, expected 3 calls x {linear_flops(layer, shape)}"
    totals = [r.total_ms for r in rows]
    assert totals == sorted(totals, reverse=True), f"Profiler.table: totals {totals} are not sorted, largest first"
    for r in rows:
        assert math.isclose(r.total_ms, r.forward_ms + r.backward_ms + r.step_ms, rel_tol=1e-9), \
            f"Profiler.table: row {r.name!r}: total {r.total_ms} is not forward + backward + step"
    assert sum(totals) <= prof.wall_ms, \
        f"Profiler.table: rows add up to {sum(totals):.3f} ms, more than the {prof.wall_ms:.3f} ms the block took"
    # everything the Profiler touched is back as it was, and the numbers are the same
    assert dict(autograd.BACKWARD) == rules_before, "Profiler: autograd.BACKWARD was not restored on exit"
    assert all("forward" not in vars(m) for _, m in model.named_modules()) and "forward" not in vars(loss_fn), \
        "Profiler: a layer kept its profiling forward wrapper after the block"
    assert "step" not in vars(opt), "Profiler: the optimizer kept its profiling step wrapper"
    for k, v in _state(ref).items():
        assert_close(model.state_dict()[k], v, f"Profiler: parameter {k} after 3 profiled steps (profiling "
                     "must not change the training)", atol=0, rtol=0)


@pytest.mark.task("Profiler.table")
def test_profiler_attributes_unwatched_ops_and_restores_after_an_error():
    x, y = _batch()
    model = _tiny()
    rules_before = dict(autograd.BACKWARD)
    with pytest.raises(ZeroDivisionError):
        with Profiler(model) as prof:  # the loss is not watched: its backward is an op row
            CrossEntropyLoss()(model(x), y).backward()
            CrossEntropyLoss()(model(x), y).backward()
            1 / 0
    assert dict(autograd.BACKWARD) == rules_before and all("forward" not in vars(m) for m in model.modules()), \
        "Profiler: an exception inside the block left wrappers installed"
    by = {r.name: r for r in call("Profiler.table", prof.table)}
    ce = by.get("cross_entropy")
    assert ce is not None and ce.kind == "op" and ce.calls == 2 and ce.forward_ms == 0 and ce.backward_ms > 0, (
        f"Profiler.table: the backward of a loss outside the watched layers should be the op row "
        f"'cross_entropy' with 2 calls (its backward events); got {ce}")
    assert by["0"].calls == 2 and by["2"].kind == "Residual", \
        f"Profiler.table: rows {[(r.name, r.kind, r.calls) for r in by.values()]}"
    with Profiler() as bare:  # nothing watched: the backward rules only
        (model(x) * 2.0).sum().backward()
    ops = {r.name: r for r in bare.table()}
    assert {"linear", "relu", "add", "mul", "sum"} <= set(ops) and all(r.kind == "op" for r in ops.values()), \
        f"Profiler.table: with nothing watched every backward node is an op row; got {sorted(ops)}"
    assert ops["linear"].calls == 3, f"Profiler.table: 3 linear nodes ran backward once each; got {ops['linear'].calls}"


@pytest.mark.task("Profiler.table")
def test_profiler_rows_under_the_ceilings():
    x, y = _batch(n=64)
    model, loss_fn = _tiny(), CrossEntropyLoss()
    with Profiler(model, loss_fn) as prof:
        loss_fn(model(x), y).backward()
    lines = call("Profiler.table", prof.roofline, 100.0, 10.0)
    names = sorted(r.name for r, _ in lines)
    assert names == ["0", "2.fc", "3"], f"Profiler.table: layers with FLOPs under the ceilings are {names}"
    for r, point in lines:
        # minimum traffic of a Linear call: its input, weights and bias, and output, in float32
        layer = {"0": model[0], "2.fc": model[2].fc, "3": model[3]}[r.name]
        d_in, d_out = layer.in_features, layer.out_features
        want = 4 * (64 * d_in + d_out * d_in + d_out + 64 * d_out)
        assert r.nbytes == want, f"Profiler.table: row {r.name!r} has nbytes {r.nbytes}, expected {want}"
        assert math.isclose(point.intensity, r.flops / want), f"Profiler.table: row {r.name!r}: {point}"
        assert math.isclose(point.achieved_gflops, r.gflops, rel_tol=1e-9), \
            f"Profiler.table: row {r.name!r} has {r.gflops} GFLOP/s but its roofline point {point.achieved_gflops}"
