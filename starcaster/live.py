"""Live microphone mode: speech arrives in pieces, the portrait lip-syncs it chunk by chunk.

``LiveSession`` starts a run whose audio is a live source (``STARCasterPipeline.live_audio``)
and iterates its chunks on a background thread: each chunk is generated as soon as its
audio — plus the feature window's look-ahead of ``context`` frames — has arrived. The front
end ``push``es what the microphone recorded, ``collect``s the finished chunks (with their
audio slice, to play in sync) and ``end``s the session when the speaker stops.

Latency (audio in → matching frame out) is recorded per frame: for frame t, the time from
the push that completed its audio span to the moment its chunk was collected
(``latencies``); ``scripts/live_latency.py`` drives a session at real-time pace to measure it.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from .audio import SAMPLE_RATE, _to_float_mono, frame_samples
from .errors import InputError
from .pipeline_output import ChunkOutput

MAX_SESSION_SECONDS = 600.0  # a forgotten open microphone ends here


@dataclass
class LiveChunk:
    """A finished chunk and the 16 kHz speech it lip-syncs (``[N]`` float32)."""

    chunk: ChunkOutput
    audio: np.ndarray
    ready_at: float  # time.perf_counter() when it was finished


class LiveSession:
    """``LiveSession(pipe, image=..., azimuth=...)``: ``push`` audio, ``collect`` chunks, ``end``."""

    def __init__(self, pipe, fps: float = 25, **settings):
        self.fps = float(fps)
        self.features = pipe.live_audio(self.fps)
        self.run = pipe.start(audio=self.features, fps=self.fps, **settings)
        self._wave = np.zeros(0, np.float32)  # 16 kHz speech so far (for segments and the final video)
        self.received = 0  # 16 kHz samples pushed so far
        self._pushes: list[tuple[int, float]] = []  # (samples received after the push, time)
        self._done: queue.Queue = queue.Queue()
        self.latencies: list[float] = []  # seconds, one per frame collected
        self.error: BaseException | None = None
        self._started = time.perf_counter()
        self._thread = threading.Thread(target=self._generate, daemon=True, name="starcaster-live")
        self._thread.start()

    # -- audio in -------------------------------------------------------------------------
    def push(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
        """Add recorded speech (any rate; int16 or float, mono or channels-last)."""
        if time.perf_counter() - self._started > MAX_SESSION_SECONDS:
            raise InputError(f"A live session lasts at most {MAX_SESSION_SECONDS:g} s; start a new one.")
        self._keep(self.features.push(_to_float_mono(np.asarray(samples))[0], int(sample_rate)))
        self._pushes.append((self.received, time.perf_counter()))

    def end(self) -> None:
        """The speaker stopped: the last frames are generated from what arrived."""
        self._keep(self.features.end())

    def _keep(self, wave: np.ndarray) -> None:
        """The 16 kHz speech the features were computed from, kept for segments and the final video."""
        self._wave = np.concatenate([self._wave, wave])
        self.received += len(wave)

    # -- chunks out -----------------------------------------------------------------------
    def _generate(self) -> None:
        try:
            for chunk in self.run.chunks:
                self._done.put(chunk)
        except BaseException as exc:  # noqa: BLE001 — reported by collect()
            self.error = exc
        finally:
            self._done.put(None)

    def collect(self, wait: float = 0.0) -> tuple[list[LiveChunk], bool]:
        """``(chunks finished since the last call, whether the session is over)``; waits up to
        ``wait`` seconds for the first one."""
        chunks, over = [], False
        try:
            item = self._done.get(timeout=wait) if wait > 0 else self._done.get_nowait()
            while True:
                if item is None:
                    over = True
                    break
                chunks.append(self._finished(item))
                item = self._done.get_nowait()
        except queue.Empty:
            pass
        if self.error is not None:
            raise self.error
        return chunks, over

    def _finished(self, chunk: ChunkOutput) -> LiveChunk:
        now = time.perf_counter()
        for t in range(chunk.start, chunk.start + len(chunk.frames)):
            self.latencies.append(now - self._arrival(t))
        return LiveChunk(chunk, self.audio_between(chunk.start, chunk.start + len(chunk.frames)), now)

    def _arrival(self, frame: int) -> float:
        """When the audio of ``frame``'s whole span had arrived (the earliest it could be drawn)."""
        needed = min(self.received, int(np.ceil((frame + 1) * SAMPLE_RATE / self.fps)))
        return next((at for count, at in self._pushes if count >= needed), self._pushes[-1][1])

    def audio_between(self, start: int, stop: int) -> np.ndarray:
        """The 16 kHz speech of frames ``[start, stop)``, zero-padded past what arrived."""
        return frame_samples(self._wave, start, stop, self.fps)

    @property
    def audio(self) -> np.ndarray:
        return self._wave

    def close(self) -> None:
        """Stop generating (the Stop button, a closed page); idempotent."""
        self.run.cancel()
        if not self.features.stream.ended:
            self.features.end()
        self._thread.join(timeout=30)
