"""The live microphone tab's handlers: speech arrives as it is recorded, the portrait follows.

``MicrophoneHandlers`` is a part of ``DemoApp`` (a mixin: it uses the app's pipeline, lock, work
folders and the steering registry ``_runs``). Each 0.25 s piece the page's ``gr.Audio`` streams
goes into the session's ``starcaster.live.LiveSession``; the chunks finished since come back as
one playable segment with their speech (``video.encode_segment``). Latency is measured in
docs/performance.md ("Live microphone latency", ``scripts/live_latency.py``).
"""

from __future__ import annotations

import gradio as gr
import numpy as np

from .guards import checked_seed, fail, reported
from .live_player import SEGMENT_S


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
        self._live_dirs[key] = self._run_dir(None)
        return session

    def _live_segment(self, key: str, session, done: list, final: bool = False) -> tuple:
        """The chunks finished since the last piece, once they make ``SEGMENT_S`` of video (or at the end).

        Every piece costs the server a re-mux by Gradio (≈ 0.3 CPU-s, docs/app.md): a piece per
        microphone call (4 a second) fell behind on two cores, so pieces gather half a second."""
        from ..video import encode_segment

        latency = np.mean(session.latencies[-25:]) if session.latencies else float("nan")
        status = f"Live: {session.received / 16_000:.1f} s heard · latency {latency:.2f} s"
        done = self._live_pending.setdefault(key, []) + done
        if not done or (not final and sum(len(c.chunk.frames) for c in done) < SEGMENT_S * session.fps):
            self._live_pending[key] = done
            return gr.skip(), status
        self._live_pending[key] = []
        frames = np.concatenate([c.chunk.frames for c in done])
        audio = np.concatenate([c.audio for c in done])
        folder = self._live_dirs[key]
        for old in folder.glob("live_*.mp4"):  # Gradio read it when it was returned
            old.unlink(missing_ok=True)
        path = encode_segment(folder / f"live_{done[0].chunk.start:06d}.mp4", frames, session.fps, audio)
        return str(path), status

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
        self._live_pending.pop(key, None)
        self._retire(self._live_dirs.pop(key))  # its last segment is still being handed out
        return segment, f"Live session over: {heard:.1f} s of speech, mean latency {latency:.2f} s per frame."
