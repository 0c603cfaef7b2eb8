"""Your CNN layers in Stanford CS231n's layer API: fill in every TODO, then grade yourself.

    tinycnn check --api cs231n layers.py

grades each function below as it is written (the checker's adapters call them with the course's
arguments: ``conv_param`` and ``pool_param`` dictionaries, ``(out, cache)`` pairs, the affine
weight ``w`` of shape (D, M)), on the cases the project tests its own reference with, and prints
one row per function of the op contract (conv2d_forward <- conv_forward_naive, ...).

Rules of the game (the README's "Course APIs" lists the cases each API is graded on)
------------------------------------------------------------------------------------
- NumPy and the standard library only (torch, scipy and this project's packages are refused).
- The checker grades this API on float64 inputs (the course allocates ``np.zeros(shape)``);
  keep the input dtype anyway: ``np.zeros(shape, x.dtype)``.
- Never modify an input array in place (``np.pad`` and ``x.copy()`` make copies).
- Max pooling: windows with ties are not graded under this API (the course sets no tie rule).
- ReLU: the gradient at exactly 0 is 0.
- The backward functions receive the ``cache`` your forward function returned, so put in it
  everything they need.
"""

import numpy as np  # noqa: F401 - you will need it


def affine_forward(x, w, b):
    """Forward pass of an affine (fully connected) layer: ``out = x.reshape(N, D) @ w + b``.

    Inputs:
    - x: array of shape (N, d_1, ..., d_k); D = d_1 * ... * d_k
    - w: weights of shape (D, M)
    - b: biases of shape (M,)

    Returns a tuple of:
    - out: output of shape (N, M)
    - cache: (x, w, b)
    """
    out = None
    # TODO: reshape each input into a row of length D, then one matrix product.
    cache = (x, w, b)
    return out, cache


def affine_backward(dout, cache):
    """Backward pass of an affine layer.

    Inputs:
    - dout: upstream derivative of shape (N, M)
    - cache: the (x, w, b) of the forward pass

    Returns a tuple of:
    - dx: shape (N, d_1, ..., d_k), like x
    - dw: shape (D, M), like w
    - db: shape (M,)
    """
    dx, dw, db = None, None, None
    # TODO
    return dx, dw, db


def relu_forward(x):
    """``max(0, x)`` element-wise. Returns a tuple (out, cache) with out like x, cache = x."""
    out = None
    # TODO
    cache = x
    return out, cache


def relu_backward(dout, cache):
    """Pass ``dout`` where x > 0, 0 where x <= 0 (``cache`` is x). Returns dx, like x."""
    dx = None
    # TODO
    return dx


def softmax_loss(x, y):
    """Mean cross-entropy of the softmax of ``x``, and its gradient.

    Inputs:
    - x: scores of shape (N, C)
    - y: labels of shape (N,), 0 <= y[i] < C

    Returns a tuple of:
    - loss: the mean loss, a NumPy scalar (or 0-d array) of x's dtype
    - dx: gradient of the loss with respect to x, shape (N, C)

    Must stay finite for scores as large as 1e4: work with log-probabilities.
    """
    loss, dx = None, None
    # TODO
    return loss, dx


def conv_forward_naive(x, w, b, conv_param):
    """Forward pass of a convolutional layer (cross-correlation: the kernel is not flipped).

    Inputs:
    - x: input of shape (N, C, H, W)
    - w: filters of shape (F, C, HH, WW)
    - b: biases of shape (F,)
    - conv_param: {'stride': pixels between windows, 'pad': zeros added on each side}

    Returns a tuple of:
    - out: shape (N, F, H', W'), H' = 1 + (H + 2 * pad - HH) // stride, likewise W'
    - cache: (x, w, b, conv_param)
    """
    out = None
    # TODO: pad x (without modifying it), then slide each filter over every position.
    cache = (x, w, b, conv_param)
    return out, cache


def conv_backward_naive(dout, cache):
    """Backward pass of a convolutional layer.

    Inputs:
    - dout: upstream derivative of shape (N, F, H', W')
    - cache: the (x, w, b, conv_param) of the forward pass

    Returns a tuple of:
    - dx: like x, (N, C, H, W): crop the padding off the padded gradient at the end (careful
      with pad = 0: ``[pad:-pad]`` is then empty)
    - dw: like w, (F, C, HH, WW)
    - db: like b, (F,)
    """
    dx, dw, db = None, None, None
    # TODO
    return dx, dw, db


def max_pool_forward_naive(x, pool_param):
    """Forward pass of a max-pooling layer (no padding).

    Inputs:
    - x: input of shape (N, C, H, W)
    - pool_param: {'pool_height', 'pool_width', 'stride'}

    Returns a tuple of:
    - out: shape (N, C, H', W'), H' = 1 + (H - pool_height) // stride, likewise W'
    - cache: (x, pool_param)
    """
    out = None
    # TODO
    cache = (x, pool_param)
    return out, cache


def max_pool_backward_naive(dout, cache):
    """Backward pass of a max-pooling layer: each window's gradient goes to its first maximum.

    Inputs:
    - dout: upstream derivative of shape (N, C, H', W')
    - cache: the (x, pool_param) of the forward pass

    Returns:
    - dx: like x; overlapping windows add up
    """
    dx = None
    # TODO
    return dx
