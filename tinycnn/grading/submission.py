"""What one student handed in, as the checker grades it: a `Submission`.

``tinycnn check`` accepts a submission in three shapes, and this module turns each into the same
`Submission` (the only thing the grader and the sandbox see):

- a ``.py`` file: the module with the contract functions;
- a ``.ipynb`` notebook: its definitions become that module (:mod:`.notebook`; nothing in the
  notebook is run while reading it);
- a folder holding one student's several modules: the *entry* module holds the contract functions
  (``--entry NAME``, or found as below), the others are the student's helpers, which the entry
  (and each other) may import by name (``import helpers``, ``from utils import pad``, the
  entry's own name), or relatively inside the student's packages (``from .core import *``).
  Only the entry and the modules it imports, transitively, are checked against the import rule
  (`reachable_files`); the others are listed as set aside (`Submission.unimported`).

A folder is read from `submission_folder`: while it has no ``.py``/``.ipynb`` file at its top,
from the sub-folder that holds them (``bob/hw2/``; of several, the one defining the graded
functions), never from inside a Python package. The entry of a folder is the module named by
``--entry`` (a path such as ``hw/layers`` or a dotted name such as ``hw.layers``: an entry
inside a package is imported under that name, so its relative and absolute imports of its
package work; a bare ``layers`` with no top-level ``layers.py`` names the one file of that name
at any depth, ``cs231n/layers.py`` imported as ``cs231n.layers``); without it, the file that
defines the graded functions (the contract's, or the ``--api``'s course functions:
`graded_definitions`) at the shallowest level where any file does, the one defining the most
there (CS231n's ``cs231n/layers.py`` below the course's notebook, which only imports it); if
none does, the folder's only file at its top. Notebooks anywhere in the folder become modules
of the same name (``utils.ipynb`` -> ``utils``).

Reading is done here, in the checker, and is careful with what it reads: only regular files
(symbolic links, devices and FIFOs are skipped, never followed), only ``.py`` and ``.ipynb``
files, hidden and ``__pycache__`` folders skipped, at most `MAX_FILES` files and `MAX_BYTES`
bytes in all. A problem with the student's files (nothing to grade, two candidate entries, a
notebook that is not JSON, too many files) is not an exception: the `Submission` carries it as
`Submission.problem`, and the grader gives every function an "error" verdict with that message,
so a Gradescope run still writes its results. Only the caller's own mistakes raise (no such
path, an unknown API).

>>> from tinycnn.grading.submission import load_submission  # doctest: +SKIP
>>> load_submission("hw2/layers.py", api="cs231n").entry  # doctest: +SKIP
'layers'
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib.util
import itertools
import os
import stat
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tinycnn.grading.adapters import API_NAMES, course_functions
from tinycnn.grading.channel import clean_name
from tinycnn.grading.notebook import (
    NotebookError,
    bound_names,
    capped_notes,
    convert_notebook,
)
from tinycnn.grading.policy import (
    FRAMEWORKS,
    MAX_TOKENS,
    PROJECT_PACKAGES,
    ImportUse,
    ParseBudgetSpent,
    allowed_modules,
    import_uses,
    parse_budget,
    parse_source,
)

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_ENTRIES",
    "MAX_FILES",
    "MAX_PARSED",
    "MAX_PATH",
    "SKIPPED_FOLDERS",
    "SUBMISSION_SUFFIXES",
    "Outline",
    "SeveralFolders",
    "SourceFile",
    "Submission",
    "defined_functions",
    "defined_names",
    "graded_definitions",
    "imported_modules",
    "imports_between",
    "load_submission",
    "module_imports",
    "reachable_files",
    "resolve_relative",
    "submission_folder",
    "top_entries",
    "upload_entries",
    "visible_entries",
]

#: The files a submission is made of; anything else in a folder is ignored.
SUBMISSION_SUFFIXES = (".py", ".ipynb")
#: Limits on what is read from one student's folder (a runaway upload, a hostile one).
MAX_FILES = 100
MAX_BYTES = 16 * 2**20
#: Most words, symbols and line breaks (as `MAX_TOKENS` counts them) the checker parses of one
#: upload's texts, all together, to choose its folder, and again to read it (a budget each:
#: :func:`~tinycnn.grading.policy.parse_budget`). `MAX_BYTES` of files each just under
#: `MAX_TOKENS` (82 files of 99,990 lines ``a``) took the checker two minutes to parse once
#: each (attacker session 7b, F1); five times `MAX_TOKENS` is about 7 s, and about 70 times the
#: reference layer file.
MAX_PARSED = 5 * MAX_TOKENS
#: Longest path of a file inside an upload that is read (``hw2/cs231n/layers.py`` is 20
#: characters; longer ones are set aside): the checker copies the files below folders of its
#: own, where a path that fit where the student put it could exceed the system's limit of
#: 4,096 bytes (attacker, session 6, F15).
MAX_PATH = 1024
#: Most folders deep, and most entries (files of any kind, folders), of one upload: far above a
#: course assignment's (CS231n's: 3 deep, about 60 entries; with a data set's images, some
#: thousands; even with a virtual environment holding NumPy left in it, about 3,400), far below
#: what costs the checker seconds (a 300-deep chain over 20,000 files took minutes: attacker,
#: session 6, F4; 99,000 files took 19 s and, walked once, still 1 to 2 s on a busy 2-core
#: machine, where walking 20,000 takes about 0.2 s: session 6b, G6). An upload holding a
#: virtual environment with PyTorch (about 40,000 entries) is refused, and says why.
MAX_DEPTH = 32
MAX_ENTRIES = 20_000
#: Folders of an upload never read (besides hidden ones): Python leaves ``__pycache__``,
#: macOS's zip ``__MACOSX``. The Gradescope runner skips the same (one home for both).
SKIPPED_FOLDERS = ("__pycache__", "__MACOSX")


@dataclass(frozen=True)
class SourceFile:
    """One module of a submission, as the child imports it.

    Attributes
    ----------
    path : str
        Where it goes in the child's scratch folder, relative, with ``/`` (``"layers.py"``,
        ``"utils/pad.py"``); always ends in ``.py``.
    data : bytes
        Its content (a notebook already turned into Python source, UTF-8).
    origin : str
        The file as the student named it (``"layers.ipynb"``), for messages.
    cells : tuple or None
        For a notebook: the ``(cell, line)`` each line of `data` came from (None for the lines
        the converter wrote); None for a ``.py`` file; empty for a ``.ipynb`` file that is not a
        notebook (`data` only raises ImportError saying so: no line of the student's runs).
    """

    path: str
    data: bytes
    origin: str
    cells: tuple[tuple[int, int] | None, ...] | None = None

    @property
    def module(self) -> str:
        """The name the student's code imports it by (``utils/pad.py`` -> ``utils.pad``)."""
        return ".".join(PurePosixPath(self.path).with_suffix("").parts).removesuffix(".__init__")

    @property
    def package(self) -> str:
        """The package its relative imports start from: itself for a package's
        ``__init__.py``, else the module's parent (``""`` at the top of the submission)."""
        path = PurePosixPath(self.path)
        if path.name == "__init__.py":
            return self.module if len(path.parts) > 1 else ""
        return self.module.rpartition(".")[0]

    @functools.cached_property
    def outline(self) -> Outline:
        """What its source defines and imports (`Outline`), read (never run) on first use and
        kept: every measure of a file (`defined_functions`, `defined_names`,
        `imported_modules`, `graded_definitions` for each API) reads this, so a file is parsed
        once however many measures ask (four parses of each file by `_entry_of`, each up to a
        second or more: attacker session 7b, F1). The tree itself is not kept (up to hundreds of
        MB for a large file)."""
        return _outline(self)

    def import_uses(self) -> list[ImportUse]:
        """Every import in it with its line, as :func:`~tinycnn.grading.policy.scan_imports`
        reads them, from `outline` (not parsed again).

        Raises
        ------
        SyntaxError, ValueError, UnicodeDecodeError, LookupError
            As ``scan_imports(self.text())`` would: it does not decode or parse, or is too
            large to read (`SourceTooLarge`).
        """
        if self.outline.error is not None:
            raise self.outline.error
        return list(self.outline.uses)

    def text(self) -> str:
        """The source decoded exactly as Python decodes a file (UTF-8, a BOM, a coding line).

        Raises
        ------
        SyntaxError, UnicodeDecodeError, LookupError
            If Python could not decode it either.
        """
        return importlib.util.decode_source(self.data)

    def locate(self, line: int) -> str:
        """``"line 12"``, or ``"cell 7, line 3"`` for a line that came from a notebook cell."""
        if self.cells is not None:
            if 1 <= line <= len(self.cells) and self.cells[line - 1] is not None:
                cell, cell_line = self.cells[line - 1]
                return f"cell {cell}, line {cell_line}"
            return f"line {line} of the converted notebook"
        return f"line {line}"


@dataclass(frozen=True)
class Submission:
    """One student's submission, ready to be graded.

    Attributes
    ----------
    name : str
        How reports name it: the path as given (a file or a folder).
    files : tuple of SourceFile
        The entry module first, then the helpers (empty when `problem` is set).
    api : str
        The layer API the entry is written against (see :mod:`tinycnn.grading.adapters`):
        ``"tinycnn"`` (the contract itself), ``"cs231n"`` or ``"deeplearning-ai"``.
    problem : str or None
        Why it cannot be graded at all (``"the file does not compile: cell 4, line 2: ..."``);
        every function then gets an "error" verdict with this message.
    set_aside : tuple of str
        What reading left out on purpose (a notebook's test cells, ignored files), in words.
    unimported : tuple of str
        Paths of the files that neither the entry nor anything it imports imports (found by
        reading, `reachable_files`): the student's own tests, the course's plotting helpers.
        They are copied with the others but not checked against the import rule; if one is
        imported while grading after all, the run-time guard still applies the rule to it.
    chosen : str
        Which file is graded, in words, when the reader chose it among several without
        ``--entry`` (``"graded src/layers.py, chosen among 3 .py/.ipynb files"``; names through
        :func:`~tinycnn.grading.channel.clean_name`); "" for one file, ``--entry``, a problem.
    """

    name: str
    files: tuple[SourceFile, ...]
    api: str = "tinycnn"
    problem: str | None = None
    set_aside: tuple[str, ...] = field(default=())
    unimported: tuple[str, ...] = field(default=())
    chosen: str = ""

    @property
    def entry(self) -> SourceFile:
        """The module with the contract (or course) functions."""
        return self.files[0]

    @property
    def helpers(self) -> tuple[SourceFile, ...]:
        return self.files[1:]

    @property
    def modules(self) -> tuple[str, ...]:
        """Every module name of the student's own files (the entry's included)."""
        return tuple(f.module for f in self.files)

    def file(self, path: str) -> SourceFile | None:
        """The file at ``path`` (relative, as in `SourceFile.path`), if it is one of ours."""
        return next((f for f in self.files if f.path == path), None)

    def locate(self, path: str | None, line: int) -> str:
        """Where a line is, in the student's terms: ``"line 5"`` in a one-file submission's entry,
        ``"cell 7, line 3"`` in a notebook, ``"utils.py, line 4"`` in a helper module."""
        source = self.file(path) if path is not None else self.entry
        if source is None:
            return f"{path}, line {line}"
        if source.cells == ():  # a .ipynb that is not a notebook: none of its lines ran
            return source.origin
        where = source.locate(line)
        return where if source is self.entry else f"{source.origin}, {where}"

    def write(self, directory: str | os.PathLike) -> Path:
        """Write every file under ``directory`` (which must exist); returns the entry's path."""
        root = Path(directory)
        for source in self.files:
            target = root.joinpath(*PurePosixPath(source.path).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.data)
        return root.joinpath(*PurePosixPath(self.entry.path).parts)


# --------------------------------------------------------------------------------------------
# Reading files and folders
# --------------------------------------------------------------------------------------------


def _failed(name: str, api: str, problem: str, set_aside: Iterable[str] = ()) -> Submission:
    return Submission(name, (), api, problem=problem, set_aside=tuple(set_aside))


def _regular_file(path: Path) -> os.stat_result | None:
    """``lstat`` of ``path`` if it is a regular file (not a link, FIFO or device)."""
    try:
        info = path.lstat()
    except OSError:
        return None
    return info if stat.S_ISREG(info.st_mode) else None


def _hidden(name: str) -> bool:
    """Whether an entry of an upload is never read: hidden (``.git``, ``.ipynb_checkpoints``)
    or one of `SKIPPED_FOLDERS`. The one rule for every scan of a student's folder."""
    return name.startswith(".") or name in SKIPPED_FOLDERS


def visible_entries(folder: str | os.PathLike) -> list[os.DirEntry]:
    """The entries of ``folder`` that a scan of an upload looks at, sorted by name: all but
    the `_hidden` ones (links included: callers decide, and never follow them). The one home
    of that rule for ``tinycnn check`` (`top_entries`, `_walk`, a class folder's submissions)
    and the Gradescope runner (:mod:`tinycnn.autograder`).

    Raises
    ------
    OSError
        If ``folder`` cannot be listed.
    """
    with os.scandir(folder) as scanned:
        return sorted((e for e in scanned if not _hidden(e.name)), key=lambda e: e.name)


def top_entries(folder: Path) -> tuple[list[Path], list[Path]]:
    """What is at the top of ``folder`` for a reader of submissions: its regular ``.py`` and
    ``.ipynb`` files, and its sub-folders holding such files at any depth (`_holds_files`),
    each sorted by name; `visible_entries` only, links neither listed nor followed.

    Raises
    ------
    OSError
        If ``folder`` cannot be listed.
    """
    files, folders = [], []
    for entry in visible_entries(folder):
        path = Path(entry.path)
        if entry.is_file(follow_symlinks=False) and path.suffix in SUBMISSION_SUFFIXES:
            files.append(path)
        elif entry.is_dir(follow_symlinks=False) and _holds_files(path):
            folders.append(path)
    return files, folders


def upload_entries(folder: Path) -> Iterator[tuple[Path, os.DirEntry]]:
    """Every entry under ``folder`` that is not a folder (files, links, anything else), with
    its path relative to ``folder``: each folder's entries by name, then its sub-folders by
    name. `visible_entries` only; a link is listed, never followed; a folder that cannot be
    listed is passed over. The one walk of an upload (`_walk`; the Gradescope runner's scan).

    Iterative, with a stack of its own (Python 3.11's ``os.walk`` recurses: a chain of 1,100
    folders raised RecursionError and lost a class run, attacker session 6, F3), and bounded.

    Raises
    ------
    UploadTooLarge
        More than `MAX_ENTRIES` entries under ``folder`` (files of any kind and folders), or
        folders more than `MAX_DEPTH` deep.
    """
    seen = 0
    stack = [(Path(), 0)]  # folders still to list: (relative path, depth)
    while stack:
        here, depth = stack.pop()
        try:
            entries = visible_entries(folder / here)
        except OSError:
            continue
        seen += len(entries)
        if seen > MAX_ENTRIES:
            raise UploadTooLarge(f"it holds more than {MAX_ENTRIES:,} files and folders")
        below = []
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                below.append(here / entry.name)
            else:
                yield here / entry.name, entry
        if below and depth == MAX_DEPTH:
            raise UploadTooLarge(f"its folders are more than {MAX_DEPTH} deep")
        stack += [(path, depth + 1) for path in reversed(below)]


def _walk(folder: Path) -> tuple[list[Path], list[Path]]:
    """The regular ``.py``/``.ipynb`` files under ``folder`` and the other entries so named
    (links, FIFOs: skipped), relative, in `upload_entries`' order. Never follows a symbolic
    link, to a file or to a folder.

    Raises
    ------
    UploadTooLarge
        As `upload_entries`.
    """
    found, skipped = [], []
    for relative, regular in _candidates(folder):
        (found if regular else skipped).append(relative)
    return found, skipped


def _candidates(folder: Path) -> Iterator[tuple[Path, bool]]:
    """Each entry under ``folder`` named like a submission's file (`SUBMISSION_SUFFIXES`), in
    `upload_entries`' order and relative to ``folder``, with whether it is a regular file
    (read) or not (a link, a FIFO: never read, and said so). The one rule of which entries are
    a submission's files, for `_walk`, `_holds_files` and `_find_submission`.

    Raises
    ------
    UploadTooLarge
        As `upload_entries`.
    """
    for relative, entry in upload_entries(folder):
        if relative.suffix in SUBMISSION_SUFFIXES:
            yield relative, entry.is_file(follow_symlinks=False)


def _read_bytes(path: Path, budget: int) -> bytes:
    """The file's bytes, reading at most ``budget + 1`` of them (the caller checks the size)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    descriptor = os.open(path, flags)
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise OSError(f"{path.name} is not a regular file")
        return handle.read(budget + 1)


@dataclass(frozen=True)
class Outline:
    """What a module's source says at its top level, read once (never run): a
    `SourceFile.outline`. All empty, and `parsed` False, for a source that does not parse
    (reported when the file is graded, not by its readers here).

    Attributes
    ----------
    parsed : bool
        Whether the source parsed.
    error : Exception or None
        Why not, as Python said it (`parse_source`'s SyntaxError, `SourceTooLarge` among
        them; ValueError for NUL bytes; UnicodeDecodeError, LookupError for undecodable text).
    functions : frozenset of str
        Its top-level functions (``def``, ``async def``).
    stubs : frozenset of str
        Those of `functions` whose body, after an optional docstring, is nothing, ``pass``,
        ``...`` or only raises NotImplementedError: a template's placeholders (`_is_stub`).
    names : frozenset of str
        Every name it binds at its top level when it runs (`bound_names`).
    imports : frozenset of str
        The absolute names of the modules it may import (`module_imports`).
    imported : tuple of (str, str)
        ``(module, name)`` of each name a top-level ``from module import name`` binds (``as``
        names as bound; relative modules resolved; ``*`` left out: what it binds is not read
        here).
    uses : tuple of ImportUse
        Every import with its line, for the import rule (`import_uses`, as `scan_imports`).
    """

    parsed: bool = False
    error: Exception | None = None
    functions: frozenset[str] = frozenset()
    stubs: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()
    imports: frozenset[str] = frozenset()
    imported: tuple[tuple[str, str], ...] = ()
    uses: tuple[ImportUse, ...] = ()


def _outline(source: SourceFile) -> Outline:
    """``source``'s `Outline`, from one parse (`SourceFile.outline` keeps it)."""
    try:
        tree = parse_source(source.text())
    except (SyntaxError, ValueError, LookupError) as error:  # UnicodeDecodeError: a ValueError
        return Outline(error=error)
    functions = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    imported = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            module = resolve_relative(node.module, node.level, source.package)
            if module:
                imported += [(module, a.asname or a.name) for a in node.names if a.name != "*"]
    # The last def of a name is what runs: the template's placeholders kept above the real
    # functions do not make them placeholders (attacker session 7c, F1).
    last = {function.name: function for function in functions}
    return Outline(
        parsed=True,
        functions=frozenset(last),
        stubs=frozenset(name for name, function in last.items() if _is_stub(function)),
        names=frozenset(bound_names(tree)),
        imports=frozenset(module_imports(tree, source.package)),
        imported=tuple(imported),
        uses=tuple(import_uses(tree)),
    )


def _is_stub(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether a function is a placeholder: its body, after an optional docstring, is empty,
    ``pass``, ``...``, or one ``raise NotImplementedError`` (with or without a message), as the
    course's template leaves each function to write."""
    body = function.body
    if body and _is_docstring(body[0]):
        body = body[1:]
    if not body:
        return True
    if len(body) > 1:
        return False
    (statement,) = body
    if isinstance(statement, ast.Pass):
        return True
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
        return statement.value.value is Ellipsis
    if isinstance(statement, ast.Raise) and statement.exc is not None:
        raised = statement.exc.func if isinstance(statement.exc, ast.Call) else statement.exc
        return isinstance(raised, ast.Name) and raised.id == "NotImplementedError"
    return False


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def defined_functions(source: SourceFile) -> set[str]:
    """Names of the top-level functions a module defines (read, never run), placeholders
    included (`Outline.functions`)."""
    return set(source.outline.functions)


def defined_names(source: SourceFile) -> set[str]:
    """Every name a module binds at its top level when it runs (its functions, classes,
    imports, assignments: :func:`tinycnn.grading.notebook.bound_names`), read, never run; empty
    if it does not parse."""
    return set(source.outline.names)


def resolve_relative(module: str | None, level: int, package: str) -> str | None:
    """The absolute name ``from <level dots><module> import ...`` means in ``package``, as
    Python resolves it (``importlib.util.resolve_name``); None where Python raises ImportError
    ("no known parent package", "beyond top-level package"): a file at the top of the
    submission has no package, and dots cannot climb above the submission's top folder. Also
    None for a package folder whose name is not an identifier (Python cannot import it by name).

    >>> resolve_relative("core", 1, "utils"), resolve_relative(None, 2, "hw.sub")
    ('utils.core', 'hw')
    >>> resolve_relative("impl", 1, "") is None
    True
    """
    if level == 0:
        return module
    parts = package.split(".") if package else []
    if level > len(parts):
        return None
    base = parts[: len(parts) - level + 1]
    if not all(part.isidentifier() for part in base):
        return None
    return ".".join(base + ([module] if module else []))


def imported_modules(source: SourceFile) -> set[str] | None:
    """Absolute names of the modules ``source`` may import, read (never run), as
    `module_imports` reads them. None if the source does not parse."""
    outline = source.outline
    return set(outline.imports) if outline.parsed else None


def module_imports(tree: ast.AST, package: str = "") -> set[str]:
    """Absolute names of the modules the code ``tree`` may import, from package ``package``
    (``""``: the top of the submission): every ``import``, every ``from ... import``
    (relative ones resolved, `resolve_relative`; ``from x import y`` counts ``x`` and
    ``x.y``, as ``y`` may be a submodule) and every literal ``__import__("x")`` /
    ``import_module("x")`` call, wherever it sits. The one import reader of submissions: a
    module's (`imported_modules`) and a notebook's cells (`imports_between`,
    :func:`tinycnn.grading.notebook.notebook_cells`)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = resolve_relative(node.module, node.level, package)
            if base:
                names.add(base)
                names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call) and node.args:
            function = node.func
            called = getattr(function, "id", None) or getattr(function, "attr", None)
            first = node.args[0]
            if (
                called in ("__import__", "import_module")
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and not first.value.startswith(".")
            ):
                names.add(first.value)
    return names


def reachable_files(sources: Iterable[SourceFile], entry: SourceFile) -> set[str]:
    """Paths of the files importing ``entry`` can run: the entry, the packages holding it, and
    every student module that these import, transitively (as read by `imported_modules`;
    importing ``a.b`` runs ``a`` first). A file that does not parse imports nothing here (its
    problem is reported when it is imported)."""
    by_module: dict[str, list[SourceFile]] = {}
    for source in sources:
        by_module.setdefault(source.module, []).append(source)

    def files_of(name: str) -> list[SourceFile]:
        parts = name.split(".")
        return [f for i in range(1, len(parts) + 1) for f in by_module.get(".".join(parts[:i]), [])]

    reached: set[str] = set()
    queue = [entry, *files_of(entry.module)]
    while queue:
        source = queue.pop()
        if source.path in reached:
            continue
        reached.add(source.path)
        for name in imported_modules(source) or ():
            queue += [f for f in files_of(name) if f.path not in reached]
    return reached


def _reserved_names() -> frozenset[str]:
    from tinycnn.grading.policy import FRAMEWORKS, PROJECT_PACKAGES

    return frozenset(FRAMEWORKS) | frozenset(PROJECT_PACKAGES) | {"numpy"}


#: Names a student's own module may not take: ``torch.py`` in a folder would make ``import
#: torch`` look like an import of the student's helper (and shadow NumPy or this project).
_RESERVED_NAMES = _reserved_names()


def _as_source(
    relative: Path,
    data: bytes,
    keep: frozenset[str],
    own: frozenset[str] = frozenset(),
    origin: str | None = None,
) -> tuple[SourceFile, str | None, tuple[str, ...]]:
    """A read file as a `SourceFile`: ``(file, problem, set_aside)``. ``own``: the top-level
    names of the student's modules (a notebook keeps an import of one only where its kept code
    uses it); ``origin``: the file as the student named it, if not ``relative``."""
    origin = origin or relative.as_posix()
    if relative.suffix == ".py":
        return SourceFile(relative.as_posix(), data, origin), None, ()
    path = relative.with_suffix(".py").as_posix()
    try:
        # Imports the rule refuses by name, and of the student's own modules: kept (and checked)
        # only where the kept code uses them.
        refused = frozenset(FRAMEWORKS) | frozenset(PROJECT_PACKAGES)
        converted = convert_notebook(data, origin, keep, refused_imports=refused, own_modules=own)
    except NotebookError as error:
        # A helper says why when imported (an empty module would give a misleading ImportError).
        failing = f"raise ImportError({str(error)!r})\n".encode()
        return SourceFile(path, failing, origin, ()), str(error), ()
    source = SourceFile(path, converted.source.encode("utf-8"), origin, converted.origins)
    problem = (
        f"the file does not compile: {origin}, {converted.syntax_error}"
        if converted.syntax_error
        else None
    )
    notes = tuple(f"{origin}, {note}" for note in converted.set_aside)
    return source, problem, notes


def load_submission(
    path: str | os.PathLike,
    *,
    api: str = "tinycnn",
    entry: str | None = None,
    allow_imports: Iterable[str] = (),
) -> Submission:
    """Read one student's submission: a ``.py`` file, a ``.ipynb`` notebook, or a folder.

    A folder is read from `submission_folder` (``bob/`` holding only ``hw2/layers.py`` is read
    from ``hw2/``; messages still name each file from ``bob/``), and its entry is found as the
    module docstring says.

    Parameters
    ----------
    path : str or path-like
        The file, or the folder holding one student's modules.
    api : str
        One of `tinycnn.grading.adapters.API_NAMES`.
    entry : str, optional
        For a folder: the module with the contract functions (``layers`` or ``layers.py``).
    allow_imports : iterable of str
        The ``--allow-import`` names (a notebook keeps its imports of them).

    Returns
    -------
    Submission
        With `Submission.problem` set when the student's files cannot be graded.

    Raises
    ------
    FileNotFoundError
        If nothing is at ``path``.
    ValueError
        If ``api`` is unknown, or ``path`` is a file that is neither ``.py`` nor ``.ipynb``.
    """
    if api not in API_NAMES:
        raise ValueError(f"unknown API {api!r}; expected one of {', '.join(API_NAMES)}")
    target = Path(path)
    name = str(path)
    if not target.exists() and not target.is_symlink():
        raise FileNotFoundError(f"no such file or folder: {name}")
    if not target.is_dir():
        if target.suffix not in SUBMISSION_SUFFIXES:
            raise ValueError(f"{name} is not a .py file or a .ipynb notebook")
        target = target.resolve()  # a file named on the command line: its link is followed
        return _load_files(
            name, target.parent, [Path(target.name)], target.name, api, (), allow_imports
        )
    try:
        root, files, skipped = _find_submission(target, api, entry)  # one walk of the upload
    except SeveralFolders as several:
        listed = ", ".join(f"{folder}/" for folder in several.folders)
        unread = ", ".join(f"{folder}/" for folder in several.unread)
        why = (
            f" (it compares at most {MAX_BYTES // 2**20} MiB and {MAX_PARSED:,} words and "
            f"symbols of files, {MAX_FILES} a folder, and could not read all of {unread})"
            if unread
            else ""
        )
        return _failed(
            name,
            api,
            f"{name} holds its .py/.ipynb files in several folders ({listed}) and none at its "
            f"top, and cannot tell which holds the functions to grade{why}; name it with --entry",
        )
    except UploadTooLarge as error:
        return _failed(name, api, f"the upload cannot be read: {error}")
    prefix = root.relative_to(target).as_posix() + "/" if root != target else ""
    set_aside = capped_notes(
        [f"{prefix}{p.as_posix()} (not a regular file) was not read" for p in skipped]
    )
    if not files:
        return _failed(name, api, f"no .py or .ipynb file in {name}", set_aside)
    return _load_files(name, root, files, entry, api, set_aside, allow_imports, prefix)


def _load_files(
    name: str,
    root: Path,
    files: list[Path],
    entry: str | None,
    api: str,
    set_aside: Iterable[str],
    allow_imports: Iterable[str],
    prefix: str = "",
) -> Submission:
    """Read ``files`` (relative to ``root``) as one submission; ``prefix``: the path from the
    folder the student named to ``root`` (``"hw2/"``), for the files' names in messages.
    Parsing them all (notebooks converted, the entry chosen, its imports followed) stays
    within `MAX_PARSED`; more is the submission's problem."""
    try:
        with parse_budget(MAX_PARSED):
            return _read_files(name, root, files, entry, api, set_aside, allow_imports, prefix)
    except ParseBudgetSpent:
        return _failed(
            name,
            api,
            f"the files add up to more than {MAX_PARSED:,} words and symbols, more than the "
            f"checker reads (the reference layer file has about 13,000)",
            set_aside,
        )


def _read_files(
    name: str,
    root: Path,
    files: list[Path],
    entry: str | None,
    api: str,
    set_aside: Iterable[str],
    allow_imports: Iterable[str],
    prefix: str = "",
) -> Submission:
    """`_load_files`' reading, within the `parse_budget` it sets."""
    set_aside = list(set_aside)
    if len(files) > MAX_FILES:
        return _failed(
            name, api, f"{len(files)} .py/.ipynb files: at most {MAX_FILES} are read", set_aside
        )
    by_module: dict[str, Path] = {}
    too_long = [f for f in files if len(os.fsencode(f.as_posix())) > MAX_PATH]
    set_aside = [
        *set_aside,
        *(
            f"{prefix}{f.as_posix()[:60]}... was not read (its path is longer than {MAX_PATH} "
            "bytes)"
            for f in too_long
        ),
    ]
    files = [f for f in files if f not in too_long]
    for relative in files:
        key = relative.with_suffix("").as_posix()
        if key in by_module:
            return _failed(
                name,
                api,
                f"both {prefix}{by_module[key].as_posix()} and {prefix}{relative.as_posix()} "
                f"define module {key.replace('/', '.')}: keep one of them",
                set_aside,
            )
        by_module[key] = relative
    modules = [key.replace("/", ".") for key in by_module]
    shadowing = sorted({m.partition(".")[0] for m in modules} & _RESERVED_NAMES)
    if shadowing:
        return _failed(
            name,
            api,
            f"a student's module may not be named like a library the import rule names "
            f"({', '.join(shadowing)}): rename it",
            set_aside,
        )
    keep = allowed_modules(allow_imports)  # a notebook keeps imports of these (see .notebook)
    own = frozenset(m.partition(".")[0] for m in modules)
    sources: list[SourceFile] = []
    problems: dict[str, str] = {}
    # A notebook's conversion notes, by file: said only for a notebook that is graded (the
    # entry, or imported by it), not for CS231n's notebook beside the graded cs231n/layers.py.
    conversion_notes: dict[str, tuple[str, ...]] = {}
    budget = MAX_BYTES
    for relative in files:
        try:
            data = _read_bytes(root / relative, budget)
        except OSError as error:
            return _failed(
                name,
                api,
                f"cannot read {prefix}{relative.as_posix()}: {error.strerror or error}",
                set_aside,
            )
        budget -= len(data)
        if budget < 0:
            return _failed(
                name, api, f"the files add up to more than {MAX_BYTES // 2**20} MiB", set_aside
            )
        origin = prefix + relative.as_posix()
        source, problem, notes = _as_source(relative, data, keep, own, origin)
        sources.append(source)
        conversion_notes[source.path] = notes
        if problem:
            problems[source.path] = problem

    chosen, problem = _entry_of(sources, entry, api, name)
    if chosen is None:
        every_note = [note for notes in conversion_notes.values() for note in notes]
        return _failed(name, api, problem, [*set_aside, *every_note])
    if chosen.path in problems:
        return _failed(
            name, api, problems[chosen.path], [*set_aside, *conversion_notes[chosen.path]]
        )
    helpers = [s for s in sources if s is not chosen]
    # A helper that cannot be read is reported when (and if) the entry imports it.
    reached = reachable_files(sources, chosen)
    set_aside += [
        note for path, notes in conversion_notes.items() if path in reached for note in notes
    ]
    unimported = tuple(s.path for s in helpers if s.path not in reached)
    if unimported:
        listed = ", ".join(s.origin for s in helpers if s.path in unimported)
        set_aside.append(
            f"{listed} ({'it is' if len(unimported) == 1 else 'they are'} not imported by "
            f"{chosen.origin} or its imports, so not checked against the import rule unless "
            f"imported while grading)"
        )
    # Said whenever the reader chose: among files, or a folder below the one named.
    note = ""
    if entry is None and (len(sources) > 1 or prefix):
        among = f", chosen among {len(sources)} .py/.ipynb files" if len(sources) > 1 else ""
        note = f"graded {clean_name(chosen.origin)}{among}"
    return Submission(name, (chosen, *helpers), api, None, tuple(set_aside), unimported, note)


# --------------------------------------------------------------------------------------------
# Which folder and which file hold the functions to grade
# --------------------------------------------------------------------------------------------


def graded_definitions(source: SourceFile, api: str, modules: Collection[str] = ()) -> int:
    """How many functions the run grades ``source`` defines at its top level (the contract's
    names, or the course ``api``'s: `tinycnn.grading.adapters.course_functions`), read, never
    run. The one measure of "the file that defines the graded functions", for the entry of a
    folder and for the folder of an upload (`submission_folder`).

    A placeholder (`Outline.stubs`: the template's ``raise NotImplementedError``, ``pass``) is
    not a definition, so the untouched template beside the student's work does not "define the
    most" (attacker session 7b, F5). A name bound by a top-level ``from module import name``,
    where ``module`` is another file of the upload (``modules``: their module names), counts as
    defined, in a file that defines at least one graded function itself (``layers.py`` taking
    ``softmax_cross_entropy`` from the student's ``losses.py``); a file that only imports them
    (a course notebook running ``cs231n/layers.py``) defines none, as before.
    """
    graded = set(course_functions(api))
    outline = source.outline
    own = (outline.functions - outline.stubs) & graded
    if not own:
        return 0
    imported = {
        name
        for module, name in outline.imported
        if name in graded and module in modules and module != source.module
    }
    return len(own | imported)


def _any_course_definitions(source: SourceFile, modules: Collection[str] = ()) -> int:
    """How many functions of any API (the contract's or a course's) ``source`` defines, as
    `graded_definitions` counts them."""
    return max(graded_definitions(source, api, modules) for api in API_NAMES)


def _entry_of(
    sources: list[SourceFile], entry: str | None, api: str, name: str
) -> tuple[SourceFile | None, str]:
    """The entry module and, if there is none, why.

    With ``entry``: the module it names (a path, ``hw/layers``, or a dotted name); a bare name
    (``layers``) without a top-level file of it names the one file of that name at any depth
    (``cs231n/layers.py``), and is refused if several files have that name.
    Without ``entry``: the file that defines the graded functions (`graded_definitions`:
    placeholders not counted, names imported from the upload's other files counted) at
    the shallowest depth where any file defines one, the one defining the most of them there
    (``cs231n/layers.py`` below a course notebook that only imports it; ``layers.py`` above
    an old copy in ``backup/``). If no file defines any: the one defining another API's
    functions in the same way (graded, so the report can say which ``--api`` it looks
    written for), else the only file at the top.
    """
    top = [s for s in sources if "/" not in s.path]
    if entry is not None:
        wanted = entry.removesuffix(".py").removesuffix(".ipynb").rstrip("/")
        match = [s for s in sources if wanted in (s.path.removesuffix(".py"), s.module)]
        if match:
            return match[0], ""
        # A bare name (``layers``) with no top-level file of it: the one file of that name at
        # any depth (CS231n's ``cs231n/layers.py``, imported as ``cs231n.layers``).
        if "/" not in wanted and "." not in wanted:
            named = [s for s in sources if PurePosixPath(s.path).stem == wanted]
            if len(named) == 1:
                return named[0], ""
            if named:
                candidates = ", ".join(s.origin for s in named)
                return None, (
                    f"--entry {wanted} names several files of {name} ({candidates}): "
                    f"give the path of one, such as --entry {named[0].module.replace('.', '/')}"
                )
        names = ", ".join(s.origin for s in sources[:20]) + (" ..." if len(sources) > 20 else "")
        return None, f"no module {wanted} in {name} (--entry; its files: {names or 'none'})"
    modules = frozenset(s.module for s in sources)
    for measure in (
        lambda s: graded_definitions(s, api, modules),
        lambda s: _any_course_definitions(s, modules),
    ):
        defining = _defining_most(sources, measure)
        if len(defining) == 1:
            return defining[0], ""
        if defining:
            candidates = ", ".join(s.origin for s in defining)
            return None, (
                f"cannot tell which file of {name} holds the functions to grade "
                f"({candidates}); name it with --entry"
            )
    if len(top) == 1:
        return top[0], ""
    if not top:
        return None, f"no .py or .ipynb file at the top of {name}"
    return None, (
        f"cannot tell which file of {name} holds the functions to grade "
        f"({', '.join(s.origin for s in top)}); name it with --entry"
    )


def _defining_most(sources: list[SourceFile], measure) -> list[SourceFile]:
    """The files with the highest ``measure`` among those at the shallowest depth (folders
    below the submission's top) where any file's ``measure`` is not 0; empty if none is."""
    counted = [(source, measure(source)) for source in sources]
    depths = [source.path.count("/") for source, count in counted if count]
    if not depths:
        return []
    level = [(source, count) for source, count in counted if source.path.count("/") == min(depths)]
    most = max(count for _, count in level)
    return [source for source, count in level if count == most]


class UploadTooLarge(ValueError):
    """An upload with more entries or deeper folders than the checker searches."""


class SeveralFolders(ValueError):
    """An upload keeps its files in several sub-folders and none at its top, and nothing tells
    which of them holds the functions to grade (`submission_folder`)."""

    def __init__(self, folder: Path, folders: list[str], unread: Iterable[str] = ()):
        #: The sub-folders holding files; of these, those not read in full (more than
        #: `MAX_BYTES`, `MAX_PARSED` or `MAX_FILES` to compare), which may define the functions.
        self.folders = tuple(folders)
        self.unread = tuple(unread)
        super().__init__(f"{folder} holds its files in several folders: {', '.join(folders)}")


def _holds_files(folder: Path) -> bool:
    """Whether a regular ``.py``/``.ipynb`` file is under ``folder`` (links not followed),
    searched up to the first one; True for a folder too large to search (`UploadTooLarge`:
    reading it says so)."""
    try:
        return any(regular for _, regular in _candidates(folder))
    except UploadTooLarge:
        return True


def _folder_defines(
    folder: Path,
    measure,
    budget: int = MAX_BYTES,
    files: Iterable[Path] | None = None,
    counted: dict[Path, int] | None = None,
) -> tuple[bool | None, int]:
    """Whether a file under ``folder`` has a non-zero ``measure`` (a count of definitions:
    `graded_definitions`, `_any_course_definitions`; notebooks converted, nothing run), and
    the byte budget left of ``budget``. The one reader of "does this folder define them".

    The answer is None, not known, when the folder was not read in full and no file read
    defines: the budget ran out, of bytes or of the `parse_budget` in force (a folder hidden
    behind a large notebook is not "defining nothing": attacker session 7b, F2), it has more
    than `MAX_FILES` files (only the first are
    read), or it is too large to walk (`UploadTooLarge`). ``files``: the regular
    ``.py``/``.ipynb`` files under ``folder`` (relative, in `_walk`'s order) when already known,
    else ``folder`` is walked. ``counted``: the measure of each file already read (by path),
    filled here, so that a caller comparing folders at several levels reads each file once."""
    if files is None:
        try:
            files = _walk(folder)[0]
        except UploadTooLarge:
            return None, budget
    files = list(itertools.islice(files, MAX_FILES + 1))
    for relative in files[:MAX_FILES]:
        path = folder / relative
        if counted is not None and path in counted:
            count = counted[path]
        else:
            try:
                data = _read_bytes(path, budget)
            except OSError:
                continue  # not a definition; reading the folder says it cannot be read
            budget -= len(data)
            if budget < 0:
                return None, budget
            try:
                count = measure(_as_source(relative, data, frozenset())[0])
            except ParseBudgetSpent:
                return None, budget
            if counted is not None:
                counted[path] = count
        if count:
            return True, budget
    return (None if len(files) > MAX_FILES else False), budget


def _too_large_to_grade(folder: Path, files: list[Path]) -> bool:
    """Whether ``files`` (the regular ``.py``/``.ipynb`` files under ``folder``, relative) are
    more than `MAX_FILES` or add up to more than `MAX_BYTES` (their sizes, not read): a folder
    `load_submission` would refuse to read, so never the one to grade, on its own merits, not
    because other folders spent a shared budget (a virtual environment left in an upload, a
    notebook of large plots beside the code)."""
    if len(files) > MAX_FILES:
        return True
    total = 0
    for relative in files:
        with contextlib.suppress(OSError):
            total += os.lstat(folder / relative).st_size
        if total > MAX_BYTES:
            return True
    return False


def _names_a_file(folder: Path, entry: str) -> bool:
    """Whether ``--entry``'s module is a file right under ``folder`` (its path or dotted name)."""
    wanted = entry.removesuffix(".py").removesuffix(".ipynb").rstrip("/")
    stems = {wanted, wanted.replace(".", "/")}
    candidates = [folder / f"{stem}{suffix}" for stem in stems for suffix in SUBMISSION_SUFFIXES]
    candidates += [folder / stem / "__init__.py" for stem in stems]
    return any(_regular_file(path) is not None for path in candidates)


def submission_folder(folder: Path, api: str = "tinycnn", entry: str | None = None) -> Path:
    """The folder of an upload that holds the submission: ``folder``, or one below it.

    Students upload their files, or the folder holding them (a zipped folder, maybe beside a
    README, maybe with macOS's ``__MACOSX``; a class folder's ``bob/`` holding ``hw2/``; a
    repository's ``src/`` beside its ``tests/``). While a folder has no ``.py``/``.ipynb`` file
    at its top, the sub-folder holding some (at any depth) is read instead: the only one, or of
    several the only one whose files define functions the run grades (`graded_definitions`,
    ``api``). The descent stops at a Python package (a folder with ``__init__.py``, such as
    CS231n's ``cs231n/``: its modules import each other by the package's name, so it is read
    from the folder holding it) and at the folder holding ``entry``'s file. Hidden entries,
    ``SKIPPED_FOLDERS`` and links do not count (links are never followed). The one home of this
    rule: ``tinycnn check`` (one submission, or each student's folder of a class) and the
    Gradescope runner (:mod:`tinycnn.autograder`) both use it.

    The upload is walked once (`_find_submission`). An upload too large to search
    (`UploadTooLarge`) is read from ``folder`` itself, and reading it says so.

    Raises
    ------
    SeveralFolders
        Several sub-folders hold files, none at the top, and not exactly one of them defines
        the graded functions, or one that does not might: its files were not all read (more
        than `MAX_BYTES` or `MAX_PARSED` to compare in all, more than `MAX_FILES` in it).
    """
    try:
        return _find_submission(folder, api, entry)[0]
    except UploadTooLarge:
        return folder


def _find_submission(
    folder: Path, api: str, entry: str | None
) -> tuple[Path, list[Path], list[Path]]:
    """`submission_folder`'s folder, with what `_walk` finds under it (relative to it): the
    regular ``.py``/``.ipynb`` files and the other entries so named, all from one walk of
    ``folder`` (`_candidates`).

    Which sub-folders hold files, at every level of the descent, is read from that one walk:
    searching each sub-folder again at each level walked the upload once per level (19 s for
    99,000 files below a chain of 30 folders: attacker, session 6b, G6). The files of the
    sub-folders compared are read each once, within `MAX_BYTES` in all (not at each level);
    a folder not read in full is never taken to define nothing (`_folder_defines`).

    Raises
    ------
    UploadTooLarge
        As `upload_entries`, for the whole of ``folder``.
    SeveralFolders
        As `submission_folder`.
    """

    def measure(source: SourceFile) -> int:
        return graded_definitions(source, api)

    # (its path's parts from the upload's top, whether a regular file) of each candidate
    # under the folder searched, ``depth`` folders below the top
    entries = [(relative.parts, regular) for relative, regular in _candidates(folder)]
    depth = 0
    # One read budget for the whole descent, and each file read once (``counted``): down a
    # chain with a folder beside each link, each level compares folders holding the same files,
    # which a budget per comparison let the checker read and parse again at every level. A
    # folder not read in full for want of budget is not known to define nothing: no folder is
    # chosen over it (attacker session 7b, F2).
    budget = MAX_BYTES
    counted: dict[Path, int] = {}
    with parse_budget(MAX_PARSED):  # what comparing folders parses, all together
        while entry is None or not _names_a_file(folder, entry):
            here = False  # a regular file right in ``folder``
            below: dict[str, list[tuple[tuple[str, ...], bool]]] = {}  # by sub-folder, by name
            for parts, regular in entries:
                if len(parts) == depth + 1:
                    here = here or regular
                else:
                    below.setdefault(parts[depth], []).append((parts, regular))
            if here:
                break
            holding = [name for name, inside in below.items() if any(r for _, r in inside)]
            if len(holding) > 1:  # a repository's src/ beside its tests/: the one with functions
                defining, unknown = [], []
                for name in holding:
                    files = [Path(*parts[depth + 1 :]) for parts, r in below[name] if r]
                    if _too_large_to_grade(folder / name, files):
                        continue  # never the one graded (attacker session 7c, F3)
                    defines, budget = _folder_defines(
                        folder / name, measure, budget, files, counted
                    )
                    if defines:
                        defining.append(name)
                    elif defines is None:
                        unknown.append(name)
                if len(defining) != 1 or unknown:
                    raise SeveralFolders(folder, holding, unknown)
                holding = defining
            if not holding:
                break
            inside = below[holding[0]]
            if any(r and parts[depth + 1 :] == ("__init__.py",) for parts, r in inside):
                break  # a Python package: read from the folder holding it
            folder, entries, depth = folder / holding[0], inside, depth + 1
    files = [Path(*parts[depth:]) for parts, regular in entries if regular]
    skipped = [Path(*parts[depth:]) for parts, regular in entries if not regular]
    return folder, files, skipped


def imports_between(folder: Path) -> str | None:
    """Why ``folder`` holds one student's upload, not a class's submissions, in words
    (``"ConvolutionalNetworks.ipynb imports cs231n"``); None if it does not look like one.

    It does when it has the layout of one course assignment: a ``.py``/``.ipynb`` file at its
    top imports another of its entries (a module beside it, or a folder of ``.py``/``.ipynb``
    files), at most one entry defines graded functions of any API (`_any_course_definitions`,
    the measure of `graded_definitions`), and every entry so imported is a package (a folder
    with ``__init__.py``) or defines none: CS231n's notebook beside its ``cs231n/`` package,
    deeplearning.ai's notebook beside the course's ``public_tests.py``. A class is not one
    upload, whatever its files import: two entries that each define the functions (a student
    who copied a classmate with ``from alice import *``, students' files beside a course
    helper they import, several notebooks beside ``public_tests.py``), or a file importing a
    plain module that defines them (only a classmate's file would). Every import counts, a
    notebook's test cells' too; read (at most `MAX_FILES` files, `MAX_BYTES`, `MAX_PARSED`),
    never run.
    """
    try:
        tops, holding = top_entries(folder)
    except OSError:
        return None
    folders = {path.name: path for path in holding}
    if len(tops) + len(folders) > MAX_FILES:
        return None
    try:
        with parse_budget(MAX_PARSED):
            return _imports_between(tops, folders)
    except ParseBudgetSpent:
        return None  # more than the checker parses: not read as one upload


def _imports_between(tops: list[Path], folders: dict[str, Path]) -> str | None:
    """`imports_between`, its top files and folders listed, within a `parse_budget`."""
    from tinycnn.grading.notebook import notebook_cells

    budget = MAX_BYTES
    defines: dict[str, bool] = {}  # entry name -> whether it defines graded functions
    imports: dict[str, set[str]] = {}  # top file -> the entries it imports
    entries = {p.stem for p in tops} | set(folders)
    for path in tops:
        try:
            data = _read_bytes(path, budget)
        except OSError:
            continue
        budget -= len(data)
        if budget < 0:
            return None
        source = _as_source(Path(path.name), data, frozenset())[0]
        defines[path.stem] = defines.get(path.stem, False) or bool(_any_course_definitions(source))
        if path.suffix == ".ipynb":  # every cell, test cells too: what the notebook imports
            names = set().union(*(module_imports(cell) for cell in notebook_cells(data)))
        else:
            names = imported_modules(SourceFile(path.name, data, path.name)) or set()
        imports[path.name] = {n.partition(".")[0] for n in names} & (entries - {path.stem})
    if not any(imports.values()):
        return None
    for name, path in folders.items():
        defined, budget = _folder_defines(path, _any_course_definitions, budget)
        if budget < 0:
            return None
        defines[name] = bool(defined)  # a folder too large to read in full: as before, none
    if sum(defines.values()) > 1:
        return None  # two entries define the functions: two students' work
    for imported in set().union(*imports.values()):
        package = imported in folders and _regular_file(folders[imported] / "__init__.py")
        if defines.get(imported) and not package:
            return None  # a file importing a classmate's module
    importer = next(name for name, others in imports.items() if others)
    return f"{importer} imports {', '.join(sorted(imports[importer]))}"
