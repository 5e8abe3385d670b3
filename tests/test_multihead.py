"""Head ablation, attention mass and the two-relation model of chapter 3."""
import torch

from attention_course.multihead import (TwoRelationModel, ablate_heads, attention_mass,
                                        partner_accuracies, partner_losses)
from attention_course.tasks import PartnerTask, partner_batch
from attention_course.training import train
from attention_course.transformer import MultiHeadAttention, attention, merge_heads, split_heads


def test_ablate_heads_zeroes_exactly_one_head_and_restores():
    torch.manual_seed(0)
    mha = MultiHeadAttention(12, 3).double()
    x = torch.randn(2, 5, 12, dtype=torch.float64)
    before, _ = mha(x, x, x)
    with ablate_heads(mha, [1]):
        ablated, _ = mha(x, x, x)
    heads, _ = attention(*(split_heads(w(x), 3) for w in (mha.w_q, mha.w_k, mha.w_v)))
    heads[:, 1] = 0.0
    torch.testing.assert_close(ablated, mha.w_o(merge_heads(heads)))
    torch.testing.assert_close(mha(x, x, x)[0], before)  # the hook is gone
    with ablate_heads(mha, [0, 1, 2]):
        torch.testing.assert_close(mha(x, x, x)[0], mha.w_o.bias.expand(2, 5, 12))


def test_attention_mass():
    weights = torch.zeros(1, 2, 3, 3)
    weights[0, 0] = torch.eye(3)
    weights[0, 1] = 1 / 3
    target = torch.tensor([[0, 1, 2]])
    torch.testing.assert_close(attention_mass(weights, target), torch.tensor([1.0, 1 / 3]))
    valid = torch.tensor([[False, True, True]])
    torch.testing.assert_close(attention_mass(weights, target, valid), torch.tensor([1.0, 1 / 3]))


def test_two_relation_model_shapes_and_learns():
    torch.manual_seed(0)
    task = PartnerTask()
    model = TwoRelationModel(task, d_model=32, num_heads=2)
    batch = partner_batch(task, 4)
    prev_logits, partner_logits, weights = model(batch.tokens)
    assert prev_logits.shape == partner_logits.shape == (4, task.length, task.num_digits)
    assert weights.shape == (4, 2, task.length, task.length)
    losses = train(model, lambda step: sum(partner_losses(model, partner_batch(task, 64))[:2]), 150,
                   lr=3e-3, progress=False)
    assert sum(losses[-10:]) / 10 < 0.6 * sum(losses[:10]) / 10


def test_partner_accuracies_count_right_answers_and_skip_position_0():
    task = PartnerTask(num_letters=6, num_pairs=4, num_digits=4)
    batch = partner_batch(task, 16, generator=torch.Generator().manual_seed(0))

    class Oracle(torch.nn.Module):
        def forward(self, tokens):
            previous = torch.nn.functional.one_hot(batch.previous_digit.clamp(min=0), 4)
            partner = torch.nn.functional.one_hot(batch.partner_digit, 4)
            return previous.float(), partner.float(), None

    assert partner_accuracies(Oracle(), batch) == (1.0, 1.0)
