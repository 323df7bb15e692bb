"""Stage 0a: the per-frame autoencoder for 64² SynthTalk frames.

A learned ``AutoencoderKL`` (preset ``demo-kl``, ``tiny``): reconstruction (MSE) plus a tiny
KL term. The pixel-unshuffle one (preset ``demo``) has nothing to learn. Either way the
latent scaling factor is then set to 1/std of the training latents so the diffusion model
sees unit-variance latents.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL

from ..data.shards import load_manifest
from ..models.autoencoders import build_vae, is_learned, load_vae_folder
from ..models.configs import get_preset
from ..pixels import to_pixels
from .config import RecipeConfig
from .data import endless
from .trainer import LoopSettings, train

logger = logging.getLogger(__name__)


def frame_pixels(sample: dict, device: torch.device) -> torch.Tensor:
    """A batch's uint8 frames ``[B, T, H, W, 3]`` → pixels ``[B*T, 3, H, W]`` on ``device``."""
    return to_pixels(torch.as_tensor(sample["frames"]).to(device)).flatten(0, 1)


def vae_step(vae: AutoencoderKL, kl_weight: float):
    def step(sample: dict) -> tuple[torch.Tensor, dict]:
        pixels = frame_pixels(sample, vae.device)  # [B*T, 3, H, W]
        posterior = vae.encode(pixels).latent_dist
        reconstruction = vae.decode(posterior.sample()).sample
        mse = F.mse_loss(reconstruction.float(), pixels)
        kl = posterior.kl().mean()
        return mse + kl_weight * kl, {"mse": mse.item(), "kl": kl.item()}

    return step


@torch.no_grad()
def calibrate_scaling(vae: AutoencoderKL, batches, count: int = 8) -> float:
    latents = [vae.encode(frame_pixels(next(batches), vae.device)).latent_dist.mode() for _ in range(count)]
    return float(1.0 / torch.cat(latents).std())


@torch.no_grad()
def reconstruction_psnr(vae: AutoencoderKL, batches, count: int = 8) -> float:
    errors = []
    for _ in range(count):
        pixels = frame_pixels(next(batches), vae.device)
        out = vae.decode(vae.encode(pixels).latent_dist.mode()).sample.clamp(-1, 1)
        errors.append(F.mse_loss(out, pixels).item() / 4.0)  # [-1, 1] → [0, 1] range
    error = float(np.mean(errors))
    return 10 * math.log10(1.0 / error) if error > 0 else math.inf  # pixel-unshuffle: exact


def record_psnr(vae: AutoencoderKL, cfg: RecipeConfig, folder: Path) -> float:
    """Held-out reconstruction PSNR, also written to ``folder/psnr.txt``."""
    split = cfg.data / "val"
    if not load_manifest(split).get("clips"):  # e.g. prepared data without held-out videos
        logger.warning("%s has no clips: the VAE's PSNR is measured on the training split", split)
        split = cfg.data / "train"
    psnr = reconstruction_psnr(vae.eval(), endless(split, 2, 4, ("talking", "multiview"), cfg.seed + 1))
    (folder / "psnr.txt").write_text(f"{psnr:.2f}\n")
    return psnr


def refined_decoder(out: Path) -> Path | None:
    """The finished ``decoder`` stage's folder in run folder ``out``, if there is one."""
    final = out / "decoder" / "final"
    return final if (final / "config.json").is_file() else None


def train_vae(cfg: RecipeConfig) -> tuple[AutoencoderKL, float]:
    """Train (or resume) the VAE; returns it with its held-out reconstruction PSNR (dB)."""
    folder = cfg.out / "vae"
    final = folder / "final"
    if (final / "config.json").is_file():
        vae = load_vae_folder(final)
    else:
        torch.manual_seed(cfg.seed)
        vae = build_vae(get_preset(cfg.preset))
        batches = endless(cfg.data / "train", 2, cfg.vae.batch_size // 2, ("talking", "multiview"), cfg.seed)
        if is_learned(vae):
            vae = _fit_vae(cfg, folder, vae, batches)
        vae.register_to_config(scaling_factor=calibrate_scaling(vae, batches))
        vae.save_pretrained(final)
    psnr = record_psnr(vae, cfg, folder)
    return vae.eval().requires_grad_(False), psnr


def _fit_vae(cfg: RecipeConfig, folder: Path, vae: AutoencoderKL, batches) -> AutoencoderKL:
    v = cfg.vae
    settings = LoopSettings(v.steps, v.lr, cfg.bf16, None, cfg.grad_clip, cfg.log_every, cfg.save_every, v.max_minutes)
    return train("vae", folder, vae, list(vae.parameters()), batches, vae_step(vae, v.kl_weight), settings)


def decoder_step(vae: AutoencoderKL, latent_noise: float):
    """L1 + MSE from the frozen encoder's latents (noised a little, like a denoiser's imperfect output)."""

    def step(sample: dict) -> tuple[torch.Tensor, dict]:
        pixels = frame_pixels(sample, vae.device)
        with torch.no_grad():
            latents = vae.encode(pixels).latent_dist.mode()
            scale = latent_noise * latents.std() * torch.rand(len(latents), 1, 1, 1)
            latents = latents + scale * torch.randn_like(latents)
        reconstruction = vae.decode(latents).sample.float()
        l1, mse = F.l1_loss(reconstruction, pixels), F.mse_loss(reconstruction, pixels)
        return l1 + mse, {"l1": l1.item(), "mse": mse.item()}

    return step


def refine_decoder(cfg: RecipeConfig, vae: AutoencoderKL) -> AutoencoderKL:
    """Train only the decoder (encoder frozen, so the latent space and every UNet trained on it stay valid).

    The decoder is what turns the denoiser's latents into pixels: a blurry one caps identity and
    lip-reading metrics for every checkpoint (run 2's VAE: 20 dB, identity_cos of its own
    reconstructions 0.47 against 0.92 for the renders). Refining it is cheap and needs no retraining
    of the video stages.
    """
    folder = cfg.out / "decoder"
    finished = refined_decoder(cfg.out)
    if finished is not None:
        return load_vae_folder(finished)
    if not is_learned(vae):
        return vae  # pixel-unshuffle decodes exactly: nothing to refine
    vae = vae.train()
    parameters = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
    d = cfg.decoder
    batches = endless(cfg.data / "train", 2, d.batch_size // 2, ("talking", "multiview"), cfg.seed + 7)
    settings = LoopSettings(d.steps, d.lr, cfg.bf16, None, cfg.grad_clip, cfg.log_every, cfg.save_every, d.max_minutes)
    vae = train("decoder", folder, vae, parameters, batches, decoder_step(vae, d.latent_noise), settings)
    vae.save_pretrained(folder / "final")
    record_psnr(vae, cfg, folder)
    return vae.requires_grad_(False)


def load_vae(out: Path) -> AutoencoderKL:
    """The run's VAE: the refined decoder's when the ``decoder`` stage ran, else stage 0's."""
    return load_vae_folder(refined_decoder(out) or out / "vae" / "final")
