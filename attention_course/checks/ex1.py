"""Checks for exercise 1: softmax, scaled dot-product attention and the causal mask (NumPy).

References come from torch's own functions (``torch.softmax``,
``torch.nn.functional.scaled_dot_product_attention``), computed in float64. Exercise 1
needs only NumPy: where torch is not installed, the same references are computed with
NumPy in float64 (tests/test_student_notebooks.py runs ex1 with torch unimportable).
"""
from __future__ import annotations

import math

import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # exercise 1 is NumPy-only: the references fall back to NumPy
    torch = F = None

from attention_course.checks.core import (
    CheckFailed, as_array, bind, call, expect_close, expect_depends_on_input,
    expect_raises, expect_shape, fresh_call, passed,
)

ATTENTION_NAN_HINT = ("nan usually means a row of scores was all -inf (every key masked: check "
                      "the mask polarity, True = may attend) or that exp overflowed.")
OVERFLOW_HINT = ("np.exp overflowed: subtract the maximum along `axis` (keepdims=True) before "
                 "calling np.exp. Softmax does not change when every input is shifted by the "
                 "same amount, and then the largest exponent is exp(0) = 1.")


REFERENCE = "torch.softmax" if torch is not None else "a float64 reference"


def _torch_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if torch is not None:
        return torch.softmax(torch.from_numpy(x), dim=axis).numpy()
    with np.errstate(invalid="ignore", over="ignore"):
        shifted = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return shifted / shifted.sum(axis=axis, keepdims=True)


def _softmax_misconceptions(x: np.ndarray, axis: int) -> dict:
    x64 = np.asarray(x, dtype=np.float64)
    wrong_axes = [a for a in range(x.ndim) if a != axis % x.ndim]
    found = {
        f"it is normalised along axis {a} instead of axis {axis}: softmax must make the "
        f"values along `axis` sum to 1 (np.sum(..., axis=axis, keepdims=True)).":
            (lambda a=a: _torch_softmax(x64, a))
        for a in wrong_axes
    }
    found["np.exp(x) was not divided by its sum along `axis`."] = lambda: np.exp(x64)
    found["the sum was taken over the whole array; sum along `axis` with keepdims=True."] = (
        lambda: np.exp(x64) / np.exp(x64).sum())
    return found


def _check_softmax_value(fn, x, axis, temperature, context):
    kwargs = {} if temperature is None else {"temperature": temperature}
    if axis is not None:
        kwargs["axis"] = axis
    axis = -1 if axis is None else axis
    scaled = x.astype(np.float64) / (temperature or 1.0)
    result = as_array(call(fn, x, **kwargs), "softmax(x)")
    misconceptions = _softmax_misconceptions(scaled, axis)
    if temperature is not None:
        misconceptions = {
            "x was multiplied by the temperature; divide by it (x / temperature).":
                lambda: _torch_softmax(x.astype(np.float64) * temperature, axis),
            "the temperature was ignored; use the softmax of x / temperature.":
                lambda: _torch_softmax(x.astype(np.float64), axis),
            **misconceptions,
        }
    expect_close(result, _torch_softmax(scaled, axis), "softmax(x)", x.dtype, misconceptions,
                 nonfinite_hint=OVERFLOW_HINT, context=context)


def check_softmax_matches_torch(softmax, seed=0, shapes=((4, 6), (2, 3, 5)),
                                dtypes=("float64", "float32")):
    """softmax(x) along the last axis equals torch.softmax on random inputs."""
    fn = bind(softmax, "softmax")
    rng = np.random.default_rng(seed)
    for shape in shapes:
        for dtype in dtypes:
            x = (3 * rng.standard_normal(shape)).astype(dtype)
            _check_softmax_value(fn, x, None, None, f" for x of shape {shape} ({dtype})")
    passed(f"softmax matches {REFERENCE} on {len(shapes) * len(dtypes)} random inputs")


def check_softmax_axis(softmax, seed=1, shape=(3, 4, 5)):
    """softmax(x, axis=a) normalises along axis a, for every axis of a 3-d input."""
    fn = bind(softmax, "softmax")
    x = np.random.default_rng(seed).standard_normal(shape)
    for axis in list(range(len(shape))) + [-2]:
        _check_softmax_value(fn, x, axis, None, f" with axis={axis}")
    passed("softmax normalises along the axis it is given")


def check_softmax_is_stable(softmax, seed=2, shift=1000.0):
    """Large and very negative inputs give finite, correct weights (no overflow)."""
    fn = bind(softmax, "softmax")
    rng = np.random.default_rng(seed)
    for dtype in ("float64", "float32"):
        for sign in (1, -1):
            x = (rng.standard_normal((3, 6)) + sign * shift).astype(dtype)
            _check_softmax_value(fn, x, None, None, f" for inputs near {sign * shift:g} ({dtype})")
    passed("softmax is numerically stable for inputs far from 0")


def check_softmax_temperature(softmax, seed=3, temperatures=(0.5, 2.0, 10.0)):
    """softmax(x, temperature=T) is the softmax of x / T; T <= 0 raises ValueError."""
    fn = bind(softmax, "softmax")
    x = 2 * np.random.default_rng(seed).standard_normal((4, 7))
    for temperature in temperatures:
        _check_softmax_value(fn, x, None, temperature, f" with temperature={temperature}")
    for bad in (0.0, -1.0):
        expect_raises(fn, "ValueError", f"softmax(x, temperature={bad})", x, temperature=bad)
    passed("temperature divides the inputs; non-positive temperatures raise ValueError")


def check_softmax_negative_infinity(softmax, seed=4, shape=(4, 6)):
    """Entries equal to -inf get weight exactly 0; the rest still sum to 1."""
    fn = bind(softmax, "softmax")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    blocked = rng.random(shape) < 0.4
    blocked[:, 0] = False  # keep at least one finite entry per row
    x[blocked] = -np.inf
    result = as_array(call(fn, x), "softmax(x)")
    expect_close(result, _torch_softmax(x, -1), "softmax(x)",
                 nonfinite_hint="Entries equal to -inf must get weight 0: check that you never "
                                "compute -inf - (-inf) or divide 0 by 0.",
                 context=" for an input containing -inf")
    if np.any(result[blocked] != 0):
        raise CheckFailed("softmax(x): entries equal to -inf must get weight exactly 0.")
    passed("-inf entries get weight 0")


def _reference_attention(Q, K, V, mask=None):
    """(output, weights) from torch: output from F.scaled_dot_product_attention."""
    if torch is None:
        weights = attention_variant(Q, K, V, mask)
        return weights @ np.asarray(V, dtype=np.float64), weights
    q, k, v = (torch.from_numpy(np.asarray(a, dtype=np.float64)) for a in (Q, K, V))
    torch_mask = None if mask is None else torch.from_numpy(np.asarray(mask, dtype=bool))
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if torch_mask is not None:
        scores = scores.masked_fill(~torch_mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    output = F.scaled_dot_product_attention(q, k, v, attn_mask=torch_mask)
    return output.numpy(), weights.numpy()


def attention_variant(Q, K, V, mask=None, scale=None, axis=-1, mask_mode="fill"):
    """The weights a common mistake produces (NumPy, float64)."""
    Q, K, V = (np.asarray(a, dtype=np.float64) for a in (Q, K, V))
    scale = math.sqrt(Q.shape[-1]) if scale is None else scale
    scores = Q @ np.swapaxes(K, -1, -2) / scale
    if mask is not None and mask_mode == "fill":
        scores = np.where(mask, scores, -np.inf)
    elif mask is not None and mask_mode == "inverted":
        scores = np.where(mask, -np.inf, scores)
    elif mask is not None and mask_mode == "zero":
        scores = np.where(mask, scores, 0.0)
    weights = _torch_softmax(scores, axis)
    if mask is not None and mask_mode == "after":
        weights = weights * mask
    return weights


def attention_misconceptions(Q, K, V, mask=None, d_model=None) -> dict:
    """Messages for wrong attention weights, each with the weights that mistake gives.

    ``d_model`` (multi-head attention) adds "scaled by √d_model instead of √d_head".
    """
    d_k = Q.shape[-1]
    found = {
        f"the scores were not scaled: divide Q Kᵀ by √d_k = {math.sqrt(d_k):.3g}.":
            lambda: attention_variant(Q, K, V, mask, scale=1.0),
        f"the scores were divided by d_k = {d_k} instead of √d_k = {math.sqrt(d_k):.3g}.":
            lambda: attention_variant(Q, K, V, mask, scale=d_k),
    }
    if d_model is not None:
        found[f"the scores were divided by √d_model = √{d_model} instead of √d_head = "
              f"√{d_k}: each head works in d_head = d_model / num_heads dimensions."] = (
            lambda: attention_variant(Q, K, V, mask, scale=math.sqrt(d_model)))
        found[f"the scores were divided by d_model = {d_model} instead of √d_head = √{d_k}."] = (
            lambda: attention_variant(Q, K, V, mask, scale=d_model))
    found["softmax was taken over the queries (axis -2) instead of over the keys (axis -1): "
          "each query's row of weights must sum to 1."] = (
        lambda: attention_variant(Q, K, V, mask, axis=-2))
    if mask is not None:
        found["the mask polarity is inverted: True means the query MAY attend to that key, "
              "so fill the scores where the mask is False."] = (
            lambda: attention_variant(Q, K, V, mask, mask_mode="inverted"))
        found["masked scores were filled with 0 instead of -inf: exp(0) = 1 still gives "
              "them weight. Use -np.inf (or a very large negative number)."] = (
            lambda: attention_variant(Q, K, V, mask, mask_mode="zero"))
        found["the mask was applied after softmax, so the rows no longer sum to 1: fill "
              "masked scores with -inf before the softmax."] = (
            lambda: attention_variant(Q, K, V, mask, mask_mode="after"))
        found["the mask was ignored."] = lambda: attention_variant(Q, K, V)
    return found


def unpack_output_and_weights(result, name: str, lib: str = "numpy"):
    """The (output, weights) pair a learner's attention returns, as arrays."""
    if not isinstance(result, tuple) or len(result) != 2:
        raise CheckFailed(f"{name} should return a tuple (output, weights), "
                          f"but it returned {type(result).__name__}.")
    return tuple(as_array(item, f"{name}(...)[{i}]", lib) for i, item in enumerate(result))


def compare_attention(output, weights, expected_output, expected_weights, dtype, context,
                      weight_misconceptions: dict, output_misconceptions: dict | None = None):
    """Weights first (most mistakes show there), then the output."""
    if (output.shape == expected_weights.shape and weights.shape == expected_output.shape
            and output.shape != weights.shape):
        raise CheckFailed("return (output, weights) in this order, not (weights, output).")
    transposed = expected_weights.shape[:-2] + expected_weights.shape[:-3:-1]
    misconceptions = {
        **weight_misconceptions,
        "the weights are transposed: row i must hold query i's weights over the keys.":
            lambda: np.swapaxes(expected_weights, -1, -2),
    }
    expect_close(weights, expected_weights, "the attention weights (注意力权重)", dtype,
                 misconceptions, nonfinite_hint=ATTENTION_NAN_HINT, context=context,
                 shape_hint="The weights are transposed: rows are queries, columns are keys."
                 if weights.shape == transposed else "")
    expect_close(output, expected_output, "the output", dtype, output_misconceptions,
                 context=context)


def check_attention_result(result, Q, K, V, mask, dtype, context):
    """``result`` of the learner's attention must be (output, weights) equal to torch's."""
    output, weights = unpack_output_and_weights(result, "scaled_dot_product_attention")
    expected_output, expected_weights = _reference_attention(Q, K, V, mask)
    compare_attention(output, weights, expected_output, expected_weights, dtype, context,
                      attention_misconceptions(Q, K, V, mask))


def _random_qkv(rng, batch, n_q, n_k, d_k, d_v, dtype):
    Q = rng.standard_normal(batch + (n_q, d_k)).astype(dtype)
    K = rng.standard_normal(batch + (n_k, d_k)).astype(dtype)
    V = rng.standard_normal(batch + (n_k, d_v)).astype(dtype)
    return Q, K, V


def check_attention_matches_torch(scaled_dot_product_attention, seed=10,
                                  cases=(((2,), 3, 5, 4, 6), ((), 4, 4, 8, 8))):
    """Output and weights equal torch's for random Q, K, V (n_q ≠ n_k, d_v ≠ d_k)."""
    fn = bind(scaled_dot_product_attention, "scaled_dot_product_attention")
    rng = np.random.default_rng(seed)
    for batch, n_q, n_k, d_k, d_v in cases:
        for dtype in ("float64", "float32"):
            Q, K, V = _random_qkv(rng, tuple(batch), n_q, n_k, d_k, d_v, dtype)
            check_attention_result(call(fn, Q, K, V), Q, K, V, None, dtype,
                                   f" for Q {Q.shape}, K {K.shape}, V {V.shape} ({dtype})")
    passed(f"scaled_dot_product_attention matches {'torch' if torch is not None else 'the reference'} on random inputs")


def check_attention_batch_dims(scaled_dot_product_attention, seed=11,
                               batches=((), (3,), (2, 3), (2, 1, 2))):
    """Any number of leading batch dimensions, including none."""
    fn = bind(scaled_dot_product_attention, "scaled_dot_product_attention")
    rng = np.random.default_rng(seed)
    for batch in batches:
        Q, K, V = _random_qkv(rng, tuple(batch), 3, 4, 5, 2, "float64")
        check_attention_result(call(fn, Q, K, V), Q, K, V, None, "float64",
                               f" with Q {Q.shape}, K {K.shape}, V {V.shape} ("
                               + (f"batch dimensions {tuple(batch)})" if batch else "no batch dimension)"))
    passed("scaled_dot_product_attention works with any number of batch dimensions")


def check_attention_mask(scaled_dot_product_attention, seed=12, n_q=4, n_k=6, batch=(2,)):
    """A boolean mask (True = may attend) broadcast over batch and over queries."""
    fn = bind(scaled_dot_product_attention, "scaled_dot_product_attention")
    rng = np.random.default_rng(seed)
    Q, K, V = _random_qkv(rng, tuple(batch), n_q, n_k, 5, 3, "float64")
    per_pair = rng.random((n_q, n_k)) < 0.6
    per_pair[:, 0] = True  # every query may attend to at least one key
    padding = np.ones(tuple(batch) + (1, n_k), dtype=bool)
    padding[..., -2:] = False  # the last two keys are padding
    for mask, kind in ((per_pair, f"a mask of shape ({n_q}, {n_k})"),
                       (padding, f"a padding mask of shape {padding.shape}")):
        check_attention_result(call(fn, Q, K, V, mask=mask), Q, K, V, mask, "float64",
                               f" for Q {Q.shape}, K {K.shape}, V {V.shape} with {kind}")
    passed("masked keys get weight 0 and the mask broadcasts")


def check_attention_permutation_equivariance(scaled_dot_product_attention, seed=13, n=5, d=4):
    """Shuffling queries shuffles the output rows; shuffling key/value pairs changes nothing."""
    fn = bind(scaled_dot_product_attention, "scaled_dot_product_attention")
    rng = np.random.default_rng(seed)
    Q, K, V = _random_qkv(rng, (), n, n + 1, d, d, "float64")
    order_q, order_k = rng.permutation(n), rng.permutation(n + 1)

    def output(q, k, v, fresh=True):  # by default on a learner that remembers no call
        result = (fresh_call if fresh else call)(fn, q, k, v)
        return unpack_output_and_weights(result, "scaled_dot_product_attention")[0]

    base = output(Q, K, V)
    other = _random_qkv(rng, (), n, n + 1, d, d, "float64")
    expect_depends_on_input([((Q, K, V), base), (other, output(*other, fresh=False))],
                            "scaled_dot_product_attention")
    if not np.allclose(output(Q[order_q], K, V), base[order_q]):
        raise CheckFailed("Shuffling the queries should shuffle the output rows the same way: "
                          "each query's output may depend only on that query (and all keys).")
    if not np.allclose(output(Q, K[order_k], V[order_k]), base):
        raise CheckFailed("Shuffling the key/value pairs together should not change the output: "
                          "attention treats the keys as a set. Check that V is multiplied by "
                          "weights computed from the matching keys.")
    passed("attention is permutation-equivariant in the queries and invariant in the keys")


def check_causal_mask(causal_mask, sizes=(1, 2, 5)):
    """causal_mask(n) is boolean (n, n), True on and below the diagonal."""
    fn = bind(causal_mask, "causal_mask")
    for n in sizes:
        mask = as_array(call(fn, n), f"causal_mask({n})")
        expected = np.tril(np.ones((n, n), dtype=bool))
        expect_shape(mask, (n, n), f"causal_mask({n})")
        if mask.dtype != bool:
            raise CheckFailed(f"causal_mask({n}) should be boolean (dtype=bool), got {mask.dtype}.")
        if np.array_equal(mask, expected):
            continue
        if np.array_equal(mask, expected.T):
            raise CheckFailed(f"causal_mask({n}) is inverted: True must be on and below the "
                              "diagonal (the past and the token itself), not above (the future).")
        if np.array_equal(mask, np.tril(expected, -1)):
            raise CheckFailed(f"causal_mask({n}): the diagonal must be True — every token may "
                              "attend to itself.")
        if np.array_equal(mask, ~expected):
            raise CheckFailed(f"causal_mask({n}) has True and False swapped: True = may attend.")
        raise CheckFailed(f"causal_mask({n}) should be np.tril of ones: True where the key "
                          "position is at or before the query position.")
    passed("causal_mask is lower-triangular and boolean")


def check_causal_attention_ignores_future(scaled_dot_product_attention, causal_mask, seed=14,
                                          n=6, d=4):
    """With causal_mask(n), changing tokens at positions >= t leaves outputs before t unchanged."""
    attention = bind(scaled_dot_product_attention, "scaled_dot_product_attention")
    mask_fn = bind(causal_mask, "causal_mask")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    mask = as_array(call(mask_fn, n), f"causal_mask({n})")

    def output(x, fresh=False):
        result = (fresh_call if fresh else call)(attention, x, x, x, mask=mask)
        return unpack_output_and_weights(result, "scaled_dot_product_attention")[0]

    # The unchanged input in one fresh learner, the changed ones in another: code that
    # remembers rows by the prefix it saw cannot make the two sides agree.
    base = output(X, fresh=True)
    for t in range(1, n):
        changed = X.copy()
        changed[t:] = rng.standard_normal((n - t, d))
        after = output(changed, fresh=t == 1)
        if t == 1:
            expect_depends_on_input([((X,), base), ((changed,), after)],
                                    "scaled_dot_product_attention with the causal mask")
        if not np.allclose(after[:t], base[:t]):
            raise CheckFailed(f"Changing the tokens at positions {t}..{n - 1} changed the outputs "
                              f"at positions before {t}: information leaks from the future. Check "
                              "causal_mask and how scaled_dot_product_attention uses the mask.")
    passed("with the causal mask, no position sees the future")
