"""A tiny BERT: a bidirectional Transformer encoder, its masking rule, a review corpus.

Chapter 6 pretrains :class:`TinyBert` with the masked-language-model objective
(:func:`mask_tokens`) and fine-tunes it on generated movie reviews whose sentiment
hangs on negations and contrasts (:func:`random_review`, :func:`negation_pairs`).
The layers are the shared ``EncoderLayer`` from ``transformer.py``; the only mask is
the padding mask, so every token attends to every other token, both ways.
"""
from __future__ import annotations

import random
import zlib
from dataclasses import dataclass

import torch
from torch import nn

from attention_course.text import WordVocab, tokenize
from attention_course.transformer import EncoderLayer, padding_mask

# Label of the positions the MLM loss skips (cross_entropy's default ignore_index).
IGNORE_INDEX = -100
SPECIALS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]")


def mask_tokens(tokens: torch.Tensor, vocab_size: int, mask_id: int,
                mask_prob: float = 0.15, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking rule for masked-language-model pretraining.

    Each ordinary token (id < ``vocab_size``; special tokens have larger ids and are
    never chosen) is selected with probability ``mask_prob``. A selected token is
    replaced by ``mask_id`` 80 % of the time, by a uniformly random id in
    0 .. vocab_size - 1 10 % of the time, and left as it is 10 % of the time.
    Returns ``(inputs, labels)``: labels hold the original id at selected positions
    and ``IGNORE_INDEX`` (-100) everywhere else.
    """
    def draw():
        return torch.rand(tokens.shape, generator=generator).to(tokens.device)

    selected = (draw() < mask_prob) & (tokens >= 0) & (tokens < vocab_size)
    labels = torch.where(selected, tokens, torch.full_like(tokens, IGNORE_INDEX))
    roll = draw()
    to_mask = selected & (roll < 0.8)
    to_random = selected & (roll >= 0.8) & (roll < 0.9)
    random_ids = torch.randint(vocab_size, tokens.shape, generator=generator)
    random_ids = random_ids.to(tokens.device)
    inputs = torch.where(to_mask, torch.full_like(tokens, mask_id), tokens)
    inputs = torch.where(to_random, random_ids, inputs)
    return inputs, labels


class TinyBert(nn.Module):
    """Token + learned position embeddings, padding-masked encoder layers, two heads.

    ``mlm_logits`` predicts every position's token (for pretraining); ``forward``
    classifies the sequence from the final vector of its first token, [CLS].
    """

    def __init__(self, vocab_size: int, pad_id: int, d_model: int = 64,
                 num_heads: int = 4, d_ff: int = 128, num_layers: int = 2,
                 max_len: int = 32, num_classes: int = 2, dropout: float = 0.1):
        super().__init__()
        self.pad_id = pad_id
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = nn.Embedding(max_len, d_model)
        self.embedding_norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(EncoderLayer(d_model, num_heads, d_ff, dropout)
                                    for _ in range(num_layers))
        self.mlm_head = nn.Linear(d_model, vocab_size)
        self.classifier = nn.Linear(d_model, num_classes)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Token + position embedding, LayerNorm, dropout: the first layer's input."""
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.token_embedding(ids) + self.position_embedding(positions)
        return self.dropout(self.embedding_norm(x))

    def encode(self, ids: torch.Tensor,
               mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, n) ids -> (B, n, d_model). No causal mask: every token sees every token.

        ``mask`` (boolean, True = may attend, broadcastable to (B, heads, n, n))
        replaces the padding mask; chapter 6 passes ``hidden_edges(...)`` to cut
        chosen edges.
        """
        x = self.embed(ids)
        if mask is None:
            mask = padding_mask(ids, self.pad_id)
        for layer in self.layers:
            x = layer(x, mask)
        return x

    def mlm_logits(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, n, vocab_size): a guess for the original token at every position."""
        return self.mlm_head(self.encode(ids))

    def forward(self, ids: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, num_classes) logits from the final vector of [CLS], the first token."""
        return self.classifier(self.encode(ids, mask)[:, 0])

    def attention_maps(self) -> list[torch.Tensor]:
        """Each layer's weights from the last forward pass, (B, heads, n, n)."""
        return [layer.attention_weights for layer in self.layers]


def hidden_edges(ids: torch.Tensor, pad_id: int, queries: torch.Tensor,
                 keys: torch.Tensor) -> torch.Tensor:
    """An attention mask that cuts every edge from ``queries`` to ``keys``.

    ``queries`` and ``keys`` are (B, n) booleans over the positions of ``ids``; no
    query in ``queries`` may read a key in ``keys``. The result is (B, 1, n, n),
    True = may attend, with padding hidden as usual. Running a model with it is an
    intervention: nothing else changes, so any change in the output is caused by
    what those edges carried.
    """
    allowed = padding_mask(ids, pad_id).expand(-1, 1, ids.shape[1], -1)
    allowed = allowed & ~(queries[:, None, :, None] & keys[:, None, None, :])
    real = ids != pad_id
    if not allowed[:, 0].any(-1)[real].all():
        raise ValueError("every key of some query is hidden:"
                         " its softmax would be undefined")
    return allowed


# ---------------------------------------------------------------------------
# Generated movie reviews whose label depends on negation and word order
# ---------------------------------------------------------------------------

SUBJECTS = ("movie", "film", "plot", "acting", "ending", "music", "story", "cast",
            "script", "show")
POSITIVE = ("good", "great", "excellent", "wonderful", "brilliant", "fun", "enjoyable",
            "superb", "lovely")
NEGATIVE = ("bad", "terrible", "awful", "boring", "dull", "poor", "weak", "horrible",
            "disappointing")
INTENSIFIERS = ("really", "very", "quite")
CONTRASTS = ("it was actually", "but it was")
#: Sentences the chapter shows; they and every rearrangement of their words stay out
#: of training.
SHOWCASE = (
    "The movie was not bad, it was actually great.",
    "The movie was not great, it was actually bad.",
    "The movie was bad, it was actually not great.",
    "The movie was not bad.",
    "The movie was bad.",
)


@dataclass(frozen=True)
class Review:
    text: str
    label: int  # 1 = positive, 0 = negative


def bag_of_words(text: str) -> tuple[str, ...]:
    """The words of a text with their counts and without their order (sorted)."""
    return tuple(sorted(tokenize(text)))


_SHOWCASE_BAGS = {bag_of_words(text) for text in SHOWCASE}


def is_held_out(text: str) -> bool:
    """A fixed fifth of all bags of words (and every showcase bag) is kept for testing.

    Splitting by the bag, not the sentence, keeps a sentence and all rearrangements of
    its words on the same side.
    """
    bag = bag_of_words(text)
    return bag in _SHOWCASE_BAGS or zlib.crc32(" ".join(bag).encode()) % 5 == 0


def polarity(adjective: str) -> int:
    return int(adjective in POSITIVE)


def _clause(rng: random.Random, negation_rate: float) -> tuple[str, int]:
    negated = rng.random() < negation_rate
    adjective = rng.choice(POSITIVE + NEGATIVE)
    intensifier = [rng.choice(INTENSIFIERS)] * (rng.random() < 0.25)
    words = ["not"] * negated + intensifier + [adjective]
    return " ".join(words), polarity(adjective) ^ negated


def random_review(rng: random.Random, negation_rate: float = 0.4,
                  contrast_rate: float = 0.5) -> Review:
    """'The plot was not dull.' or 'The cast was good, but it was not really fun.'

    The sentiment is the last clause's: its adjective's polarity, flipped by a 'not'.
    """
    subject = rng.choice(SUBJECTS)
    first, label = _clause(rng, negation_rate)
    if rng.random() < contrast_rate:
        second, label = _clause(rng, negation_rate)
        contrast = rng.choice(CONTRASTS)
        return Review(f"The {subject} was {first}, {contrast} {second}.", label)
    return Review(f"The {subject} was {first}.", label)


def review_corpus(n: int, seed: int, held_out: bool, **rates) -> list[Review]:
    """``n`` reviews from the training side (``held_out=False``) or the test side."""
    rng = random.Random(seed)
    reviews = []
    while len(reviews) < n:
        review = random_review(rng, **rates)
        if is_held_out(review.text) == held_out:
            reviews.append(review)
    return reviews


def negation_pairs(n: int, seed: int) -> list[tuple[Review, Review]]:
    """Held-out pairs of reviews with the SAME words and OPPOSITE labels.

    Either the 'not' moves to the other clause ('was not good, it was actually
    great' / 'was good, it was actually not great'), or two adjectives of opposite
    polarity swap places ('was not bad, it was actually great' / 'was not great, it
    was actually bad'). A bag-of-words model sees the two reviews of a pair as
    identical.
    """
    rng = random.Random(seed)
    pairs = []
    while len(pairs) < n:
        subject, contrast = rng.choice(SUBJECTS), rng.choice(CONTRASTS)
        a, b = rng.choice(POSITIVE + NEGATIVE), rng.choice(POSITIVE + NEGATIVE)
        if rng.random() < 0.5:
            left = Review(f"The {subject} was not {a}, {contrast} {b}.", polarity(b))
            right = Review(f"The {subject} was {a}, {contrast} not {b}.",
                           1 - polarity(b))
        elif polarity(a) != polarity(b):
            left = Review(f"The {subject} was not {a}, {contrast} {b}.", polarity(b))
            right = Review(f"The {subject} was not {b}, {contrast} {a}.", polarity(a))
        else:
            continue
        if is_held_out(left.text):
            pairs.append((left, right))
    return pairs


def review_vocab() -> WordVocab:
    """Every word the review generator can produce, then [PAD], [CLS], [SEP], [MASK]."""
    words = {"the", "was", "not", ",", ".", "it", "actually", "but"}
    words |= set(SUBJECTS) | set(POSITIVE) | set(NEGATIVE) | set(INTENSIFIERS)
    return WordVocab(sorted(words), SPECIALS)


def encode_reviews(vocab: WordVocab, texts, length: int | None = None) -> torch.Tensor:
    """'[CLS] words … [SEP]' per text, right-padded with [PAD]: a (B, n) tensor."""
    sequences = [["[CLS]", *tokenize(text), "[SEP]"] for text in texts]
    return vocab.batch(sequences, pad="[PAD]", length=length)
