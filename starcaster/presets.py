"""Build a fresh pipeline from a named model preset (random weights, for tests and training).

One job: ``build_pipeline``. The presets themselves (architecture hyper-parameters) live in
``models/configs.py``; the training recipe's settings in ``training/config.py``.
"""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler

from .models.autoencoders import build_vae
from .models.configs import get_preset
from .models.identity_encoder import IdentityEncoder
from .models.unet import STARCasterUNet
from .pipeline import STARCasterPipeline


def build_pipeline(preset: str = "tiny", seed: int = 0, **unet_overrides) -> STARCasterPipeline:
    """A randomly initialised ``STARCasterPipeline`` of ``preset`` (``tiny``/``demo``/``real``)."""
    spec = get_preset(preset)
    torch.manual_seed(seed)
    unet = STARCasterUNet(**{**spec.unet, **unet_overrides})
    vae = build_vae(spec)
    encoder = IdentityEncoder(**spec.identity_encoder) if spec.identity_encoder is not None else None
    pipe = STARCasterPipeline(unet=unet, vae=vae, scheduler=DDIMScheduler(**spec.scheduler), identity_encoder=encoder)
    pipe.set_progress_bar_config(disable=True)
    return pipe
