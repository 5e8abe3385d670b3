"""A tiny Vision Transformer (ViT): an image read as a sequence of patches.

Chapter 8 trains it on scikit-learn's 8×8 digits. The encoder is the shared
``EncoderLayer`` (pre-LN) from ``transformer.py``; what is new is only the way the
input becomes a sequence: :func:`patchify` cuts the image into square patches, a
linear layer embeds each patch (the paper's Eq. 1), a learned [CLS] token is prepended
and learned positional embeddings are added. :func:`patch_embedding_as_conv` builds
the convolution that many implementations use instead, with the same weights.
:func:`attention_rollout` (Abnar & Zuidema, 2020) follows attention through all layers.
"""
from __future__ import annotations

import torch
from torch import nn

from attention_course.transformer import EncoderLayer


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, num_patches, C * patch_size**2): the reference patchify.

    Patches are taken row by row (left to right, then top to bottom); each patch is
    flattened channel first, then row, then column, the same order as
    ``torch.nn.functional.unfold``.
    """
    batch, channels, height, width = images.shape
    p = patch_size
    if height % p or width % p:
        raise ValueError(f"image size {height}×{width} is not divisible"
                         f" by patch size {p}")
    # (B, C, rows, p, cols, p)
    grid = images.reshape(batch, channels, height // p, p, width // p, p)
    grid = grid.permute(0, 2, 4, 1, 3, 5)  # (B, rows, cols, C, p, p)
    return grid.reshape(batch, (height // p) * (width // p), channels * p * p)


def unpatchify(patches: torch.Tensor, patch_size: int, image_size: tuple[int, int],
               channels: int = 1) -> torch.Tensor:
    """The inverse of :func:`patchify`: (B, num_patches, C * p * p) -> (B, C, H, W)."""
    height, width = image_size
    p = patch_size
    batch = patches.shape[0]
    grid = patches.reshape(batch, height // p, width // p, channels, p, p)
    grid = grid.permute(0, 3, 1, 4, 2, 5)  # (B, C, rows, p, cols, p)
    return grid.reshape(batch, channels, height, width)


def patch_embedding_as_conv(linear: nn.Linear, patch_size: int,
                            channels: int = 1) -> nn.Conv2d:
    """The convolution that computes ``linear(patchify(images, patch_size))``.

    A convolution with kernel size and stride ``patch_size`` sees each patch exactly
    once; its kernel for output feature ``d`` is row ``d`` of the linear weight,
    reshaped to (channels, p, p). Its output (B, d_model, H/p, W/p), flattened over
    the grid and transposed, is the linear patch embedding.
    """
    p = patch_size
    conv = nn.Conv2d(channels, linear.out_features, kernel_size=p, stride=p)
    with torch.no_grad():
        conv.weight.copy_(linear.weight.reshape(linear.out_features, channels, p, p))
        conv.bias.copy_(linear.bias)
    return conv


class TinyViT(nn.Module):
    """Patch embedding + [CLS] + learned positions, pre-LN encoder layers, linear head.

    The head reads the final vector of [CLS].
    """

    def __init__(self, image_size: int = 8, patch_size: int = 2, channels: int = 1,
                 num_classes: int = 10, d_model: int = 64, num_heads: int = 4,
                 d_ff: int = 128, num_layers: int = 2, dropout: float = 0.0):
        super().__init__()
        self.patch_size = patch_size
        self.grid = image_size // patch_size
        num_patches = self.grid ** 2
        self.patch_embedding = nn.Linear(channels * patch_size ** 2, d_model)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d_model))
        positions = torch.randn(1, num_patches + 1, d_model) * 0.02
        self.position_embedding = nn.Parameter(positions)
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, num_heads, d_ff, dropout, norm_first=True)
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, 1 + num_patches, d_model).

        [CLS] comes first, then the patches in row order.
        """
        tokens = self.patch_embedding(patchify(images, self.patch_size))
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        return torch.cat([cls, tokens], dim=1) + self.position_embedding

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.embed(images)
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x[:, 0]))

    def attention_maps(self) -> list[torch.Tensor]:
        """Each layer's weights from the last forward pass, (B, heads, 1 + P, 1 + P)."""
        return [layer.attention_weights for layer in self.layers]


def attention_rollout(attentions, residual_weight: float = 0.5) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema, 2020) through a stack of layers.

    ``attentions``: per-layer weights (B, heads, n, n), first layer first. Heads are
    averaged; the residual connection is modelled by mixing in the identity,
    Â = residual_weight·I + (1 − residual_weight)·A (rows still sum to 1); the
    layers are composed, R = Â_L ··· Â_2 Â_1. Row i of R says how much of each
    input token flows into token i's final representation. Returns R, (B, n, n).
    """
    rollout = None
    for weights in attentions:
        mean = weights.mean(dim=1)
        eye = torch.eye(mean.shape[-1], dtype=mean.dtype, device=mean.device)
        mixed = residual_weight * eye + (1 - residual_weight) * mean
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        rollout = mixed if rollout is None else mixed @ rollout
    return rollout
