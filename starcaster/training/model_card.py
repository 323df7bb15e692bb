"""The model card (README.md with Hub front matter) written beside an exported checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

CARD = """---
license: apache-2.0
library_name: diffusers
pipeline_tag: image-to-video
tags: [talking-head, audio-driven, video-diffusion, autoregressive, starcaster, synthetic-data]
---

# STARCaster · SynthTalk demo checkpoint

A small STARCaster model (spatio-temporal autoregressive video diffusion for identity- and
view-aware talking portraits, arXiv 2512.13247) trained **only on SynthTalk**, the project's
procedural talking-head data, on a 2-core CPU. It exists so the demo app and the tests work
out of the box, offline, through exactly the code path real weights use.

- Frames: 64×64, 25 fps (demo preset: pixel-unshuffle latents, 48×16×16); chunk of 4 frames,
  4 DDIM steps (x0-prediction) per chunk.
- Identity: the built-in ArcFace-style encoder in `identity_encoder/` (512-D); embeddings from
  insightface are **not** in this checkpoint's identity space.
- Views: azimuth ±90°, elevation ±30° (the training range).

## Intended use
Demonstrating and testing the STARCaster pipeline: reference-image mode, identity-embedding
mode, camera paths and free-viewpoint sweeps, on SynthTalk-style portraits. It is **not** a
model of real faces: real photos are out of distribution and give cartoon-like heads.

## Training
{training}

Reproduce: `python -m starcaster synth --out data/synthtalk --clips 1500 --eval-clips 10 --workers 2`
then `python -m starcaster train --config configs/demo.yaml --export checkpoints/starcaster-synth`
(details and wall times in the repository's docs/training.md).

## Metrics (held-out SynthTalk test identities and voices, `python -m starcaster eval`)
{metrics}

## Limitations
Tiny model, tiny compute: blurrier than the ground truth, lip-sync and view control far from
a real-scale model, identities limited to SynthTalk's parametric heads. Metrics use the
project's own expert networks and are not comparable with published numbers.
"""


def write_model_card(folder: Path, training: str, metrics: dict | str | None) -> Path:
    if isinstance(metrics, dict):
        metrics = "```json\n" + json.dumps(metrics, indent=1) + "\n```"
    text = CARD.format(training=training, metrics=metrics or "Not measured yet.")
    path = Path(folder) / "README.md"
    path.write_text(text)
    return path
