"""Code shared by the chapters of *Self-Attention, Hands-On*.

Each chapter imports what it needs from here instead of copying it, so a fix
lands everywhere at once.
"""
from attention_course.runtime import describe_device, device, set_seed, start_chapter
from attention_course.display import show_source

__all__ = ["device", "describe_device", "set_seed", "show_source", "start_chapter"]
