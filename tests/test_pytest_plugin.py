"""The ``pytest11`` plugin (`tinycnn.pytest_plugin`): it loads in every pytest run of an
environment where tinycnn is installed, so it must leave other projects' options alone; and
``pytest --impl`` loads what ``tinycnn check`` grades, a submission split over modules too.

Each case is a fresh pytest in a subprocess: options are read once per session.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tinycnn.reference import ops as reference
from tinycnn.reference.ops import CONTRACT_FUNCTIONS

import tinycnn
from tinycnn.grading.grader import grade_submission
from tinycnn.grading.sandbox import Limits
from tinycnn.pytest_plugin import load_implementation

HERE = Path(__file__).resolve().parent
MULTI_MODULE = HERE / "fixtures" / "courses" / "multi_module"
CORRECT = HERE / "fixtures" / "submissions" / "correct_vectorized.py"
BUGGY = HERE / "fixtures" / "submissions" / "buggy_relu_zero_gradient.py"
TEST_OPS = HERE.parent / "parity_tests" / "test_ops.py"


def pytest_run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-q", "-p", "no:cacheprovider"],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "1000", "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def other_project(tmp_path) -> Path:
    """Another project of the environment whose conftest.py defines --impl and --impl-api."""
    project = tmp_path / "other"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "conftest.py").write_text(
        "def pytest_addoption(parser):\n"
        '    parser.addoption("--impl", default="c")\n'
        '    parser.addoption("--impl-api", default="v1")\n'
    )
    (project / "test_theirs.py").write_text(
        "def test_their_options(request):\n"
        '    with open("seen.txt", "w") as seen:\n'
        '        seen.write(request.config.getoption("--impl") + " "\n'
        '                   + request.config.getoption("--impl-api"))\n'
    )
    return project


def test_another_projects_impl_option_is_left_to_it(other_project):
    run = pytest_run(cwd=other_project)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (other_project / "seen.txt").read_text() == "c v1"
    run = pytest_run("--impl", "rust", "--impl-api", "v2", cwd=other_project)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (other_project / "seen.txt").read_text() == "rust v2"


def test_the_suite_takes_the_prefixed_option_beside_such_a_project(other_project):
    # The plugin's own name still works there (it reads the file: a missing one is its error).
    missing = other_project / "missing.py"
    run = pytest_run("--tinycnn-impl", str(missing), cwd=other_project)
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
    assert f"no such file: {missing}" in run.stderr


def test_impl_and_impl_api_remain_the_short_names_elsewhere(tmp_path):
    # The README's command, outside any project: --impl is the plugin's.
    run = pytest_run("--pyargs", "tinycnn.parity_tests", "--help", cwd=tmp_path)
    assert "--tinycnn-impl=PATH" in run.stdout and "--impl=PATH" in run.stdout
    run = pytest_run("--impl", str(tmp_path / "missing.py"), cwd=tmp_path)
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
    assert "--impl: no such file" in run.stderr


def test_a_relative_impl_path_is_read_from_where_pytest_starts_not_its_rootdir(tmp_path):
    # New user's README walkthrough, finding 5: README and --help now say which folder a
    # relative --impl PATH starts from; here the rootdir (pytest.ini) is above that folder.
    project = tmp_path / "project"
    here = project / "student"
    here.mkdir(parents=True)
    (project / "pytest.ini").write_text("[pytest]\n")
    (here / "ops.py").write_bytes(CORRECT.read_bytes())
    (project / "test_where.py").write_text(
        "from tinycnn.pytest_plugin import IMPL_KEY\n\n"
        "def test_where(request):\n"
        "    print('IMPL', request.config.stash[IMPL_KEY].__file__)\n"
    )
    run = pytest_run("../test_where.py", "--impl", "ops.py", "-s", cwd=here)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"IMPL {(here / 'ops.py').resolve()}" in run.stdout
    # The same path from the rootdir is not where it is read from.
    run = pytest_run("../test_where.py", "--impl", "student/ops.py", cwd=here)
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
    assert f"no such file: {(here / 'student' / 'ops.py').resolve()}" in run.stderr
    help_text = " ".join(pytest_run("--help", cwd=here).stdout.split())
    assert "a relative PATH is from the folder pytest is started in" in help_text


@pytest.fixture
def clean_imports(monkeypatch):
    """Undo what loading an implementation does to sys.path and sys.modules."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]


def test_impl_loads_a_submission_split_over_modules(clean_imports):
    # layers.py imports its siblings im2col.py and losses.py, as `check --one-submission`
    # grades the folder (before: "ModuleNotFoundError: No module named 'im2col'").
    module = load_implementation(MULTI_MODULE / "layers.py")
    assert sys.path[0] == str(MULTI_MODULE)
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(2, 3, 6, 5)), rng.normal(size=(4, 3, 3, 2)), rng.normal(size=4)
    expected = reference.conv2d_forward(x, w, b, stride=1, padding=1)
    np.testing.assert_allclose(module.conv2d_forward(x, w, b, 1, 1), expected, rtol=1e-10)
    logits, labels = rng.normal(size=(5, 3)), np.array([0, 2, 1, 1, 0])
    np.testing.assert_allclose(
        module.softmax_cross_entropy(logits, labels)[0],
        reference.softmax_cross_entropy(logits, labels)[0],
        rtol=1e-12,
    )


def test_a_sibling_named_like_a_library_the_suite_imports_is_refused(tmp_path, clean_imports):
    (tmp_path / "ops.py").write_text("import numpy as np\n")
    (tmp_path / "torch.py").write_text("")
    with pytest.raises(pytest.UsageError, match="instead of the installed torch"):
        load_implementation(tmp_path / "ops.py")


def test_a_sibling_named_like_the_standard_library_is_refused_in_one_line(tmp_path, clean_imports):
    # Review 5, finding 4: the plugin kept its own short list (numpy, torch, pytest, tinycnn);
    # a sibling timeit.py gave "8 errors during collection ... cannot import name
    # 'default_timer' from 'timeit'". Now the names `tinycnn check` reserves for a student's
    # modules, and the standard library's.
    (tmp_path / "ops.py").write_text(CORRECT.read_text())
    (tmp_path / "timeit.py").write_text("x = 1\n")
    run = pytest_run(str(TEST_OPS), "--impl", str(tmp_path / "ops.py"), cwd=HERE)
    assert run.returncode == 4, run.stdout + run.stderr
    assert f"--impl: {tmp_path / 'timeit.py'} would be imported as timeit" in run.stderr, run
    assert "errors during collection" not in run.stdout + run.stderr
    (tmp_path / "timeit.py").unlink()
    (tmp_path / "scipy.py").write_text("")  # a framework `tinycnn check` reserves
    with pytest.raises(pytest.UsageError, match="imported as scipy instead of the installed"):
        load_implementation(tmp_path / "ops.py")
    (tmp_path / "scipy.py").unlink()
    (tmp_path / "helpers.py").write_text("")  # must not: a helper's ordinary name
    assert load_implementation(tmp_path / "ops.py").relu_forward is not None


def test_a_sibling_tinycnn_that_is_not_the_installed_one_is_refused(tmp_path, clean_imports):
    (tmp_path / "my_ops.py").write_text("import numpy as np\n")
    (tmp_path / "tinycnn").mkdir()
    (tmp_path / "tinycnn" / "__init__.py").write_text("")
    installed = Path(tinycnn.__file__).resolve().parent
    with pytest.raises(pytest.UsageError) as refused:
        load_implementation(tmp_path / "my_ops.py")
    assert f"instead of the installed tinycnn (installed at {installed})" in str(refused.value)


def test_a_sibling_that_is_the_installed_package_is_allowed(tmp_path, clean_imports):
    # README: `pytest parity_tests --impl my_ops.py` from a clone's root, where `tinycnn
    # template` writes my_ops.py and the root's tinycnn/ IS the (editable) installed tinycnn.
    # Here the root is stood for by links to the installed tinycnn and numpy (before: refused,
    # "would replace the installed tinycnn ... rename it").
    (tmp_path / "tinycnn").symlink_to(Path(tinycnn.__file__).resolve().parent)
    (tmp_path / "numpy").symlink_to(Path(np.__file__).resolve().parent)
    # The root's reference/ is the installed tinycnn.reference (a name `check` reserves).
    (tmp_path / "reference").symlink_to(Path(reference.__file__).resolve().parent)
    (tmp_path / "my_ops.py").write_text(CORRECT.read_text())
    module = load_implementation(tmp_path / "my_ops.py")
    assert module.relu_forward(np.array([-1.0, 2.0])).tolist() == [0.0, 2.0]


@pytest.mark.slow
def test_check_and_pytest_impl_agree_on_a_submission_split_over_modules(tmp_path):
    report = grade_submission(MULTI_MODULE, limits=Limits(), train=False)
    assert [r.status for r in report.functions.values()] == ["pass"] * len(CONTRACT_FUNCTIONS)
    run = pytest_run(str(TEST_OPS), "--impl", str(MULTI_MODULE / "layers.py"), cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert " passed" in run.stdout and "failed" not in run.stdout


def test_an_impl_option_defined_below_the_root_needs_the_plugin_off(tmp_path):
    # What README says of this layout (review 3, finding 8): the conftest.py of tests/sub is read
    # during collection, after the plugin took --impl; `-p no:tinycnn` runs the project.
    sub = tmp_path / "tests" / "sub"
    sub.mkdir(parents=True)
    (sub / "conftest.py").write_text(
        'def pytest_addoption(parser):\n    parser.addoption("--impl", default="c")\n'
    )
    (sub / "test_a.py").write_text(
        'def test_x(request):\n    assert request.config.getoption("--impl") == "c"\n'
    )
    run = pytest_run(cwd=tmp_path)
    assert run.returncode != 0 and "conflicting option string: --impl" in run.stdout + run.stderr
    run = pytest_run("-p", "no:tinycnn", cwd=tmp_path)
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout + run.stderr


# -- --impl reads what `tinycnn check` reads: a notebook, one student's folder ---------------------

NOTEBOOK = HERE / "fixtures" / "courses" / "deeplearning_ai_step_by_step.ipynb"
ASSIGNMENT = HERE / "fixtures" / "courses" / "cs231n_assignment"


def _notebook(path: Path, *cells: str) -> Path:
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    notebook = new_notebook(cells=[new_markdown_cell("# My layers"), *map(new_code_cell, cells)])
    path.write_text(nbformat.writes(notebook), encoding="utf-8")
    return path


def test_impl_grades_a_notebooks_definitions_without_running_its_other_cells(
    tmp_path, clean_imports
):
    # Issue 10 review: `--impl hw.ipynb` gave "cannot import ... (is it a .py file?)" while
    # `tinycnn check hw.ipynb` grades it. The notebook's test cell must not run.
    marker = tmp_path / "ran.txt"
    path = _notebook(
        tmp_path / "hw.ipynb",
        CORRECT.read_text(),
        f"open({str(marker)!r}, 'w').write('ran')\nraise SystemExit(3)",
        "%matplotlib inline\nprint(relu_forward(np.ones(3)))",
    )
    module = load_implementation(path)
    assert not marker.exists()
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 4))
    np.testing.assert_array_equal(module.relu_forward(x), reference.relu_forward(x))
    assert set(CONTRACT_FUNCTIONS) <= set(vars(module))


def test_impl_grades_one_students_folder_from_the_entry_check_finds(tmp_path, clean_imports):
    # CS231n's assignment folder: check --api cs231n grades cs231n/layers.py, imported as
    # cs231n.layers (its package's own imports work); --impl takes the same module.
    module = load_implementation(ASSIGNMENT, "cs231n")
    assert module.__name__ == "cs231n.layers"
    assert Path(module.__file__).as_posix().endswith("cs231n/layers.py")
    assert {"conv_forward_naive", "max_pool_backward_naive", "softmax_loss"} <= set(vars(module))
    # A plain folder of modules: the entry imports its siblings.
    layers = load_implementation(MULTI_MODULE)
    x = np.random.default_rng(1).normal(size=(2, 3))
    np.testing.assert_allclose(
        layers.softmax_cross_entropy(x, np.array([0, 2]))[0],
        reference.softmax_cross_entropy(x, np.array([0, 2]))[0],
        rtol=1e-12,
    )


def test_a_folders_entry_named_like_a_module_already_imported_is_refused(tmp_path, clean_imports):
    # Imported by name, it would be the installed hypothesis (or replace it for the suite).
    (tmp_path / "hw").mkdir()
    (tmp_path / "hw" / "hypothesis.py").write_text(CORRECT.read_text())
    with pytest.raises(
        pytest.UsageError, match="its module hypothesis has the name of a module installed here"
    ):
        load_implementation(tmp_path / "hw")
    (tmp_path / "hw" / "hypothesis.py").rename(tmp_path / "hw" / "layers.py")  # must not
    assert load_implementation(tmp_path / "hw").__name__ == "layers"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: (d / "hw.ipynb").write_text("{"), "hw.ipynb is not a Jupyter notebook"),
        (lambda d: (d / "notes.txt").write_text("x"), "is not a .py file, a .ipynb notebook"),
        (lambda d: (d / "empty").mkdir(), "no .py or .ipynb file in"),
        (
            lambda d: [
                (d / "two").mkdir(),
                (d / "two" / "a.py").write_text(CORRECT.read_text()),
                (d / "two" / "b.py").write_text(CORRECT.read_text()),
            ],
            "(a.py, b.py); give that file to --impl",
        ),
    ],
    ids=["not-json", "not-python", "empty-folder", "two-candidate-entries"],
)
def test_what_impl_cannot_read_is_a_one_line_usage_error(make, message, tmp_path, clean_imports):
    make(tmp_path)
    path = max(tmp_path.iterdir(), key=lambda p: p.stat().st_mtime_ns)
    with pytest.raises(pytest.UsageError) as refused:
        load_implementation(path)
    text = str(refused.value)
    assert text.startswith("--impl: ") and message in text and "\n" not in text


def test_the_suite_runs_on_a_notebook_and_says_it_is_not_sandboxed(tmp_path):
    run = pytest_run(
        str(TEST_OPS), "--impl", str(NOTEBOOK), "--impl-api", "deeplearning-ai", "-v", cwd=HERE
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert " passed" in run.stdout and "failed" not in run.stdout
    header = next(line for line in run.stdout.splitlines() if "under test" in line)
    assert f"implementation under test: {NOTEBOOK} through the deeplearning-ai API" in header
    assert "NOT sandboxed: grade code you do not trust with tinycnn check" in header


def test_the_readme_and_the_help_say_impl_is_not_sandboxed(tmp_path):
    # Issue 10 review: README documented --impl without saying that the student's code runs in
    # pytest's own process (no sandbox, limits or import rule), unlike `tinycnn check`.
    readme = (HERE.parent / "README.md").read_text(encoding="utf-8")
    paragraphs = [" ".join(p.split()) for p in readme.split("\n\n")]
    command = r"pytest (--pyargs )?\S*parity_tests\S* --impl \S+\.(py|ipynb)"
    documenting = [p for p in paragraphs if re.search(command, p)]
    assert len(documenting) == 3
    for paragraph in documenting:
        assert re.search(r"not sandboxed|unsandboxed", paragraph), paragraph[:200]
    assert "grade code you do not trust (students', downloaded) with `tinycnn check`" in " ".join(
        paragraphs
    )
    run = pytest_run("--pyargs", "tinycnn.parity_tests", "--help", cwd=tmp_path)
    assert "NOT sandboxed: grade code you do not trust with tinycnn check" in " ".join(
        run.stdout.split()
    )


@pytest.mark.slow  # four gradings and four pytest runs
def test_check_and_pytest_impl_agree_on_notebooks_and_a_course_folder(tmp_path):
    # Issue 10: "check and pytest --impl agree on every kept submission", for the submissions
    # --impl now reads as check does. A notebook whose pool_backward routes the gradient to
    # the window's minimum fails maxpool2d_backward in both, and only there.
    from tests.test_check_agreement import function_of

    broken = tmp_path / "dlai_min_mask.ipynb"
    source = (HERE / "fixtures" / "courses" / "deeplearning_ai_as_written.ipynb").read_text()
    broken.write_text(source.replace("mask = (x == np.max(x))", "mask = (x == np.min(x))"))
    submissions = [
        (NOTEBOOK, "deeplearning-ai"),
        (broken, "deeplearning-ai"),
        (ASSIGNMENT, "cs231n"),
    ]
    for path, api in submissions:
        report = grade_submission(path, api=api, limits=Limits(), train=False)
        run = pytest_run(
            str(TEST_OPS), "--impl", str(path), "--impl-api", api, "--tb=no", "-rf", cwd=HERE
        )
        assert run.returncode in (0, 1), run.stdout[-2000:] + run.stderr[-2000:]
        failing = {function_of(t) for t in re.findall(r"^FAILED \S*::(\S+)", run.stdout, re.M)}
        for function in report.graded_functions:
            passes = report.functions[function].status == "pass"
            assert passes != (function in failing), (path.name, function, run.stdout[-1500:])
        expected = {"maxpool2d_backward"} if path == broken else set()
        assert failing == expected, (path.name, failing)
