"""`python -m autograder export`: the gradebook as the CSV Canvas or Moodle imports,
with a roster, formula-safe cells and an optional late penalty."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from autograder.assignment import COURSE_ROOT, load_assignment
from autograder.cli import main
from autograder.grading import SubmissionResult
from autograder.grading import TestResult as Outcome
from autograder.record import GradebookWriter
from autograder.samples import notebook_name, submission, write
from autograder.status import Status

ASSIGNMENT = "ex1_attention"
DEADLINE = datetime(2026, 3, 1, 23, 59, tzinfo=timezone.utc)
ODD = ['=HYPERLINK("x.example")', "+cmd", "@SUM(1)"]


def export(*args: str) -> list[list[str]]:
    done = subprocess.run([sys.executable, "-m", "autograder", "export", *args],
                          cwd=COURSE_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return list(csv.reader(io.StringIO(done.stdout)))


@pytest.fixture(scope="module")
def gradebook(tmp_path_factory):
    """alice 14 on time, bob 14 a day and a half late, carol 14 ten days late, and three
    students whose ids a spreadsheet would read as formulas."""
    root = tmp_path_factory.mktemp("export")
    db_url = f"sqlite:///{root / 'gradebook.db'}"
    assignment = load_assignment(ASSIGNMENT)
    writer = GradebookWriter(assignment, db_url, "test")
    full = [Outcome(t.name, t.points, t.points, "") for t in assignment.tests]
    times = {"alice": DEADLINE - timedelta(hours=1),
             "bob": DEADLINE + timedelta(days=1, hours=12),
             "carol": DEADLINE + timedelta(days=10)}
    for student in ["alice", "bob", "carol", *ODD]:
        assert writer.record(SubmissionResult(student, Status.GRADED, full),
                             times.get(student, DEADLINE))
    writer.close()
    roster = root / "roster.csv"
    roster.write_text("student_id,name,lms_id,sis_user_id,sis_login_id,section,email,"
                      "id_number\n"
                      "alice,Alice Liddell,101,S-1,alice@uni.example,A,alice@uni.example,"
                      "N001\n"
                      "@SUM(1),-2+3,102,S-2,=cmd,B,x@uni.example,+N002\n")
    policy = root / "late.json"
    policy.write_text(json.dumps({ASSIGNMENT: {"deadline": DEADLINE.isoformat(),
                                               "percent_per_day": 10,
                                               "cap_percent": 50}}))
    return db_url, roster, policy


def test_canvas_export_maps_the_roster_and_neutralises_formulas(gradebook):
    db_url, roster, _ = gradebook
    rows = export("--format", "canvas", "--db", db_url, "--roster", str(roster))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                       ASSIGNMENT]
    by_login = {row[3]: row for row in rows[1:]}
    assert by_login["alice@uni.example"] == ["Alice Liddell", "101", "S-1",
                                             "alice@uni.example", "A", "14"]
    # every cell that would be a formula starts with an apostrophe
    for row in rows[1:]:
        for cell in row[:5]:
            assert not cell.startswith(("=", "+", "-", "@")), row
    assert ["'-2+3", "102", "S-2", "'=cmd", "B", "14"] in rows
    assert any(row[0] == "'=HYPERLINK(\"x.example\")" for row in rows)


def test_moodle_and_csv_exports_apply_the_late_policy(gradebook):
    db_url, roster, policy = gradebook
    moodle = export("--format", "moodle", "--db", db_url, "--roster", str(roster),
                    "--late-policy", str(policy))
    assert moodle[0] == ["ID number", "Email address", "Full name", ASSIGNMENT]
    assert ["N001", "alice@uni.example", "Alice Liddell", "14"] in moodle
    assert ["'+N002", "x@uni.example", "'-2+3", "14"] in moodle
    plain = {row[0]: row for row in export("--db", db_url, "--late-policy", str(policy))}
    assert plain["student_id"] == ["student_id", "name", ASSIGNMENT,
                                   f"{ASSIGNMENT} late penalty", "total"]
    assert plain["alice"][2:] == ["14", "0", "14"]
    assert plain["bob"][2:] == ["11.2", "2.8", "11.2"]  # 2 started days: -20 %
    assert plain["carol"][2:] == ["7", "7", "7"]  # capped at 50 %


def test_late_penalty_is_shown_in_the_feedback(tmp_path):
    name = notebook_name(ASSIGNMENT)
    write(submission(ASSIGNMENT), tmp_path / "subs", "dora", name)
    policy = tmp_path / "late.json"
    deadline = datetime.now(timezone.utc) - timedelta(days=1, hours=12)
    policy.write_text(json.dumps({ASSIGNMENT: {"deadline": deadline.isoformat(),
                                               "percent_per_day": 10}}))
    db_url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    assert main(["grade", ASSIGNMENT, str(tmp_path / "subs"), "--out",
                 str(tmp_path / "out"), "--db", db_url, "--late-policy", str(policy),
                 "--no-progress"]) == 0
    feedback = (tmp_path / "out" / "students" / "dora" / "feedback.html").read_text()
    assert "late by 2 day(s)" in feedback and "11.2 / 14" in feedback
    plain = {row[0]: row for row in export("--db", db_url, "--late-policy", str(policy))}
    assert plain["dora"][2] == "11.2"
