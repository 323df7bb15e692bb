"""Accelerator speed of the chunk loop (issue 16, item 7): frames/s, eager vs compiled, demo and real.

Prepared so that a session lent a GPU can run it at once, inside the device budget:

    python scripts/gpu_speed.py --out gpu_speed.json                       # on the GPU machine
    python scripts/gpu_speed.py --device cpu --models tiny --steps 1 --chunks 3   # a smoke test

For each model (``demo``: the bundled checkpoint; ``real`` / ``real-small`` / ``tiny``: the preset
with random weights), each step count and each compile mode, ``starcaster.speed.chunk_rate``
times steady-state chunks of ``Rollout.chunk`` (denoise + KV-cache write) and prints one JSON
line; ``--out`` writes them all. Each row is written as soon as it is measured, so a run stopped
by the device's time limit keeps what it had.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _unet(model: str):
    """The model's UNet and its scheduler config (the bundled checkpoint for ``demo``)."""
    from starcaster import BUNDLED_CHECKPOINT, STARCasterPipeline, build_pipeline

    if model == "demo":
        pipe = STARCasterPipeline.from_pretrained(str(ROOT / BUNDLED_CHECKPOINT))
    else:
        pipe = build_pipeline(model)
    return pipe.unet.eval(), dict(pipe.scheduler.config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16" if torch.cuda.is_available() else "fp32")
    parser.add_argument("--models", nargs="+", default=["demo", "real"])
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 4])
    parser.add_argument(
        "--compile", nargs="+", default=["none", "reduce-overhead"], help="none, default, reduce-overhead"
    )
    parser.add_argument("--chunks", type=int, default=20, help="timed chunks per row")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from diffusers.utils import logging as diffusers_logging

    from starcaster.speed.chunk_rate import chunk_rate

    diffusers_logging.set_verbosity_error()  # its note on casting a model with .to(dtype) is not for us

    rows, out = [], Path(args.out) if args.out else None
    device = torch.device(args.device)
    info = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
    }
    for model in args.models:
        base, scheduler = _unet(model)  # built once (the real preset takes ~30 s); compiled rows get a copy
        base.to(device, DTYPES[args.dtype])
        for mode in args.compile:
            for steps in args.steps:
                unet = base if mode == "none" else copy.deepcopy(base)  # a compiled module keeps its graphs
                began = time.perf_counter()
                row = chunk_rate(
                    unet, model, steps, scheduler, None if mode == "none" else mode, timed_chunks=args.chunks
                )
                rows.append({**row.as_dict(), **info, "row_s": round(time.perf_counter() - began, 1)})
                print(json.dumps(rows[-1]), flush=True)
                if out is not None:
                    out.write_text(json.dumps(rows, indent=1) + "\n")
                del unet
                if device.type == "cuda":
                    torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
