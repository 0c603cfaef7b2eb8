"""The report's figures: each function draws arrays or tables it is given and saves one PNG.

Nothing here computes a result. matplotlib runs headless (Agg backend), figures are written to
disk and closed, never shown.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: no display, no GUI toolkit, no warnings under pytest

import matplotlib.pyplot as plt  # after matplotlib.use, on purpose
import numpy as np
import pandas as pd
from matplotlib.patches import Patch

__all__ = [
    "accuracy_vs_parameters",
    "capacity_sweep",
    "cnn_vs_mlp",
    "confusion_matrix",
    "connectivity",
    "filter_evolution",
    "four_classes",
    "gradient_check",
    "inference_trace",
    "orientation_scores",
    "sample_grid",
    "scaling",
    "shift_examples",
    "training_curves",
    "translation",
]

DPI = 110
TRAIN_COLOR, VAL_COLOR, CNN_COLOR, MLP_COLOR = "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"
LINEAR_COLOR = "#7f7f7f"
FILTERS_AS_ROWS = 6  # filter_evolution: more filters than this are drawn as columns
ORIENTATION_COLORS = {"vertical": "#d62728", "horizontal": "#1f77b4", "diagonal": "#2ca02c"}


def _save(fig, path: str | os.PathLike) -> str:
    fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return os.fspath(path)


def _percent_axis(ax) -> None:
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))


# -- section 1 ---------------------------------------------------------------------------------


def connectivity(table: pd.DataFrame, path) -> str:
    """Dense vs convolution parameters per image shape, log scale."""
    dense_column = next(c for c in table.columns if c.startswith("dense_"))
    conv_column = next(c for c in table.columns if c.startswith("conv_"))
    x = np.arange(len(table))
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    dense_label = dense_column.replace("_", " ").replace("dense", "dense,")
    conv_label = conv_column.replace("_", " ").replace("conv", "conv,")
    for offset, column, color, label in (
        (-0.2, dense_column, MLP_COLOR, dense_label),
        (0.2, conv_column, CNN_COLOR, conv_label),
    ):
        bars = ax.bar(x + offset, table[column], width=0.4, color=color, label=label)
        ax.bar_label(bars, labels=[f"{v:,}" for v in table[column]], fontsize=8, padding=2)
    ax.set_yscale("log")
    ax.set_xticks(x, table["image"])
    ax.set_xlabel("input image (height x width x channels)")
    ax.set_ylabel("parameters (log scale)")
    ax.set_title("The curse of full connectivity: one layer's parameters")
    ax.legend(loc="upper left")
    ax.set_ylim(top=table[dense_column].max() * 20)
    return _save(fig, path)


# -- section 4 ---------------------------------------------------------------------------------


def sample_grid(
    images: np.ndarray, class_names: Sequence[str], path, title: str | None = None
) -> str:
    """Rows of sample images, one row per class. ``images (K, n, S, S)``.

    The images are tiled into one mosaic (one ``imshow``, not K*n axes): same picture, a
    fraction of the drawing time.
    """
    K, n, S, _ = images.shape
    gap = 1
    mosaic = np.full((K * (S + gap) - gap, n * (S + gap) - gap), np.nan)
    for k in range(K):
        for j in range(n):
            mosaic[k * (S + gap) : k * (S + gap) + S, j * (S + gap) : j * (S + gap) + S] = images[
                k, j
            ]
    limit = np.abs(images).max()
    cell = 1.1 if K <= 4 else 0.6  # ten rows of digits at the stripes' size would be too tall
    fig, ax = plt.subplots(figsize=(cell * n + 1.2, cell * K + 0.6), layout="constrained")
    cmap = matplotlib.colormaps["gray"].with_extremes(bad="white")
    ax.imshow(mosaic, cmap=cmap, vmin=-limit if images.min() < 0 else 0, vmax=limit)
    ax.set_yticks(
        [k * (S + gap) + (S - 1) / 2 for k in range(K)],
        [
            class_names[k] if class_names[k] == str(k) else f"{k}: {class_names[k]}"
            for k in range(K)
        ],
    )
    ax.set_xticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(title or f"Training images, {K} classes ({S}x{S} pixels with Gaussian noise)")
    return _save(fig, path)


# -- section 5 ---------------------------------------------------------------------------------

BANDS = (
    (1e-20, 1e-7, "#b7e4c7", "perfect (< 1e-7)"),
    (1e-7, 1e-5, "#fff3b0", "acceptable (1e-7 to 1e-5)"),
    (1e-5, 1e-3, "#ffd6a5", "suspicious (1e-5 to 1e-3)"),
    (1e-3, 10, "#ffadad", "bug (> 1e-3)"),
)


def gradient_check(table: pd.DataFrame, path) -> str:
    """Relative error per parameter tensor on a log axis, over the lecture's bands."""
    labels = [f"{m}: {p}" for m, p in zip(table["model"], table["parameter"], strict=True)]
    errors = table["rel_error"].clip(lower=1e-18)
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(table) + 1.5), layout="constrained")
    for low, high, color, name in BANDS:
        ax.axvspan(low, high, color=color, label=name, zorder=0)
    y = np.arange(len(table))[::-1]
    ax.barh(y, errors, color="#444444", height=0.6, zorder=2)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(min(1e-13, errors.min() / 10), 10)
    ax.set_xlabel("relative error between backprop and finite differences (log scale)")
    ax.set_title("Gradient check per parameter tensor (eps = 1e-5, float64)")
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    return _save(fig, path)


# -- section 6 ---------------------------------------------------------------------------------


def training_curves(
    curves: pd.DataFrame, target: float, first_epoch: int | None, seed: int, path
) -> str:
    """Loss and accuracy per epoch on both splits, with the target accuracy marked."""
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    for ax, metric, title in (
        (loss_ax, "loss", "Loss (cross-entropy)"),
        (acc_ax, "acc", "Accuracy"),
    ):
        ax.plot(curves["epoch"], curves[f"train_{metric}"], color=TRAIN_COLOR, label="train")
        ax.plot(
            curves["epoch"],
            curves[f"val_{metric}"],
            color=VAL_COLOR,
            label="validation",
            linestyle="--",
        )
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    loss_ax.set_ylabel("mean cross-entropy")
    acc_ax.set_ylabel("accuracy")
    _percent_axis(acc_ax)
    acc_ax.axhline(target, color="gray", linewidth=0.8, linestyle=":", label=f"{target:.0%}")
    if first_epoch is not None and first_epoch >= 0:
        acc_ax.axvline(first_epoch, color="gray", linewidth=0.8)
        acc_ax.annotate(
            f"first >= {target:.0%}: epoch {first_epoch}",
            (first_epoch, 0.5),
            xytext=(5, 0),
            textcoords="offset points",
            fontsize=8,
        )
    loss_ax.legend()
    acc_ax.legend(loc="lower right")
    fig.suptitle(f"TinyCNN training, 3 classes (seed {seed})")
    return _save(fig, path)


# -- section 7 ---------------------------------------------------------------------------------


def filter_evolution(
    snapshots: Mapping[int, tuple[np.ndarray, np.ndarray]],
    preferred: Sequence[str],
    path,
    title: str = "Filter evolution: 3x3 kernels during training (final orientation in brackets)",
) -> str:
    """The conv kernels at each snapshot epoch, one colour scale per filter.

    Up to :data:`FILTERS_AS_ROWS` filters: one row per filter, one column per epoch, as in the
    lecture. More filters: one column per filter, one row per epoch, so the figure stays short.
    """
    epochs = list(snapshots)
    weights = np.stack([snapshots[e][0][:, 0] for e in epochs])  # epochs, F, K, K
    F = weights.shape[1]
    as_rows = F <= FILTERS_AS_ROWS
    cell = 1.6 if as_rows else 1.0
    shape = (F, len(epochs)) if as_rows else (len(epochs), F)
    fig, axes = plt.subplots(
        *shape,
        figsize=(cell * shape[1] + 1.5, cell * shape[0] + 0.8),
        squeeze=False,
        layout="constrained",
    )
    image = None
    for f in range(F):
        # One colour scale per filter, across epochs: each filter is divided by its largest
        # |weight|, so the colour bar's -1..1 holds for every filter.
        limit = max(np.abs(weights[:, f]).max(), np.finfo(float).tiny)
        for j in range(len(epochs)):
            ax = axes[f, j] if as_rows else axes[j, f]
            image = ax.imshow(weights[j, f] / limit, cmap="RdBu_r", vmin=-1, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        label = f"F{f + 1}\n({preferred[f]})"
        if as_rows:
            axes[f, 0].set_ylabel(label)
        else:
            axes[0, f].set_title(label, fontsize=9)
    for j, epoch in enumerate(epochs):
        if as_rows:
            axes[0, j].set_title(f"epoch {epoch}")
        else:
            axes[j, 0].set_ylabel(f"epoch {epoch}")
    fig.colorbar(
        image, ax=axes, shrink=0.6, label="weight / filter's largest |weight|\n(red +, blue -)"
    )
    fig.suptitle(title)
    return _save(fig, path)


def orientation_scores(table: pd.DataFrame, orientations: Sequence[str], path) -> str:
    """Each filter's mean max-ReLU response to each orientation, first vs last snapshot."""
    first, last = table["epoch"].min(), table["epoch"].max()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True, layout="constrained")
    for ax, epoch in zip(axes, (first, last), strict=True):
        rows = table[table["epoch"] == epoch]
        x = np.arange(len(rows))
        width = 0.8 / len(orientations)
        for i, name in enumerate(orientations):
            ax.bar(
                x + (i - (len(orientations) - 1) / 2) * width,
                rows[name],
                width=width,
                color=ORIENTATION_COLORS.get(name),
                label=name,
            )
        ax.set_xticks(x, [f"F{f}" for f in rows["filter"]])
        ax.set_xlabel("filter")
        ax.set_title(f"epoch {epoch}")
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("mean max ReLU response\non clean stripes")
    axes[0].legend(title="stripe orientation")
    fig.suptitle("Orientation score: how strongly each filter responds to each orientation")
    return _save(fig, path)


# -- sections 8-10 -----------------------------------------------------------------------------


def _accuracy_points(ax, table: pd.DataFrame, labels, colors) -> None:
    """Mean accuracy as a point with its min-max range (points, not bars: the axis is zoomed)."""
    x = np.arange(len(table))
    for i, (_, row) in enumerate(table.iterrows()):
        spread = [[row["mean"] - row["min"]], [row["max"] - row["mean"]]]
        ax.errorbar(
            x[i], row["mean"], yerr=spread, fmt="o", color=colors[i], capsize=6, markersize=8
        )
    ax.set_xticks(x, labels)
    ax.set_xlim(-0.5, len(table) - 0.5)
    ax.set_ylabel("validation accuracy")
    _percent_axis(ax)
    ax.set_ylim(max(0.0, table["min"].min() - 0.02), 1.003)
    ax.grid(axis="y", alpha=0.3)


def _parameter_bars(ax, table: pd.DataFrame, labels, colors) -> None:
    x = np.arange(len(table))
    bars = ax.bar(x, table["n_parameters"], color=colors)
    ax.bar_label(bars, labels=[f"{v:,}" for v in table["n_parameters"]], padding=2)
    ax.set_xticks(x, labels)
    ax.set_ylabel("parameters")
    ax.set_ylim(top=table["n_parameters"].max() * 1.15)


def cnn_vs_mlp(table: pd.DataFrame, path) -> str:
    """Parameters and accuracy over seeds of TinyCNN and the MLP."""
    colors = [CNN_COLOR if m == "TinyCNN" else MLP_COLOR for m in table["model"]]
    fig, (p_ax, a_ax) = plt.subplots(1, 2, figsize=(9, 3.8), layout="constrained")
    _parameter_bars(p_ax, table, table["model"], colors)
    p_ax.set_title("Parameters")
    _accuracy_points(a_ax, table, table["model"], colors)
    a_ax.set_title(f"Accuracy: mean, min-max over {int(table['n_seeds'].iloc[0])} seeds")
    fig.suptitle("CNN vs MLP, 3 classes")
    return _save(fig, path)


def capacity_sweep(table: pd.DataFrame, path) -> str:
    """MLP accuracy (mean and min-max over seeds) against hidden width; TinyCNN as a line."""
    mlp = table[table["model"] != "TinyCNN"]
    cnn = table[table["model"] == "TinyCNN"].iloc[0]
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    ax.axhspan(cnn["min"], cnn["max"] + 1e-4, color=CNN_COLOR, alpha=0.15)
    ax.axhline(
        cnn["mean"],
        color=CNN_COLOR,
        linestyle="--",
        label=f"TinyCNN ({cnn['n_parameters']} params), mean and min-max",
    )
    errors = np.vstack([mlp["mean"] - mlp["min"], mlp["max"] - mlp["mean"]])
    ax.errorbar(
        mlp["width"],
        mlp["mean"],
        yerr=errors,
        color=MLP_COLOR,
        marker="o",
        capsize=5,
        label=f"MLP mean, min-max over {int(mlp['n_seeds'].iloc[0])} seeds",
    )
    for _, row in mlp.iterrows():
        ax.annotate(
            f"{row['regime']}\n{row['n_parameters']:,} params",
            (row["width"], row["min"]),
            xytext=(0, -26),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    ax.set_xticks(mlp["width"])
    ax.set_xlabel("hidden layer width")
    ax.set_ylabel("validation accuracy")
    _percent_axis(ax)
    ax.set_ylim(max(0.0, mlp["min"].min() - 0.12), 1.02)
    ax.set_title("MLP capacity sweep (3 classes)")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def four_classes(table: pd.DataFrame, path) -> str:
    """Parameters and accuracy of the four-class models."""
    colors = [CNN_COLOR if m == "TinyCNN" else MLP_COLOR for m in table["model"]]
    labels = [f"{m}" for m in table["model"]]
    fig, (p_ax, a_ax) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    _parameter_bars(p_ax, table, labels, colors)
    p_ax.set_title("Parameters")
    _accuracy_points(a_ax, table, labels, colors)
    a_ax.set_title(f"Accuracy: mean, min-max over {int(table['n_seeds'].iloc[0])} seeds")
    fig.suptitle("Four classes: vertical, horizontal, diagonal, dot")
    return _save(fig, path)


# -- section 10a: real digits -------------------------------------------------------------------


def accuracy_vs_parameters(table: pd.DataFrame, reference_fits: pd.DataFrame, path) -> str:
    """Digits accuracy (mean, min-max over seeds) against parameters, log axis, per family.

    ``table`` is the digits sweep (``family``, ``size``, ``n_parameters``, ``mean``, ``min``,
    ``max``, ``n_seeds``); ``reference_fits`` has scikit-learn's fits (``model``,
    ``n_parameters``, ``val_acc``), drawn as open markers.
    """
    # Family: colour, marker, point label, and where the label goes (above, below, right).
    styles = {
        "TinyCNN": (CNN_COLOR, "o", "{} filters", "above"),
        "MLP": (MLP_COLOR, "s", "{}", "below"),
        "linear": (LINEAR_COLOR, "D", "linear", "right"),
    }
    placements = {
        "above": ("max", (0, 8), "center", "bottom"),
        "below": ("min", (0, -6), "center", "top"),
        "right": ("mean", (9, -3), "left", "top"),
    }
    fig, ax = plt.subplots(figsize=(9, 5), layout="constrained")
    n_seeds = int(table["n_seeds"].iloc[0])
    for family, (color, marker, label, where) in styles.items():
        rows = table[table["family"] == family].sort_values("n_parameters")
        if rows.empty:
            continue
        errors = np.vstack([rows["mean"] - rows["min"], rows["max"] - rows["mean"]])
        name = {"MLP": "MLP (label: hidden width)", "linear": "softmax regression (SGD)"}
        ax.errorbar(
            rows["n_parameters"],
            rows["mean"],
            yerr=errors,
            color=color,
            marker=marker,
            markersize=7,
            capsize=5,
            linestyle="-" if len(rows) > 1 else "none",
            label=name.get(family, family),
        )
        anchor, offset, ha, va = placements[where]
        for row in rows.itertuples():
            ax.annotate(
                label.format(row.size),
                (row.n_parameters, getattr(row, anchor)),
                xytext=offset,
                textcoords="offset points",
                ha=ha,
                va=va,
                fontsize=8,
                color=color,
            )
    sklearn_rows = reference_fits[reference_fits["model"].str.startswith("scikit-learn")]
    for row, marker in zip(sklearn_rows.itertuples(), ("^", "v"), strict=False):
        ax.plot(
            row.n_parameters,
            row.val_acc,
            marker=marker,
            markersize=8,
            markerfacecolor="none",
            color="black",
            linestyle="none",
            label=row.model.replace("scikit-learn LogisticRegression", "scikit-learn LogReg"),
        )
    ax.set_xscale("log")
    ticks = (100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)
    low, high = table["n_parameters"].min(), table["n_parameters"].max()
    ax.set_xticks([t for t in ticks if low / 2 <= t <= high * 2], minor=False)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlim(low / 1.3, high * 1.3)
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel("validation accuracy")
    _percent_axis(ax)
    low = min(table["min"].min(), sklearn_rows["val_acc"].min() if len(sklearn_rows) else 1)
    ax.set_ylim(max(0.0, low - 0.04), 1.012)  # room for the labels above the best points
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(
        f"Real 8x8 digits: accuracy against parameters (mean, min-max over {n_seeds} seeds)"
    )
    return _save(fig, path)


def confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], title: str, path) -> str:
    """A confusion matrix with its counts written in the cells (rows: true class)."""
    K = len(class_names)
    fig, ax = plt.subplots(figsize=(6.2, 5.4), layout="constrained")
    # Off-diagonal errors are what matter: a log-like scale keeps single mistakes visible.
    shown = np.log1p(matrix)
    image = ax.imshow(shown, cmap="Blues")
    threshold = shown.max() / 2
    for i in range(K):
        for j in range(K):
            if matrix[i, j]:
                ax.text(
                    j,
                    i,
                    str(matrix[i, j]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if shown[i, j] > threshold else "black",
                )
    ax.set_xticks(range(K), class_names)
    ax.set_yticks(range(K), class_names)
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.8, label="log(1 + count)")
    return _save(fig, path)


# -- section 10b: translation -------------------------------------------------------------------


def shift_examples(examples: Mapping[str, np.ndarray], shifts: Sequence[int], path) -> str:
    """One validation image per dataset, shifted right by each shift with zero fill."""
    names = list(examples)
    fig, axes = plt.subplots(
        len(names),
        len(shifts),
        figsize=(1.3 * len(shifts) + 1.2, 1.4 * len(names) + 0.6),
        squeeze=False,
        layout="constrained",
    )
    for i, name in enumerate(names):
        images = examples[name]
        limit = np.abs(images).max()
        for j, shift in enumerate(shifts):
            ax = axes[i, j]
            ax.imshow(images[j], cmap="gray", vmin=-limit if images.min() < 0 else 0, vmax=limit)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"shift {shift} px")
        axes[i, 0].set_ylabel(name)
    fig.suptitle("Test copies: shifted right with zero fill")
    return _save(fig, path)


def translation(summary: pd.DataFrame, path) -> str:
    """Accuracy and prediction survival against shift, TinyCNN vs MLP, one column per dataset."""
    datasets = list(dict.fromkeys(summary["data"]))
    fig, axes = plt.subplots(
        2, len(datasets), figsize=(5 * len(datasets), 7), squeeze=False, layout="constrained"
    )
    for col, name in enumerate(datasets):
        rows = summary[summary["data"] == name]
        for model in dict.fromkeys(rows["model"]):
            r = rows[rows["model"] == model].sort_values("shift")
            color = CNN_COLOR if model.startswith("TinyCNN") else MLP_COLOR
            label = f"{model}, {int(r['n_parameters'].iloc[0]):,} params"
            for row, (column, low, high) in enumerate(
                (("mean", "min", "max"), ("survival", "survival_min", "survival_max"))
            ):
                errors = np.vstack([r[column] - r[low], r[high] - r[column]])
                axes[row, col].errorbar(
                    r["shift"],
                    r[column],
                    yerr=errors,
                    color=color,
                    marker="o",
                    capsize=5,
                    label=label,
                )
        n_classes = 10 if name == "digits" else 3
        for row, ylabel in enumerate(("accuracy on shifted copies", "predictions unchanged")):
            ax = axes[row, col]
            ax.set_xticks(sorted(set(rows["shift"])))
            ax.set_xlabel("shift (pixels, mean over right, left, down, up)")
            ax.set_ylabel(ylabel)
            _percent_axis(ax)
            ax.set_ylim(0, 1.03)
            ax.grid(alpha=0.3)
            if row == 0:
                ax.axhline(1 / n_classes, color="gray", linestyle=":", linewidth=1)
                ax.annotate(
                    "chance",
                    (0, 1 / n_classes),
                    xytext=(2, 3),
                    textcoords="offset points",
                    fontsize=8,
                    color="gray",
                )
                ax.set_title(f"{name}: trained on centred patterns")
            ax.legend(loc="upper right", fontsize=8)
    fig.suptitle(f"Translation: mean and min-max over {int(summary['n_seeds'].iloc[0])} seeds")
    return _save(fig, path)


# -- section 11 --------------------------------------------------------------------------------


def inference_trace(trace: Mapping[str, np.ndarray], class_names: Sequence[str], path) -> str:
    """One image through TinyCNN: input, conv, ReLU and pooled maps, flat vector, softmax."""
    F = trace["conv"].shape[0]
    fig = plt.figure(figsize=(14, 4.4), layout="constrained")
    grid = fig.add_gridspec(F, 6, width_ratios=[1.4, 1, 1, 1, 0.45, 1.8])
    ax = fig.add_subplot(grid[:, 0])
    ax.imshow(trace["input"], cmap="gray")
    ax.set_title("input 1x8x8")
    ax.set_xticks([])
    ax.set_yticks([])
    maps_limit = max(np.abs(trace["conv"]).max(), 1e-12)
    columns = (
        ("conv", "conv", "RdBu_r", -maps_limit),
        ("relu", "ReLU", "Reds", 0),
        ("pool", "max pool", "Reds", 0),
    )
    for col, (key, title, cmap, vmin) in enumerate(columns, start=1):
        for f in range(F):
            ax = fig.add_subplot(grid[f, col])
            ax.imshow(trace[key][f], cmap=cmap, vmin=vmin, vmax=maps_limit)
            ax.set_xticks([])
            ax.set_yticks([])
            if f == 0:
                shape = "x".join(map(str, trace[key].shape))
                ax.set_title(f"{title} {shape}")
            if col == 1:
                ax.set_ylabel(f"F{f + 1}")
    ax = fig.add_subplot(grid[:, 4])
    ax.imshow(trace["flatten"][:, None], cmap="Reds", aspect="auto", vmin=0, vmax=maps_limit)
    ax.set_title(f"flat {trace['flatten'].size}")
    ax.set_xticks([])
    ax.set_ylabel("feature index")
    ax = fig.add_subplot(grid[:, 5])
    probabilities = trace["probabilities"]
    bars = ax.barh(np.arange(len(probabilities))[::-1], probabilities, color=CNN_COLOR)
    ax.bar_label(bars, labels=[f"{p:.4f}" for p in probabilities], padding=2, fontsize=8)
    ax.set_yticks(np.arange(len(probabilities))[::-1], class_names)
    ax.set_xlim(0, 1.35)
    ax.set_xlabel("softmax probability")
    ax.set_title("softmax")
    fig.suptitle("Inference trace: one vertical validation image through the trained TinyCNN")
    return _save(fig, path)


# -- section 12 --------------------------------------------------------------------------------


def scaling(table: pd.DataFrame, path) -> str:
    """Parameter counts of the classic CNNs on a log axis, with their depth."""
    y = np.arange(len(table))[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(table) + 1.5), layout="constrained")
    bars = ax.barh(
        y,
        table["n_parameters"],
        color=[CNN_COLOR if name == "TinyCNN" else "#7f7f7f" for name in table["architecture"]],
    )
    ax.bar_label(
        bars,
        labels=[
            f"{n:,}  (depth {d})"
            for n, d in zip(table["n_parameters"], table["depth"], strict=True)
        ],
        padding=3,
        fontsize=8,
    )
    ax.set_yticks(y, table["architecture"])
    ax.set_xscale("log")
    ax.set_xlim(10, table["n_parameters"].max() * 300)
    ax.set_xlabel("parameters (log scale)")
    ax.set_title("Scaling up: parameters counted from meta-device builds")
    ax.legend(
        handles=[
            Patch(color=CNN_COLOR, label="this project"),
            Patch(color="#7f7f7f", label="classic CNNs"),
        ],
        loc="upper right",
    )
    return _save(fig, path)
