"""Templates a student starts from, shipped inside the package (``tinycnn template`` writes them).

Each template is a ``.py`` file in this folder: ``student_template.py`` is the op contract of
:mod:`tinycnn.reference.ops` with docstrings and TODOs; any other ``NAME.py`` is the template of
a course API that ``tinycnn check --api NAME`` grades. They are read with
:mod:`importlib.resources`, so they work from a wheel, a zip or a source checkout alike.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["DEFAULT", "available", "read"]

#: The template of the op contract itself.
DEFAULT = "student_template"


def available() -> list[str]:
    """Names of the shipped templates (file names without ``.py``), sorted, default included."""
    return sorted(
        entry.name.removesuffix(".py")
        for entry in resources.files(__name__).iterdir()
        if entry.name.endswith(".py") and entry.name != "__init__.py"
    )


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
