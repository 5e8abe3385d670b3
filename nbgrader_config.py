"""nbgrader configuration for this course (read by every `nbgrader` command run here).

Source notebooks with solutions and hidden tests live in solutions/<assignment>/;
`nbgrader generate_assignment <assignment>` writes the learners' copies to
exercises/<assignment>/. Submitted, autograded and feedback folders and the
gradebook keep nbgrader's default names under this directory.
See autograder/README.md for the whole workflow.
"""
import os

c = get_config()  # noqa: F821 - provided by traitlets when nbgrader loads this file

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "self-attention-hands-on"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
# Every exercise imports torch; give a cell more than the 30 s default on slow laptops.
c.Execute.timeout = 120

# Stock `nbgrader autograde` must not overwrite scores the hardened grader recorded,
# and stock `generate_feedback` must not show hidden tests
# (see autograder/nbgrader_guard.py).
import sys  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    from autograder.nbgrader_guard import install
except ImportError as error:  # without the guard, stock autograde could overwrite marks
    raise SystemExit(f"nbgrader_config.py needs the course's autograder package "
                     f"({error}): run nbgrader from the course root, or put it on "
                     "PYTHONPATH") from None
install(c)
