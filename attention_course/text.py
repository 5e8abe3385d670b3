"""A word-level vocabulary for the course's tiny language models (chapters 6 and 7).

Real BERT and GPT split text into sub-word pieces (WordPiece, byte-pair encoding); our
generated corpora use a few dozen words, so one token per word keeps every id readable.
Ordinary words get the ids 0 .. num_words - 1 and the special tokens come after them,
so "a random ordinary token" is simply a random id below ``num_words``.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import torch

_TOKEN = re.compile(r"[a-z0-9']+|[.,!?;]")


def tokenize(text: str) -> list[str]:
    """Lower-case words and punctuation marks.

    'Not bad, really.' -> ['not', 'bad', ',', 'really', '.']
    """
    return _TOKEN.findall(text.lower())


class WordVocab:
    """Maps tokens to ids and back; special tokens' ids follow the ordinary words."""

    def __init__(self, words: Iterable[str], specials: Sequence[str] = ()):
        words = list(dict.fromkeys(words))
        overlap = set(words) & set(specials)
        if overlap:
            raise ValueError(f"special tokens also listed as words: {sorted(overlap)}")
        self.itos = words + list(specials)
        self.stoi = {token: i for i, token in enumerate(self.itos)}
        self.num_words = len(words)

    @classmethod
    def from_texts(cls, texts: Iterable[str],
                   specials: Sequence[str] = ()) -> "WordVocab":
        """Every token of the texts, sorted, as the ordinary words."""
        words = {token for text in texts for token in tokenize(text)}
        return cls(sorted(words), specials)

    def __len__(self) -> int:
        return len(self.itos)

    def __getitem__(self, token: str) -> int:
        return self.stoi[token]

    def encode(self, text: str | Sequence[str]) -> list[int]:
        """A text (tokenized first) or a list of tokens -> their ids."""
        tokens = tokenize(text) if isinstance(text, str) else text
        return [self.stoi[token] for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[int(i)] for i in ids]

    def batch(self, sequences: Sequence[Sequence[str]], pad: str,
              length: int | None = None) -> torch.Tensor:
        """Lists of tokens -> a (B, length) id tensor, right-padded with ``pad``."""
        length = length or max(len(s) for s in sequences)
        if any(len(s) > length for s in sequences):
            raise ValueError(f"a sequence is longer than {length} tokens")
        rows = [self.encode(list(s)) + [self.stoi[pad]] * (length - len(s))
                for s in sequences]
        return torch.tensor(rows, dtype=torch.long)
