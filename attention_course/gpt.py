"""A tiny GPT: causal self-attention, sampling with temperature and top-k, a KV cache.

Chapter 7 trains :class:`TinyGPT` on a small generated corpus (:func:`ai_corpus`). A
GPT block is the shared pre-LN ``EncoderLayer`` run under a causal mask: there is no
cross-attention, so nothing else is needed. :meth:`TinyGPT.forward_cached` runs the
same layers one new token at a time, keeping every layer's keys and values in a
:class:`KVCache`; :func:`generate` decodes with or without it.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from attention_course.plotting import figure_img
from attention_course.text import WordVocab, tokenize
from attention_course.transformer import (EncoderLayer, attention, causal_mask,
                                          merge_heads, residual, split_heads)
from attention_course.widgets import (FrameSlider, default_temperatures,
                                      temperature_label)

SPECIALS = ("[PAD]", "[BOS]", "[EOS]")


# ---------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------


def next_token_probs(logits: torch.Tensor, temperature: float = 1.0,
                     top_k: int | None = None) -> torch.Tensor:
    """The next token's distribution: softmax(logits / T) over the top_k largest logits.

    ``temperature = 0`` is the limit T -> 0: all probability on the largest logit
    (greedy). Logits outside the ``top_k`` largest get probability 0; the rest are
    renormalised.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        k = min(top_k, logits.shape[-1])
        kth_largest = logits.topk(k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth_largest, float("-inf"))
    if temperature == 0:
        greedy = nn.functional.one_hot(logits.argmax(-1), logits.shape[-1])
        return greedy.to(logits.dtype)
    return torch.softmax(logits / temperature, dim=-1)


def sample_next_token(logits: torch.Tensor, temperature: float = 1.0,
                      top_k: int | None = None,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, V) logits -> (B,) token ids drawn from :func:`next_token_probs`.

    ``temperature = 0`` (or ``top_k = 1``) is greedy decoding: the argmax, no
    randomness.
    """
    if temperature == 0 or top_k == 1:
        return logits.argmax(-1)
    probs = next_token_probs(logits, temperature, top_k)
    if generator is not None and generator.device != probs.device:
        drawn = torch.multinomial(probs.cpu(), 1, generator=generator)
        return drawn.squeeze(-1).to(probs.device)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


# ---------------------------------------------------------------------------
# The model, with and without a key/value cache
# ---------------------------------------------------------------------------


@dataclass
class KVCache:
    """Every layer's keys and values so far, each (B, heads, t, d_head)."""

    keys: list = field(default_factory=list)
    values: list = field(default_factory=list)

    @property
    def length(self) -> int:
        return 0 if not self.keys else self.keys[0].shape[2]


def kv_cache_bytes(layers: int, batch: int, heads: int, length: int, d_head: int,
                   bytes_per_number: int) -> int:
    """Memory of a KV cache: a key and a value per layer, sequence, head and position."""
    return 2 * layers * batch * heads * length * d_head * bytes_per_number


class TinyGPT(nn.Module):
    """Token + learned position embeddings, causal pre-LN layers, LayerNorm, logits."""

    def __init__(self, vocab_size: int, d_model: int = 64, num_heads: int = 4,
                 d_ff: int = 256, num_layers: int = 2, max_len: int = 24,
                 dropout: float = 0.0):
        super().__init__()
        self.max_len = max_len
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = nn.Embedding(max_len, d_model)
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, num_heads, d_ff, dropout, norm_first=True)
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size)

    def embed(self, ids: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Token plus position embeddings for ids at positions start, start + 1, …"""
        if start + ids.shape[1] > self.max_len:
            raise ValueError(f"positions up to {start + ids.shape[1]}"
                             f" exceed max_len={self.max_len}")
        positions = torch.arange(start, start + ids.shape[1], device=ids.device)
        return self.token_embedding(ids) + self.position_embedding(positions)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, n) ids -> (B, n, V) logits.

        Position i's logits predict token i + 1 from tokens 0..i.
        """
        x = self.embed(ids)
        mask = causal_mask(ids.shape[1], device=ids.device)
        for layer in self.layers:
            x = layer(x, mask)
        return self.lm_head(self.norm(x))

    def forward_cached(self, ids: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Logits for new tokens only; reuses (and extends) the cached keys and values.

        The new tokens' queries attend to the cached keys plus their own; they may see
        every cached position, and among themselves the causal mask applies.
        """
        start = cache.length
        x = self.embed(ids, start)
        # the causal mask's rows for the new positions only
        mask = causal_mask(start + ids.shape[1], device=ids.device)[start:]
        for index, layer in enumerate(self.layers):
            def cached_attention(h):
                return self._cached_attention(layer, h, cache, index, mask)
            x = residual(x, cached_attention, layer.norm1, layer.dropout,
                         layer.norm_first)
            x = residual(x, layer.ffn, layer.norm2, layer.dropout, layer.norm_first)
        return self.lm_head(self.norm(x))

    @staticmethod
    def _cached_attention(layer: EncoderLayer, h, cache: KVCache, index: int, mask):
        mha = layer.self_attn
        projections = (mha.w_q, mha.w_k, mha.w_v)
        q, k, v = (split_heads(proj(h), mha.num_heads) for proj in projections)
        if index < len(cache.keys):
            k = torch.cat([cache.keys[index], k], dim=2)
            v = torch.cat([cache.values[index], v], dim=2)
            cache.keys[index], cache.values[index] = k, v
        else:
            cache.keys.append(k)
            cache.values.append(v)
        out, layer.attention_weights = attention(q, k, v, mask, mha.dropout)
        return mha.w_o(merge_heads(out))

    def attention_maps(self) -> list[torch.Tensor]:
        return [layer.attention_weights for layer in self.layers]


@dataclass
class Generation:
    tokens: torch.Tensor  # (B, prompt + new) ids
    logits: torch.Tensor  # (B, new, V): the logits each new token was drawn from


@torch.no_grad()
def generate(model: TinyGPT, prompt: torch.Tensor, max_new_tokens: int,
             temperature: float = 1.0, top_k: int | None = None, use_cache: bool = True,
             generator: torch.Generator | None = None) -> Generation:
    """Extend (B, n) prompts token by token.

    Without the cache, every step runs the whole sequence so far through the model
    and keeps only the last position's logits. With it, the prompt runs once and
    then each step feeds just the newest token.
    """
    model.eval()
    tokens, step_logits = prompt, []
    cache = KVCache() if use_cache else None
    new = prompt
    for _ in range(max_new_tokens):
        if use_cache:
            logits = model.forward_cached(new, cache)[:, -1]
        else:
            logits = model(tokens)[:, -1]
        step_logits.append(logits)
        new = sample_next_token(logits, temperature, top_k, generator)[:, None]
        tokens = torch.cat([tokens, new], dim=1)
    return Generation(tokens, torch.stack(step_logits, dim=1))


# ---------------------------------------------------------------------------
# A small corpus about the best (and worst) things about AI and other things
# ---------------------------------------------------------------------------

#: subject -> {"best": {trait: weight}, "worst": {trait: weight}}
TRAITS = {
    "ai": {"best": {"ability": 9, "potential": 7, "speed": 2, "patience": 2},
           "worst": {"cost": 1, "bias": 1, "hunger": 1}},
    "the sea": {"best": {"colour": 1, "sound": 1}, "worst": {"cold": 1}},
    "the city": {"best": {"energy": 1, "food": 1}, "worst": {"noise": 1, "cost": 1}},
    "a good book": {"best": {"ending": 1, "story": 1}, "worst": {"length": 1}},
    "my phone": {"best": {"camera": 1, "speed": 1}, "worst": {"battery": 1}},
}
#: what can follow "… is its <trait>"
CONTINUATIONS = {
    "ability": ("to learn from data", "to help people", "to find patterns",
                "to translate languages"),
    "potential": ("to help people", "to change medicine", "to save time",
                  "to change the world"),
    "hunger": ("for energy", "for data"),
}


def ai_sentence(rng: random.Random) -> str:
    """'the best thing about ai is its ability to learn from data .' and its relatives.

    Half the sentences are about the best thing about AI; the rest about its worst
    thing or about other subjects, so the model must read both 'best' and 'ai' to
    predict the trait.
    """
    if rng.random() < 0.5:
        subject, kind = "ai", "best"
    else:
        subject, kind = rng.choice(list(TRAITS)), rng.choice(["best", "worst"])
    weights = TRAITS[subject][kind]
    trait = rng.choices(list(weights), list(weights.values()))[0]
    tail = rng.choice(CONTINUATIONS[trait]) + " " if trait in CONTINUATIONS else ""
    return f"the {kind} thing about {subject} is its {trait} {tail}."


def ai_corpus(n: int = 2000, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [ai_sentence(rng) for _ in range(n)]


def corpus_vocab(sentences) -> WordVocab:
    return WordVocab.from_texts(sentences, SPECIALS)


def encode_sentences(vocab: WordVocab, sentences,
                     length: int | None = None) -> torch.Tensor:
    """'[BOS] words … [EOS]' per sentence, right-padded with [PAD]: (B, n)."""
    sequences = [["[BOS]", *tokenize(s), "[EOS]"] for s in sentences]
    return vocab.batch(sequences, pad="[PAD]", length=length)


def encode_prompt(vocab: WordVocab, text: str) -> torch.Tensor:
    """'[BOS] words …' as a (1, n) tensor, ready to be continued."""
    return torch.tensor([[vocab["[BOS]"], *vocab.encode(text)]])


def decode_text(vocab: WordVocab, ids) -> str:
    """The words of one generated sequence, without [BOS], up to the first [EOS]."""
    words = []
    for token in vocab.decode(ids):
        if token == "[EOS]":
            break
        if token not in SPECIALS:
            words.append(token)
    return " ".join(words)


def next_word_counts(sentences, prompt: str) -> Counter:
    """How often each word follows ``prompt`` at the start of a corpus sentence."""
    prefix = tokenize(prompt)
    counts = Counter()
    for sentence in sentences:
        words = tokenize(sentence)
        if words[: len(prefix)] == prefix and len(words) > len(prefix):
            counts[words[len(prefix)]] += 1
    return counts


# ---------------------------------------------------------------------------
# The temperature slider over a next-token distribution (static-site friendly)
# ---------------------------------------------------------------------------


def sampling_temperatures() -> np.ndarray:
    """0 (greedy), then chapter 1's 25 temperatures from 0.05 to 20 (1 among them)."""
    return np.concatenate([[0.0], default_temperatures()])


def next_token_frame_html(probs: np.ndarray, tokens, temperature: float,
                          title: str) -> str:
    """One slider frame: a bar chart of the largest probabilities, as an inline PNG."""
    fig, ax = plt.subplots(figsize=(5.2, 2.8))
    colors = ["tab:orange" if i == 0 else "tab:blue" for i in range(len(tokens))]
    ax.bar(range(len(tokens)), probs, color=colors)
    ax.set_xticks(range(len(tokens)), tokens, rotation=45, ha="right",
                  rotation_mode="anchor")
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    if temperature == 0:
        label = "T = 0 (greedy)"
    else:
        label = f"T = {temperature_label(temperature)}"
    ax.set_title(f"{title}\n{label}", fontsize=10)
    image = figure_img(fig, f"next-token distribution at {label}")
    return (f'<div class="next-token-frame" data-temperature="{temperature:g}">'
            f'{image}</div>')


def next_token_slider(logits: torch.Tensor, vocab: WordVocab, title: str,
                      temperatures=None, shown: int = 10):
    """A FrameSlider over T: softmax(logits / T) for the ``shown`` likeliest tokens.

    Returns (slider, probs) where probs is (len(temperatures), shown): the bars of
    every frame.
    """
    if temperatures is None:
        temperatures = sampling_temperatures()
    else:
        temperatures = np.asarray(temperatures, dtype=float)
    order = logits.argsort(descending=True)[:shown].cpu()
    tokens = vocab.decode(order)
    probs = np.stack([next_token_probs(logits.cpu(), float(t))[order].numpy()
                      for t in temperatures])
    frames = [next_token_frame_html(p, tokens, t, title)
              for p, t in zip(probs, temperatures)]
    start = int(np.argmin(np.abs(temperatures - 1.0)))
    labels = [("0 (greedy)" if t == 0 else temperature_label(t))
              for t in temperatures]
    slider = FrameSlider(labels, frames, description="T (温度)", start=start,
                         name="temperature")
    return slider, probs
