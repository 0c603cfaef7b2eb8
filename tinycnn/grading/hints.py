"""Hints for known failure patterns: what a student most likely got wrong.

Two kinds of evidence:

- the *pattern over case tags* (see ``tinycnn.parity_tests.cases.TAGS``): a function that fails on
  every case with an asymmetric kernel but passes every case with a symmetric one has almost
  certainly flipped its kernel; failing only on ties points at the tie rule, only on exact zeros at
  the gradient of ReLU at 0, and so on;
- the *first failure itself*: a float64 output for float32 input, a Python float loss, a modified
  input, a gradient exactly N times too large.

Each hint is one sentence a student can act on; the first rule that matches wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["CaseOutcome", "hint_for"]


@dataclass(frozen=True)
class CaseOutcome:
    """How one case went, as the hint rules see it.

    Attributes
    ----------
    case : parity_tests.cases.OpCase
    passed : bool
    problem : str or None
        For a failure: "raised", "structure", "shape", "dtype", "values", "non-finite" or
        "modified-input".
    output : str or None
        The output (``y``, ``dx``, ``dw``, ``db``, ``loss``, ``dlogits``) or the input (for
        "modified-input") concerned.
    actual, expected : object
        The output as returned and as expected (for failures that got that far).
    failed_outputs, passed_outputs : tuple of str
        Every output whose values were compared, by result (a case can fail on dw and pass on
        dx): the tag rules look at each output separately.
    """

    case: object
    passed: bool
    problem: str | None = None
    output: str | None = None
    actual: object = None
    expected: object = None
    failed_outputs: tuple[str, ...] = ()
    passed_outputs: tuple[str, ...] = ()


# Tag -> (contrasting tag or None, which functions the rule speaks about, the hint).
# "{outputs}" is replaced by the outputs that differ, e.g. "dx and dw", and "{differ}" / "{is}"
# by the verb agreeing with them.
_TAG_RULES: tuple[tuple[str, str | None, tuple[str, ...], str], ...] = (
    (
        "asymmetric-kernel",
        "symmetric-kernel",
        ("conv2d_forward", "conv2d_backward"),
        "{outputs} {differ} only when the kernel is asymmetric: is the kernel flipped? The "
        "contract "
        "is cross-correlation (no flip), like torch.nn.functional.conv2d.",
    ),
    (
        "ties",
        None,
        ("maxpool2d_backward", "maxpool2d_forward"),
        "{outputs} {differ} only when a window holds its maximum more than once: ties must go to "
        "the "
        "first maximum in row-major order (exactly one winner per window).",
    ),
    (
        "exact-zeros",
        None,
        ("relu_backward", "relu_forward"),
        "{outputs} {differ} only where x is exactly 0: the gradient at exactly 0 is 0 (pass dy "
        "where "
        "x > 0, not where x >= 0).",
    ),
    (
        "large-logits",
        None,
        ("softmax_cross_entropy",),
        "{outputs} {is} wrong only for large logits: subtract each row's maximum before exp "
        "(exp(1000) overflows to inf).",
    ),
    (
        "overlap",
        None,
        ("maxpool2d_backward",),
        "{outputs} {differ} only when windows overlap (size > stride): a position that wins "
        "several "
        "windows must receive the sum of their gradients (+=, not =).",
    ),
    (
        "padding",
        None,
        ("conv2d_forward", "conv2d_backward"),
        "{outputs} {differ} only with padding > 0: pad all four sides with `padding` zeros (and "
        "crop "
        "the padding off dx in the backward pass).",
    ),
    (
        "stride",
        None,
        ("conv2d_forward", "conv2d_backward", "maxpool2d_forward", "maxpool2d_backward"),
        "{outputs} {differ} only with stride > 1: window (i, j) starts at row i*stride and column "
        "j*stride, and H_out = (H + 2*padding - KH) // stride + 1.",
    ),
    (
        "odd-size",
        None,
        ("conv2d_forward", "conv2d_backward", "maxpool2d_forward", "maxpool2d_backward"),
        "{outputs} {differ} only when the windows do not tile the input exactly: the output size "
        "is "
        "floored, and rows or columns no window reaches get zero gradient.",
    ),
    (
        "non-square",
        None,
        ("conv2d_forward", "conv2d_backward", "maxpool2d_forward", "maxpool2d_backward"),
        "{outputs} {differ} only when height and width (or KH and KW) differ: are two axes "
        "swapped?",
    ),
)


def _join(names: Sequence[str]) -> str:
    names = list(dict.fromkeys(names))
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _tag_hint(function: str, outcomes: Sequence[CaseOutcome]) -> str | None:
    """A rule whose tag every failure of some output carries, while that output passes a case
    without the tag (with the contrasting tag, if the rule has one)."""
    if any(o.problem not in ("values", "non-finite") for o in outcomes if not o.passed):
        return None  # other kinds of failure (shape, dtype, exceptions) explain themselves
    outputs = list(dict.fromkeys(name for o in outcomes for name in o.failed_outputs))
    matched: dict[int, list[str]] = {}
    for output in outputs:
        failed = [o for o in outcomes if output in o.failed_outputs]
        passed = [o for o in outcomes if output in o.passed_outputs]
        for index, (tag, contrast, functions, _) in enumerate(_TAG_RULES):
            if function not in functions or not all(tag in o.case.tags for o in failed):
                continue
            if any(
                tag not in o.case.tags and (contrast is None or contrast in o.case.tags)
                for o in passed
            ):
                matched.setdefault(index, []).append(output)
                break
    if not matched:
        return None
    index = min(matched)
    names = matched[index]
    plural = len(names) > 1
    return _TAG_RULES[index][3].format(
        outputs=_join(names),
        differ="differ" if plural else "differs",
        **{"is": "are" if plural else "is"},
    )


def _ratio(actual: object, expected: object) -> float | None:
    """``actual / expected`` if one number relates them (within 1e-6), else None."""
    try:
        actual = np.asarray(actual, dtype=np.float64)
        expected = np.asarray(expected, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if actual.shape != expected.shape or not np.all(np.isfinite(actual)):
        return None
    scale = float(np.max(np.abs(expected), initial=0.0))
    if scale == 0:
        return None
    k = float(np.sum(actual * expected) / np.sum(expected * expected))
    if np.max(np.abs(actual - k * expected)) <= 1e-6 * abs(k) * scale:
        return k
    return None


def _first_failure_hint(function: str, first: CaseOutcome) -> str | None:
    case = first.case
    if first.problem == "modified-input":
        return (
            f"work on a copy: in-place operations such as {first.output}[...] = ... or "
            f"{first.output} -= ... change the caller's array (use x.copy(), np.where, np.pad, "
            f"which return new arrays)."
        )
    if first.problem == "dtype":
        actual_dtype = getattr(first.actual, "dtype", None)
        if isinstance(first.actual, float) and first.output == "loss":
            return (
                "loss is a Python float: return it as a NumPy scalar of the logits dtype, "
                "e.g. np.asarray(loss, dtype=logits.dtype)."
            )
        if actual_dtype == np.float64 and case.dtype == "float32":
            return (
                f"{first.output} is float64 for float32 input: keep the input dtype "
                f"(np.zeros(shape) without dtype= and Python float constants give float64)."
            )
        return f"{first.output} is {actual_dtype} but should be {case.dtype}: keep the input dtype."
    if first.problem == "structure":
        return None
    if first.problem == "shape" and case.op in ("conv2d", "maxpool2d"):
        return (
            "the output size is H_out = (H + 2*padding - KH) // stride + 1, likewise W_out; "
            "a gradient has the shape of the array it belongs to."
        )
    if first.problem in ("values", "non-finite"):
        if function == "softmax_cross_entropy":
            N = case.x_shape[0]
            k = _ratio(first.actual, first.expected)
            if k is not None and N > 1 and abs(k - N) < 1e-6 * N:
                what = (
                    "dlogits must be divided"
                    if first.output == "dlogits"
                    else ("the loss is the batch mean, so it must be divided")
                )
                return f"{first.output} is exactly N = {N} times too large: {what} by N."
    return None


def hint_for(function: str, outcomes: Sequence[CaseOutcome]) -> str | None:
    """The most specific hint for a failing function, or None when no known pattern matches.

    Parameters
    ----------
    function : str
        Contract function name.
    outcomes : sequence of CaseOutcome
        Every case the function ran, in catalogue order.
    """
    failures = [o for o in outcomes if not o.passed]
    if not failures:
        return None
    first = failures[0]
    if first.problem in ("modified-input", "dtype"):
        return _first_failure_hint(function, first)
    return _tag_hint(function, outcomes) or _first_failure_hint(function, first)
