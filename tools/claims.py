"""`make claims`: run every chapter under a matrix of course seeds × CPU dispatch levels.

    .venv/bin/python -m tools.claims [--seeds 0,1,2] [--dispatch default,avx2,avx512]
                                     [--chapters book/05_why_attention ...] [--jobs 2]

Torch's CPU kernels differ between dispatch levels (``ATEN_CPU_CAPABILITY``), and a toy
model trained under one differs from the same model trained under another. A chapter's
asserts must hold for every reader's machine and every seed, so this runs each chapter
in a fresh kernel per configuration, exactly as the book build does, and prints a table
of chapter × configuration (pass/fail, seconds) with the tightest claim margin of each
chapter (see ``attention_course.claims``). Dispatch levels this CPU lacks are skipped
with a note. Exit status 1 when any run failed.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from attention_course.claims import LOG_VARIABLE, SURVEY_VARIABLE
from attention_course.runtime import SEED_VARIABLE
from tools.book import ROOT, chapter_docnames

DISPATCH_VARIABLE = "ATEN_CPU_CAPABILITY"
ALL_LEVELS = ("default", "avx2", "avx512")


@dataclass(frozen=True)
class Config:
    seed: int
    dispatch: str | None  # None: the machine's native level

    @property
    def label(self) -> str:
        return f"s{self.seed}/{self.dispatch or 'native'}"

    def environment(self) -> dict[str, str]:
        env = {**os.environ, SEED_VARIABLE: str(self.seed)}
        env.pop(DISPATCH_VARIABLE, None)
        if self.dispatch:
            env[DISPATCH_VARIABLE] = self.dispatch
        return env


@dataclass
class Run:
    chapter: str
    config: Config
    passed: bool
    seconds: float
    claims: list[dict] = field(default_factory=list)
    output: str = ""


def cpu_capability(level: str | None) -> str:
    """The level torch actually uses when asked for ``level`` (None: native)."""
    env = {k: v for k, v in os.environ.items() if k != DISPATCH_VARIABLE}
    if level:
        env[DISPATCH_VARIABLE] = level
    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True)
    return done.stdout.strip().lower()


def available_levels(wanted) -> tuple[list[str], list[str]]:
    """Split ``wanted`` into levels this CPU honours and levels it silently ignores."""
    usable, missing = [], []
    for level in wanted:
        (usable if cpu_capability(level) == level else missing).append(level)
    return usable, missing


def run_chapter(chapter: str, config: Config, timeout: int, survey: bool = False) -> Run:
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as log:
        env = {**config.environment(), LOG_VARIABLE: log.name}
        if survey:
            env[SURVEY_VARIABLE] = "1"
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "tools.run_chapter", f"{chapter}.md",
             "--timeout", str(timeout)],
            cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        claims = [json.loads(line) for line in log.read().splitlines() if line]
    passed = done.returncode == 0 and all(c["holds"] for c in claims)
    return Run(chapter, config, passed, seconds, claims, done.stdout + done.stderr)


def tightest(runs: list[Run]) -> str:
    measured = [(c["margin"], c["claim"], r.config.label) for r in runs for c in r.claims]
    if not measured:
        return "no claim() in this chapter"
    margin, what, label = min(measured)
    return f"{margin:+.3f} ({what}; {label})"


def table(chapters, configs, runs: dict) -> str:
    width = max(len(c) for c in chapters)
    header = f"{'chapter':<{width}}  " + "  ".join(f"{c.label:>13}" for c in configs)
    header += "  tightest margin (claim; configuration)"
    lines = [header, "-" * len(header)]
    for chapter in chapters:
        row = [runs[chapter, config] for config in configs]
        cells = "  ".join(
            f"{('ok' if r.passed else 'FAIL'):>5} {r.seconds:5.0f} s" for r in row)
        lines.append(f"{chapter:<{width}}  {cells}  {tightest(row)}")
    return "\n".join(lines)


def survey_table(chapters, configs, runs: dict) -> str:
    """Every claim's value in every configuration, its worst margin marked."""
    lines = []
    for chapter in chapters:
        values: dict[str, dict] = {}
        for config in configs:
            for record in runs[chapter, config].claims:
                values.setdefault(record["claim"], {})[config.label] = record
        lines.append(f"{chapter}: {len(values)} claims")
        for what, by_config in values.items():
            worst = min(by_config.values(), key=lambda r: r["margin"])
            mark = "  " if worst["holds"] else "✘ "
            row = " ".join(f"{r['value']:.3g}" for r in by_config.values())
            lines.append(f"  {mark}{what}: worst margin {worst['margin']:+.3f}; values {row}")
    return "\n".join(lines)


def failure_excerpt(run: Run, lines: int = 25) -> str:
    tail = "\n".join(run.output.strip().splitlines()[-lines:])
    return f"--- {run.chapter} under {run.config.label} failed:\n{tail}"


def parse_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--dispatch", default=",".join(ALL_LEVELS),
                        help="comma-separated levels, or 'native'")
    parser.add_argument("--chapters", nargs="*", help="docnames, e.g. book/02_scaling")
    parser.add_argument("--jobs", type=int, default=1, help="chapters run at once")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per cell")
    parser.add_argument("--survey", action="store_true",
                        help="a failed claim() does not stop its chapter; list every claim")
    args = parser.parse_args(argv)

    chapters = args.chapters or chapter_docnames()
    wanted = parse_list(args.dispatch)
    if wanted == ["native"]:
        levels, missing = [None], []
    else:
        levels, missing = available_levels(wanted)
    for level in missing:
        print(f"note: this CPU has no {level} kernels; skipping that level")
    configs = [Config(int(s), level) for s in parse_list(args.seeds) for level in levels]
    print(f"native dispatch level: {cpu_capability(None)}; "
          f"{len(chapters)} chapters × {len(configs)} configurations", flush=True)

    jobs = [(chapter, config) for config in configs for chapter in chapters]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = pool.map(lambda job: run_chapter(*job, args.timeout, args.survey), jobs)
        runs = {}
        for run in results:
            runs[run.chapter, run.config] = run
            status = "ok" if run.passed else "FAILED"
            print(f"  {run.chapter} {run.config.label}: {status} in {run.seconds:.0f} s",
                  flush=True)
    print()
    print(table(chapters, configs, runs))
    if args.survey:
        print("\n" + survey_table(chapters, configs, runs))
    failed = [run for run in runs.values() if not run.passed]
    for run in failed:
        print("\n" + failure_excerpt(run))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
