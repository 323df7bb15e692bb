"""What every video-model training step is given (``StepContext``), and its share of the random draws.

The steps are ``teacher_forcing.teacher_step``, ``self_forcing.self_forcing_step`` and
``distillation.distill_step``; their losses are in ``losses.py``. Under data parallelism each process draws every random value for the
whole global batch (same seeds everywhere) and keeps its own rows, so N processes on B rows each
make exactly the update of one process on N·B rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..models.rollout import NoiseSource, draw_rows
from ..models.unet import STARCasterUNet
from .config import StageConfig


@dataclass
class StepContext:
    unet: STARCasterUNet
    scheduler: object
    vae: torch.nn.Module
    stage: StageConfig
    rng: np.random.Generator
    lip_expert: torch.nn.Module | None = None
    identity_encoder: torch.nn.Module | None = None  # frozen; used by the identity loss
    teacher: STARCasterUNet | None = None  # frozen; the ``distill`` stage's (training/distillation.py)
    prior: torch.nn.Module | None = None  # the identity prior: ``distill``'s identity-only portraits
    rank: int = 0  # data parallel: this process holds rows [rank·B, (rank+1)·B) of the global batch
    world: int = 1
    view_expert: torch.nn.Module | None = None  # frozen pose regressor of the view loss

    def local(self, values):
        """This process's rows of per-sample random values drawn for the whole global batch."""
        size = len(values) // self.world
        return values[self.rank * size : (self.rank + 1) * size]

    def randn(self, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        """Standard normal noise of local shape ``[B, ...]``, this process's rows of the global draw."""
        return draw_rows(shape, None, device, torch.float32, self.rank, self.world)

    def rollout_noise(self, latents: torch.Tensor) -> NoiseSource:
        """A rollout's starting noise for ``latents`` ``[B, T, C, h, w]``: torch's global generator,
        this process's rows of the global draw (self-forcing and distillation rollouts)."""
        frame_shape = (latents.shape[0], *latents.shape[2:])  # (B, C, h, w)
        return NoiseSource(frame_shape, None, latents.device, latents.dtype, self.rank, self.world)
