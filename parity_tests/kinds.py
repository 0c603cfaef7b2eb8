"""One case of each kind in the default test run, every case in the slow run (CI runs both).

For tests that check one rule on every catalogue case of an op (a second code route, a snippet
that rebuilds the inputs) rather than the op's parity itself (``test_ops.py`` runs every case):
the rule meets every kind of input in the default suite, and all cases with
``pytest -m "slow or not slow"``.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from tinycnn.parity_tests.cases import OpCase


def kinds_of(case: OpCase) -> set[tuple[str, ...]]:
    """What makes ``case`` a kind of input, per op and dtype: each of its tags, the array that
    holds its special values, an empty batch, its label dtype; and the op and dtype themselves."""
    where = (case.op, case.dtype)
    kinds = {where, *((*where, "tag", tag) for tag in case.tags)}
    if case.special_in:
        kinds.add((*where, "special-in", case.special_in))
    if case.x_shape and case.x_shape[0] == 0:
        kinds.add((*where, "empty-batch"))
    kinds.add((*where, "labels", case.label_dtype))
    return kinds


def one_of_each_kind(cases: Iterable[OpCase]) -> list:
    """``cases`` as `pytest.param` values (ids: the case ids), in catalogue order: a case that
    brings a kind (`kinds_of`) no earlier case brought runs by default, the others are marked
    slow."""
    seen: set[tuple[str, ...]] = set()
    params = []
    for case in cases:
        new = kinds_of(case) - seen
        seen |= new
        params.append(pytest.param(case, id=case.id, marks=() if new else pytest.mark.slow))
    return params
