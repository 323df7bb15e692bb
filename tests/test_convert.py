"""Arc2Face weights → the ``real`` STARCaster UNet, on an SD-1.5-topology model of small width.

The topology (block types, layers, attention layout, CLIP text encoder) is exactly Arc2Face's;
only the widths are shrunk so the test runs in seconds. The full-size check is `slow`.
"""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from diffusers import UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from starcaster.convert import convert_arc2face, read_weights
from starcaster.errors import CheckpointError
from starcaster.models.configs import CLIP_VIT_L14_TEXT, PRESETS
from starcaster.models.unet import STARCasterUNet

SMALL = dict(
    block_out_channels=(32, 32, 64, 64), attention_head_dim=2, cross_attention_dim=32, norm_num_groups=8, sample_size=16
)
SMALL_CLIP = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    vocab_size=49408,
    max_position_embeddings=77,
)


def _fake_arc2face(folder, unet_kwargs=SMALL, clip_kwargs=SMALL_CLIP):
    """An Arc2Face-layout folder: arc2face/ (safetensors UNet), encoder/ (pickled CLIP, old key names)."""
    torch.manual_seed(1)
    sd = PRESETS["real"].unet
    unet = UNet2DConditionModel(
        down_block_types=sd["down_block_types"], up_block_types=sd["up_block_types"], layers_per_block=2, **unet_kwargs
    )
    unet.save_pretrained(folder / "arc2face")
    encoder = CLIPTextModel(CLIPTextConfig(**clip_kwargs))
    (folder / "encoder").mkdir()
    (folder / "encoder" / "config.json").write_text(
        json.dumps({**encoder.config.to_dict(), "architectures": ["CLIPTextModelWrapper"]})
    )
    state = {f"text_model.{k}": v for k, v in encoder.state_dict().items()}  # transformers-4 key layout
    state["text_model.embeddings.position_ids"] = torch.arange(77)[None]
    torch.save(state, folder / "encoder" / "pytorch_model.bin")
    return unet, encoder


def test_arc2face_weights_load_into_backbone_reference_and_projector(tmp_path):
    unet, encoder = _fake_arc2face(tmp_path / "arc2face-src")
    report = convert_arc2face(tmp_path / "arc2face-src", tmp_path / "out")
    model = STARCasterUNet.from_pretrained(tmp_path / "out").eval()
    for key, value in unet.state_dict().items():
        assert torch.equal(model.state_dict()[f"backbone.{key}"], value), key
        assert torch.equal(model.state_dict()[f"reference_net.{key}"], value), key
    for key, value in encoder.state_dict().items():
        assert torch.equal(model.identity_proj.clip.state_dict()[key], value), key
    # Only STARCaster's own additions are new; none of Arc2Face's tensors were dropped.
    new_roots = {".processor.", "audio_proj.", "camera_proj.", "null_tokens"}
    assert report.new_parameters and all(any(r in k for r in new_roots) for k in report.new_parameters)
    assert list((tmp_path / "out").glob("*.safetensors")) and not list((tmp_path / "out").glob("*.bin"))


def test_converted_model_draws_what_arc2face_draws(tmp_path):
    """New streams start at zero: for one frame and no cache, the output equals Arc2Face's UNet."""
    unet, _ = _fake_arc2face(tmp_path / "src")
    convert_arc2face(tmp_path / "src", tmp_path / "out")
    model = STARCasterUNet.from_pretrained(tmp_path / "out").eval()
    identity = torch.nn.functional.normalize(torch.randn(1, 512), dim=-1)
    audio = torch.randn(1, 1, 2 * model.config.audio_context + 1, model.config.audio_n_mels)
    latents = torch.randn(1, 1, 4, 16, 16)
    with torch.no_grad():
        conditions = model.encode_conditions(identity, audio, torch.zeros(1, 1, 2))
        ours = model(latents, 500, conditions)[:, 0]
        id_tokens = conditions[:, : model.identity_proj.num_tokens]
        theirs = unet.eval()(latents[:, 0], 500, encoder_hidden_states=id_tokens).sample
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)


def test_pickle_with_code_is_refused(tmp_path):
    _fake_arc2face(tmp_path / "src")

    class Payload:
        def __reduce__(self):
            return (print, ("this would run code",))

    with open(tmp_path / "src" / "encoder" / "pytorch_model.bin", "wb") as f:
        pickle.dump({"text_model.x": Payload()}, f)
    with pytest.raises(CheckpointError, match="tensors only"):
        convert_arc2face(tmp_path / "src", tmp_path / "out")


@pytest.mark.slow
def test_full_size_arc2face_shaped_weights_convert(tmp_path):
    """A randomly initialised full SD-1.5 / CLIP-L state dict, saved locally, converts cleanly."""
    full_unet = {
        k: PRESETS["real"].unet[k]
        for k in ("block_out_channels", "cross_attention_dim", "norm_num_groups", "sample_size")
    }
    clip = {k: v for k, v in CLIP_VIT_L14_TEXT.items() if k != "projection_dim"}
    _fake_arc2face(tmp_path / "src", {**full_unet, "attention_head_dim": 8}, clip)
    report = convert_arc2face(tmp_path / "src", tmp_path / "out")
    unet_tensors = len(read_weights(tmp_path / "src" / "arc2face"))  # 686 for SD-1.5
    assert unet_tensors > 600
    assert report.loaded > 2 * unet_tensors  # into the denoiser *and* the reference encoder, plus the CLIP encoder
