"""Test helpers shared by several test files."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path


def install_into_hf_cache(folder: Path, repo_id: str, cache_dir: Path, revision: str = "main") -> str:
    """Lay ``folder`` out in a Hugging Face cache exactly as ``snapshot_download`` would.

    ``models--{owner}--{name}/snapshots/{commit}/...`` plus ``refs/{revision}`` naming the
    commit, so loading by repo id with ``HF_HUB_OFFLINE=1`` goes through the real Hub code.
    """
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    repo_dir = Path(cache_dir) / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo_dir / "snapshots" / commit, dirs_exist_ok=True)
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / revision).write_text(commit)
    return commit
