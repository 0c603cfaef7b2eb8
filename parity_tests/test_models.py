"""Whole-model parity: the NumPy TinyCNN and MLP against their PyTorch twins, same weights.

Logits, loss and every parameter gradient are compared (shape, dtype, values) with the
``"model"`` tolerance; the float64 models also pass a numerical gradient check, and weights make
an exact round trip NumPy -> PyTorch -> NumPy in both dtypes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tinycnn.parity_tests.compare import assert_close
from tinycnn.parity_tests.tolerances import GRADCHECK_EPS, GRADCHECK_MAX_REL_ERROR

from tinycnn import reference, torch_impl

# (id, constructor, kwargs): the lecture's models plus variants that move every dimension.
MODELS = [
    ("tinycnn", reference.TinyCNN, {}),
    ("tinycnn-4class", reference.TinyCNN, {"n_classes": 4}),
    (
        "tinycnn-f5-k5-img10-pool3",
        reference.TinyCNN,
        {"n_filters": 5, "kernel_size": 5, "image_size": 10, "pool_size": 3},
    ),
    ("mlp18", reference.MLP, {"hidden": 18}),
    ("mlp4-4class", reference.MLP, {"hidden": 4, "n_classes": 4}),
]
DTYPES = [np.float64, np.float32]


def batch(model, n: int = 6, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Random images (not from the generator: no structure the models could hide behind)."""
    rng = np.random.default_rng(seed)
    S, K = model.config["image_size"], model.config["n_classes"]
    x = rng.normal(size=(n, 1, S, S)).astype(model.dtype)
    return x, rng.integers(0, K, size=n)


def torch_loss_and_gradients(module, x, labels):
    logits = module(torch.from_numpy(x))
    loss = F.cross_entropy(logits, torch.from_numpy(labels))
    module.zero_grad()
    loss.backward()
    grads = {name: p.grad.numpy() for name, p in module.named_parameters()}
    return logits.detach().numpy(), loss.detach().numpy(), grads


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(("name", "cls", "kwargs"), MODELS, ids=[m[0] for m in MODELS])
def test_logits_loss_and_gradients_match_torch(name, cls, kwargs, dtype):
    model = cls(**kwargs, seed=3, dtype=dtype)
    x, labels = batch(model)
    logits, activations = model.forward_with_activations(x)
    loss, dlogits = model.ops.softmax_cross_entropy(logits, labels)
    grads = model.backward(dlogits, activations)

    expected_logits, expected_loss, expected_grads = torch_loss_and_gradients(
        torch_impl.from_reference(model), x, labels
    )
    case = f"{name}-{np.dtype(dtype).name}"
    assert_close(logits, expected_logits, op="model", stage="logits", case_id=case)
    assert_close(loss, expected_loss, op="model", stage="loss", case_id=case)
    assert set(grads) == set(expected_grads)
    for key, grad in grads.items():
        assert_close(grad, expected_grads[key], op="model", stage=f"gradient {key}", case_id=case)


@pytest.mark.parametrize(("name", "cls", "kwargs"), MODELS, ids=[m[0] for m in MODELS])
def test_numerical_gradient_check(name, cls, kwargs):
    model = cls(**kwargs, seed=5)
    x, labels = batch(model, n=4, seed=2)
    errors = reference.gradient_check(model, x, labels, eps=GRADCHECK_EPS)
    assert set(errors) == set(model.params)
    assert max(errors.values()) < GRADCHECK_MAX_REL_ERROR, errors


def test_gradient_check_catches_a_wrong_backward_pass():
    """A backward pass that forgets the ReLU mask is flagged as a bug (e_rel > 1e-3)."""
    model = reference.TinyCNN(seed=5)
    broken_ops = type("BrokenOps", (), {})()
    for name in reference.ops.CONTRACT_FUNCTIONS:
        setattr(broken_ops, name, getattr(reference.ops, name))
    broken_ops.relu_backward = lambda dy, x: dy.copy()
    model.ops = broken_ops
    x, labels = batch(model, n=4, seed=2)
    errors = reference.gradient_check(model, x, labels)
    assert reference.gradcheck.error_band(errors["conv.weight"]) == "bug", errors
    assert errors["fc.weight"] < GRADCHECK_MAX_REL_ERROR  # layers after the ReLU are still right


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(("name", "cls", "kwargs"), MODELS, ids=[m[0] for m in MODELS])
def test_weights_round_trip_exactly_and_keep_dtype(name, cls, kwargs, dtype):
    model = cls(**kwargs, seed=7, dtype=dtype)
    module = torch_impl.from_reference(model)
    assert {p.dtype for p in module.parameters()} == {torch.from_numpy(np.zeros(0, dtype)).dtype}
    back = torch_impl.to_reference(module)
    assert back.config == model.config
    for key, value in model.params.items():
        assert back.params[key].dtype == value.dtype
        np.testing.assert_array_equal(back.params[key], value)


def test_parameter_counts_match_torch():
    for _, cls, kwargs in MODELS:
        model = cls(**kwargs)
        module = torch_impl.from_reference(model)
        assert model.n_parameters == sum(p.numel() for p in module.parameters())


# --- degenerate batches and label dtypes (issue 11) ----------------------------------------------


@pytest.mark.parametrize("n", [0, 1])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(("name", "cls", "kwargs"), MODELS, ids=[m[0] for m in MODELS])
def test_batches_of_zero_and_one_image_match_torch(name, cls, kwargs, dtype, n):
    # N = 0: logits (0, K), a NaN loss (the mean of nothing) and zero gradients, as PyTorch.
    model = cls(**kwargs, seed=3, dtype=dtype)
    x, labels = batch(model, n=n)
    loss, grads = model.loss_and_gradients(x, labels)
    expected_logits, expected_loss, expected_grads = torch_loss_and_gradients(
        torch_impl.from_reference(model), x, labels
    )
    case = f"{name}-n{n}-{np.dtype(dtype).name}"
    logits = model.forward(x)
    assert logits.shape == (n, model.config["n_classes"]) and model.predict(x).shape == (n,)
    assert_close(logits, expected_logits, op="model", stage="logits", case_id=case)
    assert_close(np.asarray(loss, dtype), expected_loss, op="model", stage="loss", case_id=case)
    assert np.isnan(loss) == (n == 0)
    for key, grad in grads.items():
        assert_close(grad, expected_grads[key], op="model", stage=f"gradient {key}", case_id=case)


LABEL_DTYPES = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.uint64]


@pytest.mark.parametrize("label_dtype", LABEL_DTYPES, ids=lambda d: np.dtype(d).name)
def test_models_and_training_helpers_take_labels_of_any_integer_dtype(label_dtype):
    model = reference.TinyCNN(seed=3)
    x, labels = batch(model, n=5)
    loss, grads = model.loss_and_gradients(x, labels.astype(label_dtype))
    expected_loss, expected_grads = model.loss_and_gradients(x, labels)
    assert loss == expected_loss
    assert all(np.array_equal(grads[k], expected_grads[k]) for k in grads)
    assert reference.evaluate(model, x, labels.astype(label_dtype)) == reference.evaluate(
        model, x, labels
    )
    empty = reference.evaluate(model, x[:0], labels[:0].astype(label_dtype))
    assert np.isnan(empty).all()  # the means of nothing


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_training_takes_uint64_labels_like_int64(backend):
    data = reference.make_dataset(n_train=12, n_val=4, seed=1)
    unsigned = reference.Dataset(
        data.x_train,
        data.y_train.astype(np.uint64),
        data.x_val,
        data.y_val.astype(np.int8),
        data.config,
    )
    config = reference.TrainConfig(epochs=2, batch_size=5)
    runs = []
    for dataset in (data, unsigned):
        model = reference.TinyCNN(seed=2)
        if backend == "numpy":
            runs.append(reference.train(model, dataset, config).step_loss)
        else:
            runs.append(
                torch_impl.train(torch_impl.from_reference(model), dataset, config).step_loss
            )
    assert runs[0] == runs[1] and len(runs[0]) == 6


def test_labels_that_are_not_integers_are_a_one_line_error():
    model = reference.TinyCNN()
    x, labels = batch(model, n=3)
    with pytest.raises(ValueError, match="integer"):
        reference.evaluate(model, x, labels.astype(np.float64))


def test_softmax_regression_takes_empty_batches_too():
    model = reference.SoftmaxRegression(seed=3)
    x, labels = batch(model, n=0)
    loss, grads = model.loss_and_gradients(x, labels.astype(np.uint64))
    assert model.forward(x).shape == (0, 3) and np.isnan(loss)
    assert all(not grad.any() and grad.shape == model.params[k].shape for k, grad in grads.items())


# --- gradient check at kinks (issue 11, item 7) --------------------------------------------------


def _blank_image_batch(blank_value: float):
    model = reference.TinyCNN(seed=0)
    model.params["conv.bias"][:] = 0
    data = reference.make_dataset(n_train=4, n_val=0, seed=0)
    x = data.x_train.copy()
    x[0] = blank_value  # 0: every conv output of this image sits exactly at ReLU's kink
    return model, x, data.y_train


def test_gradient_check_reports_units_at_a_relu_kink_instead_of_a_bug():
    model, x, labels = _blank_image_batch(0.0)
    checks = reference.gradient_check(model, x, labels)
    # Each conv bias moves its filter's 36 outputs of the blank image across 0: all 3 at a kink.
    assert (checks["conv.bias"].band, checks["conv.bias"].n_kink) == ("kink", 3)
    assert checks["conv.bias"].n_units == 3 and np.isnan(checks["conv.bias"])
    for name in ("conv.weight", "fc.weight", "fc.bias"):  # a blank pixel times a weight is 0
        assert (checks[name].band, checks[name].n_kink) == ("perfect", 0), name


def test_gradient_check_without_kinks_counts_none():
    model, x, labels = _blank_image_batch(1e-3)
    checks = reference.gradient_check(model, x, labels)
    assert all(c.band == "perfect" and c.n_kink == 0 for c in checks.values()), checks


def test_gradient_check_reports_a_max_pool_winner_that_changes_within_the_step():
    # Conv = pixel under the kernel centre + 1 (all positive: no ReLU kink). Two pixels of one
    # pooling window differ by 1e-9: a step of 1e-5 on a weight that reads their neighbours
    # (which differ by ~0.5) changes the window's winner.
    model = reference.TinyCNN(seed=0)
    model.params["conv.weight"][:] = 0
    model.params["conv.weight"][:, 0, 1, 1] = 1
    model.params["conv.bias"][:] = 1
    x = np.random.default_rng(0).uniform(0.1, 1.0, size=(2, 1, 8, 8))
    x[0, 0, 1, 2] = x[0, 0, 1, 1] + 1e-9  # conv outputs (0, 0) and (0, 1): one window
    checks = reference.gradient_check(model, x, np.array([0, 1]))
    weight = checks["conv.weight"]
    assert 0 < weight.n_kink < weight.n_units and weight.band == "perfect", repr(weight)
    assert checks["conv.bias"].n_kink == 0  # a bias shifts both pixels alike: same winner


def test_a_wrong_backward_pass_is_still_a_bug_beside_a_kink():
    model, x, labels = _blank_image_batch(0.0)
    broken_ops = type("BrokenOps", (), {})()
    for name in reference.ops.CONTRACT_FUNCTIONS:
        setattr(broken_ops, name, getattr(reference.ops, name))
    broken_ops.relu_backward = lambda dy, x: dy.copy()
    model.ops = broken_ops
    checks = reference.gradient_check(model, x, labels)
    assert checks["conv.weight"].band == "bug" and checks["conv.bias"].band == "kink"
