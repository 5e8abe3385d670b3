"""Synthetic sequence tasks, generated on the fly (nothing is downloaded).

* :func:`partner_batch` (chapter 3): every position must report two things that live
  at two *different* places in the sequence, the digit of the previous token and the
  digit of its partner token, so one attention pattern cannot serve both.
* :func:`reversal_batch` (chapter 4): reverse a string of digits, with padding, for a
  tiny encoder-decoder.

Every generator takes a ``torch.Generator`` so a chapter can draw a fixed held-out
set, and a ``device`` so the tensors land where the model is.
"""
from __future__ import annotations

import string
from dataclasses import dataclass

import torch

# ---------------------------------------------------------------------------
# Chapter 3: previous token and partner token
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PartnerTask:
    """Sequences of 2 * num_pairs tokens; each token is (case, letter, digit).

    Each sequence holds ``num_pairs`` distinct letters, each once in lower case and
    once in upper case, in random order; every token also carries a random digit.
    The *partner* of ``b3`` is the token ``B?`` elsewhere in the sequence.
    """

    num_letters: int = 6
    num_pairs: int = 4
    num_digits: int = 4

    @property
    def length(self) -> int:
        return 2 * self.num_pairs

    @property
    def vocab_size(self) -> int:
        return 2 * self.num_letters * self.num_digits

    def token_id(self, case, letter, digit):
        return (case * self.num_letters + letter) * self.num_digits + digit

    def token_name(self, token_id: int) -> str:
        """'b3' = lower-case b carrying digit 3; 'B1' = its upper-case partner."""
        case_letter, digit = divmod(int(token_id), self.num_digits)
        case, letter = divmod(case_letter, self.num_letters)
        name = string.ascii_lowercase[letter]
        return f"{name.upper() if case else name}{digit}"


@dataclass(frozen=True)
class PartnerBatch:
    tokens: torch.Tensor  # (B, n) token ids
    previous_digit: torch.Tensor  # (B, n) digit of token i-1; -100 (ignored) at i = 0
    partner_digit: torch.Tensor  # (B, n) digit of the partner token
    partner_position: torch.Tensor  # (B, n) where the partner sits


def partner_batch(task: PartnerTask, batch_size: int, generator=None,
                  device=None) -> PartnerBatch:
    """A batch of the previous-token / partner-token task."""
    B, P, n = batch_size, task.num_pairs, task.length
    shuffled = torch.rand(B, task.num_letters, generator=generator).argsort(-1)
    letters = shuffled[:, :P].repeat(1, 2)
    # slots 0..P-1 are lower case, P..2P-1 upper case
    case = torch.arange(n).ge(P).long().expand(B, n)
    digits = torch.randint(0, task.num_digits, (B, n), generator=generator)
    # position i holds slot order[i]
    order = torch.rand(B, n, generator=generator).argsort(-1)
    slot_position = order.argsort(-1)  # slot s sits at position slot_position[s]
    partner_position = slot_position.gather(1, (order + P) % n)
    letters, case, digits = (t.gather(1, order) for t in (letters, case, digits))
    previous = torch.full_like(digits, -100)
    previous[:, 1:] = digits[:, :-1]
    tokens = task.token_id(case, letters, digits)
    partner = digits.gather(1, partner_position)
    tensors = (tokens, previous, partner, partner_position)
    return PartnerBatch(*(t.to(device) for t in tensors))


# ---------------------------------------------------------------------------
# Chapter 4: reversing digit strings
# ---------------------------------------------------------------------------

PAD, BOS, EOS = 0, 1, 2
DIGIT_OFFSET = 3  # token id of the digit 0
REVERSAL_VOCAB = DIGIT_OFFSET + 10


@dataclass(frozen=True)
class ReversalBatch:
    source: torch.Tensor  # (B, max_len) digit tokens, then PAD
    # the decoder's input, and what it must predict:
    target_in: torch.Tensor  # (B, max_len + 1) BOS + reversed digits, then PAD
    target_out: torch.Tensor  # (B, max_len + 1) reversed digits + EOS, then PAD
    lengths: torch.Tensor  # (B,) number of digits


def reversal_batch(batch_size: int, min_len: int = 3, max_len: int = 8,
                   generator=None, device=None) -> ReversalBatch:
    """Random digit strings of length min_len..max_len and their reversals."""
    lengths = torch.randint(min_len, max_len + 1, (batch_size,), generator=generator)
    values = torch.randint(0, 10, (batch_size, max_len), generator=generator)
    digits = values + DIGIT_OFFSET
    position = torch.arange(max_len)
    real = position < lengths[:, None]
    source = torch.where(real, digits, PAD)
    # reversed[b, t] = source[b, length - 1 - t] for t < length
    reversed_index = (lengths[:, None] - 1 - position).clamp(min=0)
    reversed_digits = torch.where(real, source.gather(1, reversed_index), PAD)
    pad_column = torch.full((batch_size, 1), PAD)
    target_in = torch.cat([torch.full((batch_size, 1), BOS), reversed_digits], 1)
    target_out = torch.cat([reversed_digits, pad_column], 1)
    target_out[torch.arange(batch_size), lengths] = EOS
    tensors = (source, target_in, target_out, lengths)
    return ReversalBatch(*(t.to(device) for t in tensors))


def digits_to_string(tokens) -> str:
    """Token ids -> '8302', stopping at EOS and skipping PAD/BOS."""
    out = []
    for t in (int(t) for t in tokens):
        if t == EOS:
            break
        if t >= DIGIT_OFFSET:
            out.append(str(t - DIGIT_OFFSET))
    return "".join(out)
