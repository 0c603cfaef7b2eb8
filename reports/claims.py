# ruff: noqa: RUF001, RUF002  (the lecture's multiplication signs and dashes are quoted verbatim)
"""The claims ledger: every numeric claim of the lecture, next to what this project computes.

This module is the only place where the lecture's stated values are typed. Each :class:`Claim`
pairs the lecture's words and its stated value (verbatim, as a string) with two things:

- a *measure*: a function of the computed report (:class:`tinycnn.reports.pipeline.ReportData`) that
  returns the computed value, how to show it, and a one-line explanation;
- a *rule* that decides the verdict: ``reproduced`` or ``differs``.

Claims that code cannot check (historical dates) have no measure: ``not testable``, with the
reason. The rules, and how each reads a stated value:

==============  =================================================================================
``exact``       whole numbers, shapes and matrices must be equal ("1,242", "3 × 6 × 6", "5 2 / 4 2")
``rounded``     the computed value rounded to the stated precision equals it ("73%", "10.9×")
``within(r)``   values stated in rounded units ("60 K", "138 M", "150 million"): within r relative
``above``       "> 99%": the computed value is larger
``below``       "< 1e-5": the computed value is smaller
``at_most``     "within ~40 epochs": the computed value is not larger
``near(t)``     "~92%", "0.94": within t absolute
``holds``       a yes/no claim, tested by a stated criterion ("width 1 fails")
==============  =================================================================================
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tinycnn.reports import experiments, gradients, static

from tinycnn import reference

__all__ = [
    "CLAIMS",
    "COLUMNS",
    "REAL_DATA_CLAIMS",
    "VERDICTS",
    "Claim",
    "Measurement",
    "claims_ledger",
    "judge",
    "parse_number",
]

COLUMNS = ("claim_id", "section", "claim", "stated", "computed", "verdict", "note")
REPRODUCED, DIFFERS, NOT_TESTABLE = "reproduced", "differs", "not testable"
VERDICTS = (REPRODUCED, DIFFERS, NOT_TESTABLE)

#: Relative tolerance for values the lecture states in rounded units (K, M, million).
ROUNDED_UNITS_TOLERANCE = 0.05
#: Absolute tolerance for "~92%"-style accuracies and for example probabilities.
APPROXIMATE_ACCURACY_TOLERANCE = 0.02


# ---------------------------------------------------------------------------------------------
# Reading stated values and judging them
# ---------------------------------------------------------------------------------------------

_UNITS = {"k": 1e3, "m": 1e6, "million": 1e6}


def parse_number(text: str) -> float:
    """The number in a stated value: ``"1,242"`` -> 1242, ``"> 99%"`` -> 0.99, ``"60 K"`` -> 6e4.

    Leading ``~ > < ≈`` and a trailing ``×`` are ignored; ``%`` divides by 100; ``K``, ``M`` and
    ``million`` multiply.
    """
    number = r"([-+]?[\d,]*\.?\d+(?:e[-+]?\d+)?)"
    match = re.fullmatch(
        rf"\s*[~><≈]?\s*{number}\s*(%|k|m|million)?\s*×?\s*", text, flags=re.IGNORECASE
    )
    if match is None:
        raise ValueError(f"cannot read a number from stated value {text!r}")
    value = float(match.group(1).replace(",", ""))
    unit = (match.group(2) or "").lower()
    if unit == "%":
        return value / 100
    return value * _UNITS.get(unit, 1.0)


def stated_decimals(text: str) -> int:
    """Decimals the stated value is given to, in its own unit: ``"10.9×"`` -> 1, ``"73%"`` -> 0."""
    match = re.search(r"\d+(?:\.(\d+))?", text)
    if match is None:
        raise ValueError(f"no number in stated value {text!r}")
    return len(match.group(1) or "")


def _normalise(text: str) -> str:
    """Compare shapes and matrices loosely: ``"3 × 6 × 6"`` == ``"3 x 6 x 6"``."""
    return re.sub(r"\s+", " ", text.replace("×", "x").replace(",", "")).strip().lower()


@dataclass(frozen=True)
class Measurement:
    """A computed value, how the ledger shows it, and the one-line reason behind it."""

    value: object
    shown: str
    detail: str = ""


Rule = Callable[[str, Measurement], tuple[bool, str]]


def exact() -> Rule:
    """Numbers must be equal; text (shapes, matrices) must match after normalising."""

    def rule(stated: str, m: Measurement) -> tuple[bool, str]:
        if isinstance(m.value, str):
            return _normalise(stated) == _normalise(m.value), ""
        return float(m.value) == parse_number(stated), ""

    return rule


def rounded() -> Rule:
    """The computed value rounded to the stated number of decimals equals the stated value."""

    def rule(stated: str, m: Measurement) -> tuple[bool, str]:
        decimals = stated_decimals(stated)
        scale = 100 if "%" in stated else 1
        value = round(float(m.value) * scale, decimals)
        return (
            value == round(parse_number(stated) * scale, decimals),
            f"rounded to the stated precision: {value:.{decimals}f}",
        )

    return rule


def within(relative: float) -> Rule:
    """For values stated in rounded units: ``|computed - stated| <= relative * stated``."""

    def rule(stated: str, m: Measurement) -> tuple[bool, str]:
        target = parse_number(stated)
        off = abs(float(m.value) - target) / target
        return off <= relative, f"{off:.1%} from the stated value (tolerance {relative:.0%})"

    return rule


def near(tolerance: float) -> Rule:
    """``|computed - stated| <= tolerance``."""

    def rule(stated: str, m: Measurement) -> tuple[bool, str]:
        off = abs(float(m.value) - parse_number(stated))
        return off <= tolerance, f"off by {off:.3g} (tolerance {tolerance:g})"

    return rule


def above() -> Rule:
    def rule(stated: str, m: Measurement) -> tuple[bool, str]:
        return float(m.value) > parse_number(stated), ""

    return rule


def below() -> Rule:
    def rule(stated: str, m: Measurement) -> tuple[bool, str]:
        return float(m.value) < parse_number(stated), ""

    return rule


def at_most() -> Rule:
    def rule(stated: str, m: Measurement) -> tuple[bool, str]:
        return float(m.value) <= parse_number(stated), ""

    return rule


def holds() -> Rule:
    """A yes/no claim: the measurement's value is the outcome of its stated criterion."""

    def rule(stated: str, m: Measurement) -> tuple[bool, str]:
        return bool(m.value), ""  # the measurement's detail names the criterion

    return rule


def exact_mlp_count(n_classes: int) -> Rule:
    """:func:`exact`, and say which MLP hidden width (if any) has the stated parameter count."""

    def rule(stated: str, m: Measurement) -> tuple[bool, str]:
        ok, how = exact()(stated, m)
        target = int(parse_number(stated))
        width = _width_giving(target, n_classes)
        fit = (
            f"no hidden width gives {count(target)}"
            if width is None
            else f"hidden width {width} gives {count(target)}"
        )
        return ok, f"{fit} with {n_classes} classes"

    return rule


@dataclass(frozen=True)
class Claim:
    """One numeric claim of the lecture.

    Parameters
    ----------
    claim_id : str
        ``"C<section>.<n>"`` (the C keeps spreadsheets from reading "1.10" as 1.1).
    section : int or str
        Report section the claim belongs to (1-13, or "10a"-"10c" for the real-data claims,
        whose ids start with R).
    claim : str
        What the lecture says, in a few words.
    stated : str
        The lecture's value, verbatim.
    measure : callable or None
        ``measure(data) -> Measurement``; None for a claim code cannot test.
    rule : callable or None
    reason : str
        Why the claim is not testable (only when ``measure`` is None).
    """

    claim_id: str
    section: int | str
    claim: str
    stated: str
    measure: Callable[[object], Measurement] | None = None
    rule: Rule | None = None
    reason: str = ""


def judge(claim: Claim, data) -> dict:
    """One ledger row for ``claim`` evaluated on the computed report ``data``."""
    row = {
        "claim_id": claim.claim_id,
        "section": claim.section,
        "claim": claim.claim,
        "stated": claim.stated,
    }
    if claim.measure is None:
        return {**row, "computed": "", "verdict": NOT_TESTABLE, "note": claim.reason}
    m = claim.measure(data)
    ok, how = claim.rule(claim.stated, m)
    note = "; ".join(part for part in (m.detail, how) if part)
    return {**row, "computed": m.shown, "verdict": REPRODUCED if ok else DIFFERS, "note": note}


def claims_ledger(data, claims=None) -> pd.DataFrame:
    """The ledger: one row per claim, columns exactly :data:`COLUMNS`."""
    rows = [judge(claim, data) for claim in (CLAIMS if claims is None else claims)]
    return pd.DataFrame(rows, columns=list(COLUMNS))


# ---------------------------------------------------------------------------------------------
# Formatting helpers and table look-ups used by the measures
# ---------------------------------------------------------------------------------------------


def count(n) -> str:
    return f"{int(n):,}"


def percent(x: float) -> str:
    return f"{100 * x:.2f}%"


def _row(table: pd.DataFrame, **where) -> pd.Series:
    mask = np.ones(len(table), dtype=bool)
    for column, value in where.items():
        mask &= (table[column] == value).to_numpy()
    if mask.sum() != 1:
        raise ValueError(f"expected one row with {where}, found {int(mask.sum())}")
    return table[mask].iloc[0]


def _mlp_parameters(hidden: int, n_classes: int) -> int:
    return reference.MLP(hidden, n_classes).n_parameters


def _mlp_formula(hidden: int, n_classes: int) -> str:
    n_inputs = reference.MLP(hidden, n_classes).params["hidden.weight"].shape[1]
    return (
        f"({n_inputs}+1)·{hidden} + ({hidden}+1)·{n_classes} = "
        f"{count(_mlp_parameters(hidden, n_classes))}"
    )


def _width_giving(n_parameters: int, n_classes: int, widths=range(1, 201)) -> int | None:
    return next((h for h in widths if _mlp_parameters(h, n_classes) == n_parameters), None)


def _accuracy(summary: pd.Series) -> Measurement:
    return Measurement(
        summary["mean"],
        f"mean {percent(summary['mean'])}",
        f"{int(summary['n_seeds'])} seeds, min {percent(summary['min'])}, "
        f"max {percent(summary['max'])}",
    )


def _epochs_note(data) -> str:
    epochs = data.settings.epochs
    return f"{epochs} epochs" + (" (--quick)" if data.settings.quick else "")


# -- section 1 ---------------------------------------------------------------------------------


def _dense(image: str, hidden: int):
    def measure(data) -> Measurement:
        row = _row(data.tables["01_connectivity"], image=image)
        n = row[f"dense_{hidden}_hidden"]
        inputs = int(row["inputs"])
        return Measurement(
            n,
            count(n),
            f"nn.Linear({inputs}, {hidden}): {count(inputs)}·{hidden} weights + {hidden} biases",
        )

    return measure


def _conv(image: str):
    def measure(data) -> Measurement:
        row = _row(data.tables["01_connectivity"], image=image)
        n = row["conv_32_filters_3x3"]
        channels = image.split(" x ")[-1]
        return Measurement(n, count(n), f"nn.Conv2d({channels}, 32, 3): 32·(3·3·{channels}) + 32")

    return measure


def _imagenet_dense_100(data) -> Measurement:
    row = _row(data.tables["01_connectivity"], image="224 x 224 x 3")
    n, inputs = row["dense_100_hidden"], int(row["inputs"])
    mixed = inputs * 1000 + 100
    return Measurement(
        n,
        count(n),
        f"nn.Linear({inputs}, 100) has {count(n)}; "
        f"the stated value is {count(inputs)}·1000 + 100 = "
        f"{count(mixed)} (1000-hidden weights + 100-hidden biases); "
        f"1000 hidden gives {count(row['dense_1000_hidden'])}",
    )


def _conv_resolution_independent(data) -> Measurement:
    table = data.tables["01_connectivity"]
    rgb = table[table["image"].str.endswith(" x 3")]
    counts = sorted(set(rgb["conv_32_filters_3x3"]))
    return Measurement(
        len(counts) == 1,
        " = ".join(count(c) for c in rgb["conv_32_filters_3x3"]),
        f"conv parameters for {' and '.join(rgb['image'])}; criterion: equal",
    )


def _receptive_field(data) -> Measurement:
    row = _row(data.tables["01_key_ideas"], quantity="input pixels seen by one unit")
    return Measurement(
        f"{int(row['conv'])} of {int(row['dense'])}",
        f"{int(row['conv'])} of {int(row['dense'])}",
        "non-zero input gradient of one conv output vs the dense layer's fan-in",
    )


def _equivariance(data) -> Measurement:
    row = _row(
        data.tables["01_key_ideas"], quantity="translation equivariance error (1-pixel shift)"
    )
    error = float(row["conv"])
    return Measurement(
        error <= 1e-12,
        f"max error {error:.1e}",
        "conv(shift(x)) vs shift(conv(x)) on a random 28x28 image; criterion: error <= 1e-12",
    )


# -- section 2 ---------------------------------------------------------------------------------


def _example(example: str, quantity: str):
    def measure(data) -> Measurement:
        row = _row(data.tables["02_worked_examples"], example=example, quantity=quantity)
        agreement = "PyTorch agrees" if row["agree"] else f"PyTorch gives {row['torch']}"
        value = row["numpy"]
        try:
            value = float(value)
        except ValueError:
            pass
        return Measurement(value, row["numpy"], f"tinycnn.reference.ops; {agreement}")

    return measure


def _pooling_example(data) -> Measurement:
    m = _example("max pooling", "output")(data)
    relu = np.asarray(static.EXAMPLE_INPUTS["relu_input"]).clip(min=0)
    differs = not np.array_equal(relu, np.asarray(static.EXAMPLE_INPUTS["pool_input"]))
    other = _row(
        data.tables["02_worked_examples"],
        example="max pooling",
        quantity="output when pooling the ReLU output instead",
    )["numpy"]
    note = m.detail + (
        f"; the slide's pooling input is not the ReLU output above it, which pools to {other}"
        if differs
        else ""
    )
    return Measurement(m.value, m.shown, note)


def _output_size(case: str, square: bool = False):
    def measure(data) -> Measurement:
        row = _row(data.tables["02_output_sizes"], case=case)
        n = int(row["formula"])
        agreement = "PyTorch agrees" if row["agree"] else f"PyTorch gives {row['torch']}"
        detail = f"conv_output_size({row['W']}, {row['K']}, {row['P']}, {row['S']}); {agreement}"
        if square:
            return Measurement(f"{n} x {n}", f"{n} × {n}", detail)
        return Measurement(n, str(n), detail)

    return measure


def _stride_halves(data) -> Measurement:
    table = data.tables["02_output_sizes"]
    stride2 = int(_row(table, case="stride 2")["formula"])
    stride1 = int(_row(table, case="stride 1, same input as stride 2")["formula"])
    W = int(_row(table, case="stride 2")["W"])
    return Measurement(
        stride2 * 2 == stride1,
        f"{stride1} -> {stride2}",
        f"output with stride 1 vs stride 2 on a width-{W} input (the input "
        f"itself shrinks {W} -> {stride2}); criterion: stride-2 output is half "
        f"the stride-1 output",
    )


def _edge_detector(data) -> Measurement:
    table = data.tables["02_worked_examples"]
    vertical = float(
        _row(table, example="edge detector", quantity="max |response| to a vertical edge")["numpy"]
    )
    horizontal = float(
        _row(table, example="edge detector", quantity="max |response| to a horizontal edge")[
            "numpy"
        ]
    )
    return Measurement(
        vertical > 0 and horizontal == 0,
        f"{vertical:g} vs {horizontal:g}",
        "largest |response| to a vertical vs a horizontal step edge; criterion: "
        "responds to the vertical edge only",
    )


# -- section 3 ---------------------------------------------------------------------------------


def _layer(layer_prefix: str, column: str):
    def measure(data) -> Measurement:
        table = data.tables["03_layer_summary"]
        row = table[table["layer"].str.startswith(layer_prefix)].iloc[0]
        value = row[column]
        shown = count(value) if column == "n_parameters" else value.replace(" x ", " × ")
        return Measurement(value, shown, f"TinyCNN().layer_summary(), layer {row['layer']}")

    return measure


def _parameter_free_layers(data) -> Measurement:
    table = data.tables["03_layer_summary"]
    free = table[table["layer"].str.match(r"ReLU|MaxPool|Flatten")]
    return Measurement(
        int(free["n_parameters"].sum()),
        ", ".join(str(n) for n in free["n_parameters"]),
        "parameters of " + ", ".join(free["layer"]),
    )


def _conv_breakdown(data) -> Measurement:
    w = reference.TinyCNN().params["conv.weight"]
    F, C, K, _ = w.shape
    n = int(
        _row(data.tables["03_layer_summary"], layer=f"Conv2D ({F} filters, {K}x{K})")[
            "n_parameters"
        ]
    )
    return Measurement(n, count(n), f"{F}·({C}·{K}·{K}) + {F} from the weight shape {w.shape}")


def _dense_share(data) -> Measurement:
    table = data.tables["03_layer_summary"]
    row = _row(table, layer="Dense + bias")
    total = int(_row(table, layer="Total")["n_parameters"])
    return Measurement(
        row["share"], f"{100 * row['share']:.1f}%", f"{row['n_parameters']} / {total}"
    )


# -- section 4 ---------------------------------------------------------------------------------


def _cnn_solves(data) -> Measurement:
    row = _row(data.tables["04_linear_baseline"], model="TinyCNN", classes=3)
    return Measurement(
        row["mean"] > experiments.ACCURACY_TARGET,
        f"mean {percent(row['mean'])}",
        f"TinyCNN, {int(row['n_seeds'])} seeds, {_epochs_note(data)}; criterion: "
        f"mean validation accuracy > {experiments.ACCURACY_TARGET:.0%}",
    )


def _linear_nontrivial(data) -> Measurement:
    table = data.tables["04_linear_baseline"]
    row = _row(table, model="softmax regression", classes=3)
    return Measurement(
        row["max"] < experiments.ACCURACY_TARGET,
        f"mean {percent(row['mean'])}",
        f"softmax regression ({count(row['n_parameters'])} parameters), same data "
        f"and SGD, {int(row['n_seeds'])} seeds, best {percent(row['max'])}, "
        f"chance {1 / int(row['classes']):.0%}; criterion: no seed reaches "
        f"{experiments.ACCURACY_TARGET:.0%}, the CNN's level",
    )


# -- section 5 ---------------------------------------------------------------------------------


def _gradient_error(models: tuple[str, ...]):
    def measure(data) -> Measurement:
        table = data.tables["05_gradient_check"]
        rows = table[table["model"].isin(models)]
        worst = rows.loc[rows["rel_error"].idxmax()]
        return Measurement(
            worst["rel_error"],
            f"{worst['rel_error']:.1e}",
            f"largest over {len(rows)} tensors of {', '.join(models)} "
            f"({worst['model']} {worst['parameter']})",
        )

    return measure


# -- section 6 ---------------------------------------------------------------------------------


def _epochs_to_99(data) -> Measurement:
    table = data.tables["06_epochs_to_99"]
    never = int((table["first_epoch"] < 0).sum())
    latest = math.inf if never else int(table["first_epoch"].max())
    shown = f"epoch {int(table['first_epoch'].iloc[0])} (seed 0)" + (
        "" if len(table) == 1 else f", latest {latest} over {len(table)} seeds"
    )
    detail = f"first epoch with validation accuracy >= {experiments.ACCURACY_TARGET:.0%}" + (
        f"; {never} seed(s) never reach it" if never else ""
    )
    return Measurement(latest, shown, detail)


def _no_overfitting(data) -> Measurement:
    gap = float(data.tables["06_epochs_to_99"]["final_gap"].abs().max())
    return Measurement(
        gap <= 0.01,
        f"largest gap {100 * gap:.2f} points",
        "|train - validation accuracy| after the last epoch, all seeds; criterion: <= 1 point",
    )


# -- section 7 ---------------------------------------------------------------------------------


def _oriented_filters(data) -> Measurement:
    table = data.tables["07_orientation_seeds"]
    n_covering = int(table["covers_all_orientations"].sum())
    first = table.iloc[0]
    failing = table[~table["covers_all_orientations"].astype(bool)]
    gaps = "; ".join(
        f"seed #{r.replicate} has no selective {r.missing} detector" for r in failing.itertuples()
    )
    return Measurement(
        n_covering == len(table),
        f"{n_covering} of {len(table)} seeds",
        f"seed #0 (the figure) prefers {first['preferred']} (selectivity "
        f"{first['selectivity']})"
        + (f"; {gaps}" if gaps else "")
        + f"; criterion: in every seed, a filter with selectivity >= "
        f"{experiments.MIN_SELECTIVITY} for each orientation",
    )


# -- sections 8-10 -----------------------------------------------------------------------------


def _cnn_vs_mlp(model: str, column: str = "n_parameters"):
    def measure(data) -> Measurement:
        row = _row(data.tables["08_cnn_vs_mlp"], model=model)
        if column == "mean":
            return _accuracy(row)
        return Measurement(row[column], count(row[column]), f"{model}, counted by code")

    return measure


def _mlp_count(table: str, width: int, n_classes: int):
    """An MLP's parameter count, with its closed form."""

    def measure(data) -> Measurement:
        row = _row(data.tables[table], model=f"MLP ({width} hidden)")
        return Measurement(
            row["n_parameters"], count(row["n_parameters"]), _mlp_formula(width, n_classes)
        )

    return measure


def _parameter_ratio(data) -> Measurement:
    row = _row(data.tables["08_cnn_vs_mlp"], model="MLP (18 hidden)")
    cnn = _row(data.tables["08_cnn_vs_mlp"], model="TinyCNN")
    return Measurement(
        row["parameter_ratio"],
        f"{row['parameter_ratio']:.2f}×",
        f"{count(row['n_parameters'])} / {count(cnn['n_parameters'])}",
    )


def _regime(width: int, expected: str):
    def measure(data) -> Measurement:
        row = _row(data.tables["09_capacity_sweep"], width=width)
        return Measurement(
            row["regime"] == expected,
            row["regime"],
            f"{int(row['n_seeds'])} seeds: mean {percent(row['mean'])}, min "
            f"{percent(row['min'])}, max {percent(row['max'])}; criterion: "
            f"regime '{expected}' (see section 9)",
        )

    return measure


def _wide_mlps_stable(data) -> Measurement:
    table = data.tables["09_capacity_sweep"]
    wide = table[table["width"] >= 8]
    cnn = _row(table, model="TinyCNN")
    worst = wide.loc[wide["min"].idxmin()]
    ok = bool((wide["min"] >= experiments.ACCURACY_TARGET).all())
    return Measurement(
        ok,
        f"worst seed {percent(worst['min'])} (width {int(worst['width'])})",
        f"TinyCNN mean {percent(cnn['mean'])}; criterion: every seed of widths "
        f"{', '.join(str(w) for w in wide['width'])} reaches "
        f"{experiments.ACCURACY_TARGET:.0%}",
    )


def _wide_mlp_ratio_range(data) -> Measurement:
    table = data.tables["09_capacity_sweep"]
    wide = table[table["width"] >= 8]
    low, high = wide["parameter_ratio"].min(), wide["parameter_ratio"].max()
    counts = ", ".join(f"{count(n)}" for n in wide["n_parameters"])
    cnn = _row(table, model="TinyCNN")
    return Measurement(
        f"{round(low)}–{round(high)}×",
        f"{low:.1f}–{high:.1f}×",
        f"widths {', '.join(str(w) for w in wide['width'])} have {counts} "
        f"parameters vs {count(cnn['n_parameters'])}; compared rounded to whole "
        f"numbers",
    )


def _four_class(model: str, column: str):
    def measure(data) -> Measurement:
        row = _row(data.tables["10_four_classes"], model=model)
        if column == "mean":
            return _accuracy(row)
        fc = reference.TinyCNN(n_classes=4).params["fc.weight"]
        return Measurement(
            row["n_parameters"],
            count(row["n_parameters"]),
            f"{count(row['n_parameters_3_classes'])} for 3 classes + "
            f"{row['added']} for the 4th output ({fc.shape[1]} weights + 1 bias)",
        )

    return measure


def _same_filters(data) -> Measurement:
    cnn = _row(data.tables["10_four_classes"], model="TinyCNN")
    params = {n: reference.TinyCNN(n_classes=n).params for n in (3, 4)}
    conv = {n: p["conv.weight"].size + p["conv.bias"].size for n, p in params.items()}
    dense = {n: p["fc.weight"].size + p["fc.bias"].size for n, p in params.items()}
    ok = conv[3] == conv[4] and cnn["mean"] > experiments.ACCURACY_TARGET
    return Measurement(
        ok,
        f"conv {conv[3]} → {conv[4]}, dense {dense[3]} → {dense[4]}",
        f"4-class TinyCNN mean accuracy {percent(cnn['mean'])}; criterion: "
        f"conv layer unchanged and accuracy > {experiments.ACCURACY_TARGET:.0%}",
    )


# -- section 11 --------------------------------------------------------------------------------


def _trace_probability(class_name: str):
    def measure(data) -> Measurement:
        typical = _row(data.tables["11_trace_confidence"], **{"class": class_name})
        traced = _row(data.tables["11_trace_probabilities"], **{"class": class_name})
        return Measurement(
            typical["median"],
            f"{typical['median']:.4f}",
            f"median over {int(typical['n_images'])} vertical validation images "
            f"(range {typical['min']:.2g}-{typical['max']:.2g}); the traced "
            f"sample gives {traced['probability']:.4f}",
        )

    return measure


def _vertical_filter_fires(data) -> Measurement:
    pooled = data.arrays["trace"]["pool"]  # F, P, P
    strongest = int(pooled.reshape(len(pooled), -1).max(axis=1).argmax())
    orientation = data.tables["07_orientation"]
    final = orientation[orientation["epoch"] == orientation["epoch"].max()]
    preferred = _row(final, filter=strongest + 1)["preferred"]
    return Measurement(
        preferred == "vertical",
        f"filter {strongest + 1} ({preferred})",
        "filter with the largest pooled activation on the traced vertical "
        "sample, and its preferred orientation (section 7); criterion: vertical",
    )


# -- section 12 --------------------------------------------------------------------------------


def _architecture(name: str, column: str, also: str | None = None):
    def measure(data) -> Measurement:
        table = data.tables["12_architectures"]
        row = _row(table, architecture=name)
        value = row[column]
        detail = f"{name}: {row['variant']}, built on the meta device"
        if also is not None:
            other = _row(table, architecture=also)
            detail += f"; {also}: {count(other[column])}"
        return Measurement(value, count(value), detail)

    return measure


def _resnet_vs_vgg(data) -> Measurement:
    table = data.tables["12_architectures"]
    resnet, vgg = _row(table, architecture="ResNet-50"), _row(table, architecture="VGG-16")
    ratio = resnet["depth"] / vgg["depth"]
    ok = resnet["n_parameters"] < vgg["n_parameters"] and round(ratio) == 3
    return Measurement(
        ok,
        f"{ratio:.2f}× deeper, {resnet['n_parameters'] / 1e6:.1f} M vs "
        f"{vgg['n_parameters'] / 1e6:.1f} M",
        "depth ratio and parameter counts; criterion: fewer parameters and depth ratio rounds to 3",
    )


def _same_blocks_at_scale(data) -> Measurement:
    table = data.tables["12_reference_agreement"]
    worst = table.loc[table["max_rel_error"].idxmax()]
    models = " and ".join(dict.fromkeys(table["model"]))
    return Measurement(
        bool(table["within_tolerance"].all()),
        f"worst relative error {worst['max_rel_error']:.2g}",
        f"the reference's conv2d, pooling, ReLU and linear rebuild {models}; outputs and "
        f"gradients vs PyTorch; criterion: every quantity within the float64 model tolerance",
    )


# ---------------------------------------------------------------------------------------------
# The ledger
# ---------------------------------------------------------------------------------------------

HISTORY = "a historical date: nothing in this project can compute it"

CLAIMS: tuple[Claim, ...] = (
    # 1. The curse of full connectivity, and the three key ideas
    Claim(
        "C1.1",
        1,
        "28×28 grayscale image, 100 hidden neurons: dense weights",
        "78,500",
        _dense("28 x 28 x 1", 100),
        exact(),
    ),
    Claim(
        "C1.2",
        1,
        "224×224 RGB image, 1000 hidden neurons: dense weights",
        "150 million",
        _dense("224 x 224 x 3", 1000),
        within(ROUNDED_UNITS_TOLERANCE),
    ),
    Claim(
        "C1.3",
        1,
        "Table: 28 × 28 × 1, FC weights (100 hidden)",
        "78,500",
        _dense("28 x 28 x 1", 100),
        exact(),
    ),
    Claim(
        "C1.4",
        1,
        "Table: 28 × 28 × 1, conv weights (3×3, 32 filters)",
        "320",
        _conv("28 x 28 x 1"),
        exact(),
    ),
    Claim(
        "C1.5",
        1,
        "Table: 64 × 64 × 3, FC weights (100 hidden)",
        "1,228,900",
        _dense("64 x 64 x 3", 100),
        exact(),
    ),
    Claim(
        "C1.6",
        1,
        "Table: 64 × 64 × 3, conv weights (3×3, 32 filters)",
        "896",
        _conv("64 x 64 x 3"),
        exact(),
    ),
    Claim(
        "C1.7",
        1,
        "Table: 224 × 224 × 3, FC weights (100 hidden)",
        "150,528,100",
        _imagenet_dense_100,
        exact(),
    ),
    Claim(
        "C1.8",
        1,
        "Table: 224 × 224 × 3, conv weights (3×3, 32 filters)",
        "896",
        _conv("224 x 224 x 3"),
        exact(),
    ),
    Claim(
        "C1.9",
        1,
        "Conv weights do not depend on image resolution",
        "896 = 896",
        _conv_resolution_independent,
        holds(),
    ),
    Claim(
        "C1.10",
        1,
        "A 3×3 filter sees 9 pixels instead of all 784",
        "9 of 784",
        _receptive_field,
        exact(),
    ),
    Claim(
        "C1.11",
        1,
        "Translation equivariance: shift the input, the feature map shifts",
        "same shift",
        _equivariance,
        holds(),
    ),
    # 2. Worked examples
    Claim(
        "C2.1",
        2,
        "Cross-correlation example: output",
        "5",
        _example("cross-correlation", "output"),
        exact(),
    ),
    Claim(
        "C2.2",
        2,
        "Convolution by hand: output at (1,1)",
        "0",
        _example("convolution by hand", "output at (1,1)"),
        exact(),
    ),
    Claim(
        "C2.3",
        2,
        "The [1 0 -1] kernel is a vertical edge detector",
        "vertical edges",
        _edge_detector,
        holds(),
    ),
    Claim(
        "C2.4",
        2,
        "Output size, no padding: W=5, K=3, P=0, S=1",
        "3",
        _output_size("no padding"),
        exact(),
    ),
    Claim(
        "C2.5",
        2,
        "Output size, same padding: W=5, K=3, P=1, S=1",
        "5",
        _output_size("same padding"),
        exact(),
    ),
    Claim(
        "C2.6",
        2,
        "Output size, stride 2: W=6, K=3, P=0, S=2",
        "2",
        _output_size("stride 2"),
        exact(),
    ),
    Claim("C2.7", 2, "Stride 2 halves the output", "halves", _stride_halves, holds()),
    Claim(
        "C2.8",
        2,
        "Pause & Think: 8×8 input, 3×3 kernel, P=0, S=1",
        "6 × 6",
        _output_size("Pause & Think 1", square=True),
        exact(),
    ),
    Claim(
        "C2.9",
        2,
        "Pause & Think: the same with padding 1",
        "8 × 8",
        _output_size("Pause & Think 2", square=True),
        exact(),
    ),
    Claim(
        "C2.10",
        2,
        "ReLU example: output",
        "3 0 2 0 / 0 5 1 0 / 4 0 6 2 / 0 3 0 1",
        _example("ReLU", "output"),
        exact(),
    ),
    Claim(
        "C2.11",
        2,
        "Max pooling example (2×2, stride 2): output",
        "5 2 / 4 2",
        _pooling_example,
        exact(),
    ),
    Claim(
        "C2.12",
        2,
        "Max pooling 4×4 → 2×2 is 4× smaller",
        "4×",
        _example("max pooling", "size reduction (input / output entries)"),
        exact(),
    ),
    Claim(
        "C2.13",
        2,
        "Pooling backward example: forward maxima",
        "7 5 / 8 9",
        _example("pooling backward", "forward output"),
        exact(),
    ),
    Claim(
        "C2.14",
        2,
        "Pooling backward example: gradient routing",
        "0 0 g2 0 / g1 0 0 0 / g3 0 0 0 / 0 0 0 g4",
        _example("pooling backward", "input gradient"),
        exact(),
    ),
    # 3. TinyCNN layer summary
    Claim("C3.1", 3, "Input shape", "1 × 8 × 8", _layer("Input", "output_shape"), exact()),
    Claim(
        "C3.2",
        3,
        "Conv2D (3 filters, 3×3): output shape",
        "3 × 6 × 6",
        _layer("Conv2D", "output_shape"),
        exact(),
    ),
    Claim("C3.3", 3, "Conv2D: parameters, 3 × (1 × 3 × 3) + 3", "30", _conv_breakdown, exact()),
    Claim("C3.4", 3, "ReLU: output shape", "3 × 6 × 6", _layer("ReLU", "output_shape"), exact()),
    Claim(
        "C3.5",
        3,
        "MaxPool (2×2): output shape",
        "3 × 3 × 3",
        _layer("MaxPool", "output_shape"),
        exact(),
    ),
    Claim("C3.6", 3, "Flatten: output size", "27", _layer("Flatten", "output_shape"), exact()),
    Claim("C3.7", 3, "Dense: output size (classes)", "3", _layer("Dense", "output_shape"), exact()),
    Claim(
        "C3.8",
        3,
        "Dense + bias: parameters, 27 × 3 + 3",
        "84",
        _layer("Dense", "n_parameters"),
        exact(),
    ),
    Claim(
        "C3.9",
        3,
        "ReLU, MaxPool and Flatten have no parameters",
        "0",
        _parameter_free_layers,
        exact(),
    ),
    Claim("C3.10", 3, "TinyCNN total parameters", "114", _layer("Total", "n_parameters"), exact()),
    Claim("C3.11", 3, "The dense layer's share of all parameters", "73%", _dense_share, rounded()),
    # 4. The dataset
    Claim(
        "C4.1",
        4,
        "The task is simple enough for a 114-parameter CNN",
        "solves it",
        _cnn_solves,
        holds(),
    ),
    Claim(
        "C4.2",
        4,
        "The task is non-trivial for a linear classifier",
        "non-trivial",
        _linear_nontrivial,
        holds(),
    ),
    # 5. Gradient check
    Claim(
        "C5.1",
        5,
        "Correct backprop passes the check: e_rel < 1e-5 (TinyCNN)",
        "< 1e-5",
        _gradient_error(("TinyCNN",)),
        below(),
    ),
    Claim(
        "C5.2",
        5,
        "Correct backprop passes the check: e_rel < 1e-5 (MLP)",
        "< 1e-5",
        _gradient_error(("MLP (18 hidden)",)),
        below(),
    ),
    Claim(
        "C5.3",
        5,
        "e_rel < 1e-7 is 'perfect': a correct float64 backprop gets there",
        "< 1e-7",
        _gradient_error(("TinyCNN", "MLP (18 hidden)")),
        below(),
    ),
    Claim(
        "C5.4",
        5,
        "e_rel > 1e-3 means a bug in backprop (kernel gradient flipped)",
        "> 1e-3",
        _gradient_error((gradients.BUGGY_MODEL,)),
        above(),
    ),
    # 6. Training curves
    Claim(
        "C6.1",
        6,
        "TinyCNN reaches > 99% accuracy within ~40 epochs",
        "~40",
        _epochs_to_99,
        at_most(),
    ),
    Claim(
        "C6.2",
        6,
        "Train and validation curves track closely: no overfitting",
        "track closely",
        _no_overfitting,
        holds(),
    ),
    # 7. Filter evolution
    Claim(
        "C7.1",
        7,
        "Random filters become oriented edge detectors (vertical, horizontal, diagonal)",
        "3 oriented detectors",
        _oriented_filters,
        holds(),
    ),
    # 8. CNN vs MLP
    Claim(
        "C8.1", 8, "CNN vs MLP table: TinyCNN parameters", "114", _cnn_vs_mlp("TinyCNN"), exact()
    ),
    Claim(
        "C8.2",
        8,
        "CNN vs MLP table: MLP (1 hidden layer) parameters",
        "1,242",
        _mlp_count("08_cnn_vs_mlp", 18, 3),
        exact_mlp_count(3),
    ),
    Claim(
        "C8.3", 8, "TinyCNN accuracy (3 classes)", "> 99%", _cnn_vs_mlp("TinyCNN", "mean"), above()
    ),
    Claim(
        "C8.4",
        8,
        "MLP accuracy (3 classes)",
        "> 99%",
        _cnn_vs_mlp("MLP (18 hidden)", "mean"),
        above(),
    ),
    Claim(
        "C8.5",
        8,
        "MLP uses this many times more parameters for the same accuracy",
        "10.9×",
        _parameter_ratio,
        rounded(),
    ),
    # 9. MLP capacity sweep
    Claim(
        "C9.1",
        9,
        "Width 1 fails (one hidden neuron cannot separate 3 classes)",
        "fails",
        _regime(1, "fails"),
        holds(),
    ),
    Claim(
        "C9.2",
        9,
        "Width 4 starts working but is seed-dependent",
        "unstable",
        _regime(4, "unstable"),
        holds(),
    ),
    Claim(
        "C9.3",
        9,
        "Width 8+ reliably matches the CNN's accuracy",
        "reliable",
        _wide_mlps_stable,
        holds(),
    ),
    Claim(
        "C9.4",
        9,
        "Widths 8+ use 6–12× more parameters than the CNN",
        "6–12×",
        _wide_mlp_ratio_range,
        exact(),
    ),
    # 10. Four classes
    Claim(
        "C10.1",
        10,
        "Four classes: CNN (3 filters) parameters",
        "117",
        _four_class("TinyCNN", "n_parameters"),
        exact(),
    ),
    Claim(
        "C10.2",
        10,
        "Four classes: MLP (8 hidden) parameters",
        "555",
        _mlp_count("10_four_classes", 8, 4),
        exact_mlp_count(4),
    ),
    Claim(
        "C10.3",
        10,
        "Four classes: MLP (18 hidden) parameters",
        "1,221",
        _mlp_count("10_four_classes", 18, 4),
        exact_mlp_count(4),
    ),
    Claim(
        "C10.4", 10, "Four classes: CNN accuracy", "> 99%", _four_class("TinyCNN", "mean"), above()
    ),
    Claim(
        "C10.5",
        10,
        "Four classes: MLP (8 hidden) accuracy",
        "~92%",
        _four_class("MLP (8 hidden)", "mean"),
        near(APPROXIMATE_ACCURACY_TOLERANCE),
    ),
    Claim(
        "C10.6",
        10,
        "Four classes: MLP (18 hidden) accuracy",
        "> 99%",
        _four_class("MLP (18 hidden)", "mean"),
        above(),
    ),
    Claim(
        "C10.7",
        10,
        "The same 3 filters suffice; only the dense layer grows",
        "same filters",
        _same_filters,
        holds(),
    ),
    # 11. Inference trace
    Claim(
        "C11.1",
        11,
        "Vertical sample: softmax probability of 'vertical'",
        "0.94",
        _trace_probability("vertical"),
        near(APPROXIMATE_ACCURACY_TOLERANCE),
    ),
    Claim(
        "C11.2",
        11,
        "Vertical sample: softmax probability of 'horizontal'",
        "0.03",
        _trace_probability("horizontal"),
        near(APPROXIMATE_ACCURACY_TOLERANCE),
    ),
    Claim(
        "C11.3",
        11,
        "Vertical sample: softmax probability of 'diagonal'",
        "0.03",
        _trace_probability("diagonal"),
        near(APPROXIMATE_ACCURACY_TOLERANCE),
    ),
    Claim(
        "C11.4",
        11,
        "The vertical-detector filter fires strongly on a vertical sample",
        "vertical detector",
        _vertical_filter_fires,
        holds(),
    ),
    # 12. Scaling up (and the lecture's historical timeline)
    Claim(
        "C12.1", 12, "TinyCNN parameters", "114", _architecture("TinyCNN", "n_parameters"), exact()
    ),
    Claim("C12.2", 12, "TinyCNN depth", "2", _architecture("TinyCNN", "depth"), exact()),
    Claim(
        "C12.3",
        12,
        "LeNet-5 parameters",
        "60 K",
        _architecture("LeNet-5 (1998 paper)", "n_parameters", also="LeNet-5 (modern)"),
        within(ROUNDED_UNITS_TOLERANCE),
    ),
    Claim(
        "C12.4", 12, "LeNet-5 depth", "5", _architecture("LeNet-5 (1998 paper)", "depth"), exact()
    ),
    Claim(
        "C12.5",
        12,
        "AlexNet parameters",
        "60 M",
        _architecture("AlexNet (2012 paper)", "n_parameters", also="AlexNet (torchvision)"),
        within(ROUNDED_UNITS_TOLERANCE),
    ),
    Claim(
        "C12.6", 12, "AlexNet depth", "8", _architecture("AlexNet (2012 paper)", "depth"), exact()
    ),
    Claim(
        "C12.7",
        12,
        "VGG-16 parameters",
        "138 M",
        _architecture("VGG-16", "n_parameters"),
        within(ROUNDED_UNITS_TOLERANCE),
    ),
    Claim("C12.8", 12, "VGG-16 depth", "16", _architecture("VGG-16", "depth"), exact()),
    Claim(
        "C12.9",
        12,
        "ResNet-50 parameters",
        "25 M",
        _architecture("ResNet-50", "n_parameters"),
        within(ROUNDED_UNITS_TOLERANCE),
    ),
    Claim("C12.10", 12, "ResNet-50 depth", "50", _architecture("ResNet-50", "depth"), exact()),
    Claim(
        "C12.11",
        12,
        "ResNet-50 has fewer parameters than VGG-16 despite being 3× deeper",
        "3× deeper, fewer",
        _resnet_vs_vgg,
        holds(),
    ),
    Claim("C12.12", 12, "Year: TinyCNN", "2025", reason=HISTORY),
    Claim("C12.13", 12, "Year: LeNet-5", "1998", reason=HISTORY),
    Claim("C12.14", 12, "Year: AlexNet", "2012", reason=HISTORY),
    Claim("C12.15", 12, "Year: VGG-16", "2014", reason=HISTORY),
    Claim("C12.16", 12, "Year: ResNet-50", "2015", reason=HISTORY),
    Claim(
        "C12.17", 12, "Timeline: Hubel & Wiesel, simple and complex cells", "1962", reason=HISTORY
    ),
    Claim("C12.18", 12, "Timeline: Fukushima's Neocognitron", "1980", reason=HISTORY),
    Claim("C12.19", 12, "Timeline: LeCun's LeNet", "1989", reason=HISTORY),
    Claim("C12.20", 12, "Timeline: Krizhevsky et al.'s AlexNet", "2012", reason=HISTORY),
    Claim(
        "C12.21",
        12,
        "50 years from neuroscience to engineering",
        "50 years",
        reason="historical; only consistent with the lecture's own dates (2012 - 1962 = 50)",
    ),
    Claim(
        "C12.22",
        12,
        "Every architecture below uses the same building blocks: convolution, nonlinearity, "
        "pooling, and dense classification — exactly what TinyCNN implements from scratch",
        "same building blocks",
        _same_blocks_at_scale,
        holds(),
    ),
)


# ---------------------------------------------------------------------------------------------
# General claims tested on real data (sections 10a-10c)
# ---------------------------------------------------------------------------------------------
# The lecture states these in general words and shows them on stripes only. Each is tested on
# scikit-learn's handwritten digits (and, for translation, on shifted copies), by a criterion
# fixed in its note. They are kept in their own ledger, apart from the rows above that check the
# lecture's own numbers.

#: A larger model "needs substantially more" parameters when it needs at least this many times.
SUBSTANTIALLY_MORE = 2.0
#: "The same filters suffice" when the smallest TinyCNN is within this of the best (accuracy).
SUFFICES_WITHIN = 0.01
#: Largest interior equivariance error that still counts as exact (float64 round-off).
EXACT_EQUIVARIANCE = 1e-12


def _digits(data) -> pd.DataFrame:
    return data.tables["10a_digits"]


def _cnn_beats_smaller_dense_models(data) -> Measurement:
    table = _digits(data)
    dense = table[table["family"] != "TinyCNN"]
    verdicts, parts = [], []
    for cnn in table[table["family"] == "TinyCNN"].itertuples():
        rivals = dense[dense["n_parameters"] <= cnn.n_parameters]
        if rivals.empty:
            parts.append(f"{cnn.model} ({count(cnn.n_parameters)}): no dense model that small")
            continue
        best = rivals.loc[rivals["mean"].idxmax()]
        verdicts.append(cnn.mean > best["mean"])
        parts.append(
            f"{cnn.model} ({count(cnn.n_parameters)}) {percent(cnn.mean)} vs "
            f"{best['model']} ({count(best['n_parameters'])}) {percent(best['mean'])}"
        )
    return Measurement(
        bool(verdicts) and all(verdicts),
        f"{sum(verdicts)} of {len(verdicts)} TinyCNN sizes",
        "; ".join(parts) + "; criterion: every TinyCNN is more accurate (mean over seeds) than "
        "the best MLP or linear model with at most its parameters",
    )


def _mlp_needs_more_capacity(data) -> Measurement:
    from tinycnn.reports.digits import best_tinycnn, matching_mlp

    table = _digits(data)
    cnn = best_tinycnn(table)
    mlp = matching_mlp(table, cnn["mean"])
    criterion = (
        f"criterion: the narrowest MLP of the sweep with at least the best TinyCNN's mean "
        f"accuracy has >= {SUBSTANTIALLY_MORE:g}x its parameters (or no MLP of the sweep gets "
        f"there)"
    )
    if mlp is None:
        widest = table[table["family"] == "MLP"].sort_values("n_parameters").iloc[-1]
        return Measurement(
            True,
            f"no MLP up to {count(widest['n_parameters'])} parameters",
            f"{cnn['model']} ({count(cnn['n_parameters'])} parameters) {percent(cnn['mean'])}; "
            f"the widest, {widest['model']}: {percent(widest['mean'])}; {criterion}",
        )
    ratio = mlp["n_parameters"] / cnn["n_parameters"]
    return Measurement(
        ratio >= SUBSTANTIALLY_MORE,
        f"{ratio:.2f}× ({mlp['model']})",
        f"{cnn['model']} {percent(cnn['mean'])} with {count(cnn['n_parameters'])} parameters; "
        f"{mlp['model']} {percent(mlp['mean'])} with {count(mlp['n_parameters'])}; {criterion}",
    )


def _three_filters_suffice(data) -> Measurement:
    from tinycnn.reports.digits import best_tinycnn

    table = _digits(data)
    cnn = table[table["family"] == "TinyCNN"]
    smallest = cnn.sort_values("n_parameters").iloc[0]
    best = best_tinycnn(table)
    gap = best["mean"] - smallest["mean"]
    return Measurement(
        gap <= SUFFICES_WITHIN,
        f"{percent(smallest['mean'])} vs {percent(best['mean'])}",
        f"{smallest['model']} against {best['model']} on 10 digits, mean over seeds; criterion: "
        f"within {100 * SUFFICES_WITHIN:g} point",
    )


def _small_model_does_not_overfit(data) -> Measurement:
    table = _digits(data)
    cnn = table[table["family"] == "TinyCNN"].sort_values("n_parameters")
    smallest = cnn.iloc[0]
    others = ", ".join(f"{r.model} {100 * r.largest_gap:.2f}" for r in cnn.iloc[1:].itertuples())
    return Measurement(
        smallest["largest_gap"] <= 0.01,
        f"largest gap {100 * smallest['largest_gap']:.2f} points",
        f"{smallest['model']}, |train - validation accuracy| after the last epoch, every seed "
        f"(larger TinyCNNs: {others} points); criterion: <= 1 point, as in C6.2",
    )


def _conv_layer_equivariant(data) -> Measurement:
    table = data.tables["10b_equivariance"]
    interior = float(table["interior_error"].max())
    border = float(table["border_error"].max())
    return Measurement(
        interior <= EXACT_EQUIVARIANCE,
        f"max error {interior:.1e} inside",
        f"trained conv layers (stripes and digits), shifts 1-{int(table['shift'].max())} px in 4 "
        f"directions, positions the zero fill does not reach; where it does, up to {border:.3g}; "
        f"criterion: inside error <= {EXACT_EQUIVARIANCE:g}",
    )


def _shifted(data, dataset: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    table = data.tables["10b_translation"]
    rows = table[table["data"] == dataset]
    return rows[rows["model"].str.startswith("TinyCNN")], rows[rows["model"].str.startswith("MLP")]


def _cnn_handles_shifts(dataset: str):
    def measure(data) -> Measurement:
        cnn, mlp = _shifted(data, dataset)
        moved = {name: rows[rows["shift"] > 0] for name, rows in (("cnn", cnn), ("mlp", mlp))}
        cnn_mean, mlp_mean = (float(moved[k]["mean"].mean()) for k in ("cnn", "mlp"))
        clean = {
            k: float(v[v["shift"] == 0]["mean"].iloc[0]) for k, v in (("cnn", cnn), ("mlp", mlp))
        }
        shifts = "-".join(
            str(s) for s in (moved["cnn"]["shift"].min(), moved["cnn"]["shift"].max())
        )
        return Measurement(
            cnn_mean > mlp_mean,
            f"{percent(cnn_mean)} vs {percent(mlp_mean)}",
            f"{cnn['model'].iloc[0]} vs {mlp['model'].iloc[0]} (clean: {percent(clean['cnn'])} vs "
            f"{percent(clean['mlp'])}), mean accuracy over shifts {shifts} px in 4 directions; "
            f"criterion: TinyCNN more accurate",
        )

    return measure


def _pooling_reduces_shift_change(data) -> Measurement:
    table = data.tables["10b_pooling"]
    one_pixel = table[table["shift"] == 1].groupby("data", sort=False)
    means = one_pixel[["change_unpooled", "change_pooled"]].mean()
    return Measurement(
        bool((means["change_pooled"] < means["change_unpooled"]).all()),
        "; ".join(
            f"{d} {r.change_pooled:.2f} vs {r.change_unpooled:.2f}" for d, r in means.iterrows()
        ),
        "relative change of a trained TinyCNN's features under a 1-pixel shift (mean over "
        "images and the 4 directions), after its 2x2 max pool vs before it: the same filters "
        "and images, so only the pooling differs (section 10b); criterion: smaller after "
        "pooling on both datasets",
    )


def _digit_filters_oriented(data) -> Measurement:
    scores = data.tables["10c_digit_filter_orientation"]
    selective = int((scores["selectivity"] >= experiments.MIN_SELECTIVITY).sum())
    kinds = scores.loc[scores["selectivity"] >= experiments.MIN_SELECTIVITY, "preferred"]
    counts = ", ".join(f"{n} {k}" for k, n in kinds.value_counts().sort_index().items())
    return Measurement(
        selective > len(scores) / 2,
        f"{selective} of {len(scores)} filters",
        f"final filters of the best digits TinyCNN, section 7's orientation score on clean "
        f"stripes ({counts or 'none'}); criterion: more than half have selectivity >= "
        f"{experiments.MIN_SELECTIVITY}",
    )


REAL_DATA_CLAIMS: tuple[Claim, ...] = (
    Claim(
        "R10a.1",
        "10a",
        "Recap: inductive bias is parameter-efficient (TinyCNN vs MLP), on real digits",
        "parameter-efficient",
        _cnn_beats_smaller_dense_models,
        holds(),
    ),
    Claim(
        "R10a.2",
        "10a",
        "The MLP needs substantially more capacity to match the CNN, on real digits",
        "substantially more",
        _mlp_needs_more_capacity,
        holds(),
    ),
    Claim(
        "R10a.3",
        "10a",
        "The same 3 filters suffice when classes are added (10 digits)",
        "same filters",
        _three_filters_suffice,
        holds(),
    ),
    Claim(
        "R10a.4",
        "10a",
        "A small model does not overfit: train and validation track closely, on real digits",
        "track closely",
        _small_model_does_not_overfit,
        holds(),
    ),
    Claim(
        "R10b.1",
        "10b",
        "Translation equivariance: shift the input, the feature map shifts (trained layers)",
        "same shift",
        _conv_layer_equivariant,
        holds(),
    ),
    Claim(
        "R10b.2",
        "10b",
        "Translation equivariance, CNN yes / MLP no: the CNN handles shifted stripes better",
        "Yes / No",
        _cnn_handles_shifts("stripes"),
        holds(),
    ),
    Claim(
        "R10b.3",
        "10b",
        "Translation equivariance, CNN yes / MLP no: the CNN handles shifted digits better",
        "Yes / No",
        _cnn_handles_shifts("digits"),
        holds(),
    ),
    Claim(
        "R10b.4",
        "10b",
        "Max pooling provides a degree of translation invariance",
        "a degree of",
        _pooling_reduces_shift_change,
        holds(),
    ),
    Claim(
        "R10c.1",
        "10c",
        "Learned filters become oriented edge detectors (Hubel & Wiesel's simple cells)",
        "edge detectors",
        _digit_filters_oriented,
        holds(),
    ),
)
