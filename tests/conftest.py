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

A process given a prefix reads bytecode only there, so the installed packages' own
``__pycache__`` files (PyTorch's, thousands) would be compiled again by the first subprocess:
once the test modules are imported, the cached files this process read are linked into the
prefix (the same bytes, checked against their sources all the same).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile

_CACHE: list[str] = []


def pytest_configure(config):
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or os.environ.get("PYTHONPYCACHEPREFIX"):
        return  # bytecode is cached as the user set it up
    cache = tempfile.mkdtemp(prefix="tinycnn-test-pycache-")
    setting = os.environ.pop("PYTHONDONTWRITEBYTECODE")
    os.environ["PYTHONPYCACHEPREFIX"] = cache
    _CACHE.append(cache)

    def restore():
        os.environ.pop("PYTHONPYCACHEPREFIX", None)
        os.environ["PYTHONDONTWRITEBYTECODE"] = setting
        shutil.rmtree(cache, ignore_errors=True)
        _CACHE.clear()

    config.add_cleanup(restore)


def pytest_collection_finish(session):
    if _CACHE:
        _share_read_bytecode(_CACHE[0])


def _share_read_bytecode(cache: str) -> None:
    """Link each ``__pycache__`` file this process imported a module from to where a process
    with ``PYTHONPYCACHEPREFIX=cache`` looks for it (`importlib.util.cache_from_source`)."""
    sources = {}
    for module in list(sys.modules.values()):
        source, cached = getattr(module, "__file__", None), getattr(module, "__cached__", None)
        if source and cached and source.endswith(".py") and os.path.isfile(cached):
            sources[source] = cached
    previous = sys.pycache_prefix
    sys.pycache_prefix = cache  # only to name the mirror paths; restored at once
    try:
        targets = {source: importlib.util.cache_from_source(source) for source in sources}
    finally:
        sys.pycache_prefix = previous
    for source, target in targets.items():
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            os.link(sources[source], target)
        except FileExistsError:
            pass
        except OSError:  # another file system, or links refused: a copy
            shutil.copyfile(sources[source], target)
