"""`tinycnn check`, the grading itself: every rule of the issue proven with a fixture submission.

Each fixture in ``tests/fixtures/submissions`` states its expected verdicts in its docstring; the
tests below grade it (in child processes, as the command does) and check those verdicts. Expected
values come from the fixtures' known bugs and the case catalogue, never from the grader's code.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tinycnn.parity_tests.cases import GRADED_CASES, hidden_cases
from tinycnn.reference.ops import CONTRACT_FUNCTIONS

from tinycnn.grading.grader import STATUSES, cases_of, grade_submission
from tinycnn.grading.sandbox import Limits

FIXTURES = Path(__file__).parent / "fixtures" / "submissions"
TEMPLATE = Path(__file__).parent.parent / "tinycnn" / "templates" / "student_template.py"

# Short limits keep the hostile fixtures fast; the defaults are exercised by the slow tests.
FAST = Limits(timeout=2.0)
# One seed for the hidden cases of every grading here: the verdicts are reproducible.
SEED = 20261130


@functools.cache
def graded(name: str, allow: tuple[str, ...] = (), timeout: float = FAST.timeout):
    """Grade a fixture once per test session (without the training run unless it is correct)."""
    path = TEMPLATE if name == "student_template" else FIXTURES / f"{name}.py"
    return grade_submission(
        path,
        allow_imports=allow,
        limits=Limits(timeout=timeout),
        train=name.startswith("correct"),
        seed=SEED,
    )


def statuses(report) -> dict[str, str]:
    return {name: result.status for name, result in report.functions.items()}


def catalogue_count(op: str, tag: str | None = None) -> int:
    """Cases of one op graded per run (both dtypes), optionally only those with a tag: each
    catalogue case, and its hidden twin (same tags, fresh values) drawn from the run's seed."""
    return 2 * sum(c.op == op and (tag is None or tag in c.tags) for c in GRADED_CASES)


# --------------------------------------------------------------------------------------------
# What is run, and the verdicts of correct submissions
# --------------------------------------------------------------------------------------------


def test_every_function_runs_on_all_its_catalogue_cases_in_both_directions_and_dtypes():
    # conv2d cases feed both conv functions; softmax_cross_entropy checks loss and gradient
    # from one call. Nothing is skipped: ties, exact zeros, large logits, stride, padding...
    for name in CONTRACT_FUNCTIONS:
        op = name.rsplit("_", 1)[0] if name != "softmax_cross_entropy" else name
        pairs = cases_of(name)
        assert 2 * len(pairs) == catalogue_count(op), name
        assert {case.dtype for case, _ in pairs} == {"float64", "float32"}
        direction = "backward" if name.endswith("backward") else "forward"
        assert {d for _, d in pairs} == {direction}
    tags = {tag for name in CONTRACT_FUNCTIONS for case, _ in cases_of(name) for tag in case.tags}
    assert {"ties", "exact-zeros", "large-logits", "stride", "padding", "odd-size"} <= tags
    assert {"non-contiguous", "fortran", "sliced", "label-dtypes"} <= tags  # issue 11


def test_a_correct_vectorized_submission_passes_trains_like_the_reference_in_under_15_s():
    started = time.monotonic()
    report = graded("correct_vectorized")
    assert time.monotonic() - started < 15
    assert statuses(report) == dict.fromkeys(CONTRACT_FUNCTIONS, "pass")
    assert report.passed and report.policy == []
    assert all(
        r.max_rel_error is not None and r.max_rel_error < 1e-5 for r in report.functions.values()
    )
    training = report.training
    assert training.status == "ok"
    assert training.val_accuracy == pytest.approx(training.reference_val_accuracy, abs=1e-12)
    assert training.max_param_rel_error < 1e-8


@pytest.mark.slow
def test_a_correct_loop_submission_passes_and_trains_in_under_15_s():
    started = time.monotonic()
    report = grade_submission(FIXTURES / "correct_loops.py")
    assert time.monotonic() - started < 15
    assert report.passed, {n: r.full_detail for n, r in report.functions.items()}
    assert report.training.status == "ok"
    assert report.training.val_accuracy == pytest.approx(report.training.reference_val_accuracy)


def test_the_student_template_is_graded_all_missing_never_passing():
    report = graded("student_template")
    assert set(statuses(report).values()) == {"missing"}
    assert not report.passed
    assert all("NotImplementedError" in r.detail for r in report.functions.values())


# --------------------------------------------------------------------------------------------
# Failures: the first failing case in words, and hints for known mistakes
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_flipped_kernel_fails_only_conv_with_the_case_in_words_and_a_flip_hint():
    report = graded("buggy_flipped_kernel")
    forward, backward = report.functions["conv2d_forward"], report.functions["conv2d_backward"]
    assert forward.status == backward.status == "fail"
    # The first failing case, in words: shapes, stride, padding, dtype and which output.
    assert "conv2d, x (2, 3, 7, 5), w (4, 3, 3, 3), stride 1, padding 0, float64" in forward.detail
    assert "y: values differ" in forward.detail
    assert "dx: values differ" in backward.detail
    assert "you flipped the kernel where no flip was needed" in forward.hint
    assert "dx and dw are exactly the gradients of a true convolution" in backward.hint
    assert "forgot to flip" not in backward.hint
    # Symmetric and 1x1 kernels cannot see the bug: exactly the asymmetric cases fail forward.
    assert forward.cases_failed == catalogue_count("conv2d", "asymmetric-kernel")
    assert forward.max_rel_error > 0.1
    # Functions not in the file are "missing", not failures of the graded ones.
    assert {s for n, s in statuses(report).items() if not n.startswith("conv")} == {"missing"}


@pytest.mark.slow
def test_pooling_ties_routed_to_the_last_maximum_fail_only_the_tie_cases():
    report = graded("buggy_pool_last_max")
    assert report.functions["maxpool2d_forward"].status == "pass"
    backward = report.functions["maxpool2d_backward"]
    assert backward.status == "fail"
    assert backward.cases_failed == catalogue_count("maxpool2d", "ties")
    assert "with ties" in backward.detail
    assert "the gradient goes to the first maximum in row-major order" in backward.hint


def test_relu_gradient_at_exactly_zero_gets_its_hint():
    report = graded("buggy_relu_zero_gradient")
    assert report.functions["relu_forward"].status == "pass"
    backward = report.functions["relu_backward"]
    assert backward.status == "fail"
    assert backward.cases_failed == catalogue_count("relu", "exact-zeros")
    assert "the gradient at exactly 0 is 0" in backward.hint


def test_wrong_dtype_shape_and_output_count_are_named():
    report = graded("buggy_shapes_and_dtypes")
    linear = report.functions["linear_forward"]
    assert linear.status == "fail"
    assert "float32" in linear.detail and "dtype float64, expected float32" in linear.detail
    assert "is float64 for float32 input: keep the input dtype" in linear.hint
    # Every float32 case, and its hidden twin.
    assert linear.cases_failed == 2 * sum(
        c.op == "linear" and c.dtype == "float32" for c in GRADED_CASES
    )

    pool = report.functions["maxpool2d_forward"]
    assert pool.status == "fail" and "y: shape (2, 3, 4, 3), expected (2, 3, 3, 2)" in pool.detail

    backward = report.functions["linear_backward"]
    assert backward.status == "fail"
    assert "returned a tuple of 2, expected a tuple (dx, dw, db)" in backward.detail

    softmax = report.functions["softmax_cross_entropy"]
    assert softmax.status == "fail" and "loss is a Python float" in softmax.hint


def test_the_table_names_what_failed_when_the_values_are_right():
    # New user's README walkthrough, finding 3: a function failing only on its dtype showed
    # "FAIL  0.0e+00" (the values, cast, are exact), which reads like a pass.
    from tinycnn.grading.report import submission_table

    table = submission_table(graded("buggy_shapes_and_dtypes"))
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines() if line[:1].strip()}
    # The fixture's docstring: linear_forward and the loss fail on dtype only, the pooling on
    # shape only, linear_backward on the structure it returns.
    assert rows["linear_forward"] == ["FAIL", "dtype"]
    assert rows["softmax_cross_entropy"] == ["FAIL", "dtype"]
    assert rows["maxpool2d_forward"] == ["FAIL", "shape"]
    assert rows["linear_backward"] == ["FAIL", "structure"]
    # Wrong values keep their measured error in that column.
    flipped = submission_table(graded("buggy_flipped_kernel"))
    conv = next(line.split() for line in flipped.splitlines() if line.startswith("conv2d_forward"))
    assert conv[1] == "FAIL" and float(conv[2]) > 1e-3


def test_a_modified_input_fails_although_the_output_is_right():
    report = graded("buggy_modifies_input")
    relu = report.functions["relu_forward"]
    assert relu.status == "fail"
    assert "modified its input x in place" in relu.detail
    assert "work on a copy" in relu.hint
    assert report.functions["relu_backward"].status == "pass"


@pytest.mark.slow
def test_softmax_overflow_and_sum_instead_of_mean_get_their_hints():
    overflow = graded("buggy_softmax_overflow").functions["softmax_cross_entropy"]
    assert overflow.status == "fail"
    # The catalogue's large-logit cases overflow by design; a hidden twin (fresh values, maybe a
    # batch of one) may happen to stay below exp's limit.
    large = catalogue_count("softmax_cross_entropy", "large-logits")
    assert large // 2 <= overflow.cases_failed <= large
    assert "subtract each row's maximum from the logits before exp" in overflow.hint
    summed = graded("buggy_softmax_sum").functions["softmax_cross_entropy"]
    assert summed.status == "fail"
    assert "loss is exactly N times too large" in summed.hint
    assert "dlogits is exactly N times too large" in summed.hint


# --------------------------------------------------------------------------------------------
# Complete feedback: every output, every kind of failure; hints proven on their fixture only
# --------------------------------------------------------------------------------------------

# Which hints each fixture must get, as (function, output, hint id); every other fixture must
# get none of them. Predicted from each fixture's known bugs, never read off the grader.
EXPECTED_HINTS = {
    "correct_vectorized": set(),
    "correct_loops": set(),
    "buggy_flipped_kernel": {
        ("conv2d_forward", "y", "flip-forward"),
        ("conv2d_backward", "dx", "flip-consistent"),
        ("conv2d_backward", "dw", "flip-consistent"),
    },
    "buggy_conv_dx_unflipped": {("conv2d_backward", "dx", "flip-forgot")},
    "buggy_conv_crop": {("conv2d_backward", "dx", "crop-p-minus-p")},
    "buggy_conv_stride_ignored": {("conv2d_forward", "y", "stride-ignored")},
    "buggy_conv_flip_stride_crash": {("conv2d_forward", "y", "flip-forward")},
    "buggy_mean_gradients": {
        (function, output, "one-over-n")
        for function in ("conv2d_backward", "linear_backward")
        for output in ("dw", "db")
    },
    "buggy_pool_last_max": {("maxpool2d_backward", "dx", "ties")},
    "buggy_pool_float64_ties": {
        ("maxpool2d_backward", "dx", "ties"),
        ("maxpool2d_backward", "dx", "keep-dtype"),
    },
    "buggy_pool_overlap_assign": {("maxpool2d_backward", "dx", "overlap-assign")},
    "buggy_relu_zero_gradient": {("relu_backward", "dx", "exact-zeros")},
    "buggy_modifies_input": {("relu_forward", "x", "modified-input")},
    "buggy_shapes_and_dtypes": {
        ("linear_forward", "y", "keep-dtype"),
        ("maxpool2d_forward", "y", "ceil-size"),
        ("softmax_cross_entropy", "loss", "python-float-loss"),
    },
    "buggy_softmax_sum": {
        ("softmax_cross_entropy", "loss", "times-n"),
        ("softmax_cross_entropy", "dlogits", "times-n"),
    },
    "buggy_softmax_overflow": {
        ("softmax_cross_entropy", "loss", "subtract-max"),
        ("softmax_cross_entropy", "loss", "log-softmax"),
        ("softmax_cross_entropy", "dlogits", "subtract-max"),
    },
    "buggy_softmax_log_probs": {("softmax_cross_entropy", "loss", "log-softmax")},
    "buggy_softmax_overflow_sum": {
        ("softmax_cross_entropy", "dlogits", "times-n"),
        ("softmax_cross_entropy", "dlogits", "subtract-max"),
        ("softmax_cross_entropy", "loss", "subtract-max"),
        ("softmax_cross_entropy", "loss", "log-softmax"),
    },
    "buggy_layout_assumes_c": {
        ("relu_forward", "y", "layout"),
        ("relu_backward", "ValueError", "layout"),
    },
    "buggy_pass_bodies": set(),
    "hostile_nan_output": set(),
    "hostile_missing_and_raising": set(),
}


def hints_given(report) -> set[tuple[str, str, str]]:
    return {
        (name, finding.output, hint_id)
        for name, result in report.functions.items()
        for finding in result.findings
        for hint_id in finding.hint_ids
    }


@pytest.mark.slow
@pytest.mark.parametrize("fixture", sorted(EXPECTED_HINTS))
def test_each_fixture_gets_exactly_its_hints(fixture):
    assert hints_given(graded(fixture)) == EXPECTED_HINTS[fixture]


def test_every_hint_has_a_fixture_that_fires_it():
    from tinycnn.grading.hints import HINTS

    fired = {hint for expected in EXPECTED_HINTS.values() for _, _, hint in expected}
    assert fired == set(HINTS)
    kept = {path.stem for path in FIXTURES.glob("buggy_*.py")} | {"correct_vectorized"}
    assert kept <= set(EXPECTED_HINTS), "a buggy fixture is missing from the hint matrix"


def test_a_hint_rule_that_cannot_compute_gives_no_hint_and_no_crash(monkeypatch):
    from tinycnn.grading import hints

    def broken(*args):
        raise MemoryError("a candidate too large to compute")

    monkeypatch.setitem(hints._RULES, "values", (broken,))
    assert hints.hints_for_finding("relu_forward", "y", "values", [], []) is None


def finding(report, function: str, output: str, kind: str):
    found = [f for f in report.functions[function].findings if (f.output, f.kind) == (output, kind)]
    assert len(found) == 1, report.functions[function].detail
    return found[0]


def test_a_float64_result_does_not_hide_a_tie_bug_and_values_lead():
    # Issue 10: x = [[1, 1], [0, 0]], size 2, dy = [[1]] -> the file gives [[1, 1], [0, 0]].
    backward = graded("buggy_pool_float64_ties").functions["maxpool2d_backward"]
    assert backward.status == "fail"
    assert [(f.output, f.kind) for f in backward.findings] == [("dx", "values"), ("dx", "dtype")]
    values, dtype = backward.findings
    assert len(values.cases) == catalogue_count("maxpool2d", "ties")
    assert ("ties", len(values.cases), catalogue_count("maxpool2d", "ties")) in values.by_tag
    assert dict(values.by_dtype) == {
        "float64": len(values.cases) // 2,
        "float32": len(values.cases) // 2,
    }
    assert len(dtype.cases) == catalogue_count("maxpool2d") // 2 and dict(dtype.by_dtype) == {
        "float32": len(dtype.cases)
    }
    assert "dtype float64, expected float32" in dtype.message
    # The same complete feedback in the detail (JSON, Gradescope), one finding per line.
    assert backward.detail.split("\n") == [values.text, dtype.text]


def test_an_exception_on_some_cases_does_not_hide_a_shape_bug_on_others():
    report = graded("buggy_conv_crop")
    backward = report.functions["conv2d_backward"]
    assert backward.status == "error"
    raised = finding(report, "conv2d_backward", "ValueError", "raised")
    graded_cases = (*GRADED_CASES, *hidden_cases(SEED))  # the catalogue's and the run's hidden
    square = [c for c in graded_cases if c.op == "conv2d" and c.w_shape[2] == c.w_shape[3]]
    assert len(raised.cases) == catalogue_count("conv2d") - len(square)
    shape = finding(report, "conv2d_backward", "dx", "shape")
    assert set(shape.cases) == {c.id for c in square if c.padding == 0}
    assert "shape (2, 3, 0, 0), expected (2, 3, 7, 5)" in shape.message
    assert "output size" not in (shape.hint or "")


def test_a_crash_at_stride_2_does_not_hide_a_flipped_kernel():
    report = graded("buggy_conv_flip_stride_crash")
    forward = report.functions["conv2d_forward"]
    assert forward.status == "error"
    assert [(f.output, f.kind) for f in forward.findings] == [
        ("y", "values"),
        ("AssertionError", "raised"),
    ]
    values, raised = forward.findings
    graded_cases = cases_of("conv2d_forward", hidden_cases(SEED))  # the catalogue's and hidden
    stride_1 = [c for c, _ in graded_cases if c.stride == 1]
    assert set(raised.cases) == {c.id for c, _ in graded_cases if c.stride > 1}
    assert set(values.cases) == {c.id for c in stride_1 if "asymmetric-kernel" in c.tags}
    assert "only stride 1 is supported" in raised.message
    assert "flipped the kernel where no flip was needed" in values.hint


def test_n_times_too_large_shows_beside_an_overflowing_loss():
    report = graded("buggy_softmax_overflow_sum")
    scaled = finding(report, "softmax_cross_entropy", "dlogits", "values")
    assert scaled.hint_ids == ("times-n",)
    cases = {case.id: case for case in (*GRADED_CASES, *hidden_cases(SEED))}
    assert all("large-logits" not in cases[case_id].tags for case_id in scaled.cases)
    assert finding(report, "softmax_cross_entropy", "loss", "non-finite").hint


def test_subtract_the_max_only_where_the_shifted_computation_is_finite():
    log_probs = graded("buggy_softmax_log_probs").functions["softmax_cross_entropy"]
    assert "subtract each row's maximum" not in log_probs.detail
    assert "compute log-softmax directly" in log_probs.hint.lower()
    loss = finding(graded("buggy_softmax_log_probs"), "softmax_cross_entropy", "loss", "non-finite")
    assert "ce-n1k2-mag1000-underflow-f64" in loss.cases  # logits [[0, 1000]], label 0
    assert [f.output for f in log_probs.findings] == ["loss"]  # dlogits is right


def test_a_function_left_as_pass_is_not_implemented_not_a_wrong_value():
    report = graded("buggy_pass_bodies")
    for name, result in report.functions.items():
        if name == "relu_forward":
            assert result.status == "pass"
            continue
        assert result.status == "missing", (name, result.detail)
        assert result.detail == "not implemented yet (returns None: is its body still `pass`?)."
        assert result.findings == [] and result.hint is None


# --------------------------------------------------------------------------------------------
# Isolation and robustness: each hostile behaviour gets a clear verdict, the rest is graded
# --------------------------------------------------------------------------------------------


def test_a_syntax_error_gives_every_function_an_error():
    report = graded("hostile_syntax_error")
    assert set(statuses(report).values()) == {"error"}
    assert all(
        "does not compile" in r.detail and "line 6" in r.detail for r in report.functions.values()
    )


@pytest.mark.parametrize(
    ("helper", "reason"),
    [
        ("y = 1\n\nx = (\n", "'(' was never closed"),
        ("y = 1\n\nx = 'ab\n", "unterminated string literal"),
        ("y = 1\n\n    x = 2\n", "unexpected indent"),
    ],
)
def test_a_compile_error_names_its_line_once(tmp_path, helper, reason):
    # New user's README walkthrough, finding 2: the line of a compile error was said twice
    # ("unterminated string literal (detected at line 3) (line 3)"), and a helper's also with the
    # entry's import line ("... (utils.py, line 3) (line 1, in <module>)").
    template = TEMPLATE.read_text()
    (tmp_path / "alone.py").write_text(template + helper)
    line = len((template + helper).splitlines())  # the helper's last line is the wrong one
    report = grade_submission(tmp_path / "alone.py", limits=FAST, train=False)
    expected = f"the file does not compile: {reason} (line {line})."
    assert {r.detail for r in report.functions.values()} == {expected}

    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "utils.py").write_text(helper)
    (folder / "layers.py").write_text("import utils\n\n" + template)
    report = grade_submission(folder, limits=FAST, train=False, entry="layers")
    expected = f"the file does not compile: {reason} (utils.py, line 3)."
    assert {r.detail for r in report.functions.values()} == {expected}


def test_missing_functions_stubs_non_functions_and_exceptions():
    report = graded("hostile_missing_and_raising")
    got = statuses(report)
    assert got["relu_forward"] == "pass"
    assert got["conv2d_forward"] == "missing"
    assert "NotImplementedError" in report.functions["conv2d_forward"].detail
    assert got["linear_forward"] == "missing"
    assert "not a function" in report.functions["linear_forward"].detail
    assert got["conv2d_backward"] == "error"
    assert "ZeroDivisionError" in report.functions["conv2d_backward"].detail
    assert "line 20, in conv2d_backward" in report.functions["conv2d_backward"].detail
    assert got["relu_backward"] == "missing"
    assert "no function relu_backward" in report.functions["relu_backward"].detail


def test_a_missing_function_names_a_defined_name_that_only_looks_like_it():
    # Attacker, session 6b, G7: relu_forward written with a Cyrillic a was reported missing,
    # and nothing said why.
    report = graded("hostile_homoglyph_names")
    got = statuses(report)
    assert got["relu_forward"] == "missing"
    assert report.functions["relu_forward"].detail == (
        "no function relu_forward in the submission: it defines relu_forw\u0430rd, which has "
        "U+0430 CYRILLIC SMALL LETTER A where relu_forward has 'a'."
    )
    # Not for an ASCII near miss (relu_backwrd), nor for a function it does not define at all.
    assert got["relu_backward"] == "missing"
    assert (
        report.functions["relu_backward"].detail == "no function relu_backward in the submission."
    )
    assert report.functions["conv2d_forward"].detail == (
        "no function conv2d_forward in the submission."
    )
    # A fullwidth letter is not a look-alike but the letter: Python reads identifiers
    # NFKC-normalised, so the file's linear_forward is graded, and passes.
    assert got["linear_forward"] == "pass"


@pytest.mark.parametrize(
    "name",
    [
        "relu_forwad",  # an ASCII near miss: shorter
        "relu_forwArd",  # an ASCII character differs
        "relu_forw\u0430rx",  # a non-ASCII one and an ASCII one differ
        "relu_forward",  # the name itself
        "\u30ea\u30eb\u30fc\u524d\u65b9\u5411\u95a2\u6570\u306e\u540d\u524d\u3067",  # 12 CJK
        "relu_\u65e5\u672c\u8a9eward",  # three CJK letters in place of 'for' (attacker, F7)
        "relu_forw\u0430\u0440\u0434",  # three Cyrillic letters
    ],
)
def test_a_name_not_differing_only_at_a_few_non_ascii_characters_gets_no_homoglyph_note(name):
    from tinycnn.grading.grader import homoglyph_note

    assert homoglyph_note("relu_forward", [name]) is None


def test_a_homoglyph_note_names_every_differing_character_and_is_cleaned():
    from tinycnn.grading.grader import homoglyph_note

    assert homoglyph_note("relu_forward", ["r\u0435lu_forw\u0430rd"]) == (
        "it defines r\u0435lu_forw\u0430rd, which has U+0435 CYRILLIC SMALL LETTER IE where "
        "relu_forward has 'e', and U+0430 CYRILLIC SMALL LETTER A where it has 'a'"
    )
    # A character no reader sees is written as its escape (clean_name), never as itself.
    assert homoglyph_note("relu_forward", ["relu_forw\u034frd"]) == (
        "it defines relu_forw\\u034frd, which has U+034F COMBINING GRAPHEME JOINER where "
        "relu_forward has 'a'"
    )
    many = [f"relu_forw{c}rd" for c in "\u0430\u00e0\u00e1\u00e2\u00e4"]
    note = homoglyph_note("relu_forward", many)
    assert note.count("it defines") == 3 and note.endswith(" (and 2 more such names)")


def test_a_course_api_s_missing_function_names_the_look_alike_of_each_name_it_needs():
    from tinycnn.grading.grader import _missing_detail
    from tinycnn.grading.submission import SourceFile, Submission, defined_names

    entry = SourceFile(
        "layers.py", "def affine_forw\u0430rd(x, w, b):\n    pass\n".encode(), "layers.py"
    )
    submission = Submission("layers.py", (entry,), api="cs231n")
    detail = _missing_detail(submission, "linear_backward", defined_names(entry))
    assert detail == (
        "needs affine_forward and affine_backward (--api cs231n); the submission does not "
        "define it: it defines affine_forw\u0430rd, which has U+0430 CYRILLIC SMALL LETTER A "
        "where affine_forward has 'a'."
    )


@pytest.mark.slow
def test_an_endless_loop_times_out_only_its_function():
    started = time.monotonic()
    report = grade_submission(
        FIXTURES / "hostile_endless_loop.py", limits=Limits(timeout=1.0), train=False
    )
    assert time.monotonic() - started < 8
    assert report.functions["relu_backward"].status == "timeout"
    assert "time limit of 1 s" in report.functions["relu_backward"].detail
    assert report.functions["relu_forward"].status == "pass"


def test_tens_of_gigabytes_hit_the_memory_limit():
    report = graded("hostile_huge_allocation")
    for name in ("linear_forward", "linear_backward"):
        result = report.functions[name]
        assert result.status == "error"
        assert "ran out of memory" in result.detail and "MiB" in result.detail
    assert report.functions["relu_forward"].status == "pass"


def test_nan_and_infinite_outputs_fail():
    report = graded("hostile_nan_output")
    for name in ("relu_forward", "maxpool2d_forward"):
        result = report.functions[name]
        assert result.status == "fail"
        assert "non-finite" in result.detail
        assert result.max_rel_error == float("inf")


def test_sys_exit_at_import_is_reported():
    report = graded("hostile_exit_at_import")
    assert report.policy == []  # sys is the standard library: allowed
    assert set(statuses(report).values()) == {"error"}
    assert all("SystemExit('graded: 100%')" in r.detail for r in report.functions.values())


def test_os_exit_at_import_is_reported():
    report = graded("hostile_os_exit_at_import", allow=("os",))
    assert set(statuses(report).values()) == {"error"}
    assert all(
        "while the submission was being imported" in r.detail for r in report.functions.values()
    )


def test_exits_inside_functions_fail_only_those_functions():
    report = graded("hostile_exit_in_function", allow=("os", "sys"))
    got = statuses(report)
    assert got["relu_forward"] == "pass"
    assert got["relu_backward"] == got["maxpool2d_forward"] == got["linear_forward"] == "error"
    assert "SystemExit(0)" in report.functions["relu_backward"].detail
    assert "SystemExit(1)" in report.functions["maxpool2d_forward"].detail
    assert "exited with status 0" in report.functions["linear_forward"].detail


def test_replacing_numpy_or_the_checker_changes_no_verdict_and_breaks_the_policy():
    report = graded("hostile_monkeypatch")
    assert report.functions["linear_forward"].status == "fail"  # np.allclose patched in vain
    assert report.functions["relu_forward"].status == "pass"
    assert not report.passed
    policy = " | ".join(report.policy)
    assert "import tinycnn (line 18) is not allowed" in policy
    assert "numpy.allclose" in policy and "numpy.testing.assert_allclose" in policy
    assert "builtins.isinstance" in policy


def test_fake_printed_results_change_nothing():
    report = graded("hostile_fake_prints")
    assert statuses(report)["relu_forward"] == statuses(report)["relu_backward"] == "fail"
    assert not any("FAKE" in r.detail for r in report.functions.values())


def test_importing_torch_fails_the_submission_with_the_import_named():
    # The import itself works (a placeholder), so every function is still graded; using torch or
    # jax raises in the functions that do.
    report = graded("hostile_imports_torch")
    assert not report.passed
    got = statuses(report)
    assert got.pop("conv2d_forward") == got.pop("relu_forward") == "error"
    assert set(got.values()) == {"missing"}
    assert "PlaceholderError: torch.from_numpy is not available" in (
        report.functions["conv2d_forward"].detail
    )
    assert "jax.nn.relu is not available" in report.functions["relu_forward"].detail
    assert report.policy[0].startswith("import torch (line 8) is not allowed")
    assert report.policy[1].startswith("import jax (line 18) is not allowed")  # __import__("jax")
    assert "--allow-import torch" in report.policy[0]


def test_the_submission_is_never_imported_into_the_checker():
    for name in ("correct_vectorized", "hostile_exit_at_import", "hostile_monkeypatch"):
        graded(name)
    files = {str(getattr(module, "__file__", None)) for module in list(sys.modules.values())}
    assert not any(str(FIXTURES) in file for file in files)
    import numpy as np

    assert not np.allclose(1.0, 2.0)  # hostile_monkeypatch patched only its own process


def test_every_report_uses_only_the_documented_statuses():
    for name in ("buggy_shapes_and_dtypes", "hostile_missing_and_raising", "hostile_nan_output"):
        assert set(statuses(graded(name)).values()) <= set(STATUSES)


@pytest.mark.slow
def test_a_whole_hostile_submission_is_graded_in_under_a_minute_with_default_limits():
    started = time.monotonic()
    report = grade_submission(FIXTURES / "hostile_everything.py", allow_imports=("os", "sys"))
    assert time.monotonic() - started < 60
    assert statuses(report) == {
        "conv2d_forward": "timeout",
        "conv2d_backward": "error",
        "relu_forward": "fail",
        "relu_backward": "error",
        "maxpool2d_forward": "error",
        "maxpool2d_backward": "missing",
        "linear_forward": "fail",
        "linear_backward": "missing",  # returns None: not implemented (issue 10, item 4)
        "softmax_cross_entropy": "error",
    }
    assert "numpy.allclose" in " ".join(report.policy)
    assert report.training is None


# --------------------------------------------------------------------------------------------
# Edge cases of the judging, and work done once
# --------------------------------------------------------------------------------------------


def test_a_run_timeout_after_every_case_is_recorded_says_so():
    # The child's last case finished, then it was killed (e.g. stuck on exit): no case to name.
    from tinycnn.parity_tests.cases import make_inputs

    from tinycnn.grading import grader
    from tinycnn.grading.sandbox import ChildRun

    cases = cases_of("relu_forward")
    calls = []
    for case, _ in cases:
        inputs = make_inputs(case)
        calls.append(
            {
                "outcome": "returned",
                "result": np.maximum(inputs["x"], 0),
                "inputs_after": inputs,
                "seconds": 0.0,
            }
        )
    run = ChildRun(import_result={"ok": True}, calls=calls, timed_out="run")
    result = grader._judge_function("relu_forward", run, cases, FAST)
    assert result.status == "timeout"
    assert f"{len(cases)} of {len(cases)} cases done" in result.detail
    assert "after its last case" in result.detail


def test_an_unreadable_file_is_an_error_verdict_and_a_missing_one_raises(tmp_path):
    fifo = tmp_path / "fifo.py"
    os.mkfifo(fifo)  # not a regular file: refused without blocking on it
    report = grade_submission(fifo, limits=FAST, train=False)
    assert set(statuses(report).values()) == {"error"} and not report.passed
    assert all("cannot read fifo.py" in r.detail for r in report.functions.values())
    # A folder is one student's submission: an empty one has nothing to grade.
    folder = tmp_path / "folder.py"
    folder.mkdir()
    report = grade_submission(folder, limits=FAST, train=False)
    assert set(statuses(report).values()) == {"error"} and not report.passed
    assert all("no .py or .ipynb file in" in r.detail for r in report.functions.values())
    with pytest.raises(FileNotFoundError):
        grade_submission(tmp_path / "absent.py", limits=FAST, train=False)


def test_each_case_builds_its_inputs_once(monkeypatch):
    from tinycnn.grading import grader

    built = []
    real = grader.make_inputs
    monkeypatch.setattr(grader, "make_inputs", lambda case: built.append(case.id) or real(case))
    grader._expected.cache_clear()
    grader._inputs.cache_clear()
    case, direction = cases_of("conv2d_backward")[0]
    grader._expected(case, direction)
    grader._expected.cache_clear()  # later tests recompute with the real make_inputs
    grader._inputs.cache_clear()
    assert built == [case.id]


def test_the_training_dataset_is_generated_once_for_every_submission(monkeypatch):
    from tinycnn.reference import data

    from tinycnn.grading import grader

    made = []
    real = data.make_dataset
    monkeypatch.setattr(data, "make_dataset", lambda *a, **k: made.append(1) or real(*a, **k))
    monkeypatch.setattr(grader, "_REFERENCE_RUNS", {})
    monkeypatch.setattr(grader, "_DATASETS", {}, raising=False)
    setup = grader.TrainingSetup(
        config={"epochs": 1, "batch_size": 16, "lr": 0.1, "momentum": 0.9, "seed": 0},
        data={"n_classes": 3, "n_train": 32, "n_val": 16, "seed": 0},
    )
    params, accuracy = grader._reference_training(setup)
    for _ in range(3):  # three passing submissions
        assert grader._validation_accuracy(setup, params) == accuracy
    assert len(made) == 1
