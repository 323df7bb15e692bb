"""SynthTalk: procedural talking-head clips with ground truth for every factor, written as shards.

Three kinds of samples, mirroring the paper's decoupled learning:
- ``talking``: monocular talking sequence — speech, face motion, one camera (fixed, or drifting
  slowly for ``moving_camera`` of the clips). Teaches temporal dynamics and lip-sync.
- ``multiview``: one instant seen from ``views`` cameras along a smooth trajectory (no audio).
  Teaches view control along the "view axis" (temporal-to-spatial).
- ``talking4d``: a talking sequence rendered simultaneously from ``test_views`` fixed cameras.
  Only in val/test: the scarce 4-D data, used to measure lip-sync and view control together.

Splits are disjoint by identity seed range (``IDENTITY_RANGES``) and by voice variant
(``speech.VOICE_VARIANTS``). Every clip is a pure function of (config.seed, split, kind,
index), so any subset can be regenerated and workers can split the work any way.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..audio import SAMPLE_RATE
from .heads import sample_head
from .motion import MotionConfig, face_motion
from .render import RenderConfig, render, render_reference
from .shards import FORMAT, write_manifest, write_shard
from .speech import Voice, resolve_engine, synthesize, voices
from .state import FrameState

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
KINDS = ("talking", "multiview", "talking4d")
IDENTITY_RANGES = {"train": (0, 1_000_000), "val": (1_000_000, 1_100_000), "test": (2_000_000, 2_100_000)}


@dataclass
class SynthConfig:
    """What to generate. Counts left as ``None`` follow from ``clips`` (see each comment)."""

    out: Path = Path("data/synthtalk")
    clips: int = 1000  # monocular talking clips in train
    multiview_sets: int | None = None  # multi-view static sets in train; None → clips // 2
    eval_clips: int | None = None  # per val/test split and per kind; None → clip(clips // 20, 4, 50)
    identities: int | None = None  # distinct train identities; None → max(8, clips // 5)
    seconds: float = 2.0  # train clip length
    eval_seconds: float = 5.0  # val/test talking and talking4d length
    fps: int = 25
    resolution: int = 64
    supersample: int = 2
    views: int = 16  # cameras per multi-view static set
    test_views: int = 5  # fixed cameras per talking4d sequence
    max_azimuth: float = 90.0
    max_elevation: float = 30.0
    moving_camera: float = 0.3  # fraction of talking clips whose camera drifts during the clip
    speech: str = "auto"  # "auto" | "espeak" | "formant"
    seed: int = 0
    workers: int = 1
    shard_size: int = 32
    splits: tuple[str, ...] = SPLITS  # which splits to write (e.g. ("test",) for an evaluation set)
    motion: MotionConfig = field(default_factory=MotionConfig)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.splits = tuple(self.splits)
        if not set(self.splits) <= set(SPLITS):
            raise ValueError(f"splits must be drawn from {SPLITS}; got {self.splits}.")
        if self.clips < 0 or self.resolution < 8 or self.fps <= 0 or self.seconds <= 0:
            raise ValueError("SynthConfig needs clips ≥ 0, resolution ≥ 8, fps > 0 and seconds > 0.")

    def counts(self, split: str) -> dict[str, int]:
        """Clips per kind in ``split``."""
        if split == "train":
            multiview = self.clips // 2 if self.multiview_sets is None else self.multiview_sets
            return {"talking": self.clips, "multiview": multiview, "talking4d": 0}
        n = min(50, max(4, self.clips // 20)) if self.eval_clips is None else self.eval_clips
        return {"talking": n, "multiview": n, "talking4d": n}

    def num_identities(self, split: str) -> int:
        if split == "train":
            return max(8, self.clips // 5) if self.identities is None else self.identities
        return max(1, self.counts(split)["talking"])

    def render_config(self) -> RenderConfig:
        return RenderConfig(size=self.resolution, supersample=self.supersample)


@dataclass
class Clip:
    """One generated sample. ``frames``: talking ``[T,H,W,3]``, multiview ``[V,H,W,3]``, talking4d ``[V,T,H,W,3]``."""

    key: str
    split: str
    kind: str
    identity: int
    voice: Voice | None
    frames: np.ndarray
    audio: np.ndarray  # float32 [S] at 16 kHz; empty for multiview
    state: FrameState  # talking4d: azimuth/elevation are [V, T], the rest [T]
    reference: np.ndarray  # [H, W, 3] frontal neutral portrait of the identity

    def arrays(self) -> dict[str, np.ndarray]:
        """What goes into the shard (see docs/synthtalk.md for each field)."""
        head = sample_head(self.identity)
        return {
            "frames": self.frames,
            "audio": self.audio,
            "reference": self.reference,
            "identity_params": head.vector(),
            **self.state.as_dict(),
        }

    def metadata(self, shard: str) -> dict[str, Any]:
        return {
            "key": self.key,
            "shard": shard,
            "kind": self.kind,
            "identity": self.identity,
            "voice": None if self.voice is None else self.voice.name,
            "num_frames": int(self.state.mouth_open.shape[0]),
            "num_views": 1 if self.kind == "talking" else int(self.frames.shape[0]),
        }


def reference_portrait(identity: int, size: int = 64, supersample: int = 2) -> np.ndarray:
    """The identity's frontal, neutral, mouth-closed portrait ``[size, size, 3]`` uint8 (the reference image)."""
    return render_reference(sample_head(identity), RenderConfig(size=size, supersample=supersample))


def identity_pool(config: SynthConfig, split: str) -> np.ndarray:
    """The identity seeds of ``split``: distinct draws from its seed range."""
    return _identity_pool(config.seed, split, config.num_identities(split))


@functools.lru_cache(maxsize=16)
def _identity_pool(seed: int, split: str, size: int) -> np.ndarray:
    low, high = IDENTITY_RANGES[split]
    rng = np.random.default_rng([seed, SPLITS.index(split), 0x1D])
    return low + rng.choice(high - low, size=size, replace=False)


def make_clip(config: SynthConfig, split: str, kind: str, index: int) -> Clip:
    """Generate clip ``index`` of ``kind`` in ``split`` (deterministic)."""
    rng = np.random.default_rng([config.seed, SPLITS.index(split), KINDS.index(kind), index])
    identity = int(rng.choice(identity_pool(config, split)))
    head = sample_head(identity)
    reference = render_reference(head, config.render_config())
    key = f"{split}-{kind}-{index:06d}"
    if kind == "multiview":
        state = _static_instant(rng, config)
        frames = render(head, state, config.render_config())
        return Clip(key, split, kind, identity, None, frames, np.zeros(0, np.float32), state, reference)
    seconds = config.seconds if split == "train" else config.eval_seconds
    voice_list = voices(split, resolve_engine(config.speech))
    voice = voice_list[int(rng.integers(len(voice_list)))]
    audio = synthesize(rng, voice, seconds)
    motion = face_motion(audio, config.fps, rng, config.motion)
    if kind == "talking":
        state = motion.with_view(*_talking_camera(rng, config, len(motion)))
        frames = render(head, state, config.render_config())
    else:
        frames, state = _render_4d(rng, config, head, motion)
    return Clip(key, split, kind, identity, voice, frames, audio, state, reference)


def _talking_camera(rng: np.random.Generator, config: SynthConfig, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Half the clips near frontal (|az| ≤ 30°), half anywhere; some drift slowly (smoothstep)."""
    span = 30.0 if rng.random() < 0.5 else config.max_azimuth
    start = np.array([rng.uniform(-span, span), rng.uniform(-0.8, 0.8) * config.max_elevation])
    end = start
    if rng.random() < config.moving_camera:
        end = start + rng.uniform([-30.0, -10.0], [30.0, 10.0])
    end = np.clip(end, [-config.max_azimuth, -config.max_elevation], [config.max_azimuth, config.max_elevation])
    s = np.linspace(0.0, 1.0, num_frames)
    s = s * s * (3 - 2 * s)
    path = start + s[:, None] * (end - start)  # [T, 2]
    return path[:, 0], path[:, 1]


def _static_instant(rng: np.random.Generator, config: SynthConfig) -> FrameState:
    """One random face state seen from ``views`` cameras along a smooth arc (azimuth sweep, elevation wave)."""
    width = rng.uniform(0.4, 1.0) * config.max_azimuth
    centre = rng.uniform(-(config.max_azimuth - width), config.max_azimuth - width)
    s = np.linspace(0.0, 1.0, config.views)
    azimuth = centre - width + 2 * width * s
    if rng.random() < 0.5:
        azimuth = azimuth[::-1]
    elevation = np.clip(rng.uniform(-0.6, 0.6) * config.max_elevation + rng.uniform(-10, 10) * np.sin(np.pi * s),
                        -config.max_elevation, config.max_elevation)  # fmt: skip
    mouth = rng.uniform(0, 1) if rng.random() < 0.7 else 0.0
    state = FrameState.neutral(config.views, azimuth, elevation)
    state.mouth_open[:] = mouth
    state.lip_round[:] = rng.uniform(0, 1) * mouth
    state.brow[:] = rng.uniform(0, 0.5)
    state.blink[:] = rng.uniform(0, 1) if rng.random() < 0.1 else 0.0
    state.head_rotation[:] = rng.uniform(-4, 4, 3)
    return state


def _render_4d(
    rng: np.random.Generator, config: SynthConfig, head, motion: FrameState
) -> tuple[np.ndarray, FrameState]:
    """The same performance from ``test_views`` fixed cameras: frames ``[V, T, H, W, 3]``, views ``[V, T]``."""
    reach = 0.67 * config.max_azimuth
    azimuth = np.linspace(-reach, reach, config.test_views) + rng.uniform(-10, 10, config.test_views)
    elevation = rng.uniform(-0.67, 0.67, config.test_views) * config.max_elevation
    frames = np.stack(
        [render(head, motion.with_view(a, e), config.render_config()) for a, e in zip(azimuth, elevation)]
    )
    num_frames = len(motion)
    state = motion.as_dict()
    state["azimuth"] = np.repeat(azimuth[:, None], num_frames, 1)
    state["elevation"] = np.repeat(elevation[:, None], num_frames, 1)
    return frames, FrameState(**state)


def _shard_jobs(config: SynthConfig) -> list[tuple[str, str, int, range]]:
    """(split, kind, shard number, clip indices) for every shard to write."""
    jobs = []
    for split in config.splits:
        for kind, count in config.counts(split).items():
            for shard, start in enumerate(range(0, count, config.shard_size)):
                jobs.append((split, kind, shard, range(start, min(count, start + config.shard_size))))
    return jobs


def _write_one_shard(config: SynthConfig, split: str, kind: str, shard: int, indices: range) -> list[dict[str, Any]]:
    """Generate and store one shard; return its clips' manifest entries."""
    name = f"{kind}-{shard:05d}.npz"
    clips = [make_clip(config, split, kind, i) for i in indices]
    write_shard(config.out / split / name, {clip.key: clip.arrays() for clip in clips})
    return [clip.metadata(name) for clip in clips]


def generate_dataset(config: SynthConfig, progress: bool = True) -> Path:
    """Generate every split into ``config.out``; return the path of the top-level manifest."""
    engine = resolve_engine(config.speech)
    jobs = _shard_jobs(config)
    start = time.perf_counter()
    entries: dict[str, list[dict[str, Any]]] = {split: [] for split in config.splits}
    bar = tqdm(total=len(jobs), desc="SynthTalk shards", unit="shard", disable=not progress)
    if config.workers <= 1:
        for job in jobs:
            entries[job[0]].extend(_write_one_shard(config, *job))
            bar.update()
    else:
        with ProcessPoolExecutor(config.workers, mp_context=_process_context()) as pool:
            futures = [(job[0], pool.submit(_write_one_shard, config, *job)) for job in jobs]
            for split, future in futures:
                entries[split].extend(future.result())
                bar.update()
    bar.close()
    seconds = time.perf_counter() - start
    logger.info("SynthTalk: %d shards in %.1f s (%s speech)", len(jobs), seconds, engine)
    return _write_manifests(config, engine, entries, seconds)


def _process_context() -> multiprocessing.context.BaseContext:
    """fork where available: workers only use numpy and espeak-ng, and fork needs no ``__main__`` guard."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _write_manifests(
    config: SynthConfig, engine: str, entries: dict[str, list[dict[str, Any]]], seconds: float
) -> Path:
    common = {"format": FORMAT, "config": asdict(config), "speech_engine": engine, "fps": config.fps,
              "sample_rate": SAMPLE_RATE, "resolution": config.resolution, "generation_seconds": round(seconds, 2)}  # fmt: skip
    for split in config.splits:
        split_info = {"split": split, "identity_range": IDENTITY_RANGES[split],
                      "voices": [v.name for v in voices(split, engine)], "clips": entries[split]}  # fmt: skip
        write_manifest(config.out / split, {**common, **split_info})
    splits = {split: {"clips": entries[split], "identity_range": IDENTITY_RANGES[split]} for split in config.splits}
    return write_manifest(config.out, {**common, "splits": splits})
