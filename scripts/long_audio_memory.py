"""Peak memory of ``python -m starcaster generate`` on a short clip and on a very long recording.

    python scripts/long_audio_memory.py --short examples/audio/weather.wav --long long3h.mp3 \
        --long-minutes 8 --out docs/benchmarks/long_audio_memory.json

Runs the CLI as a subprocess (one thread), samples the resident memory of it and of its
children (ffmpeg) every 0.25 s, lets the short clip finish and stops the long one with SIGTERM
after ``--long-minutes`` (a 3-hour clip takes hours here), then checks no file is left behind.
Memory that grows with the audio would show at the start (decoding/featurising the whole
clip) and keep growing; the RSS trace is kept so both can be seen.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


def measure(audio: str, seconds_limit: float | None, image: str) -> dict:
    out_dir = Path(tempfile.mkdtemp(prefix="starcaster-mem-"))
    args = [sys.executable, "-m", "starcaster", "generate", "--audio", audio, "--image", image]
    args += ["--out", str(out_dir / "talk.mp4")]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    main, trace = psutil.Process(proc.pid), []
    while proc.poll() is None:
        try:
            own = main.memory_info().rss
            children = sum(c.memory_info().rss for c in main.children(recursive=True))
        except psutil.Error:
            break
        trace.append((round(time.perf_counter() - started, 2), own >> 20, children >> 20))
        if seconds_limit is not None and time.perf_counter() - started > seconds_limit:
            proc.send_signal(signal.SIGTERM)
            break
        time.sleep(0.25)
    try:
        _, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
        stderr += b"\n(did not stop within 120 s of SIGTERM: killed)"
    left = sorted(p.name for p in out_dir.iterdir())
    frames = None
    if (out_dir / "talk.mp4").exists():
        import imageio_ffmpeg

        frames = imageio_ffmpeg.count_frames_and_secs(str(out_dir / "talk.mp4"))[0]
    for path in out_dir.iterdir():
        path.unlink()
    out_dir.rmdir()
    return {
        "audio": audio,
        "wall_s": round(time.perf_counter() - started, 1),
        "returncode": proc.returncode,
        "peak_rss_mb": max(t[1] for t in trace),
        "peak_rss_with_children_mb": max(t[1] + t[2] for t in trace),
        "frames_written": frames,
        "files_left": [] if frames else left,
        "stderr_tail": stderr.decode(errors="replace")[-300:],
        "trace": trace[::8],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", required=True)
    parser.add_argument("--long", required=True)
    parser.add_argument("--long-minutes", type=float, default=8.0)
    parser.add_argument("--image", default=str(ROOT / "examples" / "portraits" / "portrait_0.png"))
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    short = measure(args.short, None, args.image)
    long = measure(args.long, args.long_minutes * 60, args.image)
    report = {"short": short, "long": long, "ratio": round(long["peak_rss_mb"] / short["peak_rss_mb"], 3)}
    report["ratio_with_children"] = round(long["peak_rss_with_children_mb"] / short["peak_rss_with_children_mb"], 3)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k in ("ratio", "ratio_with_children")}))


if __name__ == "__main__":
    main()
