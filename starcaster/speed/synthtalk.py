"""Speed of SynthTalk generation: renderer frames/s and end-to-end clips/s (reported, never asserted)."""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..data.heads import sample_head
from ..data.render import RenderConfig, render
from ..data.state import FrameState
from ..data.synthtalk import SynthConfig, generate_dataset


def benchmark_renderer(
    frames: int = 250, size: int = 64, supersample: int = 2, identities: int = 4
) -> dict[str, float]:
    """Frames per second of ``render`` in this process, random views and mouths, several identities."""
    rng = np.random.default_rng(0)
    state = FrameState.neutral(frames, rng.uniform(-90, 90, frames), rng.uniform(-30, 30, frames))
    state.mouth_open[:] = rng.uniform(0, 1, frames)
    config = RenderConfig(size=size, supersample=supersample)
    render(sample_head(0), state.take(slice(0, 2)), config)  # warm-up
    start = time.perf_counter()
    for i in range(identities):
        render(sample_head(i), state, config)
    seconds = time.perf_counter() - start
    return {"frames_per_second": identities * frames / seconds, "size": size, "supersample": supersample}


def benchmark_generation(config: SynthConfig) -> dict[str, float]:
    """Generate ``config`` into a temp dir; report clips/s, rendered frames/s and minutes per 10k clips.

    Use a config with talking clips only (``multiview_sets=0, eval_clips=0``) to time "10k clips
    of ``seconds`` s" as the issue asks; speech, motion, rendering and compression are all included.
    """
    with tempfile.TemporaryDirectory() as tmp:
        config = replace(config, out=Path(tmp))
        start = time.perf_counter()
        generate_dataset(config, progress=False)
        seconds = time.perf_counter() - start
    clips = sum(sum(config.counts(split).values()) for split in config.splits)
    frames = sum(_frames(config, split) for split in config.splits)
    return {
        "seconds": seconds,
        "clips": clips,
        "workers": config.workers,
        "frames_rendered": frames,
        "frames_per_second": frames / seconds,
        "minutes_per_10k_clips": seconds / max(1, clips) * 10_000 / 60,
    }


def _frames(config: SynthConfig, split: str) -> int:
    """Frames rendered for ``split``, references included."""
    counts = config.counts(split)
    length = round((config.seconds if split == "train" else config.eval_seconds) * config.fps)
    views = counts["multiview"] * config.views + counts["talking4d"] * length * config.test_views
    return counts["talking"] * length + views + sum(counts.values())
