"""Audio–video offset of a face clip, measured by a sync expert (SyncNet's offset search).

A sync expert embeds short windows of mouth frames and the matching audio into one space.
Sliding the audio by ``o`` frames and averaging the embedding distance gives ``d(o)``; its
minimum is the offset, and ``median(d) − min(d)`` is the confidence (SyncNet's LSE-C). A clip
whose offset is beyond ``tolerance`` frames, with a confident minimum, is out of sync (a dub,
a broken mux, a voice-over): ``prepare`` rejects it.

Scorers share the ``SyncScorer`` interface: ``synthtalk`` (the SynthTalk sync expert in
``eval/experts.py``, for SynthTalk-framed crops such as the wild stand-in) and ``syncnet``
(the real-face expert in ``eval/syncnet.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

SCORERS = ("synthtalk", "syncnet", "none")


@dataclass(frozen=True)
class SyncResult:
    offset: int  # frames; positive: the sound comes after the mouth
    confidence: float  # median(d) - min(d)
    distance: float  # min(d)


class SyncScorer(Protocol):
    name: str

    def distances(self, crops: np.ndarray, wave: np.ndarray, fps: float, max_offset: int) -> np.ndarray:
        """``d(o)`` for o = −max_offset … max_offset ``[2K + 1]`` of face crops ``[T, H, W, 3]`` and audio."""
        ...


def measure_sync(
    scorer: SyncScorer, crops: np.ndarray, wave: np.ndarray, fps: float, max_offset: int = 15
) -> SyncResult:
    distances = scorer.distances(crops, wave, fps, max_offset)
    best = int(np.nanargmin(distances))
    return SyncResult(best - max_offset, float(np.nanmedian(distances) - distances[best]), float(distances[best]))


class SynthTalkSyncScorer:
    """The SynthTalk sync expert (trained in ``eval/training.py``) on 64² crops and log-mel features."""

    name = "synthtalk"

    def __init__(self):
        from ..eval.experts import load_expert

        self.model = load_expert("sync")

    @torch.no_grad()
    def distances(self, crops: np.ndarray, wave: np.ndarray, fps: float, max_offset: int) -> np.ndarray:
        from ..audio import AudioFeatureConfig, frame_features
        from ..eval.metrics import sync_distance_by_offset
        from ..eval.training import sync_embeddings

        features = frame_features(wave, fps, AudioFeatureConfig())[: len(crops)]
        visual, audio = sync_embeddings(self.model, crops[: len(features)], features)
        return sync_distance_by_offset(visual, audio, max_offset)


def make_sync_scorer(kind: str, source: str | None = None) -> SyncScorer | None:
    """``synthtalk``, ``syncnet`` (weights from ``source``: a Hub repo id or a folder) or ``none``."""
    if kind not in SCORERS:
        raise ValueError(f"Unknown sync scorer {kind!r}; choose from {', '.join(SCORERS)}.")
    if kind == "none":
        return None
    if kind == "synthtalk":
        return SynthTalkSyncScorer()
    from ..eval.syncnet import SyncNetScorer, load_syncnet

    return SyncNetScorer(load_syncnet(source))
