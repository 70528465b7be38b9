"""The language tier's seeded bugs (issue 9): each is caught by its module's checks with the
function named, and - forced through as with `--skip-checks` - fails milestone 05.

Each bug is pasted at the end of a copy of one reference module file (redefining one function or
method, re-registering a backward rule where the bug lives there) in a staged `tinytorch` package,
exactly as in tests/test_conv_seeded_bugs.py. The milestone half runs part 1 `--quick` (about 20 s):
its independent probes (causality, position use, attention against the formula, the GPT's
gradients against finite differences) must fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import tinytorch
from tito import checkrun, registry
from tito.verify import _files
from tito.workspace import Sources

SRC = Path(tinytorch.__file__).parent
SOURCES = Sources.installed()

SDPA_BODY = """
def scaled_dot_product_attention(q, k, v, mask=None, is_causal=False, *, return_weights=False):
    _check_shapes(q, k, v)
    allowed = _allowed(mask, is_causal, q.shape[-2], k.shape[-2])
    scale = {scale}
    scores = (q.data * scale) @ np.swapaxes(k.data, -1, -2)
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    top = scores.max(axis={axis}, keepdims=True)
    top[~np.isfinite(top)] = 0.0
    weights = np.exp(scores - top)
    total = weights.sum(axis={axis}, keepdims=True)
    weights = weights / np.where(total > 0, total, 1.0)
    out = weights @ v.data
    result = Tensor._make(out, (q, k, v), "sdpa", (weights, scale))
    return (result, weights) if return_weights else result
"""

# bug -> (module file, patch, the functions a failure may name, the milestone metric that must fail)
BUGS = {
    "attention_without_scale": ("attention.py", SDPA_BODY.format(scale="1.0", axis=-1),
                                {"scaled_dot_product_attention"}, "attention_formula_err"),
    "causal_mask_off_by_one": ("attention.py", """
        def causal_mask(tq, tk):
            return np.arange(tk)[None, :] <= np.arange(tq)[:, None] + 1  # sees the next token
        """, {"causal_mask", "scaled_dot_product_attention"}, "causal_leak"),
    "softmax_over_wrong_axis": ("attention.py", SDPA_BODY.format(scale="1.0 / math.sqrt(q.shape[-1])", axis=-2),
                                {"scaled_dot_product_attention"}, "attention_formula_err"),
    "layer_norm_backward_without_mean_terms": ("transformers.py", """
        @register_backward("layer_norm")
        def layer_norm_backward(g, out):
            x, weight, bias = out._parents
            xhat, rstd = out._saved
            c = x.shape[-1]
            g2, xhat2 = g.reshape(-1, c), xhat.reshape(-1, c)
            dx = g2 * weight.data * rstd.reshape(-1, 1)  # as if mean and variance were constants
            return dx.reshape(x.shape), (g2 * xhat2).sum(axis=0), g2.sum(axis=0)
        """, {"layer_norm_backward"}, "grads_match"),
    "identity_positional_encoding": ("embeddings.py", """
        def _same_position(self, T):
            if T > self.max_len:
                raise ValueError(f"PositionalEmbedding.forward: {T} > max_len={self.max_len}")
            return Embedding.forward(self, np.zeros(T, dtype=np.int64))  # every position is 0

        PositionalEmbedding.forward = _same_position
        """, {"PositionalEmbedding.forward"}, "position_spread"),
    "embedding_backward_overwrites": ("embeddings.py", """
        @register_backward("embedding")
        def embedding_backward(g, out):
            (weight,) = out._parents
            grad = np.zeros(weight.shape, dtype=g.dtype)
            grad[out._saved.reshape(-1)] = g.reshape(-1, weight.shape[1])  # the last repeat wins
            return (grad,)
        """, {"embedding_backward"}, "grads_match"),
}

MODULE = {m.file_name: m for m in registry.built_modules()}  # "attention.py" -> module 12

def stage(root: Path, bug: str) -> Path:
    """A copy of the reference package with the bug pasted at the end of its module file."""
    name, patch, _, _ = BUGS[bug]
    pkg = root / "tinytorch"
    shutil.copytree(SRC, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    f = pkg / name
    f.write_text(f.read_text() + "\n\n# --- seeded bug ---\n" + textwrap.dedent(patch))
    return pkg


def run_checks(_folder: Path, bug: str) -> list[checkrun.CheckResult]:
    """The module's checks, through tito's own runner (which stages its own folder), on the
    reference with the bug pasted in."""
    name, patch, _, _ = BUGS[bug]
    m = MODULE[name]
    files = _files(SOURCES, m, stub=False)
    files[name] = SOURCES.reference_text(m) + "\n\n# --- seeded bug ---\n" + textwrap.dedent(patch)
    return checkrun.run_checks(m, files, src=SOURCES).results


def run_milestone(root: Path, bug: str) -> dict:
    """Milestone 05 part 1 --quick on the buggy package (as --skip-checks would): its metrics."""
    pkg, out = stage(root, bug), root / "run"
    proc = subprocess.run([sys.executable, "-m", "tito.milestones.runner", "05", "1", "--quick",
                           "--out", str(out), "--root", str(root), "--expect", str(pkg)],
                          capture_output=True, text=True, timeout=600, cwd=root,
                          env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    final = [m for m in lines if "metrics" in m]
    assert final, f"{bug}: the milestone reported no metrics: {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
    return final[-1]["metrics"]


def _two_at_a_time(job, tmp: Path) -> dict:
    """{bug: job(folder, bug)} for every bug, two subprocesses at a time (the machine's 2 cores)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {bug: pool.submit(job, tmp / f"{job.__name__}-{bug}", bug) for bug in BUGS}
    return {bug: f.result() for bug, f in futures.items()}


@pytest.fixture(scope="module")
def check_reports(tmp_path_factory):
    return _two_at_a_time(run_checks, tmp_path_factory.mktemp("checks"))


@pytest.fixture(scope="module")
def milestone_metrics(tmp_path_factory):
    return _two_at_a_time(run_milestone, tmp_path_factory.mktemp("m05"))


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_seeded_bug_fails_the_checks_and_names_the_function(bug, check_reports):
    culprits = BUGS[bug][2]
    failed = [t for t in check_reports[bug] if t.outcome in ("failed", "error")]
    assert failed, f"{bug}: the module's checks all passed on the buggy code"
    named = {t.function for t in failed}
    assert named & culprits, f"{bug}: the failures name {sorted(map(str, named))}, none of {sorted(culprits)}"


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_seeded_bug_fails_milestone_05(bug, milestone_metrics):
    metric, metrics = BUGS[bug][3], milestone_metrics[bug]
    part = registry.get_milestone("05").part(1)
    results = {r.condition.metric: r for r in registry.evaluate(part.conditions, metrics, quick=True)}
    assert not results[metric].passed, f"{bug}: {metric} = {metrics.get(metric)} passed: {metrics}"
