"""Few-step chunk sampling as small pure functions, shared by the pipeline and self-forcing.

Per-stream classifier-free guidance (identity, audio, camera) composes up to four passes,
batched into one UNet call as CFG groups:

    x0 = x_none + s_id · (x_id − x_none) + s_audio · (x_full − x_id) + (s_cam − 1) · (x_full − x_nocam)

where ``x_full`` sees every stream, ``x_id`` drops audio, ``x_none`` drops audio and
identity, ``x_nocam`` drops only the camera. With every scale at 1 this is just ``x_full``
and one pass is run. Camera guidance pulls a small model's head towards the requested view
(held-out elevation error 15° → 9° at s_cam = 2, docs/training.md) at one extra pass.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch

from .kv_cache import KVCache
from .unet import STREAMS, STARCasterUNet


@dataclass(frozen=True)
class Guidance:
    audio: float = 1.0
    identity: float = 1.0
    camera: float = 1.0

    def passes(self) -> list[dict[str, bool]]:
        """Which streams each CFG pass keeps, in the order ``combine`` expects."""
        full = dict.fromkeys(STREAMS, True)
        no_audio = {**full, "audio": False}
        none = {**no_audio, "identity": False}
        if self.identity == 1.0 and self.audio == 1.0:
            passes = [full]
        elif self.identity == 1.0:
            passes = [full, no_audio]
        else:
            passes = [full, no_audio, none]
        return passes + [{**full, "camera": False}] if self.camera != 1.0 else passes

    def combine(self, predictions: list[torch.Tensor]) -> torch.Tensor:
        if self.camera != 1.0:
            *predictions, no_camera = predictions
            return self._combine_audio_identity(predictions) + (self.camera - 1.0) * (predictions[0] - no_camera)
        return self._combine_audio_identity(predictions)

    def _combine_audio_identity(self, predictions: list[torch.Tensor]) -> torch.Tensor:
        if len(predictions) == 1:
            return predictions[0]
        full, no_audio = predictions[:2]
        base = no_audio if len(predictions) == 2 else predictions[2] + self.identity * (no_audio - predictions[2])
        return base + self.audio * (full - no_audio)


def guided_conditions(
    unet: STARCasterUNet,
    identity: torch.Tensor,
    audio: torch.Tensor,
    views: torch.Tensor,
    guidance: Guidance,
) -> torch.Tensor:
    """Condition tokens for every CFG pass, stacked group-major: ``[G*B*F, N, D]``.

    The full pass (every stream kept) is encoded without masks: the same numbers, and the null
    tokens stay out of the graph (no gradient, so no weight decay, where nothing is dropped).
    """
    batch = identity.shape[0]
    groups = []
    for keep in guidance.passes():
        masks = {s: torch.full((batch,), k, dtype=torch.bool, device=identity.device) for s, k in keep.items()}
        groups.append(unet.encode_conditions(identity, audio, views, None if all(keep.values()) else masks))
    return torch.cat(groups)


def predict_x0(
    unet: STARCasterUNet,
    latents: torch.Tensor,
    timestep: torch.Tensor,
    conditions: torch.Tensor,
    cache: KVCache | None,
    guidance: Guidance,
    reference: torch.Tensor | None = None,
    own_context: dict | None = None,
) -> torch.Tensor:
    """One guided clean-sample estimate for a chunk ``[B,F,C,h,w]`` (``reference``, ``own_context``:
    see ``STARCasterUNet.forward``)."""
    groups = len(guidance.passes())
    batched = latents.repeat(groups, 1, 1, 1, 1)  # [G*B, F, C, h, w]
    x0 = unet(
        batched, timestep, conditions, cache=cache, cfg_groups=groups, reference=reference, own_context=own_context
    )
    x0 = x0.to(latents.dtype)  # fp32 under autocast
    return guidance.combine(list(x0.chunk(groups)))


def denoise_chunk(*args, **kwargs) -> torch.Tensor:
    """Pure noise ``[B,F,C,h,w]`` → clean chunk, in ``num_inference_steps`` scheduler steps.

    The arguments of ``denoise_steps`` (``unet, scheduler, noise, conditions, cache,
    num_inference_steps, guidance, reference``) without its training hook; every step runs in the
    caller's grad mode.
    """
    return denoise_steps(*args, **kwargs)[1]


def denoise_steps(
    unet: STARCasterUNet,
    scheduler,
    noise: torch.Tensor,
    conditions: torch.Tensor,
    cache: KVCache | None,
    num_inference_steps: int,
    guidance: Guidance = Guidance(),
    reference: torch.Tensor | None = None,
    gradient_step: int | None = None,
    own_context: dict | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """``denoise_chunk`` with a training hook: ``(x0 of step gradient_step with its graph, clean chunk)``.

    With ``gradient_step`` None every step runs in the caller's grad mode (``denoise_chunk``). With
    one, only that step records a graph (through the model and ``conditions``), every other step
    runs without gradients, and the returned chunk (the last step's x0) is detached (Self-Forcing).
    ``own_context`` (a dict) receives the last step's keys/values of the chunk (the cache entry of
    ``context_source="denoiser"`` models).
    """
    scheduler.set_timesteps(num_inference_steps, device=noise.device)
    latents = noise
    x0, kept = noise, None
    last = len(scheduler.timesteps) - 1
    for i, t in enumerate(scheduler.timesteps):
        frozen = gradient_step is not None and i != gradient_step
        own = own_context if i == last else None
        with torch.no_grad() if frozen else nullcontext():
            conds = conditions.detach() if frozen else conditions
            x0 = predict_x0(unet, latents, t, conds, cache, guidance, reference, own)
        if i == gradient_step:
            kept, x0 = x0, x0.detach()
        latents = scheduler.step(x0.flatten(0, 1), t, latents.flatten(0, 1)).prev_sample.view_as(latents)
    return kept, x0
