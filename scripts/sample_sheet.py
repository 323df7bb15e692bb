"""A contact sheet of held-out samples: ground truth vs the model in both identity modes.

    PYTHONPATH=. python scripts/sample_sheet.py --checkpoint checkpoints/starcaster-synth \
        --out docs/images/demo_checkpoint_samples.png

One test clip seen from each of its cameras (columns); rows: the ground-truth render, the model
given the reference portrait, the model given only the identity embedding. Each cell is the
frame at ``--at`` seconds, so a person can check the face (eyes, nose, mouth, hair) and the view.
With a checkpoint that has a frame refiner, each mode gets two rows: the video model's own
frames, then the refined ones (the same run: the refiner only redraws detail).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image

from starcaster import BUNDLED_CHECKPOINT, STARCasterPipeline
from starcaster.training.samples import sample_rows, tile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=BUNDLED_CHECKPOINT)
    parser.add_argument("--data", default="data/synthtalk")
    parser.add_argument("--out", default="docs/images/demo_checkpoint_samples.png")
    parser.add_argument("--at", type=float, default=2.0, help="which moment of each clip (seconds)")
    parser.add_argument("--scale", type=int, default=2, help="pixel upscaling of the sheet")
    args = parser.parse_args()
    torch.set_num_threads(1)
    pipe = STARCasterPipeline.from_pretrained(args.checkpoint, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    split, seconds = Path(args.data) / "test", args.at + 0.2
    rows, fps, _ = sample_rows(pipe, split, seconds=seconds, views=None)
    names = ["ground truth", "reference image", "identity only"]
    if pipe.refiner is not None:
        pipe.refiner = None
        plain, _, _ = sample_rows(pipe, split, seconds=seconds, views=None)
        rows = [rows[0], plain[1], rows[1], plain[2], rows[2]]
        names = ["ground truth", "reference image", "+ refiner", "identity only", "+ refiner"]
    sheet = tile(rows, int(round(args.at * fps)))
    image = Image.fromarray(sheet).resize((sheet.shape[1] * args.scale, sheet.shape[0] * args.scale), Image.NEAREST)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    image.save(args.out)
    print(f"wrote {args.out}: rows = {', '.join(names)}; columns = test cameras")


if __name__ == "__main__":
    main()
