"""The temperature slider: softmax(scores / T) as an attention heatmap.

The same control must work in a live kernel and on the static website, where no
kernel runs. So every frame is computed up front in Python and the slider is
linked to the frames *in the browser* (``jslink``): moving it switches frames
client-side, with or without a kernel.
"""
from __future__ import annotations

import html
from dataclasses import dataclass

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

from attention_course.attention import entropy, softmax
from attention_course.plotting import figure_img, plot_attention


def default_temperatures() -> np.ndarray:
    """25 temperatures from 0.05 to 20, evenly spaced in log scale, with T = 1 among them."""
    return np.round(np.logspace(np.log10(0.05), np.log10(20), 25), 4)


@dataclass(frozen=True)
class TemperatureFrame:
    temperature: float
    weights: np.ndarray  # (n_queries, n_keys), rows sum to 1
    entropy: np.ndarray  # (n_queries,) in nats


def temperature_label(t: float) -> str:
    """A temperature rounded for reading: two significant digits (4.4721 -> '4.5', 0.0824 -> '0.082')."""
    return f"{float(t):.2g}" if t < 10 else f"{float(t):.0f}"


def temperature_frames(scores, temperatures) -> list[TemperatureFrame]:
    """The attention weights and their row entropies at each temperature."""
    scores = np.asarray(scores, dtype=float)
    frames = []
    for t in temperatures:
        weights = softmax(scores, axis=-1, temperature=float(t))
        frames.append(TemperatureFrame(float(t), weights, entropy(weights, axis=-1)))
    return frames


def frame_html(frame: TemperatureFrame, query_tokens, key_tokens) -> str:
    """One frame as self-contained HTML: the heatmap PNG and each row's entropy."""
    fig, ax = plt.subplots(figsize=(4.2, 3.4))
    plot_attention(frame.weights, query_tokens, key_tokens, ax=ax, title=f"softmax(scores / T), T = {temperature_label(frame.temperature)}")
    image = figure_img(fig, f"attention weights at temperature {temperature_label(frame.temperature)}")
    max_entropy = np.log(len(key_tokens))
    rows = "".join(
        f"<tr><td>{html.escape(tok)}</td><td>{h:.3f}</td></tr>"
        for tok, h in zip(query_tokens, frame.entropy)
    )
    return (
        f'<div class="temperature-frame" data-temperature="{frame.temperature:g}">'
        f"{image}"
        f'<table class="entropy-table"><tr><th>query</th><th>entropy (熵), nats</th></tr>{rows}</table>'
        f"<p>0 = one-hot (all weight on one key); {max_entropy:.3f} = uniform over {len(key_tokens)} keys.</p>"
        "</div>"
    )


class FrameSlider(widgets.VBox):
    """A slider whose positions show precomputed HTML frames, linked in the browser.

    Works with and without a kernel: the frames live in the widget state that is
    saved with the notebook, and ``jslink`` switches them client-side. ``labels``
    are the slider's readout at each position. The slider is as wide as the column up to
    ``width``, so it fits a phone screen; ``name`` is what a screen reader calls it.
    """

    def __init__(self, labels, pages_html, description, start=0, width="420px", name=None):
        if len(labels) != len(pages_html):
            raise ValueError(f"{len(labels)} labels for {len(pages_html)} frames")
        self.stack = widgets.Stack([widgets.HTML(page) for page in pages_html], selected_index=start)
        self.slider = widgets.SelectionSlider(
            options=[(label, i) for i, label in enumerate(labels)],
            value=start,
            description=description,
            continuous_update=True,
            style={"description_width": "initial"},
            layout=widgets.Layout(width="100%", max_width=width),
        )
        # The static site's course_site.js names the slider handle from this class:
        # "course-slider-name-<name>" (spaces as underscores), e.g. "temperature".
        self.slider.add_class("course-slider")
        if name:
            self.slider.add_class("course-slider-name-" + "_".join(name.split()))
        self.link = widgets.jslink((self.slider, "index"), (self.stack, "selected_index"))
        super().__init__([self.slider, self.stack])


def temperature_slider(scores, query_tokens, key_tokens=None, temperatures=None, initial=1.0):
    """A FrameSlider over temperatures showing the attention heatmap and row entropies."""
    key_tokens = list(query_tokens if key_tokens is None else key_tokens)
    temperatures = default_temperatures() if temperatures is None else np.asarray(temperatures, dtype=float)
    frames = temperature_frames(scores, temperatures)
    start = int(np.argmin(np.abs(np.log(temperatures) - np.log(initial))))
    return FrameSlider(
        [temperature_label(t) for t in temperatures],
        [frame_html(f, query_tokens, key_tokens) for f in frames],
        description="T (温度)",
        start=start,
        name="temperature",
    )
