"""Hostile submissions graded in one batch (two sandboxes at once) next to a correct one.

Each attack in tests/adversarial/attacks.py says what the grader must make of it;
here we also check that nobody else's result, file or grade was touched, that the
course's own files are as they were, and that nothing an attacker started outlives
the batch. CI runs this as root; tests/test_grader_unprivileged.py runs it again as
`nobody`, where the grader has the same uid as the learners' code.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import socket
import time

import pytest
from nbgrader.api import Gradebook

from autograder.assignment import COURSE_ROOT, load_assignment
from autograder.batch import grade_batch
from autograder.record import course_id, ensure_assignment_in_gradebook, student_folder
from autograder.sandbox import Limits, sandbox_identity
from autograder.sandbox.isolation import namespaces_refused
from autograder.samples import notebook_name, submission, write
from tests.adversarial.attacks import ASSIGNMENT, ATTACKS, CORRECT

REFUSED = namespaces_refused()
pytestmark = pytest.mark.skipif(bool(REFUSED), reason=f"no user namespaces: {REFUSED}")
# Smaller than the defaults only to keep the memory and fork bombs quick.
LIMITS = Limits(cell_timeout=5, call_timeout=5, submission_timeout=150, memory_mb=1536,
                max_processes=16)
DAEMON_WINDOW = 3.0  # seconds the detached attacker gets after the batch
COURSE_FILES = [COURSE_ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
                COURSE_ROOT / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
                COURSE_ROOT / "nbgrader_config.py"]


def digest(paths) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("adversarial")
    submissions, out, db = root / "submissions", root / "out", root / "gradebook.db"
    assignment = load_assignment(ASSIGNMENT)
    db_url = f"sqlite:///{db}"
    ensure_assignment_in_gradebook(assignment, db_url)
    name = notebook_name(ASSIGNMENT)
    control = write(submission(ASSIGNMENT), submissions, "control", name)
    before = digest(COURSE_FILES)
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.setblocking(False)
        context = {
            "read_paths": [str(p) for p in (
                assignment.source_path, COURSE_ROOT / "nbgrader_config.py", db, out, control,
                submissions, root, f"/proc/{os.getpid()}/environ",
                f"/proc/{os.getpid()}/cwd/nbgrader_config.py")],
            "write_paths": [str(p) for p in (
                out / "grades.csv",
                student_folder(out, "write_results") / "results.json",
                student_folder(out, "control") / "results.json",
                student_folder(out, "control") / "feedback.html", db, control,
                *COURSE_FILES)],
            "port": server.getsockname()[1],
            "canary": root / "unpickled",
            "solution": str(assignment.source_path),
            "submissions": str(submissions),
            "grader_pid": os.getpid(),
            "db": str(db),
            "grades": str(out / "grades.csv"),
        }
        for attack in ATTACKS:
            write(attack.build(context), submissions, attack.student_id, name)
        outcome = grade_batch(assignment, submissions, out, jobs=2, limits=LIMITS,
                              db_url=db_url, progress=False)
        try:
            server.accept()
            connected = True
        except BlockingIOError:
            connected = False
    time.sleep(DAEMON_WINDOW)
    results = {folder.name: json.loads((folder / "results.json").read_text())
               for folder in (out / "students").iterdir()}
    return {"results": results, "context": context, "out": out, "db_url": db_url,
            "connected": connected, "control": control, "before": before,
            "isolation": outcome.isolation}


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.student_id)
def test_attack_gains_nothing(batch, attack):
    attack.expect(batch["results"][attack.student_id], batch["results"], batch["context"])


def test_the_batch_ran_fully_isolated(batch):
    assert batch["isolation"] == "full"
    assert {r["isolation"] for r in batch["results"].values()} == {"full"}


def test_the_correct_submission_next_to_them_is_untouched(batch):
    control = batch["results"]["control"]
    assert control["score"] == CORRECT and control["status"] == "graded"
    assert "hacked" not in batch["control"].read_text()


def test_the_course_files_are_untouched(batch):
    assert digest(COURSE_FILES) == batch["before"]


def test_every_submission_has_one_row_and_its_files(batch):
    text = (batch["out"] / "grades.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    expected = sorted(["control"] + [a.student_id for a in ATTACKS])
    assert sorted(r["student_id"] for r in rows) == expected
    assert "hacked" not in text and "144" not in text
    for row in rows:
        assert float(row["score"]) == batch["results"][row["student_id"]]["score"]
        folder = student_folder(batch["out"], row["student_id"])
        assert (folder / "feedback.html").exists()


def test_the_gradebook_holds_exactly_the_graders_scores(batch):
    """Checked after the detached attacker's window: it never reached the gradebook."""
    with Gradebook(batch["db_url"], course_id()) as gradebook:
        for student_id, result in batch["results"].items():
            assert gradebook.find_submission(ASSIGNMENT, student_id).score == result["score"]


def test_no_connection_reached_the_host(batch):
    assert not batch["connected"]


def _processes() -> list[tuple[int, str, int, str]]:
    """(pid, command name, uid, PID namespace) of every process we may look at."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as stream:
                fields = dict(line.split(":", 1) for line in stream if ":" in line)
            namespace = os.readlink(f"/proc/{entry}/ns/pid")
        except OSError:
            continue
        found.append((int(entry), fields["Name"].strip(), int(fields["Uid"].split()[0]),
                      namespace))
    return found


def test_no_process_a_submission_started_is_left(batch):
    ours = os.readlink("/proc/self/ns/pid")
    uids = {sandbox_identity(slot)[0] for slot in range(2)}
    left = [p for p in _processes()
            if p[1] == "adv-daemon" or (p[2] in uids and p[3] != ours)]
    assert left == []
