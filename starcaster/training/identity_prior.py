"""Stage 0c: the identity prior (embedding → canonical portrait, ``models/identity_prior.py``).

Data is one frontal, neutral SynthTalk portrait per training identity — the same picture
every clip of that identity carries as its reference — for tens of thousands of identities
(a portrait renders in ~6 ms, a talking clip in seconds), embedded by the frozen identity
encoder. The fit is closed-form kernel ridge regression (``IdentityPrior.fit``): no steps, no
optimiser, a minute or two for 40,000 identities on a CPU, dominated by rendering.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ..data.synthtalk import IDENTITY_RANGES, reference_portrait
from ..models.identity_encoder import IdentityEncoder
from ..models.identity_prior import IdentityPrior
from ..pixels import to_pixels
from .checkpoint import finished_model
from .config import RecipeConfig

logger = logging.getLogger(__name__)

VAL_IDENTITIES = 256


def render_portraits(seeds: list[int], size: int, workers: int = 1) -> np.ndarray:
    """uint8 ``[N, size, size, 3]`` reference portraits of identity ``seeds``."""
    sizes = [size] * len(seeds)
    if workers <= 1:
        return np.stack(list(map(reference_portrait, seeds, sizes)))
    with ProcessPoolExecutor(workers) as pool:
        return np.stack(list(pool.map(reference_portrait, seeds, sizes, chunksize=256)))


@torch.no_grad()
def embed_portraits(encoder: IdentityEncoder, portraits: np.ndarray, batch: int = 256) -> torch.Tensor:
    """``[N, 512]`` embeddings of uint8 portraits by the frozen encoder."""
    device = encoder.device
    chunks = [
        encoder(to_pixels(torch.from_numpy(portraits[i : i + batch]).to(device)).to(encoder.dtype)).float()
        for i in range(0, len(portraits), batch)
    ]
    return torch.cat(chunks)


@torch.no_grad()
def portrait_error(prior: IdentityPrior, encoder: IdentityEncoder, seeds: list[int], size: int) -> float:
    """Mean absolute pixel error (0–255) of the prior's portraits of unseen identities."""
    truth = render_portraits(seeds, size)
    embeddings = embed_portraits(encoder, truth)
    guesses = np.stack([prior.portrait(e) for e in embeddings.cpu().numpy()])
    return float(np.abs(guesses.astype(np.float32) - truth).mean())


def train_identity_prior(cfg: RecipeConfig, encoder: IdentityEncoder) -> IdentityPrior:
    folder = cfg.out / "identity_prior"
    final = folder / "final"
    if (finished := finished_model(IdentityPrior, final)) is not None:
        return finished
    size, settings = encoder.config.image_size, cfg.prior
    low = IDENTITY_RANGES["train"][0]
    started = time.monotonic()
    portraits = render_portraits(list(range(low, low + settings.identities)), size, settings.workers)
    embeddings = embed_portraits(encoder, portraits).cpu()
    logger.info("identity prior: %d portraits rendered and embedded", len(portraits))
    prior = IdentityPrior(
        embed_dim=encoder.config.embed_dim,
        image_size=size,
        num_features=settings.features,
        bandwidth=settings.bandwidth,
        num_components=settings.components,
        seed=cfg.seed,
    )
    prior.fit(embeddings, portraits, settings.ridge)
    prior = prior.eval().requires_grad_(False)
    _write_validation(prior, encoder, size, folder, minutes=(time.monotonic() - started) / 60)
    prior.save_pretrained(final)
    return prior


def _write_validation(prior: IdentityPrior, encoder: IdentityEncoder, size: int, folder: Path, minutes: float) -> None:
    low = IDENTITY_RANGES["val"][0]
    error = portrait_error(prior, encoder, list(range(low, low + VAL_IDENTITIES)), size)
    logger.info("identity prior: val portrait error %.2f / 255 (fitted in %.1f min)", error, minutes)
    folder.mkdir(parents=True, exist_ok=True)
    record = {"val_portrait_mae": error, "val_identities": VAL_IDENTITIES, "minutes": round(minutes, 2)}
    (folder / "metrics.json").write_text(json.dumps(record))
