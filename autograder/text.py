"""Names and messages from submissions are data: never terminal escapes or formulas.

Student ids come from folder, zip and file names, notes quote learners' exceptions:
all of it is shown on the instructor's terminal and opened in a spreadsheet.
``printable`` removes control characters (ESC, BEL, …) and the Unicode controls that
reorder text; ``csv_cell`` also neutralises a cell that a spreadsheet would read as a
formula (starting with = + - @, tab or CR) by prefixing an apostrophe, the usual
(OWASP) remedy — the cell then shows the text as it was.
"""
from __future__ import annotations

import unicodedata

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                    "\u2066\u2067\u2068\u2069")


def printable(text: str, keep_newlines: bool = False) -> str:
    kept = "\n" if keep_newlines else ""
    return "".join(ch for ch in str(text)
                   if ch in kept or (unicodedata.category(ch) != "Cc"
                                     and ch not in BIDI_CONTROLS))


def csv_cell(value) -> str:
    """A value for grades.csv: printable, one line, never a formula."""
    if isinstance(value, float):
        return f"{value:g}"
    raw = str(value)
    text = printable(raw.replace("\n", " | "))
    if raw.startswith(FORMULA_STARTS) or text.startswith(FORMULA_STARTS):
        text = "'" + text
    return text
