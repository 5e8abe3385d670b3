"""Stock nbgrader, as configured by the course's nbgrader_config.py, undoes nothing the
hardened grader did and shows no hidden test (the end-to-end refusal of `nbgrader
autograde` is in test_grader_cli.py)."""
from __future__ import annotations

import copy

import nbformat
from nbconvert import HTMLExporter
from traitlets.config.loader import PyFileConfigLoader

from autograder.assignment import COURSE_ROOT, load_assignment
from autograder.nbgrader_guard import HideHiddenTests, hidden_lines

ASSIGNMENT = "ex1_attention"


def autograded_notebook():
    """The source notebook as stock autograde leaves it: hidden tests in the test cells,
    a traceback and printed output that quote a hidden line."""
    assignment = load_assignment(ASSIGNMENT)
    notebook = nbformat.read(assignment.source_path, as_version=4)
    first = assignment.tests[0].name
    test = next(cell for cell in notebook.cells
                if cell.metadata.get("nbgrader", {}).get("grade_id") == first)
    secret = sorted(hidden_lines(test.source))[0]
    test.outputs = [
        nbformat.v4.new_output("stream", name="stderr",
                               text=f"warning at\n    {secret}\n"),
        nbformat.v4.new_output("error", ename="CheckFailed",
                               evalue="softmax(x): wrong values",
                               traceback=["\x1b[0;31mCheckFailed\x1b[0m Traceback",
                                          f"\x1b[0;32m----> 5\x1b[0m {secret}",
                                          "CheckFailed: softmax(x): wrong values"]),
    ]
    return notebook, secret


def test_feedback_keeps_the_message_and_drops_every_hidden_line():
    notebook, secret = autograded_notebook()
    hidden = copy.deepcopy(notebook)
    for index, cell in enumerate(hidden.cells):
        HideHiddenTests().preprocess_cell(cell, {}, index)
    texts = [cell.source for cell in hidden.cells] + [
        str(output) for cell in hidden.cells for output in cell.get("outputs", [])]
    assert not [text for text in texts if secret in text or "HIDDEN TESTS" in text]
    html, _ = HTMLExporter().from_notebook_node(hidden)
    seed = secret.split("seed=")[1].split(",")[0]  # a number only the hidden line has
    assert "check_softmax_matches_torch" in html and seed not in html
    assert "softmax(x): wrong values" in html


def test_the_course_config_guards_autograde_and_feedback():
    loader = PyFileConfigLoader("nbgrader_config.py", path=str(COURSE_ROOT))
    config = loader.load_config()
    assert HideHiddenTests in config.GenerateFeedback.preprocessors
    from nbgrader.converters.autograde import Autograde

    assert getattr(Autograde.init_assignment, "guarded", False)
