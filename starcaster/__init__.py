"""STARCaster: spatio-temporal autoregressive video diffusion for talking portraits.

Public API: ``STARCasterPipeline`` (load with ``from_pretrained``), the model classes a
checkpoint's ``model_index.json`` names, and ``build_pipeline`` for a fresh, randomly
initialised pipeline of a named preset. Heavy modules (torch, diffusers) are imported on
first use, so ``import starcaster.identity`` or ``python -m starcaster --help`` stay fast.
"""

from __future__ import annotations

import importlib

from .errors import CheckpointError, InputError, OfflineError, STARCasterError

__version__ = "0.1.0"

BUNDLED_CHECKPOINT = "checkpoints/starcaster-synth"

_LAZY = {
    "STARCasterPipeline": ".pipeline",
    "GenerationRun": ".pipeline",
    "GenerationRequest": ".request",
    "ChunkOutput": ".pipeline_output",
    "STARCasterPipelineOutput": ".pipeline_output",
    "STARCasterUNet": ".models.unet",
    "IdentityEncoder": ".models.identity_encoder",
    "build_pipeline": ".presets",
}

__all__ = [
    "BUNDLED_CHECKPOINT",
    "CheckpointError",
    "InputError",
    "OfflineError",
    "STARCasterError",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
