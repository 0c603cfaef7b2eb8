"""Root conftest: the tests always import the installed tinycnn, never the bare source folder.

The tests import the installed package (``tinycnn.reference``, ``tinycnn.parity_tests``, ...),
whose subpackages come from the folders ``reference/``, ``parity_tests/``... (pyproject.toml's
``package-dir``). The bare ``tinycnn/`` folder of a source tree lacks them, and ``python -m`` or
``python -c`` puts the working folder first on ``sys.path``: run from the root of an unpacked
sdist, it would shadow the installed package. So:

- the subprocesses the tests start (``python -m tinycnn ...``, Dask workers) get
  ``PYTHONSAFEPATH=1`` (Python 3.11+), which keeps the working folder off ``sys.path``;
- if this pytest process itself imports the bare folder (``python -m pytest`` in an unpacked
  sdist), the run stops with one line saying what to do instead of failing every test.
"""

from __future__ import annotations

import importlib.util
import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if importlib.util.find_spec("tinycnn.reference") is None:
        import tinycnn

        raise pytest.UsageError(
            f"tinycnn is imported from {tinycnn.__path__[0]}, which lacks its subpackages: "
            'install the project (pip install -e ".[test]" in a clone, pip install . otherwise) '
            "and run `pytest`, not `python -m pytest`, from an unpacked sdist"
        )
    os.environ["PYTHONSAFEPATH"] = "1"
