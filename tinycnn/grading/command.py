"""``tinycnn check``: grade a student's implementation of the op contract (or a folder of them).

``register(subparsers)`` adds the subcommand to the ``tinycnn`` parser; ``run_check(args)``
returns the exit status: 0 when every function passes (every submission, in folder mode), 1
when anything fails; a usage error raises :class:`tinycnn.cli.CommandError`, which
``tinycnn.cli.main`` reports as one line with status 2 (argparse's own status for a bad option).

Only `register` runs for every ``tinycnn`` command (to build the parser), so the grader and the
sandbox are imported in `run_check`, not here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from tinycnn.cli import CommandError, positive_int

__all__ = ["register", "run_check"]

PASSED, FAILED = 0, 1
DEFAULT_SUMMARY_NAME = "check_summary.csv"
#: Folder mode's default submissions at a time, per CPU: a submission waiting out a time limit
#: (an endless loop) holds its place for the whole limit, and with one per CPU the rest of the
#: class waited behind it.
JOBS_PER_CPU = 2
#: `tinycnn.grading.adapters.API_NAMES`, without importing NumPy to build the parser (a test
#: keeps them equal).
API_CHOICES = ("tinycnn", "cs231n", "deeplearning-ai")
#: The defaults of `tinycnn.grading.sandbox.Limits`, for the help text (a test keeps them equal).
DEFAULT_TIMEOUT, DEFAULT_MEMORY_MB = 10.0, 2048


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")  # reported just below
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _positive_points(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")  # reported just below
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of points, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        value = -1
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"expected a seed between 0 and 2**32 - 1, got {text!r}")
    return value


def _module_name(text: str) -> str:
    if not all(part.isidentifier() for part in text.split(".")):
        raise argparse.ArgumentTypeError(f"expected a module name such as scipy, got {text!r}")
    return text.partition(".")[0]


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``check`` subcommand (``func=run_check``) to a ``tinycnn`` subparsers object."""
    parser = subparsers.add_parser(
        "check",
        help="grade a student's implementation of the op contract",
        description=(
            "Grade a file implementing the op contract (conv2d_forward ... "
            "softmax_cross_entropy): each function runs on the parity cases in a separate "
            "process with time and memory limits, and is compared with the reference. If all "
            "nine pass, TinyCNN is trained with them. SUBMISSION may be a .py file, a .ipynb "
            "notebook (its definitions are graded, its other code is not run) or, with "
            "--one-submission or --gradescope, a folder holding one student's modules (so is, "
            "unless --class is given, a folder laid out as one course assignment: a file at its "
            "top imports another of its entries, which is a package or defines no graded "
            "function, and no two of its entries define them, such as a course's notebook "
            "beside its package). Any other folder is a class: each .py, .ipynb and sub-folder "
            "in it is one student's submission, and a summary CSV is written."
        ),
        epilog="exit status: 0 all functions pass, 1 something fails, 2 usage error",
    )
    parser.add_argument(
        "submission",
        metavar="SUBMISSION",
        help="the student's .py or .ipynb file, one student's folder, or a folder of submissions",
    )
    parser.add_argument(
        "--api",
        default="tinycnn",
        choices=API_CHOICES,
        help="the layer API the code is written against: tinycnn (the op contract, default), "
        "cs231n (conv_forward_naive(x, w, b, conv_param) ... softmax_loss) or deeplearning-ai "
        "(channels-last conv_forward(A_prev, W, b, hparameters) ... pool_backward); the "
        "checker's adapters call it as it is (see the README)",
    )
    parser.add_argument(
        "--entry",
        metavar="NAME",
        help="in a student's folder, the module holding the functions: layers or layers.py "
        "names the top-level layers.py (or .ipynb), else the one file named layers at any "
        "depth (cs231n/layers.py, imported as cs231n.layers; two such files are an error); "
        "hw/layers or hw.layers names one inside a package (default: the file defining the "
        "graded functions at the shallowest level, else the folder's only .py/.ipynb file "
        "at its top)",
    )
    parser.add_argument(
        "--one-submission",
        action="store_true",
        help="SUBMISSION is a folder holding ONE student's modules, not a folder of "
        "submissions (implied by --gradescope)",
    )
    parser.add_argument(
        "--class",
        dest="class_mode",
        action="store_true",
        help="SUBMISSION is a folder of submissions, even if it looks like one student's "
        "assignment folder (a file importing the one package that defines the functions)",
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="also write the verdicts as JSON to PATH (a folder: one entry "
        "per file under 'submissions')",
    )
    parser.add_argument(
        "--gradescope",
        metavar="PATH",
        help="also write Gradescope's results.json to PATH (one submission: a file, or a "
        "folder holding one student's files, as Gradescope hands it over)",
    )
    parser.add_argument(
        "--visibility",
        choices=("visible", "after_published", "after_due_date", "hidden"),
        default="visible",
        help="--gradescope: visibility of the tests and the score, Gradescope's field "
        "(default: visible)",
    )
    parser.add_argument(
        "--max-score",
        type=_positive_points,
        default=1.0,
        metavar="POINTS",
        help="--gradescope: points of each of the nine functions, Gradescope's max_score "
        "(default: 1)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"time limit per function, all its cases together (default: {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--allow-import",
        type=_module_name,
        action="append",
        default=[],
        metavar="NAME",
        help="let the submission import NAME besides NumPy and the standard library (repeatable)",
    )
    parser.add_argument(
        "--memory",
        type=positive_int,
        default=DEFAULT_MEMORY_MB,
        metavar="MIB",
        help=f"memory limit of the submission's process in MiB (default: {DEFAULT_MEMORY_MB})",
    )
    parser.add_argument(
        "--no-train",
        action="store_true",
        help="skip the training run that follows when every function passes",
    )
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=None,
        metavar="N",
        help="folder mode: submissions graded at the same time (default: twice the number "
        "of CPUs, as a submission waiting out a time limit holds its place meanwhile)",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="folder mode: grade the submissions on the Dask cluster at ADDRESS "
        "(e.g. tcp://host:8786) instead of here. Needs pip install "
        "'tinycnn[dask]' here and this project installed on every worker; "
        "each worker must read the submissions at the same path as here "
        "(a shared filesystem). Verdicts are the same as a local run",
    )
    parser.add_argument(
        "--seed",
        type=_seed,
        default=None,
        metavar="S",
        help="seed of the hidden cases and of the training run (default: a fresh one, printed "
        "with the results; the same seed repeats a run exactly)",
    )
    parser.add_argument(
        "--require-sandbox",
        action="store_true",
        help="refuse to grade (status 2) unless the submissions run under bubblewrap; without "
        "it the checker falls back to weaker isolation and says so in every output",
    )
    parser.add_argument(
        "--csv",
        metavar="PATH",
        help=f"folder mode: where to write the summary (default: FOLDER/{DEFAULT_SUMMARY_NAME})",
    )
    parser.add_argument(
        "--case",
        metavar="ID",
        default=None,
        help="run only the case ID (as named in the table: a catalogue case such as "
        "conv-n2c3f4-h7w5-k3x2-s2-p1-f64, or a hidden-... case with the --seed of its run) and "
        "print its inputs, the expected and the returned values and a NumPy-only snippet that "
        "repeats the call (single file only)",
    )
    parser.set_defaults(func=run_check)
    return parser


def submissions_in(folder: Path) -> tuple[list[Path], list[str]]:
    """The submissions in a class folder, sorted, and what was skipped (in words).

    Each ``.py`` file, ``.ipynb`` notebook and sub-folder holding such files (one student's
    modules) is one submission (`tinycnn.grading.submission.top_entries`: the reading rule of
    one student's folder, one home); hidden entries, ``__pycache__`` and ``__MACOSX`` are
    ignored; a sub-folder without any (``data/``, or only hidden ones such as ``.git/``) is
    skipped; symbolic links are skipped, never followed (an archive unpacked into the folder
    may contain links to anywhere).
    """
    from tinycnn.grading.submission import SUBMISSION_SUFFIXES, top_entries, visible_entries

    files, folders = top_entries(folder)
    found = sorted(files + folders, key=lambda path: path.name)
    skipped = []
    for entry in visible_entries(folder):
        path = Path(entry.path)
        if entry.is_symlink():
            if path.is_dir() or path.suffix in SUBMISSION_SUFFIXES:
                skipped.append(f"{path.name} (a symbolic link)")
        elif entry.is_dir(follow_symlinks=False) and path not in folders:
            skipped.append(f"{path.name}/ (no .py or .ipynb file in it)")
    return found, skipped


def _check_output_path(option: str, value: str | None) -> str | None:
    """A problem with an output path, found before any grading starts: its directory must
    exist and take a new file (tried for real: ``os.access`` cannot tell for root or /proc)."""
    if value is None:
        return None
    target = Path(value).expanduser()
    parent = target.absolute().parent
    if not parent.is_dir():
        return f"{option} {value}: no such directory {parent}"
    if target.is_dir() and not target.is_symlink():
        return f"{option} {value} is a directory, expected a file name"
    try:
        handle, probe = tempfile.mkstemp(prefix=".tinycnn-", dir=parent)
    except OSError as error:
        return f"cannot write {value} ({option}): {error.strerror or error}"
    os.close(handle)
    os.unlink(probe)
    return None


def _overwrites_submission(option: str, value: str | None, target: Path, class_mode: bool):
    """Why writing ``value`` would overwrite the student's work (None if it would not): the
    submission file itself, a file inside the submission's folder, or, for a class, one of its
    submission files or a file inside a student's folder. ``tinycnn check victim.py --json
    victim.py`` (a tab-completion slip) must not replace the student's only copy."""
    from tinycnn.grading.submission import SUBMISSION_SUFFIXES

    if value is None:
        return None
    output = Path(value).expanduser().absolute()
    output = output.parent.resolve() / output.name  # the link itself is replaced, not followed
    submission = target.resolve()
    if output == submission:
        return f"{option} {value} is the submission itself: writing there would overwrite it"
    if not output.is_relative_to(submission) or not submission.is_dir():
        return None
    inside = output.relative_to(submission)
    if not class_mode:
        return (
            f"{option} {value} is inside the submission folder {target}: the results would "
            f"overwrite or join the student's files; write them elsewhere"
        )
    if len(inside.parts) > 1 and (submission / inside.parts[0]).is_dir():
        return (
            f"{option} {value} is inside {inside.parts[0]}/, a student's submission folder: "
            f"write the results elsewhere"
        )
    if output.suffix in SUBMISSION_SUFFIXES:
        return (
            f"{option} {value} would be (or overwrite) a submission of the class: use another name"
        )
    return None


def _write(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a temporary file in the same directory, then
    ``os.replace``, which replaces a symlink or anything else at ``path`` rather than following
    it, and never leaves half a file."""
    target = Path(path).expanduser().absolute()
    temporary = None
    try:
        handle, temporary = tempfile.mkstemp(prefix=".tinycnn-", dir=target.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
        temporary = None
    except OSError as error:
        raise CommandError(f"cannot write {path}: {error.strerror or error}") from None
    finally:  # whatever went wrong (a full disk, text that is not UTF-8), no temporary is left
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)


def _reproduce(
    target: Path,
    case_id: str,
    allow: tuple[str, ...],
    limits,
    api: str,
    entry: str | None,
    seed: int | None,
    isolation: str,
) -> int:
    """``--case ID``: run one case and print everything about it (exit 0 if it passes)."""
    from tinycnn.grading.grader import grade_case
    from tinycnn.grading.reproduce import case_report

    try:
        runs = grade_case(
            target,
            case_id,
            allow_imports=allow,
            limits=limits,
            api=api,
            entry=entry,
            seed=seed,
            isolation=isolation,
        )
    except ValueError as error:
        raise CommandError(str(error)) from None
    print(case_report(runs, str(target), api, seed))
    return PASSED if all(run.result.status == "pass" for run in runs) else FAILED


class Progress:
    """A progress display on the terminal while ``tinycnn check`` grades (tqdm, on stderr).

    Shown only when stderr is a terminal: never in a pipe, a log, the Gradescope runner's
    captured output, and never in the ``--json``/``--gradescope``/CSV files, which are written
    apart. It counts ``total`` steps (submissions in folder mode), shows the time elapsed, and
    is redrawn every `TICK` seconds from a thread of its own, so that a run waiting out a
    submission's time limit (up to the wall-clock budget, `Limits.total_seconds`) still shows
    its clock moving. It is erased when done (``leave=False``): the results follow on stdout.
    Names shown are `clean_text`-ed (a student's file name may hold terminal escapes).
    """

    TICK = 0.5

    def __init__(self, total: int, description: str, unit: str, stream=None):
        from tqdm import tqdm

        stream = sys.stderr if stream is None else stream
        self.enabled = bool(getattr(stream, "isatty", lambda: False)())
        counted = total > 1
        self.bar = tqdm(
            total=total,
            desc=description,
            unit=unit,
            file=stream,
            disable=not self.enabled,
            leave=False,
            dynamic_ncols=True,
            mininterval=0,  # a step is a whole submission: draw each one
            bar_format=(
                "{desc}: {n_fmt}/{total_fmt} {unit}s |{bar}| {elapsed}{postfix}"
                if counted
                else "{desc}: {elapsed} elapsed{postfix}"
            ),
        )
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True)

    def _tick(self) -> None:
        while not self._stop.wait(self.TICK):
            self.bar.refresh()

    def note(self, text: str) -> None:
        """Show ``text`` (cleaned, short) after the counts: what is being done now."""
        from tinycnn.grading.channel import clean_text

        self.bar.set_postfix_str(clean_text(text, 60), refresh=False)

    def advance(self, done: str) -> None:
        """One step is done (``done``: its name, cleaned, shown as the last one finished)."""
        self.note(f"last: {done}")
        self.bar.update(1)

    def more(self, steps: int = 1) -> None:
        """``steps`` more to do than first counted (a submission graded again alone)."""
        self.bar.total += steps
        self.bar.refresh()

    def __enter__(self) -> Progress:
        if self.enabled:
            self._ticker.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._ticker.is_alive():
            self._ticker.join()
        self.bar.close()


def _folder_progress(bar: Progress) -> Callable[[str, str], None]:
    """The ``progress`` callback of `grade_folder` drawn on ``bar``."""

    def progress(event: str, name: str) -> None:
        shown = Path(name).name
        if event == "regrading":
            bar.more()
            bar.note(f"graded again alone: {shown}")
        else:  # "graded", "regraded"
            bar.advance(shown)

    return progress


def grading_options(args: argparse.Namespace) -> tuple[str, ...]:
    """The options of a ``tinycnn check`` run that change its grading, as given (the header of
    its output repeats them; the seed only if given, as the output names a fresh one)."""
    options: list[str] = []
    if args.api != "tinycnn":
        options += ["--api", args.api]
    if args.entry is not None:
        options += ["--entry", args.entry]
    if args.one_submission:
        options.append("--one-submission")
    for name in args.allow_import:
        options += ["--allow-import", name]
    if args.timeout != DEFAULT_TIMEOUT:
        options += ["--timeout", f"{args.timeout:g}"]
    if args.memory != DEFAULT_MEMORY_MB:
        options += ["--memory", str(args.memory)]
    if args.no_train:
        options.append("--no-train")
    if args.seed is not None:
        options += ["--seed", str(args.seed)]
    return tuple(options)


def run_check(args: argparse.Namespace) -> int:
    """Run ``tinycnn check`` for parsed arguments; returns the exit status.

    A usage error (also an output file that cannot be written) raises `CommandError`.
    """
    from tinycnn.grading.channel import clean_name, clean_text
    from tinycnn.grading.folder import grade_folder
    from tinycnn.grading.grader import grade_or_report_failure, new_seed
    from tinycnn.grading.report import (
        folder_table,
        gradescope_results,
        report_json,
        submission_table,
        summary_csv,
    )
    from tinycnn.grading.sandbox import Limits, SandboxUnavailable, isolation_level
    from tinycnn.grading.submission import SUBMISSION_SUFFIXES, imports_between
    from tinycnn.parallel import SchedulerError, default_jobs

    target = Path(args.submission)
    if not target.exists():
        raise CommandError(f"no such file or folder: {args.submission}")
    if args.class_mode and (args.one_submission or args.gradescope):
        raise CommandError("--class contradicts --one-submission and --gradescope")
    folder_mode = target.is_dir() and not (args.one_submission or args.gradescope)
    guessed = imports_between(target) if folder_mode and not args.class_mode else None
    if guessed is not None:  # a course's assignment folder: its notebook imports its package
        print(
            f"{clean_text(args.submission, 200)} is graded as one student's submission, as "
            f"with --one-submission: {clean_text(guessed, 200)} and no two of its entries "
            "define the graded functions (if it is a class, run with --class)"
        )
        folder_mode = False
    if not target.is_dir() and args.class_mode:
        raise CommandError("--class applies to a folder of submissions")
    if not target.is_dir() and target.suffix not in SUBMISSION_SUFFIXES:
        raise CommandError(f"{args.submission} is not a .py file or a .ipynb notebook")
    if not target.is_dir() and args.one_submission:
        raise CommandError("--one-submission applies to a folder holding one student's files")
    if not folder_mode and (args.csv or args.jobs or args.scheduler):
        raise CommandError(
            "--csv, --jobs and --scheduler apply to a folder of submissions only"
            + (
                " (this folder looks like one student's; --class grades it as a class)"
                * bool(guessed)
            )
        )
    if args.case is not None and (args.json or args.gradescope or args.csv):
        raise CommandError(
            "--case prints one case to the terminal; --json, --gradescope and --csv apply to "
            "a whole grading run (drop --case, or the output option)"
        )
    if args.entry is not None and not target.is_dir():
        wanted = os.path.normpath(args.entry).removesuffix(".py").removesuffix(".ipynb")
        if wanted != target.stem:  # "./layers.py" names the module layers too
            raise CommandError(
                f"--entry {args.entry}: {args.submission} is a single file (module "
                f"{target.stem}); --entry picks the module of a student's folder"
            )
    for option, value in (
        ("--json", args.json),
        ("--gradescope", args.gradescope),
        ("--csv", args.csv),
    ):
        problem = _check_output_path(option, value) or _overwrites_submission(
            option, value, target, folder_mode
        )
        if problem:
            raise CommandError(problem)
    try:
        limits = Limits(
            timeout=args.timeout,
            memory_mb=args.memory,
            train_timeout=max(6 * args.timeout, Limits.train_timeout),
        )
    except ValueError as error:
        raise CommandError(str(error)) from None
    allow = tuple(args.allow_import)
    try:
        isolation = isolation_level()
    except SandboxUnavailable as error:
        raise CommandError(str(error)) from None
    if args.require_sandbox and isolation != "bubblewrap":
        forced = os.environ.get("TINYCNN_SANDBOX")
        why = (
            f"TINYCNN_SANDBOX={forced} forces level {isolation!r}; unset it"
            if forced
            else f"bubblewrap is not usable here (isolation would be {isolation!r}); install it "
            f"(apt-get install bubblewrap) or allow user namespaces"
        )
        raise CommandError(f"--require-sandbox: {why}")
    seed = new_seed() if args.seed is None else args.seed

    if args.case is not None:
        if folder_mode:
            raise CommandError("--case reproduces one case of one submission, not a folder of them")
        return _reproduce(
            target, args.case, allow, limits, args.api, args.entry, args.seed, isolation
        )

    if not folder_mode:
        budget = f"at most {limits.total_seconds:g} s"
        with Progress(1, f"grading {clean_text(target.name, 60)} ({budget})", "submission"):
            report = grade_or_report_failure(
                target,
                allow_imports=allow,
                limits=limits,
                train=not args.no_train,
                api=args.api,
                entry=args.entry,
                seed=seed,
                isolation=isolation,
            )
        print(submission_table(report, grading_options(args)))
        if args.json:
            _write(args.json, json.dumps(report_json(report), indent=2, allow_nan=False) + "\n")
        if args.gradescope:
            _write(
                args.gradescope,
                json.dumps(
                    gradescope_results(
                        report, visibility=args.visibility, max_score=args.max_score
                    ),
                    indent=2,
                    allow_nan=False,
                )
                + "\n",
            )
        return PASSED if report.passed else FAILED

    files, skipped = submissions_in(target)
    for name in skipped:
        print(f"skipped {clean_name(name)}")
    if not files:
        raise CommandError(f"no .py or .ipynb files or folders of them in {args.submission}")
    try:
        with Progress(len(files), "grading", "submission") as bar:
            reports = grade_folder(
                files,
                jobs=args.jobs or JOBS_PER_CPU * default_jobs(),
                allow_imports=allow,
                limits=limits,
                train=not args.no_train,
                scheduler=args.scheduler,
                api=args.api,
                entry=args.entry,
                seed=seed,
                isolation=isolation,
                progress=_folder_progress(bar),
            )
    except SchedulerError as error:  # raised before any grading starts
        raise CommandError(str(error)) from None
    print(folder_table(reports))
    summary_path = args.csv or str(target / DEFAULT_SUMMARY_NAME)
    _write(summary_path, summary_csv(reports))
    print(f"summary written to {summary_path}")
    if args.json:
        document = {
            "passed": all(r.passed for r in reports),
            "submissions": {r.submission: report_json(r) for r in reports},
        }
        _write(args.json, json.dumps(document, indent=2, allow_nan=False) + "\n")
    return PASSED if all(r.passed for r in reports) else FAILED
