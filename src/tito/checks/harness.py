"""Shared helpers for the module checks: one central-difference gradcheck, closeness asserts that
name the function at fault and print the input that broke it, and the optional PyTorch oracle.

Every failure message starts with the function under test, e.g.

    Tensor.__mul__: values differ (max abs error 0.5) for inputs shapes [(2, 3), (3,)] ...

so `tito module test` can point the learner at the code to fix.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pytest

from tinytorch.tensor import Tensor


# matmul operand shapes every check of matmul covers: 2-D, batched, broadcast batches, 1-D operands
MATMUL_SHAPES = {
    "2d": ((3, 4), (4, 5)),
    "batched": ((2, 3, 4), (2, 4, 5)),
    "batch_times_matrix": ((2, 3, 4), (4, 5)),
    "matrix_times_batch": ((3, 4), (2, 4, 5)),
    "broadcast_batch": ((2, 1, 3, 4), (3, 4, 2)),
    "vec_vec": ((4,), (4,)),
    "vec_mat": ((4,), (4, 3)),
    "mat_vec": ((3, 4), (4,)),
    "vec_batch": ((4,), (2, 4, 3)),
    "batch_vec": ((2, 3, 4), (4,)),
}


def _describe(arrays: Sequence[np.ndarray]) -> str:
    parts = []
    for a in arrays:
        a = np.asarray(a)
        text = np.array2string(a, precision=4, threshold=12, separator=", ")
        parts.append(f"shape {a.shape}: {text}")
    return "; ".join(parts)


def assert_close(actual, expected, name: str, inputs: Sequence = (), atol=1e-5, rtol=1e-4) -> None:
    """Assert that `actual` matches `expected`; on failure name `name` and show the inputs."""
    actual = np.asarray(actual.data if isinstance(actual, Tensor) else actual)
    expected = np.asarray(expected)
    if actual.shape != expected.shape:
        raise AssertionError(f"{name}: shape {actual.shape}, expected {expected.shape} "
                             f"(inputs {_describe(inputs)})")
    if not np.allclose(actual, expected, atol=atol, rtol=rtol, equal_nan=True):
        err = np.max(np.abs(actual.astype(np.float64) - expected.astype(np.float64)))
        raise AssertionError(f"{name}: values differ (max abs error {err:.3g})\n"
                             f"  got      {_describe([actual])}\n  expected {_describe([expected])}\n"
                             f"  inputs   {_describe(inputs)}")


def numeric_grad(f: Callable[[list[np.ndarray]], float], arrays: list[np.ndarray], i: int,
                 eps: float = 1e-6) -> np.ndarray:
    """Central differences: df/dx_k ~ (f(x + eps e_k) - f(x - eps e_k)) / (2 eps), in float64."""
    x = arrays[i]
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + eps
        up = f(arrays)
        flat[k] = old - eps
        down = f(arrays)
        flat[k] = old
        gflat[k] = (up - down) / (2 * eps)
    return grad


def gradcheck(fn: Callable[..., Tensor], *inputs, name: str, wrt: Sequence[int] | None = None,
              atol: float = 1e-5, rtol: float = 1e-4, seed: int = 0) -> None:
    """Check the backward rules behind `fn` against central differences, in float64.

    fn(*tensors) -> Tensor of any shape. The scalar checked is sum(fn(...) * R) with a fixed
    random R, so every output element's gradient matters. `wrt` picks the inputs to check
    (default: every floating input). Integer inputs (labels) pass through untouched.
    """
    arrays = [np.array(x, dtype=np.float64) if np.asarray(x).dtype.kind == "f" else np.asarray(x)
              for x in inputs]
    wrt = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"] if wrt is None else list(wrt)
    rng = np.random.default_rng(seed)

    def run(arrs, track):
        ts = [Tensor(a, dtype=a.dtype, requires_grad=(i in track)) for i, a in enumerate(arrs)]
        return ts, fn(*ts)

    _, probe = run(arrays, ())
    weights = rng.standard_normal(probe.shape)

    def scalar(arrs):
        return float(np.sum(run(arrs, ())[1].data * weights))

    tensors, out = run(arrays, set(wrt))
    if not out.requires_grad:
        raise AssertionError(f"{name}: the output does not require grad (the graph was not recorded)")
    out.backward(Tensor(weights, dtype=np.float64))  # seeds d(scalar)/d(out) = weights directly,
    # so a wrong mul/sum rule cannot fail every other rule's check under their names
    for i in wrt:
        expected = numeric_grad(scalar, arrays, i)
        got = tensors[i].grad
        if got is None:
            raise AssertionError(f"{name}: input {i} received no gradient (inputs {_describe(arrays)})")
        if got.data.dtype != np.float64:
            raise AssertionError(f"{name}: gradient of input {i} is {got.data.dtype}, expected float64 "
                                 "(a rule changed the dtype)")
        assert_close(got.data, expected, f"{name} (gradient w.r.t. input {i})", arrays, atol=atol, rtol=rtol)


def torch_or_skip():
    """The PyTorch module, or skip the test with a clear reason (it is an optional oracle)."""
    return pytest.importorskip("torch", reason="PyTorch not installed (pip install -e '.[torch]')",
                               exc_type=ImportError)


def torch_parity(fn_tt: Callable, fn_torch: Callable, *arrays, name: str, atol=1e-5, rtol=1e-4) -> None:
    """Forward and gradient of `fn_tt` (tinytorch) vs `fn_torch` (torch) on the same float32 inputs."""
    torch = torch_or_skip()
    arrays = [np.asarray(a) for a in arrays]
    floats = [a.dtype.kind == "f" for a in arrays]
    tts = [Tensor(a, requires_grad=f) for a, f in zip(arrays, floats)]
    ths = [torch.tensor(a, requires_grad=f) for a, f in zip(arrays, floats)]
    out_tt, out_th = fn_tt(*tts), fn_torch(*ths)
    assert_close(out_tt, out_th.detach().numpy(), f"{name} (forward vs PyTorch)", arrays, atol, rtol)
    weights = np.random.default_rng(1).standard_normal(out_th.shape).astype(np.float32)
    out_tt.backward(Tensor(weights))
    out_th.backward(torch.tensor(weights))
    for i, (t, h) in enumerate(zip(tts, ths)):
        if floats[i]:
            got = None if t.grad is None else t.grad.data
            if got is None:
                raise AssertionError(f"{name}: input {i} received no gradient")
            assert_close(got, h.grad.numpy(), f"{name} (gradient {i} vs PyTorch)", arrays, atol, rtol)
