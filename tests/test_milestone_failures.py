"""Failure is handled, not crashed: a learner's bug makes a milestone FAIL with the failing
condition and its measured value (never a success panel), and every bad situation - exception,
NaN, time limit, Ctrl-C, data missing offline or corrupt, a module that does not import - gives a
clear message and records nothing. Bugs are planted in staged copies of the reference modules."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_milestone_cli import assert_whole, console_run
from test_milestones import achievements, make_ws, tito

FOUNDATION = ("01", "02", "03")
TO_07 = tuple(f"{i:02d}" for i in range(1, 8))
TO_08 = tuple(f"{i:02d}" for i in range(1, 9))
SHARED = Path(os.environ.get("TINYTORCH_DATA", "/nonexistent"))

# Each bug is code appended to the learner's file: it redefines a function by its public name.
SIGN_FLIP = {"tensor.py": """
_sub = Tensor.__sub__
Tensor.__sub__ = lambda self, other: _sub(self._lift(other), self)  # b - a instead of a - b
"""}
TRANSPOSED_GRAD = {"autograd.py": """
def _transposed(rule):
    def linear_backward(g, out):
        gx, gW, *rest = rule(g, out)  # dW comes back transposed, squeezed into W's shape
        return (gx, np.ascontiguousarray(gW.T).reshape(gW.shape), *rest)
    return linear_backward


BACKWARD["linear"] = _transposed(BACKWARD["linear"])
"""}
RAISES = {"layers.py": """
def _forward(self, x):
    raise ValueError("learner bug in forward")


Linear.forward = _forward
"""}
SLOW = {"layers.py": """
_forward = Linear.forward


def _slow(self, x):
    import time
    time.sleep(60)
    return _forward(self, x)


Linear.forward = _slow
"""}
NAN_LOSS = {"losses.py": """
_forward = BCEWithLogitsLoss.forward


def _nan(self, prediction, target):
    out = _forward(self, prediction, target)
    out.data = out.data * np.nan
    return out


BCEWithLogitsLoss.forward = _nan
"""}
SYNTAX_ERROR = {"layers.py": "def broken(:\n    pass\n"}


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TITO_WORKSPACE", raising=False)


def failed(code: int, out: str) -> None:
    """A failure, not a crash: exit 1, no success panel, no traceback of tito itself, commands
    shown as commands (no raw backticks), and 'Saved in' naming only files that exist."""
    assert code == 1, out
    assert "ACHIEVED" not in out and "🏆" not in out, out
    assert "Nothing was recorded" in out, out
    assert "/tito/milestones/runner.py" not in out and "milestone_run.py" not in out, out
    assert "`" not in out, out
    for line in out.splitlines():
        if line.startswith("Saved in "):
            folder, names = line.removeprefix("Saved in ").split("/: ")
            assert all((Path(folder) / n).is_file() for n in names.split(", ")), line


# ---------------------------------------------------------------------------------------------
# Planted bugs: the milestone fails, with the failing condition and its measured value
# ---------------------------------------------------------------------------------------------
def test_flipped_perceptron_update_fails_with_the_measured_accuracy(tmp_path):
    """Tensor.__sub__ reversed: Rosenblatt's error y - y_hat flips sign, the weights walk away."""
    ws = make_ws(tmp_path / "ws", FOUNDATION, SIGN_FLIP)
    code, out = tito("milestone", "run", "01", cwd=ws.root)
    failed(code, out)
    assert "✗ 100% training accuracy (the convergence theorem): measured" in out
    line = next(x for x in out.splitlines() if "✗ 100% training accuracy" in x)
    assert "target >= 100.00%" in line and "measured 100.00%" not in line
    assert "module 01 tensor" in out or "module 03 layers" in out  # the likely culprits
    assert achievements(ws) == {}


def test_transposed_gradient_in_linear_fails_the_gradient_condition(tmp_path):
    """The weight gradient of Linear comes back transposed (and silently reshaped)."""
    ws = make_ws(tmp_path / "ws", TO_07, TRANSPOSED_GRAD)
    code, out = tito("milestone", "run", "02", "--part", "2", cwd=ws.root)
    failed(code, out)
    assert "✗ backprop's gradients match finite differences: measured no, target yes" in out
    assert "finite differences" in out and "module 06 autograd" in out
    assert achievements(ws) == {}


def test_a_failure_panel_in_a_narrow_log_keeps_each_command_whole(tmp_path, monkeypatch):
    ws = make_ws(tmp_path / "ws", FOUNDATION, RAISES)
    code, out = console_run(monkeypatch, "milestone", "run", "01", cwd=ws.root, terminal=False)
    failed(code, out)
    panel = [x for x in out.splitlines() if x.startswith(("│", "╭", "╰"))]
    assert panel and all(len(x) <= 40 for x in panel), out
    assert_whole(out, "tito module test 03", "tito module complete 03")
    assert "Saved in " in out and out.count("metrics.json") == 1  # the run's file, nothing more


def test_learner_exception_is_trimmed_to_their_files(tmp_path):
    ws = make_ws(tmp_path / "ws", FOUNDATION, RAISES)
    code, out = tito("milestone", "run", "01", cwd=ws.root)
    failed(code, out)
    assert "Your code raised an exception in module 03 layers" in out
    assert "tinytorch/layers.py" in out and "ValueError: learner bug in forward" in out
    assert "m01_perceptron.py" in out  # the one milestone line that called into their code
    assert "site-packages" not in out and "tito module test 03" in out
    assert achievements(ws) == {}


def test_nan_loss_stops_early_and_names_suspects(tmp_path):
    ws = make_ws(tmp_path / "ws", TO_07, NAN_LOSS)
    t0 = time.monotonic()
    code, out = tito("milestone", "run", "02", "--part", "2", cwd=ws.root)
    failed(code, out)
    assert "Stopped early: the loss became nan at step 1" in out
    assert "module 04 losses" in out and "module 06 autograd" in out
    assert time.monotonic() - t0 < 60
    assert achievements(ws) == {}


def test_time_limit_stops_the_run_with_a_clear_message(tmp_path):
    ws = make_ws(tmp_path / "ws", FOUNDATION, SLOW)
    t0 = time.monotonic()
    code, out = tito("milestone", "run", "01", "--timeout", "3", cwd=ws.root)
    failed(code, out)
    assert "Time limit: the run was stopped at its time limit of 3 s" in out
    assert "--timeout" in out and time.monotonic() - t0 < 30
    assert achievements(ws) == {}


def test_module_that_does_not_import_is_named(tmp_path):
    ws = make_ws(tmp_path / "ws", FOUNDATION, SYNTAX_ERROR)
    code, out = tito("milestone", "run", "01", cwd=ws.root)
    assert code == 1 and "✗ 03 layers" in out and "SyntaxError" in out, out
    assert "Error: module 03 layers does not import" in out and "tito module complete 03" in out
    assert achievements(ws) == {}


# ---------------------------------------------------------------------------------------------
# Ctrl-C: a real process and a real SIGINT
# ---------------------------------------------------------------------------------------------
def _processes_mentioning(text: str) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmdline = (d / "cmdline").read_bytes().replace(b"\0", b" ")
                if text in cmdline.decode(errors="replace"):
                    found.append(int(d.name))
            except OSError:
                pass
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and SIGINT")
def test_ctrl_c_stops_the_run_and_records_nothing(tmp_path):
    ws = make_ws(tmp_path / "ws", FOUNDATION, SLOW)
    env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200")
    proc = subprocess.Popen([sys.executable, "-m", "tito.cli", "milestone", "run", "01"],
                            cwd=ws.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    seen = []
    for line in proc.stdout:  # wait until the training subprocess is running
        seen.append(line)
        if line.startswith("Part 1"):
            break
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=30)
    out = "".join(seen) + rest
    assert proc.returncode == 130, out
    assert "Interrupted" in out and "Nothing was recorded" in out and "Traceback" not in out
    assert achievements(ws) == {}
    time.sleep(0.5)
    assert _processes_mentioning(str(ws.root / "runs")) == [], "the training subprocess survived"


# ---------------------------------------------------------------------------------------------
# Data: missing offline, corrupt
# ---------------------------------------------------------------------------------------------
def test_missing_data_offline_gives_the_data_sets_message(tmp_path, monkeypatch):
    ws = make_ws(tmp_path / "ws", TO_08)
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path / "nodata"))
    monkeypatch.setenv("TINYTORCH_CACHE", str(tmp_path / "derived"))
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # nothing listens there: offline at once
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    code, out = tito("milestone", "run", "03", "--part", "2", "--quick", cwd=ws.root)
    failed(code, out)
    assert "mnist: cannot get" in out and "train-images-idx3-ubyte.gz" in out
    assert "TINYTORCH_DATA" in out and "Traceback" not in out


@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason="no local MNIST copy")
def test_corrupt_data_file_gives_the_data_sets_message(tmp_path, monkeypatch):
    ws = make_ws(tmp_path / "ws", TO_08)
    data = tmp_path / "data"
    shutil.copytree(SHARED / "mnist", data / "mnist")
    labels = data / "mnist" / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:200])  # truncated download
    monkeypatch.setenv("TINYTORCH_DATA", str(data))
    monkeypatch.setenv("TINYTORCH_CACHE", str(tmp_path / "derived"))
    code, out = tito("milestone", "run", "03", "--part", "2", "--quick", cwd=ws.root)
    failed(code, out)
    assert "t10k-labels-idx1-ubyte.gz" in out and "corrupt" in out and "Traceback" not in out
