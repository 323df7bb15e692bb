"""Fixtures of the reliability suite: the app served on 127.0.0.1 with its production settings."""

from __future__ import annotations

import pytest

from tests.helpers import serve


@pytest.fixture(scope="module")
def served_app(tiny_pipe):
    """``(demo, url)``: the app on the tiny pipeline, 3 s audio limit, queue of 8, launched by ``app.launch``."""
    with serve(tiny_pipe, max_audio_seconds=3.0, queue_size=8) as (demo, url):
        yield demo, url


@pytest.fixture(scope="module")
def api_client(served_app, tmp_path_factory):
    from gradio_client import Client

    return Client(served_app[1], verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))
