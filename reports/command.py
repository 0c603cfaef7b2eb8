"""``tinycnn report``: recompute the lecture's tables and figures and check its claims.

``register(subparsers)`` adds the subcommand to the ``tinycnn`` parser (``tinycnn.cli`` finds
this module by itself); ``run_report(args)`` returns the exit status: 0 on success, 2 for a usage
error (argparse's status), reported as one line.
"""

from __future__ import annotations

import argparse
import time

from tinycnn.cli import CommandError, positive_int

__all__ = ["register", "run_report"]


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand (``func=run_report``) to a ``tinycnn`` subparsers object."""
    parser = subparsers.add_parser(
        "report",
        help="rebuild every table and figure of the lecture and check its claims",
        description=(
            "Recompute, from this project's code, every table and figure of the CNN lecture and "
            "compare each of its numeric claims with the computed value; then test its general "
            "claims on scikit-learn's real handwritten digits and on shifted images. Writes "
            "DIR/REPORT.md, DIR/tables/*.csv, DIR/figures/*.png, DIR/claims.csv and "
            "DIR/claims_real_data.csv. Two runs with the same options write identical files."
        ),
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        default="report",
        help="output directory, created if needed (default: report)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="10 epochs and 2 seeds instead of 80 and 5: a fast check for CI",
    )
    parser.add_argument(
        "--seeds",
        type=positive_int,
        default=None,
        metavar="N",
        help="seeds per configuration (default: 5, or 2 with --quick)",
    )
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=None,
        metavar="N",
        help="worker processes for training and drawing (default: all cores); "
        "results do not depend on it",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="run the training runs on the Dask cluster at ADDRESS (e.g. "
        "tcp://host:8786) instead of local processes; figures are still "
        "drawn here. Needs pip install 'tinycnn[dask]' here and this project "
        "installed on every worker; results are identical to a local run",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.set_defaults(func=run_report)
    return parser


def run_report(args) -> int:
    """Compute the report, write it to ``args.out`` and print a summary; return 0."""
    from tinycnn.reports.pipeline import ReportSettings, compute_report
    from tinycnn.reports.render import claims_tally, prepare_output_dir, write_report

    from tinycnn.parallel import SchedulerError

    start = time.perf_counter()
    try:
        out = prepare_output_dir(args.out)  # fail now, not after a minute of training
    except ValueError as error:
        raise CommandError(str(error)) from None
    settings = ReportSettings.from_options(
        quick=args.quick, seeds=args.seeds, jobs=args.jobs, scheduler=args.scheduler
    )
    progress = not args.no_progress
    try:
        data = compute_report(settings, progress=progress)
    except SchedulerError as error:  # raised before the first run starts
        raise CommandError(str(error)) from None
    written = write_report(data, out, n_jobs=args.jobs, progress=progress)

    tally = claims_tally(data.tables["claims"])
    total = sum(tally.values())
    elapsed = time.perf_counter() - start
    print(
        f"report written to {out / 'REPORT.md'} ({len(written['tables'])} CSV files, "
        f"{len(written['figures'])} figures)"
    )
    print(
        f"claims: {tally['reproduced']} of {total} reproduced, {tally['differs']} differ, "
        f"{tally['not testable']} not testable (see {out / 'claims.csv'})"
    )
    real = claims_tally(data.tables["claims_real_data"])
    print(
        f"general claims on real data: {real['reproduced']} of {sum(real.values())} hold "
        f"(see {out / 'claims_real_data.csv'})"
    )
    print(
        f"took {elapsed:.1f} s ({data.seconds.get('training runs', 0.0):.1f} s training, "
        f"{settings.n_seeds} seeds, {settings.epochs} epochs)"
    )
    return 0
