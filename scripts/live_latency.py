"""Latency of the live microphone mode, measured with a scripted streaming client.

    python scripts/live_latency.py --threads 2 --seconds 20 --out docs/benchmarks/live_latency.json

The client plays speech into the app's live handler (``DemoApp.live_step``, the function the
page's microphone stream calls) in pieces of ``--piece`` seconds at real-time pace, exactly as
the browser would send them, and records for every frame the time from the moment its audio
had been sent to the moment the handler returned it inside a playable segment. The figures
exclude only the network hop and the browser's player buffer.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # app.py sits at the repository root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "starcaster-synth"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--piece", type=float, default=None, help="seconds per microphone piece (default: the app's)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from starcaster import STARCasterPipeline
    from starcaster.audio import load_audio
    from starcaster.demo.layout import LIVE_MIC_EVERY_S, create_demo

    pipe = STARCasterPipeline.from_pretrained(args.checkpoint)
    pipe.set_progress_bar_config(disable=True)
    demo = create_demo(pipe)
    app = demo.starcaster_app
    clip = np.concatenate([load_audio(ROOT / "examples" / "audio" / "weather.wav"), np.zeros(8000, np.float32)])
    wave = np.tile(clip, int(np.ceil(args.seconds * 16_000 / len(clip))))[: int(args.seconds * 16_000)]
    piece = int(16_000 * (args.piece or LIVE_MIC_EVERY_S))
    portrait = str(ROOT / "examples" / "portraits" / "portrait_0.png")

    sent_at: list[tuple[int, float]] = []
    returned: list[tuple[int, float]] = []  # (frames returned so far, time)
    frames_out, started = 0, time.perf_counter()
    for pos in range(0, len(wave), piece):
        while time.perf_counter() - started < (pos + piece) / 16_000:  # real-time pace
            time.sleep(0.001)
        samples = (wave[pos : pos + piece] * 32767).astype(np.int16)
        sent_at.append((pos + len(samples), time.perf_counter()))
        segment, _ = app.live_step((16_000, samples), portrait, 0.0, 0.0, 0)
        if isinstance(segment, str):
            import imageio_ffmpeg

            frames_out += imageio_ffmpeg.count_frames_and_secs(segment)[0]
            returned.append((frames_out, time.perf_counter()))
    speech_over = time.perf_counter()
    app.live_stop()
    latencies = []
    done = 0
    for total, at in returned:
        for frame in range(done, total):
            needed = (frame + 1) * 16_000 / 25
            arrived = next(t for count, t in sent_at if count >= needed)
            latencies.append(at - arrived)
        done = total
    lat = np.array(latencies)
    report = {
        "threads": args.threads,
        "piece_s": piece / 16_000,
        "speech_s": len(wave) / 16_000,
        "frames_during_speech": done,
        "frames_total": int(np.ceil(len(wave) / 640)),
        "latency_mean_s": round(float(lat.mean()), 3),
        "latency_p50_s": round(float(np.median(lat)), 3),
        "latency_p95_s": round(float(np.percentile(lat, 95)), 3),
        "latency_max_s": round(float(lat.max()), 3),
        "latency_first_second_mean_s": round(float(lat[:25].mean()), 3),  # before any backlog
        "latency_last_5s_mean_s": round(float(lat[-125:].mean()), 3),
        "wall_after_speech_s": round(time.perf_counter() - speech_over, 2),
        "load_average": list(__import__("os").getloadavg()),
    }
    print(json.dumps(report, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
