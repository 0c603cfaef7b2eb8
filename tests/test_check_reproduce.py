"""``tinycnn check FILE --case ID``: one case in full and a NumPy-only snippet that repeats it."""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import numpy as np
import pytest
from tinycnn.parity_tests.cases import CASES, find_case, make_inputs
from tinycnn.parity_tests.harness import FUNCTIONS, call_op
from tinycnn.parity_tests.kinds import one_of_each_kind
from tinycnn.reference import ops as reference_ops

from tinycnn.grading.grader import CaseRun, FunctionResult, output_names
from tinycnn.grading.reproduce import snippet

sys.path.insert(0, str(Path(__file__).parent))
from test_check_command import FIXTURES, check


def run_for(case_id: str, direction: str) -> CaseRun:
    case = find_case(case_id)
    inputs = make_inputs(case)
    with np.errstate(all="ignore"):  # the special-value cases
        result = call_op(reference_ops, case, direction, make_inputs(case))
    values = result if isinstance(result, tuple) else (result,)
    expected = dict(zip(output_names(case, direction), values, strict=True))
    function = FUNCTIONS[(case.op, direction)]
    return CaseRun(
        function, direction, case, inputs, expected, None, FunctionResult(function, "pass")
    )


def execute(code: str, function) -> tuple[dict, str]:
    """Run a snippet with the student's function defined; return its namespace and output."""
    namespace = {function.__name__: function}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<snippet>", "exec"), namespace)
    return namespace, out.getvalue()


# The reference ops, like NumPy, warn where IEEE arithmetic creates a NaN (inf - inf, 0 * inf) in
# the special-value cases; the values are PyTorch's (see reference/ops.py). One case of each kind
# (every layout, special value and dtype of each op) by default, every case in the slow run.
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("case", one_of_each_kind(CASES))
def test_the_snippet_rebuilds_every_input_bit_for_bit_in_its_memory_layout(case):
    direction = "backward" if case.op != "softmax_cross_entropy" else "forward"
    run = run_for(case.id, direction)
    seen = {}

    def student(*args, **kwargs):
        seen["args"], seen["kwargs"] = args, kwargs
        with np.errstate(all="ignore"):  # the special-value cases
            return call_op(reference_ops, case, direction, make_inputs(case))

    student.__name__ = run.function
    with np.errstate(all="ignore"):  # the snippet's own comparison of infinities
        _, printed = execute(snippet(run), student)
    want = make_inputs(case)
    order = ("logits", "labels") if case.op == "softmax_cross_entropy" else ("dy", "x", "w", "b")
    got = dict(zip([name for name in order if name in want], seen["args"], strict=True))
    assert set(got) == set(want)
    for name, array in want.items():
        rebuilt = got[name]
        assert rebuilt.dtype == array.dtype and rebuilt.shape == array.shape, name
        assert np.array_equal(rebuilt, array, equal_nan=True), name
        assert np.signbit(rebuilt).tolist() == np.signbit(array).tolist(), name  # -0.0 stays
        assert rebuilt.flags.c_contiguous == array.flags.c_contiguous, name
        assert rebuilt.flags.f_contiguous == array.flags.f_contiguous, name
        if array.size:  # (an empty array's strides mean nothing)
            assert np.sign(rebuilt.strides).tolist() == np.sign(array.strides).tolist(), name
    assert printed.count(" ok ") == len(run.expected) and "DIFFERS" not in printed


def test_the_snippet_reports_what_differs():
    run = run_for("pool-n2c3-h4w6-k2-s2-ties-f32", "backward")

    def maxpool2d_backward(dy, x, size, stride):  # float64 and every maximum of a tie
        dx = np.zeros(x.shape)
        for i in range(dy.shape[2]):
            for j in range(dy.shape[3]):
                rows, cols = (
                    slice(i * stride, i * stride + size),
                    slice(j * stride, j * stride + size),
                )
                window = x[:, :, rows, cols]
                mask = window == window.max(axis=(2, 3), keepdims=True)
                dx[:, :, rows, cols] += mask * dy[:, :, i, j][:, :, None, None]
        return dx

    _, printed = execute(snippet(run), maxpool2d_backward)
    assert "dx DIFFERS: dtype float64 expected float32" in printed
    assert "dx DIFFERS max |got - expected|" in printed

    def nan_everywhere(dy, x, size, stride):
        return np.full(x.shape, np.nan, dtype=x.dtype)

    nan_everywhere.__name__ = "maxpool2d_backward"
    assert "dx DIFFERS" in execute(snippet(run), nan_everywhere)[1]


def test_check_case_prints_inputs_expected_returned_verdict_and_snippet(capfd):
    case_id = "conv-n2c3f4-h7w5-k3x3-s1-p0-f64"  # padding 0: the p:-p crop is empty
    assert check(FIXTURES / "buggy_conv_crop.py", "--case", case_id) == 1
    out = capfd.readouterr().out
    assert f"case: {find_case(case_id).describe()}" in out
    assert "inputs:" in out and "x: shape (2, 3, 7, 5), float64, C-contiguous" in out
    assert "conv2d_forward (forward): PASS" in out and "conv2d_backward (backward): FAIL" in out
    assert "dx: shape (2, 3, 0, 0), float64" in out  # returned
    assert "dx: shape (2, 3, 7, 5), float64" in out  # expected
    assert "p:-p" in out  # the hint
    assert "dx, dw, db = conv2d_backward(dy, x, w, b, stride=1, padding=0)" in out
    code = out.split("notebook (NumPy only):")[1]
    assert (
        "import torch" not in code and "from tinycnn" not in code and "import tinycnn" not in code
    )


def test_check_case_passes_a_correct_file_and_refuses_unknown_ids_and_folders(capfd):
    assert check(FIXTURES / "correct_vectorized.py", "--case", "relu-n4d18-zeros-f32") == 0
    assert "relu_backward (backward): PASS" in capfd.readouterr().out
    assert check(FIXTURES / "correct_vectorized.py", "--case", "no-such-case") == 2
    assert "no case with id 'no-such-case'" in capfd.readouterr().err
    assert check(FIXTURES, "--case", "relu-n4d18-zeros-f32") == 2


def test_check_case_reads_course_code_through_its_api(capfd):
    course = Path(__file__).parent / "fixtures" / "courses" / "cs231n_layers_crop_bug.py"
    case_id = "conv-n2c3f4-h7w5-k3x3-s1-p0-f64"
    argv = ("--api", "cs231n", "--allow-import", "builtins", "--case", case_id)
    assert check(course, *argv) == 1
    out = capfd.readouterr().out
    assert "conv2d_forward (forward): PASS" in out and "conv2d_backward (backward): FAIL" in out
    assert "p:-p" in out and "--api cs231n" in out


def test_a_failing_hidden_case_is_printed_everywhere_and_its_id_reproduces_it(capfd, tmp_path):
    import json
    import re

    from tinycnn.parity_tests.cases import hidden_cases

    buggy = FIXTURES / "buggy_relu_zero_gradient.py"  # dx wrong where x == 0, in every run
    verdict, results = tmp_path / "verdict.json", tmp_path / "results.json"
    assert check(buggy, "--seed", "5", "--json", verdict, "--gradescope", results) == 1
    table = " ".join(capfd.readouterr().out.split())  # unwrapped
    drawn = {case.id for case in hidden_cases(5)}
    [finding] = json.loads(verdict.read_text())["functions"]["relu_backward"]["findings"]
    hidden = finding["hidden_cases"]
    # Every failing hidden case of the run, and only those, in the JSON; one of them printed.
    assert hidden and set(hidden) <= drawn
    assert hidden == [case for case in finding["cases"] if case in drawn]
    assert f"First hidden case: {hidden[0]} ({len(hidden)} hidden cases fail)" in table
    command = re.search(r"one case in full: tinycnn check \S+ --case (\S+) --seed 5", table)
    assert command and command.group(1) == hidden[0]
    gradescope = json.loads(results.read_text())
    [test] = [t for t in gradescope["tests"] if t["name"] == "relu_backward"]
    assert hidden[0] in test["output"] and command.group(0) in gradescope["output"]
    # The printed id and seed repeat that case, and it fails the same way.
    assert check(buggy, "--case", hidden[0], "--seed", "5") == 1
    out = capfd.readouterr().out
    assert out.startswith(f"tinycnn check {buggy} --case {hidden[0]} --seed 5")
    assert "hidden values" in out and "relu_backward (backward): FAIL" in out
    assert "dx: wrong values in 1 of 1 cases" in out and "exactly 0" in out  # the hint
    # Without the run's seed there is no such case.
    assert check(buggy, "--case", hidden[0], "--seed", "6") == 2
    assert "no hidden case" in capfd.readouterr().err
