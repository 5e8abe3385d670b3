"""An assignment as the grader needs it, read from the trusted source notebook.

Test code always comes from solutions/<assignment>/<notebook>.ipynb (hidden tests
included); a submission only ever contributes its non-test code cells. A cell counts
as a test cell by its content — the released or the source version of one of the
assignment's tests — never by metadata alone, which a copy-paste carries along.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import nbformat

COURSE_ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIR = "solutions"
RELEASE_DIR = "exercises"


class InstructorError(Exception):
    """A mistake in how the grader was called (unknown assignment, missing folder, ...)."""


@dataclass(frozen=True)
class TestCell:
    name: str
    points: float
    source: str


@dataclass(frozen=True)
class Assignment:
    name: str
    notebook_name: str
    source_path: Path
    tests: tuple[TestCell, ...]
    interface: tuple[str, ...]  # names the learner defines and the tests call
    test_sources: frozenset[str]  # normalised released and source test cells
    solution_ids: frozenset[str]  # grade ids of the cells the learner fills in
    # top-level modules the released notebook imports: the sandbox factory preloads
    # those it may (``factory.preload``), so every sandbox forks from a process no
    # larger than the assignment needs
    preload: tuple[str, ...] = ()

    @property
    def max_score(self) -> float:
        return sum(test.points for test in self.tests)


def nbgrader_metadata(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_test_cell(cell) -> bool:
    meta = nbgrader_metadata(cell)
    return bool(meta.get("grade")) and not meta.get("solution") and cell.get("cell_type") == "code"


def normalised(source: str) -> str:
    """A cell's source with trailing spaces and surrounding blank lines ignored."""
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def available_assignments(course_root: Path = COURSE_ROOT) -> list[str]:
    return sorted(p.name for p in (course_root / SOURCE_DIR).iterdir() if p.is_dir())


def source_notebook(name: str, course_root: Path = COURSE_ROOT) -> Path:
    folder = course_root / SOURCE_DIR / name
    notebooks = sorted(folder.glob("*.ipynb")) if folder.is_dir() else []
    if len(notebooks) != 1:
        known = ", ".join(available_assignments(course_root))
        raise InstructorError(f"unknown assignment {name!r} (known: {known})")
    return notebooks[0]


def _defined_names(source: str) -> list[str]:
    tree = ast.parse(source)
    return [node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef))]


def imported_modules(source: str) -> list[str]:
    """Top-level modules a cell imports (absolute imports only), in order."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module.split(".")[0])
    return found


def load_assignment(name: str, course_root: Path = COURSE_ROOT) -> Assignment:
    path = source_notebook(name, course_root)
    notebook = nbformat.read(path, as_version=4)
    tests, interface, solution_ids = [], [], set()
    for cell in notebook.cells:
        meta = nbgrader_metadata(cell)
        if is_test_cell(cell):
            tests.append(TestCell(meta["grade_id"], float(meta["points"]), cell.source))
        elif meta.get("solution") and cell.cell_type == "code":
            interface += _defined_names(cell.source)
            solution_ids.add(meta["grade_id"])
    released_path = course_root / RELEASE_DIR / name / path.name
    if not released_path.exists():
        raise InstructorError(f"{released_path} is missing: run "
                              f"`python -m autograder release {name}`")
    released = nbformat.read(released_path, as_version=4)
    test_sources = {normalised(cell.source) for cell in released.cells
                    if is_test_cell(cell)} | {normalised(t.source) for t in tests}
    preload = [module for cell in released.cells
               if cell.cell_type == "code" and not is_test_cell(cell)
               for module in imported_modules(cell.source)]
    return Assignment(name, path.name, path, tuple(tests), tuple(dict.fromkeys(interface)),
                      frozenset(test_sources), frozenset(solution_ids),
                      tuple(dict.fromkeys(preload)))
