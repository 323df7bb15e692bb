"""Ground-truth based metrics. Each docstring states its formula; all are pure numpy functions.

Inputs come from the experts (``experts.py``) applied to generated frames, and from SynthTalk
ground truth. Higher is better unless the docstring says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

EmbedFn = Callable[[np.ndarray], np.ndarray]  # uint8 frames [N, H, W, 3] → embeddings [N, D]


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; 0 when either side is constant (a still mouth carries no sync)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.std() < 1e-4 or b.std() < 1e-4:  # below float noise of batched inference
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def lip_sync_corr(predicted_open: Sequence[np.ndarray], true_open: Sequence[np.ndarray]) -> float:
    """Mean over clips of Pearson(mouth_open measured on generated frames, ground-truth mouth_open).

    ``corr = mean_c pearson(m̂_c, m_c)``; ground-truth frames score ≈ the mouth regressor's own
    accuracy (≈ 1), a still image 0, a random mouth ≈ 0.
    """
    return float(np.mean([pearson(p, t) for p, t in zip(predicted_open, true_open)]))


def sync_distance_by_offset(visual: np.ndarray, audio: np.ndarray, max_offset: int = 15) -> np.ndarray:
    """Mean Euclidean distance between unit visual and audio embeddings per audio shift.

    ``d(o) = mean_t ‖v_t − a_{t+o}‖`` over the frames where both exist, for o = −K … K (index K is
    o = 0); ``[2K + 1]``. As in SyncNet, the true offset is the minimum.
    """
    distances = []
    for offset in range(-max_offset, max_offset + 1):
        lo, hi = max(0, -offset), min(len(visual), len(audio) - offset)
        if hi - lo < 1:
            distances.append(np.nan)
            continue
        distances.append(float(np.linalg.norm(visual[lo:hi] - audio[lo + offset : hi + offset], axis=1).mean()))
    return np.asarray(distances)


def sync_conf_dist(distances_by_offset: Sequence[np.ndarray]) -> tuple[float, float]:
    """LSE-C and LSE-D style scores, averaged over clips.

    ``sync_dist = mean_c min_o d_c(o)`` (lower is better) and
    ``sync_conf = mean_c [median_o d_c(o) − min_o d_c(o)]`` (higher is better).
    """
    dist = [np.nanmin(d) for d in distances_by_offset]
    conf = [np.nanmedian(d) - np.nanmin(d) for d in distances_by_offset]
    return float(np.mean(conf)), float(np.mean(dist))


def view_error_deg(
    predicted_azimuth: np.ndarray, predicted_elevation: np.ndarray, azimuth: np.ndarray, elevation: np.ndarray
) -> dict[str, float]:
    """Mean absolute error of the achieved camera view, in degrees (lower is better).

    ``azimuth_error = mean |â − a|``, ``elevation_error = mean |ê − e|`` over all frames;
    ``view_error_deg = (azimuth_error + elevation_error) / 2``.
    """
    az = float(np.abs(np.ravel(predicted_azimuth) - np.ravel(azimuth)).mean())
    el = float(np.abs(np.ravel(predicted_elevation) - np.ravel(elevation)).mean())
    return {"view_error_deg": (az + el) / 2, "azimuth_error_deg": az, "elevation_error_deg": el}


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of ``[N, D]`` with ``[N, D]`` or ``[D]``."""
    a = a / (np.linalg.norm(a, axis=-1, keepdims=True) + 1e-8)
    b = b / (np.linalg.norm(b, axis=-1, keepdims=True) + 1e-8)
    return (a * b).sum(-1)


def identity_cos(frames: np.ndarray, identity_embedding: np.ndarray, embed_fn: EmbedFn) -> float:
    """``mean_t cos(embed_fn(frame_t), e)``: how much each generated frame looks like the requested identity."""
    return float(cosine(embed_fn(frames), identity_embedding).mean())


def identity_drift(
    frames: np.ndarray, identity_embedding: np.ndarray, embed_fn: EmbedFn, fps: float, window_seconds: float = 5.0
) -> float:
    """Drop of identity_cos from the first to the last ``window_seconds`` of a long clip (lower is better).

    ``drift = identity_cos(first W s) − identity_cos(last W s)``; ≈ 0 for ground truth.
    """
    window = max(1, int(round(window_seconds * fps)))
    first = identity_cos(frames[:window], identity_embedding, embed_fn)
    return first - identity_cos(frames[-window:], identity_embedding, embed_fn)


def frame_steps(frames: np.ndarray) -> np.ndarray:
    """``[T−1]``: mean_pixels |x_{t+1} − x_t| of uint8 frames (0–255 scale), step by step."""
    return np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))


def motion_energy(frames: np.ndarray) -> float:
    """``E = mean_t mean_pixels |x_{t+1} − x_t|`` on uint8 frames (0–255 scale)."""
    if len(frames) < 2:
        return 0.0
    return float(frame_steps(frames).mean())


def motion_ratio(generated: Sequence[np.ndarray], ground_truth: Sequence[np.ndarray]) -> float:
    """``Σ_c E(generated_c) / Σ_c E(ground_truth_c)``: 1 = as lively as the truth, 0 = frozen, > 1 = flicker."""
    return float(sum(map(motion_energy, generated)) / max(1e-8, sum(map(motion_energy, ground_truth))))


def seam_ratio(videos: Sequence[np.ndarray], chunk_length: int) -> float:
    """Mean frame-to-frame change across chunk boundaries ÷ the mean change inside chunks.

    An autoregressive model generates ``chunk_length`` frames at a time; a jump where one chunk
    meets the next is a visible seam. 1 = boundaries look like any other frame step (the ground
    truth, which has no chunks, measures ≈ 1); above 1 = seams.
    """
    at, within = [], []
    for video in videos:
        steps = frame_steps(video)  # steps[t]: t → t+1
        boundary = (np.arange(len(steps)) + 1) % chunk_length == 0
        at.append(steps[boundary])
        within.append(steps[~boundary])
    return float(np.concatenate(at).mean() / max(1e-8, np.concatenate(within).mean()))


def ssim_to_truth(generated: Sequence[np.ndarray], ground_truth: Sequence[np.ndarray], stride: int = 1) -> float:
    """Mean SSIM of every ``stride``-th generated frame against the ground-truth frame at that instant.

    The test renders share the generated video's identity, camera and speech, so a frame that is
    right is close to the truth pixel for pixel: blur, noise and misplaced detail (an eye in the
    wrong place) all lower it, unlike identity_cos (blur-tolerant) or FID (distribution-level).
    Head sway and blinks are free to differ, so the ceiling for a model is below 1. Frames of
    another size than the truth's are resized to it first (bilinear).
    """
    from PIL import Image
    from skimage.metrics import structural_similarity

    def same_size(frame: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        if frame.shape == shape:
            return frame
        return np.asarray(Image.fromarray(frame).resize((shape[1], shape[0]), Image.BILINEAR))

    scores = [
        structural_similarity(same_size(g, t.shape), t, channel_axis=-1, data_range=255)
        for video, truth in zip(generated, ground_truth)
        for g, t in zip(video[::stride], truth[::stride])
    ]
    return float(np.mean(scores))


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray, eps: float = 1e-6) -> float:
    """``‖μ_a − μ_b‖² + tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½)`` between Gaussian fits of two feature sets.

    Used for FID (per-frame features) and FVD (per-clip features) on the project's own feature
    extractor, so the numbers are only comparable with each other, never with published FID/FVD.
    """
    mu_a, mu_b = features_a.mean(0), features_b.mean(0)
    cov_a, cov_b = (np.atleast_2d(np.cov(f, rowvar=False)) + eps * np.eye(f.shape[1]) for f in (features_a, features_b))
    # tr((Σa Σb)^½) = Σ √λ(Σa^½ Σb Σa^½): symmetric eigenproblems, fast and stable (eps·I keeps frozen video defined)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0, None)).sum()
    return max(0.0, float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root))


def clip_features(frame_features: np.ndarray, window: int = 16) -> np.ndarray:
    """FVD features of one clip: per ``window``-frame segment, [mean_t f_t, mean_t |f_{t+1} − f_t|] → ``[S, 2D]``.

    The first half is appearance, the second motion, so frozen or flickering video moves the
    Fréchet distance even when every single frame looks right.
    """
    segments = [frame_features[i : i + window] for i in range(0, len(frame_features) - window + 1, window)]
    segments = segments or [frame_features]
    return np.stack(
        [np.concatenate([s.mean(0), np.abs(np.diff(s, axis=0)).mean(0) if len(s) > 1 else 0 * s[0]]) for s in segments]
    )
