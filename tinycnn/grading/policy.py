"""The "from scratch" import rule of ``tinycnn check``, and reading a submission as Python does.

The rule is a deny-list: a submission may import the standard library and NumPy; the frameworks
(torch, tensorflow, jax, scipy...), this project's own packages and anything else installed are
denied (``--allow-import NAME`` lifts the rule for one name). A violation fails the submission
and is reported with its line, but every function is still graded, so the feedback is complete.

The rule is enforced in three places:

- the sandbox (:mod:`tinycnn.grading.sandbox`): with bubblewrap, only the Python runtime and
  NumPy exist inside, so a denied module cannot be loaded whatever the code does (``exec``,
  importlib's internals, reading a file from disk);
- the child (:class:`tinycnn.grading.child.DenyFinder`): a denied import gives a placeholder
  module that raises when used, so the functions that do not use it are still graded, and the
  import is recorded with its line;
- here, statically: every ``import``/``from ... import`` statement and every literal
  ``__import__("x")`` / ``importlib.import_module("x")`` call in the file, wherever it sits.

`read_source` decodes a file exactly as Python does (a UTF-8 byte-order mark, a PEP 263 coding
line) and refuses encodings in which a reader and Python can see different code (UTF-7 turns
``+AAo-`` into a newline inside what looks like a comment).
"""

from __future__ import annotations

import ast
import codecs
import contextlib
import contextvars
import io
import re
import sys
import threading
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_ALLOWED",
    "ImportUse",
    "ParseBudgetSpent",
    "SourceTooLarge",
    "UnsafeEncoding",
    "allowed_modules",
    "check_size",
    "import_uses",
    "parse_budget",
    "parse_source",
    "policy_messages",
    "read_source",
    "refuse_unsafe_encoding",
    "scan_imports",
    "spend_parse_budget",
    "syntax_reason",
]

#: Besides the standard library (``sys.stdlib_module_names``).
DEFAULT_ALLOWED = ("numpy",)

# Why some names are singled out in messages.
FRAMEWORKS = (
    "torch",
    "torchvision",
    "tensorflow",
    "keras",
    "jax",
    "jaxlib",
    "flax",
    "scipy",
    "sklearn",
    "skimage",
    "cupy",
    "numba",
    "mxnet",
    "paddle",
    "chainer",
    "theano",
    "autograd",
    "tinygrad",
    "mlx",
    "cv2",
)
PROJECT_PACKAGES = ("tinycnn", "reference", "torch_impl", "parity_tests", "reports")


_PARSE_LOCK = threading.Lock()

#: Most words, symbols and line breaks (`_TOKEN`) of one text the checker parses. CPython's
#: syntax tree takes about 1 to 2 kB of memory per token (a list literal of 8 million ``1,``
#: inside the 16 MiB read budget took the checker 8.7 GB and a minute: attacker, session 6,
#: F12); the reference ops are about 13,000 (line breaks counted), so 200,000 (at most about
#: 400 MB and 1.5 s measured) leaves any real file room.
MAX_TOKENS = 200_000
# A word (name, number), one other non-space character, or a line break: at least as many as
# Python's tokens but INDENT/DEDENT (at most two per counted line break), so the count bounds
# the parser's work and the tree (a run of symbols counted as one let ``[[],[],...]`` through
# at 1.8 GB, attacker session 6, G5; line breaks not counted let 41 files of 199,990 lines
# ``a`` each through, 400,000 tokens apiece to the parser, 229 s of the checker's processor
# time: attacker session 7b, F1), more in strings and comments. Counting is fast (C regex) and
# stops at the limit.
_TOKEN = re.compile(r"\w+|[^\w\s]|\r\n?|\n")
_TOKEN_BYTES = re.compile(rb"\w+|[^\w\s]|\r\n?|\n")


#: What is left of the `parse_budget` in force in this thread (a one-item list), if any.
_BUDGET: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "tinycnn_parse_budget", default=None
)


@contextlib.contextmanager
def parse_budget(tokens: int):
    """Within it (in this thread), every `parse_source` spends its text's words, symbols and
    line breaks (`_TOKEN`) from ``tokens``, and raises `ParseBudgetSpent` instead of parsing
    once they are spent: a bound on the checker's parsing of all the texts of one upload
    (`MAX_TOKENS` bounds one text; 82 files each just under it took the checker two minutes to
    parse once each: attacker session 7b, F1)."""
    reset = _BUDGET.set([tokens])
    try:
        yield
    finally:
        _BUDGET.reset(reset)


class ParseBudgetSpent(Exception):
    """The texts parsed within one `parse_budget` hold more words, symbols and line breaks in
    all than it allows (not a SyntaxError: no one text is at fault)."""


def spend_parse_budget(tokens: int, what: str) -> None:
    """Spend ``tokens`` of the `parse_budget` in force, if any, on reading ``what`` (work that
    is not `parse_source`'s but grows as parsing does, such as a notebook's cells).

    Raises
    ------
    ParseBudgetSpent
        Fewer than ``tokens`` are left (nothing is spent then).
    """
    budget = _BUDGET.get()
    if budget is None:
        return
    if tokens > budget[0]:
        raise ParseBudgetSpent(f"more than {budget[0]:,} words and symbols left to read ({what})")
    budget[0] -= tokens


def parse_source(source: str | bytes) -> ast.Module:
    """``ast.parse(source)`` as the checker parses a student's text: one thread at a time
    (CPython 3.11's AST constructor is not thread-safe), never more than `MAX_TOKENS`, and
    within the `parse_budget` in force, if any.

    Raises
    ------
    ParseBudgetSpent
        The text's words, symbols and line breaks are more than what is left of the
        `parse_budget` in force (nothing is spent then).
    SyntaxError
        The source does not parse, or is nested too deeply for the parser (``RecursionError``,
        ``MemoryError``, as Python would not run it either), or is too large for the checker to
        read (`SourceTooLarge`: more than `MAX_TOKENS` words and symbols).
    ValueError
        NUL bytes in the source.
    """
    count = check_size(source)
    if _BUDGET.get() is not None:
        spend_parse_budget(_count(source, MAX_TOKENS) if count is None else count, "a text")
    with _PARSE_LOCK:
        try:
            return ast.parse(source)
        except (RecursionError, MemoryError) as error:
            raise SyntaxError(
                f"nested too deeply for Python to compile ({type(error).__name__})"
            ) from None


def check_size(source: str | bytes) -> int | None:
    """Raise `SourceTooLarge` (a SyntaxError) if ``source`` has more than `MAX_TOKENS` words,
    symbols and line breaks (`_TOKEN`); else return how many it has, or None for a text too
    short to have too many (not counted)."""
    if len(source) <= MAX_TOKENS:  # every token is at least one character
        return None
    count = _count(source, MAX_TOKENS)
    if count > MAX_TOKENS:
        raise SourceTooLarge(
            f"more than {MAX_TOKENS:,} words and symbols, more than the checker reads "
            f"(the reference layer file has about 13,000)"
        )
    return count


def _count(source: str | bytes, limit: int) -> int:
    """``source``'s words, symbols and line breaks (`_TOKEN`), counted up to ``limit + 1``."""
    pattern = _TOKEN_BYTES if isinstance(source, bytes) else _TOKEN
    count = 0
    for count, _ in enumerate(pattern.finditer(source), start=1):
        if count > limit:
            break
    return count


def syntax_reason(message: str, line: int | None) -> str:
    """A SyntaxError's message (``error.msg``, raised at ``line``) for a report that names the
    line itself: without the tokenizer's "(detected at line N)" when N is that same line."""
    return message.removesuffix(f" (detected at line {line})") if line else message


class SourceTooLarge(SyntaxError):
    """The text has more than `MAX_TOKENS` words and symbols: the checker does not parse it."""


class UnsafeEncoding(ValueError):
    """The file declares a source encoding that can hide code from a reader."""


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
    """Top-level modules a submission may import: the standard library, NumPy and ``extra``."""
    return (
        frozenset(sys.stdlib_module_names)
        | frozenset(DEFAULT_ALLOWED)
        | {name.strip().partition(".")[0] for name in extra if name.strip()}
    )


def _transparent(encoding: str) -> bool:
    """Whether every byte of a file in ``encoding`` means one character, ASCII bytes their ASCII
    selves: then what a reader sees is what Python runs."""
    name = codecs.lookup(encoding).name
    if name == "utf-8":
        return True
    try:
        ascii_ok = bytes(range(128)).decode(name) == "".join(map(chr, range(128)))
        one_each = len(bytes(range(256)).decode(name, errors="replace")) == 256
    except (LookupError, UnicodeError, TypeError):
        return False
    return ascii_ok and one_each


def read_source(path: str | Path) -> bytes:
    """The file's bytes, checked to decode as Python would decode them.

    Raises
    ------
    OSError
        If the file cannot be read.
    UnsafeEncoding
        For a coding line naming an encoding that can show a reader different code than Python
        runs (UTF-7, UTF-16, multi-byte Asian codecs...).
    SyntaxError
        For an unknown encoding or bytes that do not decode (as Python reports them).
    """
    data = Path(path).read_bytes()
    refuse_unsafe_encoding(data)
    return data


def refuse_unsafe_encoding(data: bytes) -> None:
    """Raise `UnsafeEncoding` if the source's coding line names an encoding that can show a
    reader other code than Python runs (see `read_source`)."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    if not _transparent(encoding):
        raise UnsafeEncoding(
            f"the file declares the source encoding {encoding!r}, in which a reader and Python "
            f"can see different code; save it as UTF-8 and remove the coding line"
        )


def _literal_argument(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def scan_imports(source: str | bytes) -> list[ImportUse]:
    """Every import in ``source`` (bytes are decoded as Python does), in line order.

    Raises
    ------
    SyntaxError
        If the source does not parse (the caller reports that instead), including source nested
        too deeply for the parser (Python raises RecursionError or MemoryError for
        ``1+1+...+1`` with thousands of terms, or ``------1``; it would not run such a file).
    """
    return import_uses(parse_source(source))


def import_uses(tree: ast.AST) -> list[ImportUse]:
    """Every import in a parsed module ``tree``, in line order, as `scan_imports` reads them
    (for a tree already parsed: :attr:`tinycnn.grading.submission.SourceFile.outline`)."""
    uses = []
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
        return (
            "a relative import must land in a package (a sub-folder) of the submission, and "
            "this one does not: a file at the top of the submission, or a single file, has no "
            "package"
        )
    if module in PROJECT_PACKAGES:
        return "it is this project's own package: a submission is written from scratch"
    if module in FRAMEWORKS:
        return "a submission is written from scratch, with NumPy and the standard library only"
    return "only the standard library and NumPy are available to a submission"


def policy_messages(uses: Iterable[ImportUse], allowed: frozenset[str]) -> list[str]:
    """One message per denied module (first line it appears on), in line order.

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
