"""Space-readiness: LFS rules of the Space cover every binary this repo tracks (and every file over
10 MB), this repo's own blobs stay real files for clones without git-lfs, the deploy commit holds
exactly the tracked files, and the README links the model repo."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from huggingface_hub import CommitInfo, HfApi
from huggingface_hub.repocard import metadata_load

from starcaster import BUNDLED_CHECKPOINT, HUB_CHECKPOINT
from starcaster.cli import main
from starcaster.space import SPACE_GITATTRIBUTES, tracked_files

ROOT = Path(__file__).resolve().parents[1]
HUB_LIMIT = 10 * 2**20  # the Hub refuses non-LFS files above this
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"
pytestmark = pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout")


def _is_binary(path: Path) -> bool:
    return b"\0" in path.read_bytes()[:8000]  # git's own test for binary content


def _lfs_filtered(paths: list[str], attributes: Path | None) -> dict[str, bool]:
    """``git check-attr filter`` for ``paths``, with ``attributes`` as the global attributes file."""
    config = ["-c", f"core.attributesFile={attributes}"] if attributes else ["-c", "core.attributesFile=/dev/null"]
    out = subprocess.run(["git", *config, "check-attr", "filter", "-z", "--stdin"], cwd=ROOT, check=True,
                         input="\0".join(paths).encode(), capture_output=True).stdout.decode()  # fmt: skip
    fields = out.split("\0")[:-1]  # path, attribute, value triples
    return {fields[i]: fields[i + 2] == "lfs" for i in range(0, len(fields), 3)}


def test_space_lfs_rules_cover_every_tracked_binary_and_every_file_over_10_mb():
    files = tracked_files(ROOT)
    binaries = [p for p in files if _is_binary(ROOT / p)]
    large = [p for p in files if (ROOT / p).stat().st_size > HUB_LIMIT]
    assert f"{BUNDLED_CHECKPOINT}/unet/diffusion_pytorch_model.safetensors" in binaries
    filtered = _lfs_filtered(sorted(set(binaries) | set(large)), ROOT / SPACE_GITATTRIBUTES)
    assert [p for p, lfs in filtered.items() if not lfs] == []
    assert not any(_lfs_filtered(["README.md", "app.py"], ROOT / SPACE_GITATTRIBUTES).values())  # text stays text


def test_this_repo_keeps_real_files_for_clones_without_git_lfs():
    """No tracked file is an LFS pointer, and this repo's own attributes route nothing through LFS
    (a git-lfs user would otherwise see the plain blobs as modified and commit pointers)."""
    files = tracked_files(ROOT)
    assert [p for p in files if (ROOT / p).read_bytes()[: len(LFS_POINTER)] == LFS_POINTER] == []
    assert [p for p, lfs in _lfs_filtered(files, None).items() if lfs] == []


def test_readme_front_matter_is_a_gradio_space_linking_the_model_repo():
    meta = metadata_load(ROOT / "README.md")
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert HUB_CHECKPOINT.split("@")[0] in meta["models"]


@pytest.mark.parametrize("weights", [True, False])
def test_deploy_commits_exactly_the_tracked_files_and_the_space_attributes(monkeypatch, capsys, weights):
    calls = {}
    monkeypatch.setattr(HfApi, "create_repo", lambda api, repo_id, **kw: calls.setdefault("create", (repo_id, kw)))
    monkeypatch.setattr(HfApi, "list_repo_files", lambda api, repo_id, **kw: ["old_file.py", ".gitattributes"])

    def create_commit(api, repo_id, operations, **kwargs):
        calls["operations"] = list(operations)
        return CommitInfo(commit_url=f"https://huggingface.co/spaces/{repo_id}/commit/{'cd' * 20}",
                          commit_message="m", commit_description="", oid="cd" * 20, pr_url=None)  # fmt: skip

    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    argv = ["deploy-space", "someone/starcaster-demo", "--hardware", "zero-a10g"]
    assert main(argv + ([] if weights else ["--without-weights"])) == 0
    repo_id, create = calls["create"]
    assert repo_id == "someone/starcaster-demo" and create["space_sdk"] == "gradio"
    assert create["space_hardware"] == "zero-a10g" and create["repo_type"] == "space"
    added = {op.path_in_repo: op for op in calls["operations"] if hasattr(op, "path_or_fileobj")}
    deleted = [op.path_in_repo for op in calls["operations"] if not hasattr(op, "path_or_fileobj")]
    served = f"{BUNDLED_CHECKPOINT}/"  # of checkpoints/ only what the app serves
    expected = {
        p for p in tracked_files(ROOT) if not p.startswith("checkpoints/") or (weights and p.startswith(served))
    }
    expected = {p for p in expected if not p.startswith("training-states/")} | {".gitattributes"}  # runs to train on
    tracked = tracked_files(ROOT)
    assert any(p.startswith("training-states/") for p in tracked) and any(p.startswith(served) for p in tracked)
    assert any(
        p.startswith("checkpoints/") and not p.startswith(served) for p in tracked
    )  # the opt-in teacher: left out
    assert set(added) == expected and deleted == ["old_file.py"]
    assert Path(added[".gitattributes"].path_or_fileobj) == ROOT / SPACE_GITATTRIBUTES
    assert "Deployed: https://huggingface.co/spaces/someone/starcaster-demo/commit/" in capsys.readouterr().out


def test_deploy_dry_run_uploads_nothing(monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise AssertionError("a dry run reached the Hub")

    for name in ("create_repo", "create_commit", "list_repo_files"):
        monkeypatch.setattr(HfApi, name, refuse)
    assert main(["deploy-space", "someone/starcaster-demo", "--dry-run"]) == 0
    assert "app.py" in capsys.readouterr().out
