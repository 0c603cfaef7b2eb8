"""PyTorch's own OpInfo sample inputs through `tinycnn.reference.functional`, forward and backward.

For each of the six ops (``conv2d``, ``max_pool2d``, ``avg_pool2d``, ``linear``, ``relu``,
``cross_entropy``) the OpInfo entry of ``torch.testing._internal.common_methods_invocations``
yields its sample inputs (``sample_inputs("cpu", dtype, requires_grad=True)``, seed 0) in float64
and float32. Each sample runs through ``torch.nn.functional`` and through the reference with the
same positional and keyword arguments (so the reference's signatures are PyTorch's); the outputs
(and max-pooling indices) must match, then the gradients of every input that requires one, for a
random upstream gradient. Comparisons use the one helper (`compare`) and the one tolerance table.

`supplementary_samples` adds what the OpInfo samples leave out (label smoothing, all targets
ignored, ties, NaN and infinities in pooling windows, ``-0.0`` in ReLU, ``padding="same"`` with
an even kernel, empty batches); they run through the same test.

``UNSUPPORTED`` lists what the reference deliberately does not do, with the reason; the summary
test prints how many OpInfo samples that leaves out.

Importing the OpInfo database takes about ten seconds, so the module is marked slow and the
samples are only generated when slow tests are selected (``pytest -m "slow or not slow"``).
"""

from __future__ import annotations

import functools
import inspect
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from tinycnn.parity_tests.compare import assert_close
from tinycnn.parity_tests.tolerances import Tolerance
from tinycnn.reference import functional

pytestmark = [
    pytest.mark.slow,
    # PyTorch's note that it copies the input for this padding; the result is what is checked.
    pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning"),
    # PyTorch's deprecation note for the legacy flags, which a supplementary sample passes.
    pytest.mark.filterwarnings("ignore:size_average and reduce args will be deprecated"),
]

DTYPES = {"f64": torch.float64, "f32": torch.float32}


@dataclass(frozen=True)
class FunctionalOp:
    """One op: its OpInfo name, reference functions and tolerance-table key.

    ``gradients`` names what the reference backward returns, by PyTorch argument name.
    """

    name: str
    opinfo_name: str
    gradients: tuple[str, ...]
    tolerance_key: str

    @property
    def forward(self) -> Callable:
        return getattr(functional, self.name)

    @property
    def backward(self) -> Callable:
        return getattr(functional, self.name + "_backward")

    @property
    def torch_function(self) -> Callable:
        return getattr(torch.nn.functional, self.name)


FUNCTIONAL_OPS = {
    op.name: op
    for op in (
        FunctionalOp("conv2d", "nn.functional.conv2d", ("input", "weight", "bias"), "conv2d"),
        FunctionalOp("max_pool2d", "nn.functional.max_pool2d", ("input",), "maxpool2d"),
        FunctionalOp("avg_pool2d", "nn.functional.avg_pool2d", ("input",), "avg_pool2d"),
        FunctionalOp("linear", "nn.functional.linear", ("input", "weight", "bias"), "linear"),
        FunctionalOp("relu", "nn.functional.relu", ("input",), "relu"),
        FunctionalOp(
            "cross_entropy",
            "nn.functional.cross_entropy",
            ("input", "target"),
            "softmax_cross_entropy",
        ),
    )
}

#: What the reference deliberately leaves out, and why. Only dtypes: every float64 and float32
#: OpInfo sample of the six ops is supported.
UNSUPPORTED = {
    "dtypes other than float32 and float64": (
        "the reference computes in the contract's two dtypes; float16/bfloat16 need PyTorch's "
        "float32 accumulation and rounding to match, integer dtypes its overflow rules, complex "
        "dtypes conjugate gradients: all out of a NumPy teaching reference's scope"
    ),
}

_INDICES_EXACT = Tolerance(0.0, 0.0, "indices are positions: exact")


# ---------------------------------------------------------------------------------------------
# Samples
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One call: positional and keyword arguments as PyTorch tensors, and a readable id."""

    op: str
    dtype: str
    id: str
    input: torch.Tensor
    args: tuple
    kwargs: dict


def _opinfo(name: str):
    from torch.testing._internal.common_methods_invocations import op_db  # ~10 s to import

    (info,) = (entry for entry in op_db if entry.name == name and entry.variant_test_name == "")
    return info


@functools.cache
def opinfo_samples(op: str, dtype: str) -> tuple[Sample, ...]:
    """The OpInfo samples of ``op`` in ``dtype``, generated with torch seed 0."""
    torch.manual_seed(0)
    generated = _opinfo(FUNCTIONAL_OPS[op].opinfo_name).sample_inputs(
        "cpu", DTYPES[dtype], requires_grad=True
    )
    return tuple(
        Sample(op, dtype, f"{op}-{dtype}-opinfo{k:04d}-{_describe(s)}", s.input, s.args, s.kwargs)
        for k, s in enumerate(generated)
    )


def _describe(s) -> str:
    def short(value):
        if isinstance(value, torch.Tensor):
            return "x".join(map(str, value.shape)) or "scalar"
        return str(value).replace(" ", "")

    parts = [short(s.input), *map(short, s.args)]
    parts += [f"{key}={short(value)}" for key, value in s.kwargs.items()]
    return "-".join(parts)


def _tensor(values, dtype, requires_grad=True):
    return torch.tensor(values, dtype=dtype, requires_grad=requires_grad)


def _random(shape, dtype, seed, requires_grad=True, scale=3.0):
    generator = torch.Generator().manual_seed(seed)
    tensor = torch.randn(shape, dtype=dtype, generator=generator) * scale
    return tensor.requires_grad_(requires_grad)


def supplementary_samples(op: str, dtype: str) -> tuple[Sample, ...]:
    """Cases the OpInfo samples leave out, each named by what it probes."""
    t = DTYPES[dtype]
    nan, inf = float("nan"), float("inf")
    cases: dict[str, tuple] = {}  # name -> (input, args, kwargs)
    if op == "conv2d":
        cases["same-even-kernel"] = (
            _random((2, 3, 5, 6), t, 1),
            (_random((4, 3, 2, 4), t, 2), _random((4,), t, 3)),
            {"padding": "same"},
        )
        cases["same-dilated-groups"] = (
            _random((2, 4, 7, 5), t, 4),
            (_random((6, 2, 3, 2), t, 5),),
            {"padding": "same", "dilation": (2, 3), "groups": 2},
        )
        cases["empty-batch"] = (
            _random((0, 2, 5, 5), t, 6),
            (_random((3, 2, 3, 3), t, 7), _random((3,), t, 8)),
            {"stride": 2, "padding": 1},
        )
        cases["alexnet-conv2-shape"] = (  # 2 groups, 5x5, padding 2, as AlexNet's conv2 (small)
            _random((2, 8, 9, 9), t, 9),
            (_random((12, 4, 5, 5), t, 10), _random((12,), t, 11)),
            {"padding": 2, "groups": 2},
        )
    elif op == "max_pool2d":
        ties = torch.tensor([[[[1, 3, 3, 0], [3, 2, 3, 3], [0, 3, 1, 3], [3, 3, 3, 2]]]], dtype=t)
        cases["ties-overlapping"] = (ties.requires_grad_(), (3,), {"stride": 1, "padding": 1})
        cases["nan-windows"] = (
            _tensor([[[[1, nan, 2, nan], [nan, 5, -inf, 0], [inf, 1, nan, 3]]]], t),
            ((2, 2),),
            {"stride": 1, "return_indices": True},
        )
        cases["all-minus-inf-padded"] = (
            torch.full((1, 2, 3, 4), -inf, dtype=t, requires_grad=True),
            (3,),
            {"stride": 2, "padding": 1, "ceil_mode": True, "return_indices": True},
        )
        cases["dilated-ceil-unbatched"] = (
            _random((3, 7, 8), t, 12),
            ((3, 2),),
            {"stride": (2, 3), "padding": (1, 1), "dilation": (2, 3), "ceil_mode": True},
        )
    elif op == "avg_pool2d":
        cases["ceil-beyond-padding-include-pad"] = (
            _random((2, 2, 6, 7), t, 13),
            (3, 2, 1, True, True, None),
            {},
        )
        cases["ceil-beyond-padding-exclude-pad"] = (
            _random((2, 2, 6, 7), t, 14),
            (3,),
            {"stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False},
        )
        cases["unbatched-rectangular"] = (
            _random((3, 5, 8), t, 15),
            ((2, 4),),
            {"stride": (1, 3), "padding": (1, 2)},
        )
        cases["infinities"] = (_tensor([[[[1, inf], [2, 3], [-inf, 4]]]], t), (2, 1), {})
    elif op == "linear":
        cases["4d-no-bias"] = (_random((2, 3, 1, 5), t, 16), (_random((4, 5), t, 17),), {})
        cases["empty-rows"] = (
            _random((2, 0, 5), t, 18),
            (_random((4, 5), t, 19), _random((4,), t, 20)),
            {},
        )
    elif op == "relu":
        cases["zeros-nan-inf"] = (_tensor([-0.0, 0.0, nan, inf, -inf, -1.5, 2.5], t), (), {})
        cases["empty"] = (_random((0, 3), t, 21), (), {})
    elif op == "cross_entropy":
        logits = functools.partial(_random, dtype=t, scale=4.0)
        labels = torch.tensor([0, 2, 1, 2, 0])
        weight = torch.tensor([0.5, 2.0, 1.25], dtype=t)
        for reduction in ("mean", "sum", "none"):
            cases[f"smoothing-weight-ignore-{reduction}"] = (
                logits((5, 3), seed=22),
                (labels,),
                {
                    "weight": weight,
                    "ignore_index": 2,
                    "reduction": reduction,
                    "label_smoothing": 0.2,
                },
            )
            cases[f"smoothing-probabilities-weight-{reduction}"] = (
                logits((4, 3, 2), seed=23),
                (
                    torch.softmax(
                        _random((4, 3, 2), t, 24, requires_grad=False), 1
                    ).requires_grad_(),
                ),
                {"weight": weight, "reduction": reduction, "label_smoothing": 0.3},
            )
        cases["smoothing-spatial"] = (
            logits((2, 3, 2, 2), seed=25),
            (torch.tensor([[[0, 1], [2, 1]], [[1, 1], [0, 2]]]),),
            {"label_smoothing": 0.1},
        )
        cases["all-ignored-mean-is-nan"] = (
            logits((3, 3), seed=26),
            (torch.tensor([1, 1, 1]),),
            {"ignore_index": 1},
        )
        cases["unbatched-class-index"] = (logits((4,), seed=27), (torch.tensor(3),), {})
        cases["unbatched-probabilities"] = (
            logits((4,), seed=28),
            (torch.softmax(_random((4,), t, 29, requires_grad=False), 0).requires_grad_(),),
            {"reduction": "sum"},
        )
        cases["large-logits"] = (
            _tensor([[1e4, -1e4, 0.0], [3e3, 3e3, -5e3]], t),
            (torch.tensor([1, 2]),),
            {"weight": weight},
        )
        cases["legacy-size-average-false"] = (
            logits((3, 3), seed=30),
            (torch.tensor([0, 1, 2]),),
            {"size_average": False},
        )
    return tuple(
        Sample(op, dtype, f"{op}-{dtype}-extra-{name}", x, args, kwargs)
        for name, (x, args, kwargs) in cases.items()
    )


def all_samples(op: str, dtype: str) -> tuple[Sample, ...]:
    return opinfo_samples(op, dtype) + supplementary_samples(op, dtype)


# ---------------------------------------------------------------------------------------------
# The check
# ---------------------------------------------------------------------------------------------


def _numpy(value):
    """Tensors become NumPy arrays with the same strides (non-contiguous samples stay so)."""
    if isinstance(value, torch.Tensor):
        return np.array(value.detach().numpy(), copy=True, order="K")
    return value


def check_sample(sample: Sample) -> None:
    """Forward (and indices), then every gradient, reference against PyTorch."""
    op = FUNCTIONAL_OPS[sample.op]
    bound = inspect.signature(op.forward).bind(sample.input, *sample.args, **sample.kwargs)
    tensors = {name: v for name, v in bound.arguments.items() if isinstance(v, torch.Tensor)}
    args = [_numpy(a) for a in sample.args]
    kwargs = {key: _numpy(value) for key, value in sample.kwargs.items()}
    x = _numpy(sample.input)
    originals = [a.copy() for a in (x, *args, *kwargs.values()) if isinstance(a, np.ndarray)]
    key, case = op.tolerance_key, sample.id

    expected = op.torch_function(sample.input, *sample.args, **sample.kwargs)
    actual = op.forward(x, *args, **kwargs)
    if isinstance(expected, tuple):  # max_pool2d(..., return_indices=True)
        assert isinstance(actual, tuple), f"{case}: expected (output, indices)"
        expected, expected_indices = expected
        actual, actual_indices = actual
        assert_close(
            actual_indices,
            expected_indices.numpy(),
            op=key,
            stage="forward indices",
            case_id=case,
            tol=_INDICES_EXACT,
        )
    assert_close(actual, _numpy(expected), op=key, stage="forward", case_id=case)

    seed = zlib.crc32(case.encode())
    grad_output = _random(expected.shape, expected.dtype, seed, requires_grad=False, scale=1.0)
    leaves = [name for name in op.gradients if name in tensors and tensors[name].requires_grad]
    expected_grads = torch.autograd.grad(
        expected, [tensors[name] for name in leaves], grad_output, allow_unused=True
    )
    actual_grads = op.backward(grad_output.numpy(), x, *args, **kwargs)
    if not isinstance(actual_grads, tuple):
        actual_grads = (actual_grads,)
    actual_grads = dict(zip(op.gradients, actual_grads, strict=True))
    for name, expected_grad in zip(leaves, expected_grads, strict=True):
        if expected_grad is None:
            continue
        assert_close(
            actual_grads[name],
            expected_grad.numpy(),
            op=key,
            stage=f"backward grad_{name}",
            case_id=case,
        )
    modified = [a for a in (x, *args, *kwargs.values()) if isinstance(a, np.ndarray)]
    for before, after in zip(originals, modified, strict=True):
        assert np.array_equal(before, after, equal_nan=True), f"{case}: an input was modified"


# ---------------------------------------------------------------------------------------------
# Parametrization: only when slow tests are selected (the OpInfo import is slow).
# ---------------------------------------------------------------------------------------------


def _slow_tests_selected(config: pytest.Config) -> bool:
    expression = config.getoption("markexpr")
    if not expression:
        return True
    try:
        from _pytest.mark.expression import Expression
    except ImportError:  # pytest moved it: be safe and generate the samples
        return True
    return Expression.compile(expression).evaluate(lambda name, **_: name == "slow")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sample" not in metafunc.fixturenames:
        return
    samples = []
    if _slow_tests_selected(metafunc.config):
        samples = [
            sample for op in FUNCTIONAL_OPS for dtype in DTYPES for sample in all_samples(op, dtype)
        ]
    metafunc.parametrize("sample", samples, ids=[sample.id for sample in samples])


def test_sample_matches_pytorch(sample):
    check_sample(sample)


def test_unsupported_list_is_short_and_printed(capsys):
    """Counts the OpInfo samples left out (other dtypes) and prints them with the reason."""
    lines, left_out, run = [], 0, 0
    for op in FUNCTIONAL_OPS.values():
        info = _opinfo(op.opinfo_name)
        others = sorted(
            str(d).removeprefix("torch.")
            for d in info.dtypes
            if d not in (torch.float32, torch.float64)
        )
        torch.manual_seed(0)
        count = sum(len(list(info.sample_inputs("cpu", getattr(torch, d)))) for d in others)
        left_out += count
        run += sum(len(opinfo_samples(op.name, dtype)) for dtype in DTYPES)
        lines.append(f"  {op.name}: {count} samples in {', '.join(others)}")
    with capsys.disabled():
        print(f"\nOpInfo samples run in float64 and float32: {run}")
        for reason_name, reason in UNSUPPORTED.items():
            print(f"Left out, {reason_name} ({left_out} samples): {reason}")
        print("\n".join(lines))
    assert len(UNSUPPORTED) <= 3, "the unsupported list is not a way out"
    assert run > 3000, f"expected the ~1,500 OpInfo samples per dtype, ran {run}"


@pytest.mark.parametrize("dtype", [torch.float16, torch.int64, torch.complex64], ids=str)
def test_unsupported_dtypes_are_refused_with_one_line(dtype):
    x = np.ones((1, 1, 4, 4), dtype=torch.empty(0, dtype=dtype).numpy().dtype)
    w = np.ones((1, 1, 3, 3), dtype=x.dtype)
    with pytest.raises(ValueError, match="must be float32 or float64"):
        functional.conv2d(x, w)
