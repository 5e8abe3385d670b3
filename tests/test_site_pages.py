"""The website's generated pages (exercise pages, glossary) match their sources, and link
what the issue asks: every exercise its chapters, every chapter's key terms the glossary."""
from __future__ import annotations

from tools.book import toc_docnames
from tools.site_pages import (exercise_for_chapter, exercise_notebooks, expected_pages, glossary_terms,
                              main)


def test_generated_pages_are_up_to_date():
    assert main(["--check"]) == 0, "run `python -m tools.site_pages` (make site-pages)"


def test_every_exercise_has_a_page_in_the_book_and_a_chapter_that_links_it():
    pages = set(toc_docnames())
    for notebook in exercise_notebooks():
        assert f"book/exercises/{notebook.stem}" in pages
        assert f"book/exercises/{notebook.stem}" in exercise_for_chapter().values()
    for chapter in exercise_for_chapter():
        assert chapter in pages


def test_exercise_pages_offer_a_download_and_a_launch_link():
    for path, text in expected_pages().items():
        if path.parent.name == "exercises":
            assert "{download}`" in text and "colab.research.google.com/github/" in text
            assert "../../book/" not in text  # links point at the site's chapters


def test_glossary_has_english_and_chinese_for_every_term():
    terms = glossary_terms()
    assert len(terms) >= 40
    for term, chinese, docname in terms:
        assert term and any("\u4e00" <= ch <= "\u9fff" for ch in chinese), (term, chinese)
        assert docname in toc_docnames()
