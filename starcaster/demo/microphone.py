"""The live microphone tab's handlers: speech arrives as it is recorded, the portrait follows.

``MicrophoneHandlers`` is a part of ``DemoApp`` (a mixin: it uses the app's pipeline, lock, work
folders and the steering registry ``_runs``). Each 0.25 s piece the page's ``gr.Audio`` streams
goes into the session's ``starcaster.live.LiveSession``; the chunks finished since go into the
session's live stream (``live_player.Segments``) and come back as its next piece with their speech. Latency is measured in
docs/performance.md ("Live microphone latency", ``scripts/live_latency.py``).
"""

from __future__ import annotations

import gradio as gr
import numpy as np

from .guards import checked_seed, fail, reported
from .live_player import SEGMENT_S, Segments


class MicrophoneHandlers:
    """``live_step`` (a recorded piece in, the segment out) and ``live_stop`` (the last frames, the end)."""

    @reported
    def live_step(
        self, recorded, portrait: str | None, azimuth: float, elevation: float, seed: float, request: gr.Request = None
    ):
        """A piece of microphone audio arrived: feed it, hand the player the chunks finished since."""
        key = getattr(request, "session_hash", None) or "api"
        session = self._live.get(key)
        if session is None:
            session = self._start_live(key, portrait, azimuth, elevation, seed)
        if recorded is not None:
            rate, samples = recorded
            session.push(samples, int(rate))
        done, _ = session.collect()
        return self._live_segment(key, session, done)

    def _start_live(self, key: str, portrait, azimuth, elevation, seed):
        import torch

        from ..live import LiveSession

        if not portrait:
            raise fail("Upload a portrait (or pick an example) for the live mode first, then speak.")
        with self._lock:
            session = LiveSession(
                self.pipe,
                image=portrait,
                azimuth=float(azimuth),
                elevation=float(elevation),
                generator=torch.Generator().manual_seed(checked_seed(seed)),
            )
        self._live[key], self._runs[key] = session, session.run
        self._live_segments[key] = Segments(self._run_dir(None), session.fps, first_s=SEGMENT_S)
        return session

    def _live_segment(self, key: str, session, done: list, final: bool = False) -> tuple:
        """The chunks finished since the last piece, once they make ``SEGMENT_S`` of video (or at the end)."""
        latency = np.mean(session.latencies[-25:]) if session.latencies else float("nan")
        status = f"Live: {session.received / 16_000:.1f} s heard · latency {latency:.2f} s"
        segments = self._live_segments[key]
        for old in segments.folder.glob("live_*.ts"):  # Gradio read it when it was returned
            old.unlink(missing_ok=True)
        frames = np.concatenate([c.chunk.frames for c in done]) if done else None
        piece = segments.add(frames, session.audio, last=final)
        return (str(piece) if piece else gr.skip()), status

    @reported
    def live_stop(self, request: gr.Request = None):
        """The microphone stopped: the last frames are drawn from what was heard, then the session ends."""
        key = getattr(request, "session_hash", None) or "api"
        session = self._live.pop(key, None)
        if session is None:
            return gr.skip(), "Live: not running."
        session.end()
        done, over = [], False
        while not over:
            more, over = session.collect(wait=10.0)
            done += more
        session.close()
        self._runs.pop(key, None)
        heard = session.received / 16_000
        latency = np.mean(session.latencies) if session.latencies else float("nan")
        segment, _ = self._live_segment(key, session, done, final=True)
        self._retire(self._live_segments.pop(key).folder)  # its last segment is still being handed out
        return segment, f"Live session over: {heard:.1f} s of speech, mean latency {latency:.2f} s per frame."
