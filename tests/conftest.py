"""Shared pytest fixtures: keep every test offline and its files in tmp dirs."""

from __future__ import annotations

import os

import pytest

# Tests never reach the network: Hub code paths run against local caches only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(autouse=True)
def _isolated_hf_home(tmp_path_factory, monkeypatch):
    """A private HF cache per test session, so no test reads or writes ~/.cache/huggingface."""
    home = tmp_path_factory.getbasetemp() / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    yield
