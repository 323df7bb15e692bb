"""`python -m starcaster push`: the staged repo, its generated model card, the upload calls, and a
pushed-then-downloaded round trip through a local Hugging Face cache.

The network is replaced at the client boundary only: ``HfApi``'s methods are monkeypatched to
record their arguments and keep a copy of the uploaded folder (the "remote"), which is then laid
out in an offline HF cache exactly as ``snapshot_download`` would, and loaded by repo id.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from huggingface_hub import CommitInfo, HfApi, ModelCard, constants
from safetensors.torch import load_file

from starcaster import BUNDLED_CHECKPOINT, HUB_CHECKPOINT, STARCasterPipeline
from starcaster.cli import main
from starcaster.compact import compact_checkpoint
from starcaster.model_card import build_card, load_notes
from starcaster.publish import load_results
from tests.helpers import install_into_hf_cache

ROOT = Path(__file__).resolve().parents[1]
RESULTS = [f"docs/results/run8/eval_run8_full_split_{mode}.json" for mode in ("reference", "embedding")]
NOTES = """---
title: Tiny test checkpoint
license: apache-2.0
tags: [starcaster, test]
results: {results}
---
<!-- not in the card -->
A tiny random checkpoint.

## Intended use

Tests.

## Limitations

Random weights.
"""


@pytest.fixture(scope="module")
def source(tiny_checkpoint, tmp_path_factory):
    """The tiny checkpoint with its UNet int8-stored (as the bundle's is) and card notes beside it."""
    base = tmp_path_factory.mktemp("publish")
    folder = base / "tiny-int8"
    compact_checkpoint(tiny_checkpoint, folder, min_elements=4096)
    (base / "notes.md").write_text(NOTES.format(results=json.dumps(RESULTS)))
    return folder, base / "notes.md"


class FakeHub:
    """Records every ``HfApi`` call of a push; ``upload_folder`` copies the folder to ``remote``."""

    def __init__(self, remote: Path):
        self.remote, self.calls = remote, []

    def install(self, monkeypatch):
        def record(name):
            def method(api, *args, **kwargs):
                self.calls.append((name, args, kwargs))
                if name == "upload_folder":
                    shutil.copytree(kwargs["folder_path"], self.remote)
                    return CommitInfo(commit_url="https://huggingface.co/someone/tiny/commit/" + "ab" * 20, commit_message="m",
                                      commit_description="", oid="ab" * 20, pr_url=None)  # fmt: skip

            return method

        for name in ("create_repo", "create_branch", "upload_folder", "create_tag"):
            monkeypatch.setattr(HfApi, name, record(name))
        return self

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]


def _front_matter(card_text: str) -> dict:
    return yaml.safe_load(card_text.split("---\n")[1])


def test_dry_run_prints_every_file_with_its_size_and_a_valid_card(source, tmp_path, monkeypatch, capsys):
    folder, notes = source
    hub = FakeHub(tmp_path / "remote").install(monkeypatch)
    stage = tmp_path / "stage"
    argv = ["push", str(folder), "someone/tiny", "--tag", "v1", "--dry-run", "--notes", str(notes), "--stage-dir"]
    assert main([*argv, str(stage)]) == 0
    assert hub.calls == []  # nothing uploaded, no repo created
    out = capsys.readouterr().out
    listing, card_text = out.split("--- README.md (model card) ---\n")
    staged = sorted(p for p in stage.rglob("*") if p.is_file())
    for path in staged:
        assert f"{path.stat().st_size:>12,d}  {path.relative_to(stage).as_posix()}" in listing
    assert f"total ({len(staged)} files)" in listing
    # every component's weights: full precision + the fp16 variant, diffusers' names; no int8 left
    for component in ("unet", "vae", "identity_encoder"):
        full = load_file(stage / component / "diffusion_pytorch_model.safetensors")
        half = load_file(stage / component / "diffusion_pytorch_model.fp16.safetensors")
        assert {v.dtype for v in full.values()} == {torch.float32} and {v.dtype for v in half.values()} == {
            torch.float16
        }
        assert full.keys() == half.keys() and not any(k.endswith("_int8_scale") for k in full)
    assert json.loads((stage / "model_index.json").read_text()) == json.loads((folder / "model_index.json").read_text())

    card = ModelCard(card_text.strip() + "\n")
    assert card.data.license == "apache-2.0" and card.data.library_name == "diffusers"
    assert card.data.pipeline_tag == "image-to-video" and card.data.tags == ["starcaster", "test"]
    assert card.data.base_model is None  # trained from scratch: no base model
    expected = {}
    for path in RESULTS:
        result = json.loads((ROOT / path).read_text())
        mode = result["meta"]["settings"]["mode"]
        expected.update({(mode, k): round(v, 4) for k, v in result["rows"][f"model ({mode})"].items()})
    got = {(r.dataset_config, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert got and all(expected[key] == value for key, value in got.items())
    assert ("reference", "lip_sync_corr") in got and ("embedding", "identity_cos") in got
    assert "model-index" in _front_matter(card_text)
    body = card.text
    for heading in ("## Usage", "## Files", "## Intended use", "## Metrics", "## Limitations", "## Reproduce"):
        assert heading in body, heading
    assert 'from_pretrained("someone/tiny", revision="v1")' in body and "not in the card" not in body
    assert (
        "python -m starcaster eval --checkpoint someone/tiny@v1 --data data/synthtalk --split test --mode reference"
        in body
    )
    assert (stage / "README.md").read_text().strip() == card_text.strip()  # the printed card is the uploaded one


def test_push_uploads_exactly_the_staged_files_in_one_commit_and_tags_it(source, tmp_path, monkeypatch, capsys):
    folder, notes = source
    hub = FakeHub(tmp_path / "remote").install(monkeypatch)
    stage = tmp_path / "stage"
    argv = ["push", str(folder), "someone/tiny", "--revision", "dev", "--tag", "v1", "--private", "--notes", str(notes)]
    assert main([*argv, "--stage-dir", str(stage)]) == 0
    assert hub.names() == ["create_repo", "create_branch", "upload_folder", "create_tag"]
    (_, args, create), (_, _, branch), (_, _, upload), (_, tag_args, tag) = hub.calls
    assert args == ("someone/tiny",) and create["private"] is True and create["exist_ok"] is True
    assert branch["branch"] == "dev"
    assert upload["repo_id"] == "someone/tiny" and upload["revision"] == "dev" and upload["delete_patterns"] == "*"
    assert tag["tag"] == "v1" and tag["revision"] == "ab" * 20
    uploaded = sorted(p.relative_to(hub.remote).as_posix() for p in hub.remote.rglob("*") if p.is_file())
    assert uploaded == sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file())
    assert "README.md" in uploaded and "unet/diffusion_pytorch_model.fp16.safetensors" in uploaded
    assert f"Committed {'ab' * 20}" in capsys.readouterr().out


def test_pushed_then_downloaded_checkpoint_generates_bit_identically(
    source, tmp_path, monkeypatch, speech_wave, identity_vector
):
    folder, notes = source
    hub = FakeHub(tmp_path / "remote").install(monkeypatch)
    assert main(["push", str(folder), "someone/round-trip", "--tag", "v1", "--notes", str(notes)]) == 0
    assert constants.HF_HUB_OFFLINE
    install_into_hf_cache(hub.remote, "someone/round-trip", constants.HF_HUB_CACHE, revision="v1")

    def frames(pipe):
        pipe.set_progress_bar_config(disable=True)
        wave = speech_wave[:8000]  # 0.5 s: 13 frames, 4 chunks, keeps the test fast
        return pipe(wave, identity_embedding=identity_vector, generator=torch.Generator().manual_seed(3)).frames

    local = STARCasterPipeline.from_pretrained(folder)
    by_id = STARCasterPipeline.from_pretrained("someone/round-trip@v1")
    assert np.array_equal(frames(by_id), frames(local))
    half = STARCasterPipeline.from_pretrained("someone/round-trip", revision="v1", variant="fp16")
    for name, value in half.unet.state_dict().items():
        assert torch.equal(value, local.unet.state_dict()[name].half().float()), name
    assert any(not torch.equal(v, local.unet.state_dict()[k]) for k, v in half.unet.state_dict().items())  # fp16 read


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--tag", "v1", "--create-pr"], "pull request"),
        (["--notes", "missing-limitations"], "lacks Limitations"),
        (["--results", "docs/results/no-such.json"], "not found"),
    ],
)
def test_push_refuses_bad_requests_with_one_line_and_no_files(source, tmp_path, monkeypatch, capsys, extra, message):
    folder, notes = source
    FakeHub(tmp_path / "remote").install(monkeypatch)
    if "missing-limitations" in extra:
        bad = tmp_path / "bad.md"
        bad.write_text(notes.read_text().replace("## Limitations", "## Other"))
        extra = ["--notes", str(bad)]
    else:
        extra = ["--notes", str(notes), *extra]
    stage = tmp_path / "stage"
    assert main(["push", str(folder), "someone/tiny", "--stage-dir", str(stage), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err
    assert not stage.exists() or not any(stage.iterdir())  # no half-staged repo left behind


def test_push_reports_a_refused_upload_in_one_line(source, tmp_path, monkeypatch, capsys):
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    folder, notes = source

    def refuse(api, *args, **kwargs):
        request = httpx2.Request("POST", "https://huggingface.co/api/repos/create")
        raise HfHubHTTPError("401 Unauthorized", response=httpx2.Response(401, request=request))

    monkeypatch.setattr(HfApi, "create_repo", refuse)
    assert main(["push", str(folder), "someone/tiny", "--notes", str(notes)]) == 2
    err = capsys.readouterr().err
    assert "The Hub refused the push to someone/tiny" in err and "hf auth login" in err


@pytest.mark.parametrize(
    "checkpoint, spec",
    [
        (BUNDLED_CHECKPOINT, HUB_CHECKPOINT),
        ("checkpoints/starcaster-synth", "starcaster/starcaster-synth@run8"),
    ],
    ids=["bundled", "teacher"],
)
def test_the_checkpoints_model_cards_are_the_generated_ones(checkpoint, spec):
    """checkpoints/*/README.md are regenerated, not hand-edited: each is the command's output from its
    notes (docs/model_cards/<folder name>.md) — the bundled live model's and its teacher's."""
    folder = ROOT / checkpoint
    notes = load_notes(ROOT / "docs" / "model_cards" / f"{folder.name}.md")
    repo_id, revision = spec.split("@")
    card = build_card(folder, notes, load_results(notes.results), repo_id=repo_id, revision=revision, source=checkpoint)
    assert (folder / "README.md").read_text() == str(card), (
        f"regenerate it: python -m starcaster push {checkpoint} "
        f"{repo_id} --tag {revision} --write-card {checkpoint}/README.md"
    )
    assert ModelCard.load(folder / "README.md").data.eval_results
