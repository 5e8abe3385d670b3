"""Grading one submission: locate → validate → match → extract → test → result.

Each step has one job. ``prepare`` finds and reads the notebook and checks that it
belongs to the assignment (a batch can then stop before grading anything when most
do not). ``grade_prepared`` runs each test cell of the *source* notebook here, in
the trusted process, against a fresh sandbox holding the learner's cells, with the
learner's names bound to stand-ins that forward calls there; the checks compare
plain data with references computed here. Nothing the learner's process sends back
can run code or skip a comparison.
"""
from __future__ import annotations

import builtins
from dataclasses import dataclass, field

from attention_course.checks.core import (
    CheckFailed, describe_error, judging_code, reporting_to,
)
from attention_course_learner.remote import StudentCodeError
from autograder import review
from autograder.assignment import Assignment, TestCell, nbgrader_metadata
from autograder.sandbox import FULL, Factory, Limits, SandboxFailure
from autograder.session import SandboxSession
from autograder.status import Status
from autograder.submissions import (
    Submission, locate_notebook, matches_assignment, read_notebook, student_code,
)

MAX_MESSAGE = 4000
CELL_SEPARATOR = "\n# %% cell\n"


@dataclass(frozen=True)
class TestResult:
    name: str
    points: float
    max_points: float
    message: str


@dataclass
class SubmissionResult:
    student_id: str
    status: Status
    tests: list[TestResult]
    notes: list[str] = field(default_factory=list)
    notebook: str = ""
    isolation: str = ""

    @property
    def score(self) -> float:
        return sum(test.points for test in self.tests)

    @property
    def max_score(self) -> float:
        return sum(test.max_points for test in self.tests)


@dataclass
class Prepared:
    """A notebook that belongs to the assignment, ready to grade."""

    student_id: str
    notebook_name: str
    cells: list[tuple[int, str]]
    notes: list[str]
    # grade_id -> the learner's source of each solution cell (formgrader's notebook)
    solutions: dict[str, str] = field(default_factory=dict)


def not_graded(assignment: Assignment, student_id: str, status: Status,
               notes: list[str], notebook: str = "") -> SubmissionResult:
    tests = [TestResult(t.name, 0.0, t.points, f"not graded: {status}")
             for t in assignment.tests]
    notes = [note for note in notes if note]
    return SubmissionResult(student_id, status, tests, notes, notebook)


def before_grading_threads() -> None:
    """Import torch once, before any grading thread: the checks import it lazily
    (exercise 1 needs only NumPy), and a first import racing in two threads exposes a
    half-made module. Not at import time: a rerun that grades nothing needs no torch.

    One intra-op thread: the references are tiny, and a pool's threads would spin
    between them, burning more CPU than the checks themselves."""
    import torch

    torch.set_num_threads(1)


def prepare(assignment: Assignment,
            submission: Submission) -> Prepared | SubmissionResult:
    """The learner's cells, or the result of a submission that cannot be graded."""
    student, notes = submission.student_id, list(submission.notes)
    if submission.path is None:
        return not_graded(assignment, student, Status.INVALID_SUBMISSION,
                          notes + [submission.problem])
    located = locate_notebook(submission.path, assignment.notebook_name,
                              assignment.name)
    notes.append(located.note)
    if located.path is None:
        return not_graded(assignment, student, located.status, notes)
    notebook_name = str(located.path.relative_to(submission.path))
    notebook, problem = read_notebook(located.path)
    if notebook is None:
        return not_graded(assignment, student, Status.INVALID_NOTEBOOK,
                          notes + [problem], notebook_name)
    mismatch = matches_assignment(notebook, assignment)
    if mismatch:
        return not_graded(assignment, student, Status.WRONG_ASSIGNMENT,
                          notes + [f"not graded: {mismatch}"], notebook_name)
    cells, cell_notes = student_code(notebook, assignment)
    solutions = {meta["grade_id"]: cell.source for cell in notebook.cells
                 if (meta := nbgrader_metadata(cell)).get("solution")
                 and meta.get("grade_id") in assignment.solution_ids}
    return Prepared(student, notebook_name, cells, [n for n in notes + cell_notes if n],
                    solutions)


def run_test(test: TestCell, session: SandboxSession, interface: tuple[str, ...],
             code: str) -> TestResult:
    """Execute one trusted test cell against a fresh copy of the learner's notebook."""
    namespace = {"__builtins__": builtins, **{name: session.remote(name) for name in interface}}
    passed: list[str] = []
    try:
        session.fresh()
        with reporting_to(passed.append), judging_code(code):
            exec(compile(test.source, f"<test {test.name}>", "exec"), namespace)
    except CheckFailed as failure:
        message = str(failure)
    except StudentCodeError as error:
        message = describe_error(error)
    except SandboxFailure as failure:
        message = failure.message
    except Exception as error:  # a result the check could not handle, e.g. wrong type
        message = f"the test could not run: {type(error).__name__}: {error}"
    else:
        text = "; ".join(dict.fromkeys(passed)) or "passed"
        return TestResult(test.name, test.points, test.points, text)
    return TestResult(test.name, 0.0, test.points, message[:MAX_MESSAGE])


def grade_prepared(assignment: Assignment, prepared: Prepared, factory: Factory,
                   limits: Limits, slot: int = 0, mode: str = FULL) -> SubmissionResult:
    code = CELL_SEPARATOR.join(source for _, source in prepared.cells)
    session = SandboxSession(factory, prepared.cells, limits, slot, mode)
    try:
        tests = [run_test(test, session, assignment.interface, code)
                 for test in assignment.tests]
    finally:
        session.close()
    status = session.gave_up.status if session.gave_up else Status.GRADED
    notes = prepared.notes + session.notes() + review.flags(assignment.name, code)
    return SubmissionResult(prepared.student_id, status, tests, notes,
                            prepared.notebook_name, session.isolation)

