"""A lossless, parameter-free "autoencoder": pixel-unshuffle latents for the 64² demo.

Why: the demo's learned ``AutoencoderKL`` (6× compression, trained 12 minutes on 2 cores)
reconstructed SynthTalk frames at 21.5 dB, and the identity expert gave its *own
reconstructions of ground-truth frames* identity_cos 0.50 (0.92 for the frames themselves):
every checkpoint trained on those latents was capped there, whatever the denoiser learned.
Folding each 4×4 pixel patch into channels (64²×3 → 48×16²) keeps the UNet's 16×16 token
grid and costs nothing, and decoding is exact — the feasibility prototype's pixel-unshuffle
route (docs/architecture.md, "Latent space").

It speaks the slice of ``AutoencoderKL``'s interface the pipeline and trainer use
(``encode(x).latent_dist.mode()/.sample()/.kl()``, ``decode(z).sample``,
``config.scaling_factor``, ``config.sample_size``), so it is a drop-in ``vae`` component
that saves and loads as a Hub-style folder like any diffusers model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.models.modeling_utils import ModelMixin

_POINT_MASS_LOGVAR = -30.0  # a deterministic encoder: the "posterior" has (numerically) zero variance


class PixelUnshuffleVAE(ModelMixin, ConfigMixin):
    """``[B, 3, H, W]`` ↔ ``[B, 3·f², H/f, W/f]`` by pixel (un)shuffle; the pipeline scales by ``scaling_factor``."""

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        downscale_factor: int = 4,
        sample_size: int = 64,
        scaling_factor: float = 1.0,
    ):
        super().__init__()
        # No weights, but ModelMixin reads dtype/device from a tensor and loads from a weights
        # file: one saved scalar buffer gives both (and travels with .to()).
        self.register_buffer("anchor", torch.zeros(1))

    @property
    def latent_channels(self) -> int:
        return self.config.in_channels * self.config.downscale_factor**2

    def encode(self, x: torch.Tensor, return_dict: bool = True):
        latents = F.pixel_unshuffle(x, self.config.downscale_factor)
        moments = torch.cat([latents, torch.full_like(latents, _POINT_MASS_LOGVAR)], dim=1)
        posterior = DiagonalGaussianDistribution(moments, deterministic=True)
        return AutoencoderKLOutput(latent_dist=posterior) if return_dict else (posterior,)

    def decode(self, z: torch.Tensor, return_dict: bool = True, **_):
        pixels = F.pixel_shuffle(z, self.config.downscale_factor)
        return DecoderOutput(sample=pixels) if return_dict else (pixels,)

    def forward(self, sample: torch.Tensor, return_dict: bool = True):
        return self.decode(self.encode(sample).latent_dist.mode(), return_dict=return_dict)
