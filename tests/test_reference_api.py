"""The NumPy reference's public API: parameter counts, errors, loops, training, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
from tinycnn.reference import ops
from tinycnn.reference.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

from tinycnn import reference


def test_tinycnn_has_the_lecture_parameter_count():
    model = reference.TinyCNN()
    # The lecture's breakdown: 3 x (1 x 3 x 3) + 3 conv, 27 x 3 + 3 dense.
    assert model.n_parameters == (3 * (1 * 3 * 3) + 3) + (27 * 3 + 3) == 114
    assert [row["n_parameters"] for row in model.layer_summary()] == [0, 30, 0, 0, 0, 84]
    assert [row["output_shape"] for row in model.layer_summary()] == [
        (1, 8, 8),
        (3, 6, 6),
        (3, 6, 6),
        (3, 3, 3),
        (27,),
        (3,),
    ]


def test_mlp_parameter_count_follows_the_formula():
    for hidden, classes in [(1, 3), (8, 4), (18, 3)]:
        assert reference.MLP(hidden, classes).n_parameters == 65 * hidden + (hidden + 1) * classes


def test_initialisation_is_deterministic_and_uses_torch_bounds():
    a, b, c = reference.TinyCNN(seed=1), reference.TinyCNN(seed=1), reference.TinyCNN(seed=2)
    for key in a.params:
        np.testing.assert_array_equal(a.params[key], b.params[key])
    assert not np.array_equal(a.params["conv.weight"], c.params["conv.weight"])
    assert np.abs(a.params["conv.weight"]).max() <= 1 / 3  # 1/sqrt(fan_in = 9)
    assert np.abs(a.params["fc.weight"]).max() <= 1 / np.sqrt(27)


@pytest.mark.parametrize(
    ("W", "K", "P", "S", "expected"),
    [
        (5, 3, 0, 1, 3),
        (5, 3, 1, 1, 5),
        (6, 3, 0, 2, 2),  # the lecture's three cases
        (8, 3, 0, 1, 6),
        (8, 3, 1, 1, 8),  # its "Pause & Think"
        (7, 3, 0, 2, 3),
        (4, 4, 0, 3, 1),  # floor: the last position is skipped
    ],
)
def test_conv_output_size(W, K, P, S, expected):
    assert ops.conv_output_size(W, K, P, S) == expected


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ops.conv_output_size(4, 5, 0, 1), "kernel 5 does not fit input 4 with padding 0"),
        (lambda: ops.conv_output_size(8, 3, 0, 0), "stride must be >= 1, got 0"),
        (lambda: ops.conv_output_size(8, 3, -1, 1), "padding must be >= 0, got -1"),
        (
            lambda: ops.conv2d_forward(np.zeros((1, 1, 4, 4)), np.zeros((2, 1, 5, 5)), np.zeros(2)),
            "kernel 5 does not fit input 4 with padding 0",
        ),
        (
            lambda: ops.conv2d_forward(np.zeros((1, 2, 4, 4)), np.zeros((2, 1, 3, 3)), np.zeros(2)),
            "w has 1 input channels but x has 2",
        ),
        (
            lambda: ops.conv2d_forward(np.zeros((2, 4, 4)), np.zeros((2, 1, 3, 3)), np.zeros(2)),
            r"x must be 4-D \(N, C, H, W\), got shape \(2, 4, 4\)",
        ),
        (
            lambda: ops.conv2d_forward(np.zeros((1, 1, 4, 4)), np.zeros((2, 1, 3, 3)), np.zeros(3)),
            r"b must have shape \(2,\)",
        ),
        (
            lambda: ops.conv2d_backward(
                np.zeros((1, 2, 4, 4)), np.zeros((1, 1, 4, 4)), np.zeros((2, 1, 3, 3)), np.zeros(2)
            ),
            r"dy must have shape \(1, 2, 2, 2\)",
        ),
        (lambda: ops.maxpool2d_forward(np.zeros((1, 1, 3, 3)), 2, 0), "stride must be >= 1, got 0"),
        (
            lambda: ops.maxpool2d_forward(np.zeros((1, 1, 1, 3)), 2, 2),
            "kernel 2 does not fit input 1 with padding 0",
        ),
        (
            lambda: ops.linear_forward(np.zeros((2, 5)), np.zeros((3, 4)), np.zeros(3)),
            "x has 5 features but w expects 4",
        ),
        (
            lambda: ops.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3])),
            r"labels must lie in \[0, 2\] for 3 classes",
        ),
        (
            lambda: ops.softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0])),
            "labels must be an integer NumPy array",
        ),
        (
            lambda: ops.conv2d_forward(
                np.zeros((1, 1, 4, 4), np.float32), np.zeros((2, 1, 3, 3)), np.zeros(2)
            ),
            "arrays must share one dtype",
        ),
        (lambda: reference.TinyCNN(kernel_size=9), "kernel 9 does not fit input 8 with padding 0"),
        (
            lambda: reference.TinyCNN().forward(np.zeros((2, 8, 8))),
            r"TinyCNN expects images of shape \(N, 1, 8, 8\), got \(2, 8, 8\)",
        ),
        (lambda: reference.MLP(0), "hidden must be a positive integer, got 0"),
        (lambda: reference.SGD({}, lr=0), "learning rate must be > 0"),
        (lambda: reference.TrainConfig(batch_size=0), "batch_size must be >= 1"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_bad_input_raises_a_value_error_naming_the_numbers(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_loop_versions_equal_the_vectorized_ones():
    rng = np.random.default_rng(0)
    for stride, padding, kernel in [(1, 0, (3, 3)), (2, 1, (3, 2)), (3, 2, (1, 4))]:
        x, w = rng.normal(size=(2, 3, 7, 6)), rng.normal(size=(4, 3, *kernel))
        b = rng.normal(size=4)
        y = ops.conv2d_forward(x, w, b, stride, padding)
        np.testing.assert_allclose(
            ops.conv2d_forward_loops(x, w, b, stride, padding), y, rtol=1e-12, atol=1e-12
        )
        dy = rng.normal(size=y.shape)
        for loop, fast in zip(
            ops.conv2d_backward_loops(dy, x, w, b, stride, padding),
            ops.conv2d_backward(dy, x, w, b, stride, padding),
            strict=True,
        ):
            np.testing.assert_allclose(loop, fast, rtol=1e-12, atol=1e-12)
    for size, stride in [(2, 2), (3, 2), (2, 1)]:
        x = rng.integers(0, 3, size=(2, 3, 7, 5)).astype(float)  # ties on purpose
        y = ops.maxpool2d_forward(x, size, stride)
        np.testing.assert_array_equal(ops.maxpool2d_forward_loops(x, size, stride), y)
        dy = rng.normal(size=y.shape)
        np.testing.assert_allclose(
            ops.maxpool2d_backward_loops(dy, x, size, stride),
            ops.maxpool2d_backward(dy, x, size, stride),
            rtol=1e-12,
        )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maxpool2d_backward_first_maximum_and_last_nan_in_long_windows(dtype):
    # maxpool2d_backward finds the first maximum with np.argmax, which runs a vectorized loop on
    # long windows: ties between 0.0 and -0.0, infinities and several NaN per window must still
    # go where the loop version sends them (first maximum; last NaN), at every window length.
    rng = np.random.default_rng(3)
    values = np.array([0.0, -0.0, -1.0, np.inf, -np.inf, np.nan])
    for size, stride in [(2, 2), (3, 1), (5, 5), (8, 3), (16, 16)]:
        for p_nan in (0.0, 0.02, 0.3):
            p = np.array([0.3, 0.3, 0.2, 0.05, 0.15, 0.0]) * (1 - p_nan)
            p[-1] = p_nan
            x = rng.choice(values, size=(2, 3, 17, 19), p=p).astype(dtype)
            H_out, W_out = (17 - size) // stride + 1, (19 - size) // stride + 1
            dy = rng.normal(size=(2, 3, H_out, W_out)).astype(dtype)
            np.testing.assert_array_equal(
                ops.maxpool2d_backward(dy, x, size, stride),
                ops.maxpool2d_backward_loops(dy, x, size, stride),
                err_msg=f"size {size} stride {stride} NaN share {p_nan}",
            )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maxpool2d_backward_finds_one_nan_anywhere_among_infinities_and_huge_values(dtype):
    # maxpool2d_backward redoes only the windows holding NaN, after one test on all values: a
    # single NaN at any position, among infinities and values whose squares overflow (so a
    # test by a dot product of the values with themselves would warn), must reach its
    # window's rule, with no warning (the test suite turns warnings into errors).
    rng = np.random.default_rng(5)
    for N in (1, 2, 3, 5):  # 36 to 180 window values: every remainder of the BLAS loops
        big = np.finfo(dtype).max
        x = rng.choice(np.array([1.0, -2.0, big, -big, np.inf, -np.inf]), size=(N, 1, 6, 6))
        x = x.astype(dtype)
        dy = rng.normal(size=(N, 1, 3, 3)).astype(dtype)
        for position in range(x.size):
            with_nan = x.copy()
            with_nan.reshape(-1)[position] = np.nan
            np.testing.assert_array_equal(
                ops.maxpool2d_backward(dy, with_nan, 2, 2),
                ops.maxpool2d_backward_loops(dy, with_nan, 2, 2),
                err_msg=f"N {N}, NaN at {position}",
            )


def test_maxpool2d_backward_plan_cache_serves_every_dtype_and_shape_and_still_checks():
    # maxpool2d_backward checks its arguments cheaply and takes its index arrays from a plan
    # cached per (shape, size, stride): the plan must serve both dtypes and several shapes in
    # any order, and once a plan exists, bad calls must still fail with the full checks' errors.
    rng = np.random.default_rng(6)
    for shape, size, stride in [
        ((4, 2, 6, 6), 2, 2),
        ((3, 2, 7, 5), 3, 2),
        ((4, 2, 6, 6), 2, 2),
        ((4, 2, 6, 6), 2, 1),
        ((0, 2, 6, 6), 2, 2),
    ]:
        for dtype in (np.float64, np.float32):
            x = rng.integers(0, 3, size=shape).astype(dtype)  # ties on purpose
            H_out, W_out = (shape[2] - size) // stride + 1, (shape[3] - size) // stride + 1
            dy = rng.normal(size=(*shape[:2], H_out, W_out)).astype(dtype)
            np.testing.assert_array_equal(
                ops.maxpool2d_backward(dy, x, np.int64(size), stride),
                ops.maxpool2d_backward_loops(dy, x, size, stride),
            )
    x, dy = np.zeros((4, 2, 6, 6)), np.zeros((4, 2, 3, 3))
    ops.maxpool2d_backward(dy, x, 2, 2)  # the plan of this geometry exists now
    bad_calls = [
        ((dy.astype(np.float32), x, 2, 2), "dy is float32 but the forward input is float64"),
        ((dy[:, :, :2], x, 2, 2), r"dy must have shape \(4, 2, 3, 3\), got \(4, 2, 2, 3\)"),
        ((dy.tolist(), x, 2, 2), "dy must be a NumPy array, got list"),
        ((dy, x.astype(np.int64), 2, 2), "x must be float32 or float64, got int64"),
        ((dy, x[0], 2, 2), r"x must be 4-D \(N, C, H, W\), got shape \(2, 6, 6\)"),
        ((dy, x, 2.0, 2), "size 2.0, stride 2: kernel size K must be an integer, got 2.0"),
        ((dy, x, 2, True), "stride S must be an integer, got True"),
        ((dy, x, 7, 1), "size 7, stride 1: kernel 7 does not fit input 6 with padding 0"),
    ]
    for arguments, message in bad_calls:
        with pytest.raises(ValueError, match=message):
            ops.maxpool2d_backward(*arguments)


def test_epoch_batches_visit_every_sample_once_in_a_seeded_order():
    batches = reference.epoch_batches(100, 32, epoch=3, seed=7)
    assert [len(b) for b in batches] == [32, 32, 32, 4]
    assert sorted(np.concatenate(batches).tolist()) == list(range(100))
    again = reference.epoch_batches(100, 32, epoch=3, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    other = reference.epoch_batches(100, 32, epoch=4, seed=7)
    assert not np.array_equal(batches[0], other[0])


def test_training_history_snapshots_and_determinism():
    data = reference.make_dataset(n_train=96, n_val=48)
    config = reference.TrainConfig(epochs=4, snapshot_epochs=(0, 2, 4))
    model = reference.TinyCNN(seed=1)
    start = {k: v.copy() for k, v in model.params.items()}
    history = reference.train(model, data, config)
    assert len(history.val_acc) == len(history.train_loss) == 5
    assert len(history.step_loss) == 4 * 3
    assert sorted(history.snapshots) == [0, 2, 4]
    np.testing.assert_array_equal(history.snapshots[0]["conv.weight"], start["conv.weight"])
    np.testing.assert_array_equal(history.snapshots[4]["fc.bias"], model.params["fc.bias"])
    again = reference.train(reference.TinyCNN(seed=1), data, config)
    assert again.step_loss == history.step_loss
    assert history.train_loss[-1] < history.train_loss[0]


def test_checkpoint_round_trip(tmp_path):
    model = reference.MLP(5, 4, seed=3, dtype=np.float32)
    path = tmp_path / "mlp.npz"
    save_checkpoint(path, model.params, "mlp", model.config)
    params, kind, config = load_checkpoint(path)
    assert kind == "mlp" and config == model.config
    for key, value in model.params.items():
        assert params[key].dtype == np.float32
        np.testing.assert_array_equal(params[key], value)


@pytest.mark.parametrize("content", [None, b"not a zip", b"PK\x03\x04 broken"])
def test_unreadable_checkpoints_raise_checkpoint_error(tmp_path, content):
    path = tmp_path / "weights.npz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"weights\.npz"):
        load_checkpoint(path)


def test_reference_never_imports_torch():
    """`reference` is NumPy only: importing all of it must not load torch."""
    import subprocess
    import sys

    code = (
        "import sys, tinycnn.reference.ops, tinycnn.reference.models, "
        "tinycnn.reference.train, tinycnn.reference.gradcheck, tinycnn.reference.checkpoint; "
        "print('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


# --- the reference refuses impossible arguments with ValueError (outside the contract) ---


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
def test_the_reference_refuses_impossible_arguments_with_value_error(name):
    # Not part of the student contract (README): students may raise anything for these.
    function, arrays, keywords = IMPOSSIBLE_CALLS[name]
    with pytest.raises(ValueError):
        getattr(ops, function)(*arrays, **keywords)
