"""Plan the report's training runs, run each once, and compute every section's tables and arrays.

:func:`compute_report` is the whole computation: it returns a :class:`ReportData` (tables and
arrays, no files). Rendering (:mod:`tinycnn.reports.render`) only formats what is in it.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from tinycnn.reports import architectures, dataset, experiments, gradients, static
from tinycnn.reports.runs import RunResult, RunSpec, run_all, run_seed

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
    return groups


def _numpy_twin(spec: RunSpec) -> RunSpec:
    return replace(spec, backend="numpy")


def compute_report(settings: ReportSettings, progress: bool = True) -> ReportData:
    """Run every experiment and compute every table, array and the claims ledger."""
    from tinycnn.reports.claims import claims_ledger

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

    with timer("section 12"):
        tables["12_architectures"] = architectures.architecture_table()

    with timer("section 13"):
        pairs = [(results[_numpy_twin(spec)], results[spec]) for spec in groups["torch"]]
        tables["13_backend_agreement"] = experiments.backend_agreement_table(pairs)

    with timer("claims ledger"):
        tables["claims"] = claims_ledger(data)
    return data


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
