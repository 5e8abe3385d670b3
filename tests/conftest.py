"""Shared fixtures: the built site (built once per test run) and a loopback server for it."""
from __future__ import annotations

import functools
import http.server
import socketserver
import threading

import pytest

from tools.book import SITE, build


@pytest.fixture(scope="session")
def book_build():
    """Build the book once, exactly as `make book` does; later tests read the result."""
    return build()


@pytest.fixture(scope="session")
def site(book_build):
    if book_build.returncode != 0:
        pytest.fail("the book build failed:\n" + (book_build.stdout + book_build.stderr)[-6000:])
    return SITE


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def site_url(site):
    """The built site served over HTTP on a free loopback port."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
