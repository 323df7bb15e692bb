"""Identities: an integer seed → the parameters of one parametric 3-D head.

An identity is everything that stays fixed while a person talks and the camera moves: head
shape, colours, hair, eyes, nose, brows, glasses, beard, clothes and the studio backdrop. The
backdrop belongs to the identity so that a reference portrait and every clip of the same
identity share it, as a real person's recordings in one studio would.

Units are head-local: the skull is about 2 units tall, +x is the subject's left, +y up and +z
out of the face (towards a frontal camera).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

HAIR_STYLES = ("short", "volume", "long", "receding", "bun")

# Skin tones from light to deep (linear-ish sRGB in [0, 1]); a seed blends two neighbours.
_SKIN_TONES = np.array(
    [
        [0.96, 0.80, 0.69],
        [0.91, 0.72, 0.58],
        [0.80, 0.60, 0.45],
        [0.66, 0.46, 0.32],
        [0.47, 0.32, 0.22],
        [0.33, 0.22, 0.15],
    ]
)
_HAIR_COLOURS = np.array(
    [
        [0.08, 0.06, 0.05],
        [0.25, 0.15, 0.08],
        [0.45, 0.28, 0.12],
        [0.80, 0.65, 0.35],
        [0.60, 0.22, 0.08],
        [0.62, 0.62, 0.62],
    ]
)
_EYE_COLOURS = np.array(
    [[0.30, 0.18, 0.08], [0.20, 0.40, 0.70], [0.25, 0.50, 0.30], [0.45, 0.45, 0.50], [0.15, 0.10, 0.05]]
)


@dataclass(frozen=True)
class HeadParams:
    """One identity's geometry and colours. All lengths in head units, colours RGB in [0, 1]."""

    seed: int
    skull: tuple[float, float, float]  # half-width, half-height, half-depth
    jaw_width: float  # jaw half-width as a fraction of the skull's
    jaw_length: float  # chin length scale
    cheek: float  # cheek fullness (radius of the cheek ellipsoids)
    skin: tuple[float, float, float]
    lips: tuple[float, float, float]
    hair: tuple[float, float, float]
    hair_style: int  # index into HAIR_STYLES
    hair_volume: float  # thickness of the hair shell
    hairline: float  # height of the front hairline
    eye_colour: tuple[float, float, float]
    eye_spacing: float  # half-distance between the eye centres
    eye_size: float
    nose_length: float
    nose_width: float
    nose_depth: float
    brow_thickness: float
    brow_height: float
    ear_size: float
    glasses: bool
    beard: float  # 0 = clean-shaven, 1 = full beard
    shirt: tuple[float, float, float]
    background: tuple[float, float, float]

    def vector(self) -> np.ndarray:
        """The identity as a flat float32 vector (continuous fields, one-hot hair style): ``[PARAM_DIM]``."""
        values: list[float] = []
        for name, value in asdict(self).items():
            if name in ("seed", "hair_style"):
                continue
            values.extend(np.atleast_1d(np.asarray(value, dtype=np.float64)).tolist())
        style = np.eye(len(HAIR_STYLES))[self.hair_style]
        return np.concatenate([np.asarray(values), style]).astype(np.float32)


def sample_head(seed: int) -> HeadParams:
    """The identity of ``seed``: deterministic, independent draws per seed."""
    rng = np.random.default_rng([int(seed), 0x1D])
    skin = _blend(rng, _SKIN_TONES)
    hair = _blend(rng, _HAIR_COLOURS) if rng.random() > 0.08 else rng.uniform(0.1, 0.9, 3)  # a few dyed
    return HeadParams(
        seed=int(seed),
        skull=(rng.uniform(0.72, 0.86), rng.uniform(0.95, 1.08), rng.uniform(0.85, 0.96)),
        jaw_width=rng.uniform(0.62, 0.9),
        jaw_length=rng.uniform(0.85, 1.15),
        cheek=rng.uniform(0.16, 0.26),
        skin=_tuple(skin),
        lips=_tuple(np.clip(skin * np.array([0.85, 0.55, 0.55]) + rng.uniform(-0.05, 0.05), 0, 1)),
        hair=_tuple(hair),
        hair_style=int(rng.integers(len(HAIR_STYLES))),
        hair_volume=rng.uniform(0.04, 0.2),
        hairline=rng.uniform(0.35, 0.6),
        eye_colour=_tuple(_EYE_COLOURS[rng.integers(len(_EYE_COLOURS))] * rng.uniform(0.8, 1.2)),
        eye_spacing=rng.uniform(0.25, 0.34),
        eye_size=rng.uniform(0.1, 0.135),
        nose_length=rng.uniform(0.2, 0.34),
        nose_width=rng.uniform(0.08, 0.14),
        nose_depth=rng.uniform(0.1, 0.2),
        brow_thickness=rng.uniform(0.025, 0.06),
        brow_height=rng.uniform(0.17, 0.25),
        ear_size=rng.uniform(0.85, 1.2),
        glasses=bool(rng.random() < 0.2),
        beard=float(rng.uniform(0.5, 1.0)) if rng.random() < 0.2 else 0.0,
        shirt=_tuple(rng.uniform(0.1, 0.9, 3)),
        background=_tuple(rng.uniform(0.25, 0.85, 3) * rng.uniform(0.7, 1.0)),
    )


def param_dim() -> int:
    """Length of ``HeadParams.vector()``."""
    return len(sample_head(0).vector())


def _blend(rng: np.random.Generator, palette: np.ndarray) -> np.ndarray:
    i = rng.integers(len(palette) - 1)
    return palette[i] + rng.random() * (palette[i + 1] - palette[i])


def _tuple(values: np.ndarray) -> tuple[float, float, float]:
    return (float(values[0]), float(values[1]), float(values[2]))
