"""Class mode's summary (the folder table and its CSV): each failing submission says why, in a
short, sanitised line, and no CSV cell is left empty (issue 10 review, items 3 and 6).

The reasons expected here are the fixtures' known contents (the line of a syntax error, the
exception a function raises), never text copied from the grader's output.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import pytest

from tinycnn.grading.grader import grade_submission
from tinycnn.grading.report import (
    CSV_REASON,
    SUMMARY_COLUMNS,
    TABLE_REASON,
    failure_reason,
    folder_table,
    summary_csv,
)
from tinycnn.grading.sandbox import Limits

FIXTURES = Path(__file__).parent / "fixtures" / "submissions"
FAST = Limits(timeout=20.0, train_timeout=60.0)


@functools.cache
def graded(path: Path):
    return grade_submission(path, limits=FAST, train=False, seed=7)


def fixture(name: str):
    return graded(FIXTURES / f"{name}.py")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        # does not compile: `def conv2d_forward(x, w, b, stride=1, padding=0)` lacks its colon
        ("hostile_syntax_error", "the file does not compile: expected ':' (line 6)."),
        # `import torch` on line 8: the policy leads, whatever else fails
        # (and `import jax` on line 18: counted, the rule's reason left to the policy column)
        (
            "hostile_imports_torch",
            "import policy: import torch (line 8) is not allowed (and 1 more)",
        ),
        # conv2d_forward raises NotImplementedError (missing), conv2d_backward divides by zero:
        # a function that fails for a reason of its own leads over one not written yet
        (
            "hostile_missing_and_raising",
            "conv2d_backward: raised ZeroDivisionError: division by zero at line 20",
        ),
        ("buggy_relu_zero_gradient", "relu_backward: dx: wrong values in 8 of 32 cases"),
        ("buggy_pass_bodies", "conv2d_forward: not implemented yet (returns None"),
        ("correct_vectorized", "none"),
    ],
)
def test_each_submission_says_why_it_does_not_pass(name, reason):
    report = fixture(name)
    assert failure_reason(report).startswith(reason), failure_reason(report)
    row = next(csv.DictReader(summary_csv([report]).splitlines()))
    assert row["reason"].startswith(reason)
    table = folder_table([report]).splitlines()
    assert table[0].split("|")[-2].strip() == "first reason"
    cell = table[2].split("|")[-2].strip()
    assert cell == ("-" if name == "correct_vectorized" else failure_reason(report, TABLE_REASON))
    assert cell == "-" or cell.startswith(reason[: TABLE_REASON - 3])


def test_the_reason_is_short_and_safe_to_print_and_to_open(tmp_path):
    # A student's exception message with an ANSI escape, a newline, a pipe and a leading "=":
    # the table keeps one row per submission, the CSV one row, no escape reaches the terminal.
    path = tmp_path / "sly.py"
    path.write_text(
        "def conv2d_forward(x, w, b, stride=1, padding=0):\n"
        "    raise ValueError('\\x1b[31m=HYPERLINK(x)|fake,True,9\\n' + 'z' * 500)\n"
    )
    report = graded(path)
    reason = failure_reason(report)
    assert reason.startswith("conv2d_forward: raised ValueError: =HYPERLINK(x)|fake,True,9 zz")
    assert len(reason) == CSV_REASON and reason.endswith("...")
    assert not any(ord(c) < 32 for c in reason) and "\x1b" not in reason
    table = folder_table([report])
    assert "\x1b" not in table and len(table.splitlines()) == 5  # header, rule, row, 2 notes
    assert "HYPERLINK(x)\\|fake" in table  # the pipe escaped, the cell not split
    rows = list(csv.DictReader(summary_csv([report]).splitlines()))
    assert len(rows) == 1 and rows[0]["reason"] == reason


def test_no_cell_of_the_class_csv_is_empty():
    reports = [
        fixture(name)
        for name in ("correct_vectorized", "hostile_imports_torch", "hostile_syntax_error")
    ]
    rows = list(csv.DictReader(summary_csv(reports).splitlines()))
    assert list(rows[0]) == list(SUMMARY_COLUMNS)
    for row in rows:
        assert all(value != "" for value in row.values()), row
    correct, torch, syntax = rows
    # What each explicit value means (summary_csv's docstring, README).
    assert correct["policy"] == syntax["policy"] == "ok"
    assert torch["policy"].startswith("import torch (line 8) is not allowed")
    assert correct["val_accuracy"] == "skipped"  # --no-train
    assert syntax["val_accuracy"] == "not run"  # runs only once every function passes
    assert {row["regraded_alone"] for row in rows} == {"no"}
