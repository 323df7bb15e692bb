"""Output dataclasses of ``STARCasterPipeline`` (diffusers keeps these in their own file)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from diffusers.utils import BaseOutput


@dataclass
class ChunkOutput(BaseOutput):
    """One finished autoregressive chunk, as ``STARCasterPipeline.stream`` yields it.

    ``frames``: uint8 ``[F, H, W, 3]`` (or float32 latents ``[F, C, h, w]`` with
    ``output_type="latent"``); ``start``: index of its first frame in the video.
    """

    frames: np.ndarray
    start: int
    index: int
    num_chunks: int
    total_frames: int
    azimuth: np.ndarray
    elevation: np.ndarray


@dataclass
class STARCasterPipelineOutput(BaseOutput):
    """A whole generated clip.

    ``frames``: uint8 ``[T, H, W, 3]`` (latents with ``output_type="latent"``); ``audio``:
    float32 mono samples at ``sample_rate`` that the video is in sync with (None for a
    frozen-time sweep); ``azimuth``/``elevation``: the per-frame view in degrees;
    ``identity_embedding``: the 512-D identity actually used (to save and reuse).
    """

    frames: np.ndarray
    fps: float
    audio: np.ndarray | None
    sample_rate: int
    azimuth: np.ndarray
    elevation: np.ndarray
    identity_embedding: np.ndarray
