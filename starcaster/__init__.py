"""STARCaster: spatio-temporal autoregressive video diffusion for talking portraits.

Public API: ``STARCasterPipeline`` (load with ``from_pretrained``), the model classes a
checkpoint's ``model_index.json`` names, and ``build_pipeline`` for a fresh, randomly
initialised pipeline of a named preset. Heavy modules (torch, diffusers) are imported on
first use, so ``import starcaster.identity`` or ``python -m starcaster --help`` stay fast.
"""

from __future__ import annotations

import importlib
import os

# Before torch loads OpenMP: idle worker threads sleep instead of spinning. Generation runs
# three stages on their own threads (denoiser, decoder + refiner, the mp4 writer) and the app
# serves several visitors at once, so spinning threads take the cores the other stages need:
# on a loaded 2-core machine the identity encoder took 70-700 ms spinning vs 9-21 ms passive
# (docs/performance.md). No effect once torch is imported; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .errors import CheckpointError, InputError, OfflineError, STARCasterError

__version__ = "0.1.0"

# The live student (run 11: faster than real time on 2 CPU cores, docs/performance.md); its teacher,
# checkpoints/starcaster-synth, stays in the repository as the opt-in model it was distilled from.
BUNDLED_CHECKPOINT = "checkpoints/starcaster-synth-live"
# The app's default checkpoint: the bundled model published on the Hub, pinned to the tag that
# `python -m starcaster push ... --tag run11` creates (docs/deploy.md). Offline or unreachable,
# the app uses the cached copy, then BUNDLED_CHECKPOINT. Change it here and nowhere else.
HUB_CHECKPOINT = "starcaster/starcaster-synth-live@run11"

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
    "HUB_CHECKPOINT",
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
