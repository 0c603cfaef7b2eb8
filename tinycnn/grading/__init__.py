"""``tinycnn check``: grade student implementations of the op contract.

- :mod:`.sandbox` runs a submission in a child process (time and memory limits, results as
  arrays); :mod:`.child` is the script that child runs;
- :mod:`.policy` is the "from scratch" import rule; :mod:`.hints` names likely mistakes;
- :mod:`.grader` compares everything with the reference, in the checker's own process;
- :mod:`.report` renders the table, ``--json``, Gradescope's ``results.json`` and the CSV;
- :mod:`.submission` reads what a student handed in (a file, a notebook via :mod:`.notebook`, a
  folder of modules); :mod:`.adapters` calls course layer APIs (``--api``) in the child;
- :mod:`.folder` grades a folder in parallel; :mod:`.command` is the ``check`` subcommand.

>>> from tinycnn.grading import grade_submission  # doctest: +SKIP
>>> grade_submission("student.py").passed  # doctest: +SKIP
True
"""

__all__ = ["SubmissionReport", "grade_submission"]


def __getattr__(name: str):
    # Imported on first use: the grader loads the whole case catalogue, and every `tinycnn`
    # command imports this package (for `check`'s options) without grading anything.
    if name in __all__:
        from tinycnn.grading import grader

        return getattr(grader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
