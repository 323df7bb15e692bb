"""A stand-in for videos "from the wild", with ground truth: SynthTalk heads composed into larger shots.

``prepare`` (``starcaster.prepare``) must turn raw talking-head footage into training clips. Real
footage cannot be fetched here, so this module makes videos with the troubles real footage has,
and writes down exactly where they are:

* larger frames than the training crop, a textured background that pans, the head off-centre;
* a slow zoom and camera shake (the head's box moves and scales every frame);
* hard cuts between shots (a new background, a new person);
* shots with a second face, shots with no face at all, a shot where the head is too small,
  a shot too short to keep, and one talking shot whose audio is offset from the video.

Each video comes with ``<name>.truth.json``: per shot its frames, its label (the reason
``prepare`` must give, or ``"ok"``), the audio offset, and per frame the square box the
SynthTalk render occupies in the frame — the crop a perfect ``prepare`` recovers.
Shots are rendered at ``fps`` (30 by default, so ``prepare``'s resampling to 25 is exercised).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..audio import SAMPLE_RATE
from .heads import sample_head
from .motion import face_motion
from .render import RenderConfig, render_with_parts
from .speech import resolve_engine, synthesize, voices

LABELS = ("ok", "no_face", "several_faces", "face_too_small", "too_short", "out_of_sync")


@dataclass(frozen=True)
class Shot:
    """One shot of a wild video: what is in it and how long."""

    label: str  # one of LABELS: what prepare must conclude about it
    seconds: float
    head_px: int = 200  # rendered head square, before zoom
    offset_frames: int = 0  # audio delay (positive: the sound comes later than the mouth)


@dataclass
class WildConfig:
    width: int = 384
    height: int = 288
    fps: float = 30.0
    zoom: float = 0.15  # the head square grows by up to this fraction over a shot
    shake_px: float = 2.0  # camera shake amplitude (smoothed random walk)
    seed: int = 0
    speech: str = "auto"
    shots: tuple[Shot, ...] = field(default_factory=tuple)


# Two videos that together hold every kind of shot prepare must handle.
DEFAULT_VIDEOS: dict[str, tuple[Shot, ...]] = {
    "wild-000": (
        Shot("ok", 3.2),
        Shot("no_face", 1.6),
        Shot("several_faces", 2.4),
        Shot("face_too_small", 2.4, head_px=96),
    ),
    "wild-001": (
        Shot("ok", 3.2, head_px=184),
        Shot("out_of_sync", 3.2, offset_frames=10),
        Shot("too_short", 0.8),
        Shot("ok", 2.8),
    ),
}


def _background(rng: np.random.Generator, config: WildConfig, frames: int) -> np.ndarray:
    """A smooth colour texture, twice the frame size, panned across: ``[T, H, W, 3]`` uint8."""
    small = rng.uniform(40, 200, (12, 16, 3)).astype(np.float32)
    texture = cv2.resize(small, (2 * config.width, 2 * config.height), interpolation=cv2.INTER_CUBIC)
    stripes = 18 * np.sin(np.arange(2 * config.width) / rng.uniform(6, 14))[None, :, None]
    texture = np.clip(texture + stripes, 0, 255).astype(np.uint8)
    velocity = rng.uniform(-1.5, 1.5, 2)  # pixels per frame
    start = rng.uniform(0.2, 0.6, 2) * (config.width, config.height)
    out = np.empty((frames, config.height, config.width, 3), np.uint8)
    for t in range(frames):
        x, y = (start + velocity * t).astype(int) % (config.width, config.height)
        out[t] = texture[y : y + config.height, x : x + config.width]
    return out


def _smooth_walk(rng: np.random.Generator, frames: int, amplitude: float) -> np.ndarray:
    """``[T, 2]`` camera shake: a random walk, box-smoothed, scaled to ``amplitude`` px."""
    walk = np.cumsum(rng.normal(0, 1, (frames + 4, 2)), 0)
    walk = np.stack([np.convolve(walk[:, i], np.ones(5) / 5, "valid") for i in range(2)], -1)[:frames]
    walk -= walk.mean(0)
    return amplitude * walk / max(1e-6, np.abs(walk).max())


def _talking_head(rng: np.random.Generator, identity: int, seconds: float, size: int, config: WildConfig):
    """Speech and a rendered talking head: (audio [S], frames [T, s, s, 3], mask [T, s, s] bool)."""
    voice_list = voices("train", resolve_engine(config.speech))
    audio = synthesize(rng, voice_list[int(rng.integers(len(voice_list)))], seconds)
    state = face_motion(audio, config.fps, rng)
    frames, parts = render_with_parts(sample_head(identity), state, RenderConfig(size=size, supersample=1))
    return audio, frames, parts >= 0


def _paste(canvas: np.ndarray, patch: np.ndarray, mask: np.ndarray, x: float, y: float, side: float) -> None:
    """Alpha-paste a square ``patch`` (its foreground ``mask``) at ``(x, y)`` scaled to ``side`` px."""
    side_i = max(2, int(round(side)))
    patch = cv2.resize(patch, (side_i, side_i), interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(mask.astype(np.float32), (side_i, side_i), interpolation=cv2.INTER_AREA)[..., None]
    x0, y0 = int(round(x)), int(round(y))
    cx0, cy0 = max(0, x0), max(0, y0)
    cx1, cy1 = min(canvas.shape[1], x0 + side_i), min(canvas.shape[0], y0 + side_i)
    if cx1 <= cx0 or cy1 <= cy0:
        return
    region = patch[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0].astype(np.float32)
    a = alpha[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    canvas[cy0:cy1, cx0:cx1] = (a * region + (1 - a) * canvas[cy0:cy1, cx0:cx1]).astype(np.uint8)


def _shot(
    rng: np.random.Generator, shot: Shot, config: WildConfig, identity: int
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Frames ``[T, H, W, 3]``, audio and the truth record of one shot."""
    frames = int(round(shot.seconds * config.fps))
    canvas = _background(rng, config, frames)
    samples = int(round(shot.seconds * SAMPLE_RATE))
    if shot.label == "no_face":
        return canvas, np.zeros(samples, np.float32), {"boxes": []}
    audio, head, mask = _talking_head(rng, identity, shot.seconds, shot.head_px, config)
    head, mask = head[:frames], mask[:frames]
    zoom = 1 + config.zoom * np.linspace(0, 1, frames) * rng.choice([-1, 1])
    shake = _smooth_walk(rng, frames, config.shake_px)
    side0 = shot.head_px
    # off-centre: the head sits in the left or right part of the frame
    cx = config.width * rng.choice([0.32, 0.68]) + rng.uniform(-10, 10)
    cy = config.height * 0.5 + rng.uniform(-10, 10)
    boxes = []
    other = None
    if shot.label == "several_faces":
        other = _talking_head(rng, identity + 7919, shot.seconds, int(shot.head_px * 0.8), config)
    for t in range(frames):
        side = side0 * zoom[t]
        x, y = cx - side / 2 + shake[t, 0], cy - side / 2 + shake[t, 1]
        if other is not None:  # the second person stands on the other side
            ox = config.width - cx - 0.4 * side
            _paste(canvas[t], other[1][t], other[2][t], ox, y + 0.1 * side, 0.8 * side)
        _paste(canvas[t], head[t], mask[t], x, y, side)
        boxes.append([round(float(v), 2) for v in (x, y, x + side, y + side)])
    audio = _offset(audio, shot.offset_frames, config.fps)
    return canvas, audio[:samples], {"boxes": boxes}


def _offset(audio: np.ndarray, frames: int, fps: float) -> np.ndarray:
    """Delay the sound by ``frames`` video frames (silence in front), keeping the length."""
    if frames == 0:
        return audio
    shift = int(round(frames * SAMPLE_RATE / fps))
    return np.concatenate([np.zeros(shift, np.float32), audio[:-shift]]) if shift > 0 else audio


def make_wild_video(config: WildConfig) -> tuple[np.ndarray, np.ndarray, dict]:
    """Every shot of ``config`` cut together: frames ``[T, H, W, 3]``, audio ``[S]`` 16 kHz, truth."""
    rng = np.random.default_rng([config.seed, 0x3117D])
    videos, sounds, records, start = [], [], [], 0
    for index, shot in enumerate(config.shots):
        identity = int(rng.integers(0, 1_000_000))
        frames, audio, truth = _shot(np.random.default_rng([config.seed, index]), shot, config, identity)
        videos.append(frames)
        sounds.append(audio)
        records.append({**asdict(shot), "start_frame": start, "stop_frame": start + len(frames), **truth})
        start += len(frames)
    truth = {"fps": config.fps, "width": config.width, "height": config.height, "shots": records}
    return np.concatenate(videos), np.concatenate(sounds), truth


def write_wild_videos(out: Path, videos: dict[str, tuple[Shot, ...]] | None = None, seed: int = 0) -> list[Path]:
    """Write ``<out>/<name>.mp4`` (H.264 + AAC) and ``<name>.truth.json`` for each video."""
    from ..video import write_video

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, (name, shots) in enumerate((videos or DEFAULT_VIDEOS).items()):
        config = WildConfig(seed=seed * 1000 + number, shots=tuple(shots))
        frames, audio, truth = make_wild_video(config)
        path = write_video(out / f"{name}.mp4", [frames], config.fps, audio, SAMPLE_RATE)
        (out / f"{name}.truth.json").write_text(json.dumps(truth))
        paths.append(path)
    return paths


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes ``[N, 4]`` (x0, y0, x1, y1) pairwise row by row → ``[N]``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    x0, y0 = np.maximum(a[:, 0], b[:, 0]), np.maximum(a[:, 1], b[:, 1])
    x1, y1 = np.minimum(a[:, 2], b[:, 2]), np.minimum(a[:, 3], b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda r: (r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def score_prepared(videos: Path, prepared: Path) -> dict:
    """Compare ``prepare``'s output on the wild videos with their truth.

    Returns per shot its true label and what ``prepare`` said about most of its time
    (``kept`` clips count as ``ok``), the mean IoU of kept crops against the true head square
    (both sampled at the clip's 25 fps times), and the measured offset of the out-of-sync shot.
    """
    from ..data.shards import read_clip

    manifest = json.loads((Path(prepared) / "manifest.json").read_text())
    clips = [c for split in manifest["splits"].values() for c in split["clips"]]
    rejected = [json.loads(line) for line in (Path(prepared) / "rejections.jsonl").read_text().splitlines()]
    fps = float(manifest["fps"])
    shots = []
    for truth_path in sorted(Path(videos).glob("*.truth.json")):
        truth, source = json.loads(truth_path.read_text()), str(truth_path).replace(".truth.json", ".mp4")
        spans = [(c["start_s"], c["stop_s"], "ok", c) for c in clips if c["source"] == source]
        spans += [(r["start_s"], r["stop_s"], r["reason"], r) for r in rejected if r["source"] == source]
        for shot in truth["shots"]:
            shots.append(_score_shot(shot, truth["fps"], spans, prepared, fps, read_clip))
    return {"shots": shots}


def _score_shot(shot: dict, video_fps: float, spans, prepared: Path, fps: float, read_clip) -> dict:
    start, stop = shot["start_frame"] / video_fps, shot["stop_frame"] / video_fps
    overlap = {}
    for a, b, label, _ in spans:
        overlap[label] = overlap.get(label, 0.0) + max(0.0, min(b, stop) - max(a, start))
    verdict = max(overlap, key=overlap.get) if overlap and max(overlap.values()) > 0 else "missing"
    out = {"file_label": shot["label"], "verdict": verdict, "seconds": round(stop - start, 2)}
    ious = []
    for a, b, label, entry in spans:
        if label == "ok" and a < stop and b > start and shot["boxes"]:
            boxes = read_clip(Path(prepared) / _split_of(prepared, entry) / entry["shard"], entry["key"])["crop_boxes"]
            times = a + np.arange(len(boxes)) / fps
            inside = (times >= start) & (times < stop)
            index = np.clip(np.round((times[inside] - start) * video_fps).astype(int), 0, len(shot["boxes"]) - 1)
            ious.append(box_iou(boxes[inside], np.asarray(shot["boxes"])[index]))
    if ious:
        out["crop_iou_mean"] = round(float(np.concatenate(ious).mean()), 3)
        out["crop_iou_min"] = round(float(np.concatenate(ious).min()), 3)
    if label_offset := [e for a, b, label, e in spans if label == "out_of_sync" and a < stop and b > start]:
        out["detail"] = label_offset[0]["detail"]
    return out


def _split_of(prepared: Path, entry: dict) -> str:
    return "val" if (Path(prepared) / "val" / entry["shard"]).is_file() else "train"
