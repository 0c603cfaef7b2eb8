"""Sections 1-3: counting parameters and the lecture's worked examples (no training).

Every count here is read off a built layer (``torch.nn`` on the meta device, or the NumPy model),
and every worked example is computed by :mod:`tinycnn.reference.ops` and recomputed by
``torch.nn.functional``; nothing is derived from a hand formula.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from tinycnn.reference import ops

__all__ = [
    "EXAMPLE_INPUTS",
    "KEY_IDEAS_IMAGE_SIZE",
    "LECTURE_IMAGE_SHAPES",
    "OUTPUT_SIZE_CASES",
    "connectivity_table",
    "format_matrix",
    "key_ideas_table",
    "layer_summary_table",
    "output_size_table",
    "worked_examples_table",
]

# ---------------------------------------------------------------------------------------------
# Section 1: the curse of full connectivity
# ---------------------------------------------------------------------------------------------

#: The image shapes (H, W, C) of the lecture's table: MNIST, a small RGB image, ImageNet.
LECTURE_IMAGE_SHAPES = ((28, 28, 1), (64, 64, 3), (224, 224, 3))
KEY_IDEAS_IMAGE_SIZE = 28  # "a 3x3 filter sees 9 pixels instead of all 784"


def count_parameters(module) -> int:
    """Number of trainable scalars of a ``torch.nn.Module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _meta_layer(kind: str, *args) -> object:
    """A ``torch.nn`` layer on the meta device: shapes only, no memory, no initialisation cost."""
    import torch
    from torch import nn

    with torch.device("meta"):
        return getattr(nn, kind)(*args)


def connectivity_table(
    image_shapes=LECTURE_IMAGE_SHAPES,
    hidden_sizes: tuple[int, ...] = (100, 1000),
    n_filters: int = 32,
    kernel_size: int = 3,
) -> pd.DataFrame:
    """Parameters of one dense layer vs one convolution layer on images of each shape.

    Parameters
    ----------
    image_shapes : sequence of (H, W, C)
    hidden_sizes : tuple of int
        Widths of the dense layer on the flattened image (one column each, weights + biases).
    n_filters, kernel_size : int
        The convolution layer: ``n_filters`` filters of ``kernel_size x kernel_size x C``.

    Returns
    -------
    DataFrame, one row per image shape: ``image``, ``inputs``, ``dense_<h>_hidden`` per width,
    ``conv_<F>_filters_<K>x<K>`` and ``dense_over_conv`` (first width / conv).
    """
    rows = []
    for H, W, C in image_shapes:
        row = {"image": f"{H} x {W} x {C}", "inputs": H * W * C}
        for hidden in hidden_sizes:
            row[f"dense_{hidden}_hidden"] = count_parameters(
                _meta_layer("Linear", H * W * C, hidden)
            )
        conv_column = f"conv_{n_filters}_filters_{kernel_size}x{kernel_size}"
        row[conv_column] = count_parameters(_meta_layer("Conv2d", C, n_filters, kernel_size))
        row["dense_over_conv"] = row[f"dense_{hidden_sizes[0]}_hidden"] / row[conv_column]
        rows.append(row)
    return pd.DataFrame(rows)


def receptive_field(kernel_size: int, image_size: int) -> int:
    """Input pixels that influence one output of a ``K x K`` convolution (measured, not assumed).

    The gradient of one output with respect to the input, computed by
    :func:`tinycnn.reference.ops.conv2d_backward` with a one-hot upstream gradient and a kernel of
    ones, is non-zero exactly on that output's receptive field.
    """
    x = np.zeros((1, 1, image_size, image_size))
    w = np.ones((1, 1, kernel_size, kernel_size))
    out = ops.conv_output_size(image_size, kernel_size)
    dy = np.zeros((1, 1, out, out))
    dy[0, 0, out // 2, out // 2] = 1.0
    dx, _, _ = ops.conv2d_backward(dy, x, w, np.zeros(1))
    return int(np.count_nonzero(dx))


def translation_equivariance_error(
    layer: Callable[[np.ndarray], np.ndarray], x: np.ndarray
) -> float:
    """Largest ``|layer(shift(x)) - shift(layer(x))|`` for a one-pixel shift to the right.

    ``layer`` maps images ``(N, C, H, W)`` to feature maps ``(N, F, H', W')`` (for example a
    valid convolution). The image is shifted with zero fill, so the output column whose window
    touches the new blank column is left out of the comparison: the interior error of
    :func:`tinycnn.reports.translation.equivariance_errors`.
    """
    from tinycnn.reports.translation import equivariance_errors

    return equivariance_errors(layer, x, down=0, right=1)["interior_error"]


def key_ideas_table(
    kernel_size: int = 3, image_size: int = KEY_IDEAS_IMAGE_SIZE, hidden: int = 100, seed: int = 0
) -> pd.DataFrame:
    """The three key ideas, measured: one dense unit vs one ``K x K`` filter on a grayscale image.

    Columns ``quantity``, ``dense``, ``conv``: pixels one unit sees (receptive field), positions at
    which one weight is used (weight sharing), and the translation-equivariance error of the
    layer's output on a random image (``nan`` for the dense layer: its output has no spatial axes
    to shift).
    """
    rng = np.random.default_rng(seed)
    dense = _meta_layer("Linear", image_size * image_size, hidden)
    x = rng.normal(size=(2, 1, image_size, image_size))
    w = rng.normal(size=(1, 1, kernel_size, kernel_size))
    b = rng.normal(size=1)
    positions = ops.conv_output_size(image_size, kernel_size) ** 2
    return pd.DataFrame(
        [
            {
                "quantity": "input pixels seen by one unit",
                "dense": dense.in_features,
                "conv": receptive_field(kernel_size, image_size),
            },
            {"quantity": "positions where one weight is used", "dense": 1, "conv": positions},
            {
                "quantity": "translation equivariance error (1-pixel shift)",
                "dense": np.nan,
                "conv": translation_equivariance_error(
                    lambda images: ops.conv2d_forward(images, w, b), x
                ),
            },
        ]
    )


# ---------------------------------------------------------------------------------------------
# Section 2: worked examples
# ---------------------------------------------------------------------------------------------

#: The inputs of the lecture's worked examples (inputs only: their results are computed).
EXAMPLE_INPUTS = {
    # Cross-correlation slide: the 3x3 patch under the kernel, and the kernel.
    "cross_correlation_patch": [[1, 0, 1], [0, 1, 0], [1, 0, 1]],
    "cross_correlation_kernel": [[1, 0, 1], [0, 1, 0], [1, 0, 1]],
    # Convolution by hand.
    "by_hand_input": [
        [2, 0, 1, 3, 0],
        [1, 1, 2, 0, 1],
        [0, 3, 1, 1, 2],
        [1, 0, 2, 3, 1],
        [2, 1, 0, 1, 0],
    ],
    "by_hand_kernel": [[1, 0, -1], [1, 0, -1], [1, 0, -1]],
    # ReLU and max pooling.
    "relu_input": [[3, -1, 2, -4], [-2, 5, 1, -3], [4, -1, 6, 2], [-5, 3, -2, 1]],
    "pool_input": [[3, 0, 2, 0], [0, 5, 1, 0], [4, 0, 0, 2], [0, 3, 0, 1]],
    # Pooling backward: gradient routing.
    "routing_input": [[3, 1, 5, 0], [7, 2, 4, 1], [8, 0, 3, 2], [1, 6, 0, 9]],
}

#: (W, K, P, S) of the output-size slide and of "Pause & Think".
OUTPUT_SIZE_CASES = (
    ("no padding", 5, 3, 0, 1),
    ("same padding", 5, 3, 1, 1),
    ("stride 2", 6, 3, 0, 2),
    ("stride 1, same input as stride 2", 6, 3, 0, 1),
    ("Pause & Think 1", 8, 3, 0, 1),
    ("Pause & Think 2", 8, 3, 1, 1),
)


def format_matrix(a) -> str:
    """``[[5, 2], [4, 2]]`` -> ``"5 2 / 4 2"`` (rows separated by ``/``, numbers as ``%g``)."""
    a = np.atleast_2d(np.asarray(a))
    return " / ".join(" ".join(_format_entry(v) for v in row) for row in a)


def _format_entry(value) -> str:
    if isinstance(value, str):
        return value
    value = float(value)
    return "0" if value == 0 else f"{value:g}"  # never "-0"


def _as_nchw(matrix) -> np.ndarray:
    a = np.asarray(matrix, dtype=np.float64)
    return a[None, None]  # 1, 1, H, W


def _torch(a: np.ndarray):
    import torch

    return torch.from_numpy(np.array(a, dtype=np.float64))


def routing_labels(dx: np.ndarray, upstream: np.ndarray, names: list[str]) -> np.ndarray:
    """Replace each entry of ``dx`` by the name of the upstream gradient it equals (``0`` if 0).

    ``upstream`` holds distinct non-zero values, one per name, so each non-zero entry of ``dx`` is
    exactly one of them unless two windows sent gradient to the same pixel (then ``a+b``).
    """
    labels = np.full(dx.shape, "0", dtype=object)
    values = upstream.ravel()
    for index in zip(*np.nonzero(dx), strict=True):
        match = [names[i] for i, v in enumerate(values) if v == dx[index]]
        labels[index] = match[0] if match else f"{dx[index]:g}"
    return labels


def worked_examples_table() -> pd.DataFrame:
    """Every worked example, computed by ``tinycnn.reference.ops`` and by ``torch.nn.functional``.

    Returns
    -------
    DataFrame with columns ``example``, ``quantity``, ``numpy``, ``torch``, ``agree``; matrices are
    written row by row (``"5 2 / 4 2"``).
    """
    import torch.nn.functional as F

    E = EXAMPLE_INPUTS
    rows = []

    def add(example: str, quantity: str, numpy_value, torch_value) -> None:
        a, b = np.asarray(numpy_value), np.asarray(torch_value)
        agree = a.shape == b.shape and (
            np.array_equal(a, b)
            if a.dtype == object
            else bool(np.allclose(a, b, rtol=0, atol=1e-12))
        )
        rows.append(
            {
                "example": example,
                "quantity": quantity,
                "numpy": format_matrix(a),
                "torch": format_matrix(b),
                "agree": bool(agree),
            }
        )

    # Cross-correlation: one output, the whole patch under the kernel.
    x, k = _as_nchw(E["cross_correlation_patch"]), _as_nchw(E["cross_correlation_kernel"])
    add(
        "cross-correlation",
        "output",
        ops.conv2d_forward(x, k, np.zeros(1))[0, 0],
        F.conv2d(_torch(x), _torch(k)).numpy()[0, 0],
    )

    # Convolution by hand: the full 3x3 map, and its entry (1, 1).
    x, k = _as_nchw(E["by_hand_input"]), _as_nchw(E["by_hand_kernel"])
    y = ops.conv2d_forward(x, k, np.zeros(1))[0, 0]
    y_torch = F.conv2d(_torch(x), _torch(k)).numpy()[0, 0]
    add("convolution by hand", "output map", y, y_torch)
    add("convolution by hand", "output at (1,1)", y[1, 1], y_torch[1, 1])

    # Vertical edge detector: the same kernel on a vertical and on a horizontal step edge.
    size = 5
    vertical_edge = np.zeros((size, size))
    vertical_edge[:, : size // 2] = 1.0  # bright left half
    for name, image in (("vertical", vertical_edge), ("horizontal", vertical_edge.T.copy())):
        xi = _as_nchw(image)
        add(
            "edge detector",
            f"max |response| to a {name} edge",
            np.abs(ops.conv2d_forward(xi, k, np.zeros(1))).max(),
            F.conv2d(_torch(xi), _torch(k)).abs().max().item(),
        )

    # ReLU.
    x = _as_nchw(E["relu_input"])
    relu = ops.relu_forward(x)
    add("ReLU", "output", relu[0, 0], F.relu(_torch(x)).numpy()[0, 0])

    # Max pooling: on the input printed on the slide, and on the ReLU output printed above it.
    x = _as_nchw(E["pool_input"])
    pooled = ops.maxpool2d_forward(x, 2, 2)
    add("max pooling", "output", pooled[0, 0], F.max_pool2d(_torch(x), 2, 2).numpy()[0, 0])
    add(
        "max pooling",
        "size reduction (input / output entries)",
        x.size / pooled.size,
        x.size / F.max_pool2d(_torch(x), 2, 2).numel(),
    )
    add(
        "max pooling",
        "output when pooling the ReLU output instead",
        ops.maxpool2d_forward(relu, 2, 2)[0, 0],
        F.max_pool2d(F.relu(_torch(_as_nchw(E["relu_input"]))), 2, 2).numpy()[0, 0],
    )

    # Pooling backward: forward maxima, then where distinct upstream gradients g1..g4 land.
    x = _as_nchw(E["routing_input"])
    upstream = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)  # g1 g2 / g3 g4, row-major
    names = ["g1", "g2", "g3", "g4"]
    add(
        "pooling backward",
        "forward output",
        ops.maxpool2d_forward(x, 2, 2)[0, 0],
        F.max_pool2d(_torch(x), 2, 2).numpy()[0, 0],
    )
    dx = ops.maxpool2d_backward(upstream, x, 2, 2)[0, 0]
    xt = _torch(x).requires_grad_(True)
    F.max_pool2d(xt, 2, 2).backward(_torch(upstream))
    add(
        "pooling backward",
        "input gradient",
        routing_labels(dx, upstream, names),
        routing_labels(xt.grad.numpy()[0, 0], upstream, names),
    )
    return pd.DataFrame(rows)


def output_size_table(cases=OUTPUT_SIZE_CASES) -> pd.DataFrame:
    """Output width of each ``(W, K, P, S)`` case by the formula and by a real PyTorch convolution.

    Columns ``case``, ``W``, ``K``, ``P``, ``S``, ``formula``
    (:func:`tinycnn.reference.ops.conv_output_size`), ``torch`` (width of ``F.conv2d`` on a ``W x
    W`` input) and ``agree``.
    """
    import torch
    import torch.nn.functional as F

    rows = []
    for case, W, K, P, S in cases:
        formula = ops.conv_output_size(W, K, P, S)
        measured = F.conv2d(
            torch.zeros(1, 1, W, W), torch.zeros(1, 1, K, K), stride=S, padding=P
        ).shape[-1]
        rows.append(
            {
                "case": case,
                "W": W,
                "K": K,
                "P": P,
                "S": S,
                "formula": formula,
                "torch": int(measured),
                "agree": formula == int(measured),
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Section 3: TinyCNN layer summary
# ---------------------------------------------------------------------------------------------


def format_shape(shape: tuple[int, ...]) -> str:
    """``(3, 6, 6)`` -> ``"3 x 6 x 6"``."""
    return " x ".join(str(n) for n in shape)


def layer_summary_table(model) -> pd.DataFrame:
    """Per-layer output shape and parameters of a NumPy model, with a total row.

    Parameters
    ----------
    model : reference.TinyCNN or reference.MLP

    Returns
    -------
    DataFrame with ``layer``, ``output_shape`` (per sample, ``"3 x 6 x 6"``), ``n_parameters``
    and ``share`` (fraction of all parameters).
    """
    rows = model.layer_summary()
    total = sum(row["n_parameters"] for row in rows)
    if total != model.n_parameters:
        raise ValueError(
            f"layer summary counts {total} parameters but the model has {model.n_parameters}"
        )
    table = pd.DataFrame(
        [
            {
                "layer": row["layer"],
                "output_shape": format_shape(row["output_shape"]),
                "n_parameters": row["n_parameters"],
                "share": row["n_parameters"] / total,
            }
            for row in rows
        ]
    )
    table.loc[len(table)] = {
        "layer": "Total",
        "output_shape": "",
        "n_parameters": total,
        "share": 1.0,
    }
    return table
