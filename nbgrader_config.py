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
