"""Writing mp4 files (H.264 + AAC, yuv420p, faststart: plays in browsers) as frames arrive.

``VideoWriter`` streams frames straight into ffmpeg (moviepy's writer, with the ffmpeg
binary from imageio-ffmpeg, called with argument lists — never a shell), so a long video
never sits in memory. It writes to a hidden temporary name and renames on success: a
crash or a full disk never leaves a half-written file that looks complete.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import soundfile as sf
from moviepy.video.io.ffmpeg_writer import FFMPEG_VideoWriter

from .errors import STARCasterError


class VideoWriteError(STARCasterError):
    """The video could not be written (disk full, unwritable folder, ffmpeg failure)."""


class VideoWriter:
    """Context manager: ``with VideoWriter(path, fps, audio) as w: w.write(frames)``."""

    def __init__(
        self,
        path: str | Path,
        fps: float,
        audio: np.ndarray | None = None,
        sample_rate: int = 16_000,
        audio_file: str | Path | None = None,
    ):
        """``audio``: samples to mux; or ``audio_file``: a recording ffmpeg muxes itself (a long one
        the pipeline read in blocks, never whole in memory)."""
        self.path = Path(path)
        self.fps = float(fps)
        self.audio, self.sample_rate, self.audio_file = audio, sample_rate, audio_file
        self._writer: FFMPEG_VideoWriter | None = None
        self._temp_dir: tempfile.TemporaryDirectory | None = None
        self._partial = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix or '.mp4'}")
        self.frames_written = 0

    def __enter__(self) -> VideoWriter:
        if not self.path.parent.is_dir():
            raise VideoWriteError(f"Output folder does not exist: {self.path.parent}")
        self._temp_dir = tempfile.TemporaryDirectory(prefix="starcaster-audio-")
        return self

    def write(self, frames: np.ndarray) -> None:
        """Append uint8 frames ``[F, H, W, 3]`` (or one ``[H, W, 3]`` frame)."""
        frames = np.asarray(frames, dtype=np.uint8)
        for frame in frames if frames.ndim == 4 else frames[None]:
            if self._writer is None:
                self._open(frame.shape[1], frame.shape[0])
            try:
                self._writer.write_frame(np.ascontiguousarray(frame))
            except OSError as exc:
                raise VideoWriteError(f"Writing {self.path.name} failed: {_reason(exc)}") from exc
            self.frames_written += 1

    def _open(self, width: int, height: int) -> None:
        audio_file = None if self.audio_file is None else str(self.audio_file)
        if self.audio is not None:
            audio_file = os.path.join(self._temp_dir.name, "audio.wav")
            sf.write(audio_file, self.audio, self.sample_rate, subtype="PCM_16")
        self._writer = FFMPEG_VideoWriter(
            str(self._partial),
            (width, height),
            self.fps,
            codec="libx264",
            audiofile=audio_file,
            audio_codec="aac",
            preset="veryfast",
            ffmpeg_params=["-crf", "18", "-movflags", "+faststart"],
            logfile=None,
        )

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self._writer is not None:
                self._close_writer(failed=exc_type is not None)
            if exc_type is None:
                if self.frames_written == 0:
                    raise VideoWriteError("No frames were generated, so no video was written.")
                os.replace(self._partial, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                self._partial.unlink()
            self._temp_dir.cleanup()

    def _close_writer(self, failed: bool) -> None:
        """Close ffmpeg's input and wait for it; its exit status decides whether the file is complete.

        moviepy's ``close`` ignores the exit status, and ffmpeg fails at the very end when the
        disk fills up while it writes the index (``+faststart`` rewrites the whole file then).
        """
        proc, stderr = self._writer.proc, b""
        try:
            if proc is not None and failed:  # nothing to finish: a long audio input would keep ffmpeg encoding
                proc.kill()
            if proc is not None:
                _, stderr = proc.communicate(timeout=600)  # closes ffmpeg's input, reads its errors
            self._writer.close()
        except (OSError, ValueError) as exc:
            if not failed:
                raise VideoWriteError(f"ffmpeg could not finish {self.path.name}: {exc}") from exc
        if not failed and proc is not None and proc.returncode != 0:
            text = (stderr or b"").decode(errors="replace").strip()
            reason = _reason(text) if text else f"ffmpeg exit status {proc.returncode}; is the disk full?"
            raise VideoWriteError(f"ffmpeg could not finish {self.path.name}: {reason}")


def _reason(error: object) -> str:
    """One line on why ffmpeg stopped (moviepy's own messages run to pages of codec advice)."""
    text = str(error)
    if "No space left on device" in text or getattr(error, "errno", None) == errno.ENOSPC:
        return "no space left on device (the disk is full). Free some space or choose another output folder."
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return f"{first} (is the disk full, or the folder not writable?)"


def _disk_hint(exc: Exception, path: Path) -> object:
    """libsndfile says "System error" when the disk is full: check the free space to say which."""
    import shutil

    try:
        full = shutil.disk_usage(path.parent).free < 1 << 20
    except OSError:
        full = False
    return OSError(errno.ENOSPC, "No space left on device") if full else exc


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float,
    audio: np.ndarray | None = None,
    sample_rate: int = 16_000,
) -> Path:
    """Write an iterable of frame batches (e.g. the pipeline's chunks) to ``path``."""
    with VideoWriter(path, fps, audio, sample_rate) as writer:
        for batch in frames:
            writer.write(batch)
    return Path(path)
