"""SynthTalk generator: identities, renderer, speech and the audio → mouth mapping."""

from __future__ import annotations

import numpy as np
import pytest

from starcaster.data.heads import sample_head
from starcaster.data.motion import face_motion, frame_levels, mouth_from_audio
from starcaster.data.render import PART_NAMES, RenderConfig, render, render_parts, render_reference
from starcaster.data.speech import Voice, espeak_available, synthesize, voices
from starcaster.data.state import FrameState
from starcaster.data.synthtalk import SPLITS, SynthConfig, identity_pool

SMALL = RenderConfig(size=32)


def _centroid(parts: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Mean (x, y) pixel position of the given parts in each frame: ``[T, 2]``."""
    ids = [PART_NAMES.index(n) for n in names]
    out = []
    for frame in parts:
        ys, xs = np.nonzero(np.isin(frame, ids))
        out.append((xs.mean(), ys.mean()))
    return np.array(out)


def test_identity_is_deterministic_and_seeds_differ():
    assert sample_head(7) == sample_head(7)
    vectors = np.stack([sample_head(s).vector() for s in range(50)])
    assert len({v.tobytes() for v in vectors}) == 50
    assert np.isfinite(vectors).all()


def test_render_is_deterministic_and_any_resolution():
    head, state = sample_head(3), FrameState.neutral(2, [0.0, 45.0], [0.0, 10.0])
    first, second = render(head, state, SMALL), render(head, state, SMALL)
    assert first.dtype == np.uint8 and first.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(first, second)
    assert render(head, state, RenderConfig(size=48, supersample=1)).shape == (2, 48, 48, 3)
    assert render_reference(head, SMALL).shape == (32, 32, 3)


def test_positive_azimuth_turns_the_face_to_image_left_and_elevation_looks_down():
    head = sample_head(11)
    parts = render_parts(head, FrameState.neutral(3, [-40.0, 0.0, 40.0], 0.0), RenderConfig(size=64))
    nose_x = _centroid(parts, ("nose",))[:, 0]
    assert nose_x[0] > nose_x[1] + 3 > nose_x[2] + 6  # +azimuth shows the subject's left: the nose moves left
    assert (parts[2] == PART_NAMES.index("ear_l")).sum() > (parts[0] == PART_NAMES.index("ear_l")).sum()
    parts = render_parts(head, FrameState.neutral(2, 0.0, [-25.0, 25.0]), RenderConfig(size=64))
    eyes_y = _centroid(parts, ("eye_r", "eye_l"))[:, 1]
    assert eyes_y[1] > eyes_y[0] + 5  # seen from above, the face sits lower in the image


def test_mouth_opening_is_visible_at_64px():
    head, state = sample_head(5), FrameState.neutral(2)
    state.mouth_open[:] = [0.0, 1.0]
    frames = render(head, state, RenderConfig(size=64)).astype(float)
    assert np.abs(frames[1] - frames[0]).sum(-1).astype(bool).sum() > 20  # pixels that change


def _speech_with_silence(seconds_silence: float = 0.6) -> np.ndarray:
    rng = np.random.default_rng(0)
    speech = synthesize(rng, Voice("formant", "synthetic", "m1"), 1.5)
    silence = np.zeros(int(seconds_silence * 16000), np.float32)
    return np.concatenate([silence, speech, silence])


def test_mouth_is_closed_in_silence_and_follows_loudness():
    wave = _speech_with_silence()
    mouth_open, lip_round, speech = mouth_from_audio(wave, 25)
    assert mouth_open[:13].max() == 0.0 and mouth_open[-13:].max() == 0.0  # 0.6 s of silence, 1-frame margin
    assert lip_round[:13].max() == 0.0
    level, _ = frame_levels(wave, 25)
    voiced = slice(15, -15)
    assert np.corrcoef(mouth_open[voiced], level[voiced])[0, 1] > 0.5
    assert mouth_open.min() >= 0 and mouth_open.max() <= 1


def test_face_motion_is_seeded():
    wave = _speech_with_silence(0.2)
    a, b = face_motion(wave, 25, np.random.default_rng(1)), face_motion(wave, 25, np.random.default_rng(1))
    c = face_motion(wave, 25, np.random.default_rng(2))
    np.testing.assert_array_equal(a.head_rotation, b.head_rotation)
    np.testing.assert_array_equal(a.mouth_open, c.mouth_open)  # the mouth is deterministic given the audio
    assert not np.array_equal(a.head_rotation, c.head_rotation)


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")
def test_espeak_speech_has_exact_length_and_pauses():
    wave = synthesize(np.random.default_rng(3), voices("train", "espeak")[0], 2.0)
    assert wave.dtype == np.float32 and wave.shape == (32000,)
    assert 0.2 < np.abs(wave).max() <= 0.9 + 1e-6


def test_splits_share_no_identities_or_voices():
    config = SynthConfig(clips=100)
    pools = {split: set(identity_pool(config, split).tolist()) for split in SPLITS}
    assert not pools["train"] & pools["test"] and not pools["train"] & pools["val"]
    for engine in ("espeak", "formant"):
        names = {split: {v.name for v in voices(split, engine)} for split in SPLITS}
        assert not names["train"] & names["test"] and not names["train"] & names["val"]


def test_synth_cli_writes_a_dataset_without_multiview_sets(tmp_path):
    """The GPU recipe's data: talking clips only (`--multiview-sets 0`)."""
    import json

    from starcaster.cli import main

    args = ["synth", "--out", str(tmp_path), "--clips", "3", "--multiview-sets", "0", "--eval-clips", "1"]
    assert main([*args, "--seconds", "0.5", "--resolution", "16"]) == 0
    kinds = {c["kind"] for c in json.loads((tmp_path / "train" / "manifest.json").read_text())["clips"]}
    assert kinds == {"talking"}
