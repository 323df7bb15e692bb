"""Teacher forcing: one chunk denoised against a context of *ground-truth* past frames.

``teacher_step``: the KV cache holds ground-truth past frames (noise-augmented, so the model
cannot just copy them) and/or the reference portrait as the sink; one chunk at one sampled
timestep predicts its clean frames (x0), scored by ``losses.chunk_loss``. The ``motion`` and
``reference`` stages train with it; ``self_forcing.py`` replaces the ground-truth context
by the model's own rollout.
"""

from __future__ import annotations

import numpy as np
import torch

from ..models.rollout import Sink
from .batches import Batch
from .losses import chunk_loss
from .step_context import StepContext


def stream_keep(batch: Batch, ctx: StepContext) -> dict[str, torch.Tensor]:
    """Independent per-sample dropout of each stream (classifier-free guidance per stream)."""
    size, stage = batch.identity.shape[0], ctx.stage

    def keep(p: float) -> torch.Tensor:
        return torch.from_numpy(ctx.local(ctx.rng.random(size * ctx.world)) >= p).to(batch.identity.device)

    return {
        "identity": keep(stage.drop_identity),
        "audio": keep(stage.drop_audio) & batch.has_audio,
        "camera": keep(stage.drop_camera),
    }


def sample_timesteps(ctx: StepContext, size: int, device: torch.device) -> torch.Tensor:
    """Half the samples at the few-step sampler's own timesteps, half uniform over [0, T)."""
    ctx.scheduler.set_timesteps(ctx.stage.num_inference_steps)
    few, total = ctx.scheduler.timesteps.numpy(), size * ctx.world
    uniform = ctx.rng.integers(0, ctx.scheduler.config.num_train_timesteps, total)
    chosen = np.where(ctx.rng.random(total) < 0.5, ctx.rng.choice(few, total), uniform)
    return torch.from_numpy(ctx.local(chosen)).long().to(device)


def add_noise(ctx: StepContext, clean: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """Noise ``[B, F, C, h, w]`` to per-sample ``timesteps`` ``[B]``."""
    noise = ctx.randn(tuple(clean.shape), clean.device).to(clean.dtype)
    per_frame = timesteps.repeat_interleave(clean.shape[1])
    return ctx.scheduler.add_noise(clean.flatten(0, 1), noise.flatten(0, 1), per_frame).view_as(clean)


def teacher_step(ctx: StepContext, batch: Batch) -> tuple[torch.Tensor, dict]:
    stage, unet = ctx.stage, ctx.unet
    past = 0 if ctx.rng.random() < stage.first_chunk_prob else stage.context_frames
    cache = unet.new_cache(window_frames=None)
    reference = None
    if ctx.rng.random() < stage.reference_prob:
        Sink.at(batch.reference, batch.identity).write(unet, cache)
        reference = batch.reference  # read pixel-aligned too by reference_concat models
    start = stage.context_frames
    if past:
        draw = ctx.rng.integers(0, stage.context_noise_t + 1, batch.identity.shape[0] * ctx.world)
        t_aug = torch.from_numpy(ctx.local(draw))
        t_aug = t_aug.long().to(batch.latents.device)
        context = add_noise(ctx, batch.latents[:, start - past : start], t_aug)
        conditions = unet.encode_conditions(
            batch.identity, batch.audio[:, start - past : start], batch.views[:, start - past : start]
        )
        cache.append(unet.encode_context(context, conditions, t_aug))
    frames = slice(start, start + stage.chunk_length)
    timesteps = sample_timesteps(ctx, batch.identity.shape[0], batch.latents.device)
    noisy = add_noise(ctx, batch.latents[:, frames], timesteps)
    conditions = unet.encode_conditions(
        batch.identity, batch.audio[:, frames], batch.views[:, frames], stream_keep(batch, ctx)
    )
    prediction = unet(noisy, timesteps, conditions, cache=cache if len(cache) else None, reference=reference)
    return chunk_loss(ctx, prediction, batch, frames)
