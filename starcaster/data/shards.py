"""On-disk layout of a SynthTalk dataset: compressed npz shards plus JSON manifests.

```
<out>/manifest.json                  format, generator config, every split's clip list
<out>/<split>/manifest.json          the same clip list for one split (a split dir stands alone)
<out>/<split>/<kind>-00000.npz       up to ``shard_size`` clips; arrays named "<clip key>/<field>"
```
An npz is a zip, so a reader decompresses only the members it asks for: one clip of a shard
can be read without touching the others. Every clip entry in a manifest names its shard.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "synthtalk-v1"
MANIFEST = "manifest.json"


def write_shard(path: Path, clips: dict[str, dict[str, np.ndarray]]) -> None:
    """Write ``{clip key: {field: array}}`` to one compressed npz shard (atomically, via a temp file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"{key}/{field}": value for key, fields in clips.items() for field, value in fields.items()}
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def read_clip(shard: Path, key: str) -> dict[str, np.ndarray]:
    """Every field of clip ``key`` in ``shard``."""
    with np.load(shard) as data:
        return {name.split("/", 1)[1]: data[name] for name in data.files if name.split("/", 1)[0] == key}


def iter_shard(shard: Path) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    """Yield ``(key, fields)`` for each clip of a shard, in stored order."""
    with np.load(shard) as data:
        keys = list(dict.fromkeys(name.split("/", 1)[0] for name in data.files))
        for key in keys:
            prefix = f"{key}/"
            yield key, {name[len(prefix) :]: data[name] for name in data.files if name.startswith(prefix)}


def shard_keys(shard: Path) -> list[str]:
    """Clip keys stored in ``shard``, read from the zip directory only."""
    with zipfile.ZipFile(shard) as archive:
        return list(dict.fromkeys(name.split("/", 1)[0] for name in archive.namelist()))


def write_manifest(directory: Path, manifest: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MANIFEST
    path.write_text(json.dumps(manifest, indent=1, default=_json_default))
    return path


def load_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest of a dataset root or of one split directory."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"No {MANIFEST} in {directory}: generate data with `python -m starcaster synth --out DIR`."
        )
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path} has format {manifest.get('format')!r}; this reader expects {FORMAT!r}.")
    return manifest


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"Not JSON serialisable: {type(value).__name__}")
