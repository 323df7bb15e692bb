"""Serving the demo: launch settings, the command line of ``python app.py``, ZeroGPU, work folders.

``launch`` applies the upload limit, error reporting and served paths; ``parse_args`` reads the
app's own launch flags (``--host``, ``--port``, ``--share``, …: the one command line parsed
outside ``starcaster/cli.py``, because Spaces and the issue ask for ``python app.py --share``).
On a ZeroGPU Space ``gpu`` wraps the generator in ``spaces.GPU(duration=gpu_seconds(...))``.
Nothing here builds the page (``layout.py``) or handles a request (``handlers.py``).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
from pathlib import Path

import gradio as gr

try:  # Hugging Face ZeroGPU; locally (no SPACES_ZERO_GPU) ``spaces.GPU`` returns the function unchanged
    import spaces
except Exception:  # noqa: BLE001 — e.g. SPACES_ZERO_GPU set outside a Space
    spaces = None

DEFAULT_MAX_AUDIO_SECONDS = 20.0
DEFAULT_QUEUE_SIZE = 16
WORK_DIR_PREFIX = "starcaster-app-"  # + pid: a dead process's folder is removed by the next start
MAX_FILE_SIZE = "25mb"  # per upload: a long phone photo or 2 min of 48 kHz stereo WAV fit; more is refused

# ZeroGPU budget: a fixed start-up cost plus a per-frame cost at the default 4 steps,
# measured generously; the scheduler refuses requests that ask for more than its limit.
GPU_BASE_SECONDS = 20.0
GPU_SECONDS_PER_FRAME_STEP = 0.02
GPU_MAX_SECONDS = 300.0

CSS = """
#random-banner {background:#b91c1c; color:white; border-radius:8px; padding:8px 14px; font-weight:600;}
#random-banner * {color:white !important;}
#random-banner code {background:rgba(0,0,0,0.3) !important;}
#checkpoint-note {font-size:0.9em; opacity:0.85;}
"""


def gpu(duration):
    """``spaces.GPU(duration=...)`` when running on ZeroGPU, the identity elsewhere."""
    if spaces is None:
        return lambda fn: fn
    return spaces.GPU(duration=duration)


def remove_stale_work_dirs(root: Path) -> None:
    """Delete the work dirs of app processes that died without cleaning up (SIGKILL, OOM, power)."""
    for folder in root.glob(f"{WORK_DIR_PREFIX}*-*"):
        pid = folder.name[len(WORK_DIR_PREFIX) :].split("-")[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="STARCaster demo app (Gradio).")
    parser.add_argument("--host", default=None, help="interface to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=None, help="port (default 7860 or $GRADIO_SERVER_PORT)")
    parser.add_argument("--share", action="store_true", help="create a public gradio.live link")
    parser.add_argument("--checkpoint", default=None, help="Hub repo id[@revision] or folder ($STARCASTER_CHECKPOINT)")
    parser.add_argument(
        "--max-audio-seconds",
        type=float,
        default=float(os.environ.get("STARCASTER_MAX_AUDIO_SECONDS", DEFAULT_MAX_AUDIO_SECONDS)),
        help="longest speech clip accepted",
    )
    parser.add_argument("--queue-size", type=int, default=DEFAULT_QUEUE_SIZE, help="requests waiting at most")
    return parser.parse_args(argv)


def launch(demo: gr.Blocks, *, host: str | None = None, port: int | None = None, **overrides):
    """``demo.launch`` with the app's serving settings (used by ``main`` and by the tests).

    Uploads above ``MAX_FILE_SIZE`` are refused before they reach any handler; no folder is
    added to ``allowed_paths``, so the server only hands out files it wrote itself (uploads,
    results, example files). ``show_error=True`` lets clients see why Gradio itself refused a
    request (a path that was not uploaded, a blocked URL, a wrong number of inputs); the app's
    own handlers never let raw exception text out (``_reported``), and no traceback is sent.
    """
    options = dict(
        server_name=host,
        server_port=port,
        css=CSS,
        theme=gr.themes.Soft(),
        max_file_size=MAX_FILE_SIZE,
        show_error=True,
    )
    options.update(overrides)
    return demo.launch(**options)


def gpu_seconds(
    audio_seconds: float | None,
    fps: float,
    num_inference_steps: int,
    camera_path: str | None,
    sweep_views: int,
    max_audio_seconds: float,
) -> int:
    """The ``spaces.GPU`` duration to request for one generation: scales with the frame count."""
    if camera_path == "sweep":
        frames = sweep_views
    else:
        seconds = max_audio_seconds if audio_seconds is None else min(audio_seconds, max_audio_seconds)
        frames = math.ceil(seconds * fps)
    estimate = GPU_BASE_SECONDS + GPU_SECONDS_PER_FRAME_STEP * frames * max(1, int(num_inference_steps))
    return int(min(GPU_MAX_SECONDS, math.ceil(estimate)))
