"""Per-step cost of the video stages: FLOPs counted exactly, time and memory measured on this machine.

For each preset, one teacher step (the motion/reference stages: 8 context + 8 chunk frames, the
reference as cache sink) and one self-forcing step (4 rollout chunks of 8, 4 sampler steps),
forward + backward, batch 1:

* FLOPs: ``torch.utils.flop_counter`` over the real model; for the ``real`` preset (1.7 B
  parameters, too big for this machine's memory with optimizer state) the model is built and
  run under ``FakeTensorMode`` — every shape and FLOP is real, no memory is allocated;
* parameters (what DDP / FSDP / ZeRO-2 memory follows from), counted the same way, and the bytes
  autograd saves for backward (activation memory without gradient checkpointing, fp32);
* wall-clock time and peak RSS of real steps, for the presets that fit (``--measure``).

``python scripts/measure_real_steps.py --measure real-small`` prints a JSON line per figure;
docs/training-real.md turns them into per-GPU estimates (and says how).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import warnings
from types import SimpleNamespace

import numpy as np
import torch
from diffusers import DDIMScheduler
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils.flop_counter import FlopCounterMode

from starcaster.models.configs import get_preset
from starcaster.models.unet import STARCasterUNet
from starcaster.training import self_forcing, teacher_forcing
from starcaster.training.batches import Batch
from starcaster.training.config import StageConfig
from starcaster.training.losses import diffusion_loss
from starcaster.training.self_forcing import self_forcing_step
from starcaster.training.step_context import StepContext
from starcaster.training.teacher_forcing import teacher_step

STAGES = {
    "teacher": StageConfig("motion", 1, batch_size=1, context_frames=8, chunk_length=8, reference_prob=1.0,
                           first_chunk_prob=0.0),
    "self_forcing": StageConfig("self_forcing", 1, batch_size=1, kind="self_forcing", chunk_length=8,
                                rollout_chunks=4, train_window=15, reference_prob=1.0),
}  # fmt: skip
STEPS = {"teacher": teacher_step, "self_forcing": self_forcing_step}


def _batch(spec: dict, frames: int = 32) -> Batch:
    h, c = spec["sample_size"], spec["latent_channels"]
    window, width = 2 * spec["audio_context"] + 1, spec["audio_n_mels"]
    r = torch.randn
    return Batch(latents=r(1, frames, c, h, h), pixels=r(1, frames, 3, 8 * h, 8 * h), reference=r(1, 1, c, h, h),
                 reference_pixels=r(1, 3, 8 * h, 8 * h), identity=r(1, 512), audio=r(1, frames, window, width),
                 views=r(1, frames, 2), has_audio=torch.ones(1, dtype=torch.bool), weights=r(1, frames, 1, h, h))  # fmt: skip


def _scheduler(preset: str) -> DDIMScheduler:
    scheduler = DDIMScheduler(**get_preset(preset).scheduler)
    scheduler.set_timesteps(4)
    scheduler.set_timesteps = lambda *args, **kwargs: None  # keep real timestep tensors under FakeTensorMode
    return scheduler


def _step(preset: str, kind: str, checkpointing: bool, scheduler: DDIMScheduler) -> tuple[STARCasterUNet, float, int]:
    unet = STARCasterUNet(**get_preset(preset).unet).train()
    if checkpointing:
        unet.backbone.enable_gradient_checkpointing()
    ctx = StepContext(unet, scheduler, None, STAGES[kind], np.random.default_rng(0))
    counter, saved = FlopCounterMode(display=False), _SavedBytes({id(p) for p in unet.parameters()})
    with counter:
        with torch.autograd.graph.saved_tensors_hooks(saved.pack, saved.unpack):
            loss, _ = STEPS[kind](ctx, _batch(get_preset(preset).unet))
        loss.backward()
    return unet, counter.get_total_flops(), saved.total


class _SavedBytes:
    """Bytes autograd keeps for backward (activations: what the forward leaves alive), parameters excluded."""

    def __init__(self, parameters: set[int]):
        self.parameters, self.seen, self.total = parameters, set(), 0

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        if id(tensor) not in self.parameters and id(tensor) not in self.seen:
            self.seen.add(id(tensor))
            self.total += tensor.numel() * tensor.element_size()
        return tensor

    def unpack(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor


def _mse_only(ctx, prediction, batch, frames):
    """``chunk_loss`` without its ``.item()`` logging (data-dependent: impossible on fake tensors)."""
    return diffusion_loss(prediction, batch.latents[:, frames], batch.weights[:, frames]), {}


def count(preset: str, kind: str, checkpointing: bool = False) -> dict:
    """FLOPs and parameters of one step, under FakeTensorMode (nothing allocated).

    With ``checkpointing`` the saved bytes are those kept *between* checkpointed UNet blocks
    (what stays alive through the forward), not the one block being recomputed.
    """
    self_forcing.chunk_loss = teacher_forcing.chunk_loss = _mse_only  # where the steps look it up
    scheduler = _scheduler(preset)  # real tensors, made outside the fake mode
    # the DDIM update is a few elementwise ops (no FLOPs to speak of) that index by value: skip it
    scheduler.step = lambda output, t, sample: SimpleNamespace(prev_sample=output)
    with FakeTensorMode(allow_non_fake_inputs=True):
        unet, flops, saved = _step(preset, kind, checkpointing, scheduler)
    params = sum(p.numel() for p in unet.parameters())
    backbone = sum(p.numel() for p in unet.backbone.parameters())
    return {"preset": preset, "step": kind, "checkpointing": checkpointing, "gflops": round(flops / 1e9, 1),
            "params_m": round(params / 1e6, 1),
            "backbone_params_m": round(backbone / 1e6, 1), "activations_gib_fp32": round(saved / 2**30, 2)}  # fmt: skip


def measure(preset: str, kind: str, repeats: int, checkpointing: bool) -> dict:
    """Seconds per step (median of ``repeats`` after one warm-up) and the process's peak RSS."""
    torch.manual_seed(0)
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        _step(preset, kind, checkpointing, _scheduler(preset))
        times.append(time.perf_counter() - started)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux reports KiB)
    return {"preset": preset, "step": kind, "checkpointing": checkpointing, "seconds": round(float(np.median(times[1:])), 2),
            "peak_rss_mib": round(peak), "threads": torch.get_num_threads()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", nargs="*", default=["real-small", "real"])
    parser.add_argument("--measure", nargs="*", default=[])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--checkpointing", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    for preset in args.count:
        for kind in STAGES:
            print(json.dumps(count(preset, kind, args.checkpointing)), flush=True)
    for preset in args.measure:
        for kind in STAGES:
            print(json.dumps(measure(preset, kind, args.repeats, args.checkpointing)), flush=True)


if __name__ == "__main__":
    main()
