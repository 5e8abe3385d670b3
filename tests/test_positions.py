import math

import pytest
import torch
import torch.nn.functional as F

from attention_course.positions import (
    SCHEMES,
    PositionalGPT,
    PositionalSelfAttention,
    RelativePositionBias,
    apply_rope,
    apply_rope_complex,
    interleaved_to_half,
    offset_copy_batch,
    rope_frequencies,
    rotate_half,
)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def test_frequencies_match_the_sinusoidal_encoding():
    theta = rope_frequencies(8)
    expected = torch.tensor([10000 ** (-2 * i / 8) for i in range(4)])
    torch.testing.assert_close(theta, expected)
    with pytest.raises(ValueError):
        rope_frequencies(7)


def test_rotate_half():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert torch.equal(rotate_half(x), torch.tensor([-3.0, -4.0, 1.0, 2.0]))


@pytest.mark.parametrize("interleaved", [False, True])
def test_rope_matches_complex_multiplication(gen, interleaved):
    x = torch.randn(2, 3, 20, 16, generator=gen)
    ours = apply_rope(x, interleaved=interleaved)
    reference = apply_rope_complex(x, interleaved=interleaved)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)
    positions = torch.tensor([5, 0, 17, 100])
    torch.testing.assert_close(apply_rope(x[..., :4, :], positions, interleaved=interleaved),
                               apply_rope_complex(x[..., :4, :], positions,
                                                  interleaved=interleaved),
                               atol=1e-4, rtol=1e-4)


def test_interleaved_pairs_by_hand(gen):
    x = torch.randn(1, 8, generator=gen)
    m = torch.tensor([3])
    out = apply_rope(x, m, interleaved=True)
    for i, theta in enumerate(rope_frequencies(8)):
        c, s = math.cos(3 * theta), math.sin(3 * theta)
        a, b = x[0, 2 * i].item(), x[0, 2 * i + 1].item()
        assert out[0, 2 * i].item() == pytest.approx(a * c - b * s, abs=1e-5)
        assert out[0, 2 * i + 1].item() == pytest.approx(a * s + b * c, abs=1e-5)


@pytest.mark.parametrize("interleaved", [False, True])
def test_rope_preserves_norms_and_leaves_position_zero(gen, interleaved):
    x = torch.randn(30, 16, generator=gen)
    out = apply_rope(x, interleaved=interleaved)
    torch.testing.assert_close(out.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(out[0], x[0])


def test_conventions_differ_by_a_fixed_permutation(gen):
    x = torch.randn(12, 16, generator=gen)
    perm = interleaved_to_half(16)
    torch.testing.assert_close(apply_rope(x[:, perm]), apply_rope(x, interleaved=True)[:, perm])


@pytest.mark.parametrize("interleaved", [False, True])
def test_score_depends_only_on_the_offset(gen, interleaved):
    q, k = torch.randn(16, generator=gen), torch.randn(16, generator=gen)
    n = 40
    positions = torch.arange(n)
    rq = apply_rope(q.expand(n, 16), positions, interleaved=interleaved)
    rk = apply_rope(k.expand(n, 16), positions, interleaved=interleaved)
    scores = rq @ rk.T  # scores[m, n] = <R_m q, R_n k>
    for offset in range(-n + 1, n):
        diagonal = scores.diagonal(offset)
        assert (diagonal - diagonal[0]).abs().max() < 1e-4
    assert (scores.diagonal(0)[0] - scores.diagonal(5)[0]).abs() > 1e-3


def test_relative_bias_is_toeplitz_and_clipped():
    bias = RelativePositionBias(num_heads=2, max_distance=3)
    with torch.no_grad():
        bias.bias.copy_(torch.arange(14.0).view(2, 7))
    b = bias(10)
    assert b.shape == (2, 10, 10)
    assert torch.equal(b[:, 1:, 1:], b[:, :-1, :-1])  # constant along every diagonal
    assert torch.equal(b[0, 9, 0], torch.tensor(0.0))  # offset -9 clipped to -3
    assert torch.equal(b[0, 0, 9], torch.tensor(6.0))  # offset +9 clipped to +3
    assert torch.equal(b[1, 4, 4], torch.tensor(10.0))  # offset 0 of head 1


def test_attention_matches_torch_sdpa(gen):
    torch.manual_seed(0)
    layer = PositionalSelfAttention(16, 2, rope=True).eval()
    x = torch.randn(3, 9, 16, generator=gen)
    with torch.no_grad():
        ours = layer(x)
        q, k, v = (w(x).view(3, 9, 2, 8).transpose(1, 2)
                   for w in (layer.w_q, layer.w_k, layer.w_v))
        heads = F.scaled_dot_product_attention(apply_rope(q), apply_rope(k), v, is_causal=True)
        theirs = layer.w_o(heads.transpose(1, 2).reshape(3, 9, 16))
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_scheme_is_causal(gen, scheme):
    torch.manual_seed(0)
    model = PositionalGPT(10, scheme, num_layers=2).eval()
    tokens = torch.randint(0, 10, (2, 12), generator=gen)
    changed = tokens.clone()
    changed[:, 7:] = (changed[:, 7:] + 1) % 10
    with torch.no_grad():
        a, b = model(tokens), model(changed)
    assert a.shape == (2, 12, 10)
    torch.testing.assert_close(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_learned_table_has_no_row_beyond_its_size():
    model = PositionalGPT(10, "learned", max_positions=16)
    model(torch.zeros(1, 16, dtype=torch.long))
    with pytest.raises(ValueError, match="no vector for position 16"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError):
        PositionalGPT(10, "alibi")


def test_window_hides_old_keys(gen):
    torch.manual_seed(0)
    model = PositionalGPT(10, "rope", num_layers=1).eval()
    model.set_window(4)
    tokens = torch.randint(0, 10, (1, 12), generator=gen)
    changed = tokens.clone()
    changed[0, 2] = (changed[0, 2] + 1) % 10
    with torch.no_grad():
        a, b = model(tokens), model(changed)
    # with one layer, position t reads keys t-3..t only: t = 6.. never sees position 2
    torch.testing.assert_close(a[0, 6:], b[0, 6:])
    assert not torch.allclose(a[0, 2:6], b[0, 2:6])
    model.set_window(None)
    with torch.no_grad():
        assert not torch.allclose(model(tokens)[0, 6:], model(changed)[0, 6:])


def test_offset_copy_batch(gen):
    tokens, targets = offset_copy_batch(4, 10, offset=3, vocab_size=7, generator=gen)
    assert tokens.shape == targets.shape == (4, 10)
    assert (targets[:, :3] == -100).all()
    assert torch.equal(targets[:, 3:], tokens[:, :-3])
    assert tokens.max() < 7


@pytest.mark.parametrize("interleaved", [False, True])
def test_exercise_reference_is_the_course_rope(gen, interleaved):
    """Exercise 5 checks learners against a float64 NumPy RoPE: it must be this chapter's
    apply_rope (half-split by default) and its complex-number form."""
    from attention_course.checks.ex5 import rope

    x = torch.randn(2, 5, 12, generator=gen, dtype=torch.float64)
    positions = torch.tensor([7, 0, 3, 40, 41])
    expected = rope(x.numpy(), positions.numpy(), interleaved=interleaved)
    course = apply_rope(x.float(), positions, interleaved=interleaved)
    complex_form = apply_rope_complex(x, positions, interleaved=interleaved)
    for other in (course, complex_form):
        torch.testing.assert_close(torch.from_numpy(expected).float(), other,
                                   atol=1e-5, rtol=1e-5)
