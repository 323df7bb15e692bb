"""The live player's stream: one MPEG-TS made in-process, cut into pieces Gradio plays as they are."""

from __future__ import annotations

import asyncio
import io

import av
import numpy as np
import pytest

from starcaster.demo.live_player import FIRST_SEGMENT_S, SEGMENT_S, Segments
from starcaster.demo.live_stream import TransportStream, live_video, piece_seconds, write_piece

FPS = 25


def _frames(count: int, seed: int = 0) -> np.ndarray:
    """Smooth moving gradients (what x264 keeps close), ``[F, 64, 64, 3]`` uint8."""
    y, x = np.mgrid[0:64, 0:64]
    shift = np.random.default_rng(seed).integers(0, 64)
    return np.stack([np.stack([(x + t + shift) * 3 % 256, y * 3, (x + y) * 2 % 256], -1) for t in range(count)]).astype(
        np.uint8
    )


def _speech(seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * 16_000)) / 16_000
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2).astype(np.float32)


def _packets(data: bytes) -> list:
    with av.open(io.BytesIO(data), format="mpegts") as container:
        return [(p.stream.type, p.is_keyframe, float(p.pts * p.time_base)) for p in container.demux() if p.size]


def _run(pieces_of: list[int], speech: np.ndarray | None) -> list:
    """Frames cut into pieces of the given frame counts, speech fed ahead as ``Segments`` does."""
    from starcaster.demo.live_stream import AUDIO_LEAD_S

    stream, out, stop = TransportStream(FPS, 64, 64, audio=speech is not None), [], 0
    for index, count in enumerate(pieces_of):
        stop += count
        if speech is not None:
            stream.feed(speech[stream.fed_samples : round((stop / FPS + AUDIO_LEAD_S) * 16_000)])
        out.append(stream.piece(_frames(count, seed=index)))
    out.append((stream.close(), 0.0))
    return out


def test_each_piece_holds_all_its_frames_from_a_keyframe_and_parses_alone():
    pieces = _run([4, 12, 12, 12], _speech(40 / FPS + 0.5))  # a stream part-way: its speech goes on
    for (data, seconds), count in zip(pieces, [4, 12, 12, 12], strict=False):
        video = [p for p in _packets(data) if p[0] == "video"]
        assert len(video) == count and video[0][1]  # nothing held back for the next piece; starts on an IDR
        assert seconds == pytest.approx(count / FPS)
        assert len(data) % 188 == 0 and data[0] == 0x47  # whole MPEG-TS packets
    starts = [next(p[2] for p in _packets(d) if p[0] == "video") for d, _ in pieces[:-1]]
    assert np.allclose(np.diff(starts), [4 / FPS, 12 / FPS, 12 / FPS])  # one timeline across the pieces


def test_the_pieces_together_are_one_stream_with_every_frame_and_the_whole_speech():
    speech = _speech(40 / FPS)
    data = b"".join(d for d, _ in _run([4, 12, 12, 12], speech))
    with av.open(io.BytesIO(data), format="mpegts") as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with av.open(io.BytesIO(data), format="mpegts") as container:
        sound = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    expected = np.concatenate([_frames(c, seed=i) for i, c in enumerate([4, 12, 12, 12])])
    assert len(frames) == 40
    assert np.abs(np.stack(frames).astype(int) - expected).mean() < 6  # the same pictures, H.264-compressed
    assert len(sound) >= len(speech)  # the speech's tail left with close() (AAC adds its priming)
    lag = np.argmax(np.correlate(sound[:4000], speech[:2000], mode="valid"))
    assert np.corrcoef(sound[lag : lag + len(speech) - 2000], speech[: len(speech) - 2000])[0, 1] > 0.95


def test_continuity_counters_run_on_across_pieces():
    """A player reads a counter that jumps between segments as lost packets (why Gradio renumbers its own)."""
    data = b"".join(d for d, _ in _run([4, 12, 12], _speech(28 / FPS)))
    last: dict[int, int] = {}
    for offset in range(0, len(data), 188):
        pid = ((data[offset + 1] & 0x1F) << 8) | data[offset + 2]
        has_payload, counter = data[offset + 3] & 0x10, data[offset + 3] & 0x0F
        if pid == 0x1FFF or not has_payload:
            continue
        if pid in last:
            assert counter == (last[pid] + 1) % 16, (pid, offset)
        last[pid] = counter


def test_a_stream_without_speech_has_video_only():
    pieces = _run([4, 8], None)
    assert {p[0] for d, _ in pieces[:-1] for p in _packets(d)} == {"video"}
    assert [sum(p[0] == "video" for p in _packets(d)) for d, _ in pieces[:-1]] == [4, 8]


def test_odd_frame_sizes_are_padded_to_even():
    stream = TransportStream(FPS, 63, 61, audio=False)
    data = stream.piece(_frames(2)[:, :61, :63])[0] + stream.close()
    with av.open(io.BytesIO(data), format="mpegts") as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (64, 62)


@pytest.mark.parametrize("count", [60, 68])
def test_segments_first_piece_is_one_chunk_later_ones_half_a_second_and_nothing_is_lost(tmp_path, count):
    speech, paths = _speech(count / FPS), []
    segments = Segments(tmp_path, FPS)
    for start in range(0, count, 4):
        paths.append(segments.add(_frames(4, seed=start), speech))
    paths.append(segments.add(None, speech, last=True))
    pieces = [p for p in paths if p is not None]
    seconds = [piece_seconds(str(p)) for p in pieces]
    assert seconds[0] == pytest.approx(FIRST_SEGMENT_S)
    assert all(s >= SEGMENT_S for s in seconds[1:-1])
    data = b"".join(p.read_bytes() for p in pieces)
    assert sum(t == "video" for t, _, _ in _packets(data)) == count
    audio = [p for p in _packets(data) if p[0] == "audio"]
    assert audio[-1][2] >= 1.0 + count / FPS - 0.1  # the speech reaches the last frame (timeline starts at 1 s)
    # 60 frames end on a part-filled piece; 68 on a full one, and the end (AAC's last packets) is a piece of its own
    assert sum(seconds) == pytest.approx(count / FPS + (count == 68) / FPS)


def test_live_video_hands_gradio_the_piece_as_it_is(tmp_path):
    stream = TransportStream(FPS, 64, 64, audio=False)
    data, seconds = stream.piece(_frames(4))
    path = write_piece(tmp_path / "live_00000", data, seconds)
    chunk, output = asyncio.run(live_video().stream_output(str(path), "id/playlist.m3u8", True))
    assert chunk == {"data": data, "duration": pytest.approx(0.16), "extension": ".ts"}
    assert output["is_stream"] and output["path"] == "id/playlist.m3u8"
    with pytest.raises(ValueError, match="not a live piece"):
        piece_seconds(str(tmp_path / "other.ts"))
