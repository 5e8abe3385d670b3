"""Source notebooks are well formed, and exercises/ is exactly what nbgrader makes of them."""
from __future__ import annotations

import re

import nbformat
import pytest

from autograder.assignment import (
    COURSE_ROOT, available_assignments, is_test_cell, load_assignment, nbgrader_metadata,
)
from autograder.release import generate
from tools import course_links

ASSIGNMENTS = available_assignments()
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def test_there_are_five_assignments():
    assert ASSIGNMENTS == ["ex1_attention", "ex2_multihead", "ex3_transformer", "ex4_applications",
                           "ex5_rope_cache"]


def test_solutions_hold_only_notebooks():
    """nbgrader copies every other file verbatim into the release, solutions included."""
    stray = [p for p in (COURSE_ROOT / "solutions").rglob("*")
             if p.is_file() and p.suffix != ".ipynb"]
    assert stray == []


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_released_notebook_is_what_nbgrader_generates(name, tmp_path):
    generated = generate(name, tmp_path)
    released = COURSE_ROOT / "exercises" / name / generated.name
    assert released.read_bytes() == generated.read_bytes(), (
        f"exercises/{name} is out of date: run `python -m autograder release {name}`")
    assert sorted(p.name for p in released.parent.iterdir()) == [generated.name]


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_source_notebook_teaches_and_tests(name):
    assignment = load_assignment(name)
    notebook = nbformat.read(assignment.source_path, as_version=4)
    first, last = notebook.cells[0].source, notebook.cells[-1].source
    assert "Read first" in first
    # Links go to the website (a notebook uploaded alone keeps them), to chapters that exist.
    site = course_links.where().site_url
    for chapter in re.findall(rf"\]\({re.escape(site)}(book/\w+)\.html\)", first) or pytest.fail("no chapter link"):
        assert (COURSE_ROOT / f"{chapter}.md").exists(), chapter
    assert "What you learned" in last
    assert CHINESE.search(first), "key terms need their Chinese name on first use"
    assert assignment.tests and assignment.interface
    grade_ids = [nbgrader_metadata(c)["grade_id"] for c in notebook.cells if nbgrader_metadata(c)]
    assert len(grade_ids) == len(set(grade_ids))
    for test in assignment.tests:
        assert test.points > 0
        assert "### BEGIN HIDDEN TESTS" in test.source, f"{test.name} has no hidden test"
        assert re.search(r"ex\d\.check_\w+\(", test.source), f"{test.name} calls no check"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_released_notebook_hides_solutions_and_hidden_tests(name):
    assignment = load_assignment(name)
    released = nbformat.read(COURSE_ROOT / "exercises" / name / assignment.notebook_name, 4)
    text = "\n".join(cell.source for cell in released.cells)
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    hidden = [line.strip() for test in assignment.tests
              for line in test.source.split("### BEGIN HIDDEN TESTS")[1].splitlines()
              if line.strip() and "END HIDDEN TESTS" not in line]
    assert hidden and not [line for line in hidden if line in text]
    assert sum(is_test_cell(cell) for cell in released.cells) == len(assignment.tests)
