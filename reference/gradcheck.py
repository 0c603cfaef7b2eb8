"""Numerical gradient checking: compare backprop with two-sided finite differences.

The lecture's recipe::

    dL/dtheta_i  ~  (L(theta_i + eps) - L(theta_i - eps)) / (2 eps),   eps = 1e-5
    e_rel = ||g_backprop - g_numeric|| / (||g_backprop|| + ||g_numeric||)

and how to read ``e_rel``: below 1e-7 perfect, 1e-7 to 1e-5 acceptable, above 1e-3 a bug.
Run it in float64: in float32 the rounding error of the loss swamps a step of 1e-5.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["DEFAULT_EPS", "error_band", "gradient_check", "numerical_gradient", "relative_error"]

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
    """The lecture's name for a relative error: perfect, acceptable, suspicious or bug."""
    return next(name for bound, name in ERROR_BANDS if e_rel < bound)


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
) -> dict[str, float]:
    """Relative error between backprop and finite differences for each parameter tensor.

    Parameters
    ----------
    model : reference.models.TinyCNN or reference.models.MLP
        A float64 model (``model.astype(np.float64)`` first if needed).
    x, labels : ndarray
        A (small) batch; the loss is the model's batch-mean softmax cross-entropy.
    eps : float, default 1e-5

    Returns
    -------
    dict of parameter name to relative error
    """
    if model.dtype != np.float64:
        raise ValueError(f"gradient checks need a float64 model, got {model.dtype}")
    _, analytic = model.loss_and_gradients(x, labels)

    def loss() -> float:
        return float(model.ops.softmax_cross_entropy(model.forward(x), labels)[0])

    return {
        name: relative_error(analytic[name], numerical_gradient(loss, param, eps))
        for name, param in model.params.items()
    }
