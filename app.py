"""STARCaster demo: the Hugging Face Spaces entry point (the app itself is ``starcaster/demo/``).

    python app.py [--host HOST] [--port PORT] [--share] [--checkpoint REPO[@REV]|FOLDER]
                  [--max-audio-seconds S] [--queue-size N]

``create_demo(pipe, info)`` (``starcaster/demo/layout.py``) builds the page; nothing is loaded at
import time. The app is thin: inputs are checked by the package's front ends
(``STARCasterError`` → ``gr.Error``), generation is ``pipe.start(...)`` whose chunks stream into a
live player and an mp4 (``starcaster/demo/handlers.py``). Named API endpoints
(``gradio_client``): ``/generate``, ``/extract_identity``, ``/sample_identity``,
``/blend_identities``, ``/photo_to_avatar``, ``/adjust_avatar``. See docs/app.md.
"""

from __future__ import annotations

import logging

from starcaster.demo.checkpoint import CheckpointInfo, load_app_pipeline
from starcaster.demo.handlers import DemoApp
from starcaster.demo.layout import CAMERA_PATHS, create_demo
from starcaster.demo.serving import MAX_FILE_SIZE, WORK_DIR_PREFIX, launch, parse_args

__all__ = [
    "CAMERA_PATHS",
    "MAX_FILE_SIZE",
    "WORK_DIR_PREFIX",
    "CheckpointInfo",
    "DemoApp",
    "create_demo",
    "launch",
    "main",
]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    loaded = load_app_pipeline(args.checkpoint)
    demo = create_demo(loaded.pipe, loaded.info, max_audio_seconds=args.max_audio_seconds, queue_size=args.queue_size)
    launch(demo, host=args.host, port=args.port, share=args.share)


if __name__ == "__main__":
    main()
