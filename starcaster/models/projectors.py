"""Condition projectors: identity, audio and camera → cross-attention tokens.

Each projector owns learned ``null_tokens``: the "dropped" version of its stream, used for
per-stream classifier-free guidance (training drops streams independently; sampling runs a
pass with the stream replaced by its null tokens).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class _StreamProjector(nn.Module):
    """Shared null-token logic; subclasses implement ``project``."""

    num_tokens: int

    def __init__(self, num_tokens: int, dim: int):
        super().__init__()
        self.num_tokens = num_tokens
        self.null_tokens = nn.Parameter(torch.zeros(num_tokens, dim))

    def forward(self, inputs: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """``[N, ...]`` inputs → ``[N, num_tokens, dim]``; rows with ``keep == False`` become null."""
        tokens = self.project(inputs)
        if keep is None:
            return tokens
        null = self.null_tokens.to(tokens.dtype).expand_as(tokens)
        return torch.where(keep.view(-1, 1, 1), tokens, null)

    def project(self, inputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class IdentityProjector(_StreamProjector):
    """512-D ArcFace-style embedding → ``num_tokens`` identity tokens (demo config).

    A small MLP: the embedding is the only appearance signal in identity-only mode, so it
    gets several tokens rather than one.
    """

    def __init__(self, embed_dim: int, dim: int, num_tokens: int):
        super().__init__(num_tokens, dim)
        self.net = nn.Sequential(nn.Linear(embed_dim, 4 * dim), nn.SiLU(), nn.Linear(4 * dim, num_tokens * dim))
        self.norm = nn.LayerNorm(dim)

    def project(self, embedding: torch.Tensor) -> torch.Tensor:  # [N, 512] → [N, T, D]
        return self.norm(self.net(embedding).unflatten(-1, (self.num_tokens, -1)))


class AudioProjector(_StreamProjector):
    """Per-frame audio window ``[N, W, n_mels]`` → ``W`` tokens (one per window step)."""

    def __init__(self, n_mels: int, window: int, dim: int, dropout: float = 0.1):
        super().__init__(window, dim)
        self.input = nn.Linear(n_mels, dim)
        self.position = nn.Parameter(torch.randn(window, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            dim, nhead=max(1, dim // 64), dim_feedforward=2 * dim, dropout=dropout, batch_first=True
        )
        self.mixer = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)

    def project(self, features: torch.Tensor) -> torch.Tensor:
        return self.mixer(self.input(features) + self.position)


def fourier_features(angles_deg: torch.Tensor, num_bands: int) -> torch.Tensor:
    """Angles ``[N, A]`` in degrees → ``[N, A * 2 * num_bands]`` (sin, cos of k·angle, k = 1..K).

    Periodic in 360°, so an orbit's 180° and -180° are the same view.
    """
    k = torch.arange(1, num_bands + 1, device=angles_deg.device, dtype=angles_deg.dtype)
    phase = angles_deg.unsqueeze(-1) * (math.pi / 180.0) * k  # [N, A, K]
    return torch.cat([phase.sin(), phase.cos()], dim=-1).flatten(1)


class CameraProjector(_StreamProjector):
    """Per-frame (azimuth, elevation) in degrees ``[N, 2]`` → ``num_tokens`` camera tokens."""

    def __init__(self, dim: int, num_tokens: int, num_bands: int):
        super().__init__(num_tokens, dim)
        self.num_bands = num_bands
        self.net = nn.Sequential(nn.Linear(4 * num_bands, 2 * dim), nn.SiLU(), nn.Linear(2 * dim, num_tokens * dim))

    def project(self, angles: torch.Tensor) -> torch.Tensor:
        return self.net(fourier_features(angles, self.num_bands)).unflatten(-1, (self.num_tokens, -1))


# "photo of a id person" in the openai/clip-vit-large-patch14 tokenizer (Arc2Face's prompt);
# position 4 (the "id" token) receives the zero-padded ArcFace embedding, so its own id is moot.
ARC2FACE_PROMPT_IDS = (49406, 1125, 539, 320, 1579, 2533, 49407)
ARC2FACE_ID_POSITION = 4


class Arc2FaceIdentityProjector(_StreamProjector):
    """Arc2Face's identity projection: the ArcFace vector placed in CLIP text-encoder tokens.

    The 512-D embedding is zero-padded to the encoder width and written over the "id" token
    of "photo of a id person"; the CLIP text encoder then produces 77 tokens, exactly as
    Arc2Face conditions its SD-1.5 UNet, so its ``encoder/`` weights load here unchanged.
    """

    def __init__(self, clip_config: dict, embed_dim: int = 512, max_length: int = 77):
        from transformers import CLIPTextConfig, CLIPTextModel

        config = CLIPTextConfig(**clip_config)
        super().__init__(max_length, config.hidden_size)
        self.embed_dim = embed_dim
        self.clip = CLIPTextModel(config)
        ids = list(ARC2FACE_PROMPT_IDS) + [ARC2FACE_PROMPT_IDS[-1]] * (max_length - len(ARC2FACE_PROMPT_IDS))
        self.register_buffer("prompt_ids", torch.tensor(ids), persistent=False)

    def project(self, embedding: torch.Tensor) -> torch.Tensor:  # [N, 512] → [N, 77, D]
        ids = self.prompt_ids.expand(len(embedding), -1)
        token_embeds = self.clip.embeddings.token_embedding(ids).clone()
        padded = nn.functional.pad(embedding, (0, token_embeds.shape[-1] - self.embed_dim))
        token_embeds[:, ARC2FACE_ID_POSITION] = padded.to(token_embeds.dtype)
        hidden = self.clip.embeddings(inputs_embeds=token_embeds)
        hidden = self.clip.encoder(inputs_embeds=hidden, attention_mask=None, is_causal=True).last_hidden_state
        return self.clip.final_layer_norm(hidden)
