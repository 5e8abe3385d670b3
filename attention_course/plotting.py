"""Plots every chapter uses: labelled attention heatmaps and PNG frames for widgets."""
from __future__ import annotations

import base64
import html
import io
import struct

import matplotlib.pyplot as plt
import numpy as np


def plot_attention(weights, query_tokens, key_tokens, ax=None, title=None, annotate=True):
    """Draw attention weights as a heatmap: rows are queries, columns are keys."""
    weights = np.asarray(weights, dtype=float)
    if ax is None:
        _, ax = plt.subplots(figsize=(0.6 * len(key_tokens) + 2, 0.6 * len(query_tokens) + 1))
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(key_tokens)), key_tokens, rotation=45, ha="right")
    ax.set_yticks(range(len(query_tokens)), query_tokens)
    ax.set_xlabel("key: the token attended to")
    ax.set_ylabel("query: the token asking")
    if annotate:
        for i, row in enumerate(weights):
            for j, w in enumerate(row):
                ax.text(j, i, f"{w:.2f}", ha="center", va="center",
                        color="black" if w > 0.6 else "white", fontsize=10)
    if title:
        ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="attention weight")
    return ax


def figure_to_png(fig, dpi: int = 144) -> bytes:
    """Render a figure to PNG bytes and close it (frames for static widgets).

    144 dpi is twice the size the page shows it at (see ``png_img``): sharp on high-DPI screens.
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels, read from the PNG header."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    return struct.unpack(">II", png[16:24])


def png_img(png: bytes, alt: str, scale: int = 2) -> str:
    """An inline ``<img>`` for a PNG drawn at ``scale`` x: shown at 1/scale of its pixel size,
    shrinking with the column on narrow screens."""
    width, height = png_size(png)
    data = base64.b64encode(png).decode("ascii")
    return (f'<img alt="{html.escape(alt)}" width="{width // scale}" height="{height // scale}" '
            f'style="max-width: 100%; height: auto" src="data:image/png;base64,{data}"/>')
