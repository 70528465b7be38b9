"""Before module 06 is complete, modules 01-05 work forward-only and backward() says what is missing.

A learner's package holds only the modules they have exported. Without tinytorch/autograd.py (or
with the stripped, unfinished one) every forward op must still work and record its graph, and
`backward()` must raise a RuntimeError that names module 06 and the command to complete it.
These run in a subprocess on a temporary package, exactly as a learner's workspace would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import re
import sys
import textwrap
from pathlib import Path

import pytest

import tinytorch
from tinytorch.tensor import Tensor
from tito.strip import strip_source

SRC = Path(tinytorch.__file__).parent
BEFORE_06 = ["__init__.py", "tensor.py", "activations.py", "layers.py", "losses.py", "dataloader.py"]

PROBE = textwrap.dedent("""
    import json
    import numpy as np
    import tinytorch
    from tinytorch.tensor import Tensor
    from tinytorch.activations import relu, softmax
    from tinytorch.losses import CrossEntropyLoss

    x = Tensor(np.arange(6.0).reshape(2, 3) / 10, requires_grad=True)
    w = Tensor(np.ones((3, 4)), requires_grad=True)
    logits = relu(x @ w + 1.0)
    loss = CrossEntropyLoss()(logits, np.array([0, 3]))
    out = {"package": tinytorch.__file__, "op": loss._op, "value": loss.item(),
           "softmax_rows": softmax(logits).sum(axis=1).numpy().tolist()}
    try:
        loss.backward()
        out["raised"] = None
    except BaseException as e:
        out.update(raised=type(e).__name__, message=str(e),
                   cause=type(e.__cause__).__name__ if e.__cause__ else None)
    print(json.dumps(out))
""")


def make_package(tmp_path: Path, autograd_text: str | None) -> Path:
    pkg = tmp_path / "tinytorch"
    pkg.mkdir()
    for name in BEFORE_06:
        if (SRC / name).exists():
            shutil.copy(SRC / name, pkg / name)
    if autograd_text is not None:
        (pkg / "autograd.py").write_text(autograd_text, encoding="utf-8")
    return pkg


def probe(tmp_path: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(out["package"]).resolve().parent == (tmp_path / "tinytorch").resolve(), out["package"]
    return out


def test_without_autograd_forward_works_and_backward_names_module_06(tmp_path):
    make_package(tmp_path, None)
    out = probe(tmp_path)
    assert out["op"] == "cross_entropy" and out["value"] > 0, out  # the graph is recorded, forward-only
    assert out["softmax_rows"] == pytest.approx([1.0, 1.0])
    assert out["raised"] == "RuntimeError", out
    assert "module 06" in out["message"] and "tito module complete 06" in out["message"], out["message"]
    assert out["cause"] == "ModuleNotFoundError", out


def test_stubbed_autograd_backward_names_module_06(tmp_path):
    """The learner's unfinished 06 (the stripped reference): a RuntimeError, not a bare stub error."""
    stripped = strip_source((SRC / "autograd.py").read_text(encoding="utf-8"), "autograd.py")
    make_package(tmp_path, stripped)
    out = probe(tmp_path)
    assert out["raised"] == "RuntimeError", out
    # the stub says nothing itself: the message names the unfinished function from its frame
    assert re.search(r"module 06 \(autograd\): [A-Za-z_][\w.]*\. Finish", out["message"]), out["message"]
    assert out["cause"] == "NotImplementedError", out


def test_broken_import_inside_autograd_is_not_masked(tmp_path):
    """A module 06 that exists but imports something missing shows that real error."""
    make_package(tmp_path, "import a_module_that_does_not_exist_xyz\n")
    out = probe(tmp_path)
    assert out["raised"] == "ModuleNotFoundError", out
    assert "a_module_that_does_not_exist_xyz" in out["message"], out


def test_backward_without_autograd_in_process(monkeypatch):
    """The same message when tinytorch.autograd cannot be imported in this very process."""
    monkeypatch.setitem(sys.modules, "tinytorch.autograd", None)  # import now raises ModuleNotFoundError
    monkeypatch.delattr(tinytorch, "autograd", raising=False)
    x = Tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    assert loss._op == "sum" and loss._parents[0]._op == "mul"
    with pytest.raises(RuntimeError, match=r"module 06 .*tito module complete 06"):
        loss.backward()
    assert x.grad is None
