"""Run independent jobs here or on a Dask cluster: the one place that decides where jobs run.

``tinycnn report`` (its training runs) and ``tinycnn check DIR/`` (one job per submission) both
call :func:`run_jobs`. Locally the jobs go to joblib workers (``--jobs N``, default all cores);
with ``--scheduler ADDRESS`` the same jobs go to a Dask cluster through joblib's dask backend.
A job's result must depend only on its arguments (its seed is one of them), so the results do
not depend on where, in what order or beside what else the jobs run.

The cluster needs the optional extra (``pip install "tinycnn[dask]"``) here and this project
installed on every worker: the workers import the job functions by name.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

__all__ = ["CONNECT_TIMEOUT", "MISSING_DASK", "SchedulerError", "default_jobs", "run_jobs"]

T = TypeVar("T")
R = TypeVar("R")

#: Seconds to reach the scheduler, and again to see at least one worker: a wrong address should
#: fail within seconds, not hang.
CONNECT_TIMEOUT = 10.0
MISSING_DASK = "--scheduler needs the dask extra: pip install 'tinycnn[dask]'"


class SchedulerError(RuntimeError):
    """The Dask scheduler cannot be used (extra not installed, unreachable, no workers).

    The message is one line meant for the user; the commands turn it into exit status 2.
    """


def default_jobs() -> int:
    """All cores this process may use (its CPU affinity, not the machine's core count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_jobs(
    function: Callable[[T], R],
    items: Sequence[T],
    *,
    n_jobs: int | None = None,
    scheduler: str | None = None,
    prefer: str = "processes",
    ordered: bool = True,
) -> Iterator[R]:
    """``function(item)`` for every item, run locally or on a Dask cluster.

    Parameters
    ----------
    function : callable
        A module-level function (or a ``functools.partial`` of one): workers in other
        processes import it by name.
    items : sequence
        One job each.
    n_jobs : int, optional
        Local workers; default all cores (:func:`default_jobs`); 1 runs every job in this
        process, one after the other. Ignored with ``scheduler``: the cluster's worker threads
        decide how many jobs run at once.
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://host:8786``); the jobs run on its workers.
    prefer : {"processes", "threads"}
        Local worker kind: processes for jobs that compute in Python, threads for jobs whose
        work happens in child processes anyway.
    ordered : bool, default True
        Yield the results in the order of ``items``; False yields each as soon as it is done.

    Returns
    -------
    iterator
        The results, computed as they are asked for. Iterate to the end (or close it): with a
        scheduler, that closes the connection.

    Raises
    ------
    ValueError
        ``n_jobs`` below 1.
    SchedulerError
        The scheduler cannot be used; raised here, at once, before any job is sent.
    """
    n_jobs = default_jobs() if n_jobs is None else n_jobs
    if n_jobs < 1:
        raise ValueError(f"n_jobs must be >= 1, got {n_jobs}")
    if prefer not in ("processes", "threads"):
        raise ValueError(f"prefer must be 'processes' or 'threads', got {prefer!r}")
    if scheduler is not None:
        return _on_cluster(function, items, _connect(scheduler), ordered)
    n_jobs = min(n_jobs, max(len(items), 1))  # idle workers cost start-up time, nothing else
    if n_jobs == 1:
        return map(function, items)
    from joblib import Parallel, delayed

    return_as = "generator" if ordered else "generator_unordered"
    return Parallel(n_jobs=n_jobs, prefer=prefer, return_as=return_as)(
        delayed(function)(item) for item in items
    )


def _connect(address: str):
    """A ``distributed.Client`` of the scheduler at ``address`` that has at least one worker."""
    try:
        from distributed import Client
    except ImportError:
        raise SchedulerError(MISSING_DASK) from None
    problem = None
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, ValueError, TypeError) as error:  # unreachable, or not an address
        problem = f"{error}".strip() or type(error).__name__
    if problem is not None:
        # The half-built Client sits in a reference cycle with the traceback. Left to the
        # collector at exit, its __del__ waits seconds for a stopped event loop and prints a
        # traceback; collected now (outside the except block, which keeps the traceback alive)
        # it closes quietly.
        gc.collect()
        raise SchedulerError(f"cannot reach the Dask scheduler at {address}: {problem}")
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
    except TimeoutError:  # asyncio.TimeoutError is this class since Python 3.11
        client.close()
        raise SchedulerError(
            f"the Dask scheduler at {address} has no workers (waited {CONNECT_TIMEOUT:g} s)"
        ) from None
    return client


def _on_cluster(
    function: Callable[[T], R], items: Sequence[T], client, ordered: bool
) -> Iterator[R]:
    """The results of the jobs, run by the client's workers; closes the client when done."""
    from joblib import Parallel, delayed, parallel_config

    try:
        # The client is handed to the backend, not made the process-wide default: nothing else
        # in this process (the report's figures, say) is sent to the cluster by accident.
        with parallel_config(backend="dask", client=client):
            return_as = "generator" if ordered else "generator_unordered"
            yield from Parallel(n_jobs=-1, return_as=return_as)(
                delayed(function)(item) for item in items
            )
    finally:
        client.close()
