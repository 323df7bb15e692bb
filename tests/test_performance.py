"""The inference speed-ups keep the model's math: fused stream attention, memos, bf16 precision."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from starcaster.errors import InputError
from starcaster.models.attention import DecoupledCrossAttnProcessor
from starcaster.models.configs import PRESETS
from starcaster.models.unet import STARCasterUNet


def _unet_and_inputs(frames: int = 2):
    torch.manual_seed(0)
    unet = STARCasterUNet(**PRESETS["tiny"].unet).eval()
    for proc in unet.backbone.attn_processors.values():  # non-zero audio/camera streams
        if isinstance(proc, DecoupledCrossAttnProcessor):
            for layer in proc.to_v_extra:
                torch.nn.init.normal_(layer.weight, std=0.2)
    cfg = unet.config
    latents = torch.randn(1, frames, cfg.latent_channels, cfg.sample_size, cfg.sample_size)
    audio = torch.randn(1, frames, 2 * cfg.audio_context + 1, cfg.audio_n_mels)
    conditions = unet.encode_conditions(torch.randn(1, cfg.identity_embed_dim), audio, torch.randn(1, frames, 2))
    return unet, latents, conditions.detach()


def test_fused_cross_attention_equals_one_attention_per_stream():
    unet, _, conditions = _unet_and_inputs()
    name = next(n for n, p in unet.backbone.attn_processors.items() if isinstance(p, DecoupledCrossAttnProcessor))
    attn = unet.backbone.get_submodule(name.removesuffix(".processor"))
    proc = attn.processor
    hidden = torch.randn(conditions.shape[0], 64, attn.inner_dim)
    heads = lambda x: x.unflatten(-1, (attn.heads, -1)).transpose(1, 2)  # noqa: E731
    streams = conditions.split(list(proc.stream_tokens), dim=1)
    projections = zip([attn.to_k, *proc.to_k_extra], [attn.to_v, *proc.to_v_extra], streams, strict=True)
    with torch.no_grad():
        q = heads(attn.to_q(hidden))
        summed = sum(F.scaled_dot_product_attention(q, heads(k(s)), heads(v(s))) for k, v, s in projections)
        expected = attn.to_out[0](summed.transpose(1, 2).flatten(2))
        torch.testing.assert_close(proc(attn, hidden, conditions), expected, atol=1e-5, rtol=1e-5)


def test_memos_reuse_only_unchanged_inputs_and_never_under_autograd():
    unet, latents, conditions = _unet_and_inputs()
    cache = unet.new_cache(window_frames=4)
    with torch.no_grad():
        cache.append(unet.encode_context(torch.randn_like(latents), conditions))
        first = unet(latents, 500, conditions, cache)
        assert cache.memo  # context keys assembled once for the chunk
        torch.testing.assert_close(unet(latents, 500, conditions, cache), first, atol=0, rtol=0)
        fresh = unet(latents, 500, conditions.clone(), cache)  # a new conditions tensor: recomputed
        torch.testing.assert_close(fresh, first, atol=1e-6, rtol=1e-6)
        for proc in unet.backbone.attn_processors.values():  # weights edited in place: memos invalid
            if isinstance(proc, DecoupledCrossAttnProcessor):
                proc.to_k_extra[0].weight.mul_(2)
            else:
                proc.age_embedding.add_(0.5)
        edited = unet(latents, 500, conditions, cache)
        cache.memo.clear()
        for proc in unet.backbone.attn_processors.values():
            if isinstance(proc, DecoupledCrossAttnProcessor):
                proc._memo = None
        torch.testing.assert_close(edited, unet(latents, 500, conditions.clone(), cache), atol=1e-6, rtol=1e-6)
        assert (edited - first).abs().max() > 1e-4
    cache.memo.clear()
    out = unet(latents, 500, conditions, cache)  # with gradients: the plain computation, no memo
    assert not cache.memo
    out.square().mean().backward()
    proc = next(p for p in unet.backbone.attn_processors.values() if isinstance(p, DecoupledCrossAttnProcessor))
    assert proc.to_k_extra[0].weight.grad is not None and proc.to_k_extra[0].weight.grad.abs().sum() > 0


def test_bf16_precision_is_close_to_fp32_and_scoped(tiny_pipe, speech_wave, identity_vector):
    def frames(**kwargs):
        out = tiny_pipe(
            speech_wave, identity_embedding=identity_vector, generator=torch.Generator().manual_seed(0), **kwargs
        )
        return out.frames.astype(np.float64)

    fp32, bf16 = frames(), frames(precision="bf16")
    assert fp32.shape == bf16.shape and 0 < np.abs(fp32 - bf16).mean() < 4.0  # uint8 levels
    assert tiny_pipe.unet.attention_dtype is None and not torch.is_autocast_enabled("cpu")
    with pytest.raises(InputError, match="precision"):
        tiny_pipe(speech_wave, identity_embedding=identity_vector, precision="fp8")
