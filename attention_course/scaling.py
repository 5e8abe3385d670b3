"""Chapter 2's slider: how the key dimension d_k and the choice of scaling shape attention.

Dividing the scores by a number is a temperature (chapter 1), so each scaling here is
just ``temperature_frames`` at a temperature that depends on d_k: 1 (no scaling),
√d_k (the Transformer's choice) or d_k. The frames are precomputed and shown with
``FrameSlider``, so the slider works on the static site with no kernel.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from attention_course.plotting import figure_img, plot_attention
from attention_course.widgets import FrameSlider, TemperatureFrame, temperature_frames

# name -> (label for plots, the temperature it divides the scores by, as a function of d_k)
SCALINGS = {
    "none": ("no scaling", lambda d_k: 1.0),
    "sqrt": ("divide by sqrt(d_k)", lambda d_k: math.sqrt(d_k)),
    "linear": ("divide by d_k", lambda d_k: float(d_k)),
}


def default_key_dims() -> list[int]:
    """d_k = 4, 8, ..., 1024: the range chapter 2 explores."""
    return [2**p for p in range(2, 11)]


@dataclass(frozen=True)
class ScalingFrame:
    d_k: int
    scores: np.ndarray  # (n, n) raw dot products q_i . k_j
    by_scaling: dict[str, TemperatureFrame]  # SCALINGS name -> weights and row entropies

    def mean_entropy(self, scaling: str) -> float:
        return float(self.by_scaling[scaling].entropy.mean())


def scaling_frames(key_dims=None, n_tokens: int = 8, seed: int = 0) -> list[ScalingFrame]:
    """Random unit-variance queries and keys for each d_k, under every scaling in SCALINGS.

    Each d_k uses the first d_k coordinates of the same draw, so moving the slider
    adds dimensions to the same vectors instead of drawing new ones.
    """
    key_dims = default_key_dims() if key_dims is None else [int(d) for d in key_dims]
    rng = np.random.default_rng(seed)
    Q = rng.standard_normal((n_tokens, max(key_dims)))
    K = rng.standard_normal((n_tokens, max(key_dims)))
    frames = []
    for d_k in key_dims:
        scores = Q[:, :d_k] @ K[:, :d_k].T
        temperatures = [temperature(d_k) for _, temperature in SCALINGS.values()]
        by_scaling = dict(zip(SCALINGS, temperature_frames(scores, temperatures)))
        frames.append(ScalingFrame(d_k, scores, by_scaling))
    return frames


def scaling_frame_html(frame: ScalingFrame) -> str:
    """One d_k as self-contained HTML: a heatmap per scaling, then the mean row entropies.

    Each scaling is its own image, and the images wrap: side by side on a wide screen, one
    under another on a phone, each at a size where its labels stay readable.
    """
    n = frame.scores.shape[0]
    queries = [f"q{i + 1}" for i in range(n)]
    keys = [f"k{j + 1}" for j in range(n)]
    images = []
    for name, (label, _) in SCALINGS.items():
        fig, ax = plt.subplots(figsize=(4.0, 3.4))
        plot_attention(frame.by_scaling[name].weights, queries, keys, ax=ax, annotate=False,
                       title=f"{label}\nd_k = {frame.d_k}, T = {frame.by_scaling[name].temperature:g}")
        ax.set_xlabel("key")
        ax.set_ylabel("query")
        fig.tight_layout()
        images.append(figure_img(fig, f"attention weights at d_k = {frame.d_k}, {label}"))
    rows = "".join(
        f"<tr><td>{html.escape(label)}</td><td>{frame.mean_entropy(name):.3f}</td>"
        f"<td>{frame.by_scaling[name].weights.max(axis=-1).mean():.3f}</td></tr>"
        for name, (label, _) in SCALINGS.items()
    )
    return (
        f'<div class="scaling-frame" data-dk="{frame.d_k}">'
        f'<div class="frame-panels" style="display: flex; flex-wrap: wrap; gap: 0.5em">{"".join(images)}</div>'
        '<table class="entropy-table"><tr><th>scaling</th><th>mean row entropy (熵), nats</th>'
        f"<th>mean largest weight</th></tr>{rows}</table>"
        f"<p>Entropy 0 = one-hot; {math.log(n):.3f} = uniform over {n} keys. "
        f"Largest weight 1 = one-hot; {1 / n:.3f} = uniform.</p>"
        "</div>"
    )


def scaling_slider(frames: list[ScalingFrame], initial_d_k: int = 64) -> FrameSlider:
    """A FrameSlider over d_k; each position shows the three scalings side by side."""
    dims = [f.d_k for f in frames]
    start = int(np.argmin([abs(math.log(d / initial_d_k)) for d in dims]))
    return FrameSlider([str(d) for d in dims], [scaling_frame_html(f) for f in frames],
                       description="d_k (键的维度)", start=start, width="480px", name="d_k")
