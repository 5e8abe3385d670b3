"""The book builds with every chapter executed, and no warning slips through."""
import re

import nbformat

import pytest

from tools.book import chapter_docnames, executed_chapters, toc_docnames
from tools.pair_notebooks import main as pair_notebooks

pytestmark = pytest.mark.slow


def test_build_succeeds_with_warnings_as_errors(book_build):
    log = book_build.stdout + book_build.stderr
    assert book_build.returncode == 0, log[-6000:]
    assert "build succeeded" in log
    # Sphinx warnings read "<where>: WARNING: <what>" (the kernel's own log lines do not).
    sphinx_warnings = [line for line in log.splitlines() if re.search(r"\bWARNING:", line)]
    assert not sphinx_warnings, "the build logged warnings:\n" + "\n".join(sphinx_warnings)


def test_every_toc_page_is_rendered(site):
    for name in toc_docnames():
        assert (site / f"{name}.html").is_file(), f"{name} has no page"


@pytest.mark.parametrize("name", chapter_docnames())
def test_every_code_cell_of_each_chapter_was_executed(site, name):
    executed = executed_chapters()
    assert name in executed, f"{name} has no executed notebook in the build's cache"
    notebook, _seconds = executed[name]
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells, f"{name} has no code"
    unexecuted = [i for i, cell in enumerate(code_cells) if cell.get("execution_count") is None]
    assert not unexecuted, f"{name}: code cells {unexecuted} were not executed"
    errors = [o for cell in code_cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{name} has error outputs"
    page = (site / f"{name}.html").read_text(encoding="utf-8")
    assert page.count('class="cell_output') > 0, f"{name}.html shows no cell outputs"
    download = nbformat.read(site / "_sources" / f"{name}.ipynb", as_version=4)
    assert any(cell.get("outputs") for cell in download.cells), f"the downloadable {name}.ipynb has no outputs"


def test_site_serves_no_asset_from_outside(site):
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        for match in re.finditer(r'<(?:script|link)\b[^>]*(?:src|href)="(https?:)?//', html):
            tag = html[match.start(): html.index(">", match.start()) + 1]
            if 'rel="canonical"' not in tag:
                pytest.fail(f"{page.relative_to(site)} loads {tag}")


def test_colab_copies_of_chapters_are_in_sync():
    assert pair_notebooks(["--check"]) == 0, "run `make notebooks` and commit the .ipynb copies"


def test_site_serves_the_course_wheel_and_launches_from_the_setting(site):
    """The chapters' install cell and the exercises' setup cell point at this file."""
    from tools import course_links

    where = course_links.where()
    wheel = site / "_static" / where.wheel_name
    assert wheel.is_file() and wheel.stat().st_size > 10_000
    page = (site / "book" / "01_qkv.html").read_text(encoding="utf-8")
    assert where.colab("book/01_qkv.ipynb") in page
    assert where.repository in page
