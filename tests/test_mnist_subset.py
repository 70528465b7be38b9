"""Train the MNIST MLP of examples/mnist_mlp.py on a 5,000-image subset with the reference
framework (layers, losses, dataloader, optimizers, training) for 5 epochs, about 1 s on an idle
2-core machine: a fast end-to-end check that the pieces learn real data (>= 90%, typically 93%).
The full run (>= 97.5% on all of MNIST) is the example script, not a test."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest

from tinytorch.datasets import data_dir

DATA = data_dir()                # $TINYTORCH_DATA (tests/conftest.py sets it), else the user cache
FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "mnist_mlp.py"

pytestmark = pytest.mark.skipif(
    not all((DATA / "mnist" / f).is_file() for f in FILES),
    reason=f"MNIST not found in {DATA / 'mnist'} (set TINYTORCH_DATA to a folder holding mnist/"
           f"{FILES[0]} etc.; this test never downloads)")


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    from tinytorch.datasets import load_mnist

    mp = pytest.MonkeyPatch()
    mp.setenv("TINYTORCH_CACHE", str(tmp_path_factory.mktemp("cache")))  # keep the user cache clean
    try:
        yield load_mnist("train"), load_mnist("test")
    finally:
        mp.undo()


def test_mlp_learns_a_mnist_subset(mnist):
    from tinytorch.dataloader import DataLoader, TensorDataset
    from tinytorch.losses import CrossEntropyLoss
    from tinytorch.optimizers import SGD
    from tinytorch.tensor import manual_seed
    from tinytorch.training import Trainer

    spec = importlib.util.spec_from_file_location("mnist_mlp_example", EXAMPLE)
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)  # the example's data preparation and model, so they stay tested
    (train_x, train_y), (test_x, test_y) = mnist
    assert train_x.shape == (60000, 28, 28) and test_x.shape == (10000, 28, 28)
    manual_seed(0)
    train = DataLoader(TensorDataset(ex.prepare(train_x[:5000]), train_y[:5000]), batch_size=64,
                       shuffle=True, seed=0)
    test = DataLoader(TensorDataset(ex.prepare(test_x), test_y), batch_size=1000)
    model = ex.build_model((128, 64))
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.02, momentum=0.9))
    start = time.perf_counter()
    history = trainer.fit(train, epochs=5, progress=False)
    loss, acc = trainer.evaluate(test)
    seconds = time.perf_counter() - start
    assert history["train_loss"][-1] < history["train_loss"][0], f"training loss did not fall: {history}"
    assert np.isfinite(loss)
    assert acc >= 0.90, f"test accuracy {acc:.2%} after 5 epochs on 5,000 images (expected >= 90%, typically 93%)"
    print(f"MNIST subset: test accuracy {acc:.2%}, {seconds:.1f}s")
