"""Data parallel on accelerate: 2 CPU processes (gloo) make the update 1 process makes on the same global batch."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]
CONFIG = """preset: {preset}
bf16: false
log_every: 1
save_every: 100
ema_decay: 0.9
sample_seconds: 0
unet_overrides: {{audio_dropout: 0.0}}  # dropout draws depend on the per-process batch shape
stages:
  - {{name: motion, kind: teacher, steps: {steps}, batch_size: 4, context_frames: 2, chunk_length: 2,
     reference_prob: 0.5, first_chunk_prob: 0.3, lip_weight: 0.0}}
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _train(out: Path, setup: dict, processes: int) -> subprocess.CompletedProcess:
    args = ["train", "--config", str(setup["config"]), "--data", str(setup["data"]), "--out", str(out)]
    args += ["--components-from", str(setup["components"]), "--stage", "motion"]
    if processes == 1:
        command = [sys.executable, "-m", "starcaster", *args]
    else:
        launch = ["--config_file", str(REPO / "configs/accelerate/cpu-gloo.yaml"), "-m", "starcaster"]
        command = [sys.executable, "-m", "accelerate.commands.launch", *launch, *args]  # = `accelerate launch`
    return subprocess.run(command, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(next(folder.glob("*.safetensors")))


def _max_diff(a: dict, b: dict) -> float:
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from starcaster.data.synthtalk import SynthConfig, generate_dataset
    from starcaster.models.autoencoders import build_vae
    from starcaster.models.configs import get_preset
    from starcaster.models.identity_encoder import IdentityEncoder

    root = tmp_path_factory.mktemp("ddp")
    data = SynthConfig(out=root / "data", clips=8, seconds=1.0, eval_seconds=1.0, resolution=32, supersample=1,
                       views=8, test_views=2, eval_clips=2)  # fmt: skip
    generate_dataset(data, progress=False)
    torch.manual_seed(0)
    spec = get_preset("tiny")
    build_vae(spec).save_pretrained(root / "components" / "vae")
    IdentityEncoder(**spec.identity_encoder).save_pretrained(root / "components" / "identity_encoder")
    (root / "cfg.yaml").write_text(CONFIG.format(preset="tiny", steps=3))
    return {"root": root, "data": root / "data", "components": root / "components", "config": root / "cfg.yaml"}


def _batch(size: int, frames: int = 4):
    from starcaster.training.batches import Batch

    g = torch.Generator().manual_seed(3)
    r = lambda *shape: torch.randn(*shape, generator=g)  # noqa: E731
    return Batch(latents=r(size, frames, 4, 16, 16), pixels=r(size, frames, 3, 32, 32).clamp(-1, 1),
                 reference=r(size, 1, 4, 16, 16), reference_pixels=r(size, 3, 32, 32).clamp(-1, 1),
                 identity=torch.nn.functional.normalize(r(size, 512), dim=-1), audio=r(size, frames, 3, 16),
                 views=r(size, frames, 2) * 10, has_audio=torch.ones(size, dtype=torch.bool),
                 weights=1 + r(size, frames, 1, 16, 16).abs())  # fmt: skip


def _gradients(unet, batch, rank: int, world: int) -> list[torch.Tensor]:
    import numpy as np
    from diffusers import DDIMScheduler

    from starcaster.models.configs import get_preset
    from starcaster.training.config import StageConfig
    from starcaster.training.step_context import StepContext
    from starcaster.training.teacher_forcing import teacher_step

    stage = StageConfig("motion", 1, batch_size=4, context_frames=2, chunk_length=2, reference_prob=1.0,
                        first_chunk_prob=0.0)  # fmt: skip
    torch.manual_seed(7)  # what every process of a launch does (recipe._fit_stage)
    scheduler = DDIMScheduler(**get_preset("tiny").scheduler)
    ctx = StepContext(unet, scheduler, None, stage, np.random.default_rng(7), rank=rank, world=world)
    unet.zero_grad()
    teacher_step(ctx, batch)[0].backward()
    return [p.grad.clone() for p in unet.parameters() if p.grad is not None]


def test_sliced_steps_average_to_the_whole_batch_step():
    """The fast, in-process check of the rule a launch relies on: each process draws the global batch's
    random values and keeps its rows, so the mean of the per-process gradients is the 1-process gradient."""
    from dataclasses import fields

    from starcaster.models.configs import get_preset
    from starcaster.models.unet import STARCasterUNet

    torch.manual_seed(0)
    unet = STARCasterUNet(**{**get_preset("tiny").unet, "audio_dropout": 0.0}).train()
    batch = _batch(4)
    whole = _gradients(unet, batch, 0, 1)
    halves = []
    for rank in range(2):
        rows = {f.name: getattr(batch, f.name)[2 * rank : 2 * rank + 2] for f in fields(batch)}
        halves.append(_gradients(unet, type(batch)(**rows), rank, 2))
    for g, a, b in zip(whole, *halves):
        torch.testing.assert_close((a + b) / 2, g, atol=1e-6, rtol=1e-4)
    wrong = _gradients(unet, type(batch)(**{f.name: getattr(batch, f.name)[:2] for f in fields(batch)}), 0, 1)
    assert max((w - g).abs().max().item() for w, g in zip(wrong, whole)) > 1e-4  # a half batch alone differs


@pytest.mark.slow
def test_two_processes_match_one_on_the_same_global_batch(setup):
    root = setup["root"]
    one, two = _train(root / "one", setup, 1), _train(root / "two", setup, 2)
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.returncode == 0, two.stderr[-2000:]
    rows_one = list(csv.DictReader((root / "one/motion/log.csv").open()))
    rows_two = list(csv.DictReader((root / "two/motion/log.csv").open()))
    assert len(rows_one) == len(rows_two) == 3  # only the main process writes the log
    for a, b in zip(rows_one, rows_two):
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), abs=2e-6)  # the global batch's mean loss
    # the two processes really split the batch: the main process's own half has another loss
    assert any(abs(float(b["mse"]) - float(b["loss"])) > 1e-3 for b in rows_two)
    trained_one, trained_two = _weights(root / "one/motion/final"), _weights(root / "two/motion/final")
    from starcaster.models.configs import get_preset
    from starcaster.models.unet import STARCasterUNet

    torch.manual_seed(0)  # the recipe's fresh-model seed (cfg.seed)
    initial = STARCasterUNet(**{**get_preset("tiny").unet, "audio_dropout": 0.0}).state_dict()
    moved = _max_diff(trained_one, initial)
    assert moved > 1e-3  # training changed the weights ...
    assert _max_diff(trained_one, trained_two) < 1e-4  # ... identically in both runs (float reduction order aside)
