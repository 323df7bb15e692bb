"""Running corpus cases through each channel and reporting them as a table."""

from __future__ import annotations

import contextlib
import io
import os
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from tests.reliability.corpus import Case
from tests.reliability.rawhttp import FAST


@dataclass
class Result:
    case: Case
    outcome: str  # error | ok
    message: str
    seconds: float
    exit_code: int | None = None  # CLI only

    @property
    def passed(self) -> bool:
        if self.outcome != self.case.outcome:
            return False
        if self.case.channel == "cli" and self.outcome == "error" and self.exit_code != 2:
            return False
        return self.case.expect.lower() in self.message.lower()


def _upload(value):
    from gradio_client import handle_file

    return handle_file(str(value)) if isinstance(value, Path) else value


def run_api(client, case: Case, folder: Path) -> Result:
    from gradio_client.exceptions import AppError

    inputs = case.inputs(folder)
    started = time.perf_counter()
    try:
        if case.endpoint == "/generate":
            settings = {**FAST, **inputs}
            args = [_upload(settings.pop(key, None)) for key in ("image", "embedding", "audio")]
            result = client.predict(*args, api_name="/generate", **settings)
            message = str(result[4])
        elif case.endpoint == "/extract_identity":
            result = client.predict(_upload(inputs["image"]), api_name="/extract_identity")
            message = str(result[2])
        elif case.endpoint == "/blend_identities":
            result = client.predict(
                _upload(inputs["first"]), _upload(inputs["second"]), inputs["weight"], api_name="/blend_identities"
            )
            message = str(result[1])
        else:
            raise ValueError(case.endpoint)
        outcome = "ok"
    except AppError as exc:
        outcome, message = "error", str(exc)
    except Exception as exc:  # noqa: BLE001 — anything else is reported as what it is
        outcome, message = "error", f"{type(exc).__name__}: {exc}"
    return Result(case, outcome, " ".join(message.split()), time.perf_counter() - started)


def run_python(case: Case, folder: Path) -> Result:
    from starcaster import STARCasterError

    call = case.inputs(folder)
    started = time.perf_counter()
    try:
        call()
        outcome, message = "ok", "returned normally"
    except STARCasterError as exc:  # the documented exception types (InputError, CheckpointError, …)
        outcome, message = "error", f"{type(exc).__name__}: {exc}"
    return Result(case, outcome, message, time.perf_counter() - started)


def run_cli(case: Case, folder: Path, checkpoint: Path) -> Result:
    """``python -m starcaster`` in this process (``main(argv)`` is what ``__main__`` runs)."""
    from starcaster.cli import main

    args = case.inputs(folder)
    if "--out" not in args:
        args += ["--out", str(folder / "out.mp4")]
    args += ["--checkpoint", str(checkpoint), "--steps", "1", "--fps", "8"]
    stderr = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    lines = [line for line in stderr.getvalue().splitlines() if line.startswith("error:")]
    message = lines[-1] if lines else stderr.getvalue().strip()[-300:]
    outcome = "error" if code != 0 else "ok"
    return Result(case, outcome, message, time.perf_counter() - started, exit_code=code)


def rss_mb(pid: int | None = None) -> float:
    return psutil.Process(pid or os.getpid()).memory_info().rss / 2**20


def settled_rss_mb() -> float:
    """RSS after a garbage collection and after glibc returned its free heap pages to the OS
    (``malloc_trim``), so the figure is memory in use, not the allocator's high-water mark."""
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return rss_mb()


def format_table(results: list[Result]) -> str:
    """A Markdown table: case → channel → outcome → message (shortened)."""
    rows = ["| # | case | kind | channel | outcome | pass | message |", "|---|---|---|---|---|---|---|"]
    for number, result in enumerate(results, 1):
        channel = result.case.channel + (f" {result.case.endpoint}" if result.case.channel == "api" else "")
        outcome = result.outcome + (f" (exit {result.exit_code})" if result.exit_code is not None else "")
        message = result.message.replace("|", "\\|")
        message = message if len(message) <= 160 else message[:157] + "…"
        rows.append(
            f"| {number} | {result.case.name} | {result.case.kind} | {channel} | {outcome} | "
            f"{'✔' if result.passed else '✘'} | {message} |"
        )
    return "\n".join(rows)


def run_http(url: str, case: Case, folder: Path) -> Result:
    send = case.inputs(folder)
    started = time.perf_counter()
    outcome, message = send(url)
    return Result(case, outcome, " ".join(message.split()), time.perf_counter() - started)
