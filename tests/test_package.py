"""Unit tests for the shared package: device, seeds, claims, attention, widget frames."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import ipywidgets as widgets

import attention_course.runtime as device_module
from attention_course import describe_device, device, start_chapter
from attention_course.claims import ClaimFailed, claim
from attention_course.runtime import course_seed, generator_for, seed_for
from attention_course.attention import entropy, scaled_dot_product_attention, softmax
from attention_course.data import toy_sentence
from attention_course.widgets import (
    default_temperatures,
    frame_html,
    FrameSlider,
    temperature_frames,
    temperature_slider,
)


def force_backends(monkeypatch, cuda: bool, mps: bool) -> None:
    monkeypatch.setattr(device_module.torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(device_module.torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize(
    "cuda, mps, expected",
    [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu")],
)
def test_device_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    force_backends(monkeypatch, cuda, mps)
    assert device().type == expected


def test_describe_device_names_the_cpu(monkeypatch):
    force_backends(monkeypatch, cuda=False, mps=False)
    assert describe_device().startswith("cpu (")


def test_start_chapter_seeds_uses_one_cpu_thread_and_says_where_it_runs(monkeypatch, capsys):
    force_backends(monkeypatch, cuda=False, mps=False)
    monkeypatch.setenv("COURSE_SEED", "3")
    threads = torch.get_num_threads()
    try:
        assert start_chapter().type == "cpu"
        first = torch.rand(3)
        start_chapter()
        assert torch.equal(first, torch.rand(3))
        assert torch.get_num_threads() == 1
        out = capsys.readouterr().out
        assert "This chapter runs on: cpu (1 thread" in out and "course seed 3" in out
    finally:
        torch.set_num_threads(threads)


def test_course_seed_changes_every_stream_and_streams_differ(monkeypatch):
    monkeypatch.delenv("COURSE_SEED", raising=False)
    default = {name: seed_for(name) for name in ("model", "test set", "data order")}
    assert len(set(default.values())) == 3, "different streams get different seeds"
    monkeypatch.setenv("COURSE_SEED", "0")
    assert {name: seed_for(name) for name in default} == default, "unset means 0"
    monkeypatch.setenv("COURSE_SEED", "1")
    assert all(seed_for(name) != seed for name, seed in default.items())
    first = torch.rand(4, generator=generator_for("test set"))
    assert torch.equal(first, torch.rand(4, generator=generator_for("test set")))


@pytest.mark.parametrize("bad", ["one", "1.5", "-2"])
def test_a_bad_course_seed_is_a_clear_error(monkeypatch, bad):
    monkeypatch.setenv("COURSE_SEED", bad)
    with pytest.raises(ValueError, match="COURSE_SEED"):
        course_seed()


def test_claim_prints_value_and_bound_and_fails_like_an_assert(tmp_path, monkeypatch, capsys):
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv("COURSE_CLAIMS_LOG", str(log))
    assert claim("accuracy", 0.97, at_least=0.95) == 0.97
    assert "✔ accuracy 0.97, needs ≥ 0.95" in capsys.readouterr().out
    with pytest.raises(ClaimFailed, match="needs > 0.5 and < 2"):
        claim("ratio", 3.0, above=0.5, below=2.0)
    with pytest.raises(ClaimFailed):
        claim("nothing measured", float("nan"), at_least=0)
    with pytest.raises(ClaimFailed):
        claim("strict", 1.0, above=1.0)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["holds"] for r in records] == [True, False, False, False]
    assert records[0]["margin"] == pytest.approx(0.02 / 0.95)
    assert records[1]["margin"] == pytest.approx(-0.5), "the bound it misses sets the margin"
    with pytest.raises(TypeError):
        claim("no bound", 1.0)


def test_softmax_is_stable_and_respects_minus_infinity():
    x = np.array([[1000.0, 1001.0, -np.inf], [0.0, 0.0, 0.0]])
    w = softmax(x)
    assert np.all(np.isfinite(w))
    assert w[0, 2] == 0.0
    np.testing.assert_allclose(w, torch.softmax(torch.tensor(x), dim=-1).numpy())


def test_softmax_axis_and_temperature():
    x = np.random.default_rng(0).normal(size=(3, 4, 5))
    np.testing.assert_allclose(softmax(x, axis=1, temperature=2.0), torch.softmax(torch.tensor(x / 2.0), dim=1).numpy())
    with pytest.raises(ValueError, match="positive"):
        softmax(x, temperature=0.0)


def test_entropy_bounds():
    assert entropy(np.array([0.0, 1.0, 0.0])) == 0.0
    assert np.isclose(entropy(np.full(5, 0.2)), np.log(5))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_attention_matches_torch_with_batch_dims_and_mask(dtype):
    g = torch.Generator().manual_seed(0)
    Q, K, V = (torch.randn(2, 3, n, d, generator=g, dtype=dtype) for n, d in [(4, 8), (6, 8), (6, 5)])
    mask = torch.rand(2, 1, 4, 6, generator=g) > 0.4
    mask[..., 0] = True
    out, weights = scaled_dot_product_attention(Q.numpy(), K.numpy(), V.numpy(), mask=mask.numpy())
    expected = F.scaled_dot_product_attention(Q.double(), K.double(), V.double(), attn_mask=mask)
    np.testing.assert_allclose(out, expected.numpy(), atol=1e-5)
    assert np.all(weights[~np.broadcast_to(mask.numpy(), weights.shape)] == 0.0)


def test_toy_sentence_scores_are_small_integers():
    s = toy_sentence()
    scores = (s.X @ s.W_q) @ (s.X @ s.W_k).T
    assert np.array_equal(scores, np.round(scores)) and np.abs(scores).max() <= 6


def test_temperatures_include_one_and_span_cold_to_hot():
    t = default_temperatures()
    assert t[0] == 0.05 and t[-1] == 20 and 1.0 in t and np.all(np.diff(t) > 0)


def test_temperature_frames_sharpen_when_cold_and_flatten_when_hot():
    scores = np.array([[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]])
    frames = temperature_frames(scores, [0.01, 1.0, 1000.0])
    np.testing.assert_allclose(frames[0].weights[0], [0, 0, 1], atol=1e-6)
    np.testing.assert_allclose(frames[-1].weights, 1 / 3, atol=1e-3)
    mean_entropy = [f.entropy.mean() for f in frames]
    assert mean_entropy == sorted(mean_entropy)


def test_frame_html_holds_heatmap_and_each_rows_entropy():
    frame = temperature_frames(np.array([[0.0, 1.0]]), [0.5])[0]
    page = frame_html(frame, ["q<1>"], ["a", "b"])
    assert 'src="data:image/svg+xml;base64,' in page
    assert "q&lt;1&gt;" in page  # token text is escaped
    assert f"{frame.entropy[0]:.3f}" in page


def test_temperature_slider_links_readout_to_frames_in_the_browser():
    box = temperature_slider(np.array([[0.0, 1.0], [1.0, 0.0]]), ["x", "y"])
    slider, stack = box.children
    assert isinstance(slider, widgets.SelectionSlider) and isinstance(stack, widgets.Stack)
    assert len(stack.children) == len(default_temperatures())
    assert slider.label == "1" and stack.selected_index == slider.index
    assert box.link.source == (slider, "index") and box.link.target == (stack, "selected_index")


def test_frame_slider_rejects_mismatched_labels():
    with pytest.raises(ValueError, match="2 labels for 1 frames"):
        FrameSlider(["a", "b"], ["<p>only one</p>"], description="x")
