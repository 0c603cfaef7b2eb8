"""``tinycnn check`` shows its progress on a terminal, and only there (issue 10 review, item 2).

A grading can take up to the wall-clock budget (110 s with the default limits) for a hostile
file; a student waiting at a terminal sees a clock move, a class folder a count of
submissions. Stderr that is not a terminal (a pipe, a log, the Gradescope runner) gets nothing,
and the results on stdout and in the output files are the same either way.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest

from tinycnn.grading.command import Progress
from tinycnn.grading.folder import grade_folder
from tinycnn.grading.sandbox import Limits

FIXTURES = Path(__file__).parent / "fixtures" / "submissions"
CORRECT = FIXTURES / "correct_vectorized.py"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def check_with_stderr_on(terminal: bool, *args: str, cwd: Path) -> tuple[str, str]:
    """Run ``tinycnn check ARGS``: stdout through a pipe, stderr on a pseudo-terminal of 120
    columns (``terminal``) or a pipe; returns both as text."""
    command = [sys.executable, "-m", "tinycnn", "check", *args]
    if not terminal:
        done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=300)
        return done.stdout, done.stderr
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=slave, text=True, cwd=cwd)
    os.close(slave)
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the terminal's other side is closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read)
    reader.start()
    out, _ = process.communicate(timeout=300)
    reader.join()
    os.close(master)
    return out, b"".join(chunks).decode("utf-8", "replace")


def test_a_terminal_sees_the_clock_and_a_pipe_sees_nothing(tmp_path):
    args = [str(CORRECT), "--no-train", "--seed", "5", "--json", str(tmp_path / "v.json")]
    out_tty, err_tty = check_with_stderr_on(True, *args, cwd=tmp_path)
    assert "grading correct_vectorized.py (at most 110 s): 00:0" in err_tty
    assert "elapsed" in err_tty
    assert err_tty.rstrip(" ").endswith("\r")  # erased when done: the table follows clean
    json.loads((tmp_path / "v.json").read_text())  # the file holds only the verdicts
    out_pipe, err_pipe = check_with_stderr_on(False, *args, cwd=tmp_path)
    assert err_pipe == ""
    assert "\r" not in out_tty and "elapsed" not in out_tty
    strip = lambda text: [line for line in text.splitlines() if not line.startswith("result:")]  # noqa: E731
    assert strip(out_tty) == strip(out_pipe)  # only the seconds of the result line differ


@pytest.mark.slow  # grades a class folder in a subprocess
def test_a_class_folder_counts_submissions_with_names_cleaned(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "alice.py").write_bytes(CORRECT.read_bytes())
    (folder / "b\x1b[31mob.py").write_text("def relu_forward(x):\n    return x\n")
    out, err = check_with_stderr_on(
        True,
        str(folder),
        "--no-train",
        "--jobs",
        "1",
        "--csv",
        str(tmp_path / "s.csv"),
        cwd=tmp_path,
    )
    assert "grading: 0/2 submissions" in err and "grading: 2/2 submissions" in err
    assert "last: alice.py" in err and "last: bob.py" in err
    assert "\x1b[31m" not in err
    assert "2/2" not in (tmp_path / "s.csv").read_text() and "\r" not in out


def test_the_display_is_off_unless_the_stream_is_a_terminal():
    pipe = io.StringIO()
    with Progress(3, "grading", "submission", stream=pipe) as bar:
        bar.advance("alice.py")
    assert not bar.enabled and pipe.getvalue() == ""
    terminal = Terminal()
    with Progress(3, "grading", "submission", stream=terminal) as bar:
        bar.advance("\x1b]0;evil\x07alice\n.py")
        bar.more()
    assert bar.enabled
    shown = terminal.getvalue()
    assert "grading: 1/3 submissions" in shown and "1/4" in shown
    assert "\x1b" not in shown and "\x07" not in shown and "\n" not in shown


def test_grade_folder_reports_each_submission_as_it_is_collected(tmp_path):
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text("def relu_forward(x):\n    return x\n")
    events: list[tuple[str, str]] = []
    files = [tmp_path / "a.py", tmp_path / "b.py"]
    reports = grade_folder(
        files,
        jobs=1,
        limits=Limits(timeout=20.0),
        train=False,
        seed=1,
        progress=lambda event, name: events.append((event, name)),
    )
    assert len(reports) == 2
    assert events == [("graded", str(files[0])), ("graded", str(files[1]))]
