"""Fine-tune the built-in identity encoder so its embedding describes the whole canonical face.

    PYTHONPATH=. python scripts/finetune_identity_encoder.py --checkpoint checkpoints/starcaster-synth \
        --minutes 15 --out runs/identity-canonical/encoder

The run-2 encoder was trained with an ArcFace loss on 300 identities and keeps only what it
needed to tell those apart: a read-out of its embedding recovers skin, hair and background but
not the shirt or the face geometry, which caps the identity prior (docs/training.md, run 7).
Here every batch is 32 fresh training identities (seeds drawn from the whole training range, so
tens of thousands over a run), each rendered twice from a random view (azimuth ±60°, elevation
±20°) with random mouth, blink and brows. Two losses:
- a linear head (512 → the prior's principal components) must predict the identity's canonical
  frontal portrait from either render (view- and expression-invariant, complete);
- in-batch InfoNCE between the two renders (the embedding stays an identity *discriminator*).
The encoder starts from the checkpoint's; the prior's PCA basis comes from its identity prior.
Two data-loader processes render; the main process trains at one thread.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from starcaster.data.heads import sample_head
from starcaster.data.render import RenderConfig, render
from starcaster.data.state import FrameState
from starcaster.data.synthtalk import IDENTITY_RANGES, reference_portrait
from starcaster.models.identity_encoder import IdentityEncoder
from starcaster.models.identity_prior import IdentityPrior
from starcaster.pixels import to_pixels

IDENTITIES_PER_BATCH = 32


class TwoViews(IterableDataset):
    """Endless ``(renders [B, 2, H, W, 3], canonical portraits [B, H, W, 3])`` of random identities."""

    def __init__(self, seed: int):
        self.seed = seed

    def __iter__(self):
        worker = get_worker_info()
        rng = np.random.default_rng([self.seed, worker.id if worker else 0])
        low, high = IDENTITY_RANGES["train"]
        while True:
            views, canonical = [], []
            for seed in rng.integers(low, high, IDENTITIES_PER_BATCH):
                state = FrameState.neutral(2, rng.uniform(-60, 60, 2), rng.uniform(-20, 20, 2))
                state.mouth_open[:] = rng.uniform(0, 1, 2) * (rng.random(2) < 0.6)
                state.blink[:] = rng.uniform(0, 1, 2) * (rng.random(2) < 0.2)
                state.brow[:] = rng.uniform(-1, 1, 2) * 0.5
                views.append(render(sample_head(int(seed)), state, RenderConfig()))
                canonical.append(reference_portrait(int(seed)))
            yield np.stack(views), np.stack(canonical)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="checkpoints/starcaster-synth")
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    encoder = IdentityEncoder.from_pretrained(f"{args.checkpoint}/identity_encoder", dtype=torch.float32).train()
    prior = IdentityPrior.from_pretrained(f"{args.checkpoint}/identity_prior", dtype=torch.float32)
    head = nn.Linear(encoder.config.embed_dim, prior.config.num_components)
    optimizer = torch.optim.AdamW(
        [{"params": encoder.parameters(), "lr": 3e-4}, {"params": head.parameters(), "lr": 1e-2}], weight_decay=1e-4
    )
    loader = DataLoader(TwoViews(0), batch_size=None, num_workers=2, prefetch_factor=4)
    scale, started, step = None, time.monotonic(), 0
    for views, canonical in loader:
        target = prior.coefficients(canonical.numpy())
        scale = target.std(0).clamp_min(1e-3) if scale is None else scale  # fixed after the first batch
        pixels = to_pixels(views.flatten(0, 1))  # [2B, 3, H, W], the two views of an identity adjacent
        with torch.autocast("cpu", dtype=torch.bfloat16):
            embeddings = encoder(pixels).float()
        reconstruction = F.mse_loss(head(embeddings), (target / scale).repeat_interleave(2, 0))
        logits = 20 * embeddings[0::2] @ embeddings[1::2].T
        contrast = F.cross_entropy(logits, torch.arange(len(logits)))
        loss = reconstruction + 0.2 * contrast
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        if step % 50 == 0:
            print(
                f"step {step} ({time.monotonic() - started:.0f} s): canonical {reconstruction:.4f} nce {contrast:.4f}"
            )
        if time.monotonic() - started > 60 * args.minutes:
            break
    encoder.eval().save_pretrained(args.out)
    print(f"wrote {args.out} after {step} steps")


if __name__ == "__main__":
    main()
