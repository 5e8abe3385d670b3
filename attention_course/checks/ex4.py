"""Checks for exercise 4: BERT's masking rule, GPT's sampling, ViT's patches.

Random procedures are checked by their statistics on many draws (bounds of six
standard deviations: a correct answer fails far less than once in a million runs);
patches are compared with ``torch.nn.functional.unfold``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from attention_course.checks.core import (
    CheckFailed, as_array, bind, call, call_keeping_arguments, expect_close,
    expect_raises, expect_shape, passed,
)

IGNORE = -100
SIGMAS = 6.0


def _close_rate(observed: float, expected: float, count: int) -> bool:
    spread = math.sqrt(max(expected * (1 - expected), 1e-12) / max(count, 1))
    return abs(observed - expected) <= SIGMAS * spread + 1e-9


def mask_id_for(vocab_size: int) -> int:
    """[MASK] is a special token after the ordinary ids (as in Chapter 6), and it differs
    from vocab_size, so swapped integer arguments cannot pass."""
    return vocab_size + 1


def _masked(mask_tokens, batch, n, vocab_size, mask_prob, seed, in_place_rule=False):
    """Token ids drawn from 0 .. vocab_size - 1 and [MASK] = vocab_size + 1, so the three
    outcomes of the 80/10/10 rule can be told apart. ``in_place_rule``: the notebook's
    "do not modify token_ids in place" is checked too."""
    fn = bind(mask_tokens, "mask_tokens")
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, vocab_size, (batch, n), generator=generator)
    mask_id = mask_id_for(vocab_size)
    kwargs = {} if mask_prob is None else {"mask_prob": mask_prob}
    result, after, _ = call_keeping_arguments(fn, tokens, vocab_size, mask_id, **kwargs)
    if in_place_rule and not torch.equal(torch.as_tensor(after[0]), tokens):
        raise CheckFailed("mask_tokens changed token_ids in place: work on a copy "
                          "(token_ids.clone()) and return new tensors.")
    if not isinstance(result, tuple) or len(result) != 2:
        raise CheckFailed("mask_tokens should return a tuple (inputs, labels).")
    inputs, labels = (as_array(item, f"mask_tokens(...)[{i}]", "torch")
                      for i, item in enumerate(result))
    for array, name in ((inputs, "inputs"), (labels, "labels")):
        expect_shape(array, tuple(tokens.shape), f"the returned {name}")
        if not np.issubdtype(array.dtype, np.integer):
            raise CheckFailed(f"the returned {name} should hold integer token ids, got {array.dtype}.")
    if (inputs == vocab_size).any():
        raise CheckFailed(
            f"for mask_tokens(token_ids, vocab_size={vocab_size}, mask_token_id={mask_id}) the "
            f"inputs hold the id {vocab_size}, which is neither an ordinary token (0 .. "
            f"{vocab_size - 1}) nor [MASK]: are vocab_size and mask_token_id swapped? The order "
            "is mask_tokens(token_ids, vocab_size, mask_token_id), as attention_course.bert's; "
            "random replacements come from 0 .. vocab_size - 1.")
    return tokens.numpy(), inputs, labels


def check_mask_tokens_labels(mask_tokens, seed=50, batch=8, n=64, vocab_size=30):
    """labels hold the original id where a token was selected and -100 everywhere else;
    inputs are unchanged where nothing was selected; token_ids is not changed in
    place."""
    tokens, inputs, labels = _masked(mask_tokens, batch, n, vocab_size, None, seed,
                                     in_place_rule=True)
    selected = labels != IGNORE
    if not selected.any():
        raise CheckFailed("No token was selected: labels are -100 everywhere.")
    if np.array_equal(labels, tokens):
        raise CheckFailed("labels must be -100 at the positions that were not selected, so the "
                          "loss ignores them; only selected positions keep their original id.")
    if not np.array_equal(labels[selected], tokens[selected]):
        raise CheckFailed("labels must hold the ORIGINAL token id at selected positions (what the "
                          "model has to predict), not the [MASK] id or the replacement.")
    if not np.array_equal(inputs[~selected], tokens[~selected]):
        raise CheckFailed("inputs changed at positions that were not selected (labels -100 there): "
                          "apply the 80/10/10 rule only to the selected tokens.")
    passed("labels and inputs agree with the selected positions")


def check_mask_tokens_rates(mask_tokens, seed=51, mask_prob=None, batch=200, n=500,
                            vocab_size=50):
    """About mask_prob of the tokens are selected; of those 80% become [MASK], 10% a random
    token, 10% stay unchanged."""
    tokens, inputs, labels = _masked(mask_tokens, batch, n, vocab_size, mask_prob, seed)
    rate = 0.15 if mask_prob is None else mask_prob
    selected = labels != IGNORE
    total, chosen = tokens.size, int(selected.sum())
    if not _close_rate(chosen / total, rate, total):
        raise CheckFailed(f"{chosen / total:.3f} of the tokens were selected; expected about "
                          f"{rate:g} (mask_prob). Select each position independently with that "
                          "probability.")
    became_mask = inputs[selected] == mask_id_for(vocab_size)
    unchanged = inputs[selected] == tokens[selected]
    replaced = ~became_mask & ~unchanged
    if became_mask.mean() > 0.97:
        raise CheckFailed("Every selected token became [MASK]: BERT replaces 80% of them with "
                          "[MASK], 10% with a random token and leaves 10% unchanged.")
    # A random replacement draws the original token once in vocab_size tries.
    expected = {"[MASK]": 0.8, "unchanged": 0.1 + 0.1 / vocab_size,
                "a random token": 0.1 * (1 - 1 / vocab_size)}
    observed = {"[MASK]": became_mask.mean(), "unchanged": unchanged.mean(),
                "a random token": replaced.mean()}
    for kind, share in observed.items():
        if not _close_rate(share, expected[kind], chosen):
            raise CheckFailed(f"Of the selected tokens {share:.3f} became {kind}; expected about "
                              f"{expected[kind]:.3f} (the 80/10/10 rule).")
    random_ids = inputs[selected][replaced]
    if random_ids.min() < 0 or random_ids.max() >= vocab_size or \
            len(np.unique(random_ids)) < vocab_size // 2:
        raise CheckFailed("Random replacements should be drawn uniformly from all token ids "
                          "0 .. vocab_size - 1.")
    passed(f"about {rate:g} of the tokens are selected and the 80/10/10 rule holds")


def _logits(batch: int, values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).expand(batch, len(values)).clone()


def _sample(fn, logits, **kwargs) -> np.ndarray:
    what = f"sample_next_token(logits, {', '.join(f'{k}={v}' for k, v in kwargs.items())})"
    result = as_array(call(fn, logits, **kwargs), what, "torch")
    expect_shape(result, (logits.shape[0],), what, "Return one token id per row of logits.")
    if not np.issubdtype(result.dtype, np.integer):
        raise CheckFailed(f"{what} should return integer token ids, got {result.dtype}.")
    if result.min() < 0 or result.max() >= logits.shape[1]:
        raise CheckFailed(f"{what} returned ids outside 0 .. vocab_size - 1.")
    return result


def check_greedy_decoding(sample_next_token, seed=60, batch=16, vocab_size=10):
    """temperature=0 and top_k=1 both give the argmax of every row."""
    fn = bind(sample_next_token, "sample_next_token")
    logits = torch.randn(batch, vocab_size, generator=torch.Generator().manual_seed(seed)) * 3
    best = logits.argmax(dim=-1).numpy()
    hint = "temperature = 0 cannot be divided by: handle it separately with argmax."
    for kwargs in ({"temperature": 0.0}, {"top_k": 1}, {"temperature": 0.0, "top_k": 3}):
        try:
            result = _sample(fn, logits, **kwargs)
        except CheckFailed as failure:
            # The hint only where dividing by temperature = 0 is what went wrong.
            unfinished = "not implemented yet" in str(failure)
            raise CheckFailed(f"{failure}\n{hint}" if "temperature" in kwargs and not unfinished
                              else str(failure)) from None
        if not np.array_equal(result, best):
            raise CheckFailed(f"With {kwargs} every row must get its largest logit (greedy "
                              f"decoding). {hint}")
    passed("temperature 0 and top_k=1 decode greedily")


def _frequencies(samples: np.ndarray, vocab_size: int) -> np.ndarray:
    return np.bincount(samples, minlength=vocab_size) / len(samples)


def _matches(frequencies: np.ndarray, probabilities: np.ndarray, count: int) -> bool:
    return all(_close_rate(f, p, count) for f, p in zip(frequencies, probabilities))


def check_sampling_distribution(sample_next_token, values=(2.0, 1.0, 0.5, 0.0, -1.0),
                                temperatures=(1.0, 0.5, 2.0), draws=40_000):
    """Samples follow softmax(logits / temperature)."""
    fn = bind(sample_next_token, "sample_next_token")
    logits = _logits(draws, values)
    base = torch.tensor(values, dtype=torch.float64)
    for temperature in temperatures:
        frequencies = _frequencies(_sample(fn, logits, temperature=temperature), len(values))
        expected = torch.softmax(base / temperature, -1).numpy()
        if _matches(frequencies, expected, draws):
            continue
        if _matches(frequencies, torch.softmax(base * temperature, -1).numpy(), draws):
            raise CheckFailed(f"With temperature={temperature} the logits were multiplied by the "
                              "temperature; divide them by it.")
        if _matches(frequencies, torch.softmax(base, -1).numpy(), draws):
            raise CheckFailed(f"temperature={temperature} was ignored: sample from "
                              "softmax(logits / temperature).")
        if frequencies.max() > 0.99:
            raise CheckFailed("Every draw gave the same token: sample with torch.multinomial "
                              "instead of taking the argmax.")
        raise CheckFailed(f"With temperature={temperature} the token frequencies "
                          f"{np.round(frequencies, 3).tolist()} differ from "
                          f"softmax(logits / temperature) = {np.round(expected, 3).tolist()}.")
    passed("samples follow softmax(logits / temperature)")


def check_top_k_sampling(sample_next_token, values=(0.5, 2.0, -1.0, 1.5, 0.0, 1.0), top_k=3,
                         temperature=1.0, draws=40_000):
    """Only the top_k largest logits are ever drawn, in proportion to their softmax."""
    fn = bind(sample_next_token, "sample_next_token")
    logits = _logits(draws, values)
    frequencies = _frequencies(_sample(fn, logits, temperature=temperature, top_k=top_k),
                               len(values))
    base = torch.tensor(values, dtype=torch.float64) / temperature
    kept = torch.topk(base, top_k).indices
    if frequencies[np.setdiff1d(np.arange(len(values)), kept.numpy())].sum() > 0:
        raise CheckFailed(f"With top_k={top_k} a token outside the {top_k} largest logits was "
                          "drawn: set the other logits to -inf before sampling.")
    expected = np.zeros(len(values))
    expected[kept.numpy()] = torch.softmax(base[kept], -1).numpy()
    if not _matches(frequencies, expected, draws):
        raise CheckFailed(f"With top_k={top_k} the kept tokens should be drawn in proportion to "
                          f"their softmax {np.round(expected, 3).tolist()}, got "
                          f"{np.round(frequencies, 3).tolist()}.")
    passed(f"top_k={top_k} samples only among the {top_k} largest logits")


def _patch_variants(images: torch.Tensor, p: int) -> dict:
    batch, channels, height, width = images.shape
    grid = images.reshape(batch, channels, height // p, p, width // p, p)
    return {
        "patches are in column-major order: go left to right along a row of patches first, "
        "then down (row-major).":
            lambda: grid.permute(0, 4, 2, 1, 3, 5).reshape(batch, -1, channels * p * p).numpy(),
        "each patch was flattened channels-last (p, p, C); flatten it as (C, p, p), the order "
        "nn.Conv2d's kernel uses.":
            lambda: grid.permute(0, 2, 4, 3, 5, 1).reshape(batch, -1, channels * p * p).numpy(),
        "the image was reshaped without permuting the axes, so a 'patch' mixes pixels from "
        "different places: reshape to (B, C, H/p, p, W/p, p) and permute.":
            lambda: images.reshape(batch, -1, channels * p * p).numpy(),
    }


def check_patchify(patchify, seed=70, cases=((2, 3, 8, 8, 4), (1, 1, 6, 9, 3))):
    """(B, C, H, W) -> (B, H/p * W/p, C*p*p) patches in row-major order, each flattened (C, p, p)."""
    fn = bind(patchify, "patchify")
    generator = torch.Generator().manual_seed(seed)
    for batch, channels, height, width, p in cases:
        images = torch.randn(batch, channels, height, width, generator=generator)
        expected = F.unfold(images, kernel_size=p, stride=p).transpose(1, 2).numpy()
        result = as_array(call(fn, images, p), "patchify(images, patch_size)", "torch")
        expect_close(result, expected, "patchify(images, patch_size)", np.float32,
                     _patch_variants(images, p),
                     context=f" for images of shape {(batch, channels, height, width)}, "
                             f"patch_size={p}")
    passed("patchify cuts row-major patches flattened as (C, p, p)")


def check_patchify_rejects_ragged_images(patchify, shapes=((1, 3, 8, 6), (2, 1, 5, 8)), p=4):
    """Images whose sides are not multiples of patch_size raise ValueError."""
    fn = bind(patchify, "patchify")
    for shape in shapes:
        expect_raises(fn, "ValueError", f"patchify(images of shape {shape}, {p})",
                      torch.zeros(shape), p)
    passed("patchify refuses images that do not split into whole patches")


def check_patch_embedding_is_a_convolution(patchify, seed=71, channels=3, size=8, p=4, d_model=5):
    """A property: patchify followed by a linear layer equals nn.Conv2d(kernel=stride=p)."""
    fn = bind(patchify, "patchify")
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(2, channels, size, size, generator=generator)
    kernel = torch.randn(d_model, channels, p, p, generator=generator)
    patches = as_array(call(fn, images, p), "patchify(images, patch_size)", "torch")
    expect_shape(patches, (2, (size // p) ** 2, channels * p * p), "patchify(images, patch_size)")
    embedded = patches.astype(np.float64) @ kernel.reshape(d_model, -1).double().numpy().T
    convolved = F.conv2d(images.double(), kernel.double(), stride=p).flatten(2).transpose(1, 2)
    if not np.allclose(embedded, convolved.numpy(), atol=1e-4):
        raise CheckFailed("A linear layer on your patches should equal nn.Conv2d with "
                          "kernel_size = stride = patch_size: check the patch order and how "
                          "each patch is flattened.")
    passed("patch embedding = a strided convolution")
