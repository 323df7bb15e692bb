"""Endless batch iterators over SynthTalk (or folder) datasets for the training loop."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from ..audio import AudioFeatureConfig, frame_features
from ..data.datasets import SynthTalkDataset


def endless(
    split_dir: Path,
    window: int,
    batch_size: int,
    kinds: tuple[str, ...],
    seed: int,
    num_workers: int = 0,
    collate: Callable[[list[dict]], dict] | None = None,
) -> Iterator[dict]:
    """Shuffled windows of ``window`` frames, batched, epoch after epoch (a new shuffle each).

    ``num_workers`` > 0 reads shards in parallel processes (on a GPU the main process would
    otherwise starve it); ``collate`` runs there too (``collate_audio_features``).
    """
    dataset = SynthTalkDataset(split_dir, window=window, kinds=kinds, shuffle=True, seed=seed, windows_per_clip=2)
    epoch = 0
    while True:
        dataset.set_epoch(epoch)
        loader = DataLoader(
            dataset, batch_size=batch_size, num_workers=num_workers, drop_last=True, collate_fn=collate or _collate
        )
        produced = 0
        for batch in loader:
            produced += 1
            yield batch
        if not produced:
            raise ValueError(
                f"{split_dir} has too few {'/'.join(kinds)} windows of {window} frames for a batch of {batch_size}."
            )
        epoch += 1


def _collate(samples: list[dict]) -> dict:
    """Stack arrays; keep strings as lists (numpy in, numpy out: the batch preparer converts)."""
    out = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        out[key] = values if isinstance(values[0], str) else np.stack([np.asarray(v) for v in values])
    return out


def audio_features(waves, frames: int, fps: float, config: AudioFeatureConfig) -> np.ndarray:
    """Per-frame features ``[B, T, W, M]`` of a batch's audio windows (CPU, numpy)."""
    return np.stack([frame_features(np.asarray(a), fps, config)[:frames] for a in waves])


def collate_audio_features(samples: list[dict], frames: int, fps: float, config: AudioFeatureConfig) -> dict:
    """``_collate`` plus the per-frame audio features, so data-loader workers compute them."""
    batch = _collate(samples)
    batch["audio_features"] = audio_features(batch["audio"], frames, fps, config)
    return batch


def mixed(
    primary: Iterator[dict], secondary: Iterator[dict] | None, secondary_prob: float, rng: np.random.Generator
) -> Iterator[dict]:
    """Draw each batch from ``secondary`` with probability ``secondary_prob`` (decoupled data)."""
    while True:
        use_secondary = secondary is not None and rng.random() < secondary_prob
        yield next(secondary if use_secondary else primary)
