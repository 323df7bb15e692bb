"""Compact weight storage: int8 per-output-channel tensors, dequantised when a model loads.

Why: the bundled checkpoint ships inside the app's git repository, where every megabyte is
paid by every clone and Space build. Storing the largest UNet weights as int8 (one fp32 scale
per output channel) halves them again after fp16, at a quantisation error far below what
the model's outputs notice (measured in checkpoints.md).

Format (plain safetensors, nothing custom on disk): a quantised tensor ``name`` is stored as
``int8`` values ``q`` of the original shape ``[O, ...]`` plus ``name + SCALE_SUFFIX`` of shape
``[O]`` (fp32); the weight is ``q * scale`` (broadcast over every axis but the first).
Any model class that mixes in ``Int8StorageMixin`` loads such a file through the normal
``diffusers`` ``from_pretrained`` path: diffusers hands every non-sharded state dict to
``_fix_state_dict_keys_on_load`` before matching keys, and the mixin dequantises there.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping

import torch

SCALE_SUFFIX = "_int8_scale"
QMAX = 127


def quantize_tensor(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``weight [O, ...]`` → ``(q int8 [O, ...], scale fp32 [O])``, symmetric, per output channel."""
    flat = weight.detach().float().reshape(weight.shape[0], -1)  # (O, rest)
    scale = flat.abs().amax(dim=1) / QMAX
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero channel stays zero
    q = torch.round(flat / scale[:, None]).clamp(-QMAX, QMAX).to(torch.int8)
    return q.reshape(weight.shape), scale


def dequantize_tensor(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``q int8 [O, ...]``, ``scale [O]`` → fp32 ``[O, ...]``."""
    shape = (q.shape[0],) + (1,) * (q.dim() - 1)
    return q.float() * scale.float().reshape(shape)


def default_selection(min_elements: int = 16_384) -> Callable[[str, torch.Tensor], bool]:
    """Which tensors to quantise: floating-point weights with ≥ 2 dims and at least ``min_elements``
    values (convolutions and projections); biases, norms and small tensors keep their precision."""

    def select(name: str, tensor: torch.Tensor) -> bool:
        return tensor.is_floating_point() and tensor.dim() >= 2 and tensor.numel() >= min_elements

    return select


def quantize_state_dict(
    state: MutableMapping[str, torch.Tensor], select: Callable[[str, torch.Tensor], bool]
) -> dict[str, torch.Tensor]:
    """A copy of ``state`` with every tensor ``select`` picks stored as int8 + per-channel scale."""
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if name.endswith(SCALE_SUFFIX):
            raise ValueError(f"{name!r} already ends in {SCALE_SUFFIX!r}: this state dict is already quantised.")
        if select(name, tensor):
            out[name], out[name + SCALE_SUFFIX] = quantize_tensor(tensor)
        else:
            out[name] = tensor.detach().contiguous()
    return out


def is_quantized(state: MutableMapping[str, torch.Tensor]) -> bool:
    return any(name.endswith(SCALE_SUFFIX) for name in state)


def dequantize_state_dict(state: MutableMapping[str, torch.Tensor]) -> MutableMapping[str, torch.Tensor]:
    """In place: every ``name`` with a ``name + SCALE_SUFFIX`` partner becomes its fp32 weight again."""
    for scale_name in [k for k in state if k.endswith(SCALE_SUFFIX)]:
        name = scale_name[: -len(SCALE_SUFFIX)]
        if name not in state or state[name].dtype != torch.int8:
            raise ValueError(f"{scale_name!r} has no int8 tensor {name!r} beside it: a corrupt quantised checkpoint.")
        state[name] = dequantize_tensor(state[name], state.pop(scale_name))
    return state


class Int8StorageMixin:
    """Lets a diffusers ``ModelMixin`` load weights saved by ``quantize_state_dict`` (see module docstring),
    and save weights held channels-last (``channels_last_weights``) in the standard layout.

    Only non-sharded weight files pass through this hook in diffusers; the bundled components
    are a few MB each, far below the shard size.
    """

    def _fix_state_dict_keys_on_load(self, state_dict):
        dequantize_state_dict(state_dict)
        return super()._fix_state_dict_keys_on_load(state_dict)

    def save_pretrained(self, *args, **kwargs):
        """As diffusers saves, with any channels-last weights (``channels_last_weights``) written in the
        standard layout: safetensors stores contiguous tensors only."""
        moved = [(p, p.data) for p in self.parameters() if not p.data.is_contiguous()]
        for param, data in moved:
            param.data = data.contiguous()
        try:
            return super().save_pretrained(*args, **kwargs)
        finally:
            for param, data in moved:
                param.data = data


def channels_last_weights(module: torch.nn.Module) -> torch.nn.Module:
    """Convolution weights in channels-last memory, oneDNN's own layout on CPU, so that a convolution
    does not reorder its weights on every call: −8 % of the live student's CPU time end to end
    (docs/performance.md, "The live student is the default"). Values are unchanged; saving writes the
    standard layout back (``Int8StorageMixin.save_pretrained``)."""
    return module.to(memory_format=torch.channels_last)


ALIGNMENT = 64  # bytes: what PyTorch's CPU allocator gives every fresh tensor


def align_weights(module: torch.nn.Module) -> int:
    """Move parameters and buffers that sit at unaligned addresses into fresh memory; return how many.

    Why: diffusers keeps weights loaded from a safetensors file in its memory map, at offsets
    fixed by the file's layout; CPU kernels choose vectorised code paths by alignment, so the
    same weights from two files (fp32 vs. dequantised int8, or another header length) gave
    frames differing by one uint8 level. Fresh memory makes outputs depend on values only.
    """
    moved = 0
    for tensor in [*module.parameters(), *module.buffers()]:
        if tensor.device.type == "cpu" and tensor.data_ptr() % ALIGNMENT:
            tensor.data = tensor.data.clone()
            moved += 1
    return moved
