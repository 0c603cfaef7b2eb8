"""`tinycnn check` internals: the child-process sandbox, result decoding and the import policy."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tinycnn.grading.grader import grade_submission
from tinycnn.grading.policy import ImportUse, allowed_modules, policy_messages, scan_imports
from tinycnn.grading.sandbox import CHILD_SCRIPT, ForeignValue, Limits, decode

FIXTURES = Path(__file__).parent / "fixtures" / "submissions"


def running_children() -> list[int]:
    """Pids of live processes running the checker's child script (Linux /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().split(") ", 1)[1][0]
        except OSError:
            continue
        if str(CHILD_SCRIPT).encode() in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


def test_the_portable_spawn_path_gives_the_same_verdicts_as_the_fork_server():
    # Off Linux every child is a fresh interpreter; the verdicts must not depend on that.
    def verdicts(fork: bool):
        report = grade_submission(
            FIXTURES / "hostile_exit_in_function.py",
            train=False,
            allow_imports=("os", "sys"),
            limits=Limits(timeout=2.0),
            fork_server=fork,
        )
        return {name: (r.status, r.cases_failed) for name, r in report.functions.items()}

    assert verdicts(fork=False) == verdicts(fork=True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("fork", [True, False], ids=["forked", "spawned"])
def test_a_timed_out_child_is_killed_not_left_running(fork):
    before = set(running_children())
    report = grade_submission(
        FIXTURES / "hostile_endless_loop.py",
        train=False,
        limits=Limits(timeout=0.5),
        fork_server=fork,
    )
    assert report.functions["relu_backward"].status == "timeout"
    # Only the shared fork server (if it was just started) may remain.
    leftovers = set(running_children()) - before
    assert len(leftovers) <= (1 if fork else 0)


def record(array: np.ndarray, offset: int = 0, container: str = "ndarray") -> dict:
    return {
        "kind": "array",
        "container": container,
        "dtype": array.dtype.str,
        "shape": list(array.shape),
        "offset": offset,
        "nbytes": array.nbytes,
    }


def test_decode_restores_arrays_scalars_python_numbers_and_tuples():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array(2.5)
    blob = a.tobytes() + b.tobytes()
    value = decode(
        {
            "kind": "tuple",
            "type": "tuple",
            "items": [record(a), record(b, a.nbytes, "numpy scalar")],
        },
        blob,
    )
    assert isinstance(value, tuple)
    np.testing.assert_array_equal(value[0], a)
    assert value[0].dtype == np.float32
    assert isinstance(value[1], np.float64) and value[1] == 2.5
    assert decode(record(b, a.nbytes, "python float"), blob) == 2.5
    assert type(decode(record(b, a.nbytes, "python float"), blob)) is float
    assert decode({"kind": "other", "type": "NoneType"}, b"") == ForeignValue("NoneType")


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "array", "dtype": "|O", "shape": [1], "offset": 0, "nbytes": 8},  # pointers
        {"kind": "array", "dtype": "<f8", "shape": [3], "offset": 0, "nbytes": 16},  # size mismatch
        {"kind": "array", "dtype": "<f8", "shape": [2], "offset": 8, "nbytes": 16},  # past the end
        {"kind": "pickle", "data": "..."},
    ],
    ids=["object-dtype", "size-mismatch", "out-of-bounds", "unknown-kind"],
)
def test_decode_refuses_anything_but_plain_numbers(bad):
    with pytest.raises(ValueError):
        decode(bad, bytes(16))


def test_the_static_scan_finds_every_kind_of_import_with_its_line():
    source = (
        "import numpy as np\n"
        "import math, os.path\n"
        "from torch import nn\n"
        "def f():\n"
        "    import scipy.signal\n"
        "    return __import__('jax')\n"
        "importlib.import_module('tensorflow')\n"
        "from . import helpers\n"
    )
    uses = scan_imports(source)
    assert [(u.module, u.line) for u in uses] == [
        ("numpy", 1),
        ("math", 2),
        ("os", 2),
        ("torch", 3),
        ("scipy", 5),
        ("jax", 6),
        ("tensorflow", 7),
        (".", 8),
    ]
    messages = policy_messages(uses, allowed_modules())
    assert [m.split(" is not allowed")[0] for m in messages] == [
        "import os (line 2)",
        "import torch (line 3)",
        "import scipy (line 5)",
        "import jax (line 6)",
        "import tensorflow (line 7)",
        "import . (line 8)",
    ]
    assert policy_messages(uses, allowed_modules(["os", "torch"]))[0].startswith("import scipy")


def test_the_policy_allows_numpy_math_and_annotation_modules_only_by_default():
    allowed = allowed_modules()
    assert {"numpy", "math", "__future__", "typing"} <= allowed
    for name in ("torch", "tensorflow", "jax", "reference", "parity_tests", "tinycnn", "os"):
        assert name not in allowed
    assert "reference" in policy_messages([ImportUse("reference", 4)], allowed)[0]
    assert "this project's own package" in policy_messages([ImportUse("tinycnn", 1)], allowed)[0]
    with pytest.raises(SyntaxError):
        scan_imports("def broken(:\n")
