"""Claims that print how close they came.

A chapter states a measured result as
``claim("held-out accuracy", acc, at_least=0.95)``. It prints the value next to what
it needs ("held-out accuracy 0.973, needs ≥ 0.95"), and fails like an ``assert`` when
the value misses. The printed margin tells a reader how firm the claim is; a claim
that only just holds on one machine is an anecdote.

When the environment variable ``COURSE_CLAIMS_LOG`` names a file, every claim is also
appended there as one JSON line, which is how ``make claims`` collects the tightest
margin of each chapter across seeds and CPU dispatch levels. With
``COURSE_CLAIMS_SURVEY=1`` a failed claim is logged and printed but does not stop the
chapter, so one run surveys every claim (``python -m tools.claims --survey``); the book
build never sets it.
"""
from __future__ import annotations

import json
import math
import os

LOG_VARIABLE = "COURSE_CLAIMS_LOG"
SURVEY_VARIABLE = "COURSE_CLAIMS_SURVEY"
_BOUNDS = {"at_least": "≥", "above": ">", "at_most": "≤", "below": "<"}


class ClaimFailed(AssertionError):
    """A chapter's claim did not hold for this run."""


def _number(value: float) -> str:
    if value == 0 or math.isinf(value) or math.isnan(value):
        return str(value)
    if 1e-3 <= abs(value) < 1e5:
        return f"{value:.3g}" if abs(value) < 1 else f"{value:.4g}"
    return f"{value:.2e}"


def relative_margin(value: float, bound: float, kind: str) -> float:
    """How far ``value`` is inside its bound, as a fraction of it (< 0: outside)."""
    gap = value - bound if kind in ("at_least", "above") else bound - value
    return gap / abs(bound) if bound != 0 else gap


def claim(what: str, value, **bounds: float) -> float:
    """Check ``value`` against one or two bounds, print it with them, return it.

    Bounds are keyword arguments: ``at_least``, ``above``, ``at_most``, ``below``
    (e.g. ``claim("entropy", h, above=0.5, below=2.0)``).
    """
    unknown = set(bounds) - set(_BOUNDS)
    if not bounds or unknown:
        raise TypeError(f"give bounds among {sorted(_BOUNDS)}, got {sorted(bounds)}")
    value = float(value)
    margins = {}
    holds = not math.isnan(value)
    for kind, bound in bounds.items():
        bound = float(bound)
        margins[kind] = relative_margin(value, bound, kind)
        strict = kind in ("above", "below")
        inside = margins[kind] > 0 if strict else margins[kind] >= 0
        holds = holds and inside
    needs = " and ".join(f"{_BOUNDS[k]} {_number(float(b))}" for k, b in bounds.items())
    line = f"{what} {_number(value)}, needs {needs}"
    print(("✔ " if holds else "✘ ") + line)
    _log(what, value, bounds, min(margins.values()), holds)
    if not holds and os.environ.get(SURVEY_VARIABLE) != "1":
        raise ClaimFailed(line)
    return value


def _log(what: str, value: float, bounds: dict, margin: float, holds: bool) -> None:
    path = os.environ.get(LOG_VARIABLE)
    if not path:
        return
    record = {"claim": what, "value": value, "bounds": bounds, "margin": margin,
              "holds": holds}
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")
