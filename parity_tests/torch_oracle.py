"""Expected outputs of every op, from ``torch.nn.functional`` and autograd, in the case's dtype.

Backward passes use the case's random upstream gradient: ``(out * dy).sum().backward()``, so a
gradient that is right only for ``dy = 1`` still fails. Cross-entropy is
``F.cross_entropy(logits, labels, reduction="mean")`` and its own backward.

Cases with special values (NaN, inf, -0.0) run with oneDNN (``torch.backends.mkldnn``) off, so
PyTorch uses its native CPU convolution in float32 as it does in float64. oneDNN, PyTorch's
default for some float32 convolutions, skips the padding instead of multiplying it: where a
padding zero meets an infinite or NaN weight (or upstream gradient) it gives a number where the
definition (``0 * inf``) and PyTorch's own float64 path give NaN. That choice depends on dtype and
shape heuristics, an implementation detail; the native path is the definition.
"""

from __future__ import annotations

import functools
import warnings
from types import ModuleType

import numpy as np
import torch
import torch.nn.functional as F
from tinycnn.parity_tests.cases import OpCase, make_inputs
from tinycnn.parity_tests.harness import check_outputs, run_contract


def expected_outputs(case: OpCase) -> dict[str, np.ndarray]:
    """Forward and backward outputs of ``case`` computed by PyTorch.

    Parameters
    ----------
    case : OpCase

    Returns
    -------
    dict of str to numpy.ndarray
        conv2d and linear: y, dx, dw, db; relu and maxpool2d: y, dx;
        softmax_cross_entropy: loss (0-d), dlogits. Fresh copies, in ``case.dtype``.
    """
    return {name: array.copy() for name, array in _expected_outputs_cached(case).items()}


@functools.cache
def _expected_outputs_cached(case: OpCase) -> dict[str, np.ndarray]:
    # The flags() context manager, not an assignment: once torch.testing._internal has been
    # imported (the OpInfo parity module does), torch refuses plain assignments to backend flags
    # ("not allowed ... after disable_global_flags"). flags() also resets oneDNN's TF32 setting,
    # with a warning about Intel GPUs that does not apply to a CPU run.
    enabled = torch.backends.mkldnn.enabled and not case.special_tags
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
        with torch.backends.mkldnn.flags(enabled=enabled):
            return _torch_outputs(case)


def _torch_outputs(case: OpCase) -> dict[str, np.ndarray]:
    inputs = make_inputs(case)
    # from_numpy shares memory; C-ordered copies keep the catalogue's arrays (of any layout) out
    # of autograd's reach. PyTorch's class indices are int64, whatever the case's label dtype.
    t = {name: torch.from_numpy(array.copy(order="C")) for name, array in inputs.items()}
    if "labels" in inputs:
        t["labels"] = torch.from_numpy(inputs["labels"].astype(np.int64))
    leaves = {
        "conv2d": ("x", "w", "b"),
        "linear": ("x", "w", "b"),
        "relu": ("x",),
        "maxpool2d": ("x",),
        "softmax_cross_entropy": ("logits",),
    }[case.op]
    for name in leaves:
        t[name].requires_grad_(True)

    if case.op == "softmax_cross_entropy":
        loss = F.cross_entropy(t["logits"], t["labels"], reduction="mean")
        loss.backward()
        return {"loss": _numpy(loss), "dlogits": _numpy(t["logits"].grad)}

    if case.op == "conv2d":
        y = F.conv2d(t["x"], t["w"], t["b"], stride=case.stride, padding=case.padding)
    elif case.op == "relu":
        y = F.relu(t["x"])
    elif case.op == "maxpool2d":
        y = F.max_pool2d(
            t["x"], kernel_size=case.size, stride=case.stride, padding=0, ceil_mode=False
        )
    else:
        y = F.linear(t["x"], t["w"], t["b"])
    (y * t["dy"]).sum().backward()
    outputs = {"y": _numpy(y)}
    for name in leaves:
        outputs["d" + name] = _numpy(t[name].grad)
    return outputs


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    array = tensor.detach().numpy().copy()
    array.setflags(write=False)  # cached: a test must not change the oracle for the next one
    return array


def assert_matches_torch(ops: ModuleType, case: OpCase, direction: str) -> None:
    """Run ``direction`` of ``case`` on ``ops`` and assert every output matches PyTorch.

    Raises
    ------
    AssertionError
        Naming the case and the stage (``"forward"``, ``"backward dw"``, ...) that differs.
    """
    check_outputs(run_contract(ops, case, direction), expected_outputs(case), case, direction)
