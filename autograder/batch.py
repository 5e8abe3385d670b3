"""Grading a whole batch: checks first, then sandboxes in parallel, files, gradebook.

Everything that can show the instructor made a mistake is checked before anything is
written: OUT belongs to another assignment, nothing gradable was found, most
notebooks belong to another assignment, or the sandbox cannot isolate here (then
the batch stops unless ``--allow-unisolated`` was given, and says so loudly).
"""
from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from nbgrader.utils import parse_utc
from tqdm import tqdm

from attention_course_learner import wire
from autograder.assignment import (
    Assignment, InstructorError, available_assignments, load_assignment,
)
from autograder.export import LatePolicy, penalised
from autograder.formgrader import write_for_formgrader
from autograder.executors import assignment_hash, executor_for, result_to_dict
from autograder.grading import Prepared, SubmissionResult, prepare
from autograder.record import (
    GradebookWriter, check_out_folder, is_recorded, mark_recorded, read_results_json,
    result_from_document,
    write_grades_csv, write_student_files,
)
from autograder.sandbox import (
    FULL, UNISOLATED, Factory, Host, IsolationUnavailable, Limits, Sandbox,
    SandboxFailure,
)

GRADER_FORMAT = 1  # raise when the grader's results change for the same input
from autograder.status import Status
from autograder.submissions import (
    Submission, collect, describe, matches_assignment, read_notebook,
)
from autograder.text import printable

USERNS_HINT = (
    "Full isolation needs user namespaces. Where they are refused: Ubuntu 23.10+ "
    "restricts them through AppArmor (sysctl "
    "kernel.apparmor_restrict_unprivileged_userns=1; allow them for the venv's python "
    "with an AppArmor profile, or set it to 0), older Debian kernels through "
    "kernel.unprivileged_userns_clone=0, any kernel through "
    "user.max_user_namespaces=0, and Docker's default seccomp profile inside "
    "containers. Grade as root, allow user "
    "namespaces, or pass --allow-unisolated to grade with Landlock only (no network, "
    "process or full file isolation).")


@dataclass
class BatchOutcome:
    results: list[SubmissionResult]
    isolation: str
    kept_rows: int  # rows of earlier runs kept in grades.csv
    skipped: int = 0  # unchanged submissions already graded into OUT


def banner(isolation: str) -> str:
    rule = "!" * 78
    return (f"{rule}\n!! UNISOLATED GRADING: {isolation}\n!! Learners' code ran "
            "without the full sandbox; use these marks only if you trust the "
            f"submissions.\n{rule}")


def preflight(factory: Factory, limits: Limits,
              allow_unisolated: bool) -> tuple[str, str]:
    """(mode, isolation description) of an empty sandbox that works here."""
    reasons = []
    for mode in (FULL, UNISOLATED) if allow_unisolated else (FULL,):
        host = Host(factory, limits, 0, mode)
        sandbox = Sandbox(host)
        try:
            sandbox.start()
            request = wire.encode_frame({"op": "exec", "source": "1"})
            payload, json_size = sandbox.exchange(request, limits.startup_timeout)
            if wire.decode_frame(payload, json_size) != {"ok": None}:
                raise SandboxFailure(Status.KERNEL_DIED, "an empty cell failed")
            return mode, sandbox.isolation
        except IsolationUnavailable as failure:
            reasons.append(f"{mode}: {failure.reason}")
        except SandboxFailure as failure:
            reasons.append(f"{mode}: {failure.message}\n{sandbox.output_tail()}")
        finally:
            sandbox.kill(wait=True)
            host.close()
    hint = "" if allow_unisolated else f"\n{USERNS_HINT}"
    raise InstructorError("the sandbox cannot isolate submissions here:\n  "
                          + "\n  ".join(reasons) + hint)


def summary_table(results: list[SubmissionResult], isolation: str) -> str:
    ids = {r.student_id: printable(r.student_id)[:60] for r in results}
    width = max([len("student_id")] + [len(i) for i in ids.values()])
    lines = [f"{'student_id':<{width}}  {'score':>11}  status", "-" * (width + 28)]
    for r in results:
        score = f"{r.score:>5g} / {r.max_score:<3g}"
        lines.append(f"{ids[r.student_id]:<{width}}  {score}  {r.status}")
    graded = [r for r in results if r.status == Status.GRADED]
    mean = sum(r.score for r in graded) / len(graded) if graded else 0.0
    lines.append(f"{len(graded)} of {len(results)} graded; mean score of graded {mean:.2f}")
    lines.append(f"isolation: {isolation}")
    if not isolation.startswith(FULL):
        lines.append(banner(isolation))
    return "\n".join(lines)


def _has_notebook(submission: Submission) -> bool:
    return submission.path is not None and any(submission.path.rglob("*.ipynb"))


def _owner_of(path: Path, exclude: str) -> str:
    """Which other assignment a notebook seems to belong to ("" if none)."""
    notebook, _ = read_notebook(path)
    if notebook is None:
        return ""
    for name in available_assignments():
        if name != exclude and not matches_assignment(notebook, load_assignment(name)):
            return name
    return ""


def check_batch(assignment: Assignment, submissions: Path, batch: list[Submission],
                prepared: list[Prepared | SubmissionResult]) -> None:
    """Refuse a batch with nothing gradable, or made mostly of another assignment."""
    if not any(_has_notebook(s) for s in batch):
        raise InstructorError(
            f"nothing gradable in {submissions} (it holds: {describe(submissions)}). "
            f"Expected one folder per student with {assignment.notebook_name} in it, "
            "<student_id>.zip, or the .ipynb files of an LMS export (Canvas, Moodle, "
            "Blackboard).")
    read = [p for p in prepared if isinstance(p, Prepared)
            or p.status == Status.WRONG_ASSIGNMENT]
    wrong = [p for p in read if isinstance(p, SubmissionResult)]
    if read and len(wrong) * 2 > len(read):
        example = next(s for s in batch if s.student_id == wrong[0].student_id)
        notebook = example.path / wrong[0].notebook if example.path else None
        owner = _owner_of(notebook, assignment.name) if notebook else ""
        guess = f" They look like {owner}." if owner else ""
        raise InstructorError(
            f"{len(wrong)} of {len(read)} notebooks in {submissions} do not belong to "
            f"{assignment.name}.{guess} Nothing was graded or written: check the "
            "assignment name.")


def submission_time(submission: Submission) -> datetime | None:
    """When it was handed in: nbgrader's timestamp.txt in the student's folder, else the
    newest notebook's modification time (UTC)."""
    if submission.path is None:
        return None
    stamp = submission.path / "timestamp.txt"
    if stamp.is_file():
        try:
            return parse_utc(stamp.read_text().strip()).replace(tzinfo=timezone.utc)
        except (ValueError, OSError):
            pass
    times = [p.stat().st_mtime for p in submission.path.rglob("*.ipynb") if p.is_file()]
    return datetime.fromtimestamp(max(times), timezone.utc) if times else None


def late_note(result: SubmissionResult, policy: LatePolicy | None,
              submitted: datetime | None) -> str:
    if policy is None or not policy.days_late(submitted):
        return ""
    after, penalty = penalised(result.score, policy, submitted)
    days = policy.days_late(submitted)
    return (f"late by {days} day(s) (handed in {submitted.isoformat(timespec='seconds')}): "
            f"-{policy.percent(submitted):g} % = -{penalty:g} points, "
            f"{after:g} / {result.max_score:g} in the LMS export ({policy.describe()})")


def fingerprint(assignment: Assignment, item: Prepared | SubmissionResult, limits: Limits,
                allow_unisolated: bool, late: str = "") -> str:
    """What a result depends on: the submission as read, the assignment's source
    notebook and the limits. Same fingerprint, same result."""
    what = asdict(item) if isinstance(item, Prepared) else result_to_dict(item)
    document = {"grader": GRADER_FORMAT, "assignment": assignment_hash(assignment),
                "item": what, "limits": asdict(limits),
                "allow_unisolated": allow_unisolated, "late": late}
    text = json.dumps(document, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _finished(out: Path, student_id: str, print_: str) -> SubmissionResult | None:
    document = read_results_json(out, student_id)
    if (document and document.get("fingerprint") == print_
            and document.get("status") != Status.GRADER_ERROR):
        try:
            return result_from_document(document)
        except (KeyError, TypeError, ValueError):
            return None
    return None


def grade_batch(assignment: Assignment, submissions: Path, out: Path, jobs: int = 1,
                limits: Limits = Limits(), db_url: str | None = None, progress: bool = True,
                allow_unisolated: bool = False, command: str = "",
                scheduler: str | None = None, force: bool = False,
                executor=None, late_policy: LatePolicy | None = None,
                formgrader_root: Path | None = None) -> BatchOutcome:
    """Grade a batch; a rerun into the same OUT skips every submission whose results.json
    carries the same fingerprint (unless ``force``). Each result is recorded in the
    gradebook, then written to OUT, as it comes in, so a batch killed at any moment
    keeps what it finished."""
    executor = executor or executor_for(jobs, scheduler)
    check_out_folder(out, assignment)
    with tempfile.TemporaryDirectory(prefix="autograder-") as scratch:
        batch = collect(submissions, Path(scratch), assignment.notebook_name)
        prepared = [prepare(assignment, submission) for submission in batch]
        check_batch(assignment, submissions, batch, prepared)
        handed_in = {s.student_id: submission_time(s) for s in batch}
    late = {sid: f"{late_policy}|{when}" if late_policy else ""
            for sid, when in handed_in.items()}
    prints = {item.student_id: fingerprint(assignment, item, limits, allow_unisolated,
                                           late.get(item.student_id, ""))
              for item in prepared}
    by_student = {item.student_id: item for item in prepared}
    results, todo, unrecorded = [], [], []
    for item in prepared:
        done = None if force else _finished(out, item.student_id, prints[item.student_id])
        if done is None:
            todo.append(item)
            continue
        results.append(done)
        if db_url and not is_recorded(out, item.student_id, db_url):
            unrecorded.append(done)  # graded, but not (yet) into this gradebook
    skipped = len(results)
    to_sandbox = [item for item in todo if isinstance(item, Prepared)]
    isolation = ""
    if to_sandbox:
        isolation = executor.start(assignment, limits, allow_unisolated)
        if not isolation.startswith(FULL) and not isolation.startswith("per worker"):
            print(banner(isolation), file=sys.stderr)
    try:
        out.mkdir(parents=True, exist_ok=True)
        writer = (GradebookWriter(assignment, db_url, command)
                  if db_url and (todo or unrecorded) else None)
    except BaseException:
        executor.close()
        raise

    def finish(result: SubmissionResult) -> None:
        when = handed_in.get(result.student_id)
        note = late_note(result, late_policy, when)
        if note:
            result.notes.append(note)
        recorded = writer.record(result, when) if writer else True
        finished = recorded and result.status != Status.GRADER_ERROR
        if formgrader_root is not None and finished and writer:
            item = by_student.get(result.student_id)
            write_for_formgrader(formgrader_root, assignment, result,
                                 item.solutions if isinstance(item, Prepared) else {},
                                 when)
        write_student_files(out, assignment, result,
                            prints[result.student_id] if finished else "")
        if writer and recorded:
            mark_recorded(out, result.student_id, db_url)
        results.append(result)

    try:
        for result in unrecorded:
            if writer.record(result, handed_in.get(result.student_id)):
                mark_recorded(out, result.student_id, db_url)
        if to_sandbox:
            graded = executor.run(assignment, to_sandbox, limits, allow_unisolated)
            for result in tqdm(graded, total=len(to_sandbox), unit="submission",
                               desc=f"grading {assignment.name}", disable=not progress,
                               file=sys.stderr):
                finish(result)
        # Submissions that needed no sandbox: the batch's isolation, as before.
        isolation = _isolation_of(results, isolation)
        for item in todo:
            if isinstance(item, SubmissionResult):
                item.isolation = item.isolation or isolation
                finish(item)
    finally:
        executor.close()
        if writer:
            writer.close()
    for result in results:
        result.isolation = result.isolation or isolation
    results.sort(key=lambda r: r.student_id)
    kept = write_grades_csv(out, results)
    return BatchOutcome(results, isolation, kept, skipped)


def _isolation_of(results: list[SubmissionResult], fallback: str) -> str:
    found = sorted({r.isolation for r in results if r.isolation})
    if len(found) == 1:
        return found[0]
    if found:
        return "mixed: " + "; ".join(found)
    return fallback or FULL
