"""A failing check reads like a tutor in any Jupyter front end.

IPython's custom exception hook (``InteractiveShell.set_custom_exc``) replaces the
traceback of a ``CheckFailed`` by its message: what was expected, which known mistake
the answer matches, the inputs' shapes, and, when the learner's own code raised, the
learner's lines. No frame of the course's checker is shown. The hook produces the
kernel's error message itself, so classic Notebook, JupyterLab, VS Code and nbclient
all show the same few lines, and the cell still counts as failed (nbgrader gives it 0).

A missing torch (exercises 2-4) gets the install instructions instead of a traceback.
Importing ``attention_course.checks`` inside IPython installs the hook; elsewhere (the
grader, pytest) nothing changes.
"""
from __future__ import annotations

MAX_LINES = 10
RED, RESET = "\x1b[31m", "\x1b[0m"


def failure_lines(error: BaseException) -> list[str]:
    """The failure as at most MAX_LINES lines: the message first, learner frames last."""
    lines = str(error).rstrip().splitlines() or [type(error).__name__]
    if len(lines) > MAX_LINES - 1:
        lines = lines[:MAX_LINES - 2] + [f"  … ({len(lines) - MAX_LINES + 2} more lines)"]
    return [f"{RED}✘ Test failed:{RESET} {lines[0]}"] + lines[1:]


def torch_missing_lines() -> list[str]:
    from attention_course import _links

    return [f"{RED}This exercise needs PyTorch (torch), which is not installed.{RESET}",
            f"  Laptop without a GPU (small CPU build): pip install torch --index-url "
            f"{_links.CPU_TORCH_INDEX}",
            "  With an NVIDIA GPU: pip install torch   (Colab has it already)",
            "  then restart the kernel and run the notebook again."]


def _show(shell, etype, value, tb, tb_offset=None):
    """IPython's custom exception handler. IPython ignores what it returns, so it shows the
    lines itself through ``_showtraceback``, the method each front end's shell overrides
    (ipykernel sends them as the cell's error output)."""
    from attention_course.checks.core import CheckFailed

    if isinstance(value, CheckFailed):
        lines = failure_lines(value)
    elif isinstance(value, ModuleNotFoundError) and (value.name or "").split(".")[0] == "torch":
        lines = torch_missing_lines()
    else:
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
        return None
    shell._showtraceback(etype, value, lines)
    return lines


def install(shell=None) -> bool:
    """Use the tutor's messages in this IPython shell; False outside IPython."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return False
    from attention_course.checks.core import CheckFailed

    shell.set_custom_exc((CheckFailed, ModuleNotFoundError), _show)
    return True
