"""Data-set loaders, integrity checks, downloads and `tito data`.

The network is never touched. Every test runs with `datasets._urlopen` replaced: by one that
refuses (offline), by a fake that serves bytes from the local copies, or by the real opener
restricted to servers these tests start on 127.0.0.1 (each one bounded: it stops by itself).

The local copies are $TINYTORCH_DATA (tests/conftest.py points it at ../shared/datasets when that
exists), else the user cache that downloads fill. A test that needs a data set skips, saying which, when the copy lacks it: with no data
and no network every test here passes or skips. The CIFAR-10 rebuild from JPEG (~15 s) happens
once per session, into a session cache.
"""

from __future__ import annotations

import contextlib
import email.message
import gzip
import hashlib
import http.server
import io
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.response
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers_course import run_cli
from typer.testing import CliRunner

from tinytorch import datasets
from tinytorch.datasets import DatasetError, DatasetWarning

DATA = datasets.data_dir()       # $TINYTORCH_DATA (set by tests/conftest.py), else the user cache
REAL_URLOPEN = datasets._urlopen              # before any test replaces it
PROXIES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def _needs(name: str, files: list[str] | None = None):
    """Skip unless DATA holds `files` (default: the official files) of data set `name`."""
    files = files or [fs.name for fs in datasets.REGISTRY[name].files if fs.official]
    missing = [f for f in files if not (DATA / name / f).is_file()]
    more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
    return pytest.mark.skipif(bool(missing), reason=(
        f"{name} not in {DATA / name} ({missing[0] if missing else ''}{more} missing): set "
        f"TINYTORCH_DATA to a folder holding {name}/ - these tests never download"))


NEEDS_MNIST = _needs("mnist")
NEEDS_FASHION = _needs("fashion-mnist")
NEEDS_SHAKESPEARE = _needs("tinyshakespeare")
NEEDS_CIFAR_JPEG = _needs("cifar-10", ["cifar10-jpeg.tar.gz", "exact_subset.npz",
                                       "train_label_order.npy"])
NEEDS = {"mnist": NEEDS_MNIST, "fashion-mnist": NEEDS_FASHION,
         "tinyshakespeare": NEEDS_SHAKESPEARE}


def _offline(url, timeout=None):
    raise urllib.error.URLError("network disabled in tests")


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tinytorch-cache")


@pytest.fixture(autouse=True)
def env(monkeypatch, session_cache):
    """The local copy as the data folder, a session cache, no mirror and no network."""
    monkeypatch.setenv("TINYTORCH_DATA", str(DATA))
    monkeypatch.setenv("TINYTORCH_CACHE", str(session_cache))
    monkeypatch.delenv("TINYTORCH_MIRROR", raising=False)
    monkeypatch.setattr(datasets, "_urlopen", _offline)


@pytest.fixture(scope="session")
def cifar(session_cache):
    """Load CIFAR-10 once (rebuilding it from the JPEG copy): (train, test, warnings seen)."""
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        mp.setenv("TINYTORCH_DATA", str(DATA))
        mp.setenv("TINYTORCH_CACHE", str(session_cache))
        mp.setattr(datasets, "_urlopen", _offline)
        train, test = datasets.load_cifar10("train"), datasets.load_cifar10("test")
    return train, test, [w for w in seen if issubclass(w.category, DatasetWarning)]


def _copy_of(name: str, dest: Path) -> Path:
    """A writable copy of one data set's folder under `dest`; returns the folder."""
    shutil.copytree(DATA / name, dest / name)
    return dest / name


def _fake_opener(calls: list[str], fail_first: bool = True, corrupt: bool = False):
    """An urlopen that serves the local copy of the file named at the end of the URL (or, with
    `corrupt`, bytes that are not it)."""
    def opener(url, timeout=None):
        calls.append(url)
        if fail_first and len(calls) % 2 == 1:
            raise urllib.error.URLError("first mirror down")
        name = url.rsplit("/", 1)[1]
        data = b"not the official bytes" if corrupt else next(DATA.glob(f"*/{name}")).read_bytes()
        headers = email.message.Message()
        headers["Content-Length"] = str(len(data))
        return urllib.response.addinfourl(io.BytesIO(data), headers, url)
    return opener


# ------------------------------------------------------------------- local servers (127.0.0.1)
@pytest.fixture
def loopback(monkeypatch) -> list[str]:
    """Real downloads, but only from 127.0.0.1 (no proxy): any other URL fails at once, as
    offline. Returns the list of URLs asked for."""
    for var in PROXIES:
        monkeypatch.delenv(var, raising=False)
    asked: list[str] = []

    def opener(url, timeout=None):
        asked.append(url)
        if urllib.parse.urlsplit(url).hostname != "127.0.0.1":
            raise urllib.error.URLError("network disabled in tests")
        return REAL_URLOPEN(url, timeout=timeout)

    monkeypatch.setattr(datasets, "_urlopen", opener)
    return asked


@contextlib.contextmanager
def http_server(files: dict[str, bytes]):
    """An HTTP server on 127.0.0.1 serving `files` ({path: bytes}), 404 for any other path.
    Yields (base URL, paths requested); shut down on exit."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the name http.server calls
            seen.append(self.path)
            if self.path not in files:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(files[self.path])))
            self.end_headers()
            self.wfile.write(files[self.path])

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def silent_server(lifetime: float = 15.0):
    """Accepts connections on 127.0.0.1 and never answers; stops by itself after `lifetime` s.
    Yields (base URL, connections accepted)."""
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(0.05)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve():
        end = time.monotonic() + lifetime
        while not stop.is_set() and time.monotonic() < end:
            with contextlib.suppress(OSError):            # accept timed out: look again
                held.append(srv.accept()[0])
        for conn in held:
            conn.close()
        srv.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}", held
    finally:
        stop.set()
        thread.join(5)


@contextlib.contextmanager
def full_listen_queue():
    """A 127.0.0.1 port whose listen queue is full and never accepted from, so connecting hangs:
    a network that drops packets. Yields its base URL."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    addr, fillers = srv.getsockname(), []
    try:
        for _ in range(8):
            fillers.append(socket.socket())
            fillers[-1].settimeout(0.3)
            try:
                fillers[-1].connect(addr)
            except TimeoutError:
                break                                      # the queue is full: connects hang
        else:
            pytest.skip("this system accepts connections beyond a full listen queue")
        yield f"http://127.0.0.1:{addr[1]}"
    finally:
        for s in (*fillers, srv):
            s.close()


def _refusing_url() -> str:
    """A 127.0.0.1 port nobody listens on: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


TOY = b"tinytorch test bytes\n" * 1000


def _toy(monkeypatch, *urls: str) -> datasets.DatasetSpec:
    """Register a one-file data set 'toy' (toy.bin = TOY) whose official sources are `urls`."""
    spec = datasets.DatasetSpec("toy", "test bytes", (datasets.FileSpec(
        "toy.bin", sha256=hashlib.sha256(TOY).hexdigest()),), tuple(urls))
    monkeypatch.setitem(datasets.REGISTRY, "toy", spec)
    return spec


# ----------------------------------------------------------------------------- MNIST and friends
@pytest.mark.parametrize("load", [pytest.param(datasets.load_mnist, marks=NEEDS_MNIST),
                                  pytest.param(datasets.load_fashion_mnist, marks=NEEDS_FASHION)])
@pytest.mark.parametrize("split,n", [("train", 60000), ("test", 10000)])
def test_idx_loaders_shapes_dtypes_labels(load, split, n):
    images, labels = out = load(split)
    assert images.shape == (n, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (n,) and labels.dtype == np.int64
    assert set(np.unique(labels)) == set(range(10))
    assert out.provenance.exact and "verified" in out.provenance.note
    assert images.flags.writeable


@NEEDS_MNIST
def test_second_load_comes_from_the_decoded_cache(session_cache):
    first = datasets.load_mnist("test")
    assert list((session_cache / "decoded").glob("mnist-test-*.npz"))
    again = datasets.load_mnist("test")
    np.testing.assert_array_equal(first[0], again[0])
    assert datasets.last_provenance("mnist").exact


@pytest.mark.parametrize("name", [pytest.param(n, marks=m) for n, m in NEEDS.items()])
def test_checksums_of_the_local_copies_are_official(name):
    assert {status for _, _, status in datasets.check(name)} == {"ok"}


@NEEDS_SHAKESPEARE
def test_shakespeare():
    text = datasets.load_shakespeare()
    assert len(text) == 1_115_394 and text.startswith("First Citizen")
    assert datasets.last_provenance("shakespeare").exact


def test_unknown_name_and_bad_split():
    with pytest.raises(DatasetError, match="known: mnist"):
        datasets.resolve("imagenet")
    with pytest.raises(ValueError, match="split"):
        datasets.load_mnist("validation")


# ------------------------------------------------------------------------------ integrity
def test_offline_without_a_copy_names_urls_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path))
    with pytest.raises(DatasetError) as e:
        datasets.load_mnist("train")
    msg = str(e.value)
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz" in msg
    assert "http://yann.lecun.com/exdb/mnist/" in msg and "train-labels-idx1-ubyte.gz" in msg
    assert str(tmp_path / "mnist") in msg and "TINYTORCH_DATA" in msg
    assert "TINYTORCH_MIRROR" in msg and "\n" not in e.value.message     # one line, then a hint
    assert list((tmp_path / "mnist").iterdir()) == []           # no partial files left
    with pytest.raises(DatasetError, match="cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"):
        datasets.load_cifar10()
    with pytest.raises(DatasetError, match="karpathy/char-rnn"):
        datasets.load_shakespeare()


@NEEDS_MNIST
def test_a_copy_with_another_checksum_is_used_with_a_warning(tmp_path, monkeypatch):
    folder = _copy_of("mnist", tmp_path)
    path = folder / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw, compresslevel=1, mtime=0))   # same pixels, other bytes
    folder.chmod(0o555)                      # like a shared read-only copy: must not be written
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path))
    try:
        with pytest.warns(DatasetWarning, match="t10k-images-idx3-ubyte.gz"):
            images, _ = out = datasets.load_mnist("test")
        assert not out.provenance.exact and "t10k-images" in out.provenance.note
        assert sorted(p.name for p in folder.iterdir())[0] == "t10k-images-idx3-ubyte.gz"
        assert len(list(folder.iterdir())) == 4
    finally:
        folder.chmod(0o755)
    monkeypatch.setenv("TINYTORCH_DATA", str(DATA))
    np.testing.assert_array_equal(images, datasets.load_mnist("test")[0])


@NEEDS_FASHION
@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_corrupt_gzip_is_an_error_that_says_how_to_fix_it(tmp_path, monkeypatch, damage):
    folder = _copy_of("fashion-mnist", tmp_path)
    path = folder / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path))
    with pytest.raises(DatasetError, match="corrupt") as e:
        datasets.load_fashion_mnist("test")
    assert str(path) in str(e.value) and "tito data download fashion-mnist" in str(e.value)


def test_idx_headers_are_validated():
    with pytest.raises(DatasetError, match="magic"):
        datasets._parse_idx(b"\x00\x00\x09\x01" + bytes(8), Path("x"), 1)
    with pytest.raises(DatasetError, match="corrupt"):
        datasets._parse_idx(b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + bytes(4), Path("x"), 1)
    ok = datasets._parse_idx(b"\x00\x00\x08\x02" + (2).to_bytes(4, "big") * 2 + bytes(range(4)),
                             Path("x"), 2)
    np.testing.assert_array_equal(ok, [[0, 1], [2, 3]])


# ------------------------------------------------------------------------------ downloads
@NEEDS_MNIST
def test_download_tries_mirrors_verifies_and_replaces_atomically(tmp_path, monkeypatch):
    calls: list[str] = []
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path))
    monkeypatch.setattr(datasets, "_urlopen", _fake_opener(calls))
    images, labels = out = datasets.load_mnist("test")          # progress bar, no terminal
    assert images.shape == (10000, 28, 28) and out.provenance.exact
    assert calls[0].startswith("https://ossci-datasets") and calls[1].startswith(
        "https://storage.googleapis.com/cvdf-datasets/mnist/")   # first mirror down, second ok
    names = sorted(p.name for p in (tmp_path / "mnist").iterdir())
    assert names == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]   # no .part left
    assert {s for fs, _, s in datasets.check("mnist") if fs.name.startswith("t10k")} == {"ok"}


def test_a_download_with_the_wrong_checksum_is_rejected(tmp_path, monkeypatch):
    calls: list[str] = []
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path))
    monkeypatch.setattr(datasets, "_urlopen", _fake_opener(calls, fail_first=False, corrupt=True))
    with pytest.raises(DatasetError, match="do not match the official checksum"):
        datasets.download("shakespeare")
    assert len(calls) == 1 and list((tmp_path / "tinyshakespeare").iterdir()) == []


@NEEDS_SHAKESPEARE
def test_download_force_replaces_a_damaged_file(tmp_path, monkeypatch):
    folder = tmp_path / "tinyshakespeare"
    folder.mkdir()
    (folder / "input.txt").write_text("not shakespeare")
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path))
    monkeypatch.setattr(datasets, "_urlopen", _fake_opener([], fail_first=False))
    datasets.download("tinyshakespeare", force=True)
    assert datasets.load_shakespeare().startswith("First Citizen")


# ------------------------------------------------------- mirror override and timeouts (local)
def test_the_mirror_is_tried_first_and_laid_out_like_the_data_folder(loopback, tmp_path,
                                                                     monkeypatch):
    official = _refusing_url() + "/official/"
    _toy(monkeypatch, official)
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path))
    with http_server({"/base/toy/toy.bin": TOY}) as (url, seen):
        monkeypatch.setenv("TINYTORCH_MIRROR", url + "/base/")
        assert datasets.sources("toy") == [url + "/base/toy/", official]
        (path,) = datasets.download("toy", progress=False)
    assert path == tmp_path / "toy" / "toy.bin" and path.read_bytes() == TOY
    assert seen == ["/base/toy/toy.bin"] and loopback == [url + "/base/toy/toy.bin"]
    monkeypatch.delenv("TINYTORCH_MIRROR")
    assert datasets.sources("mnist")[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"


@pytest.mark.parametrize("mirror_serves", [None, b"corrupt bytes"])
def test_after_a_mirror_that_fails_the_official_source_is_tried(loopback, tmp_path, monkeypatch,
                                                                mirror_serves):
    """A mirror without the file (404) or with wrong bytes: the official source delivers, and
    wrong bytes are never kept."""
    files = {"/official/toy.bin": TOY}
    if mirror_serves:
        files["/mirror/toy/toy.bin"] = mirror_serves
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path))
    with http_server(files) as (url, seen):
        _toy(monkeypatch, url + "/official/")
        monkeypatch.setenv("TINYTORCH_MIRROR", url + "/mirror")
        (path,) = datasets.download("toy", progress=False)
    assert seen == ["/mirror/toy/toy.bin", "/official/toy.bin"] and path.read_bytes() == TOY
    assert [p.name for p in path.parent.iterdir()] == ["toy.bin"]          # no .part left


def test_a_mirror_that_is_not_a_url_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path))
    monkeypatch.setenv("TINYTORCH_MIRROR", "/srv/tinytorch-data")
    with pytest.raises(DatasetError, match="TINYTORCH_MIRROR='/srv/tinytorch-data' is not") as e:
        datasets.load_shakespeare()
    assert "http://host:8000/" in e.value.hint and "\n" not in e.value.message


def test_a_server_that_accepts_but_never_answers_fails_after_the_read_timeout(
        loopback, tmp_path, monkeypatch):
    """The real timeouts scaled down (1 s): the mirror accepts and stays silent, so after one
    read timeout the official sources are not tried; one message names the file, the URLs and how
    to get the data by hand."""
    monkeypatch.setattr(datasets, "READ_TIMEOUT", 1.0)
    monkeypatch.setattr(datasets, "SILENCE_LIMIT", 1.0)
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path))
    with silent_server() as (url, accepted):
        monkeypatch.setenv("TINYTORCH_MIRROR", url)
        start = time.monotonic()
        with pytest.raises(DatasetError) as e:
            datasets.load_mnist("train")
        seconds = time.monotonic() - start
        assert accepted, "the silent server never saw the connection"
    assert 0.9 < seconds < 5, f"gave up after {seconds:.1f} s, expected about 1 s"
    first = "train-images-idx3-ubyte.gz"
    assert loopback == [f"{url}/mnist/{first}"]                  # the official ones not tried
    msg, hint = e.value.message, e.value.hint
    assert msg.startswith(f"mnist: cannot get {first}") and "\n" not in msg
    assert f"{url}/mnist/{first}: no answer, timed out after 1" in msg
    assert "not tried after 1" in msg
    assert f"https://ossci-datasets.s3.amazonaws.com/mnist/{first}" in msg
    assert "TINYTORCH_DATA" in hint and "TINYTORCH_MIRROR" in hint and "by hand" in hint
    assert list((tmp_path / "mnist").iterdir()) == []


def test_a_network_that_drops_connections_fails_after_the_silence_limit(loopback, tmp_path,
                                                                        monkeypatch):
    """Connecting hangs: each source costs one connect timeout (0.5 s here, 10 s for real) until
    the silence limit (1 s here, 20 s for real) is spent; the rest are not tried."""
    monkeypatch.setattr(datasets, "CONNECT_TIMEOUT", 0.5)
    monkeypatch.setattr(datasets, "READ_TIMEOUT", 30.0)        # so only the connect can time out
    monkeypatch.setattr(datasets, "SILENCE_LIMIT", 1.0)
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path))
    with full_listen_queue() as url:
        _toy(monkeypatch, url + "/a/", url + "/b/", url + "/c/")
        start = time.monotonic()
        with pytest.raises(DatasetError) as e:
            datasets.download("toy", progress=False)
        seconds = time.monotonic() - start
    assert 0.9 < seconds < 5, f"gave up after {seconds:.1f} s, expected about 1 s"
    msg = e.value.message
    assert f"{url}/a/toy.bin: no answer" in msg and f"{url}/b/toy.bin: no answer" in msg
    assert "not tried after 1" in msg and msg.endswith(f" s without the file: {url}/c/toy.bin).")
    assert len(loopback) == 2


def test_an_address_that_refuses_fails_at_once_after_trying_every_source(loopback, tmp_path,
                                                                         monkeypatch):
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path))
    mirror, official = _refusing_url(), _refusing_url() + "/official/"
    _toy(monkeypatch, official)
    monkeypatch.setenv("TINYTORCH_MIRROR", mirror)
    start = time.monotonic()
    with pytest.raises(DatasetError) as e:
        datasets.download("toy", progress=False)
    assert time.monotonic() - start < 3
    assert e.value.message == (f"toy: cannot get toy.bin ({mirror}/toy/toy.bin: connection "
                               f"refused; {official}toy.bin: connection refused).")


def test_the_real_timeouts_give_up_on_a_silent_network_in_about_20_s():
    """What the two scaled-down tests above measure, at the real settings: a network that drops
    connections costs connect timeouts until the silence limit; one that accepts and never
    answers costs read timeouts until it."""
    def until_limit(timeout):
        return -(-datasets.SILENCE_LIMIT // timeout) * timeout
    assert until_limit(datasets.CONNECT_TIMEOUT) <= 20 and until_limit(datasets.READ_TIMEOUT) <= 20
    assert datasets.CONNECT_TIMEOUT >= 5 and datasets.READ_TIMEOUT >= 10   # slow links still work


# ------------------------------------------------------------------------------ CIFAR-10
@NEEDS_CIFAR_JPEG
def test_cifar10_rebuilt_from_jpeg_is_labelled_lossy(cifar):
    (xtr, ytr), (xte, yte), seen = cifar
    assert xtr.shape == (50000, 32, 32, 3) and xte.shape == (10000, 32, 32, 3)
    assert xtr.dtype == np.uint8 and ytr.dtype == yte.dtype == np.int64
    np.testing.assert_array_equal(ytr, np.load(DATA / "cifar-10" / "train_label_order.npy"))
    assert not cifar[0].provenance.exact and "JPEG" in cifar[0].provenance.note
    assert seen and "not the exact official data" in str(seen[0].message)


@NEEDS_CIFAR_JPEG
def test_cifar10_exact_test_subset_matches_the_rebuild(cifar):
    exact = datasets.load_cifar10_exact_test()
    assert exact.provenance.exact and exact[0].shape == (1000, 32, 32, 3)
    (_, _), (xte, yte), _ = cifar
    np.testing.assert_array_equal(exact[1], yte[:1000])
    mse = np.mean((exact[0].astype(np.float64) - xte[:1000]) ** 2)
    assert 10 * np.log10(255**2 / mse) > 25                      # same images, JPEG noise only


def test_cifar10_official_tarball_is_extracted_safely(tmp_path, monkeypatch):
    """A tarball in the official layout is extracted next to itself, taking only the expected
    files; this one is not the official tarball, so the result is labelled not exact."""
    folder = tmp_path / "cifar-10"
    folder.mkdir()
    records = np.zeros((10000, 3073), np.uint8)
    records[:, 0] = np.arange(10000) % 10                       # labels 0..9, black images
    with tarfile.open(folder / "cifar-10-binary.tar.gz", "w:gz", compresslevel=1) as tar:
        for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin", "../evil"]:
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = records.nbytes
            tar.addfile(info, io.BytesIO(records.tobytes()))
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path))
    monkeypatch.setenv("TINYTORCH_CACHE", str(tmp_path / "cache"))
    with pytest.warns(DatasetWarning, match="cifar-10-binary.tar.gz"):
        x, y = out = datasets.load_cifar10("test")
    assert x.shape == (10000, 32, 32, 3) and not out.provenance.exact
    np.testing.assert_array_equal(y, np.arange(10000) % 10)
    assert (folder / "cifar-10-batches-bin" / "test_batch.bin").is_file()
    assert not (folder / "evil").exists() and not (tmp_path / "evil").exists()


def test_cifar10_corrupt_tarball(tmp_path, monkeypatch):
    (tmp_path / "cifar-10").mkdir()
    (tmp_path / "cifar-10" / "cifar-10-binary.tar.gz").write_bytes(gzip.compress(b"x" * 1000)[:40])
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path))
    monkeypatch.setenv("TINYTORCH_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DatasetError, match="cannot extract.*\n.*tito data download cifar-10"):
        datasets.load_cifar10()


# ------------------------------------------------------------------------------ tito data
@NEEDS_MNIST
@NEEDS_FASHION
@NEEDS_SHAKESPEARE
@NEEDS_CIFAR_JPEG
def test_tito_data_list_download_verify_on_the_local_copy(cifar):
    from tito.commands.data import app
    from tito.errors import TitoError

    runner = CliRunner(env={"COLUMNS": "200"})
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    assert "mnist" in result.output and "tinyshakespeare" in result.output
    assert "lossy" in result.output
    result = runner.invoke(app, ["verify"])
    assert result.exit_code == 0 and "none corrupt" in result.output
    assert "offline copy" in result.output                       # helper files that are here
    result = runner.invoke(app, ["download", "mnist"])
    assert result.exit_code == 0 and "already present" in result.output
    assert "TINYTORCH_DATA" in result.output
    result = runner.invoke(app, ["download", "imagenet"])
    assert isinstance(result.exception, TitoError)


def test_tito_data_download_exits_nonzero_on_a_checksum_mismatch(loopback, tmp_path,
                                                                 monkeypatch):
    """A mirror serving damaged bytes (and no other source reachable): exit 1, one error line and
    a hint, nothing left in the data folder."""
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path))
    with http_server({"/tinyshakespeare/input.txt": b"damaged"}) as (url, seen):
        monkeypatch.setenv("TINYTORCH_MIRROR", url)
        code, out, err = run_cli(["data", "download", "shakespeare"])
    assert seen == ["/tinyshakespeare/input.txt"]
    assert code == 1, out + err
    first, hint = err.splitlines()[-2:]                 # after the progress bar: error + hint
    assert first.startswith("Error: tinyshakespeare: cannot get input.txt")
    assert f"{url}/tinyshakespeare/input.txt: the 7 bytes received do not match the official " \
           "checksum" in first
    assert "karpathy/char-rnn" in hint and "TINYTORCH_MIRROR" in hint and "Traceback" not in err
    assert list((tmp_path / "tinyshakespeare").iterdir()) == []


def test_tito_data_download_exits_nonzero_when_a_file_here_differs(tmp_path, monkeypatch):
    (tmp_path / "tinyshakespeare").mkdir()
    (tmp_path / "tinyshakespeare" / "input.txt").write_text("tampered")
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path))
    code, out, err = run_cli(["data", "download", "shakespeare"])
    assert code == 1, out + err
    first, hint = err.splitlines()
    assert "input.txt" in first and "differ from the official checksum" in first
    assert "tito data download tinyshakespeare --force" in hint and "Traceback" not in err


def test_tito_data_verify_lists_no_helper_files_as_missing_and_names_the_data_set(tmp_path,
                                                                                 monkeypatch):
    from tito import data

    for name in ("README.md", "SHA256SUMS", "cifar10_from_jpeg.py", "cifar-10/README.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("helper")
    (tmp_path / "tinyshakespeare").mkdir()
    (tmp_path / "tinyshakespeare" / "input.txt").write_text("tampered")
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path))
    monkeypatch.setenv("TINYTORCH_CACHE", str(tmp_path / "cache"))
    rows = data.verify()
    official = {(n, fs.name) for n, s in datasets.REGISTRY.items() for fs in s.files if fs.official}
    assert {(r.dataset, r.file) for r in rows} == official       # no helper file, present or not
    assert {r.file: r.status for r in rows}["input.txt"] == "mismatch"
    code, out, err = run_cli(["data", "verify"])
    assert code == 1, out + err
    assert "`tito data download tinyshakespeare --force` replaces them." in out
    assert "`tito data download mnist` fetches them" in out and "NAME" not in out


def test_tito_data_help_names_the_settings():
    code, out, _ = run_cli(["data", "--help"])
    assert code == 0
    for word in ("TINYTORCH_DATA", "TINYTORCH_CACHE", "TINYTORCH_MIRROR", "docs/DATA.md"):
        assert word in out


def test_tito_data_never_imports_tinytorch(tmp_path):
    """`tito data` reads the support module by path: in a learner's process `import tinytorch`
    must stay their own package, never the reference activated behind their back."""
    code = ("import sys; from tito import data; rows = data.verify(); data.summary(); "
            "assert 'tinytorch' not in sys.modules, 'tito.data imported tinytorch'; "
            "print(len(rows))")
    env = {**os.environ, "TINYTORCH_DATA": str(tmp_path), "TINYTORCH_CACHE": str(tmp_path / "c")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) == sum(fs.official for s in datasets.REGISTRY.values()
                                   for fs in s.files)
