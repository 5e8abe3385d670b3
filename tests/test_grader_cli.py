"""The grading command's contract, run as an instructor would run it."""
from __future__ import annotations

import csv
import json
import os
import stat
import subprocess
import sys
import zipfile

import nbformat
import pytest

from autograder.assignment import COURSE_ROOT, load_assignment
from autograder.cli import main
from autograder.record import nbgrader_command
from autograder.submissions import MAX_ARCHIVE_BYTES
from autograder.samples import notebook_name, submission, write

ASSIGNMENT = "ex1_attention"
NAME = notebook_name(ASSIGNMENT)


def grade(*args: str) -> subprocess.CompletedProcess:
    """The command itself, in a new process, exactly as an instructor types it."""
    return subprocess.run([sys.executable, "-m", "autograder", "grade", *args], cwd=COURSE_ROOT,
                          capture_output=True, text=True)


def grade_here(*args: str) -> int:
    """The same command line through autograder.cli.main, without a new interpreter."""
    return main(["grade", *args])


def read_grades(out) -> dict[str, dict]:
    with open(out / "grades.csv") as stream:
        return {row["student_id"]: row for row in csv.DictReader(stream)}


def zip_folder(folder, archive, prefix=""):
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                bundle.write(path, prefix + str(path.relative_to(folder)))


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    folder = root / "submissions"
    write(submission(ASSIGNMENT), folder, "alice", NAME)
    write(submission(ASSIGNMENT), folder, "bob", "my attempt.ipynb")
    (folder / "carol").mkdir()
    (folder / "carol" / "notes.txt").write_text("I forgot the notebook")
    (folder / "dave").mkdir()
    (folder / "dave" / NAME).write_text("{ this is not json")
    write(submission(ASSIGNMENT), folder, "erin", "a.ipynb")
    write(submission(ASSIGNMENT, blank=True), folder, "erin", "b.ipynb")
    zipped = root / "frank"
    write(submission(ASSIGNMENT), zipped, "inner", NAME)
    zip_folder(zipped / "inner", folder / "frank.zip")
    (folder / ".DS_Store").write_text("")
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
                "erin": ("no notebook", "0"), "frank": ("graded", maximum)}
    assert {s: (row["status"], row["score"]) for s, row in grades.items()} == expected
    assert all(row["max_score"] == maximum for row in grades.values())
    assert "my attempt.ipynb" in grades["bob"]["notes"] and NAME in grades["bob"]["notes"]


def test_each_student_gets_results_and_feedback_without_test_source(batch):
    assignment = load_assignment(ASSIGNMENT)
    for student in ("alice", "bob", "carol", "dave", "erin", "frank"):
        results = json.loads((batch["out"] / student / "results.json").read_text())
        assert [t["name"] for t in results["tests"]] == [t.name for t in assignment.tests]
        assert all(set(t) == {"name", "points", "max_points", "message"} for t in results["tests"])
        feedback = (batch["out"] / student / "feedback.html").read_text()
        assert "ex1.check_" not in feedback and "HIDDEN" not in feedback and "seed=" not in feedback
        assert student in feedback


def test_progress_and_summary_are_printed(batch):
    assert "grading ex1_attention" in batch["done"].stderr  # tqdm
    assert "3 of 6 graded" in batch["done"].stdout
    assert "alice" in batch["done"].stdout


def test_scores_land_in_the_gradebook_for_nbgrader_export(batch, tmp_path):
    (tmp_path / "nbgrader_config.py").write_text((COURSE_ROOT / "nbgrader_config.py").read_text())
    done = nbgrader_command("export", f"--CourseDirectory.db_url=sqlite:///{batch['db']}",
                            course_root=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(tmp_path / "grades.csv") as stream:
        exported = {row["student_id"]: row["score"] for row in csv.DictReader(stream)}
    grades = read_grades(batch["out"])
    assert {s: float(v) for s, v in exported.items()} == {s: float(r["score"]) for s, r in grades.items()}


def test_a_zip_of_the_whole_folder_grades_the_same(batch):
    archive = batch["root"] / "all.zip"
    zip_folder(batch["folder"], archive, prefix="submissions/")
    out = batch["root"] / "out-zip"
    assert grade_here(ASSIGNMENT, str(archive), "--out", str(out), "--no-gradebook",
                      "--no-progress") == 0
    zipped = {s: (r["status"], r["score"]) for s, r in read_grades(out).items()}
    assert zipped == {s: (r["status"], r["score"]) for s, r in read_grades(batch["out"]).items()}


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
