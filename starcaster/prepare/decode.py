"""Decoding any video container through the ffmpeg binary shipped in ``imageio-ffmpeg``.

No system ffmpeg is assumed and no shell is used: every call is an argument list. Frames are
streamed from a raw-video pipe one at a time (a long 1080p video never sits in memory whole),
already resampled to the target fps and scaled by ffmpeg; audio comes out as 16 kHz mono float32.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE, _ffmpeg_exe

FFMPEG_TIMEOUT_S = 3600


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int
    height: int
    fps: float
    duration_s: float
    has_audio: bool


class DecodeError(ValueError):
    """A file ffmpeg cannot read as a video with sound (the reason is in the message)."""


def probe(path: Path) -> VideoInfo:
    """Size, frame rate, duration and whether there is an audio track (ffmpeg's header parse)."""
    import imageio_ffmpeg

    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        reader.close()
    except (OSError, RuntimeError, StopIteration) as exc:
        raise DecodeError(f"{path.name}: not a readable video ({str(exc).strip().splitlines()[-1:]})") from exc
    width, height = meta["size"]
    return VideoInfo(
        Path(path), int(width), int(height), float(meta["fps"]), float(meta["duration"]), bool(meta.get("audio_codec"))
    )


def analysis_size(info: VideoInfo, max_width: int) -> tuple[int, int]:
    """The (even) frame size face detection runs at: the source, shrunk to at most ``max_width``."""
    scale = min(1.0, max_width / info.width)
    return 2 * round(info.width * scale / 2), 2 * round(info.height * scale / 2)


def iter_frames(
    path: Path,
    fps: float,
    size: tuple[int, int],
    start_s: float | None = None,
    duration_s: float | None = None,
) -> Iterator[np.ndarray]:
    """RGB frames ``[H, W, 3]`` uint8 of ``path`` at ``fps`` and ``size`` (w, h), from ``start_s`` on."""
    args = [_ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error"]
    if start_s is not None:
        args += ["-ss", f"{start_s:.4f}"]
    args += ["-i", str(path)]
    if duration_s is not None:
        args += ["-t", f"{duration_s:.4f}"]
    width, height = size
    args += ["-an", "-vf", f"fps={fps},scale={width}:{height}:flags=area", "-f", "rawvideo", "-pix_fmt", "rgb24"]
    args += ["pipe:1"]
    frame_bytes = width * height * 3
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        while True:
            buffer = process.stdout.read(frame_bytes)
            if len(buffer) < frame_bytes:
                break
            yield np.frombuffer(buffer, np.uint8).reshape(height, width, 3)
    finally:
        process.stdout.close()
        process.kill()
        process.wait()


def read_audio(path: Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The whole soundtrack as float32 mono at ``sample_rate`` ``[S]``; ``DecodeError`` without one."""
    args = [_ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", "-i", str(path), "-vn"]
    args += ["-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "pipe:1"]
    result = subprocess.run(args, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False)
    if result.returncode != 0 or not result.stdout:
        reason = result.stderr.decode(errors="replace").strip().splitlines()
        raise DecodeError(f"{path.name}: no readable audio track ({reason[-1] if reason else 'empty'})")
    return np.frombuffer(result.stdout, "<f4").astype(np.float32)
