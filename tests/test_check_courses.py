"""Submissions as courses write them: course layer APIs, notebooks and multi-module folders.

The fixtures in ``tests/fixtures/courses`` are written the way the courses write them (CS231n's
``layers.py`` header and ``(out, cache)`` style, the deeplearning.ai channels-last notebook with
its test cells, one student's folder of modules) and are graded as they are. Expected verdicts
come from the fixtures' known contents and the case catalogue, never from the grader's code.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pytest
import tinycnn.parity_tests as tinycnn_parity
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from tinycnn.parity_tests.cases import CASES, GRADED_CASES
from tinycnn.reference import ops as reference
from tinycnn.reference.ops import CONTRACT_FUNCTIONS

from tinycnn import templates
from tinycnn.cli import main
from tinycnn.grading import adapters
from tinycnn.grading.grader import grade_submission
from tinycnn.grading.notebook import NotebookError, convert_notebook
from tinycnn.grading.report import gradescope_results
from tinycnn.grading.sandbox import Limits
from tinycnn.grading.submission import MAX_FILES, load_submission

COURSES = Path(__file__).parent / "fixtures" / "courses"
SUBMISSIONS = Path(__file__).parent / "fixtures" / "submissions"
FAST = Limits(timeout=20.0, train_timeout=60.0)
# `from builtins import range` is CS231n's header; until the import rule allows the standard
# library (issue 10, item 1) it is allowed here by name.
STDLIB_HEADER = ("builtins",)


@functools.cache
def graded(path: str, api: str = "tinycnn", entry: str | None = None):
    return grade_submission(
        COURSES / path, api=api, entry=entry, limits=FAST, train=False, allow_imports=STDLIB_HEADER
    )


def statuses(report) -> dict[str, str]:
    return {name: r.status for name, r in report.functions.items()}


def count(op: str, direction_has_backward: bool = True, **where) -> int:
    """Cases of ``op`` matching ``where`` (case attributes or tags) graded per run: the
    catalogue's, and the hidden twin of each graded one (same attributes and tags, fresh values)."""
    tags = where.pop("tag", None)
    return sum(
        c.op == op
        and (tags is None or tags in c.tags)
        and all(getattr(c, key) == value for key, value in where.items())
        for c in (*CASES, *GRADED_CASES)
    )


# --------------------------------------------------------------------------------------------
# CS231n's layer API
# --------------------------------------------------------------------------------------------


def test_a_correct_cs231n_layers_file_passes_all_nine_as_written():
    report = graded("cs231n_layers_correct.py", "cs231n")
    assert set(statuses(report).values()) == {"pass"}, {
        n: r.full_detail for n, r in report.functions.items()
    }
    assert report.passed and report.api == "cs231n"
    assert report.graded_as == {
        "conv2d_forward": "conv_forward_naive",
        "conv2d_backward": "conv_backward_naive",
        "relu_forward": "relu_forward",
        "relu_backward": "relu_backward",
        "maxpool2d_forward": "max_pool_forward_naive",
        "maxpool2d_backward": "max_pool_backward_naive",
        "linear_forward": "affine_forward",
        "linear_backward": "affine_backward",
        "softmax_cross_entropy": "softmax_loss",
    }


def test_the_cs231n_crop_bug_fails_exactly_the_padding_0_backward_cases():
    report = graded("cs231n_layers_crop_bug.py", "cs231n")
    got = statuses(report)
    assert got.pop("conv2d_backward") == "fail"
    assert set(got.values()) == {"pass"}
    backward = report.functions["conv2d_backward"]
    # float64 cases only: the course API does not promise float32 (test_check_course_contract.py)
    assert backward.cases_failed == count("conv2d", padding=0, dtype="float64")
    assert "padding 0" in backward.detail and ", 0, 0), expected" in backward.detail
    # The checker's p:-p hint recognises it through the adapter.
    assert "is empty for p = 0" in backward.full_detail


@pytest.mark.slow
def test_the_same_cs231n_file_without_api_is_graded_against_the_contract_and_told_so():
    report = graded("cs231n_layers_correct.py")
    got = statuses(report)
    # relu_forward and relu_backward have the contract's names: the course's relu_forward returns
    # (out, cache), a failure; its relu_backward(dout, cache=x) happens to be the contract's.
    assert got.pop("relu_forward") == "fail" and got.pop("relu_backward") == "pass"
    assert set(got.values()) == {"missing"}
    assert "expected one array (y)" in report.functions["relu_forward"].detail
    conv = report.functions["conv2d_forward"].detail
    assert "no function conv2d_forward" in conv and "written for --api cs231n?" in conv


# --------------------------------------------------------------------------------------------
# A channels-last notebook (deeplearning.ai "Convolution model - Step by Step")
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_channels_last_notebook_is_graded_without_running_its_test_cells():
    report = graded("deeplearning_ai_step_by_step.ipynb", "deeplearning-ai")
    got = statuses(report)
    # Its conv layers are right; its pooling mask (x == max) sends a tie's gradient to every
    # maximum, which the course allows: the tie cases are set aside for the course's API.
    assert {k: got[k] for k in ("conv2d_forward", "conv2d_backward", "maxpool2d_forward")} == {
        "conv2d_forward": "pass",
        "conv2d_backward": "pass",
        "maxpool2d_forward": "pass",
    }
    assert got["maxpool2d_backward"] == "pass"
    assert "with a tie in a pooling window" in report.cases_set_aside
    # The notebook has no ReLU, dense layer or loss: not graded (not missing), and said why.
    for name in ("relu_forward", "linear_backward", "softmax_cross_entropy"):
        assert got[name] == "not graded"
        assert "not part of the deeplearning-ai API" in report.functions[name].detail
    # The verdict counts the API's own functions (all four pass); training needs all nine.
    assert report.passed and report.training is None
    # Its set-up imports (h5py, matplotlib, the course's public_tests), test calls and magics
    # were set aside; they would fail here if they ran.
    assert any("cell 2: import h5py, matplotlib, public_tests" in s for s in report.set_aside)
    assert any("magics" in s for s in report.set_aside)


# --------------------------------------------------------------------------------------------
# One student's folder of modules
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_folder_of_one_students_modules_is_graded_with_its_helpers():
    report = graded("multi_module")
    assert set(statuses(report).values()) == {"pass"}, {
        n: r.full_detail for n, r in report.functions.items()
    }
    assert report.policy == []


def test_the_entry_of_a_folder_is_named_or_found_or_the_problem_is_said(tmp_path):
    submission = load_submission(COURSES / "multi_module")
    assert submission.entry.path == "layers.py"
    assert {f.module for f in submission.helpers} == {"im2col", "losses"}
    assert load_submission(COURSES / "multi_module", entry="losses").entry.path == "losses.py"
    missing = load_submission(COURSES / "multi_module", entry="absent")
    assert "no module absent" in missing.problem and "--entry" in missing.problem
    for name in ("a.py", "b.py"):
        shutil.copy(SUBMISSIONS / "correct_vectorized.py", tmp_path / name)
    both = load_submission(tmp_path)
    assert "cannot tell which file" in both.problem and "a.py, b.py" in both.problem
    (tmp_path / "a.ipynb").write_text("{}")
    assert "both a.ipynb and a.py define module a" in load_submission(tmp_path).problem


def test_a_folder_is_read_without_following_links_and_within_limits(tmp_path):
    shutil.copy(SUBMISSIONS / "correct_vectorized.py", tmp_path / "layers.py")
    (tmp_path / "secret.py").symlink_to("/etc/passwd")
    (tmp_path / "notes.txt").write_text("ignored")
    os.mkfifo(tmp_path / "pipe.py")
    submission = load_submission(tmp_path)
    assert submission.problem is None
    assert [f.path for f in submission.files] == ["layers.py"]
    assert any("secret.py (not a regular file)" in s for s in submission.set_aside)
    assert any("pipe.py (not a regular file)" in s for s in submission.set_aside)
    many = tmp_path / "many"
    many.mkdir()
    for index in range(MAX_FILES + 1):
        (many / f"m{index}.py").write_text("")
    assert f"at most {MAX_FILES}" in load_submission(many).problem


def test_a_helper_may_not_take_a_library_name(tmp_path):
    shutil.copy(SUBMISSIONS / "correct_vectorized.py", tmp_path / "layers.py")
    (tmp_path / "torch.py").write_text("import numpy as np\n")
    problem = load_submission(tmp_path, entry="layers").problem
    assert "may not be named like a library" in problem and "(torch)" in problem


@pytest.mark.slow
def test_a_helper_that_imports_torch_breaks_the_policy_with_its_file_and_line(tmp_path):
    shutil.copy(COURSES / "multi_module" / "layers.py", tmp_path / "layers.py")
    shutil.copy(COURSES / "multi_module" / "losses.py", tmp_path / "losses.py")
    helper = (COURSES / "multi_module" / "im2col.py").read_text()
    (tmp_path / "im2col.py").write_text(
        helper.replace("import numpy as np", "import torch\nimport numpy as np")
    )
    report = grade_submission(tmp_path, limits=FAST, train=False)
    assert not report.passed
    assert any("import torch (im2col.py, line 3)" in message for message in report.policy)


# --------------------------------------------------------------------------------------------
# Notebooks: what is kept, and where messages point
# --------------------------------------------------------------------------------------------


def notebook(*cells: str) -> bytes:
    made = [new_markdown_cell("# Homework")]
    made += [new_code_cell(source) for source in cells]
    return nbformat.writes(new_notebook(cells=made)).encode()


def test_a_notebook_keeps_definitions_imports_and_constants_only():
    converted = convert_notebook(
        notebook(
            "%matplotlib inline\nimport numpy as np\nimport matplotlib.pyplot as plt\n"
            "from torch import nn\nEPS = 1e-8; print(EPS)",
            "@staticmethod\ndef f(x):\n    %timeit x\n    return x  # keep me\n\nf(1)\nnp.pad?",
            "%%writefile g.py\ndef g():\n    pass",
            "if __name__ == '__main__':\n    f(2)\nclass A:\n    pass\nh = f\nk = f(3)",
        ),
        "hw.ipynb",
        keep_imports={"numpy", "torch"},
    )
    source = converted.source
    assert "import numpy as np" in source and "from torch import nn" in source
    assert "matplotlib" not in source and "print" not in source and "EPS = 1e-8" in source
    assert "@staticmethod\ndef f(x):\n    pass\n    return x  # keep me" in source
    assert "f(1)" not in source and "np.pad?" not in source and "def g" not in source
    assert "__main__" not in source and "class A:" in source and "h = f" in source
    assert "k = f(3)" not in source
    compile(source, "converted", "exec")
    # Lines point back at their cell: markdown counts, so the first code cell is cell 2.
    line = source.splitlines().index("    return x  # keep me") + 1
    assert converted.locate(line) == "cell 3, line 4"
    assert "cell 4: a %%writefile cell (cell magics are not run)" in converted.set_aside


def test_notebook_failures_name_the_cell_and_line(tmp_path):
    broken = tmp_path / "broken.ipynb"
    broken.write_bytes(notebook("import numpy as np", "def relu_forward(x):\n    return x +"))
    report = grade_submission(broken, limits=FAST, train=False)
    assert set(statuses(report).values()) == {"error"}
    assert (
        "does not compile: broken.ipynb, cell 3, line 2" in report.functions["relu_forward"].detail
    )
    raising = tmp_path / "raising.ipynb"
    raising.write_bytes(
        notebook(
            "import numpy as np\nprint('set-up')",
            "x = 1\n\ndef relu_forward(x):\n    y = x\n    return 1 / 0",
        )
    )
    report = grade_submission(raising, limits=FAST, train=False)
    relu = report.functions["relu_forward"]
    assert relu.status == "error" and "at cell 3, line 5, in relu_forward" in relu.detail
    not_json = tmp_path / "not_json.ipynb"
    not_json.write_text("def relu_forward(x): pass")
    report = grade_submission(not_json, limits=FAST, train=False)
    assert "is not a Jupyter notebook" in report.functions["relu_forward"].detail


@pytest.mark.slow
def test_the_correct_contract_file_as_a_notebook_passes(tmp_path):
    source = (SUBMISSIONS / "correct_vectorized.py").read_text()
    # Split at every definition, with a test cell after each that would fail if it ran.
    parts = source.split("\ndef ")
    cells = [parts[0]] + ["def " + p for p in parts[1:]]
    mixed = []
    for cell in cells:
        mixed += [cell, "assert False, 'a test cell must not run'\nprint(conv2d_forward)"]
    path = tmp_path / "student.ipynb"
    path.write_bytes(notebook(*mixed))
    report = grade_submission(path, limits=FAST, train=False)
    assert report.passed, {n: r.full_detail for n, r in report.functions.items()}


# --------------------------------------------------------------------------------------------
# The adapters themselves (in this process: they are NumPy-only functions)
# --------------------------------------------------------------------------------------------


def channels_last_student():
    """A correct deeplearning.ai-style implementation built on the reference ops."""

    def conv_forward(A_prev, W, b, hparameters):
        x, w = A_prev.transpose(0, 3, 1, 2), W.transpose(3, 2, 0, 1)
        y = reference.conv2d_forward(x, w, b.reshape(-1), hparameters["stride"], hparameters["pad"])
        return y.transpose(0, 2, 3, 1), (A_prev, W, b, hparameters)

    def conv_backward(dZ, cache):
        A_prev, W, b, hparameters = cache
        dx, dw, db = reference.conv2d_backward(
            dZ.transpose(0, 3, 1, 2),
            A_prev.transpose(0, 3, 1, 2),
            W.transpose(3, 2, 0, 1),
            b.reshape(-1),
            hparameters["stride"],
            hparameters["pad"],
        )
        return dx.transpose(0, 2, 3, 1), dw.transpose(2, 3, 1, 0), db.reshape(1, 1, 1, -1)

    def pool_forward(A_prev, hparameters, mode="max"):
        y = reference.maxpool2d_forward(
            A_prev.transpose(0, 3, 1, 2), hparameters["f"], hparameters["stride"]
        )
        return y.transpose(0, 2, 3, 1), (A_prev, hparameters)

    def pool_backward(dA, cache, mode="max"):
        A_prev, hparameters = cache
        dx = reference.maxpool2d_backward(
            dA.transpose(0, 3, 1, 2),
            A_prev.transpose(0, 3, 1, 2),
            hparameters["f"],
            hparameters["stride"],
        )
        return dx.transpose(0, 2, 3, 1)

    return SimpleNamespace(**locals())


def test_the_channels_last_adapter_gives_the_reference_numbers_for_a_correct_student():
    adapted = {
        k: f for k, (f, _) in adapters.adapt("deeplearning-ai", channels_last_student()).items()
    }
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(2, 3, 7, 5)), rng.normal(size=(4, 3, 3, 2)), rng.normal(size=4)
    y = reference.conv2d_forward(x, w, b, 2, 1)
    np.testing.assert_array_equal(adapted["conv2d_forward"](x, w, b, 2, 1), y)
    dy = rng.normal(size=y.shape)
    for got, want in zip(
        adapted["conv2d_backward"](dy, x, w, b, 2, 1),
        reference.conv2d_backward(dy, x, w, b, 2, 1),
        strict=True,
    ):
        # the student's sums run in another order: equal to rounding
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    pooled = reference.maxpool2d_forward(x, 2, 1)
    np.testing.assert_array_equal(adapted["maxpool2d_forward"](x, 2, 1), pooled)
    dpool = rng.normal(size=pooled.shape)
    np.testing.assert_array_equal(
        adapted["maxpool2d_backward"](dpool, x, 2, 1), reference.maxpool2d_backward(dpool, x, 2, 1)
    )


def test_the_naive_cs231n_functions_win_and_each_backward_uses_its_own_forward():
    calls = []

    def forward(label):
        def run(x, w, b, conv_param):
            calls.append(label)
            return np.zeros(1), label

        return run

    def backward(label):
        def run(dout, cache):
            calls.append(label)
            return (cache, label)

        return run

    both = SimpleNamespace(
        conv_forward_naive=forward("naive forward"),
        conv_backward_naive=backward("naive backward"),
        conv_forward_fast=forward("fast forward"),
        conv_backward_fast=backward("fast backward"),
    )
    adapted = adapters.adapt("cs231n", both)
    assert [adapted[k][1] for k in ("conv2d_forward", "conv2d_backward")] == [
        "conv_forward_naive",
        "conv_backward_naive",
    ]
    assert adapted["conv2d_backward"][0](0, 0, 0, 0) == ("naive forward", "naive backward")
    fast_only = SimpleNamespace(
        conv_forward_fast=forward("fast forward"),
        conv_backward_fast=backward("fast backward"),
        conv_backward_naive=backward("naive backward"),  # no naive forward to give it a cache
    )
    adapted = adapters.adapt("cs231n", fast_only)
    assert adapted["conv2d_backward"][1] == "conv_backward_fast"
    assert adapted["conv2d_backward"][0](0, 0, 0, 0) == ("fast forward", "fast backward")


def test_the_cs231n_adapter_neither_hides_nor_invents_a_bug():
    def affine_forward(x, w, b):
        w *= 2  # modifies its argument in place
        return x @ w + b, (x, w, b)

    def relu_forward(x):
        return np.maximum(x, 0)  # forgot the cache

    def relu_backward(dout, cache):
        return dout

    def conv_forward_naive(x, w, b, conv_param):
        return None, None  # the course template's stub

    def conv_backward_naive(dout, cache):
        return None, None, None

    student = SimpleNamespace(**locals())
    adapted = {k: f for k, (f, _) in adapters.adapt("cs231n", student).items()}
    x, w, b = np.ones((2, 3)), np.ones((4, 3)), np.zeros(4)
    adapted["linear_forward"](x, w, b)
    np.testing.assert_array_equal(w, 2 * np.ones((4, 3)))  # the change reaches the case's w
    with pytest.raises(
        TypeError,
        match=r"relu_forward must return a pair \(out, cache\), it "
        r"returned a ndarray",
    ):
        adapted["relu_forward"](x)
    with pytest.raises(TypeError, match="relu_backward needs the cache of relu_forward"):
        adapted["relu_backward"](x, x)
    assert adapted["conv2d_forward"](x, w, b) is None  # not implemented, not an error
    with pytest.raises(TypeError, match=r"returned None as its cache \(is conv_forward_naive"):
        adapted["conv2d_backward"](x, x, w, b)
    assert adapters.missing_message("cs231n", "softmax_cross_entropy") == (
        "needs softmax_loss (--api cs231n); the submission does not define it."
    )


def test_every_course_function_named_in_the_readme(tmp_path):
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for api in adapters.API_NAMES[1:]:
        assert f"--api {api}" in readme
        for name in adapters.course_functions(api):
            assert name in readme, (api, name)


def check(*argv) -> int:
    return main(["check", *map(str, argv)])


@pytest.mark.slow
def test_check_writes_gradescope_results_for_a_students_folder(tmp_path):
    submission = tmp_path / "submission"
    shutil.copytree(COURSES / "multi_module", submission)
    results = tmp_path / "results.json"
    assert check(submission, "--gradescope", results, "--no-train") == 0
    document = json.loads(results.read_text())
    assert document["score"] == 9.0
    # --one-submission does the same without Gradescope; a single file refuses it.
    assert check(submission, "--one-submission", "--no-train") == 0
    assert check(COURSES / "cs231n_layers_correct.py", "--one-submission") == 2


@pytest.mark.slow
def test_folder_mode_grades_files_notebooks_and_student_folders(tmp_path, capfd):
    shutil.copy(SUBMISSIONS / "buggy_relu_zero_gradient.py", tmp_path / "ann.py")
    shutil.copytree(COURSES / "multi_module", tmp_path / "bob")
    raising = notebook("import numpy as np", "def relu_forward(x):\n    return 1 / 0")
    (tmp_path / "carol.ipynb").write_bytes(raising)
    (tmp_path / "dave.py").symlink_to(SUBMISSIONS / "correct_vectorized.py")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "grades.csv").write_text("")
    assert check(tmp_path, "--no-train", "--jobs", "2") == 1
    out = capfd.readouterr().out
    assert "skipped dave.py (a symbolic link)" in out
    assert "skipped data/ (no .py or .ipynb file in it)" in out
    rows = (tmp_path / "check_summary.csv").read_text().splitlines()
    assert [row.split(",")[:2] for row in rows[1:]] == [
        ["ann.py", "False"],
        ["bob", "True"],
        ["carol.ipynb", "False"],
    ]


def test_check_refuses_an_unknown_api_and_other_files(tmp_path, capfd):
    from tinycnn.grading.command import API_CHOICES

    assert API_CHOICES == adapters.API_NAMES
    with pytest.raises(SystemExit) as exit_:
        check(COURSES / "cs231n_layers_correct.py", "--api", "keras")
    assert exit_.value.code == 2
    assert "invalid choice: 'keras'" in capfd.readouterr().err
    (tmp_path / "notes.txt").write_text("")
    assert check(tmp_path / "notes.txt") == 2


# --------------------------------------------------------------------------------------------
# The course templates (package data, written by `tinycnn template --api NAME`)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["cs231n", "deeplearning-ai"])
def test_each_course_template_is_graded_not_implemented_and_its_command_says_how(api, tmp_path):
    path = tmp_path / "layers.py"
    assert main(["template", str(path), "--api", api]) == 0
    assert path.read_text() == templates.read(api)
    report = grade_submission(path, api=api, limits=FAST, train=False)
    covered = set(adapters.REQUIRES[api])
    for name, result in report.functions.items():
        expected = "missing" if name in covered else "not graded"
        assert result.status == expected, (name, result.full_detail)
        if name in covered:
            assert "not implemented yet" in result.detail
    assert set(report.graded_as) == covered


@pytest.mark.parametrize("api", ["cs231n", "deeplearning-ai"])
def test_a_course_template_is_written_to_the_file_its_command_and_the_readme_name(
    api, tmp_path, monkeypatch, capsys
):
    # Issue 10 review: `tinycnn template --api cs231n` wrote my_ops.py, while the template's
    # own command grades layers.py. The template's `tinycnn check --api NAME FILE` line, the
    # README's sentence and the default file written must name one file.
    command = re.search(rf"tinycnn check --api {api} (\S+\.py)", templates.read(api))
    assert command is not None
    named = command.group(1)
    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    said = re.search(rf"`tinycnn template --api {api}`[^.]*? to `([^`]+)`", readme)
    assert said is not None and said.group(1) == named
    monkeypatch.chdir(tmp_path)
    assert main(["template", "--api", api]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [named]
    assert f"tinycnn check --api {api} {named}" in capsys.readouterr().out
    assert (tmp_path / named).read_text() == templates.read(api)
    # The contract's template keeps its own name.
    assert main(["template"]) == 0 and (tmp_path / "my_ops.py").is_file()


def test_a_stub_returning_only_nones_is_not_implemented_in_any_api(tmp_path):
    path = tmp_path / "stub.py"
    path.write_text(
        "def linear_backward(dy, x, w, b):\n    dx, dw, db = None, None, None\n"
        "    return dx, dw, db\n\n\ndef linear_forward(x, w, b):\n    return None, x\n"
    )
    report = grade_submission(path, limits=FAST, train=False)
    assert report.functions["linear_backward"].status == "missing"
    assert "not implemented yet" in report.functions["linear_backward"].detail
    # One None beside an array is a wrong structure, not a stub.
    assert report.functions["linear_forward"].status == "fail"


def test_case_reproduces_a_course_file_and_its_snippet_runs_in_the_students_namespace(tmp_path):
    from tinycnn.grading.grader import grade_case
    from tinycnn.grading.reproduce import snippet

    fixture = COURSES / "cs231n_layers_crop_bug.py"
    case_id = next(c.id for c in CASES if c.op == "conv2d" and c.padding == 0)
    runs = grade_case(fixture, case_id, api="cs231n", allow_imports=STDLIB_HEADER, limits=FAST)
    verdicts = {run.function: run.result.status for run in runs}
    assert verdicts == {"conv2d_forward": "pass", "conv2d_backward": "fail"}
    backward = next(run for run in runs if run.function == "conv2d_backward")
    # As a notebook would: the student's functions in __main__, then the snippet.
    script = tmp_path / "notebook.py"
    script.write_text(fixture.read_text() + "\n\n" + snippet(backward))
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True
    ).stdout
    assert "dx DIFFERS: shape" in out and ", 0, 0) expected" in out
    assert "dw ok" in out and "db ok" in out


def test_a_hostile_notebook_is_a_compile_error_not_a_crash():
    deep = "x = " + "[" * 5_000 + "]" * 5_000  # nested deeper than the parser allows
    assert convert_notebook(notebook("def f():\n    pass", deep)).syntax_error.startswith(
        "cell 3, line 1: "
    )
    deeper = "x = " + "[" * 100_000 + "]" * 100_000  # more than the checker parses at all
    with pytest.raises(NotebookError, match="is too large: its code cells hold more than"):
        convert_notebook(notebook("def f():\n    pass", deeper))
    assert "null bytes" in convert_notebook(notebook("x = 1\x00")).syntax_error
    nested = b'{"cells": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(ValueError, match="is not a Jupyter notebook"):
        convert_notebook(nested, "deep.ipynb")


@pytest.mark.slow
def test_pytest_impl_with_impl_api_agrees_with_check_on_a_course_file(tmp_path):
    fixture = COURSES / "cs231n_layers_crop_bug.py"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(Path(tinycnn_parity.__file__).parent / "test_ops.py"),
            "--impl",
            str(fixture),
            "--impl-api",
            "cs231n",
            "-k",
            "conv2d_backward or linear",
            "-q",
            "-p",
            "no:cacheprovider",
            "--tb=no",
            "-rf",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "1000", "OMP_NUM_THREADS": "1"},
    )
    failed = set(re.findall(r"FAILED \S+::test_conv2d_backward\[([^\]]+)\]", run.stdout))
    padding_0 = {
        c.id
        for c in CASES
        if c.op == "conv2d" and c.padding == 0 and c.graded and c.dtype == "float64"
    }
    assert failed == padding_0 and "linear" not in "".join(re.findall(r"FAILED \S+", run.stdout))
    assert (  # check grades each catalogue case and its hidden twin
        2 * len(failed)
        == graded("cs231n_layers_crop_bug.py", "cs231n").functions["conv2d_backward"].cases_failed
    )


# CS231n's own tie rule (every maximum of a window gets the gradient): the course sets no rule
# for ties, so `check --api cs231n` sets tie cases aside and the suite must too.
_ARGMAX = (
    "                    u, v = np.unravel_index(np.argmax(window), window.shape)"
    "  # the first maximum\n"
    "                    dx[n, c, i * stride + u, j * stride + v] += dout[n, c, i, j]"
)
_MASK = (
    "                    mask = window == np.max(window)\n"
    "                    dx[n, c, i * stride : i * stride + ph, j * stride : j * stride + pw]"
    " += mask * dout[n, c, i, j]"
)


def _whole_suite(impl: Path, api: str, cwd: Path) -> subprocess.CompletedProcess:
    """``pytest --pyargs tinycnn.parity_tests --impl FILE --impl-api API``: every test file
    (failures and skips listed with their reasons)."""
    options = ["--impl", str(impl), "--impl-api", api, "-q", "-p", "no:cacheprovider", "-rfs"]
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "tinycnn.parity_tests", *options],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "1000", "OMP_NUM_THREADS": "1"},
    )


def _course_file(api: str, variant: str, folder: Path) -> Path:
    """A file written for ``api`` that ``check --api`` passes on every function it grades:
    CS231n's layers (with the first-maximum or the course's tie mask), or the deeplearning.ai
    notebook's definitions as a module."""
    impl = folder / "layers.py"
    if api == "deeplearning-ai":
        data = (COURSES / "deeplearning_ai_as_written.ipynb").read_bytes()
        impl.write_text(convert_notebook(data, "dlai.ipynb", keep_imports={"numpy"}).source)
        return impl
    source = (COURSES / "cs231n_layers_float64.py").read_text()
    assert _ARGMAX in source
    impl.write_text(source if variant == "first maximum" else source.replace(_ARGMAX, _MASK))
    return impl


@pytest.mark.slow
@pytest.mark.parametrize(
    "api, variant",
    [
        ("cs231n", "first maximum"),
        ("cs231n", "course's tie mask"),
        ("deeplearning-ai", "as written"),
    ],
)
def test_the_whole_suite_under_impl_api_passes_what_check_api_passes(tmp_path, api, variant):
    # Before: the Hypothesis property tests drew float32 cases (and tie windows) and the
    # hand-written tie test ran, so a course file check passes 9/9 failed the suite; and under
    # deeplearning-ai the tests of the five functions check calls "not graded" failed.
    impl = _course_file(api, variant, tmp_path)
    report = grade_submission(impl, api=api, limits=FAST, train=False, allow_imports=STDLIB_HEADER)
    verdicts = statuses(report)
    assert set(verdicts.values()) <= {"pass", "not graded"}, verdicts
    not_graded = {name for name, status in verdicts.items() if status == "not graded"}
    assert not_graded == set(CONTRACT_FUNCTIONS) - set(adapters.REQUIRES[api])
    run = _whole_suite(impl, api, tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert re.search(r"\d+ passed", run.stdout) and "failed" not in run.stdout
    # One verdict: exactly the functions check does not grade are skipped, and said why.
    skipped = set(
        re.findall(
            r"^SKIPPED \[\d+\] \S+: (\w+) is not graded under the " + re.escape(api) + " API$",
            run.stdout,
            re.MULTILINE,
        )
    )
    assert skipped == not_graded, run.stdout[-3000:]
    assert len(re.findall(r"^SKIPPED ", run.stdout, re.MULTILINE)) == len(
        re.findall(r"^SKIPPED .* is not graded under the ", run.stdout, re.MULTILINE)
    ), run.stdout[-3000:]


@pytest.mark.slow
def test_the_whole_suite_under_impl_api_still_fails_a_course_bug(tmp_path):
    fixture = COURSES / "cs231n_layers_crop_bug.py"
    assert graded(fixture.name, "cs231n").functions["conv2d_backward"].status == "fail"
    run = _whole_suite(fixture, "cs231n", tmp_path)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    failed = set(re.findall(r"FAILED \S+::(test_\w+)", run.stdout))
    # The bug is in conv_backward_naive: the catalogue's and Hypothesis's conv tests find it,
    # nothing else fails.
    assert {"test_conv2d_backward", "test_conv2d_matches_torch"} <= failed, failed
    others = ("relu", "maxpool", "linear", "softmax")
    assert not any(other in name for name in failed for other in others), failed


@pytest.mark.slow
def test_functions_outside_the_api_are_not_graded_in_every_output(tmp_path, capsys):
    # Before: "missing" in the table and --json, "not graded" in the CSV, and the class table's
    # row of a passing student said "missing: 5 functions".
    klass = tmp_path / "klass"
    klass.mkdir()
    shutil.copy(COURSES / "deeplearning_ai_as_written.ipynb", klass / "alice.ipynb")
    outside = [
        name for name in CONTRACT_FUNCTIONS if name not in adapters.REQUIRES["deeplearning-ai"]
    ]
    assert len(outside) == 5
    common = ["check", "--no-train", "--api", "deeplearning-ai", "--allow-import", "builtins"]
    assert main([*common, "--jobs", "1", str(klass), "--csv", str(tmp_path / "k.csv")]) == 0
    table = capsys.readouterr().out
    assert re.search(r"\| alice\.ipynb +\| PASS +\| +4/4 \| - +\|", table), table
    rows = list(csv.DictReader((tmp_path / "k.csv").read_text().splitlines()))
    assert {rows[0][name] for name in outside} == {"not graded"}
    assert main([*common, str(klass / "alice.ipynb"), "--json", str(tmp_path / "a.json")]) == 0
    single = capsys.readouterr().out
    functions = json.loads((tmp_path / "a.json").read_text())["functions"]
    assert {functions[name]["status"] for name in outside} == {"not graded"}
    for name in outside:
        assert re.search(rf"^{name} +not graded ", single, re.MULTILINE), single
    assert "missing" not in single
    report = graded("deeplearning_ai_as_written.ipynb", "deeplearning-ai")
    scored = gradescope_results(report)
    assert [t["name"] for t in scored["tests"] if t["max_score"]] == report.graded_functions
    assert "not graded: " + ", ".join(outside) in scored["output"]


def test_readme_gives_the_cases_each_course_api_sets_aside():
    # The numbers in README are the grader's own count over the catalogue (review 3), and
    # over catalogue and hidden cases together, as the output counts them (new-user session 5,
    # finding 8: the output's 254 of 484 was not in README, which gave only 127 of 242).
    from tinycnn.grading.grader import api_set_aside, hidden_cases

    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    for api in ("cs231n", "deeplearning-ai"):
        aside, total = re.match(r"(\d+) of (\d+) ", api_set_aside(api)).groups()
        assert re.search(rf"`--api {api}` (sets aside )?{aside} of {total}\b", readme), api
        counted = {
            re.match(r"\d+ of \d+", api_set_aside(api, hidden_cases(s))).group() for s in (1, 7)
        }
        (output,) = counted  # the same for every seed
        assert output == f"{2 * int(aside)} of {2 * int(total)}"  # one hidden case per case
        assert re.search(rf"{output}( function cases)? for `--api {api}`", readme), (api, output)


# --------------------------------------------------------------------------------------------
# A course's assignment folder uploaded as it is (issue 10 leftovers): CS231n's notebook at the
# top, the package cs231n/ with the student's layers.py, the course's data_utils.py (imageio,
# CIFAR-10 from disk) and fast_layers.py (a Cython extension) beside it.
# --------------------------------------------------------------------------------------------

ASSIGNMENT = COURSES / "cs231n_assignment"


def test_the_entry_of_the_assignment_folder_is_the_module_defining_the_graded_functions():
    # Before: the top holds ConvolutionalNetworks.ipynb and makepdf.py, neither defines a
    # graded function: "cannot tell which file"; with the notebook alone, the notebook was the
    # entry, and its kept `from cs231n.data_utils import ...` ran `import imageio`.
    for api in ("cs231n", "tinycnn"):  # without --api too: the report can then suggest it
        submission = load_submission(ASSIGNMENT, api=api)
        assert submission.problem is None, submission.problem
        assert (submission.entry.path, submission.entry.module) == (
            "cs231n/layers.py",
            "cs231n.layers",
        )
    # fast_layers.py defines the four _fast course functions: fewer than layers.py's nine.
    assert "cs231n/fast_layers.py" in submission.unimported
    assert "cs231n/data_utils.py" in submission.unimported
    # The notebook is not graded: named once as not imported, never cell by cell (new-user
    # session 5, finding 9; what its conversion keeps is tested in test_notebook.py).
    assert "ConvolutionalNetworks.py" in submission.unimported  # its module, converted
    notes = " ".join(submission.set_aside)
    assert "ConvolutionalNetworks.ipynb, cell" not in notes, notes


def test_the_entry_is_found_at_the_shallowest_level_that_defines_graded_functions(tmp_path):
    correct = (SUBMISSIONS / "correct_vectorized.py").read_bytes()
    eight = correct.replace(b"def softmax_cross_entropy(", b"def softmax_cross_entropy_(")

    def entry_of(files: dict[str, bytes]) -> str:
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        for name, data in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        submission = load_submission(folder)
        return submission.problem or submission.entry.origin

    # Must not change: the top wins over an old copy below it, even one defining more.
    assert entry_of({"layers.py": correct, "backup/layers.py": correct}) == "layers.py"
    assert entry_of({"layers.py": eight, "old/layers.py": correct}) == "layers.py"
    assert entry_of({"run.py": b"import layers\n", "layers.py": correct}) == "layers.py"
    assert "(a.py, b.py)" in entry_of({"a.py": correct, "b.py": correct})
    # Fires: nothing at the top defines one; the file below that does is the entry.
    assert entry_of({"main.py": b"", "src/layers.py": correct, "tests/t.py": b""}) == (
        "src/layers.py"
    )
    assert "(x/layers.py, y/layers.py)" in entry_of(
        {"main.py": b"", "x/layers.py": correct, "y/layers.py": correct}
    )
    # Nothing at the top: the folder that defines them is read (a class's bob/hw2/), unless
    # several do.
    assert entry_of({"hw2/layers.py": correct, "hw2/notes.md": b""}) == "hw2/layers.py"
    assert entry_of({"src/layers.py": correct, "tests/test_it.py": b"import layers"}) == (
        "src/layers.py"
    )
    assert "in several folders (x/, y/)" in entry_of({"x/layers.py": correct, "y/l.py": correct})


PUBLIC_TESTS = "import numpy as np\n\n\ndef zero_pad_test(target):\n    assert target\n"


def folder_of(root: Path, files: dict[str, bytes | Path]) -> Path:
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copy(content, root / name)
        else:
            (root / name).write_bytes(content)
    return root


@pytest.mark.parametrize("top", ["run.py", "run.ipynb"])
@pytest.mark.parametrize(
    ("call", "imports"),
    [
        ('importlib.import_module("hw.layers")', True),
        ('__import__("hw")', True),
        ("importlib.import_module(name)", False),  # not a literal: nothing is known
    ],
)
def test_a_notebook_and_a_module_are_read_for_imports_by_one_reader(tmp_path, top, call, imports):
    # Review LASTREAD5 item 9: the notebook had an import reader of its own, which missed the
    # literal import_module/__import__ calls that imported_modules reads in a .py file; the
    # same code in the two forms of one upload must give one answer.
    from tinycnn.grading.submission import imports_between

    code = f"import importlib\nname = 'hw'\nlayers = {call}"
    layout = folder_of(
        tmp_path / "upload",
        {
            top: notebook(code) if top.endswith(".ipynb") else code.encode(),
            "hw/__init__.py": b"",
            "hw/layers.py": SUBMISSIONS / "correct_vectorized.py",
        },
    )
    assert imports_between(layout) == (f"{top} imports hw" if imports else None)


def test_every_reader_of_a_folder_skips_the_same_entries(tmp_path):
    # Review LASTREAD5 item 6: the class folder's scan (tinycnn check DIR), one student's
    # (submission_folder, top_entries) and the Gradescope runner's each had their own filter;
    # the class scan descended into hidden folders, so a folder holding only .git/hooks/x.py
    # was graded as a student's submission ("no .py or .ipynb file") instead of skipped.
    from tinycnn.autograder import _scan
    from tinycnn.grading.command import submissions_in
    from tinycnn.grading.submission import top_entries

    correct = SUBMISSIONS / "correct_vectorized.py"
    root = folder_of(
        tmp_path / "class",
        {
            "alice.py": correct,
            "bob/layers.py": correct,
            "carol/.git/hooks/post.py": b"",
            "__MACOSX/alice.py": b"",
            "__pycache__/x.py": b"",
            ".ipynb_checkpoints/dan.ipynb": b"",
            "data/notes.txt": b"",
        },
    )
    (root / "eve.py").symlink_to(correct)
    found, skipped = submissions_in(root)
    files, folders = top_entries(root)
    assert found == files + folders == [root / "alice.py", root / "bob"]
    assert skipped == [
        "carol/ (no .py or .ipynb file in it)",
        "data/ (no .py or .ipynb file in it)",
        "eve.py (a symbolic link)",
    ]
    listed, links = _scan(root)
    assert listed == ["alice.py", "bob/layers.py", "data/notes.txt"] and links == ["eve.py"]


def test_a_folder_laid_out_as_one_assignment_is_one_submission_not_a_class(tmp_path):
    from tinycnn.grading.submission import imports_between

    assert imports_between(ASSIGNMENT) == "ConvolutionalNetworks.ipynb imports cs231n"
    # deeplearning.ai's notebook beside the course's public_tests.py (defining no graded
    # function) is one upload too.
    mooc = folder_of(
        tmp_path / "mooc",
        {
            "W1A1.ipynb": COURSES / "deeplearning_ai_as_written.ipynb",
            "public_tests.py": PUBLIC_TESTS.encode(),
        },
    )
    assert imports_between(mooc) == "W1A1.ipynb imports public_tests"
    # Must not: a class folder's files, notebooks and student folders import only libraries
    # and their own helpers.
    correct, buggy = (
        SUBMISSIONS / "correct_vectorized.py",
        SUBMISSIONS / "buggy_relu_zero_gradient.py",
    )
    plain = folder_of(
        tmp_path / "plain",
        {
            "ann.py": correct,
            "bob/layers.py": COURSES / "multi_module" / "layers.py",
            "bob/im2col.py": COURSES / "multi_module" / "im2col.py",
            "carol.ipynb": notebook("import numpy as np\nimport os"),
        },
    )
    assert imports_between(plain) is None
    # Must not (review 5, finding 1): a student's notebook importing a classmate's module
    # (before: "carol.ipynb imports ann", and ann alone was graded).
    (plain / "carol.ipynb").write_bytes(notebook("import numpy as np\nimport os", "import ann"))
    assert imports_between(plain) is None
    # A student copying a classmate, with a third student beside them, or alone with them
    # (the copier defines nothing; what he imports is a classmate's plain module).
    copy = folder_of(
        tmp_path / "copy",
        {"alice.py": correct, "bob.py": buggy, "carol.py": b"from alice import *  # copied\n"},
    )
    assert imports_between(copy) is None
    (copy / "bob.py").unlink()
    assert imports_between(copy) is None
    # A course helper beside the students' files, imported by one of them.
    helper = folder_of(
        tmp_path / "helper",
        {
            "ann.py": b"import utils\n" + correct.read_bytes(),
            "ben.py": buggy,
            "utils.py": b"def show(x):\n    print(x)\n",
        },
    )
    assert imports_between(helper) is None
    # Several students' notebooks beside the course's public_tests.py.
    notebooks = folder_of(
        tmp_path / "notebooks",
        {
            "alice.ipynb": COURSES / "deeplearning_ai_as_written.ipynb",
            "bob.ipynb": COURSES / "deeplearning_ai_step_by_step.ipynb",
            "public_tests.py": PUBLIC_TESTS.encode(),
        },
    )
    assert imports_between(notebooks) is None


def test_class_and_the_assignment_guess_in_the_command(tmp_path, capsys):
    upload = shutil.copytree(ASSIGNMENT, tmp_path / "assignment2")
    assert check(upload, "--class", "--one-submission") == 2
    assert "--class contradicts --one-submission" in capsys.readouterr().err
    assert check(COURSES / "cs231n_layers_correct.py", "--class") == 2
    assert check(upload, "--jobs", "2", "--api", "cs231n") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "this folder looks like one student's; --class grades it as a class" in err, err


@pytest.mark.slow
def test_a_student_copying_a_classmate_leaves_the_folder_a_class(tmp_path, capsys):
    # Review 5, finding 1a: before, `carol.py: from alice import *` made the class one
    # submission (alice's), PASS and exit 0; bob's buggy file was never graded.
    copy = folder_of(
        tmp_path / "class1",
        {
            "alice.py": SUBMISSIONS / "correct_vectorized.py",
            "bob.py": SUBMISSIONS / "buggy_relu_zero_gradient.py",
            "carol.py": b"from alice import *  # copied\n",
        },
    )
    assert check(copy, "--no-train", "--jobs", "2") == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "graded as one student's" not in out, out
    rows = list(csv.reader((copy / "check_summary.csv").read_text().splitlines()))
    assert [row[:2] for row in rows[1:]] == [
        ["alice.py", "True"],
        ["bob.py", "False"],
        ["carol.py", "False"],  # graded alone: her file holds nothing of her own
    ], rows


@pytest.mark.slow
def test_the_assignment_folder_as_it_is_grades_with_check_api_cs231n(tmp_path, capsys):
    upload = tmp_path / "assignment2"
    shutil.copytree(ASSIGNMENT, upload)
    assert check(upload, "--api", "cs231n", "--no-train") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert (
        "is graded as one student's submission, as with --one-submission: "
        "ConvolutionalNetworks.ipynb imports cs231n and no two of its entries define the graded "
        "functions (if it is a class, run with --class)" in out
    ), out
    assert "PASS, 9 of 9 functions pass" in out, out
    assert not (upload / "check_summary.csv").exists()  # not graded as a class
    assert check(upload, "--one-submission", "--api", "cs231n", "--no-train") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "PASS, 9 of 9 functions pass" in out and "graded as one student's" not in out, out
    # The notebook as the entry: its kept code (rel_error) imports nothing of cs231n, so
    # data_utils (imageio) is not run; the functions are missing, not an ImportError.
    assert (
        check(
            upload,
            "--one-submission",
            "--api",
            "cs231n",
            "--no-train",
            "--entry",
            "ConvolutionalNetworks",
        )
        == 1
    )
    out = " ".join(capsys.readouterr().out.split())
    assert "imageio" not in out and "needs conv_forward_naive" in out, out


@pytest.mark.slow
def test_class_mode_grades_a_student_folder_holding_only_a_sub_folder(tmp_path, capfd):
    # bob/hw2/ holds his modules, which import each other by name (run from inside hw2/).
    # Before: "no .py or .ipynb file at the top of bob".
    shutil.copy(SUBMISSIONS / "buggy_relu_zero_gradient.py", tmp_path / "ann.py")
    shutil.copytree(COURSES / "multi_module", tmp_path / "bob" / "hw2")
    (tmp_path / "bob" / "README.md").write_text("my homework")
    submission = load_submission(tmp_path / "bob")
    assert (submission.entry.path, submission.entry.origin) == ("layers.py", "hw2/layers.py")
    assert check(tmp_path, "--no-train", "--jobs", "2") == 1
    rows = (tmp_path / "check_summary.csv").read_text().splitlines()
    assert [row.split(",")[:2] for row in rows[1:]] == [["ann.py", "False"], ["bob", "True"]]
    # --entry still names the module from the student's folder, or from hw2/.
    for entry in ("hw2/layers", "layers"):
        assert load_submission(tmp_path / "bob", entry=entry).entry.origin == "hw2/layers.py"


@pytest.mark.slow
def test_the_moocs_notebook_folder_as_it_is_grades_without_its_test_helpers(tmp_path, capsys):
    # deeplearning.ai's folder: the notebook beside the course's public_tests.py, which imports
    # test_utils.py, which imports termcolor (not in the sandbox). Before: a class of three
    # "students"; as one submission, the kept `from public_tests import *` failed the notebook.
    folder = tmp_path / "W1A1"
    folder.mkdir()
    shutil.copy(COURSES / "deeplearning_ai_as_written.ipynb", folder / "Convolution_model.ipynb")
    (folder / "public_tests.py").write_text(
        "import numpy as np\nfrom test_utils import multiple_test\n\n\n"
        "def zero_pad_test(target):\n    multiple_test([np.zeros((4, 3, 3, 2))], target)\n"
    )
    (folder / "test_utils.py").write_text(
        "from termcolor import colored\n\n\n"
        "def multiple_test(cases, target):\n    print(colored('All tests passed.', 'green'))\n"
    )
    assert check(folder, "--api", "deeplearning-ai", "--no-train") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert (
        "graded as one student's submission, as with --one-submission: "
        "Convolution_model.ipynb imports public_tests" in out
    )
    assert "PASS, 4 of 4 functions of the deeplearning-ai API pass" in out, out
    assert "import h5py, matplotlib, import public_tests (no kept code uses it)" in out, out


def test_entry_names_the_one_file_of_that_name_at_any_depth(tmp_path, capsys):
    # Finding 1 (s5): `--entry layers` on CS231n's folder found no module layers (it matched
    # only a top-level layers.py) although the folder keeps cs231n/layers.py.
    submission = load_submission(ASSIGNMENT, api="cs231n", entry="layers")
    assert submission.problem is None, submission.problem
    assert (submission.entry.path, submission.entry.module) == ("cs231n/layers.py", "cs231n.layers")
    code = main(["check", str(ASSIGNMENT), "--api", "cs231n", "--entry", "layers", "--no-train"])
    out = capsys.readouterr().out
    assert code == 0 and "PASS, 9 of 9" in out, out
    # Must not change: a top-level file of that name wins over one below it.
    correct = (SUBMISSIONS / "correct_vectorized.py").read_bytes()
    top = folder_of(tmp_path / "top", {"layers.py": correct, "hw/layers.py": b"x = 1\n"})
    assert load_submission(top, entry="layers").entry.path == "layers.py"
    # Several files of that name below the top: named, and a path asked for.
    two = folder_of(tmp_path / "two", {"run.py": b"", "a/layers.py": correct, "b/layers.py": b""})
    problem = load_submission(two, entry="layers").problem
    assert "(a/layers.py, b/layers.py): give the path of one, such as --entry a/layers" in problem


def test_the_entry_options_help_and_the_readme_state_the_any_depth_rule():
    # Issue 10 review: `--entry`'s help said only "layers, layers.py, or hw/layers", so an
    # instructor could not learn from it that `--entry layers` finds cs231n/layers.py (the
    # rule the test above proves).
    from tinycnn.cli import build_parser

    check = next(
        action.choices["check"]
        for action in build_parser()._actions
        if isinstance(action.choices, dict) and "check" in action.choices
    )
    entry = next(action for action in check._actions if "--entry" in action.option_strings)
    help_text = " ".join(entry.help.split())
    assert "the one file named layers at any depth (cs231n/layers.py" in help_text
    assert "two such files are an error" in help_text
    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    assert "else the one file named `layers` at any depth (`cs231n/layers.py`" in readme


def test_the_header_of_the_output_is_the_command_with_its_grading_options(capsys):
    # New-user session 5, finding 7: the header read "tinycnn check layers.py" for a run with
    # --api cs231n; copied, it graded the file against the contract (FAIL, 1 of 9).
    path = str(COURSES / "cs231n_layers_correct.py")
    options = ["--api", "cs231n", "--timeout", "15", "--no-train", "--seed", "3"]
    assert main(["check", path, *options, "--allow-import", "builtins"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header == f"tinycnn check {path} {' '.join(options[:2])} --allow-import builtins " + (
        "--timeout 15 --no-train --seed 3"
    )
    # Copied, it grades the same way.
    assert main(header.split()[1:]) == 0
    assert capsys.readouterr().out.splitlines()[0] == header


def test_the_template_states_the_import_rule_the_checker_applies():
    # New-user session 5, finding 10: the template said "Import only numpy and math" while
    # README and the checker allow the standard library and NumPy.
    from tinycnn.grading.policy import allowed_modules

    path = Path(templates.__file__).parent / "student_template.py"
    doc = " ".join(path.read_text().split())
    rule = re.search(r"- Import only (.+?) are fine; (.+?) are refused\.", doc)
    assert rule and rule.group(1).startswith("the standard library and NumPy"), doc[:800]
    fine, refused = (re.findall(r"``(\w+)``", part) for part in rule.groups())
    assert fine and refused
    assert all(name in allowed_modules() for name in fine), fine
    assert not any(name in allowed_modules() for name in refused), refused
