"""Scene-cut detection from per-frame colour histograms.

A hard cut changes the colour distribution of the whole frame from one frame to the next; a
pan, a zoom or camera shake changes it slowly. So: a small joint RGB histogram per frame, the
L1 distance between consecutive ones, and a cut wherever that distance is both large in
absolute terms and several times the typical frame-to-frame change around it.
"""

from __future__ import annotations

import numpy as np

BINS = 8  # per channel: 512-bin joint histograms


def colour_signature(frame: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` uint8 → normalised joint RGB histogram ``[BINS³]`` float32 (sums to 1)."""
    quantised = (frame[::2, ::2].reshape(-1, 3) // (256 // BINS)).astype(np.int32)
    index = (quantised[:, 0] * BINS + quantised[:, 1]) * BINS + quantised[:, 2]
    histogram = np.bincount(index, minlength=BINS**3).astype(np.float32)
    return histogram / histogram.sum()


def scene_cuts(signatures: np.ndarray, threshold: float = 0.6, ratio: float = 4.0, window: int = 12) -> list[int]:
    """Frame indices where a new shot starts, from signatures ``[T, D]`` (L1 distance in [0, 2])."""
    if len(signatures) < 2:
        return []
    change = np.abs(np.diff(signatures, axis=0)).sum(1)  # [T-1]: change[i] is between frame i and i+1
    cuts = []
    for i, value in enumerate(change):
        around = np.concatenate([change[max(0, i - window) : i], change[i + 1 : i + 1 + window]])
        typical = float(np.median(around)) if len(around) else 0.0
        if value > threshold and value > ratio * typical:
            cuts.append(i + 1)
    return cuts


def shots(num_frames: int, cuts: list[int]) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` frame ranges between cuts, covering ``[0, num_frames)``."""
    edges = [0, *[c for c in cuts if 0 < c < num_frames], num_frames]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]
