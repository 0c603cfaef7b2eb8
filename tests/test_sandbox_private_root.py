"""Level uid's private root, seen from the submission: the default suite's cover of the classmate
attack.

``test_check_hostile.py::test_a_submission_cannot_copy_a_classmate_graded_at_the_same_time``
grades a thief beside a classmate: for 4 s the thief's import looks for the classmate's private
copy (``/tmp/tinycnn-check-*/job/student``), for folders on the checker's command lines
(``/proc/*/cmdline``) and for the checker's ``reference/`` under ``sys.path`` and ``/work``.
At level uid it finds nothing because the run is ``chroot``-ed into its own scratch directory
(`tinycnn.grading.sandbox`, "Isolation levels"). That test waits out its 4 s, so it is slow;
here one import looks once at every one of those places. Nothing of the machine is there, not
even the run's own scratch directory under ``/tmp``, which a broken ``chroot`` would show
without any classmate being graded.
"""

from __future__ import annotations

import pytest

from tinycnn.grading.grader import grade_submission
from tinycnn.grading.sandbox import Limits, SandboxUnavailable, isolation_level


def _uid_available() -> bool:
    try:
        return isolation_level("uid") == "uid"
    except SandboxUnavailable:
        return False


LOOKS = '''\
"""Looks once, at import, everywhere the classmate thief looks."""
import glob
import os
import sys

import numpy as np

SEEN = sorted(glob.glob("/tmp/tinycnn-check-*"))
SEEN += [path for path in ("/proc/self/cmdline", "/tmp") if os.path.exists(path)]
SEEN += [
    os.path.join(root, "reference")
    for root in [*sys.path, "/work"]
    if os.path.isdir(os.path.join(root, "reference"))
]


def relu_forward(x):
    if SEEN:
        raise RuntimeError("the submission sees " + ", ".join(SEEN))
    return np.where(x > 0, x, np.zeros((), dtype=x.dtype))
'''


@pytest.mark.skipif(not _uid_available(), reason="level uid needs root and chroot")
def test_at_level_uid_the_import_sees_no_other_run_no_processes_and_no_checker(tmp_path):
    thief = tmp_path / "looks.py"
    thief.write_text(LOOKS)
    report = grade_submission(thief, limits=Limits(timeout=5.0), train=False, isolation="uid")
    assert report.isolation == "uid"
    relu = report.functions["relu_forward"]
    assert relu.status == "pass", relu.detail


def test_the_same_look_outside_a_sandbox_sees_the_machine(tmp_path):
    # The fixture can fail: run in this process, it sees this machine's /proc and /tmp.
    namespace: dict = {}
    exec(compile(LOOKS, "looks.py", "exec"), namespace)
    assert "/proc/self/cmdline" in namespace["SEEN"] and "/tmp" in namespace["SEEN"]
