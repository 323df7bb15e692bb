"""The view loss (``training/losses.view_loss``): a frozen pose regressor, trained apart from the
evaluation's, must read the conditioning camera in the decoded chunk — low for frames rendered at the
requested view, high for a wrong one, with a gradient to the frames; ``distill_step`` adds it."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from test_distillation import NARROW, _batch, _context, _teacher

from starcaster.data.heads import sample_head
from starcaster.data.render import RenderConfig, render
from starcaster.data.state import FrameState
from starcaster.eval.experts import WEIGHTS_DIR, load_expert, to_input
from starcaster.models.pixel_vae import PixelUnshuffleVAE
from starcaster.training.config import load_config
from starcaster.training.distillation import distill_step, student_from
from starcaster.training.losses import view_loss
from starcaster.training.recipe import VIEW_EXPERT_DIR, _view_expert

AZIMUTH = np.array([-40.0, -10.0, 0.0, 25.0, 60.0, 80.0])
ELEVATION = np.array([10.0, -5.0, 0.0, 20.0, -15.0, 5.0])


def _renders() -> torch.Tensor:
    """Six frames ``[6, 3, 64, 64]`` of a held-out head at the views above."""
    state = FrameState.neutral(len(AZIMUTH), AZIMUTH, ELEVATION)
    return to_input(render(sample_head(900_123), state, RenderConfig()))


def test_the_view_loss_reads_the_requested_camera_and_has_a_gradient():
    ctx = SimpleNamespace(view_expert=load_expert("pose", VIEW_EXPERT_DIR))
    frames = _renders().requires_grad_(True)
    views = torch.from_numpy(np.stack([AZIMUTH, ELEVATION], -1)).float()[None]  # [1, F, 2]
    right = view_loss(ctx, frames, views)
    wrong = view_loss(ctx, frames, views + torch.tensor([20.0, 0.0]))  # azimuth 20° off: half the mean is ≈ 20
    assert right.item() < 2.5 and wrong.item() > 8.0
    wrong.backward()
    assert frames.grad is not None and frames.grad.abs().sum() > 0


def test_the_view_expert_is_not_the_network_that_grades_view_error():
    ours, graders = load_file(VIEW_EXPERT_DIR / "pose.safetensors"), load_file(WEIGHTS_DIR / "pose.safetensors")
    assert ours.keys() == graders.keys()
    assert any(not torch.equal(ours[k], graders[k]) for k in ours)


def test_the_recipe_loads_the_view_expert_only_when_weighted(tmp_path):
    cfg = load_config(_write(tmp_path, "view_expert_weights: missing-folder\n"))
    assert _view_expert(cfg, cfg.stages[0], torch.device("cpu")) is None  # view_weight 0: nothing loaded
    cfg.stages[0].view_weight = 0.05
    with pytest.raises(FileNotFoundError, match="missing-folder"):
        _view_expert(cfg, cfg.stages[0], torch.device("cpu"))
    cfg.view_expert_weights = None
    assert _view_expert(cfg, cfg.stages[0], torch.device("cpu")).training is False


def _write(tmp_path, extra: str):
    path = tmp_path / "recipe.yaml"
    path.write_text(extra + "stages:\n  - {name: distill, kind: distill, steps: 1}\n")
    return path


def test_distill_step_adds_the_weighted_view_loss_to_the_students_gradient():
    """Same draws with and without the term: the loss grows by ``view_weight`` × the reported view loss
    and the student's gradient changes (pixel-space latents: 48 channels at 16² decode to 64² frames)."""
    teacher = _teacher(latent_channels=48)
    initial = student_from(teacher, NARROW).eval()
    results = {}
    for weight in (0.0, 0.5):
        student = copy.deepcopy(initial)
        ctx = _context(student, teacher, view_weight=weight)
        ctx.vae, ctx.view_expert = PixelUnshuffleVAE(), load_expert("pose", VIEW_EXPERT_DIR)
        torch.manual_seed(3)
        loss, parts = distill_step(ctx, _batch(latent_channels=48))
        loss.backward()
        results[weight] = loss.item(), parts, student.backbone.conv_in.weight.grad.clone()
    (plain, plain_parts, plain_grad), (viewed, parts, grad) = results[0.0], results[0.5]
    assert "view" not in plain_parts and parts["view"] > 0
    assert viewed == pytest.approx(plain + 0.5 * parts["view"], rel=1e-5)
    assert not torch.allclose(plain_grad, grad)
