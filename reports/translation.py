"""Section 10b: what translation equivariance buys, measured on stripes and on digits.

The lecture's comparison table says a CNN is translation-equivariant and an MLP is not. Three
measurements turn that into numbers:

- **equivariance of the convolution layer**, exactly: ``conv(shift(x))`` against
  ``shift(conv(x))`` (:func:`equivariance_errors`), at the positions the zero fill does not
  reach (the interior) and at those it does (the border);
- **accuracy under shifts**: models trained on patterns in a limited range of positions, tested
  on copies of the validation images shifted by 0 to :data:`MAX_SHIFT` pixels with zero fill
  (:func:`shift_accuracy_table`);
- **invariance of the whole model**: how often the predicted class survives the shift.

Shifts go in each of the four directions of :data:`DIRECTIONS`; the tables give each direction
and their average. Every function takes finished runs or arrays; none trains.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
from tinycnn.reference import ops
from tinycnn.reference.data import DatasetConfig, make_dataset, shift_images
from tinycnn.reports.experiments import accuracy_summary
from tinycnn.reports.runs import RunResult, load_data, trained_model

__all__ = [
    "DIRECTIONS",
    "MAX_SHIFT",
    "SHIFTS",
    "equivariance_errors",
    "equivariance_table",
    "ink_lost_table",
    "pooling_invariance_table",
    "position_table",
    "shift_accuracy_table",
    "shift_examples",
    "similar_mlp",
    "translation_summary",
    "unseen_position_table",
]

MAX_SHIFT = 3
SHIFTS = tuple(range(MAX_SHIFT + 1))
#: Unit steps ``(down, right)`` of the four directions a copy is shifted in.
DIRECTIONS = {"right": (0, 1), "left": (0, -1), "down": (1, 0), "up": (-1, 0)}

Layer = Callable[[np.ndarray], np.ndarray]


def equivariance_errors(layer: Layer, x: np.ndarray, down: int, right: int) -> dict[str, float]:
    """Compare ``layer(shift(x))`` with ``shift(layer(x))``, inside and at the border.

    ``layer`` maps images ``(N, C, H, W)`` to feature maps ``(N, F, H', W')`` whose positions
    move one for one with the input's: a stride-1 convolution without padding, or a ReLU after
    one. (Not a padded convolution: an output position next to the edge then reads padding on
    one side and a real pixel on the other, so the interior test below would not hold.) Both
    shifts fill with zeros (:func:`tinycnn.reference.shift_images`). An output position
    is *interior* when ``shift(layer(x))`` holds a real value there, not fill: its receptive
    field then lies in the part of the shifted image that came from ``x``, and an equivariant
    layer gives exactly the same value both ways. At the other positions (the *border*) the
    zero fill enters one side and not the other, so they differ even for a perfect convolution.

    Parameters
    ----------
    layer : callable
    x : ndarray, shape (N, C, H, W)
    down, right : int
        The shift in pixels (negative: up, left).

    Returns
    -------
    dict with ``interior_error`` and ``border_error`` (largest absolute difference; 0.0 when
    there are no such positions) and ``interior_fraction`` (share of output positions that are
    interior).
    """
    shifted_output = layer(shift_images(x, down, right))  # N, F, H', W'
    output_shifted = shift_images(layer(x), down, right)  # N, F, H', W'
    H, W = shifted_output.shape[-2:]
    interior = shift_images(np.ones((H, W)), down, right) == 1  # H', W'
    difference = np.abs(shifted_output - output_shifted)

    def largest(mask: np.ndarray) -> float:
        return float(difference[..., mask].max()) if mask.any() else 0.0

    return {
        "interior_error": largest(interior),
        "border_error": largest(~interior),
        "interior_fraction": float(interior.mean()),
    }


def equivariance_table(
    weight: np.ndarray,
    bias: np.ndarray,
    images: np.ndarray,
    shifts: Sequence[int] = SHIFTS[1:],
) -> pd.DataFrame:
    """:func:`equivariance_errors` of a trained convolution layer, per shift and direction.

    Parameters
    ----------
    weight : ndarray, shape (F, 1, K, K)
    bias : ndarray, shape (F,)
    images : ndarray, shape (N, 1, S, S)

    Returns
    -------
    DataFrame with ``shift``, ``direction``, ``interior_error``, ``border_error`` and
    ``interior_fraction``.
    """

    def conv(x: np.ndarray) -> np.ndarray:
        return ops.conv2d_forward(x, weight, bias)  # N, F, S-K+1, S-K+1

    rows = []
    for shift in shifts:
        for direction, (down, right) in DIRECTIONS.items():
            errors = equivariance_errors(conv, images, shift * down, shift * right)
            rows.append({"shift": shift, "direction": direction, **errors})
    return pd.DataFrame(rows)


def pooling_invariance_table(
    weight: np.ndarray,
    bias: np.ndarray,
    images: np.ndarray,
    shifts: Sequence[int] = SHIFTS[1:],
) -> pd.DataFrame:
    """How much a shift changes a trained conv layer's features, before and after max pooling.

    Isolates what the pooling does: the same trained filters, the same images, with and without
    TinyCNN's 2x2 max pool. For features ``f`` (``relu(conv(x))``, or its pooled map) the change
    of an image is ``||f(shift(x)) - f(x)|| / ||f(x)||`` (Frobenius norms over all channels and
    positions; images whose features are all zero are left out); an invariant map has change 0.

    Parameters
    ----------
    weight : ndarray, shape (F, 1, K, K)
    bias : ndarray, shape (F,)
    images : ndarray, shape (N, 1, S, S), with ``S - K + 1`` even (TinyCNN: 8 and 3)

    Returns
    -------
    DataFrame with ``shift``, ``direction``, ``change_unpooled`` and ``change_pooled`` (means
    over the images).
    """

    def unpooled(x: np.ndarray) -> np.ndarray:
        return ops.relu_forward(ops.conv2d_forward(x, weight, bias))  # N, F, S-K+1, S-K+1

    def change(before: np.ndarray, after: np.ndarray) -> float:
        size = np.linalg.norm(before.reshape(len(before), -1), axis=1)
        moved = np.linalg.norm((after - before).reshape(len(before), -1), axis=1)
        return float(np.mean(moved[size > 0] / size[size > 0]))

    features = unpooled(images)
    pooled = ops.maxpool2d_forward(features, 2)
    rows = []
    for shift in shifts:
        for direction, (down, right) in DIRECTIONS.items():
            shifted = unpooled(shift_images(images, shift * down, shift * right))
            rows.append(
                {
                    "shift": shift,
                    "direction": direction,
                    "change_unpooled": change(features, shifted),
                    "change_pooled": change(pooled, ops.maxpool2d_forward(shifted, 2)),
                }
            )
    return pd.DataFrame(rows)


def _shifted_predictions(
    result: RunResult, shifts: Sequence[int]
) -> tuple[np.ndarray, dict[tuple[int, str], np.ndarray]]:
    """Labels and predictions of a run's model on shifted copies of its validation images."""
    data = load_data(result.spec)
    model = trained_model(result)
    predictions = {}
    for shift in shifts:
        for direction, (down, right) in DIRECTIONS.items():
            if shift == 0 and direction != next(iter(DIRECTIONS)):
                predictions[shift, direction] = predictions[0, next(iter(DIRECTIONS))]
                continue
            shifted = shift_images(data.x_val, shift * down, shift * right)  # N, 1, S, S
            predictions[shift, direction] = model.predict(shifted)
    return data.y_val, predictions


def shift_accuracy_table(
    configurations: Mapping[str, Sequence[RunResult]], shifts: Sequence[int] = SHIFTS
) -> pd.DataFrame:
    """Accuracy and prediction survival on shifted validation images, per run.

    Parameters
    ----------
    configurations : dict of label -> replicate runs
        Each run is tested on its own validation set (the data it was validated on).
    shifts : sequence of int

    Returns
    -------
    DataFrame, one row per (configuration, replicate, shift, direction): ``model``,
    ``replicate``, ``n_parameters``, ``shift``, ``direction``, ``accuracy`` (on the shifted
    copies) and ``survival`` (share of images whose predicted class is the same as for the
    unshifted image; 1 at shift 0).
    """
    rows = []
    for label, runs in configurations.items():
        for result in sorted(runs, key=lambda r: r.spec.replicate):
            labels, predictions = _shifted_predictions(result, shifts)
            unshifted = predictions[0, next(iter(DIRECTIONS))]
            for (shift, direction), predicted in predictions.items():
                rows.append(
                    {
                        "model": label,
                        "replicate": result.spec.replicate,
                        "n_parameters": result.n_parameters,
                        "shift": shift,
                        "direction": direction,
                        "accuracy": float(np.mean(predicted == labels)),
                        "survival": float(np.mean(predicted == unshifted)),
                    }
                )
    return pd.DataFrame(rows)


def translation_summary(per_run: pd.DataFrame) -> pd.DataFrame:
    """Per model and shift: accuracy and survival averaged over directions, then over seeds.

    Each seed's value is its mean over the four directions; ``mean``, ``min`` and ``max`` are over
    seeds, like every accuracy of the report.
    """
    by_seed = per_run.groupby(["model", "n_parameters", "shift", "replicate"], sort=False)[
        ["accuracy", "survival"]
    ].mean()
    summary = by_seed.groupby(["model", "n_parameters", "shift"], sort=False).agg(
        n_seeds=("accuracy", "size"),
        mean=("accuracy", "mean"),
        min=("accuracy", "min"),
        max=("accuracy", "max"),
        survival=("survival", "mean"),
        survival_min=("survival", "min"),
        survival_max=("survival", "max"),
    )
    return summary.reset_index()


def similar_mlp(
    cnn: Sequence[RunResult], mlps: Mapping[int, Sequence[RunResult]]
) -> tuple[int, float]:
    """The MLP width whose mean clean accuracy is closest to TinyCNN's (ties: the narrower).

    Returns ``(width, |difference in mean accuracy|)``.
    """
    target = accuracy_summary(cnn)["mean"]
    gaps = {width: abs(accuracy_summary(runs)["mean"] - target) for width, runs in mlps.items()}
    width = min(gaps, key=lambda w: (gaps[w], w))
    return width, gaps[width]


def shift_examples(image: np.ndarray, shifts: Sequence[int] = SHIFTS) -> np.ndarray:
    """One image ``(S, S)`` shifted right by each shift: ``(len(shifts), S, S)``, for a figure."""
    return np.stack([shift_images(image, 0, shift) for shift in shifts])


def position_table(datasets: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Where the patterns sit: percentiles of each training image's centre of mass.

    The centre of mass of an image ``x (S, S)`` is the mean row (and column) weighted by the
    pixel values (negative noise clipped to 0). It shows how limited the training positions are,
    against the 1-3 pixel shifts of the test.

    Parameters
    ----------
    datasets : dict of name -> images (N, 1, S, S)

    Returns
    -------
    DataFrame with ``data``, ``axis`` (row, column), ``p5``, ``median`` and ``p95`` (pixels from
    the top or left edge, 0-based) and ``centre`` (the image centre, ``(S - 1) / 2``).
    """
    rows = []
    for name, images in datasets.items():
        weights = np.clip(images[:, 0], 0, None)  # N, S, S
        S = weights.shape[-1]
        total = weights.sum(axis=(1, 2))  # N
        index = np.arange(S)
        centres = {
            "row": (weights.sum(axis=2) @ index) / total,  # N
            "column": (weights.sum(axis=1) @ index) / total,  # N
        }
        for axis, values in centres.items():
            p5, median, p95 = np.percentile(values, [5, 50, 95])
            rows.append(
                {
                    "data": name,
                    "axis": axis,
                    "p5": p5,
                    "median": median,
                    "p95": p95,
                    "centre": (S - 1) / 2,
                }
            )
    return pd.DataFrame(rows)


def ink_lost_table(
    datasets: Mapping[str, np.ndarray], shifts: Sequence[int] = SHIFTS[1:]
) -> pd.DataFrame:
    """How much of each image a shift pushes out of the frame.

    The ink of an image is the sum of its pixels (negative noise clipped to 0); *ink_lost* is the
    share of it gone after the shift, averaged over the images and the four directions. A shifted
    copy that lost much of its pattern is hard for any model, equivariant or not.

    Parameters
    ----------
    datasets : dict of name -> images (N, 1, S, S)

    Returns
    -------
    DataFrame with ``data``, ``shift`` and ``ink_lost`` (0 to 1).
    """
    rows = []
    for name, images in datasets.items():
        ink = np.clip(images, 0, None)  # N, 1, S, S
        total = ink.sum(axis=(1, 2, 3))  # N
        for shift in shifts:
            kept = [
                shift_images(ink, shift * down, shift * right).sum(axis=(1, 2, 3)) / total
                for down, right in DIRECTIONS.values()
            ]  # directions x N
            rows.append({"data": name, "shift": shift, "ink_lost": float(1 - np.mean(kept))})
    return pd.DataFrame(rows)


def unseen_position_table(
    config: DatasetConfig, shifts: Sequence[int] = SHIFTS[1:]
) -> pd.DataFrame:
    """How many shifted validation stripes sit where no training stripe was.

    Works on the noise-free patterns: the same ``config`` with ``noise_std=0`` draws the same
    stripes (each image's placement is drawn before its noise, and NumPy's ``Generator.normal``
    consumes the stream alike for any scale; a test checks this). A shifted copy is *unseen*
    when its pattern (pixels pushed out are lost) equals no training image's pattern.

    Parameters
    ----------
    config : DatasetConfig
        The stripes' settings (``tinycnn.reports.runs.CENTRED_STRIPES`` in section 10b).
    shifts : sequence of int
        Shift lengths in pixels, each applied in the four :data:`DIRECTIONS`.

    Returns
    -------
    DataFrame with ``shift`` and ``unseen`` (share of shifted copies, 0 to 1, over the
    validation images and the four directions).
    """
    clean = make_dataset(replace(config, noise_std=0.0))
    seen = {pattern.tobytes() for pattern in clean.x_train != 0}
    rows = []
    for shift in shifts:
        unseen = [
            pattern.tobytes() not in seen
            for down, right in DIRECTIONS.values()
            for pattern in shift_images(clean.x_val, shift * down, shift * right) != 0
        ]
        rows.append({"shift": shift, "unseen": float(np.mean(unseen))})
    return pd.DataFrame(rows)
