"""Compact a checkpoint folder for bundling: int8 storage of its largest weights.

``compact_checkpoint(src, dst)`` copies a Hub-style pipeline folder and rewrites the chosen
components' ``diffusion_pytorch_model.safetensors`` with ``models.weight_storage`` int8
tensors; everything else (configs, model card, small components) is copied byte for byte.
The result loads with ``STARCasterPipeline.from_pretrained`` like any other folder, and
``publish`` writes full-precision (fp32, and an fp16 variant) files from it again.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import load_file, save_file

from .errors import CheckpointError
from .models.weight_storage import default_selection, is_quantized, quantize_state_dict

WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
QUANTIZATION_METADATA = {"format": "pt", "starcaster_storage": "int8 per output channel (weight_storage.py)"}


@dataclass
class CompactReport:
    """What ``compact_checkpoint`` did: bytes before/after and the tensors it quantised."""

    bytes_before: int
    bytes_after: int
    quantized: dict[str, list[str]]  # component → tensor names


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def compact_checkpoint(
    src: Path, dst: Path, components: tuple[str, ...] = ("unet",), min_elements: int = 16_384
) -> CompactReport:
    """Copy ``src`` to ``dst`` (must not exist) with ``components``' weights stored as int8."""
    src, dst = Path(src), Path(dst)
    if not (src / "model_index.json").is_file():
        raise CheckpointError(f"{src} is not a checkpoint folder (no model_index.json).")
    if dst.exists():
        raise CheckpointError(f"{dst} already exists; choose a new folder.")
    shutil.copytree(src, dst)
    select = default_selection(min_elements)
    quantized: dict[str, list[str]] = {}
    for component in components:
        file = dst / component / WEIGHTS_NAME
        state = load_file(file)
        if is_quantized(state):
            raise CheckpointError(f"{src / component / WEIGHTS_NAME} is already int8-quantised.")
        quantized[component] = sorted(name for name, tensor in state.items() if select(name, tensor))
        save_file(quantize_state_dict(state, select), file, metadata=QUANTIZATION_METADATA)
    return CompactReport(folder_bytes(src), folder_bytes(dst), quantized)
