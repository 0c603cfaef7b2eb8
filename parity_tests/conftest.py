"""pytest configuration of the parity suite: the ``ops`` fixture.

``pytest parity_tests --impl path/to/student.py`` (or, from an installed package,
``pytest --pyargs tinycnn.parity_tests --impl path/to/student.py``) runs the op cases against
that file instead of ``tinycnn.reference.ops``. The ``--impl`` option and the ``slow`` marker come
from the plugin :mod:`tinycnn.pytest_plugin`, which pytest loads by entry point before it reads
the command line, so the option can stand anywhere on it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from tinycnn.pytest_plugin import IMPL_KEY


@pytest.fixture(scope="session")
def ops(pytestconfig: pytest.Config) -> ModuleType:
    """The implementation under test: the ``--impl`` file, or ``tinycnn.reference.ops`` by
    default."""
    module = pytestconfig.stash.get(IMPL_KEY, None)
    if module is not None:
        return module
    return importlib.import_module("tinycnn.reference.ops")
