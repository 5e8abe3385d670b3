"""The tiny GPT: sampling, causal independence, the KV cache, the corpus, the slider."""
import numpy as np
import pytest
import torch

from attention_course.gpt import (
    KVCache, TinyGPT, ai_corpus, corpus_vocab, decode_text, encode_prompt, encode_sentences, generate,
    next_token_probs, next_token_slider, next_word_counts, sample_next_token, sampling_temperatures,
)


def test_greedy_when_temperature_is_zero_or_top_k_is_one():
    logits = torch.randn(16, 10, generator=torch.Generator().manual_seed(0)) * 3
    best = logits.argmax(-1)
    assert torch.equal(sample_next_token(logits, temperature=0.0), best)
    assert torch.equal(sample_next_token(logits, top_k=1), best)
    assert torch.equal(next_token_probs(logits, 0.0).argmax(-1), best)
    torch.testing.assert_close(next_token_probs(logits, 1e-4), next_token_probs(logits, 0.0))


def test_samples_follow_softmax_over_temperature_and_top_k():
    values = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0])
    draws = sample_next_token(values.expand(40_000, -1), temperature=0.5, top_k=3,
                              generator=torch.Generator().manual_seed(1))
    frequencies = torch.bincount(draws, minlength=5) / len(draws)
    expected = torch.zeros(5)
    expected[:3] = torch.softmax(values[:3] / 0.5, -1)
    assert frequencies[3:].sum() == 0
    torch.testing.assert_close(frequencies, expected, atol=0.01, rtol=0)


def test_next_token_probs_rejects_bad_settings():
    with pytest.raises(ValueError):
        next_token_probs(torch.zeros(3), temperature=-1.0)
    with pytest.raises(ValueError):
        next_token_probs(torch.zeros(3), top_k=0)


def test_earlier_positions_ignore_later_tokens():
    torch.manual_seed(0)
    model = TinyGPT(20, max_len=12).eval()
    ids = torch.randint(0, 20, (2, 10))
    changed = ids.clone()
    changed[:, 6] = (changed[:, 6] + 1) % 20
    with torch.no_grad():
        a, b = model(ids), model(changed)
    torch.testing.assert_close(a[:, :6], b[:, :6])
    assert (a[:, 6] - b[:, 6]).abs().max() > 1e-4


def test_kv_cache_gives_the_same_logits_as_recomputing():
    torch.manual_seed(1)
    model = TinyGPT(20, max_len=16, num_layers=3).eval()
    ids = torch.randint(0, 20, (3, 12))
    cache = KVCache()
    with torch.no_grad():
        full = model(ids)
        stepwise = torch.cat([model.forward_cached(ids[:, :5], cache)]
                             + [model.forward_cached(ids[:, t:t + 1], cache) for t in range(5, 12)], dim=1)
    assert cache.length == 12 and len(cache.keys) == 3 and cache.keys[0].shape == (3, 4, 12, 16)
    torch.testing.assert_close(stepwise, full, atol=1e-5, rtol=1e-5)


def test_generate_with_and_without_cache_agree():
    torch.manual_seed(2)
    model = TinyGPT(15, max_len=16)
    prompt = torch.randint(0, 15, (2, 4))
    runs = [generate(model, prompt, 6, temperature=1.0, top_k=5, use_cache=c,
                     generator=torch.Generator().manual_seed(3)) for c in (True, False)]
    assert runs[0].tokens.shape == (2, 10) and runs[0].logits.shape == (2, 6, 15)
    assert torch.equal(runs[0].tokens, runs[1].tokens)
    torch.testing.assert_close(runs[0].logits, runs[1].logits, atol=1e-5, rtol=1e-5)
    assert torch.equal(runs[0].tokens[:, :4], prompt)


def test_positions_beyond_max_len_are_refused():
    model = TinyGPT(10, max_len=4)
    with pytest.raises(ValueError, match="max_len"):
        model(torch.zeros(1, 5, dtype=torch.long))


def test_corpus_vocab_prompt_and_counts():
    sentences = ai_corpus(500, seed=0)
    vocab = corpus_vocab(sentences)
    counts = next_word_counts(sentences, "The best thing about AI is its")
    assert set(counts) == {"ability", "potential", "speed", "patience"}
    assert counts["ability"] > counts["speed"]
    prompt = encode_prompt(vocab, "The best thing about AI is its")
    assert prompt.shape == (1, 8) and vocab.itos[prompt[0, 0]] == "[BOS]"
    ids = encode_sentences(vocab, sentences[:2])
    assert decode_text(vocab, ids[0]) == sentences[0]


def test_next_token_slider_has_a_greedy_frame_and_a_softmax_frame():
    vocab = corpus_vocab(ai_corpus(50, seed=1))
    logits = torch.randn(len(vocab), generator=torch.Generator().manual_seed(4))
    temperatures = np.array([0.0, 0.5, 1.0, 4.0])
    slider, probs = next_token_slider(logits, vocab, title="test", temperatures=temperatures, shown=5)
    assert len(slider.stack.children) == len(temperatures) == probs.shape[0]
    assert sampling_temperatures()[0] == 0 and 1.0 in sampling_temperatures()
    assert temperatures[0] == 0 and np.allclose(probs[0], np.eye(5)[0])
    at_one = int(np.argmin(np.abs(temperatures - 1)))
    assert slider.slider.index == at_one
    np.testing.assert_allclose(probs[at_one], logits.softmax(-1).sort(descending=True).values[:5].numpy(), atol=1e-6)
