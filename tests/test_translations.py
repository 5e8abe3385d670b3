"""The Chinese edition: every message translated, markup intact, catalogues in step with
the English sources, and a Chinese page for every English one (tools/translations.py,
tools/book.py)."""
from __future__ import annotations

import re

import pytest
from bs4 import BeautifulSoup

from tools.book import CHINESE, toc_docnames
from tools.translations import (
    CATALOGUES, catalogue_states, extract, lint, markup_problems, message_ids,
)

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
LATIN = re.compile(r"[A-Za-z]")
# What the prose-share count leaves out: code, outputs, formulas and the theme's chrome.
NOT_PROSE = ["div.cell_input", "div.cell_output", "pre", "code", "mjx-container", "math",
             "svg", ".math", "script", "style", ".course-language-switch",
             ".headerlink", "figure",
             # The glossary's headwords are the English terms by design (it pairs each
             # with its Chinese); what it says of them must be Chinese.
             "dl.glossary > dt"]


def test_every_message_is_translated_and_none_is_fuzzy():
    states = catalogue_states()
    assert states, f"no catalogues in {CATALOGUES}"
    todo = {s.page: (len(s.untranslated), len(s.fuzzy), (s.untranslated + s.fuzzy)[:2])
            for s in states if not s.done}
    assert not todo, ("messages without a (checked) Chinese translation; translate them "
                      f"in locales/zh_CN (`make translations` lists them): {todo}")


def test_translations_keep_formulas_code_and_link_targets():
    assert not lint()


def test_the_markup_check_catches_what_a_translation_loses():
    original = "Divide by $\\sqrt{d_k}$ in `attention()`, see {doc}`Scaling </book/02>`."
    assert not markup_problems(original, "在 `attention()` 中除以 $\\sqrt{d_k}$，"
                                         "见 {doc}`缩放 </book/02>`。")
    lost = markup_problems(original, "除以 √d_k，见 {doc}`缩放 </book/03>`。")
    assert {p.split(":")[0] for p in lost} == {"formulas", "inline code", "role targets"}


def test_the_markup_check_catches_bold_that_does_not_render():
    original = "A **causal mask (因果掩码)** hides the future."
    assert not markup_problems(original, "一个**因果掩码（causal mask）**，遮住未来。")
    unrendered = markup_problems(original, "**因果掩码（causal mask）**遮住未来。")
    assert [p.split(":")[0] for p in unrendered] == ["bold/emphasis"]


@pytest.mark.slow
def test_catalogues_are_in_step_with_the_english_sources(site, tmp_path):
    """An English edit changes a message: until `make translations` has merged it (and a
    translator has translated it, the test above), this fails."""
    extract(pot_dir=tmp_path)
    pots = {p.relative_to(tmp_path).with_suffix("").as_posix(): p
            for p in tmp_path.rglob("*.pot")}
    catalogues = {p.relative_to(CATALOGUES).with_suffix("").as_posix(): p
                  for p in CATALOGUES.rglob("*.po")}
    assert sorted(pots) == sorted(catalogues), "run `make translations`"
    stale = {page: len(message_ids(pot) ^ message_ids(catalogues[page]))
             for page, pot in pots.items()
             if message_ids(pot) != message_ids(catalogues[page])}
    assert not stale, f"catalogues behind the sources (run `make translations`): {stale}"


@pytest.mark.slow
def test_the_chinese_build_executed_nothing(book_build):
    runs = book_build.stdout.split("Running Sphinx")
    assert len(runs) == 3, "expected an English and then a Chinese Sphinx run"
    assert "Executing notebook" not in runs[2], "the Chinese build executed a chapter"


def prose_letters(html: str) -> tuple[int, int]:
    soup = BeautifulSoup(html, "html.parser")
    article = soup.select_one("article")
    for selector in NOT_PROSE:
        for node in article.select(selector):
            node.decompose()
    text = article.get_text(" ")
    return len(CJK.findall(text)), len(LATIN.findall(text))


@pytest.mark.slow
@pytest.mark.parametrize("docname", toc_docnames())
def test_each_page_has_a_chinese_edition_in_chinese(site, docname):
    english = site / f"{docname}.html"
    chinese = site / CHINESE / f"{docname}.html"
    assert english.exists() and chinese.exists()
    html = chinese.read_text(encoding="utf-8")
    assert '<html lang="zh-CN"' in html
    assert '<html lang="en"' in english.read_text(encoding="utf-8")
    cjk, latin = prose_letters(html)
    assert cjk >= latin, f"only {cjk} of {cjk + latin} prose letters are Chinese"
    # Its downloads (the executed notebook, the source) and images are in the edition.
    local = re.findall(r'(?:href|src)="((?:\.\./)*_(?:sources|images)/[^"#]+)"', html)
    missing = [link for link in local if not (chinese.parent / link).resolve().exists()]
    assert not missing, f"links to files the Chinese edition lacks: {missing[:3]}"
