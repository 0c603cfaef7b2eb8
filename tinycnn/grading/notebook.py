"""Turn a Jupyter notebook into the Python module ``tinycnn check`` grades, without running it.

A notebook assignment mixes the student's functions with test cells, prints, plots and shell
commands. The checker grades the *definitions* only, so this module reads the notebook with
`nbformat` (JSON only: nothing in the notebook is executed here) and keeps, from the top level
of every code cell, in notebook order:

- ``def`` / ``async def`` / ``class`` statements (with their decorators);
- ``import`` and ``from ... import`` statements of the standard library and of the modules the
  import rule allows (NumPy, ``--allow-import`` names). An import of a module the rule refuses
  by name (torch, this project...) is kept when the kept code reads a name it binds from the
  module's globals (``F.relu`` in a function; a local or parameter ``F`` is not a read of
  ``import torch.nn.functional as F``), so that the rule reports it at its cell and line, and
  set aside otherwise (``import torch`` for the notebook's own test cells, which are never
  run). An import of the student's own modules (a folder's ``cs231n/``) follows the same rule:
  kept only when the kept code reads a name it binds (a star import: a name that nothing kept
  binds), so the course's ``from cs231n.data_utils import get_CIFAR10_data`` of a test cell
  never runs. Imports of anything else (a notebook's ``matplotlib``, ``h5py`` or the course's
  ``public_tests``) are set aside.
  One statement naming both (``import numpy as np, matplotlib.pyplot as plt``) keeps the names
  it may (``import numpy as np``);
- assignments of constant expressions (`_value_names`): ``EPS = 1e-8``, ``SIZES = (2, 3)``,
  ``conv = conv_forward``, ``EPS, SCALE = 1e-8, 0.5``, ``LIMIT = 4 * 2**20``,
  ``_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))`` (names, or tuples and lists
  of names, given literals, operators over them, attributes and calls of the few pure
  constructors in `PURE_CALLS`, and names the kept code binds above; a call of anything else is
  code: ``x_ref = x`` after a set-aside ``x = np.ones(3)`` is set aside too,
  since it would fail when the module is imported, and the report names it and why; after a
  kept star import, ``from math import *``, any name may be bound: ``NEG_FILL = inf`` is kept).

Everything else at the top level (test calls, prints, plots, ``np.random.seed(1)``,
``if __name__ == "__main__":`` blocks) is set aside (when a kept definition reads a name only
such a statement binds, the report names that statement at its cell and line and the
definitions that read it: `_missing_bindings`), and so are IPython's magics and shell
commands (``%matplotlib inline``, ``!pip install``, ``np.pad?``, whole ``%%bash`` or
``%%timeit`` cells; ``%%time``, ``%%capture`` and ``%%prun`` cells, whose body IPython runs as
the notebook's own code, lose only their magic line). A line is IPython's only where a
statement can start, as IPython itself decides (found with `tokenize`; a cell that is valid
Python has none): a continuation line ``% (x.shape,)`` inside brackets and a line
``%d items`` inside a string are the student's Python, kept as written. A magic written
without its ``%`` (IPython's automagic: ``cd data``, ``pip install tqdm``) is set aside where
IPython runs it as one: a cell of that one line, not valid Python, whose first word names a
line magic the notebook has not bound to something else (`LINE_MAGICS`); in a longer cell
IPython leaves the line to Python, which refuses it, as Jupyter does.
Markdown and raw cells are ignored. ``from __future__`` imports, legal at the top of any cell
(only there: after other code of the cell they do not compile, as in Jupyter), go to the top of
the module. A code cell that is not valid Python (after its magics are removed), or kept code
that does not compile, makes the notebook "not compile", as a ``.py`` file would, said at its
cell and line.

The result is a `ConvertedNotebook`: the module's source, and for each of its lines the notebook
cell and line it came from, so that messages can say ``cell 7, line 3``. Cells are numbered from
1 in notebook order, markdown cells included (the order ``nbformat`` and ``nbconvert`` use).
"""

from __future__ import annotations

import ast
import builtins
import json
import keyword
import re
import symtable
import sys
import tokenize
import warnings
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from tinycnn.grading.channel import clean_name
from tinycnn.grading.policy import (
    _PARSE_LOCK,
    SourceTooLarge,
    check_size,
    parse_source,
    spend_parse_budget,
    syntax_reason,
)

__all__ = [
    "MAX_SET_ASIDE_NOTES",
    "ConvertedNotebook",
    "NotebookError",
    "bound_names",
    "capped_notes",
    "convert_notebook",
    "notebook_cells",
]

#: Top-level modules the standard library provides (Python 3.10+).
STDLIB_MODULES = frozenset(sys.stdlib_module_names) | {"__future__"}
_BUILTINS = frozenset(dir(builtins))
#: Names every module has besides the builtins.
_MODULE_NAMES = frozenset({"__file__", "__name__", "__builtins__", "__cached__"})

# IPython syntax that is not Python: line magics, shell escapes, help and shell assignments.
_MAGIC_LINE = re.compile(
    r"""^\s*(?:
        [%!]                                   # %matplotlib inline, !pip install numpy
      | [\w.]+\s*\?{1,2}\s*$                    # np.pad?  np.pad??
      | \?{1,2}\s*[\w.]+\s*$                    # ?np.pad
      | \w[\w\s,]*=\s*[%!]                      # files = !ls   t = %timeit -o f()
    )""",
    re.VERBOSE,
)
# Every alternative starts with a character \s cannot match, so the leading \s* never trades
# spaces with what follows: one pass per line (with ``[\w\s,]+=`` a line of 60,000 spaces took
# 26 s: attacker, session 6, F14; now a 1 MB line takes a tenth of a second).


def _is_magic_line(line: str) -> bool:
    """Whether ``line`` looks like an IPython magic, shell escape or help line (`_MAGIC_LINE`)."""
    return _MAGIC_LINE.match(line) is not None


#: IPython's line magics in a Jupyter kernel (``%lsmagic`` of ipykernel 7.4 / IPython 9.18 on
#: Linux, the shell aliases ``ls``, ``cp``, ``mkdir``... included): with automagic, IPython's
#: default, a cell that is one of these names and its arguments, without ``%``, runs the magic.
LINE_MAGICS = frozenset(
    """
    alias alias_magic autoawait autocall automagic autosave bookmark cat cd clear code_wrap
    colors conda config connect_info cp debug dhist dirs doctest_mode ed edit env gui hist
    history killbgscripts ldir less lf lk ll load load_ext loadpy logoff logon logstart logstate
    logstop ls lsmagic lx macro magic mamba man matplotlib micromamba mkdir more mv notebook
    page pastebin pdb pdef pdoc pfile pinfo pinfo2 pip popd pprint precision prun psearch
    psource pushd pwd pycat pylab qtconsole quickref recall rehashx reload_ext rep rerun reset
    reset_selective rm rmdir run save sc set_env subshell sx system tb time timeit unalias
    unload_ext uv who who_ls whos xdel xmode
    """.split()
)
# The first word of a line as IPython's ``split_user_input`` reads it (its "ifun"), and the rest.
_FIRST_WORD = re.compile(r"\s*([\w.*]*)(.*)$", re.DOTALL)


#: Cell magics whose body IPython runs as the notebook's own code, in the notebook's namespace
#: (IPython's ``ExecutionMagics``: ``%%time`` executes the body in the user namespace,
#: ``%%capture`` runs it as a cell, ``%%prun`` profiles it in the user namespace), so what the
#: body defines exists afterwards: the body is read like any cell.
BODY_KEPT_CELL_MAGICS = frozenset({"%%time", "%%capture", "%%prun"})
# Why some other cell magics are set aside (all others: their body is not Python, or not run).
_SET_ASIDE_CELL_MAGICS = {
    "%%timeit": "IPython runs its body inside a function of its own, so what it defines does not "
    "exist afterwards",
}


def _cell_magic(source: str) -> str | None:
    """``"%%time"`` for a cell whose first non-blank line starts with ``%%time``, else None."""
    stripped = source.lstrip()
    return stripped.split(None, 1)[0] if stripped.startswith("%%") else None


class NotebookError(ValueError):
    """The file is not a notebook ``nbformat`` can read (not JSON, not a notebook)."""


@dataclass(frozen=True)
class ConvertedNotebook:
    """A notebook's definitions as one Python module.

    Attributes
    ----------
    source : str
        The module's text: a comment header, then the kept statements cell by cell.
    origins : tuple of (int, int) or None
        For line ``k`` of ``source`` (1-based), ``origins[k - 1]`` is ``(cell, line)`` in the
        notebook (both 1-based), or None for the lines the converter wrote itself.
    set_aside : tuple of str
        What was not kept, in words (one entry per cell), for the report: at most
        `MAX_SET_ASIDE_NOTES` entries, then one saying how many more there were.
    syntax_error : str or None
        ``"cell 4, line 2: invalid syntax"`` when a code cell is not valid Python; the
        module's source then only raises ``SyntaxError("invalid syntax")`` from a line whose
        origin is that cell and line (a helper notebook of a folder fails where it is
        imported, said in the notebook's terms).
    """

    source: str
    origins: tuple[tuple[int, int] | None, ...]
    set_aside: tuple[str, ...] = ()
    syntax_error: str | None = None

    def locate(self, line: int) -> str | None:
        """``"cell 7, line 3"`` for a line of `source`, or None if the converter wrote it."""
        if 1 <= line <= len(self.origins) and self.origins[line - 1] is not None:
            cell, cell_line = self.origins[line - 1]
            return f"cell {cell}, line {cell_line}"
        return None


#: Most notes on what was set aside kept for the report, of one notebook (one per cell with
#: code set aside, per constant set aside, per statement binding a name a kept definition
#: reads) and of an upload's files not read (`capped_notes`): the course notebooks of the tests
#: give about ten; a notebook of 20,000 cells gave 930 KB of them (attacker, session 6b, G4),
#: and 19,000 links 800 KB. Past it, one more note says how many were left out.
MAX_SET_ASIDE_NOTES = 100

#: Most JSON objects and arrays (counted as ``{`` and ``[``, in strings too) of a notebook the
#: checker reads: a real notebook has a few per cell; each costs nbformat's reader and validator
#: a few hundred bytes of memory (a 4 MB file of ``{}`` took 755 MB: attacker, session 6, G3).
MAX_JSON_CONTAINERS = 200_000


#: What reading one cell costs, in the words and symbols of `policy.parse_budget`: nbformat
#: validates each cell twice (reading, upgrading a version 3 notebook) and the reader splits
#: its lines, about 0.15 ms a cell, what parsing 100 words costs. Ten notebooks of 65,900 tiny
#: cells each (3 MB) cost the checker about 100 s of processor time before (attacker session
#: 7c, F4); a course notebook has a few hundred cells.
CELL_TOKENS = 100


def _cell_count(text: str) -> int:
    """How many cells a notebook's JSON holds (version 4 ``cells``; version 3 worksheets'),
    read with the json module before nbformat reads and validates them; 0 if it is not a
    notebook's JSON (nbformat then says why)."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):  # nested too deeply: nbformat says it is no notebook
        return 0
    if not isinstance(document, dict):
        return 0
    cells = document.get("cells")
    if isinstance(cells, list):
        return len(cells)
    sheets = document.get("worksheets")
    if not isinstance(sheets, list):
        return 0
    return sum(
        len(s["cells"]) for s in sheets if isinstance(s, dict) and isinstance(s.get("cells"), list)
    )


def _read(data: bytes, origin: str):
    import nbformat  # imported here: only notebook submissions need it

    containers = data.count(b"{") + data.count(b"[")
    if containers > MAX_JSON_CONTAINERS:
        raise NotebookError(
            f"{origin} is too large: more than {MAX_JSON_CONTAINERS:,} JSON objects and lists, "
            f"more than the checker reads ({containers:,})"
        )
    try:
        text = data.decode("utf-8-sig")  # notebooks are UTF-8 JSON (a BOM is tolerated)
    except UnicodeDecodeError as error:
        raise NotebookError(f"{origin} is not UTF-8 text ({error.reason})") from None
    spend_parse_budget(CELL_TOKENS * _cell_count(text), f"the cells of {origin}")
    with warnings.catch_warnings():
        # nbformat warns about fields it would add (cell ids); reading is all we do.
        warnings.simplefilter("ignore")
        try:
            return nbformat.reads(text, as_version=4)
        except Exception as error:  # NotJSONError, a validation or version error
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise NotebookError(f"{origin} is not a Jupyter notebook ({reason[:200]})") from None


def _at_statement_starts(source: str, replace, until: int) -> list[str]:
    """The cell's lines, each line that begins a statement passed through ``replace``.

    A line begins a statement when Python's tokenizer (`tokenize`, as the running Python
    reads code) has just ended a logical line: not inside brackets, a string (a docstring, any
    triple-quoted string) or after a backslash continuation. ``replace`` sees each such
    line before the tokenizer does (so an IPython-only line is never tokenized) and returns it,
    or the line to tokenize in its place. The scan ends after line ``until`` (0-based), or at a
    tokenizer error (the parser reports it).
    """
    parts = source.split("\n")
    lines = [part + "\n" for part in parts[:-1]] + [parts[-1]]
    # "emitted": tokens (other than INDENT and DEDENT) since the last line was read. A line the
    # tokenizer reads having emitted none for the previous one continues a multi-line string
    # (every complete line yields a token: NL for a blank line or a comment, code's tokens),
    # even when that string opened a statement, the last token before it being a NEWLINE.
    state = {"next": 0, "depth": 0, "last": None, "emitted": 0}

    def readline() -> str:
        index = state["next"]
        if index >= len(lines):
            return ""
        state["next"] += 1
        ended = state["last"] in (None, tokenize.NEWLINE) or (
            state["last"] == tokenize.NL and state["depth"] == 0
        )
        if ended and (index == 0 or state["emitted"]):
            lines[index] = replace(lines[index])
        state["emitted"] = 0
        return lines[index]

    try:
        for token in tokenize.generate_tokens(readline):
            if token.type == tokenize.OP and token.string in "([{":
                state["depth"] += 1
            elif token.type == tokenize.OP and token.string in ")]}":
                state["depth"] = max(0, state["depth"] - 1)
            if token.type not in (tokenize.INDENT, tokenize.DEDENT):
                state["emitted"] += 1
            state["last"] = token.type
            if state["next"] > until:
                break
    except (tokenize.TokenError, SyntaxError):  # SyntaxError: IndentationError, 3.12's errors
        pass
    return "".join(lines).split("\n")


def _automagic(source: str, namespace: set[str]) -> int | None:
    """The index of the line of a cell that IPython runs as a line magic written without ``%``
    (automagic: ``cd data``, ``ls -l``, ``pip install tqdm``), or None.

    As IPython decides it (``InteractiveShell.transform_cell``, then its prefilter's
    ``AssignmentChecker`` and ``AutoMagicChecker``): only in a cell of one line once its leading
    blank lines are dropped (in a longer cell IPython leaves such a line to Python, which
    refuses it, and Jupyter with it); its first word is a line magic's name (`LINE_MAGICS`),
    not followed by ``=`` or ``,`` (an assignment: ``cd = 3``), and no name of the notebook's
    namespace (``namespace``: what the cells above bind), of the builtins or a keyword.
    Asked only of a cell that is not valid Python: one that is (``ls``, ``pwd``) is read as
    Python, and its bare expression is set aside like any code.
    """
    lines = source.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None or len("\n".join(lines[first:]).splitlines()) != 1:
        return None
    name, rest = _FIRST_WORD.match(lines[first]).groups()
    if (
        name not in LINE_MAGICS
        or rest.lstrip().startswith(("=", ","))
        or name in namespace
        or name in _BUILTINS
        or keyword.iskeyword(name)
    ):
        return None
    return first


def _parse_cell(
    source: str, namespace: set[str] = frozenset()
) -> tuple[ast.Module, list[str], bool]:
    """Parse a code cell: its tree, its lines (IPython-only lines replaced by ``pass``, same
    indentation, so line numbers and blocks stay valid) and whether any line was replaced.

    A cell that is valid Python as it is has no magics (no IPython syntax is valid Python).
    Otherwise only a line where a statement can start is IPython's (``%timeit f(x)``, ``!ls``):
    inside brackets ``% (x.shape,)`` is Python's ``%`` operator, and inside a string
    ``%d items`` is text. A cell of one line may also be a magic without its ``%``
    (`_automagic`; ``namespace``: the names the cells above bind, which IPython would not
    take for a magic).

    Raises
    ------
    SyntaxError, ValueError, RecursionError, MemoryError
        If the cell is not valid Python once its magics are replaced (ValueError: NUL bytes;
        RecursionError, MemoryError: nested too deeply to parse).
    """
    try:
        return parse_source(source), source.split("\n"), False
    except (SyntaxError, ValueError) as error:
        failure = error
    magic = _automagic(source, namespace)
    if magic is not None:
        lines = source.split("\n")
        lines[magic] = "pass"  # IPython strips a one-line cell's indentation too
        return parse_source("\n".join(lines)), lines, True
    # Tokenizing is slow in pure Python: only up to the last line that looks like a magic.
    candidates = [i for i, line in enumerate(source.split("\n")) if _is_magic_line(line)]
    if not candidates:
        raise failure
    replaced = False

    def replace(line: str) -> str:
        nonlocal replaced
        if not _is_magic_line(line):
            return line
        replaced = True
        indent = line[: len(line) - len(line.lstrip())]
        return f"{indent}pass" + line[len(line.rstrip("\r\n")) :]

    lines = _at_statement_starts(source, replace, until=candidates[-1])
    return parse_source("\n".join(lines)), lines, replaced


#: Calls a constant's value may make: constructors that only build a value from their
#: arguments (no I/O, no state, nothing of the student's run), by qualified name. NumPy's
#: dtypes, scalar types and ``finfo``/``iinfo`` (``np.dtype("float32")``, ``np.float32(0.5)``,
#: ``np.finfo(np.float64).eps``), ``math``'s pure functions (``math.sqrt(2)``) and the builtin
#: value types (``float("inf")``, ``tuple(...)``, ``frozenset(...)``). Any other call, of the
#: student's functions or a library's (``np.random.seed(1)``, ``np.load(...)``,
#: ``get_CIFAR10_data()``), is code, and is not run.
PURE_CALLS = frozenset(
    [
        f"numpy.{name}"
        for name in (
            "dtype finfo iinfo float16 float32 float64 int8 int16 int32 int64 uint8 "
            "uint16 uint32 uint64 bool_ complex64 complex128"
        ).split()
    ]
    + [f"math.{name}" for name in "sqrt exp log log2 log10 pow floor ceil isqrt".split()]
    + [f"builtins.{name}" for name in "float int bool complex str tuple frozenset".split()]
)


def _qualified(node: ast.expr, modules: dict[str, str], bound: set[str]) -> str | None:
    """``"numpy.dtype"`` for ``np.dtype`` after a kept ``import numpy as np`` (``modules``: the
    names kept imports bind, to what they import), ``"builtins.float"`` for ``float`` when
    nothing kept rebinds it; else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    if node.id in modules:
        return ".".join([modules[node.id], *reversed(parts)])
    if not parts and node.id in _BUILTINS and node.id not in bound:
        return f"builtins.{node.id}"
    return None


def _value_names(
    node: ast.expr, modules: dict[str, str] | None = None, bound: set[str] = frozenset()
) -> set[str] | None:
    """The names a constant expression reads, or None if it is not one.

    A constant expression is a literal (``1e-8``, ``(2, 3)``, ``"max"``), a dotted name
    (``conv``, ``np.pi``, ``EPS``: its first name is read, which kept code must bind), an
    attribute of one (``np.finfo(np.float64).eps``), a tuple,
    list, set or dict of constant expressions, an operator over them (``2**20``, ``-EPS``,
    ``1e-8 * 10``, ``A and B``, ``N > 0``, ``X if FLAG else Y``), a subscript of one by one
    (``SIZES[0]``), or a call of one of `PURE_CALLS` with constant expressions as its arguments
    (``np.dtype(np.float32)``; ``modules``: what the kept imports above bind, ``bound``: the
    names kept code above binds, so that a student's own ``float`` is not the builtin).
    """
    modules = modules or {}
    try:
        ast.literal_eval(node)
        return set()
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    parts: list[ast.expr | None]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        parts = list(node.elts)
    elif isinstance(node, ast.Dict):
        parts = [*node.keys, *node.values]
    elif isinstance(node, ast.BinOp):
        parts = [node.left, node.right]
    elif isinstance(node, ast.UnaryOp):
        parts = [node.operand]
    elif isinstance(node, ast.BoolOp):
        parts = list(node.values)
    elif isinstance(node, ast.Compare):
        parts = [node.left, *node.comparators]
    elif isinstance(node, ast.IfExp):
        parts = [node.test, node.body, node.orelse]
    elif isinstance(node, ast.Subscript):
        parts = [node.value, node.slice]
    elif isinstance(node, ast.Slice):
        parts = [node.lower, node.upper, node.step]
    elif isinstance(node, ast.Starred):
        parts = [node.value]
    elif isinstance(node, ast.Call):
        if _qualified(node.func, modules, bound) not in PURE_CALLS:
            return None
        parts = [*node.args, *(k.value for k in node.keywords)]
        names = _value_names_of(parts, modules, bound)
        if names is None:
            return None
        # The callee's first name is read too (``np``; a builtin's name: nothing to bind).
        head = node.func
        while isinstance(head, ast.Attribute):
            head = head.value
        return names | ({head.id} if head.id in modules else set())
    elif isinstance(node, ast.Attribute):  # ``np.pi``, ``np.finfo(np.float64).eps``
        parts = [node.value]
    else:
        return {node.id} if isinstance(node, ast.Name) else None
    return _value_names_of(parts, modules, bound)


def _value_names_of(parts, modules, bound) -> set[str] | None:
    names: set[str] = set()
    for part in parts:
        if part is None:  # a dict's ``**spread`` key, a slice's missing bound
            continue
        read = _value_names(part, modules, bound)
        if read is None:
            return None
        names |= read
    return names


def _target_names(node: ast.expr) -> list[str] | None:
    """The names an assignment target binds (``EPS``, ``EPS, SCALE``, ``[a, *rest]``), or None
    if it is not made of names only (``x[0]``, ``obj.attr``)."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Starred):
        return _target_names(node.value)
    if isinstance(node, (ast.Tuple, ast.List)):
        names: list[str] = []
        for element in node.elts:
            bound = _target_names(element)
            if bound is None:
                return None
            names += bound
        return names
    return None


def _module_of(node: ast.Import | ast.ImportFrom, alias: ast.alias) -> str:
    """The top-level module an import's name comes from (``"."`` for a relative import)."""
    if isinstance(node, ast.ImportFrom):
        return "." if node.level else (node.module or "").partition(".")[0]
    return alias.name.partition(".")[0]


def _bound_name(node: ast.Import | ast.ImportFrom, alias: ast.alias) -> str:
    """The name an import's alias binds (``import a.b`` binds ``a``; ``*`` for a star import)."""
    if alias.asname:
        return alias.asname
    return alias.name if isinstance(node, ast.ImportFrom) else alias.name.partition(".")[0]


@dataclass
class _Decision:
    """What becomes of one top-level statement: whether it is kept, the text to write instead
    of its own (an import keeping only some of its names), the names the kept part binds, and
    what was set aside, for the report: the statement itself (``code``), a constant set aside
    because it reads names no kept code binds (``constant``: its own note, ``x_ref = x (reads
    x, which no kept code binds)``), or the modules of an import that are set aside
    (``dropped``: not allowed; ``unused``: refused by name, and no kept code uses them)."""

    kept: bool
    text: str | None = None
    binds: tuple[str, ...] = ()
    code: bool = False
    constant: str | None = None
    dropped: tuple[str, ...] = ()
    unused: tuple[str, ...] = ()


def _import_text(node: ast.Import | ast.ImportFrom, aliases: list[ast.alias]) -> str:
    names = ", ".join(f"{a.name} as {a.asname}" if a.asname else a.name for a in aliases)
    if isinstance(node, ast.ImportFrom):
        return f"from {'.' * node.level}{node.module or ''} import {names}"
    return f"import {names}"


def _decide_import(
    node: ast.Import | ast.ImportFrom,
    keep_imports: frozenset[str],
    refused: frozenset[str],
    used: set[str] | None,
    own: frozenset[str] = frozenset(),
    unresolved: bool = True,
) -> _Decision:
    """Which names of an import are kept (see `_decide`); ``used``: the names the kept
    statements read, None while they are not known yet (a refused module's and a student's
    module's names are kept); ``unresolved``: whether the kept statements read a name that
    nothing kept binds (which only a star import can then bind)."""
    kept, dropped, unused = [], [], []
    for alias in node.names:
        module = _module_of(node, alias)
        name = _bound_name(node, alias)
        if module in own:
            # The student's own module: run only if the kept code needs it (the course's
            # data_utils imports imageio and reads a dataset from disk).
            if used is None or name in used or (name == "*" and unresolved):
                kept.append(alias)
            else:
                unused.append(module)
        elif module in STDLIB_MODULES or module in keep_imports:
            kept.append(alias)
        elif module in refused and (used is None or name == "*" or name in used):
            kept.append(alias)
        else:
            (unused if module in refused else dropped).append(module)
    if not kept:
        return _Decision(False, dropped=tuple(dropped), unused=tuple(unused))
    # ``import numpy as np, matplotlib.pyplot as plt`` keeps ``import numpy as np``.
    text = _import_text(node, kept) if len(kept) < len(node.names) else None
    binds = tuple(_bound_name(node, a) for a in kept)
    return _Decision(True, text, binds, dropped=tuple(dropped), unused=tuple(unused))


def _decide(
    node: ast.stmt,
    keep_imports: frozenset[str],
    refused: frozenset[str],
    bound: set[str],
    own: frozenset[str] = frozenset(),
    modules: dict[str, str] | None = None,
) -> _Decision:
    """Whether a top-level statement is kept; ``bound`` holds the names kept code above binds,
    ``modules`` the names kept imports above bind, to what they import (`_value_names`).

    An import of a module in ``refused`` (the modules the import rule refuses by name) or in
    ``own`` (the student's modules) is kept here; `convert_notebook` sets it aside afterwards
    if no kept statement reads its names.
    """
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return _Decision(True, binds=(node.name,))
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return _decide_import(node, keep_imports, refused, None, own)
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = [_target_names(t) for t in targets]
        try:
            read = _value_names(node.value, modules, bound)
        except RecursionError:  # ``X = - - ... - y``, 600 deep: not a constant we can read (F13)
            read = None
        if None not in names and read is not None:
            # A name the kept code does not bind (``x_ref = x`` after a set-aside ``x = ...``)
            # would fail the whole module when imported: such an assignment is set aside, and
            # said so. After a kept star import (``from math import *``), any name may be bound.
            unbound = [n for n in sorted(read) if n not in bound and n not in _BUILTINS]
            if not unbound or "*" in bound:
                return _Decision(True, binds=tuple(n for group in names for n in group))
            return _Decision(False, constant=_constant_note(node, unbound))
    literal = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    if literal or isinstance(node, ast.Pass):
        # A docstring, a bare literal, ``pass`` (a magic's line once set aside): nothing to
        # run, nothing to say.
        return _Decision(False)
    return _Decision(False, code=True)


def _statement_text(node: ast.stmt) -> str:
    """A statement as one short line, for a note: ``X = f()``, ``for i in range(3): ...``.

    Nested too deeply for ``ast.unparse`` (which recurses: ``X = lambda: lambda: ... 1``, 600
    deep, raised RecursionError and lost a whole class's run: attacker, session 6, F13), it is
    ``X = ...``: the names it binds, or its kind."""
    try:
        with _PARSE_LOCK:  # ast.unparse builds strings from the tree; one thread, as parsing
            text = ast.unparse(node)
    except (RecursionError, MemoryError):
        names = sorted(bound_names(ast.Module(body=[node], type_ignores=[])))
        return f"{', '.join(names)} = ..." if names else f"a {type(node).__name__} statement"
    return text if len(text) <= 60 and "\n" not in text else text.split("\n")[0][:57] + "..."


def _missing_bindings(cells: list[_Cell], unbound: set[str]) -> dict[int, list[str]]:
    """For each cell, the notes naming its set-aside statements that bind a name a kept
    definition reads and nothing kept binds (``unbound``): ``"cell 3, line 12: `X = f()` is
    not run, and conv2d_forward reads X"`` (the function fails with a NameError there, while
    in Jupyter the statement had run). A name several set-aside statements bind is named at
    the first."""
    if not unbound:
        return {}
    binder: dict[str, tuple[int, ast.stmt]] = {}
    for cell in cells:
        for node, decision in cell.decisions:
            if decision.kept:
                continue
            for name in sorted(bound_names(ast.Module([node], [])) & unbound):
                binder.setdefault(name, (cell.number, node))
    if not binder:
        return {}
    # Which kept definitions read each such name (one symtable per definition).
    readers: dict[str, list[str]] = {}
    for cell in cells:
        for node, decision in cell.decisions:
            if decision.kept and isinstance(
                node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
            ):
                for name in sorted(_global_reads([node]) & binder.keys()):
                    readers.setdefault(name, []).append(node.name)
    by_statement: dict[int, tuple[int, ast.stmt, list[str]]] = {}
    for name in sorted(readers):
        number, node = binder[name]
        by_statement.setdefault(id(node), (number, node, []))[2].append(name)
    notes: dict[int, list[str]] = {}
    for number, node, names in sorted(by_statement.values(), key=lambda t: t[1].lineno):
        functions = list(dict.fromkeys(f for name in names for f in readers[name]))
        shown = ", ".join(functions[:3]) + (
            f" and {len(functions) - 3} more" * (len(functions) > 3)
        )
        verb = "reads" if len(functions) == 1 else "read"
        notes.setdefault(number, []).append(
            f"cell {number}, line {node.lineno}: `{_statement_text(node)}` is not run, and "
            f"{shown} {verb} {', '.join(names)}"
        )
    return notes


def capped_notes(notes: list[str], first: Collection[str] = ()) -> list[str]:
    """``notes`` on what was set aside if there are at most `MAX_SET_ASIDE_NOTES` of them; else
    that many, in their order, the ones in ``first`` chosen before the others (a notebook's
    statements a kept definition reads: `_missing_bindings`, which explain a NameError), and
    one note of how many were left out. The one cap of such notes: a notebook's, an upload's
    files not read (:func:`tinycnn.grading.submission.load_submission`), and all of a
    submission's together (:func:`tinycnn.grading.grader.grade_submission`)."""
    if len(notes) <= MAX_SET_ASIDE_NOTES:
        return notes
    ranked = sorted(range(len(notes)), key=lambda index: (notes[index] not in first, index))
    kept = sorted(ranked[:MAX_SET_ASIDE_NOTES])
    left_out = len(notes) - MAX_SET_ASIDE_NOTES
    return [
        *(notes[index] for index in kept),
        f"{left_out:,} more {'note' if left_out == 1 else 'notes'} on what was set aside, "
        "not listed",
    ]


def _track_modules(node: ast.stmt, decision: _Decision, modules: dict[str, str]) -> None:
    """Record in ``modules`` what a kept statement binds: an import's names, to what they
    import (``np`` -> ``numpy``, ``dtype`` -> ``numpy.dtype``); any other binding forgets."""
    if not isinstance(node, (ast.Import, ast.ImportFrom)):
        for name in decision.binds:
            modules.pop(name, None)
        return
    for alias in node.names:
        name = _bound_name(node, alias)
        if name not in decision.binds or name == "*":
            continue
        if isinstance(node, ast.ImportFrom):
            if not node.level and node.module:
                modules[name] = f"{node.module}.{alias.name}"
        else:
            modules[name] = alias.name if alias.asname else name


def _global_reads(statements: list[ast.stmt]) -> set[str]:
    """The names ``statements`` (top-level statements of one module) read from the module's
    globals, as Python's compiler scopes them (`symtable`).

    Counted: the names read at the top level (a constant's value, decorators, default values,
    base classes); in a function, lambda or comprehension at any depth, the names it reads that
    are global there (never bound in it or an enclosing function, or declared ``global``); in a
    class body, every name it reads (a class body reads a global of that name until it binds its
    own). Not counted: parameters and local variables (``F, _, HH, WW = w.shape``), a
    comprehension's variables, an enclosing function's variables (closures), stores.
    """
    if not statements:
        return set()
    try:
        with _PARSE_LOCK:  # ast.unparse and symtable build trees, as ast.parse does
            table = symtable.symtable(ast.unparse(ast.Module(statements, [])), "kept", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        # Code the compiler refuses (``nonlocal x`` with no x): the notebook will not compile,
        # which is what gets reported; until then, every name counts.
        return {n.id for s in statements for n in ast.walk(s) if isinstance(n, ast.Name)}
    reads: set[str] = set()
    tables = [table]
    while tables:
        scope = tables.pop()
        tables += scope.get_children()
        kind = scope.get_type()
        for symbol in scope.get_symbols():
            if not symbol.is_referenced():
                continue
            if kind in ("module", "class") or symbol.is_global():
                reads.add(symbol.get_name())
    return reads


def bound_names(tree: ast.Module) -> set[str]:
    """The names a cell (or a module) binds in its namespace when it runs: its top-level
    definitions, imports and assignment, ``for`` and ``with`` targets (not the names that only
    a function, class or comprehension of it binds). Read, never run; names as Python reads
    them (NFKC-normalised, PEP 3131)."""
    names: set[str] = set()
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update(_bound_name(node, alias) for alias in node.names)
            continue
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp)):
            continue
        if isinstance(node, ast.GeneratorExp):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        stack.extend(ast.iter_child_nodes(node))
    return names


def _constant_note(node: ast.stmt, unbound: list[str]) -> str:
    """``"x_ref = x (reads x, which no kept code binds)"``: why a constant is set aside."""
    text = _statement_text(node)
    names = unbound[0] if len(unbound) == 1 else ", ".join(unbound[:-1]) + " and " + unbound[-1]
    return f"{text} (reads {names}, which no kept code binds)"


def _cell_note(decisions: list[_Decision], had_magics: bool) -> str:
    """What a cell had set aside, in words: ``"import matplotlib, code, magics"``."""
    dropped = dict.fromkeys(m for d in decisions for m in d.dropped)
    unused = dict.fromkeys(m for d in decisions for m in d.unused)
    parts = ["import " + ", ".join(dropped)] if dropped else []
    if unused:
        them = "them" if len(unused) > 1 else "it"
        parts.append(f"import {', '.join(unused)} (no kept code uses {them})")
    parts += ["code"] * any(d.code for d in decisions) + ["magics"] * had_magics
    return ", ".join(parts)


def _first_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno, *(d.lineno for d in decorators)])


def _code_cells(notebook):
    """``(number, source, note)`` for each code cell: its number (from 1, markdown cells
    counted), the Python IPython runs from it (None for a cell magic whose body is not the
    notebook's code: ``%%bash``, ``%%timeit``) and what was set aside of it, in words, or None.

    A ``%%time``, ``%%capture`` or ``%%prun`` cell loses only its magic line (an empty line
    keeps the line numbers): its body is the notebook's code, run in the notebook's namespace.
    """
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        # Python's tokenizer ends a line at "\r\n" and at a lone "\r" too; the cell's lines are
        # split at "\n" below, so make the two agree (a lone "\r" could otherwise hide set-aside
        # statements inside a kept definition's line span).
        source = source.replace("\r\n", "\n").replace("\r", "\n")
        magic = _cell_magic(source)
        if magic is None:
            yield number, source, None
        elif magic not in BODY_KEPT_CELL_MAGICS:
            why = _SET_ASIDE_CELL_MAGICS.get(magic, "cell magics are not run")
            yield number, None, f"a {magic} cell ({why})"
        else:
            lines = source.split("\n")
            at = next(i for i, line in enumerate(lines) if line.strip())
            body = "\n".join([*lines[:at], "", *lines[at + 1 :]])
            yield number, body, f"the {magic} line (the cell's code is read as usual)"


def notebook_cells(data: bytes) -> list[ast.Module]:
    """Every code cell of a notebook as the Python IPython runs from it, parsed (magics
    replaced, `_parse_cell`), test cells included; read, never run. For what reads all of a
    notebook's code, such as the imports between an upload's files
    (:func:`tinycnn.grading.submission.imports_between`, through the one import reader
    :func:`~tinycnn.grading.submission.module_imports`). Empty for a file that is not a
    notebook; a cell that is not valid Python, or a cell magic whose body is not the
    notebook's code (``%%bash``), is left out."""
    try:
        notebook = _read(data, "notebook")
    except NotebookError:
        return []
    trees: list[ast.Module] = []
    namespace: set[str] = set()
    code = list(_code_cells(notebook))
    try:
        check_size("\n".join(source for _, source, _ in code if source is not None))
    except SourceTooLarge:
        return []  # too large to read: grading it says so
    for _, source, _ in code:
        if source is None:
            continue
        try:
            tree = _parse_cell(source, namespace)[0]
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        namespace |= bound_names(tree)
        trees.append(tree)
    return trees


def convert_notebook(
    data: bytes,
    origin: str = "notebook",
    keep_imports: Iterable[str] = (),
    refused_imports: Iterable[str] = (),
    own_modules: Iterable[str] = (),
) -> ConvertedNotebook:
    """Read a notebook (the bytes of an ``.ipynb`` file) and keep its definitions.

    Parameters
    ----------
    data : bytes
        The file's content (JSON, any nbformat version ``nbformat`` reads).
    origin : str
        The file's name, for messages.
    keep_imports : iterable of str
        Top-level modules whose imports are kept besides the standard library (the ones the
        import rule allows).
    refused_imports : iterable of str
        Top-level modules the import rule refuses by name (torch, this project...). An import
        of one is kept when a kept statement reads a name it binds from the module's globals
        (`_global_reads`), so that the rule reports it at its cell and line; otherwise
        (``import torch`` for the notebook's own test cells, which are set aside) it is set
        aside and said so. Imports of any other module are set aside.
    own_modules : iterable of str
        Top-level names of the student's own modules and packages (``cs231n`` for
        ``cs231n/layers.py``). An import of one is kept by the same rule as a refused one: when
        a kept statement reads a name it binds (a star import: when a kept statement reads a
        name nothing kept binds); otherwise it is set aside and said so (the notebook's
        ``from cs231n.data_utils import get_CIFAR10_data``, for its test cells, is never run).

    Returns
    -------
    ConvertedNotebook

    Raises
    ------
    NotebookError
        If ``data`` is not a notebook (not UTF-8, not JSON, not nbformat).
    """
    notebook = _read(data, origin)
    keep = frozenset(keep_imports)
    refused = frozenset(refused_imports)
    own = frozenset(own_modules)
    namespace: set[str] = set()  # what the cells above bind when run (a magic's shadow)
    # The name as clean_name shows it: a byte that is not UTF-8 (a Windows zip's accented name)
    # could not be encoded in the module, a newline would end the comment (attacker session 7,
    # F4).
    header = (
        f"# The definitions of {clean_name(origin)}, as tinycnn check grades them (nothing else "
        f"is run)."
    )
    set_aside: list[str] = []
    bound: set[str] = set()
    modules: dict[str, str] = {}  # name -> what a kept import binds to it ("np" -> "numpy")
    cells: list[_Cell] = []
    code = list(_code_cells(notebook))
    try:  # the whole notebook's code within the parse budget before any cell's tree is kept
        check_size("\n".join(source for _, source, _ in code if source is not None))
    except SourceTooLarge as error:
        raise NotebookError(f"{origin} is too large: its code cells hold {error.msg}") from None
    for number, source, note in code:
        if note is not None:
            set_aside.append(f"cell {number}: {note}")
        if source is None:
            continue
        try:
            tree, cell_lines, had_magics = _parse_cell(source, namespace)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
            return _not_compiling(header, number, error)
        namespace |= bound_names(tree)
        late_future = _late_future(tree)
        if late_future is not None:
            return _not_compiling(header, number, late_future)
        decisions = []
        for node in tree.body:
            decision = _decide(node, keep, refused, bound, own, modules)
            decisions.append((node, decision))
            if decision.kept:
                bound.update(decision.binds)
                _track_modules(node, decision, modules)
        cells.append(_Cell(number, cell_lines, tree, decisions, had_magics, len(set_aside)))
    # The module-level names the kept statements read decide the imports of refused modules
    # and of the student's own modules.
    used = _global_reads(
        [
            node
            for cell in cells
            for node, decision in cell.decisions
            if decision.kept and not isinstance(node, (ast.Import, ast.ImportFrom))
        ]
    )
    named = {n for cell in cells for _, d in cell.decisions if d.kept for n in d.binds}
    # A name some cell binds (kept or set aside: `data = get_CIFAR10_data()`) is the
    # notebook's variable, not one a star import supplies.
    unresolved = bool(used - named - namespace - _BUILTINS - _MODULE_NAMES)
    for cell in cells:
        for index, (node, _) in enumerate(cell.decisions):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                decision = _decide_import(node, keep, refused, used, own, unresolved)
                cell.decisions[index] = (node, decision)
    named = {n for cell in cells for _, d in cell.decisions if d.kept for n in d.binds}
    missing = _missing_bindings(cells, used - named - _BUILTINS - _MODULE_NAMES)
    for cell in reversed(cells):  # from the end: each note goes in at its cell's place
        note = _cell_note([decision for _, decision in cell.decisions], cell.had_magics)
        notes = [f"cell {cell.number}: {note} (not run)"] if note else []
        notes += [f"cell {cell.number}: {d.constant}" for _, d in cell.decisions if d.constant]
        notes += missing.get(cell.number, [])
        set_aside[cell.notes_at : cell.notes_at] = notes
    set_aside = capped_notes(set_aside, {note for notes in missing.values() for note in notes})
    source, origins = _module(header, cells)
    with _PARSE_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarning, DeprecationWarning: not ours to print
        try:
            check_size(source)
            compile(source, origin, "exec", dont_inherit=True)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
            # What only compiling the whole module finds (``from __future__ import braces``,
            # ``nonlocal x`` with no x): said at its cell and line, as for a cell that does not
            # parse; never with the converted module's own name or line.
            line = getattr(error, "lineno", None)
            place = origins[line - 1] if line and 1 <= line <= len(origins) else None
            number, cell_line = place or (cells[0].number if cells else 1, 1)
            return _not_compiling(header, number, error, cell_line)
    return ConvertedNotebook(source=source, origins=origins, set_aside=tuple(set_aside))


@dataclass(frozen=True)
class _Cell:
    """One code cell as read: its number, lines (magics replaced) and top-level statements,
    each with what becomes of it."""

    number: int
    lines: list[str]
    tree: ast.Module
    decisions: list[tuple[ast.stmt, _Decision]]
    had_magics: bool
    notes_at: int  # where its note goes in the list of what was set aside


def _is_future(node: ast.stmt) -> bool:
    return isinstance(node, ast.ImportFrom) and node.module == "__future__" and not node.level


def _late_future(tree: ast.Module) -> SyntaxError | None:
    """The error Python (and so Jupyter, which compiles each cell on its own) raises for a
    ``from __future__`` import after other code of the cell, or None. Only a docstring and
    other ``from __future__`` imports may come before one (a magic line counts as code: IPython
    runs it as a call)."""
    for index, node in enumerate(tree.body):
        docstring = (
            index == 0
            and isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        )
        if not docstring and not _is_future(node):
            later = next((n for n in tree.body[index:] if _is_future(n)), None)
            if later is None:
                return None
            error = SyntaxError("from __future__ imports must occur at the beginning of the file")
            error.lineno = later.lineno
            return error
    return None


def _module(header: str, cells: list[_Cell]) -> tuple[str, tuple[tuple[int, int] | None, ...]]:
    """The converted module's source and the origin of each of its lines.

    ``from __future__`` imports go first: a cell may start with one (each cell compiles on its
    own, and IPython keeps the feature for the cells that follow), a module only at its top.
    """
    future: list[tuple[str, tuple[int, int] | None]] = []
    body: list[tuple[str, tuple[int, int] | None]] = []
    for cell in cells:
        kept = [(node, d) for node, d in cell.decisions if d.kept]
        if not kept:
            continue
        # Lines holding more than one top-level statement (``x = 1; print(x)``): only the
        # kept statement's own text is copied from them.
        seen, shared = set(), set()
        for node in cell.tree.body:
            span = set(range(_first_line(node), node.end_lineno + 1))
            shared |= seen & span
            seen |= span
        text = "\n".join(cell.lines)
        if not all(_is_future(node) for node, _ in kept):
            body.append((f"# cell {cell.number}", None))
        for node, decision in kept:
            first = _first_line(node)
            if decision.text is not None:
                copied = [decision.text]
            elif shared & set(range(first, node.end_lineno + 1)):
                copied = (ast.get_source_segment(text, node) or "").split("\n")
            else:
                copied = cell.lines[first - 1 : node.end_lineno]
            into = future if _is_future(node) else body
            into += [(line, (cell.number, first + k)) for k, line in enumerate(copied)]
    lines = [(header, None), *future, *body]
    return "\n".join(line for line, _ in lines) + "\n", tuple(where for _, where in lines)


def _not_compiling(header: str, number: int, error: Exception, line: int | None = None):
    """The `ConvertedNotebook` of a notebook whose cell ``number`` is not valid Python."""
    # ValueError: NUL bytes; RecursionError, MemoryError: nesting too deep to parse
    raised_at = getattr(error, "lineno", None)
    line = line or raised_at or 1
    if isinstance(error, SyntaxError):
        reason = syntax_reason(error.msg, raised_at)
    elif isinstance(error, ValueError):
        reason = str(error)
    else:
        reason = "too deeply nested to parse"
    # As a helper module, the notebook raises that SyntaxError when (and if) it is imported,
    # from the line the message names (a folder's entry imports it; the entry itself is not
    # run: its submission carries the problem).
    return ConvertedNotebook(
        source=f"{header}\nraise SyntaxError({reason!r})\n",
        origins=(None, (number, line)),
        syntax_error=f"cell {number}, line {line}: {reason}",
    )
