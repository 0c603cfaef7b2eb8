"""The ``tinycnn`` command-line tool: train, report, check and bench.

The version is written once, in ``pyproject.toml``; ``__version__`` reads it from the installed
distribution's metadata.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tinycnn")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

del PackageNotFoundError, version
