"""The ViT pieces: patchify against torch's unfold, the model's shapes, attention rollout."""
import pytest
import torch
import torch.nn.functional as F

from attention_course.vit import (
    TinyViT,
    attention_rollout,
    patch_embedding_as_conv,
    patchify,
    unpatchify,
)


@pytest.mark.parametrize("shape, p", [((2, 1, 8, 8), 2), ((3, 3, 12, 16), 4), ((1, 2, 6, 6), 3)])
def test_patchify_matches_unfold_and_unpatchify_inverts(shape, p):
    x = torch.randn(*shape)
    patches = patchify(x, p)
    assert torch.equal(patches, F.unfold(x, kernel_size=p, stride=p).transpose(1, 2))
    assert torch.equal(unpatchify(patches, p, shape[2:], channels=shape[1]), x)


def test_patchify_orders_patches_row_by_row():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    patches = patchify(x, 2)
    assert patches[0, 1].tolist() == [2.0, 3.0, 6.0, 7.0]  # top row, second column
    assert patches[0, 2].tolist() == [8.0, 9.0, 12.0, 13.0]  # second row, first column


def test_patchify_rejects_sizes_not_divisible_by_the_patch():
    with pytest.raises(ValueError, match="divisible"):
        patchify(torch.zeros(1, 1, 7, 8), 2)


@pytest.mark.parametrize("channels, p", [(1, 2), (3, 4)])
def test_patch_embedding_as_conv_is_the_linear_map(channels, p):
    torch.manual_seed(3)
    linear = torch.nn.Linear(channels * p * p, 8)
    x = torch.randn(2, channels, 4 * p, 2 * p)
    conv = patch_embedding_as_conv(linear, p, channels)
    with torch.no_grad():
        as_conv = conv(x).flatten(2).transpose(1, 2)
        torch.testing.assert_close(as_conv, linear(patchify(x, p)))


def test_vit_shapes_and_attention_maps():
    torch.manual_seed(0)
    model = TinyViT(image_size=8, patch_size=2, num_layers=3).eval()
    logits = model(torch.rand(5, 1, 8, 8))
    assert logits.shape == (5, 10)
    maps = model.attention_maps()
    assert len(maps) == 3 and maps[0].shape == (5, 4, 17, 17)
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(5, 4, 17))


def test_vit_without_positions_ignores_patch_order():
    torch.manual_seed(1)
    model = TinyViT().eval()
    x = torch.rand(3, 1, 8, 8)
    shuffled = unpatchify(patchify(x, 2)[:, torch.randperm(16)], 2, (8, 8))
    with torch.no_grad():
        model.position_embedding.zero_()
        torch.testing.assert_close(model(x), model(shuffled), atol=1e-5, rtol=1e-5)


def test_attention_rollout_composes_layers_with_the_residual_identity():
    torch.manual_seed(2)
    layers = [torch.softmax(torch.randn(2, 3, 5, 5), dim=-1) for _ in range(3)]
    mixed = [0.5 * torch.eye(5) + 0.5 * w.mean(1) for w in layers]
    expected = mixed[2] @ mixed[1] @ mixed[0]
    rollout = attention_rollout(layers)
    torch.testing.assert_close(rollout, expected)
    torch.testing.assert_close(rollout.sum(-1), torch.ones(2, 5))
    torch.testing.assert_close(attention_rollout(layers[:1], residual_weight=0.0), layers[0].mean(1))
