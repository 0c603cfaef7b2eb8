"""Grade a submission: run it in child processes, compare everything here, in the parent.

The flow of :func:`grade_submission`:

1. parse the file (a syntax error stops here) and scan its imports (:mod:`.policy`);
2. a *probe* child imports the submission and lists which contract functions exist;
3. one child per present function runs it on every catalogue case of that function
   (:mod:`tinycnn.parity_tests.cases`), several functions at a time; each has its own time limit;
4. here, every returned array is compared with :mod:`tinycnn.reference.ops` on the same inputs,
   with the one comparison helper and tolerance table (:mod:`tinycnn.parity_tests.compare`); inputs
   are checked unmodified; failures get a case description and, where a pattern is known, a hint;
5. if all nine functions pass, a last child trains TinyCNN with the submission's ops and the
   parent evaluates the returned parameters next to a reference run from the same seed.

No verdict depends on anything the child *says* about itself: it only sends arrays back.
"""

from __future__ import annotations

import functools
import json
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tinycnn.grading.hints import CaseOutcome, hint_for
from tinycnn.grading.policy import ImportUse, allowed_modules, policy_messages, scan_imports
from tinycnn.grading.sandbox import ChildRun, ForeignValue, Limits, Sandbox
from tinycnn.parity_tests.cases import CASES, GRADED_CASES, OpCase, make_inputs
from tinycnn.parity_tests.compare import compare, max_relative_error
from tinycnn.parity_tests.harness import FUNCTIONS, call_op, stage_name
from tinycnn.parity_tests.tolerances import tolerance
from tinycnn.reference import ops as reference_ops
from tinycnn.reference.ops import CONTRACT_FUNCTIONS

__all__ = [
    "STATUSES",
    "TRAINING",
    "FunctionResult",
    "SubmissionReport",
    "TrainingResult",
    "TrainingSetup",
    "cases_of",
    "grade_submission",
]

#: Verdicts of one contract function.
STATUSES = ("pass", "fail", "error", "timeout", "missing")

#: Functions graded at the same time for one submission (each in its own child process).
FUNCTION_WORKERS = 3


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
        Empty for a pass; otherwise the first failing case in words and what went wrong.
    hint : str or None
        A likely cause, when a known failure pattern matches.
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

    @property
    def full_detail(self) -> str:
        """The detail with the hint appended (what the JSON and Gradescope outputs carry)."""
        return f"{self.detail} Hint: {self.hint}" if self.hint else self.detail


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
    """Everything ``tinycnn check`` found out about one submission."""

    submission: str
    functions: dict[str, FunctionResult]
    policy: list[str]
    training: TrainingResult | None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """Every contract function passes and the import policy holds."""
        return not self.policy and all(r.status == "pass" for r in self.functions.values())

    @property
    def n_passed(self) -> int:
        return sum(r.status == "pass" for r in self.functions.values())


# --------------------------------------------------------------------------------------------
# Cases and expected values (computed once per process, shared by every submission graded)
# --------------------------------------------------------------------------------------------


def cases_of(function: str) -> list[tuple[OpCase, str]]:
    """The ``(case, direction)`` pairs a contract function is graded on, in catalogue order.

    softmax_cross_entropy returns the loss and its gradient from one call: one direction only.
    """
    pairs = [key for key, name in FUNCTIONS.items() if name == function]
    directions = {op: direction for op, direction in pairs}
    if function == "softmax_cross_entropy":
        directions = {"softmax_cross_entropy": "forward"}
    return [(case, directions[case.op]) for case in GRADED_CASES if case.op in directions]


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


@functools.cache
def _expected(case_id: str, direction: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(inputs, expected outputs)`` of one case, from reference.ops in this process."""
    case = next(c for c in CASES if c.id == case_id)
    inputs = make_inputs(case)
    result = call_op(reference_ops, case, direction, inputs)  # reference ops never modify it
    names = output_names(case, direction)
    values = result if isinstance(result, tuple) else (result,)
    return inputs, dict(zip(names, values, strict=True))


# --------------------------------------------------------------------------------------------
# Judging one function from its child run
# --------------------------------------------------------------------------------------------


def _describe_value(value: object) -> str:
    if isinstance(value, ForeignValue):
        return value.type_name
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    return type(value).__name__


def _judge_call(case: OpCase, direction: str, call: dict) -> tuple[CaseOutcome, str, list]:
    """Compare one call's outputs with the reference: ``(outcome, message, errors)``.

    ``errors`` collects every max relative error computed (for the function's worst error).
    """
    inputs, expected = _expected(case.id, direction)
    names = tuple(expected)
    result = call["result"]
    errors: list[float] = []
    if len(names) == 1:
        if isinstance(result, tuple):
            message = f"returned {_describe_value(result)}, expected one array ({names[0]})"
            return CaseOutcome(case, False, "structure"), message, errors
        values = (result,)
    else:
        if not isinstance(result, tuple) or len(result) != len(names):
            message = f"returned {_describe_value(result)}, expected a tuple ({', '.join(names)})"
            return CaseOutcome(case, False, "structure"), message, errors
        values = result
    first_failure = None
    failed, passed = [], []
    for name, actual in zip(names, values, strict=True):
        want = expected[name]
        if isinstance(actual, ForeignValue):
            outcome = CaseOutcome(case, False, "structure", name)
            message = f"{name} is {actual.type_name}, expected a NumPy array"
            first_failure = first_failure or (outcome, message)
            continue
        comparison = compare(
            actual, want, op=case.op, stage=_stage(case, name, direction), case_id=case.id
        )
        if comparison.max_rel_error is not None:
            errors.append(comparison.max_rel_error)
        (passed if comparison.passed else failed).append(name)
        if comparison.passed or first_failure is not None:
            continue
        problem = _problem_of(comparison.message, comparison.max_rel_error)
        reason = comparison.message.removeprefix(f"{case.id}: {comparison.stage}: ")
        first_failure = (CaseOutcome(case, False, problem, name, actual, want), f"{name}: {reason}")
    if first_failure is not None:
        outcome, message = first_failure
        outcome = replace(outcome, failed_outputs=tuple(failed), passed_outputs=tuple(passed))
        return outcome, message, errors
    for name, original in inputs.items():
        after = call["inputs_after"].get(name)
        if not (
            isinstance(after, np.ndarray)
            and after.shape == original.shape
            and np.array_equal(after, original, equal_nan=original.dtype.kind == "f")
        ):
            return (
                CaseOutcome(case, False, "modified-input", name),
                f"modified its input {name} in place",
                errors,
            )
    return CaseOutcome(case, True, passed_outputs=tuple(passed)), "", errors


def _problem_of(message: str, error: float | None) -> str:
    """Which stage of `compare` failed, from its message (shape, then dtype, then values)."""
    if error is not None:
        return "non-finite" if math.isinf(error) else "values"
    if ": shape " in message:
        return "shape"
    return "dtype" if ": dtype " in message else "structure"


def _exception_text(error: dict, memory_mb: int) -> str:
    """An exception from the child in words: what, where, and what to do for the odd ones."""
    kind, message = error.get("type", "?"), error.get("message", "")
    where = f" at {error['where']}" if error.get("where") else ""
    if kind == "SystemExit":
        return (
            f"{message}{where} (sys.exit, exit() or raise SystemExit): a submission must "
            f"return its result, not end the process"
        )
    if kind == "unreadable result":
        return f"returned something the checker could not read ({message})"
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
    outcomes: list[CaseOutcome] = []
    messages: list[str] = []
    errors: list[float] = []
    raised: list[tuple[OpCase, dict]] = []
    for (case, direction), call in zip(cases, run.calls, strict=False):
        if call["outcome"] == "returned":
            outcome, message, call_errors = _judge_call(case, direction, call)
            errors += call_errors
        else:
            outcome, message = CaseOutcome(case, False, "raised"), ""
            raised.append((case, call["error"]))
        outcomes.append(outcome)
        messages.append(message)
    result.cases_failed = sum(not o.passed for o in outcomes)
    if errors:
        result.max_rel_error = max(errors)

    incomplete = len(run.calls) < len(cases)
    if run.import_result is not None and not run.import_result.get("ok", False):
        result.status = "error"
        result.detail = "importing the submission failed: " + _exception_text(
            run.import_result["error"], limits.memory_mb
        )
        return result
    if run.timed_out is not None or incomplete:
        stuck = cases[len(run.calls)][0] if incomplete else None
        done = f"{len(run.calls)} of {len(cases)} cases done"
        if run.timed_out == "run":
            result.status = "timeout"
            where = f"still running {stuck.describe()}" if stuck else "after its last case"
            result.detail = (
                f"did not finish within the time limit of {limits.timeout:g} s ({done}; {where})."
            )
        elif run.timed_out == "import":
            result.status = "timeout"
            result.detail = (
                f"importing the submission took longer than {limits.timeout:g} s this time."
            )
        elif run.timed_out is not None:
            result.status = "error"
            result.detail = (
                f"the checker could not start a process for it within "
                f"{limits.startup_timeout:g} s (is the machine overloaded?)."
            )
        else:
            result.status = "error"
            where = f"while running {stuck.describe()}" if stuck else "after its last case"
            result.detail = f"{run.describe_exit()} {where} ({done})."
        return result

    if (
        raised
        and all(error.get("type") == "NotImplementedError" for _, error in raised)
        and (len(raised) == len(cases))
    ):
        result.status = "missing"
        result.detail = "not implemented yet (raises NotImplementedError)."
        result.cases_failed = len(cases)
        return result
    if raised:
        case, error = raised[0]
        result.status = "error"
        others = f" {len(raised)} of {len(cases)} cases raise." if len(raised) > 1 else ""
        result.detail = (
            f"first error: {case.describe()} (case {case.id}): "
            f"{_exception_text(error, limits.memory_mb)}.{others}"
        )
        return result
    failures = [(o, m) for o, m in zip(outcomes, messages, strict=True) if not o.passed]
    if failures:
        outcome, message = failures[0]
        result.status = "fail"
        others = (
            f" {len(failures)} of {len(cases)} cases fail."
            if len(failures) > 1
            else f" 1 of {len(cases)} cases fails."
        )
        result.detail = (
            f"first failure: {outcome.case.describe()} (case {outcome.case.id}): "
            f"{message.rstrip('.')}.{others}"
        )
        result.hint = hint_for(name, outcomes)
    return result


def _all_with(status: str, detail: str) -> dict[str, FunctionResult]:
    """The same verdict for all nine functions (the file does not compile or import)."""
    return {
        name: FunctionResult(name, status, detail=detail, cases_total=len(cases_of(name)))
        for name in CONTRACT_FUNCTIONS
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


def _judge_training(run: ChildRun, setup: TrainingSetup, limits: Limits) -> TrainingResult:
    reference_params, reference_accuracy = _reference_training(setup)
    result = TrainingResult(
        "error",
        setup.describe(),
        reference_val_accuracy=reference_accuracy,
        seconds=float((run.train or {}).get("seconds", run.run_seconds)),
    )
    if run.timed_out:
        result.status = "timeout"
        result.detail = f"training took longer than {limits.train_timeout:g} s."
        return result
    train = run.train
    if train is None:
        result.detail = f"{run.describe_exit()} during training."
        return result
    if train.get("outcome") != "returned":
        result.detail = "training raised: " + _exception_text(train["error"], limits.memory_mb)
        return result
    try:
        accuracy = _validation_accuracy(setup, train["params"])
        difference = max(
            max_relative_error(train["params"][key], reference_params[key])
            for key in reference_params
        )
    except (ValueError, KeyError, TypeError) as error:
        result.detail = f"the trained parameters are unusable: {error}"
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
    if error.get("type") == "SyntaxError":
        return f"the file does not compile: {error.get('message')}"
    return "importing the submission failed: " + _exception_text(error, limits.memory_mb)


def _tamper_messages(names: set[str]) -> list[str]:
    if not names:
        return []
    listing = ", ".join(sorted(names)[:8]) + (" ..." if len(names) > 8 else "")
    return [
        f"the submission replaced {listing}: a submission must not modify NumPy or "
        f"Python's builtins"
    ]


def grade_submission(
    path: str | Path,
    *,
    allow_imports: tuple[str, ...] = (),
    limits: Limits | None = None,
    train: bool = True,
    setup: TrainingSetup = TRAINING,
    workers: int = FUNCTION_WORKERS,
    fork_server: bool | None = None,
) -> SubmissionReport:
    """Grade one student file against the op contract.

    Parameters
    ----------
    path : str or Path
        The submission (a ``.py`` file); it is only ever run in child processes.
    allow_imports : tuple of str
        Top-level modules allowed beyond numpy and math (``--allow-import``).
    limits : Limits, optional
        Time and memory limits of the child processes.
    train : bool, default True
        Train TinyCNN with the submission's ops when every function passes.
    setup : TrainingSetup
        What that training run is.
    workers : int
        Functions graded at the same time.
    fork_server : bool or None
        Fork the child processes from a preloaded server (default: on Linux) rather than
        start a fresh interpreter for each; see :class:`~tinycnn.grading.sandbox.Sandbox`.

    Returns
    -------
    SubmissionReport
        Always; the submission cannot make this raise.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    """
    started = time.monotonic()
    limits = limits or Limits()
    path = Path(path)
    allowed = allowed_modules(allow_imports)
    policy: list[str] = []

    def finish(functions, training=None) -> SubmissionReport:
        return SubmissionReport(str(path), functions, policy, training, time.monotonic() - started)

    try:
        source = path.read_text(encoding="utf-8")
        static_imports = scan_imports(source)
    except FileNotFoundError:
        raise  # the caller's mistake, not the submission's (`tinycnn check` checks it first)
    except OSError as error:  # a directory, no permission, an I/O error
        return finish(_all_with("error", f"cannot read the file: {error.strerror or error}."))
    except (SyntaxError, ValueError) as error:  # ValueError: NUL bytes, undecodable text
        line = f" (line {error.lineno})" if getattr(error, "lineno", None) else ""
        reason = error.msg if isinstance(error, SyntaxError) else str(error)
        return finish(_all_with("error", f"the file does not compile: {reason}{line}."))

    with Sandbox(limits, fork=fork_server) as sandbox:
        return _grade_in_sandbox(
            sandbox, path, allowed, static_imports, train, setup, workers, finish, policy
        )


def _grade_in_sandbox(
    sandbox: Sandbox,
    path: Path,
    allowed: frozenset[str],
    static_imports: list[ImportUse],
    train: bool,
    setup: TrainingSetup,
    workers: int,
    finish,
    policy: list[str],
) -> SubmissionReport:
    """The part of `grade_submission` that runs the submission (once the file parses)."""
    limits = sandbox.limits
    runtime_imports: list[ImportUse] = []
    tampered: set[str] = set()

    def note(run: ChildRun) -> None:
        for record in (run.import_result, run.done):
            if record:
                runtime_imports.extend(
                    ImportUse(b["module"], b.get("line")) for b in record.get("blocked", [])
                )
                tampered.update(record.get("tampered", []))

    def settle_policy() -> None:
        policy[:] = policy_messages(static_imports + runtime_imports, allowed) + _tamper_messages(
            tampered
        )

    probe = sandbox.run("probe", path, functions=CONTRACT_FUNCTIONS, allowed_imports=allowed)
    note(probe)
    settle_policy()
    if probe.timed_out == "import":
        return finish(
            _all_with(
                "timeout",
                (
                    f"importing the submission took longer than {limits.timeout:g} s: code at the "
                    "top "
                    f"level of the file runs on import (put it under if __name__ == '__main__':)."
                ),
            )
        )
    if probe.import_result is None:
        reason = (
            f"the checker could not start Python within {limits.startup_timeout:g} s"
            if probe.timed_out
            else f"{probe.describe_exit()} while the submission was being imported"
        )
        return finish(_all_with("error", reason + "."))
    if not probe.import_result.get("ok", False):
        return finish(_all_with("error", _import_failure(probe.import_result, limits) + "."))

    present = probe.import_result.get("functions", {})
    results: dict[str, FunctionResult] = {}
    to_run = []
    for name in CONTRACT_FUNCTIONS:
        state = present.get(name, "missing")
        if state == "callable":
            to_run.append(name)
        else:
            detail = (
                f"no function {name} in the submission."
                if state == "missing"
                else f"{name} is defined but is not a function."
            )
            results[name] = FunctionResult(
                name, "missing", detail=detail, cases_total=len(cases_of(name))
            )
    for name in to_run:  # expected values before the threads start: computed once, shared
        for case, direction in cases_of(name):
            _expected(case.id, direction)

    def grade_one(name: str) -> tuple[FunctionResult, ChildRun]:
        cases = cases_of(name)
        run = sandbox.run(
            "function",
            path,
            functions=CONTRACT_FUNCTIONS,
            allowed_imports=allowed,
            function=name,
            cases=[{"id": case.id, "direction": d} for case, d in cases],
        )
        return _judge_function(name, run, cases, limits), run

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for result, run in pool.map(grade_one, to_run):
            results[result.name] = result
            note(run)
    settle_policy()
    functions = {name: results[name] for name in CONTRACT_FUNCTIONS}

    training = None
    if all(r.status == "pass" for r in functions.values()):
        if train:
            run = sandbox.run(
                "train",
                path,
                functions=CONTRACT_FUNCTIONS,
                allowed_imports=allowed,
                training=setup.as_job(),
            )
            note(run)
            settle_policy()
            training = _judge_training(run, setup, limits)
        else:
            training = TrainingResult("skipped", setup.describe(), detail="not requested.")
    return finish(functions, training)
