"""Session plumbing of the test suite (no fixtures of the project's behaviour live here).

Many tests start Python in a subprocess as a user would: ``tinycnn check ...``, ``pytest --impl
...`` (a fresh pytest: its options are read once per session). Where bytecode writing is off
(``PYTHONDONTWRITEBYTECODE``, as on some CI images and shared machines), every such process
compiles this project and re-applies pytest's assertion rewriting to the plugins it loads, which
costs a pytest subprocess about a second of processor time. Here the subprocesses of one session
share a bytecode cache in a temporary directory of their own (``PYTHONPYCACHEPREFIX``, Python's
documented mirror of ``__pycache__``): nothing is written next to any source file, Python checks
each cached file against its source as usual, and the directory is removed at the end of the
session. The sandboxed child of ``tinycnn check`` is unaffected: it runs with ``-I -B``.
"""

from __future__ import annotations

import os
import shutil
import tempfile


def pytest_configure(config):
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or os.environ.get("PYTHONPYCACHEPREFIX"):
        return  # bytecode is cached as the user set it up
    cache = tempfile.mkdtemp(prefix="tinycnn-test-pycache-")
    setting = os.environ.pop("PYTHONDONTWRITEBYTECODE")
    os.environ["PYTHONPYCACHEPREFIX"] = cache

    def restore():
        os.environ.pop("PYTHONPYCACHEPREFIX", None)
        os.environ["PYTHONDONTWRITEBYTECODE"] = setting
        shutil.rmtree(cache, ignore_errors=True)

    config.add_cleanup(restore)
