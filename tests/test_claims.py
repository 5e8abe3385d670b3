"""Every chapter's claims hold beyond the machine and seed the book is built with.

The book build runs each chapter once, at course seed 0 on this CPU's native dispatch
level. Here every chapter runs once more in a fresh kernel under another seed and a
dispatch level other than the native one (``make claims`` runs the full matrix).
"""
import pytest

from tools.book import chapter_docnames
from tools.claims import ALL_LEVELS, Config, available_levels, cpu_capability, run_chapter

CHAPTERS = chapter_docnames()


def other_levels() -> list[str]:
    native = cpu_capability(None)
    usable, _ = available_levels(ALL_LEVELS)
    return [level for level in usable if level != native] or usable


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(CHAPTERS)), ids=CHAPTERS)
def test_chapter_holds_under_another_seed_and_dispatch_level(index):
    levels = other_levels()
    config = Config(seed=1 + index % 2, dispatch=levels[index % len(levels)])
    run = run_chapter(CHAPTERS[index], config, timeout=300)
    assert run.passed, f"{run.chapter} failed under {config.label}:\n{run.output[-4000:]}"
    assert run.claims, f"{run.chapter} states no claim() with a margin"
