"""Metric formulas on hand-made inputs: each reaches its ceiling on the truth and its floor on a baseline."""

from __future__ import annotations

import numpy as np

from starcaster.eval import metrics


def test_lip_sync_corr_ceiling_and_floors():
    rng = np.random.default_rng(0)
    truth = [rng.random(50) for _ in range(3)]
    assert metrics.lip_sync_corr(truth, truth) == 1.0
    assert metrics.lip_sync_corr([np.full(50, 0.3)] * 3, truth) == 0.0  # a still mouth
    assert abs(metrics.lip_sync_corr([rng.random(50) for _ in range(3)], truth)) < 0.3


def test_sync_scores_find_the_true_offset():
    rng = np.random.default_rng(1)
    visual = rng.standard_normal((60, 8))
    visual /= np.linalg.norm(visual, axis=1, keepdims=True)
    aligned = metrics.sync_distance_by_offset(visual, visual, max_offset=5)
    assert np.argmin(aligned) == 5 and aligned[5] == 0.0
    shifted = metrics.sync_distance_by_offset(visual, np.roll(visual, 2, axis=0), max_offset=5)
    assert np.argmin(shifted) == 7
    unrelated = rng.standard_normal((60, 8))
    unrelated /= np.linalg.norm(unrelated, axis=1, keepdims=True)
    conf_true, dist_true = metrics.sync_conf_dist([aligned])
    conf_none, dist_none = metrics.sync_conf_dist([metrics.sync_distance_by_offset(visual, unrelated, 5)])
    assert conf_true > 1.0 > conf_none and dist_true < dist_none


def test_view_error_is_mean_absolute_degrees():
    result = metrics.view_error_deg(np.array([10.0, -10.0]), np.array([0.0, 4.0]), np.zeros(2), np.zeros(2))
    assert result == {"view_error_deg": 6.0, "azimuth_error_deg": 10.0, "elevation_error_deg": 2.0}


def test_identity_cos_and_drift():
    embed = lambda frames: frames.reshape(len(frames), -1).astype(np.float64)  # noqa: E731
    frames = np.ones((20, 2, 2, 1))
    target = np.ones(4)
    assert np.isclose(metrics.identity_cos(frames, target, embed), 1.0)
    drifting = frames.copy()
    drifting[10:, 0, 0, 0] = -1.0
    assert np.isclose(metrics.identity_drift(frames, target, embed, fps=2, window_seconds=2), 0.0)
    assert metrics.identity_drift(drifting, target, embed, fps=2, window_seconds=2) > 0.4


def test_motion_ratio_and_frechet():
    rng = np.random.default_rng(2)
    video = rng.integers(0, 255, (10, 8, 8, 3), dtype=np.uint8)
    still = np.repeat(video[:1], 10, 0)
    assert metrics.motion_ratio([video], [video]) == 1.0 and metrics.motion_ratio([still], [video]) == 0.0
    features = rng.standard_normal((400, 4))
    assert abs(metrics.frechet_distance(features, features)) < 1e-6
    assert metrics.frechet_distance(features + 1.0, features) > 3.9
    assert metrics.clip_features(features[:40], window=16).shape == (2, 8)


def test_seam_ratio_finds_jumps_between_chunks():
    rng = np.random.default_rng(3)
    smooth = np.cumsum(rng.integers(0, 3, (16, 4, 4, 3)), axis=0).astype(np.uint8)  # steady change every frame
    seamed = smooth + (np.arange(16) // 4 * 30).astype(np.uint8)[:, None, None, None]  # each chunk starts with a jump
    assert 0.8 < metrics.seam_ratio([smooth], 4) < 1.25
    assert metrics.seam_ratio([seamed], 4) > 5


def test_ssim_sees_blur_and_misplaced_detail():
    from starcaster.data.synthtalk import IDENTITY_RANGES, reference_portrait

    faces = np.stack([reference_portrait(IDENTITY_RANGES["test"][0] + i, 64) for i in range(4)])
    coarse = faces.reshape(4, 16, 4, 16, 4, 3).mean((2, 4)).astype(np.uint8)  # the video model's 4×4 patches
    blurred = np.repeat(np.repeat(coarse, 4, 1), 4, 2)
    moved = np.roll(faces, 3, axis=2)  # every detail three pixels off
    assert metrics.ssim_to_truth([faces], [faces]) == 1.0
    assert metrics.ssim_to_truth([blurred], [faces]) < 0.9
    assert metrics.ssim_to_truth([moved], [faces]) < 0.9
    assert metrics.ssim_to_truth([faces[:, :, ::-1]], [faces]) < 1.0  # a mirrored face is not the same frame
