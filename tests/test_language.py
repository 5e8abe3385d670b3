"""Figure words in the reader's language, drawn with a real CJK font
(attention_course/language.py)."""
from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from attention_course import language  # noqa: E402
from attention_course.plotting import plot_attention  # noqa: E402


def glyph(text: str, family: str) -> np.ndarray:
    """Which pixels a 40-pt rendering of ``text`` inks."""
    figure = plt.figure(figsize=(1, 1), dpi=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Glyph … missing from font" for the box test
        figure.text(0.1, 0.3, text, family=family, fontsize=40)
        figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())[..., 0] < 128
    plt.close(figure)
    return pixels


@pytest.mark.parametrize("value, expected", [("", "en"), ("en", "en"), ("zh", "zh"),
                                             ("zh_CN", "zh"), ("zh-CN", "zh"), ("ZH", "zh")])
def test_reader_language_comes_from_course_language(monkeypatch, value, expected):
    monkeypatch.setenv(language.LANGUAGE_VARIABLE, value)
    assert language.reader_language() == expected


def test_chinese_labels_render_as_glyphs_not_boxes(monkeypatch):
    monkeypatch.setenv(language.LANGUAGE_VARIABLE, "zh_CN")
    with matplotlib.rc_context():
        family = language.use_cjk_font()
        first, second = glyph("注", family), glyph("意", family)
    assert first.any() and second.any()
    assert (first != second).sum() > 50, "two different characters drew the same shape"


def test_a_font_without_chinese_draws_the_same_box_for_every_character():
    """What the test above rules out: the missing-glyph box looks the same for all."""
    assert (glyph("注", "DejaVu Sans") == glyph("意", "DejaVu Sans")).all()


def test_the_shared_heatmap_speaks_the_readers_language(monkeypatch):
    with matplotlib.rc_context():
        monkeypatch.setenv(language.LANGUAGE_VARIABLE, "zh")
        axes = plot_attention(np.eye(2), ["a", "b"], ["a", "b"])
        assert axes.get_ylabel() == "查询：发问的词元"
        plt.close(axes.figure)
        monkeypatch.delenv(language.LANGUAGE_VARIABLE)
        axes = plot_attention(np.eye(2), ["a", "b"], ["a", "b"])
        assert axes.get_ylabel() == "query: the token asking"
        plt.close(axes.figure)
