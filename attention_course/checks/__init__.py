"""Checks shared by the exercise notebooks and the autograder.

A test cell in an exercise calls, for example, ``ex1.check_softmax_matches_torch(softmax)``.
In the learner's notebook ``softmax`` is their own function; in the autograder it is a
stand-in that forwards each call to a sandboxed process and brings back plain data.
Either way the check compares that data with a reference computed on the checking side
and explains which known misconception a wrong answer matches.
"""

from attention_course.checks import tutor as _tutor

_tutor.install()
