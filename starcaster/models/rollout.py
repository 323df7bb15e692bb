"""The autoregressive rollout: one object that inference and training both run chunk by chunk.

Self-forcing only works if training rolls chunks out exactly as inference does, so there is
one rollout and every caller uses it: the pipeline (``STARCasterPipeline._denoised_chunks``),
self-forcing (``training/self_forcing.py``), the refiner's training pairs
(``training/refiner.roll_out``), and through the pipeline the evaluation harness and the speed
benchmark. A ``Rollout`` holds

* the causal context (``Context``): a KV cache whose sink is the reference portrait (``Sink``)
  and whose rolling window holds the last finished frames — encoded by the reference encoder,
  or for ``context_source="denoiser"`` models the keys/values of the chunk's own last denoising
  step — or for ``recompute`` the raw frames re-encoded before every chunk (the naive baseline
  the cache is tested against);
* the starting noise (``NoiseSource``): one shared image per video and each chunk's own noise,
  mixed as ``sqrt(s)·shared + sqrt(1 − s)·own`` (``noise_sharing`` s; per-frame marginals stay
  N(0, I));

and ``chunk(identity, audio, views)`` does one step of the loop: conditions for every CFG pass
→ few-step denoise (``sampling.denoise_steps``) → the clean chunk written into the context.
``gradient_step`` is the training hook: that one denoising step keeps its graph (Self-Forcing),
every other step and every context write run without gradients.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import torch
from diffusers.utils.torch_utils import randn_tensor

from .kv_cache import KVCache
from .sampling import Guidance, denoise_steps, guided_conditions
from .unet import STARCasterUNet

Timer = Callable[[str], AbstractContextManager]


def draw_rows(
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    device: torch.device | str,
    dtype: torch.dtype = torch.float32,
    rank: int = 0,
    world: int = 1,
) -> torch.Tensor:
    """Standard normal noise of local shape ``[B, ...]``: this process's rows of one global draw.

    Every data-parallel process draws the whole global batch (``world`` · B rows, same seed) and
    keeps rows ``[rank·B, (rank+1)·B)``, so N processes make exactly the noise of one process on
    N·B rows. ``generator`` None draws from torch's global generator (training); the pipeline
    passes the user's generator (diffusers' ``randn_tensor`` semantics: a CPU generator draws on
    the CPU whatever ``device`` is).
    """
    rows = shape[0]
    drawn = randn_tensor((rows * world, *shape[1:]), generator=generator, device=torch.device(device), dtype=dtype)
    return drawn[rank * rows : (rank + 1) * rows]


@dataclass
class NoiseSource:
    """Where a rollout's noise comes from: ``draw(frames)`` → ``[B, frames, C, h, w]``."""

    frame_shape: tuple[int, int, int, int]  # (B, C, h, w): one frame of every video in the batch
    generator: torch.Generator | None = None
    device: torch.device | str = "cpu"
    dtype: torch.dtype = torch.float32
    rank: int = 0
    world: int = 1

    def draw(self, frames: int) -> torch.Tensor:
        batch, *frame = self.frame_shape
        return draw_rows((batch, frames, *frame), self.generator, self.device, self.dtype, self.rank, self.world)


@dataclass(frozen=True)
class Sink:
    """The reference portrait whose keys/values are the cache's sink (kept for ever).

    ``latents`` ``[B, 1, C, h, w]`` are also what ``reference_concat`` models read pixel-aligned.
    """

    latents: torch.Tensor
    identity: torch.Tensor  # [B, 512]
    view: torch.Tensor  # [B, 2] the portrait's (azimuth, elevation) in degrees

    @classmethod
    def at(cls, latents: torch.Tensor, identity: torch.Tensor, view: tuple[float, float] = (0.0, 0.0)) -> Sink:
        """A portrait seen from one ``view`` (SynthTalk's reference portraits are frontal: the default)."""
        angles = torch.tensor(view, device=identity.device).expand(identity.shape[0], 2)
        return cls(latents, identity, angles)

    def keys_values(self, unet: STARCasterUNet) -> dict:
        """The portrait's keys/values per self-attention layer (with gradients if enabled)."""
        return unet.encode_reference(self.latents.to(unet.dtype), self.identity, self.view)

    def write(self, unet: STARCasterUNet, cache: KVCache) -> None:
        """Append the portrait's keys/values (with gradients if enabled: teacher forcing trains through it)."""
        cache.append(self.keys_values(unet))


class Context:
    """The causal context of a rollout: a KV cache (sink + rolling window) or, for ``recompute``,
    every finished chunk kept raw and re-encoded into a fresh cache before each chunk (O(n²))."""

    def __init__(self, unet: STARCasterUNet, window: int | None, sink: Sink | None = None, recompute: bool = False):
        if recompute and unet.context_from_denoiser:
            raise ValueError(
                "context_mode 'recompute' re-encodes finished frames, but this model's context comes from its own "
                "denoising pass (context_source='denoiser'); use context_mode 'cache'"
            )
        self.unet, self.window, self.sink, self.recompute = unet, window, sink, recompute
        self.history: list[tuple[torch.Tensor, torch.Tensor]] = []  # recompute: (clean, conditions) per chunk
        self._cache = self._fresh()

    @torch.no_grad()
    def _fresh(self) -> KVCache:
        cache = self.unet.new_cache(window_frames=self.window)
        if self.sink is not None:
            self.sink.write(self.unet, cache)
        return cache

    @torch.no_grad()
    def cache(self) -> KVCache:
        """The cache the next chunk attends to."""
        if not self.recompute:
            return self._cache
        cache = self._fresh()
        for clean, conditions in self.history:
            cache.append(self.unet.encode_context(clean, conditions))
        return cache

    @torch.no_grad()
    def add(self, clean: torch.Tensor, conditions: torch.Tensor, own: dict | None = None) -> None:
        """Finished frames ``[B, F, C, h, w]`` with their condition tokens ``[B·F, N, D]``, or for
        ``context_source="denoiser"`` models ``own``: the keys/values their last denoising step made."""
        clean, conditions = clean.detach(), conditions.detach()
        if self.recompute:
            self.history.append((clean, conditions))
            return
        entry = self.unet.context_entry(clean, conditions, own)
        self._cache.append({name: (k.detach(), v.detach()) for name, (k, v) in entry.items()})


@dataclass
class RolloutChunk:
    """One finished chunk: ``clean`` ``[B, F, C, h, w]`` (detached), ``prediction`` (the x0 of the
    gradient step, with its graph; ``clean`` itself without one) and the chunk's full-pass conditions."""

    clean: torch.Tensor
    prediction: torch.Tensor
    conditions: torch.Tensor  # [B·F, N, D]


@dataclass
class Rollout:
    """Chunk-by-chunk autoregressive generation from a model's own output (see the module docstring).

    The sink is written and the shared noise drawn when the rollout is made, in that order.
    """

    unet: STARCasterUNet
    scheduler: object  # a diffusers scheduler; its timesteps are set per chunk
    noise: NoiseSource
    num_inference_steps: int
    window: int | None  # frames of the rolling window (None: keep every frame)
    sink: Sink | None = None
    noise_sharing: float = 1.0
    guidance: Guidance = Guidance()
    recompute: bool = False
    timer: Timer = field(default=lambda name: nullcontext(), repr=False)

    def __post_init__(self) -> None:
        self.context = Context(self.unet, self.window, self.sink, self.recompute)
        self.shared = self.noise.draw(1)  # [B, 1, C, h, w]: one noise image per video

    def starting_noise(self, frames: int) -> torch.Tensor:
        """``[B, frames, C, h, w]``: the shared image and this chunk's own noise, mixed."""
        own = self.noise.draw(frames)
        return math.sqrt(self.noise_sharing) * self.shared + math.sqrt(1.0 - self.noise_sharing) * own

    @torch.no_grad()
    def add_context(self, clean: torch.Tensor, identity: torch.Tensor, audio: torch.Tensor, views: torch.Tensor):
        """Write frames not made by this rollout (e.g. ground truth ``[B, F, C, h, w]``) into the context."""
        self.context.add(clean, self.unet.encode_conditions(identity, audio, views))

    def chunk(
        self, identity: torch.Tensor, audio: torch.Tensor, views: torch.Tensor, gradient_step: int | None = None
    ) -> RolloutChunk:
        """identity ``[B, 512]``, audio ``[B, F, W, M]``, views ``[B, F, 2]`` → the next ``F`` clean frames.

        ``gradient_step``: the index of the denoising step whose prediction keeps its graph.
        """
        with self.timer("denoise"):
            conditions = guided_conditions(self.unet, identity, audio, views, self.guidance)  # [G·B·F, N, D]
            noise = self.starting_noise(audio.shape[1])
        with self.timer("context"):
            cache = self.context.cache()
        with self.timer("denoise"):
            reference = None if self.sink is None else self.sink.latents
            own = {} if self.unet.context_from_denoiser else None
            prediction, clean = denoise_steps(
                self.unet, self.scheduler, noise, conditions, cache, self.num_inference_steps,
                self.guidance, reference, gradient_step, own,
            )  # fmt: skip
        full = conditions[: identity.shape[0] * audio.shape[1]]  # the pass that sees every stream
        with self.timer("context"):
            self.context.add(clean, full, own)
        return RolloutChunk(clean, clean if prediction is None else prediction, full)
