"""Maintainer-test setup: the reference as `tinytorch`, the offline data sets, a deterministic\nhypothesis profile."""

import os
import tempfile
from pathlib import Path

if os.environ.get("PYTEST_XDIST_WORKER"):  # `pytest -n 2`: one core per worker, so BLAS gets one
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # thread (set before numpy is imported)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

from hypothesis import settings

import tinytorch_reference

tinytorch_reference.activate()  # in these tests `import tinytorch` is the reference

# CI and these machines keep offline copies of the real data sets beside the repo.
_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
if "TINYTORCH_DATA" not in os.environ and _SHARED.is_dir():
    os.environ["TINYTORCH_DATA"] = str(_SHARED)
os.environ.setdefault("MPLBACKEND", "Agg")
# `tito init` registers each workspace it makes with the Python environment (a .pth file in
# site-packages): in the tests it goes to a scratch folder, leaving the environment alone.
os.environ["TITO_SITE_DIR"] = tempfile.mkdtemp(prefix="tito-site-")

settings.register_profile("tinytorch", deadline=None, derandomize=True, max_examples=40)
settings.load_profile("tinytorch")
