"""Grading one submission: locate → validate → extract → run in a sandbox → test → result.

Each step has one job. Tests are the source notebook's test cells, executed here in
the trusted process with the learner's names bound to stand-ins that forward calls
to the sandbox; the checks they call compare plain data with references computed
here. Nothing the learner's process sends back can run code or skip a comparison.
"""
from __future__ import annotations

import builtins
from dataclasses import dataclass, field

from attention_course.checks.core import CheckFailed, describe_error, reporting_to
from attention_course.checks.remote import StudentCodeError
from autograder.assignment import Assignment, TestCell
from autograder.sandbox import Factory, Limits, SandboxFailure
from autograder.session import SandboxSession
from autograder.submissions import Submission, locate_notebook, read_notebook, student_code

MAX_MESSAGE = 4000


@dataclass(frozen=True)
class TestResult:
    name: str
    points: float
    max_points: float
    message: str


@dataclass
class SubmissionResult:
    student_id: str
    status: str
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


def not_graded(assignment: Assignment, student_id: str, status: str, note: str,
               notebook: str = "") -> SubmissionResult:
    tests = [TestResult(t.name, 0.0, t.points, f"not graded: {status}") for t in assignment.tests]
    return SubmissionResult(student_id, status, tests, [note] if note else [], notebook)


def run_test(test: TestCell, session: SandboxSession, interface: tuple[str, ...]) -> TestResult:
    """Execute one trusted test cell against the learner's code; points or a message."""
    namespace = {"__builtins__": builtins, **{name: session.remote(name) for name in interface}}
    passed: list[str] = []
    try:
        with reporting_to(passed.append):
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
        return TestResult(test.name, test.points, test.points, "; ".join(dict.fromkeys(passed)) or "passed")
    return TestResult(test.name, 0.0, test.points, message[:MAX_MESSAGE])


def grade_submission(assignment: Assignment, submission: Submission, factory: Factory,
                     limits: Limits, slot: int = 0, isolate: bool | None = None
                     ) -> SubmissionResult:
    student = submission.student_id
    if submission.path is None:
        return not_graded(assignment, student, "invalid submission", submission.problem)
    located = locate_notebook(submission.path, assignment.notebook_name)
    if located.path is None:
        return not_graded(assignment, student, located.status, located.note)
    notebook_name = str(located.path.relative_to(submission.path))
    notebook, problem = read_notebook(located.path)
    if notebook is None:
        return not_graded(assignment, student, "invalid notebook", problem, notebook_name)
    session = SandboxSession(factory, student_code(notebook, assignment), limits, slot, isolate)
    try:
        try:
            session.start()
        except SandboxFailure:
            pass  # every test below then reports why it was not run
        tests = [run_test(test, session, assignment.interface) for test in assignment.tests]
    finally:
        session.stop()
    status = session.gave_up.status if session.gave_up else "graded"
    notes = ([located.note] if located.note else []) + session.notes()
    return SubmissionResult(student, status, tests, notes, notebook_name, session.isolation)

