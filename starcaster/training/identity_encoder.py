"""Stage 0b: the built-in ArcFace-style identity encoder (512-D, additive angular margin).

Trained to tell SynthTalk identities apart across views, expressions and mouth shapes, so
its embedding is a *soft* identity: what stays the same about a face when everything else
changes. It ships in the checkpoint's ``identity_encoder/`` and gives image mode offline.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.shards import load_manifest
from ..models.configs import get_preset
from ..models.identity_encoder import IdentityEncoder
from ..pixels import to_pixels
from .checkpoint import finished_model
from .config import RecipeConfig
from .data import endless
from .trainer import LoopSettings, train


class ArcFaceHead(nn.Module):
    """Class centres on the unit sphere; logits s·cos(θ + m) for the true class (ArcFace)."""

    def __init__(self, num_classes: int, dim: int, margin: float, scale: float):
        super().__init__()
        self.centres = nn.Parameter(torch.randn(num_classes, dim) * 0.01)
        self.margin, self.scale = margin, scale

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cosine = embeddings.float() @ F.normalize(self.centres, dim=-1).T  # [N, K]
        theta = torch.acos(cosine.clamp(-1 + 1e-6, 1 - 1e-6))
        target = torch.cos(theta + self.margin)
        one_hot = F.one_hot(labels, cosine.shape[1]).bool()
        return F.cross_entropy(self.scale * torch.where(one_hot, target, cosine), labels)


class _EncoderWithHead(nn.Module):
    def __init__(self, encoder: IdentityEncoder, head: ArcFaceHead):
        super().__init__()
        self.encoder, self.head = encoder, head


def identity_classes(split_dir: Path) -> dict[int, int]:
    seeds = sorted({int(c["identity"]) for c in load_manifest(split_dir)["clips"]})
    return {seed: index for index, seed in enumerate(seeds)}


def identity_step(model: _EncoderWithHead, classes: dict[int, int], rng: np.random.Generator, frames_per_clip: int = 4):
    def step(sample: dict) -> tuple[torch.Tensor, dict]:
        device = model.head.centres.device
        frames = torch.as_tensor(sample["frames"]).to(device)  # [B, T, H, W, 3]
        picks = torch.from_numpy(rng.integers(0, frames.shape[1], (frames.shape[0], frames_per_clip))).to(device)
        chosen = torch.gather(frames, 1, picks[..., None, None, None].expand(-1, -1, *frames.shape[2:]))
        pixels = to_pixels(chosen.flatten(0, 1))
        pixels = pixels + 0.03 * torch.randn_like(pixels)  # robustness to generated-frame noise
        labels = torch.tensor([classes[int(s)] for s in sample["identity"]], device=device)
        labels = labels.repeat_interleave(frames_per_clip)
        loss = model.head(model.encoder(pixels), labels)
        return loss, {"arcface": loss.item()}

    return step


def train_identity_encoder(cfg: RecipeConfig) -> IdentityEncoder:
    folder = cfg.out / "identity_encoder"
    final = folder / "final"
    if (finished := finished_model(IdentityEncoder, final)) is not None:
        return finished
    torch.manual_seed(cfg.seed)
    classes = identity_classes(cfg.data / "train")
    encoder = IdentityEncoder(**get_preset(cfg.preset).identity_encoder)
    model = _EncoderWithHead(
        encoder, ArcFaceHead(len(classes), encoder.config.embed_dim, cfg.identity.margin, cfg.identity.scale)
    )
    batches = endless(cfg.data / "train", 8, max(1, cfg.identity.batch_size // 4), ("talking", "multiview"), cfg.seed)
    step = identity_step(model, classes, np.random.default_rng(cfg.seed))
    settings = LoopSettings(
        cfg.identity.steps,
        cfg.identity.lr,
        cfg.bf16,
        None,
        cfg.grad_clip,
        cfg.log_every,
        cfg.save_every,
        cfg.identity.max_minutes,
    )
    train("identity_encoder", folder, model, list(model.parameters()), batches, step, settings)
    encoder.save_pretrained(final)
    return encoder.eval().requires_grad_(False)


@torch.no_grad()
def verification_accuracy(encoder: IdentityEncoder, split_dir: Path, pairs: int = 400, seed: int = 0) -> float:
    """Same/different-identity accuracy on held-out frames at the best cosine threshold."""
    batches = endless(split_dir, 8, 4, ("talking", "multiview"), seed)
    rng = np.random.default_rng(seed)
    embeddings, labels = [], []
    while sum(len(e) for e in embeddings) < pairs:
        sample = next(batches)
        frames = torch.as_tensor(sample["frames"])[:, rng.integers(0, 8)].to(encoder.device)
        embeddings.append(encoder(to_pixels(frames)))
        labels.extend(int(s) for s in sample["identity"])
    emb, lab = torch.cat(embeddings), np.array(labels)
    sims = (emb @ emb.T).float().cpu().numpy()
    same = lab[:, None] == lab[None, :]
    upper = np.triu_indices(len(lab), 1)
    scores, truth = sims[upper], same[upper]
    best = max(((scores >= t) == truth).mean() for t in np.linspace(-1, 1, 201))
    return float(best) if not math.isnan(best) else 0.0
