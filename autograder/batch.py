"""Grading a whole batch: parallel sandboxes, progress, files, gradebook, summary."""
from __future__ import annotations

import queue
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from tqdm import tqdm

from attention_course.checks import wire
from autograder.assignment import Assignment, InstructorError
from autograder.grading import SubmissionResult, grade_submission, not_graded
from autograder.record import record_gradebook, write_grades_csv, write_student_files
from autograder.sandbox import Factory, Limits, Sandbox, SandboxFailure
from autograder.submissions import collect


def preflight(factory: Factory, limits: Limits, isolate: bool | None) -> str:
    """Start one empty sandbox: an environment that cannot is the instructor's problem."""
    sandbox = Sandbox(factory, limits, 0, isolate)
    try:
        sandbox.start()
        payload, json_size = sandbox.exchange(wire.encode_frame({"op": "exec", "source": "1"}),
                                              limits.startup_timeout)
        if wire.decode_frame(payload, json_size) != {"ok": None}:
            raise SandboxFailure("kernel died", "an empty cell failed")
        return sandbox.isolation
    except SandboxFailure as failure:
        raise InstructorError(f"the sandbox does not work here: {failure.message}\n"
                              f"{sandbox.output_tail()}") from None
    finally:
        sandbox.kill()


def summary_table(results: list[SubmissionResult]) -> str:
    width = max([len("student_id")] + [len(r.student_id) for r in results])
    lines = [f"{'student_id':<{width}}  {'score':>11}  status", "-" * (width + 28)]
    for r in results:
        lines.append(f"{r.student_id:<{width}}  {r.score:>5g} / {r.max_score:<3g}  {r.status}")
    graded = [r for r in results if r.status == "graded"]
    mean = sum(r.score for r in graded) / len(graded) if graded else 0.0
    lines.append(f"{len(graded)} of {len(results)} graded; mean score of graded {mean:.2f}")
    return "\n".join(lines)


def grade_batch(assignment: Assignment, submissions: Path, out: Path, jobs: int = 1,
                limits: Limits = Limits(), db_url: str | None = None, progress: bool = True,
                isolate: bool | None = None) -> list[SubmissionResult]:
    if jobs < 1:
        raise InstructorError("--jobs must be at least 1")
    with tempfile.TemporaryDirectory(prefix="autograder-") as scratch:
        batch = collect(submissions, Path(scratch))
        out.mkdir(parents=True, exist_ok=True)
        results: list[SubmissionResult] = []
        with Factory() as factory:
            isolation = preflight(factory, limits, isolate)
            if isolation != "full":
                print(f"WARNING: sandbox isolation is {isolation}. Run as root on Linux for the "
                      "full sandbox.", file=sys.stderr)
            slots: queue.Queue[int] = queue.Queue()
            for slot in range(jobs):
                slots.put(slot)

            def grade(submission) -> SubmissionResult:
                slot = slots.get()
                try:
                    return grade_submission(assignment, submission, factory, limits, slot, isolate)
                except Exception as error:  # a grader bug must not stop the batch
                    return not_graded(assignment, submission.student_id, "grader error",
                                      f"{type(error).__name__}: {error}")
                finally:
                    slots.put(slot)

            with ThreadPoolExecutor(max_workers=jobs) as pool:
                futures = [pool.submit(grade, submission) for submission in batch]
                for future in tqdm(as_completed(futures), total=len(futures), unit="submission",
                                   desc=f"grading {assignment.name}", disable=not progress,
                                   file=sys.stderr):
                    result = future.result()
                    write_student_files(out, assignment, result)
                    results.append(result)
    results.sort(key=lambda r: r.student_id)
    write_grades_csv(out, results)
    if db_url:
        record_gradebook(assignment, results, db_url)
    return results
