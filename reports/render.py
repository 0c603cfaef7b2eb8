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
from tinycnn.reference.data import DatasetConfig, DigitsConfig
from tinycnn.reference.gradcheck import DEFAULT_EPS
from tinycnn.reference.train import TrainConfig
from tinycnn.reports import digits, experiments, figures, gradients, translation
from tinycnn.reports.claims import COLUMNS, DIFFERS, NOT_TESTABLE, REPRODUCED
from tinycnn.reports.pipeline import (
    DIGITS_TORCH_FILTERS,
    HEADLINE_MLP_WIDTH,
    ReportData,
)
from tinycnn.reports.runs import CENTRED_STRIPES, DEFAULT_FILTERS, run_seed

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
    # Not in the lecture: its general claims tested on real digits and on shifted images. Lettered,
    # so the lecture's own sections keep their numbers (and their claims their ids).
    "10a": "Real digits",
    "10b": "Translation",
    "10c": "Filters on real data",
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
        if name.startswith("claims"):  # the two ledgers: claims.csv and claims_real_data.csv
            written.append(write_csv(table[list(COLUMNS)], out / f"{name}.csv"))
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
        (
            figures.sample_grid,
            (
                *A["digits_grid"],
                d / "10a_digit_samples.png",
                "Real digits: the first training images of each class (8x8, pixels / 16)",
            ),
        ),
        (
            figures.accuracy_vs_parameters,
            (T["10a_digits"], T["10a_logistic_regression"], d / "10a_digits_accuracy.png"),
        ),
        (
            figures.confusion_matrix,
            (*_confusion_arguments(A["digits_confusion"]), d / "10a_digits_confusion.png"),
        ),
        (
            figures.shift_examples,
            (A["shift_examples"], translation.SHIFTS, d / "10b_shift_examples.png"),
        ),
        (figures.translation, (T["10b_translation"], d / "10b_translation.png")),
        (
            figures.filter_evolution,
            (
                A["digits_snapshots"][0],
                _oriented(T["10c_digit_filter_orientation"]),
                d / "10c_digit_filters.png",
                f"{A['digits_snapshots'][1]} on real digits (seed {A['digits_snapshots'][2]}): "
                "3x3 kernels during training (final stripe orientation, section 7's score)",
            ),
        ),
        (figures.inference_trace, (A["trace"], A["class_names"], d / "11_inference_trace.png")),
        (figures.scaling, (T["12_architectures"], d / "12_scaling.png")),
    ]


def _oriented(scores: pd.DataFrame) -> list[str]:
    """Each filter's preferred orientation, or "unoriented" below the selectivity threshold."""
    selective = scores["selectivity"] >= experiments.MIN_SELECTIVITY
    return [p if ok else "unoriented" for p, ok in zip(scores["preferred"], selective, strict=True)]


def _confusion_arguments(confusion: tuple) -> tuple:
    matrix, class_names, model, seed = confusion
    accuracy = np.trace(matrix) / matrix.sum()
    title = f"{model}, seed {seed}: validation digits ({pct(accuracy)} correct)"
    return matrix, class_names, title


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
    # disable=None: tqdm draws the bar only on a terminal, never into a pipe or a log.
    with tqdm(
        total=len(jobs), desc="figures", unit="fig", disable=None if progress else True
    ) as bar:
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


def _section_claims(data: ReportData, section: int | str) -> list[str]:
    lettered = isinstance(section, str)
    claims = data.tables["claims_real_data" if lettered else "claims"]
    rows = claims[claims["section"] == section]
    if rows.empty:
        return []
    what = "General claims of the lecture tested here" if lettered else "The lecture's claims here"
    return [
        "",
        f"**{what}** (details in [section 14](#14-claims-ledger)):",
        "",
        markdown_table(
            rows,
            columns=["claim_id", "claim", "stated", "computed", "verdict"],
            headers={"claim_id": "id"},
        ),
    ]


def _and(items) -> str:
    """``"a, b and c"``: items as text, the last two joined by "and"."""
    items = [str(item) for item in items]
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else "".join(items)


def _figure(name: str, alt: str) -> str:
    return f"![{alt}](figures/{name}.png)"


def render_markdown(data: ReportData) -> str:
    """The whole of ``REPORT.md`` (deterministic: no dates, no timings)."""
    import torch

    T, s = data.tables, data.settings
    tally = claims_tally(T["claims"])
    real = claims_tally(T["claims_real_data"])
    seeds = ", ".join(str(run_seed(i)) for i in range(s.n_seeds))
    mode = "quick (`--quick`)" if s.quick else "full"
    lines = [
        "# TinyCNN: the lecture, recomputed",
        "",
        "Every table and figure of the CNN lecture (Part VII), rebuilt from this project's own "
        "code by `tinycnn report`. The lecture is treated as a set of claims: the "
        f"[claims ledger](#14-claims-ledger) compares each of its {len(T['claims'])} numeric "
        f"claims with what the code computes: **{tally[REPRODUCED]} reproduced, "
        f"{tally[DIFFERS]} differ, {tally[NOT_TESTABLE]} not testable**. Sections 10a-10c go "
        "beyond the lecture: its general claims, tested on real handwritten digits and on shifted "
        f"images, in a ledger of their own: **{real[REPRODUCED]} of {sum(real.values())} hold**.",
        "",
        f"Run: {mode}; {s.epochs} epochs; {s.n_seeds} seeds per configuration ({seeds}); "
        f"NumPy {np.__version__}, PyTorch {torch.__version__}. Tables are in `tables/*.csv`, "
        "figures in `figures/*.png`, the ledgers in `claims.csv` and `claims_real_data.csv`.",
        "",
        "Seeds: replicate *i* uses seed *S* = child *i* of `numpy.random.SeedSequence(0)`; like "
        "`tinycnn train --seed S`, it fixes the data, the initial weights and the batch order, so "
        "`tinycnn train --seed S` (with `--model`, `--hidden`, `--classes`) reproduces any run on "
        "the lecture's stripes (the runs of sections 10a-10c are `RunSpec`s of "
        "`tinycnn.reports.runs`: `execute(spec)` reproduces them). "
        "Models compared with each other share seeds.",
        "",
        "Contents: " + " · ".join(f"[{n}. {t}](#{_anchor(n, t)})" for n, t in TITLES.items()),
        "",
        "**Where the lecture and the code disagree:**",
        "",
        *_differences(T["claims"]),
        "",
        "**General claims that do not hold on real data:**",
        "",
        *_differences(T["claims_real_data"], none="- none: every general claim tested holds."),
    ]
    for section, title in TITLES.items():
        lines += ["", f"## {section}. {title}", ""]
        lines += SECTIONS[section](data)
        if section != 14:
            lines += _section_claims(data, section)
    return "\n".join(lines) + "\n"


def _differences(
    claims: pd.DataFrame, none: str = "- nowhere: every testable claim reproduced."
) -> list[str]:
    rows = claims[claims["verdict"] == DIFFERS]
    if rows.empty:
        return [none]
    return [
        f"- **{r['claim_id']}** {r['claim']}: stated {r['stated']}, computed {r['computed']} "
        f"({r['note']})"
        for r in rows.to_dict(orient="records")
    ]


def _anchor(number: int | str, title: str) -> str:
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
        "and leaves the other tensors clean, so it also says where the bug is. " + _kink_note(T),
        "",
        markdown_table(T, formats={"rel_error": sci}),
        "",
        _figure("05_gradient_check", "gradient check"),
    ]


def _kink_note(T) -> str:
    """How many units the gradient check left out, and why (issue 11)."""
    units = sum(int(np.prod([int(n) for n in shape.split(" x ")])) for shape in T["shape"])
    left_out = int(T["kink_units"].sum())
    return (
        f"{left_out} of {units} units were left out of the errors "
        "(column kink_units): a unit whose step of +-eps changes the sign of a ReLU input or "
        "the winner of a max-pool window straddles a kink, where a two-sided difference "
        "measures nothing."
    )


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


def _s10a(data: ReportData) -> list[str]:
    T = data.tables["10a_digits"]
    split = data.tables["10a_digits_split"]
    best = digits.best_tinycnn(T)
    matrix, names, _, seed = data.arrays["digits_confusion"]
    off = matrix - np.diag(np.diag(matrix))
    true, predicted = np.unravel_index(off.argmax(), off.shape)
    fits = data.tables["10a_logistic_regression"]
    ours = fits.iloc[0]
    unregularised = fits.iloc[-1]
    share_gap = float((split["train_share"] - split["validation_share"]).abs().max())
    cnn_rows = T[T["family"] == "TinyCNN"].sort_values("n_parameters")
    mlp_rows = T[T["family"] == "MLP"].sort_values("n_parameters")
    return [
        "The lecture's experiments use synthetic stripes only; its conclusions are general. "
        "Here the same models train on real images of TinyCNN's input size: scikit-learn's "
        f"{int(split[['train', 'validation']].to_numpy().sum()):,} handwritten "
        "digits (`sklearn.datasets.load_digits`, shipped inside the package, nothing "
        "downloaded; 8x8 pixels counting ink in 4x4 blocks of 32x32 bitmaps, divided by 16 so "
        "the background is 0 and a full stroke 1, like the stripes).",
        "",
        _figure("10a_digit_samples", "digit samples"),
        "",
        f"**Split.** One fixed, stratified split for every seed: "
        f"`train_test_split(train_size={int(split['train'].sum())}, stratify=labels, "
        f"random_state={DigitsConfig().split_seed})` gives "
        f"{int(split['train'].sum()):,} training and "
        f"{int(split['validation'].sum()):,} validation images; each digit's share differs by "
        f"at most {100 * share_gap:.2f} points between them (`tables/10a_digits_split.csv`). "
        "Seeds change only the initial weights and the batch order. Training is the stripes' "
        f"({data.settings.epochs} epochs, batch {TrainConfig().batch_size}, SGD with learning "
        f"rate {TrainConfig().lr:g} and momentum {TrainConfig().momentum:g}); a TinyCNN with F "
        "filters has a dense layer of 9F x 10.",
        "",
        markdown_table(
            T.drop(columns=["family", "size"]),
            formats={c: pct for c in ("mean", "min", "max", "train_mean")}
            | {"n_parameters": thousands, "largest_gap": lambda g: f"{100 * g:.2f} points"},
        ),
        "",
        _figure("10a_digits_accuracy", "digits accuracy against parameters"),
        "",
        "Each TinyCNN against the MLP nearest to it in parameters: "
        + "; ".join(
            f"{c.model} ({c.n_parameters:,}) {pct(c.mean)} vs {m['model']} "
            f"({m['n_parameters']:,}) {pct(m['mean'])}"
            for c, m in _nearest_in_size(cnn_rows, mlp_rows)
        )
        + ".",
        "",
        f"**Confusion matrix** of the most accurate TinyCNN, {best['model']} (seed {seed}, "
        f"validation set). Most frequent mistake: true {names[true]}, predicted "
        f"{names[predicted]} ({int(off[true, predicted])} images).",
        "",
        _figure("10a_digits_confusion", "confusion matrix"),
        "",
        "**Cross-check of the linear baseline.** scikit-learn's `LogisticRegression` (L-BFGS, "
        "multinomial) fitted on the same split is an independent implementation of our softmax "
        f"regression. With a weak penalty it is the same model: {pct(unregularised['val_acc'])} "
        f"against our SGD's {pct(ours['val_acc'])} "
        f"({100 * abs(unregularised['val_acc'] - ours['val_acc']):.2f} points apart).",
        "",
        markdown_table(fits, formats={"val_acc": pct, "train_acc": pct}),
        "",
        f"Section 13 trains TinyCNN ({DIGITS_TORCH_FILTERS} filters) and MLP "
        f"({HEADLINE_MLP_WIDTH} hidden) on the digits again with the PyTorch twins.",
    ]


def _nearest_in_size(cnn: pd.DataFrame, mlp: pd.DataFrame) -> list[tuple]:
    """Each TinyCNN row with the MLP row whose parameter count is closest (ties: smaller)."""
    pairs = []
    for c in cnn.itertuples():
        distance = (mlp["n_parameters"] - c.n_parameters).abs()
        pairs.append((c, mlp.loc[distance.sort_values(kind="stable").index[0]]))
    return pairs


#: Section 10b's markdown table (the CSV also has the survival's min and max over seeds).
TRANSLATION_COLUMNS = ("data", "model", "n_parameters", "shift", "n_seeds")
TRANSLATION_COLUMNS += ("mean", "min", "max", "survival")


def _s10b(data: ReportData) -> list[str]:
    T = data.tables["10b_translation"]
    E = data.tables["10b_equivariance"]
    positions = data.tables["10b_positions"]
    pooling = (
        data.tables["10b_pooling"]
        .groupby(["data", "model", "shift"], sort=False)[["change_unpooled", "change_pooled"]]
        .mean()
        .reset_index()
    )
    equivariance = (
        E.groupby(["data", "model", "shift"], sort=False)
        .agg(
            interior_error=("interior_error", "max"),
            border_error=("border_error", "max"),
            interior_fraction=("interior_fraction", "min"),
        )
        .reset_index()
    )
    unseen = data.tables["10b_unseen_positions"]
    spread = "; ".join(f"{r.data} {r.axis}s {r.p5:.2f}-{r.p95:.2f}" for r in positions.itertuples())
    return [
        "The lecture's comparison table says a CNN is translation-equivariant and an MLP is "
        "not. What does that buy? Models are trained on patterns that stay near the centre "
        f"and tested on copies of the validation images shifted by 1 to {translation.MAX_SHIFT} "
        "pixels right, left, down and up, with zero fill (`tinycnn.reference.shift_images`; "
        "pixels pushed out are lost).",
        "",
        f"- **Stripes**: TinyCNN ({DEFAULT_FILTERS} filters) and MLPs trained on stripes kept "
        "near the centre (`DatasetConfig` with "
        f"{', '.join(f'{k}={v}' for k, v in CENTRED_STRIPES.items())}: vertical and horizontal "
        "stripes in the middle columns or rows, diagonals near the main diagonal). Of the copies "
        f"shifted by {_and(unseen['shift'])} pixels, "
        f"{_and(f'{100 * u:.0f}%' for u in unseen['unseen'])} "
        "land where no training stripe was (noise-free patterns compared, "
        "`tables/10b_unseen_positions.csv`).",
        "- **Digits**: the models of section 10a. The digits come centred (the data set's "
        "own preprocessing).",
        "",
        "Centre of mass of the training images, 5th to 95th percentile, in pixels from the top "
        f"or left edge (centre {positions['centre'].iloc[0]:g}): {spread}.",
        "",
        _figure("10b_shift_examples", "shifted test copies"),
        "",
        "TinyCNN is compared with the MLP whose clean validation accuracy (mean over seeds) is "
        "closest to its own. *mean*, *min*, *max*: accuracy on the shifted copies (each seed's "
        "accuracy averaged over the four directions); *survival*: the share of images whose "
        "predicted class stays what it was without the shift, the whole model's invariance (its "
        "min-max over seeds is in `tables/10b_translation.csv`). Every run and direction is in "
        "`tables/10b_translation_runs.csv`.",
        "",
        markdown_table(
            T,
            columns=TRANSLATION_COLUMNS,
            formats={c: pct for c in ("mean", "min", "max", "survival")}
            | {"n_parameters": thousands},
        ),
        "",
        _figure("10b_translation", "accuracy against shift"),
        "",
        "After a 1-pixel shift the prediction survives for "
        + "; ".join(
            f"{r.model} on {r.data}: {pct(r.survival)}" for r in T[T["shift"] == 1].itertuples()
        )
        + " of the images.",
        "",
        "**The convolution layer alone is exactly equivariant.** For each trained conv layer, "
        "`conv(shift(x))` against `shift(conv(x))` on the validation images, largest difference "
        "over the four directions: *interior* = output positions the zero fill does not reach "
        "(their 3x3 window lies in the part of the shifted image that came from the original), "
        "*border* = the others, where the fill enters one side of the comparison and not the "
        "other. The model as a whole is far from invariant: its dense layer gives each position "
        "of the pooled map its own weights, so a shifted pattern meets different weights. "
        "Part of the loss is the frame, not the model: the share of the ink a shift pushes out "
        "of the 8x8 image (mean over images and directions) is "
        + "; ".join(
            f"{name} " + ", ".join(f"{pct(r.ink_lost)} at {r.shift} px" for r in rows.itertuples())
            for name, rows in data.tables["10b_ink_lost"].groupby("data", sort=False)
        )
        + ".",
        "",
        markdown_table(
            equivariance,
            formats={
                "interior_error": sci,
                "border_error": lambda v: f"{v:.3g}",
                "interior_fraction": pct,
            },
        ),
        "",
        "**What the max pool adds.** The same trained filters and validation images, with and "
        "without TinyCNN's 2x2 max pool: the relative change of the features under a shift, "
        "`||f(shift(x)) - f(x)|| / ||f(x)||` (mean over images), for `f = relu(conv(x))` "
        "(*unpooled*) and its pooled map (*pooled*); an invariant map would give 0. Averaged "
        "over the four directions:",
        "",
        markdown_table(
            pooling,
            formats={c: lambda v: f"{v:.3f}" for c in ("change_unpooled", "change_pooled")},
        ),
    ]


def _s10c(data: ReportData) -> list[str]:
    _, model, seed = data.arrays["digits_snapshots"]
    scores = data.tables["10c_digit_filter_orientation"]
    return [
        f"The 3x3 kernels of {model} trained on the digits (seed {seed}), at the lecture's "
        "epochs, drawn like section 7's figure (one colour scale per filter). In brackets, each "
        "final filter's preferred stripe orientation by section 7's score on clean stripes "
        f"(*selectivity* >= {experiments.MIN_SELECTIVITY} counts as an oriented detector). "
        "All weights are in `tables/10c_digit_filters.csv`.",
        "",
        _figure("10c_digit_filters", "filters learned on digits"),
        "",
        markdown_table(
            scores,
            formats={c: lambda v: f"{v:.3f}" for c in (*experiments.ORIENTATIONS, "selectivity")},
        ),
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
        "",
        "The same building blocks at scale: LeNet-5 (1998, average-pooling subsampling, the C3 "
        "connection table as a convolution with zeros where a map is not connected) and "
        "AlexNet's grouped conv2 block (2 groups, ReLU, overlapping 3x3 max pooling) run by the "
        "NumPy reference (`tinycnn.reference.functional`) and by PyTorch on one random float64 "
        "batch, with the PyTorch layers' weights and hyper-parameters. Errors relative to the "
        "largest PyTorch value; the tolerance is the parity suite's float64 model entry.",
        "",
        markdown_table(
            data.tables["12_reference_agreement"],
            formats={"max_rel_error": lambda v: f"{v:.2g}"},
        ),
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
    real = data.tables["claims_real_data"]
    real_tally = claims_tally(real)
    return [
        f"{len(claims)} claims: {tally[REPRODUCED]} reproduced, {tally[DIFFERS]} differ, "
        f"{tally[NOT_TESTABLE]} not testable. Rules: whole numbers, shapes and matrices must match "
        "exactly; values in rounded units (K, M, million) within 5%; rounded percentages and "
        "ratios must round to the stated digits; '~' accuracies and example probabilities "
        "within 0.02; yes/no claims by the criterion named in the note. Also in `claims.csv`.",
        "",
        "### The lecture's own numbers",
        "",
        markdown_table(claims),
        "",
        "### General claims tested on real data",
        "",
        f"{len(real)} of the lecture's general claims, tested on the real digits and on shifted "
        f"images (sections 10a-10c) by the same rules (yes/no, by the criterion in the note): "
        f"{real_tally[REPRODUCED]} hold (*reproduced*), {real_tally[DIFFERS]} do not "
        "(*differs*). Their ids start with R; kept apart from the rows above because they check "
        "the lecture's conclusions on data it never used, not its numbers. Also in "
        "`claims_real_data.csv`.",
        "",
        markdown_table(real),
    ]


SECTIONS: dict[int | str, Callable[[ReportData], list[str]]] = {
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
    "10a": _s10a,
    "10b": _s10b,
    "10c": _s10c,
    11: _s11,
    12: _s12,
    13: _s13,
    14: _s14,
}
