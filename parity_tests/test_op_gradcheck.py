"""Numerical gradient check of every op's backward pass, float64, independent of PyTorch.

For each catalogue case the scalar ``sum(y * dy)`` (or the loss) is differentiated by two-sided
finite differences (eps 1e-5) with respect to every input, and compared with the implementation's
backward pass: ``||a - n|| / (||a|| + ||n||) < GRADCHECK_MAX_REL_ERROR``. Runs on ``--impl`` too.

Left out, because the function is not differentiable there and finite differences straddle the
kink: ReLU at exact zeros (and -0.0), pooling windows with tied maxima. And NaN or inf inputs,
whose objective is not a finite number. Also left out: logits of magnitude
1e4, where the loss is ~1e4 and its float64 rounding (~1e4 * 1e-16) divided by 2 eps is already
~1e-7 of the gradient; a limit of finite differences, not of the op (magnitude 1000 stays in).
"""

from __future__ import annotations

import numpy as np
import pytest
from tinycnn.parity_tests.cases import CASES, make_inputs
from tinycnn.parity_tests.harness import GRADIENT_OF, run_contract, scalar_objective
from tinycnn.parity_tests.tolerances import GRADCHECK_EPS, GRADCHECK_MAX_REL_ERROR
from tinycnn.reference.gradcheck import numerical_gradient, relative_error

NOT_DIFFERENTIABLE = {"exact-zeros", "ties", "constant", "neg-zero"}
NOT_FINITE = {"nan", "inf"}  # finite differences of a NaN or infinite objective mean nothing
GRADCHECK_CASES = [
    case
    for case in CASES
    if case.dtype == "float64"
    and not (NOT_DIFFERENTIABLE | NOT_FINITE) & set(case.tags)
    and case.scale < 1e4
]


@pytest.mark.parametrize("case", GRADCHECK_CASES, ids=str)
def test_backward_matches_finite_differences(ops, case):
    analytic = run_contract(ops, case, "backward")
    # Finite differences perturb the inputs in place through a flat view: C order (same values).
    inputs = {name: np.ascontiguousarray(array) for name, array in make_inputs(case).items()}
    for name, gradient in analytic.items():
        numeric = numerical_gradient(
            lambda: scalar_objective(ops, case, inputs),
            inputs[GRADIENT_OF[name]],
            eps=GRADCHECK_EPS,
        )
        error = relative_error(np.asarray(gradient), numeric)
        assert error < GRADCHECK_MAX_REL_ERROR, (
            f"{case.id}: backward {name}: relative error {error:.2e} against finite differences "
            f"(limit {GRADCHECK_MAX_REL_ERROR:g})"
        )
