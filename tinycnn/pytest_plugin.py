"""pytest plugin of the parity suite, registered by entry point (``pytest11``), so it also
works from an installed package: ``pytest --pyargs tinycnn.parity_tests --impl my_ops.py``.

It provides what must exist before pytest reads the command line, which a conftest.py inside
an installed package cannot do (pytest reads that conftest only after parsing):

- the ``--tinycnn-impl PATH`` option: the implementation of the op contract that the suite
  tests instead of :mod:`tinycnn.reference.ops` (the ``ops`` fixture of
  ``tinycnn/parity_tests/conftest.py`` hands it to the tests), read as ``tinycnn check`` reads
  a submission: a ``.py`` file (its folder is put first on ``sys.path``, so that it can import
  its sibling modules), a ``.ipynb`` notebook (its definitions only, converted by
  :mod:`tinycnn.grading.notebook`, the one notebook reader; its other cells are not run) or a
  folder holding one student's modules (read by
  :func:`tinycnn.grading.submission.load_submission`, its entry found by the same rule as
  ``tinycnn check --one-submission``). The code runs in the pytest process itself: no sandbox,
  no limits, no import rule (``tinycnn check`` is the way to run code one does not trust);
- the ``--tinycnn-impl-api NAME`` option: the file is written against a course's layer API
  (``cs231n``, ``deeplearning-ai``) and is tested through the same adapters ``tinycnn check
  --api NAME`` uses (:mod:`tinycnn.grading.adapters`), on the cases ``check --api`` grades; the
  tests of a function outside that API are skipped ("relu_forward is not graded under the
  deeplearning-ai API"), as ``check`` reports it "not graded" (``parity_tests/conftest.py``);
- ``--impl`` and ``--impl-api``, the short names of those two, unless a conftest.py of the
  project under test defines an option of that name itself (the plugin loads in every pytest
  run of an environment where tinycnn is installed, so it must not take a generic name from
  another project): they are added once pytest has read the initial conftest files (the
  rootdir's and those of the paths on the command line). A conftest.py read later, during
  collection, that adds ``--impl`` collides with them (pytest's "conflicting option string"):
  such a project runs with ``-p no:tinycnn``;
- the ``slow`` marker, so ``--strict-markers`` and ``-m "not slow"`` work without this
  project's pyproject.toml.

Only the standard library and pytest are imported here: the plugin loads in every pytest run
of an environment where tinycnn is installed.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import pytest

__all__ = ["IMPL_KEY", "SLOW_MARKER", "load_implementation"]

#: Where the loaded ``--impl`` module is kept (``config.stash[IMPL_KEY]``).
IMPL_KEY = pytest.StashKey[ModuleType]()
IMPL_MODULE_NAME = "parity_tests_impl_under_test"
SLOW_MARKER = "slow: takes more than a few seconds; deselect with '-m \"not slow\"'"


#: The plugin's options: (name, short name added when free, argparse destination, default).
OPTIONS = (
    ("--tinycnn-impl", "--impl", "tinycnn_impl", None),
    ("--tinycnn-impl-api", "--impl-api", "tinycnn_impl_api", "tinycnn"),
)
_HELP = {
    "tinycnn_impl": "the implementation of the op contract tested instead of "
    "tinycnn.reference.ops: a .py file (its folder goes first on sys.path, for its sibling "
    "modules), a .ipynb notebook (its definitions only) or one student's folder of modules; "
    "a relative PATH is from the folder pytest is started in, not from its rootdir. It runs "
    "in this pytest process, NOT sandboxed: grade code you do not trust with tinycnn check",
    "tinycnn_impl_api": "the layer API the implementation is written against (as tinycnn "
    "check --api): tinycnn (default), cs231n or deeplearning-ai",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tinycnn", "TinyCNN parity suite")
    for name, _, destination, default in OPTIONS:
        group.addoption(
            name,
            dest=destination,
            metavar="NAME" if destination.endswith("api") else "PATH",
            default=default,
            help=_HELP[destination],
        )


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args):
    """Add ``--impl`` and ``--impl-api`` once the initial conftest files have added theirs:
    a project that defines ``--impl`` keeps it (and this suite is then run with
    ``--tinycnn-impl``)."""
    result = yield
    group = parser.getgroup("tinycnn", "TinyCNN parity suite")
    for name, short, destination, default in OPTIONS:
        try:
            group.addoption(
                short,
                dest=destination,
                metavar="NAME" if destination.endswith("api") else "PATH",
                default=default,
                help=f"short for {name} (unless the project under test has {short})",
            )
        except (ValueError, argparse.ArgumentError):
            pass  # another plugin or conftest.py has it: that project's option
    return result


def _shadowed_names() -> frozenset[str]:
    """Modules a file beside the implementation may not be named like: with its folder first
    on ``sys.path`` it would replace a module the suite itself imports. The names ``tinycnn
    check`` reserves for a student's modules (`tinycnn.grading.submission._reserved_names`:
    the frameworks, NumPy, this project's packages), the standard library's (a ``timeit.py``
    would break collection far from its cause) and pytest's."""
    from tinycnn.grading.submission import _reserved_names

    return _reserved_names() | frozenset(sys.stdlib_module_names) | {"pytest", "_pytest"}


def _installed_file(name: str) -> Path | None:
    """Where the module ``name`` the suite imports comes from (resolved), None if nowhere."""
    module = sys.modules.get(name)
    origin = getattr(module, "__file__", None) if module is not None else None
    if origin is None:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        origin = spec.origin if spec is not None else None
    return Path(origin).resolve() if origin else None


def _check_siblings(folder: Path) -> None:
    """Refuse a sibling of the implementation that would replace a library the suite imports;
    a sibling that *is* that library (a clone's root holds the editable ``tinycnn/``) is fine."""
    for name in sorted(_shadowed_names()):
        for candidate in (folder / f"{name}.py", folder / name / "__init__.py"):
            if not candidate.exists():
                continue
            installed = _installed_file(name)
            if installed is not None and candidate.resolve() == installed:
                continue
            if candidate.resolve() == _installed_file(f"tinycnn.{name}"):
                continue  # a clone's root: its reference/ is the installed tinycnn.reference
            where = f" (installed at {installed.parent})" if installed is not None else ""
            raise pytest.UsageError(
                f"--impl: {candidate} would be imported as {name} instead of the installed "
                f"{name}{where}: the file's folder goes first on sys.path, for its sibling "
                "modules; rename it"
            )


def load_implementation(path: Path, api: str = "tinycnn") -> ModuleType:
    """Import a submission as a module; raise `pytest.UsageError` if that is impossible.

    ``path`` is what ``tinycnn check`` grades: a ``.py`` file, a ``.ipynb`` notebook or a
    folder holding one student's modules (`_load_converted`; ``api``, the course API, decides
    which file of a folder is the entry, as in ``tinycnn check --api``). A ``.py`` file's
    folder is put first on ``sys.path`` (as ``python FILE`` does), so a submission split over
    several modules imports its siblings, as in ``tinycnn check --one-submission``. A sibling
    named like a module the suite may import (`_shadowed_names`: numpy, torch, pytest,
    tinycnn, the standard library's) is refused unless it is that module itself.

    The module runs in the calling process, unsandboxed (no limits, no import rule).
    """
    if not path.exists():
        raise pytest.UsageError(f"--impl: no such file: {path}")
    if path.is_dir() or path.suffix == ".ipynb":
        return _load_converted(path, api)
    if not path.is_file() or path.suffix != ".py":
        raise pytest.UsageError(
            f"--impl: {path} is not a .py file, a .ipynb notebook or a folder of .py/.ipynb files"
        )
    return _import_file(path, path.parent, path)


def _load_converted(path: Path, api: str) -> ModuleType:
    """A notebook or a folder, read as ``tinycnn check`` reads it (one home:
    :func:`tinycnn.grading.submission.load_submission`, notebooks through
    :mod:`tinycnn.grading.notebook`), written to a scratch folder (removed at exit) and
    imported from there: a notebook's converted module under the suite's name for the
    implementation (its own folder also on ``sys.path``, for its sibling ``.py`` modules), a
    folder's entry under its own module name (``cs231n.layers``), so that its imports of the
    student's other modules and packages work as in ``tinycnn check``."""
    from tinycnn.grading.submission import load_submission  # NumPy and nbformat: only here

    try:
        submission = load_submission(path, api=api)
    except (OSError, ValueError) as error:
        raise pytest.UsageError(f"--impl: {error}") from None
    if submission.problem is not None:
        problem = submission.problem.replace(
            "; name it with --entry", f"; give that file to --impl ({path}/FILE.py)"
        )
        raise pytest.UsageError(f"--impl: {path}: {problem}")
    scratch = Path(tempfile.mkdtemp(prefix="tinycnn-impl-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    entry = submission.write(scratch)
    if path.is_dir():
        # Its modules are imported by name: one named like an installed module would be
        # replaced by it, or replace it for the suite (hypothesis.py, a sibling's utils).
        for name in sorted({module.partition(".")[0] for module in submission.modules}):
            installed = _installed_file(name)
            if installed is not None:
                raise pytest.UsageError(
                    f"--impl: {path}: its module {name} has the name of a module installed "
                    f"here ({installed}); rename it"
                )
        return _import_file(entry, scratch, path, module=submission.entry.module)
    _check_siblings(path.parent)  # the notebook's own .py siblings may be imported by name
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    return _import_file(entry, scratch, path)


def _import_file(path: Path, folder: Path, shown: Path, module: str | None = None) -> ModuleType:
    """Import ``path`` with ``folder`` first on ``sys.path``: as ``module`` (by that name, a
    package's module with its package) or, by default, as the file under `IMPL_MODULE_NAME`.
    ``shown``: the submission as the user named it, for messages."""
    _check_siblings(folder)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    if module is not None:
        try:
            loaded = importlib.import_module(module)
        except (Exception, SystemExit) as error:
            raise pytest.UsageError(
                f"--impl: importing {shown} (its module {module}) failed: "
                f"{type(error).__name__}: {error}"
            ) from error
        return loaded
    spec = importlib.util.spec_from_file_location(IMPL_MODULE_NAME, path)
    if spec is None or spec.loader is None:
        raise pytest.UsageError(f"--impl: cannot import {shown} (is it a .py file?)")
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[IMPL_MODULE_NAME] = loaded  # dataclasses and pickling look modules up here
    try:
        spec.loader.exec_module(loaded)
    except (Exception, SystemExit) as error:
        del sys.modules[IMPL_MODULE_NAME]
        raise pytest.UsageError(
            f"--impl: importing {shown} failed: {type(error).__name__}: {error}"
        ) from error
    return loaded


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", SLOW_MARKER)
    # Load the file now, so a bad path stops the run with one clear line before any test runs.
    impl = config.getoption("tinycnn_impl")
    if impl is not None:
        path = Path(config.invocation_params.dir, impl).resolve()
        api = config.getoption("tinycnn_impl_api")
        if api != "tinycnn":
            from tinycnn.grading import adapters  # NumPy only, like the file under test

            if api not in adapters.API_NAMES:
                names = ", ".join(adapters.API_NAMES)
                raise pytest.UsageError(f"--impl-api {api}: expected one of {names}")
        module = load_implementation(path, api)
        if api != "tinycnn":
            namespace, _ = adapters.contract_namespace(api, module)
            namespace.__file__ = f"{module.__file__} (through the {api} API)"
            module = namespace
        config.stash[IMPL_KEY] = module


def pytest_report_header(config: pytest.Config) -> str | None:
    module = config.stash.get(IMPL_KEY, None)
    if module is None:
        return None
    impl = config.getoption("tinycnn_impl")
    api = config.getoption("tinycnn_impl_api")
    through = f" through the {api} API" if api != "tinycnn" else ""
    return (
        f"tinycnn parity suite: implementation under test: {impl}{through}, imported from "
        f"{module.__file__.removesuffix(f' (through the {api} API)')}; it runs in this "
        "process, NOT sandboxed: grade code you do not trust with tinycnn check"
    )
