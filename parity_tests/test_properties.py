"""Property-based parity: hypothesis draws shapes, kernels, stride and padding; PyTorch decides.

Every drawn configuration becomes an `OpCase`, so the same inputs, oracle and comparison serve
here as in the catalogue; a third of them carry a catalogue family (another memory layout, or
NaN, +-inf or -0.0 in one array), which compose with any configuration. Under ``--impl`` a
submission answers for the student contract only, as in ``tinycnn check`` and the catalogue's
tests: drawn cases outside it (`OpCase.graded` is False) are rejected. Under a course
``--impl-api`` the strategies draw only what that API grades in ``tinycnn check --api``
(float64; square kernels for deeplearning-ai; no pooling ties), and
:func:`tinycnn.grading.adapters.case_outside_api` rejects anything else. Derandomized (the same
examples on every run, so CI is deterministic) and few examples each, to stay fast.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from tinycnn.parity_tests.cases import DTYPES, LAYOUTS, SPECIAL_VALUES, OpCase
from tinycnn.parity_tests.torch_oracle import assert_matches_torch

from tinycnn.grading.adapters import case_outside_api

PROPERTY_SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None)
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
ARRAYS = {
    "conv2d": ("x", "w", "b", "dy"),
    "maxpool2d": ("x", "dy"),
    "softmax_cross_entropy": ("logits",),
}
# NumPy warns where IEEE arithmetic creates a NaN (inf - inf, 0 * inf); PyTorch does not.
IEEE_WARNING = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")


def with_family(draw: st.DrawFn, case: OpCase) -> OpCase:
    """The drawn case as it is, in another memory layout, or with special values in one array:
    the catalogue's families are kinds of input, so any configuration can carry them."""
    family = draw(st.sampled_from(["plain", "layout", "special"]))
    if family == "layout":
        layout = draw(st.sampled_from(LAYOUTS))
        return replace(case, tags=(*case.tags, "non-contiguous", layout))
    if family == "special":
        value = draw(st.sampled_from(SPECIAL_VALUES))
        array = draw(st.sampled_from(ARRAYS[case.op]))
        return replace(case, tags=(*case.tags, value), special_in=array)
    return case


def dtypes(api: str) -> st.SearchStrategy[str]:
    """The dtypes drawn: both, or float64 alone for a course API (the courses' only dtype)."""
    return st.sampled_from(DTYPES if api == "tinycnn" else ("float64",))


@st.composite
def conv_cases(draw: st.DrawFn, api: str = "tinycnn") -> OpCase:
    """Any valid conv2d: kernels 1-5 (not always square, square for deeplearning-ai), stride
    1-3, padding 0-2."""
    KH = draw(st.integers(1, 5))
    KW = KH if api == "deeplearning-ai" else draw(st.integers(1, 5))
    stride, padding = draw(st.integers(1, 3)), draw(st.integers(0, 2))
    # The smallest input the padded kernel fits, up to 7 more.
    H_min, W_min = max(1, KH - 2 * padding), max(1, KW - 2 * padding)
    H, W = draw(st.integers(H_min, H_min + 7)), draw(st.integers(W_min, W_min + 7))
    N, C, F = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    case = OpCase(
        "conv2d",
        (N, C, H, W),
        (F, C, KH, KW),
        stride=stride,
        padding=padding,
        dtype=draw(dtypes(api)),
        seed=draw(SEEDS),
    )
    return with_family(draw, case)


@st.composite
def pool_cases(draw: st.DrawFn, api: str = "tinycnn") -> OpCase:
    """Any valid maxpool2d: window 1-4, stride 1-4 (overlapping or not), odd sizes; with ties
    in the windows except for a course API."""
    size, stride = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    H, W = draw(st.integers(size, size + 7)), draw(st.integers(size, size + 7))
    N, C = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    tags = ("ties",) if api == "tinycnn" and draw(st.booleans()) else ()
    case = OpCase(
        "maxpool2d",
        (N, C, H, W),
        size=size,
        stride=stride,
        tags=tags,
        dtype=draw(dtypes(api)),
        seed=draw(SEEDS),
    )
    return with_family(draw, case)


@st.composite
def cross_entropy_cases(draw: st.DrawFn, api: str = "tinycnn") -> OpCase:
    """Batches of 1-6 samples, 2-6 classes, logits of magnitude 0.1 to 1e4."""
    N, K = draw(st.integers(1, 6)), draw(st.integers(2, 6))
    scale = draw(st.sampled_from([0.1, 1.0, 30.0, 1000.0, 1e4]))
    case = OpCase(
        "softmax_cross_entropy",
        (N, K),
        scale=scale,
        dtype=draw(dtypes(api)),
        seed=draw(SEEDS),
    )
    return with_family(draw, case)


def _held_to(case: OpCase, impl_given: bool, impl_api: str) -> None:
    """Reject a drawn case outside the student contract when a submission is under test, and
    one the course API sets aside (``check --api`` does not grade it)."""
    assume(case.graded or not impl_given)
    functions = [f"{case.op}_forward", f"{case.op}_backward"]
    if case.op == "softmax_cross_entropy":
        functions = [case.op]
    assume(all(case_outside_api(impl_api, f, case) is None for f in functions))


@IEEE_WARNING
@PROPERTY_SETTINGS
@given(data=st.data())
def test_conv2d_matches_torch(ops, impl_given, impl_api, data):
    case = data.draw(conv_cases(impl_api), label="case")
    _held_to(case, impl_given, impl_api)
    assert_matches_torch(ops, case, "forward")
    assert_matches_torch(ops, case, "backward")


@IEEE_WARNING
@PROPERTY_SETTINGS
@given(data=st.data())
def test_maxpool2d_matches_torch(ops, impl_given, impl_api, data):
    case = data.draw(pool_cases(impl_api), label="case")
    _held_to(case, impl_given, impl_api)
    assert_matches_torch(ops, case, "forward")
    assert_matches_torch(ops, case, "backward")


@IEEE_WARNING
@PROPERTY_SETTINGS
@given(data=st.data())
def test_softmax_cross_entropy_matches_torch(ops, impl_given, impl_api, data):
    case = data.draw(cross_entropy_cases(impl_api), label="case")
    _held_to(case, impl_given, impl_api)
    assert_matches_torch(ops, case, "forward")
    assert_matches_torch(ops, case, "backward")
