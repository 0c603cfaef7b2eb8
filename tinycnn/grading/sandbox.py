"""Run a submission in a child process with limits, and read back what it returned.

The parent side of :mod:`tinycnn.grading.child`. Each run is a fresh interpreter
(``python -I -B child.py JOB.json``) in its own session and temporary directory:

- a **time limit** per phase: interpreter start-up, importing the submission, then running (all
  cases of one function, or the training run); when one is exceeded the whole process group is
  killed and the run reports ``timed_out``;
- a **memory limit** (``RLIMIT_AS``, set by the child on itself), so a huge allocation raises
  ``MemoryError`` inside the submission instead of exhausting the machine;
- stdin, stdout and stderr go to ``/dev/null``: nothing the submission prints can reach the
  checker's output or be mistaken for a result;
- results come back as files (JSON metadata + raw array bytes), decoded here into NumPy arrays
  with ``numpy.frombuffer``; nothing from the child is unpickled or evaluated, and a child that
  dies half-way (``os._exit``, a crash, a kill) simply leaves fewer files.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "CHILD_SCRIPT",
    "ChildRun",
    "ForeignValue",
    "Limits",
    "decode",
    "project_paths",
    "run_child",
]

#: The script every child runs.
CHILD_SCRIPT = Path(__file__).with_name("child.py")

# dtypes a result may have: numbers only (object arrays would be pointers, not data).
_ALLOWED_DTYPE_KINDS = "biufc"


@dataclass(frozen=True)
class Limits:
    """Resource limits of one child process.

    Attributes
    ----------
    timeout : float
        Seconds for importing the submission, and again for running one function on all its
        cases (the issue's "time limit per function").
    memory_mb : int
        Address-space limit of the child in MiB (``RLIMIT_AS``); Python and NumPy need ~150.
    train_timeout : float
        Seconds for the training run with the submission's ops.
    startup_timeout : float
        Seconds for the interpreter and NumPy to start, before any submission code runs: generous,
        because a loaded machine (a folder graded in parallel) starts processes slowly.
    """

    timeout: float = 10.0
    memory_mb: int = 2048
    train_timeout: float = 60.0
    startup_timeout: float = 30.0

    def __post_init__(self):
        if not self.timeout > 0 or not self.train_timeout > 0 or not self.startup_timeout > 0:
            raise ValueError(
                f"time limits must be positive, got timeout {self.timeout}, "
                f"train_timeout {self.train_timeout}, startup_timeout {self.startup_timeout}"
            )
        if self.memory_mb < 256:
            raise ValueError(f"memory limit {self.memory_mb} MiB is too small to start NumPy "
                             f"(need at least 256)")


@dataclass(frozen=True)
class ForeignValue:
    """Something a submission returned that is not a number or an array (``None``, a dict...)."""

    type_name: str


@dataclass
class ChildRun:
    """What one child process did, as seen from the parent.

    Attributes
    ----------
    import_result : dict or None
        The child's ``import.json``: ``ok``, ``functions`` (name -> "callable" | "missing" | "not
        callable") or ``error`` (``type``, ``message``, ``where``, ``memory_error``), ``blocked``
        imports and ``tampered`` names. None if the child never finished importing.
    calls : list of dict
        One per completed call, in order: ``outcome`` ("returned" | "raised"), ``result`` (decoded:
        array, NumPy scalar, Python number, tuple or `ForeignValue`), ``inputs_after`` (name ->
        decoded), ``error`` (for "raised"), ``seconds``.
    done : dict or None
        The child's ``done.json`` (blocked imports and tampered names after the calls).
    train : dict or None
        Training outcome: ``outcome``, ``params`` (decoded), ``step_loss``, ``seconds``/``error``.
    timed_out : str or None
        The phase that exceeded its limit: "startup", "import" or "run".
    exit_status : int or None
        The child's return code (negative: killed by that signal); None if we killed it.
    run_seconds : float
        Wall time since the last phase change the parent saw (for a timeout: how long the
        phase ran before the kill).
    """

    import_result: dict | None = None
    calls: list[dict] = field(default_factory=list)
    done: dict | None = None
    train: dict | None = None
    timed_out: str | None = None
    exit_status: int | None = None
    run_seconds: float = 0.0

    def describe_exit(self) -> str:
        """The way the process ended, in words."""
        status = self.exit_status
        if status is None:
            return "it was stopped by the checker"
        if status < 0:
            try:
                name = signal.Signals(-status).name
            except ValueError:
                name = f"signal {-status}"
            hint = " (CPU time limit)" if name == "SIGXCPU" else ""
            return f"the process was killed by {name}{hint}"
        return f"the process exited with status {status} (os._exit, or a crash)"


def project_paths() -> list[str]:
    """Directories from which the child imports ``parity_tests`` and ``reference``.

    The child runs in isolated mode (``-I``: no ``PYTHONPATH``, no current directory on
    ``sys.path``), so it is told where the checker found these packages.
    """
    import parity_tests
    import reference

    paths = []
    for package in (parity_tests, reference):
        root = str(Path(package.__file__).resolve().parent.parent)
        if root not in paths:
            paths.append(root)
    return paths


def _child_environment() -> dict[str, str]:
    env = dict(os.environ)
    # One BLAS thread per child: several children run at once, and thread pools would both
    # oversubscribe the cores and reserve address space against the memory limit.
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "1"
    return env


def decode(record: dict, blob: bytes) -> object:
    """Turn one child record (see :mod:`tinycnn.grading.child`) back into a value.

    Raises
    ------
    ValueError
        If the record is malformed (the parent treats that as an unreadable result).
    """
    kind = record.get("kind")
    if kind == "tuple":
        return tuple(decode(item, blob) for item in record["items"])
    if kind == "other":
        return ForeignValue(str(record.get("type", "?")))
    if kind != "array":
        raise ValueError(f"unknown record kind {kind!r}")
    dtype = np.dtype(str(record["dtype"]))
    if dtype.kind not in _ALLOWED_DTYPE_KINDS or dtype.fields is not None or dtype.subdtype:
        raise ValueError(f"unexpected dtype {dtype} in a result")
    shape = tuple(int(n) for n in record["shape"])
    offset, nbytes = int(record["offset"]), int(record["nbytes"])
    count = int(np.prod(shape, dtype=np.int64))
    if nbytes != count * dtype.itemsize or offset < 0 or offset + nbytes > len(blob):
        raise ValueError(f"result record of {nbytes} bytes does not fit shape {shape} {dtype}")
    array = np.frombuffer(blob, dtype=dtype, count=count, offset=offset).reshape(shape).copy()
    container = record.get("container")
    if container == "numpy scalar":
        return array[()]
    if container == "python float":
        return float(array[()])
    if container == "python int":
        return int(array[()])
    return array


def _read_record(directory: Path, name: str) -> tuple[dict, bytes] | None:
    """``(payload, bytes)`` of a complete record, or None if absent or not valid JSON."""
    meta = directory / f"{name}.json"
    try:
        payload = json.loads(meta.read_text())
        blob_path = directory / f"{name}.bin"
        blob = blob_path.read_bytes() if blob_path.exists() else b""
    except (OSError, ValueError):
        return None
    return (payload, blob) if isinstance(payload, dict) else None


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def run_child(
    mode: str,
    submission: Path,
    *,
    functions: tuple[str, ...],
    allowed_imports: tuple[str, ...],
    limits: Limits,
    function: str | None = None,
    cases: list[dict] | None = None,
    training: dict | None = None,
) -> ChildRun:
    """Run the submission in a fresh child process and collect its results.

    Parameters
    ----------
    mode : {"probe", "function", "train"}
        "probe" only imports the submission; "function" calls ``function`` on ``cases``
        (``[{"id": case_id, "direction": "forward"|"backward"}, ...]``); "train" trains TinyCNN
        with the submission's ops as described by ``training`` (``model``, ``config``, ``data``
        keyword dicts).
    submission : Path
        The student's file.
    functions : tuple of str
        Contract names whose presence the import report lists.
    allowed_imports : tuple of str
        Top-level modules the submission may import.
    limits : Limits

    Returns
    -------
    ChildRun
    """
    if mode not in ("probe", "function", "train"):
        raise ValueError(f"mode must be probe, function or train, got {mode!r}")
    work = Path(tempfile.mkdtemp(prefix="tinycnn-check-"))
    try:
        job = {
            "mode": mode,
            "submission": str(Path(submission).resolve()),
            "functions": list(functions),
            "allowed_imports": sorted(allowed_imports),
            "function": function,
            "cases": cases or [],
            "training": training,
            "project_paths": project_paths(),
            "out_dir": str(work),
            "memory_bytes": int(limits.memory_mb) * 2**20,
            # Backstop only (an orphan is stopped by the kernel); the parent's clock rules.
            "cpu_seconds": int(limits.startup_timeout + limits.timeout
                               + max(limits.timeout, limits.train_timeout)) + 10,
        }
        job_path = work / "job.json"
        job_path.write_text(json.dumps(job))
        run_limit = limits.train_timeout if mode == "train" else limits.timeout
        return _supervise(work, job_path, limits, run_limit)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _supervise(work: Path, job_path: Path, limits: Limits, run_limit: float) -> ChildRun:
    """Start the child, enforce the phase deadlines, then read its files."""
    process = subprocess.Popen(
        [sys.executable, "-I", "-B", str(CHILD_SCRIPT), str(job_path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=work,
        env=_child_environment(),
        start_new_session=True,  # its own process group: a kill reaches anything it spawned
    )
    run = ChildRun()
    phase, phase_started = "startup", time.monotonic()
    deadlines = {"startup": limits.startup_timeout, "import": limits.timeout, "run": run_limit}
    markers = {"startup": work / "started.json", "import": work / "import.json"}
    next_phase = {"startup": "import", "import": "run"}
    pause = 0.002
    while True:
        try:
            process.wait(timeout=pause)
            break
        except subprocess.TimeoutExpired:
            pass
        pause = min(pause * 2, 0.05)
        now = time.monotonic()
        # Move through the phases the child has reached (it may have passed several at once).
        while phase in markers and markers[phase].exists():
            phase, phase_started = next_phase[phase], now
        if now - phase_started > deadlines[phase]:
            _kill_group(process)
            run.timed_out = phase
            break
    run.run_seconds = time.monotonic() - phase_started
    if run.timed_out is None:
        run.exit_status = process.returncode
        # Anything the child left running in its group goes too.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    _collect(work, run)
    return run


def _collect(work: Path, run: ChildRun) -> None:
    """Read whatever complete records the child left in ``work``."""
    imported = _read_record(work, "import")
    run.import_result = imported[0] if imported else None
    index = 0
    while (record := _read_record(work, f"call_{index:05d}")) is not None:
        payload, blob = record
        call = dict(payload)
        try:
            if payload.get("outcome") == "returned":
                call["result"] = decode(payload["result"], blob)
                call["inputs_after"] = {name: decode(item, blob)
                                        for name, item in payload["inputs_after"].items()}
        except (KeyError, TypeError, ValueError) as error:
            call = {"outcome": "unreadable", "error": {"type": "unreadable result",
                                                       "message": str(error), "where": None},
                    "seconds": payload.get("seconds", 0.0)}
        run.calls.append(call)
        index += 1
    done = _read_record(work, "done")
    run.done = done[0] if done else None
    trained = _read_record(work, "train")
    if trained:
        payload, blob = trained
        train = dict(payload)
        if payload.get("outcome") == "returned":
            try:
                train["params"] = {k: decode(v, blob) for k, v in payload["params"].items()}
            except (KeyError, TypeError, ValueError) as error:
                train = {"outcome": "unreadable", "error": {"type": "unreadable result",
                                                            "message": str(error), "where": None}}
        run.train = train
