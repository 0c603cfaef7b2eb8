"""Run a submission in a sandbox and hand back the directory of files it left: nothing more.

The untrusted side of ``tinycnn check``. This module starts :mod:`tinycnn.grading.child` (the
in-sandbox supervisor) on a private copy of the submission, sends it the cases' inputs on its
standard input (never written where the submission's import could read them),
enforces, from outside the sandbox, an overall deadline (and the submission's wall-clock budget
over all its runs, `Limits.total_seconds`), a processor-time budget over all the run's processes
and its disk and memory budgets, stops a run whose supervisor was stopped (``SIGSTOP`` from the
submission), makes sure every process it started is gone, and gives the caller the result
directory, which :mod:`tinycnn.grading.channel` reads without trusting it.

Isolation levels (:func:`isolation_level`), strongest first:

``bubblewrap``
    The child runs under `bubblewrap <https://github.com/containers/bubblewrap>`_ (``bwrap``):
    fresh PID, network, IPC and UTS namespaces (no network at all), an unprivileged uid, and a
    file system holding only, read-only, the interpreter, its standard library (its
    ``site-packages`` hidden), the directories of the shared libraries they and NumPy load
    (`_runtime_mounts`: not ``/usr`` as a whole, which holds other Python trees), NumPy, the
    child script, the submission's private copy and its inputs; plus its own empty result and
    work directories (writable; the work directory is its ``/tmp``), ``/dev`` read-only. Torch,
    the other frameworks, this project, other submissions and the checker's outputs do not exist
    inside. When the supervisor ends, the kernel kills every process left in the namespace.
``uid``
    No bubblewrap (or no namespaces), but the checker runs as root (a Docker grader): the child,
    still root, loads what the submission may import (``child.preload``), ``chroot``s into the
    run's scratch directory (owned by a uid of its own, one per sandbox, mode 0700) and drops
    to that uid before any submission code runs. It sees its copy, its inputs, its results and
    its work directory, nothing else of the machine; at the end every process of that uid is
    killed.
``process``
    Neither: today's limits only (its own session, time, memory, process count and file-size
    limits). The submission runs as the user running the checker and can read what that user
    can read. On Linux the supervisor, the importer and the workers are subreapers: whatever
    the import or a function detached is killed when it ends (``child._Tree``), unless the
    submission killed the supervisor first. Use it
    only for your own code.

At every level on Linux x86-64 and ARM64 the child also installs a seccomp filter refusing
every socket but a Unix one (``child.deny_network``): below bubblewrap it is what keeps the
submission off the network (`network_access`).

``TINYCNN_SANDBOX=uid|process`` (or the ``isolation`` argument) forces a weaker level, to test
the fallbacks on a machine that has bubblewrap; it cannot force a stronger one.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import io
import json
import os
import shutil
import signal
import site
import stat
import struct
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinycnn.grading.channel import ChildRun, ForeignValue, ResultDirectory, decode

__all__ = [
    "CHILD_SCRIPT",
    "ISOLATION_LEVELS",
    "NETWORK_DESCRIPTIONS",
    "ChildRun",
    "ForeignValue",
    "Limits",
    "Sandbox",
    "SandboxUnavailable",
    "decode",
    "isolation_level",
]

#: The script the sandbox runs.
CHILD_SCRIPT = Path(__file__).with_name("child.py")
#: The course-API adapters (NumPy only), which the child loads next to a submission.
ADAPTER_SCRIPT = Path(__file__).with_name("adapters.py")
#: From strongest to weakest.
ISOLATION_LEVELS = ("bubblewrap", "uid", "process")
ISOLATION_DESCRIPTIONS = {
    "bubblewrap": "bubblewrap: own namespaces, only Python and NumPy visible",
    "uid": "own uid and root directory (chroot), no namespaces",
    "process": "process limits only: the submission runs as you",
}
#: Why a level below bubblewrap was the best here (`describe_isolation`).
_WHY_NOT_STRONGER = {"uid": "no bubblewrap here", "process": "no bubblewrap here, not root"}
#: What ``network`` (`Sandbox.network`) means, as the outputs say it.
NETWORK_DESCRIPTIONS = {
    "none": "no network",
    "shared": "shares the machine's network",
    "unknown": "network access unknown",
}
#: Largest file a child may write (RLIMIT_FSIZE): results are a few kB.
MAX_FILE_BYTES = 64 * 2**20
#: Processes (threads included) one sandbox may have at once.
MAX_PROCESSES = 64
#: Open files per process (RLIMIT_NOFILE): bounds the files a process can hold after deleting
#: them, and what the checker reads to count them.
MAX_OPEN_FILES = 256
#: Bytes and entries (files, directories, links) a whole run may keep on disk: its result
#: directory and its /tmp together, plus files it holds open after deleting them. An honest run
#: leaves about 1,000 entries and 7 MB.
MAX_RUN_BYTES = 256 * 2**20
MAX_RUN_ENTRIES = 16384
#: Deepest directory a run may make (its results are two levels deep).
MAX_RUN_DEPTH = 8
#: Processor seconds a run may use besides its limits (`Sandbox._cpu_budget`): the sandbox,
#: the interpreter and NumPy starting, the import's forks and the supervisor's watching.
STARTUP_CPU_SECONDS = 3.0
#: Seconds between two measurements of a running sandbox (disk, memory, processes).
WATCH_SECONDS = 0.1
#: Wall-clock time a function (and the import) may take, as a multiple of its processor-time
#: limit ``Limits.timeout``: a process that sleeps or blocks uses no processor time.
WALL_FACTOR = 3.0
#: uids handed to sandboxes when the checker runs as root (one per sandbox, never a real user's).
UID_BASE, UID_RANGE = 0x6B630000, 1 << 16
#: Where the checkers of one machine claim those uids (`claim_uid`): root's own run directory.
UID_CLAIMS = Path("/run/tinycnn-uids")
ENVIRONMENT_VARIABLE = "TINYCNN_SANDBOX"

# Inside the bubblewrap sandbox.
BOX = "/box"
BOX_JOB, BOX_OUT, BOX_SITE, BOX_CHILD = f"{BOX}/job", f"{BOX}/out", f"{BOX}/site", f"{BOX}/child.py"
BOX_ADAPTER = f"{BOX}/adapters.py"


class SandboxUnavailable(RuntimeError):
    """The requested isolation level cannot be had here (one line, for the user)."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one submission's sandbox.

    Attributes
    ----------
    timeout : float
        Seconds of processor time for importing the submission, and again for running one
        function on all its cases (the time limit per function): that of the process and of
        every process it started, however detached (``child._Tree``, Linux), so classmates
        graded at the same time slow it down without using up its limit. Wall-clock time is
        capped at `WALL_FACTOR` times as much (for code that sleeps or waits). Where processor
        time cannot be measured (not Linux), ``timeout`` is wall-clock time.
    memory_mb : int
        Memory limit in MiB: the address space of each process (``RLIMIT_AS``; Python and NumPy
        need ~150), and the memory all processes of a run use together (the sum of their
        proportional set sizes, measured every `WATCH_SECONDS` on Linux).
    train_timeout : float
        Seconds for the training run with the submission's ops (processor and wall-clock time
        alike: it runs alone in its sandbox).
    startup_timeout : float
        Seconds for the sandbox, the interpreter and NumPy to start, before any submission code
        runs: generous, because a loaded machine starts processes slowly.
    total_timeout : float or None
        Seconds of wall-clock time all the sandbox runs of one submission may take together (the
        functions' run and the training run), enforced by the checker from outside the sandbox
        whatever the submission does (it may sleep under every cap, or stop its supervisor).
        Default (None): ``5 * timeout + train_timeout``, 110 s with the default limits, so a
        hostile file is graded in under 2 minutes. See `Limits.total_seconds`.
    """

    timeout: float = 10.0
    memory_mb: int = 2048
    train_timeout: float = 60.0
    startup_timeout: float = 30.0
    total_timeout: float | None = None

    @property
    def total_seconds(self) -> float:
        """The whole-submission wall-clock budget in seconds (``total_timeout`` or its
        default ``5 * timeout + train_timeout``)."""
        if self.total_timeout is not None:
            return float(self.total_timeout)
        return 5 * self.timeout + self.train_timeout

    def __post_init__(self):
        if self.total_timeout is not None and not self.total_timeout > 0:
            raise ValueError(f"total_timeout must be positive, got {self.total_timeout}")
        if not self.timeout > 0 or not self.train_timeout > 0 or not self.startup_timeout > 0:
            raise ValueError(
                f"time limits must be positive, got timeout {self.timeout}, "
                f"train_timeout {self.train_timeout}, startup_timeout {self.startup_timeout}"
            )
        if self.memory_mb < 256:
            raise ValueError(
                f"memory limit {self.memory_mb} MiB is too small to start NumPy (need at least 256)"
            )


# --------------------------------------------------------------------------------------------
# Which isolation this machine gives
# --------------------------------------------------------------------------------------------


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@functools.cache
def _bubblewrap_works() -> bool:
    """Whether ``bwrap`` is installed and can create the namespaces here, and the runtime's
    shared libraries could be found (`_runtime_mounts`); tried once."""
    binary = shutil.which("bwrap")
    if binary is None or not sys.platform.startswith("linux"):
        return False
    mounts = _default_mounts()
    if mounts is None:
        return False
    command = [binary, *_namespace_options(), *mounts, "--", _interpreter(), "-c", ""]
    try:
        return _helper(command).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _helper(command: list[str]) -> subprocess.CompletedProcess:
    """Run a helper of the checker's own (a probe of what this machine can do) in ``/``, with
    the sandbox's environment (`_environment`): an ``LD_LIBRARY_PATH`` of the checker naming
    an empty entry (the working directory, perhaps a student's folder) is not passed, so no
    library resolves from there (attacker session 7, F2). Output captured, at most 60 s.

    Raises
    ------
    OSError, subprocess.TimeoutExpired
        As `subprocess.run`.
    """
    return subprocess.run(
        command, capture_output=True, timeout=60, check=False, cwd="/", env=_environment()
    )


@functools.cache
def _chroot_works() -> bool:
    """Whether this process may ``chroot`` (root with CAP_SYS_CHROOT, which Docker grants by
    default), tried once in a helper process (never ``os.fork`` in a threaded checker)."""
    if not _is_root() or not hasattr(os, "chroot"):
        return False
    command = [_interpreter(), "-I", "-S", "-c", "import os; os.chroot('/')"]
    try:
        return _helper(command).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@functools.cache
def _network_filter_works() -> bool:
    """Whether the child's seccomp filter (``child.deny_network``) keeps a process off the
    network here (Linux x86-64 or ARM64 with seccomp), tried once in a helper process."""
    command = [_interpreter(), "-I", "-S", "-B", str(CHILD_SCRIPT), "--deny-network"]
    try:
        return _helper(command).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def network_access(level: str) -> str:
    """``"none"`` if a submission graded at ``level`` here cannot reach the network (its own
    empty network namespace, or the child's seccomp filter), else ``"shared"``."""
    return "none" if level == "bubblewrap" or _network_filter_works() else "shared"


def describe_isolation(level: str, network: str) -> str:
    """The outputs' words for an isolation level and its network access, with why a weaker
    level than bubblewrap: this machine gives no stronger one, or a stronger one was passed
    over (``$TINYCNN_SANDBOX``, ``isolation``; the reason said was wrong then: new user,
    session 7, finding 4)."""
    description = ISOLATION_DESCRIPTIONS.get(level, level or "unknown")
    if level in _WHY_NOT_STRONGER:
        best = isolation_level_available()
        if ISOLATION_LEVELS.index(best) < ISOLATION_LEVELS.index(level):
            description += f" (chosen: {best} works here)"
        else:
            description += f" ({_WHY_NOT_STRONGER[level]})"
    return f"{description}, {NETWORK_DESCRIPTIONS.get(network, network)}"


def isolation_level_available() -> str:
    """The strongest isolation level this machine gives, whatever was asked for."""
    return "bubblewrap" if _bubblewrap_works() else ("uid" if _chroot_works() else "process")


def isolation_level(requested: str | None = None) -> str:
    """The strongest isolation available here, or the weaker one asked for.

    ``requested`` (else ``$TINYCNN_SANDBOX``) may name a level from `ISOLATION_LEVELS`; asking
    for more than the machine gives raises `SandboxUnavailable`.
    """
    available = isolation_level_available()
    requested = requested or os.environ.get(ENVIRONMENT_VARIABLE) or None
    if requested is None:
        return available
    if requested not in ISOLATION_LEVELS:
        raise SandboxUnavailable(
            f"unknown isolation level {requested!r} (expected one of {', '.join(ISOLATION_LEVELS)})"
        )
    if ISOLATION_LEVELS.index(requested) < ISOLATION_LEVELS.index(available):
        raise SandboxUnavailable(
            f"isolation level {requested!r} is not available here (the best is {available!r}: "
            f"install bubblewrap, e.g. apt-get install bubblewrap)"
        )
    if requested == "uid" and not _chroot_works():  # weaker than bubblewrap, but needs root
        raise SandboxUnavailable(
            "isolation level 'uid' needs the checker to run as root (it gives the submission a "
            "uid and a root directory of its own)"
        )
    return requested


# --------------------------------------------------------------------------------------------
# What the bubblewrap sandbox sees
# --------------------------------------------------------------------------------------------


def _interpreter() -> str:
    """The real interpreter binary (a virtual environment's python is a link to it)."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def _namespace_options() -> list[str]:
    options = [
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
    ]
    if not _is_root():
        # Unprivileged: a user namespace maps us to "nobody" inside. As root, no user namespace:
        # the child drops to a uid of its own instead, so the process limit counts (the kernel
        # exempts root's own processes from RLIMIT_NPROC).
        options += ["--unshare-user", "--uid", "65534", "--gid", "65534"]
    return options


def _parents_then(option: str, source: str, target: str, made: set[str]) -> list[str]:
    """``option source target`` preceded by world-traversable parent directories of ``target``
    (bubblewrap would create them 0700, which the dropped uid could not cross)."""
    out = []
    parent = Path(target).parent
    for directory in reversed([parent, *parent.parents]):
        text = str(directory)
        if text != "/" and text not in made:
            made.add(text)
            out += ["--perms", "0755", "--dir", text]
    return [*out, option, source, target]


_PACKAGE_DIRECTORY_NAMES = ("site-packages", "dist-packages")


def _hidden_package_directories(roots: Sequence[str] = ()) -> list[str]:
    """Every directory of installed packages the runtime mounts could expose: the
    interpreter's own and the usual system ones, and any ``python3*/site-packages`` or
    ``dist-packages`` directly under one of ``roots`` (a library directory such as Fedora's
    ``/usr/lib64`` holds the system Python's)."""
    candidates = set(site.getsitepackages()) | {site.getusersitepackages()}
    for scheme_path in ("purelib", "platlib"):
        candidates.add(sysconfig.get_paths()[scheme_path])
        for base in (sys.base_prefix, sys.base_exec_prefix):
            candidates.add(sysconfig.get_paths(vars={"base": base, "platbase": base})[scheme_path])
    candidates |= {p for p in sys.path if p.endswith(("site-packages", "dist-packages"))}
    patterns = [
        "/usr/lib/python3*/dist-packages",
        "/usr/lib/python3*/site-packages",
        "/usr/local/lib/python3*/dist-packages",
        "/usr/local/lib/python3*/site-packages",
        "/usr/lib64/python3*/site-packages",
    ]
    for root in roots:
        patterns += [f"{glob.escape(root)}/python*/{name}" for name in _PACKAGE_DIRECTORY_NAMES]
    for pattern in patterns:
        candidates.update(glob.glob(pattern))
    return sorted({os.path.realpath(p) for p in candidates if p and os.path.isdir(p)})


#: Run by the sandbox's interpreter (``-I -S``, the sandbox's environment, in ``/``) to learn
#: which shared libraries the runtime needs: it loads (``dlopen``: their ELF constructors run,
#: no Python module is initialised) each file named on its command line and prints the paths
#: of every file then mapped into it, dependencies included, as the dynamic linker resolved
#: them; it ends without finalising (a package's library may abort at exit).
_LIBRARY_PROBE = """\
import ctypes, os, sys
for name in sys.argv[1:]:
    try:
        ctypes.CDLL(name)
    except OSError:
        pass
with open("/proc/self/maps") as maps:
    for line in maps:
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].startswith("/"):
            print(fields[5].rstrip("\\n"))
sys.stdout.flush()
os._exit(0)
"""


def _elf_interpreter(path: str) -> str | None:
    """The program interpreter (dynamic linker) an ELF executable names in its ``PT_INTERP``
    program header, such as ``/lib64/ld-linux-x86-64.so.2``; None for a static executable or
    a file that is not ELF. Layout: the System V ABI's ELF header and program header table
    (``e_phoff``, ``e_phentsize``, ``e_phnum``; ``p_type`` 3 is ``PT_INTERP``)."""
    with open(path, "rb") as file:
        header = file.read(64)
        if len(header) < 64 or header[:4] != b"\x7fELF" or header[4] not in (1, 2):
            return None
        order = "<" if header[5] == 1 else ">"
        wide = header[4] == 2  # ELFCLASS64
        if wide:
            (table_offset,) = struct.unpack_from(order + "Q", header, 32)
            entry_size, entries = struct.unpack_from(order + "HH", header, 54)
        else:
            (table_offset,) = struct.unpack_from(order + "I", header, 28)
            entry_size, entries = struct.unpack_from(order + "HH", header, 42)
        file.seek(table_offset)
        table = file.read(entry_size * entries)
        for start in range(0, len(table) - entry_size + 1, entry_size):
            if struct.unpack_from(order + "I", table, start)[0] != 3:
                continue
            if wide:
                (offset,) = struct.unpack_from(order + "Q", table, start + 8)
                (size,) = struct.unpack_from(order + "Q", table, start + 32)
            else:
                (offset,) = struct.unpack_from(order + "I", table, start + 4)
                (size,) = struct.unpack_from(order + "I", table, start + 16)
            file.seek(offset)
            return os.fsdecode(file.read(min(size, 4096)).split(b"\0")[0]) or None
    return None


def _within(path: str, roots: Sequence[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def _standard_library() -> list[str]:
    """The real paths of the base interpreter's standard library directories (``stdlib``,
    ``platstdlib``: a virtual environment's sysconfig names its own prefix instead)."""
    base = {
        "base": sys.base_prefix,
        "platbase": sys.base_exec_prefix,
        "installed_base": sys.base_prefix,
        "installed_platbase": sys.base_exec_prefix,
    }
    paths = sysconfig.get_paths(vars=base)
    return sorted({os.path.realpath(paths[key]) for key in ("stdlib", "platstdlib")})


@functools.cache
def _library_directories(packages: tuple[str, ...]) -> tuple[str, ...] | None:
    """The directories of the shared libraries the interpreter, its standard library's
    extension modules and the ``packages``' extension modules load (real paths, outside
    those packages and the standard library); None where they cannot be learnt (no
    ``/proc``, no ``ctypes``)."""
    stdlib = _standard_library()
    objects = glob.glob(os.path.join(glob.escape(stdlib[0]), "lib-dynload", "*.so"))
    for directory in packages:
        objects += glob.glob(os.path.join(glob.escape(directory), "**", "*.so*"), recursive=True)
    try:
        probe = _helper([_interpreter(), "-I", "-S", "-c", _LIBRARY_PROBE, *objects])
    except (OSError, subprocess.SubprocessError):
        return None
    if probe.returncode != 0:
        return None
    own = [*stdlib, *(os.path.realpath(p) for p in packages), _interpreter()]
    mapped = {line for line in os.fsdecode(probe.stdout).splitlines() if os.path.isfile(line)}
    directories = {os.path.dirname(os.path.realpath(p)) for p in mapped if not _within(p, own)}
    if not directories:
        return None
    return tuple(sorted(directories))


def _linker_mount(made: set[str]) -> list[str]:
    """bwrap options putting the dynamic linker at the path the interpreter names
    (``PT_INTERP``), its parent directories resolved on the host (``/lib64`` is a link to
    ``usr/lib64`` on a merged ``/usr``): the file alone, never its directory (on arm64 that
    is ``/lib``, all of ``/usr/lib``; attacker session 7, F1)."""
    linker = _elf_interpreter(_interpreter())
    if not linker:
        return []
    target = os.path.join(os.path.realpath(os.path.dirname(linker)), os.path.basename(linker))
    return _parents_then("--ro-bind", os.path.realpath(linker), target, made)


@functools.cache
def _runtime_mounts(packages: tuple[str, ...]) -> tuple[str, ...] | None:
    """bwrap options giving a read-only view of the interpreter, its standard library and the
    directories of the shared libraries they and ``packages`` (directories of allowed
    packages) load, and nothing else of the machine: not ``/usr`` as a whole, where other
    Python trees lie (a Debian ``dist-packages``, the Google Cloud SDK's bundled Python,
    ...). The top-level ``/lib*`` links of a merged ``/usr`` are kept. Every package directory
    under what is mounted is hidden behind an empty tmpfs. None where the libraries cannot be
    learnt (`_library_directories`): bubblewrap is then not used (`_bubblewrap_works`)."""
    libraries = _library_directories(packages)
    if libraries is None:
        return None
    options: list[str] = []
    for name in ("/lib", "/lib64", "/lib32", "/libx32"):
        if os.path.islink(name):
            options += ["--symlink", os.readlink(name), name]
    roots = [*libraries, *_standard_library()]
    nested = [r for r in roots if _within(r, [o for o in roots if o != r])]
    roots = [r for r in dict.fromkeys(roots) if r not in nested]
    made: set[str] = set()
    for root in roots:
        options += _parents_then("--ro-bind", root, root, made)
    interpreter = _interpreter()
    if not _within(interpreter, roots):
        options += _parents_then("--ro-bind", interpreter, interpreter, made)
    options += _linker_mount(made)
    hidden = _hidden_package_directories(tuple(roots))
    # Not the runtime a submission needs, and holding wheels zipimport can load: the standard
    # library's own copies of pip and setuptools (attacker session 7, F4) and CPython's
    # regression tests with their test data (Debian ships them apart, libpython3-testsuite).
    for directory in _standard_library():
        hidden += [
            os.path.join(directory, "ensurepip", "_bundled"),
            os.path.join(directory, "test"),
        ]
    for directory in hidden:
        if os.path.isdir(directory) and _within(directory, roots):
            options += ["--tmpfs", directory]
    return tuple(options)


def _default_mounts() -> tuple[str, ...] | None:
    """`_runtime_mounts` for a sandbox that may import NumPy only."""
    return _runtime_mounts(tuple(str(p) for p in _package_directories(["numpy"])))


def _package_directories(names: Sequence[str]) -> list[Path]:
    """Installed directories of packages the child may import (NumPy, --allow-import names),
    with their bundled shared libraries (``numpy.libs``)."""
    import importlib.util

    found = []
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is None or not spec.submodule_search_locations:
            if spec is not None and spec.origin and spec.origin.endswith(".py"):
                found.append(Path(spec.origin))  # a single-module package
            continue
        for location in spec.submodule_search_locations:
            directory = Path(location)
            found.append(directory)
            libs = directory.with_name(directory.name + ".libs")
            if libs.is_dir():
                found.append(libs)
    return found


# --------------------------------------------------------------------------------------------
# Watching a run from outside: disk, files held open, memory
# --------------------------------------------------------------------------------------------
#
# The kernel's per-process limits (RLIMIT_FSIZE, RLIMIT_AS) cap one file and one process, not a
# run: 64 processes could each fill files or memory up to its limit. Without root or cgroups
# (a laptop, a Docker grader) no kernel mechanism caps a group of processes, so the checker
# measures the run itself while it waits, every `WATCH_SECONDS`, and stops it over a budget:
# the disk its writable directories use, the deleted-but-open files and memfds its processes
# hold, and its processes' memory. A run can exceed a budget only by what it writes or
# allocates between two measurements.


def _tree_usage(root: Path, max_entries: int, max_depth: int) -> tuple[int, int, str | None]:
    """``(bytes allocated, entries, reason)`` of the directory tree at ``root``; links are not
    followed. ``reason`` names a limit the tree exceeds (counting stops there), else None."""
    total = entries = 0
    stack = [(str(root), 0)]
    while stack:
        directory, depth = stack.pop()
        try:
            iterator = os.scandir(directory)
        except PermissionError:  # a folder of mode 000 hides what is in it (not from root)
            return total, entries, "made a folder the checker cannot read"
        except OSError:  # removed, or replaced by a link meanwhile
            continue
        with iterator:
            for entry in iterator:
                entries += 1
                if entries > max_entries:
                    return total, entries, f"made more than {max_entries} files"
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                total += info.st_blocks * 512
                if entry.is_dir(follow_symlinks=False):
                    if depth + 1 > max_depth:
                        return total, entries, f"made directories more than {max_depth} deep"
                    stack.append((entry.path, depth + 1))
    return total, entries, None


def _stat_of(pid: int | str) -> list[bytes] | None:
    """The fields of ``/proc/PID/stat`` after the command name (the state first, then the
    parent's pid...), or None (no such process; no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    return raw.rsplit(b")", 1)[1].split() if b")" in raw else None


def _state_of(pid: int | str) -> bytes | None:
    fields = _stat_of(pid)
    return fields[0] if fields else None


def _uid_of(pid: int | str) -> int | None:
    """The effective uid of a process: the owner of its ``/proc/PID`` directory, which the
    kernel keeps the process's even when it is not dumpable (``task_dump_owner``: only the
    files inside then belong to root); None if it is gone."""
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def _remove_tree(root: Path) -> None:
    """Delete a run's scratch directory, whatever modes the submission left in it: a folder
    it made unreadable or unwritable (mode 000) is opened up and deleted too (attack finding F8,
    session 6: otherwise its files stayed on the instructor's disk). Called once every process
    of the run is gone; links are never followed."""

    def open_up(function, path, error):
        if isinstance(error[1], FileNotFoundError):  # gone already
            return
        for folder in (os.path.dirname(path), path):
            with contextlib.suppress(OSError):
                if stat.S_ISDIR(os.lstat(folder).st_mode):
                    os.chmod(folder, 0o700)
        with contextlib.suppress(OSError, RecursionError):
            if function in (os.rmdir, os.unlink):
                function(path)
            else:  # it could not be listed: again, now that it can
                shutil.rmtree(path, onerror=open_up)

    shutil.rmtree(root, onerror=open_up)


def _processes_of(top: int, uid: int | None) -> list[int]:
    """Processes of a run: ``top`` and its descendants, and every process of ``uid`` (a uid of
    the run's own), from ``/proc`` (empty where there is none); zombies included."""
    parents: dict[int, list[int]] = {}
    found = set()
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        fields = _stat_of(name) if name.isdigit() else None
        if fields is None:
            continue
        if uid is not None and _uid_of(name) == uid:
            found.add(int(name))
        # Zombies too: a "Z" thread-group leader may have live threads (`_running`), and what
        # it started is below it.
        parents.setdefault(int(fields[1]), []).append(int(name))
    stack, visited = [top], set()
    while stack:
        pid = stack.pop()
        if pid not in visited:
            visited.add(pid)
            stack += parents.get(pid, [])
    return sorted(found | visited)


def _held_files(pids: Sequence[int], seen: set[tuple[int, int]]) -> int:
    """Bytes of the deleted files and memfds the processes hold open or mapped (invisible in
    any directory; each counted once)."""
    total = 0
    for pid in pids:
        try:
            descriptors = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            descriptors = []
        for descriptor in descriptors:
            try:
                info = os.stat(f"/proc/{pid}/fd/{descriptor}")
            except OSError:
                continue
            key = (info.st_dev, info.st_ino)
            if stat.S_ISREG(info.st_mode) and info.st_nlink == 0 and key not in seen:
                seen.add(key)
                total += info.st_blocks * 512
        total += _mapped_deleted_files(pid, seen)
    return total


def _mapped_deleted_files(pid: int, seen: set[tuple[int, int]]) -> int:
    """Bytes of the deleted files (and memfds) ``pid`` has mapped, whether or not it still
    holds a descriptor: a mapping alone keeps a file's blocks (attack finding F16, session 6).
    Each file's allocated size where ``/proc/PID/map_files`` may be read (root), else the
    length of its largest mapping."""
    mapped: dict[tuple[int, int], int] = {}
    try:
        with open(f"/proc/{pid}/maps", "rb") as handle:
            lines = [line for line in handle if line.rstrip().endswith(b" (deleted)")]
    except OSError:
        return 0
    for line in lines:
        try:
            span, _mode, _offset, device, inode = line.split(maxsplit=5)[:5]
            start, end = span.split(b"-")
            major, minor = device.split(b":")
            key = (os.makedev(int(major, 16), int(minor, 16)), int(inode))
        except ValueError:
            continue
        if key in seen or key[1] == 0:
            continue
        try:
            info = os.stat(f"/proc/{pid}/map_files/{span.decode()}")
            size = info.st_blocks * 512 if stat.S_ISREG(info.st_mode) else 0
            key = (info.st_dev, info.st_ino)
        except OSError:  # not root: the mapping's length
            size = int(end, 16) - int(start, 16)
        mapped[key] = max(mapped.get(key, 0), size)
    seen.update(mapped)
    return sum(mapped.values())


def _memory_of(pids: Sequence[int]) -> int:
    """Bytes of memory the processes use together: the sum of their proportional set sizes
    (``Pss`` in ``/proc/PID/smaps_rollup``: a page shared by n of them counts 1/n in each, so
    NumPy's pages, shared by every forked worker, count once), else of their resident sizes."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
                for line in handle:
                    if line.startswith(b"Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
            continue
        except (OSError, ValueError, IndexError):
            pass
        try:
            with open(f"/proc/{pid}/statm", "rb") as handle:
                total += int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    return total


def _cpu_seconds_of(pids: Sequence[int]) -> float:
    """Processor seconds the processes used, each with its threads and the children it waited
    for (``utime + stime + cutime + cstime`` of ``/proc/PID/stat``): summed over every live
    process of a run, the time of all its processes, ended ones included (a reaped process's
    time is in its reaper's ``cutime``, and the run's reapers are its own processes)."""
    ticks = 0
    for pid in pids:
        fields = _stat_of(pid) or []
        with contextlib.suppress(ValueError):
            ticks += sum(int(field) for field in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def _supervisor_chain(top: int) -> tuple[list[int], bool]:
    """``top`` and, under bubblewrap, its only child down to the first process that is not
    ``bwrap`` (the child script, the in-sandbox supervisor); and whether that process was
    reached (bubblewrap may still be starting). Linux ``/proc``."""
    chain, pid = [top], top
    for _depth in range(4):
        try:
            with open(f"/proc/{pid}/comm", "rb") as handle:
                if handle.read().strip() != b"bwrap":
                    return chain, True
            with open(f"/proc/{pid}/task/{pid}/children", "rb") as handle:
                children = handle.read().split()
        except OSError:
            return chain, False
        if len(children) != 1:
            return chain, False
        pid = int(children[0])
        chain.append(pid)
    return chain, False


class _Watch:
    """Measures one run against its budgets; `over` says which one it exceeds.

    ``cpu_seconds`` is the run's processor-time budget, counted over all its processes
    (`_cpu_seconds_of`), helpers that left the workers' sessions included; `out_of_time` says
    when it is used up, or when the supervisor was stopped (a submission shares its uid and can
    ``SIGSTOP`` it, which would stop every clock inside the sandbox). Both return
    ``(why in words, limit)`` (the words of `Sandbox.stopped_because` and
    `Sandbox.stopped_limit`), or None."""

    def __init__(
        self,
        top: int,
        uid: int | None,
        directories: Sequence[Path],
        memory_bytes: int,
        cpu_seconds: float = float("inf"),
    ):
        self.top, self.uid, self.directories = top, uid, list(directories)
        self.memory_bytes = memory_bytes
        self.cpu_seconds, self.cpu_used = cpu_seconds, 0.0
        self.pids: list[int] = []
        self.chain: list[int] | None = None

    def out_of_time(self) -> tuple[str, str] | None:
        """Why the run must be stopped now and its unfinished tasks count as timed out, or
        None: its supervisor is stopped ("supervisor"), or its processes used up the run's
        processor time ("cpu")."""
        chain = self.chain
        if chain is None:
            chain, reached = _supervisor_chain(self.top)
            if reached:
                self.chain = chain
        if any(_state_of(pid) in (b"T", b"t") for pid in chain):
            why = "the submission stopped the sandbox's supervisor: the checker stopped the run"
            return why, "supervisor"
        self.pids = _processes_of(self.top, self.uid)
        # The largest sum seen: a process between its end and its reaping counts nowhere.
        self.cpu_used = max(self.cpu_used, _cpu_seconds_of(self.pids))
        if self.cpu_used > self.cpu_seconds:
            why = (
                f"the run's processes together used more than {self.cpu_seconds:g} s of "
                f"processor time: the checker stopped it"
            )
            return why, "cpu"
        return None

    def over(self) -> tuple[str, str] | None:
        """Why the run must be stopped over its disk or memory budget ("budget"), or None."""
        total = entries = 0
        for directory in self.directories:
            size, count, reason = _tree_usage(directory, MAX_RUN_ENTRIES - entries, MAX_RUN_DEPTH)
            if reason is not None:
                return f"the run {reason}: the checker stopped it", "budget"
            total, entries = total + size, entries + count
        pids = self.pids or _processes_of(self.top, self.uid)
        total += _held_files(pids, set())
        if total > MAX_RUN_BYTES:
            why = f"the run wrote more than {MAX_RUN_BYTES // 2**20} MiB of files"
        elif _memory_of(pids) > self.memory_bytes:
            why = (
                f"the run's processes together used more than {self.memory_bytes // 2**20} MiB "
                f"of memory"
            )
        else:
            return None
        return f"{why}: the checker stopped it", "budget"


# --------------------------------------------------------------------------------------------
# Running one job
# --------------------------------------------------------------------------------------------


def _environment() -> dict[str, str]:
    # One BLAS thread per process: several run at once, and thread pools would oversubscribe the
    # cores and reserve address space against the memory limit. Nothing else of ours is passed.
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "1"
    if sys.platform == "darwin":
        env["DYLD_LIBRARY_PATH"] = os.environ.get("DYLD_LIBRARY_PATH", "")
    return env


def _debug_stream():
    """Where the sandbox's standard error goes: nowhere, unless ``$TINYCNN_SANDBOX_STDERR``
    names a file (a debugging aid for the checker's developers)."""
    path = os.environ.get("TINYCNN_SANDBOX_STDERR")
    return open(path, "ab") if path else subprocess.DEVNULL


def _kill_group(pid: int) -> None:
    kill_signal = getattr(signal, "SIGKILL", signal.SIGTERM)
    for kill in (getattr(os, "killpg", None), os.kill):
        if kill is None:
            continue
        try:
            kill(pid, kill_signal)
        except (ProcessLookupError, PermissionError, OSError):
            pass


def _stop_then_kill(find, key) -> None:
    """SIGSTOP every process ``find(key)`` lists, again until no new one appears (a stopped
    process cannot fork), then SIGKILL them all."""
    stopped: set[int] = set()
    for _round in range(100):
        found = set(find(key)) - stopped
        if not found:
            break
        for pid in found:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGSTOP)
        stopped |= found
    for pid in stopped:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _kill_tree(top: int) -> None:
    """Kill ``top`` and every process below it (Linux ``/proc``; elsewhere ``top`` only)."""
    _stop_then_kill(lambda pid: _processes_of(pid, None), top)


def _kill_uid(uid: int) -> None:
    """Kill every process of ``uid`` (root only): whatever a sandbox left, wherever it hid.

    ``kill -9 -1`` run as that uid signals every process the uid may signal, its own,
    at once (no process can fork away between a listing and the kill). The uid switch happens
    in the new process before it executes ``kill`` (``subprocess``'s ``user``), not in a forked
    copy of this threaded process: a fork here once froze OpenBLAS threads of the checker."""
    binary = shutil.which("kill", path="/usr/bin:/bin")
    # A killed process may still be finishing a write: wait until none is left (the scratch
    # directory is removed next).
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if binary is None:  # no procps (a minimal image): stop them all, then kill them
            _stop_then_kill(_live_processes_of, uid)
        else:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(
                    [binary, "-9", "-1"],
                    user=uid,
                    group=uid,
                    extra_groups=[],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=30,
                    check=False,
                )
        if not _live_processes_of(uid):
            return
        time.sleep(0.01)


def _running(pid: int | str) -> bool:
    """Whether a process may still run code: it exists and is not a zombie, or is a zombie
    thread-group leader with other threads (its main thread ended alone, ``SYS_exit``: attack
    finding F1, session 5). Linux ``/proc``."""
    state = _state_of(pid)
    if state != b"Z":
        return state is not None
    try:
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except OSError:
        return False


def _wait_until_gone(pids: Sequence[int], seconds: float = 5.0) -> None:
    """Wait until none of ``pids`` is a live process (true zombies count as gone; Linux)."""
    deadline = time.monotonic() + seconds
    pending = list(pids)
    while pending and time.monotonic() < deadline:
        pending = [pid for pid in pending if _running(pid)]
        if pending:
            time.sleep(0.01)


def _live_processes_of(uid: int) -> list[int]:
    """Pids of the processes of ``uid`` (`_uid_of`) that may still run code (`_running`;
    Linux ``/proc``; else empty)."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    return [int(n) for n in names if n.isdigit() and _uid_of(n) == uid and _running(n)]


@dataclass
class UidClaim:
    """A sandbox uid this process holds (`claim_uid`): its lock file, locked, until released."""

    uid: int
    fd: int
    path: Path

    def release(self) -> None:
        """Give the uid back: remove the lock file while holding its lock, then let go."""
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            os.close(self.fd)


def claim_uid(directory: Path | None = None, attempts: int = 1000) -> UidClaim:
    """A uid of `UID_BASE` + [0, `UID_RANGE`) that no other sandbox on this machine uses.

    Every checker (terminals, Dask workers) claims its sandboxes' uids here: one file per uid in
    ``directory`` (`UID_CLAIMS`, root's), locked with ``flock`` for as long as the run lasts (the
    kernel drops the lock if the checker dies), and a uid with a live process (one a crashed
    checker left) is never taken. Two runs never share a uid, so the end of one (which kills
    every process of its uid) never kills another's processes. Root only.

    Raises
    ------
    SandboxUnavailable
        If no uid could be claimed (``attempts`` random tries).
    """
    import fcntl
    import secrets

    directory = UID_CLAIMS if directory is None else directory
    with contextlib.suppress(FileExistsError):
        directory.mkdir(mode=0o700, parents=True)
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise SandboxUnavailable(f"{directory} is not a private directory of this user")
    for _attempt in range(attempts):
        uid = UID_BASE + secrets.randbelow(UID_RANGE)
        path = directory / str(uid)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # Locked, but maybe a file another checker has just removed: only the one at the path
            # counts.
            if os.fstat(fd).st_ino == os.lstat(path).st_ino and not _live_processes_of(uid):
                return UidClaim(uid, fd, path)
        except OSError:  # held by another checker, or gone meanwhile
            pass
        os.close(fd)
    raise SandboxUnavailable(f"no free sandbox uid in {directory} after {attempts} tries")


def _byte_bounds(array: np.ndarray) -> tuple[int, int]:
    bounds = getattr(getattr(np.lib, "array_utils", None), "byte_bounds", None)
    return (bounds or np.byte_bounds)(array)  # noqa: NPY201 (np.byte_bounds before NumPy 2.0)


def pack_arrays(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Arrays as four ``.npz`` entries that keep each array's memory layout (Fortran order,
    negative strides, views with gaps): ``data`` (uint8), the raw bytes each array spans, one
    after the other; ``names`` and ``dtypes`` (strings); and ``layout`` (int64, one row per
    array: ``[offset in data, bytes, start, ndim, *shape, *strides]``, zero-padded). The child
    rebuilds the same strided views (``child.unpack_arrays``). Four entries however many arrays:
    writing and reading thousands of small ``.npz`` members cost more than the grading."""
    import ctypes

    names, dtypes, rows, chunks, offset = [], [], [], [], 0
    for name, array in arrays.items():
        array = np.asarray(array)
        if array.size == 0 or array.dtype.hasobject:
            array = np.ascontiguousarray(array)
            raw, start = array.tobytes(), 0
        else:
            low, high = _byte_bounds(array)
            raw = ctypes.string_at(low, high - low)
            start = array.__array_interface__["data"][0] - low
        names.append(name)
        dtypes.append(array.dtype.str)
        rows.append([offset, len(raw), start, array.ndim, *array.shape, *array.strides])
        chunks.append(raw)
        offset += len(raw)
    layout = np.zeros((len(rows), max(map(len, rows), default=4)), dtype=np.int64)
    for index, row in enumerate(rows):
        layout[index, : len(row)] = row
    return {
        "data": np.frombuffer(b"".join(chunks), dtype=np.uint8),
        "names": np.array(names, dtype=str),
        "dtypes": np.array(dtypes, dtype=str),
        "layout": layout,
    }


def frame_inputs(files: dict[str, bytes]) -> list[bytes]:
    """What the checker writes on the child's standard input (read by
    ``child.receive_inputs``): the length of a JSON header (8 bytes, little-endian), the header
    ``[[file name, bytes], ...]``, then each file's bytes in that order."""
    header = json.dumps([[name, len(data)] for name, data in files.items()]).encode()
    return [len(header).to_bytes(8, "little"), header, *files.values()]


def _send(stream, chunks: Sequence[bytes]) -> None:
    """Write ``chunks`` to ``stream`` and close it; a child that died first is no error."""
    try:
        for chunk in chunks:
            stream.write(chunk)
        stream.flush()
    except (BrokenPipeError, OSError, ValueError):
        pass
    finally:
        with contextlib.suppress(OSError, ValueError):
            stream.close()


def pack_inputs(arrays: dict[str, np.ndarray]) -> bytes:
    """The ``.npz`` file of `pack_arrays`, as bytes: what `Sandbox.run` writes for ``arrays``
    (a caller grading many submissions on the same inputs packs them once)."""
    buffer = io.BytesIO()
    np.savez(buffer, **pack_arrays(arrays))
    return buffer.getvalue()


@dataclass
class Task:
    """One process of a sandbox run, as the child reads it from the job.

    ``name`` is also its result subdirectory. ``function`` and ``calls`` for a contract
    function (each call: ``file`` (an ``.npz`` of inputs), ``names``, ``args``, ``kwargs``);
    ``train`` for the training run; ``gate`` for the probe: no process of its own, its
    directory receives the import's record and the import's status (the other tasks run only if
    the submission imports).
    """

    name: str
    function: str | None = None
    calls: list[dict] | None = None
    train: dict | None = None
    gate: bool = False

    def as_job(self) -> dict:
        job = {"name": self.name, "gate": self.gate}
        if self.function is not None:
            job["function"], job["calls"] = self.function, self.calls or []
        if self.train is not None:
            job["train"] = self.train
        return job


class Sandbox:
    """Runs tasks of one submission at one isolation level, with its limits.

    Parameters
    ----------
    limits : Limits
    isolation : str, optional
        A level of `ISOLATION_LEVELS`; default: the best available (`isolation_level`).
    allowed_imports : sequence of str
        Top-level modules the submission may import (the standard library, NumPy and the
        ``--allow-import`` names); anything else imports as a placeholder.
    extra_packages : sequence of str
        Installed packages to make visible besides NumPy (``--allow-import`` names).

    The submission is imported once per run; every task then runs at the same time, in a
    process forked from the imported one (see :mod:`tinycnn.grading.child`).
    """

    def __init__(
        self,
        limits: Limits,
        isolation: str | None = None,
        *,
        allowed_imports: Sequence[str] = (),
        extra_packages: Sequence[str] = (),
    ):
        self.limits = limits
        self.isolation = isolation_level(isolation)
        self.network = network_access(self.isolation)
        self.allowed = sorted(allowed_imports)
        self.packages = _package_directories(["numpy", *extra_packages])
        #: Wall-clock seconds this sandbox's runs took so far (`Limits.total_seconds` bounds it).
        self.seconds_spent = 0.0
        #: Why the last run was stopped before its supervisor ended, or None.
        self.stopped_because: str | None = None
        #: The same as a word: "wall" (its deadline or `Limits.total_seconds`), "cpu" (its
        #: processor-time budget), "supervisor" (stopped by the submission), "budget" (disk,
        #: memory); None if it was not stopped.
        self.stopped_limit: str | None = None

    @contextlib.contextmanager
    def run(
        self,
        submission: Path,
        tasks: Sequence[Task],
        inputs: dict[str, dict[str, np.ndarray] | bytes],
        functions: Sequence[str],
        *,
        student_modules: Sequence[str] = (),
        api: str = "tinycnn",
        root: Path | None = None,
        read_files: Sequence[str] | None = None,
    ) -> Iterator[tuple[ResultDirectory, bool]]:
        """Run ``tasks`` on a private copy of ``submission``; yield ``(results, finished)``.

        ``submission`` is the student's entry module, alone in a folder with the student's other
        modules (``student_modules``, which may import each other); the whole folder is copied.
        ``api`` names the course API the child calls through the checker's adapter. ``root``
        is the student's top folder when the entry sits below it (``hw/layers.py``); default
        the entry's own folder. ``read_files`` are the paths (relative to that folder, with
        ``/``) of the student's files the import rule reads (default: the entry alone); at level
        uid the child imports beforehand, as root, only allowed modules these files name, never
        one only a set-aside file names (`child.NEVER_PRELOADED` never).
        ``inputs`` maps each ``.npz`` file name used by the tasks to its arrays (or to the bytes
        `pack_inputs` made of them); the checker writes them before the sandbox starts.
        ``finished`` is False if the checker stopped the whole run before its supervisor ended;
        `stopped_because` and `stopped_limit` then say why (else both are None); over a disk or
        memory budget, every read of the results is refused with that reason. Every process of
        the run has ended before this yields, and the scratch directory is deleted afterwards.
        """
        scratch = Path(tempfile.mkdtemp(prefix="tinycnn-check-"))
        claim = None
        try:
            job_dir, out_dir, work_dir = scratch / "job", scratch / "out", scratch / "work"
            for directory in (job_dir, out_dir, work_dir):
                directory.mkdir(mode=0o700)
            submission = Path(submission)
            # Links in the student's folder are copied as links, never followed.
            root = Path(root) if root is not None else submission.parent
            shutil.copytree(root, job_dir / "student", symlinks=True)
            entry = (job_dir / "student" / submission.relative_to(root)).relative_to(job_dir)
            # The inputs never touch the disk before the import is over: the child reads them
            # from its standard input (`child.receive_inputs`).
            packed = {
                name: arrays if isinstance(arrays, bytes) else pack_inputs(arrays)
                for name, arrays in inputs.items()
            }
            uid = gid = None
            if self.isolation in ("bubblewrap", "uid") and _is_root():
                claim = claim_uid()
                uid = gid = claim.uid
            boxed, chrooted = self.isolation == "bubblewrap", self.isolation == "uid"
            # Paths as the child sees them: bubblewrap's mounts; at level uid, inside the
            # scratch directory, which becomes the child's root (``chroot``).
            inside = "" if chrooted else str(scratch)
            job = {
                "submission": f"{BOX_JOB}/{entry}" if boxed else f"{inside}/job/{entry}",
                "submission_dir": f"{BOX_JOB}/student" if boxed else f"{inside}/job/student",
                "student_modules": list(student_modules),
                "read_files": (
                    list(read_files)
                    if read_files is not None
                    else [submission.relative_to(root).as_posix()]
                ),
                "api": api,
                "adapter": BOX_ADAPTER if boxed else str(ADAPTER_SCRIPT),
                "out": BOX_OUT if boxed else f"{inside}/out",
                "work": "/tmp" if boxed else f"{inside}/work",
                "site": [BOX_SITE] if boxed else sorted({str(p.parent) for p in self.packages}),
                "chroot": str(scratch) if chrooted else None,
                "uid": uid,
                "gid": gid,
                "allowed": self.allowed,
                "functions": list(functions),
                "tasks": [task.as_job() for task in tasks],
                "limits": {
                    "timeout": self.limits.timeout,
                    "train_timeout": self.limits.train_timeout,
                    "wall_factor": WALL_FACTOR,
                    "memory_bytes": int(self.limits.memory_mb) * 2**20,
                    "file_bytes": MAX_FILE_BYTES,
                    "open_files": MAX_OPEN_FILES,
                    "nproc": MAX_PROCESSES,
                    "cpu_seconds": int(self._deadline(tasks)) + 10,
                },
            }
            (job_dir / "job.json").write_text(json.dumps(job))
            self._open_up(scratch, job_dir, out_dir, work_dir, uid)
            self._execute(scratch, job_dir, out_dir, uid, tasks, packed)
            # Over a disk or memory budget, every task's files are refused; out of time, the
            # unfinished tasks count as timed out and what ended stands.
            refused = self.stopped_because if self.stopped_limit == "budget" else None
            with ResultDirectory(out_dir, refused=refused) as results:
                yield results, self.stopped_limit is None
        finally:
            _remove_tree(scratch)
            if claim is not None:  # its processes are gone (`_execute`): the uid is free again
                claim.release()

    def _deadline(self, tasks: Sequence[Task]) -> float:
        """Seconds the whole run may take, whatever the submission does: start-up, the import
        (wall-clock cap), forking the workers (one ``timeout``), then the longest task's
        wall-clock cap (every task runs at once), and 5 s to spare. With the default limits
        30 + 30 + 10 + 30 + 5 = 105 s for the functions' run."""
        limits = self.limits
        runs = [
            limits.train_timeout if task.train else WALL_FACTOR * limits.timeout
            for task in tasks
            if not task.gate
        ]
        importing = WALL_FACTOR * limits.timeout + limits.timeout
        return limits.startup_timeout + importing + max(runs, default=0.0) + 5

    def _cpu_budget(self, tasks: Sequence[Task]) -> float:
        """Processor seconds all processes of the run may use together: the import's limit,
        the start's, each task's (``train_timeout`` for training) and `STARTUP_CPU_SECONDS`.
        Counted by the checker over every process of the run (`_Watch`), so work handed to
        helpers that left the workers' sessions is counted too. With the default limits
        3 + 10 + 10 + 9 x 10 = 113 s for the functions' run."""
        limits = self.limits
        runs = [limits.train_timeout if task.train else limits.timeout for task in tasks]
        return STARTUP_CPU_SECONDS + 2 * limits.timeout + sum(runs)

    def _wall_left(self) -> float:
        """Seconds left of the submission's wall-clock budget (`Limits.total_seconds`)."""
        return self.limits.total_seconds - self.seconds_spent

    def _open_up(self, scratch: Path, job_dir: Path, out_dir: Path, work_dir: Path, uid) -> None:
        """Let the sandbox's uid read the job and write its result and work directories.

        At level uid the scratch directory is the child's root and private to the run's uid
        (mode 0700): no other uid, a classmate's sandbox included, can enter it. The job stays
        root's, read-only to the child."""
        if self.isolation == "uid":
            os.chown(scratch, uid, uid)
            scratch.chmod(0o700)
        else:
            scratch.chmod(0o711)
        for root, _dirs, files in os.walk(job_dir):
            os.chmod(root, 0o755)
            for name in files:
                os.chmod(os.path.join(root, name), 0o644)
        if uid is not None:
            for directory in (out_dir, work_dir):
                os.chown(directory, uid, uid)

    def _command(self, job_dir: Path, out_dir: Path, work_dir: Path) -> list[str]:
        if self.isolation != "bubblewrap":
            return [_interpreter(), "-I", "-S", "-B", str(CHILD_SCRIPT), str(job_dir / "job.json")]
        made: set[str] = set()
        # `_default_mounts` worked (`_bubblewrap_works`); a probe of the extra packages that
        # failed leaves those packages' own libraries out, and only their import fails.
        mounts = _runtime_mounts(tuple(map(str, self.packages))) or _default_mounts() or ()
        command = [shutil.which("bwrap") or "bwrap", *_namespace_options(), *mounts]
        for directory in self.packages:
            command += _parents_then(
                "--ro-bind", str(directory), f"{BOX_SITE}/{directory.name}", made
            )
        command += _parents_then("--ro-bind", str(CHILD_SCRIPT), BOX_CHILD, made)
        command += _parents_then("--ro-bind", str(ADAPTER_SCRIPT), BOX_ADAPTER, made)
        command += _parents_then("--ro-bind", str(job_dir), BOX_JOB, made)
        command += _parents_then("--bind", str(out_dir), BOX_OUT, made)
        # Nothing writable may be RAM or disk the checker does not count: /dev (a tmpfs that
        # bubblewrap makes writable in a user namespace, /dev/shm included) is made read-only,
        # and /tmp is the run's work directory on the host, which `_Watch` measures with the
        # results. A tmpfs with --size would cap bytes but not files: each empty file is kernel
        # memory.
        command += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"]
        command += _parents_then("--bind", str(work_dir), "/tmp", made)
        command += ["--chdir", "/tmp"]
        command += ["--", _interpreter(), "-I", "-S", "-B", BOX_CHILD, f"{BOX_JOB}/job.json"]
        return command

    def _execute(
        self, scratch: Path, job_dir: Path, out_dir: Path, uid, tasks, inputs: dict[str, bytes]
    ) -> None:
        """Start the sandbox, send it ``inputs`` (file name -> ``.npz`` bytes) on its standard
        input (`frame_inputs`), watch it up to the deadline, then make sure all of it is gone.
        If the checker stopped the run before its supervisor ended, `stopped_because` and
        `stopped_limit` say why (else both are None)."""
        work_dir = scratch / "work"
        process = subprocess.Popen(
            self._command(job_dir, out_dir, work_dir),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=_debug_stream(),
            cwd=work_dir,
            env=_environment(),
            start_new_session=True,
        )
        sender = threading.Thread(
            target=_send, args=(process.stdin, frame_inputs(inputs)), daemon=True
        )
        sender.start()
        # At level uid the run owns its whole root (the scratch directory), so all of it counts.
        watched = [scratch] if self.isolation == "uid" else [out_dir, work_dir]
        watch = _Watch(
            process.pid,
            uid,
            watched,
            int(self.limits.memory_mb) * 2**20,
            cpu_seconds=self._cpu_budget(tasks),
        )
        # The run's own deadline, and what is left of the submission's: whichever comes first.
        # Both are kept here, outside the sandbox, where the submission cannot stop the clock.
        started = time.monotonic()
        own, left = self._deadline(tasks), self._wall_left()
        deadline = started + max(0.0, min(own, left))
        stop = None  # (why in words, which limit) once the checker stops the run
        try:
            while True:
                try:
                    process.wait(timeout=min(WATCH_SECONDS, max(0.0, deadline - time.monotonic())))
                    break
                except subprocess.TimeoutExpired:
                    pass
                if time.monotonic() >= deadline:
                    spent = (
                        f"the run took more than its {own:g} s"
                        if own <= left
                        else f"the submission's runs took more than {self.limits.total_seconds:g} s"
                    )
                    stop = f"{spent} of wall-clock time: the checker stopped it", "wall"
                else:
                    stop = watch.out_of_time() or watch.over()
                if stop is not None:
                    break
        finally:
            self.seconds_spent += time.monotonic() - started
            # Killing is asynchronous (bubblewrap's namespace dies after bwrap): the scratch
            # directory is removed only once the run's processes are gone, or one still
            # writing could leave files behind.
            left = _processes_of(process.pid, uid)
            if self.isolation == "process":  # the workers run in sessions of their own
                _kill_tree(process.pid)
            _kill_group(process.pid)
            process.wait()
            sender.join(timeout=5)  # the pipe's reader is gone: the sender has ended
            if uid is not None and self.isolation == "uid":
                _kill_uid(uid)
            _wait_until_gone(left)
            if uid is not None:  # forked after the listing: they die with the namespace
                _wait_until_gone(_live_processes_of(uid))
            self.stopped_because, self.stopped_limit = stop or (None, None)
