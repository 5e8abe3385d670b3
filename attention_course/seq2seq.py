"""A tiny encoder-decoder Transformer built from the layers in ``transformer.py``.

Chapter 4 trains it to reverse digit strings and reads its cross-attention.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from attention_course.transformer import (
    DecoderLayer,
    EncoderLayer,
    causal_mask,
    padding_mask,
    sinusoidal_positional_encoding,
)


class Seq2SeqTransformer(nn.Module):
    """Embeddings + sinusoidal positions, then stacks of encoder and decoder layers.

    Source and target share one vocabulary and one embedding table. With
    ``norm_first=True`` (pre-LN) each stack ends with a final LayerNorm, as pre-LN
    models do; post-LN layers already end in one. ``skip`` and ``layer_norm`` (and
    ``d_ff=0``) switch parts of every layer off, as in :class:`EncoderLayer`.
    """

    def __init__(self, vocab_size: int, d_model: int = 64, num_heads: int = 4,
                 d_ff: int = 128, num_layers: int = 2, max_len: int = 64,
                 pad_id: int = 0, norm_first: bool = False, dropout: float = 0.0,
                 *, skip: bool = True, layer_norm: bool = True):
        super().__init__()
        self.d_model, self.pad_id = d_model, pad_id
        self.embedding = nn.Embedding(vocab_size, d_model)
        # std 1/√d_model, so that after embed()'s √d_model scaling the token vectors
        # have entries of size ~1, like the positional encoding they are added to.
        nn.init.normal_(self.embedding.weight, std=d_model ** -0.5)
        positions = sinusoidal_positional_encoding(max_len, d_model)
        self.register_buffer("positions", positions, persistent=False)
        args = (d_model, num_heads, d_ff, dropout, norm_first)
        parts = dict(skip=skip, layer_norm=layer_norm)
        layers = range(num_layers)
        self.encoder = nn.ModuleList(EncoderLayer(*args, **parts) for _ in layers)
        self.decoder = nn.ModuleList(DecoderLayer(*args, **parts) for _ in layers)
        final_norm = norm_first and layer_norm
        self.encoder_norm = nn.LayerNorm(d_model) if final_norm else nn.Identity()
        self.decoder_norm = nn.LayerNorm(d_model) if final_norm else nn.Identity()
        self.generator = nn.Linear(d_model, vocab_size)

    def embed(self, tokens):
        """Token embedding × √d_model (as in the paper) + the positional encoding."""
        scaled = self.embedding(tokens) * math.sqrt(self.d_model)
        return scaled + self.positions[: tokens.size(1)]

    def encode(self, source):
        """(B, n_src) ids -> memory (B, n_src, d_model) and the source padding mask."""
        source_mask = padding_mask(source, self.pad_id)  # (B, 1, 1, n_src)
        x = self.embed(source)
        for layer in self.encoder:
            x = layer(x, source_mask)
        return self.encoder_norm(x), source_mask

    def decode(self, target_in, memory, source_mask):
        """(B, n_tgt) ids -> logits (B, n_tgt, vocab).

        Position t sees the targets up to and including t only.
        """
        n = target_in.size(1)
        # (B, 1, n, n): causal, with padding keys hidden
        self_mask = (causal_mask(n, target_in.device)
                     & padding_mask(target_in, self.pad_id))
        x = self.embed(target_in)
        for layer in self.decoder:
            x = layer(x, memory, self_mask, source_mask)
        return self.generator(self.decoder_norm(x))

    def forward(self, source, target_in):
        memory, source_mask = self.encode(source)
        return self.decode(target_in, memory, source_mask)

    @torch.no_grad()
    def greedy_decode(self, source, bos_id: int, max_new_tokens: int):
        """Generate one token at a time, feeding each prediction back in.

        Returns (B, max_new_tokens) token ids.
        """
        memory, source_mask = self.encode(source)
        out = torch.full((source.size(0), 1), bos_id, dtype=torch.long,
                         device=source.device)
        for _ in range(max_new_tokens):
            logits = self.decode(out, memory, source_mask)[:, -1]
            next_token = logits.argmax(-1, keepdim=True)
            out = torch.cat([out, next_token], 1)
        return out[:, 1:]
