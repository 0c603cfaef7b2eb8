"""``tinycnn bench``: the command runs, its JSON has the promised shape, and the ratio and
target logic gives the right verdicts on made-up timings. No speed is asserted here: the
targets are checked by the benchmark itself, on the machine it runs on."""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import pytest

from tinycnn import bench
from tinycnn.cli import main

# Tiny settings: every kind of row is produced once, in a second or two.
TINY = bench.BenchSettings(quick=True, repeat=1, min_run_seconds=0.0, warmup_calls=0,
                           op_batch=32, loop_repeat=1, train_batches=(32,),
                           train_dtypes=("float32",), train_repeat=1, n_train=64, reports=())

OP_ROWS_PER_DTYPE = 9  # 4 ops x (forward, backward) + cross-entropy (one forward+backward row)
LOOP_ROWS = 4  # conv and pooling, forward and backward


def training_row(model: str, batch: int, ratio: float, dtype: str = "float32") -> dict:
    return {"section": "training", "model": model, "batch": batch, "dtype": dtype,
            "ratio": ratio}


def op_row(name: str, ratio: float, implementation: str = "vectorized", batch: int = 32) -> dict:
    return {"section": "ops", "name": name, "implementation": implementation, "batch": batch,
            "dtype": "float32", "ratio": ratio}


def report_row(name: str, seconds: float | None) -> dict:
    return {"section": "report", "name": name, "seconds": seconds,
            "status": "ok" if seconds is not None else "not available"}


def verdicts_by_name(rows: list[dict]) -> dict[str, dict]:
    return {verdict["name"]: verdict for verdict in bench.evaluate_targets(rows)}


def test_ratio_is_numpy_speed_over_torch_speed():
    assert bench.ratio(numpy_seconds=2e-6, torch_seconds=8e-6) == pytest.approx(4.0)
    assert bench.ratio(numpy_seconds=8e-6, torch_seconds=2e-6) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="positive"):
        bench.ratio(0.0, 1.0)


def test_targets_pass_at_the_threshold_and_fail_just_below():
    rows = [
        training_row("TinyCNN", 32, 4.0),  # exactly the target: passes
        training_row("TinyCNN", bench.FULL_BATCH, 1.19),  # just short of 1.2x
        training_row("MLP (18 hidden)", 32, 6.5),
        training_row("MLP (18 hidden)", 3000, 0.5),  # no target for this row
        training_row("TinyCNN", 32, 1.0, dtype="float64"),  # targets are for float32
        op_row("conv2d forward", 3.0),
        op_row("maxpool2d backward", 0.99),  # one slow op fails the whole op target
        op_row("conv2d forward (loops)", 0.001, implementation="loops"),  # loops: no target
        report_row("tinycnn report", 59.9),
        report_row("tinycnn report --quick", 30.0),  # "under 30 s": 30.0 fails
    ]
    verdicts = verdicts_by_name(rows)

    assert verdicts["tinycnn-batch-32"]["status"] == "pass"
    assert verdicts["tinycnn-full-batch"]["status"] == "fail"
    assert verdicts["tinycnn-full-batch"]["worst"] == pytest.approx(1.19)
    assert verdicts["mlp-batch-32"]["status"] == "pass"
    assert verdicts["ops-batch-32"] == {**verdicts["ops-batch-32"], "status": "fail", "rows": 2,
                                        "worst": 0.99}
    assert verdicts["report-full"]["status"] == "pass"
    assert verdicts["report-quick"]["status"] == "fail"
    marks = [(row.get("target"), row.get("passed")) for row in rows]
    assert marks == [("tinycnn-batch-32", True), ("tinycnn-full-batch", False),
                     ("mlp-batch-32", True), (None, None), (None, None),
                     ("ops-batch-32", True), ("ops-batch-32", False), (None, None),
                     ("report-full", True), ("report-quick", False)]


def test_missing_rows_are_not_measured_and_missing_commands_not_available():
    verdicts = verdicts_by_name([report_row("tinycnn report --quick", None)])
    assert verdicts["report-quick"]["status"] == "not available"
    assert verdicts["report-full"]["status"] == "not measured"
    assert verdicts["tinycnn-batch-32"] == {**verdicts["tinycnn-batch-32"],
                                            "status": "not measured", "rows": 0, "worst": None}


def test_target_names_are_unique_and_each_has_one_threshold():
    names = [target.name for target in bench.TARGETS]
    assert len(names) == len(set(names))
    for target in bench.TARGETS:
        assert (target.minimum_ratio is None) != (target.maximum_seconds is None), target.name


def test_table_marks_failing_rows_and_lists_verdicts():
    rows = [training_row("TinyCNN", 32, 3.5) | {"name": "TinyCNN, batch 32",
                                                "numpy_samples_per_second": 350.0,
                                                "torch_samples_per_second": 100.0}]
    result = bench.BenchResult(
        settings=TINY, machine={"cpu": "test CPU", "cores": 2, "usable_cores": 2,
                                "python": "3", "numpy": "2", "torch": "2",
                                "thread_pools_loaded": []},
        threads={"how": "test", "numpy_blas_threads": [1], "torch_threads": 1},
        rows=rows, targets=bench.evaluate_targets(rows))
    table = bench.format_table(result)
    assert "FAIL (>= 4x)" in table and "3.50x" in table and "350/s" in table
    assert "FAIL          TinyCNN training, batch 32" in table
    assert "NOT MEASURED" in table


def test_report_row_says_not_available_when_the_command_is_missing():
    missing = [sys.executable, "-c", "import sys; sys.exit(2)"]  # like argparse: unknown command
    row = bench.time_report("quick", TINY, command_prefix=missing)
    assert row == {"section": "report", "name": "tinycnn report --quick", "seconds": None,
                   "status": "not available"}


def test_report_row_times_a_run_and_reports_a_failing_one():
    succeeds = [sys.executable, "-c", "pass"]
    row = bench.time_report("full", TINY, command_prefix=succeeds)
    assert row["status"] == "ok" and row["seconds"] > 0
    assert row["command"] == "tinycnn report --out TMPDIR --no-progress"

    fails_unless_help = [sys.executable, "-c",
                         "import sys; print('boom', file=sys.stderr); "
                         "sys.exit(0 if '--help' in sys.argv else 3)"]
    row = bench.time_report("quick", TINY, command_prefix=fails_unless_help)
    assert row["status"] == "failed (exit 3): boom" and row["seconds"] is None


def test_bench_command_runs_and_writes_json_with_every_section(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "settings_for", lambda quick: replace(TINY, quick=quick))
    path = tmp_path / "bench.json"

    status = main(["bench", "--quick", "--no-report", "--json", str(path)])

    out, _ = capsys.readouterr()
    assert status == 0
    assert "NumPy/PyTorch" in out and "Targets:" in out and f"wrote {path}" in out
    data = json.loads(path.read_text())
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
    assert "report" not in sections  # --no-report
    for row in data["rows"]:
        assert row["numpy_seconds"] > 0 and row["torch_seconds"] > 0
        assert row["ratio"] == pytest.approx(row["torch_seconds"] / row["numpy_seconds"])
    loops = [row for row in data["rows"] if row.get("implementation") == "loops"]
    assert all(row["slower_than_vectorized"] > 1 for row in loops)

    # The selectors of TARGETS match the rows the benchmark really writes.
    statuses = {verdict["name"]: verdict["status"] for verdict in data["targets"]}
    assert set(statuses) == {target.name for target in bench.TARGETS}
    for name in ("tinycnn-batch-32", "mlp-batch-32", "ops-batch-32"):
        assert statuses[name] in ("pass", "fail"), name
    assert statuses["tinycnn-full-batch"] == statuses["report-full"] == "not measured"
    assert next(v for v in data["targets"] if v["name"] == "ops-batch-32")["rows"] == (
        2 * OP_ROWS_PER_DTYPE)


def test_bench_json_into_a_missing_directory_is_a_one_line_error(tmp_path, capsys):
    status = main(["bench", "--quick", "--json", str(tmp_path / "missing" / "bench.json")])
    _, err = capsys.readouterr()
    assert status == 2 and err.count("\n") == 1 and "no such directory" in err


def test_quick_settings_keep_the_targets_measurable():
    quick, full = bench.settings_for(True), bench.settings_for(False)
    for settings in (quick, full):
        assert settings.op_batch == 32 and {32, bench.FULL_BATCH} <= set(settings.train_batches)
        assert "float32" in settings.train_dtypes and settings.n_train == bench.FULL_BATCH
    assert quick.reports == ("quick",) and set(full.reports) == {"full", "quick"}
    assert quick.repeat < full.repeat


def test_single_thread_sets_one_thread_and_restores_the_setting():
    import torch

    before = torch.get_num_threads()
    with bench.single_thread() as threads:
        assert torch.get_num_threads() == 1 and threads["torch_threads"] == 1
        assert set(threads["numpy_blas_threads"]) <= {1}
    assert torch.get_num_threads() == before
