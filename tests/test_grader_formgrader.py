"""formgrader agrees with the gradebook: graded with ``--formgrader-root``, then read
through formgrader's own HTTP API (a real Jupyter server with nbgrader's extension)."""
from __future__ import annotations

import html
import json
import re
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from autograder.assignment import COURSE_ROOT
from autograder.cli import main
from autograder.samples import notebook_name, submission, write

ASSIGNMENT = "ex1_attention"
TOKEN = "formgrader-test-token"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(base: str, path: str) -> tuple[int, str]:
    request = urllib.request.Request(base + path,
                                     headers={"Authorization": f"token {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture(scope="module")
def formgrader(tmp_path_factory):
    course = tmp_path_factory.mktemp("course")
    shutil.copy(COURSE_ROOT / "nbgrader_config.py", course)
    for folder in ("solutions", "exercises"):
        shutil.copytree(COURSE_ROOT / folder / ASSIGNMENT, course / folder / ASSIGNMENT)
    db_url = f"sqlite:///{course / 'gradebook.db'}"
    subs = tmp_path_factory.mktemp("subs")
    name = notebook_name(ASSIGNMENT)
    write(submission(ASSIGNMENT), subs, "alice", name)
    write(submission(ASSIGNMENT, blank=True), subs, "bob", name)
    (subs / "carol").mkdir()  # no notebook: 0 in the gradebook, the blank notebook shown
    assert main(["grade", ASSIGNMENT, str(subs), "--out", str(course / "out"), "--db",
                 db_url, "--formgrader-root", str(course), "--no-progress"]) == 0
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(COURSE_ROOT),
           "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
           "JUPYTER_CONFIG_DIR": str(course / ".jupyter"), "HOME": str(course)}
    log = open(course / "server.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", "--ip=127.0.0.1",
         f"--port={port}", f"--IdentityProvider.token={TOKEN}",
         "--ServerApp.jpserver_extensions={'nbgrader.server_extensions.formgrader': True}",
         f"--CourseDirectory.db_url={db_url}",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=course, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if get(base, "/formgrader/api/status")[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, \
                (course / "server.log").read_text()[-3000:]
            time.sleep(1)
        yield base, course
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def test_formgrader_views_agree_with_the_gradebook(formgrader):
    base, course = formgrader
    status, body = get(base, "/formgrader/api/assignments")
    assert status == 200, body
    [assignment] = [a for a in json.loads(body) if a["name"] == ASSIGNMENT]
    assert assignment["num_submissions"] == 3  # carol too: she has a 0 in the gradebook

    submissions = {s["student"]: s for s in
                   json.loads(get(base, f"/formgrader/api/submissions/{ASSIGNMENT}")[1])}
    assert submissions["alice"]["autograded"] and submissions["alice"]["score"] == 14
    assert submissions["bob"]["autograded"] and submissions["bob"]["score"] == 0
    assert submissions["carol"]["autograded"] and submissions["carol"]["score"] == 0

    notebooks = json.loads(get(base, f"/formgrader/api/notebooks/{ASSIGNMENT}")[1])
    assert [n["num_submissions"] for n in notebooks] == [3]

    alice = json.loads(get(base, "/formgrader/api/student/alice")[1])
    assert alice["score"] == 14 and alice["max_score"] == 14

    submitted = json.loads(get(base, f"/formgrader/api/submitted_notebooks/"
                                     f"{ASSIGNMENT}/{ASSIGNMENT}")[1])
    by_student = {s["student"]: s for s in submitted}
    assert by_student["alice"]["score"] == 14
    status, page = get(base, f"/formgrader/submissions/{by_student['alice']['id']}/")
    assert status == 200, page[-2000:]
    text = html.unescape(re.sub(r"<[^>]+>", "", page))  # code is highlighted in spans
    assert "def softmax" in text  # the learner's code
    assert "BEGIN HIDDEN TESTS" not in text and "seed=" not in text
    status, page = get(base, f"/formgrader/submissions/{by_student['bob']['id']}/")
    assert status == 200 and "CheckFailed" in page
