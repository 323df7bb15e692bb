"""The built-in identity encoder: a small ArcFace-style CNN shipped in ``identity_encoder/``.

Real checkpoints use insightface's ArcFace (ONNX, from the Hub); the demo checkpoint is
trained on SynthTalk renders, whose "identities" are parametric heads ArcFace was never
trained on, so it ships its own encoder trained with an angular-margin loss. Like ArcFace it
keeps spatial layout until the end (flatten + linear rather than global pooling: where a
feature sits on the face matters for identity) and outputs unit vectors, so cosine
similarity is the identity metric and embeddings are interchangeable with the rest of the
512-D identity plumbing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from .weight_storage import Int8StorageMixin


def _groups(channels: int) -> int:
    """GroupNorm groups: 8 where possible; batch-size independent, unlike BatchNorm."""
    return 8 if channels % 8 == 0 else 1


class _ResidualBlock(nn.Module):
    """Pre-activation basic block; ``stride`` 2 halves the resolution."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(in_channels), in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(_groups(out_channels), out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        needs_projection = stride != 1 or in_channels != out_channels
        self.skip = (
            nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False) if needs_projection else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, Cin, H, W] → [B, Cout, H/s, W/s]
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class IdentityEncoder(Int8StorageMixin, ModelMixin, ConfigMixin):
    """Face crop ``[B, 3, image_size, image_size]`` in [-1, 1] → ``[B, embed_dim]`` unit vectors.

    Each entry of ``channels`` is one stage of ``blocks_per_stage`` residual blocks, the first
    of which halves the resolution, so the final map is ``image_size / 2**len(channels)``
    pixels a side; it is flattened into the embedding layer (ArcFace's "E" head).
    """

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        image_size: int = 64,
        embed_dim: int = 512,
        channels: tuple[int, ...] = (32, 64, 128, 256),
        blocks_per_stage: int = 1,
        stem_channels: int = 32,
        dropout: float = 0.0,
    ):
        super().__init__()
        final_side = image_size // 2 ** len(channels)
        if final_side < 1 or image_size % 2 ** len(channels):
            raise ValueError(f"image_size {image_size} must be divisible by 2**len(channels) = {2 ** len(channels)}.")
        self.stem = nn.Conv2d(3, stem_channels, 3, padding=1, bias=False)
        stages, in_channels = [], stem_channels
        for out_channels in channels:
            for index in range(blocks_per_stage):
                stages.append(_ResidualBlock(in_channels, out_channels, stride=2 if index == 0 else 1))
                in_channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.norm_out = nn.GroupNorm(_groups(in_channels), in_channels)
        self.head_dropout = nn.Dropout(dropout)
        self.embedding = nn.Linear(in_channels * final_side * final_side, embed_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        size = self.config.image_size
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[-2:] != (size, size):
            raise ValueError(f"IdentityEncoder expects [B, 3, {size}, {size}] images; got {tuple(images.shape)}.")
        h = self.stages(self.stem(images))  # [B, C, s, s] with s = image_size / 2**stages
        h = F.silu(self.norm_out(h)).flatten(1)  # [B, C*s*s]
        return F.normalize(self.embedding(self.head_dropout(h)), dim=-1)  # [B, embed_dim]
