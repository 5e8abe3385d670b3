"""Ways to tell attention where each token is: absolute, relative and rotary positions.

* :func:`apply_rope` rotates queries or keys by position-dependent angles (RoPE, Su et
  al. 2021, *RoFormer*), in both conventions found in real code: ``interleaved`` pairs
  dimensions (0, 1), (2, 3), ... as the RoFormer paper and Meta's Llama code do;
  half-split pairs dimension i with i + d/2, as Hugging Face's ``rotate_half`` does.
  :func:`apply_rope_complex` is the same rotation written as a multiplication of
  complex numbers, an independent formulation to check the real one against.
* :class:`RelativePositionBias` adds one learned number per head and per (clipped)
  offset j - i to the attention scores, in the spirit of Shaw et al. (2018) and T5.
* :class:`PositionalGPT` is a tiny decoder-only Transformer whose only knowledge of
  order comes from the scheme named by ``position``: ``"none"``, ``"sinusoidal"``,
  ``"learned"``, ``"rope"`` or ``"relative"``.
* :func:`offset_copy_batch` is a toy task whose answer depends only on relative
  position: at every position, output the token ``offset`` places back.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from attention_course.transformer import (
    FeedForward,
    merge_heads,
    residual,
    sinusoidal_positional_encoding,
    split_heads,
)

SCHEMES = ("none", "sinusoidal", "learned", "rope", "relative")


# ---------------------------------------------------------------------------
# Rotary position embedding (RoPE)
# ---------------------------------------------------------------------------


def rope_frequencies(d: int, base: float = 10000.0, device=None) -> torch.Tensor:
    """(d/2,) angular speeds θ_i = base^(-2i/d), one per pair of dimensions."""
    if d % 2:
        raise ValueError(f"RoPE needs an even dimension, got {d}")
    exponent = torch.arange(0, d, 2, dtype=torch.float32, device=device) / d
    return base ** -exponent


def rope_angles(positions: torch.Tensor, d: int, base: float = 10000.0) -> torch.Tensor:
    """(n, d/2) angles m·θ_i for every position m and pair i."""
    positions = positions.to(torch.float32)
    return positions[:, None] * rope_frequencies(d, base, positions.device)[None, :]


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) on the two halves of the last dimension."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def _positions_for(x: torch.Tensor, positions) -> torch.Tensor:
    if positions is None:
        return torch.arange(x.size(-2), device=x.device)
    return torch.as_tensor(positions, device=x.device)


def apply_rope(x: torch.Tensor, positions=None, base: float = 10000.0,
               interleaved: bool = False) -> torch.Tensor:
    """Rotate each pair of dimensions of x (..., n, d) by the angle m·θ_i.

    ``positions`` (n,) gives each row's position m (default 0..n-1). Half-split
    (default): pair i is (x[i], x[i + d/2]). ``interleaved=True``: pair i is
    (x[2i], x[2i+1]).
    """
    angles = rope_angles(_positions_for(x, positions), x.size(-1), base)  # (n, d/2)
    cos, sin = angles.cos(), angles.sin()
    if interleaved:
        even, odd = x[..., 0::2], x[..., 1::2]
        rotated = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)
        return rotated.flatten(-2)
    cos, sin = torch.cat((cos, cos), dim=-1), torch.cat((sin, sin), dim=-1)
    return x * cos + rotate_half(x) * sin


def apply_rope_complex(x: torch.Tensor, positions=None, base: float = 10000.0,
                       interleaved: bool = False) -> torch.Tensor:
    """The same rotation as complex multiplication: z_i · e^{i m θ_i}, on the CPU.

    Each pair of dimensions is read as one complex number z_i (real part first), then
    multiplied by a unit complex number of angle m·θ_i. Complex tensors are not
    available on every accelerator, so this reference runs on the CPU in float64.
    """
    device = x.device
    x = x.detach().to("cpu", torch.float64)
    positions = _positions_for(x, positions).to("cpu")
    d = x.size(-1)
    if interleaved:
        pairs = x.reshape(*x.shape[:-1], d // 2, 2)
    else:
        pairs = torch.stack((x[..., : d // 2], x[..., d // 2:]), dim=-1)
    z = torch.view_as_complex(pairs.contiguous())
    theta = base ** -(torch.arange(0, d, 2, dtype=torch.float64) / d)
    angles = positions.to(torch.float64)[:, None] * theta[None, :]
    rotated = torch.view_as_real(z * torch.polar(torch.ones_like(angles), angles))
    if interleaved:
        out = rotated.flatten(-2)
    else:
        out = torch.cat((rotated[..., 0], rotated[..., 1]), dim=-1)
    return out.to(device, torch.float32)


def interleaved_to_half(d: int) -> torch.Tensor:
    """Index p with x_half = x_interleaved[..., p]: evens first, then odds."""
    return torch.cat((torch.arange(0, d, 2), torch.arange(1, d, 2)))


# ---------------------------------------------------------------------------
# Relative position bias
# ---------------------------------------------------------------------------


class RelativePositionBias(nn.Module):
    """A learned scalar per head for each offset j - i, clipped to ±max_distance.

    Every offset farther than ``max_distance`` shares the bias of the farthest one,
    so the table works for any sequence length.
    """

    def __init__(self, num_heads: int, max_distance: int = 8):
        super().__init__()
        self.max_distance = max_distance
        self.bias = nn.Parameter(torch.zeros(num_heads, 2 * max_distance + 1))

    def forward(self, n: int) -> torch.Tensor:
        """(num_heads, n, n) bias to add to the scores of a length-n sequence."""
        position = torch.arange(n, device=self.bias.device)
        offset = (position[None, :] - position[:, None]).clamp(
            -self.max_distance, self.max_distance)
        return self.bias[:, offset + self.max_distance]


# ---------------------------------------------------------------------------
# A tiny decoder-only Transformer with a choice of position scheme
# ---------------------------------------------------------------------------


class PositionalSelfAttention(nn.Module):
    """Causal multi-head self-attention, optionally with RoPE or a relative bias."""

    def __init__(self, d_model: int, num_heads: int, rope: bool = False,
                 relative_bias: RelativePositionBias | None = None,
                 base: float = 10000.0):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} is not divisible by"
                             f" num_heads={num_heads}")
        self.num_heads, self.rope, self.base = num_heads, rope, base
        self.relative_bias = relative_bias
        self.window = None  # if set, query i sees only keys i - window < j <= i
        self.w_q = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, d_model)
        self.w_v = nn.Linear(d_model, d_model)
        self.w_o = nn.Linear(d_model, d_model)
        self.attention_weights = None

    def forward(self, x):
        n = x.size(1)
        projections = (self.w_q, self.w_k, self.w_v)
        q, k, v = (split_heads(w(x), self.num_heads) for w in projections)
        if self.rope:  # rotate queries and keys, never values
            q, k = apply_rope(q, base=self.base), apply_rope(k, base=self.base)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
        if self.relative_bias is not None:
            scores = scores + self.relative_bias(n)
        causal = torch.ones(n, n, dtype=torch.bool, device=x.device).tril()
        if self.window is not None:
            causal = causal.triu(-(self.window - 1))
        weights = torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)
        self.attention_weights = weights
        return self.w_o(merge_heads(weights @ v))


class PositionalBlock(nn.Module):
    """A pre-LN decoder-only block: x + attn(LN(x)), then x + FFN(LN(x))."""

    def __init__(self, d_model, num_heads, d_ff, **attention_options):
        super().__init__()
        self.attn = PositionalSelfAttention(d_model, num_heads, **attention_options)
        self.ffn = FeedForward(d_model, d_ff)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.dropout = nn.Identity()

    def forward(self, x):
        x = residual(x, self.attn, self.norm1, self.dropout, norm_first=True)
        return residual(x, self.ffn, self.norm2, self.dropout, norm_first=True)


class PositionalGPT(nn.Module):
    """Token embedding, one position scheme, pre-LN causal blocks, a final LayerNorm.

    ``position`` is one of :data:`SCHEMES`. ``"sinusoidal"`` and ``"learned"`` add a
    vector per absolute position to the token embedding; a learned table has
    ``max_positions`` rows and cannot encode any position beyond them.
    ``"rope"`` rotates queries and keys in every layer; ``"relative"`` adds a learned
    bias per clipped offset (shared by all layers, as in T5). ``"none"`` gives the
    model no position information beyond what the causal mask implies.
    """

    def __init__(self, vocab_size: int, position: str, d_model: int = 32,
                 num_heads: int = 2, d_ff: int = 64, num_layers: int = 1,
                 max_positions: int = 16, max_distance: int = 8):
        super().__init__()
        if position not in SCHEMES:
            raise ValueError(f"position must be one of {SCHEMES}, got {position!r}")
        self.position, self.d_model = position, d_model
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.learned = (nn.Embedding(max_positions, d_model)
                        if position == "learned" else None)
        bias = (RelativePositionBias(num_heads, max_distance)
                if position == "relative" else None)
        self.blocks = nn.ModuleList(
            PositionalBlock(d_model, num_heads, d_ff, rope=position == "rope",
                            relative_bias=bias)
            for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)

    def set_window(self, window: int | None) -> None:
        """Let each query see only its ``window`` most recent keys (None: all keys)."""
        for block in self.blocks:
            block.attn.window = window

    def embed(self, tokens):
        x = self.embedding(tokens)
        n = tokens.size(1)
        if self.position == "sinusoidal":
            x = x + sinusoidal_positional_encoding(n, self.d_model).to(x.device)
        elif self.position == "learned":
            if n > self.learned.num_embeddings:
                table_size = self.learned.num_embeddings
                raise ValueError(f"a learned table of {table_size} positions"
                                 f" has no vector for position {n - 1}")
            x = x + self.learned(torch.arange(n, device=tokens.device))
        return x

    def forward(self, tokens):
        """(B, n) token ids -> (B, n, vocab) logits for each position's next output."""
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


# ---------------------------------------------------------------------------
# The toy task
# ---------------------------------------------------------------------------


def offset_copy_batch(batch_size: int, length: int, offset: int = 3,
                      vocab_size: int = 16, generator=None, device=None):
    """Random tokens and, at each position i >= offset, the target token[i - offset].

    Returns (tokens (B, n), targets (B, n)); targets are -100 (ignored) where
    i < offset.
    """
    tokens = torch.randint(0, vocab_size, (batch_size, length), generator=generator)
    targets = torch.full_like(tokens, -100)
    targets[:, offset:] = tokens[:, :-offset]
    return tokens.to(device), targets.to(device)
