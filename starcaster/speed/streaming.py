"""``python -m starcaster bench``: streaming AR generation measured in one run on one machine.

Sections (each a list of rows, all numbers measured here, ratios taken within this run):
* ``scaling``: wall time and peak RSS for several audio lengths through the streaming path
  (``stream`` → ``VideoWriter``), each in a fresh subprocess so peak RSS is its own; plus a
  linear fit and the ratios time(60)/time(10) and peak(60)/peak(10).
* ``cache_vs_recompute``: KV cache (window 8 + sink) vs naively re-encoding the whole causal
  history before every chunk, and vs re-encoding only the window.
* ``chunk_length``: seconds of compute per generated second and first-chunk latency.
* ``utilisation``: FLOPs of one denoiser forward (``torch.utils.flop_counter``, with the CPU
  flash-attention kernel counted too) / its time, as a share of this CPU's matmul peak
  measured with a large ``torch.mm``; in fp32 and in bf16 (against both peaks).
* ``stages``: real-time factor per stage (audio, identity, denoise, context, decode, mp4).
* ``precision``: the same clip in fp32 and bf16: real-time factor per stage and how far the
  bf16 frames are from the fp32 ones.
* ``full_sequence``: the peer baseline: one bidirectional pass over all frames (no AR),
  same denoiser, in a subprocess (it runs out of memory or time at long lengths).
* ``gpu``: the same on CUDA when available, else a ``skipped`` note.

Times are wall-clock; rows also carry CPU time (``cpu_s``, this process), and the report the
load average before and after, because this benchmark often shares its machine.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

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
    precision: str = "fp32"
    precision_seconds: float = 10.0
    timeout_s: float = 900.0
    matmul_size: int = 2048  # the torch.mm behind the peak figures (smaller: a quick check)
    repeats: int = 10  # best-of for the denoiser forward timings
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
    started, cpu_started = time.perf_counter(), time.process_time()
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
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    timer, pipe.timer = pipe.timer, StageTimer(enabled=False)
    return {
        "seconds": seconds,
        "frames": run.num_frames,
        "wall_s": wall,
        "cpu_s": cpu,
        "first_chunk_s": first,
        "stage_s": dict(timer.seconds),
        "stage_cpu_s": dict(timer.cpu_seconds),
    }


def _child(args: list[str], timeout: float) -> dict:
    """Run ``python -m starcaster.speed.streaming --child ...`` and read its JSON line."""
    try:
        result = subprocess.run(
            [sys.executable, "-m", "starcaster.speed.streaming", "--child", *args],
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
    """Subprocess entry: ``stream CHECKPOINT SECONDS THREADS PRECISION`` or ``full ... PRECISION STEPS``."""
    mode, checkpoint, seconds, threads, precision = argv[0], argv[1], float(argv[2]), int(argv[3]), argv[4]
    pipe = load(checkpoint, threads or None)
    if mode == "stream":
        with tempfile.TemporaryDirectory() as folder:
            row = generate(pipe, seconds, Path(folder) / "bench.mp4", precision=precision)
    else:
        with pipe.precision(precision):
            row = full_sequence_pass(pipe, seconds, int(argv[5]))
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
    started, cpu_started = time.perf_counter(), time.process_time()
    conditions = guided_conditions(pipe.unet, identity, features, views, Guidance())
    clean = denoise_chunk(pipe.unet, pipe.scheduler, noise, conditions, None, steps)
    pipe.decode_latents(clean[0])
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {"seconds": seconds, "frames": frames, "wall_s": wall, "cpu_s": cpu}


def matmul_peak_gflops(size: int = 2048, repeats: int = 5, dtype: torch.dtype = torch.float32) -> float:
    """Best of ``repeats`` timed ``torch.mm`` calls (the least disturbed on a shared machine)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)
    return 2 * size**3 / _best_seconds(lambda: torch.mm(a, b), repeats) / 1e9


def _best_seconds(fn, repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def _cpu_attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


# torch's FLOP counter has formulas for the CUDA attention kernels only; the CPU one does the same work.
_CPU_ATTENTION_FLOPS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention_flops}


def _denoiser_inputs(unet, chunk_length: int = 4, context: int = 9):
    """A chunk's latents and conditions, and a cache holding ``context`` frames (window + sink)."""
    cfg = unet.config
    latents = torch.randn(1, chunk_length, cfg.latent_channels, cfg.sample_size, cfg.sample_size)

    def conditions(frames: int) -> torch.Tensor:
        return unet.encode_conditions(
            torch.ones(1, cfg.identity_embed_dim),
            torch.zeros(1, frames, 2 * cfg.audio_context + 1, cfg.audio_n_mels),
            torch.zeros(1, frames, 2),
        )

    cache = unet.new_cache(window_frames=context - 1)
    cache.append(unet.encode_context(torch.randn(1, context, *latents.shape[2:]), conditions(context)))
    return latents, conditions(chunk_length), cache


@torch.no_grad()
def profile_tables(pipe, rows: int = 14) -> str:
    """``torch.profiler`` top-op tables: one denoiser forward and one chunk of generation, fp32 and bf16."""
    from torch.profiler import ProfilerActivity, profile

    latents, conditions, cache = _denoiser_inputs(pipe.unet)
    parts = []
    for precision in ("fp32", "bf16"):
        with pipe.precision(precision):
            for _ in range(2):
                pipe.unet(latents, 500, conditions, cache)
            with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
                pipe.unet(latents, 500, conditions, cache)
        averages = prof.key_averages(group_by_input_shape=True)
        parts += [
            f"## One denoiser forward, {precision} (chunk 4, cache 9 frames)",
            averages.table("self_cpu_time_total", rows),
        ]
        identity = np.ones(pipe.unet.config.identity_embed_dim, np.float32)
        run = pipe.start(audio=speech_like(1.0), identity_embedding=identity, precision=precision)
        chunks = iter(run.chunks)
        for _ in range(3):  # the cache fills (sink + 8 frames)
            next(chunks)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            next(chunks)
        parts += [
            f"## One chunk of generation, {precision} (4 frames, full cache)",
            prof.key_averages().table("self_cpu_time_total", rows),
        ]
    return "\n\n".join(parts) + "\n"


@torch.no_grad()
def denoiser_utilisation(
    pipe, chunk_length: int = 4, context: int = 9, repeats: int = 10, matmul_size: int = 2048
) -> dict:
    """GFLOP/s of one denoiser forward with a full cache (window 8 + sink), vs the matmul peaks.

    ``forward_s`` is the best of ``repeats`` forwards (fp32), ``forward_bf16_s`` the same with
    ``precision="bf16"``; each is compared with the ``torch.mm`` peak of its own dtype, and
    the bf16 forward with the fp32 peak as well (the speed-up it buys on this CPU).
    """
    unet = pipe.unet
    latents, conditions, cache = _denoiser_inputs(unet, chunk_length, context)
    counter = FlopCounterMode(display=False, custom_mapping=_CPU_ATTENTION_FLOPS)
    with counter:
        unet(latents, 500, conditions, cache)
    gflops = counter.get_total_flops() / 1e9
    attention = sum(v for k, v in counter.get_flop_counts()["Global"].items() if "attention" in str(k)) / 1e9

    def forward():
        unet(latents, 500, conditions, cache)

    forward()
    seconds = _best_seconds(forward, repeats)
    with pipe.precision("bf16"):
        forward()
        seconds_bf16 = _best_seconds(forward, repeats)
    peak = matmul_peak_gflops(matmul_size)
    peak_bf16 = matmul_peak_gflops(matmul_size, dtype=torch.bfloat16)
    return {
        "gflop_per_forward": gflops,
        "attention_gflop_per_forward": attention,
        "forward_s": seconds,
        "achieved_gflops": gflops / seconds,
        "matmul_peak_gflops": peak,
        "utilisation_pct": 100 * gflops / seconds / peak,
        "forward_bf16_s": seconds_bf16,
        "achieved_gflops_bf16": gflops / seconds_bf16,
        "matmul_peak_bf16_gflops": peak_bf16,
        "utilisation_bf16_pct": 100 * gflops / seconds_bf16 / peak_bf16,
        "utilisation_bf16_vs_fp32_peak_pct": 100 * gflops / seconds_bf16 / peak,
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
    threads, precision = str(config.threads or 0), config.precision
    report: dict = {
        "config": dict(config.__dict__),
        "torch_threads": config.threads or torch.get_num_threads(),
        "load_average_before": list(os.getloadavg()),
    }

    def save(partial: dict) -> None:
        partial["load_average_after"] = list(os.getloadavg())
        (on_section or (lambda _: None))(partial)

    report["scaling"] = [
        _child(["stream", config.checkpoint, str(d), threads, precision], config.timeout_s) for d in config.durations
    ]
    report.update(_scaling_summary(report["scaling"]))
    save(report)
    pipe = load(config.checkpoint, config.threads)
    report["utilisation"] = denoiser_utilisation(pipe, repeats=config.repeats, matmul_size=config.matmul_size)
    report["precision"] = _precision_rows(pipe, config.precision_seconds)
    report["chunk_length"] = [_chunk_row(pipe, n, config.chunk_seconds, precision) for n in config.chunk_lengths]
    save(report)
    report["full_sequence"] = [
        _child(["full", config.checkpoint, str(d), threads, precision, str(config.steps)], config.timeout_s)
        for d in config.full_sequence_durations
    ]
    report["gpu"] = (
        {"skipped": "no CUDA device on this machine"}
        if not torch.cuda.is_available()
        else {"note": "run `bench` on the GPU machine"}
    )
    save(report)
    report["cache_vs_recompute"] = []
    for seconds in config.recompute_durations:  # last: the naive recompute is the longest part
        report["cache_vs_recompute"].append(_cache_row(pipe, seconds, precision))
        save(report)
    return report


def _scaling_summary(rows: list[dict]) -> dict:
    good = [r for r in rows if "error" not in r]
    if len(good) < 2:
        return {}
    seconds = [r["seconds"] for r in good]
    summary = {"scaling_fit": linear_fit(seconds, [r["wall_s"] for r in good])}
    if all("cpu_s" in r for r in good):
        summary["scaling_fit_cpu"] = linear_fit(seconds, [r["cpu_s"] for r in good])
    by = {r["seconds"]: r for r in good}
    if 60 in by and 10 in by:
        summary["ratios"] = {
            "time_60_over_10": by[60]["wall_s"] / by[10]["wall_s"],
            "peak_rss_60_over_10": by[60]["peak_rss_mb"] / by[10]["peak_rss_mb"],
        }
        if "cpu_s" in by[60] and "cpu_s" in by[10]:
            summary["ratios"]["cpu_time_60_over_10"] = by[60]["cpu_s"] / by[10]["cpu_s"]
    summary["stages"] = _stage_rtf(max(good, key=lambda r: r["seconds"]))
    return summary


def _cache_row(pipe, seconds: float, precision: str = "fp32") -> dict:
    common = dict(output_type="latent", precision=precision)
    cached = generate(pipe, seconds, **common)
    window = generate(pipe, seconds, context_mode="recompute", **common)
    history = generate(pipe, seconds, context_mode="recompute", context_frames=None, **common)
    return {
        "seconds": seconds,
        "cache_s": cached["wall_s"],
        "recompute_window_s": window["wall_s"],
        "recompute_history_s": history["wall_s"],
        "cache_cpu_s": cached["cpu_s"],
        "recompute_window_cpu_s": window["cpu_s"],
        "recompute_history_cpu_s": history["cpu_s"],
        "speedup_vs_history": history["wall_s"] / cached["wall_s"],
        "speedup_vs_history_cpu": history["cpu_s"] / cached["cpu_s"],
    }


def _chunk_row(pipe, chunk_length: int, seconds: float, precision: str = "fp32") -> dict:
    row = generate(pipe, seconds, chunk_length=chunk_length, precision=precision)
    return {
        "chunk_length": chunk_length,
        "compute_per_video_second": row["wall_s"] / seconds,
        "cpu_per_video_second": row["cpu_s"] / seconds,
        "first_chunk_s": row["first_chunk_s"],
    }


@torch.no_grad()
def _precision_rows(pipe, seconds: float) -> list[dict]:
    """The same clip in fp32 and bf16: per-stage RTF (wall and CPU) and the frames' difference."""
    rows, frames = [], {}
    for precision in ("fp32", "bf16"):
        identity = np.ones(pipe.unet.config.identity_embed_dim, np.float32)
        pipe.timer = StageTimer()
        started, cpu_started = time.perf_counter(), time.process_time()
        run = pipe.start(
            audio=speech_like(seconds),
            identity_embedding=identity,
            generator=torch.Generator().manual_seed(0),
            precision=precision,
        )
        video = [chunk.frames for chunk in run.chunks]
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        frames[precision] = np.concatenate(video).astype(np.float64)
        row = {"precision": precision, "seconds": seconds, "rtf": wall / seconds, "rtf_cpu": cpu / seconds}
        row |= {f"{stage}_cpu": s / seconds for stage, s in pipe.timer.cpu_seconds.items()}
        rows.append(row)
    pipe.timer = StageTimer(enabled=False)
    error = frames["bf16"] - frames["fp32"]
    rows[1] |= {
        "max_abs_diff_uint8": float(np.abs(error).max()),
        "mean_abs_diff_uint8": float(np.abs(error).mean()),
        "psnr_vs_fp32_db": float(10 * np.log10(255**2 / max(np.mean(error**2), 1e-12))),
    }
    return rows


def _stage_rtf(row: dict) -> dict:
    rtf = {stage: seconds / row["seconds"] for stage, seconds in row["stage_s"].items()}
    rtf_cpu = {f"{stage}_cpu": seconds / row["seconds"] for stage, seconds in row.get("stage_cpu_s", {}).items()}
    return rtf | rtf_cpu | {"total": row["wall_s"] / row["seconds"], "total_cpu": row["cpu_s"] / row["seconds"]}


def format_report(report: dict) -> str:
    lines = ["| audio s | frames | wall s | CPU s | peak RSS MB |", "|---|---|---|---|---|"]
    lines += [
        f"| {r.get('seconds', '?')} | {r.get('frames', '-')} | {r.get('wall_s', float('nan')):.2f} "
        f"| {r.get('cpu_s', float('nan')):.2f} | {r.get('peak_rss_mb', float('nan')):.0f} |"
        if "error" not in r
        else f"| ? | error: {r['error']} | | | |"
        for r in report["scaling"]
    ]
    for key in ("scaling_fit", "scaling_fit_cpu", "ratios", "utilisation", "stages", "gpu"):
        if key in report:
            lines.append(f"\n**{key}**: " + ", ".join(f"{k}={_fmt(v)}" for k, v in report[key].items()))
    for key in ("cache_vs_recompute", "chunk_length", "precision", "full_sequence"):
        if key not in report:
            continue
        lines.append(f"\n**{key}**")
        lines += [
            "- " + ", ".join(f"{k}={_fmt(v)}" for k, v in row.items() if k not in ("stage_s", "stage_cpu_s"))
            for row in report[key]
        ]
    return "\n".join(lines)


def _fmt(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) and math.isfinite(value) else str(value)


def plot(report: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    good = [r for r in report["scaling"] if "error" not in r]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(
        [r["seconds"] for r in good], [r["wall_s"] for r in good], "o-", color="C0", label="AR + KV cache (streaming)"
    )
    if all("cpu_s" in r for r in good):
        left.plot(
            [r["seconds"] for r in good], [r["cpu_s"] for r in good], "o:", color="C1", label="AR + KV cache, CPU time"
        )
    full = [r for r in report.get("full_sequence", []) if "error" not in r]
    left.plot([r["seconds"] for r in full], [r["wall_s"] for r in full], "s--", color="C2", label="full-sequence pass")
    left.set(xlabel="audio seconds", ylabel="seconds (wall, or CPU)", title="time vs length")
    left.legend()
    right.plot([r["seconds"] for r in good], [r["peak_rss_mb"] for r in good], "o-", color="C0", label="AR + KV cache")
    right.plot(
        [r["seconds"] for r in full], [r["peak_rss_mb"] for r in full], "s--", color="C2", label="full-sequence pass"
    )
    right.set(xlabel="audio seconds", ylabel="peak RSS (MB)", title="memory vs length")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--child":
    child_main(sys.argv[2:])
