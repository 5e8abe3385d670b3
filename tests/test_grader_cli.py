"""The grading command's contract, run as an instructor would run it."""
from __future__ import annotations

import csv
import json
import os
import shutil
import stat
import subprocess
import sys
import warnings
import zipfile

import nbformat
import pytest
from nbgrader.api import Gradebook, MissingEntry

from autograder.assignment import COURSE_ROOT, load_assignment
from autograder.cli import main
from autograder import grading
from autograder.grading import SubmissionResult
from autograder.record import (
    audit_trail, course_id, ensure_assignment_in_gradebook, nbgrader_command,
    record_gradebook, student_folder,
)
from autograder.samples import notebook_name, submission, write
from autograder.status import Status
from autograder.submissions import MAX_ARCHIVE_BYTES

ASSIGNMENT = "ex1_attention"
NAME = notebook_name(ASSIGNMENT)
ODD_IDS = ["grades.csv", '=HYPERLINK("x.example")', "+cmd", "@SUM(1)",
           "-2+3", "evil\x1b[31mred\x07"]
CANVAS = f"smithjane_1234_5678_{NAME}"
MOODLE = f"Ada Lovelace_4242_assignsubmission_file_{NAME}"
BLACKBOARD = "Exercise 1_bob2_attempt_{}_" + NAME


def grade(*args: str) -> subprocess.CompletedProcess:
    """The command itself, in a new process, exactly as an instructor types it."""
    return subprocess.run([sys.executable, "-m", "autograder", "grade", *args], cwd=COURSE_ROOT,
                          capture_output=True, text=True)


def grade_here(*args: str) -> int:
    """The same command line through autograder.cli.main, without a new interpreter."""
    return main(["grade", *args])


def read_grades(out) -> dict[str, dict]:
    with open(out / "grades.csv", newline="") as stream:
        return {row["student_id"]: row for row in csv.DictReader(stream)}


def zip_folder(folder, archive, prefix=""):
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                bundle.write(path, prefix + str(path.relative_to(folder)))


def write_file(notebook, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    folder = root / "submissions"
    correct, blank = submission(ASSIGNMENT), submission(ASSIGNMENT, blank=True)
    write(correct, folder, "alice", NAME)
    write(correct, folder, "bob", "my attempt.ipynb")
    (folder / "carol").mkdir()
    (folder / "carol" / "notes.txt").write_text("I forgot the notebook")
    (folder / "dave").mkdir()
    (folder / "dave" / NAME).write_text("{ this is not json")
    write(correct, folder, "erin", "a.ipynb")
    write(blank, folder, "erin", "b.ipynb")
    write(correct, root / "frank", "inner", NAME)
    zip_folder(root / "frank" / "inner", folder / "frank.zip")
    (folder / ".DS_Store").write_text("")
    for student in ODD_IDS:
        write(blank, folder, student, NAME)
    write(blank, folder, "gina", NAME)  # a folder and a zip with the same id
    with zipfile.ZipFile(folder / "gina.zip", "w") as bundle:
        bundle.writestr(NAME, nbformat.writes(correct))
    with zipfile.ZipFile(folder / "hank.zip", "w") as bundle, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": on purpose
        bundle.writestr(NAME, nbformat.writes(blank))
        bundle.writestr(NAME, nbformat.writes(correct))
    write_file(correct, folder / CANVAS)
    write_file(blank, folder / MOODLE)
    write_file(blank, folder / BLACKBOARD.format("2026-01-01-10-00-00"))
    write_file(correct, folder / BLACKBOARD.format("2026-01-02-10-00-00"))
    write(correct, folder / "ivan", "ex1_atention", NAME)  # nbgrader layout, typo
    write(submission("ex2_multihead"), folder, "judy", notebook_name("ex2_multihead"))
    out, db = root / "out", root / "gradebook.db"
    done = grade(ASSIGNMENT, str(folder), "--out", str(out), "--db", f"sqlite:///{db}",
                 "--jobs", "2")
    return {"root": root, "folder": folder, "out": out, "db": db, "done": done}


def test_exit_zero_with_a_row_and_a_reason_for_everyone(batch):
    assert batch["done"].returncode == 0, batch["done"].stderr[-3000:]
    grades = read_grades(batch["out"])
    maximum = f"{load_assignment(ASSIGNMENT).max_score:g}"
    expected = {"alice": ("graded", maximum), "bob": ("graded", maximum),
                "carol": ("no notebook", "0"), "dave": ("invalid notebook", "0"),
                "erin": ("no notebook", "0"), "frank": ("graded", maximum),
                "gina": ("graded", "0"), "hank": ("graded", maximum),
                "smithjane": ("graded", maximum), "Ada Lovelace_4242": ("graded", "0"),
                "bob2": ("graded", maximum), "ivan": ("graded", maximum),
                "judy": ("wrong assignment", "0")}
    assert {s: (grades[s]["status"], grades[s]["score"]) for s in expected} == expected
    assert len(grades) == len(expected) + len(ODD_IDS)
    assert all(row["max_score"] == maximum for row in grades.values())
    assert {row["isolation"] for row in grades.values()} == {"full"}
    assert "my attempt.ipynb" in grades["bob"]["notes"] and NAME in grades["bob"]["notes"]


def test_each_student_gets_results_and_feedback_without_test_source(batch):
    assignment = load_assignment(ASSIGNMENT)
    for student in ("alice", "bob", "carol", "dave", "erin", "frank", "judy", *ODD_IDS):
        folder = student_folder(batch["out"], student)
        results = json.loads((folder / "results.json").read_text())
        assert results["student_id"] == student and results["isolation"] == "full"
        assert [t["name"] for t in results["tests"]] == [t.name for t in assignment.tests]
        assert all(set(t) == {"name", "points", "max_points", "message"}
                   for t in results["tests"])
        feedback = (folder / "feedback.html").read_text()
        assert "ex1.check_" not in feedback and "HIDDEN" not in feedback
        assert "seed=" not in feedback and "isolation: full" in feedback


def test_progress_and_summary_are_printed(batch):
    assert "grading ex1_attention" in batch["done"].stderr  # tqdm
    graded = 9 + len(ODD_IDS)  # blank notebooks are graded too, at 0
    assert f"{graded} of {13 + len(ODD_IDS)} graded" in batch["done"].stdout
    assert "alice" in batch["done"].stdout and "isolation: full" in batch["done"].stdout


def test_names_are_data_not_formulas_or_terminal_escapes(batch):
    """A folder named grades.csv is a student; ids that look like formulas stay text."""
    text = (batch["out"] / "grades.csv").read_text()
    rows = list(csv.reader(text.splitlines()))[1:]
    first_cells = {row[0] for row in rows}
    assert {"grades.csv", "'=HYPERLINK(\"x.example\")", "'+cmd", "'@SUM(1)",
            "'-2+3", "evil[31mred"} <= first_cells
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r"))
                   for row in rows for cell in row)
    for stream in (text, batch["done"].stdout, batch["done"].stderr):
        assert "\x1b" not in stream and "\x07" not in stream
    assert (student_folder(batch["out"], "grades.csv") / "results.json").is_file()


def test_ambiguous_submissions_follow_the_documented_rule_with_a_note(batch):
    grades = read_grades(batch["out"])
    assert "a folder wins" in grades["gina"]["notes"]  # the folder (blank), not the zip
    assert "hank.zip holds" in grades["hank"]["notes"]
    assert "last one" in grades["hank"]["notes"]
    assert "2026-01-02" in grades["bob2"]["notes"]  # the later attempt was graded
    assert "2026-01-01" in grades["bob2"]["notes"]


def test_lms_exports_and_nbgrader_folders(batch):
    grades = read_grades(batch["out"])
    assert grades["smithjane"]["notebook"] == CANVAS
    assert grades["Ada Lovelace_4242"]["notebook"] == MOODLE
    assert "found in ex1_atention/" in grades["ivan"]["notes"]


def test_a_notebook_of_another_assignment_writes_nothing_to_the_gradebook(batch):
    grades = read_grades(batch["out"])
    assert "ex2" in grades["judy"]["notes"] or "split_heads" in grades["judy"]["notes"]
    with Gradebook(f"sqlite:///{batch['db']}", course_id()) as gradebook:
        assert gradebook.find_submission(ASSIGNMENT, "alice").score == 14
        with pytest.raises(MissingEntry):
            gradebook.find_submission(ASSIGNMENT, "judy")


def test_scores_land_in_the_gradebook_for_nbgrader_export(batch, tmp_path):
    (tmp_path / "nbgrader_config.py").write_text((COURSE_ROOT / "nbgrader_config.py").read_text())
    done = nbgrader_command("export", f"--CourseDirectory.db_url=sqlite:///{batch['db']}",
                            course_root=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(tmp_path / "grades.csv") as stream:
        exported = {row["student_id"]: row["score"] for row in csv.DictReader(stream)}
    recorded = {}
    for folder in (batch["out"] / "students").iterdir():
        result = json.loads((folder / "results.json").read_text())
        if result["status"] != "wrong assignment":
            recorded[result["student_id"]] = result["score"]
    assert {s: float(v) for s, v in exported.items()} == recorded


def test_every_score_change_is_in_the_audit_trail(batch, capsys):
    rows = audit_trail(f"sqlite:///{batch['db']}", ASSIGNMENT, "alice")
    tests = {test.name for test in load_assignment(ASSIGNMENT).tests}
    assert {row["cell"] for row in rows} == tests
    assert all(row["old"] is None and row["new"] > 0 for row in rows)
    assert all("autograder grade ex1_attention" in row["command"] for row in rows)
    db_url = f"sqlite:///{batch['db']}"
    assert main(["audit", "--db", db_url, "--student", "alice"]) == 0
    assert f"{len(rows)} change(s)" in capsys.readouterr().out


def test_regrading_a_subset_merges_into_out_and_records_the_change(batch):
    """Alice hands in a blank notebook again: only her row and her marks change."""
    again = batch["root"] / "again"
    write(submission(ASSIGNMENT, blank=True), again, "alice", NAME)
    before = read_grades(batch["out"])
    assert grade_here(ASSIGNMENT, str(again), "--out", str(batch["out"]), "--db",
                      f"sqlite:///{batch['db']}", "--no-progress") == 0
    after = read_grades(batch["out"])
    assert after["alice"]["score"] == "0" and set(after) == set(before)
    assert {s: r for s, r in after.items() if s != "alice"} == \
           {s: r for s, r in before.items() if s != "alice"}
    changes = [r for r in audit_trail(f"sqlite:///{batch['db']}", ASSIGNMENT, "alice")
               if r["old"] is not None]
    assert changes and all(r["new"] == 0 and r["old"] > 0 for r in changes)


def test_out_of_another_assignment_is_refused_before_anything_is_written(batch, capsys):
    before = (batch["out"] / "grades.csv").read_bytes()
    assert grade_here("ex2_multihead", str(batch["folder"]), "--out", str(batch["out"]),
                      "--no-gradebook", "--no-progress") == 2
    assert "holds results of ex1_attention" in capsys.readouterr().err
    assert (batch["out"] / "grades.csv").read_bytes() == before


def test_stock_autograde_refuses_to_overwrite_the_graders_scores(batch, tmp_path):
    course = tmp_path / "course"
    shutil.copy(COURSE_ROOT / "nbgrader_config.py", course.mkdir() or course)
    shutil.copytree(COURSE_ROOT / "solutions" / ASSIGNMENT,
                    course / "solutions" / ASSIGNMENT)
    write(submission(ASSIGNMENT), course / "submitted" / "frank", ASSIGNMENT, NAME)
    db = tmp_path / "gradebook.db"
    shutil.copy(batch["db"], db)
    done = nbgrader_command("autograde", ASSIGNMENT, "--student=frank",
                            f"--CourseDirectory.db_url=sqlite:///{db}",
                            course_root=course)
    assert done.returncode != 0
    assert "python -m autograder grade" in done.stdout + done.stderr
    with Gradebook(f"sqlite:///{db}", course_id()) as gradebook:
        assert gradebook.find_submission(ASSIGNMENT, "frank").score == 14


def test_a_failed_gradebook_write_loses_no_one_elses_marks(tmp_path, monkeypatch):
    """Each submission is one transaction; a failing one is rolled back and noted."""
    import autograder.record as record

    assignment = load_assignment(ASSIGNMENT)
    db_url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    ensure_assignment_in_gradebook(assignment, db_url)

    def result(student, points):
        tests = [grading.TestResult(t.name, min(points, t.points), t.points, "")
                 for t in assignment.tests]
        return SubmissionResult(student, Status.GRADED, tests)

    record_gradebook(assignment, [result("kim", 1), result("lee", 1)], db_url)
    original = record._record_one

    def flaky(gradebook, assignment, result, when, command):
        original(gradebook, assignment, result, when, command)
        if result.student_id == "kim":
            raise RuntimeError("disk full")

    monkeypatch.setattr(record, "_record_one", flaky)
    results = [result("kim", 2), result("lee", 2), result("mo", 2),
               SubmissionResult("lee", Status.GRADER_ERROR, [])]
    record_gradebook(assignment, results, db_url)
    assert any("not updated" in note for note in results[0].notes)
    with Gradebook(db_url, course_id()) as gradebook:
        scores = {student: gradebook.find_submission(ASSIGNMENT, student).score
                  for student in ("kim", "lee", "mo")}
    one, two = len(assignment.tests), sum(min(2, t.points) for t in assignment.tests)
    assert scores == {"kim": one, "lee": two, "mo": two}
    assert not [r for r in audit_trail(db_url, ASSIGNMENT, "kim") if r["new"] == 2]


def test_a_batch_of_another_assignment_stops_before_writing_anything(tmp_path, capsys):
    folder = tmp_path / "submissions"
    for student in ("a", "b", "c"):
        write(submission("ex2_multihead"), folder, student,
              notebook_name("ex2_multihead"))
    write(submission(ASSIGNMENT), folder, "d", NAME)
    out, db = tmp_path / "out", tmp_path / "gradebook.db"
    assert grade_here(ASSIGNMENT, str(folder), "--out", str(out), "--db",
                      f"sqlite:///{db}", "--no-progress") == 2
    error = capsys.readouterr().err
    assert "3 of 4 notebooks" in error and "ex2_multihead" in error
    assert not out.exists() and not db.exists()


@pytest.mark.parametrize("layout, hint", [
    ({}, "holds: nothing"),
    ({"alice/notes.txt": "no notebook", "readme.md": "x"}, "one folder per student"),
    ({NAME: "{}"}, "one student's folder"),
])
def test_nothing_gradable_exits_2_with_a_hint(tmp_path, capsys, layout, hint):
    folder = tmp_path / "submissions"
    folder.mkdir()
    for name, text in layout.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    assert grade_here(ASSIGNMENT, str(folder), "--out", str(tmp_path / "out"),
                      "--no-gradebook", "--no-progress") == 2
    assert hint in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_zip_of_the_whole_folder_grades_the_same(batch):
    archive = batch["root"] / "all.zip"
    zipped_folder = batch["root"] / "subset"
    for student in ("alice", "carol", "dave", "frank.zip"):
        source = batch["folder"] / student
        target = zipped_folder / student
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy(source, target)
    zip_folder(zipped_folder, archive, prefix="submissions/")
    out = batch["root"] / "out-zip"
    assert grade_here(ASSIGNMENT, str(archive), "--out", str(out), "--no-gradebook",
                      "--no-progress") == 0
    zipped = {s: (r["status"], r["score"]) for s, r in read_grades(out).items()}
    assert zipped == {"alice": ("graded", "14"), "carol": ("no notebook", "0"),
                      "dave": ("invalid notebook", "0"), "frank": ("graded", "14")}


def test_hostile_archives_stay_inside_and_bounded(tmp_path):
    folder = tmp_path / "submissions"
    folder.mkdir()
    with zipfile.ZipFile(folder / "mallory.zip", "w") as bundle:
        bundle.writestr("../../escaped.txt", "zip slip")
        bundle.writestr("/abs/escaped.txt", "absolute")
        link = zipfile.ZipInfo("link.ipynb")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        bundle.writestr(link, "/etc/passwd")
        bundle.writestr(NAME, nbformat.writes(submission(ASSIGNMENT)))
    with zipfile.ZipFile(folder / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as bundle:
        with bundle.open("huge.ipynb", "w") as sink:
            chunk = b"\0" * (1 << 20)
            for _ in range((MAX_ARCHIVE_BYTES >> 20) + 8):
                sink.write(chunk)
    out = tmp_path / "out"
    assert grade_here(ASSIGNMENT, str(folder), "--out", str(out), "--no-gradebook",
                      "--no-progress") == 0
    grades = read_grades(out)
    assert grades["mallory"]["status"] == "graded"
    assert float(grades["mallory"]["score"]) == load_assignment(ASSIGNMENT).max_score
    assert grades["bomb"]["status"] == "invalid submission"
    assert not list(tmp_path.rglob("escaped.txt")) and not os.path.exists("/abs/escaped.txt")


@pytest.mark.parametrize("args, message", [
    (["ex9_nothing", "{folder}", "--out", "{out}"], "unknown assignment"),
    ([ASSIGNMENT, "{folder}/missing", "--out", "{out}"], "does not exist"),
])
def test_instructor_mistakes_exit_non_zero_with_a_clear_message(tmp_path, capsys, args, message):
    assert grade_here(*(a.format(folder=tmp_path, out=tmp_path / "out") for a in args)) == 2
    assert message in capsys.readouterr().err
