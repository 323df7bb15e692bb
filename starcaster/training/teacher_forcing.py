"""The training steps of the video model: teacher-forced chunks and self-forcing rollouts.

Both predict the clean chunk (x0) and regress it onto the ground truth with a motion-weighted
MSE, plus an optional lip-reading loss. They differ in where the context comes from:

* ``teacher_step``: the KV cache holds *ground-truth* past frames (noise-augmented, so the
  model cannot just copy them) and/or the reference portrait.
* ``self_forcing_step``: the model rolls out ``rollout_chunks`` chunks with its own few-step
  sampler, writing its *own* clean output into the cache exactly as at inference, over a
  longer window than inference uses; each chunk gets a gradient at one random denoising
  step (Self-Forcing), so the model learns to continue from its own imperfect frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..models.kv_cache import KVCache
from ..models.unet import STARCasterUNet
from .batches import Batch
from .config import StageConfig

REFERENCE_VIEW = (0.0, 0.0)  # SynthTalk reference portraits are frontal


@dataclass
class StepContext:
    unet: STARCasterUNet
    scheduler: object
    vae: torch.nn.Module
    stage: StageConfig
    rng: np.random.Generator
    lip_expert: torch.nn.Module | None = None
    identity_encoder: torch.nn.Module | None = None  # frozen; used by the identity loss
    rank: int = 0  # data parallel: this process holds rows [rank·B, (rank+1)·B) of the global batch
    world: int = 1

    def local(self, values):
        """This process's rows of per-sample random values drawn for the whole global batch.

        Every process draws the same global values (same seeds) and keeps its slice, so N
        processes on B rows each make exactly the update of one process on N·B rows.
        """
        size = len(values) // self.world
        return values[self.rank * size : (self.rank + 1) * size]

    def randn(self, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        """Standard normal noise of local shape ``[B, ...]``, this process's rows of the global draw."""
        return self.local(torch.randn((shape[0] * self.world, *shape[1:]), device=device))


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


def write_reference(unet: STARCasterUNet, cache: KVCache, reference: torch.Tensor, identity: torch.Tensor) -> None:
    """Put a frontal portrait's latents ``[B, 1, C, h, w]`` into the cache as its sink."""
    view = torch.tensor(REFERENCE_VIEW, device=identity.device).expand(identity.shape[0], 2)
    cache.append(unet.encode_reference(reference, identity, view))


def diffusion_loss(prediction: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return (weights * (prediction.float() - target.float()) ** 2).mean()


def decode(ctx: StepContext, prediction: torch.Tensor) -> torch.Tensor:
    """Predicted clean latents ``[B, F, C, h, w]`` → pixels ``[B·F, 3, H, W]`` (with gradient)."""
    return ctx.vae.decode(prediction.flatten(0, 1).float() / ctx.vae.config.scaling_factor).sample.clamp(-1, 1)


def lip_loss(ctx: StepContext, decoded: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Lip-reading loss: a frozen mouth expert reads generated and real frames; their readings must agree.

    ``decoded`` ``[B·F, 3, H, W]``, ``pixels`` ``[B, F, 3, H, W]``. A per-frame reader (SynthTalk's mouth
    regressor) reads frames; a clip reader (a real-face SyncNet: ``read_clips``) reads windows of frames.
    """
    read_clips = getattr(ctx.lip_expert, "read_clips", None)
    if read_clips is not None:
        with torch.no_grad():
            target = read_clips(pixels)
        return F.mse_loss(read_clips(decoded.unflatten(0, pixels.shape[:2])), target)
    with torch.no_grad():
        target = ctx.lip_expert(pixels.flatten(0, 1))
    return F.mse_loss(ctx.lip_expert(decoded), target)


def identity_loss(ctx: StepContext, decoded: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
    """Soft identity loss: the frozen identity encoder must find the conditioning identity in every generated frame.

    ``1 − cos`` against the embedding the model was conditioned on, so it applies to any identity
    (unlike the pixel loss, which only knows the training faces): the identity-only mode's signal.
    """
    encoder = ctx.identity_encoder
    frames = F.interpolate(decoded, size=encoder.config.image_size, mode="area")
    target = identity.repeat_interleave(decoded.shape[0] // identity.shape[0], dim=0)
    return (1 - F.cosine_similarity(encoder(frames).float(), target.float(), dim=-1)).mean()


def chunk_loss(ctx: StepContext, prediction: torch.Tensor, batch: Batch, frames: slice) -> tuple[torch.Tensor, dict]:
    stage = ctx.stage
    loss = diffusion_loss(prediction, batch.latents[:, frames], batch.weights[:, frames])
    parts = {"mse": loss.item()}
    use_lip = stage.lip_weight > 0 and ctx.lip_expert is not None
    use_identity = stage.identity_weight > 0 and ctx.identity_encoder is not None
    decoded = decode(ctx, prediction) if use_lip or use_identity else None
    if use_lip:
        lip = lip_loss(ctx, decoded, batch.pixels[:, frames])
        loss = loss + stage.lip_weight * lip
        parts["lip"] = lip.item()
    if use_identity:
        ident = identity_loss(ctx, decoded, batch.identity)
        loss = loss + stage.identity_weight * ident
        parts["identity"] = ident.item()
    return loss, parts


def teacher_step(ctx: StepContext, batch: Batch) -> tuple[torch.Tensor, dict]:
    stage, unet = ctx.stage, ctx.unet
    past = 0 if ctx.rng.random() < stage.first_chunk_prob else stage.context_frames
    cache = unet.new_cache(window_frames=None)
    reference = None
    if ctx.rng.random() < stage.reference_prob:
        write_reference(unet, cache, batch.reference, batch.identity)
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


def self_forcing_step(ctx: StepContext, batch: Batch) -> tuple[torch.Tensor, dict]:
    stage, unet = ctx.stage, ctx.unet
    cache = unet.new_cache(window_frames=stage.train_window)
    reference = None
    if ctx.rng.random() < stage.reference_prob:
        with torch.no_grad():
            write_reference(unet, cache, batch.reference, batch.identity)
        reference = batch.reference
    total, parts = 0.0, {}
    shape = batch.latents[:, : stage.chunk_length].shape
    device = batch.latents.device
    shared = ctx.randn((shape[0], 1, *shape[2:]), device)  # one noise image per video (noise_sharing)
    for k in range(stage.rollout_chunks):
        frames = slice(k * stage.chunk_length, (k + 1) * stage.chunk_length)
        conditions = unet.encode_conditions(batch.identity, batch.audio[:, frames], batch.views[:, frames])
        own = ctx.randn(tuple(shape), device)
        noise = math.sqrt(stage.noise_sharing) * shared + math.sqrt(1 - stage.noise_sharing) * own
        prediction, clean = _rollout_chunk(ctx, conditions, cache, noise, reference)
        loss, parts = chunk_loss(ctx, prediction, batch, frames)
        total = total + loss / stage.rollout_chunks
        with torch.no_grad():
            cache.append(unet.encode_context(clean, conditions.detach()))
    return total, parts


def _rollout_chunk(ctx: StepContext, conditions, cache: KVCache, noise, reference) -> tuple[torch.Tensor, torch.Tensor]:
    """Few-step sampling from ``noise``; the gradient flows through one random step only.

    Returns (the x0 prediction at that step, with grad; the finished clean chunk, detached).
    """
    scheduler, unet = ctx.scheduler, ctx.unet
    scheduler.set_timesteps(ctx.stage.num_inference_steps)
    grad_step = int(ctx.rng.integers(len(scheduler.timesteps)))
    latents = noise
    frozen = conditions.detach()
    prediction = clean = None
    for i, t in enumerate(scheduler.timesteps):
        context = cache if len(cache) else None
        if i == grad_step:
            prediction = unet(latents, t, conditions, cache=context, reference=reference)
            clean = prediction.detach()
        else:
            with torch.no_grad():
                clean = unet(latents, t, frozen, cache=context, reference=reference)
        latents = scheduler.step(clean.flatten(0, 1), t, latents.flatten(0, 1)).prev_sample.view_as(latents)
    return prediction, clean


STEPS = {"teacher": teacher_step, "self_forcing": self_forcing_step}


def trainable_parameters(unet: STARCasterUNet, mode: str) -> list[torch.nn.Parameter]:
    """Which weights a stage trains.

    ``all``; ``view``: the camera stream and the self-attention that runs along the view axis;
    ``camera``: the camera stream alone. Run 2 found that training self-attention on silent
    multi-view sets cost lip-sync (0.81 → 0.59), so the demo recipe's view stage uses ``camera``.
    """
    if mode == "all":
        return list(unet.parameters())
    if mode not in ("view", "camera"):
        raise ValueError(f"trainable must be 'all', 'view' or 'camera', got {mode!r}")
    camera_extra = f"to_k_extra.{len(unet.stream_tokens) - 2}", f"to_v_extra.{len(unet.stream_tokens) - 2}"

    def chosen(name: str) -> bool:
        camera = name.startswith("camera_proj") or any(c in name for c in camera_extra)
        return camera or (mode == "view" and name.startswith("backbone") and ".attn1." in name)

    return [param for name, param in unet.named_parameters() if chosen(name)]
