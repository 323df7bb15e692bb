"""Resumable training state as safetensors (weights, EMA, optimizer) plus a small JSON, and finished models.

Optimizer state is flattened to ``state.<param index>.<name>`` tensors so nothing is ever
pickled; ``param_groups`` (plain numbers) go to the JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in tensors.items()}


def save_state(folder: Path, model: torch.nn.Module, optimizer, ema, step: int, extra: dict | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_file(_contiguous(model.state_dict()), folder / "model.safetensors")
    if ema is not None:
        save_file(_contiguous({str(i): p for i, p in enumerate(ema.shadow_params)}), folder / "ema.safetensors")
    opt = optimizer.state_dict()
    flat = {
        f"state.{i}.{name}": value
        for i, s in opt["state"].items()
        for name, value in s.items()
        if torch.is_tensor(value)
    }
    save_file(_contiguous(flat), folder / "optimizer.safetensors")
    meta = {"step": step, "param_groups": opt["param_groups"], **(extra or {})}
    tmp = folder / "state.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1))
    tmp.replace(folder / "state.json")  # written last: its presence means the state is complete


def load_state(folder: Path, model: torch.nn.Module, optimizer, ema) -> int:
    """Restore everything saved by ``save_state``; returns the step to continue from."""
    meta = json.loads((folder / "state.json").read_text())
    model.load_state_dict(load_file(folder / "model.safetensors"))
    if ema is not None and (folder / "ema.safetensors").is_file():
        shadow = load_file(folder / "ema.safetensors")
        ema.shadow_params = [shadow[str(i)] for i in range(len(shadow))]
    flat = load_file(folder / "optimizer.safetensors")
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return int(meta["step"])


def finished_model(cls, folder: Path):
    """The ``cls`` model saved in ``folder`` (a stage's ``final/`` or a pipeline's component folder),
    frozen for use by later stages, or None when nothing finished is there."""
    if not (folder / "config.json").is_file():
        return None
    return cls.from_pretrained(folder, dtype=torch.float32).eval().requires_grad_(False)


def has_state(folder: Path) -> bool:
    return (folder / "state.json").is_file()
