"""``prepare`` against the wild stand-in's ground truth: reasons, crops that follow the head, the offset found."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from starcaster.cli import main
from starcaster.data.wild import DEFAULT_VIDEOS, Shot, box_iou, score_prepared, write_wild_videos
from starcaster.prepare.faces import Face
from starcaster.prepare.scenes import scene_cuts, shots
from starcaster.prepare.track import TrackConfig, majority, segment_shot

ONE_VIDEO = {
    "wild-fast": (
        Shot("ok", 2.4),
        Shot("no_face", 1.0),
        Shot("several_faces", 1.8),
        Shot("out_of_sync", 2.4, offset_frames=10),
        Shot("too_short", 0.8),
        Shot("face_too_small", 2.0, head_px=96),
    )
}


@pytest.fixture(scope="module")
def wild(tmp_path_factory):
    videos = tmp_path_factory.mktemp("wild")
    write_wild_videos(videos, ONE_VIDEO, seed=3)
    out = tmp_path_factory.mktemp("prepared") / "data"
    args = ["prepare", str(videos), "--out", str(out), "--resolution", "64", "--sync", "synthtalk"]
    started = time.perf_counter()
    assert main(args) == 0
    return videos, out, args, time.perf_counter() - started


def test_every_shot_gets_the_right_verdict(wild):
    videos, out, _, _ = wild
    scored = score_prepared(videos, out)["shots"]
    assert [s["verdict"] for s in scored] == [s["file_label"] for s in scored]
    offset = next(s for s in scored if s["file_label"] == "out_of_sync")
    assert "offset +8 frames" in offset["detail"] or "offset +9 frames" in offset["detail"]  # 10 frames at 30 fps


def test_crops_follow_the_head(wild):
    videos, out, _, _ = wild
    kept = [s for s in score_prepared(videos, out)["shots"] if s["verdict"] == "ok"]
    assert kept and all(s["crop_iou_mean"] > 0.8 and s["crop_iou_min"] > 0.6 for s in kept)


def test_output_is_training_data(wild, capsys):
    from starcaster.data.datasets import SynthTalkDataset

    _, out, _, _ = wild
    dataset = SynthTalkDataset(out / "train", window=8)
    sample = next(iter(dataset))
    assert sample["frames"].shape == (8, 64, 64, 3) and sample["audio"].shape == (8 * 640,)
    assert sample["reference"].shape == (64, 64, 3)
    entry = dataset.manifest["clips"][0]
    assert entry["source"].endswith("wild-fast.mp4") and entry["stop_s"] - entry["start_s"] >= 1.5
    assert len(entry["crop_box_mean"]) == 4 and entry["head_pose_mean"] is None  # dlib: no keypoints
    reasons = {json.loads(line)["reason"] for line in (out / "rejections.jsonl").read_text().splitlines()}
    assert reasons == {"no_face", "several_faces", "out_of_sync", "too_short", "face_too_small"}


def test_rerun_resumes(wild, capsys):
    _, out, args, first = wild
    records = sorted((out / "sources").glob("*.json"))
    stamps = [p.stat().st_mtime for p in records]
    started = time.perf_counter()
    assert main(args) == 0
    assert [p.stat().st_mtime for p in records] == stamps  # the finished video was not processed again
    assert time.perf_counter() - started < first / 2
    assert "kept" in capsys.readouterr().out


def test_bad_input_is_one_error_line_and_no_files(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["prepare", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith("error: No video files")
    assert not (tmp_path / "out").exists()


def test_scene_cuts_ignore_pans_and_find_cuts():
    rng = np.random.default_rng(0)
    base = rng.dirichlet(np.ones(64), size=2)
    drift = np.linspace(0, 0.05, 30)[:, None]
    signatures = np.concatenate([base[0] + drift * base[1], base[1] + drift * base[0]])
    assert scene_cuts(signatures) == [30]
    assert shots(60, [30]) == [(0, 30), (30, 60)]


def test_tracks_split_on_a_second_face_and_smooth_the_crop():
    config = TrackConfig(min_seconds=1.0, crop_scale=2.0)
    detected = {}
    for i in range(0, 100, 2):
        x = 100 + i + (3 if i % 4 else -3)  # moving right, with jitter
        faces = [Face((x, 50, x + 80, 130), 1.0)]
        if 40 <= i < 70:
            faces.append(Face((300, 50, 370, 120), 1.0))
        detected[i] = faces
    segments = segment_shot((0, 150), detected, scale=1.0, fps=25, config=config)
    assert [s.label for s in segments] == ["ok", "several_faces", "ok"]
    first = segments[0]
    centres = (first.boxes[:, 0] + first.boxes[:, 2]) / 2
    truth = 140 + np.arange(first.start, first.stop)
    assert np.abs(centres - truth).mean() < 3  # follows the motion, not the jitter
    assert np.allclose(first.boxes[:, 2] - first.boxes[:, 0], 160, atol=1)
    assert majority(["a", "b", "a", "a", "c"], 3) == ["a", "a", "a", "a", "c"]  # a tie keeps its own


def test_box_iou():
    assert box_iou([[0, 0, 10, 10]], [[0, 0, 10, 10]])[0] == pytest.approx(1.0)
    assert box_iou([[0, 0, 10, 10]], [[5, 0, 15, 10]])[0] == pytest.approx(1 / 3)


@pytest.mark.slow
def test_default_stand_in_videos(tmp_path):
    """Both default wild videos (every kind of shot): the figures docs/training-real.md reports."""
    videos = tmp_path / "wild"
    write_wild_videos(videos, DEFAULT_VIDEOS)
    out = tmp_path / "prepared"
    assert main(["prepare", str(videos), "--out", str(out), "--resolution", "128", "--sync", "synthtalk"]) == 0
    scored = score_prepared(videos, out)["shots"]
    assert [s["verdict"] for s in scored] == [s["file_label"] for s in scored]
    assert all(s["crop_iou_mean"] > 0.8 for s in scored if s["verdict"] == "ok")


def test_missing_sync_weights_offline_fail_before_any_file(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "clip.mp4").write_bytes(b"not checked yet")
    assert main(["prepare", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--sync", "syncnet"]) == 2
    assert "hf download ByteDance/LatentSync-1.5 stable_syncnet.pt" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_broken_file_is_rejected_not_fatal(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.mp4").write_bytes(b"\x00" * 2048)
    assert main(["prepare", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--sync", "none"]) == 0
    rejected = [json.loads(line) for line in (tmp_path / "out" / "rejections.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in rejected] == ["unreadable"] and "broken.mp4" in rejected[0]["detail"]
