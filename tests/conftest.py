"""Maintainer-test setup: the offline data sets and a deterministic hypothesis profile."""

import os
from pathlib import Path

from hypothesis import settings

# CI and these machines keep offline copies of the real data sets beside the repo.
_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
if "TINYTORCH_DATA" not in os.environ and _SHARED.is_dir():
    os.environ["TINYTORCH_DATA"] = str(_SHARED)
os.environ.setdefault("MPLBACKEND", "Agg")

settings.register_profile("tinytorch", deadline=None, derandomize=True, max_examples=40)
settings.load_profile("tinytorch")
