"""Page weight and first contentful paint of every page of the built site, in Chromium.

`make bench-site` (after `make book`) prints one line per page: the bytes it loads
(uncompressed, everything it fetches once idle), the budget (2 MB without a slider, 5 MB with
one), whether the widget scripts load and whether any of them blocks rendering, and the first
contentful paint over loopback. It exits 1 when a page is over its budget. The browser tests
(tests/test_site_browser.py) assert the same budgets.
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import socketserver
import sys
import threading
from pathlib import Path

from tools.book import SITE, toc_docnames

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
MB = 1_000_000
BUDGET_WITHOUT_SLIDER = 2 * MB
BUDGET_WITH_SLIDER = 5 * MB
WIDGET_SCRIPTS = ("require.js", "embed-amd.js", "embed.js")

PAGE_WEIGHT_JS = """() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const resources = performance.getEntriesByType('resource');
    const paint = performance.getEntriesByName('first-contentful-paint')[0];
    return {
        bytes: nav.decodedBodySize + resources.reduce((sum, r) => sum + r.decodedBodySize, 0),
        fcp: paint ? paint.startTime : null,
        blocking: resources.filter(r => r.renderBlockingStatus === 'blocking').map(r => r.name.split('?')[0]),
        scripts: resources.filter(r => r.initiatorType === 'script').map(r => r.name.split('?')[0]),
        sliders: document.querySelectorAll('script[type="application/vnd.jupyter.widget-state+json"]').length,
    };
}"""


def has_widget_state(docname: str, site: Path = SITE) -> bool:
    """Whether the built page embeds widget state (it holds a slider)."""
    page = site / f"{docname}.html"
    return "application/vnd.jupyter.widget-state+json" in page.read_text(encoding="utf-8")


def budget_for(docname: str, site: Path = SITE) -> int:
    return BUDGET_WITH_SLIDER if has_widget_state(docname, site) else BUDGET_WITHOUT_SLIDER


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(site: Path = SITE):
    """The site over HTTP on a free loopback port; yields its URL."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def measure(page, url: str) -> dict:
    """Open ``url`` in ``page`` and return its weight once the network is idle."""
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    return page.evaluate(PAGE_WEIGHT_JS)


def main(argv: list[str]) -> int:
    from playwright.sync_api import sync_playwright

    site = Path(argv[0]) if argv else SITE  # another built copy of the site, if given
    if not (site / "index.html").exists():
        print("no built site: run `make book` first")
        return 2
    chromium = shutil.which("chromium")
    if chromium is None:
        print("Debian's chromium is needed (make browser-deps)")
        return 2
    over = []
    with serve(site) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        print(f"{'page':26} {'MB':>6} {'budget':>7} {'widget JS':>10} {'blocking':>9} {'FCP ms':>7}")
        for docname in toc_docnames():
            for width in (1280, 390):
                context = browser.new_context(viewport={"width": width, "height": 900})
                page = context.new_page()
                page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url)
                           or route.request.url.startswith("data:") else route.abort())
                result = measure(page, f"{url}/{docname}.html")
                context.close()
                budget = budget_for(docname, site)
                widget = any(s.endswith(WIDGET_SCRIPTS) for s in result["scripts"])
                blocking = [b for b in result["blocking"] if b.endswith(WIDGET_SCRIPTS + ("fontawesome.js",))]
                flag = ""
                if result["bytes"] > budget:
                    flag = "  OVER BUDGET"
                    over.append(docname)
                print(f"{docname + (' @390' if width == 390 else ''):26} {result['bytes'] / MB:6.2f} {budget / MB:6.0f}M "
                      f"{'yes' if widget else 'no':>10} {len(blocking):>9} {result['fcp'] or float('nan'):7.0f}{flag}")
        browser.close()
    load = os.getloadavg()
    print(f"machine load (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    if over:
        print("over budget: " + ", ".join(sorted(set(over))))
        return 1
    print("every page is within its budget (2 MB without a slider, 5 MB with one)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
