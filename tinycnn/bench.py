"""``tinycnn bench``: how fast the NumPy reference runs next to PyTorch (and JAX), one thread each.

One run measures

- every contract op of :mod:`tinycnn.reference.ops`, forward and backward, against
  ``torch.nn.functional`` at the shapes of TinyCNN with batch 32, in float32 and float64, and
  the textbook loop versions of convolution and pooling (to show how much slower they are);
- training throughput (samples per second) of TinyCNN and the MLP with 18 hidden units at batch
  32, 128 and 3000 (the whole training set): the steps :func:`tinycnn.reference.train.train`
  runs (:mod:`tinycnn.reference.fast`) against PyTorch eager, and for TinyCNN in float32
  against JAX with the epoch in one jitted ``lax.scan`` when JAX is installed
  (``pip install "tinycnn[bench]"``, :mod:`tinycnn.jax_baseline`);
- where a NumPy training step's time goes: each part of the TinyCNN step (float32) timed on
  its own, with its share of the step (section "step");
- the wall time of whole command runs, as subprocesses (table :func:`command_runs`):
  ``tinycnn report`` and ``tinycnn report --quick``, ``tinycnn check`` of a correct submission
  (the loop-based fixture shipped in ``parity_tests/fixtures/loop_ops.py``) and the default test
  suite (``python -m pytest -q`` in the source checkout, when there is one);
- the facts of the machine: cores, BLAS libraries, versions, load average.

Every row gets the ratio **NumPy speed / PyTorch speed** (PyTorch's time divided by NumPy's):
above 1 NumPy is faster; JAX rows also **NumPy speed / JAX speed**. The targets live in one
table, :data:`TARGETS`; each row a target applies to gets a pass/fail mark,
:func:`evaluate_targets` sums them up, and ``tinycnn bench`` exits with status 1, naming them,
when a target fails.

How a time is measured: :class:`timeit.Timer` (garbage collector off), a few warm-up calls,
then ``repeat`` runs of ``number`` calls each, ``number`` chosen from
:meth:`timeit.Timer.autorange` so that one run lasts at least ``min_run_seconds``; the result is
the median over the runs of the time per call. The frameworks' runs take turns, so a burst of
load on the machine hits all of them; the training rows also keep the range of the per-run
ratios.

The JSON (``--json PATH``) holds ``schema`` (``"tinycnn-bench/4"``), ``settings``, ``threads``
(how they were set), ``machine``, ``targets`` (the verdicts), ``all_targets_pass`` and
``rows``, one dict per table row: ``section`` ("ops", "training", "step" or "commands"),
``name``; for ops and training ``dtype``, ``batch``, ``numpy_seconds`` and ``torch_seconds``
(per call, or per epoch of ``samples_per_epoch`` images for training) and ``ratio``; for
training also ``numpy_samples_per_second``, ``torch_samples_per_second``, ``ratio_range`` and,
with JAX, ``jax_seconds``, ``jax_samples_per_second``, ``ratio_vs_jax`` and
``ratio_vs_jax_range``, likewise ``jax_tuned_...`` and ``ratio_vs_jax_tuned...`` (the two
variants of :mod:`tinycnn.jax_baseline`; ``ratio_vs_jax`` is None on a row that wanted JAX
without it); for step
``part``, ``batch``, ``numpy_seconds`` and ``share``; for commands ``key``, ``command``,
``cwd``, ``status`` ("ok", "not available", "failed (exit N): ...", "timed out after T s"),
``seconds`` (wall time of a successful run, else None) and ``elapsed_seconds`` (of any run
that started), ``cpu_seconds`` (user + system time of the run and the processes it waited
for), ``cores``, ``load_average`` (1 minute, before and after) and ``cpu_stall_share`` (time
some task waited for a CPU over the wall time, None without ``/proc/pressure/cpu``); the
"report-fast-path" row also ``ratio_vs_public_ops`` and ``wall_ratio_vs_public_ops``; and
``targets``, ``{target name: passed}``, where targets apply. The vectorized op rows also have
``cpu_stall_share``, over the time of their measurement.
``--markdown PATH`` writes the same table, machine facts and verdicts as a markdown document.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

__all__ = [
    "FRESH_FOLDER",
    "TARGETS",
    "BenchResult",
    "BenchSettings",
    "Target",
    "command_runs",
    "compare",
    "correct_submission",
    "evaluate_targets",
    "format_markdown",
    "format_table",
    "machine_facts",
    "markdown_rows",
    "measured_when_busy",
    "ratio",
    "register",
    "run_bench",
    "settings_for",
    "single_thread",
    "source_checkout",
    "time_command",
]

SCHEMA = "tinycnn-bench/4"  # 4: command CPU time and contention; 3: JAX, step parts
FULL_BATCH = 3000  # "full batch": the training set of the throughput rows has this many images
#: The full report with the public ops' training over the same with the fast path, CPU time
#: (see docs/bench.md: what share of the report is NumPy training, and how much faster it is).
REPORT_FAST_PATH_RATIO = 1.2


# ------------------------------------------------------------------------------------------
# Targets: the one table of what "fast enough" means (issue 5)
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A goal for the rows whose fields match ``select``.

    Ratio targets need ``row[ratio_key] >= minimum_ratio`` on every matching row (``"ratio"``:
    NumPy speed / PyTorch speed; ``"ratio_vs_jax"``: NumPy speed / JAX speed); time targets
    need a successful command run (``row["status"] == "ok"``) with ``row["seconds"] <
    maximum_seconds``.
    """

    name: str
    description: str
    select: dict
    minimum_ratio: float | None = None
    maximum_seconds: float | None = None
    ratio_key: str = "ratio"

    def applies_to(self, row: dict) -> bool:
        return all(row.get(key) == value for key, value in self.select.items())

    def met_by(self, row: dict) -> bool | None:
        """True or False, or None when the row has no measurement (e.g. command missing) or
        missed the target on a busy machine (`measured_when_busy`: not verified).

        A command that failed or timed out misses its time target: a run that does not
        finish correctly is not fast enough, however soon it stopped. A run over the limit
        fails it when the run's CPU time spread over every core already exceeds the limit
        (an idle machine could not do better), or when the machine was not busy (its tasks
        waited for a CPU less than :data:`BUSY_STALL_SHARE` of the run's wall time); on a
        busy machine the target is not verified (None): the wall time measured the other work
        as much as the command. A ratio under its minimum is not verified by the same rule
        when the row says how busy the machine was (the op rows: microseconds of wall time
        each, which a process taking the core turns into a slow median).
        """
        if self.minimum_ratio is not None:
            value = row.get(self.ratio_key)
            if value is None:
                return None
            if value >= self.minimum_ratio:
                return True
            return None if measured_when_busy(row) else False
        if row.get("status") == "not available":
            return None
        if row.get("status") != "ok" or row.get("seconds") is None:
            return False
        if row["seconds"] < self.maximum_seconds:
            return True
        cpu, cores = row.get("cpu_seconds"), row.get("cores")
        if cpu is not None and cores and cpu / cores >= self.maximum_seconds:
            return False
        return None if measured_when_busy(row) else False

    def measured(self, row: dict) -> bool:
        """Whether ``row`` has what this target judges (a ratio, or a successful run's time)."""
        if self.minimum_ratio is not None:
            return row.get(self.ratio_key) is not None
        return row.get("status") == "ok" and row.get("seconds") is not None

    def threshold_text(self) -> str:
        if self.minimum_ratio is not None:
            against = {"ratio_vs_jax": " JAX", "ratio_vs_public_ops": " public ops"}
            return f">= {self.minimum_ratio:g}x{against.get(self.ratio_key, '')}"
        return f"< {self.maximum_seconds:g} s"


#: A command run (or an op row) counts as measured on a busy machine when its tasks waited for
#: a CPU (Linux pressure stall information, ``/proc/pressure/cpu``, "some") this share of its
#: wall time.
BUSY_STALL_SHARE = 0.10


def measured_when_busy(row: dict) -> bool:
    """Whether ``row`` was measured while tasks waited for a CPU (`BUSY_STALL_SHARE` or more of
    its wall time); False without pressure information."""
    stall = row.get("cpu_stall_share")
    return stall is not None and stall >= BUSY_STALL_SHARE


TARGETS = (
    Target(
        "tinycnn-batch-32",
        "TinyCNN training, batch 32, float32: NumPy >= 4x PyTorch",
        {"section": "training", "model": "TinyCNN", "batch": 32, "dtype": "float32"},
        minimum_ratio=4.0,
    ),
    Target(
        "tinycnn-full-batch",
        f"TinyCNN training, batch {FULL_BATCH}, float32: NumPy >= 2.4x PyTorch",
        {"section": "training", "model": "TinyCNN", "batch": FULL_BATCH, "dtype": "float32"},
        minimum_ratio=2.4,
    ),
    Target(
        "tinycnn-vs-jax-32",
        "TinyCNN training, batch 32, float32: NumPy ahead of JAX (jit, epoch in one lax.scan)",
        {"section": "training", "model": "TinyCNN", "batch": 32, "dtype": "float32"},
        minimum_ratio=1.0,
        ratio_key="ratio_vs_jax",
    ),
    Target(
        "tinycnn-vs-jax-128",
        "TinyCNN training, batch 128, float32: NumPy ahead of JAX (jit, epoch in one lax.scan)",
        {"section": "training", "model": "TinyCNN", "batch": 128, "dtype": "float32"},
        minimum_ratio=1.0,
        ratio_key="ratio_vs_jax",
    ),
    Target(
        "mlp-batch-32",
        "MLP (18 hidden) training, batch 32, float32: NumPy >= 4x PyTorch",
        {"section": "training", "model": "MLP (18 hidden)", "batch": 32, "dtype": "float32"},
        minimum_ratio=4.0,
    ),
    Target(
        "ops-batch-32",
        "every op forward and backward at TinyCNN shapes, batch 32 (float32 "
        "and float64): NumPy no slower than PyTorch",
        {"section": "ops", "implementation": "vectorized", "batch": 32},
        minimum_ratio=1.0,
    ),
    Target(
        "report-fast-path",
        "tinycnn report (full, --jobs 1): with train(fast=False) it takes >= "
        f"{REPORT_FAST_PATH_RATIO}x the CPU time (issue 14: the report's time drops "
        "accordingly)",
        {"section": "commands", "key": "report-fast-path"},
        minimum_ratio=REPORT_FAST_PATH_RATIO,
        ratio_key="ratio_vs_public_ops",
    ),
    Target(
        "report-full",
        "tinycnn report (full) under 60 s",
        {"section": "commands", "key": "report-full"},
        maximum_seconds=60.0,
    ),
    Target(
        "report-quick",
        "tinycnn report --quick under 30 s",
        {"section": "commands", "key": "report-quick"},
        maximum_seconds=30.0,
    ),
    Target(
        "check-correct",
        "grading a correct submission (tinycnn check) under 15 s",
        {"section": "commands", "key": "check-correct"},
        maximum_seconds=15.0,
    ),
    Target(
        "test-suite",
        "default test suite (pytest) under 60 s",
        {"section": "commands", "key": "test-suite"},
        maximum_seconds=60.0,
    ),
)


def ratio(numpy_seconds: float, torch_seconds: float) -> float:
    """NumPy speed / PyTorch speed for one task: ``torch_seconds / numpy_seconds``."""
    if numpy_seconds <= 0 or torch_seconds <= 0:
        raise ValueError(
            f"times must be positive, got NumPy {numpy_seconds} s and PyTorch {torch_seconds} s"
        )
    return torch_seconds / numpy_seconds


def evaluate_targets(rows: list[dict], targets: Sequence[Target] = TARGETS) -> list[dict]:
    """Mark each row a target applies to, and return one verdict per target.

    Sets ``row["targets"][name]`` (True, False, or None when the row has no measurement) on
    the rows each target applies to (a row may have several). A verdict is a dict with ``name``,
    ``description``, ``threshold``, ``status`` ("pass", "fail", "not measured": no row,
    "not available": rows without a measurement, or "not verified": a command over its time
    limit, or an op under its ratio, on a busy machine, see :meth:`Target.met_by`), ``rows``
    (how many rows it covers) and ``worst`` (the smallest ratio or the largest time of a
    successful run among them, None if there is none).
    """
    verdicts = []
    for target in targets:
        matching = [row for row in rows if target.applies_to(row)]
        results = []
        for row in matching:
            passed = row.setdefault("targets", {})[target.name] = target.met_by(row)
            results.append(passed)
        if target.minimum_ratio is not None:
            key = target.ratio_key
            worst = min((row[key] for row in matching if row.get(key) is not None), default=None)
        else:
            worst = max(
                (
                    row["seconds"]
                    for row in matching
                    if row.get("status") == "ok" and row.get("seconds") is not None
                ),
                default=None,
            )
        if not matching:
            status = "not measured"
        elif False in results:
            status = "fail"
        elif any(
            passed is None and target.measured(row)
            for passed, row in zip(results, matching, strict=True)
        ):
            status = "not verified"  # measured, missing the target, on a busy machine
        elif None in results:
            status = "not available"
        else:
            status = "pass"
        verdicts.append(
            {
                "name": target.name,
                "description": target.description,
                "threshold": target.threshold_text(),
                "status": status,
                "rows": len(matching),
                "worst": worst,
            }
        )
    return verdicts


# ------------------------------------------------------------------------------------------
# Settings
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchSettings:
    """How long and how much to measure. :func:`settings_for` gives the two standard ones."""

    quick: bool = False
    repeat: int = 11  # timed runs per measurement; the median is reported
    min_run_seconds: float = 0.02  # each run repeats the call until it lasts this long
    warmup_calls: int = 3  # untimed calls first (caches, lazy initialisation, allocator)
    op_batch: int = 32  # batch of the op rows (the op target is stated at batch 32)
    loop_repeat: int = 3  # runs of the (slow) textbook loop versions, one call each
    train_batches: tuple[int, ...] = (32, 128, FULL_BATCH)
    train_dtypes: tuple[str, ...] = ("float32", "float64")
    train_repeat: int = 7  # timed epochs (runs) per throughput row
    jax: bool = True  # the JAX baseline (TinyCNN, float32), when JAX is installed
    step_parts: bool = True  # time each part of the NumPy training step (section "step")
    n_train: int = FULL_BATCH  # training images of the throughput rows
    # keys of command_runs() to time, in this order
    commands: tuple[str, ...] = (
        "report-full",
        "report-quick",
        "report-fast-path",
        "report-public-ops",
        "check-correct",
        "test-suite",
    )
    command_timeout_seconds: float = 900.0  # a run still going after this is killed


def settings_for(quick: bool) -> BenchSettings:
    """The settings of ``tinycnn bench`` (``quick=False``) or ``tinycnn bench --quick``."""
    if not quick:
        return BenchSettings()
    return BenchSettings(
        quick=True,
        repeat=5,
        min_run_seconds=0.005,
        warmup_calls=2,
        loop_repeat=1,
        train_dtypes=("float32",),
        train_repeat=5,
        commands=("report-quick", "check-correct"),
    )


# ------------------------------------------------------------------------------------------
# Timing
# ------------------------------------------------------------------------------------------


def _calls_per_run(timer: timeit.Timer, min_run_seconds: float) -> int:
    """Calls per timed run so that one run lasts at least ``min_run_seconds``.

    :meth:`timeit.Timer.autorange` finds how many calls take 0.2 s; the per-call time it
    measured gives the number for ``min_run_seconds``.
    """
    if min_run_seconds <= 0:
        return 1
    number, seconds = timer.autorange()
    return max(1, math.ceil(min_run_seconds * number / seconds))


def time_interleaved(
    functions: Mapping[str, Callable[[], object]],
    settings: BenchSettings,
    *,
    repeat: int | None = None,
    fixed_calls: int | None = None,
) -> dict[str, list[float]]:
    """Seconds per call of each function in every timed run, the functions taking turns.

    Each function gets ``settings.warmup_calls`` untimed calls, then a :class:`timeit.Timer`
    (garbage collector off while timing); run ``r`` of every function happens before run
    ``r + 1`` of any, so a burst of load on the machine hits all of them. ``fixed_calls``
    skips the calibration and times that many calls per run (for functions slow enough on
    their own, such as a whole epoch). Returns ``{name: [seconds per call, one per run]}``.
    """
    repeat = settings.repeat if repeat is None else repeat
    timers = {name: timeit.Timer(function) for name, function in functions.items()}
    for function in functions.values():
        for _ in range(settings.warmup_calls):
            function()
    numbers = {
        name: fixed_calls or _calls_per_run(timer, settings.min_run_seconds)
        for name, timer in timers.items()
    }
    times: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(repeat):
        for name, timer in timers.items():
            times[name].append(timer.timeit(numbers[name]) / numbers[name])
    return times


def compare(
    numpy_function: Callable[[], object],
    torch_function: Callable[[], object],
    settings: BenchSettings,
    *,
    repeat: int | None = None,
    fixed_calls: int | None = None,
) -> tuple[float, float]:
    """Median seconds per call of each function, their timed runs alternating.

    See :func:`time_interleaved`.
    """
    times = time_interleaved(
        {"numpy": numpy_function, "torch": torch_function},
        settings,
        repeat=repeat,
        fixed_calls=fixed_calls,
    )
    return statistics.median(times["numpy"]), statistics.median(times["torch"])


# ------------------------------------------------------------------------------------------
# Ops: reference.ops against torch.nn.functional
# ------------------------------------------------------------------------------------------


def _op_cases(batch: int, dtype_name: str):
    """(op, pass, shapes, NumPy function, PyTorch function) for every op row of one dtype.

    Shapes are TinyCNN's: images ``(N, 1, 8, 8)``, three 3x3 filters, ReLU and 2x2 pooling on
    ``(N, 3, 6, 6)``, the dense layer ``27 -> 3``, cross-entropy on ``(N, 3)`` logits.
    PyTorch's forward is the ``F.*`` call under ``torch.no_grad()`` (its fastest eager path, no
    graph recorded). Its backward is ``torch.autograd.grad`` through a graph recorded once and
    kept (``retain_graph=True``): the backward kernels plus autograd's dispatch, the way eager
    PyTorch computes gradients. Cross-entropy is one row, "forward+backward": the reference
    returns the loss and its gradient from one call.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F

    from tinycnn.reference import ops

    N = batch
    dtype = np.dtype(dtype_name)
    rng = np.random.default_rng(0)

    def normal(*shape):
        return rng.standard_normal(shape).astype(dtype)

    x, w, b = normal(N, 1, 8, 8), normal(3, 1, 3, 3), normal(3)
    conv_out, pooled = normal(N, 3, 6, 6), normal(N, 3, 3, 3)
    features, fc_w, fc_b, logits = normal(N, 27), normal(3, 27), normal(3), normal(N, 3)
    labels = rng.integers(0, 3, size=N)

    def tensors(*arrays):
        return [torch.from_numpy(a) for a in arrays]

    def no_grad(function, *arrays):
        inputs = tensors(*arrays)

        def call():
            with torch.no_grad():
                return function(*inputs)

        return call

    def backward(function, upstream, *arrays):
        inputs = [t.requires_grad_() for t in tensors(*(a.copy() for a in arrays))]
        output = function(*inputs)
        dy = torch.from_numpy(upstream)
        return lambda: torch.autograd.grad(output, inputs, dy, retain_graph=True)

    def cross_entropy_with_gradient():
        leaf = torch.from_numpy(logits).requires_grad_()
        loss = F.cross_entropy(leaf, torch_labels)
        return loss, torch.autograd.grad(loss, leaf)

    torch_labels = torch.from_numpy(labels)

    def pool(a):
        return F.max_pool2d(a, 2, 2)

    conv_shape = f"x ({N},1,8,8), w (3,1,3,3)"
    map_shape = f"({N},3,6,6)"
    return [
        (
            "conv2d",
            "forward",
            conv_shape,
            lambda: ops.conv2d_forward(x, w, b),
            no_grad(F.conv2d, x, w, b),
        ),
        (
            "conv2d",
            "backward",
            conv_shape,
            lambda: ops.conv2d_backward(conv_out, x, w, b),
            backward(F.conv2d, conv_out, x, w, b),
        ),
        (
            "relu",
            "forward",
            map_shape,
            lambda: ops.relu_forward(conv_out),
            no_grad(F.relu, conv_out),
        ),
        (
            "relu",
            "backward",
            map_shape,
            lambda: ops.relu_backward(conv_out, conv_out),
            backward(F.relu, conv_out, conv_out),
        ),
        (
            "maxpool2d",
            "forward",
            f"{map_shape}, 2x2 stride 2",
            lambda: ops.maxpool2d_forward(conv_out, 2, 2),
            no_grad(pool, conv_out),
        ),
        (
            "maxpool2d",
            "backward",
            f"{map_shape}, 2x2 stride 2",
            lambda: ops.maxpool2d_backward(pooled, conv_out, 2, 2),
            backward(pool, pooled, conv_out),
        ),
        (
            "linear",
            "forward",
            f"({N},27) -> 3",
            lambda: ops.linear_forward(features, fc_w, fc_b),
            no_grad(F.linear, features, fc_w, fc_b),
        ),
        (
            "linear",
            "backward",
            f"({N},27) -> 3",
            lambda: ops.linear_backward(logits, features, fc_w, fc_b),
            backward(F.linear, logits, features, fc_w, fc_b),
        ),
        (
            "softmax_cross_entropy",
            "forward+backward",
            f"logits ({N},3)",
            lambda: ops.softmax_cross_entropy(logits, labels),
            cross_entropy_with_gradient,
        ),
    ]


def _loop_cases(batch: int):
    """(op, pass, function) for the textbook loop versions, float64, TinyCNN shapes."""
    import numpy as np

    from tinycnn.reference import ops

    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((batch, 1, 8, 8)), rng.standard_normal((3, 1, 3, 3)), np.zeros(3)
    conv_out, pooled = rng.standard_normal((batch, 3, 6, 6)), rng.standard_normal((batch, 3, 3, 3))
    return [
        ("conv2d", "forward", lambda: ops.conv2d_forward_loops(x, w, b)),
        ("conv2d", "backward", lambda: ops.conv2d_backward_loops(conv_out, x, w, b)),
        ("maxpool2d", "forward", lambda: ops.maxpool2d_forward_loops(conv_out, 2, 2)),
        ("maxpool2d", "backward", lambda: ops.maxpool2d_backward_loops(pooled, conv_out, 2, 2)),
    ]


def _time_alone(function: Callable[[], object], repeat: int) -> float:
    """Median seconds of one call (after one warm-up call), for functions slow on their own."""
    function()
    return statistics.median(timeit.Timer(function).repeat(repeat, number=1))


def bench_ops(settings: BenchSettings, progress: Callable[[str], None]) -> list[dict]:
    """One row per op, pass and dtype (vectorized), then the loop versions (float64)."""
    rows = []
    for dtype_name in ("float32", "float64"):
        for op, pass_name, shapes, numpy_call, torch_call in _op_cases(
            settings.op_batch, dtype_name
        ):
            progress(f"{op} {pass_name} {dtype_name}")
            stall_before, start = _cpu_stall_microseconds(), time.perf_counter()
            numpy_seconds, torch_seconds = compare(numpy_call, torch_call, settings)
            stall = _cpu_stall_share(stall_before, time.perf_counter() - start)
            rows.append(
                {
                    "section": "ops",
                    "name": f"{op} {pass_name}",
                    "op": op,
                    "pass": pass_name,
                    "implementation": "vectorized",
                    "dtype": dtype_name,
                    "batch": settings.op_batch,
                    "shapes": shapes,
                    "numpy_seconds": numpy_seconds,
                    "torch_seconds": torch_seconds,
                    "ratio": ratio(numpy_seconds, torch_seconds),
                    "cpu_stall_share": stall,  # a ratio under the target is not verified if busy
                }
            )
    # The loop versions take milliseconds: one call per run is precise enough, and PyTorch's
    # time is the one just measured for the same op, pass and shapes in float64.
    for op, pass_name, loop_call in _loop_cases(settings.op_batch):
        progress(f"{op} {pass_name} loops")
        loop_seconds = _time_alone(loop_call, settings.loop_repeat)
        vectorized = next(
            row
            for row in rows
            if (row["op"], row["pass"], row["dtype"]) == (op, pass_name, "float64")
        )
        rows.append(
            {
                "section": "ops",
                "name": f"{op} {pass_name} (loops)",
                "op": op,
                "pass": pass_name,
                "implementation": "loops",
                "dtype": "float64",
                "batch": settings.op_batch,
                "shapes": vectorized["shapes"],
                "numpy_seconds": loop_seconds,
                "torch_seconds": vectorized["torch_seconds"],
                "ratio": ratio(loop_seconds, vectorized["torch_seconds"]),
                "slower_than_vectorized": loop_seconds / vectorized["numpy_seconds"],
            }
        )
    return rows


# ------------------------------------------------------------------------------------------
# Training throughput
# ------------------------------------------------------------------------------------------


def _epoch_functions(
    model_name: str, batch: int, dtype_name: str, n_train: int, with_jax: bool
) -> dict[str, Callable[[], object]]:
    """One epoch of SGD steps in NumPy, PyTorch (and JAX), from the same weights and batches.

    The NumPy steps are those :func:`tinycnn.reference.train.train` runs (the fast path,
    :class:`tinycnn.reference.fast.TrainingSteps`), the PyTorch steps those of
    :func:`tinycnn.torch_impl.train.train` (``sgd_step``), with the optimiser settings of
    ``TrainConfig``, without the per-epoch evaluation: only the training steps are timed.
    With ``with_jax``, also the epoch as one jitted ``lax.scan`` (:mod:`tinycnn.jax_baseline`).
    """
    import numpy as np
    import torch

    from tinycnn import reference, torch_impl
    from tinycnn.reference.fast import TrainingSteps
    from tinycnn.torch_impl.train import sgd_step as torch_sgd_step

    dtype = np.dtype(dtype_name)
    data = reference.make_dataset(n_train=n_train, n_val=0, seed=0)
    x, y = data.x_train.astype(dtype), data.y_train
    kind = "tinycnn" if model_name == "TinyCNN" else "mlp"  # the MLP's default width, 18
    model = reference.build_model(kind, dtype=dtype, seed=0)
    config = reference.TrainConfig()
    batches = reference.epoch_batches(n_train, batch, epoch=1, seed=config.seed)

    module = torch_impl.from_reference(model)  # same initial weights, same dtype
    torch_optimizer = torch.optim.SGD(
        module.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    x_torch, y_torch = torch.from_numpy(x), torch.from_numpy(y)
    torch_batches = [torch.from_numpy(index) for index in batches]
    functions = {}
    if with_jax:
        from tinycnn import jax_baseline

        for variant, key in (("textbook", "jax"), ("tuned", "jax_tuned")):
            functions[key] = jax_baseline.epoch_function(
                model_name,
                model.params,
                x,
                y,
                batches,
                lr=config.lr,
                momentum=config.momentum,
                weight_decay=config.weight_decay,
                variant=variant,
            )
    steps = TrainingSteps(
        model, x, y, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )

    def numpy_epoch():
        for index in batches:
            steps(index)

    def torch_epoch():
        for index in torch_batches:
            torch_sgd_step(module, torch_optimizer, x_torch[index], y_torch[index])

    return {"numpy": numpy_epoch, "torch": torch_epoch, **functions}


#: The JAX baseline runs for these training rows (the targets against JAX are TinyCNN, float32).
JAX_ROWS = {"model": "TinyCNN", "dtype": "float32"}


def _jax_wanted(settings: BenchSettings, model_name: str, dtype_name: str) -> bool:
    return (
        settings.jax and {"model": model_name, "dtype": dtype_name} == JAX_ROWS and _jax_available()
    )


def _jax_available() -> bool:
    from tinycnn import jax_baseline

    return jax_baseline.available()


def bench_training(settings: BenchSettings, progress: Callable[[str], None]) -> list[dict]:
    """Samples per second of SGD training, one row per model, batch size and dtype.

    Each row has the median epoch time of every framework and the ratios of the medians; the
    range of the per-run ratios (run ``r`` of NumPy against run ``r`` of the other) shows how
    much the machine's load moved them.
    """
    rows = []
    epoch_settings = replace(settings, warmup_calls=1)
    for dtype_name in settings.train_dtypes:
        for model_name in ("TinyCNN", "MLP (18 hidden)"):
            for batch in settings.train_batches:
                progress(f"train {model_name} batch {batch} {dtype_name}")
                with_jax = _jax_wanted(settings, model_name, dtype_name)
                functions = _epoch_functions(
                    model_name, batch, dtype_name, settings.n_train, with_jax
                )
                times = time_interleaved(
                    functions, epoch_settings, repeat=settings.train_repeat, fixed_calls=1
                )
                seconds = {name: statistics.median(values) for name, values in times.items()}
                row = {
                    "section": "training",
                    "name": f"{model_name}, batch {batch}",
                    "model": model_name,
                    "batch": batch,
                    "dtype": dtype_name,
                    "samples_per_epoch": settings.n_train,
                }
                for name in ("numpy", "torch", "jax", "jax_tuned"):
                    if name in seconds:
                        row[f"{name}_seconds"] = seconds[name]
                        row[f"{name}_samples_per_second"] = settings.n_train / seconds[name]
                row["ratio"] = ratio(seconds["numpy"], seconds["torch"])
                row["ratio_range"] = _ratio_range(times["numpy"], times["torch"])
                if "jax" in seconds:
                    for name in ("jax", "jax_tuned"):
                        row[f"ratio_vs_{name}"] = ratio(seconds["numpy"], seconds[name])
                        row[f"ratio_vs_{name}_range"] = _ratio_range(times["numpy"], times[name])
                elif (model_name, dtype_name) == (JAX_ROWS["model"], JAX_ROWS["dtype"]):
                    row["ratio_vs_jax"] = None  # wanted, but JAX is not installed (or --no-jax)
                rows.append(row)
    return rows


def _ratio_range(numpy_times: list[float], other_times: list[float]) -> list[float]:
    """Smallest and largest ratio of run ``r`` of the other framework to run ``r`` of NumPy."""
    ratios = [ratio(mine, theirs) for mine, theirs in zip(numpy_times, other_times, strict=True)]
    return [min(ratios), max(ratios)]


# ------------------------------------------------------------------------------------------
# Where a step's time goes: the parts of the fast NumPy step
# ------------------------------------------------------------------------------------------


def bench_step(settings: BenchSettings, progress: Callable[[str], None]) -> list[dict]:
    """Seconds per call of each part of a TinyCNN training step, float32, per batch size.

    The parts are those of :meth:`tinycnn.reference.fast.TrainingSteps.phases`, each timed on
    its own (repeated on the state the step left), then the whole step; ``share`` is a part's
    time over the sum of the parts.
    """
    import numpy as np

    from tinycnn import reference
    from tinycnn.reference.fast import TrainingSteps

    rows = []
    data = reference.make_dataset(n_train=settings.n_train, n_val=0, seed=0)
    x, y = data.x_train.astype(np.float32), data.y_train
    config = reference.TrainConfig()
    for batch in settings.train_batches:
        progress(f"step parts TinyCNN batch {batch}")
        model = reference.build_model("tinycnn", dtype=np.float32, seed=0)
        # A small learning rate: the timed updates must not drive the weights anywhere odd.
        steps = TrainingSteps(model, x, y, lr=1e-6, momentum=config.momentum)
        index = reference.epoch_batches(settings.n_train, batch, epoch=1, seed=0)[0]
        parts = dict(steps.phases(index))
        parts["whole step"] = functools.partial(steps, index)
        times = time_interleaved(parts, settings)
        seconds = {name: statistics.median(values) for name, values in times.items()}
        total = sum(value for name, value in seconds.items() if name != "whole step")
        for name, value in seconds.items():
            rows.append(
                {
                    "section": "step",
                    "name": f"TinyCNN, batch {batch}: {name}",
                    "model": "TinyCNN",
                    "part": name,
                    "batch": batch,
                    "dtype": "float32",
                    "numpy_seconds": value,
                    "share": None if name == "whole step" else value / total,
                }
            )
        steps.close()
    return rows


# ------------------------------------------------------------------------------------------
# Commands: wall time of whole runs of the project's commands
# ------------------------------------------------------------------------------------------

FRESH_FOLDER = "a fresh temporary folder"  # the ``cwd`` of runs that write files


def source_checkout() -> Path | None:
    """The source checkout the installed ``tinycnn`` package comes from, or None.

    With an editable install (or a run from the checkout) the package sits in the project's
    root, next to ``pyproject.toml`` and ``tests/``; an installed wheel has neither beside it.
    """
    import tinycnn

    root = Path(tinycnn.__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file() and (root / "tests").is_dir():
        return root
    return None


def correct_submission() -> Path:
    """A correct submission for ``tinycnn check``: the loop-based fixture of the op contract.

    It ships inside the installed ``parity_tests`` package (package data), so it is there with
    or without a source checkout.
    """
    from tinycnn import parity_tests

    return Path(parity_tests.__file__).resolve().parent / "fixtures" / "loop_ops.py"


def command_runs() -> dict[str, tuple[str, tuple[str, ...], Path | str | None]]:
    """The timed command runs: ``{key: (display name, argv, cwd)}``.

    An ``argv`` starting with ``"tinycnn"`` is run as the installed ``tinycnn`` command (see
    :func:`time_command`); any other is a full command line. ``cwd`` is a folder,
    :data:`FRESH_FOLDER`, or None when the run is not possible here (the test suite needs a
    source checkout). The keys are also the names of the matching :data:`TARGETS`.
    """
    into_folder = ("--out", "report", "--no-progress")
    in_process = ("report", "--jobs", "1", *into_folder)  # joblib runs every job in process
    return {
        "report-full": ("tinycnn report", ("tinycnn", "report", *into_folder), FRESH_FOLDER),
        "report-quick": (
            "tinycnn report --quick",
            ("tinycnn", "report", "--quick", *into_folder),
            FRESH_FOLDER,
        ),
        # The pair of the issue-14 target: the same report with and without the fast path, in
        # one process each (a patch of train's default reaches no worker process).
        "report-fast-path": (
            "tinycnn report --jobs 1",
            (sys.executable, "-c", _REPORT_WITH_FAST_PATH.format(fast=True), *in_process),
            FRESH_FOLDER,
        ),
        "report-public-ops": (
            "tinycnn report --jobs 1, train(fast=False)",
            (sys.executable, "-c", _REPORT_WITH_FAST_PATH.format(fast=False), *in_process),
            FRESH_FOLDER,
        ),
        "check-correct": (
            "tinycnn check (correct submission)",
            ("tinycnn", "check", str(correct_submission())),
            FRESH_FOLDER,
        ),
        "test-suite": (
            "pytest (default test suite)",
            (sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"),
            source_checkout(),
        ),
    }


#: ``python -c`` code running ``tinycnn`` with train's ``fast`` default set to ``{fast}``.
_REPORT_WITH_FAST_PATH = (
    "import importlib, sys; "
    "importlib.import_module('tinycnn.reference.train').train.__kwdefaults__['fast'] = {fast}; "
    "from tinycnn.cli import main; sys.exit(main(sys.argv[1:]))"
)


def report_fast_path_ratio(rows: list[dict]) -> None:
    """Set ``ratio_vs_public_ops`` on the "report-fast-path" row: the CPU time of the
    "report-public-ops" run over its own (and ``wall_ratio_vs_public_ops``, wall times), when
    both runs succeeded."""
    by_key = {row.get("key"): row for row in rows if row["section"] == "commands"}
    fast, public = by_key.get("report-fast-path"), by_key.get("report-public-ops")
    if fast is None or public is None:
        return
    if fast["status"] == public["status"] == "ok" and fast.get("cpu_seconds"):
        fast["ratio_vs_public_ops"] = public["cpu_seconds"] / fast["cpu_seconds"]
        fast["wall_ratio_vs_public_ops"] = public["seconds"] / fast["seconds"]
    else:
        fast["ratio_vs_public_ops"] = None


def _cpu_stall_microseconds() -> int | None:
    """Linux pressure stall information: total microseconds some task waited for a CPU."""
    try:
        with open("/proc/pressure/cpu") as file:
            first = file.readline().split()
    except OSError:
        return None
    fields = dict(item.split("=", 1) for item in first[1:] if "=" in item)
    return int(fields["total"]) if "total" in fields else None


def _cpu_stall_share(stall_before: int | None, seconds: float) -> float | None:
    """The share of the last ``seconds`` of wall time some task waited for a CPU, from
    `_cpu_stall_microseconds` read at their start; None without pressure information."""
    stall_after = _cpu_stall_microseconds()
    if stall_before is None or stall_after is None or seconds <= 0:
        return None
    return (stall_after - stall_before) / 1e6 / seconds


def _last_line(*texts: str) -> str:
    """The last non-empty line of the first text that has one (stderr first, then stdout)."""
    for text in texts:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return "no message"


def time_command(
    key: str,
    name: str,
    argv: Sequence[str],
    cwd: Path | str | None,
    *,
    timeout_seconds: float,
    tinycnn_prefix: Sequence[str] | None = None,
) -> dict:
    """Wall time of one command run in a subprocess (default threads), as a table row.

    ``argv[0] == "tinycnn"`` is replaced by ``tinycnn_prefix`` (default: this Python,
    ``-m tinycnn``); if that ``tinycnn`` has no such subcommand (``tinycnn SUB --help`` fails),
    or ``cwd`` is None, the row says "not available" instead of failing the benchmark. A run
    that exits non-zero gives "failed (exit N): " and the last line of its stderr (of its
    stdout when stderr is empty: pytest reports there); one that outlives
    ``timeout_seconds`` is killed and gives "timed out after T s". ``seconds`` is the wall
    time of a successful run, None otherwise; ``elapsed_seconds`` the wall time of any run.
    """
    # argv[0] by its name only ("python", "tinycnn"): the JSON is committed, paths differ.
    row = {
        "section": "commands",
        "key": key,
        "name": name,
        "command": " ".join([Path(argv[0]).name, *argv[1:]]),
        "cwd": None if cwd is None else str(cwd),
        "seconds": None,
    }
    command = list(argv)
    if command[0] == "tinycnn":
        prefix = list(tinycnn_prefix or [sys.executable, "-m", "tinycnn"])
        command[:1] = prefix
        probe = subprocess.run(
            [*prefix, argv[1], "--help"], capture_output=True, text=True, check=False
        )
        if probe.returncode != 0:
            cwd = None
    if cwd is None:
        row["status"] = "not available"
        return row
    row["cores"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    load_before, stall_before = _load_average(), _cpu_stall_microseconds()
    with tempfile.TemporaryDirectory(prefix="tinycnn-bench-") as folder:
        usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        returncode, stdout, stderr = _run(
            command, folder if cwd == FRESH_FOLDER else cwd, timeout_seconds
        )
        row["elapsed_seconds"] = time.perf_counter() - start
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    # user + system time of the run and every process it waited for (its workers)
    row["cpu_seconds"] = (usage.ru_utime - usage_before.ru_utime) + (
        usage.ru_stime - usage_before.ru_stime
    )
    load_after = _load_average()
    row["load_average"] = [load[0] for load in (load_before, load_after) if load] or None
    row["cpu_stall_share"] = _cpu_stall_share(stall_before, row["elapsed_seconds"])
    if returncode is None:
        row["status"] = f"timed out after {timeout_seconds:g} s"
    elif returncode != 0:
        row["status"] = f"failed (exit {returncode}): {_last_line(stderr, stdout)}"
    else:
        row["status"] = "ok"
        row["seconds"] = row["elapsed_seconds"]
    return row


def _run(
    command: Sequence[str], cwd: Path | str, timeout_seconds: float
) -> tuple[int | None, str, str]:
    """``(exit status, stdout, stderr)`` of ``command``; status None if it timed out.

    The command gets its own process group, and a run that times out (or a benchmark stopped
    with Ctrl-C) kills the whole group: pytest and the grader start worker processes of their
    own, which would otherwise keep running and slow every later row.
    """
    with subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout_seconds)
        except BaseException as error:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (AttributeError, ProcessLookupError):  # no process groups, or gone already
                process.kill()
            process.wait()
            if isinstance(error, subprocess.TimeoutExpired):
                return None, "", ""
            raise
    return process.returncode, stdout, stderr


# ------------------------------------------------------------------------------------------
# Machine facts and thread settings
# ------------------------------------------------------------------------------------------


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (other work on the machine slows every row)."""
    try:
        return [round(load, 2) for load in os.getloadavg()]
    except OSError:  # not available on this platform
        return None


def machine_facts() -> dict:
    """Cores, CPU, BLAS libraries in use and versions, for the JSON and the table header."""
    import numpy as np
    import threadpoolctl
    import torch

    try:
        usable_cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable_cores = os.cpu_count()
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except (TypeError, KeyError):  # older NumPy: no mode="dicts"
        blas = None
    libraries = [
        {
            key: info.get(key)
            for key in ("user_api", "internal_api", "version", "num_threads", "filepath")
        }
        for info in threadpoolctl.threadpool_info()
    ]
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable_cores,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "threadpoolctl": threadpoolctl.__version__,
        "numpy_blas_build": blas,
        "thread_pools_loaded": libraries,
        "torch_default_threads": torch.get_num_threads(),
        "torch_mkldnn": bool(torch.backends.mkldnn.is_available()),
        "load_average_at_start": _load_average(),
    }


@contextmanager
def single_thread() -> Iterator[dict]:
    """NumPy's BLAS (and OpenMP) and PyTorch on one thread each, inside the ``with`` block.

    ``threadpoolctl.threadpool_limits(limits=1)`` caps every BLAS and OpenMP pool loaded in
    the process; ``torch.set_num_threads(1)`` caps PyTorch's intra-op pool. Both are restored
    on exit. Yields how the threads were set, and the thread counts in force.
    """
    import threadpoolctl
    import torch

    torch_threads = torch.get_num_threads()
    with threadpoolctl.threadpool_limits(limits=1):
        torch.set_num_threads(1)
        try:
            yield {
                "how": "threadpoolctl.threadpool_limits(limits=1) for NumPy's BLAS and OpenMP; "
                "torch.set_num_threads(1) for PyTorch",
                "numpy_blas_threads": [
                    info["num_threads"]
                    for info in threadpoolctl.threadpool_info()
                    if info["user_api"] == "blas"
                ],
                "torch_threads": torch.get_num_threads(),
            }
        finally:
            torch.set_num_threads(torch_threads)


# ------------------------------------------------------------------------------------------
# The whole run, the table, the command
# ------------------------------------------------------------------------------------------


@dataclass
class BenchResult:
    """One run: its settings, the machine, the thread settings, the rows, the verdicts."""

    settings: BenchSettings
    machine: dict
    threads: dict
    rows: list[dict] = field(default_factory=list)
    targets: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {
            "schema": SCHEMA,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "ratio": "NumPy speed / PyTorch speed = PyTorch time / NumPy time (>1: NumPy faster)",
            "timing": "median over `repeat` runs of the time per call; warm-up calls first; "
            "NumPy and PyTorch runs alternate; garbage collector off while timing",
            "settings": asdict(self.settings),
            "threads": self.threads,
            "machine": self.machine,
            "rows": self.rows,
            "targets": self.targets,
            "all_targets_pass": all(t["status"] == "pass" for t in self.targets),
            "seconds": self.seconds,
        }


def run_bench(
    settings: BenchSettings,
    progress: Callable[[str], None] | None = None,
    tinycnn_prefix: Sequence[str] | None = None,
) -> BenchResult:
    """Measure everything ``settings`` asks for; return the rows and the target verdicts.

    ``tinycnn_prefix`` is how the command rows start ``tinycnn`` (see :func:`time_command`).
    """
    progress = progress or (lambda message: None)
    start = time.perf_counter()
    machine = machine_facts()
    with single_thread() as threads:
        rows = bench_ops(settings, progress) + bench_training(settings, progress)
        if settings.step_parts:
            rows += bench_step(settings, progress)
        threads["jax"] = _jax_threads() if any("jax_seconds" in row for row in rows) else None
    runs = command_runs() if settings.commands else {}
    for key in settings.commands:  # default threads: the command targets are for the machine
        name, argv, cwd = runs[key]
        progress(name)
        rows.append(
            time_command(
                key,
                name,
                argv,
                cwd,
                timeout_seconds=settings.command_timeout_seconds,
                tinycnn_prefix=tinycnn_prefix,
            )
        )
    report_fast_path_ratio(rows)
    machine["load_average_at_end"] = _load_average()
    targets = evaluate_targets(rows)
    return BenchResult(settings, machine, threads, rows, targets, time.perf_counter() - start)


def _jax_threads() -> str:
    from tinycnn import jax_baseline

    return jax_baseline.import_jax()[1]


def _time_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.1f} s"


TABLE_HEADER = (
    "section",
    "benchmark",
    "dtype",
    "NumPy",
    "PyTorch",
    "NumPy/PyTorch",
    "JAX",
    "NumPy/JAX",
    "JAX tuned",
    "NumPy/JAX tuned",
    "target",
)


def _ratio_text(row: dict, key: str) -> str:
    """``"5.03x"``, and the range of the per-run ratios if known: ``"5.03x (4.80-5.20)"``."""
    value = row.get(key)
    if value is None:
        return "-"
    spread = row.get(f"{key}_range")
    if spread is None:
        return f"{value:.2f}x"
    return f"{value:.2f}x ({spread[0]:.2f}-{spread[1]:.2f})"


def _marks(row: dict) -> str:
    """The verdicts of the targets that apply to ``row``: ``"pass (>= 4x); FAIL (>= 1x JAX)"``."""
    thresholds = {target.name: target.threshold_text() for target in TARGETS}
    words = {True: "pass", False: "FAIL", None: "n/a"}
    return "; ".join(
        f"{words[passed]} ({thresholds[name]})" for name, passed in row.get("targets", {}).items()
    )


def _row_cells(row: dict) -> list[str]:
    """One row of the table, as the cells of :data:`TABLE_HEADER`.

    Command rows have the wall time in the NumPy column (the commands run the NumPy
    reference), or the status when there is no time; step rows the time of one part of the
    NumPy step, and its share of the step in the name.
    """
    mark = _marks(row)
    if row["section"] == "ops":
        name = f"{row['name']}  {row['shapes']}"
        if "slower_than_vectorized" in row:
            name += f"  [{row['slower_than_vectorized']:,.0f}x slower than vectorized]"
        if measured_when_busy(row):
            name += f"  [waited for a CPU {row['cpu_stall_share']:.0%} of the time]"
        return [
            row["section"],
            name,
            row["dtype"],
            _time_text(row["numpy_seconds"]),
            _time_text(row["torch_seconds"]),
            f"{row['ratio']:.2f}x",
            "-",
            "-",
            "-",
            "-",
            mark,
        ]
    if row["section"] == "training":
        jax_cells = []
        for name in ("jax", "jax_tuned"):
            speed = row.get(f"{name}_samples_per_second")
            if speed is not None:
                jax_cells += [f"{speed:,.0f}/s", _ratio_text(row, f"ratio_vs_{name}")]
            else:
                wanted = "ratio_vs_jax" in row and row["ratio_vs_jax"] is None
                jax_cells += ["not installed" if wanted else "-", "-"]
        return [
            row["section"],
            row["name"],
            row["dtype"],
            f"{row['numpy_samples_per_second']:,.0f}/s",
            f"{row['torch_samples_per_second']:,.0f}/s",
            _ratio_text(row, "ratio"),
            *jax_cells,
            mark,
        ]
    if row["section"] == "step":
        share = "" if row["share"] is None else f" ({row['share']:.0%})"
        name = f"{row['name']}{share}"
        cells = [row["section"], name, row["dtype"], _time_text(row["numpy_seconds"])]
        return [*cells, "-", "-", "-", "-", "-", "-", mark]
    time_or_status = _time_text(row["seconds"]) if row["status"] == "ok" else row["status"]
    if row["status"] == "ok" and row.get("cpu_seconds") is not None:
        time_or_status += f" (CPU {_time_text(row['cpu_seconds'])})"
    name = row["name"]
    if row.get("ratio_vs_public_ops") is not None:
        name += (
            f"  [train(fast=False): {row['ratio_vs_public_ops']:.2f}x the CPU time, "
            f"{row['wall_ratio_vs_public_ops']:.2f}x the wall time]"
        )
    if row.get("cpu_stall_share") is not None:
        name += f"  [waited for a CPU {row['cpu_stall_share']:.0%} of the time]"
    return [row["section"], name, "-", time_or_status, "-", "-", "-", "-", "-", "-", mark]


def _blas_text(machine: dict) -> str:
    blas = ", ".join(
        f"{lib['internal_api']} {lib['version']}"
        for lib in machine["thread_pools_loaded"]
        if lib["user_api"] == "blas"
    )
    return blas or "unknown"


def _notes(result: BenchResult) -> list[str]:
    """How to read the table, how threads were set, the machine: one line each."""
    machine, threads = result.machine, result.threads
    return [
        "NumPy/PyTorch = NumPy speed / PyTorch speed (PyTorch time / NumPy time); above 1 NumPy "
        "is faster.",
        "NumPy/JAX likewise against JAX (jit, the epoch in one lax.scan; max-pool by "
        "lax.reduce_window); JAX tuned: max-pool as reshape + max, minibatches gathered once per "
        "epoch (tinycnn.jax_baseline). A ratio's brackets hold the range of the per-run ratios.",
        "Times (timeit.Timer): median per call over timed runs after warm-up, the frameworks "
        "taking turns. PyTorch ops: forward under no_grad, backward = autograd.grad on a kept "
        "graph. Training: the steps of `train` (NumPy: reference.fast), no evaluation.",
        f"Threads: {threads['how']} (during the run: BLAS {threads['numpy_blas_threads']}, "
        f"torch {threads['torch_threads']}; JAX: {threads.get('jax') or 'not run'}). The command "
        f"rows run as subprocesses with default threads, one run each: wall time (CPU time: "
        f"user + system of the run and its workers; share of the run some task waited for a CPU, "
        f"from /proc/pressure/cpu: over {BUSY_STALL_SHARE:.0%} a time target is not verified "
        f"unless the CPU time over the cores already misses it). An op row measured that busy "
        "does not fail the op target either: it is not verified.",
        f"Machine: {machine['cpu']}, {machine['cores']} cores ({machine['usable_cores']} usable); "
        f"Python {machine['python']}, NumPy {machine['numpy']} (BLAS: {_blas_text(machine)}), "
        f"PyTorch {machine['torch']}.",
    ]


def _verdict_text(verdict: dict) -> str:
    worst = verdict["worst"]
    if worst is None:
        worst_text = ""
    elif verdict["threshold"].startswith(">="):
        busy = " on a busy machine" if verdict["status"] == "not verified" else ""
        worst_text = f", worst {worst:.2f}x{busy}"
    elif verdict["status"] == "not verified":
        worst_text = f", {worst:.1f} s on a busy machine"
    else:
        worst_text = f", {worst:.1f} s"
    rows = f"{verdict['rows']} row" + ("" if verdict["rows"] == 1 else "s")
    return f"{verdict['description']} ({rows}{worst_text})"


def format_table(result: BenchResult) -> str:
    """The rows as an aligned text table, then the machine, threads and target verdicts."""
    cells = [list(TABLE_HEADER)] + [_row_cells(row) for row in result.rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(TABLE_HEADER))]
    lines = []
    for k, line in enumerate(cells):
        lines.append(
            "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        )
        if k == 0:
            lines.append("  ".join("-" * width for width in widths))
    lines += ["", *_notes(result), "", "Targets:"]
    for verdict in result.targets:
        lines.append(f"  {verdict['status'].upper():13s} {_verdict_text(verdict)}")
    lines.append(f"bench took {result.seconds:.0f} s")
    return "\n".join(lines)


#: Columns of :data:`TABLE_HEADER` right-aligned in the markdown table (times and ratios).
NUMBER_COLUMNS = TABLE_HEADER[3:10]


def markdown_rows(result: BenchResult) -> str:
    """The rows as a markdown table, by the project's one renderer (times and ratios right-aligned).

    Each cell is the text of :func:`format_table`'s cell; :func:`tinycnn.markdown.markdown_table`
    escapes a ``|`` inside a cell.
    """
    import pandas as pd

    from tinycnn.markdown import markdown_table

    cells = pd.DataFrame([_row_cells(row) for row in result.rows], columns=list(TABLE_HEADER))
    return markdown_table(
        cells, columns=TABLE_HEADER, align={column: "right" for column in NUMBER_COLUMNS}
    )


def format_markdown(result: BenchResult, created: str | None = None) -> str:
    """The same results as a markdown document: title, machine, threads, table, verdicts.

    ``created`` is the date line (default: now), a parameter so tests get a fixed document.
    """
    machine, settings = result.machine, result.settings
    created = created or time.strftime("%Y-%m-%d %H:%M %z")
    command = "tinycnn bench --quick" if settings.quick else "tinycnn bench"
    load_start, load_end = machine.get("load_average_at_start"), machine.get("load_average_at_end")
    lines = [
        "# TinyCNN benchmark: NumPy reference against PyTorch and JAX",
        "",
        f"Measured by `{command}` on {created}; the run took {result.seconds:.0f} s. "
        f"Targets: `TARGETS` in `tinycnn/bench.py`.",
        "",
        "## Machine",
        "",
        f"- CPU: {machine['cpu']}, {machine['cores']} cores ({machine['usable_cores']} usable)",
        f"- Platform: {machine.get('platform', 'unknown')}",
        f"- Python {machine['python']}, NumPy {machine['numpy']} (BLAS: {_blas_text(machine)}), "
        f"PyTorch {machine['torch']}",
    ]
    if load_start is not None:
        end_text = "" if load_end is None else f", at the end {', '.join(map(str, load_end))}"
        lines.append(
            f"- Load average (1, 5, 15 min) at the start {', '.join(map(str, load_start))}"
            f"{end_text}: other work on the machine slows every row"
        )
    lines += ["", "## How it was measured", ""]
    lines += [f"- {note}" for note in _notes(result)[:4]]
    lines += [
        "",
        "## Results",
        "",
        markdown_rows(result),
        "",
        "## Targets",
        "",
    ]
    for verdict in result.targets:
        lines.append(f"- **{verdict['status'].upper()}**: {_verdict_text(verdict)}")
    statuses = [verdict["status"] for verdict in result.targets]
    counts = ", ".join(
        f"{statuses.count(status)} {status}"
        for status in ("pass", "fail", "not verified", "not available", "not measured")
        if status in statuses
    )
    all_pass = all(status == "pass" for status in statuses)
    lines += ["", f"All targets pass: {'yes' if all_pass else 'no'} ({counts})."]
    return "\n".join(lines) + "\n"


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``tinycnn bench`` to the ``tinycnn`` subcommands."""
    parser = subparsers.add_parser(
        "bench",
        help="time the NumPy reference against PyTorch (ops, training, commands)",
        description="Time every op, forward and backward, and training throughput of TinyCNN "
        "and the MLP, NumPy against PyTorch eager on one thread each; time "
        "`tinycnn report` (full and --quick), `tinycnn check` of a correct "
        "submission and the default test suite; print the NumPy/PyTorch ratios "
        "with the performance targets.",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results to PATH (JSON)")
    parser.add_argument(
        "--markdown",
        metavar="PATH",
        help="also write the table, machine and target verdicts to PATH (markdown)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer repeats, float32 training only; of the commands only "
        "`report --quick` (15 s on an idle 2-core machine, over a minute on a busy one) and "
        "`check`",
    )
    parser.add_argument(
        "--no-commands",
        "--no-report",
        dest="no_commands",
        action="store_true",
        help="do not time any command (report, check, test suite)",
    )
    parser.add_argument(
        "--no-jax",
        action="store_true",
        help="leave out the JAX baseline even when JAX is installed (it compiles for a while)",
    )
    parser.set_defaults(func=run_bench_command)
    return parser


def run_bench_command(args) -> int:
    """``tinycnn bench``: measure, print the table, write the JSON and markdown.

    Returns 0 when no target failed, 1 when one did (named on stderr): a target that could
    not be measured here ("not measured", "not available") is not a failure.
    """
    from tinycnn.cli import CommandError, check_output_file, write_output

    try:
        import threadpoolctl  # noqa: F401  (sets NumPy's BLAS to one thread)
    except ImportError:
        raise CommandError("tinycnn bench needs threadpoolctl: pip install threadpoolctl") from None
    outputs = {"--json": args.json, "--markdown": args.markdown}
    for option, path in outputs.items():
        if path is not None:
            check_output_file(option, path)
    settings = settings_for(args.quick)
    if args.no_commands:
        settings = replace(settings, commands=())
    if args.no_jax:
        settings = replace(settings, jax=False)

    def progress(message: str) -> None:
        print(f"  timing {message} ...", file=sys.stderr, flush=True)

    result = run_bench(settings, progress)
    print(format_table(result))
    texts = {
        "--json": lambda: json.dumps(result.to_json(), indent=2) + "\n",
        "--markdown": lambda: format_markdown(result),
    }
    for option, path in outputs.items():
        if path is not None:
            write_output(option, path, texts[option]())
            print(f"wrote {path}")
    failed = [verdict["name"] for verdict in result.targets if verdict["status"] == "fail"]
    if failed:
        print(
            f"tinycnn bench: {len(failed)} target(s) failed: {', '.join(failed)}",
            file=sys.stderr,
        )
        return 1
    return 0
