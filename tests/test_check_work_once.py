"""`tinycnn check`: work done once and limits that cover everything (issue 9's speed targets).

The speed itself is measured by ``tinycnn bench``, never timed here. These tests prove what the
speed-ups must not change: the inputs reach the submission with their memory layout and in
buffers of their own; every submission of one folder run gets byte-identical inputs (the same
seed, the same cases); one time limit covers a function's catalogue and hidden cases together.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinycnn.grading import sandbox as sandbox_module
from tinycnn.grading.folder import grade_folder
from tinycnn.grading.grader import cases_of, grade_submission
from tinycnn.grading.sandbox import CHILD_SCRIPT, Limits, pack_inputs

FIXTURES = Path(__file__).parent / "fixtures" / "submissions"


def _child():
    """The in-sandbox script, loaded as a module (the checker itself never imports it)."""
    spec = importlib.util.spec_from_file_location("tinycnn_child_under_test", CHILD_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_packed_inputs_keep_every_layout_and_get_buffers_of_their_own():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((2, 3, 5, 4))
    arrays = {
        "c": base,
        "fortran": np.asfortranarray(base.astype(np.float32)),
        "reversed": base[:, :, ::-1, :],
        "gapped": base[:, ::2, 1::2, ::3],
        "empty": np.zeros((0, 3), dtype=np.float32),
        "scalar": np.array(2.5),
        "labels": np.array([2, 0, 1], dtype=np.int32),
        "big-endian": base[0, 0].astype(">f8"),
    }
    with np.load(io.BytesIO(pack_inputs(arrays)), allow_pickle=False) as data:
        assert sorted(data.files) == ["data", "dtypes", "layout", "names"]  # not 3 per array
        unpacked = _child().unpack_arrays(data, np)
    assert list(unpacked) == list(arrays)
    for name, original in arrays.items():
        copy = unpacked[name]
        assert copy.dtype == original.dtype and copy.shape == original.shape, name
        assert copy.strides == original.strides, name  # the same layout, not a C copy
        np.testing.assert_array_equal(copy, original, err_msg=name)
        assert copy.flags.writeable, name
    # Writing through one array (a submission modifying its input) reaches no other.
    unpacked["reversed"][...] = 7.0
    np.testing.assert_array_equal(unpacked["c"], base)
    assert not np.shares_memory(unpacked["gapped"], unpacked["c"])


@pytest.fixture
def recorded_jobs(monkeypatch):
    """Each sandbox run's job and the SHA-256 of each of its input files, as the child gets
    them (on its standard input)."""
    runs = []
    execute = sandbox_module.Sandbox._execute

    def recording(self, scratch, job_dir, out_dir, uid, tasks, inputs):
        job = json.loads((job_dir / "job.json").read_text())
        digests = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(inputs.items())}
        runs.append((job, digests))
        return execute(self, scratch, job_dir, out_dir, uid, tasks, inputs)

    monkeypatch.setattr(sandbox_module.Sandbox, "_execute", recording)
    return runs


def test_one_time_limit_covers_a_functions_catalogue_and_hidden_cases(recorded_jobs):
    report = grade_submission(
        FIXTURES / "hostile_endless_loop.py", limits=Limits(timeout=0.5), train=False, seed=7
    )
    [(job, _)] = recorded_jobs
    functions = [task for task in job["tasks"] if task.get("function")]
    assert len(functions) == 9
    # One task per function, catalogue and hidden cases together, under the one limit.
    assert job["limits"]["timeout"] == 0.5
    assert all(len(task["calls"]) == 2 * len(cases_of(task["function"], ())) for task in functions)
    stuck = report.functions["relu_backward"]
    total = len(cases_of("relu_backward", ()))
    assert stuck.status == "timeout" and stuck.cases_total == 2 * total
    # The limit that ran out is named: processor time, or the wall-clock cap on a busy machine.
    assert "for all its cases, catalogue and hidden" in stuck.detail
    assert any(
        limit in stuck.detail
        for limit in ("processor-time limit of 0.5 s", "wall-clock cap of 1.5 s")
    ), stuck.detail
    assert f"0 of {2 * total} cases done" in stuck.detail  # it never returned


def test_a_folder_run_gives_every_submission_the_same_inputs(tmp_path, recorded_jobs):
    # Two students, one correct and one buggy: graded on the same inputs, from private copies.
    files = []
    for name in ("correct_vectorized", "buggy_relu_zero_gradient"):
        files.append(tmp_path / f"{name}.py")
        shutil.copy(FIXTURES / f"{name}.py", files[-1])
    reports = grade_folder(files, jobs=2, limits=Limits(timeout=5.0), train=False, seed=11)
    assert [r.seed for r in reports] == [11, 11]
    assert [r.passed for r in reports] == [True, False]
    digests = [d for _, d in recorded_jobs]
    assert len(digests) == 2 and len(digests[0]) == 9  # one input file per function
    assert digests[0] == digests[1]
    # ... and a run with another seed draws other hidden cases.
    grade_submission(files[0], limits=Limits(timeout=5.0), train=False, seed=12)
    assert recorded_jobs[-1][1] != digests[0]


def test_blas_runs_on_one_thread_while_grading_and_is_restored_after(monkeypatch):
    # The sandbox may fork the checker while the expected values are computed on a thread: a
    # threaded OpenBLAS product caught by the fork waits for its workers forever.
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads() -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    seen = []
    execute = sandbox_module.Sandbox._execute

    def recording(self, *args):
        seen.append(blas_threads())
        return execute(self, *args)

    monkeypatch.setattr(sandbox_module.Sandbox, "_execute", recording)
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        grade_submission(FIXTURES / "correct_vectorized.py", limits=Limits(timeout=5.0), seed=3)
        assert blas_threads() == before
    assert len(seen) == 2 and all(threads == {1} for threads in seen)  # functions, training
