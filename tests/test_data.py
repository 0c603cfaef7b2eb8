"""The synthetic dataset: deterministic, balanced, and each class looks like its name."""

from __future__ import annotations

import numpy as np
import pytest
from tinycnn.reference.data import CLASS_NAMES, DatasetConfig, make_dataset, make_images


def clean_images(label: int, n: int = 200, **overrides) -> np.ndarray:
    config = DatasetConfig(n_classes=4, noise_std=0.0, **overrides)
    return make_images(np.full(n, label), np.random.default_rng(0), config)[:, 0]


def test_same_seed_same_arrays_and_different_seed_different_arrays():
    a, b, c = make_dataset(seed=3), make_dataset(seed=3), make_dataset(seed=4)
    for field in ("x_train", "y_train", "x_val", "y_val"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.x_train, c.x_train)


@pytest.mark.parametrize("n_classes", [3, 4])
def test_shapes_dtypes_and_balance(n_classes):
    data = make_dataset(n_classes=n_classes, n_train=120, n_val=60)
    assert data.x_train.shape == (120, 1, 8, 8) and data.x_val.shape == (60, 1, 8, 8)
    assert data.x_train.dtype == np.float64 and data.y_train.dtype == np.int64
    assert np.bincount(data.y_train).tolist() == [120 // n_classes] * n_classes
    assert data.class_names == CLASS_NAMES[:n_classes]


def test_vertical_stripes_are_constant_down_each_column():
    images = clean_images(0)
    assert np.all(images == images[:, :1, :])  # every row equals the first row
    widths = images[:, 0, :].sum(axis=1)
    assert set(widths.tolist()) == {1.0, 2.0}  # widths 1..max_width all occur
    assert np.all(images[:, :, 0] == 0) and np.all(images[:, :, -1] == 0)  # the margin


def test_horizontal_stripes_are_transposed_vertical_ones():
    images = clean_images(1)
    assert np.all(images == images[:, :, :1])
    assert np.all(images[:, 0, :] == 0) and np.all(images[:, -1, :] == 0)


def test_diagonal_stripes_follow_the_main_diagonal():
    images = clean_images(2)
    rows, cols = np.indices((8, 8))
    for image in images:
        offsets = np.unique((cols - rows)[image == 1])
        assert 1 <= len(offsets) <= 2 and np.all(np.diff(offsets) == 1)
        # every pixel on those diagonals is lit, and at least min_diagonal_length of them
        assert image.sum() == np.isin(cols - rows, offsets).sum() >= 4


def test_dots_are_small_squares_near_the_centre():
    images = clean_images(3)
    assert np.all(images.sum(axis=(1, 2)) == 4)
    rows, cols = np.nonzero(images[0])
    assert rows.min() >= 2 and rows.max() <= 5 and cols.min() >= 2 and cols.max() <= 5


def test_noise_has_the_requested_spread():
    images = make_images(
        np.zeros(2000, dtype=int), np.random.default_rng(1), DatasetConfig(noise_std=0.2)
    )
    background = images[:, 0, :, 0]  # the margin column: blank before the noise is added
    assert abs(background.mean()) < 0.01
    assert abs(background.std() - 0.2) < 0.01


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"n_classes": 5}, "n_classes must be 2, 3 or 4, got 5"),
        ({"noise_std": -1.0}, "noise_std must be >= 0"),
        ({"max_width": 9}, "max_width must be in [1, image_size=8], got 9"),
        ({"margin": 4}, "margin must be in [0, 3]"),
        ({"n_train": 0}, "need n_train >= 1"),
    ],
)
def test_bad_settings_raise_clear_errors(overrides, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        DatasetConfig(**overrides)
