"""The one comparison helper: shape first, then dtype, then values, with the tolerance table.

Values: NaN, +inf and -inf must sit at exactly the positions where the expected array has them
(PyTorch's on the CPU, for the parity suite); the finite entries must agree within the tolerance
table, relative to the largest finite magnitude of the expected array. The sign of a zero is not
compared (``-0.0 == 0.0``, as IEEE 754 says).

NumPy only, reused by ``tinycnn check``. A failure message names the case and the stage
(``"conv-n2c3f4-h7w5-k3x2-s2-p1-f64: backward dx: ..."``) so a student knows where to look.

Examples
--------
>>> result = compare(np.ones(3), np.ones(3), op="relu", stage="forward", case_id="demo")
>>> result.passed, result.max_rel_error
(True, 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tinycnn.parity_tests.tolerances import Tolerance, tolerance


@dataclass(frozen=True)
class Comparison:
    """Outcome of one comparison.

    Attributes
    ----------
    passed : bool
    case_id : str
    stage : str
        Which output, e.g. ``"forward"``, ``"forward loss"``, ``"backward dw"``.
    max_rel_error : float or None
        `max_relative_error` of the values; None when shape or dtype already differed.
    message : str
        Empty when passed; otherwise one line naming the case, the stage and what differs.
    """

    passed: bool
    case_id: str
    stage: str
    max_rel_error: float | None
    message: str = ""


def max_relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Largest absolute difference divided by the largest finite magnitude in ``expected``.

    Dividing by the array's scale (not element by element) keeps entries that are nearly zero
    from turning rounding noise into a huge error. Special values must sit where ``expected`` has
    them: a NaN, +inf or -inf in one array where the other has anything else gives ``inf``; equal
    special values (NaN and NaN, inf and inf) count as no difference.

    Parameters
    ----------
    actual, expected : numpy.ndarray
        Same shape (any dtype; compared in float64).

    Returns
    -------
    float
        0.0 for identical arrays; the largest absolute difference if ``expected`` is all zeros
        (or has no finite entry).

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    largest, scale = _largest_difference_and_scale(actual, expected)
    return largest / scale if scale > 0 else largest


def _largest_difference_and_scale(actual: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    # (max |actual - expected| over the finite entries, max |finite expected|) in float64; inf
    # when a NaN, +inf or -inf of either array is not matched by the same value in the other.
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        raise ValueError(f"shapes differ: actual {actual.shape}, expected {expected.shape}")
    if actual.size == 0:
        return 0.0, 0.0
    finite = np.isfinite(expected)
    scale = float(np.max(np.abs(expected[finite]), initial=0.0))
    if _special_mismatch(actual, expected).any():
        return float("inf"), scale
    # Special values now match exactly (the same NaN, +inf and -inf positions): they contribute
    # no error; the rest are finite on both sides. Signs of zero are not compared (-0.0 == 0.0).
    difference = np.abs(actual[finite] - expected[finite])
    return float(np.max(difference, initial=0.0)), scale


def _special_mismatch(actual: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Where one array has NaN, +inf or -inf and the other does not have the same (float64 in)."""
    nan_actual, nan_expected = np.isnan(actual), np.isnan(expected)
    inf_actual, inf_expected = np.isinf(actual), np.isinf(expected)
    return (
        (nan_actual != nan_expected)
        | (inf_actual != inf_expected)
        | (inf_expected & inf_actual & (actual != expected))  # +inf where -inf is expected
    )


def compare(
    actual: object,
    expected: np.ndarray,
    *,
    op: str,
    stage: str,
    case_id: str,
    tol: Tolerance | None = None,
) -> Comparison:
    """Compare one output with its expected value: shape, then dtype, then values.

    Parameters
    ----------
    actual : numpy.ndarray or numpy scalar
        What the implementation returned. Python floats are accepted as float64 scalars.
    expected : numpy.ndarray
        The oracle's value; its dtype is the one ``actual`` must have.
    op : str
        Key of the tolerance table (``"conv2d"``, ..., ``"model"``).
    stage : str
        Named in messages, e.g. ``"backward dx"``.
    case_id : str
        Named in messages.
    tol : Tolerance, optional
        Overrides the table's ``tolerance(op, expected.dtype)``.

    Returns
    -------
    Comparison
    """
    expected = np.asarray(expected)
    where = f"{case_id}: {stage}"
    if not isinstance(actual, (np.ndarray, np.generic, float, int)) or isinstance(actual, bool):
        message = f"{where}: returned {type(actual).__name__}, expected a NumPy array"
        return Comparison(False, case_id, stage, None, message)
    actual = np.asarray(actual)
    if actual.shape != expected.shape:
        message = f"{where}: shape {actual.shape}, expected {expected.shape}"
        return Comparison(False, case_id, stage, None, message)
    if actual.dtype != expected.dtype:
        message = f"{where}: dtype {actual.dtype}, expected {expected.dtype}"
        return Comparison(False, case_id, stage, None, message)
    if tol is None:
        tol = tolerance(op, expected.dtype)
    largest, scale = _largest_difference_and_scale(actual, expected)
    error = largest / scale if scale > 0 else largest
    if largest <= tol.atol + tol.rtol * scale:
        return Comparison(True, case_id, stage, error)
    message = _describe_difference(actual, expected, error, tol, where)
    return Comparison(False, case_id, stage, error, message)


def _describe_difference(
    actual: np.ndarray, expected: np.ndarray, error: float, tol: Tolerance, where: str
) -> str:
    actual64 = actual.astype(np.float64)
    expected64 = expected.astype(np.float64)
    bad = _special_mismatch(actual64, expected64)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        count = int(bad.sum())
        return (
            f"{where}: {count} non-finite value(s) out of place (NaN and +-inf must sit where "
            f"the expected array has them), first at index {index}: got {actual[index]!r}, "
            f"expected {expected[index]!r}"
        )
    finite = np.isfinite(expected64)
    difference = np.where(finite, np.abs(actual64 - np.where(finite, expected64, 0.0)), 0.0)
    index = tuple(int(i) for i in np.unravel_index(np.argmax(difference), difference.shape))
    scale = np.max(np.abs(expected64[finite]), initial=0.0)
    count = int(np.sum(difference > tol.atol + tol.rtol * scale))
    return (
        f"{where}: values differ, max relative error {error:.3g} "
        f"(tolerance rtol {tol.rtol:g}, atol {tol.atol:g}); {count} of {actual.size} "
        f"entries off; worst at index {index}: got {actual64[index]:.10g}, "
        f"expected {expected64[index]:.10g}"
    )


def assert_close(
    actual: object,
    expected: np.ndarray,
    *,
    op: str,
    stage: str,
    case_id: str,
    tol: Tolerance | None = None,
) -> None:
    """Like `compare`, but raise ``AssertionError`` with the message when it fails."""
    result = compare(actual, expected, op=op, stage=stage, case_id=case_id, tol=tol)
    if not result.passed:
        raise AssertionError(result.message)
