"""Resolve a checkpoint to a local folder: a path, or a Hub repo id with optional revision.

One function (``resolve_checkpoint``) owns every way this can go wrong, so the app, the CLI
and ``from_pretrained`` all give the same clear message:
offline with the files not cached, a repo or revision that doesn't exist, a folder missing
a component, weights only available as pickles (refused: safetensors only, never
``trust_remote_code``), or a safetensors file whose header is corrupt.

``fetch_checkpoint`` also says where the folder came from (a local folder, the Hub, or the
local Hugging Face cache because the Hub was offline or unreachable), so the app can say so.
Every Hub request is bounded (``HUB_TIMEOUT_S``): an unreachable Hub is an error in seconds,
never a hang.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi, constants, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from safetensors import safe_open

from .errors import CheckpointError, OfflineError

logger = logging.getLogger(__name__)

# What a pipeline checkpoint needs; pickled weights are never fetched, nor precision variants
# (``*.fp16.safetensors``, diffusers' naming) other than the one asked for.
ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.md", "*.txt"]
VARIANTS = ("fp16",)
PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".ckpt", ".pkl"}
ETAG_TIMEOUT_S = 10.0
# huggingface_hub sends some requests (repo_info, which snapshot_download calls first) with no
# timeout at all: a Hub that accepts the connection and never answers (a captive portal, a
# dropping firewall) would hang the app's start for ever. Every request of ours gets this
# connect/read/write timeout instead (per read, so slow large downloads are unaffected).
HUB_TIMEOUT_S = 4.0


def parse_checkpoint_spec(spec: str, revision: str | None = None) -> tuple[str, str | None]:
    """``"owner/name@rev"`` → ``("owner/name", "rev")``; an explicit ``revision`` wins."""
    name, _, rev = spec.partition("@")
    return name, revision or rev or None


def looks_like_path(spec: str) -> bool:
    """Repo ids are ``name`` or ``owner/name``; anything else is a local path."""
    return spec.startswith((".", "/", "~")) or spec.count("/") > 1 or "\\" in spec


@dataclass(frozen=True)
class ResolvedCheckpoint:
    """A checkpoint folder on this machine and where it came from."""

    folder: Path
    repo_id: str | None  # None for a local folder
    revision: str | None  # as asked for (branch, tag or commit); None = main
    source: str  # "folder", "hub" (checked against the Hub now) or "cache" (the Hub was not asked / not reached)
    reason: str | None = None  # why the cache was used: "offline mode (HF_HUB_OFFLINE=1)" or the network error

    @property
    def commit(self) -> str | None:
        """The Hub commit of a cached or downloaded snapshot (its folder name)."""
        return self.folder.name if self.repo_id else None


def resolve_checkpoint(
    spec: str, revision: str | None = None, cache_dir: str | None = None, variant: str | None = None
) -> str:
    """A local checkpoint folder for ``spec``, downloading from the Hub if needed and allowed."""
    return str(fetch_checkpoint(spec, revision, cache_dir, variant).folder)


def fetch_checkpoint(
    spec: str, revision: str | None = None, cache_dir: str | None = None, variant: str | None = None
) -> ResolvedCheckpoint:
    """Like ``resolve_checkpoint``, and say whether the folder is local, fresh from the Hub or from the cache."""
    if Path(spec).expanduser().is_dir():
        resolved = ResolvedCheckpoint(Path(spec).expanduser(), None, None, "folder")
    elif looks_like_path(spec):
        raise CheckpointError(f"Checkpoint folder not found: {spec}. Check the path, or give a Hub repo id.")
    else:
        resolved = _snapshot(spec, revision, cache_dir, variant)
    validate_checkpoint_folder(resolved.folder)
    return resolved


def _bound_hub_timeouts() -> None:
    """Make huggingface_hub's shared HTTP client fill in ``HUB_TIMEOUT_S`` wherever it asks for none."""
    global _BOUNDED
    if _BOUNDED:
        return
    import httpx2
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils import _http

    class BoundedTransport(httpx2.HTTPTransport):
        def handle_request(self, request):
            timeout = dict(request.extensions.get("timeout") or {})
            for key in ("connect", "read", "write", "pool"):
                if timeout.get(key) is None:
                    timeout[key] = HUB_TIMEOUT_S
            request.extensions["timeout"] = timeout
            return super().handle_request(request)

    def factory():
        hooks = {"request": [_http.hf_request_event_hook]} if hasattr(_http, "hf_request_event_hook") else {}
        return httpx2.Client(event_hooks=hooks, follow_redirects=True, timeout=None, transport=BoundedTransport())

    set_client_factory(factory)
    _BOUNDED = True


_BOUNDED = False


def _patterns(variant: str | None) -> tuple[list[str], list[str]]:
    """(allow, ignore) patterns: the full-precision weights, or only the ``variant`` ones."""
    if variant is None:
        return ALLOW_PATTERNS, [f"*.{v}.safetensors" for v in VARIANTS]
    if variant not in VARIANTS:
        raise CheckpointError(
            f"Unknown weights variant {variant!r}; STARCaster checkpoints have {', '.join(VARIANTS)}."
        )
    return ["*.json", "*.md", "*.txt", f"*.{variant}.safetensors"], []


def _hub_unreachable(repo_id: str, revision: str | None) -> str | None:
    """Why the Hub cannot answer for this repo right now (offline mode, network error), or None if it can.

    ``snapshot_download`` itself silently falls back to the cache on a network error; asking first
    lets the caller say which copy it got. Missing repos and revisions raise as usual.
    """
    if constants.HF_HUB_OFFLINE:
        return "offline mode (HF_HUB_OFFLINE=1)"
    import httpx2

    try:
        HfApi().repo_info(repo_id, revision=revision)
    except (httpx2.TransportError, OSError) as exc:  # connection/timeout errors; HfHubHTTPError (an OSError)
        response = getattr(exc, "response", None) if isinstance(exc, HfHubHTTPError) else None
        if response is not None and response.status_code < 500:
            raise
        return f"the Hub could not be reached ({type(exc).__name__})"
    return None


def _snapshot(spec: str, revision: str | None, cache_dir: str | None, variant: str | None) -> ResolvedCheckpoint:
    import httpx2

    repo_id, revision = parse_checkpoint_spec(spec, revision)
    _bound_hub_timeouts()
    allow, ignore = _patterns(variant)
    where = f"{repo_id}" + (f"@{revision}" if revision else "")
    try:
        reason = _hub_unreachable(repo_id, revision)
        folder = snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=cache_dir,
            allow_patterns=allow,
            ignore_patterns=ignore,
            etag_timeout=ETAG_TIMEOUT_S,
            local_files_only=reason is not None,
        )
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        maybe_path = (
            f" (No local folder {spec!r} exists either.)" if "/" in spec and Path(spec.split("/")[0]).is_dir() else ""
        )
        raise OfflineError(
            f"Checkpoint {where} is not in the local Hugging Face cache and the Hub cannot be reached{maybe_path} "
            f"(offline mode or no network). Needed: model_index.json and each component's *.safetensors. "
            f"Fetch them on a connected machine with `python -m starcaster download {where}` "
            f"(or `hf download {repo_id}`), or use the bundled checkpoint."
        ) from exc
    except (RepositoryNotFoundError, GatedRepoError, HFValidationError) as exc:
        raise CheckpointError(
            f"No accessible Hub repo {repo_id!r}: check the id (and your token for private repos)."
        ) from exc
    except RevisionNotFoundError as exc:
        raise CheckpointError(f"Repo {repo_id!r} has no revision {revision!r}.") from exc
    except (OSError, httpx2.TransportError) as exc:  # network errors other than the above
        raise OfflineError(
            f"Could not download {where} from the Hub: {exc}. Try again, or set HF_HUB_OFFLINE=1 to use the cache."
        ) from exc
    return ResolvedCheckpoint(Path(folder), repo_id, revision, "cache" if reason else "hub", reason)


def validate_checkpoint_folder(folder: Path) -> None:
    """Fail at load time, not at the first request: every component present and readable."""
    index_file = folder / "model_index.json"
    if not index_file.is_file():
        raise CheckpointError(f"{folder} is not a STARCaster checkpoint: model_index.json is missing.")
    try:
        index = json.loads(index_file.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{index_file} is not valid JSON: {exc}.") from exc
    for component, spec in index.items():
        if component.startswith("_") or not isinstance(spec, list) or spec[0] is None:
            continue
        _validate_component(folder / component, spec[1])


def _validate_component(path: Path, class_name: str) -> None:
    if not path.is_dir():
        raise CheckpointError(f"Checkpoint component folder {path.name}/ is missing in {path.parent}.")
    if class_name.endswith("Scheduler"):
        return
    weights = sorted(path.glob("*.safetensors"))
    pickles = [p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES]
    if not weights:
        if pickles:
            raise CheckpointError(
                f"{path.name}/ only has pickled weights ({', '.join(pickles)}); STARCaster loads safetensors only. "
                "Convert them once with `python -m starcaster convert` (loads with weights_only=True)."
            )
        raise CheckpointError(f"{path.name}/ has no *.safetensors weights in {path.parent}.")
    for file in weights:
        try:
            with safe_open(file, framework="pt") as handle:
                handle.keys()
        except Exception as exc:  # safetensors raises its own error types for bad headers
            raise CheckpointError(f"{path.name}/{file.name} is corrupt or truncated ({exc}); re-download it.") from exc
