# %% [markdown]
# # Module 02 - Activations
#
# Stack two linear layers and you get... one linear layer. Activation functions bend the space
# between layers, so that depth buys expressive power. In this module you write the forward pass
# of the classic nonlinearities: ReLU, LeakyReLU, Sigmoid, Tanh and GELU, elementwise, and the
# Softmax and LogSoftmax that every classifier ends with.
#
# Three of them hide a numerical trap: computed straight from the textbook formula, sigmoid,
# softmax and log-softmax overflow to `inf` or `nan` for inputs of a few hundred. You write the
# stable versions, which are exact for inputs of any size.
#
# ## What you build
#
# - `relu(x)` $= \max(0, x)$ and `leaky_relu(x)` $= x$ if $x > 0$ else $\text{slope} \cdot x$;
# - `sigmoid(x)` $= 1 / (1 + e^{-x})$, stable for large $|x|$;
# - `tanh(x)`;
# - `gelu(x)` $= \frac{x}{2}\left(1 + \tanh\left(\sqrt{2/\pi}\,(x + 0.044715\,x^3)\right)\right)$, the tanh
#   approximation used by GPT-2;
# - `softmax(x, dim)` and `log_softmax(x, dim)` along one axis, stable for any logits.
#
# Each is a function from `Tensor` to `Tensor`: it computes a NumPy array `data` from `x.data` and
# hands it to `Tensor._make(data, (x,), "relu")`, exactly like the ops of module 01, so that module
# 06 can add their derivatives. The layer classes `ReLU`, `Sigmoid`, `Softmax`, ... are thin given
# wrappers, so that an activation can sit in a `Sequential` (module 03) like any other layer.
#
# ## How to work through this notebook
#
# Every function has its own markdown cell (the idea, the math, a worked example with numbers,
# the systems view), then a cell to fill in, a **try it** cell that runs it on a tiny input, and
# a **check** cell that runs its checks here, with the same table as `tito module test`. The
# checks feed you values like $\pm 1000$ and expect finite, exact answers; they insist that
# float32 in gives float32 out (and float64 in, float64 out: module 06's gradient checker runs in
# float64), and that no function writes into its input.
#
# From a terminal:
#
#     tito module test 02                    all checks on your file
#     tito module test 02 --task sigmoid     only the sigmoid checks
#     tito module complete 02                export it into your tinytorch/ package

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

# %% [markdown]
# ## Why a nonlinearity at all
#
# A linear layer computes $y = Wx + b$. Put two of them in a row and expand:
#
# $$ W_2 (W_1 x + b_1) + b_2 = (W_2 W_1)\, x + (W_2 b_1 + b_2) = W' x + b'. $$
#
# The result is again one linear layer, with $W' = W_2 W_1$. With numbers, in one dimension:
# $y = 3\,(2x + 1) - 1 = 6x + 2$. However many layers you stack, a purely linear network draws
# straight lines (flat planes, in more dimensions) - it cannot compute XOR, which is exactly the
# crisis of milestone 02.
#
# An elementwise nonlinearity $f$ between the layers, $y = W_2\, f(W_1 x + b_1) + b_2$, breaks the
# collapse. With ReLU, $f(z) = \max(0, z)$, two hidden units already build a kink:
# $|x| = \max(0, x) + \max(0, -x)$, which no linear map can. With enough hidden units, sums of such
# kinks approximate any continuous function on a bounded region (the universal approximation
# theorem). The choice of $f$ then decides how well the network *trains*: how gradients flow
# through it (its derivative), how it behaves at extreme inputs, and what it costs.
#
# Systems view, for all of the elementwise ones: an activation reads each element once and writes
# one result, so for a $(N, d)$ input it moves $8Nd$ bytes in float32 and does a handful of FLOPs
# per element - next to the $2Ndk$ FLOPs of the linear layer before it, nearly free in arithmetic,
# but not in memory. During training its input or output is kept for the backward pass: for a
# batch of 64 with 4096 hidden units that is 1 MB per activation layer, and in a deep network
# these saved activations, not the weights, are what fill the memory.

# %% [markdown]
# ## Given: the layer form of each function
#
# Each function also comes as a small class, so that a network can be written as a list of layers:
# `Sequential(Linear(2, 8), ReLU(), Linear(8, 1))` in module 03. `Activation` is their base class:
# calling the layer runs `forward`, and `parameters()` is an empty list (an activation has nothing
# to learn - that is how an optimizer knows to skip it). `LeakyReLU`, `Softmax` and `LogSoftmax`
# remember their setting (the slope, the axis) when they are built, then pass it to the function.
#
# They are given, and they come first in this notebook on purpose: each `forward` simply calls the
# function you write below, and the checks build one of each when they start. Until you have
# written a function, its layer raises the same `NotImplementedError` as the function itself.

# %%
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


# %% [markdown]
# ## ReLU: $\max(0, x)$
#
# The rectified linear unit passes positive values through and replaces negative ones by zero:
#
# $$ \mathrm{ReLU}(x) = \max(0, x), \qquad \mathrm{ReLU}'(x) = \begin{cases} 1 & x > 0 \\ 0 & x < 0 \end{cases} $$
#
# For $x = [-2, -0.5, 0, 0.5, 2]$ it gives $[0, 0, 0, 0.5, 2]$. Its derivative is exactly 1 wherever
# the unit is active, so gradients pass through many ReLU layers without shrinking - the main
# reason it replaced sigmoid in hidden layers and made deep networks trainable (AlexNet, 2012).
# Its weakness is the other side: a unit whose input is negative for every example gets zero
# gradient and never recovers ("dead ReLU"), which a too-large learning rate can cause.
#
# In NumPy: `np.maximum(x.data, 0)` compares elementwise with a number. (`np.max` would be a
# reduction: a different thing.) The `0` is a Python int, so float32 stays float32. Compute a new
# array; never write into `x.data` (say, `x.data[x.data < 0] = 0`): as module 01 showed, a tensor
# may share its memory with the caller's array, which would silently change too.
#
# Systems view: one comparison per element, the cheapest activation there is, and entirely
# memory-bound. Its output is sparse - about half the entries are exactly zero for inputs centred
# on zero - and its backward pass needs only to know *where* the input was positive, one bit of
# information per element.

# %% nbgrader={"grade": false, "grade_id": "relu", "locked": false, "schema_version": 3, "solution": true, "task": false}
def relu(x: Tensor) -> Tensor:
    ### BEGIN SOLUTION
    data = np.maximum(x.data, 0)
    ### END SOLUTION
    return Tensor._make(data, (x,), "relu")


# %%
if __name__ == "__main__":
    x = Tensor([-2.0, -0.5, 0.0, 0.5, 2.0])
    print(relu(x), relu(x).dtype)
    print("the layer form:", ReLU(), ReLU()(x))

# %% [markdown]
# The check selects ReLU's checks by their parametrised name, `[relu]`: the values for random
# shapes (0-d included), extreme inputs, the `ReLU` layer, and PyTorch as an oracle (skipped when
# PyTorch is not installed).

# %% nbgrader={"grade": true, "grade_id": "check-relu", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("02", "[relu]")

# %% [markdown]
# ## LeakyReLU: a small slope for negative inputs
#
# LeakyReLU keeps a small slope $\alpha$ (default $0.01$) on the negative side, so that no unit is
# ever completely dead:
#
# $$ \mathrm{LeakyReLU}(x) = \begin{cases} x & x > 0 \\ \alpha x & x \le 0 \end{cases} $$
#
# With $\alpha = 0.01$, $x = [-2, -0.5, 0, 0.5, 2]$ gives $[-0.02, -0.005, 0, 0.5, 2]$; with
# $\alpha = 0.2$ (common in GANs) it gives $[-0.4, -0.1, 0, 0.5, 2]$.
#
# `np.where(condition, a, b)` picks from `a` where the condition holds and from `b` elsewhere, both
# computed for every element. `x.data * negative_slope` stays float32 because the slope is a Python
# float. The given `return` line saves the slope in the graph record: module 06's derivative
# ($1$ or $\alpha$) needs it.
#
# Systems view: a comparison, a multiply and a select per element; still memory-bound. `np.where`
# also allocates the temporary `x.data * negative_slope`, one extra array the size of the input.
# For elementwise code that is the usual price of vectorising: a few whole-array temporaries
# instead of a Python loop over elements, which is typically tens of times slower.

# %% nbgrader={"grade": false, "grade_id": "leaky-relu", "locked": false, "schema_version": 3, "solution": true, "task": false}
def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    ### BEGIN SOLUTION
    data = np.where(x.data > 0, x.data, x.data * negative_slope)
    ### END SOLUTION
    return Tensor._make(data, (x,), "leaky_relu", negative_slope)


# %%
if __name__ == "__main__":
    x = Tensor([-2.0, -0.5, 0.0, 0.5, 2.0])
    print(leaky_relu(x))
    print(leaky_relu(x, 0.2), LeakyReLU(0.2)(x).dtype)

# %% nbgrader={"grade": true, "grade_id": "check-leaky-relu", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("02", "leaky_relu")

# %% [markdown]
# ## Sigmoid, and why the textbook formula overflows
#
# The logistic sigmoid squashes any real number into $(0, 1)$, so its output can be read as a
# probability:
#
# $$ \sigma(x) = \frac{1}{1 + e^{-x}}, \qquad \sigma(0) = 0.5, \quad \sigma(2) = 0.8808, \quad
#    \sigma(-2) = 0.1192, \qquad \sigma(-x) = 1 - \sigma(x). $$
#
# **The overflow.** The largest float32 is $3.4 \times 10^{38} \approx e^{88.7}$. In the formula
# above, a negative $x$ puts a large positive exponent into $e^{-x}$: for $x = -100$, $e^{100}$ is
# `inf` in float32, and the result $1/\infty = 0$, with an overflow warning. Multiply top and
# bottom by $e^x$ and you get the other textbook form, $e^x / (1 + e^x)$, which breaks on the
# other side: for $x = 100$ it computes $\infty / \infty = $ `nan`. A `nan` in a forward pass spreads
# through every later op and turns the whole loss into `nan`.
#
# **The stable form** uses whichever formula has a *negative* exponent. With $z = e^{-|x|}$, which
# lies in $(0, 1]$ and can never overflow:
#
# $$ \sigma(x) = \begin{cases} \dfrac{1}{1 + z} & x \ge 0 \\[2ex] \dfrac{z}{1 + z} & x < 0 \end{cases} $$
#
# Worked example, $x = -2$: $z = e^{-2} = 0.1353$, and $z / (1 + z) = 0.1353 / 1.1353 = 0.1192$,
# the same value as before. For $x = -1000$: $z = e^{-1000}$ underflows to $0$ (harmless), and the
# result is $0 / 1 = 0$. For $x = 1000$: $1/(1 + 0) = 1$. Nothing ever overflows. In NumPy:
# `np.where(x.data >= 0, 1 / (1 + z), z / (1 + z))` - both branches are computed everywhere, and
# both are safe. The given `.astype(x.dtype, copy=False)` keeps the dtype of the input (it costs
# nothing when the dtype is already right).
#
# Systems view: one `exp`, two divides and a select per element. Sigmoid's derivative is
# $\sigma(x)(1 - \sigma(x))$, at most $0.25$ (at $x = 0$) and nearly zero for $|x| > 5$: through ten
# sigmoid layers a gradient can shrink by $0.25^{10} \approx 10^{-6}$. That *vanishing gradient*
# is why hidden layers moved to ReLU; sigmoid stays where a probability is wanted - the output of
# a binary classifier (module 04's binary cross-entropy) and the gates of LSTMs.

# %% nbgrader={"grade": false, "grade_id": "sigmoid", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + e^-x), computed as e^x / (1 + e^x) for x < 0 so that e^-x never overflows."""
    # HINT: z = e^(-|x|) is in (0, 1]; np.where on the sign of x picks 1/(1+z) or z/(1+z)
    ### BEGIN SOLUTION
    z = np.exp(-np.abs(x.data))  # in (0, 1]: never overflows
    data = np.where(x.data >= 0, 1 / (1 + z), z / (1 + z))
    ### END SOLUTION
    return Tensor._make(data.astype(x.dtype, copy=False), (x,), "sigmoid")


# %%
if __name__ == "__main__":
    x = Tensor([-1000.0, -100.0, -2.0, 0.0, 2.0, 100.0, 1000.0])
    with np.errstate(over="ignore", invalid="ignore"):   # the naive forms warn; yours must not
        naive_a = 1 / (1 + np.exp(-x.data))
        naive_b = np.exp(x.data) / (1 + np.exp(x.data))
    print("1/(1+e^-x):  ", naive_a)
    print("e^x/(1+e^x): ", naive_b)
    print("yours:       ", sigmoid(x).data)

# %% nbgrader={"grade": true, "grade_id": "check-sigmoid", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("02", "sigmoid")

# %% [markdown]
# ## Tanh: a zero-centred sigmoid
#
# The hyperbolic tangent squashes into $(-1, 1)$ and is a rescaled sigmoid:
#
# $$ \tanh(x) = \frac{e^x - e^{-x}}{e^x + e^{-x}} = 2\,\sigma(2x) - 1, \qquad \tanh(1) = 0.7616, \quad
#    \tanh(-2) = -0.9640, \quad \tanh'(x) = 1 - \tanh^2(x). $$
#
# Because its outputs are centred on zero, the next layer's inputs are not all positive, which made
# it the activation of choice for hidden layers before ReLU, and it is still the squashing function
# inside LSTM cells and inside GELU (next). Its derivative is 1 at $x = 0$ - four times sigmoid's -
# but it saturates the same way for large $|x|$.
#
# Written from the formula, $e^x$ would overflow at $x = 89$ in float32, and $\infty / \infty$ would
# give `nan`. `np.tanh` is implemented stably (it saturates to exactly $\pm 1$), so this one is one
# line: use it.
#
# Systems view: one transcendental function per element, roughly the cost of one `exp`. Module 06
# saves the *output* for the backward pass, since $\tanh' = 1 - \tanh^2$ needs nothing else.

# %% nbgrader={"grade": false, "grade_id": "tanh", "locked": false, "schema_version": 3, "solution": true, "task": false}
def tanh(x: Tensor) -> Tensor:
    ### BEGIN SOLUTION
    data = np.tanh(x.data)
    ### END SOLUTION
    return Tensor._make(data, (x,), "tanh")


# %%
if __name__ == "__main__":
    x = Tensor([-1000.0, -2.0, 0.0, 1.0, 1000.0])
    print(tanh(x))
    print("2 sigmoid(2x) - 1:", (sigmoid(x * 2) * 2 - 1).data)

# %% [markdown]
# The check selects `[tanh]` (with the brackets: the plain word would also pick GELU's check,
# whose name mentions its tanh approximation).

# %% nbgrader={"grade": true, "grade_id": "check-tanh", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("02", "[tanh]")

# %% [markdown]
# ## GELU: a smooth ReLU
#
# The Gaussian Error Linear Unit weights its input by the probability that a standard normal
# variable is below it:
#
# $$ \mathrm{GELU}(x) = x\,\Phi(x) = \frac{x}{2}\left(1 + \mathrm{erf}\!\left(\frac{x}{\sqrt 2}\right)\right), $$
#
# where $\Phi$ is the normal CDF. For large positive $x$, $\Phi(x) \to 1$ and GELU is $x$; for large
# negative $x$ it is $0$; in between it is smooth, and it dips slightly below zero (its minimum is
# about $-0.17$ near $x = -0.75$). BERT and GPT-2 use it, and most transformers since.
#
# **The approximation.** GPT-2 (and `torch.nn.functional.gelu(approximate="tanh")`) replace the
# erf by a tanh, which NumPy has (NumPy has no `erf`):
#
# $$ \mathrm{GELU}(x) \approx \frac{x}{2}\left(1 + \tanh\!\left(\sqrt{2/\pi}\,\left(x + 0.044715\,x^3\right)\right)\right). $$
#
# Worked example, $x = 1$: $\sqrt{2/\pi} = 0.797885$, and the inner value is
# $0.797885 \times 1.044715 = 0.833562$. Then $\tanh(0.833562) = 0.682384$, so
# $\mathrm{GELU}(1) \approx 0.5 \times 1.682384 = 0.841192$. The exact value is $0.841345$.
# The two forms never differ by more than about $5 \times 10^{-4}$; the checks expect the tanh
# form, to $2 \times 10^{-6}$. Other values: $\mathrm{GELU}(-1) = -0.158808$,
# $\mathrm{GELU}(3) = 2.996363$, $\mathrm{GELU}(-3) = -0.003637$.
#
# Two float32 details. `GELU_C` (given, above) is $\sqrt{2/\pi}$ as a *Python* float: NumPy treats
# Python numbers as weak, but a NumPy float64 scalar such as `np.sqrt(2 / np.pi)` is strong, and
# multiplying a float32 array by it gives float64. And $x^3$ as `v * v * v` avoids a general power.
# The given `return` line saves the tanh value `t`, which module 06's derivative reuses instead of
# computing it again.
#
# Systems view: about ten FLOPs and one `tanh` per element, the most expensive elementwise
# activation here; saving `t` costs one extra input-sized array per GELU layer in exchange.

# %% nbgrader={"grade": false, "grade_id": "gelu", "locked": false, "schema_version": 3, "solution": true, "task": false}
def gelu(x: Tensor) -> Tensor:
    """The tanh approximation (as in GPT-2). The backward rule in module 06 uses the same formula."""
    # HINT: keep t = tanh(GELU_C * (v + 0.044715 v^3)) in a variable: the return line saves it
    ### BEGIN SOLUTION
    v = x.data
    t = np.tanh(GELU_C * (v + 0.044715 * v * v * v))  # (same shape as x)
    data = 0.5 * v * (1 + t)
    ### END SOLUTION
    return Tensor._make(data.astype(x.dtype, copy=False), (x,), "gelu", t)


# %% [markdown]
# The try-it cell prints GELU at the worked-example points, and plots every elementwise activation
# you have written so far (if matplotlib is installed; it is optional).

# %%
if __name__ == "__main__":
    print(gelu(Tensor([-3.0, -1.0, 0.0, 1.0, 3.0])))
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        plt = None
    if plt is not None:
        grid = Tensor(np.linspace(-4, 4, 401))
        fig, ax = plt.subplots(figsize=(7, 4))
        for name, fn in [("ReLU", relu), ("LeakyReLU(0.1)", lambda t: leaky_relu(t, 0.1)),
                         ("Sigmoid", sigmoid), ("Tanh", tanh), ("GELU", gelu)]:
            ax.plot(grid.data, fn(grid).data, label=name, lw=3 if name == "ReLU" else 1.5)
        ax.set(xlabel="x", ylabel="f(x)", ylim=(-1.5, 4), title="Activation functions")
        ax.axhline(0, color="gray", lw=0.5)
        ax.axvline(0, color="gray", lw=0.5)
        ax.legend()
        plt.show()

# %% nbgrader={"grade": true, "grade_id": "check-gelu", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("02", "gelu")

# %% [markdown]
# ## Softmax: scores to probabilities, stably
#
# A classifier's last layer produces one score (a *logit*) per class. Softmax turns a vector of
# logits into probabilities - positive, summing to 1, larger logits getting more:
#
# $$ \mathrm{softmax}(x)_i = \frac{e^{x_i}}{\sum_j e^{x_j}}. $$
#
# Worked example, $x = [1, 2, 3]$: $e^x = [2.718, 7.389, 20.086]$, their sum is $30.193$, and
# $\mathrm{softmax}(x) = [0.0900, 0.2447, 0.6652]$.
#
# **The overflow.** Now take $x = [1000, 1001, 1002]$. In float32 (and in float64, whose limit is
# $e^{709.8}$) every $e^{x_i}$ is `inf`, and $\infty / \infty$ is `nan`: the output is
# `[nan, nan, nan]`. Logits of a thousand are rare, but logits over $88.7$ are enough to break
# float32, and an untrained or diverging network produces them.
#
# **The fix** is an identity: subtracting the same constant $m$ from every logit changes nothing,
# because $e^{x_i - m} = e^{x_i} e^{-m}$ and the $e^{-m}$ cancels between top and bottom:
#
# $$ \mathrm{softmax}(x)_i = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}}, \qquad m = \max_j x_j. $$
#
# With $m = 1002$ the shifted logits are $[-2, -1, 0]$, $e^{x - m} = [0.1353, 0.3679, 1]$, the sum is
# $1.5032$, and the result is $[0.0900, 0.2447, 0.6652]$ - the same as for $[1, 2, 3]$, as it must be.
# After the shift, every exponent is $\le 0$, so every $e^{x_i - m} \le 1$: no overflow. Logits far
# below the maximum underflow to $0$, which is the correct probability to float32 precision. And
# the largest entry is exactly $e^0 = 1$, so the denominator is at least 1: never a division by zero.
# A logit of $-\infty$ - how attention masks out positions (module 12) - becomes $e^{-\infty} = 0$:
# probability exactly 0, while the other entries share the mass as if it were not there.
#
# **Along one axis.** For a batch of logits of shape $(N, C)$, softmax runs along the class axis,
# `dim=-1`, independently for each row. Use `keepdims=True` on the max and on the sum, so that the
# $(N, 1)$ results broadcast back over the $(N, C)$ logits - the "reduce with keepdims, then
# broadcast" pattern of module 01.
#
# Systems view: a max, a subtract, an `exp`, a sum and a divide - five passes over the data, with
# input-sized temporaries. At language-model scale this is heavy: a batch of 8 sequences of 1024
# tokens over GPT-2's 50,257-word vocabulary is 412 million logits, 1.6 GB in float32 *per copy*.
# That is why losses never compute softmax and then its log separately (next), and why fast
# implementations fuse all five passes into one.

# %% nbgrader={"grade": false, "grade_id": "softmax", "locked": false, "schema_version": 3, "solution": true, "task": false}
def softmax(x: Tensor, dim: int = -1) -> Tensor:
    # HINT: subtract x.data.max(axis=dim, keepdims=True) before np.exp; divide by the sum over dim
    ### BEGIN SOLUTION
    shifted = x.data - x.data.max(axis=dim, keepdims=True)  # largest entry is 0: exp <= 1
    e = np.exp(shifted)
    data = e / e.sum(axis=dim, keepdims=True)
    ### END SOLUTION
    return Tensor._make(data, (x,), "softmax", dim)


# %%
if __name__ == "__main__":
    print(softmax(Tensor([1.0, 2.0, 3.0])))
    with np.errstate(over="ignore", invalid="ignore"):
        big = np.array([1000.0, 1001.0, 1002.0], np.float32)
        print("naive:", np.exp(big) / np.exp(big).sum(), " yours:", softmax(Tensor(big)).data)
    p = softmax(Tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]))   # one distribution per row
    print(p, "row sums:", p.data.sum(axis=1))
    print("along dim=0:", softmax(Tensor([[1.0, 5.0], [1.0, 3.0]]), dim=0))

# %% [markdown]
# The check `[softmax]` runs softmax's own checks: random shapes and axes with logits up to
# $\pm$ thousands, the `Softmax` layer, and PyTorch. The checks that compare softmax *and*
# log-softmax (extreme rows, shift invariance) come with log-softmax, next.

# %% nbgrader={"grade": true, "grade_id": "check-softmax", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("02", "[softmax]")

# %% [markdown]
# ## LogSoftmax: the log of a probability, without the probability
#
# Losses want $\log p$, not $p$ (module 04's cross-entropy is $-\log p_{\text{correct}}$). Taking the
# log of the shifted softmax gives the *log-sum-exp* form:
#
# $$ \log \mathrm{softmax}(x)_i = (x_i - m) - \log \sum_j e^{x_j - m}, \qquad m = \max_j x_j. $$
#
# Worked example, $x = [1, 2, 3]$: $m = 3$, $\sum_j e^{x_j - m} = 1.5032$, $\log 1.5032 = 0.4076$, so
# $\log\mathrm{softmax}(x) = [-2.4076, -1.4076, -0.4076]$ - and $e^{-0.4076} = 0.6652$, as above.
#
# **Why not `log(softmax(x))`?** Take $x = [0, -1000]$. Softmax gives $[1, 0]$ in float32, because
# $e^{-1000}$ underflows to zero, and $\log 0 = -\infty$. The true log-probability is $-1000$,
# perfectly representable. Through the log-sum-exp form: $m = 0$, the sum is $1 + 0 = 1$, its log is
# $0$, and the result is $[0, -1000]$, exact. A $-\infty$ in a loss becomes `inf`, and its gradient
# `nan`, so this difference decides whether training survives its first confident mistake.
#
# As with softmax, reduce with `keepdims=True` along `dim`. Note that the sum is always at least 1
# (the maximum contributes $e^0$), so its log is always finite and $\ge 0$.
#
# Systems view: the same passes as softmax, but no division, and the result never materialises
# the probabilities. Fused with the loss (module 04), the backward pass is just "probabilities
# minus one-hot targets", which module 06 exploits.

# %% nbgrader={"grade": false, "grade_id": "log-softmax", "locked": false, "schema_version": 3, "solution": true, "task": false}
def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    ### BEGIN SOLUTION
    shifted = x.data - x.data.max(axis=dim, keepdims=True)
    data = shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))
    ### END SOLUTION
    return Tensor._make(data, (x,), "log_softmax", dim)


# %%
if __name__ == "__main__":
    print(log_softmax(Tensor([1.0, 2.0, 3.0])))
    x = Tensor([0.0, -1000.0])
    with np.errstate(divide="ignore"):
        print("log(softmax(x)):", np.log(softmax(x).data), " log_softmax(x):", log_softmax(x).data)
    print("exp(log_softmax) == softmax:",
          np.allclose(np.exp(log_softmax(Tensor([[3.0, -1.0, 0.5]])).data),
                      softmax(Tensor([[3.0, -1.0, 0.5]])).data))

# %% [markdown]
# This check runs every softmax and log-softmax check together (the selector `softmax` matches
# both), including the rows with logits of $\pm 1000$ and the shift invariance
# $\mathrm{softmax}(x + c) = \mathrm{softmax}(x)$.

# %% nbgrader={"grade": true, "grade_id": "check-log-softmax", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("02", "softmax")

# %% [markdown]
# ## The layer forms at work
#
# Now every given layer class from the top of the notebook works: each builds in one line, calls
# your function with its setting, and reports no parameters.

# %%
if __name__ == "__main__":
    x = Tensor([[-1.0, 0.0, 2.0], [3.0, -2.0, 0.5]])
    for layer in (ReLU(), LeakyReLU(0.2), Sigmoid(), Tanh(), GELU(), Softmax(dim=0), LogSoftmax()):
        out = np.round(layer(x).data.astype(np.float64), 3).tolist()
        print(f"{layer!r:>13}  parameters={layer.parameters()}  ->", out)

# %% nbgrader={"grade": true, "grade_id": "check-activation-layers", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("02", "module_forward")

# %% [markdown]
# ## Wrap-up
#
# You wrote seven activation functions, each a line or three of NumPy, and the three that could
# overflow are now exact for any input. The lessons to carry forward:
#
# - **Nonlinearity is what makes depth count.** Without it, any stack of linear layers is one
#   linear layer.
# - **Gradients decide the choice.** ReLU's derivative is 1 where active; sigmoid's is at most
#   $0.25$ and vanishes for large $|x|$. Hidden layers use ReLU or GELU; sigmoid and softmax
#   produce probabilities at the output.
# - **Never exponentiate a large positive number.** Rewrite so that every exponent is $\le 0$: pick
#   the sigmoid form by sign, subtract the maximum in softmax, and compute log-softmax as
#   $x - m - \log\sum e^{x - m}$ instead of the log of a probability that may have underflowed.
# - **Activations are cheap in FLOPs and expensive in memory:** a few operations per element, but
#   each one reads and writes whole arrays, and training keeps them alive for the backward pass.
#
# Next: module 03 builds layers (`Linear`, `Sequential`) that these activations sit between, and
# module 04 builds the losses on top of `sigmoid` and `log_softmax`. Module 06 then gives each
# function here its derivative, from the record that `Tensor._make` keeps. The last cell runs all
# of this module's checks; when it passes, run `tito module complete 02`.

# %% nbgrader={"grade": true, "grade_id": "check-activations-all", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
if __name__ == "__main__":
    from tito.notebook import check
    check("02")
