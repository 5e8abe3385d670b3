"""Writing results: OUT/grades.csv, OUT/students/<student>/results.json and
feedback.html, and nbgrader's gradebook (so `nbgrader export` and formgrader see the
scores). Only the grading process writes here; the sandboxes cannot see these paths.

No mark is lost, replaced or forged:

* OUT's own files sit beside ``students/``, so no student id can collide with them;
* grading a few students again merges their rows into OUT/grades.csv (an OUT that
  belongs to another assignment is refused before anything is written);
* each submission's gradebook change is one transaction, kept with the old and new
  score, the time and the command in the table ``autograder_audit``
  (``python -m autograder audit``); statuses that must not record a score (another
  assignment's notebook, a grader bug) leave the gradebook alone;
* ``autograder_recorded`` lists what this grader recorded, so stock
  ``nbgrader autograde`` refuses to overwrite it (``autograder.nbgrader_guard``).
"""
from __future__ import annotations

import csv
import hashlib
import html
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning
from traitlets.config.loader import PyFileConfigLoader

from autograder.assignment import COURSE_ROOT, Assignment, InstructorError
from autograder.formgrader import naive_utc
from autograder.grading import SubmissionResult
from autograder.nbgrader_guard import RECORDED_TABLE
from autograder.text import csv_cell, printable

GRADES_COLUMNS = ["student_id", "score", "max_score", "status", "isolation", "notebook",
                  "notes"]
STUDENTS = "students"
MARKER = ".autograder.json"

METADATA = sa.MetaData()
AUDIT = sa.Table(
    "autograder_audit", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("time", sa.String(40), nullable=False),
    sa.Column("command", sa.Text, nullable=False),
    sa.Column("assignment", sa.String(128), nullable=False),
    sa.Column("student", sa.String(256), nullable=False),
    sa.Column("cell", sa.String(128), nullable=False),
    sa.Column("old", sa.Float, nullable=True),
    sa.Column("new", sa.Float, nullable=False),
)
RECORDED = sa.Table(
    RECORDED_TABLE, METADATA,
    sa.Column("assignment", sa.String(128), primary_key=True),
    sa.Column("student", sa.String(256), primary_key=True),
    sa.Column("time", sa.String(40), nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("command", sa.Text, nullable=False),
)


def _number(value: float) -> str:
    return f"{value:g}"


def student_folder(out: Path, student_id: str) -> Path:
    return out / STUDENTS / student_id


def check_out_folder(out: Path, assignment: Assignment) -> None:
    """OUT must be new, empty or this assignment's: refuse before writing anything."""
    if out.exists() and not out.is_dir():
        raise InstructorError(f"--out {out} is a file, not a folder")
    if not out.exists() or not any(out.iterdir()):
        return
    marker = out / MARKER
    try:
        owner = json.loads(marker.read_text()).get("assignment")
    except (OSError, ValueError):
        raise InstructorError(f"--out {out} is not empty and was not written by this "
                              "grader: choose a new folder") from None
    if owner != assignment.name:
        raise InstructorError(f"--out {out} holds results of {owner}, not "
                              f"{assignment.name}: choose another folder")


def _write_atomically(path: Path, text: str) -> None:
    """A reader (or a rerun after SIGKILL) sees the old file or the new one, never half."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    with os.fdopen(handle, "w") as stream:
        stream.write(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def results_document(assignment: Assignment, result: SubmissionResult,
                     fingerprint: str = "") -> dict:
    document = {
        "student_id": result.student_id, "assignment": assignment.name,
        "status": str(result.status), "score": result.score,
        "max_score": result.max_score, "isolation": result.isolation,
        "notebook": result.notebook, "notes": result.notes,
        "tests": [{"name": t.name, "points": t.points, "max_points": t.max_points,
                   "message": t.message} for t in result.tests],
    }
    if fingerprint:  # what was graded, with what: a rerun skips it while this matches
        document["fingerprint"] = fingerprint
    return document


def write_results_json(folder: Path, assignment: Assignment, result: SubmissionResult,
                       fingerprint: str = "") -> None:
    text = json.dumps(results_document(assignment, result, fingerprint), indent=2,
                      ensure_ascii=False)
    _write_atomically(folder / "results.json", text + "\n")


def read_results_json(out: Path, student_id: str) -> dict | None:
    try:
        document = json.loads((student_folder(out, student_id) / "results.json").read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


RECORDED_MARK = ".recorded"


def _gradebook_id(db_url: str) -> str:
    return hashlib.sha256(db_url.encode()).hexdigest()


def mark_recorded(out: Path, student_id: str, db_url: str) -> None:
    """Beside results.json: the gradebook that holds this result (written after its
    transaction committed, so a rerun into the same gradebook need not record again)."""
    _write_atomically(student_folder(out, student_id) / RECORDED_MARK,
                      _gradebook_id(db_url) + "\n")


def is_recorded(out: Path, student_id: str, db_url: str) -> bool:
    try:
        mark = (student_folder(out, student_id) / RECORDED_MARK).read_text().strip()
    except OSError:
        return False
    return mark == _gradebook_id(db_url)


def result_from_document(document: dict) -> SubmissionResult:
    from autograder.grading import TestResult
    from autograder.status import Status
    tests = [TestResult(t["name"], t["points"], t["max_points"], t["message"])
             for t in document["tests"]]
    return SubmissionResult(document["student_id"], Status(document["status"]), tests,
                            list(document["notes"]), document["notebook"],
                            document["isolation"])


FEEDBACK_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ccc; padding: .4rem .6rem; text-align: left; vertical-align: top; }
tr.passed { background: #eef8ee; } tr.failed { background: #fdeeee; }
pre { white-space: pre-wrap; margin: 0; font-size: .9rem; }
"""


def feedback_html(assignment: Assignment, result: SubmissionResult) -> str:
    """Scores and messages only: no test source, visible or hidden."""
    def e(text) -> str:
        return html.escape(printable(text, keep_newlines=True))

    rows = "\n".join(
        f'<tr class="{"passed" if t.points == t.max_points else "failed"}"><td>{e(t.name)}</td>'
        f"<td>{_number(t.points)} / {_number(t.max_points)}</td>"
        f"<td><pre>{e(t.message)}</pre></td></tr>"
        for t in result.tests)
    notes = "".join(f"<li><pre>{e(note)}</pre></li>" for note in result.notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Feedback: {e(assignment.name)} — {e(result.student_id)}</title>
<style>{FEEDBACK_STYLE}</style></head>
<body>
<h1>{e(assignment.name)}: feedback for {e(result.student_id)}</h1>
<p>Score: <strong>{_number(result.score)} / {_number(result.max_score)}</strong>
· status: {e(result.status)} · isolation: {e(result.isolation or "not run")}</p>
{f"<h2>Notes</h2><ul>{notes}</ul>" if notes else ""}
<h2>Tests</h2>
<table><thead><tr><th>Test</th><th>Points</th><th>Message</th></tr></thead>
<tbody>
{rows}
</tbody></table>
</body></html>
"""


def write_student_files(out: Path, assignment: Assignment, result: SubmissionResult,
                        fingerprint: str = "") -> None:
    """feedback.html, then results.json: a results.json with a fingerprint means this
    submission is finished (its gradebook transaction, if any, committed before)."""
    marker = out / MARKER
    if not marker.is_file():
        _write_atomically(marker, json.dumps({"assignment": assignment.name}) + "\n")
    folder = student_folder(out, result.student_id)
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomically(folder / "feedback.html", feedback_html(assignment, result))
    write_results_json(folder, assignment, result, fingerprint)


def _row(result: SubmissionResult) -> list[str]:
    values = (result.student_id, _number(result.score), _number(result.max_score),
              str(result.status), result.isolation, result.notebook,
              " | ".join(result.notes))
    return [csv_cell(value) for value in values]


def write_grades_csv(out: Path, results: list[SubmissionResult]) -> int:
    """Write this run's rows, keeping the rows of students not graded now; returns how
    many earlier rows were kept. Written to a temporary file, then renamed."""
    rows = {row[0]: row for row in map(_row, results)}
    kept = 0
    path = out / "grades.csv"
    if path.is_file():
        with open(path, newline="") as stream:
            reader = csv.reader(stream)
            header = next(reader, None)
            for row in reader:
                if header == GRADES_COLUMNS and row and row[0] not in rows:
                    rows[row[0]] = row
                    kept += 1
    handle, temporary = tempfile.mkstemp(dir=out, prefix=".grades-", suffix=".csv")
    with os.fdopen(handle, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(GRADES_COLUMNS)
        for student in sorted(rows):
            writer.writerow(rows[student])
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)
    return kept


def course_id(course_root: Path = COURSE_ROOT) -> str:
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course_root)).load_config()
    return config.CourseDirectory.course_id


def default_db_url(course_root: Path = COURSE_ROOT) -> str:
    """nbgrader's own default: gradebook.db in the course root."""
    return f"sqlite:///{course_root / 'gradebook.db'}"


def put_python_bin_on_path() -> None:
    """nbgrader runs `alembic` as a command when it creates a gradebook: find ours."""
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def nbgrader_environment(extra: dict | None = None) -> dict:
    """The environment nbgrader commands need: our venv's bin on PATH (alembic) and this
    course on PYTHONPATH (nbgrader_config.py loads autograder.nbgrader_guard), also
    when the config is used from a copy of the course."""
    put_python_bin_on_path()
    given = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    paths = os.pathsep.join(dict.fromkeys([str(COURSE_ROOT), *filter(None, given)]))
    return {**os.environ, "PYTHONPATH": paths, **(extra or {})}


def nbgrader_command(*args: str, course_root: Path = COURSE_ROOT,
                     env: dict | None = None) -> subprocess.CompletedProcess:
    """Run an nbgrader command in the course root."""
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course_root,
                          capture_output=True, text=True, env=nbgrader_environment(env))


def ensure_assignment_in_gradebook(assignment: Assignment, db_url: str) -> None:
    """Register the assignment's cells exactly as `nbgrader generate_assignment` does."""
    put_python_bin_on_path()
    with Gradebook(db_url, course_id()) as gradebook:
        try:
            gradebook.find_notebook(assignment.source_path.stem, assignment.name)
            return
        except MissingEntry:
            pass
    with tempfile.TemporaryDirectory() as release:
        done = nbgrader_command("generate_assignment", assignment.name, "--force",
                                f"--CourseDirectory.release_directory={release}",
                                f"--CourseDirectory.db_url={db_url}")
    if done.returncode != 0:
        raise InstructorError("nbgrader generate_assignment failed:\n" + done.stderr[-3000:])


def command_line(argv: list[str] | None = None) -> str:
    """The grading command as the instructor typed it, for the audit trail."""
    words = ["python", "-m", "autograder", *(sys.argv[1:] if argv is None else argv)]
    return printable(" ".join(shlex.quote(word) for word in words))[:2000]


def _record_one(gradebook: Gradebook, assignment: Assignment, result: SubmissionResult,
                when: str, command: str) -> None:
    notebook_id = assignment.source_path.stem
    grades = {}
    for test in result.tests:
        try:
            grades[test.name] = gradebook.find_grade(test.name, notebook_id,
                                                     assignment.name, result.student_id)
        except MissingEntry:
            raise InstructorError(
                f"the gradebook's {assignment.name} has no test {test.name!r}: it was "
                "generated from an older source notebook") from None
    session = gradebook.db
    for test in result.tests:
        grade = grades[test.name]
        old = grade.auto_score
        if old is None or float(old) != test.points:
            session.execute(AUDIT.insert().values(
                time=when, command=command, assignment=assignment.name,
                student=result.student_id, cell=test.name,
                old=None if old is None else float(old), new=test.points))
        grade.auto_score = test.points
        grade.needs_manual_grade = False
    key = {"assignment": assignment.name, "student": result.student_id}
    session.execute(RECORDED.delete().where(RECORDED.c.assignment == key["assignment"],
                                            RECORDED.c.student == key["student"]))
    session.execute(RECORDED.insert().values(**key, time=when, score=result.score,
                                             command=command))


RETRIES = 6


@contextmanager
def registration_lock(db_url: str):
    """Two grading commands on one PostgreSQL gradebook register an assignment and
    create our tables one after the other (an advisory lock); SQLite's file lock and
    the retries below serve the same end there."""
    if not db_url.startswith("postgresql"):
        yield
        return
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT pg_advisory_lock(7210413)"))
            try:
                yield
            finally:
                connection.execute(sa.text("SELECT pg_advisory_unlock(7210413)"))
                connection.commit()
    finally:
        engine.dispose()


class GradebookWriter:
    """The coordinator's gradebook: one transaction per submission, as results come in.

    A transaction that fails because another grading command holds the rows, or wrote
    the same student first (a lock timeout, a deadlock, a unique-key race), is rolled
    back and tried again; after that the student's scores stay as they were and a note
    says so."""

    def __init__(self, assignment: Assignment, db_url: str, command: str = ""):
        self.assignment = assignment
        self.command = command or command_line()
        self.when = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with registration_lock(db_url):
            ensure_assignment_in_gradebook(assignment, db_url)
            self.gradebook = Gradebook(db_url, course_id())
            METADATA.create_all(self.gradebook.engine)

    def record(self, result: SubmissionResult, handed_in: datetime | None = None) -> bool:
        """True when the gradebook holds this result (or must not hold it)."""
        if not result.status.records_score:
            return True
        error: Exception | None = None
        for attempt in range(RETRIES):
            try:
                with warnings.catch_warnings():
                    # nbgrader's own add_submission triggers these autoflush warnings.
                    warnings.simplefilter("ignore", SAWarning)
                    # These two commit by themselves, and change no score.
                    self.gradebook.update_or_create_student(result.student_id)
                    extra = {"timestamp": naive_utc(handed_in)} if handed_in else {}
                    self.gradebook.update_or_create_submission(self.assignment.name,
                                                               result.student_id, **extra)
                    _record_one(self.gradebook, self.assignment, result, self.when,
                                self.command)
                    self.gradebook.db.commit()
                return True
            except InstructorError:
                self.gradebook.db.rollback()
                raise
            except Exception as failure:
                self.gradebook.db.rollback()
                error = failure
                time.sleep(0.05 * 2 ** attempt)
        result.notes.append(f"the gradebook was not updated: "
                            f"{type(error).__name__}: {error}")
        return False

    def close(self) -> None:
        self.gradebook.close()


def record_gradebook(assignment: Assignment, results: list[SubmissionResult],
                     db_url: str, command: str = "") -> None:
    """One transaction per submission: either all of its scores and its audit rows are
    written, or none (and a note says so)."""
    writer = GradebookWriter(assignment, db_url, command)
    try:
        for result in results:
            writer.record(result)
    finally:
        writer.close()


def audit_trail(db_url: str, assignment: str | None = None,
                student: str | None = None) -> list[dict]:
    engine = sa.create_engine(db_url)
    try:
        if not sa.inspect(engine).has_table(AUDIT.name):
            return []
        query = sa.select(AUDIT).order_by(AUDIT.c.id)
        if assignment:
            query = query.where(AUDIT.c.assignment == assignment)
        if student:
            query = query.where(AUDIT.c.student == student)
        with engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]
    finally:
        engine.dispose()
