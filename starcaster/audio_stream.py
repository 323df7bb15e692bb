"""Speech as a stream: per-video-frame features computed in windows as samples arrive.

Why: the pipeline generates chunk by chunk, so it only needs the features of the chunk it is
about to denoise (plus ``context`` frames of look-ahead). Featurising a 3-hour recording
whole costs gigabytes; a live microphone has no "whole". ``FrameFeatureStream`` takes
samples in any pieces (``push``), says how many frames are final (``ready``) and hands out
``[F, 2*context+1, n_mels]`` windows (``take``), keeping only what later frames still need.

It computes exactly what ``audio.frame_features`` computes on the whole clip (tested to
1e-5): a log-mel frame m is centred on sample ``m * hop`` and zero-padded outside the clip
(librosa's ``center=True, pad_mode="constant"``), so it is final once the samples up to
``m * hop + n_fft / 2`` have arrived; a video frame is final once every mel frame it owns is;
its context window once the ``context`` frames after it are.

``iter_file_blocks`` decodes a file in blocks (soundfile, resampled by soxr's streaming
resampler; anything else through ffmpeg's pipe), so a long recording never sits in memory.
"""

from __future__ import annotations

import math
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from . import audio as audio_lib
from .audio import SAMPLE_RATE, AudioFeatureConfig
from .errors import InputError

BLOCK_SECONDS = 2.0  # decode granularity of iter_file_blocks
_HALF_FFT = audio_lib._MEL_FFT // 2


class FrameFeatureStream:
    """Log-mel features per video frame from samples pushed in pieces (16 kHz mono float32).

    ``push(samples)`` appends; ``end()`` says no more will come (the clip's last frames become
    final). ``ready`` is how many frames can be taken; ``total`` the frame count once ended.
    ``take(start, stop)`` → ``[stop - start, 2*context+1, n_mels]``; frames are taken in order.
    """

    def __init__(self, fps: float, config: AudioFeatureConfig | None = None):
        config = config or AudioFeatureConfig()
        if config.extractor != "logmel":
            raise InputError(f"Streaming features need the log-mel extractor; this checkpoint uses {config.extractor}.")
        self.fps, self.config = float(fps), config
        self.hop = audio_lib._MEL_HOP
        self._samples = np.zeros(0, np.float32)  # samples from absolute index _sample_offset on
        self._sample_offset = 0
        self.samples_in = 0
        self.ended = False
        self._mel_done = 0  # mel frames computed so far (absolute count)
        self._pending: list[np.ndarray] = []  # computed mel frames not yet pooled, from _pending_start
        self._pending_start = 0
        self._frames: list[np.ndarray] = []  # pooled per-frame features from _frame_offset on
        self._frame_offset = 0
        self.frames_pooled = 0
        self._silence = np.full(config.n_mels, audio_lib._normalise(np.log(audio_lib._LOG_FLOOR)), np.float32)
        self._changed = threading.Condition()

    # -- input ----------------------------------------------------------------------------
    def push(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, np.float32).reshape(-1)
        if not np.all(np.isfinite(samples)):
            raise InputError("The audio contains NaN or infinite samples. Re-export it (e.g. as 16-bit WAV).")
        with self._changed:
            if self.ended:
                raise InputError("Audio was pushed after the stream was ended.")
            self._samples = np.concatenate([self._samples, samples])
            self.samples_in += len(samples)
            self._advance()
            self._changed.notify_all()

    def end(self) -> None:
        with self._changed:
            if not self.ended:
                self.ended = True
                self._advance()
            self._changed.notify_all()

    # -- output ---------------------------------------------------------------------------
    @property
    def total(self) -> int | None:
        """Frames in the whole clip (``num_video_frames``), known once the stream has ended."""
        return audio_lib.num_video_frames(self.samples_in, self.fps) if self.ended else None

    @property
    def ready(self) -> int:
        """Frames whose whole context window is final."""
        if self.ended:
            return self.frames_pooled
        return max(0, self.frames_pooled - self.config.context)

    def wait(self, frames: int, timeout: float | None = None) -> bool:
        """Block until ``frames`` frames are ready or the stream has ended (then True if they are)."""
        with self._changed:
            self._changed.wait_for(lambda: self.ended or self.ready >= frames, timeout)
            return self.ready >= frames

    def take(self, start: int, stop: int) -> np.ndarray:
        """Context windows of frames ``[start, stop)``: ``[F, 2*context+1, n_mels]``."""
        c = self.config.context
        with self._changed:
            if not 0 <= start <= stop <= self.ready or max(0, start - c) < self._frame_offset:
                raise ValueError(f"frames {start}..{stop} are not available (ready {self.ready}).")
            if stop == start:
                return np.zeros((0, 2 * c + 1, self.config.n_mels), np.float32)
            rows = [self._row(t) for t in range(start - c, stop + c)]
            windows = np.stack([np.stack(rows[i : i + 2 * c + 1]) for i in range(stop - start)])
            self._forget_before(start - c)
            return windows

    def _row(self, t: int) -> np.ndarray:
        if t < 0 or (self.ended and t >= self.frames_pooled):
            return self._silence  # what frame_features pads the edges with
        return self._frames[t - self._frame_offset]

    def _forget_before(self, frame: int) -> None:
        drop = max(0, frame - self._frame_offset)
        if drop:
            del self._frames[:drop]
            self._frame_offset += drop

    # -- the computation ------------------------------------------------------------------
    def _advance(self) -> None:
        """Compute the mel frames that became final, pool the video frames that did."""
        final = self._final_mel_frames()
        if final > self._mel_done:
            self._pending.extend(self._mel(self._mel_done, final))
            self._last_mel = self._pending[-1]
            self._mel_done = final
            self._drop_samples()
        self._pool()

    def _final_mel_frames(self) -> int:
        n = self.samples_in
        if self.ended:
            return 1 + max(n, audio_lib._MEL_FFT) // self.hop  # librosa's frame count (clips under 32 ms padded)
        return 0 if n < _HALF_FFT else (n - _HALF_FFT) // self.hop + 1

    def _mel(self, first: int, stop: int) -> list[np.ndarray]:
        """Mel frames ``[first, stop)`` from the buffer, zero-padded outside the clip: list of ``[n_mels]``."""
        import librosa

        lo, hi = first * self.hop - _HALF_FFT, (stop - 1) * self.hop + _HALF_FFT
        segment = np.zeros(hi - lo, np.float32)
        src_lo, src_hi = max(lo, self._sample_offset), min(hi, self._sample_offset + len(self._samples))
        if src_hi > src_lo:
            segment[src_lo - lo : src_hi - lo] = self._samples[
                src_lo - self._sample_offset : src_hi - self._sample_offset
            ]
        mel = librosa.feature.melspectrogram(
            y=segment,
            sr=self.config.sample_rate,
            n_fft=audio_lib._MEL_FFT,
            hop_length=self.hop,
            win_length=audio_lib._MEL_WIN,
            n_mels=self.config.n_mels,
            center=False,
        )  # [n_mels, stop - first]
        return list(audio_lib._normalise(np.log(mel + audio_lib._LOG_FLOOR)).T)

    def _drop_samples(self) -> None:
        keep_from = self._mel_done * self.hop - _HALF_FFT  # the next mel frame's first sample
        drop = max(0, keep_from - self._sample_offset)
        if drop:
            self._samples = self._samples[drop:]
            self._sample_offset += drop

    def _owner(self, m: int) -> int:
        """The video frame a mel frame is averaged into (as ``audio._pool_to_video_frames``)."""
        return int(np.floor(m * (self.hop / self.config.sample_rate) * self.fps))

    def _pool(self) -> None:
        """Average the final mel frames into video frames (as ``audio._pool_to_video_frames``)."""
        last = self.total - 1 if self.ended else None
        while last is None or self.frames_pooled <= last:
            t = self.frames_pooled
            owned = 0
            while owned < len(self._pending) and (t == last or self._owner(self._pending_start + owned) <= t):
                owned += 1
            if owned == len(self._pending) and not self.ended:
                return  # more mel frames of this video frame may still come
            if owned:
                self._frames.append(np.mean(np.stack(self._pending[:owned]).astype(np.float64), 0).astype(np.float32))
                del self._pending[:owned]
                self._pending_start += owned
            else:  # a video frame shorter than a mel hop: borrow the nearest mel frame
                self._frames.append(self._pending[0] if self._pending else self._last_mel)
            self.frames_pooled += 1
        self._pending.clear()


def iter_file_blocks(
    path: str | Path, sample_rate: int = SAMPLE_RATE, block_seconds: float = BLOCK_SECONDS
) -> Iterator[np.ndarray]:
    """Decode a file to float32 mono blocks at ``sample_rate``, never holding the whole clip.

    soundfile reads wav/flac/ogg/mp3 in blocks (resampled by ``soxr.ResampleStream``, the
    streaming form of the resampler ``librosa.resample`` uses); other containers go through
    ffmpeg's raw pipe, read as it comes.
    """
    import soundfile

    path = Path(path)
    try:
        handle = soundfile.SoundFile(str(path))
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        yield from _ffmpeg_blocks(path, sample_rate, block_seconds)
        return
    with handle:
        resampler = None
        if handle.samplerate != sample_rate:
            import soxr

            resampler = soxr.ResampleStream(handle.samplerate, sample_rate, 1, dtype="float32", quality="HQ")
        size = max(1, int(block_seconds * handle.samplerate))
        expected = resampled_length(handle.frames, handle.samplerate, sample_rate)
        given = 0
        while True:
            data = handle.read(size, dtype="float32", always_2d=True)
            last = len(data) < size
            block = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
            if resampler is not None:
                block = resampler.resample_chunk(block, last=last)
                if last:  # the one-shot resampler's length (the stream's flush can fall a sample short)
                    block = np.pad(block, (0, max(0, expected - given - len(block))))[: max(0, expected - given)]
            given += len(block)
            if len(block):
                yield np.ascontiguousarray(block, np.float32)
            if last:
                return


def resampled_length(frames: int, source_rate: int, sample_rate: int = SAMPLE_RATE) -> int:
    """Samples ``librosa.resample`` (soxr) gives for ``frames`` samples at ``source_rate``."""
    return frames if source_rate == sample_rate else math.ceil(frames * sample_rate / source_rate)


def _ffmpeg_blocks(path: Path, sample_rate: int, block_seconds: float) -> Iterator[np.ndarray]:
    args = [audio_lib._ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", "-i", str(path), "-vn"]
    args += ["-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "pipe:1"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    size = 4 * int(block_seconds * sample_rate)
    try:
        got_any = False
        while data := proc.stdout.read(size):
            usable = len(data) - len(data) % 4
            got_any = True
            yield np.frombuffer(data[:usable], "<f4").astype(np.float32)
        proc.wait(timeout=audio_lib.FFMPEG_TIMEOUT_S)
        if proc.returncode != 0 or not got_any:
            reason = proc.stderr.read().decode(errors="replace").strip().splitlines()
            detail = reason[-1] if reason else f"ffmpeg exit code {proc.returncode}"
            raise InputError(f"{path.name} is not a readable audio file ({detail}). Use wav, mp3, flac, ogg or m4a.")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def file_samples(path: str | Path, sample_rate: int = SAMPLE_RATE) -> int | None:
    """How many samples at ``sample_rate`` the file decodes to (from its header), or None when
    soundfile cannot read it (then the whole file is decoded through ffmpeg instead)."""
    import soundfile

    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        return None
    return resampled_length(int(info.frames), int(info.samplerate), sample_rate)


class StreamedFeatures:
    """A run's audio features, fetched chunk by chunk: ``fetch(start, stop)`` → ``[≤F, W, D]``.

    Samples come from ``push`` (a whole clip at once, or a microphone piece by piece — then
    ``fetch`` waits for them) or from ``blocks``, an iterator of decoded blocks pulled only as
    far as the requested frames need (a long file). ``total``: the frame count, or None while
    a live stream has not ended. Fewer frames than asked means the clip ended there.
    """

    def __init__(
        self,
        fps: float,
        config: AudioFeatureConfig,
        blocks: Iterator[np.ndarray] | None = None,
        total: int | None = None,
    ):
        self.stream = FrameFeatureStream(fps, config)
        self._blocks, self._expected = blocks, total
        self._resampler = None
        self._source_rate = SAMPLE_RATE
        self.clipped = False

    @property
    def total(self) -> int | None:
        return self.stream.total if self.stream.ended else self._expected

    def push(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """Append samples (float32 mono at ``sample_rate``; a live source keeps one rate); returns
        them as appended: at 16 kHz, clipped to [-1, 1]."""
        samples = np.asarray(samples, np.float32).reshape(-1)
        if sample_rate != SAMPLE_RATE:
            samples = self._resample(samples, int(sample_rate), last=False)
        return self._push(samples)

    def end(self) -> np.ndarray:
        """No more samples will come; returns what the resampler still held (appended too)."""
        tail = np.zeros(0, np.float32)
        if self._resampler is not None:
            tail = self._push(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True))
        self.stream.end()
        return tail

    def fetch(self, start: int, stop: int, timeout: float | None = None) -> np.ndarray | None:
        """Features of frames ``[start, stop)`` (fewer at the end of the clip); None if ``timeout``
        seconds passed before a live source delivered them."""
        while self._blocks is not None and self.stream.ready < stop and not self.stream.ended:
            block = next(self._blocks, None)
            if block is None:
                self.stream.end()
            else:
                self._push(block)
        if not self.stream.wait(stop, timeout) and not self.stream.ended:
            return None
        return self.stream.take(start, max(start, min(stop, self.stream.ready)))

    def _push(self, samples: np.ndarray) -> None:
        if samples.size and np.abs(samples).max() > 1.0:  # a whole clip is normalised; a stream can only clip
            self.clipped = True
            samples = np.clip(samples, -1.0, 1.0)
        self.stream.push(samples)
        return samples

    def _resample(self, samples: np.ndarray, rate: int, last: bool) -> np.ndarray:
        import soxr

        if self._resampler is None or rate != self._source_rate:
            self._resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
            self._source_rate = rate
        return self._resampler.resample_chunk(samples, last=last)


class FixedFeatures:
    """Features known in full beforehand (a frozen-time sweep repeats one instant's): ``[T, W, D]``."""

    def __init__(self, features: np.ndarray):
        self.features = features

    @property
    def total(self) -> int:
        return len(self.features)

    def fetch(self, start: int, stop: int, timeout: float | None = None) -> np.ndarray:
        return self.features[start:stop]
