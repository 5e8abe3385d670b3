"""Checks for exercise 5: rotary position embedding (RoPE) and one step of a KV cache.

References: RoPE written out in NumPy (float64) in the convention of the course's own
``attention_course.positions.apply_rope`` (half-split: pair i is (x[i], x[i + d/2]),
θ_i = 10000^(-2i/d)), which Chapter 6 teaches and checks against complex
multiplication; ``tests/test_positions.py`` checks that the two agree. For the cache,
``torch.nn.functional.scaled_dot_product_attention(..., is_causal=True)`` over the whole
prefix: what the step must equal, as Chapter 10's cache equals recomputation.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from attention_course.checks.core import (
    CheckFailed, as_array, bind, call, expect_close, expect_depends_on_input, expect_shape,
    fresh_call, passed,
)
from attention_course.checks.ex1 import attention_variant

BASE = 10000.0
PAIRING = ("Pair dimension i with dimension i + d/2 (half-split, as Chapter 6's apply_rope "
           "and Hugging Face's rotate_half): x[i] -> x[i] cos(mθ_i) - x[i + d/2] sin(mθ_i), "
           "x[i + d/2] -> x[i + d/2] cos(mθ_i) + x[i] sin(mθ_i), with θ_i = "
           "10000^(-2i/d).")


def rope(x, positions, base: float = BASE, interleaved: bool = False, direction: float = 1.0,
         exponent: str = "2i/d", symmetric: bool = False) -> np.ndarray:
    """RoPE in float64: rotate pair i of row m by the angle m·θ_i; knobs give mistakes.

    ``interleaved`` pairs (x[2i], x[2i+1]); ``direction=-1`` turns the other way;
    ``exponent`` is "2i/d" (right), "i/d", "none" (θ_i = 1) or "-2i/d" (θ_i grows);
    ``symmetric`` drops the minus sign of rotate_half: (a, b) -> (a c + b s, b c + a s).
    """
    x = np.asarray(x, dtype=np.float64)
    d = x.shape[-1]
    half = d // 2
    pairs = np.arange(half, dtype=np.float64)
    powers = {"2i/d": 2 * pairs / d, "i/d": pairs / d, "none": 0 * pairs,
              "-2i/d": -2 * pairs / d}[exponent]
    theta = base ** -powers
    angles = np.asarray(positions, dtype=np.float64)[:, None] * theta[None, :]
    cos, sin = np.cos(angles), np.sin(angles)
    if interleaved:
        a, b = x[..., 0::2], x[..., 1::2]
    else:
        a, b = x[..., :half], x[..., half:]
    if symmetric:
        first, second = a * cos + b * sin, b * cos + a * sin
    else:
        first = a * cos - direction * b * sin
        second = b * cos + direction * a * sin
    out = np.empty_like(x)
    if interleaved:
        out[..., 0::2], out[..., 1::2] = first, second
    else:
        out[..., :half], out[..., half:] = first, second
    return out


def _float32_angles(x: torch.Tensor, positions: torch.Tensor) -> np.ndarray:
    """What a float64 x gets when the angles are built in float32 (as the course's own
    code does, for its float32 models)."""
    from attention_course.positions import apply_rope

    return apply_rope(x, positions).numpy()


def _rope_result(fn, x, positions, what: str) -> np.ndarray:
    result = as_array(call(fn, x, positions), what, "torch")
    expect_shape(result, tuple(x.shape), what, "apply_rope keeps the shape of x.")
    dtype = str(x.dtype).removeprefix("torch.")
    if str(result.dtype) != dtype:
        raise CheckFailed(f"{what} returned {result.dtype} for a {dtype} x: keep x's dtype "
                          "(build the angles with dtype=x.dtype).")
    return result


def _rope_mistakes(x: torch.Tensor, positions: torch.Tensor) -> dict:
    def wrong(**knobs):
        return lambda: rope(x.numpy(), positions.numpy(), **knobs)

    n = x.shape[-2]
    mistakes = {
        "you paired neighbouring dimensions (x[2i], x[2i+1]), the interleaved convention "
        "of the RoFormer paper and Meta's Llama code; this exercise, like Chapter 6's "
        "apply_rope, pairs x[i] with x[i + d/2] (half-split).": wrong(interleaved=True),
        "each pair was rotated the wrong way (by -mθ_i): the first half gets "
        "x1 cos - x2 sin, the second x2 cos + x1 sin (rotate_half(x) is (-x2, x1)).":
            wrong(direction=-1.0),
        "the minus sign is missing: (x1, x2) became (x1 cos + x2 sin, x2 cos + x1 sin), "
        "which is not a rotation. rotate_half(x) is (-x2, x1).": wrong(symmetric=True),
        "every pair was rotated by the same angle m: pair i turns at its own speed "
        "θ_i = 10000^(-2i/d), so multiply the position by these frequencies.":
            wrong(exponent="none"),
        "the exponent uses i/d; θ_i = 10000^(-2i/d), where i counts pairs "
        "(torch.arange(0, d, 2) / d).": wrong(exponent="i/d"),
        "the frequencies grow with i (10000^(+2i/d)); θ_i = 10000^(-2i/d) shrinks from "
        "1 for the first pair to about 1/10000 for the last.": wrong(exponent="-2i/d"),
        "the positions are off by one: row m is rotated by m·θ_i with the position given "
        "(the first one is usually 0, which leaves the vector unchanged).":
            lambda: rope(x.numpy(), positions.numpy() + 1),
    }
    if not torch.equal(positions, torch.arange(n)):
        mistakes["the positions argument was ignored: rows were rotated as if at positions "
                 "0, 1, 2, …; use the positions you are given (a cached token is not at "
                 "position 0)."] = lambda: rope(x.numpy(), np.arange(n))
    if x.dtype == torch.float64:
        mistakes["the angles were computed in float32, too coarse for a float64 x: build "
                 "the frequencies and angles with dtype=x.dtype."] = \
            lambda: _float32_angles(x, positions)
    return mistakes


def check_rope_values(apply_rope, seed=70, cases=(((2, 4, 8), "float32", (0, 1, 2, 3)),
                                                   ((3, 5, 6), "float64", (7, 3, 20, 21, 40)))):
    """Equals RoPE (half-split, θ_i = 10000^(-2i/d)) at the positions given."""
    fn = bind(apply_rope, "apply_rope")
    generator = torch.Generator().manual_seed(seed)
    for shape, dtype, where in cases:
        x = torch.randn(*shape, generator=generator, dtype=getattr(torch, dtype))
        positions = torch.tensor(where)
        what = f"apply_rope(x of shape {shape} {dtype}, positions={list(where)})"
        result = _rope_result(fn, x, positions, what)
        expect_close(result, rope(x.numpy(), positions.numpy()), what, np.dtype(dtype),
                     _rope_mistakes(x, positions), values_hint=PAIRING)
    passed("apply_rope rotates each half-split pair by position × θ_i")


def check_rope_shapes(apply_rope, seed=71, cases=(((4, 8), "float32"),
                                                  ((2, 3, 5, 6), "float64"))):
    """Keeps the shape and dtype of x for any leading dimensions; position 0 leaves a vector
    unchanged; a rotation keeps every vector's length."""
    fn = bind(apply_rope, "apply_rope")
    generator = torch.Generator().manual_seed(seed)
    for shape, dtype in cases:
        x = torch.randn(*shape, generator=generator, dtype=getattr(torch, dtype))
        positions = torch.arange(shape[-2])
        what = f"apply_rope(x of shape {shape} {dtype}, positions=torch.arange({shape[-2]}))"
        result = _rope_result(fn, x, positions, what).astype(np.float64)
        first = x.numpy()[..., 0, :].astype(np.float64)
        if shape[-2] > 1 and np.allclose(result, x.numpy().astype(np.float64)):
            raise CheckFailed(f"{what} returns its input unchanged: rotate row m by the "
                              "angles m·θ_i (only position 0 stays as it is).")
        if not np.allclose(result[..., 0, :], first, rtol=1e-4, atol=1e-5):
            raise CheckFailed(f"{what}: the row at position 0 changed. Its angles are all 0, "
                              "so cos = 1, sin = 0 and the vector must stay as it is.")
        lengths = np.linalg.norm(x.numpy().astype(np.float64), axis=-1)
        if not np.allclose(np.linalg.norm(result, axis=-1), lengths, rtol=1e-4):
            raise CheckFailed(f"{what}: the vectors' lengths changed. A rotation keeps each "
                              "pair's length: (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin).")
    passed("apply_rope keeps shape, dtype and lengths for any leading dimensions")


def check_rope_relative_offset(apply_rope, seed=72, n=10, d=8, shifts=(0, 29)):
    """A property: after rotating q at position m and k at position j, q·k depends only on
    the offset m - j, not on where the pair sits."""
    fn = bind(apply_rope, "apply_rope")
    generator = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, d, generator=generator, dtype=torch.float64)
    rows_q, rows_k = q.expand(n, d).clone(), k.expand(n, d).clone()
    scores = []
    for shift in shifts:
        positions = shift + torch.arange(n)
        what = f"apply_rope(x of shape ({n}, {d}) float64, positions={shift}..{shift + n - 1})"
        rotated_q = as_array(fresh_call(fn, rows_q, positions), what, "torch")
        rotated_k = as_array(fresh_call(fn, rows_k, positions), what, "torch")
        expect_shape(rotated_q, (n, d), what)
        expect_shape(rotated_k, (n, d), what)
        if shift == shifts[0]:
            expect_depends_on_input([((rows_q,), rotated_q), ((rows_k,), rotated_k)],
                                    "apply_rope")
        scores.append(rotated_q.astype(np.float64) @ rotated_k.astype(np.float64).T)
    tolerance = {"rtol": 1e-4, "atol": 1e-5}
    for shift, table in zip(shifts, scores):
        for offset in range(-(n - 2), n - 1):
            diagonal = np.diagonal(table, offset=-offset)
            if not np.allclose(diagonal, diagonal[0], **tolerance):
                m, j = (offset, 0) if offset >= 0 else (0, -offset)
                raise CheckFailed(
                    f"q·k after rotation should depend only on the offset m - j, but q at "
                    f"position {shift + m} and k at {shift + j} score "
                    f"{diagonal[0]:.4f}, while one step later they score {diagonal[1]:.4f}. "
                    "Turn each pair by a rotation (x1 cos - x2 sin, x2 cos + x1 sin) of angle "
                    "m·θ_i, the same for queries and keys.")
    if not np.allclose(scores[0], scores[-1], **tolerance):
        raise CheckFailed(f"q·k changed when both positions moved by {shifts[-1] - shifts[0]}: "
                          "it should depend only on their offset. Use the positions given.")
    by_offset = [np.diagonal(scores[0], offset=-o)[0] for o in range(-(n - 1), n)]
    if np.ptp(by_offset) < 1e-6:
        raise CheckFailed("q·k is the same at every offset: apply_rope must rotate row m by "
                          "m·θ_i, so that the score changes with the distance between q and k.")
    passed("after apply_rope, q·k depends only on the offset between q and k")


# ---------------------------------------------------------------------------
# One step of attention with a KV cache
# ---------------------------------------------------------------------------


def _sequence(seed, batch_shape, steps, d, d_v, dtype):
    generator = torch.Generator().manual_seed(seed)
    kind = getattr(torch, dtype)
    q = torch.randn(*batch_shape, steps, d, generator=generator, dtype=kind)
    k = torch.randn(*batch_shape, steps, d, generator=generator, dtype=kind)
    v = torch.randn(*batch_shape, steps, d_v, generator=generator, dtype=kind)
    return q, k, v


def _empty(batch_shape, d, dtype) -> torch.Tensor:
    return torch.zeros(*batch_shape, 0, d, dtype=getattr(torch, dtype))


def _attend(q, keys, values, scale: float = None) -> np.ndarray:
    """One step's output as a mistake computes it (float64): exercise 1's variants."""
    return attention_variant(q, keys, values, scale=scale) @ np.asarray(values, np.float64)


def _step_mistakes(q, k, v, t) -> dict:
    q_t, keys, values = q[..., t:t + 1, :].numpy(), k[..., :t + 1, :].numpy(), v[..., :t + 1, :]
    values = values.numpy()
    d = q.shape[-1]
    mistakes = {
        "the scores were not scaled: divide q·k by √d (d = the last dimension of q).":
            lambda: _attend(q_t, keys, values, scale=1.0),
        "the scores were divided by d instead of √d.":
            lambda: _attend(q_t, keys, values, scale=float(d)),
        "the query attended only to the new token: it must attend over every cached "
        "position and its own (append the new key and value to the cache first).":
            lambda: values[..., t:t + 1, :],
        "the softmax was taken over the query axis (with one query every weight is 1); "
        "take it over the keys (dim=-1).":
            lambda: values.sum(axis=-2, keepdims=True),
        "a causal mask built for a square matrix (tril of a 1 × (t+1) matrix) hid the "
        "cached keys: the new token is the latest, so it may see every cached position. "
        "No mask is needed.": lambda: values[..., :1, :],
    }
    own_key_missing = ("the query attended to the cached keys but not to its own key: append "
                       "the new key and value before attending (at step 0 the cache is empty).")
    if t:
        mistakes[own_key_missing] = lambda: _attend(q_t, keys[..., :t, :], values[..., :t, :])
    else:  # the softmax of no scores at all, times an empty cache
        mistakes[own_key_missing] = lambda: np.zeros_like(values)
    return mistakes


def _unpack_step(result):
    if not isinstance(result, tuple) or len(result) != 3:
        raise CheckFailed("kv_cache_step should return a tuple (output, k_cache, v_cache): "
                          "the new token's output and the grown caches.")
    return result


def _expect_grown(cache, old_length: int, batch_shape, width: int, name: str, t: int):
    array = as_array(cache, f"the {name} returned at step {t}", "torch")
    expected = (*batch_shape, old_length + 1, width)
    if array.shape[:-2] == tuple(batch_shape) and array.shape[-1:] == (width,) \
            and array.shape[-2] != old_length + 1:
        length = array.shape[-2]
        raise CheckFailed(
            f"at step {t} the {name} came back with {length} position(s), expected "
            f"{old_length + 1}: append the new one to the cache it was given "
            "(torch.cat((cache, new), dim=-2)) and return the grown cache"
            + (", not just the new one." if length == 1 and old_length else "."))
    expect_shape(array, expected, f"the {name} returned at step {t}",
                 "Caches are (..., positions, d): concatenate along the positions axis, "
                 "dim=-2.")
    return array


def check_kv_cache_grows(kv_cache_step, seed=81, batch_shape=(2, 3), steps=4, d=6, d_v=6,
                         dtype="float32"):
    """Starting from an empty cache, each step returns the old cache with the new key (and
    value) appended as its last position."""
    fn = bind(kv_cache_step, "kv_cache_step")
    q, k, v = _sequence(seed, batch_shape, steps, d, d_v, dtype)
    k_cache, v_cache = _empty(batch_shape, d, dtype), _empty(batch_shape, d_v, dtype)
    for t in range(steps):
        new = (q[..., t:t + 1, :], k[..., t:t + 1, :], v[..., t:t + 1, :])
        _, k_cache, v_cache = _unpack_step(call(fn, *new, k_cache, v_cache))
        expected_k, expected_v = k[..., :t + 1, :].numpy(), v[..., :t + 1, :].numpy()
        if d == d_v and np.array_equal(as_array(k_cache, "k_cache", "torch"), expected_v):
            raise CheckFailed("the caches came back swapped: return (output, k_cache, "
                              "v_cache), keys first.")
        got_k = _expect_grown(k_cache, t, batch_shape, d, "k_cache", t)
        got_v = _expect_grown(v_cache, t, batch_shape, d_v, "v_cache", t)
        for got, expected, name in ((got_k, expected_k, "k_cache"),
                                    (got_v, expected_v, "v_cache")):
            if np.array_equal(got, np.concatenate((expected[..., t:, :], expected[..., :t, :]),
                                                  axis=-2)) and t:
                raise CheckFailed(f"at step {t} the new entry went to the front of the {name}: "
                                  "append it at the end, so that row j of the cache is "
                                  "position j.")
            if not np.array_equal(got, expected):
                raise CheckFailed(f"at step {t} the {name} is not the old cache with the new "
                                  "entry appended: return torch.cat((cache, new), dim=-2), "
                                  "the values unchanged.")
    passed(f"the cache grows by one position per step ({steps} steps)")


def check_kv_cache_matches_recomputation(kv_cache_step, seed=80, batch_shape=(2, 3), steps=5,
                                         d=8, d_v=8, dtype="float64"):
    """Step by step from an empty cache, each new token's output equals causal attention
    recomputed over the whole prefix (torch's scaled_dot_product_attention, is_causal)."""
    fn = bind(kv_cache_step, "kv_cache_step")
    q, k, v = _sequence(seed, batch_shape, steps, d, d_v, dtype)
    with torch.no_grad():
        recomputed = F.scaled_dot_product_attention(q, k, v, is_causal=True).numpy()
    k_cache, v_cache = _empty(batch_shape, d, dtype), _empty(batch_shape, d_v, dtype)
    for t in range(steps):
        new = (q[..., t:t + 1, :], k[..., t:t + 1, :], v[..., t:t + 1, :])
        output, k_cache, v_cache = _unpack_step(call(fn, *new, k_cache, v_cache))
        what = f"kv_cache_step's output at step {t}"
        result = as_array(output, what, "torch")
        if str(result.dtype) != dtype:
            raise CheckFailed(f"{what} is {result.dtype} for {dtype} inputs: keep their dtype.")
        expect_close(result, recomputed[..., t:t + 1, :], what, np.dtype(dtype),
                     _step_mistakes(q, k, v, t),
                     context=f" (q of shape {tuple(new[0].shape)}, a cache of {t} position(s))",
                     shape_hint="The output is (..., 1, d_v): one row, for the new token.",
                     values_hint="Append k and v to the caches, then softmax(q kᵀ / √d) v over "
                                 "all of them.")
        _expect_grown(k_cache, t, batch_shape, d, "k_cache", t)
        _expect_grown(v_cache, t, batch_shape, d_v, "v_cache", t)
    passed(f"{steps} cached steps equal recomputing causal attention over the whole prefix")
