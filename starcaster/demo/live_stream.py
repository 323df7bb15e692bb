"""The live player's stream: one MPEG-TS (H.264 + AAC) cut into HLS pieces, played as it is.

Gradio's streaming ``gr.Video`` takes a file per piece and re-muxes each one itself (ffprobe, an
audio decode, an ffmpeg MPEG-TS mux: three process launches a piece, and a fourth for our own
encode of the piece — 0.57–0.66 CPU-s per video second with 0.5 s pieces, docs/app.md). Here the pieces are made
in-process (PyAV) by one encoder pair and one muxer that live as long as the stream, so the
timeline, the AAC priming and the MPEG-TS continuity counters run on across pieces by
construction, and ``live_video``'s player hands the bytes to Gradio's HLS playlist unchanged.

``TransportStream``: speech (mono float, 16 kHz) and frames ``[F, H, W, 3]`` uint8 in, one
``.ts`` piece out per call. ``live_video``: the ``gr.Video(streaming=True)`` that plays those files.
"""

from __future__ import annotations

import io
import types
from fractions import Fraction
from pathlib import Path

import av
import gradio as gr
import numpy as np

AUDIO_RATE = 16_000  # the pipeline's speech rate; AAC at 16 kHz plays in every browser
TS_FLAGS = "pat_pmt_at_frames"  # tables before every video frame: any piece can be parsed alone
START_S = 1.0  # where the timeline starts: the AAC priming (-1,024 samples) stays positive
AUDIO_LEAD_S = 0.3  # speech fed past a piece's last frame (the AAC encoder holds ≈ 0.13 s back)


class TransportStream:
    """An H.264 + AAC MPEG-TS written piece by piece: ``feed`` speech, ``piece`` frames, ``close``.

    x264 runs with ``zerolatency`` (no look-ahead, no B-frames: a frame's packet leaves with the
    frame) on one thread, and each piece starts on a forced IDR frame, so a player can begin at
    any piece. The muxer writes a packet as soon as the other stream has caught up with it
    (``max_interleave_delta`` 1 µs, unbuffered PES); it keeps back only the newest packet of the
    stream that is ahead. So the speech is fed ahead of the frames (``AUDIO_LEAD_S``), and a
    piece's frames are all in the bytes ``piece`` returns; the speech's tail leaves with ``close``.
    Where the speech cannot be ahead (the microphone: only what was heard), a piece's newest frame
    may wait for the next piece.
    """

    def __init__(self, fps: float, width: int, height: int, audio: bool = True):
        self.fps = Fraction(fps).limit_denominator(1001)
        self._buffer = io.BytesIO()
        options = {"mpegts_flags": TS_FLAGS, "pes_payload_size": "0", "max_interleave_delta": "1"}
        options |= {"flush_packets": "1", "max_delay": "0"}
        self._container = av.open(self._buffer, "w", format="mpegts", options=options)
        video = self._container.add_stream("libx264", rate=self.fps)
        video.width, video.height = width + width % 2, height + height % 2  # 4:2:0 wants even sizes
        video.pix_fmt, video.thread_count = "yuv420p", 1
        video.options = {"preset": "ultrafast", "tune": "zerolatency", "forced-idr": "1", "crf": "18"}  # as the mp4
        video.codec_context.gop_size = 1 << 30  # keyframes only where a piece starts
        self._video = video
        self._audio = self._container.add_stream("aac", rate=AUDIO_RATE, layout="mono") if audio else None
        self._frames = self._samples = 0
        self._taken = 0
        self.closed = False

    def feed(self, samples: np.ndarray) -> None:
        """Speech (float mono, 16 kHz) that follows what was fed before; keep it ahead of the frames.

        The muxer holds back the newest packet of whichever stream is ahead, so speech fed
        ≈ ``AUDIO_LEAD_S`` past a piece's last frame lets every frame of the piece leave with it."""
        if self._audio is None or not len(samples):
            return
        pcm = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)[None, :]
        frame = av.AudioFrame.from_ndarray(pcm, format="flt", layout="mono")
        frame.sample_rate, frame.time_base = AUDIO_RATE, Fraction(1, AUDIO_RATE)
        frame.pts = self._samples + round(START_S * AUDIO_RATE)
        self._samples += pcm.shape[1]
        self._container.mux(self._audio.encode(frame))

    @property
    def fed_samples(self) -> int:
        """Speech fed so far, in 16 kHz samples."""
        return self._samples

    def piece(self, frames: np.ndarray) -> tuple[bytes, float]:
        """Encode ``frames`` ``[F, H, W, 3]`` uint8 → (the piece's bytes, its seconds of video)."""
        for index, image in enumerate(np.asarray(frames, dtype=np.uint8)):
            frame = av.VideoFrame.from_ndarray(self._even(image), format="rgb24")
            frame.pts, frame.time_base = self._frames + round(START_S * self.fps), 1 / self.fps
            if index == 0:
                frame.pict_type = av.video.frame.PictureType.I
            self._frames += 1
            self._container.mux(self._video.encode(frame))
        return self._take(), len(frames) / float(self.fps)

    def close(self) -> bytes:
        """Flush both encoders and the muxer: the stream's last bytes (none if closed before)."""
        if self.closed:
            return b""
        self.closed = True
        self._container.mux(self._video.encode(None))
        if self._audio is not None:
            self._container.mux(self._audio.encode(None))
        self._container.close()
        return self._take()

    def _take(self) -> bytes:
        data = self._buffer.getbuffer()[self._taken :].tobytes()
        self._taken += len(data)
        return data

    @staticmethod
    def _even(image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        if height % 2 or width % 2:
            image = np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        return np.ascontiguousarray(image)


def write_piece(path: Path, data: bytes, seconds: float) -> Path:
    """A piece file for ``live_video``: the bytes, with the duration in the name (``…_0.480s.ts``)."""
    path = Path(path).with_name(f"{Path(path).stem}_{seconds:.6f}s.ts")
    path.write_bytes(data)
    return path


def piece_seconds(path: str) -> float:
    """The duration ``write_piece`` put in the file's name."""
    stem = Path(path).stem
    try:
        return float(stem.rsplit("_", 1)[1].removesuffix("s"))
    except (IndexError, ValueError) as exc:
        raise ValueError(f"{path} is not a live piece (written by write_piece)") from exc


def live_video(**kwargs) -> gr.Video:
    """A streaming ``gr.Video`` that plays ``TransportStream`` pieces as they are, without Gradio's re-mux.

    Gradio's HLS playlist takes MPEG-TS segments with their durations (``MediaStreamChunk``); the
    pieces are that already, so the player's ``stream_output`` only reads the file. Everything else
    (the playlist, hls.js in the page, the end of the stream) is Gradio's own: the stock
    ``flush_stream_output`` / ``end_stream_output`` find no state of theirs and do nothing. One
    method of one instance instead of a subclass, because Gradio's component metaclass writes a
    ``.pyi`` stub beside any module that subclasses a component, and the page would look for a
    front-end component of the subclass's name.
    """
    video = gr.Video(streaming=True, **kwargs)
    video.stream_output = types.MethodType(_stream_output, video)
    return video


async def _stream_output(self, value, output_id: str, first_chunk: bool):
    output = {
        "path": output_id,
        "is_stream": True,
        "orig_name": "video-stream.ts",
        "meta": {"_type": "gradio.FileData"},
    }
    if value is None:
        return None, output
    path = str(value)
    return {"data": Path(path).read_bytes(), "duration": piece_seconds(path), "extension": ".ts"}, output
