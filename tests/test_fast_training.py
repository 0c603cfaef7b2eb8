"""The fast training path (``reference/fast.py``) gives the numbers of the public ops, bit for bit.

Every comparison here is exact: float64 bits (the sign of a zero included), step losses with
``==``. The expected side is always the public ops composed by ``TinyCNN.loss_and_gradients``
(``train(..., fast=False)``), never the fast path's own output.
"""

from __future__ import annotations

import numpy as np
import pytest
from tinycnn.reference import fast, ops

from tinycnn import reference

# (model factory, dataset settings): the default TinyCNN, a 5x5 kernel with 3x3 pooling on
# 12x12 images and 4 classes, a 2x2 kernel whose 7x7 output loses a row and column to 2x2
# pooling, and the MLP.
GEOMETRIES = {
    "tinycnn": (lambda seed, dtype: reference.TinyCNN(seed=seed, dtype=dtype), {}),
    "tinycnn-k5-pool3": (
        lambda seed, dtype: reference.TinyCNN(
            4, 5, 4, image_size=12, pool_size=3, seed=seed, dtype=dtype
        ),
        {"image_size": 12, "n_classes": 4},
    ),
    "tinycnn-k2-odd": (
        lambda seed, dtype: reference.TinyCNN(2, 2, 3, image_size=8, seed=seed, dtype=dtype),
        {},
    ),
    "mlp": (lambda seed, dtype: reference.MLP(18, seed=seed, dtype=dtype), {}),
}


def bits(a: np.ndarray) -> np.ndarray:
    """The raw bits of a float array: equal bits means equal numbers, zero signs and NaNs."""
    a = np.ascontiguousarray(a)
    return a.view(np.dtype(f"u{a.dtype.itemsize}"))


def dataset(seed: int, **settings) -> reference.Dataset:
    return reference.make_dataset(n_train=100, n_val=30, seed=seed, **settings)


def train_both(make_model, data, config):
    """Histories and models of a fast run and a public-ops run from the same start."""
    fast_model, public_model = make_model(), make_model()
    fast_history = reference.train(fast_model, data, config, fast=True)
    public_history = reference.train(public_model, data, config, fast=False)
    return fast_model, fast_history, public_model, public_history


def assert_same_runs(fast_model, fast_history, public_model, public_history):
    for field in ("step_loss", "train_loss", "train_acc", "val_loss", "val_acc"):
        np.testing.assert_array_equal(
            bits(np.array(getattr(fast_history, field))),
            bits(np.array(getattr(public_history, field))),
            err_msg=field,
        )
    for key in public_model.params:
        np.testing.assert_array_equal(
            bits(fast_model.params[key]), bits(public_model.params[key]), err_msg=key
        )


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("batch_size", [1, 13, 32])
def test_fast_training_equals_the_public_ops_bit_for_bit(geometry, seed, batch_size):
    """float64, momentum and weight decay; 100 samples, so the last batch of 13 or 32 is short."""
    make, settings = GEOMETRIES[geometry]
    config = reference.TrainConfig(
        epochs=2, batch_size=batch_size, seed=seed, weight_decay=1e-3, snapshot_epochs=(1,)
    )
    runs = train_both(lambda: make(seed + 1, np.float64), dataset(seed, **settings), config)
    assert_same_runs(*runs)
    assert len(runs[1].step_loss) == 2 * -(-100 // batch_size)
    for key in runs[2].params:
        np.testing.assert_array_equal(
            bits(runs[1].snapshots[1][key]), bits(runs[3].snapshots[1][key])
        )


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_step_gradients_equal_the_public_ops(geometry, dtype):
    """Loss and every gradient of one step, against ``loss_and_gradients`` of the public ops."""
    make, settings = GEOMETRIES[geometry]
    data = dataset(3, **settings)
    x, labels = data.x_train.astype(dtype), data.y_train
    model = make(4, dtype)
    expected_loss, expected = model.loss_and_gradients(x[10:42], labels[10:42])

    steps = fast.TrainingSteps(model, x, labels, lr=0.1)
    loss = steps._plan(32).loss_and_gradients(np.arange(10, 42))
    steps.close()
    assert loss == expected_loss
    for key, gradient in expected.items():
        np.testing.assert_array_equal(bits(steps._grads[key]), bits(gradient), err_msg=key)


def tinycnn_plan(batch_size: int):
    """A TinyCNN plan of ``batch_size``, as the steps build it."""
    data = dataset(0)
    return fast.TrainingSteps(reference.TinyCNN(), data.x_train, data.y_train, lr=0.1)._plan(
        batch_size
    )


@pytest.mark.parametrize("batch_size", [1, 2, 5, 32, 100])
def test_both_convolution_routes_give_the_public_numbers(batch_size, monkeypatch):
    """The "rows" route where the plan chose it, and the "patches" route forced everywhere."""
    config = reference.TrainConfig(epochs=1, batch_size=batch_size, seed=2)
    data = dataset(5)
    assert_same_runs(*train_both(lambda: reference.TinyCNN(seed=3), data, config))
    monkeypatch.setattr(fast._TinyCNNPlan, "_rows_agree_with_patches", lambda plan: False)
    assert tinycnn_plan(batch_size).route == "patches"
    assert_same_runs(*train_both(lambda: reference.TinyCNN(seed=3), data, config))


def test_the_patch_route_of_the_weight_gradient_gives_the_public_numbers(monkeypatch):
    """Above the dense size limit the public conv2d_backward works on patches; so does the plan."""
    monkeypatch.setattr(ops, "DENSE_BACKWARD_MAX_ENTRIES", 0)
    plan = tinycnn_plan(32)
    assert not plan.dense and plan.route == "patches"
    config = reference.TrainConfig(epochs=1, batch_size=32, seed=2, weight_decay=1e-2)
    assert_same_runs(*train_both(lambda: reference.TinyCNN(seed=3), dataset(5), config))


def test_the_route_check_catches_a_convolution_that_differs():
    """A band with its weights one place off must fail the plan's own comparison."""
    plan = tinycnn_plan(32)
    assert plan.route == "rows" or plan._rows_agree_with_patches() is False
    plan.band_weight = np.roll(plan.band_weight, 1)
    assert plan._rows_agree_with_patches() is False


@pytest.mark.parametrize(
    "poison", ["nan-pixel", "inf-pixel", "neg-inf-pixel", "diverging"], ids=str
)
def test_special_values_follow_the_public_ops(poison):
    """NaN and infinity in the data, or a run that overflows: the public ops' numbers, exactly."""
    data = dataset(1)
    lr = 0.05
    if poison == "diverging":
        lr = 1e150  # float64 overflows within a few steps
    else:
        value = {"nan-pixel": np.nan, "inf-pixel": np.inf, "neg-inf-pixel": -np.inf}[poison]
        data.x_train[3, 0, 2, 5] = value
    config = reference.TrainConfig(epochs=2, batch_size=16, seed=1, lr=lr)
    with np.errstate(all="ignore"):  # both paths meet overflow and invalid operations
        runs = train_both(lambda: reference.TinyCNN(seed=2), data, config)
    assert not np.isfinite(runs[3].step_loss).all() or not all(
        np.isfinite(p).all() for p in runs[2].params.values()
    ), "the poison must reach the public run, or this test proves nothing"
    assert_same_runs(*runs)


def test_a_non_finite_step_is_recomputed_by_the_public_ops():
    data = dataset(1)
    data.x_train[0, 0, 0, 0] = np.nan
    model = reference.TinyCNN()
    steps = fast.TrainingSteps(model, data.x_train, data.y_train, lr=0.05)
    steps(np.array([1, 2, 3]))
    assert steps.fallback_steps == 0
    with np.errstate(invalid="ignore"):
        steps(np.array([0, 1]))
    assert steps.fallback_steps == 1
    steps.close()


def test_models_the_fast_path_does_not_know_train_on_their_own_ops():
    class Deeper(reference.TinyCNN):
        pass

    assert fast.supports(reference.TinyCNN()) and fast.supports(reference.MLP())
    assert not fast.supports(Deeper())
    assert not fast.supports(reference.TinyCNN(ops=type(ops)("copy_of_ops")))
    with pytest.raises(ValueError, match="fast training path runs TinyCNN and MLP"):
        fast.TrainingSteps(Deeper(), np.zeros((2, 1, 8, 8)), np.zeros(2, int), lr=0.1)


def test_training_keeps_the_models_own_parameter_arrays():
    """Arrays taken from model.params before training hold the trained values afterwards."""
    model = reference.TinyCNN(seed=1)
    before = dict(model.params)
    reference.train(model, dataset(0), reference.TrainConfig(epochs=1))
    assert all(model.params[key] is before[key] for key in before)
    assert all(array.base is None for array in model.params.values())

    public = reference.TinyCNN(seed=1)
    reference.train(public, dataset(0), reference.TrainConfig(epochs=1), fast=False)
    for key in before:
        np.testing.assert_array_equal(bits(before[key]), bits(public.params[key]))


def test_bad_training_data_is_refused_once_with_a_clear_message():
    model = reference.TinyCNN()
    x = np.zeros((4, 1, 8, 8))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\] for 3 classes"):
        fast.TrainingSteps(model, x, np.array([0, 1, 2, 3]), lr=0.1)
    with pytest.raises(ValueError, match="labels must be 4 integers"):
        fast.TrainingSteps(model, x, np.zeros(4), lr=0.1)
    with pytest.raises(ValueError, match=r"images of shape \(N, 1, 8, 8\)"):
        fast.TrainingSteps(model, np.zeros((4, 1, 9, 9)), np.zeros(4, int), lr=0.1)
    assert isinstance(model.params["conv.weight"], np.ndarray)  # untouched by the failures
    assert model.params["conv.weight"].base is None


def test_a_minibatch_index_outside_the_training_set_is_an_index_error():
    """Indices are checked once per step (the label gather); the other gathers rely on it."""
    data = dataset(0)
    for model in (reference.TinyCNN(), reference.MLP()):
        steps = fast.TrainingSteps(model, data.x_train, data.y_train, lr=0.05)
        with pytest.raises(IndexError):
            steps(np.array([0, 100]))  # 100 samples: 0..99
        with pytest.raises(IndexError):
            steps(np.array([-101, 3]))
        steps.close()


# Pooling "views" (strided views of the convolution rows, the weight gradient's product by
# output row): the plans take it from fast.WINDOW_VIEWS_MIN_BATCH on; forced down to batch 1
# here so that every geometry and short last batch goes through it too.


@pytest.mark.parametrize("geometry", [g for g in GEOMETRIES if g != "mlp"])
@pytest.mark.parametrize("batch_size", [13, 32])
@pytest.mark.parametrize("band", [True, False], ids=["band", "full-product"])
def test_pooling_views_give_the_public_numbers(geometry, batch_size, band, monkeypatch):
    monkeypatch.setattr(fast, "WINDOW_VIEWS_MIN_BATCH", 1)
    if not band:  # the weight gradient's whole product, as beyond the overflow bound
        monkeypatch.setattr(fast._TinyCNNPlan, "_band_is_safe", lambda plan: False)
    make, settings = GEOMETRIES[geometry]
    data = dataset(4, **settings)
    steps = fast.TrainingSteps(make(1, np.float64), data.x_train, data.y_train, lr=0.1)
    plans = [steps._plan(n) for n in (batch_size, 100 % batch_size)]
    if geometry != "tinycnn-k5-pool3":  # (its rows route agrees from batch 100 on only)
        assert plans[0].pooling == "views", "the configuration under test must be in use"
    config = reference.TrainConfig(
        epochs=2, batch_size=batch_size, seed=4, weight_decay=1e-3, momentum=0.5
    )
    assert_same_runs(*train_both(lambda: make(5, np.float64), data, config))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_large_batch_steps_on_pooling_views_give_the_public_gradients(dtype):
    """The default threshold: large batches take the views; one step each against the public
    ops. (Which configuration agrees depends on the BLAS kernels for the batch size: at
    least one of these must take the views, or the test proves nothing.)"""
    data = reference.make_dataset(n_train=3000, n_val=0, seed=6)
    x, labels = data.x_train.astype(dtype), data.y_train
    model = reference.TinyCNN(seed=6, dtype=dtype)
    steps = fast.TrainingSteps(model, x, labels, lr=0.1)
    configurations = set()
    for N in (fast.WINDOW_VIEWS_MIN_BATCH, 384, 3000):
        expected_loss, expected = model.loss_and_gradients(x[:N], labels[:N])
        plan = steps._plan(N)
        configurations.add((plan.route, plan.pooling, plan.dM_route))
        assert plan.loss_and_gradients(np.arange(N)) == expected_loss
        for key, gradient in expected.items():
            np.testing.assert_array_equal(bits(steps._grads[key]), bits(gradient), err_msg=key)
    steps.close()
    assert ("rows", "views", "band") in configurations


def test_the_route_check_catches_pooling_views_that_differ(monkeypatch):
    """Winners one element off: the plan must fall back to the gathered windows."""
    monkeypatch.setattr(fast, "WINDOW_VIEWS_MIN_BATCH", 1)
    plan = tinycnn_plan(32)
    assert plan.pooling == "views"
    plan.offset_rows = np.roll(plan.offset_rows, 1)
    assert plan._rows_agree_with_patches() is True
    assert (plan.route, plan.pooling) == ("rows", "gather")


def test_the_band_product_is_used_only_below_the_overflow_bound():
    plan = tinycnn_plan(32)
    assert plan._band_is_safe()
    for x_max_abs in (np.inf, np.nan, 1e308):
        plan.data = fast._TrainingSet(plan.data.x, plan.data.labels, x_max_abs)
        assert not plan._band_is_safe()
