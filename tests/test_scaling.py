"""Unit tests for chapter 2's scaling frames and slider."""
import math

import numpy as np
import pytest

from attention_course.attention import softmax
from attention_course.scaling import (
    SCALINGS,
    default_key_dims,
    scaling_frame_html,
    scaling_frames,
    scaling_slider,
)


@pytest.fixture(scope="module")
def frames():
    return scaling_frames([4, 64, 1024], n_tokens=6, seed=0)


def test_default_key_dims_span_4_to_1024():
    dims = default_key_dims()
    assert dims[0] == 4 and dims[-1] == 1024 and all(b == 2 * a for a, b in zip(dims, dims[1:]))


def test_each_scaling_is_softmax_at_its_temperature(frames):
    for frame in frames:
        assert set(frame.by_scaling) == set(SCALINGS)
        for name, (_, temperature) in SCALINGS.items():
            expected = softmax(frame.scores, temperature=temperature(frame.d_k))
            np.testing.assert_allclose(frame.by_scaling[name].weights, expected)
            np.testing.assert_allclose(frame.by_scaling[name].weights.sum(axis=-1), 1.0)


def test_larger_d_k_extends_the_same_vectors():
    small, large = scaling_frames([4, 8], n_tokens=5, seed=3)
    rng = np.random.default_rng(3)
    Q, K = rng.standard_normal((5, 8)), rng.standard_normal((5, 8))
    np.testing.assert_allclose(small.scores, Q[:, :4] @ K[:, :4].T)
    np.testing.assert_allclose(large.scores, Q @ K.T)


def test_unscaled_sharpens_linear_flattens_sqrt_stays(frames):
    first, last = frames[0], frames[-1]
    assert last.mean_entropy("none") < first.mean_entropy("none") - 0.5
    assert last.mean_entropy("linear") > math.log(6) - 0.01
    assert abs(last.mean_entropy("sqrt") - first.mean_entropy("sqrt")) < 0.6


def test_frame_html_and_slider(frames):
    page = scaling_frame_html(frames[1])
    assert page.count("data:image/svg+xml;base64,") == len(SCALINGS)  # one image per scaling, wrapping
    assert f"{frames[1].mean_entropy('sqrt'):.3f}" in page
    slider = scaling_slider(frames, initial_d_k=64)
    assert [label for label, _ in slider.slider.options] == ["4", "64", "1024"]
    assert slider.slider.value == 1 and slider.stack.selected_index == 1
    assert len(slider.stack.children) == 3
