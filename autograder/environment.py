"""``python -m autograder.environment``: make the grader importable in the course's venv.

``make install`` runs this. The grader is deliberately not part of the course package
(the wheel students install must not carry it), yet processes started from the course
environment need it: a plain ``dask worker`` on a grading host unpickles
``autograder.executors.grade_task``, and nbgrader loads ``autograder.nbgrader_guard``
from ``nbgrader_config.py``. A ``.pth`` file in the venv's site-packages puts this
course's root on their path, with no hand-set PYTHONPATH and whatever folder they start
in. Learners' code never sees it: a sandbox mounts only ``attention_course_learner``.
"""
from __future__ import annotations

import sysconfig
from pathlib import Path

COURSE_ROOT = Path(__file__).resolve().parents[1]
PTH_NAME = "attention_course_grader.pth"


def pth_file() -> Path:
    return Path(sysconfig.get_paths()["purelib"]) / PTH_NAME


def install() -> Path:
    path = pth_file()
    path.write_text(f"{COURSE_ROOT}\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    print(f"the grader is importable from this environment: {install()}")
