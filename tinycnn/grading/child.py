"""The child-process side of ``tinycnn check``: run a submission, write its raw results to files.

This file is run as a script (``python -I -B child.py JOB.json``) by :mod:`tinycnn.grading.sandbox`
and is never imported by the checker. It imports the standard library, NumPy and the NumPy-only
project code that builds the inputs (``tinycnn.parity_tests.cases``/``harness``, or ``reference``
for the training run), never the checker's comparison or report code; the checker, in turn, never
imports the submission.

What the child does, in order:

1. apply the resource limits (address space, CPU time) from the job;
2. import NumPy and the project code it needs (the case catalogue and the parity harness, or the
   reference model), and build every input array, *before* the submission runs;
3. capture every builtin and library function it needs, so a submission that replaces ``open``,
   ``isinstance`` or ``numpy.save`` cannot change what is written;
4. import the submission under an import guard (the policy) and write ``import.json``;
5. ``probe`` mode stops there; ``function`` mode calls one contract function on every case and
   writes one result file per call; ``train`` mode trains TinyCNN with the submission's ops.

Results are JSON (metadata) plus raw bytes (array data), written atomically (temporary file, then
rename) so the parent only ever sees complete files. Nothing is written to stdout: whatever the
submission prints goes to the parent's ``/dev/null``. No comparison happens here; the parent
checks every array against the reference itself.

Record format of one value (``encode``):

- ``{"kind": "array", "dtype": "<f8", "shape": [2, 3], "offset": 0, "nbytes": 48,
  "container": "ndarray"|"numpy scalar"|"python float"|"python int"}``, the bytes in the ``.bin``
  file at ``offset``;
- ``{"kind": "tuple", "type": "tuple"|"list", "items": [record, ...]}``;
- ``{"kind": "other", "type": "NoneType"}`` for anything else (the parent reports the type).
"""

import builtins
import json
import os
import struct
import sys
import time
import traceback

# -- what the harness uses after the submission has run: captured before it runs ---------------
_open = builtins.open
_isinstance = builtins.isinstance
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
_id = builtins.id
_real_import = builtins.__import__
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

SUBMISSION_MODULE = "submission"
#: The student's own modules (the entry as ``submission``, helpers by their names) and the folder
#: they were written to; set by `main` from the job. Imports made by these modules are guarded,
#: and exceptions are located in these files.
_STUDENT = {"modules": frozenset([SUBMISSION_MODULE]), "folder": None}
#: Modules whose namespaces a submission must leave alone (checked after import and after calls).
GUARDED_MODULE_PREFIXES = ("numpy", "builtins")


def is_public_guarded(module_name):
    """``numpy``, ``numpy.linalg``, ``builtins``... not private modules with internal caches."""
    parts = module_name.split(".")
    return parts[0] in GUARDED_MODULE_PREFIXES and not any(p.startswith("_") for p in parts)


def apply_limits(memory_bytes, cpu_seconds, file_bytes=None):
    """Cap the address space (so a huge allocation raises MemoryError), the CPU time and the
    size of any file written (results are small; a disk-filling submission is stopped)."""
    try:
        import resource
    except ImportError:  # not a POSIX system: run without limits
        return
    try:
        if memory_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        if cpu_seconds:
            # A backstop for an orphaned child: the parent normally kills it much earlier.
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
        if file_bytes:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    except (ValueError, OSError):  # e.g. macOS refuses RLIMIT_AS: the time limits still hold
        pass


def write_atomically(path, data, binary=False):
    tmp = path + ".tmp"
    with _open(tmp, "wb" if binary else "w") as handle:
        handle.write(data)
    _os_replace(tmp, path)


class Writer:
    """Collects records and their array bytes; ``save`` writes ``NAME.bin`` then ``NAME.json``."""

    def __init__(self, directory):
        self.directory = directory

    def save(self, name, payload, chunks):
        write_atomically(_os_path_join(self.directory, name + ".bin"), b"".join(chunks), True)
        # The JSON is written last: its existence tells the parent the record is complete.
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
        data = value.tobytes()  # C order, a copy
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
        # Python numbers travel as float64 / int64, so the parent can report the dtype problem.
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
    if _type(value) in (_tuple, _list) and depth == 0:
        items = []
        for item in value:
            record, offset = encode(item, np_ndarray, np_generic, chunks, offset, depth + 1)
            items.append(record)
        return {"kind": "tuple", "type": _type(value).__name__, "items": items}, offset
    return {"kind": "other", "type": _type(value).__name__}, offset


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
    where = location = None
    try:
        for frame in _extract_tb(error.__traceback__):
            relative = _student_file(frame.filename, submission_path)
            if relative is not None:
                where = f"line {frame.lineno}, in {frame.name}"
                location = {"file": relative, "line": frame.lineno, "function": frame.name}
    except _BaseException:
        where = location = None
    if where is None and _isinstance(error, SyntaxError):  # raised while compiling a helper
        relative = _student_file(_getattr(error, "filename", None), submission_path)
        line = _getattr(error, "lineno", None)
        if relative is not None and _type(line) is _int:
            where = f"line {line}"
            location = {"file": relative, "line": line, "function": None}
    described = {
        "type": _type(error).__name__,
        "message": message[:500],
        "where": where,
        "memory_error": _isinstance(error, MemoryError),
    }
    if location is not None:
        described.update(location)
    return described


class ImportGuard:
    """``builtins.__import__`` replacement enforcing the import policy on the submission's code.

    Only imports *made by the submission* (the importing frame's globals belong to the submission
    module) are checked, so NumPy's own lazy imports keep working. ``__import__("torch")`` called
    by hand is caught too, because the caller's frame is inspected.
    """

    def __init__(self, allowed):
        self.allowed = frozenset(allowed)
        self.blocked = []

    def __call__(self, name, globals=None, locals=None, fromlist=(), level=0):
        caller = _getframe(1)
        importer = globals if _isinstance(globals, _dict) else caller.f_globals
        students = _STUDENT["modules"]
        if importer.get("__name__") in students or (caller.f_globals.get("__name__") in students):
            top = "." * level + _str(name).partition(".")[0]
            if level or top not in self.allowed:
                in_submission = caller.f_globals.get("__name__") == SUBMISSION_MODULE
                line = caller.f_lineno if in_submission else None
                self.blocked.append({"module": top, "line": line})
                raise ImportError(
                    f"importing {top!r} is not allowed in a submission "
                    f"(allowed: {', '.join(_sorted(self.allowed))})"
                )
        return _real_import(name, globals, locals, fromlist, level)


class NamespaceGuard:
    """Notices when the submission replaces NumPy's or Python's functions, and undoes it.

    The public namespaces of NumPy and of ``builtins`` are saved before the submission runs.
    `check` (after the import and after every call) records every public name whose value
    changed, disappeared or, for builtins, appeared, plus any function defined in the submission
    found in a NumPy namespace; then it puts the saved values back, so the harness's own code
    (``json``, the parity harness) keeps working with the real ``isinstance`` and the like. The
    recorded names end up in the report's policy list.
    """

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

    def check(self):
        """Record and undo the submission's changes; returns every name recorded so far."""
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
        # Functions the submission defined, found anywhere in NumPy (this also covers NumPy
        # modules imported only after the snapshot, such as numpy.testing).
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
        return _sorted(self.tampered)


_MISSING = object()


def import_submission(path, guard):
    """Execute the submission as module ``submission``; returns the module (raises on failure)."""
    import importlib.util

    folder = _STUDENT["folder"]
    if folder and folder not in sys.path:  # the student's helper modules import each other
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(SUBMISSION_MODULE, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    _sys_modules[SUBMISSION_MODULE] = module
    builtins.__import__ = guard
    spec.loader.exec_module(module)
    return module


def load_adapter(path):
    """The checker's course-API adapter (:mod:`tinycnn.grading.adapters`), loaded from its file."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_tinycnn_course_api", path)
    adapter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(adapter)
    return adapter


def main(job_path):
    with _open(job_path) as handle:
        job = json.load(handle)
    apply_limits(job.get("memory_bytes"), job.get("cpu_seconds"), job.get("file_bytes"))
    out_dir = job["out_dir"]
    os.chdir(out_dir)  # files the submission writes land in the temporary directory
    submission_path = job["submission"]
    # A multi-file submission: the folder holding the student's modules, and their names.
    if job.get("submission_dir"):
        _STUDENT["folder"] = job["submission_dir"]
        _STUDENT["modules"] = frozenset([SUBMISSION_MODULE, *job.get("student_modules", [])])
    writer = Writer(out_dir)

    import numpy as np

    np_ndarray, np_generic = np.ndarray, np.generic
    # The project's own code (case catalogue, reference model) is loaded before the submission.
    for path in job.get("project_paths", []):
        if path not in sys.path:
            sys.path.append(path)
    prepared = None
    if job["mode"] == "function":
        from tinycnn.parity_tests.cases import find_case, make_inputs
        from tinycnn.parity_tests.harness import call_op

        calls = []
        for item in job["cases"]:
            case = find_case(item["id"])
            calls.append((case, item["direction"], make_inputs(case)))
        prepared = (call_op, calls)
    elif job["mode"] == "train":
        from tinycnn.reference.data import DatasetConfig, make_dataset
        from tinycnn.reference.models import TinyCNN
        from tinycnn.reference.train import TrainConfig, train

        dataset = make_dataset(DatasetConfig(**job["training"]["data"]))
        prepared = (TinyCNN, TrainConfig, train, dataset)
    # A course API (--api): the checker's adapter, loaded before the submission runs.
    api = job.get("api") or "tinycnn"
    adapter = load_adapter(job["adapter"]) if api != "tinycnn" else None
    writer.save("started", {"pid": os.getpid()}, [])

    guard = ImportGuard(job["allowed_imports"])
    namespaces = NamespaceGuard(submission_path)
    started = _perf_counter()
    try:
        module = import_submission(submission_path, guard)
    except _BaseException as error:  # SyntaxError, SystemExit, policy ImportError, anything
        builtins.__import__ = _real_import
        writer.save(
            "import",
            {
                "ok": False,
                "error": describe_exception(error, submission_path),
                "blocked": guard.blocked,
                "tampered": namespaces.check(),
                "seconds": _perf_counter() - started,
            },
            [],
        )
        _os_exit(0)
    graded_as = {}
    if adapter is not None:
        try:
            module, graded_as = adapter.contract_namespace(api, module)
        except _BaseException:  # a hostile module attribute (a property that raises...)
            module, graded_as = adapter.ContractFunctions({}), {}
    functions = {}
    for name in job["functions"]:
        value = _getattr(module, name, None)
        functions[name] = (
            "missing" if value is None else ("callable" if _callable(value) else "not callable")
        )
    writer.save(
        "import",
        {
            "ok": True,
            "functions": functions,
            "graded_as": graded_as,
            "blocked": guard.blocked,
            "tampered": namespaces.check(),
            "seconds": _perf_counter() - started,
        },
        [],
    )

    if job["mode"] == "function":
        run_calls(module, prepared, writer, np_ndarray, np_generic, submission_path, namespaces)
    elif job["mode"] == "train":
        run_training(job, module, prepared, writer, np_ndarray, np_generic, submission_path)
    writer.save(
        "done",
        {
            "blocked": guard.blocked,
            "tampered": namespaces.check(),
        },
        [],
    )
    # Leave at once: no atexit handlers or threads the submission may have set up get to run.
    _os_exit(0)


def run_calls(module, prepared, writer, np_ndarray, np_generic, submission_path, namespaces):
    """Call one contract function on every case; one ``call_NNNNN`` record per call."""
    call_op, calls = prepared
    for index, (case, direction, inputs) in enumerate(calls):
        started = _perf_counter()
        try:
            # The parity suite's own calling convention (keywords stride=, padding=, size=).
            result = call_op(module, case, direction, inputs)
        except _BaseException as error:  # includes SystemExit and KeyboardInterrupt
            namespaces.check()
            payload = {"outcome": "raised", "error": describe_exception(error, submission_path)}
            chunks = []
        else:
            namespaces.check()
            chunks = []
            record, offset = encode(result, np_ndarray, np_generic, chunks, 0)
            after = {}
            for key, value in inputs.items():  # as they are now: the parent checks them
                after[key], offset = encode(value, np_ndarray, np_generic, chunks, offset, 1)
            payload = {"outcome": "returned", "result": record, "inputs_after": after}
        payload["seconds"] = _perf_counter() - started
        try:
            writer.save(f"call_{index:05d}", payload, chunks)
        except OSError as error:  # e.g. a result beyond the file-size limit (EFBIG)
            size = sum(_len(chunk) for chunk in chunks)
            payload = {
                "outcome": "raised",
                "seconds": payload["seconds"],
                "error": {
                    "type": "unreadable result",
                    "where": None,
                    "memory_error": False,
                    "message": f"{size} bytes of output could not be saved: {_str(error)}",
                },
            }
            writer.save(f"call_{index:05d}", payload, [])


def run_training(job, module, prepared, writer, np_ndarray, np_generic, submission_path):
    """Train TinyCNN with the submission's ops; write the final parameters and step losses."""
    TinyCNN, TrainConfig, train, dataset = prepared
    settings = job["training"]
    started = _perf_counter()
    try:
        model = TinyCNN(**settings["model"], ops=module)
        history = train(model, dataset, TrainConfig(**settings["config"]))
        losses = [_float(loss) for loss in history.step_loss]
    except _BaseException as error:
        writer.save(
            "train", {"outcome": "raised", "error": describe_exception(error, submission_path)}, []
        )
        return
    chunks, offset, params = [], 0, {}
    for key, value in model.params.items():
        params[key], offset = encode(value, np_ndarray, np_generic, chunks, offset, 1)
    writer.save(
        "train",
        {
            "outcome": "returned",
            "params": params,
            # NaN and infinity are not JSON: sent as null.
            "step_loss": [loss if loss - loss == 0 else None for loss in losses],
            "seconds": _perf_counter() - started,
        },
        chunks,
    )


def serve(project_paths):
    """Fork server: preload NumPy and the project, then fork one child per job read on stdin.

    Protocol (one line each): the parent writes ``RUN <id> <job.json>``; this process answers
    ``READY`` once, ``PID <id> <pid>`` per fork and ``EXIT <pid> <status>`` when a child ends
    (status as ``subprocess.Popen.returncode``: negative for a signal). It never runs submission
    code itself; each forked child starts its own session, sends its standard streams to
    ``/dev/null`` and then does exactly what ``python child.py JOB`` does. Forking saves every
    job the ~0.2 s of starting Python and importing NumPy. Ends when stdin closes.
    """
    import select

    for path in project_paths:
        if path not in sys.path:
            sys.path.append(path)
    import importlib

    # Preloaded once here, so every forked child starts with them imported.
    for name in (
        "numpy",
        "tinycnn.parity_tests.cases",
        "tinycnn.parity_tests.harness",
        "tinycnn.reference.data",
        "tinycnn.reference.models",
        "tinycnn.reference.train",
    ):
        importlib.import_module(name)

    def say(line):
        os.write(1, (line + "\n").encode())

    say("READY")
    pending = b""
    open_input = True
    children = 0
    while open_input or children:
        readable, _, _ = select.select([0] if open_input else [], [], [], 0.005)
        if readable:
            data = os.read(0, 65536)
            open_input = bool(data)
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                _, job_id, job_path = line.decode().split(" ", 2)
                pid = os.fork()
                if pid == 0:  # the child: never returns into this loop
                    try:
                        os.setsid()
                        devnull = os.open(os.devnull, os.O_RDWR)
                        for fd in (0, 1, 2):
                            os.dup2(devnull, fd)
                        main(job_path)
                    finally:
                        os._exit(70)
                children += 1
                say(f"PID {job_id} {pid}")
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                children = 0
                break
            if pid == 0:
                break
            children -= 1
            say(f"EXIT {pid} {os.waitstatus_to_exitcode(status)}")


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        serve(sys.argv[2:])
    else:
        main(sys.argv[1])
