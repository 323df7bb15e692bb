"""The benchmark: generate the SynthTalk test set's talking-4D sequences and score them.

Rows of the table:
- ``ground truth`` — the GT renders themselves: the ceiling every metric can reach;
- ``still image`` — the reference portrait repeated: floor for motion, lip-sync and view;
- ``random mouth`` — GT renders with the mouth track reversed and shifted: floor for sync;
- ``other identity`` — GT motion and views rendered on another test identity: floor for identity;
- ``identity prior portrait`` — (embedding mode, checkpoints with an identity prior) the prior's
  portrait of each reference's embedding, held still: what identity-only mode anchors on;
- ``model`` — the pipeline, called once per (clip, camera) with that camera's azimuth/elevation.

The model is called as ``pipe(audio=, identity_embedding=, image=, azimuth=, elevation=,
chunk_length=, num_inference_steps=, guidance_scale_camera=, noise_sharing=, use_identity_prior=, use_refiner=,
generator=, fps=)`` and must return ``.frames`` uint8
``[T, H, W, 3]``; ``pipe.encode_identity(PIL.Image) → (512,)`` gives the requested identity.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..audio import SAMPLE_RATE, AudioFeatureConfig, frame_features
from ..data.datasets import clip_sequences
from ..data.heads import sample_head
from ..data.motion import face_motion
from ..data.render import RenderConfig, render
from ..data.shards import load_manifest, read_clip
from ..data.speech import resolve_engine, synthesize, voices
from ..data.state import STATE_KEYS, FrameState
from ..data.synthtalk import IDENTITY_RANGES
from ..pipeline import GenerationRequest
from . import metrics
from .experts import WEIGHTS_DIR, load_expert, to_input
from .training import sync_embeddings

logger = logging.getLogger(__name__)
EvalSequence = dict[str, Any]  # one camera of a talking4d clip, keys as in data.datasets


@dataclass
class EvalConfig:
    """What to evaluate and how to call the model."""

    max_clips: int | None = None  # talking4d clips of the split to use (None = all)
    max_views: int | None = None  # cameras per clip (None = all)
    seconds: float | None = None  # cut sequences to this length (None = full)
    chunk_length: int = GenerationRequest.chunk_length  # the pipeline's defaults unless a row says otherwise
    num_inference_steps: int = GenerationRequest.num_inference_steps
    context_frames: int = GenerationRequest.context_frames
    guidance_scale_camera: float = 1.0
    noise_sharing: float = 1.0
    use_identity_prior: bool = True  # embedding mode: anchor on the checkpoint's identity prior, if it has one
    use_refiner: bool = True  # the checkpoint's frame refiner, if it has one
    avatar: str = "never"  # SynthTalk references are the model's own domain: animate them as they are
    seed: int = 0
    mode: str = "reference"  # "reference": image + its embedding; "embedding": identity embedding only
    identity_encoder: str = "expert"  # "expert" (comparable across rows) or "pipeline" (the checkpoint's)
    identity_stride: int = 5  # identity_cos on every n-th frame
    drift_seconds: float = 0.0  # > 0: also one long clip for identity_drift (60 in the protocol)
    weights: Path = field(default_factory=lambda: WEIGHTS_DIR)


class Experts:
    """The trained expert models behind the metrics, with numpy-in / numpy-out helpers."""

    def __init__(self, weights: Path = WEIGHTS_DIR):
        self.mouth, self.pose = load_expert("mouth", weights), load_expert("pose", weights)
        self.sync, self.identity = load_expert("sync", weights), load_expert("identity", weights)
        self._feature_cache: dict[bytes, np.ndarray] = {}  # GT features are reused by every row

    @torch.no_grad()
    def _batched(self, fn, frames: np.ndarray) -> np.ndarray:
        return torch.cat([fn(to_input(chunk)) for chunk in np.array_split(frames, max(1, len(frames) // 256))]).numpy()

    def mouth_open(self, frames: np.ndarray) -> np.ndarray:
        return self._batched(self.mouth, frames)[:, 0]

    def view(self, frames: np.ndarray) -> np.ndarray:
        """``[T, 2]`` (azimuth, elevation) degrees."""
        return self._batched(self.pose.degrees, frames)

    def embed(self, frames: np.ndarray) -> np.ndarray:
        """``[N, 512]`` identity embeddings (the default ``embed_fn``)."""
        return self._batched(self.identity, frames)

    def features(self, frames: np.ndarray) -> np.ndarray:
        """``[N, 96]`` FID/FVD features (memoised by content)."""
        key = hashlib.blake2b(np.ascontiguousarray(frames).data, digest_size=16).digest() + bytes(
            str(frames.shape), "ascii"
        )
        if key not in self._feature_cache:
            self._feature_cache[key] = self._batched(self.identity.features, frames)
        return self._feature_cache[key]

    def sync_distances(self, frames: np.ndarray, audio: np.ndarray, fps: float) -> np.ndarray:
        features = frame_features(audio, fps, AudioFeatureConfig())[: len(frames)]
        return metrics.sync_distance_by_offset(*sync_embeddings(self.sync, frames[: len(features)], features))


def load_sequences(split_dir: Path, config: EvalConfig) -> tuple[list[EvalSequence], float]:
    """The talking4d sequences of a split (one per camera) and the split's fps."""
    manifest = load_manifest(split_dir)
    fps = float(manifest["fps"])
    entries = [c for c in manifest["clips"] if c["kind"] == "talking4d"][: config.max_clips]
    if not entries:
        raise ValueError(f"{split_dir} has no talking4d clips; evaluate a val or test split.")
    sequences = []
    for entry in entries:
        arrays = read_clip(Path(split_dir) / entry["shard"], entry["key"])
        for seq in list(clip_sequences(entry["key"], entry, arrays, fps))[: config.max_views]:
            sequences.append(_cut(seq, config.seconds, fps))
    return sequences, fps


def _cut(seq: EvalSequence, seconds: float | None, fps: float) -> EvalSequence:
    if seconds is None:
        return seq
    frames = int(round(seconds * fps))
    out = {k: (v[:frames] if k in ("frames", *STATE_KEYS) else v) for k, v in seq.items()}
    out["audio"] = seq["audio"][: int(round(frames * SAMPLE_RATE / fps))]
    return out


def evaluate_videos(
    videos: list[np.ndarray],
    sequences: list[EvalSequence],
    experts: Experts,
    fps: float,
    embed_fn=None,
    stride: int = 5,
    chunk_length: int = 4,
) -> dict[str, float]:
    """Every metric for generated ``videos`` (uint8 ``[T, H, W, 3]``, one per sequence) against ground truth.

    ``chunk_length``: the frames per autoregressive chunk, where seams would be (``seam_ratio``).
    """
    embed_fn = embed_fn or experts.embed
    videos = [v[: len(s["frames"])] for v, s in zip(videos, sequences)]
    truth = [s["frames"][: len(v)] for v, s in zip(videos, sequences)]
    predicted_open = [experts.mouth_open(v) for v in videos]
    conf, dist = metrics.sync_conf_dist([experts.sync_distances(v, s["audio"], fps) for v, s in zip(videos, sequences)])
    views = np.concatenate([experts.view(v) for v in videos])
    result = {
        "lip_sync_corr": metrics.lip_sync_corr(
            predicted_open, [s["mouth_open"][: len(v)] for v, s in zip(videos, sequences)]
        ),
        "sync_conf": conf,
        "sync_dist": dist,
        **metrics.view_error_deg(views[:, 0], views[:, 1], *_requested_views(videos, sequences)),
        "identity_cos": float(np.mean([_identity(v, s, embed_fn, stride) for v, s in zip(videos, sequences)])),
        "motion_ratio": metrics.motion_ratio(videos, truth),
        "ssim": metrics.ssim_to_truth(videos, truth),
        "seam_ratio": metrics.seam_ratio(videos, chunk_length),
    }
    return result | _frechet(videos, truth, experts)


def _requested_views(videos: list[np.ndarray], sequences: list[EvalSequence]) -> tuple[np.ndarray, np.ndarray]:
    az = np.concatenate([s["azimuth"][: len(v)] for v, s in zip(videos, sequences)])
    return az, np.concatenate([s["elevation"][: len(v)] for v, s in zip(videos, sequences)])


def _identity(video: np.ndarray, seq: EvalSequence, embed_fn, stride: int) -> float:
    reference = embed_fn(seq["reference"][None])[0]
    return metrics.identity_cos(video[::stride], reference, embed_fn)


def _frechet(videos: list[np.ndarray], truth: list[np.ndarray], experts: Experts) -> dict[str, float]:
    """FID on per-frame features and FVD on per-16-frame-segment clip features (own extractor, see metrics)."""
    generated = [experts.features(v) for v in videos]
    real = [experts.features(t) for t in truth]
    fvd_gen = np.concatenate([metrics.clip_features(f) for f in generated])
    fvd_real = np.concatenate([metrics.clip_features(f) for f in real])
    return {
        "fid_own": metrics.frechet_distance(np.concatenate(generated), np.concatenate(real)),
        "fvd_own": metrics.frechet_distance(fvd_gen, fvd_real) if len(fvd_real) > 2 else float("nan"),
    }


# ---------------------------------------------------------------- rows


def still_image_videos(sequences: list[EvalSequence]) -> list[np.ndarray]:
    """The reference portrait repeated for every frame."""
    return [np.repeat(s["reference"][None], len(s["frames"]), 0) for s in sequences]


def prior_portrait_videos(pipe, sequences: list[EvalSequence]) -> list[np.ndarray]:
    """The checkpoint's identity-prior portrait of each reference's embedding, as a still video.

    Its identity_cos is the ceiling of what identity-only mode can anchor on.
    """
    portraits = [pipe.imagine_portrait(pipe.encode_identity(Image.fromarray(s["reference"]))) for s in sequences]
    return [np.repeat(p[None], len(s["frames"]), 0) for p, s in zip(portraits, sequences)]


def random_mouth_videos(sequences: list[EvalSequence]) -> list[np.ndarray]:
    """GT renders whose mouth track is time-reversed and rolled by half a clip (uncorrelated with the audio)."""
    videos = []
    for s in sequences:
        state = FrameState.from_dict(s)
        state.mouth_open = np.roll(state.mouth_open[::-1], len(state) // 2).copy()
        state.lip_round = np.roll(state.lip_round[::-1], len(state) // 2).copy()
        videos.append(_render_like(s, int(s["identity"]), state))
    return videos


def other_identity_videos(sequences: list[EvalSequence]) -> list[np.ndarray]:
    """The same motion and views rendered on the next seed in the test range (another person)."""
    low, high = IDENTITY_RANGES["test"]
    return [
        _render_like(s, low + (int(s["identity"]) + 1 - low) % (high - low), FrameState.from_dict(s)) for s in sequences
    ]


def _render_like(seq: EvalSequence, identity: int, state: FrameState) -> np.ndarray:
    return render(sample_head(identity), state, RenderConfig(size=seq["frames"].shape[1]))


def pipeline_videos(pipe, sequences: list[EvalSequence], fps: float, config: EvalConfig) -> list[np.ndarray]:
    """Call the pipeline once per sequence with its audio, identity and per-frame camera."""
    videos = []
    for seq in tqdm(sequences, desc="generating", unit="clip", leave=False):
        image = Image.fromarray(seq["reference"])
        out = pipe(
            audio=seq["audio"],
            identity_embedding=None if config.mode == "reference" else pipe.encode_identity(image),
            image=image if config.mode == "reference" else None,
            azimuth=seq["azimuth"],
            elevation=seq["elevation"],
            chunk_length=config.chunk_length,
            num_inference_steps=config.num_inference_steps,
            context_frames=config.context_frames,
            avatar=config.avatar,
            guidance_scale_camera=config.guidance_scale_camera,
            noise_sharing=config.noise_sharing,
            use_identity_prior=config.use_identity_prior,
            use_refiner=config.use_refiner,
            generator=torch.Generator().manual_seed(config.seed),
            fps=fps,
        )
        videos.append(np.asarray(out.frames, dtype=np.uint8))
    return videos


def pipeline_embed_fn(pipe):
    """``embed_fn`` from the checkpoint's own identity encoder (one PIL image per frame)."""
    return lambda frames: np.stack([np.asarray(pipe.encode_identity(Image.fromarray(f)), np.float32) for f in frames])


def evaluate_pipeline(pipe, split_dir: str | Path, config: EvalConfig | None = None, experts: Experts | None = None):
    """Metrics of ``pipe`` on the talking4d sequences of ``split_dir`` (see the module docstring)."""
    config = config or EvalConfig()
    experts = experts or Experts(config.weights)
    sequences, fps = load_sequences(Path(split_dir), config)
    embed_fn = pipeline_embed_fn(pipe) if config.identity_encoder == "pipeline" else experts.embed
    result = evaluate_videos(
        pipeline_videos(pipe, sequences, fps, config),
        sequences,
        experts,
        fps,
        embed_fn,
        config.identity_stride,
        config.chunk_length,
    )
    if config.drift_seconds > 0:
        long_seq = long_sequence(Path(split_dir), config.drift_seconds, fps, config.seed)
        video = pipeline_videos(pipe, [long_seq], fps, config)[0]
        result["identity_drift"] = metrics.identity_drift(
            video, embed_fn(long_seq["reference"][None])[0], embed_fn, fps
        )
    return result


def long_sequence(split_dir: Path, seconds: float, fps: float, seed: int) -> EvalSequence:
    """A frontal talking sequence of ``seconds`` for the first test identity and a test voice (for drift)."""
    manifest = load_manifest(split_dir)
    identity = int(next(c["identity"] for c in manifest["clips"] if c["kind"] == "talking4d"))
    rng = np.random.default_rng([seed, identity])
    audio = synthesize(rng, voices("test", resolve_engine("auto"))[0], seconds)
    state = face_motion(audio, fps, rng)
    head, size = sample_head(identity), int(manifest["resolution"])
    reference = render(head, FrameState.neutral(1), RenderConfig(size=size))[0]
    frames = render(head, state, RenderConfig(size=size))
    return {**state.as_dict(), "frames": frames, "audio": audio, "reference": reference, "identity": identity}


def run_benchmark(split_dir: str | Path, pipe=None, config: EvalConfig | None = None) -> dict[str, Any]:
    """The *quality* benchmark (``python -m starcaster eval``; speed is ``starcaster/speed/``): ceiling,
    floors and (if ``pipe`` is given) the model: ``{"rows": {name: metrics}, "meta": ...}``."""
    config = config or EvalConfig()
    experts = Experts(config.weights)
    sequences, fps = load_sequences(Path(split_dir), config)
    rows = {
        "ground truth": [s["frames"] for s in sequences],
        "still image": still_image_videos(sequences),
        "random mouth": random_mouth_videos(sequences),
        "other identity": other_identity_videos(sequences),
    }
    results = {
        name: evaluate_videos(
            videos, sequences, experts, fps, stride=config.identity_stride, chunk_length=config.chunk_length
        )
        for name, videos in rows.items()
    }
    if config.drift_seconds > 0:
        long_seq = long_sequence(Path(split_dir), config.drift_seconds, fps, config.seed)
        ref = experts.embed(long_seq["reference"][None])[0]
        results["ground truth"]["identity_drift"] = metrics.identity_drift(long_seq["frames"], ref, experts.embed, fps)
    if (
        pipe is not None
        and config.mode == "embedding"
        and config.use_identity_prior
        and getattr(pipe, "identity_prior", None)
    ):
        prior_videos = prior_portrait_videos(pipe, sequences)
        results["identity prior portrait"] = evaluate_videos(
            prior_videos, sequences, experts, fps, stride=config.identity_stride, chunk_length=config.chunk_length
        )
    if pipe is not None:
        results[f"model ({config.mode})"] = evaluate_pipeline(pipe, split_dir, config, experts)
    meta = {
        "split_dir": str(split_dir),
        "sequences": len(sequences),
        "fps": fps,
        "frames": sum(len(s["frames"]) for s in sequences),
        "settings": {k: v for k, v in vars(config).items() if k != "weights"},
    }
    return {"rows": results, "meta": meta}


HIGHER_IS_BETTER = {
    "lip_sync_corr": True,
    "sync_conf": True,
    "sync_dist": False,
    "view_error_deg": False,
    "azimuth_error_deg": False,
    "elevation_error_deg": False,
    "identity_cos": True,
    "identity_drift": False,
    "motion_ratio": None,
    "ssim": True,
    "seam_ratio": None,
    "fid_own": False,
    "fvd_own": False,
}  # fmt: skip  (motion_ratio, seam_ratio: closest to 1 is best)


def format_table(results: dict[str, Any]) -> str:
    """A markdown table: one line per metric, one column per row (ceiling, floors, model)."""
    rows = results["rows"]
    names = list(rows)
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for metric, better in HIGHER_IS_BETTER.items():
        if not any(metric in rows[n] for n in names):
            continue
        arrow = {True: " ↑", False: " ↓", None: " (→1)"}[better]
        cells = [f"{rows[n][metric]:.3f}" if metric in rows[n] else "—" for n in names]
        lines.append(f"| {metric}{arrow} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
