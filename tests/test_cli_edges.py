"""The ``tinycnn`` command at its edges: --version, template, closed pipes, bad checkpoints,
outputs checked before the work, help texts."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from tinycnn.reference.checkpoint import save_checkpoint
from tinycnn.reference.models import build_model
from tinycnn.reference.ops import CONTRACT_FUNCTIONS

import tinycnn
from tinycnn import templates
from tinycnn.cli import SIGPIPE_STATUS, build_parser, main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exit_:  # argparse exits on usage errors and --version
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


def test_version_is_the_installed_distributions():
    from importlib.metadata import version

    completed = subprocess.run(
        [sys.executable, "-m", "tinycnn", "--version"], capture_output=True, text=True
    )
    assert completed.returncode == 0
    assert completed.stdout == f"tinycnn {version('tinycnn')}\n"
    assert tinycnn.__version__ == version("tinycnn") != "0+unknown"


@pytest.mark.parametrize("module", ["tinycnn", "tinycnn.cli"])
def test_a_usage_error_is_one_line_from_either_module_entry(module, tmp_path):
    # `python -m tinycnn.cli` runs cli.py as a second module, `__main__`: the subcommands'
    # CommandError must still be the one its main catches, so no traceback.
    missing = tmp_path / "no_such_file.py"
    completed = subprocess.run(
        [sys.executable, "-m", module, "check", str(missing)], capture_output=True, text=True
    )
    assert completed.returncode == 2
    assert completed.stderr == f"tinycnn check: error: no such file or folder: {missing}\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--bogus"],
        ["template", "--bogus"],
        ["report", "--bogus"],
        ["check", "submission.py", "--bogus"],
        ["bench", "--bogus"],
        ["autograder", "--out", "autograder.zip", "--bogus"],
    ],
)
def test_an_unknown_option_is_refused_by_its_subcommand_not_by_tinycnn(capsys, argv):
    # New user's README walkthrough, finding 1: `tinycnn check --bogus` said "tinycnn: error:
    # ... (see tinycnn --help)", the top-level command's name, whose help lists no such options.
    command = argv[0]
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert err.startswith(f"tinycnn {command}: error: unrecognized arguments: --bogus"), err
    assert err.endswith(f" (see tinycnn {command} --help)\n") and len(err.splitlines()) == 1


# -- tinycnn template ---------------------------------------------------------------------------


def test_template_writes_the_contract_and_refuses_to_overwrite(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, out, _ = run(capsys, "template")
    assert status == 0 and "tinycnn check my_ops.py" in out
    written = (tmp_path / "my_ops.py").read_text(encoding="utf-8")
    functions = {n.name for n in ast.parse(written).body if isinstance(n, ast.FunctionDef)}
    assert functions == set(CONTRACT_FUNCTIONS)
    status, _, err = run(capsys, "template")
    assert status == 2 and "my_ops.py exists" in err and len(err.splitlines()) == 1
    (tmp_path / "my_ops.py").write_text("mine")
    assert run(capsys, "template", "my_ops.py", "--force")[0] == 0
    assert (tmp_path / "my_ops.py").read_text(encoding="utf-8") == written


def test_template_to_stdout_and_bad_destinations(capsys, tmp_path):
    status, out, _ = run(capsys, "template", "-")
    assert status == 0 and out == templates.read()
    status, _, err = run(capsys, "template", str(tmp_path / "missing" / "ops.py"))
    assert status == 2 and "no such directory" in err
    status, _, err = run(capsys, "template", "--api", "no-such-course")
    assert status == 2 and "invalid choice" in err


def test_every_shipped_template_is_valid_python():
    assert templates.DEFAULT in templates.available()
    for name in templates.available():
        ast.parse(templates.read(name))
    with pytest.raises(KeyError, match="no template 'nope'"):
        templates.read("nope")


# -- closed pipe ----------------------------------------------------------------------------------


def test_train_into_a_closed_pipe_ends_quietly():
    command = [sys.executable, "-m", "tinycnn", "train", "--epochs", "0", "--no-progress"]
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head -0`: nobody will ever read
    started = time.monotonic()
    completed = subprocess.run(command, stdout=write_end, stderr=subprocess.PIPE, text=True)
    os.close(write_end)
    assert completed.stderr == "", completed.stderr
    assert completed.returncode == SIGPIPE_STATUS == 141
    assert time.monotonic() - started < 60


# -- bad checkpoints: one line each -----------------------------------------------------------


def _write_five_class(path):
    model = build_model("tinycnn", 5)
    save_checkpoint(path, model.params, "tinycnn", model.config)


def _write_truncated(path):
    model = build_model("mlp")
    save_checkpoint(path, model.params, "mlp", model.config)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _write_not_npz(path):
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))


def _write_empty(path):
    path.write_bytes(b"")


def _write_zip_of_text(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "not an array")


def _write_wrong_image_size(path):
    config = {**build_model("tinycnn").config, "image_size": 2}  # smaller than the kernel
    save_checkpoint(path, build_model("tinycnn").params, "tinycnn", config)


def _write_wrong_shapes(path):
    model = build_model("tinycnn")
    params = {k: np.zeros((2, 2)) for k in model.params}
    save_checkpoint(path, params, "tinycnn", model.config)


def _write_unknown_argument(path):
    save_checkpoint(path, {}, "mlp", {"hidden": 4, "n_classes": 3, "depth": 9})


@pytest.mark.parametrize(
    "write, message",
    [
        (_write_five_class, "cannot train on the stripe images: n_classes must be 2, 3 or 4"),
        (_write_truncated, "cannot read checkpoint"),
        (_write_not_npz, "not an .npz archive"),
        (_write_empty, "not an .npz archive"),
        (_write_zip_of_text, "not a tinycnn checkpoint"),
        (_write_wrong_image_size, "weights do not fit"),
        (_write_wrong_shapes, "must have shape"),
        (_write_unknown_argument, "takes no argument 'depth'"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[7:],
)
def test_every_bad_checkpoint_is_a_one_line_error(capsys, tmp_path, write, message):
    path = tmp_path / "weights.npz"
    write(path)
    status, out, err = run(capsys, "train", "--no-progress", "--epochs", "1", "--load", str(path))
    assert status == 2 and out == ""
    assert len(err.splitlines()) == 1 and message in err, err


# -- outputs are checked before the work ------------------------------------------------------


def test_unwritable_save_fails_before_training(capsys, tmp_path):
    started = time.monotonic()
    status, out, err = run(
        capsys, "train", "--epochs", "500", "--save", str(tmp_path / "no" / "w.npz")
    )
    assert status == 2 and out == "" and "no such directory" in err
    assert time.monotonic() - started < 5  # 500 epochs would take minutes


# -- help texts ---------------------------------------------------------------------------------


def _help_texts():
    parser = build_parser()
    yield "tinycnn", parser.format_help()
    for action in parser._subparsers._group_actions:
        for name, subparser in action.choices.items():
            yield name, subparser.format_help()


def test_no_help_text_mentions_an_internal_issue_number():
    texts = dict(_help_texts())
    assert {"train", "template", "check", "report", "bench"} <= set(texts)
    for name, text in texts.items():
        assert not re.search(r"\bissues?\s*#?\d", text, re.IGNORECASE), (name, text)
