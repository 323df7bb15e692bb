"""Portrait images: loading every mode and orientation, refusing bad files, finding and cropping faces."""

from __future__ import annotations

import logging
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from starcaster.errors import InputError
from starcaster.identity import MAX_WORKING_SIDE, detect_and_crop_face, load_image
from starcaster.identity.images import _open_image_file

ASTRONAUT_FACE = (177, 71, 262, 156)  # (left, top, right, bottom) of the face in skimage's astronaut


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(data.astronaut())


def _png_claiming_size(path: Path, width: int, height: int) -> Path:
    """A valid 1×1 PNG whose header claims ``width``×``height`` (a decompression bomb header)."""
    Image.new("RGB", (1, 1)).save(path)
    raw = bytearray(path.read_bytes())
    ihdr = struct.pack(">II", width, height) + raw[24:29]
    raw[16:29] = ihdr
    raw[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    path.write_bytes(bytes(raw))
    return path


# --- modes and orientation -----------------------------------------------------------------


def test_exif_rotation_is_applied(tmp_path, astronaut):
    stored = astronaut.rotate(90, expand=True)  # stored sideways, as phones do
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° CW to display
    path = tmp_path / "phone.jpg"
    stored.save(path, exif=exif, quality=95)
    upright = load_image(path)
    assert upright.size == astronaut.size
    difference = np.abs(np.asarray(upright, np.int16) - np.asarray(astronaut, np.int16)).mean()
    assert difference < 6  # JPEG noise only: the face is upright again


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "1", "P", "CMYK", "I;16", "I", "F"])
def test_modes_convert_to_rgb(tmp_path, astronaut, mode):
    if mode in ("I;16", "I", "F"):
        gray = np.asarray(astronaut.convert("L"), np.float64)
        values = {"I;16": gray * 257, "I": gray * 257, "F": gray / 255.0}[mode]
        image = Image.fromarray(values.astype({"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]), mode=mode)
    else:
        image = astronaut.convert(mode)
    rgb = load_image(image)
    assert rgb.mode == "RGB" and rgb.size == astronaut.size
    luminance = np.asarray(rgb.convert("L"), np.float64)
    assert 60 < luminance.mean() < 200  # rescaled, not black or white


def test_transparent_png_composited_on_white(tmp_path):
    image = Image.new("RGBA", (80, 80), (0, 0, 0, 0))
    path = tmp_path / "clear.png"
    image.save(path)
    assert np.asarray(load_image(path)).min() == 255


def test_arrays(astronaut):
    array = np.asarray(astronaut)
    assert load_image(array).size == astronaut.size
    assert load_image(array.astype(np.float32) / 255).size == astronaut.size
    assert load_image(array.astype(np.uint16) * 257).mode == "RGB"


def test_large_jpeg_is_decoded_reduced(tmp_path):
    """A 12 000² JPEG is decoded at 1/4 scale (3000²) — never the 432 MB full buffer."""
    path = tmp_path / "huge.jpg"
    maker = "from PIL import Image; Image.new('RGB', (12000, 12000), (120, 100, 90)).save(__import__('sys').argv[1], quality=70)"
    subprocess.run([sys.executable, "-c", maker, str(path)], check=True)  # keeps 432 MB out of this process
    assert _open_image_file(path).size == (3000, 3000)
    assert load_image(path).size == (MAX_WORKING_SIDE, MAX_WORKING_SIDE)


# --- bad files: one test each ------------------------------------------------------------------


def test_missing_image(tmp_path):
    with pytest.raises(InputError, match="not found.*Check the path"):
        load_image(tmp_path / "nobody.png")


def test_empty_image_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="empty.*re-upload"):
        load_image(path)


def test_non_image_file(tmp_path):
    path = tmp_path / "face.png"
    path.write_text("definitely not a PNG")
    with pytest.raises(InputError, match="not an image.*Use a JPEG, PNG or WebP"):
        load_image(path)


def test_truncated_image(tmp_path, astronaut):
    path = tmp_path / "cut.jpg"
    astronaut.save(path, quality=90)
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(InputError, match="corrupt or truncated.*Re-export"):
        load_image(path)


def test_decompression_bomb_header(tmp_path):
    with pytest.raises(InputError, match="too large to decode safely.*Downscale"):
        load_image(_png_claiming_size(tmp_path / "bomb.png", 40_000, 40_000))


def test_huge_png_refused_before_decoding(tmp_path):
    with pytest.raises(InputError, match="13000×13000 pixels, too large.*Downscale"):
        load_image(_png_claiming_size(tmp_path / "big.png", 13_000, 13_000))


def test_bad_arrays():
    with pytest.raises(InputError, match="H×W, H×W×3 or H×W×4"):
        load_image(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(InputError, match="NaN"):
        load_image(np.full((8, 8, 3), np.nan, np.float32))
    with pytest.raises(InputError, match="dtype"):
        load_image(np.zeros((8, 8, 3), np.int64))
    with pytest.raises(InputError, match="Unsupported image input"):
        load_image(42)  # type: ignore[arg-type]


# --- detection and crops --------------------------------------------------------------------


def test_astronaut_offline_detector_and_crop(astronaut):
    crop = detect_and_crop_face(astronaut, 128, detector="cascade")
    assert crop.image.size == (128, 128) and crop.num_faces == 1 and crop.warnings == []
    assert all(abs(a - b) <= 12 for a, b in zip(crop.box, ASTRONAUT_FACE))
    # the face sits in the middle of the crop: skin tones dominate the centre
    centre = np.asarray(crop.image, np.float64)[48:80, 48:80]
    assert centre[..., 0].mean() > centre[..., 2].mean() + 20


def test_several_faces_uses_largest_and_warns(astronaut, caplog):
    canvas = Image.new("RGB", (900, 512), (200, 200, 200))
    canvas.paste(astronaut, (0, 0))
    canvas.paste(astronaut.resize((384, 384)), (516, 64))
    with caplog.at_level(logging.WARNING, logger="starcaster.identity"):
        crop = detect_and_crop_face(canvas, 64)
    assert crop.num_faces == 2 and "using the largest" in crop.warnings[0]
    assert crop.box[0] < 400  # the full-size astronaut, on the left
    assert "faces found" in caplog.text


def test_no_face(tmp_path):
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 500, 3), dtype=np.uint8))
    with pytest.raises(InputError, match="No face found.*frontal photo"):
        detect_and_crop_face(noise, 64)


def test_tiny_face(astronaut):
    canvas = Image.new("RGB", (700, 500), (128, 128, 128))
    canvas.paste(astronaut.resize((240, 240)), (10, 10))  # face ≈ 42 px
    with pytest.raises(InputError, match="too small.*closer or higher-resolution"):
        detect_and_crop_face(canvas, 64)


def test_auto_centre_crop_for_tight_render(caplog):
    render = Image.new("RGB", (64, 64), (180, 140, 120))
    with caplog.at_level(logging.WARNING, logger="starcaster.identity"):
        crop = detect_and_crop_face(render, 64)
    assert crop.method == "centre" and crop.image.size == (64, 64)
    assert "already-cropped portrait" in crop.warnings[0]
    with pytest.raises(InputError, match="No face found"):
        detect_and_crop_face(render, 64, detector="cascade")


def test_detector_none_centre_crops(astronaut):
    wide = astronaut.crop((0, 100, 512, 400))
    crop = detect_and_crop_face(wide, 32, detector="none")
    assert crop.image.size == (32, 32) and crop.box == (106, 0, 406, 300) and crop.warnings == []


def test_unknown_detector(astronaut):
    with pytest.raises(InputError, match="Unknown face detector.*use one of"):
        detect_and_crop_face(astronaut, 64, detector="dlib")
