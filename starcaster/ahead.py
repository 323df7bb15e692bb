"""One generator run ahead of its consumer on a worker thread: the stages of streaming generation.

``STARCasterPipeline`` chains two of them — the denoiser, then the decoder + frame refiner —
so that on two cores chunk n + 1 is denoised while chunk n is refined and chunk n - 1 written.
"""

from __future__ import annotations

import atexit
import queue
import threading
import weakref
from collections.abc import Callable, Iterator

import torch

_RUNNING: weakref.WeakSet = weakref.WeakSet()  # workers not yet closed (an abandoned run's included)


@atexit.register
def _stop_all() -> None:
    """At exit, end the workers of runs nobody closed: a thread still inside torch when the
    interpreter tears down aborts the process ("terminate called without an active exception")."""
    for ahead in list(_RUNNING):
        ahead.close(timeout=10.0)


class Ahead:
    """Iterate a generator on a worker thread, one item ahead of the consumer.

    The denoiser's thread computes chunk n + 1 while the decoder's thread refines chunk n and
    the caller writes chunk n - 1: on two cores the stages overlap. ``make(stop)`` builds the generator; it
    checks ``stop`` between items, so ``close`` (a Stop button, a closed generator) ends it
    within one chunk. Exceptions on the worker are raised in the consumer.
    """

    _DONE = object()

    def __init__(self, make: Callable[[threading.Event], Iterator], threads: int | None = None):
        self._stop = threading.Event()
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._threads = threads or torch.get_num_threads()  # a new thread would otherwise take the default
        self._thread = threading.Thread(target=self._work, args=(make,), daemon=True, name="starcaster-stage")
        self._thread.start()
        _RUNNING.add(self)

    def _work(self, make) -> None:
        torch.set_num_threads(self._threads)  # per thread: the other stage keeps its own
        try:
            for item in make(self._stop):
                if not self._put(item):
                    return
            self._put(self._DONE)
        except BaseException as exc:  # noqa: BLE001 — handed to the consumer, who raises it
            self._put(exc)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self):
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return
                if self._thread.is_alive():
                    continue
                try:  # it may have put its last item (an exception) just before it ended
                    item = self._queue.get_nowait()
                except queue.Empty:
                    return
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def stop(self) -> None:
        """Ask the worker to finish after its current item (returns at once)."""
        self._stop.set()

    def close(self, timeout: float | None = None) -> None:
        self._stop.set()
        self._thread.join(timeout)
        _RUNNING.discard(self)
