"""reference.functional: loop versions agree with the fast ones; bad calls fail with one line.

Parity with PyTorch on its OpInfo samples is in ``parity_tests/test_functional_opinfo.py`` (slow);
the checks here need no PyTorch and run in the default suite.
"""

from __future__ import annotations

import numpy as np
import pytest
from tinycnn.reference import functional as F

RNG_SEED = 12

# (input shape, weight shape, keyword arguments): dilation, groups, tuple strides, "same".
CONV_CASES = {
    "dilation-2x3-stride-2": ((2, 3, 9, 8), (4, 3, 2, 3), {"stride": 2, "dilation": (2, 3)}),
    "groups-2-padding-1x2": ((2, 4, 6, 5), (6, 2, 3, 3), {"padding": (1, 2), "groups": 2}),
    "depthwise-stride-3x1": ((1, 3, 7, 7), (3, 1, 3, 2), {"stride": (3, 1), "groups": 3}),
    "same-even-kernel-dilated": ((2, 2, 6, 5), (2, 2, 2, 4), {"padding": "same", "dilation": 2}),
    "unbatched-valid": ((3, 5, 6), (2, 3, 2, 2), {"padding": "valid"}),
}


@pytest.mark.parametrize("case", list(CONV_CASES), ids=str)
def test_conv2d_loops_agree_with_vectorized(case):
    x_shape, w_shape, kwargs = CONV_CASES[case]
    rng = np.random.default_rng(RNG_SEED)
    x, w, b = rng.normal(size=x_shape), rng.normal(size=w_shape), rng.normal(size=w_shape[0])
    y = F.conv2d(x, w, b, **kwargs)
    np.testing.assert_allclose(F.conv2d_loops(x, w, b, **kwargs), y, rtol=1e-12, atol=1e-12)
    dy = rng.normal(size=y.shape)
    for loop, fast in zip(
        F.conv2d_backward_loops(dy, x, w, b, **kwargs),
        F.conv2d_backward(dy, x, w, b, **kwargs),
        strict=True,
    ):
        np.testing.assert_allclose(loop, fast, rtol=1e-12, atol=1e-12)


def test_conv2d_groups_are_independent_convolutions():
    # Group g of a grouped convolution is an ordinary convolution of input block g.
    rng = np.random.default_rng(RNG_SEED)
    x, w, b = rng.normal(size=(2, 4, 6, 6)), rng.normal(size=(6, 2, 3, 3)), rng.normal(size=6)
    y = F.conv2d(x, w, b, padding=1, groups=2)
    for g in range(2):
        block = F.conv2d(x[:, 2 * g : 2 * g + 2], w[3 * g : 3 * g + 3], b[3 * g : 3 * g + 3], 1, 1)
        np.testing.assert_allclose(y[:, 3 * g : 3 * g + 3], block, rtol=1e-12)


def test_conv2d_same_padding_keeps_size_and_puts_the_extra_zero_after():
    x = np.arange(5.0).reshape(1, 1, 1, 5)
    w = np.array([1.0, 10.0]).reshape(1, 1, 1, 2)  # even kernel: one zero of padding, after
    y = F.conv2d(x, w, padding="same")
    np.testing.assert_array_equal(y.ravel(), [10.0, 21.0, 32.0, 43.0, 4.0])


POOL_CASES = {
    "ceil-padding-dilation": ((2, 2, 7, 8), {"kernel_size": 3, "stride": 2, "padding": 1,
                                              "dilation": (2, 1), "ceil_mode": True}),
    "tuple-kernel-default-stride": ((1, 3, 6, 7), {"kernel_size": (3, 2)}),
    "unbatched-overlapping": ((2, 5, 5), {"kernel_size": 2, "stride": 1, "padding": 1}),
}  # fmt: skip


@pytest.mark.parametrize("case", list(POOL_CASES), ids=str)
def test_max_pool2d_loops_agree_with_vectorized_ties_and_nan_included(case):
    shape, kwargs = POOL_CASES[case]
    rng = np.random.default_rng(RNG_SEED)
    x = rng.integers(0, 3, size=shape).astype(float)  # ties on purpose
    x.reshape(-1)[::7] = np.nan
    x.reshape(-1)[::11] = -np.inf
    out, indices = F.max_pool2d(x, **kwargs, return_indices=True)
    loop_out, loop_indices = F.max_pool2d_loops(x, **kwargs, return_indices=True)
    np.testing.assert_array_equal(loop_out, out)
    np.testing.assert_array_equal(loop_indices, indices)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("divisor_override", [None, -3])
def test_avg_pool2d_loops_agree_with_vectorized(count_include_pad, divisor_override):
    x = np.random.default_rng(RNG_SEED).normal(size=(2, 2, 7, 6))
    kwargs = {"kernel_size": (3, 2), "stride": 2, "padding": 1, "ceil_mode": True}
    kwargs |= {"count_include_pad": count_include_pad, "divisor_override": divisor_override}
    np.testing.assert_allclose(F.avg_pool2d_loops(x, **kwargs), F.avg_pool2d(x, **kwargs), 1e-13)


def test_pool_output_size_ceil_mode_rule():
    assert F.pool_output_size(6, 3, 2, 0) == 2
    assert F.pool_output_size(6, 3, 2, 0, ceil_mode=True) == 3
    # A 4th window would start in the right padding: PyTorch drops it.
    assert F.pool_output_size(5, 2, 2, 1, ceil_mode=True) == 3
    assert F.pool_output_size(9, 3, 1, 1, dilation=4) == 3


def test_backward_passes_are_adjoint_to_forward_passes():
    # <dy, f(x)> is linear in x for conv (no bias), avg pooling and linear: its gradient is the
    # backward pass, so <backward(dy), x> == <dy, forward(x)> exactly up to rounding.
    rng = np.random.default_rng(RNG_SEED)
    x, w = rng.normal(size=(2, 4, 8, 7)), rng.normal(size=(6, 2, 3, 2))
    conv = {"stride": (2, 1), "padding": (2, 1), "dilation": (1, 2), "groups": 2}
    dy = rng.normal(size=F.conv2d(x, w, **conv).shape)
    dx, dw, db = F.conv2d_backward(dy, x, w, **conv)
    assert db is None
    assert np.isclose((dy * F.conv2d(x, w, **conv)).sum(), (dx * x).sum(), rtol=1e-12)
    assert np.isclose((dy * F.conv2d(x, w, **conv)).sum(), (dw * w).sum(), rtol=1e-12)
    pool = {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}
    dy = rng.normal(size=F.avg_pool2d(x, **pool).shape)
    dx = F.avg_pool2d_backward(dy, x, **pool)
    assert np.isclose((dy * F.avg_pool2d(x, **pool)).sum(), (dx * x).sum(), rtol=1e-12)


def test_cross_entropy_matches_its_definition():
    rng = np.random.default_rng(RNG_SEED)
    logits, labels = rng.normal(size=(5, 4)), np.array([0, 3, 1, -100, 2])
    weight = np.array([1.0, 2.0, 0.5, 1.5])
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    kept = labels != -100
    nll = -log_p[kept, labels[kept]] * weight[labels[kept]]
    smooth = -(log_p[kept] * weight).sum(axis=1)
    expected = (0.9 * nll + 0.1 / 4 * smooth).sum() / weight[labels[kept]].sum()
    loss = F.cross_entropy(logits, labels, weight, label_smoothing=0.1)
    assert np.isclose(loss, expected, rtol=1e-13)


BAD_CALLS = {
    "groups-do-not-divide": (
        lambda: F.conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 1, 3, 3)), groups=2),
        "groups=2 must divide",
    ),
    "same-with-stride": (
        lambda: F.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), stride=2, padding="same"),
        "padding='same' needs stride 1",
    ),
    "kernel-too-large": (
        lambda: F.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), dilation=2),
        "larger than the padded input",
    ),
    "pool-padding-over-half": (
        lambda: F.max_pool2d(np.ones((1, 1, 5, 5)), 3, padding=2),
        "at most half the kernel",
    ),
    "divisor-zero": (
        lambda: F.avg_pool2d(np.ones((1, 1, 4, 4)), 2, divisor_override=0),
        "divisor_override must be a nonzero int",
    ),
    "label-out-of-range": (
        lambda: F.cross_entropy(np.ones((2, 3)), np.array([0, 3])),
        "target 3 is out of bounds for 3 classes",
    ),
    "smoothing-above-one": (
        lambda: F.cross_entropy(np.ones((2, 3)), np.array([0, 1]), label_smoothing=1.5),
        "label_smoothing must lie in",
    ),
    "linear-features": (
        lambda: F.linear(np.ones((2, 3)), np.ones((4, 5))),
        "must end in in_features=5",
    ),
    "mixed-dtypes": (
        lambda: F.linear(np.ones((2, 3), np.float32), np.ones((4, 3))),
        "use one dtype",
    ),
    # Dilation 2 at padding 1 on a 1-pixel-high input: the only window reads rows -1 and 1.
    "max-pool-window-all-padding": (
        lambda: F.max_pool2d(np.ones((1, 1, 1, 2)), (2, 1), (2, 1), (1, 0), (2, 1), True),
        "^max_pool2d: .*output row 0 reads only padding",
    ),
    "max-pool-backward-window-all-padding": (
        lambda: F.max_pool2d_backward(
            np.ones((1, 1, 1, 2)), np.ones((1, 1, 1, 2)), (2, 1), (2, 1), (1, 0), (2, 1), True
        ),
        "^max_pool2d_backward: .*output row 0 reads only padding",  # its own name (review 3)
    ),
    "stride-zero": (
        lambda: F.avg_pool2d(np.ones((1, 1, 4, 4)), 2, stride=(0, 1)),
        "stride must be >= 1",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CALLS), ids=str)
def test_bad_calls_raise_one_line_value_errors(case):
    call, message = BAD_CALLS[case]
    with pytest.raises(ValueError, match=message) as error:
        call()
    assert "\n" not in str(error.value)
