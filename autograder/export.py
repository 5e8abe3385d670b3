"""The gradebook as the CSV an LMS imports: ``python -m autograder export``.

Formats (one row per student, one score column per assignment, in name order):

* ``canvas``: ``Student, ID, SIS User ID, SIS Login ID, Section, <assignment>…``, the
  columns of Canvas' own gradebook export, which its Gradebook import reads back; it
  matches a row by ``ID`` (Canvas user id), else ``SIS User ID``, else
  ``SIS Login ID``. These come from the roster; without one, ``SIS Login ID`` is the
  nbgrader student id.
* ``moodle``: ``ID number, Email address, Full name, <assignment>…``; on Moodle's
  "Import grades → CSV file" page choose "Identify user by" = ID number (or Email
  address) and map each assignment column to its grade item.
* ``csv``: ``student_id, name, <assignment>…, <assignment> late penalty…, total``.

The roster (``--roster FILE``, CSV with a header) maps nbgrader ids to the LMS:
``student_id`` (required) and any of ``name, lms_id, sis_user_id, sis_login_id,
section, email, id_number``. Students in the gradebook but not in the roster are
exported with their nbgrader id, and listed on stderr.

Every text cell goes through ``autograder.text.csv_cell``: printable, one line, and a
cell a spreadsheet would read as a formula (``= + - @``, tab, CR) gets a leading
``'``.

A late-penalty policy (``--late-policy FILE``, JSON) is applied to the scores:
``{"ex1_attention": {"deadline": "2026-03-01T23:59:00+00:00", "percent_per_day": 10,
"cap_percent": 50}}``. A submission timestamp (nbgrader's, which the grader sets from
``timestamp.txt`` or the notebook's modification time) after the deadline loses
``percent_per_day`` of its score per started day, at most ``cap_percent``.
"""
from __future__ import annotations

import csv
import io
import json
import math
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from nbgrader.api import Gradebook

from autograder.assignment import InstructorError
from autograder.text import csv_cell

FORMATS = ("canvas", "moodle", "csv")
ROSTER_FIELDS = ("student_id", "name", "lms_id", "sis_user_id", "sis_login_id", "section",
                 "email", "id_number")


@dataclass(frozen=True)
class LatePolicy:
    deadline: datetime
    percent_per_day: float
    cap_percent: float = 100.0

    def days_late(self, submitted: datetime | None) -> int:
        if submitted is None:
            return 0
        if submitted.tzinfo is None:
            submitted = submitted.replace(tzinfo=timezone.utc)
        seconds = (submitted - self.deadline).total_seconds()
        return max(0, math.ceil(seconds / 86400))

    def percent(self, submitted: datetime | None) -> float:
        return min(self.cap_percent, self.percent_per_day * self.days_late(submitted))

    def describe(self) -> str:
        return (f"{self.percent_per_day:g} % per started day after "
                f"{self.deadline.isoformat()}, at most {self.cap_percent:g} %")


def load_late_policy(path: Path | None) -> dict[str, LatePolicy]:
    if path is None:
        return {}
    try:
        document = json.loads(Path(path).read_text())
        policies = {}
        for assignment, rule in document.items():
            deadline = datetime.fromisoformat(rule["deadline"])
            if deadline.tzinfo is None:
                deadline = deadline.replace(tzinfo=timezone.utc)
            policies[assignment] = LatePolicy(deadline, float(rule["percent_per_day"]),
                                              float(rule.get("cap_percent", 100)))
        return policies
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise InstructorError(f"cannot read the late policy {path}: {error}. Expected "
                              '{"<assignment>": {"deadline": "2026-03-01T23:59:00+00:00", '
                              '"percent_per_day": 10, "cap_percent": 50}}') from None


def load_roster(path: Path | None) -> dict[str, dict[str, str]]:
    if path is None:
        return {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as stream:
            reader = csv.DictReader(stream)
            if "student_id" not in (reader.fieldnames or []):
                raise ValueError("no student_id column")
            return {row["student_id"]: {k: (row.get(k) or "") for k in ROSTER_FIELDS}
                    for row in reader if row.get("student_id")}
    except (OSError, ValueError, csv.Error) as error:
        raise InstructorError(f"cannot read the roster {path}: {error} (a CSV with a "
                              f"header: {', '.join(ROSTER_FIELDS)})") from None


def penalised(score: float, policy: LatePolicy | None,
              submitted: datetime | None) -> tuple[float, float]:
    """(score after the penalty, the penalty in points)."""
    if policy is None:
        return score, 0.0
    penalty = round(score * policy.percent(submitted) / 100, 4)
    return round(score - penalty, 4), penalty


def gradebook_rows(db_url: str, course: str, assignments: list[str] | None,
                   policies: dict[str, LatePolicy]):
    """(assignment names, {student: {assignment: (score, penalty)}})."""
    with Gradebook(db_url, course) as gradebook:
        names = sorted(a.name for a in gradebook.assignments)
        if assignments:
            unknown = sorted(set(assignments) - set(names))
            if unknown:
                raise InstructorError(f"not in the gradebook: {', '.join(unknown)}")
            names = [n for n in names if n in assignments]
        table: dict[str, dict[str, tuple[float, float]]] = {
            s.id: {} for s in gradebook.students}
        for name in names:
            for submission in gradebook.assignment_submissions(name):
                table.setdefault(submission.student.id, {})[name] = penalised(
                    float(submission.score), policies.get(name), submission.timestamp)
    return names, table


def _number(value: float) -> str:
    return f"{value:g}"


def render(fmt: str, names: list[str], table: dict, roster: dict) -> str:
    if fmt not in FORMATS:
        raise InstructorError(f"--format must be one of {', '.join(FORMATS)}")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n" if fmt == "canvas" else "\n")
    if fmt == "canvas":
        writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *names])
    elif fmt == "moodle":
        writer.writerow(["ID number", "Email address", "Full name", *names])
    else:
        writer.writerow(["student_id", "name", *names,
                         *(f"{n} late penalty" for n in names), "total"])
    for student in sorted(table):
        person = roster.get(student, {})
        scores = [table[student].get(n) for n in names]
        shown = ["" if s is None else _number(s[0]) for s in scores]
        if fmt == "canvas":
            cells = [person.get("name") or student, person.get("lms_id", ""),
                     person.get("sis_user_id", ""), person.get("sis_login_id") or student,
                     person.get("section", "")]
        elif fmt == "moodle":
            cells = [person.get("id_number") or student, person.get("email", ""),
                     person.get("name") or student]
        else:
            penalties = ["" if s is None else _number(s[1]) for s in scores]
            total = sum(s[0] for s in scores if s is not None)
            cells = [student, person.get("name", "")]
            writer.writerow([csv_cell(c) for c in cells] + shown + penalties
                            + [_number(total)])
            continue
        writer.writerow([csv_cell(c) for c in cells] + shown)
    return buffer.getvalue()


def export(fmt: str, db_url: str, course: str, out: Path | None = None,
           roster_path: Path | None = None, late_policy: Path | None = None,
           assignments: list[str] | None = None) -> str:
    roster = load_roster(roster_path)
    names, table = gradebook_rows(db_url, course, assignments,
                                  load_late_policy(late_policy))
    if roster:
        missing = sorted(set(table) - set(roster))
        if missing:
            print(f"warning: {len(missing)} student(s) not in the roster, exported with "
                  f"their nbgrader id: {', '.join(missing[:10])}", file=sys.stderr)
    text = render(fmt, names, table, roster)
    if out is not None:
        Path(out).write_text(text, encoding="utf-8")
    return text
