"""python -m autograder grade ASSIGNMENT SUBMISSIONS --out OUT [--jobs N]
python -m autograder release [ASSIGNMENT ...]"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder.assignment import InstructorError, load_assignment
from autograder.batch import grade_batch, summary_table
from autograder.record import default_db_url
from autograder.release import release
from autograder.sandbox import Limits


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m autograder", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", required=True)
    grade = commands.add_parser("grade", help="grade a folder (or .zip) of submissions")
    grade.add_argument("assignment")
    grade.add_argument("submissions", type=Path)
    grade.add_argument("--out", type=Path, required=True)
    grade.add_argument("--jobs", type=int, default=1, help="sandboxes at once (default 1)")
    grade.add_argument("--db", default=default_db_url(),
                       help="nbgrader gradebook URL (default: the course's gradebook.db)")
    grade.add_argument("--no-gradebook", action="store_true", help="do not write the gradebook")
    defaults = Limits()
    grade.add_argument("--cell-timeout", type=float, default=defaults.cell_timeout)
    grade.add_argument("--call-timeout", type=float, default=defaults.call_timeout)
    grade.add_argument("--submission-timeout", type=float, default=defaults.submission_timeout)
    grade.add_argument("--memory-mb", type=int, default=defaults.memory_mb)
    grade.add_argument("--no-progress", action="store_true")
    rel = commands.add_parser("release", help="regenerate exercises/ from solutions/ with nbgrader")
    rel.add_argument("assignments", nargs="*", help="default: all")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "release":
            for path in release(args.assignments):
                print(f"wrote {path}")
            return 0
        assignment = load_assignment(args.assignment)
        if not args.submissions.exists():
            raise InstructorError(f"submissions folder {args.submissions} does not exist")
        limits = Limits(cell_timeout=args.cell_timeout, call_timeout=args.call_timeout,
                        submission_timeout=args.submission_timeout, memory_mb=args.memory_mb)
        results = grade_batch(assignment, args.submissions, args.out, args.jobs, limits,
                              None if args.no_gradebook else args.db,
                              progress=not args.no_progress)
    except InstructorError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary_table(results))
    print(f"Results in {args.out}/grades.csv and {args.out}/<student_id>/")
    return 0
