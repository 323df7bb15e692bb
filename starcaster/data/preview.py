"""Pictures of SynthTalk for people: a contact sheet (identities × views) and a talking sample video."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile

from ..audio import SAMPLE_RATE
from .heads import sample_head
from .motion import face_motion
from .render import RenderConfig, render
from .speech import resolve_engine, synthesize, voices
from .state import FrameState

SHEET_VIEWS = ((-90, 0), (-45, 0), (0, 0), (45, 0), (90, 0), (0, 30), (0, -30), (30, 20))


def contact_sheet(seeds: list[int], views=SHEET_VIEWS, size: int = 96) -> np.ndarray:
    """uint8 image: one row per identity seed, one column per (azimuth, elevation); mouths open left → right."""
    rows = []
    for seed in seeds:
        state = FrameState.neutral(len(views), [v[0] for v in views], [v[1] for v in views])
        state.mouth_open[:] = np.linspace(0.0, 0.8, len(views))
        rows.append(np.concatenate(list(render(sample_head(seed), state, RenderConfig(size=size))), axis=1))
    return np.concatenate(rows, axis=0)


def talking_grid(
    seed: int, seconds: float, views=((-60, 0), (-20, 10), (20, -10), (60, 0)), size: int = 96, fps: int = 25
):
    """One identity speaking, seen from several fixed cameras in a 2-column grid: (frames ``[T, H, W, 3]``, audio)."""
    rng = np.random.default_rng(seed)
    audio = synthesize(rng, voices("test", resolve_engine("auto"))[0], seconds)
    motion = face_motion(audio, fps, rng)
    head = sample_head(seed)
    tiles = [render(head, motion.with_view(az, el), RenderConfig(size=size)) for az, el in views]
    rows = [np.concatenate(tiles[i : i + 2], axis=2) for i in range(0, len(tiles), 2)]
    return np.concatenate(rows, axis=1), audio


def write_video(path: Path, frames: np.ndarray, audio: np.ndarray, fps: int = 25, crf: int = 28) -> Path:
    """H.264 + AAC mp4 through the imageio-ffmpeg binary (argument lists, no shell)."""
    import imageio.v2 as imageio
    import imageio_ffmpeg

    with tempfile.TemporaryDirectory() as tmp:
        silent, wav = Path(tmp) / "video.mp4", Path(tmp) / "audio.wav"
        with imageio.get_writer(
            silent, fps=fps, codec="libx264", macro_block_size=1, output_params=["-crf", str(crf)]
        ) as w:
            for frame in frames:
                w.append_data(frame)
        soundfile.write(wav, audio, SAMPLE_RATE)
        command = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(silent), "-i", str(wav)]
        subprocess.run([*command, "-c:v", "copy", "-c:a", "aac", "-b:a", "64k", "-shortest", str(path)], check=True)
    return path
