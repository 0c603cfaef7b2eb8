"""The ``tinycnn`` command-line tool: train, report, check and bench."""

__version__ = "0.1.0"
