"""Packaging promises: declared lower bounds are the tested minimums, ruff is pinned, the
wheel adds one top-level name and carries its data, the sdist carries its tests."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
MINIMUMS = ROOT / ".ci" / "minimums.txt"


def _pins(path: Path) -> dict[str, Version]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.partition("#")[0].strip()
        if line:
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", line
            pins[requirement.name.lower()] = Version(specifier.version)
    return pins


def _tested_requirements() -> list[Requirement]:
    """What `nox -s minimums` installs: the dependencies and the test extra."""
    project = PYPROJECT["project"]
    return [
        Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]
    ]


def test_every_lower_bound_is_pinned_in_the_minimums_constraints():
    pins = _pins(MINIMUMS)
    for requirement in _tested_requirements():
        lower = [s for s in requirement.specifier if s.operator == ">="]
        assert len(lower) == 1, f"{requirement} needs one lower bound (>=)"
        name = requirement.name.lower()
        assert name in pins, f"{name} is missing from {MINIMUMS.name}"
        assert pins[name] == Version(lower[0].version), (
            f"{requirement}: {MINIMUMS.name} tests {name}=={pins[name]}"
        )
        for extra in requirement.extras:  # dask[distributed] pulls distributed too
            assert extra in pins and pins[extra] == pins[name], extra


def test_torch_and_numpy_bounds_cannot_pair_a_numpy_1_build_with_numpy_2():
    bounds = {r.name: r.specifier for r in _tested_requirements()}
    # torch before 2.3 and pandas before 2.2.2 were compiled against NumPy 1 only
    assert not bounds["torch"].contains("2.2.2") and bounds["torch"].contains("2.13.0")
    assert not bounds["pandas"].contains("2.2.1") and bounds["pandas"].contains("2.2.2")


def test_ruff_is_pinned_exactly():
    (ruff,) = [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"]["lint"]]
    assert ruff.name == "ruff" and [s.operator for s in ruff.specifier] == ["=="]


def test_licence_metadata_is_spdx_and_the_version_is_written_once():
    project = PYPROJECT["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "version" not in project.get("dynamic", [])
    version_line = f'version = "{project["version"]}"'
    sources = [*ROOT.glob("tinycnn/**/*.py"), ROOT / "noxfile.py", ROOT / "README.md"]
    assert not [p for p in sources if version_line in p.read_text(encoding="utf-8")]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """The wheel and the sdist, built from this tree (pip fetches setuptools: slow)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "-o", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    return {"wheel": next(out.glob("*.whl")), "sdist": next(out.glob("*.tar.gz"))}


@pytest.mark.slow
def test_wheel_adds_one_top_level_name_with_its_data(built):
    names = zipfile.ZipFile(built["wheel"]).namelist()
    dist_info = next(n.split("/")[0] for n in names if ".dist-info/" in n)
    assert {name.split("/")[0] for name in names} == {"tinycnn", dist_info}
    for expected in (
        "tinycnn/templates/student_template.py",
        "tinycnn/parity_tests/fixtures/buggy_ops.py",
        "tinycnn/parity_tests/conftest.py",
        "tinycnn/pytest_plugin.py",
        f"{dist_info}/licenses/LICENSE",
    ):
        assert expected in names, expected
    entry_points = zipfile.ZipFile(built["wheel"]).read(f"{dist_info}/entry_points.txt").decode()
    assert "[pytest11]\ntinycnn = tinycnn.pytest_plugin" in entry_points


@pytest.mark.slow
def test_sdist_carries_tests_fixtures_examples_noxfile_and_licence(built):
    with tarfile.open(built["sdist"]) as archive:
        names = {name.partition("/")[2] for name in archive.getnames()}
    tracked = subprocess.run(
        ["git", "ls-files", "tests", "examples", "parity_tests/fixtures", "tinycnn/templates"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.split()
    for expected in [
        "LICENSE",
        "noxfile.py",
        ".ci/minimums.txt",
        *(tracked or ["tests/fixtures/submissions/correct_loops.py"]),
    ]:
        assert expected in names, expected
