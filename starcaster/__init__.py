"""STARCaster: spatio-temporal autoregressive video diffusion for talking portraits.

Public API: ``STARCasterPipeline`` (load with ``from_pretrained``), the model classes a
checkpoint's ``model_index.json`` names (diffusers imports them from this package), and
``build_pipeline`` for a fresh, randomly initialised pipeline of a named preset.
"""

from .errors import CheckpointError, InputError, OfflineError, STARCasterError
from .models.identity_encoder import IdentityEncoder
from .models.unet import STARCasterUNet
from .pipeline import STARCasterPipeline
from .pipeline_output import ChunkOutput, STARCasterPipelineOutput
from .presets import build_pipeline

__version__ = "0.1.0"

BUNDLED_CHECKPOINT = "checkpoints/starcaster-synth"

__all__ = [
    "BUNDLED_CHECKPOINT",
    "CheckpointError",
    "ChunkOutput",
    "IdentityEncoder",
    "InputError",
    "OfflineError",
    "STARCasterError",
    "STARCasterPipeline",
    "STARCasterPipelineOutput",
    "STARCasterUNet",
    "__version__",
    "build_pipeline",
]
