"""The user's options for one generation run, in a module that imports nothing heavy.

``GenerationRequest``'s defaults are the project's defaults: the pipeline, the CLI flags, the
app's controls and the evaluation harness read them from here, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

    from .audio import AudioSource


@dataclass
class GenerationRequest:
    """The user's options for one run (the arguments of ``__call__``/``stream``)."""

    audio: AudioSource
    identity_embedding: object = None
    image: object = None
    azimuth: float | np.ndarray = 0.0
    elevation: float | np.ndarray = 0.0
    camera_path: str | None = None
    chunk_length: int = 4
    num_inference_steps: int = 1  # one x0 step: the evaluation holds at 1 (docs/performance.md), 2.5× faster than 4
    guidance_scale_audio: float = 1.0
    guidance_scale_identity: float = 1.0
    guidance_scale_camera: float = 1.0
    generator: torch.Generator | None = None
    fps: float = 25
    output_type: str = "np"
    context_frames: int | None = 8
    num_frames: int | None = None
    sweep_time: float | None = None
    reference_view: tuple[float, float] = (0.0, 0.0)
    context_mode: str = "cache"
    trim_silence: bool = False
    max_audio_seconds: float | None = None
    precision: str = "fp32"
    noise_sharing: float = 1.0
    use_identity_prior: bool = True  # identity-only mode: anchor on the prior's portrait, if the checkpoint has one
    use_refiner: bool = True  # redraw fine detail with the checkpoint's frame refiner, if it has one
    refiner_smoothing: float = 0.5  # share of the previous frame's refiner correction kept (temporal EMA)
