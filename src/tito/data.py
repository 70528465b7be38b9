"""Plain functions behind `tito data`: what is here, checksum verification, downloads.

The command layer (`tito.commands.data`) only prints what these return. All knowledge of files,
checksums and folders lives in `tinytorch.datasets`; this module turns it into rows for a table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tinytorch import datasets
from tito.errors import TitoError


@dataclass(frozen=True)
class DatasetState:
    """One row of `tito data list`."""
    name: str
    status: str              # what a loader would do with what is on disk
    exact: bool | None       # None: nothing on disk to judge
    where: Path
    note: str = ""


@dataclass(frozen=True)
class FileReport:
    """One row of `tito data verify`."""
    dataset: str
    file: str
    path: Path
    status: str              # 'ok', 'mismatch', 'missing' or 'derived'
    official: bool


def folders() -> list[tuple[str, Path, str]]:
    """(role, folder, where the setting comes from) for the data folder and the derived cache."""
    src = "TINYTORCH_DATA" if os.environ.get("TINYTORCH_DATA") else "default"
    cache = "TINYTORCH_CACHE" if os.environ.get("TINYTORCH_CACHE") else "default"
    return [("data", datasets.data_dir(), src), ("derived cache", datasets.cache_dir(), cache)]


def _state(name: str) -> DatasetState:
    spec = datasets.resolve(name)
    files = [(fs, path, status) for fs, path, status in datasets.check(name) if fs.official]
    folder = datasets.data_dir() / spec.name
    if spec.name == "cifar-10":
        found = datasets.locate_cifar10()
        if found:
            path, prov = found
            return DatasetState(spec.name, "ready", prov.exact, path, prov.note)
        if files[0][2] != "missing":
            return DatasetState(spec.name, "tarball here, extracted on first use",
                                files[0][2] == "ok", folder)
        if all((folder / n).is_file() for n in ("cifar10-jpeg.tar.gz", "train_label_order.npy",
                                                 "exact_subset.npz")):
            return DatasetState(spec.name, "JPEG copy here, rebuilt on first use (~15 s)", False,
                                folder, "lossy JPEG pixels, not the official ones")
    present = [status for _, _, status in files if status != "missing"]
    if not present:
        return DatasetState(spec.name, "missing, downloaded on first use", None, folder)
    exact = all(status == "ok" for _, _, status in files)
    bad = [fs.name for fs, _, status in files if status == "mismatch"]
    note = f"checksum differs: {', '.join(bad)}" if bad else ""
    if len(present) < len(files):
        return DatasetState(spec.name, f"{len(present)}/{len(files)} files, rest downloaded on use",
                            exact, folder, note)
    return DatasetState(spec.name, "ready", exact, folder, note)


def summary() -> list[DatasetState]:
    """The state of every registered data set, without loading, extracting or downloading."""
    return [_state(name) for name in datasets.REGISTRY]


def verify() -> list[FileReport]:
    """Checksum every registered file (present or not) plus a note for derived CIFAR batches."""
    rows = [FileReport(name, fs.name, path, status, fs.official)
            for name in datasets.REGISTRY for fs, path, status in datasets.check(name)]
    found = datasets.locate_cifar10()
    if found:
        rows.append(FileReport("cifar-10", "cifar-10-batches-bin/", found[0],
                               "ok" if found[1].exact else "derived", True))
    return rows


def download(name: str, force: bool = False) -> str:
    """Download (or re-download with `force`) the official files of `name`; returns what happened.
    Raises TitoError, with the URLs and folder, when that cannot be done."""
    try:
        spec = datasets.resolve(name)
    except datasets.DatasetError as e:
        raise TitoError(e.message, hint=e.hint) from e
    before = {fs.name: status for fs, _, status in datasets.check(spec.name) if fs.official}
    try:
        datasets.download(spec.name, force=force)
    except datasets.DatasetError as e:
        hint = e.hint
        if spec.name == "cifar-10" and _state("cifar-10").exact is False:
            hint = (f"{hint or ''} Meanwhile load_cifar10() uses the lossy copy found here, "
                    "with a warning.").strip()
        raise TitoError(e.message, hint=hint) from e
    folder = datasets.data_dir() / spec.name
    where = f"{folder} (TINYTORCH_DATA)" if os.environ.get("TINYTORCH_DATA") else str(folder)
    fetched = [n for n, status in before.items() if force or status == "missing"]
    if fetched:
        return f"{spec.name}: downloaded and verified {', '.join(fetched)} into {where}."
    bad = [n for n, status in before.items() if status == "mismatch"]
    if bad:
        return (f"{spec.name}: present in {where}, but {', '.join(bad)} differ from the official "
                f"checksum; `tito data download {spec.name} --force` replaces them.")
    return f"{spec.name}: already present in {where}, checksums verified; nothing to download."
