"""scripts/own_context_speed.py measures a design, so it must do what it says: no reference-encoder pass
per chunk, the cache filled with the chunk's own keys/values from the denoising pass."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from starcaster.models import attention, rollout
from starcaster.models.unet import STARCasterUNet

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "own_context_speed.py"


def test_own_context_replaces_the_reference_encoder_pass(tiny_pipe, speech_wave, monkeypatch):
    spec = importlib.util.spec_from_file_location("own_context_speed", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(attention.ExtendedSelfAttnProcessor, "__call__", attention.ExtendedSelfAttnProcessor.__call__)
    monkeypatch.setattr(rollout.Context, "add", rollout.Context.add)  # both restored after the test
    encoded, appended = [], []
    original_encode, original_append = STARCasterUNet.encode_context, rollout.KVCache.append
    monkeypatch.setattr(
        STARCasterUNet, "encode_context", lambda self, *a, **k: encoded.append(1) or original_encode(self, *a, **k)
    )
    monkeypatch.setattr(
        rollout.KVCache, "append", lambda self, layers: appended.append(layers) or original_append(self, layers)
    )
    script.patch_own_context()

    out = tiny_pipe(
        audio=speech_wave, identity_embedding=torch.ones(512).numpy(), generator=torch.Generator().manual_seed(0)
    )
    chunks = -(-len(out.frames) // 4)
    assert len(encoded) <= 1  # at most the portrait (the sink), never a finished chunk
    own = appended[-chunks:]  # one append per chunk, from the denoising pass
    layers = tiny_pipe.unet.self_attention_layers()
    assert len(own) == chunks and all(set(kv) == set(layers) for kv in own)
    assert all(kv[name][0].shape[1] in (4, len(out.frames) % 4) for kv in own for name in kv)  # [B, F, N, C]
