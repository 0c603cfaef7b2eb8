"""The layers of TinyCNN as plain NumPy functions: each forward pass beside its backward pass.

Every function here implements the op contract that student submissions implement too:

========================================  ==============================================
``conv2d_forward(x, w, b, stride, padding)``  ``x (N, C, H, W), w (F, C, KH, KW), b (F,)``
``conv2d_backward(dy, x, w, b, ...)``         ``-> (dx, dw, db)``
``relu_forward(x)`` / ``relu_backward``       gradient is zero where ``x <= 0``
``maxpool2d_forward(x, size, stride)``        no padding, floor output size
``maxpool2d_backward(dy, x, size, stride)``   gradient to each window's first maximum
``linear_forward(x, w, b)``                   ``y = x @ w.T + b``
``linear_backward(dy, x, w, b)``              ``-> (dx, dw, db)``
``softmax_cross_entropy(logits, labels)``     ``-> (batch-mean loss, dlogits)``
========================================  ==============================================

Arrays in and out are NumPy arrays; outputs keep the input dtype (float32 or float64) and inputs
are never modified. Layouts are PyTorch's (NCHW images, ``(C_out, C_in, kH, kW)`` kernels), so
weights copy across with no conversion.

The vectorized functions have no Python loop over the batch or over pixels. At the end of the
module, textbook loop versions of convolution and pooling spell out the same arithmetic one
multiply-add at a time; they exist to be read, and the tests check they agree with the fast ones.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "CONTRACT_FUNCTIONS",
    "conv2d_backward",
    "conv2d_backward_loops",
    "conv2d_forward",
    "conv2d_forward_loops",
    "conv_output_size",
    "linear_backward",
    "linear_forward",
    "maxpool2d_backward",
    "maxpool2d_backward_loops",
    "maxpool2d_forward",
    "maxpool2d_forward_loops",
    "relu_backward",
    "relu_forward",
    "softmax_cross_entropy",
]

#: The nine functions every implementation of the contract provides.
CONTRACT_FUNCTIONS = (
    "conv2d_forward",
    "conv2d_backward",
    "relu_forward",
    "relu_backward",
    "maxpool2d_forward",
    "maxpool2d_backward",
    "linear_forward",
    "linear_backward",
    "softmax_cross_entropy",
)

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


# --------------------------------------------------------------------------------------------
# Argument checks: fail early, with the numbers a student needs to fix the call.
# --------------------------------------------------------------------------------------------


def conv_output_size(W: int, K: int, P: int = 0, S: int = 1) -> int:
    """Output width of a convolution or pooling window sliding over one axis.

    ``floor((W - K + 2P) / S) + 1``, the formula of the lecture.

    Parameters
    ----------
    W : int
        Input size along the axis (width or height).
    K : int
        Kernel (window) size along the axis.
    P : int, default 0
        Zero padding added on each side.
    S : int, default 1
        Stride.

    Raises
    ------
    ValueError
        If ``S < 1``, ``P < 0``, ``W < 1``, ``K < 1`` or the kernel is larger than the padded input.

    Examples
    --------
    >>> conv_output_size(8, 3), conv_output_size(8, 3, P=1), conv_output_size(6, 3, S=2)
    (6, 8, 2)
    """
    for name, value in (("input size W", W), ("kernel size K", K), ("padding P", P),
                        ("stride S", S)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if S < 1:
        raise ValueError(f"stride must be >= 1, got {S}")
    if P < 0:
        raise ValueError(f"padding must be >= 0, got {P}")
    if W < 1 or K < 1:
        raise ValueError(f"input size and kernel size must be >= 1, got W={W}, K={K}")
    if K > W + 2 * P:
        raise ValueError(f"kernel {K} does not fit input {W} with padding {P}")
    return (W - K + 2 * P) // S + 1


def _check_float_array(name: str, a, ndim: int, layout: str) -> None:
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name} must be a NumPy array, got {type(a).__name__}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {layout}, got shape {a.shape}")
    if a.dtype not in _FLOAT_DTYPES:
        raise ValueError(f"{name} must be float32 or float64, got {a.dtype}")


def _check_same_dtype(**arrays: np.ndarray) -> None:
    dtypes = {name: a.dtype for name, a in arrays.items()}
    if len(set(dtypes.values())) > 1:
        listing = ", ".join(f"{name} is {dtype}" for name, dtype in dtypes.items())
        raise ValueError(f"arrays must share one dtype: {listing}")


def _check_shape(name: str, a: np.ndarray, expected: tuple[int, ...]) -> None:
    if a.shape != expected:
        raise ValueError(f"{name} must have shape {expected}, got {a.shape}")


def _conv_geometry(x, w, b, stride, padding) -> tuple[int, int]:
    """Validate conv arguments and return the output size ``(H_out, W_out)``."""
    _check_float_array("x", x, 4, "(N, C, H, W)")
    _check_float_array("w", w, 4, "(F, C, KH, KW)")
    _check_float_array("b", b, 1, "(F,)")
    _check_same_dtype(x=x, w=w, b=b)
    N, C, H, W = x.shape
    F, C_w, KH, KW = w.shape
    if C_w != C:
        raise ValueError(f"w has {C_w} input channels but x has {C}")
    if b.shape != (F,):
        raise ValueError(f"b must have shape ({F},) to match {F} filters, got {b.shape}")
    try:
        H_out = conv_output_size(H, KH, padding, stride)
        W_out = conv_output_size(W, KW, padding, stride)
    except ValueError as error:
        raise ValueError(
            f"conv2d with x {x.shape}, w {w.shape}, stride {stride}, padding {padding}: {error}"
        ) from None
    return H_out, W_out


def _pool_geometry(x, size, stride) -> tuple[int, int]:
    """Validate pooling arguments and return the output size ``(H_out, W_out)``."""
    _check_float_array("x", x, 4, "(N, C, H, W)")
    N, C, H, W = x.shape
    try:
        H_out = conv_output_size(H, size, 0, stride)
        W_out = conv_output_size(W, size, 0, stride)
    except ValueError as error:
        raise ValueError(
            f"maxpool2d with x {x.shape}, size {size}, stride {stride}: {error}"
        ) from None
    return H_out, W_out


def _check_upstream(dy: np.ndarray, expected_shape: tuple[int, ...], dtype) -> None:
    _check_float_array("dy", dy, len(expected_shape), "upstream gradient")
    _check_shape("dy", dy, expected_shape)
    if dy.dtype != dtype:
        raise ValueError(f"dy is {dy.dtype} but the forward input is {dtype}")


# --------------------------------------------------------------------------------------------
# Convolution (cross-correlation, as torch.nn.functional.conv2d)
# --------------------------------------------------------------------------------------------


def _patches(x: np.ndarray, KH: int, KW: int, stride: int, padding: int) -> np.ndarray:
    """Every ``KH x KW`` patch the kernel visits, as a strided view (no copy).

    ``x (N, C, H, W)`` -> ``(N, C, H_out, W_out, KH, KW)``.
    """
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = sliding_window_view(x, (KH, KW), axis=(2, 3))  # N, C, H+2P-KH+1, W+2P-KW+1, KH, KW
    return windows[:, :, ::stride, ::stride]  # N, C, H_out, W_out, KH, KW


def conv2d_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, padding: int = 0
) -> np.ndarray:
    """2-D cross-correlation of a batch of images with a bank of filters.

    ``y[n, f, i, j] = b[f] + sum_{c,u,v} x_pad[n, c, i*stride + u, j*stride + v] * w[f, c, u, v]``

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        Input images.
    w : ndarray, shape (F, C, KH, KW)
        Filters (PyTorch's ``Conv2d.weight`` layout). Not flipped: this is cross-correlation.
    b : ndarray, shape (F,)
        One bias per filter.
    stride : int, default 1
    padding : int, default 0
        Zeros added on every side of H and W.

    Returns
    -------
    y : ndarray, shape (N, F, H_out, W_out)
        ``H_out = (H + 2*padding - KH) // stride + 1``, likewise ``W_out``.
    """
    _conv_geometry(x, w, b, stride, padding)
    F, C, KH, KW = w.shape
    patches = _patches(x, KH, KW, stride, padding)  # N, C, H_out, W_out, KH, KW
    y = np.tensordot(patches, w, axes=([1, 4, 5], [1, 2, 3]))  # N, H_out, W_out, F
    y += b
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2))  # N, F, H_out, W_out


def conv2d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    stride: int = 1,
    padding: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of a loss through :func:`conv2d_forward`.

    The kernel gradient correlates the input with the upstream gradient; the input gradient
    spreads each upstream value back over the patch it came from, weighted by the kernel
    (a "full convolution with the flipped kernel", written here as a scatter-add).

    Parameters
    ----------
    dy : ndarray, shape (N, F, H_out, W_out)
        Gradient of the loss with respect to the output ``y``.
    x, w, b, stride, padding
        The arguments of the forward pass.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    dw : ndarray, shape (F, C, KH, KW)
    db : ndarray, shape (F,)
    """
    H_out, W_out = _conv_geometry(x, w, b, stride, padding)
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    _check_upstream(dy, (N, F, H_out, W_out), x.dtype)

    db = dy.sum(axis=(0, 2, 3))  # F
    patches = _patches(x, KH, KW, stride, padding)  # N, C, H_out, W_out, KH, KW
    dw = np.tensordot(dy, patches, axes=([0, 2, 3], [0, 2, 3]))  # F, C, KH, KW

    # How much each patch element contributed: (N, C, KH, KW, H_out, W_out).
    dpatches = np.tensordot(w, dy, axes=([0], [1])).transpose(3, 0, 1, 2, 4, 5)
    dx_padded = np.zeros((N, C, H + 2 * padding, W + 2 * padding), dtype=x.dtype)
    # One strided add per kernel offset (KH * KW of them): patches that overlap sum up.
    for u in range(KH):
        for v in range(KW):
            dx_padded[:, :, u : u + stride * H_out : stride, v : v + stride * W_out : stride] += (
                dpatches[:, :, u, v]
            )
    dx = dx_padded[:, :, padding : padding + H, padding : padding + W]
    return np.ascontiguousarray(dx), dw, db


# --------------------------------------------------------------------------------------------
# ReLU
# --------------------------------------------------------------------------------------------


def relu_forward(x: np.ndarray) -> np.ndarray:
    """``max(0, x)`` element-wise; any shape."""
    if not isinstance(x, np.ndarray) or x.dtype not in _FLOAT_DTYPES:
        raise ValueError(f"x must be a float32 or float64 NumPy array, got {_describe(x)}")
    return np.maximum(x, 0, dtype=x.dtype)


def relu_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Pass ``dy`` where ``x > 0``; zero where ``x <= 0`` (the subgradient at 0 is taken as 0)."""
    if not isinstance(x, np.ndarray) or x.dtype not in _FLOAT_DTYPES:
        raise ValueError(f"x must be a float32 or float64 NumPy array, got {_describe(x)}")
    _check_upstream(dy, x.shape, x.dtype)
    return np.where(x > 0, dy, np.zeros((), dtype=x.dtype))


# --------------------------------------------------------------------------------------------
# Max pooling
# --------------------------------------------------------------------------------------------


def _pool_windows(x: np.ndarray, size: int, stride: int) -> np.ndarray:
    """``x (N, C, H, W)`` -> ``(N, C, H_out, W_out, size * size)``, window elements row-major."""
    windows = sliding_window_view(x, (size, size), axis=(2, 3))[:, :, ::stride, ::stride]
    return windows.reshape(*windows.shape[:4], size * size)


def maxpool2d_forward(x: np.ndarray, size: int = 2, stride: int = 2) -> np.ndarray:
    """Maximum of each ``size x size`` window; no padding, floor output size.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    size : int, default 2
    stride : int, default 2

    Returns
    -------
    y : ndarray, shape (N, C, H_out, W_out)
        ``H_out = (H - size) // stride + 1``; trailing rows/columns that do not fill a window
        are dropped.
    """
    _pool_geometry(x, size, stride)
    return _pool_windows(x, size, stride).max(axis=-1)


def maxpool2d_backward(
    dy: np.ndarray, x: np.ndarray, size: int = 2, stride: int = 2
) -> np.ndarray:
    """Route each window's upstream gradient to the position that held its maximum.

    On ties the first maximum in row-major order wins (as PyTorch does on the CPU). When windows
    overlap (``stride < size``) a position can win several windows; its gradients add up.

    Parameters
    ----------
    dy : ndarray, shape (N, C, H_out, W_out)
    x : ndarray, shape (N, C, H, W)
        The input of the forward pass.
    size, stride : int
        As in the forward pass.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    """
    H_out, W_out = _pool_geometry(x, size, stride)
    N, C, H, W = x.shape
    _check_upstream(dy, (N, C, H_out, W_out), x.dtype)

    winner = _pool_windows(x, size, stride).argmax(axis=-1)  # N, C, H_out, W_out; first max wins
    rows = np.arange(H_out)[:, None] * stride + winner // size  # N, C, H_out, W_out
    cols = np.arange(W_out)[None, :] * stride + winner % size  # N, C, H_out, W_out
    plane = np.arange(N * C).reshape(N, C, 1, 1) * (H * W)  # offset of each (n, c) image plane
    flat_index = (plane + rows * W + cols).ravel()
    # bincount adds the gradients of windows that share a winner (overlapping windows).
    dx = np.bincount(flat_index, weights=dy.ravel(), minlength=N * C * H * W)
    return dx.astype(x.dtype, copy=False).reshape(N, C, H, W)


# --------------------------------------------------------------------------------------------
# Linear (dense) layer
# --------------------------------------------------------------------------------------------


def _linear_geometry(x, w, b) -> None:
    _check_float_array("x", x, 2, "(N, D)")
    _check_float_array("w", w, 2, "(M, D)")
    _check_float_array("b", b, 1, "(M,)")
    _check_same_dtype(x=x, w=w, b=b)
    M, D = w.shape
    if x.shape[1] != D:
        raise ValueError(f"x has {x.shape[1]} features but w expects {D} (w shape {w.shape})")
    if b.shape != (M,):
        raise ValueError(f"b must have shape ({M},) to match w {w.shape}, got {b.shape}")


def linear_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``y = x @ w.T + b`` with ``x (N, D)``, ``w (M, D)`` (PyTorch layout), ``b (M,)`` -> ``(N, M)``."""
    _linear_geometry(x, w, b)
    return x @ w.T + b


def linear_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients through :func:`linear_forward`: ``dx (N, D)``, ``dw (M, D)``, ``db (M,)``."""
    _linear_geometry(x, w, b)
    _check_upstream(dy, (x.shape[0], w.shape[0]), x.dtype)
    return dy @ w, dy.T @ x, dy.sum(axis=0)


# --------------------------------------------------------------------------------------------
# Softmax cross-entropy
# --------------------------------------------------------------------------------------------


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batch-mean cross-entropy of softmax probabilities, and its gradient.

    Computed from log-softmax with the row maximum subtracted first, so logits of magnitude
    ``1e4`` give a finite loss and gradient instead of ``exp`` overflowing.

    Parameters
    ----------
    logits : ndarray, shape (N, K)
    labels : ndarray of int, shape (N,)
        Class indices in ``[0, K)``.

    Returns
    -------
    loss : 0-d ndarray of the logits dtype
        ``mean_n(-log softmax(logits)[n, labels[n]])``.
    dlogits : ndarray, shape (N, K)
        ``(softmax(logits) - onehot(labels)) / N``.
    """
    _check_float_array("logits", logits, 2, "(N, K)")
    N, K = logits.shape
    if not isinstance(labels, np.ndarray) or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be an integer NumPy array, got {_describe(labels)}")
    _check_shape("labels", labels, (N,))
    if N == 0:
        raise ValueError("softmax_cross_entropy needs at least one sample, got N=0")
    if labels.min() < 0 or labels.max() >= K:
        raise ValueError(
            f"labels must lie in [0, {K - 1}] for {K} classes, "
            f"got values from {labels.min()} to {labels.max()}"
        )
    shifted = logits - logits.max(axis=1, keepdims=True)  # N, K; largest entry of each row is 0
    log_sum_exp = np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # N, 1
    log_probs = shifted - log_sum_exp  # N, K
    rows = np.arange(N)
    loss = -log_probs[rows, labels].mean()
    dlogits = np.exp(log_probs)
    dlogits[rows, labels] -= 1
    dlogits /= N
    return np.asarray(loss, dtype=logits.dtype), dlogits


def _describe(a) -> str:
    if isinstance(a, np.ndarray):
        return f"array of dtype {a.dtype} and shape {a.shape}"
    return type(a).__name__


# --------------------------------------------------------------------------------------------
# Textbook loop versions: the same arithmetic, one multiply-add at a time. Slow; for reading.
# --------------------------------------------------------------------------------------------


def conv2d_forward_loops(x, w, b, stride=1, padding=0):
    """Loop version of :func:`conv2d_forward`: the lecture's formula written out literally."""
    H_out, W_out = _conv_geometry(x, w, b, stride, padding)
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    x_padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    y = np.zeros((N, F, H_out, W_out), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    total = b[f]
                    for c in range(C):
                        for u in range(KH):
                            for v in range(KW):
                                total += x_padded[n, c, i * stride + u, j * stride + v] * w[f, c, u, v]
                    y[n, f, i, j] = total
    return y


def conv2d_backward_loops(dy, x, w, b, stride=1, padding=0):
    """Loop version of :func:`conv2d_backward`: each output's gradient flows to its patch."""
    H_out, W_out = _conv_geometry(x, w, b, stride, padding)
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    x_padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    dx_padded = np.zeros_like(x_padded)
    dw = np.zeros_like(w)
    db = np.zeros_like(b)
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    g = dy[n, f, i, j]
                    db[f] += g
                    for c in range(C):
                        for u in range(KH):
                            for v in range(KW):
                                row, col = i * stride + u, j * stride + v
                                dw[f, c, u, v] += g * x_padded[n, c, row, col]
                                dx_padded[n, c, row, col] += g * w[f, c, u, v]
    return dx_padded[:, :, padding : padding + H, padding : padding + W].copy(), dw, db


def maxpool2d_forward_loops(x, size=2, stride=2):
    """Loop version of :func:`maxpool2d_forward`."""
    H_out, W_out = _pool_geometry(x, size, stride)
    N, C, H, W = x.shape
    y = np.zeros((N, C, H_out, W_out), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    y[n, c, i, j] = x[n, c, i * stride : i * stride + size,
                                      j * stride : j * stride + size].max()
    return y


def maxpool2d_backward_loops(dy, x, size=2, stride=2):
    """Loop version of :func:`maxpool2d_backward`: scan each window row by row for its winner."""
    H_out, W_out = _pool_geometry(x, size, stride)
    N, C, H, W = x.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    best_row, best_col = i * stride, j * stride
                    for u in range(size):
                        for v in range(size):
                            row, col = i * stride + u, j * stride + v
                            if x[n, c, row, col] > x[n, c, best_row, best_col]:  # strict: first max
                                best_row, best_col = row, col
                    dx[n, c, best_row, best_col] += dy[n, c, i, j]
    return dx
