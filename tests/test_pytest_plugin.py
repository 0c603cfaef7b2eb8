"""The ``pytest11`` plugin (`tinycnn.pytest_plugin`): it loads in every pytest run of an
environment where tinycnn is installed, so it must leave other projects' options alone; and
the suite keeps ``--impl`` where no one else has it.

Each case is a fresh pytest in a subprocess: options are read once per session.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
MULTI_MODULE = HERE / "fixtures" / "courses" / "multi_module"
CORRECT = HERE / "fixtures" / "submissions" / "correct_vectorized.py"
BUGGY = HERE / "fixtures" / "submissions" / "buggy_relu_zero_gradient.py"
TEST_OPS = HERE.parent / "parity_tests" / "test_ops.py"


def pytest_run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-q", "-p", "no:cacheprovider"],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "1000", "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def other_project(tmp_path) -> Path:
    """Another project of the environment whose conftest.py defines --impl and --impl-api."""
    project = tmp_path / "other"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "conftest.py").write_text(
        "def pytest_addoption(parser):\n"
        '    parser.addoption("--impl", default="c")\n'
        '    parser.addoption("--impl-api", default="v1")\n'
    )
    (project / "test_theirs.py").write_text(
        "def test_their_options(request):\n"
        '    with open("seen.txt", "w") as seen:\n'
        '        seen.write(request.config.getoption("--impl") + " "\n'
        '                   + request.config.getoption("--impl-api"))\n'
    )
    return project


def test_another_projects_impl_option_is_left_to_it(other_project):
    run = pytest_run(cwd=other_project)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (other_project / "seen.txt").read_text() == "c v1"
    run = pytest_run("--impl", "rust", "--impl-api", "v2", cwd=other_project)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (other_project / "seen.txt").read_text() == "rust v2"


def test_the_suite_takes_the_prefixed_option_beside_such_a_project(other_project):
    # The plugin's own name still works there (it reads the file: a missing one is its error).
    missing = other_project / "missing.py"
    run = pytest_run("--tinycnn-impl", str(missing), cwd=other_project)
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
    assert f"no such file: {missing}" in run.stderr


def test_impl_and_impl_api_remain_the_short_names_elsewhere(tmp_path):
    # The README's command, outside any project: --impl is the plugin's.
    run = pytest_run("--pyargs", "tinycnn.parity_tests", "--help", cwd=tmp_path)
    assert "--tinycnn-impl=PATH" in run.stdout and "--impl=PATH" in run.stdout
    run = pytest_run("--impl", str(tmp_path / "missing.py"), cwd=tmp_path)
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
    assert "--impl: no such file" in run.stderr
