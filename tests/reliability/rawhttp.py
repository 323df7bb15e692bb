"""Raw HTTP calls to the app: what ``gradio_client`` cannot send (NaN, server paths, URLs, wrong arity)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
SPEECH = ROOT / "examples" / "audio" / "hello.wav"
FAST = dict(chunk_length=4, num_inference_steps=1, fps=8)  # a few frames of the tiny model per request

# ---------------------------------------------------------------------------------------
# Raw HTTP: what gradio_client cannot send (NaN, bare server paths, URLs, wrong arity)
# ---------------------------------------------------------------------------------------

GENERATE_ORDER = [
    "image",
    "embedding",
    "audio",
    "azimuth",
    "elevation",
    "camera_path",
    "chunk_length",
    "num_inference_steps",
    "guidance_scale_audio",
    "guidance_scale_identity",
    "seed",
    "randomize_seed",
    "fps",
    "context_frames",
    "sweep_views",
    "sweep_moment",
    "refine_details",
]
DEFAULTS = dict(
    azimuth=0,
    elevation=0,
    camera_path="static",
    guidance_scale_audio=1.0,
    guidance_scale_identity=1.0,
    seed=0,
    randomize_seed=False,
    context_frames=8,
    sweep_views=16,
    sweep_moment=0.5,
    refine_details=True,
    **FAST,
)


def upload_raw(url: str, path: Path, name: str | None = None) -> dict:
    """POST a file to Gradio's upload route as a browser would; return its FileData dict."""
    with open(path, "rb") as handle:
        response = httpx.post(f"{url}gradio_api/upload", files={"files": (name or path.name, handle)}, timeout=60)
    response.raise_for_status()
    return file_data(response.json()[0])


def file_data(path: str, **extra) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}, **extra}


def call_raw(url: str, body: str) -> tuple[str, str]:
    """POST a JSON body to ``/gradio_api/call/generate`` and read the event stream → (outcome, message)."""
    response = httpx.post(
        f"{url}gradio_api/call/generate", content=body, headers={"Content-Type": "application/json"}, timeout=60
    )
    if response.status_code != 200:
        return "error", f"HTTP {response.status_code}: {response.text}"
    event_id = response.json()["event_id"]
    stream = httpx.get(f"{url}gradio_api/call/generate/{event_id}", timeout=120).text
    kind = "error" if "event: error" in stream else "ok"
    data = [line[len("data: ") :] for line in stream.splitlines() if line.startswith("data: ")]
    last = data[-1] if data else ""
    if kind == "error":
        try:
            return kind, str(json.loads(last).get("error"))
        except (ValueError, AttributeError):
            return kind, last
    return kind, last


def raw_generate(**values) -> Callable[[Path], Callable[[str], tuple[str, str]]]:
    """A raw ``/generate`` call; Path values are uploaded first, ``body`` edits the JSON text."""
    body_edit = values.pop("body", None)

    def build(folder: Path):
        def send(url: str) -> tuple[str, str]:
            settings = {**DEFAULTS, "audio": SPEECH, **values}
            data = []
            for key in GENERATE_ORDER:
                value = settings.get(key)
                value = value(folder) if callable(value) else value
                data.append(upload_raw(url, value) if isinstance(value, Path) else value)
            body = json.dumps({"data": data})
            return call_raw(url, body_edit(body) if body_edit else body)

        return send

    return build


def raw_upload(size: int) -> Callable[[Path], Callable[[str], tuple[str, str]]]:
    """Upload ``size`` bytes straight to the upload route (no client-side size check)."""

    def build(folder: Path):
        def send(url: str) -> tuple[str, str]:
            response = httpx.post(f"{url}gradio_api/upload", files={"files": ("big.wav", b"\0" * size)}, timeout=60)
            outcome = "ok" if response.status_code == 200 else "error"
            return outcome, f"HTTP {response.status_code}: {response.text}"

        return send

    return build
