"""Swap a checkpoint's identity encoder for a more informative one, keeping its video model valid.

    PYTHONPATH=. python scripts/swap_identity_encoder.py --checkpoint checkpoints/starcaster-synth \
        --encoder runs/identity-canonical/encoder --out runs/export_run7

The video model was trained on the old encoder's embeddings. A ridge map new → old embedding
(fitted on the reference portraits of ``--identities`` training identities) is folded into the
first linear layer of the UNet's identity projector, so the projector sees what it was trained
on; the identity prior is refitted on the new embeddings (which is where the new encoder's extra
information pays off). Reports the map's held-out R² (docs/training.md, run 7).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from starcaster import STARCasterPipeline
from starcaster.data.synthtalk import IDENTITY_RANGES
from starcaster.models.identity_encoder import IdentityEncoder
from starcaster.models.identity_prior import IdentityPrior
from starcaster.training.identity_prior import embed_portraits, render_portraits
from starcaster.training.recipe import export_pipeline


def ridge_map(new: torch.Tensor, old: torch.Tensor, ridge: float = 1e-2) -> tuple[torch.Tensor, torch.Tensor]:
    """``old ≈ new @ weight + bias`` in float64 (least squares with a small ridge)."""
    design = torch.cat([new.double(), torch.ones(len(new), 1, dtype=torch.float64)], 1)
    gram = design.T @ design + ridge * torch.eye(design.shape[1], dtype=torch.float64)
    solution = torch.linalg.solve(gram, design.T @ old.double())
    return solution[:-1].float(), solution[-1].float()


@torch.no_grad()
def fold_into_projector(unet, weight: torch.Tensor, bias: torch.Tensor) -> None:
    """Make the identity projector's first layer read new embeddings as it read old ones."""
    first = unet.identity_proj.net[0]  # Linear(512, hidden): y = W0 · old + b0
    first.bias.copy_(first.weight.float() @ bias + first.bias.float())
    first.weight.copy_(first.weight.float() @ weight.T)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--encoder", required=True, help="folder of the new IdentityEncoder")
    parser.add_argument("--out", required=True)
    parser.add_argument("--identities", type=int, default=40_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    pipe = STARCasterPipeline.from_pretrained(args.checkpoint)
    new_encoder = IdentityEncoder.from_pretrained(args.encoder, dtype=torch.float32).eval()
    low = IDENTITY_RANGES["train"][0]
    portraits = render_portraits(list(range(low, low + args.identities)), pipe.image_size, args.workers)
    held_out = render_portraits(
        list(range(IDENTITY_RANGES["val"][0], IDENTITY_RANGES["val"][0] + 500)), pipe.image_size
    )
    old, new = embed_portraits(pipe.identity_encoder, portraits), embed_portraits(new_encoder, portraits)
    weight, bias = ridge_map(new, old)
    old_val, new_val = embed_portraits(pipe.identity_encoder, held_out), embed_portraits(new_encoder, held_out)
    residual = ((new_val @ weight + bias - old_val) ** 2).sum()
    print(f"new → old map, held-out R² {1 - residual / ((old_val - old_val.mean(0)) ** 2).sum():.4f}")
    fold_into_projector(pipe.unet, weight, bias)
    prior = IdentityPrior.from_config(pipe.identity_prior.config)
    prior.fit(new, portraits)
    pipe.register_modules(identity_encoder=new_encoder, identity_prior=prior.eval())
    export_pipeline(pipe, Path(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
