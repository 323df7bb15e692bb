"""Shared pytest fixtures: keep every test offline and its files in temp dirs."""

from __future__ import annotations

import os
import tempfile

# Set before anything imports huggingface_hub (it reads these once, at import time):
# tests never reach the network, and never read or write the user's ~/.cache/huggingface.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="starcaster-test-hf-")
os.environ["HF_HUB_CACHE"] = os.path.join(os.environ["HF_HOME"], "hub")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
