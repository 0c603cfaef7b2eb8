"""Call any implementation of the op contract on a catalogue case, and check its outputs.

NumPy only, reused by ``tinycnn check`` (which runs `run_contract` in a child process and
`check_outputs` in the parent). Outputs are named like the oracle's:

==========================  ======================  ==========================
op                          forward                 backward
==========================  ======================  ==========================
conv2d                      y                       dx, dw, db
relu                        y                       dx
maxpool2d                   y                       dx
linear                      y                       dx, dw, db
softmax_cross_entropy       loss                    dlogits
==========================  ======================  ==========================
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
from tinycnn.parity_tests.cases import OpCase, make_inputs
from tinycnn.parity_tests.compare import assert_close

# Contract function names per op and direction; softmax_cross_entropy does both in one call.
FUNCTIONS = {
    ("conv2d", "forward"): "conv2d_forward",
    ("conv2d", "backward"): "conv2d_backward",
    ("relu", "forward"): "relu_forward",
    ("relu", "backward"): "relu_backward",
    ("maxpool2d", "forward"): "maxpool2d_forward",
    ("maxpool2d", "backward"): "maxpool2d_backward",
    ("linear", "forward"): "linear_forward",
    ("linear", "backward"): "linear_backward",
    ("softmax_cross_entropy", "forward"): "softmax_cross_entropy",
    ("softmax_cross_entropy", "backward"): "softmax_cross_entropy",
}
OUTPUTS = {
    ("conv2d", "forward"): ("y",),
    ("conv2d", "backward"): ("dx", "dw", "db"),
    ("relu", "forward"): ("y",),
    ("relu", "backward"): ("dx",),
    ("maxpool2d", "forward"): ("y",),
    ("maxpool2d", "backward"): ("dx",),
    ("linear", "forward"): ("y",),
    ("linear", "backward"): ("dx", "dw", "db"),
    ("softmax_cross_entropy", "forward"): ("loss",),
    ("softmax_cross_entropy", "backward"): ("dlogits",),
}
# Which input each gradient belongs to (for gradient checks).
GRADIENT_OF = {"dx": "x", "dw": "w", "db": "b", "dlogits": "logits"}
DIRECTIONS = ("forward", "backward")


def stage_name(direction: str, output: str) -> str:
    """How messages name an output: ``"forward"``, ``"forward loss"``, ``"backward dx"``."""
    return direction if output == "y" else f"{direction} {output}"


def call_op(ops: ModuleType, case: OpCase, direction: str, inputs: dict[str, np.ndarray]) -> object:
    """Call the contract function of ``case.op`` and ``direction`` on ``inputs``; return its result.

    Raises
    ------
    AssertionError
        If ``ops`` has no such function.
    """
    name = FUNCTIONS[(case.op, direction)]
    function = getattr(ops, name, None)
    if not callable(function):
        raise AssertionError(f"{case.id}: {direction}: the implementation has no function {name}")
    i = inputs
    if (case.op, direction) == ("conv2d", "forward"):
        return function(i["x"], i["w"], i["b"], stride=case.stride, padding=case.padding)
    if (case.op, direction) == ("conv2d", "backward"):
        return function(i["dy"], i["x"], i["w"], i["b"], stride=case.stride, padding=case.padding)
    if (case.op, direction) == ("maxpool2d", "forward"):
        return function(i["x"], size=case.size, stride=case.stride)
    if (case.op, direction) == ("maxpool2d", "backward"):
        return function(i["dy"], i["x"], size=case.size, stride=case.stride)
    if (case.op, direction) == ("relu", "forward"):
        return function(i["x"])
    if (case.op, direction) == ("relu", "backward"):
        return function(i["dy"], i["x"])
    if (case.op, direction) == ("linear", "forward"):
        return function(i["x"], i["w"], i["b"])
    if (case.op, direction) == ("linear", "backward"):
        return function(i["dy"], i["x"], i["w"], i["b"])
    return function(i["logits"], i["labels"])


def _name_outputs(result: object, case: OpCase, direction: str) -> dict[str, object]:
    names = OUTPUTS[(case.op, direction)]
    function = FUNCTIONS[(case.op, direction)]
    if case.op == "softmax_cross_entropy":
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise AssertionError(
                f"{case.id}: {direction}: {function} must return "
                f"(loss, dlogits), got {type(result).__name__}"
            )
        return {names[0]: result[0 if direction == "forward" else 1]}
    if len(names) == 1:
        return {names[0]: result}
    if not isinstance(result, (tuple, list)) or len(result) != len(names):
        raise AssertionError(
            f"{case.id}: {direction}: {function} must return a tuple "
            f"({', '.join(names)}), got {type(result).__name__}"
        )
    return dict(zip(names, result, strict=True))


def run_contract(ops: ModuleType, case: OpCase, direction: str) -> dict[str, object]:
    """Run one direction of one case on an implementation, checking that inputs stay unmodified.

    Parameters
    ----------
    ops : module
        Anything with the contract functions (``tinycnn.reference.ops``, a student file).
    case : OpCase
    direction : {"forward", "backward"}

    Returns
    -------
    dict of str to object
        The named outputs (see the module table), exactly as returned (not yet checked).

    Raises
    ------
    AssertionError
        If a function is missing, returns the wrong number of outputs or modifies an input.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    inputs = make_inputs(case)
    pristine = {name: array.copy() for name, array in inputs.items()}
    result = call_op(ops, case, direction, inputs)
    for name, before in pristine.items():
        if not np.array_equal(inputs[name], before, equal_nan=before.dtype.kind == "f"):
            function = FUNCTIONS[(case.op, direction)]
            raise AssertionError(f"{case.id}: {direction}: {function} modified its input {name}")
    return _name_outputs(result, case, direction)


def check_outputs(
    actual: dict[str, object], expected: dict[str, np.ndarray], case: OpCase, direction: str
) -> None:
    """Assert every output of ``direction`` matches ``expected`` (shape, dtype, values).

    Raises
    ------
    AssertionError
        Naming the case and the first output that differs.
    """
    for output in OUTPUTS[(case.op, direction)]:
        assert_close(
            actual[output],
            expected[output],
            op=case.op,
            stage=stage_name(direction, output),
            case_id=case.id,
        )


def scalar_objective(ops: ModuleType, case: OpCase, inputs: dict[str, np.ndarray]) -> float:
    """The scalar whose gradient the backward pass computes: ``sum(y * dy)``, or the loss.

    Used by the gradient checks: perturb an input in place, call this, restore.
    """
    result = call_op(ops, case, "forward", inputs)
    if case.op == "softmax_cross_entropy":
        return float(result[0])
    return float(np.sum(np.asarray(result, dtype=np.float64) * inputs["dy"]))
