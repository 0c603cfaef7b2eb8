"""Section 5: the gradient check, per parameter tensor, with the lecture's bands.

The lecture's rule: relative error below 1e-7 is perfect, 1e-7 to 1e-5 acceptable, above 1e-3 a
bug. A check that always says "perfect" proves nothing, so the table also checks a TinyCNN whose
convolution backward pass returns the kernel gradient flipped (a classic bug) and shows where
that lands.
"""

from __future__ import annotations

import types

import pandas as pd
from tinycnn.reference import ops
from tinycnn.reference.gradcheck import error_band, gradient_check

from tinycnn import reference

__all__ = ["BATCH_SIZE", "BUGGY_MODEL", "buggy_conv_ops", "gradient_check_table"]

BUGGY_MODEL = "TinyCNN, flipped kernel gradient"
BATCH_SIZE = 8  # images the checked loss averages over


def buggy_conv_ops() -> types.SimpleNamespace:
    """The reference ops with a classic convolution bug: the kernel gradient comes out flipped.

    The lecture's warning ("conv backward passes involve indexing and flipping") made concrete:
    ``dw`` is returned rotated by 180 degrees, which is only right for symmetric gradients.
    """
    functions = {name: getattr(ops, name) for name in ops.CONTRACT_FUNCTIONS}

    def conv2d_backward_flipped(dy, x, w, b, stride=1, padding=0):
        dx, dw, db = ops.conv2d_backward(dy, x, w, b, stride, padding)
        return dx, dw[:, :, ::-1, ::-1].copy(), db  # the bug: a flip that belongs elsewhere

    functions["conv2d_backward"] = conv2d_backward_flipped
    return types.SimpleNamespace(**functions)


def gradient_check_table(
    seed: int, n_samples: int = BATCH_SIZE, n_classes: int = 3, mlp_hidden: int = 18
) -> pd.DataFrame:
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
    DataFrame with ``model``, ``parameter``, ``shape``, ``rel_error``, ``band`` (the lecture's
    name for the error: perfect, acceptable, suspicious or bug; "kink" when every unit's step
    crosses a kink) and ``kink_units`` (units left out of the error because their finite-difference
    step crosses a kink of ReLU or a max-pool choice; see ``reference.gradcheck``).
    """
    data = reference.make_dataset(n_classes=n_classes, n_train=n_samples, n_val=0, seed=seed)
    x, labels = data.x_train, data.y_train
    models = {
        "TinyCNN": reference.TinyCNN(n_classes=n_classes, seed=seed),
        f"MLP ({mlp_hidden} hidden)": reference.MLP(mlp_hidden, n_classes, seed=seed),
        BUGGY_MODEL: reference.TinyCNN(n_classes=n_classes, seed=seed, ops=buggy_conv_ops()),
    }
    rows = []
    for name, model in models.items():
        shapes = {key: value.shape for key, value in model.params.items()}
        for parameter, error in gradient_check(model, x, labels).items():
            rows.append(
                {
                    "model": name,
                    "parameter": parameter,
                    "shape": " x ".join(map(str, shapes[parameter])),
                    "rel_error": float(error),
                    "band": error_band(error),
                    "kink_units": error.n_kink,
                }
            )
    return pd.DataFrame(rows)
