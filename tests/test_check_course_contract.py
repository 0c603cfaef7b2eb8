"""What a course API is graded on: the cases its API can express and its course promises.

Both courses allocate their outputs in float64 (``np.zeros(shape)``) and never test float32;
neither says which maximum of a pooling tie gets the gradient; the deeplearning.ai API reads
``(f, f, n_C_prev, n_C) = W.shape`` (square kernels). So through ``--api cs231n`` and
``--api deeplearning-ai`` those cases are set aside, hidden cases too, and every output says
how many and why. The fixtures are the courses' code as the courses write it; the expected
counts are computed here from the case catalogue, never from the grader.
"""

from __future__ import annotations

import functools
import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from tinycnn.parity_tests.cases import GRADED_CASES

from tinycnn.cli import main
from tinycnn.grading.grader import cases_of, grade_submission
from tinycnn.grading.report import (
    gradescope_results,
    report_json,
    submission_table,
    summary_rows,
)
from tinycnn.grading.sandbox import Limits

COURSES = Path(__file__).parent / "fixtures" / "courses"
FAST = Limits(timeout=20.0, train_timeout=60.0)
#: How many contract functions grade each op's cases (forward and backward; one call for the
#: loss), per API.
FUNCTIONS_OF = {
    "cs231n": {"conv2d": 2, "relu": 2, "maxpool2d": 2, "linear": 2, "softmax_cross_entropy": 1},
    "deeplearning-ai": {"conv2d": 2, "maxpool2d": 2},
}


@functools.cache
def graded(name: str, api: str):
    return grade_submission(COURSES / name, api=api, limits=FAST, train=False, seed=12345)


def per_run(predicate) -> int:
    """Graded cases matching ``predicate``, catalogue and hidden twins (one each) together."""
    return 2 * sum(1 for case in GRADED_CASES if predicate(case))


def expected_line(api: str) -> str:
    """The line a report through ``api`` should carry, counted from the catalogue."""
    functions = FUNCTIONS_OF[api]
    total = sum(per_run(lambda c, op=op: c.op == op) * n for op, n in functions.items())
    float32 = sum(
        per_run(lambda c, op=op: c.op == op and c.dtype == "float32") * n
        for op, n in functions.items()
    )
    reasons = [f"{float32} with float32 input (the course allocates and tests float64 only)"]
    rectangular = 0
    if api == "deeplearning-ai":  # conv2d_forward and conv2d_backward
        rectangular = 2 * per_run(
            lambda c: c.op == "conv2d" and c.dtype == "float64" and c.w_shape[2] != c.w_shape[3]
        )
        reasons.append(
            f"{rectangular} with a non-square kernel (the course's W is (f, f, n_C_prev, n_C))"
        )
    ties = per_run(lambda c: c.op == "maxpool2d" and c.dtype == "float64" and "ties" in c.tags)
    reasons.append(
        f"{ties} with a tie in a pooling window (the course sets no rule for which maximum gets it)"
    )
    return (
        f"{float32 + rectangular + ties} of {total} function cases set aside for the {api} API, "
        f"which does not promise them: " + "; ".join(reasons)
    )


def test_cs231n_code_allocating_float64_as_the_course_does_passes_and_says_what_was_set_aside():
    report = graded("cs231n_layers_float64.py", "cs231n")
    assert report.passed, {n: r.full_detail for n, r in report.functions.items()}
    assert report.cases_set_aside == expected_line("cs231n")
    # Hidden cases obey the same filter: float64 only, each catalogue case's twin.
    conv = report.functions["conv2d_forward"]
    assert conv.cases_total == per_run(lambda c: c.op == "conv2d" and c.dtype == "float64")
    pool = report.functions["maxpool2d_backward"]
    assert pool.cases_total == per_run(
        lambda c: c.op == "maxpool2d" and c.dtype == "float64" and "ties" not in c.tags
    )
    # One line, in the table, the --json document and Gradescope's output.
    assert "\n" not in report.cases_set_aside
    table = " ".join(submission_table(report).split())
    assert report.cases_set_aside in table
    assert report_json(report)["cases_set_aside"] == report.cases_set_aside
    assert report.cases_set_aside in gradescope_results(report)["output"]


def test_the_deeplearning_ai_notebook_as_written_passes_its_four_functions():
    # (f, f, n_C_prev, n_C) = W.shape, np.zeros(shape) and mask = (x == np.max(x)): the
    # course's own lines.
    source = (COURSES / "deeplearning_ai_as_written.ipynb").read_text()
    for line in ("(f, f, n_C_prev, n_C) = W.shape", "mask = (x == np.max(x))"):
        assert line in source
    assert "dtype" not in source
    report = graded("deeplearning_ai_as_written.ipynb", "deeplearning-ai")
    graded_functions = ("conv2d_forward", "conv2d_backward", "maxpool2d_forward")
    for name in (*graded_functions, "maxpool2d_backward"):
        assert report.functions[name].status == "pass", report.functions[name].full_detail
    assert report.cases_set_aside == expected_line("deeplearning-ai")
    conv = report.functions["conv2d_backward"]
    assert conv.cases_total == per_run(
        lambda c: c.op == "conv2d" and c.dtype == "float64" and c.w_shape[2] == c.w_shape[3]
    )
    # The verdict counts the API's four functions: the five it lacks are not graded.
    assert report.passed and report.n_passed == 4
    table = submission_table(report)
    assert "result: PASS, 4 of 4 functions of the deeplearning-ai API pass" in table
    assert "training: not run (the deeplearning-ai API has no relu_forward" in table
    assert report_json(report)["functions_graded"] == [*graded_functions, "maxpool2d_backward"]
    row = summary_rows([report])[0]
    assert row["passed"] is True and row["relu_forward"] == "not graded"


def test_a_course_api_submission_failing_one_of_its_functions_fails(tmp_path):
    source = (COURSES / "deeplearning_ai_as_written.ipynb").read_text()
    broken = tmp_path / "dlai_min_mask.ipynb"  # routes the gradient to the window's minimum
    broken.write_text(source.replace("mask = (x == np.max(x))", "mask = (x == np.min(x))"))
    report = grade_submission(broken, api="deeplearning-ai", limits=FAST, train=False, seed=1)
    assert report.functions["maxpool2d_backward"].status == "fail"
    assert not report.passed and report.n_passed == 3
    assert "result: FAIL, 3 of 4 functions of the deeplearning-ai API pass" in submission_table(
        report
    )
    assert summary_rows([report])[0]["passed"] is False


def test_a_course_bug_on_the_promised_cases_still_fails_exactly_there():
    # The p:-p crop: float64 cases at padding 0 (the only float64 ones graded), hint intact.
    report = graded("cs231n_layers_crop_bug.py", "cs231n")
    failing = {name for name, r in report.functions.items() if r.status != "pass"}
    assert failing == {"conv2d_backward"}
    backward = report.functions["conv2d_backward"]
    assert backward.cases_failed == per_run(
        lambda c: c.op == "conv2d" and c.dtype == "float64" and c.padding == 0
    )
    assert "is empty for p = 0" in backward.full_detail


def test_the_contract_itself_sets_nothing_aside():
    for name in ("conv2d_forward", "maxpool2d_backward", "relu_forward", "softmax_cross_entropy"):
        every = cases_of(name)
        assert {case.dtype for case, _ in every} == {"float64", "float32"}
        assert cases_of(name, api="tinycnn") == every
    assert any("ties" in case.tags for case, _ in cases_of("maxpool2d_backward"))
    assert any(case.w_shape[2] != case.w_shape[3] for case, _ in cases_of("conv2d_forward"))
    # Forward pooling keeps its tie cases through a course API (the maximum is the maximum).
    assert any("ties" in c.tags for c, _ in cases_of("maxpool2d_forward", api="cs231n"))
    assert not any("ties" in c.tags for c, _ in cases_of("maxpool2d_backward", api="cs231n"))


def test_case_on_a_case_the_api_sets_aside_is_a_one_line_usage_error(capfd):
    path = COURSES / "cs231n_layers_float64.py"
    case = next(c for c in GRADED_CASES if c.op == "relu" and c.dtype == "float32").id
    status = main(["check", str(path), "--api", "cs231n", "--case", case])
    err = capfd.readouterr().err
    assert status == 2 and err.count("\n") == 1
    assert f"{case} is not graded through the cs231n API: float32 input" in err


@pytest.mark.parametrize("api", ["cs231n", "deeplearning-ai"])
def test_a_tie_case_through_a_course_api_runs_the_forward_only(api):
    name = "cs231n_layers_float64.py" if api == "cs231n" else "deeplearning_ai_as_written.ipynb"
    case = next(c for c in GRADED_CASES if c.op == "maxpool2d" and "ties" in c.tags).id
    out = io.StringIO()
    with redirect_stdout(out):
        status = main(["check", str(COURSES / name), "--api", api, "--case", case])
    text = out.getvalue()
    assert status == 0 and "maxpool2d_forward" in text and "maxpool2d_backward" not in text
