"""What the checker itself reads of a submission is bounded (attacker, session 6, F12, F13).

The checker parses a student's files outside the sandbox (to find the functions, the imports,
a notebook's cells): a list literal of 8 million items inside the 16 MiB read budget took it
8.7 GB and minutes; a 600-deep ``lambda`` in a notebook's set-aside cell made the note about it
raise RecursionError and lost a whole class's outputs.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import nbformat
import pytest

from tinycnn.grading import grader
from tinycnn.grading.grader import grade_submission
from tinycnn.grading.policy import MAX_TOKENS, SourceTooLarge, parse_source, scan_imports
from tinycnn.grading.submission import load_submission

RELU = "import numpy as np\n\n\ndef relu_forward(x):\n    return np.maximum(x, 0)\n"


def big_literal(items: int) -> str:
    return RELU + "\nBIG = [" + "1," * items + "]\n"


def test_text_over_the_token_budget_is_refused_before_parsing_and_under_it_parses():
    assert parse_source(big_literal(MAX_TOKENS // 2 - 100)).body  # just under: parsed
    with pytest.raises(SourceTooLarge, match="more than 200,000 words and symbols"):
        parse_source(big_literal(MAX_TOKENS // 2 + 100))
    with pytest.raises(SourceTooLarge):  # as bytes, as scan_imports gets them
        scan_imports(big_literal(MAX_TOKENS).encode())
    assert [use.module for use in scan_imports(RELU)] == ["numpy"]


def test_a_file_too_large_to_read_is_an_error_for_every_function_and_says_why(tmp_path):
    path = tmp_path / "big.py"
    path.write_text(big_literal(4 * MAX_TOKENS))  # 1.6 MB; the attacker's took 8.7 GB
    submission = load_submission(path)
    assert submission.problem is None  # read; refused when graded, with the reason
    report = grade_submission(path, train=False, seed=1)
    assert {r.status for r in report.functions.values()} == {"error"}
    detail = report.functions["relu_forward"].detail
    assert detail.startswith("the file is too large: more than 200,000 words and symbols")


def deep_lambda_notebook(depth: int) -> str:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("import numpy as np"),
        nbformat.v4.new_code_cell("X = " + "lambda: " * depth + "1"),
        nbformat.v4.new_code_cell("def relu_forward(x):\n    X\n    return np.maximum(x, 0)"),
    ]
    return nbformat.writes(notebook)


def test_a_note_about_a_statement_too_deep_to_unparse_names_what_it_binds(tmp_path):
    path = tmp_path / "deep.ipynb"
    path.write_text(deep_lambda_notebook(1000))
    submission = load_submission(path)  # raised RecursionError (F13)
    assert submission.problem is None
    assert "deep.ipynb, cell 2, line 1: `X = ...` is not run, and relu_forward reads X" in (
        submission.set_aside
    )
    shallow = tmp_path / "shallow.ipynb"
    shallow.write_text(deep_lambda_notebook(2))
    assert any(
        "`X = lambda: lambda: 1` is not run" in n for n in load_submission(shallow).set_aside
    )


@pytest.mark.parametrize("error", [RecursionError, MemoryError])
def test_a_reader_that_still_fails_costs_that_submission_its_grade_not_the_run(
    error, tmp_path, monkeypatch
):
    def fails(*args, **kwargs):
        raise error("deep")

    monkeypatch.setattr(grader, "load_submission", fails)
    (tmp_path / "alice.py").write_text(RELU)
    report = grade_submission(tmp_path / "alice.py", train=False, seed=1)
    assert {r.status for r in report.functions.values()} == {"error"}
    assert (
        f"the checker could not read it ({error.__name__})"
        in report.functions["relu_forward"].detail
    )


def test_a_long_line_of_spaces_in_a_notebook_cell_is_read_in_one_pass(tmp_path):
    # F14: the magic-line pattern tried every split of the spaces: 60,000 took 26 s, a 1 MB
    # cell hours. The alarm only turns such a hang into a failure (not a speed target).
    import signal

    from tinycnn.grading.notebook import _is_magic_line

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(RELU),
        nbformat.v4.new_code_cell(" " * 200_000 + "a b"),
    ]
    path = tmp_path / "spaces.ipynb"
    path.write_text(nbformat.writes(notebook))
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("reading the notebook hung"))
    signal.alarm(60)
    try:
        assert not _is_magic_line(" " * 200_000 + "a b")
        assert not _is_magic_line(" " * 2_000 + "a b c d e f")
        submission = load_submission(path)
    finally:
        signal.alarm(0)
    assert submission.problem is not None and "cell 2" in submission.problem  # not Python
    for line in ("%matplotlib inline", "files = !ls", "a, b = %time f()", "np.pad?", "?np.pad"):
        assert _is_magic_line(line), line
    assert not _is_magic_line("x = 1") and not _is_magic_line(" = %x")


def test_a_constant_too_deep_to_read_is_set_aside_not_raised(tmp_path):
    # F13's other form: ``X = - - ... - y`` (the parser takes it: no parentheses) made the
    # converter's reader of constant expressions raise RecursionError.
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("import numpy as np\ny = 1.0"),
        nbformat.v4.new_code_cell("X = " + "- " * 1500 + "y"),
        nbformat.v4.new_code_cell("def relu_forward(x):\n    X\n    return np.maximum(x, 0)"),
    ]
    path = tmp_path / "minus.ipynb"
    path.write_text(nbformat.writes(notebook))
    submission = load_submission(path)
    assert submission.problem is None
    assert any("cell 2" in note and "X = ..." in note for note in submission.set_aside)


def test_a_path_too_long_for_the_checkers_copy_is_set_aside_and_said(tmp_path):
    # F15: a helper whose path fit where the student put it, but not below the checker's own
    # temporary folders, raised OSError (file name too long) and lost the class run.
    from tinycnn.grading.submission import MAX_PATH

    student = tmp_path / "alice"
    deep = student.joinpath(*["d" * 200] * 6)  # 1,206 characters below alice/
    deep.mkdir(parents=True)
    (student / "layers.py").write_text(RELU)
    (deep / "helper.py").write_text("X = 1\n")
    submission = load_submission(student, entry="layers")
    assert submission.problem is None and [s.path for s in submission.files] == ["layers.py"]
    note = f"... was not read (its path is longer than {MAX_PATH} bytes)"
    assert [n for n in submission.set_aside if n.endswith(note)] == [f"{'d' * 60}{note}"]


def test_any_failure_of_grading_one_submission_becomes_its_report(tmp_path, monkeypatch):
    from tinycnn.grading.folder import grade_folder
    from tinycnn.grading.grader import grade_or_report_failure
    from tinycnn.grading.sandbox import SandboxUnavailable

    real = grader.grade_submission

    def grade(path, **options):
        if Path(path).name == "alice.py":
            raise OSError(36, "File name too long")
        return real(path, **options)

    monkeypatch.setattr(grader, "grade_submission", grade)
    for name in ("alice.py", "bob.py"):
        (tmp_path / name).write_text(RELU)
    alice, bob = grade_folder([tmp_path / "alice.py", tmp_path / "bob.py"], train=False, seed=1)
    assert {r.status for r in alice.functions.values()} == {"error"}
    assert (
        "the checker failed on this submission (OSError)" in alice.functions["relu_forward"].detail
    )
    assert bob.functions["relu_forward"].status == "pass"

    def unavailable(path, **options):
        raise SandboxUnavailable("no bubblewrap")

    monkeypatch.setattr(grader, "grade_submission", unavailable)
    with pytest.raises(SandboxUnavailable):  # the machine's fault, not the submission's
        grade_or_report_failure(tmp_path / "bob.py")


def chain(top: Path, depth: int) -> Path:
    """``top/d/d/.../d``, ``depth`` folders (``os.makedirs`` recurses too: one at a time)."""
    folder = top
    for _ in range(depth):
        folder = folder / "d"
        folder.mkdir()
    return folder


def test_a_folder_chain_too_deep_to_search_is_that_submissions_problem(tmp_path):
    # F3: Python 3.11's os.walk recursed, and 1,100 folders raised RecursionError.
    from tinycnn.grading.submission import MAX_DEPTH

    alice = tmp_path / "alice"
    alice.mkdir()
    (alice / "layers.py").write_text(RELU)
    bottom = chain(alice, 1100)
    try:
        problem = load_submission(alice).problem
    finally:  # shutil.rmtree recurses too: pytest could not clean this up
        while bottom != alice:
            bottom.rmdir()
            bottom = bottom.parent
    assert problem == f"the upload cannot be read: its folders are more than {MAX_DEPTH} deep"
    bob = tmp_path / "bob"
    bob.mkdir()
    (bob / "layers.py").write_text(RELU)
    (chain(bob, MAX_DEPTH) / "helper.py").write_text("X = 1\n")  # as deep as may be: read
    assert load_submission(bob, entry="layers").problem is None


def test_an_upload_with_too_many_entries_is_refused_and_searching_it_is_bounded(
    tmp_path, monkeypatch
):
    # F4: below a chain of folders, 20,000 files made the search for the submission's folder
    # walk the whole tree again at every level (minutes of the checker's own time). The bound
    # is made small here so that the test need not write 100,000 files.
    from tinycnn.grading import submission

    monkeypatch.setattr(submission, "MAX_ENTRIES", 500)
    bottom = chain(tmp_path, 5)
    for number in range(500):
        (bottom / f"{number}.txt").touch()
    (bottom / "layers.py").write_text(RELU)
    # Too large to search (session 6b, G6: the whole upload is walked once, within the bound):
    # read from its top, which says so.
    assert submission.submission_folder(tmp_path) == tmp_path
    problem = load_submission(tmp_path).problem
    assert problem == "the upload cannot be read: it holds more than 500 files and folders"
    for number in range(6):
        (bottom / f"{number}.txt").unlink()
    # 500 entries in all, its 5 folders counted (the whole upload, as the Gradescope runner
    # counts it): read
    assert load_submission(tmp_path).problem is None


def listings(monkeypatch) -> Counter:
    """How many times each folder is listed by the reader of uploads (`visible_entries`, which
    every walk of an upload lists a folder with), from now on."""
    from tinycnn.grading import submission

    counted: Counter = Counter()
    list_folder = submission.visible_entries

    def counting(folder):
        counted[Path(folder)] += 1
        return list_folder(folder)

    monkeypatch.setattr(submission, "visible_entries", counting)
    return counted


@pytest.mark.parametrize("beside", [False, True], ids=["chain", "chain-with-a-folder-beside"])
def test_an_upload_below_a_chain_of_folders_is_walked_once(tmp_path, monkeypatch, beside):
    # Attacker, session 6b, G6: 99,000 files below a chain of 30 folders took 19 s per read:
    # at each level, the search for the submission's folder walked all below it again. Counted
    # here on 300 files, not timed: each folder is listed once per read. With a folder holding
    # a file beside each link of the chain, each level also compares what the two define.
    from tinycnn.grading.submission import submission_folder

    bottom = chain(tmp_path, 30)
    for number in range(300):
        (bottom / f"{number}.txt").touch()
    (bottom / "layers.py").write_text(RELU)
    if beside:
        for level in bottom.parents:
            if level == tmp_path.parent:
                break
            (level / "x").mkdir()
            (level / "x" / "notes.py").write_text("NOTE = 1\n")
    counted = listings(monkeypatch)
    submission = load_submission(tmp_path)
    assert submission.problem is None
    assert submission.entry.origin == "d/" * 30 + "layers.py"
    assert set(counted.values()) == {1}
    assert len(counted) == 31 + 30 * beside  # every folder of the upload, once
    counted.clear()
    assert submission_folder(tmp_path) == bottom
    assert set(counted.values()) == {1}


def test_the_folders_compared_down_a_chain_are_read_within_one_budget(tmp_path, monkeypatch):
    # G6: with a folder beside each link of a chain, each level compares what the two define,
    # reading the same files below again; each comparison had a budget of its own (30 times
    # MAX_BYTES of parsing for 30 levels). Bytes counted, not time. Each file is read once for
    # the whole descent (attacker session 7b, F2), so 2,000 bytes read all the files here.
    from tinycnn.grading import submission

    monkeypatch.setattr(submission, "MAX_BYTES", 500)
    bottom = chain(tmp_path, 30)
    (bottom / "a_big.py").write_text("X = 1  #" + "x" * 600 + "\n")  # read first, defines none
    (bottom / "layers.py").write_text(RELU)
    for level in [bottom, *bottom.parents][1:31]:
        (level / "x").mkdir()
        (level / "x" / "notes.py").write_text("NOTE = 1\n")
    read: list[int] = []
    read_bytes = submission._read_bytes

    def counting(path, budget):
        data = read_bytes(path, budget)
        read.append(len(data))
        return data

    monkeypatch.setattr(submission, "_read_bytes", counting)
    # The chain's files add up to more than MAX_BYTES: too large to grade, refused (session
    # 7c: on their sizes, before reading them), and what was read stays within the budget.
    with pytest.raises(submission.SeveralFolders):
        submission.submission_folder(tmp_path)
    assert sum(read) <= 500 + 700  # the last file read may end over the budget
    monkeypatch.setattr(submission, "MAX_BYTES", 2000)
    read.clear()
    assert submission.submission_folder(tmp_path) == bottom  # within the budget: found
    sizes = sum(p.stat().st_size for p in tmp_path.rglob("*.py"))
    assert sum(read) <= sizes < 2000  # each file read once at most


def test_an_upload_over_the_bound_is_refused_after_one_walk_within_it(tmp_path, monkeypatch):
    # G6: a read of an upload over MAX_ENTRIES lists no folder twice and nothing past the bound.
    from tinycnn.grading import submission

    monkeypatch.setattr(submission, "MAX_ENTRIES", 200)
    bottom = chain(tmp_path, 30)
    for number in range(100):
        (bottom / f"{number}.txt").touch()
    (bottom / "layers.py").write_text(RELU)
    (tmp_path / "zz").mkdir()  # walked after the chain: never reached
    (tmp_path / "zz" / "more.txt").touch()
    counted = listings(monkeypatch)
    assert load_submission(tmp_path).problem is None  # 131 entries: read
    for number in range(100, 200):
        (bottom / f"{number}.txt").touch()
    counted.clear()
    problem = load_submission(tmp_path).problem
    assert problem == "the upload cannot be read: it holds more than 200 files and folders"
    assert set(counted.values()) == {1} and tmp_path / "zz" not in counted


@pytest.mark.parametrize("extra", [0, 5])
def test_the_notes_on_an_uploads_files_not_read_are_capped(tmp_path, extra):
    # G4's cap, for the files of an upload that are not read: 19,000 links named *.py gave
    # 800 KB of notes for the report.
    from tinycnn.grading.notebook import MAX_SET_ASIDE_NOTES

    (tmp_path / "layers.py").write_text(RELU)
    for number in range(MAX_SET_ASIDE_NOTES + extra):
        (tmp_path / f"l{number:04d}.py").symlink_to("layers.py")
    submission = load_submission(tmp_path)
    assert submission.problem is None
    notes = list(submission.set_aside)
    listed = [f"l{n:04d}.py (not a regular file) was not read" for n in range(MAX_SET_ASIDE_NOTES)]
    if extra:
        listed.append(f"{extra} more notes on what was set aside, not listed")
    assert notes == listed


def test_a_class_folder_search_stops_at_each_students_first_file(tmp_path, monkeypatch):
    # G6: whether a student's folder holds a file is searched up to the first one found (a
    # class folder's students, `top_entries`), not through all of the folder.
    from tinycnn.grading.submission import top_entries

    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "layers.py").write_text(RELU)
    chain(tmp_path / "alice", 5)
    bottom = chain(tmp_path / "bob", 0)
    bottom.mkdir()
    (chain(bottom, 5) / "layers.py").write_text(RELU)
    counted = listings(monkeypatch)
    assert top_entries(tmp_path) == ([], [tmp_path / "alice", tmp_path / "bob"])
    assert tmp_path / "alice" / "d" not in counted  # alice's file was found first
    assert counted[tmp_path / "bob" / "d" / "d" / "d" / "d" / "d"] == 1  # bob's, at the bottom


def test_the_gradescope_runner_scans_an_upload_within_the_same_bounds(tmp_path):
    # Review, session 6: the runner's own scan still recursed (RecursionError at 1,100 deep).
    from tinycnn import autograder
    from tinycnn.grading.submission import MAX_DEPTH, UploadTooLarge

    (tmp_path / "layers.py").write_text(RELU)
    chain(tmp_path, MAX_DEPTH)
    assert autograder._scan(tmp_path) == (["layers.py"], [])
    chain(tmp_path / "e", 0).mkdir()
    chain(tmp_path / "e", MAX_DEPTH + 1)
    with pytest.raises(UploadTooLarge, match=f"more than {MAX_DEPTH} deep"):
        autograder._scan(tmp_path)


def test_a_notebook_whose_cells_together_are_over_the_budget_is_refused_before_parsing(
    tmp_path,
):
    # Review, session 6: each cell was under the budget, and all their trees were kept before
    # the whole notebook was measured (82 s and 6.6 GB for 60 cells of 99,000 items).
    notebook = nbformat.v4.new_notebook()
    cell = "B = [" + "1," * (MAX_TOKENS // 8) + "]"
    notebook.cells = [nbformat.v4.new_code_cell(RELU)] + [
        nbformat.v4.new_code_cell(cell.replace("B", f"B{i}")) for i in range(5)
    ]
    path = tmp_path / "big.ipynb"
    path.write_text(nbformat.writes(notebook))
    problem = load_submission(path).problem
    assert problem == (
        "big.ipynb is too large: its code cells hold more than 200,000 words and symbols, "
        "more than the checker reads (the reference layer file has about 13,000)"
    )


def test_the_walk_lists_files_as_before_and_skips_links_and_hidden_entries(tmp_path):
    from tinycnn.grading.submission import _walk

    for name in (
        "b.py",
        "a.ipynb",
        "notes.txt",
        ".hidden.py",
        "sub/c.py",
        "sub/deeper/d.py",
        "__pycache__/x.py",
        ".git/y.py",
        "z/e.py",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    (tmp_path / "link.py").symlink_to(tmp_path / "b.py")
    (tmp_path / "sub" / "up").symlink_to(tmp_path)
    found, skipped = _walk(tmp_path)
    assert [p.as_posix() for p in found] == [
        "a.ipynb",
        "b.py",
        "sub/c.py",
        "sub/deeper/d.py",
        "z/e.py",
    ]
    assert skipped == [Path("link.py")]


def test_every_symbol_counts_so_a_run_of_brackets_cannot_hide_a_large_tree():
    # Attacker, session 6, G5: counting a run of symbols as one token let a list of 1,000,000
    # empty lists (3 MB) through, at 1.8 GB for the checker's parse.
    with pytest.raises(SourceTooLarge):
        parse_source(RELU + "X = [" + "[]," * (MAX_TOKENS // 3 + 10) + "]\n")
    assert parse_source(RELU + "X = [" + "[]," * (MAX_TOKENS // 3 - 100) + "]\n").body


def test_a_notebook_of_many_json_objects_is_refused_before_nbformat_reads_it(tmp_path):
    # Attacker, session 6, G3: nbformat's reader and validator took 755 MB for a 4 MB notebook
    # whose cell metadata held a list of empty objects.
    from tinycnn.grading.notebook import MAX_JSON_CONTAINERS

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(RELU)]
    notebook.cells[0].metadata["x"] = [{}] * (MAX_JSON_CONTAINERS + 1)
    path = tmp_path / "objects.ipynb"
    path.write_text(nbformat.writes(notebook, version=4))
    problem = load_submission(path).problem
    assert problem.startswith(
        f"objects.ipynb is too large: more than {MAX_JSON_CONTAINERS:,} JSON objects and lists"
    )
    notebook.cells[0].metadata["x"] = [{}] * 1000
    path.write_text(nbformat.writes(notebook, version=4))
    assert load_submission(path).problem is None
