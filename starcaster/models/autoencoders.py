"""Which per-frame autoencoder a preset or a saved folder uses: diffusers' ``AutoencoderKL`` or ``PixelUnshuffleVAE``."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL

from .configs import ModelPreset
from .pixel_vae import PixelUnshuffleVAE

VAE_CLASSES = {cls.__name__: cls for cls in (AutoencoderKL, PixelUnshuffleVAE)}


def build_vae(spec: ModelPreset):
    """A fresh (random, or for pixel-unshuffle exact) autoencoder for ``spec``."""
    return VAE_CLASSES[spec.vae_class](**spec.vae)


def load_vae_folder(folder: Path):
    """Load a saved autoencoder folder as the class its ``config.json`` names, in fp32, frozen."""
    name = json.loads((Path(folder) / "config.json").read_text()).get("_class_name", "AutoencoderKL")
    if name not in VAE_CLASSES:
        raise ValueError(f"{folder}: unknown autoencoder class {name!r}; expected one of {sorted(VAE_CLASSES)}.")
    return VAE_CLASSES[name].from_pretrained(folder, dtype=torch.float32).eval().requires_grad_(False)


def is_learned(vae) -> bool:
    """Whether the autoencoder has weights to train (the pixel-unshuffle one has none)."""
    return isinstance(vae, AutoencoderKL)
