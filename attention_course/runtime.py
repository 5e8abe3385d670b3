"""Pick the fastest available torch device and make runs reproducible, for any seed.

Every random choice a chapter makes (initial weights, generated data, data order,
held-out sets) comes from one integer, the course seed. It is 0 unless the
environment variable ``COURSE_SEED`` says otherwise, so that ``make claims`` can run
each chapter under other seeds and check that its claims do not hang on one lucky
draw. A chapter asks for a *named stream* of randomness (``seed_for("test set")``):
streams are independent of each other, and all of them change with the course seed.
"""
from __future__ import annotations

import os
import random
import zlib

import numpy as np
import torch

SEED_VARIABLE = "COURSE_SEED"


def course_seed() -> int:
    """The integer in ``COURSE_SEED`` (0 when unset); a clear error otherwise."""
    text = os.environ.get(SEED_VARIABLE, "").strip()
    if not text:
        return 0
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{SEED_VARIABLE} must be an integer, got {text!r}") from None
    if value < 0:
        raise ValueError(f"{SEED_VARIABLE} must be 0 or more, got {value}")
    return value


def seed_for(stream: str) -> int:
    """A seed for one named stream of randomness, derived from the course seed.

    The same name always gives the same seed for the same course seed, different names
    give unrelated seeds, and every stream changes when the course seed does.
    """
    return zlib.crc32(f"{course_seed()}/{stream}".encode()) & 0x7FFF_FFFF


def generator_for(stream: str, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator seeded for ``stream`` (see ``seed_for``)."""
    return torch.Generator(device=device).manual_seed(seed_for(stream))


def device() -> torch.device:
    """CUDA if a GPU is usable, else Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_device(dev: torch.device | None = None) -> str:
    """A one-line description of the device a chapter runs on, for printing."""
    dev = dev or device()
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    if dev.type == "mps":
        return "mps (Apple GPU)"
    threads = torch.get_num_threads()
    capability = torch.backends.cpu.get_cpu_capability()
    return f"cpu ({threads} thread{'' if threads == 1 else 's'}, {capability} kernels)"


def set_seed(stream: str = "chapter") -> None:
    """Seed Python, NumPy and torch (all devices) from the named stream."""
    seed = seed_for(stream)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def start_chapter() -> torch.device:
    """Seed everything, pick the device, print both, and return the device.

    On the CPU torch is limited to one thread: the course's models are so small that
    a second thread mostly waits for the first, and on a busy machine (a laptop in
    class, a shared build server) two threads were 3–20× slower than one here.
    """
    set_seed()
    dev = device()
    if dev.type == "cpu":
        torch.set_num_threads(1)
    print(f"This chapter runs on: {describe_device(dev)}; course seed {course_seed()}")
    return dev
