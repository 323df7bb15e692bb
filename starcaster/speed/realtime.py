"""The live-serving figures: end-to-end wall time per video second and time to the first chunk.

``realtime_rows`` measures, on the already loaded (and warmed-up) pipeline, exactly what a user
waits for: the audio file decoded, features, identity, every chunk denoised, decoded, refined
and written to a finished mp4 — for today's defaults and for the old 4-step path, and with
``baseline`` another checkpoint at the same defaults (the live student against the teacher it
was distilled from), interleaved (``repeats`` rounds of each) so that a shared machine's load
hits all alike. With a baseline the old 4-step path runs on it: the checkpoint those defaults
shipped with, i.e. what a user got before. Ratios are taken within the run.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from ..audio import SAMPLE_RATE
from ..request import GenerationRequest
from ..video import VideoWriter

# The defaults before the live work (docs/performance.md).
OLD_DEFAULTS = {"num_inference_steps": 4, "context_frames": 8}
BASELINE = "baseline checkpoint, defaults"


def end_to_end(pipe, audio_path: Path, image: str, out: Path, **settings) -> dict:
    """One request, file to file: ``{"wall_s", "cpu_s", "first_chunk_s", "video_s", "s_per_video_s"}``."""
    started, cpu = time.perf_counter(), time.process_time()
    run = pipe.start(audio=str(audio_path), image=image, generator=torch.Generator().manual_seed(0), **settings)
    first = None
    with VideoWriter(out, run.fps, run.audio, audio_file=run.audio_file) as writer:
        for chunk in run.chunks:
            first = first or time.perf_counter() - started
            writer.write(chunk.frames)
    wall = time.perf_counter() - started
    video = writer.frames_written / run.fps
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(time.process_time() - cpu, 3),
        "first_chunk_s": round(first, 3),
        "video_s": round(video, 3),
        "s_per_video_s": round(wall / video, 4),
    }


def realtime_rows(pipe, seconds: float = 15.0, repeats: int = 2, image: str | None = None, baseline=None) -> dict:
    """Today's defaults vs ``OLD_DEFAULTS`` (on ``baseline`` where given) and ``baseline``'s defaults,
    interleaved; best and median of ``repeats`` each."""
    root = Path(__file__).resolve().parents[2]
    image = image or str(root / "examples" / "portraits" / "portrait_0.png")
    speech = _speech_file(root, seconds)
    variants = {"default": (pipe, {}), "old 4-step default": (baseline or pipe, OLD_DEFAULTS)}
    if baseline is not None:
        variants[BASELINE] = (baseline, {})
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for model in {id(m): m for m, _ in variants.values()}.values():
        model.warm_up()
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(repeats):
            for name, (model, settings) in variants.items():
                runs[name].append(end_to_end(model, speech, image, Path(folder) / "out.mp4", **settings))
        speech.unlink()
    rows = {name: _summary(found) for name, found in runs.items()}
    rows["speed_up"] = round(rows["old 4-step default"]["s_per_video_s"] / rows["default"]["s_per_video_s"], 3)
    if baseline is not None:
        rows["speed_up_over_baseline"] = round(rows[BASELINE]["s_per_video_s"] / rows["default"]["s_per_video_s"], 3)
    rows["old_defaults_on"] = "baseline" if baseline is not None else "checkpoint"
    rows["threads"] = torch.get_num_threads()
    rows["defaults"] = {
        "num_inference_steps": GenerationRequest.num_inference_steps,
        "chunk_length": GenerationRequest.chunk_length,
        "context_frames": GenerationRequest.context_frames,
    }
    rows["load_average"] = list(os.getloadavg())
    return rows


def _summary(found: list[dict]) -> dict:
    best = min(found, key=lambda r: r["wall_s"])
    return {**best, "median_s_per_video_s": float(np.median([r["s_per_video_s"] for r in found])), "runs": found}


def _speech_file(root: Path, seconds: float) -> Path:
    """The example speech repeated to ``seconds`` (a real espeak-ng clip with pauses), as a wav file."""
    from ..audio import load_audio

    clip = load_audio(root / "examples" / "audio" / "weather.wav")
    clip = np.concatenate([clip, np.zeros(SAMPLE_RATE // 2, np.float32)])
    wave = np.tile(clip, int(np.ceil(seconds * SAMPLE_RATE / len(clip))))[: int(seconds * SAMPLE_RATE)]
    path = Path(tempfile.mkstemp(suffix=".wav", prefix="starcaster-speech-")[1])
    sf.write(path, wave, SAMPLE_RATE)
    return path
