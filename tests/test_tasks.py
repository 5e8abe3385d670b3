"""The synthetic tasks produce what their docstrings promise."""
import torch

from attention_course.tasks import (
    BOS,
    DIGIT_OFFSET,
    EOS,
    PAD,
    PartnerTask,
    digits_to_string,
    partner_batch,
    reversal_batch,
)


def decode_tokens(task, tokens):
    case_letter, digit = tokens // task.num_digits, tokens % task.num_digits
    return case_letter // task.num_letters, case_letter % task.num_letters, digit


def test_partner_batch_relations():
    task = PartnerTask(num_letters=6, num_pairs=4, num_digits=4)
    batch = partner_batch(task, 64, generator=torch.Generator().manual_seed(0))
    assert batch.tokens.shape == (64, task.length)
    case, letter, digit = decode_tokens(task, batch.tokens)
    partner = batch.partner_position
    # the partner has the same letter, the other case, and is never the token itself
    assert torch.equal(letter.gather(1, partner), letter)
    assert torch.equal(case.gather(1, partner), 1 - case)
    assert not (partner == torch.arange(task.length)).any()
    assert torch.equal(partner.gather(1, partner), torch.arange(task.length).expand_as(partner))
    assert torch.equal(batch.partner_digit, digit.gather(1, partner))
    assert torch.equal(batch.previous_digit[:, 1:], digit[:, :-1])
    assert (batch.previous_digit[:, 0] == -100).all()
    # each sequence holds num_pairs distinct letters, each exactly twice
    for row in letter:
        assert sorted(torch.bincount(row).tolist())[-task.num_pairs:] == [2] * task.num_pairs


def test_partner_batch_is_reproducible_and_names_tokens():
    task = PartnerTask()
    a = partner_batch(task, 8, generator=torch.Generator().manual_seed(3))
    b = partner_batch(task, 8, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.tokens, b.tokens)
    assert task.token_name(task.token_id(0, 1, 3)) == "b3"
    assert task.token_name(task.token_id(1, 1, 0)) == "B0"
    assert task.vocab_size == 48


def test_reversal_batch():
    batch = reversal_batch(200, min_len=2, max_len=6, generator=torch.Generator().manual_seed(0))
    assert batch.source.shape == (200, 6) and batch.target_in.shape == (200, 7)
    assert batch.lengths.min() >= 2 and batch.lengths.max() <= 6
    for src, t_in, t_out, n in zip(batch.source, batch.target_in, batch.target_out, batch.lengths.tolist()):
        digits = src[:n].tolist()
        assert (src[n:] == PAD).all() and min(digits) >= DIGIT_OFFSET
        assert t_out[:n].tolist() == digits[::-1] and t_out[n] == EOS and (t_out[n + 1:] == PAD).all()
        assert t_in[0] == BOS and t_in[1:n + 1].tolist() == digits[::-1] and (t_in[n + 1:] == PAD).all()
        assert digits_to_string(t_out) == digits_to_string(src)[::-1]
