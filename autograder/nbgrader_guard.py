"""Keeps stock nbgrader from undoing what the hardened grader did (nbgrader_config.py).

* ``nbgrader autograde`` (and formgrader's "autograde" button) runs the tests inside
  the learner's own kernel, where a submission can fake its marks. For a student whose
  scores for an assignment were recorded by ``python -m autograder grade`` (table
  ``autograder_recorded`` in the gradebook), it now stops before touching the
  gradebook, with an error that points to the grader. Set
  ``AUTOGRADER_ALLOW_STOCK_AUTOGRADE=1`` to overwrite them on purpose.
* ``nbgrader generate_feedback`` renders the autograded notebook, hidden tests and
  tracebacks through them included; ``HideHiddenTests`` removes the hidden part of
  every cell and every output line that quotes it, and keeps only the last line of
  each traceback (the check's message).

Importing this module must stay cheap: every nbgrader command loads the config.
"""
from __future__ import annotations

import os
import re

from nbconvert.preprocessors import Preprocessor

RECORDED_TABLE = "autograder_recorded"
ALLOW_ENV = "AUTOGRADER_ALLOW_STOCK_AUTOGRADE"
HIDDEN = re.compile(r"^[ \t]*#+[ \t]*BEGIN HIDDEN TESTS.*?"
                    r"^[ \t]*#+[ \t]*END HIDDEN TESTS[^\n]*\n?",
                    re.MULTILINE | re.DOTALL)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def recorded_by_grader(db_url: str, assignment: str, student: str) -> bool:
    import sqlalchemy as sa

    engine = sa.create_engine(db_url)
    try:
        if not sa.inspect(engine).has_table(RECORDED_TABLE):
            return False
        query = sa.text(f"SELECT 1 FROM {RECORDED_TABLE} WHERE assignment = :a AND "
                        "student = :s LIMIT 1")
        with engine.connect() as connection:
            row = connection.execute(query, {"a": assignment, "s": student}).first()
        return row is not None
    finally:
        engine.dispose()


def refusal(assignment: str, student: str) -> str:
    return (f"{student}'s scores for {assignment} were recorded by the hardened grader "
            f"(python -m autograder grade {assignment} ...); stock `nbgrader "
            "autograde` runs the tests in the learner's own kernel and would overwrite "
            "them, so it stops here. Regrade with `python -m autograder grade`, or set "
            f"{ALLOW_ENV}=1 to overwrite.")


def _guard_autograde() -> None:
    from nbgrader.converters.autograde import Autograde
    from nbgrader.converters.base import NbGraderException

    if getattr(Autograde.init_assignment, "guarded", False):
        return
    original = Autograde.init_assignment

    def init_assignment(self, assignment_id: str, student_id: str) -> None:
        allowed = os.environ.get(ALLOW_ENV) == "1"
        if not allowed and recorded_by_grader(self.coursedir.db_url, assignment_id,
                                              student_id):
            message = refusal(assignment_id, student_id)
            self.log.error(message)
            raise NbGraderException(message)
        original(self, assignment_id, student_id)

    init_assignment.guarded = True
    Autograde.init_assignment = init_assignment


def hidden_lines(source: str) -> set[str]:
    lines = set()
    for region in HIDDEN.findall(source):
        lines |= {line.strip() for line in region.splitlines()[1:-1] if line.strip()}
    return lines


def _scrub(text: str, secret: set[str]) -> str:
    return "\n".join(line for line in text.split("\n")
                     if not any(hidden in ANSI.sub("", line) for hidden in secret))


class HideHiddenTests(Preprocessor):
    """Feedback shows no hidden test code, in sources or in outputs."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        secret = hidden_lines(cell.source)
        cell.source = HIDDEN.sub("", cell.source)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                last = f"{output.get('ename', '')}: {output.get('evalue', '')}"
                output["traceback"] = [_scrub(last, secret)]
                output["evalue"] = _scrub(str(output.get("evalue", "")), secret)
            elif output.get("output_type") == "stream":
                output["text"] = _scrub(output.get("text", ""), secret)
            for kind, value in list(output.get("data", {}).items()):
                if isinstance(value, str) and kind.startswith("text/"):
                    output["data"][kind] = _scrub(value, secret)
        return cell, resources


def install(c) -> None:
    """Called from nbgrader_config.py with its config object."""
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import GetGrades

    _guard_autograde()
    c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests,
                                        CSSHTMLHeaderPreprocessor]
