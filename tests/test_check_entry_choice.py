"""Which file and folder of an upload ``tinycnn check`` grades, against attacker session 7b.

F1: an upload of many large files defining nothing kept the checker parsing for minutes (line
breaks were not counted toward `MAX_TOKENS`, and each file was parsed once per measure). F2: a
folder not read in full (the read budget spent on a large notebook) counted as "defines
nothing", so another folder was graded on incomplete information. F5: the untouched template
beside the student's work "defined the most" and was graded.

Costs are counted (parses, reads), never timed. Uploads are written in ``tmp_path``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tinycnn import templates
from tinycnn.grading import policy, submission
from tinycnn.grading.grader import grade_submission
from tinycnn.grading.policy import MAX_TOKENS, SourceTooLarge, parse_source
from tinycnn.grading.report import report_json, submission_table
from tinycnn.grading.submission import SourceFile, graded_definitions, load_submission

FIXTURES = Path(__file__).parent / "fixtures" / "submissions"
CORRECT = (FIXTURES / "correct_vectorized.py").read_text()
BUGGY = (FIXTURES / "buggy_relu_zero_gradient.py").read_text()
TEMPLATE = templates.read()
_SPLIT = CORRECT.index("def softmax_cross_entropy")
#: The correct file in two modules: the layers, which import the loss from the student's own
#: ``losses.py`` (the attacker's F5 upload, with the template beside them).
LAYERS = CORRECT[:_SPLIT] + "from losses import softmax_cross_entropy\n"
LOSSES = "import numpy as np\n\n\n" + CORRECT[_SPLIT:]


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def counting_parses(monkeypatch) -> Counter:
    """How many times each text is parsed by the submission reader (by its first line)."""
    parsed: Counter = Counter()
    parse = submission.parse_source

    def counted(source):
        parsed[source if isinstance(source, str) else source.decode(errors="replace")] += 1
        return parse(source)

    monkeypatch.setattr(submission, "parse_source", counted)
    return parsed


# --------------------------------------------------------------------------------------------
# F1: the parser's work is bounded by what is counted, and each file is parsed once
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_bytes", [False, True])
def test_line_breaks_count_toward_the_token_budget(as_bytes):
    # "a\n" is two of Python's tokens (NAME, NEWLINE); counted as one, 199,990 lines went
    # through at 400,000 tokens, twice the budget (2 to 3 s of parsing per file).
    def text(lines: int, end: str = "\n"):
        source = f"a{end}" * lines
        return source.encode() if as_bytes else source

    assert parse_source(text(MAX_TOKENS // 2 - 10)).body
    for end in ("\n", "\r\n", "\r"):
        with pytest.raises(SourceTooLarge):
            parse_source(text(MAX_TOKENS // 2 + 10, end))
    blank = "a\n" * 10 + "\n" * MAX_TOKENS  # blank lines are NL tokens: they count too
    with pytest.raises(SourceTooLarge):
        parse_source(blank.encode() if as_bytes else blank)


def test_the_attackers_files_are_too_large_to_parse():
    # Each of the 41 files of the attacker's upload (199,990 lines "a").
    with pytest.raises(SourceTooLarge):
        policy.check_size("a\n" * 199_990)


def test_each_file_is_parsed_once_while_choosing_the_entry(tmp_path, monkeypatch):
    # Before: the contract's measure, then each of the 3 APIs, once per file (4 parses each).
    files = {f"part{number:02d}.py": f"X{number} = {number}\n" for number in range(6)}
    parsed = counting_parses(monkeypatch)
    problem = load_submission(write(tmp_path, files)).problem
    assert problem.startswith(f"cannot tell which file of {tmp_path} holds the functions")
    assert sorted(parsed) == sorted(files.values())
    assert set(parsed.values()) == {1}


def test_each_file_is_parsed_once_to_choose_the_entry_and_follow_its_imports(tmp_path, monkeypatch):
    # The entry found, then what it imports read (`reachable_files`): still one parse a file.
    files = {
        "layers.py": LAYERS,
        "losses.py": LOSSES,
        "student_template.py": TEMPLATE,
        "notes.py": "import losses\n",
    }
    parsed = counting_parses(monkeypatch)
    read = load_submission(write(tmp_path, files))
    assert read.problem is None and read.entry.path == "layers.py"
    assert sorted(parsed) == sorted(files.values())
    assert set(parsed.values()) == {1}


def test_grading_parses_each_file_in_the_checker_once(tmp_path, monkeypatch):
    # The import rule's reader (scan_imports) parsed each file the entry imports again.
    files = {"layers.py": LAYERS, "losses.py": LOSSES, "student_template.py": TEMPLATE}
    parsed = counting_parses(monkeypatch)
    scanned: list[str] = []
    monkeypatch.setattr(policy, "parse_source", lambda source: scanned.append(source))
    report = grade_submission(write(tmp_path, files), train=False, seed=1)
    assert {r.status for r in report.functions.values()} == {"pass"}
    assert sorted(parsed) == sorted(files.values()) and set(parsed.values()) == {1}
    assert scanned == []


def test_what_the_checker_parses_of_one_upload_is_bounded_in_all(tmp_path, monkeypatch):
    # Each file under MAX_TOKENS, but many of them: 82 such files took 2 minutes to parse.
    monkeypatch.setattr(submission, "MAX_PARSED", 10_000)
    junk = {f"part{number}.py": "a\n" * 1_000 for number in range(8)}  # 2,000 tokens each
    parsed = counting_parses(monkeypatch)
    read = load_submission(write(tmp_path / "one", junk))
    assert read.problem == (
        "the files add up to more than 10,000 words and symbols, more than the checker reads "
        "(the reference layer file has about 13,000)"
    )
    assert sum(parsed.values()) == 6  # 5 parsed, the sixth refused before parsing


def test_folders_compared_within_the_parse_bound_are_not_taken_to_define_nothing(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(submission, "MAX_PARSED", 10_000)
    junk = {f"a/part{number}.py": "a\n" * 1_000 for number in range(8)}
    upload = write(tmp_path, {**junk, "z/layers.py": CORRECT})
    with pytest.raises(submission.SeveralFolders) as raised:
        submission.submission_folder(upload)
    assert raised.value.folders == raised.value.unread == ("a", "z")  # the bound spent in a/
    monkeypatch.setattr(submission, "MAX_PARSED", 40_000)  # all of a/ parsed: defines none
    assert submission.submission_folder(upload) == upload / "z"


def test_a_source_files_outline_is_read_once_and_keeps_no_tree():
    source = SourceFile("layers.py", CORRECT.encode(), "layers.py")
    assert source.outline is source.outline
    assert "conv2d_forward" in source.outline.functions
    assert not source.outline.stubs
    assert "np" in source.outline.names and "numpy" in source.outline.imports
    assert not any(hasattr(value, "body") for value in vars(source.outline).values())


# --------------------------------------------------------------------------------------------
# F2: no folder is chosen over one that was not read in full
# --------------------------------------------------------------------------------------------


def large_notebook(mib: int) -> str:
    """A notebook of ``mib`` MiB, nearly all a plot's output: more than `MAX_BYTES` to read."""
    output = {
        "output_type": "display_data",
        "metadata": {},
        "data": {"image/png": "A" * (mib * 2**20), "text/plain": ["<Figure>"]},
    }
    cell = {
        "cell_type": "code",
        "execution_count": 1,
        "id": "a",
        "metadata": {},
        "source": ["import numpy as np\n", "print(np.arange(3))"],
        "outputs": [output],
    }
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [cell]})


def test_a_folder_behind_a_large_notebook_is_not_graded_over_the_real_one(tmp_path):
    # The attacker's up_wrong: backup/ (an old buggy copy) was read, notebooks/ spent the
    # budget, src/ (the real work) then read as "defines nothing": backup/ was graded, 1 of 9.
    # notebooks/ alone is more than the checker reads, so it is passed over (session 7c, F3),
    # and backup/ and src/ both define the functions: the choice is refused, not guessed.
    notebook = large_notebook(17)
    assert len(notebook) > submission.MAX_BYTES
    upload = write(
        tmp_path,
        {
            "backup/layers.py": BUGGY,
            "notebooks/analysis.ipynb": notebook,
            "src/layers.py": CORRECT,
        },
    )
    read = load_submission(upload)
    assert read.files == ()
    assert (
        f"{upload} holds its .py/.ipynb files in several folders (backup/, notebooks/, src/)"
        in (read.problem)
    )
    (upload / "backup" / "layers.py").unlink()
    (upload / "backup").rmdir()
    assert submission.submission_folder(upload) == upload / "src"


def test_a_folder_beside_the_work_too_large_to_grade_is_passed_over(tmp_path):
    # Attacker session 7c, F3: a virtual environment left in the upload (more .py files than
    # are read) or a notebook of plots (more bytes than are read) made honest uploads "several
    # folders", 0 points on Gradescope. Neither could be graded: the work beside them is.
    upload = write(
        tmp_path / "venv_left",
        {
            "hw2/layers.py": CORRECT,
            **{
                f"venv/lib/python3.11/site-packages/six_pkg/m{k}.py": "X = 1\n"
                for k in range(submission.MAX_FILES + 1)
            },
        },
    )
    assert submission.submission_folder(upload) == upload / "hw2"
    upload = write(
        tmp_path / "plots",
        {"code/layers.py": CORRECT, "notebooks/analysis.ipynb": large_notebook(17)},
    )
    assert submission.submission_folder(upload) == upload / "code"


def test_a_folder_with_more_files_than_are_read_is_passed_over_not_guessed(tmp_path, monkeypatch):
    monkeypatch.setattr(submission, "MAX_FILES", 3)
    upload = write(
        tmp_path,
        {
            **{f"a_notes/n{number}.py": "X = 1\n" for number in range(4)},
            "src/layers.py": CORRECT,
        },
    )
    assert submission.submission_folder(upload) == upload / "src"
    # Within the limit but not read in full (the byte budget spent by a folder before it):
    # not taken to define nothing.
    monkeypatch.setattr(submission, "MAX_BYTES", len(CORRECT) + 10)
    (upload / "a_notes" / "n3.py").unlink()
    (upload / "0_big" / "notes.py").parent.mkdir()
    (upload / "0_big" / "notes.py").write_text("X = 1\n" * (len(CORRECT) // 6))
    with pytest.raises(submission.SeveralFolders) as raised:
        submission.submission_folder(upload)
    assert "src" in raised.value.unread


def test_the_folders_compared_at_every_level_read_each_file_once(tmp_path, monkeypatch):
    # Down a chain with a folder beside each link, each level compares folders holding the
    # same files: each is read (and parsed) once for the whole descent.
    bottom = tmp_path
    for _ in range(8):
        (bottom / "x").mkdir()
        (bottom / "x" / "notes.py").write_text("NOTE = 1\n")
        bottom = bottom / "d"
        bottom.mkdir()
    (bottom / "layers.py").write_text(CORRECT)
    read: Counter = Counter()
    read_bytes = submission._read_bytes

    def counting(path, budget):
        read[path] += 1
        return read_bytes(path, budget)

    monkeypatch.setattr(submission, "_read_bytes", counting)
    assert submission.submission_folder(tmp_path) == bottom
    assert read and set(read.values()) == {1}


def test_an_honest_repository_is_still_read_from_its_code_folder(tmp_path):
    upload = write(
        tmp_path,
        {
            "src/layers.py": CORRECT,
            "tests/test_layers.py": "import layers\n\n\ndef test_relu():\n    pass\n",
        },
    )
    read = load_submission(upload)
    assert read.problem is None and read.entry.origin == "src/layers.py"
    assert read.chosen == "graded src/layers.py"


# --------------------------------------------------------------------------------------------
# F5: the template's placeholders are not definitions; imports from the student's own files are
# --------------------------------------------------------------------------------------------


def test_placeholders_are_not_definitions_and_own_imports_are():
    def counted(text: str, modules=()) -> int:
        return graded_definitions(SourceFile("m.py", text.encode(), "m.py"), "tinycnn", modules)

    real = "def relu_forward(x):\n    return x\n"
    assert counted(TEMPLATE) == 0
    for body in (
        "pass",
        "...",
        "'''Docstring.'''",
        "'''Docstring.'''\n    raise NotImplementedError",
        "raise NotImplementedError('TODO: relu_backward')",
    ):
        assert counted(f"def relu_backward(dy, x):\n    {body}\n") == 0, body
        assert counted(real + f"def relu_backward(dy, x):\n    {body}\n") == 1, body
    assert counted("def relu_forward(x):\n    raise ValueError('negative')\n") == 1
    assert counted("def relu_forward(x):\n    pass\n    return x\n") == 1
    # a name imported from another file of the upload, in a file defining one itself
    imports = "from losses import softmax_cross_entropy\nfrom .x import linear_forward\n"
    assert counted(real + imports, {"m", "losses"}) == 2
    assert counted(real + imports) == 1  # losses is not a file of the upload
    assert counted(imports, {"m", "losses"}) == 0  # only imports: defines none
    assert counted(real + "from numpy import softmax_cross_entropy\n", {"m", "losses"}) == 1


def test_the_template_beside_the_students_files_is_not_graded(tmp_path):
    # The attacker's up_stub: graded student_template.py, "not implemented yet", 0 of 9.
    upload = write(
        tmp_path,
        {"layers.py": LAYERS, "losses.py": LOSSES, "student_template.py": TEMPLATE},
    )
    read = load_submission(upload)
    assert read.problem is None
    assert [f.path for f in read.files] == ["layers.py", "losses.py", "student_template.py"]
    assert read.chosen == "graded layers.py, chosen among 3 .py/.ipynb files"
    report = grade_submission(upload, train=False, seed=1)
    assert {r.status for r in report.functions.values()} == {"pass"}
    assert report_json(report)["chosen"] == read.chosen
    assert f"\n    {read.chosen}\n" in submission_table(report)


def test_a_partly_written_file_beats_the_template(tmp_path):
    stubbed = TEMPLATE.replace(
        'raise NotImplementedError("TODO: relu_forward")', "return np.maximum(x, 0)"
    )
    assert stubbed != TEMPLATE
    upload = write(tmp_path, {"student_template.py": TEMPLATE, "mine.py": stubbed})
    assert load_submission(upload).entry.path == "mine.py"


@pytest.mark.parametrize(
    ("files", "graded"),
    [
        ({"student_template.py": TEMPLATE}, "student_template.py"),  # a single file
        ({"hw/student_template.py": TEMPLATE}, "hw/student_template.py"),
        ({"layers.py": CORRECT, "utils.py": "import numpy as np\n"}, "layers.py"),
        ({"layers.py": LAYERS, "losses.py": LOSSES}, "layers.py"),
        # a course notebook's script importing what cs231n/layers.py defines: the package's file
        (
            {
                "run.py": "from cs231n.layers import relu_forward\n",
                "cs231n/__init__.py": "",
                "cs231n/layers.py": CORRECT,
            },
            "cs231n/layers.py",
        ),
    ],
)
def test_the_choice_of_an_honest_upload_does_not_change(tmp_path, files, graded):
    upload = write(tmp_path, files)
    read = load_submission(upload)
    assert read.problem is None and read.entry.origin == graded


def test_a_single_file_and_entry_are_not_said_to_be_chosen(tmp_path):
    write(tmp_path, {"student_template.py": TEMPLATE, "hw/a.py": CORRECT, "hw/b.py": "X = 1\n"})
    assert load_submission(tmp_path / "student_template.py").chosen == ""
    assert load_submission(tmp_path / "hw", entry="b").chosen == ""
    assert load_submission(tmp_path / "hw").chosen == "graded a.py, chosen among 2 .py/.ipynb files"


def test_the_templates_placeholders_above_the_real_functions_do_not_hide_them(tmp_path):
    # Attacker session 7c, F1: the template kept at the top of a file, the real functions below
    # (the last def is what runs): the file was counted as placeholders and a scratch file
    # defining one function was graded, 1 of 9.
    upload = write(
        tmp_path,
        {
            "layers.py": TEMPLATE + "\n\n" + CORRECT,
            "scratch.py": BUGGY.split("def relu_backward")[0],
        },
    )
    read = load_submission(upload)
    assert read.problem is None and read.entry.origin == "layers.py", read.problem
    source = SourceFile("layers.py", (upload / "layers.py").read_bytes(), "layers.py")
    assert not source.outline.stubs
    # The other way round, the placeholders run: they are placeholders.
    source = SourceFile("layers.py", (CORRECT + "\n\n" + TEMPLATE).encode(), "layers.py")
    assert source.outline.stubs
