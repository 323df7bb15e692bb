"""Face detection for ``prepare``: one interface, the real detector where it is available.

* ``scrfd``: insightface's SCRFD-10G with 5 keypoints (the antelopev2 detector Arc2Face uses),
  its ONNX file resolved through the Hugging Face Hub (``identity.ANTELOPEV2_REPO``). Keypoints
  give a rough head pose.
* ``dlib-hog``: dlib's HOG + linear-SVM frontal detector, whose weights are compiled into the
  ``dlib-bin`` wheel: it works offline, on any machine, with nothing to fetch. No keypoints, so
  no pose; it also finds the SynthTalk heads of the wild stand-in (``data/wild.py``).

``make_detector("auto")`` takes SCRFD when its file is already in the HF cache, else dlib.
Both return ``Face`` boxes in the pixel coordinates of the frame they were given.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import CheckpointError

logger = logging.getLogger(__name__)

DETECTORS = ("auto", "scrfd", "dlib-hog")
SCRFD_FILE = "scrfd_10g_bnkps.onnx"


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
    score: float
    keypoints: np.ndarray | None = None  # [5, 2]: right eye, left eye, nose, right/left mouth corner

    @property
    def side(self) -> float:
        """Geometric mean of the box's width and height (its size in pixels)."""
        x0, y0, x1, y1 = self.box
        return float(np.sqrt(max(0.0, x1 - x0) * max(0.0, y1 - y0)))

    @property
    def centre(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2


class FaceDetector(Protocol):
    name: str

    def detect(self, frame: np.ndarray) -> list[Face]:
        """Faces in an RGB frame ``[H, W, 3]`` uint8, best first."""
        ...


class DlibHogDetector:
    """dlib's frontal HOG detector; ``upsample`` doubles the frame first (faces down to ~40 px)."""

    name = "dlib-hog"

    def __init__(self, upsample: int = 1, threshold: float = -0.3):
        try:
            import dlib
        except ImportError as exc:
            raise CheckpointError(
                "The offline face detector needs dlib: pip install dlib-bin (requirements.txt)."
            ) from exc
        self._detector = dlib.get_frontal_face_detector()
        self.upsample, self.threshold = upsample, threshold

    def detect(self, frame: np.ndarray) -> list[Face]:
        rects, scores, _ = self._detector.run(np.ascontiguousarray(frame), self.upsample, self.threshold)
        faces = [Face((r.left(), r.top(), r.right(), r.bottom()), float(s)) for r, s in zip(rects, scores)]
        return sorted(faces, key=lambda f: -f.score)


class ScrfdDetector:
    """SCRFD (insightface ``model_zoo``) on the antelopev2 ONNX file from the Hub."""

    name = "scrfd"

    def __init__(self, path: str, threshold: float = 0.5, input_size: tuple[int, int] = (640, 640)):
        from ..identity.backends import _default_providers, _import_insightface

        self._model = _import_insightface().get_model(path, providers=_default_providers())
        if self._model is None or self._model.taskname != "detection":
            raise CheckpointError(f"{path} is not an insightface detection model.")
        self._model.prepare(0, input_size=input_size, det_thresh=threshold)

    def detect(self, frame: np.ndarray) -> list[Face]:
        boxes, keypoints = self._model.detect(np.ascontiguousarray(frame[:, :, ::-1]), max_num=0)  # BGR in
        faces = [
            Face(tuple(float(v) for v in b[:4]), float(b[4]), None if keypoints is None else keypoints[i])
            for i, b in enumerate(boxes)
        ]
        return sorted(faces, key=lambda f: -f.score)


def _cached_scrfd() -> str | None:
    from huggingface_hub import try_to_load_from_cache

    from ..identity import ANTELOPEV2_REPO

    path = try_to_load_from_cache(ANTELOPEV2_REPO, SCRFD_FILE)
    return path if isinstance(path, str) else None


def make_detector(kind: str = "auto") -> FaceDetector:
    """``scrfd`` (fetched through the Hub if needed), ``dlib-hog``, or ``auto`` (SCRFD if cached)."""
    if kind not in DETECTORS:
        raise ValueError(f"Unknown face detector {kind!r}; choose from {', '.join(DETECTORS)}.")
    if kind == "auto":
        cached = _cached_scrfd()
        if cached is not None:
            return ScrfdDetector(cached)
        logger.info("SCRFD weights are not in the HF cache: using the offline dlib HOG detector")
        return DlibHogDetector()
    if kind == "scrfd":
        from ..identity.backends import ANTELOPEV2_REPO, HubFile, _hub_path

        spec = HubFile(ANTELOPEV2_REPO, SCRFD_FILE)
        return ScrfdDetector(str(_hub_path(spec, [spec])))
    return DlibHogDetector()


def head_pose(keypoints: np.ndarray | None) -> tuple[float, float, float] | None:
    """Rough (yaw, pitch, roll) degrees from 5 keypoints, or None without them.

    Roll is the eye line's angle; yaw how far the nose sits from the eyes' midline relative to
    the eye distance; pitch where the nose sits between the eye line and the mouth line (0.5 ≈
    level). Good to ~10° near frontal: enough to bin views and drop profiles, not a 3-D fit.
    """
    if keypoints is None:
        return None
    right_eye, left_eye, nose, mouth_r, mouth_l = np.asarray(keypoints, np.float64)
    eye_mid, mouth_mid = (right_eye + left_eye) / 2, (mouth_r + mouth_l) / 2
    eye_vec = left_eye - right_eye
    eye_dist = max(1e-6, float(np.linalg.norm(eye_vec)))
    roll = float(np.degrees(np.arctan2(eye_vec[1], eye_vec[0])))
    axis = mouth_mid - eye_mid
    across = np.array([axis[1], -axis[0]]) / max(1e-6, float(np.linalg.norm(axis)))
    yaw = float(np.degrees(np.arcsin(np.clip(2 * np.dot(nose - eye_mid, across) / eye_dist, -1, 1))))
    along = float(np.dot(nose - eye_mid, axis) / max(1e-6, float(np.dot(axis, axis))))
    pitch = float(np.degrees(np.arcsin(np.clip(2 * (along - 0.5), -1, 1))))
    return yaw, pitch, roll
