"""`make translations`: the Chinese edition's catalogues, kept in step with the English.

The course is written once, in English; the Chinese edition is Sphinx's gettext flow
over the same sources, not a copy of the chapters. Every paragraph, heading, list item,
table cell, admonition, figure caption and alt text of the built pages is a message;
code and executed outputs are not (they are shared by both editions).

1. ``extract``: a gettext build of the book writes one ``.pot`` per page into
   ``_build/gettext/`` (``gettext_compact = False``). It reads the executed notebooks
   through the execution cache, so run it after ``make book``; output figures need
   the html builder's choice of outputs to be found at all.
2. ``update``: sphinx-intl merges them into ``locales/zh_CN/LC_MESSAGES/<page>.po``.
   A new message arrives untranslated; a changed one keeps its old translation marked
   *fuzzy*, to be checked.
3. ``report``: what still needs a translator, per catalogue, and any translation that
   lost a formula, inline code, a role's target or a link target. tests/test_translations.py
   fails while any message is untranslated or fuzzy, and when a catalogue is out of
   step with the sources, so an English edit cannot ship without its Chinese.

    python -m tools.translations            # extract, update, report
    python -m tools.translations --report   # only the report (no build)
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LANGUAGE = "zh_CN"
LOCALE_DIR = ROOT / "locales"
CATALOGUES = LOCALE_DIR / LANGUAGE / "LC_MESSAGES"
POT_DIR = ROOT / "_build" / "gettext"
# The settings both the extraction and the Chinese build need (tools/book.py).
I18N_CONFIG = {"locale_dirs": [str(LOCALE_DIR)], "gettext_compact": False,
               "gettext_uuid": False, "gettext_location": False}


def gettext_overrides() -> dict:
    """The extraction build: one catalogue per page, and the outputs the html builder
    would show (myst-nb keeps none for a builder it does not know, so output figures
    and their alt text would be missing)."""
    from myst_nb.core.render import base_render_priority
    html = base_render_priority()["html"]
    return {**I18N_CONFIG, "latex_individualpages": False,
            "nb_mime_priority_overrides": [("gettext", mime, rank)
                                           for mime, rank in html.items()]}


def extract(root: Path = ROOT, pot_dir: Path = POT_DIR) -> None:
    from jupyter_book.sphinx import build_sphinx
    status = build_sphinx(root, pot_dir, noconfig=True, path_config=str(root / "_config.yml"),
                          confoverrides=gettext_overrides(), builder="gettext",
                          doctreedir=str(pot_dir / ".doctrees"), freshenv=True,
                          warningiserror=True, keep_going=True, quiet=True)
    if status != 0:
        raise SystemExit(f"extracting the messages failed (status {status})")


def update(pot_dir: Path = POT_DIR, locale_dir: Path = LOCALE_DIR) -> None:
    from sphinx_intl.basic import update as intl_update
    intl_update(str(locale_dir), str(pot_dir), (LANGUAGE,), ignore_obsolete=True, jobs=1)
    catalogues = locale_dir / LANGUAGE / "LC_MESSAGES"
    pages = {p.relative_to(pot_dir).with_suffix("") for p in pot_dir.rglob("*.pot")}
    for po in catalogues.rglob("*.po"):  # a page that no longer exists
        if po.relative_to(catalogues).with_suffix("") not in pages:
            po.unlink()


@dataclass(frozen=True)
class CatalogueState:
    page: str
    messages: int
    untranslated: tuple[str, ...]
    fuzzy: tuple[str, ...]

    @property
    def done(self) -> bool:
        return not self.untranslated and not self.fuzzy


def read_catalogue(path: Path):
    from babel.messages.pofile import read_po
    with path.open("rb") as handle:
        return read_po(handle, locale=LANGUAGE)


def catalogue_states(catalogues: Path = CATALOGUES) -> list[CatalogueState]:
    states = []
    for path in sorted(catalogues.rglob("*.po")):
        messages = [m for m in read_catalogue(path) if m.id]
        states.append(CatalogueState(
            str(path.relative_to(catalogues).with_suffix("")), len(messages),
            tuple(m.id for m in messages if not m.string and not m.fuzzy),
            tuple(m.id for m in messages if m.fuzzy)))
    return states


# What a translation must carry over unchanged: formulas, inline code, the roles and
# where they point, link targets. The text inside a role (`{doc}`Title <target>``)
# is translated, but not its target.
MATH = re.compile(r"\$\$.+?\$\$|\$[^$\n]+?\$", re.S)
ROLE = re.compile(r"\{([\w:-]+)\}`([^`]*)`")
CODE = re.compile(r"(?<![}`])`([^`]+)`")
LINK_TARGET = re.compile(r"\]\(([^)\s]+)\)")
ROLE_TARGET = re.compile(r"<([^<>]+)>\s*$")


def protected_parts(text: str) -> dict[str, list[str]]:
    roles = ROLE.findall(text)
    rest = ROLE.sub("", text)
    return {
        "formulas": sorted(MATH.findall(rest)),
        "inline code": sorted(CODE.findall(MATH.sub("", rest))),
        "roles": sorted(name for name, _ in roles),
        "role targets": sorted(m[1] for _, body in roles if (m := ROLE_TARGET.search(body))),
        "link targets": sorted(LINK_TARGET.findall(text)),
    }


def markup_problems(original: str, translation: str) -> list[str]:
    """What a translation lost or changed of the original's markup."""
    if not translation:
        return []
    want, got = protected_parts(original), protected_parts(translation)
    problems = [f"{kind}: {want[kind]} became {got[kind]}" for kind in want
                if want[kind] != got[kind]]
    if emphasis_counts(translation) != emphasis_counts(original):
        problems.append(
            f"bold/emphasis: {emphasis_counts(original)} in the original, "
            f"{emphasis_counts(translation)} in the translation (as rendered: bold, "
            "emphasis, ** left as literal text). A closing ** right after （）。， and "
            "before a Chinese character is not closed: move the punctuation or reword")
    return problems


def emphasis_counts(text: str) -> tuple[int, int, int]:
    """(bold, emphasis, literal **) as CommonMark, which MyST uses, renders ``text``."""
    from markdown_it import MarkdownIt
    tokens = [t for block in MarkdownIt("commonmark").parse(text) for t in block.children or []]
    return (sum(t.type == "strong_open" for t in tokens),
            sum(t.type == "em_open" for t in tokens),
            sum(t.content.count("**") for t in tokens if t.type == "text"))


def lint(catalogues: Path = CATALOGUES) -> list[str]:
    found = []
    for path in sorted(catalogues.rglob("*.po")):
        for message in read_catalogue(path):
            for problem in markup_problems(message.id, message.string) if message.id else []:
                found.append(f"{path.relative_to(catalogues)}: {message.id[:60]!r}: {problem}")
    return found


def message_ids(path: Path) -> set[str]:
    return {m.id for m in read_catalogue(path) if m.id}


def report(states: list[CatalogueState]) -> str:
    lines = [f"{'page':<34} {'messages':>8} {'untranslated':>13} {'fuzzy':>6}"]
    for state in states:
        lines.append(f"{state.page:<34} {state.messages:>8} {len(state.untranslated):>13} "
                     f"{len(state.fuzzy):>6}")
    todo = sum(len(s.untranslated) + len(s.fuzzy) for s in states)
    lines.append(f"{todo} message(s) need a translator" if todo else
                 "every message is translated")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report", action="store_true", help="only report, build nothing")
    args = parser.parse_args(argv)
    if not args.report:
        extract()
        update()
    states = catalogue_states()
    print(report(states))
    problems = lint()
    for problem in problems:
        print("markup:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
