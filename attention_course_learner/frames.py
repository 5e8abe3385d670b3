"""Reading and writing whole frames (see attention_course_learner.wire) on pipe fds."""
from __future__ import annotations

import os
import select
import time

from attention_course_learner import wire


class Deadline(Exception):
    """The other side did not answer in time."""


class Closed(Exception):
    """The other side closed the pipe (its process ended)."""


def read_exact(fd: int, size: int, deadline: float | None = None) -> bytes:
    chunks, remaining = [], size
    while remaining:
        if deadline is not None:
            timeout = deadline - time.monotonic()
            if timeout <= 0 or not select.select([fd], [], [], timeout)[0]:
                raise Deadline()
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise Closed()
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, deadline: float | None = None, max_blob: int = wire.MAX_BLOB_BYTES):
    """(payload, json_size); the header is checked before the body is read."""
    json_size, blob_size = wire.check_header(read_exact(fd, wire.HEADER.size, deadline), max_blob)
    return read_exact(fd, json_size + blob_size, deadline), json_size


def write_all(fd: int, data: bytes, deadline: float | None = None) -> None:
    view = memoryview(data)
    while view:
        if deadline is not None:
            timeout = deadline - time.monotonic()
            if timeout <= 0 or not select.select([], [fd], [], timeout)[1]:
                raise Deadline()
        try:
            written = os.write(fd, view[:1 << 16])
        except BlockingIOError:
            continue
        except BrokenPipeError:
            raise Closed() from None
        view = view[written:]
