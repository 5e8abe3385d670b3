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


# --- a real PostgreSQL server for the grader's gradebook tests ------------------------

def _postgres_bin() -> "Path | None":
    import glob
    import shutil
    from pathlib import Path
    found = shutil.which("initdb")
    if found:  # /usr/local/bin may link only initdb and pg_ctl: use their real folder
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


@pytest.fixture(scope="session")
def postgres_server():
    """initdb + pg_ctl in a temporary folder, as an unprivileged user when run as root
    (initdb refuses root), listening only on a Unix socket; stopped afterwards. Yields
    a function that creates a fresh database and returns its SQLAlchemy URL."""
    import os
    import pwd
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed: "
                    "`make postgres-deps` installs Debian's postgresql")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("the psycopg driver is not installed (pip install -r requirements.txt)")
    root = Path(tempfile.mkdtemp(prefix="autograder-pg-"))
    prefix = []
    if os.geteuid() == 0:
        user = next((name for name in ("postgres", "nobody")
                     if _has_user(name)), None)
        if user is None:
            pytest.skip("running as root and no unprivileged user to run initdb as")
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
        prefix = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}",
                  "--init-groups"] if user != "nobody" else [
                  "setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}",
                  "--clear-groups"]
    data, socket_dir = root / "data", root
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "HOME": str(root)}

    def run(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, *command], cwd=root, env=env, capture_output=True,
                              text=True)

    done = run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
               "--no-sync", "-E", "UTF8")
    assert done.returncode == 0, done.stdout + done.stderr
    options = f"-k {socket_dir} -c listen_addresses='' -c fsync=off -c max_connections=100"
    done = run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
               str(root / "server.log"), "-w", "-t", "120", "start")
    assert done.returncode == 0, done.stdout + done.stderr
    counter = iter(range(10**6))

    def new_database(name: str = "") -> str:
        name = name or f"gradebook{next(counter)}"
        made = run(str(bin_dir / "createdb"), "-h", str(socket_dir), "-U", "postgres", name)
        assert made.returncode == 0, made.stderr
        return f"postgresql+psycopg://postgres@/{name}?host={socket_dir}"

    try:
        yield new_database
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _has_user(name: str) -> bool:
    import pwd
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
