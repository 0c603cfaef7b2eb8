"""Inside the sandbox: run a submission's functions and write what they returned to files.

This file is run as a script, ``python -I -S -B child.py JOB.json``, by
:mod:`tinycnn.grading.sandbox`, inside bubblewrap where the machine has it. It uses the standard
library and NumPy only (nothing else exists in the sandbox) and is never imported by the
checker. It is the *only* code of the checker that runs on the untrusted side of the boundary;
what it writes is read back through :mod:`tinycnn.grading.channel`, which trusts none of it.

One process, the *supervisor*, does this, and never runs submission code:

1. drop to the unprivileged uid named in the job (when started as root), set the resource
   limits (processes, address space, CPU time, file size), import NumPy, read the case inputs
   the checker sends on its standard input into memory no child inherits (`receive_inputs`),
   and make itself non-dumpable, so that no process of the submission can read its memory;
2. install the import rule: a denied module (a framework, this project) imports as a
   placeholder that raises when used, and every such import is recorded with its line;
3. fork the *importer*, which, before any submission code runs, puts every new process it or
   its descendants would start under the supervisor's decision (`gate_processes`: the import
   may start processes, the importer one worker per task, a worker none), then imports the
   submission once (the import's time limit), writes the
   import record (its functions, denied imports, tampering) into every task's directory, forks
   one *worker* per task from that imported state and leaves; a worker waits for its inputs,
   then calls its function on every case and writes one record per call, or runs the training;
4. once the importer has left, kill every process that is not a worker (whatever the import
   started), and only then hand the inputs over (`hand_over`): no code run at import time
   ever sees a case, hidden or not, nor runs while the functions run;
5. enforce each worker's limits (processor time of the worker *and every process it started*,
   measured in ``/proc``, with ``RLIMIT_CPU`` as a backstop, and a wall-clock cap), kill a
   worker over them, and kill whatever a worker started when it ends (`_Tree`); once every
   process of the run is gone, write each task's ``status.json``.

Nothing is compared here: the checker computes the expected values itself, from inputs the
submission never chose, including hidden cases drawn from a fresh seed each run.
"""

import builtins
import json
import os
import select
import signal
import socket
import struct
import sys
import time
import traceback

# -- what the harness uses after the submission has run: captured before it runs ---------------
_open = builtins.open
_isinstance = builtins.isinstance
_PermissionError = builtins.PermissionError
_type = builtins.type
_len = builtins.len
_str = builtins.str
_float = builtins.float
_int = builtins.int
_list = builtins.list
_tuple = builtins.tuple
_dict = builtins.dict
_sorted = builtins.sorted
_getattr = builtins.getattr
_callable = builtins.callable
_BaseException = builtins.BaseException
_json_dumps = json.dumps
_os_replace = os.replace
_os_exit = os._exit
_os_path_join = os.path.join
_perf_counter = time.perf_counter
_struct_pack = struct.pack
_extract_tb = traceback.extract_tb
_getframe = sys._getframe
_sys_modules = sys.modules
_os_fork = os.fork
_setpgid = os.setpgid
_select = select.select
_signal_signal = signal.signal
_SIGXCPU = getattr(signal, "SIGXCPU", None)
_SIG_DFL = signal.SIG_DFL
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

SUBMISSION_MODULE = "submission"
#: The student's own modules (the entry as ``submission``, helpers by their names) and the folder
#: they were written to; set by `main` from the job. Exceptions are located in these files.
_STUDENT = {"modules": frozenset([SUBMISSION_MODULE]), "folder": None}
#: Modules whose namespaces a submission must leave alone (checked after import and after calls).
GUARDED_MODULE_PREFIXES = ("numpy", "builtins")


def is_public_guarded(module_name):
    """``numpy``, ``numpy.linalg``, ``builtins``... not private modules with internal caches."""
    parts = module_name.split(".")
    return parts[0] in GUARDED_MODULE_PREFIXES and not any(p.startswith("_") for p in parts)


def drop_privileges(uid, gid):
    """Become ``uid``/``gid`` with no supplementary groups (only when started as root)."""
    if uid is None or os.getuid() != 0:
        return
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid:
        _os_exit(71)


def apply_limits(limits):
    """Cap processes, address space, CPU time, file size, open files and core dumps (POSIX
    only)."""
    try:
        import resource
    except ImportError:
        return
    caps = [
        ("RLIMIT_NPROC", limits.get("nproc")),
        ("RLIMIT_AS", limits.get("memory_bytes")),
        ("RLIMIT_CPU", limits.get("cpu_seconds")),
        ("RLIMIT_FSIZE", limits.get("file_bytes")),
        ("RLIMIT_NOFILE", limits.get("open_files")),
        ("RLIMIT_CORE", 0),
    ]
    for name, value in caps:
        if value is None or not hasattr(resource, name):
            continue
        try:
            resource.setrlimit(getattr(resource, name), (value, value))
        except (ValueError, OSError):  # e.g. macOS refuses RLIMIT_AS: the time limits hold
            pass


def write_atomically(path, data, binary=False):
    tmp = path + ".tmp"
    with _open(tmp, "wb" if binary else "w") as handle:
        handle.write(data)
    _os_replace(tmp, path)


class Writer:
    """Writes records: ``NAME.bin`` (array bytes) first, then ``NAME.json``."""

    def __init__(self, directory):
        self.directory = directory

    def save(self, name, payload, chunks):
        if chunks:
            write_atomically(_os_path_join(self.directory, name + ".bin"), b"".join(chunks), True)
        write_atomically(_os_path_join(self.directory, name + ".json"), _json_dumps(payload))


def encode(value, np_ndarray, np_generic, chunks, offset, depth=0):
    """Describe ``value`` as a JSON record; array bytes are appended to ``chunks``.

    Returns ``(record, new_offset)``. Only ndarray methods (which a submission cannot replace, as
    ndarray is a built-in type) and captured builtins are used.
    """
    if _isinstance(value, (np_ndarray, np_generic)):
        container = "ndarray" if _isinstance(value, np_ndarray) else "numpy scalar"
        dtype = value.dtype
        if dtype.kind not in "biufc" or dtype.fields is not None or dtype.subdtype is not None:
            return {"kind": "other", "type": f"{container} of dtype {_str(dtype)}"}, offset
        data = np_ndarray.tobytes(value) if container == "ndarray" else value.tobytes()
        chunks.append(data)
        record = {
            "kind": "array",
            "container": container,
            "dtype": dtype.str,
            "shape": [_int(n) for n in value.shape],
            "offset": offset,
            "nbytes": _len(data),
        }
        return record, offset + _len(data)
    if _type(value) in (_float, _int):  # exactly float or int (bool is "other")
        try:
            data = _struct_pack("<d" if _type(value) is _float else "<q", value)
        except _BaseException:  # an int too large for int64
            return {"kind": "other", "type": "int (out of range)"}, offset
        chunks.append(data)
        record = {
            "kind": "array",
            "container": "python " + _type(value).__name__,
            "dtype": "<f8" if _type(value) is _float else "<i8",
            "shape": [],
            "offset": offset,
            "nbytes": _len(data),
        }
        return record, offset + _len(data)
    if _type(value) in (_tuple, _list) and depth == 0 and _len(value) <= 16:
        items = []
        for item in value:
            record, offset = encode(item, np_ndarray, np_generic, chunks, offset, depth + 1)
            items.append(record)
        return {"kind": "tuple", "type": _type(value).__name__, "items": items}, offset
    return {"kind": "other", "type": _type(value).__name__[:100]}, offset


def _student_file(filename, submission_path):
    """``filename`` relative to the student's folder (``/``-separated), or None if not theirs."""
    if filename == submission_path:
        return os.path.basename(submission_path)
    folder = _STUDENT["folder"]
    if folder and _isinstance(filename, _str) and filename.startswith(folder + os.sep):
        return filename[_len(folder) + 1 :].replace(os.sep, "/")
    return None


def describe_exception(error, submission_path):
    """Type, message and the last line of the student's code that was running.

    ``where`` is ``"line N, in NAME"``; ``file`` (relative to the student's folder), ``line`` and
    ``function`` say the same as data, for the checker to name a notebook cell or helper file.
    """
    try:
        message = _str(error)
    except _BaseException:  # a hostile __str__
        message = "<message unavailable>"
    if _isinstance(error, SystemExit):
        message = f"the process was asked to end with SystemExit({error.code!r})"
    if _NO_PROCESSES["on"] and _isinstance(error, _PermissionError):
        message = message[:180] + NO_PROCESS_NOTE
    where = location = None
    try:
        for frame in _extract_tb(error.__traceback__):
            relative = _student_file(frame.filename, submission_path)
            if relative is not None:
                where = f"line {frame.lineno}, in {frame.name}"
                location = {"file": relative, "line": frame.lineno, "function": frame.name}
    except _BaseException:
        where = location = None
    if _isinstance(error, SyntaxError):
        # Compiling a student's file (a helper the entry imports): the place is the line that
        # does not compile, not the import statement the traceback ends at, and the message is
        # the error's own (its str() repeats the place: "'(' was never closed (utils.py, line 3)").
        try:
            relative = _student_file(_getattr(error, "filename", None), submission_path)
            line, reason = _getattr(error, "lineno", None), _getattr(error, "msg", None)
        except _BaseException:
            relative = line = reason = None
        if relative is not None and _type(line) is _int:
            where = f"line {line}"
            location = {"file": relative, "line": line, "function": None}
            if _type(reason) is _str:
                message = reason
    described = {
        "type": _type(error).__name__[:100],
        "message": message[:300],
        "where": where,
        "memory_error": _isinstance(error, MemoryError),
    }
    if location is not None:
        described.update(location)
    return described


# --------------------------------------------------------------------------------------------
# The import rule: denied modules import as placeholders; every use is recorded with its line
# --------------------------------------------------------------------------------------------


class PlaceholderError(ImportError):
    """Raised when a submission uses a module the checker does not provide."""


def _unavailable(name):
    return PlaceholderError(
        f"{name} is not available: a submission uses the standard library and NumPy only"
    )


class Placeholder:
    """Stands for anything reached through a denied module: using it raises `PlaceholderError`."""

    def __init__(self, name):
        object.__setattr__(self, "_name", name)

    def __getattr__(self, attribute):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return Placeholder(object.__getattribute__(self, "_name") + "." + attribute)

    def __call__(self, *args, **kwargs):
        raise _unavailable(object.__getattribute__(self, "_name"))

    def __mro_entries__(self, bases):
        raise _unavailable(object.__getattribute__(self, "_name"))

    def __repr__(self):
        return f"<unavailable {object.__getattribute__(self, '_name')}>"


class PlaceholderModule(type(sys)):
    """A denied module: importing works (so the other functions are still graded), using it
    raises."""

    def __getattr__(self, attribute):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return Placeholder(self.__name__ + "." + attribute)


class DenyFinder:
    """``sys.meta_path`` finder giving placeholders for denied top-level modules.

    An import is the submission's when the code that asked for it (the first frame outside
    importlib) is not the standard library's or NumPy's own, and the submission's code is on the
    stack: so ``exec("import torch")``, ``__import__``, ``importlib.import_module`` and
    importlib's bootstrap reached by hand are all caught, with the submission's line, while the
    optional imports inside the standard library and NumPy keep their normal behaviour.
    """

    def __init__(self, allowed, submission_path, trusted_dirs):
        self.allowed = frozenset(allowed)
        self.submission_path = submission_path
        self.trusted = tuple(trusted_dirs)
        self.importlib_dir = os.path.dirname(importlib_file()) + os.sep
        self.blocked = []

    def _submission_line(self):
        frame = _getframe(2)
        importer = None
        while frame is not None:
            filename = frame.f_code.co_filename
            if importer is None and not (
                filename.startswith("<frozen") or filename.startswith(self.importlib_dir)
            ):
                importer = filename
                if _student_file(filename, self.submission_path) is None and filename.startswith(
                    self.trusted
                ):
                    return None, False
            relative = _student_file(filename, self.submission_path)
            if relative is not None:
                line = frame.f_lineno if filename == self.submission_path else None
                return line, True
            frame = frame.f_back
        return None, False

    def find_spec(self, fullname, path=None, target=None):
        top = fullname.partition(".")[0]
        if top in self.allowed:
            return None
        line, from_submission = self._submission_line()
        if not from_submission:
            return None
        if "." not in fullname:
            self.blocked.append({"module": top, "line": line})
        import importlib.machinery

        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec):
        module = PlaceholderModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


class NamespaceGuard:
    """Notices when the submission replaces NumPy's or Python's functions, and undoes it."""

    def __init__(self, submission_path):
        self.submission_path = submission_path
        self.saved = self._public_namespaces()
        self.tampered = set()

    @staticmethod
    def _public_namespaces():
        saved = {}
        for module_name, module in _list(_sys_modules.items()):
            if module is None or not is_public_guarded(module_name):
                continue
            namespace = _getattr(module, "__dict__", None)
            if _isinstance(namespace, _dict):
                saved[module_name] = {
                    key: value for key, value in _list(namespace.items()) if not key.startswith("_")
                }
        return saved

    def check(self, scan=True):
        """Record and undo the submission's changes; returns every name recorded so far.

        With ``scan``, also look through every NumPy module, private ones included, for the
        submission's own functions: that takes milliseconds, so it runs after the import and at
        the end of a task, not after every call (its findings are reported only then anyway).
        """
        for module_name, saved in self.saved.items():
            namespace = _sys_modules[module_name].__dict__
            for key, value in saved.items():
                if namespace.get(key, _MISSING) is not value:
                    self.tampered.add(module_name + "." + key)
                    namespace[key] = value
            if module_name == "builtins":
                for key in _list(namespace):
                    if not key.startswith("_") and key not in saved:
                        self.tampered.add("builtins." + key)
                        del namespace[key]
        if not scan:
            return None
        for module_name, module in _list(_sys_modules.items()):
            if module is None or module_name.split(".")[0] != "numpy":
                continue
            namespace = _getattr(module, "__dict__", None)
            if not _isinstance(namespace, _dict):
                continue
            for key, value in _list(namespace.items()):
                code = _getattr(value, "__code__", None)
                filename = _getattr(code, "co_filename", None) if code is not None else None
                if filename is not None and _student_file(filename, self.submission_path):
                    self.tampered.add(module_name + "." + key)
        return _sorted(self.tampered)[:200]


_MISSING = object()


def importlib_file():
    import importlib

    return importlib.__file__


def entry_module_name(path):
    """The name the student's own code imports the entry by (``layers.py`` -> ``layers``,
    ``hw/layers.py`` -> ``hw.layers``), from its place in the student's folder; None if it has
    none (outside the folder, or a part that is not an identifier)."""
    folder = _STUDENT["folder"]
    if not folder or not path.startswith(folder + os.sep) or not path.endswith(".py"):
        return None
    parts = path[_len(folder) + 1 : -3].split(os.sep)
    if not all(part.isidentifier() for part in parts):
        return None
    if parts[0] in _sys_modules or parts[0] in sys.stdlib_module_names:
        return None  # named like a module Python already has: never replace that one
    return ".".join(parts)


def import_submission(path):
    """Execute the submission as module ``submission``, also known by its own name (a helper's
    ``from layers import *`` gets this module, not a second copy); returns the module (raises on
    failure). An entry inside a package (``hw/layers.py``) is imported as ``hw.layers``, its
    package first, so its relative imports work."""
    import importlib.util

    folder = _STUDENT["folder"]
    if folder and folder not in sys.path:  # the student's helper modules import each other
        sys.path.insert(0, folder)
    name = entry_module_name(path)
    if name and "." in name:
        module = importlib.import_module(name)
        _sys_modules[SUBMISSION_MODULE] = module
        return module
    spec = importlib.util.spec_from_file_location(SUBMISSION_MODULE, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    _sys_modules[SUBMISSION_MODULE] = module
    if name:
        _sys_modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_adapter(path):
    """The checker's course-API adapter (:mod:`tinycnn.grading.adapters`), loaded from its file."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_tinycnn_course_api", path)
    adapter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(adapter)
    return adapter


# --------------------------------------------------------------------------------------------
# The importer (imports once, then forks the workers), and one worker: the calls or training
# --------------------------------------------------------------------------------------------


def _report(fd, line):
    """Tell the supervisor ``line`` on the announcement pipe (it may be gone: ignored)."""
    try:
        os.write(fd, line.encode("ascii"))
    except OSError:
        pass


def _cpu_limit(seconds, hard=None):
    """``RLIMIT_CPU`` of this process: SIGXCPU after ``seconds`` of processor time (whole
    seconds, rounded up), SIGKILL at ``hard``; with ``seconds`` None, the soft limit goes back to
    the hard one. A backstop: the supervisor measures the time itself where /proc exists."""
    try:
        import resource

        if seconds is None:
            _, hard_now = resource.getrlimit(resource.RLIMIT_CPU)
            resource.setrlimit(resource.RLIMIT_CPU, (hard_now, hard_now))
            return
        soft = max(1, _int(-(-seconds // 1)))
        _, hard_now = resource.getrlimit(resource.RLIMIT_CPU)
        hard = hard_now if hard is None else hard
        if hard_now != resource.RLIM_INFINITY:
            soft, hard = min(soft, hard_now), min(hard, hard_now)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
    except (ImportError, ValueError, OSError):
        pass


def importer(job, finder, adapter, report_fd, cpu_limits, go_fds, gated=False):
    """Import the submission (its first and only import), record the outcome in every task's
    directory, then fork one worker per task from this imported state and leave; never returns.

    Announces on ``report_fd``: ``I`` once the import is over (ok or not), then ``S INDEX PID``
    for each worker started, then ``E``. With ``cpu_limits`` (Linux: the supervisor is the
    workers' subreaper) it exits once they are started, so the supervisor waits for them
    itself; else it stays and reaps them (the supervisor then watches their pids). ``go_fds``
    maps each task's index to the pipe on which its worker waits for its inputs
    (`await_inputs`); nothing of the inputs is in this process. ``gated``: the supervisor
    decides every new process (`gate_processes`); else each worker refuses them itself.
    """
    if cpu_limits:
        _cpu_limit(job["limits"]["timeout"])
    submission_path = job["submission"]
    os.chdir(job["work"])
    if not gated:
        # Registered before any code of the submission's, so run first in every child this
        # process forks: a worker refuses new processes before a fork hook of the submission's
        # (``os.register_at_fork(after_in_child=...)``) runs in it (`refuse_processes`).
        os.register_at_fork(after_in_child=_refuse_processes_in_worker)
    namespaces = NamespaceGuard(submission_path)
    started = _perf_counter()
    module = failure = None
    try:
        module = import_submission(submission_path)
    except _BaseException as error:  # SyntaxError, SystemExit, anything
        failure = describe_exception(error, submission_path)
    if failure is not None:
        record = {"ok": False, "error": failure}
    else:
        graded_as = {}
        if adapter is not None:
            try:
                module, graded_as = adapter.contract_namespace(job["api"], module)
            except _BaseException:  # a hostile module attribute (a property that raises...)
                module, graded_as = adapter.ContractFunctions({}), {}
        functions = {}
        for name in job["functions"]:
            try:
                value = _getattr(module, name, None)
                state = "missing" if value is None else "not callable"
                state = "callable" if _callable(value) else state
            except _BaseException:  # a module __getattr__ that raises
                state = "missing"
            functions[name] = state
        record = {"ok": True, "functions": functions, "graded_as": graded_as}
    record.update(blocked=finder.blocked, tampered=namespaces.check())
    record["seconds"] = _perf_counter() - started
    for task in job["tasks"]:
        Writer(_os_path_join(job["out"], task["name"])).save("import", record, [])
    _report(report_fd, "I\n")
    if failure is not None:
        _os_exit(0)
    if cpu_limits:
        _cpu_limit(None)
    _NO_PROCESSES["workers"] = True  # the forks from here on are workers'
    for index, task in enumerate(job["tasks"]):
        if task.get("gate"):
            continue
        out_dir = _os_path_join(job["out"], task["name"])
        pid = _os_fork()
        if pid == 0:
            try:
                # The supervisor refuses this worker every new process (`gate_processes`), or
                # `refuse_processes` is in place (the fork hook): none could escape its limit.
                _NO_PROCESSES["on"] = _NO_PROCESSES["on"] or gated
                os.close(report_fd)
                for other, fd in go_fds.items():
                    if other != index:
                        os.close(fd)
                _setpgid(0, 0)
                # What this worker starts stays below it, however it detaches (`_Tree`).
                become_subreaper()
                run_task(job, task, out_dir, module, finder, namespaces, go_fds[index], cpu_limits)
            except _BaseException:
                pass
            finally:
                _os_exit(70)
        try:  # from both sides: the worker is in its own group before either goes on
            _setpgid(pid, pid)
        except OSError:
            pass
        _report(report_fd, f"S {index} {pid}\n")
    _report(report_fd, "E\n")
    if not cpu_limits:
        while True:
            try:
                os.wait()
            except ChildProcessError:
                break
            except OSError:
                continue
    _os_exit(0)


def task_limits(task, limits, cpu_limits):
    """``(processor seconds or None, wall seconds)`` a task may run once imported.

    A function gets ``timeout`` seconds of processor time, its worker's and that of every
    process the worker started, however detached (`_Tree`), and ``wall_factor`` times that in
    wall-clock time from the moment it has its inputs (a process that sleeps or waits uses no
    processor time). Its classmates' load slows it down but does not use up its limit.
    Training, alone in its sandbox, gets ``train_timeout`` of both. Without measurable
    processor time (no subreaper: not Linux) the limit is wall-clock time alone.
    """
    if task.get("train"):
        seconds, factor = limits["train_timeout"], 1.0
    else:
        seconds, factor = limits["timeout"], limits.get("wall_factor", 1.0)
    if not cpu_limits:
        return None, seconds
    return seconds, seconds * factor


def run_task(job, task, out_dir, module, finder, namespaces, go_fd, cpu_limits):
    """One worker, forked from the importer: waits for its inputs (`await_inputs`), then runs
    the task's calls or its training run; never returns."""
    import numpy as np

    cpu, _wall = task_limits(task, job["limits"], cpu_limits)
    if cpu is not None:
        _cpu_limit(cpu, max(1, _int(-(-cpu // 1))) + 1)
        try:  # the submission may have caught SIGXCPU at import: the hard limit holds anyway
            _signal_signal(_SIGXCPU, _SIG_DFL)
        except _BaseException:
            pass
    submission_path = job["submission"]
    writer = Writer(out_dir)
    # The inputs come from the supervisor once the import is over and whatever it started is
    # gone: no code run at import time has seen them.
    files = {call["file"] for call in task.get("calls", [])}
    files |= {task["train"]["file"]} if task.get("train") else set()
    loaded = await_inputs(go_fd, _sorted(files), np)
    if loaded is None:  # the run was stopped before the hand-over
        _os_exit(0)
    calls = []
    for call in task.get("calls", []):
        arrays = loaded[call["file"]]
        calls.append((call, {name: arrays[call["prefix"] + name] for name in call["names"]}))
    training = loaded[task["train"]["file"]] if task.get("train") else None
    function = None
    if calls:
        try:
            function = _getattr(module, task["function"], None)
        except _BaseException:
            function = None
    if _callable(function):  # missing or not a function: the import record says so, no calls
        run_calls(function, calls, writer, np.ndarray, np.generic, submission_path, namespaces)
    if training is not None:
        run_training(module, task["train"], training, writer, np, submission_path)
    writer.save("done", {"blocked": finder.blocked, "tampered": namespaces.check()}, [])
    # Leave at once: no atexit handlers or threads the submission may have set up get to run.
    _os_exit(0)


def run_calls(function, calls, writer, np_ndarray, np_generic, submission_path, namespaces):
    """Call the function on every case; one ``call_NNNNN`` record per call."""
    for index, (call, inputs) in enumerate(calls):
        started = _perf_counter()
        try:
            args = [inputs[name] for name in call["args"]]
            result = function(*args, **call["kwargs"])
        except _BaseException as error:  # includes SystemExit and KeyboardInterrupt
            seconds = _perf_counter() - started
            namespaces.check(scan=False)
            payload = {"outcome": "raised", "error": describe_exception(error, submission_path)}
            chunks = []
        else:
            seconds = _perf_counter() - started
            namespaces.check(scan=False)
            chunks = []
            record, offset = encode(result, np_ndarray, np_generic, chunks, 0)
            after = {}
            for key, value in inputs.items():  # as they are now: the parent checks them
                after[key], offset = encode(value, np_ndarray, np_generic, chunks, offset, 1)
            payload = {"outcome": "returned", "result": record, "inputs_after": after}
        payload["seconds"] = seconds  # in the function only: the checker's work is not counted
        try:
            writer.save(f"call_{index:05d}", payload, chunks)
        except OSError as error:  # e.g. a result beyond the file-size limit (EFBIG)
            size = sum(_len(chunk) for chunk in chunks)
            payload = {
                "outcome": "raised",
                "seconds": payload["seconds"],
                "error": {
                    "type": "malformed result",
                    "where": None,
                    "memory_error": False,
                    "message": f"{size} bytes of output could not be saved: {_str(error)}",
                },
            }
            writer.save(f"call_{index:05d}", payload, [])


def run_training(ops, settings, data, writer, np, submission_path):
    """Train TinyCNN with the submission's ops: the composition only, no reference op.

    The checker supplies everything else: the initial parameters (``conv.weight``,
    ``conv.bias``, ``fc.weight``, ``fc.bias``), the training images and labels, and the order in
    which the samples are visited (``order``: one permutation per epoch). The arithmetic is that of
    ``tinycnn.reference.models.TinyCNN`` and ``tinycnn.reference.train`` (SGD with momentum, as
    ``torch.optim.SGD``), so a submission whose ops are the contract's ends with the reference
    run's parameters.
    """
    started = _perf_counter()
    pool = settings["pool_size"]
    lr, momentum, batch_size = settings["lr"], settings["momentum"], settings["batch_size"]
    names = ("conv.weight", "conv.bias", "fc.weight", "fc.bias")
    params = {name: np.array(data[name]) for name in names}
    x_train, y_train = data["x_train"], data["y_train"]
    buffers = {}
    losses = []
    try:
        for order in data["order"]:  # one permutation of the samples per epoch
            for start in range(0, _len(order), batch_size):
                batch = order[start : start + batch_size]
                x, labels = x_train[batch], y_train[batch]
                conv = ops.conv2d_forward(x, params["conv.weight"], params["conv.bias"])
                relu = ops.relu_forward(conv)
                pooled = ops.maxpool2d_forward(relu, pool, pool)
                flat = pooled.reshape(_len(x), -1)
                logits = ops.linear_forward(flat, params["fc.weight"], params["fc.bias"])
                loss, dlogits = ops.softmax_cross_entropy(logits, labels)
                dflat, dfc_w, dfc_b = ops.linear_backward(
                    dlogits, flat, params["fc.weight"], params["fc.bias"]
                )
                drelu = ops.maxpool2d_backward(dflat.reshape(pooled.shape), relu, pool, pool)
                dconv = ops.relu_backward(drelu, conv)
                _, dconv_w, dconv_b = ops.conv2d_backward(
                    dconv, x, params["conv.weight"], params["conv.bias"]
                )
                grads = {"conv.weight": dconv_w, "conv.bias": dconv_b}
                grads.update({"fc.weight": dfc_w, "fc.bias": dfc_b})
                for name in names:
                    p, g = params[name], grads[name]
                    buffer = buffers.get(name)
                    if buffer is None:
                        buffer = buffers[name] = np.array(g, dtype=p.dtype, copy=True)
                    else:
                        buffer *= momentum
                        buffer += g
                    p -= lr * buffer
                losses.append(_float(loss))
    except _BaseException as error:
        writer.save(
            "train", {"outcome": "raised", "error": describe_exception(error, submission_path)}, []
        )
        return
    chunks, offset, records = [], 0, {}
    for name in names:
        records[name], offset = encode(params[name], np.ndarray, np.generic, chunks, offset, 1)
    writer.save(
        "train",
        {
            "outcome": "returned",
            "params": records,
            # NaN and infinity are not JSON: sent as null.
            "step_loss": [loss if loss - loss == 0 else None for loss in losses],
            "seconds": _perf_counter() - started,
        },
        chunks,
    )


# --------------------------------------------------------------------------------------------
# The supervisor: never runs submission code
# --------------------------------------------------------------------------------------------
#
# It forks the importer, which imports the submission once, writes the import record into every
# task's directory and forks one worker per task from that imported state (each in a process
# group of its own), then exits: on Linux the workers become the supervisor's children (it is
# their subreaper), so their exit statuses and processor times come from the kernel, not from a
# process that ran submission code. What the supervisor reads from the importer is one line per
# event on a pipe (``I``: the import is over; ``S INDEX PID``: a worker started), parsed
# strictly and bounded: a lying importer can only misplace its own submission's limits.

#: Seconds between two looks of the supervisor at the processes it watches.
TICK = 0.005
#: Least seconds between two readings of the run's whole process tree (`_Tree`); more when a
#: reading is slow (a host ``/proc`` with many processes): at most about 5% of a core.
SWEEP_SECONDS = 0.05
#: Bytes the importer may announce in all (a dozen per task).
MAX_ANNOUNCED = 64 * 1024
#: Exit statuses of processes reaped before their announcement was read, kept at most.
MAX_REAPED = 4096
#: Largest header of the inputs the checker sends (`receive_inputs`).
MAX_INPUT_HEADER = 2**20

#: The inputs the checker sent (`receive_inputs`): held here, not in a local of `main`, so that
#: the importer's stack holds no reference to them.
_INPUTS = {"value": None}
#: ``/proc`` as a directory descriptor, opened by `main` before any ``chroot`` (level uid has no
#: ``/proc`` in its root), never inherited by the importer; None where there is none.
_PROC = {"fd": None}


def _read_proc(path):
    """The bytes of ``/proc/PATH`` (through `_PROC`), or None."""
    if _PROC["fd"] is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY, dir_fd=_PROC["fd"])
    except OSError:
        return None
    try:
        return os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)


def _stat_fields(raw):
    """The fields of a ``/proc/PID/stat`` after the command name (state first); raises
    ValueError for anything else (None: the process is gone)."""
    if raw is None or b")" not in raw:
        raise ValueError("no such process")
    return raw.rsplit(b")", 1)[1].split()


def process_cpu_seconds(pid):
    """Processor time of ``pid``, its threads and its waited-for children (``/proc``), or
    None where it cannot be read (no /proc; the process is gone)."""
    raw = _read_proc(f"{pid}/stat")
    try:
        return sum(_int(field) for field in _stat_fields(raw)[11:15]) / _CLOCK_TICKS
    except (TypeError, IndexError, ValueError):
        return None


class _Tree:
    """The run's processes as ``/proc`` shows them: who started whom, and their processor time.

    The supervisor, every worker and the importer are *subreapers*
    (``prctl(PR_SET_CHILD_SUBREAPER)``): a process whose parent ends is adopted by the nearest
    of them above it, not by init. So every process a worker starts, directly or not, stays
    below that worker however it detaches (``setsid``, a double fork, a new process group)
    until the worker ends; the seccomp filter (`deny_network`) refuses to turn the flag off.
    A worker's processor time is therefore the sum over the processes below it, live or
    ended (an ended one's time is in its waiter's ``cutime``, or in its own entry while it is
    a zombie), and whatever is below the supervisor but neither below a worker nor below the
    importer while it imports is killed (a *stray*: what the import left, what a worker left
    when it ended).

    What each level adds, and what none catches:

    - ``bubblewrap``: the run has a PID namespace of its own; ``/proc`` shows only its
      processes, and the kernel kills all of them when the supervisor ends.
    - ``uid``: no ``/proc`` in the run's root: the supervisor reads the machine's through a
      descriptor opened before the ``chroot``; every process of the run has the run's uid,
      which the checker kills when the run ends.
    - ``process``: the subreaper tree alone, on the machine's ``/proc``.
    - Not caught: the processor time of a process released by the kernel when it ends (its
      parent ignores ``SIGCHLD``: its time is added to no one's) that lived less than one
      reading (`SWEEP_SECONDS`). No worker can start one (`gate_processes`; where the gate is
      missing, `refuse_processes`, which tampering at import can switch off); the import's
      processes can, while the import and the start of the workers run, with no inputs; all
      are killed before the hand-over. Without ``/proc`` (not Linux) nothing of this exists: a
      process the submission detaches lives until the run ends. Processes of one run share a
      uid, so its workers can share work through files or signals: one function may use its
      classmates' (the same file's other functions') processor time, never more than all of
      the functions' limits together.
    """

    def __init__(self):
        self.me = os.getpid()
        self.table, self.children = {}, {}

    def read(self):
        """Read every process's parent, state and processor time; False without ``/proc``."""
        if _PROC["fd"] is None:
            return False
        try:
            names = os.listdir(_PROC["fd"])
        except OSError:
            return False
        table = {}
        for name in names:
            if not name.isdigit():
                continue
            raw = _read_proc(f"{name}/stat")
            try:
                fields = _stat_fields(raw)
                ticks = sum(_int(field) for field in fields[11:15])
                table[_int(name)] = (_int(fields[1]), fields[0], ticks)
            except (TypeError, IndexError, ValueError):
                continue
        children = {}
        for pid, (parent, _state, _ticks) in table.items():
            children.setdefault(parent, []).append(pid)
        self.table, self.children = table, children
        return True

    def below(self, pid):
        """``pid`` and every process below it (as last read)."""
        found, stack = set(), [pid]
        while stack:
            top = stack.pop()
            if top not in found:
                found.add(top)
                stack += self.children.get(top, [])
        return found

    def cpu_seconds(self, pids):
        """Processor seconds of ``pids`` with their threads and waited-for children."""
        return sum(self.table[pid][2] for pid in pids if pid in self.table) / _CLOCK_TICKS

    def live(self, pids):
        """The ``pids`` still listed, whatever their state: a thread-group leader whose main
        thread ended alone (``SYS_exit``) shows ``Z`` while its other threads run on (attack
        finding F1, session 5), and ``SIGKILL`` to a true zombie does nothing."""
        return [pid for pid in pids if pid in self.table]


class Watched:
    """A process the supervisor watches: its limits, when its clock started, and the processor
    time of the processes below it as last read (`_Tree`)."""

    def __init__(self, pid, cpu_limit, wall_limit, now):
        self.pid, self.cpu_limit, self.wall_limit, self.started = pid, cpu_limit, wall_limit, now
        self.tree_cpu = 0.0

    def cpu(self):
        """Processor seconds of the process (now) and of those below it (last reading)."""
        own = process_cpu_seconds(self.pid)
        return max(own or 0.0, self.tree_cpu) if own is not None or self.tree_cpu else None

    def exceeded(self, now):
        """The limit the process has run out of at ``now``: "wall" (its wall-clock cap), "cpu"
        (its processor time), or None."""
        if now - self.started > self.wall_limit:
            return "wall"
        cpu = self.cpu() if self.cpu_limit is not None else None
        return "cpu" if cpu is not None and cpu > self.cpu_limit else None

    def ran_out(self, exit_status, cpu):
        """Whether a process that ended with ``exit_status`` after ``cpu`` seconds of processor
        time was stopped by its processor-time limit (``RLIMIT_CPU``: SIGXCPU, then SIGKILL)."""
        if self.cpu_limit is None:
            return False
        if _SIGXCPU is not None and exit_status == -_SIGXCPU:
            return True
        return cpu is not None and cpu > self.cpu_limit


def _kill_group(pid):
    import signal

    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except OSError:
            pass


def become_subreaper():
    """Linux: orphans of the processes below this one (a double-forked daemon, and the workers
    themselves once the importer leaves) become this process's children instead of init's, so
    they stay in its tree and `kill_orphans` finds them (``prctl(PR_SET_CHILD_SUBREAPER)``).
    Returns whether it worked. The kernel does the same for the other levels (bubblewrap's PID
    namespace, level uid's kill of every process of the run's uid); at level process it is the
    only containment. See `_Tree`."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0
    except _BaseException:
        return False


def set_dumpable(dumpable):
    """``prctl(PR_SET_DUMPABLE)``: a process that is not dumpable cannot be read by another of
    its uid (``/proc/PID/mem``, ``/proc/PID/fd``, ``ptrace``). Returns what it was (Linux;
    else None)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
        was = prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE
        prctl(4, 1 if dumpable else 0, 0, 0, 0)
        return was == 1
    except _BaseException:
        return None


def kill_orphans(own_uid=False):
    """Kill every process left below the supervisor (with `become_subreaper`, detached
    daemons included), round after round until none is left (a killed process's children come
    to the supervisor in turn); reap them.

    With ``own_uid`` (the run has a uid of its own: levels bubblewrap and uid as root) first
    ``kill(-1, SIGKILL)``: every process of that uid but the supervisor, at once, wherever it
    hid. Never at level process, where the uid is the user's."""
    import signal

    for _round in range(100 if own_uid else 0):
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:  # ESRCH: no process left to signal
            break
        finally:
            _reap_ended()
    tree = _Tree()
    for _round in range(100):
        if not tree.read():  # no /proc (not Linux): the checker kills what is left
            return
        children = tree.children.get(tree.me, [])  # zombies too: a "Z" leader may have threads
        for pid in children:
            _kill_group(pid)
        _reap_ended()  # the dead children's own children are reparented to us
        if not children:
            return


def _reap_ended():
    """Reap every child that has ended, without waiting for the others."""
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


class _Announcements:
    """The importer's pipe, read without blocking: whole lines, at most `MAX_ANNOUNCED` bytes."""

    def __init__(self, fd):
        self.fd, self.buffer, self.received = fd, b"", 0
        os.set_blocking(fd, False)

    def wait(self, seconds, other=None):
        """Sleep up to ``seconds``, less if something arrives (here, or on the file descriptor
        ``other``)."""
        fds = [fd for fd in (self.fd, other) if fd is not None]
        try:
            _select(fds, [], [], seconds)
        except (OSError, ValueError):
            time.sleep(seconds)

    def lines(self):
        """Every complete line available now."""
        out = []
        while self.fd is not None:
            try:
                data = os.read(self.fd, 4096)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            self.received += _len(data)
            if not data or self.received > MAX_ANNOUNCED:
                os.close(self.fd)
                self.fd = None
                break
            self.buffer += data
            *complete, self.buffer = self.buffer.split(b"\n")
            out += complete
        return out


def supervise(job, finder, adapter, cpu_limits, dumpable=None):
    """Run the job: the importer, then its workers, all tasks at once; enforce every limit.
    Returns ``(directory, status)`` of every task, for `write_statuses`. The inputs
    (`receive_inputs`, in `_INPUTS`) reach the workers only through `hand_over`; ``dumpable``
    is what the supervisor was before it made itself not dumpable (the importer is set back
    to it)."""
    inputs = _INPUTS["value"]
    tasks = _list(job["tasks"])
    limits = job["limits"]
    directories = [_os_path_join(job["out"], task["name"]) for task in tasks]
    for directory in directories:
        os.mkdir(directory, 0o700)
    read_fd, write_fd = os.pipe()
    go = {index: os.pipe() for index, task in enumerate(tasks) if not task.get("gate")}
    gate_here, gate_there = socket.socketpair()  # the importer's filter's listener comes here
    importer_pid = os.fork()
    if importer_pid == 0:
        try:
            # Not even a reference to the inputs (whose memory is not here anyway) is left on
            # the importer's stack.
            _INPUTS["value"] = inputs = None
            os.close(read_fd)
            for _read, write in go.values():  # only the supervisor can hand the inputs over
                os.close(write)
            if _PROC["fd"] is not None:
                os.close(_PROC["fd"])
            gate_here.close()
            if dumpable:
                set_dumpable(True)
            os.setsid()
            keep_in_session()  # the last session of the run: the submission makes none
            gated = gate_processes(gate_there)  # the supervisor decides every new process
            become_subreaper()  # what the import starts stays below it (`_Tree`)
            go_reads = {i: r for i, (r, _w) in go.items()}
            importer(job, finder, adapter, write_fd, cpu_limits, go_reads, gated)
        except BaseException:
            traceback.print_exc()
        finally:
            _os_exit(70)
    os.close(write_fd)
    gate_there.close()
    gate = _Gate(gate_here)
    go_fds = {}
    for index, (read, write) in go.items():
        os.close(read)
        go_fds[index] = write
    pipe = _Announcements(read_fd)
    tree = _Tree()
    timeout = limits["timeout"]
    import_wall = timeout * (limits.get("wall_factor", 1.0) if cpu_limits else 1.0)
    begun = time.monotonic()
    watched = Watched(importer_pid, timeout if cpu_limits else None, import_wall, begun)
    phase = "import"  # the importer's: "import", "start" (forking the workers), None once gone
    stopped = exit_status = None  # the phase in which it was stopped; how it ended
    import_seconds = 0.0
    import_limit = import_cpu = None  # for an import stopped: which limit ran out, its time
    start_cpu = 0.0  # the importer's processor time when the import ended (the "start" phase's)
    running, started, reaped, statuses = {}, set(), {}, {}
    mine = {os.getpid(), importer_pid}
    handed = announced_all = False
    next_sweep = begun
    workers_to_start = _len(go)

    def finish(index, timed_out, status, seconds, limit=None, cpu=None):
        statuses[index] = {
            "timed_out": timed_out,
            "exit_status": None if timed_out else status,
            "run_seconds": seconds,
            # Which limit ran out ("cpu": processor time, "wall": the wall-clock cap) and the
            # processor seconds the process had used: a timeout message names the right one.
            "limit": limit,
            "cpu_seconds": cpu,
        }

    def sweep(workers_alone=False):
        """Read the run's processes: count each worker's tree (and the import's) against its
        limit and kill every stray (`_Tree`); with ``workers_alone`` (the hand-over) whatever
        a worker started before its filter (`refuse_processes`: a fork hook) is a stray too.
        Returns the strays found alive, or None without ``/proc``."""
        if not tree.read():
            return None
        allowed = {tree.me}
        if phase is not None:  # the import, and the workers it is starting
            below = tree.below(importer_pid)
            allowed |= below
            if phase == "import":
                watched.tree_cpu = max(watched.tree_cpu, tree.cpu_seconds(below))
        for pid, (_index, entry) in running.items():
            below = tree.below(pid)
            allowed |= {pid} if workers_alone else below
            entry.tree_cpu = max(entry.tree_cpu, tree.cpu_seconds(below))
        strays = tree.live(tree.below(tree.me) - allowed)
        for pid in strays:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        return strays

    def end(pid, status, cpu, now):
        nonlocal next_sweep
        index, entry = running.pop(pid)
        _kill_group(pid)  # whatever it left behind in its group
        cpu = max(cpu, entry.tree_cpu)
        # ... and below it, wherever it went: adopted by the supervisor, now strays, which the
        # tick's one sweep kills.
        next_sweep = now
        timed_out = "run" if entry.ran_out(status, cpu) else None
        finish(index, timed_out, status, now - entry.started, timed_out and "cpu", cpu)

    def announced(line, now):
        nonlocal phase, watched, import_seconds, announced_all, start_cpu
        if line == b"I" and phase == "import":
            # Forking the workers takes milliseconds: one more --timeout of wall-clock time
            # and of processor time (a fork hook of the submission's runs here) covers it.
            phase, import_seconds = "start", now - begun
            start_cpu = process_cpu_seconds(importer_pid) or 0.0
            cpu_limit = start_cpu + timeout if cpu_limits else None
            watched = Watched(importer_pid, cpu_limit, timeout, now)
            return
        if line == b"E" and phase == "start":
            announced_all = True
            return
        words = line.split(b" ")
        if _len(words) != 3 or words[0] != b"S" or phase == "import":
            return
        if not (words[1].isdigit() and words[2].isdigit() and _len(line) < 40):
            return
        index, pid = _int(words[1]), _int(words[2])
        if index >= _len(tasks) or tasks[index].get("gate") or index in started:
            return
        if pid <= 1 or pid in mine or pid in running:
            return
        started.add(index)
        cpu, wall = task_limits(tasks[index], limits, cpu_limits)
        running[pid] = (index, Watched(pid, cpu, wall, now))
        if pid in reaped:  # it ended before its announcement was read
            end(pid, *reaped.pop(pid), now)

    def may_start_process(pid):
        """The gate's rule (`gate_processes`): any process during the import; then the
        importer itself, once per worker, while it starts them; nothing else, ever."""
        nonlocal workers_to_start
        if phase == "import":
            return True
        if phase == "start" and pid == importer_pid and workers_to_start > 0:
            workers_to_start -= 1
            return True
        return False

    def give_inputs(now):
        """Once the import is over and all it started is gone: the inputs, to the workers."""
        nonlocal handed
        handed = True
        killed = set()
        for _round in range(100):  # until no process but the workers is left alive
            strays = sweep(workers_alone=True)
            if strays is None:  # no /proc (not Linux): nothing can be listed
                break
            if not set(strays) - killed:  # killed ones run no more code: none left
                break
            killed.update(strays)
            time.sleep(0.001)
        if tree.table:  # an announced pid must be a process of this run
            ours = tree.below(tree.me)
            for pid, (index, _entry) in _list(running.items()):
                if pid not in ours:
                    running.pop(pid)
                    finish(index, None, None, 0.0)
        hand_over(inputs, job["work"], go_fds, {index for index, _ in running.values()})
        for _index, entry in running.values():  # their wall clock starts with their inputs
            entry.started = now

    while phase is not None or running or not handed:
        pipe.wait(TICK, gate.fd)
        now = time.monotonic()
        for line in pipe.lines():
            announced(line, now)
        gate.answer(may_start_process)  # after the announcements: "I" ends the import
        while True:  # reap: the importer, the workers once it has left, and orphans
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            code = os.waitstatus_to_exitcode(status)
            cpu = usage.ru_utime + usage.ru_stime
            if pid == importer_pid:
                _kill_group(pid)  # what the import left in its group
                for line in pipe.lines():  # everything it announced before leaving
                    announced(line, now)
                if phase == "import":
                    import_seconds = now - begun
                    if stopped is None and watched.ran_out(code, max(cpu, watched.tree_cpu)):
                        stopped, import_limit = "import", "cpu"
                        import_cpu = max(cpu, watched.tree_cpu)
                exit_status, phase = code, None
            elif pid in running:
                end(pid, code, cpu, now)
            elif _len(reaped) < MAX_REAPED:
                reaped[pid] = (code, cpu)
        if not handed and (phase is None or (announced_all and not cpu_limits)):
            give_inputs(time.monotonic())
            continue
        if now >= next_sweep:
            cost = time.monotonic()
            sweep()
            cost = time.monotonic() - cost
            next_sweep = now + max(SWEEP_SECONDS, 20 * cost)
        over = watched.exceeded(now) if phase is not None and stopped is None else None
        if over is not None:
            stopped = "import" if phase == "import" else "run"
            import_cpu, import_limit = watched.cpu(), over
            if phase == "start":  # starting the workers: named apart (its cap is one timeout)
                import_limit = "start" if over == "wall" else "start-cpu"
                import_cpu = max(0.0, (import_cpu or 0.0) - start_cpu)
            _kill_group(importer_pid)
        for pid, (index, entry) in _list(running.items()):
            limit = entry.exceeded(now)
            if limit is not None:
                cpu = entry.cpu()
                _kill_group(pid)
                running.pop(pid)
                next_sweep = now  # what it started: strays for the next tick's sweep
                finish(index, "run", None, now - entry.started, limit, cpu)
                continue
            try:  # reaped by someone else (a thread of the import): gone, status unknown
                os.kill(pid, 0)
            except ProcessLookupError:
                running.pop(pid)
                finish(index, None, None, now - entry.started)
            except OSError:
                pass
    # A stop while the workers were being started ("run") names its limit too: a wall-clock
    # one with processor time to spare is a busy machine's (attack finding F3, session 5).
    why = (import_limit, import_cpu) if stopped in ("import", "run") else (None, None)
    for index, task in enumerate(tasks):
        if task.get("gate"):
            timed_out = stopped if stopped == "import" else None
            finish(index, timed_out, exit_status, import_seconds, *why)
        elif index not in statuses:  # never started: the import failed, or was stopped
            finish(index, stopped, exit_status, 0.0, *why)
    gate.close()  # what still waits for an answer gets ENOSYS
    return [(directory, statuses[index]) for index, directory in enumerate(directories)]


def write_statuses(statuses):
    """Each task's ``status.json``: written once no process of the submission is left (after
    `kill_orphans`), so none can rewrite them."""
    for directory, status in statuses:
        try:
            write_atomically(_os_path_join(directory, "status.json"), _json_dumps(status))
        except OSError:
            pass


def unpack_arrays(data, np):
    """The arrays the checker packed (``sandbox.pack_arrays``), in their original memory layout,
    each writable and in its own buffer (a submission that modifies its input in place is caught
    by the checker, and cannot reach another case's arrays)."""
    raw = data["data"].tobytes()
    layout = data["layout"].tolist()  # one row per array
    arrays = {}
    for name, dtype, row in zip(
        data["names"].tolist(), data["dtypes"].tolist(), layout, strict=True
    ):
        offset, nbytes, start, ndim = row[:4]
        shape, strides = row[4 : 4 + ndim], row[4 + ndim : 4 + 2 * ndim]
        buffer = bytearray(raw[offset : offset + nbytes])
        arrays[name] = np.ndarray(shape, np.dtype(dtype), buffer, start, strides)
    return arrays


# --------------------------------------------------------------------------------------------
# The inputs: from the checker to the supervisor, and only after the import to the workers
# --------------------------------------------------------------------------------------------


class Inputs:
    """The ``.npz`` files the checker sent (`receive_inputs`), held by the supervisor in memory
    that no process it forks inherits (``madvise(MADV_DONTFORK)``, Linux)."""

    def __init__(self, memory, view, table):
        self.memory, self.view, self.table = memory, view, table


def receive_inputs(fd):
    """Read the checker's inputs from ``fd`` (the supervisor's standard input): an 8-byte
    little-endian header length, a JSON header ``[[file name, bytes], ...]``, then the files'
    bytes one after the other, read straight into memory marked ``MADV_DONTFORK``, so the
    importer, forked next, has none of it; the pipe is then empty. See
    ``sandbox.frame_inputs``, which writes it."""
    import mmap

    def exactly(n):
        data = b""
        while _len(data) < n:
            chunk = os.read(fd, n - _len(data))
            if not chunk:
                raise EOFError("the checker's inputs ended early")
            data += chunk
        return data

    (size,) = struct.unpack("<Q", exactly(8))
    if size > MAX_INPUT_HEADER:
        raise ValueError("the inputs' header is too large")
    table, offset = {}, 0
    for name, nbytes in json.loads(exactly(size)):
        if not _isinstance(name, _str) or "/" in name or name.startswith("."):
            raise ValueError(f"bad input file name {name!r}")
        table[name] = (offset, _int(nbytes))
        offset += _int(nbytes)
    memory = mmap.mmap(-1, max(offset, 1))
    if hasattr(mmap, "MADV_DONTFORK"):
        memory.madvise(mmap.MADV_DONTFORK)
    view = memoryview(memory)
    done = 0
    while done < offset:
        n = os.readv(fd, [view[done:offset]])
        if n == 0:
            raise EOFError("the checker's inputs ended early")
        done += n
    os.close(fd)
    return Inputs(memory, view, table)


def hand_over(inputs, work, go_fds, started):
    """Give the workers in ``started`` (task indexes) their inputs: write the files into a new
    folder of the run's work directory, then send its path on each started task's pipe of
    ``go_fds`` and close every one (`await_inputs` waits for that). Called once the importer
    has left and every other process of the run is gone."""
    message = b""
    if started:
        directory = _os_path_join(work, "inputs-" + os.urandom(12).hex())
        try:
            os.mkdir(directory, 0o700)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            for name, (offset, nbytes) in inputs.table.items():
                fd = os.open(_os_path_join(directory, name), flags, 0o400)
                try:
                    done = 0
                    while done < nbytes:
                        done += os.write(fd, inputs.view[offset + done : offset + nbytes])
                finally:
                    os.close(fd)
            message = (directory + "\n").encode()
        except OSError:  # a full disk, the run's file-size limit: the workers get nothing
            message = b""
    for index, fd in go_fds.items():
        try:
            if message and index in started:
                os.write(fd, message)
        except OSError:
            pass
        finally:
            os.close(fd)


def warm_up_loading(np):
    """Read an ``.npz`` once (from memory): what `await_inputs` needs (``zipfile``...) is then
    imported before any ``chroot`` (level uid), after which no module file can be found."""
    import io

    buffer = io.BytesIO()
    np.savez(buffer, a=np.zeros(1))
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as data:
        data["a"]


def await_inputs(fd, files, np):
    """In a worker: wait until the supervisor hands the inputs over (`hand_over`), then load
    ``files`` from the folder it names (``allow_pickle=False``): file -> name -> array. None if
    the pipe closed without a folder (the run was stopped first)."""
    data = b""
    while _len(data) < 4096:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return None
        if not chunk:
            break
        data += chunk
    try:
        os.close(fd)
    except OSError:
        pass
    directory = data.decode("utf-8", "replace").strip()
    if not directory:
        return None
    loaded = {}
    for file in files:
        with np.load(_os_path_join(directory, file), allow_pickle=False) as arrays:
            loaded[file] = unpack_arrays(arrays, np)
    return loaded


#: Loaded before a ``chroot`` (level uid), after which no module file can be found: what
#: course files commonly import besides what the submission names.
PRELOAD = (
    "__future__",
    "abc",
    "collections",
    "collections.abc",
    "contextlib",
    "copy",
    "dataclasses",
    "enum",
    "functools",
    "itertools",
    "math",
    "numbers",
    "operator",
    "random",
    "re",
    "statistics",
    "string",
    "types",
    "typing",
    "warnings",
    "numpy.fft",
    "numpy.lib.stride_tricks",
    "numpy.linalg",
    "numpy.random",
)
#: Never imported on the submission's behalf, as root before the ``chroot`` (level uid): standard
#: library packages whose import does something (a web browser, a poem, ``idlelib.config``
#: creates ``~/.idlerc``, ``lib2to3`` may write grammar pickles, GUI toolkits, the regression
#: tests, installers), and any ``__main__`` module (``unittest.__main__``, ``venv.__main__``
#: run a program). The submission may still import them itself, after the chroot, as its uid.
NEVER_PRELOADED = frozenset(
    {
        "__main__",
        "antigravity",
        "ensurepip",
        "idlelib",
        "lib2to3",
        "pydoc",
        "test",
        "this",
        "tkinter",
        "turtle",
        "turtledemo",
        "venv",
        "webbrowser",
    }
)
#: At most this many of the student's files are scanned for imports, each up to this size.
SCAN_FILES, SCAN_BYTES = 200, 2 * 2**20


def _named_imports(folder, own_modules, read_files):
    """Modules named by the import statements of the files ``read_files`` (paths relative to
    ``folder``, the student's copy, read before any of it runs: the files the import rule reads,
    never one it set aside), and their source encodings' codecs."""
    import ast
    import codecs
    import io
    import tokenize

    names = set()
    files = [_os_path_join(folder, *path.split("/")) for path in read_files]
    for path in files[:SCAN_FILES]:
        try:
            with _open(path, "rb") as handle:
                source = handle.read(SCAN_BYTES)
            encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
            codecs.lookup(encoding)  # imports the codec's module
            tree = ast.parse(source)
        except _BaseException:  # not Python, too deep...: its import fails later, in the open
            continue
        for node in ast.walk(tree):
            if _isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif _isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.partition(".")[0] not in own_modules}


def preload(job):
    """Import, before the ``chroot``, what the submission may import (allowed modules only)."""
    import importlib

    folder = job["chroot"] + job["submission_dir"]
    own = {SUBMISSION_MODULE, *job.get("student_modules", [])}
    allowed = frozenset(job["allowed"])
    read_files = job.get("read_files") or []
    for name in _sorted(set(PRELOAD) | _named_imports(folder, own, read_files)):
        parts = name.split(".")
        if parts[0] in allowed and parts[0] not in NEVER_PRELOADED and "__main__" not in parts:
            try:
                importlib.import_module(name)
            except _BaseException:  # "from numpy import pi" names no module: fine
                pass


#: Linux system call numbers of the calls the seccomp filters name, by machine, with the kernel's
#: audit architecture (ARM64 has no ``fork`` nor ``vfork``).
_SYSCALLS = {
    "x86_64": {
        "audit_arch": 0xC000003E,
        "socket": 41,
        "prctl": 157,
        "setsid": 112,
        "clone": 56,
        "fork": 57,
        "vfork": 58,
        "io_uring_setup": 425,
        "clone3": 435,
        "open_tree": 428,
        "move_mount": 429,
        "fsopen": 430,
        "fsconfig": 431,
        "fsmount": 432,
        "fspick": 433,
        "mount_setattr": 442,
        "seccomp": 317,
        "unshare": 272,
        "mount": 165,
        "umount2": 166,
        "pivot_root": 155,
        "setns": 308,
        "add_key": 248,
        "request_key": 249,
        "keyctl": 250,
        "shmget": 29,
        "shmat": 30,
        "shmctl": 31,
        "semget": 64,
        "semop": 65,
        "semctl": 66,
        "shmdt": 67,
        "msgget": 68,
        "msgsnd": 69,
        "msgrcv": 70,
        "msgctl": 71,
        "semtimedop": 220,
    },
    "aarch64": {
        "audit_arch": 0xC00000B7,
        "socket": 198,
        "prctl": 167,
        "setsid": 157,
        "clone": 220,
        "io_uring_setup": 425,
        "clone3": 435,
        "open_tree": 428,
        "move_mount": 429,
        "fsopen": 430,
        "fsconfig": 431,
        "fsmount": 432,
        "fspick": 433,
        "mount_setattr": 442,
        "seccomp": 277,
        "unshare": 97,
        "mount": 40,
        "umount2": 39,
        "pivot_root": 41,
        "setns": 268,
        "add_key": 217,
        "request_key": 218,
        "keyctl": 219,
        "msgget": 186,
        "msgctl": 187,
        "msgrcv": 188,
        "msgsnd": 189,
        "semget": 190,
        "semctl": 191,
        "semtimedop": 192,
        "semop": 193,
        "shmget": 194,
        "shmctl": 195,
        "shmat": 196,
        "shmdt": 197,
    },
}
#: System V IPC: shared memory, message queues, semaphore sets (`deny_network`).
_SYSV_IPC = ("shmget", "shmat", "shmctl", "shmdt", "msgget", "msgsnd", "msgrcv", "msgctl")
_SYSV_IPC += ("semget", "semop", "semtimedop", "semctl")
#: The kernel's key management, and namespaces and mounts (`deny_network`).
_KEYS = ("add_key", "request_key", "keyctl")
_NAMESPACES = ("unshare", "setns", "mount", "umount2", "pivot_root", "open_tree", "move_mount")
_NAMESPACES += ("fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr")
# Classic BPF as seccomp runs it: instructions, the offsets in ``struct seccomp_data`` and the
# filter's answers.
_BPF_LOAD, _BPF_JEQ, _BPF_JGE, _BPF_JSET, _BPF_RET = 0x20, 0x15, 0x35, 0x45, 0x06
_DATA_NR, _DATA_ARCH, _DATA_ARGS = 0, 4, 16  # args[i]'s low half at 16 + 8 i (little-endian)
_SECCOMP_ALLOW, _SECCOMP_ERRNO, _SECCOMP_USER_NOTIF = 0x7FFF0000, 0x00050000, 0x7FC00000
#: A rule's answer (`_filter_program`): ask the filter's listener (`gate_processes`).
_ASK = "ask"
_X32_SYSCALL_BIT = 0x40000000
_ENOSYS, _EACCES, _EPERM = 38, 13, 1  # the same numbers on x86-64 and ARM64
_AF_UNIX, _CLONE_THREAD = 1, 0x00010000
#: ``clone``'s flags that make new namespaces (mount, cgroup, UTS, IPC, user, PID, network).
_CLONE_NEW_NAMESPACES = 0x7E020000
#: ``prctl`` option that sets or clears the subreaper flag (`become_subreaper`).
_PR_SET_CHILD_SUBREAPER = 36


def deny_network():
    """Refuse every socket but a Unix one, for this process and all it forks: a seccomp filter
    (Linux x86-64 and ARM64) makes ``socket()`` fail with EACCES for every family but
    ``AF_UNIX``, and ``io_uring_setup`` (io_uring can open sockets without ``socket``) with
    ENOSYS. Irrevocable. Returns whether it is in place: at level uid (no network namespace) it
    is what keeps the submission off the network; inside bubblewrap it repeats what the empty
    network namespace gives.

    The same filter refuses (EPERM) ``prctl(PR_SET_CHILD_SUBREAPER, 0)``: a worker cannot turn
    off the flag that keeps whatever it starts below it (`_Tree`); and, all with EPERM, what
    could hold memory or data outside the run's budgets or outlive it, none of which a layer
    needs: every System V IPC call (shared memory, message queues, semaphores: a segment's pages
    belong to no process, and without an IPC namespace, levels uid and process, outlive the run;
    attack finding F2, session 6), the kernel's key management (a key in the uid's keyring
    outlived the run and was readable by later runs: F7), new namespaces and mounts
    (``unshare``, ``setns``, ``clone`` with a namespace flag, ``mount`` and the calls of the new
    mount API; ``clone3``, whose flags a filter cannot read, fails with ENOSYS and the C library
    falls back to ``clone``): root in a user namespace of its own, a submission mounted a tmpfs
    no budget saw (F9)."""
    return _install_filter(
        [
            ("socket", [(0, "is not", _AF_UNIX)], _EACCES),
            ("io_uring_setup", [], _ENOSYS),
            ("prctl", [(0, "is", _PR_SET_CHILD_SUBREAPER), (1, "is", 0)], _EPERM),
            *[(call, [], _EPERM) for call in _SYSV_IPC + _KEYS + _NAMESPACES],
            ("clone", [(0, "has", _CLONE_NEW_NAMESPACES)], _EPERM),
            ("clone3", [], _ENOSYS),
        ]
    )


def keep_in_session():
    """Make ``setsid`` succeed without doing anything, for this process and all it forks (a
    seccomp filter returning 0 for it, Linux x86-64 and ARM64; irrevocable): every process of
    the submission stays in the importer's session. Linux's autogroup scheduling shares the
    processors between sessions, not processes, so a submission making dozens of sessions
    would take nearly all of them from the classmates graded beside it (attack finding F1);
    kept in one, it gets one session's share. Returns whether it is in place. Installed by the
    importer after its own ``setsid``."""
    return _install_filter([("setsid", [], 0)])  # not run, returns 0: "success"


#: ``on``: `refuse_processes` is in place in this process (an error it caused is explained);
#: ``workers``: the importer is forking the workers (`_refuse_processes_in_worker`).
_NO_PROCESSES = {"on": False, "workers": False}
#: What a function that tried to start a process is told (`describe_exception`).
NO_PROCESS_NOTE = (
    "; a graded function may not start processes (fork, subprocess, multiprocessing are "
    "refused; threads are allowed)"
)


def refuse_processes():
    """Refuse every new process, for this process and all its threads (a seccomp filter,
    Linux x86-64 and ARM64; irrevocable): ``fork``, ``vfork`` and ``clone`` without
    ``CLONE_THREAD`` fail with EPERM, ``clone3`` (whose flags a filter cannot read) with ENOSYS,
    on which the C library falls back to ``clone``: threads (NumPy's, OpenBLAS's, the
    submission's) are still made.

    Why (attack finding F2, session 5): a process whose parent ignores ``SIGCHLD`` (or sets
    ``SA_NOCLDWAIT``) is released by the kernel when it exits, and its processor time is added
    to no one's ``cutime``; one that lives less than a reading of `_Tree` is never seen. Such
    children's work counted against no limit. A layer function has no business starting
    processes. The fallback of `gate_processes` (a kernel before Linux 5.5): installed in each
    worker by the importer's first fork hook, before any fork hook of the submission's, but by
    Python code of the process the import ran in, which the import can change (attack finding
    F1, session 6). Returns whether the filter is in place."""
    _NO_PROCESSES["on"] = _install_filter(_process_rules(_EPERM))
    return _NO_PROCESSES["on"]


def _process_rules(answer):
    """Seccomp rules (`_filter_program`) giving ``answer`` to every call that starts a process:
    ``fork``, ``vfork``, ``clone`` without ``CLONE_THREAD``; ``clone3``, whose flags a filter
    cannot read, fails with ENOSYS, on which the C library falls back to ``clone``."""
    return [
        ("clone", [(0, "lacks", _CLONE_THREAD)], answer),
        ("clone3", [], _ENOSYS),
        ("fork", [], answer),
        ("vfork", [], answer),
    ]


def _refuse_processes_in_worker():
    """The importer's first fork hook: `refuse_processes` in a worker, before any fork hook of
    the submission's runs there. The import's own children (forked before the workers) may
    still start processes: what the import started is killed before the hand-over."""
    if _NO_PROCESSES["workers"]:
        refuse_processes()


def _filter_program(numbers, rules):
    """The seccomp BPF program (``(code, jt, jf, k)`` tuples) of ``rules`` for a machine's
    system call ``numbers`` (a `_SYSCALLS` entry).

    Each rule is ``(system call, conditions, errno)``: the call fails with ``errno`` (0: it
    "succeeds" without running; `_ASK`: the filter's listener decides, `gate_processes`) when
    every condition ``(argument index, test, value)`` holds, ``test`` being "is", "is not",
    "has" (any of ``value``'s bits set) or "lacks" (none of them); a rule naming a call the
    machine lacks is left out. Before the rules, a call of another ABI (32-bit, x32) fails with
    ENOSYS; after them, everything else is allowed."""
    program = [
        (_BPF_LOAD, 0, 0, _DATA_ARCH),
        (_BPF_JEQ, 1, 0, numbers["audit_arch"]),
        (_BPF_RET, 0, 0, _SECCOMP_ERRNO | _ENOSYS),
        (_BPF_LOAD, 0, 0, _DATA_NR),
        (_BPF_JGE, 0, 1, _X32_SYSCALL_BIT),  # the x32 ABI's numbers (x86-64)
        (_BPF_RET, 0, 0, _SECCOMP_ERRNO | _ENOSYS),
    ]
    for call, conditions, errno in rules:
        if call not in numbers:
            continue
        # Past the test of the number: two instructions per condition, then the answer.
        left = 2 * _len(conditions) + 1
        program += [(_BPF_LOAD, 0, 0, _DATA_NR), (_BPF_JEQ, 0, left, numbers[call])]
        for index, test, value in conditions:
            left -= 2  # instructions after this condition's jump: where "does not hold" goes
            jump = _BPF_JSET if test in ("has", "lacks") else _BPF_JEQ
            holds, fails = (0, left) if test in ("is", "has") else (left, 0)
            program += [(_BPF_LOAD, 0, 0, _DATA_ARGS + 8 * index), (jump, holds, fails, value)]
        answer = _SECCOMP_USER_NOTIF if errno == _ASK else _SECCOMP_ERRNO | errno
        program.append((_BPF_RET, 0, 0, answer))
    program.append((_BPF_RET, 0, 0, _SECCOMP_ALLOW))
    return program


def _install_filter(rules, listener=False):
    """Install the seccomp filter of ``rules`` (`_filter_program`) for this process and its
    future children (Linux x86-64 and ARM64); whether it worked. With ``listener`` the
    filter's `_ASK` answers go to a new listener: its file descriptor, or None."""
    failed = None if listener else False
    numbers = _SYSCALLS.get(os.uname().machine) if hasattr(os, "uname") else None
    if numbers is None or not sys.platform.startswith("linux"):
        return failed
    try:  # loaded before the chroot (level uid), by `main`
        import ctypes
    except ImportError:
        return failed
    program = _filter_program(numbers, rules)
    raw = ctypes.create_string_buffer(b"".join(struct.pack("=HBBI", *op) for op in program))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(_len(program), ctypes.addressof(raw))
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        ulong = ctypes.c_ulong
        if libc.prctl(38, ulong(1), ulong(0), ulong(0), ulong(0)) != 0:  # PR_SET_NO_NEW_PRIVS
            return failed
        if listener:  # seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, ...)
            fd = libc.syscall(
                ctypes.c_long(numbers["seccomp"]), ulong(1), ulong(8), ctypes.byref(fprog)
            )
            return fd if fd >= 0 else None
        # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        return libc.prctl(22, ulong(2), ctypes.byref(fprog), ulong(0), ulong(0)) == 0
    except _BaseException:
        return failed


def _listener_answers_go_on():
    """Whether the kernel lets a filter's listener answer "go on" (Linux 5.5 and later:
    ``SECCOMP_USER_NOTIF_FLAG_CONTINUE``), which `gate_processes` needs."""
    try:
        version = _tuple(_int(part) for part in os.uname().release.split(".")[:2])
    except (AttributeError, ValueError):
        return False
    return sys.platform.startswith("linux") and version >= (5, 5)


def gate_processes(channel):
    """In the importer, before any code of the submission's: every new process of this process
    and all it forks (``fork``, ``vfork``, ``clone`` without ``CLONE_THREAD``; threads are
    made freely) waits for the supervisor's answer, which is given from outside the processes
    the submission controls (`_Gate`): the import's processes may start processes, the importer
    may start one worker per task once the import is over, and nothing else may (EPERM), a
    worker and what a worker started included. A seccomp filter whose requests go to a listener
    (``SECCOMP_RET_USER_NOTIF``, Linux 5.5 and later, x86-64 and ARM64); the listener is sent to
    the supervisor on ``channel`` (a Unix socket) and closed here, before the import, so no code
    of the submission's can hold it, and no code of the submission's can remove the filter.

    Why (attack finding F1, session 6): the workers' own filter (`refuse_processes`) was
    installed by Python code of the importer after the import had run in it; one line of the
    import replaced that code, and a function's work in children the kernel releases uncounted
    came back (attack finding F2, session 5). Returns whether the gate is in place; where it
    cannot be (an older kernel), each worker refuses new processes itself, through a fork hook
    (`refuse_processes`), which tampering can switch off."""
    listener = (
        _install_filter(_process_rules(_ASK), listener=True) if _listener_answers_go_on() else None
    )
    try:
        if listener is None:
            channel.send(b"-")
        else:
            socket.send_fds(channel, [b"+"], [listener])
    except OSError:
        pass
    finally:
        if listener is not None:
            os.close(listener)
        channel.close()
    return listener is not None


class _Gate:
    """The supervisor's side of `gate_processes`: the filter's listener, and its answers."""

    RECEIVE, SEND = 0xC0502100, 0xC0182101  # SECCOMP_IOCTL_NOTIF_RECV, _SEND (80, 24 bytes)

    def __init__(self, channel):
        self.fd = None
        try:
            _message, fds, _flags, _address = socket.recv_fds(channel, 1, 1)
        except OSError:
            fds = []
        finally:
            channel.close()
        if fds:
            import ctypes

            self.fd, self.ctypes = fds[0], ctypes
            self.ioctl = ctypes.CDLL(None, use_errno=True).ioctl
            self.poller = select.poll()
            self.poller.register(self.fd, select.POLLIN)

    def answer(self, allow):
        """Answer every request waiting: ``allow(pid)`` says whether the process (or thread)
        ``pid`` may start a process; if not, its call fails with EPERM."""
        for _request in range(64):
            events = self.poller.poll(0) if self.fd is not None else []
            if not events:
                return
            if not events[0][1] & select.POLLIN:  # no process is left under the filter
                self.close()
                return
            ctypes = self.ctypes
            request = ctypes.create_string_buffer(80)  # struct seccomp_notif
            if self.ioctl(self.fd, ctypes.c_ulong(self.RECEIVE), request) != 0:
                continue  # the process was killed while it waited: no answer is due
            number, pid = struct.unpack_from("=QI", request.raw)
            go_on = allow(pid)
            # struct seccomp_notif_resp: id, val, error, flags (SECCOMP_USER_NOTIF_FLAG_CONTINUE)
            answer = struct.pack("=QqiI", number, 0, 0 if go_on else -_EPERM, 1 if go_on else 0)
            self.ioctl(self.fd, ctypes.c_ulong(self.SEND), ctypes.create_string_buffer(answer, 24))

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def network_refused():
    """Whether opening an Internet socket fails here (after `deny_network`)."""
    import socket

    try:
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()
    except OSError:
        return True
    return False


def enter_root(directory):
    """``chroot`` into the run's private directory (as root, before dropping privileges)."""
    os.chroot(directory)
    os.chdir("/")


def main(job_path):
    with _open(job_path) as handle:
        job = json.load(handle)
    for path in reversed(job.get("site", [])):
        sys.path.insert(0, path)
    # Loaded before dropping privileges (the runtime may sit in a directory only its owner can
    # enter) and inherited by every worker.
    import ctypes
    import errno
    import importlib.machinery
    import importlib.util
    import resource
    import signal

    import numpy

    del ctypes, errno, importlib, signal, resource  # loaded, not used here

    if job.get("submission_dir"):  # a multi-file submission: the student's folder and modules
        _STUDENT["folder"] = job["submission_dir"]
        _STUDENT["modules"] = frozenset([SUBMISSION_MODULE, *job.get("student_modules", [])])
    # A course API (--api): the checker's adapter, loaded before the submission runs.
    api = job.get("api") or "tinycnn"
    adapter = load_adapter(job["adapter"]) if api != "tinycnn" else None
    cpu_limits = become_subreaper()
    # The inputs: read now, into memory the importer will not inherit (`receive_inputs`).
    _INPUTS["value"] = receive_inputs(0)
    warm_up_loading(numpy)
    try:  # before any chroot: level uid's root has no /proc (`_Tree`)
        _PROC["fd"] = os.open("/proc", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        _PROC["fd"] = None
    if job.get("chroot"):  # level uid: the run's directory becomes the root of its file system
        preload(job)
        enter_root(job["chroot"])
    drop_privileges(job.get("uid"), job.get("gid"))
    apply_limits(job["limits"])
    # No process of the submission (its uid) may read the supervisor's memory: the inputs.
    dumpable = set_dumpable(False)
    deny_network()

    trusted = [os.path.dirname(numpy.__file__) + os.sep, os.path.dirname(os.__file__) + os.sep]
    finder = DenyFinder(job["allowed"], job["submission"], trusted)
    sys.meta_path.insert(0, finder)
    statuses = supervise(job, finder, adapter, cpu_limits, dumpable)
    kill_orphans(own_uid=job.get("uid") is not None and os.getuid() == job.get("uid"))
    write_statuses(statuses)
    write_atomically(_os_path_join(job["out"], "supervisor.json"), _json_dumps({"done": True}))
    _os_exit(0)


if __name__ == "__main__":
    if sys.argv[1] == "--deny-network":  # the checker asks whether `deny_network` works here
        _os_exit(0 if deny_network() and network_refused() else 1)
    main(sys.argv[1])
