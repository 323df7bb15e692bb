"""Streaming generation: windowed audio features, long files in blocks, live audio, steering, stopping.

Each streaming path is checked against the whole-clip computation it replaces: the features
of a clip pushed in random pieces equal ``frame_features`` of the clip, a recording read in
blocks generates the frames the in-memory path does, a live microphone session generates
the video an offline run of the same speech does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from starcaster import pipeline as pipeline_module
from starcaster.audio import AudioFeatureConfig, frame_features, load_audio, num_video_frames
from starcaster.audio_stream import FrameFeatureStream, iter_file_blocks
from starcaster.camera import ViewSteering, make_view_track
from starcaster.errors import InputError
from starcaster.live import LiveSession

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(chunk_length=4, num_inference_steps=1, fps=10)


def _speech(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16_000)) / 16_000
    envelope = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None)
    return (envelope * (0.3 * np.sign(np.sin(2 * np.pi * 130 * t)) + 0.05 * rng.standard_normal(len(t)))).astype(
        np.float32
    )


@pytest.mark.parametrize("fps", [25, 30, 7])
def test_features_pushed_in_pieces_equal_the_whole_clip_features(fps):
    rng = np.random.default_rng(fps)
    for seconds in (0.004, 0.7, 2.37):
        wave = _speech(seconds, fps)
        whole = frame_features(wave, fps, AudioFeatureConfig())
        stream, taken, parts, pos = FrameFeatureStream(fps), 0, [], 0
        while pos < len(wave):
            step = int(rng.integers(1, 4000))
            stream.push(wave[pos : pos + step])
            pos += step
            if stream.ready > taken:
                parts.append(stream.take(taken, stream.ready))
                taken = stream.ready
        stream.end()
        parts.append(stream.take(taken, stream.ready))
        got = np.concatenate(parts)
        assert stream.total == len(whole) and got.shape == whole.shape
        np.testing.assert_allclose(got, whole, atol=1e-5)


def test_the_stream_keeps_only_what_later_frames_need():
    stream = FrameFeatureStream(25)
    wave = _speech(10.0)
    taken = 0
    for pos in range(0, len(wave), 8000):
        stream.push(wave[pos : pos + 8000])
        stream.take(taken, stream.ready)
        taken = stream.ready
        assert len(stream._samples) < 1000 and len(stream._frames) <= 20  # a push and a window, not the clip
    assert num_video_frames(len(wave), 25) - 4 <= taken  # only the last few frames wait for the end


@pytest.mark.parametrize("rate", [16_000, 44_100])
def test_file_blocks_decode_what_load_audio_decodes(tmp_path, rate):
    import librosa

    path = tmp_path / f"speech_{rate}.wav"
    sf.write(path, librosa.resample(_speech(3.1), orig_sr=16_000, target_sr=rate), rate)
    blocks = list(iter_file_blocks(path, block_seconds=0.25))
    assert len(blocks) > 5
    np.testing.assert_allclose(np.concatenate(blocks), load_audio(path), atol=1e-6)


def test_a_long_recording_is_read_in_blocks_and_generates_the_same_frames(
    tiny_pipe, identity_vector, tmp_path, monkeypatch
):
    path = tmp_path / "long.wav"
    sf.write(path, _speech(2.0), 16_000, subtype="FLOAT")
    common = dict(identity_embedding=identity_vector, **FAST)
    whole = tiny_pipe(load_audio(path), generator=torch.Generator().manual_seed(3), **common)
    monkeypatch.setattr(pipeline_module, "LONG_AUDIO_SECONDS", 1.0)
    run = tiny_pipe.start(audio=str(path), generator=torch.Generator().manual_seed(3), **common)
    assert run.audio is None and run.audio_file == path and run.num_frames == 20  # nothing decoded up front
    frames = np.concatenate([c.frames for c in run.chunks])
    assert np.abs(frames.astype(int) - whole.frames).max() <= 1  # float rounding of the features at most
    with pytest.raises(InputError, match="trim_silence"):
        tiny_pipe.start(audio=str(path), trim_silence=True, **common)


def test_steering_turns_later_chunks_smoothly(tiny_pipe, identity_vector):
    run = tiny_pipe.start(audio=_speech(3.0), identity_embedding=identity_vector, azimuth=0.0, **FAST)
    chunks = iter(run.chunks)
    first = next(chunks)
    run.steer(azimuth=40.0, elevation=10.0, chunk_length=2)
    rest = list(chunks)
    azimuth = np.concatenate([first.azimuth, *[c.azimuth for c in rest]])
    assert np.all(first.azimuth == 0.0) and len(azimuth) == run.num_frames == 30
    assert {len(c.frames) for c in rest[1:-1]} == {2}  # the chunk length changed for the chunks still to come
    steps = np.diff(azimuth)
    assert np.all(steps >= 0) and steps.max() <= 120.0 / 10 + 1e-4  # eased, capped at 120 °/s: no jump
    assert azimuth[-1] > 38.0 and abs(run.views.elevation[-1] - 10.0) < 1.0
    np.testing.assert_allclose(run.views.azimuth, azimuth)  # the track the run reports is what it rendered
    with pytest.raises(InputError, match="elevation"):
        run.steer(elevation=720)
    with pytest.raises(InputError, match="elevation must be between -90"):
        tiny_pipe.start(audio=_speech(1.0), identity_embedding=identity_vector, elevation=720, **FAST)


def test_steering_before_any_frame_starts_from_the_planned_view():
    steering = ViewSteering(make_view_track(10, 20.0, 0.0))
    steering.steer(azimuth=-20.0)
    azimuth, _ = steering.views(0, 10, fps=25)
    assert 20.0 > azimuth[0] > azimuth[-1] > -20.0


def test_live_microphone_session_generates_what_an_offline_run_does(tiny_pipe, identity_vector):
    wave = _speech(1.6)
    common = dict(identity_embedding=identity_vector, **FAST)
    offline = tiny_pipe(wave, generator=torch.Generator().manual_seed(5), **common)
    session = LiveSession(tiny_pipe, generator=torch.Generator().manual_seed(5), **common)
    collected = []
    for pos in range(0, len(wave), 1600):  # 0.1 s pieces, as a microphone would send them
        session.push((wave[pos : pos + 1600] * 32767).astype(np.int16))  # int16, as Gradio's microphone gives
        collected += session.collect()[0]
    session.end()
    over = False
    while not over:
        more, over = session.collect(wait=5.0)
        collected += more
    frames = np.concatenate([c.chunk.frames for c in collected])
    assert frames.shape == offline.frames.shape
    assert np.abs(frames.astype(int) - offline.frames).max() <= 1
    assert sum(len(c.audio) for c in collected) == len(wave)  # each chunk carries its own slice of the speech
    assert len(session.latencies) == len(frames) and min(session.latencies) >= 0
    session.close()


def test_live_session_at_48k_and_stopped_midway(tiny_pipe, identity_vector):
    session = LiveSession(tiny_pipe, identity_embedding=identity_vector, **FAST)
    import librosa

    session.push(librosa.resample(_speech(1.0), orig_sr=16_000, target_sr=48_000), sample_rate=48_000)
    chunks, _ = session.collect(wait=5.0)
    assert chunks and abs(session.received - 16_000) < 1000  # the resampler holds back a few ms until the end
    started = time.perf_counter()
    session.close()  # the Stop button: no waiting for audio that will never come
    assert time.perf_counter() - started < 10 and not session._thread.is_alive()


def test_a_failing_chunk_is_raised_in_the_consumer(tiny_pipe, identity_vector, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("denoiser exploded")

    from starcaster.models import rollout

    monkeypatch.setattr(rollout, "denoise_steps", broken)
    with pytest.raises(RuntimeError, match="exploded"):
        tiny_pipe(_speech(0.5), identity_embedding=identity_vector, **FAST)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_stopped_mid_run_leaves_no_file(tiny_checkpoint, tmp_path, identity_vector, sig):
    sf.write(tmp_path / "speech.wav", _speech(180.0), 16_000)  # long enough to still be running at the signal
    np.save(tmp_path / "identity.npy", identity_vector)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    args = [sys.executable, "-m", "starcaster", "generate", "--checkpoint", str(tiny_checkpoint)]
    args += ["--audio", str(tmp_path / "speech.wav"), "--embedding", str(tmp_path / "identity.npy")]
    args += ["--out", str(out_dir / "talk.mp4"), "--fps", "25"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    # As from a terminal: a suite started in the background (`pytest &`, nohup) ignores SIGINT, the
    # child would inherit that and Python would leave Ctrl-C ignored. A handled signal is reset on exec.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    finally:
        signal.signal(signal.SIGINT, inherited)
    deadline = time.monotonic() + 120
    while not list(out_dir.glob(".*partial*")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert list(out_dir.glob(".*partial*")), proc.communicate()[1].decode()[-2000:]  # mid-run: the mp4 is being written
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in stderr.decode()
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("given", [None, "ACTIVE"])
def test_openmp_threads_wait_passively_unless_the_user_chose(given):
    """The stages' OpenMP threads must not spin on each other's cores: importing starcaster (before
    torch, as app.py and the CLI do) makes libgomp's idle threads sleep; a user's own setting stays."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    code = "import os, sys, starcaster; print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [given or "PASSIVE", "False"]  # set before torch could have read it
