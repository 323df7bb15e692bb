"""Portrait images: open, validate, orient, convert and downscale any image a user gives.

Every failure (missing, empty, truncated, not an image, a decompression bomb) is an ``InputError``
that names the file; big photos are draft-decoded and downscaled before anything else sees them.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InputError

logger = logging.getLogger(__name__)

MAX_WORKING_SIDE = 2048  # images are downscaled to this long side before any processing
MAX_DECODE_PIXELS = 150_000_000  # ~12 000²; bigger images that cannot be draft-decoded are refused

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
