"""Self-forcing: the model rolls out chunks from its *own* output during training, as at inference.

``self_forcing_step`` runs the one ``Rollout`` (``models/rollout.py``) the pipeline runs: the
same sink, the same starting noise and sharing, the same few-step sampler, each clean chunk
written into the KV cache — only over a longer window than inference uses (``train_window``),
so the model learns to continue from its own imperfect frames. Each chunk gets a gradient at
one random denoising step (Self-Forcing); every other step and every cache write are without.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..models.rollout import Rollout, RolloutChunk, Sink
from .batches import Batch
from .losses import chunk_loss
from .step_context import StepContext


def training_rollout(ctx: StepContext, batch: Batch, sink: Sink | None) -> Rollout:
    """The stage's rollout over ``batch``: noise from torch's global generator, this process's rows."""
    stage, noise = ctx.stage, ctx.rollout_noise(batch.latents)
    return Rollout(
        ctx.unet, ctx.scheduler, noise, stage.num_inference_steps, stage.train_window, sink, stage.noise_sharing
    )


def rollout_chunks(ctx: StepContext, batch: Batch, sink: Sink | None) -> Iterator[tuple[slice, RolloutChunk]]:
    """``(frames, chunk)`` for each of the stage's ``rollout_chunks`` chunks, each with its one gradient step."""
    stage = ctx.stage
    rollout = training_rollout(ctx, batch, sink)
    for k in range(stage.rollout_chunks):
        frames = slice(k * stage.chunk_length, (k + 1) * stage.chunk_length)
        gradient_step = int(ctx.rng.integers(stage.num_inference_steps))
        yield frames, rollout.chunk(batch.identity, batch.audio[:, frames], batch.views[:, frames], gradient_step)


def self_forcing_step(ctx: StepContext, batch: Batch) -> tuple[torch.Tensor, dict]:
    stage = ctx.stage
    sink = Sink.at(batch.reference, batch.identity) if ctx.rng.random() < stage.reference_prob else None
    total, parts = 0.0, {}
    for frames, chunk in rollout_chunks(ctx, batch, sink):
        loss, parts = chunk_loss(ctx, chunk.prediction, batch, frames)
        total = total + loss / stage.rollout_chunks
    return total, parts
