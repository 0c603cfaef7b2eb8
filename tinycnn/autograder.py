"""``tinycnn autograder``: the zip Gradescope needs to grade submissions with ``tinycnn check``.

Gradescope's contract (https://gradescope-autograders.readthedocs.io/en/latest/specs/): the zip
holds ``setup.sh`` and ``run_autograder`` at its root. ``setup.sh`` runs once, as root on an
Ubuntu image, when Gradescope builds the autograder image; the zip's contents are then in
``/autograder/source``. For every submission Gradescope puts the student's files in
``/autograder/submission``, runs ``/autograder/run_autograder`` (a copy of the zip's) with
``/autograder`` as the working directory, and reads ``/autograder/results/results.json``; the
script's output goes to the instructor only.

The zip built here holds:

- ``setup.sh``: apt installs Python and bubblewrap (the sandbox of ``tinycnn check``), a virtual
  environment at ``/autograder/venv`` gets the CPU build of PyTorch from PyTorch's CPU wheel
  index, then this project from the wheel inside the zip (so the image grades with exactly the
  version the instructor tested; nothing is fetched from a repository at grading time);
- ``run_autograder``: runs ``python -m tinycnn.autograder`` (:func:`run`), and if even that
  cannot start, writes a failed ``results.json`` itself: Gradescope always gets a file;
- ``tinycnn_autograder.json``: the options for ``tinycnn check`` chosen at build time;
- the wheel.

:func:`run` grades the submission folder with ``tinycnn check --gradescope`` in a child process
(the one file of a one-file upload; the sub-folder of a zipped folder, see `_submission_target`;
an upload holding a symbolic link is refused, links are never followed) and, whatever goes
wrong (no submission, a usage error such as an unreadable notebook, a crash, a time-out),
writes a failed result whose ``output`` tells the student what happened, in words a student
can act on (`STUDENT_ADVICE`).

Two environment variables exist for testing the bundle outside Gradescope:
``TINYCNN_GRADESCOPE_ROOT`` replaces ``/autograder`` and ``TINYCNN_GRADESCOPE_PYTHON`` replaces
``/autograder/venv/bin/python``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

from tinycnn.cli import CommandError, check_output_file

__all__ = [
    "CONFIG_NAME",
    "DEFAULT_TIME_LIMIT",
    "ROOT_VARIABLE",
    "build_bundle",
    "failed_results",
    "register",
    "run",
]

ROOT_VARIABLE = "TINYCNN_GRADESCOPE_ROOT"
PYTHON_VARIABLE = "TINYCNN_GRADESCOPE_PYTHON"
DEFAULT_ROOT = "/autograder"
CONFIG_NAME = "tinycnn_autograder.json"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: Seconds the grading may take before it is stopped and a failed result is written. Below
#: Gradescope's default limit of 10 minutes, so the student gets a message, not a time-out.
DEFAULT_TIME_LIMIT = 540.0
#: Options of `tinycnn check` a bundle may not carry (by argparse destination, so that an
#: abbreviation such as ``--se`` for ``--seed`` is caught too), and why.
REFUSED_OPTIONS = {
    "gradescope": "--gradescope is set by the autograder itself; leave it out",
    "json": "--json is not read on Gradescope; leave it out",
    "csv": "--csv applies to a folder of submissions; Gradescope grades one; leave it out",
    "jobs": "--jobs applies to a folder of submissions; Gradescope grades one; leave it out",
    "scheduler": "--scheduler applies to a folder of submissions; Gradescope grades one; "
    "leave it out",
    "case": "--case runs one case and writes no results.json, so every student would get 0; "
    "leave it out",
    "seed": "--seed would give every student, and every resubmission, the same hidden cases (a "
    "result prints its seed, so a student could then compute them); leave it out: each "
    "submission gets a fresh seed",
}
EXECUTABLE = 0o755
#: The time stamped on every file of the zip and of the wheel built for it, in seconds since
#: 1970 (2020-01-01 00:00 UTC), unless ``SOURCE_DATE_EPOCH`` says otherwise: two builds of one
#: checkout give byte-identical zips (reproducible-builds.org's convention, which the wheel's
#: builder honours too).
DEFAULT_SOURCE_DATE_EPOCH = 1577836800
#: ZIP's clock starts in 1980 (its DOS date fields cannot hold an earlier time).
_ZIP_EPOCH = 315532800

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder image (Ubuntu);
# the zip's contents are in /autograder/source. Written by `tinycnn autograder`.
set -euxo pipefail
cd "$(dirname "$0")"

export DEBIAN_FRONTEND=noninteractive
apt-get update
# bubblewrap: the sandbox in which `tinycnn check` runs the student's code; procps: `kill`,
# with which the checker ends every process of a run where namespaces are blocked (level uid).
apt-get install -y --no-install-recommends python3 python3-venv python3-pip bubblewrap procps
# tinycnn needs Python 3.11 or newer (Ubuntu 24.04's python3 is 3.12; 22.04 has python3.11).
python=python3
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  apt-get install -y --no-install-recommends python3.11 python3.11-venv
  python=python3.11
fi

"$python" -m venv /autograder/venv
/autograder/venv/bin/python -m pip install --upgrade pip
# The CPU build of PyTorch first: PyPI's default Linux build is a multi-GB CUDA build.
/autograder/venv/bin/python -m pip install {torch_requirement} --index-url {torch_index}
/autograder/venv/bin/python -m pip install ./{wheel}
/autograder/venv/bin/tinycnn --version
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission (working directory /autograder): grade
# /autograder/submission, write /autograder/results/results.json. Written by `tinycnn autograder`.
root="${{{root_variable}:-{default_root}}}"
python="${{{python_variable}:-{default_root}/venv/bin/python}}"
export {root_variable}="$root"
mkdir -p "$root/results"
"$python" -m tinycnn.autograder
if [ ! -s "$root/results/results.json" ]; then
  # Even Python could not run: still give Gradescope, and so the student, a result.
  printf '%s\\n' '{fallback}' > "$root/results/results.json"
fi
exit 0
"""


# ------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------


def failed_results(message: str, seconds: float = 0.0) -> dict:
    """A Gradescope ``results.json`` that fails the submission and says why.

    One failed test carries the message, so it shows up where students look for test results;
    the total ``score`` is 0. Field names are Gradescope's (score, execution_time, output,
    output_format, tests[].status).
    """
    return {
        "score": 0.0,
        "execution_time": round(seconds, 3),
        "output": message,
        "output_format": "text",
        "tests": [
            {
                "name": "autograder",
                "score": 0.0,
                "status": "failed",
                "output": message,
                "output_format": "text",
                "visibility": "visible",
            }
        ],
    }


_FALLBACK = json.dumps(
    failed_results(
        "The autograder could not start its Python environment, so your submission was not "
        "graded. Please tell your instructor."
    )
)


def _valid_results(path: Path) -> bool:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and ("score" in document or "tests" in document)


def _write_results(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------------------
# Grading one submission (run_autograder)
# ------------------------------------------------------------------------------------------


def _scan(folder: Path) -> tuple[list[str], list[str]]:
    """The regular files under ``folder`` and its symbolic links, as relative paths.

    Hidden entries and the skipped folders (``__MACOSX``, ``__pycache__``) are skipped, by
    ``tinycnn check``'s own walk of an upload (one home:
    :func:`tinycnn.grading.submission.upload_entries`, imported when grading, so building the
    CLI's parser does not load the grader), with its bounds; no link is followed.

    Raises
    ------
    tinycnn.grading.submission.UploadTooLarge
        A ValueError: more than ``MAX_ENTRIES`` entries, or folders more than ``MAX_DEPTH``
        deep (a 1,100-deep chain made this recursion fail: review, session 6).
    """
    from tinycnn.grading.submission import UploadTooLarge, upload_entries

    files, links = [], []
    try:
        for relative, entry in upload_entries(folder):
            if entry.is_symlink():
                links.append(relative.as_posix())
            elif entry.is_file(follow_symlinks=False):
                files.append(relative.as_posix())
    except UploadTooLarge as error:
        raise UploadTooLarge(f"your upload cannot be read: {error}") from None
    return sorted(files), sorted(links)


def _submission_target(folder: Path, api: str = "tinycnn", entry: str | None = None) -> Path:
    """What to hand ``tinycnn check``: the one file of a one-file submission, else a folder.

    Students upload their files, or the folder holding them (a zipped folder, maybe beside a
    README, maybe with macOS's ``__MACOSX``; a repository's ``src/`` beside its ``tests/``;
    a course's assignment folder with its package). Which folder is graded is ``tinycnn
    check``'s own rule (one home: :func:`tinycnn.grading.submission.submission_folder`); which
    file in it holds the functions, too (its entry).

    Raises
    ------
    ValueError
        The folder is missing or empty, or holds a symbolic link (never followed: a link to a
        file of the grader's image would be graded as the student's), or keeps its .py/.ipynb
        files in several sub-folders. The message is for the student.
    """
    if not folder.is_dir():
        raise ValueError("no submission folder was found, so there was nothing to grade")
    files, links = _scan(folder)
    if links:
        raise ValueError(
            f"your upload contains a symbolic link ({', '.join(map(_name, links[:3]))}), and links "
            "are never followed: upload the file itself, not a link to it"
        )
    if not files:
        raise ValueError("the submission is empty: upload your .py file")
    if len(files) == 1:
        return folder / files[0]
    from tinycnn.grading.submission import SeveralFolders, submission_folder

    try:
        return submission_folder(folder, api, entry)  # none at all: tinycnn check says so
    except SeveralFolders as several:
        names = ", ".join(f"{_name(name)}/" for name in several.folders)
        raise ValueError(
            f"your .py/.ipynb files are in several folders ({names}) and none at the top of "
            "your upload: upload the files with your functions themselves, not folders"
        ) from None


def _name(name: object, limit: int = 200) -> str:
    """A file or folder name of the upload, safe to print and to put in results.json (no ANSI
    escapes, newlines or control characters; `clean_text`, as ``tinycnn check`` does)."""
    from tinycnn.grading.channel import clean_text

    return clean_text(name, limit)


#: Advice of ``tinycnn check`` that only the instructor can follow (a command-line option),
#: and what the student can do instead: (pattern, replacement) for `re.sub`, applied to every
#: message of results.json.
STUDENT_ADVICE = (
    (
        r"; name it with --entry",
        ": upload only the file with your functions (leave out old copies and backups of it)",
    ),
    (
        r" \(is the file written for --api ([\w-]+)\?\)",
        r" (your functions look written for the \1 course API: this assignment grades the "
        r"function names above; rename yours, or ask your instructor)",
    ),
    (r" \(--allow-import [\w.]+ lifts this\)", ""),
    # A command on the grading server's path (new user session 7, finding 5); the case's id
    # is the feedback.
    (
        r"one case in full: tinycnn check .* --case (\S+)(?: --seed \d+)?",
        r"the first failing case: \1 (your instructor can show it in full)",
    ),
    (r" \(--seed \d+ repeats this run\)", ""),
    (r"no module (\S+) in .+? \(--entry; its files: (.*)\)", lambda m: _entry_advice(*m.groups())),
    (
        r"--entry (\S+) names several files of .+? \((.*)\): give the path of one, such as "
        r"--entry \S+",
        r"this assignment grades your file \1.py, and your upload has several (\2): upload "
        r"only one of them",
    ),
)


def _entry_advice(module: str, files: str) -> str:
    """What a student whose upload lacks the instructor's ``--entry`` module can do."""
    wanted = module.replace(".", "/") + ".py"
    return (
        f"this assignment grades your file {wanted}, and your upload has none (its files: "
        f"{files}): name your file {wanted}"
    )


def _advise_students(path: Path) -> None:
    """Rewrite ``tinycnn check``'s instructor-only advice in the results.json at ``path``."""
    document = json.loads(path.read_text(encoding="utf-8"))

    def rewritten(text: str) -> str:
        for pattern, replacement in STUDENT_ADVICE:
            text = re.sub(pattern, replacement, text)
        return text

    for part in [document, *document.get("tests", [])]:
        if isinstance(part, dict) and isinstance(part.get("output"), str):
            part["output"] = rewritten(part["output"])
    _write_results(path, document)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run(root: str | os.PathLike | None = None) -> int:
    """Grade ``ROOT/submission`` into ``ROOT/results/results.json``; always write that file.

    ``ROOT`` is ``root``, else ``$TINYCNN_GRADESCOPE_ROOT``, else ``/autograder``. Options come
    from ``ROOT/source/tinycnn_autograder.json``. Returns 0 (the verdict is in the file).
    """
    root = Path(root or os.environ.get(ROOT_VARIABLE) or DEFAULT_ROOT)
    results = root / "results" / "results.json"
    started = time.monotonic()

    def fail(message: str) -> int:
        print(f"tinycnn autograder: {message}", file=sys.stderr)
        _write_results(results, failed_results(message, time.monotonic() - started))
        return 0

    try:
        results.unlink(missing_ok=True)
        config_path = root / "source" / CONFIG_NAME
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
            check_args = [str(a) for a in config.get("check_args", [])]
            time_limit = float(config.get("time_limit", DEFAULT_TIME_LIMIT))
            parsed = _parse_check_args(check_args)
            entry, api = parsed.entry, parsed.api or "tinycnn"
        except (OSError, ValueError, TypeError, AttributeError, CommandError) as error:
            return fail(
                f"the autograder is misconfigured ({config_path}: {error}); "
                "please tell your instructor"
            )
        try:
            target = _submission_target(root / "submission", api, entry)
        except ValueError as error:
            return fail(str(error))
        if target.is_file() and entry is not None:
            # The instructor's --entry names a module of a folder (for one file it must name that
            # file): grade the file's folder, so a misnamed upload gets a message, not a crash.
            target = target.parent

        command = [
            sys.executable,
            "-m",
            "tinycnn",
            "check",
            str(target),
            "--gradescope",
            str(results),
            *check_args,
        ]
        # The target is a path of the upload: printed cleaned (the command gets it as it is).
        shown = [*command[:4], _name(command[4], 4096), *command[5:]]
        print("+ " + shlex.join(shown), flush=True)
        try:
            completed = subprocess.run(
                command, capture_output=True, text=True, timeout=time_limit, cwd=root
            )
        except subprocess.TimeoutExpired:
            return fail(
                f"grading took longer than {time_limit:.0f} seconds and was stopped; "
                "look for endless loops or very slow code"
            )
        sys.stdout.write(completed.stdout)  # the instructor's log (results/stdout)
        sys.stderr.write(completed.stderr)
        if _valid_results(results):
            _advise_students(results)
            return 0
        reason = _last_line(completed.stderr) or f"exit status {completed.returncode}"
        prefix = "tinycnn check: error: "
        return fail(
            "your submission could not be graded: " + reason.removeprefix(prefix)
            if completed.returncode == 2
            else f"the grader failed ({reason}); please tell your instructor"
        )
    except Exception as error:  # the last line of defence: never leave Gradescope without a file
        return fail(f"the autograder crashed ({type(error).__name__}: {error})")


# ------------------------------------------------------------------------------------------
# Building the zip (tinycnn autograder --out autograder.zip)
# ------------------------------------------------------------------------------------------


def _installed_torch() -> str:
    from importlib.metadata import version

    return version("torch").split("+")[0]


def _not_built_from(folder: str, names: list[str]) -> set[str]:
    """What of a source checkout a wheel is not built from (`shutil.copytree`'s ``ignore``):
    hidden entries (.git, .venv, .nox), virtual environments, caches, earlier build output
    (``build/``, ``dist/``, ``*.egg-info``)."""
    top = (Path(folder) / "pyproject.toml").is_file()
    return {
        name
        for name in names
        if name.startswith(".")
        or name == "__pycache__"
        or name.endswith(".egg-info")
        or (top and name in ("build", "dist"))
        or (Path(folder, name) / "pyvenv.cfg").is_file()
    }


def source_date_epoch() -> int:
    """The build's time stamp: ``SOURCE_DATE_EPOCH`` (seconds since 1970, UTC) if set, else
    `DEFAULT_SOURCE_DATE_EPOCH`; never before 1980, which a zip cannot store.

    Raises
    ------
    tinycnn.cli.CommandError
        ``SOURCE_DATE_EPOCH`` is not a whole number of seconds.
    """
    text = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not text:
        return DEFAULT_SOURCE_DATE_EPOCH
    if not text.isdigit():
        raise CommandError(f"SOURCE_DATE_EPOCH={text!r}: expected whole seconds since 1970")
    return max(int(text), _ZIP_EPOCH)


def _zip_entry(name: str, mode: int, epoch: int) -> zipfile.ZipInfo:
    """A zip member stamped with the build's time, ``mode`` permissions, a regular file,
    deflated: nothing of the machine or the moment of the build gets in."""
    info = zipfile.ZipInfo(name, date_time=time.gmtime(epoch)[:6])
    info.external_attr = (0o100000 | mode) << 16  # S_IFREG | permissions
    info.create_system = 3  # Unix, so the permissions are read, whatever builds it
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def _build_wheel(directory: Path) -> Path:
    """A wheel of this project, built from a clean copy of its source checkout (pip, PEP 517).

    Built in place, setuptools would reuse the checkout's ``build/lib`` and ship files deleted
    from the source since (a removed or renamed module); the copy leaves build output behind.
    The build runs with ``SOURCE_DATE_EPOCH`` (`source_date_epoch`), so the wheel's files all
    carry that time, not the moment of the build: two builds give the same bytes.
    """
    from tinycnn.bench import source_checkout

    source = source_checkout()
    if source is None:
        raise CommandError(
            "tinycnn is not installed from a source checkout, so no wheel can be built: "
            "give one with --wheel (python -m build --wheel in a clone)"
        )
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "source"
        shutil.copytree(source, copy, ignore=_not_built_from, symlinks=True)
        completed = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(directory), copy],
            capture_output=True,
            text=True,
            env={**os.environ, "SOURCE_DATE_EPOCH": str(source_date_epoch())},
        )
    wheels = sorted(directory.glob("tinycnn-*.whl"))
    if completed.returncode != 0 or not wheels:
        raise CommandError(f"building the wheel failed: {_last_line(completed.stderr)}")
    return wheels[0]


def validate_check_args(check_args: Sequence[str]) -> list[str]:
    """Parse ``check_args`` with ``tinycnn check``'s own parser; raise CommandError if wrong.

    Besides what the parser refuses, `REFUSED_OPTIONS` are refused: the ones the bundle sets
    itself, the ones for a folder of submissions, and the ones that would break grading
    (``--case``) or make the hidden cases predictable (``--seed``).
    """
    _parse_check_args(check_args)
    return list(check_args)


def _parse_check_args(check_args: Sequence[str]) -> argparse.Namespace:
    """``check_args`` as ``tinycnn check`` reads them (abbreviations such as ``--ent`` spelled
    out by argparse); raise CommandError as `validate_check_args` says."""
    from tinycnn.cli import build_parser

    parser, messages = build_parser(), io.StringIO()
    try:
        with contextlib.redirect_stderr(messages):
            args = parser.parse_args(["check", "submission.py", *check_args])
    except SystemExit:  # argparse's one-line message, without its "see --help" tail
        reason = re.sub(r"^tinycnn( check)?: error: ", "", _last_line(messages.getvalue()))
        raise CommandError(f"options for tinycnn check: {reason.split(' (see ')[0]}") from None
    if args.submission != "submission.py":
        raise CommandError(f"unexpected argument for tinycnn check: {shlex.join(check_args)}")
    for destination, reason in REFUSED_OPTIONS.items():
        if getattr(args, destination) is not None:
            raise CommandError(reason)
    return args


def build_bundle(
    out: str | os.PathLike,
    check_args: Sequence[str] = (),
    *,
    wheel: str | os.PathLike | None = None,
    torch_version: str | None = None,
    torch_index: str = TORCH_CPU_INDEX,
    time_limit: float = DEFAULT_TIME_LIMIT,
) -> Path:
    """Write Gradescope's autograder zip to ``out``; returns its path.

    Reproducible: two builds from one checkout (or with one ``wheel``) and the same arguments
    write byte-identical zips. Members come in a fixed order, each stamped with
    `source_date_epoch` (``SOURCE_DATE_EPOCH``, else 2020-01-01) and fixed permissions (0755
    for the two scripts, 0644 for the rest); the wheel built here is stamped the same way.

    Parameters
    ----------
    out : path-like
        The zip to write (replaced if it exists).
    check_args : sequence of str
        Options passed to ``tinycnn check`` for every submission (checked here).
    wheel : path-like, optional
        The tinycnn wheel to install in the image (default: built from the source checkout).
    torch_version : str, optional
        PyTorch release for the image (default: the one installed here, without ``+cpu``).
    torch_index : str
        Package index of the CPU builds of PyTorch.
    time_limit : float
        Seconds one grading may take before a failed result is written.

    Raises
    ------
    tinycnn.cli.CommandError
        Bad options, a missing wheel, or a wheel that cannot be built.
    """
    check_args = validate_check_args(check_args)
    torch_version = torch_version or _installed_torch()
    epoch = source_date_epoch()
    with tempfile.TemporaryDirectory() as scratch:
        if wheel is None:
            wheel_path = _build_wheel(Path(scratch))
        else:
            wheel_path = Path(wheel)
            if not (wheel_path.is_file() and wheel_path.name.endswith(".whl")):
                raise CommandError(f"--wheel {wheel}: not a .whl file")
        files = {
            "setup.sh": SETUP_SH.format(
                torch_requirement=shlex.quote(f"torch=={torch_version}"),
                torch_index=shlex.quote(torch_index),
                wheel=shlex.quote(wheel_path.name),
            ),
            "run_autograder": RUN_AUTOGRADER.format(
                root_variable=ROOT_VARIABLE,
                python_variable=PYTHON_VARIABLE,
                default_root=DEFAULT_ROOT,
                fallback=_FALLBACK.replace("'", ""),
            ),
            CONFIG_NAME: json.dumps(
                {"check_args": check_args, "time_limit": time_limit, "torch": torch_version},
                indent=2,
            )
            + "\n",
        }
        out = Path(out)
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, text in files.items():
                mode = EXECUTABLE if name != CONFIG_NAME else 0o644
                archive.writestr(_zip_entry(name, mode, epoch), text)
            # Not archive.write: it would stamp the wheel file's own time and mode.
            archive.writestr(_zip_entry(wheel_path.name, 0o644, epoch), wheel_path.read_bytes())
    return out


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``autograder`` subcommand to a ``tinycnn`` subparsers object."""
    parser = subparsers.add_parser(
        "autograder",
        help="build the zip that deploys tinycnn check on Gradescope",
        description="Build Gradescope's autograder zip: setup.sh (Python, bubblewrap, the CPU "
        "build of PyTorch and this project from a wheel inside the zip) and run_autograder "
        "(grades the submission with tinycnn check and always writes results.json). Options "
        "after -- are passed to tinycnn check for every submission: every grading option "
        "(--api, --entry, --timeout, --visibility, --max-score, ...; tinycnn check --help) goes "
        "there, e.g. tinycnn autograder --out autograder.zip -- --timeout 20 --visibility "
        "after_due_date --max-score 2",
    )
    parser.add_argument("--out", metavar="PATH", required=True, help="the zip to write")
    parser.add_argument(
        "--wheel",
        metavar="PATH",
        help="tinycnn wheel to put in the zip (default: built from this source checkout)",
    )
    parser.add_argument(
        "--torch",
        metavar="VERSION",
        default=None,
        help="PyTorch release for the image (default: the one installed here)",
    )
    parser.add_argument(
        "--torch-index",
        metavar="URL",
        default=TORCH_CPU_INDEX,
        help=f"package index of PyTorch's CPU builds (default: {TORCH_CPU_INDEX})",
    )
    parser.add_argument(
        "--time-limit",
        metavar="SECONDS",
        type=float,
        default=DEFAULT_TIME_LIMIT,
        help="stop a grading after SECONDS and fail it with a message (default: "
        f"{DEFAULT_TIME_LIMIT:g}; keep it below Gradescope's own limit)",
    )
    parser.add_argument(
        "check_args",
        nargs=argparse.REMAINDER,
        metavar="-- CHECK_OPTIONS",
        help="options for tinycnn check, after -- (--api, --entry, --timeout, --visibility, "
        "--max-score, ...)",
    )
    parser.set_defaults(func=run_command)
    return parser


def run_command(args) -> int:
    check_output_file("--out", args.out)
    check_args = list(args.check_args)
    if check_args[:1] == ["--"]:
        check_args = check_args[1:]
    if not 0 < args.time_limit < float("inf"):
        raise CommandError(f"--time-limit must be a positive number, got {args.time_limit}")
    out = build_bundle(
        args.out,
        check_args,
        wheel=args.wheel,
        torch_version=args.torch,
        torch_index=args.torch_index,
        time_limit=args.time_limit,
    )
    print(f"wrote {out}: upload it as the autograder of a Gradescope programming assignment")
    return 0


if __name__ == "__main__":
    sys.exit(run())
