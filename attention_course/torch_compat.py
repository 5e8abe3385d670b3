"""Copy our layers' weights into torch's own modules, to check they compute the same.

``torch.nn.MultiheadAttention`` keeps W^Q, W^K, W^V stacked in one ``in_proj_weight``
of shape (3·d_model, d_model); ours keeps three ``nn.Linear`` layers.
"""
from __future__ import annotations

import torch
from torch import nn

from attention_course.transformer import EncoderLayer, MultiHeadAttention


def copy_mha_to_torch(ours: MultiHeadAttention, theirs: nn.MultiheadAttention) -> None:
    """Make ``theirs`` compute exactly what ``ours`` computes."""
    with torch.no_grad():
        projections = (ours.w_q, ours.w_k, ours.w_v)
        theirs.in_proj_weight.copy_(torch.cat([p.weight for p in projections]))
        theirs.in_proj_bias.copy_(torch.cat([p.bias for p in projections]))
        theirs.out_proj.weight.copy_(ours.w_o.weight)
        theirs.out_proj.bias.copy_(ours.w_o.bias)


def copy_encoder_layer_to_torch(ours: EncoderLayer,
                                theirs: nn.TransformerEncoderLayer) -> None:
    """Attention, the FFN's two linears and both LayerNorms, name by name."""
    copy_mha_to_torch(ours.self_attn, theirs.self_attn)
    theirs.linear1.load_state_dict(ours.ffn.linear1.state_dict())
    theirs.linear2.load_state_dict(ours.ffn.linear2.state_dict())
    theirs.norm1.load_state_dict(ours.norm1.state_dict())
    theirs.norm2.load_state_dict(ours.norm2.state_dict())
