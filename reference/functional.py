"""PyTorch's functional CNN ops in NumPy: full signatures, each forward pass beside its backward.

The contract of :mod:`tinycnn.reference.ops` is TinyCNN's: square kernels, one integer stride and
padding, pooling without padding. This module speaks ``torch.nn.functional`` instead: same names,
same argument names and order, same defaults, same output shapes and the same rules at ties and
special values, so a call copied from PyTorch code runs here on NumPy arrays.

Forward passes (signatures exactly as in ``torch.nn.functional``) and what their backward
passes return:

- ``conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1)``
  -> ``conv2d_backward``: ``(grad_input, grad_weight, grad_bias)``
- ``max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
  return_indices=False)`` -> ``max_pool2d_backward``: ``grad_input``
- ``avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
  count_include_pad=True, divisor_override=None)`` -> ``avg_pool2d_backward``: ``grad_input``
- ``linear(input, weight, bias=None)``
  -> ``linear_backward``: ``(grad_input, grad_weight, grad_bias)``
- ``relu(input, inplace=False)`` -> ``relu_backward``: ``grad_input``
- ``cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
  reduction="mean", label_smoothing=0.0)`` -> ``cross_entropy_backward``:
  ``(grad_input, grad_target)``

Every backward function is named after its forward one (``conv2d_backward``) and takes the
upstream gradient first, then exactly the forward call's arguments: nothing is cached between the
two calls. A gradient is ``None`` where PyTorch has none (no bias; class-index targets).

Arrays are float32 or float64 NumPy arrays and outputs keep that dtype (indices are int64).
Inputs are never modified (except by ``relu(..., inplace=True)``). Layouts are PyTorch's (NCHW,
``(C_out, C_in / groups, kH, kW)`` kernels). Images may be unbatched (``(C, H, W)``), as in
PyTorch: the result is then unbatched too.

How the vectorized versions work: every op that slides a window (convolution, both poolings)
first gathers all windows into one array ``(N, C, kH, kW, H_out, W_out)`` through index arrays
built from the output-size formula (:func:`window_positions`); padding is whatever lies outside
the input (zero for convolution and average pooling, ``-inf`` for max pooling). The op is then one
reduction or one matrix product over that array, and its backward pass adds every window
element's gradient back to the pixel it was read from (:func:`_scatter_windows`). At the end of
the module, textbook loop versions spell out dilation, groups, padding and ``ceil_mode`` one
multiply-add at a time; the tests check they agree with the fast ones.

Sources: the ``torch.nn.functional`` and ``torch.nn`` documentation (``Conv2d``, ``MaxPool2d``,
``AvgPool2d``, ``CrossEntropyLoss``) for shapes and formulas; PyTorch's CPU kernels for the rules
the documentation leaves open (which index wins a tie or a NaN, which positions an average
counts). ``parity_tests/test_functional_opinfo.py`` checks all of it on PyTorch's own OpInfo
sample inputs.

The nine functions of the TinyCNN contract are special cases of these (defaults for everything
the contract leaves out); :data:`CONTRACT_SPECIAL_CASES` writes them out, and
``parity_tests/test_contract_special_cases.py`` checks them against ``reference.ops``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "CONTRACT_SPECIAL_CASES",
    "avg_pool2d",
    "avg_pool2d_backward",
    "avg_pool2d_loops",
    "conv2d",
    "conv2d_backward",
    "conv2d_backward_loops",
    "conv2d_loops",
    "cross_entropy",
    "cross_entropy_backward",
    "linear",
    "linear_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool2d_loops",
    "pool_output_size",
    "relu",
    "relu_backward",
    "window_positions",
]

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_REDUCTIONS = ("none", "mean", "sum")


# --------------------------------------------------------------------------------------------
# Argument checks: one-line errors with the numbers needed to fix the call.
# --------------------------------------------------------------------------------------------


def _is_int(value) -> bool:
    return type(value) is int or isinstance(value, np.integer)


def _check_float_array(name: str, a) -> None:
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name} must be a NumPy array, got {type(a).__name__}")
    if a.dtype not in _FLOAT_DTYPES:
        raise ValueError(f"{name} must be float32 or float64, got {a.dtype}")


def _check_dtype(name: str, a: np.ndarray, dtype: np.dtype) -> None:
    _check_float_array(name, a)
    if a.dtype != dtype:
        raise ValueError(f"{name} is {a.dtype} but input is {dtype}: use one dtype")


def _check_grad_output(grad_output, shape: tuple[int, ...], dtype: np.dtype) -> None:
    _check_dtype("grad_output", grad_output, dtype)
    if grad_output.shape != shape:
        raise ValueError(
            f"grad_output must have the output's shape {shape}, got {grad_output.shape}"
        )


def _pair(name: str, value, minimum: int) -> tuple[int, int]:
    """``3 -> (3, 3)``, ``(3,) -> (3, 3)``, ``(3, 2) -> (3, 2)``, as PyTorch's ``_pair``."""
    if _is_int(value):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) in (1, 2) and all(map(_is_int, value)):
        pair = (int(value[0]), int(value[-1]))
    else:
        raise ValueError(f"{name} must be an int or a tuple of one or two ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return pair


def _batched(name: str, input) -> tuple[np.ndarray, bool]:
    """``(N, C, H, W)`` as is, ``(C, H, W)`` as a batch of one; and whether it was unbatched."""
    _check_float_array(name, input)
    if input.ndim not in (3, 4):
        raise ValueError(
            f"{name} must be 4-D (N, C, H, W) or 3-D unbatched (C, H, W), got shape {input.shape}"
        )
    if 0 in input.shape[-3:]:
        raise ValueError(f"{name} needs non-empty C, H and W, got shape {input.shape}")
    return (input[None], True) if input.ndim == 3 else (input, False)


# --------------------------------------------------------------------------------------------
# Windows: where each output pixel reads, along one axis, then on the image.
# --------------------------------------------------------------------------------------------


class _Axis(NamedTuple):
    """Window positions along one axis: ``positions`` and ``inside``, both ``(kernel, out)``."""

    positions: np.ndarray
    inside: np.ndarray


def window_positions(
    size: int, kernel: int, stride: int, pad_before: int, dilation: int, out: int
) -> tuple[np.ndarray, np.ndarray]:
    """Which input positions each window reads along one axis, and which lie inside the input.

    Output ``i`` reads positions ``i * stride - pad_before + u * dilation`` for ``u`` in
    ``range(kernel)``; positions below 0 or at ``size`` and above are padding.

    Parameters
    ----------
    size : int
        Input length along the axis (without padding).
    kernel, stride, pad_before, dilation : int
    out : int
        Number of windows (output length).

    Returns
    -------
    positions : ndarray of int, shape (kernel, out)
    inside : ndarray of bool, shape (kernel, out)

    Examples
    --------
    >>> positions, inside = window_positions(5, kernel=2, stride=2, pad_before=1, dilation=2, out=3)
    >>> positions.tolist(), inside.tolist()
    ([[-1, 1, 3], [1, 3, 5]], [[False, True, True], [True, True, False]])
    """
    positions = np.arange(kernel)[:, None] * dilation + (np.arange(out) * stride - pad_before)
    return positions, (positions >= 0) & (positions < size)


def _gather_windows(x: np.ndarray, rows: _Axis, cols: _Axis, fill: float) -> np.ndarray:
    """Every window of ``x (N, C, H, W)``: ``(N, C, kH, kW, H_out, W_out)``, ``fill`` outside."""
    N, C, H, W = x.shape
    r = np.clip(rows.positions, 0, H - 1)[:, None, :, None]  # kH, 1, H_out, 1
    c = np.clip(cols.positions, 0, W - 1)[None, :, None, :]  # 1, kW, 1, W_out
    windows = x[:, :, r, c]  # N, C, kH, kW, H_out, W_out
    inside = rows.inside[:, None, :, None] & cols.inside[None, :, None, :]  # kH, kW, H_out, W_out
    if not inside.all():
        windows = np.where(inside, windows, x.dtype.type(fill))
    return windows


def _scatter_windows(grad_windows: np.ndarray, rows: _Axis, cols: _Axis, H: int, W: int):
    """Adjoint of :func:`_gather_windows`: add each window element's gradient to its pixel.

    ``grad_windows (N, C, kH, kW, H_out, W_out) -> (N, C, H, W)``; elements that read padding are
    dropped, and a pixel read by several windows receives the sum (one ``bincount``, in float64).
    """
    N, C = grad_windows.shape[:2]
    inside = rows.inside[:, None, :, None] & cols.inside[None, :, None, :]
    pixel = rows.positions[:, None, :, None] * W + cols.positions[None, :, None, :]
    pixel = np.where(inside, pixel, H * W)  # padding goes to one extra bin per plane, dropped
    plane = np.arange(N * C).reshape(N, C, 1, 1, 1, 1) * (H * W + 1)
    summed = np.bincount(
        (plane + pixel).reshape(-1),
        weights=grad_windows.reshape(-1),
        minlength=N * C * (H * W + 1),
    )
    summed = summed.reshape(N, C, H * W + 1)[:, :, : H * W]
    return summed.astype(grad_windows.dtype).reshape(N, C, H, W)


# --------------------------------------------------------------------------------------------
# Convolution
# --------------------------------------------------------------------------------------------


class _ConvGeometry(NamedTuple):
    rows: _Axis
    cols: _Axis
    H_out: int
    W_out: int
    groups: int


def _conv_geometry(input, weight, bias, stride, padding, dilation, groups) -> _ConvGeometry:
    x, _ = _batched("input", input)
    _check_dtype("weight", weight, x.dtype)
    if weight.ndim != 4:
        raise ValueError(f"weight must be 4-D (C_out, C_in / groups, kH, kW), got {weight.shape}")
    N, C, H, W = x.shape
    C_out, C_group, kH, kW = weight.shape
    if not _is_int(groups) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    if C % groups or C_out % groups:
        raise ValueError(
            f"groups={groups} must divide both input channels ({C}) and output channels ({C_out})"
        )
    if C_group * groups != C:
        raise ValueError(
            f"weight {weight.shape} expects {C_group * groups} input channels "
            f"({C_group} per group x {groups} groups), input has {C}"
        )
    if bias is not None:
        _check_dtype("bias", bias, x.dtype)
        if bias.shape != (C_out,):
            raise ValueError(f"bias must have shape ({C_out},), got {bias.shape}")
    stride = _pair("stride", stride, 1)
    dilation = _pair("dilation", dilation, 1)
    span = (dilation[0] * (kH - 1) + 1, dilation[1] * (kW - 1) + 1)  # dilated kernel extent
    if isinstance(padding, str):
        if padding == "valid":
            before = after = (0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError(f"padding='same' needs stride 1 (as in PyTorch), got {stride}")
            # span - 1 zeros in all per axis; an odd total puts the extra zero after (bottom/right).
            before = ((span[0] - 1) // 2, (span[1] - 1) // 2)
            after = (span[0] - 1 - before[0], span[1] - 1 - before[1])
        else:
            raise ValueError(f"padding must be 'valid', 'same', an int or a pair, got {padding!r}")
    else:
        before = after = _pair("padding", padding, 0)
    padded = (H + before[0] + after[0], W + before[1] + after[1])
    if padded[0] < span[0] or padded[1] < span[1]:
        raise ValueError(
            f"conv2d: kernel {kH}x{kW} with dilation {dilation} spans {span[0]}x{span[1]}, "
            f"larger than the padded input {padded[0]}x{padded[1]}"
        )
    H_out = (padded[0] - span[0]) // stride[0] + 1
    W_out = (padded[1] - span[1]) // stride[1] + 1
    return _ConvGeometry(
        _Axis(*window_positions(H, kH, stride[0], before[0], dilation[0], H_out)),
        _Axis(*window_positions(W, kW, stride[1], before[1], dilation[1], W_out)),
        H_out,
        W_out,
        groups,
    )


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """2-D cross-correlation, as ``torch.nn.functional.conv2d``.

    ``out[n, f, i, j] = bias[f] + sum_{c, u, v} input[n, g*C_g + c, i*sH - pH + u*dH,
    j*sW - pW + v*dW] * weight[f, c, u, v]``, where ``g = f // (C_out / groups)`` is the group of
    filter ``f``, ``C_g = C_in / groups``, and positions outside the input read zero.

    Parameters
    ----------
    input : ndarray, shape (N, C_in, H, W) or unbatched (C_in, H, W)
    weight : ndarray, shape (C_out, C_in / groups, kH, kW)
    bias : ndarray, shape (C_out,), optional
    stride : int or (int, int), default 1
    padding : int, (int, int), "valid" or "same", default 0
        Zeros added on both sides of H (first) and W. ``"valid"`` is 0. ``"same"`` (stride 1 only)
        adds ``dilation * (k - 1)`` zeros per axis so the output keeps the input size, half
        before and half after; an odd total puts the extra zero after (bottom, right).
    dilation : int or (int, int), default 1
        Spacing between kernel taps: the kernel spans ``dilation * (k - 1) + 1`` pixels.
    groups : int, default 1
        Input and output channels are split into ``groups`` blocks; output block ``g`` sees only
        input block ``g``. ``groups == C_in`` is a depthwise convolution.

    Returns
    -------
    ndarray, shape (N, C_out, H_out, W_out) or unbatched (C_out, H_out, W_out)
        ``H_out = floor((H + 2*pH - dH*(kH - 1) - 1) / sH) + 1``, likewise ``W_out`` (the lecture's
        ``floor((W - K + 2P) / S) + 1`` with the dilated kernel size ``dH*(kH - 1) + 1`` as K).

    Raises
    ------
    ValueError
        Wrong dtype or rank, channels that do not match ``weight`` or ``groups``, ``"same"`` with a
        stride, or a dilated kernel larger than the padded input.

    Notes
    -----
    NaN and infinity propagate as in any sum of products (``inf * 0`` is NaN), as in PyTorch.
    """
    geometry = _conv_geometry(input, weight, bias, stride, padding, dilation, groups)
    x, unbatched = _batched("input", input)
    N, C, H, W = x.shape
    C_out, C_group, kH, kW = weight.shape
    G, K, P = groups, C_group * kH * kW, geometry.H_out * geometry.W_out
    columns = _gather_windows(x, geometry.rows, geometry.cols, 0.0)  # N, C, kH, kW, H_out, W_out
    columns = columns.reshape(N, G, K, P)  # each group's patches as columns
    out = weight.reshape(G, C_out // G, K) @ columns  # N, G, C_out/G, P: one product per group
    out = out.reshape(N, C_out, geometry.H_out, geometry.W_out)
    if bias is not None:
        out += bias.reshape(C_out, 1, 1)
    return out[0] if unbatched else out


def conv2d_backward(
    grad_output, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients through :func:`conv2d`: ``(grad_input, grad_weight, grad_bias)``.

    With the forward pass written as ``out = weight @ columns`` per group (``columns`` holding
    every patch): ``grad_weight = grad_output @ columns.T`` summed over the batch, ``grad_columns =
    weight.T @ grad_output``, and ``grad_input`` adds each patch element of ``grad_columns`` back
    to the pixel it was read from (padding's share is dropped). ``grad_bias`` sums
    ``grad_output`` over batch and pixels; it is ``None`` when ``bias`` is ``None``.

    Parameters
    ----------
    grad_output : ndarray, the shape of ``conv2d``'s output
    input, weight, bias, stride, padding, dilation, groups
        As in :func:`conv2d`.

    Returns
    -------
    grad_input : ndarray, shape of ``input``
    grad_weight : ndarray, shape of ``weight``
    grad_bias : ndarray, shape (C_out,), or None
    """
    geometry = _conv_geometry(input, weight, bias, stride, padding, dilation, groups)
    x, unbatched = _batched("input", input)
    N, C, H, W = x.shape
    C_out, C_group, kH, kW = weight.shape
    G, K, P = groups, C_group * kH * kW, geometry.H_out * geometry.W_out
    out_shape = (C_out, geometry.H_out, geometry.W_out)
    _check_grad_output(grad_output, out_shape if unbatched else (N, *out_shape), x.dtype)
    dy = grad_output.reshape(N, G, C_out // G, P)
    columns = _gather_windows(x, geometry.rows, geometry.cols, 0.0).reshape(N, G, K, P)
    grad_weight = (dy @ columns.transpose(0, 1, 3, 2)).sum(axis=0)  # G, C_out/G, K
    grad_columns = weight.reshape(G, C_out // G, K).transpose(0, 2, 1) @ dy  # N, G, K, P
    grad_columns = grad_columns.reshape(N, C, kH, kW, geometry.H_out, geometry.W_out)
    grad_input = _scatter_windows(grad_columns, geometry.rows, geometry.cols, H, W)
    grad_bias = None if bias is None else dy.sum(axis=(0, 3)).reshape(C_out)
    return (
        grad_input[0] if unbatched else grad_input,
        grad_weight.reshape(weight.shape),
        grad_bias,
    )


# --------------------------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------------------------


def pool_output_size(
    size: int, kernel: int, stride: int, padding: int, dilation: int = 1, ceil_mode: bool = False
) -> int:
    """Output length of a pooling window sliding along one axis, as PyTorch computes it.

    ``floor((size + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1``; with ``ceil_mode``
    the division rounds up instead, so a last, partial window is kept, unless that window would
    start in the right padding (it must start inside the input or the left padding).

    Examples
    --------
    >>> pool_output_size(6, 3, 2, 0), pool_output_size(6, 3, 2, 0, ceil_mode=True)
    (2, 3)
    >>> pool_output_size(5, 2, 2, 1, ceil_mode=True)  # a 4th window would start in the padding
    3
    """
    span = dilation * (kernel - 1) + 1
    numerator = size + 2 * padding - span + (stride - 1 if ceil_mode else 0)
    out = numerator // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


class _PoolGeometry(NamedTuple):
    rows: _Axis
    cols: _Axis
    H_out: int
    W_out: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


def _pool_geometry(op, input, kernel_size, stride, padding, dilation, ceil_mode) -> _PoolGeometry:
    x, _ = _batched("input", input)
    N, C, H, W = x.shape
    kernel = _pair("kernel_size", kernel_size, 1)
    stride = (
        kernel if stride is None or stride == () or stride == [] else _pair("stride", stride, 1)
    )
    padding = _pair("padding", padding, 0)
    dilation = _pair("dilation", dilation, 1)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(
            f"{op}: padding {padding} must be at most half the kernel {kernel} (PyTorch's rule)"
        )
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise ValueError(f"ceil_mode must be True or False, got {ceil_mode!r}")
    H_out = pool_output_size(H, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    W_out = pool_output_size(W, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    if H_out < 1 or W_out < 1:
        raise ValueError(
            f"{op}: input {H}x{W} with kernel {kernel}, stride {stride}, padding {padding}, "
            f"dilation {dilation} gives an empty output {H_out}x{W_out}"
        )
    rows = _Axis(*window_positions(H, kernel[0], stride[0], padding[0], dilation[0], H_out))
    cols = _Axis(*window_positions(W, kernel[1], stride[1], padding[1], dilation[1], W_out))
    for axis, name in ((rows, "row"), (cols, "column")):
        # With dilation a window can read nothing but padding although PyTorch's padding rule
        # holds. PyTorch 2.13 then returns indices outside the plane (and its backward writes
        # out of bounds), so there is no answer to match: refuse the geometry instead.
        empty = np.flatnonzero(~axis.inside.any(axis=0))
        if empty.size:
            raise ValueError(
                f"{op}: with kernel {kernel}, stride {stride}, padding {padding}, dilation "
                f"{dilation} and ceil_mode={ceil_mode}, output {name} {empty[0]} reads only "
                f"padding (input {H}x{W})"
            )
    return _PoolGeometry(
        rows,
        cols,
        H_out,
        W_out,
        kernel,
        stride,
        padding,
    )


def _max_pool_with_indices(x: np.ndarray, geometry: _PoolGeometry):
    """``(out, indices)``, both ``(N, C, H_out, W_out)``; indices are flat in each ``H x W``."""
    N, C, H, W = x.shape
    rows, cols = geometry.rows, geometry.cols
    kH, kW = geometry.kernel
    shape = (N, C, kH * kW, geometry.H_out, geometry.W_out)
    windows = _gather_windows(x, rows, cols, -np.inf).reshape(shape)
    out = windows.max(axis=2)  # N, C, H_out, W_out; NaN if the window holds one
    inside = (rows.inside[:, None, :, None] & cols.inside[None, :, None, :]).reshape(shape[2:])
    # The winner: the first element (row-major) equal to the maximum, padding excluded, so a
    # window of -inf picks its first real pixel. A window holding NaN picks its LAST NaN:
    # PyTorch's CPU kernel replaces the running maximum when `value > max or isnan(value)`.
    first_max = np.argmax(inside & (windows == out[:, :, None]), axis=2)
    is_nan = np.isnan(windows)
    last_nan = kH * kW - 1 - np.argmax(is_nan[:, :, ::-1], axis=2)
    winner = np.where(is_nan.any(axis=2), last_nan, first_max)  # N, C, H_out, W_out
    pixel = rows.positions[:, None, :, None] * W + cols.positions[None, :, None, :]
    pixel = pixel.reshape(1, 1, *shape[2:])
    indices = np.take_along_axis(pixel, winner[:, :, None], axis=2)[:, :, 0]
    return out, indices.astype(np.int64)


def max_pool2d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode=False,
    return_indices=False,
):
    """Maximum over each window, as ``torch.nn.functional.max_pool2d``.

    Parameters
    ----------
    input : ndarray, shape (N, C, H, W) or unbatched (C, H, W)
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size`` (also when ``None`` or ``()``).
    padding : int or (int, int), default 0
        Implicit ``-inf`` on both sides; at most half the kernel size (PyTorch's rule).
    dilation : int or (int, int), default 1
        Spacing between the window's elements.
    ceil_mode : bool, default False
        Round the output size up: keep a last, partial window (see :func:`pool_output_size`).
    return_indices : bool, default False
        Also return where each maximum was, as PyTorch does.

    Returns
    -------
    out : ndarray, shape (N, C, H_out, W_out) or unbatched (C, H_out, W_out)
        ``H_out = pool_output_size(H, kH, sH, pH, dH, ceil_mode)``, likewise ``W_out``.
    indices : ndarray of int64, same shape, only if ``return_indices``
        Position of each maximum in its flattened ``H x W`` input plane.

    Notes
    -----
    Ties: the first maximum in row-major window order wins. A window holding NaN gives NaN, and
    the index of its last NaN. A window of ``-inf`` gives ``-inf`` and the index of its first
    pixel inside the input (padding never wins). These are the rules of PyTorch's CPU kernel.

    Raises
    ------
    ValueError
        For a bad argument, padding above half the kernel, an empty output, or a geometry in
        which some window reads only padding (possible with dilation; PyTorch 2.13 answers it
        with indices outside the input, so there is nothing to match).
    """
    geometry = _pool_geometry(
        "max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode
    )
    x, unbatched = _batched("input", input)
    if not return_indices:  # the maximum alone: no need to find where it is
        kernel_elements = geometry.kernel[0] * geometry.kernel[1]
        windows = _gather_windows(x, geometry.rows, geometry.cols, -np.inf)
        shape = (*x.shape[:2], kernel_elements, geometry.H_out, geometry.W_out)
        out = windows.reshape(shape).max(axis=2)  # NaN if the window holds one
        return out[0] if unbatched else out
    out, indices = _max_pool_with_indices(x, geometry)
    if unbatched:
        out, indices = out[0], indices[0]
    return out, indices


def max_pool2d_backward(
    grad_output,
    input,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode=False,
    return_indices=False,
) -> np.ndarray:
    """Gradient through :func:`max_pool2d`: each window's gradient goes to its winner.

    The winner is the element ``indices`` names (see the rules in :func:`max_pool2d`); when
    windows overlap, a pixel that wins several receives the sum. ``return_indices`` is accepted so
    the forward call's arguments can be passed unchanged, and ignored.

    Returns
    -------
    grad_input : ndarray, shape of ``input``
    """
    geometry = _pool_geometry(
        "max_pool2d_backward", input, kernel_size, stride, padding, dilation, ceil_mode
    )
    x, unbatched = _batched("input", input)
    N, C, H, W = x.shape
    out_shape = (C, geometry.H_out, geometry.W_out)
    _check_grad_output(grad_output, out_shape if unbatched else (N, *out_shape), x.dtype)
    _, indices = _max_pool_with_indices(x, geometry)
    plane = np.arange(N * C).reshape(N, C, 1, 1) * (H * W)
    grad_input = np.bincount(
        (plane + indices).reshape(-1), weights=grad_output.reshape(-1), minlength=N * C * H * W
    )
    grad_input = grad_input.astype(x.dtype).reshape(x.shape)
    return grad_input[0] if unbatched else grad_input


def _avg_pool_divisor(geometry: _PoolGeometry, H, W, count_include_pad, divisor_override):
    """What each window's sum is divided by, shape ``(H_out, W_out)``.

    PyTorch's CPU rule: ``divisor_override`` if given; else, with ``count_include_pad``, the
    window's size clipped to the padded input (``ceil_mode`` windows that stick out beyond the
    padding do not count the part outside); else the number of real pixels in the window.
    """
    if divisor_override is not None:
        return np.full((geometry.H_out, geometry.W_out), divisor_override)
    extents = []
    for axis, size, kernel, stride, pad, out in (
        (
            geometry.rows,
            H,
            geometry.kernel[0],
            geometry.stride[0],
            geometry.padding[0],
            geometry.H_out,
        ),
        (
            geometry.cols,
            W,
            geometry.kernel[1],
            geometry.stride[1],
            geometry.padding[1],
            geometry.W_out,
        ),
    ):
        if count_include_pad:
            start = np.arange(out) * stride - pad
            extents.append(np.minimum(start + kernel, size + pad) - start)
        else:
            extents.append(axis.inside.sum(axis=0))
    return extents[0][:, None] * extents[1][None, :]


def _check_divisor_override(divisor_override) -> None:
    if divisor_override is not None and (not _is_int(divisor_override) or divisor_override == 0):
        raise ValueError(
            f"divisor_override must be a nonzero int or None, got {divisor_override!r}"
        )


def avg_pool2d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
) -> np.ndarray:
    """Mean over each window, as ``torch.nn.functional.avg_pool2d``.

    Parameters
    ----------
    input : ndarray, shape (N, C, H, W) or unbatched (C, H, W)
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size`` (also when ``None`` or ``()``).
    padding : int or (int, int), default 0
        Implicit zeros on both sides; at most half the kernel size.
    ceil_mode : bool, default False
        Round the output size up (see :func:`pool_output_size`).
    count_include_pad : bool, default True
        Divide by the window size including the zero padding (but not the part of a
        ``ceil_mode`` window beyond the padding); False divides by the real pixels only.
    divisor_override : int, optional
        Divide every window's sum by this instead (any nonzero int, negative ones too).

    Returns
    -------
    ndarray, shape (N, C, H_out, W_out) or unbatched (C, H_out, W_out)
        ``H_out = pool_output_size(H, kH, sH, pH, 1, ceil_mode)``, likewise ``W_out``.

    Notes
    -----
    NaN or infinity in a window makes that window's mean NaN or infinite, as in PyTorch.
    """
    geometry = _pool_geometry("avg_pool2d", input, kernel_size, stride, padding, 1, ceil_mode)
    _check_divisor_override(divisor_override)
    x, unbatched = _batched("input", input)
    N, C, H, W = x.shape
    windows = _gather_windows(x, geometry.rows, geometry.cols, 0.0)  # N, C, kH, kW, H_out, W_out
    divisor = _avg_pool_divisor(geometry, H, W, count_include_pad, divisor_override)
    out = windows.sum(axis=(2, 3)) / divisor.astype(x.dtype)
    return out[0] if unbatched else out


def avg_pool2d_backward(
    grad_output,
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
) -> np.ndarray:
    """Gradient through :func:`avg_pool2d`: each window's gradient, over its divisor, to each of
    its real pixels; overlapping windows add up.

    Returns
    -------
    grad_input : ndarray, shape of ``input``
    """
    geometry = _pool_geometry(
        "avg_pool2d_backward", input, kernel_size, stride, padding, 1, ceil_mode
    )
    _check_divisor_override(divisor_override)
    x, unbatched = _batched("input", input)
    N, C, H, W = x.shape
    out_shape = (C, geometry.H_out, geometry.W_out)
    _check_grad_output(grad_output, out_shape if unbatched else (N, *out_shape), x.dtype)
    divisor = _avg_pool_divisor(geometry, H, W, count_include_pad, divisor_override)
    share = grad_output.reshape(N, C, 1, 1, geometry.H_out, geometry.W_out) / divisor.astype(
        x.dtype
    )
    kH, kW = geometry.kernel
    grad_windows = np.broadcast_to(share, (N, C, kH, kW, geometry.H_out, geometry.W_out))
    grad_input = _scatter_windows(grad_windows, geometry.rows, geometry.cols, H, W)
    return grad_input[0] if unbatched else grad_input


# --------------------------------------------------------------------------------------------
# Linear
# --------------------------------------------------------------------------------------------


def _linear_check(input, weight, bias) -> None:
    _check_float_array("input", input)
    _check_dtype("weight", weight, input.dtype)
    if weight.ndim != 2:
        raise ValueError(f"weight must be 2-D (out_features, in_features), got {weight.shape}")
    if input.ndim < 1 or input.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"input {input.shape} must end in in_features={weight.shape[1]} (weight {weight.shape})"
        )
    if bias is not None:
        _check_dtype("bias", bias, input.dtype)
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"bias must have shape ({weight.shape[0]},), got {bias.shape}")


def linear(input, weight, bias=None) -> np.ndarray:
    """``input @ weight.T + bias``, as ``torch.nn.functional.linear``.

    Parameters
    ----------
    input : ndarray, shape (*, in_features)
        Any number of leading dimensions, none included (a single vector).
    weight : ndarray, shape (out_features, in_features)
    bias : ndarray, shape (out_features,), optional

    Returns
    -------
    ndarray, shape (*, out_features)

    Notes
    -----
    NaN and infinity propagate as in any matrix product (``inf * 0`` and ``inf - inf`` are NaN),
    as in PyTorch.
    """
    _linear_check(input, weight, bias)
    out = input @ weight.T
    if bias is not None:
        out = out + bias
    return np.asarray(out)


def linear_backward(grad_output, input, weight, bias=None):
    """Gradients through :func:`linear`: ``(grad_input, grad_weight, grad_bias)``.

    With the leading dimensions flattened into rows (``X (R, in)``, ``G (R, out)``):
    ``grad_input = G @ weight``, ``grad_weight = G.T @ X``, ``grad_bias = G.sum(0)`` (``None``
    without bias). No rows (an empty batch) gives zero weight and bias gradients.
    """
    _linear_check(input, weight, bias)
    out_features, in_features = weight.shape
    _check_grad_output(grad_output, (*input.shape[:-1], out_features), input.dtype)
    rows_in = input.reshape(-1, in_features)  # R, in
    rows_grad = grad_output.reshape(-1, out_features)  # R, out
    grad_input = (rows_grad @ weight).reshape(input.shape)
    grad_weight = rows_grad.T @ rows_in
    grad_bias = None if bias is None else rows_grad.sum(axis=0)
    return grad_input, grad_weight, grad_bias


# --------------------------------------------------------------------------------------------
# ReLU
# --------------------------------------------------------------------------------------------


def relu(input, inplace=False) -> np.ndarray:
    """``max(0, x)`` element-wise, as ``torch.nn.functional.relu``; any shape.

    Special values as in PyTorch (``clamp_min(x, 0)``): NaN stays NaN and ``-0.0`` stays ``-0.0``
    (it is not below 0). With ``inplace=True`` the input array is overwritten and returned.
    """
    _check_float_array("input", input)
    negative = input < 0
    if inplace:
        input[negative] = 0
        return input
    return np.where(negative, input.dtype.type(0), input)


def relu_backward(grad_output, input) -> np.ndarray:
    """Gradient through :func:`relu`: ``grad_output`` where ``input > 0``, else 0.

    PyTorch's rule, ``0 if relu(x) <= 0 else grad``: the gradient at 0 (and -0.0) is 0, at NaN
    it passes through, and where the gradient is 0 it is exactly 0 even if ``grad_output`` is
    NaN or infinite there.
    """
    _check_float_array("input", input)
    _check_grad_output(grad_output, input.shape, input.dtype)
    return np.where(input <= 0, input.dtype.type(0), grad_output)


# --------------------------------------------------------------------------------------------
# Cross-entropy
# --------------------------------------------------------------------------------------------


def _legacy_reduction(size_average, reduce, reduction: str) -> str:
    """PyTorch's rule for the deprecated ``size_average`` / ``reduce`` flags (both default True)."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


class _CrossEntropyTerms(NamedTuple):
    """Cross-entropy with the class axis moved last and the rest flattened: ``M`` rows, ``C``."""

    log_probs: np.ndarray  # M, C
    losses: np.ndarray  # M: each row's loss, before reduction
    per_row: np.ndarray  # M: what d(reduced loss)/d(row loss) is per unit of grad_output
    batch_shape: tuple[int, ...]  # the shape of the 'none' output
    reduction: str
    class_targets: bool
    smoothed_target: np.ndarray | None  # M, C: probability targets after label smoothing
    target_weight: np.ndarray | None  # M: weight[target] (0 where ignored), class targets only
    weight: np.ndarray  # C


def _cross_entropy_terms(
    input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing
) -> _CrossEntropyTerms:
    _check_float_array("input", input)
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must lie in [0, 1], got {label_smoothing}")
    if input.ndim == 0:
        raise ValueError("input must have a class dimension: (C,), (N, C) or (N, C, d1, ...)")
    # Classes last, everything else in rows: (C,) -> (1, C); (N, C, d1, ...) -> (N*d1*..., C).
    batched = input.ndim >= 2
    C = input.shape[1] if batched else input.shape[0]
    rows = np.moveaxis(input, 1, -1).reshape(-1, C) if batched else input.reshape(1, C)
    batch_shape = (input.shape[0], *input.shape[2:]) if batched else ()
    if weight is None:
        weight = np.ones(C, dtype=input.dtype)
    else:
        _check_dtype("weight", weight, input.dtype)
        if weight.shape != (C,):
            raise ValueError(
                f"weight must have one entry per class, shape ({C},), got {weight.shape}"
            )
    if not isinstance(target, np.ndarray):
        raise ValueError(f"target must be a NumPy array, got {type(target).__name__}")

    shifted = rows - rows.max(axis=1, keepdims=True)  # largest logit of each row becomes 0
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # M, C
    M = rows.shape[0]

    if target.dtype.kind in "iu":  # class indices
        if target.shape != batch_shape:
            raise ValueError(
                f"class-index target must have shape {batch_shape}, got {target.shape}"
            )
        labels = target.reshape(-1)
        kept = labels != ignore_index
        if np.any(kept & ((labels < 0) | (labels >= C))):
            bad = labels[kept & ((labels < 0) | (labels >= C))][0]
            raise ValueError(f"target {bad} is out of bounds for {C} classes")
        safe = np.where(kept, labels, 0)
        target_weight = np.where(kept, weight[safe], 0).astype(input.dtype)  # M
        picked = log_probs[np.arange(M), safe]
        losses = -np.where(kept, picked, 0) * target_weight  # the weighted NLL
        if label_smoothing > 0:
            # Smoothing mixes in a uniform target: (1 - eps) * NLL + eps/C * sum_c -w_c log p_c.
            uniform = -np.where(kept, (log_probs * weight).sum(axis=1), 0)
            losses = (1 - label_smoothing) * losses + label_smoothing / C * uniform
        denominator = target_weight.sum()  # mean divides by the kept targets' total weight
        smoothed = None
    else:  # class probabilities, the shape of input
        _check_dtype("target", target, input.dtype)
        if target.shape != input.shape:
            raise ValueError(
                f"probability target must have the input's shape {input.shape}, got {target.shape}"
            )
        smoothed = np.moveaxis(target, 1, -1).reshape(-1, C) if batched else target.reshape(1, C)
        if label_smoothing > 0:
            smoothed = smoothed * (1 - label_smoothing) + label_smoothing / C
        losses = -(log_probs * smoothed * weight).sum(axis=1)
        target_weight = None
        denominator = np.asarray(M, dtype=input.dtype)  # mean divides by the number of rows
    if reduction == "mean":
        with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 (all ignored, empty) is NaN
            per_row = np.full(M, 1 / denominator, dtype=input.dtype)
    else:
        per_row = np.ones(M, dtype=input.dtype)
    return _CrossEntropyTerms(
        log_probs,
        losses,
        per_row,
        batch_shape,
        reduction,
        smoothed is None,
        smoothed,
        target_weight,
        weight,
    )


def cross_entropy(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index=-100,
    reduce=None,
    reduction="mean",
    label_smoothing=0.0,
) -> np.ndarray:
    """Cross-entropy of softmax probabilities, as ``torch.nn.functional.cross_entropy``.

    With ``log p = log_softmax(input)`` over the class dimension (computed with each row's
    maximum subtracted first, so large logits do not overflow) and class weights ``w``:

    - class-index target ``t``: ``loss = -w[t] * log p[t]``; with ``label_smoothing = e``,
      ``(1 - e) * loss + e / C * sum_c (-w[c] * log p[c])``. Targets equal to ``ignore_index``
      contribute 0 and are left out of the mean.
    - class-probability target ``q``: ``loss = -sum_c w[c] * q'[c] * log p[c]`` with
      ``q' = (1 - e) * q + e / C``.

    Parameters
    ----------
    input : ndarray, shape (C,), (N, C) or (N, C, d1, ..., dK)
        Logits (unnormalized scores); the class dimension is the second (the only one if 1-D).
    target : ndarray
        Class indices (any integer dtype) of shape ``()``, ``(N,)`` or ``(N, d1, ..., dK)``; or
        class probabilities of the input's shape and dtype.
    weight : ndarray, shape (C,), optional
        Weight of each class (constant: no gradient is computed for it, as in PyTorch).
    size_average, reduce : bool, optional
        Deprecated, as in PyTorch: when given they decide ``reduction``.
    ignore_index : int, default -100
        Class-index targets with this value count neither in the loss nor in the mean.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"mean"`` divides the sum by the kept targets' total weight ``sum w[t]`` (class indices)
        or by the number of rows ``N * d1 * ... * dK`` (probabilities); if that is 0 (everything
        ignored, or no rows) the loss is NaN, as in PyTorch.
    label_smoothing : float in [0, 1], default 0.0

    Returns
    -------
    ndarray
        0-d for ``"mean"`` and ``"sum"``; ``(N, d1, ..., dK)`` (``()`` for 1-D input) for
        ``"none"``. Dtype of ``input``.

    Raises
    ------
    ValueError
        Shapes that do not match, a class index out of range (other than ``ignore_index``), an
        unknown reduction, or label smoothing outside [0, 1].

    Notes
    -----
    Logits of magnitude 1e4 give finite results (the row maximum is subtracted first). A row
    holding NaN or ``+inf`` gives a NaN loss for that row (``inf - inf``), as in PyTorch; ``-inf``
    logits are classes of probability 0 (a loss of ``inf`` only if such a class is the target).
    """
    terms = _cross_entropy_terms(
        input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing
    )
    if terms.reduction == "none":
        return terms.losses.reshape(terms.batch_shape)
    total = terms.losses.sum()
    if terms.reduction == "sum":
        return np.asarray(total, dtype=input.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(total * terms.per_row[0] if terms.per_row.size else np.nan, input.dtype)


def cross_entropy_backward(
    grad_output,
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index=-100,
    reduce=None,
    reduction="mean",
    label_smoothing=0.0,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Gradients through :func:`cross_entropy`: ``(grad_input, grad_target)``.

    For one row with upstream factor ``a`` (``grad_output``, over the mean's divisor for
    ``"mean"``) and ``p = softmax(input)``:

    - class index ``t``: ``a * ((1 - e) * w[t] * (p - onehot(t)) + e / C * (sum(w) * p - w))``,
      exactly zero for ignored rows (also when all are ignored and the mean loss is NaN, as in
      PyTorch); ``grad_target`` is ``None`` (indices have no gradient).
    - probabilities ``q' = (1 - e) * q + e / C``: ``a * (sum_c w[c] q'[c] * p - w * q')``, and
      ``grad_target = -a * (1 - e) * w * log p``.

    Parameters
    ----------
    grad_output : ndarray
        0-d for ``"mean"``/``"sum"``, the ``"none"`` output's shape otherwise.
    input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing
        As in :func:`cross_entropy`.

    Returns
    -------
    grad_input : ndarray, shape of ``input``
    grad_target : ndarray of the target's shape, or None for class indices
    """
    terms = _cross_entropy_terms(
        input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing
    )
    expected = terms.batch_shape if terms.reduction == "none" else ()
    _check_grad_output(grad_output, expected, input.dtype)
    scale = (grad_output.reshape(-1) * terms.per_row)[:, None]  # M, 1: a for each row
    probs = np.exp(terms.log_probs)  # M, C
    w, e, C = terms.weight, label_smoothing, probs.shape[1]
    if terms.class_targets:
        kept = target.reshape(-1) != ignore_index  # M
        labels = np.where(kept, target.reshape(-1), 0)
        grad_rows = probs * terms.target_weight[:, None]  # target_weight is 0 where ignored
        grad_rows[np.arange(len(labels)), labels] -= terms.target_weight
        grad_rows *= 1 - e
        if e > 0:
            grad_rows += e / C * (w.sum() * probs - w)
        # Ignored rows get exactly 0, even when the mean divides by 0 (all ignored: NaN loss).
        scale = np.where(kept[:, None], scale, 0)
        grad_target = None
    else:
        weighted = terms.smoothed_target * w  # M, C
        grad_rows = weighted.sum(axis=1, keepdims=True) * probs - weighted
        grad_target = -(1 - e) * w * terms.log_probs * scale
        grad_target = _rows_to_input_layout(grad_target, input.shape)
    with np.errstate(invalid="ignore"):  # 0 * inf when a mean divides by 0: NaN, as PyTorch
        grad_input = _rows_to_input_layout(grad_rows * scale, input.shape)
    return grad_input, grad_target


def _rows_to_input_layout(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of the flattening in :func:`_cross_entropy_terms`: ``(M, C)`` -> ``shape``."""
    if len(shape) == 1:
        return rows.reshape(shape)
    moved = (shape[0], *shape[2:], shape[1])  # N, d1, ..., C
    return np.ascontiguousarray(np.moveaxis(rows.reshape(moved), -1, 1))


# --------------------------------------------------------------------------------------------
# The TinyCNN contract as special cases.
#
# The nine functions of the contract (reference.ops, and every student submission) are these
# functions with the extra arguments left at their defaults: one int stride and padding, no
# dilation, one group, batched images, max pooling without padding, mean cross-entropy without
# weights. Written out here, they are checked against reference.ops and against PyTorch on the
# whole case catalogue (parity_tests/test_contract_special_cases.py). reference.ops keeps its own
# implementations: at TinyCNN's sizes its cached index arrays make it several times faster than
# these general versions, which the benchmark's per-op target needs.
# --------------------------------------------------------------------------------------------


def contract_conv2d_forward(x, w, b, stride=1, padding=0):
    """``ops.conv2d_forward``: :func:`conv2d` with int stride and padding, no dilation, 1 group."""
    return conv2d(x, w, b, stride, padding)


def contract_conv2d_backward(dy, x, w, b, stride=1, padding=0):
    """``ops.conv2d_backward``: :func:`conv2d_backward` of the same special case."""
    return conv2d_backward(dy, x, w, b, stride, padding)


def contract_relu_forward(x):
    """``ops.relu_forward``: :func:`relu`."""
    return relu(x)


def contract_relu_backward(dy, x):
    """``ops.relu_backward``: :func:`relu_backward`."""
    return relu_backward(dy, x)


def contract_maxpool2d_forward(x, size=2, stride=2):
    """``ops.maxpool2d_forward``: :func:`max_pool2d` with a square window, no padding."""
    return max_pool2d(x, size, stride)


def contract_maxpool2d_backward(dy, x, size=2, stride=2):
    """``ops.maxpool2d_backward``: :func:`max_pool2d_backward` of the same special case."""
    return max_pool2d_backward(dy, x, size, stride)


def contract_linear_forward(x, w, b):
    """``ops.linear_forward``: :func:`linear` on a batch of vectors ``(N, D)``."""
    return linear(x, w, b)


def contract_linear_backward(dy, x, w, b):
    """``ops.linear_backward``: :func:`linear_backward`."""
    return linear_backward(dy, x, w, b)


def contract_softmax_cross_entropy(logits, labels):
    """``ops.softmax_cross_entropy``: mean :func:`cross_entropy` and its gradient for an upstream
    gradient of 1, no class weights, nothing ignored, no smoothing."""
    loss = cross_entropy(logits, labels)
    dlogits, _ = cross_entropy_backward(np.ones((), dtype=logits.dtype), logits, labels)
    return loss, dlogits


#: Contract function name -> its special case above.
CONTRACT_SPECIAL_CASES = {
    name.removeprefix("contract_"): function
    for name, function in list(globals().items())
    if name.startswith("contract_")
}


# --------------------------------------------------------------------------------------------
# Textbook loop versions: the same arithmetic one multiply-add at a time. Slow; for reading.
# They share only the argument checks (the geometry) with the fast versions above.
# --------------------------------------------------------------------------------------------


def conv2d_loops(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Loop version of :func:`conv2d`: dilation and groups written out.

    Output pixel ``(i, j)`` of filter ``f`` reads input row ``i*sH - pH + u*dH`` for kernel row
    ``u`` (dilation spreads the taps ``dH`` apart), and only the input channels of its group.
    """
    geometry = _conv_geometry(input, weight, bias, stride, padding, dilation, groups)
    x, unbatched = _batched("input", input)
    N, C, H, W = x.shape
    C_out, C_group, kH, kW = weight.shape
    F_group = C_out // groups  # filters per group
    out = np.zeros((N, C_out, geometry.H_out, geometry.W_out), dtype=x.dtype)
    for n in range(N):
        for f in range(C_out):
            g = f // F_group  # filter f belongs to group g and reads channels g*C_group, ...
            for i in range(geometry.H_out):
                for j in range(geometry.W_out):
                    total = x.dtype.type(0) if bias is None else bias[f]
                    for c in range(C_group):
                        for u in range(kH):
                            for v in range(kW):
                                row = geometry.rows.positions[u, i]  # i*sH - pH + u*dH
                                col = geometry.cols.positions[v, j]  # j*sW - pW + v*dW
                                if 0 <= row < H and 0 <= col < W:  # outside: zero padding
                                    total += x[n, g * C_group + c, row, col] * weight[f, c, u, v]
                    out[n, f, i, j] = total
    return out[0] if unbatched else out


def conv2d_backward_loops(
    grad_output, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1
):
    """Loop version of :func:`conv2d_backward`: each output's gradient flows to its patch."""
    geometry = _conv_geometry(input, weight, bias, stride, padding, dilation, groups)
    x, unbatched = _batched("input", input)
    dy = grad_output[None] if unbatched else grad_output
    N, C, H, W = x.shape
    C_out, C_group, kH, kW = weight.shape
    F_group = C_out // groups
    grad_input = np.zeros_like(x)
    grad_weight = np.zeros_like(weight)
    grad_bias = None if bias is None else np.zeros_like(bias)
    for n in range(N):
        for f in range(C_out):
            g = f // F_group
            for i in range(geometry.H_out):
                for j in range(geometry.W_out):
                    grad = dy[n, f, i, j]
                    if grad_bias is not None:
                        grad_bias[f] += grad
                    for c in range(C_group):
                        for u in range(kH):
                            for v in range(kW):
                                row = geometry.rows.positions[u, i]
                                col = geometry.cols.positions[v, j]
                                if 0 <= row < H and 0 <= col < W:
                                    channel = g * C_group + c
                                    grad_weight[f, c, u, v] += grad * x[n, channel, row, col]
                                    grad_input[n, channel, row, col] += grad * weight[f, c, u, v]
    return (grad_input[0] if unbatched else grad_input), grad_weight, grad_bias


def max_pool2d_loops(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    """Loop version of :func:`max_pool2d`: PyTorch's scan of each window, element by element.

    The running maximum starts at ``-inf`` on the window's first real pixel and is replaced by a
    larger value or by a NaN: so the first maximum wins a tie and the last NaN wins over all.
    """
    geometry = _pool_geometry(
        "max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode
    )
    x, unbatched = _batched("input", input)
    N, C, H, W = x.shape
    rows, cols = geometry.rows, geometry.cols
    out = np.zeros((N, C, geometry.H_out, geometry.W_out), dtype=x.dtype)
    indices = np.zeros(out.shape, dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for i in range(geometry.H_out):
                for j in range(geometry.W_out):
                    best, best_index = -np.inf, None
                    for row in rows.positions[:, i]:
                        for col in cols.positions[:, j]:
                            if not (0 <= row < H and 0 <= col < W):
                                continue  # padding: -inf never wins
                            value = x[n, c, row, col]
                            if best_index is None or value > best or np.isnan(value):
                                best, best_index = value, row * W + col
                    out[n, c, i, j], indices[n, c, i, j] = best, best_index
    if unbatched:
        out, indices = out[0], indices[0]
    return out, indices


def avg_pool2d_loops(
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    """Loop version of :func:`avg_pool2d`: what each window sums and what it divides by."""
    geometry = _pool_geometry("avg_pool2d", input, kernel_size, stride, padding, 1, ceil_mode)
    _check_divisor_override(divisor_override)
    x, unbatched = _batched("input", input)
    N, C, H, W = x.shape
    (kH, kW), (sH, sW), (pH, pW) = geometry.kernel, geometry.stride, geometry.padding
    out = np.zeros((N, C, geometry.H_out, geometry.W_out), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(geometry.H_out):
                for j in range(geometry.W_out):
                    top, left = i * sH - pH, j * sW - pW
                    # The window clipped to the padded input, then to the input itself.
                    bottom, right = min(top + kH, H + pH), min(left + kW, W + pW)
                    with_padding = (bottom - top) * (right - left)
                    top, left, bottom, right = (
                        max(top, 0),
                        max(left, 0),
                        min(bottom, H),
                        min(right, W),
                    )
                    total = x[n, c, top:bottom, left:right].sum()
                    if divisor_override is not None:
                        divisor = divisor_override
                    elif count_include_pad:
                        divisor = with_padding
                    else:
                        divisor = (bottom - top) * (right - left)
                    out[n, c, i, j] = total / divisor
    return out[0] if unbatched else out
