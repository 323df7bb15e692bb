"""The live player's pieces: finished chunks grouped into short segments of one stream, and the pacing.

Gradio's streaming ``gr.Video`` plays a sequence of segments as one HLS stream; each piece here is
the next stretch of one MPEG-TS (``live_stream.TransportStream``: H.264 + AAC, made in-process and
played as it is by ``live_stream.live_video``'s player). The first piece is one chunk, so playback starts as
soon as possible (docs/app.md, "Time to first video"); later pieces are ``SEGMENT_S`` of video.
``Pacer`` keeps a page's run at most ``LIVE_LEAD_S`` of video ahead of playback, so a slider moved
while it plays turns the camera soon.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .live_stream import AUDIO_LEAD_S, AUDIO_RATE, TransportStream, write_piece

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
    """Groups finished chunks into the live player's pieces: ``.ts`` files of one stream, with their speech.

    ``add(frames, speech)`` takes finished frames ``[F, H, W, 3]`` and the stream's speech known so
    far (16 kHz mono float: the whole clip for a file, what was heard for the microphone); it
    returns a piece's path once ``first_s`` (then ``every_s``) seconds of video are gathered, and
    with ``last=True`` whatever is left, the stream's end included.
    """

    def __init__(
        self, folder: Path, fps: float, first_s: float = FIRST_SEGMENT_S, every_s: float = SEGMENT_S, keep: int = 0
    ):
        """``keep``: delete a piece's file once ``keep`` newer ones exist (0: keep all; Gradio reads each
        one a little after it is handed out, so never the newest few)."""
        self.folder, self.fps = folder, float(fps)
        self.first_s, self.every_s, self.keep = first_s, every_s, keep
        self.written: list[Path] = []
        self.frames: list[np.ndarray] = []
        self.start = 0  # first frame of the piece being gathered
        self.count = 0
        self.stream: TransportStream | None = None

    def add(self, frames: np.ndarray | None, speech: np.ndarray | None, last: bool = False) -> Path | None:
        """Gather a chunk; return a piece file once enough video for the next piece is there (or ``last``)."""
        if frames is not None and len(frames):
            self.frames.append(np.asarray(frames))
        target = self.first_s if self.count == 0 else self.every_s
        if last or sum(len(f) for f in self.frames) >= target * self.fps:
            return self._flush(speech, last)
        return None

    def _flush(self, speech: np.ndarray | None, last: bool = False) -> Path | None:
        """The gathered frames as a piece (``last``: and the end of the stream); None if nothing is left."""
        if not self.frames and (not last or self.stream is None):
            return None
        stream = self.stream or self._open(self.frames[0], speech is not None)
        frames = np.concatenate(self.frames) if self.frames else None
        stop = self.start + (0 if frames is None else len(frames))
        if speech is not None:  # kept ahead of the frames, so every frame of the piece leaves with it
            until = len(speech) if last else min(len(speech), round((stop / self.fps + AUDIO_LEAD_S) * AUDIO_RATE))
            stream.feed(speech[stream.fed_samples : until])
        data, seconds = stream.piece(frames) if frames is not None else (b"", 0.0)
        if last:  # the encoders' and the muxer's last packets; a piece of no frames still gets a duration
            data, seconds = data + stream.close(), max(seconds, 1 / self.fps)
        path = write_piece(self.folder / f"live_{self.count:05d}", data, seconds)
        self.written.append(path)
        if self.keep and len(self.written) > self.keep:
            self.written.pop(0).unlink(missing_ok=True)
        self.frames, self.start, self.count = [], stop, self.count + 1
        return path

    def _open(self, frames: np.ndarray, audio: bool) -> TransportStream:
        self.stream = TransportStream(self.fps, frames.shape[2], frames.shape[1], audio=audio)
        return self.stream
