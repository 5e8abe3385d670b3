"""Hostile submissions graded in one batch (two sandboxes at once) next to a correct one.

Each attack in tests/adversarial/attacks.py says what the grader must make of it;
here we also check that nobody else's result, file or grade was touched.
"""
from __future__ import annotations

import csv
import json
import os
import socket
import subprocess

import pytest
from nbgrader.api import Gradebook

from autograder.assignment import COURSE_ROOT, load_assignment
from autograder.batch import grade_batch
from autograder.record import course_id, ensure_assignment_in_gradebook
from autograder.sandbox import Limits, isolation_available
from autograder.samples import notebook_name, submission, write
from tests.adversarial.attacks import ASSIGNMENT, ATTACKS, CORRECT

pytestmark = pytest.mark.skipif(not isolation_available(),
                                reason="the full sandbox needs root on Linux (CI runs as root)")
LIMITS = Limits(cell_timeout=5, call_timeout=5, submission_timeout=150)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("adversarial")
    submissions, out, db = root / "submissions", root / "out", root / "gradebook.db"
    assignment = load_assignment(ASSIGNMENT)
    db_url = f"sqlite:///{db}"
    ensure_assignment_in_gradebook(assignment, db_url)
    name = notebook_name(ASSIGNMENT)
    control = write(submission(ASSIGNMENT), submissions, "control", name)
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.setblocking(False)
        context = {
            "read_paths": [str(p) for p in (
                assignment.source_path, COURSE_ROOT / "nbgrader_config.py", db, out, control,
                submissions, root, f"/proc/{os.getpid()}/environ")],
            "write_paths": [str(p) for p in (
                out / "grades.csv", out / "write_results" / "results.json",
                out / "control" / "results.json", db, control)],
            "port": server.getsockname()[1],
            "canary": root / "unpickled",
        }
        for attack in ATTACKS:
            write(attack.build(context), submissions, attack.student_id, name)
        grade_batch(assignment, submissions, out, jobs=2, limits=LIMITS, db_url=db_url,
                    progress=False)
        try:
            server.accept()
            connected = True
        except BlockingIOError:
            connected = False
    results = {folder.name: json.loads((folder / "results.json").read_text())
               for folder in out.iterdir() if folder.is_dir()}
    return {"results": results, "context": context, "out": out, "db_url": db_url,
            "connected": connected, "control": control}


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.student_id)
def test_attack_gains_nothing(batch, attack):
    attack.expect(batch["results"][attack.student_id], batch["results"], batch["context"])


def test_the_correct_submission_next_to_them_is_untouched(batch):
    control = batch["results"]["control"]
    assert control["score"] == CORRECT and control["status"] == "graded"
    assert "hacked" not in batch["control"].read_text()


def test_every_submission_has_one_row_and_its_files(batch):
    with open(batch["out"] / "grades.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert sorted(r["student_id"] for r in rows) == sorted(["control"] + [a.student_id for a in ATTACKS])
    assert "hacked" not in (batch["out"] / "grades.csv").read_text()
    for row in rows:
        assert float(row["score"]) == batch["results"][row["student_id"]]["score"]
        assert (batch["out"] / row["student_id"] / "feedback.html").exists()


def test_the_gradebook_holds_exactly_the_graders_scores(batch):
    with Gradebook(batch["db_url"], course_id()) as gradebook:
        for student_id, result in batch["results"].items():
            assert gradebook.find_submission(ASSIGNMENT, student_id).score == result["score"]


def test_no_connection_reached_the_host(batch):
    assert not batch["connected"]


def test_no_sandbox_process_is_left(batch):
    listing = subprocess.run(["ps", "-eo", "uid="], capture_output=True, text=True).stdout.split()
    assert not [uid for uid in listing if 61000 <= int(uid) < 62000]
