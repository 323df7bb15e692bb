"""Faces: find the largest face in a portrait and cut the square, FFHQ-style crop around it.

The offline detector is scikit-image's bundled LBP frontal-face cascade (OpenCV 5 no longer
bundles Haar cascades); ``recrop`` cuts an already detected face again at another size.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image

from ..errors import InputError

logger = logging.getLogger(__name__)

MIN_FACE_PX = 64  # below this a face carries too little identity to embed reliably
_DETECT_SIDE = 640  # the LBP cascade runs on a copy with this long side (speed)
_CASCADE_MIN_WINDOW = 24  # the cascade's native window
CROP_SCALE = 2.0  # crop side / detected face-box side: whole head with some hair, like FFHQ
CROP_SHIFT_Y = 0.12  # crop centre below box centre, in box sides (the cascade box sits high)
TIGHT_PORTRAIT_MAX_SIDE = 4 * MIN_FACE_PX  # "already a face crop" rule for detector="auto"
_SQUARE_TOLERANCE = 0.05
DETECTORS = ("auto", "cascade", "none")


@dataclass
class FaceCrop:
    """An aligned square face crop and what was found on the way.

    ``box`` is the detected face as ``(left, top, right, bottom)`` in the pixels of the image
    given to ``detect_and_crop_face`` (the whole image for a centre crop).
    """

    image: Image.Image
    box: tuple[int, int, int, int]
    num_faces: int
    warnings: list[str] = field(default_factory=list)
    method: str = "cascade"  # "cascade", "centre" or "insightface"


def detect_and_crop_face(
    image: Image.Image, size: int, *, detector: str = "auto", min_face: int = MIN_FACE_PX
) -> FaceCrop:
    """Find the largest face and return a ``size``×``size`` FFHQ-style crop around it.

    ``detector``:
      * ``"cascade"`` – the offline LBP cascade; no face → ``InputError``.
      * ``"none"`` – the image is already a face crop: centre square, resized.
      * ``"auto"`` – the cascade, falling back to the centre crop (with a warning) only for a
        *tight portrait*: a square image (sides within 5 %) no larger than
        ``TIGHT_PORTRAIT_MAX_SIDE`` px, such as a 64×64 synthetic render, in which a face fills
        the frame and the cascade (trained on faces with background around them) finds nothing.
    """
    if detector not in DETECTORS:
        raise InputError(f"Unknown face detector {detector!r}; use one of {', '.join(DETECTORS)}.")
    if min(image.size) < 8:
        raise InputError(
            f"The image is only {image.width}×{image.height} px. Use a photo with a face of at least {min_face} px."
        )
    if detector == "none":
        return _centre_crop(image, size, [])
    boxes = detect_faces(image)
    faces = [b for b in boxes if _box_side(b) >= min_face]
    if faces:
        return _crop_largest(image, size, faces)
    if detector == "auto" and _is_tight_portrait(image, min_face):
        note = (
            f"No face detected in the {image.width}×{image.height} image; treating it as an "
            "already-cropped portrait (centre crop). Use a larger photo if the result looks wrong."
        )
        return _centre_crop(image, size, [note])
    if boxes:
        side = max(_box_side(b) for b in boxes)
        raise InputError(
            f"The face is too small ({side} px; at least {min_face} px is needed). "
            "Use a closer or higher-resolution photo, or crop the image around the face."
        )
    raise InputError(
        "No face found in the image. Use a well-lit, frontal photo with one face at least "
        f"{min_face} px across (or pass detector='none' if it is already a face crop)."
    )


def detect_faces(image: Image.Image) -> list[tuple[int, int, int, int]]:
    """Face boxes ``(left, top, right, bottom)`` from the LBP cascade, largest first."""
    from skimage.color import rgb2gray

    scale = min(1.0, _DETECT_SIDE / max(image.size))
    small = (
        image
        if scale == 1.0
        else image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR)
    )
    gray = rgb2gray(np.asarray(small))
    side = max(gray.shape)
    found = _cascade().detect_multi_scale(
        img=gray, scale_factor=1.2, step_ratio=1, min_size=(_CASCADE_MIN_WINDOW,) * 2, max_size=(side, side)
    )
    boxes = [_scale_box((d["c"], d["r"], d["c"] + d["width"], d["r"] + d["height"]), 1.0 / scale) for d in found]
    return sorted(boxes, key=_box_side, reverse=True)


@lru_cache(maxsize=1)
def _cascade():
    """The LBP frontal-face cascade bundled in scikit-image (no download)."""
    from skimage import data
    from skimage.feature import Cascade

    return Cascade(data.lbp_frontal_face_cascade_filename())


def _crop_largest(image: Image.Image, size: int, faces: list[tuple[int, int, int, int]]) -> FaceCrop:
    largest = faces[0]
    others = [b for b in faces[1:] if _iou(b, largest) < 0.3 and _box_side(b) >= 0.5 * _box_side(largest)]
    notes = []
    if others:
        notes.append(f"{len(others) + 1} faces found; using the largest one. Crop the photo to choose another.")
    for note in notes:
        logger.warning(note)
    return FaceCrop(
        image=_crop_around(image, largest, size),
        box=largest,
        num_faces=len(others) + 1,
        warnings=notes,
        method="cascade",
    )


def _crop_around(image: Image.Image, box: tuple[int, int, int, int], size: int) -> Image.Image:
    """The FFHQ-style square around a face box (``CROP_SCALE`` × its side, shifted down by ``CROP_SHIFT_Y``)."""
    left, top, right, bottom = box
    centre = ((left + right) / 2, (top + bottom) / 2 + CROP_SHIFT_Y * (right - left))
    return _square_crop(image, centre, (right - left) * CROP_SCALE, size)


def recrop(image: Image.Image, crop: FaceCrop, size: int) -> FaceCrop:
    """The face ``crop`` found in ``image``, cropped again at ``size`` px without detecting it again.

    The pipeline embeds a portrait with its identity backend (which detects the face) and needs the
    same face as its reference at the video's resolution: this is that crop, by the same rule as
    ``detect_and_crop_face`` (a centre crop stays a centre crop).
    """
    if crop.method == "centre":
        cut = _centre_crop(image, size, [])
    else:
        cut = FaceCrop(_crop_around(image, crop.box, size), crop.box, crop.num_faces, method=crop.method)
    cut.warnings = list(crop.warnings)
    return cut


def _centre_crop(image: Image.Image, size: int, notes: list[str]) -> FaceCrop:
    side = min(image.size)
    centre = (image.width / 2, image.height / 2)
    for note in notes:
        logger.warning(note)
    box = (
        round(centre[0] - side / 2),
        round(centre[1] - side / 2),
        round(centre[0] + side / 2),
        round(centre[1] + side / 2),
    )
    return FaceCrop(
        image=_square_crop(image, centre, side, size), box=box, num_faces=1, warnings=notes, method="centre"
    )


def _square_crop(image: Image.Image, centre: tuple[float, float], side: float, size: int) -> Image.Image:
    """Crop a square (edge pixels replicated where it leaves the image) and resize to ``size``.

    The crop is taken at native resolution first and then resized with Lanczos, so a large
    face shrunk to 64 px is not aliased.
    """
    import cv2

    native = max(size, min(round(side), 1024))
    zoom = native / side
    matrix = np.array([[zoom, 0, native / 2 - zoom * centre[0]], [0, zoom, native / 2 - zoom * centre[1]]], np.float64)
    warped = cv2.warpAffine(
        np.asarray(image), matrix, (native, native), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    crop = Image.fromarray(warped)
    return crop if native == size else crop.resize((size, size), Image.Resampling.LANCZOS)


def _is_tight_portrait(image: Image.Image, min_face: int) -> bool:
    width, height = image.size
    square = abs(width - height) <= _SQUARE_TOLERANCE * max(width, height)
    return square and min_face <= min(width, height) and max(width, height) <= TIGHT_PORTRAIT_MAX_SIDE


def _box_side(box: tuple[int, int, int, int]) -> int:
    return min(box[2] - box[0], box[3] - box[1])


def _scale_box(box: tuple[float, ...], factor: float) -> tuple[int, int, int, int]:
    return tuple(round(v * factor) for v in box)  # type: ignore[return-value]


def _iou(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    inter_w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
