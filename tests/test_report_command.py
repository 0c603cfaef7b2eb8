"""``tinycnn report``: options, one-line errors, rendering, and the whole report end to end."""

from __future__ import annotations

import csv
import filecmp
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tinycnn.reports import figures, render

from tinycnn.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """Run ``tinycnn report`` in this process; return (status, stdout, stderr)."""
    try:
        status = main(["report", "--no-progress", *argv])
    except SystemExit as exit_:  # argparse exits on usage errors
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seeds", "0"], "argument --seeds: expected an integer >= 1, got '0'"),
        (["--seeds", "many"], "argument --seeds: expected an integer >= 1, got 'many'"),
        (["--jobs", "-2"], "argument --jobs: expected an integer >= 1, got '-2'"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_bad_options_give_one_line_and_status_2(capsys, argv, message):
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_an_unwritable_output_directory_is_refused_before_any_work(capsys, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    for out, message in ((blocker, "it is a file"), (blocker / "report", "cannot create")):
        status, stdout, err = run(capsys, "--out", str(out))
        assert status == 2 and stdout == ""
        assert err.startswith("tinycnn report: error: ") and message in err
        assert len(err.strip().splitlines()) == 1


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["report", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for option in ("--out DIR", "--quick", "--seeds N", "--jobs N", "--no-progress"):
        assert option in text


# -- rendering helpers -------------------------------------------------------------------------


def test_csv_floats_have_six_significant_digits(tmp_path):
    path = render.write_csv(
        pd.DataFrame({"x": [1 / 3, 1e-12 / 3], "n": [1, 2]}), tmp_path / "t.csv"
    )
    assert path.read_text() == "x,n\n0.333333,1\n3.33333e-13,2\n"


def test_claims_tally_counts_every_verdict():
    ledger = pd.DataFrame({"verdict": ["reproduced", "differs", "reproduced"]})
    assert render.claims_tally(ledger) == {"reproduced": 2, "differs": 1, "not testable": 0}


def test_figures_are_written_as_png(tmp_path):
    sweep = pd.DataFrame(
        {
            "model": ["MLP (1 hidden)", "MLP (8 hidden)", "TinyCNN"],
            "width": [1, 8, 0],
            "n_parameters": [71, 547, 114],
            "n_seeds": [2, 2, 2],
            "mean": [0.7, 0.99, 1.0],
            "min": [0.6, 0.98, 1.0],
            "max": [0.8, 1.0, 1.0],
            "regime": ["fails", "unstable", "stable"],
        }
    )
    trace = {
        "input": np.zeros((8, 8)),
        "conv": np.ones((3, 6, 6)),
        "relu": np.ones((3, 6, 6)),
        "pool": np.ones((3, 3, 3)),
        "flatten": np.ones(27),
        "probabilities": np.array([0.8, 0.1, 0.1]),
    }
    written = [
        figures.capacity_sweep(sweep, tmp_path / "sweep.png"),
        figures.inference_trace(trace, ["a", "b", "c"], tmp_path / "trace.png"),
    ]
    for path in written:
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- end to end --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_quick_reports(tmp_path_factory):
    """``tinycnn report --quick`` run twice as a user would, with different worker counts."""
    runs = []
    for name, jobs in (("first", "2"), ("second", "1")):
        out = tmp_path_factory.mktemp(name) / "report"
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "tinycnn",
                "report",
                "--quick",
                "--no-progress",
                "--jobs",
                jobs,
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        runs.append((out, completed))
    return runs


@pytest.mark.slow
def test_quick_report_end_to_end(two_quick_reports):
    out, completed = two_quick_reports[0]
    assert completed.returncode == 0, completed.stderr
    assert f"report written to {out / 'REPORT.md'}" in completed.stdout
    assert "reproduced" in completed.stdout and "took" in completed.stdout

    with open(out / "claims.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [
        "claim_id",
        "section",
        "claim",
        "stated",
        "computed",
        "verdict",
        "note",
    ]
    assert {r["verdict"] for r in rows} <= {"reproduced", "differs", "not testable"}
    assert all(r["note"] for r in rows)
    by_id = {r["claim_id"]: r for r in rows}
    assert by_id["C8.2"]["verdict"] == "differs" and by_id["C8.2"]["computed"] == "1,227"
    assert by_id["C3.10"]["verdict"] == "reproduced"
    with open(out / "claims_real_data.csv", newline="", encoding="utf-8") as handle:
        real = list(csv.DictReader(handle))
    assert real and all(r["claim_id"].startswith("R10") and r["note"] for r in real)
    assert {r["verdict"] for r in real} <= {"reproduced", "differs"}
    assert "general claims on real data:" in completed.stdout

    report = (out / "REPORT.md").read_text(encoding="utf-8")
    for section, title in render.TITLES.items():
        assert f"## {section}. {title}" in report
    linked = {
        line.split("](")[1].rstrip(")") for line in report.splitlines() if line.startswith("![")
    }
    pngs = {f"figures/{p.name}" for p in (out / "figures").glob("*.png")}
    assert linked == pngs and len(pngs) >= 17
    assert len(list((out / "tables").glob("*.csv"))) >= 28


@pytest.mark.slow
def test_two_runs_write_identical_files(two_quick_reports):
    """CSV, figures and REPORT.md are byte-identical whatever --jobs is."""
    (first, a), (second, b) = two_quick_reports
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    names = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert {n.suffix for n in names} == {".csv", ".png", ".md"}
    different = [str(n) for n in names if not filecmp.cmp(first / n, second / n, shallow=False)]
    assert different == []
    assert (first / "REPORT.md").read_bytes() == (second / "REPORT.md").read_bytes()
