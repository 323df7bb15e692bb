"""Error mapping and input guards of the demo: what a user sees when something is wrong.

A ``STARCasterError`` (a bad input the user can fix) becomes a ``gr.Error`` with its message;
anything else is a bug or a resource failure: its traceback goes to the server log and the
client gets a clear message without internals. Every input component's ``preprocess`` is
wrapped so a value Gradio cannot read fails with a ``gr.Error`` that names the field.
"""

from __future__ import annotations

import errno
import functools
import inspect
import logging

import gradio as gr
import numpy as np

from ..errors import STARCasterError

logger = logging.getLogger("starcaster.app")

MAX_SEED = 2**31 - 1


def fail(message: str) -> gr.Error:
    """A user-facing error: shown in the page / returned to the API client, no server traceback."""
    return gr.Error(message, print_exception=False)


def user_error(exc: Exception) -> gr.Error:
    return fail(str(exc))


def internal_error(exc: Exception) -> gr.Error:
    """A bug or a resource failure: the traceback goes to the server log, the client gets a clear
    message without internals (no paths, no exception text)."""
    logger.error("request failed", exc_info=exc)
    return fail(
        f"The request failed on the server ({type(exc).__name__}); the details are in the server log. "
        "Try again, or with other inputs."
    )


def reported(fn):
    """Endpoint decorator: ``STARCasterError`` → its message, anything else → ``_internal_error``."""

    def convert(exc: Exception) -> gr.Error:
        if isinstance(exc, gr.Error):
            return exc
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            logger.error("disk full", exc_info=exc)
            return fail("The server's disk is full, so the result could not be saved. Try again later.")
        return user_error(exc) if isinstance(exc, STARCasterError) else internal_error(exc)

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                raise convert(exc) from exc

        return generator

    @functools.wraps(fn)
    def function(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise convert(exc) from exc

    return function


def next_or_error(iterator):
    try:
        return next(iterator, None)
    except STARCasterError as exc:
        raise user_error(exc) from exc


def guard_inputs(demo: gr.Blocks) -> None:
    """Make every input component fail with a ``gr.Error`` that names the field.

    Gradio turns a value it cannot read (``"ninety"`` for a slider, ``NaN`` sent through the
    raw HTTP API, an undecodable upload) into an anonymous server error; clients then see only
    "the upstream app has raised an exception". Here each component's ``preprocess`` is
    wrapped: numbers must be finite, anything else that fails is reported with the field's
    label. Portrait images are passed on as the uploaded file's path without being decoded:
    ``starcaster.identity.load_image`` opens them lazily, refuses bombs before decoding and
    names every failure (empty, truncated, not an image), so decoding happens once, safely.
    """
    for block in demo.blocks.values():
        if isinstance(block, gr.components.Component) and hasattr(block, "preprocess"):
            block.preprocess = _guarded_preprocess(block)


def _guarded_preprocess(component):
    original = component.preprocess
    label = component.label or component.elem_id or type(component).__name__
    is_number = isinstance(component, gr.Slider | gr.Number)
    pass_path = isinstance(component, gr.Image) and component.type == "filepath"

    def preprocess(payload):
        if is_number and payload is not None:
            if isinstance(payload, bool) or not isinstance(payload, int | float):
                raise fail(f"{label}: expected a number; got {payload!r}.")
            if isinstance(payload, float) and not np.isfinite(payload):
                raise fail(f"{label}: expected a finite number; got {payload!r}.")
        is_data_url = str(getattr(payload, "url", None) or "").startswith("data:")
        if pass_path and getattr(payload, "path", None) and not is_data_url:
            return str(payload.path)  # uploaded file, inside Gradio's cache (checked by Gradio)
        try:
            return original(payload)
        except gr.Error:
            raise
        except Exception as exc:
            raise fail(f"{label}: the value could not be read ({type(exc).__name__}: {exc}).") from exc

    return preprocess


def checked_seed(value) -> int:
    try:
        seed = int(value)
    except (TypeError, ValueError) as exc:
        raise fail(f"The seed must be a whole number between 0 and {MAX_SEED}; got {value!r}.") from exc
    if not 0 <= seed <= MAX_SEED:
        raise fail(f"The seed must be between 0 and {MAX_SEED}; got {seed}.")
    return seed
