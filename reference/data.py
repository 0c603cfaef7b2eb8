"""The project's data: the lecture's synthetic 8x8 patterns, real 8x8 digits, and the shift.

Three things live here and nowhere else:

- :func:`make_dataset`, the one generator of the lecture's synthetic stripe images (below);
- :func:`load_digits_dataset`, scikit-learn's real 8x8 handwritten digits with a fixed,
  stratified, seeded split (:class:`DigitsConfig`);
- :func:`shift_images`, the translation with zero fill used to test translation equivariance.

Both datasets come as a :class:`Dataset`: images ``(N, 1, 8, 8)`` float64 with a background of 0
and strokes near 1, labels ``(N,)`` int64, so every model and both training loops take either.

The synthetic patterns
----------------------

Four classes, in label order:

0. ``vertical``: a vertical stripe (full height) at a random column.
1. ``horizontal``: a horizontal stripe (full width) at a random row.
2. ``diagonal``: a stripe along the main-diagonal direction (top-left to bottom-right), shifted
   off the diagonal by a random offset, at least ``min_diagonal_length`` pixels long.
3. ``dot``: a small square blob near the centre (the four-class extension).

Vertical and horizontal stripes keep ``margin`` blank pixels from the border (default 1): a
one-pixel stripe on the very border reaches a 3x3 valid convolution only through the kernel's
outer column, and such images are where a 3-filter TinyCNN gets stuck below 99% (seed 0: 98.2%
with ``margin=0``). Set ``margin=0`` to study that harder task.

Each stripe is ``width`` pixels wide with ``width`` drawn uniformly from ``1..max_width``; its
pixels are set to ``intensity`` over a background of 0, then independent Gaussian noise of
standard deviation ``noise_std`` is added to every pixel. Classes are balanced and shuffled.

Everything is determined by ``DatasetConfig.seed``: the same config gives the same arrays, on any
machine. Images are NCHW, ``(N, 1, S, S)`` float64; labels are int64.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = [
    "CLASS_NAMES",
    "DIGIT_NAMES",
    "Dataset",
    "DatasetConfig",
    "DigitsConfig",
    "load_digits_dataset",
    "make_dataset",
    "make_images",
    "shift_images",
]

CLASS_NAMES = ("vertical", "horizontal", "diagonal", "dot")
DIGIT_NAMES = tuple(str(digit) for digit in range(10))


@dataclass(frozen=True)
class DatasetConfig:
    """Every knob of the generator, with its default."""

    n_classes: int = 3  # 3: vertical, horizontal, diagonal; 4 adds "dot"
    n_train: int = 1200  # training images (balanced over the classes)
    n_val: int = 600  # validation images, drawn after the training images
    image_size: int = 8  # side S of the square image
    max_width: int = 2  # stripe width drawn uniformly from 1..max_width pixels
    margin: int = 1  # blank rows/columns kept between a vertical/horizontal stripe and the border
    min_diagonal_length: int = 4  # shortest diagonal stripe, in pixels along the diagonal
    dot_size: int = 2  # side of the square "dot" blob
    dot_jitter: int = 1  # the dot's centre moves up to this many pixels from the image centre
    intensity: float = 1.0  # value of pattern pixels before noise (background 0)
    noise_std: float = 0.2  # standard deviation of the Gaussian noise on every pixel
    seed: int = 0  # seed of numpy.random.default_rng; fixes every image and label

    def __post_init__(self):
        if self.n_classes not in (2, 3, 4):
            raise ValueError(f"n_classes must be 2, 3 or 4, got {self.n_classes}")
        if self.n_train < 1 or self.n_val < 0:
            raise ValueError(f"need n_train >= 1 and n_val >= 0, got {self.n_train}, {self.n_val}")
        if self.image_size < 3:
            raise ValueError(f"image_size must be >= 3, got {self.image_size}")
        if not 1 <= self.max_width <= self.image_size:
            raise ValueError(
                f"max_width must be in [1, image_size={self.image_size}], got {self.max_width}"
            )
        if not 0 <= self.margin <= (self.image_size - self.max_width) // 2:
            raise ValueError(
                f"margin must be in [0, {(self.image_size - self.max_width) // 2}] so a stripe of "
                f"width {self.max_width} fits, got {self.margin}"
            )
        if not 1 <= self.min_diagonal_length <= self.image_size:
            raise ValueError(
                f"min_diagonal_length must be in [1, {self.image_size}], "
                f"got {self.min_diagonal_length}"
            )
        if not 1 <= self.dot_size <= self.image_size - 2 * self.dot_jitter:
            raise ValueError(
                f"dot_size {self.dot_size} with jitter {self.dot_jitter} does not fit "
                f"an image of side {self.image_size}"
            )
        if self.noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {self.noise_std}")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES[: self.n_classes]


@dataclass(frozen=True)
class Dataset:
    """Training and validation split: images ``(N, 1, S, S)`` float64, labels ``(N,)`` int64.

    ``config`` is the :class:`DatasetConfig` or :class:`DigitsConfig` that made it.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    config: DatasetConfig | DigitsConfig

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.config.class_names


def _pattern(label: int, rng: np.random.Generator, config: DatasetConfig) -> np.ndarray:
    """One noise-free ``S x S`` pattern of class ``label`` (0/1 mask)."""
    S = config.image_size
    image = np.zeros((S, S))
    width = int(rng.integers(1, config.max_width + 1))
    if label == 0:  # vertical stripe: columns [start, start + width)
        start = int(rng.integers(config.margin, S - width - config.margin + 1))
        image[:, start : start + width] = 1
    elif label == 1:  # horizontal stripe: rows [start, start + width)
        start = int(rng.integers(config.margin, S - width - config.margin + 1))
        image[start : start + width, :] = 1
    elif label == 2:  # diagonal stripe: pixels with col - row in [offset, offset + width)
        # The shortest line, at |col - row| = S - min_length, still has min_length pixels.
        reach = S - config.min_diagonal_length
        offset = int(rng.integers(-reach, reach - width + 2))
        rows, cols = np.indices((S, S))
        image[(cols - rows >= offset) & (cols - rows < offset + width)] = 1
    else:  # dot: a dot_size x dot_size blob centred near the middle
        corner = (S - config.dot_size) // 2
        top, left = corner + rng.integers(-config.dot_jitter, config.dot_jitter + 1, size=2)
        image[top : top + config.dot_size, left : left + config.dot_size] = 1
    return image


def make_images(labels: np.ndarray, rng: np.random.Generator, config: DatasetConfig) -> np.ndarray:
    """Draw one noisy image per label.

    Parameters
    ----------
    labels : ndarray of int, shape (N,)
        Class of each image, in ``[0, config.n_classes)``.
    rng : numpy.random.Generator
        Source of all randomness (stripe placement, width, noise).
    config : DatasetConfig

    Returns
    -------
    images : ndarray, shape (N, 1, S, S), float64
    """
    labels = np.asarray(labels)
    in_range = labels.size == 0 or 0 <= labels.min() <= labels.max() < config.n_classes
    if labels.ndim != 1 or not in_range:
        raise ValueError(f"labels must be a 1-D array of ints in [0, {config.n_classes})")
    S = config.image_size
    patterns = (
        np.stack([_pattern(int(y), rng, config) for y in labels])
        if labels.size
        else (np.zeros((0, S, S)))
    )
    noise = rng.normal(0.0, config.noise_std, size=patterns.shape)
    return (config.intensity * patterns + noise)[:, None, :, :]  # N, 1, S, S


def _balanced_labels(n: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.arange(n) % n_classes).astype(np.int64)


def make_dataset(config: DatasetConfig | None = None, **overrides) -> Dataset:
    """Generate the training and validation images for ``config``.

    Keyword overrides replace config fields: ``make_dataset(n_classes=4, seed=1)``.
    """
    config = DatasetConfig(**{**(config or DatasetConfig()).to_dict(), **overrides})
    rng = np.random.default_rng(config.seed)
    y_train = _balanced_labels(config.n_train, config.n_classes, rng)
    x_train = make_images(y_train, rng, config)
    y_val = _balanced_labels(config.n_val, config.n_classes, rng)
    x_val = make_images(y_val, rng, config)
    return Dataset(x_train, y_train, x_val, y_val, config)


# ---------------------------------------------------------------------------------------------
# Real handwritten digits
# ---------------------------------------------------------------------------------------------

#: Largest pixel value of scikit-learn's digits (each pixel counts the set pixels of a 4x4 block).
DIGITS_MAX_PIXEL = 16.0


@dataclass(frozen=True)
class DigitsConfig:
    """The split of scikit-learn's 8x8 digits, with its defaults.

    The split is fixed by ``split_seed`` alone: runs with different model seeds see the same
    training and validation images, so seeds vary only the initial weights and the batch order.
    """

    n_train: int = 1200  # training images; the other 597 of the 1,797 are the validation set
    split_seed: int = 0  # random_state of sklearn.model_selection.train_test_split

    def __post_init__(self):
        if not 10 <= self.n_train <= 1787:
            raise ValueError(
                f"n_train must be in [10, 1787] so both splits hold every digit, got {self.n_train}"
            )

    @property
    def n_classes(self) -> int:
        return len(DIGIT_NAMES)

    @property
    def class_names(self) -> tuple[str, ...]:
        return DIGIT_NAMES

    def to_dict(self) -> dict:
        return asdict(self)


def load_digits_dataset(config: DigitsConfig | None = None, **overrides) -> Dataset:
    """scikit-learn's 1,797 handwritten digits, split into training and validation images.

    The images ship inside scikit-learn (``sklearn.datasets.load_digits``, the UCI "Optical
    Recognition of Handwritten Digits" test set: 32x32 bitmaps whose 4x4 blocks were counted,
    giving 8x8 images of integers 0..16); nothing is downloaded. Pixels are divided by 16, so the
    background is 0 and a full stroke is 1, like the synthetic stripes. The split is
    ``train_test_split(..., train_size=n_train, stratify=labels, random_state=split_seed)``: every
    digit keeps its share of the data in both splits.

    Keyword overrides replace config fields: ``load_digits_dataset(n_train=1000)``.

    Returns
    -------
    Dataset
        ``x_train (n_train, 1, 8, 8)``, ``x_val (1797 - n_train, 1, 8, 8)`` float64 in [0, 1];
        ``y_train``, ``y_val`` int64 digits 0..9; ``class_names`` ``("0", ..., "9")``.
    """
    from sklearn.datasets import load_digits  # imported here: only the digits need it
    from sklearn.model_selection import train_test_split

    config = DigitsConfig(**{**(config or DigitsConfig()).to_dict(), **overrides})
    digits = load_digits()
    images = (digits.images / DIGITS_MAX_PIXEL)[:, None, :, :]  # N, 1, 8, 8
    labels = digits.target.astype(np.int64)
    x_train, x_val, y_train, y_val = train_test_split(
        images,
        labels,
        train_size=config.n_train,
        stratify=labels,
        random_state=config.split_seed,
    )
    return Dataset(x_train, y_train, x_val, y_val, config)


# ---------------------------------------------------------------------------------------------
# Translation
# ---------------------------------------------------------------------------------------------


def shift_images(x: np.ndarray, down: int, right: int) -> np.ndarray:
    """Move every image ``down`` rows down and ``right`` columns right, filling with zeros.

    Negative values move up and left. Pixels pushed past the border are lost; the rows and columns
    they leave are set to 0 (the background of both datasets). Works on any array whose last two
    axes are height and width, so it shifts images and feature maps alike.

    Parameters
    ----------
    x : ndarray, shape (..., H, W)
    down, right : int
        Shift in pixels; a shift of the full height (or width) or more leaves only zeros.

    Returns
    -------
    ndarray, shape (..., H, W), same dtype as ``x`` (a new array)

    Examples
    --------
    >>> shift_images(np.arange(1, 10).reshape(3, 3), 1, -1)
    array([[0, 0, 0],
           [2, 3, 0],
           [5, 6, 0]])
    """
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"need an array of images (..., H, W), got shape {x.shape}")
    for name, value in (("down", down), ("right", right)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be an integer number of pixels, got {value!r}")
    H, W = x.shape[-2:]
    out = np.zeros_like(x)
    if abs(down) >= H or abs(right) >= W:
        return out
    # Source rows [max(0, -down), H - max(0, down)) land at [max(0, down), H - max(0, -down)).
    rows_from = slice(max(0, -down), H - max(0, down))
    rows_to = slice(max(0, down), H - max(0, -down))
    cols_from = slice(max(0, -right), W - max(0, right))
    cols_to = slice(max(0, right), W - max(0, -right))
    out[..., rows_to, cols_to] = x[..., rows_from, cols_from]
    return out
