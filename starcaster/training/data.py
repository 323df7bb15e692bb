"""Endless batch iterators over SynthTalk (or folder) datasets for the training loop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from ..data.datasets import SynthTalkDataset


def endless(
    split_dir: Path, window: int, batch_size: int, kinds: tuple[str, ...], seed: int, num_workers: int = 0
) -> Iterator[dict]:
    """Shuffled windows of ``window`` frames, batched, epoch after epoch (a new shuffle each)."""
    dataset = SynthTalkDataset(split_dir, window=window, kinds=kinds, shuffle=True, seed=seed, windows_per_clip=2)
    epoch = 0
    while True:
        dataset.set_epoch(epoch)
        loader = DataLoader(
            dataset, batch_size=batch_size, num_workers=num_workers, drop_last=True, collate_fn=_collate
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


def mixed(
    primary: Iterator[dict], secondary: Iterator[dict] | None, secondary_prob: float, rng: np.random.Generator
) -> Iterator[dict]:
    """Draw each batch from ``secondary`` with probability ``secondary_prob`` (decoupled data)."""
    while True:
        use_secondary = secondary is not None and rng.random() < secondary_prob
        yield next(secondary if use_secondary else primary)
