"""STARCasterPipeline end to end on a tiny random checkpoint: AR chunks, cache, views, Hub loading."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from starcaster import InputError, OfflineError, STARCasterPipeline
from starcaster.audio import num_video_frames
from starcaster.models.weight_storage import channels_last_weights
from tests.helpers import install_into_hf_cache


def _run(pipe, wave, embedding, seed=0, **kwargs):
    return pipe(wave, identity_embedding=embedding, generator=torch.Generator().manual_seed(seed), **kwargs)


def test_output_shapes_dtypes_and_sync(tiny_pipe, speech_wave, identity_vector):
    out = _run(tiny_pipe, speech_wave, identity_vector)
    frames = num_video_frames(len(speech_wave), 25)
    assert out.frames.shape == (frames, 32, 32, 3) and out.frames.dtype == np.uint8
    assert out.azimuth.shape == out.elevation.shape == (frames,)
    assert out.audio is not None and len(out.audio) == len(speech_wave) and out.sample_rate == 16_000
    np.testing.assert_allclose(np.linalg.norm(out.identity_embedding), 1.0, rtol=1e-5)


def test_same_seed_is_bit_identical_and_other_seed_differs(tiny_pipe, speech_wave, identity_vector):
    a = _run(tiny_pipe, speech_wave, identity_vector, seed=3).frames
    b = _run(tiny_pipe, speech_wave, identity_vector, seed=3).frames
    c = _run(tiny_pipe, speech_wave, identity_vector, seed=4).frames
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("window", [2, None])
def test_kv_cache_equals_full_causal_recompute(tiny_pipe, speech_wave, identity_vector, window):
    """Reusing cached keys/values == re-encoding the causal context before every chunk."""
    kwargs = dict(output_type="latent", chunk_length=3, context_frames=window)
    cached = _run(tiny_pipe, speech_wave, identity_vector, **kwargs).frames
    recomputed = _run(tiny_pipe, speech_wave, identity_vector, context_mode="recompute", **kwargs).frames
    np.testing.assert_allclose(cached, recomputed, atol=1e-5)


def test_context_actually_conditions_later_chunks(tiny_pipe, speech_wave, identity_vector):
    with_context = _run(tiny_pipe, speech_wave, identity_vector, output_type="latent", context_frames=4).frames
    no_window = _run(tiny_pipe, speech_wave, identity_vector, output_type="latent", context_frames=0).frames
    np.testing.assert_array_equal(with_context[:4], no_window[:4])  # first chunk: same sink-free start
    assert np.abs(with_context[8:] - no_window[8:]).max() > 1e-4


@pytest.mark.parametrize("chunk_length", [1, 2, 4, 8])
def test_chunk_lengths_cover_every_frame_with_a_partial_last_chunk(tiny_pipe, identity_vector, chunk_length):
    wave = np.random.default_rng(0).standard_normal(int(16_000 * 0.44)).astype(np.float32) * 0.1  # 11 frames
    chunks = list(tiny_pipe.stream(wave, identity_embedding=identity_vector, chunk_length=chunk_length))
    assert [c.start for c in chunks] == list(range(0, 11, chunk_length))
    assert sum(len(c.frames) for c in chunks) == 11
    assert len(chunks[-1].frames) == 11 - chunk_length * (len(chunks) - 1)
    assert all(c.num_chunks == len(chunks) and c.total_frames == 11 for c in chunks)


def test_audio_shorter_than_one_chunk(tiny_pipe, identity_vector):
    out = tiny_pipe(np.zeros(800, np.float32), identity_embedding=identity_vector, chunk_length=8)  # 0.05 s
    assert out.frames.shape[0] == 2


def test_scalar_and_per_frame_views(tiny_pipe, speech_wave, identity_vector):
    scalar = _run(tiny_pipe, speech_wave, identity_vector, azimuth=30.0, elevation=-10.0)
    n = len(scalar.frames)
    per_frame = _run(tiny_pipe, speech_wave, identity_vector, azimuth=np.full(n, 30.0), elevation=np.full(n, -10.0))
    assert np.array_equal(scalar.frames, per_frame.frames)
    moving = _run(tiny_pipe, speech_wave, identity_vector, azimuth=np.linspace(-60, 60, n))
    np.testing.assert_allclose(moving.azimuth, np.linspace(-60, 60, n), rtol=1e-6)
    with pytest.raises(InputError, match="one value per video frame"):
        _run(tiny_pipe, speech_wave, identity_vector, azimuth=np.zeros(n + 1))


@pytest.mark.parametrize("path", ["static", "orbit", "nod", "sweep"])
def test_camera_paths(tiny_pipe, speech_wave, identity_vector, path):
    out = _run(tiny_pipe, speech_wave, identity_vector, camera_path=path, elevation=5.0)
    n = len(out.frames)
    if path == "sweep":  # one instant seen from a view sweep: no audio track, 2 s of views
        assert out.audio is None and n == 50
        assert out.azimuth[0] == pytest.approx(-60) and out.azimuth[-1] == pytest.approx(60)
    else:
        assert n == num_video_frames(len(speech_wave), 25)
    if path == "orbit":
        assert np.ptp(out.azimuth) > 300
    if path == "nod":
        assert np.ptp(out.elevation) > 20
    if path == "static":
        assert np.all(out.azimuth == 0) and np.all(out.elevation == 5)


def test_sweep_is_one_moment(tiny_pipe, speech_wave, identity_vector):
    out = _run(
        tiny_pipe, speech_wave, identity_vector, camera_path="sweep", num_frames=6, sweep_time=0.5, output_type="latent"
    )
    assert out.frames.shape[0] == 6
    with pytest.raises(InputError, match="outside the audio"):
        _run(tiny_pipe, speech_wave, identity_vector, camera_path="sweep", sweep_time=9.0)


def test_exactly_one_identity_source(tiny_pipe, speech_wave, identity_vector):
    with pytest.raises(InputError, match="got neither"):
        tiny_pipe(speech_wave)
    with pytest.raises(InputError, match="got both"):
        tiny_pipe(speech_wave, identity_embedding=identity_vector, image=np.zeros((64, 64, 3), np.uint8))


def test_shared_noise_removes_frame_to_frame_sampling_flicker(tiny_pipe, identity_vector):
    """Same conditions + one shared noise image → near-identical frames; independent noise → they differ."""
    silence = np.zeros(int(16_000 * 0.32), np.float32)  # 8 frames of identical audio
    change = {}
    for sharing in (0.0, 1.0):
        latents = _run(tiny_pipe, silence, identity_vector, output_type="latent", noise_sharing=sharing).frames
        change[sharing] = float(np.abs(np.diff(latents[:4], axis=0)).mean())  # within the first chunk
    assert change[1.0] < 0.2 * change[0.0]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (dict(chunk_length=0), "chunk_length"),
        (dict(chunk_length=17), "chunk_length"),
        (dict(num_inference_steps=0), "num_inference_steps"),
        (dict(fps=0), "fps"),
        (dict(context_frames=99), "context_frames"),
        (dict(guidance_scale_audio=float("nan")), "guidance_scale_audio"),
        (dict(guidance_scale_camera=-1.0), "guidance_scale_camera"),
        (dict(camera_path="spiral"), "camera_path"),
        (dict(noise_sharing=1.5), "noise_sharing"),
        (dict(noise_sharing=float("nan")), "noise_sharing"),
    ],
)
def test_bad_settings_raise_input_error(tiny_pipe, speech_wave, identity_vector, setting, message):
    with pytest.raises(InputError, match=message):
        _run(tiny_pipe, speech_wave, identity_vector, **setting)


def test_guidance_runs_extra_passes_and_changes_the_output(tiny_pipe, speech_wave, identity_vector):
    plain = _run(tiny_pipe, speech_wave, identity_vector, output_type="latent").frames
    guided = _run(
        tiny_pipe,
        speech_wave,
        identity_vector,
        output_type="latent",
        guidance_scale_audio=3.0,
        guidance_scale_identity=2.0,
    ).frames
    assert plain.shape == guided.shape and np.abs(plain - guided).max() > 1e-5


def test_camera_guidance_combines_a_pass_without_the_camera():
    from starcaster.models.sampling import Guidance

    full, no_audio, none, no_camera = (torch.full((1,), v) for v in (4.0, 3.0, 1.0, 2.0))
    assert len(Guidance(camera=2.0).passes()) == 2 and not Guidance(camera=2.0).passes()[1]["camera"]
    assert Guidance(camera=2.0).combine([full, no_camera]).item() == 4.0 + (4.0 - 2.0)
    every = Guidance(audio=2.0, identity=3.0, camera=1.5)
    assert [p["camera"] for p in every.passes()] == [True, True, True, False]
    expected = 1.0 + 3.0 * (3.0 - 1.0) + 2.0 * (4.0 - 3.0) + 0.5 * (4.0 - 2.0)
    assert every.combine([full, no_audio, none, no_camera]).item() == expected


def test_camera_guidance_changes_the_output(tiny_pipe, speech_wave, identity_vector):
    import copy

    from starcaster.training.view_adaptation import trainable_parameters

    pipe = copy.deepcopy(tiny_pipe)  # the random camera stream starts at zero: give it weights
    with torch.no_grad():
        for param in trainable_parameters(pipe.unet, "camera"):
            param.copy_(torch.randn_like(param) * 0.2)
    kwargs = dict(output_type="latent", azimuth=40.0)
    plain = _run(pipe, speech_wave, identity_vector, **kwargs).frames
    guided = _run(pipe, speech_wave, identity_vector, guidance_scale_camera=2.0, **kwargs).frames
    assert np.abs(plain - guided).max() > 1e-5


def test_image_mode_uses_the_reference_as_cache_sink(tiny_pipe, speech_wave):
    portrait = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    # a noise picture stands in for a portrait: animate it as it is, not as its avatar (tests/test_avatar.py)
    out = tiny_pipe(
        speech_wave, image=portrait, generator=torch.Generator().manual_seed(0), output_type="latent", avatar="never"
    )
    by_embedding = _run(tiny_pipe, speech_wave, out.identity_embedding, output_type="latent")
    # Same identity vector, but image mode also attends to the reference frame from chunk 1.
    assert np.abs(out.frames[:4] - by_embedding.frames[:4]).max() > 1e-5


def test_callback_sees_every_chunk(tiny_pipe, speech_wave, identity_vector):
    seen = []
    _run(tiny_pipe, speech_wave, identity_vector, callback_on_chunk_end=lambda pipe, chunk: seen.append(chunk.index))
    assert seen == list(range(len(seen))) and len(seen) == 9


def test_save_and_load_from_folder(tiny_pipe, tiny_checkpoint, speech_wave, identity_vector):
    """Saved and loaded, the pipeline makes exactly the frames it made before, once its per-chunk models
    hold the layout loading gives them (channels-last convolution weights: other float rounding)."""
    loaded = STARCasterPipeline.from_pretrained(tiny_checkpoint)
    loaded.set_progress_bar_config(disable=True)
    original = copy.deepcopy(tiny_pipe)
    channels_last_weights(original.unet)
    assert np.array_equal(
        _run(loaded, speech_wave, identity_vector).frames, _run(original, speech_wave, identity_vector).frames
    )


def test_load_by_repo_id_from_local_hf_cache_offline(tiny_checkpoint, speech_wave, identity_vector):
    from huggingface_hub import constants

    assert constants.HF_HUB_OFFLINE
    install_into_hf_cache(tiny_checkpoint, "starcaster/tiny-test", constants.HF_HUB_CACHE)
    by_id = STARCasterPipeline.from_pretrained("starcaster/tiny-test")
    by_revision = STARCasterPipeline.from_pretrained("starcaster/tiny-test@main")
    for pipe in (by_id, by_revision):
        pipe.set_progress_bar_config(disable=True)
        assert _run(pipe, speech_wave, identity_vector).frames.shape[1:] == (32, 32, 3)


def test_uncached_repo_offline_is_a_clear_error():
    with pytest.raises(OfflineError, match=r"not in the local Hugging Face cache.*python -m starcaster download"):
        STARCasterPipeline.from_pretrained("someone/not-cached")


def test_trim_silence_and_audio_limit(tiny_pipe, speech_wave, identity_vector):
    padded = np.concatenate([np.zeros(16_000, np.float32), speech_wave, np.zeros(16_000, np.float32)])
    full = _run(tiny_pipe, padded, identity_vector, output_type="latent", num_inference_steps=1)
    trimmed = _run(tiny_pipe, padded, identity_vector, output_type="latent", num_inference_steps=1, trim_silence=True)
    assert len(trimmed.frames) < len(full.frames) - 40  # about 2 s of silence removed
    with pytest.raises(InputError, match="long"):
        _run(tiny_pipe, padded, identity_vector, max_audio_seconds=1.0)


def test_reference_concat_model_reads_the_portrait_only_in_image_mode(tiny_pipe, speech_wave):
    from starcaster.models.unet import with_reference_concat

    unet = with_reference_concat(tiny_pipe.unet)
    with torch.no_grad():
        unet.backbone.conv_in.weight[:, tiny_pipe.unet.config.latent_channels :].normal_(std=0.5)
    pipe = STARCasterPipeline(
        unet=unet.eval(), vae=tiny_pipe.vae, scheduler=tiny_pipe.scheduler, identity_encoder=tiny_pipe.identity_encoder
    )
    pipe.set_progress_bar_config(disable=True)
    portrait = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    a, before = (
        p(speech_wave, image=portrait, generator=torch.Generator().manual_seed(0), output_type="latent", avatar="never")
        for p in (pipe, tiny_pipe)
    )
    assert a.frames.shape == before.frames.shape and np.abs(a.frames - before.frames).max() > 1e-4
    # identity-only mode gets zeros in the reference channels: same as the unconverted weights there
    embedding = a.identity_embedding
    plain = _run(tiny_pipe, speech_wave, embedding, output_type="latent").frames
    converted = _run(pipe, speech_wave, embedding, output_type="latent").frames
    np.testing.assert_allclose(converted, plain, atol=1e-5)
