"""Which workspace `import tinytorch` means in this Python environment.

A learner's `import tinytorch` - in a script, a REPL, or a notebook kernel started in any folder -
must be THEIR package, `<workspace>/tinytorch/`. `tito init` (and `tito workspace activate`)
registers one workspace with the environment tito runs in, through a path file in its
site-packages:

    <site-packages>/tinytorch-workspace.pth        # one line: the workspace folder

Python reads `.pth` files at start-up and puts that folder on `sys.path`, so every process of the
environment finds `<workspace>/tinytorch`. Exactly one workspace is active at a time; the file
says which, and `tito status` shows it. The reference framework is never on that path (it is
`tinytorch_reference`). With ipykernel installed, a Jupyter kernel spec "tinytorch" is written
too, so a Jupyter installed in another environment can start a kernel of this one.

`TITO_SITE_DIR` moves the path file (the project's tests use it to leave the environment alone).
"""

from __future__ import annotations

import importlib.util
import json
import os
import site
import sys
import sysconfig
from pathlib import Path

from tito.errors import TitoError

PTH_NAME = "tinytorch-workspace.pth"
KERNEL_NAME = "tinytorch"
ENV_SITE = "TITO_SITE_DIR"
_HEADER = "# written by tito: `import tinytorch` in this environment is this workspace's package\n"


def site_dir() -> Path:
    """Where the path file goes: $TITO_SITE_DIR, else this environment's site-packages (or the
    user site-packages when that is not writable, e.g. a system Python)."""
    if os.environ.get(ENV_SITE):
        return Path(os.environ[ENV_SITE])
    purelib = Path(sysconfig.get_paths()["purelib"])
    if os.access(purelib, os.W_OK):
        return purelib
    if site.ENABLE_USER_SITE:
        return Path(site.getusersitepackages())
    raise TitoError(f"cannot register the workspace: {purelib} is not writable",
                    "use a virtual environment (python -m venv .venv), or set PYTHONPATH to the "
                    "workspace folder yourself")


def pth_file() -> Path:
    return site_dir() / PTH_NAME


def active() -> Path | None:
    """The workspace registered with this environment, if any."""
    path = pth_file()
    if not path.exists():
        return None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            return Path(line.strip())
    return None


def activate(root: Path) -> Path | None:
    """Register `root` as the environment's workspace; returns the one it replaces (if any)."""
    from tito.state import write_atomic

    root = Path(root).resolve()
    before = active()
    target = pth_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, _HEADER + f"{root}\n")
    _kernelspec()
    return before if before != root else None


def deactivate() -> Path | None:
    """Remove the registration; returns the workspace that was active."""
    before = active()
    pth_file().unlink(missing_ok=True)
    return before


def kernel_dir() -> Path:
    base = Path(os.environ[ENV_SITE]) if os.environ.get(ENV_SITE) else Path(sys.prefix)
    return base / "share" / "jupyter" / "kernels" / KERNEL_NAME


def _kernelspec() -> None:
    """A Jupyter kernel of this environment (only where ipykernel is installed to run it)."""
    if importlib.util.find_spec("ipykernel") is None:
        return
    d = kernel_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
        spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "TinyTorch (Python 3)", "language": "python"}
        (d / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    except OSError:  # a read-only prefix: the environment's own python3 kernel still works
        pass


def describe(root: Path) -> tuple[bool, str]:
    """(is `root` the active workspace, one line saying so) - for `tito status` and doctor."""
    current = active()
    if current is None:
        return False, ("no workspace is registered with this Python: `import tinytorch` fails "
                       "outside the workspace folder; run: tito workspace activate")
    if current.resolve() == Path(root).resolve():
        return True, f"import tinytorch -> {current / 'tinytorch'}"
    return False, (f"another workspace is active ({current}); run: tito workspace activate "
                   f"{root}")
