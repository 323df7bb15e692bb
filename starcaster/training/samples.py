"""Sample videos per training stage: what the weights draw on a held-out clip, next to the truth.

Losses say little about a talking head (a blurred face can have a low loss); a person looking
at the frames sees at once whether eyes, mouth and view are right. After each video stage the
recipe writes ``<stage>/samples.mp4`` (with the clip's audio) and ``<stage>/samples.png`` (its
middle frame): rows = ground truth, the model given the reference portrait, the model given
only the identity embedding; columns = cameras of one held-out ``val`` clip.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputError
from ..eval.harness import EvalConfig, EvalSequence, load_sequences, pipeline_videos
from ..video import write_video

logger = logging.getLogger(__name__)
ROWS = ("ground truth", "reference image", "identity only")


def sample_rows(
    pipe, split_dir: Path, seconds: float, views: int | None = 3
) -> tuple[list[list[np.ndarray]], float, EvalSequence]:
    """``[truth, reference mode, identity-only mode]`` videos (one per camera) of the split's first talking4d clip."""
    config = EvalConfig(max_clips=1, max_views=views, seconds=seconds)
    sequences, fps = load_sequences(split_dir, config)  # read once, generated in both identity modes
    rows = [[s["frames"] for s in sequences]]
    for mode in ("reference", "embedding"):
        rows.append(pipeline_videos(pipe, sequences, fps, replace(config, mode=mode)))
    return rows, fps, sequences[0]


def tile(rows: list[list[np.ndarray]], frame: int) -> np.ndarray:
    """One frame of every video as a grid image (rows × cameras)."""
    return np.concatenate([np.concatenate([video[frame] for video in row], axis=1) for row in rows], axis=0)


def write_stage_samples(pipe, data: Path, folder: Path, seconds: float) -> Path | None:
    """Write ``folder/samples.mp4`` and ``samples.png``; None (with a log line) when the data has no val clip."""
    split = Path(data) / "val"
    try:
        rows, fps, first = sample_rows(pipe, split, seconds)
    except (FileNotFoundError, ValueError, InputError) as error:  # no val split / clip, portrait too small
        logger.warning("no sample video for %s: %s", folder.name, error)
        return None
    length = min(len(video) for row in rows for video in row)
    grids = np.stack([tile(rows, t) for t in range(length)])
    path = write_video(folder / "samples.mp4", [grids], fps, audio=first["audio"])
    Image.fromarray(grids[length // 2]).save(folder / "samples.png")
    logger.info("%s: samples in %s (rows: %s)", folder.name, path, ", ".join(ROWS))
    return path
