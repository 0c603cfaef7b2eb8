"""`tinycnn check`, the command: exit statuses, the table, --json, --gradescope, folder mode.

The subcommand is built the way ``tinycnn.cli`` builds it (``register(subparsers)``), so these
tests do not depend on the rest of the CLI; one test runs the real ``tinycnn`` entry point in a
subprocess.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tinycnn.reference.ops import CONTRACT_FUNCTIONS

from tinycnn.cli import CommandError
from tinycnn.grading.command import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT, register, run_check
from tinycnn.grading.grader import STATUSES
from tinycnn.grading.sandbox import Limits

FIXTURES = Path(__file__).parent / "fixtures" / "submissions"
TEMPLATE = Path(__file__).parent.parent / "tinycnn" / "templates" / "student_template.py"
REPO = Path(__file__).parent.parent


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="tinycnn")
    register(top.add_subparsers(dest="command", required=True))
    return top


def check(*argv: str) -> int:
    """Parse ``tinycnn check ARGV`` and run it; returns the exit status (2 from argparse too).

    A `CommandError` is reported the way ``tinycnn.cli.main`` reports it: one line, status 2.
    """
    try:
        args = parser().parse_args(["check", *map(str, argv)])
    except SystemExit as exit_:
        return int(exit_.code)
    try:
        return args.func(args)
    except CommandError as error:
        print(f"tinycnn check: error: {error}", file=sys.stderr)
        return 2


def strict_json(path: Path) -> dict:
    """Load JSON refusing NaN and Infinity, which are not JSON."""

    def refuse(token):
        raise ValueError(f"{path} contains {token}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_register_adds_check_with_its_options_and_run_check():
    args = parser().parse_args(["check", "student.py"])
    assert args.func is run_check
    assert args.timeout == 10.0 and args.allow_import == [] and args.json is None
    args = parser().parse_args(
        [
            "check",
            "s.py",
            "--timeout",
            "3",
            "--allow-import",
            "scipy",
            "--allow-import",
            "os",
            "--json",
            "o.json",
            "--gradescope",
            "r.json",
        ]
    )
    assert (args.timeout, args.allow_import) == (3.0, ["scipy", "os"])


def test_all_pass_exits_0_with_a_row_per_function_and_valid_outputs(tmp_path, capfd):
    json_path, gradescope_path = tmp_path / "out.json", tmp_path / "results.json"
    status = check(
        FIXTURES / "correct_vectorized.py", "--json", json_path, "--gradescope", gradescope_path
    )
    assert status == 0
    out = capfd.readouterr().out
    rows = [line for line in out.splitlines() if line.split(" ")[0] in CONTRACT_FUNCTIONS]
    assert [row.split()[0] for row in rows] == list(CONTRACT_FUNCTIONS)
    assert all(row.split()[1] == "pass" for row in rows)
    assert "validation accuracy" in out and "reference run" in out

    document = strict_json(json_path)
    assert document["passed"] is True and document["policy"] == []
    assert list(document["functions"]) == list(CONTRACT_FUNCTIONS)
    assert document["training"]["status"] == "ok"

    results = strict_json(gradescope_path)
    assert [t["name"] for t in results["tests"][:9]] == list(CONTRACT_FUNCTIONS)
    for test in results["tests"]:
        assert set(test) == {
            "name",
            "score",
            "max_score",
            "status",
            "output",
            "output_format",
            "visibility",
        }
        assert test["status"] == "passed" and test["visibility"] == "visible"
        assert test["output_format"] == "text"
    assert results["score"] == 9.0
    assert 0 < results["execution_time"] < 60 and results["visibility"] == "visible"


def test_a_failure_exits_1_and_the_json_follows_the_schema(tmp_path):
    json_path = tmp_path / "out.json"
    assert check(FIXTURES / "hostile_nan_output.py", "--json", json_path) == 1
    document = strict_json(json_path)
    assert set(document) >= {"passed", "functions", "policy"}
    assert document["passed"] is False
    assert sorted(document["functions"]) == sorted(CONTRACT_FUNCTIONS)
    for entry in document["functions"].values():
        assert entry["status"] in STATUSES
        assert entry["max_rel_error"] is None or isinstance(entry["max_rel_error"], float)
        assert isinstance(entry["detail"], str)
    relu = document["functions"]["relu_forward"]
    assert relu["status"] == "fail" and relu["max_rel_error"] is None  # inf is not JSON
    assert "non-finite" in relu["detail"]
    assert document["functions"]["conv2d_forward"]["status"] == "missing"


def test_the_hint_reaches_the_table_json_and_gradescope(tmp_path, capfd):
    json_path, gradescope_path = tmp_path / "out.json", tmp_path / "results.json"
    assert (
        check(
            FIXTURES / "buggy_relu_zero_gradient.py",
            "--json",
            json_path,
            "--gradescope",
            gradescope_path,
        )
        == 1
    )
    out = " ".join(capfd.readouterr().out.split())  # the table wraps long lines
    assert "hint: dx differs only where x is exactly 0" in out
    assert "relu, x (2, 3, 4, 5), float64, with exact zeros" in out
    detail = strict_json(json_path)["functions"]["relu_backward"]["detail"]
    assert "Hint: dx differs only where x is exactly 0" in detail
    tests = {t["name"]: t for t in strict_json(gradescope_path)["tests"]}
    assert tests["relu_backward"]["score"] == 0 and tests["relu_forward"]["score"] == 1
    assert tests["relu_backward"]["status"] == "failed"
    assert tests["relu_forward"]["status"] == "passed"
    # The same complete feedback as --json: every finding with its hint.
    assert tests["relu_backward"]["output"] == "fail: " + detail
    assert "gradient at exactly 0 is 0" in tests["relu_backward"]["output"]
    assert strict_json(gradescope_path)["score"] == 1


def test_a_policy_violation_scores_zero_on_gradescope(tmp_path):
    gradescope_path = tmp_path / "results.json"
    assert check(FIXTURES / "hostile_monkeypatch.py", "--gradescope", gradescope_path) == 1
    results = strict_json(gradescope_path)
    tests = {t["name"]: t for t in results["tests"]}
    assert tests["relu_forward"]["score"] == 1.0
    policy = next(t for name, t in tests.items() if name.startswith("import policy"))
    assert "tinycnn" in policy["output"]
    assert results["score"] == 0.0


def test_allow_import_lifts_the_policy_for_one_name(tmp_path):
    json_path = tmp_path / "out.json"
    assert (
        check(FIXTURES / "hostile_exit_at_import.py", "--allow-import", "sys", "--json", json_path)
        == 1
    )
    document = strict_json(json_path)
    assert document["policy"] == []
    assert "SystemExit" in document["functions"]["relu_forward"]["detail"]


def test_fake_results_printed_by_the_submission_never_reach_the_output(capfd):
    assert check(FIXTURES / "hostile_fake_prints.py") == 1
    captured = capfd.readouterr()
    assert "FAKE-RESULT" not in captured.out + captured.err
    assert '{"passed": true' not in captured.out
    assert "result: FAIL, 0 of 9 functions pass" in captured.out


@pytest.mark.parametrize(
    "argv",
    [
        ["no_such_file.py"],
        [str(REPO / "pyproject.toml")],  # not a .py file
        [str(TEMPLATE), "--timeout", "-1"],
        [str(TEMPLATE), "--timeout", "soon"],
        [str(TEMPLATE), "--memory", "0"],
        [str(TEMPLATE), "--allow-import", "not a module"],
        [str(TEMPLATE), "--no-such-option"],
        [str(TEMPLATE), "--json", "/no/such/directory/out.json"],
        # Gradescope grades one submission (a folder is one student's): no folder-only options
        [str(FIXTURES), "--gradescope", "results.json", "--jobs", "2"],
        [str(TEMPLATE), "--jobs", "2"],  # folder-only option
    ],
    ids=[
        "missing-file",
        "not-python",
        "negative-timeout",
        "bad-timeout",
        "zero-memory",
        "bad-module",
        "unknown-option",
        "json-dir-missing",
        "gradescope-folder-jobs",
        "jobs-file",
    ],
)
def test_usage_errors_exit_2_before_grading(argv, capfd):
    assert check(*argv) == 2
    assert "error" in capfd.readouterr().err


def test_an_empty_folder_is_a_usage_error(tmp_path):
    assert check(tmp_path) == 2


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_an_unwritable_output_is_one_line_and_status_2_through_the_real_main(capfd):
    # /proc exists and, as root, os.access says it is writable: only the write itself fails.
    from tinycnn.cli import main

    for option in ("--json", "--gradescope"):
        status = main(
            [
                "check",
                str(FIXTURES / "hostile_syntax_error.py"),
                "--no-train",
                option,
                "/proc/no_such_output.json",
            ]
        )
        err = capfd.readouterr().err
        assert status == 2
        assert err.startswith("tinycnn check: error: cannot write /proc/no_such_output.json")
        assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_an_unwritable_default_summary_csv_is_a_usage_error(tmp_path, capfd):
    shutil.copy(FIXTURES / "hostile_syntax_error.py", tmp_path / "bob.py")
    (tmp_path / "check_summary.csv").mkdir()  # the default summary path cannot be written
    assert check(tmp_path, "--no-train", "--jobs", "1") == 2
    err = capfd.readouterr().err
    assert "cannot write" in err and "check_summary.csv" in err and "Traceback" not in err


def test_the_help_defaults_are_the_sandbox_limits():
    assert (DEFAULT_TIMEOUT, DEFAULT_MEMORY_MB) == (Limits().timeout, Limits().memory_mb)
    args = parser().parse_args(["check", "s.py"])
    assert (args.timeout, args.memory) == (Limits().timeout, Limits().memory_mb)


def test_building_the_cli_parser_does_not_import_the_grader():
    # Every `tinycnn` command builds the whole parser; grading modules load only for `check`.
    code = (
        "import sys, tinycnn.cli; tinycnn.cli.build_parser(); "
        "print(sorted(m for m in sys.modules if m.startswith(('tinycnn.grading.', "
        "'tinycnn.parity_tests'))))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert run.stdout.strip() == "['tinycnn.grading.command']"
    lazy = (
        "from tinycnn.grading import SubmissionReport, grade_submission; "
        "from tinycnn.grading.grader import grade_submission as g; "
        "assert grade_submission is g and SubmissionReport"
    )
    subprocess.run([sys.executable, "-c", lazy], check=True, cwd=REPO)


@pytest.mark.slow
def test_folder_mode_grades_every_file_in_parallel_and_writes_a_summary_csv(tmp_path, capfd):
    for name in ("correct_vectorized", "buggy_relu_zero_gradient", "hostile_syntax_error"):
        shutil.copy(FIXTURES / f"{name}.py", tmp_path / f"{name}.py")
    (tmp_path / "notes.txt").write_text("not a submission")
    json_path = tmp_path / "all.json"
    assert check(tmp_path, "--jobs", "2", "--no-train", "--json", json_path) == 1
    out = capfd.readouterr().out
    assert "1 of 3 submissions pass" in out
    # The project's one markdown renderer: a pipe table, one row per submission.
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert [cell.strip() for cell in table[0].strip("|").split("|")] == [
        "submission",
        "result",
        "passed",
        "not passing",
        "first reason",
    ]
    rows_shown = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in table[2:]}
    assert rows_shown == {
        "buggy_relu_zero_gradient.py": "FAIL",
        "correct_vectorized.py": "PASS",
        "hostile_syntax_error.py": "FAIL",
    }
    with open(tmp_path / "check_summary.csv", newline="") as handle:
        rows = {Path(row["submission"]).stem: row for row in csv.DictReader(handle)}
    assert set(rows) == {"correct_vectorized", "buggy_relu_zero_gradient", "hostile_syntax_error"}
    assert rows["correct_vectorized"]["passed"] == "True"
    assert rows["correct_vectorized"]["functions_passed"] == "9"
    assert rows["buggy_relu_zero_gradient"]["relu_backward"] == "fail"
    assert rows["buggy_relu_zero_gradient"]["relu_forward"] == "pass"
    assert {rows["hostile_syntax_error"][name] for name in CONTRACT_FUNCTIONS} == {"error"}
    document = strict_json(json_path)
    assert document["passed"] is False and len(document["submissions"]) == 3


@pytest.mark.slow
def test_folder_mode_exits_0_when_every_submission_passes(tmp_path):
    folder = tmp_path / "submissions"
    folder.mkdir()
    shutil.copy(FIXTURES / "correct_vectorized.py", folder / "alice.py")
    summary = tmp_path / "summary.csv"
    assert check(folder, "--no-train", "--csv", summary) == 0
    assert summary.read_text().splitlines()[0].startswith("submission,passed,functions_passed")


@pytest.mark.slow
def test_the_installed_entry_point_grades_the_template_as_failing():
    # The real `tinycnn` command (through python -m), as a student runs it.
    result = subprocess.run(
        [sys.executable, "-m", "tinycnn.grading", str(TEMPLATE), "--timeout", "5"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "every function: not implemented yet" in result.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "tinycnn.grading", "missing.py"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1  # one line, no traceback


def test_gradescope_visibility_and_points_are_options(tmp_path):
    path = tmp_path / "results.json"
    assert (
        check(
            FIXTURES / "buggy_relu_zero_gradient.py",
            "--gradescope",
            path,
            "--visibility",
            "after_due_date",
            "--max-score",
            "2.5",
        )
        == 1
    )
    results = strict_json(path)
    assert results["visibility"] == "after_due_date"
    by_name = {t["name"]: t for t in results["tests"]}
    assert all(by_name[name]["visibility"] == "after_due_date" for name in CONTRACT_FUNCTIONS)
    assert all(by_name[name]["max_score"] == 2.5 for name in CONTRACT_FUNCTIONS)
    assert by_name["relu_forward"]["score"] == 2.5 and by_name["relu_backward"]["score"] == 0
    assert results["score"] == 2.5
    assert check(FIXTURES / "correct_vectorized.py", "--max-score", "0") == 2
    assert check(FIXTURES / "correct_vectorized.py", "--visibility", "secret") == 2


def test_every_finding_reaches_gradescope_as_it_reaches_the_json(tmp_path):
    json_path, gradescope_path = tmp_path / "out.json", tmp_path / "results.json"
    fixture = FIXTURES / "buggy_pool_float64_ties.py"
    assert check(fixture, "--json", json_path, "--gradescope", gradescope_path) == 1
    entry = strict_json(json_path)["functions"]["maxpool2d_backward"]
    assert [(f["output"], f["kind"]) for f in entry["findings"]] == [
        ("dx", "values"),
        ("dx", "dtype"),
    ]
    assert [f["hint_ids"] for f in entry["findings"]] == [["ties"], ["keep-dtype"]]
    test = {t["name"]: t for t in strict_json(gradescope_path)["tests"]}["maxpool2d_backward"]
    assert test["output"] == "fail: " + entry["detail"]
    assert all(f["hint"] in test["output"] for f in entry["findings"])


@pytest.mark.parametrize(
    "source",
    ["x = " + "+".join(["1"] * 3000) + "\n", "x = " + "-" * 5000 + "1\n"],
    ids=["long-sum", "deep-unary"],
)
def test_source_too_deep_to_parse_is_a_verdict_not_a_crash(tmp_path, capfd, source):
    # Found by attacking the checker: the parent's import scan raised RecursionError/MemoryError,
    # so no table, no results.json and, in folder mode, no summary for anyone.
    deep = tmp_path / "deep.py"
    deep.write_text(source)
    gradescope_path = tmp_path / "results.json"
    assert check(deep, "--no-train", "--gradescope", gradescope_path) == 1
    out = capfd.readouterr().out
    assert "does not compile" in out and "nested too deeply" in out
    assert strict_json(gradescope_path)["score"] == 0


@pytest.mark.slow
def test_source_too_deep_to_parse_in_a_helper_module_spares_the_folder(tmp_path, capfd):
    shutil.copy(FIXTURES / "correct_vectorized.py", tmp_path / "alice.py")
    (tmp_path / "bob").mkdir()
    shutil.copy(FIXTURES / "correct_vectorized.py", tmp_path / "bob" / "ops.py")
    (tmp_path / "bob" / "helper.py").write_text("x = " + "+".join(["1"] * 3000) + "\n")
    assert check(tmp_path, "--no-train", "--entry", "ops") in (0, 1)
    out = capfd.readouterr().out
    assert "alice.py" in out and "Traceback" not in out
    with open(tmp_path / "check_summary.csv", newline="") as handle:
        rows = {Path(row["submission"]).stem: row for row in csv.DictReader(handle)}
    assert rows["alice"]["passed"] == "True"


@pytest.mark.slow
def test_folder_mode_keeps_names_that_are_not_utf8_or_clean_to_the_same_text(tmp_path, capfd):
    # Attacker, session 6, F5 and F6: a name that is not UTF-8 (what unzip makes of a Windows
    # zip's "café") lost the CSV and the JSON of the whole class; "b\x7fob" cleaned to "bob" and
    # its FAIL replaced bob's PASS in --json.
    folder = tmp_path / "class"
    folder.mkdir()
    shutil.copy(FIXTURES / "correct_vectorized.py", folder / "bob.py")
    shutil.copy(FIXTURES / "buggy_pass_bodies.py", folder / "b\x7fob.py")
    shutil.copy(FIXTURES / "correct_vectorized.py", os.fsdecode(bytes(folder) + b"/caf\xe9.py"))
    summary, document = tmp_path / "summary.csv", tmp_path / "all.json"
    assert check(folder, "--no-train", "--jobs", "2", "--csv", summary, "--json", document) == 1
    out = capfd.readouterr().out
    table = [line.split("|")[1:3] for line in out.splitlines() if line.startswith("| ")][1:]
    assert {name.strip(): verdict.strip() for name, verdict in table} == {
        "bob.py": "PASS",
        "b\\x7fob.py": "FAIL",
        "caf\\xe9.py": "PASS",
    }
    with open(summary, newline="", encoding="utf-8") as handle:
        rows = {row["submission"]: row["passed"] for row in csv.DictReader(handle)}
    assert rows == {"bob.py": "True", "b\\x7fob.py": "False", "caf\\xe9.py": "True"}
    passed = {Path(k).name: v["passed"] for k, v in strict_json(document)["submissions"].items()}
    assert passed == {"bob.py": True, "b\\x7fob.py": False, "caf\\xe9.py": True}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tinycnn-")]


def test_an_output_that_cannot_be_encoded_leaves_no_temporary_file(tmp_path):
    from tinycnn.grading.command import _write

    with pytest.raises(UnicodeEncodeError):
        _write(str(tmp_path / "out.csv"), "caf\udce9")
    assert list(tmp_path.iterdir()) == []
