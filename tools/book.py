"""Building the book, and facts about it that the tests and the benchmarks share.

``make book`` builds two editions from the same sources into one site: the English one
at ``_build/html`` (``jupyter-book build``, executing the chapters through the cache)
and then the Chinese one at ``_build/html/zh``: the same pages with the messages of
``locales/zh_CN`` (tools/translations.py), the same executed outputs from the cache,
so the Chinese build executes nothing again.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
from jupyter_cache import get_cache
import yaml

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "_build" / "html"
CHINESE = "zh"  # the Chinese edition's folder in the site


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


def chinese_build_command() -> list[str]:
    return [sys.executable, "-m", "tools.book", "--chinese-only"]


def build_chinese(root: Path = ROOT) -> int:
    """The Chinese edition into the site's zh/ folder (after the English build)."""
    from jupyter_book.sphinx import build_sphinx
    from tools.translations import I18N_CONFIG, LANGUAGE
    work = root / "_build" / "zh"
    status = build_sphinx(root, work / "html", noconfig=True,
                          path_config=str(root / "_config.yml"),
                          confoverrides={**I18N_CONFIG, "language": LANGUAGE,
                                         "latex_individualpages": False},
                          doctreedir=str(work / ".doctrees"), builder="html",
                          warningiserror=True, keep_going=True)
    if status == 0:
        shutil.rmtree(root / "_build" / "html" / CHINESE, ignore_errors=True)
        shutil.copytree(work / "html", root / "_build" / "html" / CHINESE)
    return status


def build(root: Path = ROOT) -> subprocess.CompletedProcess:
    """Build both editions, capturing the log (for tests and the benchmark)."""
    english = subprocess.run(build_command(root), cwd=root, capture_output=True, text=True)
    if english.returncode != 0:
        return english
    chinese = subprocess.run(chinese_build_command(), cwd=root, capture_output=True,
                             text=True)
    return subprocess.CompletedProcess(
        english.args, chinese.returncode, english.stdout + chinese.stdout,
        english.stderr + chinese.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the website (both editions).")
    parser.add_argument("--chinese-only", action="store_true",
                        help="only the Chinese edition (after an English build)")
    args = parser.parse_args(argv)
    if not args.chinese_only:
        english = subprocess.run(build_command())
        if english.returncode != 0:
            return english.returncode
    status = build_chinese()
    if status == 0:
        print(f"\nSite built in {SITE.relative_to(ROOT)}/index.html (Chinese edition in "
              f"{CHINESE}/). Serve it with `make serve` and open http://127.0.0.1:8000/")
    return status


if __name__ == "__main__":
    sys.exit(main())
