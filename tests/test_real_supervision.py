"""Real-face supervision: wav2vec2 audio features and a SyncNet lip expert, wired into pipeline and training.

Both are tested on small randomly initialised models built here (the real weights are a Hub
download away; checkpoints.md names them).
"""

from __future__ import annotations

import csv
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from starcaster.audio import AudioFeatureConfig, audio_config_for, frame_features
from starcaster.errors import CheckpointError
from starcaster.eval.syncnet import (
    SyncNet,
    SyncNetConfig,
    SyncNetScorer,
    convert_syncnet,
    load_syncnet,
    log_mel,
    save_syncnet,
)

W2V_DIM = 16


@pytest.fixture(scope="module")
def wav2vec2_folder(tmp_path_factory):
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    config = Wav2Vec2Config(
        hidden_size=W2V_DIM, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("w2v") / "tiny-wav2vec2"
    torch.manual_seed(0)
    Wav2Vec2Model(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def syncnet_folder(tmp_path_factory):
    torch.manual_seed(0)
    return save_syncnet(SyncNet(SyncNetConfig.tiny()), tmp_path_factory.mktemp("syncnet") / "tiny")


def _wave(seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)


# --- wav2vec2 -------------------------------------------------------------------------


def test_audio_config_dispatches_on_the_unet_config(wav2vec2_folder):
    old = SimpleNamespace(audio_n_mels=40, audio_context=2)  # a checkpoint saved before the field existed
    assert audio_config_for(old) == AudioFeatureConfig(n_mels=40, context=2)
    new = SimpleNamespace(audio_n_mels=W2V_DIM, audio_context=1, audio_extractor="wav2vec2",
                          audio_model=str(wav2vec2_folder), audio_model_revision=None)  # fmt: skip
    config = audio_config_for(new)
    assert config.extractor == "wav2vec2" and config.feature_dim == W2V_DIM and config.window == 3
    with pytest.raises(CheckpointError, match="Unknown audio feature extractor"):
        audio_config_for(SimpleNamespace(audio_n_mels=8, audio_context=1, audio_extractor="mfcc"))
    from starcaster.models.configs import get_preset

    real = get_preset("real").unet
    assert real["audio_extractor"] == "wav2vec2" and real["audio_n_mels"] == 768


def test_pipeline_generates_from_wav2vec2_features(wav2vec2_folder):
    from starcaster import build_pipeline

    pipe = build_pipeline("tiny", audio_extractor="wav2vec2", audio_model=str(wav2vec2_folder), audio_n_mels=W2V_DIM)
    assert pipe.audio_config.extractor == "wav2vec2"
    features = frame_features(_wave(), 25, pipe.audio_config)
    assert features.shape == (25, 3, W2V_DIM)
    out = pipe(audio=_wave(0.32), identity_embedding=np.eye(512, dtype=np.float32)[0], num_inference_steps=1,
               chunk_length=2, output_type="np")  # fmt: skip
    assert len(out.frames) == 8 and np.isfinite(np.asarray(out.frames, np.float32)).all()


# --- SyncNet --------------------------------------------------------------------------


def test_syncnet_pickle_converts_through_weights_only(tmp_path):
    torch.manual_seed(1)
    model = SyncNet(SyncNetConfig.tiny()).eval()
    torch.save({"state_dict": model.state_dict(), "global_step": 10}, tmp_path / "syncnet.pt")  # LatentSync's layout
    folder = convert_syncnet(tmp_path / "syncnet.pt", tmp_path / "converted", SyncNetConfig.tiny())
    assert (folder / "model.safetensors").is_file() and not list(folder.glob("*.pt"))
    loaded = load_syncnet(folder)
    faces, mel = torch.randn(2, 15, 16, 32), torch.randn(2, 1, 80, 20)
    with torch.no_grad():
        for a, b in zip(model(faces, mel), loaded(faces, mel)):
            torch.testing.assert_close(a, b)
            assert a.shape == (2, 32) and torch.allclose(a.norm(dim=1), torch.ones(2))


def test_syncnet_refuses_code_and_wrong_layouts(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this would run code",))

    with open(tmp_path / "evil.pt", "wb") as handle:
        pickle.dump({"state_dict": Payload()}, handle)
    with pytest.raises(CheckpointError, match="tensors-only"):
        convert_syncnet(tmp_path / "evil.pt", tmp_path / "out", SyncNetConfig.tiny())
    torch.save({"visual_encoder.conv_in.weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="does not match the SyncNet layout"):
        convert_syncnet(tmp_path / "other.pt", tmp_path / "out2", SyncNetConfig.tiny())
    assert not (tmp_path / "out").exists() and not (tmp_path / "out2").exists()


def test_syncnet_scorer_and_lip_reading(syncnet_folder):
    model = load_syncnet(syncnet_folder)
    crops = np.random.default_rng(0).integers(0, 255, (30, 32, 32, 3), dtype=np.uint8)
    distances = SyncNetScorer(model).distances(crops, _wave(1.2), 25, max_offset=4)
    assert distances.shape == (9,) and np.isfinite(distances).all()
    assert log_mel(_wave(0.64)).shape[0] == 80
    frames = torch.rand(2, 3, 3, 48, 48, requires_grad=True)  # a chunk shorter than the 5-frame window: padded
    reading = model.read_clips(frames * 2 - 1)
    assert reading.shape == (2, 32)
    reading.sum().backward()
    assert frames.grad.abs().sum() > 0  # the loss reaches the generated pixels


# --- the recipe uses both -------------------------------------------------------------


@pytest.fixture(scope="module")
def recipe_setup(tmp_path_factory):
    from starcaster.data.synthtalk import SynthConfig, generate_dataset
    from starcaster.models.autoencoders import build_vae
    from starcaster.models.configs import get_preset
    from starcaster.models.identity_encoder import IdentityEncoder

    root = tmp_path_factory.mktemp("recipe")
    generate_dataset(SynthConfig(out=root / "data", clips=4, seconds=1.0, eval_seconds=1.0, resolution=32,
                                 supersample=1, views=4, test_views=2, eval_clips=1), progress=False)  # fmt: skip
    torch.manual_seed(0)
    spec = get_preset("tiny")
    build_vae(spec).save_pretrained(root / "components" / "vae")
    IdentityEncoder(**spec.identity_encoder).save_pretrained(root / "components" / "identity_encoder")
    return root


def test_real_recipe_modules_train_together(recipe_setup, wav2vec2_folder, syncnet_folder, tmp_path):
    """A motion stage on wav2vec2 features with the SyncNet lip-reading loss: the real recipe's supervision."""
    from starcaster.training.config import load_config
    from starcaster.training.recipe import run

    (tmp_path / "cfg.yaml").write_text(
        f"""preset: tiny
bf16: false
log_every: 1
ema_decay: 0.9
sample_seconds: 0
lip_expert: syncnet
lip_expert_weights: {syncnet_folder}
unet_overrides: {{audio_extractor: wav2vec2, audio_model: {wav2vec2_folder}, audio_n_mels: {W2V_DIM}}}
stages:
  - {{name: motion, kind: teacher, steps: 2, batch_size: 2, context_frames: 2, chunk_length: 2, lip_weight: 0.5,
     first_chunk_prob: 0.0}}
"""
    )
    root = recipe_setup
    cfg = load_config(
        tmp_path / "cfg.yaml", data=root / "data", out=tmp_path / "run", components_from=root / "components"
    )
    pipe = run(cfg, only="motion")
    rows = list(csv.DictReader((tmp_path / "run/motion/log.csv").open()))
    assert len(rows) == 2 and all(float(r["lip"]) >= 0 for r in rows)  # the SyncNet loss was computed
    assert pipe.unet.config.audio_extractor == "wav2vec2" and pipe.audio_config.feature_dim == W2V_DIM
