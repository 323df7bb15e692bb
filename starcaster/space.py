"""Deploy the demo as a Hugging Face Space (``python -m starcaster deploy-space``).

A Space is a git repo on the Hub, and the Hub refuses plain binary blobs (and any file over
10 MB) that are not stored through LFS/Xet. This repository keeps its binaries as plain git
blobs, so a clone without git-lfs (CI) still gets real files; pushing its *history* to a Space
would therefore be refused. Instead the Space gets one commit, made through the Hub API, of
the files git tracks here (``git ls-files``: no caches, venvs or secrets; not the training states
of ``training-states/``, which only training reads, and of ``checkpoints/`` only the checkpoint the
app serves, ``starcaster.BUNDLED_CHECKPOINT``: the opt-in teacher stays out) plus the
Space's own ``.gitattributes`` (``deploy/space.gitattributes``: every binary type through
LFS); ``create_commit`` uploads binaries through LFS/Xet itself. ``include_weights=False``
leaves ``checkpoints/`` out: the Space then loads ``starcaster.HUB_CHECKPOINT`` from the model
repo (published with ``python -m starcaster push``). See docs/deploy.md.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

from . import BUNDLED_CHECKPOINT
from .errors import CheckpointError, InputError, OfflineError

ROOT = Path(__file__).resolve().parent.parent
SPACE_GITATTRIBUTES = Path("deploy") / "space.gitattributes"
HARDWARE = ("cpu-basic", "zero-a10g")  # ZeroGPU: app.py asks spaces.GPU(duration=...) per request
WEIGHTS_FOLDER = "checkpoints/"
TRAINING_STATES = "training-states/"  # runs to continue training from: never part of a Space


def tracked_files(root: Path = ROOT) -> list[str]:
    """Every file git tracks under ``root`` (repo-relative POSIX paths)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise InputError(f"{root} is not a git checkout (git ls-files failed): deploy from a clone.") from exc
    return sorted(path for path in out.decode().split("\0") if path and (Path(root) / path).is_file())


def space_files(root: Path = ROOT, include_weights: bool = True) -> dict[str, Path]:
    """Path in the Space → local file: the tracked files but ``training-states/`` and, of
    ``checkpoints/``, all but the bundled checkpoint (or all of it) + ``.gitattributes``."""
    served = f"{BUNDLED_CHECKPOINT}/" if include_weights else None

    def shipped(path: str) -> bool:
        if path.startswith(TRAINING_STATES):
            return False
        return not path.startswith(WEIGHTS_FOLDER) or (served is not None and path.startswith(served))

    files = {path: Path(root) / path for path in tracked_files(root) if shipped(path)}
    files[".gitattributes"] = Path(root) / SPACE_GITATTRIBUTES
    return files


def deploy_space(
    space_id: str,
    *,
    hardware: str = "cpu-basic",
    private: bool = False,
    include_weights: bool = True,
    dry_run: bool = False,
    root: Path = ROOT,
    api: HfApi | None = None,
    say: Callable[[str], None] = print,
) -> str | None:
    """Create the Space (Gradio SDK) if needed and commit the files in one commit; return its URL."""
    if hardware not in HARDWARE:
        raise InputError(f"--hardware must be one of {', '.join(HARDWARE)}; got {hardware!r}.")
    files = space_files(root, include_weights)
    total = sum(file.stat().st_size for file in files.values())
    say(
        "\n".join(f"{files[p].stat().st_size:>12,d}  {p}" for p in files)
        + f"\n{total:>12,d}  total ({len(files)} files)"
    )
    if dry_run:
        return None
    return _commit(api or HfApi(), space_id, files, hardware, private)


def _commit(api: HfApi, space_id: str, files: dict[str, Path], hardware: str, private: bool) -> str:
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    operations = [CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(file)) for path, file in files.items()]
    try:
        api.create_repo(space_id, repo_type="space", space_sdk="gradio", space_hardware=hardware,
                        private=private, exist_ok=True)  # fmt: skip
        stale = sorted(set(api.list_repo_files(space_id, repo_type="space")) - set(files))
        operations += [CommitOperationDelete(path_in_repo=path) for path in stale]  # the Space mirrors this tree
        info = api.create_commit(space_id, operations, repo_type="space", commit_message="Deploy STARCaster demo")
    except HfHubHTTPError as exc:
        raise CheckpointError(f"The Hub refused the Space deploy to {space_id}: {exc} (`hf auth login`?).") from exc
    except (httpx2.TransportError, ConnectionError) as exc:
        raise OfflineError(f"Could not reach the Hub to deploy {space_id}: {exc}.") from exc
    return info.commit_url
