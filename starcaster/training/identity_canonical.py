"""Stage 0b′: fine-tune the identity encoder so its embedding describes the whole canonical face.

The ArcFace stage trains on a few hundred identities and keeps only what it needs to tell
those apart: a read-out of its embedding recovers skin, hair and background but not the shirt
or the face geometry, which caps the identity prior (docs/training.md, run 7). Here every batch
is ``canonical_batch`` fresh training identities (seeds drawn from the whole training range, so
tens of thousands over a run), each rendered twice from a random view (azimuth ±60°, elevation
±20°) with random mouth, blink and brows. Two losses:

- a linear head (512 → the portraits' principal components) must predict the identity's
  canonical frontal portrait from either render (view- and expression-invariant, complete);
- in-batch InfoNCE between the two renders (the embedding stays an identity *discriminator*).

In the recipe (``identity.canonical_steps`` > 0) it runs right after the ArcFace stage, so the
prior and every video stage use the fine-tuned embeddings. ``scripts/finetune_identity_encoder.py``
runs the same loop on a published checkpoint's encoder (run 7; its video model then needs
``scripts/swap_identity_encoder.py``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ..data.heads import sample_head
from ..data.render import RenderConfig, render
from ..data.state import FrameState
from ..data.synthtalk import IDENTITY_RANGES, reference_portrait
from ..models.identity_encoder import IdentityEncoder
from ..models.identity_prior import IdentityPrior
from ..pixels import to_pixels
from .checkpoint import finished_model
from .config import IdentityConfig, RecipeConfig
from .identity_prior import render_portraits
from .trainer import LoopSettings, train

logger = logging.getLogger(__name__)

CONTRAST_WEIGHT, CONTRAST_SCALE = 0.2, 20.0
HEAD_LR = 1e-2  # the linear head starts from nothing; the encoder only adjusts


class TwoViews(IterableDataset):
    """Endless ``(renders [B, 2, H, W, 3], canonical portraits [B, H, W, 3])`` of random training identities."""

    def __init__(self, identities: int, size: int, seed: int):
        self.identities, self.size, self.seed = identities, size, seed

    def __iter__(self):
        worker = get_worker_info()
        rng = np.random.default_rng([self.seed, worker.id if worker else 0])
        low, high = IDENTITY_RANGES["train"]
        config = RenderConfig(size=self.size)
        while True:
            views, canonical = [], []
            for seed in rng.integers(low, high, self.identities):
                state = FrameState.neutral(2, rng.uniform(-60, 60, 2), rng.uniform(-20, 20, 2))
                state.mouth_open[:] = rng.uniform(0, 1, 2) * (rng.random(2) < 0.6)
                state.blink[:] = rng.uniform(0, 1, 2) * (rng.random(2) < 0.2)
                state.brow[:] = rng.uniform(-1, 1, 2) * 0.5
                views.append(render(sample_head(int(seed)), state, config))
                canonical.append(reference_portrait(int(seed), self.size))
            yield np.stack(views), np.stack(canonical)


def portrait_basis(size: int, count: int, components: int, seed: int, workers: int = 1) -> IdentityPrior:
    """An (unfitted) prior whose portrait space — mean and principal components of ``count`` training
    identities' canonical portraits — is fitted: the coordinates the fine-tune's head predicts."""
    low = IDENTITY_RANGES["train"][0]
    portraits = render_portraits(list(range(low, low + count)), size, workers)
    basis = IdentityPrior(image_size=size, num_components=components, num_features=1, seed=seed)
    basis.fit_basis(portraits)
    return basis.eval().requires_grad_(False)


def canonical_step(model: nn.ModuleDict, basis: IdentityPrior):
    """Loss of one batch: canonical-portrait regression (in unit-variance PCA coordinates) + InfoNCE."""
    scale: list[torch.Tensor] = []  # fixed after the first batch

    def step(batch) -> tuple[torch.Tensor, dict]:
        views, canonical = batch
        target = basis.coefficients(canonical.numpy())
        if not scale:
            scale.append(target.std(0).clamp_min(1e-3))
        embeddings = model["encoder"](to_pixels(views.flatten(0, 1))).float()  # the two views of an identity adjacent
        regression = F.mse_loss(model["head"](embeddings).float(), (target / scale[0]).repeat_interleave(2, 0))
        logits = CONTRAST_SCALE * embeddings[0::2] @ embeddings[1::2].T
        contrast = F.cross_entropy(logits, torch.arange(len(logits)))
        return regression + CONTRAST_WEIGHT * contrast, {"canonical": regression.item(), "nce": contrast.item()}

    return step


def fine_tune_canonical(
    encoder: IdentityEncoder,
    basis: IdentityPrior,
    settings: IdentityConfig,
    folder: Path,
    seed: int,
    bf16: bool,
    log_every: int = 20,
    save_every: int = 100,
) -> IdentityEncoder:
    """Run the fine-tune on ``encoder`` (in place; resumable in ``folder/state``); returns it in eval mode."""
    model = nn.ModuleDict(
        {"encoder": encoder.train(), "head": nn.Linear(encoder.config.embed_dim, basis.config.num_components)}
    )
    dataset = TwoViews(settings.canonical_batch, encoder.config.image_size, seed)
    workers = settings.canonical_workers
    batches = iter(DataLoader(dataset, batch_size=None, num_workers=workers, prefetch_factor=4 if workers else None))
    groups = [{"params": list(encoder.parameters())}, {"params": list(model["head"].parameters()), "lr": HEAD_LR}]
    loop = LoopSettings(
        settings.canonical_steps, settings.canonical_lr, bf16, None, 1.0, log_every, save_every,
        settings.canonical_max_minutes,
    )  # fmt: skip
    train("identity_canonical", folder, model, groups, batches, canonical_step(model, basis), loop)
    return encoder.eval().requires_grad_(False)


def describe_canonical_face(cfg: RecipeConfig, encoder: IdentityEncoder) -> IdentityEncoder:
    """The recipe's sub-stage: the ArcFace encoder, fine-tuned (or this run's finished fine-tune)."""
    folder = cfg.out / "identity_canonical"
    final = folder / "final"
    if (finished := finished_model(IdentityEncoder, final)) is not None:
        return finished
    settings = cfg.identity
    torch.manual_seed(cfg.seed)
    basis = portrait_basis(
        encoder.config.image_size,
        settings.canonical_basis,
        settings.canonical_components,
        cfg.seed,
        settings.canonical_workers,
    )
    encoder = fine_tune_canonical(encoder, basis, settings, folder, cfg.seed, cfg.bf16, cfg.log_every, cfg.save_every)
    encoder.save_pretrained(final)
    logger.info("identity encoder fine-tuned to describe the canonical face: %s", final)
    return encoder
