"""Report sections 4-11 and 13, computed from hand-made run results (no training here)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tinycnn.reports import dataset, experiments, gradients
from tinycnn.reports.baseline import SoftmaxRegression, torch_twin
from tinycnn.reports.runs import RunResult, RunSpec

from tinycnn import reference


def fake_run(
    model="tinycnn",
    accuracy=1.0,
    *,
    hidden=None,
    n_classes=3,
    replicate=0,
    val_acc=None,
    train_acc=None,
    n_parameters=None,
    backend="numpy",
    params=None,
):
    """A finished run with the given accuracy curve (no training)."""
    spec = RunSpec(model, n_classes, hidden, replicate, 3, backend)
    val = list(val_acc) if val_acc is not None else [0.3, 0.8, 0.95, accuracy]
    train = list(train_acc) if train_acc is not None else list(val)
    if params is None:
        model_object = (
            reference.MLP(hidden, n_classes)
            if model == "mlp"
            else reference.TinyCNN(n_classes=n_classes)
        )
        params = model_object.params
    count = n_parameters or sum(p.size for p in params.values())
    return RunResult(
        spec=spec,
        seed=replicate,
        n_parameters=count,
        train_loss=[1.0] * len(val),
        train_acc=train,
        val_loss=[1.0] * len(val),
        val_acc=val,
        final_params=params,
    )


# -- accuracy over seeds -----------------------------------------------------------------------


def test_accuracy_summary_over_seeds():
    runs = [fake_run(accuracy=a, replicate=i) for i, a in enumerate((0.9, 1.0, 0.95))]
    summary = experiments.accuracy_summary(runs)
    assert summary["n_seeds"] == 3
    assert summary["mean"] == pytest.approx(0.95)
    assert (summary["min"], summary["max"]) == (0.9, 1.0)
    assert summary["n_parameters"] == 114


def test_accuracy_summary_rejects_mixed_configurations():
    with pytest.raises(ValueError, match="share a parameter count"):
        experiments.accuracy_summary([fake_run(), fake_run("mlp", hidden=4)])
    with pytest.raises(ValueError, match="at least one run"):
        experiments.accuracy_summary([])


@pytest.mark.parametrize(
    ("minimum", "mean", "expected"),
    [
        (0.5, 0.85, "fails"),
        (0.95, 0.97, "unstable"),
        (0.99, 0.995, "stable"),
        (0.989, 0.999, "unstable"),
    ],
)
def test_regime_thresholds(minimum, mean, expected):
    assert experiments.regime(minimum, mean) == expected


def test_capacity_sweep_names_regimes_and_ratios():
    widths = {1: (0.5, 0.7), 4: (0.97, 1.0), 8: (0.995, 1.0), 12: (1.0, 1.0)}
    mlp = {
        w: [fake_run("mlp", a, hidden=w, replicate=i) for i, a in enumerate(accs)]
        for w, accs in widths.items()
    }
    table = experiments.capacity_sweep_table(mlp, [fake_run(), fake_run(replicate=1)])
    by_width = table.set_index("width")
    assert list(by_width.loc[[1, 4, 8, 12], "regime"]) == [
        "fails",
        "unstable",
        "stable",
        "overkill",
    ]
    # (64+1)*h + (h+1)*3 parameters, against the CNN's 114.
    assert by_width.loc[8, "n_parameters"] == 65 * 8 + 9 * 3
    assert by_width.loc[8, "parameter_ratio"] == pytest.approx((65 * 8 + 27) / 114)
    assert by_width.loc[0, "model"] == "TinyCNN"


def test_cnn_vs_mlp_ratio():
    table = experiments.cnn_vs_mlp_table([fake_run()], [fake_run("mlp", 0.99, hidden=18)])
    mlp = table.set_index("model").loc["MLP (18 hidden)"]
    assert mlp["n_parameters"] == 65 * 18 + 19 * 3
    assert mlp["parameter_ratio"] == pytest.approx(1227 / 114)


def test_four_class_table_counts_what_the_fourth_class_adds():
    table = experiments.four_class_table(
        [fake_run(n_classes=4)], {8: [fake_run("mlp", hidden=8, n_classes=4)]}
    )
    rows = table.set_index("model")
    assert rows.loc["TinyCNN", "added"] == 27 + 1  # one more output: 27 weights and a bias
    assert rows.loc["MLP (8 hidden)", "added"] == 8 + 1
    assert rows.loc["MLP (8 hidden)", "n_parameters"] == 65 * 8 + 9 * 4


def test_baseline_table_lists_both_models_per_class_count():
    linear = {3: [fake_run("linear", 0.9, params=SoftmaxRegression(3).params)]}
    table = experiments.baseline_table(linear, {3: [fake_run()]})
    assert list(table["model"]) == ["softmax regression", "TinyCNN"]
    assert table.iloc[0]["n_parameters"] == 64 * 3 + 3


# -- training curves ---------------------------------------------------------------------------


def test_epochs_to_target_reports_never_as_minus_one():
    runs = [
        fake_run(val_acc=[0.3, 0.99, 1.0], replicate=0),
        fake_run(val_acc=[0.3, 0.5, 0.98], train_acc=[0.3, 0.6, 1.0], replicate=1),
    ]
    table = experiments.epochs_to_target_table(runs)
    assert list(table["first_epoch"]) == [1, -1]
    assert table["final_gap"].iloc[1] == pytest.approx(0.02)


def test_training_curves_table_has_one_row_per_epoch():
    table = experiments.training_curves_table(fake_run())
    assert list(table["epoch"]) == [0, 1, 2, 3]
    assert list(table.columns) == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc"]


# -- filter orientation ------------------------------------------------------------------------


def oriented_filters() -> tuple[np.ndarray, np.ndarray]:
    """Hand-made detectors: a vertical bar, a horizontal bar, a diagonal, and a dead filter."""
    vertical = np.array([[-1, 2, -1]] * 3, dtype=float)
    diagonal = 3 * np.eye(3) - 1
    dead = np.ones((3, 3))
    weight = np.stack([vertical, vertical.T, diagonal, dead])[:, None]  # 4, 1, 3, 3
    bias = np.array([0.0, 0.0, 0.0, -100.0])
    return weight, bias


def test_orientation_scores_recognise_hand_made_detectors():
    patterns = experiments.clean_patterns(50, seed=0)
    scores = experiments.orientation_scores(*oriented_filters(), patterns)
    assert list(scores["preferred"]) == ["vertical", "horizontal", "diagonal", "none"]
    assert (scores["selectivity"].iloc[:3] >= experiments.MIN_SELECTIVITY).all()
    assert scores["selectivity"].iloc[3] == 0.0
    assert experiments.covers_orientations(scores)


def test_an_unoriented_filter_is_not_selective():
    patterns = experiments.clean_patterns(50, seed=0)
    blob = np.ones((1, 1, 3, 3))  # responds to any bright stripe
    scores = experiments.orientation_scores(blob, np.zeros(1), patterns)
    assert scores["selectivity"].iloc[0] < experiments.MIN_SELECTIVITY
    assert not experiments.covers_orientations(scores)
    assert experiments.missing_orientations(scores) == ["vertical", "horizontal", "diagonal"]


def test_two_detectors_of_one_orientation_leave_one_missing():
    weight, bias = oriented_filters()
    twice_vertical = np.stack([weight[0], weight[0], weight[2]])  # no horizontal detector
    scores = experiments.orientation_scores(
        twice_vertical, bias[:3], experiments.clean_patterns(50, seed=0)
    )
    assert experiments.missing_orientations(scores) == ["horizontal"]


def test_clean_patterns_are_noise_free_stripes():
    patterns = experiments.clean_patterns(10, seed=3)
    assert set(patterns) == {"vertical", "horizontal", "diagonal"}
    for images in patterns.values():
        assert images.shape == (10, 1, 8, 8) and set(np.unique(images)) <= {0.0, 1.0}
    # vertical stripes are constant down each column
    assert (np.diff(patterns["vertical"], axis=2) == 0).all()


def test_orientation_over_seeds_and_snapshot_tables():
    weight, bias = oriented_filters()
    params = {"conv.weight": weight[:3], "conv.bias": bias[:3]}
    run = fake_run(params=params, n_parameters=114)
    run.snapshots = {0: params, 3: params}
    snapshots = experiments.filter_snapshots(run)
    patterns = experiments.clean_patterns(20, seed=0)
    assert list(experiments.orientation_table(snapshots, patterns)["epoch"]) == [0, 0, 0, 3, 3, 3]
    weights = experiments.filter_snapshot_table(snapshots)
    assert weights.loc[0, "w[0,1]"] == 2.0 and len(weights) == 6
    seeds = experiments.orientation_over_seeds([run], patterns)
    assert bool(seeds["covers_all_orientations"].iloc[0])


def test_filter_snapshots_need_snapshots():
    with pytest.raises(ValueError, match="kept no parameter snapshots"):
        experiments.filter_snapshots(fake_run())


# -- inference trace ---------------------------------------------------------------------------


def test_inference_trace_keeps_every_stage():
    model = reference.TinyCNN(seed=4)
    image = reference.make_dataset(n_train=3, n_val=0).x_train[0, 0]
    trace = experiments.inference_trace(model.params, image)
    assert trace["conv"].shape == (3, 6, 6) and trace["pool"].shape == (3, 3, 3)
    assert np.array_equal(trace["flatten"], trace["pool"].ravel())
    assert np.array_equal(trace["relu"], np.maximum(trace["conv"], 0))
    assert trace["probabilities"].sum() == pytest.approx(1.0)
    assert np.argmax(trace["probabilities"]) == np.argmax(model.forward(image[None, None])[0])


def test_trace_confidence_summarises_one_class():
    data = reference.make_dataset(n_train=3, n_val=30)
    table = experiments.trace_confidence_table(
        reference.TinyCNN().params, data.x_val, data.y_val, 0, data.class_names
    )
    assert list(table["class"]) == ["vertical", "horizontal", "diagonal"]
    assert table["n_images"].iloc[0] == (data.y_val == 0).sum()
    assert (table["min"] <= table["median"]).all() and (table["median"] <= table["max"]).all()


def test_softmax_is_stable_for_large_logits():
    p = experiments.softmax(np.array([[1000.0, 0.0, -1000.0]]))
    assert np.isfinite(p).all() and p[0, 0] == pytest.approx(1.0)


# -- backend agreement -------------------------------------------------------------------------


def test_backend_agreement_reports_differences():
    numpy_run = fake_run(val_acc=[0.3, 0.99, 1.0])
    torch_run = fake_run(
        val_acc=[0.3, 0.98, 1.0],
        backend="torch",
        params={k: v + 1e-3 for k, v in numpy_run.final_params.items()},
    )
    table = experiments.backend_agreement_table([(numpy_run, torch_run)])
    rows = table.set_index("quantity")
    assert rows.loc["largest |parameter difference| after training", "abs_difference"] == (
        pytest.approx(1e-3)
    )
    assert rows.loc[
        "largest |validation accuracy difference| over epochs", "abs_difference"
    ] == pytest.approx(0.01)
    assert rows.loc["first epoch with validation accuracy >= 0.99", "abs_difference"] == 1


def test_backend_agreement_refuses_runs_of_different_configurations():
    with pytest.raises(ValueError, match="differ in more than the backend"):
        experiments.backend_agreement_table([(fake_run(), fake_run(replicate=1, backend="torch"))])


# -- dataset, gradient check, baseline model ---------------------------------------------------


def test_sample_grid_takes_images_of_each_class():
    images, names = dataset.sample_grid(4, 3, seed=5)
    assert images.shape == (4, 3, 8, 8) and names == ("vertical", "horizontal", "diagonal", "dot")
    data = reference.make_dataset(n_classes=4, seed=5)
    first_dot = data.x_train[np.flatnonzero(data.y_train == 3)[0], 0]
    assert np.array_equal(images[3, 0], first_dot)


def test_gradient_check_table_passes_correct_models_and_flags_the_bug():
    table = gradients.gradient_check_table(seed=0, n_samples=4)
    correct = table[table["model"] != gradients.BUGGY_MODEL]
    assert (correct["band"] == "perfect").all()
    buggy = table[table["model"] == gradients.BUGGY_MODEL].set_index("parameter")
    assert buggy.loc["conv.weight", "band"] == "bug"
    assert (buggy.drop(index="conv.weight")["band"] == "perfect").all()  # it says where
    assert table.loc[table["model"] == "TinyCNN", "rel_error"].max() < 1e-7


def test_softmax_regression_gradients_and_torch_twin():
    import torch

    model = SoftmaxRegression(4, seed=2)
    data = reference.make_dataset(n_classes=4, n_train=6, n_val=0)
    errors = reference.gradient_check(model, data.x_train, data.y_train)
    assert max(errors.values()) < 1e-7
    twin = torch_twin(model)
    with torch.no_grad():
        logits = twin(torch.from_numpy(data.x_train)).numpy()
    np.testing.assert_allclose(logits, model.forward(data.x_train), rtol=1e-12)
    assert model.n_parameters == 64 * 4 + 4
    assert [row["n_parameters"] for row in model.layer_summary()] == [0, 0, 64 * 4 + 4]
    with pytest.raises(ValueError, match=r"expects images of shape \(N, 1, 8, 8\)"):
        model.forward(data.x_train[:, :, :7])


def test_tables_are_dataframes():
    assert isinstance(experiments.training_curves_table(fake_run()), pd.DataFrame)


def test_gradient_check_section_says_how_many_units_were_left_out_and_why():
    from tinycnn.reports import render

    table = gradients.gradient_check_table(seed=0, n_samples=4)
    assert "kink_units" in table.columns
    at_kink = table.copy()
    at_kink.loc[at_kink["parameter"] == "conv.bias", "kink_units"] = 3
    units = sum(int(np.prod([int(n) for n in s.split(" x ")])) for s in table["shape"])
    note = render._kink_note(at_kink)
    assert f"{int(at_kink['kink_units'].sum())} of {units} units were left out" in note
    assert "ReLU" in note and "max-pool" in note
