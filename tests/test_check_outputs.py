"""`tinycnn check`'s options that do not fit together, and outputs that would overwrite the
student's work (review findings 11 and 15): each is a one-line usage error (status 2) before
any grading, and the combinations that are fine still run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tinycnn.cli import main
from tinycnn.grading.command import _overwrites_submission

FIXTURES = Path(__file__).parent / "fixtures" / "submissions"
CORRECT = FIXTURES / "correct_vectorized.py"
CASE = "conv-n2c3f4-h7w5-k3x3-s1-p0-f64"


def usage_error(capfd, *argv) -> str:
    """Run ``tinycnn check ARGV``; assert status 2 and one line on stderr; return it."""
    status = main(["check", *map(str, argv)])
    captured = capfd.readouterr()
    assert status == 2, captured.out
    assert captured.err.count("\n") == 1 and captured.out == "", captured.err
    return captured.err


@pytest.mark.parametrize("option", ["--json", "--gradescope"])
def test_case_with_an_output_option_is_a_usage_error_not_a_silent_drop(option, tmp_path, capfd):
    output = tmp_path / "out.json"
    err = usage_error(capfd, CORRECT, "--case", CASE, option, output)
    assert "--case prints one case" in err and not output.exists()


def test_an_output_that_is_the_submission_or_inside_it_is_refused(tmp_path, capfd):
    victim = tmp_path / "victim.py"
    shutil.copy(CORRECT, victim)
    for option in ("--json", "--gradescope"):
        err = usage_error(capfd, victim, option, victim)
        assert f"{option} {victim} is the submission itself" in err
    assert victim.read_bytes() == CORRECT.read_bytes()
    folder = tmp_path / "alice"
    folder.mkdir()
    shutil.copy(CORRECT, folder / "layers.py")
    err = usage_error(capfd, folder, "--gradescope", folder / "results.json")
    assert "is inside the submission folder" in err and not (folder / "results.json").exists()
    usage_error(capfd, folder, "--one-submission", "--json", folder / "layers.py")
    assert (folder / "layers.py").read_bytes() == CORRECT.read_bytes()
    # A class: a student's file or folder is refused; the class folder itself is fine.
    err = usage_error(capfd, tmp_path, "--csv", victim)
    assert "would be (or overwrite) a submission of the class" in err
    err = usage_error(capfd, tmp_path, "--json", folder / "out.json")
    assert "inside alice/, a student's submission folder" in err
    err = usage_error(capfd, tmp_path, "--csv", tmp_path / "new.py")
    assert "a submission of the class" in err
    for fine in (tmp_path / "summary.csv", tmp_path / "grades.json"):
        assert _overwrites_submission("--csv", str(fine), tmp_path, True) is None
    assert _overwrites_submission("--json", str(tmp_path / "out.json"), victim, False) is None


def test_entry_for_a_single_file_must_name_it(tmp_path, capfd):
    single = tmp_path / "single_file.py"
    shutil.copy(CORRECT, single)
    err = usage_error(capfd, single, "--entry", "x.py")
    assert "--entry x.py: " in err and "is a single file (module single_file)" in err
    # Naming the file itself is fine; so is an output that is a link to the submission: the
    # link is replaced, the submission is not touched.
    link = tmp_path / "link.json"
    link.symlink_to(single)
    status = main(
        ["check", str(single), "--entry", "single_file", "--no-train", "--json", str(link)]
    )
    assert status == 0
    assert single.read_bytes() == CORRECT.read_bytes()
    assert not link.is_symlink() and link.read_text().startswith("{")
    # The file's path names the same module (before: "--entry ./single_file.py: ... is a
    # single file (module single_file)", a refusal that named what it refused).
    assert main(["check", str(single), "--entry", "./single_file.py", "--no-train"]) == 0


NAMES = [
    "bob",
    "b\x7fob",
    "b\u200bob",
    "bo\x1b[0mb",
    "b\nob",
    "b\\x7fob",
    "b\\ob",
    "caf\udce9",
    "caf\xe9",
    "caf\\xe9",
    "\x85",
    "\udc85",
    "\u0085",
    "\ud800",
    "a" * 400,
    "a" * 399 + "b",
]


def test_clean_name_tells_every_name_apart_and_is_plain_printable_utf8():
    # Attacker, session 6, F6: names that clean_text made equal took each other's place.
    from tinycnn.grading.channel import _CONTROL, clean_name

    cleaned = [clean_name(name) for name in NAMES]
    assert len(set(cleaned)) == len(set(NAMES))
    for text in cleaned:
        text.encode("utf-8")  # no lone surrogate left (F5)
        assert not _CONTROL.search(text) and "\n" not in text and "\x1b" not in text
    assert clean_name("caf\udce9") == "caf\\xe9" and clean_name("caf\xe9") == "café"
    assert clean_name("b\x7fob") == "b\\x7fob" and clean_name("b\\ob") == "b\\\\ob"


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["file", "folder"])
def test_text_no_output_can_encode_is_escaped_and_every_output_is_written(mode, tmp_path):
    # Attacker, session 6, F11: a lone surrogate in an exception message or class name killed the
    # checker at its first print: no table, no --json, no Gradescope results, no class CSV.
    import csv
    import json
    import os
    import subprocess
    import sys

    hostile = FIXTURES / "hostile_surrogate_text.py"
    outputs = {"--json": tmp_path / "verdict.json"}
    if mode == "file":
        target, outputs["--gradescope"] = hostile, tmp_path / "results.json"
    else:
        target, outputs["--csv"] = tmp_path / "class", tmp_path / "summary.csv"
        target.mkdir()
        shutil.copy(hostile, target / "alice.py")
        shutil.copy(CORRECT, target / "bob.py")
    argv = [str(target), "--no-train", *[str(x) for pair in outputs.items() for x in pair]]
    completed = subprocess.run(
        [sys.executable, "-m", "tinycnn", "check", *argv],
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},  # strict, as a terminal's
        timeout=300,
        check=False,
    )
    assert completed.returncode == 1, completed.stderr.decode("utf-8", "replace")
    out = completed.stdout.decode("utf-8")  # strict: it must be UTF-8
    assert "Traceback" not in completed.stderr.decode("utf-8", "replace")
    assert "bad \\ud800 value \\xe9" in out if mode == "file" else "alice.py" in out
    for path in outputs.values():
        path.read_text(encoding="utf-8")  # strict: written, and UTF-8
    document = json.loads(outputs["--json"].read_text())
    if mode == "file":
        functions = document["functions"]
        assert functions["relu_forward"]["status"] == "error"
        assert "worse \\udfff" in functions["relu_backward"]["detail"]  # from __str__, escaped
    else:
        passed = {Path(k).name: v["passed"] for k, v in document["submissions"].items()}
        assert passed == {"alice.py": False, "bob.py": True}
        with open(outputs["--csv"], newline="", encoding="utf-8") as handle:
            assert [row["submission"] for row in csv.DictReader(handle)] == ["alice.py", "bob.py"]


def test_clean_text_writes_a_lone_surrogate_as_its_escape():
    from tinycnn.grading.channel import clean_text

    assert clean_text("bad \ud800 value \udce9") == "bad \\ud800 value \\xe9"
    clean_text("\udfff" * 1000).encode("utf-8")


def test_clean_name_escapes_what_a_reader_cannot_see_without_collisions():
    # Review, session 6: a word joiner (U+2060) left "b\u2060ob" looking like "bob".
    from tinycnn.grading.channel import clean_name

    names = ["bob", "b\u2060ob", "b\u00a0ob", "b ob", "\ue000" + "1", "\U000e0001", "b\u2028ob"]
    cleaned = [clean_name(name) for name in names]
    assert len(set(cleaned)) == len(names)
    assert cleaned[1] == "b\\u2060ob" and cleaned[3] == "b ob" and cleaned[5] == "\\U000e0001"
    assert all(c.isprintable() for c in cleaned)


@pytest.mark.parametrize(
    ("name", "shown"), [("bob.py", "bob.py"), ("it's.py", "'it'\"'\"'s.py'"), ("a\\b.py", "FILE")]
)
def test_the_one_case_command_names_the_file_only_when_its_name_is_its_own(name, shown):
    # Review, session 6: a name clean_name escaped ("a\\\\b.py", "caf\\\\xe9.py") is not the
    # file's name; pasting the command failed with "no such file".
    from tinycnn.reference.ops import CONTRACT_FUNCTIONS

    from tinycnn.grading.channel import clean_name
    from tinycnn.grading.grader import Finding, FunctionResult, SubmissionReport
    from tinycnn.grading.report import _reproduce_line

    finding = Finding("dx", "value", (CASE,), 1, (("float64", 1),), (), CASE, "wrong")
    functions = {n: FunctionResult(n, "pass") for n in CONTRACT_FUNCTIONS}
    functions["conv2d_backward"] = FunctionResult("conv2d_backward", "fail", findings=[finding])
    report = SubmissionReport(clean_name(name), functions, [], None)
    assert _reproduce_line(report) == f"one case in full: tinycnn check {shown} --case {CASE}"


def test_require_sandbox_names_the_variable_that_forced_a_weaker_level(capfd, monkeypatch):
    # New user, session 6, finding 3: the message said to install bubblewrap, which was there.
    monkeypatch.setenv("TINYCNN_SANDBOX", "process")
    err = usage_error(capfd, CORRECT, "--require-sandbox")
    assert "TINYCNN_SANDBOX=process forces level 'process'; unset it" in err
    assert "install" not in err
