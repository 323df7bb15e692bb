"""Shared pytest fixtures: keep every test offline and its files in temp dirs."""

from __future__ import annotations

import os
import tempfile

# Set before anything imports huggingface_hub (it reads these once, at import time):
# tests never reach the network, and never read or write the user's ~/.cache/huggingface.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="starcaster-test-hf-")
os.environ["HF_HUB_CACHE"] = os.path.join(os.environ["HF_HOME"], "hub")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# One OpenMP thread: the tiny test models gain nothing from more, and several threads spin-wait
# badly whenever the app's server threads, ffmpeg or another job share the 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests.helpers import serve  # noqa: E402


@pytest.fixture(scope="session")
def tiny_pipe():
    """A randomly initialised pipeline of the ``tiny`` preset (fast on CPU)."""
    from starcaster import build_pipeline

    return build_pipeline("tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_pipe, tmp_path_factory):
    """The tiny pipeline saved as a Hub-style folder (model_index.json + safetensors)."""
    folder = tmp_path_factory.mktemp("tiny-checkpoint")
    tiny_pipe.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def speech_wave():
    """1.3 s of speech-like audio at 16 kHz: a voiced buzz with a syllable envelope and a pause."""
    sr = 16_000
    t = np.arange(int(1.3 * sr)) / sr
    buzz = np.sign(np.sin(2 * np.pi * 120 * t)) * 0.3 + 0.2 * np.sin(2 * np.pi * 700 * t)
    envelope = np.clip(np.sin(2 * np.pi * 3 * t), 0, None) * (t < 1.0)
    return (buzz * envelope).astype(np.float32)


@pytest.fixture(scope="session")
def identity_vector():
    rng = np.random.default_rng(7)
    vector = rng.standard_normal(512).astype(np.float32)
    return vector / np.linalg.norm(vector)


@pytest.fixture(scope="module")
def served_app(tiny_pipe):
    """``(demo, url)``: the app on the tiny pipeline (one server per test module), 3 s audio limit, queue of 8."""
    with serve(tiny_pipe, max_audio_seconds=3.0, queue_size=8) as (demo, url):
        yield demo, url


@pytest.fixture(scope="module")
def api_client(served_app, tmp_path_factory):
    from gradio_client import Client

    return Client(served_app[1], verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))
