"""The sandbox itself: what a submission's process can and cannot do (CI runs as root)."""
from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from attention_course.checks import wire
from autograder.assignment import COURSE_ROOT
from autograder.sandbox import Factory, Limits, Sandbox, SandboxFailure, isolation_available

needs_root = pytest.mark.skipif(not isolation_available(), reason="full isolation needs root on Linux")
LIMITS = Limits(cell_timeout=5, call_timeout=5)


@pytest.fixture(scope="module")
def factory():
    with Factory() as made:
        yield made


@pytest.fixture
def sandbox(factory):
    box = Sandbox(factory, LIMITS)
    box.start()
    yield box
    box.kill()


def run(box: Sandbox, source: str, timeout: float = 5):
    payload, json_size = box.exchange(wire.encode_frame({"op": "exec", "source": source}), timeout)
    return wire.decode_frame(payload, json_size)


def evaluate(box: Sandbox, expression: str):
    """The value of ``expression`` in the sandbox, through the plain-data channel."""
    run(box, f"def _probe():\n    return {expression}\nprobe = _probe")
    request = {"op": "call", "name": "probe", "args": [], "kwargs": {}}
    payload, json_size = box.exchange(wire.encode_frame(request), 5)
    return wire.decode_frame(payload, json_size)["ok"]


def sandbox_uids() -> list[str]:
    listing = subprocess.run(["ps", "-eo", "uid=,pid=,stat=,comm="], capture_output=True, text=True)
    return [line for line in listing.stdout.splitlines() if 61000 <= int(line.split()[0]) < 62000]


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


@needs_root
def test_runs_unprivileged_in_a_private_home(sandbox):
    assert sandbox.isolation == "full"
    uid, cwd, pid = evaluate(sandbox, "(__import__('os').getuid(), __import__('os').getcwd(), "
                                      "__import__('os').getpid())")
    assert uid != 0 and cwd == "/home/student" and pid == 1


@needs_root
def test_cannot_see_the_course_gradebook_or_other_files(sandbox, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("hidden")
    run(sandbox, READABLE)
    for path in [COURSE_ROOT / "solutions", COURSE_ROOT / "solutions" / "ex1_attention",
                 COURSE_ROOT / "nbgrader_config.py", COURSE_ROOT / "exercises", secret, tmp_path,
                 Path(f"/proc/{os.getpid()}/environ"), Path("/etc/passwd")]:
        assert evaluate(sandbox, f"readable({str(path)!r})") is False, path
    assert evaluate(sandbox, "readable('/usr/lib')") is True
    # Only the read-only skeleton of the paths Python needs exists above them.
    visible = set(evaluate(sandbox, f"os.listdir({str(COURSE_ROOT)!r})"))
    assert visible <= {".venv", "attention_course", "autograder"}


@needs_root
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


@needs_root
def test_limits_are_set_and_cannot_be_raised(sandbox):
    import resource

    nproc, memory = evaluate(sandbox, "(__import__('resource').getrlimit(6), "
                                      "__import__('resource').getrlimit(9))")
    assert nproc == (LIMITS.max_processes,) * 2 and memory[0] == LIMITS.memory_mb << 20
    assert resource.RLIMIT_NPROC == 6 and resource.RLIMIT_AS == 9
    answer = run(sandbox, "import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))")
    assert answer["error"]["type"] == "ValueError"
    assert run(sandbox, "import os\nos.setuid(0)")["error"]["type"] == "PermissionError"


@needs_root
def test_fork_bombs_stop_at_the_process_limit_and_leave_nothing_behind(factory):
    box = Sandbox(factory, LIMITS)
    box.start()
    answer = run(box, "import os, time\nfor _ in range(10_000):\n    if os.fork() == 0:\n"
                      "        time.sleep(1000)")
    assert answer["error"]["type"] == "BlockingIOError"
    box.kill()
    assert sandbox_uids() == []


def test_memory_limit_gives_memory_error(sandbox):
    assert run(sandbox, "x = bytearray(64 * 2**30)")["error"]["type"] == "MemoryError"


def test_endless_loop_ignoring_sigint_times_out(factory):
    box = Sandbox(factory, LIMITS)
    box.start()
    with pytest.raises(SandboxFailure) as failure:
        run(box, "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass", 2)
    assert failure.value.status == "timeout"
    box.kill()


@pytest.mark.parametrize("source, expected", [
    ("import os\nos._exit(3)", "exited with status 3"),
    ("import ctypes\nctypes.string_at(0)", "SIGSEGV"),
])
def test_a_dying_process_is_reported(factory, source, expected):
    box = Sandbox(factory, LIMITS)
    box.start()
    with pytest.raises(SandboxFailure, match=expected) as failure:
        run(box, source)
    assert failure.value.status == "kernel died"
    box.kill()


def test_degraded_mode_still_runs_and_says_so(factory):
    box = Sandbox(factory, LIMITS, isolate=False)
    box.start()
    try:
        assert box.isolation.startswith("partial")
        assert run(box, "x = 1 + 1") == {"ok": None}
    finally:
        box.kill()
