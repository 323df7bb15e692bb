"""What the live player costs the server: CPU seconds per video second of streaming, by piece length.

Two ways, in the same run, on the same 64² frames and speech cut into pieces:
- ``live_stream`` (the app): ``live_player.Segments`` writes each piece as the next stretch of one
  in-process MPEG-TS, and ``live_stream.live_video``'s ``stream_output`` hands it to Gradio as it is;
- ``gradio_stock`` (before): each piece an mp4 of its own (``video.VideoWriter``: H.264 + AAC),
  re-muxed by Gradio's own ``gr.Video(streaming=True).stream_output`` (ffprobe, audio decode, AAC,
  MPEG-TS mux).
The CPU of this process and of every ffmpeg/ffprobe child is counted (``getrusage``), split into
making the piece and Gradio's handling of it. Generation is not included (docs/app.md, "What the
live player costs the server").

    python scripts/stream_cost.py --seconds 6 --pieces 0.5 1.0
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _cpu() -> float:
    """CPU seconds of this process and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(way: str, piece_s: float, seconds: float, folder: Path, fps: float = 25.0) -> dict:
    import gradio as gr

    from starcaster.audio import frame_samples, load_audio
    from starcaster.demo.live_player import Segments
    from starcaster.demo.live_stream import live_video
    from starcaster.video import VideoWriter

    speech = load_audio(ROOT / "examples" / "audio" / "weather.wav")
    frames_per_piece, rng = int(np.ceil(piece_s * fps)), np.random.default_rng(0)
    pieces = int(round(seconds / piece_s))
    wave = np.tile(speech, int(np.ceil(seconds * 16_000 / len(speech))))[
        : round(pieces * frames_per_piece / fps * 16_000)
    ]
    player = live_video() if way == "live_stream" else gr.Video(streaming=True)
    segments = Segments(folder, fps, first_s=piece_s, every_s=piece_s)
    making, started, wall = 0.0, _cpu(), time.perf_counter()
    for index in range(pieces):
        frames = rng.integers(0, 255, (frames_per_piece, 64, 64, 3), dtype=np.uint8)
        begin = _cpu()
        if way == "live_stream":
            path = segments.add(frames, wave, last=index == pieces - 1)
        else:
            start, stop = index * frames_per_piece, (index + 1) * frames_per_piece
            path = folder / f"piece_{index}.mp4"
            with VideoWriter(path, fps, frame_samples(wave, start, stop, fps)) as writer:
                writer.write(frames)
        making += _cpu() - begin
        asyncio.run(player.stream_output(str(path), f"cost-{way}-{piece_s}", index == 0))
    player.end_stream_output(f"cost-{way}-{piece_s}")  # Gradio's AAC encoder process ends
    total, video_s = _cpu() - started, pieces * frames_per_piece / fps
    return {
        "way": way,
        "piece_s": piece_s,
        "pieces": pieces,
        "cpu_s_per_video_s": round(total / video_s, 3),
        "making_cpu_s_per_video_s": round(making / video_s, 3),
        "gradio_cpu_s_per_video_s": round((total - making) / video_s, 3),
        "wall_s": round(time.perf_counter() - wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--pieces", type=float, nargs="+", default=[0.5, 1.0])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for piece_s in args.pieces:
            for way in ("live_stream", "gradio_stock"):
                print(json.dumps(measure(way, piece_s, args.seconds, Path(folder))), flush=True)


if __name__ == "__main__":
    main()
