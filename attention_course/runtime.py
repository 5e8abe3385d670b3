"""Pick the fastest available torch device and make runs reproducible."""
from __future__ import annotations

import random

import numpy as np
import torch


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
    return f"cpu ({threads} thread{'' if threads == 1 else 's'})"


def set_seed(seed: int = 0) -> None:
    """Seed Python, NumPy and torch (all devices) so outputs repeat run to run."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def start_chapter(seed: int = 0) -> torch.device:
    """Seed everything, pick the device, print it, and return it.

    On the CPU torch is limited to one thread: the course's models are so small that
    a second thread mostly waits for the first, and on a busy machine (a laptop in
    class, a shared build server) two threads were 3–20× slower than one here.
    """
    set_seed(seed)
    dev = device()
    if dev.type == "cpu":
        torch.set_num_threads(1)
    print("This chapter runs on:", describe_device(dev))
    return dev
