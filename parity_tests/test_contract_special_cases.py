"""The nine contract functions are special cases of `tinycnn.reference.functional`.

`functional.CONTRACT_SPECIAL_CASES` writes each contract function as a call of the functional
one with the extra arguments at their defaults. On every catalogue case, forward and backward
(special values, layouts and empty batches included), the special case must agree with
`tinycnn.reference.ops` (within the tolerance table: they sum in different orders) and with
PyTorch.
"""

from __future__ import annotations

import types

import pytest
from tinycnn.parity_tests.cases import CASES
from tinycnn.parity_tests.harness import DIRECTIONS, check_outputs, run_contract
from tinycnn.parity_tests.torch_oracle import assert_matches_torch
from tinycnn.reference import functional, ops

SPECIAL_CASES = types.SimpleNamespace(**functional.CONTRACT_SPECIAL_CASES)

# inf - inf and 0 * inf make NumPy warn (PyTorch does not); only special-value cases may.
IEEE_WARNING = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
ALL_CASES = [
    pytest.param(case, marks=[IEEE_WARNING] if case.special_tags else [], id=case.id)
    for case in CASES
]


def test_every_contract_function_has_its_special_case():
    assert set(functional.CONTRACT_SPECIAL_CASES) == set(ops.CONTRACT_FUNCTIONS)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("case", ALL_CASES)
def test_contract_function_equals_its_functional_special_case(case, direction):
    expected = run_contract(ops, case, direction)
    check_outputs(run_contract(SPECIAL_CASES, case, direction), expected, case, direction)


@pytest.mark.slow  # test_ops checks reference.ops against PyTorch on the same cases already
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("case", ALL_CASES)
def test_functional_special_case_matches_torch(case, direction):
    assert_matches_torch(SPECIAL_CASES, case, direction)
