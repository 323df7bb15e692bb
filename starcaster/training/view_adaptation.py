"""View adaptation, the temporal-to-spatial stage: the same autoregressive model run along a *view* axis.

The ``view`` stage (``kind: teacher`` with ``multiview_prob`` > 0 and ``trainable: camera`` or
``view``) mixes multi-view static sets — one instant of a head, the camera moving along a smooth
trajectory, frames ordered by view — into the talking windows (``data.mixed``), so view
consistency and temporal coherence are learned from separate data (decoupled learning, because
4D audio-visual data is scarce). What makes it *lightweight* is which weights it trains:
``trainable_parameters`` below.
"""

from __future__ import annotations

import torch

from ..models.unet import STARCasterUNet


def trainable_parameters(unet: STARCasterUNet, mode: str) -> list[torch.nn.Parameter]:
    """Which weights a stage trains.

    ``all``; ``view``: the camera stream and the self-attention that runs along the view axis;
    ``camera``: the camera stream alone. Run 2 found that training self-attention on silent
    multi-view sets cost lip-sync (0.81 → 0.59), so the demo recipe's view stage uses ``camera``.
    """
    if mode == "all":
        return list(unet.parameters())
    if mode not in ("view", "camera"):
        raise ValueError(f"trainable must be 'all', 'view' or 'camera', got {mode!r}")
    camera_extra = f"to_k_extra.{len(unet.stream_tokens) - 2}", f"to_v_extra.{len(unet.stream_tokens) - 2}"

    def chosen(name: str) -> bool:
        camera = name.startswith("camera_proj") or any(c in name for c in camera_extra)
        return camera or (mode == "view" and name.startswith("backbone") and ".attn1." in name)

    return [param for name, param in unet.named_parameters() if chosen(name)]
