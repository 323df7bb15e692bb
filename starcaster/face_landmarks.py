"""Real-photo face analysis for the avatar: dlib's HOG face detector and 68-point landmarks.

Both models work offline from registry packages: the detector is built into ``dlib``
(``dlib-bin`` wheel) and the 68-point shape predictor (iBUG 300-W layout) ships as
``shape_predictor_68_face_landmarks.dat`` inside ``face-recognition-models``. That package's
``__init__`` imports ``pkg_resources`` (gone from recent setuptools), so its folder is found
with ``importlib.util.find_spec`` without importing it.

``find_landmarks`` returns the largest face and says so when there were several; a photo with
no face, a face turned too far to the side, or a face too small to read each raise one
``InputError`` that says what to do.

Landmark indices (0-based): jaw 0–16, brows 17–26, nose bridge 27–30, nostrils 31–35,
eyes 36–41 (subject's right) and 42–47 (left), outer lips 48–59, inner lips 60–67.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import CheckpointError, InputError

logger = logging.getLogger(__name__)

MIN_FACE_PX = 64  # the same floor as the identity front end: smaller faces carry too little to read
MAX_DETECT_SIDE = 800  # the detector runs on a copy with at most this long side
PROFILE_LIMIT = 0.15  # nose-to-cheek balance below this (or above 1 - it): turned too far (≳ 45°)
_PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"


@dataclass
class FaceLandmarks:
    """One face: 68 landmarks ``[68, 2]`` (x, y) in the pixels of the image given, and its box."""

    points: np.ndarray
    box: tuple[int, int, int, int]  # (left, top, right, bottom)
    score: float
    num_faces: int
    notes: list[str] = field(default_factory=list)

    @property
    def right_eye(self) -> np.ndarray:
        """Centre of the subject's right eye (image left), ``[2]``."""
        return self.points[36:42].mean(0)

    @property
    def left_eye(self) -> np.ndarray:
        return self.points[42:48].mean(0)

    @property
    def mouth(self) -> np.ndarray:
        return self.points[48:60].mean(0)

    @property
    def eye_distance(self) -> float:
        """Inter-ocular distance in pixels: the unit every ratio read from a face is measured in."""
        return float(np.linalg.norm(self.left_eye - self.right_eye))

    @property
    def turn(self) -> float:
        """Nose-to-cheek balance: 0.5 frontal, towards 0 or 1 as the head turns to a profile."""
        a = np.linalg.norm(self.points[30] - self.points[2])
        b = np.linalg.norm(self.points[30] - self.points[14])
        return float(a / max(a + b, 1e-6))


def find_landmarks(image: Image.Image, *, min_face: int = MIN_FACE_PX) -> FaceLandmarks:
    """The largest frontal face of ``image`` (RGB) with its 68 landmarks.

    Raises ``InputError`` for no face, a face under ``min_face`` px, or a profile.
    """
    detector, predictor = _models()
    scale = min(1.0, MAX_DETECT_SIDE / max(image.size))
    small = image if scale == 1.0 else image.resize((round(image.width * scale), round(image.height * scale)))
    pixels = np.ascontiguousarray(np.asarray(small, np.uint8))
    long_side = max(small.size)
    upsample = 2 if long_side <= 300 else 1 if long_side <= 500 else 0  # finds faces down to ~20 / 40 / 80 px
    rects, scores, _ = detector.run(pixels, upsample, 0.0)
    if len(rects) == 0:
        raise InputError(
            "No face found in the photo. Use a well-lit, frontal photo with one face at least "
            f"{min_face} px across (hair and chin inside the picture)."
        )
    order = sorted(range(len(rects)), key=lambda i: (rects[i].width() * rects[i].height(), scores[i]), reverse=True)
    best = rects[order[0]]
    points = np.array([[p.x, p.y] for p in predictor(pixels, best).parts()], np.float64) / scale
    box = tuple(round(v / scale) for v in (best.left(), best.top(), best.right(), best.bottom()))
    face = FaceLandmarks(points, box, float(scores[order[0]]), len(rects))
    _check_face(face, min_face)
    if len(rects) > 1:
        left, top, right, bottom = box
        face.notes.append(
            f"{len(rects)} faces found; using the largest one (at x={left}, y={top}, {right - left}×{bottom - top} px). "
            "Crop the photo to choose another."
        )
        logger.warning(face.notes[-1])
    return face


def _check_face(face: FaceLandmarks, min_face: int) -> None:
    side = min(face.box[2] - face.box[0], face.box[3] - face.box[1])
    if side < min_face:
        raise InputError(
            f"The face is too small ({side} px; at least {min_face} px is needed). "
            "Use a closer or higher-resolution photo, or crop the image around the face."
        )
    if not PROFILE_LIMIT <= face.turn <= 1.0 - PROFILE_LIMIT:
        raise InputError(
            "The face is turned too far to the side (a profile or near-profile view), so both eyes and cheeks "
            "cannot be read. Use a photo looking roughly at the camera."
        )


@lru_cache(maxsize=1)
def _models():
    """dlib's frontal HOG detector and the 68-point shape predictor (loaded once, ~1 s)."""
    try:
        import dlib
    except ImportError as exc:
        raise CheckpointError(
            "Reading a photo for the avatar needs dlib: pip install -r requirements.txt (dlib-bin, face-recognition-models)."
        ) from exc
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(predictor_path()))


def predictor_path() -> Path:
    """Where ``face-recognition-models`` installed the 68-point predictor."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(
            "Reading a photo for the avatar needs the face landmark model from `face-recognition-models`: "
            "pip install -r requirements.txt."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / _PREDICTOR_FILE
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; reinstall it: pip install --force-reinstall face-recognition-models")
    return path
