"""Model components: shapes, the attention processors, the KV cache, presets and Arc2Face weights."""

from __future__ import annotations

import json

import torch
from accelerate import init_empty_weights

from starcaster.models.attention import DecoupledCrossAttnProcessor, ExtendedSelfAttnProcessor
from starcaster.models.configs import PRESETS
from starcaster.models.kv_cache import KVCache
from starcaster.models.unet import STARCasterUNet


def _tiny_unet() -> STARCasterUNet:
    torch.manual_seed(0)
    return STARCasterUNet(**PRESETS["tiny"].unet).eval()


def _inputs(unet, batch=2, frames=3):
    cfg = unet.config
    latents = torch.randn(batch, frames, cfg.latent_channels, cfg.sample_size, cfg.sample_size)
    identity = torch.randn(batch, cfg.identity_embed_dim)
    audio = torch.randn(batch, frames, 2 * cfg.audio_context + 1, cfg.audio_n_mels)
    views = torch.randn(batch, frames, 2) * 30
    return latents, identity, audio, views


def test_forward_shapes_and_token_layout():
    unet = _tiny_unet()
    latents, identity, audio, views = _inputs(unet)
    conditions = unet.encode_conditions(identity, audio, views)
    assert conditions.shape == (2 * 3, sum(unet.stream_tokens), unet.config.cross_attention_dim)
    with torch.no_grad():
        out = unet(latents, 500, conditions)
    assert out.shape == latents.shape and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_every_attention_layer_gets_a_starcaster_processor():
    unet = _tiny_unet()
    kinds = {type(p) for p in unet.backbone.attn_processors.values()}
    assert kinds == {ExtendedSelfAttnProcessor, DecoupledCrossAttnProcessor}
    assert len(unet.self_attention_layers()) == len(unet.backbone.attn_processors) // 2


def test_new_streams_start_at_zero_so_the_backbone_is_unchanged():
    """Zero-initialised audio/camera value projections: at init only identity tokens matter."""
    unet = _tiny_unet()
    latents, identity, audio, views = _inputs(unet)
    with torch.no_grad():
        a = unet(latents, 300, unet.encode_conditions(identity, audio, views))
        b = unet(latents, 300, unet.encode_conditions(identity, audio * 5 + 1, views + 45))
        c = unet(latents, 300, unet.encode_conditions(identity + 1, audio, views))
    torch.testing.assert_close(a, b)
    assert (a - c).abs().max() > 1e-4


def test_frames_of_a_chunk_attend_to_each_other():
    """Extended self-attention: changing frame 0 changes frame 2's prediction."""
    unet = _tiny_unet()
    latents, identity, audio, views = _inputs(unet, batch=1, frames=3)
    conditions = unet.encode_conditions(identity, audio, views)
    with torch.no_grad():
        a = unet(latents, 500, conditions)
        edited = latents.clone()
        edited[:, 0] += 1.0
        b = unet(edited, 500, conditions)
    assert (a[:, 2] - b[:, 2]).abs().max() > 1e-5


def test_cache_changes_the_prediction_and_is_repeated_for_cfg_groups():
    unet = _tiny_unet()
    latents, identity, audio, views = _inputs(unet, batch=1, frames=2)
    conditions = unet.encode_conditions(identity, audio, views)
    cache = unet.new_cache(window_frames=4)
    with torch.no_grad():
        cache.append(unet.encode_context(torch.randn_like(latents), conditions))
        without = unet(latents, 500, conditions)
        with_cache = unet(latents, 500, conditions, cache=cache)
        doubled = unet(latents.repeat(2, 1, 1, 1, 1), 500, conditions.repeat(2, 1, 1), cache=cache, cfg_groups=2)
    assert (without - with_cache).abs().max() > 1e-5
    torch.testing.assert_close(doubled[:1], with_cache)
    torch.testing.assert_close(doubled[1:], with_cache)


def test_dropped_stream_uses_null_tokens():
    unet = _tiny_unet()
    _, identity, audio, views = _inputs(unet, batch=2, frames=2)
    keep = {"audio": torch.tensor([True, False])}
    tokens = unet.encode_conditions(identity, audio, views, keep)
    n_id, n_audio, _ = unet.stream_tokens
    dropped = tokens[2:4, n_id : n_id + n_audio]  # sample 1, both frames
    torch.testing.assert_close(dropped, unet.audio_proj.null_tokens.expand_as(dropped))


def test_kv_cache_sink_and_rolling_window():
    cache = KVCache(sink_frames=1, window_frames=3)
    for step in range(4):  # 4 chunks of 2 frames, frame value = its index
        frames = torch.arange(2 * step, 2 * step + 2, dtype=torch.float32).view(1, 2, 1, 1)
        cache.append({"layer": (frames, frames)})
    keys, _, ages = cache.read("layer")
    assert keys.flatten().tolist() == [0.0, 5.0, 6.0, 7.0]  # sink frame 0 + the 3 newest
    assert ages.tolist() == [0, 3, 2, 1]
    assert len(cache) == 4
    cache.reset()
    assert cache.read("layer") is None and len(cache) == 0


def test_unbounded_window_keeps_everything():
    cache = KVCache(sink_frames=1, window_frames=None)
    for _ in range(5):
        cache.append({"layer": (torch.zeros(1, 3, 2, 4), torch.zeros(1, 3, 2, 4))})
    assert len(cache) == 15 and cache.read("layer")[0].shape == (1, 15 * 2, 4)


def test_config_round_trip(tmp_path):
    unet = _tiny_unet()
    unet.save_pretrained(tmp_path)
    loaded = STARCasterUNet.from_pretrained(tmp_path)
    public = lambda cfg: json.loads(json.dumps({k: v for k, v in cfg.items() if not k.startswith("_")}))  # noqa: E731
    assert public(loaded.config) == public(unet.config)
    for (name, a), (_, b) in zip(unet.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def _count(preset: str) -> tuple[int, int]:
    """(backbone parameters without STARCaster's own processor weights, all parameters)."""
    with init_empty_weights():
        unet = STARCasterUNet(**PRESETS[preset].unet)
    backbone = sum(p.numel() for n, p in unet.backbone.named_parameters() if ".processor." not in n)
    return backbone, sum(p.numel() for p in unet.parameters())


def test_demo_and_real_presets_instantiate():
    demo_backbone, demo_total = _count("demo")
    real_backbone, real_total = _count("real")
    assert 2e6 < demo_backbone < 10e6  # a few M parameters: trains on a CPU
    # The real backbone is exactly SD-1.5's UNet (859.5 M), plus a ReferenceNet copy and CLIP-L text.
    assert real_backbone == 859_520_964
    assert real_total > 2 * real_backbone


def test_reference_concat_starts_as_the_same_model_then_reads_the_portrait(tmp_path):
    """Zero-initialised reference channels: identical outputs; once trained, the portrait matters."""
    from starcaster.models.unet import with_reference_concat

    unet = _tiny_unet()
    latents, identity, audio, views = _inputs(unet)
    portrait = torch.randn(2, 1, *latents.shape[2:])
    conditions = unet.encode_conditions(identity, audio, views)
    converted = with_reference_concat(unet).eval()
    assert converted.config.reference_concat and with_reference_concat(converted) is converted
    with torch.no_grad():
        before = unet(latents, 500, conditions)
        torch.testing.assert_close(converted(latents, 500, conditions, reference=portrait), before)
        torch.testing.assert_close(converted(latents, 500, conditions), before)  # no portrait: zeros
        converted.backbone.conv_in.weight[:, unet.config.latent_channels :].normal_()  # as if trained
        with_portrait = converted(latents, 500, conditions, reference=portrait)
        assert (with_portrait - converted(latents, 500, conditions)).abs().max() > 1e-3
        # one portrait per video serves every CFG group
        doubled = converted(latents.repeat(2, 1, 1, 1, 1), 500, conditions.repeat(2, 1, 1), reference=portrait)
        torch.testing.assert_close(doubled[:2], with_portrait)
    converted.save_pretrained(tmp_path)
    assert STARCasterUNet.from_pretrained(tmp_path).backbone.conv_in.in_channels == 2 * unet.config.latent_channels
