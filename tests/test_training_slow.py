"""Slow: a brief real training run of the demo preset (pixel-unshuffle latents) whose loss must fall."""

import csv

import numpy as np
import pytest
import yaml

from starcaster.cli import main

pytestmark = pytest.mark.slow


def test_demo_preset_motion_stage_loss_decreases(tmp_path):
    from starcaster.data.synthtalk import SynthConfig, generate_dataset

    data = tmp_path / "data"
    generate_dataset(
        SynthConfig(out=data, clips=16, seconds=1.0, eval_seconds=1.0, views=8, test_views=2, eval_clips=1),
        progress=False,
    )
    recipe = {
        "preset": "demo",
        "log_every": 1,
        "save_every": 1000,
        "sample_seconds": 0,
        "vae": {"steps": 0},
        "identity": {"steps": 20, "batch_size": 16},
        "stages": [
            {"name": "motion", "kind": "teacher", "steps": 60, "batch_size": 4, "lr": 1.0e-3, "chunk_length": 4,
             "context_frames": 4, "first_chunk_prob": 0.3, "lip_weight": 0.3},
        ],
    }  # fmt: skip
    config = tmp_path / "recipe.yaml"
    config.write_text(yaml.safe_dump(recipe))
    assert main(["train", "--config", str(config), "--data", str(data), "--out", str(tmp_path / "run")]) == 0
    with (tmp_path / "run" / "motion" / "log.csv").open() as handle:
        losses = np.array([float(row["loss"]) for row in csv.DictReader(handle)])
    assert len(losses) == 60 and np.isfinite(losses).all()
    first, last = losses[:10].mean(), losses[-10:].mean()
    assert last < 0.7 * first, (first, last)
