"""The one markdown table renderer of the project (report, benchmark and grading feedback).

:func:`markdown_table` formats the cells (a per-column function, or a default that writes
booleans as yes/no, floats with 6 significant digits and NaN as an empty cell) and hands the
strings to :meth:`pandas.DataFrame.to_markdown`, which renders them with ``tabulate`` in its
``pipe`` format, the GitHub-flavoured markdown table.

>>> import pandas as pd
>>> print(markdown_table(pd.DataFrame({"op": ["relu"], "ok": [True]})))
| op   | ok   |
|:-----|:-----|
| relu | yes  |
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["ALIGNMENTS", "format_cell", "markdown_table"]

#: Column alignments tabulate understands (``colalign``).
ALIGNMENTS = ("left", "right", "center")


def format_cell(value) -> str:
    """Default text of a cell: ``yes``/``no`` for booleans, ``%.6g`` for floats, ``""`` for NaN."""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return "" if np.isnan(value) else f"{value:.6g}"
    if value is None:
        return ""
    return str(value)


def _escape(text: str) -> str:
    # A "|" inside a cell would end it, a line break would end the row.
    return text.replace("|", "\\|").replace("\r\n", " ").replace("\n", " ")


def markdown_table(
    table: pd.DataFrame | Sequence[Mapping],
    formats: Mapping[str, Callable[[object], object]] | None = None,
    columns: Sequence[str] | None = None,
    headers: Mapping[str, str] | None = None,
    align: Mapping[str, str] | None = None,
) -> str:
    """A GitHub-flavoured markdown table of ``table``, one row per row.

    Parameters
    ----------
    table : DataFrame or sequence of dicts
        The rows; a list of dicts is turned into a DataFrame (keys are column names).
    formats : mapping of column name to callable, optional
        ``formats[column](value)`` gives the text of a cell of that column (``str`` is applied
        to what it returns); other columns use :func:`format_cell`.
    columns : sequence of str, optional
        Columns to show, in order (default: all, in the table's order).
    headers : mapping of column name to str, optional
        Header text of a column (default: the column name).
    align : mapping of column name to {"left", "right", "center"}, optional
        Alignment of a column (default: left).

    Returns
    -------
    str
        The table without a trailing newline. Cells are strings exactly as formatted (no
        number parsing by tabulate); ``|`` in a cell is escaped and line breaks become spaces.

    Raises
    ------
    KeyError
        A name in ``columns`` is not a column of ``table``.
    ValueError
        An alignment is not one of :data:`ALIGNMENTS`.
    """
    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(list(table))
    formats, headers, align = formats or {}, headers or {}, align or {}
    columns = list(frame.columns if columns is None else columns)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"no column {missing[0]!r} in the table (columns: {list(frame.columns)})")
    bad = {c: a for c, a in align.items() if a not in ALIGNMENTS}
    if bad:
        raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {bad}")
    rows = [
        [_escape(str(formats[c](row[c])) if c in formats else format_cell(row[c])) for c in columns]
        for row in frame.to_dict(orient="records")  # keeps each column's type (iterrows does not)
    ]
    cells = pd.DataFrame(rows, columns=[_escape(str(headers.get(c, c))) for c in columns])
    return cells.to_markdown(
        index=False,
        tablefmt="pipe",
        disable_numparse=True,
        colalign=[align.get(c, "left") for c in columns],
    )
