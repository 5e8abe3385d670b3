"""Looking inside multi-head attention: a one-layer model, head ablation, attention mass.

Chapter 3 trains :class:`TwoRelationModel` on :func:`attention_course.tasks.partner_batch`
and asks what each head learned.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from attention_course.tasks import PartnerBatch, PartnerTask
from attention_course.transformer import MultiHeadAttention


class TwoRelationModel(nn.Module):
    """Token + learned position embeddings, ONE multi-head attention layer, two readouts.

    With a residual connection h = x + MHA(x), one linear readout predicts the digit
    of the previous token, the other the digit of the partner token.
    """

    def __init__(self, task: PartnerTask, d_model: int = 32, num_heads: int = 2):
        super().__init__()
        self.token_embedding = nn.Embedding(task.vocab_size, d_model)
        self.position_embedding = nn.Embedding(task.length, d_model)
        self.attn = MultiHeadAttention(d_model, num_heads)
        self.previous_readout = nn.Linear(d_model, task.num_digits)
        self.partner_readout = nn.Linear(d_model, task.num_digits)

    def forward(self, tokens):
        """Returns (previous-digit logits, partner-digit logits, attention weights (B, h, n, n))."""
        x = self.token_embedding(tokens) + self.position_embedding.weight[: tokens.size(1)]
        attended, weights = self.attn(x, x, x)
        h = x + attended
        return self.previous_readout(h), self.partner_readout(h), weights


def partner_losses(model: TwoRelationModel, batch: PartnerBatch):
    """Cross-entropy of both readouts (position 0 has no previous token and is ignored)."""
    previous_logits, partner_logits, weights = model(batch.tokens)
    previous_loss = F.cross_entropy(previous_logits.flatten(0, 1), batch.previous_digit.flatten(), ignore_index=-100)
    partner_loss = F.cross_entropy(partner_logits.flatten(0, 1), batch.partner_digit.flatten())
    return previous_loss, partner_loss, weights


def partner_accuracies(model: TwoRelationModel,
                       batch: PartnerBatch) -> tuple[float, float]:
    """Share of right answers (previous digit, partner's digit); skips position 0."""
    previous_logits, partner_logits, _ = model(batch.tokens)
    has_previous = batch.previous_digit >= 0
    previous_right = previous_logits.argmax(-1) == batch.previous_digit
    partner_right = partner_logits.argmax(-1) == batch.partner_digit
    return (previous_right[has_previous].float().mean().item(),
            partner_right.float().mean().item())


@contextmanager
def ablate_heads(mha: MultiHeadAttention, heads):
    """Zero the outputs of the given heads inside ``mha`` (before W^O), then restore.

    After ``merge_heads`` head i occupies features i*d_k:(i+1)*d_k of the vector that
    enters W^O, so zeroing that block removes head i and nothing else.
    """
    d_model = mha.w_o.in_features
    d_k = d_model // mha.num_heads
    keep = torch.ones(d_model, device=mha.w_o.weight.device)
    for head in heads:
        keep[head * d_k:(head + 1) * d_k] = 0.0
    handle = mha.w_o.register_forward_pre_hook(lambda module, args: (args[0] * keep,))
    try:
        yield
    finally:
        handle.remove()


def attention_mass(weights: torch.Tensor, key_position: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Average weight each head puts on one chosen key per query.

    ``weights`` (B, h, n_q, n_k); ``key_position`` (B, n_q) the key each query should
    look at; ``valid`` (B, n_q) which queries count. Returns (h,).
    """
    chosen = weights.gather(3, key_position[:, None, :, None].expand(-1, weights.size(1), -1, 1)).squeeze(-1)
    if valid is None:
        return chosen.mean(dim=(0, 2))
    valid = valid[:, None, :].to(chosen.dtype)
    return (chosen * valid).sum(dim=(0, 2)) / valid.sum(dim=(0, 2))
