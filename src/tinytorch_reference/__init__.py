"""The reference TinyTorch (the answer key), under a name a learner never types by accident.

In a learner's environment `import tinytorch` is the learner's OWN package: `tito init` registers
their workspace with the Python environment (see `tito.activation`). The complete reference that
ships with tito is installed out of the way, as `tinytorch_reference/tinytorch/`, and nothing
puts it on `sys.path` - except importing this package, which is an explicit choice:

    import tinytorch_reference as tt      # nothing happens yet (tito locates files this way)
    tt.Tensor([1, 2, 3])                  # the reference framework: first use activates it ...
    import tinytorch                      # ... and in this process from then on, `tinytorch` too

    tinytorch_reference.activate()        # the same, explicitly (the project's tests do this)

`tito milestone run --reference`, `tito dev`, instructors' tools and the project's own tests use
it this way. The reference's modules import each other as `tinytorch.<module>` (exactly as the
learner's files do), which is why the reference's folder itself is named `tinytorch`.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path


def location() -> Path:
    """The folder that holds the reference's `tinytorch/` package (what goes on sys.path)."""
    spec = importlib.util.find_spec("tinytorch_reference.tinytorch")  # located, not imported
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the reference tinytorch files are missing: reinstall tinytorch")
    return Path(list(spec.submodule_search_locations)[0]).resolve().parent


def package_dir() -> Path:
    """The reference `tinytorch/` package folder itself."""
    return location() / "tinytorch"


def activate():
    """Make `import tinytorch` mean the reference in this process; returns the package.

    Refuses (ImportError) when another `tinytorch` - a learner's - is already imported here:
    mixing the two in one process would silently test one with the other.
    """
    where = package_dir()
    loaded = sys.modules.get("tinytorch")
    if loaded is not None:
        origin = Path(getattr(loaded, "__file__", "") or "").resolve().parent
        if origin != where:
            raise ImportError(f"another tinytorch is already imported in this process ({origin}); "
                              "import tinytorch_reference before anything imports tinytorch")
        return loaded
    path = str(where.parent)
    if path in sys.path:
        sys.path.remove(path)
    sys.path.insert(0, path)
    return importlib.import_module("tinytorch")


def __getattr__(name: str):
    """tinytorch_reference.Tensor, tinytorch_reference.datasets, ...: the reference's names."""
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        return getattr(activate(), name)
    except AttributeError:
        try:
            return importlib.import_module(f"tinytorch.{name}")
        except ModuleNotFoundError:
            raise AttributeError(f"module 'tinytorch_reference' has no attribute {name!r}") from None
