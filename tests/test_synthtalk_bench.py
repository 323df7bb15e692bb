"""Speed of SynthTalk generation: measured and logged, never asserted (machines differ)."""

from __future__ import annotations

import logging

import pytest

from starcaster.data.synthtalk import SynthConfig
from starcaster.speed.synthtalk import benchmark_generation, benchmark_renderer

logger = logging.getLogger(__name__)


@pytest.mark.slow
def test_report_renderer_and_generation_speed():
    renderer = benchmark_renderer()
    generation = benchmark_generation(SynthConfig(clips=32, multiview_sets=0, eval_clips=0, workers=2, shard_size=8))
    logger.warning("renderer: %s", renderer)
    logger.warning("generation: %s", generation)
    assert renderer["frames_per_second"] > 0 and generation["minutes_per_10k_clips"] > 0
