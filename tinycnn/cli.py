"""The ``tinycnn`` command and its subcommands ``train``, ``template``, ``report``, ``check``,
``bench`` and ``autograder``.

Every subcommand reports a bad argument or an unreadable file as one line on stderr and exits
with a non-zero status; a traceback means a bug in this project, not in the user's input.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

__all__ = ["CommandError", "main"]

USAGE_ERROR = 2  # argparse's status for a bad command line
SIGPIPE_STATUS = 128 + 13  # what a shell reports for a process ended by SIGPIPE (signal 13)


class CommandError(Exception):
    """A problem with the user's input, reported as one line (status ``USAGE_ERROR``)."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: what is wrong and where to read more."""

    def error(self, message: str):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text) if text.lstrip("-").isdigit() else None
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(text) if text.lstrip("-").isdigit() else None
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


# ------------------------------------------------------------------------------------------
# tinycnn train
# ------------------------------------------------------------------------------------------


def _register_train(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train TinyCNN or an MLP on the stripe images (NumPy or PyTorch)",
        description="Train TinyCNN or an MLP on the synthetic stripe images and print the final "
        "accuracy. Weights saved by one backend load in the other.",
    )
    parser.add_argument(
        "--backend",
        choices=("numpy", "torch"),
        default="numpy",
        help="implementation to train with (default: numpy)",
    )
    parser.add_argument(
        "--model",
        choices=("tinycnn", "mlp"),
        default=None,
        help="architecture (default: tinycnn, or the one in --load)",
    )
    parser.add_argument(
        "--hidden", type=positive_int, default=None, help="hidden width of the MLP (default: 18)"
    )
    parser.add_argument(
        "--classes",
        type=int,
        choices=(3, 4),
        default=None,
        help="3: vertical/horizontal/diagonal; 4 adds dot (default: 3)",
    )
    parser.add_argument(
        "--epochs",
        type=non_negative_int,
        default=80,
        help="training epochs (default: 80; 0 only evaluates)",
    )
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="seed of the data, the initial weights and the batch order (default: 0)",
    )
    parser.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        default="float64",
        help="floating-point precision (default: float64)",
    )
    parser.add_argument("--save", metavar="PATH", help="write the trained weights to PATH (.npz)")
    parser.add_argument(
        "--load", metavar="PATH", help="start from the weights in PATH (.npz, from either backend)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run_train)


def _build_model(args):
    """The NumPy model the arguments ask for (its weights are the starting point either way)."""
    from tinycnn.reference.checkpoint import CheckpointError, load_checkpoint
    from tinycnn.reference.models import build_model

    if args.hidden is not None and args.model != "mlp" and args.load is None:
        raise CommandError("--hidden applies only to --model mlp")
    if args.load is None:
        kind = args.model or "tinycnn"
        model = build_model(
            kind, args.classes or 3, hidden=args.hidden, seed=args.seed, dtype=args.dtype
        )
        return kind, model

    try:
        params, kind, config = load_checkpoint(args.load)
    except CheckpointError as error:
        raise CommandError(str(error)) from None
    if kind not in ("tinycnn", "mlp"):
        raise CommandError(f"{args.load}: unknown model {kind!r}")
    for flag, wanted, stored in (
        ("--model", args.model, kind),
        ("--classes", args.classes, config.get("n_classes")),
        ("--hidden", args.hidden, config.get("hidden")),
    ):
        if wanted is not None and wanted != stored:
            raise CommandError(
                f"{flag} {wanted} conflicts with {args.load}, which holds {kind} with {config}"
            )
    try:
        model = build_model(kind, **config).load_params(params)
    except (TypeError, ValueError) as error:
        raise CommandError(f"{args.load}: weights do not fit {kind} {config}: {error}") from None
    return kind, model.astype(args.dtype)


def run_train(args) -> int:
    from tinycnn import reference
    from tinycnn.reference.checkpoint import save_checkpoint

    if args.save is not None:
        check_output_file("--save", args.save)
    kind, model = _build_model(args)
    try:
        dataset = reference.make_dataset(
            n_classes=model.config["n_classes"],
            image_size=model.config["image_size"],
            seed=args.seed,
        )
    except ValueError as error:  # only a loaded checkpoint can ask for what the data lacks
        raise CommandError(
            f"{args.load}: {kind} {model.config} cannot train on the stripe images: {error}"
        ) from None
    config = reference.TrainConfig(epochs=args.epochs, seed=args.seed)
    progress = not args.no_progress

    if args.backend == "numpy":
        history = reference.train(model, dataset, config, progress=progress)
        params = model.params
    else:
        from tinycnn import torch_impl

        module = torch_impl.from_reference(model)
        history = torch_impl.train(module, dataset, config, progress=progress)
        params = torch_impl.params_of(module)

    n_val = len(dataset.y_val)
    val_acc = history.val_acc[-1]
    print(
        f"{kind} ({model.n_parameters} parameters, {args.backend}, {model.dtype}) after "
        f"{args.epochs} epochs: train accuracy {history.train_acc[-1]:.4f}, "
        f"validation accuracy {val_acc:.4f} ({round(val_acc * n_val)}/{n_val})"
    )
    if args.save is not None:
        try:
            save_checkpoint(args.save, params, kind, model.config)
        except OSError as error:
            raise CommandError(f"cannot write {args.save}: {error.strerror or error}") from None
        print(f"saved weights to {args.save}")
    return 0


# ------------------------------------------------------------------------------------------
# tinycnn template
# ------------------------------------------------------------------------------------------


def _register_template(subparsers) -> None:
    from tinycnn import templates

    course_apis = [name for name in templates.available() if name != templates.DEFAULT]
    parser = subparsers.add_parser(
        "template",
        help="write the student template (the op contract with TODOs) to start from",
        description="Write the template a student fills in: the nine functions of the op "
        "contract with their docstrings and TODOs, or with --api the template of a course's "
        "own API that `tinycnn check --api NAME` grades. Then: tinycnn check PATH.",
    )
    defaults = ", ".join(f"{templates.file_name(name)} with --api {name}" for name in course_apis)
    parser.add_argument(
        "path",
        metavar="PATH",
        nargs="?",
        default=None,
        help=f"file to write (default: {templates.file_name()}"
        + (f"; {defaults}" if defaults else "")
        + "; '-' prints it)",
    )
    parser.add_argument(
        "--api",
        metavar="NAME",
        choices=course_apis,
        default=None,
        help="a course API's template instead: "
        + (", ".join(course_apis) if course_apis else "none installed"),
    )
    parser.add_argument("--force", action="store_true", help="overwrite PATH if it exists")
    parser.set_defaults(func=run_template)


def run_template(args) -> int:
    from tinycnn import templates

    name = args.api or templates.DEFAULT
    text = templates.read(name)
    if args.path is None:  # the file the course names (cs231n: layers.py), as README says
        args.path = templates.file_name(name)
    if args.path == "-":
        sys.stdout.write(text)
        return 0
    if os.path.lexists(os.path.expanduser(args.path)) and not args.force:
        raise CommandError(f"{args.path} exists; choose another PATH or add --force")
    check_output_file("PATH", args.path)
    write_output("PATH", args.path, text)
    api = f"--api {args.api} " if args.api else ""
    print(f"wrote {args.path}; fill in the TODOs, then run: tinycnn check {api}{args.path}")
    return 0


# ------------------------------------------------------------------------------------------
# output files, shared by the subcommands
# ------------------------------------------------------------------------------------------


def check_output_file(option: str, path: str) -> None:
    """Fail before the work, not after it, when ``path`` obviously cannot be written.

    Catches a missing directory, a directory given as the file and missing permission; the
    write itself can still fail (a full disk, /proc), so writers catch OSError too
    (:func:`write_output`).
    """
    path = os.path.expanduser(path)
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise CommandError(f"cannot write {option} {path}: it is a directory")
    if not os.path.isdir(directory):
        raise CommandError(f"cannot write {option} {path}: no such directory {directory}")
    if not os.access(path if os.path.exists(path) else directory, os.W_OK):
        raise CommandError(f"cannot write {option} {path}: permission denied")


def write_output(option: str, path: str, text: str) -> None:
    """Write ``text`` to ``path``; an OSError becomes a one-line :class:`CommandError`."""
    try:
        with open(os.path.expanduser(path), "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as error:
        raise CommandError(f"cannot write {option} {path}: {error.strerror or error}") from None


# ------------------------------------------------------------------------------------------
# entry point
# ------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from tinycnn import __version__

    parser = OneLineParser(
        prog="tinycnn",
        description="TinyCNN from scratch in NumPy, checked against PyTorch.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser
    )
    _register_train(subparsers)
    _register_template(subparsers)
    for register in _optional_commands():
        register(subparsers)
    parser.commands = subparsers.choices  # each subcommand's parser, by name (see `main`)
    return parser


def _optional_commands():
    """``register`` functions of the subcommands that live in their own packages."""
    import importlib
    import importlib.util

    for module_name in (
        "tinycnn.reports.command",
        "tinycnn.grading.command",
        "tinycnn.bench",
        "tinycnn.autograder",
    ):
        if importlib.util.find_spec(module_name) is not None:
            yield importlib.import_module(module_name).register


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        where = ""
        if args.command == "autograder":  # its grading options belong to tinycnn check
            where = (
                f"; options of tinycnn check go after --: tinycnn autograder ... -- {unknown[0]}"
            )
        # Said by the subcommand's parser ("tinycnn check: error: ..."): the arguments are its.
        parser.commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}{where}")
    try:
        status = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not at exit
        return status
    except CommandError as error:
        print(f"tinycnn {args.command}: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print(f"tinycnn {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _closed_pipe()


def _closed_pipe() -> int:
    """The reader of stdout went away (``tinycnn train | head -0``): end quietly.

    Python ignores SIGPIPE and raises BrokenPipeError instead; what a shell expects is the
    status of a process ended by SIGPIPE, 128 + 13. Output still buffered for the closed pipe
    goes to /dev/null, so flushing it at exit cannot raise again (Python's documented recipe,
    "Note on SIGPIPE" in the signal module's documentation).
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return SIGPIPE_STATUS


if __name__ == "__main__":
    # `python -m tinycnn.cli` runs this file as `__main__`, a second copy of the module next to the
    # `tinycnn.cli` that the subcommands import: their `tinycnn.cli.CommandError` would not be this
    # copy's `CommandError` and would end in a traceback. Run the one real module instead.
    from tinycnn.cli import main as real_main

    sys.exit(real_main())
