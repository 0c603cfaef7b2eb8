"""The "from scratch" import policy of ``tinycnn check``.

By default a submission may import only NumPy and the standard library's ``math`` (plus
``__future__`` and ``typing``, which only affect annotations). Anything else, and in particular
torch, tensorflow, jax or this project's own packages, fails the submission, with the import named
in the report's ``policy`` list; ``--allow-import NAME`` lifts the rule for one top-level name.

The policy is enforced twice:

- here, statically: every ``import``/``from ... import`` statement and every literal
  ``__import__("x")`` / ``importlib.import_module("x")`` call in the file, wherever it sits, is
  listed with its line, even inside a function the checker never reaches;
- in the child process, at run time (:class:`tinycnn.grading.child.ImportGuard`): a forbidden
  import raises ``ImportError`` there, so a forbidden library is never actually used, and
  imports assembled at run time are caught too.
"""

from __future__ import annotations

import ast
import threading
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "DEFAULT_ALLOWED",
    "ImportUse",
    "allowed_modules",
    "policy_messages",
    "scan_imports",
]

#: What a submission may import without ``--allow-import``.
DEFAULT_ALLOWED = ("numpy", "math")
#: Language features, not libraries: they compute nothing, so they are always allowed.
ALWAYS_ALLOWED = ("__future__", "typing")

# Why some names are singled out in messages.
FRAMEWORKS = ("torch", "tensorflow", "jax", "keras", "scipy", "sklearn", "cupy", "numba")
PROJECT_PACKAGES = ("reference", "torch_impl", "parity_tests", "reports", "tinycnn")


#: One parse at a time: folder mode grades on threads (see `scan_imports`).
_PARSE_LOCK = threading.Lock()


@dataclass(frozen=True)
class ImportUse:
    """One import found in a submission.

    Attributes
    ----------
    module : str
        Top-level module name (``"torch"`` for ``import torch.nn``); ``"."`` for a relative import.
    line : int or None
        Line in the submission (None when only seen at run time without a line).
    where : str or None
        The place in the student's terms, when a line number alone would not say it
        (``"cell 3, line 2"`` in a notebook, ``"utils.py, line 4"`` in a helper module).
    """

    module: str
    line: int | None
    where: str | None = None


def allowed_modules(extra: Iterable[str] = ()) -> frozenset[str]:
    """Top-level modules a submission may import: the defaults plus ``--allow-import`` names."""
    return (
        frozenset(DEFAULT_ALLOWED)
        | frozenset(ALWAYS_ALLOWED)
        | {name.strip().partition(".")[0] for name in extra if name.strip()}
    )


def _literal_argument(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def scan_imports(source: str) -> list[ImportUse]:
    """Every import in ``source``, in line order.

    Raises
    ------
    SyntaxError
        If the source does not parse (the caller reports that instead).
    """
    uses = []
    with _PARSE_LOCK:  # CPython 3.11's AST constructor is not safe on several threads at once
        tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            uses += [ImportUse(alias.name.partition(".")[0], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                uses.append(ImportUse("." * node.level + (node.module or ""), node.lineno))
            else:
                uses.append(ImportUse((node.module or "").partition(".")[0], node.lineno))
        elif isinstance(node, ast.Call):
            function = node.func
            name = (
                function.id
                if isinstance(function, ast.Name)
                else (function.attr if isinstance(function, ast.Attribute) else None)
            )
            if name in ("__import__", "import_module"):
                target = _literal_argument(node)
                if target is not None:
                    uses.append(ImportUse(target.partition(".")[0], node.lineno))
    return sorted(uses, key=lambda use: (use.line or 0, use.module))


def _why(module: str) -> str:
    if module.startswith("."):
        return "relative imports cannot work in a single-file submission"
    if module in PROJECT_PACKAGES:
        return "it is this project's own package: a submission is written from scratch"
    if module in FRAMEWORKS:
        return "a submission is written from scratch, with NumPy only"
    return "a submission may import only numpy and math"


def policy_messages(uses: Iterable[ImportUse], allowed: frozenset[str]) -> list[str]:
    """One message per forbidden module (first line it appears on), in line order.

    Examples
    --------
    >>> message, = policy_messages([ImportUse("torch", 3)], allowed_modules())
    >>> message.split(":")[0]
    'import torch (line 3) is not allowed'
    """
    first: dict[str, ImportUse] = {}
    for use in uses:
        if use.module in allowed:
            continue
        known = use.line is not None or use.where is not None
        if use.module not in first or (
            first[use.module].line is None and first[use.module].where is None and known
        ):
            first[use.module] = use
    messages = []
    for module, use in sorted(first.items(), key=lambda item: (item[1].line or 0, item[0])):
        place = use.where or (f"line {use.line}" if use.line is not None else None)
        where = f" ({place})" if place else ""
        lift = "" if module.startswith(".") else f" (--allow-import {module} lifts this)"
        messages.append(f"import {module}{where} is not allowed: {_why(module)}{lift}")
    return messages
