"""Folder mode of ``tinycnn check``: grade every submission in a folder, in parallel.

Each submission is graded by :func:`~tinycnn.grading.grader.grade_submission`, whose real work
happens in child processes; the parent's share is comparing arrays. So joblib runs the
submissions on *threads*: no pickling, and the expected values (computed once per process) are
shared by every submission.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from joblib import Parallel, delayed

from tinycnn.grading.grader import FUNCTION_WORKERS, SubmissionReport, grade_submission
from tinycnn.grading.sandbox import Limits

__all__ = ["grade_folder"]


def grade_folder(
    files: Sequence[Path],
    *,
    jobs: int = 1,
    allow_imports: tuple[str, ...] = (),
    limits: Limits | None = None,
    train: bool = True,
) -> list[SubmissionReport]:
    """Grade ``files`` with ``jobs`` submissions at a time; reports in the order of ``files``.

    The child processes of one submission share the machine with the other submissions': with
    more jobs, each submission runs fewer of its functions at once, so about ``max(jobs, 3)``
    children run in total and the per-function time limits stay meaningful.
    """
    jobs = max(1, min(int(jobs), len(files)))
    workers = max(1, FUNCTION_WORKERS // jobs)
    return Parallel(n_jobs=jobs, prefer="threads")(
        delayed(grade_submission)(path, allow_imports=allow_imports, limits=limits,
                                  train=train, workers=workers)
        for path in files
    )
