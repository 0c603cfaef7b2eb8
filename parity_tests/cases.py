"""The one catalogue of op cases, shared by the parity tests and by ``tinycnn check``.

NumPy only (no torch): the checker builds inputs from these cases in a process without torch.
Each case is a frozen `OpCase`; `make_inputs(case)` turns it into arrays, deterministically from
the case's seed. The float32 twin of a case has the same seed, so it sees the same values rounded.

Random values are continuous (no accidental ties, no exact zeros); ties and zeros are tested on
purpose, in cases tagged ``"ties"``, ``"constant"`` and ``"exact-zeros"``.

Besides the ordinary cases, families of inputs as the world produces them, each a tag:

- memory layout (``"non-contiguous"`` and one of ``"fortran"``, ``"transposed"``,
  ``"negative-stride"``, ``"sliced"``): every array of the case (inputs, weights, upstream
  gradient, labels) holds the same values as in a C-contiguous case but is laid out differently;
- special values (``"nan"``, ``"inf"``, ``"neg-zero"``) placed in one array of the case, named by
  `OpCase.special_in` (``x``, ``w``, ``b``, ``dy`` or ``logits``);
- ``"empty"``: a batch of N = 0;
- ``"label-dtypes"``: cross-entropy labels of another integer dtype (`OpCase.label_dtype`).

The rule for all of them is PyTorch's on the CPU: same shape and dtype, NaN and +-inf at the same
positions, finite values within the tolerance table (`tinycnn.parity_tests.compare`). The parity
suite runs them all on the reference; ``tinycnn check`` grades submissions on `GRADED_CASES`,
which leave out the families of `NOT_GRADED_BY_DEFAULT` (special values and empty batches: PyTorch
defines the answer, but a textbook implementation of the contract need not reproduce it).

Examples
--------
>>> case = find_case("conv-n2c3f4-h7w5-k3x2-s2-p1-f64")
>>> case.describe()
'conv2d, x (2, 3, 7, 5), w (4, 3, 3, 2), stride 2, padding 1, float64'
>>> sorted(make_inputs(case))
['b', 'dy', 'w', 'x']
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace

import numpy as np

OPS = ("conv2d", "relu", "maxpool2d", "linear", "softmax_cross_entropy")
DTYPES = ("float64", "float32")

# What each tag means; the checker turns a failure pattern over tags into a hint.
TAGS = {
    "ties": "pooling windows hold equal maxima on purpose (integer-valued input)",
    "constant": "every input value is equal, so every pooling window is one big tie",
    "exact-zeros": "ReLU input holds exact 0.0 and -0.0, where the gradient must be 0",
    "large-logits": "logits of magnitude 1000 or more: exp overflows without subtracting the max",
    "odd-size": "the windows do not tile the (padded) input exactly: the output size is floored",
    "symmetric-kernel": "kernel unchanged by flipping either spatial axis: a flipped kernel passes",
    "asymmetric-kernel": "kernel changes when flipped: catches convolution instead of correlation",
    "non-square": "height differs from width (input or kernel): catches swapped axes",
    "overlap": "pooling windows overlap (size > stride): their gradients add up",
    "stride": "stride > 1",
    "padding": "padding > 0",
    # --- memory layout: same values, other strides ------------------------------------------
    "non-contiguous": "arrays are not C-contiguous (one of the four layouts below)",
    "fortran": "every array in Fortran (column-major) order",
    "transposed": "axes permuted in memory: channels-last 4-D arrays, transposed 2-D arrays",
    "negative-stride": "every array a reversed view (negative strides on every axis)",
    "sliced": "every array a view of every other element of a larger array (strides of 2)",
    # --- special values and degenerate inputs ----------------------------------------------
    "nan": "NaN in one array (named by the case): NaN must land where PyTorch puts it",
    "inf": "+inf and -inf in one array (named by the case): inf and NaN where PyTorch has them",
    "neg-zero": "-0.0 (and 0.0) in one array: equal to 0.0, a tie, not positive",
    "empty": "a batch of N = 0: outputs of the right shape, zero gradients for the weights",
    "label-dtypes": "labels of an integer dtype other than int64 (int8 ... uint64)",
    # Added for the checker's softmax hints (issue 10): which fix a non-finite loss needs.
    "underflow": "the labelled logit is 1000 below another: its probability underflows to 0",
}

#: Layout tags, each also tagged "non-contiguous".
LAYOUTS = ("fortran", "transposed", "negative-stride", "sliced")
#: Special-value tags; the case's ``special_in`` names the array that holds them.
SPECIAL_VALUES = ("nan", "inf", "neg-zero")
#: Families whose answer PyTorch defines (and the reference gives, and the parity suite checks)
#: but that a textbook implementation of the contract need not get right: `tinycnn check` does
#: not grade submissions on them by default (see `OpCase.graded`).
NOT_GRADED_BY_DEFAULT = ("nan", "inf", "neg-zero", "empty")
#: Integer dtypes the label-dtypes family uses (int64 is the default of every other case).
LABEL_DTYPES = ("int8", "int32", "uint8", "uint32", "uint64")

# Tags that change the values but not the shapes: they go into the id to keep ids unique.
_ID_SUFFIX = {
    "symmetric-kernel": "sym",
    "ties": "ties",
    "constant": "const",
    "exact-zeros": "zeros",
    "fortran": "fortran",
    "transposed": "transposed",
    "negative-stride": "negstride",
    "sliced": "sliced",
    "underflow": "underflow",
}
_DTYPE_SUFFIX = {"float64": "f64", "float32": "f32"}


@dataclass(frozen=True)
class OpCase:
    """One parity case: an op, its input shapes and hyper-parameters, a dtype and a seed.

    Attributes
    ----------
    op : str
        One of `OPS`.
    x_shape : tuple of int
        Input shape: (N, C, H, W) for conv2d and maxpool2d, (N, C, H, W) or (N, D) for relu,
        (N, D) for linear, logits (N, K) for softmax_cross_entropy.
    w_shape : tuple of int or None
        Weight shape: (F, C, KH, KW) for conv2d, (M, D) for linear, None otherwise.
    stride : int
        Stride of conv2d and maxpool2d (ignored by the other ops).
    padding : int
        Zero padding of conv2d (ignored by the other ops).
    size : int
        Pooling window size (maxpool2d only).
    dtype : str
        ``"float64"`` or ``"float32"``.
    seed : int
        Seed of `numpy.random.default_rng` for the inputs.
    tags : tuple of str
        Keys of `TAGS`.
    scale : float
        Standard deviation of the random values (1000 for "logits of magnitude 1000").
    special_in : str
        With a tag of `SPECIAL_VALUES`: the array that holds the special values (``"x"``,
        ``"w"``, ``"b"``, ``"dy"`` or ``"logits"``); empty otherwise.
    label_dtype : str
        Integer dtype of the cross-entropy labels, ``"int64"`` unless tagged "label-dtypes".
    """

    op: str
    x_shape: tuple[int, ...]
    w_shape: tuple[int, ...] | None = None
    stride: int = 1
    padding: int = 0
    size: int = 2
    dtype: str = "float64"
    seed: int = 0
    tags: tuple[str, ...] = ()
    scale: float = 1.0
    special_in: str = ""
    label_dtype: str = "int64"

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown op {self.op!r}; expected one of {OPS}")
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}; expected one of {DTYPES}")
        unknown = [tag for tag in self.tags if tag not in TAGS]
        if unknown:
            raise ValueError(f"unknown tags {unknown}; known tags: {sorted(TAGS)}")
        ranks = {
            "conv2d": (4, 4),
            "maxpool2d": (4, None),
            "linear": (2, 2),
            "softmax_cross_entropy": (2, None),
        }
        specials = [tag for tag in self.tags if tag in SPECIAL_VALUES]
        arrays = {
            "conv2d": ("x", "w", "b", "dy"),
            "linear": ("x", "w", "b", "dy"),
            "relu": ("x", "dy"),
            "maxpool2d": ("x", "dy"),
            "softmax_cross_entropy": ("logits",),
        }[self.op]
        if len(specials) > 1 or bool(specials) != bool(self.special_in):
            raise ValueError(
                f"one special value needs one array: tags {self.tags}, special_in "
                f"{self.special_in!r}"
            )
        if self.special_in and self.special_in not in arrays:
            raise ValueError(f"{self.op} has no array {self.special_in!r}; it has {arrays}")
        layouts = [tag for tag in self.tags if tag in LAYOUTS]
        if len(layouts) > 1 or bool(layouts) != ("non-contiguous" in self.tags):
            raise ValueError(f"a non-contiguous case has exactly one layout tag: {self.tags}")
        if np.dtype(self.label_dtype).kind not in "iu":
            raise ValueError(f"labels must have an integer dtype, not {self.label_dtype!r}")
        x_rank, w_rank = ranks.get(self.op, (len(self.x_shape), None))
        if len(self.x_shape) != x_rank or (w_rank and len(self.w_shape or ()) != w_rank):
            raise ValueError(
                f"{self.op}: x shape {self.x_shape} or w shape {self.w_shape} "
                f"has the wrong rank (expected {x_rank} and {w_rank})"
            )

    @property
    def id(self) -> str:
        """Readable unique id, e.g. ``conv-n2c3f4-h7w5-k3x2-s2-p1-f64``."""
        if self.op == "conv2d":
            N, C, H, W = self.x_shape
            F, _, KH, KW = self.w_shape
            parts = [
                "conv",
                f"n{N}c{C}f{F}",
                f"h{H}w{W}",
                f"k{KH}x{KW}",
                f"s{self.stride}",
                f"p{self.padding}",
            ]
        elif self.op == "maxpool2d":
            N, C, H, W = self.x_shape
            parts = ["pool", f"n{N}c{C}", f"h{H}w{W}", f"k{self.size}", f"s{self.stride}"]
        elif self.op == "relu":
            if len(self.x_shape) == 4:
                N, C, H, W = self.x_shape
                parts = ["relu", f"n{N}c{C}", f"h{H}w{W}"]
            else:
                N, D = self.x_shape
                parts = ["relu", f"n{N}d{D}"]
        elif self.op == "linear":
            N, D = self.x_shape
            M, _ = self.w_shape
            parts = ["linear", f"n{N}d{D}m{M}"]
        else:
            N, K = self.x_shape
            parts = ["ce", f"n{N}k{K}", f"mag{self.scale:g}"]
        parts += [_ID_SUFFIX[tag] for tag in self.tags if tag in _ID_SUFFIX]
        parts += [f"{tag.replace('-', '')}-in-{self.special_in}" for tag in self.special_tags]
        if self.label_dtype != "int64":
            parts.append(f"labels-{self.label_dtype}")
        parts.append(_DTYPE_SUFFIX[self.dtype])
        return "-".join(parts)

    def __str__(self) -> str:
        return self.id

    def describe(self) -> str:
        """The case in words for a student, e.g.
        ``conv2d, x (2, 3, 7, 5), w (4, 3, 3, 2), stride 2, padding 1, float64``."""
        if self.op == "conv2d":
            words = [
                f"x {self.x_shape}",
                f"w {self.w_shape}",
                f"stride {self.stride}",
                f"padding {self.padding}",
            ]
        elif self.op == "maxpool2d":
            words = [f"x {self.x_shape}", f"size {self.size}", f"stride {self.stride}"]
        elif self.op == "relu":
            words = [f"x {self.x_shape}"]
        elif self.op == "linear":
            words = [f"x {self.x_shape}", f"w {self.w_shape}", f"b ({self.w_shape[0]},)"]
        else:
            words = [
                f"logits {self.x_shape} of magnitude ~{self.scale:g}",
                f"labels ({self.x_shape[0]},)",
            ]
        words.append(self.dtype)
        notes = {
            "symmetric-kernel": "symmetric kernel",
            "ties": "integer values with ties",
            "constant": "all values equal",
            "exact-zeros": "with exact zeros",
            "fortran": "every array in Fortran order",
            "transposed": "every array with permuted axes in memory (channels-last, .T)",
            "negative-stride": "every array a reversed view (negative strides)",
            "sliced": "every array a strided slice (every other element)",
            "underflow": "label 0, last logit highest",
        }
        if self.op == "softmax_cross_entropy":
            notes["ties"] = "all logits equal"
        words += [notes[tag] for tag in self.tags if tag in notes]
        special_words = {"nan": "NaN", "inf": "+inf and -inf", "neg-zero": "-0.0"}
        words += [f"{special_words[tag]} in {self.special_in}" for tag in self.special_tags]
        if self.label_dtype != "int64":
            words.append(f"{self.label_dtype} labels")
        return ", ".join([self.op, *words])

    @property
    def graded(self) -> bool:
        """Whether ``tinycnn check`` grades submissions on this case by default: every case but
        those of the families in `NOT_GRADED_BY_DEFAULT` (layouts and label dtypes are graded)."""
        return not any(tag in NOT_GRADED_BY_DEFAULT for tag in self.tags)

    @property
    def special_tags(self) -> tuple[str, ...]:
        """The case's tags of `SPECIAL_VALUES` (none or one)."""
        return tuple(tag for tag in self.tags if tag in SPECIAL_VALUES)

    @property
    def layout(self) -> str:
        """``"C"`` or the layout tag of the case (one of `LAYOUTS`)."""
        return next((tag for tag in self.tags if tag in LAYOUTS), "C")

    @property
    def np_dtype(self) -> np.dtype:
        """The dtype as a `numpy.dtype`."""
        return np.dtype(self.dtype)


def output_shape(case: OpCase) -> tuple[int, ...]:
    """Shape of the op's forward output, computed here independently of any implementation.

    Returns ``()`` for softmax_cross_entropy (the loss is a scalar).
    """
    if case.op == "conv2d":
        N, C, H, W = case.x_shape
        F, _, KH, KW = case.w_shape
        H_out = (H + 2 * case.padding - KH) // case.stride + 1
        W_out = (W + 2 * case.padding - KW) // case.stride + 1
        return (N, F, H_out, W_out)
    if case.op == "maxpool2d":
        N, C, H, W = case.x_shape
        H_out = (H - case.size) // case.stride + 1
        W_out = (W - case.size) // case.stride + 1
        return (N, C, H_out, W_out)
    if case.op == "relu":
        return case.x_shape
    if case.op == "linear":
        N, _ = case.x_shape
        M, _ = case.w_shape
        return (N, M)
    return ()


def make_inputs(case: OpCase) -> dict[str, np.ndarray]:
    """Build the case's input arrays, deterministically from ``case.seed``.

    Parameters
    ----------
    case : OpCase

    Returns
    -------
    dict of str to numpy.ndarray
        conv2d: x (N, C, H, W), w (F, C, KH, KW), b (F,), dy (N, F, H_out, W_out);
        relu and maxpool2d: x, dy (shape of the output);
        linear: x (N, D), w (M, D), b (M,), dy (N, M);
        softmax_cross_entropy: logits (N, K) and labels (N,) of ``case.label_dtype``. No dy: the
        loss is the end of the chain, and dlogits is its gradient.
        Float arrays have ``case.dtype``; fresh arrays on every call, C-contiguous unless the case
        has a layout tag (then every array, labels included, has that layout; see `with_layout`).
        Special values (tags "nan", "inf", "neg-zero") go into ``case.special_in`` only; the
        other arrays hold the same values as the case without them.
    """
    rng = np.random.default_rng(case.seed)

    def normal(shape: tuple[int, ...]) -> np.ndarray:
        # Draw in float64 and round, so the float32 twin sees the same values.
        return (case.scale * rng.standard_normal(shape)).astype(case.dtype)

    if case.op in ("conv2d", "linear"):
        inputs = {"x": normal(case.x_shape), "w": normal(case.w_shape)}
        inputs["b"] = normal(case.w_shape[:1])
        if "symmetric-kernel" in case.tags:
            # Mirror the top-left quarter: the kernel is unchanged by flipping either axis.
            KH, KW = case.w_shape[2:]
            rows = np.minimum(np.arange(KH), KH - 1 - np.arange(KH))
            cols = np.minimum(np.arange(KW), KW - 1 - np.arange(KW))
            inputs["w"] = np.ascontiguousarray(inputs["w"][:, :, rows][:, :, :, cols])
    elif case.op == "maxpool2d":
        if "constant" in case.tags:
            inputs = {"x": np.full(case.x_shape, 0.5, dtype=case.dtype)}
        elif "ties" in case.tags:
            # Three integer levels: most windows hold their maximum more than once.
            inputs = {"x": rng.integers(-1, 2, size=case.x_shape).astype(case.dtype)}
        else:
            inputs = {"x": normal(case.x_shape)}
    elif case.op == "relu":
        x = normal(case.x_shape)
        if "exact-zeros" in case.tags:
            # A third of the entries become 0.0 or -0.0 (both count as x <= 0).
            zero_mask = rng.random(case.x_shape) < 1 / 3
            signs = rng.random(case.x_shape) < 0.5
            x[zero_mask & signs] = 0.0
            x[zero_mask & ~signs] = -0.0
        inputs = {"x": x}
    else:
        N, K = case.x_shape
        if "ties" in case.tags:
            logits = np.full((N, K), case.scale, dtype=case.dtype)
        elif "underflow" in case.tags:
            # Label 0, the last logit `scale` above the others: [[0, 1000]] for N=1, K=2.
            logits = np.zeros((N, K), dtype=case.dtype)
            logits[:, -1] = case.scale
        else:
            logits = normal((N, K))
        labels = rng.integers(0, K, size=N).astype(case.label_dtype)
        if "underflow" in case.tags:
            labels[:] = 0
        inputs = {"logits": logits, "labels": labels}
    if case.op != "softmax_cross_entropy":
        inputs["dy"] = rng.standard_normal(output_shape(case)).astype(case.dtype)
    if case.special_in:
        _place_special_values(case, inputs[case.special_in])
    return {name: with_layout(array, case.layout) for name, array in inputs.items()}


def _place_special_values(case: OpCase, array: np.ndarray) -> None:
    """Write the case's special value into ``array`` in place, at positions drawn from its seed.

    About one entry in 24 (at least two); for pooling inputs also two entries of the first window,
    so one window holds two of them (several NaN in a window: the last one wins in PyTorch).
    With "inf" the signs alternate; with "neg-zero" a quarter of the entries become -0.0 and the
    first window holds -0.0 then 0.0 in its first row, its other values -1, -2, ... (a tie between
    the two zeros, which the first one wins).
    """
    if array.size == 0:
        return
    # A second generator: the ordinary values stay those of the same case without the tag.
    rng = np.random.default_rng([case.seed, 1])
    flat = array.reshape(-1)  # a view: make_inputs builds C-contiguous arrays
    (tag,) = case.special_tags
    if tag == "neg-zero":
        flat[rng.random(flat.size) < 0.25] = -0.0
    else:
        count = min(flat.size, 2 + flat.size // 24)  # two at least: +inf and -inf
        positions = rng.choice(flat.size, size=count, replace=False)
        if tag == "nan":
            flat[positions] = np.nan
        else:
            flat[positions] = np.where(np.arange(count) % 2 == 0, np.inf, -np.inf)
    if case.op == "maxpool2d" and case.special_in == "x":
        window = array[0, 0, : case.size, : case.size]
        if tag == "neg-zero":
            window[...] = -1.0 - np.arange(window.size).reshape(window.shape)
            window[0, 0] = -0.0
            window[0, -1] = 0.0  # the same element when size is 1
        else:
            window[0, 0] = window[-1, -1] = np.nan if tag == "nan" else np.inf


def with_layout(array: np.ndarray, layout: str) -> np.ndarray:
    """The same values as ``array`` in another memory layout (a fresh array or a view of one).

    ``"C"``: C-contiguous. ``"fortran"``: column-major. ``"transposed"``: a permuted view of a
    C-contiguous array, channels-last for 4-D ``(N, C, H, W)`` (memory ordered ``N, H, W, C``),
    ``.T`` for 2-D; 1-D arrays stay contiguous. ``"negative-stride"``: a reversed view of a reversed
    copy (every stride negative). ``"sliced"``: every other element (along every axis) of an array
    twice as large, whose other entries are NaN, so reading outside the view shows.
    """
    if layout == "C":
        return np.ascontiguousarray(array)
    if layout == "fortran":
        return np.asfortranarray(array)
    if layout == "transposed":
        if array.ndim == 4:
            return np.ascontiguousarray(array.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        if array.ndim == 2:
            return np.ascontiguousarray(array.T).T
        return np.ascontiguousarray(array)
    if layout == "negative-stride":
        reverse = (slice(None, None, -1),) * array.ndim
        return np.ascontiguousarray(array[reverse])[reverse]
    if layout == "sliced":
        fill = np.nan if array.dtype.kind == "f" else np.iinfo(array.dtype).max
        larger = np.full(tuple(2 * n for n in array.shape), fill, dtype=array.dtype)
        every_other = (slice(None, None, 2),) * array.ndim
        larger[every_other] = array
        return larger[every_other]
    raise ValueError(f"unknown layout {layout!r}; expected 'C' or one of {LAYOUTS}")


# --- the catalogue -------------------------------------------------------------------------------


def _seed(base_id: str) -> int:
    # Derived from the dtype-free id: stable when cases are added, shared by the float32 twin.
    return zlib.crc32(base_id.encode())


def _both_dtypes(template: OpCase) -> list[OpCase]:
    base_id = template.id.rsplit("-", 1)[0]
    seed = _seed(base_id)
    return [replace(template, dtype=dtype, seed=seed) for dtype in DTYPES]


def _conv(x_shape, w_shape, stride, padding, *extra_tags: str, **fields) -> list[OpCase]:
    H, W = x_shape[2:]
    KH, KW = w_shape[2:]
    tags = list(extra_tags)
    # An empty batch has no output that could show a flipped kernel.
    if "symmetric-kernel" not in tags and (KH, KW) != (1, 1) and x_shape[0] > 0:
        tags.append("asymmetric-kernel")
    if H != W or KH != KW:
        tags.append("non-square")
    if (H + 2 * padding - KH) % stride or (W + 2 * padding - KW) % stride:
        tags.append("odd-size")
    if stride > 1:
        tags.append("stride")
    if padding > 0:
        tags.append("padding")
    return _both_dtypes(
        OpCase(
            "conv2d",
            x_shape,
            w_shape,
            stride=stride,
            padding=padding,
            tags=tuple(tags),
            **fields,
        )
    )


def _pool(x_shape, size, stride, *extra_tags: str, **fields) -> list[OpCase]:
    H, W = x_shape[2:]
    tags = list(extra_tags)
    if size > stride:
        tags.append("overlap")
    if H != W:
        tags.append("non-square")
    if (H - size) % stride or (W - size) % stride:
        tags.append("odd-size")
    if stride > 1:
        tags.append("stride")
    return _both_dtypes(
        OpCase("maxpool2d", x_shape, size=size, stride=stride, tags=tuple(tags), **fields)
    )


def _relu(x_shape, *tags: str, **fields) -> list[OpCase]:
    return _both_dtypes(OpCase("relu", x_shape, tags=tags, **fields))


def _linear(x_shape, w_shape, *tags: str, **fields) -> list[OpCase]:
    return _both_dtypes(OpCase("linear", x_shape, w_shape, tags=tags, **fields))


def _cross_entropy(logits_shape, scale, *extra_tags: str, **fields) -> list[OpCase]:
    tags = list(extra_tags)
    if scale >= 1000:
        tags.append("large-logits")
    return _both_dtypes(
        OpCase("softmax_cross_entropy", logits_shape, scale=scale, tags=tuple(tags), **fields)
    )


def _layout_family() -> list[OpCase]:
    """Every op, forward and backward, with every array in each of the four layouts."""
    cases = []
    for layout in LAYOUTS:
        tags = ("non-contiguous", layout)
        cases += _conv((2, 3, 7, 5), (4, 3, 3, 2), 2, 1, *tags)
        cases += _relu((2, 3, 4, 5), *tags)
        cases += _pool((2, 3, 7, 5), 3, 2, *tags)
        cases += _linear((4, 7), (5, 7), *tags)
        cases += _cross_entropy((4, 3), 1.0, *tags)
    return cases


def _special_value_family() -> list[OpCase]:
    """Every op with NaN, +-inf or -0.0 in each of its arrays in turn (inputs, weights, dy).

    The conv cases pad (padding zeros meet the special values: 0 * inf is NaN) and the pooling
    windows overlap (one position can win a window through a NaN and another one through a
    number).
    """
    cases = []
    for value in SPECIAL_VALUES:
        for array in ("x", "w", "b", "dy"):
            cases += _conv((2, 2, 6, 5), (3, 2, 3, 3), 1, 1, value, special_in=array)
        for array in ("x", "dy"):
            cases += _relu((2, 3, 4, 5), value, special_in=array)
            cases += _pool((2, 2, 7, 6), 3, 2, value, special_in=array)
        for array in ("x", "w", "b", "dy"):
            cases += _linear((4, 7), (5, 7), value, special_in=array)
        cases += _cross_entropy((4, 5), 1.0, value, special_in="logits")
    return cases


def _degenerate_family() -> list[OpCase]:
    """Empty batches (N = 0) of every op, and labels of every integer width and signedness."""
    cases = [
        *_conv((0, 3, 7, 5), (4, 3, 3, 2), 2, 1, "empty"),
        *_relu((0, 3, 4, 5), "empty"),
        *_relu((0, 18), "empty"),
        *_pool((0, 2, 7, 6), 3, 2, "empty"),
        *_linear((0, 7), (5, 7), "empty"),
        *_cross_entropy((0, 3), 1.0, "empty"),
    ]
    for label_dtype in LABEL_DTYPES:
        cases += _cross_entropy((4, 3), 1.0, "label-dtypes", label_dtype=label_dtype)
    return cases


CASES: tuple[OpCase, ...] = tuple(
    [
        # conv2d: N, C, F > 1; kernels 1-5 (square and not), stride 1-3, padding 0-2.
        *_conv((2, 3, 7, 5), (4, 3, 3, 3), 1, 0),
        *_conv((2, 3, 7, 5), (4, 3, 3, 2), 2, 1),
        *_conv((3, 2, 8, 6), (3, 2, 1, 1), 1, 0),
        *_conv((2, 2, 6, 9), (3, 2, 2, 2), 2, 0),
        *_conv((2, 3, 9, 7), (2, 3, 5, 5), 1, 2),
        *_conv((2, 2, 10, 8), (3, 2, 4, 3), 3, 1),
        *_conv((3, 2, 6, 11), (2, 2, 2, 5), 3, 2),
        *_conv((2, 2, 3, 8), (3, 2, 1, 3), 2, 0),
        *_conv((2, 3, 4, 4), (2, 3, 5, 5), 1, 1),  # kernel larger than the input, padding rescues
        *_conv((2, 1, 8, 8), (3, 1, 3, 3), 1, 0),  # TinyCNN's own conv layer
        # The same shapes with symmetric and with random kernels: tells a flipped kernel apart.
        *_conv((2, 3, 5, 6), (4, 3, 3, 3), 1, 1, "symmetric-kernel"),
        *_conv((2, 3, 5, 6), (4, 3, 3, 3), 1, 1),
        *_conv((2, 2, 7, 7), (2, 2, 5, 4), 2, 2, "symmetric-kernel"),
        *_conv((2, 2, 7, 7), (2, 2, 5, 4), 2, 2),
        # relu: 4-d after conv, 2-d after a dense layer; exact zeros on purpose.
        *_relu((2, 3, 4, 5)),
        *_relu((2, 3, 4, 5), "exact-zeros"),
        *_relu((4, 18)),
        *_relu((4, 18), "exact-zeros"),
        # maxpool2d: continuous values (no ties), odd sizes, overlapping windows.
        *_pool((2, 3, 4, 6), 2, 2),
        *_pool((2, 3, 7, 5), 2, 2),
        *_pool((2, 2, 7, 7), 3, 2),
        *_pool((2, 2, 8, 6), 3, 1),
        *_pool((2, 3, 9, 8), 3, 3),
        *_pool((2, 2, 6, 7), 2, 1),
        *_pool((2, 2, 9, 6), 4, 3),
        *_pool((2, 3, 6, 6), 2, 2),  # TinyCNN's own pooling layer
        # ... and ties on purpose: the gradient goes to the first maximum in row-major order.
        *_pool((2, 3, 4, 6), 2, 2, "ties"),
        *_pool((2, 2, 7, 5), 3, 2, "ties"),
        *_pool((2, 2, 6, 6), 2, 1, "ties"),
        *_pool((2, 2, 9, 7), 3, 3, "ties"),
        *_pool((2, 2, 5, 6), 2, 2, "ties", "constant"),
        *_pool((2, 2, 5, 5), 3, 1, "ties", "constant"),
        # linear: y = x @ w.T + b.
        *_linear((4, 7), (5, 7)),
        *_linear((3, 27), (3, 27)),  # TinyCNN's dense layer
        *_linear((5, 64), (18, 64)),  # MLP's hidden layer
        *_linear((2, 1), (3, 1)),
        # softmax_cross_entropy: ordinary, large (1000, 1e4), batch of one, all logits equal.
        *_cross_entropy((4, 3), 1.0),
        *_cross_entropy((5, 4), 10.0),
        *_cross_entropy((4, 3), 1000.0),
        *_cross_entropy((6, 5), 1e4),
        *_cross_entropy((1, 4), 1.0),
        *_cross_entropy((3, 4), 1.0, "ties"),
        # For the checker's hints (issue 10): all logits 1000 (only exp overflows, the shifted
        # softmax is exact), and logits [[0, 1000]] with label 0 (the shifted probability of the
        # label underflows to 0: its log is -inf, the loss is 1000).
        *_cross_entropy((3, 4), 1000.0, "ties"),
        *_cross_entropy((1, 2), 1000.0, "underflow"),
        # Inputs as the world produces them: other memory layouts, NaN/inf/-0.0, N = 0, labels.
        *_layout_family(),
        *_special_value_family(),
        *_degenerate_family(),
    ]
)

_ids = [case.id for case in CASES]
if len(set(_ids)) != len(_ids):
    duplicates = sorted({case_id for case_id in _ids if _ids.count(case_id) > 1})
    raise RuntimeError(f"case ids must be unique; duplicated: {duplicates}")
del _ids


#: The cases `tinycnn check` grades by default (see `OpCase.graded`), in catalogue order.
GRADED_CASES: tuple[OpCase, ...] = tuple(case for case in CASES if case.graded)


def cases_for(op: str, *, dtype: str | None = None) -> tuple[OpCase, ...]:
    """The catalogue's cases of one op, optionally of one dtype."""
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}; expected one of {OPS}")
    return tuple(c for c in CASES if c.op == op and (dtype is None or c.dtype == dtype))


def find_case(case_id: str) -> OpCase:
    """The catalogue case with this id."""
    for case in CASES:
        if case.id == case_id:
            return case
    raise ValueError(f"no case with id {case_id!r} in the catalogue ({len(CASES)} cases)")


# --- hidden cases: fresh values every run (tinycnn check) --------------------------------------


@dataclass(frozen=True)
class HiddenCase(OpCase):
    """A catalogue case redrawn from a run's seed: same op, hyper-parameters, tags and dtype, a
    fresh batch size and fresh values. A submission cannot know these inputs in advance, so a
    table of memorised outputs fails them."""

    @property
    def id(self) -> str:
        """``hidden-<seed>-`` then the catalogue-style id: ``hidden-1a2b3c4d-relu-n3d18-f64``."""
        return f"hidden-{self.seed:08x}-{super().id}"

    def describe(self) -> str:
        return f"{super().describe()}, hidden values"


def hidden_cases(seed: int) -> tuple[HiddenCase, ...]:
    """One hidden twin of every catalogue case, drawn from ``seed`` (the same seed, the same cases).

    The batch size N becomes 1, 2 or 3 (the same for every case of one shape, so a memory-layout
    variant keeps its C-ordered twin) and the values come from a fresh seed; the float32 twin of
    a case gets the same draw, as in the catalogue.
    """
    rng = np.random.default_rng(seed)
    batches: dict[tuple, int] = {}  # one batch size per shape: layout variants keep a C twin
    seeds: dict[str, int] = {}  # one value seed per dtype pair, as in the catalogue
    hidden = []
    for case in GRADED_CASES:
        shape_key = (case.op, case.x_shape, case.w_shape, case.stride, case.padding, case.size)
        base_id = case.id.rsplit("-", 1)[0]
        if shape_key not in batches:
            batches[shape_key] = int(rng.integers(1, 4))
        if base_id not in seeds:
            seeds[base_id] = int(rng.integers(0, 2**32))
        fields = {f: getattr(case, f) for f in OpCase.__dataclass_fields__}
        fields.update(x_shape=(batches[shape_key], *case.x_shape[1:]), seed=seeds[base_id])
        hidden.append(HiddenCase(**fields))
    return tuple(hidden)
