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


def time_call(fn, repeats: int = 5, warmup: int = 1, dev=None, min_time: float = 0.0,
              max_repeats: int = 1000) -> float:
    """Fastest wall-clock time of ``fn()`` in seconds, after ``warmup`` untimed runs.

    Runs at least ``repeats`` times, and keeps going (up to ``max_repeats``) until the
    timed runs add up to ``min_time`` seconds. The minimum, not the mean: on a shared
    machine other work only ever adds time, so the fastest run is the best estimate of
    what the code itself costs, and more runs give more chances of an undisturbed one.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for _ in range(warmup):
        fn()
    synchronize(dev)
    best, spent, runs = float("inf"), 0.0, 0
    while runs < repeats or (spent < min_time and runs < max_repeats):
        start = time.perf_counter()
        fn()
        synchronize(dev)
        elapsed = time.perf_counter() - start
        best, spent, runs = min(best, elapsed), spent + elapsed, runs + 1
    return best


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x: the p in y ≈ c·x^p."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.size < 2:
        raise ValueError("need two equally long sequences of at least two points")
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("a log-log slope needs positive values")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])



def time_calls(fns, repeats: int = 5, warmup: int = 1, dev=None,
               min_time: float = 0.0, max_repeats: int = 1000) -> list[float]:
    """Fastest wall-clock time of each function in ``fns``, timed in alternation.

    Each round times every function once, in turn, so that a busy spell on a shared
    machine falls on all of them alike instead of on whichever happened to run then.
    Rounds continue as in ``time_call`` (at least ``repeats``, until the rounds add up to
    ``min_time`` seconds or ``max_repeats`` is reached). Use it to compare two ways of
    doing the same thing: their ratio is steadier than that of two separate measurements.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for fn in fns:
        for _ in range(warmup):
            fn()
    synchronize(dev)
    best, spent, rounds = [float("inf")] * len(fns), 0.0, 0
    while rounds < repeats or (spent < min_time and rounds < max_repeats):
        for index, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            synchronize(dev)
            elapsed = time.perf_counter() - start
            best[index], spent = min(best[index], elapsed), spent + elapsed
        rounds += 1
    return best
