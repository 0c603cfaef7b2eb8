"""Convolution and pooling layers in the channels-last style of the deeplearning.ai notebook
"Convolution model - Step by Step": fill in every TODO, then grade yourself.

    tinycnn check --api deeplearning-ai step_by_step.py     (or your .ipynb notebook)

grades conv_forward, conv_backward, pool_forward and pool_backward as they are written (the
checker's adapters hand them channels-last arrays and the ``hparameters`` dictionaries) on the
cases the project tests its own reference with. That API has no ReLU, dense layer or loss, so
the other five functions of the op contract are reported "not graded".

Rules of the game (the README's "Course APIs" lists the cases each API is graded on)
------------------------------------------------------------------------------------
- NumPy and the standard library only (torch, tensorflow and this project's packages are refused).
- The checker grades this API on float64 inputs and square kernels (``(f, f, n_C_prev, n_C) =
  W.shape``); keep the input dtype anyway: ``np.zeros(shape, A_prev.dtype)``.
- Never modify an input array in place.
- Max pooling: windows with ties are not graded under this API (the notebook's mask
  ``x == np.max(x)`` sends a tie's gradient to every maximum).
"""

import numpy as np  # noqa: F401 - you will need it


def zero_pad(X, pad):
    """Pad every image of X with zeros on the height and width axes.

    X -- array of shape (m, n_H, n_W, n_C)
    Returns X_pad of shape (m, n_H + 2 * pad, n_W + 2 * pad, n_C)
    """
    X_pad = None
    # TODO: np.pad with ((0, 0), (pad, pad), (pad, pad), (0, 0))
    return X_pad


def conv_forward(A_prev, W, b, hparameters):
    """Forward propagation of a convolution (cross-correlation: the kernel is not flipped).

    A_prev -- activations of shape (m, n_H_prev, n_W_prev, n_C_prev)
    W -- weights of shape (f_h, f_w, n_C_prev, n_C)
    b -- biases of shape (1, 1, 1, n_C)
    hparameters -- {"stride": ..., "pad": ...}

    Returns:
    Z -- output of shape (m, n_H, n_W, n_C), n_H = (n_H_prev + 2 * pad - f_h) // stride + 1
    cache -- (A_prev, W, b, hparameters), for conv_backward
    """
    Z = None
    # TODO
    cache = (A_prev, W, b, hparameters)
    return Z, cache


def conv_backward(dZ, cache):
    """Backward propagation of a convolution.

    dZ -- gradient with respect to Z, shape (m, n_H, n_W, n_C)
    cache -- the cache of conv_forward

    Returns:
    dA_prev -- shape (m, n_H_prev, n_W_prev, n_C_prev); crop the padding off at the end (with
               pad = 0, ``[pad:-pad]`` is empty: slice ``[pad:pad + n_H_prev]``)
    dW -- shape (f_h, f_w, n_C_prev, n_C)
    db -- shape (1, 1, 1, n_C)
    """
    dA_prev, dW, db = None, None, None
    # TODO
    return dA_prev, dW, db


def pool_forward(A_prev, hparameters, mode="max"):
    """Forward propagation of a pooling layer (no padding).

    A_prev -- shape (m, n_H_prev, n_W_prev, n_C)
    hparameters -- {"f": window size, "stride": ...}
    mode -- "max" (graded) or "average"

    Returns:
    A -- shape (m, n_H, n_W, n_C), n_H = 1 + (n_H_prev - f) // stride
    cache -- (A_prev, hparameters), for pool_backward
    """
    A = None
    # TODO
    cache = (A_prev, hparameters)
    return A, cache


def pool_backward(dA, cache, mode="max"):
    """Backward propagation of a pooling layer.

    dA -- gradient with respect to A, shape (m, n_H, n_W, n_C)
    cache -- the cache of pool_forward
    mode -- "max" (graded) or "average"

    Returns:
    dA_prev -- shape of A_prev; overlapping windows add up
    """
    dA_prev = None
    # TODO
    return dA_prev
