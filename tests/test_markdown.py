"""The one markdown table renderer (:mod:`tinycnn.markdown`)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from tinycnn.markdown import markdown_table


def cells(line: str) -> list[str]:
    """The cells of one table line, stripped (an escaped ``\\|`` stays inside its cell)."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]


def test_cells_are_formatted_and_pipes_escaped():
    table = pd.DataFrame({"name": ["|x|", "y"], "value": [0.5, np.nan], "ok": [True, False]})
    text = markdown_table(table, formats={"value": lambda v: "-" if np.isnan(v) else f"{v:.0%}"})
    lines = text.splitlines()
    assert [cells(line) for line in lines] == [
        ["name", "value", "ok"],
        [":-------", ":--------", ":-----"],
        ["\\|x\\|", "50%", "yes"],
        ["y", "-", "no"],
    ]
    assert len({len(line) for line in lines}) == 1  # padded: the raw text is aligned too


def test_default_cells_floats_nan_none_and_line_breaks():
    table = pd.DataFrame({"x": [1 / 3, np.nan], "s": ["two\nlines", None]})
    lines = markdown_table(table).splitlines()
    assert cells(lines[2]) == ["0.333333", "two lines"]
    assert cells(lines[3]) == ["", ""]


def test_numbers_stay_as_formatted_and_columns_align():
    # tabulate would parse "1.50" as a number and print 1.5; the renderer keeps the text.
    text = markdown_table(
        [{"ratio": "1.50", "name": "conv"}],
        columns=["name", "ratio"],
        headers={"ratio": "numpy/torch"},
        align={"ratio": "right"},
    )
    header, rule, row = text.splitlines()
    assert cells(header) == ["name", "numpy/torch"]
    assert cells(rule)[1].endswith("-:") and cells(rule)[0].startswith(":-")
    assert row.endswith(" 1.50 |") and cells(row) == ["conv", "1.50"]


def test_bad_column_or_alignment_is_an_error():
    table = pd.DataFrame({"a": [1]})
    with pytest.raises(KeyError, match="no column 'b'"):
        markdown_table(table, columns=["b"])
    with pytest.raises(ValueError, match="alignment must be one of"):
        markdown_table(table, align={"a": "middle"})
