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

Inference shortcuts (docs/performance.md), all exact and all skipped while gradients are
recorded, so training sees the plain computation: the per-stream cross-attention runs as one
score product with a softmax per stream segment; condition keys/values are kept across the
denoising steps of a chunk; cached context keys (with their age bias) are assembled once per
chunk. ``AttentionContext.attention_dtype`` optionally runs the attention products in bf16.
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
    ``own_context``: when set, the denoiser's extended self-attention layers record the chunk's
    own keys/values ``[B, F, N, C]`` here (the first CFG group's), keyed by layer name: the cache
    entry of a model whose context comes from its own denoising pass (``context_source="denoiser"``).
    """

    frames: int = 1
    cache: KVCache | None = None
    cfg_groups: int = 1
    capture: dict[str, torch.Tensor] | None = field(default=None)
    own_context: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = field(default=None)
    attention_dtype: torch.dtype | None = None


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    return rearrange(x, "b n (h d) -> b h n d", h=heads)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    return rearrange(x, "b h n d -> b n (h d)")


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, dtype: torch.dtype | None = None):
    """Multi-head attention ``[B, Nq, C]`` × ``[B, Nk, C]`` → ``[B, Nq, C]`` (SDPA).

    ``dtype`` (e.g. bf16) runs the product in that precision and returns the input's dtype.
    """
    out_dtype = q.dtype
    if dtype is not None and dtype != q.dtype:
        q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    out = F.scaled_dot_product_attention(_heads(q, heads), _heads(k, heads), _heads(v, heads))
    return _merge_heads(out).to(out_dtype)


def _memo_stamp(*tensors: torch.Tensor) -> tuple | None:
    """Version counters (and the autocast state) that invalidate a memo; None (no memo) while
    gradients are recorded."""
    if torch.is_grad_enabled() or any(t.is_inference() for t in tensors):
        return None
    return (torch.is_autocast_enabled(tensors[0].device.type), *(t._version for t in tensors))


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
        if context.own_context is not None:
            rows = k.shape[0] // context.cfg_groups  # the full-conditions pass comes first
            own = (k[:rows], v[:rows])
            context.own_context[self.name] = tuple(rearrange(t, "b (f n) c -> b f n c", f=frames) for t in own)
        past = self.context_keys_values(context.cache, context.cfg_groups) if context.cache is not None else None
        if past is not None:
            k = torch.cat([past[0], k.to(past[0].dtype)], dim=1)
            v = torch.cat([past[1], v.to(past[1].dtype)], dim=1)
        out = attend(q, k, v, attn.heads, context.attention_dtype)
        out = rearrange(out, "b (f n) c -> (b f) n c", f=frames)
        return attn.to_out[1](attn.to_out[0](out))

    def context_keys_values(self, cache: KVCache, groups: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Cached keys (plus their age bias) and values ``[G*B, M, C]``, repeated for the CFG groups.

        Without gradients they are assembled once per cache state (``KVCache.memo``) and reused
        by every denoising step of the chunk.
        """
        stamp = _memo_stamp(self.age_embedding)
        key = (self.name, groups)
        if stamp is not None and cache.memo.get(key, (None,))[0] == stamp:
            return cache.memo[key][1]
        past = cache.read(self.name)
        if past is None:
            return None
        past_k, past_v, ages = past
        tokens_per_frame = past_k.shape[1] // len(ages)
        age_bias = self.age_embedding[ages.clamp(max=len(self.age_embedding) - 1)]  # [F_ctx, C]
        past_k = past_k + repeat(age_bias, "f c -> (f n) c", n=tokens_per_frame).to(past_k.dtype)
        kv = (repeat(past_k, "b m c -> (g b) m c", g=groups), repeat(past_v, "b m c -> (g b) m c", g=groups))
        if stamp is not None:
            cache.memo[key] = (stamp, kv)
        return kv


class DecoupledCrossAttnProcessor(nn.Module):
    """Cross-attention with one key/value projection per condition stream, outputs summed.

    ``stream_tokens`` lists how many tokens each stream contributes, in the order they are
    concatenated in ``encoder_hidden_states`` (identity first). Stream 0 uses the backbone's
    ``to_k``/``to_v``; the others own theirs, with ``to_v`` zero-initialised.

    The streams are computed together: one query-key product over every condition token, a
    softmax within each stream's segment, one product with the values (which sums the
    streams) — the same numbers as one attention call per stream, in two matrix products.
    """

    def __init__(self, stream_tokens: tuple[int, ...], cross_dim: int, inner_dim: int):
        super().__init__()
        self.stream_tokens = tuple(stream_tokens)
        self.to_k_extra = nn.ModuleList(nn.Linear(cross_dim, inner_dim, bias=False) for _ in stream_tokens[1:])
        self.to_v_extra = nn.ModuleList(nn.Linear(cross_dim, inner_dim, bias=False) for _ in stream_tokens[1:])
        for layer in self.to_v_extra:
            nn.init.zeros_(layer.weight)

        self._memo: tuple | None = None  # (conditions, version stamp, (keys, values)), inference only

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, context=None):
        q = _heads(attn.to_q(hidden_states), attn.heads)
        k, v = self.keys_values(attn, encoder_hidden_states)  # [B, H, N_cond, d]
        # Scores laid out [B, H, N_cond, N_q]: the softmax then runs along a long contiguous
        # axis (a softmax over a handful of keys along the last axis is ~8x slower on CPU).
        scores = torch.matmul(k.to(q.dtype), q.transpose(-1, -2)) * (q.shape[-1] ** -0.5)
        probs = torch.cat([s.softmax(dim=-2) for s in scores.split(self.stream_tokens, dim=-2)], dim=-2)
        out = torch.matmul(probs.transpose(-1, -2), v.to(probs.dtype))
        return attn.to_out[1](attn.to_out[0](_merge_heads(out)))

    def keys_values(self, attn, conditions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every stream's keys and values ``[B, H, N_cond, d]``, each by its own projection.

        Without gradients they are kept for as long as the same (unmodified) conditions
        tensor comes back — the denoising steps of one chunk.
        """
        to_k, to_v = [attn.to_k, *self.to_k_extra], [attn.to_v, *self.to_v_extra]
        stamp = _memo_stamp(conditions, *(p.weight for p in (*to_k, *to_v)))
        if stamp is not None and self._memo is not None and self._memo[0] is conditions and self._memo[1] == stamp:
            return self._memo[2]
        streams = torch.split(conditions, list(self.stream_tokens), dim=1)
        k = torch.cat([proj(tokens) for proj, tokens in zip(to_k, streams, strict=True)], dim=1)
        v = torch.cat([proj(tokens) for proj, tokens in zip(to_v, streams, strict=True)], dim=1)
        kv = (_heads(k, attn.heads), _heads(v, attn.heads))
        self._memo = (conditions, stamp, kv) if stamp is not None else None
        return kv


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
        q, k, v = (proj(hidden_states) for proj in (attn.to_q, attn.to_k, attn.to_v))
        out = attend(q, k, v, attn.heads, context.attention_dtype if context is not None else None)
        return attn.to_out[1](attn.to_out[0](out))
