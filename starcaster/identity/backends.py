"""Identity front end: portrait images → aligned face crops → 512-D identity embeddings.

Three ways in, one way out. A user gives either a portrait (``image`` mode), or an identity
embedding file (``.npy`` / ``.pt`` / ``.safetensors`` / ``.json``), or asks for a random or
interpolated identity. Whatever comes in leaves as a float32 unit vector of the size the
checkpoint expects, because every conditioning path downstream assumes exactly that.

Embeddings only mean something in the space of the encoder that made them, so there are two
backends and the checkpoint picks one (``make_identity_backend``):

* ``insightface-antelopev2``: the real thing, as Arc2Face does it — SCRFD face detection with
  5 landmarks, similarity alignment to the ArcFace template (insightface ``norm_crop``) and an
  ArcFace ONNX model. Files come from the Hugging Face Hub through ``hf_hub_download`` into
  the HF cache; insightface's own downloader (which goes to the open internet) is never used.
* ``builtin``: the small ``IdentityEncoder`` shipped in a checkpoint's ``identity_encoder/``
  folder; works offline. Its crops come from an offline face detector that ships inside a
  registry package: scikit-image's LBP frontal-face cascade (OpenCV 5 no longer bundles Haar
  cascades, and its ``CascadeClassifier`` is gone).

Every bad input raises ``InputError`` with what was wrong and what to do.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import CheckpointError, InputError, OfflineError

if TYPE_CHECKING:  # torch and the model are imported lazily: loading an .npy needs neither
    from .models.identity_encoder import IdentityEncoder

logger = logging.getLogger(__name__)

EMBED_DIM = 512
MIN_FACE_PX = 64  # below this a face carries too little identity to embed reliably
MAX_WORKING_SIDE = 2048  # images are downscaled to this long side before any processing
MAX_DECODE_PIXELS = 150_000_000  # ~12 000²; bigger images that cannot be draft-decoded are refused
_DETECT_SIDE = 640  # the LBP cascade runs on a copy with this long side (speed)
_CASCADE_MIN_WINDOW = 24  # the cascade's native window
CROP_SCALE = 2.0  # crop side / detected face-box side: whole head with some hair, like FFHQ
CROP_SHIFT_Y = 0.12  # crop centre below box centre, in box sides (the cascade box sits high)
TIGHT_PORTRAIT_MAX_SIDE = 4 * MIN_FACE_PX  # "already a face crop" rule for detector="auto"
_SQUARE_TOLERANCE = 0.05
DETECTORS = ("auto", "cascade", "none")
IDENTITY_BACKENDS = ("builtin", "insightface-antelopev2")


# ---------------------------------------------------------------------------------------
# Images: open, validate, orient, convert, downscale
# ---------------------------------------------------------------------------------------

ImageSource = str | Path | Image.Image | np.ndarray


def load_image(source: ImageSource) -> Image.Image:
    """Return an RGB image, EXIF-upright, long side at most ``MAX_WORKING_SIDE``.

    Files are opened lazily and JPEGs are decoded at a reduced scale (``draft``), so a
    12 000 × 12 000 photo never needs its full-size buffer; other formats above
    ``MAX_DECODE_PIXELS`` are refused before decoding.
    """
    if isinstance(source, Image.Image):
        image = source
    elif isinstance(source, np.ndarray):
        image = _array_to_image(source)
    elif isinstance(source, str | Path):
        image = _open_image_file(Path(source))
    else:
        raise InputError(
            f"Unsupported image input of type {type(source).__name__}; give a file path, a PIL image or an array."
        )
    image = _exif_upright(image)
    image = _to_rgb(image)
    return _limit_side(image, MAX_WORKING_SIDE)


def _open_image_file(path: Path) -> Image.Image:
    if not path.is_file():
        raise InputError(f"Image file not found: {path}. Check the path and try again.")
    if path.stat().st_size == 0:
        raise InputError(f"Image file {path.name} is empty (0 bytes). Re-export or re-upload the photo.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we apply our own limit below
        try:
            image = Image.open(path)
        except Image.DecompressionBombError as exc:
            raise InputError(
                f"{path.name} is too large to decode safely ({exc}). Downscale it to at most 4096 px a side."
            ) from exc
        except (UnidentifiedImageError, OSError) as exc:
            raise InputError(
                f"{path.name} is not an image PIL can read ({_sniff(path)}). Use a JPEG, PNG or WebP photo."
            ) from exc
        _decode_reduced(image, path.name)
    return image


def _sniff(path: Path) -> str:
    """What a file that is not an image probably is, from its first bytes (for the error message;
    the exception's own text would show the server's upload path)."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    text = head.lstrip().lower()
    if text.startswith((b"<svg", b"<?xml")) and b"<svg" in text:
        return "it is an SVG drawing, which is not supported"
    if text.startswith((b"<!doctype html", b"<html")) or b"<html" in text[:64]:
        return "it is an HTML page"
    if head[4:8] == b"ftyp" or head[:4] == b"\x1aE\xdf\xa3" or (head[:4] == b"RIFF" and head[8:12] == b"AVI "):
        return "it is a video file; export one frame as a photo"
    if head[:4] in (b"RIFF", b"fLaC", b"OggS", b"ID3\x03", b"ID3\x04"):
        return "it is an audio file"
    return "unknown or unsupported format"


def _decode_reduced(image: Image.Image, name: str) -> None:
    """Decode ``image`` in place, at a reduced scale when the format allows it (JPEG)."""
    if image.format == "JPEG":
        image.draft("RGB" if image.mode != "CMYK" else "CMYK", (MAX_WORKING_SIDE, MAX_WORKING_SIDE))
    width, height = image.size
    if width * height > MAX_DECODE_PIXELS:
        raise InputError(
            f"{name} is {width}×{height} pixels, too large to decode safely in {image.format} format. "
            "Downscale it to at most 4096 px a side (or save it as JPEG)."
        )
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:  # truncated / corrupt data
        raise InputError(f"{name} is corrupt or truncated ({exc}). Re-export or re-upload the photo.") from exc


def _array_to_image(array: np.ndarray) -> Image.Image:
    """HxW, HxWx1/3/4 arrays of uint8, uint16 or float in [0, 1] → PIL image."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InputError(f"An image array must be H×W, H×W×3 or H×W×4; got shape {array.shape}.")
    if array.size == 0:
        raise InputError("The image array is empty. Provide a photo with a face.")
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise InputError("The image array contains NaN or infinite values. Provide a valid photo.")
        array = np.clip(array * 255.0 if array.max() <= 1.0 else array, 0, 255).astype(np.uint8)
    elif array.dtype == np.uint16:
        array = (array // 257).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise InputError(f"Unsupported image array dtype {array.dtype}; use uint8, uint16 or float in [0, 1].")
    return Image.fromarray(np.ascontiguousarray(array))


def _exif_upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag: phone photos are stored sideways and say so there."""
    try:
        return ImageOps.exif_transpose(image) or image
    except Exception as exc:  # a broken EXIF block must not make an otherwise good photo fail
        logger.warning("Ignoring unreadable EXIF orientation: %s", exc)
        return image


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode → RGB: alpha over white, 16/32-bit and float rescaled, CMYK/palette converted."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        image = _high_depth_to_l(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB") if image.mode != "RGB" else image


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    values = np.asarray(image, dtype=np.float64)
    peak = float(values.max()) if values.size else 0.0
    scale = 255.0 if peak <= 1.0 else (255.0 / 65535.0 if peak > 255 else 1.0)
    return Image.fromarray(np.clip(values * scale, 0, 255).astype(np.uint8), mode="L")


def _limit_side(image: Image.Image, max_side: int) -> Image.Image:
    if max(image.size) <= max_side:
        return image
    factor = max(image.size) / max_side
    size = (max(1, round(image.width / factor)), max(1, round(image.height / factor)))
    logger.info("Downscaling %s image to %s", image.size, size)
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


# ---------------------------------------------------------------------------------------
# Face detection and crop
# ---------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------------------


@dataclass
class IdentityResult:
    """An embedding together with the crop it was computed from (for previews and warnings)."""

    embedding: np.ndarray  # (embed_dim,) float32, L2-normalised
    crop: FaceCrop


@runtime_checkable
class IdentityBackend(Protocol):
    """Turns a portrait into an identity embedding in one encoder's space."""

    name: str

    def embed(self, image: Image.Image) -> np.ndarray:
        """``(512,)`` float32, L2-normalised."""
        ...


class BuiltinIdentityBackend:
    """The checkpoint's own ``IdentityEncoder`` behind the offline cascade detector.

    Crops follow ``detect_and_crop_face``'s rule (``detector="auto"`` by default, so square
    synthetic renders that fill the frame work too) and are resized to the encoder's
    ``image_size``.
    """

    name = "builtin"

    def __init__(self, encoder: IdentityEncoder, detector: str = "auto") -> None:
        self.encoder = encoder.eval()
        self.detector = detector

    def extract(self, image: ImageSource) -> IdentityResult:
        import torch

        crop = detect_and_crop_face(load_image(image), self.encoder.config.image_size, detector=self.detector)
        pixels = np.asarray(crop.image, dtype=np.float32) / 127.5 - 1.0  # [H, W, 3] in [-1, 1]
        param = next(self.encoder.parameters())
        batch = torch.from_numpy(pixels).permute(2, 0, 1)[None].to(param.device, param.dtype)  # [1, 3, H, W]
        with torch.no_grad():
            embedding = self.encoder(batch)[0].float().cpu().numpy()
        return IdentityResult(embedding=_unit(embedding), crop=crop)

    def embed(self, image: ImageSource) -> np.ndarray:
        return self.extract(image).embedding


@dataclass(frozen=True)
class HubFile:
    """One file on the Hugging Face Hub."""

    repo_id: str
    filename: str
    revision: str | None = None

    def fetch_command(self) -> str:
        revision = f" --revision {self.revision}" if self.revision else ""
        return f"hf download {self.repo_id} {self.filename}{revision}"


# Arc2Face's recipe: the antelopev2 SCRFD detector plus Arc2Face's own ArcFace (trained on
# WebFace42M; it replaces antelopev2's glintr100). Embeddings for Arc2Face-initialised
# checkpoints must come from exactly this pair. Documented in checkpoints.md.
ANTELOPEV2_REPO = "DIAMONIK7777/antelopev2"
ANTELOPEV2_FILES = (
    HubFile(ANTELOPEV2_REPO, "scrfd_10g_bnkps.onnx"),
    HubFile("FoivosPar/Arc2Face", "arcface.onnx"),
)


class InsightFaceBackend:
    """SCRFD detection + 5-point alignment + ArcFace, as Arc2Face extracts identities.

    Model files are resolved with ``hf_hub_download`` (HF cache, offline-aware) and loaded
    with ``insightface.model_zoo.get_model`` on those exact paths; that is what
    ``FaceAnalysis`` does per file, without its folder convention (our two files live in two
    repos) or its internet downloader. Loading is lazy: the first ``embed`` fetches.
    ``repo_id`` + ``filenames`` fetch every file from one repo (e.g. a full antelopev2
    mirror, whose ``glintr100.onnx`` then serves as the recogniser).
    """

    name = "insightface-antelopev2"

    def __init__(
        self,
        repo_id: str | None = None,
        filenames: Sequence[str] | None = None,
        revision: str | None = None,
        providers: Sequence[str] | None = None,
        *,
        files: Sequence[HubFile] | None = None,
        det_size: tuple[int, int] = (640, 640),
    ) -> None:
        if repo_id is not None:
            files = [
                HubFile(repo_id, name, revision) for name in (filenames or ("scrfd_10g_bnkps.onnx", "glintr100.onnx"))
            ]
        self.files = tuple(files or ANTELOPEV2_FILES)
        self.providers = list(providers) if providers else _default_providers()
        self.det_size = det_size

    def resolve_files(self) -> list[Path]:
        """Local paths of the model files (cache or Hub); ``OfflineError`` names what is missing."""
        return [_hub_path(spec, self.files) for spec in self.files]

    @cached_property
    def _models(self) -> tuple[object, object]:
        insightface_zoo = _import_insightface()
        models = {}
        for path in self.resolve_files():
            try:
                model = insightface_zoo.get_model(str(path), providers=self.providers)
            except Exception as exc:  # onnxruntime raises its own types for a bad file
                raise CheckpointError(
                    f"Could not load the ONNX model {path.name} ({exc}). Delete it from the HF cache and fetch it again."
                ) from exc
            if model is not None:
                models.setdefault(model.taskname, model)
        missing = [task for task in ("detection", "recognition") if task not in models]
        if missing:
            names = ", ".join(spec.filename for spec in self.files)
            raise CheckpointError(
                f"The insightface files ({names}) provide no {' or '.join(missing)} model. Check the repo id and filenames."
            )
        models["detection"].prepare(0, input_size=self.det_size, det_thresh=0.5)
        models["recognition"].prepare(0)
        return models["detection"], models["recognition"]

    def extract(self, image: ImageSource, *, min_face: int = MIN_FACE_PX) -> IdentityResult:
        detector, recogniser = self._models
        rgb = load_image(image)
        bgr = np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])  # insightface works in BGR
        boxes, landmarks = detector.detect(bgr, max_num=0)
        face_index, notes = _pick_insightface_face(boxes, min_face)
        face = _insightface_face(boxes[face_index], None if landmarks is None else landmarks[face_index])
        embedding = recogniser.get(bgr, face)
        aligned = _aligned_crop(bgr, face.kps, recogniser.input_size[0])
        box = tuple(int(round(v)) for v in boxes[face_index, :4])
        crop = FaceCrop(image=aligned, box=box, num_faces=len(boxes), warnings=notes, method="insightface")
        return IdentityResult(embedding=_unit(np.asarray(embedding, np.float32)), crop=crop)

    def embed(self, image: ImageSource) -> np.ndarray:
        return self.extract(image).embedding


def _default_providers() -> list[str]:
    """CUDA first when onnxruntime has it, always CPU as the fallback."""
    try:
        import onnxruntime
    except ImportError:
        return ["CPUExecutionProvider"]
    available = onnxruntime.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available] or ["CPUExecutionProvider"]


def _import_insightface():
    try:
        from insightface import model_zoo
    except ImportError as exc:
        raise CheckpointError(
            "The insightface backend needs `insightface` and `onnxruntime`: pip install -r requirements.txt "
            "(or use a checkpoint with a built-in identity encoder)."
        ) from exc
    return model_zoo


def _hub_path(spec: HubFile, all_files: Sequence[HubFile]) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return Path(hf_hub_download(spec.repo_id, spec.filename, revision=spec.revision))
    except LocalEntryNotFoundError as exc:
        commands = "; ".join(f.fetch_command() for f in all_files)
        raise OfflineError(
            f"The face model {spec.filename} from {spec.repo_id} is not in the Hugging Face cache and the Hub "
            f"cannot be reached (offline mode or no network). Fetch the files once while online: {commands} "
            "— or use a checkpoint with a built-in identity encoder, or give an identity embedding file."
        ) from exc
    except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise CheckpointError(
            f"{spec.repo_id} has no file {spec.filename} at revision {spec.revision or 'main'} ({exc}). Check the repo id and filenames."
        ) from exc


def _pick_insightface_face(boxes: np.ndarray, min_face: int) -> tuple[int, list[str]]:
    if len(boxes) == 0:
        raise InputError(
            "No face found in the image. Use a well-lit, frontal photo with one face at least 64 px across."
        )
    sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    index = int(np.argmax(sides))
    if sides[index] < min_face:
        raise InputError(
            f"The face is too small ({int(sides[index])} px; at least {min_face} px is needed). "
            "Use a closer or higher-resolution photo, or crop the image around the face."
        )
    notes = (
        [f"{len(boxes)} faces found; using the largest one. Crop the photo to choose another."]
        if len(boxes) > 1
        else []
    )
    for note in notes:
        logger.warning(note)
    return index, notes


def _insightface_face(box: np.ndarray, kps: np.ndarray | None):
    from insightface.app.common import Face

    if kps is None:
        raise CheckpointError(
            "The detection model returns no landmarks; use an SCRFD model with keypoints (e.g. scrfd_10g_bnkps.onnx)."
        )
    return Face(bbox=box[:4], kps=kps, det_score=box[4])


def _aligned_crop(bgr: np.ndarray, kps: np.ndarray, size: int) -> Image.Image:
    from insightface.utils import face_align

    return Image.fromarray(face_align.norm_crop(bgr, landmark=kps, image_size=size)[:, :, ::-1].copy())


def make_identity_backend(kind: str, encoder: IdentityEncoder | None = None, **kwargs) -> IdentityBackend:
    """The backend a checkpoint declares: ``"builtin"`` (needs ``encoder``) or ``"insightface-antelopev2"``."""
    if kind == "builtin":
        if encoder is None:
            raise CheckpointError(
                "This checkpoint declares a built-in identity encoder but has no identity_encoder/ folder. Re-download the checkpoint."
            )
        return BuiltinIdentityBackend(encoder, **kwargs)
    if kind == "insightface-antelopev2":
        return InsightFaceBackend(**kwargs)
    raise CheckpointError(
        f"Unknown identity encoder {kind!r} in the checkpoint config; known: {', '.join(IDENTITY_BACKENDS)}."
    )


# ---------------------------------------------------------------------------------------
# Embeddings: load, validate, save, sample, interpolate
# ---------------------------------------------------------------------------------------

EMBEDDING_SUFFIXES = (".npy", ".pt", ".pth", ".safetensors", ".json")


def load_embedding(source: str | Path | np.ndarray | Sequence[float], expected_dim: int = EMBED_DIM) -> np.ndarray:
    """Read and validate an identity embedding; return it float32 and L2-normalised.

    Accepts ``.npy``, ``.pt``/``.pth`` (a tensor only, read with ``weights_only=True``),
    ``.safetensors`` (exactly one tensor), ``.json`` (a list of numbers), an array or a list.
    Shape ``(dim,)`` or ``(1, dim)``.
    """
    if isinstance(source, str | Path):
        path = Path(source)
        name = path.name
        values = _read_embedding_file(path)
    else:
        name = "the embedding"
        values = source
    return validate_embedding(values, expected_dim, name=name)


def validate_embedding(values: object, expected_dim: int = EMBED_DIM, *, name: str = "the embedding") -> np.ndarray:
    """Shape, dtype, finiteness and norm checks shared by every embedding source."""
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu().float().numpy()
    try:
        array = np.asarray(values)
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"{name} is not a list of numbers ({exc}). Save it as a flat list of {expected_dim} floats."
        ) from exc
    if (
        array.dtype == object
        or not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer))
        or array.dtype == np.bool_
    ):
        raise InputError(f"{name} has dtype {array.dtype}, not numbers. Save it as {expected_dim} float32 values.")
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 1:
        raise InputError(
            f"{name} has shape {array.shape}; expected ({expected_dim},) or (1, {expected_dim}). Give one identity at a time."
        )
    if array.shape[0] != expected_dim:
        raise InputError(
            f"{name} has {array.shape[0]} values but this checkpoint's identity encoder uses {expected_dim}. "
            "Extract the embedding with the same encoder as the checkpoint (use image mode)."
        )
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise InputError(f"{name} contains NaN or infinite values. Re-extract it from a photo.")
    if np.linalg.norm(array) < 1e-8:
        raise InputError(
            f"{name} is a zero vector and names no identity. Re-extract it from a photo or use a random identity."
        )
    return _unit(array)


def _read_embedding_file(path: Path) -> object:
    if not path.is_file():
        raise InputError(f"Embedding file not found: {path}. Check the path and try again.")
    suffix = path.suffix.lower()
    readers = {
        ".npy": _read_npy,
        ".pt": _read_torch,
        ".pth": _read_torch,
        ".safetensors": _read_safetensors,
        ".json": _read_json,
    }
    if suffix not in readers:
        raise InputError(f"Unsupported embedding file type {suffix!r}; use one of {', '.join(EMBEDDING_SUFFIXES)}.")
    try:
        return readers[suffix](path)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            f"Could not read the embedding {path.name} ({type(exc).__name__}: {exc}). Re-save it as .npy or .json."
        ) from exc


def _read_npy(path: Path) -> np.ndarray:
    with open(path, "rb") as handle:
        if handle.read(6) != b"\x93NUMPY":
            raise InputError(
                f"{path.name} is not a NumPy .npy file. Re-save the embedding with numpy.save (or as .json)."
            )
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise InputError(
                f"{path.name} holds pickled Python objects, which are refused for safety. Save a plain float array with numpy.save."
            ) from exc
        raise


def _read_torch(path: Path):
    import pickle

    import torch

    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise InputError(
            f"{path.name} contains Python objects other than tensors and is refused for safety "
            "(read with weights_only=True). Save just the tensor: torch.save(embedding_tensor, path)."
        ) from exc
    if not isinstance(value, torch.Tensor):
        raise InputError(
            f"{path.name} holds a {type(value).__name__}, not a tensor. Save just the tensor: torch.save(embedding_tensor, path)."
        )
    return value


def _read_safetensors(path: Path) -> np.ndarray:
    from safetensors.numpy import load_file

    tensors = load_file(str(path))
    if len(tensors) != 1:
        raise InputError(
            f"{path.name} holds {len(tensors)} tensors ({', '.join(sorted(tensors)) or 'none'}); it must hold exactly one embedding."
        )
    return next(iter(tensors.values()))


def _read_json(path: Path) -> object:
    value = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(value, dict) and "embedding" in value:
        value = value["embedding"]
    if not isinstance(value, list):
        raise InputError(
            f'{path.name} holds a JSON {type(value).__name__}; expected a list of numbers (or {{"embedding": [...]}}).'
        )
    return value


def save_embedding(embedding: np.ndarray, path: str | Path) -> Path:
    """Write an embedding as ``.npy``, ``.safetensors`` (key ``"embedding"``) or ``.json`` so it can be reused."""
    path = Path(path)
    array = validate_embedding(embedding, expected_dim=np.asarray(embedding).reshape(-1).shape[0])
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npy":
        np.save(path, array)
    elif suffix == ".safetensors":
        from safetensors.numpy import save_file

        save_file({"embedding": array}, str(path))
    elif suffix == ".json":
        path.write_text(json.dumps([float(v) for v in array]), encoding="utf-8")
    else:
        raise InputError(f"Cannot save an embedding as {suffix!r}; use .npy, .safetensors or .json.")
    return path


def random_identity(
    generator: np.random.Generator | int | None = None,
    dim: int = EMBED_DIM,
    mean: np.ndarray | None = None,
    cov_factor: np.ndarray | None = None,
) -> np.ndarray:
    """Sample an identity embedding.

    Without ``mean``: a direction uniform on the unit sphere (normalised standard normal) —
    a valid but "average-less" identity. With ``mean`` (``[dim]``) and ``cov_factor``
    (``[dim, k]``, so the covariance is ``F Fᵀ``): a draw from the Gaussian fitted to a
    checkpoint's training embeddings (``fit_identity_gaussian``), projected to the sphere,
    which stays inside the region the model has seen.
    """
    rng = generator if isinstance(generator, np.random.Generator) else np.random.default_rng(generator)
    if mean is None:
        return _unit(rng.standard_normal(dim))
    mean = np.asarray(mean, np.float64).reshape(-1)
    if cov_factor is None:
        raise InputError("random_identity needs cov_factor together with mean (see fit_identity_gaussian).")
    cov_factor = np.asarray(cov_factor, np.float64)
    if cov_factor.shape[0] != mean.shape[0]:
        raise InputError(f"cov_factor has {cov_factor.shape[0]} rows but mean has {mean.shape[0]} values.")
    return _unit(mean + cov_factor @ rng.standard_normal(cov_factor.shape[1]))


def fit_identity_gaussian(embeddings: np.ndarray, rank: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and a low-rank covariance factor ``F`` (``Σ ≈ F Fᵀ``) of ``[N, dim]`` embeddings.

    ``F`` comes from the SVD of the centred data (top ``rank`` components), so a checkpoint
    can ship ``dim × rank`` numbers instead of a full covariance.
    """
    data = np.asarray(embeddings, np.float64)
    if data.ndim != 2 or data.shape[0] < 2:
        raise InputError(
            f"Need at least two embeddings as an [N, dim] array to fit a Gaussian; got shape {data.shape}."
        )
    mean = data.mean(axis=0)
    _, singular, vt = np.linalg.svd(data - mean, full_matrices=False)
    rank = min(rank or len(singular), len(singular))
    factor = (vt[:rank].T * singular[:rank]) / math.sqrt(data.shape[0] - 1)  # [dim, rank]
    return mean.astype(np.float32), factor.astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation between two identities; ``t=0`` gives ``a``, ``t=1`` gives ``b``.

    Walking the great circle keeps every intermediate a unit vector, i.e. a plausible
    identity — the "soft identity" between two people.
    """
    if not 0.0 <= float(t) <= 1.0:
        raise InputError(
            f"Interpolation weight t={t} is outside [0, 1]. Use 0 for the first identity, 1 for the second."
        )
    a = validate_embedding(a, np.asarray(a).reshape(-1).shape[0], name="the first identity")
    b = validate_embedding(b, a.shape[0], name="the second identity")
    if t == 0.0:
        return a
    if t == 1.0:
        return b
    cos = float(np.clip(np.dot(a.astype(np.float64), b), -1.0, 1.0))
    if cos < -0.9999:
        raise InputError(
            "The two identities are opposite vectors, so the path between them is undefined. Pick other identities."
        )
    omega = math.acos(cos)
    if omega < 1e-6:
        return a
    mixed = (math.sin((1 - t) * omega) * a + math.sin(t * omega) * b) / math.sin(omega)
    return _unit(mixed)


def _unit(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, np.float64)
    return (vector / np.linalg.norm(vector)).astype(np.float32)
