"""Finding each learner's notebook and taking only their own code out of it.

SUBMISSIONS is a folder (or a .zip of one) holding, per student, one of:

* a folder ``<student_id>/`` (nbgraders ``submitted/<student_id>/<assignment>/`` too);
* an archive ``<student_id>.zip``;
* a single notebook, as LMS exports name them (``lms_student_id`` says how the id is
  read from Canvas, Moodle and Blackboard file names; any other ``<id>.ipynb`` is
  graded as student ``<id>``).

When one id is found twice the rule is fixed and noted on that student's row: a folder
wins over a zip, and a zip over a loose notebook; among loose notebooks of one
student the last in name order wins (Blackboard's names carry the attempt time, so
that is the latest attempt); inside a zip the last of several entries with the same
path wins, as ``unzip`` does. Archives are unpacked with limits on entry names,
count and size, so zip-slip paths, links and zip bombs go nowhere.
"""
from __future__ import annotations

import ast
import re
import shutil
import stat
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import nbformat

from autograder.assignment import (
    Assignment, InstructorError, is_test_cell, nbgrader_metadata, normalised,
)
from autograder.status import Status

MAX_ARCHIVE_BYTES = 512 << 20
MAX_ARCHIVE_FILES = 20_000
MAX_NOTEBOOK_BYTES = 32 << 20
IGNORED_NAMES = {"__MACOSX", ".ipynb_checkpoints"}


class UnsafeArchive(Exception):
    pass


@dataclass
class Submission:
    student_id: str
    path: Path | None  # the student's folder, or None when it could not be unpacked
    problem: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Located:
    path: Path | None
    status: Status | None  # None when found
    note: str


# ------------------------------------------------------------------ LMS file names

LMS_PATTERNS = (
    # Canvas: <name>[_LATE]_<user id>_<submission id>_<file> (name: letters, no spaces)
    ("Canvas", re.compile(r"^(?P<id>[^_]+)_(?:LATE_)?(?P<number>\d+)_\d+_"
                          r"(?P<file>.+)$")),
    # Moodle: <Full Name>_<participant id>_assignsubmission_file_<file>
    ("Moodle", re.compile(r"^(?P<id>.+?_(?P<number>\d+))_assignsubmission_[a-z]+_"
                          r"(?P<file>.*)$")),
    # Blackboard: <Assignment>_<username>_attempt_<YYYY-MM-DD-HH-MM-SS>[_<file>]
    ("Blackboard", re.compile(r"^.+_(?P<id>[^_]+)_attempt_(?P<number>\d{4}(?:-\d\d){5})"
                              r"(?:_(?P<file>.+))?$")),
)


def lms_student_id(filename: str) -> tuple[str, str, str]:
    """(student id, LMS name, the part that tells two students apart) of an exported
    file; the file's stem and "" for any other name."""
    for lms, pattern in LMS_PATTERNS:
        match = pattern.match(filename)
        if match:
            distinct = match["number"] if lms != "Blackboard" else match["id"]
            return match["id"], lms, distinct
    return Path(filename).stem, "", ""


MOODLE_FOLDER = re.compile(r"^(?P<id>.+?_\d+)_assignsubmission_[a-z]+_$")


# ------------------------------------------------------------------ archives

def extract_zip(archive: Path, destination: Path) -> list[str]:
    """Unpack plain files only, refusing absolute or '..' paths and oversized content.

    Returns notes: entries that were skipped, and paths that appeared more than once
    (the last one wins, as with unzip).
    """
    notes = []
    try:
        with zipfile.ZipFile(archive) as bundle:
            entries = bundle.infolist()
            if len(entries) > MAX_ARCHIVE_FILES:
                raise UnsafeArchive(f"more than {MAX_ARCHIVE_FILES} entries")
            # zipfile never yields more than an entry's declared size (a lie fails its CRC),
            # so the declared sizes bound what unpacking writes.
            if sum(entry.file_size for entry in entries) > MAX_ARCHIVE_BYTES:
                raise UnsafeArchive(f"unpacks to more than {MAX_ARCHIVE_BYTES >> 20} MiB")
            counts = Counter(entry.filename for entry in entries if not entry.is_dir())
            for name, count in sorted(counts.items()):
                if count > 1:
                    notes.append(f"{archive.name} holds {name} {count} times; the last "
                                 "one was used")
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
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, RuntimeError,
            ValueError) as error:
        raise UnsafeArchive(str(error)) from None
    return notes


def _single_wrapper(folder: Path) -> Path:
    """A zip of SUBMISSIONS often wraps everything in one top folder: look inside it."""
    entries = [p for p in folder.iterdir() if p.name not in IGNORED_NAMES]
    if len(entries) == 1 and entries[0].is_dir():
        inner = [p for p in entries[0].iterdir() if p.name not in IGNORED_NAMES]
        if inner and not any(p.suffix == ".ipynb" for p in inner):
            return entries[0]
    return folder


def _unpack_student(archive: Path, scratch: Path, student_id: str) -> Submission:
    target = Path(tempfile.mkdtemp(dir=scratch, prefix="student-"))
    try:
        notes = extract_zip(archive, target)
    except UnsafeArchive as error:
        shutil.rmtree(target, ignore_errors=True)
        return Submission(student_id, None, f"unsafe or broken archive: {error}")
    return Submission(student_id, target, notes=notes)


def _loose_notebook(path: Path, scratch: Path, student_id: str) -> Submission:
    """A loose notebook graded as if it sat alone in its student's folder."""
    target = Path(tempfile.mkdtemp(dir=scratch, prefix="student-"))
    shutil.copyfile(path, target / path.name)
    return Submission(student_id, target)


# ------------------------------------------------------------------ collecting

def collect(submissions: Path, scratch: Path, notebook_name: str) -> list[Submission]:
    """One Submission per student, sorted by student id (see the module's rules)."""
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
    folders, zips, loose = {}, {}, {}
    for entry in sorted(submissions.iterdir()):
        if entry.name.startswith(".") or entry.name in IGNORED_NAMES:
            continue
        if entry.is_dir():
            moodle = MOODLE_FOLDER.match(entry.name)
            folders[moodle["id"] if moodle else entry.name] = entry
        elif entry.suffix == ".zip":
            zips.setdefault(lms_student_id(entry.name)[0], []).append(entry)
        elif entry.suffix == ".ipynb":
            loose.setdefault(lms_student_id(entry.name), []).append(entry)
    if list(loose) == [(Path(notebook_name).stem, "", "")] and not folders and not zips:
        raise InstructorError(f"{submissions} holds {notebook_name} itself: it "
                              "looks like one student's folder. Pass the folder that "
                              "holds one folder (or .zip) per student.")
    found: dict[str, Submission] = {}
    sources = [(_loose_by_student(loose), _loose_notebook),
               (zips, _unpack_student),
               ({i: [f] for i, f in folders.items()}, lambda f, _, i: Submission(i, f))]
    for candidates, make in sources:  # later kinds win: loose, then zip, then folder
        for student_id, paths in candidates.items():
            replaced = found.get(student_id)
            found[student_id] = make(paths[-1], scratch, student_id)
            notes = found[student_id].notes
            if len(paths) > 1:
                others = ", ".join(p.name for p in paths[:-1])
                notes.append(f"several submissions for {student_id}: graded "
                             f"{paths[-1].name} (the last by name), not {others}")
            if replaced is not None:
                notes.append(f"graded {paths[-1].name}; another submission of the "
                             "same student was ignored (a folder wins over a zip, a "
                             "zip over a loose notebook)")
    return sorted(found.values(), key=lambda s: s.student_id)


def _loose_by_student(
        loose: dict[tuple[str, str, str], list[Path]]) -> dict[str, list[Path]]:
    """Group exported notebooks by student; two people with the same name part (Canvas)
    are told apart by their LMS number."""
    by_id: dict[str, dict[str, list[Path]]] = {}
    for (student_id, _, distinct), files in loose.items():
        by_id.setdefault(student_id, {}).setdefault(distinct, []).extend(files)
    grouped = {}
    for student_id, people in by_id.items():
        for distinct, files in people.items():
            key = student_id if len(people) == 1 else f"{student_id}_{distinct}"
            grouped[key] = sorted(files, key=lambda f: f.name)
    return grouped


def describe(folder: Path, limit: int = 6) -> str:
    names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    shown = ", ".join(names[:limit]) + (", …" if len(names) > limit else "")
    return shown or "nothing"


# ------------------------------------------------------------------ one submission

def locate_notebook(folder: Path, expected: str, assignment: str) -> Located:
    """The notebook to grade in a student's folder, with a note when it is not where
    nbgrader's layout (``<student>/<assignment>/<notebook>``) or the release puts it."""
    notebooks = sorted((p for p in folder.rglob("*.ipynb")
                        if not IGNORED_NAMES.intersection(p.relative_to(folder).parts)
                        and p.is_file() and not p.is_symlink()),
                       key=lambda p: (p.parent.name != assignment, len(p.parts),
                                      str(p)))
    named = [p for p in notebooks if p.name == expected]
    if named:
        chosen, note = named[0], ""
    elif len(notebooks) == 1:
        chosen = notebooks[0]
        note = f"graded {chosen.name} (expected {expected})"
    elif not notebooks:
        return Located(None, Status.NO_NOTEBOOK,
                       f"no .ipynb file found (expected {expected})")
    else:
        names = ", ".join(p.name for p in notebooks[:5])
        return Located(None, Status.NO_NOTEBOOK,
                       f"several notebooks ({names}) and none named {expected}")
    inside = chosen.relative_to(folder).parent
    if inside.parts and inside.name != assignment:
        where = (f"found in {inside.as_posix()}/, expected {assignment}/ or the "
                 "student's folder")
        note = f"{note}; {where}" if note else where
    return Located(chosen, None, note)


def read_notebook(path: Path):
    """(notebook, "") or (None, reason) for a file that is not a valid notebook."""
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        return None, f"notebook larger than {MAX_NOTEBOOK_BYTES >> 20} MiB"
    try:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
    except Exception as error:  # nbformat raises many kinds for broken JSON/schema
        first = str(error).splitlines()[0][:300] if str(error) else ""
        return None, f"{type(error).__name__}: {first}"
    return notebook, ""


def is_assignment_test(cell, assignment: Assignment) -> bool:
    return (cell.cell_type == "code"
            and normalised(cell.source) in assignment.test_sources)


def cell_label(source: str) -> str:
    """A cell as the learner sees it: 'The cell starting `def softmax(x, axis=-1, …`'.
    Never an index: numbers that count markdown cells match nothing on the learner's screen."""
    lines = [line.strip() for line in source.splitlines() if line.strip()]
    first = next((line for line in lines if not line.startswith("#")), lines[0] if lines else "")
    return f"The cell starting `{first[:50] + ('…' if len(first) > 50 else '')}`"


def student_code(notebook,
                 assignment: Assignment) -> tuple[list[tuple[int, str]], list[str]]:
    """(cell number, source) of every code cell that is not one of the assignment's test
    cells, and notes. A cell is a test cell by its content; one that carries test-cell
    metadata with other content (a helper pasted under a test) runs as learner code."""
    test_ids = {test.name for test in assignment.tests}
    cells, notes = [], []
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        if is_assignment_test(cell, assignment):
            continue
        grade_id = nbgrader_metadata(cell).get("grade_id")
        if is_test_cell(cell) or grade_id in test_ids:
            notes.append(f"{cell_label(cell.source)} carries test-cell metadata ({grade_id}) but "
                         "is not one of the assignment's tests; it ran as your code.")
        cells.append((number, cell.source))
    return cells, notes


def _defined_names(notebook) -> set[str]:
    names = set()
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        names |= {node.name for node in tree.body
                  if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    return names


def matches_assignment(notebook, assignment: Assignment) -> str:
    """"" if the notebook belongs to ``assignment``; else why not.

    It belongs when it has one of the assignment's solution cells (by grade id) or
    one of its test cells (by content); a notebook without any nbgrader metadata
    belongs when it defines one of the names the tests call.
    """
    ids = {nbgrader_metadata(c).get("grade_id") for c in notebook.cells} - {None}
    if ids & assignment.solution_ids:
        return ""
    if any(is_assignment_test(cell, assignment) for cell in notebook.cells):
        return ""
    if not ids and _defined_names(notebook) & set(assignment.interface):
        return ""
    if ids:
        shown = ", ".join(sorted(ids)[:6])
        return (f"its cells (grade ids {shown}) are not {assignment.name}'s: "
                f"it expects {', '.join(sorted(assignment.solution_ids))}")
    return f"it defines none of {', '.join(assignment.interface)}"
