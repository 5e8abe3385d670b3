"""Sandboxed processes (a fresh one for every test), seen from the grader.

A submission's ``Host`` asks the batch's ``Factory`` (``autograder.sandbox.factory``,
see there for the isolation) for the process that holds the namespaces its sandboxes
share; ``Sandbox.start()`` asks that host for a fresh process. Requests go out and
answers come back as frames on two pipes, each read with a deadline. The learner's
output goes to a third pipe that is drained with a size cap. Killing the sandbox
kills its PID 1, which takes every process it started with it.
"""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from attention_course_learner import frames, wire
from autograder.status import Status

COURSE_ROOT = Path(__file__).resolve().parents[2]
SANDBOX_GID = 65534  # nogroup
SANDBOX_UID_BASE = 61000  # slot k runs as uid SANDBOX_UID_BASE + k (no login, no files)
OUTPUT_KEPT = 8192


@dataclass(frozen=True)
class Limits:
    """Time, memory and size limits for one submission (seconds and MiB)."""

    startup_timeout: float = 60.0
    cell_timeout: float = 30.0
    call_timeout: float = 10.0
    submission_timeout: float = 300.0
    cpu_seconds: int = 300
    memory_mb: int = 4096
    max_processes: int = 64
    max_file_mb: int = 16
    tmpfs_mb: int = 64
    max_answer_mb: int = 64


class SandboxFailure(Exception):
    """The sandboxed process timed out, died or broke the protocol.

    ``status`` is Status.TIMEOUT or Status.KERNEL_DIED; ``message`` is for the learner.
    """

    def __init__(self, status: Status, message: str):
        super().__init__(message)
        self.status = status
        self.message = message

    def about(self, label: str) -> "SandboxFailure":
        return SandboxFailure(self.status, f"{label} {self.message}")


class IsolationUnavailable(SandboxFailure):
    """The sandbox could not isolate itself as asked (the instructor's problem)."""

    def __init__(self, reason: str):
        super().__init__(Status.KERNEL_DIED, f"could not isolate: {reason}")
        self.reason = reason


FULL, UNISOLATED = "full", "unisolated"


def sandbox_identity(slot: int) -> tuple[int, int]:
    """The (uid, gid) the learner's process has outside its user namespace."""
    if os.geteuid() == 0:
        return SANDBOX_UID_BASE + slot, SANDBOX_GID
    return os.geteuid(), os.getegid()


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "stopped the Python process"
    if code > 128:
        name = signal.Signals(code - 128).name if code - 128 in signal.valid_signals() else "?"
        what = " (a segmentation fault)" if name == "SIGSEGV" else ""
        return f"stopped the Python process: it was killed by {name}{what}"
    return f"stopped the Python process: it exited with status {code} (sys.exit / os._exit?)"


def _send_kill(pidfd: int) -> None:
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _died(message: str) -> SandboxFailure:
    return SandboxFailure(Status.KERNEL_DIED, message)


def _timed_out(seconds: float) -> SandboxFailure:
    return SandboxFailure(Status.TIMEOUT,
                          f"did not finish within {seconds:g} s (an endless loop?)")


def _environment() -> dict:
    """All a sandbox sees of the environment (the factory passes it on to every fork)."""
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": "/home/student",
        "LANG": "C.UTF-8", "PYTHONHASHSEED": "0", "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp/matplotlib",
        "IPYTHONDIR": "/tmp/ipython",
    }


class Factory:
    """The process that forks sandboxes (``autograder.sandbox.factory``); one per batch.

    ``preload``: the modules its sandboxes will import (an assignment's ``preload``).
    Only these are imported up front: a fork copies the factory's page tables and
    the exit frees them, so a factory holding torch for an exercise that needs only
    NumPy would cost every sandbox several times what its own work does.
    """

    def __init__(self, preload: tuple[str, ...] = ()):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.connection = ours
        self.lock = threading.Lock()
        self.preload = tuple(preload)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "autograder.sandbox.factory", str(theirs.fileno()),
             *self.preload],
            stdin=subprocess.DEVNULL, pass_fds=(theirs.fileno(),), cwd=COURSE_ROOT,
            env=_environment(), start_new_session=True)
        theirs.close()

    def spawn(self, config: dict, fds: list[int]) -> None:
        with self.lock:
            socket.send_fds(self.connection, [json.dumps(config).encode()], fds)

    def close(self) -> None:
        self.connection.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> "Factory":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Host:
    """A submission's sandboxes' parent (``factory.host``), made once per submission.

    It holds the namespaces and root that the submission's sandboxes share and forks
    each sandbox into namespaces and a /tmp of its own; it never runs learner code.
    One sandbox at a time: it starts the next only when the last has ended entirely.
    """

    def __init__(self, factory: Factory, limits: Limits, slot: int = 0,
                 mode: str = FULL):
        self.factory = factory
        self.limits = limits
        self.uid, self.gid = sandbox_identity(slot)
        self.mode = mode
        self.connection: socket.socket | None = None
        self.pidfd: int | None = None
        self.sandboxes = 0
        self.tempdir = tempfile.mkdtemp(prefix="autograder-sandbox-")

    def start(self) -> None:
        """Fork the host, unless it runs; IsolationUnavailable where it cannot
        isolate as asked."""
        if self.connection is not None:
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        root, staging = f"{self.tempdir}/root", f"{self.tempdir}/staging"
        os.chmod(self.tempdir, 0o711)  # the sandbox's own uid mounts its root in there
        os.makedirs(root, exist_ok=True)
        os.makedirs(staging, exist_ok=True)
        config = {"mode": self.mode, "root": root, "staging": staging, "uid": self.uid,
                  "gid": self.gid, "limits": asdict(self.limits)}
        try:
            self.factory.spawn(config, [theirs.fileno()])
        except OSError as error:
            ours.close()
            why = f"could not start: the sandbox factory stopped ({error})"
            raise _died(why) from None
        finally:
            theirs.close()
        try:
            self.pidfd = self._greeting(ours)
        except SandboxFailure:
            ours.close()
            raise
        self.connection = ours

    def _greeting(self, connection: socket.socket) -> int:
        """The host's pidfd, once it says it has isolated itself."""
        timeout = self.limits.startup_timeout
        if not select.select([connection], [], [], timeout)[0]:
            raise SandboxFailure(Status.TIMEOUT, "could not start: the sandbox host "
                                                 f"did not answer within {timeout:g} s")
        try:
            reply = json.loads(connection.recv(1 << 16) or b"null")
        except (OSError, ValueError):
            reply = None
        if type(reply) is dict and type(reply.get("error")) is str:
            raise IsolationUnavailable(reply["error"][:2000])
        if not (type(reply) is dict and type(reply.get("pid")) is int):
            raise _died("could not start: the sandbox host gave no greeting")
        try:
            return os.pidfd_open(reply["pid"])
        except ProcessLookupError:
            raise _died("could not start: the sandbox host stopped") from None

    def spawn(self, fds: list[int], workdir: str) -> None:
        """Ask for a sandbox on these pipes (request, answer, status, output)."""
        self.start()
        try:
            message = json.dumps({"workdir": workdir}).encode()
            socket.send_fds(self.connection, [message], fds)
        except OSError as error:
            why = f"could not start: the sandbox host stopped ({error})"
            raise _died(why) from None
        self.sandboxes += 1

    def close(self) -> None:
        """End the host and, with it, its namespaces; wait until it is gone. Told by
        the closed connection, it reaps its last sandbox first (so that sandbox's CPU
        time is counted); killed if it has not ended within 5 s."""
        if self.connection is not None:
            self.connection.close()
            self.connection = None
        if self.pidfd is not None:
            if not select.select([self.pidfd], [], [], 5)[0]:
                _send_kill(self.pidfd)
                select.select([self.pidfd], [], [], 5)
            os.close(self.pidfd)
            self.pidfd = None
        shutil.rmtree(self.tempdir, ignore_errors=True)

    def __enter__(self) -> "Host":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Sandbox:
    """One learner's process: requests in, answers out, output drained, killable."""

    def __init__(self, host: Host):
        self.host = host
        self.limits = host.limits
        self.isolation = ""
        self.pidfds: list[int] = []
        self.boot_pid: int | None = None
        self.worker_pid: int | None = None
        self.output = bytearray()
        self._fds: list[int] = []
        self._drain: threading.Thread | None = None
        self._workdir = ""

    def start(self) -> None:
        request_read, self.request_fd = os.pipe()
        self.answer_fd, answer_write = os.pipe()
        self.status_fd, status_write = os.pipe()
        output_read, output_write = os.pipe()
        self._fds = [self.request_fd, self.answer_fd, self.status_fd]
        if self.host.mode == UNISOLATED:  # the learner's writable folder, outside
            self._workdir = f"{self.host.tempdir}/work{self.host.sandboxes}"
            os.makedirs(self._workdir, mode=0o700)
        child_fds = [request_read, answer_write, status_write, output_write]
        try:
            self.host.spawn(child_fds, self._workdir)
        except BaseException:
            os.close(output_read)
            raise
        finally:
            for fd in child_fds:
                os.close(fd)
        os.set_blocking(self.request_fd, False)
        self._drain = threading.Thread(target=self._drain_output, args=(output_read,), daemon=True)
        self._drain.start()
        try:
            hello = self._receive(self.limits.startup_timeout)
        except SandboxFailure as failure:
            raise SandboxFailure(failure.status, f"could not start: {failure.message}\n"
                                                 f"{self.output_tail()}") from None
        if type(hello) is dict and type(hello.get("error")) is str:
            raise IsolationUnavailable(hello["error"][:2000])
        if not (type(hello) is dict and type(hello.get("pid")) is int
                and type(hello.get("boot")) is int and type(hello.get("isolation")) is str):
            raise SandboxFailure(Status.KERNEL_DIED, "could not start: bad greeting")
        self.isolation = hello["isolation"]
        self.boot_pid = hello["boot"]
        self.worker_pid = hello["pid"]
        for pid in (hello["pid"], hello["boot"]):
            try:
                self.pidfds.append(os.pidfd_open(pid))
            except ProcessLookupError:
                raise _died("could not start\n" + self.output_tail()) from None

    def _drain_output(self, fd: int) -> None:
        """Keep the first 8 KiB of the learner's output and discard the rest.

        Draining to the end (rather than closing the pipe) means a noisy but correct
        submission never sees a broken stdout; a flood only costs its own time limit.
        """
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                if len(self.output) < OUTPUT_KEPT:
                    self.output += chunk[:OUTPUT_KEPT - len(self.output)]

    def output_tail(self) -> str:
        return bytes(self.output).decode("utf-8", "replace")[-2000:]

    def _receive(self, timeout: float):
        payload, json_size = self._read(time.monotonic() + timeout, timeout)
        try:
            return wire.decode_frame(payload, json_size)
        except wire.WireError as error:
            raise _died(f"sent back data that is not valid: {error}") from None

    def _read(self, deadline: float, timeout: float) -> tuple[bytes, int]:
        try:
            return frames.read_frame(self.answer_fd, deadline, self.limits.max_answer_mb << 20)
        except frames.Deadline:
            raise _timed_out(timeout) from None
        except frames.Closed:
            raise _died(_describe_exit(self._exit_code())) from None
        except wire.WireError as error:
            raise _died(f"sent back data that is not valid: {error}") from None

    def _exit_code(self) -> int | None:
        """The worker's exit code as boot reports it (isolated mode only)."""
        try:
            data = frames.read_exact(self.status_fd, 4, time.monotonic() + 2)
        except (frames.Deadline, frames.Closed):
            return None
        return int.from_bytes(data, "big", signed=True)

    def exchange(self, frame: bytes, timeout: float) -> tuple[bytes, int]:
        """Send one request and return the answer (payload, JSON length) within ``timeout``."""
        deadline = time.monotonic() + timeout
        try:
            frames.write_all(self.request_fd, frame, deadline)
        except frames.Deadline:
            raise _timed_out(timeout) from None
        except frames.Closed:
            raise _died(_describe_exit(self._exit_code())) from None
        return self._read(deadline, timeout)

    def kill(self, wait: bool = False) -> None:
        """Kill the worker; as PID 1 its whole namespace dies with it.

        Boot then reaps it and exits by itself. With full isolation only ``wait`` waits
        for that (a submission's last sandbox): the host starts the next sandbox only
        once this one has ended entirely. Unisolated, boot must first sweep up what
        the worker left, so we always wait.
        """
        full = self.isolation == FULL
        if self.pidfds:
            worker_fd, boot_fd = self.pidfds[0], self.pidfds[-1]
            _send_kill(worker_fd)
            if (wait or not full) and not select.select([boot_fd], [], [], 5)[0]:
                _send_kill(boot_fd)
            for pidfd in self.pidfds:
                os.close(pidfd)
            self.pidfds = []
        if self.boot_pid is not None and not full:
            try:
                os.killpg(self.boot_pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for fd in self._fds:
            os.close(fd)
        self._fds = []
        if self._drain is not None and (wait or not full):
            self._drain.join(timeout=5)  # else it ends by itself when boot has gone
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
