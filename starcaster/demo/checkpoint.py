"""Which checkpoint the demo serves, and what the page says about it (no gradio here).

Out of the pipeline because it is about serving a demo, not about generating; free of gradio
so it can be tested (and used by ``examples/make_examples.py``) without a UI.

Checkpoint choice (``load_app_pipeline``), first that works wins:
1. ``spec`` (the ``--checkpoint`` flag), else ``$STARCASTER_CHECKPOINT``, else
   ``starcaster.HUB_CHECKPOINT`` (the published bundle, revision pinned): a Hub repo id
   (``owner/name`` or ``owner/name@revision``) or a local folder. Offline (``HF_HUB_OFFLINE=1``)
   or with the Hub unreachable, a repo id loads from the local Hugging Face cache;
2. the bundled folder ``starcaster.BUNDLED_CHECKPOINT`` (next to this package, or in the
   working directory);
3. randomly initialised ``demo`` weights, built once and saved under the app cache
   (``$STARCASTER_APP_CACHE``, default ``~/.cache/starcaster/app``): outputs are noise, and
   ``CheckpointInfo.random_weights`` says so, so the page can show a banner.
A failure at step 1 (offline and not cached, missing repo, corrupt files) is not fatal: one
line saying so is kept in ``CheckpointInfo.messages`` for the page, and the next step is
tried; so is a line when the cache stood in for the Hub. Page texts never show an absolute
path of the server (``public_text``).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .. import BUNDLED_CHECKPOINT, HUB_CHECKPOINT, __version__
from ..errors import STARCasterError

if TYPE_CHECKING:
    from ..pipeline import STARCasterPipeline

logger = logging.getLogger(__name__)

CHECKPOINT_ENV = "STARCASTER_CHECKPOINT"
CACHE_ENV = "STARCASTER_APP_CACHE"
RANDOM_PRESET = "demo"
RANDOM_SEED = 0


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
    for base in (Path(__file__).resolve().parents[2], Path.cwd()):
        folder = base / BUNDLED_CHECKPOINT
        if (folder / "model_index.json").is_file():
            return folder
    return None


def load_app_pipeline(spec: str | None = None, *, cache_dir: Path | None = None, device: str | None = None):
    """Load the app's pipeline following the order in the module docstring → ``LoadedPipeline``."""
    spec = spec or os.environ.get(CHECKPOINT_ENV) or HUB_CHECKPOINT
    messages: list[str] = []
    loaded = _load_spec(spec, messages)
    folder = bundled_checkpoint() if loaded is None else None
    if folder is not None:
        loaded = _load_bundled(folder, messages)
    if loaded is None:
        if folder is None:
            messages.append(f"No bundled checkpoint at {BUNDLED_CHECKPOINT}/ yet; using random demo weights.")
        loaded = LoadedPipeline(random_pipeline(cache_dir or default_cache_dir()), _random_info())
    loaded.info.messages[:0] = messages
    loaded.pipe.set_progress_bar_config(disable=True)
    return _to_device(loaded, device)


def _load_spec(spec: str, messages: list[str]) -> LoadedPipeline | None:
    """Step 1: the asked-for checkpoint, or None with one line in ``messages`` saying why not."""
    from ..hub import fetch_checkpoint
    from ..pipeline import STARCasterPipeline

    try:
        resolved = fetch_checkpoint(spec)
        pipe = STARCasterPipeline.from_pretrained(str(resolved.folder))
    except STARCasterError as exc:
        reason = public_text(str(exc)).split(". ")[0].rstrip(".")
        asked = _info_for(spec)
        name = asked.label + (f"@{asked.revision}" if asked.revision and "@" in spec else "")
        messages.append(
            f"Could not load checkpoint `{name}`: {reason}. Falling back to the bundled checkpoint `{BUNDLED_CHECKPOINT}`."
        )
        logger.warning("Could not load checkpoint %r: %s", spec, exc)
        return None
    info = _info_for(spec)
    if resolved.source == "cache":
        messages.append(f"Loaded {info.describe()} from the local Hugging Face cache: {resolved.reason}.")
    return LoadedPipeline(pipe, info)


def _load_bundled(folder: Path, messages: list[str]) -> LoadedPipeline | None:
    from ..pipeline import STARCasterPipeline

    try:
        pipe = STARCasterPipeline.from_pretrained(str(folder))
    except STARCasterError as exc:
        messages.append(f"The bundled checkpoint {BUNDLED_CHECKPOINT} could not be loaded: {public_text(str(exc))}")
        logger.warning(messages[-1])
        return None
    return LoadedPipeline(pipe, CheckpointInfo(label=BUNDLED_CHECKPOINT, revision=None))


def public_text(text: str) -> str:
    """``text`` with this machine's absolute paths shortened: the repo root dropped, the Hugging Face
    cache and the home folder named, anything else absolute cut to its last part; one line."""
    from huggingface_hub import constants

    root = Path(__file__).resolve().parents[2]
    for prefix, name in ((constants.HF_HUB_CACHE, "<HF cache>"), (str(root) + os.sep, ""), (str(Path.home()), "~")):
        text = text.replace(str(prefix), name)
    return " ".join(_short_path(word) for word in text.split())


def _short_path(word: str) -> str:
    """An absolute path → ``…/name``; other words unchanged (punctuation kept)."""
    stripped = word.strip("`'\"(),;:")
    if not (stripped.startswith(os.sep) and len(stripped) > 1):
        return word
    return word.replace(stripped, f"…/{Path(stripped).name}")


def display_label(spec: str) -> str:
    """What the page calls a local folder: relative to the repo or working directory, else its name."""
    path = Path(spec).expanduser().resolve()
    for base in (Path(__file__).resolve().parents[2], Path.cwd()):
        if path.is_relative_to(base):
            return str(path.relative_to(base))
    return path.name


def _to_device(loaded: LoadedPipeline, device: str | None) -> LoadedPipeline:
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device != "cpu":
        loaded.pipe.to(device)
    return loaded


def _info_for(spec: str) -> CheckpointInfo:
    from ..hub import looks_like_path, parse_checkpoint_spec

    if Path(spec).expanduser().is_dir() or looks_like_path(spec):
        return CheckpointInfo(label=display_label(spec), revision=None)
    repo_id, revision = parse_checkpoint_spec(spec)
    return CheckpointInfo(label=repo_id, revision=revision or "main")


def _random_info() -> CheckpointInfo:
    return CheckpointInfo(
        label=f"random {RANDOM_PRESET} weights (seed {RANDOM_SEED})", revision=None, random_weights=True
    )


def random_pipeline(cache_dir: Path) -> STARCasterPipeline:
    """Random ``demo`` weights: built once, saved under ``cache_dir``, loaded from there afterwards."""
    from ..pipeline import STARCasterPipeline
    from ..presets import build_pipeline

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
