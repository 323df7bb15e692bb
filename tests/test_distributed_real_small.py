"""The real-shaped recipe (``configs/real-small.yaml``) on prepared stand-in data, 2 processes (slow: ~6 min)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_real_small_recipe_trains_on_prepared_wild_videos_in_two_processes(tmp_path):
    from starcaster import STARCasterPipeline
    from starcaster.cli import main
    from starcaster.data.wild import write_wild_videos

    write_wild_videos(tmp_path / "wild")
    data = tmp_path / "prepared"
    assert (
        main(["prepare", str(tmp_path / "wild"), "--out", str(data), "--resolution", "128", "--sync", "synthtalk"]) == 0
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", "configs/accelerate/cpu-gloo.yaml"]
    train = ["-m", "starcaster", "train", "--config", "configs/real-small.yaml", "--data", str(data)]
    train += ["--out", str(tmp_path / "run"), "--export", str(tmp_path / "export")]
    result = subprocess.run([*launch, *train], cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    for stage, steps in (("vae", 4), ("identity_encoder", 4), ("motion", 6), ("reference", 6), ("self_forcing", 4)):
        rows = list(csv.DictReader((tmp_path / "run" / stage / "log.csv").open()))
        assert len(rows) == steps and all(np.isfinite(float(r["loss"])) for r in rows)
    pipe = STARCasterPipeline.from_pretrained(tmp_path / "export")
    assert pipe.unet.config.latent_channels == 4 and len(pipe.vae.config.block_out_channels) == 4  # 1/8 latents
    assert list(pipe.unet.config.block_out_channels) == [32, 64, 128, 128] and pipe.image_size == 128
