"""The tiny encoder-decoder respects its masks and decodes."""
import pytest
import torch
import torch.nn.functional as F

from attention_course.seq2seq import Seq2SeqTransformer
from attention_course.tasks import BOS, PAD, REVERSAL_VOCAB, reversal_batch
from attention_course.training import train


@pytest.mark.parametrize("norm_first", [False, True])
def test_masks_hold_in_the_model(norm_first):
    torch.manual_seed(0)
    model = Seq2SeqTransformer(REVERSAL_VOCAB, d_model=16, num_heads=2, d_ff=32, num_layers=2,
                               max_len=16, norm_first=norm_first).eval()
    batch = reversal_batch(4, min_len=3, max_len=6, generator=torch.Generator().manual_seed(1))
    logits = model(batch.source, batch.target_in)
    assert logits.shape == (4, 7, REVERSAL_VOCAB)
    # changing a later decoder input leaves earlier positions alone (causal mask)
    changed = batch.target_in.clone()
    changed[:, 3] = 5
    torch.testing.assert_close(model(batch.source, changed)[:, :3], logits[:, :3])
    # padding is invisible (padding mask): extra PAD columns change no logit
    padded = torch.cat([batch.source, torch.full((4, 3), PAD)], 1)
    torch.testing.assert_close(model(padded, batch.target_in), logits)
    one = batch.lengths.argmin()
    trimmed = batch.source[one:one + 1, :batch.lengths[one]]
    torch.testing.assert_close(model(trimmed, batch.target_in[one:one + 1]), logits[one:one + 1])
    assert model.greedy_decode(batch.source, BOS, 5).shape == (4, 5)


def test_learns_to_reverse_a_little():
    torch.manual_seed(0)
    model = Seq2SeqTransformer(REVERSAL_VOCAB, d_model=32, num_heads=4, d_ff=64, num_layers=1, max_len=16)

    def loss(step):
        b = reversal_batch(32, max_len=5)
        return F.cross_entropy(model(b.source, b.target_in).flatten(0, 1), b.target_out.flatten(), ignore_index=PAD)

    losses = train(model, loss, 80, lr=3e-3, warmup=8, progress=False)
    assert sum(losses[-5:]) / 5 < 0.75 * sum(losses[:5]) / 5
