"""`python -m starcaster bench` on the tiny checkpoint: the report's structure, every figure positive and finite."""

from __future__ import annotations

import json
import math

from starcaster.cli import main


def _numbers(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, float):
        yield value


def test_bench_report(tiny_checkpoint, tmp_path):
    out = tmp_path / "bench"
    args = ["bench", "--checkpoint", str(tiny_checkpoint), "--durations", "0.5", "1.0", "--recompute-durations", "0.6"]
    args += ["--chunk-lengths", "1", "4", "--full-durations", "0.5", "--threads", "1", "--precision-seconds", "0.5"]
    args += [
        "--realtime-seconds",
        "0.5",
        "--matmul-size",
        "256",
        "--repeats",
        "2",
        "--out",
        str(out),
        "--profile",
        str(tmp_path / "profile.txt"),
        "--baseline-checkpoint",
        str(tiny_checkpoint),
    ]
    assert main(args) == 0
    report = json.loads((out / "bench.json").read_text())
    assert (out / "bench.png").stat().st_size > 1000 and (out / "bench.md").read_text().startswith("| audio s")
    for section in ("scaling", "cache_vs_recompute", "chunk_length", "full_sequence"):
        assert report[section] and all("error" not in row for row in report[section]), section
    assert [r["frames"] for r in report["scaling"]] == [13, 25]
    assert {"denoise", "decode", "mp4", "audio"} <= set(report["stages"])
    fit = report["scaling_fit"]  # a line through the measured rows (its slope is a timing: never asserted)
    for row in report["scaling"]:
        predicted = fit["seconds_per_audio_second"] * row["seconds"] + fit["intercept_s"]
        assert math.isclose(predicted, row["wall_s"], rel_tol=1e-6, abs_tol=1e-6)  # two points: an exact fit
    utilisation = report["utilisation"]
    assert utilisation["utilisation_pct"] > 0 and utilisation["utilisation_bf16_pct"] > 0
    assert 0 < utilisation["attention_gflop_per_forward"] < utilisation["gflop_per_forward"]  # attention is counted
    assert [row["precision"] for row in report["precision"]] == ["fp32", "bf16"]
    assert report["precision"][1]["psnr_vs_fp32_db"] > 0 and "denoise_cpu" in report["precision"][0]
    assert {"load_average_before", "load_average_after"} <= set(report)
    realtime = report["realtime"]  # the live-serving figures: defaults vs the old 4-step path, same run
    assert realtime == json.loads((out / "realtime.json").read_text())
    for name in ("default", "old 4-step default", "baseline checkpoint, defaults"):  # the baseline: interleaved too
        row = realtime[name]
        assert row["video_s"] == 0.52 and 0 < row["first_chunk_s"] <= row["wall_s"] and len(row["runs"]) == 2
    assert realtime["speed_up"] > 0 and realtime["speed_up_over_baseline"] > 0
    assert realtime["old_defaults_on"] == "baseline"  # today's 4-step path: the checkpoint it shipped with
    assert realtime["defaults"]["num_inference_steps"] == 1
    assert (tmp_path / "profile.txt").read_text().count("One denoiser forward") == 2
    assert "skipped" in report["gpu"] or "note" in report["gpu"]
    numbers = list(
        _numbers(
            {
                k: report[k]
                for k in ("scaling", "cache_vs_recompute", "chunk_length", "utilisation", "stages", "precision")
            }
        )
    )
    assert numbers and all(math.isfinite(x) and x >= 0 for x in numbers)


def test_chunk_rate_times_the_pipelines_rollout_at_steady_state():
    """The accelerator measurement (scripts/gpu_speed.py) runs the pipeline's own Rollout, eager, on the CPU."""
    from starcaster import build_pipeline
    from starcaster.speed.chunk_rate import chunk_rate

    pipe = build_pipeline("tiny")
    row = chunk_rate(pipe.unet.eval(), "tiny", 2, dict(pipe.scheduler.config), window=6, timed_chunks=3)
    assert (row.model, row.steps, row.window, row.chunk_length, row.compile_mode) == ("tiny", 2, 6, 4, None)
    assert row.s_per_chunk > 0 and math.isclose(row.frames_per_s, 4 / row.s_per_chunk, rel_tol=0.01)
    assert row.dtype == "float32" and row.device == "cpu"
