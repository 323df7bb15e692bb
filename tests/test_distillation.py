"""Distillation into a lighter student (``training/distillation.py``): the step computes what inference
computes, it teaches the student's denoiser *and* reference encoder, and the student is built right."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler

from starcaster.models.configs import get_preset
from starcaster.models.unet import STARCasterUNet
from starcaster.training.batches import Batch
from starcaster.training.config import StageConfig
from starcaster.training.distillation import PROJECTORS, distill_step, student_from
from starcaster.training.step_context import StepContext

NARROW = {"block_out_channels": (8, 16), "attention_heads": 1, "norm_num_groups": 4}


def _teacher(**changes) -> STARCasterUNet:
    torch.manual_seed(0)
    teacher = STARCasterUNet(**{**get_preset("tiny").unet, "reference_concat": True, **changes})
    with torch.no_grad():  # zero-initialised parts (age embeddings, reference channels) made to matter
        for name, param in teacher.named_parameters():
            if "age_embedding" in name or name == "backbone.conv_in.weight":
                param.normal_(0, 0.1)
    return teacher.eval().requires_grad_(False)


def _batch(batch: int = 2, frames: int = 6, latent_channels: int | None = None) -> Batch:
    cfg = get_preset("tiny").unet
    g = torch.Generator().manual_seed(1)
    shape = (latent_channels or cfg["latent_channels"], cfg["sample_size"], cfg["sample_size"])
    return Batch(
        latents=torch.randn(batch, frames, *shape, generator=g),
        pixels=torch.zeros(batch, frames, 3, 32, 32),
        reference=torch.randn(batch, 1, *shape, generator=g),
        reference_pixels=torch.zeros(batch, 3, 32, 32),
        identity=torch.nn.functional.normalize(torch.randn(batch, 512, generator=g), dim=-1),
        audio=torch.randn(batch, frames, 2 * cfg["audio_context"] + 1, cfg["audio_n_mels"], generator=g),
        views=torch.randn(batch, frames, 2, generator=g) * 20,
        has_audio=torch.ones(batch, dtype=torch.bool),
        weights=torch.ones(batch, frames, 1, cfg["sample_size"], cfg["sample_size"]),
    )


def _context(student: STARCasterUNet, teacher: STARCasterUNet, **stage) -> StepContext:
    settings = dict(name="distill", steps=1, kind="distill", chunk_length=2, rollout_chunks=3, train_window=2)
    return StepContext(
        student,
        DDIMScheduler(**get_preset("tiny").scheduler),
        vae=None,
        stage=StageConfig(**{**settings, "num_inference_steps": 1, **stage}),
        rng=np.random.default_rng(0),
        teacher=teacher,
    )


def _twin(teacher: STARCasterUNet, **changes) -> STARCasterUNet:
    twin = student_from(teacher, changes)
    twin.load_state_dict(teacher.state_dict())
    return twin.eval()


@pytest.mark.parametrize("own", [0.0, 1.0], ids=["teacher-forced", "on-policy"])
@pytest.mark.parametrize("steps", [1, 2])
def test_a_student_identical_to_its_teacher_has_zero_loss(steps, own):
    """Train/inference match: the student's cache (portrait + previous frames, through its own reference
    encoder), noise and sampler reproduce the teacher's inference rollout (``Rollout``) exactly, chunk by
    chunk; on its own rollout too (the teacher's target given the student's frames)."""
    teacher = _teacher()
    torch.manual_seed(3)
    ctx = _context(_twin(teacher), teacher, num_inference_steps=steps, on_policy_prob=own)
    loss, parts = distill_step(ctx, _batch())
    assert loss.item() < 1e-10 and parts["mse"] < 1e-10

    other = student_from(teacher, NARROW).eval()  # a different network: a real loss
    torch.manual_seed(3)
    ctx = _context(other, teacher, num_inference_steps=steps, on_policy_prob=own)
    assert distill_step(ctx, _batch())[0].item() > 1e-3


@pytest.mark.parametrize("steps", [1, 2])
def test_an_own_context_student_trains_on_the_cache_inference_builds(steps):
    """A ``context_source="denoiser"`` student caches its own passes' keys/values: identical to an
    own-context teacher it has zero loss against that teacher's inference rollout (so training builds the
    cache exactly as ``Rollout`` does), and the same weights reading a reference-encoded cache do not."""
    teacher = _twin(_teacher(), context_source="denoiser")
    torch.manual_seed(3)
    loss, _ = distill_step(_context(_twin(teacher), teacher, num_inference_steps=steps), _batch())
    assert loss.item() < 1e-10
    torch.manual_seed(3)
    loss, _ = distill_step(
        _context(_twin(teacher, context_source="reference"), teacher, num_inference_steps=steps), _batch()
    )
    assert loss.item() > 1e-6


def test_on_policy_targets_are_the_teachers_given_the_students_frames(monkeypatch):
    """On its own rollout the student's context is its own (detached) output, and the teacher is asked
    for the same chunk from that same context."""
    from starcaster.training import distillation

    teacher, student = _teacher(), student_from(_teacher(), NARROW).eval()
    predicted, written = [], []
    chunk, entry = distillation.predicted_chunk, STARCasterUNet.context_entry

    def spy_chunk(unet, *args, **kwargs):
        out = chunk(unet, *args, **kwargs)
        predicted.append((unet is teacher, out.detach().clone()))
        return out

    def spy_entry(unet, clean, conditions, own=None):
        written.append((unet is teacher, clean.clone()))
        return entry(unet, clean, conditions, own)

    monkeypatch.setattr(distillation, "predicted_chunk", spy_chunk)
    monkeypatch.setattr(STARCasterUNet, "context_entry", spy_entry)
    distill_step(_context(student, teacher, on_policy_prob=1.0), _batch())
    assert [is_teacher for is_teacher, _ in predicted] == [False, True] * 3
    assert [is_teacher for is_teacher, _ in written] == [False, True] * 2  # the last chunk is not written
    for k in (0, 1):  # after chunk k both caches hold the student's chunk k
        chunk_k = predicted[2 * k][1]
        assert torch.equal(written[2 * k][1], chunk_k) and torch.equal(written[2 * k + 1][1], chunk_k)


@pytest.mark.parametrize("source", ["reference", "denoiser"])
def test_distillation_trains_denoiser_and_reference_encoder_toward_the_teacher(source):
    """Both students learn the teacher; the reference encoder gets gradients (for an own-context student
    through the portrait alone: it encodes nothing else)."""
    teacher = _teacher()
    student = student_from(teacher, {**NARROW, "context_source": source}).train()
    ctx, batch = _context(student, teacher), _batch()
    optimizer = torch.optim.Adam(student.parameters(), lr=3e-3)
    losses = []
    for step in range(40):
        torch.manual_seed(step % 2)  # two fixed starting noises
        loss, _ = distill_step(ctx, batch)
        optimizer.zero_grad()
        loss.backward()
        if step == 0:
            reference_grads = [p.grad for p in student.reference_net.parameters() if p.grad is not None]
            assert reference_grads and any(g.abs().sum() > 0 for g in reference_grads)  # the context path learns
            assert all(p.grad is None for p in teacher.parameters())
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-4:]) < 0.5 * np.mean(losses[:4])


def test_an_own_context_students_gradient_reaches_back_through_the_keys_values_it_cached(monkeypatch):
    """A chunk's loss trains the passes over earlier chunks through the keys/values they left in the cache:
    cutting that path (detaching the cache entries) changes the weights' gradients."""

    teacher = _teacher()
    student = student_from(teacher, {**NARROW, "context_source": "denoiser"}).train()

    def gradients() -> torch.Tensor:
        student.zero_grad()
        torch.manual_seed(0)
        distill_step(_context(student, teacher), _batch())[0].backward()
        return torch.cat([p.grad.flatten() for p in student.backbone.parameters() if p.grad is not None])

    through = gradients()
    entry = STARCasterUNet.context_entry
    monkeypatch.setattr(
        STARCasterUNet, "context_entry",
        lambda *a: {n: (k.detach(), v.detach()) for n, (k, v) in entry(*a).items()},
    )  # fmt: skip
    cut = gradients()
    assert through.shape == cut.shape and not torch.allclose(through, cut)


def test_student_has_the_teachers_interface_and_condition_projectors():
    teacher = _teacher()
    student = student_from(teacher, NARROW)
    assert tuple(student.config.block_out_channels) == (8, 16) and student.config.attention_heads == 1
    for key in ("reference_concat", "latent_channels", "cross_attention_dim", "audio_n_mels", "max_context_frames"):
        assert student.config[key] == teacher.config[key]
    for name in PROJECTORS:
        for a, b in zip(getattr(teacher, name).state_dict().values(), getattr(student, name).state_dict().values()):
            assert torch.equal(a, b)
    assert sum(p.numel() for p in student.backbone.parameters()) < sum(p.numel() for p in teacher.backbone.parameters())


def test_a_continued_student_takes_only_changes_that_keep_its_weights(tmp_path):
    """A ``distill`` stage after another continues its student: ``student:`` changes that keep every weight's
    shape apply to the finished student's weights; a new width is refused with a clear message."""
    from starcaster.training.config import RecipeConfig
    from starcaster.training.recipe import _initial_unet

    first = student_from(_teacher(), NARROW)
    first.save_pretrained(tmp_path / "run" / "distill" / "final")
    stage = lambda name, **kw: StageConfig(name, 1, kind="distill", **kw)  # noqa: E731
    cfg = RecipeConfig(
        out=tmp_path / "run", stages=[stage("distill"), stage("live", student={"context_source": "denoiser"})]
    )
    live = _initial_unet(cfg, 1)
    assert live.context_from_denoiser
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), live.state_dict().values()))
    cfg.stages[1] = stage("live", student={"block_out_channels": (8, 24)})
    with pytest.raises(ValueError, match="keep the weights' shapes"):
        _initial_unet(cfg, 1)
