"""exercises/ is exactly what `nbgrader generate_assignment` makes from solutions/.

`python -m autograder release` regenerates it (with a throw-away gradebook, so the
course's own gradebook is untouched); the tests regenerate into a temporary folder
and compare, so exercises/ cannot drift from its source.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from autograder.assignment import (
    COURSE_ROOT, RELEASE_DIR, InstructorError, available_assignments, source_notebook,
)
from autograder.record import nbgrader_command


def generate(name: str, destination: Path) -> Path:
    """Run nbgrader generate_assignment for ``name``; return the released notebook's path."""
    source = source_notebook(name)
    with tempfile.TemporaryDirectory() as scratch:
        done = nbgrader_command("generate_assignment", name, "--force",
                                f"--CourseDirectory.release_directory={destination}",
                                f"--CourseDirectory.db_url=sqlite:///{scratch}/gradebook.db")
    if done.returncode != 0:
        raise InstructorError(f"nbgrader generate_assignment {name} failed:\n{done.stderr[-3000:]}")
    return destination / name / source.name


def release(names: list[str]) -> list[Path]:
    written = []
    for name in names or available_assignments():
        target = COURSE_ROOT / RELEASE_DIR / name
        with tempfile.TemporaryDirectory() as scratch:
            generated = generate(name, Path(scratch))
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(generated.parent, target)
        written.append(target / generated.name)
    return written
