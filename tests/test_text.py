"""The word-level vocabulary shared by the BERT and GPT chapters."""
import pytest
import torch

from attention_course.text import WordVocab, tokenize


def test_tokenize_lowercases_and_splits_punctuation():
    assert tokenize("The movie was not bad, it was actually great.") == [
        "the", "movie", "was", "not", "bad", ",", "it", "was", "actually", "great", "."]


def test_specials_follow_the_words_and_encode_decode_round_trip():
    vocab = WordVocab.from_texts(["b a.", "c a"], specials=("[PAD]", "[CLS]"))
    assert vocab.itos == [".", "a", "b", "c", "[PAD]", "[CLS]"]
    assert vocab.num_words == 4 and len(vocab) == 6
    assert vocab.decode(vocab.encode("A b.")) == ["a", "b", "."]


def test_batch_pads_on_the_right_and_rejects_long_rows():
    vocab = WordVocab(["x", "y"], specials=("[PAD]",))
    batch = vocab.batch([["x"], ["y", "x", "y"]], pad="[PAD]")
    assert torch.equal(batch, torch.tensor([[0, 2, 2], [1, 0, 1]]))
    with pytest.raises(ValueError, match="longer"):
        vocab.batch([["x", "y"]], pad="[PAD]", length=1)


def test_specials_may_not_double_as_words():
    with pytest.raises(ValueError, match="special"):
        WordVocab(["a", "[PAD]"], specials=("[PAD]",))
