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
from tinycnn.grading.submission import SourceFile, load_submission, reachable_files

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


# --------------------------------------------------------------------------------------------
# Only what the entry can reach is scanned (review finding 3, folders)
# --------------------------------------------------------------------------------------------


def test_a_file_nothing_imports_is_set_aside_not_a_violation(tmp_path):
    # The student's own test file compares with torch (the natural self-check) and imports the
    # entry; nothing the entry imports uses it.
    shutil.copy(CORRECT, tmp_path / "layers.py")
    (tmp_path / "test_layers.py").write_text(
        "import numpy as np\nimport torch\nimport layers\n\n\ndef test_relu():\n    pass\n"
    )
    submission = load_submission(tmp_path)
    assert submission.entry.path == "layers.py" and submission.unimported == ("test_layers.py",)
    report = grade(tmp_path)
    assert report.passed and report.policy == []
    assert any(note.startswith("test_layers.py (it is not imported") for note in report.set_aside)


def test_what_the_entry_reaches_through_packages_and_relative_imports_is_still_scanned(tmp_path):
    shutil.copy(CORRECT, tmp_path / "layers.py")
    with open(tmp_path / "layers.py", "a") as handle:
        handle.write("\nimport pkg.sub\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("import json\n")
    (tmp_path / "pkg" / "sub.py").write_text("from .deep import helper\n")
    (tmp_path / "pkg" / "deep.py").write_text("import scipy\n\n\ndef helper():\n    pass\n")
    (tmp_path / "pkg" / "plots.py").write_text("import matplotlib\n")
    (tmp_path / "notes.py").write_text("import torch\n")
    submission = load_submission(tmp_path, entry="layers")
    assert sorted(submission.unimported) == ["notes.py", "pkg/plots.py"]
    report = grade(tmp_path, entry="layers")
    assert statuses(report) == {"pass"}
    assert len(report.policy) == 1, report.policy
    assert report.policy[0].startswith("import scipy (pkg/deep.py, line 1) is not allowed")


def test_a_set_aside_file_imported_while_grading_still_breaks_the_rule(tmp_path):
    # Read, nothing imports it; at run time the entry imports it by a computed name.
    (tmp_path / "layers.py").write_text(
        CORRECT.read_text() + '\nimport importlib\nimportlib.import_module("test_" + "layers")\n'
    )
    (tmp_path / "test_layers.py").write_text("import torch\n")
    assert load_submission(tmp_path, entry="layers").unimported == ("test_layers.py",)
    report = grade(tmp_path, entry="layers")
    assert [m.split(" is not allowed")[0] for m in report.policy] == ["import torch"]


def test_reachable_files_follow_imports_transitively_and_stop_at_the_students_files():
    def source(path, text):
        return SourceFile(path, text.encode(), path)

    files = [
        source("layers.py", "import a\nfrom b import c\nimport numpy\n"),
        source("a.py", "import d\n"),
        source("b/__init__.py", ""),
        source("b/c.py", ""),
        source("d.py", "def broken(:\n"),  # does not parse: imports nothing here
        source("e.py", "import a\n"),  # imports others, is imported by nobody
        source("hw/x.py", "from . import y\nfrom .. import z\n"),
        source("hw/y.py", ""),
    ]
    assert reachable_files(files, files[0]) == {
        "layers.py",
        "a.py",
        "b/__init__.py",
        "b/c.py",
        "d.py",
    }
    assert reachable_files(files, files[6]) == {"hw/x.py", "hw/y.py"}


# --------------------------------------------------------------------------------------------
# Packages: relative imports and entries inside a package (review finding 4)
# --------------------------------------------------------------------------------------------


def test_relative_imports_inside_the_students_package_are_the_students_own(tmp_path):
    (tmp_path / "utils").mkdir()
    shutil.copy(CORRECT, tmp_path / "utils" / "core.py")
    (tmp_path / "utils" / "__init__.py").write_text("from .core import *\nfrom . import core\n")
    (tmp_path / "layers.py").write_text("from utils import *\n")
    report = grade(tmp_path, entry="layers")
    assert report.passed and report.policy == [], report.policy


def test_a_relative_import_with_no_package_breaks_the_rule_with_a_true_reason(tmp_path):
    single = tmp_path / "single.py"
    single.write_text(CORRECT.read_text() + "\n\ndef unused():\n    from .impl import helper\n")
    line = len(single.read_text().splitlines())
    folder = tmp_path / "folder"
    (folder / "pkg").mkdir(parents=True)
    (folder / "layers.py").write_text(CORRECT.read_text() + "\nimport pkg\n")
    (folder / "pkg" / "__init__.py").write_text("def unused():\n    from .. import other\n")
    expected = [f"import .impl (line {line})", "import .. (pkg/__init__.py, line 2)"]
    for report, start in zip((grade(single), grade(folder, entry="layers")), expected, strict=True):
        assert statuses(report) == {"pass"}
        assert len(report.policy) == 1, report.policy
        assert report.policy[0].startswith(start + " is not allowed: a relative import must land")
        assert "single-file" not in report.policy[0]


def test_an_entry_inside_a_package_is_imported_under_its_package_name(tmp_path):
    (tmp_path / "hw").mkdir()
    shutil.copy(CORRECT, tmp_path / "hw" / "impl.py")
    (tmp_path / "hw" / "__init__.py").write_text("")
    (tmp_path / "hw" / "layers.py").write_text("from .impl import *\n")
    (tmp_path / "README.md").write_text("notes")
    # The path and the dotted name (as messages name modules) both name it.
    for entry in ("hw/layers", "hw/layers.py", "hw.layers"):
        assert load_submission(tmp_path, entry=entry).entry.path == "hw/layers.py"
    report = grade(tmp_path, entry="hw.layers")
    assert report.passed and report.policy == [], {
        n: r.full_detail for n, r in report.functions.items()
    }
    # A module that is not there: every file of the folder is listed, not only the top's.
    problem = load_submission(tmp_path, entry="hw.nope").problem
    assert problem.endswith("(--entry; its files: hw/__init__.py, hw/impl.py, hw/layers.py)")
