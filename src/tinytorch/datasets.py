"""Real data sets: MNIST, Fashion-MNIST, CIFAR-10 and Tiny Shakespeare.

Support file, not a learner module: NumPy and the standard library only (Pillow, imported lazily,
for the offline CIFAR-10 rebuild). Every loader returns the data *and* says where it came from:

    x, y = load_mnist("train")                 # uint8 (60000, 28, 28), int64 (60000,)
    load_mnist("train").provenance.exact       # True when every file matched its official checksum
    last_provenance("mnist").note              # the same record, for the last load of that data set

Where files live
    `data_dir()`: $TINYTORCH_DATA, else <user cache>/tinytorch/data. One folder per data set, with
    the official file names: mnist/train-images-idx3-ubyte.gz ..., fashion-mnist/...,
    tinyshakespeare/input.txt, cifar-10/cifar-10-binary.tar.gz (or its extracted
    cifar-10-batches-bin/). It may be a read-only shared copy: nothing is ever written there
    except by a download into a writable folder.
    `cache_dir()`: $TINYTORCH_CACHE, else <user cache>/tinytorch/derived. Everything derived goes
    here: decoded arrays (.npz, so a second MNIST load takes milliseconds), CIFAR-10 extracted
    from a read-only tarball, and CIFAR-10 rebuilt from a JPEG copy.

Downloads
    A missing file is downloaded from each source in turn - $TINYTORCH_MIRROR first when it is
    set, then the official URLs - into a temp file, checksum verified, then `os.replace`.
    TINYTORCH_MIRROR is a base URL laid out like the data folder, e.g. with
    TINYTORCH_MIRROR=http://host:8000/ the file is http://host:8000/mnist/train-images-idx3-ubyte.gz
    (`python -m http.server 8000` run inside any complete data folder is such a mirror). Bytes that
    fail the checksum are never kept, whoever served them. Connecting may take CONNECT_TIMEOUT
    seconds and every read READ_TIMEOUT; once SILENCE_LIMIT seconds have gone on sources that did
    not deliver a file, the rest are not tried, so a network that never answers fails in about
    20 s with one DatasetError naming the file, the URLs tried and how to get the data by hand.

Integrity
    A present file whose checksum differs from the official one is used, but with a
    `DatasetWarning` and `provenance.exact = False`. An unreadable file raises `DatasetError`
    naming the file and the fix. Archives are never unpickled (unpickling runs code).

CIFAR-10 without the official tarball
    Machines without network may hold only a lossy JPEG export (cifar-10/cifar10-jpeg.tar.gz with
    train_label_order.npy and exact_subset.npz). The data folder sometimes ships a script that
    rebuilds binary batches from it; we deliberately do NOT run it: executing a script found next
    to downloaded data is the same hazard as unpickling. Instead `_rebuild_from_jpeg` below does the
    same job in ~60 lines (training images put back in official label order, the first 1,000 test
    images in official order, the rest round-robin by class), writes the batches plus a NOTICE into
    the cache, and every load of them warns that the pixels are lossy.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.request
import uuid
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["DatasetError", "DatasetWarning", "Provenance", "REGISTRY", "CIFAR10_CLASSES",
           "data_dir", "cache_dir", "resolve", "check", "sources", "download", "locate_cifar10",
           "load_mnist", "load_fashion_mnist", "load_cifar10", "load_cifar10_exact_test",
           "load_shakespeare", "last_provenance"]


class DatasetError(Exception):
    """A data set cannot be had: missing offline, corrupt, unknown name. `message` is one line;
    `hint` (optional) says how to fix it. str() holds both."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message if hint is None else f"{message}\n{hint}")
        self.message, self.hint = message, hint


class DatasetWarning(UserWarning):
    """Data that is usable but not the exact official bytes."""


# ------------------------------------------------------------------------------------ registry
@dataclass(frozen=True)
class FileSpec:
    name: str                  # file name inside the data set's folder
    sha256: str | None = None
    md5: str | None = None     # used only where no official sha256 is known
    official: bool = True      # False: a helper file of an offline copy, never downloaded


@dataclass(frozen=True)
class DatasetSpec:
    name: str                  # also the folder name under data_dir()
    about: str
    files: tuple[FileSpec, ...]
    urls: tuple[str, ...]      # base URLs, official source and mirrors, tried in order


def _idx_files(sums: list[str]) -> tuple[FileSpec, ...]:
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    return tuple(FileSpec(n, sha256=s) for n, s in zip(names, sums))


REGISTRY: dict[str, DatasetSpec] = {spec.name: spec for spec in [
    DatasetSpec("mnist", "handwritten digits, 60k/10k 28x28 grey (LeCun & Cortes, CC BY-SA 3.0)",
                _idx_files(["440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"]),
                ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/",
                 "http://yann.lecun.com/exdb/mnist/")),
    DatasetSpec("fashion-mnist", "clothing, 60k/10k 28x28 grey (Zalando, MIT)",
                _idx_files(["3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"]),
                ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)),
    DatasetSpec("cifar-10", "tiny colour images, 50k/10k 32x32x3, 10 classes (Krizhevsky)",
                (FileSpec("cifar-10-binary.tar.gz", md5="c32a1d4ab5d03f1284b67883e8d87530"),
                 # helper files of the offline copy (checksums of the copies this project tests on)
                 FileSpec("cifar10-jpeg.tar.gz", official=False, sha256=(
                     "0bfcb68717a0ecb0d51ed61034906a773d48d424d94b766a46d7d1c55702a4d9")),
                 FileSpec("exact_subset.npz", official=False, sha256=(
                     "5e81f99fe5af185b32d0cb5efbf72c956a858f8e684fdfba6995f9e197878f5c")),
                 FileSpec("train_label_order.npy", official=False, sha256=(
                     "fad921ba16b0efeebb54393d1351545d1fe1a357f6f81324c821e3e11b956c70"))),
                ("https://www.cs.toronto.edu/~kriz/",)),
    DatasetSpec("tinyshakespeare", "1.1 MB of Shakespeare plays, for character models",
                (FileSpec("input.txt", sha256=(
                    "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed")),),
                ("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
                 "tinyshakespeare/",)),
]}
_ALIASES = {"fashion": "fashion-mnist", "fashionmnist": "fashion-mnist", "cifar": "cifar-10",
            "cifar10": "cifar-10", "shakespeare": "tinyshakespeare",
            "tiny-shakespeare": "tinyshakespeare"}

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
_CIFAR_TARBALL, _CIFAR_DIR = "cifar-10-binary.tar.gz", "cifar-10-batches-bin"
_MARKER = ".provenance.json"       # written next to batches we extracted or rebuilt
_CIFAR_BATCHES = tuple(f"data_batch_{i}.bin" for i in range(1, 6)) + ("test_batch.bin",)
_RECORD = 1 + 3 * 32 * 32          # one label byte, then the R, G and B planes


@dataclass(frozen=True)
class Provenance:
    """Where loaded data came from: `exact` is True only for verified official bytes."""
    name: str
    exact: bool
    note: str
    path: Path


class Loaded(tuple):
    """(images, labels) that also carries `.provenance`; unpacks like a plain pair."""

    def __new__(cls, images: np.ndarray, labels: np.ndarray, provenance: Provenance):
        pair = super().__new__(cls, (images, labels))
        pair.provenance = provenance
        return pair

    def __getnewargs__(self):           # keeps pickling (e.g. to worker processes) working
        return (*self, self.provenance)


_LAST: dict[str, Provenance] = {}


def last_provenance(name: str) -> Provenance | None:
    """The provenance of the last load of data set `name` in this process (None if not loaded)."""
    return _LAST.get(resolve(name).name)


def _record(prov: Provenance) -> Provenance:
    """Remember `prov` for last_provenance(), and warn if the data is not the exact official."""
    _LAST[prov.name] = prov
    if not prov.exact:
        level, frame = 1, sys._getframe(0)      # point the warning at the caller's code
        while frame is not None and frame.f_code.co_filename == __file__:
            level, frame = level + 1, frame.f_back
        warnings.warn(f"{prov.name}: not the exact official data ({prov.note}); label any "
                      "results computed on it as such.", DatasetWarning, stacklevel=level)
    return prov


# -------------------------------------------------------------------------- folders and checks
def _env_or_user_cache(variable: str, sub: str) -> Path:
    if os.environ.get(variable):
        return Path(os.environ[variable]).expanduser()
    import platformdirs
    return Path(platformdirs.user_cache_dir("tinytorch")) / sub


def data_dir() -> Path:
    """The folder holding the official files: $TINYTORCH_DATA, else <user cache>/tinytorch/data."""
    return _env_or_user_cache("TINYTORCH_DATA", "data")


def cache_dir() -> Path:
    """Writable folder for derived files: $TINYTORCH_CACHE, else <user cache>/tinytorch/derived."""
    return _env_or_user_cache("TINYTORCH_CACHE", "derived")


def resolve(name: str) -> DatasetSpec:
    """The registry entry for `name` (aliases such as 'cifar10' or 'shakespeare' accepted)."""
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in REGISTRY:
        raise DatasetError(f"unknown data set {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[key]


_DIGESTS: dict[tuple, str] = {}


def _digest(path: Path, algo: str) -> str:
    """Hex digest of a file, memoised per (path, size, mtime) for this process."""
    st = path.stat()
    key = (str(path.resolve()), algo, st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.new(algo)
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def _matches(path: Path, fs: FileSpec) -> bool:
    return _digest(path, "sha256") == fs.sha256 if fs.sha256 else _digest(path, "md5") == fs.md5


def check(name: str) -> list[tuple[FileSpec, Path, str]]:
    """Every registered file of `name` with its path and status: 'ok', 'mismatch' or 'missing'."""
    spec = resolve(name)
    folder = data_dir() / spec.name
    out = []
    for fs in spec.files:
        path = folder / fs.name
        status = "missing" if not path.is_file() else "ok" if _matches(path, fs) else "mismatch"
        out.append((fs, path, status))
    return out


def _verdict(spec: DatasetSpec, paths: list[Path]) -> tuple[bool, str]:
    """(exact, note) for files of `spec`: exact only when every checksum matches."""
    by_name = {fs.name: fs for fs in spec.files}
    bad = [p.name for p in paths if not _matches(p, by_name[p.name])]
    if bad:
        return False, f"checksum differs from the official: {', '.join(bad)} in {paths[0].parent}"
    return True, f"official files, checksums verified ({paths[0].parent})"


# ------------------------------------------------------------------------------------ download
MIRROR_VARIABLE = "TINYTORCH_MIRROR"
CONNECT_TIMEOUT = 10.0     # seconds to open a connection to one source
READ_TIMEOUT = 20.0        # seconds any one read may wait, the first answer included
SILENCE_LIMIT = 20.0       # seconds spent on sources that failed, per file, before giving up


def sources(name: str) -> list[str]:
    """Base URLs that downloads of `name` try, in order: $TINYTORCH_MIRROR/<name>/ when set (a
    base URL laid out like the data folder), then the official source and its mirrors."""
    spec = resolve(name)
    mirror = os.environ.get(MIRROR_VARIABLE, "").strip()
    if not mirror:
        return list(spec.urls)
    if not mirror.startswith(("http://", "https://", "file://")):
        raise DatasetError(f"{MIRROR_VARIABLE}={mirror!r} is not a base URL.",
                           f"Set it to e.g. http://host:8000/ (serving {spec.name}/"
                           f"{spec.files[0].name} there), or unset it.")
    return [f"{mirror.rstrip('/')}/{spec.name}/", *spec.urls]


def _read_timeout(connection: type) -> type:
    """`connection` whose connect is bounded by urlopen's timeout and every later read by
    READ_TIMEOUT (urllib alone has one timeout for both)."""
    class Connection(connection):
        def connect(self):
            super().connect()
            self.sock.settimeout(READ_TIMEOUT)
    return Connection


class _HTTPHandler(urllib.request.HTTPHandler):
    def do_open(self, http_class, req, **kwargs):
        return super().do_open(_read_timeout(http_class), req, **kwargs)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def do_open(self, http_class, req, **kwargs):
        return super().do_open(_read_timeout(http_class), req, **kwargs)


def _urlopen(url: str, timeout: float):
    """urlopen, with READ_TIMEOUT on every read; proxies ($https_proxy, ...) and file:// URLs work
    as usual. Tests replace it."""
    return urllib.request.build_opener(_HTTPHandler, _HTTPSHandler).open(url, timeout=timeout)


def _writable(folder: Path) -> bool:
    """Can we add files to `folder` (creating it)? A folder without its owner's write bit counts
    as read-only even for root, so a shared read-only copy is never written to."""
    def ok(path: Path) -> bool:
        return os.access(path, os.W_OK) and bool(path.stat().st_mode & 0o200)

    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not ok(existing):                   # check before creating anything
        return False
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return ok(folder)


def _sibling(dest: Path) -> Path:
    """A fresh temporary name next to `dest`, so the final os.replace is atomic."""
    return dest.with_name(f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part")


def _fetch(url: str, dest: Path, fs: FileSpec, progress: bool) -> None:
    """Stream `url` into a temp file next to `dest`, verify its checksum, then move it in place."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    tmp = _sibling(dest)
    try:
        with _urlopen(url, timeout=CONNECT_TIMEOUT) as resp, open(tmp, "xb") as f, Progress(
                TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                TransferSpeedColumn(), console=Console(stderr=True), disable=not progress) as bar:
            size = int(getattr(resp, "headers", {}).get("Content-Length") or 0) or None
            task = bar.add_task(f"downloading {dest.name}", total=size)
            while chunk := resp.read(1 << 20):
                f.write(chunk)
                bar.advance(task, len(chunk))
        if not _matches(tmp, fs):
            raise DatasetError(f"the {tmp.stat().st_size:,} bytes received do not match the "
                               "official checksum")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _why(e: Exception, seconds: float) -> str:
    """A few words on why one source failed."""
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    cause = e.reason if isinstance(e, urllib.error.URLError) else e
    if isinstance(cause, TimeoutError):                  # socket.timeout is TimeoutError
        return f"no answer, timed out after {seconds:.3g} s"
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(cause, (str, DatasetError)):
        return str(cause)
    return f"{type(cause).__name__}: {cause}"


def _fetch_first(bases: list[str], dest: Path, fs: FileSpec, progress: bool) -> list[str]:
    """Fetch `dest` from the first of `bases` that delivers it. Returns [] on success, else one
    entry per URL: what went wrong there, or that it was not tried (SILENCE_LIMIT reached)."""
    failures, spent = [], 0.0
    for i, base in enumerate(bases):
        if spent >= SILENCE_LIMIT:
            failures.append(f"not tried after {spent:.3g} s without the file: "
                            + ", ".join(b + dest.name for b in bases[i:]))
            break
        start = time.monotonic()
        try:
            _fetch(base + dest.name, dest, fs, progress)
            return []
        except Exception as e:  # noqa: BLE001 - any failure means: try the next source
            seconds = time.monotonic() - start
            spent += seconds
            failures.append(f"{base + dest.name}: {_why(e, seconds)}")
    return failures


def _ensure_local(spec: DatasetSpec, names: list[str], progress: bool = True,
                  force: bool = False) -> list[Path]:
    """Paths of `names` in data_dir()/spec.name, downloading any that are missing (or all, if
    `force`). Raises one DatasetError that says where to get them when that is impossible."""
    folder = data_dir() / spec.name
    paths = [folder / n for n in names]
    todo = [p for p in paths if force or not p.is_file()]
    if not todo:
        return paths
    by_name = {fs.name: fs for fs in spec.files}
    if not _writable(folder):
        reason = f"{folder} is not writable"
    else:
        bases = sources(spec.name)
        for path in todo:
            failures = _fetch_first(bases, path, by_name[path.name], progress)
            if failures:
                reason = "; ".join(failures)
                break
        else:
            return paths
    missing = [p.name for p in todo if force or not p.is_file()]
    urls = ", ".join(spec.urls[0] + n for n in missing)
    mirrors = f" (mirrors: {', '.join(spec.urls[1:])})" if len(spec.urls) > 1 else ""
    raise DatasetError(
        f"{spec.name}: cannot get {', '.join(missing)} ({reason}).",
        f"Download {urls}{mirrors} by hand and put the files, with exactly these names, in "
        f"{folder}/ - or set TINYTORCH_DATA to a folder that has {spec.name}/ with them, or "
        f"{MIRROR_VARIABLE} to a base URL that serves {spec.name}/<file>.")


def download(name: str, force: bool = False, progress: bool = True) -> list[Path]:
    """Make every official file of `name` present in data_dir() (verified); returns their paths.
    For CIFAR-10 also extract the batches. Files already present are kept unless `force`."""
    spec = resolve(name)
    paths = _ensure_local(spec, [fs.name for fs in spec.files if fs.official], progress, force)
    if spec.name == "cifar-10":
        _cifar_batches(fetch=False, refresh=force)
    return paths


# ---------------------------------------------------------------------------- MNIST-like (idx)
def _gunzip(path: Path, name: str) -> bytes:
    try:
        return gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as e:
        raise DatasetError(f"{path} is corrupt ({type(e).__name__}: {e}).",
                           f"Delete it and run `tito data download {name}` to fetch it again."
                           ) from e


def _parse_idx(raw: bytes, path: Path, ndim: int) -> np.ndarray:
    """An idx array: magic 0x0000 08 <ndim>, ndim big-endian uint32 sizes, then uint8 data."""
    if len(raw) < 4 + 4 * ndim or raw[:3] != b"\x00\x00\x08" or raw[3] != ndim:
        raise DatasetError(f"{path} is not an idx file of {ndim} dimension(s) (bad magic number).")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    header = 4 + 4 * ndim
    if len(raw) - header != int(np.prod(dims)):
        raise DatasetError(f"{path} is corrupt: header says {dims}, data holds {len(raw) - header} "
                           "bytes.", "Delete it and download it again (`tito data download`).")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims).copy()


def _decoded(tag: str, sources: list[Path], build, keys: set[str]) -> dict[str, np.ndarray]:
    """build()'s arrays, memoised as an .npz in cache_dir() keyed by the sources' size and mtime."""
    stamp = "|".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sources)
    path = cache_dir() / "decoded" / f"{tag}-{hashlib.sha1(stamp.encode()).hexdigest()[:16]}.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            if keys <= set(z.files):
                return {k: z[k] for k in keys}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):  # absent or damaged
        pass
    arrays = build()
    tmp = _sibling(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "xb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError:                            # a read-only cache only costs speed
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return arrays


def _load_idx(name: str, split: str) -> Loaded:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    spec = REGISTRY[name]
    prefix = "train" if split == "train" else "t10k"
    paths = _ensure_local(spec, [f"{prefix}-{kind}-idx{k}-ubyte.gz"
                                 for kind, k in (("images", 3), ("labels", 1))])

    def build() -> dict[str, np.ndarray]:
        exact, note = _verdict(spec, paths)
        images = _parse_idx(_gunzip(paths[0], name), paths[0], 3)     # (N, 28, 28)
        labels = _parse_idx(_gunzip(paths[1], name), paths[1], 1)     # (N,)
        if images.shape[1:] != (28, 28) or len(images) != len(labels) or labels.max() > 9:
            raise DatasetError(f"{paths[0].parent}: images {images.shape} and labels "
                               f"{labels.shape} do not form a {name} split.")
        return {"images": images, "labels": labels.astype(np.int64),
                "exact": np.array(exact), "note": np.array(note)}

    arrays = _decoded(f"{name}-{split}", paths, build, {"images", "labels", "exact", "note"})
    prov = _record(Provenance(name, bool(arrays["exact"]), str(arrays["note"]), paths[0].parent))
    return Loaded(arrays["images"], arrays["labels"], prov)


def load_mnist(split: str = "train") -> Loaded:
    """MNIST digits: (images uint8 (N, 28, 28), labels int64 (N,)), N = 60000 or 10000.
    Read from $TINYTORCH_DATA/mnist/; missing files are downloaded from $TINYTORCH_MIRROR/mnist/
    when that is set, then from the official sources (see `sources`)."""
    return _load_idx("mnist", split)


def load_fashion_mnist(split: str = "train") -> Loaded:
    """Fashion-MNIST: (images uint8 (N, 28, 28), labels int64 (N,)), N = 60000 or 10000.
    Read from $TINYTORCH_DATA/fashion-mnist/; missing files are downloaded from
    $TINYTORCH_MIRROR/fashion-mnist/ when that is set, then from the official source."""
    return _load_idx("fashion-mnist", split)


def load_shakespeare() -> str:
    """Tiny Shakespeare as one string (1,115,394 characters); see last_provenance('shakespeare').
    Read from $TINYTORCH_DATA/tinyshakespeare/input.txt; if missing, downloaded from
    $TINYTORCH_MIRROR/tinyshakespeare/ when that is set, then from the official source."""
    spec = REGISTRY["tinyshakespeare"]
    paths = _ensure_local(spec, ["input.txt"])
    _record(Provenance(spec.name, *_verdict(spec, paths), paths[0]))
    return paths[0].read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------- CIFAR-10
def locate_cifar10() -> tuple[Path, Provenance] | None:
    """Ready CIFAR-10 batches and their provenance, best first: in data_dir(), extracted into the
    cache, rebuilt from JPEG in the cache. None if there are none. No side effects."""
    cache = cache_dir()
    for folder in (data_dir() / "cifar-10", cache / "cifar-10", cache / "cifar-10-jpeg"):
        d = folder / _CIFAR_DIR
        if all((d / f).is_file() for f in _CIFAR_BATCHES):
            if (d / _MARKER).is_file():
                info = json.loads((d / _MARKER).read_text())
                return d, Provenance("cifar-10", bool(info["exact"]), str(info["note"]), d)
            if (d / "NOTICE").is_file():
                note = (d / "NOTICE").read_text().splitlines()[0]
                return d, Provenance("cifar-10", False, f"{note} ({d})", d)
            return d, Provenance("cifar-10", False, f"batches in {d} were not extracted from a "
                                 f"verified {_CIFAR_TARBALL}; cannot vouch for them", d)
    return None


def _install_dir(tmp: Path, final: Path, exact: bool, note: str) -> None:
    """Finish a freshly written batches folder: provenance marker, then one atomic rename."""
    (tmp / _MARKER).write_text(json.dumps({"exact": exact, "note": note}))
    old = _sibling(final)
    if final.exists():
        os.replace(final, old)         # a folder cannot be replaced while it has files: swap
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def _extract(tarball: Path, exact: bool, note: str) -> None:
    """Extract only the expected batch files (no paths taken from the archive) next to the tarball,
    or into the cache when that folder is read-only."""
    root = tarball.parent if _writable(tarball.parent) else cache_dir() / "cifar-10"
    root.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(root / _CIFAR_DIR)
    tmp.mkdir()
    wanted = {f"{_CIFAR_DIR}/{n}" for n in (*_CIFAR_BATCHES, "batches.meta.txt", "readme.html")}
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            for member in tar:
                if member.isfile() and member.name in wanted:
                    (tmp / Path(member.name).name).write_bytes(tar.extractfile(member).read())
        if not all((tmp / f).is_file() for f in _CIFAR_BATCHES):
            raise tarfile.ReadError("some data_batch_*.bin / test_batch.bin are missing")
        _install_dir(tmp, root / _CIFAR_DIR, exact, note)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DatasetError(f"cannot extract {tarball} ({type(e).__name__}: {e}).",
                           "If it is corrupt, delete it and run `tito data download cifar-10`."
                           ) from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _arrange(per_class: list[np.ndarray], head: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lay images out so the labels follow `head`, then the leftovers one class at a time in turn.
    The k-th image of a class (in file-name order) goes to that class's k-th position."""
    left = [len(imgs) - int((head == c).sum()) for c, imgs in enumerate(per_class)]
    if min(left) < 0:
        raise DatasetError("the JPEG copy of CIFAR-10 lacks images that its label order needs.")
    tail = [c for r in range(max(left)) for c in range(10) if r < left[c]]
    labels = np.concatenate([head, tail]).astype(np.uint8)
    images = np.empty((len(labels), 32, 32, 3), np.uint8)
    for c, imgs in enumerate(per_class):
        images[labels == c] = imgs
    return labels, images


def _rebuild_from_jpeg(src: Path) -> None:
    """Write lossy CIFAR-10 binary batches from src/cifar10-jpeg.tar.gz into the cache (~15 s)."""
    try:
        from PIL import Image
    except ImportError as e:
        raise DatasetError("rebuilding CIFAR-10 from its JPEG copy needs Pillow, not installed.",
                           "pip install pillow   (or: pip install 'tinytorch[dev]')") from e
    jpegs: dict[tuple[str, int], list[tuple[str, bytes]]] = {}
    with tarfile.open(src / "cifar10-jpeg.tar.gz", "r:gz") as tar:
        for m in tar:                                  # in archive order: gzip cannot seek back
            parts = m.name.split("/")
            if m.isfile() and m.name.endswith(".jpg") and parts[-2] in CIFAR10_CLASSES:
                key = (parts[-3], CIFAR10_CLASSES.index(parts[-2]))
                jpegs.setdefault(key, []).append((parts[-1], tar.extractfile(m).read()))

    def decode(split: str) -> list[np.ndarray]:
        return [np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB"))
                          for _, b in sorted(jpegs.get((split, c), []))]) for c in range(10)]

    train_order = np.load(src / "train_label_order.npy", allow_pickle=False)
    with np.load(src / "exact_subset.npz", allow_pickle=False) as z:
        test_head = z["y_test"]
    splits = {"train": _arrange(decode("train"), train_order),
              "test": _arrange(decode("test"), test_head)}
    if len(splits["train"][0]) != 50000 or len(splits["test"][0]) != 10000:
        raise DatasetError(f"{src / 'cifar10-jpeg.tar.gz'} does not hold 50,000 + 10,000 images.")
    root = cache_dir() / "cifar-10-jpeg"
    root.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(root / _CIFAR_DIR)
    tmp.mkdir()
    try:
        for split, (labels, images) in splits.items():
            planes = images.transpose(0, 3, 1, 2).reshape(len(labels), -1)     # (N, 3072) R, G, B
            records = np.concatenate([labels[:, None], planes], axis=1)        # (N, 3073)
            names = _CIFAR_BATCHES[:5] if split == "train" else _CIFAR_BATCHES[5:]
            for i, fname in enumerate(names):
                (tmp / fname).write_bytes(records[i * 10000:(i + 1) * 10000].tobytes())
        (tmp / "batches.meta.txt").write_text("\n".join(CIFAR10_CLASSES) + "\n\n")
        note = "rebuilt from a lossy JPEG (quality 75) copy, not the official pixels"
        (tmp / "NOTICE").write_text(f"{note}; label order matches the official release.\n")
        _install_dir(tmp, root / _CIFAR_DIR, False, f"{note} ({src / 'cifar10-jpeg.tar.gz'})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _cifar_batches(fetch: bool = True, refresh: bool = False) -> tuple[Path, Provenance] | None:
    """Ready CIFAR-10 batches, made if need be. The official tarball, when present, beats a copy
    rebuilt from JPEG and is (re-)extracted if `refresh`; without it and with `fetch`, rebuild from
    a local JPEG copy if there is one, else download the tarball."""
    found = locate_cifar10()
    rebuilt = found is not None and found[0].parent.name == "cifar-10-jpeg"
    if found and not rebuilt and not refresh:
        return found
    spec, src = REGISTRY["cifar-10"], data_dir() / "cifar-10"
    tarball = src / _CIFAR_TARBALL
    if not tarball.is_file():
        if found or not fetch:
            return found
        if all((src / n).is_file() for n in ("cifar10-jpeg.tar.gz", "exact_subset.npz",
                                             "train_label_order.npy")):
            _rebuild_from_jpeg(src)
            return locate_cifar10()
        _ensure_local(spec, [_CIFAR_TARBALL])
    _extract(tarball, *_verdict(spec, [tarball]))
    return locate_cifar10()


def load_cifar10(split: str = "train") -> Loaded:
    """CIFAR-10: (images uint8 (N, 32, 32, 3) HWC, labels int64 (N,)), N = 50000 or 10000.
    Read from the official binary batches (never a pickle); see `.provenance` for exactness.
    Without batches or a JPEG copy in $TINYTORCH_DATA/cifar-10/, cifar-10-binary.tar.gz is
    downloaded from $TINYTORCH_MIRROR/cifar-10/ when that is set, then from the official source."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    folder, prov = _cifar_batches()
    names = _CIFAR_BATCHES[:5] if split == "train" else _CIFAR_BATCHES[5:]
    records = np.empty((10000 * len(names), _RECORD), np.uint8)                # (N, 3073)
    for i, n in enumerate(names):
        size = (folder / n).stat().st_size
        if size != 10000 * _RECORD:
            raise DatasetError(f"{folder / n} is corrupt ({size} bytes, expected "
                               f"{10000 * _RECORD}).", f"Delete {folder} and load it again.")
        with open(folder / n, "rb") as f:
            f.readinto(memoryview(records[i * 10000:(i + 1) * 10000]).cast("B"))
    labels = records[:, 0].astype(np.int64)
    planes = records[:, 1:].reshape(-1, 3, 32, 32)                           # (N, C, H, W)
    images = np.empty((len(records), 32, 32, 3), np.uint8)                    # (N, H, W, C)
    for c in range(3):                  # one channel at a time: 2x faster than one transpose
        images[..., c] = planes[:, c]
    if labels.max() > 9:
        raise DatasetError(f"{folder} holds labels above 9: not CIFAR-10 batches.")
    return Loaded(images, labels, _record(prov))


def load_cifar10_exact_test() -> Loaded | None:
    """Exact official CIFAR-10 test images: the first 1,000 from cifar-10/exact_subset.npz when that
    file is present, else the whole official test set if an exact copy is at hand, else None."""
    spec, subset = REGISTRY["cifar-10"], data_dir() / "cifar-10" / "exact_subset.npz"
    if subset.is_file():
        exact, note = _verdict(spec, [subset])
        with np.load(subset, allow_pickle=False) as z:
            images, labels = z["x_test"], z["y_test"].astype(np.int64)
        note = "1,000 exact official test images (exact_subset.npz)" if exact else note
        return Loaded(images, labels, _record(Provenance("cifar-10", exact, note, subset)))
    found = _cifar_batches(fetch=False)
    return load_cifar10("test") if found and found[1].exact else None
