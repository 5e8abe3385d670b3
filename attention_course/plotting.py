"""Plots every chapter uses: labelled attention heatmaps and PNG frames for widgets."""
from __future__ import annotations

import base64
import html
import io
import re

import matplotlib.pyplot as plt
import numpy as np

from attention_course.language import words


def plot_attention(weights, query_tokens, key_tokens, ax=None, title=None,
                   annotate=True):
    """Draw attention weights as a heatmap: rows are queries, columns are keys."""
    weights = np.asarray(weights, dtype=float)
    if ax is None:
        figsize = (0.6 * len(key_tokens) + 2, 0.6 * len(query_tokens) + 1)
        _, ax = plt.subplots(figsize=figsize)
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(key_tokens)), key_tokens, rotation=45, ha="right")
    ax.set_yticks(range(len(query_tokens)), query_tokens)
    ax.set_xlabel(words("key: the token attended to", "键：被关注的词元"))
    ax.set_ylabel(words("query: the token asking", "查询：发问的词元"))
    if annotate:
        for i, row in enumerate(weights):
            for j, w in enumerate(row):
                ax.text(j, i, f"{w:.2f}", ha="center", va="center",
                        color="black" if w > 0.6 else "white", fontsize=10)
    if title:
        ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=words("attention weight", "注意力权重"))
    return ax


def figure_to_png(fig, dpi: int = 192) -> bytes:
    """Render a figure to PNG bytes and close it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def figure_to_svg(fig) -> bytes:
    """Render a figure to SVG bytes and close it: sharp at any zoom, text kept as text (small)."""
    buffer = io.BytesIO()
    with plt.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg", dpi=192, bbox_inches="tight")  # dpi: embedded heatmap pixels
    plt.close(fig)
    return buffer.getvalue()


def svg_size(svg: bytes) -> tuple[int, int]:
    """(width, height) in CSS pixels of a matplotlib SVG, whose root gives them in points."""
    root = re.search(rb"<svg[^>]*>", svg).group(0)
    width, height = (float(re.search(rb'%s="([0-9.]+)pt"' % key, root).group(1)) for key in (b"width", b"height"))
    return round(width * 4 / 3), round(height * 4 / 3)


def figure_img(fig, alt: str) -> str:
    """A self-contained ``<img>`` of a figure for static widget frames: an SVG data URI shown at
    matplotlib's size (inches as CSS inches, so a 10-point label is 13 px), shrinking with the
    column on narrow screens. Closes the figure."""
    svg = figure_to_svg(fig)
    width, height = svg_size(svg)
    data = base64.b64encode(svg).decode("ascii")
    return (f'<img alt="{html.escape(alt)}" width="{width}" height="{height}" '
            f'style="max-width: 100%; height: auto" src="data:image/svg+xml;base64,{data}"/>')
