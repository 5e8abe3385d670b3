"""A learner's notebook running in a sandbox that comes back after a crash or a timeout.

The session is the endpoint the tests talk to. When a call hangs or kills the
process, that test fails, the sandbox is killed, and the next call starts a fresh one
that re-runs the learner's cells — skipping any cell that itself hung or crashed — so
one broken function costs only the tests that use it. A time budget for the whole
submission bounds all of this.
"""
from __future__ import annotations

import time

from attention_course.checks import remote, wire
from autograder.sandbox import Factory, Limits, Sandbox, SandboxFailure


class SandboxSession(remote.Endpoint):
    def __init__(self, factory: Factory, cells: list[tuple[int, str]], limits: Limits,
                 slot: int = 0, isolate: bool | None = None):
        self.factory = factory
        self.cells = cells
        self.limits = limits
        self.slot = slot
        self.isolate = isolate
        self.deadline = time.monotonic() + limits.submission_timeout
        self.sandbox: Sandbox | None = None
        self.skipped: set[int] = set()
        self.cell_notes: dict[int, str] = {}
        self.gave_up: SandboxFailure | None = None
        self.isolation = ""

    def notes(self) -> list[str]:
        return [self.cell_notes[number] for number in sorted(self.cell_notes)]

    def _remaining(self) -> float:
        return self.deadline - time.monotonic()

    def _give_up(self, status: str, message: str) -> SandboxFailure:
        self.gave_up = SandboxFailure(status, message)
        return self.gave_up

    def start(self) -> Sandbox:
        """The running sandbox, starting (or restarting) it and re-running the cells."""
        while self.sandbox is None:
            if self.gave_up:
                raise self.gave_up
            if self._remaining() <= 0:
                raise self._give_up("timeout", "was not run: the submission used up its "
                                               f"{self.limits.submission_timeout:g} s time budget")
            sandbox = Sandbox(self.factory, self.limits, self.slot, self.isolate)
            try:
                sandbox.start()
                self.isolation = sandbox.isolation
                if self._run_cells(sandbox):
                    self.sandbox = sandbox
                    return sandbox
            except SandboxFailure as failure:
                raise self._give_up("kernel died", f"was not run: {failure.message}") from None
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
                self.cell_notes[number] = f"Cell {number} is too large to run; it was skipped."
                continue
            try:
                payload, json_size = sandbox.exchange(request, timeout)
            except SandboxFailure as failure:
                self.skipped.add(number)
                self.cell_notes[number] = f"Cell {number} {failure.message}; it was skipped."
                return False
            answer = _decode(payload, json_size)
            if number not in self.cell_notes and answer is not None:
                self.cell_notes[number] = f"Cell {number} raised {answer}"
        return True

    def exchange(self, frame: bytes) -> tuple[bytes, int]:
        sandbox = self.start()
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
            raise SandboxFailure("kernel died", f"{label} sent back data that is not valid: "
                                                f"{error}") from None

    def stop(self) -> None:
        if self.sandbox is not None:
            self.sandbox.kill()
            self.sandbox = None


def _decode(payload: bytes, json_size: int) -> str | None:
    """None for a cell that ran; else "Type: message" of its error."""
    try:
        answer = wire.decode_frame(payload, json_size)
    except wire.WireError as error:
        return f"an unreadable answer: {error}"
    if type(answer) is dict and set(answer) == {"ok"}:
        return None
    error = answer.get("error") if type(answer) is dict else None
    if type(error) is dict and type(error.get("type")) is str and type(error.get("message")) is str:
        return f"{error['type'][:100]}: {error['message'][:2000]}"
    return "an unreadable answer"
