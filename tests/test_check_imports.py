"""Which imports are the student's own: the entry and its helpers, packages, relative imports.

Folders are laid out the way courses lay them out (CS231n's ``layers.py`` next to its
``layer_utils.py``, which imports it by name; a student's package with relative imports; the
student's own test file next to the graded one). Each rule has a folder that triggers it and
folders that must not.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tinycnn.grading.grader import grade_submission
from tinycnn.grading.sandbox import Limits

COURSES = Path(__file__).parent / "fixtures" / "courses"
SUBMISSIONS = Path(__file__).parent / "fixtures" / "submissions"
FAST = Limits(timeout=20.0, train_timeout=60.0)
CORRECT = SUBMISSIONS / "correct_vectorized.py"

LAYER_UTILS = """\
from layers import *


def linear_relu_forward(x, w, b):
    return relu_forward(linear_forward(x, w, b))
"""


def grade(folder: Path, **options):
    return grade_submission(folder, limits=FAST, train=False, **options)


def statuses(report) -> set[str]:
    return {r.status for r in report.functions.values()}


# --------------------------------------------------------------------------------------------
# The entry's own name is the student's (review finding 2)
# --------------------------------------------------------------------------------------------


def test_a_helper_importing_the_entry_by_name_is_the_students_own_import(tmp_path):
    shutil.copy(CORRECT, tmp_path / "layers.py")
    # The entry's name is allowed; a name that is nobody's file still breaks the rule.
    (tmp_path / "layer_utils.py").write_text(LAYER_UTILS + "\nimport layerz\n")
    (tmp_path / "layers.py").write_text(CORRECT.read_text() + "\nimport layer_utils\n")
    report = grade(tmp_path, entry="layers")
    assert statuses(report) == {"pass"}, {n: r.full_detail for n, r in report.functions.items()}
    assert len(report.policy) == 1 and report.policy[0].startswith(
        "import layerz (layer_utils.py, line 7) is not allowed"
    ), report.policy


def test_an_entry_and_a_helper_importing_each_other_run_as_python_runs_them(tmp_path):
    # CS231n's layout: layers.py imports layer_utils at its end, layer_utils imports layers.
    # The helper must get the entry module itself (not a second copy, which would re-import
    # the half-initialised helper and fail).
    shutil.copy(COURSES / "cs231n_layers_correct.py", tmp_path / "layers.py")
    with open(tmp_path / "layers.py", "a") as handle:
        handle.write("\n\nfrom layer_utils import affine_relu_forward  # noqa: E402\n")
    (tmp_path / "layer_utils.py").write_text(
        "from layers import affine_forward, relu_forward\n\n\n"
        "def affine_relu_forward(x, w, b):\n"
        "    a, fc_cache = affine_forward(x, w, b)\n"
        "    out, relu_cache = relu_forward(a)\n"
        "    return out, (fc_cache, relu_cache)\n"
    )
    report = grade(tmp_path, api="cs231n")
    assert report.passed, (report.policy, {n: r.full_detail for n, r in report.functions.items()})
