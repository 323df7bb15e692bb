"""Audio → face motion: a deterministic mouth mapping plus seeded blinks, brows and head motion.

Mouth (deterministic, per video frame ``t`` covering samples ``[t·sr/fps, (t+1)·sr/fps)``):

    level_t  = 10·log10(mean(x²) + 1e-10)                 (dB; the loudest frame is ``peak``)
    speech_t = level_t > peak - silence_db  and  level_t > floor_db
    open_t   = clip((level_t - (peak - range_db)) / range_db, 0, 1) · fricative_t · speech_t
    fricative_t = clip(1.3 - centroid_t / 4000 Hz, 0.4, 1)   (hissing sounds open the jaw less)
    round_t  = clip((1600 Hz - centroid_t) / 1000 Hz, 0, 1) · speech_t   (dark vowels "o/u" round the lips)

where ``centroid_t`` is the spectral centroid (100–4000 Hz) of a 512-sample Hann window at
the frame centre. Coarticulation: a one-pole smoother that opens fast and closes slower
(``attack``/``release``), then a [¼, ½, ¼] kernel so the mouth anticipates the next sound.
Finally both are multiplied by ``speech`` dilated by one frame, so the mouth is exactly closed
(0) in silence more than one frame away from speech.

Blinks, brow raises and head motion are stochastic (seeded) but speech-correlated: brows lift
at phrase onsets, the head nods with the mouth opening, and slow sway continues in silence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..audio import SAMPLE_RATE, num_video_frames
from .state import FrameState


@dataclass(frozen=True)
class MotionConfig:
    """Constants of the audio → face mapping (see the module docstring for the formulas)."""

    silence_db: float = 35.0
    floor_db: float = -55.0
    range_db: float = 25.0
    attack: float = 0.8
    release: float = 0.5
    blink_rate_hz: float = 0.3
    sway_deg: float = 3.0
    nod_deg: float = 3.0


def frame_levels(wave: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-video-frame level in dB and spectral centroid in Hz: both ``[T]``."""
    num_frames = num_video_frames(len(wave), fps)
    edges = np.round(np.arange(num_frames + 1) * SAMPLE_RATE / fps).astype(int).clip(0, len(wave))
    power = np.concatenate([[0.0], np.cumsum(wave.astype(np.float64) ** 2)])
    energy = (power[edges[1:]] - power[edges[:-1]]) / np.maximum(edges[1:] - edges[:-1], 1)
    centres = (edges[:-1] + edges[1:]) // 2
    padded = np.pad(wave, 256)
    windows = padded[centres[:, None] + np.arange(512)] * np.hanning(512)  # [T, 512]
    spectrum = np.abs(np.fft.rfft(windows, axis=-1))
    freqs = np.fft.rfftfreq(512, 1 / SAMPLE_RATE)
    band = (freqs >= 100) & (freqs <= 4000)
    centroid = (spectrum[:, band] * freqs[band]).sum(-1) / (spectrum[:, band].sum(-1) + 1e-9)
    return 10 * np.log10(energy + 1e-10), centroid


def mouth_from_audio(wave: np.ndarray, fps: float, config: MotionConfig = MotionConfig()) -> tuple[np.ndarray, ...]:
    """Deterministic ``mouth_open``, ``lip_round`` and ``speech`` mask, each ``[T]``."""
    level, centroid = frame_levels(wave, fps)
    peak = level.max()
    speech = (level > peak - config.silence_db) & (level > config.floor_db)
    fricative = np.clip(1.3 - centroid / 4000.0, 0.4, 1.0)
    open_raw = np.clip((level - (peak - config.range_db)) / config.range_db, 0.0, 1.0) * fricative * speech
    round_raw = np.clip((1600.0 - centroid) / 1000.0, 0.0, 1.0) * speech
    near_speech = _dilate(speech, 1)
    mouth_open = _coarticulate(open_raw, config) * near_speech
    lip_round = _coarticulate(round_raw, config) * near_speech
    return mouth_open.astype(np.float32), lip_round.astype(np.float32), speech


def face_motion(
    wave: np.ndarray, fps: float, rng: np.random.Generator, config: MotionConfig = MotionConfig()
) -> FrameState:
    """The full face state for ``wave`` (camera frontal; the caller sets the view)."""
    mouth_open, lip_round, speech = mouth_from_audio(wave, fps, config)
    num_frames = len(mouth_open)
    onsets = np.flatnonzero(np.diff(speech.astype(int), prepend=0) > 0)
    yaw = _smooth_noise(rng, num_frames, fps, config.sway_deg)
    pitch = _smooth_noise(rng, num_frames, fps, config.sway_deg * 0.6) + config.nod_deg * _smooth(
        mouth_open, fps * 0.15
    )
    roll = _smooth_noise(rng, num_frames, fps, config.sway_deg * 0.4)
    return FrameState(
        mouth_open=mouth_open,
        lip_round=lip_round,
        blink=_blinks(rng, num_frames, fps, config.blink_rate_hz),
        brow=_brows(rng, num_frames, fps, onsets),
        head_rotation=np.stack([yaw, pitch, roll], -1),
        azimuth=np.zeros(num_frames),
        elevation=np.zeros(num_frames),
    )


def _coarticulate(raw: np.ndarray, config: MotionConfig) -> np.ndarray:
    """Fast-open / slow-close one-pole smoothing, then a symmetric [¼, ½, ¼] look-ahead kernel."""
    out = np.empty_like(raw, dtype=np.float64)
    value = 0.0
    for t, target in enumerate(raw):
        value += (config.attack if target > value else config.release) * (target - value)
        out[t] = value
    return np.convolve(np.pad(out, 1, mode="edge"), [0.25, 0.5, 0.25], mode="valid")


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    return np.convolve(mask.astype(float), np.ones(2 * radius + 1), mode="same") > 0


def _smooth(x: np.ndarray, sigma_frames: float) -> np.ndarray:
    radius = max(1, int(3 * sigma_frames))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / max(sigma_frames, 1e-3)) ** 2)
    return np.convolve(np.pad(x, radius, mode="edge"), kernel / kernel.sum(), mode="valid")


def _smooth_noise(rng: np.random.Generator, num_frames: int, fps: float, amplitude: float) -> np.ndarray:
    """A sum of three slow sinusoids (0.05–0.5 Hz) with random phases, peak ≈ ``amplitude``."""
    t = np.arange(num_frames) / fps
    freqs, phases, weights = rng.uniform(0.05, 0.5, 3), rng.uniform(0, 2 * np.pi, 3), rng.uniform(0.3, 1.0, 3)
    return (
        amplitude * (weights[:, None] * np.sin(2 * np.pi * freqs[:, None] * t + phases[:, None])).sum(0) / weights.sum()
    )


def _blinks(rng: np.random.Generator, num_frames: int, fps: float, rate_hz: float) -> np.ndarray:
    """Poisson blinks, each a 0 → 1 → 0 triangle of about 0.2 s."""
    blink = np.zeros(num_frames)
    t = np.arange(num_frames) / fps
    for start in rng.uniform(0, num_frames / fps, rng.poisson(rate_hz * num_frames / fps)):
        half = rng.uniform(0.07, 0.12)
        blink = np.maximum(blink, np.clip(1 - np.abs(t - start - half) / half, 0, 1))
    return blink


def _brows(rng: np.random.Generator, num_frames: int, fps: float, onsets: np.ndarray) -> np.ndarray:
    """A low baseline plus raises that decay over ~0.5 s after some phrase onsets."""
    t = np.arange(num_frames) / fps
    brow = np.full(num_frames, rng.uniform(0.0, 0.2))
    for onset in onsets[rng.random(len(onsets)) < 0.5]:
        lag = t - onset / fps
        brow += rng.uniform(0.3, 0.8) * np.where(lag >= 0, np.exp(-lag / 0.5), 0.0)
    return np.clip(brow, 0, 1)
