"""Developer sessions: ``nox -l`` lists them, ``nox -s tests`` runs one.

Every session installs the CPU build of PyTorch first: a plain ``pip install torch`` on a
machine without it would download a multi-GB CUDA build.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.default_venv_backend = "venv"

DEFAULT_TORCH = "2.13.0"
NEWEST_TORCH = "2.14.1"
TORCH_VERSIONS = [DEFAULT_TORCH, NEWEST_TORCH]
#: The lowest version of every dependency pyproject.toml declares (a test keeps them equal).
MINIMUMS = Path(__file__).parent / ".ci" / "minimums.txt"


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
def minimums(session: nox.Session) -> None:
    """Run the default tests on the lowest declared version of every dependency."""
    session.install("-c", str(MINIMUMS), "torch")  # the CPU torch of the constraints first
    session.install("-c", str(MINIMUMS), "-e", ".[test]")
    session.run("python", "-m", "pip", "list", silent=False)
    session.run("pytest", *session.posargs)


@nox.session
def newest(session: nox.Session) -> None:
    """Run the default tests on the newest release of every dependency (and of torch here).

    torch comes from the configured indexes: with PyTorch's CPU index
    (PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu) it is the CPU build; an index
    holding only PyPI's default Linux build installs that one, with its nvidia-* packages.
    """
    session.install(f"torch=={NEWEST_TORCH}")
    # Everything else eagerly to its newest release, but torch held at the CPU build just
    # installed: an upgrade could otherwise fetch PyPI's CUDA build of a newer release.
    hold = Path(session.create_tmp()) / "hold-torch.txt"
    hold.write_text(f"torch=={NEWEST_TORCH}\n", encoding="utf-8")
    session.install("-c", str(hold), "--upgrade", "--upgrade-strategy", "eager", "-e", ".[test]")
    session.run("python", "-m", "pip", "list", silent=False)
    session.run("pytest", *session.posargs)


@nox.session
def sdist(session: nox.Session) -> None:
    """Build the sdist, install it (not this tree) and run its own tests from its unpacked copy."""
    import tarfile

    tmp = Path(session.create_tmp())
    session.install(f"torch=={DEFAULT_TORCH}", "build")
    session.run("python", "-m", "build", "--sdist", "-o", str(tmp))
    archive = max(tmp.glob("tinycnn-*.tar.gz"), key=lambda p: p.stat().st_mtime)
    session.install(f"{archive}[test]")
    with tarfile.open(archive) as tar:
        tar.extractall(tmp / "unpacked", filter="data")
    session.chdir(tmp / "unpacked" / archive.name.removesuffix(".tar.gz"))
    session.run("pytest", *session.posargs)  # the console script: see the README


@nox.session
@nox.parametrize("torch_version", TORCH_VERSIONS)
def parity(session: nox.Session, torch_version: str) -> None:
    """Run the NumPy-vs-PyTorch parity suite against one torch release."""
    install_project(session, torch_version)
    session.run("pytest", "parity_tests", "-m", "slow or not slow", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check formatting (ruff format --check) and lint (ruff check) with the pinned ruff."""
    lint_extra = nox.project.load_toml("pyproject.toml")["project"]["optional-dependencies"]
    session.install(*lint_extra["lint"])  # ruff==X.Y.Z, pinned in pyproject.toml
    session.run("ruff", "format", "--check", ".")
    session.run("ruff", "check", ".", *session.posargs)


@nox.session
def reports(session: nox.Session) -> None:
    """Regenerate every table and figure of the lecture (pass --quick for a fast run)."""
    install_project(session)
    session.run("tinycnn", "report", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark the NumPy reference against PyTorch and JAX (pass --quick for a fast run)."""
    install_project(session, extras="test,bench")
    session.run("tinycnn", "bench", *session.posargs)
