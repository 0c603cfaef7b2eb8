"""Templates a student starts from, shipped inside the package (``tinycnn template`` writes them).

Each template is a ``.py`` file in this folder: ``student_template.py`` is the op contract of
:mod:`tinycnn.reference.ops` with docstrings and TODOs; any other ``NAME.py`` is the template of
a course API that ``tinycnn check --api NAME`` grades. They are read with
:mod:`importlib.resources`, so they work from a wheel, a zip or a source checkout alike.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["DEFAULT", "FILE_NAMES", "available", "file_name", "read"]

#: The template of the op contract itself.
DEFAULT = "student_template"
#: The file ``tinycnn template`` writes each template to by default: the name the course gives
#: its file (CS231n's ``cs231n/layers.py``), the one the template's own ``tinycnn check`` line
#: and the README use (a test keeps the three equal).
FILE_NAMES = {
    DEFAULT: "my_ops.py",
    "cs231n": "layers.py",
    "deeplearning-ai": "step_by_step.py",
}


def available() -> list[str]:
    """Names of the shipped templates (file names without ``.py``), sorted, default included."""
    return sorted(
        entry.name.removesuffix(".py")
        for entry in resources.files(__name__).iterdir()
        if entry.name.endswith(".py") and entry.name != "__init__.py"
    )


def file_name(name: str = DEFAULT) -> str:
    """The file template ``name`` is written to by default (`FILE_NAMES`; ``NAME.py`` for a
    template not listed there)."""
    return FILE_NAMES.get(name, f"{name}.py")


def read(name: str = DEFAULT) -> str:
    """The text of template ``name``.

    Raises
    ------
    KeyError
        No template of that name (the message lists the available ones).
    """
    if name not in available():
        raise KeyError(f"no template {name!r} (available: {', '.join(available())})")
    return resources.files(__name__).joinpath(f"{name}.py").read_text(encoding="utf-8")
