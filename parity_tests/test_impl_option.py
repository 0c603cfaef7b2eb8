"""``pytest parity_tests --impl FILE`` grades any file: a buggy one fails exactly where expected.

The buggy fixture's bugs are each visible only in some catalogue cases; the expected failures are
predicted here from the cases' tags, so the test proves both that the suite catches every bug and
that the catalogue holds the cases that expose it. Each run is a fresh pytest in a subprocess
(the option is read once per session); the two slow runs go in parallel.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tinycnn.parity_tests.cases import cases_for
from tinycnn.parity_tests.test_op_gradcheck import GRADCHECK_CASES

HERE = Path(__file__).resolve().parent
TEST_OPS = HERE / "test_ops.py"
FIXTURES = HERE / "fixtures"


# The gradient checks of the cheap ops (conv's take longer with a loop implementation).
GRADCHECKS = [
    f"{HERE / 'test_op_gradcheck.py'}::test_backward_matches_finite_differences[{case.id}]"
    for case in GRADCHECK_CASES
    if case.op != "conv2d"
]


def _pytest_command(impl: Path | str, *tests: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        *(tests or [str(TEST_OPS)]),
        "--impl",
        str(impl),
        "-q",
        "-p",
        "no:cacheprovider",
        "--tb=no",
        "-rf",
    ]


def _environment() -> dict[str, str]:
    # Wide "terminal" so the summary keeps whole failure messages; one thread per run.
    return {**os.environ, "COLUMNS": "1000", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def runs() -> dict[str, subprocess.CompletedProcess]:
    """Run test_ops.py (and some gradient checks) on the buggy and the loop fixture at once."""
    started = {
        name: subprocess.Popen(
            _pytest_command(FIXTURES / f"{name}.py", str(TEST_OPS), *GRADCHECKS),
            cwd=HERE.parent,
            env=_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in ("buggy_ops", "loop_ops")
    }
    results = {}
    for name, process in started.items():
        output, _ = process.communicate(timeout=300)
        results[name] = subprocess.CompletedProcess(process.args, process.returncode, output)
    return results


def _failures(output: str) -> dict[str, str]:
    """``{"test_name[case-id]": message}`` from pytest's ``FAILED`` summary lines."""
    pattern = re.compile(r"^FAILED \S*::(\S+)(?: - (.*))?$", re.MULTILINE)
    return {match.group(1): match.group(2) or "" for match in pattern.finditer(output)}


def _expected_buggy_failures() -> set[str]:
    """Which tests the bugs in fixtures/buggy_ops.py break, predicted from the case tags."""
    # (test, op of its cases, which cases break)
    predictions = [
        # A flipped kernel changes y and dx unless the kernel is symmetric...
        ("test_conv2d_forward", "conv2d", lambda case: "asymmetric-kernel" in case.tags),
        # ... and dw comes out flipped for every kernel larger than 1x1.
        ("test_conv2d_backward", "conv2d", lambda case: case.w_shape[2:] != (1, 1)),
        ("test_relu_forward", "relu", lambda case: case.dtype == "float32"),
        ("test_relu_backward", "relu", lambda case: "exact-zeros" in case.tags),
        (
            "test_relu_backward_is_zero_where_x_is_not_positive",
            "relu",
            lambda case: "exact-zeros" in case.tags,
        ),
        ("test_maxpool2d_backward", "maxpool2d", lambda case: "ties" in case.tags),
        ("test_linear_backward", "linear", lambda case: True),
        (
            "test_softmax_cross_entropy_forward",
            "softmax_cross_entropy",
            lambda case: "large-logits" in case.tags,
        ),
        (
            "test_softmax_cross_entropy_backward",
            "softmax_cross_entropy",
            lambda case: "large-logits" in case.tags,
        ),
        (
            "test_softmax_cross_entropy_is_finite_for_large_logits",
            "softmax_cross_entropy",
            lambda case: "large-logits" in case.tags,
        ),
    ]
    expected = {
        f"{test}[{case.id}]"
        for test, op, breaks in predictions
        for case in cases_for(op)
        if breaks(case) and case.graded  # --impl runs the student contract only
    }
    expected |= {
        f"test_maxpool2d_backward_routes_ties_to_first_maximum[{dtype}]"
        for dtype in ("float64", "float32")
    }
    # Finite differences see the wrong bias gradient and the overflow (not a flipped kernel:
    # forward and backward are consistently flipped, so conv is not among GRADCHECKS).
    expected |= {
        f"test_backward_matches_finite_differences[{case.id}]"
        for case in GRADCHECK_CASES
        if (case.op == "linear" or "large-logits" in case.tags) and case.graded
    }
    return expected


@pytest.mark.slow
def test_buggy_implementation_fails_exactly_the_cases_that_expose_its_bugs(runs):
    run = runs["buggy_ops"]
    assert run.returncode == 1, run.stdout[-3000:]
    failures = _failures(run.stdout)
    expected = _expected_buggy_failures()
    assert set(failures) == expected, (
        f"unexpected failures: {sorted(set(failures) - expected)}\n"
        f"missed failures: {sorted(expected - set(failures))}"
    )


@pytest.mark.slow
def test_buggy_implementation_failures_name_case_and_stage(runs):
    failures = _failures(runs["buggy_ops"].stdout)
    symmetric = "conv-n2c3f4-h5w6-k3x3-s1-p1-sym-f64"
    assert (
        f"{symmetric}: backward dw: values differ" in failures[f"test_conv2d_backward[{symmetric}]"]
    )
    assert "dtype float64, expected float32" in failures["test_relu_forward[relu-n4d18-f32]"]
    assert (
        "relu-n4d18-zeros-f64: backward dx: values differ"
        in failures["test_relu_backward[relu-n4d18-zeros-f64]"]
    )


@pytest.mark.slow
def test_correct_loop_implementation_passes(runs):
    run = runs["loop_ops"]
    assert run.returncode == 0, run.stdout[-3000:]
    assert re.search(r"\d+ passed", run.stdout) and "failed" not in run.stdout


def test_missing_file_is_a_usage_error(tmp_path):
    missing = tmp_path / "no_such_file.py"
    run = subprocess.run(
        _pytest_command(missing),
        cwd=HERE.parent,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
    assert f"--impl: no such file: {missing}" in run.stderr


def test_file_that_fails_to_import_is_a_usage_error(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("def conv2d_forward(x, w, b:\n    pass\n")
    run = subprocess.run(
        _pytest_command(broken),
        cwd=HERE.parent,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
    assert "importing" in run.stderr and "SyntaxError" in run.stderr


def test_impl_runs_the_cases_check_grades_and_the_reference_runs_them_all():
    # One contract: with --impl the suite holds a file to the cases `tinycnn check` grades
    # (`OpCase.graded`); without it, every case runs against the reference.
    from tinycnn.parity_tests.cases import CASES

    def collecting(*options: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "pytest", str(TEST_OPS), "--collect-only", "-q", *options],
            cwd=HERE.parent,
            env=_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def collected(process: subprocess.Popen) -> list[str]:
        output, _ = process.communicate(timeout=120)
        return [line for line in output.splitlines() if "::" in line]

    from tinycnn.parity_tests import test_ops

    # The two collections at once (each starts its own pytest and imports torch).
    started = [collecting(), collecting("--impl", str(FIXTURES / "loop_ops.py"))]
    everything, contract = (collected(process) for process in started)
    outside = {case.id for case in CASES if not case.graded}
    marked = {
        name
        for name, function in vars(test_ops).items()
        if any(mark.name == "outside_contract" for mark in getattr(function, "pytestmark", []))
    }
    assert outside and marked, "nothing is outside the contract any more"

    def beyond(item: str) -> bool:
        test = item.split("::")[-1].split("[")[0]
        return test in marked or any(f"[{case_id}]" in item for case_id in outside)

    assert any(beyond(item) for item in everything)
    assert not any(beyond(item) for item in contract)
    assert set(contract) == {item for item in everything if not beyond(item)}
