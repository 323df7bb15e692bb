"""The live microphone tab's handlers: speech arrives as it is recorded, the portrait follows.

``MicrophoneHandlers`` is a part of ``DemoApp`` (a mixin: it uses the app's pipeline, lock, work
folders and the steering registry ``_runs``). Two events carry one recording: each 0.25 s piece
the page's ``gr.Audio`` streams goes into the session's ``starcaster.live.LiveSession``
(``live_step``, the stream event), and one generator started with the recording (``live_play``)
hands the live player every chunk as it finishes, as the next piece of one stream
(``live_player.Segments``). Two events because Gradio streams a video only out of a generator:
what a stream event returns is a plain value. Latency is measured in docs/performance.md ("Live
microphone latency", ``scripts/live_latency.py``).
"""

from __future__ import annotations

import threading
import time

import gradio as gr
import numpy as np

from .guards import checked_seed, fail, reported
from .live_player import FIRST_SEGMENT_S, Segments

SESSION_WAIT_S = 15.0  # how long live_play waits for the recording's first piece of audio
KEPT_PIECES = 16  # a session's pieces on disk: the newest (Gradio reads each a little after the yield)
END_WAIT_S = 30.0  # how long live_stop waits for live_play to hand out the last frames


def _key(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "api"


class MicrophoneHandlers:
    """``live_step`` (a recorded piece in), ``live_play`` (the player's pieces out), ``live_stop`` (the end)."""

    @reported
    def live_step(
        self, recorded, portrait: str | None, azimuth: float, elevation: float, seed: float, request: gr.Request = None
    ) -> str:
        """A piece of microphone audio arrived: feed it (the first one starts the session)."""
        key = _key(request)
        session = self._live.get(key) or self._start_live(key, portrait, azimuth, elevation, seed)
        if recorded is not None:
            rate, samples = recorded
            session.push(samples, int(rate))
        return self._live_status(session)

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
        self._live_ended[key] = threading.Event()
        return session

    @reported
    def live_play(self, request: gr.Request = None):
        """Yield the live player's pieces, every chunk as it finishes, until the session is over.

        Each piece is the chunks finished since the last (one or more: a piece costs ≈ 2 ms, where
        each used to cost a re-mux by Gradio); the last one carries the stream's tail."""
        key = _key(request)
        session = self._wait_for_session(key)
        if session is None:  # the recording never started a session (no portrait: live_step said so)
            return
        every = FIRST_SEGMENT_S
        segments = Segments(self._run_dir(None), session.fps, first_s=every, every_s=every, keep=KEPT_PIECES)
        self._live_segments[key] = segments
        try:
            over = False
            while not over:
                done, over = session.collect(wait=1.0)
                frames = np.concatenate([c.chunk.frames for c in done]) if done else None
                if piece := segments.add(frames, session.audio, last=over):
                    yield str(piece)
        finally:  # the end, a Stop, or a closed page
            self._release_live(key, session, segments)
            self._retire(segments.folder)  # its last piece is still being handed out

    def _release_live(self, key: str, session, segments: Segments | None) -> None:
        """Close ``session`` and drop what the registries hold for it (its pieces ``segments``, its
        steering entry), and wake a ``live_stop`` waiting for the end. The pieces' folder is the caller's."""
        session.close()
        for registry, value in ((self._live, session), (self._runs, session.run), (self._live_segments, segments)):
            if registry.get(key) is value:
                registry.pop(key)
        if (ended := self._live_ended.pop(key, None)) is not None:
            ended.set()

    def _wait_for_session(self, key: str):
        """The session the recording's first ``live_step`` starts (None if it has not within ``SESSION_WAIT_S``)."""
        deadline = time.monotonic() + SESSION_WAIT_S
        while (session := self._live.get(key)) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return session

    @staticmethod
    def _live_over(session) -> str:
        latency = np.mean(session.latencies) if session.latencies else float("nan")
        return (
            f"Live session over: {session.received / 16_000:.1f} s of speech, mean latency {latency:.2f} s per frame."
        )

    @staticmethod
    def _live_status(session) -> str:
        latency = np.mean(session.latencies[-25:]) if session.latencies else float("nan")
        return f"Live: {session.received / 16_000:.1f} s heard · latency {latency:.2f} s"

    @reported
    def live_stop(self, request: gr.Request = None) -> str:
        """The microphone stopped: the last frames are drawn from what was heard; once ``live_play`` has
        handed them out (and ended the session), the summary."""
        key = _key(request)
        session, ended = self._live.pop(key, None), self._live_ended.get(key)
        if session is None:
            return "Live: not running."
        session.end()
        if ended is None or not ended.wait(END_WAIT_S):  # no player took the pieces
            session.close()
        return self._live_over(session)
