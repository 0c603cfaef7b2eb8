"""Every op of the contract, forward and backward, against PyTorch on the whole catalogue.

`assert_matches_torch` checks shape, then dtype, then values (tolerance table), and that no input
was modified. The tests after the parametrized ones pin down the contract's edge cases by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from tinycnn.parity_tests.cases import cases_for, make_inputs
from tinycnn.parity_tests.torch_oracle import assert_matches_torch


def over(op: str, *, tag: str | None = None) -> pytest.MarkDecorator:
    """Parametrize a test over the catalogue's cases of ``op`` (with ``tag``), ids readable."""
    selected = [case for case in cases_for(op) if tag is None or tag in case.tags]
    return pytest.mark.parametrize("case", selected, ids=str)


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


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_maxpool2d_backward_routes_ties_to_first_maximum(ops, dtype):
    x = np.array(_TIES_X, dtype=dtype).reshape(1, 1, 3, 3)
    dy = np.array(_TIES_DY, dtype=dtype).reshape(1, 1, 2, 2)
    dx = ops.maxpool2d_backward(dy, x, size=2, stride=1)
    expected = np.array(_TIES_DX, dtype=dtype).reshape(1, 1, 3, 3)
    assert np.array_equal(dx, expected), f"ties must go to the first maximum; got\n{dx[0, 0]}"


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


# --- impossible configurations raise ValueError --------------------------------------------------


def _arrays(*shapes: tuple[int, ...]) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal(shape) for shape in shapes]


IMPOSSIBLE_CALLS = {
    "conv-kernel-5-does-not-fit-input-3": (
        "conv2d_forward",
        _arrays((1, 1, 3, 3), (1, 1, 5, 5), (1,)),
        {"padding": 0},
    ),
    "conv-stride-0": ("conv2d_forward", _arrays((1, 1, 4, 4), (1, 1, 3, 3), (1,)), {"stride": 0}),
    "conv-padding-minus-1": (
        "conv2d_forward",
        _arrays((1, 1, 4, 4), (1, 1, 3, 3), (1,)),
        {"padding": -1},
    ),
    "conv-3-channels-for-2": ("conv2d_forward", _arrays((1, 2, 4, 4), (1, 3, 3, 3), (1,)), {}),
    "conv-x-rank-3": ("conv2d_forward", _arrays((2, 4, 4), (1, 2, 3, 3), (1,)), {}),
    "conv-backward-kernel-too-large": (
        "conv2d_backward",
        _arrays((1, 1, 1, 1), (1, 1, 3, 3), (1, 1, 5, 5), (1,)),
        {},
    ),
    "pool-window-3-on-input-2": ("maxpool2d_forward", _arrays((1, 1, 2, 2)), {"size": 3}),
    "pool-stride-0": ("maxpool2d_forward", _arrays((1, 1, 4, 4)), {"size": 2, "stride": 0}),
    "linear-4-features-for-3": ("linear_forward", _arrays((2, 4), (5, 3), (5,)), {}),
}


@pytest.mark.parametrize("name", IMPOSSIBLE_CALLS)
def test_impossible_configuration_raises_value_error(ops, name):
    function, arrays, keywords = IMPOSSIBLE_CALLS[name]
    with pytest.raises(ValueError):
        getattr(ops, function)(*arrays, **keywords)
