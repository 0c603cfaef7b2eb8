"""Notebooks as students write them: what `convert_notebook` keeps, and how ``tinycnn check``
grades the result.

Each fixture is a notebook written here with `nbformat` the way a course notebook is written
(a setup cell, the student's functions, test cells, magics). The unit tests read the converted
module; the end-to-end tests grade the notebook through ``tinycnn check`` (no training, so a
correct notebook grades in about a second). Expected verdicts come from what the fixtures hold
(the correct contract file, split into cells), never from the converter's code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from tinycnn.reference.ops import CONTRACT_FUNCTIONS

from tinycnn.cli import main
from tinycnn.grading.notebook import convert_notebook

SUBMISSIONS = Path(__file__).parent / "fixtures" / "submissions"


def correct_body() -> str:
    """The correct contract file without its docstring and its ``import numpy as np``."""
    source = (SUBMISSIONS / "correct_vectorized.py").read_text()
    body = source.split('"""', 2)[2]
    assert "import numpy as np\n" in body
    return body.replace("import numpy as np\n", "", 1).strip() + "\n"


def notebook(*cells: str) -> bytes:
    """A notebook: a markdown title (cell 1), then one code cell per argument (cells 2, 3...)."""
    made = [new_markdown_cell("# Homework 2")] + [new_code_cell(source) for source in cells]
    return nbformat.writes(new_notebook(cells=made)).encode()


def converted(*cells: str, **options):
    return convert_notebook(notebook(*cells), "hw.ipynb", **options)


def check(path: Path, capsys, *options: str) -> str:
    """``tinycnn check --no-train PATH``: its output (stdout), each run of spaces and line
    breaks as one space (the report wraps long messages)."""
    main(["check", "--no-train", *options, str(path)])
    return " ".join(capsys.readouterr().out.split())


# The end-to-end gradings cost about a second each: where a unit test of the conversion above
# it checks the rule, the grading is marked slow (CI runs it); three stay in the default suite
# (a refused import the kept code uses, a helper notebook that does not compile, a notebook entry
# beside a helper only its test cells import).
def passes_all(out: str) -> bool:
    return f"PASS, {len(CONTRACT_FUNCTIONS)} of {len(CONTRACT_FUNCTIONS)} functions pass" in out


# --------------------------------------------------------------------------------------------
# Magics: only where a statement starts (review finding 8)
# --------------------------------------------------------------------------------------------

CONTINUATION = (
    "def check_shape(x):\n"
    "    if x.ndim != 4:\n"
    '        raise ValueError("bad shape %s"\n'
    "                         % (x.shape,))\n"
    "    return x\n"
)


def test_a_continuation_line_starting_with_percent_is_python_not_a_magic():
    # Valid Python: nothing is a magic, nothing is replaced.
    source = converted("import numpy as np", CONTINUATION).source
    assert "                         % (x.shape,))" in source
    compile(source, "hw", "exec")
    # The same function in a cell that also holds magics: only the magics go.
    result = converted(
        "import numpy as np", "%matplotlib inline\n!pip install tqdm\n" + CONTINUATION
    )
    assert "                         % (x.shape,))" in result.source
    assert "%matplotlib" not in result.source and "pip" not in result.source
    compile(result.source, "hw", "exec")
    assert result.syntax_error is None


def test_lines_inside_strings_and_docstrings_are_never_rewritten():
    cell = (
        "%load_ext autoreload\n"
        'MSG = """\n%d items\n!important\nnp.pad?\n"""\n'
        "def f(x):\n"
        '    """Pads x.\n\n    !important: x is not copied\n    %timeit f(x)\n    """\n'
        "    %timeit x\n"
        "    return x\n"
    )
    source = converted(cell).source
    assert 'MSG = """\n%d items\n!important\nnp.pad?\n"""' in source
    assert '    !important: x is not copied\n    %timeit f(x)\n    """' in source
    # ... while a magic where a statement starts is still replaced (same indentation).
    assert '    """\n    pass\n    return x' in source
    namespace: dict = {}
    exec(compile(source, "hw", "exec"), namespace)
    assert namespace["MSG"] == "\n%d items\n!important\nnp.pad?\n"


def test_magics_at_statement_starts_are_still_set_aside():
    cell = (
        "files = !ls\n"
        "np.pad?\n"
        "??np.pad\n"
        "x = (1 +\n"
        "     2)\n"
        "if True:\n"
        "    %time y = [1,\n"
        "def g(v):\n"
        "    return v \\\n"
        "        % 3\n"
    )
    result = converted("import numpy as np", cell)
    assert result.syntax_error is None
    assert "def g(v):\n    return v \\\n        % 3" in result.source
    assert "!ls" not in result.source and "?" not in result.source
    assert "cell 3: code, magics (not run)" in result.set_aside


def test_a_cell_docstring_is_not_reported_as_code_set_aside():
    result = converted('"""Layers of homework 2."""\nimport os\n...', "'notes'\nprint(1)")
    assert result.set_aside == ("cell 3: code (not run)",)


@pytest.mark.slow  # its rule's fast test: the conversion's, above
def test_a_notebook_with_a_percent_continuation_passes_check(tmp_path, capsys):
    path = tmp_path / "pct.ipynb"
    path.write_bytes(
        notebook(
            "%matplotlib inline\nimport numpy as np",
            correct_body(),
            "%load_ext autoreload\n" + CONTINUATION + 'NOTE = """\n%d items\n"""',
        )
    )
    out = check(path, capsys)
    assert passes_all(out), out


# --------------------------------------------------------------------------------------------
# One import statement naming allowed and set-aside modules (review finding 9)
# --------------------------------------------------------------------------------------------


def test_a_mixed_import_keeps_the_allowed_names_and_sets_aside_the_others():
    result = converted(
        "import numpy as np, matplotlib.pyplot as plt, os.path\nimport h5py, pandas as pd",
        "def f(x):\n    return np.asarray(x)",
        keep_imports={"numpy"},
    )
    source = result.source
    assert "import numpy as np, os.path\n" in source
    assert "matplotlib" not in source and "h5py" not in source and "pandas" not in source
    assert "cell 2: import matplotlib, h5py, pandas (not run)" in result.set_aside
    # The rewritten line still points at its cell and line.
    line = source.splitlines().index("import numpy as np, os.path") + 1
    assert result.locate(line) == "cell 2, line 1"
    namespace: dict = {}
    exec(compile(source, "hw", "exec"), namespace)
    assert namespace["f"]([1, 2]).tolist() == [1, 2]


def test_imports_that_name_only_allowed_or_only_other_modules_are_unchanged():
    result = converted(
        "import numpy as np, os  # both allowed\nimport matplotlib.pyplot as plt, seaborn",
        keep_imports={"numpy"},
    )
    assert "import numpy as np, os  # both allowed\n" in result.source
    assert "plt" not in result.source and "seaborn" not in result.source


@pytest.mark.slow  # its rule's fast test: the conversion's, above
def test_a_notebook_importing_numpy_with_matplotlib_in_one_line_passes_check(tmp_path, capsys):
    path = tmp_path / "multi_import.ipynb"
    path.write_bytes(notebook("import numpy as np, matplotlib.pyplot as plt", correct_body()))
    out = check(path, capsys)
    assert passes_all(out), out


# --------------------------------------------------------------------------------------------
# Constants: tuples and lists of names (review finding 15)
# --------------------------------------------------------------------------------------------


def test_tuple_and_list_constants_are_kept():
    result = converted(
        "import numpy as np\nEPS, SCALE = 1e-8, 0.5\n[LOW, HIGH] = (-1, 1)\nA, *REST = 1, 2, 3",
        "PI, TAU = np.pi, 2 * np.pi\nfirst, second = f(1)\nROW, COL = x.shape",
        "def f(x):\n    return x * SCALE + EPS + LOW + HIGH + sum(REST)",
        keep_imports={"numpy"},
    )
    source = result.source
    assert "EPS, SCALE = 1e-8, 0.5\n[LOW, HIGH] = (-1, 1)\nA, *REST = 1, 2, 3\n" in source
    # An operation over constants is one (finding 2 of session 5); not constants: a call of
    # the student's function, a name nothing kept binds.
    assert "PI, TAU = np.pi, 2 * np.pi" in source
    assert "first" not in source and "ROW" not in source
    namespace: dict = {}
    exec(compile(source, "hw", "exec"), namespace)
    assert namespace["f"](2.0) == 2.0 * 0.5 + 1e-8 - 1 + 1 + 5


def test_a_constant_reading_a_set_aside_name_is_set_aside_not_an_import_failure():
    result = converted(
        "import numpy as np\nx = np.ones(3)\nx_ref = x\nPI = np.pi\nconv = f",
        "def f(v):\n    return v\n\nalias = f\nOUT = (alias, PI, None)",
        keep_imports={"numpy"},
    )
    source = result.source
    assert "x_ref" not in source and "conv = f" not in source
    assert "PI = np.pi" in source and "alias = f" in source and "OUT = (alias, PI, None)" in source
    exec(compile(source, "hw", "exec"), {})


@pytest.mark.slow  # its rule's fast test: the conversion's, above
def test_a_notebook_with_tuple_constants_passes_check(tmp_path, capsys):
    body = correct_body().replace(
        "def relu_forward(x):\n", "def relu_forward(x):\n    x = x * ONE + ZERO\n", 1
    )
    assert "x * ONE + ZERO" in body
    path = tmp_path / "constants.ipynb"
    path.write_bytes(notebook("import numpy as np\nZERO, ONE = 0, 1", body))
    out = check(path, capsys)
    assert passes_all(out), out


# --------------------------------------------------------------------------------------------
# Cell magics whose body runs in the notebook's namespace (review finding 15)
# --------------------------------------------------------------------------------------------


def test_the_body_of_a_time_capture_or_prun_cell_is_read_like_any_cell():
    result = converted(
        "import numpy as np",
        "%%time\ndef g(x):\n    return x\nprint(g(1))",
        "%%capture out\nEPS = 1e-8\n%matplotlib inline\ndef h():\n    return EPS",
        "\n  %%prun -s cumulative\ndef k():\n    return 3",
        keep_imports={"numpy"},
    )
    source = result.source
    assert "%%" not in source and "print" not in source and "matplotlib" not in source
    assert "def g(x):" in source and "EPS = 1e-8" in source and "def k():" in source
    line = source.splitlines().index("def g(x):") + 1
    assert result.locate(line) == "cell 3, line 2"
    line = source.splitlines().index("def k():") + 1
    assert result.locate(line) == "cell 5, line 3"
    assert "cell 3: the %%time line (the cell's code is read as usual)" in result.set_aside
    assert "cell 3: code (not run)" in result.set_aside
    namespace: dict = {}
    exec(compile(source, "hw", "exec"), namespace)
    assert namespace["h"]() == 1e-8 and namespace["k"]() == 3


def test_timeit_and_other_cell_magics_are_still_set_aside():
    result = converted(
        "%%timeit\ndef t():\n    pass",
        "%%bash\necho hi",
        "%%writefile helper.py\ndef w():\n    pass",
        "%%time\n",
    )
    assert "def t" not in result.source and "def w" not in result.source
    assert "echo" not in result.source
    assert (
        "cell 2: a %%timeit cell (IPython runs its body inside a function of its own, so what "
        "it defines does not exist afterwards)" in result.set_aside
    )
    assert "cell 4: a %%writefile cell (cell magics are not run)" in result.set_aside
    assert result.syntax_error is None


@pytest.mark.slow  # its rule's fast test: the conversion's, above
def test_a_notebook_whose_functions_sit_in_a_time_cell_passes_check(tmp_path, capsys):
    path = tmp_path / "celltime.ipynb"
    path.write_bytes(notebook("%%time\nimport numpy as np\n" + correct_body()))
    out = check(path, capsys)
    assert passes_all(out), out


# --------------------------------------------------------------------------------------------
# from __future__ imports at the top of a later cell (review finding 15)
# --------------------------------------------------------------------------------------------


def test_future_imports_of_any_cell_go_to_the_top_of_the_module():
    result = converted(
        "import numpy as np",
        "from __future__ import annotations\n\ndef f(x: np.ndarray) -> Tensor:\n    return x",
        "from __future__ import annotations, division\nprint(1)",
    )
    lines = result.source.splitlines()
    assert lines[1:3] == [
        "from __future__ import annotations",
        "from __future__ import annotations, division",
    ]
    assert result.locate(2) == "cell 3, line 1" and result.locate(3) == "cell 4, line 1"
    assert "# cell 4" not in result.source  # it kept nothing else
    namespace: dict = {}
    exec(compile(result.source, "hw", "exec", dont_inherit=True), namespace)
    assert namespace["f"].__annotations__ == {"x": "np.ndarray", "return": "Tensor"}


def test_what_only_the_whole_module_fails_on_is_said_at_its_cell_and_line():
    braces = converted("import numpy as np", "def f():\n    pass", "from __future__ import braces")
    assert braces.syntax_error == "cell 4, line 1: not a chance"
    nonlocal_ = converted("x = 1", "def f():\n    nonlocal q\n    return q")
    assert nonlocal_.syntax_error == "cell 3, line 2: no binding for nonlocal 'q' found"


@pytest.mark.slow  # its rule's fast test: the conversion's, above
def test_a_notebook_with_a_future_import_in_a_later_cell_passes_check(tmp_path, capsys):
    path = tmp_path / "future.ipynb"
    path.write_bytes(
        notebook("import numpy as np", "from __future__ import annotations\n" + correct_body())
    )
    out = check(path, capsys)
    assert passes_all(out), out
    path.write_bytes(
        notebook("import numpy as np", correct_body(), "from __future__ import braces")
    )
    out = check(path, capsys)
    assert "the file does not compile: future.ipynb, cell 4, line 1: not a chance." in out, out
    assert "future.py" not in out


# --------------------------------------------------------------------------------------------
# Refused imports: a violation only when the kept code uses them (review finding 3)
# --------------------------------------------------------------------------------------------

REFUSED = {"torch", "scipy", "tinycnn"}
SETUP = (
    "import numpy as np\nimport torch\nimport torch.nn.functional as F\nfrom torch import nn, optim"
)


def test_a_refused_import_only_test_cells_use_is_set_aside_and_said_so():
    result = converted(
        SETUP,
        "def relu_forward(x):\n    return np.maximum(x, 0)",
        "assert np.allclose(relu_forward(x), F.relu(torch.tensor(x)).numpy())\nnn.Linear(2, 3)",
        keep_imports={"numpy"},
        refused_imports=REFUSED,
    )
    assert "torch" not in result.source and "import numpy as np" in result.source
    assert "cell 2: import torch (no kept code uses it) (not run)" in result.set_aside


def test_a_refused_import_the_kept_code_uses_is_kept_with_its_cell_and_line():
    result = converted(
        SETUP + "\nimport scipy.signal as sig, tinycnn",
        "def relu_forward(x):\n    return F.relu(torch.as_tensor(x)).numpy()",
        "LAYER = nn\nconv = sig.correlate2d",
        keep_imports={"numpy"},
        refused_imports=REFUSED,
    )
    lines = result.source.splitlines()
    # Kept as written where every name is used; only the used names of the others.
    for line, where in [
        ("import torch", "cell 2, line 2"),
        ("import torch.nn.functional as F", "cell 2, line 3"),
        ("from torch import nn", "cell 2, line 4"),
        ("import scipy.signal as sig", "cell 2, line 5"),
    ]:
        assert result.locate(lines.index(line) + 1) == where, line
    assert "optim" not in result.source and "tinycnn" not in result.source.split("\n", 1)[1]
    assert "cell 2: import torch, tinycnn (no kept code uses them) (not run)" in result.set_aside
    # --allow-import torch: kept whatever uses it.
    allowed = converted(SETUP, keep_imports={"numpy", "torch"}, refused_imports=REFUSED)
    assert "from torch import nn, optim" in allowed.source


def test_check_fails_a_notebook_only_when_its_kept_code_uses_torch(tmp_path, capsys):
    path = tmp_path / "torch_check.ipynb"
    test_cell = (
        "x = np.random.randn(2, 3)\n"
        "assert np.allclose(relu_forward(x), torch.relu(torch.tensor(x)).numpy())"
    )
    path.write_bytes(notebook("import numpy as np\nimport torch", correct_body(), test_cell))
    out = check(path, capsys)
    assert passes_all(out), out
    assert "not allowed" not in out
    helper = "def compare(x):\n    return torch.relu(torch.tensor(x)).numpy()"
    path.write_bytes(
        notebook("import numpy as np\nimport torch", correct_body(), helper, test_cell)
    )
    out = check(path, capsys)
    assert "import torch (cell 2, line 2) is not allowed" in out, out
    assert "FAIL, 9 of 9 functions pass, import policy violated" in out, out


# --------------------------------------------------------------------------------------------
# A helper notebook of a folder that does not compile (review finding 10)
# --------------------------------------------------------------------------------------------


def test_a_notebook_that_does_not_compile_raises_at_its_cell_and_line_when_imported():
    result = converted("def pad(x, p):\n    return x", "def broken(:\n    pass")
    assert result.syntax_error == "cell 3, line 1: invalid syntax"
    with pytest.raises(SyntaxError, match=r"^invalid syntax$") as raised:
        exec(compile(result.source, "utils.py", "exec"), {})
    assert result.locate(raised.traceback[-1].lineno + 1) == "cell 3, line 1"


def test_a_cell_that_does_not_compile_names_its_line_once():
    # New user's README walkthrough, finding 2: not "line 2: ... (detected at line 2)".
    result = converted("def pad(x, p):\n    return x", "y = 1\nx = 'ab")
    assert result.syntax_error == "cell 3, line 2: unterminated string literal"


def student_folder(tmp_path: Path, helper: bytes) -> Path:
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "utils.ipynb").write_bytes(helper)
    (folder / "layers.py").write_text(
        "import numpy as np\nfrom utils import pad\n\n" + correct_body()
    )
    return folder


def test_check_names_a_helper_notebook_that_does_not_compile_in_its_own_terms(tmp_path, capsys):
    good = "def pad(x, p):\n    return np.pad(x, p)"
    folder = student_folder(tmp_path, notebook("import numpy as np", good, "def broken(:"))
    out = check(folder, capsys, "--one-submission", "--entry", "layers")
    assert "the file does not compile: invalid syntax (utils.ipynb, cell 4, line 1" in out, out
    assert "/box/" not in out and "utils.py" not in out and "cannot import" not in out
    (folder / "utils.ipynb").write_text("def pad(x, p): pass")  # not a notebook at all
    out = check(folder, capsys, "--one-submission", "--entry", "layers")
    assert "raised ImportError: utils.ipynb is not a Jupyter notebook" in out, out
    assert "/box/" not in out and "cannot import" not in out
    # There is no converted notebook to point into (review 3): the file is named, no line.
    assert "at utils.ipynb, in <module>" in out and "converted notebook" not in out, out
    # The same helper, compiling: graded as usual.
    (folder / "utils.ipynb").write_bytes(notebook("import numpy as np", good, "print(pad)"))
    out = check(folder, capsys, "--one-submission", "--entry", "layers")
    assert passes_all(out), out


# --------------------------------------------------------------------------------------------
# Line ends: Python ends a line at "\r" too (attack finding F4)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("line_end", ["\r", "\r\n"])
def test_a_carriage_return_cannot_smuggle_set_aside_code_into_a_kept_definition(line_end):
    # ast.parse sees the def spanning four lines; split at "\n" it was one line, so the three
    # set-aside statements after it were copied as part of the definition and ran.
    result = converted(
        f"def helper():{line_end}{line_end}{line_end}    return 1\n"
        "x = np.random.randn(3)\nrelu_forward = lambda x: x\nprint('ran')\n",
        keep_imports={"numpy"},
    )
    source = result.source
    assert "def helper():" in source and "return 1" in source
    for smuggled in ("np.random.randn", "relu_forward", "print"):
        assert smuggled not in source
    namespace: dict = {}
    exec(compile(source, "hw", "exec"), namespace)
    assert namespace["helper"]() == 1


# --------------------------------------------------------------------------------------------
# "Uses" a refused import: only reads of the module's globals count (review 3, finding 2)
# --------------------------------------------------------------------------------------------

COURSES = Path(__file__).parent / "fixtures" / "courses"
TORCH_SETUP = "import numpy as np\nimport torch\nimport torch.nn.functional as F"


def test_a_local_variable_named_like_an_import_does_not_use_it():
    shadowing = [
        # CS231n's own convolution code: a local F (the filter count), loads and stores.
        "def conv(x, w):\n    F, _, HH, WW = w.shape\n    return np.zeros((F, HH, WW))",
        # A parameter, a comprehension variable, a closure's variable of the enclosing function.
        "def scale(x, F=2):\n    return x * F",
        "def rows(x):\n    return [F * 2 for F in x]",
        "def outer(x):\n    torch = len(x)\n    def inner():\n        return torch + 1\n"
        "    return inner",
        "SQUARES = [F * F for F in range(3)]",
        "square = lambda F: F * F",
    ]
    for cell in shadowing:
        result = converted(TORCH_SETUP, cell, keep_imports={"numpy"}, refused_imports=REFUSED)
        assert "import torch" not in result.source, cell
        note = "cell 2: import torch (no kept code uses it) (not run)"
        assert note in result.set_aside, (cell, result.set_aside)


def test_a_read_of_the_module_level_alias_anywhere_uses_the_import():
    reads = [
        "def relu(x):\n    return F.relu(x)",
        # Declared global in a function that also binds locals; a nested function's global.
        "def relu(x):\n    global F\n    y = x\n    return F.relu(y)",
        "def outer(x):\n    def inner():\n        return F.relu(x)\n    return inner",
        "def rows(x):\n    return [F.relu(v) for v in x]",
        # A class body reads the module's F (its methods' F is global too).
        "class Layer:\n    act = F.relu",
        "class Layer:\n    def forward(self, x):\n        return F.relu(x)",
        # Read at the top level: a constant, a decorator, a default value.
        "act = F",
        "@F.relu\ndef f(x):\n    return x",
        "def f(x, act=F.relu):\n    return act(x)",
    ]
    for cell in reads:
        result = converted(TORCH_SETUP, cell, keep_imports={"numpy"}, refused_imports=REFUSED)
        lines = result.source.splitlines()
        assert "import torch.nn.functional as F" in lines, cell
        where = result.locate(lines.index("import torch.nn.functional as F") + 1)
        assert where == "cell 2, line 3", cell
        assert "import torch" not in lines, cell  # torch itself: no kept code reads it


@pytest.mark.slow  # its rules' fast tests: the refused imports', above
def test_a_cs231n_notebook_with_a_pytorch_self_check_cell_passes_check(tmp_path, capsys):
    # The reviewer's notebook: the course's layers, and a test cell comparing with PyTorch.
    layers = (COURSES / "cs231n_layers_float64.py").read_text()
    assert "F, _, HH, WW = w.shape" in layers
    self_check = (
        "x = np.random.randn(2, 3, 5, 5); w = np.random.randn(4, 3, 3, 3); b = np.zeros(4)\n"
        "out, _ = conv_forward_naive(x, w, b, {'stride': 1, 'pad': 1})\n"
        "ref = F.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), padding=1).numpy()\n"
        "assert np.allclose(out, ref)"
    )
    path = tmp_path / "selfcheck.ipynb"
    path.write_bytes(notebook(TORCH_SETUP, layers, self_check))
    out = check(path, capsys, "--api", "cs231n")
    assert "PASS, 9 of 9 functions pass" in out, out
    assert "not allowed" not in out and "import torch (no kept code uses it)" in out, out
    # A kept function that really reads the module's F: the rule reports it where it is.
    helper = "def compare(x):\n    return F.relu(x)"
    path.write_bytes(notebook(TORCH_SETUP, layers, helper, self_check))
    out = check(path, capsys, "--api", "cs231n")
    assert "import torch (cell 2, line 3) is not allowed" in out, out  # line 3: F
    assert "FAIL, 9 of 9 functions pass, import policy violated" in out, out


# --------------------------------------------------------------------------------------------
# Constants after a star import; a set-aside constant is named (review 3, finding 6)
# --------------------------------------------------------------------------------------------


def test_after_a_kept_star_import_a_constant_reading_any_name_is_kept():
    result = converted(
        "import numpy as np\nfrom math import *\nZERO = 0.0\nNEG_FILL = inf",
        "def fill():\n    return -NEG_FILL",
        keep_imports={"numpy"},
    )
    assert "NEG_FILL = inf" in result.source
    namespace: dict = {}
    exec(compile(result.source, "hw", "exec"), namespace)
    assert namespace["fill"]() == float("-inf")
    # The student's own module, star-imported (a folder's notebook): kept the same way.
    own = converted(
        "from layers import *\nconv = conv_forward", keep_imports={"numpy", "layers"}
    ).source
    assert "from layers import *\nconv = conv_forward" in own
    # A star import that is set aside (not allowed) binds nothing: the constant goes too.
    plotted = converted(
        "import numpy as np\nfrom matplotlib.pyplot import *\nFIG = figure",
        keep_imports={"numpy"},
    )
    assert "FIG" not in plotted.source
    assert "cell 2: FIG = figure (reads figure, which no kept code binds)" in plotted.set_aside


def test_a_set_aside_constant_is_named_with_the_names_it_reads_that_nothing_binds():
    result = converted(
        "import numpy as np\nx = np.ones(3)\nx_ref = x\nprint(x)",
        "PAIR = (x, y, np.pi)\nEPS = 1e-8",
        keep_imports={"numpy"},
    )
    assert result.set_aside == (
        "cell 2: code (not run)",
        "cell 2: x_ref = x (reads x, which no kept code binds)",
        "cell 3: PAIR = (x, y, np.pi) (reads x and y, which no kept code binds)",
    )
    assert "EPS = 1e-8" in result.source


@pytest.mark.parametrize("extra", [0, 1, 5000])
def test_the_notes_on_what_was_set_aside_are_capped_and_say_how_many_more(extra):
    # Attacker, session 6b, G4: a notebook of 20,000 cells gave 930 KB of notes for the report.
    # One note per test cell (`print(k)`); up to the cap, every one is listed.
    from tinycnn.grading.notebook import MAX_SET_ASIDE_NOTES

    tests = [f"print({k})" for k in range(MAX_SET_ASIDE_NOTES + extra)]
    result = converted("def relu_forward(x):\n    return x", *tests)
    expected = [f"cell {k + 3}: code (not run)" for k in range(MAX_SET_ASIDE_NOTES)]
    if extra:
        expected.append(
            f"{extra:,} more {'note' if extra == 1 else 'notes'} on what was set aside, not listed"
        )
    assert list(result.set_aside) == expected
    assert "def relu_forward" in result.source  # what is kept does not depend on the notes


def test_a_capped_list_of_notes_still_names_the_statements_a_kept_function_reads():
    # G4: the note explaining a NameError (a set-aside statement binding what a kept function
    # reads) is listed however many other notes come before it.
    from tinycnn.grading.notebook import MAX_SET_ASIDE_NOTES

    tests = [f"print({k})" for k in range(MAX_SET_ASIDE_NOTES + 10)]
    result = converted("def relu_forward(x):\n    return x * SCALE", *tests, "SCALE = scale()")
    last = MAX_SET_ASIDE_NOTES + 13
    assert len(result.set_aside) == MAX_SET_ASIDE_NOTES + 1
    assert result.set_aside[-3:] == (
        f"cell {MAX_SET_ASIDE_NOTES + 1}: code (not run)",
        f"cell {last}, line 1: `SCALE = scale()` is not run, and relu_forward reads SCALE",
        "12 more notes on what was set aside, not listed",
    )


@pytest.mark.slow  # its rule's fast test: the conversion's, above
def test_a_notebook_whose_function_reads_a_constant_after_a_star_import_passes(tmp_path, capsys):
    wrapped = (
        "\n\n_old_relu = relu_forward\n"
        "def relu_forward(x):\n    assert NEG_FILL > 0\n    return _old_relu(x)\n"
    )
    path = tmp_path / "star.ipynb"
    path.write_bytes(
        notebook(
            "import numpy as np\nfrom math import *\nZERO = 0.0\nNEG_FILL = inf",
            correct_body() + wrapped,
        )
    )
    out = check(path, capsys)
    assert passes_all(out), out
    assert "NameError" not in out


# --------------------------------------------------------------------------------------------
# Review 3, smaller notebook items: strings that open a statement, late __future__ imports
# --------------------------------------------------------------------------------------------


def test_a_magic_like_line_inside_a_string_that_opens_a_statement_is_kept_as_written():
    # The string is a statement of its own (not a docstring, no INDENT before it), in a cell
    # that has a real magic, so the cell is tokenized.
    in_def = "%matplotlib inline\ndef f():\n    x = 1\n    '''\n%d items\n    '''\n    return x"
    result = converted(in_def)
    assert "def f():\n    x = 1\n    '''\n%d items\n    '''\n    return x\n" in result.source
    # Dedenting into the string (DEDENT comes first), and at a cell's top level.
    dedented = "%matplotlib inline\ndef g():\n    return 1\nNOTE = '''\n!important\n'''"
    assert "NOTE = '''\n!important\n'''" in converted(dedented).source
    top = "%matplotlib inline\n'''\n!pip install numpy\n'''\n%time g()\nX = 2"
    result = converted(top)
    assert "X = 2" in result.source and "%time" not in result.source
    # The magics around the strings are still set aside.
    for source in (in_def, dedented, top):
        assert "%matplotlib" not in converted(source).source


def test_a_future_import_after_other_code_of_its_cell_does_not_compile():
    # Jupyter compiles each cell on its own: Python refuses this cell (SyntaxError).
    for cell, line in [
        ("import numpy as np\nfrom __future__ import annotations", 2),
        ("%matplotlib inline\nfrom __future__ import annotations", 2),
        ("def f():\n    pass\n\nfrom __future__ import annotations", 4),
    ]:
        result = converted(cell, keep_imports={"numpy"})
        assert result.syntax_error == (
            f"cell 2, line {line}: from __future__ imports must occur at the beginning of the file"
        ), cell
    # At the top of a cell, after its docstring and other such imports: legal.
    legal = '"""Layers."""\nfrom __future__ import annotations\nfrom __future__ import division'
    assert converted("X = 1", legal).syntax_error is None


# --------------------------------------------------------------------------------------------
# Magics written without % (IPython's automagic), where IPython runs them (issue 10 leftovers)
# --------------------------------------------------------------------------------------------
# As IPython 9.18 / ipykernel 7.4 transform them (InteractiveShell.transform_cell): a cell of one
# line whose first word names a line magic runs that magic; in a longer cell the line is Python's.


@pytest.mark.parametrize(
    "cell",
    ["cd data", "ls -l", "pwd", "pip install tqdm", "  cd ..", "\n\nmkdir out\n", "cd\tdata"],
)
def test_a_one_line_cell_without_percent_is_set_aside_as_a_magic(cell):
    result = converted("import numpy as np", cell, "def relu_forward(x):\n    return x")
    assert result.syntax_error is None, result.syntax_error
    assert cell.strip() not in result.source
    assert "def relu_forward(x):" in result.source
    # Valid Python as written (``ls``, ``pwd``, ``ls -l``) is Python's: set aside as code, never
    # a syntax error; the others are IPython's magics.
    magic = cell.strip() not in ("ls -l", "pwd")
    assert ("cell 3: magics (not run)" in result.set_aside) == magic, result.set_aside
    assert ("cell 3: code (not run)" in result.set_aside) == (not magic), result.set_aside


@pytest.mark.parametrize(
    "cells, where",
    [
        # In a longer cell IPython leaves the line to Python, which refuses it (so does Jupyter).
        (("cd data\nimport os",), "cell 2, line 1"),
        (("import os\npip install tqdm",), "cell 2, line 2"),
        (("cd data\n   ",), "cell 2, line 1"),
        # Not a line magic's name: Python 2's print, a typo.
        (("print 'hello'",), "cell 2, line 1"),
        (("cdd data",), "cell 2, line 1"),
        # A name the notebook binds above (IPython checks its namespace) is not a magic.
        (("def cd(path):\n    return path", "cd data"), "cell 3, line 1"),
        (("for ls in range(2):\n    pass", "ls data/"), "cell 3, line 1"),
    ],
)
def test_a_line_ipython_leaves_to_python_still_does_not_compile(cells, where):
    result = converted(*cells)
    assert result.syntax_error is not None and result.syntax_error.startswith(where + ": "), (
        result.syntax_error
    )


def test_an_assignment_to_a_magics_name_is_python():
    # IPython's AssignmentChecker: ``cd = 3`` and ``ls, x = 1, 2`` are assignments, kept as
    # constants; ``cd.x`` is no magic's name.
    result = converted("cd = 3", "ls, x = 1, 2", "def f():\n    return cd + ls + x")
    assert "cd = 3" in result.source and "ls, x = 1, 2" in result.source
    assert result.set_aside == ()


@pytest.mark.slow  # its rule's fast test: the conversion's, above
def test_a_notebook_with_magics_without_percent_passes_check(tmp_path, capsys):
    path = tmp_path / "hw.ipynb"
    cells = ("pip install numpy", "cd ..", "import numpy as np", correct_body(), "ls -l data")
    path.write_bytes(notebook(*cells))
    out = check(path, capsys)
    assert passes_all(out), out  # before: "the file does not compile: cell 2, line 1"
    assert "cell 2: magics (not run)" in out and "cell 3: magics (not run)" in out, out


# --------------------------------------------------------------------------------------------
# Imports of the student's own modules: kept only where the kept code uses them
# --------------------------------------------------------------------------------------------


def test_an_own_module_import_only_test_cells_use_is_set_aside():
    result = converted(
        "import numpy as np\nfrom helpers import pad, load_data\nimport helpers.plots as hp",
        "def conv(x):\n    return pad(x, 1)",
        "x = load_data()\nhp.show(conv(x))",
        keep_imports={"numpy"},
        own_modules={"helpers"},
    )
    assert "from helpers import pad\n" in result.source  # only the name the kept code reads
    assert "load_data" not in result.source and "hp" not in result.source
    assert "cell 2: import helpers (no kept code uses it) (not run)" in result.set_aside


def test_an_own_star_import_is_kept_only_for_a_name_nothing_kept_binds():
    setup = "import numpy as np\nfrom cs231n.layers import *\nfrom cs231n.data_utils import *"
    unused = converted(
        setup,
        "def rel_error(x, y):\n    return np.max(np.abs(x - y))",
        keep_imports={"numpy"},
        own_modules={"cs231n"},
    )
    assert "cs231n" not in unused.source.split("\n", 1)[1]
    assert "cell 2: import cs231n (no kept code uses it) (not run)" in unused.set_aside
    used = converted(
        setup,
        "def conv_relu(x, w, b, p):\n    return relu_forward(conv_forward_naive(x, w, b, p)[0])",
        keep_imports={"numpy"},
        own_modules={"cs231n"},
    )
    # relu_forward may come from either star import: both are kept, as Python would run them.
    assert "from cs231n.layers import *" in used.source
    assert "from cs231n.data_utils import *" in used.source


def test_an_own_star_import_is_not_kept_for_a_variable_a_set_aside_cell_binds():
    # Review 5, finding 2: a kept function reading `data`, which a set-aside cell binds, kept
    # `from cs231n.data_utils import *` (it imports imageio: an ImportError in the sandbox).
    cells = (
        "import numpy as np",
        "from cs231n.data_utils import *",
        "data = get_CIFAR10_data()",
        "def relu_forward(x):\n    return np.maximum(x, 0)",
        "def show():\n    print(data['X_val'].shape)",
    )
    dropped = converted(*cells, keep_imports={"numpy"}, own_modules={"cs231n"})
    assert "cs231n" not in dropped.source.split("\n", 1)[1], dropped.source
    assert "def show():" in dropped.source and "def relu_forward(x):" in dropped.source
    # Must keep: a kept function reads a name that no cell binds, which only the star supplies.
    reads = "def layer(x, w, b):\n    return affine_forward(x, w, b)[0] + data['X_val'].mean()"
    kept = converted(*cells, reads, keep_imports={"numpy"}, own_modules={"cs231n"})
    assert "from cs231n.data_utils import *" in kept.source, kept.source


def test_a_notebook_entry_does_not_run_a_helper_only_its_test_cells_import(tmp_path, capsys):
    # The helper imports a library the sandbox does not have (CS231n's data_utils imports
    # imageio); before, the notebook's kept `from data_utils import load_data` ran it and every
    # function was an error.
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "data_utils.py").write_text(
        "import imageio\n\n\ndef load_data():\n    return imageio.imread('x.png')\n"
    )
    cells = (
        "import numpy as np\nfrom data_utils import load_data",
        correct_body(),
        "x = load_data()",
    )
    (folder / "layers.ipynb").write_bytes(notebook(*cells))
    out = check(folder, capsys, "--one-submission")
    assert passes_all(out), out
    assert "layers.ipynb, cell 2: import data_utils (no kept code uses it)" in out, out
    # Must still run it when a kept function uses it: the import fails, as it would in Python.
    used = "def relu_forward(x):\n    load_data()\n    return x"
    (folder / "layers.ipynb").write_bytes(notebook(*cells, used))
    out = check(folder, capsys, "--one-submission")
    assert "imageio" in out and not passes_all(out), out


# --------------------------------------------------------------------------------------------
# Constant expressions are kept; a set-aside binding a kept function reads is named (new-user
# session 5, finding 2)
# --------------------------------------------------------------------------------------------

REFERENCE_OPS = Path(__file__).parents[1] / "reference" / "ops.py"


def test_constant_expressions_are_kept_and_calls_with_effects_are_not():
    result = converted(
        "import math\nimport numpy as np\nLIMIT = 2**20\nEPS = 1e-8 * 10\n"
        '_FLOAT_DTYPES = (np.dtype("float32"), np.dtype(np.float64))\n'
        "FLOATS = (np.float32, np.float64)\nBIG = 4 * LIMIT if LIMIT > 0 else -LIMIT\n"
        "SIZES = {'small': (2, 3), 'big': [LIMIT, math.pi]}\nFIRST = SIZES['small'][0]\n"
        "TINY = np.finfo(np.float64).eps\nNEG = -float('inf')\nOK = LIMIT > 1 and not EPS < 0",
        # Code, never run: a call with side effects, a data load, the student's function, a
        # call of a name a kept statement rebinds, an operation on a set-aside name.
        "np.random.seed(1)\nW = np.load('weights.npy')\nN = helper(3)\nprint(LIMIT)\n"
        "float = int\nINF = float('inf')\nW2 = W * 2",
        "def helper(n):\n    return n\n\ndef f(x):\n    return x.dtype in _FLOAT_DTYPES",
        keep_imports={"numpy"},
    )
    source = result.source
    for kept in (
        "LIMIT = 2**20",
        "EPS = 1e-8 * 10",
        '_FLOAT_DTYPES = (np.dtype("float32"), np.dtype(np.float64))',
        "FLOATS = (np.float32, np.float64)",
        "BIG = 4 * LIMIT if LIMIT > 0 else -LIMIT",
        "FIRST = SIZES['small'][0]",
        "TINY = np.finfo(np.float64).eps",
        "NEG = -float('inf')",
        "OK = LIMIT > 1 and not EPS < 0",
    ):
        assert kept in source, kept
    for dropped in ("np.random.seed", "np.load", "N = helper", "print", "INF =", "W2"):
        assert dropped not in source, dropped
    assert "float = int" in source  # a constant: kept, so float('inf') below is not the builtin
    namespace: dict = {}
    exec(compile(source, "hw", "exec"), namespace)
    assert namespace["BIG"] == 4 * 2**20 and namespace["FIRST"] == 2 and namespace["OK"]
    assert namespace["f"](namespace["np"].ones(2)) and namespace["NEG"] == -float("inf")


def test_a_set_aside_statement_a_kept_function_reads_is_named_at_its_cell_and_line():
    result = converted(
        "import numpy as np\nimport matplotlib.pyplot as plt\nLIMIT = 2**20",
        "data = np.load('cifar.npz')\nSCALE = get_scale()\nfor i in range(3):\n    pass",
        "def conv2d_forward(x):\n    plt.plot(x)\n    return x * SCALE + LIMIT + i\n\n"
        "def relu_forward(x):\n    local = 1\n    return x * SCALE * local",
        keep_imports={"numpy"},
    )
    notes = result.set_aside
    assert "hw.ipynb" not in " ".join(notes)  # the file is named by the caller
    assert notes == (
        "cell 2: import matplotlib (not run)",
        "cell 2, line 2: `import matplotlib.pyplot as plt` is not run, and conv2d_forward "
        "reads plt",
        "cell 3: code (not run)",
        "cell 3, line 2: `SCALE = get_scale()` is not run, and conv2d_forward, relu_forward "
        "read SCALE",
        "cell 3, line 3: `for i in range(3):...` is not run, and conv2d_forward reads i",
    ), notes
    # data: no kept code reads it, so nothing more is said about it.
    assert not any("data" in note for note in notes)


def test_a_notebook_of_the_reference_ops_keeps_all_its_module_level_code():
    ops = REFERENCE_OPS.read_text()
    result = converted(
        "%matplotlib inline\nimport matplotlib.pyplot as plt",
        ops,
        "x = np.ones(3)\nprint(relu_forward(x))",
        keep_imports={"numpy"},
    )
    kept = set(result.source.splitlines())
    tree = __import__("ast").parse(ops)
    top = [n for n in tree.body if not isinstance(n, __import__("ast").Expr)]
    for node in top:  # every statement but the docstring, the _FLOAT_DTYPES tuple included
        first = ops.splitlines()[node.lineno - 1]
        assert first in kept, first
    assert result.set_aside == (
        "cell 2: import matplotlib, magics (not run)",
        "cell 4: code (not run)",
    )


@pytest.mark.slow  # its rule's fast test: the conversion's, above
def test_a_notebook_made_from_the_reference_ops_passes_check(tmp_path, capsys):
    path = tmp_path / "homework.ipynb"
    path.write_bytes(
        notebook(
            "%matplotlib inline\nimport matplotlib.pyplot as plt",
            REFERENCE_OPS.read_text(),
            "x = np.ones(3)\nprint(relu_forward(x))",
        )
    )
    out = check(path, capsys)
    assert passes_all(out), out
    assert "NameError" not in out


# --------------------------------------------------------------------------------------------
# A notebook's conversion notes only for a graded notebook (new-user session 5, finding 9)
# --------------------------------------------------------------------------------------------

COURSES = Path(__file__).parent / "fixtures" / "courses"


def test_a_notebook_beside_the_graded_module_has_no_cell_notes():
    from tinycnn.grading.submission import load_submission

    loaded = load_submission(COURSES / "cs231n_assignment", api="cs231n")
    assert loaded.problem is None and loaded.files[0].origin == "cs231n/layers.py"
    said = " ".join(loaded.set_aside)
    # The notebook is named once, as not imported, never cell by cell.
    assert "ConvolutionalNetworks.ipynb, cell" not in said and "(not run)" not in said, said
    assert "ConvolutionalNetworks.ipynb" in said


def test_a_notebook_the_entry_imports_keeps_its_notes_and_one_it_does_not_loses_them(tmp_path):
    from tinycnn.grading.submission import load_submission

    (tmp_path / "layers.py").write_text("from helpers import EPS\n\n" + "import numpy as np\n")
    (tmp_path / "helpers.ipynb").write_bytes(notebook("EPS = 1e-8\nprint(EPS)"))
    (tmp_path / "scratch.ipynb").write_bytes(notebook("x = 1\nprint(x)"))
    loaded = load_submission(tmp_path, entry="layers")
    assert loaded.problem is None
    assert "helpers.ipynb, cell 2: code (not run)" in loaded.set_aside, loaded.set_aside
    assert not any(note.startswith("scratch.ipynb, cell") for note in loaded.set_aside)
    # The graded notebook itself keeps its notes.
    alone = load_submission(tmp_path / "scratch.ipynb")
    assert alone.set_aside == ("scratch.ipynb, cell 2: code (not run)",), alone.set_aside


# --------------------------------------------------------------------------------------------
# What was set aside is said in every mode (new user's README walkthrough, finding 6)
# --------------------------------------------------------------------------------------------


@pytest.mark.slow  # two end-to-end gradings; the notes themselves have the fast tests above
def test_one_submission_with_a_notebook_says_what_was_set_aside_as_a_single_notebook_does(
    tmp_path, capsys
):
    text = notebook(
        "import numpy as np", correct_body(), "import matplotlib.pyplot as plt\nplt.plot([1])"
    )
    note = "set aside, not run: hw2.ipynb, cell 4: import matplotlib, code (not run)"
    (tmp_path / "hw2.ipynb").write_bytes(text)
    alone = check(tmp_path / "hw2.ipynb", capsys)
    assert note in alone, alone
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "hw2.ipynb").write_bytes(text)
    together = check(folder, capsys, "--one-submission")
    assert note in together, together
    assert passes_all(alone) and passes_all(together)


@pytest.mark.parametrize(
    "origin, shown",
    [
        ("r\udce9sum\udce9_notes.ipynb", "r\\xe9sum\\xe9_notes.ipynb"),
        ("notes\nimport os\n.ipynb", "notes\\x0aimport os\\x0a.ipynb"),
    ],
)
def test_a_notebook_name_that_is_not_utf8_is_converted_with_its_name_escaped(origin, shown):
    # A Windows zip's `résumé_notes.ipynb` unzips as the bytes r\xe9sum\xe9: the converted
    # module's header held the raw name and could not be encoded, and an honest upload beside
    # it scored 0 (attacker session 7, F4). A newline in a name would have ended the comment.
    source = convert_notebook(notebook("X = 1"), origin).source
    source.encode("utf-8")  # no lone surrogate left
    assert source.splitlines()[:3] == [
        f"# The definitions of {shown}, as tinycnn check grades them (nothing else is run).",
        "# cell 2",
        "X = 1",
    ]


@pytest.mark.slow
def test_a_helper_notebook_whose_name_is_not_utf8_does_not_fail_the_upload(tmp_path, capsys):
    upload = tmp_path / "upload"
    upload.mkdir()
    (upload / "layers.py").write_text("import numpy as np\n" + correct_body())
    with open(os.path.join(os.fsencode(upload), b"r\xe9sum\xe9_notes.ipynb"), "wb") as file:
        file.write(notebook("print('my notes')"))
    out = check(upload, capsys, "--one-submission")
    assert passes_all(out), out
    assert "r\\xe9sum\\xe9_notes.ipynb" in out


def test_the_notes_of_a_whole_upload_are_capped_not_only_each_notebooks(tmp_path, monkeypatch):
    # 98 notebooks under the cap each gave 9,898 notes, 10 MB of output (attacker session 7,
    # F6): the submission's notes are capped again as a whole.
    from tinycnn.grading import notebook as notebook_module
    from tinycnn.grading.grader import grade_submission
    from tinycnn.grading.sandbox import Limits

    monkeypatch.setattr(notebook_module, "MAX_SET_ASIDE_NOTES", 3)
    upload = tmp_path / "upload"
    upload.mkdir()
    cells = ["import numpy as np\n" + correct_body(), *(f"print({k})" for k in range(5))]
    (upload / "layers.ipynb").write_bytes(notebook(*cells))
    for k in range(5):
        (upload / f"link{k}.py").symlink_to("/nonexistent")
    report = grade_submission(upload, limits=Limits(timeout=3.0), train=False, seed=1)
    assert len(report.set_aside) == 4, report.set_aside
    assert report.set_aside[-1].endswith("more notes on what was set aside, not listed")


def test_a_notebooks_cells_are_charged_to_the_uploads_parse_budget():
    # Attacker session 7c, F4: ten notebooks of 65,900 one-line cells (3 MB each) cost the
    # checker about 100 s of processor time in nbformat's validation, bounded only by bytes.
    from tinycnn.grading.notebook import CELL_TOKENS
    from tinycnn.grading.policy import ParseBudgetSpent, parse_budget

    many = notebook(*(f"X{k} = {k}" for k in range(20)))  # a title and 20 code cells
    with parse_budget(20 * CELL_TOKENS), pytest.raises(ParseBudgetSpent, match="the cells of"):
        convert_notebook(many, "many.ipynb")
    with parse_budget(21 * CELL_TOKENS + 1000):  # the cells, then their code
        assert "X19 = 19" in convert_notebook(many, "many.ipynb").source
    # A version 3 notebook's cells are in its worksheets.
    old = {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": []}
    old["worksheets"] = [{"cells": [{"cell_type": "code", "input": "X = 1", "outputs": []}] * 30}]
    with parse_budget(29 * CELL_TOKENS), pytest.raises(ParseBudgetSpent):
        convert_notebook(json.dumps(old).encode(), "old.ipynb")
