"""Stage ``refiner``: teach the frame refiner (``models/refiner.py``) to draw what the video model blurs.

Data are the finished video model's *own* frames, paired with the ground truth they should
have been. Pairs must be pixel-aligned, or the refiner learns to blur as well: each training
window gives the model a few ground-truth frames as context (which pins the head's pose and
the mouth's phase) and then the model rolls out ``chunks`` chunks with the one ``Rollout`` of
inference (``models/rollout.py``: its ``rollout_steps``-step sampler, 4 as in training, and KV
cache) — the first from the real context, the later ones from its own — so the pairs carry
inference's blur and the ground truth's detail at the same place. The identity's portrait is
what inference would give the refiner: the reference portrait, the identity prior's portrait
of the embedding (identity-only mode), or none.

The pairs are generated once per run folder (``refiner/pairs.npz``, reused on resume); the
loss is L1 on pixels plus L1 on their horizontal and vertical differences (the edges that
make an eye an eye). Where the refiner is unsure exactly where an eye goes, any per-pixel
loss still prefers to leave it out (a smooth "mannequin" face beats a misplaced eye on L1),
so ``adversarial_weight`` > 0 adds a conditional PatchGAN critic (pix2pix): it sees the
video model's frame beside a candidate and tells real detail from none, and the refiner is
rewarded for detail the critic believes. Both train in one backward pass with one optimiser:
the critic's loss sees detached refined frames, and the refiner's adversarial term runs the
critic with detached weights (``torch.func.functional_call``), so neither moves the other.
"""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler
from torch import nn

from ..audio import audio_config_for
from ..models.configs import get_preset
from ..models.refiner import FrameRefiner
from ..models.rollout import NoiseSource, Rollout, Sink
from ..models.unet import STARCasterUNet
from ..pixels import to_pixels, to_uint8
from .batches import PORTRAIT_SOURCES, Batch, encode_latents, portrait_pixels, prepare_batch
from .checkpoint import finished_model
from .config import RecipeConfig, RefinerConfig
from .data import collate_audio_features, endless
from .trainer import LoopSettings, train

logger = logging.getLogger(__name__)

CONTEXT_FRAMES = 4


@torch.no_grad()
def roll_out(
    unet: STARCasterUNet,
    scheduler,
    vae,
    batch: Batch,
    portraits: torch.Tensor | None,
    chunks: int,
    steps: int = RefinerConfig.rollout_steps,
) -> torch.Tensor:
    """The model's frames ``[B, chunks·chunk, 3, H, W]`` for ``batch``'s frames after ``CONTEXT_FRAMES``.

    The one ``Rollout`` of inference (``models/rollout.py``), with a real-context prefix: the
    ground-truth first ``CONTEXT_FRAMES`` frames are written into the cache (not for a
    ``context_source="denoiser"`` model: its cache holds only its own passes), then ``chunks`` chunks
    are rolled out with ``steps`` sampler steps and one starting noise image per window (sharing 1;
    each chunk still draws its own noise, at weight 0, as every rollout does).
    """
    chunk = (batch.frames - CONTEXT_FRAMES) // chunks
    sink = None
    if portraits is not None:
        sink = Sink.at(encode_latents(vae, portraits[:, None]), batch.identity)
    latents = batch.latents
    noise = NoiseSource((latents.shape[0], *latents.shape[2:]), None, latents.device, latents.dtype)
    rollout = Rollout(unet, scheduler, noise, steps, CONTEXT_FRAMES + chunk, sink, noise_sharing=1.0)
    if not unet.context_from_denoiser:  # a model whose context is its own passes can't be given frames
        past = slice(0, CONTEXT_FRAMES)
        rollout.add_context(latents[:, past], batch.identity, batch.audio[:, past], batch.views[:, past])
    frames = []
    for k in range(chunks):
        span = slice(CONTEXT_FRAMES + k * chunk, CONTEXT_FRAMES + (k + 1) * chunk)
        clean = rollout.chunk(batch.identity, batch.audio[:, span], batch.views[:, span]).clean
        pixels = vae.decode(clean.flatten(0, 1) / vae.config.scaling_factor).sample
        frames.append(pixels.view(latents.shape[0], chunk, *pixels.shape[1:]))
    return torch.cat(frames, 1)


def generate_pairs(cfg: RecipeConfig, unet: STARCasterUNet, vae, encoder, prior, path: Path) -> dict[str, np.ndarray]:
    """Roll the video model out on ``settings.windows`` training windows; save uint8 pairs to ``path``.

    The targets are the ground truth, or with ``settings.teacher`` that refiner's output on the
    generated frames (distillation: the student learns the teacher's mapping, not the data).
    """
    settings = cfg.refiner
    window = CONTEXT_FRAMES + settings.chunks * settings.chunk_length
    audio_config = audio_config_for(unet.config)
    collate = functools.partial(collate_audio_features, frames=window, fps=25.0, config=audio_config)
    batches = endless(cfg.data / "train", window, settings.rollout_batch, ("talking",), cfg.seed + 7, 0, collate)
    scheduler = DDIMScheduler(**get_preset(cfg.preset).scheduler)
    rng = np.random.default_rng(cfg.seed + 7)
    probs = np.array([1 - settings.prior_prob - settings.none_prob, settings.prior_prob, settings.none_prob])
    if prior is None:
        probs = np.array([probs[0] + probs[1], 0.0, probs[2]])
    teacher = None if settings.teacher is None else FrameRefiner.from_pretrained(settings.teacher, dtype=torch.float32)
    out = {"generated": [], "truth": [], "portrait": [], "has_portrait": []}
    started, done = time.monotonic(), 0
    while done < settings.windows:
        batch = prepare_batch(next(batches), vae, encoder, 0.0)
        source = PORTRAIT_SOURCES[rng.choice(3, p=probs / probs.sum())]
        portraits = portrait_pixels(batch, source, prior)
        generated = roll_out(unet, scheduler, vae, batch, portraits, settings.chunks, settings.rollout_steps)
        size = len(generated)
        blank = torch.zeros_like(batch.pixels[:, 0]) if portraits is None else portraits
        truth = batch.pixels[:, CONTEXT_FRAMES:] if teacher is None else _refined(teacher, generated, blank, portraits)
        out["generated"].append(to_uint8(generated))
        out["truth"].append(to_uint8(truth))
        out["portrait"].append(to_uint8(blank))
        out["has_portrait"].append(np.full(size, portraits is not None))
        done += size
        if done % (10 * size) == 0:
            logger.info(
                "refiner pairs: %d/%d windows (%.1f min)", done, settings.windows, (time.monotonic() - started) / 60
            )
    pairs = {k: np.concatenate(v) for k, v in out.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **pairs)
    return pairs


@torch.no_grad()
def _refined(teacher: FrameRefiner, generated: torch.Tensor, portraits: torch.Tensor, given) -> torch.Tensor:
    """The teacher refiner's frames ``[B, T, 3, H, W]`` for ``generated`` (a distilled refiner's targets)."""
    count = generated.shape[1]
    has = torch.full((generated.shape[0] * count,), given is not None)
    refined = teacher(generated.flatten(0, 1), portraits.repeat_interleave(count, 0), has)
    return refined.view_as(generated)


def refiner_loss(refined: torch.Tensor, truth: torch.Tensor, edge_weight: float) -> tuple[torch.Tensor, dict]:
    """L1 on pixels + ``edge_weight`` · L1 on horizontal/vertical differences."""
    pixel = F.l1_loss(refined.float(), truth)
    edges = sum(F.l1_loss(torch.diff(refined.float(), dim=d), torch.diff(truth, dim=d)) for d in (-1, -2))
    return pixel + edge_weight * edges, {"l1": pixel.item(), "edges": edges.item()}


class PatchCritic(nn.Module):
    """(the video model's frame, a candidate) → a grid of real/fake scores, one per ~16-pixel patch."""

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128)):
        super().__init__()
        layers, width = [], 6
        for out in channels:
            layers += [nn.utils.parametrizations.spectral_norm(nn.Conv2d(width, out, 4, 2, 1)), nn.LeakyReLU(0.2)]
            width = out
        layers.append(nn.Conv2d(width, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, frames: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([frames, candidate.to(frames.dtype)], dim=1))


def adversarial_losses(critic: PatchCritic, frames, refined, truth) -> tuple[torch.Tensor, torch.Tensor]:
    """Hinge losses ``(critic, refiner)``; each only moves its own network (see the module docstring)."""
    real, fake = critic(frames, truth), critic(frames, refined.detach())
    critic_loss = F.relu(1 - real.float()).mean() + F.relu(1 + fake.float()).mean()
    frozen = {name: value.detach() for name, value in critic.state_dict(keep_vars=True).items()}
    refiner_loss = -torch.func.functional_call(critic, frozen, (frames, refined)).float().mean()
    return critic_loss, refiner_loss


def pair_batches(pairs: dict[str, np.ndarray], batch_size: int, rng: np.random.Generator, device):
    """Endless random frame batches ``(generated, truth, portrait, has_portrait)`` as [-1, 1] tensors."""
    windows, frames = pairs["generated"].shape[:2]
    while True:
        w = rng.integers(0, windows, batch_size)
        f = rng.integers(0, frames, batch_size)
        pixels = [to_pixels(torch.from_numpy(x).to(device)) for x in (pairs["generated"][w, f], pairs["truth"][w, f])]
        portrait = to_pixels(torch.from_numpy(pairs["portrait"][w]).to(device))
        yield *pixels, portrait, torch.from_numpy(pairs["has_portrait"][w]).to(device)


def train_refiner(cfg: RecipeConfig, unet: STARCasterUNet, vae, encoder, prior) -> FrameRefiner:
    folder = cfg.out / "refiner"
    if (finished := finished_model(FrameRefiner, folder / "final")) is not None:
        return finished
    settings: RefinerConfig = cfg.refiner
    path = Path(settings.pairs) if settings.pairs else folder / "pairs.npz"
    unet = unet.eval()
    pairs = dict(np.load(path)) if path.is_file() else generate_pairs(cfg, unet, vae, encoder, prior, path)
    logger.info("refiner: %d windows of pairs", len(pairs["generated"]))
    torch.manual_seed(cfg.seed)
    nets = nn.ModuleDict({"refiner": _initial_refiner(settings)})
    if settings.adversarial_weight > 0:
        nets["critic"] = PatchCritic()
    rng = np.random.default_rng(cfg.seed)
    batches = pair_batches(pairs, settings.batch_size, rng, "cpu")

    def step(batch):
        generated, truth, portrait, has_portrait = batch
        refined = nets["refiner"](generated, portrait, has_portrait)
        loss, parts = refiner_loss(refined, truth, settings.edge_weight)
        if "critic" in nets:
            critic_loss, fooling = adversarial_losses(nets["critic"], generated, refined, truth)
            loss = loss + settings.adversarial_weight * fooling + critic_loss
            parts |= {"adversarial": fooling.item(), "critic": critic_loss.item()}
        return loss, parts

    loop = LoopSettings(
        settings.steps, settings.lr, cfg.bf16, cfg.ema_decay, cfg.grad_clip, cfg.log_every, cfg.save_every,
        settings.max_minutes,
    )  # fmt: skip
    nets = train("refiner", folder, nets, list(nets.parameters()), batches, step, loop)
    refiner = nets["refiner"].eval().requires_grad_(False)
    refiner.save_pretrained(folder / "final")
    return refiner


def _initial_refiner(settings: RefinerConfig) -> FrameRefiner:
    """A fresh refiner, or ``settings.init``'s weights (e.g. an L1-trained refiner to sharpen adversarially)."""
    if settings.init:
        logger.info("refiner: starting from %s", settings.init)
        return FrameRefiner.from_pretrained(settings.init, dtype=torch.float32)
    return FrameRefiner(channels=tuple(settings.channels))
