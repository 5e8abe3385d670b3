"""`make bench-grade`: stock `nbgrader autograde` against this grader on one mixed batch.

Both grade the same submissions into a gradebook made by `nbgrader generate_assignment`
(not timed). Each command is timed from start to exit, interpreter start-up included,
and reported as submissions per minute and as a ratio to stock nbgrader.
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder.assignment import COURSE_ROOT, InstructorError, load_assignment
from autograder.record import nbgrader_command, nbgrader_environment
from autograder.samples import notebook_name, solution_code, submission, write

KINDS = ("correct", "blank", "partial", "noisy")


def mixed_batch(assignment: str, count: int, folder: Path) -> None:
    """Correct, blank, half-done and correct-but-noisy submissions, in turn."""
    solution = solution_code(assignment)
    half = dict(list(solution.items())[: max(1, len(solution) // 2)])
    name = notebook_name(assignment)
    for index in range(count):
        kind = KINDS[index % len(KINDS)]
        notebook = {
            "correct": lambda: submission(assignment),
            "blank": lambda: submission(assignment, blank=True),
            "partial": lambda: submission(assignment, code=half, blank=True),
            "noisy": lambda: submission(assignment, extra=("print('working...')\nimport warnings\n"
                                                           "warnings.warn('noise')",)),
        }[kind]()
        write(notebook, folder, f"s{index:02d}_{kind}", name)


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                          env=nbgrader_environment())
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise InstructorError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return elapsed


def stock_scores(course: Path) -> dict[str, float]:
    done = nbgrader_command("export", course_root=course)
    if done.returncode != 0:
        raise InstructorError(f"nbgrader export failed:\n{done.stderr[-2000:]}")
    with open(course / "grades.csv") as stream:
        return {row["student_id"]: float(row["score"]) for row in csv.DictReader(stream)}


def our_scores(out: Path) -> dict[str, float]:
    with open(out / "grades.csv") as stream:
        return {row["student_id"]: float(row["score"]) for row in csv.DictReader(stream)}


def run(assignment: str, count: int) -> list[tuple[str, float]]:
    load_assignment(assignment)
    with tempfile.TemporaryDirectory(prefix="bench-grade-") as scratch:
        course = Path(scratch) / "course"
        shutil.copytree(COURSE_ROOT / "solutions" / assignment, course / "solutions" / assignment)
        shutil.copy(COURSE_ROOT / "nbgrader_config.py", course)
        prepared = nbgrader_command("generate_assignment", assignment, course_root=course)
        if prepared.returncode != 0:
            raise InstructorError(f"generate_assignment failed:\n{prepared.stderr[-2000:]}")
        fresh_gradebook = Path(scratch) / "gradebook-before.db"
        shutil.copy(course / "gradebook.db", fresh_gradebook)
        batch = Path(scratch) / "batch"
        mixed_batch(assignment, count, batch)
        for student in batch.iterdir():
            shutil.copytree(student, course / "submitted" / student.name / assignment)

        timings = [("stock nbgrader autograde", timed(
            [sys.executable, "-m", "nbgrader", "autograde", assignment], course))]
        expected = stock_scores(course)
        for jobs in (1, 2):
            gradebook = Path(scratch) / f"gradebook-jobs{jobs}.db"
            shutil.copy(fresh_gradebook, gradebook)
            out = Path(scratch) / f"out-jobs{jobs}"
            timings.append((f"python -m autograder grade --jobs {jobs}", timed(
                [sys.executable, "-m", "autograder", "grade", assignment, str(batch), "--out",
                 str(out), "--jobs", str(jobs), "--db", f"sqlite:///{gradebook}", "--no-progress"],
                COURSE_ROOT)))
            differ = {s for s, score in our_scores(out).items() if expected.get(s) != score}
            if differ:
                print(f"note: --jobs {jobs} scored {sorted(differ)} differently from stock nbgrader")
    return timings


def report(assignment: str, count: int, timings: list[tuple[str, float]]) -> str:
    baseline = count / timings[0][1] * 60
    lines = [f"Grading {count} mixed submissions ({', '.join(KINDS)}) of {assignment} on "
             f"{platform.node()} ({os.cpu_count()} CPUs, {platform.processor() or platform.machine()})",
             f"{'command':<40} {'seconds':>8} {'subs/min':>9} {'vs stock':>9}"]
    for label, seconds in timings:
        rate = count / seconds * 60
        lines.append(f"{label:<40} {seconds:>8.1f} {rate:>9.1f} {rate / baseline:>8.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assignment", default="ex2_multihead")
    parser.add_argument("--count", type=int, default=20)
    args = parser.parse_args(argv)
    try:
        timings = run(args.assignment, args.count)
    except InstructorError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report(args.assignment, args.count, timings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
