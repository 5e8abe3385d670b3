"""The learner's side of the grading boundary: the only course code a sandbox can see.

A submission's code runs next to this package, so everything here must be safe to hand
to a hostile learner: it holds no tests, no reference answers and no grades. It is
the plain-data wire format (``wire``), framing on pipes (``frames``), the call and
attribute operations that answer the checks (``remote``) and the loop that runs the
learner's cells and serves those operations (``worker``).

The checks (``attention_course.checks``) and the grader (``autograder``) stay on the
trusted side: they import this package to speak the same protocol, never the reverse.
In class, ``remote.bind`` runs the same operations in the learner's own process, so a
test cell says exactly what the grader would say.
"""
