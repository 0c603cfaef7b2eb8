"""Section 5: the gradient check, per parameter tensor, with the lecture's bands.

The lecture's rule: relative error below 1e-7 is perfect, 1e-7 to 1e-5 acceptable, above 1e-3 a
bug. A check that always says "perfect" proves nothing, so the table also checks a TinyCNN whose
ReLU backward pass forgets its mask (a classic bug) and shows where that lands.
"""

from __future__ import annotations

import types

import numpy as np
import pandas as pd

import reference
from reference import ops
from reference.gradcheck import error_band, gradient_check

__all__ = ["buggy_relu_ops", "gradient_check_table"]


def buggy_relu_ops() -> types.SimpleNamespace:
    """The reference ops with a wrong ``relu_backward``: it passes the gradient everywhere."""
    functions = {name: getattr(ops, name) for name in ops.CONTRACT_FUNCTIONS}

    def relu_backward_without_mask(dy, x):
        return dy.copy()  # the bug: negative inputs should get zero gradient

    functions["relu_backward"] = relu_backward_without_mask
    return types.SimpleNamespace(**functions)


def gradient_check_table(seed: int, n_samples: int = 8, n_classes: int = 3,
                         mlp_hidden: int = 18) -> pd.DataFrame:
    """Relative error of backprop against finite differences for every parameter tensor.

    Parameters
    ----------
    seed : int
        Seed of the data and of the initial weights.
    n_samples : int, default 8
        Size of the batch the loss is averaged over.
    n_classes : int, default 3
    mlp_hidden : int, default 18

    Returns
    -------
    DataFrame with ``model``, ``parameter``, ``shape``, ``rel_error`` and ``band`` (the lecture's
    name for the error: perfect, acceptable, suspicious or bug).
    """
    data = reference.make_dataset(n_classes=n_classes, n_train=n_samples, n_val=0, seed=seed)
    x, labels = data.x_train, data.y_train
    models = {
        "TinyCNN": reference.TinyCNN(n_classes=n_classes, seed=seed),
        f"MLP ({mlp_hidden} hidden)": reference.MLP(mlp_hidden, n_classes, seed=seed),
        "TinyCNN, buggy ReLU backward": reference.TinyCNN(n_classes=n_classes, seed=seed,
                                                           ops=buggy_relu_ops()),
    }
    rows = []
    for name, model in models.items():
        shapes = {key: value.shape for key, value in model.params.items()}
        for parameter, error in gradient_check(model, x, labels).items():
            rows.append({"model": name, "parameter": parameter,
                         "shape": " x ".join(map(str, shapes[parameter])),
                         "rel_error": error, "band": error_band(error)})
    return pd.DataFrame(rows)


def worst_error(table: pd.DataFrame, model: str) -> float:
    """Largest relative error over the parameter tensors of ``model``."""
    errors = table.loc[table["model"] == model, "rel_error"]
    if errors.empty:
        raise ValueError(f"no gradient check rows for model {model!r}")
    return float(np.max(errors))
