"""Publish a checkpoint folder as a Hugging Face model repo (``python -m starcaster push``).

``stage_checkpoint`` writes exactly what the repo will hold into a staging folder:
``model_index.json`` and every component's configs; each component's weights as
full-precision ``diffusion_pytorch_model.safetensors`` (fp32; int8-stored tensors dequantised,
``models.weight_storage``) plus diffusers-style precision variants beside them
(``diffusion_pytorch_model.fp16.safetensors``, loaded with ``variant="fp16"``); and a generated
``README.md`` model card (``model_card.build_card``). ``push_staged`` sends that folder through
``huggingface_hub.HfApi``: ``create_repo``, ``create_branch`` for a non-main revision, one
``upload_folder`` commit (files the folder lacks are deleted from the revision, so the repo
matches the folder), and ``create_tag`` to pin the commit.

The fp32 files hold the same numbers as the loaded pipeline, so a model pulled from the Hub
generates bit-identically to the folder it was pushed from (tests/test_publish.py).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from huggingface_hub import HfApi, ModelCard
from safetensors.torch import load_file, save_file

from .errors import CheckpointError, InputError, OfflineError
from .hub import PICKLE_SUFFIXES, validate_checkpoint_folder
from .model_card import CardNotes, build_card, load_notes
from .models.weight_storage import dequantize_state_dict

VARIANT_DTYPES = {"fp16": torch.float16}
COPIED_SUFFIXES = {".json", ".txt"}
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class StagedCheckpoint:
    """A staging folder holding exactly the files of the repo to publish."""

    folder: Path
    repo_id: str
    card: ModelCard

    def files(self) -> list[tuple[str, int]]:
        """(path relative to the repo root, size in bytes) of every file, sorted."""
        return sorted(
            (p.relative_to(self.folder).as_posix(), p.stat().st_size) for p in self.folder.rglob("*") if p.is_file()
        )

    def listing(self) -> str:
        """The ``--dry-run`` file list: one ``size  path`` line per file and the total."""
        files = self.files()
        lines = [f"{size:>12,d}  {path}" for path, size in files]
        return "\n".join([*lines, f"{sum(s for _, s in files):>12,d}  total ({len(files)} files)"])


def source_label(checkpoint: Path) -> str:
    """How the card's commands name the checkpoint folder: repo- or cwd-relative, else its name."""
    path = Path(checkpoint).resolve()
    for base in (ROOT, Path.cwd()):
        if path.is_relative_to(base):
            return path.relative_to(base).as_posix()
    return path.name


def find_notes(checkpoint: Path) -> Path:
    """The card notes of a checkpoint: ``docs/model_cards/<folder name>.md`` in the repo or working directory."""
    for base in (ROOT, Path.cwd()):
        candidate = base / "docs" / "model_cards" / f"{Path(checkpoint).resolve().name}.md"
        if candidate.is_file():
            return candidate
    raise InputError(
        f"No model-card notes for {Path(checkpoint).name} (docs/model_cards/{Path(checkpoint).name}.md); "
        "write one (title, license, ## Intended use, ## Limitations) and pass it with --notes."
    )


def load_results(paths: list[str | Path]) -> list[dict]:
    """Eval result JSONs (``python -m starcaster eval --out``), paths relative to the repo or working directory."""
    results = []
    for path in paths:
        found = next((base / path for base in (Path.cwd(), ROOT) if (base / path).is_file()), None)
        if found is None:
            raise InputError(f"Eval result {path} not found.")
        results.append(json.loads(found.read_text()))
    return results


def stage_checkpoint(
    checkpoint: Path,
    staging: Path,
    *,
    repo_id: str,
    revision: str | None,
    notes: CardNotes,
    results: list[dict],
    variants: tuple[str, ...] = ("fp16",),
) -> StagedCheckpoint:
    """Write the repo's files for ``checkpoint`` into the empty folder ``staging`` (see the module docstring)."""
    checkpoint, staging = Path(checkpoint), Path(staging)
    validate_checkpoint_folder(checkpoint)
    pickles = [p.relative_to(checkpoint).as_posix() for p in checkpoint.rglob("*") if p.suffix in PICKLE_SUFFIXES]
    if pickles:
        raise CheckpointError(f"{checkpoint} holds pickled files ({', '.join(pickles)}); publish safetensors only.")
    for source in sorted(p for p in checkpoint.rglob("*") if p.is_file()):
        target = staging / source.relative_to(checkpoint)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.suffix == ".safetensors" and source.name.count(".") == 1:
            _write_weights(source, target, variants)
        elif source.suffix in COPIED_SUFFIXES:
            shutil.copy2(source, target)
    card = build_card(staging, notes, results, repo_id=repo_id, revision=revision, source=source_label(checkpoint))
    card.save(staging / "README.md")
    return StagedCheckpoint(staging, repo_id, card)


def write_folder_card(
    checkpoint: Path, path: Path, *, repo_id: str, revision: str | None, notes: CardNotes, results: list[dict]
) -> ModelCard:
    """The card of ``checkpoint`` as it is on disk (e.g. the bundled folder's own README.md)."""
    card = build_card(
        Path(checkpoint), notes, results, repo_id=repo_id, revision=revision, source=source_label(checkpoint)
    )
    card.save(path)
    return card


def _write_weights(source: Path, target: Path, variants: tuple[str, ...]) -> None:
    """``target``: the tensors as loaded (dequantised, floats in fp32); ``target.<variant>``: cast copies."""
    state = dequantize_state_dict(dict(load_file(source)))
    full = {k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    save_file(full, target, metadata={"format": "pt"})
    for variant in variants:
        dtype = VARIANT_DTYPES[variant]
        cast = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in full.items()}
        save_file(cast, target.with_name(f"{target.stem}.{variant}{target.suffix}"), metadata={"format": "pt"})


@dataclass
class PushResult:
    commit_url: str
    commit_oid: str
    pr_url: str | None
    tag: str | None


def push_staged(
    staged: StagedCheckpoint,
    *,
    revision: str | None = None,
    tag: str | None = None,
    private: bool = False,
    create_pr: bool = False,
    api: HfApi | None = None,
) -> PushResult:
    """Create the repo (and branch) if needed, upload the staging folder in one commit, tag it."""
    if tag and create_pr:
        raise InputError(
            "--tag pins a commit of a branch; a pull request is not merged yet: drop --tag or --create-pr."
        )
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    api = api or HfApi()
    try:
        return _upload(api, staged, revision, tag, private, create_pr)
    except HfHubHTTPError as exc:
        raise CheckpointError(
            f"The Hub refused the push to {staged.repo_id}: {exc} (log in with `hf auth login`)."
        ) from exc
    except (httpx2.TransportError, ConnectionError) as exc:
        raise OfflineError(f"Could not reach the Hub to push {staged.repo_id}: {exc}.") from exc


def _upload(api: HfApi, staged: StagedCheckpoint, revision, tag, private, create_pr) -> PushResult:
    api.create_repo(staged.repo_id, repo_type="model", private=private, exist_ok=True)
    if revision not in (None, "main") and not create_pr:
        api.create_branch(staged.repo_id, branch=revision, exist_ok=True)
    info = api.upload_folder(
        repo_id=staged.repo_id,
        repo_type="model",
        folder_path=staged.folder,
        revision=revision,
        commit_message=f"STARCaster checkpoint ({len(staged.files())} files)",
        create_pr=create_pr,
        delete_patterns="*",  # the revision ends up with exactly these files (.gitattributes is always kept)
    )
    if tag:
        api.create_tag(staged.repo_id, tag=tag, revision=info.oid, tag_message=f"STARCaster checkpoint {tag}")
    return PushResult(info.commit_url, info.oid, info.pr_url, tag)


def push_checkpoint(
    checkpoint: Path,
    repo_id: str,
    *,
    revision: str | None = None,
    tag: str | None = None,
    private: bool = False,
    create_pr: bool = False,
    dry_run: bool = False,
    notes: Path | None = None,
    results: list[str] | None = None,
    stage_dir: Path | None = None,
    write_card: Path | None = None,
    api: HfApi | None = None,
    say: Callable[[str], None] = print,
) -> PushResult | None:
    """``python -m starcaster push``: stage, then print (``dry_run``) or upload; None unless uploaded.

    ``write_card``: only write the card of ``checkpoint`` as it is (no staging, no upload) to that path.
    """
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except ValueError as exc:
        raise InputError(f"{repo_id!r} is not a Hub repo id (owner/name): {exc}") from exc
    card_notes = load_notes(Path(notes) if notes else find_notes(Path(checkpoint)))
    measured = load_results(card_notes.results if results is None else results)
    if stage_dir is not None and Path(stage_dir).exists() and any(Path(stage_dir).iterdir()):
        raise InputError(f"--stage-dir {stage_dir} is not empty; give a new folder.")
    if write_card is not None:
        write_folder_card(
            checkpoint, write_card, repo_id=repo_id, revision=tag or revision, notes=card_notes, results=measured
        )
        say(f"Wrote the model card of {checkpoint} to {write_card}")
        return None
    staging = Path(stage_dir) if stage_dir else Path(tempfile.mkdtemp(prefix="starcaster-push-"))
    try:
        staged = stage_checkpoint(
            checkpoint, staging, repo_id=repo_id, revision=tag or revision, notes=card_notes, results=measured
        )
        where = f"{repo_id}" + (f" (branch {revision})" if revision else "") + (f", tag {tag}" if tag else "")
        say(f"{'Would upload' if dry_run else 'Uploading'} to {where}:\n{staged.listing()}")
        if dry_run:
            say("\n--- README.md (model card) ---\n" + str(staged.card))
            return None
        result = push_staged(staged, revision=revision, tag=tag, private=private, create_pr=create_pr, api=api)
        say(f"Committed {result.commit_oid}: {result.pr_url or result.commit_url}")
        return result
    except BaseException:
        if stage_dir is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if stage_dir is None:
            shutil.rmtree(staging, ignore_errors=True)
