"""The app's default checkpoint is a Hub repo id: offline, unreachable or silent Hub → cache →
bundled folder, each said in one line without a server path; `download` takes the same id."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest
from huggingface_hub import constants

import starcaster.demo.checkpoint as support
import starcaster.hub as hub
from starcaster import BUNDLED_CHECKPOINT, HUB_CHECKPOINT
from starcaster.cli import main
from tests.helpers import black_hole, free_port, install_into_hf_cache


@pytest.fixture
def app_env(monkeypatch, tiny_checkpoint, tmp_path):
    """A unique default repo id (the HF cache is shared by the session), the tiny folder as the bundle."""
    repo = f"starcaster-test/default-{tmp_path.name}"
    monkeypatch.setattr(support, "HUB_CHECKPOINT", f"{repo}@run8")
    monkeypatch.setattr(support, "bundled_checkpoint", lambda: Path(tiny_checkpoint))
    monkeypatch.delenv(support.CHECKPOINT_ENV, raising=False)
    return repo


def _assert_public_one_liner(message: str) -> None:
    assert "\n" not in message and "/tmp" not in message and str(Path.home()) not in message, message


def test_the_default_checkpoint_is_one_pinned_hub_repo_id():
    repo_id, revision = hub.parse_checkpoint_spec(HUB_CHECKPOINT)
    assert not hub.looks_like_path(HUB_CHECKPOINT) and repo_id.count("/") == 1 and revision
    assert support.HUB_CHECKPOINT == HUB_CHECKPOINT


def test_offline_and_not_cached_falls_back_to_the_bundled_folder_in_one_line(app_env):
    loaded = support.load_app_pipeline(None)
    assert loaded.info.label == BUNDLED_CHECKPOINT and not loaded.info.random_weights
    (message,) = loaded.info.messages
    assert f"{app_env}@run8 is not in the local Hugging Face cache" in message
    assert f"Falling back to the bundled checkpoint `{BUNDLED_CHECKPOINT}`" in message
    _assert_public_one_liner(message)


def test_offline_with_the_repo_cached_loads_it_and_says_so(app_env, tiny_checkpoint):
    install_into_hf_cache(tiny_checkpoint, app_env, constants.HF_HUB_CACHE, revision="run8")
    loaded = support.load_app_pipeline(None)
    assert (loaded.info.label, loaded.info.revision) == (app_env, "run8")
    (message,) = loaded.info.messages
    assert message == f"Loaded `{app_env}` @ `run8` from the local Hugging Face cache: offline mode (HF_HUB_OFFLINE=1)."


@pytest.mark.parametrize("endpoint", ["refused", "silent"])
def test_an_unreachable_hub_uses_the_cache_without_hanging(app_env, tiny_checkpoint, monkeypatch, endpoint):
    """Online mode, but the Hub refuses connections or never answers: the bounded timeout turns the
    silent one into an error (HUB_TIMEOUT_S, shortened here), and the cached copy is used."""
    install_into_hf_cache(tiny_checkpoint, app_env, constants.HF_HUB_CACHE, revision="run8")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "HUB_TIMEOUT_S", 0.5)
    with black_hole() if endpoint == "silent" else _refused() as url:
        monkeypatch.setattr(constants, "ENDPOINT", url)
        loaded = support.load_app_pipeline(None)
    assert (loaded.info.label, loaded.info.revision) == (app_env, "run8")
    (message,) = loaded.info.messages
    assert "from the local Hugging Face cache: the Hub could not be reached" in message
    assert ("Timeout" in message) == (endpoint == "silent")


@contextmanager
def _refused():
    yield f"http://127.0.0.1:{free_port()}"  # nothing listens there


def test_public_text_never_shows_absolute_server_paths(tmp_path):
    text = f"Checkpoint folder not found: {tmp_path / 'deep' / 'ckpt'}. Or {constants.HF_HUB_CACHE}/models--a--b."
    public = support.public_text(text)
    assert str(tmp_path) not in public and "…/ckpt." in public and "<HF cache>/models--a--b." in public


def test_download_takes_the_default_id_and_a_precision_variant(app_env, tiny_checkpoint, capsys, monkeypatch):
    install_into_hf_cache(tiny_checkpoint, app_env, constants.HF_HUB_CACHE, revision="run8")
    monkeypatch.setattr(hub, "HUB_TIMEOUT_S", 0.5)
    assert main(["download", f"{app_env}@run8", "--variant", "fp16"]) == 0
    assert (Path(capsys.readouterr().out.strip()) / "model_index.json").is_file()
    assert hub._patterns("fp16") == (["*.json", "*.md", "*.txt", "*.fp16.safetensors"], [])
    assert "*.fp16.safetensors" in hub._patterns(None)[1]  # full precision: variants are not fetched
    assert main(["download", "starcaster-test/never-cached@run8"]) == 2
    assert "not in the local Hugging Face cache" in capsys.readouterr().err
