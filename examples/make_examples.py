"""Regenerate the example assets in this folder (portraits, speech clips, identity embeddings).

    python examples/make_examples.py                      # everything
    python examples/make_examples.py --only embeddings    # after a new checkpoint lands

* portraits: SynthTalk reference renders of *test-split* identities (seeds >= 2_000_000), so
  no example face was seen in training;
* audio: espeak-ng speech, resampled to 16 kHz mono 16-bit with sox;
* embeddings: each portrait through the checkpoint's identity encoder. Embeddings only mean
  something in the space of the encoder that made them, so rerun this when the checkpoint
  changes (the default is the bundled one, or the app's cached random ``demo`` weights).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

PORTRAIT_SEEDS = (2_000_003, 2_000_011, 2_000_024)
PORTRAIT_SIZE = 128
SPEECH = {
    "hello.wav": "Hello! I am a talking portrait.",
    "weather.wav": "The weather is lovely today.",
}


def make_portraits() -> list[Path]:
    from starcaster.data.heads import sample_head
    from starcaster.data.render import RenderConfig, render_reference

    paths = []
    for index, seed in enumerate(PORTRAIT_SEEDS):
        path = HERE / "portraits" / f"portrait_{index}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(render_reference(sample_head(seed), RenderConfig(size=PORTRAIT_SIZE))).save(path, optimize=True)
        paths.append(path)
    return paths


def make_audio() -> None:
    (HERE / "audio").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in SPEECH.items():
            raw = Path(tmp) / name
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(raw), text], check=True)
            out = HERE / "audio" / name
            subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out)], check=True)


def make_embeddings(checkpoint: str | None) -> None:
    from starcaster.demo.checkpoint import load_app_pipeline
    from starcaster.identity import save_embedding

    loaded = load_app_pipeline(checkpoint)
    provenance = {"checkpoint": loaded.info.label, "revision": loaded.info.revision, "files": {}}
    for portrait in sorted((HERE / "portraits").glob("portrait_*.png")):
        out = HERE / "embeddings" / f"{portrait.stem.replace('portrait', 'identity')}.npy"
        save_embedding(loaded.pipe.encode_identity(portrait), out)
        provenance["files"][out.name] = f"portraits/{portrait.name}"
    (HERE / "embeddings" / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["portraits", "audio", "embeddings"], default=None)
    parser.add_argument("--checkpoint", default=None, help="checkpoint for the embeddings (default: as the app)")
    args = parser.parse_args()
    if args.only in (None, "portraits"):
        make_portraits()
    if args.only in (None, "audio"):
        make_audio()
    if args.only in (None, "embeddings"):
        make_embeddings(args.checkpoint)


if __name__ == "__main__":
    main()
