"""What became of one submission: the only place statuses are spelled.

grades.csv, results.json, feedback, the summary and the gradebook all take a status
from here, so a new one cannot be written one way in one module and another way in
the next. ``records_score`` says whether the status may put a score in nbgrader's
gradebook: a notebook of another assignment, or a bug in the grader, must not
replace a mark that is already there.
"""
from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    GRADED = "graded"
    NO_NOTEBOOK = "no notebook"
    INVALID_NOTEBOOK = "invalid notebook"
    INVALID_SUBMISSION = "invalid submission"
    WRONG_ASSIGNMENT = "wrong assignment"
    TIMEOUT = "timeout"
    KERNEL_DIED = "kernel died"
    GRADER_ERROR = "grader error"

    @property
    def records_score(self) -> bool:
        return self not in (Status.WRONG_ASSIGNMENT, Status.GRADER_ERROR)

    @property
    def meaning(self) -> str:
        return MEANINGS[self]


MEANINGS = {
    Status.GRADED: "every test ran (some may have failed, timed out or crashed)",
    Status.NO_NOTEBOOK: "no .ipynb in the submission, or several and none with the "
                        "released name",
    Status.INVALID_NOTEBOOK: "not JSON, not a valid notebook, or larger than 32 MiB",
    Status.INVALID_SUBMISSION: "a broken or unsafe archive",
    Status.WRONG_ASSIGNMENT: "the notebook belongs to another assignment; nothing was "
                             "written to the gradebook",
    Status.TIMEOUT: "the submission used up its time budget; tests not run score 0",
    Status.KERNEL_DIED: "the learner's process could not be (re)started",
    Status.GRADER_ERROR: "a bug in the grader; nothing was written to the gradebook",
}
