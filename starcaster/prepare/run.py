"""``prepare``: a folder of raw talking-head videos → training shards, with every rejection explained.

Per source video (one worker each, resumable: a finished video leaves ``sources/<name>.json``):

1. probe and decode the soundtrack (16 kHz mono); a video without sound is rejected whole;
2. analysis pass at ``fps`` and at most ``analysis_width`` px: colour signatures for scene
   cuts, face detection every ``detect_every`` frames;
3. each shot → labelled segments (``track.py``): kept face tracks and rejected stretches;
4. crop pass at the source resolution: every kept frame cut to its smooth square box and
   resized to ``resolution``²;
5. the sync expert measures each kept clip's audio offset; confident offsets beyond
   ``sync_tolerance`` frames are rejected as ``out_of_sync``;
6. the identity reference frame (most frontal by pose where known, else the most confident
   detection), per-frame head pose where known, and the clip's metadata are written.

The split (train / val) is decided per source video by a hash of its name, so one person's
clips never straddle the two. The summary table counts clips and seconds per outcome.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm.auto import tqdm

from ..audio import SAMPLE_RATE
from .decode import DecodeError, analysis_size, iter_frames, probe, read_audio
from .faces import Face, head_pose, make_detector
from .scenes import colour_signature, scene_cuts, shots
from .shards import clip_arrays, write_manifests, write_source_shard
from .sync import make_sync_scorer, measure_sync
from .track import Segment, TrackConfig, segment_shot

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".flv", ".mpg", ".mpeg")
REASONS = ("no_audio", "no_face", "several_faces", "face_too_small", "too_short", "out_of_sync", "unreadable")


@dataclass
class PrepareConfig:
    out: Path
    resolution: int = 512
    fps: float = 25.0
    detector: str = "auto"  # faces.DETECTORS
    sync: str = "syncnet"  # sync.SCORERS
    sync_source: str | None = None  # syncnet weights: Hub repo id or folder (eval/syncnet.py)
    sync_tolerance: int = 2  # frames
    sync_min_confidence: float = 0.1  # below it the offset search found no clear minimum: kept
    max_offset: int = 15
    detect_every: int = 2
    analysis_width: int = 480
    val_fraction: float = 0.0
    workers: int = 1
    track: TrackConfig = field(default_factory=TrackConfig)


def find_videos(source: Path) -> list[Path]:
    """Video files in a folder (recursively), or the one file given."""
    source = Path(source)
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is neither a video file nor a folder.")
    return sorted(p for p in source.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())


def source_name(path: Path) -> str:
    """A stable short name: the stem plus a hash of the file's name and size."""
    digest = hashlib.sha1(f"{path.name}:{path.stat().st_size}".encode()).hexdigest()[:8]
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in path.stem)[:40]
    return f"{stem}-{digest}"


def _split(name: str, val_fraction: float) -> str:
    return "val" if int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < val_fraction else "train"


@lru_cache(maxsize=2)
def _detector(kind: str):
    return make_detector(kind)


@lru_cache(maxsize=2)
def _scorer(kind: str, source: str | None):
    return make_sync_scorer(kind, source)


def _analyse(path: Path, info, config: PrepareConfig) -> tuple[np.ndarray, dict[int, list[Face]], float]:
    """Colour signatures ``[T, D]``, faces at every ``detect_every``-th frame, analysis→source scale."""
    size = analysis_size(info, config.analysis_width)
    detector = _detector(config.detector)
    signatures, detected = [], {}
    for index, frame in enumerate(iter_frames(path, config.fps, size)):
        signatures.append(colour_signature(frame))
        if index % config.detect_every == 0:
            detected[index] = detector.detect(frame)
    return np.stack(signatures) if signatures else np.zeros((0, 1)), detected, info.width / size[0]


def crop_frame(frame: np.ndarray, box: np.ndarray, resolution: int) -> np.ndarray:
    """The square ``box`` (x0, y0, x1, y1; may leave the frame: edges are replicated) → ``[R, R, 3]``."""
    x0, y0, x1, y1 = np.round(box).astype(int)
    side = max(2, x1 - x0)
    pad = max(0, -x0, -y0, x0 + side - frame.shape[1], y0 + side - frame.shape[0])
    if pad:
        frame = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0 = x0 + pad, y0 + pad
    region = frame[y0 : y0 + side, x0 : x0 + side]
    interpolation = cv2.INTER_AREA if side > resolution else cv2.INTER_LINEAR
    return cv2.resize(region, (resolution, resolution), interpolation=interpolation)


def _crops(path: Path, info, segments: list[Segment], config: PrepareConfig) -> list[np.ndarray]:
    """Crop pass: ``[T, R, R, 3]`` per kept segment, from frames decoded at the source size."""
    out = [np.empty((s.stop - s.start, config.resolution, config.resolution, 3), np.uint8) for s in segments]
    last = max(s.stop for s in segments)
    for index, frame in enumerate(iter_frames(path, config.fps, (info.width, info.height))):
        if index >= last:
            break
        for crops, segment in zip(out, segments):
            if segment.start <= index < segment.stop:
                crops[index - segment.start] = crop_frame(
                    frame, segment.boxes[index - segment.start], config.resolution
                )
    return out


def _poses(segment: Segment) -> tuple[np.ndarray, bool]:
    """Per-frame (yaw, pitch, roll) ``[T, 3]`` interpolated from the analysed frames; False if unknown."""
    known = [(i, head_pose(f.keypoints)) for i, f in segment.faces or [] if f.keypoints is not None]
    frames = np.arange(segment.start, segment.stop)
    if not known:
        return np.zeros((len(frames), 3), np.float32), False
    index = np.array([i for i, _ in known])
    values = np.array([p for _, p in known], np.float64)
    return np.stack([np.interp(frames, index, values[:, k]) for k in range(3)], -1).astype(np.float32), True


def _reference_index(segment: Segment, pose: np.ndarray, pose_known: bool) -> int:
    """The identity reference: the most frontal frame (pose known), else the most confident detection."""
    if pose_known:
        return int(np.argmin(np.abs(pose[:, 0]) + np.abs(pose[:, 1])))
    best = max(segment.faces, key=lambda item: item[1].score)
    return best[0] - segment.start


def _rejection(name: str, path: Path, start: int, stop: int, reason: str, fps: float, detail: str = "") -> dict:
    return {"source": str(path), "name": name, "start_s": round(start / fps, 3), "stop_s": round(stop / fps, 3),
            "seconds": round((stop - start) / fps, 3), "reason": reason, "detail": detail}  # fmt: skip


def _keep_or_reject(crops, audio, segment: Segment, config: PrepareConfig) -> tuple[str, dict]:
    """Sync check of one kept segment: (label, sync metadata)."""
    scorer = _scorer(config.sync, config.sync_source)
    if scorer is None:
        return "ok", {}
    result = measure_sync(scorer, crops, audio, config.fps, config.max_offset)
    meta = {"sync_offset": result.offset, "sync_confidence": round(result.confidence, 4)}
    if abs(result.offset) > config.sync_tolerance and result.confidence >= config.sync_min_confidence:
        return "out_of_sync", meta
    return "ok", meta


def prepare_source(path: Path, config: PrepareConfig) -> dict[str, Any]:
    """Prepare one video (or reuse its finished record): its clips' manifest entries and rejections."""
    name = source_name(path)
    record_path = config.out / "sources" / f"{name}.json"
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        if all((config.out / record["split"] / s).is_file() for s in record["shards"]):
            return record
    record = _process(path, name, config)
    record_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = record_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(record_path)
    return record


def _process(path: Path, name: str, config: PrepareConfig) -> dict[str, Any]:
    split = _split(name, config.val_fraction)
    record = {"source": str(path), "name": name, "split": split, "clips": [], "rejected": [], "shards": []}
    try:
        info = probe(path)
        if not info.has_audio:
            record["rejected"].append(
                _rejection(name, path, 0, round(info.duration_s * config.fps), "no_audio", config.fps)
            )
            return record
        wave = read_audio(path)
        signatures, detected, scale = _analyse(path, info, config)
    except (DecodeError, OSError) as exc:  # one broken file must not stop a long job
        record["rejected"].append({**_rejection(name, path, 0, 0, "unreadable", config.fps), "detail": str(exc)})
        return record
    segments = [
        segment
        for shot in shots(len(signatures), scene_cuts(signatures))
        for segment in segment_shot(shot, detected, scale, config.fps, config.track)
    ]
    kept = [s for s in segments if s.label == "ok"]
    for segment in segments:
        if segment.label != "ok":
            record["rejected"].append(
                _rejection(name, path, segment.start, segment.stop, segment.label, config.fps, segment.detail)
            )
    clips = _finish_clips(path, info, name, kept, wave, config, record)
    if clips:
        record["shards"].append(write_source_shard(config.out / split, name, clips))
        for entry in record["clips"]:
            entry["shard"] = record["shards"][0]
    record["num_frames"] = len(signatures)
    record["detector"] = _detector(config.detector).name
    return record


def _finish_clips(path, info, name, kept, wave, config: PrepareConfig, record) -> dict[str, dict[str, np.ndarray]]:
    clips = {}
    if not kept:
        return clips
    identity = int(hashlib.sha1(name.encode()).hexdigest()[:7], 16)  # one person per source video
    for segment, crops in zip(kept, _crops(path, info, kept, config)):
        a, b = round(segment.start * SAMPLE_RATE / config.fps), round(segment.stop * SAMPLE_RATE / config.fps)
        audio = np.pad(wave[a:b], (0, max(0, (b - a) - len(wave[a:b]))))
        label, sync_meta = _keep_or_reject(crops, audio, segment, config)
        if label != "ok":
            detail = f"offset {sync_meta['sync_offset']:+d} frames, confidence {sync_meta['sync_confidence']:.3f}"
            record["rejected"].append(_rejection(name, path, segment.start, segment.stop, label, config.fps, detail))
            continue
        pose, pose_known = _poses(segment)
        reference = _reference_index(segment, pose, pose_known)
        key = f"{name}-{len(clips):03d}"
        arrays = clip_arrays(crops, audio, crops[reference], pose)
        arrays["crop_boxes"] = segment.boxes.astype(np.float32)
        clips[key] = arrays
        record["clips"].append(_entry(key, path, segment, identity, reference, pose, pose_known, sync_meta, config))
    return clips


def _entry(key, path, segment: Segment, identity, reference, pose, pose_known, sync_meta, config) -> dict:
    box = segment.boxes.mean(0)
    return {
        "key": key, "kind": "talking", "identity": identity, "voice": None,
        "num_frames": segment.stop - segment.start, "num_views": 1, "source": str(path),
        "start_s": round(segment.start / config.fps, 3), "stop_s": round(segment.stop / config.fps, 3),
        "reference_frame": int(reference), "crop_box_mean": [round(float(v), 1) for v in box],
        "head_pose_mean": [round(float(v), 1) for v in pose.mean(0)] if pose_known else None, **sync_meta,
    }  # fmt: skip


def _context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def prepare_dataset(videos: list[Path], config: PrepareConfig, progress: bool = True) -> dict[str, Any]:
    """Prepare every video (``workers`` in parallel), then write manifests and the summary."""
    _detector(config.detector)  # fail before writing anything (missing weights, offline), and
    _scorer(config.sync, config.sync_source)  # load once: forked workers inherit them
    config.out.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(videos), desc="prepare", unit="video", disable=not progress)
    records = []
    if config.workers <= 1:
        for path in videos:
            records.append(prepare_source(path, config))
            bar.update()
    else:
        with ProcessPoolExecutor(config.workers, mp_context=_context()) as pool:
            for record in pool.map(prepare_source, videos, [config] * len(videos)):
                records.append(record)
                bar.update()
    bar.close()
    return _write_outputs(records, config)


def _write_outputs(records: list[dict], config: PrepareConfig) -> dict[str, Any]:
    entries: dict[str, list[dict]] = {"train": [], "val": []}
    for record in records:
        entries[record["split"]].extend(record["clips"])
    settings = {k: v for k, v in asdict(config).items() if k != "out"}
    write_manifests(config.out, entries, config.fps, config.resolution, settings)
    rejected = [r for record in records for r in record["rejected"]]
    with (config.out / "rejections.jsonl").open("w") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in rejected)
    summary = summarise(records, config.fps)
    (config.out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def summarise(records: list[dict], fps: float) -> dict[str, Any]:
    """Clips and seconds per outcome (``kept`` and each rejection reason)."""
    rows: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for record in records:
        for clip in record["clips"]:
            rows["kept"][0] += 1
            rows["kept"][1] += clip["num_frames"] / fps
        for rejection in record["rejected"]:
            rows[rejection["reason"]][0] += 1
            rows[rejection["reason"]][1] += rejection["seconds"]
    table = {k: {"segments": int(v[0]), "seconds": round(v[1], 2)} for k, v in rows.items()}
    return {"videos": len(records), "outcomes": table}


def summary_table(summary: dict[str, Any]) -> str:
    """The summary as a fixed-width text table (what the CLI prints)."""
    total = sum(row["seconds"] for row in summary["outcomes"].values()) or 1.0
    lines = [f"{'outcome':<16}{'segments':>9}{'seconds':>10}{'share':>8}"]
    for outcome in ("kept", *REASONS):
        row = summary["outcomes"].get(outcome)
        if row:
            lines.append(f"{outcome:<16}{row['segments']:>9}{row['seconds']:>10.1f}{row['seconds'] / total:>8.0%}")
    lines.append(f"{summary['videos']} video(s)")
    return "\n".join(lines)
