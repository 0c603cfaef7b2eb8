"""The catalogue holds what issue 2 asks for, and its inputs are what their tags promise."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from tinycnn.parity_tests.cases import (
    CASES,
    DTYPES,
    LAYOUTS,
    OPS,
    TAGS,
    OpCase,
    cases_for,
    find_case,
    make_inputs,
    output_shape,
)

CONV = cases_for("conv2d")
POOL = cases_for("maxpool2d")
# Empty batches have no windows; special values make ties (and NaN windows) on purpose.
ORDINARY_POOL = [case for case in POOL if "empty" not in case.tags and not case.special_tags]


def _pool_windows(x: np.ndarray, size: int, stride: int) -> np.ndarray:
    # (N, C, H_out, W_out, size * size), written independently of any implementation.
    N, C, H, W = x.shape
    H_out, W_out = (H - size) // stride + 1, (W - size) // stride + 1
    return np.stack(
        [
            x[:, :, i * stride : i * stride + size, j * stride : j * stride + size].reshape(
                N, C, -1
            )
            for i in range(H_out)
            for j in range(W_out)
        ],
        axis=2,
    ).reshape(N, C, H_out, W_out, size * size)


def test_catalogue_covers_every_op_and_stays_small_enough_to_be_fast():
    assert {case.op for case in CASES} == set(OPS)
    assert 60 <= len(CASES) <= 300, f"{len(CASES)} cases"


LAYOUT_CASES = [case for case in CASES if case.layout != "C"]


def test_every_op_appears_in_every_layout_in_both_dtypes():
    seen = {(case.op, case.layout, case.dtype) for case in LAYOUT_CASES}
    assert seen == {(op, layout, dtype) for op in OPS for layout in LAYOUTS for dtype in DTYPES}


def _c_contiguous_twin(case):
    # The same case in C order: make_inputs with the layout tags dropped, the seed kept.
    tags = tuple(tag for tag in case.tags if tag not in (*LAYOUTS, "non-contiguous"))
    return replace(case, tags=tags)


@pytest.mark.parametrize("case", LAYOUT_CASES, ids=str)
def test_layout_cases_hold_the_values_of_the_c_ordered_case_in_their_layout(case):
    contiguous = make_inputs(_c_contiguous_twin(case))
    for name, array in make_inputs(case).items():
        assert np.array_equal(array, contiguous[name]), name
        if array.ndim < 2 and case.layout in ("fortran", "transposed"):
            continue  # 1-D arrays (b, labels) have one order only
        assert not array.flags.c_contiguous, name
        if case.layout == "fortran":
            assert array.flags.f_contiguous, name
        elif case.layout == "transposed":
            # A permuted view of a contiguous buffer: neither C nor (4-D) Fortran order.
            assert array.base is not None and array.base.flags.c_contiguous, name
            assert array.ndim == 2 or not array.flags.f_contiguous, name
        elif case.layout == "negative-stride":
            assert all(stride < 0 for stride in array.strides), name
        else:
            assert array.base is not None and array.base.size == array.size * 2**array.ndim


def test_every_case_has_a_float32_twin_with_the_same_values():
    by_id = {case.id: case for case in CASES}
    float64_cases = [case for case in CASES if case.dtype == "float64"]
    assert 2 * len(float64_cases) == len(CASES)
    for case in float64_cases:
        twin = by_id[case.id.removesuffix("-f64") + "-f32"]
        assert twin.seed == case.seed
        for name, array in make_inputs(case).items():
            expected = array.astype(np.float32) if array.dtype == np.float64 else array
            same = np.array_equal(make_inputs(twin)[name], expected, equal_nan=True)
            assert same, f"{twin.id}: {name}"


def test_conv_cases_cover_batch_channels_filters_strides_paddings_and_kernels():
    assert all(c.x_shape[0] > 1 for c in CONV if "empty" not in c.tags), "N > 1 but in 'empty'"
    assert all(c.x_shape[0] == 0 for c in CONV if "empty" in c.tags)
    assert any(c.x_shape[1] > 1 and c.w_shape[0] > 1 for c in CONV), "C, F > 1"
    assert {c.stride for c in CONV} == {1, 2, 3}
    assert {c.padding for c in CONV} == {0, 1, 2}
    assert {c.w_shape[2] for c in CONV} | {c.w_shape[3] for c in CONV} == {1, 2, 3, 4, 5}
    assert any(c.w_shape[2] != c.w_shape[3] for c in CONV), "a non-square kernel"
    assert any(c.x_shape[2] != c.x_shape[3] for c in CONV), "a non-square input"
    assert any("odd-size" in c.tags for c in CONV)


def test_symmetric_kernel_cases_have_twins_with_random_kernels():
    # The checker's hint "is the kernel flipped?" compares the two.
    for case in [c for c in CONV if "symmetric-kernel" in c.tags]:
        assert find_case(case.id.replace("-sym", "")).w_shape == case.w_shape


@pytest.mark.parametrize("case", [c for c in CONV if c.w_shape[2:] != (1, 1)], ids=str)
def test_kernel_symmetry_matches_its_tag(case):
    w = make_inputs(case)["w"]
    flips = [w[:, :, ::-1, :], w[:, :, :, ::-1]]
    symmetric = all(np.array_equal(w, flipped) for flipped in flips)
    assert symmetric == ("symmetric-kernel" in case.tags)


def test_pool_cases_cover_odd_sizes_overlap_and_ties():
    assert any("odd-size" in c.tags and "ties" not in c.tags for c in POOL)
    assert any("overlap" in c.tags and "ties" in c.tags for c in POOL)
    assert any(c.size == 3 and c.stride == 2 for c in POOL)
    assert any("constant" in c.tags for c in POOL)


@pytest.mark.parametrize("case", ORDINARY_POOL, ids=str)
def test_pool_inputs_have_ties_only_where_tagged(case):
    windows = _pool_windows(make_inputs(case)["x"], case.size, case.stride)
    first = windows.argmax(axis=-1)
    last = windows.shape[-1] - 1 - windows[..., ::-1].argmax(axis=-1)
    routed_differently = int(np.sum(first != last))
    if "ties" in case.tags:
        assert routed_differently > 0, "no window where first and last maximum differ"
    else:
        assert routed_differently == 0, "accidental tie in a continuous case"


@pytest.mark.parametrize("case", cases_for("relu"), ids=str)
def test_relu_inputs_have_exact_zeros_only_where_tagged(case):
    x = make_inputs(case)["x"]
    zeros = x == 0
    if "exact-zeros" in case.tags:
        assert zeros.any() and np.signbit(x[zeros]).any() and not np.signbit(x[zeros]).all()
    elif "neg-zero" in case.tags and case.special_in == "x":
        assert zeros.any() and np.signbit(x[zeros]).all()
    else:
        assert not zeros.any()


def test_cross_entropy_cases_reach_logits_of_1000_and_1e4():
    magnitudes = {c.scale for c in cases_for("softmax_cross_entropy")}
    assert {1000.0, 1e4} <= magnitudes
    cases = cases_for("softmax_cross_entropy")
    largest = max(np.abs(make_inputs(case)["logits"]).max(initial=0) for case in cases)
    assert largest > 1e4


@pytest.mark.parametrize("case", CASES, ids=str)
def test_inputs_are_deterministic_and_shaped_as_declared(case):
    first, second = make_inputs(case), make_inputs(case)
    assert first.keys() == second.keys()
    for name in first:
        assert np.array_equal(first[name], second[name], equal_nan=True), name
        if case.layout == "C":
            assert first[name].flags.c_contiguous, name
    if "dy" in first:
        assert first["dy"].shape == output_shape(case)
        assert first["dy"].dtype == case.np_dtype
    for name in ("x", "w", "logits"):
        if name in first:
            assert first[name].dtype == case.np_dtype


def test_ids_and_descriptions_read_well():
    case = find_case("conv-n2c3f4-h7w5-k3x2-s2-p1-f64")
    assert case.describe() == "conv2d, x (2, 3, 7, 5), w (4, 3, 3, 2), stride 2, padding 1, float64"
    assert str(case) == case.id
    assert "ties" in find_case("pool-n2c2-h7w5-k3-s2-ties-f32").describe()


def test_every_tag_used_is_documented_and_every_documented_tag_is_used():
    used = {tag for case in CASES for tag in case.tags}
    assert used == set(TAGS)


@pytest.mark.parametrize(
    "fields",
    [
        {"op": "conv3d", "x_shape": (1, 1, 3, 3)},
        {"op": "relu", "x_shape": (2, 3), "dtype": "float16"},
        {"op": "relu", "x_shape": (2, 3), "tags": ("shiny",)},
        {"op": "conv2d", "x_shape": (1, 3, 3), "w_shape": (1, 1, 3, 3)},
        {"op": "relu", "x_shape": (2, 3), "tags": ("nan",)},  # NaN in which array?
        {"op": "relu", "x_shape": (2, 3), "special_in": "x"},  # special value not named
        {"op": "relu", "x_shape": (2, 3), "tags": ("inf",), "special_in": "w"},  # no w
        {"op": "relu", "x_shape": (2, 3), "tags": ("nan", "inf"), "special_in": "x"},
        {"op": "relu", "x_shape": (2, 3), "tags": ("fortran",)},  # without "non-contiguous"
        {"op": "relu", "x_shape": (2, 3), "tags": ("non-contiguous", "fortran", "sliced")},
        {"op": "softmax_cross_entropy", "x_shape": (2, 3), "label_dtype": "float32"},
    ],
)
def test_malformed_case_is_rejected(fields):
    with pytest.raises(ValueError):
        OpCase(**fields)


def test_empty_family_covers_every_op_in_both_dtypes_with_n_zero():
    empty = [case for case in CASES if "empty" in case.tags]
    assert {(case.op, case.dtype) for case in empty} == {(op, d) for op in OPS for d in DTYPES}
    for case in empty:
        assert case.x_shape[0] == 0
        for name, array in make_inputs(case).items():
            assert name in ("w", "b") or array.shape[0] == 0, name


def test_label_dtype_family_has_every_width_and_signedness_and_the_labels_have_it():
    cases = [case for case in CASES if "label-dtypes" in case.tags]
    assert {case.label_dtype for case in cases} == {"int8", "int32", "uint8", "uint32", "uint64"}
    for case in cases:
        assert make_inputs(case)["labels"].dtype == np.dtype(case.label_dtype)


SPECIAL_CASES = [case for case in CASES if case.special_tags]


def test_special_values_reach_every_array_of_every_op_in_both_dtypes():
    arrays = {
        "conv2d": {"x", "w", "b", "dy"},
        "linear": {"x", "w", "b", "dy"},
        "relu": {"x", "dy"},
        "maxpool2d": {"x", "dy"},
        "softmax_cross_entropy": {"logits"},
    }
    for value in ("nan", "inf", "neg-zero"):
        for dtype in DTYPES:
            seen = {
                (case.op, case.special_in)
                for case in SPECIAL_CASES
                if value in case.tags and case.dtype == dtype
            }
            assert seen == {(op, name) for op, names in arrays.items() for name in names}


@pytest.mark.parametrize("case", SPECIAL_CASES, ids=str)
def test_special_values_sit_in_the_named_array_only(case):
    plain = make_inputs(replace(case, tags=(), special_in=""))
    for name, array in make_inputs(case).items():
        if name != case.special_in:
            assert np.array_equal(array, plain[name]), name
            continue
        if "nan" in case.tags:
            assert np.isnan(array).any() and not np.isinf(array).any()
        elif "inf" in case.tags:
            assert (array == np.inf).any() and (array == -np.inf).any()
            assert not np.isnan(array).any()
        else:
            zeros = array == 0
            assert zeros.any() and np.signbit(array[zeros]).any() and np.isfinite(array).all()
        if case.op != "maxpool2d" or name != "x":
            continue
        first_window = array[0, 0, : case.size, : case.size]
        if "neg-zero" not in case.tags:
            assert np.sum(~np.isfinite(first_window)) >= 2, "two special values in one window"
        else:  # a tie between -0.0 and 0.0, then -1, -2, ...
            assert first_window.max() == 0 and np.sum(first_window == 0) == 2
            assert np.signbit(first_window[0, 0]) and not np.signbit(first_window[0, -1])
