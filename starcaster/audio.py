"""Speech audio: loading to 16 kHz mono and per-video-frame features.

Video length follows audio length: ``num_video_frames`` is the single rule for that, so the
pipeline, the writer and the tests agree on how many frames a clip has.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np

from .errors import InputError

SAMPLE_RATE = 16_000
_MEL_HOP = 160  # 10 ms at 16 kHz
_MEL_WIN = 400  # 25 ms at 16 kHz
_LOG_FLOOR = 1e-5


@dataclass(frozen=True)
class AudioFeatureConfig:
    """How a checkpoint wants its audio: log-mel bands per video frame and a window around it."""

    n_mels: int = 40
    context: int = 2  # video frames on each side of the current one
    sample_rate: int = SAMPLE_RATE

    @property
    def window(self) -> int:
        return 2 * self.context + 1


AudioSource = str | Path | np.ndarray | tuple[int, np.ndarray]


def load_audio(source: AudioSource, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Return mono float32 samples at ``sample_rate`` from a path, an array or ``(sr, array)``.

    A bare array is taken to be at ``sample_rate`` already; ``(sr, array)`` is what Gradio's
    audio component hands over (int16 or float, any channel count).
    """
    if isinstance(source, tuple):
        sr, wave = source
        wave = _to_float_mono(np.asarray(wave))
        if sr != sample_rate:
            wave = librosa.resample(wave, orig_sr=sr, target_sr=sample_rate)
    elif isinstance(source, np.ndarray):
        wave = _to_float_mono(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"Audio file not found: {path}. Check the path and try again.")
        try:
            wave, _ = librosa.load(path, sr=sample_rate, mono=True)
        except Exception as exc:  # librosa/soundfile/audioread raise many types
            raise InputError(f"Could not read audio from {path.name}: {exc}. Use wav, mp3, flac or ogg.") from exc
    wave = np.asarray(wave, dtype=np.float32)
    if wave.size == 0:
        raise InputError("The audio is empty (0 samples). Provide a clip with speech.")
    if not np.all(np.isfinite(wave)):
        raise InputError("The audio contains NaN or infinite samples. Re-export it and try again.")
    return wave


def _to_float_mono(wave: np.ndarray) -> np.ndarray:
    """Channels-last or channels-first, integer or float → float32 mono in [-1, 1]."""
    if np.issubdtype(wave.dtype, np.integer):
        wave = wave.astype(np.float32) / float(np.iinfo(wave.dtype).max)
    wave = wave.astype(np.float32)
    if wave.ndim == 2:
        channel_axis = 0 if wave.shape[0] < wave.shape[1] else 1
        wave = wave.mean(axis=channel_axis)
    if wave.ndim != 1:
        raise InputError(f"Audio must be 1-D (mono) or 2-D (channels); got shape {wave.shape}.")
    return wave


def num_video_frames(num_samples: int, fps: float, sample_rate: int = SAMPLE_RATE) -> int:
    """Frames in a video for this much audio: ceil(duration × fps), at least 1."""
    return max(1, math.ceil(num_samples * fps / sample_rate - 1e-9))


def frame_features(wave: np.ndarray, fps: float, config: AudioFeatureConfig) -> np.ndarray:
    """Log-mel features per video frame with a context window: ``[T, 2*context+1, n_mels]``.

    Mel frames (10 ms hop) are averaged over each video frame's time span, so features keep
    the same scale for any fps; edges are padded with the feature of silence.
    """
    per_frame = _mel_per_video_frame(wave, fps, config)  # [T, n_mels]
    silence = np.full((config.context, config.n_mels), _normalise(np.log(_LOG_FLOOR)), np.float32)
    padded = np.concatenate([silence, per_frame, silence])  # [T + 2c, n_mels]
    num_frames = per_frame.shape[0]
    index = np.arange(num_frames)[:, None] + np.arange(config.window)[None, :]  # [T, W]
    return padded[index]


def _mel_per_video_frame(wave: np.ndarray, fps: float, config: AudioFeatureConfig) -> np.ndarray:
    mel = librosa.feature.melspectrogram(
        y=wave, sr=config.sample_rate, n_fft=512, hop_length=_MEL_HOP, win_length=_MEL_WIN, n_mels=config.n_mels
    )  # [n_mels, M]
    log_mel = _normalise(np.log(mel + _LOG_FLOOR)).T  # [M, n_mels]
    num_frames = num_video_frames(len(wave), fps, config.sample_rate)
    mel_times = np.arange(log_mel.shape[0]) * _MEL_HOP / config.sample_rate
    owner = np.clip(np.floor(mel_times * fps).astype(int), 0, num_frames - 1)  # video frame of each mel frame
    sums = np.zeros((num_frames, config.n_mels), np.float64)
    counts = np.zeros(num_frames, np.float64)
    np.add.at(sums, owner, log_mel)
    np.add.at(counts, owner, 1.0)
    per_frame = sums / np.maximum(counts, 1.0)[:, None]
    empty = counts == 0  # fps above 100: borrow the nearest mel frame
    if empty.any():
        nearest = np.clip(np.round(np.nonzero(empty)[0] / fps * config.sample_rate / _MEL_HOP).astype(int), 0, len(log_mel) - 1)
        per_frame[empty] = log_mel[nearest]
    return per_frame.astype(np.float32)


def _normalise(log_mel: np.ndarray) -> np.ndarray:
    """Fixed affine map of natural-log mel power to roughly [-1, 1] (silence ≈ -1)."""
    return (log_mel + 5.0) / 6.5
