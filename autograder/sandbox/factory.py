"""The sandbox factory: ``python -m autograder.sandbox.factory``, one per batch.

It imports IPython, NumPy and whatever else the assignment's notebook imports
(torch, for most exercises) once, then forks whenever the grader asks, so no learner
waits for those imports. It holds nothing but libraries and the learner-side
package: it never imports the checks, the references or any grade, so a sandbox
forked from it has none of them in memory either.

A submission gets one fork, its host (``host``), which never runs learner code. In
"full" mode the host makes new user, mount, IPC and UTS namespaces and a read-only
root (``isolation``); these are the expensive part, and every test of the submission
shares them. For each test the host then forks "boot", which adds PID, mount, IPC
and network namespaces and a fresh /tmp of its own, and forks the worker: PID 1 of
the new PID namespace, which enters the root, sets its limits, drops every privilege
and serves requests (``attention_course_learner.worker``). Boot stays outside, tells
the grader both pids, waits, and reports the worker's exit code on the status pipe;
when the worker dies, everything it started dies with its namespace, and the host
forks the next boot only after that. So one test's process leaves nothing for the
next to find: no process, no file, no shared memory, no socket.

In "unisolated" mode (only with ``--allow-unisolated``) the worker is confined by
Landlock instead, and boot, a child subreaper, kills whatever the worker left behind.
A host or boot that cannot isolate as asked says why in its first message and stops:
it never falls back on its own.
"""
from __future__ import annotations

import functools
import gc
import importlib
import importlib.util
import json
import os
import signal
import socket
import struct
import sys
import tempfile
import time
import traceback

import IPython.core.interactiveshell  # noqa: F401 - preloaded for every sandbox

import attention_course_learner as learner_package
from attention_course_learner import frames, remote, wire, worker
from autograder.sandbox import isolation

EXIT_STATUS = struct.Struct(">i")
LEARNER_PACKAGE = os.path.dirname(os.path.abspath(learner_package.__file__))
COURSE_ROOT = os.path.dirname(LEARNER_PACKAGE)
# Course code that must not be importable in a sandbox even where a venv holds a
# non-editable install of it: the checks, the references and the grader.
TRUSTED_PACKAGES = ("attention_course", "autograder")


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def python_paths(scratch: str) -> list[str]:
    """Where this interpreter imports from: never a folder holding the course
    checkout or the sandbox's scratch space, nor one inside that scratch space."""
    found = []
    for entry in sys.path:
        path = os.path.realpath(entry or ".")
        if (os.path.isdir(path) and not _within(COURSE_ROOT, path)
                and not _within(scratch, path) and not _within(path, scratch)):
            found.append(os.path.abspath(entry or "."))
    return found


def read_only_paths(scratch: str) -> list[str]:
    """What the learner's process may read: system libraries, Python and its packages,
    and of the course only the learner-side package."""
    paths = ["/usr", "/bin", "/lib", "/lib64", "/etc/ld.so.cache", sys.base_prefix,
             sys.prefix, *python_paths(scratch), LEARNER_PACKAGE]
    return list(dict.fromkeys(p for p in paths if os.path.lexists(p)))


def hidden_paths(scratch: str) -> list[str]:
    """Installed copies of the trusted packages inside the paths above."""
    return [os.path.join(entry, name) for entry in python_paths(scratch)
            for name in TRUSTED_PACKAGES if os.path.isdir(os.path.join(entry, name))]


def _hello(answer_fd: int, **message) -> None:
    frames.write_all(answer_fd, wire.encode_frame(message))


def _exit_code(status: int) -> int:
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _forget_trusted_modules() -> None:
    """The learner's process needs none of the grader's modules: drop them."""
    for name in [n for n in sys.modules if n.split(".")[0] == "autograder"]:
        del sys.modules[name]


def _close_other_descriptors(keep: tuple[int, ...]) -> None:
    """Close every descriptor but stdio and ``keep``: nothing that boot or the host
    holds (the status pipe, the host's connection to the grader) may reach the
    learner's process."""
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 2**31 - 1)  # close_range(2): whatever the limit on open files


def _serve_as_worker(request_fd: int, answer_fd: int, setup) -> None:
    try:
        _close_other_descriptors((request_fd, answer_fd))
        setup()
    except BaseException:  # noqa: B036 - report any setup failure, then stop
        traceback.print_exc()
        os._exit(70)
    _forget_trusted_modules()
    worker.serve(request_fd, answer_fd)
    os._exit(0)


def run_isolated(plan: isolation.RootPlan, config: dict, request_fd: int,
                 answer_fd: int, status_fd: int) -> None:
    """One sandbox of a fully isolated submission: PID, mount, IPC and network
    namespaces of its own and a fresh /tmp, then the worker, PID 1 in there."""
    try:
        isolation.enter_sandbox_namespaces()
        isolation.fresh_scratch(config["root"], plan, config["limits"]["tmpfs_mb"])
    except OSError as error:
        _hello(answer_fd, error=str(error))
        return

    def setup():
        # A session of its own: boot runs with the same uid, and must not be in the
        # process group a learner's killpg(0) reaches.
        os.setsid()
        isolation.enter_root(config["root"])
        isolation.set_limits(config["limits"])
        isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
        isolation.drop_capabilities()
        isolation.install_seccomp()

    child = os.fork()
    if child == 0:
        _serve_as_worker(request_fd, answer_fd, setup)
    _hello(answer_fd, pid=child, boot=os.getpid(), isolation="full")
    _wait_and_report(child, request_fd, answer_fd, status_fd)


def _descendants() -> list[int]:
    """Our living descendants (a child subreaper inherits every orphan below it)."""
    found, queue = [], [os.getpid()]
    while queue:
        pid = queue.pop()
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as stream:
                children = [int(p) for p in stream.read().split()]
        except OSError:
            continue
        found += children
        queue += children
    return found


def _reap_everything(dedicated_uid: int | None) -> None:
    """Kill every process the worker started, however it detached."""
    if dedicated_uid is not None:
        killer = os.fork()
        if killer == 0:
            os.setresuid(dedicated_uid, dedicated_uid, dedicated_uid)
            for _ in range(1000):  # kill(-1) as that uid reaches all of its processes
                try:
                    os.kill(-1, signal.SIGKILL)
                except ProcessLookupError:
                    os._exit(0)
                time.sleep(0.001)
            os._exit(1)
        os.waitpid(killer, 0)
    for _ in range(1000):
        alive = _descendants()
        if not alive:
            break
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break


def run_unisolated(config: dict, request_fd: int, answer_fd: int,
                   status_fd: int) -> None:
    """Landlock instead of namespaces; refuses where processes could not be cleaned
    up."""
    root = os.geteuid() == 0
    abi = isolation.landlock_abi()
    if abi < 1 or (not root and abi < 6):
        _hello(answer_fd, error="unisolated grading needs Landlock (Linux 5.13+) to "
                                "confine files, and as a non-root user Landlock ABI 6 "
                                "(Linux 6.12+) to confine signals; this kernel has "
                                f"Landlock ABI {abi}")
        return
    dedicated = config["uid"] if root else None
    isolation.prctl(isolation.PR_SET_CHILD_SUBREAPER, 1)
    workdir = config["workdir"]
    if dedicated is not None:
        os.chown(workdir, config["uid"], config["gid"])
    def setup():
        os.chdir(workdir)
        for name in ("HOME", "MPLCONFIGDIR", "IPYTHONDIR"):
            os.environ[name] = workdir
        isolation.set_limits(config["limits"])
        if dedicated is not None:
            os.setgroups([])
            os.setresgid(config["gid"], config["gid"], config["gid"])
            os.setresuid(dedicated, dedicated, dedicated)
        isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
        scratch = os.path.dirname(workdir)
        readable = read_only_paths(scratch) + [f"/dev/{d}" for d in isolation.DEVICES]
        isolation.confine_unisolated(readable, [workdir])

    child = os.fork()
    if child == 0:
        _serve_as_worker(request_fd, answer_fd, setup)
    gaps = ", ".join(isolation.unisolated_gaps(abi))
    _hello(answer_fd, pid=child, boot=os.getpid(),
           isolation=f"unisolated (Landlock ABI {abi}; not isolated: {gaps})")
    _wait_and_report(child, request_fd, answer_fd, status_fd)
    _reap_everything(dedicated)


def _wait_and_report(child: int, request_fd: int, answer_fd: int,
                     status_fd: int) -> None:
    os.close(request_fd)
    os.close(answer_fd)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(child, signal.SIGKILL))
    _, status = os.waitpid(child, 0)
    try:
        os.write(status_fd, EXIT_STATUS.pack(_exit_code(status)))
    except BrokenPipeError:
        pass  # the grader killed the worker itself and wants no report


def _submission_setup(config: dict):
    """Isolate this host as the submission's sandboxes will share it; returns how
    each sandbox then runs (``run_isolated`` or ``run_unisolated``)."""
    if config["mode"] == "unisolated":
        return run_unisolated
    if isolation.syscall_numbers() is None:
        raise isolation.IsolationError(0, f"no system call table for {isolation.ARCH}")
    scratch = os.path.dirname(config["root"])
    isolation.enter_namespaces(config["uid"], config["gid"])
    plan = isolation.plan_root(read_only_paths(scratch), hidden_paths(scratch))
    isolation.become_inner()
    isolation.build_root(config["root"], plan, config["staging"])
    return functools.partial(run_isolated, plan)


def host(config: dict, connection: socket.socket) -> None:
    """A submission's sandboxes' parent. It never runs learner code: it makes the
    namespaces and root they share, then forks one sandbox per request (the grader
    sends its pipes), each only once the one before has ended entirely."""
    try:
        run = _submission_setup(config)
    except OSError as error:
        connection.send(json.dumps({"error": str(error)}).encode())
        return
    connection.send(json.dumps({"pid": os.getpid()}).encode())
    for message, fds in _requests(connection, 4):
        _reap(block=True)  # the last sandbox, and all it started, is gone
        if os.fork() == 0:
            connection.close()
            _start_sandbox(run, {**config, **json.loads(message)}, fds)
        for fd in fds:
            os.close(fd)
    _reap(block=True)


def _start_sandbox(run, config: dict, fds: list[int]) -> None:
    request_fd, answer_fd, status_fd, output_fd = fds
    os.setsid()
    isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    os.close(null)
    os.close(output_fd)
    try:
        run(config, request_fd, answer_fd, status_fd)
    except BaseException:  # noqa: B036 - never return into the host's loop
        traceback.print_exc()
        os._exit(70)
    os._exit(0)


def _start_host(config: dict, connection_fd: int) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    connection = socket.socket(fileno=connection_fd)
    try:
        host(config, connection)
    except BaseException:  # noqa: B036 - never return into the factory's loop
        try:
            error = traceback.format_exc()[-2000:]
            connection.send(json.dumps({"error": error}).encode())
        except OSError:
            pass
        os._exit(70)
    os._exit(0)


def _requests(connection: socket.socket, fd_count: int):
    """(message, descriptors) of each request that carries ``fd_count`` descriptors,
    until the grader closes the connection; others are dropped."""
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(connection, 1 << 16, fd_count)
        except OSError:
            return
        if not message:
            return
        if len(fds) == fd_count:
            yield message, fds
            continue
        for fd in fds:
            os.close(fd)


def _reap(block: bool) -> None:
    """Wait for finished children: waited-for, their CPU time counts in ours (and so
    in the grader's), where SIG_IGN would drop it. ``block``: until all have ended."""
    while True:
        try:
            pid, _ = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def serve(connection: socket.socket) -> None:
    for message, fds in _requests(connection, 1):
        if os.fork() == 0:
            connection.close()
            _start_host(json.loads(message), fds[0])
        os.close(fds[0])
        _reap(block=False)
    _reap(block=True)


def warm_up() -> None:
    """Do here, once, what every sandbox would otherwise do for itself on its first
    call: import NumPy's random module (seeding does, lazily) and find the library
    folders a traceback leaves out."""
    remote.seed_everything()
    remote.library_dirs()


def build_shell() -> None:
    """Build the IPython shell here, once: every fork inherits it unused (its
    ``make_shell`` finds it), where building it per sandbox was most of a sandbox's
    start-up. It is built in a private IPYTHONDIR, removed at once, so the host's
    /tmp/ipython is not touched; no sandbox sees that folder, nor needs it."""
    sandbox_dir = os.environ.get("IPYTHONDIR")
    with tempfile.TemporaryDirectory(prefix="autograder-ipython-") as private:
        os.environ["IPYTHONDIR"] = private
        worker.run_cell(worker.make_shell(), "pass")  # warms the compiler's caches
    if sandbox_dir is not None:
        os.environ["IPYTHONDIR"] = sandbox_dir


def _in_checkout(path: str) -> bool:
    """In the course checkout, and not in a virtual environment kept there."""
    real = os.path.realpath(path)
    return (_within(real, os.path.realpath(COURSE_ROOT))
            and not _within(real, os.path.realpath(sys.prefix)))


def preload(modules: list[str]) -> None:
    """Import what the assignment's notebook imports, if installed: not the trusted
    packages, nor anything else of the course checkout (hidden from sandboxes, and
    not to be imported outside one). A module that fails to import is left to the
    learner."""
    for name in modules:
        if not name.isidentifier() or name in TRUSTED_PACKAGES:
            continue
        try:
            spec = importlib.util.find_spec(name)
            if spec is None:
                continue
            places = ([spec.origin] if spec.has_location
                      else list(spec.submodule_search_locations or []))
            if not any(_in_checkout(place) for place in places):
                importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the sandbox reports it, if it matters
            pass


def main() -> None:
    isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
    preload(sys.argv[2:])
    build_shell()
    warm_up()
    # Every object made so far lives as long as the factory: out of the collector's
    # sight, a sandbox's garbage collections do not write to (and copy) their pages.
    gc.freeze()
    serve(socket.socket(fileno=int(sys.argv[1])))


if __name__ == "__main__":
    main()
