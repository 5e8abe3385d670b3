"""A grader for the course's nbgrader assignments that learners' code cannot fool.

See autograder/README.md; the command line is in autograder.cli.
"""
