"""uint8 pictures ↔ the models' pixels: one convention for every model, stage and metric.

Pictures travel as uint8 ``[..., H, W, 3]`` (files, datasets, the app, the pipeline's output);
every network reads and writes float ``[..., 3, H, W]`` in [-1, 1]. The two conversions lived
in five places (pipeline, batches, identity prior, eval experts, refiner); they live here now.
"""

from __future__ import annotations

import numpy as np
import torch


def to_pixels(pictures: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 ``[..., H, W, 3]`` (array or tensor, on any device) → float ``[..., 3, H, W]`` in [-1, 1]."""
    tensor = pictures if isinstance(pictures, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(pictures))
    return tensor.float().movedim(-1, -3) / 127.5 - 1.0


def to_uint8(pixels: torch.Tensor) -> np.ndarray:
    """float ``[..., 3, H, W]`` in [-1, 1] (clamped) → uint8 ``[..., H, W, 3]`` numpy on the CPU."""
    return ((pixels.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8).movedim(-3, -1).cpu().numpy()
