"""The one model factory, :func:`tinycnn.reference.models.build_model`, and its three users."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from tinycnn.reference.models import DEFAULT_HIDDEN, MLP, SoftmaxRegression, TinyCNN, build_model
from tinycnn.reports.runs import RunSpec, run_seed
from tinycnn.reports.runs import build_model as report_model

from tinycnn import cli, reference


def same_params(a, b) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "kind, cls, config",
    [
        ("tinycnn", TinyCNN, {"n_filters": 3, "kernel_size": 3, "n_classes": 4}),
        ("mlp", MLP, {"hidden": 7, "n_classes": 4}),
        ("linear", SoftmaxRegression, {"n_classes": 4}),
    ],
)
def test_factory_builds_the_class_with_its_seed_and_dtype(kind, cls, config):
    model = build_model(kind, seed=5, dtype="float32", **config)
    direct = cls(**config, seed=5, dtype=np.float32)
    assert type(model) is cls and model.dtype == np.float32
    assert same_params(model.params, direct.params)
    assert not same_params(model.params, build_model(kind, seed=6, **config).params)
    # a checkpoint's config passes through unchanged
    assert same_params(build_model(kind, **model.config).params, cls(**config).params)


def test_mlp_width_defaults_to_the_lecture_width():
    assert build_model("mlp").config["hidden"] == DEFAULT_HIDDEN == 18


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "cnn"}, "model must be one of"),
        ({"kind": "tinycnn", "hidden": 5}, "applies only to the MLP"),
        ({"kind": "linear", "n_filters": 2}, "linear takes no argument 'n_filters'"),
        ({"kind": "mlp", "n_classes": 1}, "at least 2"),
    ],
)
def test_factory_rejects_what_does_not_fit(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_model(**kwargs)


def test_cli_and_report_runs_build_the_same_model():
    """The report promises `tinycnn train --seed S` reproduces any run: same factory, same seed."""
    spec = RunSpec("mlp", n_classes=4, hidden=6, replicate=1)
    args = argparse.Namespace(
        model="mlp", hidden=6, classes=4, seed=run_seed(1), dtype="float64", load=None
    )
    kind, model = cli._build_model(args)
    assert kind == "mlp"
    assert same_params(model.params, report_model(spec).params)
    linear = reference.SoftmaxRegression(seed=run_seed(0))
    assert same_params(report_model(RunSpec("linear")).params, linear.params)
