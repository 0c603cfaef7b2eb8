"""The synthetic dataset: deterministic, balanced, and each class looks like its name."""

from __future__ import annotations

import numpy as np
import pytest
from tinycnn.reference.data import (
    CLASS_NAMES,
    DatasetConfig,
    DigitsConfig,
    load_digits_dataset,
    make_dataset,
    make_images,
    shift_images,
)


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


# -- the real digits -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    return load_digits_dataset()


def test_digits_shapes_dtypes_and_range(digits):
    assert digits.x_train.shape == (1200, 1, 8, 8) and digits.x_val.shape == (597, 1, 8, 8)
    assert digits.x_train.dtype == np.float64 and digits.y_train.dtype == np.int64
    assert digits.x_train.min() == 0.0 and digits.x_train.max() == 1.0  # pixels 0..16, / 16
    assert set(np.unique(digits.x_train * 16)) <= set(range(17))
    assert digits.class_names == tuple("0123456789") and digits.config.n_classes == 10
    assert set(digits.y_val.tolist()) == set(range(10))


def test_digits_split_is_fixed_by_its_seed_and_disjoint(digits):
    again = load_digits_dataset()
    for field in ("x_train", "y_train", "x_val", "y_val"):
        np.testing.assert_array_equal(getattr(digits, field), getattr(again, field))
    other = load_digits_dataset(split_seed=1)
    assert not np.array_equal(digits.y_train, other.y_train)
    # Together the two splits are the whole data set, each image exactly once.
    from sklearn.datasets import load_digits

    everything = load_digits()
    joined = np.concatenate([digits.x_train, digits.x_val])[:, 0] * 16
    key = np.lexsort(joined.reshape(len(joined), -1).T)
    original_key = np.lexsort(everything.images.reshape(len(everything.images), -1).T)
    np.testing.assert_array_equal(joined[key], everything.images[original_key])


def test_digits_split_is_stratified(digits):
    counts = np.bincount(np.concatenate([digits.y_train, digits.y_val]), minlength=10)
    train = np.bincount(digits.y_train, minlength=10)
    # Each digit keeps its share: within one image of its exact proportion of the training set.
    np.testing.assert_allclose(train, counts * 1200 / counts.sum(), atol=1)
    # An unstratified draw of the same size misses that on some digit (proves the test can fail).
    rng = np.random.default_rng(0)
    labels = np.concatenate([digits.y_train, digits.y_val])
    random_train = np.bincount(rng.permutation(labels)[:1200], minlength=10)
    assert np.abs(random_train - counts * 1200 / counts.sum()).max() > 1


@pytest.mark.parametrize("n_train", [0, 9, 1788])
def test_digits_split_sizes_are_checked(n_train):
    with pytest.raises(ValueError, match="n_train must be in"):
        DigitsConfig(n_train=n_train)


# -- the shift -------------------------------------------------------------------------------------


def test_shift_moves_pixels_and_fills_zeros():
    image = np.arange(1, 17, dtype=float).reshape(4, 4)
    expected_right_down = np.array(
        [[0, 0, 0, 0], [0, 1, 2, 3], [0, 5, 6, 7], [0, 9, 10, 11]], dtype=float
    )
    np.testing.assert_array_equal(shift_images(image, 1, 1), expected_right_down)
    expected_up_left = np.array(
        [[11, 12, 0, 0], [15, 16, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=float
    )
    np.testing.assert_array_equal(shift_images(image, -2, -2), expected_up_left)


def test_shift_keeps_shape_and_dtype_and_never_aliases():
    x = np.random.default_rng(0).normal(size=(5, 2, 6, 7)).astype(np.float32)
    for down, right in ((0, 0), (2, -3), (-1, 6)):
        y = shift_images(x, down, right)
        assert y.shape == x.shape and y.dtype == x.dtype and not np.shares_memory(x, y)
    np.testing.assert_array_equal(shift_images(x, 0, 0), x)
    assert not shift_images(x, 6, 0).any() and not shift_images(x, 0, -7).any()
    # There and back loses exactly the pixels pushed out: here the last column.
    back = shift_images(shift_images(x, 0, 1), 0, -1)
    np.testing.assert_array_equal(back[..., :-1], x[..., :-1])
    assert not back[..., -1].any()


@pytest.mark.parametrize(
    ("x", "down", "message"),
    [
        (np.zeros(3), 1, "need an array of images"),
        (np.zeros((3, 3)), 1.5, "down must be an integer"),
    ],
)
def test_shift_refuses_bad_arguments(x, down, message):
    with pytest.raises(ValueError, match=message):
        shift_images(x, down, 0)
