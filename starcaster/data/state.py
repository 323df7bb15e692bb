"""Per-frame ground truth of a SynthTalk sequence: face state and camera view.

One object carries every time-varying factor, so the renderer, the motion model, the shards
and the metrics agree on names, units and shapes. All arrays are float32 with a leading
frame axis ``T``.

Conventions (shared with ``starcaster.camera``):
- ``mouth_open`` in [0, 1]: 0 = lips closed, 1 = jaw fully dropped.
- ``lip_round`` in [0, 1]: 0 = neutral/spread, 1 = rounded ("oo").
- ``blink`` in [0, 1]: 0 = eyes open, 1 = closed.
- ``brow`` in [0, 1]: brow raise.
- ``head_rotation`` ``[T, 3]`` degrees (yaw, pitch, roll) of the head on the neck, body fixed.
  Yaw + turns the face towards the subject's left (+x), so it shows a frontal camera the
  subject's right cheek: the effective view azimuth is ``azimuth - yaw``. Pitch + nods down.
- ``azimuth`` / ``elevation`` degrees of the camera orbiting the head: (0, 0) frontal,
  +azimuth shows the subject's left side, +elevation looks from above.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


@dataclass
class FrameState:
    """Ground truth for ``T`` frames (see the module docstring for units)."""

    mouth_open: np.ndarray
    lip_round: np.ndarray
    blink: np.ndarray
    brow: np.ndarray
    head_rotation: np.ndarray  # [T, 3]
    azimuth: np.ndarray
    elevation: np.ndarray

    def __post_init__(self) -> None:
        for field in fields(self):
            setattr(self, field.name, np.asarray(getattr(self, field.name), dtype=np.float32))

    def __len__(self) -> int:
        return len(self.mouth_open)

    @classmethod
    def neutral(
        cls, num_frames: int, azimuth: float | np.ndarray = 0.0, elevation: float | np.ndarray = 0.0
    ) -> FrameState:
        """Mouth closed, eyes open, head straight, camera at the given view(s)."""
        zeros = np.zeros(num_frames, np.float32)
        return cls(
            mouth_open=zeros,
            lip_round=zeros,
            blink=zeros,
            brow=zeros,
            head_rotation=np.zeros((num_frames, 3), np.float32),
            azimuth=np.broadcast_to(np.asarray(azimuth, np.float32), (num_frames,)).copy(),
            elevation=np.broadcast_to(np.asarray(elevation, np.float32), (num_frames,)).copy(),
        )

    def take(self, index: np.ndarray | slice) -> FrameState:
        """The frames at ``index`` (a slice or integer array), as a new state."""
        return FrameState(**{name: value[index] for name, value in self.as_dict().items()})

    def with_view(self, azimuth: float | np.ndarray, elevation: float | np.ndarray) -> FrameState:
        """The same face seen from other camera angles (scalars or per-frame arrays)."""
        values = self.as_dict()
        values["azimuth"] = np.broadcast_to(np.asarray(azimuth, np.float32), (len(self),)).copy()
        values["elevation"] = np.broadcast_to(np.asarray(elevation, np.float32), (len(self),)).copy()
        return FrameState(**values)

    def as_dict(self) -> dict[str, np.ndarray]:
        return {field.name: getattr(self, field.name) for field in fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, np.ndarray]) -> FrameState:
        return cls(**{field.name: values[field.name] for field in fields(cls)})


STATE_KEYS = tuple(field.name for field in fields(FrameState))
