"""Inputs are prepared once: one identity backend per pipeline, one face detection and one audio
validation per image-mode request (the app and the pipeline used to repeat both)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

import starcaster.audio as audio_module
import starcaster.identity as identity_module
import starcaster.identity.faces as faces_module

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
PORTRAIT = ROOT / "examples" / "portraits" / "portrait_0.png"


def _counting(monkeypatch, module, name: str) -> list[int]:
    calls, original = [0], getattr(module, name)

    def counted(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_identity_backend_is_built_once_per_pipeline(tiny_pipe, monkeypatch):
    """insightface loads its ONNX models when a backend is first used: a backend per request reloaded them."""
    from starcaster import STARCasterPipeline

    pipe = STARCasterPipeline(**tiny_pipe.components)
    built = _counting(monkeypatch, identity_module, "make_identity_backend")
    first = pipe.identity_backend()
    assert pipe.identity_backend() is first
    pipe.encode_identity(np.full((64, 64, 3), 90, np.uint8))
    pipe.encode_identity(np.full((64, 64, 3), 120, np.uint8))
    assert built[0] == 1
    pipe.register_modules(identity_encoder=type(tiny_pipe.identity_encoder)(**tiny_pipe.identity_encoder.config))
    assert pipe.identity_backend() is not first  # a new encoder gets a new backend


def test_image_mode_detects_the_face_once(tiny_pipe, speech_wave, monkeypatch):
    detections = _counting(monkeypatch, faces_module, "detect_faces")
    tiny_pipe.start(audio=speech_wave[:4000], image=PORTRAIT, avatar="never", fps=10)
    assert detections[0] == 1


def test_the_reference_crop_is_the_one_a_second_detection_gave(tiny_pipe, speech_wave):
    """Cropping the detected face again at the pipeline's size draws exactly what detecting again did."""
    from starcaster.identity import detect_and_crop_face, load_image

    astronaut = Image.fromarray(data.astronaut())
    for picture in (astronaut, load_image(PORTRAIT)):  # a detected face; a tight portrait (centre crop)
        embedding, portrait, _ = tiny_pipe._prepare_identity(None, picture, avatar="never")
        again = detect_and_crop_face(picture, tiny_pipe.image_size)
        np.testing.assert_array_equal(portrait, np.asarray(again.image))
        np.testing.assert_array_equal(embedding, tiny_pipe.encode_identity(picture))


@pytest.fixture
def demo_app(tiny_pipe, tmp_path):
    import app
    from starcaster.demo.checkpoint import CheckpointInfo

    return app.DemoApp(tiny_pipe, CheckpointInfo(label="tiny", revision=None, random_weights=True), 3.0, tmp_path)


def test_app_image_mode_reads_the_audio_once(demo_app, speech_wave, tmp_path, monkeypatch):
    import soundfile as sf

    path = tmp_path / "speech.wav"
    sf.write(path, speech_wave[:6000], 16_000)
    validated = _counting(monkeypatch, audio_module, "_validate")
    detections = _counting(monkeypatch, faces_module, "detect_faces")
    outputs = list(
        demo_app.generate(str(PORTRAIT), None, str(path), fps=10, chunk_length=4, progress=lambda *a, **k: None)
    )
    assert outputs[-1][4].startswith("Done")
    assert validated[0] == 1 and detections[0] == 1
