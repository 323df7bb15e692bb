"""One-time conversion of Arc2Face weights into a STARCaster ``real`` UNet (safetensors).

Arc2Face (``FoivosPar/Arc2Face``) publishes its SD-1.5 UNet in ``arc2face/`` and its CLIP
text encoder in ``encoder/`` — the latter as a pickle (``pytorch_model.bin``). The pipeline
itself never reads pickles; this command does, once, with ``torch.load(weights_only=True)``
(tensors only, no code), and writes safetensors.

Mapping: the UNet initialises both the denoiser (``backbone.``) and the reference encoder
(``reference_net.``) — ReferenceNet starts as a copy of the backbone; the text encoder
becomes the identity projector (``identity_proj.clip.``). Parameters Arc2Face doesn't have
(audio/camera streams, age embeddings, null tokens) keep their initialisation — the new
streams are zero-initialised, so the converted model still draws Arc2Face's faces.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file

from .errors import CheckpointError
from .models.configs import get_preset
from .models.unet import STARCasterUNet

_UNET_SHAPE_KEYS = (
    "block_out_channels",
    "down_block_types",
    "up_block_types",
    "layers_per_block",
    "cross_attention_dim",
    "norm_num_groups",
    "sample_size",
)
_IGNORED_SOURCE_KEYS = ("position_ids",)  # buffers older transformers saved


@dataclass
class ConversionReport:
    out_dir: Path
    loaded: int
    new_parameters: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"wrote {self.out_dir}: {self.loaded} tensors from Arc2Face, {len(self.new_parameters)} new (initialised) tensors"


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """A component folder's state dict: safetensors if present, else a pickle read as tensors only."""
    safetensors = sorted(folder.glob("*.safetensors"))
    if safetensors:
        return {k: v for f in safetensors for k, v in load_file(f).items()}
    pickles = sorted(folder.glob("*.bin")) + sorted(folder.glob("*.pt"))
    if not pickles:
        raise CheckpointError(f"No weights (*.safetensors or *.bin) in {folder}.")
    try:
        return {k: v for f in pickles for k, v in torch.load(f, map_location="cpu", weights_only=True).items()}
    except Exception as exc:  # torch raises UnpicklingError for anything that is not plain tensors
        raise CheckpointError(f"{folder.name}: refused to load {pickles[0].name} as tensors only ({exc}).") from exc


def map_arc2face_state_dict(unet: dict[str, torch.Tensor], encoder: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    mapped = {}
    for key, value in unet.items():
        mapped[f"backbone.{key}"] = value
        mapped[f"reference_net.{key}"] = value
    for key, value in encoder.items():
        if not key.endswith(_IGNORED_SOURCE_KEYS):
            mapped[f"identity_proj.clip.{key.removeprefix('text_model.')}"] = value
    return mapped


def build_real_unet(arc2face_dir: Path) -> STARCasterUNet:
    """The ``real`` preset, with the backbone/encoder shapes read from the source configs."""
    config = dict(get_preset("real").unet)
    unet_config = json.loads((arc2face_dir / "arc2face" / "config.json").read_text())
    config.update({k: unet_config[k] for k in _UNET_SHAPE_KEYS if k in unet_config})
    config["attention_heads"] = unet_config.get("attention_head_dim", config["attention_heads"])
    encoder_config = json.loads((arc2face_dir / "encoder" / "config.json").read_text())
    clip_keys = set(config["clip_config"]) | {"layer_norm_eps", "bos_token_id", "eos_token_id", "pad_token_id"}
    config["clip_config"] = {k: v for k, v in encoder_config.items() if k in clip_keys}
    return STARCasterUNet(**config)


def convert_arc2face(arc2face_dir: Path, out_dir: Path) -> ConversionReport:
    for sub in ("arc2face", "encoder"):
        if not (arc2face_dir / sub / "config.json").is_file():
            raise CheckpointError(f"{arc2face_dir} has no {sub}/config.json; download FoivosPar/Arc2Face first.")
    model = build_real_unet(arc2face_dir)
    mapped = map_arc2face_state_dict(read_weights(arc2face_dir / "arc2face"), read_weights(arc2face_dir / "encoder"))
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    if unexpected:
        raise CheckpointError(f"Arc2Face weights do not fit the real config: unexpected {unexpected[:5]} ...")
    model.save_pretrained(out_dir, safe_serialization=True)
    return ConversionReport(out_dir=out_dir, loaded=len(mapped), new_parameters=sorted(missing))
