"""Reference implementations of attention that later chapters build on.

NumPy versions keep every step visible; chapter 1 checks them against
``torch.nn.functional.scaled_dot_product_attention``.
"""
from __future__ import annotations

import numpy as np


def softmax(x: np.ndarray, axis: int = -1, temperature: float = 1.0) -> np.ndarray:
    """Softmax of ``x / temperature`` along ``axis``.

    Subtracting the row maximum first keeps ``exp`` from overflowing; it does not
    change the result because softmax ignores a constant shift. ``-inf`` entries
    get weight exactly 0.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    z = np.asarray(x, dtype=float) / temperature
    z = z - np.max(z, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


def entropy(weights: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy (in nats) of probability rows; 0 for one-hot, log n for uniform."""
    p = np.asarray(weights, dtype=float)
    terms = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return terms.sum(axis=axis)


def scaled_dot_product_attention(Q, K, V, mask=None):
    """softmax(Q Kᵀ / √d_k) V for any number of leading batch dimensions.

    ``mask`` is boolean and broadcastable to the scores' shape ``(..., n_q, n_k)``;
    True means "may attend". Returns ``(output, weights)``.
    """
    Q, K, V = (np.asarray(a, dtype=float) for a in (Q, K, V))
    d_k = Q.shape[-1]
    scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(d_k)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = softmax(scores, axis=-1)
    return weights @ V, weights
