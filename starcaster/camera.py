"""Camera views: per-frame (azimuth, elevation) in degrees, and named camera paths.

Azimuth turns the head left/right (0 = frontal, +90 = the subject's left side towards the
camera), elevation looks from above (+) or below (-). Every path is a pure function of the
frame count, so a path renders the same on any machine and the app can preview it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import InputError


@dataclass(frozen=True)
class ViewTrack:
    """Per-frame view angles in degrees, both ``[T]`` float32."""

    azimuth: np.ndarray
    elevation: np.ndarray

    def __len__(self) -> int:
        return len(self.azimuth)

    def slice(self, start: int, stop: int) -> ViewTrack:
        return ViewTrack(self.azimuth[start:stop], self.elevation[start:stop])


def _static(num_frames: int, azimuth: float, elevation: float) -> tuple[np.ndarray, np.ndarray]:
    return np.full(num_frames, azimuth), np.full(num_frames, elevation)


def _orbit(num_frames: int, azimuth: float, elevation: float) -> tuple[np.ndarray, np.ndarray]:
    """A full turn around the head over the clip, starting at ``azimuth``."""
    turn = np.linspace(0.0, 360.0, num_frames, endpoint=False)
    return (azimuth + turn + 180.0) % 360.0 - 180.0, np.full(num_frames, elevation)


def _nod(num_frames: int, azimuth: float, elevation: float) -> tuple[np.ndarray, np.ndarray]:
    """The camera bobs ±15° in elevation twice over the clip around ``elevation``."""
    phase = np.linspace(0.0, 4.0 * np.pi, num_frames, endpoint=False)
    return np.full(num_frames, azimuth), elevation + 15.0 * np.sin(phase)


def _sweep(num_frames: int, azimuth: float, elevation: float) -> tuple[np.ndarray, np.ndarray]:
    """A smooth left-to-right sweep of ±|azimuth| (default ±60°): one instant, many views."""
    half_width = abs(azimuth) if azimuth else 60.0
    return np.linspace(-half_width, half_width, num_frames), np.full(num_frames, elevation)


CAMERA_PATHS: dict[str, Callable[[int, float, float], tuple[np.ndarray, np.ndarray]]] = {
    "static": _static,
    "orbit": _orbit,
    "nod": _nod,
    "sweep": _sweep,
}

# ``sweep`` freezes time and moves the camera: the temporal-to-spatial mode.
FROZEN_TIME_PATHS = frozenset({"sweep"})


def make_view_track(
    num_frames: int,
    azimuth: float | np.ndarray = 0.0,
    elevation: float | np.ndarray = 0.0,
    camera_path: str | None = None,
) -> ViewTrack:
    """Per-frame views from scalars, per-frame arrays, or a named path around a base view."""
    if camera_path is not None and camera_path != "static":
        if camera_path not in CAMERA_PATHS:
            raise InputError(f"Unknown camera_path {camera_path!r}; choose one of {sorted(CAMERA_PATHS)}.")
        if np.ndim(azimuth) or np.ndim(elevation):
            raise InputError("A camera_path takes scalar azimuth/elevation as its base view, not arrays.")
        az, el = CAMERA_PATHS[camera_path](num_frames, float(azimuth), float(elevation))
    else:
        az, el = _broadcast(azimuth, num_frames, "azimuth"), _broadcast(elevation, num_frames, "elevation")
    return ViewTrack(np.asarray(az, np.float32), np.asarray(el, np.float32))


def _broadcast(value: float | np.ndarray, num_frames: int, name: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise InputError(f"{name} must be finite numbers (degrees).")
    if array.ndim == 0:
        return np.full(num_frames, float(array))
    if array.ndim != 1 or len(array) != num_frames:
        raise InputError(
            f"Per-frame {name} must have one value per video frame ({num_frames}); got shape {array.shape}."
        )
    return array


class ViewSteering:
    """The view a running video heads for, changed while it streams (``GenerationRun.steer``).

    Until the first ``steer`` the run follows its planned ``ViewTrack``; after that each new
    frame moves from the last rendered view towards the target with a first-order lag
    (time constant ``lag_s``) capped at ``max_speed`` °/s, so a slider dragged mid-stream turns
    the camera smoothly — no jump at a chunk boundary, no restart. Thread-safe: the UI thread
    steers, the generating thread reads.
    """

    def __init__(self, planned: ViewTrack, max_speed: float = 120.0, lag_s: float = 0.2):
        self.planned, self.max_speed, self.lag_s = planned, float(max_speed), float(lag_s)
        self.target: tuple[float, float] | None = None
        self._last: tuple[float, float] | None = None
        self._lock = threading.Lock()

    def steer(self, azimuth: float | None = None, elevation: float | None = None) -> None:
        with self._lock:
            base = self.target or self._last or (float(self.planned.azimuth[0]), float(self.planned.elevation[0]))
            self.target = (
                base[0] if azimuth is None else float(azimuth),
                base[1] if elevation is None else float(elevation),
            )

    def views(self, start: int, stop: int, fps: float) -> tuple[np.ndarray, np.ndarray]:
        """Per-frame ``(azimuth, elevation)`` ``[stop - start]`` for the frames about to be generated."""
        with self._lock:
            target = self.target
        if target is None:
            az, el = self._planned(start, stop)
            self._last = (float(az[-1]), float(el[-1]))
            return az, el
        if self._last is None:  # steered before the first frame: start from the planned view
            az, el = self._planned(start, start + 1)
            self._last = (float(az[0]), float(el[0]))
        return self._eased(stop - start, target, fps)

    def _planned(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.planned)
        index = np.minimum(np.arange(start, stop), n - 1)  # a live run may outgrow its plan: hold the last view
        return self.planned.azimuth[index], self.planned.elevation[index]

    def _eased(self, count: int, target: tuple[float, float], fps: float) -> tuple[np.ndarray, np.ndarray]:
        keep = float(np.exp(-1.0 / (fps * self.lag_s)))
        cap = self.max_speed / fps
        current = np.array(self._last, np.float64)
        goal = np.array(target, np.float64)
        out = np.empty((count, 2), np.float32)
        for i in range(count):
            current = current + np.clip((goal - current) * (1.0 - keep), -cap, cap)
            out[i] = current
        self._last = (float(current[0]), float(current[1]))
        return out[:, 0], out[:, 1]


@dataclass(frozen=True)
class ViewRange:
    """The views a checkpoint was trained on, in degrees (declared in its ``model_index.json``
    as ``trained_views``). Views outside it are extrapolations: allowed, with a warning."""

    azimuth: tuple[float, float] = (-180.0, 180.0)
    elevation: tuple[float, float] = (-90.0, 90.0)

    @classmethod
    def from_config(cls, value: dict | None) -> ViewRange | None:
        """``{"azimuth": [lo, hi], "elevation": [lo, hi]}`` → a ``ViewRange`` (None: not declared)."""
        if not value:
            return None
        return cls(tuple(float(v) for v in value["azimuth"]), tuple(float(v) for v in value["elevation"]))

    def to_config(self) -> dict:
        return {"azimuth": list(self.azimuth), "elevation": list(self.elevation)}

    def warning(self, azimuth, elevation) -> str | None:
        """A sentence naming how many views fall outside the range, or None when all are inside."""
        az, el = np.atleast_1d(np.asarray(azimuth, np.float64)), np.atleast_1d(np.asarray(elevation, np.float64))
        az, el = np.broadcast_arrays(az, el)
        outside = (az < self.azimuth[0]) | (az > self.azimuth[1]) | (el < self.elevation[0]) | (el > self.elevation[1])
        if not outside.any():
            return None
        one = bool(np.all(az == az[0]) and np.all(el == el[0]))
        count = f"The view ({az[0]:g}°, {el[0]:g}°) is" if one else f"{int(outside.sum())} of {outside.size} views are"
        return (
            f"{count} outside the range this checkpoint was trained on (azimuth {self.azimuth[0]:g}° to "
            f"{self.azimuth[1]:g}°, elevation {self.elevation[0]:g}° to {self.elevation[1]:g}°): the model "
            "never saw them, so those frames are guesses and may look wrong."
        )
