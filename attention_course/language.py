"""The reader's language for the words a chapter draws into its figures.

A chapter's prose is translated on the website (locales/zh_CN); the words inside a figure
are drawn by code. A helper that labels a figure asks ``words("key", "键")``, which
answers in the reader's language: Chinese when ``COURSE_LANGUAGE`` starts with ``zh``
(``zh``, ``zh_CN``, ``zh-CN``), English otherwise. Chinese words need a CJK font:
the first one installed is put in front of matplotlib's sans-serif fonts, so labels are
drawn as glyphs, never as empty boxes (``make install`` installs Noto CJK where none is).
"""
from __future__ import annotations

import os

LANGUAGE_VARIABLE = "COURSE_LANGUAGE"
# Installed by Debian's fonts-noto-cjk, Adobe's Source Han, or the usual desktop systems.
CJK_FONTS = ("Noto Sans CJK SC", "Noto Serif CJK SC", "Source Han Sans SC",
             "WenQuanYi Zen Hei", "Microsoft YaHei", "PingFang SC", "SimHei")


def reader_language() -> str:
    """'zh' or 'en', from ``COURSE_LANGUAGE``."""
    value = os.environ.get(LANGUAGE_VARIABLE, "").strip().lower()
    return "zh" if value.startswith("zh") else "en"


def cjk_font() -> str | None:
    """The first installed CJK font family matplotlib can use, or None. matplotlib
    caches its font list: a font installed after that is found by rebuilding it once."""
    from matplotlib import font_manager
    for attempt in range(2):
        installed = {font.name for font in font_manager.fontManager.ttflist}
        found = next((name for name in CJK_FONTS if name in installed), None)
        if found or attempt:
            return found
        refresh_font_cache()
    return None


def use_cjk_font() -> str:
    """Draw text with a CJK font from now on (Latin letters too); a clear error when
    none is installed, instead of figures full of empty boxes."""
    import matplotlib
    family = cjk_font()
    if family is None:
        raise RuntimeError(
            "no CJK font is installed, so Chinese labels would be empty boxes: install "
            "one (Debian/Ubuntu: apt-get install fonts-noto-cjk) and restart the "
            "kernel")
    fonts = matplotlib.rcParams["font.sans-serif"]
    if fonts[:1] != [family]:
        matplotlib.rcParams["font.sans-serif"] = [family, *fonts]
    matplotlib.rcParams["axes.unicode_minus"] = False  # CJK fonts lack U+2212
    return family


def words(english: str, chinese: str) -> str:
    """A figure's words in the reader's language."""
    if reader_language() == "zh":
        use_cjk_font()
        return chinese
    return english


def refresh_font_cache() -> None:
    """Rebuild matplotlib's font list (and its cache file) from the installed fonts."""
    from matplotlib import font_manager
    # In place, as matplotlib does itself: font_manager.findfont is bound to this object.
    fresh = font_manager._load_fontmanager(try_read_cache=False)
    vars(font_manager.fontManager).update(vars(fresh))


if __name__ == "__main__":
    print(f"CJK font for figures: {cjk_font() or 'none installed'}")
