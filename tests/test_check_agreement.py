"""One verdict: ``tinycnn check`` and ``pytest parity_tests --impl`` agree on every kept submission.

For each correct and buggy fixture, each contract function passes ``check`` exactly when none of
``parity_tests/test_ops.py``'s tests of that function fails under ``--impl`` (the suite compares
with PyTorch; ``check`` with the reference, in a sandbox). This includes the contract on impossible
arguments: ``correct_loops.py`` raises ZeroDivisionError for stride 0 and passes both.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tinycnn.reference.ops import CONTRACT_FUNCTIONS

from tinycnn.grading.grader import grade_submission
from tinycnn.grading.sandbox import Limits

FIXTURES = Path(__file__).parent / "fixtures" / "submissions"
REPO = Path(__file__).parent.parent
TEST_OPS = REPO / "parity_tests" / "test_ops.py"
KEPT = sorted(
    path.stem for path in FIXTURES.glob("*.py") if path.stem.startswith(("correct_", "buggy_"))
)


def function_of(test_name: str) -> str:
    """The contract function a test of test_ops.py exercises (from its name)."""
    name = test_name.split("[")[0].removeprefix("test_")
    for function in sorted(CONTRACT_FUNCTIONS, key=len, reverse=True):
        if name.startswith(function):
            return function
    raise AssertionError(f"test {test_name} names no contract function")


def run_pytest_impl(fixture: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m pytest ARGS --impl FIXTURE`` in a fresh process, output captured."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *args,
            "--impl",
            str(FIXTURES / f"{fixture}.py"),
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "1000", "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )


def pytest_failures(fixture: str) -> set[str]:
    run = run_pytest_impl(fixture, str(TEST_OPS), "--tb=no", "-rf", cwd=REPO)
    assert run.returncode in (0, 1), run.stdout[-2000:] + run.stderr[-2000:]
    return set(re.findall(r"^FAILED \S*::(\S+)", run.stdout, re.MULTILINE))


def test_every_function_of_the_suite_maps_to_a_contract_function():
    source = TEST_OPS.read_text()
    for name in re.findall(r"^def (test_\w+)", source, re.MULTILINE):
        function_of(name)


@pytest.mark.slow
def test_check_and_pytest_impl_agree_on_every_kept_submission():
    with ThreadPoolExecutor(max_workers=2) as pool:
        failures = dict(zip(KEPT, pool.map(pytest_failures, KEPT), strict=True))
    disagreements = []
    for fixture in KEPT:
        report = grade_submission(FIXTURES / f"{fixture}.py", limits=Limits(), train=False)
        failing = {function_of(test) for test in failures[fixture]}
        for function in CONTRACT_FUNCTIONS:
            check_passes = report.functions[function].status == "pass"
            if check_passes == (function in failing):
                disagreements.append(
                    f"{fixture}.{function}: check {report.functions[function].status}, "
                    f"pytest --impl failures "
                    f"{sorted(t for t in failures[fixture] if function_of(t) == function)[:3]}"
                )
    assert not disagreements, "\n".join(disagreements)
    assert not failures["correct_loops"]  # ... which raises ZeroDivisionError for stride 0


def test_the_stride_0_fixture_really_raises_zero_division():
    # The contract's point: a file that raises something other than ValueError for impossible
    # arguments is fine. correct_loops.py is that file (it is imported here: it is benign).
    import importlib.util

    import numpy as np

    spec = importlib.util.spec_from_file_location("correct_loops", FIXTURES / "correct_loops.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(ZeroDivisionError):
        module.conv2d_forward(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), np.ones(1), stride=0)


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["correct_vectorized", "correct_loops"])
def test_a_correct_file_passes_every_test_of_the_installed_suite(fixture, tmp_path):
    """The README's command for students, run from outside the clone, passes a correct file:
    nothing outside the student contract (special values drawn by the property tests, say)
    reaches a submission under ``--impl``."""
    run = run_pytest_impl(
        fixture, "--pyargs", "tinycnn.parity_tests", "-m", "not slow", "--tb=line", cwd=tmp_path
    )
    assert run.returncode == 0, run.stdout[-4000:]
    assert re.search(r"\b\d{3,} passed\b", run.stdout), run.stdout[-500:]
