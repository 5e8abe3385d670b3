"""A learner's notebook as the tests see it: a fresh sandbox for every test.

Before each test (``fresh``) the session kills the previous sandbox and starts a new
one that runs the learner's cells again, so nothing a test's calls did — a memo in a
global, a patched module, a file in /tmp, a process left running — reaches the next
test. Property tests ask for the same before each side they compare, so code that
remembers what it was asked cannot make two related calls agree. (Forking every test
from one post-cells process was tried first; a process that has run learner code can
still hear from its forks through exit codes, signals, SIGCONT and shared memory, so
it cannot be the template. Each sandbox is forked instead by the submission's host,
which runs no learner code: ``autograder.sandbox.factory``.) A cell that hung or
killed the process on the first run is skipped from then on, with a note, so it
costs its time once; one broken function costs only the tests that use it. A time
budget for the whole submission bounds all of this.
"""
from __future__ import annotations

import time

from attention_course_learner import remote, wire
from autograder.sandbox import FULL, Factory, Host, Limits, Sandbox, SandboxFailure
from autograder.status import Status
from autograder.submissions import cell_label


class SandboxSession(remote.Endpoint):
    def __init__(self, factory: Factory, cells: list[tuple[int, str]], limits: Limits,
                 slot: int = 0, mode: str = FULL):
        self.host = Host(factory, limits, slot, mode)
        self.cells = cells
        self.limits = limits
        self.deadline = time.monotonic() + limits.submission_timeout
        self.sandbox: Sandbox | None = None
        self.skipped: set[int] = set()
        self.cell_notes: dict[int, str] = {}
        self.gave_up: SandboxFailure | None = None
        self.isolation = ""
        self.sandboxes_started = 0
        self.used = False  # the current sandbox has answered a call

    def notes(self) -> list[str]:
        return [self.cell_notes[number] for number in sorted(self.cell_notes)]

    def _remaining(self) -> float:
        return self.deadline - time.monotonic()

    def _give_up(self, status: Status, message: str) -> SandboxFailure:
        self.gave_up = SandboxFailure(status, message)
        return self.gave_up

    def fresh(self) -> None:
        """A sandbox that has answered no call yet: a new one with the learner's cells
        run again, unless the current one is still untouched. Each test starts with
        this, and property tests ask for it per side (``checks.core.fresh_call``)."""
        if self.sandbox is not None and not self.used:
            return
        self.stop()
        self.start()

    def start(self) -> Sandbox:
        """The running sandbox, starting (or restarting) it and running the cells."""
        while self.sandbox is None:
            if self.gave_up:
                raise self.gave_up
            if self._remaining() <= 0:
                budget = f"{self.limits.submission_timeout:g} s"
                raise self._give_up(Status.TIMEOUT, "was not run: the submission used "
                                                    f"up its {budget} time budget")
            sandbox = Sandbox(self.host)
            try:
                sandbox.start()
                self.sandboxes_started += 1
                self.isolation = sandbox.isolation
                if self._run_cells(sandbox):
                    self.sandbox = sandbox
                    return sandbox
            except SandboxFailure as failure:
                raise self._give_up(Status.KERNEL_DIED,
                                    f"was not run: {failure.message}") from None
            finally:
                if self.sandbox is not sandbox:
                    sandbox.kill()
        return self.sandbox

    def _run_cells(self, sandbox: Sandbox) -> bool:
        """Run every cell not yet known to be fatal; False if one killed the process."""
        for number, source in self.cells:
            if number in self.skipped:
                continue
            timeout = min(self.limits.cell_timeout, max(self._remaining(), 0.1))
            try:
                request = wire.encode_frame({"op": "exec", "source": source})
            except wire.WireError:
                self.skipped.add(number)
                self.cell_notes[number] = f"{cell_label(source)} is too large to run; it was skipped."
                continue
            try:
                payload, json_size = sandbox.exchange(request, timeout)
            except SandboxFailure as failure:
                self.skipped.add(number)
                self.cell_notes[number] = f"{cell_label(source)} {failure.message}; it was skipped."
                return False
            answer = _decode(payload, json_size)
            if number not in self.cell_notes and answer is not None:
                self.cell_notes[number] = f"{cell_label(source)} raised {answer}"
        return True

    def exchange(self, frame: bytes) -> tuple[bytes, int]:
        sandbox = self.start()
        self.used = True
        timeout = min(self.limits.call_timeout, max(self._remaining(), 0.1))
        try:
            return sandbox.exchange(frame, timeout)
        except SandboxFailure:
            self.stop()
            raise

    def request(self, message: dict, label: str):
        try:
            return super().request(message, label)
        except SandboxFailure as failure:
            raise failure.about(label) from None
        except wire.WireError as error:
            self.stop()
            message = f"{label} sent back data that is not valid: {error}"
            raise SandboxFailure(Status.KERNEL_DIED, message) from None

    def stop(self, wait: bool = False) -> None:
        """Kill the current sandbox; ``wait``: until every process in it is gone."""
        if self.sandbox is not None:
            self.sandbox.kill(wait)
            self.sandbox = None
        self.used = False

    def close(self) -> None:
        """Kill the last sandbox and the host: nothing the submission started
        outlives its grading."""
        self.stop(wait=True)
        self.host.close()


def _decode(payload: bytes, json_size: int) -> str | None:
    """None for a cell that ran; else "Type: message" of its error."""
    try:
        answer = wire.decode_frame(payload, json_size)
    except wire.WireError as error:
        return f"an unreadable answer: {error}"
    if type(answer) is dict and set(answer) == {"ok"}:
        return None
    error = answer.get("error") if type(answer) is dict else None
    if (type(error) is dict and type(error.get("type")) is str
            and type(error.get("message")) is str):
        return f"{error['type'][:100]}: {error['message'][:2000]}"
    return "an unreadable answer"
