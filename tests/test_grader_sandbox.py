"""The sandbox itself: what a learner's process can see, do and leave behind.

These run as whoever runs pytest: as root in CI, and as an unprivileged user when
tests/test_grader_unprivileged.py re-runs this file as `nobody`. Full isolation must
look the same from inside either way.
"""
from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from attention_course_learner import wire
from autograder.assignment import COURSE_ROOT
from autograder.sandbox import (
    FULL, UNISOLATED, Factory, Host, IsolationUnavailable, Limits, Sandbox,
    SandboxFailure,
)
from autograder.sandbox import isolation
from autograder.samples import notebook_name, submission, write

REFUSED = isolation.namespaces_refused()
needs_namespaces = pytest.mark.skipif(bool(REFUSED), reason=f"no namespaces: {REFUSED}")
LIMITS = Limits(cell_timeout=5, call_timeout=5)


@pytest.fixture(scope="module")
def factory():
    with Factory() as made:
        yield made


@pytest.fixture
def host(factory):
    with Host(factory, LIMITS) as made:
        yield made


@pytest.fixture
def sandbox(host):
    box = Sandbox(host)
    box.start()
    yield box
    box.kill()


def run(box: Sandbox, source: str, timeout: float = 5):
    request = wire.encode_frame({"op": "exec", "source": source})
    payload, json_size = box.exchange(request, timeout)
    return wire.decode_frame(payload, json_size)


def evaluate(box: Sandbox, expression: str):
    """The value of ``expression`` in the sandbox, through the plain-data channel."""
    run(box, f"def _probe():\n    return {expression}\nprobe = _probe")
    request = {"op": "call", "name": "probe", "args": [], "kwargs": {}}
    payload, json_size = box.exchange(wire.encode_frame(request), 5)
    return wire.decode_frame(payload, json_size)["ok"]


def processes_in_namespace(link: str) -> list[int]:
    """Host pids of the processes whose PID namespace is ``link``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") == link:
                    found.append(int(entry))
            except OSError:
                continue
    return found


READABLE = """
import os
def readable(path):
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            open(path, 'rb').read(1)
        return True
    except OSError:
        return False
"""


@needs_namespaces
def test_runs_as_an_unprivileged_pid_1_in_a_private_home(sandbox):
    assert sandbox.isolation == FULL
    run(sandbox, "import os")
    found = evaluate(sandbox, "(os.getuid(), os.getcwd(), os.getpid(), os.uname()[1])")
    assert found == (isolation.INNER_ID, "/home/student", 1, "sandbox")


@needs_namespaces
def test_sees_no_course_code_but_the_learner_package(sandbox, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("hidden")
    run(sandbox, READABLE)
    for path in [COURSE_ROOT / "solutions", COURSE_ROOT / "solutions" / "ex1_attention",
                 COURSE_ROOT / "nbgrader_config.py", COURSE_ROOT / "exercises",
                 COURSE_ROOT / "attention_course", COURSE_ROOT / "autograder", secret,
                 tmp_path,
                 Path("/proc/self/environ"), Path("/proc/1/cwd"), Path("/etc/passwd"),
                 Path("/sys"), Path("/dev/shm")]:
        assert evaluate(sandbox, f"readable({str(path)!r})") is False, path
    assert evaluate(sandbox, "readable('/usr/lib')") is True
    visible = set(evaluate(sandbox, f"os.listdir({str(COURSE_ROOT)!r})"))
    assert visible <= {".venv", "attention_course_learner"}
    answer = run(sandbox, "from attention_course.checks.ex3 import sinusoids")
    assert answer["error"]["type"] == "ModuleNotFoundError"
    run(sandbox, "import sys")
    loaded = evaluate(sandbox, "sorted(m for m in sys.modules if m.split('.')[0] in "
                               "('attention_course', 'autograder'))")
    assert loaded == []
    assert run(sandbox, "import attention_course_learner.wire") == {"ok": None}


@needs_namespaces
def test_cannot_write_outside_its_scratch_space(sandbox):
    learner_package = COURSE_ROOT / "attention_course_learner"
    for path in (str(learner_package / "x.py"), sys.prefix + "/x", "/usr/x", "/x"):
        answer = run(sandbox, f"open({path!r}, 'w')")
        assert answer["error"]["type"] in ("OSError", "PermissionError"), (path, answer)
    assert run(sandbox, "open('/tmp/scratch', 'w').write('ok')") == {"ok": None}


@needs_namespaces
def test_has_no_network(sandbox):
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        server.settimeout(0.5)
        answer = run(sandbox, f"import socket\nsocket.create_connection(('127.0.0.1', {port}), 2)")
        assert answer["error"]["type"] in ("OSError", "ConnectionRefusedError")
        with pytest.raises(socket.timeout):
            server.accept()
    answer = run(sandbox, "import socket\nsocket.create_connection(('1.1.1.1', 80), 2)")
    assert "unreachable" in answer["error"]["message"]


@needs_namespaces
def test_limits_hold_and_privileges_are_gone(sandbox):
    import resource

    nproc, memory = evaluate(sandbox, "(__import__('resource').getrlimit(6), "
                                      "__import__('resource').getrlimit(9))")
    assert nproc == (LIMITS.max_processes,) * 2 and memory[0] == LIMITS.memory_mb << 20
    assert resource.RLIMIT_NPROC == 6 and resource.RLIMIT_AS == 9
    answer = run(sandbox, "import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))")
    assert answer["error"]["type"] == "ValueError"
    refused = ("OSError", "PermissionError")
    assert run(sandbox, "import os\nos.setuid(0)")["error"]["type"] in refused
    answer = run(sandbox, "import os\nos.chroot('/tmp')")
    assert answer["error"]["type"] == "PermissionError"
    # unshare, mount and ptrace are refused by the seccomp filter, whatever the caps
    run(sandbox, "import ctypes\nlibc = ctypes.CDLL(None)")
    calls = evaluate(sandbox, "[libc.unshare(0x10000000), libc.ptrace(16, 1, 0, 0), "
                              "libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)]")
    assert calls == [-1, -1, -1]


@needs_namespaces
def test_every_process_dies_with_the_sandbox(host):
    box = Sandbox(host)
    box.start()
    namespace = os.readlink(f"/proc/{box.worker_pid}/ns/pid")
    answer = run(box, "import os, time\nfor _ in range(10_000):\n    if os.fork() == 0:\n"
                      "        os.setsid()\n        time.sleep(1000)")
    assert answer["error"]["type"] == "BlockingIOError"  # the process limit
    assert len(processes_in_namespace(namespace)) >= LIMITS.max_processes // 2
    box.kill(wait=True)
    assert processes_in_namespace(namespace) == []


LEAVE_TRACES = """
import ctypes, os, socket, time
open('/tmp/memo', 'w').write('seen')
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind('\\0memo')  # an abstract name: it lives in the network namespace
listener.listen()
open(os.path.expanduser('~/memo'), 'w').write('seen')
libc = ctypes.CDLL(None, use_errno=True)
segment = libc.shmget(4242, 4096, 0o1600)  # IPC_CREAT | rw-------
if os.fork() == 0:
    os.setsid()
    time.sleep(1000)
"""
FIND_TRACES = """
import ctypes, os, socket
libc = ctypes.CDLL(None, use_errno=True)
def _reachable(name):
    try:
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect(name)
        return True
    except OSError:
        return False
def _traces():
    others = 0
    try:
        os.kill(-1, 0)  # as PID 1: any other process in this namespace?
        others = 1
    except ProcessLookupError:
        pass
    return [os.path.exists('/tmp/memo'), os.path.exists(os.path.expanduser('~/memo')),
            libc.shmget(4242, 0, 0) != -1, _reachable('\\0memo'), others]
traces = _traces
"""


@needs_namespaces
def test_a_submissions_sandboxes_share_no_file_memory_or_process(host):
    """Each test's sandbox is forked by the submission's host into namespaces and a
    /tmp of its own: what one test's process left (a file, a System V segment, a
    listening abstract socket, a process) cannot reach the next."""
    first = Sandbox(host)
    first.start()
    assert run(first, LEAVE_TRACES) == {"ok": None}
    assert evaluate(first, "__import__('os').path.exists('/tmp/memo')") is True
    namespace = os.readlink(f"/proc/{first.worker_pid}/ns/pid")
    assert len(processes_in_namespace(namespace)) == 2
    first.kill()  # without waiting, as between two tests
    second = Sandbox(host)
    second.start()
    try:
        assert processes_in_namespace(namespace) == []
        assert os.readlink(f"/proc/{second.worker_pid}/ns/pid") != namespace
        assert run(second, FIND_TRACES) == {"ok": None}
        request = {"op": "call", "name": "traces", "args": [], "kwargs": {}}
        payload, json_size = second.exchange(wire.encode_frame(request), 5)
        found = wire.decode_frame(payload, json_size)["ok"]
        assert found == [False, False, False, False, 0]
    finally:
        second.kill()


@needs_namespaces
def test_holds_no_descriptor_but_stdio_and_its_two_pipes(sandbox):
    """A descriptor of the host's (an O_PATH handle on a folder outside the root, say)
    would let the learner's process leave its chroot."""
    run(sandbox, "import os\ndef _open():\n    found = []\n    for fd in range(256):\n"
                 "        try:\n            os.fstat(fd)\n            found.append(fd)\n"
                 "        except OSError:\n            pass\n    return found\nopen_fds = _open")
    request = {"op": "call", "name": "open_fds", "args": [], "kwargs": {}}
    payload, json_size = sandbox.exchange(wire.encode_frame(request), 5)
    found = wire.decode_frame(payload, json_size)["ok"]
    assert found[:3] == [0, 1, 2] and len(found) == 5, found


def test_memory_limit_gives_memory_error(sandbox):
    assert run(sandbox, "x = bytearray(64 * 2**30)")["error"]["type"] == "MemoryError"


def test_endless_loop_ignoring_sigint_times_out(host):
    box = Sandbox(host)
    box.start()
    with pytest.raises(SandboxFailure) as failure:
        run(box, "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                 "while True: pass", 2)
    assert failure.value.status == "timeout"
    box.kill()


@pytest.mark.parametrize("source, expected", [
    ("import os\nos._exit(3)", "exited with status 3"),
    ("import ctypes\nctypes.string_at(0)", "SIGSEGV"),
])
def test_a_dying_process_is_reported(host, source, expected):
    box = Sandbox(host)
    box.start()
    with pytest.raises(SandboxFailure, match=expected) as failure:
        run(box, source)
    assert failure.value.status == "kernel died"
    box.kill()


def _stdlib_readable_by_others() -> bool:
    path = Path(os.__file__).resolve()
    return all(os.stat(p).st_mode & 0o005 == 0o005 for p in path.parents)


def _why_no_unisolated() -> str:
    if isolation.landlock_abi() < (1 if os.geteuid() == 0 else 6):
        return "unisolated grading needs Landlock (ABI 6 without root)"
    if os.geteuid() == 0 and not _stdlib_readable_by_others():
        return ("as root it runs the learner as another uid, which cannot read this "
                "Python's standard library")
    return ""


NO_UNISOLATED = _why_no_unisolated()
needs_landlock = pytest.mark.skipif(bool(NO_UNISOLATED), reason=NO_UNISOLATED)


@needs_landlock
def test_unisolated_mode_is_confined_by_landlock_and_says_so(factory, tmp_path):
    host = Host(factory, LIMITS, mode=UNISOLATED)
    box = Sandbox(host)
    box.start()
    try:
        assert box.isolation.startswith("unisolated (Landlock ABI")
        assert run(box, "x = 1 + 1") == {"ok": None}
        assert run(box, "open('scratch.txt', 'w').write('ok')") == {"ok": None}
        for path in (tmp_path / "outside.txt", COURSE_ROOT / "solutions" / "x"):
            answer = run(box, f"open({str(path)!r}, 'w')")
            assert answer["error"]["type"] in ("PermissionError", "OSError"), answer
        answer = run(box, f"open({str(COURSE_ROOT / 'nbgrader_config.py')!r})")
        assert answer["error"]["type"] == "PermissionError"
        if isolation.landlock_abi() >= 6:
            answer = run(box, f"import os\nos.kill({os.getpid()}, 0)")
            assert answer["error"]["type"] == "PermissionError"
        assert run(box, DAEMON.format(name="uni-daemon")) == {"ok": None}
    finally:
        box.kill()
        host.close()
    assert not (tmp_path / "outside.txt").exists()
    left = [pid for pid in os.listdir("/proc")
            if pid.isdigit() and _comm(pid) == "uni-daemon"]
    assert left == []


DAEMON = """
import ctypes, os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        ctypes.CDLL(None).prctl(15, b"{name}", 0, 0, 0)
        time.sleep(60)
    os._exit(0)
time.sleep(0.2)
"""


def _comm(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/comm") as stream:
            return stream.read().strip()
    except OSError:
        return ""


# Run the grader as in a locked-down container: a seccomp filter refuses unshare (and
# clone with namespace flags) to it and everything it starts.
WITHOUT_NAMESPACES = (
    "import os, sys\n"
    "from autograder.sandbox import isolation\n"
    "isolation.prctl(isolation.PR_SET_NO_NEW_PRIVS, 1)\n"
    "isolation.install_seccomp(('unshare',))\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'autograder', *sys.argv[1:]])\n")


def grade_without_namespaces(tmp_path, *options):
    folder, out = tmp_path / "submissions", tmp_path / "out"
    write(submission("ex1_attention"), folder, "alice", notebook_name("ex1_attention"))
    command = [sys.executable, "-c", WITHOUT_NAMESPACES, "grade", "ex1_attention",
               str(folder), "--out", str(out), "--no-gradebook", "--no-progress",
               *options]
    done = subprocess.run(command, cwd=COURSE_ROOT, capture_output=True, text=True,
                          timeout=600)
    return done, out


def test_without_namespaces_the_grader_refuses_and_says_why(tmp_path):
    done, out = grade_without_namespaces(tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "cannot isolate" in done.stderr and "--allow-unisolated" in done.stderr
    assert "AppArmor" in done.stderr and not out.exists()


@needs_landlock
def test_allow_unisolated_grades_under_a_banner_and_says_so_everywhere(tmp_path):
    done, out = grade_without_namespaces(tmp_path, "--allow-unisolated")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "UNISOLATED GRADING" in done.stderr and "UNISOLATED GRADING" in done.stdout
    with open(out / "grades.csv", newline="") as stream:
        row = next(csv.DictReader(stream))
    assert row["isolation"].startswith("unisolated (Landlock") and row["score"] == "14"
    folder = out / "students" / "alice"
    results = json.loads((folder / "results.json").read_text())
    assert results["isolation"] == row["isolation"]
    assert "isolation: unisolated" in (folder / "feedback.html").read_text()


@needs_namespaces
def test_a_virtualenv_reached_through_a_symlink_works(tmp_path):
    """The interpreter's prefix is a symlink: the sandbox must resolve it the same."""
    link = tmp_path / "venv-link"
    link.symlink_to(sys.prefix, target_is_directory=True)
    python = link / "bin" / Path(sys.executable).name
    script = ("from autograder.sandbox import Factory, Sandbox, Limits\n"
              "from attention_course_learner import wire\n"
              "from autograder.sandbox import Host\n"
              "with Factory() as f, Host(f, Limits()) as h:\n"
              "    box = Sandbox(h); box.start()\n"
              "    cell = ('import numpy, sys\\n'\n"
              "            'assert sys.prefix.endswith(\"venv-link\")')\n"
              "    frame = wire.encode_frame({'op': 'exec', 'source': cell})\n"
              "    print(wire.decode_frame(*box.exchange(frame, 60)))\n"
              "    box.kill()\n")
    done = subprocess.run([str(python), "-c", script], cwd=COURSE_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "{'ok': None}" in done.stdout, done.stdout + done.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root may map any uid")
def test_a_refused_isolation_is_reported_not_downgraded(host):
    """A host that cannot isolate says why; it never grades without the sandbox."""
    host.uid = 0  # an unprivileged user may not map root: the namespaces cannot be made
    box = Sandbox(host)
    with pytest.raises(IsolationUnavailable, match="uid/gid map"):
        box.start()
    box.kill()
