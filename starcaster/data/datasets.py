"""Streaming torch datasets: SynthTalk shards and real clips in a folder (mp4 + wav + json).

Both yield the same dict of numpy arrays for a window of ``T`` frames, so one trainer reads
either. ``T`` frames at ``fps`` pair with ``round(T · 16000 / fps)`` audio samples starting at
sample ``round(start · 16000 / fps)``.

| key | shape, dtype | meaning |
|---|---|---|
| ``frames`` | ``[T, H, W, 3]`` uint8 | RGB frames (multiview: consecutive *views* of one instant) |
| ``audio`` | ``[T·sr/fps]`` float32 | aligned 16 kHz mono speech (zeros when ``has_audio`` is False) |
| ``azimuth``, ``elevation`` | ``[T]`` float32 | camera view in degrees (``starcaster.camera`` convention) |
| ``reference`` | ``[H, W, 3]`` uint8 | frontal neutral portrait of the identity (folder: ``<name>.png`` or frame 0) |
| ``has_audio`` | bool | False for multiview sets |
| ``kind`` | int | index into ``synthtalk.KINDS`` (talking, multiview, talking4d) |
| ``start``, ``view`` | int | first frame of the window; camera index in a talking4d clip (else 0) |
| ``key`` | str | clip key |
| SynthTalk only: ``mouth_open``, ``lip_round``, ``blink``, ``brow`` | ``[T]`` float32 | face ground truth (``state.py``) |
| SynthTalk only: ``head_rotation`` | ``[T, 3]`` float32 | yaw, pitch, roll degrees |
| SynthTalk only: ``identity_params`` / ``identity`` | ``[P]`` float32 / int64 | identity parameter vector / seed |
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ..audio import SAMPLE_RATE, load_audio
from .shards import iter_shard, load_manifest
from .state import STATE_KEYS
from .synthtalk import KINDS

Sample = dict[str, Any]
PER_FRAME_KEYS = frozenset(("frames", *STATE_KEYS))


def window_starts(num_frames: int, window: int | None, rng: np.random.Generator | None, count: int) -> list[int]:
    """Window start frames: ``count`` random ones when ``rng`` is given, else consecutive non-overlapping ones."""
    if window is None or window >= num_frames:
        return [0] if window is None or window == num_frames else []
    if rng is not None:
        return rng.integers(0, num_frames - window + 1, size=count).tolist()
    return list(range(0, num_frames - window + 1, window))


def cut_window(sequence: Sample, start: int, window: int | None, fps: float) -> Sample:
    """Frames ``[start, start + window)`` of a whole-sequence sample, with the aligned audio slice."""
    stop = len(sequence["frames"]) if window is None else start + window
    out = {k: (v[start:stop] if k in PER_FRAME_KEYS else v) for k, v in sequence.items() if k != "audio"}
    a, b = round(start * SAMPLE_RATE / fps), round(stop * SAMPLE_RATE / fps)
    audio = sequence["audio"][a:b]
    out["audio"] = np.pad(audio, (0, (b - a) - len(audio))).astype(np.float32)
    out["start"] = start
    return out


class _Windowed(IterableDataset):
    """Shared iteration: split sources among DataLoader workers, shuffle per epoch, cut windows."""

    def __init__(self, window: int | None, shuffle: bool, seed: int, windows_per_clip: int, fps: float):
        self.window, self.shuffle, self.seed = window, shuffle, seed
        self.windows_per_clip, self.fps, self.epoch = windows_per_clip, fps, 0

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle differently next pass (call before each epoch, as with DistributedSampler)."""
        self.epoch = epoch

    def _sources(self) -> Sequence[Any]:
        raise NotImplementedError

    def _sequences(self, source: Any, rng: np.random.Generator | None) -> Iterator[Sample]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Sample]:
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        rng = np.random.default_rng([self.seed, self.epoch, worker]) if self.shuffle else None
        sources = list(self._sources())[worker::workers]
        if rng is not None:
            rng.shuffle(sources)
        for source in sources:
            for sequence in self._sequences(source, rng):
                for start in window_starts(len(sequence["frames"]), self.window, rng, self.windows_per_clip):
                    yield cut_window(sequence, start, self.window, self.fps)


class SynthTalkDataset(_Windowed):
    """Windows of SynthTalk clips streamed shard by shard from a split directory.

    ``kinds`` picks sample kinds; a talking4d clip yields one sequence per camera. With
    ``shuffle`` each worker visits its shards in random order and cuts ``windows_per_clip``
    random windows per sequence; without it, every non-overlapping window in stored order.
    """

    def __init__(
        self,
        split_dir: str | Path,
        window: int | None = None,
        kinds: Sequence[str] = ("talking",),
        shuffle: bool = False,
        seed: int = 0,
        windows_per_clip: int = 1,
    ):
        self.split_dir = Path(split_dir)
        self.manifest = load_manifest(self.split_dir)
        if "clips" not in self.manifest:
            raise ValueError(
                f"{self.split_dir} is a dataset root; pass one split directory, e.g. {self.split_dir / 'train'}."
            )
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"Unknown kinds {sorted(unknown)}; choose from {KINDS}.")
        self.kinds = tuple(kinds)
        super().__init__(window, shuffle, seed, windows_per_clip, float(self.manifest["fps"]))

    def clips(self) -> list[dict[str, Any]]:
        """Manifest entries of the selected kinds."""
        return [c for c in self.manifest["clips"] if c["kind"] in self.kinds]

    def _sources(self) -> list[str]:
        return sorted({c["shard"] for c in self.clips()})

    def _sequences(self, shard: str, rng: np.random.Generator | None) -> Iterator[Sample]:
        entries = {c["key"]: c for c in self.clips()}
        stored = list(iter_shard(self.split_dir / shard))
        if rng is not None:
            rng.shuffle(stored)
        for key, arrays in stored:
            if key in entries:
                yield from clip_sequences(key, entries[key], arrays, self.fps)


def clip_sequences(key: str, entry: dict[str, Any], arrays: dict[str, np.ndarray], fps: float) -> Iterator[Sample]:
    """A stored clip as whole sequences in the table's layout (one per camera for talking4d)."""
    kind = entry["kind"]
    common = {
        "reference": arrays["reference"],
        "identity_params": arrays["identity_params"],
        "identity": np.int64(entry["identity"]),
        "kind": KINDS.index(kind),
        "key": key,
        "has_audio": kind != "multiview",
    }
    state = {name: arrays[name] for name in STATE_KEYS}
    views = arrays["frames"].shape[0] if kind == "talking4d" else 1
    for view in range(views):
        frames = arrays["frames"][view] if kind == "talking4d" else arrays["frames"]
        num_frames = len(frames)
        audio = arrays["audio"] if kind != "multiview" else np.zeros(round(num_frames * SAMPLE_RATE / fps), np.float32)
        per_view = {
            k: (v[view] if kind == "talking4d" and k in ("azimuth", "elevation") else v) for k, v in state.items()
        }
        yield {**common, **per_view, "frames": frames, "audio": audio, "view": view}


class FolderDataset(_Windowed):
    """Real clips laid out as ``<name>.mp4`` + ``<name>.wav`` (+ ``<name>.json``, ``<name>.png``).

    The json may hold ``azimuth`` / ``elevation`` (a number or one per video frame; default 0)
    and ``identity`` (any label). Video is resampled to ``fps`` by nearest frame and resized
    to ``resolution``² (None keeps the stored size); audio is resampled to 16 kHz mono.
    """

    def __init__(
        self,
        root: str | Path,
        window: int | None = None,
        fps: float = 25.0,
        resolution: int | None = None,
        shuffle: bool = False,
        seed: int = 0,
        windows_per_clip: int = 1,
    ):
        self.root = Path(root)
        self.resolution = resolution
        self.videos = sorted(self.root.glob("*.mp4"))
        if not self.videos:
            raise FileNotFoundError(f"No .mp4 files in {self.root}; see docs/synthtalk.md for the folder layout.")
        super().__init__(window, shuffle, seed, windows_per_clip, fps)

    def _sources(self) -> list[Path]:
        return self.videos

    def _sequences(self, video: Path, rng: np.random.Generator | None) -> Iterator[Sample]:
        frames = _read_video(video, self.fps, self.resolution)
        wav = video.with_suffix(".wav")
        audio = load_audio(wav) if wav.is_file() else np.zeros(round(len(frames) * SAMPLE_RATE / self.fps), np.float32)
        meta = json.loads(video.with_suffix(".json").read_text()) if video.with_suffix(".json").is_file() else {}
        reference = _read_reference(video.with_suffix(".png"), frames[0], self.resolution)
        yield {
            "frames": frames,
            "audio": audio,
            "azimuth": _per_frame_angle(meta.get("azimuth", 0.0), len(frames)),
            "elevation": _per_frame_angle(meta.get("elevation", 0.0), len(frames)),
            "reference": reference,
            "has_audio": wav.is_file(),
            "kind": KINDS.index("talking"),
            "view": 0,
            "key": video.stem,
        }


def _read_video(path: Path, fps: float, resolution: int | None) -> np.ndarray:
    """uint8 ``[T, H, W, 3]`` resampled in time to ``fps`` (nearest frame) and resized to ``resolution``²."""
    import imageio.v2 as imageio

    with imageio.get_reader(path, format="ffmpeg") as reader:
        source_fps = float(reader.get_meta_data().get("fps", fps))
        frames = np.stack([np.asarray(frame)[..., :3] for frame in reader])
    count = max(1, int(round(len(frames) * fps / source_fps)))
    frames = frames[np.clip(np.round(np.arange(count) * source_fps / fps).astype(int), 0, len(frames) - 1)]
    return _resize(frames, resolution)


def _read_reference(path: Path, first_frame: np.ndarray, resolution: int | None) -> np.ndarray:
    if not path.is_file():
        return first_frame
    from PIL import Image

    return _resize(np.asarray(Image.open(path).convert("RGB"))[None], resolution)[0]


def _resize(frames: np.ndarray, resolution: int | None) -> np.ndarray:
    if resolution is None or frames.shape[1:3] == (resolution, resolution):
        return frames
    images = torch.from_numpy(frames).permute(0, 3, 1, 2).float()  # [T, 3, H, W]
    images = torch.nn.functional.interpolate(images, size=(resolution, resolution), mode="area")
    return images.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _per_frame_angle(value: float | list[float], num_frames: int) -> np.ndarray:
    array = np.asarray(value, np.float32)
    if array.ndim == 0:
        return np.full(num_frames, float(array), np.float32)
    if len(array) != num_frames:  # a path sampled at another rate: stretch it over the clip
        array = np.interp(np.linspace(0, len(array) - 1, num_frames), np.arange(len(array)), array).astype(np.float32)
    return array
