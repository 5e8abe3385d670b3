"""Plots every chapter uses: labelled attention heatmaps and PNG frames for widgets."""
from __future__ import annotations

import io

import matplotlib.pyplot as plt
import numpy as np


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
    ax.set_xlabel("key: the token attended to")
    ax.set_ylabel("query: the token asking")
    if annotate:
        for i, row in enumerate(weights):
            for j, w in enumerate(row):
                ax.text(j, i, f"{w:.2f}", ha="center", va="center",
                        color="black" if w > 0.6 else "white", fontsize=8)
    if title:
        ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="attention weight")
    return ax


def figure_to_png(fig, dpi: int = 72) -> bytes:
    """Render a figure to PNG bytes and close it (frames for static widgets)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()
