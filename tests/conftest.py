"""Session plumbing of the test suite (no fixtures of the project's behaviour live here).

Many tests start Python in a subprocess as a user would: ``tinycnn check ...``, ``pytest --impl
...`` (a fresh pytest: its options are read once per session). Where bytecode writing is off
(``PYTHONDONTWRITEBYTECODE``, as on some CI images and shared machines), every such process
compiles this project and re-applies pytest's assertion rewriting to the plugins it loads, which
costs a pytest subprocess about a second of processor time. Here the subprocesses of one session
share a bytecode cache (``PYTHONPYCACHEPREFIX``, Python's documented mirror of ``__pycache__``)
in one of the session's pytest temporary folders: nothing is written next to any source file,
Python checks each cached file against its source as usual, and pytest removes the folder with
the session's other temporary folders. The sandboxed child of ``tinycnn check`` is unaffected:
it runs with ``-I -B``.

A process given a prefix reads bytecode only there, so the installed packages' own
``__pycache__`` files (PyTorch's, thousands) would be compiled again by the first subprocess:
the cached files this process read are linked into the prefix first (the same bytes, checked
against their sources all the same).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys

import pytest


@pytest.fixture(scope="session", autouse=True)
def _subprocesses_share_bytecode(tmp_path_factory):
    """From the first test on, subprocesses share a bytecode cache in this session's temporary
    folder (pytest keeps the last three sessions' and removes older ones)."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or os.environ.get("PYTHONPYCACHEPREFIX"):
        yield  # bytecode is cached as the user set it up
        return
    cache = str(tmp_path_factory.mktemp("pycache"))
    _share_read_bytecode(cache)  # every test module is imported by now
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("PYTHONDONTWRITEBYTECODE")
        patch.setenv("PYTHONPYCACHEPREFIX", cache)
        yield


def _share_read_bytecode(cache: str) -> None:
    """Link each ``__pycache__`` file this process imported a module from to where a process
    with ``PYTHONPYCACHEPREFIX=cache`` looks for it (`importlib.util.cache_from_source`)."""
    sources = {}
    for module in list(sys.modules.values()):
        # (Some entries of sys.modules are not modules: torch.ops answers any attribute.)
        source, cached = getattr(module, "__file__", None), getattr(module, "__cached__", None)
        if not (isinstance(source, str) and isinstance(cached, str)):
            continue
        if source.endswith(".py") and os.path.isfile(cached):
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
