"""Test helpers shared by several test files."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import socket
import threading
from contextlib import contextmanager
from pathlib import Path


def install_into_hf_cache(folder: Path, repo_id: str, cache_dir: Path, revision: str = "main") -> str:
    """Lay ``folder`` out in a Hugging Face cache exactly as ``snapshot_download`` would.

    ``models--{owner}--{name}/snapshots/{commit}/...`` plus ``refs/{revision}`` naming the
    commit, so loading by repo id with ``HF_HUB_OFFLINE=1`` goes through the real Hub code.
    """
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    repo_dir = Path(cache_dir) / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo_dir / "snapshots" / commit, dirs_exist_ok=True)
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / revision).write_text(commit)
    return commit


def cli_generate(checkpoint: Path, folder: Path, out: str, *extra: str) -> int:
    """``python -m starcaster generate`` on ``folder``'s ``speech.wav`` and ``identity.npy``, to ``folder/out``."""
    from starcaster.cli import main

    args = ["generate", "--checkpoint", str(checkpoint), "--audio", str(folder / "speech.wav"),
            "--embedding", str(folder / "identity.npy"), "--out", str(folder / out), *extra]  # fmt: skip
    return main(args)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(pipe, *, launch: dict | None = None, **kwargs):
    """Launch ``create_demo(pipe)`` on a free 127.0.0.1 port with the app's own serving settings
    (``app.launch``: upload limit, error reporting, served paths); yield ``(demo, url)``; always close it."""
    import app
    from starcaster.demo.checkpoint import CheckpointInfo

    info = kwargs.pop("info", CheckpointInfo(label="tiny test pipeline", revision=None, random_weights=True))
    demo = app.create_demo(pipe, info, **kwargs)
    port = free_port()
    app.launch(demo, host="127.0.0.1", port=port, prevent_thread_lock=True, quiet=True, **(launch or {}))
    try:
        yield demo, f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@contextlib.contextmanager
def black_hole():
    """A loopback port that accepts connections and never answers (a dropped or captive network)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()
