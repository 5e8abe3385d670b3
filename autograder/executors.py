"""Where submissions are graded: local processes (``--jobs N``) or a Dask cluster
(``--scheduler tcp://HOST:PORT``), behind one interface.

An executor takes ``Prepared`` submissions and yields ``SubmissionResult``s as they
finish; the coordinator (``autograder.batch``) alone writes OUT and the gradebook.

A Dask task gets plain data — the assignment id and the hash of its source notebook,
the learner's cells, the limits, whether unisolated grading is allowed — and returns
plain data (``result_to_dict``). On the worker, ``grade_task`` keeps one sandbox
factory per worker process, checks once per isolation mode that a sandbox isolates
there (the same rule as locally: full isolation, or Landlock only with
``--allow-unisolated``), and grades. A worker that cannot isolate answers so instead
of grading; the coordinator then sends the submission to another worker. A worker
that dies or loses the task makes the future fail; the coordinator resubmits it.
After ``retries`` extra tries a submission gets the status ``grader error`` with a
note saying why, and the rest of the batch goes on.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterator

from autograder.assignment import Assignment, InstructorError, load_assignment
from autograder.grading import (
    Prepared, SubmissionResult, TestResult, before_grading_threads, grade_prepared,
    not_graded,
)
from autograder.sandbox import FULL, UNISOLATED, Factory, Limits
from autograder.status import Status

MAX_SLOTS = 512
DEFAULT_RETRIES = 2
# Diagnostics: makes this process's preflight fail as on a machine where user
# namespaces are refused (used to test how a batch treats such a worker).
REFUSE_ISOLATION_ENV = "AUTOGRADER_REFUSE_ISOLATION"


def assignment_hash(assignment: Assignment) -> str:
    return hashlib.sha256(assignment.source_path.read_bytes()).hexdigest()


# --- plain data in and out -------------------------------------------------------------

def result_to_dict(result: SubmissionResult) -> dict:
    return {"student_id": result.student_id, "status": str(result.status),
            "tests": [asdict(t) for t in result.tests], "notes": list(result.notes),
            "notebook": result.notebook, "isolation": result.isolation}


def result_from_dict(data: dict) -> SubmissionResult:
    return SubmissionResult(data["student_id"], Status(data["status"]),
                            [TestResult(**t) for t in data["tests"]], list(data["notes"]),
                            data["notebook"], data["isolation"])


def task_payload(assignment: Assignment, prepared: Prepared, limits: Limits,
                 allow_unisolated: bool) -> dict:
    return {"assignment": assignment.name, "assignment_sha256": assignment_hash(assignment),
            "student_id": prepared.student_id, "notebook_name": prepared.notebook_name,
            "cells": [list(cell) for cell in prepared.cells], "notes": list(prepared.notes),
            "limits": asdict(limits), "allow_unisolated": allow_unisolated}


# --- slots: a uid per sandbox running at once on this machine --------------------------

def _slot_dir() -> Path:
    folder = Path(tempfile.gettempdir()) / f"autograder-slots-{os.geteuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


class SlotClaim:
    """A job slot that no other grading process on this machine holds (a flock on a
    file per slot): two workers or two batches never run sandboxes as one uid."""

    def __enter__(self) -> int:
        folder = _slot_dir()
        for slot in range(MAX_SLOTS):
            handle = os.open(folder / f"slot-{slot}", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(handle)
                continue
            self.handle = handle
            return slot
        raise RuntimeError(f"more than {MAX_SLOTS} sandboxes at once on this machine")

    def __exit__(self, *exc) -> None:
        os.close(self.handle)  # releases the lock


# --- the worker side --------------------------------------------------------------------

class WorkerState:
    """A worker process's factories (one per set of preloaded modules), and what
    the preflight found per mode."""

    lock = threading.Lock()
    factories: dict[tuple[str, ...], Factory] = {}
    # (preload, allow_unisolated) -> ((mode, isolation) or None, reason)
    preflight: dict[tuple, tuple[tuple[str, str] | None, str]] = {}


def _worker_factory(preload: tuple[str, ...]) -> Factory:
    with WorkerState.lock:
        if preload not in WorkerState.factories:
            before_grading_threads()
            WorkerState.factories[preload] = Factory(preload)
        return WorkerState.factories[preload]


def _worker_preflight(factory: Factory, limits: Limits,
                      allow_unisolated: bool) -> tuple[str, str, str]:
    """(mode, isolation, "") on success, or ("", "", reason)."""
    from autograder.batch import preflight  # late: batch imports this module
    with WorkerState.lock:
        key = (factory.preload, allow_unisolated)  # each factory is tried once
        if key not in WorkerState.preflight:
            if os.environ.get(REFUSE_ISOLATION_ENV):
                WorkerState.preflight[key] = (None, f"{REFUSE_ISOLATION_ENV} is set")
            else:
                try:
                    mode, isolation = preflight(factory, limits, allow_unisolated)
                    WorkerState.preflight[key] = ((mode, isolation), "")
                except InstructorError as error:
                    reason = " ".join(str(error).splitlines()[:3])
                    WorkerState.preflight[key] = (None, reason)
        found, reason = WorkerState.preflight[key]
    if found is None:
        return "", "", reason
    return found[0], found[1], ""


def _worker_address() -> str:
    try:
        from distributed import get_worker
        return get_worker().address
    except Exception:  # not inside a Dask worker
        return f"pid {os.getpid()}"


def grade_task(payload: dict) -> dict:
    """One submission, on a Dask worker: plain data in, plain data out."""
    limits = Limits(**payload["limits"])
    assignment = load_assignment(payload["assignment"])
    if assignment_hash(assignment) != payload["assignment_sha256"]:
        return {"retry": "the worker's copy of the assignment differs from the "
                         "coordinator's (update the course on every host)",
                "worker": _worker_address()}
    factory = _worker_factory(assignment.preload)
    mode, isolation, reason = _worker_preflight(factory, limits,
                                                payload["allow_unisolated"])
    if not mode:
        return {"retry": f"the worker cannot isolate submissions: {reason}",
                "worker": _worker_address()}
    prepared = Prepared(payload["student_id"], payload["notebook_name"],
                        [tuple(cell) for cell in payload["cells"]], payload["notes"])
    with SlotClaim() as slot:
        result = grade_prepared(assignment, prepared, factory, limits, slot, mode)
    result.isolation = result.isolation or isolation
    return {"result": result_to_dict(result), "worker": _worker_address()}


# --- the executors ----------------------------------------------------------------------

def _grader_error(assignment: Assignment, item: Prepared, why: str) -> SubmissionResult:
    return not_graded(assignment, item.student_id, Status.GRADER_ERROR,
                      item.notes + [why], item.notebook_name)


class LocalExecutor:
    """``--jobs N`` sandboxes at once, from one factory on this machine."""

    def __init__(self, jobs: int = 1):
        if jobs < 1:
            raise InstructorError("--jobs must be at least 1")
        self.jobs = jobs
        self.factory: Factory | None = None
        self.mode = FULL

    def start(self, assignment: Assignment, limits: Limits,
              allow_unisolated: bool) -> str:
        from autograder.batch import preflight
        before_grading_threads()
        self.factory = Factory(assignment.preload)
        try:
            self.mode, isolation = preflight(self.factory, limits, allow_unisolated)
        except BaseException:
            self.close()
            raise
        return isolation

    def close(self) -> None:
        if self.factory is not None:
            self.factory.close()
            self.factory = None

    def run(self, assignment: Assignment, items: list[Prepared], limits: Limits,
            allow_unisolated: bool) -> Iterator[SubmissionResult]:
        def grade(item: Prepared) -> SubmissionResult:
            try:
                with SlotClaim() as slot:
                    return grade_prepared(assignment, item, self.factory, limits, slot,
                                          self.mode)
            except Exception as error:  # a grader bug must not stop the batch
                return _grader_error(assignment, item, f"{type(error).__name__}: {error}")

        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futures = [pool.submit(grade, item) for item in items]
            for future in as_completed(futures):
                yield future.result()


class DaskExecutor:
    """One Dask task per submission on the cluster at ``address``."""

    def __init__(self, address: str, retries: int = DEFAULT_RETRIES,
                 task: Callable[[dict], dict] = grade_task):
        self.address = address
        self.retries = retries
        self.task = task
        self.client = None

    def start(self, assignment: Assignment, limits: Limits,
              allow_unisolated: bool) -> str:
        try:
            from distributed import Client
        except ImportError:
            raise InstructorError("--scheduler needs dask[distributed]: "
                                  "pip install 'dask[distributed]'") from None
        try:
            self.client = Client(self.address, timeout=30, set_as_default=False)
        except (OSError, TimeoutError) as error:
            raise InstructorError(f"cannot reach the Dask scheduler at {self.address}: "
                                  f"{error}") from None
        workers = self.client.scheduler_info().get("workers", {})
        if not workers:
            self.client.wait_for_workers(1, timeout=60)
        return f"per worker (Dask cluster at {self.address})"

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def run(self, assignment: Assignment, items: list[Prepared], limits: Limits,
            allow_unisolated: bool) -> Iterator[SubmissionResult]:
        from distributed import as_completed as dask_completed
        by_key, tries, refused, reasons = {}, {}, {}, {}

        def submit(index: int) -> object:
            item = items[index]
            tries[index] = tries.get(index, 0) + 1
            workers = self._workers_except(refused.get(index, set()))
            future = self.client.submit(
                self.task, task_payload(assignment, item, limits, allow_unisolated),
                key=f"grade-{assignment.name}-{index}-{tries[index]}-{os.getpid()}",
                pure=False, workers=workers)
            by_key[future.key] = index
            return future

        pending = dask_completed([submit(i) for i in range(len(items))],
                                 loop=self.client.loop)
        for future in pending:
            index = by_key.pop(future.key)
            item = items[index]
            try:
                answer = future.result()
            except Exception as error:  # worker died, task lost, or a grader bug
                answer = {"retry": f"the task failed: {type(error).__name__}: {error}"}
            finally:
                future.release()
            if "result" in answer:
                yield result_from_dict(answer["result"])
                continue
            reasons.setdefault(index, []).append(answer["retry"])
            if "worker" in answer:
                refused.setdefault(index, set()).add(answer["worker"])
            if tries[index] <= self.retries:
                pending.add(submit(index))
            else:
                why = "; ".join(dict.fromkeys(reasons[index]))
                yield _grader_error(assignment, item,
                                    f"not graded after {tries[index]} tries: {why}")

    def _workers_except(self, refused: set[str]) -> list[str] | None:
        if not refused:
            return None
        others = [w for w in self.client.scheduler_info().get("workers", {})
                  if w not in refused]
        return others or None


def executor_for(jobs: int, scheduler: str | None):
    return DaskExecutor(scheduler) if scheduler else LocalExecutor(jobs)
