"""Load on the running app (127.0.0.1 only): concurrent gradio_client users, and a full queue.

8 users, each with its own ``gradio_client.Client``, send a bounded number of short requests
at once (generate, sample an identity, generate). Generation runs one at a time
(``concurrency_limit=1``), so the others wait in the queue; none may fail, every answer must be
the right one (seed, frame count, identity vector), and the test reports p50/p95 latency per
endpoint and the server's peak RSS. A queue that is full refuses new requests with a clear
message and keeps serving the ones it holds. The heavier variant is ``-m slow``.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.helpers import serve
from tests.reliability.corpus import PORTRAIT, SPEECH
from tests.reliability.harness import rss_mb
from tests.reliability.rawhttp import FAST

USERS = 8
DEADLINE_S = 300  # the whole load run stops by itself after this


@pytest.fixture(scope="module")
def short_speech(tmp_path_factory, speech_wave) -> Path:
    path = tmp_path_factory.mktemp("load") / "speech.wav"
    sf.write(path, speech_wave[:8_000], 16_000)  # 0.5 s → 4 frames at 8 fps
    return path


class RssSampler:
    """Peak RSS of this process (the server runs in it) sampled every 50 ms in a thread."""

    def __init__(self):
        self.peak_mb, self._stop = rss_mb(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.05):
            self.peak_mb = max(self.peak_mb, rss_mb())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _user(url: str, user: int, rounds: int, speech: Path, downloads: Path, started: float, pipe) -> list[dict]:
    """One user's session: ``rounds`` × (generate, sample_identity, generate), each checked."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, download_files=str(downloads / f"user{user}"))
    records = []
    for round_ in range(rounds):
        for kind in ("generate", "sample_identity", "generate"):
            if time.monotonic() - started > DEADLINE_S:
                raise TimeoutError("load test deadline reached")
            seed = 1000 * user + 10 * round_ + len(records)
            begin = time.perf_counter()
            if kind == "generate":
                out = client.predict(
                    handle_file(str(PORTRAIT)), None, handle_file(str(speech)), seed=seed, api_name="/generate", **FAST
                )
                ok = out[5] == seed and out[4].startswith("Done: 4 frames") and Path(out[1]).stat().st_size > 0
            else:
                path, got_seed, _ = client.predict(seed, False, api_name="/sample_identity")
                ok = got_seed == seed and np.allclose(np.load(path), pipe.random_identity(seed))
            records.append(dict(kind=kind, seconds=time.perf_counter() - begin, ok=bool(ok)))
    return records


def _run_load(url: str, rounds: int, speech: Path, downloads: Path, pipe) -> tuple[list[dict], float, float]:
    started = time.monotonic()
    with RssSampler() as rss, ThreadPoolExecutor(USERS) as pool:
        futures = [pool.submit(_user, url, user, rounds, speech, downloads, started, pipe) for user in range(USERS)]
        records = [record for future in futures for record in future.result(timeout=DEADLINE_S + 60)]
    return records, time.monotonic() - started, rss.peak_mb


def _report(records: list[dict], wall: float, peak_mb: float, baseline_mb: float) -> str:
    lines = [f"{USERS} users × {len(records) // USERS} requests = {len(records)} in {wall:.1f} s"]
    for kind in ("generate", "sample_identity"):
        seconds = np.array([r["seconds"] for r in records if r["kind"] == kind])
        lines.append(
            f"  {kind:16s} n={len(seconds):3d}  p50 {np.percentile(seconds, 50):5.2f} s  "
            f"p95 {np.percentile(seconds, 95):5.2f} s  max {seconds.max():5.2f} s"
        )
    errors = sum(not r["ok"] for r in records)
    lines.append(f"  errors {errors}  ·  RSS baseline {baseline_mb:.0f} MB, peak {peak_mb:.0f} MB")
    return "\n".join(lines)


@pytest.mark.parametrize("rounds", [1, pytest.param(4, marks=pytest.mark.slow)])
def test_concurrent_users(tiny_pipe, short_speech, tmp_path, rounds):
    with serve(tiny_pipe, max_audio_seconds=3.0) as (demo, url):  # the default queue size (16)
        baseline = rss_mb()
        records, wall, peak = _run_load(url, rounds, short_speech, tmp_path, tiny_pipe)
        print("\n" + _report(records, wall, peak, baseline))
        assert len(records) == USERS * 3 * rounds
        assert all(r["ok"] for r in records)
        assert not [p for p in demo.starcaster_app.work_dir.rglob("*.mp4")]  # every run cleaned up


def test_full_queue_refuses_clearly(tiny_pipe):
    """Queue of 2, one generation at a time: of 6 simultaneous requests 3 are served (1 running +
    2 waiting) and the rest are refused at once with Gradio's "Queue is full" message."""
    from gradio_client import Client, handle_file

    with serve(tiny_pipe, max_audio_seconds=3.0, queue_size=2) as (_, url):
        clients = [Client(url, verbose=False) for _ in range(6)]
        slow = dict(FAST, num_inference_steps=4, chunk_length=1)  # 21 one-frame chunks: seconds per job
        jobs = [
            client.submit(handle_file(str(PORTRAIT)), None, handle_file(str(SPEECH)), api_name="/generate", **slow)
            for client in clients
        ]
        outcomes = []
        for job in jobs:
            try:
                outcomes.append(("ok", job.result(timeout=120)[4]))
            except Exception as exc:  # noqa: BLE001 — the refusal's type and text are what we check
                outcomes.append(("refused", f"{type(exc).__name__}: {exc}"))
        print("\n" + "\n".join(f"  {kind}: {message}" for kind, message in outcomes))
        served = [m for kind, m in outcomes if kind == "ok"]
        refused = [m for kind, m in outcomes if kind == "refused"]
        assert all(m.startswith("Done:") for m in served) and len(served) >= 3
        assert refused and all("queue is full" in m.lower() for m in refused)
