"""pytest configuration of the parity suite: the ``ops`` fixture.

``pytest parity_tests --impl path/to/student.py`` (or, from an installed package,
``pytest --pyargs tinycnn.parity_tests --impl path/to/student.py``) runs the op cases against
that file instead of ``tinycnn.reference.ops``; ``--impl`` also takes a ``.ipynb`` notebook
or one student's folder of modules, read as ``tinycnn check`` reads them. The code runs in
the pytest process, unsandboxed: ``tinycnn check`` is for code one does not trust. The
``--impl`` option (``--tinycnn-impl`` where another project's conftest.py has an ``--impl``)
and the ``slow`` marker come from the plugin :mod:`tinycnn.pytest_plugin`, which pytest
loads by entry point before it reads the command line, so the option can stand anywhere on it.
"""

from __future__ import annotations

import importlib
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest
from tinycnn.parity_tests.cases import OpCase
from tinycnn.reference.ops import CONTRACT_FUNCTIONS

from tinycnn.pytest_plugin import IMPL_KEY


@pytest.fixture(scope="session")
def ops(pytestconfig: pytest.Config) -> ModuleType:
    """The implementation under test: the ``--impl`` file, or ``tinycnn.reference.ops`` by
    default."""
    module = pytestconfig.stash.get(IMPL_KEY, None)
    if module is not None:
        return module
    return importlib.import_module("tinycnn.reference.ops")


@pytest.fixture(scope="session")
def impl_api(pytestconfig: pytest.Config) -> str:
    """The layer API the implementation under test is held to: ``--impl-api`` (``"tinycnn"``,
    the contract itself, by default and whenever the reference is under test)."""
    if pytestconfig.stash.get(IMPL_KEY, None) is None:
        return "tinycnn"
    return pytestconfig.getoption("tinycnn_impl_api") or "tinycnn"


@pytest.fixture(scope="session")
def impl_given(pytestconfig: pytest.Config) -> bool:
    """Whether a submission (``--impl``) is under test rather than the reference."""
    return pytestconfig.stash.get(IMPL_KEY, None) is not None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "outside_contract: checks the reference beyond the student contract (special values); "
        "deselected with --impl",
    )
    config.addinivalue_line(
        "markers",
        "contract_case(function, op, tags=()): a hand-written test of one contract function on "
        "one kind of case (its dtype from the test's ``dtype`` parameter), deselected under a "
        "course --impl-api that sets such a case aside, as check --api does",
    )


def _hand_written_case(item: pytest.Item) -> tuple[str, object] | None:
    """The (function, case) a ``contract_case`` test checks, as `case_outside_api` reads a case."""
    marker = item.get_closest_marker("contract_case")
    if marker is None:
        return None
    callspec = getattr(item, "callspec", None)
    dtype = callspec.params.get("dtype", np.float64) if callspec is not None else np.float64
    case = SimpleNamespace(
        op=marker.kwargs["op"],
        dtype=np.dtype(dtype).name,
        w_shape=None,
        tags=tuple(marker.kwargs.get("tags", ())),
    )
    return marker.kwargs["function"], case


#: The contract functions of each op: a test whose name or case names only the op (a property
#: test, a gradient check) exercises them all.
_OP_FUNCTIONS = {
    "conv2d": ("conv2d_forward", "conv2d_backward"),
    "relu": ("relu_forward", "relu_backward"),
    "maxpool2d": ("maxpool2d_forward", "maxpool2d_backward"),
    "linear": ("linear_forward", "linear_backward"),
    "softmax_cross_entropy": ("softmax_cross_entropy",),
}


def _functions_tested(item: pytest.Item, case: object) -> tuple[str, ...]:
    """The contract functions a test of the implementation (``ops``) calls: its
    ``contract_case`` marker's, else the one its name names (``test_relu_backward_...``), else
    those of the op its case or its name names (``test_conv2d_matches_torch``, a gradient check
    of a ``linear`` case)."""
    marker = item.get_closest_marker("contract_case")
    if marker is not None:
        return (marker.kwargs["function"],)
    name = getattr(item, "originalname", item.name)
    named = next((f for f in CONTRACT_FUNCTIONS if f in name), None)
    if named is not None:
        return (named,)
    op = (
        case.op if isinstance(case, OpCase) else next((o for o in _OP_FUNCTIONS if o in name), None)
    )
    return _OP_FUNCTIONS.get(op, ())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ``--impl``, test a submission on the student contract only, as ``tinycnn check`` does.

    The contract a submission is held to is the cases ``tinycnn check`` grades (`OpCase.graded`:
    not the special-value and empty-batch families, which the reference and PyTorch agree on but
    a textbook implementation need not get right). Parametrized cases outside it are deselected
    (pytest counts them as "deselected"), and so are hand-written tests marked
    ``outside_contract``: ``check`` and ``pytest --impl`` give one verdict. With a course
    ``--impl-api``, so are the cases that API sets aside in ``check --api``
    (:func:`tinycnn.grading.adapters.case_outside_api`: float32 inputs, pooling ties in
    maxpool2d_backward, non-square kernels for deeplearning-ai), the hand-written tests marked
    ``contract_case`` whose case the API sets aside, and the property tests draw only cases the
    API keeps (``test_properties.py``, through the ``impl_api`` fixture).
    A test of a contract function the course API does not have (deeplearning-ai has no ReLU,
    dense layer or loss), which ``check --api`` reports "not graded", is skipped with the reason
    ``"relu_forward is not graded under the deeplearning-ai API"``.
    Without ``--impl`` every case runs against the reference.
    """
    if config.stash.get(IMPL_KEY, None) is None:
        return
    from tinycnn.grading.adapters import REQUIRES, case_outside_api  # NumPy only

    api = config.getoption("tinycnn_impl_api") or "tinycnn"
    kept, outside = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        case = callspec.params.get("case") if callspec is not None else None
        if "ops" in getattr(item, "fixturenames", ()):
            missing = [f for f in _functions_tested(item, case) if f not in REQUIRES[api]]
            if missing:
                reason = f"{missing[0]} is not graded under the {api} API"
                item.add_marker(pytest.mark.skip(reason=reason))
        beyond = isinstance(case, OpCase) and not case.graded
        if isinstance(case, OpCase) and not beyond and api != "tinycnn":
            name = getattr(item, "originalname", item.name)
            function = next((f for f in CONTRACT_FUNCTIONS if f in name), None)
            beyond = case_outside_api(api, function, case) is not None
        hand_written = _hand_written_case(item)
        if hand_written is not None and not beyond:
            beyond = case_outside_api(api, *hand_written) is not None
        beyond = beyond or item.get_closest_marker("outside_contract") is not None
        (outside if beyond else kept).append(item)
    if outside:
        config.hook.pytest_deselected(items=outside)
        items[:] = kept
