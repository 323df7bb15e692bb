"""Writing prepared clips in the project's shard format (``data/shards.py``, ``synthtalk-v1``).

Why not WebDataset: the trainer already streams these shards (``SynthTalkDataset``: one npz per
source, split among data-loader workers and shuffled per epoch, a clip decompressed on its own),
the manifest carries every clip's metadata for filtering without opening a shard, and one format
means the whole recipe — VAE, identity encoder, every video stage, the evaluation — reads real
data unchanged. WebDataset's advantage, sequential tar reads from object storage, matters at
multi-TB scale; a shard here is one source video's clips (tens of MB at 512²), which streams
fine from a local or network disk. Converting later is a loop over ``iter_shard``.

Fields per clip (as SynthTalk's, so ``clip_sequences`` reads them): ``frames`` ``[T, R, R, 3]``
uint8, ``audio`` ``[T·640]`` float32, ``reference`` ``[R, R, 3]``, ``azimuth``/``elevation``
``[T]`` (the camera relative to the face: minus the head's yaw/pitch where known, else 0),
``head_rotation`` ``[T, 3]``; the SynthTalk-only face states (``mouth_open``, ``lip_round``,
``blink``, ``brow``) and ``identity_params`` are zeros — real footage has no such ground truth
(the manifest says so: ``ground_truth: false``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..audio import SAMPLE_RATE
from ..data.shards import FORMAT, write_manifest, write_shard

UNKNOWN_STATE = ("mouth_open", "lip_round", "blink", "brow")


def clip_arrays(
    frames: np.ndarray, audio: np.ndarray, reference: np.ndarray, pose: np.ndarray
) -> dict[str, np.ndarray]:
    """The shard fields of one clip; ``pose`` ``[T, 3]`` yaw, pitch, roll degrees (zeros if unknown)."""
    count = len(frames)
    arrays = {
        "frames": frames,
        "audio": audio.astype(np.float32),
        "reference": reference,
        "identity_params": np.zeros(0, np.float32),
        "head_rotation": pose.astype(np.float32),
        "azimuth": (-pose[:, 0]).astype(np.float32),
        "elevation": (-pose[:, 1]).astype(np.float32),
    }
    arrays.update({name: np.zeros(count, np.float32) for name in UNKNOWN_STATE})
    return arrays


def write_source_shard(directory: Path, name: str, clips: dict[str, dict[str, np.ndarray]]) -> str:
    """One shard per source video (``talking-<name>.npz``); returns its file name."""
    shard = f"talking-{name}.npz"
    write_shard(directory / shard, clips)
    return shard


def write_manifests(
    out: Path, entries: dict[str, list[dict[str, Any]]], fps: float, resolution: int, extra: dict
) -> Path:
    """Split manifests and the root manifest, in the layout ``SynthTalkDataset`` reads."""
    common = {"format": FORMAT, "fps": fps, "sample_rate": SAMPLE_RATE, "resolution": resolution,
              "ground_truth": False, "prepared": extra}  # fmt: skip
    for split, clips in entries.items():
        write_manifest(out / split, {**common, "split": split, "clips": clips})
    return write_manifest(out, {**common, "splits": {split: {"clips": clips} for split, clips in entries.items()}})
