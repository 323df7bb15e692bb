"""The pixel-unshuffle autoencoder of the ``demo`` preset: exact, and a drop-in ``vae`` component."""

import json

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL

from starcaster.models.autoencoders import build_vae, is_learned, load_vae_folder
from starcaster.models.configs import get_preset
from starcaster.models.pixel_vae import PixelUnshuffleVAE
from starcaster.pipeline import STARCasterPipeline
from starcaster.presets import build_pipeline


def test_round_trip_is_exact_and_keeps_the_unet_grid():
    vae = PixelUnshuffleVAE(downscale_factor=4, sample_size=64)
    pixels = torch.rand(3, 3, 64, 64) * 2 - 1
    posterior = vae.encode(pixels).latent_dist
    assert posterior.mode().shape == (3, 48, 16, 16) == (3, vae.latent_channels, 16, 16)
    assert torch.equal(vae.decode(posterior.mode()).sample, pixels)
    # The trainer samples the posterior and reads its KL: a point mass, so both are (numerically) trivial.
    assert torch.allclose(posterior.sample(), posterior.mode(), atol=1e-5)
    # Each latent cell is one 4×4 patch: changing a pixel changes exactly one cell.
    poked = pixels.clone()
    poked[0, 1, 37, 9] += 0.5
    changed = (vae.encode(poked).latent_dist.mode() != posterior.mode()).nonzero()
    assert changed.tolist() == [[0, 1 * 16 + (37 % 4) * 4 + 9 % 4, 37 // 4, 9 // 4]]


def test_presets_pick_their_autoencoder():
    assert isinstance(build_vae(get_preset("demo")), PixelUnshuffleVAE)
    assert isinstance(build_vae(get_preset("demo-kl")), AutoencoderKL)
    assert not is_learned(build_vae(get_preset("demo"))) and is_learned(build_vae(get_preset("tiny")))
    assert get_preset("demo").unet["latent_channels"] == build_vae(get_preset("demo")).latent_channels


def test_unknown_autoencoder_class_is_a_clear_error(tmp_path):
    PixelUnshuffleVAE().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "_class_name": "Mystery"}))
    with pytest.raises(ValueError, match="unknown autoencoder class 'Mystery'"):
        load_vae_folder(tmp_path)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_demo_pipeline_with_pixel_latents_saves_loads_and_generates(tmp_path, speech_wave, identity_vector):
    pipe = build_pipeline("demo")
    pipe.vae.register_to_config(scaling_factor=2.5)
    image = (np.random.default_rng(0).random((2, 64, 64, 3)) * 255).astype(np.uint8)
    assert np.array_equal(pipe.decode_latents(pipe.encode_images(image)), image)
    pipe.save_pretrained(tmp_path, safe_serialization=True)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["vae"] == ["starcaster.models.pixel_vae", "PixelUnshuffleVAE"]
    loaded = STARCasterPipeline.from_pretrained(tmp_path)
    assert isinstance(loaded.vae, PixelUnshuffleVAE) and loaded.vae.config.scaling_factor == 2.5
    loaded.set_progress_bar_config(disable=True)
    out = loaded(speech_wave[:8000], identity_embedding=identity_vector, num_inference_steps=1)
    assert out.frames.shape[1:] == (64, 64, 3) and out.frames.dtype == np.uint8
