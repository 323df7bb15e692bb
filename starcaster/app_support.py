"""Non-UI helpers of the demo app (``app.py``): choosing the checkpoint, budgets, run records.

Kept out of ``app.py`` so they can be tested without Gradio, and out of the pipeline because
they are about serving a demo, not about generating. Nothing here imports gradio.

Checkpoint choice (``load_app_pipeline``), first that works wins:
1. ``spec`` (the ``--checkpoint`` flag) or ``$STARCASTER_CHECKPOINT``: a Hub repo id
   (``owner/name`` or ``owner/name@revision``) or a local folder;
2. the bundled folder ``checkpoints/starcaster-synth`` (next to this package, or in the
   working directory);
3. randomly initialised ``demo`` weights, built once and saved under the app cache
   (``$STARCASTER_APP_CACHE``, default ``~/.cache/starcaster/app``): outputs are noise, and
   ``CheckpointInfo.random_weights`` says so, so the page can show a banner.
A failure at step 1 (offline, missing repo, corrupt files) is not fatal: its message is kept
in ``CheckpointInfo.messages`` for the page, and the next step is tried.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import BUNDLED_CHECKPOINT, __version__
from .errors import STARCasterError

if TYPE_CHECKING:
    from .pipeline import STARCasterPipeline

logger = logging.getLogger(__name__)

CHECKPOINT_ENV = "STARCASTER_CHECKPOINT"
CACHE_ENV = "STARCASTER_APP_CACHE"
RANDOM_PRESET = "demo"
RANDOM_SEED = 0

# ZeroGPU budget: a fixed start-up cost plus a per-frame cost at the default 4 steps,
# measured generously; the scheduler refuses requests that ask for more than its limit.
GPU_BASE_SECONDS = 20.0
GPU_SECONDS_PER_FRAME_STEP = 0.02
GPU_MAX_SECONDS = 300.0


@dataclass
class CheckpointInfo:
    """What the page says about the loaded weights."""

    label: str  # the folder or repo id that was loaded (or "random demo weights")
    revision: str | None  # Hub commit/revision, or None for a local folder
    random_weights: bool = False
    messages: list[str] = field(default_factory=list)  # fallbacks and why

    def describe(self) -> str:
        rev = f" @ `{self.revision}`" if self.revision else ""
        return f"`{self.label}`{rev}"


@dataclass
class LoadedPipeline:
    pipe: STARCasterPipeline
    info: CheckpointInfo


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "starcaster" / "app")


def bundled_checkpoint() -> Path | None:
    """The bundled checkpoint folder, looked up next to the package and in the working directory."""
    for base in (Path(__file__).resolve().parent.parent, Path.cwd()):
        folder = base / BUNDLED_CHECKPOINT
        if (folder / "model_index.json").is_file():
            return folder
    return None


def load_app_pipeline(spec: str | None = None, *, cache_dir: Path | None = None, device: str | None = None):
    """Load the app's pipeline following the order in the module docstring → ``LoadedPipeline``."""
    from .pipeline import STARCasterPipeline

    spec = spec or os.environ.get(CHECKPOINT_ENV) or None
    messages: list[str] = []
    loaded = None
    if spec:
        try:
            loaded = LoadedPipeline(STARCasterPipeline.from_pretrained(spec), _info_for(spec))
        except STARCasterError as exc:
            messages.append(f"Could not load checkpoint {spec!r}: {exc} Falling back to the bundled checkpoint.")
            logger.warning(messages[-1])
    folder = bundled_checkpoint() if loaded is None else None
    if folder is not None:
        try:
            loaded = LoadedPipeline(STARCasterPipeline.from_pretrained(str(folder)), _info_for(str(folder)))
        except STARCasterError as exc:
            messages.append(f"The bundled checkpoint {folder} could not be loaded: {exc}")
            logger.warning(messages[-1])
    if loaded is None:
        if folder is None:
            messages.append(f"No bundled checkpoint at {BUNDLED_CHECKPOINT}/ yet; using random demo weights.")
        loaded = LoadedPipeline(random_pipeline(cache_dir or default_cache_dir()), _random_info())
    loaded.info.messages[:0] = messages
    loaded.pipe.set_progress_bar_config(disable=True)
    return _to_device(loaded, device)


def _to_device(loaded: LoadedPipeline, device: str | None) -> LoadedPipeline:
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device != "cpu":
        loaded.pipe.to(device)
    return loaded


def _info_for(spec: str) -> CheckpointInfo:
    from .hub import looks_like_path, parse_checkpoint_spec

    if Path(spec).expanduser().is_dir() or looks_like_path(spec):
        return CheckpointInfo(label=spec, revision=None)
    repo_id, revision = parse_checkpoint_spec(spec)
    return CheckpointInfo(label=repo_id, revision=revision or "main")


def _random_info() -> CheckpointInfo:
    return CheckpointInfo(
        label=f"random {RANDOM_PRESET} weights (seed {RANDOM_SEED})", revision=None, random_weights=True
    )


def random_pipeline(cache_dir: Path) -> STARCasterPipeline:
    """Random ``demo`` weights: built once, saved under ``cache_dir``, loaded from there afterwards."""
    from .pipeline import STARCasterPipeline
    from .presets import build_pipeline

    folder = Path(cache_dir) / f"random-{RANDOM_PRESET}-seed{RANDOM_SEED}-v{__version__}"
    if (folder / "model_index.json").is_file():
        try:
            return STARCasterPipeline.from_pretrained(str(folder))
        except STARCasterError as exc:  # a half-written or stale cache: rebuild it
            logger.warning("Rebuilding the random demo checkpoint: %s", exc)
    pipe = build_pipeline(RANDOM_PRESET, seed=RANDOM_SEED)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".random-", dir=folder.parent))
    try:
        pipe.save_pretrained(staging)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(staging, folder)
    except OSError as exc:  # a read-only cache is not fatal: the weights are in memory
        logger.warning("Could not cache the random demo checkpoint in %s: %s", folder, exc)
        shutil.rmtree(staging, ignore_errors=True)
    return pipe


def gpu_seconds(
    audio_seconds: float | None,
    fps: float,
    num_inference_steps: int,
    camera_path: str | None,
    sweep_views: int,
    max_audio_seconds: float,
) -> int:
    """The ``spaces.GPU`` duration to request for one generation: scales with the frame count."""
    if camera_path == "sweep":
        frames = sweep_views
    else:
        seconds = max_audio_seconds if audio_seconds is None else min(audio_seconds, max_audio_seconds)
        frames = math.ceil(seconds * fps)
    estimate = GPU_BASE_SECONDS + GPU_SECONDS_PER_FRAME_STEP * frames * max(1, int(num_inference_steps))
    return int(min(GPU_MAX_SECONDS, math.ceil(estimate)))


def run_record(info: CheckpointInfo, settings: dict, *, inputs: dict) -> dict:
    """The settings JSON offered for download: everything needed to reproduce the run."""
    cli = [
        "python -m starcaster generate",
        f"--checkpoint {info.label}" + (f"@{info.revision}" if info.revision else ""),
    ]
    flags = {
        "azimuth": "--azimuth",
        "elevation": "--elevation",
        "camera_path": "--camera-path",
        "chunk_length": "--chunk-length",
        "num_inference_steps": "--steps",
        "guidance_scale_audio": "--guidance-audio",
        "guidance_scale_identity": "--guidance-identity",
        "guidance_scale_camera": "--guidance-camera",
        "noise_sharing": "--noise-sharing",
        "context_frames": "--context-frames",
        "seed": "--seed",
        "fps": "--fps",
    }
    cli += [f"{flag} {settings[key]}" for key, flag in flags.items() if key in settings]
    if settings.get("use_refiner") is False:
        cli.append("--no-refiner")
    return {
        "starcaster_version": __version__,
        "checkpoint": info.label,
        "revision": info.revision,
        "random_weights": info.random_weights,
        "inputs": inputs,
        "settings": settings,
        "command_line": " ".join(cli) + " --audio AUDIO (--image IMAGE | --embedding identity.npy) --out out.mp4",
    }
