"""Facts about the book that the tests and the benchmark share."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jupytext
from jupyter_cache import get_cache
import yaml

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "_build" / "html"


def toc_docnames(root: Path = ROOT) -> list[str]:
    """Every page in _toc.yml, in reading order, e.g. 'book/01_qkv'."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    names = [toc["root"]]

    def walk(entries):
        for entry in entries:
            if "file" in entry:
                names.append(entry["file"])
            walk(entry.get("sections", []))

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    return names


def is_notebook(source: Path) -> bool:
    """A MyST Markdown file is an executable notebook when its front matter names a kernel."""
    return "kernelspec" in jupytext.read(source).metadata


def chapter_docnames(root: Path = ROOT) -> list[str]:
    """The executable chapters, in reading order."""
    return [name for name in toc_docnames(root) if is_notebook(root / f"{name}.md")]


def executed_chapters(root: Path = ROOT) -> dict[str, tuple]:
    """docname -> (executed notebook, execution seconds), from the build's jupyter-cache."""
    cache = get_cache(root / "_build" / ".jupyter_cache")
    executed = {}
    for project in cache.list_project_records():
        record = cache.get_cached_project_nb(project.uri)
        if record is not None:
            docname = Path(project.uri).relative_to(root).with_suffix("").as_posix()
            executed[docname] = (cache.get_cache_bundle(record.pk).nb, record.data.get("execution_seconds"))
    return executed


def build_command(root: Path = ROOT) -> list[str]:
    """`jupyter-book build` with every warning an error and all problems reported."""
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    return [str(jupyter_book), "build", str(root), "--builder", "html", "-W", "--keep-going"]


def build(root: Path = ROOT) -> subprocess.CompletedProcess:
    """Build the site, capturing the log (for tests and the benchmark)."""
    return subprocess.run(build_command(root), cwd=root, capture_output=True, text=True)


if __name__ == "__main__":
    completed = subprocess.run(build_command())
    if completed.returncode == 0:
        print(f"\nSite built in {SITE.relative_to(ROOT)}/index.html. "
              "Serve it with `make serve` and open http://127.0.0.1:8000/")
    sys.exit(completed.returncode)
