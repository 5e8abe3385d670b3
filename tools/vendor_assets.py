"""Install the site's browser assets from npm and lay them out for Sphinx.

The built website must make no request outside its own origin, so MathJax 3 and the
ipywidgets html-manager are installed from the npm registry
(versions pinned in tools/site_assets/package-lock.json) and copied under
``site_vendor/static/vendor/``, which ``_config.yml`` lists in ``html_static_path``.
Nothing here is committed: it is rebuilt from the lock file.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NPM_PROJECT = ROOT / "tools" / "site_assets"
MODULES = NPM_PROJECT / "node_modules"
VENDOR = ROOT / "site_vendor" / "static" / "vendor"
HTML_MANAGER_DIST = MODULES / "@jupyter-widgets" / "html-manager" / "dist"
FONT_SUFFIXES = {".woff2", ".woff", ".ttf", ".eot", ".svg"}


def lock_digest() -> str:
    return hashlib.sha256((NPM_PROJECT / "package-lock.json").read_bytes()).hexdigest()


def npm_install() -> None:
    """`npm ci` from the lock file, skipped when node_modules already matches it."""
    stamp = MODULES / ".lock-digest"
    if stamp.exists() and stamp.read_text() == lock_digest():
        return
    if shutil.which("npm") is None:
        sys.exit("npm is needed to install the site's MathJax and widget assets (install Node.js >= 18).")
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=NPM_PROJECT,
        check=True,
    )
    stamp.write_text(lock_digest())


def copy_if_changed(src: Path, dst: Path) -> None:
    if dst.exists() and dst.stat().st_size == src.stat().st_size and dst.read_bytes() == src.read_bytes():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)


def html_manager_fonts() -> list[Path]:
    """The icon fonts embed.js asks for, from the folder it was loaded from."""
    return sorted(p for p in HTML_MANAGER_DIST.iterdir() if p.suffix in FONT_SUFFIXES)


def assemble() -> None:
    # embed.js (1.9 MB) renders the standard widgets with no require.js; embed-amd.js
    # (3.6 MB, plus require.js) is only needed for third-party widget libraries.
    copy_if_changed(HTML_MANAGER_DIST / "embed.js", VENDOR / "html-manager" / "embed.js")
    for font in html_manager_fonts():  # embed.js asks for them next to itself
        copy_if_changed(font, VENDOR / "html-manager" / font.name)
    mathjax = MODULES / "mathjax" / "es5"
    for src in mathjax.rglob("*"):
        if src.is_file():
            copy_if_changed(src, VENDOR / "mathjax" / src.relative_to(mathjax))


def main() -> None:
    npm_install()
    assemble()
    print(f"site assets ready in {VENDOR.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
