"""Finding each learner's notebook and taking only their own code out of it.

SUBMISSIONS holds one folder per student id (or ``<student_id>.zip``), or is itself
a .zip of such a folder. Archives are unpacked with limits on entry names, count and
size, so zip-slip paths, links and zip bombs go nowhere.
"""
from __future__ import annotations

import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import nbformat

from autograder.assignment import Assignment, InstructorError, is_test_cell, nbgrader_metadata

MAX_ARCHIVE_BYTES = 512 << 20
MAX_ARCHIVE_FILES = 20_000
MAX_NOTEBOOK_BYTES = 32 << 20
IGNORED_NAMES = {"__MACOSX", ".ipynb_checkpoints"}


class UnsafeArchive(Exception):
    pass


@dataclass(frozen=True)
class Submission:
    student_id: str
    path: Path | None  # the student's folder, or None when it could not be unpacked
    problem: str = ""


@dataclass(frozen=True)
class Located:
    path: Path | None
    status: str  # "" when found
    note: str


def extract_zip(archive: Path, destination: Path) -> None:
    """Unpack plain files only, refusing absolute or '..' paths and oversized content."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            entries = bundle.infolist()
            if len(entries) > MAX_ARCHIVE_FILES:
                raise UnsafeArchive(f"more than {MAX_ARCHIVE_FILES} entries")
            # zipfile never yields more than an entry's declared size (a lie fails its CRC),
            # so the declared sizes bound what unpacking writes.
            if sum(entry.file_size for entry in entries) > MAX_ARCHIVE_BYTES:
                raise UnsafeArchive(f"unpacks to more than {MAX_ARCHIVE_BYTES >> 20} MiB")
            for entry in entries:
                parts = PurePosixPath(entry.filename.replace("\\", "/")).parts
                if (entry.is_dir() or stat.S_ISLNK(entry.external_attr >> 16)
                        or not parts or any(p in ("..", "") or ":" in p for p in parts)
                        or entry.filename.startswith(("/", "\\"))):
                    continue
                target = destination.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(entry) as source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, RuntimeError, ValueError) as error:
        raise UnsafeArchive(str(error)) from None


def _single_wrapper(folder: Path) -> Path:
    """A zip of SUBMISSIONS often wraps everything in one top folder: look inside it."""
    entries = [p for p in folder.iterdir() if p.name not in IGNORED_NAMES]
    if len(entries) == 1 and entries[0].is_dir():
        inner = [p for p in entries[0].iterdir() if p.name not in IGNORED_NAMES]
        if inner and not any(p.suffix == ".ipynb" for p in inner):
            return entries[0]
    return folder


def collect(submissions: Path, scratch: Path) -> list[Submission]:
    """One Submission per student folder or student zip, sorted by student id."""
    if not submissions.exists():
        raise InstructorError(f"submissions folder {submissions} does not exist")
    if submissions.is_file():
        if submissions.suffix != ".zip":
            raise InstructorError(f"{submissions} is neither a folder nor a .zip")
        unpacked = scratch / "submissions"
        try:
            extract_zip(submissions, unpacked)
        except UnsafeArchive as error:
            raise InstructorError(f"cannot unpack {submissions}: {error}") from None
        submissions = _single_wrapper(unpacked)
    found: dict[str, Submission] = {}
    for entry in sorted(submissions.iterdir()):
        if entry.name.startswith(".") or entry.name in IGNORED_NAMES:
            continue
        if entry.is_dir():
            found[entry.name] = Submission(entry.name, entry)
        elif entry.suffix == ".zip" and entry.stem not in found:
            found[entry.stem] = _unpack_student(entry, scratch)
    return sorted(found.values(), key=lambda s: s.student_id)


def _unpack_student(archive: Path, scratch: Path) -> Submission:
    target = Path(tempfile.mkdtemp(dir=scratch, prefix="student-"))
    try:
        extract_zip(archive, target)
    except UnsafeArchive as error:
        shutil.rmtree(target, ignore_errors=True)
        return Submission(archive.stem, None, f"unsafe or broken archive: {error}")
    return Submission(archive.stem, target)


def locate_notebook(folder: Path, expected: str) -> Located:
    notebooks = sorted((p for p in folder.rglob("*.ipynb")
                        if not IGNORED_NAMES.intersection(p.relative_to(folder).parts)
                        and p.is_file() and not p.is_symlink()),
                       key=lambda p: (len(p.parts), str(p)))
    named = [p for p in notebooks if p.name == expected]
    if named:
        return Located(named[0], "", "")
    if len(notebooks) == 1:
        return Located(notebooks[0], "", f"graded {notebooks[0].name} (expected {expected})")
    if not notebooks:
        return Located(None, "no notebook", f"no .ipynb file found (expected {expected})")
    names = ", ".join(p.name for p in notebooks[:5])
    return Located(None, "no notebook", f"several notebooks ({names}) and none named {expected}")


def read_notebook(path: Path):
    """(notebook, "") or (None, reason) for a file that is not a valid notebook."""
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        return None, f"notebook larger than {MAX_NOTEBOOK_BYTES >> 20} MiB"
    try:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
    except Exception as error:  # nbformat raises many kinds for broken JSON/schema
        return None, f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}"
    return notebook, ""


def student_code(notebook, assignment: Assignment) -> list[tuple[int, str]]:
    """(cell number, source) of every code cell that is not a test cell.

    Test cells are recognised by metadata, by grade id and by the released test
    source, so a cell stripped of its metadata still does not run as learner code.
    """
    test_ids = {test.name for test in assignment.tests}
    cells = []
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code" or is_test_cell(cell):
            continue
        if nbgrader_metadata(cell).get("grade_id") in test_ids:
            continue
        if cell.source in assignment.released_test_sources or not cell.source.strip():
            continue
        cells.append((number, cell.source))
    return cells
