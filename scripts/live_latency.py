"""Latency of the live microphone mode, measured with a scripted streaming client.

    python scripts/live_latency.py --threads 2 --seconds 20 --out docs/benchmarks/live_latency.json

The client plays speech into the app's live handler (``DemoApp.live_step``, the function the
page's microphone stream calls) in pieces of ``--piece`` seconds at real-time pace, exactly as
the browser would send them, while ``DemoApp.live_play`` (the generator the page starts with the
recording) yields the player's pieces, and records for every frame the time from the moment its
audio had been sent to the moment the piece holding it is ready for the page: yielded
and taken by the app's live player (``live_stream.live_video``'s ``stream_output``, on a worker thread of
its own while the microphone keeps sending; ``--no-gradio`` stops the clock at the
yield). The figures exclude only the network hop and the browser's player buffer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # app.py sits at the repository root

from starcaster import BUNDLED_CHECKPOINT  # noqa: E402  (after the path: the repository's package)


class _Page:
    """Where the handler's pieces go: straight to ``returned`` (``--no-gradio``), or first through the live
    player's ``stream_output`` on a worker thread of its own, as in the server, while the microphone sends."""

    def __init__(self, through_gradio: bool):
        from starcaster.demo.live_stream import live_video

        self.returned: list[tuple[int, float]] = []  # (frames returned so far, time)
        self.player = live_video() if through_gradio else None
        self.frames = 0
        self._queue: queue.Queue = queue.Queue()
        self._held = tempfile.mkdtemp()
        self._worker = threading.Thread(target=self._remux, daemon=True)
        if self.player is not None:
            self._worker.start()

    def deliver(self, segment) -> None:
        import av

        if not isinstance(segment, str):
            return
        with av.open(segment) as piece:
            self.frames += sum(1 for p in piece.demux(video=0) if p.size)
        if self.player is None:
            self.returned.append((self.frames, time.perf_counter()))
            return
        copy = Path(self._held) / Path(segment).name  # Gradio takes the file at once: the handler
        shutil.copy(segment, copy)  # deletes it when it writes the next piece
        self._queue.put((str(copy), self.frames))

    def _remux(self) -> None:
        first = True
        while (item := self._queue.get()) is not None:
            asyncio.run(self.player.stream_output(item[0], "live", first))
            self.returned.append((item[1], time.perf_counter()))
            first = False

    def close(self) -> None:
        self._queue.put(None)
        if self.player is not None:
            self._worker.join()


def _speak(app, wave: np.ndarray, piece: int, portrait: str, page: _Page) -> tuple[list, float]:
    """Send ``wave`` in ``piece``-sample int16 pieces at real-time pace while ``live_play`` (the event the
    page starts with the recording) hands its pieces to ``page``; ``(sent_at, time speech ended)``."""
    player = threading.Thread(target=lambda: [page.deliver(p) for p in app.live_play()], daemon=True)
    player.start()
    sent_at: list[tuple[int, float]] = []
    started = time.perf_counter()
    for pos in range(0, len(wave), piece):
        while time.perf_counter() - started < (pos + piece) / 16_000:  # real-time pace
            time.sleep(0.001)
        samples = (wave[pos : pos + piece] * 32767).astype(np.int16)
        sent_at.append((pos + len(samples), time.perf_counter()))
        app.live_step((16_000, samples), portrait, 0.0, 0.0, 0)
    speech_over = time.perf_counter()
    app.live_stop()
    player.join()
    page.close()
    return sent_at, speech_over


def _report(returned: list, sent_at: list, speech_over: float) -> dict:
    """Per-frame latency: from the moment its audio had been sent to the moment its piece was ready."""
    latencies, done = [], 0
    for total, at in returned:
        for frame in range(done, total):
            needed = (frame + 1) * 16_000 / 25
            arrived = next(t for count, t in sent_at if count >= needed)
            latencies.append(at - arrived)
        done = total
    lat = np.array(latencies)
    return {
        "frames_during_speech": max([count for count, at in returned if at <= speech_over], default=0),
        "latency_mean_s": round(float(lat.mean()), 3),
        "latency_p50_s": round(float(np.median(lat)), 3),
        "latency_p95_s": round(float(np.percentile(lat, 95)), 3),
        "latency_max_s": round(float(lat.max()), 3),
        "latency_first_second_mean_s": round(float(lat[:25].mean()), 3),  # before any backlog
        "latency_last_5s_mean_s": round(float(lat[-125:].mean()), 3),
        "wall_after_speech_s": round(time.perf_counter() - speech_over, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(ROOT / BUNDLED_CHECKPOINT))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--piece", type=float, default=None, help="seconds per microphone piece (default: the app's)")
    parser.add_argument("--out", default=None)
    parser.add_argument(
        "--no-gradio",
        action="store_true",
        help="time up to live_play's yield, without the live player's stream_output",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from starcaster import STARCasterPipeline
    from starcaster.audio import load_audio
    from starcaster.demo.layout import LIVE_MIC_EVERY_S, create_demo

    pipe = STARCasterPipeline.from_pretrained(args.checkpoint)
    pipe.set_progress_bar_config(disable=True)
    app = create_demo(pipe).starcaster_app
    clip = np.concatenate([load_audio(ROOT / "examples" / "audio" / "weather.wav"), np.zeros(8000, np.float32)])
    wave = np.tile(clip, int(np.ceil(args.seconds * 16_000 / len(clip))))[: int(args.seconds * 16_000)]
    piece = int(16_000 * (args.piece or LIVE_MIC_EVERY_S))
    page = _Page(through_gradio=not args.no_gradio)
    sent_at, speech_over = _speak(app, wave, piece, str(ROOT / "examples" / "portraits" / "portrait_0.png"), page)
    report = {
        "threads": args.threads,
        "through_gradio": page.player is not None,
        "piece_s": piece / 16_000,
        "speech_s": len(wave) / 16_000,
        "frames_total": int(np.ceil(len(wave) / 640)),
        **_report(page.returned, sent_at, speech_over),
        "load_average": list(os.getloadavg()),
    }
    print(json.dumps(report, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
