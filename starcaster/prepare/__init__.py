"""Raw talking-head videos → training shards (``python -m starcaster prepare VIDEOS --out DATA``).

``decode`` (ffmpeg through imageio-ffmpeg) → ``scenes`` (cuts) → ``faces`` (SCRFD or the offline
dlib detector) → ``track`` (labelled segments, smooth square crops) → ``sync`` (audio–video
offset by a sync expert) → ``shards`` (the project's shard format); ``run`` ties them together.
"""

from .run import PrepareConfig, find_videos, prepare_dataset, summary_table
from .track import TrackConfig

__all__ = ["PrepareConfig", "TrackConfig", "find_videos", "prepare_dataset", "summary_table"]
