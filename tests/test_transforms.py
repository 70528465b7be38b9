"""The uint8 batch pipeline: shapes, dtypes, and that crops and flips move the right pixels."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinytorch import transforms as T


def _images(n=5, h=4, w=6, c=3) -> np.ndarray:
    """Every pixel distinct (mod 256), so any misplaced pixel shows."""
    return (np.arange(n * h * w * c) % 251 + 1).astype(np.uint8).reshape(n, h, w, c)


def test_normalize_layout_dtype_and_values():
    batch = _images()
    out = T.normalize(batch, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0))
    assert out.shape == (5, 3, 4, 6) and out.dtype == np.float32 and out.flags.c_contiguous
    expected = (batch.transpose(0, 3, 1, 2) / 255.0 - np.array([0.5, 0.25, 0.0])[:, None, None]) \
        / np.array([0.5, 0.25, 1.0])[:, None, None]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_normalize_grey_adds_a_channel_axis():
    out = T.normalize(_images(c=1)[..., 0], T.MNIST_MEAN, T.MNIST_STD)
    assert out.shape == (5, 1, 4, 6) and out.dtype == np.float32


def test_normalize_rejects_floats_and_wrong_channel_counts():
    with pytest.raises(TypeError, match="uint8"):
        T.normalize(_images().astype(np.float32), 0.5, 0.5)
    with pytest.raises(ValueError, match="1 or 3"):
        T.normalize(_images(), (0.5, 0.5), 0.5)


def test_random_crop_is_a_shifted_window_of_the_zero_padded_image():
    batch, p = _images(n=20), 2
    out = T.random_crop(batch, p, np.random.default_rng(0))
    assert out.shape == batch.shape and out.dtype == np.uint8
    padded = np.pad(batch, ((0, 0), (p, p), (p, p), (0, 0)))
    for img, crop in zip(padded, out):   # each crop is exactly one of the (2p+1)^2 windows
        hits = [(y, x) for y in range(2 * p + 1) for x in range(2 * p + 1)
                if np.array_equal(img[y:y + 4, x:x + 6], crop)]
        assert len(hits) == 1
    offsets = {tuple(np.argwhere(np.isin(o[..., 0], b[..., 0]))[0]) for o, b in zip(out, batch)}
    assert len(offsets) > 1                                  # offsets differ between images


def test_random_crop_grey_and_zero_padding():
    batch = _images(c=1)[..., 0]
    out = T.random_crop(batch, 1, np.random.default_rng(1))
    assert out.shape == batch.shape
    np.testing.assert_array_equal(T.random_crop(batch, 0, np.random.default_rng(1)), batch)


def test_random_hflip_mirrors_exactly_the_chosen_images():
    batch = _images(n=64)
    out = T.random_hflip(batch, np.random.default_rng(3))
    flipped = np.array([np.array_equal(o, b[:, ::-1]) for o, b in zip(out, batch)])
    kept = np.array([np.array_equal(o, b) for o, b in zip(out, batch)])
    assert (flipped ^ kept).all() and 10 < flipped.sum() < 54
    np.testing.assert_array_equal(T.random_hflip(batch, np.random.default_rng(3), p=0.0), batch)
    np.testing.assert_array_equal(T.random_hflip(batch, np.random.default_rng(3), p=1.0),
                                  batch[:, :, ::-1])


@given(n=st.integers(1, 6), h=st.integers(1, 9), w=st.integers(1, 9), pad=st.integers(0, 4),
       seed=st.integers(0, 2**32 - 1))
def test_crop_flip_keep_shape_and_pixel_multiset_bounds(n, h, w, pad, seed):
    batch = np.random.default_rng(seed).integers(1, 256, (n, h, w, 3), dtype=np.uint8)
    rng = np.random.default_rng(seed)
    out = T.random_hflip(T.random_crop(batch, pad, rng), rng)
    assert out.shape == batch.shape and out.dtype == np.uint8
    # every non-zero output pixel comes from the same image
    for o, b in zip(out, batch):
        assert np.isin(o[o > 0], b).all()


def test_compose_is_reproducible_with_a_seed():
    steps = [T.RandomCrop(4), T.RandomHorizontalFlip(), T.Normalize(T.CIFAR10_MEAN, T.CIFAR10_STD)]
    batch = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    a, b = T.Compose(steps, seed=7)(batch), T.Compose(steps, seed=7)(batch)
    assert a.shape == (16, 3, 32, 32) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert "RandomCrop(padding=4)" in repr(T.Compose(steps))


def test_a_cifar_batch_goes_through_in_a_few_milliseconds():
    aug = T.Compose([T.RandomCrop(4), T.RandomHorizontalFlip(),
                     T.Normalize(T.CIFAR10_MEAN, T.CIFAR10_STD)], seed=0)
    batch = np.random.default_rng(0).integers(0, 256, (128, 32, 32, 3), dtype=np.uint8)
    aug(batch)
    best = min(_timed(aug, batch) for _ in range(20))
    assert best < 0.010, f"crop+flip+normalize of 128 images took {best * 1e3:.1f} ms"


def _timed(fn, arg) -> float:
    start = time.perf_counter()
    fn(arg)
    return time.perf_counter() - start
