"""Hints for known mistakes, each verified against the student's numbers before it is shown.

A hint speaks about one *finding* of one function: one output (``y``, ``dx``, ``dw``, ``db``,
``loss``, ``dlogits``) and one kind of failure (wrong values, wrong shape, wrong dtype...). A hint
is shown only when the numbers prove its cause, never on a resemblance alone:

- a candidate computation with the suspected mistake *reproduces* the returned numbers on every
  failing case of the finding (a flipped kernel, stride 1 instead of the stride, ``=`` instead of
  ``+=`` for overlapping windows, a result exactly ``N`` or ``1/N`` times the contract's, a
  rounded-up output size, the empty crop ``p:-p``);
- or the returned numbers differ from the contract's *only* where the suspected rule applies
  (ties in a pooling window, ReLU inputs that are exactly 0), on every failing case;
- a fix is suggested only when it would work: "subtract the row maximum" only where the shifted
  computation is finite, "compute log-softmax directly" where the log of a probability that
  underflowed to 0 is what goes wrong.

A misleading hint is worse than none: every hint (`HINTS`) has a fixture under
``tests/fixtures/submissions`` that fires it, and ``tests/test_check_hints.py`` proves that the
fixtures of the other bugs do not.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["HINTS", "Observation", "hints_for_finding"]


#: Every hint the checker can give, by id (the id travels in ``--json``).
HINTS = {
    "keep-dtype": "an output is float64 for float32 input",
    "python-float-loss": "the loss is a Python float",
    "modified-input": "an input array was changed in place",
    "flip-forward": "conv2d forward computes a true convolution (the kernel flipped)",
    "flip-consistent": "conv2d backward is the gradient of a true convolution (dx and dw)",
    "flip-forgot": "conv2d backward's dx misses the 180-degree rotation of the kernel",
    "times-n": "an output is exactly N times the contract's (N = batch size)",
    "one-over-n": "an output is exactly 1/N of the contract's (N = batch size)",
    "subtract-max": "exp overflows: the shifted (max-subtracted) computation would be finite",
    "log-softmax": "log of a probability that underflowed to 0: compute log-softmax directly",
    "crop-p-minus-p": "dx cropped with p:-p, empty when padding is 0",
    "ceil-size": "the output size is rounded up instead of floored",
    "stride-ignored": "windows start at (i, j) instead of (i*stride, j*stride)",
    "ties": "pooling ties go to another maximum than the first",
    "overlap-assign": "overlapping pooling windows overwrite (=) instead of adding (+=)",
    "exact-zeros": "ReLU's gradient passes where x is exactly 0",
    "layout": "fails only on inputs that are not C-contiguous; the same shapes in C order pass",
}


@dataclass(frozen=True)
class Observation:
    """One output of one case, as the grader judged it.

    Attributes
    ----------
    case : tinycnn.parity_tests.cases.OpCase
    direction : str
        ``"forward"`` or ``"backward"``: which contract function of ``case.op`` was called.
    output : str
        The output name; for ``kind == "raised"`` the exception's type, for "modified input" the
        input's name, for "structure" and "not implemented" ``"result"``.
    kind : str or None
        None when this output's values matched on this case; otherwise one of the grader's
        `KINDS` ("values", "non-finite", "shape", "dtype", ...). A case can contribute a "dtype"
        observation and a values observation for the same output.
    message : str
        What went wrong, in words (empty when matched).
    actual, expected : object
        The returned output and the contract's (for kinds that got that far).
    inputs : dict of str to numpy.ndarray
        The case's inputs (shared, read-only).
    """

    case: object
    direction: str
    output: str
    kind: str | None
    message: str = ""
    actual: object = None
    expected: object = None
    inputs: dict = field(default_factory=dict, repr=False, compare=False)


# --------------------------------------------------------------------------------------------
# Helpers: the reference ops (imported lazily: NumPy only), reproduction within tolerance
# --------------------------------------------------------------------------------------------


def _ops():
    from tinycnn.reference import ops

    return ops


def _reproduces(actual: object, candidate: np.ndarray, op: str) -> bool:
    """``actual`` equals ``candidate`` within the tolerance of ``op`` at the candidate's dtype."""
    from tinycnn.parity_tests.tolerances import tolerance

    try:
        got = np.asarray(actual, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    want = np.asarray(candidate, dtype=np.float64)
    if got.shape != want.shape or not np.all(np.isfinite(got) == np.isfinite(want)):
        return False
    if got.size == 0:
        return True
    finite = np.isfinite(want)
    if not np.array_equal(got[~finite], want[~finite], equal_nan=True):
        return False
    tol = tolerance(op, np.asarray(candidate).dtype)
    scale = float(np.max(np.abs(want[finite]), initial=0.0))
    return float(np.max(np.abs(got[finite] - want[finite]), initial=0.0)) <= tol.atol + (
        tol.rtol * scale
    )


def _differs(actual: object, expected: np.ndarray, op: str) -> np.ndarray | None:
    """Boolean mask of the entries of ``actual`` outside the tolerance, None if not comparable."""
    from tinycnn.parity_tests.tolerances import tolerance

    try:
        got = np.asarray(actual, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    want = np.asarray(expected, dtype=np.float64)
    if got.shape != want.shape:
        return None
    tol = tolerance(op, np.asarray(expected).dtype)
    scale = float(np.max(np.abs(want), initial=0.0))
    with np.errstate(invalid="ignore"):
        off = ~(np.abs(got - want) <= tol.atol + tol.rtol * scale)
    return off


def _flip(w: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(w[:, :, ::-1, ::-1])


def _all(observations: Sequence[Observation], test: Callable[[Observation], bool]) -> bool:
    return bool(observations) and all(test(o) for o in observations)


def _batch(o: Observation) -> int:
    return int(o.case.x_shape[0])


# --------------------------------------------------------------------------------------------
# The rules: (finding kind(s), test) -> (hint id, text). Each returns None when it cannot prove
# its cause on every failing observation of the finding.
# --------------------------------------------------------------------------------------------


def _dtype_hint(function: str, output: str, failing: Sequence[Observation], _all_obs):
    if output == "loss" and _all(failing, lambda o: type(o.actual) is float):
        return (
            "python-float-loss",
            "loss is a Python float: return it as a NumPy scalar of the logits dtype, "
            "e.g. np.asarray(loss, dtype=logits.dtype).",
        )
    if _all(
        failing,
        lambda o: getattr(o.actual, "dtype", None) == np.float64 and o.case.dtype == "float32",
    ):
        return (
            "keep-dtype",
            f"{output} is float64 for float32 input: keep the input dtype (np.zeros(shape) "
            f"without dtype= and Python float constants give float64).",
        )
    return None


def _modified_hint(function: str, output: str, failing: Sequence[Observation], _all_obs):
    return (
        "modified-input",
        f"work on a copy: in-place operations such as {output}[...] = ... or {output} -= ... "
        f"change the caller's array (use x.copy(), np.where, np.pad, which return new arrays).",
    )


def _conv_backward_flipped(o: Observation) -> tuple[np.ndarray, np.ndarray]:
    """dx and dw of the gradient of a true convolution (the contract's conv with w flipped)."""
    i = o.inputs
    dx, dw, _ = _ops().conv2d_backward(
        i["dy"], i["x"], _flip(i["w"]), i["b"], stride=o.case.stride, padding=o.case.padding
    )
    return dx, _flip(dw)


def _failing_of(all_obs: Sequence[Observation], output: str) -> list[Observation]:
    return [o for o in all_obs if o.output == output and o.kind in ("values", "non-finite")]


def _flip_hint(function: str, output: str, failing: Sequence[Observation], all_obs):
    if function == "conv2d_forward" and output == "y":

        def flipped(o: Observation) -> bool:
            i = o.inputs
            y = _ops().conv2d_forward(
                i["x"], _flip(i["w"]), i["b"], stride=o.case.stride, padding=o.case.padding
            )
            return _reproduces(o.actual, y, "conv2d")

        if _all(failing, flipped):
            return (
                "flip-forward",
                "y is exactly a true convolution (the kernel flipped, w[:, :, ::-1, ::-1]): "
                "you flipped the kernel where no flip was needed. The contract is "
                "cross-correlation, like torch.nn.functional.conv2d.",
            )
        return None
    if function != "conv2d_backward" or output not in ("dx", "dw"):
        return None
    dx_failing, dw_failing = _failing_of(all_obs, "dx"), _failing_of(all_obs, "dw")
    dx_flipped = _all(
        dx_failing, lambda o: _reproduces(o.actual, _conv_backward_flipped(o)[0], "conv2d")
    )
    dw_flipped = _all(
        dw_failing, lambda o: _reproduces(o.actual, _conv_backward_flipped(o)[1], "conv2d")
    )
    if dx_flipped and dw_flipped:
        return (
            "flip-consistent",
            "dx and dw are exactly the gradients of a true convolution (the kernel flipped, "
            "w[:, :, ::-1, ::-1]): you flipped the kernel where no flip was needed. The "
            "contract is cross-correlation: dy[n, f, i, j] * w[f] (unflipped) flows back to the "
            "patch at (i*stride, j*stride), and dw[f] collects dy[n, f, i, j] times that patch.",
        )
    if output == "dx" and dx_flipped and not dw_failing:
        return (
            "flip-forgot",
            "dx is exactly what the unrotated kernel gives: you forgot to flip. Written as a "
            "full convolution, dx is the padded dy cross-correlated with the kernel rotated 180 "
            "degrees (w[:, :, ::-1, ::-1], F and C axes swapped); or scatter dy[n, f, i, j] * "
            "w[f] back onto each patch, which needs no flip.",
        )
    return None


def _ratio_hint(function: str, output: str, failing: Sequence[Observation], _all_obs):
    values = [o for o in failing if o.kind == "values"]
    if not values or len(values) != len(failing) or not _all(values, lambda o: _batch(o) > 1):
        return None

    def scaled(factor: Callable[[int], float]) -> Callable[[Observation], bool]:
        def test(o: Observation) -> bool:
            want = np.asarray(o.expected)
            candidate = (want.astype(np.float64) * factor(_batch(o))).astype(want.dtype)
            return _reproduces(o.actual, candidate, o.case.op)

        return test

    if _all(values, scaled(lambda n: n)):
        if output == "loss":
            why = "the loss is the batch mean of -log p, not the sum."
        elif output == "dlogits":
            why = (
                "the loss is the batch mean, so its gradient is "
                "(softmax(logits) - onehot(labels)) / N."
            )
        else:
            why = f"{output} must not be multiplied by the batch size."
        return ("times-n", f"{output} is exactly N times too large (N = batch size): {why}")
    if _all(values, scaled(lambda n: 1.0 / n)):
        return (
            "one-over-n",
            f"{output} is exactly 1/N of the contract's (N = batch size): you divided by N. "
            f"In this contract dy already carries the 1/N of the mean loss "
            f"(softmax_cross_entropy divides dlogits by N), so {function} must not divide "
            f"again (some courses put the 1/N here instead; PyTorch and this contract do not).",
        )
    return None


def _shifted_log_probs_loss(o: Observation) -> float:
    """The loss as a student who subtracts the row maximum, then takes log of probabilities."""
    logits, labels = o.inputs["logits"], o.inputs["labels"]
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        shifted = logits - logits.max(axis=1, keepdims=True)
        exps = np.exp(shifted)
        probs = exps / exps.sum(axis=1, keepdims=True)
        return float(-np.mean(np.log(probs[np.arange(len(labels)), labels])))


def _overflows_unshifted(o: Observation) -> bool:
    with np.errstate(over="ignore"):
        return not np.all(np.isfinite(np.exp(o.inputs["logits"])))


_SUBTRACT_MAX = (
    "subtract each row's maximum from the logits before exp (exp(1000) overflows to inf; the "
    "shifted logits give the same softmax)."
)
_LOG_SOFTMAX = (
    "do not take the log of probabilities: a probability that underflows to 0 gives "
    "log(0) = -inf (logits [[0, 1000]], label 0: the loss is 1000, not inf). Compute "
    "log-softmax directly: log p = z - log(sum(exp(z))), with z = logits minus the row maximum."
)


def _softmax_hint(function: str, output: str, failing: Sequence[Observation], _all_obs):
    if function != "softmax_cross_entropy":
        return None
    bad = [o for o in failing if o.kind == "non-finite"]
    if not bad or len(bad) != len(failing):
        return None
    if output == "dlogits":
        # The shifted softmax is always finite; say so only where exp really overflowed.
        if _all(bad, _overflows_unshifted):
            return ("subtract-max", f"dlogits is NaN or inf for large logits: {_SUBTRACT_MAX}")
        return None
    if output != "loss":
        return None
    shifted_finite = [math.isfinite(_shifted_log_probs_loss(o)) for o in bad]
    if all(shifted_finite):
        if _all(bad, _overflows_unshifted):
            return ("subtract-max", f"the loss is NaN or inf for large logits: {_SUBTRACT_MAX}")
        return None
    if not any(shifted_finite):
        return ("log-softmax", f"the loss is inf for large logits: {_LOG_SOFTMAX}")
    # Some cases need the shift, the others the log-softmax: both, each proven on its cases.
    overflow = [o for o, finite in zip(bad, shifted_finite, strict=True) if finite]
    if _all(overflow, _overflows_unshifted):
        return (
            ("subtract-max", "log-softmax"),
            f"the loss is NaN or inf for large logits: {_SUBTRACT_MAX} Then {_LOG_SOFTMAX}",
        )
    return None


def _output_size(o: Observation, rounding: Callable[[float], int]) -> tuple[int, ...] | None:
    case = o.case
    if case.op == "conv2d":
        N, _, H, W = case.x_shape
        F, _, KH, KW = case.w_shape
        P, S = case.padding, case.stride
        return (N, F, rounding((H + 2 * P - KH) / S) + 1, rounding((W + 2 * P - KW) / S) + 1)
    if case.op == "maxpool2d":
        N, C, H, W = case.x_shape
        K, S = case.size, case.stride
        return (N, C, rounding((H - K) / S) + 1, rounding((W - K) / S) + 1)
    return None


def _shape_hint(function: str, output: str, failing: Sequence[Observation], _all_obs):
    if function == "conv2d_backward" and output == "dx":
        N, C = None, None

        def empty_crop(o: Observation) -> bool:
            N, C = o.case.x_shape[:2]
            return o.case.padding == 0 and getattr(o.actual, "shape", None) == (N, C, 0, 0)

        del N, C
        if _all(failing, empty_crop):
            return (
                "crop-p-minus-p",
                "dx has shape (N, C, 0, 0) exactly when padding is 0: the crop "
                "dx_padded[:, :, p:-p, p:-p] is empty for p = 0 (-0 is 0, so the slice is "
                "0:0). Crop with dx_padded[:, :, p:p + H, p:p + W].",
            )
        return None
    if output == "y" and function in ("conv2d_forward", "maxpool2d_forward"):
        if _all(failing, lambda o: getattr(o.actual, "shape", None) == _output_size(o, math.ceil)):
            return (
                "ceil-size",
                "y has the rounded-up output size: the contract floors, H_out = (H + "
                "2*padding - KH) // stride + 1 (for pooling padding is 0), like PyTorch's "
                "default ceil_mode=False; rows and columns no whole window covers are dropped.",
            )
    return None


def _stride_hint(function: str, output: str, failing: Sequence[Observation], _all_obs):
    if output != "y" or function not in ("conv2d_forward", "maxpool2d_forward"):
        return None

    def stride_one(o: Observation) -> bool:
        if o.case.stride == 1:
            return False
        i, ops = o.inputs, _ops()
        if o.case.op == "conv2d":
            full = ops.conv2d_forward(i["x"], i["w"], i["b"], stride=1, padding=o.case.padding)
        else:
            full = ops.maxpool2d_forward(i["x"], size=o.case.size, stride=1)
        H_out, W_out = np.asarray(o.expected).shape[2:]
        return _reproduces(o.actual, full[:, :, :H_out, :W_out], o.case.op)

    if _all(failing, stride_one):
        return (
            "stride-ignored",
            "y is what stride 1 gives (its first H_out x W_out outputs): window (i, j) "
            "starts at row i*stride and column j*stride, not at (i, j).",
        )
    return None


def _windows(o: Observation):
    """Every pooling window of the case: ``(row slice, column slice, output i, output j)``."""
    size, stride = o.case.size, o.case.stride
    H_out, W_out = np.asarray(o.inputs["dy"]).shape[2:]
    for i in range(H_out):
        for j in range(W_out):
            yield (
                slice(i * stride, i * stride + size),
                slice(j * stride, j * stride + size),
                i,
                j,
            )


def _pool_hint(function: str, output: str, failing: Sequence[Observation], _all_obs):
    if function != "maxpool2d_backward" or output != "dx":
        return None
    values = [o for o in failing if o.kind == "values"]
    if not values or len(values) != len(failing):
        return None

    def only_in_tied_windows(o: Observation) -> bool:
        off = _differs(o.actual, o.expected, "maxpool2d")
        if off is None or not off.any():
            return False
        x = o.inputs["x"]
        tied = np.zeros(x.shape, dtype=bool)
        for rows, cols, _, _ in _windows(o):
            window = x[:, :, rows, cols]
            peak = window.max(axis=(2, 3), keepdims=True)
            has_tie = (window == peak).sum(axis=(2, 3)) > 1
            tied[:, :, rows, cols] |= has_tie[:, :, None, None]
        return not np.any(off & ~tied)

    if _all(values, only_in_tied_windows):
        return (
            "ties",
            "dx differs only inside windows that hold their maximum more than once: on a tie "
            "the gradient goes to the first maximum in row-major order, one winner per window "
            "(np.argmax returns the first).",
        )

    def assigned(o: Observation) -> bool:
        x, dy = o.inputs["x"], o.inputs["dy"]
        candidate = np.zeros_like(x)
        N, C = x.shape[:2]
        for rows, cols, i, j in _windows(o):
            window = x[:, :, rows, cols].reshape(N, C, -1)
            first = window.argmax(axis=2)
            u, v = np.divmod(first, cols.stop - cols.start)
            for n in range(N):
                for c in range(C):
                    candidate[n, c, rows.start + u[n, c], cols.start + v[n, c]] = dy[n, c, i, j]
        return _reproduces(o.actual, candidate, "maxpool2d")

    if _all(values, lambda o: o.case.size > o.case.stride) and _all(values, assigned):
        return (
            "overlap-assign",
            "dx is what assigning (=) each window's gradient gives: where windows overlap "
            "(size > stride) a position can win several windows and must receive the sum of "
            "their gradients (+=).",
        )
    return None


def _relu_hint(function: str, output: str, failing: Sequence[Observation], _all_obs):
    if function != "relu_backward" or output != "dx":
        return None

    def only_at_zeros(o: Observation) -> bool:
        off = _differs(o.actual, o.expected, "relu")
        return off is not None and off.any() and not np.any(off & (o.inputs["x"] != 0))

    if _all(failing, lambda o: o.kind == "values") and _all(failing, only_at_zeros):
        return (
            "exact-zeros",
            "dx differs only where x is exactly 0: the gradient at exactly 0 is 0 (pass dy "
            "where x > 0, not where x >= 0).",
        )
    return None


def _twin(case, candidates=None):
    """The C-ordered case with the same op, shapes, hyper-parameters and dtype, if any (among
    ``candidates``, default the catalogue: a run's hidden cases have their own twins)."""
    from tinycnn.parity_tests.cases import CASES

    key = (case.op, case.x_shape, case.w_shape, case.stride, case.padding, case.size)
    for other in CASES if candidates is None else candidates:
        if (
            other.layout == "C"
            and (other.op, other.x_shape, other.w_shape, other.stride, other.padding, other.size)
            == key
            and (other.dtype, other.scale, other.label_dtype) == (case.dtype, case.scale, "int64")
            and not other.special_tags
        ):
            return other
    return None


def _layout_hint(function: str, output: str, failing: Sequence[Observation], all_obs):
    if not _all(failing, lambda o: "non-contiguous" in o.case.tags):
        return None
    raised = failing[0].kind == "raised"

    observed = list({t.case.id: t.case for t in all_obs}.values())

    def twin_passes(o: Observation) -> bool:
        twin = _twin(o.case, observed)
        if twin is None:
            return False
        seen = [t for t in all_obs if t.case.id == twin.id]
        if raised:
            return bool(seen) and not any(t.kind == "raised" for t in seen)
        return any(t.output == output and t.kind is None for t in seen)

    if not _all(failing, twin_passes):
        return None
    what = f"raises {output}" if raised else f"{output} is wrong"
    return (
        "layout",
        f"{what} only for inputs that are not C-contiguous (Fortran order, transposed or "
        f"reversed views, slices), while the same shapes in C order pass: the code assumes "
        f"C-contiguous memory (np.frombuffer, .data, ravel(order='K'), as_strided with strides "
        f"computed from the shape). Index the arrays as they are, or start with "
        f"x = np.ascontiguousarray(x).",
    )


# Which rules look at which kinds of finding, in order: the first that proves its cause wins.
_RULES: dict[str, tuple[Callable, ...]] = {
    "dtype": (_dtype_hint,),
    "modified input": (_modified_hint,),
    "shape": (_shape_hint,),
    "values": (_layout_hint, _flip_hint, _ratio_hint, _stride_hint, _pool_hint, _relu_hint),
    "non-finite": (_layout_hint, _softmax_hint),
    "raised": (_layout_hint,),
}


def hints_for_finding(
    function: str,
    output: str,
    kind: str,
    failing: Sequence[Observation],
    observations: Sequence[Observation],
) -> tuple[tuple[str, ...], str] | None:
    """The verified hint for one finding: ``(hint ids, text)``, or None.

    Parameters
    ----------
    function : str
        Contract function name.
    output, kind : str
        The finding: which output and what kind of failure.
    failing : sequence of Observation
        The finding's observations (one per failing case).
    observations : sequence of Observation
        Every observation of the function (other outputs, passing cases).
    """
    for rule in _RULES.get(kind, ()):
        try:
            found = rule(function, output, failing, observations)
        except Exception:  # whatever a submission returned, grading goes on
            found = None  # a candidate that cannot even be computed proves nothing
        if found is not None:
            ids, text = found
            return ((ids,) if isinstance(ids, str) else tuple(ids)), text
    return None
