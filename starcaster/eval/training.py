"""Train the evaluation experts on fresh SynthTalk renders and measure them on held-out identities.

Run ``python -m starcaster.eval.training`` to retrain everything into
``starcaster/eval/weights/`` (≈ 15 minutes on one CPU core) and print the held-out accuracies.
Training identities come from the train seed range, held-out ones from the val range, so the
reported accuracies are on faces the experts never saw. Frames are augmented (blur, noise,
shifts, contrast) so the experts still read the blurrier frames a generator produces.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from ..audio import AudioFeatureConfig, frame_features
from ..data.heads import sample_head
from ..data.render import RenderConfig, render
from ..data.state import FrameState
from ..data.synthtalk import IDENTITY_RANGES, SynthConfig, make_clip
from .experts import (
    AZIMUTH_SCALE,
    ELEVATION_SCALE,
    SYNC_FRAMES,
    WEIGHTS_DIR,
    IdentityExpert,
    MouthRegressor,
    PoseRegressor,
    SyncExpert,
    save_expert,
    to_input,
)

logger = logging.getLogger(__name__)


@dataclass
class ExpertTrainConfig:
    """Data sizes and optimisation for all experts (defaults: ≈ 20 min on one CPU core)."""

    stills: int = 8000  # random single-frame renders for the mouth and pose regressors
    sync_clips: int = 160  # 2-second talking clips for the sync expert
    identities: int = 160  # classes for the identity expert
    views_per_identity: int = 24
    held_out: int = 800  # held-out stills (val identities) to measure the regressors
    steps: int = 2500  # mouth and pose regressors
    sync_steps: int = 3000  # cheap: the sync heads train on precomputed trunk features
    identity_steps: int = 1500
    batch: int = 64
    lr: float = 1e-3  # 2e-3 left the mouth regressor stuck at MAE 0.15
    seed: int = 0
    out: Path = WEIGHTS_DIR
    render: RenderConfig = field(default_factory=RenderConfig)


# ---------------------------------------------------------------- data


def random_states(rng: np.random.Generator, count: int) -> FrameState:
    """Independent random face states and views covering the whole SynthTalk range."""
    state = FrameState.neutral(count, rng.uniform(-90, 90, count), rng.uniform(-30, 30, count))
    state.mouth_open[:] = np.where(rng.random(count) < 0.3, 0.0, rng.uniform(0, 1, count))
    state.lip_round[:] = rng.uniform(0, 1, count) * (state.mouth_open > 0)
    state.blink[:] = np.where(rng.random(count) < 0.15, rng.uniform(0, 1, count), 0.0)
    state.brow[:] = rng.uniform(0, 0.8, count)
    state.head_rotation[:] = rng.uniform(-5, 5, (count, 3))
    return state


def render_stills(rng: np.random.Generator, count: int, split: str, config: RenderConfig, per_identity: int = 8):
    """``count`` frames of random identities of ``split`` in random states: (frames, FrameState)."""
    low, high = IDENTITY_RANGES[split]
    frames, states = [], []
    for _ in range(math.ceil(count / per_identity)):
        state = random_states(rng, per_identity)
        frames.append(render(sample_head(int(rng.integers(low, high))), state, config))
        states.append(state.as_dict())
    state = FrameState(**{k: np.concatenate([s[k] for s in states])[:count] for k in states[0]})
    return np.concatenate(frames)[:count], state


def talking_clips(count: int, split: str, seed: int, config: RenderConfig) -> list[dict[str, np.ndarray]]:
    """Talking clips (frames, per-frame audio features, mouth) from the SynthTalk generator."""
    synth = SynthConfig(
        clips=count, seconds=2.0, eval_seconds=2.0, resolution=config.size, seed=seed, moving_camera=0.3
    )
    clips = []
    for index in range(count):
        clip = make_clip(synth, split, "talking", index)
        features = frame_features(clip.audio, synth.fps, AudioFeatureConfig())
        clips.append({"frames": clip.frames, "features": features, "mouth_open": clip.state.mouth_open})
    return clips


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per-sample blur, noise, shift (±2 px) and contrast jitter on ``[N, C, H, W]`` in [-1, 1]."""
    n = x.shape[0]

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator)

    blurred = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    x = torch.where(rand(n, 1, 1, 1) < 0.4, blurred, x)
    x = x * (0.85 + 0.3 * rand(n, 1, 1, 1)) + 0.1 * (rand(n, 1, 1, 1) - 0.5)
    x = x + 0.06 * rand(n, 1, 1, 1) * torch.randn(x.shape, generator=generator)
    dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=generator))
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


# ---------------------------------------------------------------- optimisation


def fit(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.Generator], torch.Tensor],
    config: ExpertTrainConfig,
    name: str,
    steps: int | None = None,
):
    """AdamW with cosine decay for ``steps`` (default ``config.steps``); ``loss_fn`` samples its own batch."""
    steps = steps or config.steps
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    model.train()
    for step in range(steps):
        loss = loss_fn(generator)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % 200 == 0 or step == steps - 1:
            logger.info("%s step %d loss %.4f", name, step, loss.item())
    return model.eval()


def _pick(generator: torch.Generator, count: int, batch: int) -> torch.Tensor:
    return torch.randint(0, count, (batch,), generator=generator)


def train_regressor(model, frames: torch.Tensor, targets: torch.Tensor, config: ExpertTrainConfig, name: str):
    """Mouth or pose: smooth-L1 regression of ``targets`` ``[N, 2]`` from ``frames`` ``[N, 3, 64, 64]``."""

    def loss_fn(generator: torch.Generator) -> torch.Tensor:
        idx = _pick(generator, len(frames), config.batch)
        return F.smooth_l1_loss(model(augment(frames[idx], generator)), targets[idx], beta=0.05)

    return fit(model, loss_fn, config, name)


def sync_pairs(clips: list[dict], generator: torch.Generator, batch: int) -> np.ndarray:
    """``[B, 4]`` (clip, frame, negative clip, negative frame): the negative audio is the same clip
    shifted by 3–12 frames (60 %) or a random frame of another clip (40 %)."""
    pairs = []
    for _ in range(batch):
        c = int(_pick(generator, len(clips), 1))
        length = len(clips[c]["features"])
        t = int(torch.randint(2, length - 2, (1,), generator=generator))
        if torch.rand(1, generator=generator) < 0.6:
            shift = int(torch.randint(3, 13, (1,), generator=generator)) * (
                2 * int(torch.rand(1, generator=generator) < 0.5) - 1
            )
            pairs.append((c, t, c, int(np.clip(t + shift, 0, length - 1))))
        else:
            other = (c + 1 + int(_pick(generator, len(clips) - 1, 1))) % len(clips)
            pairs.append((c, t, other, int(_pick(generator, len(clips[other]["features"]), 1))))
    return np.asarray(pairs)


def gather(clips: list[dict], pairs: np.ndarray, key: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """5-frame windows of ``key`` (``[B, 5, ...]``), positive and negative audio features (``[B, 5, 40]``)."""
    windows = np.stack([np.asarray(clips[c][key][t - 2 : t + 3]) for c, t in pairs[:, :2]])
    positive = np.stack([clips[c]["features"][t] for c, t in pairs[:, :2]])
    negative = np.stack([clips[c]["features"][t] for c, t in pairs[:, 2:]])
    return torch.as_tensor(windows), torch.from_numpy(positive), torch.from_numpy(negative)


def train_sync(clips: list[dict], mouth: MouthRegressor, config: ExpertTrainConfig) -> SyncExpert:
    """Train the sync heads on frozen mouth-regressor trunk features (precomputed once per clip)."""
    model = SyncExpert()
    model.trunk.load_state_dict(mouth.trunk.state_dict())
    model.trunk.requires_grad_(False)
    with torch.no_grad():
        for clip in clips:
            clip["trunk"] = model.trunk(to_input(clip["frames"]))  # [T, 96, 4, 4]

    def loss_fn(generator: torch.Generator) -> torch.Tensor:
        trunk, positive, negative = gather(clips, sync_pairs(clips, generator, config.batch), "trunk")
        visual = model.embed_trunk_features(trunk)
        logits = torch.cat([model.pair_logits(visual, model.embed_audio(a)) for a in (positive, negative)])
        labels = torch.cat([torch.ones(len(positive)), torch.zeros(len(negative))])
        return F.binary_cross_entropy_with_logits(logits, labels)

    return fit(model, loss_fn, config, "sync", config.sync_steps)


def train_identity(frames: torch.Tensor, labels: torch.Tensor, config: ExpertTrainConfig) -> IdentityExpert:
    model = IdentityExpert(classes=int(labels.max()) + 1)

    def loss_fn(generator: torch.Generator) -> torch.Tensor:
        idx = _pick(generator, len(frames), config.batch)
        logits = model.class_logits(model(augment(frames[idx], generator)))
        return F.cross_entropy(logits, labels[idx], label_smoothing=0.1)

    return fit(model, loss_fn, config, "identity", config.identity_steps)


def identity_views(
    rng: np.random.Generator, seeds: np.ndarray, views: int, config: RenderConfig
) -> tuple[np.ndarray, ...]:
    """``views`` random renders of each identity seed (plus its reference as view 0): frames, labels."""
    frames = []
    for seed in seeds:
        state = random_states(rng, views)
        state.azimuth[0] = state.elevation[0] = state.mouth_open[0] = state.lip_round[0] = state.blink[0] = 0.0
        state.brow[0] = 0.0
        state.head_rotation[0] = 0.0
        frames.append(render(sample_head(int(seed)), state, config))
    return np.concatenate(frames), np.repeat(np.arange(len(seeds)), views)


# ---------------------------------------------------------------- held-out accuracy


@torch.no_grad()
def regressor_accuracy(
    mouth: MouthRegressor, pose: PoseRegressor, frames: np.ndarray, state: FrameState
) -> dict[str, float]:
    x = to_input(frames)
    predicted_mouth = mouth(x)[:, 0].numpy()
    return {
        "mouth_open_mae": float(np.abs(predicted_mouth - state.mouth_open).mean()),
        "mouth_open_corr": float(np.corrcoef(predicted_mouth, state.mouth_open)[0, 1]),
    } | view_accuracy(pose, x, state)


@torch.no_grad()
def view_accuracy(pose: PoseRegressor, x: torch.Tensor, state: FrameState) -> dict[str, float]:
    """Mean absolute azimuth / elevation error (degrees) of ``pose`` on inputs ``x`` rendered at ``state``."""
    predicted = pose.degrees(x).numpy()
    return {
        "azimuth_mae_deg": float(np.abs(predicted[:, 0] - state.azimuth).mean()),
        "elevation_mae_deg": float(np.abs(predicted[:, 1] - state.elevation).mean()),
    }


@torch.no_grad()
def sync_accuracy(model: SyncExpert, clips: list[dict]) -> dict[str, float]:
    """Pair accuracy (aligned scores above a 3–12-frame shift or other clip) and offset recovery per clip."""
    from .metrics import sync_distance_by_offset

    frames, positive, negative = gather(clips, sync_pairs(clips, torch.Generator().manual_seed(123), 256), "frames")
    video = to_input(frames.flatten(0, 1)).unflatten(0, frames.shape[:2])  # [B, 5, 3, 64, 64]
    pair = (model.logits(video, positive) > model.logits(video, negative)).float().mean().item()
    found = [
        int(np.argmin(sync_distance_by_offset(*sync_embeddings(model, c["frames"], c["features"]))) == 15)
        for c in clips
    ]
    return {"sync_pair_accuracy": pair, "sync_offset_accuracy": float(np.mean(found))}


@torch.no_grad()
def sync_embeddings(model: SyncExpert, frames: np.ndarray, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Visual and audio embeddings ``[T-4, D]`` of every full 5-frame window of a clip (trunk run once per frame)."""
    trunk = torch.cat([model.trunk(to_input(chunk)) for chunk in np.array_split(frames, max(1, len(frames) // 256))])
    windows = trunk.unfold(0, SYNC_FRAMES, 1).permute(0, 4, 1, 2, 3)  # [T-4, 5, C, 4, 4]
    visual = model.embed_trunk_features(windows)
    audio = model.embed_audio(torch.as_tensor(features[2 : len(frames) - 2], dtype=torch.float32))
    return visual.numpy(), audio.numpy()


@torch.no_grad()
def identity_accuracy(model: IdentityExpert, frames: np.ndarray, labels: np.ndarray, views: int) -> dict[str, float]:
    """Top-1 identification of each non-reference view against the references (view 0) of the held-out set."""
    embeddings = torch.cat([model(to_input(f)) for f in np.array_split(frames, max(1, len(frames) // 256))])
    references = embeddings[::views]
    cos = embeddings @ references.T  # [N, identities]
    others = torch.arange(len(frames)) % views != 0
    same = cos[torch.arange(len(frames)), torch.as_tensor(labels)]
    top1 = (cos.argmax(1) == torch.as_tensor(labels))[others].float().mean().item()
    different = torch.as_tensor(labels)[:, None] != torch.arange(references.shape[0])[None, :]
    return {
        "identity_top1": top1,
        "identity_cos_same": same[others].mean().item(),
        "identity_cos_other": cos[different & others[:, None]].mean().item(),
    }


# ---------------------------------------------------------------- entry point


def _stills(config: ExpertTrainConfig, rng: np.random.Generator):
    """Training stills as model input ``[N, 3, 64, 64]`` with their mouth and view targets ``[N, 2]``."""
    frames, state = render_stills(rng, config.stills, "train", config.render)
    mouth_targets = torch.from_numpy(np.stack([state.mouth_open, state.lip_round], -1))
    view_targets = torch.from_numpy(np.stack([state.azimuth / AZIMUTH_SCALE, state.elevation / ELEVATION_SCALE], -1))
    return to_input(frames), mouth_targets, view_targets


def _save_report(report: dict, config: ExpertTrainConfig, start: float) -> None:
    report["train_minutes"] = (time.perf_counter() - start) / 60
    summary = {**report, "config": {k: str(v) for k, v in asdict(config).items() if k != "out"}}
    (config.out / "accuracy.json").write_text(json.dumps(summary, indent=1))


def train_pose_expert(config: ExpertTrainConfig) -> dict[str, float]:
    """Only the pose regressor, into ``config.out`` with its held-out error: the view loss's expert
    (training/recipe.py ``VIEW_EXPERT_DIR``), trained with another seed than the evaluation's."""
    start = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    x, _, view_targets = _stills(config, rng)
    pose = train_regressor(PoseRegressor(), x, view_targets, config, "pose")
    save_expert(pose, "pose", config.out)
    held_frames, held_state = render_stills(rng, config.held_out, "val", config.render)
    report = view_accuracy(pose, to_input(held_frames), held_state)
    _save_report(report, config, start)
    return report


def train_experts(config: ExpertTrainConfig | None = None) -> dict[str, float]:
    """Train all four experts, save them to ``config.out`` with their held-out accuracy (``accuracy.json``)."""
    config = config or ExpertTrainConfig()
    start = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    x, mouth_targets, view_targets = _stills(config, rng)
    mouth = train_regressor(MouthRegressor(), x, mouth_targets, config, "mouth")
    pose = train_regressor(PoseRegressor(), x, view_targets, config, "pose")
    save_expert(mouth, "mouth", config.out)
    save_expert(pose, "pose", config.out)
    held_frames, held_state = render_stills(rng, config.held_out, "val", config.render)
    report = regressor_accuracy(mouth, pose, held_frames, held_state)
    sync = train_sync(talking_clips(config.sync_clips, "train", config.seed, config.render), mouth, config)
    save_expert(sync, "sync", config.out)
    report |= sync_accuracy(sync, talking_clips(max(8, config.sync_clips // 10), "val", config.seed, config.render))
    seeds = rng.choice(IDENTITY_RANGES["train"][1], config.identities, replace=False)
    id_frames, id_labels = identity_views(rng, seeds, config.views_per_identity, config.render)
    identity = train_identity(to_input(id_frames), torch.from_numpy(id_labels), config)
    held_seeds = IDENTITY_RANGES["val"][0] + rng.choice(50_000, 40, replace=False)
    report |= identity_accuracy(identity, *identity_views(rng, held_seeds, 8, config.render), views=8)
    save_expert(identity, "identity", config.out)
    _save_report(report, config, start)
    return report


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Train the SynthTalk experts (all four, or only the pose regressor).")
    parser.add_argument("--pose-only", action="store_true", help="only the pose regressor (the view loss's expert)")
    parser.add_argument("--seed", type=int, default=ExpertTrainConfig.seed)
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    config = ExpertTrainConfig(seed=args.seed, out=args.out)
    for key, value in (train_pose_expert if args.pose_only else train_experts)(config).items():
        logger.info("%s = %.4f", key, value)
