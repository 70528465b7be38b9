"""Data-set loaders, integrity checks, downloads and `tito data`, on the offline copies.

The network is never touched: every test runs with `datasets._urlopen` replaced, either by one that
refuses (offline) or by a fake that serves bytes from the local copies. The CIFAR-10 rebuild from
JPEG (~15 s) happens once per session, into a session cache.
"""

from __future__ import annotations

import email.message
import gzip
import io
import shutil
import tarfile
import urllib.error
import urllib.response
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tinytorch import datasets
from tinytorch.datasets import DatasetError, DatasetWarning

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
pytestmark = pytest.mark.skipif(not SHARED.is_dir(),
                                reason=f"offline data sets not found at {SHARED}")


def _offline(url, timeout=None):
    raise urllib.error.URLError("network disabled in tests")


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tinytorch-cache")


@pytest.fixture(autouse=True)
def env(monkeypatch, session_cache):
    """Shared offline copy as the data folder, a session cache, and no network."""
    monkeypatch.setenv("TINYTORCH_DATA", str(SHARED))
    monkeypatch.setenv("TINYTORCH_CACHE", str(session_cache))
    monkeypatch.setattr(datasets, "_urlopen", _offline)


@pytest.fixture(scope="session")
def cifar(session_cache):
    """Load CIFAR-10 once (rebuilding it from the JPEG copy): (train, test, warnings seen)."""
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        mp.setenv("TINYTORCH_DATA", str(SHARED))
        mp.setenv("TINYTORCH_CACHE", str(session_cache))
        mp.setattr(datasets, "_urlopen", _offline)
        train, test = datasets.load_cifar10("train"), datasets.load_cifar10("test")
    return train, test, [w for w in seen if issubclass(w.category, DatasetWarning)]


def _copy_of(name: str, dest: Path) -> Path:
    """A writable copy of one data set's folder under `dest`; returns the folder."""
    shutil.copytree(SHARED / name, dest / name)
    return dest / name


def _fake_opener(calls: list[str], fail_first: bool = True, corrupt: bool = False):
    """An urlopen that serves the shared copy of the file named at the end of the URL."""
    def opener(url, timeout=None):
        calls.append(url)
        if fail_first and len(calls) % 2 == 1:
            raise urllib.error.URLError("first mirror down")
        name = url.rsplit("/", 1)[1]
        data = next(SHARED.glob(f"*/{name}")).read_bytes()
        if corrupt:
            data = data[: len(data) // 2]
        headers = email.message.Message()
        headers["Content-Length"] = str(len(data))
        return urllib.response.addinfourl(io.BytesIO(data), headers, url)
    return opener


# ----------------------------------------------------------------------------- MNIST and friends
@pytest.mark.parametrize("load", [datasets.load_mnist, datasets.load_fashion_mnist])
@pytest.mark.parametrize("split,n", [("train", 60000), ("test", 10000)])
def test_idx_loaders_shapes_dtypes_labels(load, split, n):
    images, labels = out = load(split)
    assert images.shape == (n, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (n,) and labels.dtype == np.int64
    assert set(np.unique(labels)) == set(range(10))
    assert out.provenance.exact and "verified" in out.provenance.note
    assert images.flags.writeable


def test_second_load_comes_from_the_decoded_cache(session_cache):
    first = datasets.load_mnist("test")
    assert list((session_cache / "decoded").glob("mnist-test-*.npz"))
    again = datasets.load_mnist("test")
    np.testing.assert_array_equal(first[0], again[0])
    assert datasets.last_provenance("mnist").exact


def test_checksums_of_the_offline_copies_are_official():
    for name in ("mnist", "fashion-mnist", "tinyshakespeare"):
        assert {status for _, _, status in datasets.check(name)} == {"ok"}


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
    assert list((tmp_path / "mnist").iterdir()) == []           # no partial files left
    with pytest.raises(DatasetError, match="cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"):
        datasets.load_cifar10()
    with pytest.raises(DatasetError, match="karpathy/char-rnn"):
        datasets.load_shakespeare()


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
    monkeypatch.setenv("TINYTORCH_DATA", str(SHARED))
    np.testing.assert_array_equal(images, datasets.load_mnist("test")[0])


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


def test_download_force_replaces_a_damaged_file(tmp_path, monkeypatch):
    folder = tmp_path / "tinyshakespeare"
    folder.mkdir()
    (folder / "input.txt").write_text("not shakespeare")
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path))
    monkeypatch.setattr(datasets, "_urlopen", _fake_opener([], fail_first=False))
    datasets.download("tinyshakespeare", force=True)
    assert datasets.load_shakespeare().startswith("First Citizen")


# ------------------------------------------------------------------------------ CIFAR-10
def test_cifar10_rebuilt_from_jpeg_is_labelled_lossy(cifar):
    (xtr, ytr), (xte, yte), seen = cifar
    assert xtr.shape == (50000, 32, 32, 3) and xte.shape == (10000, 32, 32, 3)
    assert xtr.dtype == np.uint8 and ytr.dtype == yte.dtype == np.int64
    np.testing.assert_array_equal(ytr, np.load(SHARED / "cifar-10" / "train_label_order.npy"))
    assert not cifar[0].provenance.exact and "JPEG" in cifar[0].provenance.note
    assert seen and "not the exact official data" in str(seen[0].message)


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
    with pytest.raises(DatasetError, match="cannot extract.*\n.*tito data download cifar-10"):
        datasets.load_cifar10()


# ------------------------------------------------------------------------------ tito data
def test_tito_data_list_download_verify(cifar, tmp_path, monkeypatch):
    from tito.commands.data import app
    from tito.errors import TitoError

    runner = CliRunner(env={"COLUMNS": "200"})
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    assert "mnist" in result.output and "tinyshakespeare" in result.output
    assert "lossy" in result.output
    result = runner.invoke(app, ["verify"])
    assert result.exit_code == 0 and "none corrupt" in result.output
    result = runner.invoke(app, ["download", "mnist"])
    assert result.exit_code == 0 and "already present" in result.output
    assert "TINYTORCH_DATA" in result.output
    result = runner.invoke(app, ["download", "imagenet"])
    assert isinstance(result.exception, TitoError)

    folder = _copy_of("tinyshakespeare", tmp_path)
    (folder / "input.txt").write_text("tampered")
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path))
    result = runner.invoke(app, ["verify"])
    assert result.exit_code == 1 and "MISMATCH" in result.output
