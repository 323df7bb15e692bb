"""Attention processors that turn a 2D image UNet into the STARCaster video denoiser.

Two processors, installed with the diffusers ``AttnProcessor`` API (as IP-Adapter does), so a
pre-trained image backbone (Arc2Face / SD-1.5) keeps its weights and names:

* ``ExtendedSelfAttnProcessor`` (every ``attn1``): each frame's queries attend to its own
  tokens, to the other frames of the current chunk (the spatio-temporal part) and to the
  cached keys/values of past / reference frames (the KV cache).
* ``DecoupledCrossAttnProcessor`` (every ``attn2``): identity, audio and camera tokens are
  separate streams, each with its own key/value projections; their outputs are summed. The
  identity stream reuses the backbone's own ``to_k``/``to_v`` (Arc2Face attends to identity
  tokens there); the new streams start at zero so the backbone starts unchanged.

Both read a per-forward ``AttentionContext`` passed as ``cross_attention_kwargs={"context": ...}``.
Inputs are always 3-D ``[B*F, N, C]`` here (diffusers transformer blocks), so the 4-D and
group-norm branches of the stock processors are not needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn

from .kv_cache import KVCache


@dataclass
class AttentionContext:
    """What the processors need to know about one UNet forward.

    ``frames``: frames per sample in the batch (the batch is ``[B*F, ...]``, frame-minor).
    ``cache``: past-frame keys/values to attend to (read-only during denoising), or None.
    ``cfg_groups``: the batch holds this many copies of B samples (classifier-free guidance);
    the cache holds B samples and is repeated to match.
    ``capture``: when set, self-attention layers record their input features here (the
    reference encoder pass), keyed by layer name.
    """

    frames: int = 1
    cache: KVCache | None = None
    cfg_groups: int = 1
    capture: dict[str, torch.Tensor] | None = field(default=None)


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    return rearrange(x, "b n (h d) -> b h n d", h=heads)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    return rearrange(x, "b h n d -> b n (h d)")


class ExtendedSelfAttnProcessor(nn.Module):
    """Self-attention over the current chunk plus cached context frames.

    ``age_embedding[a]`` (zero-initialised, one row per context age) is added to cached keys,
    so the layer can tell the sink from the most recent frame and from older ones.
    """

    def __init__(self, name: str, inner_dim: int, max_context_frames: int):
        super().__init__()
        self.name = name
        self.age_embedding = nn.Parameter(torch.zeros(max_context_frames + 1, inner_dim))

    def project_context(self, attn, features: torch.Tensor, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Reference-encoder features ``[B*F, N, C]`` → this layer's keys/values ``[B, F, N, C]``."""
        keys = rearrange(attn.to_k(features), "(b f) n c -> b f n c", f=frames)
        values = rearrange(attn.to_v(features), "(b f) n c -> b f n c", f=frames)
        return keys, values

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, context=None):
        context = context or AttentionContext()
        if context.capture is not None:
            context.capture[self.name] = hidden_states
        frames = context.frames
        # Current chunk: all frames of a sample share one token sequence.  # [B, F*N, C]
        q = rearrange(attn.to_q(hidden_states), "(b f) n c -> b (f n) c", f=frames)
        k = rearrange(attn.to_k(hidden_states), "(b f) n c -> b (f n) c", f=frames)
        v = rearrange(attn.to_v(hidden_states), "(b f) n c -> b (f n) c", f=frames)
        past = context.cache.read(self.name) if context.cache is not None else None
        if past is not None:
            past_k, past_v, ages = past
            tokens_per_frame = past_k.shape[1] // len(ages)
            age_bias = self.age_embedding[ages.clamp(max=len(self.age_embedding) - 1)]  # [F_ctx, C]
            past_k = past_k + repeat(age_bias, "f c -> (f n) c", n=tokens_per_frame).to(past_k.dtype)
            k = torch.cat([repeat(past_k, "b m c -> (g b) m c", g=context.cfg_groups), k], dim=1)
            v = torch.cat([repeat(past_v, "b m c -> (g b) m c", g=context.cfg_groups), v], dim=1)
        out = F.scaled_dot_product_attention(_heads(q, attn.heads), _heads(k, attn.heads), _heads(v, attn.heads))
        out = rearrange(_merge_heads(out), "b (f n) c -> (b f) n c", f=frames)
        return attn.to_out[1](attn.to_out[0](out))


class DecoupledCrossAttnProcessor(nn.Module):
    """Cross-attention with one key/value projection per condition stream, outputs summed.

    ``stream_tokens`` lists how many tokens each stream contributes, in the order they are
    concatenated in ``encoder_hidden_states`` (identity first). Stream 0 uses the backbone's
    ``to_k``/``to_v``; the others own theirs, with ``to_v`` zero-initialised.
    """

    def __init__(self, stream_tokens: tuple[int, ...], cross_dim: int, inner_dim: int):
        super().__init__()
        self.stream_tokens = tuple(stream_tokens)
        self.to_k_extra = nn.ModuleList(nn.Linear(cross_dim, inner_dim, bias=False) for _ in stream_tokens[1:])
        self.to_v_extra = nn.ModuleList(nn.Linear(cross_dim, inner_dim, bias=False) for _ in stream_tokens[1:])
        for layer in self.to_v_extra:
            nn.init.zeros_(layer.weight)

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, context=None):
        streams = torch.split(encoder_hidden_states, list(self.stream_tokens), dim=1)
        q = _heads(attn.to_q(hidden_states), attn.heads)
        to_k = [attn.to_k, *self.to_k_extra]
        to_v = [attn.to_v, *self.to_v_extra]
        out = 0
        for tokens, key_proj, value_proj in zip(streams, to_k, to_v, strict=True):
            k, v = _heads(key_proj(tokens), attn.heads), _heads(value_proj(tokens), attn.heads)
            out = out + F.scaled_dot_product_attention(q, k, v)
        return attn.to_out[1](attn.to_out[0](_merge_heads(out)))


class CaptureSelfAttnProcessor(nn.Module):
    """Plain per-frame self-attention that records its input features (reference encoder).

    The recorded ``[B*F, N, C]`` features are what the denoiser's extended self-attention
    projects into the KV cache; frames are encoded independently, so caching them is exact.
    """

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, context=None):
        if context is not None and context.capture is not None:
            context.capture[self.name] = hidden_states
        q, k, v = (_heads(proj(hidden_states), attn.heads) for proj in (attn.to_q, attn.to_k, attn.to_v))
        out = _merge_heads(F.scaled_dot_product_attention(q, k, v))
        return attn.to_out[1](attn.to_out[0](out))
