"""Inside the sandbox: run a submission's functions and write what they returned to files.

This file is run as a script, ``python -I -S -B child.py JOB.json``, by
:mod:`tinycnn.grading.sandbox`, inside bubblewrap where the machine has it. It uses the standard
library and NumPy only (nothing else exists in the sandbox) and is never imported by the
checker. It is the *only* code of the checker that runs on the untrusted side of the boundary;
what it writes is read back through :mod:`tinycnn.grading.channel`, which trusts none of it.

One process, the *supervisor*, does this:

1. drop to the unprivileged uid named in the job (when started as root), set the resource
   limits (processes, address space, CPU time, file size), import NumPy;
2. install the import rule: a denied module (a framework, this project) imports as a
   placeholder that raises when used, and every such import is recorded with its line;
3. fork one *worker* per task, each in its own session: the probe (import the submission, list
   its functions), then one per contract function (several at a time), or the training run.
   Each worker imports the submission afresh, loads its inputs from the ``.npz`` files the
   checker wrote (``allow_pickle=False``), calls the function and writes one record per call;
4. enforce each worker's time limits (importing, then running) and kill its process group when
   one is exceeded; write ``status.json`` for every task.

Nothing is compared here: the checker computes the expected values itself, from inputs the
submission never chose, including hidden cases drawn from a fresh seed each run.
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
# One worker: import, then the calls or the training run
# --------------------------------------------------------------------------------------------


def worker(job, task, out_dir, finder, loaded, adapter):
    """Runs in a forked process of its own; never returns."""
    import numpy as np

    np_ndarray, np_generic = np.ndarray, np.generic
    submission_path = job["submission"]
    writer = Writer(out_dir)
    # Inputs were loaded by the supervisor before any submission code ran.
    calls = []
    for call in task.get("calls", []):
        arrays = loaded[call["file"]]
        calls.append((call, {name: arrays[call["prefix"] + name] for name in call["names"]}))
    training = loaded[task["train"]["file"]] if task.get("train") else None
    os.chdir(job["work"])
    namespaces = NamespaceGuard(submission_path)
    started = _perf_counter()
    try:
        module = import_submission(submission_path)
    except _BaseException as error:  # SyntaxError, SystemExit, anything
        writer.save(
            "import",
            {
                "ok": False,
                "error": describe_exception(error, submission_path),
                "blocked": finder.blocked,
                "tampered": namespaces.check(),
                "seconds": _perf_counter() - started,
            },
            [],
        )
        _os_exit(0)
    graded_as = {}
    if adapter is not None:
        try:
            module, graded_as = adapter.contract_namespace(job["api"], module)
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
            "blocked": finder.blocked,
            "tampered": namespaces.check(),
            "seconds": _perf_counter() - started,
        },
        [],
    )
    function = _getattr(module, task["function"], None) if calls else None
    if _callable(function):  # missing or not a function: the import record says so, no calls
        run_calls(function, calls, writer, np_ndarray, np_generic, submission_path, namespaces)
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
# The supervisor
# --------------------------------------------------------------------------------------------


class Running:
    """One forked worker and its deadlines."""

    def __init__(self, name, pid, out_dir, import_limit, run_limit):
        self.name, self.pid, self.out_dir = name, pid, out_dir
        self.limits = {"import": import_limit, "run": run_limit}
        self.phase, self.phase_started = "import", time.monotonic()

    def tick(self, now):
        """The phase whose limit is exceeded, or None."""
        if self.phase == "import" and os.path.exists(_os_path_join(self.out_dir, "import.json")):
            self.phase, self.phase_started = "run", now
        return self.phase if now - self.phase_started > self.limits[self.phase] else None


def _kill_group(pid):
    import signal

    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except OSError:
            pass


def become_subreaper():
    """Linux: orphans of the workers (a double-forked daemon) become the supervisor's children
    instead of init's, so `kill_orphans` finds them (``prctl(PR_SET_CHILD_SUBREAPER)``). The
    kernel does the same for the other levels (bubblewrap's PID namespace, level uid's kill of
    every process of the run's uid); at level process it is the only containment."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except _BaseException:
        pass


def kill_orphans():
    """Kill every process left below the supervisor (with `become_subreaper`, detached
    daemons included), round after round until none is left (a killed process's children come
    to the supervisor in turn); reap them."""
    import signal

    me = os.getpid()
    for _round in range(100):
        children = []
        try:
            names = os.listdir("/proc")
        except OSError:  # no /proc (level uid's root): the checker kills the uid
            return
        for name in names:
            try:
                with _open(f"/proc/{name}/stat", "rb") as handle:
                    fields = handle.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError, ValueError):
                continue
            if _int(fields[1]) == me and fields[0] != b"Z":
                children.append(_int(name))
        for pid in children:
            for send in (os.killpg, os.kill):
                try:
                    send(pid, signal.SIGKILL)
                except OSError:
                    pass
        while True:  # reap: the dead children's own children are reparented to us
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid == 0:
                break
        if not children:
            return


def supervise(job, finder, loaded, adapter):
    """Run every task of the job, ``job["workers"]`` at a time; write each ``status.json``."""
    tasks = _list(job["tasks"])
    limits = job["limits"]
    running = {}
    pending = _list(tasks)
    while pending or running:
        while pending and _len(running) < max(1, job.get("workers", 1)):
            task = pending.pop(0)
            out_dir = _os_path_join(job["out"], task["name"])
            os.mkdir(out_dir, 0o700)
            pid = os.fork()
            if pid == 0:
                try:
                    os.setsid()
                    worker(job, task, out_dir, finder, loaded, adapter)
                except BaseException:
                    traceback.print_exc()
                finally:
                    _os_exit(70)
            run_limit = limits["train_timeout"] if task.get("train") else limits["timeout"]
            run_limit *= task.get("share", 1.0)
            running[pid] = Running(task["name"], pid, out_dir, limits["timeout"], run_limit)
        time.sleep(0.002)
        now = time.monotonic()
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            entry = running.pop(pid, None)
            if entry is None:
                continue
            _kill_group(pid)  # whatever it left behind in its session
            entry.tick(now)
            _finish(entry, None, os.waitstatus_to_exitcode(status), now)
        for pid, entry in _list(running.items()):
            exceeded = entry.tick(now)
            if exceeded:
                _kill_group(pid)
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
                del running[pid]
                _finish(entry, exceeded, None, now)


def _finish(entry, timed_out, exit_status, now):
    status = {
        "timed_out": timed_out,
        "exit_status": exit_status,
        "run_seconds": now - entry.phase_started,
    }
    try:
        write_atomically(_os_path_join(entry.out_dir, "status.json"), _json_dumps(status))
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


def load_inputs(job, np, root=""):
    """Every ``.npz`` the tasks use (file -> name -> array), read with ``allow_pickle=False``."""
    loaded = {}
    for task in job["tasks"]:
        files = {call["file"] for call in task.get("calls", [])}
        files |= {task["train"]["file"]} if task.get("train") else set()
        for file in sorted(files):
            path = root + _os_path_join(job["inputs"], file)
            with np.load(path, allow_pickle=False) as data:
                loaded[file] = unpack_arrays(data, np)
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
#: Never imported on the submission's behalf (side effects: a web browser, a poem).
NEVER_PRELOADED = frozenset({"antigravity", "this", "__main__"})
#: At most this many of the student's files are scanned for imports, each up to this size.
SCAN_FILES, SCAN_BYTES = 200, 2 * 2**20


def _named_imports(folder, own_modules):
    """Modules named by the import statements of the ``.py`` files under ``folder`` (the
    student's copy, read before any of it runs), and their source encodings' codecs."""
    import ast
    import codecs
    import io
    import tokenize

    names = set()
    files = []
    for root, _dirs, entries in os.walk(folder):
        files += [_os_path_join(root, e) for e in _sorted(entries) if e.endswith(".py")]
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
    for name in _sorted(set(PRELOAD) | _named_imports(folder, own)):
        top = name.partition(".")[0]
        if top in allowed and top not in NEVER_PRELOADED:
            try:
                importlib.import_module(name)
            except _BaseException:  # "from numpy import pi" names no module: fine
                pass


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
    import importlib.machinery
    import importlib.util
    import resource
    import signal

    import numpy

    del importlib, signal, resource  # loaded, not used here

    if job.get("submission_dir"):  # a multi-file submission: the student's folder and modules
        _STUDENT["folder"] = job["submission_dir"]
        _STUDENT["modules"] = frozenset([SUBMISSION_MODULE, *job.get("student_modules", [])])
    # A course API (--api): the checker's adapter, loaded before the submission runs.
    api = job.get("api") or "tinycnn"
    adapter = load_adapter(job["adapter"]) if api != "tinycnn" else None
    become_subreaper()
    loaded = load_inputs(job, numpy, job.get("chroot") or "")
    if job.get("chroot"):  # level uid: the run's directory becomes the root of its file system
        preload(job)
        enter_root(job["chroot"])
    drop_privileges(job.get("uid"), job.get("gid"))
    apply_limits(job["limits"])

    trusted = [os.path.dirname(numpy.__file__) + os.sep, os.path.dirname(os.__file__) + os.sep]
    finder = DenyFinder(job["allowed"], job["submission"], trusted)
    sys.meta_path.insert(0, finder)
    supervise(job, finder, loaded, adapter)
    kill_orphans()
    write_atomically(_os_path_join(job["out"], "supervisor.json"), _json_dumps({"done": True}))
    _os_exit(0)


if __name__ == "__main__":
    main(sys.argv[1])
