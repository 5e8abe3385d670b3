"""Writing results: OUT/grades.csv, OUT/<student>/results.json and feedback.html, and
nbgrader's gradebook (so `nbgrader export` and formgrader see the scores).

Only the grading process writes here, one submission after another; the sandboxes
cannot see any of these paths.
"""
from __future__ import annotations

import csv
import html
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning
from traitlets.config.loader import PyFileConfigLoader

from autograder.assignment import COURSE_ROOT, Assignment, InstructorError
from autograder.grading import SubmissionResult

GRADES_COLUMNS = ["student_id", "score", "max_score", "status", "notebook", "notes"]


def _number(value: float) -> str:
    return f"{value:g}"


def write_results_json(folder: Path, assignment: Assignment, result: SubmissionResult) -> None:
    document = {
        "student_id": result.student_id, "assignment": assignment.name,
        "status": result.status, "score": result.score, "max_score": result.max_score,
        "notebook": result.notebook, "notes": result.notes,
        "tests": [{"name": t.name, "points": t.points, "max_points": t.max_points,
                   "message": t.message} for t in result.tests],
    }
    (folder / "results.json").write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


FEEDBACK_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ccc; padding: .4rem .6rem; text-align: left; vertical-align: top; }
tr.passed { background: #eef8ee; } tr.failed { background: #fdeeee; }
pre { white-space: pre-wrap; margin: 0; font-size: .9rem; }
"""


def feedback_html(assignment: Assignment, result: SubmissionResult) -> str:
    """Scores and messages only: no test source, visible or hidden."""
    e = html.escape
    rows = "\n".join(
        f'<tr class="{"passed" if t.points == t.max_points else "failed"}"><td>{e(t.name)}</td>'
        f"<td>{_number(t.points)} / {_number(t.max_points)}</td><td><pre>{e(t.message)}</pre></td></tr>"
        for t in result.tests)
    notes = "".join(f"<li><pre>{e(note)}</pre></li>" for note in result.notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Feedback: {e(assignment.name)} — {e(result.student_id)}</title>
<style>{FEEDBACK_STYLE}</style></head>
<body>
<h1>{e(assignment.name)}: feedback for {e(result.student_id)}</h1>
<p>Score: <strong>{_number(result.score)} / {_number(result.max_score)}</strong>
· status: {e(result.status)}</p>
{f"<h2>Notes</h2><ul>{notes}</ul>" if notes else ""}
<h2>Tests</h2>
<table><thead><tr><th>Test</th><th>Points</th><th>Message</th></tr></thead>
<tbody>
{rows}
</tbody></table>
</body></html>
"""


def write_student_files(out: Path, assignment: Assignment, result: SubmissionResult) -> None:
    folder = out / result.student_id
    folder.mkdir(parents=True, exist_ok=True)
    write_results_json(folder, assignment, result)
    (folder / "feedback.html").write_text(feedback_html(assignment, result))


def write_grades_csv(out: Path, results: list[SubmissionResult]) -> None:
    with open(out / "grades.csv", "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(GRADES_COLUMNS)
        for r in results:
            writer.writerow([r.student_id, _number(r.score), _number(r.max_score), r.status,
                             r.notebook, " | ".join(r.notes)])


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


def nbgrader_command(*args: str, course_root: Path = COURSE_ROOT) -> subprocess.CompletedProcess:
    """Run an nbgrader command in the course root."""
    put_python_bin_on_path()
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course_root,
                          capture_output=True, text=True)


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


def record_gradebook(assignment: Assignment, results: list[SubmissionResult], db_url: str) -> None:
    ensure_assignment_in_gradebook(assignment, db_url)
    notebook_id = assignment.source_path.stem
    with Gradebook(db_url, course_id()) as gradebook, warnings.catch_warnings():
        # nbgrader's own add_submission triggers these SQLAlchemy autoflush warnings.
        warnings.simplefilter("ignore", SAWarning)
        for result in results:
            gradebook.update_or_create_student(result.student_id)
            gradebook.update_or_create_submission(assignment.name, result.student_id)
            for test in result.tests:
                try:
                    grade = gradebook.find_grade(test.name, notebook_id, assignment.name,
                                                 result.student_id)
                except MissingEntry:
                    raise InstructorError(
                        f"the gradebook's {assignment.name} has no test {test.name!r}: it was "
                        "generated from an older source notebook") from None
                grade.auto_score = test.points
                grade.needs_manual_grade = False
            gradebook.db.commit()
