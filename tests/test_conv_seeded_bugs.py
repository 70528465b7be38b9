"""Module 09's checks must catch the convolution bugs learners really write, and name the function.

Each bug is pasted at the end of a copy of the reference `convolutions.py` (redefining one
function, and re-registering the backward rule where the bug lives there); the module's checks run
on it through `tito.checkrun.run_checks`, staged exactly as `tito module test` stages a learner's
file. The test asserts that checks fail, and that the failures name the function where the bug is.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tinytorch
from tito import checkrun, registry
from tito.verify import _files
from tito.workspace import Sources

SRC = Path(tinytorch.__file__).parent
SOURCES = Sources.installed()
M09 = registry.get_module("09")

BUGS = {
    # The kernel is flipped (a "true" convolution) in the forward pass, but the backward pass uses
    # the weights as stored: the gradients belong to a different function.
    "kernel_flipped_in_forward_only": ("""
        _reference_conv2d = conv2d

        def conv2d(x, weight, bias=None, stride=1, padding=0):
            flipped = Tensor(weight.data[:, :, ::-1, ::-1].copy(), requires_grad=weight.requires_grad)
            out = _reference_conv2d(x, flipped, bias, stride, padding)
            out._parents = tuple(weight if p is flipped else p for p in out._parents)
            return out
        """, {"conv2d", "conv2d_backward"}),
    # col2im scatters every kernel offset with stride 1, whatever the forward stride was.
    "stride_ignored_in_backward": ("""
        def col2im(dcols, shape, sh, sw):
            n, ho, wo, kh, kw, c = dcols.shape
            dxp = np.zeros(shape, dtype=dcols.dtype)
            for i in range(kh):
                for j in range(kw):
                    dxp[:, i:i + ho, j:j + wo] += dcols[:, :, :, i, j]
            return dxp
        """, {"col2im", "conv2d_backward"}),
    # the bias gradient of one image only (forgot to sum over the batch)
    "bias_grad_not_summed_over_batch": ("""
        _reference_conv2d_backward = conv2d_backward

        @register_backward("conv2d")
        def conv2d_backward(g, out):
            grads = _reference_conv2d_backward(g, out)
            if len(grads) == 3:
                o = out.shape[1]
                grads = grads[:2] + (np.ascontiguousarray(g[0].transpose(1, 2, 0)).reshape(-1, o).sum(axis=0),)
            return grads
        """, {"conv2d_backward"}),
    # every tied maximum gets the full gradient
    "max_pool_gradient_to_every_tie": ("""
        @register_backward("max_pool2d")
        def max_pool2d_backward(g, out):
            (x,) = out._parents
            xp, (kh, kw), (sh, sw), (ph, pw) = out._saved
            ho, wo = out.shape[2:]
            gl, best = _channels_last(g), _channels_last(out.data)
            dxp = np.zeros(xp.shape, dtype=g.dtype)
            for i in range(kh):
                for j in range(kw):
                    _offset(dxp, i, j, sh, sw, ho, wo)[...] += gl * (_offset(xp, i, j, sh, sw, ho, wo) == best)
            h, w = x.shape[2:]
            return (_channels_first(dxp[:, ph:ph + h, pw:pw + w]),)
        """, {"max_pool2d_backward"}),
    # eval mode still normalises with the batch statistics
    "batchnorm_eval_uses_batch_stats": ("""
        _reference_batch_norm2d = batch_norm2d

        def batch_norm2d(x, weight, bias, running_mean, running_var, training, momentum=0.1, eps=1e-5):
            return _reference_batch_norm2d(x, weight, bias, running_mean.copy(), running_var.copy(),
                                           True, momentum, eps)
        """, {"batch_norm2d", "BatchNorm2d"}),
}


def run_checks_on(patch: str) -> list[checkrun.CheckResult]:
    """Module 09's checks, through tito's own runner, on the reference with the bug pasted in."""
    files = _files(SOURCES, M09, stub=False)
    files[M09.file_name] = SOURCES.reference_text(M09) + "\n\n# --- seeded bug ---\n" + textwrap.dedent(patch)
    return checkrun.run_checks(M09, files, src=SOURCES).results


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_seeded_bug_fails_the_checks_and_names_the_function(bug):
    patch, culprits = BUGS[bug]
    failed = [t for t in run_checks_on(patch) if t.outcome in ("failed", "error")]
    assert failed, f"{bug}: module 09's checks all passed on a buggy convolution"
    named = {t.function for t in failed}
    assert named & culprits, f"{bug}: the failures name {sorted(map(str, named))}, none of {sorted(culprits)}"
    # no failure blames an innocent function (layers that call the buggy one are fair to name)
    wrappers = {"Conv2d", "Conv2d.forward", "BatchNorm2d.forward", "MaxPool2d.forward"}
    for t in failed:
        assert t.function in culprits | wrappers, \
            f"{bug}: a failure blames {t.function!r}: {t.message[:300]}"


# ---------------------------------------------------------------------------------------------
# Forced through with --skip-checks, the same bugs must fail milestone 04's conditions
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bug", ["kernel_flipped_in_forward_only", "stride_ignored_in_backward"])
def test_seeded_bug_fails_the_milestone(bug, tmp_path):
    pkg = tmp_path / "tinytorch"
    shutil.copytree(SRC, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    conv = pkg / "convolutions.py"
    conv.write_text(conv.read_text() + "\n\n# --- seeded bug ---\n" + textwrap.dedent(BUGS[bug][0]))
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "tito.milestones.runner", "04", "1", "--quick", "--out", str(out),
                           "--root", str(tmp_path), "--expect", str(pkg)],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    final = [m for m in lines if "metrics" in m]
    assert final, f"{bug}: the milestone did not report metrics: {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
    metrics = final[-1]["metrics"]
    part = registry.get_milestone("04").part(1)
    results = registry.evaluate(part.conditions, metrics, quick=True)
    assert not all(r.passed for r in results), f"{bug}: milestone 04 part 1 passed with a buggy conv: {metrics}"
    assert metrics["grad_check_ok"] is False
