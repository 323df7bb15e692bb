"""``python -m starcaster bench``: streaming AR generation measured in one run on one machine.

Sections (each a list of rows, all numbers measured here, ratios taken within this run):
* ``scaling``: wall time and peak RSS for several audio lengths through the streaming path
  (``stream`` → ``VideoWriter``), each in a fresh subprocess so peak RSS is its own; plus a
  linear fit and the ratios time(60)/time(10) and peak(60)/peak(10).
* ``cache_vs_recompute``: KV cache (window 8 + sink) vs naively re-encoding the whole causal
  history before every chunk, and vs re-encoding only the window.
* ``chunk_length``: seconds of compute per generated second and first-chunk latency.
* ``utilisation``: FLOPs of one denoiser forward (``torch.utils.flop_counter``) / its time,
  as a share of this CPU's fp32 matmul peak measured with a large ``torch.mm``.
* ``stages``: real-time factor per stage (audio, identity, denoise, context, decode, mp4).
* ``full_sequence``: the peer baseline: one bidirectional pass over all frames (no AR),
  same denoiser, in a subprocess (it runs out of memory or time at long lengths).
* ``gpu``: the same on CUDA when available, else a ``skipped`` note.
"""

from __future__ import annotations

import contextlib
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from ..audio import SAMPLE_RATE
from ..timing import StageTimer
from ..video import VideoWriter


@dataclass
class BenchConfig:
    checkpoint: str
    durations: tuple[float, ...] = (2, 5, 10, 30, 60)
    recompute_durations: tuple[float, ...] = (10, 30)
    chunk_lengths: tuple[int, ...] = (1, 2, 4, 8, 16)
    chunk_seconds: float = 4.0
    full_sequence_durations: tuple[float, ...] = (2, 5, 10)
    steps: int = 4
    threads: int | None = None
    timeout_s: float = 900.0
    extra: dict = field(default_factory=dict)


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Syllable-modulated buzz with pauses: exercises the audio path without espeak-ng."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    rng = np.random.default_rng(seed)
    envelope = np.clip(np.sin(2 * np.pi * 3.1 * t + rng.uniform(0, 6)), 0, None) * (np.sin(2 * np.pi * 0.3 * t) > -0.6)
    return (0.3 * envelope * np.sign(np.sin(2 * np.pi * 130 * t))).astype(np.float32)


def load(checkpoint: str, threads: int | None):
    from ..pipeline import STARCasterPipeline

    if threads:
        torch.set_num_threads(threads)
    pipe = STARCasterPipeline.from_pretrained(checkpoint)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(pipe, seconds: float, out: Path | None = None, **kwargs) -> dict:
    """Stream one clip (optionally into an mp4); wall time, first-chunk latency, stage times."""
    identity = np.ones(pipe.unet.config.identity_embed_dim, np.float32)
    pipe.timer = StageTimer()
    started = time.perf_counter()
    run = pipe.start(
        audio=speech_like(seconds), identity_embedding=identity, generator=torch.Generator().manual_seed(0), **kwargs
    )
    first = None
    writer = VideoWriter(out, run.fps, run.audio) if out is not None else None
    with writer if writer is not None else contextlib.nullcontext():
        for chunk in run.chunks:
            first = first or time.perf_counter() - started
            if writer is not None:
                with pipe.timer("mp4"):
                    writer.write(chunk.frames)
    wall = time.perf_counter() - started
    stages, pipe.timer = dict(pipe.timer.seconds), StageTimer(enabled=False)
    return {"seconds": seconds, "frames": run.num_frames, "wall_s": wall, "first_chunk_s": first, "stage_s": stages}


def _child(args: list[str], timeout: float) -> dict:
    """Run ``python -m starcaster.eval.benchmark --child ...`` and read its JSON line."""
    try:
        result = subprocess.run(
            [sys.executable, "-m", "starcaster.eval.benchmark", "--child", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["killed"])[-1]
        return {"error": f"exit {result.returncode}: {tail}"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def child_main(argv: list[str]) -> None:
    """Subprocess entry: ``stream CHECKPOINT SECONDS THREADS`` or ``full CHECKPOINT SECONDS THREADS STEPS``."""
    mode, checkpoint, seconds, threads = argv[0], argv[1], float(argv[2]), int(argv[3])
    pipe = load(checkpoint, threads or None)
    if mode == "stream":
        with tempfile.TemporaryDirectory() as folder:
            row = generate(pipe, seconds, Path(folder) / "bench.mp4")
    else:
        row = full_sequence_pass(pipe, seconds, int(argv[4]))
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(row))


@torch.no_grad()
def full_sequence_pass(pipe, seconds: float, steps: int) -> dict:
    """Peer baseline: every frame denoised together, bidirectionally, with no cache (non-AR)."""
    from ..audio import frame_features
    from ..models.sampling import Guidance, denoise_chunk, guided_conditions

    features = torch.from_numpy(frame_features(speech_like(seconds), 25, pipe.audio_config))[None]
    frames = features.shape[1]
    views = torch.zeros(1, frames, 2)
    identity = torch.ones(1, pipe.unet.config.identity_embed_dim)
    cfg = pipe.unet.config
    noise = torch.randn(
        1, frames, cfg.latent_channels, cfg.sample_size, cfg.sample_size, generator=torch.Generator().manual_seed(0)
    )
    started = time.perf_counter()
    conditions = guided_conditions(pipe.unet, identity, features, views, Guidance())
    clean = denoise_chunk(pipe.unet, pipe.scheduler, noise, conditions, None, steps)
    pipe.decode_latents(clean[0])
    return {"seconds": seconds, "frames": frames, "wall_s": time.perf_counter() - started}


def matmul_peak_gflops(size: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    started = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9


@torch.no_grad()
def denoiser_utilisation(pipe, chunk_length: int = 4, context: int = 9, repeats: int = 5) -> dict:
    """GFLOP/s of one denoiser forward with a full cache (window 8 + sink), vs the matmul peak."""
    unet, cfg = pipe.unet, pipe.unet.config
    latents = torch.randn(1, chunk_length, cfg.latent_channels, cfg.sample_size, cfg.sample_size)
    conditions = unet.encode_conditions(
        torch.ones(1, cfg.identity_embed_dim),
        torch.zeros(1, chunk_length, 2 * cfg.audio_context + 1, cfg.audio_n_mels),
        torch.zeros(1, chunk_length, 2),
    )
    cache = unet.new_cache(window_frames=context - 1)
    ctx_conditions = unet.encode_conditions(
        torch.ones(1, cfg.identity_embed_dim),
        torch.zeros(1, context, 2 * cfg.audio_context + 1, cfg.audio_n_mels),
        torch.zeros(1, context, 2),
    )
    cache.append(unet.encode_context(torch.randn(1, context, *latents.shape[2:]), ctx_conditions))
    counter = FlopCounterMode(display=False)
    with counter:
        unet(latents, 500, conditions, cache)
    unet(latents, 500, conditions, cache)
    started = time.perf_counter()
    for _ in range(repeats):
        unet(latents, 500, conditions, cache)
    seconds = (time.perf_counter() - started) / repeats
    gflops = counter.get_total_flops() / 1e9
    peak = matmul_peak_gflops()
    return {
        "gflop_per_forward": gflops,
        "forward_s": seconds,
        "achieved_gflops": gflops / seconds,
        "matmul_peak_gflops": peak,
        "utilisation_pct": 100 * gflops / seconds / peak,
    }


def linear_fit(xs: list[float], ys: list[float]) -> dict:
    slope, intercept = np.polyfit(xs, ys, 1)
    predicted = slope * np.asarray(xs) + intercept
    residual = float(np.sum((np.asarray(ys) - predicted) ** 2))
    total = float(np.sum((np.asarray(ys) - np.mean(ys)) ** 2)) or 1.0
    return {"seconds_per_audio_second": float(slope), "intercept_s": float(intercept), "r2": 1 - residual / total}


def run(config: BenchConfig, on_section=None) -> dict:
    """Every section; each row a dict of measured numbers (or an ``error`` string).

    ``on_section(report)`` is called after each section, so a long run that is stopped
    still leaves what it measured (the CLI rewrites bench.json each time).
    """
    threads = str(config.threads or 0)
    report: dict = {"config": dict(config.__dict__), "torch_threads": config.threads or torch.get_num_threads()}
    save = on_section or (lambda _: None)
    report["scaling"] = [
        _child(["stream", config.checkpoint, str(d), threads], config.timeout_s) for d in config.durations
    ]
    report.update(_scaling_summary(report["scaling"]))
    save(report)
    pipe = load(config.checkpoint, config.threads)
    report["utilisation"] = denoiser_utilisation(pipe)
    report["chunk_length"] = [_chunk_row(pipe, n, config.chunk_seconds) for n in config.chunk_lengths]
    save(report)
    report["cache_vs_recompute"] = [_cache_row(pipe, d) for d in config.recompute_durations]
    save(report)
    full_args = [threads, str(config.steps)]
    report["full_sequence"] = [
        _child(["full", config.checkpoint, str(d), *full_args], config.timeout_s)
        for d in config.full_sequence_durations
    ]
    report["gpu"] = (
        {"skipped": "no CUDA device on this machine"}
        if not torch.cuda.is_available()
        else {"note": "run `bench` on the GPU machine"}
    )
    save(report)
    return report


def _scaling_summary(rows: list[dict]) -> dict:
    good = [r for r in rows if "error" not in r]
    if len(good) < 2:
        return {}
    summary = {"scaling_fit": linear_fit([r["seconds"] for r in good], [r["wall_s"] for r in good])}
    by = {r["seconds"]: r for r in good}
    if 60 in by and 10 in by:
        summary["ratios"] = {
            "time_60_over_10": by[60]["wall_s"] / by[10]["wall_s"],
            "peak_rss_60_over_10": by[60]["peak_rss_mb"] / by[10]["peak_rss_mb"],
        }
    summary["stages"] = _stage_rtf(max(good, key=lambda r: r["seconds"]))
    return summary


def _cache_row(pipe, seconds: float) -> dict:
    cached = generate(pipe, seconds, output_type="latent")["wall_s"]
    window = generate(pipe, seconds, output_type="latent", context_mode="recompute")["wall_s"]
    history = generate(pipe, seconds, output_type="latent", context_mode="recompute", context_frames=None)["wall_s"]
    return {
        "seconds": seconds,
        "cache_s": cached,
        "recompute_window_s": window,
        "recompute_history_s": history,
        "speedup_vs_history": history / cached,
    }


def _chunk_row(pipe, chunk_length: int, seconds: float) -> dict:
    row = generate(pipe, seconds, chunk_length=chunk_length)
    return {
        "chunk_length": chunk_length,
        "compute_per_video_second": row["wall_s"] / seconds,
        "first_chunk_s": row["first_chunk_s"],
    }


def _stage_rtf(row: dict) -> dict:
    return {stage: seconds / row["seconds"] for stage, seconds in row["stage_s"].items()} | {
        "total": row["wall_s"] / row["seconds"]
    }


def format_report(report: dict) -> str:
    lines = ["| audio s | frames | wall s | peak RSS MB |", "|---|---|---|---|"]
    lines += [
        f"| {r.get('seconds', '?')} | {r.get('frames', '-')} | {r.get('wall_s', float('nan')):.2f} | {r.get('peak_rss_mb', float('nan')):.0f} |"
        if "error" not in r
        else f"| ? | error: {r['error']} | | |"
        for r in report["scaling"]
    ]
    for key in ("scaling_fit", "ratios", "utilisation", "stages", "gpu"):
        if key in report:
            lines.append(f"\n**{key}**: " + ", ".join(f"{k}={_fmt(v)}" for k, v in report[key].items()))
    for key in ("cache_vs_recompute", "chunk_length", "full_sequence"):
        if key not in report:
            continue
        lines.append(f"\n**{key}**")
        lines += ["- " + ", ".join(f"{k}={_fmt(v)}" for k, v in row.items() if k != "stage_s") for row in report[key]]
    return "\n".join(lines)


def _fmt(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) and math.isfinite(value) else str(value)


def plot(report: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    good = [r for r in report["scaling"] if "error" not in r]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot([r["seconds"] for r in good], [r["wall_s"] for r in good], "o-", label="AR + KV cache (streaming)")
    full = [r for r in report.get("full_sequence", []) if "error" not in r]
    left.plot([r["seconds"] for r in full], [r["wall_s"] for r in full], "s--", label="full-sequence pass")
    left.set(xlabel="audio seconds", ylabel="wall seconds", title="time vs length")
    left.legend()
    right.plot([r["seconds"] for r in good], [r["peak_rss_mb"] for r in good], "o-", label="AR + KV cache")
    right.plot([r["seconds"] for r in full], [r["peak_rss_mb"] for r in full], "s--", label="full-sequence pass")
    right.set(xlabel="audio seconds", ylabel="peak RSS (MB)", title="memory vs length")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--child":
    child_main(sys.argv[2:])
