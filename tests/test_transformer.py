"""The shared Transformer pieces agree with torch's own modules."""
import math

import pytest
import torch
from torch import nn

from attention_course.transformer import (
    DecoderLayer,
    EncoderLayer,
    MultiHeadAttention,
    causal_mask,
    merge_heads,
    padding_mask,
    sinusoidal_positional_encoding,
    split_heads,
)
from attention_course.torch_compat import copy_encoder_layer_to_torch, copy_mha_to_torch


def test_split_heads_puts_feature_block_i_in_head_i_and_merge_inverts():
    x = torch.arange(2 * 3 * 8, dtype=torch.float32).view(2, 3, 8)
    heads = split_heads(x, 4)
    assert heads.shape == (2, 4, 3, 2)
    assert torch.equal(heads[1, 2, 0], x[1, 0, 4:6])
    assert torch.equal(merge_heads(heads), x)


def test_multihead_rejects_indivisible_width():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)


@pytest.mark.parametrize("use_mask", [False, True])
def test_multihead_matches_torch_with_copied_weights(use_mask):
    torch.manual_seed(0)
    ours = MultiHeadAttention(16, 4).double()
    theirs = nn.MultiheadAttention(16, 4, batch_first=True).double()
    copy_mha_to_torch(ours, theirs)
    q, kv = torch.randn(2, 5, 16, dtype=torch.float64), torch.randn(2, 7, 16, dtype=torch.float64)
    mask = torch.rand(5, 7) > 0.3 if use_mask else None
    if mask is not None:
        mask[:, 0] = True
    out, weights = ours(q, kv, kv, mask)
    ref_out, ref_weights = theirs(q, kv, kv, attn_mask=None if mask is None else ~mask, average_attn_weights=False)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(weights, ref_weights)
    assert sum(p.numel() for p in ours.parameters()) == 4 * (16 * 16 + 16)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_matches_torch(norm_first):
    torch.manual_seed(1)
    d, h, ff = 12, 3, 24
    ours = EncoderLayer(d, h, ff, norm_first=norm_first).double().eval()
    theirs = nn.TransformerEncoderLayer(d, h, ff, dropout=0.0, batch_first=True, norm_first=norm_first).double().eval()
    copy_encoder_layer_to_torch(ours, theirs)
    x = torch.randn(2, 6, d, dtype=torch.float64)
    torch.testing.assert_close(ours(x), theirs(x))


def test_decoder_layer_is_causal_and_reads_memory():
    torch.manual_seed(2)
    layer = DecoderLayer(8, 2, 16).eval()
    x, memory = torch.randn(1, 5, 8), torch.randn(1, 4, 8)
    changed = x.clone()
    changed[0, 3] += 10.0
    mask = causal_mask(5)
    before, after = layer(x, memory, mask), layer(changed, memory, mask)
    torch.testing.assert_close(before[0, :3], after[0, :3])
    assert not torch.allclose(before[0, 3:], after[0, 3:])
    assert layer.cross_attention_weights.shape == (1, 2, 5, 4)
    assert not torch.allclose(layer(x, memory + 1.0, mask), before)


def test_masks():
    assert torch.equal(causal_mask(3), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool))
    tokens = torch.tensor([[5, 6, 0], [7, 0, 0]])
    assert padding_mask(tokens, pad_id=0).shape == (2, 1, 1, 3)
    assert padding_mask(tokens, pad_id=0)[1, 0, 0].tolist() == [True, False, False]


def test_sinusoidal_positional_encoding_formula():
    pe = sinusoidal_positional_encoding(50, 16)
    pos, i = 7, 3
    assert math.isclose(pe[pos, 2 * i].item(), math.sin(pos / 10000 ** (2 * i / 16)), rel_tol=1e-5)
    assert math.isclose(pe[pos, 2 * i + 1].item(), math.cos(pos / 10000 ** (2 * i / 16)), rel_tol=1e-5)


def test_layer_parts_can_be_switched_off_for_chapter_4():
    d, h = 8, 2
    x = torch.randn(2, 5, d)
    full = EncoderLayer(d, h, 4 * d).eval()
    assert sum(p.numel() for p in full.parameters()) == 12 * d * d + 13 * d
    no_ffn = EncoderLayer(d, h, 0).eval()
    assert no_ffn.ffn is None
    assert sum(p.numel() for p in no_ffn.parameters()) == 4 * d * d + 4 * d + 4 * d
    no_norm = EncoderLayer(d, h, 4 * d, layer_norm=False).eval()
    assert isinstance(no_norm.norm1, nn.Identity) and isinstance(no_norm.norm2, nn.Identity)
    no_skip = EncoderLayer(d, h, 4 * d, skip=False).eval()
    with torch.no_grad():
        attended = no_skip.norm1(no_skip.self_attn(x, x, x)[0])
        expected = no_skip.norm2(no_skip.ffn(attended))
        torch.testing.assert_close(no_skip(x), expected)
        attended = x + no_ffn.self_attn(x, x, x)[0]
        torch.testing.assert_close(no_ffn(x), no_ffn.norm1(attended))
    decoder = DecoderLayer(d, h, 0, skip=False, layer_norm=False).eval()
    assert decoder.ffn is None and len(decoder._sublayers(x, None, None)) == 2


def test_default_layers_are_unchanged_by_the_switches():
    torch.manual_seed(1)
    plain = EncoderLayer(8, 2, 32)
    torch.manual_seed(1)
    explicit = EncoderLayer(8, 2, 32, skip=True, layer_norm=True)
    for (name, a), (_, b) in zip(plain.state_dict().items(), explicit.state_dict().items()):
        assert torch.equal(a, b), name
