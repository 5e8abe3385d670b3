"""Code shared by the chapters of *Self-Attention, Hands-On*.

Each chapter imports what it needs from here instead of copying it, so a fix
lands everywhere at once.
"""
from attention_course.claims import claim
from attention_course.display import show_source
from attention_course.runtime import (
    describe_device,
    device,
    generator_for,
    seed_for,
    set_seed,
    start_chapter,
)

__all__ = ["claim", "describe_device", "device", "generator_for", "seed_for", "set_seed",
           "show_source", "start_chapter"]
