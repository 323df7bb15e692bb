"""Pin the teacher checkpoint's outputs on fixed seeds, to prove a refactor changes nothing (the teacher,
not the live bundle: it runs every context mode, recompute too).

``--record`` writes every case's uint8 frames and clean latents to an npz; ``--check`` runs the
same cases again and prints each case's largest absolute difference (0 = bit-identical).

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/pin_behaviour.py --record /work/scratch/pin/base.npz
    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/pin_behaviour.py --check /work/scratch/pin/base.npz
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from starcaster import STARCasterPipeline
from starcaster.audio import SAMPLE_RATE, load_audio

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "checkpoints" / "starcaster-synth"
PORTRAIT = ROOT / "examples" / "portraits" / "portrait_0.png"
EMBEDDING = ROOT / "examples" / "embeddings" / "identity_0.npy"
AUDIO = ROOT / "examples" / "audio" / "hello.wav"
SECONDS = 1.2

CASES: dict[str, dict] = {
    "reference": {"image": PORTRAIT},
    "identity": {"identity_embedding": EMBEDDING},
    "sweep": {"identity_embedding": EMBEDDING, "camera_path": "sweep", "num_frames": 12},
    "orbit": {"image": PORTRAIT, "camera_path": "orbit"},
    "reference_4steps": {"image": PORTRAIT, "num_inference_steps": 4},
    "identity_recompute": {"identity_embedding": EMBEDDING, "context_mode": "recompute", "context_frames": 4},
    "identity_cfg": {"identity_embedding": EMBEDDING, "guidance_scale_audio": 2.0, "noise_sharing": 0.5},
    "reference_bf16_camera_cfg": {"image": PORTRAIT, "precision": "bf16", "guidance_scale_camera": 2.0},
}


def run_case(pipe: STARCasterPipeline, audio: np.ndarray, settings: dict, seed: int = 7) -> dict[str, np.ndarray]:
    """uint8 frames ``[F, H, W, 3]`` and clean latents ``[F, C, h, w]`` of one case on ``seed``."""
    out = {}
    for output_type in ("np", "latent"):
        generator = torch.Generator().manual_seed(seed)
        result = pipe(audio=audio, generator=generator, output_type=output_type, **settings)
        out["frames" if output_type == "np" else "latents"] = np.asarray(result.frames)
    return out


def _tiny_batch(size: int, frames: int, channels: int = 4):
    """A random training batch for the ``tiny`` preset (latents ``[B, T, 4, 16, 16]``, pixels 32²)."""
    from starcaster.training.batches import Batch

    g = torch.Generator().manual_seed(3)
    r = lambda *shape: torch.randn(*shape, generator=g)  # noqa: E731
    return Batch(latents=r(size, frames, channels, 16, 16), pixels=r(size, frames, 3, 32, 32).clamp(-1, 1),
                 reference=r(size, 1, channels, 16, 16), reference_pixels=r(size, 3, 32, 32).clamp(-1, 1),
                 identity=torch.nn.functional.normalize(r(size, 512), dim=-1), audio=r(size, frames, 3, 16),
                 views=r(size, frames, 2) * 10, has_audio=torch.ones(size, dtype=torch.bool),
                 weights=1 + r(size, frames, 1, 16, 16).abs())  # fmt: skip


def training_cases() -> dict[str, np.ndarray]:
    """The training rollouts on a tiny random model: self-forcing loss and gradients, teacher step, refiner pairs."""
    from diffusers import DDIMScheduler

    from starcaster.models.autoencoders import build_vae
    from starcaster.models.configs import get_preset
    from starcaster.models.unet import STARCasterUNet
    from starcaster.training import refiner
    from starcaster.training.config import StageConfig

    steps = _training_steps()
    spec = get_preset("tiny")
    torch.manual_seed(0)
    unet = STARCasterUNet(**spec.unet).train()
    vae = build_vae(spec)
    out = {}
    for name, kind, sharing in (
        ("sf_shared", "self_forcing", 1.0),
        ("sf_own", "self_forcing", 0.3),
        ("teacher", "teacher", 0.0),
    ):
        stage = StageConfig(name, 1, kind=kind, chunk_length=2, rollout_chunks=3, train_window=4, reference_prob=0.5,
                            noise_sharing=sharing, context_frames=2, num_inference_steps=3)  # fmt: skip
        losses = []
        unet.zero_grad()
        for seed in range(3):
            torch.manual_seed(10 + seed)
            ctx = steps["StepContext"](unet, DDIMScheduler(**spec.scheduler), None, stage, np.random.default_rng(seed))
            loss, _ = steps[kind](ctx, _tiny_batch(2, 6))
            loss.backward()
            losses.append(loss.item())
        out[f"train_{name}/loss"] = np.array(losses)
        out[f"train_{name}/grads"] = torch.cat(
            [p.grad.flatten() for p in unet.parameters() if p.grad is not None]
        ).numpy()
    unet.eval()
    torch.manual_seed(5)
    batch = _tiny_batch(2, refiner.CONTEXT_FRAMES + 4)
    frames = refiner.roll_out(unet, DDIMScheduler(**spec.scheduler), vae, batch, batch.reference_pixels, 2)
    out["train_refiner/frames"] = frames.numpy()
    return out


def _training_steps() -> dict:
    """The step functions, wherever the refactor put them."""
    try:
        from starcaster.training import self_forcing, step_context, teacher_forcing

        return {"self_forcing": self_forcing.self_forcing_step, "teacher": teacher_forcing.teacher_step,
                "StepContext": step_context.StepContext}  # fmt: skip
    except ImportError:
        from starcaster.training import steps

        return {
            "self_forcing": steps.self_forcing_step,
            "teacher": steps.teacher_step,
            "StepContext": steps.StepContext,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--record", type=Path)
    mode.add_argument("--check", type=Path)
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    parser.add_argument("--no-training", action="store_true", help="skip the tiny-model training rollouts")
    args = parser.parse_args()
    torch.set_num_threads(1)
    pipe = STARCasterPipeline.from_pretrained(str(CHECKPOINT))
    audio = load_audio(AUDIO)[: int(SECONDS * SAMPLE_RATE)]
    results = {
        f"{name}/{key}": value for name in args.cases for key, value in run_case(pipe, audio, CASES[name]).items()
    }
    if not args.no_training:
        results |= training_cases()
    if args.record:
        args.record.parent.mkdir(parents=True, exist_ok=True)
        np.savez(args.record, **results)
        print(f"recorded {len(results)} arrays to {args.record}")
        return 0
    pinned = np.load(args.check)
    worst = 0.0
    for key, value in results.items():
        if key not in pinned:
            print(f"{key:32s} not in {args.check.name} (record it at the base commit)")
            continue
        before = pinned[key]
        diff = (
            float("inf")
            if before.shape != value.shape
            else float(np.abs(before.astype(np.float64) - value.astype(np.float64)).max())
        )
        worst = max(worst, diff)
        print(f"{key:32s} shape {value.shape}  max |diff| {diff:g}")
    print("bit-identical" if worst == 0 else f"DIFFERENT (worst {worst:g})")
    return 0 if worst == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
