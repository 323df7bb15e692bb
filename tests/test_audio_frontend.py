"""Audio front end: decoding every container, validation of bad inputs, sync rule, features."""

from __future__ import annotations

import logging
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from starcaster.audio import (
    SAMPLE_RATE,
    AudioFeatureConfig,
    frame_features,
    load_audio,
    load_wav2vec2,
    num_video_frames,
    read_audio,
)
from starcaster.errors import CheckpointError, InputError, OfflineError

FORMATS = {  # suffix → ffmpeg encoder arguments
    ".mp3": ["-c:a", "libmp3lame", "-b:a", "64k"],
    ".flac": ["-c:a", "flac"],
    ".ogg": ["-c:a", "libvorbis"],
    ".m4a": ["-c:a", "aac", "-b:a", "64k"],
    ".webm": ["-c:a", "libopus", "-b:a", "32k"],  # what browsers record from a microphone
}


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _tone(seconds: float, sr: int = 44_100, channels: int = 2, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    left = level * np.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))  # syllable-like envelope
    return np.stack([left, 0.5 * left], axis=1)[:, :channels].astype(np.float32)


@pytest.fixture(scope="module")
def tone_wav(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "tone.wav"
    soundfile.write(path, _tone(1.5), 44_100, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def encoded(tone_wav) -> dict[str, Path]:
    """The tone re-encoded to every supported container with the bundled ffmpeg."""
    files = {}
    for suffix, codec in FORMATS.items():
        out = tone_wav.with_suffix(suffix)
        subprocess.run([_ffmpeg(), "-nostdin", "-v", "error", "-y", "-i", str(tone_wav), *codec, str(out)], check=True)
        files[suffix] = out
    return files


def test_wav_any_rate_and_channels_to_mono_16k(tone_wav):
    loaded = read_audio(tone_wav)
    assert loaded.wave.dtype == np.float32 and loaded.wave.ndim == 1
    assert abs(len(loaded.wave) - 1.5 * SAMPLE_RATE) <= 2
    assert loaded.info.source_sample_rate == 44_100 and loaded.info.channels == 2
    assert loaded.info.warnings == []


@pytest.mark.parametrize("suffix", list(FORMATS))
def test_compressed_formats_decode(encoded, suffix):
    loaded = read_audio(encoded[suffix])
    assert loaded.wave.dtype == np.float32
    assert abs(loaded.info.duration_s - 1.5) < 0.1  # codecs add a few ms of priming
    assert 0.05 < np.abs(loaded.wave).max() < 1.0


def test_espeak_speech(tmp_path):
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.skip("espeak-ng not installed")
    wav = tmp_path / "speech.wav"
    subprocess.run([espeak, "-w", str(wav), "hello, this is a talking portrait"], check=True)
    wave = load_audio(wav, trim_silence=True)
    assert 0.5 < len(wave) / SAMPLE_RATE < 5
    assert frame_features(wave, 25, AudioFeatureConfig()).shape[1:] == (5, 40)


def test_gradio_tuple_int16_stereo():
    samples = (_tone(0.5, sr=48_000) * 32767).astype(np.int16)
    wave = load_audio((48_000, samples))
    assert abs(len(wave) - 8_000) <= 2 and np.abs(wave).max() <= 1.0


# --- bad inputs: one test each, exact type and actionable message ---------------------


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found.*Check the path"):
        load_audio(tmp_path / "nope.wav")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="empty.*Record or export"):
        load_audio(path)


def test_non_audio_file_with_audio_extension(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 50)
    with pytest.raises(InputError, match="not a readable audio file.*Use a wav, mp3"):
        load_audio(path)


def test_zero_length_audio(tmp_path):
    path = tmp_path / "zero.wav"
    soundfile.write(path, np.zeros((0,), np.float32), 16_000)
    with pytest.raises(InputError, match="no samples.*Provide a clip"):
        load_audio(path)


def test_nan_samples():
    wave = np.zeros(16_000, np.float32)
    wave[100] = np.nan
    with pytest.raises(InputError, match="NaN.*Re-export"):
        load_audio(wave)


def test_silent_audio_warns_and_loads(caplog):
    with caplog.at_level(logging.WARNING, logger="starcaster.audio"):
        loaded = read_audio(np.zeros(16_000, np.float32))
    assert loaded.info.silent and len(loaded.wave) == 16_000
    assert "silent" in caplog.text and "mouth closed" in caplog.text


def test_clipped_audio_warns(caplog):
    wave = np.clip(np.sin(np.linspace(0, 200, 16_000)) * 3, -1, 1).astype(np.float32)
    with caplog.at_level(logging.WARNING, logger="starcaster.audio"):
        loaded = read_audio(wave)
    assert loaded.info.clipped_fraction > 0.1
    assert "clipped" in caplog.text and "lower input level" in caplog.text


def test_duration_limit_file(tone_wav):
    with pytest.raises(InputError, match=r"1\.5 s long; the limit here is 1 s\. Trim the clip"):
        load_audio(tone_wav, max_seconds=1.0)


def test_duration_limit_ffmpeg_path(encoded):
    with pytest.raises(InputError, match="limit here is 0.5 s. Trim the clip"):
        load_audio(encoded[".m4a"], max_seconds=0.5)


def test_bad_dtype_and_shape():
    with pytest.raises(InputError, match="dtype"):
        load_audio(np.array(["a", "b"]))
    with pytest.raises(InputError, match="1-D .* or 2-D"):
        load_audio(np.zeros((2, 2, 2), np.float32))
    with pytest.raises(InputError, match="positive integer"):
        load_audio((0, np.zeros(10, np.int16)))


# --- trimming and sync -------------------------------------------------------------------


def test_trim_silence_keeps_margin():
    speech = _tone(1.0, sr=SAMPLE_RATE, channels=1)[:, 0]
    wave = np.concatenate([np.zeros(SAMPLE_RATE), speech, np.zeros(2 * SAMPLE_RATE)]).astype(np.float32)
    loaded = read_audio(wave, trim_silence=True)
    assert 0.8 < loaded.info.trimmed_s[0] < 1.0 and 1.8 < loaded.info.trimmed_s[1] < 2.0
    assert 1.0 <= loaded.info.duration_s < 1.4


@pytest.mark.parametrize("fps", [12.5, 24, 25, 29.97, 30, 60])
@pytest.mark.parametrize("seconds", [0.01, 1.0, 2.345])
def test_frame_count_is_ceil_duration_times_fps(fps, seconds):
    samples = round(seconds * SAMPLE_RATE)
    expected = max(1, math.ceil(samples / SAMPLE_RATE * fps - 1e-9))
    assert num_video_frames(samples, fps) == expected
    wave = np.random.default_rng(0).normal(0, 0.1, samples).astype(np.float32)
    assert frame_features(wave, fps, AudioFeatureConfig()).shape == (expected, 5, 40)


def test_features_finite_and_silence_low():
    config = AudioFeatureConfig(n_mels=40, context=3)
    features = frame_features(np.zeros(SAMPLE_RATE, np.float32), 25, config)
    assert features.shape == (25, 7, 40) and np.isfinite(features).all()
    assert features.max() < -0.9  # silence maps to ≈ -1


def test_unknown_extractor():
    with pytest.raises(CheckpointError, match="Unknown audio feature extractor"):
        frame_features(np.zeros(1600, np.float32), 25, AudioFeatureConfig(extractor="mfcc"))


# --- wav2vec2 option ----------------------------------------------------------------------


def test_wav2vec2_offline_message():
    with pytest.raises(OfflineError, match="hf download nobody/wav2vec2-missing"):
        load_wav2vec2("nobody/wav2vec2-missing")


def test_wav2vec2_features_from_local_tiny_model(tmp_path):
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    config = Wav2Vec2Config(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    )  # fmt: skip
    Wav2Vec2Model(config).save_pretrained(tmp_path / "w2v")
    audio_config = AudioFeatureConfig(extractor="wav2vec2", wav2vec2_model=str(tmp_path / "w2v"), wav2vec2_dim=16)
    wave = _tone(1.0, sr=SAMPLE_RATE, channels=1)[:, 0]
    features = frame_features(wave, 25, audio_config)
    assert features.shape == (25, 5, 16) and np.isfinite(features).all()
    assert audio_config.feature_dim == 16
    with pytest.raises(CheckpointError, match="expects 32"):
        frame_features(
            wave, 25, AudioFeatureConfig(extractor="wav2vec2", wav2vec2_model=str(tmp_path / "w2v"), wav2vec2_dim=32)
        )
