"""Speech audio: loading to 16 kHz mono, validation, and per-video-frame features.

Video length follows audio length: ``num_video_frames`` is the single rule for that, so the
pipeline, the writer and the tests agree on how many frames a clip has.

Decoding: soundfile (libsndfile: wav, flac, ogg, mp3, …) first because it is fast and needs
no subprocess; anything else (m4a, webm from a browser microphone, odd codecs) goes through
the ffmpeg binary that ships in ``imageio-ffmpeg`` — the machine has no system ffmpeg and
librosa/audioread would not find one. ffmpeg writes raw float32 mono at the target rate to a
pipe, so no temporary files are left behind.
"""

from __future__ import annotations

import logging
import math
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import librosa
import numpy as np

from .errors import CheckpointError, InputError, OfflineError

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
_MEL_HOP = 160  # 10 ms at 16 kHz
_MEL_WIN = 400  # 25 ms at 16 kHz
_MEL_FFT = 512
_LOG_FLOOR = 1e-5
_WAV2VEC2_HOP = 320  # 20 ms: wav2vec2's conv front end strides 5·2⁶ samples
SILENT_PEAK = 1e-3  # -60 dBFS: below this the clip is treated as silence
CLIP_LEVEL = 0.999
CLIP_FRACTION = 1e-3  # warn when more than 0.1 % of samples sit at full scale
TRIM_MARGIN_S = 0.1  # silence kept on each side when trimming, so the first syllable is not cut
FFMPEG_TIMEOUT_S = 600
EXTRACTORS = ("logmel", "wav2vec2")


@dataclass(frozen=True)
class AudioFeatureConfig:
    """How a checkpoint wants its audio: features per video frame and a window around it.

    ``extractor="logmel"`` (default) gives ``n_mels`` log-mel bands; ``"wav2vec2"`` gives the
    last hidden state of ``wav2vec2_model`` (``wav2vec2_dim`` wide), fetched through the Hub.
    """

    n_mels: int = 40
    context: int = 2  # video frames on each side of the current one
    sample_rate: int = SAMPLE_RATE
    extractor: str = "logmel"
    wav2vec2_model: str = "facebook/wav2vec2-base-960h"
    wav2vec2_revision: str | None = None
    wav2vec2_dim: int = 768

    @property
    def window(self) -> int:
        return 2 * self.context + 1

    @property
    def feature_dim(self) -> int:
        """Width of one feature vector: the last axis of ``frame_features``."""
        return self.wav2vec2_dim if self.extractor == "wav2vec2" else self.n_mels


def audio_config_for(unet_config) -> AudioFeatureConfig:
    """The audio features a denoiser was built for, read from its config (the one dispatch point).

    ``audio_n_mels`` is the projector's input width: log-mel bands for ``audio_extractor="logmel"``
    (every checkpoint saved before the field existed), the wav2vec2 hidden size for ``"wav2vec2"``
    (then ``audio_model`` / ``audio_model_revision`` name the Hub model or a local folder).
    Pipeline and training both call this, so they always feed the model the same features.
    """
    extractor = getattr(unet_config, "audio_extractor", "logmel") or "logmel"
    if extractor not in EXTRACTORS:
        raise CheckpointError(f"Unknown audio feature extractor {extractor!r}; known: {', '.join(EXTRACTORS)}.")
    width, context = int(unet_config.audio_n_mels), int(unet_config.audio_context)
    if extractor == "logmel":
        return AudioFeatureConfig(n_mels=width, context=context)
    model = getattr(unet_config, "audio_model", None) or AudioFeatureConfig.wav2vec2_model
    revision = getattr(unet_config, "audio_model_revision", None)
    return AudioFeatureConfig(
        context=context, extractor="wav2vec2", wav2vec2_model=model, wav2vec2_revision=revision, wav2vec2_dim=width
    )


@dataclass
class AudioInfo:
    """What loading found out about a clip; ``warnings`` are meant to be shown to the user."""

    duration_s: float
    decoder: str  # "array", "soundfile" or "ffmpeg"
    source_sample_rate: int | None = None
    channels: int | None = None
    peak: float = 0.0
    clipped_fraction: float = 0.0
    silent: bool = False
    trimmed_s: tuple[float, float] = (0.0, 0.0)  # removed from the start, the end
    warnings: list[str] = field(default_factory=list)


@dataclass
class LoadedAudio:
    wave: np.ndarray  # [N] float32 mono at the requested sample rate
    info: AudioInfo


AudioSource = str | Path | np.ndarray | tuple[int, np.ndarray]


def load_audio(
    source: AudioSource,
    sample_rate: int = SAMPLE_RATE,
    *,
    max_seconds: float | None = None,
    trim_silence: bool = False,
    trim_db: float = 40.0,
) -> np.ndarray:
    """Return mono float32 samples at ``sample_rate`` from a path, an array or ``(sr, array)``.

    A bare array is taken to be at ``sample_rate`` already; ``(sr, array)`` is what Gradio's
    audio component hands over (int16 or float, any channel count). See ``read_audio`` for
    the checks and the report.
    """
    return read_audio(source, sample_rate, max_seconds=max_seconds, trim_silence=trim_silence, trim_db=trim_db).wave


def read_audio(
    source: AudioSource,
    sample_rate: int = SAMPLE_RATE,
    *,
    max_seconds: float | None = None,
    trim_silence: bool = False,
    trim_db: float = 40.0,
) -> LoadedAudio:
    """Decode, validate and optionally trim a clip; return the samples and an ``AudioInfo``.

    Errors (``InputError``): missing/empty/non-audio file, no samples, NaN/inf samples,
    longer than ``max_seconds``. Warnings (logged and listed in ``info.warnings``): silence
    (the video will keep the mouth closed), clipping, samples outside [-1, 1].
    ``trim_silence`` cuts leading/trailing audio quieter than ``trim_db`` below the peak.
    """
    if max_seconds is not None and max_seconds <= 0:
        raise InputError(f"max_seconds must be positive; got {max_seconds}.")
    wave, info = _decode(source, sample_rate, max_seconds)
    wave = _validate(wave, sample_rate, max_seconds, info)
    if trim_silence and not info.silent:
        wave = _trim(wave, sample_rate, trim_db, info)
    info.duration_s = len(wave) / sample_rate
    for message in info.warnings:
        logger.warning(message)
    return LoadedAudio(wave=wave, info=info)


# ---------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------


def _decode(source: AudioSource, sample_rate: int, max_seconds: float | None) -> tuple[np.ndarray, AudioInfo]:
    if isinstance(source, tuple):
        return _decode_gradio(source, sample_rate)
    if isinstance(source, np.ndarray):
        wave, channels = _to_float_mono(source)
        return wave, AudioInfo(
            duration_s=len(wave) / sample_rate, decoder="array", source_sample_rate=sample_rate, channels=channels
        )
    if isinstance(source, str | Path):
        return _decode_file(Path(source), sample_rate, max_seconds)
    raise InputError(
        f"Unsupported audio input of type {type(source).__name__}; give a file path, an array or (sample_rate, array)."
    )


def _decode_gradio(source: tuple, sample_rate: int) -> tuple[np.ndarray, AudioInfo]:
    if len(source) != 2:
        raise InputError("Audio given as a tuple must be (sample_rate, samples).")
    sr, samples = source
    if not isinstance(sr, int | np.integer) or sr <= 0:
        raise InputError(f"Invalid sample rate {sr!r}; it must be a positive integer (e.g. 16000).")
    wave, channels = _to_float_mono(np.asarray(samples))
    if sr != sample_rate and wave.size:
        wave = _resample(wave, int(sr), sample_rate)
    return wave, AudioInfo(
        duration_s=len(wave) / sample_rate, decoder="array", source_sample_rate=int(sr), channels=channels
    )


def _decode_file(path: Path, sample_rate: int, max_seconds: float | None) -> tuple[np.ndarray, AudioInfo]:
    if not path.is_file():
        raise InputError(f"Audio file not found: {path}. Check the path and try again.")
    if path.stat().st_size == 0:
        raise InputError(f"Audio file {path.name} is empty (0 bytes). Record or export the clip again.")
    decoded = _decode_soundfile(path, sample_rate, max_seconds)
    return decoded if decoded is not None else _decode_ffmpeg(path, sample_rate, max_seconds)


def _decode_soundfile(path: Path, sample_rate: int, max_seconds: float | None) -> tuple[np.ndarray, AudioInfo] | None:
    """Decode with libsndfile; ``None`` when it cannot read the container (ffmpeg then tries)."""
    import soundfile

    try:
        meta = soundfile.info(str(path))
        if max_seconds is not None and meta.duration > max_seconds:
            raise too_long(meta.duration, max_seconds)
        data, sr = soundfile.read(str(path), dtype="float32", always_2d=True)  # [N, C]
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        logger.debug("soundfile cannot read %s (%s); trying ffmpeg", path.name, exc)
        return None
    wave = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if sr != sample_rate and wave.size:
        wave = _resample(wave, sr, sample_rate)
    info = AudioInfo(
        duration_s=len(wave) / sample_rate, decoder="soundfile", source_sample_rate=sr, channels=data.shape[1]
    )
    return wave, info


def _decode_ffmpeg(path: Path, sample_rate: int, max_seconds: float | None) -> tuple[np.ndarray, AudioInfo]:
    """Decode anything ffmpeg knows to raw float32 mono at ``sample_rate`` through a pipe."""
    args = [
        _ffmpeg_exe(),
        "-nostdin",
        "-hide_banner",
        "-v",
        "error",
        "-i",
        str(path),
        "-vn",
        "-ac",
        "1",
        "-ar",
        str(sample_rate),
    ]
    if max_seconds is not None:
        args += ["-t", f"{max_seconds + 1.0:.3f}"]  # decode just past the limit, not the whole file
    args += ["-f", "f32le", "pipe:1"]
    try:
        result = subprocess.run(args, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise InputError(
            f"Decoding {path.name} took longer than {FFMPEG_TIMEOUT_S} s. Convert it to a WAV file and try again."
        ) from exc
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace")
        if "does not contain any stream" in stderr or "matches no streams" in stderr:
            raise InputError(
                f"{path.name} has no audio track (a video without sound?). Give a recording with speech: "
                "wav, mp3, flac, ogg, m4a or webm, or a video that has sound."
            )
        reason = stderr.strip().splitlines()
        detail = reason[-1] if reason else f"ffmpeg exit code {result.returncode}"
        raise InputError(
            f"{path.name} is not a readable audio file ({detail}). Use a wav, mp3, flac, ogg, m4a or webm recording."
        )
    wave = np.frombuffer(result.stdout, dtype="<f4").astype(np.float32)
    if max_seconds is not None and len(wave) > max_seconds * sample_rate:
        raise too_long(None, max_seconds)
    return wave, AudioInfo(duration_s=len(wave) / sample_rate, decoder="ffmpeg")


@lru_cache(maxsize=1)
def _ffmpeg_exe() -> str:
    """The ffmpeg binary bundled in imageio-ffmpeg (no system ffmpeg is assumed)."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # ImportError, or RuntimeError when the binary is missing
        raise InputError(
            f"No ffmpeg available to decode this format ({exc}). pip install imageio-ffmpeg, or convert the audio to WAV/FLAC."
        ) from exc


def _resample(wave: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    return librosa.resample(wave, orig_sr=orig_sr, target_sr=target_sr).astype(np.float32)


def _to_float_mono(wave: np.ndarray) -> tuple[np.ndarray, int]:
    """Channels-last or channels-first, integer or float → float32 mono in [-1, 1], channel count."""
    if wave.dtype == np.bool_ or not (np.issubdtype(wave.dtype, np.integer) or np.issubdtype(wave.dtype, np.floating)):
        raise InputError(f"Audio samples must be integers or floats; got dtype {wave.dtype}.")
    if np.issubdtype(wave.dtype, np.unsignedinteger):  # e.g. 8-bit PCM, centred at 128
        info = np.iinfo(wave.dtype)
        wave = (wave.astype(np.float64) - (info.max + 1) / 2) / ((info.max + 1) / 2)
    elif np.issubdtype(wave.dtype, np.integer):
        wave = wave.astype(np.float64) / float(-np.iinfo(wave.dtype).min)
    wave = wave.astype(np.float32)
    channels = 1
    if wave.ndim == 2:
        channel_axis = 0 if wave.shape[0] < wave.shape[1] else 1
        channels = wave.shape[channel_axis]
        wave = wave.mean(axis=channel_axis)
    if wave.ndim != 1:
        raise InputError(f"Audio must be 1-D (mono) or 2-D (channels); got shape {wave.shape}.")
    return wave, channels


# ---------------------------------------------------------------------------------------
# Validation and trimming
# ---------------------------------------------------------------------------------------


def _validate(wave: np.ndarray, sample_rate: int, max_seconds: float | None, info: AudioInfo) -> np.ndarray:
    wave = np.asarray(wave, dtype=np.float32)
    if wave.size == 0:
        raise InputError(
            "The audio has no samples (zero length). Provide a clip with speech, at least a fraction of a second long."
        )
    if not np.all(np.isfinite(wave)):
        raise InputError("The audio contains NaN or infinite samples. Re-export it (e.g. as 16-bit WAV) and try again.")
    duration = len(wave) / sample_rate
    if max_seconds is not None and duration > max_seconds:
        raise too_long(duration, max_seconds)
    info.peak = float(np.abs(wave).max())
    info.clipped_fraction = float(np.mean(np.abs(wave) >= CLIP_LEVEL))
    if info.peak > 1.0:
        info.warnings.append(
            f"Audio samples reach {info.peak:.2f}, outside [-1, 1]; scaled down. Export it normalised to avoid this."
        )
        wave = wave / info.peak
    if info.peak < SILENT_PEAK:
        info.silent = True
        info.warnings.append(
            "The audio is silent (peak below -60 dBFS); the video will keep the mouth closed. Check the recording's input level."
        )
    elif info.clipped_fraction > CLIP_FRACTION:
        info.warnings.append(
            f"{100 * info.clipped_fraction:.1f}% of the audio samples are clipped (at full scale); lip sync may suffer. Record at a lower input level."
        )
    return wave


def too_long(duration: float | None, max_seconds: float) -> InputError:
    length = f"{duration:.1f} s long" if duration is not None else "longer than that"
    return InputError(
        f"The audio is {length}; the limit here is {max_seconds:g} s. Trim the clip, or use the CLI, "
        "which has no limit by default and streams long clips."
    )


def _trim(wave: np.ndarray, sample_rate: int, top_db: float, info: AudioInfo) -> np.ndarray:
    """Cut leading/trailing silence, keeping ``TRIM_MARGIN_S`` on each side."""
    _, (start, end) = librosa.effects.trim(wave, top_db=top_db, frame_length=_MEL_WIN * 2, hop_length=_MEL_HOP)
    margin = int(TRIM_MARGIN_S * sample_rate)
    start, end = max(0, start - margin), min(len(wave), end + margin)
    info.trimmed_s = (start / sample_rate, (len(wave) - end) / sample_rate)
    return wave[start:end]


# ---------------------------------------------------------------------------------------
# Frames and features
# ---------------------------------------------------------------------------------------


def num_video_frames(num_samples: int, fps: float, sample_rate: int = SAMPLE_RATE) -> int:
    """Frames in a video for this much audio: ceil(duration × fps), at least 1."""
    if fps <= 0:
        raise InputError(f"fps must be positive; got {fps}.")
    return max(1, math.ceil(num_samples * fps / sample_rate - 1e-9))


def frame_samples(wave: np.ndarray, start: int, stop: int, fps: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The samples of video frames ``[start, stop)``, zero-padded past the end of ``wave``: what a
    piece of a stream plays beside exactly those frames."""
    lo, hi = round(start * sample_rate / fps), round(stop * sample_rate / fps)
    piece = wave[lo:hi]
    return np.pad(piece, (0, max(0, hi - lo - len(piece))))


def frame_features(wave: np.ndarray, fps: float, config: AudioFeatureConfig) -> np.ndarray:
    """Features per video frame with a context window: ``[T, 2*context+1, feature_dim]``.

    Feature frames (10 ms log-mel or 20 ms wav2vec2) are averaged over each video frame's time
    span, so features keep the same scale for any fps. Log-mel edges are padded with the
    feature of silence; wav2vec2 edges repeat the first/last frame.
    """
    if config.extractor == "logmel":
        per_frame = _mel_per_video_frame(wave, fps, config)  # [T, n_mels]
        pad_row = np.full((1, config.n_mels), _normalise(np.log(_LOG_FLOOR)), np.float32)
    elif config.extractor == "wav2vec2":
        per_frame = _wav2vec2_per_video_frame(wave, fps, config)  # [T, wav2vec2_dim]
        pad_row = None
    else:
        raise CheckpointError(f"Unknown audio feature extractor {config.extractor!r}; known: {', '.join(EXTRACTORS)}.")
    return _context_windows(per_frame, config.context, pad_row)


def _context_windows(per_frame: np.ndarray, context: int, pad_row: np.ndarray | None) -> np.ndarray:
    """``[T, D]`` → ``[T, 2*context+1, D]``; edges padded with ``pad_row`` (or repeated when None)."""
    before = np.repeat(pad_row if pad_row is not None else per_frame[:1], context, axis=0)
    after = np.repeat(pad_row if pad_row is not None else per_frame[-1:], context, axis=0)
    padded = np.concatenate([before, per_frame, after])  # [T + 2c, D]
    index = np.arange(per_frame.shape[0])[:, None] + np.arange(2 * context + 1)[None, :]  # [T, W]
    return padded[index]


def _mel_per_video_frame(wave: np.ndarray, fps: float, config: AudioFeatureConfig) -> np.ndarray:
    padded = np.pad(wave, (0, max(0, _MEL_FFT - len(wave))))  # clips under 32 ms: one full FFT window
    mel = librosa.feature.melspectrogram(
        y=padded, sr=config.sample_rate, n_fft=_MEL_FFT, hop_length=_MEL_HOP, win_length=_MEL_WIN, n_mels=config.n_mels
    )  # [n_mels, M]
    log_mel = _normalise(np.log(mel + _LOG_FLOOR)).T  # [M, n_mels]
    num_frames = num_video_frames(len(wave), fps, config.sample_rate)
    return _pool_to_video_frames(log_mel, _MEL_HOP / config.sample_rate, num_frames, fps)


def _pool_to_video_frames(features: np.ndarray, hop_s: float, num_frames: int, fps: float) -> np.ndarray:
    """Average ``[M, D]`` features (one every ``hop_s`` seconds) over each video frame → ``[T, D]``."""
    times = np.arange(features.shape[0]) * hop_s
    owner = np.clip(np.floor(times * fps).astype(int), 0, num_frames - 1)  # video frame of each feature frame
    sums = np.zeros((num_frames, features.shape[1]), np.float64)
    counts = np.zeros(num_frames, np.float64)
    np.add.at(sums, owner, features)
    np.add.at(counts, owner, 1.0)
    per_frame = sums / np.maximum(counts, 1.0)[:, None]
    empty = counts == 0  # fps above the feature rate: borrow the nearest feature frame
    if empty.any():
        nearest = np.clip(np.round(np.nonzero(empty)[0] / fps / hop_s).astype(int), 0, len(features) - 1)
        per_frame[empty] = features[nearest]
    return per_frame.astype(np.float32)


def _normalise(log_mel: np.ndarray) -> np.ndarray:
    """Fixed affine map of natural-log mel power to roughly [-1, 1] (silence ≈ -1)."""
    return (log_mel + 5.0) / 6.5


def _wav2vec2_per_video_frame(wave: np.ndarray, fps: float, config: AudioFeatureConfig) -> np.ndarray:
    import torch

    model = load_wav2vec2(config.wav2vec2_model, config.wav2vec2_revision)
    if model.config.hidden_size != config.wav2vec2_dim:
        raise CheckpointError(
            f"{config.wav2vec2_model} gives {model.config.hidden_size}-wide features but the checkpoint expects "
            f"{config.wav2vec2_dim}. Use the wav2vec2 model the checkpoint was trained with."
        )
    normalised = (wave - wave.mean()) / np.sqrt(wave.var() + 1e-7)  # what Wav2Vec2FeatureExtractor does
    padded = np.pad(normalised, (0, max(0, 400 - len(normalised))))  # the conv front end needs ≥ 25 ms
    with torch.no_grad():
        hidden = model(torch.from_numpy(padded.astype(np.float32))[None]).last_hidden_state[0]  # [M, D]
    num_frames = num_video_frames(len(wave), fps, config.sample_rate)
    return _pool_to_video_frames(hidden.float().numpy(), _WAV2VEC2_HOP / config.sample_rate, num_frames, fps)


@lru_cache(maxsize=2)
def load_wav2vec2(model_id: str, revision: str | None = None):
    """A wav2vec2 model from the Hub (HF cache) or a local folder, in eval mode; clear errors offline."""
    from huggingface_hub import constants
    from transformers import Wav2Vec2Model

    try:
        model = Wav2Vec2Model.from_pretrained(model_id, revision=revision)
    except OSError as exc:
        fetch = f"hf download {model_id}" + (f" --revision {revision}" if revision else "")
        if constants.HF_HUB_OFFLINE or "connect" in str(exc).lower():
            raise OfflineError(
                f"The wav2vec2 model {model_id} is not in the Hugging Face cache and the Hub cannot be reached. "
                f"Fetch it once while online: {fetch} — or use a checkpoint with log-mel audio features."
            ) from exc
        raise CheckpointError(
            f"Could not load the wav2vec2 model {model_id} ({exc}). Check the model id, or fetch it with: {fetch}"
        ) from exc
    return model.eval()
