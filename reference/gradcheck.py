"""Numerical gradient checking: compare backprop with two-sided finite differences.

The lecture's recipe::

    dL/dtheta_i  ~  (L(theta_i + eps) - L(theta_i - eps)) / (2 eps),   eps = 1e-5
    e_rel = ||g_backprop - g_numeric|| / (||g_backprop|| + ||g_numeric||)

and how to read ``e_rel``: below 1e-7 perfect, 1e-7 to 1e-5 acceptable, above 1e-3 a bug.
Run it in float64: in float32 the rounding error of the loss swamps a step of 1e-5.

A two-sided difference is meaningless where the step crosses a kink: a ReLU input that changes
sign between ``theta - eps`` and ``theta + eps`` (a blank image with zero bias puts conv outputs
exactly at 0), or a max-pool window whose winner changes. `gradient_check` watches every ReLU
input's sign and every pooling window's winner at both ends of each step; the units whose step
changes one are left out of ``e_rel`` and counted, and a tensor whose every unit crosses a kink
gets the band ``"kink"`` instead of a verdict.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "DEFAULT_EPS",
    "GradientCheck",
    "error_band",
    "gradient_check",
    "numerical_gradient",
    "relative_error",
]

DEFAULT_EPS = 1e-5

#: The lecture's bands, as (upper bound of e_rel, name), checked in order.
ERROR_BANDS = ((1e-7, "perfect"), (1e-5, "acceptable"), (1e-3, "suspicious"), (np.inf, "bug"))


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``||a - b|| / (||a|| + ||b||)`` over all elements; 0 when both are exactly zero."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare gradients of shapes {a.shape} and {b.shape}")
    denominator = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denominator == 0 else float(np.linalg.norm(a - b) / denominator)


def error_band(e_rel: float) -> str:
    """The lecture's name for a relative error: perfect, acceptable, suspicious or bug.

    A `GradientCheck` whose every unit crosses a kink (``e_rel`` is NaN) is ``"kink"``.
    """
    if getattr(e_rel, "n_units", 0) and e_rel.n_kink == e_rel.n_units:
        return "kink"
    if np.isnan(e_rel):
        raise ValueError("a NaN relative error has no band")
    return next(name for bound, name in ERROR_BANDS if e_rel < bound)


class GradientCheck(float):
    """The relative error of one parameter tensor (a float), with the units left out.

    Attributes
    ----------
    n_units : int
        Entries of the tensor.
    n_kink : int
        Entries whose two-sided step crosses a kink (a ReLU input changes sign or a max-pool
        window changes its winner between ``-eps`` and ``+eps``): left out of the error, whose
        value is NaN when every entry is such a unit.
    """

    n_units: int
    n_kink: int

    def __new__(cls, e_rel: float, n_units: int, n_kink: int) -> GradientCheck:
        check = super().__new__(cls, e_rel)
        check.n_units, check.n_kink = n_units, n_kink
        return check

    @property
    def band(self) -> str:
        """`error_band` of the error: perfect ... bug, or ``"kink"`` when no unit is left."""
        return error_band(self)

    def __repr__(self) -> str:
        return f"GradientCheck({float(self)!r}, n_units={self.n_units}, n_kink={self.n_kink})"


def numerical_gradient(
    f: Callable[[], float], array: np.ndarray, eps: float = DEFAULT_EPS
) -> np.ndarray:
    """Two-sided finite-difference gradient of ``f()`` with respect to every entry of ``array``.

    ``array`` is perturbed in place, one entry at a time, and restored exactly afterwards; ``f``
    must read it (for example a closure over a model's parameter dict).

    Returns
    -------
    ndarray, float64, same shape as ``array``
    """
    if array.dtype != np.float64:
        raise ValueError(f"gradient checks need float64 arrays, got {array.dtype}")
    grad = np.zeros(array.shape)
    if array.size == 0:
        return grad
    flat_view = array.reshape(-1)  # a view: writes reach `array`
    if not np.shares_memory(flat_view, array):
        raise ValueError("array must be contiguous so it can be perturbed in place")
    for i in range(flat_view.size):
        original = flat_view[i]
        flat_view[i] = original + eps
        loss_plus = float(f())
        flat_view[i] = original - eps
        loss_minus = float(f())
        flat_view[i] = original
        grad.reshape(-1)[i] = (loss_plus - loss_minus) / (2 * eps)
    return grad


def gradient_check(
    model, x: np.ndarray, labels: np.ndarray, eps: float = DEFAULT_EPS
) -> dict[str, GradientCheck]:
    """Relative error between backprop and finite differences for each parameter tensor.

    Units whose step crosses a kink (see the module docstring) are left out of the error and
    counted in its ``n_kink``.

    Parameters
    ----------
    model : reference.models.TinyCNN, MLP or SoftmaxRegression
        A float64 model (``model.astype(np.float64)`` first if needed).
    x, labels : ndarray
        A (small) batch; the loss is the model's batch-mean softmax cross-entropy.
    eps : float, default 1e-5

    Returns
    -------
    dict of parameter name to GradientCheck
        Each a float (the relative error over the units away from kinks) with ``n_units``,
        ``n_kink`` and ``band``.
    """
    if model.dtype != np.float64:
        raise ValueError(f"gradient checks need a float64 model, got {model.dtype}")
    _, analytic = model.loss_and_gradients(x, labels)

    def loss_and_kinks() -> tuple[float, np.ndarray]:
        logits, activations = model.forward_with_activations(x)
        loss = float(model.ops.softmax_cross_entropy(logits, labels)[0])
        return loss, model.kink_signature(activations)

    checks = {}
    for name, param in model.params.items():
        numeric, kink = _numerical_gradient_and_kinks(loss_and_kinks, param, eps)
        away = ~kink
        e_rel = relative_error(analytic[name][away], numeric[away]) if away.any() else np.nan
        checks[name] = GradientCheck(e_rel, param.size, int(kink.sum()))
    return checks


def _numerical_gradient_and_kinks(f, array: np.ndarray, eps: float):
    """`numerical_gradient` of ``f()[0]``, and where ``f()[1]`` (the side of every kink the
    forward pass took) differs between the two ends of the step."""
    grad = np.zeros(array.shape)
    kink = np.zeros(array.shape, dtype=bool)
    flat_view = array.reshape(-1)
    if array.size and not np.shares_memory(flat_view, array):
        raise ValueError("array must be contiguous so it can be perturbed in place")
    for i in range(flat_view.size):
        original = flat_view[i]
        flat_view[i] = original + eps
        loss_plus, sides_plus = f()
        flat_view[i] = original - eps
        loss_minus, sides_minus = f()
        flat_view[i] = original
        grad.reshape(-1)[i] = (loss_plus - loss_minus) / (2 * eps)
        kink.reshape(-1)[i] = not np.array_equal(sides_plus, sides_minus)
    return grad, kink
