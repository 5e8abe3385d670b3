"""What nbgrader's formgrader reads besides the gradebook (``grade --formgrader-root``).

formgrader counts a submission only when ``submitted/<student>/<assignment>/`` exists,
treats it as autograded only when ``timestamp.txt`` there equals the gradebook's
timestamp and ``autograded/<student>/<assignment>/`` exists, and renders a submission
from ``autograded/<student>/<assignment>/<notebook>.ipynb`` (HTTP 500/404 without it).
This writes both under the course root formgrader serves: the *released* notebook
(hidden tests were never in it) with the learner's solution cells, and each test
cell's output replaced by the grader's message — passed as text, failed as an error.
"""
from __future__ import annotations

import copy
from datetime import datetime, timezone
from pathlib import Path

import nbformat

from autograder.assignment import RELEASE_DIR, Assignment, nbgrader_metadata
from autograder.grading import SubmissionResult

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f UTC"  # what nbgrader's parse_utc reads back


def naive_utc(when: datetime) -> datetime:
    """The gradebook's form of a time (nbgrader stores naive UTC)."""
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    return when


def autograded_notebook(assignment: Assignment, result: SubmissionResult,
                        solutions: dict[str, str]):
    source = assignment.source_path  # <course>/solutions/<assignment>/<notebook>
    released = nbformat.read(source.parents[2] / RELEASE_DIR / assignment.name / source.name,
                             as_version=4)
    notebook = copy.deepcopy(released)
    tests = {test.name: test for test in result.tests}
    for cell in notebook.cells:
        meta = nbgrader_metadata(cell)
        grade_id = meta.get("grade_id")
        if meta.get("solution") and grade_id in solutions:
            cell.source = solutions[grade_id]
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        test = tests.get(grade_id) if meta.get("grade") else None
        if test is None:
            continue
        if test.points == test.max_points:
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                                   text=test.message + "\n")]
        else:
            cell.outputs = [nbformat.v4.new_output(
                "error", ename="CheckFailed", evalue=test.message,
                traceback=[f"CheckFailed: {test.message}"])]
    return notebook


def write_for_formgrader(root: Path, assignment: Assignment, result: SubmissionResult,
                         solutions: dict[str, str], handed_in: datetime | None) -> None:
    """Also for a submission without a notebook (it is in the gradebook, with 0): the
    released notebook then, and no timestamp.txt, as the gradebook has no time."""
    if not result.status.records_score:
        return
    student = result.student_id
    submitted = root / "submitted" / student / assignment.name
    autograded = root / "autograded" / student / assignment.name
    submitted.mkdir(parents=True, exist_ok=True)
    autograded.mkdir(parents=True, exist_ok=True)
    nbformat.write(autograded_notebook(assignment, result, solutions),
                   autograded / f"{assignment.source_path.stem}.ipynb")
    for folder in (submitted, autograded):
        if handed_in is None:
            (folder / "timestamp.txt").unlink(missing_ok=True)
        else:
            stamp = naive_utc(handed_in).strftime(TIMESTAMP_FORMAT)
            (folder / "timestamp.txt").write_text(stamp + "\n")
