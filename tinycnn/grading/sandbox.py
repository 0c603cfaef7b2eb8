"""Run a submission in a child process with limits, and read back what it returned.

The parent side of :mod:`tinycnn.grading.child`. Each run is a new process in its own session
and temporary directory: on Linux a fork of a preloaded server (`ForkServer`: NumPy and the case
catalogue already imported, so a child costs milliseconds instead of ~0.2 s), elsewhere a fresh
interpreter (``python -I -B child.py JOB.json``). Either way:

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

import atexit
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "CHILD_SCRIPT",
    "ChildRun",
    "ForeignValue",
    "ForkServer",
    "Limits",
    "Sandbox",
    "decode",
    "project_paths",
    "run_child",
    "shared_fork_server",
]

#: The script every child runs.
CHILD_SCRIPT = Path(__file__).with_name("child.py")
#: The course-API adapters (NumPy only), which the child loads next to a submission.
ADAPTER_SCRIPT = Path(__file__).with_name("adapters.py")

# dtypes a result may have: numbers only (object arrays would be pointers, not data).
_ALLOWED_DTYPE_KINDS = "biufc"
#: Largest file a child may write (RLIMIT_FSIZE) and the parent will read back: the outputs of
#: the largest catalogue case are a few kB, so anything near this is a runaway submission.
MAX_RESULT_BYTES = 256 * 2**20


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
            raise ValueError(
                f"memory limit {self.memory_mb} MiB is too small to start NumPy (need at least 256)"
            )


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
            return "the process ended without an exit status (the checker's fork server stopped)"
        if status < 0:
            try:
                name = signal.Signals(-status).name
            except ValueError:
                name = f"signal {-status}"
            hint = {"SIGXCPU": " (CPU time limit)", "SIGXFSZ": " (file size limit)"}.get(name, "")
            return f"the process was killed by {name}{hint}"
        return f"the process exited with status {status} (os._exit, or a crash)"


def project_paths() -> list[str]:
    """Directories from which the child imports ``parity_tests`` and ``reference``.

    The child runs in isolated mode (``-I``: no ``PYTHONPATH``, no current directory on
    ``sys.path``), so it is told where the checker found these packages.
    """
    from tinycnn import parity_tests, reference

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
    blob_path = directory / f"{name}.bin"
    try:
        if meta.stat().st_size > MAX_RESULT_BYTES or (
            blob_path.exists() and blob_path.stat().st_size > MAX_RESULT_BYTES
        ):
            return None
        payload = json.loads(meta.read_text())
        blob = blob_path.read_bytes() if blob_path.exists() else b""
    except (OSError, ValueError):
        return None
    return (payload, blob) if isinstance(payload, dict) else None


# --------------------------------------------------------------------------------------------
# Child processes: a fresh interpreter each (portable), or forked from a preloaded server (Linux)
# --------------------------------------------------------------------------------------------


class _SpawnedChild:
    """``python -I -B child.py JOB`` in its own session."""

    def __init__(self, job_path: Path, work: Path):
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-B", str(CHILD_SCRIPT), str(job_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=work,
            env=_child_environment(),
            start_new_session=True,  # its own process group: a kill reaches anything it spawned
        )

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def wait(self, timeout: float) -> bool:
        """Whether the child has ended, waiting up to ``timeout`` seconds."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def kill(self) -> None:
        """Kill the child's whole process group."""
        _kill_group(self.process.pid)
        self.process.wait()

    def clean_up(self) -> None:
        """After a normal end: kill anything the child left running in its group."""
        _kill_group(self.process.pid, group_only=True)


class _ForkedChild:
    """A child forked by the `ForkServer`; the server reports its pid and its exit status."""

    def __init__(self):
        self.pid: int | None = None
        self.returncode: int | None = None
        self.forked = threading.Event()
        self.ended = threading.Event()

    def wait(self, timeout: float) -> bool:
        return self.ended.wait(timeout)

    def kill(self) -> None:
        if self.forked.wait(5.0) and self.pid is not None:
            _kill_group(self.pid)
        self.ended.wait(5.0)

    def clean_up(self) -> None:
        if self.pid is not None:
            _kill_group(self.pid, group_only=True)


def _kill_group(pid: int, group_only: bool = False) -> None:
    """SIGKILL the process group led by ``pid`` (or, before it has its own group, ``pid``)."""
    kill_signal = getattr(signal, "SIGKILL", signal.SIGTERM)  # no SIGKILL on Windows
    try:
        if not hasattr(os, "killpg"):
            raise ProcessLookupError
        os.killpg(pid, kill_signal)
    except ProcessLookupError:
        if group_only:
            return
        try:  # a child killed before it called setsid() leads no group yet
            os.kill(pid, kill_signal)
        except (ProcessLookupError, OSError):
            pass
    except PermissionError:
        pass


class ForkServerError(RuntimeError):
    """The fork server did not start."""


class ForkServer:
    """A preloaded child (``child.py --serve``) that forks one grandchild per job.

    Starting Python and importing NumPy costs ~0.2 s of CPU per child; a grading runs ten or
    more children, so on Linux they are forked from this server instead (a few ms each). The
    server never runs submission code. Thread-safe: several functions are graded at once.
    """

    def __init__(self, startup_timeout: float):
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-B", str(CHILD_SCRIPT), "--serve", *project_paths()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_child_environment(),
            start_new_session=True,
        )
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._by_id: dict[int, _ForkedChild] = {}
        self._by_pid: dict[int, _ForkedChild] = {}
        self._ready = threading.Event()
        self._alive = True
        self._reader = threading.Thread(target=self._read_reports, daemon=True)
        self._reader.start()
        if not self._ready.wait(startup_timeout) or not self._alive:
            self.close()
            raise ForkServerError(f"the fork server did not start within {startup_timeout:g} s")

    def _read_reports(self) -> None:
        for raw in self.process.stdout:
            words = raw.decode(errors="replace").split()
            with self._lock:
                if words == ["READY"]:
                    self._ready.set()
                elif len(words) == 3 and words[0] == "PID":
                    child = self._by_id.pop(int(words[1]))
                    child.pid = int(words[2])
                    self._by_pid[child.pid] = child
                    child.forked.set()
                elif len(words) == 3 and words[0] == "EXIT":
                    child = self._by_pid.pop(int(words[1]), None)
                    if child is not None:
                        child.returncode = int(words[2])
                        child.ended.set()
        with self._lock:  # the server is gone: nothing more will be reported
            self._alive = False
            for child in [*self._by_id.values(), *self._by_pid.values()]:
                child.forked.set()
                child.ended.set()
            self._ready.set()

    @property
    def alive(self) -> bool:
        return self._alive and self.process.poll() is None

    def start(self, job_path: Path) -> _ForkedChild:
        child = _ForkedChild()
        with self._lock:
            if not self._alive:
                raise ForkServerError("the fork server has stopped")
            job_id = next(self._ids)
            self._by_id[job_id] = child
            try:
                self.process.stdin.write(f"RUN {job_id} {job_path}\n".encode())
                self.process.stdin.flush()
            except OSError as error:
                del self._by_id[job_id]
                raise ForkServerError(f"the fork server has stopped: {error}") from None
        return child

    def close(self) -> None:
        """Stop the server (it ends once its running children have ended)."""
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _kill_group(self.process.pid)
            self.process.wait()
        self._reader.join(timeout=10)
        self.process.stdout.close()


def fork_server_supported() -> bool:
    """Forking a preloaded NumPy process is safe on Linux; elsewhere each child is spawned."""
    return sys.platform.startswith("linux") and hasattr(os, "fork")


_SHARED_SERVER: ForkServer | None = None
_SHARED_LOCK = threading.Lock()


def shared_fork_server(startup_timeout: float) -> ForkServer:
    """The process-wide fork server, started on first use (again if it has stopped).

    Submissions never run in the server, only in its forks, so every grading in this process
    (a folder of them, a test session) can share it and skip its start-up.
    """
    global _SHARED_SERVER
    with _SHARED_LOCK:
        if _SHARED_SERVER is None or not _SHARED_SERVER.alive:
            _SHARED_SERVER = ForkServer(startup_timeout)
            atexit.register(_SHARED_SERVER.close)
        return _SHARED_SERVER


class Sandbox:
    """Where one submission's children run, with its limits: use as a context manager.

    Parameters
    ----------
    limits : Limits
    fork : bool or None
        Fork children from a preloaded `ForkServer` (default: on Linux) or spawn a fresh
        interpreter for each (portable, slower). If the server cannot start, children are
        spawned.
    """

    def __init__(self, limits: Limits, fork: bool | None = None):
        self.limits = limits
        self.server: ForkServer | None = None
        if fork_server_supported() if fork is None else fork:
            try:
                self.server = shared_fork_server(limits.startup_timeout)
            except ForkServerError:
                self.server = None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        # The shared server stays up for the next grading; it stops when this process exits.
        self.server = None

    def run(self, mode: str, submission: Path, **kwargs) -> ChildRun:
        """`run_child` with this sandbox's limits and server."""
        return run_child(mode, submission, limits=self.limits, server=self.server, **kwargs)


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
    server: ForkServer | None = None,
    student_modules: tuple[str, ...] = (),
    api: str = "tinycnn",
) -> ChildRun:
    """Run the submission in a new child process and collect its results.

    Parameters
    ----------
    mode : {"probe", "function", "train"}
        "probe" only imports the submission; "function" calls ``function`` on ``cases``
        (``[{"id": case_id, "direction": "forward"|"backward"}, ...]``); "train" trains TinyCNN
        with the submission's ops as described by ``training`` (``model``, ``config``, ``data``
        keyword dicts).
    submission : Path
        The student's entry module, alone in a folder with the student's other modules (see
        `tinycnn.grading.submission.Submission.write`).
    functions : tuple of str
        Contract names whose presence the import report lists.
    allowed_imports : tuple of str
        Top-level modules the submission may import.
    limits : Limits
    server : ForkServer, optional
        Fork the child from this server instead of starting a new interpreter.
    student_modules : tuple of str
        Names of the student's helper modules (in the entry's folder), which may import each
        other.
    api : str
        The course API the entry is written against; the child calls it through the checker's
        adapter (:mod:`tinycnn.grading.adapters`).

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
            "submission_dir": str(Path(submission).resolve().parent),
            "student_modules": list(student_modules),
            "api": api,
            "adapter": str(ADAPTER_SCRIPT),
            "functions": list(functions),
            "allowed_imports": sorted(allowed_imports),
            "function": function,
            "cases": cases or [],
            "training": training,
            "project_paths": project_paths(),
            "out_dir": str(work),
            "memory_bytes": int(limits.memory_mb) * 2**20,
            "file_bytes": MAX_RESULT_BYTES,
            # Backstop only (an orphan is stopped by the kernel); the parent's clock rules.
            "cpu_seconds": int(
                limits.startup_timeout + limits.timeout + max(limits.timeout, limits.train_timeout)
            )
            + 10,
        }
        job_path = work / "job.json"
        job_path.write_text(json.dumps(job))
        child = None
        if server is not None:
            try:
                child = server.start(job_path)
            except ForkServerError:
                child = None
        if child is None:
            child = _SpawnedChild(job_path, work)
        run_limit = limits.train_timeout if mode == "train" else limits.timeout
        return _supervise(child, work, limits, run_limit)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _supervise(child, work: Path, limits: Limits, run_limit: float) -> ChildRun:
    """Enforce the phase deadlines on a started child, then read its files."""
    run = ChildRun()
    phase, phase_started = "startup", time.monotonic()
    deadlines = {"startup": limits.startup_timeout, "import": limits.timeout, "run": run_limit}
    markers = {"startup": work / "started.json", "import": work / "import.json"}
    next_phase = {"startup": "import", "import": "run"}
    pause = 0.002
    while True:
        if child.wait(pause):
            run.exit_status = child.returncode
            break
        pause = min(pause * 2, 0.05)
        now = time.monotonic()
        # Move through the phases the child has reached (it may have passed several at once).
        while phase in markers and markers[phase].exists():
            phase, phase_started = next_phase[phase], now
        if now - phase_started > deadlines[phase]:
            child.kill()
            run.timed_out = phase
            break
    run.run_seconds = time.monotonic() - phase_started
    if run.timed_out is None:
        child.clean_up()
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
                call["inputs_after"] = {
                    name: decode(item, blob) for name, item in payload["inputs_after"].items()
                }
        except (KeyError, TypeError, ValueError) as error:
            call = {
                "outcome": "unreadable",
                "error": {"type": "unreadable result", "message": str(error), "where": None},
                "seconds": payload.get("seconds", 0.0),
            }
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
                train = {
                    "outcome": "unreadable",
                    "error": {"type": "unreadable result", "message": str(error), "where": None},
                }
        run.train = train
