"""Soak (``-m slow``): 10 minutes of talking-portrait video through the streaming path.

``python -m starcaster generate`` (in this process, so its memory can be watched) streams
15,000 frames of the ``tiny`` model at 25 fps into an mp4 while a thread samples RSS. The run
passes when memory is flat (the last fifth of the run within ``FLAT_MB`` of the second fifth),
every frame is in the file, and the video and audio tracks are equally long (in sync).
``STARCASTER_SOAK_SECONDS`` shortens it (e.g. 60 for a quick check); ``-s`` prints the figures.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from tests.reliability.harness import rss_mb

SOAK_SECONDS = float(os.environ.get("STARCASTER_SOAK_SECONDS", 600))
FPS = 25
FLAT_MB = 40


def _speech(seconds: float, sr: int = 16_000) -> np.ndarray:
    """Speech-like audio: a voiced buzz under a 3 Hz syllable envelope, with a pause every 4 s."""
    t = np.arange(int(seconds * sr)) / sr
    buzz = np.sign(np.sin(2 * np.pi * 120 * t)) * 0.3 + 0.2 * np.sin(2 * np.pi * 700 * t)
    envelope = np.clip(np.sin(2 * np.pi * 3 * t), 0, None) * ((t % 4.0) < 3.2)
    return (buzz * envelope).astype(np.float32)


def _audio_seconds(path) -> float:
    """Length of the mp4's audio track, by decoding it (the bundled ffmpeg; no ffprobe here)."""
    import imageio_ffmpeg

    done = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", "0:a", "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    h, m, s = re.findall(r"time=(\d+):(\d+):([\d.]+)", done.stderr)[-1]
    return int(h) * 3600 + int(m) * 60 + float(s)


@pytest.mark.slow
def test_ten_minutes_of_streaming_video(tiny_checkpoint, tmp_path, identity_vector):
    import imageio_ffmpeg

    from starcaster.cli import main

    audio, embedding, out = tmp_path / "speech.wav", tmp_path / "identity.npy", tmp_path / "soak.mp4"
    sf.write(audio, _speech(SOAK_SECONDS), 16_000, subtype="PCM_16")
    np.save(embedding, identity_vector)
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample():
        started = time.monotonic()
        while not stop.wait(1.0):
            samples.append((time.monotonic() - started, rss_mb()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    try:
        args = ["generate", "--checkpoint", str(tiny_checkpoint), "--audio", str(audio), "--embedding", str(embedding)]
        code = main([*args, "--fps", str(FPS), "--steps", "2", "--chunk-length", "4", "--out", str(out)])
    finally:
        stop.set()
        sampler.join()
    wall = time.monotonic() - started
    assert code == 0

    expected = int(np.ceil(SOAK_SECONDS * FPS))
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(out))
    audio_s = _audio_seconds(out)
    rss = np.array([mb for _, mb in samples])
    fifth = max(1, len(rss) // 5)
    early, late = rss[fifth : 2 * fifth].mean(), rss[-fifth:].mean()
    print(
        f"\nsoak: {SOAK_SECONDS:.0f} s of video, {frames} frames (expected {expected}) in {wall:.0f} s "
        f"({frames / wall:.1f} frames/s); audio track {audio_s:.2f} s vs video {frames / FPS:.2f} s; "
        f"RSS start {rss[0]:.0f} MB, 2nd fifth {early:.0f} MB, last fifth {late:.0f} MB, peak {rss.max():.0f} MB; "
        f"file {out.stat().st_size / 2**20:.1f} MB"
    )
    assert frames == expected
    assert abs(audio_s - frames / FPS) < 2.0 / FPS + 0.05  # within two frames (AAC priming included)
    assert late - early < FLAT_MB, f"memory grew from {early:.0f} MB to {late:.0f} MB"
