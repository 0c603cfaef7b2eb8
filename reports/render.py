"""Write a computed report: ``REPORT.md``, ``tables/*.csv``, ``figures/*.png``, ``claims.csv``.

Nothing is computed here beyond picking rows and formatting numbers: every value comes from
:class:`tinycnn.reports.pipeline.ReportData`. CSV files are byte-for-byte deterministic: floats are
written with 6 significant digits, rows in a fixed order, and nothing depends on the clock.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from tinycnn.reference.data import DatasetConfig
from tinycnn.reference.gradcheck import DEFAULT_EPS
from tinycnn.reference.train import TrainConfig
from tinycnn.reports import experiments, figures, gradients
from tinycnn.reports.claims import COLUMNS, DIFFERS, NOT_TESTABLE, REPRODUCED
from tinycnn.reports.pipeline import ReportData
from tinycnn.reports.runs import run_seed

from tinycnn.markdown import markdown_table

__all__ = [
    "claims_tally",
    "figure_jobs",
    "prepare_output_dir",
    "render_markdown",
    "write_report",
    "write_tables",
]

FLOAT_FORMAT = "%.6g"  # CSV: enough digits to compare runs, few enough to stay readable

TITLES = {
    1: "The curse of full connectivity",
    2: "Worked examples",
    3: "TinyCNN layer summary",
    4: "The dataset",
    5: "Gradient check",
    6: "Training curves",
    7: "Filter evolution",
    8: "CNN vs MLP",
    9: "MLP capacity sweep",
    10: "Four-class extension",
    11: "Inference trace",
    12: "Scaling up",
    13: "Backend agreement: NumPy vs PyTorch",
    14: "Claims ledger",
}


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def prepare_output_dir(out: str | os.PathLike) -> Path:
    """Create ``out``, ``out/tables`` and ``out/figures``; raise ``ValueError`` if not writable."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"cannot write the report to {os.fspath(out)}: it is a file")
    try:
        for directory in (out, out / "tables", out / "figures"):
            directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"cannot create {os.fspath(out)}: {error.strerror or error}") from None
    for directory in (out, out / "tables", out / "figures"):
        if not os.access(directory, os.W_OK | os.X_OK):
            raise ValueError(f"cannot write to {os.fspath(directory)}: permission denied")
    return out


def write_csv(table: pd.DataFrame, path: Path) -> Path:
    table.to_csv(path, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
    return path


def write_tables(data: ReportData, out: Path) -> list[Path]:
    """``tables/<name>.csv`` for every table, and the ledger as ``claims.csv``."""
    written = []
    for name, table in data.tables.items():
        if name == "claims":
            written.append(write_csv(table[list(COLUMNS)], out / "claims.csv"))
        else:
            written.append(write_csv(table, out / "tables" / f"{name}.csv"))
    return written


def figure_jobs(data: ReportData, directory: Path) -> list[tuple[Callable, tuple]]:
    """Every figure as ``(draw function, arguments)``: independent, so they can run in parallel."""
    T, A = data.tables, data.arrays
    orientation = T["07_orientation"]
    final = orientation[orientation["epoch"] == orientation["epoch"].max()]
    first, seed = T["06_epochs_to_99"][["first_epoch", "seed"]].iloc[0]
    d = directory
    return [
        (figures.connectivity, (T["01_connectivity"], d / "01_connectivity.png")),
        (figures.sample_grid, (*A["grid_3"], d / "04_samples_3_classes.png")),
        (figures.sample_grid, (*A["grid_4"], d / "04_samples_4_classes.png")),
        (figures.gradient_check, (T["05_gradient_check"], d / "05_gradient_check.png")),
        (
            figures.training_curves,
            (
                T["06_training_curves"],
                experiments.ACCURACY_TARGET,
                int(first),
                int(seed),
                d / "06_training_curves.png",
            ),
        ),
        (
            figures.filter_evolution,
            (A["snapshots"], list(final["preferred"]), d / "07_filter_evolution.png"),
        ),
        (
            figures.orientation_scores,
            (orientation, experiments.ORIENTATIONS, d / "07_orientation_scores.png"),
        ),
        (figures.cnn_vs_mlp, (T["08_cnn_vs_mlp"], d / "08_cnn_vs_mlp.png")),
        (figures.capacity_sweep, (T["09_capacity_sweep"], d / "09_capacity_sweep.png")),
        (figures.four_classes, (T["10_four_classes"], d / "10_four_classes.png")),
        (figures.inference_trace, (A["trace"], A["class_names"], d / "11_inference_trace.png")),
        (figures.scaling, (T["12_architectures"], d / "12_scaling.png")),
    ]


def _draw(function: Callable, args: tuple) -> str:
    return function(*args)


def write_figures(
    data: ReportData, out: Path, n_jobs: int | None = None, progress: bool = True
) -> list[Path]:
    """Draw every figure into ``out/figures`` (in parallel when ``n_jobs != 1``)."""
    from tqdm.auto import tqdm

    from tinycnn.parallel import default_jobs

    jobs = figure_jobs(data, out / "figures")
    n_jobs = default_jobs() if n_jobs is None else n_jobs
    with tqdm(total=len(jobs), desc="figures", unit="fig", disable=not progress) as bar:
        if n_jobs == 1:
            drawn = (_draw(f, a) for f, a in jobs)
        else:
            from joblib import Parallel, delayed

            drawn = Parallel(n_jobs=min(n_jobs, len(jobs)), return_as="generator_unordered")(
                delayed(_draw)(f, a) for f, a in jobs
            )
        paths = []
        for path in drawn:
            paths.append(Path(path))
            bar.update(1)
    return sorted(paths)


def write_report(
    data: ReportData, out: str | os.PathLike, n_jobs: int | None = None, progress: bool = True
) -> dict[str, list[Path]]:
    """Write the CSVs, the figures and ``REPORT.md``; return the written paths by kind."""
    out = prepare_output_dir(out)
    tables = write_tables(data, out)
    pngs = write_figures(data, out, n_jobs=n_jobs, progress=progress)
    report = out / "REPORT.md"
    report.write_text(render_markdown(data), encoding="utf-8")
    return {"tables": tables, "figures": pngs, "report": [report]}


# ---------------------------------------------------------------------------------------------
# Markdown (tables by the project's one renderer, :func:`tinycnn.markdown.markdown_table`)
# ---------------------------------------------------------------------------------------------


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def thousands(n) -> str:
    return f"{int(n):,}"


def sci(x: float) -> str:
    return f"{x:.1e}"


def claims_tally(claims: pd.DataFrame) -> dict[str, int]:
    """How many claims got each verdict (every verdict present, possibly 0)."""
    counts = claims["verdict"].value_counts()
    return {verdict: int(counts.get(verdict, 0)) for verdict in (REPRODUCED, DIFFERS, NOT_TESTABLE)}


def _section_claims(data: ReportData, section: int) -> list[str]:
    claims = data.tables["claims"]
    rows = claims[claims["section"] == section]
    if rows.empty:
        return []
    return [
        "",
        "**The lecture's claims here** (details in [section 14](#14-claims-ledger)):",
        "",
        markdown_table(
            rows,
            columns=["claim_id", "claim", "stated", "computed", "verdict"],
            headers={"claim_id": "id"},
        ),
    ]


def _figure(name: str, alt: str) -> str:
    return f"![{alt}](figures/{name}.png)"


def render_markdown(data: ReportData) -> str:
    """The whole of ``REPORT.md`` (deterministic: no dates, no timings)."""
    import torch

    T, s = data.tables, data.settings
    tally = claims_tally(T["claims"])
    seeds = ", ".join(str(run_seed(i)) for i in range(s.n_seeds))
    mode = "quick (`--quick`)" if s.quick else "full"
    lines = [
        "# TinyCNN: the lecture, recomputed",
        "",
        "Every table and figure of the CNN lecture (Part VII), rebuilt from this project's own "
        "code by `tinycnn report`. The lecture is treated as a set of claims: the "
        f"[claims ledger](#14-claims-ledger) compares each of its {len(T['claims'])} numeric "
        f"claims with what the code computes: **{tally[REPRODUCED]} reproduced, "
        f"{tally[DIFFERS]} differ, {tally[NOT_TESTABLE]} not testable**.",
        "",
        f"Run: {mode}; {s.epochs} epochs; {s.n_seeds} seeds per configuration ({seeds}); "
        f"NumPy {np.__version__}, PyTorch {torch.__version__}. Tables are in `tables/*.csv`, "
        "figures in `figures/*.png`, the ledger in `claims.csv`.",
        "",
        "Seeds: replicate *i* uses seed *S* = child *i* of `numpy.random.SeedSequence(0)`; like "
        "`tinycnn train --seed S`, it fixes the data, the initial weights and the batch order, so "
        "`tinycnn train --seed S` (with `--model`, `--hidden`, `--classes`) reproduces any run. "
        "Models compared with each other share seeds.",
        "",
        "Contents: " + " · ".join(f"[{n}. {t}](#{_anchor(n, t)})" for n, t in TITLES.items()),
        "",
        "**Where the lecture and the code disagree:**",
        "",
        *_differences(T["claims"]),
    ]
    for section, title in TITLES.items():
        lines += ["", f"## {section}. {title}", ""]
        lines += SECTIONS[section](data)
        if section != 14:
            lines += _section_claims(data, section)
    return "\n".join(lines) + "\n"


def _differences(claims: pd.DataFrame) -> list[str]:
    rows = claims[claims["verdict"] == DIFFERS]
    if rows.empty:
        return ["- nowhere: every testable claim reproduced."]
    return [
        f"- **{r['claim_id']}** {r['claim']}: stated {r['stated']}, computed {r['computed']} "
        f"({r['note']})"
        for r in rows.to_dict(orient="records")
    ]


def _anchor(number: int, title: str) -> str:
    text = f"{number}. {title}".lower()
    kept = "".join(c for c in text if c.isalnum() or c in " -")
    return kept.replace(" ", "-")


# -- one function per section: the sentences and the tables ------------------------------------


def _s1(data: ReportData) -> list[str]:
    T = data.tables["01_connectivity"]
    big = T.iloc[-1]
    return [
        "Parameters of one layer on a flattened image (dense, weights + biases) versus one "
        "convolution layer, counted from `torch.nn.Linear` and `torch.nn.Conv2d` built on the "
        "meta device. The dense layer grows with the number of pixels; the convolution does not: "
        f"on a {big['image']} image the dense layer needs "
        f"{big['dense_over_conv']:,.0f} times the convolution's parameters.",
        "",
        markdown_table(
            T,
            formats={
                c: thousands
                for c in T.columns
                if c.startswith(("dense_", "conv_", "inputs")) and c != "dense_over_conv"
            }
            | {"dense_over_conv": lambda x: f"{x:,.0f} x"},
        ),
        "",
        _figure("01_connectivity", "dense vs conv parameters"),
        "",
        "The three key ideas, measured on a 28x28 image: the receptive field is the set of "
        "pixels with a non-zero gradient for one convolution output; weight sharing counts the "
        "positions where one kernel weight is applied; equivariance compares the convolution of "
        "a shifted image with the shifted convolution.",
        "",
        markdown_table(
            data.tables["01_key_ideas"],
            formats={
                "dense": lambda v: "n/a" if np.isnan(v) else f"{v:g}",
                "conv": lambda v: f"{v:g}",
            },
        ),
    ]


def _s2(data: ReportData) -> list[str]:
    return [
        "Each worked example of the lecture, computed by `tinycnn.reference.ops` and again by "
        "`torch.nn.functional` (gradients by autograd); matrices are written row by row, rows "
        "separated by `/`. In the routing example the four upstream gradients are given "
        "distinct values and each input position is labelled with the one it received.",
        "",
        markdown_table(data.tables["02_worked_examples"]),
        "",
        "Output sizes, by the formula floor((W - K + 2P) / S) + 1 (`conv_output_size`) and by "
        "the width of a real `F.conv2d` output:",
        "",
        markdown_table(data.tables["02_output_sizes"]),
    ]


def _s3(data: ReportData) -> list[str]:
    T = data.tables["03_layer_summary"]
    dense = T[T["layer"].str.startswith("Dense")].iloc[0]
    total = T[T["layer"] == "Total"].iloc[0]
    return [
        "Rows come from `TinyCNN().layer_summary()`, which runs a blank image through the model "
        "and counts the parameter arrays, so shapes and counts are what the code does. "
        f"The dense layer holds {dense['n_parameters']} of the {total['n_parameters']} "
        f"parameters ({pct(dense['share'])}).",
        "",
        markdown_table(T, formats={"share": pct}),
    ]


def _s4(data: ReportData) -> list[str]:
    T = data.tables["04_linear_baseline"]
    config = DatasetConfig()
    linear = T[(T["model"] == "softmax regression") & (T["classes"] == 3)].iloc[0]
    return [
        "Samples from the generator (`tinycnn.reference.data`, seed of replicate 0): a stripe of "
        f"width "
        f"1-{config.max_width} at a random position (a centred blob for *dot*), plus Gaussian "
        f"noise of standard deviation {config.noise_std:g}; {config.n_train} training and "
        f"{config.n_val} validation images per dataset.",
        "",
        _figure("04_samples_3_classes", "samples, 3 classes"),
        _figure("04_samples_4_classes", "samples, 4 classes"),
        "",
        "A linear baseline (softmax regression on the 64 pixels, same data, SGD settings and "
        f"epochs as TinyCNN) reaches {pct(linear['mean'])} on average on 3 classes, against "
        "TinyCNN's accuracy below: far above chance, but short of what the CNN does. The linear "
        "model also overfits (train accuracy "
        f"{pct(linear['train_mean'])}).",
        "",
        markdown_table(T, formats={c: pct for c in ("mean", "min", "max", "train_mean")}),
    ]


def _s5(data: ReportData) -> list[str]:
    T = data.tables["05_gradient_check"]
    return [
        f"Two-sided finite differences (eps = {DEFAULT_EPS:g}) against backprop, on a batch of "
        f"{gradients.BATCH_SIZE} images in float64, one relative error "
        "||g_bp - g_num|| / (||g_bp|| + ||g_num||) per parameter tensor. The last model has a "
        "deliberately broken convolution backward pass (the kernel "
        "gradient comes out rotated by 180 degrees): the check flags the convolution weights "
        "and leaves the other tensors clean, so it also says where the bug is.",
        "",
        markdown_table(T, formats={"rel_error": sci}),
        "",
        _figure("05_gradient_check", "gradient check"),
    ]


def _s6(data: ReportData) -> list[str]:
    E = data.tables["06_epochs_to_99"]
    config = TrainConfig()
    first = int(E["first_epoch"].iloc[0])
    reached = "never reaches" if first < 0 else f"first reaches {experiments.ACCURACY_TARGET:.0%}"
    return [
        f"TinyCNN on 3 classes for {data.settings.epochs} epochs (batch {config.batch_size}, SGD "
        f"with learning rate {config.lr:g} and momentum {config.momentum:g}), loss and accuracy "
        "on the whole training and validation sets after "
        f"every epoch. Seed 0's validation accuracy {reached}"
        + ("" if first < 0 else f" at epoch {first}")
        + ". Every seed:",
        "",
        markdown_table(
            E, formats={"final_val_acc": pct, "final_gap": lambda g: f"{100 * g:.2f} points"}
        ),
        "",
        _figure("06_training_curves", "training curves"),
    ]


def _s7(data: ReportData) -> list[str]:
    scores = data.tables["07_orientation"]
    final = scores[scores["epoch"] == scores["epoch"].max()]
    return [
        "The three 3x3 kernels of seed 0 at the lecture's epochs (red positive, blue negative).",
        "",
        _figure("07_filter_evolution", "filter evolution"),
        "",
        "**Orientation score.** For each filter and each orientation (vertical, horizontal, "
        f"diagonal), {_patterns()} noise-free stripe images of that orientation (all positions "
        "and widths the generator draws) go through the filter; the score is the mean over the "
        "images of the largest ReLU response anywhere in the image, which is what max pooling "
        "passes on when that stripe is present. *preferred* is the orientation with the largest "
        "score, *selectivity* = 1 - second largest / largest (0: no preference, 1: responds to "
        f"one orientation only). A filter counts as an oriented detector when its selectivity is "
        f"at least {experiments.MIN_SELECTIVITY}.",
        "",
        markdown_table(
            scores,
            formats={c: lambda v: f"{v:.3f}" for c in (*experiments.ORIENTATIONS, "selectivity")},
        ),
        "",
        _figure("07_orientation_scores", "orientation scores"),
        "",
        f"At epoch {int(final['epoch'].iloc[0])} the filters prefer "
        + ", ".join(f"F{f}: {p}" for f, p in zip(final["filter"], final["preferred"], strict=True))
        + ". The final filters of every seed (*missing*: orientations without a selective "
        "detector):",
        "",
        markdown_table(data.tables["07_orientation_seeds"]),
    ]


def _patterns() -> str:
    from tinycnn.reports.pipeline import PATTERNS_PER_ORIENTATION

    return str(PATTERNS_PER_ORIENTATION)


def _accuracy_formats() -> dict[str, Callable]:
    return {c: pct for c in ("mean", "min", "max", "train_mean", "spread")}


def _s8(data: ReportData) -> list[str]:
    T = data.tables["08_cnn_vs_mlp"]
    mlp = T.iloc[1]
    return [
        f"TinyCNN against a one-hidden-layer MLP, {mlp['model']}: the lecture's comparison does "
        "not name the width; this is the widest MLP of its capacity sweep and four-class table. "
        "Same data and training; final validation accuracy over seeds; parameters counted from "
        "the models' arrays.",
        "",
        markdown_table(
            T,
            formats=_accuracy_formats()
            | {"parameter_ratio": lambda r: f"{r:.2f} x", "n_parameters": thousands},
        ),
        "",
        _figure("08_cnn_vs_mlp", "CNN vs MLP"),
    ]


def _s9(data: ReportData) -> list[str]:
    return [
        "MLPs of each hidden width, trained like TinyCNN, over the same seeds. Regimes, defined "
        f"before looking: **fails** = mean accuracy below {experiments.FAILS_BELOW_MEAN:.0%}; "
        f"**stable** = every seed reaches {experiments.ACCURACY_TARGET:.0%}; **unstable** = in "
        "between; **overkill** = stable although a narrower width is already stable.",
        "",
        markdown_table(
            data.tables["09_capacity_sweep"],
            formats=_accuracy_formats()
            | {"parameter_ratio": lambda r: f"{r:.2f} x", "n_parameters": thousands},
        ),
        "",
        _figure("09_capacity_sweep", "capacity sweep"),
    ]


def _s10(data: ReportData) -> list[str]:
    return [
        "Adding the dot class: the same architectures with a fourth output. "
        "`n_parameters_3_classes` is the same architecture built for 3 classes, so `added` is "
        "what the fourth class costs.",
        "",
        markdown_table(
            data.tables["10_four_classes"],
            formats=_accuracy_formats()
            | {c: thousands for c in ("n_parameters", "n_parameters_3_classes")},
        ),
        "",
        _figure("10_four_classes", "four classes"),
    ]


def _s11(data: ReportData) -> list[str]:
    P = data.tables["11_trace_probabilities"]
    return [
        "The first vertical image of the validation set through seed 0's trained TinyCNN, every "
        "intermediate array kept by `forward_with_activations`. Softmax of the traced image:",
        "",
        markdown_table(
            P, formats={"probability": lambda p: f"{p:.6f}", "logit": lambda v: f"{v:.3f}"}
        ),
        "",
        _figure("11_inference_trace", "inference trace"),
        "",
        "One sample can be unusual, so the same probabilities over all vertical validation images:",
        "",
        markdown_table(
            data.tables["11_trace_confidence"],
            formats={c: lambda p: f"{p:.4g}" for c in ("median", "min", "max")},
        ),
    ]


def _s12(data: ReportData) -> list[str]:
    return [
        "Each architecture written from its paper's layer table in `reports/architectures.py` "
        'and built under `torch.device("meta")`: parameters get shapes but no memory, nothing '
        "is downloaded. A forward pass of one meta image checks the output shape. Depth counts "
        "convolution and dense layers on the main path (ResNet's projection shortcuts run beside "
        "it). Where the classic count depends on the variant, both are built.",
        "",
        markdown_table(data.tables["12_architectures"], formats={"n_parameters": thousands}),
        "",
        _figure("12_scaling", "parameter counts"),
    ]


def _s13(data: ReportData) -> list[str]:
    T = data.tables["13_backend_agreement"]
    worst = T.loc[T["abs_difference"].idxmax()]
    return [
        "The headline runs (seed 0 of each configuration) trained again with "
        "`tinycnn.torch_impl.train` "
        "(`torch.optim.SGD`, `F.cross_entropy`) from the same initial weights, data and batch "
        f"order. Largest difference anywhere: **{worst['abs_difference']:.3g}** "
        f"({worst['run']}, {worst['quantity']}).",
        "",
        markdown_table(T, formats={"abs_difference": lambda v: f"{v:.3g}"}),
    ]


def _s14(data: ReportData) -> list[str]:
    claims = data.tables["claims"]
    tally = claims_tally(claims)
    return [
        f"{len(claims)} claims: {tally[REPRODUCED]} reproduced, {tally[DIFFERS]} differ, "
        f"{tally[NOT_TESTABLE]} not testable. Rules: whole numbers, shapes and matrices must match "
        "exactly; values in rounded units (K, M, million) within 5%; rounded percentages and "
        "ratios must round to the stated digits; '~' accuracies and example probabilities "
        "within 0.02; yes/no claims by the criterion named in the note. Also in `claims.csv`.",
        "",
        markdown_table(claims),
    ]


SECTIONS: dict[int, Callable[[ReportData], list[str]]] = {
    1: _s1,
    2: _s2,
    3: _s3,
    4: _s4,
    5: _s5,
    6: _s6,
    7: _s7,
    8: _s8,
    9: _s9,
    10: _s10,
    11: _s11,
    12: _s12,
    13: _s13,
    14: _s14,
}
