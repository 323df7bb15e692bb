"""scripts/swap_identity_encoder.py: a new encoder's embeddings reach the video model as the old ones did."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from starcaster import build_pipeline

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "swap_identity_encoder.py"


def _swap_module():
    spec = importlib.util.spec_from_file_location("swap_identity_encoder", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_folded_map_makes_the_projector_read_new_embeddings_as_old_ones():
    swap = _swap_module()
    torch.manual_seed(0)
    new = torch.nn.functional.normalize(torch.randn(2000, 512), dim=1)
    true_map = torch.randn(512, 512) * 0.05
    old = new @ true_map + 0.1  # the old encoder's view of the same faces: an affine function here
    weight, bias = swap.ridge_map(new[:1500], old[:1500], ridge=1e-6)
    torch.testing.assert_close(new[1500:] @ weight + bias, old[1500:], atol=1e-3, rtol=0)

    unet = build_pipeline("tiny", seed=0).unet.eval()
    with torch.no_grad():
        before = unet.identity_proj.project(old[1500:1510])
        swap.fold_into_projector(unet, weight, bias)
        after = unet.identity_proj.project(new[1500:1510])
    torch.testing.assert_close(after, before, atol=2e-3, rtol=0)
