"""The live player's pieces: finished chunks grouped into short mp4 segments, and the pacing.

Gradio's streaming ``gr.Video`` plays a sequence of files as one HLS stream; each piece here is
an mp4 (H.264 + FLAC: exactly its frames' speech, ``video.encode_segment``) that Gradio re-muxes
into an MPEG-TS segment. The first piece is one chunk, so playback starts as soon as possible
(docs/app.md, "Time to first video"); later pieces are ``SEGMENT_S`` of video. ``Pacer`` keeps a
page's run at most ``LIVE_LEAD_S`` of video ahead of playback, so a slider moved while it plays
turns the camera soon.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

FIRST_SEGMENT_S = 0.16  # the live player starts after one chunk (4 frames; docs/performance.md)
SEGMENT_S = 0.5  # later pieces of the live stream: seconds of video each
LIVE_LEAD_S = 2.0  # the page's generation runs at most this far ahead of playback, so steering acts soon


class Pacer:
    """Keeps generation at most ``lead`` seconds of video ahead of the wall clock (from the first call)."""

    def __init__(self, lead: float):
        self.lead, self.started = lead, None

    def wait(self, video_seconds: float) -> None:
        now = time.perf_counter()
        self.started = self.started or now
        ahead = video_seconds - (now - self.started) - self.lead
        if ahead > 0:
            time.sleep(ahead)


class Segments:
    """Groups finished chunks into the live player's pieces (mp4 segments with their audio slice)."""

    def __init__(self, folder: Path, fps: float, audio: np.ndarray | None):
        self.folder, self.fps, self.audio = folder, float(fps), audio
        self.frames: list[np.ndarray] = []
        self.start = 0  # first frame of the piece being gathered
        self.count = 0

    def add(self, frames: np.ndarray) -> Path | None:
        """Gather a chunk; return a segment file once enough video for the next piece is there."""
        self.frames.append(np.asarray(frames))
        target = FIRST_SEGMENT_S if self.count == 0 else SEGMENT_S
        return self.flush() if sum(len(f) for f in self.frames) >= target * self.fps else None

    def flush(self) -> Path | None:
        from ..audio import frame_samples
        from ..video import encode_segment

        if not self.frames:
            return None
        frames = np.concatenate(self.frames)
        stop = self.start + len(frames)
        audio = None if self.audio is None else frame_samples(self.audio, self.start, stop, self.fps)
        path = encode_segment(self.folder / f"live_{self.count:05d}.mp4", frames, self.fps, audio)
        self.frames, self.start, self.count = [], stop, self.count + 1
        return path
