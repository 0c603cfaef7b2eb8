"""Folder mode of ``tinycnn check``: grade every submission in a folder, in parallel.

Each submission is graded by :func:`~tinycnn.grading.grader.grade_submission`, whose real work
happens in child processes; the parent's share is comparing arrays. So locally the submissions
run on *threads*: no pickling, and the expected values (computed once per process) are shared
by every submission. With a Dask scheduler each submission is a job on the cluster instead
(:func:`tinycnn.parallel.run_jobs`).

Seeds: every submission of one run is graded on the same inputs (the catalogue's, and hidden
cases from the run's one seed) and trained from the same seed, on purpose, so that verdicts are
comparable between students. A grading therefore depends on the file and the seed only, not on
which worker grades it, in what order, or how many are graded at once.

Isolation: each submission is graded from a private copy in a sandbox of its own (see
:mod:`tinycnn.grading.sandbox`); nothing writable is shared between submissions, and the
checker's outputs are written only after every sandbox has ended.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from pathlib import Path

from tinycnn.grading.channel import clean_text
from tinycnn.grading.grader import SubmissionReport, grade_submission, new_seed
from tinycnn.grading.sandbox import Limits
from tinycnn.parallel import run_jobs

__all__ = ["grade_folder"]


def grade_folder(
    files: Sequence[Path],
    *,
    jobs: int = 1,
    allow_imports: tuple[str, ...] = (),
    limits: Limits | None = None,
    train: bool = True,
    scheduler: str | None = None,
    api: str = "tinycnn",
    entry: str | None = None,
    seed: int | None = None,
    isolation: str | None = None,
) -> list[SubmissionReport]:
    """Grade ``files`` with ``jobs`` submissions at a time; reports in the order of ``files``.

    Each of ``files`` is one student's submission: a ``.py`` file, a ``.ipynb`` notebook or a
    folder of the student's modules (read with ``api`` and ``entry``, see
    :func:`~tinycnn.grading.submission.load_submission`).

    The child processes of one submission share the machine with the other submissions'. The
    per-function time limits count each function's own processor time (see
    :class:`~tinycnn.grading.sandbox.Limits`), so a classmate's load slows a function down
    without using up its limit, and every function of a submission runs at once: a hostile
    submission holds its place for one wall-clock cap, not one per function.

    With ``scheduler`` (a Dask scheduler's address) the submissions are graded on the cluster's
    workers, which must read each file at the same absolute path (a shared filesystem).

    Raises
    ------
    tinycnn.parallel.SchedulerError
        The scheduler cannot be used (raised before any grading starts).
    """
    jobs = max(1, min(int(jobs), len(files)))
    grade = functools.partial(
        grade_submission,
        allow_imports=allow_imports,
        limits=limits,
        train=train,
        api=api,
        entry=entry,
        seed=new_seed() if seed is None else seed,
        isolation=isolation,
    )
    # Workers get absolute paths (their working directory is not ours); the reports name each
    # file as it was given, so the outputs are the same wherever the grading ran.
    absolute = [Path(path).resolve() for path in files]
    reports = run_jobs(grade, absolute, n_jobs=jobs, scheduler=scheduler, prefer="threads")
    return [
        dataclasses.replace(report, submission=clean_text(path, 200))
        for path, report in zip(files, reports, strict=True)
    ]
