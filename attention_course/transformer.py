"""Multi-head attention and Transformer layers, written out so every step is visible.

Chapters 3 and 4 build these up and check them against ``torch.nn.MultiheadAttention``
and ``torch.nn.TransformerEncoderLayer``; chapters 6–8 (BERT, GPT, ViT) reuse them.
Masks are boolean with **True = may attend**, the convention of
``torch.nn.functional.scaled_dot_product_attention``.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def attention(q, k, v, mask=None, dropout: nn.Module | None = None):
    """softmax(q kᵀ / √d_k) v over the last two dims; returns (output, weights)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if dropout is not None:
        weights = dropout(weights)
    return weights @ v, weights


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, n, d_model) -> (B, num_heads, n, d_head); head i holds features i*d_head:(i+1)*d_head."""
    batch, n, d_model = x.shape
    return x.view(batch, n, num_heads, d_model // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, num_heads, n, d_head) -> (B, n, num_heads * d_head), the inverse of split_heads."""
    batch, num_heads, n, d_head = x.shape
    return x.transpose(1, 2).reshape(batch, n, num_heads * d_head)


class MultiHeadAttention(nn.Module):
    """h heads of scaled dot-product attention over d_model / h dimensions each, then W^O."""

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if d_model % num_heads != 0:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.w_q = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, d_model)
        self.w_v = nn.Linear(d_model, d_model)
        self.w_o = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, query, key, value, mask=None):
        """Returns (output (B, n_q, d_model), weights (B, num_heads, n_q, n_k))."""
        q = split_heads(self.w_q(query), self.num_heads)
        k = split_heads(self.w_k(key), self.num_heads)
        v = split_heads(self.w_v(value), self.num_heads)
        heads, weights = attention(q, k, v, mask, self.dropout)
        return self.w_o(merge_heads(heads)), weights


def causal_mask(n: int, device=None) -> torch.Tensor:
    """(n, n) boolean, True on and below the diagonal: position i may attend to j <= i."""
    return torch.ones(n, n, dtype=torch.bool, device=device).tril()


def padding_mask(tokens: torch.Tensor, pad_id: int) -> torch.Tensor:
    """(B, n) token ids -> (B, 1, 1, n) boolean, False at padding keys."""
    return (tokens != pad_id)[:, None, None, :]


def sinusoidal_positional_encoding(n_positions: int, d_model: int) -> torch.Tensor:
    """PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(pos / 10000^(2i/d))."""
    position = torch.arange(n_positions, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    encoding = torch.zeros(n_positions, d_model)
    encoding[:, 0::2] = torch.sin(position * frequency)
    encoding[:, 1::2] = torch.cos(position * frequency)
    return encoding


class FeedForward(nn.Module):
    """The position-wise feed-forward network: Linear -> ReLU -> Linear."""

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.linear2(self.dropout(torch.relu(self.linear1(x))))


def residual(x, sublayer, norm, dropout, norm_first: bool, skip: bool = True):
    """Post-LN: LN(x + sublayer(x)). Pre-LN: x + sublayer(LN(x)).

    ``skip=False`` drops the "x +" (no residual connection), an experiment of chapter 4.
    """
    stream = x if skip else 0
    if norm_first:
        return stream + dropout(sublayer(norm(x)))
    return norm(stream + dropout(sublayer(x)))


class EncoderLayer(nn.Module):
    """Self-attention + FFN, each wrapped in a residual connection and LayerNorm.

    ``norm_first=False`` is the original paper's post-LN: x = LN(x + sublayer(x)).
    ``norm_first=True`` is the pre-LN most modern models use: x = x + sublayer(LN(x)).
    The last attention weights are kept in ``self.attention_weights`` for plotting.
    For chapter 4's experiments, ``d_ff=0`` leaves out the FFN sublayer,
    ``skip=False`` the residual connections and ``layer_norm=False`` the LayerNorms.
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.0,
                 norm_first: bool = False, *, skip: bool = True,
                 layer_norm: bool = True):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout) if d_ff > 0 else None
        norm = nn.LayerNorm if layer_norm else (lambda d: nn.Identity())
        self.norm1 = norm(d_model)
        self.norm2 = norm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.norm_first = norm_first
        self.skip = skip
        self.attention_weights = None

    def forward(self, x, mask=None):
        def self_attention(h):
            out, self.attention_weights = self.self_attn(h, h, h, mask)
            return out

        settings = (self.dropout, self.norm_first, self.skip)
        x = residual(x, self_attention, self.norm1, *settings)
        if self.ffn is None:
            return x
        return residual(x, self.ffn, self.norm2, *settings)


class DecoderLayer(nn.Module):
    """Masked self-attention, cross-attention over the encoder output, then FFN.

    Queries of the cross-attention come from the decoder, keys and values from the
    encoder's output (``memory``). Weights are kept in ``self_attention_weights``
    and ``cross_attention_weights``. ``d_ff``, ``skip`` and ``layer_norm`` as in
    :class:`EncoderLayer`.
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.0,
                 norm_first: bool = False, *, skip: bool = True,
                 layer_norm: bool = True):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.cross_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout) if d_ff > 0 else None
        norm = nn.LayerNorm if layer_norm else (lambda d: nn.Identity())
        self.norms = nn.ModuleList(norm(d_model) for _ in range(3))
        self.dropout = nn.Dropout(dropout)
        self.norm_first = norm_first
        self.skip = skip
        self.self_attention_weights = None
        self.cross_attention_weights = None

    def _sublayers(self, memory, self_mask, memory_mask):
        def self_attention(x):
            out, self.self_attention_weights = self.self_attn(x, x, x, self_mask)
            return out

        def cross_attention(x):
            out, self.cross_attention_weights = self.cross_attn(x, memory, memory, memory_mask)
            return out

        if self.ffn is None:
            return (self_attention, cross_attention)
        return (self_attention, cross_attention, self.ffn)

    def forward(self, x, memory, self_mask=None, memory_mask=None):
        for sublayer, norm in zip(self._sublayers(memory, self_mask, memory_mask), self.norms):
            x = residual(x, sublayer, norm, self.dropout, self.norm_first, self.skip)
        return x
