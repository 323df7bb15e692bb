"""The KV cache of past frames: a fixed sink plus a rolling window, per self-attention layer.

What it holds: for every extended self-attention layer of the denoiser, the keys and values
that layer's own ``to_k``/``to_v`` make from the reference encoder's features of *clean*
frames (the reference image, then each finished chunk) — or, for a ``context_source="denoiser"``
model, the keys/values it computed for each chunk in that chunk's last denoising step. Because
those frames never change after they are finished, their keys/values are computed once and
reused by every denoising step of every later chunk (Self-Forcing / CausVid style).

Eviction policy, in one place (``append``): sink frames (the reference image, or the first
generated frame when there is none) are kept for ever; other frames enter a window that
keeps only the most recent ``window_frames``. Memory is therefore flat in video length.

``memo`` lets the attention layers keep what they assemble from the cache (keys with their
age bias, repeated for CFG groups) for as long as the cache does not change: every denoising
step of a chunk reads the same context. ``append`` and ``reset`` clear it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

# Per layer: (keys, values), each [B, F, N, C] (batch, frames, tokens per frame, channels).
LayerKV = tuple[torch.Tensor, torch.Tensor]


@dataclass
class KVCache:
    """Keys/values of context frames, per layer name; ``window_frames=None`` keeps everything."""

    sink_frames: int = 1
    window_frames: int | None = 8
    sink: dict[str, LayerKV] = field(default_factory=dict)
    window: dict[str, LayerKV] = field(default_factory=dict)
    memo: dict = field(default_factory=dict, repr=False)

    def reset(self) -> None:
        self.sink.clear()
        self.window.clear()
        self.memo.clear()

    @property
    def num_sink(self) -> int:
        return _num_frames(self.sink)

    @property
    def num_window(self) -> int:
        return _num_frames(self.window)

    def __len__(self) -> int:
        """Context frames currently held (sink + window)."""
        return self.num_sink + self.num_window

    def append(self, layers: dict[str, LayerKV]) -> None:
        """Add finished frames: fill the sink first, the rest rolls through the window."""
        self.memo.clear()
        to_sink = max(0, min(self.sink_frames - self.num_sink, _num_frames(layers)))
        if to_sink:
            _extend(self.sink, {n: (k[:, :to_sink], v[:, :to_sink]) for n, (k, v) in layers.items()}, None)
            layers = {n: (k[:, to_sink:], v[:, to_sink:]) for n, (k, v) in layers.items()}
        if _num_frames(layers):
            _extend(self.window, layers, self.window_frames)

    def read(self, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """Keys, values ``[B, M, C]`` (M = frames × tokens) and per-frame ages ``[frames]``.

        Age 0 marks sink frames; window frames count back from the newest (1 = most recent),
        which is what the layer's learned age embedding is indexed with.
        """
        parts = [store[name] for store in (self.sink, self.window) if name in store]
        if not parts:
            return None
        keys = torch.cat([k for k, _ in parts], dim=1)  # [B, F, N, C]
        values = torch.cat([v for _, v in parts], dim=1)
        device = keys.device
        sink_ages = torch.zeros(self.num_sink, dtype=torch.long, device=device)
        ages = torch.cat([sink_ages, torch.arange(self.num_window, 0, -1, device=device)])
        return keys.flatten(1, 2), values.flatten(1, 2), ages


def _num_frames(store: dict[str, LayerKV]) -> int:
    return next(iter(store.values()))[0].shape[1] if store else 0


def _extend(store: dict[str, LayerKV], layers: dict[str, LayerKV], keep: int | None) -> None:
    for name, (k, v) in layers.items():
        if name in store:
            k = torch.cat([store[name][0], k], dim=1)
            v = torch.cat([store[name][1], v], dim=1)
        if keep is not None:
            start = max(0, k.shape[1] - keep)
            k, v = k[:, start:], v[:, start:]
        store[name] = (k, v)
