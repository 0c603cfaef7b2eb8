"""What the checker itself reads of a submission is bounded (attacker, session 6, F12, F13).

The checker parses a student's files outside the sandbox (to find the functions, the imports,
a notebook's cells): a list literal of 8 million items inside the 16 MiB read budget took it
8.7 GB and minutes; a 600-deep ``lambda`` in a notebook's set-aside cell made the note about it
raise RecursionError and lost a whole class's outputs.
"""

from __future__ import annotations

import nbformat
import pytest

from tinycnn.grading import grader
from tinycnn.grading.grader import grade_submission
from tinycnn.grading.policy import MAX_TOKENS, SourceTooLarge, parse_source, scan_imports
from tinycnn.grading.submission import load_submission

RELU = "import numpy as np\n\n\ndef relu_forward(x):\n    return np.maximum(x, 0)\n"


def big_literal(items: int) -> str:
    return RELU + "\nBIG = [" + "1," * items + "]\n"


def test_text_over_the_token_budget_is_refused_before_parsing_and_under_it_parses():
    assert parse_source(big_literal(MAX_TOKENS // 2 - 100)).body  # just under: parsed
    with pytest.raises(SourceTooLarge, match="more than 200,000 words and symbols"):
        parse_source(big_literal(MAX_TOKENS // 2 + 100))
    with pytest.raises(SourceTooLarge):  # as bytes, as scan_imports gets them
        scan_imports(big_literal(MAX_TOKENS).encode())
    assert [use.module for use in scan_imports(RELU)] == ["numpy"]


def test_a_file_too_large_to_read_is_an_error_for_every_function_and_says_why(tmp_path):
    path = tmp_path / "big.py"
    path.write_text(big_literal(4 * MAX_TOKENS))  # 1.6 MB; the attacker's took 8.7 GB
    submission = load_submission(path)
    assert submission.problem is None  # read; refused when graded, with the reason
    report = grade_submission(path, train=False, seed=1)
    assert {r.status for r in report.functions.values()} == {"error"}
    detail = report.functions["relu_forward"].detail
    assert detail.startswith("the file is too large: more than 200,000 words and symbols")


def deep_lambda_notebook(depth: int) -> str:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("import numpy as np"),
        nbformat.v4.new_code_cell("X = " + "lambda: " * depth + "1"),
        nbformat.v4.new_code_cell("def relu_forward(x):\n    X\n    return np.maximum(x, 0)"),
    ]
    return nbformat.writes(notebook)


def test_a_note_about_a_statement_too_deep_to_unparse_names_what_it_binds(tmp_path):
    path = tmp_path / "deep.ipynb"
    path.write_text(deep_lambda_notebook(1000))
    submission = load_submission(path)  # raised RecursionError (F13)
    assert submission.problem is None
    assert "deep.ipynb, cell 2, line 1: `X = ...` is not run, and relu_forward reads X" in (
        submission.set_aside
    )
    shallow = tmp_path / "shallow.ipynb"
    shallow.write_text(deep_lambda_notebook(2))
    assert any(
        "`X = lambda: lambda: 1` is not run" in n for n in load_submission(shallow).set_aside
    )


@pytest.mark.parametrize("error", [RecursionError, MemoryError])
def test_a_reader_that_still_fails_costs_that_submission_its_grade_not_the_run(
    error, tmp_path, monkeypatch
):
    def fails(*args, **kwargs):
        raise error("deep")

    monkeypatch.setattr(grader, "load_submission", fails)
    (tmp_path / "alice.py").write_text(RELU)
    report = grade_submission(tmp_path / "alice.py", train=False, seed=1)
    assert {r.status for r in report.functions.values()} == {"error"}
    assert (
        f"the checker could not read it ({error.__name__})"
        in report.functions["relu_forward"].detail
    )
