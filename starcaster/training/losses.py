"""The video model's training losses: motion-weighted x0 regression, the perceptual lip-reading
loss (the paper's audio-visual sync signal), the soft identity loss and the view loss, on one
predicted chunk."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..eval.experts import INPUT_SIZE
from .batches import Batch
from .step_context import StepContext


def diffusion_loss(prediction: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return (weights * (prediction.float() - target.float()) ** 2).mean()


def decode(ctx: StepContext, prediction: torch.Tensor) -> torch.Tensor:
    """Predicted clean latents ``[B, F, C, h, w]`` → pixels ``[B·F, 3, H, W]`` (with gradient)."""
    return ctx.vae.decode(prediction.flatten(0, 1).float() / ctx.vae.config.scaling_factor).sample.clamp(-1, 1)


def lip_reading_loss(ctx: StepContext, decoded: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
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


def view_loss(ctx: StepContext, decoded: torch.Tensor, views: torch.Tensor) -> torch.Tensor:
    """View loss: a frozen pose regressor must read the conditioning camera in every generated frame.

    ``decoded`` ``[B·F, 3, H, W]``, ``views`` ``[B, F, 2]`` (azimuth, elevation in degrees). Huber in
    degrees with a 1° knee (below it the regressor's own error, ≈ 1.5° on clean renders, is noise).
    The latent regression weighs the mouth, where frames move; a head turned 3° too little moves few
    pixels, so this is the signal that keeps a distilled student's camera where it was asked.
    """
    size = (INPUT_SIZE, INPUT_SIZE)
    frames = decoded if decoded.shape[-2:] == size else F.interpolate(decoded, size=size, mode="area")
    return F.smooth_l1_loss(ctx.view_expert.degrees(frames), views.flatten(0, 1).float(), beta=1.0)


def chunk_loss(
    ctx: StepContext, prediction: torch.Tensor, batch: Batch, frames: slice, target: torch.Tensor | None = None
) -> tuple[torch.Tensor, dict]:
    """The stage's weighted sum of losses on ``prediction`` ``[B, F, C, h, w]`` of ``batch``'s ``frames``;
    ``target``: the latents to regress (default the data's; a distilled student's: its teacher's)."""
    stage = ctx.stage
    target = batch.latents[:, frames] if target is None else target
    loss = diffusion_loss(prediction, target, batch.weights[:, frames])
    parts = {"mse": loss.item()}
    use_lip = stage.lip_weight > 0 and ctx.lip_expert is not None
    use_identity = stage.identity_weight > 0 and ctx.identity_encoder is not None
    use_view = stage.view_weight > 0 and ctx.view_expert is not None
    decoded = decode(ctx, prediction) if use_lip or use_identity or use_view else None
    if use_lip:
        lip = lip_reading_loss(ctx, decoded, batch.pixels[:, frames])
        loss = loss + stage.lip_weight * lip
        parts["lip"] = lip.item()
    if use_identity:
        ident = identity_loss(ctx, decoded, batch.identity)
        loss = loss + stage.identity_weight * ident
        parts["identity"] = ident.item()
    if use_view:
        view = view_loss(ctx, decoded, batch.views[:, frames])
        loss = loss + stage.view_weight * view
        parts["view"] = view.item()
    return loss, parts
