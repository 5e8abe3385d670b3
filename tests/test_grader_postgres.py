"""The gradebook in PostgreSQL: a real server (``postgres_server`` in conftest.py starts
it with initdb + pg_ctl on a Unix socket and stops it afterwards)."""
from __future__ import annotations

import csv
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

from nbgrader.api import Gradebook

from autograder.assignment import COURSE_ROOT, load_assignment
from autograder.grading import SubmissionResult
from autograder.grading import TestResult as Outcome
from autograder.record import GradebookWriter, audit_trail, course_id, nbgrader_command
from autograder.samples import notebook_name, submission, write
from autograder.status import Status

ASSIGNMENT = "ex1_attention"


def _writer_process(db_url: str, first: int, count: int, bonus: float, answers) -> None:
    assignment = load_assignment(ASSIGNMENT)
    writer = GradebookWriter(assignment, db_url, f"writer {first}")
    ok = []
    for number in range(first, first + count):
        tests = [Outcome(t.name, min(t.points, bonus), t.points, "")
                 for t in assignment.tests]
        ok.append(writer.record(SubmissionResult(f"student{number:03d}", Status.GRADED,
                                                 tests)))
    writer.close()
    answers.put((first, ok))


def test_four_concurrent_writers_on_one_postgres_gradebook_lose_nothing(postgres_server):
    """Four coordinators at once on a new gradebook: they register the assignment
    together, create overlapping students (a unique-key race) and update the same
    rows; every transaction lands, none deadlocks."""
    db_url = postgres_server()
    context = multiprocessing.get_context("spawn")
    answers = context.Queue()
    writers = [context.Process(target=_writer_process,
                               args=(db_url, 10 * k, 20, float(k), answers))
               for k in range(4)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=600)
        assert process.exitcode == 0
    outcome = dict(answers.get() for _ in writers)
    assert all(all(ok) for ok in outcome.values()), outcome
    with Gradebook(db_url, course_id()) as gradebook:
        students = {s.student.id for s in gradebook.assignment_submissions(ASSIGNMENT)}
        assert students == {f"student{n:03d}" for n in range(50)}
    trail = audit_trail(db_url, ASSIGNMENT)
    assert {row["student"] for row in trail} >= {f"student{n:03d}" for n in range(10, 50)}


def _grade(folder: Path, out: Path, db_url: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "autograder", "grade", ASSIGNMENT, str(folder), "--out",
         str(out), "--db", db_url, "--no-progress"], cwd=COURSE_ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(COURSE_ROOT)})


def test_two_sections_graded_at_once_into_postgres_then_nbgrader_export(
        postgres_server, tmp_path):
    db_url = postgres_server()
    name = notebook_name(ASSIGNMENT)
    sections = {}
    for section, notebook in (("a", submission(ASSIGNMENT)),
                              ("b", submission(ASSIGNMENT, blank=True))):
        folder = tmp_path / section
        write(notebook, folder, f"{section}-one", name)
        for k in range(8):  # no notebook: recorded as 0 without a sandbox
            (folder / f"{section}-empty{k}").mkdir(parents=True)
        sections[section] = folder
    running = [_grade(folder, tmp_path / f"out-{s}", db_url)
               for s, folder in sections.items()]
    for process in running:
        stdout, stderr = process.communicate(timeout=900)
        assert process.returncode == 0, stderr
        assert "gradebook was not updated" not in stdout
    with Gradebook(db_url, course_id()) as gradebook:
        scores = {s.student.id: s.score for s in gradebook.assignment_submissions(ASSIGNMENT)}
    assert len(scores) == 18
    assert scores["a-one"] == 14 and scores["b-one"] == 0
    export = tmp_path / "export.csv"
    done = nbgrader_command("export", f"--CourseDirectory.db_url={db_url}",
                            f"--CsvExportPlugin.to={export}")
    assert done.returncode == 0, done.stderr
    with open(export, newline="") as stream:
        rows = {row["student_id"]: row for row in csv.DictReader(stream)}
    assert float(rows["a-one"]["score"]) == 14
    assert len(rows) == 18
