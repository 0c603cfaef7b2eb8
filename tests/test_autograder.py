"""`tinycnn autograder`: the Gradescope zip, and run_autograder end to end in Gradescope's
layout (https://gradescope-autograders.readthedocs.io/en/latest/specs/) under a temporary root.

The simulation does what Gradescope does, minus the image build: the zip is extracted into
ROOT/source, run_autograder is copied to ROOT/run_autograder, the submission is put in
ROOT/submission, run_autograder runs with ROOT as working directory, and ROOT/results/results.json
is read. Instead of /autograder/venv (made by setup.sh), TINYCNN_GRADESCOPE_PYTHON points at this
test's Python, which has this project installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from tinycnn.reference.ops import CONTRACT_FUNCTIONS

from tinycnn import autograder
from tinycnn.cli import CommandError, main

FIXTURES = Path(__file__).parent / "fixtures" / "submissions"
COURSES = Path(__file__).parent / "fixtures" / "courses"


@pytest.fixture(scope="module")
def fake_wheel(tmp_path_factory) -> Path:
    """A stand-in wheel: the simulation never installs it (the real one: a slow test)."""
    path = tmp_path_factory.mktemp("wheel") / "tinycnn-0.1.0-py3-none-any.whl"
    path.write_bytes(b"not installed by the simulation")
    return path


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, fake_wheel) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "autograder.zip"
    return autograder.build_bundle(
        out, ["--timeout", "20"], wheel=fake_wheel, torch_version="2.13.0"
    )


@pytest.fixture(scope="module")
def quick_bundle(tmp_path_factory, fake_wheel) -> Path:
    """A bundle without the training run: an end-to-end grading in about a second."""
    out = tmp_path_factory.mktemp("quick") / "autograder.zip"
    return autograder.build_bundle(
        out, ["--no-train", "--timeout", "20"], wheel=fake_wheel, torch_version="2.13.0"
    )


def lay_out(folder: Path, files: dict[str, bytes | Path]) -> None:
    """Write ``files`` (relative paths) under ``folder``; a Path value makes a symbolic link."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            path.symlink_to(content)
        else:
            path.write_bytes(content)


def simulate(
    bundle: Path,
    root: Path,
    submission: dict[str, bytes | Path] | None,
    python: str = sys.executable,
) -> tuple[dict, subprocess.CompletedProcess]:
    """Lay out ROOT like Gradescope, run run_autograder, return (results.json, the run).

    ``submission`` maps paths inside ROOT/submission to bytes, or to a Path for a link."""
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    if submission is not None:
        lay_out(root / "submission", submission)
    completed = subprocess.run(
        ["bash", str(root / "run_autograder")],
        cwd=root,
        env={
            **os.environ,
            autograder.ROOT_VARIABLE: str(root),
            autograder.PYTHON_VARIABLE: python,
        },
        capture_output=True,
        text=True,
        timeout=600,
    )
    results = json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))
    return results, completed


def fixture(name: str) -> dict[str, bytes]:
    return {f"{name}.py": (FIXTURES / f"{name}.py").read_bytes()}


def scores(results: dict) -> dict[str, float]:
    return {test["name"]: test["score"] for test in results["tests"]}


def assert_failed_with(results: dict, *phrases: str) -> None:
    assert results["score"] == 0
    assert [t["status"] for t in results["tests"]] == ["failed"]
    for phrase in phrases:
        assert phrase in results["output"] and phrase in results["tests"][0]["output"]


# -- the zip -------------------------------------------------------------------------------------


def test_zip_has_gradescopes_files_at_its_root(bundle, fake_wheel):
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
        setup = archive.read("setup.sh").decode()
        config = json.loads(archive.read(autograder.CONFIG_NAME))
    assert set(names) == {"setup.sh", "run_autograder", autograder.CONFIG_NAME, fake_wheel.name}
    for script in ("setup.sh", "run_autograder"):
        assert modes[script] & stat.S_IXUSR, f"{script} must be executable"
    assert "apt-get install" in setup and "bubblewrap" in setup
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in setup
    assert f"pip install ./{fake_wheel.name}" in setup
    assert config["check_args"] == ["--timeout", "20"]
    subprocess.run(["bash", "-n", "-c", setup], check=True)  # valid bash


def test_two_builds_of_the_zip_are_byte_identical(tmp_path, fake_wheel, monkeypatch):
    # Issue 10 review: the wheel went in with `archive.write`, carrying the wheel file's own
    # time and mode, so two builds differed. Here the second build's wheel has another time
    # and mode, and is built in another folder: the zips must still be the same bytes.
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    first = autograder.build_bundle(
        tmp_path / "a.zip", ["--timeout", "20"], wheel=fake_wheel, torch_version="2.13.0"
    )
    other = tmp_path / "later" / fake_wheel.name
    other.parent.mkdir()
    other.write_bytes(fake_wheel.read_bytes())
    os.utime(other, (1_900_000_000, 1_900_000_000))
    other.chmod(0o600)
    second = autograder.build_bundle(
        tmp_path / "b.zip", ["--timeout", "20"], wheel=other, torch_version="2.13.0"
    )
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == [
        "setup.sh",
        "run_autograder",
        autograder.CONFIG_NAME,
        fake_wheel.name,
    ]
    assert {i.date_time for i in infos} == {(2020, 1, 1, 0, 0, 0)}
    assert [stat.S_IMODE(i.external_attr >> 16) for i in infos] == [0o755, 0o755, 0o644, 0o644]
    assert all(stat.S_ISREG(i.external_attr >> 16) for i in infos)


def test_the_zip_is_stamped_with_source_date_epoch(tmp_path, fake_wheel, monkeypatch):
    # reproducible-builds.org's convention: SOURCE_DATE_EPOCH, seconds since 1970 (UTC).
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # 2023-11-14 22:13:20 UTC
    out = autograder.build_bundle(tmp_path / "a.zip", wheel=fake_wheel, torch_version="2.13.0")
    with zipfile.ZipFile(out) as archive:
        assert {i.date_time for i in archive.infolist()} == {(2023, 11, 14, 22, 13, 20)}
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")  # before 1980: a zip's earliest time
    out = autograder.build_bundle(tmp_path / "b.zip", wheel=fake_wheel, torch_version="2.13.0")
    with zipfile.ZipFile(out) as archive:
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(CommandError, match="SOURCE_DATE_EPOCH='yesterday': expected whole"):
        autograder.build_bundle(tmp_path / "c.zip", wheel=fake_wheel, torch_version="2.13.0")


@pytest.mark.slow  # two pip builds of this project's wheel
def test_two_builds_with_the_wheel_built_here_are_byte_identical(tmp_path, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    first = autograder.build_bundle(tmp_path / "a.zip", torch_version="2.13.0")
    second = autograder.build_bundle(tmp_path / "b.zip", torch_version="2.13.0")
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize(
    "check_args, message",
    [
        (["--timeout", "-1"], "expected a positive number of seconds"),
        (["--no-such-option"], "unrecognized arguments: --no-such-option"),
        (["--gradescope", "x.json"], "--gradescope is set by the autograder itself"),
        (["other.py"], "unrecognized arguments: other.py"),
        # A bundle that runs one case writes no results.json: every student would get 0.
        (["--case", "conv-n2c3f4-h7w5-k3x3-s1-p0-f64"], "--case runs one case"),
        # A fixed seed gives every student the same hidden cases, and each result prints it.
        (
            ["--seed", "42"],
            "--seed would give every student, and every resubmission, the same hidden cases",
        ),
        (["--se", "42"], "--seed would give"),  # argparse's abbreviations are caught too
        (["--gradesc", "x.json"], "--gradescope is set by the autograder itself"),
        (["--jobs=2"], "--jobs applies to a folder of submissions"),
    ],
)
def test_bad_check_options_are_refused_before_building(tmp_path, fake_wheel, check_args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        autograder.build_bundle(tmp_path / "a.zip", check_args, wheel=fake_wheel)
    assert not (tmp_path / "a.zip").exists()


def test_a_refused_option_is_a_one_line_usage_error(capsys, tmp_path, fake_wheel):
    out = tmp_path / "a.zip"
    status = main(
        ["autograder", "--out", str(out), "--wheel", str(fake_wheel), "--", "--seed", "7"]
    )
    err = capsys.readouterr().err
    assert status == 2 and len(err.splitlines()) == 1 and "--seed" in err
    assert not out.exists()


def test_command_checks_its_output_first(capsys, tmp_path, fake_wheel):
    status = main(
        ["autograder", "--out", str(tmp_path / "no" / "a.zip"), "--wheel", str(fake_wheel)]
    )
    err = capsys.readouterr().err
    assert status == 2 and "no such directory" in err and len(err.splitlines()) == 1


# -- run_autograder always writes results.json -----------------------------------------------


def test_a_notebook_that_is_not_one_gets_results_saying_why(bundle, tmp_path):
    # Notebooks are graded (their definitions); one nbformat cannot read is every function's error.
    results, run = simulate(bundle, tmp_path, {"ops.ipynb": b'{"cells": [}'})
    assert run.returncode == 0 and results["score"] == 0
    outputs = [test["output"] for test in results["tests"]]
    assert any("ops.ipynb is not a Jupyter notebook" in output for output in outputs)


def test_a_file_check_refuses_gets_a_failed_result_with_the_reason(bundle, tmp_path):
    # `tinycnn check` ends with a usage error (status 2): its one line reaches the student.
    results, run = simulate(bundle, tmp_path, {"ops.pdf": b"%PDF-1.4"})
    assert_failed_with(results, "could not be graded", "ops.pdf")
    assert run.returncode == 0


def test_an_empty_or_missing_submission_gets_a_failed_result(bundle, tmp_path):
    results, _ = simulate(bundle, tmp_path / "empty", {})
    assert_failed_with(results, "the submission is empty")
    results, _ = simulate(bundle, tmp_path / "missing", None)
    assert_failed_with(results, "no submission folder")


# -- what of the upload is graded ----------------------------------------------------------

CORRECT = (FIXTURES / "correct_vectorized.py").read_bytes()
#: A student's own test file, beside the graded module in a repository upload.
TESTS = b"import layers\n\n\ndef test_relu():\n    pass\n"


@pytest.mark.parametrize(
    "files, graded",
    [
        ({"layers.py": CORRECT}, "layers.py"),
        ({"hw2/layers.py": CORRECT}, "hw2/layers.py"),  # one file anywhere: that file
        ({"layers.py": CORRECT, "utils.py": b"", "notes.md": b""}, "."),
        # A zipped folder, beside a README, with macOS's and Python's leftovers: the folder.
        ({"hw2/layers.py": CORRECT, "hw2/README.md": b""}, "hw2"),
        (
            {
                "README.md": b"",
                "hw2/layers.py": CORRECT,
                "hw2/utils.py": b"",
                "__MACOSX/hw2/._layers.py": b"",
                ".DS_Store": b"",
                "hw2/__pycache__/layers.cpython-311.pyc": b"",
            },
            "hw2",
        ),
        ({"a/b/layers.py": CORRECT, "a/b/utils.py": b"", "a/notes.txt": b""}, "a/b"),
        ({"a/b/layers.py": CORRECT, "a/layers_old.py": b""}, "a"),  # a .py at a's top: a
        ({"layers.py": CORRECT, "hw2/utils.py": b""}, "."),  # a .py at the top: the top
        # A package is graded from the folder holding it (its modules import it by name).
        ({"hw/__init__.py": b"", "hw/layers.py": CORRECT, "hw/utils.py": b""}, "."),
        ({"a/hw/__init__.py": b"", "a/hw/layers.py": CORRECT, "a/README.md": b""}, "a"),
        # A repository (Gradescope's GitHub upload): the folder that defines the functions.
        ({"README.md": b"# hw", "src/layers.py": CORRECT, "tests/test_layers.py": TESTS}, "src"),
    ],
)
def test_the_graded_file_or_folder_of_an_upload(tmp_path, files, graded):
    lay_out(tmp_path / "submission", files)
    target = autograder._submission_target(tmp_path / "submission")
    assert target == (tmp_path / "submission" / graded).resolve()


def test_a_course_apis_names_choose_the_folder_of_a_course_bundles_upload(tmp_path):
    # The course's layers.py in hw/ beside the student's tests/: for a course bundle the
    # course's function names make hw/ the folder that defines the functions.
    course = (COURSES / "cs231n_layers_float64.py").read_bytes()
    lay_out(tmp_path / "submission", {"hw/layers.py": course, "tests/test_layers.py": TESTS})
    target = autograder._submission_target(tmp_path / "submission", api="cs231n")
    assert target == (tmp_path / "submission" / "hw").resolve()


@pytest.mark.parametrize(
    "files, message",
    [
        ({"a/layers.py": CORRECT, "b/layers.py": CORRECT}, "in several folders (a/, b/)"),
        ({"layers.py": Path("/etc/hostname")}, "symbolic link (layers.py)"),
        ({"layers.py": CORRECT, "hw2": Path("/usr/lib")}, "symbolic link (hw2)"),
        ({"hw2/layers.py": CORRECT, "hw2/im2col.py": Path("../x.py")}, "link (hw2/im2col.py)"),
        # Attack finding F7: names reach the student's results.json and the instructor's log,
        # cleaned as tinycnn check cleans them (no ANSI escapes, no newlines).
        (
            {
                "hw \x1b[2J\x1b[31mYOUR SCORE: 100\x1b[0m/layers.py": CORRECT,
                "hw2/layers.py": CORRECT,
            },
            "in several folders (hw YOUR SCORE: 100/, hw2/)",
        ),
        ({"a\nSCORE: 100/layers.py": CORRECT, "b/layers.py": CORRECT}, "(a SCORE: 100/, b/)"),
        ({"layers.py": CORRECT, "x\x1b[31m\ny.py": Path("/etc/hostname")}, "link (x y.py)"),
    ],
)
def test_uploads_that_are_refused_with_a_message(tmp_path, files, message):
    lay_out(tmp_path / "submission", files)
    with pytest.raises(ValueError, match=re.escape(message)) as raised:
        autograder._submission_target(tmp_path / "submission")
    assert "\x1b" not in str(raised.value) and "\n" not in str(raised.value)


def test_a_link_to_the_installed_reference_gets_0_and_says_why(quick_bundle, tmp_path):
    # The reference ops sit at a predictable path in the image; a link must never be graded.
    import tinycnn.reference.ops as reference

    results, run = simulate(quick_bundle, tmp_path, {"layers.py": Path(reference.__file__)})
    assert_failed_with(results, "symbolic link (layers.py)", "upload the file itself")
    assert run.returncode == 0


def test_a_zipped_folder_beside_a_readme_gets_every_point(quick_bundle, tmp_path):
    upload = {"README.md": b"notes", "hw2/layers.py": CORRECT, "hw2/README.md": b"notes"}
    upload["__MACOSX/hw2/._layers.py"] = b"\x00\x05\x16\x07"
    results, _ = simulate(quick_bundle, tmp_path, upload)
    assert all(scores(results)[name] > 0 for name in CONTRACT_FUNCTIONS), results["output"]
    assert results["score"] == len(CONTRACT_FUNCTIONS)


def test_two_candidate_files_get_advice_a_student_can_follow(quick_bundle, tmp_path):
    # layers.py and a leftover copy define the same functions: the student cannot pass --entry.
    results, _ = simulate(quick_bundle, tmp_path, {"layers.py": CORRECT, "layers_old.py": CORRECT})
    assert results["score"] == 0
    for test in results["tests"]:
        assert "cannot tell which file" in test["output"], test["output"]
        assert "upload only the file with your functions" in test["output"]
        assert "--entry" not in test["output"]


def test_advice_for_the_instructor_is_reworded_for_the_student(quick_bundle, tmp_path):
    # CS231n-style code to a bundle of the op contract, and an import the rule refuses: the
    # student can pass neither --api nor --allow-import.
    course = (COURSES / "cs231n_layers_correct.py").read_bytes()
    results, _ = simulate(quick_bundle, tmp_path, {"layers.py": b"import scipy\n" + course})
    outputs = "\n".join(t["output"] for t in results["tests"])
    assert "your functions look written for the cs231n course API" in outputs, outputs
    assert "import scipy (line 1) is not allowed" in outputs
    assert "--api" not in outputs and "--allow-import" not in outputs


def test_the_output_shows_no_student_a_command_of_the_grading_server(quick_bundle, tmp_path):
    # "one case in full: tinycnn check /autograder/submission/... --case ID --seed N" and
    # "(--seed N repeats this run)" are the instructor's (new user session 7, finding 5).
    buggy = (FIXTURES / "buggy_conv_crop.py").read_bytes()
    results, _ = simulate(quick_bundle, tmp_path, {"layers.py": buggy})
    output = results["output"]
    assert "tinycnn check" not in output and "--seed" not in output and "--case" not in output
    assert re.search(r"the first failing case: \S+ \(your instructor can show it in full\)", output)
    assert re.search(r"; seed \d+\.", output), output  # the seed itself stays


def test_the_instructors_entry_option_chooses_the_file(tmp_path, fake_wheel):
    bundle = autograder.build_bundle(
        tmp_path / "autograder.zip", ["--no-train", "--entry", "layers"], wheel=fake_wheel
    )
    # Both files define the nine functions (without --entry: "cannot tell which file").
    old = CORRECT + b"\n\n" + (FIXTURES / "buggy_relu_zero_gradient.py").read_bytes()
    results, _ = simulate(bundle, tmp_path / "root", {"layers.py": CORRECT, "layers_old.py": old})
    assert results["score"] == len(CONTRACT_FUNCTIONS), results["output"]


@pytest.mark.slow
def test_the_instructors_entry_option_with_a_one_file_upload(tmp_path, fake_wheel):
    # check refuses --entry naming another module than a single file's; the bundle grades the
    # upload's folder instead, so the right name gets every point and another name a message.
    bundle = autograder.build_bundle(
        tmp_path / "autograder.zip", ["--no-train", "--entry", "layers"], wheel=fake_wheel
    )
    results, _ = simulate(bundle, tmp_path / "right", {"layers.py": CORRECT})
    assert results["score"] == len(CONTRACT_FUNCTIONS), results["output"]
    results, _ = simulate(bundle, tmp_path / "wrong", {"my_layers.py": CORRECT})
    assert results["score"] == 0
    assert all("name your file layers.py" in test["output"] for test in results["tests"]), results


def test_a_course_api_without_some_functions_grades_out_of_the_ones_it_has(tmp_path, fake_wheel):
    # deeplearning.ai's API has no ReLU, dense layer or loss: those five are no tests, so a
    # complete notebook gets every point. Its mask is made to give a tie to the first maximum
    # (the contract's rule; the course's `x == np.max(x)` marks every tied maximum).
    notebook = json.loads((COURSES / "deeplearning_ai_step_by_step.ipynb").read_text("utf-8"))
    (cell,) = [
        c for c in notebook["cells"] if "def create_mask_from_window" in "".join(c["source"])
    ]
    source = "".join(cell["source"])
    first_max = "mask = np.arange(x.size).reshape(x.shape) == np.argmax(x)"
    cell["source"] = source.replace("mask = (x == np.max(x))", first_max)
    assert cell["source"] != source
    bundle = autograder.build_bundle(
        tmp_path / "autograder.zip",
        ["--api", "deeplearning-ai", "--no-train"],
        wheel=fake_wheel,
        torch_version="2.13.0",
    )
    results, _ = simulate(bundle, tmp_path / "root", {"cnn.ipynb": json.dumps(notebook).encode()})
    graded = ["conv2d_forward", "conv2d_backward", "maxpool2d_forward", "maxpool2d_backward"]
    assert [t["name"] for t in results["tests"]] == graded, results["output"]
    assert all(
        t["status"] == "passed" and t["score"] == t["max_score"] == 1 for t in results["tests"]
    )
    assert results["score"] == 4
    assert results["output"].startswith("4 of 4 functions of the deeplearning-ai API pass")
    assert "not graded: relu_forward, relu_backward, linear_forward" in results["output"]


def test_a_broken_configuration_gets_a_failed_result(bundle, tmp_path):
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / autograder.CONFIG_NAME).write_text("{not json")
    with zipfile.ZipFile(bundle) as archive:  # everything but the configuration
        for name in ("run_autograder", "setup.sh"):
            archive.extract(name, tmp_path / "source")
    results, _ = simulate_existing(tmp_path, fixture("correct_vectorized"))
    assert_failed_with(results, "misconfigured")


def simulate_existing(root: Path, submission: dict[str, bytes]):
    (root / "submission").mkdir()
    for name, content in submission.items():
        (root / "submission" / name).write_bytes(content)
    completed = subprocess.run(
        ["bash", str(root / "source" / "run_autograder")],
        cwd=root,
        env={
            **os.environ,
            autograder.ROOT_VARIABLE: str(root),
            autograder.PYTHON_VARIABLE: sys.executable,
        },
        capture_output=True,
        text=True,
        timeout=600,
    )
    return json.loads((root / "results" / "results.json").read_text(encoding="utf-8")), completed


def test_without_a_working_python_the_shell_script_still_writes_a_result(bundle, tmp_path):
    results, _ = simulate(
        bundle, tmp_path, fixture("correct_vectorized"), python="/nonexistent/python"
    )
    assert_failed_with(results, "could not start its Python environment")


def test_a_crash_of_the_grader_gets_a_failed_result(bundle, tmp_path, monkeypatch):
    (tmp_path / "source").mkdir(parents=True)
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(tmp_path / "source")
    (tmp_path / "submission").mkdir()
    (tmp_path / "submission" / "ops.py").write_text("x = 1\n")

    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(autograder.subprocess, "run", explode)
    assert autograder.run(tmp_path) == 0
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    assert_failed_with(results, "the autograder crashed (RuntimeError: disk on fire)")


# -- end to end on a correct, a buggy and a hostile submission ------------------------------


@pytest.mark.slow
def test_correct_submission_gets_every_point(bundle, tmp_path):
    results, run = simulate(bundle, tmp_path, fixture("correct_vectorized"))
    assert set(scores(results)) >= set(CONTRACT_FUNCTIONS)
    assert all(scores(results)[name] > 0 for name in CONTRACT_FUNCTIONS)
    assert results["score"] == sum(t["max_score"] for t in results["tests"] if "max_score" in t)
    assert "tinycnn check" in run.stdout  # the instructor's log shows the command


@pytest.mark.slow
def test_buggy_submission_loses_exactly_the_buggy_function(bundle, tmp_path):
    # A correct file whose relu_backward is replaced by the fixture's (later definitions win):
    # it lets the gradient through at exactly 0, the one bug.
    source = (FIXTURES / "correct_vectorized.py").read_bytes() + b"\n\n"
    source += (FIXTURES / "buggy_relu_zero_gradient.py").read_bytes()
    results, _ = simulate(bundle, tmp_path, {"ops.py": source})
    lost = {name for name in CONTRACT_FUNCTIONS if scores(results)[name] == 0}
    assert lost == {"relu_backward"}
    assert 0 < results["score"] < sum(t.get("max_score", 0) for t in results["tests"])


@pytest.mark.slow
def test_hostile_submission_cannot_forge_its_results(bundle, tmp_path):
    results, _ = simulate(bundle, tmp_path, fixture("hostile_forges_gradescope_results"))
    assert results["score"] == 0
    assert all(scores(results)[name] == 0 for name in CONTRACT_FUNCTIONS)
    assert "all tests passed" not in json.dumps(results)


@pytest.mark.slow
def test_command_builds_the_zip_with_a_real_wheel_of_this_project(capsys, tmp_path):
    out = tmp_path / "autograder.zip"
    assert main(["autograder", "--out", str(out), "--", "--timeout", "15"]) == 0
    assert "wrote" in capsys.readouterr().out
    with zipfile.ZipFile(out) as archive:
        (wheel_name,) = [n for n in archive.namelist() if n.endswith(".whl")]
        archive.extract(wheel_name, tmp_path)
        setup = archive.read("setup.sh").decode()
    assert f"pip install ./{wheel_name}" in setup
    with zipfile.ZipFile(tmp_path / wheel_name) as wheel:
        names = wheel.namelist()
    assert "tinycnn/autograder.py" in names and "tinycnn/reference/ops.py" in names


@pytest.mark.slow  # pip builds in an isolated environment (setuptools from PyPI)
def test_the_bundled_wheel_is_built_from_a_clean_copy_of_the_checkout(tmp_path, monkeypatch):
    # A checkout whose build/lib keeps a module deleted from the source since: built in place,
    # setuptools would ship it. A small stand-in project keeps the build to a few seconds.
    checkout = tmp_path / "checkout"
    lay_out(
        checkout,
        {
            "pyproject.toml": b'[build-system]\nrequires = ["setuptools>=64"]\n'
            b'build-backend = "setuptools.build_meta"\n\n'
            b'[project]\nname = "tinycnn"\nversion = "0.0.1"\n\n'
            b'[tool.setuptools]\npackages = ["tinycnn"]\n',
            "tinycnn/__init__.py": b"",
            "tinycnn/ops.py": b"x = 1\n",
            "build/lib/tinycnn/stale_removed_module.py": b"x = 1\n",
            "build/lib/tinycnn/ops.py": b"x = 0\n",
            "tinycnn.egg-info/SOURCES.txt": b"tinycnn/stale_removed_module.py\n",
            ".venv/pyvenv.cfg": b"home = /usr/bin\n",
            "env/pyvenv.cfg": b"home = /usr/bin\n",
            "env/lib/tinycnn/huge.py": b"x = 1\n",
        },
    )
    monkeypatch.setattr("tinycnn.bench.source_checkout", lambda: checkout)
    wheel = autograder._build_wheel(tmp_path / "out")
    with zipfile.ZipFile(wheel) as archive:
        modules = sorted(n for n in archive.namelist() if n.startswith("tinycnn/"))
        assert archive.read("tinycnn/ops.py") == b"x = 1\n"
    assert modules == ["tinycnn/__init__.py", "tinycnn/ops.py"]
    assert (checkout / "build/lib/tinycnn/stale_removed_module.py").exists()  # left alone


def _run_in(root: Path, check_args: list[str], files: dict[str, bytes]) -> dict:
    """autograder.run() on ROOT/submission holding ``files`` (no bundle needed)."""
    (root / "source").mkdir(parents=True)
    (root / "results").mkdir()
    (root / "source" / autograder.CONFIG_NAME).write_text(json.dumps({"check_args": check_args}))
    lay_out(root / "submission", files)
    assert autograder.run(root) == 0
    return json.loads((root / "results" / "results.json").read_text())


@pytest.mark.parametrize(
    "spelling", [["--entry", "layers"], ["--ent", "layers"], ["--entry=layers"]]
)
def test_a_one_file_upload_misnamed_for_the_entry_is_told_its_files_name(tmp_path, spelling):
    # Before: "--ent layers" (an abbreviation the bundle accepts) left the one file as the
    # target, and the student got check's instructor-only usage error "--entry picks the module
    # of a student's folder"; spelled out, "no module layers in /autograder/submission (--entry".
    results = _run_in(tmp_path, ["--no-train", *spelling], {"my_layers.py": CORRECT})
    assert results["score"] == 0
    outputs = [results["output"], *(t["output"] for t in results.get("tests", []))]
    assert any("name your file layers.py" in output for output in outputs), outputs
    assert not any("--entry" in output or str(tmp_path) in output for output in outputs), outputs


def test_the_entry_advice_names_the_file_of_a_package_module():
    text = "no module hw.layers in /autograder/submission (--entry; its files: hw/ops.py)"
    for pattern, replacement in autograder.STUDENT_ADVICE:
        text = re.sub(pattern, replacement, text)
    assert text == (
        "this assignment grades your file hw/layers.py, and your upload has none (its files: "
        "hw/ops.py): name your file hw/layers.py"
    )


def test_the_runner_reads_an_upload_by_checks_own_rules(tmp_path, monkeypatch):
    # One home for which files make a submission and which folders are skipped (review 3).
    from tinycnn.grading import submission

    lay_out(tmp_path, {"layers.py": CORRECT, "build/old.py": CORRECT, "x/notes.pyi": b""})
    assert autograder._scan(tmp_path)[0] == ["build/old.py", "layers.py", "x/notes.pyi"]
    monkeypatch.setattr(submission, "SKIPPED_FOLDERS", (*submission.SKIPPED_FOLDERS, "build"))
    monkeypatch.setattr(submission, "SUBMISSION_SUFFIXES", (".py", ".ipynb", ".pyi"))
    assert autograder._scan(tmp_path)[0] == ["layers.py", "x/notes.pyi"]
    assert autograder._submission_target(tmp_path) == tmp_path  # x/ counts as a source folder


# Three gradings: slow. The default suite's cover: the repository and course-API rows of
# test_the_graded_file_or_folder_of_an_upload and
# test_a_course_apis_names_choose_the_folder_of_a_course_bundles_upload (which folder), the
# refused uploads (several folders), and the end-to-end gradings of folders above.
@pytest.mark.slow
def test_a_repository_upload_is_graded_in_the_folder_that_defines_the_functions(tmp_path):
    # Gradescope's GitHub upload: README.md, src/layers.py, tests/test_layers.py (review 3,
    # finding 9; before: score 0, "your .py/.ipynb files are in several folders").
    test_file = b"import layers\n\n\ndef test_relu():\n    pass\n"
    upload = {"README.md": b"# hw", "src/layers.py": CORRECT, "tests/test_layers.py": test_file}
    results = _run_in(tmp_path / "repo", ["--no-train"], upload)
    assert results["score"] == len(CONTRACT_FUNCTIONS), results["output"]
    # Must not: two folders that both define the functions are still the student's to settle.
    upload = {"a/layers.py": CORRECT, "b/layers.py": CORRECT}
    results = _run_in(tmp_path / "two", ["--no-train"], upload)
    assert results["score"] == 0 and "several folders (a/, b/)" in results["output"]
    # A course API's names count for a course bundle (and the contract's do not).
    course = (COURSES / "cs231n_layers_float64.py").read_bytes()
    upload = {"hw/layers.py": course, "tests/test_layers.py": test_file}
    target = _run_in(tmp_path / "course", ["--no-train", "--api", "cs231n"], upload)
    assert target["score"] > 0, target["output"]


# The folder as it is in the default suite; zipped and its package alone are slow (CI runs them):
# the default suite grades a zipped folder and a package folder in the tests above.
@pytest.mark.parametrize(
    "layout",
    [
        "as_is",
        pytest.param("zipped", marks=pytest.mark.slow),
        pytest.param("package", marks=pytest.mark.slow),
    ],
)
def test_a_course_assignment_folder_uploaded_as_it_is_gets_every_point(tmp_path, layout):
    # CS231n's folder (notebook, makepdf.py, cs231n/ with the student's layers.py and the
    # course's data_utils.py, which imports imageio): before, score 0 ("cannot tell which
    # file"; with the notebook alone, every function failed on `import imageio`).
    assignment = COURSES / "cs231n_assignment"
    files = {
        path.relative_to(assignment).as_posix(): path.read_bytes()
        for path in sorted(assignment.rglob("*"))
        if path.is_file()
    }
    course = ["--no-train", "--api", "cs231n"]
    upload = {
        "as_is": files,
        "zipped": {f"assignment2/{k}": v for k, v in files.items()},  # its folder, zipped
        "package": {k: v for k, v in files.items() if k.startswith("cs231n/")},
    }[layout]
    results = _run_in(tmp_path / layout, course, upload)
    assert results["score"] == len(CONTRACT_FUNCTIONS), (layout, results["output"])


def test_the_readmes_entry_option_grades_a_course_folder_uploaded_as_it_is(tmp_path):
    # README, Gradescope step 2: `--entry layers`; step 5: CS231n's folder uploaded as it is.
    # Before: score 0, "this assignment grades your file layers.py, and your upload has none
    # (its files: ..., cs231n/layers.py, ...)": --entry matched only a top-level layers.py.
    assignment = COURSES / "cs231n_assignment"
    files = {
        path.relative_to(assignment).as_posix(): path.read_bytes()
        for path in sorted(assignment.rglob("*"))
        if path.is_file()
    }
    course = ["--no-train", "--api", "cs231n", "--entry", "layers"]
    results = _run_in(tmp_path / "as_is", course, files)
    assert results["score"] == len(CONTRACT_FUNCTIONS), results["output"]
    # Must not: two files named layers.py below the top are the student's to settle.
    layers = files["cs231n/layers.py"]
    results = _run_in(tmp_path / "two", course, {**files, "old/layers.py": layers})
    assert results["score"] == 0
    outputs = "\n".join([results["output"], *(t["output"] for t in results.get("tests", []))])
    assert "your upload has several (cs231n/layers.py, old/layers.py)" in outputs, outputs
    assert "--entry" not in outputs


def test_readme_and_help_say_the_grading_options_go_after_the_double_dash(capsys):
    # New-user session 5, finding 3: README's "(add `--visibility after_due_date` ...)" read as
    # options of tinycnn autograder; next to --out they are "unrecognized arguments".
    import argparse

    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    before = re.search(
        r"Every grading option goes after the `--`, and only (.+?) go before", readme
    )
    assert before, "README must say which tinycnn autograder options go before --"
    parser = autograder.register(argparse.ArgumentParser().add_subparsers())
    own = {o for a in parser._actions for o in a.option_strings if o not in ("-h", "--help")}
    assert set(re.findall(r"`(--[\w-]+)`", before.group(1))) == own
    # The README's example parses: what follows -- is tinycnn check's.
    example = "tinycnn autograder --out autograder.zip -- --visibility after_due_date --max-score 2"
    assert f"`{example}`" in readme
    args = parser.parse_args(example.split()[2:])
    checked = autograder._parse_check_args(args.check_args[1:])
    assert (checked.visibility, checked.max_score) == ("after_due_date", 2.0)
    with pytest.raises(SystemExit):
        main(["autograder", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "every grading option (--api, --entry, --timeout, --visibility, --max-score" in shown


def test_a_grading_option_before_the_double_dash_is_told_where_it_goes(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["autograder", "--out", str(tmp_path / "a.zip"), "--visibility", "hidden"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and not (tmp_path / "a.zip").exists()
    assert "unrecognized arguments: --visibility" in err
    assert "options of tinycnn check go after --: tinycnn autograder ... -- --visibility" in err
    # Other commands keep argparse's plain message.
    with pytest.raises(SystemExit):
        main(["train", "--no-such-option"])
    err = capsys.readouterr().err
    assert "unrecognized arguments: --no-such-option" in err and "go after --" not in err
