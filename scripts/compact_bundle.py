"""Rebuild the bundled checkpoint's int8 UNet storage from the fp16 originals, and measure the change.

    git archive 2f86f60 checkpoints/starcaster-synth | tar -x -C /tmp/fp16   # the fp16 originals (run 8)
    PYTHONPATH=. python scripts/compact_bundle.py /tmp/fp16/checkpoints/starcaster-synth --out /tmp/int8

Writes ``--out`` with ``starcaster.compact.compact_checkpoint`` (UNet weights with ≥ 16,384
values as int8 per output channel), then generates from both folders on fixed seeds
(2 s of ``examples/audio``, azimuth 20°, reference-portrait and identity-embedding modes) and
prints the per-pixel uint8 difference of the frames: the numbers in checkpoints.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from starcaster import STARCasterPipeline
from starcaster.audio import load_audio
from starcaster.compact import compact_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def generate(pipe: STARCasterPipeline, mode: str, seed: int) -> np.ndarray:
    """``[F, H, W, 3]`` uint8 frames of one fixed request."""
    wave = load_audio(str(ROOT / "examples" / "audio" / "hello.wav"))[: 2 * 16_000]
    kwargs = {"azimuth": 20.0, "generator": torch.Generator().manual_seed(seed)}
    if mode == "reference":
        return pipe(wave, image=str(ROOT / "examples" / "portraits" / "portrait_0.png"), **kwargs).frames
    return pipe(wave, identity_embedding=np.load(ROOT / "examples" / "embeddings" / "identity_0.npy"), **kwargs).frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("original", type=Path, help="the fp16 checkpoint folder")
    parser.add_argument("--out", type=Path, required=True, help="new folder for the int8-stored checkpoint")
    parser.add_argument("--min-elements", type=int, default=16_384)
    args = parser.parse_args()
    torch.set_num_threads(1)
    report = compact_checkpoint(args.original, args.out, min_elements=args.min_elements)
    print(f"{report.bytes_before / 1e6:.2f} MB → {report.bytes_after / 1e6:.2f} MB; "
          f"{len(report.quantized['unet'])} UNet tensors int8")  # fmt: skip
    pipes = [STARCasterPipeline.from_pretrained(folder) for folder in (args.original, args.out)]
    for pipe in pipes:
        pipe.set_progress_bar_config(disable=True)
    print("| mode | seed | frames | max | mean | 99th pct |\n|---|---|---|---|---|---|")
    for mode in ("reference", "embedding"):
        for seed in (0, 1):
            before, after = (generate(pipe, mode, seed).astype(int) for pipe in pipes)
            diff = np.abs(before - after)
            print(
                f"| {mode} | {seed} | {len(diff)} | {diff.max()} | {diff.mean():.3f} | {np.percentile(diff, 99):.0f} |"
            )


if __name__ == "__main__":
    main()
