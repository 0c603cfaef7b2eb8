"""``tinycnn bench``: the command runs, its JSON has the promised shape, and the ratio and
target logic gives the right verdicts on made-up timings. No speed is asserted here: the
targets are checked by the benchmark itself, on the machine it runs on. The real commands
(report, check, the test suite) are never run here: the command timing is tested on tiny
Python subprocesses standing in for them."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace

import pytest

from tinycnn import bench
from tinycnn.cli import main

# Tiny settings: every kind of row is produced once, in a second or two.
TINY = bench.BenchSettings(
    quick=True,
    repeat=1,
    min_run_seconds=0.0,
    warmup_calls=0,
    op_batch=32,
    loop_repeat=1,
    train_batches=(32,),
    train_dtypes=("float32",),
    train_repeat=1,
    n_train=64,
    commands=(),
    jax=False,  # JAX is optional: never needed by the default tests
)

OP_ROWS_PER_DTYPE = 9  # 4 ops x (forward, backward) + cross-entropy (one forward+backward row)
LOOP_ROWS = 4  # conv and pooling, forward and backward


def training_row(
    model: str, batch: int, ratio: float, dtype: str = "float32", **more: float
) -> dict:
    return {
        "section": "training",
        "model": model,
        "batch": batch,
        "dtype": dtype,
        "ratio": ratio,
        **more,
    }


def op_row(name: str, ratio: float, implementation: str = "vectorized", batch: int = 32) -> dict:
    return {
        "section": "ops",
        "name": name,
        "implementation": implementation,
        "batch": batch,
        "dtype": "float32",
        "ratio": ratio,
    }


def command_row(key: str, seconds: float | None, status: str = "ok") -> dict:
    """A row as :func:`bench.time_command` writes it; ``seconds`` only for a successful run."""
    return {
        "section": "commands",
        "key": key,
        "name": f"command {key}",
        "status": status,
        "seconds": seconds if status == "ok" else None,
    }


# A stand-in for `tinycnn`: every subcommand exists, `--help` succeeds, and a run prints its
# arguments to stderr and exits with the status given in FAKE_STATUS (default 0).
FAKE_TINYCNN = [
    sys.executable,
    "-c",
    "import os, sys; print(' '.join(sys.argv[1:]), file=sys.stderr); "
    "sys.exit(0 if '--help' in sys.argv else int(os.environ.get('FAKE_STATUS', 0)))",
]


def verdicts_by_name(rows: list[dict]) -> dict[str, dict]:
    return {verdict["name"]: verdict for verdict in bench.evaluate_targets(rows)}


def test_ratio_is_numpy_speed_over_torch_speed():
    assert bench.ratio(numpy_seconds=2e-6, torch_seconds=8e-6) == pytest.approx(4.0)
    assert bench.ratio(numpy_seconds=8e-6, torch_seconds=2e-6) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="positive"):
        bench.ratio(0.0, 1.0)


def test_targets_pass_at_the_threshold_and_fail_just_below():
    rows = [
        training_row("TinyCNN", 32, 4.0, ratio_vs_jax=1.0),  # exactly the targets: passes
        training_row("TinyCNN", 128, 9.0, ratio_vs_jax=0.99),  # behind JAX
        training_row("TinyCNN", bench.FULL_BATCH, 2.39),  # just short of 2.4x
        training_row("MLP (18 hidden)", 32, 6.5),
        training_row("MLP (18 hidden)", 3000, 0.5),  # no target for this row
        training_row("TinyCNN", 32, 1.0, dtype="float64"),  # targets are for float32
        op_row("conv2d forward", 3.0),
        op_row("maxpool2d backward", 0.99),  # one slow op fails the whole op target
        op_row("conv2d forward (loops)", 0.001, implementation="loops"),  # loops: no target
        command_row("report-full", 59.9),
        command_row("report-quick", 30.0),  # "under 30 s": 30.0 fails
        command_row("check-correct", 14.9),
        command_row("test-suite", 60.0),  # "under 60 s": 60.0 fails
    ]
    verdicts = verdicts_by_name(rows)

    assert verdicts["tinycnn-batch-32"]["status"] == "pass"
    assert verdicts["tinycnn-full-batch"]["status"] == "fail"
    assert verdicts["tinycnn-full-batch"]["worst"] == pytest.approx(2.39)
    assert verdicts["tinycnn-vs-jax-32"]["status"] == "pass"
    assert verdicts["tinycnn-vs-jax-128"] == {
        **verdicts["tinycnn-vs-jax-128"],
        "status": "fail",
        "rows": 1,
        "worst": 0.99,
    }
    assert verdicts["mlp-batch-32"]["status"] == "pass"
    assert verdicts["ops-batch-32"] == {
        **verdicts["ops-batch-32"],
        "status": "fail",
        "rows": 2,
        "worst": 0.99,
    }
    assert verdicts["report-full"]["status"] == "pass"
    assert verdicts["report-quick"]["status"] == "fail"
    assert verdicts["check-correct"] == {
        **verdicts["check-correct"],
        "status": "pass",
        "rows": 1,
        "worst": 14.9,
    }
    assert verdicts["test-suite"] == {
        **verdicts["test-suite"],
        "status": "fail",
        "rows": 1,
        "worst": 60.0,
    }
    marks = [row.get("targets") for row in rows]
    assert marks == [
        {"tinycnn-batch-32": True, "tinycnn-vs-jax-32": True},
        {"tinycnn-vs-jax-128": False},
        {"tinycnn-full-batch": False},
        {"mlp-batch-32": True},
        None,
        None,
        {"ops-batch-32": True},
        {"ops-batch-32": False},
        None,
        {"report-full": True},
        {"report-quick": False},
        {"check-correct": True},
        {"test-suite": False},
    ]


def test_a_row_that_wanted_jax_without_it_is_not_available():
    row = training_row("TinyCNN", 32, 5.0, ratio_vs_jax=None)
    verdicts = verdicts_by_name([row])
    assert verdicts["tinycnn-vs-jax-32"]["status"] == "not available"
    assert verdicts["tinycnn-batch-32"]["status"] == "pass"
    assert row["targets"] == {"tinycnn-batch-32": True, "tinycnn-vs-jax-32": None}


@pytest.mark.parametrize("key", ["check-correct", "test-suite"])
def test_time_targets_need_a_fast_run_that_succeeded(key):
    limit = next(target.maximum_seconds for target in bench.TARGETS if target.name == key)
    cases = {
        "ok, just under": (command_row(key, limit - 0.01), "pass", True),
        "ok, too slow": (command_row(key, limit + 5.0), "fail", False),
        # A run that stopped early with an error is no proof of speed.
        "failed fast": (
            command_row(key, None, "failed (exit 1): 3 failed, 97 passed"),
            "fail",
            False,
        ),
        "timed out": (command_row(key, None, "timed out after 900 s"), "fail", False),
        "failed, with a time": (
            command_row(key, None, "failed (exit 2): usage") | {"seconds": 1.0},
            "fail",
            False,
        ),
        "missing": (command_row(key, None, "not available"), "not available", None),
    }
    for case, (row, status, passed) in cases.items():
        verdict = verdicts_by_name([row])[key]
        assert (verdict["status"], row["targets"][key]) == (status, passed), case
    slow_and_failed = [command_row(key, limit - 1.0), command_row(key, None, "failed (exit 1): x")]
    verdict = verdicts_by_name(slow_and_failed)[key]
    assert verdict["status"] == "fail" and verdict["worst"] == pytest.approx(limit - 1.0)


def test_missing_rows_are_not_measured_and_missing_commands_not_available():
    verdicts = verdicts_by_name([command_row("report-quick", None, "not available")])
    assert verdicts["report-quick"]["status"] == "not available"
    assert verdicts["report-full"]["status"] == "not measured"
    assert verdicts["tinycnn-batch-32"] == {
        **verdicts["tinycnn-batch-32"],
        "status": "not measured",
        "rows": 0,
        "worst": None,
    }


def test_target_names_are_unique_and_each_has_one_threshold():
    names = [target.name for target in bench.TARGETS]
    assert len(names) == len(set(names))
    for target in bench.TARGETS:
        assert (target.minimum_ratio is None) != (target.maximum_seconds is None), target.name


def test_table_marks_failing_rows_and_lists_verdicts():
    rows = [
        training_row("TinyCNN", 32, 3.5)
        | {
            "name": "TinyCNN, batch 32",
            "numpy_samples_per_second": 350.0,
            "torch_samples_per_second": 100.0,
        }
    ]
    result = bench.BenchResult(
        settings=TINY,
        machine={
            "cpu": "test CPU",
            "cores": 2,
            "usable_cores": 2,
            "python": "3",
            "numpy": "2",
            "torch": "2",
            "thread_pools_loaded": [],
        },
        threads={"how": "test", "numpy_blas_threads": [1], "torch_threads": 1},
        rows=rows,
        targets=bench.evaluate_targets(rows),
    )
    table = bench.format_table(result)
    assert "FAIL (>= 4x)" in table and "3.50x" in table and "350/s" in table
    assert "FAIL          TinyCNN training, batch 32" in table
    assert "NOT MEASURED" in table


def fake_result(rows: list[dict], **machine) -> bench.BenchResult:
    return bench.BenchResult(
        settings=TINY,
        machine={
            "cpu": "test CPU",
            "cores": 2,
            "usable_cores": 2,
            "platform": "test-os",
            "python": "3.x",
            "numpy": "9.9",
            "torch": "8.8",
            "thread_pools_loaded": [],
            **machine,
        },
        threads={"how": "threads set by test", "numpy_blas_threads": [1], "torch_threads": 1},
        rows=rows,
        targets=bench.evaluate_targets(rows),
        seconds=12.0,
    )


def markdown_cells(line: str) -> list[str]:
    """The cells of one markdown table line, stripped, with ``\\|`` read back as ``|``."""
    cells = re.split(r"(?<!\\)\|", line.strip())
    assert cells[0] == cells[-1] == "", line  # the line starts and ends with "|"
    return [cell.strip().replace("\\|", "|") for cell in cells[1:-1]]


def test_markdown_has_title_machine_threads_table_and_verdicts():
    rows = [
        training_row("TinyCNN", 32, 5.25)
        | {
            "name": "TinyCNN, batch 32",
            "numpy_samples_per_second": 5250.0,
            "torch_samples_per_second": 1000.0,
            "jax_samples_per_second": 2100.0,
            "ratio_vs_jax": 2.5,
            "ratio_vs_jax_range": [2.25, 2.75],
        },
        command_row("check-correct", 3.5) | {"name": "tinycnn check | correct"},
        command_row("test-suite", None, "failed (exit 1): 2 failed, 98 passed"),
    ]
    result = fake_result(
        rows, load_average_at_start=[1.5, 1.0, 0.5], load_average_at_end=[2.0, 1.2, 0.6]
    )
    document = bench.format_markdown(result, created="2001-02-03 04:05")
    lines = document.splitlines()

    assert lines[0].startswith("# ") and document.endswith("\n")
    assert "`tinycnn bench --quick` on 2001-02-03 04:05" in document  # TINY is quick
    assert "test CPU, 2 cores (2 usable)" in document and "NumPy 9.9" in document
    assert "PyTorch 8.8" in document and "1.5, 1.0, 0.5" in document and "2.0, 1.2, 0.6" in document
    assert "threads set by test" in document
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 2 + len(rows)  # header, alignment line, one line per row
    assert all(line.endswith("|") for line in table)
    header, alignment, *body = [markdown_cells(line) for line in table]
    assert header == list(bench.TABLE_HEADER) and "NumPy/PyTorch" in header and "target" in header
    # times and ratios right-aligned ("---:"), names and verdicts left-aligned
    right = [column for column, dashes in zip(header, alignment, strict=True) if dashes[-1] == ":"]
    assert right == list(bench.TABLE_HEADER[3:10])  # NumPy ... NumPy/JAX tuned
    assert right[0] == "NumPy" and right[-1] == "NumPy/JAX tuned"
    assert all(set(dashes.strip(":")) == {"-"} for dashes in alignment)
    assert [dashes[0] == ":" for dashes in alignment] == [column not in right for column in header]
    training, check, suite = (dict(zip(header, cells, strict=True)) for cells in body)
    assert training == {
        "section": "training",
        "benchmark": "TinyCNN, batch 32",
        "dtype": "float32",
        "NumPy": "5,250/s",
        "PyTorch": "1,000/s",
        "NumPy/PyTorch": "5.25x",
        "JAX": "2,100/s",
        "NumPy/JAX": "2.50x (2.25-2.75)",
        "JAX tuned": "-",
        "NumPy/JAX tuned": "-",
        "target": "pass (>= 4x); pass (>= 1x JAX)",
    }
    assert check["benchmark"] == "tinycnn check | correct"  # escaped in the line, one cell
    assert r"tinycnn check \| correct" in table[3]
    assert check["NumPy"] == "3.5 s" and check["target"] == "pass (< 15 s)"
    assert suite["NumPy"] == "failed (exit 1): 2 failed, 98 passed"
    assert suite["target"] == "FAIL (< 60 s)"
    verdicts = {line for line in lines if line.startswith("- **")}
    assert (
        "- **PASS**: grading a correct submission (tinycnn check) under 15 s (1 row, 3.5 s)"
        in verdicts
    )
    assert any(line.startswith("- **FAIL**: default test suite") for line in verdicts)
    assert any(line.startswith("- **NOT MEASURED**: tinycnn report (full)") for line in verdicts)
    assert len(verdicts) == len(bench.TARGETS)
    assert "All targets pass: no (3 pass, 1 fail, 7 not measured)." in document


def test_command_runs_cover_the_command_targets_and_grade_the_shipped_fixture():
    runs = bench.command_runs()
    time_targets = {target.name for target in bench.TARGETS if target.maximum_seconds}
    assert time_targets == {"report-full", "report-quick", "check-correct", "test-suite"}
    assert set(runs) == time_targets | {"report-fast-path", "report-public-ops"}
    for key, fast in (("report-fast-path", "True"), ("report-public-ops", "False")):
        name, argv, cwd = runs[key]
        assert argv[0] == sys.executable and argv[1] == "-c" and cwd == bench.FRESH_FOLDER
        assert f"__kwdefaults__['fast'] = {fast}" in argv[2]
        assert argv[3:6] == ("report", "--jobs", "1") and "--quick" not in argv
    name, argv, cwd = runs["check-correct"]
    assert argv[:2] == ("tinycnn", "check") and cwd == bench.FRESH_FOLDER
    assert argv[2] == str(bench.correct_submission()) and bench.correct_submission().is_file()
    assert bench.correct_submission().name == "loop_ops.py"
    assert runs["report-quick"][1][:3] == ("tinycnn", "report", "--quick")
    assert "--quick" not in runs["report-full"][1]
    name, argv, cwd = runs["test-suite"]
    assert list(argv[1:]) == ["-m", "pytest", "-q", "-p", "no:cacheprovider"]
    assert cwd == bench.source_checkout()


def test_source_checkout_needs_pyproject_and_tests_beside_the_package(tmp_path, monkeypatch):
    import tinycnn

    package = tmp_path / "tinycnn"
    package.mkdir()
    monkeypatch.setattr(tinycnn, "__file__", str(package / "__init__.py"))
    assert bench.source_checkout() is None  # an installed wheel: nothing beside the package
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    assert bench.source_checkout() is None  # no tests/ folder
    (tmp_path / "tests").mkdir()
    assert bench.source_checkout() == tmp_path.resolve()


def test_time_command_times_a_full_argv_and_a_tinycnn_subcommand(tmp_path):
    row = bench.time_command(
        "demo", "do nothing", [sys.executable, "-c", "pass"], tmp_path, timeout_seconds=60
    )
    assert row["status"] == "ok" and 0 < row["seconds"] == row["elapsed_seconds"] < 60
    assert row["command"].endswith(" -c pass") and row["cwd"] == str(tmp_path)
    assert (row["section"], row["key"], row["name"]) == ("commands", "demo", "do nothing")

    # The command runs in the folder given, or in a fresh temporary one.
    writes = [sys.executable, "-c", "open('made-here.txt', 'w').close()"]
    assert (
        bench.time_command("demo", "write", writes, tmp_path, timeout_seconds=60)["status"] == "ok"
    )
    assert (tmp_path / "made-here.txt").is_file()
    row = bench.time_command("demo", "write", writes, bench.FRESH_FOLDER, timeout_seconds=60)
    assert row["status"] == "ok" and row["cwd"] == bench.FRESH_FOLDER

    row = bench.time_command(
        "report-quick",
        "tinycnn report --quick",
        ["tinycnn", "report", "--quick"],
        bench.FRESH_FOLDER,
        timeout_seconds=60,
        tinycnn_prefix=FAKE_TINYCNN,
    )
    assert row["status"] == "ok" and row["seconds"] > 0
    assert row["command"] == "tinycnn report --quick"


def test_time_command_reports_failures_with_their_last_line(monkeypatch):
    stderr_last = [
        sys.executable,
        "-c",
        "import sys; print('ignored'); print('first', file=sys.stderr); "
        "print('boom', file=sys.stderr); sys.exit(3)",
    ]
    row = bench.time_command("demo", "fails", stderr_last, bench.FRESH_FOLDER, timeout_seconds=60)
    assert row["status"] == "failed (exit 3): boom" and row["seconds"] is None
    assert row["elapsed_seconds"] > 0

    # pytest writes its summary to stdout and nothing to stderr.
    stdout_only = [sys.executable, "-c", "print('1 failed, 9 passed'); raise SystemExit(1)"]
    row = bench.time_command("demo", "fails", stdout_only, bench.FRESH_FOLDER, timeout_seconds=60)
    assert row["status"] == "failed (exit 1): 1 failed, 9 passed"
    silent = [sys.executable, "-c", "raise SystemExit(4)"]
    assert (
        bench.time_command("demo", "fails", silent, bench.FRESH_FOLDER, timeout_seconds=60)[
            "status"
        ]
        == "failed (exit 4): no message"
    )

    monkeypatch.setenv("FAKE_STATUS", "1")
    row = bench.time_command(
        "check-correct",
        "check",
        ["tinycnn", "check", "x.py"],
        bench.FRESH_FOLDER,
        timeout_seconds=60,
        tinycnn_prefix=FAKE_TINYCNN,
    )
    assert row["status"] == "failed (exit 1): check x.py"  # the subcommand and its arguments


def test_time_command_kills_a_run_past_its_timeout():
    sleeps = [sys.executable, "-c", "import time; time.sleep(30)"]
    row = bench.time_command("demo", "sleeps", sleeps, bench.FRESH_FOLDER, timeout_seconds=0.5)
    assert row["status"] == "timed out after 0.5 s" and row["seconds"] is None
    assert 0.5 <= row["elapsed_seconds"] < 10


def test_time_command_says_not_available_without_the_command_or_a_checkout():
    missing = [sys.executable, "-c", "import sys; sys.exit(2)"]  # like argparse: unknown command
    row = bench.time_command(
        "report-quick",
        "tinycnn report --quick",
        ["tinycnn", "report", "--quick"],
        bench.FRESH_FOLDER,
        timeout_seconds=60,
        tinycnn_prefix=missing,
    )
    assert row["status"] == "not available" and row["seconds"] is None
    assert "elapsed_seconds" not in row  # never started

    # No source checkout: the test suite row is not available, whatever the command.
    row = bench.time_command(
        "test-suite", "pytest", [sys.executable, "-c", "pass"], None, timeout_seconds=60
    )
    assert row["status"] == "not available" and row["seconds"] is None
    assert verdicts_by_name([row])["test-suite"]["status"] == "not available"


def test_run_bench_times_the_chosen_commands_and_judges_them(monkeypatch):
    monkeypatch.setattr(bench, "bench_ops", lambda settings, progress: [])
    monkeypatch.setattr(bench, "bench_training", lambda settings, progress: [])
    monkeypatch.setattr(bench, "bench_step", lambda settings, progress: [])
    settings = replace(TINY, commands=("check-correct", "report-quick"))
    messages = []

    result = bench.run_bench(settings, messages.append, tinycnn_prefix=FAKE_TINYCNN)

    assert [row["key"] for row in result.rows] == ["check-correct", "report-quick"]
    assert all(
        row["status"] == "ok" and row["targets"] == {row["key"]: True} for row in result.rows
    )
    statuses = {verdict["name"]: verdict["status"] for verdict in result.targets}
    assert statuses["check-correct"] == statuses["report-quick"] == "pass"
    assert statuses["report-full"] == statuses["test-suite"] == "not measured"
    assert messages == ["tinycnn check (correct submission)", "tinycnn report --quick"]


def test_bench_command_runs_and_writes_json_with_every_section(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "settings_for", lambda quick: replace(TINY, quick=quick))
    path = tmp_path / "bench.json"

    markdown = tmp_path / "bench.md"

    status = main(
        ["bench", "--quick", "--no-commands", "--json", str(path), "--markdown", str(markdown)]
    )

    out, err = capsys.readouterr()
    data = json.loads(path.read_text())
    failed = [verdict["name"] for verdict in data["targets"] if verdict["status"] == "fail"]
    assert status == (1 if failed else 0)  # speeds of this machine: either may happen here
    assert all(name in err for name in failed)
    assert "NumPy/PyTorch" in out and "Targets:" in out and f"wrote {path}" in out
    assert f"wrote {markdown}" in out
    document = markdown.read_text()
    assert document.startswith("# ")
    header = next(line for line in document.splitlines() if line.startswith("|"))
    assert markdown_cells(header) == list(bench.TABLE_HEADER)
    assert data["schema"] == bench.SCHEMA
    assert set(data) >= {"settings", "threads", "machine", "rows", "targets", "all_targets_pass"}
    assert data["settings"]["quick"] is True
    assert data["threads"]["torch_threads"] == 1
    assert set(data["threads"]["numpy_blas_threads"]) <= {1}
    assert "threadpoolctl" in data["threads"]["how"] and "set_num_threads" in data["threads"]["how"]
    assert data["machine"]["cores"] >= 1 and data["machine"]["numpy"] and data["machine"]["torch"]

    sections = [row["section"] for row in data["rows"]]
    assert sections.count("ops") == 2 * OP_ROWS_PER_DTYPE + LOOP_ROWS
    assert sections.count("training") == 2  # TinyCNN and MLP at batch 32, float32
    assert "commands" not in sections  # --no-commands
    steps = [row for row in data["rows"] if row["section"] == "step"]
    parts = [row["part"] for row in steps]
    assert parts[0] == "gather the minibatch" and "conv2d forward" in parts
    assert parts[-3:] == ["non-finite check", "SGD update", "whole step"]
    assert sum(row["share"] for row in steps[:-1]) == pytest.approx(1.0)
    assert all(row["numpy_seconds"] > 0 and row["batch"] == 32 for row in steps)
    for row in data["rows"]:
        if row["section"] == "step":
            continue
        assert row["numpy_seconds"] > 0 and row["torch_seconds"] > 0
        assert row["ratio"] == pytest.approx(row["torch_seconds"] / row["numpy_seconds"])
    loops = [row for row in data["rows"] if row.get("implementation") == "loops"]
    for row in loops:  # how much slower: computed from the rows (no speed asserted here)
        vectorized = next(
            other
            for other in data["rows"]
            if other.get("implementation") == "vectorized"
            and (other["op"], other["pass"], other["dtype"]) == (row["op"], row["pass"], "float64")
        )
        assert row["slower_than_vectorized"] == pytest.approx(
            row["numpy_seconds"] / vectorized["numpy_seconds"]
        )

    # The selectors of TARGETS match the rows the benchmark really writes.
    statuses = {verdict["name"]: verdict["status"] for verdict in data["targets"]}
    assert set(statuses) == {target.name for target in bench.TARGETS}
    for name in ("tinycnn-batch-32", "mlp-batch-32"):
        assert statuses[name] in ("pass", "fail"), name
    # The op rows say how busy the machine was: a miss on a busy one is not verified.
    assert statuses["ops-batch-32"] in ("pass", "fail", "not verified")
    vectorized = [row for row in data["rows"] if row.get("implementation") == "vectorized"]
    assert all(row["cpu_stall_share"] is None or row["cpu_stall_share"] >= 0 for row in vectorized)
    assert statuses["tinycnn-full-batch"] == statuses["report-full"] == "not measured"
    assert statuses["tinycnn-vs-jax-32"] == "not available"  # TINY leaves JAX out
    tinycnn_row = next(row for row in data["rows"] if row.get("model") == "TinyCNN")
    assert tinycnn_row["ratio_vs_jax"] is None and "jax_seconds" not in tinycnn_row
    assert statuses["check-correct"] == statuses["test-suite"] == "not measured"
    table_lines = [line for line in document.splitlines() if line.startswith("|")]
    assert len(table_lines) == 2 + len(data["rows"])
    assert next(v for v in data["targets"] if v["name"] == "ops-batch-32")["rows"] == (
        2 * OP_ROWS_PER_DTYPE
    )


@pytest.mark.parametrize("option", ["--json", "--markdown"])
def test_bench_output_into_a_missing_directory_is_a_one_line_error(option, tmp_path, capsys):
    status = main(["bench", "--quick", option, str(tmp_path / "missing" / "bench.out")])
    _, err = capsys.readouterr()
    assert status == 2 and err.count("\n") == 1 and "no such directory" in err
    assert option in err


def test_no_report_is_kept_as_an_alias_of_no_commands():
    from tinycnn.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["bench", "--no-report"]).no_commands is True
    assert parser.parse_args(["bench", "--no-commands"]).no_commands is True
    assert parser.parse_args(["bench"]).no_commands is False


def test_quick_settings_keep_the_targets_measurable():
    quick, full = bench.settings_for(True), bench.settings_for(False)
    for settings in (quick, full):
        assert settings.op_batch == 32 and {32, bench.FULL_BATCH} <= set(settings.train_batches)
        assert "float32" in settings.train_dtypes and settings.n_train == bench.FULL_BATCH
    # --quick stays well under a minute: no full report, no test suite.
    assert quick.commands == ("report-quick", "check-correct")
    assert full.commands == (
        "report-full",
        "report-quick",
        "report-fast-path",
        "report-public-ops",
        "check-correct",
        "test-suite",
    )
    assert set(full.commands) == set(bench.command_runs())
    assert quick.repeat < full.repeat


def test_single_thread_sets_one_thread_and_restores_the_setting():
    import torch

    before = torch.get_num_threads()
    with bench.single_thread() as threads:
        assert torch.get_num_threads() == 1 and threads["torch_threads"] == 1
        assert set(threads["numpy_blas_threads"]) <= {1}
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("failing", [[], ["tinycnn-full-batch"], ["ops-batch-32", "test-suite"]])
def test_bench_exits_non_zero_and_names_the_failed_targets(failing, monkeypatch, capsys):
    def fake_run(settings, progress):
        rows = [training_row("TinyCNN", 32, 5.0)]
        verdicts = [
            {
                "name": target.name,
                "description": target.description,
                "threshold": target.threshold_text(),
                "status": "fail" if target.name in failing else "not measured",
                "rows": 0,
                "worst": None,
            }
            for target in bench.TARGETS
        ]
        return replace(fake_result(rows), targets=verdicts)

    monkeypatch.setattr(bench, "run_bench", fake_run)
    monkeypatch.setattr(bench, "format_table", lambda result: "table")
    status = main(["bench", "--quick", "--no-commands"])
    _, err = capsys.readouterr()
    if not failing:
        assert status == 0 and "failed" not in err
    else:
        assert status == 1
        assert f"{len(failing)} target(s) failed: {', '.join(failing)}" in err


def test_time_interleaved_uses_timeit_and_alternates_the_functions():
    calls = []
    settings = replace(TINY, repeat=3, warmup_calls=1)
    times = bench.time_interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, settings, fixed_calls=2
    )
    assert calls == ["a", "b"] + ["a", "a", "b", "b"] * 3  # warm-up, then runs taking turns
    assert set(times) == {"a", "b"} and all(len(values) == 3 for values in times.values())
    assert all(value > 0 for values in times.values() for value in values)


@pytest.mark.slow
def test_the_jax_baseline_trains_the_same_epoch_as_the_reference():
    """JAX's epoch (float32) follows the NumPy steps to rounding: a fair baseline."""
    jax_baseline = pytest.importorskip("tinycnn.jax_baseline")
    if not jax_baseline.available():
        pytest.skip("JAX is not installed (pip install 'tinycnn[bench]')")
    import numpy as np
    from tinycnn.reference.fast import TrainingSteps

    from tinycnn import reference

    data = reference.make_dataset(n_train=100, n_val=0, seed=0)
    x = data.x_train.astype(np.float32)
    batches = reference.epoch_batches(100, 32, epoch=1, seed=0)  # three of 32, one of 4
    for name, kind in (("TinyCNN", "tinycnn"), ("MLP (18 hidden)", "mlp")):
        model = reference.build_model(kind, dtype=np.float32, seed=0)
        epochs = [
            jax_baseline.epoch_function(
                name,
                model.params,
                x,
                data.y_train,
                batches,
                lr=0.05,
                momentum=0.9,
                weight_decay=1e-3,
                variant=variant,
            )
            for variant in jax_baseline.VARIANTS
        ]
        steps = TrainingSteps(model, x, data.y_train, lr=0.05, momentum=0.9, weight_decay=1e-3)
        for _ in range(2):
            numpy_losses = [steps(batch) for batch in batches]
            for variant, epoch in zip(jax_baseline.VARIANTS, epochs, strict=True):
                np.testing.assert_allclose(
                    epoch(), numpy_losses, rtol=1e-5, err_msg=f"{name}, {variant}"
                )


def test_a_slow_run_on_a_busy_machine_is_not_verified_unless_its_cpu_time_decides():
    limit = 60.0
    slow = command_row("report-full", 80.0) | {"cores": 2}
    cases = {
        # the machine was busy: the wall time measured the other work too
        "busy": (slow | {"cpu_seconds": 70.0, "cpu_stall_share": 0.5}, "not verified", None),
        # not busy: the time stands
        "quiet": (slow | {"cpu_seconds": 70.0, "cpu_stall_share": 0.02}, "fail", False),
        # busy, but even every core of an idle machine would need 65 s
        "too much work": (slow | {"cpu_seconds": 130.0, "cpu_stall_share": 0.5}, "fail", False),
        # no pressure information: the time stands
        "unknown": (slow | {"cpu_seconds": 70.0, "cpu_stall_share": None}, "fail", False),
        # under the limit passes whatever the machine did
        "fast": (command_row("report-full", limit - 1) | {"cpu_stall_share": 0.9}, "pass", True),
    }
    for case, (row, status, passed) in cases.items():
        verdict = verdicts_by_name([row])["report-full"]
        assert (verdict["status"], row["targets"]["report-full"]) == (status, passed), case


def test_a_slow_op_on_a_busy_machine_is_not_verified_as_a_slow_command_is():
    # New user's README walkthrough, finding 4: the op target failed on wall-time ratios
    # measured while other work held the cores; the commands' busy rule now covers it too.
    fast = op_row("conv2d forward", 1.5)
    slow = op_row("maxpool2d backward", 0.8)
    cases = {  # rows, the target's status, each row's mark
        "busy": ([fast, slow | {"cpu_stall_share": 0.4}], "not verified", [True, None]),
        "quiet": ([fast, slow | {"cpu_stall_share": 0.02}], "fail", [True, False]),
        "unknown": ([fast, slow | {"cpu_stall_share": None}], "fail", [True, False]),
        "no field": ([fast, slow], "fail", [True, False]),
        # a row at the target passes however busy; one quiet miss fails the whole target
        "busy pass": ([fast | {"cpu_stall_share": 0.9}], "pass", [True]),
        "one quiet miss": (
            [slow | {"cpu_stall_share": 0.4}, op_row("relu forward", 0.9)],
            "fail",
            [None, False],
        ),
    }
    for case, (rows, status, marks) in cases.items():
        rows = [dict(row) for row in rows]
        verdict = verdicts_by_name(rows)["ops-batch-32"]
        assert verdict["status"] == status, case
        assert [row["targets"]["ops-batch-32"] for row in rows] == marks, case
    busy = [fast, slow | {"cpu_stall_share": 0.4}]
    verdict = verdicts_by_name(busy)["ops-batch-32"]
    assert verdict["worst"] == pytest.approx(0.8)
    assert "worst 0.80x on a busy machine" in bench._verdict_text(verdict)


def test_the_report_fast_path_ratio_is_cpu_time_of_the_pair_of_runs():
    fast = command_row("report-fast-path", 40.0) | {"cpu_seconds": 38.0}
    public = command_row("report-public-ops", 60.0) | {"cpu_seconds": 57.0}
    bench.report_fast_path_ratio([fast, public])
    assert fast["ratio_vs_public_ops"] == pytest.approx(1.5)
    assert fast["wall_ratio_vs_public_ops"] == pytest.approx(1.5)
    limit = bench.REPORT_FAST_PATH_RATIO
    for value, status in ((limit, "pass"), (limit - 0.01, "fail")):
        row = fast | {"ratio_vs_public_ops": value}
        assert verdicts_by_name([row])["report-fast-path"]["status"] == status
    failed = command_row("report-public-ops", None, "failed (exit 1): boom")
    fast = command_row("report-fast-path", 40.0) | {"cpu_seconds": 38.0}
    bench.report_fast_path_ratio([fast, failed])
    assert fast["ratio_vs_public_ops"] is None
    assert verdicts_by_name([fast])["report-fast-path"]["status"] == "not available"


def test_time_command_records_cpu_time_and_how_busy_the_machine_was():
    burn = [
        sys.executable,
        "-c",
        "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass",
    ]
    row = bench.time_command("demo", "burn", burn, bench.FRESH_FOLDER, timeout_seconds=60)
    assert row["status"] == "ok" and row["cpu_seconds"] >= 0.3
    assert row["cores"] >= 1 and len(row["load_average"]) == 2
    assert row["cpu_stall_share"] is None or row["cpu_stall_share"] >= 0
