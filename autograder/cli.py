"""python -m autograder grade ASSIGNMENT SUBMISSIONS --out OUT [--jobs N]
python -m autograder release [ASSIGNMENT ...]
python -m autograder audit [--assignment A] [--student S]
python -m autograder export --format canvas|moodle|csv [--roster F] [--late-policy F]"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder.assignment import InstructorError, load_assignment
from autograder.batch import grade_batch, summary_table
from autograder.export import FORMATS, export, load_late_policy
from autograder.record import audit_trail, command_line, course_id, default_db_url
from autograder.release import release
from autograder.sandbox import Limits
from autograder.text import printable


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m autograder", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", required=True)
    grade = commands.add_parser("grade", help="grade a folder (or .zip) of submissions")
    grade.add_argument("assignment")
    grade.add_argument("submissions", type=Path)
    grade.add_argument("--out", type=Path, required=True)
    grade.add_argument("--jobs", type=int, default=1,
                       help="sandboxes at once on this machine (default 1)")
    grade.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="grade on a Dask distributed cluster instead: one task per "
                            "submission (see autograder/README.md)")
    grade.add_argument("--force", action="store_true",
                       help="regrade every submission, also those already graded "
                            "into OUT and unchanged since")
    grade.add_argument("--db", default=default_db_url(),
                       help="nbgrader gradebook URL (default: the course's gradebook.db)")
    grade.add_argument("--no-gradebook", action="store_true",
                       help="do not write the gradebook")
    grade.add_argument("--allow-unisolated", action="store_true",
                       help="where user namespaces are refused, grade with Landlock "
                            "only (no network, process or full file isolation)")
    defaults = Limits()
    grade.add_argument("--cell-timeout", type=float, default=defaults.cell_timeout)
    grade.add_argument("--call-timeout", type=float, default=defaults.call_timeout)
    grade.add_argument("--submission-timeout", type=float,
                       default=defaults.submission_timeout)
    grade.add_argument("--memory-mb", type=int, default=defaults.memory_mb)
    grade.add_argument("--no-progress", action="store_true")
    grade.add_argument("--late-policy", type=Path, metavar="FILE",
                       help="JSON late-penalty policy: the penalty is noted in the "
                            "feedback and applied by `export`")
    grade.add_argument("--formgrader-root", type=Path, metavar="COURSE",
                       help="also write submitted/ and autograded/ under this course "
                            "root, so that every formgrader view agrees with the gradebook")
    export = commands.add_parser("export", help="the gradebook as the CSV an LMS imports")
    export.add_argument("--format", choices=FORMATS, default="csv")
    export.add_argument("--db", default=default_db_url())
    export.add_argument("--assignment", action="append",
                        help="only this assignment (repeatable; default: all)")
    export.add_argument("--roster", type=Path, metavar="FILE",
                        help="CSV mapping student_id to the LMS's ids (see README)")
    export.add_argument("--late-policy", type=Path, metavar="FILE")
    export.add_argument("--out", type=Path, metavar="FILE", help="default: stdout")
    rel = commands.add_parser(
        "release", help="regenerate exercises/ from solutions/ with nbgrader")
    rel.add_argument("assignments", nargs="*", help="default: all")
    audit = commands.add_parser("audit", help="every score change this grader made")
    audit.add_argument("--db", default=default_db_url())
    audit.add_argument("--assignment")
    audit.add_argument("--student")
    return top


def _audit(args) -> int:
    rows = audit_trail(args.db, args.assignment, args.student)
    for row in rows:
        old = "-" if row["old"] is None else f"{row['old']:g}"
        where = f"{row['assignment']}  {row['student']}  {row['cell']}"
        change = f"{old} -> {row['new']:g}"
        print(printable(f"{row['time']}  {where}  {change}  {row['command']}"))
    print(f"{len(rows)} change(s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    try:
        if args.command == "release":
            for path in release(args.assignments):
                print(f"wrote {path}")
            return 0
        if args.command == "audit":
            return _audit(args)
        if args.command == "export":
            text = export(args.format, args.db, course_id(), args.out, args.roster,
                          args.late_policy, args.assignment)
            if args.out is None:
                sys.stdout.write(text)
            else:
                print(f"wrote {args.out}", file=sys.stderr)
            return 0
        assignment = load_assignment(args.assignment)
        if not args.submissions.exists():
            raise InstructorError(f"submissions folder {args.submissions} does not exist")
        policies = load_late_policy(args.late_policy)
        limits = Limits(cell_timeout=args.cell_timeout, call_timeout=args.call_timeout,
                        submission_timeout=args.submission_timeout, memory_mb=args.memory_mb)
        outcome = grade_batch(assignment, args.submissions, args.out, args.jobs, limits,
                              None if args.no_gradebook else args.db,
                              progress=not args.no_progress,
                              allow_unisolated=args.allow_unisolated,
                              command=command_line(argv), scheduler=args.scheduler,
                              force=args.force,
                              late_policy=policies.get(assignment.name),
                              formgrader_root=args.formgrader_root)
    except InstructorError as error:
        print(printable(f"error: {error}", keep_newlines=True), file=sys.stderr)
        return 2
    print(summary_table(outcome.results, outcome.isolation))
    if outcome.skipped:
        print(f"skipped {outcome.skipped} submission(s) already graded into {args.out} "
              "and unchanged since (--force regrades them)")
    if outcome.kept_rows:
        print(f"{outcome.kept_rows} row(s) of earlier runs kept in "
              f"{args.out}/grades.csv")
    print(printable(f"Results in {args.out}/grades.csv and "
                    f"{args.out}/students/<student_id>/"))
    return 0
