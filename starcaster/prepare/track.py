"""From per-frame detections to face tracks: frame labels, segments, smooth square crops.

Within one shot (between scene cuts):

1. every analysed frame gets a label — ``face``, ``no_face`` or ``several_faces`` (a second face at
   least ``second_face_ratio`` of the first's size, confidently detected, in at least
   ``second_face_share`` of the frames around it: detectors miss a second face often);
2. a sliding majority vote removes single-frame flicker (a missed detection, a false positive);
3. runs of one label become segments: ``no_face`` / ``several_faces`` runs are rejected with
   that label (so is a face run whose median detector score is under ``min_track_score``:
   sporadic weak detections on texture are no face); a face run shorter than ``min_seconds`` is ``too_short`` (whatever else is wrong
   with it), one whose median face is under ``min_face_px`` is ``face_too_small``; the rest are
   kept (``ok``), long ones split into pieces of at most ``max_seconds``;
4. in each kept segment the face box (interpolated between analysed frames) is smoothed in
   time — the centre lightly (it must follow the head), the size strongly (detector scales
   come in coarse pyramid steps) — and becomes a square crop ``crop_scale`` × the face size.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from .faces import Face


@dataclass(frozen=True)
class TrackConfig:
    min_face_px: float = 64.0  # face box side in source pixels (SynthTalk-like 2× crops: a 128² crop)
    second_face_ratio: float = 0.5
    second_face_score: float = -0.2  # in the detector's score units (dlib HOG margin; SCRFD: probability)
    min_track_score: float = -0.2  # a face run whose median score is lower is no face (dlib; SCRFD ~0.6)
    second_face_share: float = 0.3  # a frame has several faces if this share of its window shows a second one
    second_face_window: int = 15  # analysed frames (detectors miss the second face often: look wider)
    vote_frames: int = 9  # analysed frames in the majority window
    min_seconds: float = 1.5
    max_seconds: float = 10.0
    crop_scale: float = 2.1  # crop side / face side
    crop_shift: float = 0.0  # crop centre below the face centre, in face sides
    centre_sigma: float = 1.5  # frames (25 fps) of Gaussian smoothing of the box centre
    size_sigma: float = 6.0  # frames of smoothing of the box size


@dataclass
class Segment:
    start: int  # first frame (25 fps timeline of the source)
    stop: int  # one past the last
    label: str  # "ok" or the reason it is rejected
    boxes: np.ndarray | None = None  # [T, 4] square crop boxes (x0, y0, x1, y1), source pixels, for "ok"
    detail: str = ""
    faces: list[tuple[int, Face]] | None = None  # the analysed frames' faces (source pixels), for "ok"


def frame_label(faces: list[Face], config: TrackConfig) -> tuple[str, Face | None, bool]:
    """One analysed frame: ``face`` or ``no_face``, its main (largest) face, whether a second face shows."""
    if not faces:
        return "no_face", None, False
    main = max(faces, key=lambda f: f.side)
    second = any(
        f is not main and f.side >= config.second_face_ratio * main.side and f.score >= config.second_face_score
        for f in faces
    )
    return "face", main, second


def with_second_faces(labels: list[str], second: list[bool], config: TrackConfig) -> list[str]:
    """``face`` frames become ``several_faces`` where a second face shows in enough of their window."""
    half, flags = config.second_face_window // 2, np.asarray(second, float)
    out = []
    for i, label in enumerate(labels):
        share = flags[max(0, i - half) : i + half + 1].mean()
        out.append("several_faces" if label == "face" and share >= config.second_face_share else label)
    return out


def majority(labels: list[str], window: int) -> list[str]:
    """Each label replaced by the most common one in a centred window (ties keep the original)."""
    half = window // 2
    out = []
    for i, label in enumerate(labels):
        counts = Counter(labels[max(0, i - half) : i + half + 1])
        top_label, top = counts.most_common(1)[0]
        out.append(label if counts[label] == top else top_label)
    return out


def runs(labels: list[str]) -> list[tuple[int, int, str]]:
    """``[(start, stop, label)]`` of maximal runs of equal labels."""
    out, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            out.append((start, i, labels[start]))
            start = i
    return out


def _gaussian(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along axis 0 with edge replication ``[T, ...]``."""
    if sigma <= 0 or len(values) < 2:
        return values
    radius = int(3 * sigma)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.concatenate([np.repeat(values[:1], radius, 0), values, np.repeat(values[-1:], radius, 0)])
    return np.stack([np.convolve(padded[:, k], kernel, "valid") for k in range(values.shape[1])], -1)


def crop_boxes(frames: np.ndarray, faces: list[Face], start: int, stop: int, config: TrackConfig) -> np.ndarray:
    """Smooth square crops ``[stop - start, 4]`` from faces detected at ``frames`` (indices, sorted)."""
    centre = np.array([f.centre for f in faces], np.float64)  # [N, 2]
    side = np.array([f.side for f in faces], np.float64)
    timeline = np.arange(start, stop)
    cx, cy = (np.interp(timeline, frames, centre[:, k]) for k in range(2))
    sides = np.interp(timeline, frames, _median(side, 5))
    centres = _gaussian(np.stack([cx, cy], -1), config.centre_sigma)
    sides = _gaussian(sides[:, None], config.size_sigma)[:, 0]
    half = config.crop_scale * sides / 2
    cy_crop = centres[:, 1] + config.crop_shift * sides
    return np.stack([centres[:, 0] - half, cy_crop - half, centres[:, 0] + half, cy_crop + half], -1)


def _median(values: np.ndarray, width: int) -> np.ndarray:
    half = width // 2
    return np.array([np.median(values[max(0, i - half) : i + half + 1]) for i in range(len(values))])


def segment_shot(
    shot: tuple[int, int], detected: dict[int, list[Face]], scale: float, fps: float, config: TrackConfig
) -> list[Segment]:
    """Split one shot ``(start, stop)`` into labelled segments, with crop boxes for the kept ones.

    ``detected`` maps analysed frame indices to faces in analysis pixels; ``scale`` converts
    analysis to source pixels (boxes come back in source pixels).
    """
    start, stop = shot
    indices = sorted(i for i in detected if start <= i < stop)
    if not indices:
        return [Segment(start, stop, "no_face")]
    labelled = [frame_label(detected[i], config) for i in indices]
    labels = with_second_faces([label for label, _, _ in labelled], [two for _, _, two in labelled], config)
    voted = majority(labels, config.vote_frames)
    segments = []
    for a, b, label in runs(voted):
        first = start if a == 0 else indices[a]
        last = stop if b == len(indices) else indices[b]
        segments.extend(
            _segment(first, last, label, indices[a:b], [f for _, f, _ in labelled[a:b]], scale, fps, config)
        )
    return segments


def _segment(first, last, label, frames, faces, scale, fps, config: TrackConfig) -> list[Segment]:
    if label != "face":
        return [Segment(first, last, label)]
    kept = [(i, _scaled(f, scale)) for i, f in zip(frames, faces) if f is not None]
    score = float(np.median([f.score for _, f in kept]))
    if score < config.min_track_score:  # sporadic weak detections (texture, a poster): no face to track
        return [Segment(first, last, "no_face", detail=f"median detector score {score:.2f}")]
    if (last - first) < config.min_seconds * fps:  # too short to use, whatever else is wrong with it
        return [Segment(first, last, "too_short", detail=f"{(last - first) / fps:.2f} s")]
    size = float(np.median([f.side for _, f in kept]))
    if size < config.min_face_px:
        return [Segment(first, last, "face_too_small", detail=f"face {size:.0f} px < {config.min_face_px:.0f} px")]
    boxes = crop_boxes(np.array([i for i, _ in kept]), [f for _, f in kept], first, last, config)
    pieces = max(1, int(np.ceil((last - first) / (config.max_seconds * fps))))
    edges = np.linspace(first, last, pieces + 1).round().astype(int)
    return [
        Segment(int(a), int(b), "ok", boxes[a - first : b - first], faces=[(i, f) for i, f in kept if a <= i < b])
        for a, b in zip(edges[:-1], edges[1:])
    ]


def _scaled(face: Face, scale: float) -> Face:
    keypoints = None if face.keypoints is None else np.asarray(face.keypoints) * scale
    return Face(tuple(v * scale for v in face.box), face.score, keypoints)
