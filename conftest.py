"""Root conftest: fail with one clear line when the tests would import the wrong tinycnn.

The tests import the installed package (``tinycnn.reference``, ``tinycnn.parity_tests``, ...),
whose subpackages come from the folders ``reference/``, ``parity_tests/``... (pyproject.toml's
``package-dir``). The bare ``tinycnn/`` folder of a source tree lacks them, so when it shadows
a regular install (``python -m pytest`` puts the current folder first on ``sys.path``), every
test would fail on an import. From an unpacked sdist run ``pytest``; in a clone install with
``pip install -e ".[test]"``.
"""

from __future__ import annotations

import importlib.util

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if importlib.util.find_spec("tinycnn.reference") is None:
        import tinycnn

        raise pytest.UsageError(
            f"tinycnn is imported from {tinycnn.__path__[0]}, which lacks its subpackages: "
            'install the project (pip install -e ".[test]" in a clone, pip install . otherwise) '
            "and run `pytest`, not `python -m pytest`, from an unpacked sdist"
        )
