"""Section 4: what the stripe images look like.

The linear baseline that tests "non-trivial for a linear classifier" is a training run
(:class:`tinycnn.reports.baseline.SoftmaxRegression`); its table is built with the other run tables
in :mod:`tinycnn.reports.experiments`.
"""

from __future__ import annotations

import numpy as np

from tinycnn import reference

__all__ = ["sample_grid"]


def sample_grid(n_classes: int, per_class: int, seed: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """The first ``per_class`` training images of each class of the dataset with ``seed``.

    Returns
    -------
    images : ndarray, shape (n_classes, per_class, S, S)
    class_names : tuple of str
    """
    data = reference.make_dataset(n_classes=n_classes, seed=seed)
    images = []
    for label in range(n_classes):
        (index,) = np.nonzero(data.y_train == label)
        if len(index) < per_class:
            raise ValueError(f"class {label} has {len(index)} training images, need {per_class}")
        images.append(data.x_train[index[:per_class], 0])  # per_class, S, S
    return np.stack(images), data.class_names
