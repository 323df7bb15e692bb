"""int8 weight storage: exact format, loading through diffusers' from_pretrained, output tolerance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from starcaster import BUNDLED_CHECKPOINT, CheckpointError, STARCasterPipeline
from starcaster.compact import WEIGHTS_NAME, compact_checkpoint
from starcaster.models.weight_storage import (
    SCALE_SUFFIX,
    default_selection,
    dequantize_state_dict,
    dequantize_tensor,
    quantize_state_dict,
    quantize_tensor,
)

ROOT = Path(__file__).resolve().parents[1]


def test_quantize_is_per_output_channel_and_within_half_a_step():
    weight = torch.randn(6, 5, 3, 3) * torch.tensor([1e-3, 1.0, 10.0, 0.0, 2.0, 0.5]).reshape(6, 1, 1, 1)
    q, scale = quantize_tensor(weight)
    assert q.dtype == torch.int8 and q.shape == weight.shape and scale.shape == (6,)
    back = dequantize_tensor(q, scale)
    step = scale.reshape(6, 1, 1, 1)
    assert (back - weight).abs().le(step / 2 + 1e-9).all()  # rounding error ≤ half a step, per channel
    assert back[3].abs().max() == 0  # an all-zero channel stays zero (no 0/0)
    assert q.abs().amax(dim=(1, 2, 3)).tolist() == [127, 127, 127, 0, 127, 127]


def test_state_dict_round_trip_keeps_small_and_non_float_tensors():
    state = {"conv.weight": torch.randn(32, 16, 3, 3), "conv.bias": torch.randn(32), "steps": torch.arange(4)}
    packed = quantize_state_dict(state, default_selection(min_elements=1000))
    assert set(packed) == {"conv.weight", "conv.weight" + SCALE_SUFFIX, "conv.bias", "steps"}
    assert packed["conv.weight"].dtype == torch.int8 and torch.equal(packed["conv.bias"], state["conv.bias"])
    restored = dequantize_state_dict(dict(packed))
    assert set(restored) == set(state) and restored["conv.weight"].dtype == torch.float32
    with pytest.raises(ValueError, match="already quantised"):
        quantize_state_dict(packed, default_selection(1000))
    with pytest.raises(ValueError, match="corrupt"):
        dequantize_state_dict({"x" + SCALE_SUFFIX: torch.ones(2)})


@pytest.fixture(scope="module")
def compacted(tiny_checkpoint, tmp_path_factory):
    dst = tmp_path_factory.mktemp("compact") / "tiny-int8"
    report = compact_checkpoint(tiny_checkpoint, dst, components=("unet", "identity_encoder"), min_elements=4096)
    return dst, report


def test_compacted_folder_loads_through_from_pretrained_with_the_dequantised_weights(tiny_checkpoint, compacted):
    dst, report = compacted
    assert report.bytes_after < report.bytes_before and report.quantized["unet"]
    stored = load_file(dst / "unet" / WEIGHTS_NAME)
    assert all(stored[name].dtype == torch.int8 for name in report.quantized["unet"])
    loaded = STARCasterPipeline.from_pretrained(dst)
    original = STARCasterPipeline.from_pretrained(tiny_checkpoint)
    expected = dequantize_state_dict(dict(stored))
    for name, value in loaded.unet.state_dict().items():
        assert value.dtype == torch.float32 and torch.equal(value, expected[name]), name
    changed = [n for n, v in loaded.unet.state_dict().items() if not torch.equal(v, original.unet.state_dict()[n])]
    assert sorted(changed) == report.quantized["unet"]  # exactly the quantised tensors differ
    with pytest.raises(CheckpointError, match="already exists"):
        compact_checkpoint(tiny_checkpoint, dst)


def test_quantised_outputs_stay_within_a_few_uint8_levels(tiny_checkpoint, compacted, speech_wave, identity_vector):
    """Tolerance on generated frames, fixed seeds: the same check checkpoints.md reports for the bundle."""
    pipes = [STARCasterPipeline.from_pretrained(folder) for folder in (tiny_checkpoint, compacted[0])]
    for seed in (0, 1):
        frames = [
            p(
                speech_wave[:8000], identity_embedding=identity_vector, generator=torch.Generator().manual_seed(seed)
            ).frames
            for p in pipes
        ]
        diff = np.abs(frames[0].astype(int) - frames[1].astype(int))
        assert diff.mean() < 1.0 and diff.max() <= 32, (diff.mean(), diff.max())


def test_bundled_unet_is_int8_stored_and_the_bundle_is_within_30_mb():
    folder = ROOT / BUNDLED_CHECKPOINT
    if not (folder / "model_index.json").is_file():
        pytest.skip("no bundled checkpoint")
    stored = load_file(folder / "unet" / WEIGHTS_NAME)
    select = default_selection()
    assert sum(1 for v in stored.values() if v.dtype == torch.int8) > 50
    assert not [k for k, v in stored.items() if v.dtype != torch.int8 and select(k, v)]  # every large one is int8
    assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) <= 30_000_000


def _spatial_convolutions(*modules: torch.nn.Module) -> list[torch.Tensor]:
    return [m.weight for module in modules for m in module.modules() if isinstance(m, torch.nn.Conv2d)
            and m.weight.shape[-1] > 1]  # fmt: skip


def test_the_per_chunk_models_run_channels_last_and_save_in_the_standard_layout(tmp_path):
    """The UNet's and the refiner's convolution weights load channels-last (oneDNN's layout: faster on
    CPU) with the same frames within a uint8 level; saving writes standard tensors and keeps the layout."""
    folder = ROOT / BUNDLED_CHECKPOINT
    if not (folder / "model_index.json").is_file():
        pytest.skip("no bundled checkpoint")
    pipe = STARCasterPipeline.from_pretrained(folder)
    weights = _spatial_convolutions(pipe.unet, pipe.refiner)
    assert weights and all(
        w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous() for w in weights
    )
    standard = STARCasterPipeline.from_pretrained(folder)
    for model in (standard.unet, standard.refiner):
        model.to(memory_format=torch.contiguous_format)
    wave = np.sin(np.arange(12_000, dtype=np.float32) * 0.05) * 0.2
    embedding = np.load(ROOT / "examples" / "embeddings" / "identity_0.npy")
    frames = [
        p(audio=wave, identity_embedding=embedding, generator=torch.Generator().manual_seed(0)).frames
        for p in (pipe, standard)
    ]
    assert np.abs(frames[0].astype(int) - frames[1].astype(int)).max() <= 1
    pipe.save_pretrained(tmp_path)
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)  # still the fast layout
    saved = load_file(tmp_path / "unet" / WEIGHTS_NAME)
    assert all(torch.equal(saved[k], v) for k, v in standard.unet.state_dict().items())
