"""A contact sheet of held-out samples: ground truth vs the model in both identity modes.

    PYTHONPATH=. python scripts/sample_sheet.py --checkpoint checkpoints/starcaster-synth \
        --out docs/images/demo_checkpoint_samples.png

One test clip seen from each of its cameras (columns); rows: the ground-truth render, the model
given the reference portrait, the model given only the identity embedding. Each cell is the
frame at ``--at`` seconds, so a person can check the face (eyes, nose, mouth, hair) and the view.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from starcaster import STARCasterPipeline
from starcaster.eval.harness import EvalConfig, load_sequences, pipeline_videos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="checkpoints/starcaster-synth")
    parser.add_argument("--data", default="data/synthtalk")
    parser.add_argument("--out", default="docs/images/demo_checkpoint_samples.png")
    parser.add_argument("--at", type=float, default=2.0, help="which moment of each clip (seconds)")
    parser.add_argument("--guidance-camera", type=float, default=1.0)
    parser.add_argument("--scale", type=int, default=2, help="pixel upscaling of the sheet")
    args = parser.parse_args()
    torch.set_num_threads(1)
    pipe = STARCasterPipeline.from_pretrained(args.checkpoint, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    rows = []
    for mode in ("reference", "embedding"):
        config = EvalConfig(max_clips=1, seconds=args.at + 0.2, mode=mode, guidance_scale_camera=args.guidance_camera)
        sequences, fps = load_sequences(Path(args.data) / "test", config)
        if not rows:
            rows.append([s["frames"] for s in sequences])
        rows.append(pipeline_videos(pipe, sequences, fps, config))
    frame = int(round(args.at * fps))
    sheet = np.concatenate([np.concatenate([video[frame] for video in row], axis=1) for row in rows], axis=0)
    image = Image.fromarray(sheet).resize((sheet.shape[1] * args.scale, sheet.shape[0] * args.scale), Image.NEAREST)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    image.save(args.out)
    print(f"wrote {args.out}: rows = ground truth, reference image, identity only; columns = test cameras")


if __name__ == "__main__":
    main()
