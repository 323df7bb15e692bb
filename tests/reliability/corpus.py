"""The bad-input corpus: every hostile or broken file the reliability tests feed the system.

Nothing here is committed as data: each ``make_*`` function writes its file into a folder at
test time, from a few bytes up to a sparse 230 MB WAV that takes no disk space. ``CASES``
lists every case with the channel it goes through (the running app's API, the Python API or
the CLI) and what must come back: an error whose message contains ``expect``, or a normal
result (``ok``; ``expect`` then names a warning or note that must be shown).
"""

from __future__ import annotations

import io
import pickle
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from tests.reliability.rawhttp import file_data, raw_generate, raw_upload

ROOT = Path(__file__).resolve().parents[2]
PORTRAIT = ROOT / "examples" / "portraits" / "portrait_0.png"
SPEECH = ROOT / "examples" / "audio" / "hello.wav"
SR = 16_000


# ---------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------


def _portrait() -> Image.Image:
    return Image.open(PORTRAIT).convert("RGB")


def _astronaut() -> Image.Image:
    """A real photo with one detectable face (scikit-image's bundled sample, 512², face ≈ 90 px)."""
    from skimage import data

    return Image.fromarray(data.astronaut())


def make_zero_byte_png(folder: Path) -> Path:
    path = folder / "empty.png"
    path.write_bytes(b"")
    return path


def make_truncated_jpeg(folder: Path) -> Path:
    buffer = io.BytesIO()
    _astronaut().save(buffer, "JPEG", quality=90)
    path = folder / "truncated.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 3])
    return path


def make_truncated_png(folder: Path) -> Path:
    buffer = io.BytesIO()
    _astronaut().save(buffer, "PNG")
    path = folder / "truncated.png"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def make_png_bomb(folder: Path, side: int = 20_000) -> Path:
    """A ~0.4 MB greyscale PNG that inflates to ``side``² bytes (400 MB): real, valid IDAT data."""
    row = b"\x00" * (side + 1)  # filter byte + one byte per pixel
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit greyscale
    path = folder / "bomb.png"
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")
    )
    return path


def make_svg_as_png(folder: Path) -> Path:
    path = folder / "drawing.png"
    path.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><circle r="30"/></svg>')
    return path


def make_html_as_png(folder: Path) -> Path:
    path = folder / "page.png"
    path.write_text("<html><body><script>alert(1)</script><img src=x onerror=alert(2)></body></html>")
    return path


def make_animated_gif(folder: Path) -> Path:
    frames = [_portrait(), _portrait().transpose(Image.Transpose.FLIP_LEFT_RIGHT), _portrait().rotate(10)]
    path = folder / "animated.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def make_cmyk_tiff(folder: Path) -> Path:
    path = folder / "portrait_cmyk.tiff"
    _portrait().convert("CMYK").save(path, "TIFF")
    return path


def make_video_as_image(folder: Path) -> Path:
    """A real 8-frame mp4 (no audio track) named .png."""
    from starcaster.video import write_video

    path = folder / "clip.mp4"
    write_video(path, [np.full((8, 32, 32, 3), 128, np.uint8)], fps=8)
    renamed = folder / "clip_as_image.png"
    path.rename(renamed)
    return renamed


def make_one_pixel(folder: Path) -> Path:
    path = folder / "one_pixel.png"
    Image.new("RGB", (1, 1), (200, 150, 120)).save(path)
    return path


def make_no_face(folder: Path) -> Path:
    """A 400×300 landscape of smooth gradients: an image, but no face."""
    y, x = np.mgrid[0:300, 0:400]
    picture = np.stack([x * 255 // 400, y * 255 // 300, (x + y) * 255 // 700], -1).astype(np.uint8)
    path = folder / "landscape.png"
    Image.fromarray(picture).save(path)
    return path


def make_many_faces(folder: Path) -> Path:
    """Four copies of the astronaut photo, 2×2, with different sizes so one face is the largest."""
    big, small = _astronaut(), _astronaut().resize((384, 384))
    canvas = Image.new("RGB", (896, 896), "white")
    canvas.paste(big, (0, 0))
    canvas.paste(small, (512, 0))
    canvas.paste(small, (0, 512))
    canvas.paste(small, (512, 512))
    path = folder / "many_faces.png"
    canvas.save(path)
    return path


def make_face_at_edge(folder: Path) -> Path:
    """The astronaut cut so the face touches the top-left corner (its crop must leave the image)."""
    path = folder / "face_at_edge.png"
    _astronaut().crop((150, 40, 662, 552)).save(path)  # the face box starts near (0, 0)
    return path


def make_unicode_name(folder: Path) -> Path:
    path = folder / "портрет 😀 ü.png"
    _portrait().save(path)
    return path


def make_traversal_name(folder: Path) -> Path:
    """A portrait whose *upload* name is a path-traversal string (the file itself lives in ``folder``)."""
    nested = folder / "a" / "b"
    nested.mkdir(parents=True, exist_ok=True)
    path = nested / "..%2F..%2F..%2Fetc%2Fpasswd.png"
    _portrait().save(path)
    return path


# ---------------------------------------------------------------------------------------
# Audio
# ---------------------------------------------------------------------------------------


def _speech(seconds: float = 0.6, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sign(np.sin(2 * np.pi * 120 * t)) * np.clip(np.sin(2 * np.pi * 3 * t), 0, None)).astype(np.float32)


def make_zero_byte_wav(folder: Path) -> Path:
    path = folder / "empty.wav"
    path.write_bytes(b"")
    return path


def make_zero_length_wav(folder: Path) -> Path:
    path = folder / "no_samples.wav"
    sf.write(path, np.zeros(0, np.float32), SR)
    return path


def make_one_sample_wav(folder: Path) -> Path:
    path = folder / "one_sample.wav"
    sf.write(path, np.array([0.5], np.float32), SR)
    return path


def make_8khz_wav(folder: Path) -> Path:
    path = folder / "phone_8k.wav"
    sf.write(path, _speech(0.6, 8_000), 8_000, subtype="PCM_16")
    return path


def make_96khz_6ch_wav(folder: Path) -> Path:
    path = folder / "surround_96k.wav"
    sf.write(path, np.repeat(_speech(0.5, 96_000)[:, None], 6, axis=1), 96_000, subtype="PCM_24")
    return path


def make_nan_wav(folder: Path) -> Path:
    wave = _speech()
    wave[100:200] = np.nan
    path = folder / "nan.wav"
    sf.write(path, wave, SR, subtype="FLOAT")
    return path


def make_silent_wav(folder: Path) -> Path:
    path = folder / "silence.wav"
    sf.write(path, np.zeros(int(0.6 * SR), np.float32), SR, subtype="PCM_16")
    return path


def make_two_hour_wav(folder: Path) -> Path:
    """A valid 2-hour 16 kHz 16-bit WAV (230 MB) written as a sparse file: no disk space, no time."""
    samples = 2 * 3600 * SR
    data_bytes = samples * 2
    header = b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, SR, SR * 2, 2, 16)
    header += b"data" + struct.pack("<I", data_bytes)
    path = folder / "two_hours.wav"
    with open(path, "wb") as handle:
        handle.write(header)
        handle.truncate(len(header) + data_bytes)  # zeros, allocated lazily by the file system
    return path


def make_text_as_wav(folder: Path) -> Path:
    path = folder / "notes.wav"
    path.write_text("RIFF? no: these are meeting notes, not audio.\n" * 20)
    return path


def make_video_as_audio(folder: Path) -> Path:
    """A real mp4 with a video track only, given as speech."""
    from starcaster.video import write_video

    path = folder / "silent_film.mp4"
    write_video(path, [np.full((4, 32, 32, 3), 90, np.uint8)], fps=8)
    return path


# ---------------------------------------------------------------------------------------
# Embeddings
# ---------------------------------------------------------------------------------------


def _unit(dim: int = 512) -> np.ndarray:
    vector = np.random.default_rng(3).standard_normal(dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


def make_embedding_wrong_size(folder: Path) -> Path:
    path = folder / "id_256.npy"
    np.save(path, _unit(256))
    return path


def make_embedding_nan(folder: Path) -> Path:
    vector = _unit()
    vector[5] = np.nan
    path = folder / "id_nan.npy"
    np.save(path, vector)
    return path


def make_embedding_zeros(folder: Path) -> Path:
    path = folder / "id_zeros.npy"
    np.save(path, np.zeros(512, np.float32))
    return path


def make_embedding_wrong_dtype(folder: Path) -> Path:
    path = folder / "id_strings.npy"
    np.save(path, np.array(["0.1"] * 512))
    return path


def make_embedding_2d(folder: Path) -> Path:
    path = folder / "id_batch.npy"
    np.save(path, np.stack([_unit(), _unit()]))
    return path


def make_embedding_zero_byte(folder: Path) -> Path:
    path = folder / "id_empty.npy"
    path.write_bytes(b"")
    return path


class _Payload:
    """Unpickling this runs ``open(marker, 'w')``: the proof that a pickle was executed."""

    marker = "/tmp/rel8-pickle-was-executed"

    def __reduce__(self):
        return (open, (self.marker, "w"))


PICKLE_MARKER = Path(_Payload.marker)


def make_pickle_as_pt(folder: Path) -> Path:
    """A plain pickle (no torch zip) whose loading would create ``PICKLE_MARKER``."""
    path = folder / "identity.pt"
    path.write_bytes(pickle.dumps({"embedding": _Payload()}))
    return path


def make_torch_pickle_as_pt(folder: Path) -> Path:
    """A torch.save zip holding an object whose unpickling would create ``PICKLE_MARKER``."""
    import torch

    path = folder / "identity_zip.pt"
    torch.save({"embedding": torch.from_numpy(_unit()), "hook": _Payload()}, path)
    return path


def make_object_npy(folder: Path) -> Path:
    path = folder / "id_objects.npy"
    np.save(path, np.array([_Payload()], dtype=object), allow_pickle=True)
    return path


def make_exe_as_embedding(folder: Path) -> Path:
    path = folder / "identity.exe"
    path.write_bytes(b"MZ\x90\x00" + b"\x00" * 60)
    return path


# ---------------------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One bad input, the channel it goes through, and what must come back.

    ``inputs`` builds the request from a scratch folder: for ``api`` a dict of ``/generate``
    (or ``endpoint``) arguments whose Path values are uploaded; for ``python`` a callable
    that raises; for ``cli`` the argument list of ``python -m starcaster``.
    """

    name: str
    kind: str  # image | audio | embedding | slider | payload
    channel: str  # api | python | cli
    inputs: Callable[[Path], object]
    expect: str  # a substring of the error (or, for outcome "ok", of the result's note/status)
    outcome: str = "error"  # error | ok
    endpoint: str = "/generate"
    notes: dict = field(default_factory=dict, hash=False, compare=False)


def _gen(**kwargs) -> Callable[[Path], dict]:
    """``/generate`` arguments: ``image``/``audio``/``embedding`` may be makers (folder → Path)."""

    def build(folder: Path) -> dict:
        built = {}
        for key, value in kwargs.items():
            built[key] = value(folder) if callable(value) else value
        built.setdefault("audio", SPEECH)
        return built

    return build


def _extract(maker) -> Callable[[Path], dict]:
    return lambda folder: {"image": maker(folder)}


def _blend(maker) -> Callable[[Path], dict]:
    def build(folder: Path) -> dict:
        good = folder / "good.npy"
        np.save(good, _unit())
        return {"first": good, "second": maker(folder), "weight": 0.5}

    return build


def _python(call: Callable[[Path], object]) -> Callable[[Path], Callable[[], object]]:
    return lambda folder: lambda: call(folder)


def _load_image(maker):
    from starcaster.identity import load_image

    return _python(lambda folder: load_image(maker(folder)))


def _read_audio(maker, **kwargs):
    from starcaster.audio import read_audio

    return _python(lambda folder: read_audio(maker(folder), **kwargs))


@lru_cache(maxsize=1)
def _tiny_pipe():
    from starcaster import build_pipeline

    return build_pipeline("tiny", seed=0)


def _start(**settings):
    """``pipe.start(...)`` on a tiny pipeline: the checks run before any chunk is made."""
    return _python(lambda folder: _tiny_pipe().start(audio=SPEECH, identity_embedding=_unit(), **settings))


def _load_embedding(maker):
    from starcaster.identity import load_embedding

    return _python(lambda folder: load_embedding(maker(folder)))


def _cli(**flags) -> Callable[[Path], list[str]]:
    """``generate`` arguments (checkpoint and --out are added by the runner)."""

    def build(folder: Path) -> list[str]:
        args = ["generate"]
        for key, value in flags.items():
            value = value(folder) if callable(value) else value
            args += [f"--{key.replace('_', '-')}", str(value)]
        if "audio" not in flags:
            args += ["--audio", str(SPEECH)]
        return args

    return build


NO_FACE = "No face found"
# Nothing listens here (port 9 is "discard"): the server must refuse to fetch it before trying.
LOOPBACK_URL = "http://127.0.0.1:9/portrait.png"


def _nan_azimuth(body: str) -> str:
    return body.replace("12345", "NaN")


def _inf_steps(body: str) -> str:
    return body.replace(', "static", 4, 1,', ', "static", 4, Infinity,')


CASES: list[Case] = [
    # -- images through the app ------------------------------------------------------------
    Case("zero-byte .png", "image", "api", _gen(image=make_zero_byte_png), "is empty (0 bytes)"),
    Case("truncated JPEG", "image", "api", _gen(image=make_truncated_jpeg), "corrupt or truncated"),
    Case("truncated PNG", "image", "api", _gen(image=make_truncated_png), "corrupt or truncated"),
    Case("PNG bomb 20000² (0.4 MB file)", "image", "api", _gen(image=make_png_bomb), "too large to decode safely"),
    Case("SVG renamed .png", "image", "api", _gen(image=make_svg_as_png), "not an image"),
    Case("HTML renamed .png", "image", "api", _gen(image=make_html_as_png), "not an image"),
    Case("animated GIF (first frame used)", "image", "api", _gen(image=make_animated_gif), "Done:", "ok"),
    Case("CMYK TIFF", "image", "api", _gen(image=make_cmyk_tiff), "Done:", "ok"),
    Case("mp4 video given as image", "image", "api", _gen(image=make_video_as_image), "not an image"),
    Case("1×1 image", "image", "api", _gen(image=make_one_pixel), "only 1×1 px"),
    Case("no face (400×300 landscape)", "image", "api", _extract(make_no_face), NO_FACE, endpoint="/extract_identity"),
    Case("four faces", "image", "api", _extract(make_many_faces), "using the largest", "ok", "/extract_identity"),
    Case("face at the image edge", "image", "api", _extract(make_face_at_edge), "512-D", "ok", "/extract_identity"),
    Case("unicode file name", "payload", "api", _gen(image=make_unicode_name), "Done:", "ok"),
    Case("path-traversal file name", "payload", "api", _gen(image=make_traversal_name), "Done:", "ok"),
    # -- audio through the app ---------------------------------------------------------------
    Case("zero-byte .wav", "audio", "api", _gen(image=PORTRAIT, audio=make_zero_byte_wav), "is empty (0 bytes)"),
    Case("WAV with 0 samples", "audio", "api", _gen(image=PORTRAIT, audio=make_zero_length_wav), "no samples"),
    Case("WAV with 1 sample", "audio", "api", _gen(image=PORTRAIT, audio=make_one_sample_wav), "Done: 1 frames", "ok"),
    Case("8 kHz WAV", "audio", "api", _gen(image=PORTRAIT, audio=make_8khz_wav), "Done:", "ok"),
    Case("96 kHz 6-channel WAV", "audio", "api", _gen(image=PORTRAIT, audio=make_96khz_6ch_wav), "Done:", "ok"),
    Case("NaN samples", "audio", "api", _gen(image=PORTRAIT, audio=make_nan_wav), "NaN or infinite"),
    Case("all-silent WAV", "audio", "api", _gen(image=PORTRAIT, audio=make_silent_wav), "Done:", "ok"),
    Case(
        "2-hour WAV (230 MB, sparse)",
        "audio",
        "api",
        _gen(image=PORTRAIT, audio=make_two_hour_wav),
        "exceeds the maximum file size",
    ),
    Case(
        "text renamed .wav", "audio", "api", _gen(image=PORTRAIT, audio=make_text_as_wav), "not a readable audio file"
    ),
    Case(
        "mp4 without audio as speech", "audio", "api", _gen(image=PORTRAIT, audio=make_video_as_audio), "no audio track"
    ),
    # -- embeddings through the app -----------------------------------------------------------
    Case("embedding 256-D", "embedding", "api", _gen(embedding=make_embedding_wrong_size), "has 256 values"),
    Case("embedding with NaN", "embedding", "api", _gen(embedding=make_embedding_nan), "NaN or infinite"),
    Case("embedding all zeros", "embedding", "api", _gen(embedding=make_embedding_zeros), "zero vector"),
    Case("embedding of strings", "embedding", "api", _gen(embedding=make_embedding_wrong_dtype), "not numbers"),
    Case("embedding 2-D (2, 512)", "embedding", "api", _gen(embedding=make_embedding_2d), "shape (2, 512)"),
    Case("zero-byte .npy", "embedding", "api", _gen(embedding=make_embedding_zero_byte), "not a NumPy .npy file"),
    Case("pickle disguised as .pt", "embedding", "api", _gen(embedding=make_pickle_as_pt), "refused for safety"),
    Case(
        "torch.save with a code object",
        "embedding",
        "api",
        _gen(embedding=make_torch_pickle_as_pt),
        "refused for safety",
    ),
    Case(".npy holding pickled objects", "embedding", "api", _gen(embedding=make_object_npy), "refused for safety"),
    Case(".exe as embedding", "embedding", "api", _gen(embedding=make_exe_as_embedding), "Invalid file type"),
    Case(
        "blend with a NaN embedding",
        "embedding",
        "api",
        _blend(make_embedding_nan),
        "NaN",
        endpoint="/blend_identities",
    ),
    # -- sliders and numbers through the API ----------------------------------------------------
    Case("azimuth 1000°", "slider", "api", _gen(image=PORTRAIT, azimuth=1000), "maximum value 180"),
    Case("elevation -100°", "slider", "api", _gen(image=PORTRAIT, elevation=-100), "minimum value -90"),
    Case("chunk length 0", "slider", "api", _gen(image=PORTRAIT, chunk_length=0), "minimum value 1"),
    Case("chunk length 1000", "slider", "api", _gen(image=PORTRAIT, chunk_length=1000), "maximum value 16"),
    Case("steps 10⁶", "slider", "api", _gen(image=PORTRAIT, num_inference_steps=10**6), "maximum value 50"),
    Case("seed -1", "slider", "api", _gen(image=PORTRAIT, seed=-1), "minimum value 0"),
    Case("seed 2⁶⁴", "slider", "api", _gen(image=PORTRAIT, seed=2**64), "maximum value"),
    Case("fps 0", "slider", "api", _gen(image=PORTRAIT, fps=0), "minimum value 1"),
    Case("guidance 1e9", "slider", "api", _gen(image=PORTRAIT, guidance_scale_audio=1e9), "maximum value 20"),
    Case("context frames -5", "slider", "api", _gen(image=PORTRAIT, context_frames=-5), "minimum value 0"),
    Case(
        "sweep views 10⁵",
        "slider",
        "api",
        _gen(image=PORTRAIT, camera_path="sweep", sweep_views=10**5),
        "maximum value 64",
    ),
    Case(
        "camera path 'spiral'",
        "slider",
        "api",
        _gen(image=PORTRAIT, camera_path="spiral"),
        "not in the list of choices",
    ),
    Case("azimuth as text", "slider", "api", _gen(image=PORTRAIT, azimuth="ninety"), "number"),
    # -- raw HTTP payloads (what gradio_client refuses to send) ------------------------------------
    Case(
        "azimuth NaN (raw JSON)",
        "payload",
        "http",
        raw_generate(image=PORTRAIT, azimuth=12345, body=_nan_azimuth),
        "finite",
    ),
    Case("steps Infinity (raw JSON)", "payload", "http", raw_generate(image=PORTRAIT, body=_inf_steps), "finite"),
    Case(
        "server path /etc/passwd as image",
        "payload",
        "http",
        raw_generate(image=file_data("/etc/passwd")),
        "not uploaded by a user",
    ),
    Case(
        "repo file app.py as audio",
        "payload",
        "http",
        raw_generate(image=PORTRAIT, audio=file_data(str(ROOT / "app.py"))),
        "not uploaded by a user",
    ),
    Case(
        "loopback URL as image (SSRF)",
        "payload",
        "http",
        raw_generate(image=file_data(LOOPBACK_URL, url=LOOPBACK_URL)),
        "failed validation",
    ),
    Case(
        "2 of 16 inputs",
        "payload",
        "http",
        raw_generate(body=lambda body: '{"data": [null, null]}'),
        "enough input values",
    ),
    Case("data is not a list", "payload", "http", raw_generate(body=lambda body: '{"data": "hello"}'), "valid list"),
    Case("26 MB upload past the client", "payload", "http", raw_upload(26 * 2**20), "HTTP 413"),
    # -- the Python API ------------------------------------------------------------------------
    Case("PNG bomb (Python)", "image", "python", _load_image(make_png_bomb), "too large to decode safely"),
    Case("SVG as .png (Python)", "image", "python", _load_image(make_svg_as_png), "not an image"),
    Case(
        "2-hour WAV, limit 20 s (Python)",
        "audio",
        "python",
        _read_audio(make_two_hour_wav, max_seconds=20),
        "7200.0 s long",
    ),
    Case("text as .wav (Python)", "audio", "python", _read_audio(make_text_as_wav), "not a readable audio file"),
    Case("pickle as .pt (Python)", "embedding", "python", _load_embedding(make_pickle_as_pt), "refused for safety"),
    Case("2-D embedding (Python)", "embedding", "python", _load_embedding(make_embedding_2d), "shape (2, 512)"),
    Case(
        "orbit from azimuth NaN (Python)",
        "slider",
        "python",
        _start(azimuth=float("nan"), camera_path="orbit"),
        "finite",
    ),
    Case(
        "sweep of 10⁶ views (Python)",
        "slider",
        "python",
        _start(camera_path="sweep", num_frames=10**6),
        "between 1 and 1024",
    ),
    Case("steps 0 (Python)", "slider", "python", _start(num_inference_steps=0), "between 1 and 50"),
    # -- the CLI ----------------------------------------------------------------------------------
    Case("CLI: NaN embedding", "embedding", "cli", _cli(embedding=make_embedding_nan), "NaN or infinite"),
    Case("CLI: truncated JPEG", "image", "cli", _cli(image=make_truncated_jpeg), "corrupt or truncated"),
    Case(
        "CLI: text as .wav", "audio", "cli", _cli(image=PORTRAIT, audio=make_text_as_wav), "not a readable audio file"
    ),
    Case("CLI: chunk length 1000", "slider", "cli", _cli(image=PORTRAIT, chunk_length=1000), "between 1 and 16"),
    Case("CLI: azimuth inf", "slider", "cli", _cli(image=PORTRAIT, azimuth="inf"), "finite"),
    Case(
        "CLI: orbit from elevation nan",
        "slider",
        "cli",
        _cli(image=PORTRAIT, elevation="nan", camera_path="orbit"),
        "finite",
    ),
    Case("CLI: unicode output name", "payload", "cli", _cli(image=PORTRAIT, out="vidéo ✓.avi"), "must end in .mp4"),
]
