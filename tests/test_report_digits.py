"""Report sections 10a-10c: real digits, translation, filters, and the real-data ledger."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from tinycnn.reference import ops
from tinycnn.reports import digits, translation
from tinycnn.reports.claims import REAL_DATA_CLAIMS, claims_ledger, judge
from tinycnn.reports.pipeline import ReportData, ReportSettings, plan_runs
from tinycnn.reports.runs import RunResult, RunSpec, execute, load_data

from tinycnn import reference


def fake_runs(spec: RunSpec, accuracies, n_parameters: int, train=None) -> list[RunResult]:
    """Finished replicate runs of ``spec`` with the given final accuracies (no training)."""
    runs = []
    for i, accuracy in enumerate(accuracies):
        s = dataclasses.replace(spec, replicate=i)
        final_train = accuracy if train is None else train[i]
        runs.append(RunResult(s, s.seed, n_parameters, [1.0], [final_train], [1.0], [accuracy], {}))
    return runs


def digits_spec(model: str, size: int | None = None) -> RunSpec:
    if model == "tinycnn":
        return RunSpec("tinycnn", 10, n_filters=size, data="digits")
    if model == "mlp":
        return RunSpec("mlp", 10, size, data="digits")
    return RunSpec("linear", 10, data="digits")


def sweep(cnn: dict, mlp: dict, linear: float = 0.9) -> pd.DataFrame:
    """A digits sweep table from ``{filters: mean accuracy}`` and ``{width: mean accuracy}``."""
    configurations = [
        fake_runs(digits_spec("tinycnn", f), [a, a], 10 * f + 90 * f + 10) for f, a in cnn.items()
    ]
    configurations += [
        fake_runs(digits_spec("mlp", w), [a, a], 75 * w + 10) for w, a in mlp.items()
    ]
    configurations.append(fake_runs(digits_spec("linear"), [linear, linear], 650))
    return digits.digits_sweep_table(configurations)


# -- run specs ---------------------------------------------------------------------------------


def test_digit_specs_are_checked_and_named():
    with pytest.raises(ValueError, match="the digits have 10 classes"):
        RunSpec("mlp", 3, 8, data="digits")
    with pytest.raises(ValueError, match="data must be one of"):
        RunSpec("mlp", 3, 8, data="mnist")
    with pytest.raises(ValueError, match="n_filters is for TinyCNN only"):
        RunSpec("mlp", 3, 8, n_filters=4)
    # One spelling per run: the default filter count is written into the spec.
    assert RunSpec("tinycnn") == RunSpec("tinycnn", n_filters=3)
    assert RunSpec("tinycnn").name == "tinycnn-3cls"  # unchanged for the lecture's runs
    assert digits_spec("tinycnn", 8).name == "tinycnn8-digits"
    assert RunSpec("mlp", 3, 8, data="centred-stripes").name == "mlp8-3cls-centred"
    assert digits_spec("tinycnn", 16).label == "TinyCNN (16 filters)"


def test_digits_runs_share_one_split_and_centred_stripes_stay_central():
    a, b = (load_data(dataclasses.replace(digits_spec("mlp", 4), replicate=i)) for i in (0, 1))
    assert a is b  # the split does not depend on the seed
    centred = load_data(RunSpec("mlp", 3, 4, data="centred-stripes"))
    clean = centred.x_train[:, 0] > 0.5  # stripe pixels stand out of the noise
    vertical = clean[centred.y_train == 0].mean(axis=(0, 1))  # share lit, per column
    assert vertical[:3].max() < 0.02 and vertical[5:].max() < 0.02 and vertical[3:5].min() > 0.5


def test_plan_trains_every_digits_configuration_over_the_seeds():
    groups = plan_runs(ReportSettings(n_seeds=2, epochs=3))
    assert [s.n_filters for s in groups["digits-cnn8"]] == [8, 8]
    assert {s.data for s in groups["digits-mlp64"]} == {"digits"}
    assert {s.replicate for s in groups["digits-linear"]} == {0, 1}
    torch_digits = [s for s in groups["torch"] if s.data == "digits"]
    assert {s.model for s in torch_digits} == {"tinycnn", "mlp"}


# -- section 10a -------------------------------------------------------------------------------


def test_sweep_table_best_tinycnn_and_matching_mlp():
    table = sweep({3: 0.9, 8: 0.97, 16: 0.97}, {4: 0.8, 32: 0.96, 64: 0.975})
    assert list(table["model"])[:3] == [f"TinyCNN ({f} filters)" for f in (3, 8, 16)]
    assert list(table["family"]) == ["TinyCNN"] * 3 + ["MLP"] * 3 + ["linear"]
    best = digits.best_tinycnn(table)
    assert best["size"] == 8  # a tie in accuracy goes to fewer parameters
    assert digits.matching_mlp(table, 0.97)["size"] == 64
    assert digits.matching_mlp(table, 0.95)["size"] == 32  # the narrowest that gets there
    assert digits.matching_mlp(table, 0.99) is None


def test_sweep_reports_the_largest_train_validation_gap():
    runs = fake_runs(digits_spec("tinycnn", 3), [0.9, 0.95], 310, train=[0.93, 0.96])
    table = digits.digits_sweep_table([runs])
    assert table["largest_gap"].iloc[0] == pytest.approx(0.03)


@pytest.fixture(scope="module")
def small_digits_run():
    return execute(RunSpec("tinycnn", 10, n_filters=4, epochs=2, data="digits"))


def test_confusion_matrix_counts_every_validation_image(small_digits_run):
    matrix = digits.confusion_matrix(small_digits_run)
    assert matrix.shape == (10, 10) and matrix.sum() == 597
    # Its diagonal is the accuracy the training loop measured: two independent computations.
    assert np.trace(matrix) / matrix.sum() == pytest.approx(small_digits_run.final_val_acc)
    table = digits.confusion_table(matrix, tuple("0123456789"))
    np.testing.assert_array_equal(table.iloc[:, 1:11].sum(axis=1), matrix.sum(axis=1))


@pytest.mark.slow
def test_logistic_regression_cross_check_agrees_with_our_sgd():
    dataset = load_data(digits_spec("linear"))
    ours = execute(dataclasses.replace(digits_spec("linear"), epochs=30))
    table = digits.logistic_regression_table(dataset, [ours])
    assert list(table["n_parameters"]) == [650, 650, 650]
    # The weakly penalised fit is the model our SGD trains: they agree within a few points.
    assert abs(table["val_acc"].iloc[-1] - table["val_acc"].iloc[0]) < 0.03


# -- section 10b: the equivariance measurement -------------------------------------------------


def test_equivariance_of_a_convolution_against_a_hand_made_example():
    # A vertical line in column 1 of a 4x4 image, a kernel that sums its middle column.
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, :, 1] = 1.0
    w = np.zeros((1, 1, 3, 3))
    w[0, 0, :, 1] = 1.0
    b = np.array([0.5])

    def conv(images):
        return ops.conv2d_forward(images, w, b)

    # By hand: conv(x) = [[3.5, 0.5], [3.5, 0.5]] (2x2); the line shifted right to column 2
    # gives conv(shift(x)) = [[0.5, 3.5], [0.5, 3.5]], shift(conv(x)) = [[0, 3.5], [0, 3.5]].
    np.testing.assert_array_equal(conv(x)[0, 0], [[3.5, 0.5], [3.5, 0.5]])
    errors = translation.equivariance_errors(conv, x, down=0, right=1)
    assert errors == {"interior_error": 0.0, "border_error": 0.5, "interior_fraction": 0.5}


def test_equivariance_measurement_catches_a_layer_that_is_not_equivariant():
    x = np.random.default_rng(0).normal(size=(3, 1, 8, 8))
    w = np.random.default_rng(1).normal(size=(2, 1, 3, 3))
    ramp = np.arange(6.0)[None, None, None, :] * 0.1  # a bias that depends on the column

    def conv(images):
        return ops.conv2d_forward(images, w, np.zeros(2))

    def position_dependent(images):
        return conv(images) + ramp

    assert translation.equivariance_errors(conv, x, 2, -1)["interior_error"] < 1e-12
    assert translation.equivariance_errors(position_dependent, x, 0, 1)["interior_error"] == (
        pytest.approx(0.1)
    )
    assert translation.equivariance_errors(position_dependent, x, 1, 0)["interior_error"] == 0.0


def test_equivariance_table_has_every_shift_and_direction():
    rng = np.random.default_rng(0)
    table = translation.equivariance_table(
        rng.normal(size=(3, 1, 3, 3)), rng.normal(size=3), rng.normal(size=(4, 1, 8, 8))
    )
    assert len(table) == 3 * 4 and set(table["direction"]) == set(translation.DIRECTIONS)
    assert (table["interior_error"] < 1e-12).all() and (table["border_error"] > 0).all()
    # A 6x6 map shifted by s keeps 6 - s of its 6 rows (or columns) out of the fill.
    np.testing.assert_allclose(table["interior_fraction"], (6 - table["shift"]) / 6)


# -- section 10b: accuracy and survival under shifts -------------------------------------------


@pytest.fixture(scope="module")
def centred_runs():
    return [
        execute(RunSpec("mlp", 3, 4, replicate=i, epochs=2, data="centred-stripes")) for i in (0, 1)
    ]


def test_shift_table_starts_from_the_validation_accuracy(centred_runs):
    per_run = translation.shift_accuracy_table({"MLP (4 hidden)": centred_runs})
    assert len(per_run) == 2 * len(translation.SHIFTS) * len(translation.DIRECTIONS)
    clean = per_run[per_run["shift"] == 0]
    assert (clean["survival"] == 1.0).all()
    for run in centred_runs:
        rows = clean[clean["replicate"] == run.spec.replicate]
        assert rows["accuracy"].tolist() == [run.final_val_acc] * 4
    assert (per_run[per_run["shift"] == 3]["survival"] < 1).all()


def test_translation_summary_averages_directions_then_seeds():
    rows = []
    for replicate, accuracies in ((0, [0.8, 0.6, 0.4, 0.2]), (1, [1.0, 1.0, 1.0, 1.0])):
        for direction, accuracy in zip(translation.DIRECTIONS, accuracies, strict=True):
            rows.append(
                {
                    "model": "m",
                    "replicate": replicate,
                    "n_parameters": 5,
                    "shift": 1,
                    "direction": direction,
                    "accuracy": accuracy,
                    "survival": accuracy,
                }
            )
    summary = translation.translation_summary(pd.DataFrame(rows)).iloc[0]
    assert (summary["n_seeds"], summary["min"], summary["max"]) == (2, 0.5, 1.0)
    assert summary["mean"] == pytest.approx(0.75) and summary["survival"] == pytest.approx(0.75)


def test_similar_mlp_is_closest_in_clean_accuracy_and_narrower_on_ties():
    cnn = fake_runs(RunSpec("tinycnn"), [0.95, 0.97], 114)
    mlps = {w: fake_runs(RunSpec("mlp", 3, w), [a, a], w) for w, a in ((4, 0.9), (8, 0.97))}
    assert translation.similar_mlp(cnn, mlps) == (8, pytest.approx(0.01))
    mlps[18] = fake_runs(RunSpec("mlp", 3, 18), [0.95, 0.95], 18)
    assert translation.similar_mlp(cnn, mlps)[0] == 8  # both 0.01 away: the narrower


def test_position_table_finds_the_centre_of_mass():
    images = np.zeros((2, 1, 8, 8))
    images[0, 0, 2, 5] = 1.0
    images[1, 0, 2:4, 5] = 1.0  # rows 2 and 3: centre at row 2.5
    table = translation.position_table({"toy": images})
    rows = table.set_index("axis")
    assert rows.loc["row", "p5"] == pytest.approx(2.025) and rows.loc["column", "median"] == 5


# -- the real-data ledger ----------------------------------------------------------------------


def real_claim(claim_id: str):
    return next(c for c in REAL_DATA_CLAIMS if c.claim_id == claim_id)


def test_real_data_claims_are_well_formed_and_apart_from_the_lectures():
    ids = [c.claim_id for c in REAL_DATA_CLAIMS]
    assert len(ids) == len(set(ids))
    for c in REAL_DATA_CLAIMS:
        assert c.claim_id.startswith(f"R{c.section}.") and c.section in ("10a", "10b", "10c")
        assert c.measure is not None and c.rule is not None


def test_parameter_efficiency_holds_or_fails_with_the_numbers():
    data = ReportData(ReportSettings(n_seeds=2, epochs=3))
    data.tables["10a_digits"] = sweep({3: 0.95, 8: 0.98}, {4: 0.85, 8: 0.94, 64: 0.97})
    assert judge(real_claim("R10a.1"), data)["verdict"] == "reproduced"
    assert judge(real_claim("R10a.2"), data)["computed"] == "no MLP up to 4,810 parameters"
    data.tables["10a_digits"] = sweep({3: 0.95, 8: 0.98}, {4: 0.96, 8: 0.94, 64: 0.99})
    row = judge(real_claim("R10a.1"), data)
    assert row["verdict"] == "differs" and row["computed"] == "1 of 2 TinyCNN sizes"
    ratio = judge(real_claim("R10a.2"), data)
    assert ratio["verdict"] == "reproduced" and ratio["computed"].startswith("5.94×")  # noqa: RUF001


def test_three_filters_suffice_only_within_one_point():
    data = ReportData(ReportSettings(n_seeds=2, epochs=3))
    data.tables["10a_digits"] = sweep({3: 0.975, 8: 0.98}, {4: 0.8})
    assert judge(real_claim("R10a.3"), data)["verdict"] == "reproduced"
    data.tables["10a_digits"] = sweep({3: 0.95, 8: 0.98}, {4: 0.8})
    assert judge(real_claim("R10a.3"), data)["verdict"] == "differs"


def test_translation_claims_compare_tinycnn_with_the_mlp():
    # Accuracy (= survival here) at shifts 0 and 1: TinyCNN wins on stripes, loses on digits.
    accuracies = {
        ("stripes", "TinyCNN (3 filters)"): [1.0, 0.9],
        ("stripes", "MLP (8 hidden)"): [1.0, 0.8],
        ("digits", "TinyCNN (8 filters)"): [0.98, 0.5],
        ("digits", "MLP (32 hidden)"): [0.97, 0.6],
    }
    summary = [
        {"data": d, "model": m, "shift": shift, "mean": a, "survival": a}
        for (d, m), values in accuracies.items()
        for shift, a in enumerate(values)
    ]
    data = ReportData(ReportSettings(n_seeds=2, epochs=3))
    data.tables["10b_translation"] = pd.DataFrame(summary)
    ledger = claims_ledger(data, [real_claim(i) for i in ("R10b.2", "R10b.3")])
    assert list(ledger["verdict"]) == ["reproduced", "differs"]
    assert ledger["computed"].iloc[0] == "90.00% vs 80.00%"


def test_pooling_claim_compares_the_same_features_with_and_without_the_pool():
    def pooling(changes):  # (data, unpooled, pooled) at shifts 1 and 2, two directions each
        return pd.DataFrame(
            [
                {"data": d, "model": "m", "shift": shift, "direction": direction}
                | {"change_unpooled": u * shift, "change_pooled": p * shift}
                for d, u, p in changes
                for shift in (1, 2)
                for direction in ("right", "left")
            ]
        )

    data = ReportData(ReportSettings(n_seeds=2, epochs=3))
    data.tables["10b_pooling"] = pooling([("stripes", 0.9, 0.5), ("digits", 0.8, 0.6)])
    row = claims_ledger(data, [real_claim("R10b.4")]).iloc[0]
    assert row["verdict"] == "reproduced"
    assert row["computed"] == "stripes 0.50 vs 0.90; digits 0.60 vs 0.80"
    data.tables["10b_pooling"] = pooling([("stripes", 0.9, 0.5), ("digits", 0.6, 0.8)])
    assert claims_ledger(data, [real_claim("R10b.4")])["verdict"].iloc[0] == "differs"


def test_pooling_invariance_of_one_bright_pixel_counted_by_hand():
    # An identity 1x1 filter: the features are the image. One bright pixel in the corner of a
    # 2x2 pool window moves inside the window when shifted right or down (pooled map unchanged;
    # unpooled change sqrt(2)) and leaves the frame when shifted left or up (change 1 for both).
    images = np.zeros((1, 1, 4, 4))
    images[0, 0, 0, 0] = 1.0
    table = translation.pooling_invariance_table(np.ones((1, 1, 1, 1)), np.zeros(1), images, (1,))
    by_direction = table.set_index("direction")
    assert by_direction.loc[["right", "down"], "change_pooled"].tolist() == [0.0, 0.0]
    assert by_direction.loc[["left", "up"], "change_pooled"].tolist() == [1.0, 1.0]
    assert by_direction.loc[["right", "down"], "change_unpooled"].tolist() == pytest.approx(
        [np.sqrt(2), np.sqrt(2)]
    )
    assert by_direction.loc[["left", "up"], "change_unpooled"].tolist() == [1.0, 1.0]


def test_ink_lost_counts_what_the_frame_cuts_off():
    images = np.zeros((1, 1, 4, 4))
    images[0, 0, :, 0] = 1.0  # a line in the left column: only a shift left loses all of it
    table = translation.ink_lost_table({"toy": images}, shifts=(1,))
    # right: 0, left: all, down and up: one of four pixels each -> (0 + 1 + 1/4 + 1/4) / 4
    assert table["ink_lost"].iloc[0] == pytest.approx(1.5 / 4)


def test_noise_free_stripes_are_the_noisy_data_sets_patterns():
    # unseen_position_table relies on it: with noise_std=0 the same seed draws the same stripes.
    config = load_data(RunSpec("mlp", 3, 4, data="centred-stripes")).config
    noisy = reference.make_dataset(config)
    clean = reference.make_dataset(dataclasses.replace(config, noise_std=0.0))
    assert set(np.unique(clean.x_train)) == {0.0, 1.0}
    residual = noisy.x_train - clean.x_train
    # A misplaced stripe would leave residuals near +-1 on its pixels: the mean there moves.
    assert abs(residual[clean.x_train == 1].mean()) < 0.02
    assert residual.std() == pytest.approx(config.noise_std, rel=0.05)


def test_unseen_positions_counted_by_hand_for_one_pixel_stripes():
    # Vertical and horizontal stripes one pixel wide, in column (row) 3 or 4 of 8. Shifted by
    # one pixel, a stripe lands on the other training position in exactly one direction (3 ->
    # 4 right, 4 -> 3 left); across the stripe it loses its end pixel, a pattern never trained.
    config = reference.DatasetConfig(n_classes=2, max_width=1, margin=3, seed=0)
    table = translation.unseen_position_table(config, shifts=(1, 2))
    assert list(table["shift"]) == [1, 2]
    assert table["unseen"].tolist() == [0.75, 1.0]
