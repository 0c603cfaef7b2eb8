"""Your TinyCNN layers, from scratch in NumPy: fill in every TODO, then grade yourself.

    tinycnn check my_ops.py

runs each function below on the same cases the project tests its own reference with (forward and
backward, float64 and float32, ties, exact zeros, large logits, stride and padding, odd sizes), in
a separate process, and prints one row per function: pass or fail, the worst relative error and,
for a failure, the first failing case in words with a hint. Once all nine pass it trains TinyCNN
with your functions and shows the accuracy next to the reference run.

Rules of the game
-----------------
- Import only the standard library and NumPy: ``numpy``, ``math``, ``functools``, ``itertools``
  are fine; ``torch``, ``scipy``, anything else installed and this project's own packages
  (``tinycnn``) are refused.
- Arrays in, arrays out: every output keeps the input dtype (float32 stays float32).
- Never modify an input array in place: work on copies (``np.pad``, ``x.copy()``, ``np.where``).
- Layouts are PyTorch's: images ``(N, C, H, W)``, kernels ``(F, C, KH, KW)``, dense weights
  ``(M, D)``.
- Inputs may arrive in any memory layout (Fortran order, transposed or reversed views): index
  them, do not assume C-contiguous memory.
- Impossible arguments (stride 0, negative padding, a kernel larger than the padded input,
  mismatched shapes) are outside the contract: no case uses them, and you may raise any
  exception for them or none. (The reference raises ValueError.)
- Loops are fine to start with; a correct loop version is a good first step before vectorizing.
"""

import numpy as np  # noqa: F401 - you will need it


def conv2d_forward(x, w, b, stride=1, padding=0):
    """2-D cross-correlation of a batch of images with a bank of filters.

    ``y[n, f, i, j] = b[f] + sum_{c,u,v} x_pad[n, c, i*stride + u, j*stride + v] * w[f, c, u, v]``
    where ``x_pad`` is ``x`` with the zero padding. The kernel is *not* flipped (this is what
    torch.nn.functional.conv2d computes).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    w : ndarray, shape (F, C, KH, KW)
    b : ndarray, shape (F,)
    stride : int, default 1
    padding : int, default 0
        Zeros added on all four sides of every image.

    Returns
    -------
    y : ndarray, shape (N, F, H_out, W_out)
        ``H_out = (H + 2*padding - KH) // stride + 1``, likewise ``W_out``.
    """
    # TODO: pad x, then slide the kernel over every output position.
    raise NotImplementedError("TODO: conv2d_forward")


def conv2d_backward(dy, x, w, b, stride=1, padding=0):
    """Gradients of the loss through `conv2d_forward`.

    Parameters
    ----------
    dy : ndarray, shape (N, F, H_out, W_out)
        Gradient of the loss with respect to ``y``.
    x, w, b, stride, padding
        The arguments of the forward pass.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
        Each ``dy[n, f, i, j]`` flows back to the patch it came from, weighted by ``w[f]``;
        overlapping patches add up; the padding is cropped off at the end.
    dw : ndarray, shape (F, C, KH, KW)
        Each ``dy[n, f, i, j]`` times the patch it came from, summed.
    db : ndarray, shape (F,)
        ``dy`` summed over everything but the filter axis.
    """
    # TODO: accumulate dx (padded), dw and db over every output position.
    raise NotImplementedError("TODO: conv2d_backward")


def relu_forward(x):
    """``max(0, x)`` element-wise; ``x`` of any shape. Returns a new array."""
    # TODO
    raise NotImplementedError("TODO: relu_forward")


def relu_backward(dy, x):
    """Pass ``dy`` where ``x > 0`` and 0 where ``x <= 0`` (the gradient at exactly 0 is 0).

    Parameters
    ----------
    dy : ndarray, same shape as x
    x : ndarray
        The input of the forward pass.

    Returns
    -------
    dx : ndarray, same shape as x
    """
    # TODO
    raise NotImplementedError("TODO: relu_backward")


def maxpool2d_forward(x, size=2, stride=2):
    """Maximum of every ``size x size`` window, windows ``stride`` apart; no padding.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    size, stride : int

    Returns
    -------
    y : ndarray, shape (N, C, H_out, W_out)
        ``H_out = (H - size) // stride + 1`` (rows no window reaches are dropped).
    """
    # TODO
    raise NotImplementedError("TODO: maxpool2d_forward")


def maxpool2d_backward(dy, x, size=2, stride=2):
    """Send each window's gradient to the position of its maximum.

    On a tie, the *first* maximum in row-major order (scanning the window row by row) gets the
    gradient, as in PyTorch. When windows overlap (``stride < size``), a position that wins several
    windows receives the sum of their gradients.

    Parameters
    ----------
    dy : ndarray, shape (N, C, H_out, W_out)
    x : ndarray, shape (N, C, H, W)
        The input of the forward pass.
    size, stride : int

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    """
    # TODO
    raise NotImplementedError("TODO: maxpool2d_backward")


def linear_forward(x, w, b):
    """Dense layer ``y = x @ w.T + b``.

    Parameters
    ----------
    x : ndarray, shape (N, D)
    w : ndarray, shape (M, D)
    b : ndarray, shape (M,)

    Returns
    -------
    y : ndarray, shape (N, M)
    """
    # TODO
    raise NotImplementedError("TODO: linear_forward")


def linear_backward(dy, x, w, b):
    """Gradients through `linear_forward`.

    Parameters
    ----------
    dy : ndarray, shape (N, M)
    x, w, b
        The arguments of the forward pass.

    Returns
    -------
    dx : ndarray, shape (N, D)
    dw : ndarray, shape (M, D)
    db : ndarray, shape (M,)
    """
    # TODO
    raise NotImplementedError("TODO: linear_backward")


def softmax_cross_entropy(logits, labels):
    """Batch-mean cross-entropy of the softmax of ``logits``, and its gradient.

    Must stay finite for logits as large as 1e4: subtract each row's maximum before ``exp``.

    Parameters
    ----------
    logits : ndarray, shape (N, K)
    labels : ndarray of int, shape (N,)
        The class of each sample, in ``[0, K)``.

    Returns
    -------
    loss : 0-d ndarray (or NumPy scalar) of the logits dtype
        ``mean over n of -log(softmax(logits[n])[labels[n]])``.
    dlogits : ndarray, shape (N, K)
        ``(softmax(logits) - onehot(labels)) / N``.
    """
    # TODO
    raise NotImplementedError("TODO: softmax_cross_entropy")
