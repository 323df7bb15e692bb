"""Speed only: what a student that takes its context from its own denoising pass would cost end to end.

    PYTHONPATH=. python scripts/own_context_speed.py --checkpoint DIR [--chunk-length 8] [--threads 2]

Today every chunk costs two network passes on the denoiser's thread: the denoiser, then the
reference encoder writing the finished chunk into the KV cache (``Rollout.chunk`` →
``Context.add`` → ``encode_context``). Self-Forcing-style models skip the second pass: the
keys and values each self-attention layer computed for the chunk while denoising it go into
the cache as they are. This script patches the running pipeline to do exactly that, so the
wall time of that design is measured on the real pipeline (features, decoder, refiner, mp4)
before anything is trained for it. **The frames are meaningless** — the checkpoint was not
trained to read such a cache — and nothing here is used by the package. The numbers are in
docs/performance.md ("A distilled student").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from einops import rearrange

from starcaster.models import attention, rollout
from starcaster.speed.realtime import _speech_file, end_to_end
from starcaster.speed.streaming import load

ROOT = Path(__file__).resolve().parents[1]


def patch_own_context() -> None:
    """Cache each layer's keys/values of the chunk from the denoising pass; skip the encoder pass."""
    denoise = attention.ExtendedSelfAttnProcessor.__call__

    def remembering(self, attn, hidden_states, *args, context=None, **kwargs):
        if context is not None and context.cache is not None:  # the denoiser's pass, not a capture
            frames = context.frames
            keys = rearrange(attn.to_k(hidden_states), "(b f) n c -> b f n c", f=frames)
            values = rearrange(attn.to_v(hidden_states), "(b f) n c -> b f n c", f=frames)
            self.own_context = (keys, values)  # (an extra projection here; the design would reuse its own)
        return denoise(self, attn, hidden_states, *args, context=context, **kwargs)

    def add(self, clean, conditions):
        layers = self.unet.self_attention_layers()
        self._cache.append({name: layer.own_context for name, layer in layers.items()})

    attention.ExtendedSelfAttnProcessor.__call__ = remembering
    rollout.Context.add = add


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--chunk-length", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=15.7)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    patch_own_context()
    pipe = load(args.checkpoint, args.threads)
    pipe.warm_up()
    speech, image = _speech_file(ROOT, args.seconds), str(ROOT / "examples" / "portraits" / "portrait_0.png")
    out = Path("/tmp/starcaster-own-context.mp4")
    rows = [end_to_end(pipe, speech, image, out, chunk_length=args.chunk_length) for _ in range(args.repeats)]
    speech.unlink()
    out.unlink(missing_ok=True)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
