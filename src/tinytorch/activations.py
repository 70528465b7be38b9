# %% [markdown]
# # Module 02 - Activations
#
# Without a nonlinearity between them, any stack of linear layers collapses into one linear map.
# These functions bend the space. Each is elementwise except Softmax/LogSoftmax, which normalise
# along one axis and must stay finite for huge inputs (subtract the max first).

# %%
"""Module 02: activation functions (forward only; module 06 adds their derivatives).

    ReLU(x)      = max(0, x)
    LeakyReLU(x) = x if x > 0 else slope * x
    Sigmoid(x)   = 1 / (1 + e^-x)                (stable for large |x|)
    Tanh(x)      = (e^x - e^-x) / (e^x + e^-x)
    GELU(x)      = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))     (the tanh approximation)
    Softmax(x)_i = e^(x_i - m) / sum_j e^(x_j - m),   m = max_j x_j
    LogSoftmax(x)_i = x_i - m - log sum_j e^(x_j - m)
"""

from __future__ import annotations

import numpy as np

from tinytorch.tensor import Tensor

GELU_C = float(np.sqrt(2.0 / np.pi))  # a Python float: float32 inputs stay float32


def relu(x: Tensor) -> Tensor:
    ### BEGIN SOLUTION
    data = np.maximum(x.data, 0)
    ### END SOLUTION
    return Tensor._make(data, (x,), "relu")


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    ### BEGIN SOLUTION
    data = np.where(x.data > 0, x.data, x.data * negative_slope)
    ### END SOLUTION
    return Tensor._make(data, (x,), "leaky_relu", negative_slope)


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + e^-x), computed as e^x / (1 + e^x) for x < 0 so that e^-x never overflows."""
    ### BEGIN SOLUTION
    z = np.exp(-np.abs(x.data))  # in (0, 1]: never overflows
    data = np.where(x.data >= 0, 1 / (1 + z), z / (1 + z))
    ### END SOLUTION
    return Tensor._make(data.astype(x.dtype, copy=False), (x,), "sigmoid")


def tanh(x: Tensor) -> Tensor:
    ### BEGIN SOLUTION
    data = np.tanh(x.data)
    ### END SOLUTION
    return Tensor._make(data, (x,), "tanh")


def gelu(x: Tensor) -> Tensor:
    """The tanh approximation (as in GPT-2). The backward rule in module 06 uses the same formula."""
    ### BEGIN SOLUTION
    v = x.data
    t = np.tanh(GELU_C * (v + 0.044715 * v * v * v))  # (same shape as x)
    data = 0.5 * v * (1 + t)
    ### END SOLUTION
    return Tensor._make(data.astype(x.dtype, copy=False), (x,), "gelu", t)


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    ### BEGIN SOLUTION
    shifted = x.data - x.data.max(axis=dim, keepdims=True)  # largest entry is 0: exp <= 1
    e = np.exp(shifted)
    data = e / e.sum(axis=dim, keepdims=True)
    ### END SOLUTION
    return Tensor._make(data, (x,), "softmax", dim)


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    ### BEGIN SOLUTION
    shifted = x.data - x.data.max(axis=dim, keepdims=True)
    data = shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))
    ### END SOLUTION
    return Tensor._make(data, (x,), "log_softmax", dim)


class Activation:
    """Base for the layer form of each function: `ReLU()(x)`. No parameters."""

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def parameters(self) -> list:
        return []

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ReLU(Activation):
    def forward(self, x):
        return relu(x)


class LeakyReLU(Activation):
    def __init__(self, negative_slope: float = 0.01):
        self.negative_slope = negative_slope

    def forward(self, x):
        return leaky_relu(x, self.negative_slope)


class Sigmoid(Activation):
    def forward(self, x):
        return sigmoid(x)


class Tanh(Activation):
    def forward(self, x):
        return tanh(x)


class GELU(Activation):
    def forward(self, x):
        return gelu(x)


class Softmax(Activation):
    def __init__(self, dim: int = -1):
        self.dim = dim

    def forward(self, x):
        return softmax(x, self.dim)


class LogSoftmax(Activation):
    def __init__(self, dim: int = -1):
        self.dim = dim

    def forward(self, x):
        return log_softmax(x, self.dim)
