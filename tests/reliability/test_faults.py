"""Faults: a client that vanishes mid-run, broken checkpoints, a full disk, an unreachable Hub,
and a restart. Each must end in a clear error (or a clean cancel) and leave nothing behind."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import black_hole, serve
from tests.reliability.corpus import PORTRAIT, ROOT, SPEECH
from tests.reliability.rawhttp import FAST

# -- a client that disconnects mid-generation -----------------------------------------------


def _count_chunks(app) -> list[int]:
    """Wrap the app's chunk generator so the test can see how far a run got."""
    count, inner = [0], app.generate_on_gpu

    def counting(*args, **kwargs):
        for item in inner(*args, **kwargs):
            count[0] += 1
            yield item

    app.generate_on_gpu = counting
    return count


def test_client_disconnect_cancels_the_run(tiny_pipe):
    """A client process that dies after the first preview: the run stops within a chunk or two,
    its files are removed, and the next request is served at once."""
    from gradio_client import Client, handle_file

    with serve(tiny_pipe, max_audio_seconds=10.0) as (demo, url):
        app = demo.starcaster_app
        count = _count_chunks(app)
        client_code = (
            "import os, time\n"
            "from gradio_client import Client, handle_file\n"
            f"job = Client({url!r}, verbose=False).submit(handle_file({str(PORTRAIT)!r}), None, "
            f"handle_file({str(SPEECH)!r}), api_name='/generate', chunk_length=1, num_inference_steps=4, fps=30)\n"
            "while not job.outputs(): time.sleep(0.02)\n"
            "os._exit(0)  # no goodbye: the connection just drops\n"
        )
        subprocess.run([sys.executable, "-c", client_code], check=True, timeout=120, cwd=ROOT)
        total = 1 + 77  # header + one chunk per frame of 2.56 s at 30 fps
        time.sleep(3.0)
        stopped_at = count[0]
        time.sleep(2.0)
        assert count[0] == stopped_at < total // 4, f"still generating after the disconnect ({count[0]}/{total})"
        assert [p for p in app.work_dir.rglob("*") if p.is_file()] == []
        out = Client(url, verbose=False).predict(
            handle_file(str(PORTRAIT)), None, handle_file(str(SPEECH)), api_name="/generate", **FAST
        )
        assert out[4].startswith("Done:")


# -- broken checkpoint folders: the error comes at load time ----------------------------------


def _weights(folder: Path, component: str = "unet") -> Path:
    return next((folder / component).glob("*.safetensors"))


def _truncate(folder: Path) -> None:
    path = _weights(folder)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage_header(folder: Path) -> None:
    path = _weights(folder)
    data = bytearray(path.read_bytes())
    data[:8] = (2**62).to_bytes(8, "little")  # header length far beyond the file
    path.write_bytes(bytes(data))


def _pickle_only(folder: Path) -> None:
    path = _weights(folder, "vae")
    path.rename(path.with_suffix(".bin"))


CHECKPOINT_FAULTS = {
    "unet weights deleted": (lambda f: _weights(f).unlink(), "has no *.safetensors"),
    "unet weights truncated": (_truncate, "corrupt or truncated"),
    "unet header garbage": (_garbage_header, "corrupt or truncated"),
    "vae only as pickle (.bin)": (_pickle_only, "only has pickled weights"),
    "vae folder missing": (lambda f: shutil.rmtree(f / "vae"), "vae/ is missing"),
    "model_index.json missing": (lambda f: (f / "model_index.json").unlink(), "model_index.json is missing"),
    "model_index.json not JSON": (lambda f: (f / "model_index.json").write_text("{oops"), "not valid JSON"),
}


@pytest.mark.parametrize("fault", list(CHECKPOINT_FAULTS))
def test_broken_checkpoint_fails_at_load(tiny_checkpoint, tmp_path, fault):
    from starcaster import CheckpointError, STARCasterPipeline

    folder = tmp_path / "checkpoint"
    shutil.copytree(tiny_checkpoint, folder)
    damage, expected = CHECKPOINT_FAULTS[fault]
    damage(folder)
    started = time.perf_counter()
    with pytest.raises(CheckpointError, match=expected.replace("*", r"\*")):
        STARCasterPipeline.from_pretrained(str(folder))
    assert time.perf_counter() - started < 10


def test_app_start_with_broken_checkpoint_says_why(tiny_checkpoint, tmp_path, monkeypatch):
    """``python app.py --checkpoint broken/`` starts anyway (bundled or random weights) and the page says why."""
    import starcaster.demo.checkpoint as support

    folder = tmp_path / "checkpoint"
    shutil.copytree(tiny_checkpoint, folder)
    _truncate(folder)
    monkeypatch.setattr(support, "RANDOM_PRESET", "tiny")
    monkeypatch.setattr(support, "bundled_checkpoint", lambda: None)
    loaded = support.load_app_pipeline(str(folder), cache_dir=tmp_path / "cache")
    assert loaded.info.random_weights
    message = loaded.info.messages[0]
    assert (
        "corrupt or truncated" in message and "`checkpoint`" in message and str(folder) not in message
    )  # no server path


def test_cli_with_broken_checkpoint_exits_2(tiny_checkpoint, tmp_path, capsys):
    from starcaster.cli import main

    folder = tmp_path / "checkpoint"
    shutil.copytree(tiny_checkpoint, folder)
    _garbage_header(folder)
    args = ["generate", "--checkpoint", str(folder), "--audio", str(SPEECH), "--image", str(PORTRAIT)]
    assert main([*args, "--out", str(tmp_path / "out.mp4")]) == 2
    assert "corrupt or truncated" in capsys.readouterr().err
    assert not (tmp_path / "out.mp4").exists()


# -- a full disk --------------------------------------------------------------------------------


def test_video_writer_disk_full_leaves_no_file(tmp_path, monkeypatch):
    """ENOSPC from the encoder pipe (mocked) → ``VideoWriteError``; neither the mp4 nor its partial remain."""
    import numpy as np
    from moviepy.video.io.ffmpeg_writer import FFMPEG_VideoWriter

    from starcaster.video import VideoWriteError, VideoWriter

    written = [0]
    original = FFMPEG_VideoWriter.write_frame

    def failing(self, frame):
        written[0] += 1
        if written[0] > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, frame)

    monkeypatch.setattr(FFMPEG_VideoWriter, "write_frame", failing)
    out = tmp_path / "talking.mp4"
    with (
        pytest.raises(VideoWriteError, match="no space left on device"),
        VideoWriter(out, 8, np.zeros(8000, np.float32)) as writer,
    ):
        writer.write(np.zeros((8, 32, 32, 3), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@contextlib.contextmanager
def full_tmpfs(folder: Path, size_kb: int = 512):
    """A small tmpfs at ``folder``, filled to the last block; skips where mounting is not allowed."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()})")
    try:
        filler = folder / "filler"
        with contextlib.suppress(OSError), open(filler, "wb", buffering=0) as handle:
            while True:  # until ENOSPC: not one block left
                handle.write(b"\0" * 4096)
        yield filler
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_app_output_dir_full_then_recovers(tiny_pipe, tmp_path):
    """The app's output folder on a full tmpfs: a clear error, no mp4 left; space freed → it works again."""
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    with full_tmpfs(tmp_path / "full") as filler, serve(tiny_pipe, work_dir=filler.parent) as (demo, url):
        client = Client(url, verbose=False)
        args = (handle_file(str(PORTRAIT)), None, handle_file(str(SPEECH)))
        with pytest.raises(AppError, match=r"disk (is )?full"):
            client.predict(*args, api_name="/generate", **FAST)
        assert not [p for p in filler.parent.rglob("*.mp4")]
        assert not [p for p in filler.parent.rglob("*.partial*")]
        filler.unlink()
        assert client.predict(*args, api_name="/generate", **FAST)[4].startswith("Done:")


def test_cli_output_dir_full(tiny_checkpoint, tmp_path, capsys):
    from starcaster.cli import main

    with full_tmpfs(tmp_path / "full") as filler:
        out = filler.parent / "talking.mp4"
        args = ["generate", "--checkpoint", str(tiny_checkpoint), "--audio", str(SPEECH), "--image", str(PORTRAIT)]
        assert main([*args, "--fps", "8", "--steps", "1", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "\nerror: Writing talking.mp4 failed: no space left on device (the disk is full)" in err
        assert sorted(p.name for p in filler.parent.iterdir()) == ["filler"]


# -- the Hub cannot be reached --------------------------------------------------------------------


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("network", ["HF_HUB_OFFLINE=1", "connection refused", "no answer"])
def test_uncached_repo_with_no_hub_fails_within_10s(network, tmp_path):
    """``python -m starcaster download owner/repo`` with the Hub unreachable: exit 2 with the
    offline message, in under 10 s (timed inside the process, so the import is not counted)."""
    code = (
        "import sys, time\n"
        "from starcaster.cli import main\n"
        "started = time.perf_counter()\n"
        "code = main(['download', 'nobody/uncached-starcaster@v1'])\n"
        "print(f'seconds={time.perf_counter() - started:.2f}')\n"
        "sys.exit(code)\n"
    )
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), HF_HUB_CACHE=str(tmp_path / "hf" / "hub"))
    with black_hole() as hole:
        env["HF_HUB_OFFLINE"] = "1" if network == "HF_HUB_OFFLINE=1" else "0"
        env["HF_ENDPOINT"] = hole if network == "no answer" else _closed_port()
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT
        )
    assert result.returncode == 2 and "seconds=" in result.stdout, result.stderr
    seconds = float(result.stdout.split("seconds=")[1])
    assert "not in the local Hugging Face cache and the Hub cannot be reached" in result.stderr
    assert "python -m starcaster download nobody/uncached-starcaster@v1" in result.stderr
    assert seconds < 10, f"took {seconds:.1f} s"


# -- restart ----------------------------------------------------------------------------------------


def _tree_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


def test_restart_reuses_caches_and_keeps_examples(tmp_path, monkeypatch):
    """Two app starts on one cache: the second loads the cached weights (not rebuilt), the example
    files are untouched, and an example runs after the restart. A crash that left a half-written
    cache (staging folder, truncated weights) is repaired on the next start."""
    from gradio_client import Client, handle_file

    import starcaster.demo.checkpoint as support

    monkeypatch.setattr(support, "RANDOM_PRESET", "tiny")
    monkeypatch.setattr(support, "bundled_checkpoint", lambda: None)
    monkeypatch.delenv(support.CHECKPOINT_ENV, raising=False)
    examples_before = _tree_hash(ROOT / "examples")
    cache = tmp_path / "cache"

    first = support.load_app_pipeline(None, cache_dir=cache)
    cached = next(cache.glob("random-tiny-*"))
    stamp = {p: p.stat().st_mtime_ns for p in cached.rglob("*.safetensors")}
    for _ in range(2):  # start, stop, start again
        loaded = support.load_app_pipeline(None, cache_dir=cache)
        assert {p: p.stat().st_mtime_ns for p in cached.rglob("*.safetensors")} == stamp  # reused, not rebuilt
        with serve(loaded.pipe, info=loaded.info) as (_, url):
            out = Client(url, verbose=False).predict(
                handle_file(str(ROOT / "examples" / "portraits" / "portrait_0.png")),
                None,
                handle_file(str(ROOT / "examples" / "audio" / "hello.wav")),
                api_name="/generate",
                **FAST,
            )
            assert out[4].startswith("Done:")
    assert _tree_hash(ROOT / "examples") == examples_before

    # A crash mid-save: a staging folder and a truncated weights file in the cached checkpoint.
    (cache / ".random-crashed").mkdir()
    _truncate(cached)
    repaired = support.load_app_pipeline(None, cache_dir=cache)
    assert repaired.info.random_weights
    reloaded = support.load_app_pipeline(None, cache_dir=cache)  # the rebuilt cache loads cleanly
    first_weights = first.pipe.unet.state_dict()
    for name, value in reloaded.pipe.unet.state_dict().items():
        assert (value == first_weights[name]).all(), name  # same seed → the same weights as before
    assert json.loads((cached / "model_index.json").read_text())


def test_video_writer_ffmpeg_failing_at_the_end_is_not_complete(tmp_path):
    """ffmpeg dying after the last frame (as when the disk fills during the +faststart rewrite):
    moviepy's close() ignores that, VideoWriter checks the exit status and keeps no file."""
    import numpy as np

    from starcaster.video import VideoWriteError, VideoWriter

    out = tmp_path / "talking.mp4"
    with pytest.raises(VideoWriteError, match="could not finish talking.mp4"), VideoWriter(out, 8) as writer:
        writer.write(np.zeros((8, 32, 32, 3), np.uint8))
        writer._writer.proc.kill()
        writer._writer.proc.wait()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_real_process_killed_mid_run_restarts_cleanly(tiny_checkpoint, tmp_path):
    """``python app.py`` killed with SIGKILL in the middle of a generation, then started again:
    it serves at once, an example runs, and the example files are unchanged."""
    from gradio_client import Client, handle_file

    from tests.helpers import free_port

    examples_before = _tree_hash(ROOT / "examples")
    env = dict(os.environ, STARCASTER_APP_CACHE=str(tmp_path / "cache"), TMPDIR=str(tmp_path))

    def start() -> tuple[subprocess.Popen, str]:
        port = free_port()
        log = open(tmp_path / f"app-{port}.log", "w")  # noqa: SIM115 — closed with the process
        proc = subprocess.Popen(
            [sys.executable, "app.py", "--checkpoint", str(tiny_checkpoint), "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if httpx.get(url + "config", timeout=2).status_code == 200:
                    return proc, url
            assert proc.poll() is None, (tmp_path / f"app-{port}.log").read_text()
            time.sleep(0.5)
        proc.kill()
        raise AssertionError("the app did not start within 120 s")

    example = (
        handle_file(str(ROOT / "examples" / "portraits" / "portrait_0.png")),
        None,
        handle_file(str(ROOT / "examples" / "audio" / "hello.wav")),
    )
    proc, url = start()
    try:
        job = Client(url, verbose=False).submit(*example, api_name="/generate", chunk_length=1, fps=30)
        while not job.outputs():
            time.sleep(0.05)
        proc.kill()  # SIGKILL mid-generation: no cleanup code runs
        proc.wait(timeout=30)
    finally:
        proc.kill()
    stale = list(tmp_path.glob("starcaster-app-*"))
    assert stale  # the killed process could not remove its work dir …
    proc, url = start()
    try:
        assert not [p for p in stale if p.exists()]  # … the next start did
        out = Client(url, verbose=False).predict(*example, api_name="/generate", **FAST)
        assert out[4].startswith("Done:")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert _tree_hash(ROOT / "examples") == examples_before


def test_work_dirs_of_dead_processes_are_removed(tmp_path):
    import app
    from starcaster.demo.serving import remove_stale_work_dirs

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f"{app.WORK_DIR_PREFIX}{finished.stdout.strip()}-abc"
    alive = tmp_path / f"{app.WORK_DIR_PREFIX}{os.getpid()}-def"
    other = tmp_path / f"{app.WORK_DIR_PREFIX}notapid"
    for folder in (dead, alive, other):
        (folder / "session").mkdir(parents=True)
    remove_stale_work_dirs(tmp_path)
    assert not dead.exists() and alive.exists() and other.exists()
