"""The frame refiner: starts as the identity, learns to draw detail, and is an optional pipeline component."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from starcaster import STARCasterPipeline
from starcaster.models.refiner import FrameRefiner
from starcaster.training.batches import to_pixels
from starcaster.training.refiner import pair_batches, refiner_loss, to_uint8


def _portraits(count: int, size: int, offset: int = 0) -> torch.Tensor:
    from starcaster.data.synthtalk import IDENTITY_RANGES, reference_portrait

    low = IDENTITY_RANGES["train"][0] + offset
    return to_pixels(torch.from_numpy(np.stack([reference_portrait(low + i, size) for i in range(count)])))


def _blurred(pixels: torch.Tensor) -> torch.Tensor:
    """What the video model does to detail: 4×4 patches averaged (its token grid), then smoothed."""
    coarse = F.interpolate(F.avg_pool2d(pixels, 4), scale_factor=4, mode="bilinear", align_corners=False)
    return coarse.clamp(-1, 1)


def test_an_untrained_refiner_changes_nothing():
    refiner = FrameRefiner(channels=(8, 16))
    frames = torch.rand(3, 3, 32, 32) * 2 - 1
    out = refiner(frames, torch.rand(3, 3, 32, 32), torch.tensor([True, False, True]))
    assert torch.equal(out, frames)


def test_a_missing_portrait_is_not_read():
    refiner = FrameRefiner(channels=(8, 16))
    torch.nn.init.normal_(refiner.to_residual.weight, std=0.1)
    frames, absent = torch.zeros(2, 3, 32, 32), torch.zeros(2, dtype=torch.bool)
    a = refiner(frames, torch.rand(2, 3, 32, 32), absent)
    b = refiner(frames, -torch.rand(2, 3, 32, 32), absent)
    assert torch.equal(a, b)
    assert not torch.equal(a, refiner(frames, torch.rand(2, 3, 32, 32), ~absent))


def test_the_edge_term_penalises_blur_more_than_pixels_alone():
    sharp = _portraits(4, 32)
    blurred = _blurred(sharp)
    total, parts = refiner_loss(blurred, sharp, edge_weight=1.0)
    assert parts["edges"] > 0.3 * parts["l1"] and total.item() == pytest.approx(parts["l1"] + parts["edges"], rel=1e-5)
    assert refiner_loss(sharp, sharp, 1.0)[0].item() == 0.0


def test_refiner_learns_to_redraw_blurred_detail_from_the_portrait():
    """Held-out faces, shifted and blurred like the video model's frames, come back closer to the truth."""
    torch.manual_seed(0)
    train, held_out = _portraits(96, 32), _portraits(8, 32, offset=1000)

    def frames_of(portraits: torch.Tensor, shift: int) -> tuple[torch.Tensor, torch.Tensor]:
        truth = torch.roll(portraits, shifts=(shift, -shift), dims=(2, 3))  # a moved head: not pixel-aligned
        return _blurred(truth), truth

    refiner = FrameRefiner(channels=(16, 32, 64))
    optimizer = torch.optim.AdamW(refiner.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    for _ in range(200):
        pick = torch.from_numpy(rng.integers(0, len(train), 16))
        frames, truth = frames_of(train[pick], int(rng.integers(-1, 2)))
        loss, _ = refiner_loss(refiner(frames, train[pick], torch.ones(16, dtype=torch.bool)), truth, 1.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    frames, truth = frames_of(held_out, 1)
    with torch.no_grad():
        refined = refiner(frames, held_out, torch.ones(8, dtype=torch.bool))
    before, after = (frames - truth).abs().mean().item(), (refined - truth).abs().mean().item()
    assert after < 0.8 * before, (before, after)  # measured: 0.086 → 0.062


def test_pair_batches_draw_aligned_frames_with_their_window_portrait():
    windows = {
        "generated": (np.arange(2 * 3 * 4 * 4 * 3) % 200).astype(np.uint8).reshape(2, 3, 4, 4, 3),
        "portrait": np.stack([np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)]),
        "has_portrait": np.array([False, True]),
    }
    windows["truth"] = windows["generated"] + 1
    generated, truth, portrait, has = next(pair_batches(windows, 64, np.random.default_rng(0), "cpu"))
    assert torch.allclose(truth - generated, torch.full_like(truth, 2 / 255))  # the same frame of the same window
    assert torch.equal(has, portrait[:, 0, 0, 0] > 0)  # each frame carries its own window's portrait and flag
    assert to_uint8(generated).shape == (64, 4, 4, 3)


@pytest.fixture(scope="module")
def refined_pipe(tiny_pipe):
    """The tiny pipeline plus a refiner that brightens every frame (so its effect is visible)."""
    refiner = FrameRefiner(channels=(8, 16))
    torch.nn.init.constant_(refiner.to_residual.bias, 0.5)
    pipe = STARCasterPipeline(**{**tiny_pipe.components, "refiner": refiner})
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _frames(pipe, speech_wave, identity_vector, **options):
    options = {"identity_embedding": identity_vector, "generator": torch.Generator().manual_seed(0), **options}
    return pipe(speech_wave[:8000], **options).frames


def test_pipeline_refines_frames_unless_told_not_to(refined_pipe, tiny_pipe, speech_wave, identity_vector):
    plain = _frames(tiny_pipe, speech_wave, identity_vector)
    refined = _frames(refined_pipe, speech_wave, identity_vector)
    assert refined.shape == plain.shape and refined.astype(float).mean() > plain.astype(float).mean() + 20
    assert np.array_equal(_frames(refined_pipe, speech_wave, identity_vector, use_refiner=False), plain)
    latents = _frames(refined_pipe, speech_wave, identity_vector, output_type="latent")
    assert np.array_equal(latents, _frames(tiny_pipe, speech_wave, identity_vector, output_type="latent"))


def test_refiner_saves_and_loads_with_the_pipeline(refined_pipe, speech_wave, identity_vector, tmp_path):
    refined_pipe.save_pretrained(tmp_path)
    assert (tmp_path / "refiner" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = STARCasterPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert isinstance(loaded.refiner, FrameRefiner)
    expected = _frames(refined_pipe, speech_wave, identity_vector)
    assert np.array_equal(_frames(loaded, speech_wave, identity_vector), expected)


def test_cli_generate_and_eval_can_switch_the_refiner_off(refined_pipe, speech_wave, identity_vector, tmp_path):
    import soundfile as sf

    from starcaster.identity import save_embedding
    from tests.helpers import cli_generate

    refined_pipe.save_pretrained(tmp_path / "ckpt")
    sf.write(tmp_path / "speech.wav", speech_wave, 16_000)
    save_embedding(identity_vector, tmp_path / "identity.npy")

    def video(name: str, *extra: str) -> bytes:
        assert cli_generate(tmp_path / "ckpt", tmp_path, name, *extra) == 0
        return (tmp_path / name).read_bytes()

    refined = video("refined.mp4")
    assert video("again.mp4") == refined  # deterministic, so a difference below is the flag's
    assert video("plain.mp4", "--no-refiner") != refined
    assert cli_generate(tmp_path / "ckpt", tmp_path, "bad.mp4", "--refiner-smoothing", "1") == 2  # a usage error


def test_adversarial_terms_each_move_only_their_own_network():
    """One backward pass trains both: the critic's loss never reaches the refiner, the refiner's never the critic."""
    from starcaster.training.refiner import PatchCritic, adversarial_losses

    critic = PatchCritic(channels=(8, 16))
    frames, truth = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    refined = torch.rand(2, 3, 32, 32, requires_grad=True)
    critic_loss, fooling = adversarial_losses(critic, frames, refined, truth)
    fooling.backward(retain_graph=True)
    assert refined.grad.abs().sum() > 0 and all(p.grad is None for p in critic.parameters())
    refined.grad = None
    critic_loss.backward()
    assert refined.grad is None and all(p.grad is not None for p in critic.parameters())


def test_temporal_refinement_smooths_corrections_across_chunks():
    """The correction is an exponential moving average over the run's frames, however they are chunked."""
    from starcaster.models.refiner import TemporalRefinement

    torch.manual_seed(0)
    refiner = FrameRefiner(channels=(8, 16))
    torch.nn.init.normal_(refiner.to_residual.weight, std=0.05)
    frames = torch.rand(8, 3, 32, 32) * 2 - 1
    portrait, flag = torch.rand(1, 3, 32, 32), torch.ones(1, dtype=torch.bool)

    alone = TemporalRefinement(portrait, flag, smoothing=0.0)(refiner, frames)
    with torch.no_grad():
        assert torch.equal(alone, refiner(frames, portrait.expand(8, -1, -1, -1), flag.expand(8)))
        whole = TemporalRefinement(portrait, flag, smoothing=0.5)(refiner, frames)
        run = TemporalRefinement(portrait, flag, smoothing=0.5)
        chunked = torch.cat([run(refiner, frames[:4]), run(refiner, frames[4:])])
    assert torch.allclose(whole, chunked)
    corrections = (alone - frames).clamp(-2, 2)
    expected = corrections[0]
    for t in range(1, 8):
        expected = 0.5 * corrections[t] + 0.5 * expected
    assert torch.allclose(whole[-1], (frames[-1] + expected).clamp(-1, 1), atol=1e-6)
    # smoother: the refined video changes less from frame to frame than with per-frame refinement
    assert (whole.diff(dim=0).abs().mean() < alone.diff(dim=0).abs().mean()).item()


@pytest.mark.parametrize("value", [1.0, -0.1, float("nan")])
def test_refiner_smoothing_is_checked(refined_pipe, speech_wave, identity_vector, value):
    from starcaster.errors import InputError

    with pytest.raises(InputError, match="refiner_smoothing"):
        _frames(refined_pipe, speech_wave, identity_vector, refiner_smoothing=value)
