"""The copy task shared by "Why attention wins" and "Reading attention maps"."""
import torch

from attention_course.copy_task import (
    VOCAB, AttentionReader, LSTMReader, copy_batch, train_and_test,
)


def test_the_answer_is_the_first_token_and_draws_follow_the_generator():
    tokens, answer = copy_batch(10, 50, torch.Generator().manual_seed(3))
    again, _ = copy_batch(10, 50, torch.Generator().manual_seed(3))
    assert tokens.shape == (50, 10) and torch.equal(answer, tokens[:, 0])
    assert torch.equal(tokens, again) and int(tokens.max()) < VOCAB


def test_readers_answer_every_sequence_and_keep_the_last_weights():
    tokens, _ = copy_batch(12, 5, torch.Generator().manual_seed(0))
    reader = AttentionReader()
    assert reader(tokens).shape == (5, VOCAB)
    assert reader.weights.shape == (5, 1, 1, 12)
    hidden = torch.ones(1, 1, 1, 12, dtype=torch.bool)
    hidden[..., 0] = False
    reader(tokens, hidden)
    assert (reader.weights[..., 0] == 0).all(), "a hidden position gets no weight"
    assert LSTMReader()(tokens).shape == (5, VOCAB)


def test_a_short_copy_is_learned():
    torch.manual_seed(0)
    _, accuracy = train_and_test(AttentionReader(), 4, "cpu", steps=150)
    assert accuracy > 0.9
