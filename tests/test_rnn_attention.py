import pytest
import torch
import torch.nn.functional as F

from attention_course.rnn_attention import (
    AdditiveAttention,
    RNNSeq2Seq,
    attend,
    dot_product_score,
    reverse_within_length,
)
from attention_course.tasks import BOS, PAD, REVERSAL_VOCAB, reversal_batch
from attention_course.transformer import attention


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def test_dot_product_recipe_matches_the_transformer_and_torch(gen):
    q, k, v = (torch.randn(2, n, 8, generator=gen) for n in (3, 5, 5))
    mask = torch.tensor([True, True, True, False, True])[None, None, :]
    ours, w = attend(dot_product_score, q, k, v, mask)
    course, course_w = attention(q, k, v, mask)
    torch.testing.assert_close(ours, course)
    torch.testing.assert_close(w, course_w)
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    assert torch.all(w[..., 3] == 0)


def test_additive_score_by_hand(gen):
    torch.manual_seed(0)
    att = AdditiveAttention(query_dim=4, key_dim=6, hidden_dim=5)
    q, k = torch.randn(2, 3, 4, generator=gen), torch.randn(2, 7, 6, generator=gen)
    scores = att.score(q, k)
    assert scores.shape == (2, 3, 7)
    for b in range(2):
        for i in range(3):
            for j in range(7):
                hidden = torch.tanh(att.w_query(q[b, i]) + att.w_key(k[b, j]))
                torch.testing.assert_close(scores[b, i, j], att.v(hidden)[0])
    out, w = att(q, k, k)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3))
    torch.testing.assert_close(out, w @ k)


def test_reverse_within_length():
    x = torch.tensor([[1, 2, 3, 0], [4, 5, 6, 7]])
    lengths = torch.tensor([3, 4])
    assert torch.equal(reverse_within_length(x, lengths), torch.tensor([[3, 2, 1, 0],
                                                                        [7, 6, 5, 4]]))
    features = torch.arange(8.0).view(1, 4, 2)
    assert torch.equal(reverse_within_length(features, torch.tensor([2])),
                       torch.tensor([[[2.0, 3.0], [0.0, 1.0], [4.0, 5.0], [6.0, 7.0]]]))


@pytest.fixture
def model():
    torch.manual_seed(0)
    return RNNSeq2Seq(REVERSAL_VOCAB, embed_dim=8, hidden_dim=12).eval()


def test_shapes_and_weights(model, gen):
    batch = reversal_batch(5, generator=gen)
    with torch.no_grad():
        logits, weights = model(batch.source, batch.target_in)
    assert logits.shape == (5, 9, REVERSAL_VOCAB)
    assert weights.shape == (5, 9, 8)
    torch.testing.assert_close(weights.sum(-1), torch.ones(5, 9))
    padding = (batch.source == PAD)[:, None, :].expand_as(weights)
    assert torch.all(weights[padding] == 0)


def test_padding_changes_nothing(model):
    source = torch.tensor([[4, 5, 6, 7]])
    padded = torch.tensor([[4, 5, 6, 7, PAD, PAD, PAD]])
    target_in = torch.tensor([[BOS, 7, 6]])
    with torch.no_grad():
        a, wa = model(source, target_in)
        b, wb = model(padded, target_in)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(wa, wb[..., :4], atol=1e-6, rtol=1e-5)


def test_hidden_positions_get_no_weight(model, gen):
    batch = reversal_batch(4, min_len=5, generator=gen)
    hidden = torch.zeros(8, dtype=torch.bool)
    hidden[2] = True
    with torch.no_grad():
        _, weights = model(batch.source, batch.target_in, hidden_positions=hidden)
        plain, _ = model(batch.source, batch.target_in)
        hid, _ = model(batch.source, batch.target_in, hidden_positions=hidden)
    assert torch.all(weights[..., 2] == 0)
    assert not torch.allclose(plain, hid)


def test_without_attention_the_context_is_fixed(gen):
    torch.manual_seed(0)
    model = RNNSeq2Seq(REVERSAL_VOCAB, embed_dim=8, hidden_dim=12, attention=False).eval()
    batch = reversal_batch(4, generator=gen)
    hidden = torch.ones(8, dtype=torch.bool)
    with torch.no_grad():
        plain, weights = model(batch.source, batch.target_in)
        hid, _ = model(batch.source, batch.target_in, hidden_positions=hidden)
    assert torch.all(weights == 0)
    torch.testing.assert_close(plain, hid)


def test_greedy_decode_matches_teacher_forcing_on_its_own_output(model, gen):
    batch = reversal_batch(3, generator=gen)
    out = model.greedy_decode(batch.source, BOS, 5)
    assert out.shape == (3, 5)
    with torch.no_grad():
        logits, _ = model(batch.source, torch.cat([torch.full((3, 1), BOS), out[:, :-1]], 1))
    assert torch.equal(logits.argmax(-1), out)
