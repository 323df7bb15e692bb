"""Frames per second of the chunk loop itself, eager or compiled: the accelerator measurement.

What it times is one autoregressive step exactly as the pipeline runs it — ``models/rollout.py``'s
``Rollout.chunk``: condition tokens → ``num_inference_steps`` denoiser forwards over the KV cache
→ the reference encoder writes the finished chunk into the cache — with the cache already at its
steady size (sink + full window). VAE decoding, the frame refiner and the mp4 are left out: they
run on another thread in the pipeline and are not what a GPU is for. Weights do not change the
speed, so presets without a trained checkpoint (``real`` at 512²) are measured with random ones.

``compile_mode``: ``None`` (eager), ``"default"`` (``torch.compile``) or ``"reduce-overhead"``
(``torch.compile`` with CUDA graphs: the last GPU run was bound by kernel launches, §6 of
docs/performance.md). ``scripts/gpu_speed.py`` runs the grid and writes the JSON.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from diffusers import DDIMScheduler

from ..models.rollout import NoiseSource, Rollout, Sink
from ..models.unet import STARCasterUNet


@dataclass
class ChunkRate:
    """One measured configuration."""

    model: str
    device: str
    dtype: str
    steps: int
    compile_mode: str | None
    chunk_length: int
    window: int
    warmup_s: float  # the chunks before the timed ones (compilation included)
    s_per_chunk: float  # median over the timed chunks
    frames_per_s: float

    def as_dict(self) -> dict:
        return asdict(self)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _compiled(unet: STARCasterUNet, mode: str | None) -> None:
    """Compile the denoiser and the reference encoder in place (each chunk calls both)."""
    if mode is None:
        return
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)  # one graph per layer shape
    unet.backbone = torch.compile(unet.backbone, mode=mode, dynamic=False)
    unet.reference_net = torch.compile(unet.reference_net, mode=mode, dynamic=False)


@torch.no_grad()
def chunk_rate(
    unet: STARCasterUNet,
    model: str,
    steps: int,
    scheduler_config: dict,
    compile_mode: str | None = None,
    chunk_length: int = 4,
    window: int = 4,
    timed_chunks: int = 20,
    seed: int = 0,
) -> ChunkRate:
    """Time ``timed_chunks`` steady-state chunks of ``unet`` (already on its device and dtype)."""
    device, dtype = unet.device, unet.dtype
    cfg = unet.config
    _compiled(unet, compile_mode)
    generator = torch.Generator().manual_seed(seed)
    shape = (cfg.latent_channels, cfg.sample_size, cfg.sample_size)
    identity = torch.nn.functional.normalize(torch.randn(1, 512, generator=generator), dim=-1).to(device, dtype)
    audio = torch.randn(1, chunk_length, 2 * cfg.audio_context + 1, cfg.audio_n_mels, generator=generator)
    audio, views = audio.to(device, dtype), torch.zeros(1, chunk_length, 2, device=device, dtype=dtype)
    portrait = torch.randn(1, 1, *shape, generator=generator).to(device, dtype)
    rollout = Rollout(
        unet,
        DDIMScheduler(**scheduler_config),
        NoiseSource((1, *shape), generator, device, dtype),
        steps,
        window,
        Sink.at(portrait, identity),
    )
    warmup = -(-window // chunk_length) + 2  # the cache reaches its steady size, compiled graphs are built
    started = time.perf_counter()
    for _ in range(warmup):
        rollout.chunk(identity, audio, views)
    _synchronize(device)
    warmup_s = time.perf_counter() - started
    times = []
    for _ in range(timed_chunks):
        began = time.perf_counter()
        rollout.chunk(identity, audio, views)
        _synchronize(device)
        times.append(time.perf_counter() - began)
    per_chunk = float(np.median(times))
    return ChunkRate(
        model=model,
        device=str(device),
        dtype=str(dtype).removeprefix("torch."),
        steps=steps,
        compile_mode=compile_mode,
        chunk_length=chunk_length,
        window=window,
        warmup_s=round(warmup_s, 3),
        s_per_chunk=round(per_chunk, 5),
        frames_per_s=round(chunk_length / per_chunk, 2),
    )
