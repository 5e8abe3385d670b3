"""The sandbox factory: ``python -m autograder.sandbox.factory``, one per batch.

It imports NumPy, torch and IPython once, then forks a fresh sandbox for every
submission, so no learner waits for those imports. It holds nothing but libraries:
no tests, no solutions, no grades.

Each fork ("boot", still root) isolates itself when it can — with root on Linux, CI
included: new mount, network, IPC and PID namespaces; a tmpfs root holding only
the Python installation and the course package, read-only — then forks the worker,
which becomes PID 1 of the new PID namespace, chroots, sets its limits, drops to an
unprivileged uid and serves requests. Boot stays outside as root, tells the grader
both pids, waits, and reports the worker's exit code on the status pipe.

Without root or namespaces it degrades to limits and a private working directory, and
says so in its first message (the grader prints it as a warning).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
import traceback

import IPython.core.interactiveshell  # noqa: F401 - preloaded for every sandbox

from attention_course.checks import wire
from autograder.sandbox import frames, isolation, worker

try:
    import torch  # noqa: F401 - preloaded: most exercises import it
except ImportError:
    pass

EXIT_STATUS = struct.Struct(">i")


def _hello(answer_fd: int, worker_pid: int, isolation_note: str) -> None:
    message = {"pid": worker_pid, "boot": os.getpid(), "isolation": isolation_note}
    frames.write_all(answer_fd, wire.encode_frame(message))


def _exit_code(status: int) -> int:
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def run_isolated(config: dict, request_fd: int, answer_fd: int, status_fd: int) -> None:
    child = os.fork()
    if child == 0:
        os.close(status_fd)
        try:
            isolation.enter_root(config["root"])
            isolation.set_limits(config["limits"], processes=True)
            isolation.drop_privileges(config["uid"], config["gid"])
            isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
        except BaseException:  # noqa: B036 - report any setup failure, then stop
            traceback.print_exc()
            os._exit(70)
        worker.serve(request_fd, answer_fd)
        os._exit(0)
    _hello(answer_fd, child, "full")
    os.close(request_fd)
    os.close(answer_fd)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(child, signal.SIGKILL))
    _, status = os.waitpid(child, 0)
    os.write(status_fd, EXIT_STATUS.pack(_exit_code(status)))


def run_degraded(config: dict, request_fd: int, answer_fd: int, reason: str) -> None:
    """No namespaces: the learner's code runs with our uid, so only limits and cwd apply."""
    os.chdir(config["workdir"])
    isolation.set_limits(config["limits"], processes=False)
    _hello(answer_fd, os.getpid(), f"partial ({reason}): no network, file or process "
                                   "isolation, no uid change")
    worker.serve(request_fd, answer_fd)


def boot(config: dict, request_fd: int, answer_fd: int, status_fd: int) -> None:
    if not config["isolate"]:
        run_degraded(config, request_fd, answer_fd, "isolation switched off")
        return
    try:
        isolation.enter_namespaces()
        isolation.build_root(config["root"], config["read_only"], config["uid"], config["gid"],
                             config["limits"]["tmpfs_mb"])
    except OSError as error:
        run_degraded(config, request_fd, answer_fd, f"no namespaces: {error}")
        return
    run_isolated(config, request_fd, answer_fd, status_fd)


def _start_child(config: dict, fds: list[int]) -> None:
    request_fd, answer_fd, status_fd, output_fd = fds
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    os.close(null)
    os.close(output_fd)
    try:
        boot(config, request_fd, answer_fd, status_fd)
    except BaseException:  # noqa: B036 - whatever happens, never return into the factory loop
        traceback.print_exc()
        os._exit(70)
    os._exit(0)


def serve(connection: socket.socket) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(connection, 1 << 16, 4)
        except OSError:
            return
        if not message:
            return
        if len(fds) != 4:
            for fd in fds:
                os.close(fd)
            continue
        if os.fork() == 0:
            connection.close()
            _start_child(json.loads(message), fds)
        for fd in fds:
            os.close(fd)


def main() -> None:
    isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
    serve(socket.socket(fileno=int(sys.argv[1])))


if __name__ == "__main__":
    main()
