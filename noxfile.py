"""Developer sessions: ``nox -l`` lists them, ``nox -s tests`` runs one.

Every session installs the CPU build of PyTorch first: a plain ``pip install torch`` on a
machine without it would download a multi-GB CUDA build.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.default_venv_backend = "venv"

DEFAULT_TORCH = "2.13.0"
TORCH_VERSIONS = ["2.13.0", "2.14.1"]


def install_project(session: nox.Session, torch_version: str = DEFAULT_TORCH, extras: str = "test"):
    """CPU torch first, then the project (set PIP_EXTRA_INDEX_URL to the CPU wheel index, see
    README, on machines without a local torch wheel)."""
    session.install(f"torch=={torch_version}")
    session.install("-e", f".[{extras}]")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the whole test suite, slow tests included (what CI runs)."""
    install_project(session)
    session.run("pytest", "-m", "slow or not slow", *session.posargs)


@nox.session
@nox.parametrize("torch_version", TORCH_VERSIONS)
def parity(session: nox.Session, torch_version: str) -> None:
    """Run the NumPy-vs-PyTorch parity suite against one torch release."""
    install_project(session, torch_version)
    session.run("pytest", "parity_tests", "-m", "slow or not slow", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Lint the code with ruff."""
    session.install("ruff")
    session.run("ruff", "check", ".", *session.posargs)


@nox.session
def reports(session: nox.Session) -> None:
    """Regenerate every table and figure of the lecture (pass --quick for a fast run)."""
    install_project(session)
    session.run("tinycnn", "report", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark the NumPy reference against PyTorch (pass --quick for a fast run)."""
    install_project(session)
    session.run("tinycnn", "bench", *session.posargs)
