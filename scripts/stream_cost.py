"""What the live player costs the server: CPU seconds per video second of streaming, by piece length.

For each piece length, 64² frames are cut into pieces as the app does (``video.encode_segment``:
H.264 + FLAC with exactly the piece's speech), and each piece goes through Gradio's own
``gr.Video(streaming=True).stream_output`` (ffprobe, audio decode, AAC, MPEG-TS mux). The CPU of
this process and of every ffmpeg/ffprobe child is counted (``getrusage``), split into ours and
Gradio's. Generation is not included (docs/app.md, "What the live player costs the server").

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


def measure(piece_s: float, seconds: float, folder: Path, fps: float = 25.0) -> dict:
    import gradio as gr

    from starcaster.audio import frame_samples, load_audio
    from starcaster.video import encode_segment

    speech = load_audio(ROOT / "examples" / "audio" / "weather.wav")
    wave = np.tile(speech, int(np.ceil(seconds * 16_000 / len(speech))))
    frames_per_piece, rng = int(round(piece_s * fps)), np.random.default_rng(0)
    player = gr.Video(streaming=True)
    ours, started, wall = 0.0, _cpu(), time.perf_counter()
    pieces = int(round(seconds / piece_s))
    for index in range(pieces):
        frames = rng.integers(0, 255, (frames_per_piece, 64, 64, 3), dtype=np.uint8)
        begin = _cpu()
        start, stop = index * frames_per_piece, (index + 1) * frames_per_piece
        path = encode_segment(folder / f"piece_{index}.mp4", frames, fps, frame_samples(wave, start, stop, fps))
        ours += _cpu() - begin
        asyncio.run(player.stream_output(str(path), f"cost-{piece_s}", index == 0))
    total, video_s = _cpu() - started, pieces * frames_per_piece / fps
    return {
        "piece_s": piece_s,
        "pieces": pieces,
        "cpu_s_per_video_s": round(total / video_s, 3),
        "ours_cpu_s_per_video_s": round(ours / video_s, 3),
        "gradio_cpu_s_per_video_s": round((total - ours) / video_s, 3),
        "wall_s": round(time.perf_counter() - wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--pieces", type=float, nargs="+", default=[0.5, 1.0])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for piece_s in args.pieces:
            print(json.dumps(measure(piece_s, args.seconds, Path(folder))), flush=True)


if __name__ == "__main__":
    main()
