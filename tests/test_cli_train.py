"""``tinycnn train``: both backends, weights across backends, one-line errors."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tinycnn.cli import main

ACCURACY = re.compile(r"validation accuracy (\d\.\d+) \((\d+)/(\d+)\)")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """Run the command in this process; return (status, stdout, stderr)."""
    try:
        status = main(["train", "--no-progress", *argv])
    except SystemExit as exit_:  # argparse exits on usage errors
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


def accuracy(out: str) -> float:
    return float(ACCURACY.search(out).group(1))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_train_one_epoch_prints_accuracy(capsys, backend):
    status, out, err = run(capsys, "--backend", backend, "--epochs", "1")
    assert status == 0, err
    assert "tinycnn (114 parameters" in out and 0.3 < accuracy(out) <= 1.0


@pytest.mark.parametrize(("saver", "loader"), [("numpy", "torch"), ("torch", "numpy")])
def test_weights_saved_by_one_backend_load_in_the_other(capsys, tmp_path, saver, loader):
    path = str(tmp_path / "weights.npz")
    status, trained, _ = run(
        capsys,
        "--backend",
        saver,
        "--model",
        "mlp",
        "--hidden",
        "6",
        "--classes",
        "4",
        "--epochs",
        "2",
        "--save",
        path,
    )
    assert status == 0
    status, loaded, err = run(capsys, "--backend", loader, "--load", path, "--epochs", "0")
    assert status == 0, err
    assert (
        "mlp (" in loaded and ACCURACY.search(loaded).groups() == ACCURACY.search(trained).groups()
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--backend", "jax"], "argument --backend: invalid choice: 'jax'"),
        (["--classes", "5"], "argument --classes: invalid choice: 5"),
        (["--epochs", "-1"], "argument --epochs: expected an integer >= 0, got '-1'"),
        (["--seed", "x"], "argument --seed: expected an integer >= 0, got 'x'"),
        (["--hidden", "4"], "--hidden applies only to --model mlp"),
        (["--load", "/no/such/file.npz"], "cannot read checkpoint '/no/such/file.npz'"),
        (
            ["--save", "/no/such/dir/w.npz"],
            "cannot write --save /no/such/dir/w.npz: no such directory",
        ),
        # /proc passes the up-front check (even for root) and fails only when written:
        (["--epochs", "0", "--save", "/proc/w.npz"], "cannot write /proc/w.npz"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_bad_arguments_give_one_line_and_nonzero_status(capsys, argv, message):
    status, _, err = run(capsys, *argv)
    assert status == 2
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_garbage_weight_file_and_conflicting_flags(capsys, tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_text("not weights")
    status, _, err = run(capsys, "--load", str(garbage))
    assert status == 2 and "not an .npz archive" in err
    path = str(tmp_path / "cnn.npz")
    assert run(capsys, "--epochs", "0", "--save", path)[0] == 0
    status, _, err = run(capsys, "--load", path, "--classes", "4")
    assert status == 2 and "--classes 4 conflicts with" in err


def test_console_script_reports_errors_without_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "tinycnn", "train", "--backend", "jax"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.slow
def test_defaults_reach_99_percent_in_both_backends_with_equal_accuracy():
    """The foundation issue's acceptance run: `tinycnn train` with defaults, each backend."""
    outputs = {}
    for backend in ("numpy", "torch"):
        result = subprocess.run(
            [sys.executable, "-m", "tinycnn", "train", "--backend", backend, "--no-progress"],
            capture_output=True,
            text=True,
            check=True,
        )
        outputs[backend] = ACCURACY.search(result.stdout).groups()
    assert float(outputs["numpy"][0]) >= 0.99
    assert outputs["numpy"] == outputs["torch"]


@pytest.mark.parametrize(
    "meta", ['{"model": "tinycnn", "config": [1]}', "[1, 2]", '{"model": 3}', "not json"]
)
def test_checkpoint_with_a_damaged_description_is_a_one_line_error(capsys, tmp_path, meta):
    import numpy as np

    path = tmp_path / "crafted.npz"
    np.savez(path, **{"__model__": np.array(meta)})
    status, _, err = run(capsys, "--load", str(path))
    assert status == 2 and "damaged model description" in err, err


def test_output_writer_turns_os_errors_into_one_line_errors(tmp_path):
    from tinycnn.cli import CommandError, check_output_file, write_output

    write_output("--json", str(tmp_path / "ok.json"), "{}")
    assert (tmp_path / "ok.json").read_text() == "{}"
    with pytest.raises(CommandError, match=r"cannot write --json /proc/x\.json"):
        write_output("--json", "/proc/x.json", "{}")
    with pytest.raises(CommandError, match="it is a directory"):
        check_output_file("--json", str(tmp_path))
