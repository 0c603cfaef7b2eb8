"""The layers of TinyCNN as plain NumPy functions: each forward pass beside its backward pass.

Every function here implements the op contract that student submissions implement too:

========================================  ==============================================
``conv2d_forward(x, w, b, stride, padding)``  ``x (N, C, H, W), w (F, C, KH, KW), b (F,)``
``conv2d_backward(dy, x, w, b, ...)``         ``-> (dx, dw, db)``
``relu_forward(x)`` / ``relu_backward``       gradient is zero where ``x <= 0``, else ``dy``
``maxpool2d_forward(x, size, stride)``        no padding, floor output size
``maxpool2d_backward(dy, x, size, stride)``   to each window's first maximum (last NaN)
``linear_forward(x, w, b)``                   ``y = x @ w.T + b``
``linear_backward(dy, x, w, b)``              ``-> (dx, dw, db)``
``softmax_cross_entropy(logits, labels)``     ``-> (batch-mean loss, dlogits)``
========================================  ==============================================

Arrays in and out are NumPy arrays; outputs keep the input dtype (float32 or float64) and inputs
are never modified. Layouts are PyTorch's (NCHW images, ``(C_out, C_in, kH, kW)`` kernels), so
weights copy across with no conversion. Inputs may have any memory layout (Fortran order,
transposed, negative strides, slices) and a batch of N = 0.

Special values (NaN, +-inf) come out where PyTorch on the CPU puts them: IEEE arithmetic on the
textbook formula (so padding zeros times an infinite weight give NaN, as PyTorch's float64
path), with two rules that are PyTorch's own choices, stated in the functions: ReLU's gradient
tests ``x <= 0`` (a NaN input passes ``dy``), and a max-pool window holding NaN sends its
gradient to its last NaN. Where arithmetic creates a NaN (``inf - inf``, ``0 * inf``) NumPy may
emit its "invalid value" RuntimeWarning; PyTorch is silent; the values agree.

Each function is a special case of its namesake in :mod:`tinycnn.reference.functional`, which
has PyTorch's full signatures (dilation, groups, tuple strides, pooling padding and ``ceil_mode``,
class weights, ...): ``conv2d_forward(x, w, b, s, p)`` is ``functional.conv2d(x, w, b, s, p)``,
``maxpool2d_forward(x, size, stride)`` is ``functional.max_pool2d(x, size, stride)``,
``softmax_cross_entropy`` is ``functional.cross_entropy`` with its gradient for an upstream 1, and
so on (``functional.CONTRACT_SPECIAL_CASES`` writes all nine out; the parity suite checks they
agree with this module on every catalogue case, special values included). This module keeps its
own implementation: at TinyCNN's sizes its index arrays, built once per shape and cached, make it
several times faster than the general versions, and the benchmark's per-op target (no slower
than PyTorch) needs that.

The vectorized functions have no Python loop over the batch or over pixels. At the end of the
module, textbook loop versions of convolution and pooling spell out the same arithmetic one
multiply-add at a time; they exist to be read, and the tests check they agree with the fast ones.
"""

from __future__ import annotations

import functools
import math

import numpy as np

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
_ZERO = {np.dtype(np.float32): np.float32(0), np.dtype(np.float64): np.float64(0)}


# --------------------------------------------------------------------------------------------
# Argument checks: fail early, with the numbers a student needs to fix the call.
# They run on every call, so they are plain attribute and type tests (about a microsecond),
# not array scans.
# --------------------------------------------------------------------------------------------


def _is_int(value) -> bool:
    """True for Python and NumPy integers, False for bools (``True`` is not a stride)."""
    return type(value) is int or isinstance(value, np.integer)


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
    if not (_is_int(W) and _is_int(K) and _is_int(P) and _is_int(S)):
        for name, value in (
            ("input size W", W),
            ("kernel size K", K),
            ("padding P", P),
            ("stride S", S),
        ):
            if not _is_int(value):
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


def _output_size_2d(H: int, W: int, KH: int, KW: int, padding, stride) -> tuple[int, int]:
    """``(H_out, W_out)`` by :func:`conv_output_size`, remembered per geometry.

    A training run asks for the same few geometries thousands of times. Non-integer arguments
    skip the cache (they may not be hashable) and get conv_output_size's error.
    """
    if not (_is_int(KH) and _is_int(KW) and _is_int(padding) and _is_int(stride)):
        conv_output_size(H, KH, padding, stride)  # raises the ValueError naming the bad value
        conv_output_size(W, KW, padding, stride)
    return _output_size_2d_cached(H, W, KH, KW, padding, stride)


@functools.lru_cache(maxsize=256)
def _output_size_2d_cached(H, W, KH, KW, padding, stride) -> tuple[int, int]:
    # Only integers reach here; errors are not cached, so a bad call always raises.
    return conv_output_size(H, KH, padding, stride), conv_output_size(W, KW, padding, stride)


def _conv_geometry(x, w, b, stride, padding) -> tuple[int, int]:
    """Validate conv arguments and return the output size ``(H_out, W_out)``."""
    _check_float_array("x", x, 4, "(N, C, H, W)")
    _check_float_array("w", w, 4, "(F, C, KH, KW)")
    _check_float_array("b", b, 1, "(F,)")
    if not x.dtype == w.dtype == b.dtype:
        _check_same_dtype(x=x, w=w, b=b)
    N, C, H, W = x.shape
    F, C_w, KH, KW = w.shape
    if C_w != C:
        raise ValueError(f"w has {C_w} input channels but x has {C}")
    if b.shape != (F,):
        raise ValueError(f"b must have shape ({F},) to match {F} filters, got {b.shape}")
    try:
        return _output_size_2d(H, W, KH, KW, padding, stride)
    except ValueError as error:
        raise ValueError(
            f"conv2d with x {x.shape}, w {w.shape}, stride {stride}, padding {padding}: {error}"
        ) from None


def _pool_geometry(x, size, stride) -> tuple[int, int]:
    """Validate pooling arguments and return the output size ``(H_out, W_out)``."""
    _check_float_array("x", x, 4, "(N, C, H, W)")
    return _pool_output_size(x.shape, size, stride)


def _pool_output_size(shape: tuple[int, ...], size, stride) -> tuple[int, int]:
    """``(H_out, W_out)`` of pooling an input of ``shape`` (N, C, H, W); ValueError if it does
    not fit."""
    N, C, H, W = shape
    try:
        return _output_size_2d(H, W, size, size, 0, stride)
    except ValueError as error:
        raise ValueError(
            f"maxpool2d with x {shape}, size {size}, stride {stride}: {error}"
        ) from None


def _check_upstream(dy: np.ndarray, expected_shape: tuple[int, ...], dtype) -> None:
    _check_float_array("dy", dy, len(expected_shape), "upstream gradient")
    _check_shape("dy", dy, expected_shape)
    if dy.dtype != dtype:
        raise ValueError(f"dy is {dy.dtype} but the forward input is {dtype}")


# --------------------------------------------------------------------------------------------
# Window indices, shared by convolution and pooling.
#
# At TinyCNN sizes an op costs a few microseconds of arithmetic and many more of per-call
# overhead, so the fast versions below do each step as ONE NumPy call on one long, contiguous
# array (a matrix product, a gather through a precomputed index, an element-wise reduction).
# The indices depend only on the shapes, so each is built once per shape and cached; cached
# arrays are read-only because every caller gets the same array.
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _window_index(
    C: int, H: int, W: int, KH: int, KW: int, stride: int, H_out: int, W_out: int
) -> np.ndarray:
    """Where every window reads, as positions in one flattened ``(C, H, W)`` image.

    Returns an int array of shape ``(C*KH*KW, H_out*W_out)``: entry ``[(c, u, v), (i, j)]`` is the
    position of ``x[c, i*stride + u, j*stride + v]`` in ``x.ravel()``. Rows run over the window
    in the order of ``w.reshape(F, C*KH*KW)`` (row-major), columns over the output pixels.
    """
    c = np.arange(C).reshape(C, 1, 1, 1, 1)
    u = np.arange(KH).reshape(1, KH, 1, 1, 1)
    v = np.arange(KW).reshape(1, 1, KW, 1, 1)
    i = np.arange(H_out).reshape(1, 1, 1, H_out, 1)
    j = np.arange(W_out).reshape(1, 1, 1, 1, W_out)
    index = c * (H * W) + (i * stride + u) * W + (j * stride + v)  # C, KH, KW, H_out, W_out
    index = index.reshape(C * KH * KW, H_out * W_out)
    index.flags.writeable = False
    return index


# --------------------------------------------------------------------------------------------
# Convolution (cross-correlation, as torch.nn.functional.conv2d)
#
# Forward: unfold every patch the kernel visits into a column ("im2col": one gather through a
# cached index); each image's output is then one small matrix product, filters times columns.
#
# Backward: a convolution is linear in x, so it is a matrix product. Flatten each (padded)
# image to C*H*W values and each output to F*H_out*W_out values; then
#
#     y_flat = x_flat @ M.T + b      M: (F*H_out*W_out, C*H*W), the "convolution matrix"
#
# where row (f, i, j) of M holds the kernel w[f] at the pixels output (i, j) reads, and zeros
# elsewhere. M is itself linear in w: M = w_flat @ T with a fixed 0/1 "placement" T that
# depends only on the shapes. All three gradients are then matrix products over the whole
# batch, one BLAS call each:
#
#     dx_flat = dy_flat @ M      dM = dy_flat.T @ x_flat      dw_flat = dM @ T.T
#
# M and T are dense, which suits small images like this project's (TinyCNN: M is 108 x 64,
# T is 9 x 2304): there a few dense products beat scattering every patch back. (The forward
# pass could be x_flat @ M.T too; at batch 32 the gather above is faster, clearly so in
# float64.) On large images T grows with the square of the image size and is almost all
# zeros, so above DENSE_BACKWARD_MAX_ENTRIES the backward pass works on the unfolded patches
# instead: dw from the columns of the forward pass, dx by adding every patch's gradient back
# to the pixels it came from (one bincount). So do arrays holding NaN or inf at any size: the
# dense products multiply them by the zeros of T, and 0 * inf is NaN.
# --------------------------------------------------------------------------------------------


#: Largest placement matrix T (entries) the dense backward pass builds: 4 Mi entries, 32 MB in
#: float64. TinyCNN's is 20,736.
DENSE_BACKWARD_MAX_ENTRIES = 4 * 2**20


def _pad(x: np.ndarray, padding: int) -> np.ndarray:
    """Zero-pad H and W of ``x (N, C, H, W)``; no copy when ``padding == 0``."""
    if padding == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))


@functools.lru_cache(maxsize=16)
def _placement(
    C: int, H: int, W: int, KH: int, KW: int, stride: int, H_out: int, W_out: int, dtype
) -> np.ndarray:
    """Where each kernel weight goes in the convolution matrix of one filter.

    Returns ``T (C*KH*KW, H_out*W_out*C*H*W)`` of zeros and ones, in ``dtype``:
    ``T[k, (p, q)] = 1`` when weight ``k`` (in the order of ``w.reshape(F, C*KH*KW)``) multiplies
    pixel ``q`` (of the flattened ``(C, H, W)`` image) for output pixel ``p``. One filter's
    ``(H_out*W_out, C*H*W)`` block of ``M`` is ``w[f].ravel() @ T``.
    """
    window = _window_index(C, H, W, KH, KW, stride, H_out, W_out)  # C*KH*KW, H_out*W_out
    n_weights, n_outputs = window.shape
    T = np.zeros((n_weights, n_outputs, C * H * W), dtype=dtype)
    T[np.arange(n_weights)[:, None], np.arange(n_outputs), window] = 1
    T = T.reshape(n_weights, n_outputs * C * H * W)
    T.flags.writeable = False
    return T


def _im2col(x_padded: np.ndarray, KH: int, KW: int, stride: int, H_out: int, W_out: int):
    """Every patch the kernel visits, as columns: ``(N, C, H, W)`` -> ``(N, C*KH*KW, H_out*W_out)``.

    Column ``p`` of image ``n`` is the patch under output pixel ``p``, flattened like
    ``w.reshape(F, C*KH*KW)``, so that image's output is ``w.reshape(F, -1) @ columns[n]``.
    """
    N, C, H, W = x_padded.shape
    index = _window_index(C, H, W, KH, KW, stride, H_out, W_out)  # C*KH*KW, H_out*W_out
    return x_padded.reshape(N, C * H * W).take(index, axis=1)


def conv2d_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, padding: int = 0
) -> np.ndarray:
    """2-D cross-correlation of a batch of images with a bank of filters.

    The special case ``functional.conv2d(x, w, b, stride, padding)`` (no dilation, one group).

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

    Notes
    -----
    Padding zeros take part in the products like any pixel, so an infinite or NaN weight makes
    the outputs whose window reaches into the padding NaN (``0 * inf``), as PyTorch's native CPU
    convolution does (its float64 path, and float32 with ``torch.backends.mkldnn`` off). PyTorch's
    default float32 path for some shapes (oneDNN) skips the padding and gives numbers there: an
    implementation detail the reference does not follow. The backward pass follows the same rule.
    """
    H_out, W_out = _conv_geometry(x, w, b, stride, padding)
    N = x.shape[0]
    F, C, KH, KW = w.shape
    columns = _im2col(_pad(x, padding), KH, KW, stride, H_out, W_out)  # N, C*KH*KW, H_out*W_out
    y = np.matmul(w.reshape(F, C * KH * KW), columns)  # N, F, H_out*W_out
    y += b.reshape(F, 1)
    return y.reshape(N, F, H_out, W_out)


def conv2d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    stride: int = 1,
    padding: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of a loss through :func:`conv2d_forward`.

    With ``y_flat = x_flat @ M.T + b`` and ``M = w_flat @ T`` (see the comment that opens the
    convolution section): ``dx_flat = dy_flat @ M`` spreads each upstream value back over the
    patch it came from, weighted by the kernel (the "full convolution with the flipped
    kernel"); ``dM = dy_flat.T @ x_flat``, and ``dw_flat = dM @ T.T`` adds up, for each weight, the
    entries of ``dM`` at its places: the correlation of the input with the upstream gradient.

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

    x_padded = _pad(x, padding)
    H_padded, W_padded = x_padded.shape[2:]
    db = dy.sum(axis=0).sum(axis=(1, 2))  # F; batch first: NumPy sums long rows fastest
    w_flat = w.reshape(F, C * KH * KW)  # F, C*KH*KW

    placement_entries = (C * KH * KW) * (H_out * W_out) * (C * H_padded * W_padded)
    # The dense products multiply every weight and pixel by the zeros of T as well, and 0 * inf
    # is NaN: one infinite or NaN value would spread over all of dx or dw. So they serve finite
    # arrays only; the test is cheap (db is already there and non-finite whenever dy is; w is
    # small) and a non-finite value (rare) takes the patch route, which multiplies only what
    # the definition multiplies, as PyTorch does.
    dense = (
        placement_entries <= DENSE_BACKWARD_MAX_ENTRIES
        and np.isfinite(db).all()
        and np.isfinite(w_flat).all()
        and np.isfinite(x_padded).all()
    )
    if dense:  # small images with finite values: dense matrix products
        x_flat = x_padded.reshape(N, C * H_padded * W_padded)  # N, C*(H+2P)*(W+2P)
        dy_flat = dy.reshape(N, F * H_out * W_out)  # N, F*H_out*W_out
        T = _placement(C, H_padded, W_padded, KH, KW, stride, H_out, W_out, x.dtype)
        dM = dy_flat.T @ x_flat  # F*H_out*W_out, C*(H+2P)*(W+2P)
        dw = dM.reshape(F, -1) @ T.T  # F, C*KH*KW
        M = (w_flat @ T).reshape(F * H_out * W_out, -1)  # F*H_out*W_out, C*(H+2P)*(W+2P)
        dx_padded = (dy_flat @ M).reshape(N, C, H_padded, W_padded)
    else:  # large images, or special values: work on the unfolded patches
        columns = _im2col(x_padded, KH, KW, stride, H_out, W_out)  # N, C*KH*KW, H_out*W_out
        dy_columns = dy.reshape(N, F, H_out * W_out)  # N, F, H_out*W_out
        dw = (dy_columns @ columns.transpose(0, 2, 1)).sum(axis=0)  # F, C*KH*KW
        dcolumns = w_flat.T @ dy_columns  # N, C*KH*KW, H_out*W_out: gradient of every patch
        # Add each patch element's gradient to the pixel it was read from; overlaps sum up.
        image_size = C * H_padded * W_padded
        window = _window_index(C, H_padded, W_padded, KH, KW, stride, H_out, W_out)
        pixel = (np.arange(N).reshape(N, 1, 1) * image_size + window).reshape(-1)
        dx_padded = np.bincount(pixel, weights=dcolumns.reshape(-1), minlength=N * image_size)
        dx_padded = dx_padded.astype(x.dtype, copy=False).reshape(N, C, H_padded, W_padded)
    dx = dx_padded[:, :, padding : padding + H, padding : padding + W]
    return np.ascontiguousarray(dx), dw.reshape(w.shape), db


# --------------------------------------------------------------------------------------------
# ReLU
# --------------------------------------------------------------------------------------------


def relu_forward(x: np.ndarray) -> np.ndarray:
    """``max(0, x)`` element-wise; any shape. ``functional.relu(x)`` (which keeps ``-0.0``)."""
    if not isinstance(x, np.ndarray) or x.dtype not in _FLOAT_DTYPES:
        raise ValueError(f"x must be a float32 or float64 NumPy array, got {_describe(x)}")
    # A zero of x's own dtype, made once: NumPy then has no Python int to convert (measured
    # about a tenth faster at TinyCNN's sizes than np.maximum(x, 0, dtype=x.dtype)).
    return np.maximum(x, _ZERO[x.dtype])


def relu_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Pass ``dy`` where ``x > 0``; zero where ``x <= 0`` (the subgradient at 0 is taken as 0).

    PyTorch's rule, for special values too: the gradient is zero exactly where ``x <= 0``
    (``-0.0`` and ``-inf`` included), so a NaN or infinite ``dy`` there gives 0, not NaN; and a
    NaN ``x`` (neither ``<= 0`` nor ``> 0``) passes ``dy`` through, as ``relu(NaN) = NaN``
    compares. Written as a selection, not as the textbook ``dy * (x > 0)``, which gives
    ``0 * inf = NaN``.
    """
    if not isinstance(x, np.ndarray) or x.dtype not in _FLOAT_DTYPES:
        raise ValueError(f"x must be a float32 or float64 NumPy array, got {_describe(x)}")
    _check_upstream(dy, x.shape, x.dtype)
    return np.where(x <= 0, x.dtype.type(0), dy)


# --------------------------------------------------------------------------------------------
# Max pooling
# --------------------------------------------------------------------------------------------


def _pool_windows(x: np.ndarray, size: int, stride: int, H_out: int, W_out: int):
    """Every pooling window of ``x (N, C, H, W)``, one window element per row.

    Returns ``windows`` and ``index``, both ``(size*size, N*C*H_out*W_out)``: row ``k`` holds
    the ``k``-th element (row-major) of every window, and ``index`` its position in
    ``x.ravel()``. Window elements go down the rows so that reducing a window is an element-wise
    operation on long rows (NumPy reduces a short trailing axis one window at a time, slowly).
    """
    N, C, H, W = x.shape
    index = _pool_index(N * C, H, W, size, stride, H_out, W_out)  # size², N*C*H_out*W_out
    return x.reshape(-1)[index], index


@functools.lru_cache(maxsize=16)
def _pool_index(
    planes: int, H: int, W: int, size: int, stride: int, H_out: int, W_out: int
) -> np.ndarray:
    """The ``index`` of :func:`_pool_windows` for ``planes = N*C`` image planes of ``H x W``."""
    one_plane = _window_index(1, H, W, size, size, stride, H_out, W_out)  # size², H_out*W_out
    plane_start = np.arange(planes).reshape(1, planes, 1) * (H * W)
    index = plane_start + one_plane.reshape(size * size, 1, H_out * W_out)  # size², planes, P
    index = index.reshape(size * size, planes * H_out * W_out)
    index.flags.writeable = False
    return index


@functools.lru_cache(maxsize=16)
def _countdown(n: int) -> np.ndarray:
    """The column ``n, n-1, ..., 1`` (shape ``(n, 1)``) in the smallest unsigned type that fits."""
    weights = np.arange(n, 0, -1).astype(np.min_scalar_type(n)).reshape(n, 1)
    weights.flags.writeable = False
    return weights


def maxpool2d_forward(x: np.ndarray, size: int = 2, stride: int = 2) -> np.ndarray:
    """Maximum of each ``size x size`` window; no padding, floor output size.

    The special case ``functional.max_pool2d(x, size, stride)``.

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
    H_out, W_out = _pool_geometry(x, size, stride)
    N, C, H, W = x.shape
    windows, _ = _pool_windows(x, size, stride, H_out, W_out)  # size², N*C*H_out*W_out
    return windows.max(axis=0).reshape(N, C, H_out, W_out)


@functools.lru_cache(maxsize=16)
def _pool_backward_plan(
    shape: tuple[int, ...], size: int, stride: int
) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray, np.ndarray]:
    """What :func:`maxpool2d_backward` needs for an input of ``shape``, built once per geometry.

    Validates the window against ``shape`` (the ValueError of :func:`_pool_geometry`) and
    returns ``dy_shape``, ``(N, C, H_out, W_out)``; ``rows (H_out*W_out, size*size)``: entry
    ``[p, k]`` is the position in one flattened plane of element ``k`` (row-major) of window
    ``p`` (windows row-major too); ``starts (N*C, H_out*W_out)``: where each window of each
    plane starts in ``x.ravel()``; ``offsets (size*size,)``: how far element ``k`` lies after
    its window's first element.
    """
    N, C, H, W = shape
    H_out, W_out = _pool_output_size(shape, size, stride)
    rows = _window_index(1, H, W, size, size, stride, H_out, W_out).T.copy()  # P, size²
    starts = np.arange(N * C).reshape(N * C, 1) * (H * W) + rows[:, 0]  # N*C, P
    offsets = rows[0] - rows[0, 0]  # size²
    for array in (rows, starts, offsets):
        array.flags.writeable = False
    return (N, C, H_out, W_out), rows, starts, offsets


def maxpool2d_backward(dy: np.ndarray, x: np.ndarray, size: int = 2, stride: int = 2) -> np.ndarray:
    """Route each window's upstream gradient to the position that held its maximum.

    On ties the first maximum in row-major order wins (as PyTorch does on the CPU). A window
    holding NaN has maximum NaN, and its gradient goes to a NaN: with several, the last one in
    row-major order (PyTorch's CPU kernel takes a value when it is larger than the running
    maximum or NaN; the loop version below does the same). When windows overlap
    (``stride < size``) a position can win several windows; its gradients add up.

    Method: one gather through a cached index (:func:`_pool_backward_plan`) lays every window
    out as a row of ``size*size`` values, with no transposed copy; ``np.argmax`` along the
    rows gives each window's first maximum (NumPy documents that ties return the first
    occurrence); the gradients are then written to the winners in one assignment (``np.add.at``
    when windows overlap, so shared winners add up).

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
    # The checks every call makes, in their cheapest form: when the types are right, the shapes
    # are checked by the plan, once per geometry; any other call gets the full checks and their
    # error message.
    if not (
        isinstance(x, np.ndarray)
        and x.ndim == 4
        and x.dtype in _FLOAT_DTYPES
        and _is_int(size)
        and _is_int(stride)
    ):
        _pool_geometry(x, size, stride)  # raises the ValueError that names the bad argument
    dy_shape, rows, starts, offsets = _pool_backward_plan(x.shape, size, stride)
    if not (isinstance(dy, np.ndarray) and dy.shape == dy_shape and dy.dtype == x.dtype):
        _check_upstream(dy, dy_shape, x.dtype)

    N, C, H, W = x.shape
    planes = x.reshape(N * C, H * W)  # N*C, H*W (a copy only if x is not C-contiguous)
    # mode="wrap" only says what an out-of-range index would do (ours are all in range); with it
    # NumPy gathers float32 about a fifth faster than with the default "raise" (measured).
    windows = planes.take(rows, axis=1, mode="wrap")  # N*C, P, size²: one window per row
    # np.argmax of float32 rows this short leaves the NumPy calls after it much slower in most
    # processes (NumPy 2.4; measured: 16-17 us instead of 13 for this function at TinyCNN's
    # batch 32); on a float64 copy it does not. The copy is exact: the same first maximum.
    first = windows.astype(np.float64, copy=False).argmax(axis=2)  # N*C, P (P = H_out*W_out)
    # np.argmax takes a NaN for the maximum, but not always the last one, which the rule asks
    # for. The largest value is NaN exactly when some value is: one cheap test, and only then
    # are the windows holding NaN redone. (Not a dot product of the values with themselves,
    # though it is faster: NumPy warns when a square overflows.)
    if windows.size and math.isnan(windows.max()):
        has_nan = np.isnan(windows).any(axis=2)  # N*C, P
        last_nan_from_end = np.isnan(windows[has_nan][:, ::-1]).argmax(axis=1)
        first[has_nan] = size * size - 1 - last_nan_from_end
    winner = offsets.take(first)  # N*C, P: offset of the winner in its window...
    winner += starts  # ... then its position in x.ravel() (in place: one array fewer)
    dx = np.zeros(x.shape, dtype=x.dtype)
    if stride >= size:  # windows do not overlap: each position wins at most one window
        dx.reshape(-1)[winner.reshape(-1)] = dy.reshape(-1)
    else:  # overlapping windows can share a winner: add.at sums their gradients, in order
        np.add.at(dx.reshape(-1), winner.reshape(-1), dy.reshape(-1))
    return dx


# --------------------------------------------------------------------------------------------
# Linear (dense) layer
# --------------------------------------------------------------------------------------------


def _linear_geometry(x, w, b) -> None:
    _check_float_array("x", x, 2, "(N, D)")
    _check_float_array("w", w, 2, "(M, D)")
    _check_float_array("b", b, 1, "(M,)")
    if not x.dtype == w.dtype == b.dtype:
        _check_same_dtype(x=x, w=w, b=b)
    M, D = w.shape
    if x.shape[1] != D:
        raise ValueError(f"x has {x.shape[1]} features but w expects {D} (w shape {w.shape})")
    if b.shape != (M,):
        raise ValueError(f"b must have shape ({M},) to match w {w.shape}, got {b.shape}")


def linear_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``y (N, M) = x @ w.T + b`` from ``x (N, D)``, ``w (M, D)`` (PyTorch layout), ``b (M,)``."""
    _linear_geometry(x, w, b)
    y = x @ w.T  # N, M
    y += b
    return y


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
        float32 or float64, any memory layout.
    labels : ndarray of int, shape (N,)
        Class indices in ``[0, K)``, of any integer dtype (int8 ... int64, uint8 ... uint64).

    Returns
    -------
    loss : 0-d ndarray of the logits dtype
        ``mean_n(-log softmax(logits)[n, labels[n]])``; NaN for an empty batch (N = 0), the mean
        of nothing, as PyTorch's ``F.cross_entropy``.
    dlogits : ndarray, shape (N, K)
        ``(softmax(logits) - onehot(labels)) / N``.

    Special values follow PyTorch: a row holding NaN or +inf gives a NaN loss and a NaN row of
    ``dlogits``; a -inf logit has probability 0 (gradient 0), and a -inf at the label makes the
    loss +inf while ``dlogits`` stays finite.

    Raises
    ------
    ValueError
        If the shapes disagree, the labels are not integers or lie outside ``[0, K)``.
    """
    _check_float_array("logits", logits, 2, "(N, K)")
    N, K = logits.shape
    if not isinstance(labels, np.ndarray) or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be an integer NumPy array, got {_describe(labels)}")
    _check_shape("labels", labels, (N,))
    if N == 0:
        return np.asarray(np.nan, dtype=logits.dtype), np.zeros((0, K), dtype=logits.dtype)
    low, high = labels.min(), labels.max()
    if low < 0 or high >= K:
        raise ValueError(
            f"labels must lie in [0, {K - 1}] for {K} classes, got values from {low} to {high}"
        )
    shifted = logits - logits.max(axis=1, keepdims=True)  # N, K; largest entry of each row is 0
    log_sum_exp = np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # N, 1
    log_probs = shifted - log_sum_exp  # N, K
    # Flat position of each sample's true class (labels as intp: uint64 + int64 is float64).
    picked = np.arange(N) * K + labels.astype(np.intp, copy=False)
    loss = -(log_probs.take(picked).sum() / N)  # the batch mean (np.mean computes exactly this)
    # C order whatever the layout of logits: reshape(-1) below must be a view, not a copy that
    # would take the subtraction away with it.
    dlogits = np.exp(log_probs, order="C")  # N, K: softmax
    dlogits.reshape(-1)[picked] -= 1  # minus one-hot
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
                                pixel = x_padded[n, c, i * stride + u, j * stride + v]
                                total += pixel * w[f, c, u, v]
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
                    y[n, c, i, j] = x[
                        n, c, i * stride : i * stride + size, j * stride : j * stride + size
                    ].max()
    return y


def maxpool2d_backward_loops(dy, x, size=2, stride=2):
    """Loop version of :func:`maxpool2d_backward`: scan each window row by row for its winner.

    A value wins when it is larger than the best so far or NaN: ties keep the first maximum, and
    a window holding NaN sends its gradient to its last NaN (PyTorch's CPU kernel).
    """
    H_out, W_out = _pool_geometry(x, size, stride)
    N, C, H, W = x.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    best_row, best_col, best = i * stride, j * stride, -np.inf
                    for u in range(size):
                        for v in range(size):
                            row, col = i * stride + u, j * stride + v
                            value = x[n, c, row, col]
                            if value > best or np.isnan(value):  # strict: the first maximum
                                best_row, best_col, best = row, col, value
                    dx[n, c, best_row, best_col] += dy[n, c, i, j]
    return dx
