"""Grade a submission: run it in child processes, compare everything here, in the parent.

The flow of :func:`grade_submission`:

1. read the file as Python does, parse it (a syntax error stops here) and scan its imports
   (:mod:`.policy`);
2. build every input here: the catalogue's cases (:mod:`tinycnn.parity_tests.cases`) plus hidden
   cases drawn from the run's seed, and hand them to one sandbox (:mod:`.sandbox`), where a
   probe imports the submission, then one process per present function runs it on its cases,
   several functions at a time, each with its own time limit;
3. read back what the sandbox left, through the strict channel (:mod:`.channel`);
4. here, every returned array is compared with :mod:`tinycnn.reference.ops` on the same inputs,
   with the one comparison helper and tolerance table (:mod:`tinycnn.parity_tests.compare`); inputs
   are checked unmodified; failures get a case description and, where a pattern is known, a hint;
5. if all nine functions pass, a second sandbox run trains TinyCNN with the submission's ops
   (initial parameters, data and batch order from the checker) and the parent compares the
   returned parameters with a reference run from the same seed: a run that fails, diverges or
   differs does not pass.

No verdict depends on anything the child *says* about itself: it only sends arrays back, and the
judge never runs student code.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import secrets
import tempfile
import threading
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tinycnn.grading.adapters import REQUIRES, case_outside_api, missing_message, suggest_api
from tinycnn.grading.channel import (
    ChildRun,
    ForeignValue,
    Malformed,
    ResultDirectory,
    clean_name,
    clean_text,
    read_function_run,
    read_training,
)
from tinycnn.grading.hints import Observation, hints_for_finding
from tinycnn.grading.notebook import capped_notes
from tinycnn.grading.policy import (
    ImportUse,
    SourceTooLarge,
    UnsafeEncoding,
    allowed_modules,
    policy_messages,
    refuse_unsafe_encoding,
    syntax_reason,
)
from tinycnn.grading.sandbox import (
    WALL_FACTOR,
    Limits,
    Sandbox,
    SandboxUnavailable,
    Task,
    pack_inputs,
)
from tinycnn.grading.submission import (
    SourceFile,
    Submission,
    defined_functions,
    defined_names,
    load_submission,
    resolve_relative,
)
from tinycnn.parity_tests.cases import (
    GRADED_CASES,
    OpCase,
    hidden_cases,
    make_inputs,
)
from tinycnn.parity_tests.compare import compare, max_relative_error
from tinycnn.parity_tests.harness import FUNCTIONS, call_op, stage_name
from tinycnn.parity_tests.tolerances import tolerance
from tinycnn.reference import ops as reference_ops
from tinycnn.reference.ops import CONTRACT_FUNCTIONS

_LOG = logging.getLogger(__name__)

__all__ = [
    "KINDS",
    "STATUSES",
    "TRAINING",
    "CaseRun",
    "Finding",
    "FunctionResult",
    "SubmissionReport",
    "TrainingResult",
    "TrainingSetup",
    "api_set_aside",
    "cases_of",
    "grade_case",
    "grade_submission",
    "homoglyph_note",
]

#: How the ids of hidden cases begin (`HiddenCase.id`).
HIDDEN_PREFIX = "hidden-"
#: Longest note on how an upload was read (`_clean_note`): a path of `MAX_PATH` bytes and words.
MAX_NOTE = 2000

#: Verdicts of one contract function. "not graded": the function is not part of the
#: submission's course API (``--api deeplearning-ai`` has no ReLU, dense layer or loss), so it
#: neither counts towards the verdict nor is the student's omission (`_outside_api`).
STATUSES = ("pass", "fail", "error", "timeout", "missing", "not graded")
NOT_GRADED = "not graded"


@dataclass(frozen=True)
class TrainingSetup:
    """The short training run of a passing submission (small, so grading stays fast)."""

    model: dict = field(
        default_factory=lambda: {"n_filters": 3, "kernel_size": 3, "n_classes": 3, "seed": 0}
    )
    config: dict = field(
        default_factory=lambda: {
            "epochs": 5,
            "batch_size": 32,
            "lr": 0.1,
            "momentum": 0.9,
            "seed": 0,
        }
    )
    data: dict = field(
        default_factory=lambda: {"n_classes": 3, "n_train": 240, "n_val": 120, "seed": 0}
    )

    def as_job(self) -> dict:
        return {"model": dict(self.model), "config": dict(self.config), "data": dict(self.data)}

    def seeded(self, seed: int) -> TrainingSetup:
        """The same run with the model's initial parameters and the batch order drawn from
        ``seed`` (a run's seed), so no trajectory can be memorised."""
        return replace(
            self,
            model={**self.model, "seed": seed},
            config={**self.config, "seed": seed},
        )

    def describe(self) -> str:
        return (
            f"TinyCNN, {self.config['epochs']} epochs on {self.data['n_train']} images, "
            f"seed {self.model['seed']}"
        )


TRAINING = TrainingSetup()


@dataclass
class FunctionResult:
    """Verdict for one contract function.

    Attributes
    ----------
    name : str
    status : str
        One of `STATUSES`.
    max_rel_error : float or None
        Worst relative error over every compared output (``inf`` for NaN/inf where a finite
        value was expected); None when nothing could be compared.
    detail : str
        Empty for a pass; otherwise every finding, one per line (see `Finding.text`: which
        output fails how, on how many cases of which tags, the first such case in words and a
        verified hint), after a line on a timeout or crash when there was one.
    hint : str or None
        The findings' hints, joined (each is also in its finding's line).
    findings : list of Finding
        Every output's failures, float64 value failures first.
    cases_total, cases_failed : int
    seconds : float
        Time spent inside the function, over the cases that completed.
    """

    name: str
    status: str
    max_rel_error: float | None = None
    detail: str = ""
    hint: str | None = None
    cases_total: int = 0
    cases_failed: int = 0
    seconds: float = 0.0
    findings: list = field(default_factory=list)

    @property
    def full_detail(self) -> str:
        """What the JSON and Gradescope outputs carry: the detail, hints included."""
        if self.findings or not self.hint:
            return self.detail
        return f"{self.detail} Hint: {self.hint}"


@dataclass
class TrainingResult:
    """The training run with the submission's ops, next to the reference run.

    Attributes
    ----------
    status : str
        "ok" (matches the reference run), "differs" (trained, but its trajectory is not the
        reference's), "error", "timeout" or "skipped".
    setup : str
        What was trained, in words.
    val_accuracy, reference_val_accuracy : float or None
        Validation accuracy of the final parameters, both computed here with the reference ops.
    max_param_rel_error : float or None
        Worst relative difference of a final parameter tensor from the reference run's.
    detail : str
    """

    status: str
    setup: str
    val_accuracy: float | None = None
    reference_val_accuracy: float | None = None
    max_param_rel_error: float | None = None
    detail: str = ""
    seconds: float = 0.0


@dataclass
class SubmissionReport:
    """Everything ``tinycnn check`` found out about one submission.

    ``submission`` is its name as given, through :func:`~tinycnn.grading.channel.clean_name`
    (printable, and different for every different name).
    """

    submission: str
    functions: dict[str, FunctionResult]
    policy: list[str]
    training: TrainingResult | None
    seconds: float = 0.0
    #: The layer API graded (``--api``) and, per contract function, the course function graded.
    api: str = "tinycnn"
    graded_as: dict[str, str] = field(default_factory=dict)
    #: What reading the submission left out on purpose (a notebook's test cells...), in words.
    set_aside: list[str] = field(default_factory=list)
    #: Which file was graded, when chosen among several (`Submission.chosen`); "" otherwise.
    chosen: str = ""
    #: The cases a course API sets aside, counted, with why (`api_set_aside`); "" for none.
    cases_set_aside: str = ""
    #: The run's seed (hidden cases, training) and the sandbox's isolation level
    #: (:data:`tinycnn.grading.sandbox.ISOLATION_LEVELS`).
    seed: int | None = None
    isolation: str = ""
    #: Whether the submission could reach the network: "none" or "shared"
    #: (:func:`tinycnn.grading.sandbox.network_access`).
    network: str = "unknown"
    #: What timed out because wall-clock time ran out while it had processor time to spare
    #: ("import", function names, "training"; `ChildRun.ran_out_of_wall_clock`): a busy
    #: machine can cause that, or the submission's own waiting.
    busy_timeouts: list[str] = field(default_factory=list)
    #: Folder mode: what had run out of wall-clock time when the submission was graded beside
    #: its classmates, if it was then graded again alone because the machine was busy (this
    #: report is then the lone run's; :func:`tinycnn.grading.folder.grade_folder`).
    regraded_alone: list[str] = field(default_factory=list)

    @property
    def graded_functions(self) -> list[str]:
        """The contract functions the layer API provides, in contract order: all nine for
        ``tinycnn`` and ``cs231n``, four for ``deeplearning-ai`` (no ReLU, dense layer or
        loss). Only these count towards the verdict."""
        return [name for name in self.functions if name in REQUIRES[self.api]]

    @property
    def passed(self) -> bool:
        """Every graded function passes, the import policy holds, and the training run with
        the submission's ops (when it ran) matches the reference run."""
        trained = self.training is None or self.training.status in ("ok", "skipped")
        graded = self.graded_functions
        return (
            not self.policy and trained and all(self.functions[n].status == "pass" for n in graded)
        )

    @property
    def n_passed(self) -> int:
        """How many of :attr:`graded_functions` pass."""
        return sum(self.functions[n].status == "pass" for n in self.graded_functions)


# --------------------------------------------------------------------------------------------
# Cases and expected values (computed once per process, shared by every submission graded)
# --------------------------------------------------------------------------------------------


def cases_of(
    function: str, hidden: tuple[OpCase, ...] = (), api: str = "tinycnn"
) -> list[tuple[OpCase, str]]:
    """The ``(case, direction)`` pairs a contract function is graded on: the catalogue's, in
    order, then those of ``hidden`` (a run's hidden cases); through a course ``api``, only the
    cases that API can express and its course promises
    (:func:`~tinycnn.grading.adapters.case_outside_api`).

    softmax_cross_entropy returns the loss and its gradient from one call: one direction only.
    """
    pairs = [key for key, name in FUNCTIONS.items() if name == function]
    directions = {op: direction for op, direction in pairs}
    if function == "softmax_cross_entropy":
        directions = {"softmax_cross_entropy": "forward"}
    return [
        (case, directions[case.op])
        for case in (*GRADED_CASES, *hidden)
        if case.op in directions and case_outside_api(api, function, case) is None
    ]


def api_set_aside(api: str, hidden: tuple[OpCase, ...] = ()) -> str:
    """The cases a course API sets aside, counted and explained on one line ("" for none).

    Counted per function and case over the functions the API provides, catalogue and
    ``hidden`` cases together (a conv2d case is one case of conv2d_forward and one of
    conv2d_backward).
    """
    reasons: dict[str, int] = {}
    total = 0
    for function in CONTRACT_FUNCTIONS:
        if function not in REQUIRES[api]:
            continue  # not part of the API: "not graded" at all
        every = cases_of(function, hidden)
        total += len(every)
        for case, _ in every:
            why = case_outside_api(api, function, case)
            if why is not None:
                reasons[why] = reasons.get(why, 0) + 1
    if not reasons:
        return ""
    listed = "; ".join(f"{count} with {why}" for why, count in reasons.items())
    return (
        f"{sum(reasons.values())} of {total} function cases set aside for the {api} API, which "
        f"does not promise them: {listed}"
    )


def output_names(case: OpCase, direction: str) -> tuple[str, ...]:
    """Names of what the function returns, in order (the harness's output names)."""
    if case.op == "softmax_cross_entropy":
        return ("loss", "dlogits")
    if direction == "forward":
        return ("y",)
    return {"conv2d": ("dx", "dw", "db"), "linear": ("dx", "dw", "db")}.get(case.op, ("dx",))


def _stage(case: OpCase, output: str, direction: str) -> str:
    if case.op == "softmax_cross_entropy":
        return stage_name("forward" if output == "loss" else "backward", output)
    return stage_name(direction, output)


@functools.lru_cache(maxsize=8192)
def _inputs(case: OpCase) -> dict[str, np.ndarray]:
    """The case's inputs, built once (the sandbox gets them, the judge checks them unmodified)."""
    return make_inputs(case)


_BLAS_LOCK = threading.Lock()
_BLAS_LIMIT: list = []  # [the threadpoolctl limiter, number of gradings inside it]


@contextlib.contextmanager
def _one_blas_thread():
    """BLAS on the calling thread only, while anything is graded in this process.

    The expected values are computed on a thread while the sandbox runs, and folder mode judges
    on threads; meanwhile the sandbox may fork the checker: to kill a uid's processes, with
    ``os.fork`` or with ``subprocess``'s ``user=`` (which makes CPython fork instead of vfork).
    OpenBLAS's fork handler stops its worker threads, and a matrix product running on another
    thread at that moment then waits for them forever (seen: a test hung 20 minutes; a product
    on a thread beside ``subprocess.run(["true"], user=65534)`` in a loop hangs within a second,
    the same loop without ``user=`` does not). With one BLAS thread there are no workers to wait
    for; the arrays here are small, so it costs nothing.
    Nested and concurrent gradings share one limit, lifted when the last one ends.
    """
    from threadpoolctl import threadpool_limits

    with _BLAS_LOCK:
        if not _BLAS_LIMIT:
            _BLAS_LIMIT[:] = [threadpool_limits(limits=1, user_api="blas"), 0]
        _BLAS_LIMIT[1] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_LIMIT[1] -= 1
            if _BLAS_LIMIT[1] == 0:
                _BLAS_LIMIT.pop(0).restore_original_limits()
                _BLAS_LIMIT.clear()


def _geometry(pair: tuple[OpCase, str]) -> tuple:
    """What the reference's cached convolution matrices depend on: cases of one geometry in a
    row reuse them (``reference.ops`` keeps a few), so the expected values come about three
    times faster than in catalogue order."""
    case, direction = pair
    return (
        case.op,
        direction,
        case.x_shape[1:],
        case.w_shape or (),
        case.stride,
        case.padding,
        case.size,
        case.dtype,
    )


#: Submissions graded on threads (folder mode) share the expected values: one thread computes
#: them, the others find them in `_expected`'s cache.
_EXPECTING = threading.Lock()


def _compute_expected(plan: dict[str, list[tuple[OpCase, str]]]) -> None:
    """Fill `_expected`'s cache for every case of ``plan``, grouped by geometry."""
    with _EXPECTING:
        for pair in sorted({p for cases in plan.values() for p in cases}, key=_geometry):
            _expected(*pair)


@functools.lru_cache(maxsize=4096)
def _expected(case: OpCase, direction: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(inputs, expected outputs)`` of one case, from reference.ops in this process."""
    inputs = _inputs(case)
    result = call_op(reference_ops, case, direction, inputs)  # reference ops never modify it
    names = output_names(case, direction)
    values = result if isinstance(result, tuple) else (result,)
    return inputs, dict(zip(names, values, strict=True))


# --------------------------------------------------------------------------------------------
# Judging one function from its child run: every case, every output, every kind of failure
# --------------------------------------------------------------------------------------------

#: Kinds of failure of one output on one case. A finding groups the cases of one output and
#: one kind; findings are listed with float64 value failures first (the arithmetic is wrong),
#: then in this order.
KINDS = (
    "values",
    "non-finite",
    "not implemented",
    "raised",
    "structure",
    "shape",
    "dtype",
    "modified input",
)

_KIND_WORDS = {
    "values": "{output}: wrong values",
    "non-finite": "{output}: NaN or inf",
    "not implemented": "returned None",
    "raised": "raised {output}",
    "structure": "returned the wrong structure",
    "shape": "{output}: wrong shape",
    "dtype": "{output}: wrong dtype",
    "modified input": "modified its input {output} in place",
}


@dataclass(frozen=True)
class Finding:
    """One output of one function failing in one way, over every case where it does.

    Attributes
    ----------
    output : str
        ``y``, ``dx``, ``dw``, ``db``, ``loss``, ``dlogits``; the exception type for "raised";
        the input's name for "modified input"; ``result`` for "structure" and "not implemented".
    kind : str
        One of `KINDS`.
    cases : tuple of str
        Ids of the failing cases, in catalogue order.
    total : int
        Cases the function ran.
    by_dtype : tuple of (str, int)
        Failing cases per dtype.
    by_tag : tuple of (str, int, int)
        For each case tag among the failing cases: ``(tag, failing with it, run with it)``.
    first_case : str
        The first failing case in words (``OpCase.describe``).
    message : str
        What went wrong on that case.
    hint : str or None
        A hint verified against the numbers (see :mod:`tinycnn.grading.hints`).
    hint_ids : tuple of str
        Keys of `tinycnn.grading.hints.HINTS`.
    """

    output: str
    kind: str
    cases: tuple[str, ...]
    total: int
    by_dtype: tuple[tuple[str, int], ...]
    by_tag: tuple[tuple[str, int, int], ...]
    first_case: str
    message: str
    hint: str | None = None
    hint_ids: tuple[str, ...] = ()

    @property
    def headline(self) -> str:
        """``dx: wrong values in 8 of 56 cases (float64 4, float32 4; ties 8 of 12)``."""
        what = _KIND_WORDS[self.kind].format(output=self.output)
        counts = ", ".join(f"{dtype} {n}" for dtype, n in self.by_dtype)
        tags = ", ".join(f"{tag} {n} of {of}" for tag, n, of in self.by_tag)
        groups = f"{counts}; {tags}" if tags else counts
        return f"{what} in {len(self.cases)} of {self.total} cases ({groups})"

    @property
    def hidden_cases(self) -> tuple[str, ...]:
        """Ids of the failing hidden cases (``hidden-...``), drawn from the run's seed:
        ``tinycnn check FILE --case ID --seed S`` shows one in full."""
        return tuple(case for case in self.cases if case.startswith(HIDDEN_PREFIX))

    @property
    def first(self) -> str:
        """The first failing case in words with its id and what went wrong, then the first
        failing hidden case's id when that is another case."""
        text = f"first: {self.first_case} (case {self.cases[0]}): {self.message.rstrip('.')}."
        hidden = self.hidden_cases
        if hidden and hidden[0] != self.cases[0]:
            text += f" First hidden case: {hidden[0]} ({len(hidden)} hidden cases fail)."
        return text

    @property
    def text(self) -> str:
        """The headline, the first case in words with what went wrong, and the hint."""
        text = f"{self.headline}; {self.first}"
        return f"{text} Hint: {self.hint}" if self.hint else text

    def as_json(self) -> dict:
        return {
            "output": self.output,
            "kind": self.kind,
            "count": len(self.cases),
            "total": self.total,
            "cases": list(self.cases),
            "by_dtype": dict(self.by_dtype),
            "by_tag": {tag: {"failed": n, "total": of} for tag, n, of in self.by_tag},
            "hidden_cases": list(self.hidden_cases),
            "first_case": self.first_case,
            "message": self.message,
            "hint": self.hint,
            "hint_ids": list(self.hint_ids),
        }


def _describe_value(value: object) -> str:
    if isinstance(value, ForeignValue):
        return value.type_name
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    return type(value).__name__


def _is_none(value: object) -> bool:
    return isinstance(value, ForeignValue) and value.type_name == "NoneType"


def _observe_output(
    case: OpCase, direction: str, name: str, actual: object, want: np.ndarray, inputs: dict
) -> tuple[list[Observation], float | None]:
    """Shape, then dtype *and* values (cast to the contract's dtype) of one output."""

    def seen(kind, message="", value=actual) -> Observation:
        return Observation(case, direction, name, kind, message, value, want, inputs)

    if isinstance(actual, ForeignValue) or not isinstance(
        actual, (np.ndarray, np.generic, float, int)
    ):
        return [
            seen("structure", f"{name} is {_describe_value(actual)}, expected a NumPy array")
        ], None
    array = np.asarray(actual)
    if array.shape != want.shape:
        return [seen("shape", f"{name}: shape {array.shape}, expected {want.shape}")], None
    found = []
    if array.dtype != want.dtype:
        found.append(seen("dtype", f"{name}: dtype {array.dtype}, expected {want.dtype}"))
    if array.dtype.kind not in "biuf":
        return found, None  # complex and the like: nothing to compare
    with np.errstate(over="ignore", invalid="ignore"):
        cast = array.astype(want.dtype)
    comparison = compare(
        cast, want, op=case.op, stage=_stage(case, name, direction), case_id=case.id
    )
    if comparison.passed:
        found.append(seen(None))
    else:
        kind = "non-finite" if math.isinf(comparison.max_rel_error) else "values"
        reason = comparison.message.removeprefix(f"{case.id}: {comparison.stage}: ")
        found.append(seen(kind, f"{name}: {reason}"))
    return found, comparison.max_rel_error


def _observe_call(
    case: OpCase, direction: str, call: dict
) -> tuple[list[Observation], list[float]]:
    """Every observation of one returned call, and the relative errors computed."""
    inputs, expected = _expected(case, direction)
    names = tuple(expected)
    result = call["result"]

    def whole(kind: str, message: str) -> Observation:
        return Observation(case, direction, "result", kind, message, result, None, inputs)

    # None, or only Nones where the arrays belong: the stub of a course template
    # (``dx, dw, db = None, None, None; return dx, dw, db``) is not implemented either.
    if _is_none(result) or (
        isinstance(result, tuple) and result and all(_is_none(item) for item in result)
    ):
        return [whole("not implemented", "returned None")], []
    if len(names) == 1:
        if isinstance(result, tuple):
            message = f"returned {_describe_value(result)}, expected one array ({names[0]})"
            return [whole("structure", message)], []
        values = (result,)
    else:
        if not isinstance(result, tuple) or len(result) != len(names):
            message = f"returned {_describe_value(result)}, expected a tuple ({', '.join(names)})"
            return [whole("structure", message)], []
        values = result
    observations: list[Observation] = []
    errors: list[float] = []
    for name, actual in zip(names, values, strict=True):
        seen, error = _observe_output(case, direction, name, actual, expected[name], inputs)
        observations += seen
        if error is not None:
            errors.append(error)
    for name, original in inputs.items():
        after = call["inputs_after"].get(name)
        if not (
            isinstance(after, np.ndarray)
            and after.shape == original.shape
            and np.array_equal(after, original, equal_nan=original.dtype.kind == "f")
        ):
            observations.append(
                Observation(
                    case,
                    direction,
                    name,
                    "modified input",
                    f"modified its input {name} in place",
                    inputs=inputs,
                )
            )
    return observations, errors


def _findings(
    function: str, observations: list[Observation], cases: list[tuple[OpCase, str]]
) -> list[Finding]:
    """Group the failing observations by (output, kind), with counts and verified hints."""
    order = {case.id: index for index, (case, _) in enumerate(cases)}
    groups: dict[tuple[str, str], list[Observation]] = {}
    for o in observations:
        if o.kind is not None:
            groups.setdefault((o.output, o.kind), []).append(o)
    tag_totals: dict[str, int] = {}
    for case, _ in cases:
        for tag in case.tags:
            tag_totals[tag] = tag_totals.get(tag, 0) + 1
    findings = []
    for (output, kind), failing in groups.items():
        failing.sort(key=lambda o: order[o.case.id])
        failed_cases = list(dict.fromkeys(o.case for o in failing))
        dtypes = [c.dtype for c in failed_cases]
        by_tag = tuple(
            (tag, sum(tag in c.tags for c in failed_cases), tag_totals[tag])
            for tag in tag_totals
            if any(tag in c.tags for c in failed_cases)
        )
        hint = hints_for_finding(function, output, kind, failing, observations)
        first = failing[0]
        findings.append(
            Finding(
                output,
                kind,
                tuple(c.id for c in failed_cases),
                len(cases),
                tuple((d, dtypes.count(d)) for d in ("float64", "float32") if d in dtypes),
                by_tag,
                first.case.describe(),
                first.message,
                hint[1] if hint else None,
                hint[0] if hint else (),
            )
        )

    def rank(finding: Finding) -> tuple[int, int]:
        lead = finding.kind in ("values", "non-finite") and any(
            dtype == "float64" for dtype, _ in finding.by_dtype
        )
        return (0 if lead else 1 + KINDS.index(finding.kind), order[finding.cases[0]])

    return sorted(findings, key=rank)


def _exception_text(error: dict, memory_mb: int) -> str:
    """An exception from the child in words: what, where, and what to do for the odd ones."""
    kind, message = error.get("type", "?"), error.get("message", "")
    where = f" at {error['where']}" if error.get("where") else ""
    if kind == "SystemExit":
        return (
            f"{message}{where} (sys.exit, exit() or raise SystemExit): a submission must "
            f"return its result, not end the process"
        )
    if kind in ("unreadable result", "malformed result"):
        return f"returned a malformed result the checker refused ({message})"
    what = f"{kind}: {message}" if message else kind
    if error.get("memory_error"):
        return f"ran out of memory{where} ({what}); the checker allows {memory_mb} MiB"
    return f"raised {what}{where}"


def _judge_function(
    name: str, run: ChildRun, cases: list[tuple[OpCase, str]], limits: Limits
) -> FunctionResult:
    result = FunctionResult(
        name,
        "pass",
        cases_total=len(cases),
        seconds=sum(float(call.get("seconds", 0.0)) for call in run.calls),
    )
    if run.import_result is not None and not run.import_result.get("ok", False):
        result.status = "error"
        result.detail = "importing the submission failed: " + _exception_text(
            run.import_result["error"], limits.memory_mb
        )
        return result

    observations: list[Observation] = []
    errors: list[float] = []
    for (case, direction), call in zip(cases, run.calls, strict=False):
        if call["outcome"] == "returned":
            seen, call_errors = _observe_call(case, direction, call)
            observations += seen
            errors += call_errors
            continue
        error = call["error"]
        missing = error.get("type") == "NotImplementedError"
        observations.append(
            Observation(
                case,
                direction,
                "result" if missing else str(error.get("type", "?")),
                "not implemented" if missing else "raised",
                _exception_text(error, limits.memory_mb),
            )
        )
    if errors:
        result.max_rel_error = max(errors)
    result.findings = _findings(name, observations, cases)
    result.cases_failed = len({o.case.id for o in observations if o.kind is not None})
    kinds = {f.kind for f in result.findings}

    incomplete = len(run.calls) < len(cases)
    headline = ""
    if run.timed_out is not None or incomplete:
        stuck = cases[len(run.calls)][0] if incomplete else None
        done = f"{len(run.calls)} of {len(cases)} cases done"
        if run.timed_out == "run":
            result.status = "timeout"
            where = f"still running {stuck.describe()}" if stuck else "after its last case"
            headline = (
                f"did not finish within {_limit_that_ran_out(run, limits)} for all its "
                f"cases, catalogue and hidden ({done}; {where})."
            )
        elif run.timed_out == "import":
            result.status = "timeout"
            headline = f"importing the submission {_import_timeout(run, limits)} this time."
            if run.stopped:
                headline = f"the submission did not finish importing: {run.stopped}."
        elif run.timed_out is not None:
            result.status = "error"
            headline = (
                f"the checker could not start a process for it within "
                f"{limits.startup_timeout:g} s (is the machine overloaded?)."
            )
        else:
            result.status = "error"
            where = f"while running {stuck.describe()}" if stuck else "after its last case"
            headline = f"{run.describe_exit()} {where} ({done})."
    elif kinds == {"not implemented"} and result.cases_failed == len(cases):
        result.status = "missing"
        raises = any(o.message.startswith("raised") for o in observations)
        nones = any(o.message == "returned None" for o in observations)
        how = {
            (True, False): "raises NotImplementedError",
            (False, True): "returns None: is its body still `pass`?",
        }.get((raises, nones), "raises NotImplementedError or returns None")
        result.detail = f"not implemented yet ({how})."
        result.findings = []
        return result
    elif "raised" in kinds:
        result.status = "error"
    elif result.findings:
        result.status = "fail"
    lines = [headline] if headline else []
    lines += [finding.text for finding in result.findings]
    result.detail = "\n".join(lines)
    hints = [f.hint for f in result.findings if f.hint]
    result.hint = " ".join(dict.fromkeys(hints)) or None
    return result


def _missing_detail(
    submission: Submission, name: str, defined: set[str], suggestion: str | None = None
) -> str:
    """Why contract function ``name`` is missing from ``submission``, in words: `missing_message`;
    then, if given, the ``--api`` the file looks written for (``suggestion``: `suggest_api`);
    then the names of ``defined`` (what the entry defines: `defined_names`) that only look like
    a name it needed (`homoglyph_note`). The one home of a missing function's detail."""
    detail = missing_message(submission.api, name)
    if suggestion:
        detail = f"{detail[:-1]} (is the file written for {suggestion}?)"
    options = REQUIRES[submission.api].get(name, ())
    needed = dict.fromkeys(wanted for group in options for wanted in group if wanted not in defined)
    notes = [note for note in (homoglyph_note(wanted, defined) for wanted in needed) if note]
    if notes:
        detail = f"{detail.removesuffix('.')}: {'; '.join(notes)}."
    return detail


def homoglyph_note(wanted: str, names: Iterable[str]) -> str | None:
    """What tells apart from ``wanted`` (an ASCII name the run needs) each of ``names`` (the
    names a file defines) that differs from it only at non-ASCII characters, in words; None if
    none does. Such a name has the same length, every ASCII character equal, and at most
    `MAX_LOOK_ALIKE_CHARACTERS` others, each a letter or a mark (a name with more of another
    script is another name): a ``relu_forward`` written with a Cyrillic ``a`` (U+0430), which
    no reader tells apart.

    For that name, ``"it defines relu_forw\u0430rd, which has U+0430 CYRILLIC SMALL LETTER A
    where relu_forward has 'a'"``; for an ASCII near miss (``relu_forwad``), None. A name written
    with compatibility characters (a fullwidth ``r``, U+FF52) needs no note: Python reads every
    identifier NFKC-normalised (PEP 3131), so that ``def`` defines ``relu_forward`` itself.
    Names are shown through `clean_name` (at most 3 of them, then how many more); characters
    by code point and Unicode name.
    """
    found = sorted(name for name in set(names) if _looks_like(name, wanted))
    if not found:
        return None
    described = []
    for name in found[:3]:
        differences = [(mine, its) for mine, its in zip(name, wanted, strict=True) if mine != its]
        where = ", and ".join(
            f"U+{ord(mine):04X} {unicodedata.name(mine, 'an unnamed character')} where "
            f"{wanted if index == 0 else 'it'} has '{its}'"
            for index, (mine, its) in enumerate(differences)
        )
        described.append(f"it defines {clean_name(name)}, which has {where}")
    more = len(found) - 3
    return "; ".join(described) + (f" (and {more} more such names)" if more > 0 else "")


#: Most characters a look-alike name may differ at (`homoglyph_note`): one or two letters
#: swapped for another script's; three CJK or Hebrew letters in a name are another name
#: (attacker session 7, F7).
MAX_LOOK_ALIKE_CHARACTERS = 2


def _looks_like(name: str, wanted: str) -> bool:
    """Whether ``name`` differs from ``wanted`` only at a few non-ASCII letters or marks
    (`homoglyph_note`)."""
    if len(name) != len(wanted) or name == wanted:
        return False
    differing = [mine for mine, its in zip(name, wanted, strict=True) if mine != its]
    return len(differing) <= MAX_LOOK_ALIKE_CHARACTERS and all(
        not mine.isascii() and unicodedata.category(mine)[0] in "LM" for mine in differing
    )


def _all_with(status: str, detail: str, api: str = "tinycnn") -> dict[str, FunctionResult]:
    """The same verdict for all nine functions (the file does not compile or import)."""
    return {
        name: FunctionResult(name, status, detail=detail, cases_total=len(cases_of(name, (), api)))
        for name in CONTRACT_FUNCTIONS
    }


def _outside_api(functions: dict[str, FunctionResult], api: str) -> dict[str, FunctionResult]:
    """``functions`` with every function the course ``api`` does not provide set to "not
    graded" (with why, in words): the one place that status is given, whatever the run found."""
    return {
        name: result
        if name in REQUIRES[api]
        else FunctionResult(name, NOT_GRADED, detail=missing_message(api, name))
        for name, result in functions.items()
    }


# --------------------------------------------------------------------------------------------
# Training with the submission's ops
# --------------------------------------------------------------------------------------------


_REFERENCE_RUNS: dict[str, tuple[dict[str, np.ndarray], float]] = {}
_DATASETS: dict[str, object] = {}
_REFERENCE_LOCK = threading.Lock()


def _dataset(setup: TrainingSetup):
    """The setup's dataset, generated once per process (shared by every submission graded)."""
    from tinycnn.reference.data import DatasetConfig, make_dataset

    key = json.dumps(setup.data, sort_keys=True)
    with _REFERENCE_LOCK:  # folder mode grades on threads: generate it once
        if key not in _DATASETS:
            _DATASETS[key] = make_dataset(DatasetConfig(**setup.data))
        return _DATASETS[key]


def _reference_training(setup: TrainingSetup) -> tuple[dict[str, np.ndarray], float]:
    """Final parameters and validation accuracy of the reference run (once per process)."""
    from tinycnn.reference.models import TinyCNN
    from tinycnn.reference.train import TrainConfig, train

    key = json.dumps(setup.as_job(), sort_keys=True)
    dataset = _dataset(setup)  # before taking the lock, which _dataset takes too
    with _REFERENCE_LOCK:  # folder mode grades on threads: train the reference once
        if key not in _REFERENCE_RUNS:
            model = TinyCNN(**setup.model)
            history = train(model, dataset, TrainConfig(**setup.config))
            _REFERENCE_RUNS[key] = (model.params, history.val_acc[-1])
        return _REFERENCE_RUNS[key]


def _validation_accuracy(setup: TrainingSetup, params: dict[str, np.ndarray]) -> float:
    from tinycnn.reference.models import TinyCNN
    from tinycnn.reference.train import evaluate

    dataset = _dataset(setup)
    model = TinyCNN(**setup.model).load_params(params)
    return evaluate(model, dataset.x_val, dataset.y_val)[1]


def _limit_that_ran_out(run: ChildRun, limits: Limits) -> str:
    """The limit a timed-out function's run exceeded, in words, with its numbers: processor
    time, the wall-clock cap (which a busy machine, or waiting, uses up without using processor
    time), or a budget of the whole run that the checker enforced."""
    used = "" if run.cpu_seconds is None else f", of which it used {run.cpu_seconds:.1f} s"
    if run.stopped:
        return f"the run's limits ({run.stopped})"
    if run.limit == "wall":
        return (
            f"its wall-clock cap of {WALL_FACTOR * limits.timeout:g} s ({WALL_FACTOR:g} x its "
            f"processor-time limit of {limits.timeout:g} s{used}: the machine was busy, or the "
            f"code waited)"
        )
    if run.limit == "cpu":
        return f"its processor-time limit of {limits.timeout:g} s"
    if run.limit in ("start", "start-cpu"):  # before its process was started (after the import)
        cpu = f"{run.cpu_seconds or 0.0:.1f} s of processor time"
        why = (
            f"used {cpu}: the machine was busy, or a fork hook waited"
            if run.limit == "start"
            else f"a fork hook used {cpu}"
        )
        which = "wall-clock cap" if run.limit == "start" else "processor-time limit"
        return (
            f"the {which} of {limits.timeout:g} s for starting the functions' processes after "
            f"the import ({why})"
        )
    return f"the time limit of {limits.timeout:g} s"


def _import_timeout(run: ChildRun, limits: Limits) -> str:
    """How an import that timed out ran out of time, in words with its numbers: processor time
    (its processes together, what it started included) or its wall-clock cap."""
    used = "" if run.cpu_seconds is None else f"; it used {run.cpu_seconds:.1f} s"
    return {
        "cpu": f"used more than {limits.timeout:g} s of processor time (its processes "
        f"together, any it started included)",
        "wall": f"took longer than its wall-clock cap of {WALL_FACTOR * limits.timeout:g} s "
        f"({WALL_FACTOR:g} x the processor-time limit of {limits.timeout:g} s{used}: the "
        f"machine was busy, or the code waited)",
    }.get(run.limit, f"took longer than {limits.timeout:g} s")


def _judge_training(run: ChildRun, setup: TrainingSetup, limits: Limits) -> TrainingResult:
    reference_params, reference_accuracy = _reference_training(setup)
    train = run.train or {"outcome": "absent"}
    result = TrainingResult(
        "error",
        setup.describe(),
        reference_val_accuracy=reference_accuracy,
        seconds=float(train.get("seconds", run.run_seconds)),
    )
    if run.timed_out:
        result.status = "timeout"
        result.detail = f"training took longer than {limits.train_timeout:g} s."
        if run.stopped:
            result.detail = f"training did not finish: {run.stopped}."
        return result
    if train["outcome"] == "absent":
        result.detail = f"{run.describe_exit()} during training."
        return result
    if train["outcome"] != "returned":
        result.detail = "training raised: " + _exception_text(train["error"], limits.memory_mb)
        return result
    if any(loss is None for loss in train["step_loss"]):
        step = next(i for i, loss in enumerate(train["step_loss"]) if loss is None)
        result.status = "diverged"
        result.detail = f"the loss became NaN or infinite at step {step + 1}: training diverged."
        return result
    try:
        accuracy = _validation_accuracy(setup, train["params"])
        difference = max(
            max_relative_error(train["params"][key], reference_params[key])
            for key in reference_params
        )
    except (ValueError, KeyError, TypeError) as error:
        result.detail = f"the trained parameters are unusable: {clean_text(error)}"
        return result
    result.val_accuracy = accuracy
    result.max_param_rel_error = difference
    allowed = tolerance("trajectory_final_params", "float64").rtol
    if difference <= allowed:
        result.status = "ok"
        result.detail = (
            f"final parameters match the reference run (max relative difference {difference:.1e})."
        )
    else:
        result.status = "differs"
        result.detail = (
            f"final parameters differ from the reference run by {difference:.2g} "
            f"(relative; tolerance {allowed:g}) although every op passed: is some "
            f"function keeping state between calls?"
        )
    return result


# --------------------------------------------------------------------------------------------
# The whole submission
# --------------------------------------------------------------------------------------------


def _import_failure(import_result: dict, limits: Limits) -> str:
    error = import_result["error"]
    if error.get("type") in ("SyntaxError", "IndentationError", "TabError"):
        where = f" ({error['where']})" if error.get("where") else ""
        reason = syntax_reason(error.get("message", ""), error.get("line"))
        return f"the file does not compile: {reason}{where}"
    return "importing the submission failed: " + _exception_text(error, limits.memory_mb)


def _tamper_messages(names: set[str]) -> list[str]:
    if not names:
        return []
    listing = ", ".join(sorted(names)[:8]) + (" ..." if len(names) > 8 else "")
    return [
        f"the submission replaced {listing}: a submission must not modify NumPy or "
        f"Python's builtins"
    ]


def _own_top_modules(submission: Submission) -> frozenset[str]:
    """The top-level names of the student's own modules, the entry's included: theirs to import
    (a helper's ``from layers import *`` imports the entry by its name, as CS231n's
    ``layer_utils.py`` does)."""
    return frozenset(module.partition(".")[0] for module in submission.modules)


def _resolved(use: ImportUse, source: SourceFile, own: frozenset[str]) -> ImportUse:
    """A relative import that resolves inside the student's own packages, as the student's
    top-level module it lands in (allowed); any other import as it is."""
    if not use.module.startswith("."):
        return use
    name = use.module.lstrip(".")
    absolute = resolve_relative(name or None, len(use.module) - len(name), source.package)
    if absolute is None or absolute.partition(".")[0] not in own:
        return use
    return replace(use, module=absolute.partition(".")[0])


def _root_of(entry_path: Path, submission: Submission) -> Path:
    """The folder `Submission.write` wrote to, from the entry's path in it."""
    return Path(entry_path).parents[len(Path(submission.entry.path).parts) - 1]


def _read_files(submission: Submission) -> list[str]:
    """Paths of the student's files the import rule reads (never a set-aside one), for the
    child's preloading at level uid."""
    return [f.path for f in submission.files if f.path not in submission.unimported]


def _own_modules(submission: Submission) -> list[str]:
    """Every module name of the student's files and the packages holding them, for the child
    (which never imports them on the submission's behalf before it runs)."""
    return sorted(set(submission.modules) | _own_top_modules(submission))


def new_seed() -> int:
    """A fresh run seed (32 bits), from the operating system's randomness."""
    return secrets.randbits(32)


def _clean_note(note: str) -> str:
    """A note on how the upload was read, or an import rule's message, safe to print and store:
    each character a terminal would act on or a reader cannot see written as its escape
    (`clean_name`: ``\\x1b[2J`` is shown, not obeyed), at most `MAX_NOTE` characters."""
    text = clean_name(note)
    return text if len(text) <= MAX_NOTE else text[: MAX_NOTE - 3] + "..."


def grade_submission(
    path: str | Path | Submission,
    *,
    allow_imports: tuple[str, ...] = (),
    limits: Limits | None = None,
    train: bool = True,
    setup: TrainingSetup = TRAINING,
    api: str = "tinycnn",
    entry: str | None = None,
    seed: int | None = None,
    isolation: str | None = None,
) -> SubmissionReport:
    """Grade one student submission against the op contract.

    Parameters
    ----------
    path : str, Path or Submission
        A ``.py`` file, a ``.ipynb`` notebook or one student's folder of modules (read with
        :func:`~tinycnn.grading.submission.load_submission`), or a `Submission` already read. It
        is only ever run in a sandbox, from a private copy.
    allow_imports : tuple of str
        Top-level modules allowed beyond the standard library and NumPy (``--allow-import``).
    limits : Limits, optional
        Time and memory limits of the sandbox.
    train : bool, default True
        Train TinyCNN with the submission's ops when every function passes.
    setup : TrainingSetup
        What that training run is (its seeds are replaced by the run's seed).
    api : str
        The layer API the submission is written against (``--api``; see
        :mod:`tinycnn.grading.adapters`); ignored when ``path`` is a `Submission`.
    entry : str, optional
        For a folder: the module with the functions (``--entry``); ignored for a `Submission`.
    seed : int, optional
        The run's seed: hidden cases and training seeds. Default: a fresh one (`new_seed`);
        the same seed reproduces a run exactly.
    isolation : str, optional
        Sandbox level (:func:`tinycnn.grading.sandbox.isolation_level`); default the best here.

    Returns
    -------
    SubmissionReport
        Always; the submission cannot make this raise.

    Raises
    ------
    FileNotFoundError
        If there is nothing at ``path``.
    ValueError
        If ``api`` is unknown or ``path`` is a file that is neither ``.py`` nor ``.ipynb``.
    tinycnn.grading.sandbox.SandboxUnavailable
        If ``isolation`` asks for more than this machine gives.
    """
    started = time.monotonic()
    limits = limits or Limits()
    seed = new_seed() if seed is None else int(seed) % 2**32
    if isinstance(path, Submission):
        submission = path
    else:
        try:
            submission = load_submission(path, api=api, entry=entry, allow_imports=allow_imports)
        except (RecursionError, MemoryError) as error:
            # Each reader of an upload has its limits, so nothing should get here; if something
            # does, it costs that submission its grade, never a class run its outputs.
            problem = f"the checker could not read it ({type(error).__name__})"
            submission = Submission(Path(path).name, (), api, problem=problem)
    allowed = allowed_modules(allow_imports) | _own_top_modules(submission)
    sandbox = Sandbox(
        limits,
        isolation,
        allowed_imports=allowed,
        extra_packages=[m for m in allow_imports if m not in allowed_modules()],
    )
    policy: list[str] = []
    graded_as: dict[str, str] = {}

    def finish(functions, training=None, busy=()) -> SubmissionReport:
        # The notes and the policy's messages quote the upload's file names and statements:
        # printed raw, names made of escape sequences drew a fake all-PASS table over a 0 of 9
        # (attacker session 7, F3). Cleaned here, once, for every output.
        return SubmissionReport(
            clean_name(submission.name),
            _outside_api(functions, submission.api),
            [_clean_note(message) for message in policy],
            training,
            time.monotonic() - started,
            api=submission.api,
            graded_as=graded_as,
            # Capped per notebook and again per upload: 98 notebooks of 100 notes each gave
            # 10 MB of output (attacker session 7, F6).
            set_aside=capped_notes([_clean_note(note) for note in submission.set_aside]),
            chosen=submission.chosen,  # its name through clean_name already
            cases_set_aside=api_set_aside(submission.api, hidden_cases(seed)),
            seed=seed,
            isolation=sandbox.isolation,
            network=sandbox.network,
            busy_timeouts=list(busy),
        )

    if submission.problem is not None:
        return finish(
            _all_with(
                "error", clean_text(submission.problem, 500).rstrip(".") + ".", submission.api
            )
        )
    entry_file = submission.entry
    static_imports: list[ImportUse] = []
    own = _own_top_modules(submission)
    for source_file in submission.files:
        if source_file.path in submission.unimported:
            continue  # nothing the entry imports: set aside (the run-time guard still applies)
        try:
            refuse_unsafe_encoding(source_file.data)
            uses = source_file.import_uses()  # parsed once, when the submission was read
        except UnsafeEncoding as error:
            return finish(
                _all_with(
                    "error",
                    f"{clean_name(source_file.origin)} is refused: {error}.",
                    submission.api,
                )
            )
        except (SyntaxError, ValueError, UnicodeDecodeError, LookupError) as error:
            if source_file is not entry_file:
                continue  # a helper: reported if (and when) the entry imports it
            # ValueError: NUL bytes; UnicodeDecodeError, LookupError: undecodable text
            line = getattr(error, "lineno", None)
            where = f" ({submission.locate(entry_file.path, line)})" if line else ""
            reason = (
                syntax_reason(error.msg, line) if isinstance(error, SyntaxError) else str(error)
            )
            verdict = "is too large" if isinstance(error, SourceTooLarge) else "does not compile"
            return finish(
                _all_with(
                    "error",
                    f"the file {verdict}: {clean_text(reason)}{where}.",
                    submission.api,
                )
            )
        static_imports += [
            replace(use, where=submission.locate(source_file.path, use.line))
            if use.line is not None
            else use
            for use in (_resolved(use, source_file, own) for use in uses)
        ]

    with tempfile.TemporaryDirectory(prefix="tinycnn-submission-") as folder:
        # The sandbox copies the student's files from a private folder holding nothing else.
        entry_path = submission.write(folder)
        with _one_blas_thread():
            return _grade_in_sandbox(
                sandbox,
                entry_path,
                submission,
                allowed,
                static_imports,
                train,
                setup.seeded(seed),
                seed,
                finish,
                policy,
                graded_as,
            )


def _relocate(run: ChildRun, submission: Submission) -> None:
    """Name the place of each exception in the student's terms (a notebook cell, a helper)."""
    errors = [call.get("error") for call in run.calls]
    errors += [(run.import_result or {}).get("error"), (run.train or {}).get("error")]
    for error in errors:
        if not isinstance(error, dict) or not isinstance(error.get("line"), int):
            continue
        file = error.get("file")
        where = submission.locate(None if file == submission.entry.path else file, error["line"])
        if error.get("function"):
            where += f", in {error['function']}"
        error["where"] = clean_text(where)


def _call_signature(case: OpCase, direction: str, inputs: dict[str, np.ndarray]) -> dict:
    """How the harness calls the function on ``inputs``: input names as positional arguments,
    and keyword arguments (recorded from :func:`~tinycnn.parity_tests.harness.call_op` itself,
    so the sandbox calls exactly as the parity suite does)."""
    recorded: dict = {}

    class Recorder:
        def __getattr__(self, name):
            def record(*args, **kwargs):
                recorded.update(args=args, kwargs=kwargs)

            return record

    call_op(Recorder(), case, direction, inputs)
    names = {id(array): name for name, array in inputs.items()}
    kwargs = {key: int(value) for key, value in recorded["kwargs"].items()}
    return {
        "names": list(inputs),
        "args": [names[id(a)] for a in recorded["args"]],
        "kwargs": kwargs,
    }


def _sub(results: ResultDirectory, name: str) -> ResultDirectory | str | None:
    try:
        return results.sub(name)
    except (Malformed, OSError) as error:
        return clean_text(error)


def _read_run(sandbox: Sandbox, results: ResultDirectory, name: str, n_calls: int) -> ChildRun:
    """One task's run of ``sandbox``'s last run, read through the channel (a refused directory
    is a malformed run). A task cut short because the checker stopped the whole run says why
    (`Sandbox.stopped_because`, and as a word `Sandbox.stopped_limit`)."""
    directory = _sub(results, name)
    if isinstance(directory, str):
        return ChildRun(malformed=directory)
    if directory is None:
        run = ChildRun()
    else:
        with directory:
            run = read_function_run(directory, n_calls, CONTRACT_FUNCTIONS)
            if name == "train":
                run.train = read_training(
                    directory, ("conv.weight", "conv.bias", "fc.weight", "fc.bias")
                )
    if sandbox.stopped_because is not None and run.timed_out is None and run.exit_status is None:
        # The whole sandbox was stopped while this task ran.
        run.timed_out = "run" if run.import_result is not None else "import"
        run.stopped, run.stopped_limit = sandbox.stopped_because, sandbox.stopped_limit
    return run


@functools.lru_cache(maxsize=4)
def _packed_training_inputs(setup_json: str) -> bytes:
    """`_training_inputs` of a setup (given as its ``as_job`` JSON), packed once per process."""
    job = json.loads(setup_json)
    return pack_inputs(_training_inputs(TrainingSetup(job["model"], job["config"], job["data"])))


def _training_inputs(setup: TrainingSetup) -> dict[str, np.ndarray]:
    """What the sandbox trains from: the initial parameters, the data and the batch order."""
    from tinycnn.reference.models import TinyCNN
    from tinycnn.reference.train import TrainConfig, epoch_batches

    model = TinyCNN(**setup.model)
    config = TrainConfig(**setup.config)
    dataset = _dataset(setup)
    n = len(dataset.y_train)
    order = np.stack(
        [
            np.concatenate(epoch_batches(n, config.batch_size, epoch, config.seed))
            for epoch in range(1, config.epochs + 1)
        ]
    )
    return {
        **{name: value.copy() for name, value in model.params.items()},
        "x_train": dataset.x_train.astype(model.dtype),
        "y_train": np.asarray(dataset.y_train),
        "order": order,
    }


@functools.lru_cache(maxsize=32)
def _packed_inputs(cases: tuple[tuple[OpCase, str], ...]) -> tuple[bytes, tuple[dict, ...]]:
    """The ``.npz`` of one function's inputs (`pack_inputs`) and each call's ``prefix`` and
    signature. Packed once per process for every submission graded on the same cases (a folder
    run); each sandbox still gets its own copy of the file."""
    arrays_of_function, signatures = {}, []
    for index, (case, direction) in enumerate(cases):
        arrays = _inputs(case)
        prefix = f"{index:04d}/"
        arrays_of_function.update({prefix + key: value for key, value in arrays.items()})
        signatures.append({"prefix": prefix, **_call_signature(case, direction, arrays)})
    return pack_inputs(arrays_of_function), tuple(signatures)


def _run_functions(
    sandbox: Sandbox, path: Path, submission: Submission, plan: dict[str, list[tuple[OpCase, str]]]
) -> tuple[ChildRun, dict[str, ChildRun]]:
    """One sandbox run: the probe, then each function of ``plan`` on its cases. Returns the
    probe's run and each function's, read through the channel."""
    tasks = [Task("probe", gate=True)]
    inputs: dict[str, bytes] = {}
    for name, cases in plan.items():
        packed, signatures = _packed_inputs(tuple(cases))
        inputs[f"{name}.npz"] = packed
        calls = [{"file": f"{name}.npz", **signature} for signature in signatures]
        # One time limit per function, for its catalogue and hidden cases together: an endless
        # loop costs one limit, not one per family of cases.
        tasks.append(Task(f"fn-{name}", function=name, calls=calls))
    # The expected values are computed while the sandbox runs (the judge needs them only after).
    expecting = threading.Thread(target=_compute_expected, args=(plan,), daemon=True)
    with _one_blas_thread():
        expecting.start()
        with sandbox.run(
            path,
            tasks,
            inputs,
            CONTRACT_FUNCTIONS,
            student_modules=_own_modules(submission),
            api=submission.api,
            root=_root_of(path, submission),
            read_files=_read_files(submission),
        ) as (results, _finished):  # if not, `_read_run` reads why from the sandbox
            probe = _read_run(sandbox, results, "probe", 0)
            runs = {
                name: _read_run(sandbox, results, f"fn-{name}", len(cases))
                for name, cases in plan.items()
            }
        expecting.join()
    for run in (probe, *runs.values()):
        _relocate(run, submission)
    return probe, runs


def _grade_in_sandbox(
    sandbox: Sandbox,
    path: Path,
    submission: Submission,
    allowed: frozenset[str],
    static_imports: list[ImportUse],
    train: bool,
    setup: TrainingSetup,
    seed: int,
    finish,
    policy: list[str],
    graded_as: dict[str, str],
) -> SubmissionReport:
    """The part of `grade_submission` that runs the submission (once the file parses)."""
    limits = sandbox.limits
    runtime_imports: list[ImportUse] = []
    tampered: set[str] = set()
    busy: list[str] = []  # what ran out of wall-clock time, not processor time (folder mode)

    def note(run: ChildRun, what: str | None = None, cpu_limit: float = limits.timeout) -> None:
        """Record ``run``'s denied imports and tampering; and ``what`` ran (the import, a
        function, the training) as `busy` if it timed out on wall-clock time with processor
        time to spare (`ChildRun.ran_out_of_wall_clock`)."""
        if what is not None and run.ran_out_of_wall_clock(cpu_limit):
            busy.append(what)
        for record in (run.import_result, run.done):
            if record:
                runtime_imports.extend(
                    ImportUse(b["module"], b["line"], submission.locate(None, b["line"]))
                    if isinstance(b.get("line"), int)
                    else ImportUse(b["module"], None)
                    for b in record.get("blocked", [])
                )
                tampered.update(record.get("tampered", []))

    def settle_policy() -> None:
        policy[:] = policy_messages(static_imports + runtime_imports, allowed) + _tamper_messages(
            tampered
        )

    hidden = hidden_cases(seed)
    plan = {name: cases_of(name, hidden, submission.api) for name in CONTRACT_FUNCTIONS}
    probe, runs = _run_functions(sandbox, path, submission, plan)
    note(probe, "import" if probe.timed_out == "import" else None)
    settle_policy()
    if probe.timed_out == "import":
        what = _import_timeout(probe, limits)
        message = (
            f"importing the submission {what}: code at the top level of the file runs on "
            f"import (put it under if __name__ == '__main__':)."
        )
        if probe.stopped:  # the checker stopped the run (a budget, a stopped supervisor)
            message = f"the submission did not finish importing: {probe.stopped}."
        return finish(_all_with("timeout", message, submission.api), busy=busy)
    if probe.import_result is None:
        reason = (
            f"the checker could not start Python within {limits.startup_timeout:g} s"
            if probe.timed_out
            else f"{probe.describe_exit()} while the submission was being imported"
        )
        return finish(_all_with("error", reason + ".", submission.api))
    if not probe.import_result.get("ok", False):
        return finish(
            _all_with("error", _import_failure(probe.import_result, limits) + ".", submission.api)
        )

    present = probe.import_result.get("functions", {})
    graded_as.update(
        {k: str(v) for k, v in (probe.import_result.get("graded_as") or {}).items() if k in present}
    )
    suggestion = None
    if submission.api == "tinycnn":  # course code graded without its --api: say which one
        suggestion = suggest_api(defined_functions(submission.entry))
    results: dict[str, FunctionResult] = {}
    missing = any(present.get(name, "missing") == "missing" for name in CONTRACT_FUNCTIONS)
    defined = defined_names(submission.entry) if missing else set()
    for name in CONTRACT_FUNCTIONS:
        state = present.get(name, "missing")
        if state == "callable":
            note(runs[name], name)  # timed out on wall-clock time: `_judge_function` says timeout
            results[name] = _judge_function(name, runs[name], plan[name], limits)
        else:
            shown = graded_as.get(name, name)
            detail = (
                _missing_detail(submission, name, defined, suggestion)
                if state == "missing"
                else f"{shown} is defined but is not a function."
            )
            results[name] = FunctionResult(
                name, "missing", detail=detail, cases_total=len(plan[name])
            )
    settle_policy()
    functions = {name: results[name] for name in CONTRACT_FUNCTIONS}

    training = None
    if all(r.status == "pass" for r in functions.values()):
        if train:
            task = Task(
                "train",
                train={
                    "file": "train.npz",
                    "pool_size": 2,
                    "batch_size": setup.config["batch_size"],
                    "lr": setup.config["lr"],
                    "momentum": setup.config["momentum"],
                },
            )
            with sandbox.run(
                path,
                [task],
                {"train.npz": _packed_training_inputs(json.dumps(setup.as_job(), sort_keys=True))},
                CONTRACT_FUNCTIONS,
                student_modules=_own_modules(submission),
                api=submission.api,
                root=_root_of(path, submission),
                read_files=_read_files(submission),
            ) as (results_dir, _finished):
                run = _read_run(sandbox, results_dir, "train", 0)
            _relocate(run, submission)
            note(run, "training", limits.train_timeout)
            settle_policy()
            training = _judge_training(run, setup, limits)
        else:
            training = TrainingResult("skipped", setup.describe(), detail="not requested.")
    return finish(functions, training, busy)


def grade_or_report_failure(path: str | Path, **options) -> SubmissionReport:
    """:func:`grade_submission` of ``path`` with ``options``, for a run that must go on.

    Whatever a submission does, the checker writes its outputs (issue 9): an exception nothing
    foresaw (a bug of the checker that a submission triggered; attacker, session 6, F3, F13 and
    F15 each lost a whole class's outputs this way) becomes that submission's report, every
    function "error" naming the exception's type and asking for a bug report; the traceback
    goes to the log (stderr), not into the student's output.

    Raises
    ------
    tinycnn.grading.sandbox.SandboxUnavailable
        As :func:`grade_submission` (the machine, not the submission).
    """
    try:
        return grade_submission(path, **options)
    except SandboxUnavailable:
        raise
    except Exception as error:
        _LOG.exception("grading %s failed", clean_name(path))
        api = options.get("api", "tinycnn")
        message = (
            f"the checker failed on this submission ({type(error).__name__}); this is a bug of "
            f"tinycnn: please report it with the submission"
        )
        return SubmissionReport(
            clean_name(path),
            _outside_api(_all_with("error", message, api), api),
            [],
            None,
            api=api,
            seed=options.get("seed"),
            isolation=options.get("isolation") or "",
        )


@dataclass
class CaseRun:
    """One contract function run on one case by `grade_case` (for ``tinycnn check --case``).

    Attributes
    ----------
    function, direction : str
    case : OpCase
    inputs, expected : dict of str to numpy.ndarray
        The case's inputs and the contract's outputs (from the reference ops).
    returned : object
        What the submission returned (decoded), or None if it raised or did not run.
    result : FunctionResult
        The verdict on this one case, with its findings.
    api : str
        The layer API the submission was graded through (``--api``).
    """

    function: str
    direction: str
    case: OpCase
    inputs: dict
    expected: dict
    returned: object
    result: FunctionResult
    api: str = "tinycnn"


def grade_case(
    path: str | Path | Submission,
    case_id: str,
    *,
    allow_imports: tuple[str, ...] = (),
    limits: Limits | None = None,
    api: str = "tinycnn",
    entry: str | None = None,
    seed: int | None = None,
    isolation: str | None = None,
) -> list[CaseRun]:
    """Run every contract function that takes the case ``case_id`` on it, and judge.

    conv2d, relu, maxpool2d and linear cases are run by their forward and backward functions,
    cross-entropy cases by ``softmax_cross_entropy``. The submission is read and run as in
    `grade_submission` (same ``api`` and ``entry``, in a sandbox). A hidden case
    (``hidden-...``) is found among the hidden cases of ``seed`` (the seed its run printed).

    Raises
    ------
    ValueError
        If there is no case ``case_id`` in the catalogue (or among the seed's hidden cases), if
        the submission's course API sets it aside (`api_set_aside`), or as `grade_submission`.
        A case the API sets aside for one function only (a pooling tie, for
        maxpool2d_backward) is run by the other.
    FileNotFoundError
        If there is nothing at ``path``.
    """
    from tinycnn.parity_tests.cases import find_case

    if case_id.startswith(HIDDEN_PREFIX):
        if seed is None:
            raise ValueError(f"{case_id} is a hidden case: give the --seed of its run")
        found = [c for c in hidden_cases(int(seed) % 2**32) if c.id == case_id]
        if not found:
            raise ValueError(f"no hidden case {case_id!r} in the run of seed {seed}")
        case = found[0]
    else:
        case = find_case(case_id)
    limits = limits or Limits()
    if isinstance(path, Submission):
        submission = path
    else:
        submission = load_submission(path, api=api, entry=entry, allow_imports=allow_imports)
    allowed = allowed_modules(allow_imports) | _own_top_modules(submission)
    sandbox = Sandbox(limits, isolation, allowed_imports=allowed)
    plan = {}
    for name in CONTRACT_FUNCTIONS:
        directions = [d for (op, d), f in FUNCTIONS.items() if op == case.op and f == name]
        if directions:  # softmax_cross_entropy: one call, both outputs
            plan[name] = [(case, directions[0])]
    outside = {name: case_outside_api(submission.api, name, case) for name in plan}
    if all(outside.values()):
        why = next(iter(outside.values()))
        raise ValueError(f"{case_id} is not graded through the {submission.api} API: {why}")
    plan = {name: cases for name, cases in plan.items() if outside[name] is None}
    if submission.problem is not None:
        return [
            CaseRun(
                name,
                direction,
                case,
                *_expected(case, direction),
                None,
                FunctionResult(name, "error", detail=clean_text(submission.problem, 500)),
                submission.api,
            )
            for name, [(case, direction)] in plan.items()
        ]
    with tempfile.TemporaryDirectory(prefix="tinycnn-submission-") as folder:
        probe, function_runs = _run_functions(sandbox, submission.write(folder), submission, plan)
    runs = []
    for name, [(case, direction)] in plan.items():
        inputs, expected = _expected(case, direction)
        run = function_runs[name]
        present = (probe.import_result or {}).get("functions", {}).get(name)
        if probe.import_result and not probe.import_result.get("ok"):
            run.import_result = probe.import_result
        if probe.import_result and probe.import_result.get("ok") and present != "callable":
            defined = defined_names(submission.entry)
            result = FunctionResult(
                name, "missing", detail=_missing_detail(submission, name, defined)
            )
        else:
            result = _judge_function(name, run, [(case, direction)], limits)
        returned = None
        if run.calls and run.calls[0].get("outcome") == "returned":
            returned = run.calls[0]["result"]
        runs.append(
            CaseRun(name, direction, case, inputs, expected, returned, result, submission.api)
        )
    return runs
