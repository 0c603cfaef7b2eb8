"""pytest configuration of the parity suite: the ``--impl PATH`` option and the ``ops`` fixture.

``pytest parity_tests --impl path/to/student.py`` runs the op cases against that file instead of
``tinycnn.reference.ops``.

pytest knows this option only once it has loaded this file, which it does before parsing the
command line for the folders named on it, or for ``testpaths`` when none is named. So name the
folder (``pytest parity_tests --impl FILE``) or write the option with ``=``
(``pytest --impl=FILE``): in ``pytest --impl FILE`` pytest takes FILE for the folder to test.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

_IMPL_KEY = pytest.StashKey[ModuleType]()
_IMPL_MODULE_NAME = "parity_tests_impl_under_test"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--impl",
        metavar="PATH",
        default=None,
        help="Python file implementing the op contract, tested instead of tinycnn.reference.ops",
    )


def load_implementation(path: Path) -> ModuleType:
    """Import a Python file as a module; raise `pytest.UsageError` if that is impossible."""
    if not path.is_file():
        raise pytest.UsageError(f"--impl: no such file: {path}")
    spec = importlib.util.spec_from_file_location(_IMPL_MODULE_NAME, path)
    if spec is None or spec.loader is None:
        raise pytest.UsageError(f"--impl: cannot import {path} (is it a .py file?)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_IMPL_MODULE_NAME] = module  # dataclasses and pickling look modules up here
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as error:
        del sys.modules[_IMPL_MODULE_NAME]
        raise pytest.UsageError(
            f"--impl: importing {path} failed: {type(error).__name__}: {error}"
        ) from error
    return module


def pytest_configure(config: pytest.Config) -> None:
    # Load the file now, so a bad path stops the run with one clear line before any test runs.
    impl = config.getoption("--impl")
    if impl is not None:
        path = Path(config.invocation_params.dir, impl).resolve()
        config.stash[_IMPL_KEY] = load_implementation(path)


def pytest_report_header(config: pytest.Config) -> str:
    module = config.stash.get(_IMPL_KEY, None)
    under_test = module.__file__ if module is not None else "tinycnn.reference.ops"
    return f"parity_tests: implementation under test: {under_test}"


@pytest.fixture(scope="session")
def ops(pytestconfig: pytest.Config) -> ModuleType:
    """The implementation under test: the ``--impl`` file, or ``tinycnn.reference.ops`` by
    default."""
    module = pytestconfig.stash.get(_IMPL_KEY, None)
    if module is not None:
        return module
    return importlib.import_module("tinycnn.reference.ops")
