"""Grading at scale: reruns that skip, batches that survive SIGKILL, and a real Dask
cluster (``dask scheduler`` + ``dask worker`` processes this module starts and stops).

Kept small (ex1, a handful of submissions): the machine is shared and has 2 cores."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from autograder import environment
from autograder.assignment import COURSE_ROOT, load_assignment
from autograder.executors import REFUSE_ISOLATION_ENV, DaskExecutor
from autograder.record import course_id
from autograder.samples import notebook_name, submission, write
from autograder.status import Status

ASSIGNMENT = "ex1_attention"
NAME = notebook_name(ASSIGNMENT)
SOFTMAX_BUG = "def softmax(x, axis=-1, temperature=1.0):\n    return x\n"


def make_batch(folder: Path, count: int = 3) -> Path:
    """correct, blank, a softmax that returns its input, then more correct ones; and
    a student without a notebook."""
    kinds = [submission(ASSIGNMENT), submission(ASSIGNMENT, blank=True),
             submission(ASSIGNMENT, code={"softmax": SOFTMAX_BUG})]
    for index in range(count):
        write(kinds[index % len(kinds)], folder, f"s{index:02d}", NAME)
    (folder / "empty").mkdir(parents=True)
    return folder


def run_grade(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", "grade", ASSIGNMENT, *args,
                           "--no-progress"], cwd=COURSE_ROOT, capture_output=True,
                          text=True, env={**os.environ, **(env or {})})


def results(out: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in (out / "students").glob("*/results.json")}


def gradebook_scores(db_url: str) -> dict[str, float]:
    with Gradebook(db_url, course_id()) as gradebook:
        return {s.student.id: s.score
                for s in gradebook.assignment_submissions(ASSIGNMENT)}


def without_fingerprint(blob: bytes) -> dict:
    document = json.loads(blob)
    document.pop("fingerprint", None)
    return document


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Path:
    return make_batch(tmp_path_factory.mktemp("scale") / "subs")


@pytest.fixture(scope="module")
def first_run(batch, tmp_path_factory):
    """One graded batch: (out, db_url, results.json bytes, stdout)."""
    root = tmp_path_factory.mktemp("first")
    db_url = f"sqlite:///{root / 'gradebook.db'}"
    done = run_grade(str(batch), "--out", str(root / "out"), "--db", db_url, "--jobs", "2")
    assert done.returncode == 0, done.stderr
    return root / "out", db_url, results(root / "out"), done.stdout


def test_rerun_skips_unchanged_regrades_changed_and_force_repeats_bytes(
        batch, first_run, tmp_path):
    out, db_url, first, _ = first_run
    assert set(first) == {"s00", "s01", "s02", "empty"}
    scores = gradebook_scores(db_url)
    assert scores["s00"] == 14 and scores["s01"] == 0 and 0 < scores["s02"] < 14

    again = run_grade(str(batch), "--out", str(out), "--db", db_url)
    assert again.returncode == 0, again.stderr
    assert "skipped 4 submission(s)" in again.stdout
    assert results(out) == first

    # a changed notebook is regraded, the others are skipped
    changed = tmp_path / "subs"
    subprocess.run(["cp", "-r", str(batch), str(changed)], check=True)
    write(submission(ASSIGNMENT), changed, "s01", NAME)
    rerun = run_grade(str(changed), "--out", str(out), "--db", db_url)
    assert "skipped 3 submission(s)" in rerun.stdout, rerun.stdout
    assert json.loads(results(out)["s01"])["score"] == 14
    assert gradebook_scores(db_url)["s01"] == 14

    # --force regrades everything: same bytes as the first run, same gradebook
    forced = run_grade(str(batch), "--out", str(out), "--db", db_url, "--force")
    assert "skipped" not in forced.stdout
    assert results(out) == first
    assert gradebook_scores(db_url) == scores


def test_sigkill_of_the_coordinator_loses_no_finished_result(batch, first_run, tmp_path):
    out, db_url = tmp_path / "out", f"sqlite:///{tmp_path / 'gradebook.db'}"
    process = subprocess.Popen(
        [sys.executable, "-m", "autograder", "grade", ASSIGNMENT, str(batch), "--out",
         str(out), "--db", db_url, "--jobs", "1", "--no-progress"],
        cwd=COURSE_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    deadline = time.monotonic() + 240
    while len(results(out)) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = results(out)
    assert len(finished) >= 2
    # every results.json written is complete JSON, and its scores are in the gradebook
    recorded = gradebook_scores(db_url)
    for student, blob in finished.items():
        document = json.loads(blob)
        if document["status"] != "no notebook" or student in recorded:
            assert recorded[student] == document["score"]
    rerun = run_grade(str(batch), "--out", str(out), "--db", db_url)
    assert rerun.returncode == 0, rerun.stderr
    assert f"skipped {len(finished)} submission(s)" in rerun.stdout
    assert results(out) == first_run[2]  # fingerprints included
    assert gradebook_scores(db_url) == gradebook_scores(first_run[1])
    with open(out / "grades.csv", newline="") as stream:
        assert len(list(csv.DictReader(stream))) == 4


# --- a real Dask cluster ----------------------------------------------------------------

def venv_serves_this_course() -> bool:
    """Whether `make install` ran from this checkout (a development clone may share
    another checkout's venv)."""
    pth = environment.pth_file()
    return pth.exists() and pth.read_text().strip() == str(COURSE_ROOT)


def course_environment() -> dict:
    """How an instructor starts `dask worker`: from the course's venv, no PYTHONPATH."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    if not venv_serves_this_course():
        env["PYTHONPATH"] = str(COURSE_ROOT)
    return env


def test_the_course_environment_imports_the_grader(tmp_path):
    if not venv_serves_this_course():
        pytest.skip("this venv was installed from another checkout")
    found = subprocess.run(
        [sys.executable, "-I", "-c", "import autograder.executors as e; print(e.__file__)"],
        cwd=tmp_path, env=course_environment(), capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()).is_relative_to(COURSE_ROOT)


def _start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=log.parent, env=env, stdout=open(log, "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class Cluster:
    def __init__(self, root: Path):
        self.root = root
        self.file = root / "scheduler.json"
        self.env = {**course_environment(),
                    "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
        dask = str(Path(sys.executable).parent / "dask")
        self.dask = dask
        self.scheduler = _start([dask, "scheduler", "--scheduler-file", str(self.file),
                                 "--no-dashboard", "--host", "127.0.0.1", "--port", "0"],
                                self.env, root / "scheduler.log")
        self.workers: list[subprocess.Popen] = []
        deadline = time.monotonic() + 120
        while not self.file.exists():
            assert time.monotonic() < deadline, (root / "scheduler.log").read_text()
            time.sleep(0.2)
        self.address = json.loads(self.file.read_text())["address"]

    def add_worker(self, name: str, **env: str) -> None:
        self.workers.append(_start(
            [self.dask, "worker", "--scheduler-file", str(self.file), "--nthreads", "1",
             "--no-dashboard", "--name", name, "--host", "127.0.0.1",
             "--local-directory", str(self.root / f"scratch-{name}")],
            {**self.env, **env}, self.root / f"worker-{name}.log"))

    def wait_for(self, count: int) -> None:
        from distributed import Client
        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(count, timeout=120)

    def stop(self) -> None:
        for process in self.workers + [self.scheduler]:
            _stop(process)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        cluster.add_worker("good")
        cluster.add_worker("no-isolation", **{REFUSE_ISOLATION_ENV: "1"})
        cluster.wait_for(2)
        yield cluster
    finally:
        cluster.stop()


def test_dask_cluster_grades_like_local_processes(batch, first_run, cluster, tmp_path):
    """Same results.json and gradebook as --jobs; the worker that cannot isolate hands
    its submissions on to the one that can."""
    out, db_url = tmp_path / "out", f"sqlite:///{tmp_path / 'gradebook.db'}"
    done = run_grade(str(batch), "--out", str(out), "--db", db_url,
                     "--scheduler", cluster.address)
    assert done.returncode == 0, done.stderr + done.stdout
    got = {k: without_fingerprint(v) for k, v in results(out).items()}
    assert got == {k: without_fingerprint(v) for k, v in first_run[2].items()}
    assert "isolation: full" in done.stdout
    assert gradebook_scores(db_url) == gradebook_scores(first_run[1])
    # and a rerun on the cluster skips them all
    again = run_grade(str(batch), "--out", str(out), "--db", db_url,
                      "--scheduler", cluster.address)
    assert "skipped 4 submission(s)" in again.stdout


# A task that kills its worker process, as if the host went away mid-task. Defined in
# __main__'s name so that it travels by value (workers cannot import this test module).
_NAMESPACE = {"__name__": "__main__"}
exec("import os\ndef kill_my_worker(payload):\n    os._exit(1)\n", _NAMESPACE)
_kill_my_worker = _NAMESPACE["kill_my_worker"]


def test_dead_workers_and_lost_tasks_end_in_grader_error_after_retries(
        batch, cluster, tmp_path):
    from autograder.batch import grade_batch
    executor = DaskExecutor(cluster.address, retries=1, task=_kill_my_worker)
    sub = tmp_path / "one"
    write(submission(ASSIGNMENT), sub, "doomed", NAME)
    outcome = grade_batch(load_assignment(ASSIGNMENT), sub, tmp_path / "out",
                          progress=False, executor=executor)
    [result] = outcome.results
    assert result.status == Status.GRADER_ERROR
    assert "not graded after 2 tries" in result.notes[-1]
    assert "KilledWorker" in result.notes[-1]
    # not finished: a rerun grades it again (here on a healthy cluster)
    assert "fingerprint" not in json.loads(
        (tmp_path / "out" / "students" / "doomed" / "results.json").read_text())


def test_a_cluster_whose_workers_cannot_isolate_grades_nothing_unsafely(
        cluster, tmp_path):
    """With only the worker that cannot isolate left, each submission ends as a grader
    error that says why (and is graded by a rerun once a good worker is back)."""
    from autograder.batch import grade_batch
    from distributed import Client
    _stop(cluster.workers[0])  # the good one
    with Client(cluster.address, timeout=60) as client:
        deadline = time.monotonic() + 60
        while len(client.scheduler_info()["workers"]) != 1:
            assert time.monotonic() < deadline
            time.sleep(0.5)
    sub = tmp_path / "one"
    write(submission(ASSIGNMENT), sub, "careful", NAME)
    outcome = grade_batch(load_assignment(ASSIGNMENT), sub, tmp_path / "out",
                          progress=False, scheduler=cluster.address)
    [result] = outcome.results
    assert result.status == Status.GRADER_ERROR and result.score == 0
    assert "the worker cannot isolate submissions" in result.notes[-1]
