"""One training step of two CNNs: tinytorch vs hand-written NumPy vs PyTorch CPU.

    python bench/bench_conv.py                          # lenet and cifar, bench_step's defaults
    python bench/bench_conv.py --models lenet --rounds 7 --steps 30
    python bench/bench_conv.py --quick                  # a smoke test
    python bench/bench_conv.py --models mlp,lenet,cifar # all of bench_step's models in one table

The models (batch 128, cross-entropy, SGD with momentum 0.9):
    lenet   LeNet-5 on 1x28x28: conv 6@5x5 (pad 2) - ReLU - maxpool 2 - conv 16@5x5 - ReLU -
            maxpool 2 - fc 120 - ReLU - fc 84 - ReLU - fc 10
    cifar   a 4-conv net on 3x32x32: conv 32 - conv 32 - pool - conv 64 - conv 64 - pool - fc 256 -
            fc 10 (3x3 convs, padding 1, ReLU after each conv and fc)

This file adds both to `bench_step.MODELS` (its extension point) and runs `bench_step.main`, so the
timing, the interleaving of implementations and the table are bench_step's.

The hand-written NumPy nets below have no autograd and no Tensor: each layer's forward keeps what
its backward needs, and the backward is written out by hand. They use the same arithmetic as
tinytorch (channels-last, im2col + one matmul, col2im as one slice-add per kernel offset, 2x2
max-pool through four strided views, fused softmax + cross-entropy), so the ratio tinytorch /
hand-written is what the framework (graph recording, the backward engine, Modules) costs on top
of the math.
"""

from __future__ import annotations

import os
import sys

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_step  # noqa: E402  (the sibling script: timing, table, MODELS)

LR, MOMENTUM = bench_step.LR, bench_step.MOMENTUM

# layer specs: ("conv", in, out, k, padding) | ("relu",) | ("pool",) | ("flatten",) | ("fc", in, out)
LENET5 = (("conv", 1, 6, 5, 2), ("relu",), ("pool",), ("conv", 6, 16, 5, 0), ("relu",), ("pool",),
          ("flatten",), ("fc", 400, 120), ("relu",), ("fc", 120, 84), ("relu",), ("fc", 84, 10))
CIFAR4 = (("conv", 3, 32, 3, 1), ("relu",), ("conv", 32, 32, 3, 1), ("relu",), ("pool",),
          ("conv", 32, 64, 3, 1), ("relu",), ("conv", 64, 64, 3, 1), ("relu",), ("pool",),
          ("flatten",), ("fc", 4096, 256), ("relu",), ("fc", 256, 10))
SPECS = {"lenet": (LENET5, (1, 28, 28)), "cifar": (CIFAR4, (3, 32, 32))}


def setup(name: str, batch: int, seed: int):
    """Shared initial weights in PyTorch's layouts ([(W, b)] per conv/fc, PyTorch's init) and one
    batch (x (N, C, H, W) float32, y (N,) int64)."""
    spec, shape = SPECS[name]
    rng = np.random.default_rng(seed)
    params = []
    for s in spec:
        if s[0] == "conv":
            _, cin, cout, k, _ = s
            bound = 1 / np.sqrt(cin * k * k)
            params.append((rng.uniform(-bound, bound, (cout, cin, k, k)).astype(np.float32),
                           rng.uniform(-bound, bound, cout).astype(np.float32)))
        elif s[0] == "fc":
            _, n_in, n_out = s
            bound = 1 / np.sqrt(n_in)
            params.append((rng.uniform(-bound, bound, (n_out, n_in)).astype(np.float32),
                           rng.uniform(-bound, bound, n_out).astype(np.float32)))
    x = rng.standard_normal((batch, *shape), dtype=np.float32)  # (N, C, H, W)
    y = rng.integers(0, 10, batch)  # (N,) int64
    return spec, params, x, y


# ---------------------------------------------------------------------------------------------
# Hand-written NumPy layers (channels-last inside)
# ---------------------------------------------------------------------------------------------
class Conv:
    """Stride-1 convolution, channels-last; weights stored as the (k k C, O) matmul operand."""

    def __init__(self, w: np.ndarray, b: np.ndarray, pad: int, first: bool):
        o, c, k, _ = w.shape
        self.w = np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(k * k * c, o))  # rows (i, j, c)
        self.b = b.copy()
        self.k, self.pad, self.cin, self.first = k, pad, c, first

    def forward(self, x):  # (N, H, W, C) -> (N, Ho, Wo, O)
        n, h, w, c = x.shape
        k, p = self.k, self.pad
        if p:
            xp = np.zeros((n, h + 2 * p, w + 2 * p, c), np.float32)
            xp[:, p:p + h, p:p + w] = x
        else:
            xp = x
        ho, wo = h + 2 * p - k + 1, w + 2 * p - k + 1
        if c == 1:  # one input channel: the transposed patch matrix, k*k contiguous copies
            cols = np.empty((k * k, n, ho, wo), np.float32)
            for i in range(k):
                for j in range(k):
                    cols[i * k + j] = xp[:, i:i + ho, j:j + wo, 0]
            cols = cols.reshape(k * k, -1)
            y = cols.T @ self.w
        else:
            win = sliding_window_view(xp, (k, k), axis=(1, 2))  # (N, Ho, Wo, C, k, k)
            cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(n * ho * wo, k * k * c)
            y = cols @ self.w
        y += self.b
        self.cache = (cols, xp.shape, x.shape)
        return y.reshape(n, ho, wo, -1)

    def backward(self, g):
        cols, pshape, xshape = self.cache
        o = g.shape[-1]
        gm = g.reshape(-1, o)
        self.dw = cols @ gm if self.cin == 1 else cols.T @ gm
        self.db = np.ones(len(gm), np.float32) @ gm  # column sums: BLAS beats gm.sum(axis=0) here
        if self.first:  # the images need no gradient
            return None
        n, hp, wp, c = pshape
        k, p = self.k, self.pad
        ho, wo = g.shape[1:3]
        d = np.matmul(gm, self.w.reshape(k * k, c, o).transpose(0, 2, 1))  # (k k, N Ho Wo, C)
        d = d.reshape(k, k, n, ho, wo, c)
        dxp = np.zeros(pshape, np.float32)
        for i in range(k):
            for j in range(k):
                dxp[:, i:i + ho, j:j + wo] += d[i, j]
        return dxp[:, p:p + xshape[1], p:p + xshape[2]] if p else dxp

    def params(self):
        return [(self.w, "dw"), (self.b, "db")]


class ReLU:
    def forward(self, x):
        np.maximum(x, 0, out=x)
        self.y = x
        return x

    def backward(self, g):
        g *= self.y > 0
        return g

    def params(self):
        return []


class Pool:
    """2x2 max-pool, stride 2: four strided views; the first maximum of a window wins."""

    def forward(self, x):
        views = [x[:, i::2, j::2] for i in (0, 1) for j in (0, 1)]
        m = np.maximum(np.maximum(views[0], views[1]), np.maximum(views[2], views[3]))
        self.x, self.m = x, m
        return m

    def backward(self, g):
        x, m = self.x, self.m
        dx = np.empty(x.shape, np.float32)
        free = np.ones(m.shape, bool)
        for t, (i, j) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            win = x[:, i::2, j::2] == m
            win &= free
            if t < 3:
                free &= ~win
            np.multiply(g, win, out=dx[:, i::2, j::2])
        return dx

    def params(self):
        return []


class Flatten:
    """Channels-last flatten (free); the next layer's weights are permuted to match instead."""

    def forward(self, x):
        self.shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, g):
        return g.reshape(self.shape)

    def params(self):
        return []


class FC:
    def __init__(self, w: np.ndarray, b: np.ndarray):
        self.w, self.b = np.ascontiguousarray(w.T), b.copy()  # (in, out): the forward is x @ W

    def forward(self, x):
        self.x = x
        y = x @ self.w
        y += self.b
        return y

    def backward(self, g):
        self.dw = self.x.T @ g
        self.db = g.sum(axis=0)
        return g @ self.w.T

    def params(self):
        return [(self.w, "dw"), (self.b, "db")]


class NumpyNet:
    """A stack of hand-written layers, softmax cross-entropy, SGD with momentum."""

    def __init__(self, spec, params, image_shape):
        self.layers, it = [], iter(params)
        c, h, w = image_shape
        for t, s in enumerate(spec):
            if s[0] == "conv":
                wt, b = next(it)
                self.layers.append(Conv(wt, b, s[4], first=(t == 0)))
                c, h, w = s[2], h + 2 * s[4] - s[3] + 1, w + 2 * s[4] - s[3] + 1
            elif s[0] == "pool":
                self.layers.append(Pool())
                h, w = h // 2, w // 2
            elif s[0] == "fc":
                wt, b = next(it)
                if isinstance(self.layers[-1], Flatten):  # NCHW flatten order -> our NHWC order
                    wt = wt.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(len(wt), -1)
                self.layers.append(FC(wt, b))
            else:
                self.layers.append({"relu": ReLU, "flatten": Flatten}[s[0]]())
        self.buffers: dict[int, np.ndarray] = {}

    def step(self, x_nchw: np.ndarray, y: np.ndarray, lr: float = LR) -> float:
        h = np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))  # (N, H, W, C)
        for layer in self.layers:
            h = layer.forward(h)
        n = len(y)
        z = h - h.max(axis=1, keepdims=True)  # (N, 10)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(s[:, 0]) - z[np.arange(n), y]))
        g = e / s
        g[np.arange(n), y] -= 1
        g *= 1.0 / n
        for layer in reversed(self.layers):
            g = layer.backward(g)
        for layer in self.layers:
            for p, name in layer.params():
                grad = getattr(layer, name)
                buf = self.buffers.get(id(p))
                if buf is None:
                    buf = self.buffers[id(p)] = grad.copy()
                else:
                    buf *= MOMENTUM
                    buf += grad
                p -= lr * buf
        return loss


# ---------------------------------------------------------------------------------------------
# Builders: (batch, seed) -> step(), one per implementation (bench_step's protocol)
# ---------------------------------------------------------------------------------------------
def _numpy(name):
    def build(batch: int, seed: int):
        spec, params, x, y = setup(name, batch, seed)
        net = NumpyNet(spec, params, x.shape[1:])
        return lambda: net.step(x, y)

    return build


def tinytorch_model(spec):
    from tinytorch.activations import ReLU
    from tinytorch.convolutions import Conv2d, MaxPool2d
    from tinytorch.layers import Flatten, Linear, Sequential

    layers = []
    for s in spec:
        if s[0] == "conv":
            layers.append(Conv2d(s[1], s[2], s[3], padding=s[4]))
        elif s[0] == "fc":
            layers.append(Linear(s[1], s[2]))
        else:
            layers.append({"relu": ReLU, "pool": lambda: MaxPool2d(2), "flatten": Flatten}[s[0]]())
    return Sequential(*layers)


def _tinytorch(name):
    def build(batch: int, seed: int):
        from tinytorch.losses import CrossEntropyLoss
        from tinytorch.optimizers import SGD
        from tinytorch.tensor import Tensor

        spec, params, x, y = setup(name, batch, seed)
        model = tinytorch_model(spec)
        weighted = [i for i, s in enumerate(spec) if s[0] in ("conv", "fc")]
        model.load_state_dict({f"{i}.{k}": a for i, (w, b) in zip(weighted, params)
                               for k, a in (("weight", w), ("bias", b))})
        loss_fn, opt = CrossEntropyLoss(), SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        xb, yb = Tensor(x), Tensor(y)

        return bench_step.training_step(model, loss_fn, opt, xb, yb)

    return build


def _torch(name):
    def build(batch: int, seed: int):
        try:
            import torch
        except ImportError as e:
            raise bench_step.Unavailable("PyTorch not installed") from e
        nn = torch.nn
        spec, params, x, y = setup(name, batch, seed)
        layers = []
        for s in spec:
            if s[0] == "conv":
                layers.append(nn.Conv2d(s[1], s[2], s[3], padding=s[4]))
            elif s[0] == "fc":
                layers.append(nn.Linear(s[1], s[2]))
            else:
                layers.append({"relu": nn.ReLU, "pool": lambda: nn.MaxPool2d(2), "flatten": nn.Flatten}[s[0]]())
        model = nn.Sequential(*layers)
        with torch.no_grad():
            for layer, (w, b) in zip([m for m in model if hasattr(m, "weight")], params):
                layer.weight.copy_(torch.from_numpy(w))
                layer.bias.copy_(torch.from_numpy(b))
        loss_fn = nn.CrossEntropyLoss()
        opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        xb, yb = torch.from_numpy(x), torch.from_numpy(y)

        return bench_step.training_step(model, loss_fn, opt, xb, yb)

    return build


for _name in SPECS:
    bench_step.MODELS[_name] = {"tinytorch": _tinytorch(_name), "numpy": _numpy(_name), "torch": _torch(_name)}
    bench_step.BATCH[_name] = 128


if __name__ == "__main__":
    args = sys.argv[1:]
    bench_step.rerun_with_threads(__file__, args)  # THIS script (bench_step would re-run itself)
    if not any(a == "--models" or a.startswith("--models=") for a in args):
        args = ["--models", "lenet,cifar", *args]
    bench_step.main(args)
