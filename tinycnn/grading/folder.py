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

Load: submissions graded at the same time share the machine. A time limit counts processor
time, which a classmate's load does not use up, but the wall-clock cap (3 times the limit) and
the submission's wall-clock budget do run out faster on a busy machine. So a submission in which
something ran out of wall-clock time with processor time to spare (its report's
``busy_timeouts``, see :attr:`~tinycnn.grading.grader.SubmissionReport.busy_timeouts`) is graded
again *alone* once every other grading is over (`regrade_alone`), and that verdict is the one
recorded: one student's verdict never depends on what else ran beside it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from pathlib import Path

from tinycnn.grading.channel import clean_name
from tinycnn.grading.grader import SubmissionReport, grade_or_report_failure, new_seed
from tinycnn.grading.sandbox import Limits
from tinycnn.parallel import run_jobs

__all__ = ["grade_folder", "regrade_alone"]


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
    progress: Callable[[str, str], None] | None = None,
) -> list[SubmissionReport]:
    """Grade ``files`` with ``jobs`` submissions at a time; reports in the order of ``files``.

    Each of ``files`` is one student's submission: a ``.py`` file, a ``.ipynb`` notebook or a
    folder of the student's modules (read with ``api`` and ``entry``, see
    :func:`~tinycnn.grading.submission.load_submission`).

    The child processes of one submission share the machine with the other submissions'. The
    per-function time limits count each function's own processor time (see
    :class:`~tinycnn.grading.sandbox.Limits`), so a classmate's load slows a function down
    without using up its limit, and every function of a submission runs at once: a hostile
    submission holds its place for one wall-clock cap, not one per function. A submission in
    which something ran out of wall-clock time with processor time to spare is graded again
    alone afterwards (`regrade_alone`; not with ``jobs=1``, where each was graded alone).

    With ``scheduler`` (a Dask scheduler's address) the submissions are graded on the cluster's
    workers, which must read each file at the same absolute path (a shared filesystem).

    ``progress(event, name)``, if given, is called in this thread with ``("graded", name)`` as
    each submission's grading is collected (in the order of ``files``), and ``("regrading",
    name)`` then ``("regraded", name)`` around a lone re-grade; ``name`` is the path as given.

    Raises
    ------
    tinycnn.parallel.SchedulerError
        The scheduler cannot be used (raised before any grading starts).
    """
    jobs = max(1, min(int(jobs), len(files)))
    grade = functools.partial(
        grade_or_report_failure,  # one student's file never costs the class its outputs
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
    tell = progress or (lambda event, name: None)
    names = {path: str(given) for path, given in zip(absolute, files, strict=True)}
    reports = []
    for path, report in zip(
        absolute,
        run_jobs(grade, absolute, n_jobs=jobs, scheduler=scheduler, prefer="threads"),
        strict=True,
    ):
        reports.append(report)
        tell("graded", names[path])
    if jobs > 1 or scheduler is not None:  # graded beside others: what the load cost, again alone
        alone = functools.partial(run_jobs, n_jobs=1, scheduler=scheduler, prefer="threads")

        def lone(path: Path) -> SubmissionReport:
            tell("regrading", names[path])
            report = next(iter(alone(grade, [path])))
            tell("regraded", names[path])
            return report

        reports = regrade_alone(reports, absolute, lone)
    return [
        dataclasses.replace(report, submission=clean_name(path))
        for path, report in zip(files, reports, strict=True)
    ]


def cpu_pressure() -> str | None:
    """The machine's processor pressure as Linux measures it, in words: ``/proc/pressure/cpu``
    (pressure stall information, kernel 4.20+), the share of time in which some runnable task
    waited for a processor, averaged over the last 10 and 60 s. None where the kernel does not
    report it (not Linux, PSI turned off)."""
    try:
        with open("/proc/pressure/cpu", encoding="ascii") as handle:
            words = handle.readline().split()
    except (OSError, UnicodeDecodeError):
        return None
    values = dict(word.split("=", 1) for word in words[1:] if "=" in word)
    try:
        ten, sixty = float(values["avg10"]), float(values["avg60"])
    except (KeyError, ValueError):
        return None
    return (
        f"its CPU pressure was {ten:.0f}% over the last 10 s and {sixty:.0f}% over 60 s: the "
        f"share of time runnable tasks waited for a processor, /proc/pressure/cpu"
    )


def _still_busy(report: SubmissionReport) -> SubmissionReport:
    """``report`` of a lone re-grade, each timeout that again ran out of wall-clock time with
    processor time to spare saying so: alone within this checker is not alone on the machine
    (other users, other checkers, a cluster's other jobs), so it may not be the code's own
    waiting. The verdict stays (a timeout); the detail names the machine's measured load."""
    busy = report.busy_timeouts
    if not busy:
        return report
    measured = cpu_pressure() or "this machine does not report its CPU pressure"
    note = (
        "Graded again alone (no other grading of this checker running), it still ran out of "
        f"wall-clock time with processor time to spare: the machine may be loaded from outside "
        f"({measured}); re-run the check on a quieter machine before taking this timeout as "
        "the code's."
    )
    names = set(busy)
    if "import" in names:  # the import's timeout is every function's
        names |= {n for n, result in report.functions.items() if result.status == "timeout"}
    functions = {
        name: dataclasses.replace(result, detail=f"{result.detail}\n{note}".strip())
        if name in names and result.status == "timeout"
        else result
        for name, result in report.functions.items()
    }
    training = report.training
    if "training" in names and training is not None:
        training = dataclasses.replace(training, detail=f"{training.detail}\n{note}".strip())
    return dataclasses.replace(report, functions=functions, training=training)


def regrade_alone(
    reports: Sequence[SubmissionReport],
    paths: Sequence[Path],
    grade: Callable[[Path], SubmissionReport],
) -> list[SubmissionReport]:
    """Grade again, one at a time, every submission with ``busy_timeouts`` (what ran out of
    wall-clock time with processor time to spare, see
    :attr:`~tinycnn.grading.grader.SubmissionReport.busy_timeouts`); the lone verdict
    replaces the first, marked with what had run out (``regraded_alone``).

    Called once the parallel grading is over: each sandbox's processes are gone when its run
    ends, so nothing else of this checker executes beside a re-grade. A submission that runs
    out of wall-clock time alone too keeps that timeout, but alone here is not alone on the
    machine: its detail says so and names the machine's measured CPU pressure (`cpu_pressure`).

    Cost: each submission is re-graded at most once, and each grading is bounded by its
    wall-clock budget (:attr:`~tinycnn.grading.sandbox.Limits.total_seconds`, 110 s with the
    default limits), so the phase takes at most that times the number of submissions re-graded;
    a hostile submission adds at most one such budget of its own (classmates it slowed are
    re-graded at the cost of grading them alone).
    """
    out = list(reports)
    for index, report in enumerate(reports):
        if report.busy_timeouts:
            lone = _still_busy(grade(paths[index]))
            out[index] = dataclasses.replace(lone, regraded_alone=list(report.busy_timeouts))
    return out
