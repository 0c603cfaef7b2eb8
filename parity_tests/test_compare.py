"""The comparison helper and the tolerance table catch what they must, in the right order."""

from __future__ import annotations

import numpy as np
import pytest
from tinycnn.parity_tests.compare import assert_close, compare, max_relative_error
from tinycnn.parity_tests.tolerances import (
    GRADCHECK_MAX_REL_ERROR,
    OPS,
    TRAJECTORY_FINAL_PARAMS_RTOL,
    TRAJECTORY_STEP_LOSS_RTOL,
    Tolerance,
    tolerance,
)

EXPECTED = np.array([[1.0, -2.0], [3.0, 4.0]])


def _compare(actual, expected=EXPECTED, op="conv2d"):
    return compare(actual, expected, op=op, stage="backward dx", case_id="demo-case")


def test_shape_is_checked_before_dtype():
    result = _compare(np.zeros((2, 3), dtype=np.float32))
    assert not result.passed
    assert result.message == "demo-case: backward dx: shape (2, 3), expected (2, 2)"


def test_dtype_is_checked_before_values():
    result = _compare(EXPECTED.astype(np.float32))
    assert result.message == "demo-case: backward dx: dtype float32, expected float64"


def test_values_beyond_tolerance_fail_with_the_worst_entry_named():
    actual = EXPECTED.copy()
    actual[1, 0] += 1e-6
    result = _compare(actual)
    assert not result.passed
    assert result.max_rel_error == pytest.approx(1e-6 / 4)
    assert "demo-case: backward dx: values differ" in result.message
    assert "index (1, 0)" in result.message


def test_rounding_noise_passes_in_float64():
    result = _compare(EXPECTED * (1 + 1e-14))
    assert result.passed, result.message


def test_float32_gets_its_own_looser_tolerance():
    expected = EXPECTED.astype(np.float32)
    actual = expected * np.float32(1 + 1e-6)
    assert compare(actual, expected, op="conv2d", stage="forward", case_id="c").passed
    assert not compare(actual, expected, op="relu", stage="forward", case_id="c").passed


def test_non_finite_output_fails_and_is_named():
    actual = EXPECTED.copy()
    actual[0, 1] = np.nan
    result = _compare(actual)
    assert not result.passed and result.max_rel_error == float("inf")
    assert "non-finite" in result.message and "(0, 1)" in result.message


def test_a_non_array_output_fails_clearly():
    result = _compare(None)
    assert result.message == "demo-case: backward dx: returned NoneType, expected a NumPy array"


def test_numpy_and_python_scalars_compare_as_0d_arrays():
    expected = np.asarray(2.5)
    assert compare(
        np.float64(2.5), expected, op="softmax_cross_entropy", stage="forward loss", case_id="c"
    ).passed
    assert compare(
        2.5, expected, op="softmax_cross_entropy", stage="forward loss", case_id="c"
    ).passed
    assert not compare(
        np.float32(2.5), expected, op="softmax_cross_entropy", stage="forward loss", case_id="c"
    ).passed


def test_assert_close_raises_with_the_message():
    with pytest.raises(AssertionError, match="demo: forward: shape"):
        assert_close(np.zeros(3), np.zeros(4), op="relu", stage="forward", case_id="demo")


def test_max_relative_error_is_relative_to_the_largest_expected_magnitude():
    assert max_relative_error(EXPECTED, EXPECTED) == 0.0
    assert max_relative_error(EXPECTED + 0.04, EXPECTED) == pytest.approx(0.01)
    # An all-zero expectation falls back to the absolute difference.
    assert max_relative_error(np.array([0.0, 0.5]), np.zeros(2)) == 0.5
    with pytest.raises(ValueError, match="shapes differ"):
        max_relative_error(np.zeros(2), np.zeros(3))


@pytest.mark.parametrize("op", OPS)
def test_table_has_every_op_in_both_dtypes(op):
    f64, f32 = tolerance(op, np.float64), tolerance(op, "float32")
    assert isinstance(f64, Tolerance) and f64.rtol <= 1e-10
    assert f32.rtol >= f64.rtol and f32.reason


def test_model_and_training_entries_are_there_for_the_lead():
    assert GRADCHECK_MAX_REL_ERROR == 1e-7
    assert TRAJECTORY_STEP_LOSS_RTOL["float64"] == 1e-9
    assert TRAJECTORY_FINAL_PARAMS_RTOL["float64"] == 1e-8
    assert tolerance("model", np.dtype("float32")).reason


def test_unknown_op_or_dtype_is_a_value_error():
    with pytest.raises(ValueError, match="conv3d"):
        tolerance("conv3d", "float64")
    with pytest.raises(ValueError, match="float16"):
        tolerance("relu", np.float16)


# --- special values: same positions of NaN, +inf and -inf; finite entries within tolerance ---

SPECIAL = np.array([1.0, np.nan, np.inf, -np.inf, -2.0])


@pytest.mark.parametrize(
    "actual",
    [
        [1.0, np.nan, np.inf, -np.inf, -2.0],  # identical
        [1.0 + 1e-14, np.nan, np.inf, -np.inf, -2.0],  # rounding noise in a finite entry
        [1.0, -np.nan, np.inf, -np.inf, -2.0],  # a NaN is a NaN, whatever its sign bit
    ],
)
def test_special_values_at_the_expected_positions_pass(actual):
    result = _compare(np.array(actual), SPECIAL)
    assert result.passed, result.message


@pytest.mark.parametrize(
    ("actual", "index"),
    [
        ([1.0, 0.0, np.inf, -np.inf, -2.0], 1),  # a finite number where NaN is expected
        ([1.0, np.nan, np.nan, -np.inf, -2.0], 2),  # NaN where inf is expected
        ([1.0, np.nan, -np.inf, -np.inf, -2.0], 2),  # -inf where +inf is expected
        ([1.0, np.nan, np.inf, -1e300, -2.0], 3),  # huge but finite where -inf is expected
        ([np.nan, np.nan, np.inf, -np.inf, -2.0], 0),  # NaN where a number is expected
        ([1.0, np.nan, np.inf, -np.inf, np.inf], 4),  # inf where a number is expected
    ],
)
def test_special_values_out_of_place_fail_and_the_first_is_named(actual, index):
    result = _compare(np.array(actual), SPECIAL)
    assert not result.passed and result.max_rel_error == float("inf")
    assert "non-finite" in result.message and f"index ({index},)" in result.message


def test_finite_entries_beside_special_values_keep_their_tolerance_and_scale():
    # The scale is the largest FINITE expected magnitude (2.0), not inf.
    actual = SPECIAL.copy()
    actual[4] += 1e-6
    result = _compare(actual, SPECIAL)
    assert not result.passed and result.max_rel_error == pytest.approx(1e-6 / 2)
    assert "index (4,)" in result.message
    assert max_relative_error(SPECIAL, SPECIAL) == 0.0


def test_the_sign_of_zero_is_not_compared():
    assert _compare(np.array([-0.0, 0.0]), np.array([0.0, -0.0]), op="relu").passed


def test_the_oracle_works_after_torch_testing_disables_global_flags():
    # The OpInfo module imports torch.testing._internal, which forbids plain assignments to
    # torch.backends flags for the rest of the session; the oracle must still switch oneDNN off
    # for special-value cases (found in CI: every later op test failed).
    import subprocess
    import sys

    code = (
        "import torch.testing._internal.common_utils\n"
        "from tinycnn.parity_tests.cases import CASES\n"
        "from tinycnn.parity_tests.torch_oracle import expected_outputs\n"
        "case = next(c for c in CASES if c.special_tags)\n"
        "print(sorted(expected_outputs(case)))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
