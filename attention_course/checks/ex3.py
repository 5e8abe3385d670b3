"""Checks for exercise 3: positional encoding, masks and a Transformer encoder block.

References: the sinusoid formula written out in NumPy (float64), and
``torch.nn.TransformerEncoderLayer`` with the same weights for the block.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from attention_course.checks.core import (
    CheckFailed, as_array, attribute, bind, call, expect_close, expect_depends_on_input,
    expect_shape, forbid, fresh_learner, passed, prepare_module,
)
from attention_course.checks.ex2 import expect_linear

# The notebook says: nn.MultiheadAttention is fine inside the block, these are not.
BUILT_INS = {
    "torch.nn.TransformerEncoderLayer":
        "the exercise asks you to build the block yourself (the tests compare your "
        "block with it).",
    "torch.nn.TransformerEncoder": "the exercise asks you to build the block yourself.",
}


def sinusoids(n_positions: int, d_model: int, pair_exponent: bool = True, start: int = 0,
              swapped: bool = False, halves: bool = False) -> np.ndarray:
    """PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(...); knobs give mistakes."""
    positions = np.arange(start, start + n_positions, dtype=np.float64)[:, None]
    pairs = np.arange(0, d_model, 2, dtype=np.float64)
    exponent = pairs / d_model if pair_exponent else np.arange(len(pairs)) / d_model
    angles = positions / 10000.0 ** exponent
    first, second = (np.cos, np.sin) if swapped else (np.sin, np.cos)
    if halves:
        return np.concatenate([first(angles), second(angles)], axis=1)[:, :d_model]
    table = np.empty((n_positions, d_model))
    table[:, 0::2] = first(angles)
    table[:, 1::2] = second(angles)[:, :d_model // 2]
    return table


def check_positional_encoding_values(positional_encoding, cases=((4, 6), (50, 16))):
    """Equals the sinusoid formula; row 0 is (0, 1, 0, 1, ...)."""
    fn = bind(positional_encoding, "positional_encoding")
    for n, d in cases:
        result = as_array(call(fn, n, d), f"positional_encoding({n}, {d})", "torch")
        expect_close(result, sinusoids(n, d), f"positional_encoding({n}, {d})", np.float32, {
            "sin and cos are swapped: even columns are sin, odd columns are cos.":
                lambda: sinusoids(n, d, swapped=True),
            "the exponent uses the column index j instead of the pair's 2i: both columns of a "
            "pair share one frequency, 1 / 10000^(2i / d_model).":
                lambda: sinusoids(n, d, pair_exponent=False),
            "sines fill the first half and cosines the second; interleave them (sin in column "
            "2i, cos in column 2i + 1).": lambda: sinusoids(n, d, halves=True),
            "positions should start at 0, not 1.": lambda: sinusoids(n, d, start=1),
        }, shape_hint="The shape is (n_positions, d_model).")
    passed("positional_encoding follows the sinusoid formula")


def check_positional_encoding_relative(positional_encoding, n=32, d_model=8, offsets=(1, 5)):
    """PE[pos + k] is one fixed linear map of PE[pos] for every pos (relative positions)."""
    fn = bind(positional_encoding, "positional_encoding")
    table = as_array(call(fn, n, d_model), "positional_encoding", "torch").astype(np.float64)
    expect_shape(table, (n, d_model), f"positional_encoding({n}, {d_model})")
    if len({row.tobytes() for row in np.round(table, 5)}) != n:
        raise CheckFailed("Two positions got the same encoding: every row must be different.")
    for k in offsets:
        source, target = table[:-k], table[k:]
        linear_map, *_ = np.linalg.lstsq(source, target, rcond=None)
        if not np.allclose(source @ linear_map, target, atol=1e-3):
            raise CheckFailed(f"Moving every position by {k} should act as one fixed rotation of "
                              "each (sin, cos) pair — that is what lets attention read relative "
                              "positions. Check that both columns of a pair use the same angle.")
    passed("shifting positions is a fixed linear map of the encoding")


def check_causal_mask(causal_mask, sizes=(1, 4)):
    """A boolean torch (n, n) mask, True on and below the diagonal."""
    fn = bind(causal_mask, "causal_mask")
    for n in sizes:
        mask = as_array(call(fn, n), f"causal_mask({n})", "torch")
        expected = np.tril(np.ones((n, n), dtype=bool))
        expect_shape(mask, (n, n), f"causal_mask({n})")
        if mask.dtype != bool:
            raise CheckFailed(f"causal_mask({n}) should be a bool tensor, got {mask.dtype}.")
        if np.array_equal(mask, expected.T) and n > 1:
            raise CheckFailed(f"causal_mask({n}) is transposed: True must be on and below the "
                              "diagonal (keys at or before the query).")
        if not np.array_equal(mask, expected):
            raise CheckFailed(f"causal_mask({n}) should be torch.tril(torch.ones(n, n)).bool().")
    passed("causal_mask is lower-triangular")


PAD = 1  # not 0: code that hard-codes 0 as the padding id fails


def padded_tokens(lengths, n, generator=None) -> torch.Tensor:
    """(B, n) token ids: ordinary ids (never PAD) before each length, PAD after it."""
    generator = generator or torch.Generator().manual_seed(sum(lengths) + n)
    tokens = torch.randint(PAD + 1, PAD + 20, (len(lengths), n), generator=generator)
    for row, length in enumerate(lengths):
        tokens[row, length:] = PAD
    return tokens


def check_padding_mask(padding_mask, lengths=(3, 5, 1), n=5):
    """padding_mask(token_ids, pad_id) is bool (B, 1, n): True at the real tokens (!= pad_id)."""
    fn = bind(padding_mask, "padding_mask")
    tokens = padded_tokens(lengths, n)
    what = f"padding_mask(token_ids of shape {tuple(tokens.shape)}, pad_id={PAD})"
    mask = as_array(call(fn, tokens, PAD), what, "torch")
    expected = (tokens != PAD).numpy()[:, None, :]
    if mask.shape == (len(lengths), n):
        raise CheckFailed(f"{what} should have shape (B, 1, n) = {expected.shape}, so that it "
                          "broadcasts over the queries; add the middle axis with [:, None, :].")
    if mask.shape == (len(lengths), 1, 1, n):
        raise CheckFailed(f"{what} should have shape (B, 1, n) = {expected.shape}: the encoder "
                          "block's attention takes (B, n, n) masks, so there is no head axis here "
                          "(Chapter 4's padding_mask has one for its multi-head layers).")
    expect_shape(mask, expected.shape, what)
    if mask.dtype != bool:
        raise CheckFailed(f"{what} should be a bool tensor, got {mask.dtype}.")
    if np.array_equal(mask, ~expected):
        raise CheckFailed(f"{what} is inverted: True marks real tokens (they may be attended "
                          "to), False marks padding.")
    if not np.array_equal(mask, expected):
        raise CheckFailed(f"{what} should be True exactly where token_ids != pad_id.")
    passed("padding_mask marks the real tokens")


def _block_state(generator: torch.Generator, d_model: int, d_ff: int) -> dict:
    def rand(*shape, scale):
        return torch.randn(*shape, generator=generator, dtype=torch.float64) * scale

    return {
        "self_attn.in_proj_weight": rand(3 * d_model, d_model, scale=d_model ** -0.5),
        "self_attn.in_proj_bias": rand(3 * d_model, scale=0.1),
        "self_attn.out_proj.weight": rand(d_model, d_model, scale=d_model ** -0.5),
        "self_attn.out_proj.bias": rand(d_model, scale=0.1),
        "linear1.weight": rand(d_ff, d_model, scale=d_model ** -0.5),
        "linear1.bias": rand(d_ff, scale=0.1),
        "linear2.weight": rand(d_model, d_ff, scale=d_ff ** -0.5),
        "linear2.bias": rand(d_model, scale=0.1),
        "norm1.weight": 1 + rand(d_model, scale=0.1), "norm1.bias": rand(d_model, scale=0.1),
        "norm2.weight": 1 + rand(d_model, scale=0.1), "norm2.bias": rand(d_model, scale=0.1),
    }


def _torch_mask(mask, batch, num_heads, n):
    """Our mask (True = may attend) as torch's (B*h, n, n) mask (True = may NOT attend)."""
    if mask is None:
        return None
    full = torch.broadcast_to(mask, (batch, n, n))
    return ~full[:, None].expand(batch, num_heads, n, n).reshape(batch * num_heads, n, n)


def _block_variant(state, num_heads, x, mask, norm_first, residual=True, order="standard"):
    """The block written with torch's functional ops; ``residual=False`` drops the skips.

    ``order`` (post-LN only): "norm_on_sublayer" normalises the sublayer's output before
    the residual sum, x + norm(sublayer(x)); "norms_swapped" uses norm2 after attention
    and norm1 after the feed-forward sublayer."""
    d_model = x.shape[-1]
    attn = nn.MultiheadAttention(d_model, num_heads, batch_first=True, dtype=torch.float64)
    attn.load_state_dict({k.removeprefix("self_attn."): v for k, v in state.items()
                          if k.startswith("self_attn.")})

    def norm(h, which):
        return F.layer_norm(h, (d_model,), state[f"{which}.weight"], state[f"{which}.bias"])

    def attention(h):
        return attn(h, h, h, attn_mask=_torch_mask(mask, x.shape[0], num_heads, x.shape[1]),
                    need_weights=False)[0]

    def feed_forward(h):
        hidden = F.relu(F.linear(h, state["linear1.weight"], state["linear1.bias"]))
        return F.linear(hidden, state["linear2.weight"], state["linear2.bias"])

    skip = 1.0 if residual else 0.0
    with torch.no_grad():
        if norm_first:
            h = skip * x + attention(norm(x, "norm1"))
            return (skip * h + feed_forward(norm(h, "norm2"))).numpy()
        first, second = ("norm2", "norm1") if order == "norms_swapped" else ("norm1", "norm2")
        if order == "norm_on_sublayer":
            h = skip * x + norm(attention(x), first)
            return (skip * h + norm(feed_forward(h), second)).numpy()
        h = norm(skip * x + attention(x), first)
        return norm(skip * h + feed_forward(h), second).numpy()


def _torch_block(state, num_heads, d_ff, x, mask, norm_first):
    d_model = x.shape[-1]
    reference = nn.TransformerEncoderLayer(d_model, num_heads, d_ff, dropout=0.0, batch_first=True,
                                           norm_first=norm_first, dtype=torch.float64)
    reference.load_state_dict(state)
    reference.train()  # the plain code path (the fused inference path is only for eval mode)
    with torch.no_grad():
        return reference(x, src_mask=_torch_mask(mask, x.shape[0], num_heads, x.shape[1])).numpy()


def _run_block(cls, state, num_heads, d_ff, norm_first, x, mask=None):
    module = prepare_module(call(cls, x.shape[-1], num_heads, d_ff, norm_first=norm_first), state,
                            "float64", "EncoderBlock",
                            "use the submodule names self_attn, linear1, linear2, norm1, norm2.")
    result = call(module, x) if mask is None else call(module, x, mask=mask)
    return as_array(result, "EncoderBlock(...)(x)", "torch")


def _expect_layer_norm(norm, d_model: int, what: str, seed: int) -> None:
    """``norm`` behaves as nn.LayerNorm(d_model) with its own weight and bias."""
    generator = torch.Generator().manual_seed(seed)
    weight = 1 + torch.randn(d_model, generator=generator)
    bias = torch.randn(d_model, generator=generator)
    x = 3 * torch.randn(2, 4, d_model, generator=generator)
    call(attribute(norm, "load_state_dict", what), {"weight": weight, "bias": bias})
    output = as_array(call(norm, x), f"{what}(x)", "torch")
    expected = F.layer_norm(x, (d_model,), weight, bias).numpy()
    if not np.allclose(output, expected, atol=1e-4):
        raise CheckFailed(f"{what} should be nn.LayerNorm({d_model}): normalise the "
                          "last axis, then scale by its weight and shift by its bias.")


def _expect_self_attention(attention, d_model: int, num_heads: int, what: str,
                           seed: int) -> None:
    """``attention`` behaves as nn.MultiheadAttention(d_model, num_heads,
    batch_first=True)."""
    generator = torch.Generator().manual_seed(seed)
    block = _block_state(generator, d_model, 1)
    state = {k.removeprefix("self_attn."): v.float() for k, v in block.items()
             if k.startswith("self_attn.")}
    x = torch.randn(3, 5, d_model, generator=generator)
    reference = nn.MultiheadAttention(d_model, num_heads, batch_first=True)
    reference.load_state_dict(state)
    with torch.no_grad():
        expected = reference(x, x, x, need_weights=False)[0].numpy()
    call(attribute(attention, "load_state_dict", what), state)
    result = call(attention, x, x, x, need_weights=False)
    output = result[0] if isinstance(result, tuple) and result else result
    output = as_array(output, f"{what}(x, x, x)[0]", "torch")
    if output.shape != expected.shape or not np.allclose(output, expected, atol=1e-4):
        raise CheckFailed(f"{what} should be nn.MultiheadAttention({d_model}, "
                          f"{num_heads}, batch_first=True): inputs are (B, n, "
                          "d_model).")


def check_encoder_block_structure(EncoderBlock, d_model=8, num_heads=2, d_ff=16):
    """self_attn, linear1, linear2, norm1, norm2 behave as the layers they are named
    after; the block is built by hand, not from nn.TransformerEncoderLayer."""
    cls = bind(EncoderBlock, "EncoderBlock")
    forbid(EncoderBlock, BUILT_INS, "EncoderBlock")
    what = f"EncoderBlock({d_model}, {num_heads}, {d_ff})"
    module = call(cls, d_model, num_heads, d_ff)
    _expect_self_attention(attribute(module, "self_attn", what), d_model, num_heads,
                           f"{what}.self_attn", 1)
    for seed, (name, n_in, n_out) in enumerate((("linear1", d_model, d_ff),
                                                 ("linear2", d_ff, d_model)), start=2):
        part = attribute(module, name, what)
        expect_linear(part, n_in, n_out, f"{what}.{name}", seed)
    for seed, name in enumerate(("norm1", "norm2"), start=4):
        part = attribute(module, name, what)
        _expect_layer_norm(part, d_model, f"{what}.{name}", seed)
    passed("EncoderBlock has the submodules of torch.nn.TransformerEncoderLayer")


RECIPE = {
    False: "Post-LN computes x = norm1(x + self_attn(x)), then x = norm2(x + linear2(relu(linear1(x)))).",
    True: "Pre-LN computes x = x + self_attn(norm1(x)), then x = x + linear2(relu(linear1(norm2(x)))).",
}
TORCH_MASK_POLARITY = ("If you pass the mask to nn.MultiheadAttention: its attn_mask means the "
                       "opposite (True = may NOT attend), so pass ~mask.")


def check_encoder_block_matches_torch(EncoderBlock, norm_first=False, seed=40,
                                      cases=((2, 5, 8, 2, 16), (1, 3, 12, 3, 8))):
    """Equals torch.nn.TransformerEncoderLayer(dropout=0, batch_first=True, norm_first=...)."""
    cls = bind(EncoderBlock, "EncoderBlock")
    generator = torch.Generator().manual_seed(seed)
    layout = "pre-LN (norm_first=True)" if norm_first else "post-LN (norm_first=False)"
    for batch, n, d_model, num_heads, d_ff in cases:
        state = _block_state(generator, d_model, d_ff)
        x = torch.randn(batch, n, d_model, generator=generator, dtype=torch.float64)
        result = _run_block(cls, state, num_heads, d_ff, norm_first, x)
        other = "post-LN: LayerNorm after each residual sum" if norm_first else \
            "pre-LN: LayerNorm before each sublayer"
        expect_close(result, _torch_block(state, num_heads, d_ff, x, None, norm_first),
                     f"EncoderBlock ({layout})", np.float64, {
                         f"this is the {other}; norm_first={norm_first} asks for the other order.":
                             lambda: _block_variant(state, num_heads, x, None, not norm_first),
                         "the residual connections (x + sublayer(x)) are missing.":
                             lambda: _block_variant(state, num_heads, x, None, norm_first, False),
                         **({} if norm_first else {
                             "LayerNorm was applied to the sublayer's output before the residual "
                             "sum, x + norm(sublayer(x)); post-LN normalises the sum: "
                             "norm1(x + self_attn(x)).":
                                 lambda: _block_variant(state, num_heads, x, None, False,
                                                        order="norm_on_sublayer"),
                             "norm1 and norm2 are swapped: norm1 follows self-attention, norm2 the "
                             "feed-forward sublayer.":
                                 lambda: _block_variant(state, num_heads, x, None, False,
                                                        order="norms_swapped"),
                         }),
                     }, context=f" for x of shape {(batch, n, d_model)}, num_heads={num_heads}",
                     values_hint=RECIPE[norm_first])
    passed(f"EncoderBlock matches torch.nn.TransformerEncoderLayer ({layout})")


def _block_outputs(cls, generator, mask, d_model=8, num_heads=2, d_ff=16):
    """A function x -> the learner's block output, for fixed random weights; by default
    on a learner that remembers no earlier call (the sides a property compares must
    not share a memory)."""
    state = _block_state(generator, d_model, d_ff)

    def run(x, fresh=True):
        if fresh:
            fresh_learner(cls)
        return _run_block(cls, state, num_heads, d_ff, False, x, mask)

    return run


def check_encoder_block_permutation_equivariance(EncoderBlock, seed=41, n=6, d_model=8):
    """Without positional encoding or mask, shuffling tokens shuffles the outputs."""
    cls = bind(EncoderBlock, "EncoderBlock")
    generator = torch.Generator().manual_seed(seed)
    run = _block_outputs(cls, generator, None, d_model)
    x = torch.randn(2, n, d_model, generator=generator, dtype=torch.float64)
    order = torch.randperm(n, generator=generator)
    base, shuffled = run(x), run(x[:, order])
    expect_depends_on_input([((x,), base), ((x[:, order],), shuffled)], "EncoderBlock")
    if not np.allclose(shuffled, base[:, order.numpy()]):
        raise CheckFailed("Shuffling the tokens should shuffle the block's outputs the same way: "
                          "nothing in an encoder block depends on position.")
    passed("the encoder block is permutation-equivariant")


def check_encoder_block_causal(EncoderBlock, causal_mask, seed=42, n=6, d_model=8):
    """With causal_mask(n), changing tokens at positions >= t leaves outputs before t unchanged."""
    cls = bind(EncoderBlock, "EncoderBlock")
    mask = call(bind(causal_mask, "causal_mask"), n)
    generator = torch.Generator().manual_seed(seed)
    run = _block_outputs(cls, generator, mask, d_model)
    x = torch.randn(1, n, d_model, generator=generator, dtype=torch.float64)
    base = run(x)
    for t in range(1, n):
        changed = x.clone()
        changed[:, t:] = torch.randn(1, n - t, d_model, generator=generator, dtype=torch.float64)
        after = run(changed, fresh=t == 1)
        if t == 1:
            expect_depends_on_input([((x,), base), ((changed,), after)],
                                    "EncoderBlock with the causal mask")
        if not np.allclose(after[:, :t], base[:, :t]):
            raise CheckFailed(f"With the causal mask, changing tokens {t}..{n - 1} changed outputs "
                              f"before position {t}: the block lets the future leak in. "
                              + TORCH_MASK_POLARITY)
    passed("with a causal mask, the block never looks ahead")


def check_encoder_block_ignores_padding(EncoderBlock, padding_mask, seed=43, lengths=(4, 2), n=6,
                                        d_model=8):
    """With padding_mask, changing padded positions leaves the real tokens' outputs unchanged."""
    cls = bind(EncoderBlock, "EncoderBlock")
    mask = call(bind(padding_mask, "padding_mask"), padded_tokens(lengths, n), PAD)
    generator = torch.Generator().manual_seed(seed)
    run = _block_outputs(cls, generator, mask, d_model)
    x = torch.randn(len(lengths), n, d_model, generator=generator, dtype=torch.float64)
    changed = x.clone()
    for row, length in enumerate(lengths):
        changed[row, length:] = torch.randn(n - length, d_model, generator=generator,
                                            dtype=torch.float64)
    before, after = run(x), run(changed)
    expect_depends_on_input([((x,), before), ((changed,), after)],
                            "EncoderBlock with the padding mask")
    for row, length in enumerate(lengths):
        if not np.allclose(before[row, :length], after[row, :length]):
            raise CheckFailed("Changing the padding tokens changed the outputs of real tokens: "
                              "the padding mask must stop every query from attending to padding. "
                              + TORCH_MASK_POLARITY)
    passed("padding never affects the real tokens")
