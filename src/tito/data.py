"""Plain functions behind `tito data`: what is here, checksum verification, downloads.

The command layer (`tito.commands.data`) only prints what these return. All knowledge of files,
checksums, folders and download sources lives in `tinytorch.datasets`; this module turns it into
rows for a table and into one-line advice.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from tito.errors import TitoError

BATCHES = "cifar-10-batches-bin/"         # the verify row for ready CIFAR-10 batches


def datasets():
    """The `tinytorch.datasets` support module. It is the same file in the reference and in every
    workspace, so the copy this process has already imported is used; otherwise the reference's
    file is loaded on its own - never by importing `tinytorch`, which in a learner's process must
    stay their own package."""
    mod = sys.modules.get("tinytorch.datasets") or sys.modules.get("tito._datasets")
    if mod is None:
        import tinytorch_reference

        spec = importlib.util.spec_from_file_location(
            "tito._datasets", tinytorch_reference.package_dir() / "datasets.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod              # dataclasses look their module up while defined
        spec.loader.exec_module(mod)
    return mod


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
    official: bool           # False: a helper file of an offline copy (listed only when present)


def folders() -> list[tuple[str, str, str]]:
    """(role, value, where the setting comes from) for the data folder, the derived cache and the
    download mirror."""
    ds = datasets()
    mirror = os.environ.get("TINYTORCH_MIRROR", "").strip()
    return [(role, str(value), var if os.environ.get(var, "").strip() else "default")
            for role, value, var in [("data", ds.data_dir(), "TINYTORCH_DATA"),
                                     ("derived cache", ds.cache_dir(), "TINYTORCH_CACHE"),
                                     ("mirror", mirror or "none, official sources only",
                                      "TINYTORCH_MIRROR")]]


def _state(name: str) -> DatasetState:
    ds = datasets()
    spec = ds.resolve(name)
    files = [(fs, path, status) for fs, path, status in ds.check(name) if fs.official]
    folder = ds.data_dir() / spec.name
    if spec.name == "cifar-10":
        found = ds.locate_cifar10()
        if found:
            path, prov = found
            return DatasetState(spec.name, "ready", prov.exact, path, prov.note)
        if files[0][2] != "missing":
            return DatasetState(spec.name, "tarball here, extracted on first use",
                                files[0][2] == "ok", folder)
        if _has_jpeg_copy(folder):
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


def _has_jpeg_copy(folder: Path) -> bool:
    return all((folder / n).is_file()
               for n in ("cifar10-jpeg.tar.gz", "train_label_order.npy", "exact_subset.npz"))


def summary() -> list[DatasetState]:
    """The state of every registered data set, without loading, extracting or downloading."""
    return [_state(name) for name in datasets().REGISTRY]


def verify() -> list[FileReport]:
    """Checksum every official file (present or not) and every helper file of an offline copy
    that is present, plus a row for ready CIFAR-10 batches. A helper file that is absent is not a
    row: nothing needs it when the official files are here."""
    ds = datasets()
    rows = [FileReport(name, fs.name, path, status, fs.official)
            for name in ds.REGISTRY for fs, path, status in ds.check(name)
            if fs.official or status != "missing"]
    found = ds.locate_cifar10()
    if found:
        rows.append(FileReport("cifar-10", BATCHES, found[0],
                               "ok" if found[1].exact else "derived", True))
    return rows


def advice(rows: list[FileReport]) -> list[str]:
    """One line per thing to do after `verify()`: replace files that differ (naming the data set
    and the command), fetch data sets that are missing."""
    lines = []
    for name in dict.fromkeys(r.dataset for r in rows):
        mine = [r for r in rows if r.dataset == name]
        bad = [r for r in mine if r.status == "mismatch"]
        if [r for r in bad if r.official]:
            lines.append(f"{name}: {', '.join(r.file for r in bad if r.official)} differ from "
                         f"the official checksum; `tito data download {name} --force` replaces "
                         "them.")
        if [r for r in bad if not r.official]:
            lines.append(f"{name}: {', '.join(r.file for r in bad if not r.official)} differ from"
                         " the offline copy this project was tested on; copy them again from "
                         "where they came from (they are never downloaded).")
        missing = [r.file for r in mine if r.official and r.status == "missing"]
        if not missing or any(r.file == BATCHES and r.status == "ok" for r in mine):
            continue                               # (exact CIFAR-10 batches need no tarball)
        if any(not r.official or r.status == "derived" for r in mine):
            lines.append(f"{name}: the official {', '.join(missing)} is not here, so the lossy "
                         f"offline copy is used; `tito data download {name}` fetches it.")
        else:
            lines.append(f"{name}: {len(missing)} file(s) not here; `tito data download {name}` "
                         "fetches them (loading the data set also does).")
    return lines


def download(name: str, force: bool = False) -> str:
    """Download (or re-download with `force`) the official files of `name`; returns what happened.
    Raises TitoError, with the URLs and folder, when that cannot be done - and when files that
    differ from the official checksum are here and `force` was not given."""
    ds = datasets()
    try:
        spec = ds.resolve(name)
    except ds.DatasetError as e:
        raise TitoError(e.message, hint=e.hint) from e
    before = {fs.name: status for fs, _, status in ds.check(spec.name) if fs.official}
    try:
        ds.download(spec.name, force=force)
    except ds.DatasetError as e:
        hint = e.hint
        if spec.name == "cifar-10" and _state("cifar-10").exact is False:
            hint = (f"{hint or ''} Meanwhile load_cifar10() uses the lossy copy found here, "
                    "with a warning.").strip()
        raise TitoError(e.message, hint=hint) from e
    folder = ds.data_dir() / spec.name
    where = f"{folder} (TINYTORCH_DATA)" if os.environ.get("TINYTORCH_DATA") else str(folder)
    fetched = [n for n, status in before.items() if force or status == "missing"]
    bad = [n for n, status in before.items() if status == "mismatch" and n not in fetched]
    if bad:
        raise TitoError(f"{spec.name}: {', '.join(bad)} in {where} differ from the official "
                        "checksum (loaders use them, with a warning).",
                        hint=f"`tito data download {spec.name} --force` replaces them.")
    if fetched:
        return f"{spec.name}: downloaded and verified {', '.join(fetched)} into {where}."
    return f"{spec.name}: already present in {where}, checksums verified; nothing to download."
