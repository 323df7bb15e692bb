"""Per-stage wall-clock and CPU-time accounting, off by default (the benchmark turns it on).

CPU time (``time.process_time``: this process, all its threads) is recorded next to wall
time because the benchmark often runs on a shared machine: with one thread, CPU time is
what the work costs on a core of its own, while wall time also counts waiting for the core.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class StageTimer:
    """``with timer("denoise"): ...`` adds the block's wall time to ``seconds["denoise"]``
    and its CPU time to ``cpu_seconds["denoise"]``."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu_seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        start, cpu_start = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - start
            self.cpu_seconds[stage] += time.process_time() - cpu_start
