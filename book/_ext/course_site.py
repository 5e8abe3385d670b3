"""Sphinx glue that keeps the course website self-contained and error-free.

* Serves a MathJax-2 ``Hub`` shim the ipywidgets html-manager 1.x needs under MathJax 3.
* Drops duplicate ``<script>`` entries (jupyter-book 1.0.4 lists thebe's config twice
  on every page, which throws "Identifier 'THEBE_JS_URL' has already been declared").
* Copies the html-manager's icon fonts to the page-relative path it requests them from.
* Serves the course package's wheel at ``_static/attention_course-<version>-py3-none-any.whl``
  (built by tools/dist.py at the start of every build): the chapters' install cell and
  the exercises' install instructions point there (tools/course_links.py).
* Makes each chapter's downloadable .ipynb carry its outputs: with
  ``execute_notebooks: cache``, myst-nb 1.4 writes the notebook without outputs when
  the cache answers, so they are merged back from jupyter-cache.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
from jupyter_cache import get_cache

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
WHEEL_DIR = ROOT / "_build" / "wheel"   # listed in html_static_path: copied into _static/
FONT_DIR_IN_STATIC = Path("vendor") / "html-manager" / "dist"
FONT_DIR_FROM_PAGE = Path("@jupyter-widgets") / "html-manager" / "dist"


def add_static_path(app, config) -> None:
    config.html_static_path.append(str(HERE / "static"))
    build_wheel(WHEEL_DIR)
    config.html_static_path.append(str(WHEEL_DIR))


def build_wheel(folder: Path) -> Path:
    """The course package's wheel, alone in ``folder`` (an old version's wheel is removed)."""
    shutil.rmtree(folder, ignore_errors=True)
    done = subprocess.run([sys.executable, "-m", "tools.dist", "--wheel-only", "--out", str(folder)],
                          cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"building the course wheel failed:\n{done.stderr[-3000:]}")
    wheels = list(folder.glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def drop_duplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    unique = {}
    for script in scripts:
        # Inline scripts are registered with filename None by some extensions and "" by others.
        key = (script.filename or "", script.priority, tuple(sorted(script.attributes.items())))
        unique.setdefault(key, script)
    scripts[:] = unique.values()


def copy_widget_fonts(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    fonts = sorted((outdir / "_static" / FONT_DIR_IN_STATIC).glob("*"))
    if not fonts:
        return
    page_dirs = {page.parent for page in outdir.rglob("*.html") if "_static" not in page.parts}
    for page_dir in page_dirs:
        target = page_dir / FONT_DIR_FROM_PAGE
        target.mkdir(parents=True, exist_ok=True)
        for font in fonts:
            shutil.copy2(font, target / font.name)


def write_executed_downloads(app, exception) -> None:
    if exception is not None or app.builder.format != "html" or app.config.nb_execution_mode != "cache":
        return
    cache = get_cache(Path(app.config.nb_execution_cache_path))
    for docname in app.env.found_docs:
        download = Path(app.outdir) / "_sources" / f"{docname}.ipynb"
        if not download.exists():
            continue
        notebook = jupytext.read(app.env.doc2path(docname))
        try:
            _, executed = cache.merge_match_into_notebook(notebook)
        except KeyError:  # not executed through the cache (excluded from execution)
            continue
        nbformat.write(executed, download)


def setup(app):
    app.connect("config-inited", add_static_path)
    app.add_js_file("mathjax2-hub-shim.js", priority=100)
    # Early: Sphinx stops calling html-page-context handlers once one returns a template.
    app.connect("html-page-context", drop_duplicate_scripts, priority=100)
    app.connect("build-finished", copy_widget_fonts)
    app.connect("build-finished", write_executed_downloads)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
