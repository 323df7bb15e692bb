"""The one rollout (models/rollout.py): training rolls out exactly as inference does."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from starcaster.models.rollout import NoiseSource, Rollout, Sink, draw_rows
from starcaster.models.sampling import denoise_chunk, denoise_steps, guided_conditions
from starcaster.request import GenerationRequest
from starcaster.training.batches import Batch
from starcaster.training.config import StageConfig
from starcaster.training.self_forcing import rollout_chunks, self_forcing_step
from starcaster.training.step_context import StepContext

PORTRAIT = Path(__file__).resolve().parents[1] / "examples" / "portraits" / "portrait_0.png"
FRAMES, CHUNK, FPS = 12, 4, 25


@pytest.fixture(scope="module")
def pipe():
    """A tiny random pipeline in eval mode (its own: the session's ``tiny_pipe`` is shared)."""
    from starcaster import build_pipeline

    pipe = build_pipeline("tiny", seed=3)
    pipe.unet.eval()
    return pipe


def _speech(frames: int) -> np.ndarray:
    t = np.arange(frames * 16_000 // FPS) / 16_000
    return (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def _training_batch(pipe, request: GenerationRequest) -> Batch:
    """What the pipeline conditions on, as a training batch of one video (ground truth unused)."""
    prep = pipe._prepare(request)
    features = prep.features.fetch(0, FRAMES)  # [F, W, M]
    views = np.stack(prep.steering.views(0, FRAMES, FPS), -1).astype(np.float32)  # [F, 2]
    cfg = pipe.unet.config
    latents = torch.zeros(1, FRAMES, cfg.latent_channels, cfg.sample_size, cfg.sample_size)
    reference = prep.reference_latents if prep.reference_latents is not None else torch.zeros_like(latents[:, :1])
    return Batch(latents=latents, pixels=torch.zeros(1, FRAMES, 3, 32, 32), reference=reference,
                 reference_pixels=torch.zeros(1, 3, 32, 32), identity=prep.identity,
                 audio=torch.from_numpy(features)[None], views=torch.from_numpy(views)[None],
                 has_audio=torch.ones(1, dtype=torch.bool), weights=torch.ones_like(latents[:, :, :1]))  # fmt: skip


@pytest.mark.parametrize("mode", ["identity", "reference"])
def test_training_rollout_reproduces_the_pipeline_bit_for_bit(pipe, identity_vector, mode):
    """Self-forcing's rollout with gradients off = the pipeline's latents, exactly, on the same seed:
    same sink, same noise (torch's global generator seeded as the user's generator), same sharing,
    same sampler and window. Only the chunks' sources of randomness differ, and not their numbers."""
    identity = {"identity_embedding": identity_vector} if mode == "identity" else {"image": PORTRAIT}
    settings = dict(audio=_speech(FRAMES), chunk_length=CHUNK, num_inference_steps=2, noise_sharing=0.5,
                    context_frames=4, azimuth=20.0, elevation=-5.0, avatar="never", **identity)  # fmt: skip
    generated = pipe(**settings, generator=torch.Generator().manual_seed(11), output_type="latent").frames
    assert generated.shape[0] == FRAMES

    batch = _training_batch(pipe, GenerationRequest(**settings))
    stage = StageConfig("sf", 1, kind="self_forcing", chunk_length=CHUNK, rollout_chunks=FRAMES // CHUNK,
                        train_window=4, noise_sharing=0.5, num_inference_steps=2)  # fmt: skip
    ctx = StepContext(pipe.unet, copy.deepcopy(pipe.scheduler), None, stage, np.random.default_rng(0))
    sink = Sink.at(batch.reference, batch.identity) if mode == "reference" else None
    torch.manual_seed(11)
    with torch.no_grad():
        trained = torch.cat([chunk.clean for _, chunk in rollout_chunks(ctx, batch, sink)], 1)
    assert torch.equal(trained[0], torch.from_numpy(np.asarray(generated)))


def _counting_forwards(module: torch.nn.Module) -> list[bool]:
    """Record, for every forward of ``module``, whether it ran with gradients."""
    calls: list[bool] = []
    module.register_forward_hook(lambda *_: calls.append(torch.is_grad_enabled()))
    return calls


def _tiny_unet():
    from starcaster.models.configs import get_preset
    from starcaster.models.unet import STARCasterUNet

    torch.manual_seed(0)
    return STARCasterUNet(**{**get_preset("tiny").unet, "audio_dropout": 0.0})


def _random_batch(frames: int) -> Batch:
    g = torch.Generator().manual_seed(1)
    r = lambda *shape: torch.randn(*shape, generator=g)  # noqa: E731
    return Batch(latents=r(2, frames, 4, 16, 16), pixels=r(2, frames, 3, 32, 32).clamp(-1, 1),
                 reference=r(2, 1, 4, 16, 16), reference_pixels=r(2, 3, 32, 32).clamp(-1, 1),
                 identity=torch.nn.functional.normalize(r(2, 512), dim=-1), audio=r(2, frames, 3, 16),
                 views=r(2, frames, 2) * 10, has_audio=torch.ones(2, dtype=torch.bool),
                 weights=torch.ones(2, frames, 1, 16, 16))  # fmt: skip


def test_self_forcing_gradient_flows_through_one_denoising_step_per_chunk():
    from diffusers import DDIMScheduler

    from starcaster.models.configs import get_preset

    unet = _tiny_unet().train()
    denoiser, encoder = _counting_forwards(unet.backbone), _counting_forwards(unet.reference_net)
    stage = StageConfig("sf", 1, kind="self_forcing", chunk_length=2, rollout_chunks=3, train_window=4,
                        reference_prob=1.0, num_inference_steps=3, noise_sharing=1.0)  # fmt: skip
    ctx = StepContext(unet, DDIMScheduler(**get_preset("tiny").scheduler), None, stage, np.random.default_rng(0))
    loss, _ = self_forcing_step(ctx, _random_batch(6))
    assert len(denoiser) == 3 * 3 and sum(denoiser) == 3  # 3 chunks × 3 steps, one with gradients per chunk
    assert encoder and not any(encoder)  # the sink and every context write: no gradients
    loss.backward()
    assert unet.backbone.conv_in.weight.grad.abs().sum() > 0
    assert unet.identity_proj.null_tokens.grad is None  # nothing is dropped: the null tokens stay out of the graph


def test_the_gradient_step_changes_no_numbers():
    """``denoise_steps`` with a gradient step returns the chunk ``denoise_chunk`` returns, and that step's x0."""
    from diffusers import DDIMScheduler

    from starcaster.models.configs import get_preset
    from starcaster.models.sampling import Guidance

    unet = _tiny_unet().eval()
    scheduler = DDIMScheduler(**get_preset("tiny").scheduler)
    batch = _random_batch(2)
    conditions = guided_conditions(unet, batch.identity, batch.audio, batch.views, Guidance())
    noise = torch.randn(2, 2, 4, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        plain = denoise_chunk(unet, scheduler, noise, conditions, None, 3)
    prediction, clean = denoise_steps(unet, scheduler, noise, conditions, None, 3, gradient_step=2)
    assert torch.equal(clean, plain) and not clean.requires_grad
    assert prediction.requires_grad and torch.equal(prediction.detach(), plain)  # the last step's x0 is the chunk


def test_starting_noise_sharing_and_data_parallel_rows():
    unet = _tiny_unet().eval()
    whole = draw_rows((4, 3, 2), torch.Generator().manual_seed(5), "cpu")
    halves = [draw_rows((2, 3, 2), torch.Generator().manual_seed(5), "cpu", rank=r, world=2) for r in range(2)]
    assert torch.equal(torch.cat(halves), whole)  # N processes draw exactly one process's noise

    def first_noise(sharing: float) -> torch.Tensor:
        noise = NoiseSource((1, 4, 16, 16), torch.Generator().manual_seed(9))
        return Rollout(unet, None, noise, 1, 4, noise_sharing=sharing).starting_noise(3)

    shared = first_noise(1.0)
    assert torch.equal(shared[:, 0], shared[:, 2])  # one image for every frame
    own = first_noise(0.0)
    assert not torch.equal(own[:, 0], own[:, 1])
    mixed = first_noise(0.25)
    torch.testing.assert_close(mixed, 0.5 * shared + np.sqrt(0.75) * own)


def test_an_own_context_checkpoint_caches_its_denoising_pass_and_encodes_only_the_portrait(pipe, tmp_path):
    """``context_source="denoiser"`` (the live student's design): saved and loaded with the checkpoint; a
    video runs the reference encoder once (the portrait) instead of once per chunk, its cache entries have
    the shape the encoder's would (camera guidance on: the full-conditions pass's rows are kept), the
    frames follow that cache, and the recompute mode (which re-encodes frames) is refused clearly."""
    from starcaster import STARCasterPipeline
    from starcaster.errors import InputError
    from starcaster.training.distillation import student_from

    own = student_from(pipe.unet, {"context_source": "denoiser"})
    own.load_state_dict(pipe.unet.state_dict())
    folder = tmp_path / "own"
    pipe.save_pretrained(folder)
    own.save_pretrained(folder / "unet")  # the same pipeline, its UNet caching its own passes
    loaded = STARCasterPipeline.from_pretrained(folder)
    assert loaded.unet.config.context_source == "denoiser" and loaded.unet.context_from_denoiser

    settings = dict(audio=_speech(FRAMES), image=PORTRAIT, chunk_length=CHUNK, num_inference_steps=1,
                    guidance_scale_camera=2.0, avatar="never", output_type="latent")  # fmt: skip
    counts, frames = {}, {}
    for name, p in (("reference", pipe), ("denoiser", loaded)):
        encoder = _counting_forwards(p.unet.reference_net)
        frames[name] = np.asarray(p(**settings, generator=torch.Generator().manual_seed(4)).frames)
        counts[name] = len(encoder)
    assert counts["denoiser"] == 1 and counts["reference"] >= 1 + FRAMES // CHUNK - 1
    assert not np.allclose(frames["denoiser"][CHUNK:], frames["reference"][CHUNK:])  # later chunks read another cache
    np.testing.assert_allclose(frames["denoiser"][:CHUNK], frames["reference"][:CHUNK], atol=1e-5)  # same sink

    batch = _random_batch(CHUNK)
    rollout = Rollout(loaded.unet, copy.deepcopy(loaded.scheduler), NoiseSource((2, 4, 16, 16)), 1, 8,
                      Sink.at(batch.reference, batch.identity))  # fmt: skip
    with torch.no_grad():
        done = rollout.chunk(batch.identity, batch.audio, batch.views)
        encoded = loaded.unet.encode_context(done.clean, done.conditions)
    window = rollout.context.cache().window
    assert {n: k.shape for n, (k, _) in window.items()} == {n: k.shape for n, (k, _) in encoded.items()}

    with pytest.raises(InputError, match="recompute"):
        loaded(**{**settings, "context_mode": "recompute"})
