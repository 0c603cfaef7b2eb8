"""``python -m tinycnn.grading SUBMISSION [options]``: the same as ``tinycnn check``."""

import sys

from tinycnn.cli import main

sys.exit(main(["check", *sys.argv[1:]]))
