"""Fine-tune a published checkpoint's identity encoder so its embedding describes the whole canonical face.

    PYTHONPATH=. python scripts/finetune_identity_encoder.py --checkpoint checkpoints/starcaster-synth \
        --minutes 15 --out runs/identity-canonical/encoder

The loop is the recipe's (``starcaster/training/identity_canonical.py``: canonical-portrait
regression + two-view InfoNCE on fresh identities, two processes rendering); here it starts from
the checkpoint's encoder, and the targets are the principal components of the checkpoint's identity
prior (run 7). The checkpoint's video model reads the old embeddings, so follow with
``scripts/swap_identity_encoder.py``. A fresh run does this inside the recipe instead
(``identity.canonical_steps``), before the video stages.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from starcaster.models.identity_encoder import IdentityEncoder
from starcaster.models.identity_prior import IdentityPrior
from starcaster.training.config import IdentityConfig
from starcaster.training.identity_canonical import fine_tune_canonical


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="checkpoints/starcaster-synth")
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    encoder = IdentityEncoder.from_pretrained(f"{args.checkpoint}/identity_encoder", dtype=torch.float32)
    basis = IdentityPrior.from_pretrained(f"{args.checkpoint}/identity_prior", dtype=torch.float32).eval()
    settings = IdentityConfig(canonical_steps=10**9, canonical_max_minutes=args.minutes)
    out = Path(args.out)
    encoder = fine_tune_canonical(encoder, basis, settings, out.parent / f"{out.name}-run", seed=0, bf16=True)
    encoder.save_pretrained(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
