"""Sections 4 (baseline), 6-11 and 13: tables and arrays computed from finished training runs.

Every function takes :class:`tinycnn.reports.runs.RunResult` objects (or arrays) and returns a
DataFrame or arrays; none trains, reads a file or draws. The thresholds that turn numbers into words
("fails", "stable", "oriented") are module constants, named and documented here, so the report
can print them next to the verdicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
from tinycnn.reference import ops
from tinycnn.reference.data import CLASS_NAMES, DatasetConfig, make_images
from tinycnn.reports.runs import RunResult, build_model

from tinycnn import reference

__all__ = [
    "ACCURACY_TARGET",
    "FAILS_BELOW_MEAN",
    "MIN_SELECTIVITY",
    "ORIENTATIONS",
    "accuracy_summary",
    "backend_agreement_table",
    "baseline_table",
    "capacity_sweep_table",
    "clean_patterns",
    "cnn_vs_mlp_table",
    "epochs_to_target_table",
    "filter_snapshot_table",
    "filter_snapshots",
    "four_class_table",
    "inference_trace",
    "missing_orientations",
    "orientation_over_seeds",
    "orientation_scores",
    "orientation_table",
    "regime",
    "trace_confidence_table",
    "training_curves_table",
]

#: "Reaches 99%": the validation accuracy the lecture's convergence claim is about.
ACCURACY_TARGET = 0.99
#: Capacity sweep: a width "fails" when its mean accuracy over seeds is below this.
FAILS_BELOW_MEAN = 0.90
#: The three stripe orientations a TinyCNN filter can detect (the first three classes).
ORIENTATIONS = CLASS_NAMES[:3]
#: A filter counts as an oriented detector when its selectivity is at least this (see
#: :func:`orientation_scores`): its best orientation beats the second best by 25% or more.
MIN_SELECTIVITY = 0.25


# ---------------------------------------------------------------------------------------------
# Accuracy over seeds (sections 4, 8, 9, 10)
# ---------------------------------------------------------------------------------------------


def accuracy_summary(results: Sequence[RunResult]) -> dict:
    """Final validation accuracy over replicate runs of one configuration.

    Returns
    -------
    dict with ``n_seeds``, ``mean``, ``min``, ``max`` (validation accuracy after the last epoch),
    ``train_mean`` (training accuracy) and ``n_parameters``.
    """
    if not results:
        raise ValueError("need at least one run to summarise")
    counts = {r.n_parameters for r in results}
    if len(counts) != 1:
        raise ValueError(f"runs of one configuration must share a parameter count, got {counts}")
    final = np.array([r.final_val_acc for r in results])
    return {
        "n_seeds": len(results),
        "mean": float(final.mean()),
        "min": float(final.min()),
        "max": float(final.max()),
        "train_mean": float(np.mean([r.train_acc[-1] for r in results])),
        "n_parameters": counts.pop(),
    }


def baseline_table(
    linear: Mapping[int, Sequence[RunResult]], cnn: Mapping[int, Sequence[RunResult]]
) -> pd.DataFrame:
    """Softmax regression next to TinyCNN, for each number of classes.

    ``linear[n_classes]`` and ``cnn[n_classes]`` are the replicate runs of each model.
    """
    rows = []
    for n_classes in sorted(linear):
        for name, runs in (
            ("softmax regression", linear[n_classes]),
            ("TinyCNN", cnn.get(n_classes, ())),
        ):
            if runs:
                rows.append({"model": name, "classes": n_classes, **accuracy_summary(runs)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Section 6: training curves
# ---------------------------------------------------------------------------------------------


def training_curves_table(result: RunResult) -> pd.DataFrame:
    """Loss and accuracy on both splits after every epoch (epoch 0: before training)."""
    return pd.DataFrame(
        {
            "epoch": np.arange(len(result.val_acc)),
            "train_loss": result.train_loss,
            "train_acc": result.train_acc,
            "val_loss": result.val_loss,
            "val_acc": result.val_acc,
        }
    )


def epochs_to_target_table(
    results: Sequence[RunResult], target: float = ACCURACY_TARGET
) -> pd.DataFrame:
    """Per replicate: the first epoch with validation accuracy >= ``target`` (-1: never)."""
    rows = []
    for r in sorted(results, key=lambda r: r.spec.replicate):
        first = r.first_epoch_reaching(target)
        rows.append(
            {
                "replicate": r.spec.replicate,
                "seed": r.seed,
                "first_epoch": -1 if first is None else first,
                "final_val_acc": r.final_val_acc,
                "final_gap": r.train_acc[-1] - r.final_val_acc,
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Section 7: filters and their orientation
# ---------------------------------------------------------------------------------------------


def filter_snapshots(result: RunResult) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``{epoch: (conv.weight (F, 1, K, K), conv.bias (F,))}`` of a TinyCNN run, by epoch."""
    if not result.snapshots:
        raise ValueError(f"run {result.spec.name} kept no parameter snapshots")
    return {
        epoch: (p["conv.weight"], p["conv.bias"]) for epoch, p in sorted(result.snapshots.items())
    }


def filter_snapshot_table(snapshots: Mapping[int, tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """One row per (epoch, filter): the bias and the kernel entries ``w[row,col]``."""
    rows = []
    for epoch, (weight, bias) in snapshots.items():
        F, _, K, _ = weight.shape
        for f in range(F):
            row = {"epoch": epoch, "filter": f + 1, "bias": float(bias[f])}
            row.update(
                {f"w[{i},{j}]": float(weight[f, 0, i, j]) for i in range(K) for j in range(K)}
            )
            rows.append(row)
    return pd.DataFrame(rows)


def clean_patterns(n_per_class: int, seed: int, image_size: int = 8) -> dict[str, np.ndarray]:
    """Noise-free images of each orientation, from the project's generator with ``noise_std=0``.

    Returns ``{orientation: images (n_per_class, 1, S, S)}`` covering the generator's random
    positions and widths.
    """
    config = DatasetConfig(n_classes=len(ORIENTATIONS), image_size=image_size, noise_std=0.0)
    rng = np.random.default_rng(seed)
    return {
        name: make_images(np.full(n_per_class, label), rng, config)
        for label, name in enumerate(ORIENTATIONS)
    }


def orientation_scores(
    weight: np.ndarray, bias: np.ndarray, patterns: Mapping[str, np.ndarray]
) -> pd.DataFrame:
    """How strongly each filter responds to each stripe orientation.

    The response of filter ``f`` to orientation ``c`` is the mean, over the clean images of
    ``c``, of the largest value of ``ReLU(conv(x, w_f) + b_f)`` anywhere in the image: what the
    max-pooled feature map reports when that stripe is present.

    Parameters
    ----------
    weight : ndarray, shape (F, 1, K, K)
    bias : ndarray, shape (F,)
    patterns : dict of orientation name -> images (N, 1, S, S)

    Returns
    -------
    DataFrame, one row per filter: ``filter`` (1-based), one response column per orientation,
    ``preferred`` (the orientation with the largest response, ``none`` if the filter never
    fires) and ``selectivity = 1 - second largest / largest`` (0: responds equally to two
    orientations, 1: responds to one only).
    """
    names = list(patterns)
    responses = np.stack(
        [
            ops.relu_forward(ops.conv2d_forward(patterns[name], weight, bias))
            .max(axis=(2, 3))
            .mean(axis=0)  # F
            for name in names
        ],
        axis=1,
    )  # F, n_orientations
    rows = []
    for f, r in enumerate(responses):
        ranked = np.sort(r)[::-1]
        fires = ranked[0] > 0
        rows.append(
            {
                "filter": f + 1,
                **{name: float(v) for name, v in zip(names, r, strict=True)},
                "preferred": names[int(np.argmax(r))] if fires else "none",
                "selectivity": float(1 - ranked[1] / ranked[0]) if fires else 0.0,
            }
        )
    return pd.DataFrame(rows)


def orientation_table(
    snapshots: Mapping[int, tuple[np.ndarray, np.ndarray]], patterns: Mapping[str, np.ndarray]
) -> pd.DataFrame:
    """:func:`orientation_scores` at every snapshot epoch, stacked (column ``epoch`` first)."""
    tables = [
        orientation_scores(w, b, patterns).assign(epoch=epoch)
        for epoch, (w, b) in snapshots.items()
    ]
    table = pd.concat(tables, ignore_index=True)
    return table[["epoch", *[c for c in table.columns if c != "epoch"]]]


def missing_orientations(
    scores: pd.DataFrame, min_selectivity: float = MIN_SELECTIVITY
) -> list[str]:
    """The orientations no filter detects selectively (in :data:`ORIENTATIONS` order)."""
    selective = set(scores.loc[scores["selectivity"] >= min_selectivity, "preferred"])
    return [name for name in ORIENTATIONS if name not in selective]


def covers_orientations(scores: pd.DataFrame, min_selectivity: float = MIN_SELECTIVITY) -> bool:
    """True when the filters include a selective detector for every orientation."""
    return not missing_orientations(scores, min_selectivity)


def orientation_over_seeds(
    results: Sequence[RunResult],
    patterns: Mapping[str, np.ndarray],
    min_selectivity: float = MIN_SELECTIVITY,
) -> pd.DataFrame:
    """For each replicate's final filters: preferred orientations, selectivities, full coverage."""
    rows = []
    for r in sorted(results, key=lambda r: r.spec.replicate):
        scores = orientation_scores(
            r.final_params["conv.weight"], r.final_params["conv.bias"], patterns
        )
        rows.append(
            {
                "replicate": r.spec.replicate,
                "seed": r.seed,
                "preferred": " / ".join(scores["preferred"]),
                "selectivity": " / ".join(f"{s:.2f}" for s in scores["selectivity"]),
                "n_selective": int((scores["selectivity"] >= min_selectivity).sum()),
                "missing": " / ".join(missing_orientations(scores, min_selectivity)),
                "covers_all_orientations": covers_orientations(scores, min_selectivity),
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Sections 8-10: CNN vs MLP, capacity sweep, four classes
# ---------------------------------------------------------------------------------------------


def cnn_vs_mlp_table(cnn: Sequence[RunResult], mlp: Sequence[RunResult]) -> pd.DataFrame:
    """Parameters and accuracy over seeds of TinyCNN and one MLP, and the parameter ratio."""
    rows = []
    cnn_summary = accuracy_summary(cnn)
    for name, runs in (("TinyCNN", cnn), (f"MLP ({mlp[0].spec.hidden} hidden)", mlp)):
        summary = accuracy_summary(runs)
        rows.append(
            {
                "model": name,
                **summary,
                "parameter_ratio": summary["n_parameters"] / cnn_summary["n_parameters"],
            }
        )
    return pd.DataFrame(rows)


def regime(
    minimum: float,
    mean: float,
    target: float = ACCURACY_TARGET,
    fails_below: float = FAILS_BELOW_MEAN,
) -> str:
    """Name a width's behaviour over seeds: fails, unstable or stable.

    fails: mean accuracy below ``fails_below``; stable: every seed reaches ``target``;
    unstable: in between (works on average, but not on every seed).
    """
    if mean < fails_below:
        return "fails"
    return "stable" if minimum >= target else "unstable"


def capacity_sweep_table(
    mlp: Mapping[int, Sequence[RunResult]], cnn: Sequence[RunResult]
) -> pd.DataFrame:
    """Accuracy over seeds for each MLP width, with TinyCNN as the reference row.

    Returns
    -------
    DataFrame with ``model``, ``width`` (0 for TinyCNN), ``n_parameters``, ``parameter_ratio``
    (vs TinyCNN), ``mean``, ``min``, ``max``, ``spread`` (max - min) and ``regime``: fails,
    unstable, stable, or overkill (stable although a narrower width is already stable).
    """
    cnn_summary = accuracy_summary(cnn)
    rows = []
    narrowest_stable = None
    for width in sorted(mlp):
        s = accuracy_summary(mlp[width])
        name = regime(s["min"], s["mean"])
        if name == "stable":
            if narrowest_stable is not None:
                name = "overkill"
            else:
                narrowest_stable = width
        rows.append(
            {
                "model": f"MLP ({width} hidden)",
                "width": width,
                "n_parameters": s["n_parameters"],
                "parameter_ratio": s["n_parameters"] / cnn_summary["n_parameters"],
                "n_seeds": s["n_seeds"],
                "mean": s["mean"],
                "min": s["min"],
                "max": s["max"],
                "spread": s["max"] - s["min"],
                "regime": name,
            }
        )
    rows.append(
        {
            "model": "TinyCNN",
            "width": 0,
            "n_parameters": cnn_summary["n_parameters"],
            "parameter_ratio": 1.0,
            "n_seeds": cnn_summary["n_seeds"],
            "mean": cnn_summary["mean"],
            "min": cnn_summary["min"],
            "max": cnn_summary["max"],
            "spread": cnn_summary["max"] - cnn_summary["min"],
            "regime": regime(cnn_summary["min"], cnn_summary["mean"]),
        }
    )
    return pd.DataFrame(rows)


def four_class_table(
    cnn: Sequence[RunResult], mlp: Mapping[int, Sequence[RunResult]]
) -> pd.DataFrame:
    """Four classes: parameters (and what the fourth class added) and accuracy over seeds.

    ``n_parameters_3_classes`` is counted on the same architecture built for three classes, so
    ``added`` is the cost of the extra class.
    """
    rows = []
    entries = [("TinyCNN", "3 filters", cnn)] + [
        (f"MLP ({width} hidden)", f"{width} hidden", mlp[width]) for width in sorted(mlp)
    ]
    for name, size, runs in entries:
        s = accuracy_summary(runs)
        spec = runs[0].spec
        n_three = build_model(replace(spec, n_classes=3)).n_parameters
        rows.append(
            {
                "model": name,
                "size": size,
                "n_parameters": s["n_parameters"],
                "n_parameters_3_classes": n_three,
                "added": s["n_parameters"] - n_three,
                "n_seeds": s["n_seeds"],
                "mean": s["mean"],
                "min": s["min"],
                "max": s["max"],
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Section 11: inference trace
# ---------------------------------------------------------------------------------------------


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``logits (N, K)``, computed stably."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def _trained_cnn(params: Mapping[str, np.ndarray]) -> reference.TinyCNN:
    n_classes = params["fc.weight"].shape[0]
    return reference.TinyCNN(n_classes=n_classes).load_params(params)


def inference_trace(params: Mapping[str, np.ndarray], image: np.ndarray) -> dict[str, np.ndarray]:
    """One image through a trained TinyCNN, keeping every intermediate array.

    Parameters
    ----------
    params : dict
        TinyCNN parameters.
    image : ndarray, shape (S, S)

    Returns
    -------
    dict with ``input (S, S)``, ``conv (F, H, W)``, ``relu (F, H, W)``, ``pool (F, P, P)``,
    ``flatten (F*P*P,)``, ``logits (K,)`` and ``probabilities (K,)``.
    """
    model = _trained_cnn(params)
    logits, a = model.forward_with_activations(image[None, None])
    return {
        "input": image,
        "conv": a["conv"][0],
        "relu": a["relu"][0],
        "pool": a["pool"][0],
        "flatten": a["flatten"][0],
        "logits": logits[0],
        "probabilities": softmax(logits)[0],
    }


def trace_confidence_table(
    params: Mapping[str, np.ndarray],
    x: np.ndarray,
    labels: np.ndarray,
    label: int,
    class_names: Sequence[str],
) -> pd.DataFrame:
    """Softmax probabilities a trained TinyCNN gives the images of class ``label``.

    One row per output class: ``median``, ``min`` and ``max`` over those images, so a single
    traced sample can be compared with what is typical.
    """
    images = x[labels == label]
    if len(images) == 0:
        raise ValueError(f"no images of class {label}")
    probabilities = softmax(_trained_cnn(params).forward(images))  # N, K
    return pd.DataFrame(
        {
            "class": list(class_names),
            "median": np.median(probabilities, axis=0),
            "min": probabilities.min(axis=0),
            "max": probabilities.max(axis=0),
            "n_images": len(images),
        }
    )


# ---------------------------------------------------------------------------------------------
# Section 13: backend agreement
# ---------------------------------------------------------------------------------------------


def backend_agreement_table(
    pairs: Sequence[tuple[RunResult, RunResult]], target: float = ACCURACY_TARGET
) -> pd.DataFrame:
    """The headline numbers of NumPy and PyTorch runs from the same weights, side by side.

    Parameters
    ----------
    pairs : sequence of (numpy run, torch run)
        Runs of the same spec except for the backend.

    Returns
    -------
    DataFrame with ``run``, ``quantity``, ``numpy``, ``torch`` and ``abs_difference``.
    """
    rows = []
    for numpy_run, torch_run in pairs:
        a, b = numpy_run.spec, torch_run.spec
        if replace(a, backend=b.backend, snapshot_epochs=b.snapshot_epochs) != b:
            raise ValueError(f"runs {a} and {b} differ in more than the backend")
        first = (numpy_run.first_epoch_reaching(target), torch_run.first_epoch_reaching(target))
        quantities = {
            "final validation accuracy": (numpy_run.final_val_acc, torch_run.final_val_acc),
            "final training accuracy": (numpy_run.train_acc[-1], torch_run.train_acc[-1]),
            "final training loss": (numpy_run.train_loss[-1], torch_run.train_loss[-1]),
            "final validation loss": (numpy_run.val_loss[-1], torch_run.val_loss[-1]),
            f"first epoch with validation accuracy >= {target:g}": tuple(
                -1 if e is None else e for e in first
            ),
        }
        # Whole-trajectory differences: one number each, no per-backend value.
        differences = {
            "largest |parameter difference| after training": max(
                float(np.abs(numpy_run.final_params[k] - torch_run.final_params[k]).max())
                for k in numpy_run.final_params
            ),
            "largest |validation accuracy difference| over epochs": float(
                np.abs(np.subtract(numpy_run.val_acc, torch_run.val_acc)).max()
            ),
        }
        for quantity, (x, y) in quantities.items():
            rows.append(
                {
                    "run": a.name,
                    "quantity": quantity,
                    "numpy": x,
                    "torch": y,
                    "abs_difference": abs(x - y),
                }
            )
        for quantity, difference in differences.items():
            rows.append(
                {
                    "run": a.name,
                    "quantity": quantity,
                    "numpy": np.nan,
                    "torch": np.nan,
                    "abs_difference": difference,
                }
            )
    return pd.DataFrame(rows)
