"""Every assignment through the grader: full marks for the solution, 0 for a blank copy,
each common mistake named by the test it breaks (and only that test), noisy-but-correct
code at full marks, the same messages in class as in grading, and stock nbgrader agreeing."""
from __future__ import annotations

import csv
import shutil
import warnings

import pytest

from attention_course.checks.core import CheckFailed, reporting_to
from autograder.assignment import COURSE_ROOT, load_assignment
from autograder.nbgrader_guard import hidden_lines
from autograder.batch import grade_batch
from autograder.record import nbgrader_command
from autograder.sandbox import Limits
from autograder.submissions import student_code
from autograder.samples import notebook_name, submission, write
from tests.adversarial.mistakes import EX1, EX2, EX3, EX4, EX5

CASES = {"ex1_attention": EX1, "ex2_multihead": EX2, "ex3_transformer": EX3,
         "ex4_applications": EX4, "ex5_rope_cache": EX5}
LIMITS = Limits(cell_timeout=20, call_timeout=20, submission_timeout=200)


@pytest.fixture(scope="module", params=sorted(CASES))
def graded(request, tmp_path_factory):
    name = request.param
    root = tmp_path_factory.mktemp(name)
    folder, filename = root / "submissions", notebook_name(name)
    write(submission(name), folder, "correct", filename)
    write(submission(name, blank=True), folder, "blank", filename)
    (folder / "solution_file").mkdir()
    shutil.copy(load_assignment(name).source_path, folder / "solution_file" / filename)
    for case in CASES[name]:
        write(submission(name, case.code, case.extra), folder, case.student_id, filename)
    assignment = load_assignment(name)
    outcome = grade_batch(assignment, folder, root / "out", jobs=2, limits=LIMITS,
                          progress=False)
    return assignment, {result.student_id: result for result in outcome.results}, folder


def test_solution_gets_full_marks(graded):
    """Both the solution typed into the released notebook and the source notebook itself."""
    assignment, results, _ = graded
    for student in ("correct", "solution_file"):
        result = results[student]
        assert result.status == "graded" and result.score == assignment.max_score, result.tests


def test_blank_release_gets_zero_without_crashing(graded):
    _, results, _ = graded
    blank = results["blank"]
    assert blank.status == "graded" and blank.score == 0
    assert all("not implemented yet" in test.message for test in blank.tests), blank.tests


def test_each_mistake_is_named_and_costs_only_its_tests(graded):
    assignment, results, _ = graded
    for case in CASES[assignment.name]:
        result = results[case.student_id]
        assert result.status == "graded", (case.student_id, result.notes)
        for test in result.tests:
            if test.name in case.failing:
                assert test.points == 0, (case.student_id, test)
                assert case.failing[test.name] in test.message, (case.student_id, test)
            else:
                assert test.points == test.max_points, (case.student_id, test)


def visible_test_message(assignment, notebook, test_name: str) -> str:
    """Run a released (visible) test cell in this process, as a learner's kernel would."""
    namespace: dict = {}
    warnings.simplefilter("ignore")  # the mistakes overflow on purpose; pytest restores filters
    for _, source in student_code(notebook, assignment)[0]:
        exec(compile(source.replace("%matplotlib inline", ""), "<cell>", "exec"), namespace)
    released = next(cell.source for cell in notebook.cells
                    if cell.metadata.get("nbgrader", {}).get("grade_id") == test_name)
    try:
        with reporting_to(lambda text: None):
            exec(released, namespace)
    except CheckFailed as failure:
        return str(failure)
    return "passed"


def test_learners_see_the_graders_message_in_class(graded):
    """Where the visible test already fails, a learner sees the grader's very message."""
    assignment, results, folder = graded
    compared = 0
    for case in CASES[assignment.name]:
        if case.extra:
            continue
        notebook = submission(assignment.name, case.code)
        for test_name in case.failing:
            in_class = visible_test_message(assignment, notebook, test_name)
            if in_class == "passed":  # only the hidden part catches this one
                continue
            graded_message = next(t.message for t in results[case.student_id].tests
                                  if t.name == test_name)
            assert in_class.splitlines()[0] == graded_message.splitlines()[0], case.student_id
            compared += 1
    assert compared >= 3


def test_grading_twice_gives_the_same_results(graded, tmp_path):
    assignment, results, folder = graded
    again = tmp_path / "again"
    for student in ("correct", "blank", CASES[assignment.name][0].student_id):
        shutil.copytree(folder / student, again / student)
    outcome = grade_batch(assignment, again, tmp_path / "out", limits=LIMITS,
                          progress=False)
    for result in outcome.results:
        assert result.tests == results[result.student_id].tests


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_stock_nbgrader_agrees_on_solution_and_blank(name, tmp_path):
    """The standard workflow (generate_assignment, autograde, generate_feedback, export)."""
    shutil.copy(COURSE_ROOT / "nbgrader_config.py", tmp_path)
    shutil.copytree(COURSE_ROOT / "solutions" / name, tmp_path / "solutions" / name)
    steps = [("generate_assignment", name)]
    filename = notebook_name(name)
    (tmp_path / "submitted" / "correct" / name).mkdir(parents=True)
    shutil.copy(COURSE_ROOT / "solutions" / name / filename, tmp_path / "submitted" / "correct" / name)
    write(submission(name, blank=True), tmp_path / "submitted" / "blank", name, filename)
    steps += [("autograde", name), ("generate_feedback", name), ("export",)]
    for step in steps:
        done = nbgrader_command(*step, course_root=tmp_path)
        assert done.returncode == 0, (step, done.stderr[-3000:])
    with open(tmp_path / "grades.csv") as stream:
        scores = {row["student_id"]: (float(row["score"]), float(row["max_score"]))
                  for row in csv.DictReader(stream)}
    maximum = load_assignment(name).max_score
    assert scores == {"correct": (maximum, maximum), "blank": (0.0, maximum)}
    page = filename.replace(".ipynb", ".html")
    feedback = tmp_path / "feedback" / "correct" / name / page
    hidden = set().union(*(hidden_lines(t.source) for t in load_assignment(name).tests))
    assert hidden and not [line for line in hidden if line in feedback.read_text()]
