"""Where attention began: a GRU encoder–decoder with additive (Bahdanau) attention.

Bahdanau, Cho and Bengio (2015), *Neural Machine Translation by Jointly Learning to
Align and Translate*: a bidirectional RNN reads the source into one vector per
position (an *annotation*); at every output step the decoder scores each annotation
with a small feed-forward network, ``e_tj = vᵀ tanh(W s_{t-1} + U h_j)``, turns the
scores into weights with a softmax, and reads their weighted sum (the *context*).

* :class:`AdditiveAttention` is that scoring-softmax-sum step, on its own.
* :class:`RNNSeq2Seq` is the encoder–decoder around it. With ``attention=False`` it
  is the earlier encoder–decoder that squeezes the whole source into one fixed vector
  (Cho et al. 2014; Sutskever et al. 2014), the bottleneck attention removed.
* :func:`attend` is the one recipe both attentions share: score, softmax, weighted sum.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def attend(score_fn, queries, keys, values, mask=None):
    """score -> softmax over keys -> weighted sum of values.

    ``score_fn(queries (B, n_q, d_q), keys (B, n_k, d_k))`` returns (B, n_q, n_k);
    ``mask`` (broadcastable to that shape) is True where a key may be read.
    Returns (output (B, n_q, d_v), weights (B, n_q, n_k)).
    """
    scores = score_fn(queries, keys)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ values, weights


def dot_product_score(queries, keys):
    """The Transformer's score: q·k / √d_k."""
    return queries @ keys.transpose(-2, -1) / math.sqrt(queries.size(-1))


class AdditiveAttention(nn.Module):
    """Bahdanau's score vᵀ tanh(W q + U k).

    A network with one hidden layer, applied to every (query, key) pair.
    """

    def __init__(self, query_dim: int, key_dim: int, hidden_dim: int):
        super().__init__()
        self.w_query = nn.Linear(query_dim, hidden_dim, bias=False)
        self.w_key = nn.Linear(key_dim, hidden_dim, bias=True)
        self.v = nn.Linear(hidden_dim, 1, bias=False)

    def score(self, queries, keys, projected_keys=None):
        """(B, n_q, d_q), (B, n_k, d_k) -> (B, n_q, n_k).

        The hidden layer holds a (B, n_q, n_k, hidden_dim) tensor: one vector per
        (query, key) pair. ``projected_keys`` = U k can be computed once and reused.
        """
        if projected_keys is None:
            projected_keys = self.w_key(keys)
        projected_queries = self.w_query(queries)
        hidden = torch.tanh(projected_queries[:, :, None, :]
                            + projected_keys[:, None, :, :])
        return self.v(hidden).squeeze(-1)

    def forward(self, queries, keys, values, mask=None):
        return attend(self.score, queries, keys, values, mask)


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse x (B, n, ...) within each sequence's length; padding stays at the end."""
    position = torch.arange(x.size(1), device=x.device)
    index = (lengths[:, None] - 1 - position[None, :]).clamp(min=0)
    index = torch.where(position[None, :] < lengths[:, None], index, position[None, :])
    return x.gather(1, index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x))


class RNNSeq2Seq(nn.Module):
    """Bidirectional-GRU encoder, GRU decoder, with or without additive attention.

    Encoder: annotations h_j = [forward state; backward state] (2·hidden each).
    Decoder step t: attention with the previous state s_{t-1} as the query over the
    annotations gives the context c_t; s_t = GRU([embed(y_{t-1}); c_t], s_{t-1});
    the next token is predicted from [s_t; c_t; embed(y_{t-1})].
    With ``attention=False`` c_t is the same fixed vector at every step: the final
    forward state and the final backward state of the encoder. ``score="dot"`` swaps
    the additive score for a scaled dot product (W s_{t-1})·h_j / √d, the
    Transformer's score with a learned query projection.
    """

    def __init__(self, vocab_size: int, embed_dim: int = 32, hidden_dim: int = 64,
                 attention: bool = True, pad_id: int = 0, score: str = "additive"):
        super().__init__()
        if score not in ("additive", "dot"):
            raise ValueError(f"score must be 'additive' or 'dot', got {score!r}")
        self.pad_id, self.use_attention, self.score_kind = pad_id, attention, score
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.forward_rnn = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.backward_rnn = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.init_state = nn.Linear(2 * hidden_dim, hidden_dim)
        self.attention = AdditiveAttention(hidden_dim, 2 * hidden_dim, hidden_dim)
        self.query_projection = nn.Linear(hidden_dim, 2 * hidden_dim, bias=False)
        self.cell = nn.GRUCell(embed_dim + 2 * hidden_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim + 2 * hidden_dim + embed_dim, vocab_size)

    def encode(self, source):
        """(B, n) ids -> annotations, summary and key mask.

        Shapes: (B, n, 2·hidden), (B, 2·hidden) and (B, n).
        """
        lengths = (source != self.pad_id).sum(1)
        x = self.embedding(source)
        forward_states, _ = self.forward_rnn(x)
        backward_states, _ = self.backward_rnn(reverse_within_length(x, lengths))
        backward_states = reverse_within_length(backward_states, lengths)
        annotations = torch.cat([forward_states, backward_states], dim=-1)
        last = (lengths - 1).clamp(min=0)
        batch = torch.arange(source.size(0), device=source.device)
        final_forward = forward_states[batch, last]
        final_backward = backward_states[:, 0]
        summary = torch.cat([final_forward, final_backward], dim=-1)
        return annotations, summary, source != self.pad_id

    def forward(self, source, target_in, hidden_positions=None):
        """Teacher-forced logits (B, n_out, vocab), attention weights (B, n_out, n_src).

        ``hidden_positions`` (bool, broadcastable to (B, n_src)) marks source positions
        the attention may not read (an intervention); None hides nothing.
        """
        annotations, summary, mask = self.encode(source)
        if hidden_positions is not None:
            mask = mask & ~hidden_positions
        state = torch.tanh(self.init_state(summary))
        projected = self.attention.w_key(annotations)  # U h_j, computed once
        if self.score_kind == "additive":
            def score(q, k):
                return self.attention.score(q, k, projected)
        else:
            def score(q, k):
                return dot_product_score(self.query_projection(q), k)
        logits, weights = [], []
        for t in range(target_in.size(1)):
            y = self.embedding(target_in[:, t])
            if self.use_attention:
                context, w = attend(score, state[:, None], annotations, annotations,
                                    mask[:, None, :])
                context, w = context[:, 0], w[:, 0]
            else:
                context, w = summary, torch.zeros_like(mask, dtype=summary.dtype)
            state = self.cell(torch.cat([y, context], -1), state)
            logits.append(self.out(torch.cat([state, context, y], -1)))
            weights.append(w)
        return torch.stack(logits, 1), torch.stack(weights, 1)

    @torch.no_grad()
    def greedy_decode(self, source, bos_id: int, max_new_tokens: int):
        """Feed each prediction back in; returns (B, max_new_tokens) token ids."""
        out = torch.full((source.size(0), 1), bos_id, dtype=torch.long,
                         device=source.device)
        for _ in range(max_new_tokens):
            logits, _ = self(source, out)
            out = torch.cat([out, logits[:, -1].argmax(-1, keepdim=True)], 1)
        return out[:, 1:]
