"""The built site in a real browser: no errors, nothing fetched from outside, math
typeset, and chapter 1's temperature slider working with no kernel."""
from __future__ import annotations

import shutil

import pytest

from tools.book import toc_docnames

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
RAW_TEX = ["$$", "\\frac", "\\sqrt", "\\operatorname", "\\(", "\\["]


@pytest.fixture(scope="session")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is not installed: `make test` installs it (make browser-deps)")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageVisit:
    """A page opened with every request outside the site blocked and recorded."""

    def __init__(self, browser, site_url, docname):
        self.page = browser.new_page()
        self.errors, self.outside, self.broken = [], [], []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("response", lambda r: r.status >= 400 and self.broken.append(f"{r.status} {r.url}"))
        self.page.route("**/*", self._only_the_site(site_url))
        self.page.goto(f"{site_url}/{docname}.html", wait_until="load")

    def _only_the_site(self, site_url):
        def handle(route):
            url = route.request.url
            if url.startswith(site_url + "/") or url.startswith("data:"):
                route.continue_()
            else:
                self.outside.append(url)
                route.abort()
        return handle

    def visible_text(self) -> str:
        return self.page.inner_text("article")


@pytest.mark.parametrize("docname", toc_docnames())
def test_page_loads_cleanly_and_typesets_math(browser, site_url, docname):
    visit = PageVisit(browser, site_url, docname)
    page = visit.page
    page.wait_for_load_state("networkidle")
    if page.locator("article .math").count():
        page.wait_for_selector("mjx-container", timeout=20_000)
    text = visit.visible_text()
    assert not visit.errors, f"page errors: {visit.errors}"
    assert not visit.outside, f"requests left the site: {visit.outside}"
    assert not visit.broken, f"broken requests: {visit.broken}"
    assert not [tex for tex in RAW_TEX if tex in text], "raw TeX is visible on the page"
    page.close()


def visible_frame_image(page) -> str:
    return page.eval_on_selector_all(
        ".widget-html-content img",
        "imgs => imgs.filter(img => img.offsetParent !== null).map(img => img.src).join('|')",
    )


def test_temperature_slider_works_with_the_keyboard_and_no_kernel(browser, site_url):
    visit = PageVisit(browser, site_url, "book/01_qkv")
    page = visit.page
    page.wait_for_selector(".widget-readout", timeout=20_000)
    readout = page.locator(".widget-readout").first
    assert readout.inner_text() == "1"
    before = visible_frame_image(page)
    assert before.startswith("data:image/png"), "the slider shows no heatmap"

    page.focus(".noUi-handle")
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.querySelector('.widget-readout').textContent.trim() !== '1'")
    after_right = readout.inner_text()
    assert float(after_right) > 1
    assert visible_frame_image(page) not in ("", before), "the heatmap did not change"

    page.keyboard.press("Home")
    page.wait_for_function("() => document.querySelector('.widget-readout').textContent.trim() === '0.05'")
    alt = page.eval_on_selector_all(".widget-html-content img", "imgs => imgs.filter(i => i.offsetParent !== null).map(i => i.alt)")
    assert alt == ["attention weights at temperature 0.05"]
    assert not visit.errors and not visit.outside
    page.close()
