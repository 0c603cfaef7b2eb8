"""The one table of tolerances for every parity comparison, keyed by op and dtype.

A comparison passes when the largest absolute difference is within ``atol + rtol * scale``, where
``scale`` is the largest magnitude in the expected array (see `tinycnn.parity_tests.compare`).
Measuring against the array's scale, not element by element, keeps near-zero entries (a conv output
that happens to cancel to 1e-17) from turning rounding noise into a huge relative error.

float64 entries are tight (1e-10 relative or better): two correct float64 implementations differ
only by summation order. float32 entries are looser, each with a one-line reason; they sit at least
ten times above the largest difference measured between reference.ops and PyTorch on the catalogue
(conv2d 3e-7, linear 2e-7, softmax_cross_entropy 8e-8, maxpool2d 7e-8, relu exactly 0), leaving
room for other summation orders.

Examples
--------
>>> tolerance("conv2d", "float64").rtol
1e-10
>>> tolerance("trajectory_final_params", np.float64).rtol
1e-08
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    """Allowed difference: ``max|actual - expected| <= atol + rtol * max|expected|``.

    Attributes
    ----------
    rtol : float
        Relative to the largest magnitude of the expected array.
    atol : float
        Absolute floor; only matters when the expected array is (nearly) all zeros.
    reason : str
        One line saying why the value is what it is.
    """

    rtol: float
    atol: float
    reason: str = ""


# Ops of the contract, then the whole-model and training entries used by the lead's tests.
OPS = ("conv2d", "relu", "maxpool2d", "linear", "softmax_cross_entropy")
# Ops of reference.functional beyond the contract (the others reuse the contract's rows).
FUNCTIONAL_OPS = ("avg_pool2d",)
MODEL_KEYS = ("model", "trajectory_step_loss", "trajectory_final_params")

_FLOAT64_ARITHMETIC = "float64: correct implementations differ only by summation order (~1e-15)"

TOLERANCES: dict[tuple[str, str], Tolerance] = {
    # --- contract ops -------------------------------------------------------------------------
    ("conv2d", "float64"): Tolerance(1e-10, 1e-12, _FLOAT64_ARITHMETIC),
    ("conv2d", "float32"): Tolerance(
        1e-5,
        1e-6,
        "float32 sums of C*KH*KW products (N*H_out*W_out for dw) in another order than PyTorch's",
    ),
    ("relu", "float64"): Tolerance(0.0, 0.0, "no arithmetic: a comparison and a mask, exact"),
    ("relu", "float32"): Tolerance(0.0, 0.0, "no arithmetic: a comparison and a mask, exact"),
    ("maxpool2d", "float64"): Tolerance(1e-12, 1e-14, _FLOAT64_ARITHMETIC),
    ("maxpool2d", "float32"): Tolerance(
        1e-6,
        1e-7,
        "forward only selects values; backward adds overlapping windows' dy in any order",
    ),
    ("linear", "float64"): Tolerance(1e-10, 1e-12, _FLOAT64_ARITHMETIC),
    ("linear", "float32"): Tolerance(
        1e-5, 1e-6, "float32 matrix products of up to 64 terms, BLAS blocking order differs"
    ),
    ("softmax_cross_entropy", "float64"): Tolerance(1e-10, 1e-12, _FLOAT64_ARITHMETIC),
    ("softmax_cross_entropy", "float32"): Tolerance(
        1e-5,
        1e-7,
        "float32 exp/log and a batch mean; the loss reaches 1e4 at |logits| 1e4, so relative",
    ),
    # --- reference.functional beyond the contract -----------------------------------------------
    ("avg_pool2d", "float64"): Tolerance(1e-12, 1e-14, _FLOAT64_ARITHMETIC),
    ("avg_pool2d", "float32"): Tolerance(
        1e-6,
        1e-7,
        "float32 window sums of up to kH*kW terms and one division; backward adds overlapping "
        "windows' shares in another order (measured 1e-7 on the OpInfo samples)",
    ),
    # --- whole model (logits, loss, every parameter gradient; the lead's tests) ---------------
    ("model", "float64"): Tolerance(1e-10, 1e-12, _FLOAT64_ARITHMETIC),
    ("model", "float32"): Tolerance(
        1e-4, 1e-6, "float32 errors of conv, pool, dense and softmax add up along the chain"
    ),
    # --- training trajectory: same init, data and batch order in both backends ----------------
    ("trajectory_step_loss", "float64"): Tolerance(
        1e-9, 1e-12, "issue 2: the loss at every step agrees to 1e-9 relative in float64"
    ),
    ("trajectory_step_loss", "float32"): Tolerance(
        5e-4,
        1e-6,
        "float32 rounding is fed back by every SGD step and grows: measured 1e-6 after 20 epochs, "
        "6e-5 after 80 (MLP)",
    ),
    ("trajectory_final_params", "float64"): Tolerance(
        1e-8, 1e-12, "issue 2: final parameters agree to 1e-8 (relative to the largest) in float64"
    ),
    ("trajectory_final_params", "float32"): Tolerance(
        1e-4,
        1e-6,
        "float32 rounding is fed back by every SGD step and grows: measured 3e-7 after 20 epochs, "
        "5e-6 after 80 (MLP)",
    ),
}

# Two-sided finite differences (eps 1e-5) against the analytic gradient, float64 only:
# relative error ||a - n|| / (||a|| + ||n||) must stay below this (the lecture's "good" band).
GRADCHECK_EPS = 1e-5
GRADCHECK_MAX_REL_ERROR = 1e-7

# The same numbers by name, for the training-trajectory tests.
TRAJECTORY_STEP_LOSS_RTOL = {
    dtype: TOLERANCES[("trajectory_step_loss", dtype)].rtol for dtype in ("float64", "float32")
}
TRAJECTORY_FINAL_PARAMS_RTOL = {
    dtype: TOLERANCES[("trajectory_final_params", dtype)].rtol for dtype in ("float64", "float32")
}


def dtype_name(dtype: object) -> str:
    """Return ``"float64"`` or ``"float32"`` for a dtype given as a string, type or np.dtype.

    Raises
    ------
    ValueError
        If the dtype is not float32 or float64.
    """
    name = np.dtype(dtype).name  # accepts "float64", np.float64, np.dtype("float64"), float
    if name not in ("float32", "float64"):
        raise ValueError(f"tolerances exist for float32 and float64 only, not {name}")
    return name


def tolerance(op: str, dtype: object) -> Tolerance:
    """Look up the tolerance for one op (or model/trajectory key) in one dtype.

    Parameters
    ----------
    op : str
        One of `OPS`, `FUNCTIONAL_OPS` or `MODEL_KEYS`.
    dtype : str, type or numpy.dtype
        float32 or float64.

    Returns
    -------
    Tolerance

    Raises
    ------
    ValueError
        If the op or the dtype is not in the table.
    """
    name = dtype_name(dtype)
    if op not in OPS + FUNCTIONAL_OPS + MODEL_KEYS:
        known = ", ".join(OPS + FUNCTIONAL_OPS + MODEL_KEYS)
        raise ValueError(f"no tolerance for op {op!r}; known: {known}")
    return TOLERANCES[(op, name)]
