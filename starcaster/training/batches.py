"""Dataset samples → model-ready tensors, computed once per batch without gradients.

Frames become VAE latents, the reference portrait becomes the identity embedding (through
the frozen identity encoder) and reference latents, the audio features (made by the data
loader's ``collate_audio_features``) become a tensor, and a
per-pixel weight map marks what moves in the window (mostly the mouth: the FEASIBILITY runs
found the mouth, ~1 % of the pixels, is ignored without a targeted loss).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange

from ..pixels import to_pixels


@dataclass
class Batch:
    latents: torch.Tensor  # [B, T, C, h, w] scaled VAE latents of the frames
    pixels: torch.Tensor  # [B, T, 3, H, W] frames in [-1, 1]
    reference: torch.Tensor  # [B, 1, C, h, w] latents of the frontal portrait
    reference_pixels: torch.Tensor  # [B, 3, H, W] the frontal portrait itself, in [-1, 1]
    identity: torch.Tensor  # [B, 512] identity embeddings of the portrait
    audio: torch.Tensor  # [B, T, W, M] audio features per frame
    views: torch.Tensor  # [B, T, 2] azimuth, elevation in degrees
    has_audio: torch.Tensor  # [B] bool (False for multi-view static sets)
    weights: torch.Tensor  # [B, T, 1, h, w] loss weights (≥ 1, larger where frames move)

    @property
    def frames(self) -> int:
        return self.latents.shape[1]


@torch.no_grad()
def encode_latents(vae, pixels: torch.Tensor) -> torch.Tensor:
    """``[B, T, 3, H, W]`` → scaled latents ``[B, T, C, h, w]`` (distribution mode: deterministic)."""
    flat = vae.encode(pixels.flatten(0, 1)).latent_dist.mode() * vae.config.scaling_factor
    return rearrange(flat, "(b t) c h w -> b t c h w", b=pixels.shape[0])


def motion_weights(pixels: torch.Tensor, latent_size: int, strength: float) -> torch.Tensor:
    """1 + strength · (per-pixel deviation from the window's mean frame, normalised to mean 1)."""
    deviation = (pixels - pixels.mean(1, keepdim=True)).abs().mean(2, keepdim=True)  # [B, T, 1, H, W]
    pooled = F.adaptive_avg_pool2d(deviation.flatten(0, 1), latent_size).view(
        *deviation.shape[:3], latent_size, latent_size
    )
    normalised = pooled / pooled.mean((1, 2, 3, 4), keepdim=True).clamp_min(1e-6)
    return 1.0 + strength * normalised.clamp(max=4.0)


@torch.no_grad()
def prepare_batch(
    sample: dict, vae, identity_encoder, motion_strength: float, device: torch.device | str = "cpu"
) -> Batch:
    """A ``collate_audio_features`` batch on ``device`` (the models'): uint8 frames travel, floats are made there."""
    pixels = to_pixels(torch.as_tensor(sample["frames"]).to(device))  # [B, T, 3, H, W]
    latents = encode_latents(vae, pixels)
    reference_pixels = to_pixels(torch.as_tensor(sample["reference"]).to(device))[:, None]  # [B, 1, 3, H, W]
    identity = identity_encoder(
        F.interpolate(reference_pixels[:, 0], size=identity_encoder.config.image_size, mode="area")
    )
    views = torch.stack([torch.as_tensor(sample["azimuth"]), torch.as_tensor(sample["elevation"])], -1).float()
    return Batch(
        latents=latents,
        pixels=pixels,
        reference=encode_latents(vae, reference_pixels),
        reference_pixels=reference_pixels[:, 0],
        identity=identity.float(),
        audio=torch.as_tensor(sample["audio_features"]).float().to(device),
        views=views.to(device),
        has_audio=torch.as_tensor(sample["has_audio"]).bool().to(device),
        weights=motion_weights(pixels, latents.shape[-1], motion_strength),
    )


PORTRAIT_SOURCES = ("reference", "prior", "none")


def portrait_pixels(batch: Batch, source: str, prior) -> torch.Tensor | None:
    """Pixels ``[B, 3, H, W]`` of the portrait inference would use, or None (identity tokens only).

    ``source``: the dataset's reference portrait, the identity prior's portrait of the embedding
    (identity-only mode, as ``imagine_portrait`` gives it: a picture) or none.
    """
    if source == "reference":
        return batch.reference_pixels
    if source == "prior":
        return prior(batch.identity).float().clamp(-1, 1)
    return None
