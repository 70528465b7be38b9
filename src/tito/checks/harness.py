"""Shared helpers for the module checks: one central-difference gradcheck, closeness asserts that
name the function at fault and print the input that broke it, and the optional PyTorch oracle.

Every failure message starts with the function under test, e.g.

    Tensor.__mul__: values differ (max abs error 0.5) for inputs shapes [(2, 3), (3,)] ...

so `tito module test` can point the learner at the code to fix. A check's own code must not
crash with a bare KeyError either: `call(name, fn, ...)` and `with blame(name):` turn a crash
into an AssertionError that names the function whose result the check was looking at.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Sequence

import numpy as np
import pytest

from tinytorch.tensor import Tensor


# matmul operand shapes every check of matmul covers: 2-D, batched, broadcast batches, 1-D
# operands, and batches of more than one axis (4-D, 5-D), where `swapaxes(A, 1, 2)` or
# `A.transpose(0, 2, 1)` - right for 3-D only - goes wrong
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
    "4d_batched": ((2, 3, 2, 4), (2, 3, 4, 3)),
    "4d_broadcast_both": ((2, 1, 3, 4), (1, 3, 4, 2)),
    "5d_times_matrix": ((2, 1, 2, 3, 4), (4, 3)),
    "matrix_times_4d": ((3, 4), (2, 2, 4, 2)),
    "vec_4d": ((4,), (2, 2, 4, 3)),
    "4d_vec": ((2, 2, 3, 4), (4,)),
}


def hypothesis_settings(**kwargs):
    """Settings for a property check: reproducible, no deadline, no example database, and ONE
    minimal failure reported (not 'N distinct failures', which names no function)."""
    from hypothesis import settings

    return settings(**{"deadline": None, "derandomize": True, "database": None,
                       "report_multiple_bugs": False, **kwargs})


# ---------------------------------------------------------------------------------------------
# Named crashes: a check's own code never fails with a bare message
# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def blame(name: str, what: str = ""):
    """Inside the block, an exception other than an assertion or a stub becomes an AssertionError
    that starts with `name` (the function whose result the block uses), e.g.

        with blame("load_checkpoint", "the optimizer's momentum buffers"):
            buf = opt2.state[q]["momentum_buffer"]       # a KeyError names load_checkpoint
    """
    try:
        yield
    except (AssertionError, NotImplementedError):
        raise
    except Exception as e:
        about = f" ({what})" if what else ""
        raise AssertionError(f"{name}: {type(e).__name__}: {e}{about}") from e


def call(name: str, fn, *args, **kwargs):
    """fn(*args, **kwargs); a crash becomes an AssertionError that names `name` and the input
    shapes. A stub's NotImplementedError passes through unchanged (it names itself)."""
    try:
        return fn(*args, **kwargs)
    except (AssertionError, NotImplementedError):
        raise
    except Exception as e:
        shapes = ", ".join(str(np.shape(getattr(a, "data", a))) for a in args
                           if isinstance(a, (Tensor, np.ndarray)))
        raise AssertionError(f"{name}: raised {type(e).__name__}: {e}"
                             + (f" (input shapes: {shapes})" if shapes else "")) from e


def expect_error(name: str, error, fn, *args, match: str = "", **kwargs):
    """fn(...) must raise `error` whose message contains `match`; anything else fails, naming `name`."""
    try:
        fn(*args, **kwargs)
    except NotImplementedError:
        raise
    except error as e:
        if match not in str(e):
            raise AssertionError(f"{name}: the {type(e).__name__} should mention {match!r}; it says: {e}") from e
        return e
    except Exception as e:
        raise AssertionError(f"{name}: raised {type(e).__name__}: {e}, expected a {error.__name__}") from e
    raise AssertionError(f"{name}: did not raise a {error.__name__}")


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


# ---------------------------------------------------------------------------------------------
# Backward rules, one at a time, before the engine runs them
# ---------------------------------------------------------------------------------------------
def rule_name(op: str) -> str:
    """The name of the function registered for `op` (e.g. "conv2d_backward")."""
    from tinytorch import autograd

    rule = autograd.BACKWARD.get(op)
    return getattr(rule, "__name__", None) or f"{op}_backward"


def check_rules(out: Tensor, context: str = "", seed: int = 0) -> None:
    """Call the backward rule of every node of `out`'s graph directly, as the engine would, and
    check what it returns: one entry per parent, each None or an array that sums back to the
    parent's shape (the parent's shape, or a broadcast of it), in the parent's float dtype - and
    that it wrote into nothing (its incoming gradient may be shared, the forward values are
    the model's). A failure names the RULE, not the engine that would have tripped over it."""
    from tinytorch import autograd

    rng = np.random.default_rng(seed)
    where = f" ({context})" if context else ""
    stack, seen = [out], set()
    while stack:
        node = stack.pop()
        if id(node) in seen or node._op is None:
            continue
        seen.add(id(node))
        stack.extend(node._parents)
        rule = autograd.BACKWARD.get(node._op)
        name = rule_name(node._op)
        if rule is None:
            raise AssertionError(f"{name}: no backward rule is registered for op {node._op!r}{where}: "
                                 f"add one with @register_backward({node._op!r})")
        g = rng.standard_normal(node.shape).astype(node.dtype)
        g_before = g.copy()
        before = [p.data.copy() for p in (node, *node._parents)]
        saved = _arrays_in(node._saved)
        saved_before = [a.copy() for a in saved]
        grads = rule(g, node)
        if not isinstance(grads, (tuple, list)):
            raise AssertionError(f"{name}: returned a {type(grads).__name__}, expected a tuple with one "
                                 f"gradient per parent ({len(node._parents)}){where}; e.g. `return (dx,)`")
        if len(grads) != len(node._parents):
            raise AssertionError(f"{name}: returned {len(grads)} gradients for {len(node._parents)} "
                                 f"parents{where} (one per parent, None for one that needs none)")
        if not np.array_equal(g, g_before):
            raise AssertionError(f"{name}: wrote into its incoming gradient g{where}; the engine may "
                                 "pass the same array to other rules: compute a new array instead")
        for k, t in enumerate((node, *node._parents)):
            if not np.array_equal(t.data, before[k], equal_nan=True):
                what = "its output's" if k == 0 else f"parent {k - 1}'s"
                raise AssertionError(f"{name}: changed {what} forward values in place{where}")
        if any(not np.array_equal(a, b, equal_nan=True) for a, b in zip(saved, saved_before)):
            raise AssertionError(f"{name}: changed the values saved for it (out._saved) in place{where}; "
                                 "a second backward through the same graph would see different ones")
        for k, (parent, gr) in enumerate(zip(node._parents, grads)):
            if gr is None:
                continue
            arr = np.asarray(gr)
            if not parent.requires_grad or parent.dtype.kind != "f":
                continue
            try:
                fits = np.broadcast_shapes(arr.shape, parent.shape) == arr.shape
            except ValueError:
                fits = False
            if not fits:
                raise AssertionError(f"{name}: returned a gradient of shape {arr.shape} for parent {k} "
                                     f"of shape {parent.shape}{where} (output shape {node.shape}); a "
                                     "gradient has its parent's shape (or a broadcast of it)")
            if arr.dtype != parent.dtype:
                raise AssertionError(f"{name}: returned a {arr.dtype} gradient for parent {k}, which is "
                                     f"{parent.dtype}{where} (a float64 constant or saved value "
                                     "promotes float32; float64 is 2x slower)")


def _arrays_in(saved) -> list[np.ndarray]:
    """The arrays inside a node's `_saved` (an array, or a tuple/list holding some)."""
    if isinstance(saved, np.ndarray):
        return [saved]
    if isinstance(saved, (tuple, list)):
        return [a for item in saved for a in _arrays_in(item)]
    return []


def gradcheck(fn: Callable[..., Tensor], *inputs, name: str, wrt: Sequence[int] | None = None,
              atol: float = 1e-5, rtol: float = 1e-4, seed: int = 0) -> None:
    """Check the backward rules behind `fn` against central differences, in float64.

    fn(*tensors) -> Tensor of any shape. The scalar checked is sum(fn(...) * R) with a fixed
    random R, so every output element's gradient matters. `wrt` picks the inputs to check
    (default: every floating input). Integer inputs (labels) pass through untouched. Before the
    engine runs, every rule on the graph is called on its own (`check_rules`).
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

    def scalar(arrs):  # on copies: a forward that writes into its inputs cannot move the point
        return float(np.sum(run([a.copy() for a in arrs], ())[1].data * weights))

    def unchanged(tensors, when):
        for i, (t, a) in enumerate(zip(tensors, arrays)):
            if not np.array_equal(t.data, a, equal_nan=True):
                raise AssertionError(f"{name}: {when} changed the value of input {i} in place")

    tensors, out = run([a.copy() for a in arrays], set(wrt))  # copies: the numeric pass uses `arrays`
    unchanged(tensors, "the forward pass")
    if not out.requires_grad:
        raise AssertionError(f"{name}: the output does not require grad (the graph was not recorded)")
    check_rules(out, name)
    out.backward(Tensor(weights, dtype=np.float64))  # seeds d(scalar)/d(out) = weights directly,
    # so a wrong mul/sum rule cannot fail every other rule's check under their names
    unchanged(tensors, "backward")
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
    check_rules(out_tt, name)
    weights = np.random.default_rng(1).standard_normal(out_th.shape).astype(np.float32)
    out_tt.backward(Tensor(weights))
    out_th.backward(torch.tensor(weights))
    for i, (t, h) in enumerate(zip(tts, ths)):
        if floats[i]:
            got = None if t.grad is None else t.grad.data
            if got is None:
                raise AssertionError(f"{name}: input {i} received no gradient")
            assert_close(got, h.grad.numpy(), f"{name} (gradient {i} vs PyTorch)", arrays, atol, rtol)
