"""Plan the report's training runs, run each once, and compute every section's tables and arrays.

:func:`compute_report` is the whole computation: it returns a :class:`ReportData` (tables and
arrays, no files). Rendering (:mod:`tinycnn.reports.render`) only formats what is in it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tinycnn.reports import (
    architectures,
    dataset,
    digits,
    experiments,
    gradients,
    static,
    translation,
)
from tinycnn.reports.runs import RunResult, RunSpec, load_data, run_all, run_seed

from tinycnn import reference

__all__ = ["ReportData", "ReportSettings", "compute_report", "plan_runs"]

FULL_EPOCHS = 80  # the lecture's training length
QUICK_EPOCHS = 10  # --quick: TinyCNN passes 99% within a few epochs; 10 shows the plateau
FULL_SEEDS = 5  # the lecture's "min/max (5 seeds)"
QUICK_SEEDS = 2
SNAPSHOT_EPOCHS = (0, 5, 15, 40, 80)  # the filter-evolution figure's columns
MLP_WIDTHS = (1, 4, 8, 12, 18)  # capacity sweep
HEADLINE_MLP_WIDTH = 18  # the MLP of the CNN-vs-MLP comparison
FOUR_CLASS_MLP_WIDTHS = (8, 18)
PATTERNS_PER_ORIENTATION = 200  # clean images per orientation for the filter scores
GRID_IMAGES_PER_CLASS = 6
# Sections 10a-10c: real digits and translation.
DIGITS_FILTERS = (3, 8, 16)  # TinyCNN sizes on the digits: 310, 810 and 1,610 parameters
DIGITS_MLP_WIDTHS = (4, 8, 12, 18, 32, 64)  # 310 to 4,810 parameters, around the TinyCNNs
DIGITS_TORCH_FILTERS = 8  # the digits TinyCNN trained again in PyTorch (section 13)
CENTRED_MLP_WIDTHS = (8, 18)  # MLPs on centred stripes; the closest in accuracy is compared


@dataclass(frozen=True)
class ReportSettings:
    """What a ``tinycnn report`` invocation asks for.

    Parameters
    ----------
    quick : bool
        Fewer epochs (and, by default, seeds): for CI.
    n_seeds : int
        Replicates of every accuracy-over-seeds experiment.
    epochs : int
    n_jobs : int or None
        Worker processes for the training runs (None: all cores). Results do not depend on it.
    scheduler : str or None
        Address of a Dask scheduler that runs the training runs instead of local workers.
        Results do not depend on it either.
    """

    quick: bool = False
    n_seeds: int = FULL_SEEDS
    epochs: int = FULL_EPOCHS
    n_jobs: int | None = None
    scheduler: str | None = None

    def __post_init__(self):
        if self.n_seeds < 1:
            raise ValueError(f"need at least 1 seed, got {self.n_seeds}")
        if self.epochs < 1:
            raise ValueError(f"need at least 1 epoch, got {self.epochs}")

    @classmethod
    def from_options(
        cls,
        quick: bool = False,
        seeds: int | None = None,
        jobs: int | None = None,
        scheduler: str | None = None,
    ) -> ReportSettings:
        """Settings for the command-line options; ``seeds=None`` means 5 (2 with ``quick``)."""
        default_seeds = QUICK_SEEDS if quick else FULL_SEEDS
        return cls(
            quick=quick,
            n_seeds=default_seeds if seeds is None else seeds,
            epochs=QUICK_EPOCHS if quick else FULL_EPOCHS,
            n_jobs=jobs,
            scheduler=scheduler,
        )

    @property
    def snapshot_epochs(self) -> tuple[int, ...]:
        """The lecture's snapshot epochs that fit in the run, plus the last epoch."""
        kept = [e for e in SNAPSHOT_EPOCHS if e <= self.epochs]
        return tuple(sorted({*kept, self.epochs}))


@dataclass
class ReportData:
    """Everything the report shows: tables (written as CSV), arrays (drawn) and the ledger."""

    settings: ReportSettings
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    arrays: dict[str, object] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per step (not in CSVs)


def plan_runs(settings: ReportSettings) -> dict[str, list[RunSpec]]:
    """Every training run of the report, grouped by the experiment that reads it.

    Groups overlap (the CNN-vs-MLP comparison reads the capacity sweep's 18-wide MLP); the
    runner executes each distinct spec once.
    """
    replicates = range(settings.n_seeds)
    epochs = settings.epochs

    def cnn(n_classes: int, replicate: int, backend: str = "numpy") -> RunSpec:
        return RunSpec(
            "tinycnn", n_classes, None, replicate, epochs, backend, settings.snapshot_epochs
        )

    def mlp(width: int, n_classes: int, replicate: int, backend: str = "numpy") -> RunSpec:
        return RunSpec("mlp", n_classes, width, replicate, epochs, backend)

    def linear(n_classes: int, replicate: int, backend: str = "numpy") -> RunSpec:
        return RunSpec("linear", n_classes, None, replicate, epochs, backend)

    groups = {
        "cnn-3": [cnn(3, i) for i in replicates],
        "cnn-4": [cnn(4, i) for i in replicates],
        "linear-3": [linear(3, i) for i in replicates],
        "linear-4": [linear(4, i) for i in replicates],
    }
    for width in MLP_WIDTHS:
        groups[f"mlp{width}-3"] = [mlp(width, 3, i) for i in replicates]
    for width in FOUR_CLASS_MLP_WIDTHS:
        groups[f"mlp{width}-4"] = [mlp(width, 4, i) for i in replicates]
    # Section 13: the headline configurations again in PyTorch, from the same weights (replicate 0).
    groups["torch"] = [
        cnn(3, 0, "torch"),
        mlp(HEADLINE_MLP_WIDTH, 3, 0, "torch"),
        cnn(4, 0, "torch"),
        linear(3, 0, "torch"),
    ]
    groups["torch"] += [mlp(width, 4, 0, "torch") for width in FOUR_CLASS_MLP_WIDTHS]

    # Sections 10a and 10c: the real digits (10 classes, one fixed split for every seed).
    digits_classes = reference.DigitsConfig().n_classes
    for filters in DIGITS_FILTERS:
        groups[f"digits-cnn{filters}"] = [
            replace(cnn(digits_classes, i), n_filters=filters, data="digits") for i in replicates
        ]
    for width in DIGITS_MLP_WIDTHS:
        groups[f"digits-mlp{width}"] = [
            replace(mlp(width, digits_classes, i), data="digits") for i in replicates
        ]
    groups["digits-linear"] = [
        replace(linear(digits_classes, i), data="digits") for i in replicates
    ]
    # Section 10b: stripes kept near the centre, tested later on shifted copies.
    groups["centred-cnn"] = [replace(cnn(3, i), data="centred-stripes") for i in replicates]
    for width in CENTRED_MLP_WIDTHS:
        groups[f"centred-mlp{width}"] = [
            replace(mlp(width, 3, i), data="centred-stripes") for i in replicates
        ]
    groups["torch"] += [
        replace(cnn(digits_classes, 0, "torch"), n_filters=DIGITS_TORCH_FILTERS, data="digits"),
        replace(mlp(HEADLINE_MLP_WIDTH, digits_classes, 0, "torch"), data="digits"),
    ]
    return groups


def _numpy_twin(spec: RunSpec) -> RunSpec:
    return replace(spec, backend="numpy")


def compute_report(settings: ReportSettings, progress: bool = True) -> ReportData:
    """Run every experiment and compute every table, array and the claims ledger."""
    from tinycnn.reports.claims import REAL_DATA_CLAIMS, claims_ledger

    data = ReportData(settings)
    timer = _Timer(data.seconds)
    tables, arrays = data.tables, data.arrays
    seed0 = run_seed(0)

    with timer("training runs"):
        groups = plan_runs(settings)
        results = run_all(
            [spec for specs in groups.values() for spec in specs],
            n_jobs=settings.n_jobs,
            progress=progress,
            scheduler=settings.scheduler,
        )
        runs: dict[str, list[RunResult]] = {
            name: [results[s] for s in specs] for name, specs in groups.items()
        }

    with timer("sections 1-3"):
        tables["01_connectivity"] = static.connectivity_table()
        tables["01_key_ideas"] = static.key_ideas_table()
        tables["02_worked_examples"] = static.worked_examples_table()
        tables["02_output_sizes"] = static.output_size_table()
        tables["03_layer_summary"] = static.layer_summary_table(reference.TinyCNN())

    with timer("sections 4-5"):
        for n_classes in (3, 4):
            arrays[f"grid_{n_classes}"] = dataset.sample_grid(
                n_classes, GRID_IMAGES_PER_CLASS, seed0
            )
        tables["04_linear_baseline"] = experiments.baseline_table(
            {3: runs["linear-3"], 4: runs["linear-4"]}, {3: runs["cnn-3"], 4: runs["cnn-4"]}
        )
        tables["05_gradient_check"] = gradients.gradient_check_table(seed0)

    with timer("sections 6-11"):
        headline = runs["cnn-3"][0]
        tables["06_training_curves"] = experiments.training_curves_table(headline)
        tables["06_epochs_to_99"] = experiments.epochs_to_target_table(runs["cnn-3"])
        snapshots = experiments.filter_snapshots(headline)
        arrays["snapshots"] = snapshots
        patterns = experiments.clean_patterns(PATTERNS_PER_ORIENTATION, seed0)
        tables["07_filters"] = experiments.filter_snapshot_table(snapshots)
        tables["07_orientation"] = experiments.orientation_table(snapshots, patterns)
        tables["07_orientation_seeds"] = experiments.orientation_over_seeds(runs["cnn-3"], patterns)
        tables["08_cnn_vs_mlp"] = experiments.cnn_vs_mlp_table(
            runs["cnn-3"], runs[f"mlp{HEADLINE_MLP_WIDTH}-3"]
        )
        tables["09_capacity_sweep"] = experiments.capacity_sweep_table(
            {w: runs[f"mlp{w}-3"] for w in MLP_WIDTHS}, runs["cnn-3"]
        )
        tables["10_four_classes"] = experiments.four_class_table(
            runs["cnn-4"], {w: runs[f"mlp{w}-4"] for w in FOUR_CLASS_MLP_WIDTHS}
        )

        data_seed0 = reference.make_dataset(seed=seed0)
        vertical = int(np.flatnonzero(data_seed0.y_val == 0)[0])
        trace = experiments.inference_trace(headline.final_params, data_seed0.x_val[vertical, 0])
        arrays["trace"] = trace
        arrays["class_names"] = data_seed0.class_names
        tables["11_trace_probabilities"] = pd.DataFrame(
            {
                "class": list(data_seed0.class_names),
                "logit": trace["logits"],
                "probability": trace["probabilities"],
            }
        )
        tables["11_trace_confidence"] = experiments.trace_confidence_table(
            headline.final_params, data_seed0.x_val, data_seed0.y_val, 0, data_seed0.class_names
        )

    with timer("sections 10a-10c"), threadpool_limits(limits=1):
        # Small arrays: one BLAS thread is faster than several, and never fights the workers.
        _real_data_sections(data, runs)

    with timer("section 12"):
        tables["12_architectures"] = architectures.architecture_table()
        tables["12_reference_agreement"] = architectures.reference_agreement_table(
            seed=seed0, batch_size=2
        )

    with timer("section 13"):
        pairs = [(results[_numpy_twin(spec)], results[spec]) for spec in groups["torch"]]
        tables["13_backend_agreement"] = experiments.backend_agreement_table(pairs)

    with timer("claims ledger"):
        tables["claims"] = claims_ledger(data)
        tables["claims_real_data"] = claims_ledger(data, REAL_DATA_CLAIMS)
    return data


def _real_data_sections(data: ReportData, runs: Mapping[str, list[RunResult]]) -> None:
    """Sections 10a (real digits), 10b (translation) and 10c (filters on real data)."""
    tables, arrays = data.tables, data.arrays
    digits_runs = {
        **{f"cnn{f}": runs[f"digits-cnn{f}"] for f in DIGITS_FILTERS},
        **{f"mlp{w}": runs[f"digits-mlp{w}"] for w in DIGITS_MLP_WIDTHS},
        "linear": runs["digits-linear"],
    }
    dataset_digits = load_data(runs["digits-linear"][0].spec)

    # 10a: accuracy against parameters, the confusion matrix, the scikit-learn cross-check.
    tables["10a_digits_split"] = digits.split_table(dataset_digits)
    arrays["digits_grid"] = digits.sample_digits(dataset_digits, GRID_IMAGES_PER_CLASS)
    sweep = digits.digits_sweep_table(list(digits_runs.values()))
    tables["10a_digits"] = sweep
    best = digits.best_tinycnn(sweep)
    best_runs = digits_runs[f"cnn{int(best['size'])}"]
    best_run = min(best_runs, key=lambda r: r.spec.replicate)
    matrix = digits.confusion_matrix(best_run)
    arrays["digits_confusion"] = (matrix, dataset_digits.class_names, best["model"], best_run.seed)
    tables["10a_digits_confusion"] = digits.confusion_table(matrix, dataset_digits.class_names)
    tables["10a_logistic_regression"] = digits.logistic_regression_table(
        dataset_digits, runs["digits-linear"]
    )

    # 10b: the best TinyCNN against the MLP closest to it in clean accuracy, on both datasets.
    digits_mlps = {w: runs[f"digits-mlp{w}"] for w in DIGITS_MLP_WIDTHS}
    digits_width, _ = translation.similar_mlp(best_runs, digits_mlps)
    centred_mlps = {w: runs[f"centred-mlp{w}"] for w in CENTRED_MLP_WIDTHS}
    centred_width, _ = translation.similar_mlp(runs["centred-cnn"], centred_mlps)
    compared = {
        "stripes": {
            "TinyCNN (3 filters)": runs["centred-cnn"],
            f"MLP ({centred_width} hidden)": centred_mlps[centred_width],
        },
        "digits": {
            best["model"]: best_runs,
            f"MLP ({digits_width} hidden)": digits_mlps[digits_width],
        },
    }
    per_run = pd.concat(
        [
            translation.shift_accuracy_table(models).assign(data=name)
            for name, models in compared.items()
        ],
        ignore_index=True,
    )
    per_run = per_run[["data", *[c for c in per_run.columns if c != "data"]]]
    tables["10b_translation_runs"] = per_run
    summaries = []
    for name in compared:
        summary = translation.translation_summary(per_run[per_run["data"] == name])
        summaries.append(summary.assign(data=name))
    summary = pd.concat(summaries, ignore_index=True)
    tables["10b_translation"] = summary[["data", *[c for c in summary if c != "data"]]]

    centred_run = runs["centred-cnn"][0]
    centred_data = load_data(centred_run.spec)
    equivariance, pooling = [], []
    for name, run, images in (
        ("stripes", centred_run, centred_data.x_val),
        ("digits", best_run, dataset_digits.x_val),
    ):
        table = translation.equivariance_table(
            run.final_params["conv.weight"], run.final_params["conv.bias"], images
        )
        model = f"{run.spec.label}, seed {run.seed}"
        equivariance.append(table.assign(data=name, model=model))
        table = translation.pooling_invariance_table(
            run.final_params["conv.weight"], run.final_params["conv.bias"], images
        )
        pooling.append(table.assign(data=name, model=model))
    equivariance = pd.concat(equivariance, ignore_index=True)
    tables["10b_equivariance"] = equivariance[
        ["data", "model", *[c for c in equivariance if c not in ("data", "model")]]
    ]
    pooling = pd.concat(pooling, ignore_index=True)
    tables["10b_pooling"] = pooling[
        ["data", "model", *[c for c in pooling if c not in ("data", "model")]]
    ]
    tables["10b_positions"] = translation.position_table(
        {"stripes": centred_data.x_train, "digits": dataset_digits.x_train}
    )
    tables["10b_unseen_positions"] = translation.unseen_position_table(centred_data.config)
    tables["10b_ink_lost"] = translation.ink_lost_table(
        {"stripes": centred_data.x_val, "digits": dataset_digits.x_val}
    )
    vertical = int(np.flatnonzero(centred_data.y_val == 0)[0])
    arrays["shift_examples"] = {
        "stripes": translation.shift_examples(centred_data.x_val[vertical, 0]),
        "digits": translation.shift_examples(dataset_digits.x_val[0, 0]),
    }

    # 10c: the filters of the best digits TinyCNN, at the lecture's epochs.
    snapshots = experiments.filter_snapshots(best_run)
    arrays["digits_snapshots"] = (snapshots, best["model"], best_run.seed)
    tables["10c_digit_filters"] = experiments.filter_snapshot_table(snapshots)
    patterns = experiments.clean_patterns(PATTERNS_PER_ORIENTATION, run_seed(0))
    weight, bias = snapshots[max(snapshots)]
    tables["10c_digit_filter_orientation"] = experiments.orientation_scores(weight, bias, patterns)


class _Timer:
    """``with timer("step"):`` adds the step's wall time to ``seconds[step]``."""

    def __init__(self, seconds: dict[str, float]):
        self.seconds = seconds

    @contextlib.contextmanager
    def __call__(self, step: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[step] = self.seconds.get(step, 0.0) + time.perf_counter() - start
