"""Evaluate the demo recipe's stage checkpoints with the same harness (the ablation table).

    PYTHONPATH=. python scripts/ablations.py --run runs/demo --data data/synthtalk --out docs/results

Rows: the final model in reference-image and identity-only modes, and the model *before*
self-forcing (after `reference`) and *before* view adaptation (after `self_forcing`), so each
later stage is measured by removing it. Writes one JSON per row and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from starcaster.eval.harness import EvalConfig, evaluate_pipeline
from starcaster.models.identity_encoder import IdentityEncoder
from starcaster.models.unet import STARCasterUNet
from starcaster.training.config import load_config
from starcaster.training.recipe import assemble_pipeline
from starcaster.training.vae import load_vae

ROWS = {  # name: (stage whose weights, mode)
    "full (reference image)": ("view", "reference"),
    "full (identity only)": ("view", "embedding"),
    "without view adaptation": ("self_forcing", "reference"),
    "without self-forcing": ("reference", "reference"),
    "motion stage only (no reference encoder training)": ("motion", "embedding"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", default="runs/demo")
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--data", default="data/synthtalk")
    parser.add_argument("--out", default="docs/results")
    parser.add_argument("--max-clips", type=int, default=2)
    parser.add_argument("--rows", nargs="*", default=list(ROWS))
    parser.add_argument("--guidance-camera", type=float, default=1.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(args.config, out=args.run)
    vae = load_vae(cfg.out)
    encoder = IdentityEncoder.from_pretrained(cfg.out / "identity_encoder" / "final").eval()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.rows:
        stage, mode = ROWS[name]
        unet = STARCasterUNet.from_pretrained(cfg.out / stage / "final")
        pipe = assemble_pipeline(cfg, unet, vae, encoder)
        result = evaluate_pipeline(
            pipe,
            Path(args.data) / "test",
            EvalConfig(max_clips=args.max_clips, mode=mode, guidance_scale_camera=args.guidance_camera),
        )
        slug = name.split(" (")[0].replace(" ", "_") + f"_{mode}"
        (out / f"ablation_{slug}.json").write_text(json.dumps(result, indent=1, default=float))
        print(name, json.dumps({k: round(float(v), 3) for k, v in result.items()}))


if __name__ == "__main__":
    main()
