"""The textbook loop versions of conv2d and maxpool2d against PyTorch, on the catalogue's families.

``reference.ops`` keeps loop versions of convolution and pooling beside the fast ones, to be read
line by line. They must give PyTorch's answers on the inputs the world produces too: other memory
layouts, NaN, +-inf and -0.0 in every array, empty batches. (The ordinary cases are compared with
the fast versions in ``tests/test_reference_api.py``; running them all here would be slow.)
"""

from __future__ import annotations

import types

import pytest
from tinycnn.parity_tests.cases import CASES
from tinycnn.parity_tests.torch_oracle import assert_matches_torch
from tinycnn.reference import ops

LOOPS = types.SimpleNamespace(
    conv2d_forward=ops.conv2d_forward_loops,
    conv2d_backward=ops.conv2d_backward_loops,
    maxpool2d_forward=ops.maxpool2d_forward_loops,
    maxpool2d_backward=ops.maxpool2d_backward_loops,
)
FAMILY_CASES = [
    case
    for case in CASES
    if case.op in ("conv2d", "maxpool2d")
    and (case.special_tags or case.layout != "C" or "empty" in case.tags)
]


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # 0 * inf
@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("case", FAMILY_CASES, ids=str)
def test_loop_versions_match_torch_on_layouts_special_values_and_empty_batches(case, direction):
    assert_matches_torch(LOOPS, case, direction)


def test_the_families_reach_both_loop_versions():
    assert {case.op for case in FAMILY_CASES} == {"conv2d", "maxpool2d"}
    assert {"nan", "inf", "neg-zero", "empty", "fortran", "sliced"} <= {
        tag for case in FAMILY_CASES for tag in case.tags
    }
