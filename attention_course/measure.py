"""Small measuring tools for the chapters that time things or fit growth rates."""
from __future__ import annotations

import time

import numpy as np
import torch


def synchronize(dev: torch.device | str | None) -> None:
    """Wait for queued GPU work, so a wall-clock timer measures the work, not its launch."""
    dev = torch.device(dev) if dev is not None else None
    if dev is not None and dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elif dev is not None and dev.type == "mps":
        torch.mps.synchronize()


def time_call(fn, repeats: int = 5, warmup: int = 1, dev=None) -> float:
    """Fastest wall-clock time of ``fn()`` in seconds over ``repeats`` runs, after ``warmup`` runs.

    The minimum, not the mean: on a shared machine other work only ever adds time,
    so the fastest run is the best estimate of what the code itself costs.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for _ in range(warmup):
        fn()
    synchronize(dev)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(dev)
        best = min(best, time.perf_counter() - start)
    return best


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x: the p in y ≈ c·x^p."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.size < 2:
        raise ValueError("need two equally long sequences of at least two points")
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("a log-log slope needs positive values")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])
