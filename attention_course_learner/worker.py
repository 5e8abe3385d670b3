"""The loop inside the sandbox: run the learner's cells, then answer the checks' calls.

Everything here runs with the learner's privileges (none) and is assumed compromised
once the first cell has run: the grader trusts nothing that comes back except as
plain data checked by ``attention_course_learner.wire``.
"""
from __future__ import annotations

import os

import IPython
import numpy  # noqa: F401 - imported before the learner's code so its first import is cheap
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from attention_course_learner import frames, remote, wire

HIDDEN_DIRS = (os.path.dirname(IPython.__file__), os.path.dirname(frames.__file__))


def make_shell() -> InteractiveShell:
    """An IPython shell, so magics and `display` in learner cells work as in a notebook:
    the process's one, so a sandbox gets the shell its factory built before forking."""
    config = Config()
    config.HistoryManager.enabled = False
    config.InteractiveShell.colors = "nocolor"
    shell = InteractiveShell.instance(config=config)
    # No GUI event loop here: `%matplotlib inline` must still work as in a notebook.
    shell.enable_gui = lambda gui=None: None
    return shell


def run_cell(shell: InteractiveShell, source) -> bytes:
    if type(source) is not str:
        return remote.error_frame("ProtocolError", "cell source must be text")
    result = shell.run_cell(source, store_history=False)
    error = result.error_before_exec or result.error_in_exec
    if error is None:
        return wire.encode_frame({"ok": None})
    return remote.exception_frame(error, HIDDEN_DIRS)


def serve(request_fd: int, answer_fd: int) -> None:
    """Answer requests until the grader closes the pipe: "exec" runs a cell, the rest
    (calls, attribute reads) go to a ``remote.Dispatcher`` over the cells' names."""
    shell = make_shell()
    dispatcher = remote.Dispatcher(shell.user_ns)
    while True:
        try:
            payload, json_size = frames.read_frame(request_fd)
        except (frames.Closed, wire.WireError, OSError):
            os._exit(0)
        try:
            request = dispatcher.decode(payload, json_size)
        except wire.WireError as error:
            answer = remote.error_frame("ProtocolError", str(error))
        else:
            if type(request) is dict and request.get("op") == "exec":
                answer = run_cell(shell, request.get("source"))
            else:
                answer = dispatcher.respond(request)
        try:
            frames.write_all(answer_fd, answer)
        except (frames.Closed, OSError):
            os._exit(0)
