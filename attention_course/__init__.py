"""Code shared by the chapters of *Self-Attention, Hands-On*.

Each chapter imports what it needs from here instead of copying it, so a fix
lands everywhere at once.

The names below are imported on first use: ``attention_course.checks.ex1`` (the first
exercise) needs only NumPy, so importing the package must not import torch.
"""
from __future__ import annotations

import importlib

_LAZY = {
    "claim": "attention_course.claims",
    "show_source": "attention_course.display",
    "describe_device": "attention_course.runtime",
    "device": "attention_course.runtime",
    "generator_for": "attention_course.runtime",
    "seed_for": "attention_course.runtime",
    "set_seed": "attention_course.runtime",
    "start_chapter": "attention_course.runtime",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'attention_course' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
