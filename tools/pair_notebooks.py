"""Write (or check) the .ipynb copy of every MyST chapter.

The chapters' source is MyST Markdown (book/*.md): readable diffs. Colab and the
launch buttons need an .ipynb beside each one, so this writes book/<name>.ipynb
without outputs. `--check` exits 1 if any copy is missing or stale.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat

from tools.book import ROOT, is_notebook

BOOK = ROOT / "book"


def chapter_sources() -> list[Path]:
    return sorted(p for p in BOOK.glob("*.md") if is_notebook(p))


def paired_text(md: Path) -> str:
    notebook = jupytext.read(md)
    notebook.metadata.pop("jupytext", None)
    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index}"  # stable ids keep the copy reproducible
    return nbformat.writes(notebook) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail instead of writing if a copy is stale")
    args = parser.parse_args(argv)
    stale = []
    for md in chapter_sources():
        ipynb = md.with_suffix(".ipynb")
        expected = paired_text(md)
        if ipynb.exists() and ipynb.read_text(encoding="utf-8") == expected:
            continue
        stale.append(ipynb.relative_to(ROOT))
        if not args.check:
            ipynb.write_text(expected, encoding="utf-8")
    if args.check and stale:
        print("stale .ipynb copies (run `make notebooks`):", *stale, sep="\n  ")
        return 1
    for path in stale:
        print("wrote", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
