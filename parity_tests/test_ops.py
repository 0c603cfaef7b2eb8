"""Every op of the contract, forward and backward, against PyTorch on the whole catalogue.

`assert_matches_torch` checks shape, then dtype, then values (tolerance table), and that no input
was modified. The tests after the parametrized ones pin down the contract's edge cases by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from tinycnn.parity_tests.cases import cases_for, make_inputs
from tinycnn.parity_tests.torch_oracle import assert_matches_torch

# Where IEEE arithmetic creates a NaN (inf - inf, 0 * inf) NumPy warns and PyTorch does not; the
# special-value cases compare values, so that one warning is allowed there (and only there).
IEEE_WARNING = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")


def over(op: str, *, tag: str | None = None) -> pytest.MarkDecorator:
    """Parametrize a test over the catalogue's cases of ``op`` (with ``tag``), ids readable."""
    selected = [
        pytest.param(case, marks=[IEEE_WARNING] if case.special_tags else [], id=case.id)
        for case in cases_for(op)
        if tag is None or tag in case.tags
    ]
    return pytest.mark.parametrize("case", selected)


@over("conv2d")
def test_conv2d_forward(ops, case):
    assert_matches_torch(ops, case, "forward")


@over("conv2d")
def test_conv2d_backward(ops, case):
    assert_matches_torch(ops, case, "backward")


@over("relu")
def test_relu_forward(ops, case):
    assert_matches_torch(ops, case, "forward")


@over("relu")
def test_relu_backward(ops, case):
    assert_matches_torch(ops, case, "backward")


@over("maxpool2d")
def test_maxpool2d_forward(ops, case):
    assert_matches_torch(ops, case, "forward")


@over("maxpool2d")
def test_maxpool2d_backward(ops, case):
    assert_matches_torch(ops, case, "backward")


@over("linear")
def test_linear_forward(ops, case):
    assert_matches_torch(ops, case, "forward")


@over("linear")
def test_linear_backward(ops, case):
    assert_matches_torch(ops, case, "backward")


@over("softmax_cross_entropy")
def test_softmax_cross_entropy_forward(ops, case):
    assert_matches_torch(ops, case, "forward")


@over("softmax_cross_entropy")
def test_softmax_cross_entropy_backward(ops, case):
    assert_matches_torch(ops, case, "backward")


# --- edge cases of the contract, checked by hand -------------------------------------------------


@over("relu", tag="exact-zeros")
def test_relu_backward_is_zero_where_x_is_not_positive(ops, case):
    inputs = make_inputs(case)
    dx = ops.relu_backward(inputs["dy"], inputs["x"])
    x, dy = inputs["x"], inputs["dy"]
    assert np.all(dx[x <= 0] == 0), f"{case.id}: dx is not 0 where x <= 0 (x == 0 included)"
    assert np.array_equal(dx[x > 0], dy[x > 0]), f"{case.id}: dx differs from dy where x > 0"


# 1x1x3x3 input, 2x2 windows at stride 1: every window holds a tie, and its first maximum in
# row-major order is a different pixel each time. Worked out by hand:
#   window (0,0) [[1,1],[1,1]] -> (0,0);  window (0,1) [[1,0],[1,1]] -> (0,1)
#   window (1,0) [[1,1],[0,1]] -> (1,0);  window (1,1) [[1,1],[1,1]] -> (1,1)
_TIES_X = [[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0]]
_TIES_DY = [[10.0, 20.0], [30.0, 40.0]]
_TIES_DX = [[10.0, 20.0, 0.0], [30.0, 40.0, 0.0], [0.0, 0.0, 0.0]]


@pytest.mark.contract_case(function="maxpool2d_backward", op="maxpool2d", tags=("ties",))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_maxpool2d_backward_routes_ties_to_first_maximum(ops, dtype):
    x = np.array(_TIES_X, dtype=dtype).reshape(1, 1, 3, 3)
    dy = np.array(_TIES_DY, dtype=dtype).reshape(1, 1, 2, 2)
    dx = ops.maxpool2d_backward(dy, x, size=2, stride=1)
    expected = np.array(_TIES_DX, dtype=dtype).reshape(1, 1, 3, 3)
    assert np.array_equal(dx, expected), f"ties must go to the first maximum; got\n{dx[0, 0]}"


@pytest.mark.contract_case(function="maxpool2d_backward", op="maxpool2d")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_maxpool2d_backward_adds_up_overlapping_windows(ops, dtype):
    # The centre pixel is the maximum of all four 2x2 windows: it collects all four gradients.
    x = np.zeros((1, 1, 3, 3), dtype=dtype)
    x[0, 0, 1, 1] = 5.0
    dy = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=dtype).reshape(1, 1, 2, 2)
    dx = ops.maxpool2d_backward(dy, x, size=2, stride=1)
    expected = np.zeros((1, 1, 3, 3), dtype=dtype)
    expected[0, 0, 1, 1] = 10.0
    assert np.array_equal(dx, expected), f"overlapping windows must add up; got\n{dx[0, 0]}"


@over("softmax_cross_entropy", tag="large-logits")
def test_softmax_cross_entropy_is_finite_for_large_logits(ops, case):
    inputs = make_inputs(case)
    loss, dlogits = ops.softmax_cross_entropy(inputs["logits"], inputs["labels"])
    assert np.isfinite(loss) and np.all(np.isfinite(dlogits)), f"{case.id}: inf or NaN"


# --- impossible arguments are outside the contract ---------------------------------------------
# Stride 0, negative padding, a kernel larger than the padded input, mismatched shapes: no
# catalogue case passes them, and an implementation may raise any exception (or return anything)
# for them; `tinycnn check` does not call them either (README, "The op contract"). The reference's
# own ValueError for each is tested in tests/test_reference_api.py, which --impl does not touch.


# --- special values: the examples of issue 11, with PyTorch's answers stated by hand -------------


@pytest.mark.outside_contract  # special values: the reference's, not --impl's
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    ("window", "winner"),
    [
        ([1.0, np.nan, 0.5, 2.0], 1),  # the NaN wins over the larger 2.0
        ([np.nan, 1.0, np.nan, 2.0], 2),  # several NaN: the last one
        ([np.nan, np.nan, np.nan, np.nan], 3),
        ([1.0, np.inf, np.inf, 2.0], 1),  # equal infinities tie: the first
        ([-np.inf, -np.inf, -np.inf, -np.inf], 0),
        ([-0.0, 0.0, -1.0, -2.0], 0),  # -0.0 == 0.0: a tie, the first
    ],
)
def test_maxpool2d_backward_sends_a_nan_window_to_its_last_nan(ops, dtype, window, winner):
    x = np.array(window, dtype=dtype).reshape(1, 1, 2, 2)
    dy = np.ones((1, 1, 1, 1), dtype=dtype)
    expected = np.zeros(4, dtype=dtype)
    expected[winner] = 1
    y = ops.maxpool2d_forward(x, size=2, stride=2)
    assert np.array_equal(y.reshape(-1), [np.max(window)], equal_nan=True)
    dx = ops.maxpool2d_backward(dy, x, size=2, stride=2)
    assert np.array_equal(dx.reshape(-1), expected), f"window {window}: got {dx.reshape(-1)}"


def _conv_special(dtype, where: str):
    # Issue 11, item 2: x (1, 1, 8, 8), w (1, 1, 3, 3), dy all ones, one special value.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1, 8, 8)).astype(dtype)
    w = rng.standard_normal((1, 1, 3, 3)).astype(dtype)
    b = np.zeros(1, dtype=dtype)
    dy = np.ones((1, 1, 6, 6), dtype=dtype)
    {"w": w, "dy": dy, "x": x}[where][0, 0, 0, 0] = np.inf if where == "w" else np.nan
    return dy, x, w, b


@pytest.mark.outside_contract  # special values: the reference's, not --impl's
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv2d_backward_keeps_one_special_value_where_it_belongs(ops, dtype):
    # PyTorch's counts (issue 11): an infinite weight makes 36 entries of dx inf and none NaN;
    # a NaN in dy makes the 9 entries of dx under its window NaN; a NaN corner pixel makes 1
    # entry of dw NaN (the one weight that ever meets it).
    dx, dw, _ = ops.conv2d_backward(*_conv_special(dtype, "w"))
    assert (np.isinf(dx).sum(), np.isnan(dx).sum(), np.isnan(dw).sum()) == (36, 0, 0)
    dx, dw, db = ops.conv2d_backward(*_conv_special(dtype, "dy"))
    assert np.isnan(dx).sum() == 9 and np.isnan(dx[0, 0, :3, :3]).all()
    assert np.isnan(dw).all() and np.isnan(db).all()  # every weight meets that dy entry
    dx, dw, _ = ops.conv2d_backward(*_conv_special(dtype, "x"))
    assert np.isnan(dw).sum() == 1 and np.isnan(dw[0, 0, 0, 0]) and np.isfinite(dx).all()


@pytest.mark.outside_contract  # special values: the reference's, not --impl's
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_relu_backward_follows_pytorch_at_nan_and_infinite_values(ops, dtype):
    # Issue 11, item 6: zero exactly where x <= 0 (whatever dy is), dy passed where x is NaN.
    x = np.array([np.nan, -1.0, 0.0, -0.0, 1.0, np.inf, -np.inf], dtype=dtype)
    dy = np.array([1.0, np.inf, np.nan, np.inf, 2.0, 3.0, np.nan], dtype=dtype)
    dx = ops.relu_backward(dy, x)
    assert np.array_equal(dx, np.array([1.0, 0, 0, 0, 2.0, 3.0, 0], dtype=dtype))


@pytest.mark.parametrize("label_dtype", [np.int8, np.uint8, np.int32, np.uint32, np.uint64])
def test_softmax_cross_entropy_takes_labels_of_any_integer_dtype(ops, label_dtype):
    # Issue 11, item 4: equal logits over 3 classes give log 3 whatever the labels' dtype.
    loss, dlogits = ops.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1], dtype=label_dtype))
    assert loss == pytest.approx(np.log(3), rel=1e-15)
    assert np.allclose(dlogits, [[-1 / 3, 1 / 6, 1 / 6], [1 / 6, -1 / 3, 1 / 6]], rtol=1e-15)


@pytest.mark.parametrize("order", ["fortran", "transposed"])
def test_softmax_cross_entropy_subtracts_the_one_hot_whatever_the_layout(ops, order):
    # Issue 11, item 5: the one-hot subtraction went into a reshaped copy and was lost.
    logits = np.array([[2.0, -1.0, 0.5], [0.0, 3.0, 1.0]])
    logits = np.asfortranarray(logits) if order == "fortran" else np.ascontiguousarray(logits.T).T
    labels = np.array([2, 0])
    _, dlogits = ops.softmax_cross_entropy(logits, labels)
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = (softmax - np.eye(3)[labels]) / 2
    assert np.allclose(dlogits, expected, rtol=1e-14, atol=0), dlogits


@pytest.mark.outside_contract  # special values: the reference's, not --impl's
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # 0 * inf
def test_conv2d_forward_multiplies_padding_zeros_by_an_infinite_weight_as_torch_float64(ops):
    # The rule stated in conv2d_forward's docstring, against PyTorch's float64 CPU path: every
    # output whose window reaches into the padding multiplies the infinite weight by 0.
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((1, 1, 5, 5)), rng.standard_normal((1, 1, 3, 3)), np.zeros(1)
    w[0, 0, 0, 0] = np.inf  # the top-left weight meets the padding in the top row and column
    y = ops.conv2d_forward(x, w, b, stride=1, padding=1)
    expected = F.conv2d(*map(torch.from_numpy, (x, w, b)), padding=1).numpy()
    assert np.array_equal(np.isnan(y), np.isnan(expected))
    assert np.isnan(y[0, 0, 0, :]).all() and np.isnan(y[0, 0, :, 0]).all()
    assert np.isinf(y[0, 0, 1:, 1:]).all()
