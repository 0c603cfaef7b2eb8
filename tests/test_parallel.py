"""Where jobs run: local workers or a Dask cluster, and the same results either way.

``tinycnn report`` and ``tinycnn check DIR/`` send their jobs through
:func:`tinycnn.parallel.run_jobs`. These tests start a real ``dask.distributed.LocalCluster``
(two worker processes on this machine) and compare what comes back with a local run, byte for
byte where the commands write files.
"""

from __future__ import annotations

import contextlib
import filecmp
import io
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from distributed import LocalCluster
from tinycnn.reports.runs import RunResult, RunSpec, run_all

from tinycnn import parallel
from tinycnn.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "submissions"
# One of each kind of row: a pass (with its training run), a failed function, a file that does
# not compile.
FOLDER = ("correct_vectorized", "buggy_relu_zero_gradient", "hostile_syntax_error")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Run ``tinycnn ARGV`` in this process; return (status, stdout, stderr)."""
    try:
        status = main([*argv])
    except SystemExit as exit_:  # argparse exits on usage errors
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


def submissions(directory: Path) -> Path:
    directory.mkdir()
    for name in FOLDER:
        shutil.copy(FIXTURES / f"{name}.py", directory / f"{name}.py")
    return directory


def free_port() -> int:
    """A local TCP port with nothing listening on it (the OS picked it, then it was released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def assert_same_runs(first: dict[RunSpec, RunResult], second: dict[RunSpec, RunResult]):
    """Every field of every run identical, arrays bit for bit (dtype included)."""
    assert first.keys() == second.keys()
    for spec, a in first.items():
        b = second[spec]
        assert (a.seed, a.n_parameters) == (b.seed, b.n_parameters), spec
        assert (a.train_loss, a.train_acc, a.val_loss, a.val_acc) == (
            b.train_loss,
            b.train_acc,
            b.val_loss,
            b.val_acc,
        ), spec
        for params_a, params_b in [
            (a.final_params, b.final_params),
            *((a.snapshots[e], b.snapshots[e]) for e in a.snapshots),
        ]:
            assert params_a.keys() == params_b.keys(), spec
            for name, value in params_a.items():
                assert value.dtype == params_b[name].dtype, (spec, name)
                np.testing.assert_array_equal(params_b[name], value, err_msg=f"{spec} {name}")
        assert a.snapshots.keys() == b.snapshots.keys(), spec


def assert_same_files(first: Path, second: Path, pattern: str) -> None:
    names = sorted(p.relative_to(first) for p in first.rglob(pattern))
    assert names, f"no {pattern} in {first}"
    assert names == sorted(p.relative_to(second) for p in second.rglob(pattern))
    different = [str(n) for n in names if not filecmp.cmp(first / n, second / n, shallow=False)]
    assert different == []


# -- local workers -------------------------------------------------------------------------------


def _square(x: int) -> int:
    return x * x


# Threads only: worker processes started here would be reused by later tests of this session,
# and loky restarts a reused worker whose memory grew (importing torch, say) with a UserWarning,
# an error under this suite's warning filter. The process pool is covered by test_report_runs.
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_local_jobs_come_back_in_order_unless_asked_otherwise(n_jobs):
    items = list(range(7))
    ordered = parallel.run_jobs(_square, items, n_jobs=n_jobs, prefer="threads")
    assert list(ordered) == [x * x for x in items]
    unordered = parallel.run_jobs(_square, items, n_jobs=n_jobs, prefer="threads", ordered=False)
    assert sorted(unordered) == [x * x for x in items]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_jobs": 0}, "n_jobs must be >= 1, got 0"),
        ({"prefer": "gpus"}, "prefer must be 'processes' or 'threads', got 'gpus'"),
    ],
)
def test_bad_local_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        parallel.run_jobs(_square, [1], **kwargs)


@pytest.fixture(scope="module")
def two_jobs(tmp_path_factory) -> SimpleNamespace:
    """``tinycnn check FOLDER --jobs 2 --seed 7 --csv CSV``, run once for the tests that compare
    another way of running it with it: its folder, status, stdout (the CSV's path as "CSV"),
    stderr and CSV."""
    tmp_path = tmp_path_factory.mktemp("two_jobs")
    folder = submissions(tmp_path / "submissions")
    csv_path = tmp_path / "jobs2.csv"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["check", str(folder), "--jobs", "2", "--seed", "7", "--csv", str(csv_path)])
    out = out.getvalue().replace(str(csv_path), "CSV")
    return SimpleNamespace(
        folder=folder, status=status, out=out, err=err.getvalue(), csv=csv_path.read_text()
    )


def test_check_folder_summary_does_not_depend_on_the_number_of_workers(two_jobs, tmp_path, capsys):
    csv_path = tmp_path / "jobs1.csv"
    status, out, err = run_cli(
        capsys, "check", str(two_jobs.folder), "--jobs", "1", "--seed", "7", "--csv", str(csv_path)
    )
    assert status == 1, err  # two of the three fail
    assert two_jobs.status == 1, two_jobs.err
    serial = csv_path.read_text()
    assert serial == two_jobs.csv
    # The comparison has something to compare: each kind of row, and a trained accuracy.
    rows = dict(line.split(",", 1) for line in serial.splitlines()[1:])
    assert (
        rows["correct_vectorized.py"].startswith("True,9,")
        and "0." in rows["correct_vectorized.py"]
    )
    assert rows["hostile_syntax_error.py"].startswith("False,0,error,")


# -- unusable schedulers: one line, status 2, before any work ------------------------------------


@pytest.fixture
def without_dask(monkeypatch):
    """``import distributed`` fails, as it does without the dask extra."""
    monkeypatch.setitem(sys.modules, "distributed", None)


def test_a_missing_dask_extra_is_named_with_its_install_command(without_dask):
    with pytest.raises(parallel.SchedulerError) as error:
        parallel.run_jobs(_square, [1, 2], scheduler="tcp://127.0.0.1:8786")
    assert str(error.value) == "--scheduler needs the dask extra: pip install 'tinycnn[dask]'"


@pytest.mark.parametrize("command", ["report", "check"])
def test_both_commands_refuse_a_scheduler_without_the_extra(
    command, without_dask, tmp_path, capsys
):
    target = (
        ["--out", str(tmp_path / "report")]
        if command == "report"
        else [str(submissions(tmp_path / "submissions"))]
    )
    status, out, err = run_cli(capsys, command, *target, "--scheduler", "tcp://127.0.0.1:8786")
    assert status == 2
    assert err == (
        f"tinycnn {command}: error: --scheduler needs the dask extra: pip install 'tinycnn[dask]'\n"
    )
    assert "training runs" not in out and "submissions pass" not in out


@pytest.mark.parametrize("command", ["report", "check"])
def test_an_unreachable_scheduler_is_one_line_within_the_connect_timeout(
    command, monkeypatch, tmp_path, capsys
):
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT", 0.5)
    address = f"tcp://127.0.0.1:{free_port()}"
    target = (
        ["--out", str(tmp_path / "report")]
        if command == "report"
        else [str(submissions(tmp_path / "submissions"))]
    )
    status, out, err = run_cli(capsys, command, *target, "--scheduler", address)
    assert status == 2
    assert err.startswith(
        f"tinycnn {command}: error: cannot reach the Dask scheduler at {address}: "
    )
    assert len(err.strip().splitlines()) == 1


def test_scheduler_is_a_folder_mode_option_of_check(capsys):
    status, out, err = run_cli(
        capsys,
        "check",
        str(FIXTURES / "correct_vectorized.py"),
        "--scheduler",
        "tcp://127.0.0.1:8786",
    )
    assert status == 2 and "apply to a folder of submissions only" in err


# -- a real cluster ------------------------------------------------------------------------------


# No dashboard. The scheduler's HTTP server (health routes) starts anyway, by default on port
# 8787: a free port instead, so two clusters (or a developer's own) never collide.
NO_DASHBOARD = {"dashboard_address": None, "scheduler_kwargs": {"dashboard_address": ":0"}}


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of two worker processes (one thread each, no dashboard)."""
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, **NO_DASHBOARD
    ) as local_cluster:
        yield local_cluster


@pytest.fixture
def scheduler(cluster):
    """The cluster's address; checks on teardown that the test sent the cluster some work.

    Equal results alone would not show that: a command that ignored --scheduler and ran
    everything locally would produce them too.
    """
    before = set(cluster.scheduler.task_prefixes)  # one name per kind of task it ever ran
    yield cluster.scheduler_address
    assert set(cluster.scheduler.task_prefixes) - before, "no task reached the cluster"


def _process_id(_item) -> int:
    return os.getpid()


def test_jobs_sent_to_a_scheduler_run_in_its_worker_processes(scheduler):
    process_ids = set(parallel.run_jobs(_process_id, range(8), scheduler=scheduler))
    assert os.getpid() not in process_ids and 1 <= len(process_ids) <= 2


def test_training_runs_on_the_cluster_equal_local_runs(scheduler):
    specs = [RunSpec("mlp", 3, 4, i, 2) for i in range(3)]
    specs += [RunSpec("tinycnn", 4, None, 0, 2, "numpy", (0, 2))]
    on_cluster = run_all(specs, scheduler=scheduler, progress=False)
    assert_same_runs(run_all(specs, n_jobs=1, progress=False), on_cluster)
    # Different seeds give different runs: the comparison above can tell runs apart.
    assert on_cluster[specs[0]].val_loss != on_cluster[specs[1]].val_loss


def test_a_scheduler_without_workers_is_refused(monkeypatch):
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT", 0.5)
    with LocalCluster(n_workers=0, processes=False, **NO_DASHBOARD) as empty:
        with pytest.raises(parallel.SchedulerError, match="has no workers"):
            parallel.run_jobs(_square, [1], scheduler=empty.scheduler_address)


def test_check_folder_on_the_cluster_writes_the_local_summary(
    scheduler, two_jobs, tmp_path, capsys
):
    assert two_jobs.status == 1, two_jobs.err
    outputs = {"local": (two_jobs.out, two_jobs.csv)}  # --jobs 2
    csv_path = tmp_path / "cluster.csv"
    status, out, err = run_cli(
        capsys,
        "check",
        str(two_jobs.folder),
        "--scheduler",
        scheduler,
        "--seed",
        "7",
        "--csv",
        str(csv_path),
    )
    assert status == 1, err
    outputs["cluster"] = (out.replace(str(csv_path), "CSV"), csv_path.read_text())
    assert outputs["cluster"] == outputs["local"]
    assert "1 of 3 submissions pass" in outputs["cluster"][0]


@pytest.mark.slow
def test_quick_report_on_the_cluster_writes_the_local_files(scheduler, tmp_path):
    # As a user runs it: the real command in its own process (whose local worker pool starts
    # fresh), the cluster's address on the command line.
    runs = {}
    for where, options in (("local", ["--jobs", "2"]), ("cluster", ["--scheduler", scheduler])):
        runs[where] = tmp_path / where
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "tinycnn",
                "report",
                "--quick",
                "--no-progress",
                "--out",
                str(runs[where]),
                *options,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
    assert_same_files(runs["local"], runs["cluster"], "*.csv")
    assert (runs["local"] / "REPORT.md").read_bytes() == (
        runs["cluster"] / "REPORT.md"
    ).read_bytes()
