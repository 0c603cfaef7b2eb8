"""The strict channel: everything the checker reads back from a sandboxed child passes here.

The judge (:mod:`tinycnn.grading.grader`) never runs student code and never opens a file the child
wrote: it gets plain Python values from this module, which trusts nothing it reads.

- **Files**: only regular files are read, opened with ``O_NOFOLLOW | O_NONBLOCK`` relative to a
  directory descriptor (so a symlink, at any level, is refused rather than followed), checked
  with ``fstat`` (a FIFO, a device or a socket is refused without blocking), and read up to a
  size cap (a sparse file, or anything linked to ``/dev/zero``, costs at most the cap). A
  directory holding more than `MAX_ENTRIES` entries is not read at all.
- **Records**: every JSON record is validated against its schema (types, ranges, nesting depth,
  string lengths) before anything else looks at it. Deeply nested JSON, NaN where a number
  belongs, a string where a list belongs: each becomes a *malformed result* for the one call
  or function it belongs to, never an exception in the checker.
- **Arrays** are rebuilt with ``numpy.frombuffer`` from raw bytes, numeric dtypes only;
  nothing is unpickled or evaluated.
- **Text** (exception messages, type names) is cut to `MAX_TEXT` characters and stripped of
  control characters (ANSI escapes, newlines) by `clean_text`, so it cannot redraw a terminal or
  break a CSV row.

Record formats (written by :mod:`tinycnn.grading.child`):

- value: ``{"kind": "array", "container": "ndarray"|"numpy scalar"|"python float"|"python
  int", "dtype": "<f8", "shape": [2, 3], "offset": 0, "nbytes": 48}`` (bytes in the matching
  ``.bin``), ``{"kind": "tuple", "type": "tuple"|"list", "items": [value, ...]}`` (one level)
  or ``{"kind": "other", "type": "NoneType"}``;
- error: ``{"type": str, "message": str, "where": str|None, "memory_error": bool}``;
- ``import.json``: ``ok``, ``functions`` (name -> "callable"|"missing"|"not callable") or
  ``error``, ``blocked`` (``[{"module": str, "line": int|None}]``), ``tampered`` (names);
- ``call_NNNNN.json``: ``outcome`` "returned" (``result``, ``inputs_after``) or "raised"
  (``error``), ``seconds``;
- ``status.json`` (written by the in-sandbox supervisor): ``timed_out`` (None, "import",
  "run"), ``exit_status`` (int or None), ``run_seconds``;
- ``done.json``: ``blocked``, ``tampered``; ``train.json``: ``outcome``, ``params`` (name ->
  value), ``step_loss`` (floats or None), ``seconds`` or ``error``.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import signal
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "MAX_BLOB_BYTES",
    "MAX_ENTRIES",
    "MAX_JSON_BYTES",
    "MAX_TEXT",
    "ChildRun",
    "ForeignValue",
    "Malformed",
    "ResultDirectory",
    "clean_name",
    "clean_text",
    "decode",
]

#: Largest JSON record read (the biggest real one is a few kB).
MAX_JSON_BYTES = 1 * 2**20
#: Largest array-bytes file read (the largest catalogue case returns a few kB).
MAX_BLOB_BYTES = 64 * 2**20
#: Most bytes read from one child's result directory, over all its files.
MAX_TOTAL_BYTES = 512 * 2**20
#: Most entries a result directory may hold (a run writes about two per call).
MAX_ENTRIES = 4096
#: Longest untrusted text kept (exception messages, type names).
MAX_TEXT = 300
#: Most dimensions, and largest dimension, of a returned array.
MAX_NDIM, MAX_DIM = 32, 2**31

# dtypes a result may have: numbers only (object arrays would be pointers, not data).
_ALLOWED_DTYPE_KINDS = "biufc"
_CONTAINERS = ("ndarray", "numpy scalar", "python float", "python int")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-Z\\-_])")


class Malformed(ValueError):
    """A file or record from the child that the checker refuses to use."""


def clean_text(text: object, limit: int = MAX_TEXT) -> str:
    """Untrusted text made safe to print and store: no escape sequences or control characters
    (a newline or tab becomes a space), no lone surrogate (which no output could encode: written
    as its escape, ``\\ud800``, as :func:`clean_name` does), at most ``limit`` characters
    (``...`` marks a cut)."""
    text = str(text)
    text = _SURROGATE.sub(lambda match: _escape(match.group()), text)
    text = _ANSI.sub("", text)
    text = text.replace("\r\n", " ").replace("\n", " ").replace("\t", " ").replace("\r", " ")
    text = _CONTROL.sub("", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clean_name(name: object) -> str:
    """A file or folder name made safe to print and store, still told apart from every other.

    Where :func:`clean_text` drops a character, this writes it as Python writes it in a string
    literal: a character a reader cannot see or a terminal acts on (Unicode's categories C and
    Z but the space, and marks and letters that draw as nothing: controls, zero-width and
    direction marks, other spaces, variation selectors; `_needs_escape`) as ``\\x7f``,
    ``\\x0a``, ``\\u200b``;
    a byte that is not UTF-8 (``os.listdir`` hands it over as a lone surrogate, PEP 383: what
    ``unzip`` makes of a Windows zip's accented name) as ``\\xe9``; a backslash as ``\\\\``.
    Nothing is cut. Two different names never give the same text, so one student's row cannot
    take another's place in a table, a CSV or a JSON document.

    Examples
    --------
    >>> clean_name("b\\x7fob"), clean_name("caf\\udce9"), clean_name("bob")
    ('b\\\\x7fob', 'caf\\\\xe9', 'bob')
    """
    return "".join(_escape(c) if _needs_escape(c) else c for c in str(name))


#: Characters that are not "other" (category C) yet draw as nothing: the Hangul fillers
#: (letters), the combining grapheme joiner and the variation selectors (marks, which Python
#: accepts in names). Unicode's Default_Ignorable_Code_Point, less its category-C part.
_INVISIBLE = frozenset("\u034f\u115f\u1160\u180b\u180c\u180d\u180f\u3164\uffa0")


def _invisible(character: str) -> bool:
    code = ord(character)
    return character in _INVISIBLE or 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF


def _needs_escape(character: str) -> bool:
    """A backslash, or a character of Unicode's "other" categories (controls, format characters
    such as zero-width and direction marks, surrogates, private use, unassigned), a separator
    but the space, or one that draws as nothing (`_INVISIBLE`, the variation selectors): what a
    reader cannot see, or a terminal would act on (attacker session 7, F7: ``relu_forward``
    followed by U+034F printed as ``relu_forward``). Combining accents are kept (a macOS
    zip's ``Jose`` + U+0301 is shown as José)."""
    if character == "\\" or _invisible(character):
        return True
    return unicodedata.category(character)[0] in "CZ" and character != " "


def _escape(character: str) -> str:
    code = ord(character)
    if code == ord("\\"):
        return "\\\\"
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as os.fsdecode passes it on: \x80-\xff
        return f"\\x{code - 0xDC00:02x}"
    # \x00-\x7f for an ASCII control, \uXXXX or \UXXXXXXXX above, as in a Python literal, so
    # that no byte and no character share an escape (U+0085 is \u0085, the byte 0x85 is \x85).
    if code < 0x80:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


@dataclass(frozen=True)
class ForeignValue:
    """Something a submission returned that is not a number or an array (``None``, a dict...)."""

    type_name: str


@dataclass
class ChildRun:
    """What one sandboxed run of a function (or the probe, or the training) left behind.

    Attributes
    ----------
    import_result : dict or None
        The validated ``import.json``; None if the child never finished importing.
    calls : list of dict
        One per completed call, in order: ``outcome`` ("returned" | "raised" | "unreadable"),
        ``result`` and ``inputs_after`` (decoded) or ``error``, ``seconds``.
    done : dict or None
        The validated ``done.json``.
    train : dict or None
        Training outcome: ``outcome``, ``params`` (decoded), ``step_loss``, ``seconds`` or
        ``error``.
    timed_out : str or None
        The phase that exceeded its limit: "startup", "import" or "run".
    exit_status : int or None
        How the process ended (negative: killed by that signal); None if unknown.
    run_seconds : float
        Wall time of the last phase.
    malformed : str or None
        Why the run's files were refused as a whole (too many, not regular files...).
    limit : str or None
        For a run that timed out, the limit that ran out: "cpu" (processor time), "start" or
        "start-cpu" (the wall-clock cap or processor time for starting the workers), or "wall"
        (the wall-clock cap); None if unknown.
    cpu_seconds : float or None
        Processor seconds the process had used when it ended or was stopped, if known.
    stopped : str or None
        Why the checker stopped the whole sandbox run (its wall-clock or processor-time budget,
        a stopped supervisor), when it did, in words (``Sandbox.stopped_because``).
    stopped_limit : str or None
        The same as a word (``Sandbox.stopped_limit``): "wall" (the run's deadline or the
        submission's wall-clock budget), "cpu" (the run's processor-time budget),
        "supervisor" (stopped by the submission) or "budget" (disk, memory).
    """

    import_result: dict | None = None
    calls: list[dict] = field(default_factory=list)
    done: dict | None = None
    train: dict | None = None
    timed_out: str | None = None
    exit_status: int | None = None
    run_seconds: float = 0.0
    malformed: str | None = None
    limit: str | None = None
    cpu_seconds: float | None = None
    stopped: str | None = None
    stopped_limit: str | None = None

    def ran_out_of_wall_clock(self, cpu_limit: float) -> bool:
        """Whether this run timed out because wall-clock time ran out, not processor time:
        its wall-clock cap with less than ``cpu_limit`` seconds of processor time used (or an
        unknown amount), or the whole run stopped at a wall-clock deadline or budget. A busy
        machine (classmates graded at the same time) can cause that; see
        :func:`tinycnn.grading.folder.grade_folder`, which then grades the submission again
        alone."""
        if self.timed_out not in ("run", "import"):
            return False
        if self.stopped is not None:
            return self.stopped_limit == "wall"
        if self.limit == "start":  # the cap for starting the workers: no processor limit ran out
            return True
        if self.limit != "wall":
            return False
        return self.cpu_seconds is None or self.cpu_seconds < cpu_limit

    def describe_exit(self) -> str:
        """The way the process ended, in words."""
        if self.malformed:
            return f"the checker refused what the process left behind ({self.malformed})"
        status = self.exit_status
        if status is None:
            return "the process ended without an exit status (its sandbox stopped)"
        if status < 0:
            try:
                name = signal.Signals(-status).name
            except ValueError:
                name = f"signal {-status}"
            hint = {"SIGXCPU": " (CPU time limit)", "SIGXFSZ": " (file size limit)"}.get(name, "")
            return f"the process was killed by {name}{hint}"
        return f"the process exited with status {status} (os._exit, or a crash)"


# --------------------------------------------------------------------------------------------
# Reading files: regular files only, never following a link, with caps
# --------------------------------------------------------------------------------------------


class ResultDirectory:
    """A child's result directory, read without following links and with size caps.

    Use as a context manager; `sub` opens a subdirectory the same way. Every read counts
    against one byte budget (`MAX_TOTAL_BYTES`) shared by the directory and its subdirectories.
    ``refused`` (why the sandbox was stopped over a budget) refuses every read with that reason:
    each task of the run becomes a malformed run that says so.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        refused: str | None = None,
        _fd: int | None = None,
        _budget: list | None = None,
    ):
        self.path = Path(path)
        self.refused = refused
        self._budget = _budget if _budget is not None else [MAX_TOTAL_BYTES]
        if _fd is None:
            _fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        self.fd = _fd
        self._names: set[str] | None = None

    def __enter__(self) -> ResultDirectory:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def names(self) -> set[str]:
        """The entries' names; raises `Malformed` beyond `MAX_ENTRIES`."""
        if self.refused is not None:
            raise Malformed(self.refused)
        if self._names is None:
            names = set()
            with os.scandir(self.fd) as entries:
                for entry in entries:
                    names.add(entry.name)
                    if len(names) > MAX_ENTRIES:
                        raise Malformed(f"more than {MAX_ENTRIES} files in the result directory")
            self._names = names
        return self._names

    def sub(self, name: str) -> ResultDirectory | None:
        """The subdirectory ``name`` (None if absent); a link or a non-directory is `Malformed`."""
        if name not in self.names():
            return None
        try:
            fd = os.open(
                name,
                os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                dir_fd=self.fd,
            )
        except OSError as error:
            raise Malformed(f"{name} is not a plain directory ({error.strerror})") from None
        return ResultDirectory(self.path / name, _fd=fd, _budget=self._budget)

    def read_bytes(self, name: str, limit: int) -> bytes | None:
        """The file's bytes, or None if absent. Raises `Malformed` for anything but a regular
        file of at most ``limit`` bytes within the directory's byte budget."""
        if name not in self.names():
            return None
        try:
            fd = os.open(
                name,
                os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY,
                dir_fd=self.fd,
            )
        except OSError as error:
            if error.errno == errno.ENOENT:
                return None
            raise Malformed(f"{name} cannot be opened as a plain file ({error.strerror})") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise Malformed(f"{name} is not a regular file")
            limit = min(limit, self._budget[0])
            if info.st_size > limit:
                raise Malformed(f"{name} is {info.st_size} bytes, more than the {limit} allowed")
            chunks, total = [], 0
            while total <= limit:
                chunk = os.read(fd, min(1 << 20, limit + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
            if total > limit:  # the file grew while being read
                raise Malformed(f"{name} is larger than the {limit} bytes allowed")
            self._budget[0] -= total
            return b"".join(chunks)
        finally:
            os.close(fd)

    def read_json(self, name: str) -> object | None:
        """A JSON document (None if absent); `Malformed` if unreadable, not JSON, too deep or
        holding NaN/Infinity."""
        data = self.read_bytes(name, MAX_JSON_BYTES)
        if data is None:
            return None

        def refuse(token):
            raise Malformed(f"{name} holds {token}, which is not JSON")

        try:
            return json.loads(data.decode("utf-8"), parse_constant=refuse)
        except Malformed:
            raise
        except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
            raise Malformed(f"{name} is not valid JSON ({type(error).__name__})") from None


# --------------------------------------------------------------------------------------------
# Schemas
# --------------------------------------------------------------------------------------------


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise Malformed(what)


def _is_int(value: object) -> bool:
    return type(value) is int


def _is_number(value: object) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _text(value: object, what: str) -> str:
    _require(isinstance(value, str), f"{what} is not text")
    return clean_text(value)


def _error(record: object) -> dict:
    _require(isinstance(record, dict), "an error record is not an object")
    where = record.get("where")
    error = {
        "type": _text(record.get("type"), "an error type"),
        "message": _text(record.get("message", ""), "an error message"),
        "where": None if where is None else _text(where, "an error location"),
        "memory_error": record.get("memory_error") is True,
    }
    # Where in the student's files (a helper module, a notebook's converted cells).
    line, file, function = record.get("line"), record.get("file"), record.get("function")
    if _is_int(line) and 0 < line < 10**9 and isinstance(file, str):
        error.update(line=line, file=clean_text(file, 200))
        error["function"] = clean_text(function, 100) if isinstance(function, str) else None
    return error


def _blocked(items: object) -> list[dict]:
    _require(isinstance(items, list) and len(items) <= 1000, "a blocked-import list is invalid")
    out = []
    for item in items:
        _require(isinstance(item, dict), "a blocked import is not an object")
        line = item.get("line")
        _require(line is None or (_is_int(line) and 0 < line < 10**9), "bad import line")
        out.append({"module": _text(item.get("module"), "a module name")[:100], "line": line})
    return out


def _names(items: object) -> list[str]:
    _require(isinstance(items, list) and len(items) <= 1000, "a name list is invalid")
    return [_text(item, "a name") for item in items]


def _seconds(value: object) -> float:
    return float(value) if _is_number(value) and value >= 0 else 0.0


def validate_import(record: object, functions: tuple[str, ...]) -> dict:
    """A validated ``import.json``."""
    _require(isinstance(record, dict), "import.json is not an object")
    ok = record.get("ok")
    _require(ok is True or ok is False, "import.json: ok is not a boolean")
    out = {
        "ok": ok,
        "blocked": _blocked(record.get("blocked", [])),
        "tampered": _names(record.get("tampered", [])),
        "seconds": _seconds(record.get("seconds")),
    }
    if ok:
        states = record.get("functions")
        _require(isinstance(states, dict), "import.json: functions is not an object")
        out["functions"] = {}
        for name in functions:
            state = states.get(name, "missing")
            _require(state in ("callable", "missing", "not callable"), f"bad state of {name}")
            out["functions"][name] = state
        graded_as = record.get("graded_as") or {}
        _require(isinstance(graded_as, dict) and len(graded_as) <= 64, "bad graded_as")
        out["graded_as"] = {
            name: clean_text(graded_as[name], 100) for name in functions if name in graded_as
        }
    else:
        out["error"] = _error(record.get("error"))
    return out


def validate_done(record: object) -> dict:
    """A validated ``done.json``."""
    _require(isinstance(record, dict), "done.json is not an object")
    return {
        "blocked": _blocked(record.get("blocked", [])),
        "tampered": _names(record.get("tampered", [])),
    }


def validate_status(record: object) -> dict:
    """A validated ``status.json`` (the in-sandbox supervisor's account of one run)."""
    _require(isinstance(record, dict), "status.json is not an object")
    timed_out = record.get("timed_out")
    _require(timed_out in (None, "import", "run"), "status.json: bad timed_out")
    exit_status = record.get("exit_status")
    _require(
        exit_status is None or (_is_int(exit_status) and -256 < exit_status < 256),
        "status.json: bad exit_status",
    )
    limit = record.get("limit")
    _require(limit in (None, "cpu", "wall", "start", "start-cpu"), "status.json: bad limit")
    cpu = record.get("cpu_seconds")
    return {
        "timed_out": timed_out,
        "exit_status": exit_status,
        "run_seconds": _seconds(record.get("run_seconds")),
        "limit": limit if timed_out in ("run", "import") else None,
        "cpu_seconds": None if cpu is None else _seconds(cpu),
    }


def decode(record: object, blob: bytes, depth: int = 0) -> object:
    """Turn one value record back into a value (array, NumPy scalar, number, tuple or
    `ForeignValue`).

    Raises
    ------
    Malformed
        If the record is malformed in any way (a `ValueError`).
    """
    _require(isinstance(record, dict), "a value record is not an object")
    kind = record.get("kind")
    if kind == "tuple":
        items = record.get("items")
        _require(depth == 0, "tuples nested in tuples are not results")
        _require(isinstance(items, list) and len(items) <= 16, "bad tuple items")
        return tuple(decode(item, blob, depth + 1) for item in items)
    if kind == "other":
        return ForeignValue(_text(record.get("type", "?"), "a type name")[:100])
    _require(kind == "array", f"unknown record kind {clean_text(kind, 40)!r}")
    try:
        dtype = np.dtype(_text(record.get("dtype"), "a dtype")[:16])
    except TypeError:
        raise Malformed("unknown dtype in a result") from None
    _require(
        dtype.kind in _ALLOWED_DTYPE_KINDS and dtype.fields is None and not dtype.subdtype,
        f"unexpected dtype {dtype} in a result",
    )
    shape = record.get("shape")
    _require(
        isinstance(shape, list)
        and len(shape) <= MAX_NDIM
        and all(_is_int(n) and 0 <= n < MAX_DIM for n in shape),
        "bad shape in a result",
    )
    shape = tuple(shape)
    offset, nbytes = record.get("offset"), record.get("nbytes")
    _require(_is_int(offset) and _is_int(nbytes), "bad offset or size in a result")
    count = math.prod(shape)
    if nbytes != count * dtype.itemsize or offset < 0 or offset + nbytes > len(blob):
        raise Malformed(f"a result record of {nbytes} bytes does not fit shape {shape} {dtype}")
    array = np.frombuffer(blob, dtype=dtype, count=count, offset=offset).reshape(shape).copy()
    container = record.get("container")
    _require(container in _CONTAINERS, "unknown container in a result")
    if container == "numpy scalar":
        _require(shape == (), "a NumPy scalar with a shape")
        return array[()]
    if container in ("python float", "python int"):
        _require(shape == () and dtype.kind == ("f" if container == "python float" else "i"), "")
        return float(array[()]) if container == "python float" else int(array[()])
    return array


def _malformed_call(reason: str, seconds: float = 0.0) -> dict:
    return {
        "outcome": "unreadable",
        "error": {
            "type": "malformed result",
            "message": clean_text(reason),
            "where": None,
            "memory_error": False,
        },
        "seconds": seconds,
    }


def read_call(directory: ResultDirectory, index: int) -> dict | None:
    """Call ``index`` of a function run: a validated, decoded call, or None if absent."""
    name = f"call_{index:05d}"
    try:
        payload = directory.read_json(name + ".json")
        if payload is None:
            return None
        _require(isinstance(payload, dict), "a call record is not an object")
        seconds = _seconds(payload.get("seconds"))
        outcome = payload.get("outcome")
        if outcome == "raised":
            return {"outcome": "raised", "error": _error(payload.get("error")), "seconds": seconds}
        _require(outcome == "returned", "unknown call outcome")
        blob = directory.read_bytes(name + ".bin", MAX_BLOB_BYTES) or b""
        inputs_after = payload.get("inputs_after")
        _require(isinstance(inputs_after, dict) and len(inputs_after) <= 16, "bad inputs_after")
        return {
            "outcome": "returned",
            "result": decode(payload.get("result"), blob),
            "inputs_after": {
                _text(key, "an input name")[:20]: decode(value, blob, 1)
                for key, value in inputs_after.items()
            },
            "seconds": seconds,
        }
    except Malformed as error:
        return _malformed_call(str(error))


def read_function_run(
    directory: ResultDirectory | None, n_calls: int, functions: tuple[str, ...]
) -> ChildRun:
    """Everything one function's run left: status, import report, calls, done."""
    run = ChildRun()
    if directory is None:
        run.malformed = "no result directory"
        return run
    try:
        status = directory.read_json("status.json")
        if status is not None:
            status = validate_status(status)
            run.timed_out = status["timed_out"]
            run.exit_status = status["exit_status"]
            run.run_seconds = status["run_seconds"]
            run.limit, run.cpu_seconds = status["limit"], status["cpu_seconds"]
        imported = directory.read_json("import.json")
        run.import_result = None if imported is None else validate_import(imported, functions)
        done = directory.read_json("done.json")
        run.done = None if done is None else validate_done(done)
    except (Malformed, OSError) as error:
        run.malformed = clean_text(error)
        run.import_result = run.import_result if run.import_result else None
        return run
    for index in range(n_calls):
        try:
            call = read_call(directory, index)
        except OSError as error:
            call = _malformed_call(str(error))
        if call is None:
            break
        run.calls.append(call)
    return run


def read_training(directory: ResultDirectory | None, parameter_names: tuple[str, ...]) -> dict:
    """The validated training record: ``outcome`` "returned" (``params``, ``step_loss``,
    ``seconds``), "raised" (``error``) or "unreadable" (``error``)."""
    if directory is None:
        return _malformed_call("no result directory")
    try:
        payload = directory.read_json("train.json")
        if payload is None:
            return {"outcome": "absent"}
        _require(isinstance(payload, dict), "train.json is not an object")
        if payload.get("outcome") == "raised":
            return {"outcome": "raised", "error": _error(payload.get("error"))}
        _require(payload.get("outcome") == "returned", "unknown training outcome")
        blob = directory.read_bytes("train.bin", MAX_BLOB_BYTES) or b""
        params = payload.get("params")
        _require(isinstance(params, dict), "train.json: params is not an object")
        _require(set(params) == set(parameter_names), "train.json: wrong parameter names")
        losses = payload.get("step_loss")
        _require(isinstance(losses, list) and len(losses) <= 10**6, "bad step_loss")
        _require(all(loss is None or _is_number(loss) for loss in losses), "bad step_loss")
        return {
            "outcome": "returned",
            "params": {name: decode(params[name], blob, 1) for name in parameter_names},
            "step_loss": [None if loss is None else float(loss) for loss in losses],
            "seconds": _seconds(payload.get("seconds")),
        }
    except (Malformed, OSError) as error:
        return _malformed_call(str(error))
