"""``tinycnn check FILE --case ID``: one case in full, and a NumPy-only snippet that repeats it.

For each contract function that takes the case, `case_report` prints the inputs, the expected
and the returned outputs (arrays of up to `FULL_SIZE` entries in full, larger ones summarised:
shape, dtype, memory layout, range and NumPy's abbreviated print), the verdict with its findings,
and `snippet`: Python code that needs only NumPy and the student's function, rebuilds the exact
inputs (same bits, same memory layout) and expected outputs, calls the function and prints which
outputs differ, to paste into a notebook below the cell that defines the function.
"""

from __future__ import annotations

import base64
import textwrap

import numpy as np

from tinycnn.grading.channel import clean_name
from tinycnn.grading.grader import HIDDEN_PREFIX, CaseRun, output_names
from tinycnn.grading.sandbox import ForeignValue
from tinycnn.parity_tests.tolerances import tolerance

__all__ = ["FULL_SIZE", "case_report", "snippet"]

#: Arrays up to this many entries are printed (and written into the snippet) in full.
FULL_SIZE = 36

_LAYOUT_WORDS = {
    "fortran": "Fortran order",
    "transposed": "axes permuted in memory",
    "negative-stride": "reversed view (negative strides)",
    "sliced": "strided slice of a larger array",
}


def _layout(array: np.ndarray) -> str:
    if array.flags.c_contiguous:
        return "C-contiguous"
    if array.flags.f_contiguous:
        return "Fortran order"
    return f"not contiguous, strides {array.strides}"


def _show(name: str, value: object) -> list[str]:
    """An array in words and numbers: in full when small, summarised when large."""
    if isinstance(value, ForeignValue):
        return [f"{name}: {value.type_name}"]
    if isinstance(value, tuple):
        return [f"{name}: a tuple of {len(value)}"] + [
            line for i, item in enumerate(value) for line in _show(f"{name}[{i}]", item)
        ]
    if not isinstance(value, (np.ndarray, np.generic, float, int)):
        return [f"{name}: {type(value).__name__}"]
    array = np.asarray(value)
    head = f"{name}: shape {array.shape}, {array.dtype}"
    if isinstance(value, np.ndarray) and array.ndim > 1:
        head += f", {_layout(array)}"
    if type(value) in (float, int):
        head += f" (a Python {type(value).__name__})"
    if array.size > FULL_SIZE and array.dtype.kind in "fiu":
        finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array
        if finite.size:
            head += f", min {finite.min():.6g}, max {finite.max():.6g}"
        if finite.size < array.size:
            head += f", {array.size - finite.size} NaN/inf"
    with np.printoptions(precision=6, linewidth=96):
        if array.size <= FULL_SIZE:
            body = np.array2string(array)
        else:
            first = np.array2string(array.reshape(-1)[:6])[1:-1]
            body = f"first entries in C order: {first} ..."
    return [head] + ["    " + line for line in body.splitlines()]


def case_report(
    runs: list[CaseRun], submission: str, api: str = "tinycnn", seed: int | None = None
) -> str:
    """The text ``tinycnn check FILE --case ID`` prints for `grade_case`'s runs (``seed``: the
    run's, named in the first line when the case is a hidden one).

    With another ``api`` than the contract's, the snippet builds the contract function from the
    student's course functions with the checker's own adapter (:mod:`tinycnn.grading.adapters`,
    NumPy only), and a note says so (README, "Course APIs").
    """
    case = runs[0].case
    command = f"tinycnn check {clean_name(submission)} --case {case.id}"
    if seed is not None and case.id.startswith(HIDDEN_PREFIX):
        command += f" --seed {seed}"
    lines = [command, "", f"case: {case.describe()}"]
    lines += ["", "inputs:"]
    for name, array in runs[0].inputs.items():
        lines += ["  " + line for line in _show(name, array)]
    for run in runs:
        lines += ["", f"{run.function} ({run.direction}): {run.result.status.upper()}"]
        lines += ["  expected:"]
        for name, array in run.expected.items():
            lines += ["    " + line for line in _show(name, array)]
        if run.returned is not None:
            lines += ["  returned:"]
            names = output_names(run.case, run.direction)
            values = run.returned
            if len(names) > 1 and isinstance(values, tuple) and len(values) == len(names):
                for name, value in zip(names, values, strict=True):
                    lines += ["    " + line for line in _show(name, value)]
            else:
                lines += ["    " + line for line in _show(names[0], values)]
        if run.result.detail:
            lines += ["  verdict:"]
            for paragraph in run.result.full_detail.split("\n"):
                lines += textwrap.wrap(
                    paragraph, width=100, initial_indent="    ", subsequent_indent="      "
                )
        lines += ["", "  to repeat this call in a notebook (NumPy only):"]
        if api != "tinycnn":
            lines += [
                f"  (its first lines build {run.function} from your --api {api} functions with "
                f"the checker's adapter, which calls them the way the README's table for {api} "
                "shows)"
            ]
        lines += [""]
        lines += ["    " + line if line else "" for line in snippet(run).splitlines()]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The snippet
# --------------------------------------------------------------------------------------------


def _literal(array: np.ndarray) -> str:
    """Python source that rebuilds ``array``'s values and dtype exactly (C order)."""
    array = np.asarray(array)
    dtype = array.dtype.str
    if array.size <= FULL_SIZE:
        values = [
            repr(float(v)) if array.dtype.kind == "f" else repr(int(v)) for v in array.reshape(-1)
        ]
        values = [v if v not in ("nan", "inf", "-inf") else f"float({v!r})" for v in values]
        return f"np.array([{', '.join(values)}], dtype={dtype!r}).reshape({array.shape})"
    data = base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")
    return f"_array({data!r}, {dtype!r}, {array.shape})"


def _relayout(name: str, case_layout: str, ndim: int) -> str | None:
    """A line giving ``name`` the case's memory layout (as `parity_tests.cases.with_layout`)."""
    every = ", ".join(["::-1"] * ndim)
    if case_layout == "fortran":
        return f"{name} = np.asfortranarray({name})"
    if case_layout == "transposed" and ndim == 4:
        return f"{name} = np.ascontiguousarray({name}.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)"
    if case_layout == "transposed" and ndim == 2:
        return f"{name} = np.ascontiguousarray({name}.T).T"
    if case_layout == "negative-stride" and ndim:
        return f"{name} = np.ascontiguousarray({name}[{every}])[{every}]"
    if case_layout == "sliced" and ndim:
        return f"{name} = _sliced({name})"
    return None


_HELPERS = {
    "_array": """def _array(data, dtype, shape):
    return np.frombuffer(base64.b64decode(data), dtype=dtype).reshape(shape).copy()""",
    "_sliced": """def _sliced(a):  # every other element of a larger array (the rest NaN or max int)
    fill = np.nan if a.dtype.kind == "f" else np.iinfo(a.dtype).max
    big = np.full(tuple(2 * n for n in a.shape), fill, dtype=a.dtype)
    big[(slice(None, None, 2),) * a.ndim] = a
    return big[(slice(None, None, 2),) * a.ndim]""",
}

_CALLS = {
    ("conv2d", "forward"): "{f}(x, w, b, stride={stride}, padding={padding})",
    ("conv2d", "backward"): "{f}(dy, x, w, b, stride={stride}, padding={padding})",
    ("maxpool2d", "forward"): "{f}(x, size={size}, stride={stride})",
    ("maxpool2d", "backward"): "{f}(dy, x, size={size}, stride={stride})",
    ("relu", "forward"): "{f}(x)",
    ("relu", "backward"): "{f}(dy, x)",
    ("linear", "forward"): "{f}(x, w, b)",
    ("linear", "backward"): "{f}(dy, x, w, b)",
    ("softmax_cross_entropy", "forward"): "{f}(logits, labels)",
}


def snippet(run: CaseRun) -> str:
    """NumPy-only code that rebuilds the case, calls the student's function and compares.

    The comparison is the checker's: shape, dtype, then ``max|got - expected| <= atol + rtol *
    max|expected|`` with the tolerance table's entry for the op and dtype.
    """
    case = run.case
    body: list[str] = []
    if run.api != "tinycnn":
        # The student's functions have the course's names: call them through the checker's
        # adapter (NumPy only), as the grading did.
        body += [
            f"# {run.function}: your {run.api} functions, called as tinycnn check --api "
            f"{run.api} calls them",
            "import sys",
            "from tinycnn.grading.adapters import contract_namespace",
            f"{run.function} = contract_namespace({run.api!r}, sys.modules['__main__'])[0]"
            f".{run.function}",
        ]
    helpers = set()
    for name, array in run.inputs.items():
        literal = _literal(array)
        helpers.update(h for h in _HELPERS if literal.startswith(h + "("))
        body.append(f"{name} = {literal}")
        relayout = _relayout(name, case.layout, np.ndim(array))
        if relayout:
            helpers.update(h for h in _HELPERS if h + "(" in relayout)
            body.append(relayout)
    names = output_names(case, run.direction)
    call = _CALLS[(case.op, run.direction)].format(
        f=run.function, stride=case.stride, padding=case.padding, size=case.size
    )
    body.append(f"{', '.join(names)} = {call}" if len(names) > 1 else f"{names[0]} = {call}")
    tol = tolerance(case.op, case.np_dtype)
    for name, array in run.expected.items():
        literal = _literal(array)
        helpers.update(h for h in _HELPERS if literal.startswith(h + "("))
        body.append(f"expected_{name} = {literal}")
    checks = ", ".join(f"({name!r}, {name}, expected_{name})" for name in names)
    body += [
        f"for name, got, want in [{checks}]:",
        "    got = np.asarray(got)",
        "    if got.dtype != want.dtype:",
        '        print(name, "DIFFERS: dtype", got.dtype, "expected", want.dtype)',
        "    if got.shape != want.shape:",
        '        print(name, "DIFFERS: shape", got.shape, "expected", want.shape)',
        "        continue",
        "    got, want = got.astype(np.float64), want.astype(np.float64)",
        "    same = (got == want) | (np.isnan(got) & np.isnan(want))  # equal infinities, NaN",
        "    with np.errstate(invalid='ignore'):  # inf - inf where the infinities differ",
        "        worst = np.max(np.where(same, 0.0, np.abs(got - want)), initial=0.0)",
        "    scale = np.max(np.abs(want[np.isfinite(want)]), initial=0.0)",
        f"    allowed = {tol.atol!r} + {tol.rtol!r} * scale",
        '    print(name, "ok" if worst <= allowed else "DIFFERS", "max |got - expected|", worst)',
    ]
    head = [
        f"# tinycnn check, case {case.id}: {case.describe()}",
        f"# Run below the cell that defines {run.function}.",
        *(["import base64"] if "_array" in helpers else []),
        "import numpy as np",
        "",
    ]
    head += [line for name in sorted(helpers) for line in (*_HELPERS[name].splitlines(), "")]
    return "\n".join(head + body) + "\n"
