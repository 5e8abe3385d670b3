"""Checks for exercise 2: split_heads, merge_heads and MultiHeadAttention (PyTorch).

The reference for MultiHeadAttention is ``torch.nn.MultiheadAttention(batch_first=True)``
with the same weights copied in; split/merge are checked against explicit slicing.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from attention_course.checks.core import (
    CheckFailed, as_array, attribute, bind, call, expect_close, expect_depends_on_input,
    expect_raises, forbid, fresh_learner, passed, prepare_module,
)
from attention_course.checks.ex1 import (
    attention_variant, attention_misconceptions, compare_attention, unpack_output_and_weights,
)

PROJECTIONS = ("w_q", "w_k", "w_v", "w_o")
# The notebook says: do not use these here, the tests compare your module with them.
BUILT_INS = {
    "torch.nn.MultiheadAttention":
        "this exercise asks you to write multi-head attention yourself (the tests "
        "compare your module with it).",
    "torch.nn.functional.scaled_dot_product_attention":
        "this exercise asks you to write the attention in each head yourself.",
}


def _split(x: np.ndarray, num_heads: int) -> np.ndarray:
    """(B, n, d_model) -> (B, h, n, d_head) by slicing: head i = features i*d_head:(i+1)*d_head."""
    d_head = x.shape[-1] // num_heads
    return np.stack([x[..., i * d_head:(i + 1) * d_head] for i in range(num_heads)], axis=1)


def _merge(heads: np.ndarray) -> np.ndarray:
    return np.concatenate([heads[:, i] for i in range(heads.shape[1])], axis=-1)


def _random(generator: torch.Generator, *shape, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=generator, dtype=torch.float64) * scale


def check_split_heads(split_heads, seed=20, cases=((2, 5, 12, 3), (1, 3, 8, 8), (3, 1, 6, 1))):
    """(B, n, d_model) -> (B, num_heads, n, d_head), head i holding features i*d_head:(i+1)*d_head."""
    fn = bind(split_heads, "split_heads")
    generator = torch.Generator().manual_seed(seed)
    for batch, n, d_model, num_heads in cases:
        x = _random(generator, batch, n, d_model).float()
        d_head = d_model // num_heads
        result = as_array(call(fn, x, num_heads), "split_heads(x, num_heads)", "torch")
        xs = x.numpy()
        expect_close(
            result, _split(xs, num_heads), "split_heads(x, num_heads)", np.float32,
            {"it reshapes straight to (B, num_heads, n, d_head) without the transpose, which "
             "mixes tokens into heads: view as (B, n, num_heads, d_head), then .transpose(1, 2).":
                 lambda: xs.reshape(batch, num_heads, n, d_head),
             "head i must hold the contiguous features i*d_head:(i+1)*d_head, not every "
             "num_heads-th feature.":
                 lambda: xs.reshape(batch, n, d_head, num_heads).transpose(0, 3, 1, 2)},
            context=f" for x of shape {(batch, n, d_model)} and num_heads={num_heads}",
            shape_hint="After .view(B, n, num_heads, d_head), move the head axis forward with "
                       ".transpose(1, 2)." if result.shape == (batch, n, num_heads, d_head) else "")
    passed("split_heads puts feature block i into head i")


def check_merge_heads(merge_heads, seed=21, cases=((2, 3, 5, 4), (1, 8, 2, 1))):
    """(B, num_heads, n, d_head) -> (B, n, num_heads * d_head), the inverse of split_heads."""
    fn = bind(merge_heads, "merge_heads")
    generator = torch.Generator().manual_seed(seed)
    for batch, num_heads, n, d_head in cases:
        heads = _random(generator, batch, num_heads, n, d_head).float()
        hs = heads.numpy()
        result = as_array(call(fn, heads), "merge_heads(x)", "torch")
        expect_close(
            result, _merge(hs), "merge_heads(x)", np.float32,
            {"it reshapes straight to (B, n, d_model) without first transposing the heads back "
             "next to their tokens: .transpose(1, 2) then .reshape(B, n, d_model).":
                 lambda: hs.reshape(batch, n, num_heads * d_head)},
            context=f" for x of shape {(batch, num_heads, n, d_head)}")
    passed("merge_heads undoes split_heads")


def expect_linear(layer, n_in: int, n_out: int, what: str, seed: int = 0) -> None:
    """``layer`` behaves as nn.Linear(n_in, n_out) with bias: it takes weights of those
    shapes and computes x Wᵀ + b with them. Judged by behaviour, not by the class
    name the learner's process reports, which it could forge."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(n_out, n_in, generator=generator)
    bias = torch.randn(n_out, generator=generator)
    x = torch.randn(2, 3, n_in, generator=generator)
    hint = f"use nn.Linear({n_in}, {n_out}) (with its default bias)."
    if attribute(layer, "bias", what) is None:
        raise CheckFailed(f"{what} has no bias: {hint}")
    weight_now = as_array(attribute(layer, "weight", what), f"{what}.weight", "torch")
    shape = tuple(weight_now.shape)
    if shape != (n_out, n_in):
        raise CheckFailed(f"{what}.weight has shape {shape}, expected {(n_out, n_in)}: "
                          f"{hint}")
    call(attribute(layer, "load_state_dict", what), {"weight": weight, "bias": bias})
    output = as_array(call(layer, x), f"{what}(x)", "torch")
    if not np.allclose(output, (x @ weight.T + bias).numpy(), atol=1e-5):
        raise CheckFailed(f"{what} does not compute x Wᵀ + b with its own weight and "
                          f"bias: {hint}")


def check_mha_structure(MultiHeadAttention, d_model=12, num_heads=3, bad=((10, 3), (6, 4))):
    """w_q, w_k, w_v, w_o behave as nn.Linear(d_model, d_model) with bias; bad sizes
    raise ValueError; the module is written by hand (no nn.MultiheadAttention, no
    F.sdpa)."""
    cls = bind(MultiHeadAttention, "MultiHeadAttention")
    forbid(MultiHeadAttention, BUILT_INS, "MultiHeadAttention")
    for bad_d_model, bad_heads in bad:
        expect_raises(cls, "ValueError", f"MultiHeadAttention({bad_d_model}, {bad_heads}) "
                      "(d_model not divisible by num_heads)", bad_d_model, bad_heads)
    what = f"MultiHeadAttention({d_model}, {num_heads})"
    module = call(cls, d_model, num_heads)
    for index, name in enumerate(PROJECTIONS):
        expect_linear(attribute(module, name, what), d_model, d_model, f"{what}.{name}",
                      index)
    passed("MultiHeadAttention has w_q, w_k, w_v, w_o and checks its sizes")


def _mha_weights(generator: torch.Generator, d_model: int) -> dict:
    scale = d_model ** -0.5
    return {f"{name}.{part}": _random(generator, *((d_model, d_model) if part == "weight"
                                                    else (d_model,)), scale=scale)
            for name in PROJECTIONS for part in ("weight", "bias")}


def _torch_reference(state: dict, num_heads: int, query, key, value, mask):
    """Output and per-head weights of torch.nn.MultiheadAttention with the same weights."""
    d_model = query.shape[-1]
    reference = nn.MultiheadAttention(d_model, num_heads, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        reference.in_proj_weight.copy_(torch.cat([state[f"{p}.weight"] for p in PROJECTIONS[:3]]))
        reference.in_proj_bias.copy_(torch.cat([state[f"{p}.bias"] for p in PROJECTIONS[:3]]))
        reference.out_proj.weight.copy_(state["w_o.weight"])
        reference.out_proj.bias.copy_(state["w_o.bias"])
    attn_mask = None
    if mask is not None:
        batch, n_q, n_k = query.shape[0], query.shape[1], key.shape[1]
        full = torch.broadcast_to(mask, (batch, num_heads, n_q, n_k))
        attn_mask = ~full.reshape(batch * num_heads, n_q, n_k)  # torch: True = may NOT attend
    with torch.no_grad():
        output, weights = reference(query, key, value, attn_mask=attn_mask, need_weights=True,
                                    average_attn_weights=False)
    return output.numpy(), weights.numpy()


def _mha_misconceptions(state, num_heads, query, key, value, mask):
    """(weight misconceptions, output misconceptions) for multi-head attention."""
    def project(x, name):
        return x.numpy() @ state[f"{name}.weight"].numpy().T + state[f"{name}.bias"].numpy()

    q, k, v = project(query, "w_q"), project(key, "w_k"), project(value, "w_v")
    heads = [_split(a, num_heads) for a in (q, k, v)]
    mask4 = None if mask is None else mask.numpy()
    d_model = query.shape[-1]
    weights = attention_misconceptions(*heads, mask4, d_model=d_model)

    def no_transpose(a):
        return a.reshape(a.shape[0], num_heads, a.shape[1], -1)

    weights["split_heads reshaped without the transpose, so each head mixed several tokens: "
            "view as (B, n, num_heads, d_head), then .transpose(1, 2)."] = (
        lambda: attention_variant(*(no_transpose(a) for a in (q, k, v)), mask4))
    correct = attention_variant(*heads, mask4)
    outputs = {"the output projection w_o is missing: return self.w_o(merged heads).":
               lambda: _merge(correct @ heads[2])}
    return weights, outputs


def _run_mha(cls, state, num_heads, dtype, query, key, value, mask):
    d_model = query.shape[-1]
    module = prepare_module(call(cls, d_model, num_heads), state, dtype, "MultiHeadAttention",
                            "name the projections w_q, w_k, w_v, w_o (each nn.Linear(d_model, "
                            "d_model)).")
    cast = lambda t: None if t is None else t.to(getattr(torch, dtype))  # noqa: E731
    arguments = (cast(query), cast(key), cast(value))
    result = call(module, *arguments) if mask is None else call(module, *arguments, mask=mask)
    return unpack_output_and_weights(result, "MultiHeadAttention.forward", "torch")


def _check_mha_case(cls, generator, batch, n_q, n_k, d_model, num_heads, dtype, mask=None,
                    context=""):
    state = _mha_weights(generator, d_model)
    query = _random(generator, batch, n_q, d_model)
    key = _random(generator, batch, n_k, d_model)
    value = _random(generator, batch, n_k, d_model)
    output, weights = _run_mha(cls, state, num_heads, dtype, query, key, value, mask)
    expected_output, expected_weights = _torch_reference(state, num_heads, query, key, value, mask)
    weight_mistakes, output_mistakes = _mha_misconceptions(state, num_heads, query, key, value, mask)
    compare_attention(output, weights, expected_output, expected_weights, dtype,
                      context or f" for B={batch}, n_q={n_q}, n_k={n_k}, d_model={d_model}, "
                                 f"num_heads={num_heads} ({dtype})",
                      weight_mistakes, output_mistakes)


def check_mha_matches_torch(MultiHeadAttention, seed=30,
                            cases=((2, 4, 6, 12, 3), (1, 5, 5, 8, 2), (2, 3, 2, 8, 1))):
    """Self- and cross-attention equal torch.nn.MultiheadAttention with the same weights."""
    cls = bind(MultiHeadAttention, "MultiHeadAttention")
    generator = torch.Generator().manual_seed(seed)
    for case in cases:
        for dtype in ("float32", "float64"):
            _check_mha_case(cls, generator, *case, dtype)
    passed("MultiHeadAttention matches torch.nn.MultiheadAttention (output and per-head weights)")


def check_mha_mask(MultiHeadAttention, seed=31, batch=2, n_q=4, n_k=5, d_model=8, num_heads=2):
    """A boolean mask (True = may attend) of shape (n_q, n_k) or (B, 1, 1, n_k)."""
    cls = bind(MultiHeadAttention, "MultiHeadAttention")
    generator = torch.Generator().manual_seed(seed)
    pairs = torch.rand(n_q, n_k, generator=generator) < 0.6
    pairs[:, 0] = True
    padding = torch.ones(batch, 1, 1, n_k, dtype=torch.bool)
    padding[0, ..., -2:] = False
    for mask in (pairs, padding):
        _check_mha_case(cls, generator, batch, n_q, n_k, d_model, num_heads, "float32", mask,
                        f" with a mask of shape {tuple(mask.shape)}")
    passed("MultiHeadAttention applies boolean masks of any broadcastable shape")


def _self_attention_output(cls, state, num_heads, x, mask=None, fresh=True):
    """One call of a property test, by default on a learner that remembers no earlier
    call (the sides a property compares must not share a memory)."""
    if fresh:
        fresh_learner(cls)
    return _run_mha(cls, state, num_heads, "float64", x, x, x, mask)[0]


def check_mha_permutation_equivariance(MultiHeadAttention, seed=32, n=6, d_model=8, num_heads=2):
    """Self-attention without a mask: permuting the tokens permutes the outputs."""
    cls = bind(MultiHeadAttention, "MultiHeadAttention")
    generator = torch.Generator().manual_seed(seed)
    state = _mha_weights(generator, d_model)
    x = _random(generator, 2, n, d_model)
    order = torch.randperm(n, generator=generator)
    base = _self_attention_output(cls, state, num_heads, x)
    shuffled = _self_attention_output(cls, state, num_heads, x[:, order])
    expect_depends_on_input([((x,), base), ((x[:, order],), shuffled)],
                            "MultiHeadAttention")
    if not np.allclose(shuffled, base[:, order.numpy()]):
        raise CheckFailed("Shuffling the tokens should shuffle the outputs in the same way "
                          "(self-attention without a mask is permutation-equivariant). Check "
                          "split_heads/merge_heads: do the heads mix up tokens?")
    passed("multi-head self-attention is permutation-equivariant")


def check_mha_causal(MultiHeadAttention, seed=33, n=6, d_model=8, num_heads=4):
    """With a causal mask, changing tokens at positions >= t leaves outputs before t unchanged."""
    cls = bind(MultiHeadAttention, "MultiHeadAttention")
    generator = torch.Generator().manual_seed(seed)
    state = _mha_weights(generator, d_model)
    mask = torch.tril(torch.ones(n, n, dtype=torch.bool))
    x = _random(generator, 1, n, d_model)
    base = _self_attention_output(cls, state, num_heads, x, mask)
    for t in range(1, n):
        changed = x.clone()
        changed[:, t:] = _random(generator, 1, n - t, d_model)
        after = _self_attention_output(cls, state, num_heads, changed, mask,
                                       fresh=t == 1)
        if t == 1:
            expect_depends_on_input([((x,), base), ((changed,), after)],
                                    "MultiHeadAttention with a causal mask")
        if not np.allclose(after[:, :t], base[:, :t]):
            raise CheckFailed(f"With a causal mask, changing tokens {t}..{n - 1} changed the "
                              f"outputs before position {t}: information leaks from the future. "
                              "Check how the mask is applied (True = may attend).")
    passed("with a causal mask, no output sees the future")
