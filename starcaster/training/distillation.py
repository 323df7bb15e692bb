"""Stage kind ``distill``: a lighter student learns the finished few-step model's rollouts.

Why: on two CPU cores the bundled denoiser (channels 64/96/128, four heads) and its reference
encoder cost ≈ 155 ms per chunk of four frames, so generation runs at ≈ 1.3 s per video second;
a live stream with headroom needs ≈ 0.5 (docs/performance.md, "Live"). Most of that is the
extended self-attention's softmax over 1 024 queries × 2 304 keys *per head* and per-op overhead,
so a narrower student with one head per layer costs about half. It cannot be trained from the
data alone in a CPU session; it can learn to reproduce the teacher, whose one-step map
``(noise, conditions, context) → chunk`` is deterministic at ``noise_sharing = 1``.

One step (``distill_step``):

1. the teacher rolls out ``rollout_chunks`` chunks exactly as inference does (the one
   ``Rollout`` of ``models/rollout.py``: sink = the portrait, window ``train_window``, its own
   frames as context, ``num_inference_steps`` steps) — the student's targets;
2. the student denoises the same starting noise for each chunk, its cache holding the same
   portrait and the *teacher's* previous frames, encoded by the student's own reference encoder
   with gradients (so denoiser, reference encoder and condition projectors all learn: teacher
   forcing along the teacher's trajectory) — or, for a ``context_source="denoiser"`` student, the
   keys/values of its own passes over the previous chunks, as it will have at inference;
3. loss: motion-weighted MSE to the teacher's chunk (``losses.chunk_loss`` with the teacher's
   target; + the lip-reading loss against the ground truth when ``lip_weight`` > 0, + the view loss
   when ``view_weight`` > 0: a pose regressor must read the requested camera in the decoded chunk).

With ``on_policy_prob`` > 0 a share of steps instead rolls the *student* out on its own frames
(no gradient through the context it wrote, as in self-forcing) and the target of each chunk is
the teacher's prediction given those same frames: what the teacher would have done from where
the student actually is, so errors that would compound over a long video are corrected (the
DAgger idea; the phase after teacher forcing in ``configs/distill.yaml``). Portraits are
the dataset's reference with probability ``1 - prior_prob``, else the identity prior's portrait
of the embedding: the identity-only mode's sink at inference. ``student_from`` makes the student:
the teacher's settings with ``StageConfig.student``'s changes, the condition projectors (whose
tokens do not depend on the UNet's width) copied from the teacher.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..models.kv_cache import KVCache
from ..models.rollout import Rollout, Sink
from ..models.sampling import denoise_steps
from ..models.unet import STARCasterUNet
from .batches import Batch, encode_latents, portrait_pixels
from .losses import chunk_loss
from .step_context import StepContext

PROJECTORS = ("identity_proj", "audio_proj", "camera_proj")


def load_teacher(folder: str | Path) -> STARCasterUNet:
    """A finished model (a pipeline folder or its ``unet/``), frozen, in fp32."""
    folder = Path(folder)
    if (folder / "unet" / "config.json").is_file():
        folder = folder / "unet"
    return STARCasterUNet.from_pretrained(folder, dtype=torch.float32).eval().requires_grad_(False)


def student_from(teacher: STARCasterUNet, changes: dict) -> STARCasterUNet:
    """A fresh student: ``teacher``'s settings with ``changes`` (e.g. narrower ``block_out_channels``,
    ``attention_heads: 1``); its condition projectors start as copies of the teacher's."""
    settings = {k: v for k, v in teacher.config.items() if not k.startswith("_")}
    student = STARCasterUNet(**{**settings, **changes})
    for name in PROJECTORS:
        source, target = getattr(teacher, name), getattr(student, name)
        if all(a.shape == b.shape for a, b in zip(source.state_dict().values(), target.state_dict().values())):
            target.load_state_dict(source.state_dict())
    return student


def sink_latents(ctx: StepContext, batch: Batch) -> torch.Tensor:
    """``[B, 1, C, h, w]``: the dataset's portrait, or (``prior_prob``) the identity prior's."""
    if ctx.prior is not None and ctx.rng.random() < ctx.stage.prior_prob:
        return encode_latents(ctx.vae, portrait_pixels(batch, "prior", ctx.prior)[:, None])
    return batch.reference


@torch.no_grad()
def teacher_rollout(ctx: StepContext, batch: Batch, sink: Sink) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The teacher's chunks ``[B, F, C, h, w]`` for ``batch``'s first ``rollout_chunks`` chunks and the
    starting noise it denoised (one shared image per video, ``[B, 1, C, h, w]``)."""
    stage = ctx.stage
    rollout = Rollout(
        ctx.teacher,
        ctx.scheduler,
        ctx.rollout_noise(batch.latents),
        stage.num_inference_steps,
        stage.train_window,
        sink,
    )
    chunks = []
    for k in range(stage.rollout_chunks):
        frames = slice(k * stage.chunk_length, (k + 1) * stage.chunk_length)
        chunks.append(rollout.chunk(batch.identity, batch.audio[:, frames], batch.views[:, frames]).clean)
    return rollout.shared, chunks


def predicted_chunk(
    unet: STARCasterUNet,
    ctx: StepContext,
    sink: Sink,
    cache: KVCache,
    conditions: torch.Tensor,
    frames: slice,
    noise: torch.Tensor,
    own: dict | None = None,
) -> torch.Tensor:
    """``unet``'s x0 for ``frames`` (with its graph where grad is on) under its ``conditions`` ``[B·F, N, D]``,
    attending to ``cache`` (the portrait + the previous chunks), starting from ``noise`` ``[B, 1, C, h, w]``;
    ``own`` receives the chunk's keys/values."""
    stage = ctx.stage
    start = noise.expand(-1, frames.stop - frames.start, -1, -1, -1)
    prediction, _ = denoise_steps(
        unet, ctx.scheduler, start, conditions, cache, stage.num_inference_steps, reference=sink.latents,
        gradient_step=stage.num_inference_steps - 1, own_context=own,
    )  # fmt: skip
    return prediction


def chunk_conditions(unet: STARCasterUNet, batch: Batch, frames: slice) -> torch.Tensor:
    """``unet``'s condition tokens ``[B·F, N, D]`` for ``batch``'s ``frames``."""
    return unet.encode_conditions(batch.identity, batch.audio[:, frames], batch.views[:, frames])


def portrait_cache(unet: STARCasterUNet, ctx: StepContext, sink: Sink) -> KVCache:
    """A cache of the training window holding ``sink``'s keys/values (encoded once per step)."""
    cache = unet.new_cache(window_frames=ctx.stage.train_window)
    cache.append(sink.keys_values(unet))
    return cache


def distill_step(ctx: StepContext, batch: Batch) -> tuple[torch.Tensor, dict]:
    """Teacher forcing along the teacher's rollout, or (``on_policy_prob``) the student's own rollout
    with the teacher's prediction *given the student's frames* as each chunk's target."""
    stage, student, teacher = ctx.stage, ctx.unet, ctx.teacher
    sink = Sink.at(sink_latents(ctx, batch), batch.identity)
    own = ctx.rng.random() < stage.on_policy_prob
    noise, targets = (ctx.rollout_noise(batch.latents).draw(1), None) if own else teacher_rollout(ctx, batch, sink)
    cache = portrait_cache(student, ctx, sink)
    with torch.no_grad():
        teacher_cache = portrait_cache(teacher, ctx, sink) if own else None
    total, parts = 0.0, {}
    for k in range(stage.rollout_chunks):
        frames = slice(k * stage.chunk_length, (k + 1) * stage.chunk_length)
        conditions = chunk_conditions(student, batch, frames)  # also what the chunk's cache entry is encoded with
        kept = {} if student.context_from_denoiser else None
        prediction = predicted_chunk(student, ctx, sink, cache, conditions, frames, noise, kept)
        if own:
            with torch.no_grad():
                teacher_conditions = chunk_conditions(teacher, batch, frames)
                target = predicted_chunk(teacher, ctx, sink, teacher_cache, teacher_conditions, frames, noise)
        else:
            target = targets[k]
        done = (prediction if own else target).detach()  # the frames the next chunk follows
        if k + 1 < stage.rollout_chunks:
            # an own-context student's entry keeps its graph: a chunk's loss trains the passes before it
            cache.append(student.context_entry(done, conditions, kept))
            if own:
                with torch.no_grad():
                    teacher_cache.append(teacher.context_entry(done, teacher_conditions))
        loss, chunk_parts = chunk_loss(ctx, prediction, batch, frames, target)
        for name, value in chunk_parts.items():
            parts[name] = parts.get(name, 0.0) + value / stage.rollout_chunks
        total = total + loss / stage.rollout_chunks
    return total, parts
