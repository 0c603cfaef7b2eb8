"""The ``tinycnn`` command-line tool: train, report, check and bench.

The version is written once, in ``pyproject.toml``; ``__version__`` reads it from the installed
distribution's metadata.
"""

import os as _os
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tinycnn")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"


def _find_subpackages_in_source_tree() -> None:
    """Imported from a source tree (a clone, an unpacked sdist), find the subpackages there.

    Installed, ``tinycnn.reference``, ``tinycnn.torch_impl``, ``tinycnn.parity_tests`` and
    ``tinycnn.reports`` live inside this package; in the source tree they are the folders
    ``reference/``... beside this one (pyproject.toml's ``package-dir``). This folder is imported
    from there whenever the tree's root is on ``sys.path`` (``python -m`` or ``python -c`` run in
    it, pytest's rootdir, worker processes that copy ``sys.path``); adding the root to
    ``__path__`` makes it the same package as the installed one instead of a broken half.
    """
    here = _os.path.dirname(_os.path.abspath(__file__))
    root = _os.path.dirname(here)
    in_source_tree = not _os.path.isdir(_os.path.join(here, "reference")) and all(
        _os.path.isfile(_os.path.join(root, name, "__init__.py"))
        for name in ("reference", "torch_impl", "parity_tests", "reports")
    )
    if in_source_tree and root not in __path__:
        __path__.append(root)


_find_subpackages_in_source_tree()
del PackageNotFoundError, version
