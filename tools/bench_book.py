"""`make bench-book`: cold build time vs warm rebuild after a prose-only edit.

Baseline: the cold build (empty _build, every chapter executed). The warm rebuild
changes one sentence of chapter 1's prose; jupyter-cache hashes only code cells, so
no chapter should re-execute. Runs on a copy of the working tree in a temporary
folder, so your own _build is untouched.

It also prints the budgets the course keeps on a 2-core machine: each chapter executes
in at most 60 s (chapters use one CPU thread), and a cold build takes at most 5 minutes.
Both builds include the Chinese edition (zh/), which executes nothing; it is also timed
on its own, warm, against its budget of 60 s.
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.book import ROOT, build, chinese_build_command, executed_chapters

PROSE_EDIT = ("book/01_qkv.md", "## One sentence, three projections\n",
              "## One sentence, three projections\n\nA prose-only edit for the benchmark.\n")
CHAPTER_BUDGET_S = 60
CHINESE_BUILD_BUDGET_S = 60
COLD_BUILD_BUDGET_S = 300


def verdict(seconds: float, budget: float) -> str:
    return f"within the {budget:.0f} s budget" if seconds <= budget else f"OVER the {budget:.0f} s budget"


def copy_working_tree(destination: Path) -> None:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    (destination / "site_vendor").symlink_to(ROOT / "site_vendor")


def timed_build(root: Path) -> float:
    start = time.perf_counter()
    completed = build(root)
    seconds = time.perf_counter() - start
    if completed.returncode != 0:
        sys.exit("build failed:\n" + (completed.stdout + completed.stderr)[-4000:])
    return seconds


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-book-") as tmp:
        root = Path(tmp)
        copy_working_tree(root)
        cold = timed_build(root)
        chapters = executed_chapters(root)
        path, anchor, replacement = PROSE_EDIT
        source = root / path
        source.write_text(source.read_text(encoding="utf-8").replace(anchor, replacement, 1), encoding="utf-8")
        warm = timed_build(root)
        rerun = {name: seconds for name, (_, seconds) in executed_chapters(root).items()
                 if chapters.get(name, (None, None))[1] != seconds}
        start = time.perf_counter()
        chinese = subprocess.run(chinese_build_command(), cwd=root, capture_output=True)
        chinese_seconds = time.perf_counter() - start
        if chinese.returncode != 0:
            sys.exit("the Chinese build failed:\n" + chinese.stderr.decode()[-4000:])

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print("\nper-chapter execution time (cold build):")
    for name, (_, seconds) in sorted(chapters.items()):
        print(f"  {name:<28} {seconds:7.1f} s   {verdict(seconds, CHAPTER_BUDGET_S)}")
    print(f"\ncold build (baseline):            {cold:7.1f} s   "
          f"{verdict(cold, COLD_BUILD_BUDGET_S)}")
    print(f"warm rebuild after a prose edit:  {warm:7.1f} s   "
          f"(chapters re-executed: {sorted(rerun) or 'none'})")
    print(f"speed-up of the warm rebuild:     {cold / warm:7.1f}x")
    print(f"of which the Chinese edition:     {chinese_seconds:7.1f} s   "
          f"{verdict(chinese_seconds, CHINESE_BUILD_BUDGET_S)} (executes nothing)")


if __name__ == "__main__":
    main()
