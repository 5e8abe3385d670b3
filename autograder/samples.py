"""Learner-like submissions made from the course's own notebooks (tests and benchmark).

A submission is the released notebook (what a learner receives) with its solution
cells filled in — by the instructor's solution unless told otherwise.
"""
from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from autograder.assignment import COURSE_ROOT, RELEASE_DIR, SOURCE_DIR, nbgrader_metadata


def _notebook(directory: str, assignment: str):
    return nbformat.read(next((COURSE_ROOT / directory / assignment).glob("*.ipynb")), as_version=4)


def notebook_name(assignment: str) -> str:
    return next((COURSE_ROOT / RELEASE_DIR / assignment).glob("*.ipynb")).name


def solution_code(assignment: str) -> dict[str, str]:
    """grade_id -> source of each solution cell in the instructor's notebook."""
    return {nbgrader_metadata(cell)["grade_id"]: cell.source
            for cell in _notebook(SOURCE_DIR, assignment).cells
            if nbgrader_metadata(cell).get("solution")}


def submission(assignment: str, code: dict[str, str] | None = None, extra: tuple[str, ...] = (),
               blank: bool = False):
    """The released notebook with solution cells filled in (the instructor's, unless
    ``blank`` or overridden by ``code``), then ``extra`` code cells appended."""
    notebook = copy.deepcopy(_notebook(RELEASE_DIR, assignment))
    filled = {} if blank else solution_code(assignment)
    filled.update(code or {})
    for cell in notebook.cells:
        grade_id = nbgrader_metadata(cell).get("grade_id")
        if nbgrader_metadata(cell).get("solution") and grade_id in filled:
            cell.source = filled[grade_id]
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in extra]
    return notebook


def write(notebook, folder: Path, student_id: str, name: str) -> Path:
    path = folder / student_id / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path
