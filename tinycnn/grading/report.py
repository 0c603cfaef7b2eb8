"""Render grading reports: the terminal table, ``--json``, Gradescope's ``results.json``, the CSV.

Pure functions from :class:`~tinycnn.grading.grader.SubmissionReport` to text or dicts; the
command writes them. Nothing here looks at the submission again.
"""

from __future__ import annotations

import csv
import io
import math
import shlex
import textwrap
from dataclasses import replace
from pathlib import Path

from tinycnn.grading.channel import clean_text
from tinycnn.grading.grader import FunctionResult, SubmissionReport
from tinycnn.grading.sandbox import describe_isolation
from tinycnn.reference.ops import CONTRACT_FUNCTIONS

__all__ = [
    "VISIBILITIES",
    "failure_reason",
    "folder_table",
    "gradescope_results",
    "report_json",
    "submission_table",
    "summary_csv",
]

_STATUS_SHOWN = {
    "pass": "pass",
    "fail": "FAIL",
    "error": "ERROR",
    "timeout": "TIMEOUT",
    "missing": "missing",
    "not graded": "not graded",
}
_WIDTH = 100


def _error_text(value: float | None) -> str:
    if value is None:
        return "-"
    return "inf" if math.isinf(value) else f"{value:.1e}"


def _json_number(value: float | None) -> float | None:
    # NaN and infinity are not JSON: "no finite error" is null.
    return value if value is not None and math.isfinite(value) else None


def _wrapped(label: str, text: str) -> list[str]:
    return textwrap.wrap(
        f"{label}{text}",
        width=_WIDTH,
        initial_indent="    ",
        subsequent_indent="      ",
        break_on_hyphens=False,
    )


#: Findings whose failure the error column measures; for any other (a wrong dtype or shape, with
#: values that may even be exact) the column names the kinds instead of an error that reads
#: like a pass ("FAIL  0.0e+00").
_MEASURED_KINDS = ("values", "non-finite")


def _error_cell(result: FunctionResult) -> str:
    """The table's "max rel error" cell: the error, or, for a FAIL whose values did not fail,
    what did (``dtype``, ``shape``, ``structure``...)."""
    kinds = [finding.kind for finding in result.findings]
    if result.status != "fail" or not kinds or any(k in _MEASURED_KINDS for k in kinds):
        return _error_text(result.max_rel_error)
    return ", ".join(dict.fromkeys(kinds))


def _function_rows(result: FunctionResult) -> list[str]:
    rows = [f"{result.name:<22} {_STATUS_SHOWN[result.status]:<10} {_error_cell(result):>13}"]
    if result.findings:
        header = (
            result.detail.split("\n")[0]
            if not result.detail.startswith(result.findings[0].text)
            else ""
        )
        if header:
            rows += _wrapped("", header)
        for finding in result.findings:
            rows += _wrapped("- ", f"{finding.headline}; {finding.first}")
            if finding.hint:
                rows += _wrapped("  hint: ", finding.hint)
        return rows
    if result.detail:
        rows += _wrapped("", result.detail)
    if result.hint:
        rows += _wrapped("hint: ", result.hint)
    return rows


def _reading_notes(report: SubmissionReport) -> list[str]:
    """How the submission was read: the file graded (when chosen among several), the course
    API's functions, what was set aside."""
    notes = [clean_text(report.chosen, 1000)] if report.chosen else []
    if report.api != "tinycnn":
        pairs = ", ".join(f"{name} <- {course}" for name, course in report.graded_as.items())
        notes.append(f"graded through the {report.api} API ({pairs or 'none of its functions'})")
    if report.cases_set_aside:
        notes.append(report.cases_set_aside)
    if report.set_aside:
        notes.append("set aside, not run: " + "; ".join(report.set_aside))
    if report.regraded_alone:
        notes.append(regrade_note(report))
    return notes


def regrade_note(report: SubmissionReport) -> str:
    """Why a folder-mode submission was graded again alone, in words ("" if it was not)."""
    if not report.regraded_alone:
        return ""
    return (
        f"re-graded alone because the machine was busy: graded beside classmates, "
        f"{', '.join(report.regraded_alone)} ran out of wall-clock time with processor time to "
        f"spare; this is the verdict of the lone run"
    )


def submission_table(report: SubmissionReport, options: tuple[str, ...] = ()) -> str:
    """The report as the table ``tinycnn check`` prints: one row per contract function.

    The first line is the command with ``options``, the run's options that change the grading
    (``--api cs231n``...; `tinycnn.grading.command.grading_options`), so copying it grades the
    same way. Failing rows are followed by their first failing case in words and, where known,
    a hint.
    """
    shown = f" {clean_text(shlex.join(options), 1000)}" if options else ""
    lines = [f"tinycnn check {report.submission}{shown}"]
    for note in _reading_notes(report):
        lines += _wrapped("", note)
    lines += ["", f"{'function':<22} {'status':<10} {'max rel error':>13}"]
    results = [report.functions[name] for name in CONTRACT_FUNCTIONS]
    details = {(r.detail, r.hint) for r in results}
    if len(details) == 1 and results[0].detail:
        # One cause for all nine (the file does not compile or import): say it once.
        lines += [row for r in results for row in _function_rows(replace(r, detail="", hint=None))]
        lines += _wrapped("every function: ", results[0].full_detail)
    else:
        for result in results:
            lines += _function_rows(result)
    lines.append("")
    if report.policy:
        lines.append("import policy: VIOLATED")
        for message in report.policy:
            lines += _wrapped("- ", message)
    else:
        lines.append("import policy: ok")
    training = report.training
    outside = [name for name in CONTRACT_FUNCTIONS if name not in report.graded_functions]
    if training is None and outside:
        lines += textwrap.wrap(
            f"training: not run (the {report.api} API has no {', '.join(outside)})",
            width=_WIDTH,
            subsequent_indent="    ",
        )
    elif training is None:
        lines.append("training: not run (it runs once every function passes)")
    elif training.status == "skipped":
        lines.append(f"training: skipped ({training.detail.rstrip('.')})")
    else:
        accuracy = (
            f"validation accuracy {training.val_accuracy:.3f}"
            if training.val_accuracy is not None
            else "no accuracy"
        )
        lines += textwrap.wrap(
            f"training ({training.setup}): {accuracy}, reference run "
            f"{training.reference_val_accuracy:.3f}; {training.detail}",
            width=_WIDTH,
            subsequent_indent="    ",
        )
    lines.append(_run_line(report))
    reproduce = _reproduce_line(report)
    if reproduce:
        lines += textwrap.wrap(reproduce, width=_WIDTH, subsequent_indent="    ")
    verdict = "PASS" if report.passed else "FAIL"
    of_api = f" of the {report.api} API" if outside else ""
    lines.append(
        f"result: {verdict}, {report.n_passed} of {len(report.graded_functions)} functions"
        f"{of_api} pass{'' if not report.policy else ', import policy violated'} "
        f"({report.seconds:.1f} s)"
    )
    return "\n".join(lines)


def _run_line(report: SubmissionReport) -> str:
    """How the run was isolated, and its seed (``--seed`` repeats the run exactly)."""
    isolation = describe_isolation(report.isolation, report.network)
    return f"sandbox: {isolation}; seed {report.seed} (--seed {report.seed} repeats this run)"


def _reproduce_line(report: SubmissionReport) -> str:
    """How to see a failing case in full (``--case``): the first failing hidden case if any
    (its values exist only for this run's seed), else the first failing case; "" if none."""
    failing = [f for name in CONTRACT_FUNCTIONS for f in report.functions[name].findings]
    hidden = [f.hidden_cases[0] for f in failing if f.hidden_cases]
    case = hidden[0] if hidden else (failing[0].cases[0] if failing else None)
    if case is None:
        return ""
    api = f" --api {report.api}" if report.api != "tinycnn" else ""
    seed = f" --seed {report.seed}" if hidden else ""
    # A name clean_name escaped is not the file's name: the command says FILE instead.
    file = "FILE" if "\\" in report.submission else shlex.quote(report.submission)
    return f"one case in full: tinycnn check {file}{api} --case {case}{seed}"


def report_json(report: SubmissionReport) -> dict:
    """The ``--json`` document: ``passed``, ``functions`` (all nine names), ``functions_graded``
    (those of the layer API, the ones ``passed`` counts), ``policy``.

    Each function has ``status``, ``max_rel_error``, ``detail`` (every finding in words, one per
    line, hints included: the text Gradescope's test output carries too) and ``findings``: one
    dict per output and kind of failure (`tinycnn.grading.grader.Finding.as_json`: ``output``,
    ``kind``, ``count``, ``total``, ``cases``, ``by_dtype``, ``by_tag``, ``first_case``,
    ``message``, ``hint``, ``hint_ids``), float64 value failures first.

    Also carries ``submission``, ``training`` (None unless every function passed),
    ``seconds``, ``chosen``: which file was graded when chosen among several ("" otherwise),
    and ``cases_set_aside``: how many cases a course API (``api``) sets aside and
    why, on one line ("" for none); ``busy_timeouts``: what ran out of wall-clock time with
    processor time to spare, and ``regraded_alone``: in folder mode, what had when the
    submission was graded beside its classmates, if it was then graded again alone (its verdict
    is the lone run's). Every value is JSON-safe: a non-finite error is ``null``.
    """
    functions = {
        name: {
            "status": result.status,
            "max_rel_error": _json_number(result.max_rel_error),
            "detail": result.full_detail,
            "findings": [finding.as_json() for finding in result.findings],
        }
        for name, result in report.functions.items()
    }
    training = None
    if report.training is not None:
        t = report.training
        training = {
            "status": t.status,
            "setup": t.setup,
            "val_accuracy": _json_number(t.val_accuracy),
            "reference_val_accuracy": _json_number(t.reference_val_accuracy),
            "max_param_rel_error": _json_number(t.max_param_rel_error),
            "detail": t.detail,
        }
    return {
        "passed": report.passed,
        "functions": functions,
        "functions_graded": list(report.graded_functions),
        "policy": list(report.policy),
        "submission": report.submission,
        "training": training,
        "seconds": round(report.seconds, 3),
        "api": report.api,
        "graded_as": dict(report.graded_as),
        "set_aside": list(report.set_aside),
        "chosen": report.chosen,
        "cases_set_aside": report.cases_set_aside,
        "isolation": report.isolation,
        "network": report.network,
        "seed": report.seed,
        "busy_timeouts": list(report.busy_timeouts),
        "regraded_alone": list(report.regraded_alone),
    }


#: Gradescope's visibility settings (results.json ``visibility``), most open first.
VISIBILITIES = ("visible", "after_published", "after_due_date", "hidden")


def gradescope_results(
    report: SubmissionReport, *, visibility: str = "visible", max_score: float = 1.0
) -> dict:
    """Gradescope's ``results.json``: one test per contract function of the submission's layer
    API (``report.api``), ``max_score`` points each.

    Field names are Gradescope's autograder specification's (gradescope-autograders.readthedocs.io,
    "Autograder Specifications", output format): top level ``score``, ``execution_time``
    (seconds), ``output``, ``output_format``, ``test_output_format``, ``visibility`` and
    ``tests``; each test ``name``, ``score``, ``max_score``, ``status`` ("passed" or "failed"),
    ``output``, ``output_format`` and ``visibility``. A test's output is the same complete
    feedback as ``--json``'s ``detail`` (every finding, with its hint). A violated import policy
    sets the total ``score`` to 0 (its own test says why); the training run is an
    informational test worth 0 points. A contract function the API does not have
    (deeplearning.ai's has no ReLU, dense layer or loss) is no test: its points could never be
    earned; the output names it.

    Parameters
    ----------
    report : SubmissionReport
    visibility : str
        One of `VISIBILITIES`, for every test and the submission.
    max_score : float
        Points of each contract function.
    """
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility must be one of {VISIBILITIES}, not {visibility!r}")

    def test(name: str, passed: bool, points: float, worth: float, output: str) -> dict:
        return {
            "name": name,
            "score": points,
            "max_score": worth,
            "status": "passed" if passed else "failed",
            "output": output,
            "output_format": "text",
            "visibility": visibility,
        }

    graded = report.graded_functions
    outside = [name for name in CONTRACT_FUNCTIONS if name not in graded]
    tests = []
    for name in graded:
        result = report.functions[name]
        passed = result.status == "pass"
        if passed:
            output = f"pass (max relative error {_error_text(result.max_rel_error)})"
        else:
            output = f"{result.status}: {result.full_detail}"
        tests.append(test(name, passed, max_score if passed else 0.0, max_score, output))
    if report.policy:
        tests.append(
            test(
                "import policy (from scratch: the standard library and NumPy only)",
                False,
                0.0,
                0.0,
                "\n".join(report.policy),
            )
        )
    if report.training is not None and report.training.status != "skipped":
        t = report.training
        accuracy = "-" if t.val_accuracy is None else f"{t.val_accuracy:.3f}"
        tests.append(
            test(
                "training TinyCNN with your ops (information, no points)",
                t.status == "ok",
                0.0,
                0.0,
                f"{t.setup}: validation accuracy {accuracy}, reference run "
                f"{t.reference_val_accuracy:.3f}. {t.detail}",
            )
        )
    score = 0.0 if report.policy else sum(each["score"] for each in tests)
    notes = "".join(f"\n{note}." for note in _reading_notes(report))
    return {
        "score": score,
        "execution_time": round(report.seconds, 3),
        "output": (
            (
                f"{report.n_passed} of {len(graded)} functions of the {report.api} API pass"
                f" (not part of it, not graded: {', '.join(outside)})"
                if outside
                else f"{report.n_passed} of {len(CONTRACT_FUNCTIONS)} contract functions pass"
            )
            + ("; the import policy is violated, so the score is 0." if report.policy else ".")
            + notes
            + f"\n{_run_line(report)}."
            + (f"\n{_reproduce_line(report)}" if _reproduce_line(report) else "")
        ),
        "output_format": "text",
        "test_output_format": "text",
        "visibility": visibility,
        "tests": tests,
    }


# --------------------------------------------------------------------------------------------
# Folder mode
# --------------------------------------------------------------------------------------------

# No wall time here: the summary is a function of the submissions only, the same for any
# --jobs or --scheduler (the --json document keeps each submission's seconds).
SUMMARY_COLUMNS = (
    "submission",
    "passed",
    "functions_passed",
    *CONTRACT_FUNCTIONS,
    "reason",
    "policy",
    "val_accuracy",
    "isolation",
    "network",
    "seed",
    "regraded_alone",
)
#: Characters of `failure_reason` in the folder table and in the CSV (the whole text is in the
#: submission's own table and in --json).
TABLE_REASON, CSV_REASON = 80, 200


def failure_reason(report: SubmissionReport, limit: int = CSV_REASON) -> str:
    """Why a submission does not pass, in one short line of at most ``limit`` characters
    (`clean_text`: no control characters or escapes), ``"none"`` if it passes.

    The first of: the first import-policy violation, without the rule's reason (``import
    policy: import torch (line 8) is not allowed (and 1 more)``); the one cause every graded
    function shares (the file does not compile, its import failed); the first graded function
    that fails other than by being missing (else the first missing one), with its first
    finding (``conv2d_backward: raised ZeroDivisionError: division by zero at line 20...``,
    ``relu_backward: dx: wrong values in 8 of 32 cases``) or its detail; the training run's
    detail.
    """
    if report.passed:
        return "none"
    if report.policy:  # the violation, not why the rule exists (--json has every word)
        more = f" (and {len(report.policy) - 1} more)" if len(report.policy) > 1 else ""
        return clean_text(f"import policy: {report.policy[0].split(': ')[0]}{more}", limit)
    graded = [report.functions[name] for name in report.graded_functions]
    failing = [result for result in graded if result.status != "pass"]
    if not failing:
        training = report.training
        detail = training.detail if training is not None else ""
        status = training.status if training is not None else "not run"
        return clean_text(f"training: {status}" + (f": {detail}" if detail else ""), limit)
    if len({(r.status, r.detail) for r in graded}) == 1:  # one cause for all (import, compile)
        return clean_text(failing[0].detail, limit)
    first = next((r for r in failing if r.status != "missing"), failing[0])
    if first.findings:
        finding = first.findings[0]
        what = finding.message if finding.kind == "raised" else finding.headline.split(" (")[0]
    else:
        what = first.detail
    return clean_text(f"{first.name}: {what}", limit)


def _training_column(report: SubmissionReport) -> str:
    """The CSV's ``val_accuracy``: the accuracy, else why there is none (never empty)."""
    training = report.training
    if training is None:
        return "not run"
    if training.val_accuracy is None:
        return training.status  # skipped, error, timeout
    return f"{training.val_accuracy:.4f}"


def summary_rows(reports: list[SubmissionReport]) -> list[dict]:
    """One row per submission (file name): verdict, each function's status, the reason it
    does not pass, policy, accuracy. No cell is empty (`summary_csv` says what each holds)."""
    rows = []
    for report in reports:
        row = {
            "submission": Path(report.submission).name,
            "passed": report.passed,
            "functions_passed": report.n_passed,
            **{name: report.functions[name].status for name in CONTRACT_FUNCTIONS},
            "reason": failure_reason(report, CSV_REASON),
            "policy": "; ".join(report.policy) or "ok",
            "val_accuracy": _training_column(report),
            "isolation": report.isolation,
            "network": report.network,
            "seed": report.seed,
            "regraded_alone": "; ".join(report.regraded_alone) or "no",
        }
        rows.append(row)
    return rows


def summary_csv(reports: list[SubmissionReport]) -> str:
    """The folder summary as CSV text (columns `SUMMARY_COLUMNS`), one row per submission.

    No cell is empty: ``reason`` is `failure_reason` (``none`` for a passing submission);
    ``policy`` the import-policy violations, ``ok`` for none; ``val_accuracy`` the validation
    accuracy of the training run, else why it has none (``not run``: it runs once every
    function passes, and not at all with --no-train or a course API without the nine;
    ``skipped``, ``error``, ``timeout``); ``regraded_alone`` what ran out of wall-clock time
    beside classmates, ``no`` if it was not graded again alone."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(
        {key: _spreadsheet_safe(value) for key, value in row.items()}
        for row in summary_rows(reports)
    )
    return buffer.getvalue()


def _spreadsheet_safe(value: object) -> object:
    """A cell a spreadsheet will not run: text starting with ``= + - @`` (or a tab or carriage
    return) gets a leading apostrophe, as OWASP advises against CSV injection; control
    characters go."""
    if not isinstance(value, str):
        return value
    value = clean_text(value, 2000)
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _not_passing(report: SubmissionReport) -> str:
    """``fail: conv2d_forward; missing: 7 functions; import policy`` (short, for one line)."""
    parts = []
    for status in ("fail", "error", "timeout", "missing"):
        names = [name for name, r in report.functions.items() if r.status == status]
        if names:
            listed = ", ".join(names) if len(names) <= 3 else f"{len(names)} functions"
            parts.append(f"{status}: {listed}")
    if report.policy:
        parts.append("import policy")
    return "; ".join(parts) or "-"


def folder_table(reports: list[SubmissionReport]) -> str:
    """One row per submission (by file name): verdict, functions passed, what does not pass
    and why (`failure_reason`, cut to `TABLE_REASON` characters).

    A markdown table from the project's one renderer (:func:`tinycnn.markdown.markdown_table`),
    then the count of passing submissions.
    """
    from tinycnn.markdown import markdown_table  # pandas: imported in folder mode only

    rows = [
        {
            "submission": Path(report.submission).name,  # clean_name: told apart, uncut
            "result": "PASS" if report.passed else "FAIL",
            "passed": f"{report.n_passed}/{len(report.graded_functions)}",
            "not passing": _not_passing(report),
            "first reason": "-" if report.passed else failure_reason(report, TABLE_REASON),
        }
        for report in reports
    ]
    n_passed = sum(r.passed for r in reports)
    table = markdown_table(rows, align={"passed": "right"})
    # The sandbox's line from a submission that ran in it (a checker failure's report did not).
    ran = [r for r in reports if r.network != "unknown"] or reports
    run = f"\n{_run_line(ran[0])}" if reports else ""
    again = [
        f"{Path(r.submission).name} ({', '.join(r.regraded_alone)})"
        for r in reports
        if r.regraded_alone
    ]
    if again:
        run += (
            "\nre-graded alone because the machine was busy (their verdicts are the lone runs'): "
            + "; ".join(again)
        )
    return f"{table}\n{n_passed} of {len(reports)} submissions pass{run}"
