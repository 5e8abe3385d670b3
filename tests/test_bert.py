"""BERT's masking rule, the tiny encoder, and the generated reviews."""
import random

import pytest
import torch

from attention_course.bert import (
    IGNORE_INDEX, POSITIVE, SHOWCASE, TinyBert, bag_of_words, encode_reviews, hidden_edges,
    is_held_out, mask_tokens, negation_pairs, random_review, review_corpus, review_vocab,
)


def test_mask_tokens_labels_and_unselected_inputs():
    tokens = torch.randint(0, 30, (8, 64), generator=torch.Generator().manual_seed(0))
    inputs, labels = mask_tokens(tokens, 30, 30, generator=torch.Generator().manual_seed(1))
    chosen = labels != IGNORE_INDEX
    assert chosen.any() and torch.equal(labels[chosen], tokens[chosen])
    assert torch.equal(inputs[~chosen], tokens[~chosen])


def test_mask_tokens_rates_follow_15_percent_and_80_10_10():
    vocab_size, n = 50, 400_000
    tokens = torch.randint(0, vocab_size, (n,), generator=torch.Generator().manual_seed(2))
    inputs, labels = mask_tokens(tokens, vocab_size, vocab_size, generator=torch.Generator().manual_seed(3))
    chosen = labels != IGNORE_INDEX
    assert abs(chosen.float().mean().item() - 0.15) < 0.003
    became_mask = (inputs[chosen] == vocab_size).float().mean().item()
    unchanged = (inputs[chosen] == tokens[chosen]).float().mean().item()
    assert abs(became_mask - 0.8) < 0.006
    assert abs(unchanged - (0.1 + 0.1 / vocab_size)) < 0.005
    replaced = inputs[chosen][(inputs[chosen] != vocab_size) & (inputs[chosen] != tokens[chosen])]
    assert replaced.min() >= 0 and replaced.max() < vocab_size and len(replaced.unique()) == vocab_size


def test_mask_tokens_never_selects_special_tokens_and_respects_mask_prob():
    tokens = torch.tensor([[40, 1, 2, 3, 41, 42]]).repeat(5000, 1)  # ids >= 10 are specials
    inputs, labels = mask_tokens(tokens, 10, 43, mask_prob=0.5, generator=torch.Generator().manual_seed(4))
    assert (labels[:, [0, 4, 5]] == IGNORE_INDEX).all() and torch.equal(inputs[:, [0, 4, 5]], tokens[:, [0, 4, 5]])
    assert abs((labels[:, 1:4] != IGNORE_INDEX).float().mean().item() - 0.5) < 0.02


def test_tiny_bert_is_bidirectional_and_ignores_padding():
    torch.manual_seed(0)
    vocab = review_vocab()
    model = TinyBert(len(vocab), vocab["[PAD]"], max_len=20).eval()
    a = encode_reviews(vocab, ["The film was dull."])
    b = encode_reviews(vocab, ["The film was fun."])
    with torch.no_grad():
        assert (model.encode(a)[0, 1] - model.encode(b)[0, 1]).abs().max() > 1e-4  # 'the' sees the last word
        padded = encode_reviews(vocab, ["The film was dull."], length=12)
        torch.testing.assert_close(model(a), model(padded))
        assert model.mlm_logits(a).shape == (1, a.shape[1], len(vocab))
        assert len(model.attention_maps()) == 2


def test_hidden_edges_cut_only_the_chosen_edges():
    torch.manual_seed(1)
    vocab = review_vocab()
    model = TinyBert(len(vocab), vocab["[PAD]"], max_len=20).eval()
    ids = encode_reviews(vocab, ["The film was not dull.", "The film was dull."])
    is_not = ids == vocab["not"]
    is_cls = torch.zeros_like(is_not)
    is_cls[:, 0] = True
    with torch.no_grad():
        model(ids, hidden_edges(ids, vocab["[PAD]"], is_cls, is_not))
    column = ids[0].tolist().index(vocab["not"])
    for weights in model.attention_maps():
        assert (weights[0, :, 0, column] == 0).all(), "[CLS] no longer reads 'not'"
        assert (weights[0, :, 1:, column] > 0).all(), "every other query still may"
        assert (weights[1, ..., -1] == 0).all(), "padding stays hidden"


def test_hidden_edges_refuse_to_hide_every_key_of_a_query():
    vocab = review_vocab()
    ids = encode_reviews(vocab, ["The film was dull."])
    everything = torch.ones_like(ids, dtype=torch.bool)
    with pytest.raises(ValueError, match="every key"):
        hidden_edges(ids, vocab["[PAD]"], everything, everything)


def test_review_labels_follow_the_last_clause_and_its_negation():
    rng = random.Random(0)
    for _ in range(500):
        review = random_review(rng)
        last = review.text.rstrip(".").split(",")[-1].split()
        negated, adjective = "not" in last, last[-1]
        assert review.label == int(adjective in POSITIVE) ^ negated


def test_split_is_by_bag_of_words_and_holds_out_the_showcase():
    train = review_corpus(300, seed=0, held_out=False)
    test = review_corpus(300, seed=1, held_out=True)
    assert not {bag_of_words(r.text) for r in train} & {bag_of_words(r.text) for r in test}
    assert all(is_held_out(text) for text in SHOWCASE)


def test_negation_pairs_share_words_and_differ_in_label():
    for left, right in negation_pairs(200, seed=0):
        assert bag_of_words(left.text) == bag_of_words(right.text)
        assert left.label != right.label and is_held_out(left.text)
