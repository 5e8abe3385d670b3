"""Execute one chapter the way the book build does, and report per-cell times.

    .venv/bin/python -m tools.run_chapter book/02_scaling.md [--timeout 300]

Fails (exit 1) on a cell error or on any stderr output, as `make book` would
(`stderr_output: warn` plus `-W`). Writes nothing under _build, so it can run while
a book build is in progress.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jupytext
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def stderr_outputs(cell) -> list[str]:
    return [o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stderr"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapter", type=Path)
    parser.add_argument("--timeout", type=int, default=300, help="seconds per cell")
    args = parser.parse_args(argv)

    notebook = jupytext.read(args.chapter)
    client = NotebookClient(notebook, timeout=args.timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(args.chapter.parent)}})
    timings = []
    start = time.perf_counter()
    try:
        with client.setup_kernel():
            for index, cell in enumerate(notebook.cells):
                if cell.cell_type != "code":
                    continue
                t0 = time.perf_counter()
                client.execute_cell(cell, index)
                timings.append((time.perf_counter() - t0, index, cell.source.splitlines()[0] if cell.source else ""))
    except CellExecutionError as error:
        print(f"FAILED in cell {index}:\n{error}")
        return 1
    total = time.perf_counter() - start
    for seconds, index, first_line in sorted(timings, reverse=True)[:5]:
        print(f"{seconds:7.2f}s  cell {index:3d}  {first_line[:70]}")
    print(f"total {total:.1f}s for {args.chapter}")
    noisy = [(i, text) for i, cell in enumerate(notebook.cells) for text in stderr_outputs(cell)]
    for index, text in noisy:
        print(f"stderr output in cell {index} (fails the book build):\n{text[:500]}")
    return 1 if noisy else 0


if __name__ == "__main__":
    sys.exit(main())
